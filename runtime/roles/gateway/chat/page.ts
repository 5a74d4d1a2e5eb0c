/**
 * The chat page's script (served by the gateway at /chat/page.js, bundled
 * with the client library by scripts/chat-page.mjs).
 *
 * - Sign in with user + token (+ device); the token stays in this tab's
 *   sessionStorage. The client routes with GET /v1/route on this origin and
 *   logs in over the msg_server's WebSocket; it reconnects through the
 *   gateway by itself, and the status line says where it is.
 * - Received messages: every inbox message once, in seq order (the client
 *   drops repeats; the page keys its rows by seq as well), acknowledged as
 *   soon as the page has shown it. History: the messages up to the login's
 *   `acked` come from `sync` (the server pushes only those after it).
 * - Own messages: shown at once as pending, sent one after another with a
 *   `cid` of their own, retried with the same cid after a lost connection
 *   (the server stores a repeated cid once), acked on the server's `ok`.
 *   They are kept in sessionStorage, so a reload sends the pending ones on.
 *   A topic message comes back into the sender's inbox too: the row then
 *   takes the copy's place (seq order), matched by mid.
 * What the server sends is untrusted: it is written with textContent only.
 */
import { FishChatClient, FishError, type Msg } from '../../../client/index.js';
import { SESSION_KEY, STATE_KEY_PREFIX } from './keys.js';

const ID_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
/** messages before the login's `acked` fetched as history */
const HISTORY = 200;
const SYNC_PAGE = 100;
/** own messages kept in sessionStorage (the oldest acked ones go first) */
const MAX_OWN = 500;
const MAX_BODY_CHARS = 4000;

interface Session {
  user: string;
  token: string;
  device: string;
}

type State = 'pending' | 'acked' | 'failed';

/** A message this tab sent (or is sending). */
interface Own {
  cid: string;
  /** 'u:bob' or 't:general' */
  conv: string;
  text: string;
  state: State;
  /** the highest inbox seq shown when it was written: it sorts after that one */
  after: number;
  /** write order among own messages */
  n: number;
  ts: number;
  mid?: string;
  /** seq in the recipient's inbox (p2p) */
  seq?: number;
  /** the topic's seq (topic) */
  tseq?: number;
  error?: string;
}

interface Saved {
  convs: string[];
  active?: string;
  own: Own[];
  n: number;
}

interface Conv {
  key: string;
  kind: 'user' | 'topic';
  name: string;
  log: HTMLOListElement;
  item: HTMLLIElement;
  button: HTMLButtonElement;
  badge: HTMLSpanElement;
  unread: number;
}

type SortKey = readonly [number, number, number];

