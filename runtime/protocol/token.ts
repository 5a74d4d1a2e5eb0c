/**
 * Client tokens (docs/protocol.md §4.1): HS256 JWTs signed with the cluster
 * secret, `sub` = user, `exp` required, 30 s leeway. Admin tokens carry
 * `adm: true` (docs/architecture.md "Security").
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const LEEWAY_S = 30;
const B64URL = /^[A-Za-z0-9_-]+$/;
const HEADER = b64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

export interface TokenClaims {
  sub: string;
  /** expiry, seconds since the Unix epoch */
  exp: number;
  iat?: number;
  adm?: boolean;
}

/** Signs a token for `sub` valid for ttlSeconds (default 1 day). */
export function signToken(
  secret: string,
  sub: string,
  opts: { ttlSeconds?: number; admin?: boolean; now?: number } = {},
): string {
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const claims: TokenClaims = { sub, iat: now, exp: now + (opts.ttlSeconds ?? 86_400) };
  if (opts.admin) claims.adm = true;
  const payload = b64url(Buffer.from(JSON.stringify(claims)));
  const sig = b64url(createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest());
  return `${HEADER}.${payload}.${sig}`;
}

/**
 * Verifies a token: HS256 only, signature, `exp` (with leeway), and `sub`
 * when `user` is given. Returns the claims, or a reason it is refused.
 */
export function verifyToken(
  secret: string,
  token: unknown,
  user?: string,
  now: number = Date.now(),
): { ok: true; claims: TokenClaims } | { ok: false; reason: string } {
  if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'token missing' };
  if (token.length > 4096) return { ok: false, reason: 'token too long' };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'token is not a JWT' };
  const [h, p, s] = parts as [string, string, string];
  // Strict base64url (RFC 7515 §2: no padding, no other alphabet): Buffer's
  // decoder skips stray characters and ignores the padding bits, so a lenient
  // check would accept altered copies of a signature.
  if (!B64URL.test(h) || !B64URL.test(p)) return { ok: false, reason: 'token is not a JWT' };
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'token is not a JWT' };
  }
  if (!header || typeof header !== 'object' || (header as { alg?: unknown }).alg !== 'HS256') {
    return { ok: false, reason: 'token algorithm must be HS256' };
  }
  // Compared as text: the one canonical encoding of the expected signature.
  const expected = Buffer.from(b64url(createHmac('sha256', secret).update(`${h}.${p}`).digest()));
  const given = Buffer.from(s);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'token signature is wrong' };
  }
  if (!claims || typeof claims !== 'object') return { ok: false, reason: 'token claims are not an object' };
  const c = claims as Record<string, unknown>;
  if (typeof c.exp !== 'number' || !Number.isFinite(c.exp)) return { ok: false, reason: 'token has no exp' };
  if (c.exp + LEEWAY_S < now / 1000) return { ok: false, reason: 'token expired' };
  if (typeof c.sub !== 'string') return { ok: false, reason: 'token has no sub' };
  if (user !== undefined && c.sub !== user) return { ok: false, reason: 'token is for another user' };
  return { ok: true, claims: c as unknown as TokenClaims };
}
