import { Args, Flags } from '@oclif/core';
import { BaseCommand, clusterDir, dirFlag, example, EXIT, shown } from '../base.js';
import {
  formatAddresses,
  noAppendonlyWarning,
  redisAppendonly,
  ROLE_NAMES,
  serveRole,
  stopWithin,
  type ServedRole,
} from '../../runtime/cluster/index.js';
import { detectRuntime } from '../../runtime/platform/index.js';

const STOP_TIMEOUT_MS = 15_000;

export default class Serve extends BaseCommand {
  static override summary = 'Run one role of the cluster in this process, over Redis (for systemd, or many machines).';
  static override description =
    `Runs ROLE from its JSON file: the one named with --config, or the one of that role in the cluster directory's fishchat.json "roles" (with --id when there are several, such as msg_servers). The other roles run elsewhere — other processes, other machines — and meet this one through Redis: its bus and store are shared, so serve refuses to run without a Redis URL.

Every role reads the Redis URL, the cluster name, the secret and its ports from the cluster directory; the environment overrides them: FISHCHAT_REDIS, FISHCHAT_CLUSTER, FISHCHAT_SECRET, and FISHCHAT_PORT / FISHCHAT_HTTP_PORT for the role's own ports.

Prints \`ready ROLE ID tcp=HOST:PORT http=HOST:PORT pid=N\` once it listens, then its log lines. SIGTERM or Ctrl-C stops it cleanly (a msg_server kicks its clients with "draining"), exit code 0.`;
  static override examples = [
    example('The router of the cluster in /etc/fishchat', 'router --dir /etc/fishchat'),
    example('One msg_server, from its own file', 'msg_server --config /etc/fishchat/msg_server.19000.json'),
    {
      description: 'One of several msg_servers, by id, with the Redis URL from the environment',
      command: 'FISHCHAT_REDIS=redis://10.0.0.5:6379 <%= config.bin %> <%= command.id %> msg_server --id ms-19001',
    },
  ];
  static override args = {
    role: Args.string({ name: 'ROLE', description: 'the role to run', required: true, options: [...ROLE_NAMES] }),
  };
  static override flags = {
    dir: dirFlag,
    config: Flags.string({
      char: 'c',
      description: 'the role\'s JSON file (default: picked from fishchat.json "roles")',
      helpValue: 'FILE',
    }),
    id: Flags.string({
      description: 'which one of the role, when the cluster has several (msg_servers)',
      helpValue: 'ID',
    }),
    redis: Flags.string({
      description: 'the Redis URL (default: FISHCHAT_REDIS, else fishchat.json "redis")',
      helpValue: 'URL',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Serve);
    const dir = flags.dir !== undefined || flags.config === undefined ? clusterDir(flags.dir) : undefined;

    const signals = this.stopSignals();
    let served: ServedRole;
    try {
      served = await serveRole({
        dir,
        configFile: flags.config,
        role: args.role,
        id: flags.id,
        redis: flags.redis,
        log: {
          info: (m) => this.log(m),
          warn: (m) => this.logToStderr(`warning: ${m}`),
          error: (m) => this.logToStderr(`error: ${m}`),
        },
      });
    } catch (err) {
      signals.dispose();
      throw err;
    }
    const h = served.handle;
    this.log(
      `serving ${h.role} ${h.id} of cluster "${served.config.cluster}" (${shown(served.config.dir)}) on ${detectRuntime()}, over Redis at ${served.redis}`,
    );
    const redis = served.config.redis!;
    if ((await redisAppendonly(redis)) === false) this.logToStderr(`warning: ${noAppendonlyWarning(redis)}`);
    this.log(`ready ${h.role} ${h.id} ${formatAddresses(h.addresses)} pid=${process.pid}`);

    const signal = await signals.wait();
    this.log(`stopping (${signal}) …`);
    try {
      await stopWithin(
        STOP_TIMEOUT_MS,
        () => served.stop(),
        () => {
          this.logToStderr(`${h.role} ${h.id} did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting`);
          process.exit(EXIT.failed);
        },
      );
    } finally {
      signals.dispose();
    }
    this.log('stopped');
    setTimeout(() => process.exit(EXIT.ok), 2000).unref();
  }
}
