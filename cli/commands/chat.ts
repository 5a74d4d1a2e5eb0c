import { Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { FishClient, FishError, type Msg } from '../../runtime/client/index.js';
import { loadCluster } from '../../runtime/cluster/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import {
  BaseCommand,
  binName,
  clusterDir,
  dirFlag,
  dirHint,
  example,
  EXIT,
  gatewayFlag,
  isNetworkError,
  shown,
} from '../base.js';
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
} from '../ui/ChatState.js';

/** Tokens are minted per login (the client asks at each reconnect), so a short life is enough. */
const TOKEN_TTL_S = 600;
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
async function loadUi() {
  const [{ render }, { createElement }, { ChatApp }] = await Promise.all([import('ink'), import('react'), import('../ui/Chat.js')]);
  return { render, createElement, ChatApp };
}
type Ui = Awaited<ReturnType<typeof loadUi>>;

interface Ending {
  code: number;
  message?: string;
}

export default class Chat extends BaseCommand {
  static override summary = 'A chat session in the terminal, as a user, with another user or in a topic.';
  static override description = `Logs in as --as (device "fishchat-chat" by default) and opens a chat screen: a header (who, with whom, the msg_server, the connection state), the conversation, and an input line at the bottom.

With --to V: the messages V sent you and the lines you send to V, starting with the recent history of that conversation; messages from anyone else are counted in the header ("N other") and stay in your inbox for your other clients. With --topic T: joins T (creating it if it does not exist) and shows its messages.

Each line you send shows … until the server has stored it, then ✓ (or ✗ with the error code). A lost connection is shown and reconnected by itself, through the gateway, to any live msg_server: no message is lost or shown twice, and lines sent meanwhile are sent again once reconnected (each carries a cid, so a retry is stored once). Messages shown are acknowledged.

Keys: Enter sends, PgUp/PgDn or ↑/↓ scroll, Esc back to the newest, Ctrl-U clears the line, /quit or Ctrl-C logs out and exits (0).

It needs a terminal; from scripts use \`fishchat send\`. The token is minted from the cluster secret of --dir (or FISHCHAT_SECRET); the gateway comes from the running cluster (.fishchat/run.json), else from the configuration, unless --gateway is given.

Exit codes: 0 you quit; 1 the session failed or ended (replaced by another login of the same device, or refused); 2 bad arguments, configuration, or no terminal; 3 the cluster could not be reached.`;
  static override examples = [
    example('Chat with bob as alice (the cluster in the current directory)', '--as alice --to bob'),
    example('Join (or create) the topic "general"', '--as alice --topic general'),
    example('The cluster in ./chat, from another terminal as bob', '--dir chat --as bob --to alice'),
    example(
      'A second session of alice next to her first one (another device id, so neither is replaced)',
      '--as alice --to bob --device laptop',
    ),
    example(
      'Through a gateway on another machine (FISHCHAT_SECRET holds the cluster secret)',
      '--gateway chat.example.net:17000 --as alice --to bob',
    ),
  ];
  static override flags = {
    as: Flags.string({ description: 'the user you chat as', required: true, helpValue: 'USER' }),
    to: Flags.string({ description: 'chat with this user', helpValue: 'USER', exclusive: ['topic'] }),
    topic: Flags.string({ description: 'chat in this topic (joined, or created when it does not exist)', helpValue: 'TOPIC', exclusive: ['to'] }),
    dir: dirFlag,
    gateway: gatewayFlag,
    device: Flags.string({
      description: 'the device id of this session (a second login of the same user and device replaces this one)',
      default: 'fishchat-chat',
      helpValue: 'DEVICE',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Chat);
    if (flags.to === undefined && flags.topic === undefined) {
      this.fail('say whom to chat with: --to USER or --topic TOPIC (see --help)', EXIT.usage);
    }
    const peer: Peer = flags.topic !== undefined ? { kind: 'topic', name: flags.topic } : { kind: 'user', name: flags.to! };
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      const to = peer.kind === 'topic' ? `--topic ${peer.name}` : `--to ${peer.name}`;
      this.fail(
        `chat is interactive and needs a terminal (stdin and stdout are not both a TTY); from a script, use \`${binName()} send --as ${flags.as} ${to} "text"\``,
        EXIT.usage,
      );
    }

    if (ciSays(process.env) && process.env[CHILD_ENV] !== '1') {
      // Ink draws only the last frame when CI is set, and it reads that when
      // first loaded (oclif may load every command, so Ink is in already): a
      // terminal session runs again in a child process without it.
      this.exit(await rerunWithoutCi());
    }

    const dir = clusterDir(flags.dir);
    const config = await loadCluster(dir);
    const gateway = await this.findGateway(dir, config, flags.gateway);
    const secret = config.secret;
    const token = secret === '' ? undefined : () => signToken(secret, flags.as, { ttlSeconds: TOKEN_TTL_S });

    // Loaded before the login, so that no event of the session comes before its listeners.
    const ui = await loadUi();
    let client: FishClient;
    try {
      client = await FishClient.connect({ gateway, user: flags.as, device: flags.device, token, autoAck: true });
    } catch (err) {
      this.failOn(err, gateway, dir);
    }

    const ending = await this.session(ui, client, peer, flags.as, flags.device, gateway);
    if (ending.code !== EXIT.ok) this.fail(ending.message ?? 'the chat session ended', ending.code);
    if (ending.message) this.log(ending.message);
  }

