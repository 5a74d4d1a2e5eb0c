/** Cluster directories: configuration, secret, `init`, the embedded launcher, the Redis modes and `up`. */
export * from './config.js';
export * from './defaults.js';
export { checkRedisUrl, ConfigError } from './checks.js';
export * from './load.js';
export * from './run-file.js';
export * from './secret.js';
export * from './init.js';
export * from './embedded.js';
export * from './backends.js';
export * from './supervisor.js';
export * from './managed-redis.js';
export * from './detach.js';
export * from './signals.js';
export * from './up.js';
export { ROLE_STOP_TIMEOUT_MS, serveRole, ServeUsageError, type ServeRoleOptions, type ServedRole } from './serve.js';
export { formatAddresses, parseReadyLine } from './ready-line.js';
export { bindAddress, dialAddress, isLoopback, parseHostPort } from '../platform/address.js';
export { ROLE_NAMES, type Logger, type RoleContext, type RoleHandle, type RoleName } from '../contract/context.js';
