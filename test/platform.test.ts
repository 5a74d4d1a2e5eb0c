/**
 * The platform layer over real sockets on 127.0.0.1: runs on Node
 * (`node --import tsx --test`) and on Bun (`bun test`), each against its own
 * adapter.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Hono } from 'hono';
import { AddressInUseError, getPlatform, type Platform, type TcpSocket } from '../runtime/platform/index.js';
import { sleep, until } from './helpers/wait.js';

const HOST = '127.0.0.1';
let platform: Platform;

before(async () => {
  platform = await getPlatform();
});

/** A 4-byte big-endian length prefix + payload, as the protocol frames. */
function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Splits a byte stream back into frames, whatever the chunking. */
class Deframer {
  #buf = new Uint8Array(0);
  readonly frames: Uint8Array[] = [];
  push(chunk: Uint8Array): void {
    const b = new Uint8Array(this.#buf.length + chunk.length);
    b.set(this.#buf);
    b.set(chunk, this.#buf.length);
    let at = 0;
    while (b.length - at >= 4) {
      const len = new DataView(b.buffer, b.byteOffset + at).getUint32(0);
      if (b.length - at - 4 < len) break;
      this.frames.push(b.slice(at + 4, at + 4 + len));
      at += 4 + len;
    }
    this.#buf = b.slice(at);
  }
}

function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** An echo server counting the data events it sees. */
async function echoServer() {
  const sockets: TcpSocket[] = [];
  let dataEvents = 0;
  const listener = await platform.listenTcp({
    host: HOST,
    port: 0,
    onConnection: (s) => {
      sockets.push(s);
      s.onData((chunk) => {
        dataEvents++;
        s.write(chunk);
      });
    },
  });
  return { listener, sockets, dataEvents: () => dataEvents };
}

describe(`platform (${typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined' ? 'bun' : 'node'})`, () => {
  test('getPlatform is chosen once and names the runtime', async () => {
    const again = await getPlatform();
    assert.equal(again, platform);
    assert.equal(platform.name, typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined' ? 'bun' : 'node');
  });

  test('listen on port 0 reports the real port; echo of many frames', async () => {
    const srv = await echoServer();
    assert.ok(srv.listener.port > 0);
    assert.equal(srv.listener.host, HOST);
    const client = await platform.connectTcp(HOST, srv.listener.port);
    assert.equal(client.remotePort, srv.listener.port);
    assert.equal(client.remoteAddress, HOST);
    const de = new Deframer();
    client.onData((c) => de.push(c));
    const N = 5000;
    for (let i = 0; i < N; i++) client.write(frame(pattern(i % 300, i)));
    await until(() => de.frames.length === N, 10000, 'echoed frames');
    for (let i = 0; i < N; i++) assert.deepEqual(de.frames[i], pattern(i % 300, i));
    // 5000 writes in one turn reach the kernel in one write, so the server
    // sees a handful of reads, not thousands.
    assert.ok(srv.dataEvents() < 100, `server saw ${srv.dataEvents()} data events`);
    client.destroy();
    await srv.listener.close();
  });

  test('frames written over many turns all arrive, in order', async () => {
    const srv = await echoServer();
    const client = await platform.connectTcp(HOST, srv.listener.port);
    const de = new Deframer();
    client.onData((c) => de.push(c));
    for (let t = 0; t < 200; t++) {
      for (let i = 0; i < 10; i++) client.write(frame(pattern(17, t * 10 + i)));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => de.frames.length === 2000, 10000, 'frames');
    for (let i = 0; i < 2000; i++) assert.deepEqual(de.frames[i], pattern(17, i));
    client.destroy();
    await srv.listener.close();
  });

  test('a large write to a peer that does not read: buffered, then onDrain', async () => {
    const SIZE = 48 * 1024 * 1024;
    const big = pattern(SIZE, 7);
    let server!: TcpSocket;
    const listener = await platform.listenTcp({
      host: HOST,
      port: 0,
      onConnection: (s) => {
        server = s;
      },
    });
    // A node:net peer that stays paused until we let it read.
    const peer = net.connect(listener.port, HOST);
    peer.pause();
    const received: Buffer[] = [];
    let got = 0;
    peer.on('data', (d: Buffer) => {
      received.push(d);
      got += d.length;
    });
    await until(() => server !== undefined, 5000, 'connection');
    let drains = 0;
    server.onDrain(() => drains++);
    server.write(big);
    assert.equal(server.buffered, SIZE);
    await sleep(200);
    assert.ok(server.buffered > 0, 'the kernel cannot take 48 MiB at once');
    assert.equal(drains, 0);
    peer.resume();
    await until(() => drains === 1, 20000, 'onDrain');
    assert.equal(server.buffered, 0);
    await until(() => got === SIZE, 20000, 'all bytes');
    assert.ok(Buffer.concat(received).equals(Buffer.from(big)));
    server.destroy();
    peer.destroy();
    await listener.close();
  });

  test('end() flushes what is queued, then closes; both sides see close', async () => {
    const SIZE = 8 * 1024 * 1024;
    let serverClosed = false;
    const listener = await platform.listenTcp({
      host: HOST,
      port: 0,
      onConnection: (s) => {
        s.onClose(() => (serverClosed = true));
        s.write(pattern(SIZE, 3));
        s.write(frame(pattern(10)));
        s.end();
        s.write(pattern(10)); // after end(): dropped, no throw
      },
    });
    const client = await platform.connectTcp(HOST, listener.port);
    const chunks: Uint8Array[] = [];
    let got = 0;
    let clientClosed = false;
    client.onData((c) => {
      chunks.push(c);
      got += c.length;
    });
    client.onClose(() => (clientClosed = true));
    await until(() => clientClosed, 20000, 'client close');
    assert.equal(got, SIZE + 14);
    assert.ok(
      Buffer.concat(chunks)
        .subarray(0, SIZE)
        .equals(Buffer.from(pattern(SIZE, 3))),
    );
    assert.equal(client.closed, true);
    await until(() => serverClosed, 5000, 'server close');
    client.write(pattern(10)); // closed: dropped, no throw
    await listener.close();
  });

  test('data sent before onData is set is kept', async () => {
    const listener = await platform.listenTcp({
      host: HOST,
      port: 0,
      onConnection: (s) => {
        s.write(frame(pattern(5, 1)));
        setTimeout(() => s.write(frame(pattern(5, 2))), 100);
        setTimeout(() => s.end(), 150);
      },
    });
    const client = await platform.connectTcp(HOST, listener.port);
    await sleep(50);
    const de = new Deframer();
    client.onData((c) => de.push(c));
    await until(() => de.frames.length === 2, 5000, 'frames');
    assert.deepEqual(de.frames[0], pattern(5, 1));
    assert.deepEqual(de.frames[1], pattern(5, 2));
    client.destroy();
    await listener.close();
  });

  test('destroy() and a peer reset close without throwing', async () => {
    const srv = await echoServer();
    const a = await platform.connectTcp(HOST, srv.listener.port);
    let aClosed = 0;
    a.onClose(() => aClosed++);
    a.onData(() => {});
    await until(() => srv.sockets.length === 1, 5000, 'accept');
    let serverClosed = false;
    srv.sockets[0]!.onClose(() => (serverClosed = true));
    a.write(pattern(1000));
    a.destroy();
    assert.equal(a.closed, true);
    await until(() => serverClosed, 5000, 'server close on peer destroy');
    // Writing to a socket whose peer is gone must not throw nor crash.
    srv.sockets[0]!.write(pattern(100000));
    srv.sockets[0]!.end();
    await sleep(50);
    await until(() => aClosed === 1, 5000, 'a close');

    // A raw peer that resets the connection while the server writes to it.
    const raw = net.connect(srv.listener.port, HOST);
    raw.on('error', () => {});
    await until(() => srv.sockets.length === 2, 5000, 'accept 2');
    const b = srv.sockets[1]!;
    let bClosed = false;
    b.onClose(() => (bClosed = true));
    raw.resetAndDestroy?.() ?? raw.destroy();
    for (let i = 0; i < 20; i++) {
      b.write(pattern(64 * 1024));
      await sleep(5);
    }
    await until(() => bClosed, 5000, 'close after reset');
    assert.equal(b.closed, true);
    await srv.listener.close();
  });

  test('onClose set after the close still fires', async () => {
    const listener = await platform.listenTcp({ host: HOST, port: 0, onConnection: (s) => s.destroy() });
    const client = await platform.connectTcp(HOST, listener.port);
    client.onData(() => {});
    await until(() => client.closed, 5000, 'closed');
    await sleep(20);
    let fired = false;
    client.onClose(() => (fired = true));
    await until(() => fired, 1000, 'late onClose');
    await listener.close();
  });

  test('listener.close() stops accepting but keeps open sockets', async () => {
    const srv = await echoServer();
    const client = await platform.connectTcp(HOST, srv.listener.port);
    const de = new Deframer();
    client.onData((c) => de.push(c));
    await srv.listener.close();
    await assert.rejects(platform.connectTcp(HOST, srv.listener.port));
    client.write(frame(pattern(3)));
    await until(() => de.frames.length === 1, 5000, 'echo after listener close');
    client.destroy();
  });

  test('a taken port is AddressInUseError (EADDRINUSE)', async () => {
    const listener = await platform.listenTcp({ host: HOST, port: 0, onConnection: (s) => s.destroy() });
    await assert.rejects(
      platform.listenTcp({ host: HOST, port: listener.port, onConnection: () => {} }),
      (err: unknown) => {
        assert.ok(err instanceof AddressInUseError);
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.port, listener.port);
        return true;
      },
    );
    await assert.rejects(
      platform.serveHttp({ host: HOST, port: listener.port, fetch: () => new Response('x') }),
      (err: unknown) => err instanceof AddressInUseError,
    );
    await listener.close();
  });

  test('connectTcp to a closed port rejects', async () => {
    const listener = await platform.listenTcp({ host: HOST, port: 0, onConnection: () => {} });
    const port = listener.port;
    await listener.close();
    await assert.rejects(platform.connectTcp(HOST, port));
  });

  describe('http', () => {
    let http: Awaited<ReturnType<Platform['serveHttp']>>;
    before(async () => {
      const app = new Hono();
      app.get('/health', (c) => c.json({ ok: true }));
      app.post('/echo', async (c) => c.text(await c.req.text()));
      http = await platform.serveHttp({ host: HOST, port: 0, fetch: app.fetch });
    });
    after(async () => {
      await http.close();
    });

    test('serves a Hono app on the real port', async () => {
      assert.ok(http.port > 0);
      const res = await fetch(`http://${HOST}:${http.port}/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true });
      const echo = await fetch(`http://${HOST}:${http.port}/echo`, { method: 'POST', body: 'fish' });
      assert.equal(await echo.text(), 'fish');
      const missing = await fetch(`http://${HOST}:${http.port}/nope`);
      assert.equal(missing.status, 404);
      await missing.text();
    });
  });
});
