import { tmpdir } from 'node:os';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable, createIdentity, type IdentityInit } from '@forgeone/common';
import { compilePolicy, type Decision, type Policy } from '@forgeone/trust';
import { limitMemoryDetailed, memoryExceeded } from '../../binary/index.js';
import { capabilityPolicy, intersectPolicies, type Capabilities } from '../../capabilities.js';
import { Gate, RingRecorder, createControl, type GatePolicy } from '../../gate/index.js';
import { createSnapshotter, prepareSnapshotModule, type SnapshotModule, type SnapshotTarget } from '../../snapshot/index.js';
import { createOutputBudget, createOutputSink } from '../output.js';
import { DEFAULT_LIMITS } from '../types.js';
import { Preview1Exit, createPreview1Host, trapError, type Preview1Options, type StdinSource } from '../../wasi/index.js';
import type { RunnerEnv, RunnerModule } from '../types.js';

/** The bridge method the `builtin:wasi-p1` runner calls to pull standard input from the kernel (`stdin: 'bridge'`). */
export const STDIN_BRIDGE_METHOD = 'stdin.read';

/** Data of the built-in `builtin:wasi-p1` runner. */
export interface WasiP1RunnerData {
  /**
   * The guest: a WASI preview1 command module's bytes (the runner writes the memory limit into them), or a
   * module compiled from bytes already limited with `limitMemory` to at most the container's
   * `maxMemoryPages` — say which limit in `limitPages` (the runtime's module cache does this).
   */
  readonly module: Uint8Array | WebAssembly.Module;
  /** With a compiled `module`: the page limit it was rewritten with. Refused when above the container's. */
  readonly limitPages?: number;
  /** What the guest may use: args, env, dirs (preopens), net. Nothing else is granted. */
  readonly capabilities?: Capabilities;
  /**
   * Standard input: bytes or text given whole, or `'bridge'` to pull it live from the kernel through the
   * bridge handler {@link STDIN_BRIDGE_METHOD} (`(max: number) => Promise<Uint8Array | null>`; null or an
   * empty array is the end). Default empty.
   */
  readonly stdin?: Uint8Array | string | 'bridge';
  /** The identity the capability policy is compiled for; default subject `capabilities`. */
  readonly identity?: IdentityInit;
  /**
   * Serve calls of the module's exports (a reactor: `_initialize` runs once, then `container.call(name,
   * numbers)`) instead of running `_start` once. Needs the module's bytes.
   */
  readonly serve?: boolean;
  /**
   * With `serve`: prepare the module for snapshots (its state exported), so `container.snapshot()` can
   * capture it between calls. Implied when the container starts from a snapshot (restored after the host is
   * bound; `_initialize` is not run again).
   */
  readonly snapshots?: boolean;
}

/** What the `builtin:wasi-p1` runner returns. */
export interface WasiP1Result {
  /** The guest's exit code: the `proc_exit` argument (u32), or 0 when `_start` returned. */
  readonly exitCode: number;
}

function checkData(data: unknown): WasiP1RunnerData {
  if (typeof data !== 'object' || data === null) throw new ForgeError('INVALID_ARGUMENT', 'builtin:wasi-p1 needs data { module, capabilities? }');
  const d = data as WasiP1RunnerData;
  if (!(d.module instanceof Uint8Array) && !(d.module instanceof WebAssembly.Module)) {
    throw new ForgeError('INVALID_ARGUMENT', 'builtin:wasi-p1 needs data.module (Uint8Array or WebAssembly.Module)');
  }
  if (d.stdin !== undefined && typeof d.stdin !== 'string' && !(d.stdin instanceof Uint8Array)) {
    throw new ForgeError('INVALID_ARGUMENT', "builtin:wasi-p1 data.stdin must be bytes, text or 'bridge'");
  }
  return d;
}

/**
 * {@link capabilityPolicy}, plus: an environment given explicitly but empty (`env: {}`) is granted as an
 * empty environment — the guest sees zero variables instead of `EACCES` (wasi-libc ends a program whose
 * `environ_sizes_get` fails). Same for an explicitly empty argument list.
 * @param caps - the capabilities
 * @returns the policy document
 */
