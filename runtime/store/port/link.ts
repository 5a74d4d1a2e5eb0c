/**
 * One end of a link between two threads of one process (embedded mode on
 * several threads, runtime/cluster/embedded.ts): calls with their results,
 * and events, over a MessagePort (node:worker_threads, on Node, Bun and Deno).
 *
 * Batched: everything sent in one event-loop turn goes as ONE postMessage
 * (from setImmediate), in send order. The bytes in it (every Uint8Array found
 * in the values, however deep) are copied once into one ArrayBuffer that is
 * transferred, not cloned: a structured clone of a Uint8Array would copy its
 * whole backing buffer (a body is often a view into a large read buffer). On
 * the other side they arrive as views into that buffer.
 *
 * A message: [CALL, id, method, args] | [RESULT, id, ok, value] | [EVENT, kind, a, b, c].
 */

/** The side of a MessagePort (or a Worker, or parentPort) that the link needs. */
export interface PortLike {
  postMessage(value: unknown, transfer?: ArrayBuffer[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  off?(event: 'message', listener: (value: unknown) => void): unknown;
}

/**
 * At most this many messages wait for the end of the turn: a long turn (a
 * read of many requests) sends as it goes, so the other thread starts on
 * them while this one still works, instead of both taking turns on one
 * huge batch.
 */
const MAX_BATCH = 256;

const CALL = 0;
const RESULT = 1;
const EVENT = 2;

/** A call's failure as it crosses: the message and the name of the error. */
interface Failure {
  message: string;
  name: string;
}

/** What stands for the i-th byte array of a batch (a key no value of ours has). */
const BYTES = '\u0000bytes';

type Batch = [messages: unknown[], bytes: ArrayBuffer | null, offsets: number[]];

export class ThreadLink {
  /** calls from the other side: the result, or a promise of it (a throw rejects the call) */
  onCall: (method: string, args: unknown[]) => unknown = (method) => {
    throw new Error(`no calls served here (${method})`);
  };
  /** events from the other side */
  onEvent: (kind: string, a: unknown, b: unknown, c: unknown) => void = () => {};

  private queue: unknown[] = [];
  private scheduled = false;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private closed = false;
  private readonly listener = (value: unknown): void => this.receive(value as Batch);

  constructor(private readonly port: PortLike) {
    port.on('message', this.listener);
  }

  /** Calls `method` on the other side; resolves with what it returned. */
  call(method: string, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the thread link is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.push([CALL, id, method, args]);
    });
  }

  event(kind: string, a?: unknown, b?: unknown, c?: unknown): void {
    if (!this.closed) this.push(c === undefined ? [EVENT, kind, a, b] : [EVENT, kind, a, b, c]);
  }

  /** Sends what is queued now (not waiting for the end of the turn). */
  flush(): void {
    const msgs = this.queue;
    if (msgs.length === 0) return;
    this.queue = [];
    const bufs: Uint8Array[] = [];
    for (let i = 0; i < msgs.length; i++) msgs[i] = pack(msgs[i], bufs);
    if (bufs.length === 0) {
      this.port.postMessage([msgs, null, []] satisfies Batch);
      return;
    }
    let total = 0;
    for (const b of bufs) total += b.byteLength;
    const buf = new ArrayBuffer(total);
    const all = new Uint8Array(buf);
    const offsets = new Array<number>(bufs.length + 1);
    let at = 0;
    for (let i = 0; i < bufs.length; i++) {
      offsets[i] = at;
      all.set(bufs[i]!, at);
      at += bufs[i]!.byteLength;
    }
    offsets[bufs.length] = at;
    this.port.postMessage([msgs, buf, offsets] satisfies Batch, [buf]);
  }

  /** Later sends are dropped and calls not answered yet reject; sends what was queued first. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.port.off?.('message', this.listener);
    const err = new Error('the thread link is closed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private readonly flushTurn = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private push(msg: unknown): void {
    if (this.queue.push(msg) >= MAX_BATCH) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushTurn);
    }
  }

  private receive([msgs, buf, offsets]: Batch): void {
    const views = buf === null ? undefined : { buf, offsets };
    for (const raw of msgs) {
      const m = (views === undefined ? raw : unpack(raw, views)) as unknown[];
      switch (m[0]) {
        case CALL:
          this.serve(m[1] as number, m[2] as string, m[3] as unknown[]);
          break;
        case RESULT: {
          const p = this.pending.get(m[1] as number);
          if (p === undefined) break;
          this.pending.delete(m[1] as number);
          if (m[2]) p.resolve(m[3]);
          else {
            const f = m[3] as Failure;
            const err = new Error(f.message);
            err.name = f.name;
            p.reject(err);
          }
          break;
        }
        case EVENT:
          this.onEvent(m[1] as string, m[2], m[3], m[4]);
          break;
      }
    }
  }

  private serve(id: number, method: string, args: unknown[]): void {
    let out: unknown;
    try {
      out = this.onCall(method, args);
    } catch (err) {
      this.push([RESULT, id, false, failure(err)]);
      return;
    }
    if (out instanceof Promise) {
      out.then(
        (v) => this.push([RESULT, id, true, v]),
        (err) => this.push([RESULT, id, false, failure(err)]),
      );
    } else this.push([RESULT, id, true, out]);
  }
}

function failure(err: unknown): Failure {
  const e = err as Error | undefined;
  return { message: e?.message ?? String(err), name: e?.name ?? 'Error' };
}

/**
 * `v` with every Uint8Array replaced by {[BYTES]: i} (bufs[i] is the array);
 * arrays and objects are copied only where something below them changed.
 */
function pack(v: unknown, bufs: Uint8Array[]): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) {
    bufs.push(v);
    return { [BYTES]: bufs.length - 1 };
  }
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (e === null || typeof e !== 'object') continue;
      const p = pack(e, bufs);
      if (p !== e) {
        out ??= v.slice();
        out[i] = p;
      }
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | undefined;
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const e = o[k];
    if (e === null || typeof e !== 'object') continue;
    const p = pack(e, bufs);
    if (p !== e) {
      out ??= { ...o };
      out[k] = p;
    }
  }
  return out ?? v;
}

/** pack() undone, in place: the marks become views into the batch's buffer. */
function unpack(v: unknown, views: { buf: ArrayBuffer; offsets: number[] }): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (e !== null && typeof e === 'object') v[i] = unpack(e, views);
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  const i = o[BYTES];
  if (typeof i === 'number') {
    const off = views.offsets[i]!;
    return new Uint8Array(views.buf, off, views.offsets[i + 1]! - off);
  }
  for (const k in o) {
    const e = o[k];
    if (e !== null && typeof e === 'object') o[k] = unpack(e, views);
  }
  return o;
}
