/**
 * `fishchat chat`'s screen with ink-testing-library: the Chat view from props
 * (messages, send marks, banners, wrapping, narrow terminals, keys), the
 * ChatApp fed by a ChatStore, and the pure state and input-line logic.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { cleanup, render } from 'ink-testing-library';
// tsx compiles test/ (outside tsconfig.json's include) with the classic JSX transform, which needs React in scope.
import React from 'react';
import { Chat, ChatApp, type ChatProps } from '../cli/ui/Chat.js';
import { EMPTY_EDIT, editLine } from '../cli/ui/ChatInput.js';
import {
  ChatStore,
  formatBody,
  formatTime,
  initialChat,
  withConn,
  withHistory,
  withIncoming,
  withNote,
  withOther,
  withSendUpdate,
  withSending,
  type ChatLine,
  type ChatState,
} from '../cli/ui/ChatState.js';

/** 2024-01-02, local time: the times shown are the same in every time zone. */
const at = (h: number, m: number, s: number): number => new Date(2024, 0, 2, h, m, s).getTime();
const NOW = at(12, 0, 0);

void React;

const strip = (s: string | undefined): string => (s ?? '').replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

async function waitFor(
  frame: () => string | undefined,
  pred: (f: string) => boolean,
  what: string,
  timeoutMs = 2000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = strip(frame());
    if (pred(f)) return f;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last frame:\n${f}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function inMsg(seq: number, from: string, body: unknown, ts = at(9, 5, seq)): ChatLine {
  return { kind: 'in', key: `m:${seq}`, mid: `mid${seq}`, seq, from, ts, body };
}

function props(over: Partial<ChatProps> = {}): ChatProps {
  const base: ChatState = {
    ...initialChat({ me: 'alice', peer: { kind: 'user', name: 'bob' }, gateway: '127.0.0.1:17000' }),
    conn: 'connected',
    server: 'ms-19000',
  };
  return { ...base, width: 80, height: 16, now: NOW, onSend: () => {}, onQuit: () => {}, ...over };
}

afterEach(() => cleanup());

describe('Chat view', () => {
  test('shows the header, and messages with sender, local time and text; other bodies as compact JSON', () => {
    const lines: ChatLine[] = [
      inMsg(1, 'bob', 'hello alice', at(9, 5, 7)),
      inMsg(2, 'bob', { kind: 'card', n: [1, 2] }, at(9, 6, 0)),
      inMsg(3, 'bob', 'with \u001b[31mescape', at(9, 6, 1)),
    ];
    const f = strip(render(<Chat {...props({ lines, others: 2 })} />).lastFrame());
    assert.match(f, /alice → bob · ms-19000 · ● connected · 2 other/);
    assert.match(f, /09:05:07 bob: hello alice/);
    assert.match(f, /09:06:00 bob: \{"kind":"card","n":\[1,2\]\}/);
    // a control character is shown, not sent to the terminal
    assert.match(f, /with \\x1b\[31mescape/);
    assert.match(f, /Enter send/);
  });

  test('a topic header names the topic and its members; an empty chat says what to do', () => {
    const f = strip(render(<Chat {...props({ peer: { kind: 'topic', name: 'general' }, members: 3 })} />).lastFrame());
    assert.match(f, /alice in #general \(3 members\)/);
    assert.match(f, /No messages in #general yet/);
  });

  test('a sent line is pending (…) until acked (✓); a failure shows ✗ and the code', () => {
    let state = withConn(initialChat({ me: 'alice', peer: { kind: 'user', name: 'bob' } }), 'connected', {
      server: 'ms-1',
    });
    state = withSending(state, { cid: 'c1', text: 'hi bob', ts: at(10, 0, 0) });
    state = withSending(state, { cid: 'c2', text: 'second', ts: at(10, 0, 1) });
    const r = render(<Chat {...props(state)} />);
    let f = strip(r.lastFrame());
    assert.match(f, /10:00:00 alice: hi bob …/);
    assert.match(f, /10:00:01 alice: second …/);
    assert.doesNotMatch(f, /✓/);

    state = withSendUpdate(state, 'c1', { state: 'acked', mid: 'm1', ts: at(10, 0, 2) });
    state = withSendUpdate(state, 'c2', { state: 'waiting' });
    r.rerender(<Chat {...props(state)} />);
    f = strip(r.lastFrame());
    assert.match(f, /10:00:02 alice: hi bob ✓/);
    assert.match(f, /second … \(waiting to resend\)/);

    state = withSendUpdate(state, 'c2', { state: 'failed', code: 'rate_limited' });
    r.rerender(<Chat {...props(state)} />);
    f = strip(r.lastFrame());
    assert.match(f, /second ✗ rate_limited/);
    assert.match(f, /hi bob ✓/);
  });

  test('typing and Enter call onSend; empty lines are ignored; backspace edits; /quit and Ctrl-C call onQuit', async () => {
    const sent: string[] = [];
    let quits = 0;
    const r = render(<Chat {...props({ onSend: (t) => sent.push(t), onQuit: () => quits++ })} />);
    await tick();
    r.stdin.write('hel');
    r.stdin.write('lo');
    await waitFor(r.lastFrame, (f) => f.includes('› hello'), 'the typed text');
    r.stdin.write('\r');
    await waitFor(
      () => String(sent.length),
      (n) => n === '1',
      'onSend',
    );
    assert.deepEqual(sent, ['hello']);
    await waitFor(r.lastFrame, (f) => !f.includes('› hello'), 'the input cleared');

    r.stdin.write('\r'); // empty: ignored
    r.stdin.write('   ');
    r.stdin.write('\r'); // blank: ignored
    r.stdin.write('byx');
    r.stdin.write('\x7f'); // Backspace
    r.stdin.write('e');
    r.stdin.write('\r');
    // a terminal may deliver text and Enter in one read (tmux send-keys 'hi bob' Enter)
    r.stdin.write('hi bob\r');
    await waitFor(
      () => sent.join('|'),
      (s) => s === 'hello|bye|hi bob',
      'the later sends',
    );

    r.stdin.write('/quit\r');
    await waitFor(
      () => String(quits),
      (n) => n === '1',
      '/quit',
    );
    r.stdin.write('\x03'); // Ctrl-C
    await waitFor(
      () => String(quits),
      (n) => n === '2',
      'Ctrl-C',
    );
    assert.deepEqual(sent, ['hello', 'bye', 'hi bob']);
  });

  test('the reconnect banner, then the new server in the header', () => {
    const reconnecting = withConn(
      withConn(initialChat({ me: 'alice', peer: { kind: 'user', name: 'bob' } }), 'connected', { server: 'ms-19000' }),
      'reconnecting',
      {
        banner: { text: 'reconnecting… (connection lost)', tone: 'warn' },
      },
    );
    const r = render(<Chat {...props(reconnecting)} />);
    let f = strip(r.lastFrame());
    assert.match(f, /◌ reconnecting…/);
    assert.match(f, /reconnecting… \(connection lost\)/);

    const back = withNote(
      withConn(reconnecting, 'connected', {
        server: 'ms-19001',
        banner: { text: 'reconnected to ms-19001', tone: 'info' },
      }),
      'reconnected to ms-19001',
      'info',
      at(11, 0, 0),
    );
    r.rerender(<Chat {...props(back)} />);
    f = strip(r.lastFrame());
    assert.match(f, /alice → bob · ms-19001 · ● connected/);
    assert.match(f, /11:00:00 — reconnected to ms-19001/);
    assert.doesNotMatch(f, /reconnecting…/);
  });

  test('long lines wrap within the width, and the newest message stays visible', () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const lines = [
      ...Array.from({ length: 30 }, (_, i) => inMsg(i + 1, 'bob', `old ${i + 1}`)),
      inMsg(99, 'bob', long),
    ];
    const f = strip(render(<Chat {...props({ lines, width: 60, height: 14 })} />).lastFrame());
    const rows = f.split('\n');
    assert.ok(rows.length <= 14, `at most 14 rows, got ${rows.length}`);
    for (const row of rows) assert.ok(Array.from(row).length <= 60, `row wider than 60: ${JSON.stringify(row)}`);
    // every word of the newest message is on screen, over several rows
    for (let i = 0; i < 40; i++) assert.match(f, new RegExp(`\\bword${i}\\b`));
    assert.ok(rows.filter((r) => /word\d/.test(r)).length >= 4);
    // the header is not overwritten by the scrollback
    assert.match(rows[0]!, /alice → bob/);
    assert.doesNotMatch(f, /old 1\b/);
  });

  test('a narrow, short terminal does not crash and stays within its width', () => {
    const long = 'x'.repeat(150);
    const lines = [inMsg(1, 'bob', long), inMsg(2, 'a-very-long-user-name', 'short'), inMsg(3, 'bob', 'last one')];
    for (const [width, height] of [
      [20, 8],
      [12, 6],
      [1, 1],
    ] as const) {
      const f = strip(render(<Chat {...props({ lines, width, height, others: 12345 })} />).lastFrame());
      const w = Math.max(width, 10);
      for (const row of f.split('\n'))
        assert.ok(Array.from(row).length <= w, `${width}x${height}: row wider than ${w}: ${JSON.stringify(row)}`);
      // the newest message's end is on screen (its start may be clipped at the top of a 1-row scrollback)
      assert.match(f, /one/);
    }
  });

  test('PgUp scrolls back, Esc returns to the newest', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => inMsg(i + 1, 'bob', `msg ${i + 1}`));
    const r = render(<Chat {...props({ lines, height: 12 })} />);
    await tick();
    assert.match(strip(r.lastFrame()), /msg 40\b/);
    r.stdin.write('\u001b[5~'); // PgUp
    const f = await waitFor(r.lastFrame, (x) => !/msg 40\b/.test(x), 'scrolled back');
    assert.match(f, /newer messages? below/);
    r.stdin.write('\u001b'); // Esc
    await waitFor(r.lastFrame, (x) => /msg 40\b/.test(x), 'back at the newest', 3000);
  });
});

describe('ChatApp (the store-fed screen)', () => {
  test('typing works while messages arrive', async () => {
    const store = new ChatStore(
      withConn(initialChat({ me: 'alice', peer: { kind: 'user', name: 'bob' } }), 'connected', { server: 'ms-19000' }),
    );
    const sent: string[] = [];
    const r = render(<ChatApp store={store} onSend={(t) => sent.push(t)} onQuit={() => {}} />);
    await tick();
    r.stdin.write('abc');
    await waitFor(r.lastFrame, (f) => f.includes('› abc'), 'typed');
    store.update((s) =>
      withIncoming(s, { seq: 1, mid: 'x1', from: 'bob', ts: Date.now(), body: 'incoming while typing' }),
    );
    store.update(withOther);
    await waitFor(
      r.lastFrame,
      (f) => f.includes('incoming while typing') && f.includes('› abc') && f.includes('1 other'),
      'the message, the input kept',
    );
    r.stdin.write('d\r');
    await waitFor(
      () => sent.join('|'),
      (s) => s === 'abcd',
      'onSend',
    );
  });
});

describe('chat state', () => {
  const base = () => withConn(initialChat({ me: 'alice', peer: { kind: 'topic', name: 'general' } }), 'connected');

  test('a repeated mid is shown once', () => {
    let s = withIncoming(base(), { seq: 1, mid: 'a', from: 'bob', ts: 1, body: 'x' });
    const again = withIncoming(s, { seq: 1, mid: 'a', from: 'bob', ts: 1, body: 'x' });
    assert.equal(again, s);
    s = withIncoming(s, { seq: 2, mid: 'b', from: 'bob', ts: 2, body: 'y' });
    assert.equal(s.lines.length, 2);
  });

  test("one's own topic message, coming back through the inbox, is folded into the sent line (either order)", () => {
    // the copy arrives after the ok
    let s = withSending(base(), { cid: 'c1', text: 'hi all', ts: 1 });
    s = withSendUpdate(s, 'c1', { state: 'acked', mid: 'M1', ts: 5 });
    s = withIncoming(s, { seq: 7, mid: 'M1', from: 'alice', ts: 5, body: 'hi all' });
    assert.deepEqual(
      s.lines.map((l) => l.kind),
      ['out'],
    );
    // the copy arrives before the ok
    let t = withSending(base(), { cid: 'c2', text: 'fast', ts: 1 });
    t = withIncoming(t, { seq: 8, mid: 'M2', from: 'alice', ts: 5, body: 'fast' });
    assert.equal(t.lines.length, 2);
    t = withSendUpdate(t, 'c2', { state: 'acked', mid: 'M2', ts: 5 });
    assert.equal(t.lines.length, 1);
    assert.equal(t.lines[0]!.kind === 'out' && t.lines[0]!.state, 'acked');
  });

  test('history goes above what is shown, without repeats', () => {
    let s = withIncoming(base(), { seq: 5, mid: 'e', from: 'bob', ts: 5, body: 'backlog' });
    s = withHistory(s, [
      { seq: 3, mid: 'c', from: 'bob', ts: 3, body: 'old' },
      { seq: 5, mid: 'e', from: 'bob', ts: 5, body: 'backlog' },
    ]);
    assert.deepEqual(
      s.lines.map((l) => (l.kind === 'in' ? l.mid : l.key)),
      ['c', 'e'],
    );
  });

  test('bodies: strings as text, others as compact JSON, bytes summarized, control characters visible', () => {
    assert.equal(formatBody('plain'), 'plain');
    assert.equal(formatBody({ a: 1, b: [true, null] }), '{"a":1,"b":[true,null]}');
    assert.equal(formatBody(42), '42');
    assert.equal(formatBody({ raw: new Uint8Array([1, 2, 3]) }), '{"raw":"<3 bytes>"}');
    assert.equal(formatBody({ big: 10n }), '{"big":"10"}');
    assert.equal(formatBody('a\u001b[2Jb\u0007'), 'a\\x1b[2Jb\\x07');
    assert.equal(formatBody('two\nlines'), 'two\nlines');
  });

  test('times: HH:MM:SS today, MM-DD HH:MM on another day', () => {
    assert.equal(formatTime(at(9, 5, 7), NOW), '09:05:07');
    assert.equal(formatTime(new Date(2023, 11, 31, 23, 59, 0).getTime(), NOW), '12-31 23:59');
  });
});

describe('the input line', () => {
  test('editing keys', () => {
    let e = editLine(EMPTY_EDIT, 'hello world', {}).edit;
    assert.deepEqual(e, { text: 'hello world', cursor: 11 });
    e = editLine(e, 'w', { ctrl: true }).edit; // delete word
    assert.deepEqual(e, { text: 'hello ', cursor: 6 });
    e = editLine(e, '', { leftArrow: true }).edit;
    e = editLine(e, ',', {}).edit;
    assert.deepEqual(e, { text: 'hello, ', cursor: 6 });
    e = editLine(e, 'a', { ctrl: true }).edit;
    e = editLine(e, '>', {}).edit;
    assert.equal(e.text, '>hello, ');
    e = editLine(e, 'u', { ctrl: true }).edit;
    assert.deepEqual(e, { text: 'hello, ', cursor: 0 });
    const r = editLine(e, '', { return: true });
    assert.deepEqual(r.submitted, ['hello, ']);
    assert.deepEqual(r.edit, EMPTY_EDIT);
  });

  test('a chunk with line breaks submits each line; Ctrl-D quits only on an empty line', () => {
    const r = editLine(EMPTY_EDIT, 'one\ntwo\r\nthr', {});
    assert.deepEqual(r.submitted, ['one', 'two', '']);
    assert.deepEqual(r.edit, { text: 'thr', cursor: 3 });
    assert.equal(editLine(r.edit, 'd', { ctrl: true }).quit, false);
    assert.equal(editLine(EMPTY_EDIT, 'd', { ctrl: true }).quit, true);
    assert.equal(editLine(r.edit, 'c', { ctrl: true }).quit, true);
  });

  test('control keys inside a chunk (tmux send-keys x C-u C-d) act as keys', () => {
    const r = editLine(EMPTY_EDIT, 'x\u0004\u0015\u0004', {});
    assert.equal(r.quit, true);
    assert.deepEqual(r.edit, EMPTY_EDIT);
    const w = editLine(EMPTY_EDIT, 'one two\u0017three\u0001>', {});
    assert.deepEqual(w.edit, { text: '>one three', cursor: 1 });
    assert.equal(w.quit, false);
    assert.equal(editLine(EMPTY_EDIT, 'abc\u0003', {}).quit, true);
  });

  test('wide characters are edited as one', () => {
    let e = editLine(EMPTY_EDIT, '鱼传🐟', {}).edit;
    e = editLine(e, '', { backspace: true }).edit;
    assert.deepEqual(e, { text: '鱼传', cursor: 2 });
  });
});
