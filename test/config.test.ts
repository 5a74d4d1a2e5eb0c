/**
 * Cluster configuration: defaults, `init` templates, and every validation
 * error naming the file, the field, what was expected and what was found.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_SETTINGS } from '../runtime/cluster/config.js';
import { initCluster, InitRefusedError, templatesDir } from '../runtime/cluster/init.js';
import {
  ConfigError,
  defaultClusterFile,
  defaultRoleFiles,
  isLoopback,
  loadCluster,
  parseHostPort,
  type LoadOverrides,
} from '../runtime/cluster/index.js';

const SECRET = 'test-secret-0123456789abcdef';
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-config-'));
  dirs.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

type Files = Record<string, unknown>;

/** The default cluster as files, for a test to change before writing. */
function defaultFiles(): Files {
  const files: Files = { 'fishchat.json': defaultClusterFile() };
  for (const { file, config } of defaultRoleFiles()) files[file] = { ...config };
  return files;
}

async function writeCluster(files: Files): Promise<string> {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

async function loadFiles(files: Files, overrides: LoadOverrides = { secret: SECRET }) {
  return loadCluster(await writeCluster(files), overrides);
}

/** Loads and expects a ConfigError naming `file` and `field`, whose message contains every `parts`. */
async function expectError(files: Files, file: string, field: string | undefined, ...parts: (string | RegExp)[]) {
  await assert.rejects(loadFiles(files), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.file, file, err.message);
    assert.equal(err.field, field, err.message);
    assert.ok(err.message.startsWith(`${file}: `), `message starts with the file: ${err.message}`);
    if (field !== undefined) assert.ok(err.message.includes(`"${field}"`), `message names the field: ${err.message}`);
    for (const p of parts) {
      if (typeof p === 'string')
        assert.ok(err.message.includes(p), `message contains ${JSON.stringify(p)}: ${err.message}`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

function obj(files: Files, name: string): Record<string, unknown> {
  return files[name] as Record<string, unknown>;
}

describe('defaults', () => {
  test('a directory without fishchat.json runs with the defaults, creating the secret (0600) on request', async () => {
    const dir = await tempDir();
    let created: string | undefined;
    const c = await loadCluster(dir, { env: {}, createSecret: true, onSecretCreated: (p) => (created = p) });
    assert.equal(c.dir, dir);
    assert.equal(c.cluster, 'local');
    assert.equal(c.runtime, 'node');
    assert.equal(c.redis, undefined);
    assert.equal(c.auth, 'token');
    assert.deepEqual(c.settings, DEFAULT_SETTINGS);
    assert.equal(c.dataDir, join(dir, '.fishchat', 'data'));
    assert.equal(c.secretFile, join(dir, '.fishchat', 'secret'));
    assert.equal(created, c.secretFile);
    assert.match(c.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await stat(c.secretFile)).mode & 0o777, 0o600);
    assert.equal((await readFile(c.secretFile, 'utf8')).trim(), c.secret);

    assert.deepEqual(c.gateway, {
      role: 'gateway',
      id: 'gateway',
      host: '127.0.0.1',
      port: 17000,
      httpHost: '127.0.0.1',
      httpPort: 17080,
      seeds: ['127.0.0.1:19000', '127.0.0.1:19001'],
      // their WebSocket URLs, known from the role files: a route right after the start names them
      seedWs: {
        '127.0.0.1:19000': 'ws://127.0.0.1:19100/v1/ws',
        '127.0.0.1:19001': 'ws://127.0.0.1:19101/v1/ws',
      },
    });
    assert.deepEqual(c.msgServers, [
      { role: 'msg_server', id: 'ms-19000', host: '127.0.0.1', port: 19000, httpHost: '127.0.0.1', httpPort: 19100 },
      { role: 'msg_server', id: 'ms-19001', host: '127.0.0.1', port: 19001, httpHost: '127.0.0.1', httpPort: 19101 },
    ]);
    assert.deepEqual(c.router, { role: 'router', id: 'router', httpHost: '127.0.0.1', httpPort: 20000 });
    assert.deepEqual(c.manager, { role: 'manager', id: 'manager', httpHost: '127.0.0.1', httpPort: 18000 });
    assert.deepEqual(c.monitor, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 21000 });

    // The second load reads the same secret.
    const again = await loadCluster(dir, {
      env: {},
      createSecret: true,
      onSecretCreated: () => assert.fail('created twice'),
    });
    assert.equal(again.secret, c.secret);
  });

  test('without the secret file and without createSecret, the error names the secret file', async () => {
    const dir = await tempDir();
    await assert.rejects(loadCluster(dir, { env: {} }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.file, join('.fishchat', 'secret'));
      assert.match(err.message, /does not exist/);
      assert.match(err.message, /fishchat init/);
      return true;
    });
  });

  test('FISHCHAT_SECRET overrides the secret file; a short one is refused', async () => {
    const dir = await tempDir();
    const c = await loadCluster(dir, { env: { FISHCHAT_SECRET: SECRET } });
    assert.equal(c.secret, SECRET);
    await assert.rejects(
      loadCluster(dir, { env: { FISHCHAT_SECRET: 'short' } }),
      /FISHCHAT_SECRET: the secret must be at least 16 characters/,
    );
  });

  test('settings are optional one by one; the rest keep their defaults', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { heartbeat: 500, backoff: { base: 10 } };
    const c = await loadFiles(files);
    assert.deepEqual(c.settings, {
      ...DEFAULT_SETTINGS,
      heartbeat: 500,
      backoff: { base: 10, max: DEFAULT_SETTINGS.backoff.max },
    });
  });

  test('fishchat.json fields are optional; paths are relative to the cluster directory', async () => {
    const c = await loadFiles({ 'fishchat.json': { dataDir: 'data', secretFile: 'keys/secret' } });
    assert.equal(c.dataDir, join(c.dir, 'data'));
    assert.equal(c.secretFile, join(c.dir, 'keys', 'secret'));
    assert.equal(c.msgServers.length, 2);
  });

  test('port 0 (any free port) is valid and never clashes', async () => {
    const files = defaultFiles();
    for (const name of Object.keys(files)) {
      if (name === 'fishchat.json') continue;
      const f = obj(files, name);
      if ('port' in f) f.port = 0;
      f.httpPort = 0;
    }
    const c = await loadFiles(files);
    assert.equal(c.gateway.port, 0);
    assert.equal(c.manager.httpPort, 0);
    assert.equal(c.monitor.httpPort, 0);
    assert.deepEqual(
      c.msgServers.map((m) => [m.port, m.httpPort]),
      [
        [0, 0],
        [0, 0],
      ],
    );
  });

  test('limits: defaults, and sendRate set in part', async () => {
    assert.equal(DEFAULT_SETTINGS.loginTimeout, 10_000);
    assert.deepEqual(DEFAULT_SETTINGS.sendRate, { rate: 200, burst: 400 });
    assert.equal(DEFAULT_SETTINGS.maxConnections, 50_000);
    assert.equal(DEFAULT_SETTINGS.maxTopicMembers, 10_000);
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = {
      loginTimeout: 500,
      maxConnections: 3,
      maxTopicMembers: 7,
      sendRate: { rate: 1000 },
    };
    const c = await loadFiles(files);
    assert.deepEqual(c.settings, {
      ...DEFAULT_SETTINGS,
      loginTimeout: 500,
      maxConnections: 3,
      maxTopicMembers: 7,
      sendRate: { rate: 1000, burst: 2000 },
    });
    obj(files, 'fishchat.json').settings = { sendRate: { burst: 50 } };
    assert.deepEqual((await loadFiles(files)).settings.sendRate, { rate: 200, burst: 50 });
    obj(files, 'fishchat.json').settings = { maxFrame: 1024, maxOutBuffer: 1024 };
    assert.equal((await loadFiles(files)).settings.maxOutBuffer, 1024);
  });

  test('a shorter retention takes the unset cid window down with it', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { retentionMs: 3_600_000 };
    const c = await loadFiles(files);
    assert.equal(c.settings.cidWindowMs, 3_600_000);
  });
});

