/**
 * Draws bench/chart.svg from bench result lines (the `fishchat bench --json` contract).
 *
 *   node --import tsx bench/chart.ts [FILE.jsonl ...] [--out bench/chart.svg]
 *
 * Reads the JSONL files given (default: every bench/results/*.jsonl); of the lines with the same
 * (system, runtime, mode, transport, workload, pairs, topicMembers, inflight, cross) the newest
 * (`at`; on a tie the later line) wins, and when it comes from a bench:compare run with rounds
 * (its `run` field), the median of that run's rounds (msgs/s and each latency percentile) is
 * plotted. A row of two panels per workload, FishChat beside socket.io: p2p (msgs/s vs pairs and
 * p99 latency, ms, log scale, vs pairs) and topic fan-out (deliveries/s and p99 vs topic
 * members); one line with markers per series (FishChat on Node, FishChat on Node over WebSocket,
 * FishChat on Bun, socket.io, ...; with more than one inflight value, one series per inflight,
 * dashed beyond the first), with the machine and the date in the title. Plain SVG, no
 * dependencies, white background.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The fields of a result line the chart uses (the rest of the contract is carried along). */
export interface BenchResult {
  system: string;
  version?: string;
  runtime: string | null;
  mode: string;
  /** tcp or ws; absent in lines written before WebSocket (FishChat: tcp; socket.io: ws) */
  transport?: string;
  workload: string;
  pairs: number;
  topicMembers?: number;
  publishers?: number;
  cross?: boolean;
  size?: number;
  inflight?: number;
  duration?: number;
  warmup?: number;
  msgsPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number } | null;
  processes?: { name: string; pid: number; cpuPct: number; rssMiB: number }[];
  machine?: { cpus: number; model: string; memGiB: number; os: string; node: string };
  at: string;
  /** bench:compare: the invocation this line belongs to, and its round */
  run?: string;
  round?: number;
  /** bench:compare: CPU (% of one core) the rest of the machine used over the window */
  otherCpuPct?: number;
  /** bench:compare: the rounds it was asked for */
  rounds?: number;
  /** set by mergeLatest: how many rounds (lines) the plotted median is of */
  medianOf?: number;
}

/** Parses JSONL text; blank lines are skipped; a line that is not a result is an error naming it. */
export function parseJsonl(text: string, source = 'input'): BenchResult[] {
  const out: BenchResult[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
    const r = v as Partial<BenchResult>;
    if (
      !r ||
      typeof r !== 'object' ||
      typeof r.system !== 'string' ||
      typeof r.workload !== 'string' ||
      typeof r.msgsPerSec !== 'number' ||
      typeof r.at !== 'string'
    )
      throw new Error(`${source}:${i + 1}: not a bench result (needs system, workload, msgsPerSec, at)`);
    out.push(r as BenchResult);
  });
  return out;
}

/** A line's transport: its own, else what that system used before the field existed. */
export const transportOf = (r: BenchResult): string => r.transport ?? (r.system === 'socketio' ? 'ws' : 'tcp');

export const mergeKey = (r: BenchResult): string =>
  [
    r.system,
    r.runtime ?? 'null',
    r.mode,
    transportOf(r),
    r.workload,
    r.pairs,
    r.topicMembers ?? 0,
    r.inflight ?? 1,
    r.cross ?? false,
  ].join('|');

/** The median of the finite values (the mean of the middle two of an even count); NaN for none. */
export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/**
 * The merge rule: per (system, runtime, mode, transport, workload, pairs, topicMembers, inflight, cross) the line with
 * the newest `at` wins; of equal `at`s the later one in `results`. When the winner has a `run` (bench:compare), the
 * lines of that key and run are its rounds: the result is the winner with msgsPerSec and each latency percentile the
 * median of theirs, and `medianOf` their count. Keeps the order of first appearance.
 */
