import { ForgeError, isForgeError } from '@forgeone/common';
import { Preview1Exit, createPreview1Host, type Preview1Options } from './preview1.js';

/** What a preview1 run ended with. */
export interface Preview1Result {
  /** The guest's exit code: the `proc_exit` argument, or 0 when `_start` returned. */
  readonly exitCode: number;
}

/**
 * Turn what a guest's call threw into a ForgeError.
 * @param error - anything thrown out of a guest export
 * @returns `WASM_TRAP` naming the trap for WebAssembly traps and stack overflow; ForgeErrors unchanged;
 *   `CONTAINER_FAILED` otherwise
 */
export function trapError(error: unknown): ForgeError {
  if (isForgeError(error)) return error;
  if (error instanceof WebAssembly.RuntimeError) {
    return new ForgeError('WASM_TRAP', `guest trapped: ${error.message}`, { cause: error, details: { trap: error.message } });
  }
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return new ForgeError('WASM_TRAP', 'guest trapped: stack overflow', { cause: error, details: { trap: 'stack overflow' } });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ForgeError('CONTAINER_FAILED', `guest failed: ${message}`, { cause: error });
}

/**
 * Run a WASI preview1 command module on ForgeOne's host: compile (when given bytes), check every import
 * is a preview1 function the host has, instantiate, call `_start`, and map `proc_exit` to the exit code.
 * @param module - a compiled module or its bytes
 * @param options - the host's options ({@link createPreview1Host}); the gate is required
 * @returns the exit code
 * @throws ForgeError `WASM_INVALID` (not WebAssembly), `WASM_LINK_ERROR` (imports the host cannot supply,
 *   named in the message and `details.imports`), `WASM_EXPORT_MISSING` (no `_start`), `WASM_TRAP` (the
 *   guest trapped; the message names the trap), `INVALID_ARGUMENT` / `IO_ERROR` from the host's options
 */
export async function runPreview1(module: WebAssembly.Module | Uint8Array, options: Preview1Options): Promise<Preview1Result> {
  let mod: WebAssembly.Module;
  if (module instanceof WebAssembly.Module) mod = module;
  else {
    try {
      mod = await WebAssembly.compile(module as Uint8Array<ArrayBuffer>);
    } catch (cause) {
      throw new ForgeError('WASM_INVALID', `not a valid WebAssembly module: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  }
  const host = createPreview1Host(options);
  try {
    const fns = host.imports.wasi_snapshot_preview1;
    const unknown = WebAssembly.Module.imports(mod)
      .filter((i) => i.module !== 'wasi_snapshot_preview1' || i.kind !== 'function' || !Object.hasOwn(fns, i.name))
      .map((i) => `${i.module}.${i.name} (${i.kind})`);
    if (unknown.length > 0) {
      throw new ForgeError('WASM_LINK_ERROR', `the module imports what the preview1 host does not supply: ${unknown.join(', ')}`, { details: { imports: unknown } });
    }
    const start = WebAssembly.Module.exports(mod).find((e) => e.name === '_start');
    if (start?.kind !== 'function') throw new ForgeError('WASM_EXPORT_MISSING', 'the module does not export a _start function');
    let instance: WebAssembly.Instance;
    try {
      instance = await WebAssembly.instantiate(mod, host.imports as unknown as WebAssembly.Imports);
    } catch (cause) {
      if (cause instanceof WebAssembly.LinkError) {
        throw new ForgeError('WASM_LINK_ERROR', `cannot link the module: ${cause.message}`, { cause });
      }
      if (cause instanceof Preview1Exit) return { exitCode: cause.code };
      throw trapError(cause);
    }
    host.bind(instance);
    try {
      (instance.exports['_start'] as () => void)();
      return { exitCode: 0 };
    } catch (e) {
      if (e instanceof Preview1Exit) return { exitCode: e.code };
      throw trapError(e);
    }
  } finally {
    host.dispose();
  }
}
