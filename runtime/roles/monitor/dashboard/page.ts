/**
 * The monitor dashboard's script (served inline by ../dashboard.ts under the
 * page's CSP hash). It asks for an admin token once, keeps it in the tab's
 * sessionStorage, polls GET /status and reads GET /events with fetch()
 * (EventSource cannot send an Authorization header). What the monitor sends
 * is untrusted: it is written with textContent only, never as HTML.
 */
import { TOKEN_KEY as KEY } from './token-key.js';

const WINDOW_MS = 5 * 60 * 1000;
const POLL_MS = 2000;
const MAX_LOG = 200;
const STALL_MS = 45000;
const COLORS = 8;

/** A role from GET /status or a beat: untrusted JSON; role and id are checked, num() and str() read the rest. */
interface Role {
  role: string;
  id: string;
  up?: unknown;
  addr?: unknown;
  http?: unknown;
  pid?: unknown;
  lastBeat?: unknown;
  conns?: unknown;
  inRate?: unknown;
  outRate?: unknown;
  p99?: unknown;
  rss?: unknown;
  uptime?: unknown;
  /** when this page last heard of it */
  seenAt?: number;
}
/** The data of a server-sent event (untrusted JSON). */
type EventData = { readonly [field: string]: unknown };
interface Point {
  t: number;
  conns: number;
  inRate: number;
  outRate: number;
}
interface Series {
  color: number;
  pts: Point[];
}
/** One line a chart draws for every msg_server. */
interface Line {
  get: (p: Point) => number;
  dash: number[];
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v)).slice(0, 200);
const pad = (n: number) => (n < 10 ? '0' : '') + n;
const keyOf = (r: Role) => r.role + '\u0000' + r.id;
const isRole = (r: unknown): r is Role =>
  !!r && typeof (r as Role).role === 'string' && typeof (r as Role).id === 'string';

const store = {
  get() {
    try {
      return sessionStorage.getItem(KEY);
    } catch {
      return null;
    }
  },
  set(v: string) {
    try {
      sessionStorage.setItem(KEY, v);
    } catch {}
  },
  clear() {
    try {
      sessionStorage.removeItem(KEY);
    } catch {}
  },
};

let token: string | null = null;
let gen = 0;
let abort: AbortController | null = null;
let pollTimer = 0;
let tickTimer = 0;
let cluster = '';
let roles = new Map<string, Role>();
let polledUp = new Map<string, boolean>();
let series = new Map<string, Series>();
let nextColor = 0;
let loaded = false;
let live = false;
let statusOk = true;
let queued = false;

// ---- formatting
const fmtRate = (n: number) => (n === 0 ? '0' : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtBytes = (b: number) => {
  if (!(b > 0)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) {
    b /= 1024;
    i++;
  }
  return (i === 0 ? String(b) : b.toFixed(1)) + ' ' + u[i];
};
const fmtMs = (ms: number) =>
  (ms === 0 ? '0' : ms < 1 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : String(Math.round(ms))) + ' ms';
const fmtUptime = (s: number) => {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400),
    h = Math.floor((s % 86400) / 3600),
    m = Math.floor((s % 3600) / 60),
    x = s % 60;
  if (d) return d + 'd' + pad(h) + 'h';
  if (h) return h + 'h' + pad(m) + 'm';
  if (m) return m + 'm' + pad(x) + 's';
  return x + 's';
};
const fmtAgo = (ms: number) => (ms < 1500 ? 'just now' : fmtUptime(ms / 1000) + ' ago');
const fmtTime = (ts: number) => {
  const d = new Date(ts);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
};

// ---- screens
function showAuth(message: string, keep: boolean) {
  $('dash').hidden = true;
  $('signout').hidden = true;
  $('conn').hidden = true;
  $('cluster-wrap').hidden = true;
  $('auth').hidden = false;
  const err = $('auth-error');
  err.textContent = message || '';
  err.hidden = !message;
  const input = $<HTMLInputElement>('token');
  if (!keep) input.value = '';
  input.focus();
  document.title = 'FishChat monitor';
}

function showDash() {
  $('auth').hidden = true;
  $('dash').hidden = false;
  $('signout').hidden = false;
  $('conn').hidden = false;
}

function stop() {
  gen++;
  if (abort) abort.abort();
  abort = null;
  clearTimeout(pollTimer);
  clearInterval(tickTimer);
  live = false;
}

function reset() {
  roles = new Map();
  polledUp = new Map();
  series = new Map();
  nextColor = 0;
  loaded = false;
  cluster = '';
  $('log').textContent = '';
  $('log-empty').hidden = false;
}

