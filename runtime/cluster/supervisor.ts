/**
 * Redis modes of `fishchat up` (docs/architecture.md "Three ways to run, one code path", 1 and 2):
 * every role its own child process (role-main.js on node, bun or deno),
 * supervised from here.
 *
 * - Start order as in embedded mode: monitor, router, manager, the
 *   msg_servers (side by side), gateway (seeded with the msg_servers' real
 *   addresses, from their ready lines). A role counts as started when its
 *   process prints its ready line.
 * - Every output line of a child is handed to `log` with its role and id.
 * - A child that dies while the cluster runs is restarted after a backoff
 *   (doubling from 500 ms to 30 s, back to the start after a minute up);
 *   never while stopping.
 * - Stop: SIGTERM to each group in the reverse start order (gateway,
 *   msg_servers, manager, router, monitor), waiting for each group to exit;
 *   SIGKILL after a timeout.
 * - Children run in their own process group (Ctrl-C in a terminal reaches
 *   only `up`, which stops them in order) and watch their stdin: should `up`
 *   itself be killed, they stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig, RoleConfig, RuntimeName } from './config.js';
import { parseReadyLine } from './ready-line.js';
import { detectRuntime } from '../platform/index.js';

export interface RoleProcessInfo {
  role: RoleConfig['role'];
  id: string;
  pid: number;
  addresses: { tcp?: string; http?: string; ws?: string };
}

export interface SupervisorOptions {
  config: ClusterConfig;
  /** the Redis URL every role uses */
  redis: string;
  runtime: RuntimeName;
  /** one output line of a role process (stream: which of its outputs) */
  log: (role: string, id: string, line: string, stream: 'stdout' | 'stderr') => void;
  /** something the supervisor itself says about a role (exits, restarts) */
  notice: (role: string, id: string, line: string) => void;
  /** a role printed its ready line: at start, and after each restart */
  onReady?: (info: RoleProcessInfo, restarted: boolean) => void;
  /** how long a role may take from spawn to its ready line (default 30 s; 90 s on deno, whose first start compiles) */
  readyTimeoutMs?: number;
  /** how long a role may take to exit after SIGTERM before SIGKILL (default 12 s) */
  stopTimeoutMs?: number;
  /** restart backoff (default 500 ms doubling to 30 s) */
  backoff?: { base: number; max: number };
  /** extra environment for the children */
  env?: Record<string, string>;
}

/** A role process exited (or never got ready) while the cluster was starting. */
export class RoleStartError extends Error {
  constructor(
    readonly role: string,
    readonly id: string,
    message: string,
  ) {
    super(message);
    this.name = 'RoleStartError';
  }
}

/** The runtime asked for is not installed. */
export class RuntimeMissingError extends Error {
  constructor(runtime: RuntimeName, hint: string) {
    super(`--runtime ${runtime}: cannot find the ${runtime} executable (${hint})`);
    this.name = 'RuntimeMissingError';
  }
}

const DEFAULT_BACKOFF = { base: 500, max: 30_000 };
/** A child up this long has its restart backoff reset. */
const STABLE_MS = 60_000;
/** Lines of a child's stderr kept to explain why it failed to start. */
const KEPT_LINES = 20;

/** The package root (where node_modules/ is), from this file in dist/runtime/cluster/ or runtime/cluster/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** An executable on PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The command that runs role-main on `runtime`: executable and the arguments before role-main's own. */
export function roleCommand(runtime: RuntimeName): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const entry = join(dirname(here), fromSource ? 'role-main.ts' : 'role-main.js');
  const root = packageRoot();
  const local = (name: string) => {
    const p = join(root, 'node_modules', '.bin', name);
    return existsSync(p) ? p : undefined;
  };
  switch (runtime) {
    case 'node': {
      const isNode = detectRuntime() === 'node';
      const node = isNode ? process.execPath : (findOnPath('node') ?? 'node');
      // From the sources (bin/dev.js): tsx, resolved from here, as the children run in the cluster directory.
      // FISHCHAT_NODE_ARGS: extra Node options for every role process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile a cluster.
      const extra = (process.env.FISHCHAT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
      return { command: node, args: [...extra, ...(fromSource ? ['--import', resolveTsx(), entry] : [entry])] };
    }
    case 'bun': {
      const bun = local('bun') ?? findOnPath('bun');
      if (!bun) throw new RuntimeMissingError('bun', 'npm install bun, or put bun on PATH');
      // FISHCHAT_BUN_ARGS: the same for role processes on Bun (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
      const extra = (process.env.FISHCHAT_BUN_ARGS ?? '').split(/\s+/).filter(Boolean);
      return { command: bun, args: [...extra, entry] };
    }
    case 'deno': {
      const deno = local('deno') ?? findOnPath('deno');
      if (!deno) throw new RuntimeMissingError('deno', 'npm install deno, or put deno on PATH');
      return { command: deno, args: ['run', '-A', '--no-lock', ...(fromSource ? ['--sloppy-imports'] : []), entry] };
    }
  }
}

