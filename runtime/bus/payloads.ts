/**
 * What travels on the bus channels of docs/architecture.md, and how: CBOR (cbor-x),
 * an array of items per publish, so a busy publisher sends many items in one
 * message (BatchPublisher flushes once per event-loop turn per channel).
 */
import { cborxDecoder, cborxEncoder } from '../protocol/cborx.js';
import type { FanoutMessage, StoredMessage } from '../store/store.js';
import type { Bus } from './bus.js';

/** `/sysctrl/deliver/<server-id>`: what a msg_server must do for its local connections. */
export type DeliverItem =
  | { k: 'msg'; user: string; msg: StoredMessage }
  /** p2p messages as their push frames, packed (BatchPublisher.addPush, forEachPush): one item per payload */
  | { k: 'pushes'; b: Uint8Array }
  /** a topic message fanned out; `msg.copies` lists only this server's users */
  | { k: 'topic'; msg: FanoutMessage }
  /** end local sessions of user+device whose gen is below `gen` (`replaced`) */
  | { k: 'kick'; user: string; device: string; gen: number }
  /** end every local session of user (of `device` only, when given): the server API's kick */
  | { k: 'kick_admin'; user: string; device?: string };

/** `/sysctrl/topic-sync`: topic messages now in members' inboxes, for the router to push (body once, copies per member). */
export interface TopicSyncItem {
  origin: string;
  msg: FanoutMessage;
}

/** `/sysctrl/topic-status` */
export interface TopicStatusItem {
  k: 'create' | 'join' | 'leave';
  topic: string;
  user: string;
  server: string;
  ts: number;
}

/** `/sysctrl/client-status` */
export interface ClientStatusItem {
  k: 'login' | 'logout' | 'kick';
  user: string;
  device: string;
  server: string;
  gen: number;
  reason?: string;
  ts: number;
}

/** `/sysctrl/monitor`: a beat of one role. */
export interface Beat {
  role: string;
  id: string;
  /** the client address (gateway, msg_server), host:port */
  addr?: string;
  http?: string;
  /** msg_server: its WebSocket URL, when it serves WebSocket (the gateway hands it out) */
  ws?: string;
  pid: number;
  boot: string;
  uptime: number;
  conns: number;
  /** msg_server: its connection limit (the gateway skips a full msg_server) */
  max?: number;
  /** messages (requests) in and frames out per second over the last beat */
  inRate: number;
  outRate: number;
  /** request handling latency over the last beat, ms */
  p50: number;
  p99: number;
  rss: number;
  /** event-loop delay, ms */
  loop: number;
  ts: number;
}

/** A beat's fields as a reader keeps them (the monitor, `fishchat tail`): no send time, no limit. */
export type BeatSummary = Omit<Beat, 'ts' | 'max'>;

/** Text fields of a beat are cut to this many characters. */
const MAX_BEAT_TEXT = 256;

/**
 * A beat as it came off the bus (or from the monitor): known fields only,
 * numbers finite and not negative (0 otherwise), text bounded; null without
 * a role and an id.
 */
export function parseBeat(item: unknown): BeatSummary | null {
  if (!item || typeof item !== 'object') return null;
  const b = item as Partial<Record<keyof Beat, unknown>>;
  const role = beatText(b.role);
  const id = beatText(b.id);
  if (!role || !id) return null;
  const out: BeatSummary = {
    role,
    id,
    pid: beatNum(b.pid),
    boot: beatText(b.boot) ?? '',
    uptime: beatNum(b.uptime),
    conns: beatNum(b.conns),
    inRate: beatNum(b.inRate),
    outRate: beatNum(b.outRate),
    p50: beatNum(b.p50),
    p99: beatNum(b.p99),
    rss: beatNum(b.rss),
    loop: beatNum(b.loop),
  };
  const addr = beatText(b.addr);
  const http = beatText(b.http);
  if (addr) out.addr = addr;
  if (http) out.http = http;
  return out;
}