describe('init', () => {
  test('the templates load to exactly the defaults', async () => {
    const dir = await tempDir();
    await initCluster(dir);
    const fromInit = await loadCluster(dir, { env: {} });
    const fromDefaults = await loadCluster(await tempDir(), { env: {}, secret: fromInit.secret });
    const strip = (c: typeof fromInit) => ({ ...c, dir: '', secretFile: '', dataDir: '' });
    assert.deepEqual(strip(fromInit), strip(fromDefaults));
  });

  test('templates/fishchat.json spells out every setting with its default', async () => {
    const tpl = JSON.parse(await readFile(join(templatesDir(), 'fishchat.json'), 'utf8'));
    assert.deepEqual(tpl.settings, DEFAULT_SETTINGS);
  });

  test('writes manager.json and monitor.json and lists them in fishchat.json "roles"', async () => {
    const dir = await tempDir();
    const result = await initCluster(dir);
    for (const f of ['manager.json', 'monitor.json'])
      assert.ok(
        result.written.some((w) => w.path === join(dir, f)),
        `${f} written`,
      );
    const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8'));
    assert.deepEqual(
      cluster.roles,
      defaultRoleFiles().map((r) => r.file),
    );
    assert.deepEqual(cluster.roles.slice(-2), ['manager.json', 'monitor.json']);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'manager.json'), 'utf8')), {
      role: 'manager',
      id: 'manager',
      httpHost: '127.0.0.1',
      httpPort: 18000,
    });
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'monitor.json'), 'utf8')), {
      role: 'monitor',
      id: 'monitor',
      httpHost: '127.0.0.1',
      httpPort: 21000,
    });
  });

  test('--msg-servers N writes N msg_server files on consecutive ports', async () => {
    const dir = await tempDir();
    const result = await initCluster(dir, { msgServers: 3 });
    const c = await loadCluster(dir, { env: {} });
    assert.deepEqual(
      c.msgServers.map((m) => [m.id, m.port, m.httpPort]),
      [
        ['ms-19000', 19000, 19100],
        ['ms-19001', 19001, 19101],
        ['ms-19002', 19002, 19102],
      ],
    );
    assert.ok(result.written.some((w) => w.path === join(dir, 'msg_server.19002.json')));
    await assert.rejects(initCluster(await tempDir(), { msgServers: 0 }), RangeError);
  });

  test('refuses to overwrite without force; with force keeps the secret', async () => {
    const dir = await tempDir();
    const first = await initCluster(dir);
    const secret = await readFile(first.secret.path, 'utf8');
    await assert.rejects(initCluster(dir), (err: unknown) => {
      assert.ok(err instanceof InitRefusedError);
      assert.ok(err.existing.includes('fishchat.json'));
      assert.match(err.message, /--force/);
      return true;
    });
    const second = await initCluster(dir, { force: true });
    assert.equal(second.secret.kept, true);
    assert.equal(await readFile(first.secret.path, 'utf8'), secret);
  });
});

