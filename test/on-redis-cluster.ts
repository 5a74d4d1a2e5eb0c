/**
 * `npm run test:redis-cluster`: the protocol suites (the ones `test:redis`
 * runs on a single Redis) on a private Redis Cluster of 3 masters, each with
 * a replica, started here on free ports and stopped by PID afterwards. The
 * suites' in-process roles then use the Cluster store and bus (sharded
 * pub/sub) through FISHCHAT_TEST_REDIS=redis://…?cluster=1.
 * Skipped, saying so, when redis-server is not on PATH.
 */
import { spawn } from 'node:child_process';
import { available, RedisCluster } from './helpers/redis-server.js';

const SUITES = process.argv.slice(2);
if (SUITES.length === 0) {
  process.stderr.write('usage: on-redis-cluster.ts TEST_FILE...\n');
  process.exit(2);
}
if (!available()) {
  process.stdout.write('test:redis-cluster skipped: redis-server is not on PATH\n');
  process.exit(0);
}

const cluster = await RedisCluster.start({ replicas: 1 });
let code = 1;
try {
  process.stdout.write(`Redis Cluster up: ${cluster.clusterUrl} (3 masters, 3 replicas)\n`);
  code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...SUITES],
      { stdio: 'inherit', env: { ...process.env, FISHCHAT_TEST_REDIS: cluster.clusterUrl } },
    );
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
} finally {
  await cluster.destroy();
}
process.exit(code);
