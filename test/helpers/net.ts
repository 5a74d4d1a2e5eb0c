/** Network helpers for tests. */
import net from 'node:net';

/** A port nothing listens on (taken from the OS on 127.0.0.1, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A port nobody listens on, for "cannot reach" tests: one below the kernel's
 * ephemeral range (net.ipv4.ip_local_port_range, 32768 and up by default),
 * which no port-0 listener of a concurrent suite is ever given, and which is
 * checked free on 127.0.0.1 just now. (A port from freePort() is released to
 * the OS, which may hand it to the next listener on port 0 in between.)
 */
export async function closedPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no closed port found in 20000-31999 on 127.0.0.1 after 50 tries');
}

/** A port that something listens on (127.0.0.1), until `close()`. */
export async function takenPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}
