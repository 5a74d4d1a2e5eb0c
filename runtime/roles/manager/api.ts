/**
 * The manager's admin JSON API (docs/architecture.md "Security": everything but /health
 * needs an admin token). Lists are paged: `?after=<cursor>&limit=<1..1000>`,
 * and each page says where the next one starts (`next`, null at the end).
 *
 *   GET /health
 *   GET /v1/users/:user                 record, inbox head, ack cursors, sessions
 *   GET /v1/users/:user/inbox           messages with seq > after
 *   GET /v1/sessions                    the session directory, by user then device (after=<user>/<device>)
 *   GET /v1/topics                      topics by name
 *   GET /v1/topics/:topic               a topic's info and a page of its members (after=<member>)
 */
import { Hono, type Context } from 'hono';
import type { Logger } from '../../contract/context.js';
import { jsonError, requireAdmin } from '../../http/admin.js';
import type { DirEntry, Store } from '../../store/store.js';
import { bodyView } from '../../http/body.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const NAME_RULE = 'must be 1 to 64 characters of [A-Za-z0-9_.@-]';
const DIGITS = /^\d{1,16}$/;

/** A session cursor: "<user>/<device>" ('/' is no name character); a bare "<user>" starts after that user. */
export function sessionCursor(e: Pick<DirEntry, 'user' | 'device'>): string {
  return `${e.user}/${e.device}`;
}

class BadRequest extends Error {}

function name(value: string | undefined, what: string): string {
  if (value === undefined || !NAME.test(value)) throw new BadRequest(`${what} ${NAME_RULE}`);
  return value;
}

function limitOf(c: Context): number {
  const v = c.req.query('limit');
  if (v === undefined) return DEFAULT_LIMIT;
  const n = DIGITS.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new BadRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

/** `after` as a name (topics, members), or undefined for the first page. */
function afterName(c: Context, what: string): string | undefined {
  const v = c.req.query('after');
  if (v === undefined || v === '') return undefined;
  return name(v, `after (a ${what})`);
}

export function managerApi(opts: { store: Store; secret: string; id: string; log: Logger }): Hono {
  const { store } = opts;
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof BadRequest) return jsonError(c, 400, 'bad_request', err.message);
    opts.log.error(`manager ${opts.id}: ${c.req.method} ${c.req.path} failed: ${err.message}`);
    return jsonError(c, 500, 'internal', 'internal error; see the manager log');
  });
  app.notFound((c) => jsonError(c, 404, 'not_found', `no such endpoint: ${c.req.method} ${c.req.path}`));
  app.get('/health', (c) => c.json({ ok: true, role: 'manager', id: opts.id }));
  app.use('/v1/*', requireAdmin(opts.secret));

  app.get('/v1/users/:user', async (c) => {
    const user = name(c.req.param('user'), 'user');
    const [record, acks, sessions] = await Promise.all([
      store.userRecord(user),
      store.deviceAcks(user),
      store.sessions(user),
    ]);
    const head = await store.head(user);
    if (!record && acks.length === 0 && sessions.length === 0 && head.seq === 0) {
      return jsonError(c, 404, 'no_such_user', `no user ${user} is known: never logged in, never sent to`);
    }
    return c.json({
      user,
      record,
      head,
      acks,
      sessions: sessions.map(({ device, server, boot, gen }) => ({ device, server, boot, gen })),
    });
  });

  app.get('/v1/users/:user/inbox', async (c) => {
    const user = name(c.req.param('user'), 'user');
    const a = c.req.query('after');
    const after = a === undefined || a === '' ? 0 : DIGITS.test(a) ? Number(a) : NaN;
    if (!Number.isSafeInteger(after)) throw new BadRequest('after must be a seq: an integer ≥ 0');
    const limit = limitOf(c);
    const { messages, head } = await store.readInbox(user, after, limit);
    const last = messages.at(-1)?.seq;
    return c.json({
      user,
      head,
      messages: messages.map((m) => {
        const { body, ...meta } = m;
        return { ...meta, ...bodyView(body) };
      }),
      next: last !== undefined && last < head.seq ? last : null,
    });
  });

  app.get('/v1/sessions', async (c) => {
    const a = c.req.query('after');
    let after: string | undefined;
    if (a !== undefined && a !== '') {
      const [u, d, ...rest] = a.split('/');
      if (rest.length > 0 || !NAME.test(u!) || (d !== undefined && !NAME.test(d))) {
        throw new BadRequest('after must be a session cursor "<user>/<device>" (as in a page\'s next) or a user name');
      }
      after = a;
    }
    const limit = limitOf(c);
    const page = await store.listSessions(after, limit + 1);
    const more = page.length > limit;
    const sessions = page.slice(0, limit);
    return c.json({ sessions, next: more ? sessionCursor(sessions.at(-1)!) : null });
  });

  app.get('/v1/topics', async (c) => {
    const after = afterName(c, 'topic');
    const limit = limitOf(c);
    const page = await store.listTopics(after, limit + 1);
    const more = page.length > limit;
    const topics = page.slice(0, limit);
    return c.json({ topics, next: more ? topics.at(-1)!.topic : null });
  });

  app.get('/v1/topics/:topic', async (c) => {
    const topic = name(c.req.param('topic'), 'topic');
    const after = afterName(c, 'member');
    const limit = limitOf(c);
    const [info, page] = await Promise.all([store.topicInfo(topic), store.topicMembers(topic, after, limit)]);
    if (!info || !page) return jsonError(c, 404, 'no_such_topic', `no topic ${topic}`);
    // `info.members` is the count; `members` this page of names.
    return c.json({ topic, info, members: page.members, next: page.more ? (page.members.at(-1) ?? null) : null });
  });

  return app;
}
