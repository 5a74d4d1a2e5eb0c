import { Args, Flags } from '@oclif/core';
import { createInterface } from 'node:readline';
import { FishClient, FishError } from '../../runtime/client/index.js';
import { loadCluster } from '../../runtime/cluster/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import { BaseCommand, clusterDir, dirFlag, example, EXIT, gatewayFlag, isNetworkError, upHint } from '../base.js';

/** Sends in flight at once when reading lines from stdin (replies come back in order). */
const WINDOW = 64;
/** The send-only session's token outlives any sensible run; it is only checked at login. */
const TOKEN_TTL_S = 600;

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
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Send);
    if (args.text === undefined) {
      this.fail('give the message TEXT, or - to send each line of stdin (see --help)', EXIT.usage);
    }
    const dir = clusterDir(flags.dir);
    const config = await loadCluster(dir);
    const gateway = await this.findGateway(dir, config, flags.gateway);

    const token = config.secret === '' ? undefined : signToken(config.secret, flags.as, { ttlSeconds: TOKEN_TTL_S });
    let client: FishClient;
    try {
      client = await FishClient.connect({
        gateway,
        user: flags.as,
        device: flags.device,
        token,
        push: false,
        reconnect: false,
      });
    } catch (err) {
      this.failOn(err, gateway, dir);
    }

    const print = (r: Sent) => {
      if (flags.json) this.log(JSON.stringify({ mid: r.mid, seq: r.seq, ts: r.ts, to: r.to }));
      else this.log(`sent to ${r.to}: seq ${r.seq}, mid ${r.mid}`);
    };
    const send = (text: string, cid: string | undefined): Promise<Sent> =>
      client
        .send(flags.to, text, cid === undefined ? {} : { cid })
        .then((ok) => ({ mid: ok.mid, seq: ok.seq, ts: ok.ts, to: flags.to }));

    let count = 0;
    try {
      if (args.text !== '-') {
        print(await send(args.text, flags.cid));
        count++;
      } else {
        // Pipelined: up to WINDOW sends in flight, results printed in order; the first failure stops.
        const inFlight: Promise<Sent>[] = [];
        let lineNo = 0;
        const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
        try {
          for await (const line of lines) {
            lineNo++;
            if (line.trim() === '') continue;
            const p = send(line, flags.cid === undefined ? undefined : `${flags.cid}:${lineNo}`);
            p.catch(() => {}); // awaited below, in order
            inFlight.push(p);
            if (inFlight.length >= WINDOW) {
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
      this.failOn(err, gateway, dir);
    } finally {
      await client.close().catch(() => {});
    }
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
