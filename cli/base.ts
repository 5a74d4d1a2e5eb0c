/**
 * What every fishchat command shares: the cluster directory argument and
 * flag, exit codes, and errors printed as one clear line (no stack traces;
 * DEBUG=* shows them).
 */
import { Args, Command, Errors, Flags } from '@oclif/core';
import { relative, resolve, sep } from 'node:path';
import { dialAddress, loadCluster, parseHostPort, readRunInfo, StopSignals } from '../runtime/cluster/index.js';
import type { ClusterConfig } from '../runtime/cluster/config.js';
import { errorMessage, type StatusFailure } from './monitor.js';

/** Exit codes of every command (README "CLI"). */
export const EXIT = {
  ok: 0,
  /** the server answered an error, or something failed at run time */
  failed: 1,
  /** bad arguments or configuration */
  usage: 2,
  /** the cluster could not be reached */
  unreachable: 3,
} as const;

/** Errors that are the user's to fix: printed as their message, exit code `usage`. */
const USAGE_ERRORS = new Set([
  'ConfigError',
  'InitRefusedError',
  'AlreadyRunningError',
  'AlreadyStartingError',
  'NoRedisError',
  'ServeUsageError',
  'RuntimeMissingError',
]);

export const dirArg = Args.string({
  name: 'DIR',
  description: 'cluster directory (default: the current directory)',
  required: false,
});

export const dirFlag = Flags.string({
  char: 'd',
  description: 'cluster directory (default: the current directory)',
  helpValue: 'DIR',
});

/** One entry of a command's `examples`: what it does, and the arguments after `fishchat COMMAND`. */
export function example(description: string, args = ''): { description: string; command: string } {
  return { description, command: `<%= config.bin %> <%= command.id %>${args === '' ? '' : ` ${args}`}` };
}

/** --gateway of the commands that log in (`send`, `chat`). */
export const gatewayFlag = Flags.string({
  description: 'the gateway address (default: from the cluster directory)',
  helpValue: 'HOST:PORT',
});

/** --monitor of the commands that ask the monitor (`status`, `tail`). */
export const monitorFlag = Flags.string({
  description: "the monitor's HTTP address (default: from the cluster directory)",
  helpValue: 'HOST:PORT',
});

/** --runtime of the commands that start role processes. */
export const RUNTIME_OPTIONS = ['node', 'bun', 'deno'];

export abstract class BaseCommand extends Command {
  /**
   * The monitor's HTTP address for `status` and `tail`: `--monitor`, else the
   * running cluster's run.json, else the monitor's role file.
   */
  protected async findMonitor(
    dirFlagValue: string | undefined,
    monitorFlag: string | undefined,
  ): Promise<{ dir: string; config: ClusterConfig; where: string; hint: string; monitor: string }> {
    const dir = clusterDir(dirFlagValue);
    const config = await loadCluster(dir);
    const where = dir === process.cwd() ? 'this directory' : shown(dir);
    const hint = `is \`${binName()} up\` running in ${where}?`;
    if (monitorFlag !== undefined) {
      if (!parseHostPort(monitorFlag))
        this.fail(`--monitor must be HOST:PORT, found ${JSON.stringify(monitorFlag)}`, EXIT.usage);
      return { dir, config, where, hint, monitor: monitorFlag };
    }
    const running = await readRunInfo(dir);
    const fromRun = running?.monitor ?? running?.roles?.find((r) => r.role === 'monitor')?.addresses?.http;
    if (fromRun) return { dir, config, where, hint, monitor: fromRun };
    if (config.monitor.httpPort === 0) {
      this.fail(
        `no cluster is running in ${where} (no .fishchat/run.json) and its monitor port is 0 (any free port), ` +
          `so there is no monitor address to ask — ${hint} Or pass --monitor HOST:PORT`,
        EXIT.unreachable,
      );
    }
    return { dir, config, where, hint, monitor: dialAddress(config.monitor.httpHost, config.monitor.httpPort) };
  }

