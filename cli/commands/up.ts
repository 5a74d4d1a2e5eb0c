import { Flags } from '@oclif/core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  AlreadyRunningError,
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

export default class Up extends BaseCommand {
  static override summary = 'Start the whole cluster: monitor, router, manager, msg_servers and gateway.';
  static override description = `Chooses how to run the cluster of DIR, and says which and why:

- external Redis: with --redis URL, or "redis" in fishchat.json. Every role is its own child process (on --runtime node, bun or deno), over Redis pub/sub and the Redis store.
- managed Redis: no Redis URL, but redis-server is on PATH. A private redis-server for this cluster (127.0.0.1, a free port, appendonly on, data in .fishchat/redis), then every role in its own process as above; the redis-server is stopped after the roles.
- embedded: no Redis at all, or --embedded. Every role in this process, an in-process bus, and the store in SQLite under the cluster directory (.fishchat/data), so a restart loses nothing.

A directory without fishchat.json runs with the defaults (gateway 17000, msg_servers 19000 and 19001, manager 18000, router 20000, monitor 21000, all on 127.0.0.1) and gets a secret in .fishchat/secret on first start.

Prints one ready line per role with its addresses, then the roles' log lines prefixed with role and id; the addresses are also written to .fishchat/run.json, where \`fishchat send\` and \`fishchat status\` find them. In the Redis modes a role process that dies is restarted with backoff. Ctrl-C (SIGINT) or SIGTERM stops the cluster cleanly, in the reverse of the start order: the msg_servers kick their clients with "draining", the store is closed, and the exit code is 0.`;
  static override examples = [
    { description: 'Start the cluster of the current directory (mode chosen as above)', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Start the cluster written by `fishchat init chat`', command: '<%= config.bin %> <%= command.id %> chat' },
    { description: 'Every role its own process, over a Redis you run', command: '<%= config.bin %> <%= command.id %> --redis redis://127.0.0.1:6379' },
    { description: 'The role processes on Bun', command: '<%= config.bin %> <%= command.id %> --redis redis://127.0.0.1:6379 --runtime bun' },
    { description: 'Everything in this process, even with redis-server on PATH', command: '<%= config.bin %> <%= command.id %> --embedded' },
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
    if (running && running.pid !== process.pid) throw new AlreadyRunningError(dir, running);

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
    const waitForSignal = async () => {
      if (signalled === undefined) await new Promise<void>((resolve) => (wake = resolve));
      return signalled!;
    };
    const ready = (ms: number, gateway: string) => {
      this.log(`cluster ready in ${ms} ms: clients connect to the gateway at ${gateway}; stop with Ctrl-C`);
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
    // Everything is closed; should a stray handle keep the event loop alive, do not hang.
    setTimeout(() => process.exit(EXIT.ok), 2000).unref();
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
