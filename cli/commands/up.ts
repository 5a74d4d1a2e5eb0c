import { Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquireUpLock,
  AlreadyRunningError,
  AlreadyStartingError,
  DETACHED_ENV,
  lastLines,
  LogFollower,
  openUpLog,
  processRunning,
  readFrom,
  readRunFileRaw,
  readUpLock,
  signalProcess,
  waitForExit,
  CLUSTER_FILE,
  findRedisServer,
  loadCluster,
  MANAGED_REDIS_DIR,
  readLiveRunFile,
  redactRedisUrl,
  redisAppendonly,
  removeRunFile,
  runFilePath,
  startEmbedded,
  startManagedRedis,
  Supervisor,
  writeRunFile,
  type ClusterConfig,
  type EmbeddedCluster,
  type ManagedRedis,
  type RoleHandle,
  type RoleProcessInfo,
  type RunInfo,
  type RunMode,
  type RuntimeName,
} from '../../runtime/cluster/index.js';
import { detectRuntime } from '../../runtime/platform/index.js';
import { BaseCommand, binName, clusterDir, dirArg, dirHint, EXIT, shown } from '../base.js';

/** How long a clean stop may take before we give up on it. */
const STOP_TIMEOUT_MS = 15_000;
/** Redis modes: the roles stop one group after the other, each with its own timeout. */
const REDIS_STOP_TIMEOUT_MS = 60_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** --detach: how long the background cluster may take to get ready (seconds), by default. */
const DETACH_READY_TIMEOUT_S = 120;
/** Lines of up.log shown when a background start fails. */
const LOG_TAIL_LINES = 20;

