/**
 * Every default of a cluster directory, in one place: file names, hosts and
 * ports, fishchat.json's fields, the default roles. The settings' defaults
 * are the roles' (DEFAULT_SETTINGS, runtime/contract/config.ts, whose store
 * limits are the store's own).
 */
import { join } from 'node:path';
import {
  DEFAULT_SETTINGS,
  type AuthMode,
  type RoleConfig,
  type RuntimeName,
  type Settings,
} from '../contract/config.js';

export const CLUSTER_FILE = 'fishchat.json';
/** Where `up` records what it started (see RunInfo). */
export const RUN_FILE = join('.fishchat', 'run.json');

export const DEFAULT_HOST = '127.0.0.1';
/** Default ports (docs/architecture.md "Roles"); msg_server n listens on 19000 + n, HTTP 19100 + n. */
export const DEFAULT_PORTS = {
  gateway: 17000,
  gatewayHttp: 17080,
  msgServer: 19000,
  msgServerHttp: 19100,
  router: 20000,
  manager: 18000,
  monitor: 21000,
} as const;
/** `fishchat init --msg-servers` range: beyond 100 the msg_server ports would reach the HTTP ones. */
export const MAX_MSG_SERVERS = 100;

/** fishchat.json as written on disk (every field optional when loading). */
export interface ClusterFile {
  cluster: string;
  runtime: RuntimeName;
  redis: string | null;
  auth: AuthMode;
  secretFile: string;
  dataDir: string;
  settings: Partial<Settings>;
  roles: string[];
}

/** A role file as written on disk. */
export interface RoleFile {
  role: RoleConfig['role'];
  id: string;
  host?: string;
  port?: number;
  advertise?: string;
  httpHost?: string;
  httpPort?: number;
  seeds?: string[];
  /** gateway: false turns the browser chat page (GET /chat) off */
  chatPage?: boolean;
}

/** fishchat.json's fields when it leaves them out (or does not exist). */
export const CLUSTER_DEFAULTS = {
  cluster: 'local',
  runtime: 'node',
  redis: null,
  auth: 'token',
  secretFile: join('.fishchat', 'secret'),
  dataDir: join('.fishchat', 'data'),
} as const satisfies Omit<ClusterFile, 'settings' | 'roles'>;

/** The cluster file as written by `fishchat init` with `msgServers` msg_servers. */
export function defaultClusterFile(msgServers = 2): ClusterFile {
  return {
    ...CLUSTER_DEFAULTS,
    settings: structuredClone(DEFAULT_SETTINGS),
    roles: defaultRoleFiles(msgServers).map((r) => r.file),
  };
}

/** The per-role files of the default cluster, in start order of their names. */
export function defaultRoleFiles(msgServers = 2): { file: string; config: RoleFile }[] {
  const files: { file: string; config: RoleFile }[] = [
    {
      file: 'gateway.json',
      config: {
        role: 'gateway',
        id: 'gateway',
        host: DEFAULT_HOST,
        port: DEFAULT_PORTS.gateway,
        httpHost: DEFAULT_HOST,
        httpPort: DEFAULT_PORTS.gatewayHttp,
      },
    },
  ];
  for (let i = 0; i < msgServers; i++) {
    const port = DEFAULT_PORTS.msgServer + i;
    files.push({
      file: `msg_server.${port}.json`,
      config: {
        role: 'msg_server',
        id: `ms-${port}`,
        host: DEFAULT_HOST,
        port,
        httpHost: DEFAULT_HOST,
        httpPort: DEFAULT_PORTS.msgServerHttp + i,
      },
    });
  }
  files.push(
    {
      file: 'router.json',
      config: { role: 'router', id: 'router', httpHost: DEFAULT_HOST, httpPort: DEFAULT_PORTS.router },
    },
    ...DEFAULT_ADMIN_ROLES.map((role) => defaultAdminRoleFile(role)),
  );
  return files;
}

/** Roles a "roles" list written before them may leave out: they then run with their defaults. */
export const DEFAULT_ADMIN_ROLES = ['manager', 'monitor'] as const;

/** manager.json / monitor.json as `init` writes them: HTTP on 127.0.0.1 (docs/architecture.md "Security"). */
export function defaultAdminRoleFile(role: (typeof DEFAULT_ADMIN_ROLES)[number]): { file: string; config: RoleFile } {
  return { file: `${role}.json`, config: { role, id: role, httpHost: DEFAULT_HOST, httpPort: DEFAULT_PORTS[role] } };
}

/** The settings of a cluster: DEFAULT_SETTINGS with what fishchat.json sets (checked) on top. */
export function mergeSettings(partial: Partial<Settings> | undefined): Settings {
  const s = structuredClone(DEFAULT_SETTINGS);
  if (!partial) return s;
  const backoff = { ...(partial.backoff ?? s.backoff) };
  return { ...s, ...partial, backoff, sendRate: { ...(partial.sendRate ?? s.sendRate) } };
}