function resolveTsx(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

interface Child {
  role: RoleConfig['role'];
  id: string;
  args: string[];
  proc?: ChildProcess;
  info?: RoleProcessInfo;
  exited?: Promise<void>;
  failures: number;
  readyAt?: number;
  restartTimer?: ReturnType<typeof setTimeout>;
  /** recent stderr lines, for a start failure */
  tail: string[];
}

export class Supervisor {
  readonly #opts: SupervisorOptions;
  readonly #groups: Child[][] = [];
  readonly #cmd: { command: string; args: string[] };
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    this.#cmd = roleCommand(opts.runtime);
  }

  /** Every role process, in start order, as last seen ready. */
  get roles(): RoleProcessInfo[] {
    return this.#groups.flat().flatMap((c) => (c.info ? [{ ...c.info, addresses: { ...c.info.addresses } }] : []));
  }

  /** Starts every role, group by group; rejects (after stopping what started) if one fails to get ready. */
  async start(): Promise<RoleProcessInfo[]> {
    const c = this.#opts.config;
    const child = (rc: RoleConfig, extra: string[] = []): Child => ({
      role: rc.role,
      id: rc.id,
      args: ['--dir', c.dir, '--role', rc.role, '--id', rc.id, '--watch-stdin', ...extra],
      failures: 0,
      tail: [],
    });
    try {
      await this.#startGroup([child(c.monitor)]);
      await this.#startGroup([child(c.router)]);
      await this.#startGroup([child(c.manager)]);
      const servers = await this.#startGroup(c.msgServers.map((ms) => child(ms)));
      const seeds: string[] = [];
      const seedWs: string[] = [];
      for (const [i, s] of servers.entries()) {
        const addr = c.msgServers[i]!.advertise ?? s.info!.addresses.tcp;
        if (!addr) continue;
        seeds.push(addr);
        if (s.info!.addresses.ws) seedWs.push(`${addr}=${s.info!.addresses.ws}`);
      }
      const gatewayArgs = seeds.length ? ['--seeds', seeds.join(',')] : [];
      if (seedWs.length) gatewayArgs.push('--seed-ws', seedWs.join(','));
      await this.#startGroup([child(c.gateway, gatewayArgs)]);
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }
    return this.roles;
  }

  async #startGroup(children: Child[]): Promise<Child[]> {
    if (this.#stopping) throw new Error('stopped while starting');
    this.#groups.push(children);
    await Promise.all(children.map((ch) => this.#spawn(ch, false)));
    return children;
  }

  /** Spawns `ch`; resolves at its ready line, rejects if it exits first or takes too long. */
  #spawn(ch: Child, restart: boolean): Promise<void> {
    const o = this.#opts;
    const env: Record<string, string | undefined> = { ...process.env, ...o.env, FISHCHAT_REDIS: o.redis };
    // The children report their own addresses; oclif's and npm's variables mean nothing to them.
    delete env.npm_command;
    const proc = spawn(this.#cmd.command, [...this.#cmd.args, ...ch.args], {
      cwd: o.config.dir,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    ch.proc = proc;
    ch.tail = [];
    const timeoutMs = o.readyTimeoutMs ?? (o.runtime === 'deno' ? 90_000 : 30_000);

    return new Promise<void>((resolveReady, rejectReady) => {
      let ready = false;
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) rejectReady(err);
        else resolveReady();
      };
      const timer = setTimeout(() => {
        settle(
          new RoleStartError(
            ch.role,
            ch.id,
            `${ch.role} ${ch.id} was not ready within ${timeoutMs / 1000} s${this.#why(ch)}`,
          ),
        );
        this.#kill(proc, 'SIGKILL');
      }, timeoutMs);

      proc.stdin!.on('error', () => {});
      eachLine(proc.stdout!, (line) => {
        const r = !ready ? parseReadyLine(line) : undefined;
        if (r && r.role === ch.role && r.id === ch.id) {
          ready = true;
          ch.readyAt = Date.now();
          ch.info = { role: ch.role, id: ch.id, pid: r.pid ?? proc.pid!, addresses: r.addresses };
          o.onReady?.(ch.info, restart);
          settle();
          return;
        }
        o.log(ch.role, ch.id, line, 'stdout');
      });
      eachLine(proc.stderr!, (line) => {
        ch.tail.push(line);
        if (ch.tail.length > KEPT_LINES) ch.tail.shift();
        o.log(ch.role, ch.id, line, 'stderr');
      });

      ch.exited = new Promise<void>((done) => {
        proc.on('error', (err) => {
          settle(
            new RoleStartError(
              ch.role,
              ch.id,
              `cannot start ${ch.role} ${ch.id} (${this.#cmd.command}): ${err.message}`,
            ),
          );
          done();
        });
        proc.on('close', (code, signal) => {
          done();
          const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
          if (!ready) {
            settle(
              new RoleStartError(ch.role, ch.id, `${ch.role} ${ch.id} ${how} before it was ready${this.#why(ch)}`),
            );
            if (!restart || this.#stopping) return;
          }
          if (this.#stopping) return;
          // Died while the cluster runs: restart it after a backoff.
          if (ch.readyAt !== undefined && Date.now() - ch.readyAt > STABLE_MS) ch.failures = 0;
          const b = o.backoff ?? DEFAULT_BACKOFF;
          const delay = Math.min(b.max, b.base * 2 ** ch.failures);
          ch.failures++;
          o.notice(ch.role, ch.id, `${how}; restarting in ${delay} ms`);
          ch.restartTimer = setTimeout(() => {
            ch.restartTimer = undefined;
            if (this.#stopping) return;
            this.#spawn(ch, true).then(
              () => o.notice(ch.role, ch.id, `restarted (pid ${ch.proc?.pid})`),
              () => {}, // its close handler schedules the next try
            );
          }, delay);
        });
      });
    });
  }

  #why(ch: Child): string {
    const last = ch.tail.filter((l) => l.trim() !== '');
    const error =
      [...last].reverse().find((l) => /^Error:/.test(l)) ??
      last.find((l) => /^\s*(\w*Error\b|\w+Error \[)/.test(l)) ??
      last[last.length - 1];
    return error ? `: ${error.replace(/^Error:\s*/, '')}` : '';
  }

  #kill(proc: ChildProcess, signal: NodeJS.Signals): void {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      proc.kill(signal);
    } catch {
      // gone already
    }
  }

  /** Stops every role in the reverse start order. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      const timeoutMs = this.#opts.stopTimeoutMs ?? 12_000;
      for (const group of [...this.#groups].reverse()) {
        await Promise.all(
          group.map(async (ch) => {
            if (ch.restartTimer) clearTimeout(ch.restartTimer);
            const proc = ch.proc;
            if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
            this.#kill(proc, 'SIGTERM');
            const timer = setTimeout(() => {
              this.#opts.notice(ch.role, ch.id, `did not stop within ${timeoutMs / 1000} s: killing it`);
              this.#kill(proc, 'SIGKILL');
            }, timeoutMs);
            await ch.exited;
            clearTimeout(timer);
            proc.stdin?.destroy();
          }),
        );
      }
    })();
    return this.#stopped;
  }
}

/** Calls `onLine` for each line of a stream (a partial last line at its end). */
export function eachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (buf !== '') onLine(buf);
    buf = '';
  });
}
