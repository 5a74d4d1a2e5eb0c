/**
 * Framing of docs/protocol.md §1: uint32 big-endian length L || L bytes of CBOR.
 */
import { acquireWriter, releaseWriter, type WireValue } from './cbor.js';

/**
 * Encodes one frame: the 4-byte big-endian length, then the map as CBOR
 * (see encodeCbor for the value rules; keys whose value is undefined are
 * omitted). No copy and usually no allocation but the returned view: it is
 * written straight into a shared 16 KiB slab and returned as a view of it
 * (a plain Uint8Array; later frames never overwrite it). Meant to be written
 * to a socket and dropped; to keep frame bytes for long, keep a copy
 * (`frame.slice()`), so one kept frame does not pin a whole slab.
 */
export function encodeFrame(map: { [k: string]: WireValue | undefined }): Uint8Array {
  const w = acquireWriter();
  try {
    w.ensure(4);
    w.pos += 4;
    w.map(map);
    w.dv.setUint32(w.start, w.length - 4);
    return w.view();
  } finally {
    releaseWriter(w);
  }
}

/**
 * Splits a byte stream into frames.
 *
 * - Frames may be split across any number of chunks, and a chunk may hold many
 *   frames. Work is O(total bytes): a frame that is whole inside one chunk is
 *   handed over as a view of that chunk (no copy); only the tail of a chunk that
 *   starts an incomplete frame is copied, and the pieces are joined once when
 *   the frame is complete. Memory held is at most the bytes actually received
 *   of the current frame (a length header alone allocates nothing).
 * - The payload given to onFrame is the CBOR bytes without the length prefix.
 *   It may be a view of the caller's chunk or of an internal buffer: it is
 *   valid only during the callback; copy it (e.g. `payload.slice()`) to keep it.
 * - onFrame should not throw. If it does, the exception propagates out of
 *   feed(), the rest of that chunk is dropped and the decoder is put in the
 *   `bad_frame` state (the stream can no longer be trusted to be in sync).
 */
export class FrameDecoder {
  private readonly maxFrame: number;
  /** a length header split across chunks: its bytes so far (a number, not a buffer: one less allocation per connection) */
  private headerVal = 0;
  private headerLen = 0;
  /** payload length of the frame being assembled; -1 while reading a header */
  private need = -1;
  private pieces: Uint8Array[] = [];
  private have = 0;
  private error: 'bad_frame' | 'frame_too_large' | null = null;

  constructor(maxFrame: number) {
    this.maxFrame = maxFrame;
  }

  /** Bytes held waiting for the rest of a frame (a partial header included). */
  get buffered(): number {
    return this.headerLen + this.have;
  }

  /**
   * Feeds bytes; calls onFrame(payload) for each complete frame. Returns null,
   * or the code that must end the connection: 'frame_too_large' as soon as a
   * length over maxFrame is read (the frame is never buffered), 'bad_frame'
   * for length 0. Frames completed earlier in the same chunk are delivered
   * first. After an error, feed() does nothing and returns the same error.
   */
  feed(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): 'bad_frame' | 'frame_too_large' | null {
    if (this.error !== null) return this.error;
    const n = chunk.length;
    let off = 0;
    try {
      while (off < n) {
        if (this.need < 0) {
          // reading a length header
          let len: number;
          if (this.headerLen === 0 && n - off >= 4) {
            len =
              (chunk[off] as number) * 0x1000000 +
              (((chunk[off + 1] as number) << 16) | ((chunk[off + 2] as number) << 8) | (chunk[off + 3] as number));
            off += 4;
          } else {
            while (this.headerLen < 4 && off < n) {
              this.headerVal = this.headerVal * 256 + (chunk[off++] as number);
              this.headerLen++;
            }
            if (this.headerLen < 4) return null;
            len = this.headerVal;
            this.headerVal = 0;
            this.headerLen = 0;
          }
          if (len === 0) return (this.error = 'bad_frame');
          if (len > this.maxFrame) return (this.error = 'frame_too_large');
          if (n - off >= len) {
            // whole frame in this chunk: hand over a view
            const payload = chunk.subarray(off, off + len);
            off += len;
            onFrame(payload);
            continue;
          }
          // start of a frame: keep a copy of the rest of the chunk
          this.need = len;
          this.pieces.push(chunk.slice(off));
          this.have = n - off;
          return null;
        }
        // continuing a frame
        const take = Math.min(this.need - this.have, n - off);
        if (this.have + take < this.need) {
          this.pieces.push(chunk.slice(off, off + take));
          this.have += take;
          return null;
        }
        // this chunk completes it: join the pieces once
        const payload = new Uint8Array(this.need);
        let p = 0;
        for (const piece of this.pieces) {
          payload.set(piece, p);
          p += piece.length;
        }
        payload.set(chunk.subarray(off, off + take), p);
        off += take;
        this.pieces = [];
        this.have = 0;
        this.need = -1;
        onFrame(payload);
      }
      return null;
    } catch (err) {
      this.error = 'bad_frame';
      this.pieces = [];
      this.have = 0;
      this.headerLen = 0;
      this.headerVal = 0;
      throw err;
    }
  }
}
