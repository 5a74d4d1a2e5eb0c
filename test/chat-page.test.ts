/**
 * The gateway's browser chat page (GET /chat).
 *
 * - Its files, as built into dist/ (`npm run build`): served from the
 *   gateway's own origin, nothing inline, a missing build named; the
 *   `chatPage` setting of the gateway's file. (Node and Bun.)
 * - Served by a gateway: the CSP and headers, the three files, /chat/ and
 *   unknown paths, `chatPage: false`. (Node and Bun.)
 * - In headless Chromium (Debian's /usr/bin/chromium through playwright-core,
 *   Node only, as test/dashboard.test.ts): alice and bob on two pages, on
 *   different msg_servers, over WebSocket: p2p and a topic both ways, pending
 *   then acked marks, a `fishchat send` (TCP) reaching the page, history after
 *   a reload, a message written while no msg_server is up sent once when one
 *   is back, a second tab of the same device replacing the first;
 *   screenshots at desktop size and at 375 px.
 * - Redis mode (`fishchat up --redis`, every role a child process): kill -9
 *   of the page's msg_server while messages flow both ways: the page
 *   reconnects through the gateway, every acknowledged message is shown
 *   once and in order, and every message the page wrote is stored once.
 *
 * Screenshots: /tmp/chat-desktop.png, /tmp/chat-phone.png, /tmp/chat-dark.png,
 * /tmp/chat-pending.png, /tmp/chat-phone-signin.png, /tmp/chat-reconnected.png.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { FishChatClient, type Msg } from '../runtime/client/index.js';
import { signToken } from '../runtime/protocol/token.js';
import type { RoleHandle } from '../runtime/contract/context.js';
import { ConfigError, checkRoleFile } from '../runtime/cluster/checks.js';
import { startGateway } from '../runtime/roles/gateway/index.js';
import { CHAT_CSP, chatRoutes, loadChatPage } from '../runtime/roles/gateway/chat.js';
import { SESSION_KEY } from '../runtime/roles/gateway/chat/keys.js';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { processAlive } from '../runtime/cluster/run-file.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { CliProcess, fishchat } from './helpers/cli.js';
import { redisReachable } from './helpers/redis.js';
import { untilSome } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const REDIS_URL = process.env.FISHCHAT_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const noBrowser = isBun
  ? 'the chat page test drives Chromium through playwright-core, which needs Node: run it with `node --import tsx --test test/chat-page.test.ts`'
  : !existsSync(CHROMIUM)
    ? `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (.ci/run does)`
    : false;
if (noBrowser) console.log(`# chat page browser tests skipped: ${noBrowser}`);
const noRedis = noBrowser || ((await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`);

const BUILT = fileURLToPath(new URL('../dist/runtime/roles/gateway/chat/', import.meta.url));
const T = { timeout: 20_000 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tag = () => Math.random().toString(36).slice(2, 8);

const directives = (csp: string) =>
  new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([k, ...v]) => [k!, v]),
  );

// ------------------------------------------------------------------ files and config

describe('chat page files', () => {
  it('reads the built index.html, style.css and page.js; the page names its files on this origin, nothing inline', () => {
    const p = loadChatPage();
    for (const [name, text] of [
      ['index.html', p.html],
      ['style.css', p.css],
      ['page.js', p.js],
    ] as const) {
      assert.equal(text, readFileSync(join(BUILT, name), 'utf8'), name);
    }
    assert.match(p.html, /<link rel="stylesheet" href="\/chat\/style\.css">/);
    assert.match(p.html, /<script src="\/chat\/page\.js" defer><\/script>/);
    assert.doesNotMatch(p.html, /<script>|<style>/, 'no inline script or style');
    assert.doesNotMatch(p.html, /\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i, 'nothing from another origin');
    assert.doesNotMatch(p.html, /\son[a-z]+\s*=/i, 'no inline handlers');
    assert.doesNotMatch(p.html, /\sstyle\s*=/i, 'no style attributes');
    // It explains how to get a token, and has labelled fields.
    assert.match(p.html, /fishchat token <span id="cmd-user">USER<\/span>/);
    for (const id of ['user', 'token', 'device', 'peer', 'topic', 'text'])
      assert.match(p.html, new RegExp(`<label for="${id}"`), `a label for #${id}`);
    // The script is the bundle of page.ts with the client: its storage key, the WebSocket route.
    assert.ok(p.js.includes(JSON.stringify(SESSION_KEY)), 'SESSION_KEY in page.js');
    assert.ok(p.js.includes('/v1/route'), 'the client routes over HTTP');
    assert.doesNotMatch(p.js, /\brequire\(["']node:|from ?["']node:/, 'no node: import in the browser script');
    assert.equal(p.csp, CHAT_CSP);
  });

  it('names a missing file and says to build; the gateway then answers 503 on /chat and logs it once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fishchat-chat-'));
    try {
      for (const name of ['index.html', 'style.css']) copyFileSync(join(BUILT, name), join(dir, name));
      assert.throws(
        () => loadChatPage(dir),
        (err: Error) => {
          assert.equal(err.message, `gateway chat page: ${join(dir, 'page.js')} is missing: run npm run build`);
          return true;
        },
      );
      const warned: string[] = [];
      const app = chatRoutes({ info: () => {}, warn: (m) => warned.push(m), error: () => {} }, dir);
      const res = await app.request('/');
      assert.equal(res.status, 503);
      assert.match(await res.text(), /page\.js is missing: run npm run build/);
      assert.equal(warned.length, 1);
      assert.match(warned[0]!, /page\.js is missing: run npm run build; GET \/chat answers 503/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gateway.json "chatPage": true or false, anything else named', () => {
    const base = { role: 'gateway', id: 'gateway', port: 0, httpPort: 0 };
    assert.equal(checkRoleFile('gateway.json', { ...base, chatPage: false }).role, 'gateway');
    const off = checkRoleFile('gateway.json', { ...base, chatPage: false });
    assert.equal(off.role === 'gateway' && off.chatPage, false);
    const unset = checkRoleFile('gateway.json', base);
    assert.equal(unset.role === 'gateway' && unset.chatPage, undefined);
    assert.throws(
      () => checkRoleFile('gateway.json', { ...base, chatPage: 'no' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.field, 'chatPage');
        assert.equal(err.message, 'gateway.json: "chatPage" must be true or false, found "no"');
        return true;
      },
    );
  });
});

// ------------------------------------------------------------------ served by a gateway

/** A gateway of its own on `c` (the test cluster's gateway has no HTTP address to give). */
async function gatewayOn(c: TestCluster, chatPage?: boolean): Promise<RoleHandle> {
  return startGateway(c.ctx, {
    role: 'gateway',
    id: `gw-${tag()}`,
    host: '127.0.0.1',
    port: 0,
    httpHost: '127.0.0.1',
    httpPort: 0,
    seeds: c.msgServers.map((m) => m.addresses.tcp!),
    ...(chatPage === undefined ? {} : { chatPage }),
  });
}