function grantedPolicy(caps: Capabilities): Policy {
  const doc = capabilityPolicy(caps);
  const extra: string[] = [];
  if (caps.env !== undefined && Object.keys(caps.env).length === 0) extra.push('wasi:cli/env');
  if (caps.args !== undefined && caps.args.length === 0) extra.push('wasi:cli/args');
  if (extra.length === 0) return doc;
  const root = doc.nodes[doc.root]!;
  const rules = [...root.rules, { id: 'empty-lists', action: 'allow', syscalls: extra } as (typeof root.rules)[number]];
  return { ...doc, nodes: { ...doc.nodes, [doc.root]: { ...root, rules } } };
}

/**
 * The built-in runner for WASI preview1 command modules on ForgeOne's preview1 host (`createPreview1Host`):
 *
 * - memory: the container's `maxMemoryBytes` is written into the module (`limitMemory`) before it is
 *   compiled; a trap after a refused `memory.grow` ends with `SANDBOX_MEMORY_EXCEEDED`;
 * - policy: every call crosses the container's gate, deciding with the intersection of the kernel's policy
 *   and the policy of `data.capabilities` (`capabilityPolicy`) — or the capability policy alone when the
 *   spec gave no kernel policy; so the guest gets exactly its capabilities, and the kernel can narrow them;
 * - stdout/stderr go through the sandbox's counting sinks (streamed to the kernel's `onOutput` as written;
 *   the host cuts output at `maxOutputBytes` and then fails writes with `ENOSPC`); `maxOpenFiles` bounds the
 *   guest's descriptors (`EMFILE`);
 * - `_start` runs under the CPU watchdog; the result is `{ exitCode }`;
 * - with `serve`, the module is a reactor: `_initialize` (if exported) runs once, then each
 *   `container.call(name, numbers)` calls an export; with `snapshots` (or from a snapshot) its memories and
 *   globals can be captured between calls and restored into a new container (the preview1 host's own state
 *   — open descriptors, stdin position — is not part of a snapshot).
 *
 * @param env - the runner environment
 * @returns the exit code, or a serving instance
 * @throws ForgeError `WASM_INVALID`, `WASM_LINK_ERROR` (imports other than preview1 functions),
 *   `WASM_EXPORT_MISSING` (no `_start`), `SANDBOX_MEMORY_EXCEEDED`, `WASM_TRAP` naming the trap,
 *   `INVALID_ARGUMENT` for bad data; `SNAPSHOT_UNSUPPORTED` (a snapshot without `serve`, or with a compiled
 *   module), `SNAPSHOT_MODULE_MISMATCH` (a snapshot of another module)
 */
