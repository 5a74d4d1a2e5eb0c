/**
 * The Store contract: what every Store implementation must do, tested only
 * through the Store interface (runtime/store/store.ts), so the same cases run
 * against the embedded (SQLite) and the Redis stores.
 *
 *   storeContract('sqlite', async (limits) => ({ store, reopen, cleanup }));
 *
 * `open` is called once per case, with the limits that case needs (the rest
 * are the defaults); it must give an empty store. `reopen`, when given,
 * closes the current store and returns a new one over the same data.
 * `cleanup` closes whatever store is open and removes its data.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type {
  AppendP2P,
  AppendResult,
  DirEntry,
  FanoutCopy,
  Store,
  StoreLimits,
  TopicAppend,
} from '../runtime/store/store.js';

export interface StoreHandle {
  store: Store;
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

export type OpenStore = (limits?: Partial<StoreLimits>) => Promise<StoreHandle>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

function msg(from: string, to: string, extra: Partial<AppendP2P> = {}): AppendP2P {
  return { from, to, mid: randomUUID(), body: bytes(`${from}->${to}`), ts: Date.now(), ...extra };
}

function tmsg(topic: string, from: string, extra: Partial<TopicAppend> = {}): TopicAppend {
  return { topic, from, mid: randomUUID(), body: bytes(`${from}@${topic}`), ts: Date.now(), ...extra };
}

/** Runs the topic's fan-out to the end in steps of `limit`; returns every copy made. */
async function fanAll(store: Store, topic: string, limit = 1000): Promise<FanoutCopy[]> {
  const copies: FanoutCopy[] = [];
  for (let i = 0; i < 10_000; i++) {
    const { messages, done } = await store.topicFanout(topic, limit);
    for (const m of messages) copies.push(...m.copies);
    if (done) return copies;
  }
  throw new Error('the fan-out never finished');
}

/** (user, tseq) pairs, sorted, to compare sets of copies. */
const pairs = (copies: FanoutCopy[]) => copies.map((c) => `${c.user}#${c.tseq}`).sort();

const sortDir = (entries: readonly DirEntry[]) =>
  [...entries].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));

