/**
 * The gateway's browser chat page: GET /chat on its HTTP listener (off with
 * `"chatPage": false` in the gateway's file). Three files, all from this
 * origin (no CDN, no web fonts, nothing inline):
 *
 *   GET /chat (and /chat/)   index.html
 *   GET /chat/style.css      the page's style
 *   GET /chat/page.js        the page's script: chat/page.ts and the client
 *                            library (runtime/client, over WebSocket) bundled
 *                            by esbuild (scripts/chat-page.mjs)
 *
 * The page is open; what it does needs a user token (`fishchat token USER`),
 * which it sends only in the `login` map over the msg_server's WebSocket.
 * It routes with GET /v1/route on this same origin, then connects to the
 * msg_server's `ws` URL, which is another origin (another port, maybe
 * another host): the msg_servers come and go while a tab stays open, so the
 * CSP's connect-src admits the `ws:` and `wss:` schemes rather than a list
 * fixed when the page was loaded. Everything else is 'self' or nothing.
 *
 * `npm run build` puts the three files in dist/runtime/roles/gateway/chat/,
 * where loadChatPage() reads them: from dist/ beside this module, and from
 * the TypeScript sources (tsx, bun test) in dist/ too. A missing or stale
 * build does not stop the gateway (it routes clients; the page is an extra):
 * /chat then answers 503 saying what to do, and the gateway logs it once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { Logger } from '../../contract/context.js';

/** The built page as the gateway serves it. */
export interface ChatPage {
  readonly html: string;
  readonly css: string;
  readonly js: string;
  /** the Content-Security-Policy of every response under /chat */
  readonly csp: string;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
/** chat/ beside this module: in dist/ the built page, in the sources the files it is built from. */
const BESIDE = fileURLToPath(new URL('./chat/', import.meta.url));
const BUILT_DIR = FROM_SOURCES
  ? fileURLToPath(new URL('../../../dist/runtime/roles/gateway/chat/', import.meta.url))
  : BESIDE;
const FILES = { html: 'index.html', css: 'style.css', js: 'page.js' } as const;

export const CHAT_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // 'self' for GET /v1/route; the msg_servers' WebSocket URLs are on other ports (see above).
  "connect-src 'self' ws: wss:",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

const COMMON_HEADERS = {
  'Content-Security-Policy': CHAT_CSP,
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

const text = (status: number, message: string) =>
  new Response(`${message}\n`, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...COMMON_HEADERS } });

function readBuilt(dir: string, name: string): string {
  const path = join(dir, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new Error(`gateway chat page: ${path} is missing: run npm run build`);
  }
}

/** From the sources, dist/'s copy must be newer than every file in chat/, or it is not the page in the tree. */
function checkFresh(): void {
  const built = Math.min(...Object.values(FILES).map((name) => statSync(join(BUILT_DIR, name)).mtimeMs));
  for (const name of readdirSync(BESIDE)) {
    const source = join(BESIDE, name);
    if (statSync(source).mtimeMs > built) {
      throw new Error(`gateway chat page: ${source} is newer than its build in ${BUILT_DIR}: run npm run build`);
    }
  }
}

/** Reads the built page (from `dir`, the build's by default); throws, naming the file, if one is missing. */
export function loadChatPage(dir = BUILT_DIR): ChatPage {
  const [html, css, js] = [FILES.html, FILES.css, FILES.js].map((name) => readBuilt(dir, name)) as [
    string,
    string,
    string,
  ];
  if (FROM_SOURCES && dir === BUILT_DIR) checkFresh();
  return { html, css, js, csp: CHAT_CSP };
}

/**
 * The routes to mount at /chat on the gateway's HTTP app
 * (`app.route('/chat', chatRoutes(log))`). The page is read once, here.
 */
export function chatRoutes(log?: Logger, dir?: string): Hono {
  const app = new Hono();
  let page: ChatPage;
  try {
    page = loadChatPage(dir);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log?.warn(`${reason}; GET /chat answers 503 until then`);
    app.get('*', () => text(503, reason));
    return app;
  }
  const serve = (body: string, type: string) => () =>
    new Response(body, { status: 200, headers: { 'Content-Type': type, ...COMMON_HEADERS } });
  const html = serve(page.html, 'text/html; charset=utf-8');
  app.get('/', html);
  app.get('/index.html', html);
  app.get('/style.css', serve(page.css, 'text/css; charset=utf-8'));
  app.get('/page.js', serve(page.js, 'text/javascript; charset=utf-8'));
  app.get('*', (c) => {
    // /chat/ → /chat (the page names its files by absolute path, so either would do; one address is clearer)
    if (c.req.path.endsWith('/') && c.req.path.length > 1) return c.redirect(c.req.path.replace(/\/+$/, ''), 308);
    return text(404, 'not found');
  });
  return app;
}
