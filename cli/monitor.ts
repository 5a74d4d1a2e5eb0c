/**
 * What `fishchat status` and `fishchat tail` ask the monitor: GET /status
 * with an admin token, and the failures as the user reads them.
 */
import { networkReason } from '../runtime/client/events.js';
import type { StatusReport } from '../runtime/roles/monitor/roles.js';

/** How long the monitor may take to answer GET /status. */
export const STATUS_TIMEOUT_MS = 5000;

/** Why GET /status gave no report: the monitor was not reached, it refused (HTTP status), or it is no monitor. */
export type StatusFailure =
  | { kind: 'unreachable'; reason: string }
  | { kind: 'refused'; status: number; body: string }
  | { kind: 'invalid' };

/** GET http://MONITOR/status: the report, or why there is none. */
export async function fetchStatus(
  monitor: string,
  headers: Record<string, string>,
): Promise<{ report: StatusReport } | StatusFailure> {
  let res: Response;
  try {
    res = await fetch(`http://${monitor}/status`, { headers, signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
  } catch (err) {
    const e = err as { name?: string };
    const timedOut = e?.name === 'TimeoutError' || e?.name === 'AbortError';
    const reason = timedOut ? `no answer within ${STATUS_TIMEOUT_MS / 1000} s` : networkReason(err);
    return { kind: 'unreachable', reason };
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) return { kind: 'refused', status: res.status, body: text };
  const report = parseReport(text);
  return report ? { report } : { kind: 'invalid' };
}

/** The monitor's /status body; undefined when it is not one. */
export function parseReport(text: string): StatusReport | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const b = body as Partial<StatusReport> | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.roles)) return undefined;
  const role = (r: unknown) => {
    const x = r as Partial<Record<string, unknown>> | null;
    if (!x || typeof x !== 'object') return false;
    return typeof x.role === 'string' && typeof x.id === 'string' && typeof x.up === 'boolean';
  };
  return b.roles.every(role) ? (b as StatusReport) : undefined;
}

/** The message of an API error body `{"error": {"message": …}}`. */
export function errorMessage(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}