export function mergeLatest(results: BenchResult[]): BenchResult[] {
  const best = new Map<string, { r: BenchResult; t: number }>();
  for (const r of results) {
    const parsed = Date.parse(r.at);
    const t = Number.isNaN(parsed) ? -Infinity : parsed;
    const k = mergeKey(r);
    const prev = best.get(k);
    if (!prev || t >= prev.t) best.set(k, { r, t });
  }
  return [...best.entries()].map(([k, { r }]) => {
    if (typeof r.run !== 'string') return r;
    const rounds = results.filter((x) => x.run === r.run && mergeKey(x) === k);
    if (rounds.length < 2) return r;
    const lat = rounds.map((x) => x.latencyMs).filter((l): l is NonNullable<BenchResult['latencyMs']> => !!l);
    const med = (f: (l: NonNullable<BenchResult['latencyMs']>) => number) => median(lat.map(f));
    return {
      ...r,
      msgsPerSec: median(rounds.map((x) => x.msgsPerSec)),
      latencyMs:
        lat.length === 0
          ? null
          : {
              p50: med((l) => l.p50),
              p90: med((l) => l.p90),
              p99: med((l) => l.p99),
              p999: med((l) => l.p999),
              max: med((l) => l.max),
            },
      otherCpuPct: median(rounds.map((x) => x.otherCpuPct ?? Number.NaN)),
      medianOf: rounds.length,
    };
  });
}

export interface Series {
  key: string;
  label: string;
  /** the label without the inflight: one legend entry per system, runtime, transport */
  base: string;
  /** the inflight of every point when the workload has several, else undefined */
  inflight?: number;
  color: string;
  marker: 'circle' | 'square' | 'triangle' | 'diamond';
  /** dashed: an inflight value beyond the first of its workload */
  dashed: boolean;
  /** x: pairs (p2p) or topic members (topic) */
  points: { x: number; msgsPerSec: number; p99: number | null; r: BenchResult }[];
}

/** The x of a line in its workload's panels: pairs for p2p, topic members for topic. */
const xOf = (r: BenchResult): number => (r.workload === 'topic' ? (r.topicMembers ?? 0) : r.pairs);

const RUNTIME_NAMES: Record<string, string> = { node: 'Node', bun: 'Bun', deno: 'Deno' };
const PALETTE: {
  match: (s: string, rt: string, tr: string) => boolean;
  color: string;
  marker: Series['marker'];
}[] = [
  { match: (s, rt, tr) => s === 'fishchat' && rt === 'node' && tr === 'tcp', color: '#1f5fbf', marker: 'circle' },
  { match: (s, rt, tr) => s === 'fishchat' && rt === 'node' && tr === 'ws', color: '#74a9f0', marker: 'circle' },
  { match: (s, rt, tr) => s === 'fishchat' && rt === 'bun' && tr === 'tcp', color: '#d9480f', marker: 'square' },
  { match: (s, rt, tr) => s === 'fishchat' && rt === 'bun' && tr === 'ws', color: '#f59f6a', marker: 'square' },
  { match: (s, rt) => s === 'fishchat' && rt === 'deno', color: '#6741d9', marker: 'diamond' },
  { match: (s) => s === 'socketio', color: '#2b8a3e', marker: 'triangle' },
];
const EXTRA = ['#c2255c', '#0b7285', '#5c940d', '#862e9c', '#495057'];

/**
 * Groups one workload's results (p2p by default) into series (system, runtime, transport, mode, and inflight when the
 * workload has more than one inflight value), points sorted by x (pairs; topic: members).
 */
