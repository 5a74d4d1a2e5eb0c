/**
 * A FishChat cluster laid out over the hosts of a Lab (./netns.ts), the way an
 * operator runs one: a cluster directory written by `fishchat init --redis`
 * and edited, one `fishchat serve ROLE` process per role, each binding its
 * own host's address.
 *
 *   host a: redis-server (appendonly yes, its own data directory), gateway,
 *           router, manager, monitor (HTTP on a's address, so `fishchat
 *           status` on a reaches them)
 *   hosts named in `msgServers`: one msg_server each, id ms-<host>, binding
 *           and advertising its host's address (msg_server.<host>.json, in "roles")
 *   hosts named in `laterServers`: their file is written (binding 0.0.0.0,
 *           advertising the host's address) but not listed in "roles":
 *           `addMsgServer` adds the host and serves the file with --config.
 *
 * Every host is its own network namespace, so the ports are fixed (PORTS):
 * nothing else listens there.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CLEAN_ENV, fishchat, NODE, ROOT } from './cli.js';
import type { HostProcess, Lab } from './netns.js';

export const PORTS = {
  redis: 6379,
  gw: 17000,
  gwHttp: 17080,
  ms: 19000,
  msHttp: 19100,
  router: 20000,
  manager: 18000,
  monitor: 21000,
} as const;

export type RouteEntry = { id: string; addr: string; ws?: string };

export interface HostClusterOptions {
  msgServers: string[];
  laterServers?: string[];
  /** over the settings `init` writes */
  settings?: Record<string, unknown>;
  /** redis-server options after the fixed ones */
  redisArgs?: string[];
}

export class HostCluster {
  readonly roles = new Map<string, HostProcess>();
  secret = '';
  /** ms from starting the role processes to all their ready lines */
  startMs = 0;

  private constructor(
    readonly lab: Lab,
    readonly dir: string,
  ) {}

  get a(): string {
    return this.lab.addr('a');
  }

  get gateway(): string {
    return `${this.a}:${PORTS.gw}`;
  }

  get gatewayHttp(): string {
    return `${this.a}:${PORTS.gwHttp}`;
  }

  static async start(lab: Lab, opts: HostClusterOptions): Promise<HostCluster> {
    const c = new HostCluster(lab, await mkdtemp(join(tmpdir(), `fishchat-multihost-${process.pid}-`)));
    try {
      await c.write(opts);
      await c.run(opts);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  msgServerFile(host: string, bind?: string) {
    return {
      role: 'msg_server',
      id: `ms-${host}`,
      host: bind ?? this.lab.addr(host),
      port: PORTS.ms,
      advertise: `${this.lab.addr(host)}:${PORTS.ms}`,
      httpPort: PORTS.msHttp,
    };
  }

  private async write(opts: HostClusterOptions): Promise<void> {
    const { dir, a } = this;
    const init = await fishchat(['init', dir, '--redis', `redis://${a}:${PORTS.redis}`]);
    if (init.code !== 0) throw new Error(`fishchat init failed: ${init.stderr}`);
    this.secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    const files: Record<string, object> = {
      'gateway.json': { role: 'gateway', id: 'gateway', host: a, port: PORTS.gw, httpPort: PORTS.gwHttp },
      'router.json': { role: 'router', id: 'router', httpHost: a, httpPort: PORTS.router },
      'manager.json': { role: 'manager', id: 'manager', httpHost: a, httpPort: PORTS.manager },
      'monitor.json': { role: 'monitor', id: 'monitor', httpHost: a, httpPort: PORTS.monitor },
    };
    for (const h of opts.msgServers) files[`msg_server.${h}.json`] = this.msgServerFile(h);
    for (const [f, body] of Object.entries(files)) await writeFile(join(dir, f), JSON.stringify(body, null, 2));
    for (const h of opts.laterServers ?? [])
      await writeFile(join(dir, `msg_server.${h}.json`), JSON.stringify(this.msgServerFile(h, '0.0.0.0'), null, 2));
    const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as Record<string, unknown>;
    cluster.roles = Object.keys(files);
    cluster.settings = { ...(cluster.settings as object), ...opts.settings };
    await writeFile(join(dir, 'fishchat.json'), JSON.stringify(cluster, null, 2));
  }

  private async run(opts: HostClusterOptions): Promise<void> {
    const redis = this.lab.spawn('a', 'redis-server', [
      ...['--port', String(PORTS.redis), '--bind', this.a, '--protected-mode', 'no'],
      ...['--appendonly', 'yes', '--save', '', '--dir', this.dir],
      ...(opts.redisArgs ?? []),
    ]);
    this.roles.set('redis', redis);
    await redis.waitFor(/Ready to accept connections/, 10_000);
    const t0 = Date.now();
    for (const role of ['router', 'manager', 'monitor', 'gateway'])
      this.roles.set(role, this.serve('a', [role, '--dir', this.dir]));
    for (const h of opts.msgServers)
      this.roles.set(`ms-${h}`, this.serve(h, ['msg_server', '--dir', this.dir, '--id', `ms-${h}`]));
    await Promise.all([...this.roles].filter(([k]) => k !== 'redis').map(([, p]) => p.waitFor(/^ready /m, 45_000)));
    this.startMs = Date.now() - t0;
    const want = opts.msgServers.map((h) => `ms-${h}`);
    await this.waitRoute((ids) => want.every((id) => ids.includes(id)), 10_000, want.join(' and '));
  }

  /** `fishchat serve …args` inside `host`. */
  serve(host: string, args: string[]): HostProcess {
    return this.lab.spawn(host, NODE, [BIN, 'serve', ...args], { env: CLEAN_ENV, cwd: ROOT });
  }

  /** Adds host `h` to the network and serves its msg_server file (written by `laterServers`). */
  addMsgServer(h: string): HostProcess {
    if (!this.lab.hosts.has(h)) this.lab.addHost(h);
    const p = this.serve(h, ['msg_server', '--config', join(this.dir, `msg_server.${h}.json`)]);
    this.roles.set(`ms-${h}`, p);
    return p;
  }

  /** The gateway's GET /v1/route, as the test's own host (the root namespace) sees it; [] on 503. */
  async route(): Promise<RouteEntry[]> {
    const r = await fetch(`http://${this.gatewayHttp}/v1/route`, { signal: AbortSignal.timeout(2000) });
    if (r.status === 503) return [];
    return ((await r.json()) as { servers: RouteEntry[] }).servers;
  }

  async waitRoute(pred: (ids: string[]) => boolean, ms: number, what: string): Promise<string[]> {
    const end = Date.now() + ms;
    for (;;) {
      const ids = (await this.route().catch(() => [])).map((s) => s.id);
      if (pred(ids)) return ids;
      if (Date.now() > end)
        throw new Error(`the gateway's route: no ${what} within ${ms} ms (lists ${ids.join(', ')})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops the roles (SIGTERM, then SIGKILL) and removes the cluster directory; the Lab stays. */
  async stop(): Promise<void> {
    await Promise.all([...this.roles.values()].map((p) => p.stop('SIGTERM', 5000)));
    await rm(this.dir, { recursive: true, force: true });
  }
}
