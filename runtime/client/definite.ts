/**
 * cbor-x cannot decode indefinite-length byte or text strings (RFC 8949
 * §3.2.3), which are well-formed CBOR: the server accepts them in a `body`
 * and passes them on as sent. Without help, one such message would fail the
 * recipient's connection at every login (its backlog brings it again). When
 * cbor-x refuses a frame, the connection rewrites it with every
 * indefinite-length string made definite (the chunks joined) and tries once
 * more. Everything else is copied byte for byte.
 */

const MAX_DEPTH = 256;

/** The frame with its indefinite-length strings made definite, or null when it has none or is not well-formed. */
export function definiteStrings(buf: Uint8Array): Uint8Array | null {
  const out: number[] = [];
  let pos = 0;
  let changed = false;

  /** Reads the argument of the head at pos (after the initial byte); -1 when malformed. */
  const arg = (info: number): number => {
    if (info < 24) return info;
    const n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1;
    if (n < 0 || pos + n > buf.length) return -1;
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[pos + i]!;
    pos += n;
    return Number.isSafeInteger(v) ? v : -1;
  };

  const head = (major: number, n: number): void => {
    const m = major << 5;
    if (n < 24) out.push(m | n);
    else if (n < 0x100) out.push(m | 24, n);
    else if (n < 0x10000) out.push(m | 25, n >> 8, n & 0xff);
    else out.push(m | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  };

  /** Copies one item; false when malformed. */
  const item = (depth: number): boolean => {
    if (depth > MAX_DEPTH || pos >= buf.length) return false;
    const start = pos;
    const ib = buf[pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if ((major === 2 || major === 3) && info === 31) {
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        if (pos >= buf.length) return false;
        if (buf[pos] === 0xff) {
          pos++;
          break;
        }
        const cb = buf[pos++]!;
        if (cb >> 5 !== major || (cb & 0x1f) === 31) return false;
        const len = arg(cb & 0x1f);
        if (len < 0 || pos + len > buf.length) return false;
        chunks.push(buf.subarray(pos, pos + len));
        total += len;
        pos += len;
      }
      if (total > 0xffff_ffff) return false;
      head(major, total);
      for (const c of chunks) for (let i = 0; i < c.length; i++) out.push(c[i]!);
      changed = true;
      return true;
    }
    if (major === 7 || info === 31) {
      // simple values and floats; indefinite arrays and maps
      if (major === 7) {
        const n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : info < 24 ? 0 : -1;
        if (n < 0 || pos + n > buf.length) return false;
        pos += n;
        for (let i = start; i < pos; i++) out.push(buf[i]!);
        return true;
      }
      if (major !== 4 && major !== 5) return false;
      out.push(ib);
      for (;;) {
        if (pos >= buf.length) return false;
        if (buf[pos] === 0xff) {
          out.push(buf[pos++]!);
          return true;
        }
        if (!item(depth + 1)) return false;
        if (major === 5 && !item(depth + 1)) return false;
      }
    }
    const n = arg(info);
    if (n < 0) return false;
    for (let i = start; i < pos; i++) out.push(buf[i]!);
    if (major === 2 || major === 3) {
      if (pos + n > buf.length) return false;
      for (let i = 0; i < n; i++) out.push(buf[pos + i]!);
      pos += n;
      return true;
    }
    if (major === 4 || major === 5) {
      const count = major === 5 ? n * 2 : n;
      if (count > buf.length - pos) return false; // each item takes a byte at least
      for (let i = 0; i < count; i++) if (!item(depth + 1)) return false;
      return true;
    }
    if (major === 6) return item(depth + 1);
    return true; // integers
  };

  if (!item(0) || pos !== buf.length || !changed) return null;
  return Uint8Array.from(out);
}
