/**
 * The role contract: what every role gets (RoleContext) and what it gives
 * back (RoleHandle). A role meets the other roles only through `bus` and
 * `store`; how they were opened (in-process, Redis) is the launcher's business.
 */
import { channels, type Bus, type Channels } from '../bus/bus.js';
import type { Platform } from '../platform/types.js';
import type { Store } from '../store/store.js';
import type { AuthMode, Settings } from './config.js';

/** The five roles (the order they start in is the launcher's business). */
export const ROLE_NAMES = ['gateway', 'msg_server', 'router', 'manager', 'monitor'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

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
  readonly role: RoleName;
  readonly id: string;
  /** where it listens, e.g. { tcp: '127.0.0.1:19000', http: '127.0.0.1:19100' } */
  readonly addresses: { tcp?: string; http?: string; ws?: string };
  /** Stops: a msg_server first kicks `draining` to every client. */
  stop(): Promise<void>;
}

/** A RoleContext but its channels, which follow from the cluster name. */
export type RoleContextOptions = Omit<RoleContext, 'channels'>;

/** The one way a RoleContext is made: the channels follow from the cluster name. */
export function makeRoleContext(o: RoleContextOptions): RoleContext {
  return { ...o, channels: channels(o.cluster) };
}

/** A RoleHandle whose `stop` runs `stop` once: every later call gets the same promise. */
export function roleHandle(
  who: { role: RoleName; id: string; addresses: RoleHandle['addresses'] },
  stop: () => Promise<void>,
): RoleHandle {
  let stopped: Promise<void> | undefined;
  return { ...who, stop: () => (stopped ??= stop()) };
}
