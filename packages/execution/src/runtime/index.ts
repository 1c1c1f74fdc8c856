/**
 * The runtime facade the kernel and the CLI run guests through: kind detection, a compiled-module cache and
 * `createWasmHost`.
 *
 * @packageDocumentation
 */
export { createWasmHost } from './host.js';
export type { WasmHost, WasmHostOptions, WasmRunOutcome, WasmRunSpec, WasmStdio } from './host.js';
export { ModuleCache, compileLimited } from './cache.js';
export type { LimitedCompiledModule, ModuleCacheStats } from './cache.js';
export { detectWasmKind } from './detect.js';
export type { WasmKind } from './detect.js';
export { pullFrom } from './stdin.js';
export type { StreamPuller } from './stdin.js';
