/**
 * A worker thread of an embedded cluster (./embedded.ts, threads > 1): runs
 * msg_servers with a Bus and a Store that forward, over the thread link, to
 * the main thread's in-process bus and SQLite store. The msg_servers do not
 * know: they get a Bus and a Store.
 *
 * Events to the main thread: log (level, line, role id), ready (id,
 * addresses), failed (error), stopped (error or undefined). From it: stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PortBus, BUS_DELIVER } from '../bus/port.js';
import { makeRoleContext, type MsgServerConfig, type RoleHandle } from '../contract/index.js';
import { getPlatform } from '../platform/index.js';
import { createPortStore, ThreadLink, type PortLike } from '../store/port/index.js';
import type { Store } from '../store/store.js';
import type { ClusterConfig } from './config.js';
import { roleLogger } from './role-logger.js';
import { startRole } from './start-role.js';

/** What the main thread hands a worker. */
export interface ThreadData {
  cluster: string;
  settings: ClusterConfig['settings'];
  auth: { mode: ClusterConfig['auth']; secret: string };
  storeKind: Store['kind'];
  msgServers: MsgServerConfig[];
}

async function main(port: PortLike, data: ThreadData): Promise<void> {
  const link = new ThreadLink(port);
  const bus = new PortBus(link);
  const store = createPortStore(link, data.storeKind);
  const handles: RoleHandle[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      let error: string | undefined;
      // the reverse of the start order, as the main thread stops a group
      for (const h of [...handles].reverse()) {
        try {
          await h.stop();
        } catch (err) {
          error ??= `${h.role} ${h.id} did not stop cleanly: ${(err as Error)?.message ?? String(err)}`;
        }
      }
      await bus.close();
      await store.close();
      link.event('stopped', error);
      link.close();
    })());
  link.onEvent = (kind, a, b) => {
    if (kind === BUS_DELIVER) bus.deliver(a as string, b as Uint8Array);
    else if (kind === 'stop') void stop();
  };

  const platform = await getPlatform();
  for (const c of data.msgServers) {
    const log = roleLogger('msg_server', c.id, (_role, id, line) => link.event('log', id, line));
    const ctx = makeRoleContext({
      cluster: data.cluster,
      settings: data.settings,
      auth: data.auth,
      bus,
      store,
      platform,
      log,
    });
    let handle: RoleHandle;
    try {
      handle = await startRole('msg_server', ctx, c);
    } catch (err) {
      const e = err as Error;
      link.event('failed', { message: e?.message ?? String(err), name: e?.name ?? 'Error' });
      // what started already stops; then the main thread ends this thread
      await stop();
      return;
    }
    handles.push(handle);
    link.event('ready', handle.id, { ...handle.addresses });
  }
}

if (parentPort !== null) await main(parentPort as unknown as PortLike, workerData as ThreadData);
