/** Cluster directories: configuration, secret, `init`, and the embedded launcher. */
export * from './config.js';
export * from './load.js';
export * from './secret.js';
export * from './init.js';
export * from './embedded.js';
export type { Logger, RoleContext, RoleHandle } from './role.js';
