/**
 * The Bus: how roles push to each other (docs/architecture.md "Internal channels").
 * It only carries pushes and events; a push may be lost or repeated without
 * harm, because the Store is the source of truth.
 * Implementations: in-process (./memory.ts) and Redis pub/sub.
 */
export type BusHandler = (payload: Uint8Array) => void;

export interface Bus {
  /** Publishes a CBOR payload; implementations may batch many per flush. */
  publish(channel: string, payload: Uint8Array): void;
  /** Subscribes; resolves once the subscription is active. Returns the unsubscribe function. */
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>;
  /** Called after the bus lost its subscriptions and got them back (a msg_server then re-checks its sessions). */
  onResubscribe(handler: () => void): void;
  close(): Promise<void>;
}

/** Hands a payload to each handler of a channel; a handler's fault goes to `onFault` and does not stop delivery to the others. */
export function callHandlers(
  handlers: Iterable<BusHandler>,
  payload: Uint8Array,
  onFault: (err: unknown) => void,
): void {
  for (const h of handlers) {
    try {
      h(payload);
    } catch (err) {
      onFault(err);
    }
  }
}

/** The prefix of a cluster's bus channels and store keys: `fishchat:<cluster>:`. */
export function clusterPrefix(cluster: string): string {
  return `fishchat:${cluster}:`;
}

/** Channel names exactly as docs/architecture.md, under the cluster's prefix. */
export function channels(cluster: string) {
  const p = clusterPrefix(cluster);
  return {
    clientStatus: `${p}/sysctrl/client-status`,
    topicStatus: `${p}/sysctrl/topic-status`,
    topicSync: `${p}/sysctrl/topic-sync`,
    deliver: (serverId: string) => `${p}/sysctrl/deliver/${serverId}`,
    monitor: `${p}/sysctrl/monitor`,
  };
}
export type Channels = ReturnType<typeof channels>;