export default class Up extends BaseCommand {
  static override summary = 'Start the whole cluster: monitor, router, manager, msg_servers and gateway.';
  static override description = `Chooses how to run the cluster of DIR, and says which and why:

- external Redis: with --redis URL, or "redis" in fishchat.json. Every role is its own child process (on --runtime node, bun or deno), over Redis pub/sub and the Redis store.
- managed Redis: no Redis URL, but redis-server is on PATH. A private redis-server for this cluster (127.0.0.1, a free port, appendonly on, data in .fishchat/redis), then every role in its own process as above; the redis-server is stopped after the roles.
- embedded: no Redis at all, or --embedded. Every role in this process, an in-process bus, and the store in SQLite under the cluster directory (.fishchat/data), so a restart loses nothing.

A directory without fishchat.json runs with the defaults (gateway 17000, msg_servers 19000 and 19001, manager 18000, router 20000, monitor 21000, all on 127.0.0.1) and gets a secret in .fishchat/secret on first start.

Prints one ready line per role with its addresses, then the roles' log lines prefixed with role and id; the addresses are also written to .fishchat/run.json, where \`fishchat send\` and \`fishchat status\` find them. In the Redis modes a role process that dies is restarted with backoff. Ctrl-C (SIGINT) or SIGTERM stops the cluster cleanly, in the reverse of the start order: the msg_servers kick their clients with "draining", the store is closed, and the exit code is 0.

With --detach the same cluster runs in the background: \`fishchat up\` starts itself again without --detach in a session of its own, its output (the same prefixed lines) appended to .fishchat/logs/up.log, waits until it is ready (its pid is in .fishchat/run.json), prints the ready lines and exits 0; \`fishchat down\` stops it. Not ready within --ready-timeout: the last lines of the log are printed, the background process is stopped, and the exit code is 1.

Only one \`fishchat up\` runs per directory (also while it starts: .fishchat/up.pid holds its pid); a second one is refused with exit code 2.`;
  static override examples = [
    { description: 'Start the cluster of the current directory (mode chosen as above)', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Start the cluster written by `fishchat init chat`', command: '<%= config.bin %> <%= command.id %> chat' },
    { description: 'Every role its own process, over a Redis you run', command: '<%= config.bin %> <%= command.id %> --redis redis://127.0.0.1:6379' },
    { description: 'The role processes on Bun', command: '<%= config.bin %> <%= command.id %> --redis redis://127.0.0.1:6379 --runtime bun' },
    { description: 'Everything in this process, even with redis-server on PATH', command: '<%= config.bin %> <%= command.id %> --embedded' },
    { description: 'Start the cluster of ./chat in the background; stop it with `fishchat down chat`', command: '<%= config.bin %> <%= command.id %> chat --detach' },
    { description: 'In the background over Redis, waiting up to 30 s for it to get ready', command: '<%= config.bin %> <%= command.id %> chat --detach --redis redis://127.0.0.1:6379 --ready-timeout 30' },
  ];
  static override args = { dir: dirArg };
  static override flags = {
    redis: Flags.string({
      description: 'run over this Redis (instead of fishchat.json "redis"): every role its own process',
      helpValue: 'URL',
      exclusive: ['embedded'],
    }),
    embedded: Flags.boolean({
      description: 'run every role in this process with the embedded store, even with Redis configured or redis-server on PATH',
      default: false,
    }),
    runtime: Flags.string({
      description: 'runtime of the role processes in the Redis modes (default: fishchat.json "runtime", else node)',
      options: ['node', 'bun', 'deno'],
    }),
    detach: Flags.boolean({
      description: 'run the cluster in the background (output in .fishchat/logs/up.log); exit once it is ready; `fishchat down` stops it',
      // no default: --ready-timeout depends on it being given
    }),
    'ready-timeout': Flags.integer({
      description: `with --detach: seconds to wait for the cluster to get ready (default ${DETACH_READY_TIMEOUT_S})`,
      helpValue: 'SECONDS',
      min: 1,
      dependsOn: ['detach'],
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Up);
    const started = performance.now();
    const dir = clusterDir(args.dir);
    let createdSecret: string | undefined;
    const config = await loadCluster(dir, {
      createSecret: true,
      onSecretCreated: (path) => (createdSecret = path),
      redis: flags.redis,
      runtime: flags.runtime as RuntimeName | undefined,
    });
    const running = await readLiveRunFile(runFilePath(dir));
    if (running && running.pid !== process.pid) throw alreadyRunning(dir, running);

    if (flags.detach) {
      if (createdSecret) this.log(`created ${shown(createdSecret)}  (the cluster secret, mode 0600)`);
      return this.runDetached(dir, flags);
    }
    // Started by `up --detach`: say how to stop it; the role processes need not know.
    const detached = process.env[DETACHED_ENV] === '1';
    delete process.env[DETACHED_ENV];
    const lock = acquireUpLock(dir);
    try {
      await this.runForeground(dir, config, flags, { started, createdSecret, detached });
    } finally {
      lock.release();
    }
    // Everything is closed; should a stray handle keep the event loop alive, do not hang.
    setTimeout(() => process.exit(EXIT.ok), 2000).unref();
  }

  private async runForeground(
    dir: string,
    config: ClusterConfig,
    flags: { redis?: string; embedded: boolean; runtime?: string },
    o: { started: number; createdSecret?: string; detached: boolean },
  ): Promise<void> {
    const { started, createdSecret } = o;
    const defaults = existsSync(join(dir, CLUSTER_FILE)) ? '' : ` (no ${CLUSTER_FILE}: the defaults)`;
    this.log(`fishchat up: cluster "${config.cluster}" in ${shown(dir)}${defaults}`);
    if (createdSecret) this.log(`created ${shown(createdSecret)}  (the cluster secret, mode 0600)`);

    const choice = chooseMode(config, flags);
    const roleIds = [config.monitor.id, config.router.id, config.manager.id, ...config.msgServers.map((m) => m.id), config.gateway.id];
    const idWidth = Math.max(...roleIds.map((id) => id.length));
    const prefix = (role: string, id: string) => `${role.padEnd(10)}  ${id.padEnd(idWidth)}`;
    const logLine = (role: string, id: string, line: string) => {
      for (const l of line.split('\n')) this.log(`${prefix(role, id)}  ${l}`);
    };

    // Signals that arrive while starting stop the cluster as soon as it is up.
    let signalled: string | undefined;
    let wake: (() => void) | undefined;
    const onSignal = (signal: string) => {
      if (signalled !== undefined) {
        this.logToStderr(`${signal} again: exiting without a clean stop`);
        process.exit(EXIT.failed);
      }
      signalled = signal;
      wake?.();
    };
    for (const s of SIGNALS) process.on(s, onSignal);
    // FISHCHAT_EXIT_WITH_PARENT=1 (set by `fishchat bench` for the cluster it starts): when the
    // process that started this `up` is gone (even by kill -9), stop cleanly instead of running on.
    if (process.env.FISHCHAT_EXIT_WITH_PARENT === '1') {
      const parent = process.ppid;
      const watch = setInterval(() => {
        if (process.ppid !== parent) {
          clearInterval(watch);
          // Its pipes may be gone with it: a write error must not cut the clean stop short.
          process.stdout.on('error', () => {});
          process.stderr.on('error', () => {});
          onSignal('parent exited');
        }
      }, 500);
      watch.unref();
    }
    const waitForSignal = async () => {
      if (signalled === undefined) await new Promise<void>((resolve) => (wake = resolve));
      return signalled!;
    };
    const ready = (ms: number, gateway: string) => {
      const stop = o.detached ? `stop with: ${binName()} down${dirHint(dir)}` : 'stop with Ctrl-C';
      this.log(`cluster ready in ${ms} ms: clients connect to the gateway at ${gateway}; ${stop}`);
      const dirFlag = dirHint(dir) ? ` --dir${dirHint(dir)}` : '';
      this.log(`try:   ${binName()} send --as alice --to bob "hello"${dirFlag}`);
      this.log(`       ${binName()} status${dirFlag}`);
    };

    try {
      if (choice.mode === 'embedded') {
        await this.runEmbedded(config, choice.why, flags.runtime !== undefined, { prefix, logLine, started, ready, waitForSignal });
      } else {
        await this.runRedis(config, choice, { prefix, logLine, started, ready, waitForSignal, onFatal: (why) => onSignal(why) });
      }
    } finally {
      for (const s of SIGNALS) process.off(s, onSignal);
    }
  }

  /**
   * --detach: starts `fishchat up DIR …` (these flags, without --detach) in
   * the background, its output appended to up.log, and waits for it to be
   * ready. Prints its lines up to its "cluster ready" line as they come.
   */
  private async runDetached(
    dir: string,
    flags: { redis?: string; embedded: boolean; runtime?: string; 'ready-timeout'?: number },
  ): Promise<void> {
    const starting = readUpLock(dir);
    if (starting !== undefined) throw new AlreadyStartingError(dir, starting);
    const timeoutS = flags['ready-timeout'] ?? DETACH_READY_TIMEOUT_S;

    const args = ['up', dir];
    if (flags.redis !== undefined) args.push('--redis', flags.redis);
    if (flags.embedded) args.push('--embedded');
    if (flags.runtime !== undefined) args.push('--runtime', flags.runtime);
    // The entry that runs us (bin/run.js, or bin/dev.js with its loader in execArgv).
    const entry = process.argv[1] ?? join(this.config.root, 'bin', 'run.js');

    const log = openUpLog(dir);
    let pid: number;
    let exited: { code: number | null; signal: NodeJS.Signals | null; error?: string } | undefined;
    try {
      writeSync(log.fd, `==> ${new Date().toISOString()}  fishchat ${args.join(' ')}  (started by fishchat up --detach)\n`);
      const child = spawn(process.execPath, [...process.execArgv, entry, ...args], {
        cwd: process.cwd(),
        env: { ...process.env, [DETACHED_ENV]: '1' },
        stdio: ['ignore', log.fd, log.fd],
        detached: true,
      });
      child.on('error', (err) => (exited = { code: null, signal: null, error: err.message }));
      child.on('exit', (code, signal) => (exited ??= { code, signal }));
      child.unref();
      if (child.pid === undefined) {
        await new Promise((r) => setImmediate(r));
        this.fail(`cannot start ${process.execPath} ${entry} up: ${exited?.error ?? 'no pid'}`);
      }
      pid = child.pid;
    } finally {
      closeSync(log.fd);
    }

    const logShown = shown(log.path);
    const tail = () => lastLines(readFrom(log.path, log.offset), LOG_TAIL_LINES).map((l) => `  ${l}`);
    // Ctrl-C while waiting cancels the start: the background `up` stops as soon as it is up.
    let cancelled: string | undefined;
    const onSignal = (signal: string) => (cancelled ??= signal);
    for (const s of SIGNALS) process.on(s, onSignal);

    const runFile = runFilePath(dir);
    const follower = new LogFollower(log.path, log.offset);
    const deadline = Date.now() + timeoutS * 1000;
    let readyLine = false;
    const show = (lines: string[]) => {
      for (const line of lines) {
        if (readyLine || line.startsWith('==> ')) continue;
        this.log(line);
        if (/^cluster ready in /.test(line)) readyLine = true;
      }
    };
    try {
      for (;;) {
        show(follower.poll());
        if (readyLine && readRunFileRaw(runFile)?.pid === pid) break;
        if (exited !== undefined || !processRunning(pid)) {
          await new Promise((r) => setTimeout(r, 50)); // its last words
          show(follower.flush());
          const how = exited?.error
            ? `could not be started: ${exited.error}`
            : exited?.signal
              ? `was killed by ${exited.signal}`
              : `exited with code ${exited?.code ?? '?'}`;
          this.logToStderr(`Error: the background fishchat up (pid ${pid}) ${how} before the cluster was ready; the last lines of ${logShown}:`);
          for (const l of tail()) this.logToStderr(l);
          const code = exited?.code;
          this.exit(code === EXIT.usage || code === EXIT.unreachable ? code : EXIT.failed);
        }
        if (cancelled !== undefined || Date.now() >= deadline) {
          show(follower.flush());
          const why = cancelled !== undefined ? `${cancelled}: cancelled` : `the cluster was not ready within ${timeoutS} s`;
          this.logToStderr(`Error: ${why}; stopping the background fishchat up (pid ${pid})`);
          if (cancelled === undefined) {
            this.logToStderr(`the last lines of ${logShown}:`);
            for (const l of tail()) this.logToStderr(l);
          }
          signalProcess(pid, 'SIGTERM');
          if (!(await waitForExit(pid, REDIS_STOP_TIMEOUT_MS + 5000))) {
            this.logToStderr(`it did not stop: killing it (SIGKILL)`);
            signalProcess(pid, 'SIGKILL');
            await waitForExit(pid, 5000);
          }
          this.exit(EXIT.failed);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      for (const s of SIGNALS) process.off(s, onSignal);
    }

    const dirFlag = dirHint(dir) ? ` --dir${dirHint(dir)}` : '';
    this.log(`running in the background: pid ${pid}, logs in ${logShown}`);
    this.log(`try:   ${binName()} send --as alice --to bob "hello"${dirFlag}`);
    this.log(`       ${binName()} status${dirFlag}`);
  }

  private async runEmbedded(config: ClusterConfig, why: string, runtimeGiven: boolean, h: Helpers): Promise<void> {
    this.log(
      `mode: embedded (${why}: every role runs in this process on ${detectRuntime()}, ` +
        `with an in-process bus and the SQLite store in ${shown(config.dataDir)})`,
    );
    if (config.redis !== undefined) this.log(`note: "redis" (${redactRedisUrl(config.redis)}) is not used in embedded mode`);
    if (config.runtime !== detectRuntime() || runtimeGiven) {
      this.log(`note: "runtime": "${config.runtime}" applies to role processes; embedded mode runs in this ${detectRuntime()} process`);
    }
    const cluster: EmbeddedCluster = await startEmbedded(config, {
      log: h.logLine,
      onReady: (r) => this.log(`ready  ${h.prefix(r.role, r.id)}  ${addresses(r)}`),
    });
    h.ready(Math.round(performance.now() - h.started), cluster.gateway);

    const signal = await h.waitForSignal();
    this.log(`stopping (${signal}) …`);
    const timer = setTimeout(() => {
      this.logToStderr(`the cluster did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting`);
      process.exit(EXIT.failed);
    }, STOP_TIMEOUT_MS);
    try {
      await cluster.stop();
    } finally {
      clearTimeout(timer);
    }
    this.log('stopped');
  }

  private async runRedis(config: ClusterConfig, choice: ModeChoice, h: Helpers & { onFatal: (why: string) => void }): Promise<void> {
    const runtime = config.runtime;
    const runFile = runFilePath(config.dir);
    let managed: ManagedRedis | undefined;
    let url: string;
    if (choice.mode === 'managed') {
      const dataDir = join(config.dir, MANAGED_REDIS_DIR);
      this.log(
        `mode: managed Redis (${choice.why}: a private redis-server for this cluster on 127.0.0.1, ` +
          `appendonly on, data in ${shown(dataDir)}; every role in its own ${runtime} process)`,
      );
      // Once it runs, its warnings (`#`) only: its start-up banner and notices are noise next to the
      // roles' lines (a failed start quotes its last lines in the error).
      let redisUp = false;
      managed = await startManagedRedis({
        clusterDir: config.dir,
        bin: choice.redisServer,
        notice: (line) => h.logLine('redis', 'redis-server', line),
        log: (line) => {
          if (redisUp && (/^\d+:[A-Z] .* # /.test(line) || !/^\d+:[A-Z] /.test(line))) h.logLine('redis', 'redis-server', line);
        },
      });
      redisUp = true;
      url = managed.url;
      this.log(`ready  ${h.prefix('redis', 'redis-server')}  ${url}  pid ${managed.pid}`);
    } else {
      url = config.redis!;
      this.log(`mode: Redis at ${redactRedisUrl(url)} (${choice.why}: every role in its own ${runtime} process, over Redis pub/sub and the Redis store)`);
      const aof = await redisAppendonly(url);
      if (aof === false) {
        this.log(`warning: the Redis at ${redactRedisUrl(url)} runs without appendonly: a Redis restart loses what it held since its last snapshot`);
      }
    }

    const startedAt = new Date().toISOString();
    const info = (roles: RoleProcessInfo[]): RunInfo => {
      const gw = roles.find((r) => r.role === 'gateway');
      const mon = roles.find((r) => r.role === 'monitor');
      return {
        pid: process.pid,
        mode: choice.mode as RunMode,
        redis: managed ? { url, pid: managed.pid, dir: managed.dir } : { url: redactRedisUrl(url) },
        runtime,
        gateway: gw?.addresses.tcp ?? '',
        monitor: mon?.addresses.http,
        roles: roles.map((r) => ({ role: r.role, id: r.id, addresses: { ...r.addresses }, pid: r.pid })),
        startedAt,
      };
    };
    // run.json is rewritten when a restarted role comes back (its pid, maybe its ports): one write at a time.
    let writes: Promise<void> = Promise.resolve();
    let published = false;
    const supervisor = new Supervisor({
      config,
      redis: url,
      runtime,
      log: (role, id, line) => h.logLine(role, id, line),
      notice: (role, id, line) => h.logLine(role, id, line),
      onReady: (r, restarted) => {
        this.log(`ready  ${h.prefix(r.role, r.id)}  ${addresses(r)}  pid ${r.pid}`);
        if (restarted && published) {
          writes = writes.then(() => writeRunFile(runFile, info(supervisor.roles))).catch(() => {});
        }
      },
    });

    let roles: RoleProcessInfo[];
    try {
      roles = await supervisor.start();
      await writeRunFile(runFile, info(roles));
      published = true;
    } catch (err) {
      await supervisor.stop().catch(() => {});
      await managed?.stop().catch(() => {});
      throw err;
    }
    const gateway = roles.find((r) => r.role === 'gateway')!.addresses.tcp!;
    h.ready(Math.round(performance.now() - h.started), gateway);

    let redisDied = false;
    let stopping = false;
    void managed?.exited.then(({ code, signal }) => {
      if (stopping) return;
      redisDied = true;
      this.logToStderr(`Error: the managed redis-server exited (${signal ? `killed by ${signal}` : `code ${code}`}); stopping the cluster`);
      h.onFatal('redis-server exited');
    });
    const signal = await h.waitForSignal();
    stopping = true;
    this.log(`stopping (${signal}) …`);
    const timer = setTimeout(() => {
      this.logToStderr(`the cluster did not stop within ${REDIS_STOP_TIMEOUT_MS / 1000} s; exiting`);
      process.exit(EXIT.failed);
    }, REDIS_STOP_TIMEOUT_MS);
    try {
      await supervisor.stop();
      if (managed) {
        await managed.stop();
        this.log(`${h.prefix('redis', 'redis-server')}  stopped`);
      }
    } finally {
      clearTimeout(timer);
      await writes;
      await removeRunFile(runFile);
    }
    this.log('stopped');
    if (redisDied) this.exit(EXIT.failed);
  }
}

/** AlreadyRunningError, saying how to stop what runs. */
function alreadyRunning(dir: string, info: RunInfo): AlreadyRunningError {
  const err = new AlreadyRunningError(dir, info);
  err.message =
    `a cluster is already running in ${dir} (fishchat up, pid ${info.pid}, gateway ${info.gateway}); ` +
    `stop it first with: ${binName()} down${dirHint(dir)} (or Ctrl-C where it runs)`;
  return err;
}

interface Helpers {
  prefix: (role: string, id: string) => string;
  logLine: (role: string, id: string, line: string) => void;
  started: number;
  ready: (ms: number, gateway: string) => void;
  waitForSignal: () => Promise<string>;
}

interface ModeChoice {
  mode: RunMode;
  /** why this mode, as the user reads it */
  why: string;
  /** managed: the redis-server found on PATH */
  redisServer?: string;
}

/** DESIGN.md "Three ways to run": --embedded, else a Redis URL, else redis-server on PATH, else embedded. */
function chooseMode(config: ClusterConfig, flags: { redis?: string; embedded: boolean }): ModeChoice {
  if (flags.embedded) return { mode: 'embedded', why: '--embedded' };
  if (flags.redis !== undefined) return { mode: 'redis', why: 'from --redis' };
  if (config.redis !== undefined) return { mode: 'redis', why: `"redis" in ${CLUSTER_FILE}` };
  const redisServer = findRedisServer();
  if (redisServer) return { mode: 'managed', why: `no Redis URL given, and redis-server is on PATH (${redisServer})`, redisServer };
  return { mode: 'embedded', why: 'no Redis configured, and no redis-server on PATH' };
}

function addresses(r: Pick<RoleHandle, 'addresses'>): string {
  const parts: string[] = [];
  if (r.addresses.tcp) parts.push(`tcp ${r.addresses.tcp}`);
  if (r.addresses.http) parts.push(`http ${r.addresses.http}`);
  return parts.join('  ');
}
