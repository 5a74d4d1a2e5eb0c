/**
 * The msg_server's own memory figure for the idle workload: its `/health`
 * with `?gc=1` (a full GC first, admin token), read before the first
 * connection and after all are logged in; the difference per connection
 * beside the /proc VmRSS one (which has the logins' garbage in it).
 */
import type { MemoryFigure } from '../../runtime/platform/types.js';
import { signToken } from '../../runtime/protocol/token.js';

/** What `/health` says of the msg_server's memory. */
export type ServerMemoryFigure = MemoryFigure;

/** The idle result's `serverMemory` (bench/FORMAT.md). */
export interface ServerMemory {
  /** both figures were measured right after a full GC */
  afterGc: boolean;
  rssPerConnBytes: number;
  heapUsedPerConnBytes: number;
  /** memory outside the JS heap that the runtime knows of (Buffers, ArrayBuffers; socket buffers of native code are not in it) */
  externalPerConnBytes: number;
  before: ServerMemoryFigure;
  after: ServerMemoryFigure;
}

const HEALTH_TIMEOUT_MS = 30_000;
const FIELDS = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const;

/** GET http://<http>/health?gc=1 with an admin token signed with `secret`; its `memory`, checked. */
export async function healthMemory(http: string, secret: string): Promise<ServerMemoryFigure> {
  const token = signToken(secret, 'bench', { admin: true, ttlSeconds: 600 });
  const res = await fetch(`http://${http}/health?gc=1`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
  });
  const body = (await res.json().catch(() => undefined)) as { memory?: Record<string, unknown> } | undefined;
  if (!res.ok) throw new Error(`GET http://${http}/health?gc=1 answered HTTP ${res.status}`);
  const m = body?.memory;
  if (m === undefined || m === null || typeof m !== 'object')
    throw new Error(`GET http://${http}/health?gc=1 has no "memory" object (a msg_server older than this bench?)`);
  for (const k of FIELDS)
    if (typeof m[k] !== 'number' || !Number.isFinite(m[k]))
      throw new Error(`GET http://${http}/health?gc=1: memory.${k} is not a number`);
  if (typeof m.afterGc !== 'boolean')
    throw new Error(`GET http://${http}/health?gc=1: memory.afterGc is not a boolean`);
  return m as unknown as ServerMemoryFigure;
}

/** Bytes per connection between two figures. */
export function perConnection(before: ServerMemoryFigure, after: ServerMemoryFigure, n: number): ServerMemory {
  const per = (k: (typeof FIELDS)[number]) => Math.round((after[k] - before[k]) / n);
  return {
    afterGc: before.afterGc && after.afterGc,
    rssPerConnBytes: per('rss'),
    heapUsedPerConnBytes: per('heapUsed'),
    externalPerConnBytes: per('external'),
    before,
    after,
  };
}
