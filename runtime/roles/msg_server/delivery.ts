/**
 * Delivery to local connections: p2p and topic messages (from this
 * msg_server's sends or from its deliver channel) reach each connection's
 * push cursor; after the bus lost pushes, each session checks the store.
 */
import { asStoredMessage, decodeItems, forEachPush, type DeliverItem } from '../../bus/payloads.js';
import type { FanoutMessage } from '../../store/store.js';
import { TopicFrame, type PushMessage } from './frames.js';
import { kickLocal, kickOlder } from './session.js';
import type { MsgServer } from './msg_server.js';

/** What delivery needs of the msg_server. */
type Local = Pick<MsgServer, 'byUser'>;

export function deliverLocal(s: Local, user: string, msg: PushMessage): void {
  const set = s.byUser.get(user);
  if (!set) return;
  for (const c of set) c.cursor.pushMsg(msg);
}

export function deliverTopic(s: Local, msg: FanoutMessage): void {
  const { mid, from, topic, tseq, body, ts } = msg;
  let tpl: TopicFrame | undefined;
  for (const copy of msg.copies) {
    const set = s.byUser.get(copy.user);
    if (!set) continue;
    tpl ??= new TopicFrame(msg);
    const m: PushMessage = { seq: copy.seq, mid, from, topic, tseq, body, ts, tpl };
    for (const c of set) c.cursor.pushMsg(m);
  }
}

/** `/sysctrl/deliver/<server-id>`: messages for local users, kicks of replaced sessions, the server API's kicks. */
export function onDeliver(s: MsgServer, payload: Uint8Array): void {
  for (const item of decodeItems<DeliverItem>(payload)) {
    if (!item || typeof item !== 'object') continue;
    if (item.k === 'pushes' && item.b instanceof Uint8Array) {
      forEachPush(item.b, (user, seq, frame) => deliverLocal(s, user, { seq, frame }));
    } else if (item.k === 'msg' && typeof item.user === 'string' && item.msg) {
      deliverLocal(s, item.user, asStoredMessage(item.msg));
    } else if (item.k === 'topic' && item.msg && Array.isArray(item.msg.copies)) {
      deliverTopic(s, asFanout(item.msg));
    } else if (item.k === 'kick' && typeof item.user === 'string') {
      kickOlder(s, item.user, item.device, item.gen);
    } else if (item.k === 'kick_admin' && typeof item.user === 'string') {
      kickLocal(s, item.user, typeof item.device === 'string' ? item.device : undefined);
    }
  }
}

function asFanout(m: FanoutMessage): FanoutMessage {
  if (!(m.body instanceof Uint8Array)) m.body = new Uint8Array(0);
  return m;
}

/** After the bus came back: pushes may have been lost; each session checks the store. */
export function recheckAll(s: MsgServer): void {
  for (const c of s.conns) {
    if (!c.loggedIn || !c.push) continue;
    void s.ctx.store
      .head(c.user!)
      .then((h) => c.cursor.fill(h.seq))
      .catch(() => undefined);
  }
}
