/**
 * Embedded mode (docs/architecture.md "Three ways to run, one code path", 3): every role in this
 * process, an in-process bus, the SQLite store at <dataDir>/fishchat.db.
 *
 * Start order: monitor (so it hears every other role's first beat, and
 * `fishchat status` is complete as soon as the cluster is ready), router,
 * manager (before the msg_servers, so it hears every login), msg_servers,
 * gateway (seeded with the msg_servers' real addresses). Stop order is the
 * reverse: gateway, msg_servers (they kick `draining`; the manager still
 * hears the logouts), manager, router, monitor, then the bus and the store.
 */
import { bindAddress } from '../platform/address.js';
import { getPlatform } from '../platform/index.js';
import { makeRoleContext, type Logger, type RoleContext, type RoleHandle } from '../contract/index.js';
import { startRole } from './start-role.js';
import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { openBackends } from './backends.js';
import type { ClusterConfig, RoleConfig } from './config.js';
import {
  AlreadyRunningError,
  readRunInfo,
  removeRunFile,
  runFilePath,
  writeRunFile,
  type RunInfo,
} from './run-file.js';

export interface EmbeddedCluster {
  /** in start order: monitor, router, manager, msg_servers, gateway */
  roles: RoleHandle[];
  /** the gateway's client address, host:port */
  gateway: string;
  /** the monitor's HTTP address, host:port */
  monitor: string;
  /** Stops every role and closes the store; resolves when all is down. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** one log line of a role */
  log: (role: string, id: string, line: string) => void;
  /** called as each role becomes ready (before the next one starts) */
  onReady?: (role: RoleHandle) => void;
}

export async function startEmbedded(config: ClusterConfig, opts: EmbeddedOptions): Promise<EmbeddedCluster> {
  const runFile = runFilePath(config.dir);
  const running = await readRunInfo(config.dir);
  if (running && running.pid !== process.pid) throw new AlreadyRunningError(config.dir, running);

  const platform = await getPlatform();
  const { bus, store } = await openBackends(config, { platform, kind: 'embedded' });
  const ctx = (role: string, id: string): RoleContext =>
    makeRoleContext({
      cluster: config.cluster,
      settings: config.settings,
      auth: { mode: config.auth, secret: config.secret },
      bus,
      store,
      platform,
      log: roleLogger(role, id, opts.log),
    });

  const started: RoleHandle[] = [];
  const start = async (c: RoleConfig) => {
    const handle = await startRole(c.role, ctx(c.role, c.id), c);
    started.push(handle);
    opts.onReady?.(handle);
    return handle;
  };

  // Groups in start order; stopped group by group in the reverse order.
  const groups: RoleHandle[][] = [];
  const one = async (c: RoleConfig) => {
    const handle = await start(c);
    groups.push([handle]);
    return handle;
  };
  let gateway: RoleHandle;
  let monitor: RoleHandle;
  try {
    monitor = await one(config.monitor);
    await one(config.router);
    await one(config.manager);
    const servers: RoleHandle[] = [];
    groups.push(servers);
    for (const ms of config.msgServers) servers.push(await start(ms));
    const seeds = config.msgServers.map(
      (ms, i) => ms.advertise ?? servers[i]!.addresses.tcp ?? bindAddress(ms.host, ms.port),
    );
    const seedWs: Record<string, string> = {};
    for (const [i, addr] of seeds.entries()) {
      const ws = servers[i]!.addresses.ws;
      if (ws !== undefined) seedWs[addr] = ws;
    }
    gateway = await one({ ...config.gateway, seeds, seedWs });
  } catch (err) {
    await stopGroups(groups, bus, store).catch(() => {});
    throw err;
  }

  const gatewayAddr = gateway.addresses.tcp ?? bindAddress(config.gateway.host, config.gateway.port);
  const monitorAddr = monitor.addresses.http ?? bindAddress(config.monitor.httpHost, config.monitor.httpPort);
  const info: RunInfo = {
    pid: process.pid,
    mode: 'embedded',
    gateway: gatewayAddr,
    monitor: monitorAddr,
    roles: started.map((r) => ({ role: r.role, id: r.id, addresses: { ...r.addresses } })),
    startedAt: new Date().toISOString(),
  };
  try {
    await writeRunFile(runFile, info);
  } catch (err) {
    await stopGroups(groups, bus, store).catch(() => {});
    throw new Error(`cannot write ${runFile}: ${(err as Error).message}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    roles: started,
    gateway: gatewayAddr,
    monitor: monitorAddr,
    stop() {
      stopping ??= (async () => {
        try {
          await stopGroups(groups, bus, store);
        } finally {
          await removeRunFile(runFile);
        }
      })();
      return stopping;
    },
  };
}

/**
 * Stops the groups last first (the roles of one group together), then the
 * bus and the store. Between groups the bus delivers what the stopped group
 * published last (a msg_server's logouts reach the manager before it stops).
 * Tries everything; throws the first failure.
 */
async function stopGroups(groups: RoleHandle[][], bus: Bus, store: Store): Promise<void> {
  const errors: Error[] = [];
  for (const group of [...groups].reverse()) {
    const results = await Promise.allSettled(group.map((r) => r.stop()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') errors.push(named(r.reason, group[i]!));
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await bus.close().catch((err: unknown) => errors.push(err as Error));
  await store.close().catch((err: unknown) => errors.push(err as Error));
  if (errors.length > 0) throw errors[0];
}

function named(err: unknown, role: RoleHandle): Error {
  return new Error(`${role.role} ${role.id} did not stop cleanly: ${(err as Error)?.message ?? String(err)}`);
}

export function roleLogger(role: string, id: string, log: EmbeddedOptions['log']): Logger {
  return {
    info: (m) => log(role, id, m),
    warn: (m) => log(role, id, `warning: ${m}`),
    error: (m) => log(role, id, `error: ${m}`),
  };
}
