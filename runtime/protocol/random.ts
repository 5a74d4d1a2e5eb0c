/**
 * Random hex for ids made per message (mids, epochs): drawn from the CSPRNG
 * 4 KiB at a time, so a message costs a string slice, not a randomBytes call
 * (that call was 7-10% of a msg_server's CPU under load).
 */
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = '';
let at = 0;

/** `bytes` random bytes as 2 × bytes hex characters (bytes ≤ 4096). */
export function randomHex(bytes: number): string {
  const n = bytes * 2;
  if (at + n > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes)).toString('hex');
    at = 0;
  }
  return pool.slice(at, (at += n));
}
