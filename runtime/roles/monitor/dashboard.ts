/**
 * The monitor's web dashboard (GET /): one self-contained HTML page, inline
 * CSS and JS only (no CDN, no web fonts: the machine may have no internet).
 *
 * The page itself is open; the data is not. It asks for an admin token once
 * (DESIGN.md "Security"), keeps it in the tab's sessionStorage, and reads
 * GET /status (polled) and GET /events (server-sent events, read with
 * fetch() because EventSource cannot send an Authorization header), both
 * with `Authorization: Bearer <token>`.
 *
 * The Content-Security-Policy allows exactly the page's own inline script
 * and style (by their SHA-256 hashes, computed here once), connections to
 * its own origin only, and nothing else. The script writes untrusted text
 * (role ids, user names) with textContent only, never as HTML.
 */
import { createHash } from 'node:crypto';

/** sessionStorage key of the admin token. */
export const TOKEN_KEY = 'fishchat.monitor.token';

const STYLE = String.raw`
:root{color-scheme:light dark;--bg:#f4f6f9;--panel:#fff;--fg:#18202b;--muted:#5d6878;--line:#e2e6ec;--grid:#e9edf2;--accent:#0b6bde;--accent-fg:#fff;--up:#16894a;--up-bg:#e3f5ea;--down:#c92a2a;--down-bg:#fde8e8;--warn:#b76e00;--warn-bg:#fff3db;--info-bg:#e7f0fd;
--c0:#1c7ed6;--c1:#e8590c;--c2:#2b8a3e;--c3:#ae3ec9;--c4:#0c8599;--c5:#d9480f;--c6:#d6336c;--c7:#5f3dc4;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;font-size:14px;line-height:1.45}
@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--panel:#161b22;--fg:#e5e9f0;--muted:#8b96a7;--line:#252c37;--grid:#222a35;--accent:#4dabf7;--accent-fg:#0e1116;--up:#51cf66;--up-bg:#12301d;--down:#ff6b6b;--down-bg:#3a1618;--warn:#fcc419;--warn-bg:#352a0c;--info-bg:#142a44;
--c0:#4dabf7;--c1:#ff922b;--c2:#69db7c;--c3:#da77f2;--c4:#3bc9db;--c5:#ffd43b;--c6:#f783ac;--c7:#9775fa}}
*{box-sizing:border-box}
[hidden]{display:none!important}
html,body{margin:0;background:var(--bg);color:var(--fg)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.top{position:sticky;top:0;z-index:2;display:flex;align-items:center;gap:14px;padding:10px 20px;background:var(--panel);border-bottom:1px solid var(--line)}
.brand{display:flex;align-items:center;gap:8px;font-weight:650;font-size:16px}
.brand .sub{color:var(--muted);font-weight:500}
.logo{width:26px;height:26px;color:var(--accent)}
.cluster{color:var(--muted)}
.cluster strong{color:var(--fg);font-weight:600;padding:2px 8px;border-radius:6px;background:var(--bg);border:1px solid var(--line)}
.spacer{flex:1}
.conn{display:flex;align-items:center;gap:6px;color:var(--muted);font-size:13px}
.conn .dot{width:9px;height:9px;border-radius:50%;background:var(--muted)}
.conn[data-state=live] .dot{background:var(--up);box-shadow:0 0 0 3px var(--up-bg)}
.conn[data-state=partial] .dot{background:var(--warn)}
.conn[data-state=off] .dot{background:var(--down)}
button{font:inherit;cursor:pointer;border-radius:7px;border:1px solid transparent;padding:7px 14px;background:var(--accent);color:var(--accent-fg);font-weight:600}
button:disabled{opacity:.6;cursor:progress}
button.ghost{background:transparent;color:var(--fg);border-color:var(--line);font-weight:500;padding:5px 12px}
button.ghost:hover{border-color:var(--muted)}
main{max-width:1360px;margin:0 auto;padding:18px 20px 40px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card-h{display:flex;align-items:baseline;justify-content:space-between;gap:10px;flex-wrap:wrap;margin-bottom:10px}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:14px;margin:0;font-weight:650}
.muted{color:var(--muted)}
.small{font-size:12px}
.auth{display:flex;justify-content:center;padding-top:8vh}
.auth-card{width:100%;max-width:460px;padding:24px}
.auth-card p{margin:0 0 12px}
.cmd{margin:0 0 16px;padding:9px 12px;border-radius:7px;background:var(--bg);border:1px solid var(--line);overflow-x:auto}
label{display:block;font-weight:600;margin-bottom:6px}
input{width:100%;font:inherit;padding:9px 11px;border-radius:7px;border:1px solid var(--line);background:var(--bg);color:var(--fg);margin-bottom:12px}
input:focus{outline:2px solid var(--accent);outline-offset:1px}
.auth-card button{width:100%;margin-bottom:12px}
.error{color:var(--down);background:var(--down-bg);border-radius:7px;padding:9px 11px;font-weight:500}
.grid{display:grid;grid-template-columns:minmax(0,1fr);gap:14px}
.totals{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:14px}
.stat .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat .value{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;margin-top:2px}
.stat .value.bad{color:var(--down)}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
.chart canvas{display:block;width:100%;height:220px}
.legend{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.sw{display:inline-block;width:14px;height:3px;border-radius:2px}
.s0{background:var(--c0)}.s1{background:var(--c1)}.s2{background:var(--c2)}.s3{background:var(--c3)}.s4{background:var(--c4)}.s5{background:var(--c5)}.s6{background:var(--c6)}.s7{background:var(--c7)}
.table-wrap{overflow-x:auto;margin:0 -16px;padding:0 16px}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th{text-align:left;font-size:12px;font-weight:600;color:var(--muted);padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:7px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
tr:last-child td{border-bottom:0}
th.num,td.num{text-align:right}
tr.down td{color:var(--muted)}
tr.down td.id{color:var(--fg)}
td.id{font-weight:600}
.pill{display:inline-flex;align-items:center;gap:5px;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600}
.pill::before{content:"";width:7px;height:7px;border-radius:50%;background:currentColor}
.pill.up{color:var(--up);background:var(--up-bg)}
.pill.down{color:var(--down);background:var(--down-bg)}
.log{list-style:none;margin:0;padding:0;max-height:340px;overflow-y:auto;font-size:13px}
.log li{display:flex;align-items:baseline;gap:10px;padding:5px 0;border-bottom:1px solid var(--line)}
.log li:last-child{border-bottom:0}
.log time{color:var(--muted);font-variant-numeric:tabular-nums;font-size:12px}
.badge{display:inline-block;min-width:58px;text-align:center;padding:0 7px;border-radius:5px;font-size:11.5px;font-weight:650;text-transform:uppercase;letter-spacing:.03em;background:var(--info-bg);color:var(--accent)}
.badge.b-in{background:var(--up-bg);color:var(--up)}
.badge.b-out{background:var(--bg);color:var(--muted)}
.badge.b-warn{background:var(--warn-bg);color:var(--warn)}
.badge.b-bad{background:var(--down-bg);color:var(--down)}
.ev-x{overflow-wrap:anywhere}
@media (max-width:900px){.charts{grid-template-columns:minmax(0,1fr)}.totals{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media (max-width:640px){main{padding:12px 10px 30px}.top{padding:8px 12px;gap:10px;flex-wrap:wrap}.cluster{order:5;width:100%}.opt{display:none}th,td{padding-left:6px;padding-right:6px}.stat .value{font-size:22px}.chart canvas{height:180px}}
`;

