/**
 * The role contract: what every role gets (context.ts), what it is configured
 * with and the one set of defaults (config.ts), and how it opens its listeners
 * (listen.ts). The roles (runtime/roles/) and the launcher (runtime/cluster/)
 * both build on it; no role imports another.
 */
export * from './config.js';
export * from './context.js';
export * from './listen.js';