describe('validation names the file, the field, the expectation and what was found', () => {
  test('the example of the design', async () => {
    const files = defaultFiles();
    obj(files, 'msg_server.19001.json').port = 'abc';
    await assert.rejects(loadFiles(files), {
      name: 'ConfigError',
      message: 'msg_server.19001.json: "port" must be an integer 0–65535, found "abc"',
    });
  });

  const roleCases: [string, string, string, unknown, ...string[]][] = [
    ['msg_server.19000.json', 'port', 'port', 70000, 'integer 0–65535', 'found 70000'],
    ['msg_server.19000.json', 'port', 'port', -1, 'found -1'],
    ['msg_server.19000.json', 'port', 'port', 1.5, 'found 1.5'],
    ['msg_server.19000.json', 'port', 'port', undefined, 'found nothing'],
    ['msg_server.19000.json', 'httpPort', 'httpPort', '19100', 'found "19100"'],
    ['msg_server.19000.json', 'id', 'id', 'bad id!', 'A-Z a-z 0-9', 'found "bad id!"'],
    ['msg_server.19000.json', 'id', 'id', undefined, 'found nothing'],
    ['msg_server.19000.json', 'host', 'host', 'not a host!', 'host name or IP address', 'found "not a host!"'],
    ['msg_server.19000.json', 'host', 'host', 42, 'found 42'],
    ['msg_server.19000.json', 'httpHost', 'httpHost', '', 'found ""'],
    ['msg_server.19000.json', 'advertise', 'advertise', 'nope', '"host:port"', 'found "nope"'],
    ['msg_server.19000.json', 'ws', 'ws', 'yes', 'true, false, or the WebSocket URL', 'found "yes"'],
    ['msg_server.19000.json', 'ws', 'ws', 'http://x:1/v1/ws', 'ws:// or wss://', 'found "http://x:1/v1/ws"'],
    ['msg_server.19000.json', 'ws', 'ws', 'ws://0.0.0.0:19100/v1/ws', 'not a wildcard', 'found "ws://0.0.0.0'],
    ['msg_server.19000.json', 'ws', 'ws', 1, 'found 1'],
    ['msg_server.19000.json', 'role', 'role', 'comet', '"gateway", "msg_server", "router"', 'found "comet"'],
    ['gateway.json', 'port', 'port', null, 'found null'],
    ['gateway.json', 'seeds', 'seeds', 'a:1', 'array', 'found "a:1"'],
    ['gateway.json', 'seeds[1]', 'seeds', ['127.0.0.1:19000', 'x'], 'found "x"'],
    ['router.json', 'httpPort', 'httpPort', 65536, 'found 65536'],
    ['router.json', 'id', 'id', 'a'.repeat(65), '1 to 64'],
  ];
  for (const [file, field, key, value, ...parts] of roleCases) {
    test(`${file} "${key}" = ${JSON.stringify(value)}`, async () => {
      const files = defaultFiles();
      if (value === undefined) delete obj(files, file)[key];
      else obj(files, file)[key] = value;
      await expectError(files, file, field, ...parts);
    });
  }

  const clusterCases: [string, string, unknown, ...string[]][] = [
    ['cluster', 'cluster', '', 'A-Z a-z 0-9', 'found ""'],
    ['cluster', 'cluster', 'has space', 'found "has space"'],
    ['runtime', 'runtime', 'java', '"node", "bun", "deno"', 'found "java"'],
    ['auth', 'auth', 'maybe', '"token" or "none"', 'found "maybe"'],
    ['redis', 'redis', 'http://x', 'redis://', 'found "http://x"'],
    ['secretFile', 'secretFile', 3, 'non-empty path', 'found 3'],
    ['dataDir', 'dataDir', '', 'found ""'],
    ['settings', 'settings', [], 'JSON object', 'found an array'],
    ['roles', 'roles', [], 'non-empty array', 'found an array'],
    ['roles', 'roles', 'gateway.json', 'found "gateway.json"'],
    ['roles[1]', 'roles', ['gateway.json', 7], 'file name', 'found 7'],
    ['roles[1]', 'roles', ['gateway.json', 'gateway.json'], 'repeat', 'found "gateway.json"'],
    [
      'roles[4]',
      'roles',
      ['gateway.json', 'msg_server.19000.json', 'msg_server.19001.json', 'router.json', 'missing.json'],
      '"missing.json"',
      'does not exist',
    ],
    ['colour', 'colour', 'blue', 'not a known field'],
    ['rolse', 'rolse', [], 'did you mean "roles"'],
  ];
  for (const [field, key, value, ...parts] of clusterCases) {
    test(`fishchat.json "${key}" = ${JSON.stringify(value)}`, async () => {
      const files = defaultFiles();
      obj(files, 'fishchat.json')[key] = value;
      await expectError(files, 'fishchat.json', field, ...parts);
    });
  }

  const settingCases: [string, unknown, ...string[]][] = [
    ['maxFrame', 'big', 'integer 1024–16777216', 'found "big"'],
    ['maxFrame', 100, 'found 100'],
    ['heartbeat', 0, 'found 0'],
    ['loginPush', 0, 'found 0'],
    ['maxOutBuffer', true, 'found true'],
    ['retentionMs', 1.5, 'found 1.5'],
    ['maxInbox', -5, 'found -5'],
    ['beat', {}, 'found an object'],
    ['heartbeet', 1000, 'did you mean "settings.heartbeat"'],
    ['loginTimeout', 0, 'integer 10–3600000 (ms)', 'found 0'],
    ['loginTimeout', '10s', 'found "10s"'],
    ['maxConnections', 0, 'integer 1–10000000', 'found 0'],
    ['maxConnections', 2.5, 'found 2.5'],
    ['maxTopicMembers', -1, 'integer 1–100000000', 'found -1'],
    ['sendRate', 200, 'JSON object', 'found 200'],
    ['maxConections', 10, 'did you mean "settings.maxConnections"'],
    ['allowedOrigins', 'https://a.example', 'array of origins', 'found "https://a.example"'],
    ['allowedOrigins', [], 'array of origins', 'found an array'],
  ];
  for (const [key, value, ...parts] of settingCases) {
    test(`fishchat.json "settings.${key}" = ${JSON.stringify(value)}`, async () => {
      const files = defaultFiles();
      obj(files, 'fishchat.json').settings = { [key]: value };
      await expectError(files, 'fishchat.json', `settings.${key}`, ...parts);
    });
  }

  test('settings.allowedOrigins: each an origin (no path, no trailing slash) or "*"; a good list loads', async () => {
    const files = defaultFiles();
    for (const bad of ['https://a.example/', 'https://a.example/app', 'a.example', 7]) {
      obj(files, 'fishchat.json').settings = { allowedOrigins: ['https://ok.example', bad] };
      await expectError(files, 'fishchat.json', 'settings.allowedOrigins[1]', 'origins such as');
    }
    obj(files, 'fishchat.json').settings = { allowedOrigins: ['https://ok.example', 'http://localhost:5173'] };
    const c = await loadFiles(files);
    assert.deepEqual(c.settings.allowedOrigins, ['https://ok.example', 'http://localhost:5173']);
  });

  test('settings.backoff: base and max are checked, and max must not be below base', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { backoff: { base: -1 } };
    await expectError(files, 'fishchat.json', 'settings.backoff.base', 'found -1');
    obj(files, 'fishchat.json').settings = { backoff: { base: 5000, max: 100 } };
    await expectError(
      files,
      'fishchat.json',
      'settings.backoff.max',
      'at least settings.backoff.base (5000)',
      'found 100',
    );
    obj(files, 'fishchat.json').settings = { backoff: { min: 1 } };
    await expectError(files, 'fishchat.json', 'settings.backoff.min', 'not a known field');
  });

  test('settings.sendRate: rate and burst are checked', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { sendRate: { rate: 0 } };
    await expectError(files, 'fishchat.json', 'settings.sendRate.rate', 'integer 1–1000000 (per second)', 'found 0');
    obj(files, 'fishchat.json').settings = { sendRate: { rate: 10, burst: 1.5 } };
    await expectError(files, 'fishchat.json', 'settings.sendRate.burst', 'found 1.5');
    obj(files, 'fishchat.json').settings = { sendRate: { rate: 10, burst: 0 } };
    await expectError(files, 'fishchat.json', 'settings.sendRate.burst', 'found 0');
    obj(files, 'fishchat.json').settings = { sendRate: { rate: 10, bursts: 5 } };
    await expectError(files, 'fishchat.json', 'settings.sendRate.bursts', 'did you mean "settings.sendRate.burst"');
  });

  test('settings.maxOutBuffer must hold at least one frame of settings.maxFrame', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { maxFrame: 2 * 1024 * 1024 };
    await expectError(
      files,
      'fishchat.json',
      'settings.maxOutBuffer',
      'at least settings.maxFrame (2097152)',
      'found 1048576',
    );
    obj(files, 'fishchat.json').settings = { maxFrame: 4096, maxOutBuffer: 2048 };
    await expectError(
      files,
      'fishchat.json',
      'settings.maxOutBuffer',
      'at least settings.maxFrame (4096)',
      'found 2048',
    );
  });

  test('settings.cidWindowMs must fit in settings.retentionMs', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').settings = { retentionMs: 60_000, cidWindowMs: 120_000 };
    await expectError(
      files,
      'fishchat.json',
      'settings.cidWindowMs',
      'at most settings.retentionMs (60000)',
      'found 120000',
    );
  });

  test('a file that is not JSON, or not an object', async () => {
    const files = defaultFiles();
    files['router.json'] = '{ "role": "router", ';
    await expectError(files, 'router.json', undefined, 'is not valid JSON');
    const files2 = defaultFiles();
    files2['fishchat.json'] = '[1, 2]';
    await expectError(files2, 'fishchat.json', undefined, 'must be a JSON object', 'found an array');
  });

  test('an unknown field in a role file is named, with a suggestion', async () => {
    const files = defaultFiles();
    obj(files, 'msg_server.19000.json').prot = 1;
    await expectError(files, 'msg_server.19000.json', 'prot', 'did you mean "port"');
    const files2 = defaultFiles();
    obj(files2, 'router.json').port = 20001; // a router has only an HTTP listener
    await expectError(files2, 'router.json', 'port', 'not a known field');
  });

  test('the role comes from the file name when "role" is absent', async () => {
    const files = defaultFiles();
    delete obj(files, 'router.json').role;
    const c = await loadFiles(files);
    assert.equal(c.router.id, 'router');
    const files2 = defaultFiles();
    files2['other.json'] = { id: 'x', httpPort: 1 };
    obj(files2, 'fishchat.json').roles = [...(obj(files2, 'fishchat.json').roles as string[]), 'other.json'];
    await expectError(files2, 'other.json', 'role', 'must be one of', 'found nothing');
  });

  test('exactly one gateway and one router, at least one msg_server', async () => {
    const files = defaultFiles();
    files['gateway2.json'] = { ...obj(files, 'gateway.json'), id: 'gateway2', port: 17001, httpPort: 17081 };
    obj(files, 'fishchat.json').roles = [...(obj(files, 'fishchat.json').roles as string[]), 'gateway2.json'];
    await expectError(files, 'fishchat.json', 'roles', 'exactly one gateway', 'found 2', 'gateway.json, gateway2.json');
    const files2 = defaultFiles();
    obj(files2, 'fishchat.json').roles = ['gateway.json', 'router.json'];
    await expectError(files2, 'fishchat.json', 'roles', 'at least one msg_server', 'found 0');
  });

  test('ids are unique and listeners do not clash', async () => {
    const files = defaultFiles();
    obj(files, 'msg_server.19001.json').id = 'ms-19000';
    await expectError(files, 'msg_server.19001.json', 'id', 'unique', 'msg_server.19000.json');
    const files2 = defaultFiles();
    obj(files2, 'msg_server.19001.json').httpPort = 17080;
    await expectError(files2, 'msg_server.19001.json', 'httpPort', 'found 17080', 'gateway.json "httpPort"');
    const files3 = defaultFiles();
    obj(files3, 'msg_server.19001.json').port = 19000;
    obj(files3, 'msg_server.19001.json').host = '0.0.0.0';
    await expectError(files3, 'msg_server.19001.json', 'port', 'found 19000');
    // The same port on two different hosts is fine (roles on different machines).
    const files4 = defaultFiles();
    obj(files4, 'msg_server.19001.json').port = 19000;
    obj(files4, 'msg_server.19001.json').host = '127.0.0.2';
    obj(files4, 'msg_server.19001.json').httpHost = '127.0.0.2';
    await loadFiles(files4);
  });
});

