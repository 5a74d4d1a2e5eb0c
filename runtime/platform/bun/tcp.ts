/// <reference types="bun" />
/**
 * TCP on Bun: Bun.listen / Bun.connect with one shared set of socket handlers.
 *
 * Bun does not buffer writes: socket.write() returns how many bytes the kernel
 * took. What it did not take stays in `#pending` here and goes out on `drain`.
 * Writes are coalesced per event-loop turn like on Node: write() only queues,
 * one setImmediate per turn hands the whole queue over as one buffer.
 */
import { CONNECT_TIMEOUT_MS, END_TIMEOUT_MS, NO_QUEUE, SocketBase } from '../socket.js';
import { connectTcp as connectNodeTcp } from '../node/tcp.js';
import {
  AddressInUseError,
  type ConnectTcpOptions,
  type ListenTcpOptions,
  type TcpListener,
  type TcpSocket,
} from '../types.js';

type RawSocket = Bun.Socket<BunTcpSocket | undefined>;

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

class BunTcpSocket extends SocketBase {
  readonly #sock: RawSocket;
  /** the part of the last write the kernel did not take; waits for `drain` */
  #pending: Uint8Array | null = null;

  constructor(sock: RawSocket) {
    super(sock.remoteAddress ?? '', sock.remotePort ?? 0);
    this.#sock = sock;
    sock.setNoDelay(true);
  }

  get buffered(): number {
    return this.queued + (this.#pending?.length ?? 0);
  }

  end(): void {
    if (this.isClosed || this.ending) return;
    this.ending = true;
    this.endTimer = setTimeout(() => this.destroy(), END_TIMEOUT_MS);
    this.endTimer.unref?.();
    this.#pump();
  }

  protected terminate(): void {
    this.#pending = null;
    this.#sock.terminate();
  }

  // --- called by the shared Bun handlers ---

  handleData(chunk: Uint8Array): void {
    this.received(chunk);
  }

  /** The peer closed its side: after our own half-close, close; else flush ours and close, as Node does. */
  handlePeerEnd(): void {
    if (this.ending) this.#sock.end();
    else this.end();
  }

  handleDrain(): void {
    this.#pump();
  }

  handleClosed(): void {
    this.#pending = null;
    this.closedNow();
  }

  protected flush(): void {
    // With a write pending, the kernel is full: `drain` calls #pump.
    if (this.#pending === null) this.#pump();
  }

  /** Hands pending, then queued, bytes to the kernel until it stops taking them. */
  #pump(): void {
    if (this.isClosed) return;
    for (;;) {
      if (this.#pending === null) {
        if (this.queue.length === 0) break;
        this.#pending = this.queue.length === 1 ? this.queue[0]! : concat(this.queue, this.queued);
        this.queue = NO_QUEUE;
        this.queued = 0;
      }
      const n = this.#sock.write(this.#pending);
      if (n < 0) return; // closed: `close` follows
      if (n < this.#pending.length) {
        this.#pending = this.#pending.subarray(n);
        return;
      }
      this.#pending = null;
    }
    if (this.ending) {
      // Half-close (FIN, keep reading), not end(): Bun's end() closes both
      // ways, and a peer still writing then gets a reset that can discard our
      // last frames (an error or a kick). What arrives from now on is dropped;
      // the peer's own FIN (handlePeerEnd) or the end timer closes the socket.
      // (Measured on Bun 1.4.5: shutdown(true) shuts the write side only.)
      this.#sock.shutdown(true);
      return;
    }
    this.drained();
  }
}

/** One set of handlers for every socket (Bun's recommended shape). */
function handlers(onOpen: (socket: BunTcpSocket) => void): Bun.SocketHandler<BunTcpSocket | undefined> {
  return {
    open(raw) {
      raw.data = new BunTcpSocket(raw);
      onOpen(raw.data);
    },
    data(raw, chunk) {
      raw.data?.handleData(chunk);
    },
    drain(raw) {
      raw.data?.handleDrain();
    },
    end(raw) {
      raw.data?.handlePeerEnd();
    },
    close(raw) {
      raw.data?.handleClosed();
    },
    error(raw, err) {
      console.error('fishchat: TCP socket error:', err);
      raw.data?.destroy();
    },
    connectError() {
      // Bun.connect's promise rejects; nothing else to do.
    },
  };
}

export function listenTcp(options: ListenTcpOptions): Promise<TcpListener> {
  let listener: Bun.TCPSocketListener;
  try {
    listener = Bun.listen<BunTcpSocket | undefined>({
      hostname: options.host,
      port: options.port,
      socket: handlers((socket) => options.onConnection(socket)),
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      return Promise.reject(new AddressInUseError(options.host, options.port));
    }
    return Promise.reject(err);
  }
  return Promise.resolve({
    host: listener.hostname,
    port: listener.port,
    close: async () => {
      listener.stop(false);
    },
  });
}

export async function connectTcp(host: string, port: number, options: ConnectTcpOptions = {}): Promise<TcpSocket> {
  // Bun.connect cannot choose the source address; Bun's node:net can.
  if (options.localAddress) return connectNodeTcp(host, port, options);
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Bun.connect<BunTcpSocket | undefined>({
    hostname: host,
    port,
    socket: handlers(() => {}),
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }));
    }, CONNECT_TIMEOUT_MS);
  });
  // A connect that completes after the timeout is closed at once.
  connecting.then(
    (raw) => {
      if (timedOut) raw.terminate();
    },
    () => {},
  );
  try {
    const raw = await Promise.race([connecting, timeout]);
    return raw.data!;
  } finally {
    clearTimeout(timer);
  }
}
