/**
 * What each role is configured with, after loading and validation
 * (runtime/cluster/load.ts reads fishchat.json and the per-role JSON files),
 * and the one set of defaults (the store's limits are the store's own, DEFAULT_LIMITS).
 */
import { DEFAULT_LIMITS } from '../store/store.js';

export type RuntimeName = 'node' | 'bun' | 'deno';
export type AuthMode = 'token' | 'none';

/** Settings shared by every role of a cluster (fishchat.json "settings"). */
export interface Settings {
  /** largest frame accepted, bytes (docs/protocol.md §1) */
  maxFrame: number;
  /** ping interval the gateway hands to clients, ms; idle timeout is 2.5× this */
  heartbeat: number;
  /** reconnect backoff handed to clients, ms */
  backoff: { base: number; max: number };
  /** messages pushed right after login before the client must sync */
  loginPush: number;
  /** unsent bytes after which a connection is kicked `slow` */
  maxOutBuffer: number;
  /** inbox retention window, ms */
  retentionMs: number;
  /** messages kept per inbox */
  maxInbox: number;
  /** cid idempotency window, ms (≤ retentionMs) */
  cidWindowMs: number;
  /** interval of monitor beats and lease renewals, ms; a lease lasts 3 beats */
  beat: number;
  /** a connection not logged in within this many ms is closed (a pre-login ping does not extend it) */
  loginTimeout: number;
  /** per-connection token bucket over send and topic_send: `rate` per second, up to `burst` at once; over it: rate_limited */
  sendRate: { rate: number; burst: number };
  /** client connections per msg_server; one more gets `overloaded` and is closed */
  maxConnections: number;
  /** members per topic; a topic_join beyond it gets bad_request ("topic is full") */
  maxTopicMembers: number;
  /**
   * Browser origins ("https://app.example.com") a msg_server's WebSocket takes
   * and the gateway's `GET /v1/route` answers with CORS; "*": any. A request
   * without an Origin header (not a browser) is always served.
   */
  allowedOrigins: string[];
}

export const DEFAULT_SETTINGS: Settings = {
  maxFrame: 65536,
  heartbeat: 20_000,
  backoff: { base: 1000, max: 30_000 },
  loginPush: 1000,
  maxOutBuffer: 1 << 20,
  ...DEFAULT_LIMITS,
  beat: 2000,
  loginTimeout: 10_000,
  sendRate: { rate: 200, burst: 400 },
  maxConnections: 50_000,
  maxTopicMembers: 10_000,
  allowedOrigins: ['*'],
};

/** Whether `origin` (an Origin header, undefined when absent) may use a browser-facing endpoint. */
export function originAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  if (origin === undefined) return true;
  return allowed.includes('*') || allowed.includes(origin);
}

/** The path of a msg_server's WebSocket endpoint (docs/protocol.md §1a). */
export const WS_PATH = '/v1/ws';

export interface GatewayConfig {
  role: 'gateway';
  id: string;
  /** client TCP listener (route) */
  host: string;
  port: number;
  /** HTTP listener (GET /v1/route, /health); port 0 = any free port */
  httpHost: string;
  httpPort: number;
  /** seed list of msg_server addresses (host:port); beats add and drop servers */
  seeds: string[];
  /** the browser chat page at GET /chat on the HTTP listener (default true; false turns it off) */
  chatPage?: boolean;
}

export interface MsgServerConfig {
  role: 'msg_server';
  id: string;
  host: string;
  port: number;
  /** host:port clients should use, when it differs from host:port (NAT, 0.0.0.0) */
  advertise?: string;
  /** HTTP listener: /health, the WebSocket endpoint /v1/ws */
  httpHost: string;
  httpPort: number;
  /**
   * WebSocket clients: true (the default) serves /v1/ws on the HTTP listener and
   * advertises ws://<advertised host>:<httpPort>/v1/ws; a URL advertises that
   * instead (wss:// behind a TLS proxy); false serves no WebSocket.
   */
  ws?: boolean | string;
}

export interface RouterConfig {
  role: 'router';
  id: string;
  httpHost: string;
  httpPort: number;
}

export interface ManagerConfig {
  role: 'manager';
  id: string;
  /** admin HTTP API; binds 127.0.0.1 unless configured otherwise */
  httpHost: string;
  httpPort: number;
}

export interface MonitorConfig {
  role: 'monitor';
  id: string;
  /** /status, /metrics, /events, dashboard; binds 127.0.0.1 unless configured otherwise */
  httpHost: string;
  httpPort: number;
}

export type RoleConfig = GatewayConfig | MsgServerConfig | RouterConfig | ManagerConfig | MonitorConfig;
