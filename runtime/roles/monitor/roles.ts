/**
 * The monitor's picture of the cluster: every role ever seen, by (role, id),
 * with its last beat. A role is up while its last beat is at most
 * MISSED_BEATS beat intervals old (by this process's clock, so the clocks of
 * other machines do not matter).
 */
import { parseBeat, type Beat } from '../../bus/payloads.js';

import { MISSED_BEATS } from '../../metrics/beat.js';

/** Roles kept at most; past it, the role down the longest is forgotten. */
const MAX_ROLES = 4096;

/** One role as /status shows it: its last beat, and whether it is up. */
export type RoleState = Omit<Beat, 'ts'> & {
  up: boolean;
  /** when its last beat arrived, ms since the Unix epoch */
  lastBeat: number;
};

export type SeenBeat = Omit<RoleState, 'up'>;

/** The body of the monitor's GET /status (read by `fishchat status`). */
export interface StatusReport {
  cluster: string;
  ts: number;
  roles: RoleState[];
}

export class RoleTable {
  private readonly seen = new Map<string, SeenBeat>();

  constructor(private readonly beatMs: number) {}

  /** Takes in a decoded bus item; returns it cleaned, or null when it is no beat. */
  onBeat(item: unknown, now = Date.now()): SeenBeat | null {
    const b = cleanBeat(item, now);
    if (!b) return null;
    const key = `${b.role}\u0000${b.id}`;
    this.seen.delete(key); // re-insert: the map stays ordered by last beat
    this.seen.set(key, b);
    if (this.seen.size > MAX_ROLES) this.forgetOne(now);
    return b;
  }

  isUp(lastBeat: number, now = Date.now()): boolean {
    return now - lastBeat <= this.beatMs * MISSED_BEATS;
  }

  /** Every role ever seen, by role then id. */
  list(now = Date.now()): RoleState[] {
    const out: RoleState[] = [];
    for (const b of this.seen.values()) {
      const { role, id, addr, http, lastBeat, ...rest } = b;
      out.push({ role, id, addr, http, up: this.isUp(lastBeat, now), lastBeat, ...rest });
    }
    out.sort((a, b) => cmp(a.role, b.role) || cmp(a.id, b.id));
    return out;
  }

  get size(): number {
    return this.seen.size;
  }

  private forgetOne(now: number): void {
    // The first entry is the one whose last beat is oldest.
    for (const [key, b] of this.seen) {
      if (!this.isUp(b.lastBeat, now)) this.seen.delete(key);
      return;
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A beat as the monitor keeps it (parseBeat), stamped with its arrival. */
export function cleanBeat(item: unknown, now: number): SeenBeat | null {
  const b = parseBeat(item);
  if (!b) return null;
  const { role, id, ...rest } = b;
  return { role, id, lastBeat: now, ...rest };
}
