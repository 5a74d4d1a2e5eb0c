/**
 * Fuzzing of FrameDecoder + parseRequest (+ scanCbor) with a seeded PRNG:
 * random and mutated frames never make them throw, only documented codes come
 * out, accepted requests agree with cbor-x, and a valid frame still parses
 * right after each case (no state is left corrupted).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// not 'cbor-x': its native string extractor crashes Bun on long text (see runtime/protocol/decode.ts)
import { Decoder } from 'cbor-x/index-no-eval';
import {
  FrameDecoder,
  MSG_SERVER_OPS,
  RawCbor,
  encodeBody,
  encodeCbor,
  encodeFrame,
  parseRequest,
  scanCbor,
  type Op,
  type ParseResult,
  type WireValue,
} from '../runtime/protocol/index.js';
import { insertAt, prng, RAW_BASICS, randomValue, type Rng, type ValueCorpus } from './helpers/fuzz.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eedf15) >>> 0;
const CASES = 10_000;
const MAX_FRAME = 4096;
const ALL_OPS = new Set<Op>([...MSG_SERVER_OPS, 'route']);
const OPTS = { ops: ALL_OPS, maxFrame: MAX_FRAME };
const PARSE_CODES = new Set(['bad_frame', 'bad_request', 'unknown_op']);
const FEED_RESULTS = new Set([null, 'bad_frame', 'frame_too_large']);

const NAMES = ['alice', 'bob', 'a.b@c-d_E9', 'x'.repeat(64), '', 'x'.repeat(65), 'bad name', 'é', 'general'];
const INTS: WireValue[] = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  -1,
  -1000,
  1.5,
  5.0,
  2n ** 63n,
  1000,
  1001,
  100,
];

const VALUES: ValueCorpus = {
  ints: INTS,
  names: NAMES,
  maxBytes: 8,
  raw: [
    ...RAW_BASICS,
    new Uint8Array([0xbf, 0x01, 0x02, 0xff]), // indefinite map, integer key
    new Uint8Array([0xf7]), // undefined
    new Uint8Array([0xf9, 0x45, 0x00]), // half float 5.0
  ],
  keys: ['a', 'b', 'text', 'n', 'op'],
};

const FIELDS = [
  'rid',
  'user',
  'device',
  'token',
  'push',
  'to',
  'topic',
  'body',
  'cid',
  'seq',
  'after',
  'limit',
  'extra',
] as const;

/** A request map: mostly plausible, with random field values mixed in. */
function randomRequest(r: Rng): Record<string, WireValue> {
  const op = r.next() < 0.9 ? r.pick([...ALL_OPS]) : r.pick(['nope', '', 'PING', 'route']);
  const m: Record<string, WireValue> = { op };
  if (r.next() < 0.8) m.rid = r.next() < 0.85 ? r.int(2 ** 32) : r.pick(INTS);
  const good: Record<string, () => WireValue> = {
    user: () => r.pick(['alice', 'bob', 'u1']),
    device: () => 'phone',
    token: () => 'a.b.c',
    push: () => r.next() < 0.5,
    to: () => 'bob',
    topic: () => 'general',
    body: () => randomValue(r, VALUES, 0),
    cid: () => 'cid-' + r.int(100),
    seq: () => r.int(1_000_000),
    after: () => (op === 'topic_members' ? 'bob' : r.int(1000)),
    limit: () => 1 + r.int(1000),
    extra: () => randomValue(r, VALUES, 0),
  };
  for (const f of FIELDS) {
    if (f === 'rid' || r.next() < 0.5) continue;
    m[f] = r.next() < 0.85 ? (good[f] as () => WireValue)() : randomValue(r, VALUES, 0);
  }
  return m;
}

