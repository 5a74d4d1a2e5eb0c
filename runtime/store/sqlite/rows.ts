/** The rows the statements (./statements.ts) return, and their Store shapes. */
import { EMPTY } from '../common.js';
import type { StoredMessage, TopicInfo } from '../store.js';

export interface HeadRow {
  seq: number;
  epoch: string;
  first: number | null;
}
export interface MessageRow {
  seq: number;
  mid: string;
  sender: string;
  recipient: string | null;
  topic: string | null;
  tseq: number | null;
  body: Uint8Array | null;
  ts: number;
}
/** An inbox row not yet merged from `recent` into `inbox`: the same columns. */
export type MemRow = MessageRow;

export interface CidRow {
  mid: string;
  seq: number;
  ts: number;
}
export interface DirRow {
  device: string;
  server: string;
  boot: string;
  gen: number;
}
/** A `topics` row: the TopicInfo columns and the fan-out member. */
export type TopicRow = TopicInfo & { fan_member: string };
export interface MemberRow {
  joined_tseq: number;
  left_tseq: number | null;
}
export interface LogRow {
  mid: string;
  sender: string;
  body: Uint8Array;
  ts: number;
}

export function toMessage(r: MemRow, body: Uint8Array | null): StoredMessage {
  const m: StoredMessage = { seq: r.seq, mid: r.mid, from: r.sender, body: body ?? EMPTY, ts: r.ts };
  if (r.recipient !== null) m.to = r.recipient;
  if (r.topic !== null) {
    m.topic = r.topic;
    m.tseq = r.tseq ?? 0;
  }
  return m;
}

export const topicInfoOf = (r: TopicInfo): TopicInfo => ({
  topic: r.topic,
  creator: r.creator,
  created: r.created,
  members: r.members,
  tseq: r.tseq,
  fanned: r.fanned,
});
