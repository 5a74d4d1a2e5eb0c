/**
 * The monitor's web dashboard (GET /) in headless Chromium (Debian's
 * /usr/bin/chromium, driven by playwright-core): the page is open and served
 * with a strict CSP; it asks for an admin token (a wrong one is refused with
 * a clear message), then lists every role live, draws its charts, and logs
 * logins and topic changes as they happen. A screenshot is saved to
 * /tmp/fishchat-dashboard.png.
 *
 * The browser tests are Node only: skipped under Bun, and skipped when
 * /usr/bin/chromium is missing (`.ci/run` installs it with apt). The page's
 * files (built into dist/ by `npm run build`) are checked on both.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeBody, RawCbor } from '../runtime/protocol/index.js';
import { signToken } from '../runtime/protocol/token.js';
import type { RoleHandle } from '../runtime/contract/context.js';
import { startMonitor } from '../runtime/roles/monitor/index.js';
import { loadDashboard, TOKEN_KEY } from '../runtime/roles/monitor/dashboard.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { RawConn, rid } from './helpers/raw.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/fishchat-dashboard.png';
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const skip = isBun
  ? 'the dashboard test drives Chromium through playwright-core, which needs Node: run it with `node --import tsx --test test/dashboard.test.ts`'
  : !existsSync(CHROMIUM)
    ? `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (.ci/run does)`
    : false;
if (skip) console.log(`# dashboard test skipped: ${skip}`);

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const BUILT = fileURLToPath(new URL('../dist/runtime/roles/monitor/dashboard/', import.meta.url));

describe('monitor dashboard files', () => {
  it('serves the built index.html with style.css and page.js inline, as built, hashed in the CSP', () => {
    const d = loadDashboard();
    const [css, js] = ['style.css', 'page.js'].map((name) => readFileSync(join(BUILT, name), 'utf8'));
    assert.ok(d.html.includes(`<style>${css}</style>`), 'style.css inline');
    assert.ok(d.html.includes(`<script>${js}</script>`), 'page.js inline');
    assert.doesNotMatch(d.html, /<link rel="stylesheet"|<script src=/);
    const directives = d.csp.split('; ');
    assert.ok(directives.includes(`script-src ${sha256(js)}`), d.csp);
    assert.ok(directives.includes(`style-src ${sha256(css)}`), d.csp);
    // The script is the bundle of page.ts: the token key comes from token-key.ts, not a placeholder.
    assert.ok(js.includes(JSON.stringify(TOKEN_KEY)), 'TOKEN_KEY in page.js');
    assert.equal(d.headers['Content-Security-Policy'], d.csp);
  });

  it('names a missing file and says to build', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fishchat-dashboard-'));
    try {
      for (const name of ['index.html', 'style.css']) copyFileSync(join(BUILT, name), join(dir, name));
      assert.throws(
        () => loadDashboard(dir),
        (err: Error) => {
          assert.equal(err.message, `monitor dashboard: ${join(dir, 'page.js')} is missing: run npm run build`);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('monitor dashboard', { skip, timeout: 120_000 }, () => {
  it('GET / serves the page openly, self-contained, with a strict CSP that admits its own inline script and style', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { beat: 200 } });
    let monitor: RoleHandle | undefined;
    try {
      monitor = await startMonitor(c.ctx, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 0 });
      const res = await fetch(`http://${monitor.addresses.http}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
      const csp = res.headers.get('content-security-policy') ?? '';
      const directives = new Map(
        csp
          .split(';')
          .map((d) => d.trim().split(/\s+/))
          .map(([k, ...v]) => [k!, v]),
      );
      assert.deepEqual(directives.get('default-src'), ["'none'"]);
      assert.deepEqual(directives.get('connect-src'), ["'self'"]);
      assert.deepEqual(directives.get('form-action'), ["'none'"]);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const html = await res.text();
      const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
      const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
      assert.equal(scripts.length, 1);
      assert.equal(styles.length, 1);
      assert.deepEqual(directives.get('script-src'), [sha256(scripts[0]!)]);
      assert.deepEqual(directives.get('style-src'), [sha256(styles[0]!)]);
      // Nothing loaded from elsewhere: no src/href to another origin, no inline handlers or style attributes.
      assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
      assert.doesNotMatch(html, /<script[^>]+src=/i);
      assert.doesNotMatch(html, /\son[a-z]+\s*=/i);
      assert.doesNotMatch(html, /\sstyle\s*=/i);
      // /status and /events still need the token.
      assert.equal((await fetch(`http://${monitor.addresses.http}/status`)).status, 401);
    } finally {
      await monitor?.stop();
      await c.stop();
    }
  });

  it('asks for the token, refuses a wrong one, then shows both msg_servers, the charts and a login live', async () => {
    const { chromium } = await import('playwright-core');
    let c: TestCluster | undefined;
    let monitor: RoleHandle | undefined;
    let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
    const conns: RawConn[] = [];
    try {
      c = await startTestCluster({ msgServers: 2, settings: { beat: 200 } });
      monitor = await startMonitor(c.ctx, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 0 });
      const base = `http://${monitor.addresses.http}`;
      browser = await chromium.launch({
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
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      // A CSP violation or a script error shows up here; the page must have none.
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && !/401 \(Unauthorized\)/.test(m.text())) problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const T = { timeout: 15_000 };

      await page.goto(base + '/');
      await page.locator('#login').waitFor({ state: 'visible', ...T });
      assert.match((await page.locator('#auth').textContent()) ?? '', /fishchat token admin --admin/);
      assert.equal(await page.locator('#dash').isVisible(), false);

      // A token signed with another secret: a clear message, the form again, nothing kept.
      await page.fill('#token', signToken('not-the-cluster-secret', 'admin', { admin: true }));
      await page.click('#connect');
      await page.locator('#auth-error').waitFor({ state: 'visible', ...T });
      assert.match((await page.locator('#auth-error').textContent()) ?? '', /refused this token: .*signature/i);
      assert.equal(await page.locator('#login').isVisible(), true);
      assert.equal(await page.locator('#dash').isVisible(), false);
      assert.equal(await page.evaluate(`sessionStorage.getItem(${JSON.stringify(TOKEN_KEY)})`), null);
      // A valid token that is not an admin token: refused too.
      await page.fill('#token', c.token('mallory'));
      await page.click('#connect');
      await page.locator('#auth-error', { hasText: 'not an admin token' }).waitFor(T);

      // The admin token: the dashboard, kept in session storage.
      const admin = signToken(c.secret, 'admin', { admin: true });
      await page.fill('#token', admin);
      await page.click('#connect');
      await page.locator('#dash').waitFor({ state: 'visible', ...T });
      assert.equal(await page.locator('#login').isVisible(), false);
      assert.equal(await page.evaluate(`sessionStorage.getItem(${JSON.stringify(TOKEN_KEY)})`), admin);
      await page.locator('#cluster', { hasText: c.ctx.cluster }).waitFor(T);
      for (const id of ['ms-0', 'ms-1']) {
        await page.locator(`#roles tr[data-role="msg_server"][data-id="${id}"][data-up="true"]`).waitFor(T);
      }
      for (const role of ['gateway', 'router', 'monitor'])
        await page.locator(`#roles tr[data-role="${role}"][data-up="true"]`).waitFor(T);
      await page.locator('#conn[data-state="live"]').waitFor(T);
      for (const id of ['#chart-msgs', '#chart-conns']) {
        const box = await page.locator(id).boundingBox();
        assert.ok(box && box.width > 200 && box.height > 100, `${id} is laid out: ${JSON.stringify(box)}`);
      }
      await page.locator('.legend li[data-id="ms-0"]').first().waitFor(T);
      await page.locator('.legend li[data-id="ms-1"]').first().waitFor(T);

      // Reloading the tab keeps the token: no form.
      await page.reload();
      await page.locator('#roles tr[data-id="ms-1"][data-up="true"]').waitFor(T);
      assert.equal(await page.locator('#login').isVisible(), false);

      // A client logs in on ms-0 and creates a topic; ms-1 gets one too: the log shows it, the numbers follow.
      const user = `alice-${Math.random().toString(36).slice(2, 7)}`;
      const a = await RawConn.connect(c.ms(0));
      conns.push(a);
      const ok = await a.request({ op: 'login', rid: rid(), user, device: 'laptop', token: c.token(user) });
      assert.equal(ok.op, 'ok', JSON.stringify(ok));
      const b = await RawConn.connect(c.ms(1));
      conns.push(b);
      assert.equal((await b.request({ op: 'login', rid: rid(), user: 'bob', token: c.token('bob') })).op, 'ok');
      const topic = `general-${Math.random().toString(36).slice(2, 7)}`;
      assert.equal((await a.request({ op: 'topic_create', rid: rid(), topic })).op, 'ok');
      await page.locator('#log li[data-kind="login"]', { hasText: user }).waitFor(T);
      assert.match(
        (await page.locator('#log li[data-kind="login"]', { hasText: user }).textContent()) ?? '',
        /logged in on ms-0/,
      );
      await page.locator('#log li', { hasText: topic }).waitFor(T);
      await page.locator('#roles tr[data-id="ms-0"] td:nth-child(5)', { hasText: /^1$/ }).waitFor(T);
      await page.locator('#t-conns', { hasText: /^2$/ }).waitFor(T);

      // Some traffic for a few seconds, so the charts have something to draw, then keep a picture of it.
      const traffic = (async () => {
        for (let i = 0; i < 100; i++) {
          const to = i % 2 === 0 ? 'bob' : user;
          const from = i % 2 === 0 ? a : b;
          assert.equal(
            (await from.request({ op: 'send', rid: rid(), to, body: new RawCbor(encodeBody(`hello ${i}`)) })).op,
            'ok',
          );
          await new Promise((r) => setTimeout(r, 30 + (i % 10) * 5));
        }
      })();
      await page.locator('#t-in:not(:text-is("0"))').waitFor(T);
      await page.waitForTimeout(2500);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(300);
      await page.screenshot({ path: SCREENSHOT.replace('.png', '-dark.png'), fullPage: true });
      await page.emulateMedia({ colorScheme: 'light' });
      await traffic;
      // The charts drew something: not a blank canvas.
      const inked = await page.evaluate(`(() => {
        const cv = document.getElementById('chart-conns');
        const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      })()`);
      assert.ok(typeof inked === 'number' && inked > 500, `the connections chart has ink: ${String(inked)}`);

      // A msg_server that stops beating is shown down, and the log says so.
      await c.msgServers[1]!.stop();
      await page.locator('#roles tr[data-id="ms-1"][data-up="false"]').waitFor(T);
      await page.locator('#log li[data-kind="down"]', { hasText: 'ms-1' }).waitFor(T);
      await page.locator('#t-roles', { hasText: '4 / 5' }).waitFor(T);

      // Sign out: the form again, the token forgotten.
      await page.click('#signout');
      await page.locator('#login').waitFor({ state: 'visible', ...T });
      assert.equal(await page.evaluate(`sessionStorage.getItem(${JSON.stringify(TOKEN_KEY)})`), null);

      assert.deepEqual(problems, [], 'no script errors and no CSP violations');
    } finally {
      for (const conn of conns) conn.close();
      await browser?.close().catch(() => undefined);
      await monitor?.stop().catch(() => undefined);
      await c?.stop();
    }
  });
});
