/**
 * The package as others get it: `npm pack`, the tarball put into a fresh
 * project, and there `fishchat` (the runtime) and `fishchat/client` imported
 * by name on Node and on Bun, their .d.ts read by tsc, and the `fishchat` bin
 * run. Packs the dist/ that `npm run build` made (`npm test` builds first).
 *
 * How the tarball is installed, offline and in seconds: `npm install` of it
 * would fetch the dependencies' metadata (this machine's npm cache has none
 * for an offline install: ENOTCACHED) and compile better-sqlite3 from source
 * (minutes). So the tarball is unpacked where npm would put it,
 * node_modules/fishchat/, and each of its declared `dependencies` (only
 * those, so an import of an undeclared package still fails) is a symlink to
 * the repository's installed copy; their own dependencies resolve from there
 * (Node and Bun follow the symlink to the real path). @types/node is linked
 * too, as a TypeScript consumer would have it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** (under `bun test`, process.execPath is Bun) */
const NODE = process.versions.bun ? 'node' : process.execPath;
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};

let project: string;

function link(name: string): void {
  const at = join(project, 'node_modules', name);
  mkdirSync(dirname(at), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', name), at, 'dir');
}

before(() => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'runtime', 'index.js')) && existsSync(join(ROOT, 'oclif.manifest.json')),
    'dist/ is missing: run `npm run build` first (`npm test` does)',
  );
  project = mkdtempSync(join(tmpdir(), 'fishchat-package-'));
  // --ignore-scripts: `prepare` would build again; the test packs what is built.
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', project], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const [info] = JSON.parse(packed) as { filename: string }[];
  const installed = join(project, 'node_modules', 'fishchat');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['xzf', join(project, info!.filename), '-C', installed, '--strip-components=1']);
  for (const name of Object.keys(pkg.dependencies)) link(name);
  link('@types/node');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
});

after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/**
 * Imports both entry points by name, reports the types of the names an
 * embedder uses, and embeds a server: a SQLite store, the in-process bus and
 * a msg_server on port 0, to which a FishClient sends itself a message.
 */
const CONSUMER = `
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as server from 'fishchat';
import * as client from 'fishchat/client';

const names = {};
for (const n of ['startEmbedded', 'loadCluster', 'initCluster', 'openBackends', 'startRole', 'makeRoleContext',
  'openSqliteStore', 'createMemoryBus', 'getPlatform', 'signToken']) names[n] = typeof server[n];
for (const n of ['FishClient', 'route', 'FishError', 'EventStream', 'encodeBody']) {
  names['client.' + n] = typeof client[n];
}

const dir = mkdtempSync(join(tmpdir(), 'fishchat-embed-'));
const platform = await server.getPlatform();
const store = await server.openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')));
const bus = server.createMemoryBus();
const quiet = { info() {}, warn() {}, error() {} };
const ctx = server.makeRoleContext({
  cluster: 'pkg', settings: server.DEFAULT_SETTINGS, auth: { mode: 'none', secret: '' },
  bus, store, platform, log: quiet,
});
const ms = await server.startRole('msg_server', ctx, { role: 'msg_server', id: 'ms-0', host: '127.0.0.1', port: 0,
  httpHost: '127.0.0.1', httpPort: 0 });
const alice = await client.FishClient.connect({ server: ms.addresses.tcp, user: 'alice', reconnect: false });
await alice.send('alice', 'hello');
const { value } = await alice.messages()[Symbol.asyncIterator]().next();
await alice.close();
await ms.stop();
await bus.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ names, platform: platform.name, got: value.body }));
`;

const EXPECTED_NAMES = {
  startEmbedded: 'function',
  loadCluster: 'function',
  initCluster: 'function',
  openBackends: 'function',
  startRole: 'function',
  makeRoleContext: 'function',
  openSqliteStore: 'function',
  createMemoryBus: 'function',
  getPlatform: 'function',
  signToken: 'function',
  'client.FishClient': 'function',
  'client.route': 'function',
  'client.FishError': 'function',
  'client.EventStream': 'function',
  'client.encodeBody': 'function',
};

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { cwd: project, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('the packed package', () => {
  test('holds the entry points and their .d.ts', () => {
    const installed = join(project, 'node_modules', 'fishchat');
    for (const f of ['index.js', 'index.d.ts', 'client/index.js', 'client/index.d.ts']) {
      assert.ok(existsSync(join(installed, 'dist', 'runtime', f)), `dist/runtime/${f} is in the tarball`);
    }
    assert.ok(existsSync(join(installed, 'bin', 'run.js')));
    assert.ok(!existsSync(join(installed, 'test')), 'tests are not shipped');
  });

  for (const runtime of ['node', 'bun'] as const) {
    test(`imports fishchat and fishchat/client on ${runtime}, and embeds a server`, () => {
      writeFileSync(join(project, 'consumer.mjs'), CONSUMER);
      const out = JSON.parse(run(runtime === 'node' ? NODE : BUN, ['consumer.mjs']).trim());
      assert.deepEqual(out, { names: EXPECTED_NAMES, platform: runtime, got: 'hello' });
    });
  }

  test('only the entry points are exported (Node)', () => {
    const r = spawnSync(NODE, ['--input-type=module', '-e', "await import('fishchat/dist/runtime/index.js')"], {
      cwd: project,
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });

  test('tsc finds the types of both entry points', () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      [
        "import { FishClient, type Msg } from 'fishchat/client';",
        "import { startEmbedded, startRole, type EmbeddedCluster, type RoleContext } from 'fishchat';",
        'export const connect: typeof FishClient.connect = FishClient.connect;',
        'export const start: (typeof startEmbedded)[] = [startEmbedded];',
        'export type Used = [Msg, EmbeddedCluster, RoleContext, typeof startRole];',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    run(NODE, [TSC, '-p', 'tsconfig.json']);
  });

  test('the bin runs', () => {
    const out = run(NODE, [join('node_modules', 'fishchat', 'bin', 'run.js'), '--version']);
    assert.match(out, new RegExp(`^fishchat/${pkg.version.replace(/\./g, '\\.')} `));
  });
});
