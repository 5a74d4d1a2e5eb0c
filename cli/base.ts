/**
 * What every fishchat command shares: the cluster directory argument and
 * flag, exit codes, and errors printed as one clear line (no stack traces;
 * DEBUG=* shows them).
 */
import { Args, Command, Errors, Flags } from '@oclif/core';
import { relative, resolve, sep } from 'node:path';

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
const USAGE_ERRORS = new Set(['ConfigError', 'InitRefusedError', 'AlreadyRunningError', 'AlreadyStartingError', 'NoRedisError', 'ServeUsageError', 'RuntimeMissingError']);

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

export abstract class BaseCommand extends Command {
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

/** The `DIR` part of a hint: empty for the current directory. */
export function dirHint(dir: string): string {
  return dir === process.cwd() ? '' : ` ${quote(shown(dir))}`;
}

function quote(s: string): string {
  return /^[\w./@:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
