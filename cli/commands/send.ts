import { Args, Flags } from '@oclif/core';
import { createInterface } from 'node:readline';
import { FishClient, FishError } from '../../runtime/client/index.js';
import { dialAddress, loadCluster, readRunInfo } from '../../runtime/cluster/index.js';
import type { ClusterConfig } from '../../runtime/cluster/config.js';
import { signToken } from '../../runtime/protocol/token.js';
import {
  BaseCommand,
  clusterDir,
  dirFlag,
  example,
  EXIT,
  gatewayFlag,
  isNetworkError,
  shown,
  upHint,
} from '../base.js';

/** Sends in flight at once when reading lines from stdin (replies come back in order). */
const WINDOW = 64;
/** The send-only session's token outlives any sensible run; it is only checked at login. */
const TOKEN_TTL_S = 600;

/** How messages go out: a TCP session or the server API. */
interface Sender {
  /** sends in flight at once */
  window: number;
  send(text: string, cid: string | undefined): Promise<Sent>;
  /** exits with the right code and message */
  fail(err: unknown): never;
  close(): Promise<void>;
}

/** The server API could not be reached (or is not one). */
class Unreachable extends Error {}

/** The server API answered an error. */
class Answered extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string')
    return typeof e.message === 'string' && e.message ? `${e.code}: ${e.message}` : e.code;
  return err instanceof Error ? err.message : String(err);
}

interface Sent {
  mid: string;
  seq: number;
  ts: number;
  to: string;
}

