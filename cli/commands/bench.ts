import { Flags } from '@oclif/core';
import {
  checkRedisUrl,
  loadCluster,
  MAX_EMBEDDED_THREADS,
  MAX_MSG_SERVERS,
  parseHostPort,
  readRunInfo,
  type RuntimeName,
} from '../../runtime/cluster/index.js';
import { BenchUsageError, externalCluster, startCluster, type Target } from '../bench/cluster.js';
import { ServerError, type Transport } from '../bench/conn.js';
import { healthMemory, perConnection, type ServerMemoryFigure } from '../bench/memory.js';
import { openFilesLimit, ProcessMeter, rssBytes, round1 } from '../bench/proc.js';
import { machine, percentiles, toJson, toText, type BenchResult } from '../bench/report.js';
import {
  runIdle,
  runP2p,
  runTopic,
  SETUP_TIMEOUT_MS,
  type Workload,
  type WorkloadOptions,
  type WorkloadResult,
} from '../bench/workloads.js';
import { BaseCommand, clusterDir, example, EXIT, shown } from '../base.js';

/** File descriptors the load generator needs besides its connections. */
const FD_HEADROOM = 100;
/** Requests a msg_server lets wait per connection (runtime/roles/msg_server: MAX_QUEUED_REQUESTS). */
const MAX_INFLIGHT = 10_000;
/** `body` may take maxFrame − 512 bytes (docs/protocol.md §1), with the default maxFrame. */
const MAX_SIZE = 65_536 - 512;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A number of seconds from a flag: finite, above (or at least) min. */
function seconds(name: string, s: string, min: number, exclusive: boolean): number | string {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v) || (exclusive ? v <= min : v < min)) {
    return `--${name} must be a number of seconds ${exclusive ? 'above' : 'of at least'} ${min}, found ${JSON.stringify(s)}`;
  }
  return v;
}

