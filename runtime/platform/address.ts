/**
 * host:port addresses, one way everywhere: a listener's address as bound
 * (bindAddress) and the address a client should dial for it (dialAddress:
 * a wildcard bind is dialled on loopback).
 */
import { isIP } from 'node:net';
import { AddressInUseError, type Listener } from './types.js';

export { isIP };

/** One DNS label: 1–63 letters, digits and inner hyphens. */
const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`);

/** A host name or an IP address (no brackets, no port). */
export function isHost(host: string): boolean {
  return isIP(host) !== 0 || HOSTNAME_RE.test(host);
}

/** host:port as bound, IPv6 bracketed ("[::]:19000"); a wildcard stays a wildcard. */
export function bindAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host a client dials for a listener bound to `host`: 0.0.0.0 / :: (every address) → loopback. */
export function dialHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (isWildcard(host)) return '::1';
  return host;
}

/** host:port a client dials for a listener bound to host:port (a wildcard bind → loopback), IPv6 bracketed. */
export function dialAddress(host: string, port: number): string {
  return bindAddress(dialHost(host), port);
}

/** "host:port" or "[v6]:port" → parts; undefined when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\s]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1]!;
  const port = Number(m[2]);
  if (port > 65535 || !isHost(host)) return undefined;
  return { host, port };
}

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** True for a bind to every address: 0.0.0.0, ::. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/**
 * A listen failure as a user should read it: a taken port becomes an
 * AddressInUseError naming the role, its listener and the field to change;
 * anything else is passed on.
 */
export function listenError(err: unknown, role: string, id: string, listener: Listener): unknown {
  if (!(err instanceof AddressInUseError) && (err as { code?: string } | undefined)?.code !== 'EADDRINUSE') return err;
  const e = err as Partial<AddressInUseError>;
  return new AddressInUseError(e.host ?? '', e.port ?? 0, { role, id, listener });
}