export function storeContract(name: string, open: OpenStore): void {
  /** Runs one case on a fresh store and always cleans up. */
  async function withStore(
    limits: Partial<StoreLimits> | undefined,
    fn: (store: Store, handle: StoreHandle) => Promise<void>,
  ): Promise<void> {
    const handle = await open(limits);
    try {
      await fn(handle.store, handle);
    } finally {
      await handle.cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe('appendP2P', () => {
      it('gives seq 1, 2, 3 per user, independently', () =>
        withStore(undefined, async (store) => {
          const bob = [];
          for (let i = 0; i < 3; i++) bob.push(await store.appendP2P(msg('alice', 'bob')));
          const carol = [];
          for (let i = 0; i < 2; i++) carol.push(await store.appendP2P(msg('alice', 'carol')));
          assert.deepEqual(
            bob.map((r) => r.seq),
            [1, 2, 3],
          );
          assert.deepEqual(
            carol.map((r) => r.seq),
            [1, 2],
          );
          assert.ok(bob.every((r) => !r.duplicate));
          const head = await store.head('bob');
          assert.equal(head.seq, 3);
          assert.equal(head.first, 1);
          assert.equal((await store.head('carol')).seq, 2);
          // the sender's inbox is untouched
          assert.equal((await store.head('alice')).seq, 0);
        }));

      it('stores the message as sent and returns mid and ts', () =>
        withStore(undefined, async (store) => {
          const m = msg('alice', 'bob', { body: new Uint8Array([0, 1, 2, 255]), ts: 1_700_000_000_123 });
          const r = await store.appendP2P(m);
          assert.equal(r.mid, m.mid);
          assert.equal(r.ts, m.ts);
          const empty = await store.appendP2P(msg('alice', 'bob', { body: new Uint8Array(0) }));
          const { messages } = await store.readInbox('bob', 0, 10);
          assert.equal(messages.length, 2);
          const [first, second] = messages;
          assert.equal(first!.seq, 1);
          assert.equal(first!.mid, m.mid);
          assert.equal(first!.from, 'alice');
          assert.equal(first!.to, 'bob');
          assert.equal(first!.ts, m.ts);
          assert.equal(first!.topic, undefined);
          assert.ok(first!.body instanceof Uint8Array);
          assert.deepEqual([...first!.body], [0, 1, 2, 255]);
          assert.equal(second!.seq, empty.seq);
          assert.equal(second!.body.length, 0);
        }));

      it('a user may send to itself', () =>
        withStore(undefined, async (store) => {
          const r = await store.appendP2P(msg('alice', 'alice'));
          assert.equal(r.seq, 1);
          const { messages } = await store.readInbox('alice', 0, 10);
          assert.equal(messages[0]!.from, 'alice');
          assert.equal(messages[0]!.to, 'alice');
        }));

      it('concurrent appends get distinct consecutive seqs in call order', () =>
        withStore(undefined, async (store) => {
          const calls: Promise<AppendResult>[] = [];
          const mids: string[] = [];
          for (let i = 0; i < 500; i++) {
            const m = msg(`s${i % 7}`, 'bob', { body: bytes(`#${i}`) });
            mids.push(m.mid);
            calls.push(store.appendP2P(m));
            if (i % 2 === 0) calls.push(store.appendP2P(msg('x', 'carol')));
          }
          const results = await Promise.all(calls);
          const bob = results.filter((r) => mids.includes(r.mid));
          assert.deepEqual(
            bob.map((r) => r.seq),
            Array.from({ length: 500 }, (_, i) => i + 1),
          );
          const carol = results.filter((r) => !mids.includes(r.mid));
          assert.deepEqual(
            carol.map((r) => r.seq),
            Array.from({ length: 250 }, (_, i) => i + 1),
          );
          const { messages, head } = await store.readInbox('bob', 0, 1000);
          assert.equal(head.seq, 500);
          assert.deepEqual(
            messages.map((m) => text(m.body)),
            Array.from({ length: 500 }, (_, i) => `#${i}`),
          );
          assert.deepEqual(
            messages.map((m) => m.mid),
            mids,
          );
        }));

      it('returns the recipient’s directory entries', () =>
        withStore(undefined, async (store) => {
          assert.deepEqual((await store.appendP2P(msg('alice', 'bob'))).sessions, []);
          await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          await store.login({ user: 'bob', device: 'laptop', server: 'ms2', boot: 'b2', push: true });
          await store.login({ user: 'alice', device: 'phone', server: 'ms3', boot: 'b3', push: true });
          await store.login({ user: 'bob', device: 'cli', server: 'ms3', boot: 'b3', push: false });
          const r = await store.appendP2P(msg('alice', 'bob'));
          assert.deepEqual(sortDir(r.sessions), [
            { user: 'bob', device: 'laptop', server: 'ms2', boot: 'b2', gen: 1 },
            { user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', gen: 1 },
          ]);
        }));
    });

    describe('cid', () => {
      it('a repeated cid to the same recipient returns the first mid, seq and ts and spends no seq', () =>
        withStore(undefined, async (store) => {
          const first = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', ts: 1000 + Date.now() }));
          await store.appendP2P(msg('alice', 'bob'));
          const again = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', body: bytes('other body') }));
          assert.equal(first.duplicate, false);
          assert.equal(again.duplicate, true);
          assert.equal(again.mid, first.mid);
          assert.equal(again.seq, first.seq);
          assert.equal(again.ts, first.ts);
          const next = await store.appendP2P(msg('alice', 'bob'));
          assert.equal(next.seq, 3);
          const { messages } = await store.readInbox('bob', 0, 10);
          assert.equal(messages.length, 3);
        }));

      it('repeats in one batch are caught too', () =>
        withStore(undefined, async (store) => {
          const results = await Promise.all([
            store.appendP2P(msg('alice', 'bob', { cid: 'same' })),
            store.appendP2P(msg('alice', 'bob', { cid: 'same' })),
            store.appendP2P(msg('alice', 'bob', { cid: 'same' })),
          ]);
          assert.deepEqual(
            results.map((r) => [r.seq, r.duplicate]),
            [
              [1, false],
              [1, true],
              [1, true],
            ],
          );
          assert.ok(results.every((r) => r.mid === results[0]!.mid));
          assert.equal((await store.head('bob')).seq, 1);
        }));

      it('the same cid to another recipient, or from another sender, is another message', () =>
        withStore(undefined, async (store) => {
          const a = await store.appendP2P(msg('alice', 'bob', { cid: 'c1' }));
          const b = await store.appendP2P(msg('alice', 'carol', { cid: 'c1' }));
          const c = await store.appendP2P(msg('dave', 'bob', { cid: 'c1' }));
          assert.equal(b.duplicate, false);
          assert.equal(c.duplicate, false);
          assert.notEqual(b.mid, a.mid);
          assert.notEqual(c.mid, a.mid);
          assert.equal(b.seq, 1);
          assert.equal(c.seq, 2);
        }));

      it('a cid repeated after the cid window is another message', () =>
        withStore({ cidWindowMs: 60_000 }, async (store) => {
          const t = Date.now();
          const a = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', ts: t }));
          const within = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', ts: t + 59_000 }));
          assert.equal(within.duplicate, true);
          const after = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', ts: t + 61_000 }));
          assert.equal(after.duplicate, false);
          assert.notEqual(after.mid, a.mid);
          assert.equal(after.seq, 2);
          // the new one is now the one a repeat returns
          const again = await store.appendP2P(msg('alice', 'bob', { cid: 'c1', ts: t + 62_000 }));
          assert.equal(again.mid, after.mid);
          assert.equal(again.seq, 2);
        }));
    });

    describe('readInbox and head', () => {
      it('pages oldest first, with the head', () =>
        withStore(undefined, async (store) => {
          for (let i = 1; i <= 10; i++) await store.appendP2P(msg('alice', 'bob', { body: bytes(`${i}`) }));
          const pages: number[][] = [];
          let after = 0;
          for (;;) {
            const { messages, head } = await store.readInbox('bob', after, 4);
            assert.equal(head.seq, 10);
            assert.equal(head.first, 1);
            if (messages.length === 0) break;
            pages.push(messages.map((m) => m.seq));
            assert.deepEqual(
              messages.map((m) => text(m.body)),
              messages.map((m) => `${m.seq}`),
            );
            after = messages[messages.length - 1]!.seq;
          }
          assert.deepEqual(pages, [
            [1, 2, 3, 4],
            [5, 6, 7, 8],
            [9, 10],
          ]);
          assert.deepEqual(
            (await store.readInbox('bob', 3, 2)).messages.map((m) => m.seq),
            [4, 5],
          );
        }));

      it('a new user has seq 0, first 1 and an epoch that stays', () =>
        withStore(undefined, async (store) => {
          const read = await store.readInbox('nobody', 0, 10);
          assert.deepEqual(read.messages, []);
          assert.equal(read.head.seq, 0);
          assert.equal(read.head.first, 1);
          assert.equal(typeof read.head.epoch, 'string');
          assert.ok(read.head.epoch.length > 0);
          const head = await store.head('nobody');
          assert.deepEqual(head, read.head);
          const other = await store.head('somebody');
          assert.notEqual(other.epoch, head.epoch);
          // appending keeps the epoch
          await store.appendP2P(msg('alice', 'nobody'));
          assert.equal((await store.head('nobody')).epoch, head.epoch);
          // a user first seen through an append gets one too, stable
          await store.appendP2P(msg('alice', 'fresh'));
          const e1 = (await store.head('fresh')).epoch;
          await store.appendP2P(msg('alice', 'fresh'));
          assert.equal((await store.head('fresh')).epoch, e1);
        }));

      it('the epoch is the same after reopening and new in a new store', async () => {
        let epoch = '';
        await withStore(undefined, async (store, handle) => {
          await store.appendP2P(msg('alice', 'bob'));
          epoch = (await store.head('bob')).epoch;
          if (handle.reopen) {
            const again = await handle.reopen();
            assert.equal((await again.head('bob')).epoch, epoch);
          }
        });
        await withStore(undefined, async (store) => {
          await store.appendP2P(msg('alice', 'bob'));
          assert.notEqual((await store.head('bob')).epoch, epoch);
        });
      });
    });

    describe('trimming', () => {
      it('by count (maxInbox) when appending: first moves, seq is never lowered', () =>
        withStore({ maxInbox: 5 }, async (store) => {
          for (let i = 0; i < 8; i++) await store.appendP2P(msg('alice', 'bob'));
          const { messages, head } = await store.readInbox('bob', 0, 100);
          assert.deepEqual(
            messages.map((m) => m.seq),
            [4, 5, 6, 7, 8],
          );
          assert.equal(head.seq, 8);
          assert.equal(head.first, 4);
          const r = await store.appendP2P(msg('alice', 'bob'));
          assert.equal(r.seq, 9);
          assert.equal((await store.head('bob')).first, 5);
          // after below first - 1 reads from first
          assert.equal((await store.readInbox('bob', 1, 1)).messages[0]!.seq, 5);
        }));

      it('by count over many appends: always exactly the newest maxInbox', () =>
        withStore({ maxInbox: 5 }, async (store) => {
          const now = Date.now();
          for (let i = 1; i <= 200; i++) {
            await store.appendP2P(msg('alice', 'bob', { body: bytes(`${i}`), ts: now }));
            if (i % 37 === 0 || i > 190) {
              const { messages, head } = await store.readInbox('bob', 0, 100);
              assert.deepEqual(head.seq, i);
              assert.deepEqual(head.first, Math.max(1, i - 4));
              assert.deepEqual(
                messages.map((m) => text(m.body)),
                Array.from({ length: Math.min(i, 5) }, (_, k) => `${Math.max(1, i - 4) + k}`),
              );
            }
          }
          // what went by count is not counted again by trim
          assert.equal(await store.trim(now), 0);
          assert.equal((await store.head('bob')).first, 196);
          assert.equal(await store.trim(now + 8 * 24 * 3600_000), 5);
          const head = await store.head('bob');
          assert.equal(head.seq, 200);
          assert.equal(head.first, 201);
          assert.deepEqual((await store.readInbox('bob', 0, 100)).messages, []);
          assert.equal((await store.appendP2P(msg('alice', 'bob'))).seq, 201);
        }));

      it('by age (trim): oldest first, seq and epoch kept', () =>
        withStore({ retentionMs: 10_000, cidWindowMs: 5_000 }, async (store) => {
          const now = Date.now();
          const old = now - 20_000;
          for (let i = 0; i < 3; i++) await store.appendP2P(msg('alice', 'bob', { ts: old, cid: `old${i}` }));
          await store.appendP2P(msg('alice', 'bob', { ts: now }));
          await store.appendP2P(msg('alice', 'bob', { ts: now }));
          await store.appendP2P(msg('alice', 'carol', { ts: old }));
          const epoch = (await store.head('bob')).epoch;
          assert.equal(await store.trim(now), 4);
          const bob = await store.head('bob');
          assert.deepEqual(bob, { seq: 5, first: 4, epoch });
          const carol = await store.head('carol');
          assert.equal(carol.seq, 1);
          assert.equal(carol.first, 2);
          assert.deepEqual(
            (await store.readInbox('bob', 0, 10)).messages.map((m) => m.seq),
            [4, 5],
          );
          assert.equal(await store.trim(now), 0);
          // an old cid is long past its window: a new message
          const again = await store.appendP2P(msg('alice', 'bob', { ts: now, cid: 'old0' }));
          assert.equal(again.duplicate, false);
          assert.equal(again.seq, 6);
          assert.equal((await store.appendP2P(msg('alice', 'carol'))).seq, 2);
        }));

      it('trim keeps what is within retention', () =>
        withStore({ retentionMs: 60_000 }, async (store) => {
          const now = Date.now();
          await store.appendP2P(msg('alice', 'bob', { ts: now - 30_000, cid: 'k' }));
          assert.equal(await store.trim(now), 0);
          assert.equal((await store.head('bob')).first, 1);
          const again = await store.appendP2P(msg('alice', 'bob', { ts: now, cid: 'k' }));
          assert.equal(again.duplicate, true);
        }));
    });

    describe('ack', () => {
      it('moves forward only, capped at the head, per device', () =>
        withStore(undefined, async (store) => {
          assert.equal(await store.ack('bob', 'phone', 5), 0);
          for (let i = 0; i < 3; i++) await store.appendP2P(msg('alice', 'bob'));
          assert.equal(await store.ack('bob', 'phone', 2), 2);
          assert.equal(await store.ack('bob', 'phone', 1), 2);
          assert.equal(await store.ack('bob', 'phone', 10), 3);
          assert.equal(await store.ack('bob', 'phone', 0), 3);
          assert.equal(await store.ack('bob', 'laptop', 1), 1);
          const phone = await store.login({ user: 'bob', device: 'phone', server: 's', boot: 'b', push: true });
          assert.equal(phone.acked, 3);
          const laptop = await store.login({ user: 'bob', device: 'laptop', server: 's', boot: 'b', push: false });
          assert.equal(laptop.acked, 1);
          const tablet = await store.login({ user: 'bob', device: 'tablet', server: 's', boot: 'b', push: true });
          assert.equal(tablet.acked, 0);
        }));

      it('concurrent acks keep the highest', () =>
        withStore(undefined, async (store) => {
          for (let i = 0; i < 10; i++) await store.appendP2P(msg('alice', 'bob'));
          const r = await Promise.all([7, 3, 9, 2].map((s) => store.ack('bob', 'd', s)));
          assert.deepEqual(r, [7, 7, 9, 9]);
        }));
    });

    describe('login and the directory', () => {
      it('push login takes the next gen, writes the entry and returns the one it replaced', () =>
        withStore(undefined, async (store) => {
          for (let i = 0; i < 2; i++) await store.appendP2P(msg('alice', 'bob'));
          const one = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          assert.equal(one.gen, 1);
          assert.equal(one.replaced, undefined);
          assert.equal(one.head.seq, 2);
          assert.equal(one.head.first, 1);
          assert.equal(one.acked, 0);
          assert.deepEqual(await store.sessions('bob'), [
            { user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', gen: 1 },
          ]);
          const two = await store.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: true });
          assert.equal(two.gen, 2);
          assert.deepEqual(two.replaced, { user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', gen: 1 });
          assert.deepEqual(await store.sessions('bob'), [
            { user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', gen: 2 },
          ]);
          assert.equal((await store.check('bob', 'phone')).gen, 2);
          // gens are per device
          const other = await store.login({ user: 'bob', device: 'laptop', server: 'ms1', boot: 'b1', push: true });
          assert.equal(other.gen, 1);
          assert.equal(other.replaced, undefined);
          assert.equal((await store.sessions('bob')).length, 2);
          assert.equal((await store.check('bob', 'tablet')).gen, 0);
        }));

      it('concurrent logins of one device: distinct gens, the last one stays', () =>
        withStore(undefined, async (store) => {
          const results = await Promise.all(
            [1, 2, 3].map((i) => store.login({ user: 'bob', device: 'd', server: `ms${i}`, boot: 'b', push: true })),
          );
          assert.deepEqual(
            results.map((r) => r.gen),
            [1, 2, 3],
          );
          assert.equal(results[1]!.replaced?.gen, 1);
          assert.equal(results[2]!.replaced?.gen, 2);
          assert.deepEqual(await store.sessions('bob'), [
            { user: 'bob', device: 'd', server: 'ms3', boot: 'b', gen: 3 },
          ]);
        }));

      it('login writes before it reads: a message is in the backlog or pushed', () =>
        withStore(undefined, async (store) => {
          for (let round = 0; round < 20; round++) {
            const device = `d${round}`;
            const login = { user: 'bob', device, server: 'ms1', boot: 'b1', push: true };
            const [a, l] =
              round % 2 === 0
                ? await Promise.all([store.appendP2P(msg('alice', 'bob')), store.login(login)])
                : await Promise.all([store.login(login), store.appendP2P(msg('alice', 'bob'))]).then(
                    ([x, y]) => [y, x] as const,
                  );
            const pushed = a.sessions.some((s) => s.device === device && s.gen === l.gen);
            const inBacklog = l.head.seq >= a.seq;
            assert.ok(pushed || inBacklog, `round ${round}: message ${a.seq} lost (head ${l.head.seq})`);
            // in call order exactly one of the two holds
            assert.equal(pushed, round % 2 === 1);
            assert.equal(inBacklog, round % 2 === 0);
          }
        }));

      it('push:false login: gen 0, directory and gens untouched', () =>
        withStore(undefined, async (store) => {
          await store.appendP2P(msg('alice', 'bob'));
          await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          const before = await store.sessions('bob');
          const r = await store.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: false });
          assert.equal(r.gen, 0);
          assert.equal(r.replaced, undefined);
          assert.equal(r.head.seq, 1);
          assert.deepEqual(await store.sessions('bob'), before);
          assert.equal((await store.check('bob', 'phone')).gen, 1);
          const fresh = await store.login({ user: 'dave', device: 'cli', server: 'ms2', boot: 'b2', push: false });
          assert.equal(fresh.gen, 0);
          assert.equal(fresh.head.seq, 0);
          assert.equal(fresh.head.first, 1);
          assert.deepEqual(await store.sessions('dave'), []);
          assert.equal((await store.check('dave', 'cli')).gen, 0);
          // the next push login still starts at gen 1 / 2
          const push = await store.login({ user: 'bob', device: 'phone', server: 'ms3', boot: 'b3', push: true });
          assert.equal(push.gen, 2);
        }));

      it('check returns the head and the highest gen', () =>
        withStore(undefined, async (store) => {
          await store.appendP2P(msg('alice', 'bob'));
          await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          await store.appendP2P(msg('alice', 'bob'));
          const c = await store.check('bob', 'phone');
          assert.equal(c.gen, 1);
          assert.equal(c.head.seq, 2);
          assert.equal(c.head.epoch, (await store.head('bob')).epoch);
        }));

      it('removeSession deletes only with a matching gen', () =>
        withStore(undefined, async (store) => {
          await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          const two = await store.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: true });
          assert.equal(await store.removeSession('bob', 'phone', 1), false);
          assert.equal((await store.sessions('bob')).length, 1);
          assert.equal(await store.removeSession('bob', 'phone', two.gen), true);
          assert.deepEqual(await store.sessions('bob'), []);
          assert.equal(await store.removeSession('bob', 'phone', two.gen), false);
          // gens are never given back
          const three = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          assert.equal(three.gen, 3);
          assert.equal(three.replaced, undefined);
        }));

      it('restoreSession writes back only while no newer gen was given', () =>
        withStore(undefined, async (store) => {
          const one = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          const entry: DirEntry = { user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', gen: one.gen };
          assert.equal(await store.restoreSession(entry), true); // still there: unchanged
          assert.deepEqual(await store.sessions('bob'), [entry]);
          assert.equal(await store.removeServerSessions('ms1', 'b1'), 1);
          assert.deepEqual(await store.sessions('bob'), []);
          assert.equal(await store.restoreSession(entry), true);
          assert.deepEqual(await store.sessions('bob'), [entry]);
          // a newer login elsewhere: the old entry may not come back
          await store.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: true });
          assert.equal(await store.restoreSession(entry), false);
          assert.deepEqual(await store.sessions('bob'), [
            { user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', gen: 2 },
          ]);
          await store.removeSession('bob', 'phone', 2);
          assert.equal(await store.restoreSession(entry), false);
          assert.deepEqual(await store.sessions('bob'), []);
          // a gen never given cannot be restored
          assert.equal(await store.restoreSession({ ...entry, device: 'ghost' }), false);
          assert.deepEqual(await store.sessions('bob'), []);
        }));
    });

    describe('leases', () => {
      it('renew says whether the lease was alive, and (re)creates it', () =>
        withStore(undefined, async (store) => {
          assert.equal(await store.renewLease('ms1', 'b1', 60_000), false);
          assert.equal(await store.renewLease('ms1', 'b1', 60_000), true);
          assert.equal(await store.renewLease('ms1', 'b2', 60_000), false);
          await store.dropLease('ms1', 'b1');
          assert.equal(await store.renewLease('ms1', 'b1', 60_000), false);
        }));

      it('expires after its ttl', () =>
        withStore(undefined, async (store) => {
          assert.equal(await store.renewLease('ms1', 'b1', 30), false);
          assert.equal(await store.renewLease('ms2', 'b1', 60_000), false);
          const now = Date.now();
          assert.deepEqual(await store.expiredLeases(now - 1000), []);
          assert.deepEqual(await store.expiredLeases(now + 1000), [{ server: 'ms1', boot: 'b1' }]);
          const all = await store.expiredLeases(now + 120_000);
          assert.deepEqual(all.map((l) => l.server).sort(), ['ms1', 'ms2']);
          await sleep(80);
          assert.deepEqual(await store.expiredLeases(Date.now()), [{ server: 'ms1', boot: 'b1' }]);
          assert.equal(await store.renewLease('ms1', 'b1', 60_000), false);
          assert.deepEqual(await store.expiredLeases(Date.now()), []);
        }));

      it('removeServerSessions removes only that server+boot and its lease', () =>
        withStore(undefined, async (store) => {
          await store.renewLease('ms1', 'old', 60_000);
          await store.renewLease('ms1', 'new', 60_000);
          await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'old', push: true });
          await store.login({ user: 'carol', device: 'phone', server: 'ms1', boot: 'old', push: true });
          await store.login({ user: 'bob', device: 'laptop', server: 'ms1', boot: 'new', push: true });
          await store.login({ user: 'carol', device: 'laptop', server: 'ms2', boot: 'old', push: true });
          assert.equal(await store.removeServerSessions('ms1', 'old'), 2);
          assert.deepEqual(await store.sessions('bob'), [
            { user: 'bob', device: 'laptop', server: 'ms1', boot: 'new', gen: 1 },
          ]);
          assert.deepEqual(await store.sessions('carol'), [
            { user: 'carol', device: 'laptop', server: 'ms2', boot: 'old', gen: 1 },
          ]);
          assert.equal(await store.renewLease('ms1', 'new', 60_000), true);
          assert.equal(await store.renewLease('ms1', 'old', 60_000), false);
          assert.equal(await store.removeServerSessions('ms1', 'old'), 0);
          // gens survive: the next login of bob/phone is gen 2
          const again = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'new', push: true });
          assert.equal(again.gen, 2);
          assert.equal(again.replaced, undefined);
        }));
    });

    describe('topics', () => {
      it('create: the creator is the first member; false if it exists; missing topics', () =>
        withStore(undefined, async (store) => {
          assert.equal(await store.topicCreate('general', 'alice', 1000), true);
          assert.equal(await store.topicCreate('general', 'bob', 2000), false);
          assert.deepEqual(await store.topicInfo('general'), {
            topic: 'general',
            creator: 'alice',
            created: 1000,
            members: 1,
            tseq: 0,
            fanned: 0,
          });
          assert.deepEqual(await store.topicMembers('general', undefined, 10), { members: ['alice'], more: false });
          assert.equal(await store.topicInfo('nope'), null);
          assert.equal(await store.topicJoin('nope', 'bob'), null);
          assert.equal(await store.topicLeave('nope', 'bob'), 'no_such_topic');
          assert.equal(await store.topicMembers('nope', undefined, 10), null);
          assert.deepEqual(await store.topicAppend(tmsg('nope', 'alice')), { code: 'no_such_topic' });
          // the topic namespace is apart from users
          assert.equal((await store.head('general')).seq, 0);
        }));

      it('join is idempotent and counts; leave; members page in byte order', () =>
        withStore(undefined, async (store) => {
          await store.topicCreate('t', 'm', 1);
          assert.equal(await store.topicJoin('t', 'b'), 2);
          assert.equal(await store.topicJoin('t', 'b'), 2);
          for (const u of ['a', 'Z', '_x', '-y', '0', 'B']) await store.topicJoin('t', u);
          assert.equal(await store.topicJoin('t', 'zz'), 9);
          assert.equal(await store.topicLeave('t', 'zz'), 'ok');
          assert.equal(await store.topicLeave('t', 'zz'), 'not_a_member');
          assert.equal(await store.topicLeave('t', 'never'), 'not_a_member');
          assert.equal((await store.topicInfo('t'))!.members, 8);
          const all: string[] = [];
          let after: string | undefined;
          for (;;) {
            const page = (await store.topicMembers('t', after, 3))!;
            assert.ok(page.members.length <= 3);
            all.push(...page.members);
            if (!page.more) break;
            after = page.members.at(-1);
          }
          assert.deepEqual(all, ['-y', '0', 'B', 'Z', '_x', 'a', 'b', 'm']);
          // after any name, member or not
          assert.deepEqual(await store.topicMembers('t', 'C', 2), { members: ['Z', '_x'], more: true });
          assert.deepEqual(await store.topicMembers('t', 'b', 5), { members: ['m'], more: false });
          assert.deepEqual(await store.topicMembers('t', 'm', 5), { members: [], more: false });
          assert.deepEqual(await store.topicMembers('t', undefined, 8), { members: all, more: false });
        }));

      it('append: members only, tseq 1, 2, 3 per topic', () =>
        withStore(undefined, async (store) => {
          await store.topicCreate('t', 'alice', 1);
          await store.topicCreate('u', 'alice', 1);
          assert.deepEqual(await store.topicAppend(tmsg('t', 'bob')), { code: 'not_a_member' });
          await store.topicJoin('t', 'bob');
          const r = [];
          for (const from of ['alice', 'bob', 'alice']) {
            const m = tmsg('t', from, { ts: 5000 + r.length });
            const res = await store.topicAppend(m);
            assert.deepEqual(res, { code: 'ok', mid: m.mid, tseq: r.length + 1, ts: m.ts, duplicate: false });
            r.push(res);
          }
          const u = await store.topicAppend(tmsg('u', 'alice'));
          assert.equal(u.code === 'ok' && u.tseq, 1);
          await store.topicLeave('t', 'bob');
          assert.deepEqual(await store.topicAppend(tmsg('t', 'bob')), { code: 'not_a_member' });
          assert.equal((await store.topicInfo('t'))!.tseq, 3);
        }));

      it('cid is scoped to (sender, topic); a repeat returns the first mid, tseq, ts', () =>
        withStore({ cidWindowMs: 60_000 }, async (store) => {
          await store.topicCreate('t', 'alice', 1);
          await store.topicCreate('u', 'alice', 1);
          await store.topicJoin('t', 'bob');
          const first = tmsg('t', 'alice', { cid: 'c1', ts: 1_000_000 });
          const a = await store.topicAppend(first);
          const again = await store.topicAppend(tmsg('t', 'alice', { cid: 'c1', ts: 1_000_500 }));
          assert.deepEqual(again, { code: 'ok', mid: first.mid, tseq: 1, ts: first.ts, duplicate: true });
          assert.ok(a.code === 'ok' && !a.duplicate);
          const other = await store.topicAppend(tmsg('t', 'bob', { cid: 'c1', ts: 1_000_600 }));
          assert.ok(other.code === 'ok' && !other.duplicate && other.tseq === 2);
          const otherTopic = await store.topicAppend(tmsg('u', 'alice', { cid: 'c1', ts: 1_000_700 }));
          assert.ok(otherTopic.code === 'ok' && !otherTopic.duplicate && otherTopic.tseq === 1);
          // a p2p cid is apart from topic cids
          assert.equal((await store.appendP2P(msg('alice', 't', { cid: 'c1' }))).duplicate, false);
          // in one batch
          const [x, y] = await Promise.all([
            store.topicAppend(tmsg('t', 'alice', { cid: 'c2', ts: 1_001_000 })),
            store.topicAppend(tmsg('t', 'alice', { cid: 'c2', ts: 1_001_000 })),
          ]);
          assert.ok(
            x.code === 'ok' && y.code === 'ok' && !x.duplicate && y.duplicate && x.tseq === y.tseq && x.mid === y.mid,
          );
          // past the cid window: another message
          const late = await store.topicAppend(tmsg('t', 'alice', { cid: 'c1', ts: 1_000_000 + 60_001 }));
          assert.ok(late.code === 'ok' && !late.duplicate && late.tseq === 4);
        }));

      it('fan-out: each member of the moment gets one copy with its own next seq, sender included', () =>
        withStore(undefined, async (store) => {
          await store.topicCreate('t', 'alice', 1);
          await store.topicJoin('t', 'bob');
          await store.topicJoin('t', 'carol');
          await store.appendP2P(msg('x', 'bob')); // bob seq 1
          const m1 = tmsg('t', 'alice', { body: new Uint8Array([1, 2, 3]), ts: 1_700_000_000_001 });
          await store.topicAppend(m1);
          assert.deepEqual(await store.topicsBehind(), ['t']);
          // dave joins after message 1 (before its fan-out): not a member of 1
          await store.topicJoin('t', 'dave');
          const m2 = tmsg('t', 'bob', { ts: 1_700_000_000_002 });
          await store.topicAppend(m2);
          // carol leaves after message 2 (before its fan-out): still a member of 2
          assert.equal(await store.topicLeave('t', 'carol'), 'ok');
          const r1 = await store.topicFanout('t', 1000);
          assert.equal(r1.done, true);
          assert.deepEqual(
            r1.messages.map((m) => [m.tseq, m.mid, m.from, [...m.body], m.ts, m.topic]),
            [
              [1, m1.mid, 'alice', [1, 2, 3], m1.ts, 't'],
              [2, m2.mid, 'bob', [...m2.body], m2.ts, 't'],
            ],
          );
          assert.deepEqual(r1.messages[0]!.copies.map((c) => [c.user, c.seq, c.tseq, c.mid]).sort(), [
            ['alice', 1, 1, m1.mid],
            ['bob', 2, 1, m1.mid],
            ['carol', 1, 1, m1.mid],
          ]);
          assert.deepEqual(r1.messages[1]!.copies.map((c) => [c.user, c.seq]).sort(), [
            ['alice', 2],
            ['bob', 3],
            ['carol', 2],
            ['dave', 1],
          ]);
          assert.deepEqual(await store.topicsBehind(), []);
          await store.appendP2P(msg('x', 'bob')); // bob seq 4
          const m3 = tmsg('t', 'dave');
          await store.topicAppend(m3);
          const copies = await fanAll(store, 't');
          assert.deepEqual(copies.map((c) => [c.user, c.seq]).sort(), [
            ['alice', 3],
            ['bob', 5],
            ['dave', 2],
          ]);
          // a second run has nothing left to do
          assert.deepEqual(await store.topicFanout('t', 1000), { messages: [], done: true });
          const { messages, head } = await store.readInbox('bob', 0, 10);
          assert.equal(head.seq, 5);
          assert.deepEqual(
            messages.map((m) => [m.seq, m.topic ?? null, m.tseq ?? null, m.to ?? null, m.from]),
            [
              [1, null, null, 'bob', 'x'],
              [2, 't', 1, null, 'alice'],
              [3, 't', 2, null, 'bob'],
              [4, null, null, 'bob', 'x'],
              [5, 't', 3, null, 'dave'],
            ],
          );
          const c1 = messages[1]!;
          assert.equal(c1.mid, m1.mid);
          assert.equal(c1.ts, m1.ts);
          assert.ok(c1.body instanceof Uint8Array);
          assert.deepEqual([...c1.body], [1, 2, 3]);
          assert.equal(text(messages[4]!.body), 'dave@t');
          assert.deepEqual(
            (await store.readInbox('carol', 0, 10)).messages.map((m) => m.tseq),
            [1, 2],
          );
          assert.deepEqual(
            (await store.readInbox('dave', 0, 10)).messages.map((m) => m.tseq),
            [2, 3],
          );
          assert.deepEqual(await store.topicInfo('t'), {
            topic: 't',
            creator: 'alice',
            created: 1,
            members: 3,
            tseq: 3,
            fanned: 3,
          });
        }));

      it('a re-join keeps what the old membership is owed, and nothing between', () =>
        withStore(undefined, async (store) => {
          await store.topicCreate('t', 'alice', 1);
          await store.topicJoin('t', 'bob');
          await store.topicJoin('t', 'carol');
          await store.topicAppend(tmsg('t', 'alice')); // 1: bob, carol
          await store.topicLeave('t', 'bob');
          await store.topicLeave('t', 'carol');
          await store.topicJoin('t', 'carol'); // nothing sent since the leave
          await store.topicAppend(tmsg('t', 'alice')); // 2: carol, not bob
          assert.equal(await store.topicJoin('t', 'bob'), 3);
          await store.topicAppend(tmsg('t', 'alice')); // 3: bob, carol
          await fanAll(store, 't', 1);
          const tseqs = async (u: string) => (await store.readInbox(u, 0, 10)).messages.map((m) => [m.seq, m.tseq]);
          assert.deepEqual(await tseqs('alice'), [
            [1, 1],
            [2, 2],
            [3, 3],
          ]);
          assert.deepEqual(await tseqs('bob'), [
            [1, 1],
            [2, 3],
          ]);
          assert.deepEqual(await tseqs('carol'), [
            [1, 1],
            [2, 2],
            [3, 3],
          ]);
        }));

      it('fan-out in small steps resumes, across a reopen too, with no duplicate and no miss', async (t) => {
        await withStore(undefined, async (first, handle) => {
          let store = first;
          const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
          await store.topicCreate('t', 'u0', 1);
          for (const u of users) await store.topicJoin('t', u);
          for (let i = 0; i < 5; i++) {
            await store.appendP2P(msg('x', 'u3'));
            await store.topicAppend(tmsg('t', users[i * 2]!, { body: bytes(`m${i + 1}`) }));
          }
          const copies: FanoutCopy[] = [];
          let steps = 0;
          for (;;) {
            const { messages, done } = await store.topicFanout('t', 3);
            const n = messages.reduce((sum, m) => sum + m.copies.length, 0);
            assert.ok(n <= 4, `a step of limit 3 made ${n} copies`);
            for (const m of messages) copies.push(...m.copies);
            steps++;
            if (done) break;
            if (steps === 7 && handle.reopen) store = await handle.reopen();
            else if (steps === 7) t.diagnostic('this store cannot be reopened');
          }
          assert.ok(steps >= 10);
          const expected = users.flatMap((u) => [1, 2, 3, 4, 5].map((ts) => `${u}#${ts}`)).sort();
          assert.deepEqual(pairs(copies), expected);
          for (const u of users) {
            const { messages, head } = await store.readInbox(u, 0, 100);
            const topicOnes = messages.filter((m) => m.topic === 't');
            assert.deepEqual(
              topicOnes.map((m) => [m.tseq, text(m.body)]),
              [1, 2, 3, 4, 5].map((i) => [i, `m${i}`]),
            );
            assert.deepEqual(
              messages.map((m) => m.seq),
              Array.from({ length: head.seq }, (_, i) => i + 1),
            );
            assert.equal(head.seq, u === 'u3' ? 10 : 5);
          }
          assert.deepEqual(await store.topicsBehind(), []);
        });
      });

      it('concurrent fan-outs of one topic make no duplicate', () =>
        withStore(undefined, async (store) => {
          await store.topicCreate('t', 'a', 1);
          const users = Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, '0')}`);
          for (const u of users) await store.topicJoin('t', u);
          for (let i = 0; i < 4; i++) await store.topicAppend(tmsg('t', 'a'));
          const [x, y, z] = await Promise.all([fanAll(store, 't', 7), fanAll(store, 't', 5), fanAll(store, 't', 1000)]);
          const all = [...x, ...y, ...z];
          const expected = ['a', ...users].flatMap((u) => [1, 2, 3, 4].map((ts) => `${u}#${ts}`)).sort();
          assert.deepEqual(pairs(all), expected);
          for (const u of ['a', ...users]) {
            const { messages } = await store.readInbox(u, 0, 100);
            assert.deepEqual(
              messages.map((m) => [m.seq, m.tseq]),
              [1, 2, 3, 4].map((i) => [i, i]),
            );
          }
        }));

      it('topicsBehind lists a topic until it is fanned out; listTopics pages by name', () =>
        withStore(undefined, async (store) => {
          for (const tp of ['b', 'a', 'c']) await store.topicCreate(tp, 'alice', 1);
          await store.topicJoin('a', 'bob');
          await store.topicAppend(tmsg('c', 'alice'));
          await store.topicAppend(tmsg('a', 'alice'));
          assert.deepEqual([...(await store.topicsBehind())].sort(), ['a', 'c']);
          await store.topicFanout('a', 1); // alice of message 1 only
          assert.deepEqual([...(await store.topicsBehind())].sort(), ['a', 'c']);
          assert.equal((await store.topicInfo('a'))!.fanned, 0);
          await fanAll(store, 'a');
          assert.deepEqual(await store.topicsBehind(), ['c']);
          await fanAll(store, 'c');
          assert.deepEqual(await store.topicsBehind(), []);
          const page1 = await store.listTopics(undefined, 2);
          assert.deepEqual(
            page1.map((i) => [i.topic, i.members, i.tseq, i.fanned]),
            [
              ['a', 2, 1, 1],
              ['b', 1, 0, 0],
            ],
          );
          assert.deepEqual(
            (await store.listTopics('b', 2)).map((i) => i.topic),
            ['c'],
          );
        }));

      it('trim keeps log rows not yet fanned out', () =>
        withStore(undefined, async (store) => {
          const now = Date.now();
          await store.topicCreate('t', 'alice', now);
          await store.topicJoin('t', 'bob');
          await store.topicAppend(tmsg('t', 'alice', { ts: now, body: bytes('old') }));
          await fanAll(store, 't');
          await store.topicAppend(tmsg('t', 'alice', { ts: now + 1, body: bytes('pending') }));
          const later = now + 8 * 24 * 3600_000;
          assert.ok((await store.trim(later)) >= 2); // the copies of message 1 at least
          assert.equal((await store.readInbox('bob', 0, 10)).messages.length, 0);
          const copies = await fanAll(store, 't');
          assert.deepEqual(pairs(copies), ['alice#2', 'bob#2']);
          const { messages } = await store.readInbox('bob', 0, 10);
          assert.deepEqual(
            messages.map((m) => [m.seq, m.tseq, text(m.body)]),
            [[2, 2, 'pending']],
          );
          // trimming within retention keeps everything
          assert.equal(await store.trim(now), 0);
          assert.equal((await store.readInbox('alice', 0, 10)).messages.length, 1);
        }));
    });

    describe('user records and the directory for the manager', () => {
      it('recordUserEvent keeps first/last seen and each device’s last event', () =>
        withStore(undefined, async (store) => {
          assert.equal(await store.userRecord('bob'), null);
          await store.recordUserEvent({ k: 'login', user: 'bob', device: 'phone', server: 'ms1', ts: 1000 });
          await store.recordUserEvent({ k: 'login', user: 'bob', device: 'laptop', server: 'ms2', ts: 2000 });
          let r = (await store.userRecord('bob'))!;
          assert.equal(r.user, 'bob');
          assert.equal(r.firstSeen, 1000);
          assert.equal(r.lastSeen, 2000);
          assert.equal(r.online, true);
          const byDevice = (rec: typeof r) => [...rec.devices].sort((a, b) => (a.device < b.device ? -1 : 1));
          assert.deepEqual(byDevice(r), [
            { device: 'laptop', lastSeen: 2000, online: true, server: 'ms2' },
            { device: 'phone', lastSeen: 1000, online: true, server: 'ms1' },
          ]);
          await store.recordUserEvent({ k: 'logout', user: 'bob', device: 'phone', server: 'ms1', ts: 3000 });
          r = (await store.userRecord('bob'))!;
          assert.equal(r.online, true);
          await store.recordUserEvent({ k: 'kick', user: 'bob', device: 'laptop', server: 'ms2', ts: 4000 });
          r = (await store.userRecord('bob'))!;
          assert.equal(r.online, false);
          assert.equal(r.lastSeen, 4000);
          assert.equal(r.firstSeen, 1000);
          assert.deepEqual(
            byDevice(r).map((d) => [d.device, d.lastSeen, d.online]),
            [
              ['laptop', 4000, false],
              ['phone', 3000, false],
            ],
          );
          assert.equal(await store.userRecord('carol'), null);
        }));

      it('listSessions pages the whole directory by (user, device); deviceAcks', () =>
        withStore(undefined, async (store) => {
          const logins: [string, string][] = [
            ['bob', 'phone'],
            ['alice', 'b'],
            ['alice', 'a'],
            ['carol', 'x'],
            ['bob', 'laptop'],
          ];
          for (const [user, device] of logins)
            await store.login({ user, device, server: 'ms1', boot: 'b1', push: true });
          const all = await store.listSessions(undefined, 100);
          assert.deepEqual(
            all.map((e) => `${e.user}/${e.device}`),
            ['alice/a', 'alice/b', 'bob/laptop', 'bob/phone', 'carol/x'],
          );
          assert.deepEqual(all[0], { user: 'alice', device: 'a', server: 'ms1', boot: 'b1', gen: 1 });
          assert.deepEqual(
            (await store.listSessions(undefined, 2)).map((e) => e.device),
            ['a', 'b'],
          );
          // after a user name: the entries of later users
          assert.deepEqual(
            (await store.listSessions('alice', 100)).map((e) => `${e.user}/${e.device}`),
            ['bob/laptop', 'bob/phone', 'carol/x'],
          );
          // after a "user/device" cursor: the entries after that one
          assert.deepEqual(
            (await store.listSessions('bob/laptop', 2)).map((e) => `${e.user}/${e.device}`),
            ['bob/phone', 'carol/x'],
          );
          assert.deepEqual(await store.listSessions('carol', 10), []);

          for (let i = 0; i < 5; i++) await store.appendP2P(msg('x', 'bob'));
          await store.ack('bob', 'phone', 3);
          await store.ack('bob', 'laptop', 5);
          const acks = [...(await store.deviceAcks('bob'))].sort((a, b) => (a.device < b.device ? -1 : 1));
          assert.deepEqual(acks, [
            { device: 'laptop', acked: 5 },
            { device: 'phone', acked: 3 },
          ]);
          assert.deepEqual(await store.deviceAcks('nobody'), []);
        }));
    });

    describe('durability', () => {
      it('reopening keeps messages, counters and the directory, and continues seq', async (t) => {
        await withStore({ maxInbox: 3 }, async (store, handle) => {
          if (!handle.reopen) {
            t.skip('this store cannot be reopened');
            return;
          }
          for (let i = 1; i <= 5; i++)
            await store.appendP2P(msg('alice', 'bob', { body: bytes(`${i}`), cid: `c${i}` }));
          await store.ack('bob', 'phone', 4);
          const l = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
          await store.renewLease('ms1', 'b1', 60_000);
          const head = await store.head('bob');
          // writes queued right before reopen still land
          const pending = store.appendP2P(msg('alice', 'carol'));

          const again = await handle.reopen();
          assert.equal((await pending).seq, 1);
          assert.deepEqual(await again.head('bob'), head);
          const { messages } = await again.readInbox('bob', 0, 10);
          assert.deepEqual(
            messages.map((m) => [m.seq, text(m.body)]),
            [
              [3, '3'],
              [4, '4'],
              [5, '5'],
            ],
          );
          const dup = await again.appendP2P(msg('alice', 'bob', { cid: 'c5' }));
          assert.equal(dup.duplicate, true);
          assert.equal(dup.seq, 5);
          assert.equal((await again.appendP2P(msg('alice', 'bob'))).seq, 6);
          assert.equal((await again.appendP2P(msg('alice', 'carol'))).seq, 2);
          assert.deepEqual(await again.sessions('bob'), [
            { user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', gen: l.gen },
          ]);
          const next = await again.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: true });
          assert.equal(next.gen, l.gen + 1);
          assert.equal(next.acked, 4);
          assert.equal(await again.renewLease('ms1', 'b1', 60_000), true);
        });
      });
    });
  });
}
