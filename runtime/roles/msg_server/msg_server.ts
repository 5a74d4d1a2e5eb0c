/**
 * The msg_server role's hub: it owns the connections, the user → connections
 * registry, the bus publisher, the lease and the beats. What happens on a
 * connection lives beside it, one concern a file: pipeline.ts (requests in
 * order, limits), session.ts (login, ping, logout, kicks), messages.ts (send,
 * ack, sync), topics.ts, delivery.ts (pushes to local connections).
 */
import { randomBytes } from 'node:crypto';
import { encodeFrame } from '../../protocol/index.js';
import type { MsgServerConfig } from '../../contract/config.js';
import type { RoleContext } from '../../contract/context.js';
import { BatchPublisher, type Beat, type ClientStatusItem } from '../../bus/payloads.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat } from '../../metrics/beat.js';
import { Conn, type ConnHooks, type ConnLimits } from './connection.js';
import { onDeliver, recheckAll } from './delivery.js';
import { requestQueue } from './pipeline.js';
import { kickSlow, startLoginTimer, sweepIdle } from './session.js';
import type { Transport } from './transport.js';

export class MsgServer {
  readonly boot = randomBytes(8).toString('hex');
  readonly stats = new RoleStats();
  /**
   * Local connections of each user (every device). An array, not a Set
   * (~60 B instead of ~190 B for the usual one connection), never changed in
   * place: register and unregister put a new one, so a loop over the old
   * one (a push that kicks) is not disturbed.
   */
  readonly byUser = new Map<string, readonly Conn[]>();
  readonly conns = new Set<Conn>();
  readonly pub: BatchPublisher;
  /** topic fan-outs running here; `again` when a send arrived during the run */
  readonly fanouts = new Map<string, { again: boolean }>();
  private stopping = false;
  /** the client TCP address clients are told (advertised) */
  addr = '';
  /** the WebSocket URL clients are told; undefined when it serves no WebSocket */
  ws: string | undefined;

  constructor(
    readonly ctx: RoleContext,
    readonly config: MsgServerConfig,
  ) {
    this.pub = new BatchPublisher(ctx.bus);
  }

  get id(): string {
    return this.config.id;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  // ---- connections -------------------------------------------------------

  /** A new client connection, whatever carries it. */
  accept(transport: Transport): void {
    if (this.stopping) {
      transport.close({ why: 'stopping' });
      return;
    }
    const settings = this.ctx.settings;
    if (this.conns.size >= settings.maxConnections) {
      // Full: say so before reading anything, and close (docs/protocol.md §2).
      this.stats.countOut();
      transport.write(OVERLOADED_FRAME(settings.maxConnections));
      transport.close({ why: 'overloaded' });
      return;
    }
    const conn = new Conn(transport, this.connHooks, this.connLimits());
    this.conns.add(conn);
    startLoginTimer(conn, settings.loginTimeout);
    transport.start(requestQueue(this, conn));
  }

  /** What every connection calls back: one object for all of them. */
  private readonly connHooks: ConnHooks = {
    readInbox: async (user, after, limit) => (await this.ctx.store.readInbox(user, after, limit)).messages,
    onPushed: (n) => this.stats.countOut(n),
    onSlow: (c) => kickSlow(this, c),
  };
  private limits: ConnLimits | undefined;

  /** The connection limits from the settings: one object shared by the connections, made again if a setting changed. */
  private connLimits(): ConnLimits {
    const { maxOutBuffer, sendRate, heartbeat } = this.ctx.settings;
    const drainTimeout = Math.max(1000, heartbeat);
    const l = this.limits;
    if (l?.maxOutBuffer === maxOutBuffer && l.sendRate === sendRate && l.drainTimeout === drainTimeout) return l;
    return (this.limits = { maxOutBuffer, sendRate, drainTimeout });
  }

  register(conn: Conn): void {
    const user = conn.user!;
    const list = this.byUser.get(user);
    if (!list) this.byUser.set(user, [conn]);
    else if (!list.includes(conn)) this.byUser.set(user, [...list, conn]);
  }

  unregister(conn: Conn): void {
    const user = conn.user!;
    const list = this.byUser.get(user);
    if (!list?.includes(conn)) return;
    if (list.length === 1) this.byUser.delete(user);
    else
      this.byUser.set(
        user,
        list.filter((c) => c !== conn),
      );
  }

  /** Publishes a session event on `/sysctrl/client-status`. */
  status(item: ClientStatusItem): void {
    this.pub.add(this.ctx.channels.clientStatus, item);
  }

  // ---- the bus ---------------------------------------------------------------

  onDeliver = (payload: Uint8Array): void => onDeliver(this, payload);

  /** After the bus came back: pushes may have been lost; each session checks the store. */
  recheckAll(): void {
    recheckAll(this);
  }

  flush(): void {
    this.pub.flush();
  }

  // ---- liveness, lease, beats, drain ------------------------------------------

  /** Closes connections from which nothing arrived for 2.5 × heartbeat. */
  sweepIdle(now: number): void {
    sweepIdle(this, now);
  }

  /** Renews the lease; if it had expired, writes back this server's directory entries. */
  async renewLease(first: boolean): Promise<void> {
    const alive = await this.ctx.store.renewLease(this.id, this.boot, this.ctx.settings.beat * 3);
    if (alive || first) return;
    this.ctx.log.warn('lease had expired: re-registering local sessions');
    for (const c of this.conns) {
      if (!c.loggedIn || !c.push) continue;
      const ok = await this.ctx.store.restoreSession({
        user: c.user!,
        device: c.device,
        server: this.id,
        boot: this.boot,
        gen: c.gen,
      });
      if (!ok) {
        this.unregister(c);
        c.kick('replaced');
      }
    }
  }

  /** The beat, with `max`: the connection limit, so the gateway stops routing to a full msg_server. */
  beat(): Beat {
    const { id, addr, boot, ws } = this;
    const beat = makeBeat({ role: 'msg_server', id, addr, boot, conns: this.conns.size }, this.stats);
    const max = this.ctx.settings.maxConnections;
    return ws === undefined ? { ...beat, max } : { ...beat, ws, max };
  }

  /** Drain: kick `draining` to every client, remove their directory entries. */
  async drainAll(): Promise<void> {
    this.stopping = true;
    const removals: Promise<unknown>[] = [];
    for (const c of this.conns) {
      if (c.loggedIn && c.push) {
        this.unregister(c);
        removals.push(this.ctx.store.removeSession(c.user!, c.device, c.gen).catch(() => false));
      }
      c.kick('draining');
    }
    await Promise.all(removals);
  }
}

let overloadedFrame: { max: number; frame: Uint8Array } | undefined;
/** The `overloaded` error a connection beyond maxConnections gets (encoded once). */
function OVERLOADED_FRAME(max: number): Uint8Array {
  if (overloadedFrame?.max !== max) {
    const message = `this msg_server is full (${max} connections); reconnect elsewhere with backoff`;
    overloadedFrame = { max, frame: encodeFrame({ op: 'error', code: 'overloaded', message }) };
  }
  return overloadedFrame.frame;
}
