/**
 * `fishchat`: the runtime as a library, to embed a server in an application.
 * Either start a whole cluster in this process:
 *
 *     const cluster = await startEmbedded(await loadCluster(dir), { log });
 *
 * or open a store and a bus and start roles on them (startRole with a
 * makeRoleContext). The client library is `fishchat/client`.
 *
 * Only entry points are re-exported here (contract/index, cluster/start-role, store/index, bus/bus,
 * bus/memory, platform/index, cluster/index, protocol/index), so files can
 * move behind them. The Redis bus and store are reached through openBackends,
 * which loads ioredis only when the cluster has a Redis URL.
 */
export * from './contract/index.js';
export * from './cluster/start-role.js';
export * from './store/index.js';
export * from './bus/bus.js';
export * from './bus/memory.js';
export { AddressInUseError, detectRuntime, getPlatform } from './platform/index.js';
export type {
  ConnectTcpOptions,
  HttpListener,
  ListenTcpOptions,
  Platform,
  ServeHttpOptions,
  SqliteDatabase,
  SqliteStatement,
  TcpListener,
  TcpSocket,
} from './platform/index.js';
export {
  AlreadyRunningError,
  ConfigError,
  ensureSecret,
  generateSecret,
  initCluster,
  loadCluster,
  loadRoleFile,
  NoRedisError,
  openBackends,
  serveRole,
  startEmbedded,
  type BackendKind,
  type BackendOptions,
  type Backends,
  type ClusterConfig,
  type EmbeddedCluster,
  type EmbeddedOptions,
  type InitOptions,
  type InitResult,
  type LoadOverrides,
  type ServeRoleOptions,
  type ServedRole,
} from './cluster/index.js';
export { signToken, verifyToken, type ErrorCode, type TokenClaims } from './protocol/index.js';
