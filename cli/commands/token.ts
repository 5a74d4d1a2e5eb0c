import { Args, Flags } from '@oclif/core';
import { loadCluster } from '../../runtime/cluster/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import { BaseCommand, clusterDir, dirFlag, example, EXIT } from '../base.js';

export default class Token extends BaseCommand {
  static override summary = 'Print a token for USER, signed with the cluster secret.';
  static override description =
    `Prints an HS256 token (docs/protocol.md §4.1) with sub = USER, signed with the secret of the cluster directory (or FISHCHAT_SECRET). Clients send it in login; --admin tokens open the manager's and monitor's HTTP APIs.`;
  static override examples = [
    example('A token for alice, valid one day', 'alice'),
    example('A one-hour admin token for the HTTP APIs', 'ops --admin --ttl 3600'),
    example('For the cluster in ./chat', 'bob --dir chat'),
  ];
  static override args = {
    user: Args.string({ name: 'USER', description: 'the user the token is for (sub)', required: true }),
  };
  static override flags = {
    dir: dirFlag,
    ttl: Flags.integer({ description: 'validity in seconds', default: 86_400, min: 1, helpValue: 'SECONDS' }),
    admin: Flags.boolean({ description: 'an admin token (adm: true) for the HTTP APIs', default: false }),
    json: Flags.boolean({ description: 'print {"token","sub","exp"} as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Token);
    const config = await loadCluster(clusterDir(flags.dir));
    if (config.secret === '') {
      this.fail(`the cluster in ${config.dir} has no secret (auth "none"); \`fishchat up\` creates one`, EXIT.usage);
    }
    const now = Date.now();
    const token = signToken(config.secret, args.user, { ttlSeconds: flags.ttl, admin: flags.admin, now });
    if (flags.json) {
      this.log(
        JSON.stringify({
          token,
          sub: args.user,
          exp: Math.floor(now / 1000) + flags.ttl,
          ...(flags.admin ? { adm: true } : {}),
        }),
      );
    } else {
      this.log(token);
    }
  }
}
