/**
 * Separate hosts on one machine, for tests: Linux network namespaces joined by
 * veth pairs on one bridge in the root namespace, addressed from the
 * benchmarking range 198.18.0.0/15 (RFC 2544) and nothing else, with no
 * default route anywhere, so the traffic never leaves the machine.
 *
 *   root namespace:  bridge fct<pid>br, 198.18.N.254/24 (the test's own view)
 *   host "a":        namespace fct-<pid>-a, eth0 198.18.N.1/24, lo up
 *   host "b":        namespace fct-<pid>-b, eth0 198.18.N.2/24, lo up  …
 *
 * Every name carries the prefix `fct` and the pid of the process that made it,
 * so `cleanupLeftovers()` (called by `Lab.create`) removes what a killed run
 * left behind — namespaces, their processes, bridges and veths — without
 * touching a lab whose process still runs. `destroy()` removes everything of
 * this lab; call it from an after hook.
 *
 * Cutting a host (`cut`) sets the root-side end of its veth down: the host's
 * own interface stays up, so its processes see no error, only silence — as
 * when a cable is pulled — until `restore`.
 *
 * Needs root and `ip` (iproute2); `unavailable()` tells why not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

const IP_TIMEOUT_MS = 10_000;
export const PREFIX = 'fct';

/** Why namespaces cannot be made here, or undefined when they can. */
export function unavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return `network namespaces need root (uid ${process.getuid()})`;
  const v = spawnSync('ip', ['-V'], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (v.error || v.status !== 0) return `no usable \`ip\` (iproute2): ${v.error?.message ?? v.stderr}`;
  // A namespace of our own, made and removed at once: proves the kernel and the permissions allow it.
  const probe = `${PREFIX}-${process.pid}-probe`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (r.status !== 0) return `cannot create a network namespace: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { timeout: IP_TIMEOUT_MS });
  return undefined;
}

function ip(args: string[], okToFail = false): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (!okToFail && (r.status !== 0 || r.error))
    throw new Error(`ip ${args.join(' ')} failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
  return r.stdout ?? '';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function namespaces(): string[] {
  return ip(['netns', 'list'], true)
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

function links(): string[] {
  return ip(['-o', 'link', 'show'], true)
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n !== '');
}

/** Kills (SIGKILL, by pid) every process inside namespace `ns`. */
function killInside(ns: string): void {
  const pids = ip(['netns', 'pids', ns], true)
    .split('\n')
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Owner pid of a name we made (`fct-<pid>-x` or `fct<pid>…`), else undefined. */
function ownerOf(name: string): number | undefined {
  const m = /^fct-?(\d+)/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes the namespaces (and the processes in them), bridges and veths that
 * runs which are no longer alive left behind. Returns what it removed.
 */
export function cleanupLeftovers(): string[] {
  const removed: string[] = [];
  for (const ns of namespaces()) {
    const owner = ownerOf(ns);
    if (!ns.startsWith(`${PREFIX}-`) || owner === undefined || (owner !== process.pid && alive(owner))) continue;
    killInside(ns);
    ip(['netns', 'del', ns], true);
    removed.push(`netns ${ns}`);
  }
  for (const link of links()) {
    const owner = ownerOf(link);
    if (!link.startsWith(PREFIX) || owner === undefined || (owner !== process.pid && alive(owner))) continue;
    ip(['link', 'del', link], true);
    removed.push(`link ${link}`);
  }
  return removed;
}

export interface Host {
  name: string;
  /** the namespace */
  ns: string;
  /** its address on the bridge, 198.18.N.x */
  addr: string;
  /** the root-namespace end of its veth (what `cut` sets down) */
  veth: string;
}

/** A /24 in 198.18.0.0/15 no route of the root namespace covers yet, picked from the pid. */
function pickSubnet(): string {
  const routes = ip(['-4', 'route', 'show', 'table', 'all'], true);
  for (let i = 0; i < 512; i++) {
    const n = (process.pid + i) % 512;
    const net = n < 256 ? `198.18.${n}` : `198.19.${n - 256}`;
    if (!routes.includes(`${net}.`)) return net;
  }
  throw new Error('no free /24 in 198.18.0.0/15');
}

export class Lab {
  readonly hosts = new Map<string, Host>();
  readonly bridge: string;
  /** the first three octets, e.g. "198.18.7" */
  readonly subnet: string;
  /** the root namespace's address on the bridge */
  readonly rootAddr: string;
  private readonly procs = new Set<HostProcess>();
  private destroyed = false;

  private constructor() {
    this.bridge = `${PREFIX}${process.pid}br`;
    this.subnet = pickSubnet();
    this.rootAddr = `${this.subnet}.254`;
  }

  /** Removes leftovers of dead runs, then makes the bridge and one namespace per name ("a", "b", …). */
  static create(names: string[]): Lab {
    cleanupLeftovers();
    const lab = new Lab();
    try {
      ip(['link', 'add', lab.bridge, 'type', 'bridge']);
      ip(['addr', 'add', `${lab.rootAddr}/24`, 'dev', lab.bridge]);
      ip(['link', 'set', lab.bridge, 'up']);
      for (const n of names) lab.addHost(n);
    } catch (err) {
      lab.destroySync();
      throw err;
    }
    return lab;
  }

  /** One more host (namespace, veth into the bridge, the next address). */
  addHost(name: string): Host {
    if (!/^[a-z]$/.test(name)) throw new Error(`host names are one letter a–z, found ${JSON.stringify(name)}`);
    if (this.hosts.has(name)) throw new Error(`host ${name} exists`);
    const ns = `${PREFIX}-${process.pid}-${name}`;
    const veth = `${PREFIX}${process.pid}${name}`;
    const peer = `${veth}p`;
    const addr = `${this.subnet}.${name.charCodeAt(0) - 96}`;
    const host: Host = { name, ns, addr, veth };
    this.hosts.set(name, host);
    ip(['netns', 'add', ns]);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', peer]);
    ip(['link', 'set', peer, 'netns', ns]);
    ip(['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
    ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    ip(['link', 'set', veth, 'master', this.bridge]);
    ip(['link', 'set', veth, 'up']);
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** The address of host `name` (also of one not added yet: a is .1, b .2, …). */
  addr(name: string): string {
    return this.hosts.get(name)?.addr ?? `${this.subnet}.${name.charCodeAt(0) - 96}`;
  }

  /** Takes the host off the network: its veth's bridge end goes down (no error on the host, just silence). */
  cut(name: string): void {
    ip(['link', 'set', this.host(name).veth, 'down']);
  }

  restore(name: string): void {
    ip(['link', 'set', this.host(name).veth, 'up']);
  }

  /** Runs `cmd args` inside the host to its end (synchronously, at most `timeoutMs`). */
  run(name: string, cmd: string, args: string[], timeoutMs = 10_000) {
    return spawnSync('ip', ['netns', 'exec', this.host(name).ns, cmd, ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
    });
  }

  /** Starts `cmd args` inside the host; `destroy()` kills it if it still runs. */
  spawn(name: string, cmd: string, args: string[], opts: HostProcessOptions = {}): HostProcess {
    const p = new HostProcess(this.host(name).ns, cmd, args, opts);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Stops what it started (SIGTERM, then SIGKILL), then removes the namespaces, veths and the bridge. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.procs].map((p) => p.stop('SIGTERM', 3000)));
    this.destroySync();
  }

  private destroySync(): void {
    this.destroyed = true;
    for (const p of this.procs) p.kill('SIGKILL');
    for (const h of this.hosts.values()) {
      killInside(h.ns);
      ip(['link', 'del', h.veth], true);
      ip(['netns', 'del', h.ns], true);
    }
    ip(['link', 'del', this.bridge], true);
  }
}

export interface HostProcessOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** stdin is a pipe (write with `write`), else /dev/null */
  stdin?: boolean;
}

/** A process inside a namespace (`ip netns exec` execs it: the child's pid is the process's own). */
export class HostProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done = false;
  private readonly lineListeners = new Set<(line: string) => void>();
  private partial = '';

  constructor(
    readonly ns: string,
    cmd: string,
    args: string[],
    opts: HostProcessOptions = {},
  ) {
    this.child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => {
      const s = d.toString();
      this.stdout += s;
      const lines = (this.partial + s).split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) for (const f of this.lineListeners) f(l);
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get output(): string {
    return `--- stdout\n${this.stdout.slice(-4000)}\n--- stderr\n${this.stderr.slice(-4000)}`;
  }

  /** Calls `f` with each whole line of stdout from now on; returns the function that stops it. */
  onLine(f: (line: string) => void): () => void {
    this.lineListeners.add(f);
    return () => this.lineListeners.delete(f);
  }

  write(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Resolves with stdout once `pattern` appears on it; rejects on exit or after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.stdout);
      if (m) return m;
      if (this.done) throw new Error(`${this.ns}: exited before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.ns}: no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.done && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Sends `signal`, SIGKILL after `killAfterMs`; resolves with how it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 15_000) {
    this.kill(signal);
    const t = setTimeout(() => this.kill('SIGKILL'), killAfterMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}
