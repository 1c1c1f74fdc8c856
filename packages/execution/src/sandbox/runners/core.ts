import { ForgeError } from '@forgeone/common';
import { inspectModule, limitMemoryDetailed, memoryExceeded } from '../../binary/index.js';
import { createSnapshotter, instantiateWithSnapshot, prepareSnapshotModule, type SnapshotModuleInstance } from '../../snapshot/index.js';
import type { RunnerEnv, RunnerModule } from '../types.js';

/** Data of the built-in `builtin:core` runner. */
export interface CoreRunnerData {
  /** A core WebAssembly module. */
  readonly module: Uint8Array;
  /** The export `run` calls; default `_start`. Ignored when `serve` is true. */
  readonly entry?: string;
  /** Numeric arguments for the entry. */
  readonly args?: readonly number[];
  /** Serve repeated calls instead of running one entry. */
  readonly serve?: boolean;
  /**
   * With `serve`: prepare the module for snapshots (its state exported, see docs/snapshots.md), so
   * `container.snapshot()` can capture it between calls. Implied when the container starts from a snapshot.
   */
  readonly snapshots?: boolean;
}

/** Result code a gated import returns when the gate refuses the call. */
export const CORE_REFUSED = -1;
/** Result code `env.kv_get` returns for a missing key. */
export const CORE_NOT_FOUND = -2;

/**
 * The built-in runner for tests and simple guests: instantiates a raw core module (memory limited with
 * `limitMemory`) with a few host imports in module `env`, each crossing the container's gate:
 *
 * - `tick() -> i32` — `forgeone:time/now`; 0, or -1 when refused
 * - `now() -> f64` — `wasi:clocks/wall-clock`; ms since the epoch, or -1 when refused (recorded as a result)
 * - `log(ptr, len) -> i32` — `forgeone:log/write` to stdout; bytes written, or -1 (refused or output budget spent)
 * - `kv_get(keyPtr, keyLen, outPtr, outCap) -> i32` — `forgeone:kv/get` through the bridge handler `kv.get`;
 *   the value's length, -2 when missing, -1 when refused
 * - `memory` — supplied (limited) when the module imports it
 *
 * A refused call of a terminated container unwinds the guest with `CONTAINER_TERMINATED`. A trap after a
 * refused `memory.grow` ends with `SANDBOX_MEMORY_EXCEEDED`.
 *
 * Serving with `snapshots` (or started from a snapshot), the module is prepared for snapshots: the instance
 * can be captured between calls and a snapshot of the same module restored into it before the first call.
 * A module that imports its memory cannot be (the memory is the host's, no snapshot holds it).
 * @param env - the runner environment
 * @returns the entry's value, or a serving instance
 * @throws ForgeError `WASM_INVALID`, `WASM_LINK_ERROR`, `WASM_EXPORT_MISSING`, `SANDBOX_MEMORY_EXCEEDED`,
 *   `WASM_TRAP`; `SNAPSHOT_UNSUPPORTED` (a snapshot without `serve`, or of a module importing its memory),
 *   `SNAPSHOT_MODULE_MISMATCH` (a snapshot of another module)
 */
