/**
 * The transport seam: the msg_server's session core driven through a tiny
 * in-memory transport (msg_server/transport.ts), no sockets. Login, send,
 * the push to another connection, a kick with its reason, bad input.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus } from '../runtime/bus/memory.js';
import { DEFAULT_SETTINGS } from '../runtime/contract/config.js';
import { makeRoleContext } from '../runtime/contract/context.js';
import { getPlatform } from '../runtime/platform/index.js';
import { openSqliteStore } from '../runtime/store/sqlite/index.js';
import type { Store } from '../runtime/store/store.js';
import { decodeFrame, encodeBody, encodeFrame, RawCbor } from '../runtime/protocol/index.js';
import {
  MsgServer,
  type CloseReason,
  type Transport,
  type TransportHandlers,
} from '../runtime/roles/msg_server/index.js';

/** A duplex of whole maps in memory: what the client sends goes in as map bytes, what the core writes is decoded. */
class MemoryTransport implements Transport {
  readonly remoteAddress = 'memory';
  readonly buffered = 0;
  closed = false;
  closedWith: CloseReason | undefined;
  readonly received: Record<string, unknown>[] = [];
  private h: TransportHandlers | undefined;
  private waiters: (() => void)[] = [];

  start(handlers: TransportHandlers): void {
    this.h = handlers;
  }

  write(frame: Uint8Array): void {
    if (this.closed) return;
    // The contract: each write is one encoded map with its 4-byte length prefix.
    assert.equal(new DataView(frame.buffer, frame.byteOffset).getUint32(0), frame.length - 4);
    this.received.push(decodeFrame(frame.subarray(4)));
    this.wake();
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closedWith = reason;
    this.closed = true;
    this.wake();
    setImmediate(() => this.h?.close());
  }

  /** The client sends maps, all in one read. */
  send(...maps: Record<string, unknown>[]): void {
    for (const m of maps) this.h!.map(encodeFrame(m as never).subarray(4));
    this.h!.readEnd();
  }

  /** The client sends input that cannot be framed (as a transport would report it). */
  sendBad(code: 'bad_frame' | 'frame_too_large'): void {
    this.h!.bad(code);
    this.h!.readEnd();
  }

  /** Waits for the first received map matching `pred`. */
  async next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (let i = 0; i < 200; i++) {
      const m = this.received.find(pred);
      if (m) return m;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 10);
      });
    }
    throw new Error(`no such map; got ${JSON.stringify(this.received)}`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

let dir: string;
let store: Store;
let server: MsgServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fishchat-transport-'));
  const platform = await getPlatform();
  const settings = { ...DEFAULT_SETTINGS };
  const limits = { retentionMs: settings.retentionMs, maxInbox: settings.maxInbox, cidWindowMs: settings.cidWindowMs };
  store = await openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')), limits);
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const auth = { mode: 'none' as const, secret: '' };
  const ctx = makeRoleContext({ cluster: 'seam', settings, auth, bus: createMemoryBus(), store, platform, log });
  const listen = { host: '127.0.0.1', port: 0, httpHost: '127.0.0.1', httpPort: 0 };
  server = new MsgServer(ctx, { role: 'msg_server', id: 'ms-mem', ...listen });
});

after(async () => {
  await server.drainAll();
  server.stats.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function login(user: string): Promise<MemoryTransport> {
  const t = new MemoryTransport();
  server.accept(t);
  t.send({ op: 'login', rid: 1, user });
  const ok = await t.next((m) => m.rid === 1);
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return t;
}

describe('the session core over an in-memory transport', () => {
  it('logs in, sends, pushes to another connection, answers pipelined sends in order', async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    alice.send(
      { op: 'send', rid: 2, to: 'bob', body: new RawCbor(encodeBody('hi')) },
      { op: 'send', rid: 3, to: 'bob', body: new RawCbor(encodeBody('again')) },
      { op: 'ping', rid: 4 },
    );
    const pong = await alice.next((m) => m.rid === 4);
    assert.equal(pong.op, 'pong');
    assert.deepEqual(
      alice.received.slice(1).map((m) => m.rid),
      [2, 3, 4],
    );
    const push = await bob.next((m) => m.op === 'msg' && m.seq === 2);
    assert.equal(push.from, 'alice');
    assert.deepEqual(
      bob.received.filter((m) => m.op === 'msg').map((m) => m.seq),
      [1, 2],
    );
  });

  it('a second login of a device kicks the older with its reason', async () => {
    const first = await login('carol');
    await login('carol');
    const kick = await first.next((m) => m.op === 'kick');
    assert.equal(kick.reason, 'replaced');
    assert.deepEqual(first.closedWith, { why: 'kick', reason: 'replaced' });
  });

  it('closes on a bad frame, after the requests before it are answered', async () => {
    const t = await login('dave');
    t.send({ op: 'ping', rid: 2 });
    t.sendBad('bad_frame');
    const err = await t.next((m) => m.op === 'error');
    assert.equal(err.code, 'bad_frame');
    assert.equal(t.received[1]!.op, 'pong');
    assert.deepEqual(t.closedWith, { why: 'bad_frame' });

    const big = new MemoryTransport();
    server.accept(big);
    big.sendBad('frame_too_large');
    assert.equal((await big.next((m) => m.op === 'error')).code, 'frame_too_large');
    assert.deepEqual(big.closedWith, { why: 'frame_too_large' });
  });

  it('a map that is not a request is bad_frame; logout closes with its reason', async () => {
    const t = new MemoryTransport();
    server.accept(t);
    t.send({ nop: 1 });
    assert.equal((await t.next((m) => m.op === 'error')).code, 'bad_frame');
    assert.deepEqual(t.closedWith, { why: 'bad_frame' });

    const u = await login('erin');
    u.send({ op: 'logout', rid: 2 });
    assert.equal((await u.next((m) => m.rid === 2)).op, 'ok');
    assert.deepEqual(u.closedWith, { why: 'logout' });
  });
});