  /** Exits on a failed request to the monitor (`status`, `tail`) with a message the user can act on. */
  protected failMonitor(monitor: string, at: { secretFile: string; hint: string }, f: StatusFailure): never {
    if (f.kind === 'unreachable') {
      this.fail(`cannot reach the monitor at ${monitor} (${f.reason}) — ${at.hint}`, EXIT.unreachable);
    }
    if (f.kind === 'invalid') {
      this.fail(
        `the monitor at ${monitor} answered something that is not a FishChat status (is it the monitor?)`,
        EXIT.failed,
      );
    }
    const reason = errorMessage(f.body) ?? `HTTP ${f.status}`;
    if (f.status === 401) {
      this.fail(
        `the monitor at ${monitor} refused the admin token: ${reason} — ` +
          `is ${shown(at.secretFile)} (or FISHCHAT_SECRET) the secret of that cluster?`,
        EXIT.failed,
      );
    }
    this.fail(`the monitor at ${monitor} answered HTTP ${f.status}: ${reason}`, EXIT.failed);
  }

  /** The gateway address for `send` and `chat`: `--gateway`, else the running cluster's run.json, else gateway.json. */
  protected async findGateway(dir: string, config: ClusterConfig, given: string | undefined): Promise<string> {
    if (given !== undefined) {
      if (!parseHostPort(given)) this.fail(`--gateway must be HOST:PORT, found ${JSON.stringify(given)}`, EXIT.usage);
      return given;
    }
    const running = await readRunInfo(dir);
    if (running) return running.gateway;
    if (config.gateway.port === 0) {
      this.fail(
        `no cluster is running in ${shown(dir)} (no .fishchat/run.json) and its gateway port is 0 (any free port): ` +
          `start it with \`${binName()} up${dirHint(dir)}\`, or pass --gateway HOST:PORT`,
        EXIT.unreachable,
      );
    }
    return dialAddress(config.gateway.host, config.gateway.port);
  }

  /** Stop requests for a command that runs roles: a first signal asks for a clean stop, a second one exits at once. */
  protected stopSignals(): StopSignals {
    return new StopSignals((signal) => {
      this.logToStderr(`${signal} again: exiting without a clean stop`);
      process.exit(EXIT.failed);
    });
  }

  /**
   * Prints `Error: message` on one line of stderr (unwrapped, so scripts and
   * logs keep it whole) and exits with `exit`.
   */
  protected fail(message: string, exit: number = EXIT.failed): never {
    this.logToStderr(`Error: ${message}`);
    this.exit(exit);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own errors (flag parsing, this.exit) are already what the user should see.
    if (err instanceof Errors.CLIError || err instanceof Errors.ExitError || err.oclif) return super.catch(err);
    if (process.env.DEBUG) this.logToStderr(err.stack ?? String(err));
    this.fail(err.message || String(err), USAGE_ERRORS.has(err.name) ? EXIT.usage : EXIT.failed);
  }
}

const NETWORK_ERRORS = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)$/;

/** A failure to reach an address (refused, reset, unreachable, unknown host, …). */
export function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && NETWORK_ERRORS.test(code);
}

/** The cluster directory from an argument or flag, absolute. */
export function clusterDir(given: string | undefined): string {
  return resolve(given ?? process.cwd());
}

/** A path as short as it can be shown: relative to the current directory when inside it. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  if (rel === '') return '.';
  return rel.startsWith('..') || rel.startsWith(sep) ? path : rel;
}

/** How the user invoked us, for "next, run …" hints: `npx fishchat` under npx, else `fishchat`. */
export function binName(): string {
  return process.env.npm_command === 'exec' ? 'npx fishchat' : 'fishchat';
}

/** "is `fishchat up DIR` running in DIR?": what to check when the cluster of `dir` cannot be reached. */
export function upHint(dir: string): string {
  return `is \`${binName()} up${dirHint(dir)}\` running in ${dir === process.cwd() ? 'this directory' : shown(dir)}?`;
}

/** The `DIR` part of a hint: empty for the current directory. */
export function dirHint(dir: string): string {
  return dir === process.cwd() ? '' : ` ${quote(shown(dir))}`;
}

function quote(s: string): string {
  return /^[\w./@:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
