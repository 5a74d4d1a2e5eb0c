/**
 * The gateway role: answers `route` with the live msg_servers, least loaded
 * first (over TCP, and over HTTP as `GET /v1/route` with CORS for browsers).
 * It learns liveness, load and each server's addresses from the msg_servers'
 * beats on `/sysctrl/monitor`; the seed list only covers the first beats.
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { encodeFrame, FrameDecoder, GATEWAY_OPS, parseRequest } from '../../protocol/index.js';
import { type GatewayConfig, originAllowed } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { listenRoleTcp, serveRoleHttp } from '../../contract/listen.js';
import type { TcpSocket } from '../../platform/types.js';
import { decodeItems, type Beat } from '../../bus/payloads.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat, MISSED_BEATS, startBeats } from '../../metrics/beat.js';
import { chatRoutes } from './chat.js';

/** A msg_server as `route` names it: TCP address, and WebSocket URL when it serves one. */
export type RouteServer = {
  id: string;
  addr: string;
  ws?: string;
};

interface Known {
  id: string;
  addr: string;
  ws?: string;
  conns: number;
  /** the msg_server's connection limit (its beat's `max`); Infinity when not told */
  max: number;
  lastBeat: number;
  /** a seed not (yet) confirmed by a beat */
  seed: boolean;
}

export class ServerList {
  private readonly known = new Map<string, Known>();

  constructor(
    private readonly beatMs: number,
    seeds: string[],
    now = Date.now(),
    /** a seed's WebSocket URL by its address, when known before its first beat */
    seedWs: Record<string, string> = {},
  ) {
    for (const addr of seeds) {
      const k: Known = { id: addr, addr, conns: 0, max: Infinity, lastBeat: now, seed: true };
      if (seedWs[addr] !== undefined) k.ws = seedWs[addr];
      this.known.set(`seed:${addr}`, k);
    }
  }

  onBeat(b: Beat & { max?: unknown }, now = Date.now()): void {
    if (b.role !== 'msg_server' || typeof b.id !== 'string' || typeof b.addr !== 'string') return;
    this.known.delete(`seed:${b.addr}`);
    const max = typeof b.max === 'number' && b.max > 0 ? b.max : Infinity;
    const k: Known = { id: b.id, addr: b.addr, conns: Number(b.conns) || 0, max, lastBeat: now, seed: false };
    if (typeof b.ws === 'string') k.ws = b.ws;
    this.known.set(b.id, k);
  }

  /** Live msg_servers that are not full (conns < max as of their last beat), least loaded first. */
  live(now = Date.now()): RouteServer[] {
    return this.route(now).servers;
  }