export default class Bench extends BaseCommand {
  static override summary =
    'Load a cluster over the real protocol and print msgs/s, latency percentiles, CPU and memory.';
  static override description =
    `A load generator in the style of nats-bench. By default it starts a cluster of its own for the run (a temporary cluster directory, every port from the OS, the send-rate and connection limits raised out of the way): embedded (\`fishchat up --embedded\`), or with --redis one process per role over that Redis (\`fishchat up --redis URL\`), on --runtime; it stops the cluster and removes its directory (and, on Redis, its keys) at the end. With --gateway it loads a cluster that already runs.

Workloads (one at a time):
- p2p (default, --pairs N): N senders (push: false) each send to their own receiver (push: true, ack every 64 messages); --cross puts each receiver on another msg_server than its sender.
- topic (--topic-members N): one topic, N members spread round-robin over the msg_servers; --publishers P of them publish with topic_send; every delivery to every member counts.
- idle (--idle N): N logged-in push connections to one msg_server; reports its RSS per connection once they settled (--warmup), measured at the end of --duration (/proc VmRSS, garbage included), and its own figure per connection (RSS and heap from its /health right after a full GC, before the first connection and after the window).

--transport ws: every client is a WebSocket to its msg_server's \`ws\` URL (from the gateway's route reply; one binary message per CBOR map, docs/protocol.md §1a) instead of a TCP connection; the workloads and the measurements are the same.

Every client connects and logs in before the warmup; latency is from just before a send is written to when the receiver sees the push (one clock, this process). Each sender keeps at most --inflight messages not yet delivered, so the rate is the sustainable one. CPU % is of one core over the measured window; RSS at its end.

Progress goes to stderr; the report (or with --json one JSON line) to stdout. Exit codes: 0 done; 1 the run failed (the server refused a login, the cluster died, …); 2 bad flags; 3 the cluster could not be reached.`;
  static override examples = [
    example('100 p2p pairs on an embedded cluster of its own, 10 s'),
    example('1000 pairs, each receiver on another msg_server, as JSON', '--pairs 1000 --cross --json'),
    example(
      'One process per role over Redis, the roles on Bun',
      '--pairs 1000 --redis redis://127.0.0.1:6379 --runtime bun',
    ),
    example('Topic fan-out: 10000 members, 2 publishers', '--topic-members 10000 --publishers 2'),
    example('Memory per idle connection on one msg_server', '--idle 15000'),
    example(
      'The same cross-server p2p over WebSocket (/v1/ws on each msg_server)',
      '--pairs 1000 --cross --transport ws --redis redis://127.0.0.1:6379',
    ),
    example(
      'A running cluster (the secret of ./chat signs the tokens)',
      '--gateway 127.0.0.1:17000 --dir chat --pairs 50 --duration 5',
    ),
  ];
  static override flags = {
    pairs: Flags.integer({ description: 'p2p workload: sender/receiver pairs (default 100)', helpValue: 'N' }),
    cross: Flags.boolean({
      description: 'p2p: each receiver on another msg_server than its sender (default: the same)',
      default: false,
    }),
    'topic-members': Flags.integer({
      description: 'topic workload: members of the one topic, round-robin over the msg_servers',
      helpValue: 'N',
    }),
    publishers: Flags.integer({
      description: 'topic: members that publish with topic_send (default 1)',
      helpValue: 'P',
    }),
    idle: Flags.integer({
      description: 'idle workload: logged-in push connections to one msg_server; reports RSS per connection',
      helpValue: 'N',
    }),
    size: Flags.integer({ description: 'payload bytes (at least 8: the send time)', default: 100, helpValue: 'BYTES' }),
    duration: Flags.string({ description: 'seconds measured', default: '10', helpValue: 'SECONDS' }),
    warmup: Flags.string({
      description: 'seconds of load before measuring (idle: to settle)',
      default: '2',
      helpValue: 'SECONDS',
    }),
    inflight: Flags.integer({
      description: 'messages each sender keeps not yet delivered',
      default: 1,
      helpValue: 'K',
    }),
    transport: Flags.string({
      description:
        "how the clients reach the msg_servers: raw TCP (their `addr`) or WebSocket (their `ws` URL from the gateway's route reply)",
      options: ['tcp', 'ws'],
      default: 'tcp',
    }),
    runtime: Flags.string({
      description: 'runtime of the cluster it starts (embedded: of the `up` process; --redis: of the role processes)',
      options: ['node', 'bun', 'deno'],
    }),
    redis: Flags.string({
      description: 'start the cluster over this Redis, one process per role (default: embedded)',
      helpValue: 'URL',
    }),
    'msg-servers': Flags.integer({ description: 'msg_servers of the cluster it starts (default 2)', helpValue: 'N' }),
    threads: Flags.integer({
      description:
        "embedded cluster it starts: `fishchat up --threads N` (1: every role on one thread, the single-thread mode; default: up's)",
      helpValue: 'N',
      min: 1,
      max: MAX_EMBEDDED_THREADS,
    }),
    gateway: Flags.string({
      description:
        'load the running cluster behind this gateway instead of starting one (needs its secret: --secret, --dir or FISHCHAT_SECRET)',
      helpValue: 'HOST:PORT',
    }),
    secret: Flags.string({
      description: "with --gateway: the cluster secret that signs the clients' tokens",
      helpValue: 'SECRET',
    }),
    dir: Flags.string({
      char: 'd',
      description:
        'with --gateway: the cluster directory whose secret signs the tokens; alone: load the cluster running in DIR',
      helpValue: 'DIR',
    }),
    json: Flags.boolean({ description: 'print the result as one JSON line', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Bench);
    const usage = (m: string): never => this.fail(m, EXIT.usage);

    // ---- the workload
    const given = (['pairs', 'topic-members', 'idle'] as const).filter((k) => flags[k] !== undefined);
    if (given.length > 1)
      usage(
        `${given.map((k) => `--${k}`).join(' and ')} pick different workloads: give one of --pairs (p2p), --topic-members (topic) or --idle`,
      );
    const workload: Workload =
      flags['topic-members'] !== undefined ? 'topic' : flags.idle !== undefined ? 'idle' : 'p2p';
    const positive = (name: string, v: number | undefined) => {
      if (v !== undefined && v <= 0) usage(`--${name} must be at least 1, found ${v}`);
    };
    positive('pairs', flags.pairs);
    positive('topic-members', flags['topic-members']);
    positive('idle', flags.idle);
    positive('publishers', flags.publishers);
    positive('msg-servers', flags['msg-servers']);
    if (flags.cross && workload !== 'p2p')
      usage(`--cross is for the p2p workload (--pairs), not --${workload === 'topic' ? 'topic-members' : 'idle'}`);
    if (flags.publishers !== undefined && workload !== 'topic')
      usage('--publishers is for the topic workload: add --topic-members N');
    const pairs = workload === 'p2p' ? (flags.pairs ?? 100) : 0;
    const topicMembers = flags['topic-members'] ?? 0;
    const publishers = workload === 'topic' ? (flags.publishers ?? 1) : 0;
    const idle = flags.idle ?? 0;
    if (publishers > topicMembers)
      usage(`--publishers ${publishers} is more than --topic-members ${topicMembers}: publishers are members`);
    if (flags.size < 8)
      usage(`--size must be at least 8 bytes (the payload carries its send time), found ${flags.size}`);
    if (flags.size > MAX_SIZE)
      usage(`--size must be at most ${MAX_SIZE} bytes (maxFrame 65536 − 512), found ${flags.size}`);
    const duration = seconds('duration', flags.duration, 0, true);
    if (typeof duration === 'string') usage(duration);
    const warmup = seconds('warmup', flags.warmup, 0, false);
    if (typeof warmup === 'string') usage(warmup);
    if (flags.inflight < 1 || flags.inflight > MAX_INFLIGHT)
      usage(
        `--inflight must be 1–${MAX_INFLIGHT} (a msg_server sheds a connection with more requests waiting), found ${flags.inflight}`,
      );

    // ---- the cluster
    const external =
      flags.gateway !== undefined ||
      (flags.dir !== undefined &&
        flags.redis === undefined &&
        flags.runtime === undefined &&
        flags['msg-servers'] === undefined);
    if (external) {
      for (const k of ['redis', 'runtime', 'msg-servers', 'threads'] as const) {
        if (flags[k] !== undefined)
          usage(`--${k} is for the cluster bench starts; with --gateway it loads a running cluster as it is`);
      }
      if (flags.gateway !== undefined && !parseHostPort(flags.gateway))
        usage(`--gateway must be HOST:PORT, found ${JSON.stringify(flags.gateway)}`);
    } else {
      if (flags.secret !== undefined) usage('--secret is for --gateway (a cluster bench starts has its own secret)');
      if (flags.dir !== undefined)
        usage(
          '--dir is for --gateway (or alone, to load the cluster running in DIR); bench starts its own cluster otherwise',
        );
      if (flags.redis !== undefined) {
        try {
          checkRedisUrl(flags.redis);
        } catch (err) {
          usage((err as Error).message);
        }
      }
      if (flags['msg-servers'] !== undefined && flags['msg-servers'] > MAX_MSG_SERVERS)
        usage(`--msg-servers must be at most ${MAX_MSG_SERVERS}, found ${flags['msg-servers']}`);
      if (flags.threads !== undefined && flags.redis !== undefined)
        usage('--threads is for the embedded cluster (one process); with --redis every role is a process of its own');
      if (flags.runtime === 'deno' && flags.redis === undefined)
        usage('--runtime deno runs the Redis modes only (no SQLite on Deno): add --redis URL');
    }
    const msgServers = flags['msg-servers'] ?? 2;
    const transport = flags.transport as Transport;
    if (flags.cross && !external && msgServers < 2) usage('--cross needs at least 2 msg_servers: drop --msg-servers 1');

    // ---- open files: every connection is one, here and on the msg_server
    const conns = workload === 'p2p' ? 2 * pairs : workload === 'topic' ? topicMembers : idle;
    const limit = openFilesLimit();
    if (limit && conns + FD_HEADROOM > limit.soft) {
      const flag =
        workload === 'p2p'
          ? `--pairs ${pairs} (${conns} connections)`
          : workload === 'topic'
            ? `--topic-members ${topicMembers}`
            : `--idle ${idle}`;
      const raise =
        limit.hard > limit.soft
          ? `raise it up to ${limit.hard} with \`ulimit -n ${Math.min(limit.hard, conns + FD_HEADROOM)}\`, or `
          : `the hard limit is ${limit.hard} and cannot be raised here; `;
      usage(
        `${flag} needs about ${conns + FD_HEADROOM} open files, but this process may open ${limit.soft} (RLIMIT_NOFILE in /proc/self/limits; the msg_server has the same limit): ` +
          `${raise}use at most ${limit.soft - FD_HEADROOM} connections`,
      );
    }

    // ---- Ctrl-C: stop what runs, then the cluster
    let interrupted: string | undefined;
    const onSignal = (signal: string) => {
      if (interrupted !== undefined) {
        this.logToStderr(`${signal} again: exiting now`);
        process.exit(EXIT.failed); // the cluster's process group is killed on exit
      }
      interrupted = signal;
      this.logToStderr(`${signal}: stopping the run …`);
    };
    for (const s of SIGNALS) process.on(s, onSignal);
    const status = (line: string) => this.logToStderr(line);

    let target: Target | undefined;
    try {
      target = external
        ? await this.existing(flags.gateway, flags.dir, flags.secret)
        : await this.own(
            msgServers,
            flags.redis,
            (flags.runtime ?? 'node') as RuntimeName,
            topicMembers,
            transport,
            status,
            flags.threads,
          );
      if (interrupted) this.fail(`${interrupted}: interrupted`);
      if (target.servers.length === 0)
        this.fail(`the gateway at ${target.gateway} lists no live msg_server`, EXIT.unreachable);
      if (flags.cross && target.servers.length < 2)
        this.fail(
          `--cross needs at least 2 msg_servers; the gateway at ${target.gateway} lists ${target.servers.length}`,
          EXIT.usage,
        );
      if (transport === 'ws') {
        const none = target.servers.filter((s) => s.ws === undefined).map((s) => s.id);
        if (none.length > 0)
          this.fail(
            `--transport ws: the gateway at ${target.gateway} gives no WebSocket URL (\`ws\` in its route reply) for msg_server ${none.join(', ')}`,
            EXIT.failed,
          );
      }
      if (flags.size > target.maxFrame - 512)
        usage(
          `--size must be at most ${target.maxFrame - 512} bytes for this cluster (maxFrame ${target.maxFrame} − 512)`,
        );

      const t = target;
      const meter = new ProcessMeter(t.processes);
      let window: ReturnType<ProcessMeter['end']> | undefined;
      const idleServer = t.servers[0]!;
      const idlePid = workload === 'idle' ? t.msgServerPid(idleServer.id) : undefined;
      let rssAfter: number | undefined;
      let memBefore: ServerMemoryFigure | undefined;
      let memAfter: ServerMemoryFigure | undefined;
      const o: WorkloadOptions = {
        workload,
        pairs,
        cross: flags.cross,
        topicMembers,
        publishers,
        idle,
        size: flags.size,
        duration: duration as number,
        warmup: warmup as number,
        inflight: flags.inflight,
        transport,
        servers: t.servers,
        secret: t.secret,
        heartbeat: t.heartbeat,
        status,
        window: {
          start: () => meter.start(),
          end: async () => {
            window = meter.end();
            if (idlePid !== undefined) rssAfter = rssBytes(idlePid);
            // After the window (the forced GC is not in its CPU), before the clients close.
            if (memBefore) memAfter = await this.serverFigure(idleServer.http, t.secret, status);
          },
        },
        check: () => t.check(),
        aborted: () => interrupted !== undefined,
      };
      let result: WorkloadResult;
      let rssBefore: number | undefined;
      try {
        if (workload === 'p2p') result = await runP2p(o);
        else if (workload === 'topic') result = await runTopic(o);
        else {
          memBefore = await this.serverFigure(idleServer.http, t.secret, status);
          rssBefore = idlePid === undefined ? undefined : rssBytes(idlePid);
          result = await runIdle(o, idleServer);
        }
      } catch (err) {
        t.check(); // a dead cluster explains the failure better
        throw err;
      }
      if (interrupted) this.fail(`${interrupted}: interrupted`);
      if (!window) throw new Error('the measured window did not end');
      const w = window as ReturnType<ProcessMeter['end']>;
      if (w.machinePct !== undefined && t.processes.length > 0) {
        // On a shared machine other work skews every number: say how much there was.
        const ours = w.processes.reduce((a, p) => a + (p.cpuPct ?? 0), 0) + w.client.cpuPct;
        status(
          `machine CPU over the window: ${Math.round(w.machinePct)}% of one core busy, of which ${Math.max(0, Math.round(w.machinePct - ours))}% not this benchmark's`,
        );
      }

      const out: BenchResult = {
        system: 'fishchat',
        version: this.config.version,
        runtime: t.runtime,
        mode: t.mode,
        transport,
        workload,
        pairs,
        cross: flags.cross,
        topicMembers,
        idle,
        size: flags.size,
        inflight: flags.inflight,
        duration: duration as number,
        warmup: warmup as number,
        sent: result.sent,
        delivered: result.delivered,
        errors: result.errors,
        msgsPerSec: round1(result.seconds > 0 ? result.delivered / result.seconds : 0),
        latencyMs: percentiles(result.latencies),
        processes: w.processes,
        client: w.client,
        rssPerConnBytes:
          workload === 'idle' && rssBefore !== undefined && rssAfter !== undefined
            ? Math.round((rssAfter - rssBefore) / idle)
            : null,
        serverMemory: memBefore && memAfter ? perConnection(memBefore, memAfter, idle) : null,
        machine: machine(),
        at: new Date().toISOString(),
      };
      if (workload === 'idle' && out.rssPerConnBytes === null)
        status('RSS per connection is unknown: the msg_server process is not known (--gateway)');
      this.log(flags.json ? toJson(out) : toText(out, { servers: t.servers.length, stalled: result.stalled }));
    } catch (err) {
      if (err instanceof BenchUsageError) this.fail(err.message, EXIT.usage);
      if (err instanceof ServerError) this.fail(`the server answered ${err.message}`, EXIT.failed);
      if (isNetworkError(err)) this.fail((err as Error).message, EXIT.unreachable);
      throw err;
    } finally {
      if (target) {
        if (!external) status('stopping the cluster …');
        await target.stop();
      }
      for (const s of SIGNALS) process.off(s, onSignal);
    }
  }

  /** The msg_server's own memory figure (its /health after a full GC); undefined, said on stderr, when it cannot be read. */
  private async serverFigure(
    http: string | undefined,
    secret: string,
    status: (l: string) => void,
  ): Promise<ServerMemoryFigure | undefined> {
    if (http === undefined) {
      status("the msg_server's own memory figure is unknown: its HTTP address is not known (--gateway)");
      return undefined;
    }
    try {
      return await healthMemory(http, secret);
    } catch (err) {
      status(`the msg_server's own memory figure is unknown: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Starts the bench's own cluster, with the limits raised out of the workload's way. */
  private own(
    msgServers: number,
    redis: string | undefined,
    runtime: RuntimeName,
    topicMembers: number,
    transport: Transport,
    status: (l: string) => void,
    threads: number | undefined,
  ): Promise<Target> {
    return startCluster({
      msgServers,
      redis,
      runtime,
      status,
      transport,
      threads,
      settings: {
        sendRate: { rate: 1_000_000, burst: 10_000_000 },
        maxConnections: 10_000_000,
        maxTopicMembers: Math.max(10_000, topicMembers),
        loginTimeout: 60_000,
      },
    });
  }

  /** A running cluster: behind --gateway, or the one running in --dir; the secret from --secret, else the directory (or FISHCHAT_SECRET). */
  private async existing(
    gateway: string | undefined,
    dirFlagValue: string | undefined,
    secretFlag: string | undefined,
  ): Promise<Target> {
    const dir = clusterDir(dirFlagValue);
    let secret = secretFlag;
    if (secret === undefined || gateway === undefined) {
      try {
        secret ??= (await loadCluster(dir)).secret;
      } catch (err) {
        this.fail(
          `${gateway === undefined ? 'loading the cluster in' : "--gateway needs the cluster secret to sign the clients' tokens, from"} ${shown(dir)}: ${(err as Error).message} ` +
            `(pass --secret, --dir of the cluster, or set FISHCHAT_SECRET)`,
          EXIT.usage,
        );
      }
    }
    if (gateway === undefined) {
      const run = await readRunInfo(dir);
      if (!run)
        this.fail(
          `no cluster is running in ${shown(dir)} (no live .fishchat/run.json): start it, pass --gateway HOST:PORT, or drop --dir to let bench start its own`,
          EXIT.unreachable,
        );
      gateway = run.gateway;
    }
    try {
      return await externalCluster(gateway, secret!, SETUP_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof ServerError) this.fail(`the gateway at ${gateway} answered ${err.message}`, EXIT.failed);
      this.fail(`cannot reach the gateway at ${gateway}: ${(err as Error).message}`, EXIT.unreachable);
    }
  }
}

function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|EADDRNOTAVAIL)$/.test(code)
  );
}
