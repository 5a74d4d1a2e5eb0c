import { Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { FishClient, FishError } from '../../runtime/client/index.js';
import { loadCluster, STOP_SIGNALS } from '../../runtime/cluster/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import {
  BaseCommand,
  binName,
  clusterDir,
  dirFlag,
  example,
  EXIT,
  gatewayFlag,
  isNetworkError,
  upHint,
} from '../base.js';
import type { Peer } from '../ui/ChatState.js';
import { loadChatUi, runChatSession } from '../ui/ChatSession.js';

/** Tokens are minted per login (the client asks at each reconnect), so a short life is enough. */
const TOKEN_TTL_S = 600;

export default class Chat extends BaseCommand {
  static override summary = 'A chat session in the terminal, as a user, with another user or in a topic.';
  static override description =
    `Logs in as --as (device "fishchat-chat" by default) and opens a chat screen: a header (who, with whom, the msg_server, the connection state), the conversation, and an input line at the bottom.

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
    topic: Flags.string({
      description: 'chat in this topic (joined, or created when it does not exist)',
      helpValue: 'TOPIC',
      exclusive: ['to'],
    }),
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
    const peer: Peer =
      flags.topic !== undefined ? { kind: 'topic', name: flags.topic } : { kind: 'user', name: flags.to! };
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
    const ui = await loadChatUi();
    let client: FishClient;
    try {
      client = await FishClient.connect({ gateway, user: flags.as, device: flags.device, token, autoAck: true });
    } catch (err) {
      this.failOn(err, gateway, dir);
    }

    const ending = await runChatSession(ui, client, { peer, me: flags.as, device: flags.device, gateway });
    if (ending.code !== EXIT.ok) this.fail(ending.message ?? 'the chat session ended', ending.code);
    if (ending.message) this.log(ending.message);
  }

  /** Exits with the right code and a message the user can act on. */
  private failOn(err: unknown, gateway: string, dir: string): never {
    if (err instanceof FishError && err.local === undefined) {
      this.fail(
        `the server answered ${err.code}: ${err.message}`,
        err.code === 'overloaded' ? EXIT.unreachable : EXIT.failed,
      );
    }
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof FishError || isNetworkError(err)) {
      this.fail(
        `cannot reach the cluster through the gateway at ${gateway} — ${upHint(dir)} (${message})`,
        EXIT.unreachable,
      );
    }
    throw err;
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
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    for (const sig of STOP_SIGNALS) process.on(sig, forward);
    const done = (code: number): void => {
      for (const sig of STOP_SIGNALS) process.off(sig, forward);
      resolve(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`Error: cannot start the chat session: ${err.message}\n`);
      done(EXIT.failed);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? EXIT.failed : EXIT.ok)));
  });
}
