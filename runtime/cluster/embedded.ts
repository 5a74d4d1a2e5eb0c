/**
 * Embedded mode (docs/architecture.md "Three ways to run, one code path", 3): every role in this
 * process, an in-process bus, the SQLite store at <dataDir>/fishchat.db.
 *
 * Start order: monitor (so it hears every other role's first beat, and
 * `fishchat status` is complete as soon as the cluster is ready), router,
 * manager (before the msg_servers, so it hears every login), msg_servers,
 * gateway (seeded with the msg_servers' real addresses). Stop order is the
 * reverse: gateway, msg_servers (they kick `draining`; the manager still
 * hears the logouts), manager, router, monitor, then the bus and the store.
 *
 * On several threads (`threads` > 1; the default is 1): the msg_servers run in
 * worker threads (./embedded-thread.ts) over a Bus and a Store that forward
 * to this thread (runtime/bus/port.ts, runtime/store/port/), which keeps the
 * one SQLite writer, the in-process bus and the other roles. Still one
 * process: an append is acknowledged only once SQLite committed it here, the
 * start and stop orders are the same, the log lines come here. `threads: 1`
 * runs every role on this thread.
 */
import { Worker } from 'node:worker_threads';
import { BusRelay } from '../bus/port.js';
import { bindAddress } from '../platform/address.js';
import { storeCall, ThreadLink, type PortLike } from '../store/port/index.js';
import { getPlatform } from '../platform/index.js';
import { makeRoleContext, type RoleContext, type RoleHandle } from '../contract/index.js';
import { roleLogger } from './role-logger.js';
import { startRole } from './start-role.js';
import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import { openBackends } from './backends.js';
import type { ClusterConfig, MsgServerConfig, RoleConfig } from './config.js';
import type { ThreadData } from './embedded-thread.js';
import {
  AlreadyRunningError,
  readRunInfo,
  removeRunFile,
  runFilePath,
  writeRunFile,
  type RunInfo,
} from './run-file.js';

export interface EmbeddedCluster {
  /** in start order: monitor, router, manager, msg_servers, gateway */
  roles: RoleHandle[];
  /** the gateway's client address, host:port */
  gateway: string;
  /** the monitor's HTTP address, host:port */
  monitor: string;
  /** Stops every role and closes the store; resolves when all is down. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** one log line of a role */
  log: (role: string, id: string, line: string) => void;
  /** called as each role becomes ready (before the next one starts) */
  onReady?: (role: RoleHandle) => void;
  /**
   * Threads of the process (default DEFAULT_EMBEDDED_THREADS of the runtime): 1 runs every
   * role on this thread; N > 1 runs the msg_servers on N − 1 worker threads
   * (at most one per msg_server; round-robin when fewer).
   */
  threads?: number;
}

/**
 * The embedded default, by runtime (bench/RESULTS.md "Embedded on both
 * cores"): one thread. More threads (`--threads N`) gave 1.18× the messages
 * per second of one at 1000 pairs, inflight 16, on Node, but 0.90× at
 * inflight 1 and ~11% more CPU per message (the forwarding); on Bun fewer
 * messages per second and 23–41% more CPU per message. A choice for heavy
 * embedded loads, not the default.
 */
export const DEFAULT_EMBEDDED_THREADS: Readonly<Record<'node' | 'bun' | 'deno', number>> = { node: 1, bun: 1, deno: 1 };
/** The most threads an embedded cluster takes (`--threads`). */
export const MAX_EMBEDDED_THREADS = 64;