describe('chat page on the gateway', { timeout: 60_000 }, () => {
  it('GET /chat: the page with a strict CSP; its script and style from the same origin; /chat/ and unknown paths', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    const gw = await gatewayOn(c);
    try {
      const base = `http://${gw.addresses.http}`;
      const res = await fetch(`${base}/chat`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
      const csp = directives(res.headers.get('content-security-policy') ?? '');
      assert.deepEqual(csp.get('default-src'), ["'none'"]);
      assert.deepEqual(csp.get('script-src'), ["'self'"]);
      assert.deepEqual(csp.get('style-src'), ["'self'"]);
      assert.deepEqual(csp.get('connect-src'), ["'self'", 'ws:', 'wss:']);
      assert.deepEqual(csp.get('form-action'), ["'none'"]);
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
      assert.deepEqual(csp.get('base-uri'), ["'none'"]);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(await res.text(), loadChatPage().html);
      for (const [path, type, file] of [
        ['/chat/page.js', /^text\/javascript; charset=utf-8/, 'page.js'],
        ['/chat/style.css', /^text\/css; charset=utf-8/, 'style.css'],
      ] as const) {
        const r = await fetch(base + path);
        assert.equal(r.status, 200, path);
        assert.match(r.headers.get('content-type') ?? '', type, path);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(await r.text(), readFileSync(join(BUILT, file), 'utf8'), path);
      }
      const slash = await fetch(`${base}/chat/`, { redirect: 'manual' });
      assert.equal(slash.status, 308);
      assert.equal(slash.headers.get('location'), '/chat');
      assert.equal((await fetch(`${base}/chat/nope.js`)).status, 404);
      // The route the page uses is on the same origin.
      assert.equal((await fetch(`${base}/v1/route?user=alice`)).status, 200);
    } finally {
      await gw.stop();
      await c.stop();
    }
  });

  it('"chatPage": false: no page, the gateway routes as before', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    const gw = await gatewayOn(c, false);
    try {
      const base = `http://${gw.addresses.http}`;
      assert.equal((await fetch(`${base}/chat`)).status, 404);
      assert.equal((await fetch(`${base}/chat/page.js`)).status, 404);
      assert.equal((await fetch(`${base}/v1/route?user=alice`)).status, 200);
    } finally {
      await gw.stop();
      await c.stop();
    }
  });
});