  /** The chat screen over a logged-in client, until the user quits or the session ends. */
  private async session(ui: Ui, client: FishClient, peer: Peer, me: string, device: string, gateway: string): Promise<Ending> {
    const { render, createElement, ChatApp } = ui;

    const store = new ChatStore(initialChat({ me, peer, gateway }));
    store.update((s) => withConn(s, 'connected', { server: client.login.server }));
    const conversation = (m: Msg): boolean =>
      peer.kind === 'topic' ? m.topic === peer.name : m.topic === undefined && m.from === peer.name && (m.to === undefined || m.to === me);
    let sent = 0;
    let received = 0;

    let finish!: (e: Ending) => void;
    const ended = new Promise<Ending>((resolve) => (finish = resolve));
    let ending = false;
    const end = (e: Ending): void => {
      if (ending) return;
      ending = true;
      store.update((s) => withConn(s, 'closed', { banner: { text: e.code === EXIT.ok ? 'logging out…' : e.message ?? 'ended', tone: e.code === EXIT.ok ? 'info' : 'error' } }));
      finish(e);
    };

    // --- sending: pending → ✓, or ✗ code; lost replies wait for the reconnect
    const waiting: Outgoing[] = [];
    const attempt = (o: Outgoing): void => {
      o.attempts++;
      store.update((s) => withSendUpdate(s, o.cid, { state: 'pending' }));
      const sending =
        peer.kind === 'topic' ? client.topicSend(peer.name, o.text, { cid: o.cid }) : client.send(peer.name, o.text, { cid: o.cid });
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
          store.update((s) => withNote(withConn(s, 'reconnecting', { banner: { text: `reconnecting… (${why})`, tone: 'warn' } }), `connection lost (${why}), reconnecting…`, 'warn'));
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
          let next = withNote(withConn(s, 'connected', { server: info.server, banner: { text: `reconnected to ${info.server}`, tone: 'info' } }), `reconnected to ${info.server}`);
          if (info.epochChanged) next = withNote(next, 'the inbox was created anew on the server (its store was wiped): older messages are gone', 'warn');
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
        store.update((s) => withBanner(s, { text: `the server asked this session to move (${reason}): reconnecting…`, tone: 'warn' }));
      }),
      client.on('error', (err) => {
        if (ending) return;
        if (!client.connected) store.update((s) => withBanner(s, { text: `reconnecting… (${err.message})`, tone: 'warn' }));
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
          const members = await this.joinOrCreate(client, peer.name);
          store.update((s) => withMembers(s, members));
        }
      } catch (err) {
        const code = err instanceof FishError ? err.code : 'error';
        end({ code: EXIT.failed, message: `cannot join the topic ${peer.name}: ${code}: ${err instanceof Error ? err.message : String(err)}` });
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
        if (!ending) store.update((s) => withNote(s, `could not load the history: ${err instanceof Error ? err.message : String(err)}`, 'warn'));
      }
    })();

    const result = await ended;
    clearTimeout(bannerTimer);
    for (const sig of signals) process.off(sig, onSignal);
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
  private async joinOrCreate(client: FishClient, topic: string): Promise<number> {
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

  /** Exits with the right code and a message the user can act on. */
  private failOn(err: unknown, gateway: string, dir: string): never {
    if (err instanceof FishError && err.local === undefined) {
      this.fail(`the server answered ${err.code}: ${err.message}`, err.code === 'overloaded' ? EXIT.unreachable : EXIT.failed);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof FishError || isNetworkError(err)) {
      this.fail(
        `cannot reach the cluster through the gateway at ${gateway} — is \`${binName()} up${dirHint(dir)}\` running in ${dir === process.cwd() ? 'this directory' : shown(dir)}? (${message})`,
        EXIT.unreachable,
      );
    }
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

const CHILD_ENV = 'FISHCHAT_CHAT_NO_CI';

/** Whether Ink thinks it runs in CI (the rule of its is-in-ci): then it draws only the last frame. */
function ciSays(env: NodeJS.ProcessEnv): boolean {
  const set = (k: string): boolean => k in env && env[k] !== '0' && env[k] !== 'false';
  return set('CI') || set('CONTINUOUS_INTEGRATION');
}

/** This same command in a child process without CI in its environment, on the same terminal; resolves with its exit code. */
function rerunWithoutCi(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, CI: 'false', CONTINUOUS_INTEGRATION: 'false', [CHILD_ENV]: '1' },
    });
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    for (const sig of signals) process.on(sig, forward);
    const done = (code: number): void => {
      for (const sig of signals) process.off(sig, forward);
      resolve(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`Error: cannot start the chat session: ${err.message}\n`);
      done(EXIT.failed);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? EXIT.failed : EXIT.ok)));
  });
}