// ------------------------------------------------------------------ DOM helpers

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pad = (n: number) => (n < 10 ? '0' : '') + n;
const clock = (ts: number) => {
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const convKey = (kind: 'user' | 'topic', name: string) => (kind === 'user' ? 'u:' : 't:') + name;

function randomCid(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'w' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A body as text: strings as they are, anything else in a short readable form. */
function bodyText(body: unknown): string {
  let s: string;
  if (typeof body === 'string') s = body;
  else if (body instanceof Uint8Array) s = `[${body.length} bytes]`;
  else {
    try {
      s = JSON.stringify(body, (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `[${v.length} bytes]` : v,
      );
    } catch {
      s = String(body);
    }
    if (s === undefined) s = String(body);
  }
  return s.length > MAX_BODY_CHARS ? s.slice(0, MAX_BODY_CHARS) + '…' : s;
}

const errText = (err: unknown) =>
  err instanceof FishError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);

const storage = {
  get(key: string): string | null {
    try {
      return sessionStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key: string, v: string) {
    try {
      sessionStorage.setItem(key, v);
    } catch {}
  },
  remove(key: string) {
    try {
      sessionStorage.removeItem(key);
    } catch {}
  },
};

function readSession(): Session | null {
  try {
    const s = JSON.parse(storage.get(SESSION_KEY) ?? 'null') as Partial<Session> | null;
    if (s && typeof s.user === 'string' && ID_RE.test(s.user) && typeof s.token === 'string' && s.token) {
      const device = typeof s.device === 'string' && ID_RE.test(s.device) ? s.device : 'web';
      return { user: s.user, token: s.token, device };
    }
  } catch {}
  return null;
}

// ------------------------------------------------------------------ elements

const ui = {
  status: $('status'),
  statusText: $('status-text'),
  me: $('me'),
  signout: $<HTMLButtonElement>('signout'),
  auth: $('auth'),
  signin: $<HTMLFormElement>('signin'),
  user: $<HTMLInputElement>('user'),
  token: $<HTMLInputElement>('token'),
  device: $<HTMLInputElement>('device'),
  cmdUser: $('cmd-user'),
  authError: $('auth-error'),
  connect: $<HTMLButtonElement>('connect'),
  app: $('app'),
  openUser: $<HTMLFormElement>('open-user'),
  peer: $<HTMLInputElement>('peer'),
  openTopic: $<HTMLFormElement>('open-topic'),
  topic: $<HTMLInputElement>('topic'),
  createTopic: $<HTMLButtonElement>('create-topic'),
  openError: $('open-error'),
  convs: $<HTMLUListElement>('convs'),
  convsEmpty: $('convs-empty'),
  chatTitle: $('chat-title'),
  chatSub: $('chat-sub'),
  logs: $('logs'),
  logsEmpty: $('logs-empty'),
  compose: $<HTMLFormElement>('compose'),
  text: $<HTMLTextAreaElement>('text'),
  send: $<HTMLButtonElement>('send'),
};

// ------------------------------------------------------------------ state

let session: Session | null = null;
let client: FishChatClient | null = null;
/** bumps at every sign-in and sign-out: work of an older one stops */
let generation = 0;
let reconnects = 0;
const convs = new Map<string, Conv>();
let active: Conv | null = null;
/** received rows by inbox seq, and the mids shown */
const bySeq = new Map<number, HTMLLIElement>();
const byMid = new Map<string, HTMLLIElement>();
/** own messages by cid, in write order */
const own = new Map<string, Own>();
const ownRow = new Map<string, HTMLLIElement>();
let ownN = 0;
/** the highest inbox seq shown */
let maxShown = 0;
const sortKey = new WeakMap<Element, SortKey>();
let ackTo = 0;
let ackQueued = false;
let saveQueued = false;
let pumping = false;

const stateKey = (s: Session) => `${STATE_KEY_PREFIX}${s.user}/${s.device}`;

function setStatus(state: string, text: string, server?: string): void {
  ui.status.dataset.state = state;
  if (server) ui.status.dataset.server = server;
  else delete ui.status.dataset.server;
  ui.statusText.textContent = text;
}

function connectedText(server: string): string {
  return `connected to ${server}` + (reconnects > 0 ? ` · reconnected ${reconnects}×` : '');
}

// ------------------------------------------------------------------ conversations

function conv(key: string): Conv {
  let c = convs.get(key);
  if (c) return c;
  const kind = key.startsWith('t:') ? 'topic' : 'user';
  const name = key.slice(2);
  const log = el('ol', 'log');
  log.dataset.conv = key;
  log.setAttribute('aria-label', kind === 'topic' ? `Messages in topic ${name}` : `Messages with ${name}`);
  log.hidden = true;
  ui.logs.append(log);
  const item = el('li');
  const button = el('button', 'conv');
  button.type = 'button';
  button.dataset.conv = key;
  button.append(el('span', 'kind', kind === 'topic' ? '#' : '@'), el('span', 'name', name));
  const badge = el('span', 'badge');
  badge.hidden = true;
  button.append(badge);
  button.addEventListener('click', () => select(key, true));
  item.append(button);
  ui.convs.append(item);
  ui.convsEmpty.hidden = true;
  c = { key, kind, name, log, item, button, badge, unread: 0 };
  convs.set(key, c);
  queueSave();
  return c;
}

function select(key: string, focus: boolean): void {
  const c = conv(key);
  if (active && active !== c) {
    active.log.hidden = true;
    active.button.removeAttribute('aria-current');
  }
  active = c;
  c.log.hidden = false;
  c.log.setAttribute('role', 'log');
  c.button.setAttribute('aria-current', 'true');
  c.unread = 0;
  c.badge.hidden = true;
  ui.logsEmpty.hidden = true;
  ui.chatTitle.textContent = c.kind === 'topic' ? `# ${c.name}` : c.name;
  ui.chatSub.textContent = c.kind === 'topic' ? 'topic' : 'direct messages';
  ui.text.disabled = false;
  ui.send.disabled = false;
  ui.text.placeholder = c.kind === 'topic' ? `Message #${c.name}` : `Message ${c.name}`;
  scrollDown(c, true);
  if (focus) ui.text.focus();
  queueSave();
}

function bump(c: Conv, unread: boolean): void {
  if (ui.convs.firstElementChild !== c.item) ui.convs.prepend(c.item);
  if (unread && c !== active) {
    c.unread++;
    c.badge.textContent = String(c.unread);
    c.badge.hidden = false;
    c.badge.setAttribute('aria-label', `${c.unread} new`);
  }
}

function scrollDown(c: Conv, force = false): void {
  const box = ui.logs;
  if (c !== active) return;
  if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
}

/** Inserts `li` into `log` in sort-key order (nearly always at the end). */
function place(log: HTMLOListElement, li: HTMLLIElement, key: SortKey): void {
  sortKey.set(li, key);
  let at = log.lastElementChild;
  while (at) {
    const k = sortKey.get(at);
    if (!k || k[0] < key[0] || (k[0] === key[0] && (k[1] < key[1] || (k[1] === key[1] && k[2] <= key[2])))) break;
    at = at.previousElementSibling;
  }
  if (at) at.after(li);
  else log.prepend(li);
}

// ------------------------------------------------------------------ rows

function markFor(state: State, title: string): HTMLSpanElement {
  const m = el('span', 'mark', state === 'pending' ? '◷' : state === 'acked' ? '✓' : '!');
  m.dataset.state = state;
  m.title = title;
  m.setAttribute('aria-label', title);
  return m;
}

function row(opts: { from: string; text: string; ts: number; own: boolean; topic: boolean }): {
  li: HTMLLIElement;
  meta: HTMLDivElement;
} {
  const li = el('li', opts.own ? 'msg own' : 'msg');
  const meta = el('div', 'meta');
  if (opts.topic || !opts.own) meta.append(el('span', 'from', opts.own ? 'you' : opts.from));
  const t = el('time', undefined, clock(opts.ts));
  t.dateTime = new Date(opts.ts).toISOString();
  t.title = new Date(opts.ts).toLocaleString();
  meta.append(t);
  li.append(meta, el('div', 'body', opts.text));
  return { li, meta };
}

/** A received row becomes the display of own message `o` (its copy in our inbox). */
function adopt(li: HTMLLIElement, o: Own): void {
  li.classList.add('own');
  li.dataset.cid = o.cid;
  li.dataset.state = 'acked';
  const meta = li.querySelector('.meta');
  const from = meta?.querySelector('.from');
  if (from) from.textContent = 'you';
  meta?.querySelector('.mark')?.remove();
  meta?.append(markFor('acked', `stored (seq ${li.dataset.seq} in your inbox)`));
}

function ackedTitle(o: Own): string {
  return o.tseq !== undefined
    ? `stored (message ${o.tseq} of the topic)`
    : o.seq !== undefined
      ? `stored (seq ${o.seq} in ${o.conv.slice(2)}'s inbox)`
      : 'stored';
}

function renderOwn(o: Own): void {
  const c = conv(o.conv);
  // A copy in our inbox (topic, or a message to ourselves) shows it already.
  if (o.mid && byMid.has(o.mid)) {
    ownRow.get(o.cid)?.remove();
    ownRow.delete(o.cid);
    adopt(byMid.get(o.mid)!, o);
    return;
  }
  const { li, meta } = row({ from: session?.user ?? '', text: o.text, ts: o.ts, own: true, topic: c.kind === 'topic' });
  li.dataset.cid = o.cid;
  li.dataset.state = o.state;
  if (o.mid) li.dataset.mid = o.mid;
  const title =
    o.state === 'pending'
      ? 'pending: not stored by the server yet'
      : o.state === 'acked'
        ? ackedTitle(o)
        : `not sent: ${o.error ?? 'refused'}`;
  meta.append(markFor(o.state, title));
  if (o.state === 'failed') {
    const again = el('button', 'retry ghost small', 'Retry');
    again.type = 'button';
    again.addEventListener('click', () => {
      o.state = 'pending';
      o.error = undefined;
      renderOwn(o);
      queueSave();
      void pump();
    });
    li.append(el('div', 'error small', o.error ?? 'refused'), again);
  }
  const old = ownRow.get(o.cid);
  if (old) {
    sortKey.set(li, sortKey.get(old)!);
    old.replaceWith(li);
  } else place(c.log, li, [o.after, 1, o.n]);
  ownRow.set(o.cid, li);
  scrollDown(c);
}

function convOf(m: Msg): string | null {
  if (typeof m.topic === 'string') return ID_RE.test(m.topic) ? convKey('topic', m.topic) : null;
  const me = session?.user;
  const peer = m.from === me && typeof m.to === 'string' ? m.to : m.from;
  return ID_RE.test(peer) ? convKey('user', peer) : null;
}

/** Shows an inbox message once (by seq and by mid); `live`: it just arrived (ack it, count it unread). */
function showReceived(m: Msg, live: boolean): void {
  if (bySeq.has(m.seq)) return;
  const key = convOf(m);
  if (key === null || byMid.has(m.mid)) {
    // Unshowable (a bad name) or a second copy: nothing to show, but it is handled.
    if (live) ackLater(m.seq);
    return;
  }
  const c = conv(key);
  const mine = m.from === session?.user;
  const { li, meta } = row({ from: m.from, text: bodyText(m.body), ts: m.ts, own: mine, topic: c.kind === 'topic' });
  li.dataset.seq = String(m.seq);
  li.dataset.mid = m.mid;
  li.dataset.from = m.from;
  if (m.tseq !== undefined) li.dataset.tseq = String(m.tseq);
  place(c.log, li, [m.seq, 0, 0]);
  bySeq.set(m.seq, li);
  byMid.set(m.mid, li);
  if (m.seq > maxShown) maxShown = m.seq;
  if (mine) {
    const o = [...own.values()].find((x) => x.mid === m.mid);
    if (o) {
      ownRow.get(o.cid)?.remove();
      ownRow.delete(o.cid);
      adopt(li, o);
    } else meta.append(markFor('acked', `stored (seq ${m.seq} in your inbox)`));
  }
  bump(c, live && !mine);
  scrollDown(c);
  if (live) ackLater(m.seq);
}

/** Acks (cumulative) the highest seq shown, once per burst. */
function ackLater(seq: number): void {
  if (seq > ackTo) ackTo = seq;
  if (ackQueued) return;
  ackQueued = true;
  queueMicrotask(() => {
    ackQueued = false;
    client?.ack(ackTo);
  });
}

function clearReceived(): void {
  for (const li of bySeq.values()) li.remove();
  bySeq.clear();
  byMid.clear();
  maxShown = 0;
  ackTo = 0;
  // own rows adopted by a copy went with it: show them again from their records
  for (const o of own.values()) if (!ownRow.has(o.cid)) renderOwn(o);
}

// ------------------------------------------------------------------ saving

function queueSave(): void {
  if (saveQueued || !session) return;
  saveQueued = true;
  setTimeout(() => {
    saveQueued = false;
    if (!session) return;
    let list = [...own.values()];
    if (list.length > MAX_OWN) {
      const drop = new Set(
        list
          .filter((o) => o.state !== 'pending')
          .slice(0, list.length - MAX_OWN)
          .map((o) => o.cid),
      );
      list = list.filter((o) => !drop.has(o.cid));
      for (const cid of drop) own.delete(cid);
    }
    const saved: Saved = { convs: [...convs.keys()], active: active?.key, own: list, n: ownN };
    storage.set(stateKey(session), JSON.stringify(saved));
  }, 50);
}

function restore(s: Session): void {
  let saved: Partial<Saved> = {};
  try {
    saved = (JSON.parse(storage.get(stateKey(s)) ?? '{}') as Partial<Saved>) ?? {};
  } catch {}
  const okKey = (k: unknown): k is string =>
    typeof k === 'string' && (k.startsWith('u:') || k.startsWith('t:')) && ID_RE.test(k.slice(2));
  for (const k of Array.isArray(saved.convs) ? saved.convs : []) if (okKey(k)) conv(k);
  ownN = typeof saved.n === 'number' ? saved.n : 0;
  for (const o of Array.isArray(saved.own) ? saved.own : []) {
    if (!o || typeof o.cid !== 'string' || !okKey(o.conv) || typeof o.text !== 'string') continue;
    const r: Own = {
      cid: o.cid,
      conv: o.conv,
      text: o.text,
      state: o.state === 'acked' || o.state === 'failed' ? o.state : 'pending',
      after: Number(o.after) || 0,
      n: Number(o.n) || 0,
      ts: Number(o.ts) || Date.now(),
      mid: typeof o.mid === 'string' ? o.mid : undefined,
      seq: typeof o.seq === 'number' ? o.seq : undefined,
      tseq: typeof o.tseq === 'number' ? o.tseq : undefined,
      error: typeof o.error === 'string' ? o.error : undefined,
    };
    own.set(r.cid, r);
    renderOwn(r);
  }
  if (okKey(saved.active)) select(saved.active, false);
}

// ------------------------------------------------------------------ sending

function write(text: string): void {
  if (!active || !session) return;
  const o: Own = {
    cid: randomCid(),
    conv: active.key,
    text,
    state: 'pending',
    after: maxShown,
    n: ++ownN,
    ts: Date.now(),
  };
  own.set(o.cid, o);
  renderOwn(o);
  bump(active, false);
  scrollDown(active, true);
  queueSave();
  void pump();
}

/** Sends the pending own messages one after another (so they keep their order), each until the server says ok or no. */
async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  const gen = generation;
  let wait = 250;
  try {
    for (;;) {
      const c = client;
      if (gen !== generation || c === null || c.closed) return;
      const o = [...own.values()].find((x) => x.state === 'pending');
      if (!o) return;
      if (!c.connected) {
        await sleep(200);
        continue;
      }
      try {
        const name = o.conv.slice(2);
        if (o.conv.startsWith('t:')) {
          const r = await c.topicSend(name, o.text, { cid: o.cid });
          Object.assign(o, { mid: r.mid, tseq: r.tseq, ts: r.ts });
        } else {
          const r = await c.send(name, o.text, { cid: o.cid });
          Object.assign(o, { mid: r.mid, seq: r.seq, ts: r.ts });
        }
        if (gen !== generation) return;
        o.state = 'acked';
        wait = 250;
      } catch (err) {
        if (gen !== generation) return;
        const code = err instanceof FishError ? err.code : 'internal';
        if (code === 'internal' || code === 'overloaded' || code === 'rate_limited') {
          // Lost connection, timeout, a server fault or a busy server: the same cid again, later.
          await sleep(wait);
          wait = Math.min(wait * 2, 5000);
          continue;
        }
        o.state = 'failed';
        o.error =
          code === 'not_a_member'
            ? `you are not a member of ${o.conv.slice(2)}: join it first`
            : code === 'no_such_topic'
              ? `there is no topic ${o.conv.slice(2)}`
              : errText(err);
      }
      renderOwn(o);
      queueSave();
    }
  } finally {
    pumping = false;
    // a message written while the last one was being finished
    if (gen === generation && [...own.values()].some((x) => x.state === 'pending') && client && !client.closed)
      setTimeout(() => void pump(), 0);
  }
}

// ------------------------------------------------------------------ session

async function loadHistory(c: FishChatClient, gen: number): Promise<void> {
  const login = c.login;
  const upTo = login.acked;
  let after = Math.max(login.first - 1, upTo - HISTORY, 0);
  while (after < upTo && gen === generation) {
    const page = await c.sync(after, Math.min(SYNC_PAGE, upTo - after));
    if (gen !== generation) return;
    for (const m of page.messages) if (m.seq <= upTo) showReceived(m, false);
    if (!page.more || page.last <= after) break;
    after = page.last;
  }
}

function historyLater(c: FishChatClient, gen: number): void {
  loadHistory(c, gen).catch(() => {
    // A lost connection: the next login tries again (see 'reconnect').
  });
}

function showApp(s: Session): void {
  ui.auth.hidden = true;
  ui.app.hidden = false;
  ui.me.textContent = s.device === 'web' ? s.user : `${s.user} · ${s.device}`;
  ui.me.hidden = false;
  ui.signout.hidden = false;
}

function showAuth(message?: string): void {
  ui.app.hidden = true;
  ui.me.hidden = true;
  ui.signout.hidden = true;
  ui.auth.hidden = false;
  ui.connect.disabled = false;
  ui.connect.textContent = 'Sign in';
  ui.authError.hidden = !message;
  ui.authError.textContent = message ?? '';
  setStatus('offline', 'not signed in');
  (ui.user.value ? ui.token : ui.user).focus();
}

/** Forgets everything of the signed-in user on this page (not in storage). */
function reset(): void {
  generation++;
  const c = client;
  client = null;
  if (c && !c.closed) void c.close().catch(() => undefined);
  for (const cv of convs.values()) {
    cv.log.remove();
    cv.item.remove();
  }
  convs.clear();
  active = null;
  bySeq.clear();
  byMid.clear();
  own.clear();
  ownRow.clear();
  ownN = 0;
  maxShown = 0;
  ackTo = 0;
  reconnects = 0;
  ui.logsEmpty.hidden = false;
  ui.convsEmpty.hidden = false;
  ui.chatTitle.textContent = 'No conversation open';
  ui.chatSub.textContent = '';
  ui.text.disabled = true;
  ui.send.disabled = true;
}

/**
 * Signs in: connects (retrying while the cluster cannot be reached, when
 * `retry`), then wires the client to the page. Resolves with an error text
 * for the form, or null.
 */
async function start(s: Session, retry: boolean): Promise<string | null> {
  reset();
  const gen = generation;
  session = s;
  restore(s);
  let wait = 1000;
  for (;;) {
    setStatus('connecting', 'connecting…');
    try {
      const c = await FishChatClient.connect({
        gateway: location.origin,
        transport: 'ws',
        user: s.user,
        token: s.token,
        device: s.device,
      });
      if (gen !== generation) {
        void c.close();
        return null;
      }
      wire(c, gen);
      return null;
    } catch (err) {
      if (gen !== generation) return null;
      const code = err instanceof FishError ? err.code : 'internal';
      if (code === 'auth_failed') return `The server refused this token: ${err instanceof Error ? err.message : ''}`;
      if (code === 'bad_request') return `The server refused the sign-in: ${errText(err)}`;
      if (!retry) return `Cannot reach the cluster: ${errText(err)}`;
      setStatus('reconnecting', `cannot connect (${errText(err)}); trying again in ${Math.round(wait / 1000)} s`);
      await sleep(wait);
      if (gen !== generation) return null;
      wait = Math.min(wait * 2, 15_000);
    }
  }
}

function wire(c: FishChatClient, gen: number): void {
  client = c;
  setStatus('connected', connectedText(c.login.server), c.login.server);
  c.on('message', (m) => {
    if (gen === generation) showReceived(m, true);
  });
  c.on('disconnect', ({ reason, willReconnect }) => {
    if (gen !== generation) return;
    if (reason === 'kick:replaced') {
      setStatus('replaced', `replaced: ${session?.user} signed in elsewhere with device ${session?.device}`);
      offerReconnect();
    } else if (willReconnect) {
      setStatus('reconnecting', `reconnecting (${reason.replace(/^kick:/, 'kicked: ')})…`);
    } else if (reason === 'auth_failed') {
      const s = session;
      generation++;
      client = null;
      storage.remove(SESSION_KEY);
      if (s) ui.user.value = s.user;
      showAuth('The server no longer takes this token (expired?): mint a new one.');
    } else {
      setStatus('closed', `disconnected (${reason})`);
      offerReconnect();
    }
  });
  c.on('reconnect', (info) => {
    if (gen !== generation) return;
    reconnects++;
    setStatus('connected', connectedText(info.server), info.server);
    if (info.epochChanged) {
      clearReceived();
      historyLater(c, gen);
    }
    void pump();
  });
  c.on('error', () => {
    // Reported through 'disconnect' and the status line when it matters.
  });
  historyLater(c, gen);
  void pump();
}

function offerReconnect(): void {
  const b = el('button', 'ghost small', 'Use here');
  b.type = 'button';
  b.id = 'reconnect';
  b.title = 'Sign in again in this tab (the other one is then replaced)';
  b.addEventListener('click', () => {
    const s = session;
    if (s) void start(s, true);
  });
  ui.statusText.append(' ', b);
}

// ------------------------------------------------------------------ events

ui.user.addEventListener('input', () => {
  ui.cmdUser.textContent = ui.user.value.trim() || 'USER';
});

ui.signin.addEventListener('submit', (e) => {
  e.preventDefault();
  const user = ui.user.value.trim();
  const token = ui.token.value.trim();
  const device = ui.device.value.trim() || 'web';
  const problem = !ID_RE.test(user)
    ? 'User: 1 to 64 characters of A-Z a-z 0-9 _ . @ -'
    : !token
      ? 'Token: paste the output of fishchat token ' + user
      : !ID_RE.test(device)
        ? 'Device: 1 to 64 characters of A-Z a-z 0-9 _ . @ -'
        : null;
  if (problem) {
    ui.authError.textContent = problem;
    ui.authError.hidden = false;
    (problem.startsWith('User') ? ui.user : problem.startsWith('Token') ? ui.token : ui.device).focus();
    return;
  }
  ui.connect.disabled = true;
  ui.connect.textContent = 'Signing in…';
  ui.authError.hidden = true;
  const s = { user, token, device };
  void start(s, false).then((problem) => {
    if (problem !== null) {
      reset();
      session = null;
      showAuth(problem);
      ui.token.select();
      return;
    }
    if (session !== s) return;
    storage.set(SESSION_KEY, JSON.stringify(s));
    ui.token.value = '';
    showApp(s);
    (active ? ui.text : ui.peer).focus();
  });
});

ui.signout.addEventListener('click', () => {
  const s = session;
  const pending = [...own.values()].filter((o) => o.state === 'pending').length;
  if (pending > 0 && !confirm(`${pending} message(s) are not sent yet. Sign out anyway?`)) return;
  reset();
  session = null;
  storage.remove(SESSION_KEY);
  if (s) {
    storage.remove(stateKey(s));
    ui.user.value = s.user;
    ui.cmdUser.textContent = s.user;
  }
  showAuth();
});

function openError(text: string | null, focus?: HTMLInputElement): void {
  ui.openError.textContent = text ?? '';
  ui.openError.hidden = text === null;
  if (text !== null) focus?.focus();
}

ui.openUser.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = ui.peer.value.trim();
  if (!ID_RE.test(name)) return openError('A user name is 1 to 64 characters of A-Z a-z 0-9 _ . @ -', ui.peer);
  openError(null);
  ui.peer.value = '';
  select(convKey('user', name), true);
});