// ------------------------------------------------------------------ in Chromium

async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A page whose script errors and CSP violations end up in `problems`. */
async function newPage(browser: Browser, problems: string[], who: string, viewport = { width: 1280, height: 820 }) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // The browser's own console lines while no msg_server is up (a failed WebSocket dial to one that just died,
    // GET /v1/route's 503) are not the page's errors.
    if (
      m.type() === 'error' &&
      !/WebSocket connection to .* failed|status of 503 \(Service Unavailable\)/.test(m.text())
    )
      problems.push(`${who} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who} pageerror: ${e.message}`));
  return page;
}

/** Signs in with the keyboard (Tab between the fields, Enter submits); resolves with the msg_server id. */
async function signIn(page: Page, base: string, user: string, token: string, device?: string): Promise<string> {
  await page.goto(`${base}/chat`);
  await page.locator('#signin').waitFor({ state: 'visible', ...T });
  await page.focus('#user');
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(token);
  if (device) {
    await page.keyboard.press('Tab');
    await page.keyboard.type(device);
  }
  await page.keyboard.press('Enter');
  await page.locator('#status[data-state="connected"]').waitFor(T);
  return (await page.getAttribute('#status', 'data-server'))!;
}

async function openPeer(page: Page, peer: string): Promise<void> {
  await page.fill('#peer', peer);
  await page.press('#peer', 'Enter');
  await page.locator(`.log[data-conv="u:${peer}"]:not([hidden])`).waitFor({ state: 'attached', ...T });
  assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'text');
}

/** Types `text` into the message box (it has the focus) and presses Enter; resolves with the row's cid. */
async function say(page: Page, text: string): Promise<string> {
  await page.focus('#text');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
  const li = page.locator('li.msg.own', { hasText: text }).last();
  await li.waitFor(T);
  return (await li.getAttribute('data-cid'))!;
}

/** The received rows of a conversation in DOM order: seq, from, text. */
async function rows(page: Page, conv: string): Promise<{ seq: number; from: string; text: string; mid: string }[]> {
  return page.evaluate(`[...document.querySelectorAll('.log[data-conv="${conv}"] li.msg[data-seq]')].map((li) => ({
    seq: Number(li.dataset.seq), from: li.dataset.from, mid: li.dataset.mid,
    text: li.querySelector('.body').textContent,
  }))`);
}

/** Every own row of the page: cid, state, text. */
async function ownRows(page: Page): Promise<{ cid: string; state: string; text: string; seq?: string }[]> {
  return page.evaluate(`[...document.querySelectorAll('li.msg.own')].map((li) => ({
    cid: li.dataset.cid, state: li.dataset.state, text: li.querySelector('.body').textContent, seq: li.dataset.seq,
  }))`);
}

function assertAscendingOnce(seqs: number[], what: string): void {
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i - 1]! < seqs[i]!, `${what}: seq order, once each: ${seqs}`);
}

