/**
 * GET /metrics: the roles' beats as Prometheus gauges, labelled by role and
 * id. Every role ever seen has `fishchat_up` (1 or 0); the other gauges are
 * written only for roles that are up (a down role's last numbers are stale).
 */
import { writeMetrics, type MetricFamily, type Sample } from '../../metrics/prometheus.js';
import type { RoleState } from './roles.js';

type Gauge = { name: string; help: string; value: (r: RoleState) => number };

const GAUGES: Gauge[] = [
  { name: 'fishchat_connections', help: 'Client connections held by the role.', value: (r) => r.conns },
  {
    name: 'fishchat_messages_in_per_second',
    help: 'Messages (requests) handled per second over the last beat.',
    value: (r) => r.inRate,
  },
  {
    name: 'fishchat_messages_out_per_second',
    help: 'Frames sent per second over the last beat.',
    value: (r) => r.outRate,
  },
];

const TAIL: Gauge[] = [
  { name: 'fishchat_rss_bytes', help: 'Resident set size of the role process, bytes.', value: (r) => r.rss },
  {
    name: 'fishchat_event_loop_delay_ms',
    help: 'Mean event-loop delay over the last beat, milliseconds.',
    value: (r) => r.loop,
  },
  { name: 'fishchat_uptime_seconds', help: 'Seconds since the role started.', value: (r) => r.uptime },
];

export function metricsText(roles: readonly RoleState[]): string {
  const labels = (r: RoleState) => ({ role: r.role, id: r.id });
  const up = roles.filter((r) => r.up);
  const gauge = (g: Gauge): MetricFamily => ({
    name: g.name,
    help: g.help,
    type: 'gauge',
    samples: up.map((r) => ({ labels: labels(r), value: g.value(r) })),
  });
  const latency: Sample[] = [];
  for (const r of up) {
    latency.push({ labels: { ...labels(r), quantile: '0.5' }, value: r.p50 });
    latency.push({ labels: { ...labels(r), quantile: '0.99' }, value: r.p99 });
  }
  return writeMetrics([
    {
      name: 'fishchat_up',
      help: 'Whether the role is up: 1 while it beats, 0 after 3 missed beats.',
      type: 'gauge',
      samples: roles.map((r) => ({ labels: labels(r), value: r.up ? 1 : 0 })),
    },
    ...GAUGES.map(gauge),
    {
      name: 'fishchat_latency_ms',
      help: 'Request handling latency over the last beat, milliseconds, by quantile.',
      type: 'gauge',
      samples: latency,
    },
    ...TAIL.map(gauge),
  ]);
}
