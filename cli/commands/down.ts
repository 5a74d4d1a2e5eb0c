import { Flags } from '@oclif/core';
import { existsSync, rmSync } from 'node:fs';
import {
  clusterName,
  fileSize,
  findUp,
  lastLines,
  readFrom,
  redactRedisUrl,
  removeStaleUpLock,
  removeUpFiles,
  runFilePath,
  signalProcess,
  stopLeftovers,
  upLogPath,
  waitForExit,
  type RunInfo,
} from '../../runtime/cluster/index.js';
import { BaseCommand, binName, clusterDir, dirArg, dirHint, example, EXIT, shown } from '../base.js';
import { addressList } from '../format.js';

/** Longer than `up` itself gives its roles (60 s in the Redis modes), so `up` can finish its own clean stop. */
const DEFAULT_TIMEOUT_S = 75;
/** After SIGKILL: how long the process may take to disappear. */
const KILL_WAIT_MS = 5000;

export default class Down extends BaseCommand {
  static override summary = 'Stop the cluster that `fishchat up` (--detach or not) runs on DIR.';
  static override description =
    `Finds the \`fishchat up\` of DIR in .fishchat/run.json (or, while it is still starting, in .fishchat/up.pid), sends it SIGTERM and waits until it is gone. \`up\` stops the roles itself, in the reverse of the start order: the gateway, then the msg_servers, which kick their clients with "draining", then the manager, the router and the monitor; in managed-Redis mode the redis-server last. Then prints what stopped.

Not gone within --timeout: it is killed (SIGKILL) with a warning, and the role processes and the managed redis-server it leaves are sent SIGTERM.

Exit codes: 0 stopped (also when only a stale run.json of a dead \`up\` was found: it is removed); 1 nothing runs on DIR, or the process could not be signalled.`;
  static override examples = [
    example('Stop the cluster of the current directory'),
    example('Stop the cluster started with `fishchat up chat --detach`', 'chat'),
    example('Give it 10 s to stop cleanly, then kill it', 'chat --timeout 10'),
  ];
  static override args = { dir: dirArg };
  static override flags = {
    timeout: Flags.integer({
      description: `seconds to wait for a clean stop before killing it (default ${DEFAULT_TIMEOUT_S})`,
      helpValue: 'SECONDS',
      min: 1,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Down);
    const dir = clusterDir(args.dir);
    const runFile = runFilePath(dir);
    const timeoutS = flags.timeout ?? DEFAULT_TIMEOUT_S;
    const name = clusterName(dir);

    const { pid, info } = findUp(dir);

    if (pid === undefined) {
      removeStaleUpLock(dir);
      if (!info) {
        this.fail(
          `no cluster is running in ${shown(dir)} (no ${shown(runFile)}); start one with: ${binName()} up${dirHint(dir)} --detach`,
          EXIT.failed,
        );
      }
      // run.json of an `up` that is gone (killed): what it left, then the file.
      for (const l of stopLeftovers(info))
        this.log(`stopped  ${l.what}  pid ${l.pid}  (left running by the dead fishchat up)`);
      rmSync(runFile, { force: true });
      this.log(`not running (removed a stale ${shown(runFile)}: its fishchat up, pid ${info.pid}, is gone)`);
      return;
    }

    const what = info && info.pid === pid ? describe(info) : 'still starting';
    this.log(`stopping cluster "${name}" in ${shown(dir)}: fishchat up pid ${pid} (${what}) …`);
    const logPath = upLogPath(dir);
    const logFrom = fileSize(logPath);
    const t0 = performance.now();
    if (!signalProcess(pid, 'SIGTERM')) {
      if (await waitForExit(pid, 0)) {
        this.log('it had just stopped');
        return;
      }
      this.fail(`cannot signal fishchat up (pid ${pid}): not permitted (another user's process?)`, EXIT.failed);
    }

    let killed = false;
    if (!(await waitForExit(pid, timeoutS * 1000))) {
      this.logToStderr(`warning: fishchat up (pid ${pid}) did not stop within ${timeoutS} s: killing it (SIGKILL)`);
      signalProcess(pid, 'SIGKILL');
      killed = true;
      if (!(await waitForExit(pid, KILL_WAIT_MS)))
        this.fail(`fishchat up (pid ${pid}) is still there after SIGKILL`, EXIT.failed);
      if (info) {
        const leftovers = stopLeftovers(info);
        for (const l of leftovers)
          this.logToStderr(`warning: sent SIGTERM to ${l.what} (pid ${l.pid}), left running by the killed fishchat up`);
        for (const l of leftovers) {
          if (!(await waitForExit(l.pid, KILL_WAIT_MS)))
            this.logToStderr(`warning: ${l.what} (pid ${l.pid}) is still running`);
        }
      }
    }
    const ms = Math.round(performance.now() - t0);

    // A clean `up` removes run.json and up.pid itself; a killed one cannot.
    removeUpFiles(dir, pid);

    if (info && info.pid === pid) {
      const idWidth = Math.max(0, ...info.roles.map((r) => r.id.length));
      for (const r of [...info.roles].reverse()) {
        this.log(
          `stopped  ${r.role.padEnd(10)}  ${r.id.padEnd(idWidth)}  ${addressList(r.addresses)}${r.pid ? `  pid ${r.pid}` : ''}`,
        );
      }
      if (info.mode === 'managed' && info.redis?.pid)
        this.log(`stopped  ${'redis'.padEnd(10)}  redis-server  ${info.redis.url}  pid ${info.redis.pid}`);
    }
    // `up` says "stopped" as its last line after a clean stop; anything else is worth showing.
    const said = readFrom(logPath, logFrom);
    const logged = existsSync(logPath) && said !== '';
    if (!killed && logged && !/^stopped$/m.test(said)) {
      this.logToStderr(`warning: fishchat up did not report a clean stop; the last lines of ${shown(logPath)}:`);
      for (const l of lastLines(said, 15)) this.logToStderr(`  ${l}`);
    }
    this.log(`cluster "${name}" stopped in ${ms} ms${killed ? ' (killed)' : ''}`);
  }
}

function describe(info: RunInfo): string {
  const n = info.roles.length;
  switch (info.mode) {
    case 'embedded':
      return `embedded, ${n} roles in it`;
    case 'managed':
      return `managed Redis, ${n} role processes and a redis-server`;
    case 'redis':
      return `Redis at ${redactRedisUrl(info.redis?.url ?? '?')}, ${n} role processes`;
  }
}