function authLost(message: string) {
  stop();
  store.clear();
  token = null;
  showAuth(message, false);
}

const authHeaders = (t: string | null) => ({ authorization: 'Bearer ' + t });

async function errorText(res: Response) {
  try {
    const j = await res.json();
    if (j?.error && typeof j.error.message === 'string') return j.error.message;
  } catch {}
  return 'HTTP ' + res.status;
}

// ---- connecting
async function start(t: string, fromForm: boolean) {
  stop();
  const my = gen;
  const btn = $<HTMLButtonElement>('connect');
  btn.disabled = true;
  btn.textContent = 'Connecting…';
  let res: Response;
  try {
    res = await fetch('/status', { headers: authHeaders(t), cache: 'no-store' });
  } catch (e) {
    if (my !== gen) return;
    $<HTMLInputElement>('token').value = t;
    showAuth('Could not reach the monitor (' + str(e && (e as Error).message) + '). Is it running? Try again.', true);
    return;
  } finally {
    btn.disabled = false;
    btn.textContent = 'Connect';
  }
  if (my !== gen) return;
  if (res.status === 401 || res.status === 403) {
    store.clear();
    const why = await errorText(res);
    const what = fromForm ? 'The monitor refused this token: ' : 'The saved token is no longer accepted: ';
    showAuth(what + why + '.', false);
    return;
  }
  if (!res.ok) {
    $<HTMLInputElement>('token').value = t;
    showAuth('The monitor answered ' + res.status + ': ' + (await errorText(res)), true);
    return;
  }
  const body = await res.json();
  if (my !== gen) return;
  token = t;
  store.set(t);
  $<HTMLInputElement>('token').value = '';
  reset();
  showDash();
  statusOk = true;
  applyStatus(body);
  setConn();
  pollTimer = setTimeout(() => poll(my), POLL_MS);
  tickTimer = setInterval(schedule, 1000);
  events(my);
}

async function poll(my: number) {
  if (my !== gen) return;
  try {
    const res = await fetch('/status', { headers: authHeaders(token), cache: 'no-store' });
    if (my !== gen) return;
    if (res.status === 401 || res.status === 403) {
      authLost('The monitor no longer accepts the token: ' + (await errorText(res)) + '. Enter a new one.');
      return;
    }
    statusOk = res.ok;
    if (res.ok) applyStatus(await res.json());
  } catch {
    statusOk = false;
  }
  if (my !== gen) return;
  setConn();
  pollTimer = setTimeout(() => poll(my), POLL_MS);
}

function setConn() {
  const c = $('conn');
  const state = !statusOk ? 'off' : live ? 'live' : 'partial';
  c.dataset.state = state;
  $('conn-text').textContent =
    state === 'live' ? 'live' : state === 'partial' ? 'reconnecting events…' : 'monitor unreachable';
}

// GET /events through fetch(): EventSource cannot send the Authorization header.
async function events(my: number) {
  let delay = 500;
  while (my === gen) {
    const ctl = new AbortController();
    abort = ctl;
    let last = Date.now();
    const dog = setInterval(() => {
      if (Date.now() - last > STALL_MS) ctl.abort();
    }, 5000);
    try {
      const headers = Object.assign({ accept: 'text/event-stream' }, authHeaders(token));
      const res = await fetch('/events', { headers, cache: 'no-store', signal: ctl.signal });
      if (my !== gen) return;
      if (res.status === 401 || res.status === 403) {
        authLost('The monitor no longer accepts the token: ' + (await errorText(res)) + '. Enter a new one.');
        return;
      }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      live = true;
      setConn();
      delay = 500;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const r = await reader.read();
        if (r.done || my !== gen) break;
        last = Date.now();
        buf = (buf + dec.decode(r.value, { stream: true })).replace(/\r\n/g, '\n');
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          dispatch(block);
        }
        if (buf.length > 4 << 20) buf = '';
      }
    } catch {
      // network error, stall or sign-out: retried below unless signed out
    } finally {
      clearInterval(dog);
    }
    if (my !== gen) return;
    live = false;
    setConn();
    await sleep(delay);
    delay = Math.min(delay * 2, 10000);
  }
}

function dispatch(block: string) {
  let ev = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line[0] === ':') continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let v = i < 0 ? '' : line.slice(i + 1);
    if (v[0] === ' ') v = v.slice(1);
    if (field === 'event') ev = v;
    else if (field === 'data') data.push(v);
  }
  if (data.length === 0) return;
  let d: EventData | null;
  try {
    d = JSON.parse(data.join('\n'));
  } catch {
    return;
  }
  if (!d || typeof d !== 'object') return;
  if (ev === 'beat') onBeat(d);
  else if (ev === 'client-status') onClientStatus(d);
  else if (ev === 'topic-status') onTopicStatus(d);
}

