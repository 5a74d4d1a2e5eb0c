/**
 * A `fishchat chat` session over a logged-in client: the screen (Ink), the
 * sends with their retries, the client's events, the history at start.
 */
import { randomBytes } from 'node:crypto';
import { FishError, type FishClient, type Msg } from '../../runtime/client/index.js';
import { STOP_SIGNALS } from '../../runtime/cluster/signals.js';
import { EXIT } from '../base.js';
import {
  ChatStore,
  initialChat,
  withBanner,
  withConn,
  withHistory,
  withIncoming,
  withMembers,
  withNote,
  withOther,
  withSendUpdate,
  withSending,
  type Peer,
} from './ChatState.js';

/** History at start: the conversation's messages among the inbox's newest HISTORY_SCAN, at most HISTORY_KEEP of them. */
const HISTORY_SCAN = 1000;
const HISTORY_KEEP = 50;
/** A send is tried at most this many times (the first try, then once per reconnect); its cid makes every retry safe. */
const MAX_ATTEMPTS = 3;
/** How long "reconnected to …" stays above the input line. */
const BANNER_MS = 5000;

const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';

interface Outgoing {
  cid: string;
  text: string;
  attempts: number;
}

/** Ink, React and the screen: loaded only by a session that runs (not for --help or a refusal). */
export async function loadChatUi() {
  const [{ render }, { createElement }, { ChatApp }] = await Promise.all([
    import('ink'),
    import('react'),
    import('./Chat.js'),
  ]);
  return { render, createElement, ChatApp };
}
export type ChatUi = Awaited<ReturnType<typeof loadChatUi>>;

/** How a session ended: the exit code, and what to say. */
export interface ChatEnding {
  code: number;
  message?: string;
}

