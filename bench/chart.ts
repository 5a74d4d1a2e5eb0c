/**
 * Draws bench/chart.svg from bench result lines (the `fishchat bench --json` contract).
 *
 *   node --import tsx bench/chart.ts [FILE.jsonl ...] [--out bench/chart.svg]
 *
 * Reads the JSONL files given (default: every bench/results/*.jsonl); of the lines with the same
 * (system, runtime, mode, transport, workload, pairs, inflight, cross) the newest (`at`; on a tie
 * the later line) wins. Plots the p2p results: two panels side by side, msgs/s vs pairs and p99
 * latency (ms, log scale) vs pairs, one line with markers per series (FishChat on Node, FishChat
 * on Node over WebSocket, FishChat on Bun, socket.io, ...), with the machine and the date in the
 * title. Plain SVG, no dependencies,
 * white background.
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
  [r.system, r.runtime ?? 'null', r.mode, transportOf(r), r.workload, r.pairs, r.inflight ?? 1, r.cross ?? false].join(
    '|',
  );

/**
 * The merge rule: per (system, runtime, mode, transport, workload, pairs, inflight, cross) the line with the newest `at`
 * wins; of equal `at`s the later one in `results`. Keeps the order of first appearance.
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
  return [...best.values()].map((v) => v.r);
}

export interface Series {
  key: string;
  label: string;
  color: string;
  marker: 'circle' | 'square' | 'triangle' | 'diamond';
  points: { pairs: number; msgsPerSec: number; p99: number | null; r: BenchResult }[];
}

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

/** Groups p2p results into series (system, runtime, transport, mode), points sorted by pairs. */
export function buildSeries(results: BenchResult[]): Series[] {
  const p2p = results.filter((r) => r.workload === 'p2p' && Number.isFinite(r.pairs) && r.pairs > 0);
  const groups = new Map<string, BenchResult[]>();
  for (const r of p2p) {
    const k = [r.system, r.runtime ?? 'null', transportOf(r), r.mode].join('/');
    groups.get(k)?.push(r) ?? groups.set(k, [r]);
  }
  const modesPerSystem = new Map<string, Set<string>>();
  for (const r of p2p)
    (modesPerSystem.get(r.system) ?? modesPerSystem.set(r.system, new Set()).get(r.system)!).add(r.mode);
  const series: Series[] = [];
  let extra = 0;
  const order = (k: string): number => {
    const [s, rt, tr] = k.split('/');
    const i = PALETTE.findIndex((p) => p.match(s!, rt!, tr!));
    return i < 0 ? PALETTE.length : i;
  };
  for (const k of [...groups.keys()].sort((a, b) => order(a) - order(b) || a.localeCompare(b))) {
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
    const pal = PALETTE.find((p) => p.match(system, rt, tr));
    const color = pal?.color ?? EXTRA[extra++ % EXTRA.length]!;
    const marker = pal?.marker ?? 'diamond';
    const points = rs
      .map((r) => ({
        pairs: r.pairs,
        msgsPerSec: r.msgsPerSec,
        p99: r.latencyMs && r.latencyMs.p99 > 0 ? r.latencyMs.p99 : null,
        r,
      }))
      .sort((a, b) => a.pairs - b.pairs);
    series.push({ key: k, label, color, marker, points });
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

/** The SVG of the two panels for these (already merged) results. */
export function renderSvg(results: BenchResult[], opts: ChartOptions = {}): string {
  const series = buildSeries(results);
  const plotted = series.flatMap((s) => s.points.map((p) => p.r));
  const W = 1100;
  const H = 552;
  const top = 132;
  const plotH = 330;
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
  const title = opts.title ?? 'FishChat vs socket.io: p2p messages between two servers';
  o.push(
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="19" font-weight="600" fill="#111111">${esc(title)}</text>`,
  );
  const params: string[] = [];
  const list = (vs: unknown[]) => vs.join('/');
  if (plotted.length) {
    const cross = distinct(plotted, (r) => r.cross);
    if (cross.length === 1) params.push(cross[0] ? 'receiver on the other server' : 'receiver on the same server');
    const sz = distinct(plotted, (r) => r.size);
    if (sz.length) params.push(`${list(sz)} B`);
    const inf = distinct(plotted, (r) => r.inflight);
    if (inf.length) params.push(`inflight ${list(inf)}`);
    const d = distinct(plotted, (r) => r.duration);
    const wu = distinct(plotted, (r) => r.warmup);
    if (d.length) params.push(`${list(d)} s measured` + (wu.length ? ` after ${list(wu)} s warm-up` : ''));
  }
  o.push(
    `<text x="${W / 2}" y="52" text-anchor="middle" font-size="13" fill="#333333">${esc(`${machine} · ${date}${params.length ? ' · ' + params.join(', ') : ''}`)}</text>`,
  );

  // Legend, centred under the title.
  const items = series.map((s) => ({ s, w: 34 + s.label.length * 7.4 }));
  const legendW = items.reduce((a, i) => a + i.w + 18, -18);
  let lx = (W - legendW) / 2;
  o.push(`<g class="legend">`);
  for (const { s, w } of items) {
    o.push(
      `<line x1="${lx.toFixed(1)}" y1="78" x2="${(lx + 26).toFixed(1)}" y2="78" stroke="${s.color}" stroke-width="2.5"/>`,
    );
    o.push(marker(s.marker, lx + 13, 78, s.color, ''));
    o.push(`<text x="${(lx + 34).toFixed(1)}" y="82.5" fill="#111111">${esc(s.label)}</text>`);
    lx += w + 18;
  }
  o.push(`</g>`);

  const allPairs = series.flatMap((s) => s.points.map((p) => p.pairs));
  const xMin = Math.min(...allPairs);
  const xMax = Math.max(...allPairs);
  const xLog = allPairs.length > 0 && xMax / xMin >= 20;
  const xTicks = allPairs.length === 0 ? [0, 1] : xLog ? logTicks(xMin, xMax) : niceTicks(0, xMax);
  const xLo = xLog ? xTicks[0]! : 0;
  const xHi = xTicks[xTicks.length - 1]!;
  const xPos = (v: number) =>
    (xLog ? (Math.log10(v) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo)) : (v - xLo) / (xHi - xLo)) * plotW;

  const panels: Panel[] = [
    {
      id: 'throughput',
      title: 'Throughput (delivered msgs/s, higher is better)',
      yLabel: 'msgs/s',
      log: false,
      value: (p) => p.msgsPerSec,
      fmt: fmtCount,
    },
    {
      id: 'p99',
      title: 'p99 latency (ms, log scale, lower is better)',
      yLabel: 'p99 latency (ms)',
      log: true,
      value: (p) => p.p99,
      fmt: fmtMs,
    },
  ];
  panels.forEach((panel, pi) => {
    const ox = pi * (panelW + 10) + left;
    const oy = top;
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
      (panel.log ? (Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo)) : (v - yLo) / (yHi - yLo)) *
        plotH;
    o.push(`<g class="panel" data-panel="${panel.id}" transform="translate(${ox},${oy})">`);
    o.push(
      `<text x="${plotW / 2}" y="-14" text-anchor="middle" font-size="14" font-weight="600" fill="#111111">${esc(panel.title)}</text>`,
    );
    o.push(`<rect x="0" y="0" width="${plotW}" height="${plotH}" fill="#ffffff" stroke="#444444" stroke-width="1"/>`);
    for (const t of yTicks) {
      const y = yPos(t).toFixed(1);
      o.push(`<line x1="0" y1="${y}" x2="${plotW}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>`);
      o.push(`<line x1="-5" y1="${y}" x2="0" y2="${y}" stroke="#444444"/>`);
      o.push(`<text x="-8" y="${(+y + 4.5).toFixed(1)}" text-anchor="end" fill="#333333">${esc(panel.fmt(t))}</text>`);
    }
    for (const t of xTicks) {
      const x = xPos(t).toFixed(1);
      o.push(`<line x1="${x}" y1="0" x2="${x}" y2="${plotH}" stroke="#f0f0f0" stroke-width="1"/>`);
      o.push(`<line x1="${x}" y1="${plotH}" x2="${x}" y2="${plotH + 5}" stroke="#444444"/>`);
      o.push(
        `<text x="${x}" y="${plotH + 20}" text-anchor="middle" fill="#333333">${esc(t.toLocaleString('en-US'))}</text>`,
      );
    }
    o.push(
      `<text x="${plotW / 2}" y="${plotH + 42}" text-anchor="middle" fill="#111111">sender/receiver pairs${xLog ? ' (log scale)' : ''}</text>`,
    );
    o.push(
      `<text transform="translate(-58,${plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111111">${esc(panel.yLabel)}</text>`,
    );
    for (const s of series) {
      const pts = s.points
        .map((p) => ({ p, v: panel.value(p) }))
        .filter((q): q is { p: Series['points'][number]; v: number } => q.v !== null && Number.isFinite(q.v));
      const xy = pts.map((q) => [xPos(q.p.pairs), yPos(q.v)] as const);
      o.push(`<g class="series" data-series="${esc(s.key)}">`);
      if (xy.length > 1)
        o.push(
          `<polyline fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round" points="${xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
        );
      pts.forEach((q, i) => {
        const [x, y] = xy[i]!;
        const attrs = `class="point" data-x="${q.p.pairs}" data-y="${q.v}"`;
        o.push(
          `<g>${marker(s.marker, x, y, s.color, attrs)}<title>${esc(`${s.label}, ${q.p.pairs} pairs: ${panel.fmt(q.v)} ${panel.id === 'p99' ? 'ms' : 'msgs/s'}`)}</title></g>`,
        );
      });
      o.push(`</g>`);
    }
    o.push(`</g>`);
  });
  if (series.length === 0)
    o.push(
      `<text x="${W / 2}" y="${top + plotH / 2}" text-anchor="middle" font-size="16" fill="#333333">no p2p results</text>`,
    );
  const sioVersion = distinct(
    plotted.filter((r) => r.system === 'socketio'),
    (r) => r.version,
  ).join('/');
  const foot = `servers, Redis and load generator share the same ${m ? m.cpus + ' cores' : 'machine'}. FishChat: fishchat bench, one process per role over Redis (raw TCP unless said). socket.io${sioVersion ? ' ' + sioVersion : ''}: two nodes + @socket.io/redis-adapter (bench/peers/socketio).`;
  o.push(`<text x="${W / 2}" y="${H - 14}" text-anchor="middle" font-size="11.5" fill="#555555">${esc(foot)}</text>`);
  o.push(`</svg>`);
  return o.join('\n') + '\n';
}

// ------------------------------------------------------------------ command line

function main(argv: string[]): number {
  const files: string[] = [];
  let out = join(import.meta.dirname, 'chart.svg');
  let inflight = 1;
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
        'Usage: node --import tsx bench/chart.ts [FILE.jsonl ...] [--inflight 1] [--out bench/chart.svg]\n(plots the cross-server p2p results of one --inflight, default 1)\n',
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
  // One chart compares like with like: cross-server p2p at one inflight.
  const merged = mergeLatest(all).filter(
    (r) => r.workload !== 'p2p' || ((r.inflight ?? 1) === inflight && r.cross === true),
  );
  const series = buildSeries(merged);
  if (series.length === 0) {
    process.stderr.write(`chart: no p2p results in ${files.length} file(s)\n`);
    return 1;
  }
  writeFileSync(out, renderSvg(merged));
  process.stdout.write(
    `chart: ${all.length} lines from ${files.length} file(s), ${merged.length} after the merge; wrote ${out}\n`,
  );
  for (const s of series)
    process.stdout.write(
      `  ${s.label}: ${s.points.map((p) => `${p.pairs} pairs ${fmtCount(p.msgsPerSec)} msgs/s p99 ${p.p99 === null ? '-' : fmtMs(p.p99) + ' ms'}`).join('; ')}\n`,
    );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  process.exitCode = main(process.argv.slice(2));
