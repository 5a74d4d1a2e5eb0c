/**
 * The CLI (`node bin/run.js …`, from dist/) as a child process: run to its end
 * (`fishchat`), or kept running with its output collected as it comes
 * (`CliProcess`); and a cluster directory from `init` on ports from the OS.
 * The CLI always runs on Node, also when the test file runs under Bun.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'run.js');
/** Node itself: under `bun test`, process.execPath is bun. */
export const NODE = (process.versions as { bun?: string }).bun ? 'node' : process.execPath;
/** What the CLI must not inherit from the test run (npm_command=exec makes hints say `npx fishchat`). */
export const CLEAN_ENV: Record<string, string> = {
  FISHCHAT_SECRET: '',
  FISHCHAT_REDIS: '',
  FISHCHAT_CLUSTER: '',
  NODE_ENV: '',
  DEBUG: '',
  npm_command: '',
};

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** How long it ran. */
  ms: number;
}

export interface CliOptions {
  /** Written to its stdin (else stdin is /dev/null). */
  input?: string;
  /** Over CLEAN_ENV over the test's own environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Killed (SIGKILL) after this long. */
  timeoutMs?: number;
}

/** Runs `node bin/run.js ...args` to its end (killed after 60 s unless `timeoutMs` says otherwise). */
export function fishchat(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...CLEAN_ENV, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin?.end(opts.input);
  });
}

export interface CliProcessOptions {
  env?: Record<string, string>;
  /** waitFor's default time. */
  waitMs?: number;
  /** After stop's signal: SIGKILL once this has passed. */
  killAfterMs?: number;
}

/** `fishchat …args` as a child process, its output collected as it comes. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether it has exited. */
  protected done = false;
  private readonly waitMs: number;
  private readonly killAfterMs: number;

  constructor(args: string[], opts: CliProcessOptions = {}) {
    this.waitMs = opts.waitMs ?? 20_000;
    this.killAfterMs = opts.killAfterMs ?? 20_000;
    this.child = spawn(NODE, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      }),
    );
  }

  get output(): string {
    return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
  }

  /** Resolves with stdout once `pattern` appears on it; rejects on exit or timeout. */
  async waitFor(pattern: RegExp, timeoutMs = this.waitMs): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stdout)) {
      if (this.done) throw new Error(`fishchat exited before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.stdout;
  }

  /** Stops it; resolves with how it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.killAfterMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `fishchat init dir ...extra`, then every listener of the new cluster directory on port 0 (any free port). */
export async function initCluster(dir: string, extra: string[] = []): Promise<string> {
  const r = await fishchat(['init', dir, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as { roles: string[] };
  for (const file of cluster.roles) {
    const role = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
    if ('port' in role) role.port = 0;
    role.httpPort = 0;
    await writeFile(join(dir, file), JSON.stringify(role, null, 2));
  }
  return dir;
}
