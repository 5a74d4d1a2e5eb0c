/** A Redis the tests share (127.0.0.1:6379 unless told otherwise): is it there? */
import { Redis } from 'ioredis';

/** Does a Redis answer PING at `url`? One try, no retries, at most 2 s to connect. */
export async function redisReachable(url: string): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
