/**
 * The `fishchat chat` screen: a header (who, with whom, server, connection
 * state), the scrollback, a banner line for what the connection is doing,
 * and the input line. `Chat` takes everything as props; `ChatApp` feeds it
 * from a ChatStore and the terminal's size (the command wires the client).
 */
import { Box, Text, useInput, type Key } from 'ink';
import { useCallback, useRef, useState, useSyncExternalStore } from 'react';
import { EMPTY_EDIT, editLine, navKey, type LineEdit } from './ChatInput.js';
import { useTerminalSize } from './terminal-size.js';
import {
  formatBody,
  formatTime,
  type ChatLine,
  type ChatState,
  type ChatStore,
  type OutLine,
  type Tone,
} from './ChatState.js';

export interface ChatProps extends ChatState {
  /** columns */
  width: number;
  /** rows */
  height: number;
  /** a non-empty line the user entered */
  onSend: (text: string) => void;
  /** Ctrl-C, Ctrl-D on an empty line, or /quit */
  onQuit: () => void;
  /** for tests: "now", to show times of today without a date */
  now?: number;
}

/** Below this width a message is one wrapped text (no columns). */
const NARROW = 40;
const QUIT_COMMANDS = new Set(['/quit', '/exit', '/q']);

const TONE_COLOR: Record<Tone, string> = { info: 'gray', warn: 'yellow', error: 'red' };

const CONN_LABEL: Record<ChatState['conn'], { text: string; color: string }> = {
  connecting: { text: '◌ connecting…', color: 'yellow' },
  connected: { text: '● connected', color: 'green' },
  reconnecting: { text: '◌ reconnecting…', color: 'yellow' },
  closed: { text: '○ closed', color: 'red' },
};

function Header(props: ChatProps) {
  const conn = CONN_LABEL[props.conn];
  const peer = props.peer.kind === 'topic' ? `#${props.peer.name}` : props.peer.name;
  const members =
    props.peer.kind === 'topic' && props.members !== undefined
      ? ` (${props.members} member${props.members === 1 ? '' : 's'})`
      : '';
  return (
    <Box flexShrink={0} width={props.width}>
      <Text wrap="truncate-end">
        <Text bold color="green">
          {props.me}
        </Text>
        <Text>{props.peer.kind === 'topic' ? ' in ' : ' → '}</Text>
        <Text bold color="cyan">
          {peer}
        </Text>
        <Text dimColor>{members}</Text>
        <Text dimColor>{props.server ? ` · ${props.server}` : props.gateway ? ` · ${props.gateway}` : ''}</Text>
        <Text> · </Text>
        <Text color={conn.color}>{conn.text}</Text>
        {props.others > 0 ? <Text color="yellow">{` · ${props.others} other`}</Text> : null}
      </Text>
    </Box>
  );
}

function Mark({ line }: { line: OutLine }) {
  switch (line.state) {
    case 'pending':
      return <Text color="yellow"> …</Text>;
    case 'waiting':
      return <Text color="yellow"> … (waiting to resend)</Text>;
    case 'acked':
      return <Text color="green"> ✓</Text>;
    case 'failed':
      return <Text color="red">{` ✗ ${line.code ?? 'error'}`}</Text>;
  }
}

function MessageLine({ line, me, width, now }: { line: ChatLine; me: string; width: number; now?: number }) {
  const time = formatTime(line.ts, now);
  if (line.kind === 'note') {
    return (
      <Box flexShrink={0} width={width}>
        <Text wrap="wrap" color={TONE_COLOR[line.tone]} italic>
          {`${time} — ${line.text}`}
        </Text>
      </Box>
    );
  }
  const from = line.from;
  const text = line.kind === 'in' ? formatBody(line.body) : line.text;
  const fromColor = from === me ? 'green' : 'cyan';
  const mark = line.kind === 'out' ? <Mark line={line} /> : null;
  if (width < NARROW) {
    return (
      <Box flexShrink={0} width={width}>
        <Text wrap="wrap">
          <Text dimColor>{time} </Text>
          <Text color={fromColor} bold>
            {from}
          </Text>
          <Text>: {text}</Text>
          {mark}
        </Text>
      </Box>
    );
  }
  return (
    <Box flexShrink={0} width={width} flexDirection="row">
      <Box flexShrink={0}>
        <Text>
          <Text dimColor>{time} </Text>
          <Text color={fromColor} bold>
            {from}
          </Text>
          <Text>: </Text>
        </Text>
      </Box>
      <Box flexGrow={1} flexShrink={1}>
        <Text wrap="wrap">
          {text}
          {mark}
        </Text>
      </Box>
    </Box>
  );
}

