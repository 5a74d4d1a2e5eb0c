/**
 * The `fishchat tail` view: a header (cluster, monitor, stream state), a
 * table of roles (state, connections, msgs/s in and out with sparklines of
 * the last beats, latency, memory) and a scrolling event log. Keys: q quit,
 * p pause/resume the log, f filter it (Enter applies, Esc clears).
 *
 * It takes its data from a TailStore and its size from the terminal (or the
 * `columns`/`rows` props), so tests render it without a network or a TTY.
 */
import { Box, Text, useInput } from 'ink';
import { useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import { bytes, duration } from '../format.js';
import { sparkline } from './sparkline.js';
import { useTerminalSize } from './terminal-size.js';
import {
  HISTORY,
  matches,
  type Connection,
  type LogEntry,
  type LogKind,
  type TailRole,
  type TailSnapshot,
  type TailStore,
} from './TailStore.js';

export interface TailProps {
  store: TailStore;
  /** q (and Ctrl-C when Ink does not handle it itself) */
  onQuit?: () => void;
  /** the terminal size; default: the output stream's, following resizes */
  columns?: number;
  rows?: number;
  /** listen to keys (default true; false when stdin is no terminal) */
  interactive?: boolean;
  /** the log filter to start with (`--filter`) */
  initialFilter?: string;
}

interface Paused {
  /** the newest entry when the log was paused */
  seq: number;
  /** the log as it was then */
  log: readonly LogEntry[];
}

export function Tail({ store, onQuit, columns, rows, interactive = true, initialFilter = '' }: TailProps) {
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const size = useTerminalSize(columns, rows);
  const [paused, setPaused] = useState<Paused | null>(null);
  const [filter, setFilter] = useState(initialFilter.trim());
  /** the filter being typed (null: not typing) */
  const [editing, setEditing] = useState<string | null>(null);
  const latest = useRef(snap);
  latest.current = snap;
  const editingRef = useRef(editing);
  editingRef.current = editing;

  useInput(
    (input, key) => {
      if (editingRef.current !== null) {
        if (key.return) {
          const text = editingRef.current.trim();
          editingRef.current = null;
          setFilter(text);
          setEditing(null);
        } else if (key.escape) {
          editingRef.current = null;
          setFilter('');
          setEditing(null);
        } else if (key.backspace || key.delete) {
          editingRef.current = editingRef.current.slice(0, -1);
          setEditing(editingRef.current);
        } else if (key.ctrl && input === 'c') {
          onQuit?.();
        } else if (
          input &&
          !key.ctrl &&
          !key.meta &&
          !key.tab &&
          !key.upArrow &&
          !key.downArrow &&
          !key.leftArrow &&
          !key.rightArrow
        ) {
          // eslint-disable-next-line no-control-regex
          editingRef.current += input.replace(/[\u0000-\u001f\u007f]/g, '');
          setEditing(editingRef.current);
        }
        return;
      }
      if (input === 'q' || (key.ctrl && input === 'c')) onQuit?.();
      else if (input === 'p') setPaused((p) => (p ? null : { seq: latest.current.lastSeq, log: latest.current.log }));
      else if (input === 'f' || input === '/') {
        editingRef.current = '';
        setEditing('');
      } else if (key.escape) setFilter('');
    },
    { isActive: interactive },
  );

  const width = Math.max(20, size.columns);
  // Ink redraws the whole screen when the output is as tall as the terminal: stay one line short.
  const height = Math.max(8, size.rows - 1);

  const table = layoutTable(snap.roles, width);
  // header + table head + separator + footer
  const fixed = 4;
  const minLog = Math.min(5, Math.max(1, height - fixed - 1 - Math.min(snap.roles.length, 3)));
  const maxRoleRows = Math.max(1, height - fixed - minLog);
  const roleRows = Math.min(Math.max(1, snap.roles.length), maxRoleRows);
  const hiddenRoles = snap.roles.length > roleRows ? snap.roles.length - roleRows + 1 : 0;
  const shownRoles = hiddenRoles > 0 ? snap.roles.slice(0, roleRows - 1) : snap.roles;
  const logLines = Math.max(1, height - fixed - roleRows);

  const source = paused ? paused.log : snap.log;
  const visible = (filter ? source.filter((e) => matches(e, filter)) : source).slice(-logLines);
  const newSince = paused ? snap.lastSeq - paused.seq : 0;

  return (
    <Box flexDirection="column" width={width}>
      <Header snap={snap} width={width} />
      <Text bold wrap="truncate">
        {table.head}
      </Text>
      {snap.roles.length === 0 ? (
        <Text dimColor wrap="truncate">
          {' waiting for the first beat…'}
        </Text>
      ) : (
        shownRoles.map((r) => <RoleRow key={`${r.role}\u0000${r.id}`} role={r} cols={table.cols} />)
      )}
      {hiddenRoles > 0 ? (
        <Text dimColor wrap="truncate">
          {` … ${hiddenRoles} more roles (a taller terminal shows them)`}
        </Text>
      ) : null}
      <Separator width={width} filter={filter} paused={paused !== null} newSince={newSince} total={snap.lastSeq} />
      <LogLines
        entries={visible}
        lines={logLines}
        width={width}
        empty={
          filter ? `no events match "${filter}"` : 'no events yet: logins, logouts, kicks and topic changes show here'
        }
      />
      <Footer width={width} editing={editing} filter={filter} paused={paused !== null} newSince={newSince} />
    </Box>
  );
}

// ---------------------------------------------------------------- header

function Header({ snap, width }: { snap: TailSnapshot; width: number }) {
  const conn = connectionText(snap.connection);
  const ms = snap.roles.filter((r) => r.role === 'msg_server' && r.up);
  const up = snap.roles.filter((r) => r.up).length;
  const totals =
    snap.roles.length === 0
      ? ''
      : `${up}/${snap.roles.length} up · ${sum(ms, 'conns')} conns · ${rate(sum(ms, 'inRate'))} in/s · ${rate(sum(ms, 'outRate'))} out/s`;
  // What fits, most important first; the stream state always shows, on the right.
  let left = ` FishChat tail · ${snap.cluster || '?'}`;
  const room = () => width - left.length - conn.text.length - 2;
  if (room() < 0) left = ` ${snap.cluster || '?'}`;
  const middle = totals && room() >= totals.length + 3 ? ` · ${totals}` : '';
  const monitor = snap.monitor ? ` · monitor ${snap.monitor}` : '';
  if (monitor && room() - middle.length >= monitor.length) left += monitor;
  const pad = Math.max(1, width - left.length - middle.length - conn.text.length - 1);
  return (
    <Text wrap="truncate">
      <Text bold color="cyan">
        {left}
      </Text>
      <Text>{middle}</Text>
      <Text>{' '.repeat(pad)}</Text>
      <Text color={conn.color}>{conn.text}</Text>
    </Text>
  );
}

function connectionText(c: Connection): { text: string; color: string } {
  switch (c.state) {
    case 'live':
      return { text: '● live', color: 'green' };
    case 'connecting':
      return { text: '◌ connecting…', color: 'yellow' };
    case 'reconnecting':
      return { text: `✕ reconnecting (attempt ${c.attempt})`, color: 'red' };
  }
}

// ---------------------------------------------------------------- roles table

interface Col {
  key: string;
  title: string;
  width: number;
  right?: boolean;
  /** kept first when the terminal is narrow: lower is more important */
  priority: number;
  /** sparkline columns grow into the space left */
  grow?: boolean;
  cell: (r: TailRole) => string;
  color?: (r: TailRole) => string | undefined;
}

const GAP = 2;
const SPARK_MIN = 8;

export interface TableLayout {
  cols: Col[];
  head: string;
}

/** Which columns fit in `width`, how wide each is, and the header line. */
export function layoutTable(roles: readonly TailRole[], width: number): TableLayout {
  const idWidth = Math.min(18, Math.max(2, ...roles.map((r) => r.id.length)));
  const roleWidth = Math.min(12, Math.max(4, ...roles.map((r) => r.role.length)));
  const down = (f: (r: TailRole) => string) => (r: TailRole) => (r.up ? f(r) : '-');
  const spark = () => ''; // set below, once the width is known
  const all: Col[] = [
    { key: 'role', title: 'ROLE', width: roleWidth, priority: 5, cell: (r) => r.role },
    { key: 'id', title: 'ID', width: idWidth, priority: 0, cell: (r) => r.id },
    {
      key: 'state',
      title: 'STATE',
      width: 5,
      priority: 1,
      cell: (r) => (r.up ? 'up' : 'down'),
      color: (r) => (r.up ? 'green' : 'red'),
    },
    { key: 'conns', title: 'CONNS', width: 6, right: true, priority: 2, cell: down((r) => String(r.conns)) },
    { key: 'in', title: 'IN/S', width: 6, right: true, priority: 3, cell: down((r) => rate(r.inRate)) },
    {
      key: 'inSpark',
      title: '',
      width: SPARK_MIN,
      priority: 6,
      grow: true,
      cell: spark,
      color: (r) => (r.up ? 'cyan' : 'gray'),
    },
    { key: 'out', title: 'OUT/S', width: 6, right: true, priority: 4, cell: down((r) => rate(r.outRate)) },
    {
      key: 'outSpark',
      title: '',
      width: SPARK_MIN,
      priority: 9,
      grow: true,
      cell: spark,
      color: (r) => (r.up ? 'magenta' : 'gray'),
    },
    { key: 'p50', title: 'P50', width: 7, right: true, priority: 10, cell: down((r) => latency(r.p50)) },
    { key: 'p99', title: 'P99', width: 7, right: true, priority: 7, cell: down((r) => latency(r.p99)) },
    { key: 'mem', title: 'MEM', width: 9, right: true, priority: 8, cell: down((r) => bytes(r.rss)) },
    { key: 'uptime', title: 'UPTIME', width: 6, right: true, priority: 11, cell: down((r) => duration(r.uptime)) },
  ];
  // One leading space; GAP between columns.
  const budget = width - 1;
  const chosen = new Set<string>();
  let used = 0;
  for (const c of [...all].sort((a, b) => a.priority - b.priority)) {
    const need = c.width + (chosen.size > 0 ? GAP : 0);
    if (used + need <= budget) {
      chosen.add(c.key);
      used += need;
    }
  }
  const cols = all.filter((c) => chosen.has(c.key)).map((c) => ({ ...c }));
  const growing = cols.filter((c) => c.grow);
  let spare = budget - used;
  for (const c of growing) {
    const extra = Math.min(HISTORY - c.width, Math.floor(spare / growing.length));
    if (extra > 0) {
      c.width += extra;
      spare -= extra;
    }
  }
  for (const c of cols) {
    if (c.key === 'inSpark' || c.key === 'outSpark') {
      const w = c.width;
      const series = c.key === 'inSpark' ? 'in' : 'out';
      c.cell = (r) => {
        // in and out share a scale, so their bars compare
        const top = Math.max(0, ...r.inHistory.slice(-w), ...r.outHistory.slice(-w));
        return sparkline(series === 'in' ? r.inHistory : r.outHistory, w, top);
      };
    }
  }
  const head = ' ' + cols.map((c) => fit(c.title, c.width, c.right)).join(' '.repeat(GAP));
  return { cols, head: head.trimEnd() };
}

function RoleRow({ role, cols }: { role: TailRole; cols: Col[] }) {
  return (
    <Text wrap="truncate">
      {' '}
      {cols.map((c, i) => (
        <Text key={c.key} color={c.color?.(role)} dimColor={!role.up && c.key !== 'state'}>
          {(i > 0 ? ' '.repeat(GAP) : '') + fit(c.cell(role), c.width, c.right)}
        </Text>
      ))}
    </Text>
  );
}

// ---------------------------------------------------------------- log

function Separator({
  width,
  filter,
  paused,
  newSince,
  total,
}: {
  width: number;
  filter: string;
  paused: boolean;
  newSince: number;
  total: number;
}) {
  const parts = [` events (${total}) `];
  if (filter) parts.push(` filter "${filter}" `);
  if (paused) parts.push(` paused (${newSince} new) `);
  const label = '─' + parts.join('─');
  const rest = Math.max(0, width - label.length);
  return (
    <Text wrap="truncate">
      <Text dimColor>{'─'}</Text>
      <Text bold>{parts[0]}</Text>
      {filter ? (
        <>
          <Text dimColor>{'─'}</Text>
          <Text color="yellow">{` filter "${filter}" `}</Text>
        </>
      ) : null}
      {paused ? (
        <>
          <Text dimColor>{'─'}</Text>
          <Text color="yellow" bold>{` paused (${newSince} new) `}</Text>
        </>
      ) : null}
      <Text dimColor>{'─'.repeat(rest)}</Text>
    </Text>
  );
}

const KIND_COLOR: Record<LogKind, string> = {
  login: 'green',
  logout: 'gray',
  kick: 'red',
  create: 'cyan',
  join: 'blue',
  leave: 'blue',
  up: 'green',
  down: 'red',
  restart: 'yellow',
  monitor: 'yellow',
};

function LogLines({
  entries,
  lines,
  width,
  empty,
}: {
  entries: readonly LogEntry[];
  lines: number;
  width: number;
  empty: string;
}) {
  const rows = entries.map((e) => (
    <Text key={e.seq} wrap="truncate">
      <Text dimColor>{` ${clock(e.ts)}  `}</Text>
      <Text color={KIND_COLOR[e.kind]}>{e.kind.padEnd(8)}</Text>
      <Text>{e.text}</Text>
    </Text>
  ));
  const pad: ReactElement[] = [];
  if (entries.length === 0) {
    pad.push(
      <Text key="empty" dimColor wrap="truncate">
        {` ${empty}`.slice(0, width)}
      </Text>,
    );
  }
  for (let i = rows.length + pad.length; i < lines; i++) pad.push(<Text key={`pad${i}`}> </Text>);
  return (
    <>
      {rows}
      {pad}
    </>
  );
}

function Footer({
  width,
  editing,
  filter,
  paused,
  newSince,
}: {
  width: number;
  editing: string | null;
  filter: string;
  paused: boolean;
  newSince: number;
}) {
  if (editing !== null) {
    return (
      <Text wrap="truncate">
        <Text color="yellow">{' filter: '}</Text>
        <Text>{editing}</Text>
        <Text inverse> </Text>
        <Text dimColor>{'   Enter apply · Esc clear'}</Text>
      </Text>
    );
  }
  const keys: [string, string][] = [
    ['q', 'quit'],
    ['p', paused ? 'resume' : 'pause'],
    ['f', 'filter'],
  ];
  if (filter) keys.push(['Esc', 'clear filter']);
  const status = paused ? `paused (${newSince} new)` : '';
  const keysText = keys.map(([k, v]) => `${k} ${v}`).join('  ');
  const pad = Math.max(1, width - 1 - keysText.length - status.length - 1);
  return (
    <Text wrap="truncate">
      {' '}
      {keys.map(([k, v], i) => (
        <Text key={k}>
          {i > 0 ? '  ' : ''}
          <Text bold color="cyan">
            {k}
          </Text>
          <Text dimColor>{` ${v}`}</Text>
        </Text>
      ))}
      {status ? (
        <>
          <Text>{' '.repeat(pad)}</Text>
          <Text color="yellow" bold>
            {status}
          </Text>
        </>
      ) : null}
    </Text>
  );
}

// ---------------------------------------------------------------- formats

function fit(s: string, width: number, right?: boolean): string {
  if (s.length > width) return width <= 1 ? s.slice(0, width) : s.slice(0, width - 1) + '…';
  return right ? s.padStart(width) : s.padEnd(width);
}

function sum(roles: readonly TailRole[], key: 'conns' | 'inRate' | 'outRate'): number {
  return roles.reduce((n, r) => n + r[key], 0);
}

/** 0, 2.5, 1234, 12.3k */
export function rate(perSecond: number): string {
  if (perSecond <= 0) return '0';
  if (perSecond < 10) return perSecond.toFixed(1);
  if (perSecond < 100_000) return String(Math.round(perSecond));
  return `${(perSecond / 1000).toFixed(0)}k`;
}

/** 0.4ms, 12ms, 1.2s */
export function latency(ms: number): string {
  if (ms <= 0) return '-';
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

/** HH:MM:SS, local time */
function clock(ts: number): string {
  const d = new Date(ts);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