export function buildSeries(results: BenchResult[], workload = 'p2p'): Series[] {
  const rs0 = results.filter((r) => r.workload === workload && Number.isFinite(xOf(r)) && xOf(r) > 0);
  const inflights = [...new Set(rs0.map((r) => r.inflight ?? 1))].sort((a, b) => a - b);
  const byInflight = inflights.length > 1;
  const groups = new Map<string, BenchResult[]>();
  for (const r of rs0) {
    const k = [r.system, r.runtime ?? 'null', transportOf(r), r.mode, ...(byInflight ? [r.inflight ?? 1] : [])].join(
      '/',
    );
    groups.get(k)?.push(r) ?? groups.set(k, [r]);
  }
  const modesPerSystem = new Map<string, Set<string>>();
  for (const r of rs0)
    (modesPerSystem.get(r.system) ?? modesPerSystem.set(r.system, new Set()).get(r.system)!).add(r.mode);
  const series: Series[] = [];
  let extra = 0;
  const extraColor = new Map<string, string>();
  const order = (k: string): number => {
    const [s, rt, tr] = k.split('/');
    const i = PALETTE.findIndex((p) => p.match(s!, rt!, tr!));
    return i < 0 ? PALETTE.length : i;
  };
  const inflightOf = (k: string): number => Number(k.split('/')[4] ?? 1);
  for (const k of [...groups.keys()].sort(
    (a, b) => inflightOf(a) - inflightOf(b) || order(a) - order(b) || a.localeCompare(b),
  )) {
    const rs = groups.get(k)!;
    const { system, runtime, mode } = rs[0]!;
    const tr = transportOf(rs[0]!);
    const rt = runtime ?? 'null';
    const rtName = runtime ? (RUNTIME_NAMES[runtime] ?? runtime) : 'unknown runtime';
    let label =
      system === 'fishchat'
        ? `FishChat on ${rtName}`
        : system === 'socketio'
          ? 'socket.io' + (rt === 'node' ? '' : ` on ${rtName}`)
          : `${system} on ${rtName}`;
    if (system === 'fishchat' && tr === 'ws') label += ' over WebSocket';
    if ((modesPerSystem.get(system)?.size ?? 0) > 1 || (system === 'fishchat' && mode !== 'redis'))
      label += ` (${mode})`;
    const baseLabel = label;
    if (byInflight) label += `, inflight ${rs[0]!.inflight ?? 1}`;
    const pal = PALETTE.find((p) => p.match(system, rt, tr));
    const base = k.split('/').slice(0, 4).join('/');
    const color = pal?.color ?? extraColor.get(base) ?? extraColor.set(base, EXTRA[extra++ % EXTRA.length]!).get(base)!;
    const marker = pal?.marker ?? 'diamond';
    const points = rs
      .map((r) => ({
        x: xOf(r),
        msgsPerSec: r.msgsPerSec,
        p99: r.latencyMs && r.latencyMs.p99 > 0 ? r.latencyMs.p99 : null,
        r,
      }))
      .sort((a, b) => a.x - b.x);
    series.push({
      key: k,
      label,
      base: baseLabel,
      inflight: byInflight ? (rs[0]!.inflight ?? 1) : undefined,
      color,
      marker,
      dashed: byInflight && (rs[0]!.inflight ?? 1) !== inflights[0],
      points,
    });
  }
  return series;
}

// ------------------------------------------------------------------ scales and ticks

/** Linear "nice" ticks from 0 (or min) to at least max. */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let v = start; v < max + step * 0.999; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

/** Log-scale ticks covering [min, max]: decades, with 2 and 5 in between when the range is short. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  if (hi === lo) hi = lo + 1;
  const mults = hi - lo <= 3 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++)
    for (const m of mults) {
      const v = m * 10 ** e;
      if (e === hi && m > 1) break;
      ticks.push(Number(v.toPrecision(6)));
    }
  // Trim the ticks outside the data, but keep one on each side.
  let a = 0;
  while (a + 1 < ticks.length && ticks[a + 1]! <= min) a++;
  let b = ticks.length - 1;
  while (b - 1 > a && ticks[b - 1]! >= max) b--;
  return ticks.slice(a, b + 1);
}

export function fmtCount(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}
export function fmtMs(v: number): string {
  return v >= 1 ? `${+v.toPrecision(4)}` : `${+v.toPrecision(2)}`;
}

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// ------------------------------------------------------------------ SVG

export interface ChartOptions {
  title?: string;
  /** Date shown in the title (default: the newest `at` among the plotted results). */
  date?: string;
}

