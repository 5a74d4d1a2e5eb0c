/** `startRole(name, ctx, config)`: the launcher's one way to start any of the five roles. */
import type {
  GatewayConfig,
  ManagerConfig,
  MonitorConfig,
  MsgServerConfig,
  RoleConfig,
  RouterConfig,
} from '../contract/config.js';
import type { RoleContext, RoleHandle, RoleName } from '../contract/context.js';
import { startGateway } from '../roles/gateway/index.js';
import { startManager } from '../roles/manager/index.js';
import { startMonitor } from '../roles/monitor/index.js';
import { startMsgServer } from '../roles/msg_server/index.js';
import { startRouter } from '../roles/router/index.js';

export { startGateway, startManager, startMonitor, startMsgServer, startRouter };

/** The config each role takes. */
export interface RoleConfigOf {
  gateway: GatewayConfig;
  msg_server: MsgServerConfig;
  router: RouterConfig;
  manager: ManagerConfig;
  monitor: MonitorConfig;
}

/** Starts role `name` with its config; resolves once it listens. */
export function startRole<N extends RoleName>(name: N, ctx: RoleContext, config: RoleConfigOf[N]): Promise<RoleHandle>;
export function startRole(name: RoleName, ctx: RoleContext, config: RoleConfig): Promise<RoleHandle>;
export function startRole(name: RoleName, ctx: RoleContext, config: RoleConfig): Promise<RoleHandle> {
  if (config.role !== name)
    return Promise.reject(new Error(`startRole(${name}): the config given is a ${config.role}'s`));
  switch (config.role) {
    case 'gateway':
      return startGateway(ctx, config);
    case 'msg_server':
      return startMsgServer(ctx, config);
    case 'router':
      return startRouter(ctx, config);
    case 'manager':
      return startManager(ctx, config);
    case 'monitor':
      return startMonitor(ctx, config);
  }
}