function beatText(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v.slice(0, MAX_BEAT_TEXT) : undefined;
}

function beatNum(v: unknown): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

export function encodeItems(items: unknown[]): Uint8Array {
  return cborxEncoder.encode(items);
}

/** Decodes a bus payload into its items; a malformed payload yields none. */
export function decodeItems<T>(payload: Uint8Array): T[] {
  try {
    const v = cborxDecoder.decode(payload);
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

/** Body bytes come back from cbor-x as Buffer/Uint8Array; normalise a decoded message. */
export function asStoredMessage(m: StoredMessage): StoredMessage {
  if (!(m.body instanceof Uint8Array)) m.body = new Uint8Array(0);
  return m;
}

/**
 * Collects items per channel and publishes each channel's items as one payload per turn.
 * Pushes (addPush: a user, a seq and the frame to write to that user's
 * connections) are packed into one `pushes` item per payload, so the receiver
 * writes the frames as they are, without decoding and re-encoding messages:
 * (u16 len | user | f64 seq | u32 len | frame) per push.
 */
export class BatchPublisher {
  private pending = new Map<string, unknown[]>();
  private pushes = new Map<string, PushPack>();
  private scheduled = false;

  constructor(private readonly bus: Bus) {}

  add(channel: string, item: unknown): void {
    let list = this.pending.get(channel);
    if (!list) this.pending.set(channel, (list = []));
    list.push(item);
    this.schedule();
  }

  /** A push to `user`'s connections where `channel` leads: `frame` (copied) is what they are written. */
  addPush(channel: string, user: string, seq: number, frame: Uint8Array): void {
    let pack = this.pushes.get(channel);
    if (!pack) this.pushes.set(channel, (pack = new PushPack()));
    pack.add(user, seq, frame);
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    const pushes = this.pushes;
    this.pending = new Map();
    this.pushes = new Map();
    for (const [channel, pack] of pushes) {
      let list = pending.get(channel);
      if (!list) pending.set(channel, (list = []));
      list.push({ k: 'pushes', b: pack.bytes() });
    }
    for (const [channel, items] of pending) this.bus.publish(channel, encodeItems(items));
  };
}

class PushPack {
  private buf = Buffer.allocUnsafe(4096);
  private at = 0;

  add(user: string, seq: number, frame: Uint8Array): void {
    const need = 14 + 3 * user.length + frame.length;
    if (this.at + need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.at + need) size *= 2;
      const next = Buffer.allocUnsafe(size);
      this.buf.copy(next, 0, 0, this.at);
      this.buf = next;
    }
    const b = this.buf;
    const n = b.write(user, this.at + 2, 'utf8');
    b.writeUInt16BE(n, this.at);
    let at = this.at + 2 + n;
    b.writeDoubleBE(seq, at);
    b.writeUInt32BE(frame.length, at + 8);
    b.set(frame, at + 12);
    at += 12 + frame.length;
    this.at = at;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

/**
 * Each push of a `pushes` item, in order. A frame is a view of `b`, and
 * whole (its length prefix matches): a malformed pack ends the walk there.
 * Returns how many were handed over.
 */
export function forEachPush(b: Uint8Array, each: (user: string, seq: number, frame: Uint8Array) => void): number {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
  let at = 0;
  let n = 0;
  while (at + 2 <= buf.length) {
    const ul = buf.readUInt16BE(at);
    if (at + 2 + ul + 12 > buf.length) break;
    const user = buf.toString('utf8', at + 2, at + 2 + ul);
    at += 2 + ul;
    const seq = buf.readDoubleBE(at);
    const fl = buf.readUInt32BE(at + 8);
    at += 12;
    if (fl < 4 || at + fl > buf.length || buf.readUInt32BE(at) !== fl - 4 || !Number.isSafeInteger(seq)) break;
    each(user, seq, buf.subarray(at, at + fl));
    at += fl;
    n++;
  }
  return n;
}