export async function runCore(env: RunnerEnv): Promise<unknown> {
  const data = env.data as CoreRunnerData;
  if (typeof data !== 'object' || data === null || !(data.module instanceof Uint8Array)) {
    throw new ForgeError('INVALID_ARGUMENT', 'builtin:core needs data.module (Uint8Array)');
  }
  const snapshots = env.snapshot !== undefined || (data.serve === true && data.snapshots === true);
  if (snapshots && data.serve !== true) throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'builtin:core restores a snapshot only into a serving container (data.serve)');
  const prepared = snapshots ? await prepareSnapshotModule(data.module, { maxPages: env.maxMemoryPages }) : undefined;
  const bytes = prepared?.bytes ?? limitMemoryDetailed(data.module, env.maxMemoryPages).bytes;
  const info = inspectModule(bytes);
  if (prepared !== undefined && info.memories.some((m) => m.imported)) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'the module imports its memory: the host supplies it and no snapshot holds it');
  }
  const module = prepared?.module ?? (await WebAssembly.compile(bytes as BufferSource));

  const gate = env.createGate();
  const ids = {
    tick: env.syscalls.intern('forgeone:time/now'),
    now: env.syscalls.intern('wasi:clocks/wall-clock'),
    log: env.syscalls.intern('forgeone:log/write'),
    kv: env.syscalls.intern('forgeone:kv/get'),
  };
  const clockBytes = new Uint8Array(8);
  const clockView = new DataView(clockBytes.buffer);
  let memory: WebAssembly.Memory | undefined;
  const mem = (): WebAssembly.Memory => {
    if (memory === undefined) throw new ForgeError('WASM_LINK_ERROR', 'the guest has no memory');
    return memory;
  };
  const refused = (): number => {
    gate.exit(CORE_REFUSED);
    if (gate.refusal === 'CONTAINER_TERMINATED') throw new ForgeError('CONTAINER_TERMINATED', 'the container was terminated');
    return CORE_REFUSED;
  };
  const copyOut = (ptr: number, len: number): Uint8Array => {
    const buf = new Uint8Array(mem().buffer);
    if (ptr < 0 || len < 0 || ptr + len > buf.length) throw new WebAssembly.RuntimeError('memory access out of bounds (host import)');
    return buf.slice(ptr, ptr + len);
  };

  const importedMemory = info.memories.find((m) => m.imported);
  const envImports: Record<string, WebAssembly.ExportValue> = {
    tick: (): number => {
      if (!gate.enter(ids.tick)) return refused();
      gate.exit(0);
      return 0;
    },
    now: (): number => {
      if (!gate.enter(ids.now)) return refused();
      const t = Date.now();
      clockView.setFloat64(0, t, true);
      gate.exit(0, clockBytes);
      return t;
    },
    log: (ptr: number, len: number): number => {
      const bytes = copyOut(ptr >>> 0, len >>> 0);
      gate.args.size = bytes.length;
      if (!gate.enter(ids.log)) return refused();
      const n = env.stdout.write(bytes);
      gate.exit(n < 0 ? 1 : 0);
      return n;
    },
    kv_get: (keyPtr: number, keyLen: number, outPtr: number, outCap: number): number => {
      const key = new TextDecoder().decode(copyOut(keyPtr >>> 0, keyLen >>> 0));
      gate.args.detail = key;
      if (!gate.enter(ids.kv)) return refused();
      let value: unknown;
      try {
        value = env.bridge.call('kv.get', key);
      } catch (e) {
        gate.exit(1);
        throw e;
      }
      if (value === null || value === undefined) {
        gate.exit(CORE_NOT_FOUND);
        return CORE_NOT_FOUND;
      }
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value instanceof Uint8Array ? value : new TextEncoder().encode(JSON.stringify(value));
      const out = new Uint8Array(mem().buffer);
      const n = Math.min(bytes.length, outCap >>> 0);
      if ((outPtr >>> 0) + n > out.length) throw new WebAssembly.RuntimeError('memory access out of bounds (host import)');
      out.set(bytes.subarray(0, n), outPtr >>> 0);
      gate.exit(0, bytes);
      return bytes.length;
    },
  };
  if (importedMemory !== undefined) {
    memory = new WebAssembly.Memory(
      importedMemory.max === undefined ? { initial: importedMemory.min } : { initial: importedMemory.min, maximum: importedMemory.max },
    );
    envImports.memory = memory;
  }
  let target: SnapshotModuleInstance | undefined;
  let instance: WebAssembly.Instance;
  if (prepared !== undefined) {
    // Restored (when starting from a snapshot) before any call; the module hash is checked first.
    target = instantiateWithSnapshot(prepared, { env: envImports }, env.snapshot === undefined ? {} : { snapshot: env.snapshot });
    instance = target.instance;
  } else {
    instance = await WebAssembly.instantiate(module, { env: envImports });
  }
  const exported = instance.exports.memory;
  if (memory === undefined && exported instanceof WebAssembly.Memory) memory = exported;
  const report = (): void => {
    if (memory !== undefined) env.reportMemory(memory.buffer.byteLength / 65536);
  };
  report();

  const invoke = (name: string, args: readonly unknown[]): unknown => {
    const f = instance.exports[name];
    if (typeof f !== 'function') throw new ForgeError('WASM_EXPORT_MISSING', `the guest exports no function ${JSON.stringify(name)}`, { details: { export: name } });
    try {
      return env.guest(() => (f as (...a: unknown[]) => unknown)(...args));
    } catch (e) {
      const requested = memoryExceeded(instance.exports);
      if (e instanceof WebAssembly.RuntimeError && requested > 0) {
        throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest trapped (${e.message}) after memory.grow of ${requested} pages was refused; the limit is ${env.maxMemoryPages} pages`, {
          cause: e,
          details: { requestedPages: requested, limitPages: env.maxMemoryPages, trap: e.message },
        });
      }
      throw e;
    } finally {
      report();
    }
  };

  if (data.serve === true) {
    const snapshotTarget = target;
    return env.serve({
      call: (name, input) => invoke(name, Array.isArray(input) ? input : input === undefined ? [] : [input]),
      ...(snapshotTarget === undefined ? {} : { snapshot: () => createSnapshotter().capture(snapshotTarget, { containerId: env.id }) }),
    });
  }
  return invoke(data.entry ?? '_start', data.args ?? []);
}

/** The `builtin:core` runner module. */
export const coreRunner: RunnerModule = { run: runCore, snapshots: true };
