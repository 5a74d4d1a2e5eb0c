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

  /** Started and not exited. */
  get running(): boolean {
    const p = this.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** kill -9, and waits for the exit. */
  async kill9(): Promise<void> {
    await this.stop('SIGKILL');
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

/** A free port below 55 000: a cluster node's bus port is its port + 10 000 (unless given). */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 55_000) return port;
  }
}

export interface RedisClusterOptions {
  /** replicas per master (default 0: three masters only) */
  replicas?: 0 | 1;
  /** appendonly yes, appendfsync everysec (default: off, as the store tests need no AOF) */
  appendonly?: boolean;
  /** cluster-node-timeout, ms: how long a silent master takes to be failed over (default 15 000, Redis' own) */
  nodeTimeoutMs?: number;
}

/** One row of CLUSTER NODES. */
export interface ClusterNodeRow {
  id: string;
  port: number;
  flags: string[];
  /** the master's id for a replica, '-' for a master */
  master: string;
  /** connected / disconnected */
  link: string;
  /** slot ranges, as Redis writes them ("0-5460") */
  slots: string[];
}

/**
 * A private Redis Cluster: 3 masters (and, with `replicas: 1`, one replica
 * each), every node a redis-server of its own on free ports (its client port
 * and its cluster bus port both from the OS), data in its own temp directory,
 * stopped by PID. `url` is the first node's `redis://127.0.0.1:PORT`;
 * `clusterUrl` the same with `?cluster=1`, as `fishchat --redis` takes it.
 */
export class RedisCluster {
  private constructor(
    readonly nodes: RedisServer[],
    readonly opts: RedisClusterOptions,
  ) {}

  get url(): string {
    return this.nodes[0]!.url;
  }

  /** `redis://127.0.0.1:PORT?cluster=1` on the first node. */
  get clusterUrl(): string {
    return `${this.url}?cluster=1`;
  }

  static async start(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
    const replicas = opts.replicas ?? 0;
    const nodes: RedisServer[] = [];
    const c = new RedisCluster(nodes, opts);
    try {
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(opts.nodeTimeoutMs ?? 15_000),
        // a replica may always take over, however long its link was down
        '--cluster-replica-validity-factor',
        '0',
        ...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no']),
      ];
      const count = 3 * (1 + replicas);
      // every start settles before a failure is thrown, so destroy() finds every node started
      const started = await Promise.allSettled(
        Array.from({ length: count }, async (_, i) => {
          // the bus port too: from the OS, not port + 10 000
          const port = await clusterPort();
          const bus = await freePort();
          nodes[i] = await RedisServer.start([...args, '--cluster-port', String(bus)], port);
        }),
      );
      const failed = started.find((x) => x.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const r = await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        30_000,
      );
      if (r.code !== 0) throw new Error(`redis-cli --cluster create failed: ${r.out}`);
      await c.waitOk(20_000);
      if (replicas > 0) {
        // every replica attached to its master and in sync
        await c.waitFor(
          async () => {
            const rows = await c.table();
            const masters = rows.filter((x) => x.flags.includes('master'));
            const reps = rows.filter((x) => x.flags.includes('slave') && x.master !== '-');
            if (masters.length !== 3 || reps.length !== 3) return false;
            for (const rep of reps) {
              const info = await c.command(rep.port, ['INFO', 'replication']);
              if (!/master_link_status:up/.test(info)) return false;
            }
            return true;
          },
          20_000,
          'every replica linked to its master',
        );
      }
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** The node listening on `port`. */
  node(port: number): RedisServer {
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no cluster node on port ${port}`);
    return n;
  }

  /** One command on one node, its reply as text ('' when the node does not answer within `timeoutMs`). */
  command(port: number, args: string[], timeoutMs = 2000): Promise<string> {
    return respCommand(port, args, timeoutMs);
  }

  /** CLUSTER NODES as `port` sees it (the first running node when not given). */
  async table(port?: number): Promise<ClusterNodeRow[]> {
    const p = port ?? this.nodes.find((n) => n.running)?.port;
    if (p === undefined) return [];
    const text = await this.command(p, ['CLUSTER', 'NODES']);
    return text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => {
        const f = l.split(' ');
        return {
          id: f[0]!,
          port: Number(/:(\d+)@/.exec(f[1]!)?.[1] ?? 0),
          flags: f[2]!.split(','),
          master: f[3]!,
          link: f[7]!,
          slots: f.slice(8),
        };
      });
  }

  /** The masters holding slots, as every running node agrees. */
  async masters(): Promise<ClusterNodeRow[]> {
    return (await this.table()).filter(
      (x) => x.flags.includes('master') && !x.flags.includes('fail') && x.slots.length > 0,
    );
  }

  /** Resolves once every running node says cluster_state:ok; throws after `timeoutMs`. */
  async waitOk(timeoutMs = 20_000): Promise<void> {
    await this.waitFor(
      async () => {
        for (const n of this.nodes.filter((x) => x.running)) {
          if (!/cluster_state:ok/.test(await this.command(n.port, ['CLUSTER', 'INFO']))) return false;
        }
        return true;
      },
      timeoutMs,
      'cluster_state:ok on every running node',
    );
  }

  async waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`redis cluster: ${what}: not within ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.filter(Boolean).map((n) => n.destroy()));
  }
}

/** Three masters with cluster-enabled, joined with redis-cli --cluster create (the store and bus tests). */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  return RedisCluster.start(opts);
}

// ---------------------------------------------------------------- small helpers

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (err) => {
      clearTimeout(t);
      resolve({ code: -1, out: err.message });
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** One RESP command on a fresh connection; the reply as text (a bulk string, a status, an error's text), '' on no answer. */
function respCommand(port: number, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (v: string) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(''), timeoutMs);
    s.on('connect', () => {
      s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const head = buf.subarray(0, nl).toString();
      if (head[0] === '+' || head[0] === '-' || head[0] === ':') return done(head.slice(1));
      if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (len < 0) return done('');
        if (buf.length >= nl + 2 + len) done(buf.subarray(nl + 2, nl + 2 + len).toString());
        return;
      }
      done(head);
    });
    s.on('error', () => done(''));
  });
}
