/**
 * An async-iterator queue (NATS.js QueuedIterator style): the producer calls
 * push(), the consumer writes `for await (const x of queue)`. Items are kept
 * in one array that the consumer swaps out whole, so a burst costs no
 * allocation per item. One consumer; breaking out of the loop stops the queue.
 */
export class Queue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #wake: (() => void) | null = null;
  #done = false;
  #error: unknown = undefined;
  #iterating = false;

  /** Items pushed and not yet taken by the consumer. */
  get length(): number {
    return this.#items.length;
  }

  /** True once end() was called or the consumer stopped. */
  get done(): boolean {
    return this.#done;
  }

  /** Adds an item; dropped once the queue is done. */
  push(item: T): void {
    if (this.#done) return;
    this.#items.push(item);
    this.#signal();
  }

  /** No more items: the loop ends after the ones already pushed (or throws `error`, after them). */
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#signal();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new Error('this queue already has a consumer');
    this.#iterating = true;
    try {
      for (;;) {
        if (this.#items.length === 0) {
          if (this.#done) break;
          await new Promise<void>((resolve) => (this.#wake = resolve));
          continue;
        }
        const batch = this.#items;
        this.#items = [];
        for (let i = 0; i < batch.length; i++) yield batch[i]!;
      }
      if (this.#error !== undefined) throw this.#error;
    } finally {
      // The consumer stopped (break, return, throw) or the queue ended.
      this.#done = true;
      this.#items = [];
      this.#wake = null;
    }
  }

  #signal(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = null;
      wake();
    }
  }
}
