/** p2p messages: send, ack, sync (docs/protocol.md §4). */
import type { AckReq, SendReq, SyncReq } from '../../protocol/types.js';
import type { AppendResult } from '../../store/store.js';
import type { Conn } from './connection.js';
import type { MsgServer } from './msg_server.js';
import { deliverLocal } from './delivery.js';
import { msgFrame, type PushMessage } from './frames.js';
import { newMid } from './mid.js';

/** What a p2p send stores: the same for a connection's `send` and the server API (api.ts). */
export interface P2PSend {
  to: string;
  /** the raw CBOR of the body, validated (docs/protocol.md §1) */
  body: Uint8Array;
  cid?: string;
}

/**
 * The store call of every p2p send, whoever sends: appends to the recipient's
 * inbox (cid idempotency and seq are the store's), durable when it resolves.
 * Then `delivered` pushes it.
 */
export function storeP2P(s: MsgServer, from: string, m: P2PSend): Promise<AppendResult> {
  const ts = Date.now();
  return s.ctx.store.appendP2P({ from, to: m.to, mid: newMid(ts), body: m.body, ts, cid: m.cid });
}

/**
 * A p2p message is stored: push it to the recipient's sessions, local ones
 * directly, each other msg_server in the directory over its deliver channel.
 * A cid repeat pushes nothing (the first send did).
 */
export function deliverP2P(s: MsgServer, from: string, m: P2PSend, res: AppendResult): void {
  if (res.duplicate) return;
  const msg: PushMessage = { seq: res.seq, mid: res.mid, from, to: m.to, body: m.body, ts: res.ts };
  deliverLocal(s, m.to, msg);
  // The append returned the recipient's directory entries, read in the same atomic step as
  // the seq: publish straight to each other msg_server holding a session (docs/architecture.md: the
  // router hop costs a lookup and a publish per message and gives p2p nothing).
  // It travels as its push frame, which the other msg_server writes as it is.
  const dir = res.sessions;
  next: for (let i = 0; i < dir.length; i++) {
    const server = dir[i]!.server;
    if (server === s.id) continue;
    for (let j = 0; j < i; j++) if (dir[j]!.server === server) continue next; // a user has few devices
    s.pub.addPush(s.ctx.channels.deliver(server), m.to, msg.seq, msgFrame(msg));
  }
}

/** A p2p send as `from`, stored and pushed: the server API's send (a connection's is `send` below). */
export async function sendAs(s: MsgServer, from: string, m: P2PSend): Promise<AppendResult> {
  const res = await storeP2P(s, from, m);
  deliverP2P(s, from, m, res);
  return res;
}

/**
 * send, for a run of a connection's sends (pipeline.ts): each appends to the
 * recipient's inbox at once (the run's appends reach the store together:
 * one group commit / one Redis call), and each is answered once it and every
 * send before it in the run are, so replies keep their order. The ok goes
 * out before the pushes (a send to oneself: the ok first). Callbacks, not
 * an async function per send: one promise per run, however many sends.
 * The senders are logged in and within their rate. Never rejects.
 */
export class SendRun {
  private items: PendingSend[] = [];
  private answered = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly s: MsgServer,
    private readonly conn: Conn,
  ) {}

  get length(): number {
    return this.items.length;
  }

  add(req: SendReq, t0: number): void {
    const p: PendingSend = { req, t0, res: undefined, failure: undefined, settled: false };
    this.items.push(p);
    let append: Promise<AppendResult>;
    try {
      append = storeP2P(this.s, this.conn.user!, req);
    } catch (err) {
      append = Promise.reject(err);
    }
    append.then(
      (res) => {
        p.res = res;
        p.settled = true;
        this.advance();
      },
      (err: unknown) => {
        p.failure = err ?? new Error('append failed');
        p.settled = true;
        this.advance();
      },
    );
  }

  /** Resolves when every send of the run is answered (at once when it is); the run is then empty. */
  finish(): Promise<void> | undefined {
    if (this.answered === this.items.length) {
      this.reset();
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.wake = () => {
        this.reset();
        resolve();
      };
    });
  }

  private reset(): void {
    this.items = [];
    this.answered = 0;
    this.wake = undefined;
  }

  private advance(): void {
    const { s, conn, items } = this;
    while (this.answered < items.length && items[this.answered]!.settled) {
      const p = items[this.answered++]!;
      const res = p.res;
      if (res) {
        conn.reply({ op: 'ok', rid: p.req.rid, mid: res.mid, seq: res.seq, ts: res.ts });
        deliverP2P(s, conn.user!, p.req, res);
      } else {
        s.ctx.log.error(`send failed: ${(p.failure as Error)?.message ?? p.failure}`);
        conn.error('internal', 'server fault; the request may be retried', p.req.rid);
      }
      s.stats.latency(performance.now() - p.t0);
    }
    if (this.answered === items.length) this.wake?.();
  }
}

interface PendingSend {
  req: SendReq;
  t0: number;
  res: AppendResult | undefined;
  failure: unknown;
  settled: boolean;
}

export async function ack(s: MsgServer, conn: Conn, req: AckReq): Promise<void> {
  await s.ctx.store.ack(conn.user!, conn.device, req.seq);
}

export async function sync(s: MsgServer, conn: Conn, req: SyncReq): Promise<void> {
  const { messages, head } = await s.ctx.store.readInbox(conn.user!, req.after, req.limit);
  for (const m of messages) {
    const f = msgFrame(m, req.rid);
    const wait = conn.room(f.length);
    if (wait) await wait;
    if (conn.closing) return;
    conn.write(f);
  }
  s.stats.countOut(messages.length);
  const last = messages.length ? messages[messages.length - 1]!.seq : req.after;
  const more = last < head.seq && head.first <= head.seq;
  conn.reply({ op: 'ok', rid: req.rid, last, more, first: head.first, epoch: head.epoch });
}