async function topicOp(op: 'join' | 'create'): Promise<void> {
  const name = ui.topic.value.trim();
  if (!ID_RE.test(name)) return openError('A topic name is 1 to 64 characters of A-Z a-z 0-9 _ . @ -', ui.topic);
  const c = client;
  if (!c?.connected) return openError('Not connected right now: try again in a moment.', ui.topic);
  openError(null);
  try {
    if (op === 'create') await c.topicCreate(name);
    else await c.topicJoin(name);
  } catch (err) {
    const code = err instanceof FishError ? err.code : '';
    return openError(
      code === 'topic_exists'
        ? `Topic ${name} exists already: join it.`
        : code === 'no_such_topic'
          ? `There is no topic ${name}: create it.`
          : `Could not ${op} ${name}: ${errText(err)}`,
      ui.topic,
    );
  }
  ui.topic.value = '';
  select(convKey('topic', name), true);
}

ui.openTopic.addEventListener('submit', (e) => {
  e.preventDefault();
  void topicOp('join');
});
ui.createTopic.addEventListener('click', () => void topicOp('create'));

ui.compose.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.text.value;
  if (!text.trim() || !active) return;
  ui.text.value = '';
  grow();
  write(text);
  ui.text.focus();
});

ui.text.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.compose.requestSubmit();
  }
});

/** The message box grows with its text, up to a few lines. */
function grow(): void {
  ui.text.style.height = 'auto';
  ui.text.style.height = `${Math.min(ui.text.scrollHeight, 160)}px`;
}
ui.text.addEventListener('input', grow);

// ------------------------------------------------------------------ start

const saved = readSession();
if (saved) {
  showApp(saved);
  void start(saved, true).then((problem) => {
    if (problem !== null) {
      reset();
      session = null;
      storage.remove(SESSION_KEY);
      ui.user.value = saved.user;
      showAuth(problem);
    }
  });
} else {
  showAuth();
}
