export { ThreadLink, type PortLike } from './link.js';
export { createPortStore, STORE_CALL_PREFIX, type CallLink } from './client.js';
export { storeCall } from './server.js';
