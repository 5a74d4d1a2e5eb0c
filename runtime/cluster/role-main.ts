/**
 * One role in this process, over Redis (docs/architecture.md "Three ways to run, one code path", 1).
 *
 * As a plain entry point (no oclif, so it starts fast and runs on Node, Bun
 * and Deno alike) — this is what `fishchat up` spawns for each role in the
 * Redis modes:
 *
 *     node|bun|deno dist/runtime/cluster/role-main.js --dir DIR --role ROLE [--id ID]
 *     node|bun|deno dist/runtime/cluster/role-main.js --config FILE [--dir DIR]
 *
 * Other options: --redis URL, --seeds host:port,… and --seed-ws host:port=URL,… (gateway), --watch-stdin
 * (stop when stdin closes: the supervisor is gone). Environment:
 * FISHCHAT_REDIS, FISHCHAT_CLUSTER, FISHCHAT_SECRET override the cluster
 * files; FISHCHAT_PORT and FISHCHAT_HTTP_PORT the role's ports.
 *
 * Prints `ready <role> <id> [tcp=host:port] [http=host:port] pid=N` on
 * stdout once it listens; log lines go to stdout (warnings and errors to
 * stderr). On SIGTERM or SIGINT it stops cleanly (a msg_server kicks its
 * clients with `draining`) and exits 0. A start failure prints
 * `Error: message` on stderr and exits 2 (configuration) or 1.
 *
 * ./serve.ts is the same thing as a function (`serveRole`): `fishchat serve` uses it.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Logger } from '../contract/index.js';
import { formatAddresses } from './ready-line.js';
import { ROLE_STOP_TIMEOUT_MS, serveRole, type ServedRole } from './serve.js';
import { StopSignals, stopWithin } from './signals.js';

// ---------------------------------------------------------------- the entry point

/** `host:port=ws://…,…` (what the supervisor passes) → a map; the URLs hold no comma. */
function seedWsOf(v: string | undefined): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const kv of v.split(',')) {
    const at = kv.indexOf('=');
    if (at > 0) out[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        config: { type: 'string' },
        role: { type: 'string' },
        id: { type: 'string' },
        redis: { type: 'string' },
        seeds: { type: 'string' },
        'seed-ws': { type: 'string' },
        'watch-stdin': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(
      `Error: ${(err as Error).message}\nusage: role-main --dir DIR --role ROLE [--id ID] | --config FILE\n`,
    );
    process.exit(2);
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const log: Logger = {
    info: (m) => writeLines(process.stdout, m),
    warn: (m) => writeLines(process.stderr, `warning: ${m}`),
    error: (m) => writeLines(process.stderr, `error: ${m}`),
  };

  // Stop requests while starting stop the role as soon as it is up.
  const stopRequests = new StopSignals(
    (why) => {
      if (why === 'stdin closed') return;
      process.stderr.write(`${why} again: exiting without a clean stop\n`);
      process.exit(1);
    },
    ['SIGTERM', 'SIGINT'],
  );
  if (values['watch-stdin']) {
    // Our supervisor holds the other end: it closing means the supervisor is gone.
    const gone = () => stopRequests.request('stdin closed');
    process.stdin.on('end', gone);
    process.stdin.on('close', gone);
    process.stdin.on('error', gone);
    process.stdin.resume();
  }

  let served: ServedRole;
  try {
    served = await serveRole({
      dir: str('dir'),
      configFile: str('config'),
      role: str('role'),
      id: str('id'),
      redis: str('redis'),
      seeds: str('seeds')?.split(',').filter(Boolean),
      seedWs: seedWsOf(str('seed-ws')),
      log,
    });
  } catch (err) {
    const e = err as Error;
    if (process.env.DEBUG) process.stderr.write(`${e.stack}\n`);
    process.stderr.write(`Error: ${e.message || String(e)}\n`);
    await flushStdout();
    process.exit(['ConfigError', 'NoRedisError', 'ServeUsageError'].includes(e.name) ? 2 : 1);
  }
  const h = served.handle;
  process.stdout.write(
    `ready ${h.role} ${h.id} ${formatAddresses(h.addresses)} pid=${process.pid}\n`.replace('  ', ' '),
  );

  const why = await stopRequests.wait();
  log.info(`stopping (${why})`);
  let code = 0;
  await stopWithin(
    ROLE_STOP_TIMEOUT_MS,
    async () => {
      try {
        await served.stop();
        log.info('stopped');
      } catch (err) {
        process.stderr.write(`Error: ${(err as Error).message}\n`);
        code = 1;
      }
    },
    () => {
      process.stderr.write(`did not stop within ${ROLE_STOP_TIMEOUT_MS / 1000} s; exiting\n`);
      process.exit(1);
    },
  );
  await flushStdout();
  process.exit(code);
}

function writeLines(stream: NodeJS.WriteStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

function flushStdout(): Promise<void> {
  return new Promise((done) => {
    if (process.stdout.write('')) done();
    else process.stdout.once('drain', () => done());
    setTimeout(done, 500).unref?.();
  });
}

function isMain(): boolean {
  const m = (import.meta as { main?: boolean }).main;
  if (typeof m === 'boolean') return m;
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) await main(process.argv.slice(2));
