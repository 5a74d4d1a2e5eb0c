/**
 * Unit tests of runtime/protocol: CBOR encoder and scanner, framing, request
 * validation, cbor-x helpers. node:test + node:assert only (runs on Node and Bun).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
// not 'cbor-x': its native string extractor crashes Bun on long text (see decode.ts)
import { decode as cborxDecode } from 'cbor-x/index-no-eval';
import {
  CborHead,
  ERROR_CODES,
  FrameDecoder,
  HEAD_BAD,
  HEAD_INDEFINITE,
  GATEWAY_OPS,
  MSG_SERVER_OPS,
  RawCbor,
  decodeFrame,
  encodeBody,
  encodeCbor,
  encodeFrame,
  parseRequest,
  scanCbor,
  type Op,
  type ParseResult,
  type Request,
  type WireValue,
} from '../runtime/protocol/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** Compares bytes regardless of Buffer vs Uint8Array. */
const sameBytes = (a: unknown, b: Uint8Array, msg?: string) => {
  assert.ok(a instanceof Uint8Array, msg ?? 'expected bytes');
  assert.equal(hex(a), hex(b), msg);
};

// ---------------------------------------------------------------------------
describe('encodeCbor', () => {
  it('round-trips every type through cbor-x', () => {
    const value = {
      zero: 0,
      small: 23,
      u8: 24,
      u16: 1000,
      u32: 1_000_000,
      u32max: 0xffff_ffff,
      u53: Number.MAX_SAFE_INTEGER,
      neg: -1,
      neg24: -25,
      negBig: -5_000_000_000,
      negSafe: Number.MIN_SAFE_INTEGER,
      float: 1.5,
      negFloat: -4.1,
      nan: NaN,
      inf: Infinity,
      unsafe: 2 ** 60,
      t: true,
      f: false,
      nil: null,
      empty: '',
      ascii: 'hello',
      unicode: 'héllo wörld — 水 😀',
      long: 'x'.repeat(300) + 'é'.repeat(200),
      longAscii: 'abc'.repeat(40_000),
      bytes: new Uint8Array([0, 1, 2, 255]),
      emptyBytes: new Uint8Array(0),
      arr: [1, 'two', [3, [4]], { five: 5 }],
      emptyArr: [],
      emptyObj: {},
      nested: { a: { b: { c: [null] } } },
    };
    const enc = encodeCbor(value);
    const dec = decodeFrame(enc); // cbor-x, with safe uint64 narrowed to numbers
    assert.equal(typeof (cborxDecode(enc) as { u53: unknown }).u53, 'bigint'); // an integer on the wire
    for (const [k, v] of Object.entries(value)) {
      if (v instanceof Uint8Array) sameBytes(dec[k], v, k);
      else if (typeof v === 'number' && Number.isNaN(v)) assert.ok(Number.isNaN(dec[k] as number), k);
      else assert.deepEqual(dec[k], v, k);
    }
  });

  it('writes integers with the shortest head, and >= 2^32 as uint64 (never float)', () => {
    assert.equal(hex(encodeCbor(0)), '00');
    assert.equal(hex(encodeCbor(23)), '17');
    assert.equal(hex(encodeCbor(24)), '1818');
    assert.equal(hex(encodeCbor(255)), '18ff');
    assert.equal(hex(encodeCbor(256)), '190100');
    assert.equal(hex(encodeCbor(65535)), '19ffff');
    assert.equal(hex(encodeCbor(65536)), '1a00010000');
    assert.equal(hex(encodeCbor(0xffff_ffff)), '1affffffff');
    assert.equal(hex(encodeCbor(2 ** 32)), '1b0000000100000000');
    assert.equal(hex(encodeCbor(Number.MAX_SAFE_INTEGER)), '1b001fffffffffffff');
    assert.equal(hex(encodeCbor(-1)), '20');
    assert.equal(hex(encodeCbor(-24)), '37');
    assert.equal(hex(encodeCbor(-25)), '3818');
    assert.equal(hex(encodeCbor(-1000)), '3903e7');
    assert.equal(hex(encodeCbor(-(2 ** 32) - 1)), '3b0000000100000000');
    assert.equal(hex(encodeCbor(1.5)), 'fb3ff8000000000000');
    assert.equal(hex(encodeCbor(2 ** 60)), 'fb43b0000000000000'); // not a safe integer: float64
  });

  it('ts=1764300000000 is an integer with a uint64 head', () => {
    const enc = encodeCbor({ ts: 1764300000000 });
    // a1, 62 't' 's', then the value
    assert.equal(enc[4], 0x1b);
    assert.equal(hex(enc), 'a1627473' + '1b0000019ac8798b00');
    const dec = decodeFrame(enc);
    assert.equal(dec.ts, 1764300000000);
    assert.ok(Number.isInteger(dec.ts));
    // and raw cbor-x gives a bigint: it is an integer on the wire, not a float
    assert.equal((cborxDecode(enc) as { ts: unknown }).ts, 1764300000000n);
  });

  it('encodes bigints as integers and rejects out-of-range ones', () => {
    assert.equal(hex(encodeCbor(5n)), '05');
    assert.equal(hex(encodeCbor(-5n)), '24');
    assert.equal(hex(encodeCbor(2n ** 64n - 1n)), '1bffffffffffffffff');
    assert.equal(hex(encodeCbor(-(2n ** 64n))), '3bffffffffffffffff');
    assert.equal(hex(encodeCbor(2n ** 53n)), '1b0020000000000000');
    assert.throws(() => encodeCbor(2n ** 64n), RangeError);
    assert.throws(() => encodeCbor(-(2n ** 64n) - 1n), RangeError);
    // the shared writer is still fine after a throw
    assert.equal(hex(encodeCbor([1, 'a'])), '82016161');
  });

  it('splices RawCbor verbatim and omits undefined', () => {
    const raw = unhex('a2 01 42 0102 c1 1a514b67b0'); // {1: h'0102', tag 1 int}: integer keys and tags kept
    const enc = encodeCbor({ op: 'msg', body: new RawCbor(raw), skip: undefined, also: undefined });
    assert.equal(hex(enc), 'a2' + '626f70' + '636d7367' + '64626f6479' + hex(raw));
    assert.equal(hex(encodeCbor([new RawCbor(unhex('f6')), 1])), '82f601');
  });

  it('encodes map heads for many keys, and text lengths across head sizes', () => {
    const obj: Record<string, WireValue | undefined> = {};
    for (let i = 0; i < 30; i++) obj['k' + i] = i % 3 === 0 ? undefined : i;
    const enc = encodeCbor(obj);
    assert.equal(enc[0], 0xb4); // 20 defined keys
    const dec = cborxDecode(enc) as Record<string, unknown>;
    assert.equal(Object.keys(dec).length, 20);
    for (const n of [0, 23, 24, 255, 256, 65535, 65536, 70000]) {
      for (const ch of ['a', 'é', '😀']) {
        const s = ch.repeat(Math.ceil(n / Buffer.byteLength(ch)));
        const e = encodeCbor(s);
        assert.equal(cborxDecode(e), s);
        assert.equal(scanCbor(e, 0, e.length, 1), e.length);
        // head is the shortest for the byte length
        const blen = Buffer.byteLength(s);
        const headLen = blen < 24 ? 1 : blen < 256 ? 2 : blen < 65536 ? 3 : 5;
        assert.equal(e.length, headLen + blen);
      }
    }
    // lone surrogates become U+FFFD, as TextEncoder does
    assert.equal(hex(encodeCbor('\ud800')), '63efbfbd');
    assert.equal(hex(encodeCbor('\ud800'.repeat(200))), hex(encodeCbor('\ufffd'.repeat(200))));
  });

  it('encodeFrame views never get overwritten, across slabs and for frames bigger than a slab', () => {
    const kept: { frame: Uint8Array; value: Record<string, WireValue> }[] = [];
    for (let i = 0; i < 3000; i++) {
      const size = i % 500 === 7 ? 40_000 + i : i % 97 === 3 ? 15_000 : i % 13;
      const value = {
        op: 'msg',
        seq: i,
        ts: 1764300000000 + i,
        pad: 'p'.repeat(size),
        b: new Uint8Array(size % 50).fill(i & 0xff),
      };
      kept.push({ frame: encodeFrame(value), value });
    }
    // a map of few keys whose values move it to a new slab halfway (its head is patched after)
    const moved = { op: 'x', a: 'a'.repeat(10_000), b: 'b'.repeat(20_000), c: 'c' };
    kept.push({ frame: encodeFrame(moved), value: moved });
    for (const { frame, value } of kept) {
      assert.equal(new DataView(frame.buffer, frame.byteOffset).getUint32(0), frame.length - 4);
      const d = decodeFrame(frame.subarray(4));
      assert.equal(d.seq, value.seq);
      assert.equal(d.pad, value.pad);
      assert.equal(d.a, value.a);
      if (value.b instanceof Uint8Array) sameBytes(d.b, value.b);
      else assert.equal(d.b, value.b);
    }
    // encodeCbor results own their memory
    const own = encodeCbor({ x: 1 });
    assert.equal(own.byteOffset, 0);
    assert.equal(own.buffer.byteLength, own.length);
  });

  it('a getter that encodes while encoding gets its own writer', () => {
    const inner = {
      get v() {
        return encodeCbor(['inner', 1]);
      },
    };
    const outer = encodeFrame({ op: 'x', inner: inner.v as WireValue, tail: 'end' });
    const tricky: Record<string, WireValue> = { op: 'y' };
    Object.defineProperty(tricky, 'z', {
      enumerable: true,
      get: () => new RawCbor(encodeFrame({ op: 'nested' }).subarray(4)),
    });
    const f = encodeFrame(tricky);
    assert.deepEqual(decodeFrame(f.subarray(4)), { op: 'y', z: { op: 'nested' } });
    assert.equal(decodeFrame(outer.subarray(4)).tail, 'end');
  });

  it('results do not alias each other', () => {
    const a = encodeCbor('first');
    const b = encodeCbor('second');
    assert.equal(cborxDecode(a), 'first');
    assert.equal(cborxDecode(b), 'second');
  });
});

