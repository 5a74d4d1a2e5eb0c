/**
 * `fishchat init`: writes a cluster directory from templates/ — fishchat.json,
 * one file per role (gateway.json, msg_server.<port>.json per msg_server from
 * the templates/msg_server.json pattern, router.json, manager.json,
 * monitor.json) and a random secret (mode 0600).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkRedisUrl } from './checks.js';
import { CLUSTER_FILE, MAX_MSG_SERVERS } from './defaults.js';
import { createSecret, readSecret } from './secret.js';

export interface InitOptions {
  /** how many msg_servers (default 2): ports 19000 + i, HTTP 19100 + i */
  msgServers?: number;
  /** overwrite existing configuration files (an existing secret is always kept) */
  force?: boolean;
  /** "redis" in fishchat.json: redis://host:port or rediss://… (checked with checkRedisUrl) */
  redis?: string;
}

export interface InitResult {
  /** absolute path of the cluster directory */
  dir: string;
  /** files written, absolute paths, with their mode when it matters */
  written: { path: string; mode?: number }[];
  /** the secret file, and whether an existing one was kept */
  secret: { path: string; kept: boolean };
}

/** Refusal to overwrite: names the files that exist. */
export class InitRefusedError extends Error {
  constructor(
    readonly dir: string,
    readonly existing: string[],
  ) {
    super(`${dir} already holds ${existing.join(', ')}; nothing was written (--force overwrites them)`);
    this.name = 'InitRefusedError';
  }
}

/** The templates/ folder of this package (from runtime/cluster/ or dist/runtime/cluster/). */
export function templatesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'templates', CLUSTER_FILE))) return join(dir, 'templates');
    dir = dirname(dir);
  }
  throw new Error('templates/ not found next to the fishchat package (is the installation complete?)');
}

type Json = Record<string, unknown>;

export async function initCluster(dir: string, opts: InitOptions = {}): Promise<InitResult> {
  const root = resolve(dir);
  const n = opts.msgServers ?? 2;
  if (!Number.isInteger(n) || n < 1 || n > MAX_MSG_SERVERS) {
    throw new RangeError(`the number of msg_servers must be an integer 1–${MAX_MSG_SERVERS}, found ${n}`);
  }
  if (opts.redis !== undefined) checkRedisUrl(opts.redis);
  const tpl = templatesDir();
  const read = async (name: string) => JSON.parse(await readFile(join(tpl, name), 'utf8')) as Json;
  const cluster = await read(CLUSTER_FILE);
  const gateway = await read('gateway.json');
  const msgServer = await read('msg_server.json');
  const router = await read('router.json');
  const manager = await read('manager.json');
  const monitor = await read('monitor.json');

  const files: { name: string; json: Json }[] = [{ name: 'gateway.json', json: gateway }];
  for (let i = 0; i < n; i++) {
    const port = (msgServer.port as number) + i;
    const json = { ...msgServer, id: `ms-${port}`, port, httpPort: (msgServer.httpPort as number) + i };
    files.push({ name: `msg_server.${port}.json`, json });
  }
  files.push(
    { name: 'router.json', json: router },
    { name: 'manager.json', json: manager },
    { name: 'monitor.json', json: monitor },
  );
  const clusterJson: Json = { ...cluster, roles: files.map((f) => f.name) };
  if (opts.redis !== undefined) clusterJson.redis = opts.redis;
  files.unshift({ name: CLUSTER_FILE, json: clusterJson });

  const existing = files.filter((f) => existsSync(join(root, f.name))).map((f) => f.name);
  if (existing.length > 0 && !opts.force) throw new InitRefusedError(root, existing);

  await mkdir(root, { recursive: true });
  const written: InitResult['written'] = [];
  for (const f of files) {
    const path = join(root, f.name);
    await writeFile(path, `${JSON.stringify(f.json, null, 2)}\n`);
    written.push({ path });
  }

  // The secret and the data stay out of version control.
  const privateDir = join(root, '.fishchat');
  await mkdir(privateDir, { recursive: true, mode: 0o700 });
  const ignore = join(privateDir, '.gitignore');
  if (!existsSync(ignore)) {
    await writeFile(ignore, '# written by fishchat init: the secret and the data stay out of version control\n*\n');
    written.push({ path: ignore });
  }

  const secretPath = resolve(root, String(cluster.secretFile ?? '.fishchat/secret'));
  const kept = (await readSecret(secretPath)) !== undefined;
  if (!kept) {
    await createSecret(secretPath);
    written.push({ path: secretPath, mode: 0o600 });
  }
  return { dir: root, written, secret: { path: secretPath, kept } };
}
