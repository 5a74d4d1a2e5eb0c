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

/**
 * What a topic op did, when it did not succeed: the protocol's error code and
 * message, the same for a connection and the server API (api.ts).
 */
export interface TopicRefusal {
  code: 'no_such_topic' | 'topic_exists' | 'not_a_member' | 'bad_request';
  message: string;
}

function noSuchTopic(topic: string): TopicRefusal {
  return { code: 'no_such_topic', message: `no topic "${topic}"` };
}

function notAMember(topic: string): TopicRefusal {
  return { code: 'not_a_member', message: `not a member of "${topic}"` };
}

/** Creates `topic` with `user` as its first member; a refusal when it exists. */
export async function createTopic(s: MsgServer, user: string, topic: string): Promise<TopicRefusal | undefined> {
  if (!(await s.ctx.store.topicCreate(topic, user, Date.now()))) {
    return { code: 'topic_exists', message: `topic "${topic}" exists` };
  }
  topicStatus(s, 'create', topic, user);
  return undefined;
}

/** Adds `user` to `topic` (idempotent, within maxTopicMembers): the member count, or a refusal. */
export async function joinTopic(s: MsgServer, user: string, topic: string): Promise<number | TopicRefusal> {
  const max = s.ctx.settings.maxTopicMembers;
  const info = await s.ctx.store.topicInfo(topic);
  if (info === null) return noSuchTopic(topic);
  // Full: a member joining again still gets its ok (join is idempotent); no one else gets in.
  // (Checked before the join, not in the store's join step: joins racing on a topic one short
  // of full may pass it by the number of racers.)
  if (info.members >= max && !(await isMember(s, topic, user))) {
    return { code: 'bad_request', message: `topic is full (${info.members} members, at most ${max})` };
  }
  const members = await s.ctx.store.topicJoin(topic, user);
  if (members === null) return noSuchTopic(topic);
  topicStatus(s, 'join', topic, user);
  return members;
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

/** Removes `user` from `topic`; a refusal when there is no such topic or it is no member. */
export async function leaveTopic(s: MsgServer, user: string, topic: string): Promise<TopicRefusal | undefined> {
  const r = await s.ctx.store.topicLeave(topic, user);
  if (r === 'no_such_topic') return noSuchTopic(topic);
  if (r === 'not_a_member') return notAMember(topic);
  topicStatus(s, 'leave', topic, user);
  return undefined;
}

/** What a topic send stores: the same for a connection's `topic_send` and the server API. */
export interface TopicPost {
  topic: string;
  /** the raw CBOR of the body, validated (docs/protocol.md §1) */
  body: Uint8Array;
  cid?: string;
}

/**
 * The send path of every topic message, whoever sends: stored once in the
 * topic's log (membership, cid and tseq are the store's), durable when it
 * resolves; then the fan-out to the members' inboxes runs (a cid repeat may
 * still find its fan-out unfinished: running it is harmless).
 */
export async function topicSendAs(
  s: MsgServer,
  from: string,
  m: TopicPost,
): Promise<{ mid: string; tseq: number; ts: number } | TopicRefusal> {
  const ts = Date.now();
  const { topic, body, cid } = m;
  const r = await s.ctx.store.topicAppend({ topic, from, mid: newMid(ts), body, ts, cid });
  if (r.code !== 'ok') return r.code === 'no_such_topic' ? noSuchTopic(topic) : notAMember(topic);
  // The fan-out's first push comes after a store call: after the caller's ok.
  fanout(s, topic);
  return { mid: r.mid, tseq: r.tseq, ts: r.ts };
}

export function isRefusal(r: unknown): r is TopicRefusal {
  return typeof r === 'object' && r !== null && 'code' in r;
}

// ---- the ops of a connection ----

export async function topicCreate(s: MsgServer, conn: Conn, req: TopicCreateReq): Promise<void> {
  const no = await createTopic(s, conn.user!, req.topic);
  if (no) conn.error(no.code, no.message, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid });
}

export async function topicJoin(s: MsgServer, conn: Conn, req: TopicJoinReq): Promise<void> {
  const r = await joinTopic(s, conn.user!, req.topic);
  if (isRefusal(r)) conn.error(r.code, r.message, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid, members: r });
}

export async function topicLeave(s: MsgServer, conn: Conn, req: TopicLeaveReq): Promise<void> {
  const no = await leaveTopic(s, conn.user!, req.topic);
  if (no) conn.error(no.code, no.message, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid });
}

export async function topicMembers(s: MsgServer, conn: Conn, req: TopicMembersReq): Promise<void> {
  const page = await s.ctx.store.topicMembers(req.topic, req.after, req.limit);
  if (!page) conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid, members: page.members, more: page.more });
}

export async function topicSend(s: MsgServer, conn: Conn, req: TopicSendReq): Promise<void> {
  const r = await topicSendAs(s, conn.user!, req);
  if (isRefusal(r)) conn.error(r.code, r.message, req.rid);
  else conn.reply({ op: 'ok', rid: req.rid, mid: r.mid, tseq: r.tseq, ts: r.ts });
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