export async function runWasiP1(env: RunnerEnv): Promise<unknown> {
  const data = checkData(env.data);
  const snapshots = env.snapshot !== undefined || (data.serve === true && data.snapshots === true);
  if (snapshots && (data.serve !== true || !(data.module instanceof Uint8Array))) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'builtin:wasi-p1 takes snapshots of a serving container (data.serve) given the module\'s bytes');
  }
  let prepared: SnapshotModule | undefined;
  let module: WebAssembly.Module;
  if (snapshots) {
    prepared = await prepareSnapshotModule(data.module as Uint8Array, { maxPages: env.maxMemoryPages });
    module = prepared.module;
  } else if (data.module instanceof WebAssembly.Module) {
    const pages = data.limitPages;
    if (typeof pages !== 'number' || !(pages <= env.maxMemoryPages)) {
      throw new ForgeError('INVALID_ARGUMENT', `a compiled module must be limited to at most ${env.maxMemoryPages} pages (limitPages ${String(pages)})`);
    }
    module = data.module;
  } else {
    const limited = limitMemoryDetailed(data.module, env.maxMemoryPages);
    try {
      module = await WebAssembly.compile(limited.bytes as Uint8Array<ArrayBuffer>);
    } catch (cause) {
      throw new ForgeError('WASM_INVALID', `not a valid WebAssembly module: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  }

  const caps: Capabilities = data.capabilities ?? {};
  const capProgram = compilePolicy(grantedPolicy(caps), { identity: createIdentity(data.identity ?? { subject: 'capabilities' }), syscalls: env.syscalls });
  const policy: GatePolicy = env.kernelPolicy ? intersectPolicies(env.policy, capProgram) : { mode: 'enforce', decide: (id, ctx) => capProgram.decide(id, ctx) };
  const gate = env.createGate({ policy });

  let stdin: StdinSource | undefined;
  if (data.stdin === 'bridge') {
    stdin = (max: number): Uint8Array | null => {
      // Waiting for input is not a hang: no timeout (the guest's clock is paused meanwhile).
      const v = env.bridge.call(STDIN_BRIDGE_METHOD, max, Number.POSITIVE_INFINITY);
      return v instanceof Uint8Array && v.length > 0 ? (v.length > max ? v.subarray(0, max) : v) : null;
    };
  } else if (data.stdin !== undefined) stdin = data.stdin;

  const options: Preview1Options = {
    gate,
    stdout: (b) => void env.stdout.write(b),
    stderr: (b) => void env.stderr.write(b),
    maxOutputBytes: env.limits.maxOutputBytes,
    maxOpenFiles: env.limits.maxOpenFiles,
    ...(caps.args === undefined ? {} : { args: caps.args }),
    ...(caps.env === undefined ? {} : { env: caps.env }),
    ...(caps.dirs === undefined ? {} : { preopens: caps.dirs.map((d) => ({ guestPath: d.guestPath, hostPath: d.hostPath, ...(d.readOnly === true ? { readOnly: true } : {}) })) }),
    ...(stdin === undefined ? {} : { stdin }),
  };
  const host = createPreview1Host(options);
  let serving = false;
  try {
    const fns = host.imports.wasi_snapshot_preview1;
    const unknown = WebAssembly.Module.imports(module)
      .filter((i) => i.module !== 'wasi_snapshot_preview1' || i.kind !== 'function' || !Object.hasOwn(fns, i.name))
      .map((i) => `${i.module}.${i.name} (${i.kind})`);
    if (unknown.length > 0) {
      throw new ForgeError('WASM_LINK_ERROR', `the module imports what the preview1 host does not supply: ${unknown.join(', ')}`, { details: { imports: unknown } });
    }
    const start = WebAssembly.Module.exports(module).find((e) => e.name === '_start');
    if (start?.kind !== 'function' && data.serve !== true) throw new ForgeError('WASM_EXPORT_MISSING', 'the module does not export a _start function', { details: { export: '_start' } });
    let instance: WebAssembly.Instance;
    try {
      // Instantiation runs the start function, if any: guest code, so it runs under the watchdog too.
      instance = env.guest(() => new WebAssembly.Instance(module, host.imports as unknown as WebAssembly.Imports));
    } catch (cause) {
      if (cause instanceof WebAssembly.LinkError) throw new ForgeError('WASM_LINK_ERROR', `cannot link the module: ${cause.message}`, { cause });
      if (cause instanceof Preview1Exit) return { exitCode: cause.code };
      if (cause instanceof RangeError && /memory/i.test(cause.message)) {
        throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest's memory could not be allocated: ${cause.message}`, { cause });
      }
      throw trapError(cause);
    }
    host.bind(instance);
    const memory = instance.exports['memory'];
    const report = (): void => {
      if (memory instanceof WebAssembly.Memory) env.reportMemory(memory.buffer.byteLength / 65536);
    };
    const failed = (e: unknown): never => {
      if (e instanceof Preview1Exit) throw new ForgeError('WASM_TRAP', `the guest called proc_exit(${e.code}) during a served call`, { details: { exitCode: e.code } });
      const requested = memoryExceeded(instance.exports);
      if (e instanceof WebAssembly.RuntimeError && requested > 0) {
        throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest trapped (${e.message}) after memory.grow of ${requested} pages was refused; the limit is ${env.maxMemoryPages} pages`, {
          cause: e,
          details: { requestedPages: requested, limitPages: env.maxMemoryPages, trap: e.message },
        });
      }
      throw trapError(e);
    };
    if (data.serve === true) {
      const target: SnapshotTarget | undefined =
        prepared === undefined ? undefined : { kind: 'module', moduleHash: prepared.moduleHash, instances: [{ moduleHash: prepared.moduleHash, instance, layout: prepared.layout }] };
      if (env.snapshot !== undefined) {
        if (env.snapshot.moduleHash !== prepared!.moduleHash) {
          throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of module ${env.snapshot.moduleHash}, not of ${prepared!.moduleHash}`, {
            details: { expected: prepared!.moduleHash, actual: env.snapshot.moduleHash },
          });
        }
        // After the host is bound; `_initialize` already ran in the snapshot's past.
        createSnapshotter().restore(target!, env.snapshot);
      } else if (typeof instance.exports['_initialize'] === 'function') {
        try {
          env.guest(() => (instance.exports['_initialize'] as () => void)());
        } catch (e) {
          failed(e);
        }
      }
      report();
      serving = true;
      return env.serve({
        call: (name, input) => {
          const f = instance.exports[name];
          if (typeof f !== 'function') throw new ForgeError('WASM_EXPORT_MISSING', `the guest exports no function ${JSON.stringify(name)}`, { details: { export: name } });
          const args = Array.isArray(input) ? (input as unknown[]) : input === undefined ? [] : [input];
          try {
            return env.guest(() => (f as (...a: unknown[]) => unknown)(...args));
          } catch (e) {
            return failed(e);
          } finally {
            report();
          }
        },
        close: () => {
          host.dispose();
          return null;
        },
        ...(target === undefined ? {} : { snapshot: () => createSnapshotter().capture(target, { containerId: env.id }) }),
      });
    }
    report();
    try {
      env.guest(() => (instance.exports['_start'] as () => void)());
      return { exitCode: 0 };
    } catch (e) {
      if (e instanceof Preview1Exit) return { exitCode: e.code };
      const requested = memoryExceeded(instance.exports);
      if (e instanceof WebAssembly.RuntimeError && requested > 0) {
        throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest trapped (${e.message}) after memory.grow of ${requested} pages was refused; the limit is ${env.maxMemoryPages} pages`, {
          cause: e,
          details: { requestedPages: requested, limitPages: env.maxMemoryPages, trap: e.message },
        });
      }
      throw trapError(e);
    } finally {
      report();
    }
  } finally {
    if (!serving) host.dispose();
  }
}

// A tiny preview1 guest (args_sizes_get, fd_write, memory.grow, proc_exit) the warm-up runs.
const WARM_GUEST =
  'AGFzbQEAAAABFgRgAn9/AX9gBH9/f38Bf2ABfwBgAAACbgMWd2FzaV9zbmFwc2hvdF9wcmV2aWV3MQ5hcmdzX3NpemVzX2dldAAAFndhc2lfc25hcHNob3RfcHJldmlldzEIZmRfd3JpdGUAARZ3YXNpX3NuYXBzaG90X3ByZXZpZXcxCXByb2NfZXhpdAACAwIBAwUDAQABBxMCBm1lbW9yeQIABl9zdGFydAADCi4BLABBAEEEEAAaQRBBwAA2AgBBFEEBNgIAQQFBEEEBQRgQARpBAUAAGkEAEAILCwgBAEHAAAsBdw==';

/**
 * Data of a throw-away container for warming up a worker: a tiny guest (args, fd_write, memory.grow,
 * proc_exit) with an argument, an empty environment and a read-only directory.
 * @returns runner data for `builtin:wasi-p1`
 */
export function warmP1Data(): WasiP1RunnerData {
  return { module: new Uint8Array(Buffer.from(WARM_GUEST, 'base64')), capabilities: { args: ['warm'], env: {}, dirs: [{ hostPath: tmpdir(), guestPath: '/warm', readOnly: true }] } };
}

/**
 * Run {@link runWasiP1} once on a throw-away guest in this worker (rewrite, compile, capability policy,
 * preview1 host, gate, recorder), so a container's first start does not pay for cold code. The pool's
 * workers do this before they report ready.
 * @returns resolves when done
 */
export async function warmWasiP1(): Promise<void> {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const control = createControl();
  const budget = createOutputBudget(1024);
  const sink = createOutputSink(budget, () => undefined);
  const recorder = new RingRecorder({ blockSize: 2 });
  const env: RunnerEnv = {
    id: 'warm-up',
    data: warmP1Data(),
    control,
    limits: DEFAULT_LIMITS,
    maxMemoryPages: 4,
    syscalls,
    policy: { mode: 'enforce', decide: () => WARM_DENY },
    kernelPolicy: false,
    recorder,
    flushRecords: () => void recorder.flush(),
    bridge: { call: () => null },
    snapshot: undefined,
    startSeq: 0,
    stdout: sink,
    stderr: sink,
    createGate: (o = {}) => new Gate({ syscalls, policy: o.policy ?? { mode: 'enforce', decide: () => WARM_DENY }, control, recorder }),
    guest: (fn) => fn(),
    pollPolicy: () => false,
    onPolicyUpdate: () => () => undefined,
    reportMemory: () => undefined,
    serve: () => null,
  };
  await runWasiP1(env);
  recorder.flush();
}

const WARM_DENY = Object.freeze({ verdict: 'deny', rule: null, reason: 'warm-up', rateLimited: false, code: 'POLICY_DENIED' }) as Decision;

/** The `builtin:wasi-p1` runner module. */
export const wasiP1Runner: RunnerModule = { run: runWasiP1, warm: warmWasiP1, snapshots: true };
