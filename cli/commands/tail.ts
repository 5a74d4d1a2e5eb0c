import { Flags } from '@oclif/core';
import { render } from 'ink';
import { createElement } from 'react';
import { EventStream, EventStreamError, type EventStreamHandlers, type SseEvent } from '../../runtime/client/events.js';
import { signToken } from '../../runtime/protocol/token.js';
import type { StatusReport } from '../../runtime/roles/monitor/roles.js';
import { BaseCommand, dirFlag, example, EXIT, monitorFlag } from '../base.js';
import { fetchStatus } from '../monitor.js';
import { Tail as TailView } from '../ui/Tail.js';
import { TailStore } from '../ui/TailStore.js';

/** Admin tokens are minted per request (and per reconnect), for this long. */
const TOKEN_TTL_S = 300;
/** The view redraws at most this often under a flood of events. */
const THROTTLE_MS = 100;

export default class Tail extends BaseCommand {
  static override summary = 'Watch the cluster live: roles, rates, latency and events, from the monitor.';
  static override description =
    `Follows the monitor's event stream (GET /events, seeded from GET /status) and shows, in the terminal: every role with its state, connections, messages in and out per second (with a sparkline of the last 30 beats), p50/p99 latency and memory; and below it a scrolling log of logins, logouts, kicks, topic creates/joins/leaves and roles coming and going.

Keys: q or Ctrl-C quit; p pause/resume the log (new events are kept and counted meanwhile); f filter the log (type text, Enter applies, Esc clears).

When stdout is not a terminal, or with --json, it prints one JSON object per line instead, so \`fishchat tail | jq\` works: first {"event":"status",...} (the monitor's /status), then one line per event: {"event":"beat",...}, {"event":"client-status",...}, {"event":"topic-status",...}. --filter then keeps the event lines whose JSON contains TEXT (case-insensitive).

If the stream drops, it reconnects with backoff (the view shows it; in JSON mode a line on stderr says so).

The monitor's address comes from the running cluster (.fishchat/run.json in the cluster directory), else from its monitor.json, unless --monitor is given; requests carry short-lived admin tokens minted from the cluster secret (or FISHCHAT_SECRET).

Exit codes: 0 on quit (q, Ctrl-C, SIGTERM, or the reader of a pipe going away); 1 the monitor refused the token; 2 bad arguments or configuration; 3 the monitor cannot be reached at start.`;
  static override examples = [
    example('Watch the cluster of the current directory'),
    example('The cluster started with `fishchat up chat`, only events about alice', '--dir chat --filter alice'),
    example('Logins as JSON lines, for scripts', `--json | jq -c 'select(.event == "client-status")'`),
    example(
      'Messages in per second of every msg_server, one line per beat',
      `| jq -r 'select(.event == "beat" and .role == "msg_server") | "\\(.id) \\(.inRate)"'`,
    ),
    example('A monitor elsewhere (the secret still comes from --dir or FISHCHAT_SECRET)', '--monitor 10.0.0.5:21000'),
  ];
  static override flags = {
    dir: dirFlag,
    monitor: monitorFlag,
    json: Flags.boolean({
      description:
        'one JSON object per line and event instead of the live view (the default when stdout is not a terminal)',
      default: false,
    }),
    filter: Flags.string({
      description: 'show only events whose text contains TEXT (user, device, topic, server, role)',
      helpValue: 'TEXT',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Tail);
    const { config, hint, monitor } = await this.findMonitor(flags.dir, flags.monitor);

    const auth = () => ({
      authorization: `Bearer ${signToken(config.secret, 'fishchat-cli', { admin: true, ttlSeconds: TOKEN_TTL_S })}`,
    });
    const at = { secretFile: config.secretFile, hint };

    // The picture to start from.
    const got = await fetchStatus(monitor, auth());
    if (!('report' in got)) this.failMonitor(monitor, at, got);
    const report = got.report;

    const filter = (flags.filter ?? '').trim();
    const json = flags.json || !process.stdout.isTTY;
    /** GET /events with these handlers, open; a refusal or no answer ends the command. */
    const follow = async (handlers: EventStreamHandlers): Promise<EventStream> => {
      const stream = new EventStream({ url: `http://${monitor}/events`, headers: auth }, handlers);
      try {
        await stream.open();
      } catch (err) {
        if (err instanceof EventStreamError && err.status !== undefined) {
          this.failMonitor(monitor, at, { kind: 'refused', status: err.status, body: err.body ?? '' });
        }
        const reason = err instanceof Error ? err.message : String(err);
        this.failMonitor(monitor, at, { kind: 'unreachable', reason });
      }
      return stream;
    };

    if (json) await this.tailJson(monitor, report, filter, follow);
    else await this.tailView(monitor, report, filter, follow);
    // Exit now: an idle keep-alive socket of fetch's pool would hold the process for seconds.
    this.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
  }

  /** JSON lines on stdout until SIGINT/SIGTERM or the reader goes away. */
  private async tailJson(
    monitor: string,
    report: StatusReport,
    filter: string,
    follow: (handlers: EventStreamHandlers) => Promise<EventStream>,
  ): Promise<void> {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    // `tail | head -1`: the reader is gone, which is how a pipe ends, not an error.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') done();
      else {
        this.logToStderr(`Error: cannot write to stdout: ${err.message}`);
        process.exitCode = EXIT.failed;
        done();
      }
    });
    let closed = false;
    // Events that come while the stream opens wait for the status line, which goes first.
    let held: string[] | undefined = [];
    const write = (line: string) => {
      if (closed) return;
      if (held) held.push(line);
      // One write per line; a pipe gets each line as it comes.
      else process.stdout.write(line + '\n');
    };
    const needle = filter.toLowerCase();

