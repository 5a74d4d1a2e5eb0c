/**
 * A whole cluster's configuration, after loading and validation (./load.ts
 * reads fishchat.json and the per-role JSON files). The roles' own parts live
 * in the role contract (runtime/contract/config.ts).
 */
import type {
  AuthMode,
  GatewayConfig,
  ManagerConfig,
  MonitorConfig,
  MsgServerConfig,
  RouterConfig,
  RuntimeName,
  Settings,
} from '../contract/config.js';

export * from '../contract/config.js';

export interface ClusterConfig {
  /** absolute path of the cluster directory */
  dir: string;
  /** cluster name; bus channels live under `fishchat:<cluster>:` */
  cluster: string;
  runtime: RuntimeName;
  /** Redis URL; undefined = managed or embedded */
  redis?: string;
  auth: AuthMode;
  /** the HMAC secret tokens are signed with */
  secret: string;
  /** absolute path of the file the secret was read from */
  secretFile: string;
  /** absolute path of the data directory (embedded store) */
  dataDir: string;
  settings: Settings;
  gateway: GatewayConfig;
  msgServers: MsgServerConfig[];
  router: RouterConfig;
  manager: ManagerConfig;
  monitor: MonitorConfig;
}