describe('chat page in Chromium', { skip: noBrowser, timeout: 180_000 }, () => {
  it('alice and bob on two msg_servers: p2p and a topic both ways, marks, a fishchat send, history, a message written while no msg_server is up, replaced', async () => {
    const dir = await realpath(mkdtempSync(join(tmpdir(), 'fishchat-chatpage-')));
    const init = await fishchat(['init', dir]);
    assert.equal(init.code, 0, init.stderr);
    const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    let c: TestCluster | undefined;
    let gw: RoleHandle | undefined;
    let browser: Browser | undefined;
    const problems: string[] = [];
    try {
      c = await startTestCluster({
        msgServers: 2,
        dir,
        secret,
        settings: { beat: 200, backoff: { base: 200, max: 1000 } },
      });
      gw = await gatewayOn(c);
      const base = `http://${gw.addresses.http}`;
      const t = tag();
      const alice = `alice-${t}`;
      const bob = `bob-${t}`;
      browser = await launch();
      const pa = await newPage(browser, problems, 'alice');
      const pb = await newPage(browser, problems, 'bob');

      // The sign-in form explains where a token comes from; a bad token is refused with the reason.
      await pa.goto(`${base}/chat`);
      await pa.locator('#signin').waitFor({ state: 'visible', ...T });
      assert.match((await pa.locator('#auth').textContent()) ?? '', /fishchat token USER/);
      await pa.fill('#user', alice);
      assert.match((await pa.locator('#auth').textContent()) ?? '', new RegExp(`fishchat token ${alice}`));
      await pa.fill('#token', signToken('not-the-secret', alice));
      await pa.press('#token', 'Enter');
      await pa.locator('#auth-error', { hasText: /refused this token/ }).waitFor(T);
      assert.equal(await pa.evaluate(`sessionStorage.getItem(${JSON.stringify(SESSION_KEY)})`), null);

      const token = (u: string) => signToken(secret, u, { ttlSeconds: 600 });
      const sa = await signIn(pa, base, alice, token(alice));
      // bob is routed to the other msg_server once the gateway has heard alice's in a beat.
      await untilSome('the gateway lists the other msg_server first', async () => {
        const r = (await (await fetch(`${base}/v1/route?user=${bob}`)).json()) as { servers: { id: string }[] };
        return r.servers[0]?.id !== sa;
      });
      const sb = await signIn(pb, base, bob, token(bob));
      assert.notEqual(sa, sb, `alice (${sa}) and bob (${sb}) on different msg_servers`);
      assert.match((await pa.locator('#status').textContent()) ?? '', new RegExp(`connected to ${sa}`));
      assert.equal(
        await pa.evaluate(`JSON.parse(sessionStorage.getItem(${JSON.stringify(SESSION_KEY)})).user`),
        alice,
        'the token is kept in sessionStorage',
      );
      assert.equal(await pa.evaluate('localStorage.length'), 0, 'nothing in localStorage');

      // p2p, both ways; own rows pending, then acked with the seq in the recipient's inbox.
      await openPeer(pa, bob);
      const cid1 = await say(pa, 'hello bob');
      await pa.locator(`li.msg.own[data-cid="${cid1}"][data-state="acked"]`).waitFor(T);
      assert.match((await pa.getAttribute(`li[data-cid="${cid1}"] .mark`, 'title')) ?? '', /stored \(seq 1 in bob-/);
      await pb.locator(`#convs button[data-conv="u:${alice}"] .badge`, { hasText: '1' }).waitFor(T);
      await pb.click(`#convs button[data-conv="u:${alice}"]`);
      await pb.locator(`.log[data-conv="u:${alice}"] li[data-seq="1"]`, { hasText: 'hello bob' }).waitFor(T);
      await say(pb, 'hi alice, from the other msg_server');
      await pa.locator(`.log[data-conv="u:${bob}"] li[data-seq="1"]`, { hasText: 'hi alice' }).waitFor(T);
      // Shift+Enter is a new line, Enter sends.
      await pa.focus('#text');
      await pa.keyboard.type('two');
      await pa.keyboard.press('Shift+Enter');
      await pa.keyboard.type('lines');
      await pa.keyboard.press('Enter');
      await pb.locator(`.log[data-conv="u:${alice}"] li[data-seq="2"] .body`, { hasText: 'two\nlines' }).waitFor(T);

      // A TCP client: `fishchat send` reaches bob's page.
      const send = await fishchat([
        'send',
        '--dir',
        dir,
        '--gateway',
        c.gateway,
        '--as',
        `carol-${t}`,
        '--to',
        bob,
        '--json',
        'over TCP',
      ]);
      assert.equal(send.code, 0, send.stdout + send.stderr);
      const sent = JSON.parse(send.stdout) as { mid: string; seq: number };
      await pb.locator(`#convs button[data-conv="u:carol-${t}"] .badge`, { hasText: '1' }).waitFor(T);
      await pb.click(`#convs button[data-conv="u:carol-${t}"]`);
      await pb
        .locator(`.log[data-conv="u:carol-${t}"] li[data-mid="${sent.mid}"][data-seq="${sent.seq}"]`, {
          hasText: 'over TCP',
        })
        .waitFor(T);
      assert.equal(
        await pb.locator(`#convs button[data-conv="u:carol-${t}"] .badge`).isVisible(),
        false,
        'read: no badge',
      );
      // And the client library over TCP, with a body that is not text.
      const dave = await FishChatClient.connect({
        gateway: c.gateway,
        user: `dave-${t}`,
        token: token(`dave-${t}`),
        transport: 'tcp',
      });
      await dave.send(alice, { n: 1, note: 'a map' });
      await pa
        .locator(`.log[data-conv="u:dave-${t}"] li .body`, { hasText: '{"n":1,"note":"a map"}' })
        .waitFor({ state: 'attached', ...T });
      const daveInbox: Msg[] = [];
      dave.on('message', (m) => daveInbox.push(m));
      await openPeer(pa, `dave-${t}`);
      await say(pa, 'to a TCP client');
      await untilSome('dave got the page message', () => daveInbox.find((m) => m.body === 'to a TCP client'));

      // A topic: alice creates it, bob joins; both see every message once, in order, own ones marked.
      const topic = `general-${t}`;
      await pa.fill('#topic', topic);
      await pa.click('#create-topic');
      await pa.locator(`.log[data-conv="t:${topic}"]:not([hidden])`).waitFor({ state: 'attached', ...T });
      await pb.fill('#topic', topic);
      await pb.press('#topic', 'Enter');
      await pb.locator(`.log[data-conv="t:${topic}"]:not([hidden])`).waitFor({ state: 'attached', ...T });
      await say(pa, 'welcome to the topic');
      await say(pb, 'thanks');
      for (const p of [pa, pb]) {
        await p.locator(`.log[data-conv="t:${topic}"] li.msg`, { hasText: 'thanks' }).waitFor(T);
        const r = await rows(p, `t:${topic}`);
        assert.deepEqual(
          r.map((x) => x.text),
          ['welcome to the topic', 'thanks'],
        );
        assertAscendingOnce(
          r.map((x) => x.seq),
          'topic',
        );
        // The sender's own copy took its pending row's place: one row per message.
        assert.equal(await p.locator(`.log[data-conv="t:${topic}"] li.msg`).count(), 2);
      }
      assert.equal(await pa.locator(`.log[data-conv="t:${topic}"] li.own[data-state="acked"]`).count(), 1);
      // Joining a topic that does not exist: a clear message.
      await pb.fill('#topic', `nope-${t}`);
      await pb.press('#topic', 'Enter');
      await pb.locator('#open-error', { hasText: /There is no topic nope-/ }).waitFor(T);

      // Screenshots: desktop (light, dark), then the phone size.
      await pb.click(`#convs button[data-conv="u:${alice}"]`);
      await pb.screenshot({ path: '/tmp/chat-desktop.png' });
      await pb.emulateMedia({ colorScheme: 'dark' });
      await pb.screenshot({ path: '/tmp/chat-dark.png' });
      await pb.emulateMedia({ colorScheme: 'light' });
      await pb.setViewportSize({ width: 375, height: 740 });
      await sleep(200);
      await pb.screenshot({ path: '/tmp/chat-phone.png' });
      const overflow = await pb.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      assert.equal(overflow, 0, 'no sideways scrolling at 375 px');
      const box = await pb.locator('#text').boundingBox();
      assert.ok(
        box && box.x >= 0 && box.x + box.width <= 375 && box.y + box.height <= 740,
        `message box on screen: ${JSON.stringify(box)}`,
      );
      await pb.setViewportSize({ width: 1280, height: 820 });

      // A reload keeps the session; history comes back through sync, each message once.
      const before = await rows(pb, `u:${alice}`);
      await pb.reload();
      await pb.locator('#status[data-state="connected"]').waitFor(T);
      await pb.locator(`.log[data-conv="u:${alice}"] li[data-seq="2"]`).waitFor({ state: 'attached', ...T });
      assert.deepEqual(await rows(pb, `u:${alice}`), before);
      // bob's own message to alice survives the reload (from session storage), acked.
      await pb.click(`#convs button[data-conv="u:${alice}"]`);
      await pb.locator('li.own[data-state="acked"]', { hasText: 'hi alice' }).waitFor(T);

      // No msg_server up: the status says so, a message waits as pending, then goes out once when one is back.
      for (const ms of c.msgServers.splice(0)) await ms.stop();
      await pa.locator('#status[data-state="reconnecting"]').waitFor(T);
      await openPeer(pa, bob);
      const cid2 = await say(pa, 'written while down');
      await sleep(1500);
      assert.equal(await pa.getAttribute(`li[data-cid="${cid2}"]`, 'data-state'), 'pending');
      assert.equal(await pa.getAttribute('#status', 'data-state'), 'reconnecting');
      await pa.screenshot({ path: '/tmp/chat-pending.png' });
      await c.addMsgServer('ms-2');
      await pa.locator('#status[data-state="connected"][data-server="ms-2"]').waitFor(T);
      assert.match((await pa.locator('#status').textContent()) ?? '', /connected to ms-2 · reconnected \d+×/);
      await pa.locator(`li[data-cid="${cid2}"][data-state="acked"]`).waitFor(T);
      await pb.locator('#status[data-state="connected"][data-server="ms-2"]').waitFor(T);
      await pb.locator(`.log[data-conv="u:${alice}"] li.msg`, { hasText: 'written while down' }).waitFor(T);
      await sleep(500);
      const got = await rows(pb, `u:${alice}`);
      assert.equal(got.filter((r) => r.text === 'written while down').length, 1, 'stored and shown once');
      assertAscendingOnce(
        got.map((r) => r.seq),
        'bob from alice',
      );

      // Another tab of bob with the same device: the first one is replaced and says so.
      const pb2 = await newPage(browser, problems, 'bob2');
      await signIn(pb2, base, bob, token(bob));
      await pb.locator('#status[data-state="replaced"]', { hasText: /replaced/ }).waitFor(T);
      await pb.locator('#reconnect').waitFor(T);

      // Sign out forgets the token.
      await pa.click('#signout');
      await pa.locator('#signin').waitFor({ state: 'visible', ...T });
      assert.equal(await pa.evaluate(`sessionStorage.getItem(${JSON.stringify(SESSION_KEY)})`), null);
      await pa.setViewportSize({ width: 375, height: 740 });
      await pa.screenshot({ path: '/tmp/chat-phone-signin.png' });

      await dave.close();
      assert.deepEqual(problems, [], 'no script errors and no CSP violations');
    } finally {
      await browser?.close().catch(() => undefined);
      await gw?.stop().catch(() => undefined);
      await c?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ Redis mode, kill -9

interface RunJson {
  gateway: string;
  roles: { role: string; id: string; pid?: number; addresses: { tcp?: string; http?: string } }[];
}

const clusters: string[] = [];
after(async () => {
  if (!noRedis) for (const name of clusters) await deleteKeysWithPrefix(REDIS_URL, `fishchat:${name}:`);
});

describe('chat page, Redis mode', { skip: noRedis, timeout: 240_000 }, () => {
  it("kill -9 of the page's msg_server while messages flow: it reconnects through the gateway, each acked message shown once, in order", async () => {
    const dir = await realpath(mkdtempSync(join(tmpdir(), 'fishchat-chatpage-redis-')));
    let up: CliProcess | undefined;
    let browser: Browser | undefined;
    const clients: FishChatClient[] = [];
    const problems: string[] = [];
    try {
      const init = await fishchat(['init', dir]);
      assert.equal(init.code, 0, init.stderr);
      const name = `test-chat-${process.pid}-${tag()}`;
      clusters.push(name);
      const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as {
        cluster: string;
        roles: string[];
        settings: Record<string, unknown>;
      };
      file.cluster = name;
      file.settings = { ...file.settings, beat: 300, backoff: { base: 300, max: 2000 } };
      await writeFile(join(dir, 'fishchat.json'), JSON.stringify(file, null, 2));
      for (const f of file.roles) {
        const role = JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<string, unknown>;
        if ('port' in role) role.port = 0;
        role.httpPort = 0;
        await writeFile(join(dir, f), JSON.stringify(role, null, 2));
      }
      const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
      const token = (u: string) => () => signToken(secret, u, { ttlSeconds: 600 });
      up = new CliProcess(['up', dir, '--redis', REDIS_URL], { waitMs: 60_000, killAfterMs: 30_000 });
      await up.waitFor(/^cluster ready/m);
      const readRun = async () => JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as RunJson;
      const run = await readRun();
      const gwHttp = run.roles.find((r) => r.role === 'gateway')!.addresses.http!;
      const base = `http://${gwHttp}`;

      const t = tag();
      const alice = `alice-${t}`;
      const carol = `carol-${t}`;
      const bob = `bob-${t}`;
      browser = await launch();
      const page = await newPage(browser, problems, 'alice');
      const server = await signIn(page, base, alice, token(alice)());
      await page.evaluate(`(() => {
        window.__status = [];
        const s = document.getElementById('status');
        new MutationObserver(() => window.__status.push(s.dataset.state + ' ' + (s.dataset.server || '')))
          .observe(s, { attributes: true, attributeFilter: ['data-state', 'data-server'] });
      })()`);
      await openPeer(page, bob);

      // carol (TCP, through the gateway) sends to alice, one after another, each with its cid until ok.
      const carolC = await FishChatClient.connect({
        gateway: run.gateway,
        user: carol,
        token: token(carol),
        push: false,
        transport: 'tcp',
      });
      const bobC = await FishChatClient.connect({
        gateway: run.gateway,
        user: bob,
        token: token(bob),
        autoAck: true,
        transport: 'tcp',
      });
      clients.push(carolC, bobC);
      const bobGot: Msg[] = [];
      bobC.on('message', (m) => bobGot.push(m));
      // What carol's client went through, for the failure message.
      const carolLog: string[] = [];
      carolC.on('disconnect', (d) => carolLog.push(`${Date.now()} disconnect ${d.reason} ${d.willReconnect}`));
      carolC.on('reconnect', (r) => carolLog.push(`${Date.now()} reconnect ${r.server}`));
      carolC.on('error', (e) => carolLog.push(`${Date.now()} error ${e.message}`));
      const acked: { seq: number; mid: string; text: string }[] = [];
      let stop = false;
      const carolLoop = (async () => {
        // Bounded by time rather than by a small count: on a loaded machine the page may take
        // long to reconnect, and the traffic must still be flowing when it has.
        const deadline = Date.now() + 150_000;
        for (let i = 0; !stop && i < 10_000 && Date.now() < deadline; i++) {
          const text = `carol ${i}`;
          const r = await carolC.sendWithRetry(alice, text, { deadlineMs: 30_000 }).catch((err: Error) => {
            carolLog.push(`${Date.now()} send ${i} failed: ${err.message}`);
            throw err;
          });
          acked.push({ seq: r.seq, mid: r.mid, text });
          await sleep(40);
        }
      })();
      // alice writes on the page at the same time.
      const written: string[] = [];
      const pageLoop = (async () => {
        for (let i = 0; !stop && i < 100; i++) {
          const text = `alice ${i}`;
          await page.evaluate(`(() => {
            const t = document.getElementById('text'); t.value = ${JSON.stringify(text)};
            document.getElementById('compose').requestSubmit();
          })()`);
          written.push(text);
          await sleep(150);
        }
      })();
      // A `fishchat send` too.
      const cli = await fishchat(['send', '--dir', dir, '--as', `dave-${t}`, '--to', alice, '--json', 'from the CLI']);
      assert.equal(cli.code, 0, cli.stdout + cli.stderr);

      await untilSome('some traffic before the kill', () => acked.length >= 15 && written.length >= 5);
      const victim = run.roles.find((r) => r.id === server)!;
      process.kill(victim.pid!, 'SIGKILL');
      await up.waitFor(new RegExp(`${server} +killed by SIGKILL`), 10_000);
      await page
        .locator('#status[data-state="reconnecting"]')
        .waitFor(T)
        .catch(() => undefined);
      await untilSome(
        'the page logged in again',
        async () => {
          const log = (await page.evaluate('window.__status')) as string[];
          return (
            log.some((s) => s.startsWith('reconnecting')) &&
            (await page.getAttribute('#status', 'data-state')) === 'connected'
          );
        },
        30_000,
      );
      // Traffic goes on for a while after the reconnect, then stops.
      const mark = acked.length;
      await untilSome('traffic after the reconnect', () => acked.length >= mark + 15, 30_000).catch((err: Error) => {
        throw new Error(
          `${err.message}: acked ${mark} → ${acked.length}, carol connected ${carolC.connected}\n` +
            `${carolLog.join('\n')}\nnow ${Date.now()}\n${up?.output.slice(-3000)}`,
        );
      });
      stop = true;
      await carolLoop;
      await pageLoop;
      assert.ok(!processAlive(victim.pid!), 'the msg_server was killed');

      // Every acked message is on the page once, in seq order.
      await untilSome(
        'every acked message on the page',
        async () => {
          const r = await rows(page, `u:${carol}`);
          return r.length >= acked.length ? r : undefined;
        },
        30_000,
      );
      const shown = await rows(page, `u:${carol}`);
      assert.deepEqual(
        shown.map((r) => [r.seq, r.mid, r.text]),
        [...acked].sort((a, b) => a.seq - b.seq).map((a) => [a.seq, a.mid, a.text]),
      );
      const all = (await page.evaluate(
        `[...document.querySelectorAll('li.msg[data-seq]')].map((li) => Number(li.dataset.seq))`,
      )) as number[];
      assert.equal(new Set(all).size, all.length, 'every seq shown once');
      await page
        .locator(`.log[data-conv="u:dave-${t}"] li`, { hasText: 'from the CLI' })
        .waitFor({ state: 'attached', ...T });

      // Every message the page wrote: acked once, stored once, at bob in the order written.
      await untilSome(
        'the page’s messages all acked',
        async () => {
          const o = await ownRows(page);
          return o.length === written.length && o.every((x) => x.state === 'acked') ? o : undefined;
        },
        30_000,
      );
      await untilSome('bob got them all', () => bobGot.length >= written.length, 30_000);
      await sleep(500);
      assert.deepEqual(
        bobGot.map((m) => m.body),
        written,
        'bob: each page message once, in order',
      );
      assertAscendingOnce(
        bobGot.map((m) => m.seq),
        'bob',
      );

      const status = (await page.evaluate('window.__status')) as string[];
      const now = await page.getAttribute('#status', 'data-server');
      console.log(
        `# page: ${server} killed; status ${status.join(' → ')}; now on ${now}; ${acked.length} from carol, ${written.length} from the page`,
      );
      await page.screenshot({ path: '/tmp/chat-reconnected.png' });
      assert.deepEqual(problems, [], 'no script errors and no CSP violations');
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
      await browser?.close().catch(() => undefined);
      await up?.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