// ---------------------------------------------------------------------------
// RFC 8949 Appendix A (encoded forms)
const APPENDIX_A = `
00 01 0a 17 1818 1819 1864 1903e8 1a000f4240 1b000000e8d4a51000 1bffffffffffffffff
c249010000000000000000 3bffffffffffffffff c349010000000000000000 20 29 3863 3903e7
f90000 f98000 f93c00 fb3ff199999999999a f93e00 f97bff fa47c35000 fa7f7fffff fb7e37e43c8800759c
f90001 f90400 f9c400 fbc010666666666666 f97c00 f97e00 f9fc00 fa7f800000 fa7fc00000 faff800000
fb7ff0000000000000 fb7ff8000000000000 fbfff0000000000000 f4 f5 f6 f7 f0 f8ff
c074323031332d30332d32315432303a30343a30305a c11a514b67b0 c1fb41d452d9ec200000 d74401020304
d818456449455446 d82076687474703a2f2f7777772e6578616d706c652e636f6d
40 4401020304 60 6161 6449455446 62225c 62c3bc 63e6b0b4 64f0908591
80 83010203 8301820203820405 98190102030405060708090a0b0c0d0e0f101112131415161718181819
a0 a201020304 a26161016162820203 826161a161626163 a56161614161626142616361436164614461656145
5f42010243030405ff 7f657374726561646d696e67ff 9fff 9f018202039f0405ffff 9f01820203820405ff
83018202039f0405ff 83019f0203ff820405 9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff
bf61610161629f0203ffff 826161bf61626163ff bf6346756ef563416d7421ff
`
  .trim()
  .split(/\s+/);

// RFC 8949 Appendix F.1 (malformed)
const APPENDIX_F = `
18 19 1a 1b 1901 1a0102 1b01020304050607 38 58 78 98 9a01ff00 b8 d8 f8 f900 fa0000 fb000000
41 61 5affffffff00 5bffffffffffffffff010203 7affffffff00 7b7fffffffffffffff010203
81 818181818181818181 8200 a1 a20102 a100 a2000000
c0
5f4100 7f6100
9f 9f0102 bf bf01020102 819f 9f8000 9f9f9f9f9fffffffff 9f819f819f9fffffff
1c 1d 1e 3c 3d 3e 5c 5d 5e 7c 7d 7e 9c 9d 9e bc bd be dc dd de fc fd fe
f800 f801 f818 f81f
5f00ff 5f21ff 5f6100ff 5f80ff 5fa0ff 5fc000ff 5fe0ff 7f4100ff
5f5f4100ffff 7f7f6100ffff
ff
81ff 8200ff a1ff a1ff00 a100ff a20000ff 9f81ff 9f829f819f9fffffffff
bf00ff bf000000ff
1f 3f df
`
  .trim()
  .split(/\s+/);

