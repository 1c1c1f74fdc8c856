/**
 * The runtime facade the kernel and the CLI run guests through: kind detection, caches of compiled modules and
 * prepared components, and `createWasmHost`.
 *
 * @packageDocumentation
 */
export { COMPONENT_STDIN_MAX_BYTES, createWasmHost } from './host.js';
export type { WasmComponentOptions, WasmHost, WasmHostOptions, WasmRunOutcome, WasmRunSpec, WasmStdio } from './host.js';
export { ComponentModuleCache, ModuleCache, compileLimited, prepareComponent } from './cache.js';
export type { LimitedCompiledModule, ModuleCacheStats, PreparedComponent } from './cache.js';
export { defaultComponentCacheDir } from './cachedir.js';
export { detectWasmKind } from './detect.js';
export type { WasmKind } from './detect.js';
export { pullFrom } from './stdin.js';
export type { StreamPuller } from './stdin.js';
