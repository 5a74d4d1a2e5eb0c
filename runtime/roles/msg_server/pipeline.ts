/**
 * The request pipeline of a connection: requests are queued as they arrive,
 * handled in arrival order and answered in that order (docs/protocol.md §2), within
 * the queue limits and the send rate. A run of sends is pipelined: each starts
 * its append at once, so their appends reach the store together (one group
 * commit / one Redis call), and each is answered in turn.
 */
import { MSG_SERVER_OPS, parseRequest, type Request } from '../../protocol/index.js';
import type { Conn } from './connection.js';
import type { MsgServer } from './msg_server.js';
import type { TransportHandlers } from './transport.js';
import { ack, SendRun, sync } from './messages.js';
import { closed, login, logout, ping } from './session.js';
import { topicCreate, topicJoin, topicLeave, topicMembers, topicSend } from './topics.js';

/** Requests a connection may have waiting for their turn before it is shed with `overloaded`. */
const MAX_QUEUED_REQUESTS = 10_000;
const MAX_QUEUED_BYTES = 16 << 20;
/** Sends of one connection whose appends run together before the first is answered. */
const MAX_PIPELINED_SENDS = 64;

/** What the connection's transport reports, fed into its request queue. */
export function requestQueue(s: MsgServer, conn: Conn): TransportHandlers {
  return {
    map(bytes) {
      if (conn.closing) return;
      // The bytes are only valid during this call: keep a copy.
      conn.requests.push(bytes.slice());
      conn.queuedBytes += bytes.length;
    },
    bad(code, why) {
      if (conn.badInput) return;
      conn.badInput = code;
      conn.badWhy = why;
    },
    readEnd() {
      conn.lastSeen = Date.now();
      if (conn.closing) return;
      if (conn.requests.length > MAX_QUEUED_REQUESTS || conn.queuedBytes > MAX_QUEUED_BYTES) {
        // A client that sends far ahead of the replies: the server sheds it rather than buffer without bound.
        conn.requests = [];
        conn.queuedBytes = 0;
        const limits = `${MAX_QUEUED_REQUESTS} requests or ${MAX_QUEUED_BYTES >> 20} MiB`;
        const message = `more than ${limits} waiting on this connection; wait for replies before sending more`;
        conn.error('overloaded', message);
        conn.close({ why: 'overloaded' });
        return;
      }
      if (conn.badInput) {
        // Replies to frames before the bad one keep their order: queue the error too.
        conn.requests.push(conn.badInput === 'frame_too_large' ? TOO_LARGE : BAD_FRAME);
        conn.badInput = undefined;
      }
      if (!conn.busy) void handleQueued(s, conn);
    },
    drain: () => conn.wakeDrain(),
    close: () => void closed(s, conn),
  };
}

/** Handles queued requests in arrival order; replies go out in that order too. */
async function handleQueued(s: MsgServer, conn: Conn): Promise<void> {
  conn.busy = true;
  // the current run of sends: answered before any other request is handled
  const run = new SendRun(s, conn);
  try {
    while (conn.requests.length && !conn.closing) {
      const payload = conn.requests.shift()!;
      conn.queuedBytes -= payload.length;
      if (payload === TOO_LARGE || payload === BAD_FRAME) {
        if (run.length) await run.finish();
        const maxFrame = s.ctx.settings.maxFrame;
        const why = conn.badWhy;
        if (payload === TOO_LARGE)
          conn.error('frame_too_large', why ?? `frame larger than maxFrame (${maxFrame} bytes)`);
        else conn.error('bad_frame', why ?? 'frame length 0');
        conn.close({ why: payload === TOO_LARGE ? 'frame_too_large' : 'bad_frame' });
        break;
      }
      const t0 = performance.now();
      s.stats.countIn();
      const parsed = parseRequest(payload, { ops: MSG_SERVER_OPS, maxFrame: s.ctx.settings.maxFrame });
      const req = parsed.ok && parsed.req.op === 'send' && conn.loggedIn ? parsed.req : undefined;
      if (req) {
        if (!conn.takeToken(Date.now())) {
          if (run.length) await run.finish();
          rateLimited(s, conn, req.rid);
          continue;
        }
        run.add(req, t0);
        if (run.length < MAX_PIPELINED_SENDS && conn.requests.length > 0) continue;
      }
      if (run.length) await run.finish();
      if (req) continue;
      if (conn.closing) break;
      if (!parsed.ok) {
        if (parsed.op !== undefined && !conn.loggedIn && parsed.op !== 'login' && parsed.op !== 'ping') {
          // Before login a known op other than login/ping is refused as such, whatever its fields (§2).
          conn.error('not_logged_in', `log in before "${parsed.op}"`, parsed.rid);
          continue;
        }
        conn.error(parsed.code, parsed.message, parsed.rid);
        if (parsed.code === 'bad_frame' || parsed.code === 'frame_too_large') {
          conn.close({ why: parsed.code });
          break;
        }
        continue;
      }
      try {
        await handle(s, conn, parsed.req);
      } catch (err) {
        s.ctx.log.error(`${parsed.req.op} failed: ${(err as Error)?.message ?? err}`);
        conn.error('internal', 'server fault; the request may be retried', parsed.req.rid);
      }
      s.stats.latency(performance.now() - t0);
    }
    if (run.length) await run.finish();
  } finally {
    conn.busy = false;
  }
}

/** Every request but a logged-in connection's sends (those are the pipelined runs above). */
async function handle(s: MsgServer, conn: Conn, req: Request): Promise<void> {
  if (req.op === 'login') return login(s, conn, req);
  if (req.op === 'ping') return ping(s, conn, req);
  if (!conn.loggedIn) {
    conn.error('not_logged_in', `log in before "${req.op}"`, req.rid);
    return;
  }
  if (req.op === 'topic_send' && !conn.takeToken(Date.now())) {
    rateLimited(s, conn, req.rid);
    return;
  }
  const handler = AFTER_LOGIN[req.op] as Handler<Request> | undefined;
  if (handler) return handler(s, conn, req);
  conn.error('unknown_op', `unknown op "${req.op}"`, req.rid);
}

type Handler<R> = (s: MsgServer, conn: Conn, req: R) => Promise<void>;

/** The handler of each op a logged-in connection may send, but `send` (pipelined, above). */
const AFTER_LOGIN: { [Op in Request['op']]?: Handler<Extract<Request, { op: Op }>> } = {
  logout,
  ack,
  sync,
  topic_create: topicCreate,
  topic_join: topicJoin,
  topic_leave: topicLeave,
  topic_members: topicMembers,
  topic_send: topicSend,
};

function rateLimited(s: MsgServer, conn: Conn, rid: number | undefined): void {
  const { rate, burst } = s.ctx.settings.sendRate;
  conn.error('rate_limited', `over the send rate (${rate}/s, burst ${burst}); retry later`, rid);
}

/** Queue markers for input that ends the connection, in its place among the requests. */
const TOO_LARGE = new Uint8Array(0);
const BAD_FRAME = new Uint8Array(0);