function marker(kind: Series['marker'], x: number, y: number, color: string, attrs: string): string {
  const r = 4.5;
  const f = (n: number) => n.toFixed(1);
  switch (kind) {
    case 'circle':
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${r}" fill="${color}" stroke="#ffffff" stroke-width="1.2" ${attrs}/>`;
    case 'square':
      return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}" stroke="#ffffff" stroke-width="1.2" ${attrs}/>`;
    case 'triangle':
      return `<polygon points="${f(x)},${f(y - r - 1)} ${f(x + r + 1)},${f(y + r)} ${f(x - r - 1)},${f(y + r)}" fill="${color}" stroke="#ffffff" stroke-width="1.2" ${attrs}/>`;
    default:
      return `<polygon points="${f(x)},${f(y - r - 1)} ${f(x + r + 1)},${f(y)} ${f(x)},${f(y + r + 1)} ${f(x - r - 1)},${f(y)}" fill="${color}" stroke="#ffffff" stroke-width="1.2" ${attrs}/>`;
  }
}

interface Panel {
  id: string;
  title: string;
  yLabel: string;
  log: boolean;
  value: (p: Series['points'][number]) => number | null;
  fmt: (v: number) => string;
}

/** Distinct values of a field among results, for the subtitle ("inflight 1" or "inflight 1/8"). */
function distinct<T>(rs: BenchResult[], f: (r: BenchResult) => T | undefined): T[] {
  return [...new Set(rs.map(f).filter((v): v is T => v !== undefined && v !== null))];
}

/** The workloads a chart has a row for, in order, and what their panels say. */
const ROWS: { workload: string; name: string; short: string; rate: string; x: string; idPrefix: string }[] = [
  {
    workload: 'p2p',
    name: 'p2p between two servers',
    short: 'p2p',
    rate: 'msgs/s',
    x: 'sender/receiver pairs',
    idPrefix: '',
  },
  {
    workload: 'topic',
    name: 'topic fan-out, members on two servers',
    short: 'topic fan-out',
    rate: 'deliveries/s',
    x: 'topic members',
    idPrefix: 'topic-',
  },
];

/** A row whose results all have one x (one pairs value, one member count) is drawn as grouped bars. */
const barsMode = (series: Series[]): boolean => new Set(series.flatMap((s) => s.points.map((p) => p.x))).size === 1;

/**
 * The SVG for these (already merged) results: a row of two panels (throughput, p99) per workload
 * that has results (p2p first; an empty chart has the p2p row).
 */
