import type { Readable } from 'node:stream';
import { ForgeError, type SyscallTable } from '@forgeone/common';
import type { Capabilities } from '../capabilities.js';
import type { CoarseClock, RawBlock } from '../gate/index.js';
import { createSandboxPool } from '../sandbox/pool.js';
import { STDIN_BRIDGE_METHOD, type WasiP1Result, type WasiP1RunnerData } from '../sandbox/runners/wasi-p1.js';
import {
  DEFAULT_LIMITS,
  type BridgeHandler,
  type ContainerStats,
  type SandboxLimits,
  type SandboxPolicy,
  type SandboxPool,
  type SandboxPoolOptions,
  type SandboxSpec,
  type SandboxedContainer,
} from '../sandbox/types.js';
import { ModuleCache } from './cache.js';
import { detectWasmKind, type WasmKind } from './detect.js';
import { pullFrom, type StreamPuller } from './stdin.js';

/** The guest's standard streams. */
export interface WasmStdio {
  /**
   * Standard input: bytes or text given whole, or a readable stream pulled live as the guest reads (e.g.
   * `process.stdin`; nothing is read until the guest asks). Default empty.
   */
  readonly stdin?: Uint8Array | string | Readable;
  /** Receives stdout bytes as the guest writes them (live). */
  readonly stdout?: (bytes: Uint8Array) => void;
  /** Receives stderr bytes as the guest writes them (live). */
  readonly stderr?: (bytes: Uint8Array) => void;
}

/** One guest to run on a {@link WasmHost}. */
export interface WasmRunSpec {
  /** The guest's bytes: a WASI preview1 core module (a component once the component runner is wired). */
  readonly module: Uint8Array;
  /** What the guest may use; nothing else is granted (see `capabilityPolicy`). Default: nothing but stdio, clocks, random, log. */
  readonly capabilities?: Capabilities;
  /**
   * The kernel's policy (document, identity, mode). Calls must pass both it and the capability policy. When
   * omitted the capabilities alone decide.
   */
  readonly policy?: SandboxPolicy;
  /** CPU (`cpuPerCallMs`, `cpuTotalMs`), memory (`maxMemoryBytes`), output, open files, wall-clock timeout. */
  readonly limits?: SandboxLimits;
  /** Standard streams. */
  readonly stdio?: WasmStdio;
  /**
   * Receives the call records, block by block, before the outcome (see `SandboxSpec.onRecords`), with the
   * container's syscall table to decode them (`decodeBlock(block, syscalls)`).
   */
  readonly onRecords?: (block: RawBlock, syscalls: SyscallTable) => void;
  /** Keep all output in the outcome (default true); off when `stdio` consumes it. */
  readonly retainOutput?: boolean;
  /** Calls per record block (default 256). */
  readonly recordBlockSize?: number;
  /** Extra bridge handlers for the runner. */
  readonly handlers?: Readonly<Record<string, BridgeHandler>>;
  /** A container id; random when omitted. */
  readonly id?: string;
}

/** How a guest run ended (normally: the guest exited or returned). Failures reject with a ForgeError instead. */
export interface WasmRunOutcome {
  /** The binary's kind. */
  readonly kind: WasmKind;
  /** The guest's exit code (u32: `proc_exit`'s argument, or 0 when `_start` returned). */
  readonly exitCode: number;
  /** All stdout bytes (also streamed to `stdio.stdout`), bounded by `maxOutputBytes`. */
  readonly stdout: Uint8Array;
  /** All stderr bytes. */
  readonly stderr: Uint8Array;
  /** The container's final counters. */
  readonly stats: ContainerStats;
  /** The container's syscall names, to decode record blocks with `decodeBlock`. */
  readonly syscalls: SyscallTable;
}

/** Options of {@link createWasmHost}. */
export interface WasmHostOptions {
  /** A pool to run containers on (not closed by {@link WasmHost.close}); by default the host makes its own. */
  readonly pool?: SandboxPool;
  /** Options of the host's own pool (ignored with `pool`); default one warm worker. */
  readonly poolOptions?: SandboxPoolOptions;
  /**
   * A coarse clock (`createCoarseClock()`) whose time the host's own pool gives every worker: gate
   * timestamps and CPU metering read it instead of `performance.now()` (ignored with `pool`).
   */
  readonly clock?: CoarseClock;
  /** The compiled-module cache; default a fresh one (64 modules). Share one between hosts to share warm modules. */
  readonly cache?: ModuleCache;
  /**
   * Reserved for the component runner's on-disk transpile cache. Core modules are cached in memory only
   * (V8 cannot serialise compiled modules in Node).
   */
  readonly cacheDir?: string;
  /**
   * The runner for components (a module specifier the worker imports; it receives
   * `{ component, capabilities, stdin, cacheDir }`). Without it components are refused with `WASM_INVALID`.
   */
  readonly componentRunner?: string;
  /** Default limits of every run (each spec may override). */
  readonly limits?: SandboxLimits;
}