function mutate(r: Rng, frame: Uint8Array, other: Uint8Array): Uint8Array {
  let b = frame.slice();
  // mostly inside the payload (the length prefix has its own mutation below)
  const pos = () => (b.length > 4 && r.next() < 0.9 ? 4 + r.int(b.length - 4) : r.int(b.length));
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.int(8)) {
      case 0: // flip a bit
        if (b.length) b[pos()]! ^= 1 << r.int(8);
        break;
      case 1: // set a byte
        if (b.length)
          b[pos()] = r.pick([0x00, 0x18, 0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xdf, 0xf8, 0xff, r.int(256)]);
        break;
      case 2: // truncate
        b = b.slice(0, r.int(b.length + 1));
        break;
      case 3: {
        // splice a piece of another frame in
        const at = r.int(b.length + 1);
        const from = r.int(other.length + 1);
        b = insertAt(b, at, other.subarray(from, from + r.int(32)));
        break;
      }
      case 4: {
        // change the length prefix
        if (b.length >= 4) {
          const v = r.pick([
            0,
            1,
            b.length - 5,
            b.length - 3,
            MAX_FRAME,
            MAX_FRAME + 1,
            0xffffffff,
            r.int(MAX_FRAME * 2),
          ]);
          new DataView(b.buffer, b.byteOffset).setUint32(0, Math.max(0, v) >>> 0);
        }
        break;
      }
      case 5: {
        // change a CBOR length inside: find a head byte with a length and bump it
        if (b.length > 5) {
          const i = 4 + r.int(b.length - 4);
          const major = b[i]! >> 5;
          if (major >= 2 && major <= 5) b[i] = (major << 5) | r.pick([0, 1, 23, 24, 25, 26, 27, 31, r.int(32)]);
        }
        break;
      }
      case 6: {
        // insert random bytes
        const at = r.int(b.length + 1);
        b = insertAt(b, at, r.bytes(1 + r.int(6)));
        break;
      }
      default: {
        // delete a range
        const at = r.int(b.length + 1);
        const n = r.int(8);
        const out = new Uint8Array(Math.max(0, b.length - n));
        out.set(b.subarray(0, at).subarray(0, out.length));
        if (at + n < b.length) out.set(b.subarray(at + n), at);
        b = out;
      }
    }
  }
  return b;
}

function prefixed(payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(payload.length + 4);
  new DataView(f.buffer).setUint32(0, payload.length);
  f.set(payload, 4);
  return f;
}

const cborx = new Decoder({ useRecords: false, mapsAsObjects: true });

function checkResult(res: ParseResult, payload: Uint8Array): void {
  if (!res.ok) {
    assert.ok(PARSE_CODES.has(res.code), `unexpected code ${res.code}`);
    assert.equal(typeof res.message, 'string');
    if (res.code === 'bad_frame') assert.equal(res.rid, undefined);
    if (res.rid !== undefined) assert.ok(Number.isInteger(res.rid) && res.rid >= 0 && res.rid < 2 ** 32);
    return;
  }
  // An accepted request is one well-formed item...
  assert.equal(scanCbor(payload, 0, payload.length, 64), payload.length);
  const req = res.req as unknown as Record<string, unknown>;
  assert.ok(ALL_OPS.has(req.op as Op));
  const body = req.body;
  if (body !== undefined) {
    assert.ok(body instanceof Uint8Array);
    assert.equal(scanCbor(body, 0, body.length, 64), body.length);
    assert.ok(body.length <= MAX_FRAME - 512);
  }
  // ...and agrees with an independent decoder where that one can read it.
  let ref: Record<string, unknown> | undefined;
  try {
    ref = cborx.decode(payload) as Record<string, unknown>;
  } catch {
    return; // cbor-x does not do indefinite strings, some tags, ...
  }
  if (!ref || typeof ref !== 'object') return;
  assert.equal(ref.op, req.op);
  if (req.rid !== undefined) assert.equal(Number(ref.rid), req.rid);
  for (const f of ['user', 'to', 'topic', 'cid', 'token']) if (req[f] !== undefined) assert.equal(ref[f], req[f], f);
  for (const f of ['seq', 'after', 'limit']) {
    if (req[f] === undefined || ref[f] === undefined) continue;
    if (typeof req[f] === 'number') assert.equal(Number(ref[f]), req[f], f);
    else assert.equal(ref[f], req[f], f); // topic_members after: a name
  }
  if (req.op === 'login' && ref.push !== undefined) assert.equal(ref.push, req.push);
}