describe('scanCbor', () => {
  it('accepts every RFC 8949 Appendix A example', () => {
    for (const h of APPENDIX_A) {
      const b = unhex(h);
      assert.equal(scanCbor(b, 0, b.length, 64), b.length, h);
      // and finds the end of the item inside a larger buffer
      const padded = concat(unhex('ff'), b, unhex('0102'));
      assert.equal(scanCbor(padded, 1, padded.length, 64), 1 + b.length, h);
    }
  });

  it('rejects every RFC 8949 Appendix F malformed example', () => {
    for (const h of APPENDIX_F) {
      const b = unhex(h);
      assert.equal(scanCbor(b, 0, b.length, 64), -1, h);
    }
  });

  it('rejects more misuse: tag then break, break in a tag inside an indefinite array, simple < 32 with ai 24', () => {
    for (const h of [
      '9fc0ff',
      'bf6161c0ff',
      '9fd818ffff',
      'f800',
      'f81f',
      'dfff',
      '7f5f',
      '5f7f',
      '5f1fff',
      'bf616101616202ff',
    ]) {
      if (h === 'bf616101616202ff') {
        const b = unhex(h);
        assert.equal(scanCbor(b, 0, b.length, 64), b.length, h); // sanity: a valid one
        continue;
      }
      const b = unhex(h);
      assert.equal(scanCbor(b, 0, b.length, 64), -1, h);
    }
    const ok = unhex('f820');
    assert.equal(scanCbor(ok, 0, 2, 64), 2);
  });

  it('respects end, and rejects bad arguments without throwing', () => {
    const b = unhex('83010203');
    assert.equal(scanCbor(b, 0, 3, 64), -1);
    assert.equal(scanCbor(b, 0, 4, 64), 4);
    assert.equal(scanCbor(b, 0, 100, 64), 4); // end clamped to the buffer
    assert.equal(scanCbor(b, 1, 4, 64), 2);
    assert.equal(scanCbor(b, 4, 4, 64), -1);
    assert.equal(scanCbor(b, -1, 4, 64), -1);
    assert.equal(scanCbor(b, NaN, 4, 64), -1);
    assert.equal(scanCbor(new Uint8Array(0), 0, 0, 64), -1);
  });

  it('fails fast on huge claimed lengths and counts', () => {
    for (const h of [
      '5bffffffffffffffff',
      '7b00000000ffffffff',
      '9bffffffffffffffff00',
      'bbffffffffffffffff0000',
      '9a7fffffff01',
      'ba7fffffff0101',
      'bb001fffffffffffff0000',
      'a30102030405' /* 3 pairs, 2.5 given */,
    ]) {
      const b = unhex(h);
      const t = Date.now();
      assert.equal(scanCbor(b, 0, b.length, 64), -1, h);
      assert.ok(Date.now() - t < 50, h);
    }
  });

  it('counts depth: maps and arrays one level each, tags none', () => {
    const nested = (n: number, open: string) => unhex(open.repeat(n) + '00');
    assert.equal(scanCbor(nested(64, '81'), 0, 65, 64), 65);
    assert.equal(scanCbor(nested(65, '81'), 0, 66, 64), -1);
    assert.equal(scanCbor(nested(64, '9f'), 0, 65, 64), -1); // not closed
    const indef = unhex('9f'.repeat(64) + 'ff'.repeat(64));
    assert.equal(scanCbor(indef, 0, indef.length, 64), indef.length);
    const indef65 = unhex('9f'.repeat(65) + 'ff'.repeat(65));
    assert.equal(scanCbor(indef65, 0, indef65.length, 64), -1);
    const tagged = unhex('c1'.repeat(10) + '81'.repeat(64) + '00');
    assert.equal(scanCbor(tagged, 0, tagged.length, 64), tagged.length);
    // an empty container at level 65 is still level 65
    assert.equal(scanCbor(unhex('81'.repeat(64) + '80'), 0, 65, 64), -1);
    assert.equal(scanCbor(unhex('81'.repeat(63) + '80'), 0, 64, 64), 64);
    // depth is about nesting, not about how many containers
    const wide = unhex('88' + '8100'.repeat(8)); // 8 arrays side by side: depth 2
    assert.equal(scanCbor(wide, 0, wide.length, 2), wide.length);
    assert.equal(scanCbor(wide, 0, wide.length, 1), -1);
  });

  it('handles 100000 nested tags and 100000 nested arrays without overflowing the stack', () => {
    const tags = new Uint8Array(100_001).fill(0xc0);
    tags[100_000] = 0x00;
    assert.equal(scanCbor(tags, 0, tags.length, 64), tags.length);
    const wideTags = new Uint8Array(300_001);
    for (let i = 0; i < 300_000; i += 3) wideTags.set([0xd9, 0xff, 0xff], i);
    assert.equal(scanCbor(wideTags, 0, wideTags.length, 64), wideTags.length);
    const arrays = new Uint8Array(100_001).fill(0x81);
    arrays[100_000] = 0x00;
    assert.equal(scanCbor(arrays, 0, arrays.length, 64), -1);
    assert.equal(scanCbor(arrays, 0, arrays.length, 1_000_000), arrays.length); // the stack grows
    assert.equal(scanCbor(unhex('818100'), 0, 3, 64), 3); // and it is still right after
  });
});

// ---------------------------------------------------------------------------
describe('CborHead', () => {
  it('reads major type, argument and end for every head size; indefinite; truncated and reserved', () => {
    const h = new CborHead();
    const cases: [string, number, number, number][] = [
      ['17', 0, 23, 1],
      ['3818', 1, 24, 2],
      ['590100', 2, 256, 3],
      ['7a00010000', 3, 65536, 5],
      ['9b0000000100000000', 4, 2 ** 32, 9],
      ['bf', 5, HEAD_INDEFINITE, 1],
      ['ff', 7, HEAD_INDEFINITE, 1],
    ];
    for (const [h0, major, arg, end] of cases) {
      const b = unhex(h0 + '00');
      assert.equal(h.read(b, 0, b.length), arg, h0);
      assert.equal(h.major, major, h0);
      assert.equal(h.end, end, h0);
    }
    for (const bad of ['18', '1901', '1a000000', '1b00000000000000', '1c', '1d', '1e', '']) {
      const b = unhex(bad);
      assert.equal(h.read(b, 0, b.length), HEAD_BAD, bad);
    }
    // the limit, not the buffer, bounds the head
    assert.equal(h.read(unhex('190100'), 0, 2), HEAD_BAD);
    assert.equal(h.read(unhex('00190100'), 1, 4), 256);
  });
});

