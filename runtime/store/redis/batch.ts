/**
 * Calls made during one event-loop turn, sent to Redis together: `add`
 * queues an item, and at the end of the turn (or at `flush()`, when another
 * call must not overtake them) `send` gets them, at most `max` per call, in
 * the order they came, and returns one reply per item.
 */
export class TurnBatch<T> {
  private items: { item: T; resolve: (reply: unknown) => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly max: number,
    private readonly send: (items: T[]) => Promise<unknown[]>,
  ) {}

  get waiting(): boolean {
    return this.items.length > 0;
  }

  add(item: T): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  readonly flush = (): void => {
    this.scheduled = false;
    const all = this.items;
    this.items = [];
    for (let at = 0; at < all.length; at += this.max) {
      const part = all.length <= this.max ? all : all.slice(at, at + this.max);
      this.send(part.map((p) => p.item)).then(
        (replies) => {
          for (let i = 0; i < part.length; i++) part[i]!.resolve(replies[i]);
        },
        (err: unknown) => {
          for (const p of part) p.reject(err);
        },
      );
    }
  };
}
