/**
 * The Bus contract: what every Bus implementation must do, tested only
 * through the Bus interface (runtime/bus/bus.ts), so the same cases run
 * against the in-process and the Redis buses.
 *
 *   busContract('memory', async () => ({ bus: createMemoryBus(), cleanup: async () => {} }));
 *
 * `make` is called once per case and must give a bus whose channels no other
 * run uses (e.g. a unique prefix: the Redis server may be shared). `cleanup`
 * releases whatever `make` created; the case closes the bus itself first
 * (close() must be idempotent).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../runtime/bus/bus.js';

export interface BusHandle {
  bus: Bus;
  cleanup: () => Promise<void>;
}

export type MakeBus = () => Promise<BusHandle>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves once `cond()` holds; fails after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (payload: Uint8Array) => new TextDecoder().decode(payload);

export function busContract(name: string, make: MakeBus): void {
  /** Runs one case on a fresh bus and always closes and cleans up. */
  async function withBus(fn: (bus: Bus, ch: (name: string) => string) => Promise<void>): Promise<void> {
    const handle = await make();
    const run = randomUUID();
    try {
      await fn(handle.bus, (n) => `fishchat:test-${run}:${n}`);
    } finally {
      await handle.bus.close();
      await handle.cleanup();
    }
  }

  describe(`Bus contract: ${name}`, () => {
    it('delivers a published payload to a subscriber, every byte value intact', () =>
      withBus(async (bus, ch) => {
        const got: Uint8Array[] = [];
        await bus.subscribe(ch('a'), (p) => got.push(p));
        const all = new Uint8Array(256).map((_, i) => i);
        bus.publish(ch('a'), all);
        bus.publish(ch('a'), new Uint8Array(0));
        // a view into a larger buffer: only the view's bytes travel
        const big = new Uint8Array(64).fill(7);
        bus.publish(ch('a'), big.subarray(10, 13));
        await until(() => got.length === 3, '3 payloads');
        assert.ok(got[0] instanceof Uint8Array);
        assert.deepEqual([...got[0]!], [...all]);
        assert.equal(got[1]!.byteLength, 0);
        assert.deepEqual([...got[2]!], [7, 7, 7]);
      }));

    it('keeps the order of 1000 publishes on one channel', () =>
      withBus(async (bus, ch) => {
        const got: number[] = [];
        await bus.subscribe(ch('order'), (p) => got.push(Number(text(p))));
        for (let i = 0; i < 500; i++) bus.publish(ch('order'), bytes(String(i)));
        // the rest across several event-loop turns
        for (let i = 500; i < 1000; i += 100) {
          await new Promise((r) => setImmediate(r));
          for (let j = i; j < i + 100; j++) bus.publish(ch('order'), bytes(String(j)));
        }
        await until(() => got.length >= 1000, '1000 payloads', 10_000);
        assert.deepEqual(
          got,
          Array.from({ length: 1000 }, (_, i) => i),
        );
      }));

    it('calls every handler of a channel', () =>
      withBus(async (bus, ch) => {
        const a: string[] = [];
        const b: string[] = [];
        await bus.subscribe(ch('x'), (p) => a.push(text(p)));
        await bus.subscribe(ch('x'), (p) => b.push(text(p)));
        bus.publish(ch('x'), bytes('one'));
        bus.publish(ch('x'), bytes('two'));
        await until(() => a.length === 2 && b.length === 2, 'both handlers');
        assert.deepEqual(a, ['one', 'two']);
        assert.deepEqual(b, ['one', 'two']);
      }));

    it('the same function subscribed twice is called twice, and unsubscribing once leaves the other', () =>
      withBus(async (bus, ch) => {
        const got: string[] = [];
        const h = (p: Uint8Array) => got.push(text(p));
        const off1 = await bus.subscribe(ch('dup'), h);
        await bus.subscribe(ch('dup'), h);
        bus.publish(ch('dup'), bytes('1'));
        await until(() => got.length === 2, 'two calls');
        await off1();
        bus.publish(ch('dup'), bytes('2'));
        await until(() => got.length === 3, 'one more call');
        await sleep(50);
        assert.deepEqual(got, ['1', '1', '2']);
      }));

    it('unsubscribe stops delivery to that handler while the other keeps receiving', () =>
      withBus(async (bus, ch) => {
        const a: string[] = [];
        const b: string[] = [];
        const offA = await bus.subscribe(ch('u'), (p) => a.push(text(p)));
        await bus.subscribe(ch('u'), (p) => b.push(text(p)));
        bus.publish(ch('u'), bytes('before'));
        await until(() => a.length === 1 && b.length === 1, 'first payload');
        await offA();
        await offA(); // idempotent
        bus.publish(ch('u'), bytes('after1'));
        bus.publish(ch('u'), bytes('after2'));
        await until(() => b.length === 3, 'the remaining handler');
        await sleep(50);
        assert.deepEqual(a, ['before']);
        assert.deepEqual(b, ['before', 'after1', 'after2']);
      }));

    it('after the last handler unsubscribed, nothing is delivered; subscribing again works', () =>
      withBus(async (bus, ch) => {
        const a: string[] = [];
        const off = await bus.subscribe(ch('last'), (p) => a.push(text(p)));
        await off();
        bus.publish(ch('last'), bytes('lost'));
        await sleep(100);
        assert.deepEqual(a, []);
        const b: string[] = [];
        await bus.subscribe(ch('last'), (p) => b.push(text(p)));
        bus.publish(ch('last'), bytes('again'));
        await until(() => b.length === 1, 'the new subscription');
        assert.deepEqual(a, []);
        assert.deepEqual(b, ['again']);
      }));

    it('keeps channels apart', () =>
      withBus(async (bus, ch) => {
        const a: string[] = [];
        const b: string[] = [];
        await bus.subscribe(ch('/sysctrl/deliver/ms1'), (p) => a.push(text(p)));
        await bus.subscribe(ch('/sysctrl/deliver/ms2'), (p) => b.push(text(p)));
        bus.publish(ch('/sysctrl/deliver/ms1'), bytes('for1'));
        bus.publish(ch('/sysctrl/deliver/ms2'), bytes('for2'));
        bus.publish(ch('/sysctrl/deliver/ms3'), bytes('nobody'));
        bus.publish(ch('/sysctrl/deliver/ms1'), bytes('for1 again'));
        await until(() => a.length === 2 && b.length === 1, 'both channels');
        await sleep(50);
        assert.deepEqual(a, ['for1', 'for1 again']);
        assert.deepEqual(b, ['for2']);
      }));

    it('a throwing handler does not stop delivery to the others', () =>
      withBus(async (bus, ch) => {
        const got: string[] = [];
        const origError = console.error;
        console.error = () => {};
        try {
          await bus.subscribe(ch('t'), () => {
            throw new Error('handler fault (expected in this test)');
          });
          await bus.subscribe(ch('t'), (p) => got.push(text(p)));
          bus.publish(ch('t'), bytes('a'));
          bus.publish(ch('t'), bytes('b'));
          await until(() => got.length === 2, 'the healthy handler');
        } finally {
          console.error = origError;
        }
        assert.deepEqual(got, ['a', 'b']);
      }));

    it('close stops delivery; publish after close does not throw; close twice is fine', async () => {
      const handle = await make();
      const ch = `fishchat:test-${randomUUID()}:close`;
      try {
        const got: string[] = [];
        await handle.bus.subscribe(ch, (p) => got.push(text(p)));
        handle.bus.publish(ch, bytes('1'));
        await until(() => got.length === 1, 'the first payload');
        await handle.bus.close();
        handle.bus.publish(ch, bytes('2'));
        await sleep(100);
        assert.deepEqual(got, ['1']);
        await handle.bus.close();
      } finally {
        await handle.bus.close();
        await handle.cleanup();
      }
    });
  });
}