const SCRIPT = String.raw`
'use strict';
(() => {
  const KEY = '__TOKEN_KEY__';
  const WINDOW_MS = 5 * 60 * 1000;
  const POLL_MS = 2000;
  const MAX_LOG = 200;
  const STALL_MS = 45000;
  const COLORS = 8;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const str = (v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v)).slice(0, 200);
  const pad = (n) => (n < 10 ? '0' : '') + n;
  const keyOf = (r) => r.role + '\u0000' + r.id;

  const store = {
    get() { try { return sessionStorage.getItem(KEY); } catch { return null; } },
    set(v) { try { sessionStorage.setItem(KEY, v); } catch {} },
    clear() { try { sessionStorage.removeItem(KEY); } catch {} },
  };

  let token = null;
  let gen = 0;
  let abort = null;
  let pollTimer = 0;
  let tickTimer = 0;
  let cluster = '';
  let roles = new Map();
  let polledUp = new Map();
  let series = new Map();
  let nextColor = 0;
  let loaded = false;
  let live = false;
  let statusOk = true;
  let queued = false;

  // ---- formatting
  const fmtRate = (n) => (n === 0 ? '0' : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const fmtBytes = (b) => {
    if (!(b > 0)) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(b) : b.toFixed(1)) + ' ' + u[i];
  };
  const fmtMs = (ms) => (ms === 0 ? '0' : ms < 1 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : String(Math.round(ms))) + ' ms';
  const fmtUptime = (s) => {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    if (d) return d + 'd' + pad(h) + 'h';
    if (h) return h + 'h' + pad(m) + 'm';
    if (m) return m + 'm' + pad(x) + 's';
    return x + 's';
  };
  const fmtAgo = (ms) => (ms < 1500 ? 'just now' : fmtUptime(ms / 1000) + ' ago');
  const fmtTime = (ts) => { const d = new Date(ts); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); };

  // ---- screens
  function showAuth(message, keep) {
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('conn').hidden = true;
    $('cluster-wrap').hidden = true;
    $('auth').hidden = false;
    const err = $('auth-error');
    err.textContent = message || '';
    err.hidden = !message;
    const input = $('token');
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

  function authLost(message) {
    stop();
    store.clear();
    token = null;
    showAuth(message, false);
  }

  const authHeaders = (t) => ({ authorization: 'Bearer ' + t });

  async function errorText(res) {
    try {
      const j = await res.json();
      if (j && j.error && typeof j.error.message === 'string') return j.error.message;
    } catch {}
    return 'HTTP ' + res.status;
  }

  // ---- connecting
  async function start(t, fromForm) {
    stop();
    const my = gen;
    const btn = $('connect');
    btn.disabled = true;
    btn.textContent = 'Connecting…';
    let res;
    try {
      res = await fetch('/status', { headers: authHeaders(t), cache: 'no-store' });
    } catch (e) {
      if (my !== gen) return;
      $('token').value = t;
      showAuth('Could not reach the monitor (' + str(e && e.message) + '). Is it running? Try again.', true);
      return;
    } finally {
      btn.disabled = false;
      btn.textContent = 'Connect';
    }
    if (my !== gen) return;
    if (res.status === 401 || res.status === 403) {
      store.clear();
      const why = await errorText(res);
      showAuth((fromForm ? 'The monitor refused this token: ' : 'The saved token is no longer accepted: ') + why + '.', false);
      return;
    }
    if (!res.ok) {
      $('token').value = t;
      showAuth('The monitor answered ' + res.status + ': ' + (await errorText(res)), true);
      return;
    }
    const body = await res.json();
    if (my !== gen) return;
    token = t;
    store.set(t);
    $('token').value = '';
    reset();
    showDash();
    statusOk = true;
    applyStatus(body);
    setConn();
    pollTimer = setTimeout(() => poll(my), POLL_MS);
    tickTimer = setInterval(schedule, 1000);
    events(my);
  }

  async function poll(my) {
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
    $('conn-text').textContent = state === 'live' ? 'live' : state === 'partial' ? 'reconnecting events…' : 'monitor unreachable';
  }

  // GET /events through fetch(): EventSource cannot send the Authorization header.
  async function events(my) {
    let delay = 500;
    while (my === gen) {
      const ctl = new AbortController();
      abort = ctl;
      let last = Date.now();
      const dog = setInterval(() => { if (Date.now() - last > STALL_MS) ctl.abort(); }, 5000);
      try {
        const res = await fetch('/events', { headers: Object.assign({ accept: 'text/event-stream' }, authHeaders(token)), cache: 'no-store', signal: ctl.signal });
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
          let cut;
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

  function dispatch(block) {
    let ev = 'message';
    const data = [];
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
    let d;
    try { d = JSON.parse(data.join('\n')); } catch { return; }
    if (!d || typeof d !== 'object') return;
    if (ev === 'beat') onBeat(d);
    else if (ev === 'client-status') onClientStatus(d);
    else if (ev === 'topic-status') onTopicStatus(d);
  }

  // ---- state
  function applyStatus(s) {
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
      if (!r || typeof r.role !== 'string' || typeof r.id !== 'string') continue;
      const k = keyOf(r);
      seen.add(k);
      const was = polledUp.get(k);
      const up = r.up === true;
      if (loaded && was !== up && (was !== undefined || up)) logRole(r, up);
      polledUp.set(k, up);
      roles.set(k, Object.assign({}, roles.get(k), r, { seenAt: roles.get(k)?.seenAt ?? now }));
      if (!loaded && up && r.role === 'msg_server') addSample(r, now);
    }
    for (const k of Array.from(roles.keys())) if (!seen.has(k)) { roles.delete(k); polledUp.delete(k); }
    loaded = true;
    schedule();
  }

  function onBeat(b) {
    if (typeof b.role !== 'string' || typeof b.id !== 'string') return;
    const now = Date.now();
    const k = keyOf(b);
    roles.set(k, Object.assign({}, roles.get(k), b, { up: true, seenAt: now }));
    if (b.role === 'msg_server') addSample(b, now);
    schedule();
  }

  function addSample(r, t) {
    let s = series.get(r.id);
    if (!s) { s = { color: nextColor++ % COLORS, pts: [] }; series.set(r.id, s); }
    s.pts.push({ t, conns: num(r.conns), inRate: num(r.inRate), outRate: num(r.outRate) });
    const cut = t - WINDOW_MS - 15000;
    let i = 0;
    while (i < s.pts.length && s.pts[i].t < cut) i++;
    if (s.pts.length - i > 5000) i = s.pts.length - 5000;
    if (i > 0) s.pts.splice(0, i);
  }

  // ---- event log
  function log(kind, text, ts, cls) {
    const li = el('li', 'ev');
    li.dataset.kind = kind;
    const time = el('time', '', fmtTime(ts));
    time.dateTime = new Date(ts).toISOString();
    li.append(time, el('span', 'badge b-' + cls, kind), el('span', 'ev-x', text));
    const ol = $('log');
    ol.prepend(li);
    while (ol.children.length > MAX_LOG) ol.lastElementChild.remove();
    $('log-empty').hidden = true;
  }
  const tsOf = (d) => (typeof d.ts === 'number' && isFinite(d.ts) && d.ts > 0 ? d.ts : Date.now());

  function onClientStatus(d) {
    const who = str(d.user) + (d.device ? ' (' + str(d.device) + ')' : '');
    const on = d.server ? ' on ' + str(d.server) : '';
    const k = str(d.k);
    if (k === 'login') log('login', who + ' logged in' + on, tsOf(d), 'in');
    else if (k === 'logout') log('logout', who + ' logged out' + on, tsOf(d), 'out');
    else if (k === 'kick') log('kick', who + ' was kicked' + on + (d.reason ? ': ' + str(d.reason) : ''), tsOf(d), 'warn');
    else log(k || 'client', who + on, tsOf(d), 'info');
  }

  function onTopicStatus(d) {
    const t = str(d.topic), u = str(d.user);
    const on = d.server ? ' on ' + str(d.server) : '';
    const k = str(d.k);
    if (k === 'create') log('topic', 'topic ' + t + ' created by ' + u + on, tsOf(d), 'info');
    else if (k === 'join') log('join', u + ' joined topic ' + t + on, tsOf(d), 'info');
    else if (k === 'leave') log('leave', u + ' left topic ' + t + on, tsOf(d), 'out');
    else log(k || 'topic', u + ' ' + t + on, tsOf(d), 'info');
  }

  function logRole(r, up) {
    const name = str(r.role) + ' ' + str(r.id);
    if (up) log('up', name + ' is up' + (r.addr ? ' at ' + str(r.addr) : ''), Date.now(), 'in');
    else log('down', name + ' is down (no beat for ' + fmtAgo(Date.now() - num(r.lastBeat)).replace(' ago', '') + ')', Date.now(), 'bad');
  }

  // ---- rendering
  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; render(); });
  }

  function sortedRoles() {
    return Array.from(roles.values()).sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function render() {
    if ($('dash').hidden) return;
    const list = sortedRoles();
    const now = Date.now();
    let up = 0, conns = 0, rin = 0, rout = 0, ms = 0;
    for (const r of list) {
      if (!r.up) continue;
      up++;
      if (r.role === 'msg_server') { ms++; conns += num(r.conns); rin += num(r.inRate); rout += num(r.outRate); }
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
      const dash = (f) => (r.up ? f() : '–');
      row.append(
        el('td', '', str(r.role)),
        el('td', 'id', str(r.id)),
        addr,
        state,
        el('td', 'num', dash(() => fmtInt(num(r.conns)))),
        el('td', 'num', dash(() => fmtRate(num(r.inRate)))),
        el('td', 'num opt', dash(() => fmtRate(num(r.outRate)))),
        el('td', 'num opt', dash(() => fmtMs(num(r.p99)))),
        el('td', 'num', dash(() => fmtBytes(num(r.rss)))),
        el('td', 'num', dash(() => fmtUptime(num(r.uptime)))),
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
      legend.replaceChildren(...ids.map((id) => {
        const li = el('li');
        li.dataset.id = id;
        li.append(el('span', 'sw s' + series.get(id).color), el('span', '', id));
        return li;
      }));
    }
    // The time axis grows with the data seen, from 1 minute up to WINDOW_MS.
    let oldest = now;
    for (const s of series.values()) if (s.pts.length) oldest = Math.min(oldest, s.pts[0].t);
    const span = Math.min(WINDOW_MS, Math.max(60000, Math.ceil((now - oldest) / 60000) * 60000));
    for (const w of document.querySelectorAll('.win')) w.textContent = 'last ' + span / 60000 + ' min';
    drawChart($('chart-msgs'), ids, [{ get: (p) => p.inRate, dash: [] }, { get: (p) => p.outRate, dash: [5, 4] }], 0.25, span);
    drawChart($('chart-conns'), ids, [{ get: (p) => p.conns, dash: [] }], 1, span);
  }

  function niceTop(max, minStep) {
    const raw = Math.max(max / 4, minStep);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = p;
    for (const m of [1, 2, 2.5, 5, 10]) { step = m * p; if (step >= raw - 1e-9) break; }
    if (minStep >= 1) step = Math.max(1, Math.ceil(step));
    return step * 4;
  }
  const axis = (v) => (v >= 1e6 ? +(v / 1e6).toFixed(1) + 'M' : v >= 1e3 ? +(v / 1e3).toFixed(1) + 'k' : String(+v.toFixed(2)));

  function gapOf(pts) {
    const n = pts.length;
    if (n < 3) return 10000;
    const d = [];
    for (let i = Math.max(1, n - 20); i < n; i++) d.push(pts[i].t - pts[i - 1].t);
    d.sort((a, b) => a - b);
    return Math.max(1000, d[d.length >> 1] * 3.5);
  }

  function drawChart(cv, ids, lines, minStep, span) {
    const rect = cv.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width)), h = Math.max(1, Math.round(rect.height));
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const col = (n) => css.getPropertyValue(n).trim();
    const now = Date.now(), t0 = now - span;
    const L = 46, R = 12, T = 10, B = 24;
    const pw = Math.max(10, w - L - R), ph = Math.max(10, h - T - B);
    let max = 0, any = false;
    for (const id of ids) for (const p of series.get(id).pts) if (p.t >= t0) for (const ln of lines) max = Math.max(max, ln.get(p));
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
      g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
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
    g.beginPath(); g.rect(L, T - 3, pw, ph + 6); g.clip();
    g.lineJoin = 'round';
    g.lineCap = 'round';
    for (const id of ids) {
      const s = series.get(id);
      const c = col('--c' + s.color);
      const gap = gapOf(s.pts);
      for (const ln of lines) {
        g.strokeStyle = c;
        g.lineWidth = ln.dash.length ? 1.5 : 2;
        g.setLineDash(ln.dash);
        g.beginPath();
        let prevT = -Infinity, lx = 0, ly = 0, drawn = false;
        for (const p of s.pts) {
          if (p.t < t0 - gap) continue;
          const x = L + (pw * (p.t - t0)) / span;
          const y = T + ph - (ph * Math.min(ln.get(p), top)) / top;
          if (p.t - prevT > gap) g.moveTo(x, y); else g.lineTo(x, y);
          prevT = p.t; lx = x; ly = y; drawn = true;
        }
        g.stroke();
        if (drawn && now - prevT < gap) {
          any = true;
          g.setLineDash([]);
          g.fillStyle = c;
          g.beginPath(); g.arc(lx, ly, ln.dash.length ? 2 : 3, 0, Math.PI * 2); g.fill();
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
    const t = $('token').value.trim().replace(/^Bearer\s+/i, '');
    if (!t) { showAuth('Paste an admin token first.', false); return; }
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
})();
`.replace('__TOKEN_KEY__', TOKEN_KEY);

