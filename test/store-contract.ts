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
import type { AppendP2P, AppendResult, DirEntry, Store, StoreLimits } from '../runtime/store/store.js';

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

const sortDir = (entries: DirEntry[]) =>
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
          assert.deepEqual(bob.map((r) => r.seq), [1, 2, 3]);
          assert.deepEqual(carol.map((r) => r.seq), [1, 2]);
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
          assert.deepEqual(pages, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
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
          assert.deepEqual(await store.sessions('bob'), [{ user: 'bob', device: 'd', server: 'ms3', boot: 'b', gen: 3 }]);
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
          assert.deepEqual(
            all.map((l) => l.server).sort(),
            ['ms1', 'ms2'],
          );
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

    describe('durability', () => {
      it('reopening keeps messages, counters and the directory, and continues seq', async (t) => {
        await withStore({ maxInbox: 3 }, async (store, handle) => {
          if (!handle.reopen) {
            t.skip('this store cannot be reopened');
            return;
          }
          for (let i = 1; i <= 5; i++) await store.appendP2P(msg('alice', 'bob', { body: bytes(`${i}`), cid: `c${i}` }));
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
