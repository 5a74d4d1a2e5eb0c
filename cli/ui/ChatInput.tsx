/**
 * The input line of `fishchat chat`: a pure editor (text + cursor) driven by
 * Ink's key events. A terminal may deliver several keys in one event (a paste,
 * or `tmux send-keys 'hi' Enter` arriving as "hi\r"): every character is
 * applied in order, and each line break submits what was typed before it.
 */
import type { Key } from 'ink';

export interface LineEdit {
  text: string;
  /** a code-point index into text */
  cursor: number;
}

export const EMPTY_EDIT: LineEdit = { text: '', cursor: 0 };

export interface EditResult {
  edit: LineEdit;
  /** lines submitted by Enter (or line breaks in the input), in order */
  submitted: string[];
  /** Ctrl-C, or Ctrl-D on an empty line */
  quit: boolean;
}

/** Keys that are not editing: the view handles them (scrolling). */
export type NavKey = 'pageUp' | 'pageDown' | 'up' | 'down' | 'escape';

function chars(s: string): string[] {
  return Array.from(s);
}

function insert(e: LineEdit, s: string): LineEdit {
  const cs = chars(e.text);
  const add = chars(s);
  cs.splice(e.cursor, 0, ...add);
  return { text: cs.join(''), cursor: e.cursor + add.length };
}

function deleteBack(e: LineEdit): LineEdit {
  if (e.cursor === 0) return e;
  const cs = chars(e.text);
  cs.splice(e.cursor - 1, 1);
  return { text: cs.join(''), cursor: e.cursor - 1 };
}

function deleteWordBack(e: LineEdit): LineEdit {
  const cs = chars(e.text);
  let i = e.cursor;
  while (i > 0 && cs[i - 1] === ' ') i--;
  while (i > 0 && cs[i - 1] !== ' ') i--;
  cs.splice(i, e.cursor - i);
  return { text: cs.join(''), cursor: i };
}

/** Ctrl + a letter: the readline keys. */
function ctrlKey(e: LineEdit, letter: string): { edit: LineEdit; quit: boolean } {
  const len = chars(e.text).length;
  switch (letter) {
    case 'c':
      return { edit: e, quit: true };
    case 'd':
      return { edit: e, quit: len === 0 };
    case 'a':
      return { edit: { ...e, cursor: 0 }, quit: false };
    case 'e':
      return { edit: { ...e, cursor: len }, quit: false };
    case 'u':
      return { edit: { text: chars(e.text).slice(e.cursor).join(''), cursor: 0 }, quit: false };
    case 'k':
      return { edit: { text: chars(e.text).slice(0, e.cursor).join(''), cursor: e.cursor }, quit: false };
    case 'w':
      return { edit: deleteWordBack(e), quit: false };
    case 'h':
      return { edit: deleteBack(e), quit: false };
    default:
      return { edit: e, quit: false };
  }
}

/** Applies one Ink input event to the line. */
export function editLine(e: LineEdit, input: string, key: Partial<Key>): EditResult {
  const submitted: string[] = [];
  const len = chars(e.text).length;
  if (key.ctrl) return { ...ctrlKey(e, input), submitted };
  if (key.return) return { edit: EMPTY_EDIT, submitted: [e.text], quit: false };
  // Most terminals send DEL (0x7f) for Backspace, which Ink names `delete`.
  if (key.backspace || key.delete) return { edit: deleteBack(e), submitted, quit: false };
  if (key.leftArrow) return { edit: { ...e, cursor: Math.max(0, e.cursor - 1) }, submitted, quit: false };
  if (key.rightArrow) return { edit: { ...e, cursor: Math.min(len, e.cursor + 1) }, submitted, quit: false };
  if (key.home) return { edit: { ...e, cursor: 0 }, submitted, quit: false };
  if (key.end) return { edit: { ...e, cursor: len }, submitted, quit: false };
  if (key.upArrow || key.downArrow || key.pageUp || key.pageDown || key.tab || key.escape || key.meta) {
    return { edit: e, submitted, quit: false };
  }
  // Several keys in one event: each character in order.
  let edit = e;
  let run = '';
  const flush = (): void => {
    if (run !== '') edit = insert(edit, run);
    run = '';
  };
  for (const c of chars(input)) {
    const code = c.codePointAt(0)!;
    if (c === '\r' || c === '\n') {
      flush();
      submitted.push(edit.text);
      edit = EMPTY_EDIT;
    } else if (c === '\x7f' || c === '\b') {
      flush();
      edit = deleteBack(edit);
    } else if (c === '\t') {
      run += ' ';
    } else if (code >= 1 && code <= 26) {
      // Ctrl + a letter
      flush();
      const r = ctrlKey(edit, String.fromCharCode(code + 96));
      edit = r.edit;
      if (r.quit) return { edit, submitted, quit: true };
    } else if (code < 32 || (code >= 0x80 && code <= 0x9f)) {
      // other control characters: ignored
    } else {
      run += c;
    }
  }
  flush();
  return { edit, submitted, quit: false };
}

/** Which scroll key an event is, if any. */
export function navKey(key: Partial<Key>): NavKey | undefined {
  if (key.pageUp) return 'pageUp';
  if (key.pageDown) return 'pageDown';
  if (key.upArrow) return 'up';
  if (key.downArrow) return 'down';
  if (key.escape) return 'escape';
  return undefined;
}
