// One socket.io 4.8 server node for the socket.io peer benchmark (bench/peers/socketio/bench.ts).
// Plain JavaScript so that it runs on plain `node` (no loader thread in the measured RSS/CPU).
//
//   node bench/peers/socketio/server.mjs --redis URL --key PREFIX [--parser msgpack|default] [--autopipeline on|off]
//
// Listens on 127.0.0.1, port from the OS, websocket transport only, @socket.io/redis-adapter over
// ioredis. Prints one line `{"ready":true,"port":N,"pid":N}` on stdout when it listens.
// A client whose handshake auth has `recv: true` joins the room named after its `user` (p2p);
// one whose auth has `room: NAME` joins that room (the topic workload: every member in one room).
// `send` {to, body} with an ack: io.to(to).emit('msg', body) (cross-node through Redis), then ack():
// to one receiver's room (p2p) or to the topic's room, every member and the publisher itself
// (at-most-once, nothing stored).
// Exits on SIGTERM/SIGINT, and by itself when its parent process is gone.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import msgpackParser from 'socket.io-msgpack-parser';

const { values } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    key: { type: 'string', default: 'socket.io' },
    parser: { type: 'string', default: 'msgpack' },
    autopipeline: { type: 'string', default: 'on' },
  },
});

function fail(msg) {
  process.stderr.write(`socketio server ${process.pid}: ${msg}\n`);
  process.exit(1);
}

const redisOpts = {
  // Fail fast instead of queueing forever when Redis is not there.
  maxRetriesPerRequest: 3,
  connectTimeout: 5000,
  enableAutoPipelining: values.autopipeline === 'on',
};
const pub = new Redis(values.redis, redisOpts);
const sub = pub.duplicate();
// ioredis retries on its own: say each client's first error (and each new kind) once.
for (const [name, c] of [
  ['pub', pub],
  ['sub', sub],
]) {
  const seen = new Set();
  c.on('error', (e) => {
    if (seen.has(e.message)) return;
    seen.add(e.message);
    process.stderr.write(`redis ${name} error: ${e.message}\n`);
  });
}
const ready = (c) =>
  new Promise((resolve, reject) => {
    if (c.status === 'ready') return resolve();
    const t = setTimeout(() => reject(new Error(`redis ${values.redis} not ready in 5 s`)), 5000);
    c.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
try {
  await Promise.all([ready(pub), ready(sub)]);
} catch (e) {
  fail(e.message);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  ...(values.parser === 'msgpack' ? { parser: msgpackParser } : {}),
  adapter: createAdapter(pub, sub, { key: values.key }),
});

io.on('connection', (socket) => {
  const auth = socket.handshake.auth ?? {};
  if (auth.recv && typeof auth.user === 'string') socket.join(auth.user);
  if (typeof auth.room === 'string' && auth.room !== '') socket.join(auth.room);
  socket.on('send', (m, ack) => {
    if (m && typeof m.to === 'string') io.to(m.to).emit('msg', m.body);
    if (typeof ack === 'function') ack();
  });
});

httpServer.on('error', (e) => fail(`listen: ${e.message}`));
httpServer.listen(0, '127.0.0.1', () => {
  const addr = httpServer.address();
  process.stdout.write(JSON.stringify({ ready: true, port: addr.port, pid: process.pid }) + '\n');
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  const hard = setTimeout(() => process.exit(0), 2000);
  hard.unref();
  io.close(() => {
    pub.disconnect();
    sub.disconnect();
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent load generator owns us: when it is gone, go too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 1000).unref();