export default class Send extends BaseCommand {
  static override summary = 'Send a message as a user, and exit 0 only when the server stored it.';
  static override description =
    `Logs in as --as over a send-only session (push: false, device "fishchat-send" by default, so it never kicks that user's own devices), sends TEXT to --to, and exits 0 only when the server answered ok: the message is stored and will be delivered.

With - instead of TEXT, every non-empty line of stdin is one message (with --cid C, line n gets the cid "C:n", so re-running the same input sends nothing twice).

The token is minted from the cluster secret of --dir (or FISHCHAT_SECRET); the gateway address comes from the running cluster (.fishchat/run.json), else from the cluster configuration, unless --gateway is given.

With --http, the message goes through a msg_server's server API (README "Server API") instead of a TCP session: POST /v1/messages with an admin token minted from the cluster secret, to --http-url, else to a msg_server's HTTP address from the running cluster (.fishchat/run.json), else from its configuration. Lines of stdin are then sent one at a time, so they are stored in order; --gateway and --device do not apply.

Exit codes: 0 stored; 1 the server answered an error (its code and message are printed); 2 bad arguments or configuration; 3 the cluster could not be reached.`;
  static override examples = [
    example('Send one message', '--as alice --to bob "hello"'),
    example(
      'One message per line of a file, with the ok fields as JSON lines',
      '--as ci --to ops --json - < lines.txt',
    ),
    example(
      'Idempotent: a retry with the same --cid is stored once',
      '--as ci --to ops --cid build-4711 "build 4711 is green"',
    ),
    example('To the cluster in ./chat', '--dir chat --as alice --to bob hi'),
    example("Through a msg_server's server API (HTTP) instead of a TCP session", '--http --as alice --to bob hi'),
    example('Through the server API at a given URL', '--http-url http://127.0.0.1:19100 --as alice --to bob hi'),
  ];
  static override args = {
    text: Args.string({
      name: 'TEXT',
      description: 'the message text, or - to send each line of stdin',
      required: false,
    }),
  };
  static override flags = {
    as: Flags.string({ description: 'the sending user', required: true, helpValue: 'USER' }),
    to: Flags.string({ description: 'the recipient user', required: true, helpValue: 'USER' }),
    dir: dirFlag,
    gateway: gatewayFlag,
    device: Flags.string({
      description: 'the device id of this session',
      default: 'fishchat-send',
      helpValue: 'DEVICE',
    }),
    cid: Flags.string({
      description: 'a client id that makes the send idempotent (docs/protocol.md §4.2)',
      helpValue: 'CID',
    }),
    json: Flags.boolean({
      description: 'print the ok fields {mid, seq, ts, to} as one JSON line per message',
      default: false,
    }),
    http: Flags.boolean({
      description: "send through a msg_server's server API (HTTP, admin token) instead of a TCP session",
      default: false,
    }),
    'http-url': Flags.string({
      description: 'the server API to send through (implies --http; default: a msg_server of the cluster directory)',
      helpValue: 'URL',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Send);
    if (args.text === undefined) {
      this.fail('give the message TEXT, or - to send each line of stdin (see --help)', EXIT.usage);
    }
    const dir = clusterDir(flags.dir);
    const config = await loadCluster(dir);
    const http = flags.http || flags['http-url'] !== undefined;
    const sender = http
      ? await this.httpSender(dir, config, flags['http-url'], flags.as, flags.to)
      : await this.tcpSender(dir, config, flags.gateway, flags.as, flags.to, flags.device);

    const print = (r: Sent) => {
      if (flags.json) this.log(JSON.stringify({ mid: r.mid, seq: r.seq, ts: r.ts, to: r.to }));
      else this.log(`sent to ${r.to}: seq ${r.seq}, mid ${r.mid}`);
    };
    let count = 0;
    try {
      if (args.text !== '-') {
        print(await sender.send(args.text, flags.cid));
        count++;
      } else {
        // Pipelined: up to `window` sends in flight, results printed in order; the first failure stops.
        const inFlight: Promise<Sent>[] = [];
        let lineNo = 0;
        const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
        try {
          for await (const line of lines) {
            lineNo++;
            if (line.trim() === '') continue;
            const p = sender.send(line, flags.cid === undefined ? undefined : `${flags.cid}:${lineNo}`);
            p.catch(() => {}); // awaited below, in order
            inFlight.push(p);
            if (inFlight.length >= sender.window) {
              print(await inFlight.shift()!);
              count++;
            }
          }
          while (inFlight.length > 0) {
            print(await inFlight.shift()!);
            count++;
          }
        } finally {
          lines.close();
        }
      }
    } catch (err) {
      if (count > 0) this.logToStderr(`${count} message(s) were stored before the failure`);
      sender.fail(err);
    } finally {
      await sender.close();
    }
  }

  /** A send-only session (push: false) through the gateway; its sends are pipelined in order. */
  private async tcpSender(
    dir: string,
    config: ClusterConfig,
    given: string | undefined,
    as: string,
    to: string,
    device: string,
  ): Promise<Sender> {
    const gateway = await this.findGateway(dir, config, given);
    const token = config.secret === '' ? undefined : signToken(config.secret, as, { ttlSeconds: TOKEN_TTL_S });
    let client: FishClient;
    try {
      client = await FishClient.connect({ gateway, user: as, device, token, push: false, reconnect: false });
    } catch (err) {
      this.failOn(err, gateway, dir);
    }
    return {
      window: WINDOW,
      send: (text, cid) =>
        client
          .send(to, text, cid === undefined ? {} : { cid })
          .then((ok) => ({ mid: ok.mid, seq: ok.seq, ts: ok.ts, to })),
      fail: (err) => this.failOn(err, gateway, dir),
      close: () => client.close().catch(() => {}),
    };
  }

  /**
   * POST /v1/messages of a msg_server's server API, one at a time (two HTTP
   * requests in flight may be stored in either order).
   */
  private async httpSender(
    dir: string,
    config: ClusterConfig,
    given: string | undefined,
    from: string,
    to: string,
  ): Promise<Sender> {
    const base = await this.findServerApi(dir, config, given);
    const url = `${base}/v1/messages`;
    const token = signToken(config.secret, 'fishchat-cli', { admin: true, ttlSeconds: TOKEN_TTL_S });
    const send = async (text: string, cid: string | undefined): Promise<Sent> => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ from, to, body: text, cid }),
        });
      } catch (err) {
        throw new Unreachable(errorText((err as { cause?: unknown }).cause ?? err));
      }
      const body = (await res.json().catch(() => undefined)) as
        | { mid?: string; seq?: number; ts?: number; error?: { code?: string; message?: string } }
        | undefined;
      if (res.ok && typeof body?.mid === 'string' && typeof body.seq === 'number' && typeof body.ts === 'number') {
        return { mid: body.mid, seq: body.seq, ts: body.ts, to };
      }
      const e = body?.error;
      if (typeof e?.code === 'string') throw new Answered(e.code, e.message ?? '');
      throw new Unreachable(`HTTP ${res.status} without a server API answer (is ${base} a msg_server's HTTP address?)`);
    };
    return {
      window: 1,
      send,
      fail: (err): never => {
        if (err instanceof Answered) {
          const hint =
            err.code === 'auth_failed' ? ` — is the secret of ${shown(dir)} (or FISHCHAT_SECRET) that cluster's?` : '';
          this.fail(`the server answered ${err.code}: ${err.message}${hint}`, EXIT.failed);
        }
        if (err instanceof Unreachable) {
          this.fail(`cannot reach the server API at ${base} — ${upHint(dir)} (${err.message})`, EXIT.unreachable);
        }
        throw err;
      },
      close: async () => {},
    };
  }

  /** The server API's base URL: --http-url, else a msg_server's HTTP address from run.json, else from its role file. */
  private async findServerApi(dir: string, config: ClusterConfig, given: string | undefined): Promise<string> {
    if (given !== undefined) {
      let u: URL | undefined;
      try {
        u = new URL(given);
      } catch {
        u = undefined;
      }
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash) {
        this.fail(`--http-url must be an http:// or https:// URL, found ${JSON.stringify(given)}`, EXIT.usage);
      }
      return given.replace(/\/+$/, '');
    }
    const running = await readRunInfo(dir);
    const fromRun = running?.roles
      ?.filter((r) => r.role === 'msg_server' && r.addresses?.http)
      .map((r) => r.addresses.http!);
    if (fromRun?.length) return `http://${fromRun[Math.floor(Math.random() * fromRun.length)]}`;
    const configured = config.msgServers.filter((m) => m.httpPort !== 0);
    if (configured.length) {
      const m = configured[Math.floor(Math.random() * configured.length)]!;
      return `http://${dialAddress(m.httpHost, m.httpPort)}`;
    }
    this.fail(
      `no cluster is running in ${shown(dir)} (no .fishchat/run.json) and no msg_server has a fixed HTTP port, ` +
        `so there is no server API to send to — ${upHint(dir)} Or pass --http-url URL`,
      EXIT.unreachable,
    );
  }

  /** Exits with the right code and a message the user can act on. */
  private failOn(err: unknown, gateway: string, dir: string): never {
    if (err instanceof FishError && err.local === undefined) {
      this.fail(`the server answered ${err.code}: ${err.message}`, EXIT.failed);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof FishError || isNetworkError(err)) {
      // The client names the address it could not reach in its message.
      if (message.includes(gateway) || isNetworkError(err)) {
        this.fail(`cannot reach the gateway at ${gateway} — ${upHint(dir)} (${message})`, EXIT.unreachable);
      }
      this.fail(`the cluster behind the gateway at ${gateway} did not answer: ${message}`, EXIT.unreachable);
    }
    throw err;
  }
}