const LOGO =
  '<svg class="logo" viewBox="0 0 32 32" aria-hidden="true">' +
  '<path fill="currentColor" d="M9.5 16c3.2-5.3 8-8 12.5-8 4.3 0 7.4 3.6 8.5 8-1.1 4.4-4.2 8-8.5 8-4.5 0-9.3-2.7-12.5-8z"/>' +
  '<path fill="currentColor" d="M1.5 8.5 10 16l-8.5 7.5c.9-2.6 1.4-5 1.4-7.5s-.5-4.9-1.4-7.5z"/>' +
  '<circle cx="24.5" cy="14" r="1.6" fill="var(--panel)"/>' +
  '<path fill="none" stroke="var(--panel)" stroke-width="1.4" stroke-linecap="round" d="M17 11.5c1.2 1.4 1.8 2.9 1.8 4.5s-.6 3.1-1.8 4.5"/>' +
  '</svg>';

const BODY = `
<header class="top">
  <div class="brand">${LOGO}<span>FishChat</span><span class="sub">monitor</span></div>
  <div class="cluster" id="cluster-wrap" hidden>cluster <strong id="cluster"></strong></div>
  <div class="spacer"></div>
  <div class="conn" id="conn" data-state="partial" hidden><span class="dot"></span><span id="conn-text">connecting…</span></div>
  <button id="signout" class="ghost" type="button" hidden>Sign out</button>
</header>
<main>
  <section id="auth" class="auth" hidden>
    <form id="login" class="card auth-card" autocomplete="off">
      <h1>Admin token</h1>
      <p class="muted">The dashboard reads the monitor's <code>/status</code> and <code>/events</code>, which need an admin token signed with the cluster secret. Mint one in the cluster directory:</p>
      <pre class="cmd">fishchat token admin --admin</pre>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" spellcheck="false" autocomplete="off" autocapitalize="off" placeholder="eyJhbGciOiJIUzI1NiIs…">
      <p id="auth-error" class="error" role="alert" hidden></p>
      <button type="submit" id="connect">Connect</button>
      <p class="muted small">The token is kept in this tab's session storage only: closing the tab forgets it.</p>
    </form>
  </section>
  <section id="dash" class="grid" hidden>
    <div class="totals">
      <div class="card stat"><div class="label">Roles up</div><div class="value" id="t-roles">–</div></div>
      <div class="card stat"><div class="label">Client connections</div><div class="value" id="t-conns">–</div><div class="muted small" id="t-ms"></div></div>
      <div class="card stat"><div class="label">Msgs/s in</div><div class="value" id="t-in">–</div><div class="muted small">handled by msg_servers</div></div>
      <div class="card stat"><div class="label">Msgs/s out</div><div class="value" id="t-out">–</div><div class="muted small">sent to clients</div></div>
    </div>
    <div class="card">
      <div class="card-h"><h2>Roles</h2><span class="muted small">down after 3 missed beats</span></div>
      <div class="table-wrap">
        <table id="roles">
          <thead><tr><th>Role</th><th>ID</th><th class="opt">Address</th><th>State</th><th class="num">Conns</th><th class="num">In/s</th><th class="num opt">Out/s</th><th class="num opt">p99</th><th class="num">Memory</th><th class="num">Uptime</th></tr></thead>
          <tbody id="roles-body"></tbody>
        </table>
      </div>
    </div>
    <div class="charts" id="charts">
      <div class="card chart">
        <div class="card-h"><h2>Messages/s per msg_server</h2><span class="muted small"><span class="win">last 1 min</span> · solid in, dashed out</span></div>
        <canvas id="chart-msgs" role="img" aria-label="Messages per second per msg_server over the last 5 minutes"></canvas>
        <ul class="legend"></ul>
      </div>
      <div class="card chart">
        <div class="card-h"><h2>Connections per msg_server</h2><span class="muted small win">last 1 min</span></div>
        <canvas id="chart-conns" role="img" aria-label="Client connections per msg_server over the last 5 minutes"></canvas>
        <ul class="legend"></ul>
      </div>
    </div>
    <div class="card">
      <div class="card-h"><h2>Events</h2><span class="muted small">logins, kicks, topics, roles up and down · newest first</span></div>
      <ol id="log" class="log" aria-live="polite"></ol>
      <p id="log-empty" class="muted small">No events yet. Logins and topic changes show up here as they happen.</p>
    </div>
  </section>
</main>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page's Content-Security-Policy: its own inline script and style, its own origin to fetch, nothing else. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

/** The whole page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>FishChat monitor</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

/** Response headers of GET /. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': DASHBOARD_CSP,
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** GET / on the monitor: the dashboard page (open: the data it reads needs the token). */
export function dashboardResponse(): Response {
  return new Response(DASHBOARD_HTML, { status: 200, headers: DASHBOARD_HEADERS });
}