export async function startEmbedded(config: ClusterConfig, opts: EmbeddedOptions): Promise<EmbeddedCluster> {
  const runFile = runFilePath(config.dir);
  const running = await readRunInfo(config.dir);
  if (running && running.pid !== process.pid) throw new AlreadyRunningError(config.dir, running);

  const platform = await getPlatform();
  const { bus, store } = await openBackends(config, { platform, kind: 'embedded' });
  const ctx = (role: string, id: string): RoleContext =>
    makeRoleContext({
      cluster: config.cluster,
      settings: config.settings,
      auth: { mode: config.auth, secret: config.secret },
      bus,
      store,
      platform,
      log: roleLogger(role, id, opts.log),
    });

  const started: RoleHandle[] = [];
  const start = async (c: RoleConfig) => {
    const handle = await startRole(c.role, ctx(c.role, c.id), c);
    started.push(handle);
    opts.onReady?.(handle);
    return handle;
  };

  // Groups in start order; stopped group by group in the reverse order.
  const groups: RoleHandle[][] = [];
  const one = async (c: RoleConfig) => {
    const handle = await start(c);
    groups.push([handle]);
    return handle;
  };
  let gateway: RoleHandle;
  let monitor: RoleHandle;
  try {
    monitor = await one(config.monitor);
    await one(config.router);
    await one(config.manager);
    const servers: RoleHandle[] = [];
    groups.push(servers);
    const threads = opts.threads ?? DEFAULT_EMBEDDED_THREADS[platform.name];
    if (threads <= 1) for (const ms of config.msgServers) servers.push(await start(ms));
    else {
      const workers = Math.min(threads - 1, config.msgServers.length);
      const parts: MsgServerConfig[][] = Array.from({ length: workers }, () => []);
      for (const [i, ms] of config.msgServers.entries()) parts[i % workers]!.push(ms);
      const data = (msgServers: MsgServerConfig[]): ThreadData => ({
        cluster: config.cluster,
        settings: config.settings,
        auth: { mode: config.auth, secret: config.secret },
        storeKind: store.kind,
        msgServers,
      });
      const log = (id: string, line: string) => opts.log('msg_server', id, line);
      // The threads start together; their msg_servers are ready (and reported) in config order.
      const running = parts.map((part) => startThread(data(part), bus, store, log));
      const byId = new Map<string, Promise<RoleHandle>>();
      for (const t of running) for (const [id, ready] of t.ready) byId.set(id, ready);
      try {
        for (const ms of config.msgServers) {
          const handle = await byId.get(ms.id)!;
          servers.push(handle);
          started.push(handle);
          opts.onReady?.(handle);
        }
      } catch (err) {
        await Promise.allSettled(running.map((t) => t.stop()));
        throw err;
      }
    }
    const seeds = config.msgServers.map(
      (ms, i) => ms.advertise ?? servers[i]!.addresses.tcp ?? bindAddress(ms.host, ms.port),
    );
    const seedWs: Record<string, string> = {};
    for (const [i, addr] of seeds.entries()) {
      const ws = servers[i]!.addresses.ws;
      if (ws !== undefined) seedWs[addr] = ws;
    }
    gateway = await one({ ...config.gateway, seeds, seedWs });
  } catch (err) {
    await stopGroups(groups, bus, store).catch(() => {});
    throw err;
  }

  const gatewayAddr = gateway.addresses.tcp ?? bindAddress(config.gateway.host, config.gateway.port);
  const monitorAddr = monitor.addresses.http ?? bindAddress(config.monitor.httpHost, config.monitor.httpPort);
  const info: RunInfo = {
    pid: process.pid,
    mode: 'embedded',
    gateway: gatewayAddr,
    monitor: monitorAddr,
    roles: started.map((r) => ({ role: r.role, id: r.id, addresses: { ...r.addresses } })),
    startedAt: new Date().toISOString(),
  };
  try {
    await writeRunFile(runFile, info);
  } catch (err) {
    await stopGroups(groups, bus, store).catch(() => {});
    throw new Error(`cannot write ${runFile}: ${(err as Error).message}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    roles: started,
    gateway: gatewayAddr,
    monitor: monitorAddr,
    stop() {
      stopping ??= (async () => {
        try {
          await stopGroups(groups, bus, store);
        } finally {
          await removeRunFile(runFile);
        }
      })();
      return stopping;
    },
  };
}

/**
 * Stops the groups last first (the roles of one group together), then the
 * bus and the store. Between groups the bus delivers what the stopped group
 * published last (a msg_server's logouts reach the manager before it stops).
 * Tries everything; throws the first failure.
 */
async function stopGroups(groups: RoleHandle[][], bus: Bus, store: Store): Promise<void> {
  const errors: Error[] = [];
  for (const group of [...groups].reverse()) {
    const results = await Promise.allSettled(group.map((r) => r.stop()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') errors.push(named(r.reason, group[i]!));
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await bus.close().catch((err: unknown) => errors.push(err as Error));
  await store.close().catch((err: unknown) => errors.push(err as Error));
  if (errors.length > 0) throw errors[0];
}

function named(err: unknown, role: RoleHandle): Error {
  return new Error(`${role.role} ${role.id} did not stop cleanly: ${(err as Error)?.message ?? String(err)}`);
}

/** A worker thread of msg_servers, as the main thread sees it. */
interface RunningThread {
  /** per msg_server id, its handle once it is ready */
  ready: Map<string, Promise<RoleHandle>>;
  /** stops its msg_servers (in the reverse of their start order), then ends the thread */
  stop(): Promise<void>;
}

/** The worker entry: the sources' .ts when we run from them (tsx, Bun), else the build's .js. */
const THREAD_ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? './embedded-thread.ts' : './embedded-thread.js',
  import.meta.url,
);

/**
 * A worker's young generation: room for what a msg_server holds across a few
 * turns (requests in flight, their store calls, the batches): with V8's
 * default, most of it survived a scavenge or two and was copied (measured:
 * 1000 pairs, inflight 16: 31–34 → 25–31 CPU-µs per message at 256 MB).
 * It grows to this only under such load.
 */
const YOUNG = { maxYoungGenerationSizeMb: 256 };

/**
 * A worker thread on the entry. From the sources on Node (tests, bin/dev.js),
 * through tsx's tsImport: the loader hooks of this thread do not reach a
 * worker, and `--import tsx` in its execArgv does not either (Node 20).
 */
function newThread(data: ThreadData): Worker {
  const fromSource = THREAD_ENTRY.pathname.endsWith('.ts');
  if (!fromSource || (process.versions as { bun?: string }).bun !== undefined)
    return new Worker(THREAD_ENTRY, { workerData: data, resourceLimits: YOUNG });
  let api = 'tsx/esm/api';
  try {
    api = import.meta.resolve(api);
  } catch {
    // the bare name, resolved from the worker
  }
  const entry = JSON.stringify(THREAD_ENTRY.href);
  const boot = `import(${JSON.stringify(api)}).then((tsx) => tsx.tsImport(${entry}, ${entry}))`;
  return new Worker(boot, { eval: true, workerData: data, resourceLimits: YOUNG });
}

/** Starts a worker thread running `data.msgServers`, over `bus` and `store` of this thread. */
function startThread(data: ThreadData, bus: Bus, store: Store, log: (id: string, line: string) => void): RunningThread {
  const worker = newThread(data);
  const link = new ThreadLink(worker as unknown as PortLike);
  const relay = new BusRelay(bus, link);
  link.onCall = (method, args) =>
    storeCall(store, method, args) ??
    relay.call(method, args) ??
    Promise.reject(new Error(`not a call of an embedded thread: ${method}`));

  const ready = new Map<string, { promise: Promise<RoleHandle>; resolve: (h: RoleHandle) => void }>();
  let failStart: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => (failStart = reject));
  failed.catch(() => {});
  for (const ms of data.msgServers) {
    let resolve!: (h: RoleHandle) => void;
    const promise = Promise.race([new Promise<RoleHandle>((r) => (resolve = r)), failed]);
    promise.catch(() => {});
    ready.set(ms.id, { promise, resolve });
  }
  let stoppedWith: (error: string | undefined) => void = () => {};
  const stopped = new Promise<string | undefined>((r) => (stoppedWith = r));
  let exited = false;
  let stopRequested = false;
  const exit = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      exited = true;
      const why = new Error(
        `the thread of msg_server ${data.msgServers.map((m) => m.id).join(', ')} exited (code ${code})`,
      );
      failStart(why);
      stoppedWith(stopRequested ? undefined : why.message);
      resolve();
    }),
  );
  worker.on('error', (err) => {
    // An uncaught error in a role: as on one thread, the process goes down with it.
    log(data.msgServers[0]!.id, `error: ${(err as Error)?.stack ?? String(err)}`);
    setImmediate(() => {
      throw err;
    });
  });

  link.onEvent = (kind, a, b, c) => {
    if (relay.event(kind, a, b, c)) return;
    switch (kind) {
      case 'log':
        log(a as string, b as string);
        break;
      case 'ready': {
        const id = a as string;
        const r = ready.get(id);
        r?.resolve(roleHandle({ role: 'msg_server', id, addresses: b as RoleHandle['addresses'] }));
        break;
      }
      case 'failed': {
        const f = b === undefined ? (a as { message: string; name: string }) : { message: String(a), name: 'Error' };
        const err = new Error(f.message);
        err.name = f.name;
        failStart(err);
        break;
      }
      case 'stopped':
        stoppedWith(a as string | undefined);
        break;
    }
  };

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopRequested = true;
      if (!exited) {
        link.event('stop');
        link.flush();
      }
      const error = await stopped;
      link.close();
      await relay.close();
      if (!exited) await worker.terminate();
      await exit;
      if (error !== undefined) throw new Error(error);
    })());
  const roleHandle = (who: { role: 'msg_server'; id: string; addresses: RoleHandle['addresses'] }): RoleHandle => ({
    ...who,
    stop,
  });
  return { ready: new Map([...ready].map(([id, r]) => [id, r.promise])), stop };
}
