export { openRedisStore, type RedisStoreOptions } from './open.js';
export { RedisStore } from './store.js';
