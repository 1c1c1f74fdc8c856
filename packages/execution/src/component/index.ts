/**
 * WebAssembly components behind the gate: loading (jco transpile with a cache), the ABI adapter (WASI 0.2
 * and `forgeone:host`), and running a plugin's `run` export.
 *
 * @packageDocumentation
 */
export * from './loader.js';
export * from './services.js';
export * from './host.js';
export * from './io.js';
export * from './wasi.js';
export * from './filesystem.js';
export * from './http.js';
export * from './forgeone.js';
export * from './deny.js';
export * from './adapter.js';
export * from './run.js';
export * from './handlers.js';
export * from './runner.js';
export * from './net.js';
export * from './lower.js';