describe('manager and monitor', () => {
  const withoutAdminRoles = () => {
    const files = defaultFiles();
    delete files['manager.json'];
    delete files['monitor.json'];
    obj(files, 'fishchat.json').roles = [
      'gateway.json',
      'msg_server.19000.json',
      'msg_server.19001.json',
      'router.json',
    ];
    return files;
  };

  test('a fishchat.json from before them (roles without manager and monitor) loads, with both at their defaults', async () => {
    const c = await loadFiles(withoutAdminRoles());
    assert.deepEqual(c.manager, { role: 'manager', id: 'manager', httpHost: '127.0.0.1', httpPort: 18000 });
    assert.deepEqual(c.monitor, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 21000 });
    // Only one of them listed: the other one is the default.
    const files = defaultFiles();
    obj(files, 'fishchat.json').roles = (obj(files, 'fishchat.json').roles as string[]).filter(
      (f) => f !== 'monitor.json',
    );
    obj(files, 'manager.json').httpPort = 18500;
    const one = await loadFiles(files);
    assert.equal(one.manager.httpPort, 18500);
    assert.equal(one.monitor.httpPort, 21000);
  });

  test('their HTTP binds 127.0.0.1 unless configured otherwise', async () => {
    const files = defaultFiles();
    delete obj(files, 'manager.json').httpHost;
    obj(files, 'monitor.json').httpHost = '0.0.0.0';
    const c = await loadFiles(files);
    assert.equal(c.manager.httpHost, '127.0.0.1');
    assert.equal(c.monitor.httpHost, '0.0.0.0');
  });

  test('the role comes from the file name; any file name works with "role"', async () => {
    const files = defaultFiles();
    delete obj(files, 'monitor.json').role;
    files['admin-api.json'] = { ...obj(files, 'manager.json'), id: 'mgr-1' };
    delete files['manager.json'];
    obj(files, 'fishchat.json').roles = (obj(files, 'fishchat.json').roles as string[]).map((f) =>
      f === 'manager.json' ? 'admin-api.json' : f,
    );
    const c = await loadFiles(files);
    assert.equal(c.manager.id, 'mgr-1');
    assert.equal(c.monitor.id, 'monitor');
  });

  test('their fields are validated like the other role files', async () => {
    let files = defaultFiles();
    obj(files, 'manager.json').httpPort = 'abc';
    await expectError(files, 'manager.json', 'httpPort', 'must be an integer 0–65535', 'found "abc"');
    files = defaultFiles();
    delete obj(files, 'monitor.json').httpPort;
    await expectError(files, 'monitor.json', 'httpPort', 'must be an integer 0–65535', 'found nothing');
    files = defaultFiles();
    obj(files, 'monitor.json').httpHost = 'not a host';
    await expectError(files, 'monitor.json', 'httpHost', 'must be a host name or IP address', 'found "not a host"');
    files = defaultFiles();
    obj(files, 'manager.json').port = 18001;
    await expectError(
      files,
      'manager.json',
      'port',
      'is not a known field',
      'known fields: role, id, httpHost, httpPort',
    );
    files = defaultFiles();
    obj(files, 'monitor.json').httpPrt = 1;
    await expectError(files, 'monitor.json', 'httpPrt', 'did you mean "httpPort"?');
    files = defaultFiles();
    obj(files, 'monitor.json').id = 'bad id';
    await expectError(files, 'monitor.json', 'id', 'must be 1 to 64 characters');
    files = defaultFiles();
    obj(files, 'monitor.json').role = 'monitr';
    await expectError(files, 'monitor.json', 'role', '"manager", "monitor"', 'found "monitr"');
  });

  test('at most one manager and one monitor', async () => {
    const files = defaultFiles();
    files['monitor2.json'] = { ...obj(files, 'monitor.json'), id: 'monitor2', httpPort: 21001 };
    obj(files, 'fishchat.json').roles = [...(obj(files, 'fishchat.json').roles as string[]), 'monitor2.json'];
    await expectError(files, 'fishchat.json', 'roles', 'at most one monitor', 'found 2', 'monitor.json, monitor2.json');
    const files2 = defaultFiles();
    files2['manager2.json'] = { ...obj(files2, 'manager.json'), id: 'manager2', httpPort: 18001 };
    obj(files2, 'fishchat.json').roles = [...(obj(files2, 'fishchat.json').roles as string[]), 'manager2.json'];
    await expectError(files2, 'fishchat.json', 'roles', 'at most one manager', 'found 2');
  });

  test('ids and ports must not clash with theirs; a clash with a default names the listed file', async () => {
    let files = defaultFiles();
    obj(files, 'router.json').httpPort = 21000;
    await expectError(files, 'monitor.json', 'httpPort', 'found 21000', 'router.json "httpPort"');
    files = defaultFiles();
    obj(files, 'manager.json').id = 'router';
    await expectError(files, 'manager.json', 'id', 'unique', 'router.json');
    // Not listed: the defaults take part in the checks, and the error names the file that is.
    files = withoutAdminRoles();
    obj(files, 'router.json').httpPort = 18000;
    await expectError(
      files,
      'router.json',
      'httpPort',
      'found 18000',
      `the default manager's "httpPort"`,
      'no manager file is listed in fishchat.json "roles"',
    );
    files = withoutAdminRoles();
    obj(files, 'router.json').id = 'monitor';
    await expectError(files, 'router.json', 'id', 'unique', `the default monitor's "id"`);
  });
});

