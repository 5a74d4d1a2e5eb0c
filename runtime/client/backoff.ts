/**
 * Reconnect delays (docs/protocol.md §3): exponential from `base`, capped at `max`,
 * with full jitter. The first attempt after a plain disconnect is immediate;
 * after a `draining` kick it waits a random time in [0, base], so a drained
 * msg_server's clients do not all reach the next one at once.
 */
export interface BackoffSettings {
  /** ms */
  base: number;
  /** ms */
  max: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { base: 1000, max: 30_000 };

export class Backoff {
  #attempt = 0;

  constructor(
    public settings: BackoffSettings = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Attempts made since the last reset(). */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * The wait before the next attempt, ms: 0 for the first one, then a random
   * time in [0, min(max, base × 2^(n−1))] for attempt n.
   */
  next(): number {
    const n = this.#attempt++;
    if (n === 0) return 0;
    return this.#jitter(Math.min(this.settings.max, this.settings.base * 2 ** Math.min(n - 1, 30)));
  }

  /** The wait before the first attempt after a `draining` kick: random in [0, base]. */
  afterDraining(): number {
    this.#attempt = 2; // that wait was attempt 1's; the next one doubles
    return this.#jitter(Math.min(this.settings.base, this.settings.max));
  }

  /** Connected again: the next disconnect starts over. */
  reset(): void {
    this.#attempt = 0;
  }

  #jitter(ceiling: number): number {
    return Math.floor(this.random() * (ceiling + 1));
  }
}
