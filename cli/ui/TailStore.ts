/**
 * What `fishchat tail` shows, kept apart from how it is shown: the roles
 * (last beat, rate history for the sparklines) and a bounded log of events,
 * fed by the monitor's /status (seed) and /events (beats, client-status,
 * topic-status). The Ink view reads immutable snapshots of it through
 * useSyncExternalStore; tests feed it by hand.
 */
import {
  parseBeat,
  type BeatSummary,
  type ClientStatusItem,
  type TopicStatusItem,
} from '../../runtime/bus/payloads.js';
import { MISSED_BEATS } from '../../runtime/metrics/beat.js';
import { DEFAULT_SETTINGS } from '../../runtime/contract/config.js';
import { ROLE_NAMES } from '../../runtime/contract/context.js';
import type { StatusReport } from '../../runtime/roles/monitor/roles.js';

/** Beats of history kept per role (the sparkline's width at most). */
export const HISTORY = 30;
/** Log entries kept. */
export const MAX_LOG = 500;
/** Until two beats of a role were seen, its interval is taken to be this (the cluster default). */
export const DEFAULT_BEAT_MS = DEFAULT_SETTINGS.beat;

/** A role as the view shows it: its last beat, with its state and rate history. */
export interface TailRole extends BeatSummary {
  up: boolean;
  /** when its last beat arrived, by this process's clock (ms) */
  lastBeat: number;
  /** the time between its last two beats (ms) */
  beatMs: number;
  /** msgs/s in and out of the last HISTORY beats, oldest first */
  inHistory: readonly number[];
  outHistory: readonly number[];
}

const CLIENT_KINDS: readonly LogKind[] = ['login', 'logout', 'kick'];
const TOPIC_KINDS: readonly LogKind[] = ['create', 'join', 'leave'];

export type LogKind = 'login' | 'logout' | 'kick' | 'create' | 'join' | 'leave' | 'up' | 'down' | 'restart' | 'monitor';

export interface LogEntry {
  /** 1, 2, 3, ... in arrival order */
  seq: number;
  /** when it happened (the event's own ts when it has one), ms */
  ts: number;
  kind: LogKind;
  text: string;
  /** lower-case text the filter matches against */
  search: string;
}

export type Connection =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'reconnecting'; reason: string; retryInMs: number; attempt: number };

export interface TailSnapshot {
  cluster: string;
  monitor: string;
  connection: Connection;
  /** by role (gateway, msg_server, router, manager, monitor, others), then id */
  roles: readonly TailRole[];
  /** the newest MAX_LOG entries, oldest first */
  log: readonly LogEntry[];
  /** seq of the newest entry (0: none yet) */
  lastSeq: number;
}

export interface TailStoreOptions {
  cluster?: string;
  monitor?: string;
  /** listeners are told at most once per this many ms (0: at once; the CLI uses 100) */
  throttleMs?: number;
  /** the clock (tests) */
  now?: () => number;
}

export class TailStore {
  private readonly roles = new Map<string, TailRole>();
  private log: LogEntry[] = [];
  private seq = 0;
  private cluster: string;
  private readonly monitor: string;
  private connection: Connection = { state: 'connecting' };
  private snapshot: TailSnapshot;
  private readonly listeners = new Set<() => void>();
  private readonly throttleMs: number;
  private readonly now: () => number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dirty = false;

  constructor(options: TailStoreOptions = {}) {
    this.cluster = options.cluster ?? '';
    this.monitor = options.monitor ?? '';
    this.throttleMs = options.throttleMs ?? 0;
    this.now = options.now ?? Date.now;
    this.snapshot = this.build();
  }

