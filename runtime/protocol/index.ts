export * from './errors.js';
export * from './types.js';
export * from './token.js';
export * from './cbor.js';
export * from './head.js';
export * from './frame.js';
export * from './validate.js';
export * from './decode.js';
