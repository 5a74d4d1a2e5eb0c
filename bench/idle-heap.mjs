/**
 * Where the memory of an idle logged-in connection goes: the JS heap of one
 * msg_server, by constructor, per connection.
 *
 *   npm run build && node bench/idle-heap.mjs [--idle 10000] [--transport tcp|ws] [--top 30]
 *   npx bun bench/idle-heap.mjs [...]
 *
 * Plain JavaScript over dist/ on purpose: under tsx every named arrow
 * function gets esbuild's `__name` (a defineProperty), which gives it a
 * 256-byte property dictionary the real build does not have.
 *
 * Starts an embedded cluster in this process (`fishchat init` defaults with
 * one msg_server, every port 0, the limits raised) and then `fishchat bench
 * --gateway … --idle N` as a child process on Node (the clients live there).
 * A heap snapshot is taken after a full GC before the first connection and
 * once all are logged in and settled; the difference by constructor (Node:
 * V8's snapshot, self sizes, property stores and anonymous closures named
 * after their holder; Bun: JSC's snapshot, cell sizes by class), divided by
 * N, is printed largest first, with the platform's memory(true) figures
 * (RSS, heapUsed, external) per connection.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: flags } = parseArgs({
  options: {
    idle: { type: 'string', default: '10000' },
    transport: { type: 'string', default: 'tcp' },
    top: { type: 'string', default: '30' },
    settle: { type: 'string', default: '3' },
  },
});
const N = Number(flags.idle);
const TOP = Number(flags.top);
if (!Number.isSafeInteger(N) || N < 1) throw new Error(`--idle must be a positive integer, found ${flags.idle}`);
if (flags.transport !== 'tcp' && flags.transport !== 'ws') throw new Error('--transport must be tcp or ws');
const root = join(import.meta.dirname, '..');
const isBun = globalThis.Bun !== void 0;
function add(c2, name, bytes) {
  const e = c2.get(name);
  if (e) {
    e.count++;
    e.bytes += bytes;
  } else c2.set(name, { count: 1, bytes });
}
async function v8Census() {
  const v8 = await import('node:v8');
  const file = v8.writeHeapSnapshot(join(tmpdir(), `fishchat-idle-${process.pid}-${Date.now()}.heapsnapshot`));
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  rmSync(file, { force: true });
  const meta = snap.snapshot.meta;
  const f = meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const iEdges = f.indexOf('edge_count');
  const ew = meta.edge_fields.length;
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const edgeTypes = meta.edge_types[0];
  const types = meta.node_types[0];
  const nodes = snap.nodes;
  const nameOf = (n) => snap.strings[nodes[n + iName]];
  const typeOf = (n) => types[nodes[n + iType]];
  const anonymous = (n) =>
    typeOf(n) === 'closure' ||
    (typeOf(n) === 'object' && nameOf(n) === 'Object') ||
    typeOf(n) === 'string' ||
    typeOf(n) === 'concatenated string' ||
    (typeOf(n) === 'array' &&
      (nameOf(n) === '' || nameOf(n) === '(object properties)' || nameOf(n) === '(object elements)'));
  const holder = new Map();
  const holderNode = new Map();
  for (let n = 0, e = 0; n < nodes.length; n += width) {
    const count = nodes[n + iEdges];
    for (let k = 0; k < count; k++, e += ew) {
      const to = snap.edges[e + eTo];
      if (holder.has(to) || !anonymous(to)) continue;
      const et = edgeTypes[snap.edges[e + eType]];
      if (et === 'weak') continue;
      const en = et === 'element' || et === 'hidden' ? '[]' : snap.strings[snap.edges[e + eName]];
      holder.set(to, `${nameOf(n) || typeOf(n)}.${en}`);
      holderNode.set(to, n);
    }
  }
  const c2 = new Map();
  for (let n = 0; n < nodes.length; n += width) {
    const type = typeOf(n);
    const name = nameOf(n);
    let held = holder.get(n);
    const h = holderNode.get(n);
    if (h !== void 0 && (typeOf(h) === 'closure' || nameOf(n) === '(object properties)'))
      held = `${held} (closure ${nameOf(h) || '(anonymous)'} in ${holder.get(h)})`;
    const key =
      held !== void 0
        ? `${type} ${type.endsWith('string') ? '' : name || '(anonymous)'} in ${held}`
        : type === 'object' || type === 'closure' || type === 'native' || type === 'array' || type === 'hidden'
          ? `${type} ${name}`
          : `(${type})`;
    add(c2, key, nodes[n + iSize]);
  }
  return c2;
}
function jscCensus() {
  const snap = globalThis.Bun.generateHeapSnapshot();
  const c2 = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += 4) add(c2, snap.nodeClassNames[nodes[i + 2]], nodes[i + 1]);
  return c2;
}
async function census() {
  return isBun ? jscCensus() : v8Census();
}
const dir = mkdtempSync(join(tmpdir(), 'fishchat-idle-heap-'));
const lib = await import(join(root, 'dist', 'runtime', 'cluster', 'index.js'));
await lib.initCluster(dir, { msgServers: 1 });
const clusterFile = join(dir, 'fishchat.json');
const file = JSON.parse(readFileSync(clusterFile, 'utf8'));
file.cluster = `heap${process.pid}`;
file.settings = {
  ...file.settings,
  loginTimeout: 60000,
  maxConnections: 10000000,
  sendRate: { rate: 1e6, burst: 1e7 },
};
writeFileSync(clusterFile, JSON.stringify(file));
for (const f of file.roles) {
  const role = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  if ('port' in role) role.port = 0;
  if ('httpPort' in role) role.httpPort = 0;
  writeFileSync(join(dir, f), JSON.stringify(role));
}
const config = await lib.loadCluster(dir);
const cluster = await lib.startEmbedded(config, { log: () => {} });
const msgServer = cluster.roles.find((r) => r.role === 'msg_server');
const platform = await (await import(join(root, 'dist', 'runtime', 'platform', 'index.js'))).getPlatform();
const mem0 = platform.memory(true);
const before = await census();
const mem1 = platform.memory(true);
const bin = join(root, 'bin', 'run.js');
const args = [
  bin,
  'bench',
  '--gateway',
  cluster.gateway,
  '--secret',
  config.secret,
  '--idle',
  String(N),
  '--transport',
  flags.transport,
  '--warmup',
  '1',
  '--duration',
  '600',
];
// The load generator runs on Node (as `fishchat bench` does): only the server runtime differs.
const child = spawn(isBun ? 'node' : process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
let err = '';
await new Promise((resolve, reject) => {
  const timer = setTimeout(
    () =>
      reject(
        new Error(`no "logged in" within 300 s:
${err}`),
      ),
    3e5,
  );
  child.stderr.on('data', (d) => {
    // Only the tail: a string grown by += would be in the census.
    err = (err + d.toString('utf8')).slice(-2000);
    if (/idle clients logged in/.test(err)) {
      clearTimeout(timer);
      resolve();
    }
  });
  child.on('exit', (code) =>
    reject(
      new Error(`bench exited (${code}):
${err}`),
    ),
  );
});
await new Promise((r) => setTimeout(r, Number(flags.settle) * 1e3));
const mem2 = platform.memory(true);
const afterCensus = await census();
const mem3 = platform.memory(true);
const conns = await (await fetch(`http://${msgServer.addresses.http}/health`)).json();
child.kill('SIGINT');
const rows = [...new Set([...before.keys(), ...afterCensus.keys()])]
  .map((k) => {
    const a = before.get(k) ?? { count: 0, bytes: 0 };
    const b = afterCensus.get(k) ?? { count: 0, bytes: 0 };
    return { k, count: (b.count - a.count) / N, bytes: (b.bytes - a.bytes) / N };
  })
  .sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((s, r) => s + r.bytes, 0);
const per = (a, b) => Math.round((b - a) / N);
console.log(
  `${isBun ? 'bun' : 'node'} ${process.version}, ${flags.transport}, ${N} idle connections (${conns.connections} on the msg_server)`,
);
console.log(
  `per connection, after a full GC: RSS ${per(mem0.rss, mem2.rss)} B, heapUsed ${per(mem1.heapUsed, mem2.heapUsed)} B, external ${per(mem1.external, mem2.external)} B, arrayBuffers ${per(mem1.arrayBuffers, mem2.arrayBuffers)} B (heapUsed after the 2nd snapshot: ${per(mem1.heapUsed, mem3.heapUsed)})`,
);
console.log(`heap snapshot difference per connection: ${Math.round(total)} B`);
console.log('   bytes/conn  objects/conn  what');
for (const r of rows.slice(0, TOP))
  console.log(`${r.bytes.toFixed(0).padStart(12)}  ${r.count.toFixed(2).padStart(12)}  ${r.k}`);
await new Promise((r) => setTimeout(r, 1e3));
await cluster.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
