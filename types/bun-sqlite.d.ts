/**
 * The parts of 'bun:sqlite' that runtime/platform/bun/sqlite.ts uses, so tsc
 * compiles on Node without bun-types.
 */
declare module 'bun:sqlite' {
  export interface DatabaseOptions {
    readonly?: boolean;
    create?: boolean;
    readwrite?: boolean;
    strict?: boolean;
    safeIntegers?: boolean;
  }

  export class Statement {
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
    get(...params: unknown[]): Record<string, unknown> | null;
    all(...params: unknown[]): Record<string, unknown>[];
    finalize(): void;
  }

  export interface Transaction<A extends unknown[], R> {
    (...args: A): R;
    deferred(...args: A): R;
    immediate(...args: A): R;
    exclusive(...args: A): R;
  }

  export class Database {
    constructor(filename?: string, options?: DatabaseOptions | number);
    exec(sql: string, ...params: unknown[]): void;
    prepare(sql: string): Statement;
    transaction<A extends unknown[], R>(fn: (...args: A) => R): Transaction<A, R>;
    close(throwOnError?: boolean): void;
  }
}
