/**
 * How a process that runs roles (`fishchat up`, `fishchat serve`) is told to
 * stop: the first SIGINT, SIGTERM or SIGHUP asks for a clean stop; a second
 * one means "now", without it.
 */

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export class StopSignals {
  private reason: string | undefined;
  private wake: (() => void) | undefined;
  private watch: ReturnType<typeof setInterval> | undefined;

  /** `again`: a second stop request came (the first one's clean stop is still under way). */
  constructor(
    private readonly again: (signal: string) => void,
    private readonly signals: readonly NodeJS.Signals[] = STOP_SIGNALS,
  ) {
    for (const s of signals) process.on(s, this.request);
  }

  /** Asks for a stop, as a signal does (`why` is said in "stopping (why) …"). */
  readonly request = (why: string): void => {
    if (this.reason !== undefined) {
      this.again(why);
      return;
    }
    this.reason = why;
    this.wake?.();
  };

  /** Resolves with the first stop request (at once when one came already). */
  async wait(): Promise<string> {
    if (this.reason === undefined) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.reason!;
  }

  /**
   * When the process that started this one is gone (even by kill -9), asks for a
   * clean stop instead of running on (FISHCHAT_EXIT_WITH_PARENT=1, set by `fishchat bench`).
   */
  exitWithParent(): void {
    const parent = process.ppid;
    this.watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(this.watch);
      // Its pipes may be gone with it: a write error must not cut the clean stop short.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
      this.request('parent exited');
    }, 500);
    this.watch.unref();
  }

  /** Stops listening for signals. */
  dispose(): void {
    for (const s of this.signals) process.off(s, this.request);
    if (this.watch) clearInterval(this.watch);
  }
}

/** Runs `stop`; should it take longer than `ms`, `late` is called (it typically exits the process). */
export async function stopWithin(ms: number, stop: () => Promise<void>, late: () => void): Promise<void> {
  const timer = setTimeout(late, ms);
  try {
    await stop();
  } finally {
    clearTimeout(timer);
  }
}
