/**
 * The gateway learns msg_servers from their beats: a stopped one leaves
 * `route` within 3 beats, a new one appears within one beat.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawConn } from './helpers/raw.js';
import { startTestCluster } from './helpers/cluster.js';

const BEAT = 100;

async function routeIds(conn: RawConn): Promise<string[]> {
  const f = await conn.request({ op: 'route', rid: 1 });
  if (f.op === 'error') return [];
  return (f.servers as { id: string }[]).map((s) => s.id);
}

async function waitFor(pred: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

describe('gateway', () => {
  it('drops a stopped msg_server within 3 beats and adds a new one within a beat; overloaded when none', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: BEAT } });
    try {
      const conn = await RawConn.connect(c.gateway);
      // Before the first beats the seed list stands in (ids unknown yet); within a beat the beats name them.
      assert.equal((await routeIds(conn)).length, 2);
      await waitFor(async () => (await routeIds(conn)).sort().join() === 'ms-0,ms-1', BEAT + 100, 'beats of both');
      await c.msgServers[0]!.stop();
      const gone = await waitFor(
        async () => !(await routeIds(conn)).includes('ms-0'),
        3 * BEAT + 200,
        'ms-0 to leave route',
      );
      assert.ok(gone <= 3 * BEAT + 150, `left after ${gone} ms`);
      await c.addMsgServer('ms-new');
      await waitFor(async () => (await routeIds(conn)).includes('ms-new'), BEAT + 100, 'ms-new to appear');
      // least loaded first
      const busy = await RawConn.connect(c.msgServers[1]!.addresses.tcp!);
      await busy.request({ op: 'login', rid: 2, user: 'u1', token: c.token('u1') });
      await waitFor(async () => (await routeIds(conn))[0] === 'ms-new', 3 * BEAT, 'least loaded first');
      busy.close();
      await c.msgServers[1]!.stop();
      await c.msgServers[2]!.stop();
      await waitFor(async () => (await routeIds(conn)).length === 0, 3 * BEAT + 200, 'no msg_server left');
      const f = await conn.request({ op: 'route', rid: 9 });
      assert.deepEqual([f.op, f.code, f.rid], ['error', 'overloaded', 9]);
      conn.close();
    } finally {
      await c.stop();
    }
  });
});

describe('route spreads the logins between two beats', () => {
  it('a route for a user counts on the first server until its next beat; one without a user does not', async () => {
    const { ServerList } = await import('../runtime/roles/gateway/index.js');
    const now = Date.now();
    const list = new ServerList(2000, ['h:1', 'h:2', 'h:3'], now);
    const firsts = [];
    for (let i = 0; i < 9; i++) firsts.push(list.route(now, true).servers[0]!.addr);
    assert.deepEqual(firsts, ['h:1', 'h:2', 'h:3', 'h:1', 'h:2', 'h:3', 'h:1', 'h:2', 'h:3']);
    // A look without a login in view changes nothing.
    const look = list.route(now).servers.map((s) => s.addr);
    assert.deepEqual(
      look,
      list.route(now).servers.map((s) => s.addr),
    );

    // Over the wire: routes with a user alternate over two idle msg_servers; without one they repeat.
    const c = await startTestCluster({ settings: { beat: 60_000 } });
    try {
      const gw = await RawConn.connect(c.gateway);
      const first = async (user?: string) =>
        ((await gw.request({ op: 'route', rid: 1, user })).servers as { id: string }[])[0]!.id;
      const plain = [await first(), await first(), await first()];
      assert.equal(new Set(plain).size, 1, `no user: ${plain}`);
      const spread = [await first('u1'), await first('u2'), await first('u3'), await first('u4')];
      assert.equal(spread[0], spread[2]);
      assert.equal(spread[1], spread[3]);
      assert.notEqual(spread[0], spread[1]);
      gw.close();
    } finally {
      await c.stop();
    }
  });
});