describe('auth "none"', () => {
  test('is accepted when every client listener binds loopback; no secret is needed', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').auth = 'none';
    obj(files, 'gateway.json').host = 'localhost';
    obj(files, 'msg_server.19001.json').host = '::1';
    obj(files, 'msg_server.19001.json').httpHost = '127.0.0.5';
    const c = await loadFiles(files, { env: {} });
    assert.equal(c.auth, 'none');
    assert.equal(c.secret, '');
  });

  for (const [file, key, host] of [
    ['gateway.json', 'host', '0.0.0.0'],
    ['msg_server.19001.json', 'host', '192.168.1.10'],
    ['msg_server.19000.json', 'httpHost', '::'],
    ['gateway.json', 'httpHost', 'example.com'],
  ] as const) {
    test(`is refused with ${file} "${key}" ${host}`, async () => {
      const files = defaultFiles();
      obj(files, 'fishchat.json').auth = 'none';
      obj(files, file)[key] = host;
      await expectError(files, 'fishchat.json', 'auth', 'loopback', `${file} "${key}" is ${JSON.stringify(host)}`);
    });
  }

  test('the router (no client listener) may bind anywhere', async () => {
    const files = defaultFiles();
    obj(files, 'fishchat.json').auth = 'none';
    obj(files, 'router.json').httpHost = '0.0.0.0';
    await loadFiles(files);
  });
});

describe('addresses', () => {
  test('parseHostPort', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:17000'), { host: '127.0.0.1', port: 17000 });
    assert.deepEqual(parseHostPort('[::1]:19000'), { host: '::1', port: 19000 });
    assert.deepEqual(parseHostPort('example.com:1'), { host: 'example.com', port: 1 });
    for (const bad of ['127.0.0.1', ':17000', 'a:b', 'a:70000', '::1:19000', 'a b:1', '']) {
      assert.equal(parseHostPort(bad), undefined, bad);
    }
  });

  test('isLoopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', '127.example.com'])
      assert.ok(!isLoopback(h), h);
  });
});