/** The facade the kernel and the CLI run guests through. */
export interface WasmHost {
  /**
   * Run a guest to its end.
   * @param spec - bytes, capabilities, kernel policy, limits, stdio, record sink
   * @returns the exit code and output
   * @throws ForgeError (rejection) `WASM_INVALID`, `WASM_LINK_ERROR`, `WASM_EXPORT_MISSING`, `WASM_TRAP` (naming
   *   the trap), `SANDBOX_CPU_EXCEEDED`, `SANDBOX_MEMORY_EXCEEDED`, `SANDBOX_TIMEOUT`, `SANDBOX_LIMIT_EXCEEDED`,
   *   `CONTAINER_TERMINATED`, `CONTAINER_FAILED`
   */
  run(spec: WasmRunSpec): Promise<WasmRunOutcome>;
  /**
   * Start a guest and return its container at once (quarantine, terminate, stats, policy updates). Uses the
   * compiled module when it is cached; otherwise the worker compiles and the cache is filled in the background.
   * @param spec - as {@link WasmHost.run}
   * @returns the container; its `result` value is `{ exitCode }`
   * @throws ForgeError `WASM_INVALID` (not WebAssembly, or a component without a component runner),
   *   `SANDBOX_LIMIT_EXCEEDED`, `INVALID_ARGUMENT`
   */
  start(spec: WasmRunSpec): SandboxedContainer;
  /** The compiled-module cache. */
  readonly cache: ModuleCache;
  /** The pool containers run on. */
  readonly pool: SandboxPool;
  /**
   * Close the host's own pool (a pool given in the options is left open).
   * @returns resolves when its workers are gone
   */
  close(): Promise<void>;
}

function limitPagesOf(bytes: number): number {
  if (typeof bytes !== 'number' || !(bytes >= 0)) throw new ForgeError('INVALID_ARGUMENT', 'maxMemoryBytes must be a non-negative number');
  return Math.min(65536, Math.floor(bytes / 65536));
}

/**
 * Create the runtime facade: detects the binary's kind from its header, compiles core modules once per
 * memory limit (cached; the compiled module is posted to a warm worker), runs WASI preview1 guests with the
 * `builtin:wasi-p1` runner under the intersection of the kernel policy and the guest's capabilities, and
 * streams stdio and call records back.
 * @param options - pool, clock, cache, limits
 * @returns the host
 * @example
 * ```ts
 * const host = createWasmHost();
 * const { exitCode } = await host.run({
 *   module: bytes,
 *   capabilities: { args: ['app', 'in.txt'], dirs: [parseDirGrant('./data::/data')] },
 *   limits: { cpuTotalMs: 2_000, maxMemoryBytes: 64 << 20 },
 *   stdio: { stdout: (b) => process.stdout.write(b), stderr: (b) => process.stderr.write(b) },
 * });
 * await host.close();
 * ```
 */