/** The chat screen over a logged-in client, until the user quits or the session ends. */
export async function runChatSession(
  ui: ChatUi,
  client: FishClient,
  o: { peer: Peer; me: string; device: string; gateway: string },
): Promise<ChatEnding> {
  const { peer, me, device, gateway } = o;
  const { render, createElement, ChatApp } = ui;

  const store = new ChatStore(initialChat({ me, peer, gateway }));
  store.update((s) => withConn(s, 'connected', { server: client.login.server }));
  const conversation = (m: Msg): boolean =>
    peer.kind === 'topic'
      ? m.topic === peer.name
      : m.topic === undefined && m.from === peer.name && (m.to === undefined || m.to === me);
  let sent = 0;
  let received = 0;

  let finish!: (e: ChatEnding) => void;
  const ended = new Promise<ChatEnding>((resolve) => (finish = resolve));
  let ending = false;
  const end = (e: ChatEnding): void => {
    if (ending) return;
    ending = true;
    store.update((s) =>
      withConn(s, 'closed', {
        banner: {
          text: e.code === EXIT.ok ? 'logging out…' : (e.message ?? 'ended'),
          tone: e.code === EXIT.ok ? 'info' : 'error',
        },
      }),
    );
    finish(e);
  };

  // --- sending: pending → ✓, or ✗ code; lost replies wait for the reconnect
  const waiting: Outgoing[] = [];
  const attempt = (o: Outgoing): void => {
    o.attempts++;
    store.update((s) => withSendUpdate(s, o.cid, { state: 'pending' }));
    const sending =
      peer.kind === 'topic'
        ? client.topicSend(peer.name, o.text, { cid: o.cid })
        : client.send(peer.name, o.text, { cid: o.cid });
    sending.then(
      (ok) => {
        sent++;
        store.update((s) => withSendUpdate(s, o.cid, { state: 'acked', mid: ok.mid, ts: ok.ts }));
      },
      (err: unknown) => {
        if (err instanceof FishError && err.local !== undefined && !client.closed && o.attempts < MAX_ATTEMPTS) {
          // No reply: maybe stored, maybe not. The same cid again is stored once either way.
          if (client.connected && err.local === 'timeout') attempt(o);
          else {
            waiting.push(o);
            store.update((s) => withSendUpdate(s, o.cid, { state: 'waiting' }));
            // Already back (the reply was lost after the reconnect): no reconnect event will come for it.
            if (client.connected) queueMicrotask(retryWaiting);
          }
          return;
        }
        const code = err instanceof FishError ? (err.local ?? err.code) : 'error';
        store.update((s) => withSendUpdate(s, o.cid, { state: 'failed', code }));
        if (err instanceof FishError && err.local === undefined) {
          store.update((s) => withNote(s, `not sent: ${err.code}: ${err.message}`, 'error'));
        }
      },
    );
  };
  const retryWaiting = (): void => {
    for (const o of waiting.splice(0)) attempt(o);
  };
  let cidCount = 0;
  const cidBase = `chat-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const onSend = (text: string): void => {
    if (ending || text.trim() === '') return;
    const o: Outgoing = { cid: `${cidBase}-${++cidCount}`, text, attempts: 0 };
    store.update((s) => withSending(s, { cid: o.cid, text, ts: Date.now() }));
    if (client.connected) attempt(o);
    else {
      waiting.push(o);
      store.update((s) => withSendUpdate(s, o.cid, { state: 'waiting' }));
    }
  };
  const onQuit = (): void => end({ code: EXIT.ok });

  // --- the client's events
  let bannerTimer: ReturnType<typeof setTimeout> | undefined;
  const offs = [
    client.on('message', (m) => {
      if (conversation(m)) {
        received++;
        store.update((s) => withIncoming(s, m));
      } else store.update(withOther);
    }),
    client.on('disconnect', ({ reason, willReconnect }) => {
      if (ending) return;
      if (willReconnect) {
        const why = describeReason(reason);
        store.update((s) =>
          withNote(
            withConn(s, 'reconnecting', { banner: { text: `reconnecting… (${why})`, tone: 'warn' } }),
            `connection lost (${why}), reconnecting…`,
            'warn',
          ),
        );
      } else if (reason === 'kick:replaced') {
        end({
          code: EXIT.failed,
          message: `this session was replaced by another login of ${me} on device "${device}" — use --device to run two sessions side by side`,
        });
      } else {
        end({ code: EXIT.failed, message: `the connection ended (${describeReason(reason)}) and cannot be resumed` });
      }
    }),
    client.on('reconnect', (info) => {
      if (ending) return;
      store.update((s) => {
        let next = withNote(
          withConn(s, 'connected', {
            server: info.server,
            banner: { text: `reconnected to ${info.server}`, tone: 'info' },
          }),
          `reconnected to ${info.server}`,
        );
        if (info.epochChanged)
          next = withNote(
            next,
            'the inbox was created anew on the server (its store was wiped): older messages are gone',
            'warn',
          );
        return next;
      });
      retryWaiting();
      // The banner goes after a while; the note stays in the scrollback.
      clearTimeout(bannerTimer);
      bannerTimer = setTimeout(() => {
        if (!ending && store.get().conn === 'connected') store.update((s) => withBanner(s, null));
      }, BANNER_MS);
      bannerTimer.unref?.();
    }),
    client.on('kick', ({ reason }) => {
      if (ending || reason === 'replaced') return;
      store.update((s) =>
        withBanner(s, { text: `the server asked this session to move (${reason}): reconnecting…`, tone: 'warn' }),
      );
    }),
    client.on('error', (err) => {
      if (ending) return;
      if (!client.connected)
        store.update((s) => withBanner(s, { text: `reconnecting… (${err.message})`, tone: 'warn' }));
      else store.update((s) => withNote(s, err.message, 'error'));
    }),
  ];

  // --- the screen
  const stdout = process.stdout;
  stdout.write(ALT_SCREEN_ON);
  const ink = render(createElement(ChatApp, { store, onSend, onQuit }), { exitOnCtrlC: false, patchConsole: true });
  const onSignal = (): void => end({ code: EXIT.ok });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, onSignal);

  // --- the start: the topic, then the recent history
  void (async () => {
    try {
      if (peer.kind === 'topic') {
        const members = await joinOrCreate(client, peer.name);
        store.update((s) => withMembers(s, members));
      }
    } catch (err) {
      const code = err instanceof FishError ? err.code : 'error';
      end({
        code: EXIT.failed,
        message: `cannot join the topic ${peer.name}: ${code}: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    try {
      const login = client.login;
      const after = Math.max(login.first - 1, login.seq - HISTORY_SCAN, 0);
      if (login.seq > after) {
        const page = await client.sync(after, Math.min(HISTORY_SCAN, login.seq - after));
        const mine = page.messages.filter(conversation).slice(-HISTORY_KEEP);
        store.update((s) => withHistory(s, mine));
      }
    } catch (err) {
      if (!ending)
        store.update((s) =>
          withNote(s, `could not load the history: ${err instanceof Error ? err.message : String(err)}`, 'warn'),
        );
    }
  })();

  const result = await ended;
  clearTimeout(bannerTimer);
  for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
  await client.close().catch(() => {});
  for (const off of offs) off();
  ink.unmount();
  await ink.waitUntilExit().catch(() => {});
  stdout.write(ALT_SCREEN_OFF);
  process.stdin.pause();
  if (result.code === EXIT.ok) {
    const withWhom = peer.kind === 'topic' ? `#${peer.name}` : peer.name;
    return { code: EXIT.ok, message: `left the chat with ${withWhom}: ${sent} sent, ${received} received` };
  }
  return result;
}

/** topic_join; a topic that does not exist yet is created (a creator is a member). Resolves with the member count. */
async function joinOrCreate(client: FishClient, topic: string): Promise<number> {
  try {
    return (await client.topicJoin(topic)).members;
  } catch (err) {
    if (!(err instanceof FishError) || err.code !== 'no_such_topic') throw err;
  }
  try {
    await client.topicCreate(topic);
    return 1;
  } catch (err) {
    // Created by someone else in between: join it.
    if (err instanceof FishError && err.code === 'topic_exists') return (await client.topicJoin(topic)).members;
    throw err;
  }
}

/** Why a connection ended, in words. */
function describeReason(reason: string): string {
  switch (reason) {
    case 'kick:draining':
      return 'the msg_server is shutting down';
    case 'kick:slow':
      return 'the connection fell too far behind';
    case 'heartbeat timeout':
      return 'the msg_server stopped answering';
    case 'auth_failed':
      return 'the token was refused (auth_failed)';
    default:
      return reason;
  }
}
