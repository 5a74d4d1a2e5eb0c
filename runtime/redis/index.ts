export * from './connect.js';
export * from './prefix.js';