describe('protocol fuzz', () => {
  it(`${CASES} random and mutated frames through FrameDecoder + parseRequest (seed ${SEED})`, () => {
    const r = prng(SEED);
    const sentinelReq = {
      op: 'send',
      rid: 77,
      to: 'bob',
      body: new RawCbor(encodeBody({ n: 1, b: new Uint8Array([1, 2]) })),
      cid: 'c',
    };
    const sentinel = encodeFrame(sentinelReq);
    const stats = {
      frames: 0,
      ok: 0,
      bad_frame: 0,
      bad_request: 0,
      unknown_op: 0,
      frame_too_large: 0,
      feedBadFrame: 0,
    };
    const valid: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) valid.push(encodeFrame(randomRequest(r)));
    const started = Date.now();

    for (let c = 0; c < CASES; c++) {
      // 1. build a stream: mutated valid frames, random bytes, or a mix
      let stream: Uint8Array;
      const kind = r.int(10);
      if (kind === 0) {
        stream = r.bytes(r.int(64));
      } else if (kind === 1) {
        // random bytes behind a correct length prefix
        stream = prefixed(r.bytes(1 + r.int(64)));
      } else {
        const base = encodeFrame(randomRequest(r));
        if (valid.length < 200) valid.push(base);
        stream = kind < 4 ? base : mutate(r, base, r.pick(valid));
        if (r.next() < 0.3) {
          // a second frame after it, maybe mutated
          const second = r.pick(valid);
          const s2 = r.next() < 0.5 ? second : mutate(r, second, base);
          const joined = new Uint8Array(stream.length + s2.length);
          joined.set(stream);
          joined.set(s2, stream.length);
          stream = joined;
        }
      }

      // 2. feed it in random chunks; parse every frame
      const dec = new FrameDecoder(MAX_FRAME);
      let off = 0;
      let ended: string | null = null;
      while (off < stream.length && ended === null) {
        const n = 1 + r.int(r.next() < 0.5 ? 8 : stream.length);
        const chunk = stream.slice(off, off + n);
        off += n;
        const res = dec.feed(chunk, (payload) => {
          stats.frames++;
          assert.ok(payload.length >= 1 && payload.length <= MAX_FRAME);
          const pr = parseRequest(payload, OPTS);
          checkResult(pr, payload);
          if (pr.ok) stats.ok++;
          else stats[pr.code as 'bad_frame' | 'bad_request' | 'unknown_op']++;
        });
        assert.ok(FEED_RESULTS.has(res), `feed returned ${String(res)}`);
        ended = res;
      }
      if (ended === 'frame_too_large') stats.frame_too_large++;
      if (ended === 'bad_frame') stats.feedBadFrame++;
      if (ended !== null)
        assert.equal(
          dec.feed(sentinel, () => assert.fail('frame after an error')),
          ended,
        );

      // 3. the raw stream as one payload straight into parseRequest/scanCbor as well
      if (stream.length > 0) {
        checkResult(parseRequest(stream, OPTS), stream);
        const s = scanCbor(stream, 0, stream.length, 64);
        assert.ok(s === -1 || (s > 0 && s <= stream.length));
      }

      // 4. a valid frame right after still parses correctly
      const fresh = new FrameDecoder(MAX_FRAME);
      let got: ParseResult | null = null;
      assert.equal(
        fresh.feed(sentinel, (p) => (got = parseRequest(p, OPTS))),
        null,
      );
      const g = got as ParseResult | null;
      assert.ok(g?.ok, 'sentinel frame must parse');
      assert.equal(g.req.op, 'send');
      assert.equal(g.req.rid, 77);
      assert.deepEqual(
        Buffer.from((g.req as { body: Uint8Array }).body),
        Buffer.from(encodeBody({ n: 1, b: new Uint8Array([1, 2]) })),
      );
      // and the shared encoder still encodes right
      assert.deepEqual(Buffer.from(encodeCbor({ op: 'ok', rid: c })), Buffer.from(encodeCbor({ op: 'ok', rid: c })));
    }

    const ms = Date.now() - started;
    if (process.env.FUZZ_STATS) console.log(JSON.stringify({ ...stats, ms }));
    // every path was exercised
    assert.ok(stats.ok > 500, JSON.stringify(stats));
    assert.ok(stats.bad_frame > 500, JSON.stringify(stats));
    assert.ok(stats.bad_request > 100, JSON.stringify(stats));
    assert.ok(stats.unknown_op > 50, JSON.stringify(stats));
    assert.ok(stats.frame_too_large > 50, JSON.stringify(stats));
    assert.ok(stats.feedBadFrame > 10, JSON.stringify(stats));
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });

  it('random byte strings straight into scanCbor never throw and never over-read', () => {
    const r = prng(SEED ^ 0xabcdef);
    const heads = [
      0x18, 0x19, 0x1a, 0x1b, 0x5b, 0x7b, 0x9b, 0xbb, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xd8, 0xdb, 0xf8, 0xf9, 0xfa, 0xfb,
      0xff,
    ];
    for (let i = 0; i < 20_000; i++) {
      const b = r.bytes(r.int(40));
      for (let j = 0; j < b.length; j++) if (r.next() < 0.3) b[j] = r.pick(heads);
      const start = r.int(b.length + 1);
      const end = start + r.int(b.length - start + 1);
      const s = scanCbor(b, start, end, 1 + r.int(5));
      assert.ok(s === -1 || (s > start && s <= end), `${s} for [${start}, ${end})`);
      if (b.length) {
        const pr = parseRequest(b, OPTS);
        assert.ok(pr.ok || PARSE_CODES.has(pr.code));
      }
    }
  });
});
