/**
 * The server API for application backends (README "Server API",
 * docs/architecture.md "The server API"): JSON over every msg_server's HTTP
 * listener, admin token required (as the manager's API). Sends go through the
 * msg_server's own send paths (messages.ts, topics.ts), so they follow a
 * client's rules: `200` only once durably stored, `cid` idempotency, seq.
 *
 *   POST   /v1/messages                     {from, to, body | bodyCbor, cid?}  → {mid, seq, ts}
 *   POST   /v1/topics                       {topic, owner}                     → 201 {topic, owner, members}
 *   POST   /v1/topics/:topic/members        {user}                             → {topic, user, members}
 *   DELETE /v1/topics/:topic/members/:user                                     → {topic, user}
 *   POST   /v1/topics/:topic/messages       {from, body | bodyCbor, cid?}      → {mid, tseq, ts}
 *   GET    /v1/users/:user/inbox?after=&limit=                                 → {user, head, messages, next}
 *   GET    /v1/users/:user/sessions                                            → {user, sessions}
 *   POST   /v1/users/:user/kick             {device?}                          → {user, local, servers}
 *
 * Every error is `{error: {code, message, field}}`: `field` names the JSON
 * field, path or query parameter at fault ("request" for the request body as
 * a whole, "authorization" for the token; null when no one field is).
 */
import { Buffer } from 'node:buffer';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bodyView } from '../../http/body.js';
import { requireAdmin } from '../../http/admin.js';
import {
  encodeCbor,
  MSG_SERVER_OPS,
  parseRequest,
  RawCbor,
  type SendReq,
  type TopicSendReq,
  type WireValue,
} from '../../protocol/index.js';
import type { StoredMessage } from '../../store/store.js';
import { sendAs } from './messages.js';
import type { MsgServer } from './msg_server.js';
import { kickUser } from './session.js';
import { createTopic, isRefusal, joinTopic, leaveTopic, type TopicRefusal, topicSendAs } from './topics.js';

/** The name rule of docs/protocol.md §4.1 (users, devices, topics). */
const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const NAME_RULE = 'must be 1 to 64 characters of [A-Za-z0-9_.@-]';
const DIGITS = /^\d{1,16}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
/** A JSON request body may take this many times maxFrame (a JSON text is longer than its CBOR). */
const REQUEST_FACTOR = 8;

class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

const bad = (field: string, message: string) => new ApiError(400, 'bad_request', message, field);

function apiError(c: Context, status: ContentfulStatusCode, code: string, message: string, field: string | null) {
  return c.json({ error: { code, message, field } }, status);
}

/** A protocol refusal of a topic op, as HTTP. */
function refusal(r: TopicRefusal, field: string): ApiError {
  const status =
    r.code === 'no_such_topic' ? 404 : r.code === 'bad_request' ? 400 : r.code === 'not_a_member' ? 403 : 409;
  return new ApiError(status, r.code, r.message, r.code === 'no_such_topic' ? 'topic' : field);
}

function name(v: unknown, field: string, what = field): string {
  if (v === undefined) throw bad(field, `${what} is required`);
  if (typeof v !== 'string' || !NAME.test(v)) throw bad(field, `${what} ${NAME_RULE}`);
  return v;
}

/** The request body: a JSON object of at most `max` bytes (an empty body is `{}`). */
async function jsonBody(c: Context, max: number): Promise<Record<string, unknown>> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > max) {
    throw new ApiError(413, 'bad_request', `the request body is over ${max} bytes`, 'request');
  }
  const bytes = await readAtMost(c.req.raw, max);
  if (bytes === null) throw new ApiError(413, 'bad_request', `the request body is over ${max} bytes`, 'request');
  if (bytes.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad('request', 'the request body is not JSON (send a JSON object, Content-Type: application/json)');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw bad('request', 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** The body's bytes, or null when it is over `max` (reading stops there). */
async function readAtMost(req: Request, max: number): Promise<Uint8Array | null> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.length;
  }
  return out;
}

/**
 * The message of a send: `body` (a JSON value, CBOR-encoded: text stays text,
 * objects become maps with text keys) or `bodyCbor` (base64 of raw CBOR), and
 * `cid`, validated by the protocol's own parser (docs/protocol.md §1, §4.2):
 * the same frame a client would send.
 */
