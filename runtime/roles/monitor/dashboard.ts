/**
 * The monitor's web dashboard (GET /): one self-contained HTML page, inline
 * CSS and JS only (no CDN, no web fonts: the machine may have no internet).
 *
 * The page itself is open; the data is not. It asks for an admin token once
 * (docs/architecture.md "Security"), keeps it in the tab's sessionStorage, and reads
 * GET /status (polled) and GET /events (server-sent events, read with
 * fetch() because EventSource cannot send an Authorization header), both
 * with `Authorization: Bearer <token>`.
 *
 * Its files are in dashboard/: index.html, style.css and page.ts (the
 * browser script, checked with the DOM lib by dashboard/tsconfig.json).
 * `npm run build` bundles page.ts into page.js and puts the three in
 * dist/runtime/roles/monitor/dashboard/ (scripts/dashboard.mjs), where
 * loadDashboard() reads them: from dist/ beside this module, and from the
 * TypeScript sources (tsx, bun test, deno --sloppy-imports) in dist/ too.
 *
 * The Content-Security-Policy allows exactly the page's own inline script
 * and style (by the SHA-256 hashes of the bytes served, computed when the
 * page is loaded), connections to its own origin only, and nothing else.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { TOKEN_KEY } from './dashboard/token-key.js';

/** The page as GET / serves it. */
export interface Dashboard {
  readonly html: string;
  /** its Content-Security-Policy */
  readonly csp: string;
  /** the response headers of GET / */
  readonly headers: Readonly<Record<string, string>>;
  /** GET / on the monitor (open: the data the page reads needs the token) */
  response(): Response;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
/** dashboard/ beside this module: in dist/ the built page, in the sources the files it is built from. */
const BESIDE = fileURLToPath(new URL('./dashboard/', import.meta.url));
/** The built page: beside this module in dist/; from runtime/roles/monitor/dashboard.ts, the build's copy in dist/. */
const BUILT_DIR = FROM_SOURCES
  ? fileURLToPath(new URL('../../../dist/runtime/roles/monitor/dashboard/', import.meta.url))
  : BESIDE;
const BUILT = { html: 'index.html', css: 'style.css', js: 'page.js' } as const;
/** Where index.html takes the style and the script: each is replaced by its file's text, inline. */
const STYLE_LINK = '<link rel="stylesheet" href="style.css">';
const SCRIPT_TAG = '<script src="page.js"></script>';

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function readBuilt(dir: string, name: string): string {
  const path = join(dir, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new Error(`monitor dashboard: ${path} is missing: run npm run build`);
  }
}

/** From the sources, dist/'s copy must be newer than every file in dashboard/, or it is not the page in the tree. */
function checkFresh(): void {
  const built = Math.min(...Object.values(BUILT).map((name) => statSync(join(BUILT_DIR, name)).mtimeMs));
  for (const name of readdirSync(BESIDE)) {
    const source = join(BESIDE, name);
    if (statSync(source).mtimeMs > built) {
      throw new Error(`monitor dashboard: ${source} is newer than its build in ${BUILT_DIR}: run npm run build`);
    }
  }
}

/** Puts `text` inline as <element> where `html` has `tag`, once. */
function inline(html: string, tag: string, element: 'style' | 'script', text: string): string {
  const parts = html.split(tag);
  if (parts.length !== 2) throw new Error(`monitor dashboard: ${BUILT.html} must hold ${tag} once`);
  if (text.toLowerCase().includes(`</${element}`)) {
    throw new Error(`monitor dashboard: its ${element} holds </${element}, which would end it early`);
  }
  return `${parts[0]}<${element}>${text}</${element}>${parts[1]}`;
}

/**
 * Reads the built page (from `dir`, the build's by default), hashing its
 * inline style and script for the CSP; throws, naming the file, if one is gone.
 */
export function loadDashboard(dir = BUILT_DIR): Dashboard {
  const [page, style, script] = [BUILT.html, BUILT.css, BUILT.js].map((name) => readBuilt(dir, name));
  if (FROM_SOURCES && dir === BUILT_DIR) checkFresh();
  const html = inline(inline(page, STYLE_LINK, 'style', style), SCRIPT_TAG, 'script', script);
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ].join('; ');
  const headers = {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': csp,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  };
  return { html, csp, headers, response: () => new Response(html, { status: 200, headers }) };
}
