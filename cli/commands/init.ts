import { Flags } from '@oclif/core';
import { CLUSTER_FILE, initCluster, MAX_MSG_SERVERS, redactRedisUrl } from '../../runtime/cluster/index.js';
import { BaseCommand, binName, clusterDir, dirArg, dirHint, example, shown } from '../base.js';

export default class Init extends BaseCommand {
  static override summary = 'Write a cluster directory: fishchat.json, one JSON file per role, and a random secret.';
  static override description =
    `Writes fishchat.json (the cluster: roles, redis, runtime, auth, settings), gateway.json, one msg_server.<port>.json per msg_server, router.json, manager.json and monitor.json, from the templates of this package, and a random secret in .fishchat/secret (mode 0600).

With --redis URL, fishchat.json gets "redis": URL, so \`fishchat up\` runs every role in its own process over that Redis (and \`fishchat serve\` finds it); without it, "redis" is null and \`up\` picks managed Redis or embedded mode.

Refuses to overwrite existing files unless --force (exit code 2, nothing written); an existing secret is always kept, so tokens stay valid.`;
  static override examples = [
    example('Write a cluster into the current directory'),
    example('Write one with three msg_servers into ./chat', 'chat --msg-servers 3'),
    example('A cluster over a Redis you run: every role its own process', 'chat --redis redis://127.0.0.1:6379'),
    example(
      'Over a Redis Cluster (several seed nodes: a role needs one of them up to start)',
      "chat --redis 'redis://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000?cluster=1'",
    ),
    example('Rewrite the configuration files (the secret is kept)', '--force'),
  ];
  static override args = { dir: dirArg };
  static override flags = {
    'msg-servers': Flags.integer({
      description: `how many msg_servers, 1–${MAX_MSG_SERVERS} (ports 19000, 19001, …; HTTP 19100, 19101, …)`,
      helpValue: 'N',
      default: 2,
      min: 1,
      max: MAX_MSG_SERVERS,
    }),
    redis: Flags.string({
      description: `"redis" in ${CLUSTER_FILE}: the Redis every role uses (redis://host:port, or rediss:// for TLS; a Redis Cluster: redis://h1:p1,h2:p2,...?cluster=1)`,
      helpValue: 'URL',
    }),
    force: Flags.boolean({ description: 'overwrite existing configuration files', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Init);
    const dir = clusterDir(args.dir);
    const result = await initCluster(dir, { msgServers: flags['msg-servers'], force: flags.force, redis: flags.redis });
    for (const f of result.written) {
      this.log(
        `wrote  ${shown(f.path)}${f.mode === undefined ? '' : `  (mode ${f.mode.toString(8).padStart(4, '0')})`}`,
      );
    }
    if (result.secret.kept) this.log(`kept   ${shown(result.secret.path)}  (the existing secret)`);
    if (flags.redis !== undefined) {
      this.log(
        `redis  ${redactRedisUrl(flags.redis)}  ("redis" in ${CLUSTER_FILE}: every role its own process, over this Redis)`,
      );
    }
    this.log('');
    this.log(`next:  ${binName()} up${dirHint(result.dir)}`);
    this.log(
      `       ${binName()} up${dirHint(result.dir)} --detach   (in the background; ${binName()} down${dirHint(result.dir)} stops it)`,
    );
  }
}
