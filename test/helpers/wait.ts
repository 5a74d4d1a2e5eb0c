/** Waiting in tests: sleep, and polling until something holds. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once `cond()` holds (a promise is awaited), polling every 5 ms; throws after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The first truthy value `f()` resolves to, polling every 10 ms; throws after `ms`. */
export async function untilValue<T>(
  f: () => Promise<T | undefined | false>,
  ms = 3000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * The first value `fn()` gives (awaited) that is neither undefined nor false,
 * polling every 50 ms; throws "`what`: not within `ms` ms" after `ms`.
 */
export async function untilSome<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}