// ---- state
function applyStatus(s: { cluster?: unknown; roles?: unknown } | null) {
  if (!s || typeof s !== 'object') return;
  if (typeof s.cluster === 'string' && s.cluster !== cluster) {
    cluster = s.cluster;
    $('cluster').textContent = cluster;
    $('cluster-wrap').hidden = false;
    document.title = 'FishChat · ' + cluster;
  }
  const now = Date.now();
  const seen = new Set();
  for (const r of Array.isArray(s.roles) ? s.roles : []) {
    if (!isRole(r)) continue;
    const k = keyOf(r);
    seen.add(k);
    const was = polledUp.get(k);
    const up = r.up === true;
    if (loaded && was !== up && (was !== undefined || up)) logRole(r, up);
    polledUp.set(k, up);
    roles.set(k, Object.assign({}, roles.get(k), r, { seenAt: roles.get(k)?.seenAt ?? now }));
    if (!loaded && up && r.role === 'msg_server') addSample(r, now);
  }
  for (const k of Array.from(roles.keys()))
    if (!seen.has(k)) {
      roles.delete(k);
      polledUp.delete(k);
    }
  loaded = true;
  schedule();
}

function onBeat(b: EventData) {
  if (!isRole(b)) return;
  const now = Date.now();
  const k = keyOf(b);
  roles.set(k, Object.assign({}, roles.get(k), b, { up: true, seenAt: now }));
  if (b.role === 'msg_server') addSample(b, now);
  schedule();
}

function addSample(r: Role, t: number) {
  let s = series.get(r.id);
  if (!s) {
    s = { color: nextColor++ % COLORS, pts: [] };
    series.set(r.id, s);
  }
  s.pts.push({ t, conns: num(r.conns), inRate: num(r.inRate), outRate: num(r.outRate) });
  const cut = t - WINDOW_MS - 15000;
  let i = 0;
  while (i < s.pts.length && s.pts[i].t < cut) i++;
  if (s.pts.length - i > 5000) i = s.pts.length - 5000;
  if (i > 0) s.pts.splice(0, i);
}

// ---- event log
function log(kind: string, text: string, ts: number, cls: string) {
  const li = el('li', 'ev');
  li.dataset.kind = kind;
  const time = el('time', '', fmtTime(ts));
  time.dateTime = new Date(ts).toISOString();
  li.append(time, el('span', 'badge b-' + cls, kind), el('span', 'ev-x', text));
  const ol = $('log');
  ol.prepend(li);
  while (ol.children.length > MAX_LOG) ol.lastElementChild!.remove();
  $('log-empty').hidden = true;
}
const tsOf = (d: EventData) => (typeof d.ts === 'number' && Number.isFinite(d.ts) && d.ts > 0 ? d.ts : Date.now());

function onClientStatus(d: EventData) {
  const who = str(d.user) + (d.device ? ' (' + str(d.device) + ')' : '');
  const on = d.server ? ' on ' + str(d.server) : '';
  const k = str(d.k);
  if (k === 'login') log('login', who + ' logged in' + on, tsOf(d), 'in');
  else if (k === 'logout') log('logout', who + ' logged out' + on, tsOf(d), 'out');
  else if (k === 'kick') {
    log('kick', who + ' was kicked' + on + (d.reason ? ': ' + str(d.reason) : ''), tsOf(d), 'warn');
  } else log(k || 'client', who + on, tsOf(d), 'info');
}

function onTopicStatus(d: EventData) {
  const t = str(d.topic),
    u = str(d.user);
  const on = d.server ? ' on ' + str(d.server) : '';
  const k = str(d.k);
  if (k === 'create') log('topic', 'topic ' + t + ' created by ' + u + on, tsOf(d), 'info');
  else if (k === 'join') log('join', u + ' joined topic ' + t + on, tsOf(d), 'info');
  else if (k === 'leave') log('leave', u + ' left topic ' + t + on, tsOf(d), 'out');
  else log(k || 'topic', u + ' ' + t + on, tsOf(d), 'info');
}

function logRole(r: Role, up: boolean) {
  const name = str(r.role) + ' ' + str(r.id);
  if (up) log('up', name + ' is up' + (r.addr ? ' at ' + str(r.addr) : ''), Date.now(), 'in');
  else {
    const quiet = fmtAgo(Date.now() - num(r.lastBeat)).replace(' ago', '');
    log('down', name + ' is down (no beat for ' + quiet + ')', Date.now(), 'bad');
  }
}