  /**
   * As `live`, and how many live msg_servers were left out as full. `claim`:
   * the route is for a client about to log in, so the first server counts one
   * connection more until its next beat says how many it has: the logins
   * between two beats spread over the servers instead of all going to the
   * one that was least loaded at the last beat.
   */
  route(now = Date.now(), claim = false): { servers: RouteServer[]; full: number } {
    const limit = this.beatMs * MISSED_BEATS;
    const out: Known[] = [];
    let full = 0;
    for (const [key, k] of this.known) {
      if (now - k.lastBeat <= limit) {
        if (k.conns >= k.max) full++;
        else out.push(k);
      } else if (k.seed) this.known.delete(key);
    }
    out.sort((a, b) => a.conns - b.conns || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (claim && out.length > 0) out[0]!.conns++;
    return {
      servers: out.map((k) => (k.ws === undefined ? { id: k.id, addr: k.addr } : { id: k.id, addr: k.addr, ws: k.ws })),
      full,
    };
  }
}

const USER_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

export async function startGateway(ctx: RoleContext, config: GatewayConfig): Promise<RoleHandle> {
  const list = new ServerList(ctx.settings.beat, config.seeds, Date.now(), config.seedWs);
  const stats = new RoleStats();
  const boot = randomBytes(8).toString('hex');
  const unsubscribe = await ctx.bus.subscribe(ctx.channels.monitor, (payload) => {
    for (const b of decodeItems<Beat>(payload)) if (b && typeof b === 'object') list.onBeat(b);
  });
  const routeFields = (user: string | undefined) => {
    const r = list.route(Date.now(), user !== undefined);
    return {
      servers: r.servers,
      heartbeat: ctx.settings.heartbeat,
      backoff: { base: ctx.settings.backoff.base, max: ctx.settings.backoff.max },
      full: r.full,
    };
  };
  const noServer = (full: number) =>
    full > 0
      ? `every live msg_server is full (${full}); retry with backoff`
      : 'no msg_server is alive; retry with backoff';

  const socks = new Set<{ sock: TcpSocket; lastSeen: number }>();
  const onConnection = (sock: TcpSocket) => {
    const entry = { sock, lastSeen: Date.now() };
    socks.add(entry);
    const decoder = new FrameDecoder(ctx.settings.maxFrame);
    let closing = false;
    sock.onClose(() => socks.delete(entry));
    sock.onData((chunk) => {
      entry.lastSeen = Date.now();
      if (closing) return;
      const err = decoder.feed(chunk, (payload) => {
        if (closing) return;
        const t0 = performance.now();
        stats.countIn();
        const p = parseRequest(payload, { ops: GATEWAY_OPS, maxFrame: ctx.settings.maxFrame });
        if (!p.ok) {
          sock.write(encodeFrame({ op: 'error', rid: p.rid, code: p.code, message: p.message }));
          if (p.code === 'bad_frame' || p.code === 'frame_too_large') {
            closing = true;
            sock.end();
          }
          return;
        }
        const req = p.req;
        if (req.op === 'route') {
          const { full, ...f } = routeFields(req.user);
          if (f.servers.length === 0)
            sock.write(encodeFrame({ op: 'error', rid: req.rid, code: 'overloaded', message: noServer(full) }));
          else sock.write(encodeFrame({ op: 'ok', rid: req.rid, ...f }));
        } else if (req.op === 'ping') {
          sock.write(encodeFrame({ op: 'pong', rid: req.rid }));
        }
        stats.countOut();
        stats.latency(performance.now() - t0);
      });
      if (err) {
        closing = true;
        sock.write(
          encodeFrame({
            op: 'error',
            code: err,
            message:
              err === 'bad_frame' ? 'frame length 0' : `frame larger than maxFrame (${ctx.settings.maxFrame} bytes)`,
          }),
        );
        sock.end();
      }
    });
  };

  const who = { role: 'gateway', id: config.id } as const;
  const { tcp, addr } = await listenRoleTcp(
    ctx,
    who,
    { host: config.host, port: config.port },
    onConnection,
    unsubscribe,
  );

  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true, role: 'gateway', id: config.id }));
  // Browsers ask for a route from pages of other origins: CORS for the allowed ones (docs/protocol.md §3).
  app.use(
    '/v1/route',
    cors({
      origin: (origin) => (originAllowed(ctx.settings.allowedOrigins, origin) ? origin : null),
      allowMethods: ['GET'],
      maxAge: 600,
    }),
  );
  app.get('/v1/route', (c) => {
    const origin = c.req.header('origin');
    if (!originAllowed(ctx.settings.allowedOrigins, origin)) {
      return c.json({ code: 'forbidden', message: `origin ${origin} is not in the gateway's allowedOrigins` }, 403);
    }
    const user = c.req.query('user');
    if (user !== undefined && !USER_RE.test(user)) {
      return c.json({ code: 'bad_request', message: 'user must be 1 to 64 characters of [A-Za-z0-9_.@-]' }, 400);
    }
    stats.countIn();
    const { full, ...f } = routeFields(user);
    stats.countOut();
    c.header('Cache-Control', 'no-store');
    if (f.servers.length === 0) return c.json({ code: 'overloaded', message: noServer(full) }, 503);
    return c.json(f);
  });
  if (config.chatPage !== false) app.route('/chat', chatRoutes(ctx.log));
  const at = { host: config.httpHost, port: config.httpPort };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, async () => {
    await tcp.close();
    await unsubscribe();
  });

  const sweepIdle = () => {
    const idleLimit = ctx.settings.heartbeat * 2.5;
    const now = Date.now();
    for (const s of socks) if (now - s.lastSeen > idleLimit) s.sock.destroy();
  };
  const stopBeats = startBeats(
    ctx,
    () => makeBeat({ role: 'gateway', id: config.id, addr, http: httpAddr, boot, conns: socks.size }, stats),
    sweepIdle,
  );

  return roleHandle({ role: 'gateway', id: config.id, addresses: { tcp: addr, http: httpAddr } }, async () => {
    stopBeats();
    await tcp.close();
    for (const s of socks) s.sock.end();
    await http.close();
    await unsubscribe();
    stats.stop();
  });
}
