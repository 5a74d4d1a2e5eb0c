/**
 * The cluster secret: the HMAC key client and admin tokens are signed with
 * (docs/protocol.md §4.1, docs/architecture.md "Security"). One line of base64url text in a
 * file readable by its owner only (mode 0600).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Shortest secret accepted from a file or FISHCHAT_SECRET. */
export const MIN_SECRET_LENGTH = 16;

/** 32 random bytes, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Why a secret is refused, or undefined when it is fine. */
export function secretProblem(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_LENGTH)
    return `must be at least ${MIN_SECRET_LENGTH} characters, found ${secret.length}`;
  if (/\s/.test(secret)) return 'must not contain white space';
  return undefined;
}

/**
 * Writes a new random secret to `path` (creating its directory), mode 0600.
 * Never overwrites: fails with EEXIST when the file exists, unless `overwrite`.
 */
export async function createSecret(path: string, opts: { overwrite?: boolean } = {}): Promise<string> {
  const secret = generateSecret();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: opts.overwrite ? 'w' : 'wx' });
  // writeFile's mode applies only to a new file (and under the umask): make sure.
  await chmod(path, 0o600);
  return secret;
}

/** Reads the secret in `path` (surrounding white space trimmed); undefined when the file does not exist. */
export async function readSecret(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads the secret in `path`, or creates it there when the file does not exist. */
export async function ensureSecret(path: string): Promise<{ secret: string; created: boolean }> {
  const existing = await readSecret(path);
  if (existing !== undefined) return { secret: existing, created: false };
  try {
    return { secret: await createSecret(path), created: true };
  } catch (err) {
    // Another process created it between our read and our write: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const theirs = await readSecret(path);
      if (theirs !== undefined) return { secret: theirs, created: false };
    }
    throw err;
  }
}
