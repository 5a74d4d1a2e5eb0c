/** Unicode sparklines for the terminal views: ▁▂▃▄▅▆▇█, one character per value. */

const BARS = '▁▂▃▄▅▆▇█';

/**
 * The last `width` values as bars, scaled to `max` (default: the largest of
 * them), right-aligned (padded with spaces on the left when there are fewer
 * values). Zero is the lowest bar; any value above zero is at least the
 * second, so a trickle is visible.
 */
export function sparkline(values: readonly number[], width: number, max?: number): string {
  if (width <= 0) return '';
  const shown = values.slice(-width).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const top = max ?? Math.max(0, ...shown);
  let out = '';
  for (const v of shown) {
    if (top <= 0 || v <= 0) {
      out += BARS[0];
      continue;
    }
    const i = Math.min(BARS.length - 1, Math.max(1, Math.round((v / top) * (BARS.length - 1))));
    out += BARS[i];
  }
  return out.padStart(width, ' ');
}