  // ------------------------------------------------------------ for React

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): TailSnapshot => this.snapshot;

  /** Stops a pending throttled notification (when the view goes away). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  // ------------------------------------------------------------ input

  /** The monitor's GET /status: every role it knows, as it knows it. */
  seed(report: StatusReport): void {
    const now = this.now();
    if (typeof report.cluster === 'string') this.cluster = report.cluster;
    const serverNow = typeof report.ts === 'number' ? report.ts : now;
    for (const r of report.roles ?? []) {
      const f = parseBeat(r);
      if (!f) continue;
      const age = Math.max(0, serverNow - num(r.lastBeat ?? serverNow));
      const key = keyOf(f.role, f.id);
      const prev = this.roles.get(key);
      this.roles.set(key, {
        ...f,
        up: r.up !== false,
        lastBeat: now - age,
        beatMs: prev?.beatMs ?? DEFAULT_BEAT_MS,
        inHistory: prev?.inHistory ?? [f.inRate],
        outHistory: prev?.outHistory ?? [f.outRate],
      });
    }
    this.changed();
  }

  /** An event from /events by its name; unknown names are ignored. Returns whether it was understood. */
  handle(event: string, data: unknown): boolean {
    switch (event) {
      case 'beat':
        return this.beat(data);
      case 'client-status':
        return this.clientStatus(data);
      case 'topic-status':
        return this.topicStatus(data);
      default:
        return false;
    }
  }

  beat(data: unknown): boolean {
    const f = parseBeat(data);
    if (!f) return false;
    const now = this.now();
    const key = keyOf(f.role, f.id);
    const prev = this.roles.get(key);
    const next: TailRole = {
      ...f,
      up: true,
      lastBeat: now,
      beatMs: prev?.up ? clamp(now - prev.lastBeat, 100, 600_000) : (prev?.beatMs ?? DEFAULT_BEAT_MS),
      inHistory: [...(prev?.inHistory ?? []), f.inRate].slice(-HISTORY),
      outHistory: [...(prev?.outHistory ?? []), f.outRate].slice(-HISTORY),
    };
    this.roles.set(key, next);
    const where = next.addr ?? next.http;
    if (!prev) this.add('up', now, `${next.role} ${next.id}${where ? ` at ${where}` : ''}`);
    else if (prev.boot && next.boot && prev.boot !== next.boot)
      this.add('restart', now, `${next.role} ${next.id} restarted (pid ${next.pid})`);
    else if (!prev.up) this.add('up', now, `${next.role} ${next.id} is beating again`);
    this.changed();
    return true;
  }

  clientStatus(data: unknown): boolean {
    return this.event(data, CLIENT_KINDS, (c: Partial<Record<keyof ClientStatusItem, unknown>>) => {
      const who = `${str(c.user)}/${str(c.device)}`;
      const reason = typeof c.reason === 'string' && c.reason ? c.reason : undefined;
      const on = `on ${str(c.server)}`;
      if (c.k === 'kick') return `${who} ${on}${reason ? `: ${reason}` : ''}`;
      return `${who} ${on}${reason ? ` (${reason})` : ''}`;
    });
  }

  topicStatus(data: unknown): boolean {
    return this.event(data, TOPIC_KINDS, (t: Partial<Record<keyof TopicStatusItem, unknown>>) => {
      const topic = `#${str(t.topic)}`;
      const user = str(t.user);
      const on = `on ${str(t.server)}`;
      if (t.k === 'create') return `${topic} by ${user} ${on}`;
      return t.k === 'join' ? `${user} → ${topic} ${on}` : `${user} ← ${topic} ${on}`;
    });
  }

  /** Marks roles whose beats stopped as down (call it every second or so). */
  tick(): void {
    const now = this.now();
    let any = false;
    for (const [key, r] of this.roles) {
      if (!r.up) continue;
      const silent = now - r.lastBeat;
      if (silent <= r.beatMs * MISSED_BEATS + 500) continue;
      this.roles.set(key, { ...r, up: false });
      this.add('down', now, `${r.role} ${r.id}: no beat for ${Math.round(silent / 1000)} s`);
      any = true;
    }
    if (any) this.changed();
  }

  /** The state of the stream from the monitor; a change is logged too. */
  setConnection(c: Connection): void {
    const before = this.connection.state;
    this.connection = c;
    const now = this.now();
    if (c.state === 'reconnecting' && before !== 'reconnecting')
      this.add('monitor', now, `lost the monitor (${c.reason}); reconnecting`);
    if (c.state === 'live' && before === 'reconnecting') this.add('monitor', now, 'reconnected to the monitor');
    this.changed();
  }

  // ------------------------------------------------------------ internals

  /** A client-status or topic-status item: logged as `text(item)` when its `k` is one of `kinds`. */
  private event<T extends { k?: unknown; ts?: unknown }>(
    data: unknown,
    kinds: readonly LogKind[],
    text: (item: T) => string,
  ): boolean {
    if (!data || typeof data !== 'object') return false;
    const item = data as T;
    if (!kinds.includes(item.k as LogKind)) return false;
    this.add(item.k as LogKind, tsOf(item.ts, this.now()), text(item));
    this.changed();
    return true;
  }

  private add(kind: LogKind, ts: number, text: string): void {
    this.seq++;
    this.log.push({ seq: this.seq, ts, kind, text, search: `${kind} ${text}`.toLowerCase() });
    if (this.log.length > MAX_LOG * 2) this.log = this.log.slice(-MAX_LOG);
  }

  private changed(): void {
    if (this.throttleMs <= 0) {
      this.flush();
      return;
    }
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dirty) this.flush();
    }, this.throttleMs);
    this.timer.unref?.();
  }

  private flush(): void {
    this.dirty = false;
    this.snapshot = this.build();
    for (const l of [...this.listeners]) l();
  }

  private build(): TailSnapshot {
    const roles = [...this.roles.values()].sort(
      (a, b) => rank(a.role) - rank(b.role) || cmp(a.role, b.role) || cmp(a.id, b.id),
    );
    return {
      cluster: this.cluster,
      monitor: this.monitor,
      connection: this.connection,
      roles,
      log: this.log.slice(-MAX_LOG),
      lastSeq: this.seq,
    };
  }
}

/** Does a log entry match the filter text (case-insensitive; every word must appear)? */
export function matches(entry: LogEntry, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  return words.every((w) => entry.search.includes(w));
}

function keyOf(role: string, id: string): string {
  return `${role}\u0000${id}`;
}

function rank(role: string): number {
  // The roles in the order of ROLE_NAMES (gateway first), then any other.
  const i = (ROLE_NAMES as readonly string[]).indexOf(role);
  return i < 0 ? ROLE_NAMES.length : i;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

function str(v: unknown): string {
  return typeof v === 'string' && v ? v : '?';
}

function tsOf(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
