import type { Bus, Channels } from '../bus/bus.js';
import type { AuthMode, Settings } from './config.js';
import type { Platform } from '../platform/types.js';
import type { Store } from '../store/store.js';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** What every role gets: the only ways it meets other roles are `bus` and `store`. */
export interface RoleContext {
  cluster: string;
  channels: Channels;
  settings: Settings;
  auth: { mode: AuthMode; secret: string };
  bus: Bus;
  store: Store;
  platform: Platform;
  log: Logger;
}

/** A running role. */
export interface RoleHandle {
  readonly role: 'gateway' | 'msg_server' | 'router' | 'manager' | 'monitor';
  readonly id: string;
  /** where it listens, e.g. { tcp: '127.0.0.1:19000', http: '127.0.0.1:19100' } */
  readonly addresses: { tcp?: string; http?: string };
  /** Stops: a msg_server first kicks `draining` to every client. */
  stop(): Promise<void>;
}
