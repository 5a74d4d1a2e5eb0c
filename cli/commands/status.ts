import { Flags } from '@oclif/core';
import { signToken } from '../../runtime/protocol/token.js';
import type { RoleState, StatusReport } from '../../runtime/roles/monitor/roles.js';
import { BaseCommand, dirFlag, EXIT, monitorFlag, shown } from '../base.js';

/** How long the monitor may take to answer. */
const TIMEOUT_MS = 5000;
/** The admin token is minted for this one request. */
const TOKEN_TTL_S = 60;

export default class Status extends BaseCommand {
  static override summary = 'Print every role of the cluster, up or down, from the monitor.';
  static override description = `Asks the monitor (GET /status) for every role it hears beats from, and prints one table: role, id, address, state (up, or down after 3 missed beats), connections, messages in per second, memory (RSS) and uptime.

The monitor's address comes from the running cluster (.fishchat/run.json in the cluster directory), else from its monitor.json, unless --monitor is given. The request carries a short-lived admin token minted from the cluster secret (or FISHCHAT_SECRET).

Exit code: 0 when every role is up, 1 when any role is down, 3 when the monitor cannot be reached.`;
  static override examples = [
    { description: 'The cluster of the current directory', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'The cluster started with `fishchat up chat`', command: '<%= config.bin %> <%= command.id %> --dir chat' },
    { description: "The monitor's JSON, for scripts", command: '<%= config.bin %> <%= command.id %> --json' },
    {
      description: 'A monitor elsewhere (the secret still comes from --dir or FISHCHAT_SECRET)',
      command: '<%= config.bin %> <%= command.id %> --monitor 10.0.0.5:21000',
    },
  ];
  static override flags = {
    dir: dirFlag,
    monitor: monitorFlag,
    json: Flags.boolean({ description: "print the monitor's JSON ({cluster, ts, roles: [...]}) instead of the table", default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    const { config, hint, monitor } = await this.findMonitor(flags.dir, flags.monitor);

    const token = signToken(config.secret, 'fishchat-cli', { admin: true, ttlSeconds: TOKEN_TTL_S });
    const url = `http://${monitor}/status`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      this.fail(`cannot reach the monitor at ${monitor} (${networkReason(err)}) — ${hint}`, EXIT.unreachable);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      const reason = errorMessage(text) ?? `HTTP ${res.status}`;
      if (res.status === 401) {
        this.fail(
          `the monitor at ${monitor} refused the admin token: ${reason} — is ${shown(config.secretFile)} (or FISHCHAT_SECRET) the secret of that cluster?`,
          EXIT.failed,
        );
      }
      this.fail(`the monitor at ${monitor} answered HTTP ${res.status}: ${reason}`, EXIT.failed);
    }
    const report = parseReport(text);
    if (!report) this.fail(`the monitor at ${monitor} answered something that is not a FishChat status (is it the monitor?)`, EXIT.failed);

    if (flags.json) this.log(JSON.stringify(report, null, 2));
    else this.log(table(report.roles));

    const down = report.roles.filter((r) => !r.up);
    if (down.length > 0) {
      const now = Date.now();
      const list = down.map((r) => `${r.role} ${r.id} (last beat ${duration(Math.max(0, Math.round((now - r.lastBeat) / 1000)))} ago)`);
      this.logToStderr(`${down.length} ${down.length === 1 ? 'role is' : 'roles are'} down: ${list.join(', ')}`);
      this.exit(EXIT.failed);
    }
  }
}

function parseReport(text: string): StatusReport | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const b = body as Partial<StatusReport> | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.roles)) return undefined;
  if (!b.roles.every((r) => r && typeof r === 'object' && typeof r.role === 'string' && typeof r.id === 'string' && typeof r.up === 'boolean')) {
    return undefined;
  }
  return b as StatusReport;
}

function errorMessage(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code) return code;
  return e?.cause?.message ?? e?.message ?? String(err);
}

// ---------------------------------------------------------------- the table

const COLUMNS = ['ROLE', 'ID', 'ADDRESS', 'STATE', 'CONNS', 'MSGS/S', 'MEMORY', 'UPTIME'] as const;
/** Right-aligned: the numbers. */
const RIGHT = new Set<string>(['CONNS', 'MSGS/S', 'MEMORY', 'UPTIME']);

/** The roles as an aligned text table; a down role's figures are its last beat's, so they are left out. */
export function table(roles: RoleState[]): string {
  const rows = roles.map((r) => [
    r.role,
    r.id,
    r.addr ?? r.http ?? '-',
    r.up ? 'up' : 'down',
    r.up ? String(num(r.conns)) : '-',
    r.up ? rate(num(r.inRate)) : '-',
    r.up ? bytes(num(r.rss)) : '-',
    r.up ? duration(num(r.uptime)) : '-',
  ]);
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all
    .map((row) => row.map((cell, i) => (RIGHT.has(COLUMNS[i]!) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

/** 0, 2.5, 1234 */
export function rate(perSecond: number): string {
  if (perSecond === 0) return '0';
  return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

/** 512 B, 3.0 KiB, 48.2 MiB, 1.1 GiB */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** 42s, 3m12s, 2h05m, 3d04h */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}