export function createWasmHost(options: WasmHostOptions = {}): WasmHost {
  const own = options.pool === undefined;
  const pool =
    options.pool ??
    createSandboxPool({
      size: 1,
      ...options.poolOptions,
      ...(options.clock === undefined || options.poolOptions?.clockBuffer !== undefined ? {} : { clockBuffer: options.clock.buffer }),
    });
  const cache = options.cache ?? new ModuleCache();
  const hostLimits = options.limits ?? {};

  const prepare = (spec: WasmRunSpec): { kind: WasmKind; limits: SandboxLimits; pages: number } => {
    if (typeof spec !== 'object' || spec === null) throw new ForgeError('INVALID_ARGUMENT', 'a run spec must be an object');
    const kind = detectWasmKind(spec.module);
    const maxMemoryBytes = spec.limits?.maxMemoryBytes ?? hostLimits.maxMemoryBytes ?? options.poolOptions?.limits?.maxMemoryBytes ?? DEFAULT_LIMITS.maxMemoryBytes;
    const pages = limitPagesOf(maxMemoryBytes);
    // The limit the module is rewritten with is passed explicitly, so the worker agrees with the cache.
    return { kind, limits: { ...hostLimits, ...spec.limits, maxMemoryBytes }, pages };
  };

  const launch = (spec: WasmRunSpec, kind: WasmKind, limits: SandboxLimits, module: Uint8Array | WebAssembly.Module, limitPages: number | undefined): SandboxedContainer => {
    const stdio = spec.stdio ?? {};
    let puller: StreamPuller | undefined;
    let stdin: WasiP1RunnerData['stdin'];
    const handlers: Record<string, BridgeHandler> = { ...spec.handlers };
    const input = stdio.stdin;
    if (input === undefined || typeof input === 'string' || input instanceof Uint8Array) stdin = input;
    else {
      const p = pullFrom(input);
      puller = p;
      stdin = 'bridge';
      handlers[STDIN_BRIDGE_METHOD] = (max: unknown) => p.read(typeof max === 'number' ? max : 65536);
    }
    let runner: string;
    let data: unknown;
    if (kind === 'core') {
      runner = 'builtin:wasi-p1';
      const d: WasiP1RunnerData = {
        module,
        ...(limitPages === undefined ? {} : { limitPages }),
        ...(spec.capabilities === undefined ? {} : { capabilities: spec.capabilities }),
        ...(stdin === undefined ? {} : { stdin }),
        ...(spec.policy === undefined ? {} : { identity: spec.policy.identity }),
      };
      data = d;
    } else {
      if (options.componentRunner === undefined) {
        puller?.release();
        throw new ForgeError('WASM_INVALID', 'the guest is a WebAssembly component: components run through the component runner (not wired yet)', {
          details: { kind: 'component' },
        });
      }
      runner = options.componentRunner;
      data = { component: module, capabilities: spec.capabilities ?? {}, stdin, cacheDir: options.cacheDir };
    }
    const onRecords = spec.onRecords;
    // Blocks arrive after `pool.start` returned (the worker posts them later): the container exists by then.
    const started: { container?: SandboxedContainer } = {};
    const syscallsOf = (): SyscallTable => {
      if (started.container === undefined) throw new ForgeError('INTERNAL', 'records arrived before the container started');
      return started.container.syscalls;
    };
    const sandboxSpec: SandboxSpec = {
      runner,
      data,
      limits,
      handlers,
      onOutput: (stream, bytes) => {
        const sink = stream === 'stdout' ? stdio.stdout : stdio.stderr;
        sink?.(bytes);
      },
      ...(spec.policy === undefined ? {} : { policy: spec.policy }),
      ...(onRecords === undefined ? {} : { onRecords: (block: RawBlock) => onRecords(block, syscallsOf()) }),
      ...(spec.retainOutput === undefined ? {} : { retainOutput: spec.retainOutput }),
      ...(spec.recordBlockSize === undefined ? {} : { recordBlockSize: spec.recordBlockSize }),
      ...(spec.id === undefined ? {} : { id: spec.id }),
    };
    let container: SandboxedContainer;
    try {
      container = pool.start(sandboxSpec);
    } catch (e) {
      puller?.release();
      throw e;
    }
    started.container = container;
    if (puller !== undefined) {
      const p = puller;
      container.result.then(
        () => p.release(),
        () => p.release(),
      );
    }
    return container;
  };

  const outcome = async (container: SandboxedContainer, kind: WasmKind): Promise<WasmRunOutcome> => {
    const r = await container.result;
    const value = r.value as Partial<WasiP1Result> | null | undefined;
    const exitCode = typeof value?.exitCode === 'number' ? value.exitCode : 0;
    return { kind, exitCode, stdout: r.stdout, stderr: r.stderr, stats: r.stats, syscalls: container.syscalls };
  };

  return {
    cache,
    pool,
    start(spec: WasmRunSpec): SandboxedContainer {
      const { kind, limits, pages } = prepare(spec);
      if (kind !== 'core') return launch(spec, kind, limits, spec.module, undefined);
      const cached = cache.peek(spec.module, pages);
      if (cached !== undefined) return launch(spec, kind, limits, cached.module, cached.limitPages);
      // Cold: the worker rewrites and compiles; meanwhile the cache compiles for the next start.
      cache.get(spec.module, pages).catch(() => undefined);
      return launch(spec, kind, limits, spec.module, undefined);
    },
    async run(spec: WasmRunSpec): Promise<WasmRunOutcome> {
      const { kind, limits, pages } = prepare(spec);
      if (kind !== 'core') return outcome(launch(spec, kind, limits, spec.module, undefined), kind);
      const compiled = await cache.get(spec.module, pages);
      return outcome(launch(spec, kind, limits, compiled.module, compiled.limitPages), kind);
    },
    async close(): Promise<void> {
      if (own) await pool.close();
    },
  };
}