describe('encodeFrame / FrameDecoder', () => {
  const frames = [
    encodeFrame({ op: 'ping', rid: 1 }),
    encodeFrame({ op: 'send', rid: 2, to: 'bob', body: new RawCbor(encodeBody({ text: 'hi', n: [1, 2, 3] })) }),
    encodeFrame({ op: 'ok', rid: 3, ts: 1764300000000, skip: undefined }),
    encodeFrame({ op: 'x', pad: 'y'.repeat(5000) }),
  ];
  const stream = concat(...frames);
  const payloads = frames.map((f) => f.subarray(4));

  it('encodeFrame writes a 4-byte big-endian length and the CBOR map', () => {
    const f = encodeFrame({ op: 'ok', rid: 7 });
    const map = encodeCbor({ op: 'ok', rid: 7 });
    assert.equal(hex(f), '0000000c' + hex(map));
    assert.equal(map.length, 12);
    const big = encodeFrame({ op: 'x', pad: 'y'.repeat(70000) });
    assert.equal(new DataView(big.buffer, big.byteOffset).getUint32(0), big.length - 4);
    assert.equal(decodeFrame(big.subarray(4)).pad, 'y'.repeat(70000));
  });

  const collect = (chunks: Uint8Array[], max = 65536) => {
    const d = new FrameDecoder(max);
    const got: string[] = [];
    for (const c of chunks) {
      const r = d.feed(c, (p) => got.push(hex(p)));
      assert.equal(r, null);
    }
    return { got, d };
  };

  it('handles byte-by-byte feeding', () => {
    const chunks = Array.from(stream, (b) => new Uint8Array([b]));
    const { got, d } = collect(chunks);
    assert.deepEqual(got, payloads.map(hex));
    assert.equal(d.buffered, 0);
  });

  it('handles many frames in one chunk, and every split point', () => {
    assert.deepEqual(collect([stream]).got, payloads.map(hex));
    for (let cut = 0; cut <= stream.length; cut += 7) {
      for (const cut2 of [cut, Math.min(stream.length, cut + 3), Math.min(stream.length, cut + 2000)]) {
        const { got, d } = collect([stream.subarray(0, cut), stream.subarray(cut, cut2), stream.subarray(cut2)]);
        assert.deepEqual(got, payloads.map(hex), `cut ${cut}/${cut2}`);
        assert.equal(d.buffered, 0);
      }
    }
  });

  it('reports buffered bytes of a partial frame and copies what it keeps', () => {
    const d = new FrameDecoder(65536);
    const f = frames[1] as Uint8Array;
    const first = f.slice(0, 2);
    assert.equal(
      d.feed(first, () => assert.fail('no frame yet')),
      null,
    );
    assert.equal(d.buffered, 2);
    const second = f.slice(2, 10);
    assert.equal(
      d.feed(second, () => assert.fail('no frame yet')),
      null,
    );
    assert.equal(d.buffered, 6); // the header is parsed; 6 payload bytes held
    second.fill(0); // the caller may reuse its chunk buffer
    let got: Uint8Array | null = null;
    assert.equal(
      d.feed(f.slice(10), (p) => (got = p.slice())),
      null,
    );
    sameBytes(got, f.subarray(4));
    assert.equal(d.buffered, 0);
  });

  it('length 0 is bad_frame, and the decoder stays failed', () => {
    const d = new FrameDecoder(65536);
    const seen: Uint8Array[] = [];
    assert.equal(
      d.feed(concat(frames[0] as Uint8Array, unhex('00000000'), frames[0] as Uint8Array), (p) => seen.push(p)),
      'bad_frame',
    );
    assert.equal(seen.length, 1); // the frame before the error was delivered, not the one after
    assert.equal(
      d.feed(frames[0] as Uint8Array, () => assert.fail('after an error')),
      'bad_frame',
    );
  });

  it('length maxFrame+1 is frame_too_large right after the 4 length bytes; maxFrame is fine', () => {
    const max = 1000;
    const d = new FrameDecoder(max);
    assert.equal(
      d.feed(unhex('000003'), () => assert.fail()),
      null,
    );
    assert.equal(
      d.feed(unhex('e9'), () => assert.fail()),
      'frame_too_large',
    ); // 0x3e9 = 1001
    assert.equal(d.buffered, 0);
    assert.equal(
      d.feed(new Uint8Array(2000), () => assert.fail()),
      'frame_too_large',
    );

    const ok = new FrameDecoder(max);
    const body = new Uint8Array(max).fill(0xf6);
    const lens: number[] = [];
    assert.equal(
      ok.feed(concat(unhex('000003e8'), body), (p) => lens.push(p.length)),
      null,
    );
    assert.deepEqual(lens, [max]);
    assert.equal(
      new FrameDecoder(max).feed(unhex('ffffffff'), () => assert.fail()),
      'frame_too_large',
    );
  });

  it('an exception in onFrame propagates and leaves the decoder failed', () => {
    const d = new FrameDecoder(65536);
    assert.throws(
      () =>
        d.feed(stream, () => {
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(
      d.feed(frames[0] as Uint8Array, () => assert.fail()),
      'bad_frame',
    );
  });
});

// ---------------------------------------------------------------------------
describe('decodeFrame / encodeBody', () => {
  it('decodes maps as objects, bytes as bytes, safe uint64 as numbers, unsafe as bigints', () => {
    const enc = encodeCbor({
      op: 'msg',
      ts: 1764300000000,
      big: 2n ** 60n,
      neg: -5_000_000_000,
      b: new Uint8Array([1, 2]),
      f: 0.5,
    });
    const d = decodeFrame(enc);
    assert.equal(d.op, 'msg');
    assert.equal(d.ts, 1764300000000);
    assert.equal(d.big, 2n ** 60n);
    assert.equal(d.neg, -5_000_000_000);
    sameBytes(d.b, new Uint8Array([1, 2]));
    assert.equal(d.f, 0.5);
    assert.throws(() => decodeFrame(encodeCbor([1])));
    assert.throws(() => decodeFrame(unhex('a0ff')));
  });

  it('decoded byte strings outlive the payload buffer', () => {
    const enc = encodeCbor({ b: new Uint8Array([7, 8, 9]) });
    const d = decodeFrame(enc);
    enc.fill(0);
    sameBytes(d.b, new Uint8Array([7, 8, 9]));
  });

  it('encodeBody writes plain RFC 8949: maps, integer keys via Map, untagged bytes, integer timestamps', () => {
    assert.equal(hex(encodeBody({ a: 1 })), 'a1616101');
    assert.equal(
      hex(
        encodeBody(
          new Map<unknown, unknown>([
            [1, 'x'],
            [-2, true],
          ]),
        ),
      ),
      'a2016178' + '21f5',
    );
    assert.equal(hex(encodeBody(new Uint8Array([1, 2]))), '420102');
    assert.equal(hex(encodeBody(Buffer.from([1, 2]))), '420102');
    assert.equal(hex(encodeBody(1764300000000)), '1b0000019ac8798b00');
    assert.equal(hex(encodeBody(-(2 ** 40))), '3b000000ffffffffff');
    assert.equal(hex(encodeBody([1.5, 'é', null])), '83fb3ff800000000000062c3a9f6');
    const input = { ts: 1764300000000, list: [2 ** 40] };
    encodeBody(input);
    assert.deepEqual(input, { ts: 1764300000000, list: [2 ** 40] }); // caller's value untouched
    const d = decodeFrame(encodeCbor({ body: new RawCbor(encodeBody({ ts: 1764300000000, s: 'x' })) }));
    assert.deepEqual(d.body, { ts: 1764300000000, s: 'x' });
  });
});

// ---------------------------------------------------------------------------
// parseRequest

const MAX = 65536;
const msg = { ops: MSG_SERVER_OPS, maxFrame: MAX };
const gw = { ops: GATEWAY_OPS, maxFrame: MAX };
const parse = (v: WireValue | Uint8Array, opts = msg): ParseResult =>
  parseRequest(v instanceof Uint8Array ? v : encodeCbor(v), opts);
const ok = (v: WireValue | Uint8Array, opts = msg): Request => {
  const r = parse(v, opts);
  if (!r.ok) assert.fail(`expected ok, got ${r.code}: ${r.message}`);
  return r.req;
};
const err = (v: WireValue | Uint8Array, code: string, rid?: number, field?: string, opts = msg) => {
  const r = parse(v, opts);
  assert.equal(r.ok, false, `expected ${code}`);
  if (r.ok) return;
  assert.equal(r.code, code, r.message);
  assert.equal(r.rid, rid, `rid of ${r.code}: ${r.message}`);
  assert.equal(typeof r.message, 'string');
  if (field) assert.match(r.message, new RegExp(`\\b${field}\\b`));
};
/** A map from raw key/value items (for duplicates, odd keys, odd encodings). */
const rawMap = (...entries: [string | Uint8Array, string | Uint8Array][]): Uint8Array => {
  const item = (x: string | Uint8Array) => (typeof x === 'string' ? encodeCbor(x) : x);
  return concat(unhex((0xa0 + entries.length).toString(16)), ...entries.flatMap(([k, v]) => [item(k), item(v)]));
};
const body = (v: unknown) => new RawCbor(encodeBody(v));

describe('parseRequest: frame-level errors', () => {
  it('bad_frame for malformed, truncated, trailing bytes, empty', () => {
    const good = encodeCbor({ op: 'ping', rid: 1 });
    err(good.subarray(0, good.length - 1), 'bad_frame');
    err(concat(good, unhex('00')), 'bad_frame');
    err(concat(good, good), 'bad_frame');
    err(new Uint8Array(0), 'bad_frame');
    err(unhex('ff'), 'bad_frame');
    err(unhex('a1626f70647069'), 'bad_frame');
  });

  it('bad_frame for non-maps, a tagged map, integer or other non-text keys, no text op', () => {
    for (const v of [1, 'ping', [1, 2], null, true, new Uint8Array([1])] as WireValue[]) err(v, 'bad_frame');
    err(concat(unhex('c0'), encodeCbor({ op: 'ping' })), 'bad_frame');
    err(rawMap(['op', 'ping'], [encodeCbor(1), 'x']), 'bad_frame');
    err(rawMap([encodeCbor(1), 'x'], ['op', 'ping'], ['rid', encodeCbor(5)]), 'bad_frame');
    err(rawMap(['op', 'ping'], [encodeCbor(new Uint8Array([0x61])), 'x']), 'bad_frame');
    err(rawMap(['op', 'ping'], [unhex('c06161'), 'x']), 'bad_frame'); // tagged text key
    err(rawMap(['op', 'ping'], [unhex('f6'), 'x']), 'bad_frame');
    err({ rid: 1 }, 'bad_frame');
    err({ op: 1, rid: 1 }, 'bad_frame');
    err({ op: new Uint8Array([0x70]), rid: 1 }, 'bad_frame');
    err({ op: null }, 'bad_frame');
    err(rawMap(['op', unhex('c0647069 6e67')]), 'bad_frame'); // tagged op
    err({}, 'bad_frame');
  });

  it('nesting: 64 levels ok (frame map = 1), 65 is bad_frame', () => {
    const deep = (levels: number) => {
      let v: WireValue = 1;
      for (let i = 0; i < levels - 1; i++) v = [v];
      return { op: 'send', rid: 1, to: 'bob', body: v };
    };
    assert.equal(ok(deep(64)).op, 'send');
    err(deep(65), 'bad_frame');
    // deep in an unknown field counts too
    let v: WireValue = 0;
    for (let i = 0; i < 64; i++) v = { x: v };
    err({ op: 'ping', junk: v }, 'bad_frame');
  });

  it('accepts an indefinite-length frame map and chunked text keys and values', () => {
    const indef = unhex('bf' + '626f70' + '6470696e67' + '63726964' + '05' + 'ff');
    assert.deepEqual(ok(indef), { op: 'ping', rid: 5 });
    const chunkedKey = rawMap([unhex('7f617261696164ff'), encodeCbor(9)], ['op', unhex('7f627069616e6167ff')]);
    assert.deepEqual(ok(chunkedKey), { op: 'ping', rid: 9 });
  });
});

describe('parseRequest: rid', () => {
  it('optional unsigned integer below 2^32', () => {
    assert.deepEqual(ok({ op: 'ping' }), { op: 'ping' });
    assert.deepEqual(ok({ op: 'ping', rid: 0 }), { op: 'ping', rid: 0 });
    assert.deepEqual(ok({ op: 'ping', rid: 0xffff_ffff }), { op: 'ping', rid: 0xffff_ffff });
    // a non-shortest head is still an integer
    assert.deepEqual(ok(rawMap(['op', 'ping'], ['rid', unhex('1b0000000000000007')])), { op: 'ping', rid: 7 });
  });

  it('invalid rid: bad_request without rid', () => {
    for (const rid of [2 ** 32, -1, 5.5, 'x', null, true, [1], new Uint8Array([1]), 2 ** 60] as WireValue[]) {
      err({ op: 'ping', rid }, 'bad_request', undefined, 'rid');
    }
    err(rawMap(['op', 'ping'], ['rid', unhex('fb4014000000000000')]), 'bad_request', undefined, 'rid'); // float 5.0
    err(rawMap(['op', 'ping'], ['rid', unhex('f94500')]), 'bad_request', undefined, 'rid'); // half float 5.0
    err(rawMap(['op', 'ping'], ['rid', unhex('c105')]), 'bad_request', undefined, 'rid'); // tagged
    err(rawMap(['op', 'ping'], ['rid', unhex('c24105')]), 'bad_request', undefined, 'rid'); // bignum
    err(rawMap(['op', 'ping'], ['rid', encodeCbor(1)], ['rid', encodeCbor(2)]), 'bad_request', undefined, 'rid');
    // an invalid rid wins over an unknown op
    err({ op: 'nope', rid: -1 }, 'bad_request', undefined, 'rid');
  });
});

describe('parseRequest: ops', () => {
  it('unknown_op with rid: not in docs/protocol.md, or not served by this role', () => {
    err({ op: 'nope', rid: 3 }, 'unknown_op', 3);
    err({ op: 'nope' }, 'unknown_op');
    err({ op: '', rid: 3 }, 'unknown_op', 3);
    err({ op: 'PING', rid: 3 }, 'unknown_op', 3);
    err({ op: 'constructor', rid: 3 }, 'unknown_op', 3);
    err({ op: '__proto__', rid: 3 }, 'unknown_op', 3);
    err({ op: 'route', rid: 4 }, 'unknown_op', 4);
    err({ op: 'login', rid: 5, user: 'a' }, 'unknown_op', 5, undefined, gw);
    err({ op: 'send', rid: 5, to: 'a', body: 1 }, 'unknown_op', 5, undefined, gw);
    err(rawMap(['op', unhex('62ffff')], ['rid', encodeCbor(6)]), 'unknown_op', 6); // not UTF-8
    const r = parse({ op: 'x'.repeat(5000), rid: 1 });
    assert.ok(!r.ok && r.message.length < 200);
  });

  it('duplicate keys: bad_request with rid', () => {
    err(rawMap(['op', 'ping'], ['rid', encodeCbor(1)], ['op', 'ping']), 'bad_request', 1, 'op');
    err(
      rawMap(['op', 'send'], ['rid', encodeCbor(1)], ['to', 'a'], ['to', 'b'], ['body', encodeCbor(1)]),
      'bad_request',
      1,
      'to',
    );
    err(rawMap(['op', 'ping'], ['rid', encodeCbor(1)], ['zz', 'a'], ['zz', 'b']), 'bad_request', 1, 'zz');
    // the same key, once chunked and once not
    err(rawMap(['op', 'ping'], ['rid', encodeCbor(1)], ['zz', 'a'], [unhex('7f617a617aff'), 'b']), 'bad_request', 1);
  });

  it('ping, logout: no fields; unknown fields ignored', () => {
    assert.deepEqual(ok({ op: 'ping', rid: 1, future: { x: [1, 2] }, extra: 'y' }), { op: 'ping', rid: 1 });
    assert.deepEqual(ok({ op: 'logout', rid: 2 }), { op: 'logout', rid: 2 });
    assert.deepEqual(ok({ op: 'ping' }, gw), { op: 'ping' });
  });

  it('route: optional valid user', () => {
    assert.deepEqual(ok({ op: 'route', rid: 1 }, gw), { op: 'route', rid: 1 });
    assert.deepEqual(ok({ op: 'route', rid: 1, user: 'alice' }, gw), { op: 'route', rid: 1, user: 'alice' });
    err({ op: 'route', rid: 1, user: 'bad name' }, 'bad_request', 1, 'user', gw);
    err({ op: 'route', rid: 1, user: 5 }, 'bad_request', 1, 'user', gw);
  });

  it('login: user, device default, token, push default true', () => {
    assert.deepEqual(ok({ op: 'login', rid: 1, user: 'alice' }), {
      op: 'login',
      rid: 1,
      user: 'alice',
      device: 'default',
      push: true,
    });
    assert.deepEqual(
      ok({ op: 'login', rid: 1, user: 'a.b@c-d_E9', device: 'phone-1', token: 'tok.en.x', push: false }),
      {
        op: 'login',
        rid: 1,
        user: 'a.b@c-d_E9',
        device: 'phone-1',
        token: 'tok.en.x',
        push: false,
      },
    );
    assert.equal((ok({ op: 'login', user: 'u', push: true }) as { push: boolean }).push, true);
    err({ op: 'login', rid: 1 }, 'bad_request', 1, 'user');
    err({ op: 'login', rid: 1, device: 'd' }, 'bad_request', 1, 'user');
    err({ op: 'login', rid: 1, user: 'alice', device: '' }, 'bad_request', 1, 'device');
    err({ op: 'login', rid: 1, user: 'alice', device: 'a/b' }, 'bad_request', 1, 'device');
    err({ op: 'login', rid: 1, user: 'alice', device: 7 }, 'bad_request', 1, 'device');
    err({ op: 'login', rid: 1, user: 'alice', token: 7 }, 'bad_request', 1, 'token');
    err({ op: 'login', rid: 1, user: 'alice', token: new Uint8Array([1]) }, 'bad_request', 1, 'token');
    err({ op: 'login', rid: 1, user: 'alice', push: 1 }, 'bad_request', 1, 'push');
    err({ op: 'login', rid: 1, user: 'alice', push: 'false' }, 'bad_request', 1, 'push');
    err({ op: 'login', rid: 1, user: 'alice', push: null }, 'bad_request', 1, 'push');
    err(
      rawMap(['op', 'login'], ['rid', encodeCbor(1)], ['user', 'alice'], ['push', unhex('c0f5')]),
      'bad_request',
      1,
      'push',
    );
  });

  it('names: 1 to 64 characters of [A-Za-z0-9_.@-]', () => {
    const u = (user: WireValue) => ({ op: 'login', rid: 1, user });
    assert.equal((ok(u('a')) as { user: string }).user, 'a');
    assert.equal((ok(u('x'.repeat(64))) as { user: string }).user, 'x'.repeat(64));
    assert.equal((ok(u('AZaz09_.@-')) as { user: string }).user, 'AZaz09_.@-');
    for (const bad of [
      '',
      'x'.repeat(65),
      'a b',
      'ä',
      'a/b',
      'a:b',
      'a\u0000',
      'a+b',
      '😀',
      null,
      1,
      ['a'],
      new Uint8Array([0x61]),
    ] as WireValue[]) {
      err(u(bad), 'bad_request', 1, 'user');
    }
    // chunked text is text
    assert.equal((ok(rawMap(['op', 'login'], ['user', unhex('7f61616162ff')])) as { user: string }).user, 'ab');
  });

  it('send: to, body (required, any CBOR), cid (1 to 64 characters)', () => {
    const b = encodeBody({ text: 'hi' });
    const r = ok({ op: 'send', rid: 1, to: 'bob', body: new RawCbor(b) });
    assert.equal(r.op, 'send');
    assert.deepEqual(Object.keys(r).sort(), ['body', 'op', 'rid', 'to']);
    sameBytes((r as { body: Uint8Array }).body, b);
    const c = ok({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: 'ü'.repeat(64) }) as { cid: string };
    assert.equal(c.cid, 'ü'.repeat(64));
    assert.equal(
      (ok({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: '😀'.repeat(64) }) as { cid: string }).cid,
      '😀'.repeat(64),
    );
    assert.equal((ok({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: 'a b/c' }) as { cid: string }).cid, 'a b/c');
    err({ op: 'send', rid: 1, body: 'x' }, 'bad_request', 1, 'to');
    err({ op: 'send', rid: 1, to: 'b b', body: 'x' }, 'bad_request', 1, 'to');
    err({ op: 'send', rid: 1, to: 'bob' }, 'bad_request', 1, 'body');
    err({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: '' }, 'bad_request', 1, 'cid');
    err({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: 'c'.repeat(65) }, 'bad_request', 1, 'cid');
    err({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: 5 }, 'bad_request', 1, 'cid');
    err({ op: 'send', rid: 1, to: 'bob', body: 'x', cid: null }, 'bad_request', 1, 'cid');
    err(
      rawMap(['op', 'send'], ['rid', encodeCbor(1)], ['to', 'bob'], ['body', 'x'], ['cid', unhex('62c328')]),
      'bad_request',
      1,
      'cid',
    ); // bad UTF-8
    // every kind of body is accepted
    for (const v of [
      'text',
      new Uint8Array([1, 2]),
      0,
      -1,
      1.5,
      true,
      false,
      null,
      [1, [2]],
      { a: { b: 1 } },
    ] as WireValue[]) {
      assert.equal(ok({ op: 'send', to: 'bob', body: v }).op, 'send');
    }
  });

  it('body: integer map keys, byte strings, tags and non-canonical encodings preserved byte for byte', () => {
    const raw = concat(
      unhex('a4'),
      unhex('01'),
      unhex('43010203'), // 1: h'010203'
      unhex('20'),
      unhex('9f01ff'), // -1: [_ 1]
      unhex('6161'),
      unhex('c11a514b67b0'), // "a": 1(1363896240)
      unhex('41ff'),
      unhex('1b0000000000000001'), // h'ff': 1 with a non-shortest head
    );
    const frame = concat(
      unhex('a4'),
      encodeCbor('op'),
      encodeCbor('send'),
      encodeCbor('to'),
      encodeCbor('bob'),
      encodeCbor('body'),
      raw,
      encodeCbor('rid'),
      encodeCbor(1),
    );
    const r = ok(frame) as { body: Uint8Array };
    sameBytes(r.body, raw);
    // a copy: it outlives the frame buffer
    frame.fill(0);
    sameBytes(r.body, raw);
    // and re-encoding it as RawCbor forwards it unchanged
    const fwd = encodeCbor({ op: 'msg', body: new RawCbor(r.body) });
    assert.ok(hex(fwd).endsWith(hex(raw)));
    // in an indefinite chunked frame too
    const chunkedBody = unhex('5f4201024103ff');
    const r2 = ok(
      concat(
        unhex('bf'),
        encodeCbor('op'),
        encodeCbor('topic_send'),
        encodeCbor('topic'),
        encodeCbor('t'),
        encodeCbor('body'),
        chunkedBody,
        unhex('ff'),
      ),
    ) as { body: Uint8Array };
    sameBytes(r2.body, chunkedBody);
  });

  it('body size: at most maxFrame - 512 bytes', () => {
    const maxFrame = 2048;
    const opts = { ops: MSG_SERVER_OPS, maxFrame };
    const bodyOf = (n: number) => {
      // a byte string whose whole encoding is n bytes (head 3 bytes for n >= 259)
      return new Uint8Array(n - 3);
    };
    const at = ok({ op: 'send', rid: 1, to: 'bob', body: bodyOf(maxFrame - 512) }, opts) as { body: Uint8Array };
    assert.equal(at.body.length, maxFrame - 512);
    err({ op: 'send', rid: 1, to: 'bob', body: bodyOf(maxFrame - 511) }, 'bad_request', 1, 'body', opts);
    err({ op: 'topic_send', rid: 2, topic: 't', body: bodyOf(maxFrame - 511) }, 'bad_request', 2, 'body', opts);
  });

  it('ack: seq unsigned integer up to 2^53-1', () => {
    assert.deepEqual(ok({ op: 'ack', seq: 5 }), { op: 'ack', seq: 5 });
    assert.deepEqual(ok({ op: 'ack', seq: 0 }), { op: 'ack', seq: 0 });
    assert.deepEqual(ok({ op: 'ack', seq: Number.MAX_SAFE_INTEGER }), { op: 'ack', seq: Number.MAX_SAFE_INTEGER });
    assert.deepEqual(ok({ op: 'ack', seq: 1764300000000 }), { op: 'ack', seq: 1764300000000 });
    err({ op: 'ack' }, 'bad_request', undefined, 'seq');
    err({ op: 'ack', seq: 2n ** 53n }, 'bad_request', undefined, 'seq');
    err({ op: 'ack', seq: 2n ** 64n - 1n }, 'bad_request', undefined, 'seq');
    err({ op: 'ack', seq: -1 }, 'bad_request', undefined, 'seq');
    err({ op: 'ack', seq: 1.5 }, 'bad_request', undefined, 'seq');
    err({ op: 'ack', seq: '5' }, 'bad_request', undefined, 'seq');
    err(rawMap(['op', 'ack'], ['seq', unhex('fb4014000000000000')]), 'bad_request', undefined, 'seq');
    err({ op: 'ack', rid: 8, seq: 'x' }, 'bad_request', 8, 'seq');
  });

  it('sync: after required, limit 1..1000 default 100', () => {
    assert.deepEqual(ok({ op: 'sync', rid: 1, after: 0 }), { op: 'sync', rid: 1, after: 0, limit: 100 });
    assert.deepEqual(ok({ op: 'sync', rid: 1, after: 9, limit: 1 }), { op: 'sync', rid: 1, after: 9, limit: 1 });
    assert.deepEqual(ok({ op: 'sync', rid: 1, after: 9, limit: 1000 }), { op: 'sync', rid: 1, after: 9, limit: 1000 });
    err({ op: 'sync', rid: 1 }, 'bad_request', 1, 'after');
    err({ op: 'sync', rid: 1, after: -1 }, 'bad_request', 1, 'after');
    err({ op: 'sync', rid: 1, after: 'a' }, 'bad_request', 1, 'after');
    err({ op: 'sync', rid: 1, after: 0, limit: 0 }, 'bad_request', 1, 'limit');
    err({ op: 'sync', rid: 1, after: 0, limit: 1001 }, 'bad_request', 1, 'limit');
    err({ op: 'sync', rid: 1, after: 0, limit: 10.5 }, 'bad_request', 1, 'limit');
    err({ op: 'sync', rid: 1, after: 0, limit: null }, 'bad_request', 1, 'limit');
  });

  it('topic_create, topic_join, topic_leave: topic', () => {
    for (const op of ['topic_create', 'topic_join', 'topic_leave'] as const) {
      assert.deepEqual(ok({ op, rid: 1, topic: 'general' }), { op, rid: 1, topic: 'general' });
      err({ op, rid: 1 }, 'bad_request', 1, 'topic');
      err({ op, rid: 1, topic: '' }, 'bad_request', 1, 'topic');
      err({ op, rid: 1, topic: 't'.repeat(65) }, 'bad_request', 1, 'topic');
      err({ op, rid: 1, topic: 'a#b' }, 'bad_request', 1, 'topic');
    }
  });

  it('topic_send: topic, body, cid', () => {
    const r = ok({ op: 'topic_send', rid: 1, topic: 'general', body: body({ t: 1 }), cid: 'c1' }) as {
      body: Uint8Array;
      cid: string;
    };
    assert.equal(r.cid, 'c1');
    sameBytes(r.body, encodeBody({ t: 1 }));
    assert.deepEqual(Object.keys(ok({ op: 'topic_send', topic: 'g', body: 1 })).sort(), ['body', 'op', 'topic']);
    err({ op: 'topic_send', rid: 1, body: 1 }, 'bad_request', 1, 'topic');
    err({ op: 'topic_send', rid: 1, topic: 'g' }, 'bad_request', 1, 'body');
    err({ op: 'topic_send', rid: 1, topic: 'g', body: 1, cid: 'x'.repeat(65) }, 'bad_request', 1, 'cid');
  });

  it('topic_members: topic, after optional name, limit 1..1000 default 1000', () => {
    assert.deepEqual(ok({ op: 'topic_members', rid: 1, topic: 'g' }), {
      op: 'topic_members',
      rid: 1,
      topic: 'g',
      limit: 1000,
    });
    assert.deepEqual(ok({ op: 'topic_members', rid: 1, topic: 'g', after: 'bob', limit: 10 }), {
      op: 'topic_members',
      rid: 1,
      topic: 'g',
      after: 'bob',
      limit: 10,
    });
    err({ op: 'topic_members', rid: 1 }, 'bad_request', 1, 'topic');
    err({ op: 'topic_members', rid: 1, topic: 'g', after: '' }, 'bad_request', 1, 'after');
    err({ op: 'topic_members', rid: 1, topic: 'g', after: 5 }, 'bad_request', 1, 'after');
    err({ op: 'topic_members', rid: 1, topic: 'g', limit: 0 }, 'bad_request', 1, 'limit');
    err({ op: 'topic_members', rid: 1, topic: 'g', limit: 1001 }, 'bad_request', 1, 'limit');
  });

  it('every op of docs/protocol.md parses through a FrameDecoder', () => {
    const reqs: Record<Op, WireValue> = {
      route: { op: 'route', rid: 1 },
      login: { op: 'login', rid: 2, user: 'u' },
      ping: { op: 'ping', rid: 3 },
      logout: { op: 'logout', rid: 4 },
      send: { op: 'send', rid: 5, to: 'v', body: 'b' },
      ack: { op: 'ack', seq: 6 },
      sync: { op: 'sync', rid: 7, after: 0 },
      topic_create: { op: 'topic_create', rid: 8, topic: 't' },
      topic_join: { op: 'topic_join', rid: 9, topic: 't' },
      topic_leave: { op: 'topic_leave', rid: 10, topic: 't' },
      topic_send: { op: 'topic_send', rid: 11, topic: 't', body: 'b' },
      topic_members: { op: 'topic_members', rid: 12, topic: 't' },
    };
    const all = new Set(Object.keys(reqs) as Op[]);
    const d = new FrameDecoder(MAX);
    const seen: string[] = [];
    const stream = concat(...Object.values(reqs).map((r) => encodeFrame(r as Record<string, WireValue>)));
    assert.equal(
      d.feed(stream, (p) => {
        const r = parseRequest(p, { ops: all, maxFrame: MAX });
        assert.ok(r.ok, r.ok ? '' : r.message);
        seen.push(r.req.op);
      }),
      null,
    );
    assert.deepEqual(seen, Object.keys(reqs));
  });

  it('error codes are documented ones', () => {
    for (const c of ['bad_frame', 'bad_request', 'unknown_op'])
      assert.ok((ERROR_CODES as readonly string[]).includes(c));
  });
});