export function renderSvg(results: BenchResult[], opts: ChartOptions = {}): string {
  const rows = ROWS.map((row) => ({ ...row, series: buildSeries(results, row.workload) })).filter(
    (row, i) => row.series.length > 0 || i === 0,
  );
  if (rows.length > 1 && rows[0]!.series.length === 0) rows.shift();
  const plotted = rows.flatMap((row) => row.series.flatMap((s) => s.points.map((p) => p.r)));
  const W = 1100;
  const plotH = 330;
  const rowGap = 110;
  // the legend's lines (below) push the plots down
  const legendRows = (() => {
    const labels = new Set<string>();
    const inflights = new Set<number>();
    for (const row of rows)
      for (const s of row.series) {
        labels.add(s.base);
        if (s.inflight !== undefined && !barsMode(row.series)) inflights.add(s.inflight);
      }
    let n = 1;
    let w = -18;
    for (const l of [...labels, ...[...inflights].map((k) => `p2p inflight ${k}`)]) {
      const iw = 34 + l.length * 7.4;
      if (w + 18 + iw > W - 40 && w > 0) {
        n++;
        w = -18;
      }
      w += 18 + iw;
    }
    return n;
  })();
  const top = 132 + (legendRows - 1) * 22;
  const H = top + rows.length * plotH + (rows.length - 1) * rowGap + 105;
  const panelW = 545;
  const left = 78;
  const plotW = panelW - left - 22;
  const font = `font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"`;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${font} font-size="13">`,
  );
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);

  const m = plotted.find((r) => r.machine)?.machine;
  // biome-ignore lint/complexity/useMathMinMax: `at` is an ISO date string, compared as text
  const newest = plotted.reduce((a, r) => (r.at > a ? r.at : a), '');
  const date = opts.date ?? (newest ? newest.slice(0, 10) : new Date().toISOString().slice(0, 10));
  const machine = m ? `${m.cpus} × ${m.model}, ${m.memGiB} GiB` : 'machine unknown';
  const title =
    opts.title ??
    (rows.length === 1 && rows[0]!.workload === 'p2p'
      ? 'FishChat vs socket.io: p2p messages between two servers'
      : `FishChat vs socket.io: ${rows.map((r) => r.name).join('; ')}`);
  o.push(
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="19" font-weight="600" fill="#111111">${esc(title)}</text>`,
  );
  const params: string[] = [];
  const list = (vs: unknown[]) => vs.join('/');
  if (plotted.length) {
    const p2p = plotted.filter((r) => r.workload === 'p2p');
    const cross = distinct(p2p, (r) => r.cross);
    if (cross.length === 1) params.push(cross[0] ? 'receiver on the other server' : 'receiver on the same server');
    const pubs = distinct(
      plotted.filter((r) => r.workload === 'topic'),
      (r) => r.publishers,
    );
    if (pubs.length) params.push(`${list(pubs)} publishers`);
    const sz = distinct(plotted, (r) => r.size);
    if (sz.length) params.push(`${list(sz)} B`);
    const inf = distinct(plotted, (r) => r.inflight);
    if (inf.length) params.push(`inflight ${list(inf.sort((a, b) => a - b))}`);
    const d = distinct(plotted, (r) => r.duration);
    const wu = distinct(plotted, (r) => r.warmup);
    if (d.length) params.push(`${list(d)} s measured` + (wu.length ? ` after ${list(wu)} s warm-up` : ''));
    const rounds = distinct(plotted, (r) => r.medianOf);
    if (rounds.length) params.push(`median of ${list(rounds)} rounds`);
    // On a shared machine other work skews every number: say how much there was.
    const other = plotted
      .map((r) => r.otherCpuPct)
      .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (other.length)
      params.push(
        `other work on the machine ${Math.round(Math.min(...other))}–${Math.round(Math.max(...other))}% of one core`,
      );
  }
  o.push(
    `<text x="${W / 2}" y="52" text-anchor="middle" font-size="13" fill="#333333">${esc(`${machine} · ${date}${params.length ? ' · ' + params.join(', ') : ''}`)}</text>`,
  );

  // Legend, centred under the title, wrapped: every system once (colour and marker), then, when
  // there are several inflight values, what the solid and the dashed lines are.
  const entries: { label: string; color: string; marker?: Series['marker']; dashed: boolean }[] = [];
  for (const row of rows)
    for (const s of row.series)
      if (!entries.some((x) => x.label === s.base))
        entries.push({ label: s.base, color: s.color, marker: s.marker, dashed: false });
  const styles = new Map<number, boolean>();
  for (const row of rows)
    if (!barsMode(row.series))
      for (const s of row.series) if (s.inflight !== undefined) styles.set(s.inflight, s.dashed);
  for (const [k, dashed] of [...styles].sort((x, y) => x[0] - y[0]))
    entries.push({ label: `p2p inflight ${k}`, color: '#555555', dashed });
  const legendLines: { e: (typeof entries)[number]; w: number }[][] = [[]];
  let lineW = -18;
  for (const e of entries) {
    const w = 34 + e.label.length * 7.4;
    if (lineW + 18 + w > W - 40 && legendLines[legendLines.length - 1]!.length > 0) {
      legendLines.push([]);
      lineW = -18;
    }
    legendLines[legendLines.length - 1]!.push({ e, w });
    lineW += 18 + w;
  }
  o.push(`<g class="legend">`);
  legendLines.forEach((line, li) => {
    const y = 78 + li * 22;
    let lx = (W - line.reduce((a, i) => a + i.w + 18, -18)) / 2;
    for (const { e, w } of line) {
      o.push(
        `<line x1="${lx.toFixed(1)}" y1="${y}" x2="${(lx + 26).toFixed(1)}" y2="${y}" stroke="${e.color}" stroke-width="2.5"${e.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
      if (e.marker) o.push(marker(e.marker, lx + 13, y, e.color, ''));
      o.push(`<text x="${(lx + 34).toFixed(1)}" y="${y + 4.5}" fill="#111111">${esc(e.label)}</text>`);
      lx += w + 18;
    }
  });
  o.push(`</g>`);

  rows.forEach((row, ri) => {
    const series = row.series;
    const oy = top + ri * (plotH + rowGap);
    const bars = barsMode(series);
    // bars: a group per inflight value (one group when the workload has one), a bar per system in the legend's order
    const cats = [...new Set(series.map((s) => s.inflight ?? 0))].sort((a, b) => a - b);
    const bases = entries.map((e) => e.label).filter((l) => series.some((s) => s.base === l));
    const catW = plotW / Math.max(1, cats.length);
    const groupW = catW * 0.78;
    const barW = groupW / Math.max(1, bases.length);
    const allX = series.flatMap((s) => s.points.map((p) => p.x));
    const xMin = Math.min(...allX);
    const xMax = Math.max(...allX);
    const xLog = allX.length > 0 && xMax / xMin >= 20;
    const xTicks = allX.length === 0 ? [0, 1] : xLog ? logTicks(xMin, xMax) : niceTicks(0, xMax);
    const xLo = xLog ? xTicks[0]! : 0;
    const xHi = xTicks[xTicks.length - 1]!;
    const xPos = (v: number) =>
      (xLog ? (Math.log10(v) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo)) : (v - xLo) / (xHi - xLo)) *
      plotW;
    const prefix = rows.length > 1 || row.workload !== 'p2p' ? `${row.short}: ` : '';
    const panels: Panel[] = [
      {
        id: `${row.idPrefix}throughput`,
        title: `${prefix}throughput (${row.workload === 'topic' ? 'deliveries/s' : 'delivered msgs/s'}, higher is better)`,
        yLabel: row.rate,
        log: false,
        value: (p) => p.msgsPerSec,
        fmt: fmtCount,
      },
      {
        id: `${row.idPrefix}p99`,
        title: `${prefix}p99 latency (ms, log scale, lower is better)`,
        yLabel: 'p99 latency (ms)',
        log: true,
        value: (p) => p.p99,
        fmt: fmtMs,
      },
    ];
    panels.forEach((panel, pi) => {
      const ox = pi * (panelW + 10) + left;
      const vals = series
        .flatMap((s) => s.points.map(panel.value))
        .filter((v): v is number => v !== null && Number.isFinite(v));
      const vMax = vals.length ? Math.max(...vals) : 1;
      const vMin = vals.length ? Math.min(...vals) : 1;
      const yTicks = panel.log ? logTicks(Math.max(vMin, 1e-3), Math.max(vMax, 1e-3)) : niceTicks(0, vMax * 1.05);
      const yLo = panel.log ? yTicks[0]! : 0;
      const yHi = yTicks[yTicks.length - 1]!;
      const yPos = (v: number) =>
        plotH -
        (panel.log
          ? (Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))
          : (v - yLo) / (yHi - yLo)) *
          plotH;
      o.push(`<g class="panel" data-panel="${panel.id}" transform="translate(${ox},${oy})">`);
      o.push(
        `<text x="${plotW / 2}" y="-14" text-anchor="middle" font-size="${prefix ? 13 : 14}" font-weight="600" fill="#111111">${esc(panel.title)}</text>`,
      );
      o.push(`<rect x="0" y="0" width="${plotW}" height="${plotH}" fill="#ffffff" stroke="#444444" stroke-width="1"/>`);
      for (const t of yTicks) {
        const y = yPos(t).toFixed(1);
        o.push(`<line x1="0" y1="${y}" x2="${plotW}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>`);
        o.push(`<line x1="-5" y1="${y}" x2="0" y2="${y}" stroke="#444444"/>`);
        o.push(
          `<text x="-8" y="${(+y + 4.5).toFixed(1)}" text-anchor="end" fill="#333333">${esc(panel.fmt(t))}</text>`,
        );
      }
      if (bars) {
        const x0 = series[0]?.points[0]?.x ?? 0;
        const what = `${x0.toLocaleString('en-US')} ${row.workload === 'topic' ? 'members' : 'pairs'}`;
        cats.forEach((c, ci) => {
          const cx = ((ci + 0.5) * catW).toFixed(1);
          o.push(
            `<text x="${cx}" y="${plotH + 20}" text-anchor="middle" fill="#333333">${esc(c ? `inflight ${c}, ${what}` : what)}</text>`,
          );
        });
      }
      for (const t of bars ? [] : xTicks) {
        const x = xPos(t).toFixed(1);
        o.push(`<line x1="${x}" y1="0" x2="${x}" y2="${plotH}" stroke="#f0f0f0" stroke-width="1"/>`);
        o.push(`<line x1="${x}" y1="${plotH}" x2="${x}" y2="${plotH + 5}" stroke="#444444"/>`);
        o.push(
          `<text x="${x}" y="${plotH + 20}" text-anchor="middle" fill="#333333">${esc(t.toLocaleString('en-US'))}</text>`,
        );
      }
      o.push(
        `<text x="${plotW / 2}" y="${plotH + 42}" text-anchor="middle" fill="#111111">${esc(row.x)}${xLog && !bars ? ' (log scale)' : ''}</text>`,
      );
      o.push(
        `<text transform="translate(-58,${plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111111">${esc(panel.yLabel)}</text>`,
      );
      for (const s of bars ? series : []) {
        const ci = cats.indexOf(s.inflight ?? 0);
        const bi = bases.indexOf(s.base);
        const p = s.points[0]!;
        const v = panel.value(p);
        o.push(`<g class="series" data-series="${esc(s.key)}">`);
        if (v !== null && Number.isFinite(v)) {
          const x = ci * catW + (catW - groupW) / 2 + bi * barW;
          const y = Math.min(plotH, yPos(v));
          const rounds = p.r.medianOf ? ` (median of ${p.r.medianOf} rounds)` : '';
          o.push(
            `<g><rect class="point" data-x="${p.x}" data-y="${v}" x="${(x + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${(plotH - y).toFixed(1)}" fill="${s.color}"/>` +
              `<title>${esc(`${s.label}, ${p.x} ${row.workload === 'topic' ? 'members' : 'pairs'}: ${panel.fmt(v)} ${panel.log ? 'ms' : row.rate}${rounds}`)}</title></g>`,
          );
          o.push(
            `<text x="${(x + barW / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="10.5" fill="#222222">${esc(panel.fmt(v))}</text>`,
          );
        }
        o.push(`</g>`);
      }
      for (const s of bars ? [] : series) {
        const pts = s.points
          .map((p) => ({ p, v: panel.value(p) }))
          .filter((q): q is { p: Series['points'][number]; v: number } => q.v !== null && Number.isFinite(q.v));
        const xy = pts.map((q) => [xPos(q.p.x), yPos(q.v)] as const);
        o.push(`<g class="series" data-series="${esc(s.key)}">`);
        if (xy.length > 1)
          o.push(
            `<polyline fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
          );
        pts.forEach((q, i) => {
          const [x, y] = xy[i]!;
          const attrs = `class="point" data-x="${q.p.x}" data-y="${q.v}"`;
          const rounds = q.p.r.medianOf ? ` (median of ${q.p.r.medianOf} rounds)` : '';
          o.push(
            `<g>${marker(s.marker, x, y, s.color, attrs)}<title>${esc(`${s.label}, ${q.p.x} ${row.workload === 'topic' ? 'members' : 'pairs'}: ${panel.fmt(q.v)} ${panel.log ? 'ms' : row.rate}${rounds}`)}</title></g>`,
          );
        });
        o.push(`</g>`);
      }
      o.push(`</g>`);
    });
    if (series.length === 0)
      o.push(
        `<text x="${W / 2}" y="${oy + plotH / 2}" text-anchor="middle" font-size="16" fill="#333333">no ${row.workload} results</text>`,
      );
  });
  const sioVersion = distinct(
    plotted.filter((r) => r.system === 'socketio'),
    (r) => r.version,
  ).join('/');
  const foot = [
    `Servers, Redis and load generator share the same ${m ? m.cpus + ' cores' : 'machine'}. FishChat: fishchat bench, one process per role over Redis (raw TCP unless said).`,
    `socket.io${sioVersion ? ' ' + sioVersion : ''}: two nodes + @socket.io/redis-adapter (bench/peers/socketio), websocket.`,
  ];
  for (const [i, line] of foot.entries())
    o.push(
      `<text x="${W / 2}" y="${H - 30 + i * 16}" text-anchor="middle" font-size="11.5" fill="#555555">${esc(line)}</text>`,
    );
  o.push(`</svg>`);
  return o.join('\n') + '\n';
}

// ------------------------------------------------------------------ command line

function main(argv: string[]): number {
  const files: string[] = [];
  let out = join(import.meta.dirname, 'chart.svg');
  let inflight: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = resolve(argv[++i] ?? '');
    else if (a === '--inflight') {
      inflight = Number(argv[++i]);
      if (!Number.isInteger(inflight) || inflight < 1) {
        process.stderr.write('chart: --inflight needs a whole number ≥ 1\n');
        return 2;
      }
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'Usage: node --import tsx bench/chart.ts [FILE.jsonl ...] [--inflight K] [--out bench/chart.svg]\n' +
          '(plots the cross-server p2p and the topic results, FishChat beside socket.io; of one --inflight, default every one;\n' +
          ' lines of a bench:compare run with rounds: the median of the rounds)\n',
      );
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`chart: unknown flag ${a}\n`);
      return 2;
    } else files.push(resolve(a));
  }
  if (files.length === 0) {
    const dir = join(import.meta.dirname, 'results');
    let names: string[] = [];
    try {
      names = readdirSync(dir)
        .filter((n) => n.endsWith('.jsonl'))
        .sort();
    } catch {
      /* no results yet */
    }
    files.push(...names.map((n) => join(dir, n)));
  }
  if (files.length === 0) {
    process.stderr.write('chart: no result files (bench/results/*.jsonl is empty; run npm run bench:compare first)\n');
    return 1;
  }
  let all: BenchResult[] = [];
  try {
    for (const f of files) all = all.concat(parseJsonl(readFileSync(f, 'utf8'), f));
  } catch (e) {
    process.stderr.write(`chart: ${(e as Error).message}\n`);
    return 1;
  }
  // One chart compares like with like: cross-server p2p (and topic), at one inflight when asked.
  const merged = mergeLatest(all).filter(
    (r) => (inflight === undefined || (r.inflight ?? 1) === inflight) && (r.workload !== 'p2p' || r.cross === true),
  );
  const series = [...buildSeries(merged, 'p2p'), ...buildSeries(merged, 'topic')];
  if (series.length === 0) {
    process.stderr.write(`chart: no p2p or topic results in ${files.length} file(s)\n`);
    return 1;
  }
  writeFileSync(out, renderSvg(merged));
  process.stdout.write(
    `chart: ${all.length} lines from ${files.length} file(s), ${merged.length} after the merge; wrote ${out}\n`,
  );
  for (const s of series)
    process.stdout.write(
      `  ${s.label}: ${s.points.map((p) => `${p.r.workload} ${p.x} ${p.r.workload === 'topic' ? 'members' : 'pairs'} ${fmtCount(p.msgsPerSec)}/s p99 ${p.p99 === null ? '-' : fmtMs(p.p99) + ' ms'}${p.r.medianOf ? ` (median of ${p.r.medianOf})` : ''}`).join('; ')}\n`,
    );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  process.exitCode = main(process.argv.slice(2));
