/**
 * The `msg` frames a msg_server pushes, encoded once per message: one frame
 * serves every connection it reaches (a topic message: one template per fan-out).
 */
import { encodeCbor, encodeFrame, RawCbor, type WireValue } from '../../protocol/index.js';
import type { StoredMessage } from '../../store/store.js';

/** A topic message's fields but `seq`, encoded once per fan-out: each member's frame adds only its seq. */
export class TopicFrame {
  private readonly rest: Uint8Array;

  constructor(m: { mid: string; from: string; topic: string; tseq: number; body: Uint8Array; ts: number }) {
    const { mid, from, topic, tseq, ts } = m;
    const f = encodeFrame({ op: 'msg', mid, from, topic, tseq, body: new RawCbor(m.body), ts });
    // f = length(4) | map head (7 entries, 0xa7) | entries
    this.rest = f.slice(5);
  }

  forSeq(seq: number): Uint8Array {
    const seqItem = encodeCbor(seq);
    const len = 1 + this.rest.length + SEQ_KEY.length + seqItem.length;
    const out = new Uint8Array(4 + len);
    new DataView(out.buffer).setUint32(0, len);
    out[4] = 0xa8; // 8 entries: seq last
    out.set(this.rest, 5);
    out.set(SEQ_KEY, 5 + this.rest.length);
    out.set(seqItem, 5 + this.rest.length + SEQ_KEY.length);
    return out;
  }
}
const SEQ_KEY = encodeCbor('seq');

/**
 * A message as pushed: a stored message, maybe with its encoded frame or its
 * topic template; or only its seq and frame (a push from another msg_server).
 */
export type PushMessage = (StoredMessage & { frame?: Uint8Array; tpl?: TopicFrame }) | FramedPush;
/** A push that arrived as its frame: written as it is. */
export interface FramedPush {
  seq: number;
  frame: Uint8Array;
  tpl?: undefined;
}

/** The frame of a pushed (or synced) message; cached on the message so one encode serves every connection. */
export function msgFrame(m: PushMessage, rid?: number): Uint8Array {
  if (rid === undefined && m.frame) return m.frame;
  if (!('mid' in m)) throw new Error('a framed push has no fields to encode again');
  if (rid === undefined && m.tpl) return (m.frame = m.tpl.forSeq(m.seq));
  const { seq, mid, from, ts } = m;
  const body = new RawCbor(m.body);
  const fields: Record<string, WireValue | undefined> =
    m.topic === undefined
      ? { op: 'msg', rid, seq, mid, from, to: m.to, body, ts }
      : { op: 'msg', rid, seq, mid, from, topic: m.topic, tseq: m.tseq, body, ts };
  const frame = encodeFrame(fields);
  if (rid === undefined) m.frame = frame;
  return frame;
}
