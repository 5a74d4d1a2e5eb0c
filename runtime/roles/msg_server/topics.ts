/** Topics: topic_create, topic_join, topic_leave, topic_members, topic_send, and the fan-out of a topic's messages. */
import type {
  TopicCreateReq,
  TopicJoinReq,
  TopicLeaveReq,
  TopicMembersReq,
  TopicSendReq,
} from '../../protocol/types.js';
import type { FanoutMessage } from '../../store/store.js';
import type { TopicStatusItem, TopicSyncItem } from '../../bus/payloads.js';
import type { Conn } from './connection.js';
import type { MsgServer } from './msg_server.js';
import { deliverTopic } from './delivery.js';
import { newMid } from './mid.js';

/** Copies a fan-out step appends per store call. */
const FANOUT_STEP = 2000;

function topicStatus(s: MsgServer, k: TopicStatusItem['k'], topic: string, user: string): void {
  s.pub.add(s.ctx.channels.topicStatus, { k, topic, user, server: s.id, ts: Date.now() } satisfies TopicStatusItem);
}

export async function topicCreate(s: MsgServer, conn: Conn, req: TopicCreateReq): Promise<void> {
  if (!(await s.ctx.store.topicCreate(req.topic, conn.user!, Date.now()))) {
    conn.error('topic_exists', `topic "${req.topic}" exists`, req.rid);
    return;
  }
  conn.reply({ op: 'ok', rid: req.rid });
  topicStatus(s, 'create', req.topic, conn.user!);
}

export async function topicJoin(s: MsgServer, conn: Conn, req: TopicJoinReq): Promise<void> {
  const max = s.ctx.settings.maxTopicMembers;
  const info = await s.ctx.store.topicInfo(req.topic);
  if (info === null) {
    conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
    return;
  }
  // Full: a member joining again still gets its ok (join is idempotent); no one else gets in.
  // (Checked before the join, not in the store's join step: joins racing on a topic one short
  // of full may pass it by the number of racers.)
  if (info.members >= max && !(await isMember(s, req.topic, conn.user!))) {
    conn.error('bad_request', `topic is full (${info.members} members, at most ${max})`, req.rid);
    return;
  }
  const members = await s.ctx.store.topicJoin(req.topic, conn.user!);
  if (members === null) {
    conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
    return;
  }
  conn.reply({ op: 'ok', rid: req.rid, members });
  topicStatus(s, 'join', req.topic, conn.user!);
}

/** Whether `user` is a member: the first member sorting after the name just below it. */
async function isMember(s: MsgServer, topic: string, user: string): Promise<boolean> {
  // Names use [A-Za-z0-9_.@-] (all below 0x7f): every name starting with the last character
  // lowered sorts before `below`, and `below` sorts before `user`.
  const last = user.charCodeAt(user.length - 1);
  const below = user.slice(0, -1) + String.fromCharCode(last - 1) + '\x7f';
  const page = await s.ctx.store.topicMembers(topic, below, 1);
  return page?.members[0] === user;
}

export async function topicLeave(s: MsgServer, conn: Conn, req: TopicLeaveReq): Promise<void> {
  const r = await s.ctx.store.topicLeave(req.topic, conn.user!);
  if (r === 'no_such_topic') conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
  else if (r === 'not_a_member') conn.error('not_a_member', `not a member of "${req.topic}"`, req.rid);
  else {
    conn.reply({ op: 'ok', rid: req.rid });
    topicStatus(s, 'leave', req.topic, conn.user!);
  }
}

export async function topicMembers(s: MsgServer, conn: Conn, req: TopicMembersReq): Promise<void> {
  const page = await s.ctx.store.topicMembers(req.topic, req.after, req.limit);
  if (!page) conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid, members: page.members, more: page.more });
}

export async function topicSend(s: MsgServer, conn: Conn, req: TopicSendReq): Promise<void> {
  const ts = Date.now();
  const { topic, body, cid } = req;
  const r = await s.ctx.store.topicAppend({ topic, from: conn.user!, mid: newMid(ts), body, ts, cid });
  if (r.code !== 'ok') {
    const message = r.code === 'no_such_topic' ? `no topic "${topic}"` : `not a member of "${topic}"`;
    conn.error(r.code, message, req.rid);
    return;
  }
  conn.reply({ op: 'ok', rid: req.rid, mid: r.mid, tseq: r.tseq, ts: r.ts });
  // A repeat (cid) may still find its fan-out unfinished: running it is harmless.
  fanout(s, req.topic);
}

/** Runs the topic's fan-out to the end; a send during a run makes it go once more. */
export function fanout(s: MsgServer, topic: string): void {
  const running = s.fanouts.get(topic);
  if (running) {
    running.again = true;
    return;
  }
  const state = { again: false };
  s.fanouts.set(topic, state);
  void (async () => {
    try {
      do {
        state.again = false;
        for (let step = 0; step < 10_000; step++) {
          const { messages, done } = await s.ctx.store.topicFanout(topic, FANOUT_STEP);
          for (const msg of messages) pushTopic(s, msg);
          if (done) break;
        }
      } while (state.again);
    } catch (err) {
      // The stored position is where the manager resumes it.
      s.ctx.log.warn(`fan-out of ${topic} stopped: ${(err as Error).message}`);
    } finally {
      s.fanouts.delete(topic);
    }
  })();
}

/** Pushes a fan-out step: to local members directly, to the others through the router. */
function pushTopic(s: MsgServer, msg: FanoutMessage): void {
  if (msg.copies.length === 0) return;
  deliverTopic(s, msg);
  s.pub.add(s.ctx.channels.topicSync, { origin: s.id, msg } satisfies TopicSyncItem);
}
