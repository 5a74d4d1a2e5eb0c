/**
 * The group commit of the embedded store: every write called in one
 * event-loop turn is queued and run, in call order, inside ONE transaction
 * (flushed from setImmediate); each caller's promise then resolves with its
 * own result after the COMMIT. If anything in a batch throws, the batch is
 * rolled back and its ops are run again one transaction each, so only the
 * failing op rejects.
 *
 * Ops touch only the database and in-memory state whose changes they log
 * with undo(): a rollback undoes those, so running the ops again is safe.
 */
import type { SqliteDatabase } from '../../platform/types.js';
import { closedError } from '../common.js';

interface Op {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  private queue: Op[] = [];
  private scheduled = false;
  private isClosed = false;
  /** changes to in-memory state in the running batch, undone if it rolls back */
  private undoLog: (() => void)[] = [];

  /** `onRollback`: called once when a whole batch rolled back, before its ops run again one by one. */
  constructor(
    private readonly db: SqliteDatabase,
    private readonly onRollback: () => void,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** For direct reads: throws once the store is closed. */
  mustBeOpen(): void {
    if (this.isClosed) throw closedError();
  }

  write<T>(run: () => T): Promise<T> {
    if (this.isClosed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Inside a batch: how to undo an in-memory change should the batch roll back. */
  undo(change: () => void): void {
    this.undoLog.push(change);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const ops = this.queue;
    if (ops.length === 0) return;
    this.queue = [];
    const results = new Array<unknown>(ops.length);
    try {
      this.undoLog = [];
      this.db.transaction(() => {
        for (let i = 0; i < ops.length; i++) results[i] = ops[i]!.run();
      });
      this.undoLog = [];
    } catch {
      // The whole batch was rolled back: one transaction per op, in call order.
      this.rollback();
      this.onRollback();
      for (const op of ops) {
        try {
          this.undoLog = [];
          op.resolve(this.db.transaction(op.run));
          this.undoLog = [];
        } catch (error) {
          this.rollback();
          op.reject(error);
        }
      }
      return;
    }
    for (let i = 0; i < ops.length; i++) ops[i]!.resolve(results[i]);
  };

  private rollback(): void {
    for (let i = this.undoLog.length - 1; i >= 0; i--) this.undoLog[i]!();
    this.undoLog = [];
  }

  /**
   * Later writes reject; what was queued before still commits, then `last`
   * runs in a transaction of its own (if it throws, what it did is rolled
   * back and nothing more happens).
   */
  close(last: () => void): void {
    this.isClosed = true;
    this.flush();
    try {
      this.undoLog = [];
      this.db.transaction(last);
    } catch {
      // what `last` did is rolled back
    }
    this.undoLog = [];
  }
}
