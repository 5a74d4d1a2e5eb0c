import { Flags } from '@oclif/core';
import { signToken } from '../../runtime/protocol/token.js';
import type { RoleState } from '../../runtime/roles/monitor/roles.js';
import { BaseCommand, dirFlag, example, EXIT, monitorFlag } from '../base.js';
import { bytes, duration } from '../format.js';
import { fetchStatus } from '../monitor.js';

/** The admin token is minted for this one request. */
const TOKEN_TTL_S = 60;

export default class Status extends BaseCommand {
  static override summary = 'Print every role of the cluster, up or down, from the monitor.';
  static override description =
    `Asks the monitor (GET /status) for every role it hears beats from, and prints one table: role, id, address, state (up, or down after 3 missed beats), connections, messages in per second, memory (RSS) and uptime.

The monitor's address comes from the running cluster (.fishchat/run.json in the cluster directory), else from its monitor.json, unless --monitor is given. The request carries a short-lived admin token minted from the cluster secret (or FISHCHAT_SECRET).

Exit code: 0 when every role is up, 1 when any role is down, 3 when the monitor cannot be reached.`;
  static override examples = [
    example('The cluster of the current directory'),
    example('The cluster started with `fishchat up chat`', '--dir chat'),
    example("The monitor's JSON, for scripts", '--json'),
    example('A monitor elsewhere (the secret still comes from --dir or FISHCHAT_SECRET)', '--monitor 10.0.0.5:21000'),
  ];
  static override flags = {
    dir: dirFlag,
    monitor: monitorFlag,
    json: Flags.boolean({
      description: "print the monitor's JSON ({cluster, ts, roles: [...]}) instead of the table",
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    const { config, hint, monitor } = await this.findMonitor(flags.dir, flags.monitor);

    const token = signToken(config.secret, 'fishchat-cli', { admin: true, ttlSeconds: TOKEN_TTL_S });
    const got = await fetchStatus(monitor, { authorization: `Bearer ${token}` });
    if (!('report' in got)) this.failMonitor(monitor, { secretFile: config.secretFile, hint }, got);
    const report = got.report;

    if (flags.json) this.log(JSON.stringify(report, null, 2));
    else this.log(table(report.roles));

    const down = report.roles.filter((r) => !r.up);
    if (down.length > 0) {
      const now = Date.now();
      const list = down.map(
        (r) => `${r.role} ${r.id} (last beat ${duration(Math.max(0, Math.round((now - r.lastBeat) / 1000)))} ago)`,
      );
      this.logToStderr(`${down.length} ${down.length === 1 ? 'role is' : 'roles are'} down: ${list.join(', ')}`);
      this.exit(EXIT.failed);
    }
  }
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
    .map((row) =>
      row
        .map((cell, i) => (RIGHT.has(COLUMNS[i]!) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
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
