import { AddressInUseError } from './types.js';

/** The host part a client can dial for a listener bound to `host` (0.0.0.0 / :: → loopback). */
export function dialHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** host:port for a listener, bracketing IPv6. */
export function joinHostPort(host: string, port: number): string {
  return `${dialHost(host)}:${port}`;
}

/** Splits "host:port" / "[v6]:port"; null if it is not one. */
export function splitHostPort(addr: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(addr) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(addr);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1]!, port };
}

/** A listen failure as a user should read it: which role, which port, what to do. */
export function listenError(err: unknown, role: string, id: string, what: string): Error {
  if (err instanceof AddressInUseError || (err as { code?: string })?.code === 'EADDRINUSE') {
    const e = err as AddressInUseError;
    const where = e.port !== undefined ? `port ${e.port}${e.host ? ` on ${e.host}` : ''}` : 'its port';
    return new Error(`${role} ${id}: ${what} ${where} is already in use — stop what holds it, or change the port in its role file`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** 4 for an IPv4 address, 6 for IPv6, 0 for anything else (as node:net isIP; works on every runtime). */
export { isIP } from 'node:net';
