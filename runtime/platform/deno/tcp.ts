/**
 * TCP on Deno: Deno implements node:net, so the Node adapter serves as is
 * (docs/architecture.md "Runtimes": node:net on Node and Deno).
 */
export { connectTcp, listenTcp } from '../node/tcp.js';
