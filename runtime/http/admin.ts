/**
 * Admin auth for the manager's and monitor's HTTP APIs (docs/architecture.md
 * "Security"): `Authorization: Bearer <token>`, an HS256 token signed with
 * the cluster secret whose claims carry `adm: true` (`fishchat token --admin`).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { verifyToken } from '../protocol/token.js';

/** The JSON error every admin API answers with: `{ error: { code, message } }`. */
export function jsonError(c: Context, status: ContentfulStatusCode, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status);
}

/** Lets a request through only with a valid admin token; 401 `auth_failed` otherwise. */
export function requireAdmin(secret: string): MiddlewareHandler {
  return async (c, next) => {
    const reason = refuse(secret, c.req.header('authorization'));
    if (reason !== undefined) {
      c.header('WWW-Authenticate', 'Bearer realm="fishchat"');
      return jsonError(c, 401, 'auth_failed', reason);
    }
    await next();
  };
}

/** Why an Authorization header is refused, or undefined when it carries an admin token. */
function refuse(secret: string, header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === '') {
    return 'an admin token is required: send "Authorization: Bearer <token>" (mint one with `fishchat token --admin`)';
  }
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header.trim());
  if (!m) return 'the Authorization header must be "Bearer <token>"';
  const v = verifyToken(secret, m[1]);
  if (!v.ok) return v.reason;
  if (v.claims.adm !== true) return 'the token is not an admin token (mint one with `fishchat token --admin`)';
  return undefined;
}
