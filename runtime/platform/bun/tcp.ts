/**
 * TCP on Bun: Bun.listen / Bun.connect with one shared set of socket handlers.
 *
 * Bun does not buffer writes: socket.write() returns how many bytes the kernel
 * took. What it did not take stays in `#pending` here and goes out on `drain`.
 * Writes are coalesced per event-loop turn like on Node: write() only queues,
 * one setImmediate per turn hands the whole queue over as one buffer.
 */
import { AddressInUseError, type ListenTcpOptions, type TcpListener, type TcpSocket } from '../types.js';

/** A connect that gets no answer fails after this long. */
const CONNECT_TIMEOUT_MS = 10_000;
/** After end(), a peer that does not read nor close is cut after this long. */
const END_TIMEOUT_MS = 10_000;

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

class BunTcpSocket implements TcpSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;

  readonly #sock: RawSocket;
  /** written this turn, not yet handed to the kernel */
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** the part of the last write the kernel did not take; waits for `drain` */
  #pending: Uint8Array | null = null;
  #scheduled = false;
  /** buffered went above 0 since the last onDrain call */
  #owing = false;
  #ending = false;
  #endTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #destroyed = false;
  #closeFired = false;
  #early: Uint8Array[] | null = [];
  #dataHandler: ((chunk: Uint8Array) => void) | null = null;
  #closeHandler: (() => void) | null = null;
  #drainHandler: (() => void) | null = null;

  constructor(sock: RawSocket) {
    this.#sock = sock;
    this.remoteAddress = sock.remoteAddress ?? '';
    this.remotePort = sock.remotePort ?? 0;
    sock.setNoDelay(true);
  }

  get buffered(): number {
    return this.#queued + (this.#pending?.length ?? 0);
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: Uint8Array): void {
    if (this.#closed || this.#ending || data.length === 0) return;
    this.#queue.push(data);
    this.#queued += data.length;
    this.#owing = true;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    this.#endTimer = setTimeout(() => this.destroy(), END_TIMEOUT_MS);
    this.#endTimer.unref();
    this.#pump();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#pending = null;
    this.#sock.terminate();
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    const first = this.#dataHandler === null;
    this.#dataHandler = handler;
    if (!first || this.#early === null) return;
    if (this.#early.length === 0) {
      this.#early = null;
      return;
    }
    // Chunks that arrive before this runs join #early, so order is kept.
    queueMicrotask(() => {
      const early = this.#early ?? [];
      for (let i = 0; i < early.length && !this.#destroyed; i++) this.#call(this.#dataHandler!, early[i]!);
      this.#early = null;
    });
  }

  onClose(handler: () => void): void {
    this.#closeHandler = handler;
    if (this.#closeFired) queueMicrotask(handler);
  }

  onDrain(handler: () => void): void {
    this.#drainHandler = handler;
  }

  // --- called by the shared Bun handlers ---

  handleData(chunk: Uint8Array): void {
    if (this.#destroyed) return;
    if (this.#early) this.#early.push(chunk);
    else this.#call(this.#dataHandler!, chunk);
  }

  handleDrain(): void {
    this.#pump();
  }

  handleClosed(): void {
    clearTimeout(this.#endTimer);
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#pending = null;
    if (this.#closeFired) return;
    this.#closeFired = true;
    if (this.#closeHandler) this.#call(this.#closeHandler);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    // With a write pending, the kernel is full: `drain` calls #pump.
    if (this.#pending === null) this.#pump();
  };

  /** Hands pending, then queued, bytes to the kernel until it stops taking them. */
  #pump(): void {
    if (this.#closed) return;
    for (;;) {
      if (this.#pending === null) {
        if (this.#queue.length === 0) break;
        this.#pending = this.#queue.length === 1 ? this.#queue[0]! : concat(this.#queue, this.#queued);
        this.#queue = [];
        this.#queued = 0;
      }
      const n = this.#sock.write(this.#pending);
      if (n < 0) return; // closed: `close` follows
      if (n < this.#pending.length) {
        this.#pending = this.#pending.subarray(n);
        return;
      }
      this.#pending = null;
    }
    if (this.#ending) {
      this.#sock.end();
      return;
    }
    if (this.#owing) {
      this.#owing = false;
      if (this.#drainHandler) this.#call(this.#drainHandler);
    }
  }

  /** A handler that throws takes down its own connection, not the process. */
  #call<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
    try {
      fn(...args);
    } catch (err) {
      console.error('fishchat: a TCP socket handler threw; closing that connection:', err);
      this.destroy();
    }
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
      // The peer closed its side: flush ours and close, as Node does by default.
      raw.data?.end();
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

export async function connectTcp(host: string, port: number): Promise<TcpSocket> {
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
