import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_FILE, loadCluster, startEmbedded, type EmbeddedCluster, type RoleHandle } from '../../runtime/cluster/index.js';
import { detectRuntime } from '../../runtime/platform/index.js';
import { BaseCommand, binName, clusterDir, dirArg, dirHint, EXIT, shown } from '../base.js';

/** How long a clean stop may take before we give up on it. */
const STOP_TIMEOUT_MS = 15_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export default class Up extends BaseCommand {
  static override summary = 'Start the whole cluster: monitor, router, manager, msg_servers and gateway.';
  static override description = `Runs the cluster of DIR in embedded mode: every role in this process, an in-process bus, and the store in SQLite under the cluster directory (.fishchat/data), so a restart loses nothing. A directory without fishchat.json runs with the defaults (gateway 17000, msg_servers 19000 and 19001, manager 18000, router 20000, monitor 21000, all on 127.0.0.1) and gets a secret in .fishchat/secret on first start.

Prints one ready line per role with its addresses, then the roles' log lines prefixed with role and id; the addresses are also written to .fishchat/run.json, where \`fishchat send\` and \`fishchat status\` find them. Ctrl-C (SIGINT) or SIGTERM stops it cleanly, in the reverse of the start order: the msg_servers kick their clients with "draining", the store is closed, and the exit code is 0.`;
  static override examples = [
    { description: 'Start the cluster of the current directory', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Start the cluster written by `fishchat init chat`', command: '<%= config.bin %> <%= command.id %> chat' },
  ];
  static override args = { dir: dirArg };

  async run(): Promise<void> {
    const { args } = await this.parse(Up);
    const started = performance.now();
    const dir = clusterDir(args.dir);
    let createdSecret: string | undefined;
    const config = await loadCluster(dir, { createSecret: true, onSecretCreated: (path) => (createdSecret = path) });
    if (config.redis !== undefined) {
      this.fail(
        `${CLUSTER_FILE}: "redis" is set to ${config.redis}, but this version runs embedded mode only; ` +
          'remove "redis" (or set it to null) to run every role in this process',
        EXIT.usage,
      );
    }
    const defaults = existsSync(join(dir, CLUSTER_FILE)) ? '' : ` (no ${CLUSTER_FILE}: the defaults)`;
    this.log(`fishchat up: cluster "${config.cluster}" in ${shown(dir)}${defaults}`);
    if (createdSecret) this.log(`created ${shown(createdSecret)}  (the cluster secret, mode 0600)`);
    this.log(
      `mode: embedded (no Redis configured: every role runs in this process on ${detectRuntime()}, ` +
        `with an in-process bus and the SQLite store in ${shown(config.dataDir)})`,
    );
    if (config.runtime !== detectRuntime()) {
      this.log(`note: "runtime": "${config.runtime}" applies to role processes; embedded mode runs in this ${detectRuntime()} process`);
    }

    const roleIds = [config.monitor.id, config.router.id, config.manager.id, ...config.msgServers.map((m) => m.id), config.gateway.id];
    const idWidth = Math.max(...roleIds.map((id) => id.length));
    const prefix = (role: string, id: string) => `${role.padEnd(10)}  ${id.padEnd(idWidth)}`;

    // Signals that arrive while starting stop the cluster as soon as it is up.
    let signalled: string | undefined;
    let wake: (() => void) | undefined;
    const onSignal = (signal: string) => {
      if (signalled !== undefined) {
        this.logToStderr(`${signal} again: exiting without a clean stop`);
        process.exit(EXIT.failed);
      }
      signalled = signal;
      wake?.();
    };
    for (const s of SIGNALS) process.on(s, onSignal);

    let cluster: EmbeddedCluster;
    try {
      cluster = await startEmbedded(config, {
        log: (role, id, line) => {
          for (const l of line.split('\n')) this.log(`${prefix(role, id)}  ${l}`);
        },
        onReady: (r) => this.log(`ready  ${prefix(r.role, r.id)}  ${addresses(r)}`),
      });
    } catch (err) {
      for (const s of SIGNALS) process.off(s, onSignal);
      throw err;
    }
    const ms = Math.round(performance.now() - started);
    this.log(`cluster ready in ${ms} ms: clients connect to the gateway at ${cluster.gateway}; stop with Ctrl-C`);
    const dirFlag = dirHint(dir) ? ` --dir${dirHint(dir)}` : '';
    this.log(`try:   ${binName()} send --as alice --to bob "hello"${dirFlag}`);
    this.log(`       ${binName()} status${dirFlag}`);

    if (signalled === undefined) await new Promise<void>((resolve) => (wake = resolve));
    this.log(`stopping (${signalled}) …`);
    const timer = setTimeout(() => {
      this.logToStderr(`the cluster did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting`);
      process.exit(EXIT.failed);
    }, STOP_TIMEOUT_MS);
    try {
      await cluster.stop();
    } finally {
      clearTimeout(timer);
    }
    this.log('stopped');
    for (const s of SIGNALS) process.off(s, onSignal);
    // Everything is closed; should a stray handle keep the event loop alive, do not hang.
    setTimeout(() => process.exit(EXIT.ok), 2000).unref();
  }
}

function addresses(r: RoleHandle): string {
  const parts: string[] = [];
  if (r.addresses.tcp) parts.push(`tcp ${r.addresses.tcp}`);
  if (r.addresses.http) parts.push(`http ${r.addresses.http}`);
  return parts.join('  ');
}
