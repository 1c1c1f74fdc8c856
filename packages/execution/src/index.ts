/**
 * `@forgeone/execution`: runs WebAssembly behind the gate.
 *
 * @packageDocumentation
 */
export * from './gate/index.js';
export * from './capabilities.js';
export * from './sandbox/index.js';
export * from './binary/index.js';
export * from './fs/index.js';
export * from './wasi/index.js';
export * from './component/index.js';
export * from './runtime/index.js';
export * from './replay/index.js';
export * from './snapshot/index.js';