function message<R extends SendReq | TopicSendReq>(
  s: MsgServer,
  o: Record<string, unknown>,
  target: { op: R['op']; field: 'to' | 'topic'; value: string },
): R {
  const raw = o.bodyCbor !== undefined;
  const bodyField = raw ? 'bodyCbor' : 'body';
  if (raw && o.body !== undefined) throw bad('body', 'give body (a JSON value) or bodyCbor (base64 CBOR), not both');
  let body: Uint8Array;
  if (raw) {
    const b = o.bodyCbor;
    if (typeof b !== 'string' || !BASE64.test(b) || b.replace(/=+$/, '').length % 4 === 1) {
      throw bad('bodyCbor', 'bodyCbor must be base64 (of one CBOR item)');
    }
    body = new Uint8Array(Buffer.from(b, 'base64'));
  } else {
    if (!('body' in o)) throw bad('body', 'body is required (a JSON value, or bodyCbor: base64 of CBOR)');
    try {
      body = encodeCbor(o.body as WireValue);
    } catch {
      throw bad('body', 'body is nested too deep');
    }
  }
  const cid = o.cid;
  if (cid !== undefined && typeof cid !== 'string') throw bad('cid', 'cid must be text of 1 to 64 characters');
  const frame = encodeCbor({ op: target.op, [target.field]: target.value, body: new RawCbor(body), cid });
  const parsed = parseRequest(frame, { ops: MSG_SERVER_OPS, maxFrame: s.ctx.settings.maxFrame });
  if (parsed.ok) return parsed.req as R;
  if (parsed.code === 'bad_frame') {
    throw bad(bodyField, `${bodyField} must be one well-formed CBOR item, nested at most 63 levels deep`);
  }
  // The parser's messages start with the field they are about.
  const field = /^(\w+)/.exec(parsed.message)?.[1];
  if (field === 'body') throw bad(bodyField, parsed.message.replace(/^body/, bodyField));
  throw bad(field === 'cid' || field === target.field ? field : bodyField, parsed.message);
}

function inboxMessage(m: StoredMessage): Record<string, unknown> {
  const { body, ...meta } = m;
  const view = bodyView(body);
  return view.json === undefined ? { ...meta, bodyCbor: view.body } : { ...meta, body: view.json, bodyCbor: view.body };
}