    const stream = await follow({
      event: (e: SseEvent) => {
        const line = jsonLine(e);
        if (line === undefined) return;
        if (needle && !line.toLowerCase().includes(needle)) return;
        write(line);
      },
      open: ({ reconnect }) => {
        if (reconnect) this.logToStderr(`tail: reconnected to the monitor at ${monitor}`);
      },
      disconnect: ({ reason, retryInMs, attempt }) => {
        const retry = `reconnecting in ${(retryInMs / 1000).toFixed(1)} s (attempt ${attempt})`;
        this.logToStderr(`tail: lost the monitor at ${monitor} (${reason}); ${retry}`);
      },
    });
    // Once the status line is out, the stream is open: nothing after it is missed.
    const waiting = held;
    held = undefined;
    write(JSON.stringify({ event: 'status', ...report }));
    for (const line of waiting) write(line);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.once(s, done);
    try {
      await finished;
    } finally {
      closed = true;
      stream.close();
      for (const s of signals) process.off(s, done);
    }
  }

  /** The live Ink view until q, Ctrl-C or SIGTERM. */
  private async tailView(
    monitor: string,
    report: StatusReport,
    filter: string,
    follow: (handlers: EventStreamHandlers) => Promise<EventStream>,
  ): Promise<void> {
    const store = new TailStore({ cluster: report.cluster, monitor, throttleMs: THROTTLE_MS });
    store.seed(report);
    const stream = await follow({
      event: (e: SseEvent) => {
        const data = eventData(e);
        if (data !== NO_DATA) store.handle(e.event, data);
      },
      open: () => store.setConnection({ state: 'live' }),
      disconnect: ({ reason, retryInMs, attempt }) => {
        store.setConnection({ state: 'reconnecting', reason, retryInMs, attempt });
      },
    });

    const ticker = setInterval(() => store.tick(), 1000);
    // The alternate screen, as full-screen terminal tools do: the shell comes back as it was on quit.
    const alt = process.stdout.isTTY === true;
    if (alt) process.stdout.write('\x1b[?1049h\x1b[H');
    const ink = render(
      createElement(TailView, {
        store,
        initialFilter: filter,
        interactive: process.stdin.isTTY === true,
        onQuit: () => ink.unmount(),
      }),
      { exitOnCtrlC: true, patchConsole: false },
    );
    const quit = () => ink.unmount();
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.once(s, quit);
    try {
      await ink.waitUntilExit();
    } finally {
      for (const s of signals) process.off(s, quit);
      clearInterval(ticker);
      stream.close();
      store.dispose();
      if (alt) process.stdout.write('\x1b[?1049l');
    }
  }
}

const NO_DATA = Symbol('no JSON data');

/** An event's data as JSON; NO_DATA when it is none. */
function eventData(e: SseEvent): unknown {
  try {
    return JSON.parse(e.data);
  } catch {
    return NO_DATA;
  }
}

/** `{"event": NAME, ...data}`; undefined when the data is no JSON. */
function jsonLine(e: SseEvent): string | undefined {
  const data = eventData(e);
  if (data === NO_DATA) return undefined;
  const body = data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : { data };
  return JSON.stringify({ event: e.event, ...body });
}