// ---- rendering
function schedule() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    render();
  });
}

function sortedRoles() {
  return Array.from(roles.values()).sort((a, b) =>
    a.role < b.role ? -1 : a.role > b.role ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
}

function render() {
  if ($('dash').hidden) return;
  const list = sortedRoles();
  const now = Date.now();
  let up = 0,
    conns = 0,
    rin = 0,
    rout = 0,
    ms = 0;
  for (const r of list) {
    if (!r.up) continue;
    up++;
    if (r.role === 'msg_server') {
      ms++;
      conns += num(r.conns);
      rin += num(r.inRate);
      rout += num(r.outRate);
    }
  }
  const tr = $('t-roles');
  tr.textContent = up + ' / ' + list.length;
  tr.classList.toggle('bad', up < list.length);
  $('t-conns').textContent = fmtInt(conns);
  $('t-in').textContent = fmtRate(rin);
  $('t-out').textContent = fmtRate(rout);
  $('t-ms').textContent = ms + (ms === 1 ? ' msg_server' : ' msg_servers');

  const body = $('roles-body');
  const rows = [];
  for (const r of list) {
    const row = el('tr', r.up ? 'up' : 'down');
    row.dataset.role = r.role;
    row.dataset.id = r.id;
    row.dataset.up = String(!!r.up);
    const pill = el('span', 'pill ' + (r.up ? 'up' : 'down'), r.up ? 'up' : 'down');
    const age = r.lastBeat ? 'last beat ' + fmtAgo(Math.max(0, now - num(r.seenAt || r.lastBeat))) : '';
    pill.title = age;
    const addr = el('td', 'mono opt', str(r.addr || r.http || '–'));
    if (r.http) addr.title = 'http ' + str(r.http) + (r.pid ? ' · pid ' + num(r.pid) : '');
    const state = el('td');
    state.append(pill);
    const dash = (f: () => string) => (r.up ? f() : '–');
    row.append(
      el('td', '', str(r.role)),
      el('td', 'id', str(r.id)),
      addr,
      state,
      el(
        'td',
        'num',
        dash(() => fmtInt(num(r.conns))),
      ),
      el(
        'td',
        'num',
        dash(() => fmtRate(num(r.inRate))),
      ),
      el(
        'td',
        'num opt',
        dash(() => fmtRate(num(r.outRate))),
      ),
      el(
        'td',
        'num opt',
        dash(() => fmtMs(num(r.p99))),
      ),
      el(
        'td',
        'num',
        dash(() => fmtBytes(num(r.rss))),
      ),
      el(
        'td',
        'num',
        dash(() => fmtUptime(num(r.uptime))),
      ),
    );
    rows.push(row);
  }
  if (rows.length === 0) {
    const row = el('tr');
    const td = el('td', 'muted', 'No role has sent a beat yet.');
    td.colSpan = 10;
    row.append(td);
    rows.push(row);
  }
  body.replaceChildren(...rows);

  const ids = Array.from(series.keys()).sort();
  for (const legend of document.querySelectorAll('.legend')) {
    legend.replaceChildren(
      ...ids.map((id) => {
        const li = el('li');
        li.dataset.id = id;
        li.append(el('span', 'sw s' + series.get(id)!.color), el('span', '', id));
        return li;
      }),
    );
  }
  // The time axis grows with the data seen, from 1 minute up to WINDOW_MS.
  let oldest = now;
  for (const s of series.values()) if (s.pts.length) oldest = Math.min(oldest, s.pts[0].t);
  const span = Math.min(WINDOW_MS, Math.max(60000, Math.ceil((now - oldest) / 60000) * 60000));
  for (const w of document.querySelectorAll('.win')) w.textContent = 'last ' + span / 60000 + ' min';
  const msgs: Line[] = [
    { get: (p) => p.inRate, dash: [] },
    { get: (p) => p.outRate, dash: [5, 4] },
  ];
  drawChart($('chart-msgs'), ids, msgs, 0.25, span);
  drawChart($('chart-conns'), ids, [{ get: (p) => p.conns, dash: [] }], 1, span);
}

function niceTop(max: number, minStep: number) {
  const raw = Math.max(max / 4, minStep);
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = p;
  for (const m of [1, 2, 2.5, 5, 10]) {
    step = m * p;
    if (step >= raw - 1e-9) break;
  }
  if (minStep >= 1) step = Math.max(1, Math.ceil(step));
  return step * 4;
}
const axis = (v: number) =>
  v >= 1e6 ? +(v / 1e6).toFixed(1) + 'M' : v >= 1e3 ? +(v / 1e3).toFixed(1) + 'k' : String(+v.toFixed(2));

function gapOf(pts: Point[]) {
  const n = pts.length;
  if (n < 3) return 10000;
  const d = [];
  for (let i = Math.max(1, n - 20); i < n; i++) d.push(pts[i].t - pts[i - 1].t);
  d.sort((a, b) => a - b);
  return Math.max(1000, d[d.length >> 1] * 3.5);
}

function drawChart(cv: HTMLCanvasElement, ids: string[], lines: Line[], minStep: number, span: number) {
  const rect = cv.getBoundingClientRect();
  const w = Math.max(1, Math.round(rect.width)),
    h = Math.max(1, Math.round(rect.height));
  const dpr = window.devicePixelRatio || 1;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
  }
  const g = cv.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const col = (n: string) => css.getPropertyValue(n).trim();
  const now = Date.now(),
    t0 = now - span;
  const L = 46,
    R = 12,
    T = 10,
    B = 24;
  const pw = Math.max(10, w - L - R),
    ph = Math.max(10, h - T - B);
  let max = 0,
    any = false;
  for (const id of ids) {
    for (const p of series.get(id)!.pts) if (p.t >= t0) for (const ln of lines) max = Math.max(max, ln.get(p));
  }
  const top = niceTop(max, minStep);

  g.setLineDash([]);
  g.lineWidth = 1;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = col('--muted');
  g.strokeStyle = col('--grid');
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = Math.round(T + ph - (ph * i) / 4) + 0.5;
    g.beginPath();
    g.moveTo(L, y);
    g.lineTo(L + pw, y);
    g.stroke();
    g.fillText(axis((top * i) / 4), L - 7, y);
  }
  g.textBaseline = 'top';
  const ticks = span <= 60000 ? 4 : span / 60000;
  for (let m = ticks; m >= 0; m--) {
    const x = L + pw * (1 - m / ticks);
    g.textAlign = m === ticks ? 'left' : m === 0 ? 'right' : 'center';
    const label = span <= 60000 ? '−' + (m * span) / ticks / 1000 + ' s' : '−' + m + ' min';
    g.fillText(m ? label : 'now', x, T + ph + 7);
  }

  g.save();
  g.beginPath();
  g.rect(L, T - 3, pw, ph + 6);
  g.clip();
  g.lineJoin = 'round';
  g.lineCap = 'round';
  for (const id of ids) {
    const s = series.get(id)!;
    const c = col('--c' + s.color);
    const gap = gapOf(s.pts);
    for (const ln of lines) {
      g.strokeStyle = c;
      g.lineWidth = ln.dash.length ? 1.5 : 2;
      g.setLineDash(ln.dash);
      g.beginPath();
      let prevT = -Infinity,
        lx = 0,
        ly = 0,
        drawn = false;
      for (const p of s.pts) {
        if (p.t < t0 - gap) continue;
        const x = L + (pw * (p.t - t0)) / span;
        const y = T + ph - (ph * Math.min(ln.get(p), top)) / top;
        if (p.t - prevT > gap) g.moveTo(x, y);
        else g.lineTo(x, y);
        prevT = p.t;
        lx = x;
        ly = y;
        drawn = true;
      }
      g.stroke();
      if (drawn && now - prevT < gap) {
        any = true;
        g.setLineDash([]);
        g.fillStyle = c;
        g.beginPath();
        g.arc(lx, ly, ln.dash.length ? 2 : 3, 0, Math.PI * 2);
        g.fill();
      } else if (drawn) any = true;
    }
  }
  g.restore();
  if (!any) {
    g.fillStyle = col('--muted');
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.font = '13px system-ui, sans-serif';
    g.fillText('waiting for msg_server beats…', L + pw / 2, T + ph / 2);
  }
}

// ---- wiring
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $<HTMLInputElement>('token')
    .value.trim()
    .replace(/^Bearer\s+/i, '');
  if (!t) {
    showAuth('Paste an admin token first.', false);
    return;
  }
  start(t, true);
});
$('signout').addEventListener('click', () => {
  stop();
  store.clear();
  token = null;
  reset();
  showAuth('', false);
});
window.addEventListener('resize', schedule);
if (window.matchMedia) window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', schedule);

const saved = store.get();
if (saved) start(saved, false);
else showAuth('', false);