/** The server API of `server`, to mount on its HTTP listener (`app.route('/', serverApi(server))`). */
export function serverApi(s: MsgServer): Hono {
  const app = new Hono();
  const maxRequest = REQUEST_FACTOR * s.ctx.settings.maxFrame + 4096;
  const admin = requireAdmin(s.ctx.auth.secret);

  // Only these paths: the listener serves others (/health, /v1/ws) without an admin token.
  const paths = ['/v1/messages', '/v1/topics', '/v1/topics/*', '/v1/users/*'];
  for (const p of paths) {
    app.use(p, async (c, next) => {
      const refused = await admin(c, next);
      if (!(refused instanceof Response)) return;
      // requireAdmin's 401, with the field every error of this API names.
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      const res = apiError(c, 401, error.code, error.message, 'authorization');
      res.headers.set('WWW-Authenticate', refused.headers.get('WWW-Authenticate') ?? 'Bearer');
      return res;
    });
  }

  /** Runs a handler, its ApiErrors as JSON errors, any other failure as a 500. */
  const route =
    (f: (c: Context) => Promise<Response>) =>
    async (c: Context): Promise<Response> => {
      try {
        return await f(c);
      } catch (err) {
        if (err instanceof ApiError) return apiError(c, err.status, err.code, err.message, err.field);
        s.ctx.log.error(`server API ${c.req.method} ${c.req.path} failed: ${(err as Error)?.message ?? err}`);
        return apiError(c, 500, 'internal', 'server fault; the request may be retried (with the same cid)', null);
      }
    };

  app.post(
    '/v1/messages',
    route(async (c) => {
      const t0 = performance.now();
      const o = await jsonBody(c, maxRequest);
      const from = name(o.from, 'from');
      if (typeof o.to !== 'string') throw bad('to', o.to === undefined ? 'to is required' : `to ${NAME_RULE}`);
      const req = message<SendReq>(s, o, { op: 'send', field: 'to', value: o.to });
      s.stats.countIn();
      const res = await sendAs(s, from, req);
      s.stats.latency(performance.now() - t0);
      return c.json({ mid: res.mid, seq: res.seq, ts: res.ts });
    }),
  );

  app.post(
    '/v1/topics',
    route(async (c) => {
      const o = await jsonBody(c, maxRequest);
      const topic = name(o.topic, 'topic');
      const owner = name(o.owner, 'owner');
      const no = await createTopic(s, owner, topic);
      if (no) throw refusal(no, 'topic');
      return c.json({ topic, owner, members: 1 }, 201);
    }),
  );

  app.post(
    '/v1/topics/:topic/members',
    route(async (c) => {
      const topic = name(c.req.param('topic'), 'topic');
      const o = await jsonBody(c, maxRequest);
      const user = name(o.user, 'user');
      const r = await joinTopic(s, user, topic);
      if (isRefusal(r)) throw refusal(r, r.code === 'bad_request' ? 'topic' : 'user');
      return c.json({ topic, user, members: r });
    }),
  );

  app.delete(
    '/v1/topics/:topic/members/:user',
    route(async (c) => {
      const topic = name(c.req.param('topic'), 'topic');
      const user = name(c.req.param('user'), 'user');
      const no = await leaveTopic(s, user, topic);
      if (no) throw no.code === 'not_a_member' ? new ApiError(404, no.code, no.message, 'user') : refusal(no, 'user');
      return c.json({ topic, user });
    }),
  );

  app.post(
    '/v1/topics/:topic/messages',
    route(async (c) => {
      const t0 = performance.now();
      const topic = name(c.req.param('topic'), 'topic');
      const o = await jsonBody(c, maxRequest);
      const from = name(o.from, 'from');
      const req = message<TopicSendReq>(s, o, { op: 'topic_send', field: 'topic', value: topic });
      s.stats.countIn();
      const r = await topicSendAs(s, from, req);
      if (isRefusal(r)) throw refusal(r, 'from');
      s.stats.latency(performance.now() - t0);
      return c.json({ mid: r.mid, tseq: r.tseq, ts: r.ts });
    }),
  );

  app.get(
    '/v1/users/:user/inbox',
    route(async (c) => {
      const user = name(c.req.param('user'), 'user');
      const a = c.req.query('after');
      const after = a === undefined || a === '' ? 0 : DIGITS.test(a) ? Number(a) : NaN;
      if (!Number.isSafeInteger(after)) throw bad('after', 'after must be a seq: an integer ≥ 0');
      const l = c.req.query('limit');
      const limit = l === undefined || l === '' ? 100 : DIGITS.test(l) ? Number(l) : NaN;
      if (!(limit >= 1 && limit <= 1000)) throw bad('limit', 'limit must be an integer from 1 to 1000');
      const { messages, head } = await s.ctx.store.readInbox(user, after, limit);
      const last = messages.at(-1)?.seq;
      return c.json({
        user,
        head,
        messages: messages.map(inboxMessage),
        next: last !== undefined && last < head.seq ? last : null,
      });
    }),
  );

  app.get(
    '/v1/users/:user/sessions',
    route(async (c) => {
      const user = name(c.req.param('user'), 'user');
      const sessions = await s.ctx.store.sessions(user);
      return c.json({
        user,
        sessions: sessions.map(({ device, server, boot, gen }) => ({ device, server, boot, gen })),
      });
    }),
  );

  app.post(
    '/v1/users/:user/kick',
    route(async (c) => {
      const user = name(c.req.param('user'), 'user');
      const o = await jsonBody(c, maxRequest);
      const device = o.device === undefined ? undefined : name(o.device, 'device');
      const { local, servers } = await kickUser(s, user, device);
      return c.json({ user, ...(device === undefined ? {} : { device }), local, servers });
    }),
  );

  // Anything else under these paths: a JSON 404 or 405, not the listener's plain one.
  const endpoints: [string, string][] = [
    ['/v1/messages', 'POST'],
    ['/v1/topics', 'POST'],
    ['/v1/topics/:topic/members', 'POST'],
    ['/v1/topics/:topic/members/:user', 'DELETE'],
    ['/v1/topics/:topic/messages', 'POST'],
    ['/v1/users/:user/inbox', 'GET'],
    ['/v1/users/:user/sessions', 'GET'],
    ['/v1/users/:user/kick', 'POST'],
  ];
  for (const [path, method] of endpoints) {
    app.all(path, (c) => {
      c.header('Allow', method);
      return apiError(c, 405, 'method_not_allowed', `${c.req.method} ${c.req.path}: use ${method}`, null);
    });
  }
  for (const p of ['/v1/topics/*', '/v1/users/*']) {
    app.all(p, (c) => apiError(c, 404, 'not_found', `no such endpoint: ${c.req.method} ${c.req.path}`, null));
  }
  return app;
}
