/**
 * The head of a CBOR data item (RFC 8949 §3): major type, additional info,
 * argument. One reader for the well-formedness scanner (cbor.ts), request
 * validation (validate.ts) and the load generator's frame reader
 * (cli/bench/wire.ts).
 */

const TWO_32 = 0x1_0000_0000;

/** What CborHead.read returns for additional info 31 (an indefinite length, or a break). */
export const HEAD_INDEFINITE = -1;
/** What CborHead.read returns for a truncated head or reserved additional info (28..30). */
export const HEAD_BAD = -2;

/**
 * A head reader. read() returns the argument and leaves the head's major type
 * and end in the reader, so a read allocates nothing. Each caller owns its
 * reader (nothing in this module holds a result).
 */
export class CborHead {
  /** Major type (0..7) of the last head read. */
  major = 0;
  /** Where the last head read ends: its content (or the next item) starts there. */
  end = 0;

  /**
   * Reads the head starting at buf[p]; it must end at or before `limit`.
   * Returns its argument (above 2^53 it loses precision: compare it only with
   * sizes and bounds), HEAD_INDEFINITE for additional info 31, or HEAD_BAD (then
   * major and end are not set).
   */
  read(buf: Uint8Array, p: number, limit: number): number {
    if (p >= limit) return HEAD_BAD;
    const ib = buf[p] as number;
    const ai = ib & 0x1f;
    if (ai < 24) {
      this.major = ib >> 5;
      this.end = p + 1;
      return ai;
    }
    if (ai === 31) {
      this.major = ib >> 5;
      this.end = p + 1;
      return HEAD_INDEFINITE;
    }
    const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
    const q = p + 1;
    if (n === 0 || q + n > limit) return HEAD_BAD;
    this.major = ib >> 5;
    this.end = q + n;
    if (n === 1) return buf[q] as number;
    if (n === 2) return ((buf[q] as number) << 8) | (buf[q + 1] as number);
    const hi =
      (buf[q] as number) * 0x1000000 +
      (((buf[q + 1] as number) << 16) | ((buf[q + 2] as number) << 8) | (buf[q + 3] as number));
    if (n === 4) return hi;
    const lo =
      (buf[q + 4] as number) * 0x1000000 +
      (((buf[q + 5] as number) << 16) | ((buf[q + 6] as number) << 8) | (buf[q + 7] as number));
    return hi * TWO_32 + lo;
  }
}
