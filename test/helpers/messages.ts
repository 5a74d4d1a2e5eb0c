/** Reading what a FishClient receives, in tests. */
import type { Msg } from '../../runtime/client/index.js';

/** The next `n` messages from `it`; throws when they do not all come within `timeoutMs` or the iterator ends. */
export async function take(it: AsyncIterator<Msg>, n: number, timeoutMs = 5000): Promise<Msg[]> {
  const out: Msg[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} messages`);
    const r = await Promise.race([it.next(), new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), left))]);
    if (r === 'timeout')
      throw new Error(`got ${out.length} of ${n} messages: ${JSON.stringify(out.map((m) => m.seq))}`);
    if (r.done) throw new Error('iterator ended');
    out.push(r.value);
  }
  return out;
}