/** The input line, with a block cursor. */
function InputLine({ edit, width }: { edit: LineEdit; width: number }) {
  const cs = Array.from(edit.text);
  const before = cs.slice(0, edit.cursor).join('');
  const at = cs[edit.cursor] ?? ' ';
  const after = cs.slice(edit.cursor + 1).join('');
  return (
    <Box flexShrink={0} width={width}>
      <Text wrap="wrap">
        <Text color="green" bold>
          {'› '}
        </Text>
        {before}
        <Text inverse>{at}</Text>
        {after}
      </Text>
    </Box>
  );
}

export function Chat(props: ChatProps) {
  const width = Math.max(10, Math.floor(props.width));
  const height = Math.max(6, Math.floor(props.height));
  const { onSend, onQuit } = props;
  const editRef = useRef<LineEdit>(EMPTY_EDIT);
  const [edit, setEdit] = useState<LineEdit>(EMPTY_EDIT);
  /** messages scrolled back from the newest */
  const [scroll, setScroll] = useState(0);
  const total = props.lines.length;

  const page = Math.max(1, height - 6);
  const handler = useCallback(
    (input: string, key: Key) => {
      const nav = navKey(key);
      if (nav !== undefined) {
        setScroll((s) => {
          if (nav === 'escape') return 0;
          const delta = nav === 'pageUp' ? page : nav === 'pageDown' ? -page : nav === 'up' ? 1 : -1;
          return Math.max(0, Math.min(Math.max(0, total - 1), s + delta));
        });
        return;
      }
      const r = editLine(editRef.current, input, key);
      editRef.current = r.edit;
      setEdit(r.edit);
      for (const line of r.submitted) {
        const text = line.trim();
        if (text === '') continue;
        if (QUIT_COMMANDS.has(text)) {
          onQuit();
          return;
        }
        onSend(line);
      }
      if (r.quit) onQuit();
    },
    [onSend, onQuit, page, total],
  );
  useInput(handler, { isActive: props.conn !== 'closed' });

  // Every message takes at least one row: the last `rows` of them fill the
  // scrollback; the box clips what wraps past its top.
  const rows = height;
  const offset = Math.min(scroll, Math.max(0, total - 1));
  const end = total - offset;
  const shown = props.lines.slice(Math.max(0, end - rows), end);

  return (
    <Box flexDirection="column" width={width} height={height}>
      <Header {...props} width={width} />
      <Box flexShrink={0}>
        <Text dimColor>{'─'.repeat(width)}</Text>
      </Box>
      <Box flexDirection="column" flexGrow={1} flexShrink={1} overflow="hidden" justifyContent="flex-end">
        {total === 0 ? (
          <Box flexShrink={0}>
            <Text dimColor wrap="wrap">
              {props.peer.kind === 'topic'
                ? `No messages in #${props.peer.name} yet.`
                : `No messages with ${props.peer.name} yet.`}{' '}
              Type a message and press Enter.
            </Text>
          </Box>
        ) : null}
        {shown.map((line) => (
          <MessageLine key={line.key} line={line} me={props.me} width={width} now={props.now} />
        ))}
      </Box>
      {offset > 0 ? (
        <Box flexShrink={0}>
          <Text
            color="yellow"
            wrap="truncate-end"
          >{`↓ ${offset} newer message${offset === 1 ? '' : 's'} below · PgDn/↓ to scroll, Esc to jump back`}</Text>
        </Box>
      ) : null}
      {props.banner ? (
        <Box flexShrink={0}>
          <Text
            color={TONE_COLOR[props.banner.tone] === 'gray' ? 'cyan' : TONE_COLOR[props.banner.tone]}
            wrap="truncate-end"
          >
            {props.banner.text}
          </Text>
        </Box>
      ) : null}
      <Box flexShrink={0}>
        <Text dimColor>{'─'.repeat(width)}</Text>
      </Box>
      <InputLine edit={edit} width={width} />
      <Box flexShrink={0}>
        <Text dimColor wrap="truncate-end">
          Enter send · PgUp/PgDn scroll · /quit or Ctrl-C exit
        </Text>
      </Box>
    </Box>
  );
}

export interface ChatAppProps {
  store: ChatStore;
  onSend: (text: string) => void;
  onQuit: () => void;
}

/** The screen of a live session: the store's state at the terminal's size. */
export function ChatApp({ store, onSend, onQuit }: ChatAppProps) {
  const state = useSyncExternalStore(store.subscribe, store.get, store.get);
  const { columns, rows } = useTerminalSize();
  // One row short of the terminal: a frame as tall as the screen makes Ink clear it on every update.
  return <Chat {...state} width={columns} height={rows - 1} onSend={onSend} onQuit={onQuit} />;
}
