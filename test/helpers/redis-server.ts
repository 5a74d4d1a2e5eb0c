/**
 * Private redis-server processes for tests that restart Redis or need a
 * Redis Cluster: free ports from the OS, data in a temp directory, stopped by
 * PID. `available()` is false when redis-server is not on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export function available(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/** Resolves once a redis-server on 127.0.0.1:`port` answers PING; throws after `timeoutMs`. */
export async function waitForPing(port: number, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer PING in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class RedisServer {
  private proc: ChildProcess | undefined;
  readonly dir: string;

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'fishchat-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts redis-server on `port` (else a free one); `args` are extra redis-server options. */
  static async start(args: string[] = ['--appendonly', 'yes'], port?: number): Promise<RedisServer> {
    const r = new RedisServer(port ?? (await freePort()), args);
    await r.run();
    return r;
  }

  async run(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir, ...this.args],
      { stdio: 'ignore' },
    );
    await waitForPing(this.port);
  }

  /** SIGTERM (redis flushes its AOF and exits), then waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.run();
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A free port below 55 000: a cluster node's bus port is its port + 10 000. */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 55_000) return port;
  }
}

const CLUSTER_NODE = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--appendonly', 'no'];

/** Three masters with cluster-enabled, joined with redis-cli --cluster create. */
export async function startRedisCluster(): Promise<{
  nodes: RedisServer[];
  url: string;
  destroy: () => Promise<void>;
}> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await RedisServer.start(CLUSTER_NODE, await clusterPort()));
    const r = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (r.status !== 0) throw new Error(`redis-cli --cluster create failed: ${r.stderr || r.stdout}`);
    // Wait until every node reports the cluster state ok.
    const end = Date.now() + 15_000;
    for (const n of nodes) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
        if (/cluster_state:ok/.test(info)) break;
        if (Date.now() > end) throw new Error(`redis cluster node ${n.port} not ok: ${info}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } catch (err) {
    for (const n of nodes) await n.destroy();
    throw err;
  }
  return {
    nodes,
    url: nodes[0]!.url,
    destroy: async () => {
      for (const n of nodes) await n.destroy();
    },
  };
}
