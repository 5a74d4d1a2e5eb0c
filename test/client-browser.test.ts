/**
 * The browser bundle (dist/browser/fishchat-client.js, built by `npm run
 * build`) in headless Chromium: a page on its own origin imports it as an ES
 * module, routes through the gateway's HTTP port (`GET /v1/route`, across
 * origins: CORS), logs in over WebSocket and exchanges messages both ways
 * with a TCP client on another msg_server. The bundle itself is checked on
 * every runtime: ESM, no `node:` import, no TCP code.
 *
 * The browser part is Node only (playwright-core), skipped under Bun and
 * when /usr/bin/chromium is missing, as in dashboard.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FishChatClient } from '../runtime/client/index.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { take } from './helpers/messages.js';

const CHROMIUM = '/usr/bin/chromium';
const BUNDLE = fileURLToPath(new URL('../dist/browser/fishchat-client.js', import.meta.url));
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const skip = isBun
  ? 'the browser test drives Chromium through playwright-core, which needs Node: run it with `node --import tsx --test test/client-browser.test.ts`'
  : !existsSync(CHROMIUM)
    ? `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``
    : false;
if (skip) console.log(`# client browser test skipped: ${skip}`);

/** The gateway's HTTP address (`http://host:port`), where `GET /v1/route` is served. */
function gatewayHttp(c: TestCluster): string {
  const http = (c as TestCluster & { gatewayHttp?: string }).gatewayHttp;
  assert.ok(http, 'the test cluster names the gateway HTTP address');
  return http.startsWith('http') ? http : `http://${http}`;
}

/** Serves the page and the bundle on an origin of their own (port 0). */
async function servePage(): Promise<{ server: Server; base: string }> {
  const js = readFileSync(BUNDLE);
  const map = readFileSync(`${BUNDLE}.map`);
  const server = createServer((req, res) => {
    if (req.url === '/fishchat-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    } else if (req.url === '/fishchat-client.js.map') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(map);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title><p>test page</p>');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('browser bundle', () => {
  it('is one ES module with no node: import and no TCP code', () => {
    assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run npm run build`);
    const js = readFileSync(BUNDLE, 'utf8');
    assert.match(js, /\bexport\s*\{[^}]*\bFishChatClient\b/, 'exports FishChatClient');
    assert.doesNotMatch(js, /["'`]node:[a-z_]+["'`]/, 'no node: specifier');
    assert.doesNotMatch(js, /\brequire\(["'`]/, 'no require()');
    assert.doesNotMatch(js, /connectTcp|better-sqlite3|cbor-extract/, 'no platform, no native module');
    assert.ok(js.includes('a browser has no TCP'), 'the TCP wire is the browser stub');
    assert.ok(existsSync(`${BUNDLE}.map`), 'with a source map');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
    };
    assert.equal(pkg.exports['./client']!.browser, './dist/browser/fishchat-client.js');
    assert.equal(pkg.exports['./client/browser']!.default, './dist/browser/fishchat-client.js');
  });

  it('in Chromium: routes over HTTP, logs in over WebSocket, messages both ways with a TCP client', {
    skip,
  }, async () => {
    const { chromium } = await import('playwright-core');
    let c: TestCluster | undefined;
    let page: Awaited<ReturnType<typeof servePage>> | undefined;
    let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
    try {
      c = await startTestCluster({ msgServers: 2 });
      page = await servePage();
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
      });
      const tab = await browser.newPage();
      const problems: string[] = [];
      tab.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      tab.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      await tab.goto(`${page.base}/`);
      const gateway = gatewayHttp(c);
      // Strings, not functions: the page runs them as they are (no transpiler helpers).
      const login = (await tab.evaluate(`(async () => {
        const { FishChatClient } = await import('/fishchat-client.js');
        const chat = await FishChatClient.connect({ gateway: ${JSON.stringify(gateway)}, user: 'alice',
          token: ${JSON.stringify(c.token('alice'))}, autoAck: true });
        window.chat = chat;
        window.got = [];
        (async () => { for await (const m of chat.messages()) window.got.push({ from: m.from, seq: m.seq, mid: m.mid, body: m.body }); })();
        return { server: chat.login.server, connected: chat.connected, hasWebSocket: typeof WebSocket };
      })()`)) as { server: string; connected: boolean; hasWebSocket: string };
      assert.equal(login.connected, true);
      assert.match(login.server, /^ms-[01]$/);

      // the TCP client on the other msg_server
      const other = login.server === 'ms-0' ? 1 : 0;
      const bob = await FishChatClient.connect({ server: c.ms(other), user: 'bob', token: c.token('bob') });
      assert.notEqual(bob.login.server, login.server);
      const bobIn = bob.messages()[Symbol.asyncIterator]();

      const fromPage = (await tab.evaluate(`(async () => {
        const r = await window.chat.sendWithRetry('bob', { text: 'hi from the browser', n: 2 ** 40 });
        return { mid: r.mid, seq: r.seq };
      })()`)) as { mid: string; seq: number };
      const [atBob] = await take(bobIn, 1);
      assert.deepEqual([atBob!.mid, atBob!.seq, atBob!.from], [fromPage.mid, fromPage.seq, 'alice']);
      assert.deepEqual(atBob!.body, { text: 'hi from the browser', n: 2 ** 40 });

      const sent = [];
      for (let i = 0; i < 5; i++) sent.push(await bob.send('alice', `reply ${i}`));
      await tab.waitForFunction('window.got.length >= 5', undefined, { timeout: 10_000 });
      const got = (await tab.evaluate('window.got')) as { from: string; seq: number; mid: string; body: unknown }[];
      assert.deepEqual(
        got.map((m) => [m.from, m.mid, m.body]),
        sent.map((s, i) => ['bob', s.mid, `reply ${i}`]),
      );
      // bytes travel as bytes
      await bob.send('alice', new Uint8Array([1, 2, 255]));
      await tab.waitForFunction('window.got.length >= 6', undefined, { timeout: 10_000 });
      assert.equal(
        await tab.evaluate('window.got[5].body instanceof Uint8Array && Array.from(window.got[5].body).join()'),
        '1,2,255',
      );
      await tab.evaluate('window.chat.close()');
      assert.equal(await tab.evaluate('window.chat.closed'), true);
      await bob.close();
      assert.deepEqual(problems, []);
    } finally {
      await browser?.close();
      await new Promise((resolve) => page?.server.close(resolve) ?? resolve(undefined));
      await c?.stop();
    }
  });
});
