/**
 * Every role's beat on `/sysctrl/monitor` (docs/architecture.md): published at start and
 * every `settings.beat` ms. A role silent for MISSED_BEATS beats is down.
 */
import type { Beat } from '../bus/payloads.js';
import { encodeItems } from '../bus/payloads.js';
import type { Bus, Channels } from '../bus/bus.js';
import type { RoleStats } from './stats.js';

/** Beats missed before a role is taken as down (by the gateway, the monitor). */
export const MISSED_BEATS = 3;

/** What a role says of itself; the rest of its Beat comes from its RoleStats. */
export type BeatFields = Pick<Beat, 'role' | 'id' | 'addr' | 'http' | 'boot' | 'conns'>;

export function makeBeat(fields: BeatFields, stats: RoleStats): Beat {
  return { ...fields, pid: process.pid, ts: Date.now(), ...stats.take() };
}

/**
 * Publishes `beat()` now and every beat; `after` runs after each publish, the first included (the
 * role's periodic chores). Returns the function that stops it.
 */
export function startBeats(
  ctx: { bus: Bus; channels: Channels; settings: { beat: number } },
  beat: () => Beat,
  after?: () => void,
): () => void {
  const tick = () => {
    ctx.bus.publish(ctx.channels.monitor, encodeItems([beat()]));
    after?.();
  };
  tick();
  const timer = setInterval(tick, ctx.settings.beat);
  timer.unref?.();
  return () => clearInterval(timer);
}
