import { Flags } from '@oclif/core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquireUpLock,
  AlreadyRunningError,
  AlreadyStartingError,
  awaitDetachedUp,
  chooseMode,
  CLUSTER_FILE,
  DEFAULT_EMBEDDED_THREADS,
  DETACHED_ENV,
  describeMode,
  lastLines,
  loadCluster,
  MAX_EMBEDDED_THREADS,
  readFrom,
  readRunInfo,
  readUpLock,
  spawnDetachedUp,
  startUp,
  stopWithin,
  STOP_SIGNALS,
  terminate,
  UP_STOP_TIMEOUT_MS,
  type ClusterConfig,
  type DetachedOutcome,
  type RunInfo,
  type RuntimeName,
} from '../../runtime/cluster/index.js';
import { BaseCommand, binName, clusterDir, dirArg, dirHint, example, EXIT, RUNTIME_OPTIONS, shown } from '../base.js';
import { addressList } from '../format.js';

/** --detach: how long the background cluster may take to get ready (seconds), by default. */
const DETACH_READY_TIMEOUT_S = 120;
/** Lines of up.log shown when a background start fails. */
const LOG_TAIL_LINES = 20;

export default class Up extends BaseCommand {
  static override summary = 'Start the whole cluster: monitor, router, manager, msg_servers and gateway.';
  static override description = `Chooses how to run the cluster of DIR, and says which and why:

- external Redis: with --redis URL, or "redis" in fishchat.json. Every role is its own child process (on --runtime node, bun or deno), over Redis pub/sub and the Redis store.
- managed Redis: no Redis URL, but redis-server is on PATH. A private redis-server for this cluster (127.0.0.1, a free port, appendonly on, data in .fishchat/redis), then every role in its own process as above; the redis-server is stopped after the roles.
- embedded: no Redis at all, or --embedded. Every role in this process, an in-process bus, and the store in SQLite under the cluster directory (.fishchat/data), so a restart loses nothing. All on one thread by default; --threads N runs the msg_servers on N − 1 worker threads of it, the store and the other roles on the main thread.

A directory without fishchat.json runs with the defaults (gateway 17000, msg_servers 19000 and 19001, manager 18000, router 20000, monitor 21000, all on 127.0.0.1) and gets a secret in .fishchat/secret on first start.

Prints one ready line per role with its addresses, then the roles' log lines prefixed with role and id; the addresses are also written to .fishchat/run.json, where \`fishchat send\` and \`fishchat status\` find them. In the Redis modes a role process that dies is restarted with backoff. Ctrl-C (SIGINT) or SIGTERM stops the cluster cleanly, in the reverse of the start order: the msg_servers kick their clients with "draining", the store is closed, and the exit code is 0.

With --detach the same cluster runs in the background: \`fishchat up\` starts itself again without --detach in a session of its own, its output (the same prefixed lines) appended to .fishchat/logs/up.log, waits until it is ready (its pid is in .fishchat/run.json), prints the ready lines and exits 0; \`fishchat down\` stops it. Not ready within --ready-timeout: the last lines of the log are printed, the background process is stopped, and the exit code is 1.

Only one \`fishchat up\` runs per directory (also while it starts: .fishchat/up.pid holds its pid); a second one is refused with exit code 2.`;
  static override examples = [
    example('Start the cluster of the current directory (mode chosen as above)'),
    example('Start the cluster written by `fishchat init chat`', 'chat'),
    example('Every role its own process, over a Redis you run', '--redis redis://127.0.0.1:6379'),
    example('The role processes on Bun', '--redis redis://127.0.0.1:6379 --runtime bun'),
    example('Everything in this process, even with redis-server on PATH', '--embedded'),
    example('Start the cluster of ./chat in the background; stop it with `fishchat down chat`', 'chat --detach'),
    example(
      'In the background over Redis, waiting up to 30 s for it to get ready',
      'chat --detach --redis redis://127.0.0.1:6379 --ready-timeout 30',
    ),
  ];
  static override args = { dir: dirArg };
  static override flags = {
    redis: Flags.string({
      description: 'run over this Redis (instead of fishchat.json "redis"): every role its own process',
      helpValue: 'URL',
      exclusive: ['embedded'],
    }),
    embedded: Flags.boolean({
      description:
        'run every role in this process with the embedded store, even with Redis configured or redis-server on PATH',
      default: false,
    }),
    runtime: Flags.string({
      description: 'runtime of the role processes in the Redis modes (default: fishchat.json "runtime", else node)',
      options: RUNTIME_OPTIONS,
    }),
    threads: Flags.integer({
      description: `embedded: threads of the process (default ${DEFAULT_EMBEDDED_THREADS.node}): the msg_servers on N − 1 worker threads, the store and the other roles on the main one; 1: every role on one thread`,
      helpValue: 'N',
      min: 1,
      max: MAX_EMBEDDED_THREADS,
      env: 'FISHCHAT_THREADS',
    }),
    detach: Flags.boolean({
      description:
        'run the cluster in the background (output in .fishchat/logs/up.log); exit once it is ready; `fishchat down` stops it',
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
    const running = await readRunInfo(dir);
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
    flags: { redis?: string; embedded: boolean; runtime?: string; threads?: number },
    o: { started: number; createdSecret?: string; detached: boolean },
  ): Promise<void> {
    const defaults = existsSync(join(dir, CLUSTER_FILE)) ? '' : ` (no ${CLUSTER_FILE}: the defaults)`;
    this.log(`fishchat up: cluster "${config.cluster}" in ${shown(dir)}${defaults}`);
    if (o.createdSecret) this.log(`created ${shown(o.createdSecret)}  (the cluster secret, mode 0600)`);

    const choice = chooseMode(config, flags);
    const roleIds = [
      config.monitor.id,
      config.router.id,
      config.manager.id,
      ...config.msgServers.map((m) => m.id),
      config.gateway.id,
    ];
    const idWidth = Math.max(...roleIds.map((id) => id.length));
    const prefix = (role: string, id: string) => `${role.padEnd(10)}  ${id.padEnd(idWidth)}`;
    const logLine = (role: string, id: string, line: string) => {
      for (const l of line.split('\n')) this.log(`${prefix(role, id)}  ${l}`);
    };

    // Signals that arrive while starting stop the cluster as soon as it is up.
    const signals = this.stopSignals();
    if (process.env.FISHCHAT_EXIT_WITH_PARENT === '1') signals.exitWithParent();
    try {
      for (const line of describeMode(config, choice, shown, flags.runtime !== undefined)) this.log(line);
      const cluster = await startUp(
        config,
        choice,
        {
          log: logLine,
          ready: (r) => {
            const pid = r.pid === undefined ? '' : `  pid ${r.pid}`;
            this.log(`ready  ${prefix(r.role, r.id)}  ${addressList(r.addresses)}${pid}`);
          },
          redisReady: (r) => this.log(`ready  ${prefix('redis', 'redis-server')}  ${r.url}  pid ${r.pid}`),
          warn: (line) => this.log(`warning: ${line}`),
          fatal: (message) => {
            this.logToStderr(`Error: ${message}; stopping the cluster`);
            signals.request('redis-server exited');
          },
        },
        { threads: flags.threads },
      );
      const stop = o.detached ? `stop with: ${binName()} down${dirHint(dir)}` : 'stop with Ctrl-C';
      const ms = Math.round(performance.now() - o.started);
      this.log(`cluster ready in ${ms} ms: clients connect to the gateway at ${cluster.gateway}; ${stop}`);
      this.tryLines(dir);

      const signal = await signals.wait();
      this.log(`stopping (${signal}) …`);
      await stopWithin(
        cluster.stopTimeoutMs,
        () => cluster.stop(),
        () => {
          this.logToStderr(`the cluster did not stop within ${cluster.stopTimeoutMs / 1000} s; exiting`);
          process.exit(EXIT.failed);
        },
      );
      this.log('stopped');
      if (cluster.failed) this.exit(EXIT.failed);
    } finally {
      signals.dispose();
    }
  }

  /**
   * --detach: starts `fishchat up DIR …` (these flags, without --detach) in
   * the background, its output appended to up.log, and waits for it to be
   * ready. Prints its lines up to its "cluster ready" line as they come.
   */
  private async runDetached(
    dir: string,
    flags: { redis?: string; embedded: boolean; runtime?: string; threads?: number; 'ready-timeout'?: number },
  ): Promise<void> {
    const starting = readUpLock(dir);
    if (starting !== undefined) throw new AlreadyStartingError(dir, starting);
    const timeoutS = flags['ready-timeout'] ?? DETACH_READY_TIMEOUT_S;

    const args = ['up', dir];
    if (flags.redis !== undefined) args.push('--redis', flags.redis);
    if (flags.embedded) args.push('--embedded');
    if (flags.runtime !== undefined) args.push('--runtime', flags.runtime);
    if (flags.threads !== undefined) args.push('--threads', String(flags.threads));
    // The entry that runs us (bin/run.js, or bin/dev.js with its loader in execArgv).
    const up = await spawnDetachedUp(dir, process.argv[1] ?? join(this.config.root, 'bin', 'run.js'), args);
    const { pid } = up;
    const logShown = shown(up.log.path);
    const tail = () => {
      for (const l of lastLines(readFrom(up.log.path, up.log.offset), LOG_TAIL_LINES)) this.logToStderr(`  ${l}`);
    };

    // Ctrl-C while waiting cancels the start: the background `up` stops as soon as it is up.
    let cancelled: string | undefined;
    const onSignal = (signal: string) => (cancelled ??= signal);
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
    let outcome: DetachedOutcome;
    try {
      const show = (line: string) => this.log(line);
      outcome = await awaitDetachedUp(dir, up, { timeoutMs: timeoutS * 1000, show, cancelled: () => cancelled });
    } finally {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    }
    if (outcome.kind === 'exited') {
      const e = outcome.exited;
      const how = e?.error
        ? `could not be started: ${e.error}`
        : e?.signal
          ? `was killed by ${e.signal}`
          : `exited with code ${e?.code ?? '?'}`;
      this.logToStderr(
        `Error: the background fishchat up (pid ${pid}) ${how} before the cluster was ready; ` +
          `the last lines of ${logShown}:`,
      );
      tail();
      this.exit(e?.code === EXIT.usage || e?.code === EXIT.unreachable ? e.code : EXIT.failed);
    }
    if (outcome.kind !== 'ready') {
      const late = `the cluster was not ready within ${timeoutS} s`;
      const why = outcome.kind === 'cancelled' ? `${outcome.signal}: cancelled` : late;
      this.logToStderr(`Error: ${why}; stopping the background fishchat up (pid ${pid})`);
      if (outcome.kind === 'timeout') {
        this.logToStderr(`the last lines of ${logShown}:`);
        tail();
      }
      const killing = () => this.logToStderr('it did not stop: killing it (SIGKILL)');
      await terminate(pid, UP_STOP_TIMEOUT_MS.redis + 5000, killing);
      this.exit(EXIT.failed);
    }
    this.log(`running in the background: pid ${pid}, logs in ${logShown}`);
    this.tryLines(dir);
  }

  /** What to run next, once the cluster is ready. */
  private tryLines(dir: string): void {
    const dirFlag = dirHint(dir) ? ` --dir${dirHint(dir)}` : '';
    this.log(`try:   ${binName()} send --as alice --to bob "hello"${dirFlag}`);
    this.log(`       ${binName()} status${dirFlag}`);
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
