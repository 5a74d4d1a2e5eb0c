export * from './store.js';
export * from './sqlite/index.js';
