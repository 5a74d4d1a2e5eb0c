/**
 * What a role measures for its beats: rates, handling latency percentiles,
 * memory and event-loop delay.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const MAX_SAMPLES = 20_000;

export class RoleStats {
  private inCount = 0;
  private outCount = 0;
  private samples: number[] = [];
  private sampleEvery = 1;
  private seen = 0;
  private last = Date.now();
  private loop: IntervalHistogram | undefined;
  readonly started = Date.now();

  constructor() {
    try {
      this.loop = monitorEventLoopDelay({ resolution: 20 });
      this.loop.enable();
    } catch {
      this.loop = undefined;
    }
  }

  countIn(n = 1): void {
    this.inCount += n;
  }

  countOut(n = 1): void {
    this.outCount += n;
  }

  /** Records one request's handling time in ms (sampled when there are many). */
  latency(ms: number): void {
    if (this.seen++ % this.sampleEvery !== 0) return;
    if (this.samples.length >= MAX_SAMPLES) {
      this.sampleEvery *= 2;
      this.samples = this.samples.filter((_, i) => i % 2 === 0);
    }
    this.samples.push(ms);
  }

  /** Takes the numbers of the window since the last call and starts a new one. */
  take(): { inRate: number; outRate: number; p50: number; p99: number; rss: number; loop: number; uptime: number } {
    const now = Date.now();
    const secs = Math.max(0.001, (now - this.last) / 1000);
    const sorted = this.samples.sort((a, b) => a - b);
    const pct = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
    const out = {
      inRate: Math.round(this.inCount / secs),
      outRate: Math.round(this.outCount / secs),
      p50: round3(pct(0.5)),
      p99: round3(pct(0.99)),
      rss: process.memoryUsage.rss(),
      loop: this.loop ? round3(this.loop.mean / 1e6) : 0,
      uptime: Math.round((now - this.started) / 1000),
    };
    this.loop?.reset();
    this.inCount = 0;
    this.outCount = 0;
    this.samples = [];
    this.sampleEvery = 1;
    this.seen = 0;
    this.last = now;
    return out;
  }

  stop(): void {
    this.loop?.disable();
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
