import { randomBytes } from 'node:crypto';
import { randomHex } from '../../protocol/random.js';

/** A mid unique in the cluster forever: time-ordered prefix + 64 random bits. */
let midCounter = 0;
const midNode = randomBytes(4).toString('hex');
export function newMid(now: number): string {
  midCounter = (midCounter + 1) & 0xffffff;
  return now.toString(36) + midNode + midCounter.toString(36).padStart(5, '0') + randomHex(4);
}
