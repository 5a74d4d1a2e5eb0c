/**
 * The one cbor-x configuration: every cbor-x encode and decode in the
 * project (client-side frame decoding, bus payloads, stored records, the
 * admin API's view of bodies) goes through these two. Servers never run
 * cbor-x over client input: they validate requests with validate.ts and
 * encode frames with cbor.ts/frame.ts.
 */
// The no-eval build of cbor-x: a self-contained copy of cbor-x that never
// loads the optional native string extractor (cbor-extract). Under Bun 1.4
// that N-API addon returns garbage or crashes the process (segfault/abort)
// when a frame holds text of a few thousand bytes or more; the 'cbor-x'
// entry point loads it whenever it is installed.
import { Decoder, Encoder, type Options } from 'cbor-x/index-no-eval';

// cbor-x 1.6 options (see node_modules/cbor-x/README.md "Options"):
// - useRecords: false — no record extension; maps are plain CBOR maps;
// - mapsAsObjects: true — maps decode to plain objects (keys become strings);
// - copyBuffers: true — byte strings are copies, so decoded values outlive the
//   frame buffer (FrameDecoder payloads are only valid during the callback).
// uint64 (head 0x1b) decodes to a bigint by default; int64AsNumber would turn
// every one into a number, losing precision above 2^53, so instead bigints
// are narrowed to numbers afterwards when they are safe integers.
export const cborxDecoder = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

// Plain RFC 8949 output: no records, no structured clone, no packing, no tag 64
// on Uint8Array/Buffer, no tag 259 on Maps (a JS Map becomes a CBOR map with
// keys of any type, e.g. integer keys), shortest map heads.
// (useTag259ForMaps is a cbor-x option missing from its .d.ts, hence the cast.)
export const cborxEncoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  pack: false,
  tagUint8Array: false,
  useTag259ForMaps: false,
  variableMapSize: true,
  largeBigIntToFloat: false,
} as Options & { useTag259ForMaps: boolean });
