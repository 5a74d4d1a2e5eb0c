/**
 * DIR/.fishchat/run.json: what a running `fishchat up` started and where it
 * listens (written by `up`, read by `send`, `status`, `tail`, `down`, a second `up`).
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { RUN_FILE } from './defaults.js';

/** How `fishchat up` runs a cluster (docs/architecture.md "Three ways to run, one code path"). */
export type RunMode = 'embedded' | 'redis' | 'managed';

/** What `fishchat up` records in DIR/.fishchat/run.json while the cluster runs. */
export interface RunInfo {
  /** the `fishchat up` process (embedded: it runs every role; Redis modes: it supervises them) */
  pid: number;
  /** embedded: one process; redis: an external Redis; managed: a private redis-server started by `up` */
  mode: RunMode;
  /** Redis modes: the URL the roles use; managed: also the redis-server's pid and data directory */
  redis?: { url: string; pid?: number; dir?: string };
  /** Redis modes: the runtime of the role processes */
  runtime?: 'node' | 'bun' | 'deno';
  /** the gateway's client address, host:port */
  gateway: string;
  /** the monitor's HTTP address, host:port (`fishchat status` asks it) */
  monitor?: string;
  /** every role, in start order, with where it listens */
  roles: { role: string; id: string; addresses: { tcp?: string; http?: string; ws?: string }; pid?: number }[];
  /** ISO 8601 */
  startedAt: string;
}

export function runFilePath(dir: string): string {
  return isAbsolute(dir) ? join(dir, RUN_FILE) : resolve(dir, RUN_FILE);
}

/** The run file of a cluster whose process is still alive; undefined when none (or stale). */
export async function readRunInfo(dir: string): Promise<RunInfo | undefined> {
  let info: RunInfo;
  try {
    info = JSON.parse(await readFile(runFilePath(dir), 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
  if (!info || typeof info.pid !== 'number' || typeof info.gateway !== 'string') return undefined;
  return processAlive(info.pid) ? info : undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** run.json as it is on disk, whatever its process; undefined when missing or unreadable. */
export function readRunFileRaw(path: string): RunInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as RunInfo;
    return info && typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRunFile(path: string, info: RunInfo): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`);
  await rename(tmp, path);
}

/** Removes the run file if it is still ours. */
export async function removeRunFile(path: string): Promise<void> {
  try {
    const info = JSON.parse(await readFile(path, 'utf8')) as RunInfo;
    if (info.pid === process.pid) await rm(path, { force: true });
  } catch {
    // gone already, or not ours to judge
  }
}

/** Another live process runs a cluster on this directory. */
export class AlreadyRunningError extends Error {
  constructor(
    readonly dir: string,
    readonly info: RunInfo,
  ) {
    super(
      `a cluster is already running in ${dir} (pid ${info.pid}, gateway ${info.gateway}); stop it first ` +
        `(Ctrl-C where it runs, or kill ${info.pid}; if that pid is not FishChat, delete ${runFilePath(dir)})`,
    );
    this.name = 'AlreadyRunningError';
  }
}
