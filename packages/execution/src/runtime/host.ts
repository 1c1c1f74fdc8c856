import { mkdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ForgeError, type SyscallTable } from '@forgeone/common';
import type { Capabilities } from '../capabilities.js';
import type { ComponentIdentity, ComponentInfo } from '../component/forgeone.js';
import { componentBridgeHandlers, type BridgeFetchOptions, type ContainerKv } from '../component/handlers.js';
import { defaultExport, isCommandExport, type RunOutcome } from '../component/run.js';
import { COMPONENT_RUNNER, type ComponentRunnerData } from '../component/runner.js';
import type { HostHttpRequest, HostHttpResponse, LogLevel } from '../component/services.js';
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
import { ComponentModuleCache, ModuleCache, type PreparedComponent } from './cache.js';
import { defaultComponentCacheDir } from './cachedir.js';
import { detectWasmKind, type WasmKind } from './detect.js';
import { pullFrom, type StreamPuller } from './stdin.js';

/** The guest's standard streams. */
export interface WasmStdio {
  /**
   * Standard input: bytes or text given whole, or a readable stream. A preview1 module pulls the stream live
   * as it reads (e.g. `process.stdin`; nothing is read until the guest asks). A component takes its stdin
   * whole: {@link WasmHost.run} reads the stream to its end (at most {@link COMPONENT_STDIN_MAX_BYTES})
   * before the guest starts, and only when the component imports `wasi:cli/stdin`. Default empty.
   */
  readonly stdin?: Uint8Array | string | Readable;
  /** Receives stdout bytes as the guest writes them (live). */
  readonly stdout?: (bytes: Uint8Array) => void;
  /**
   * Receives stderr bytes as the guest writes them (live); a component's `forgeone:host/log` lines are
   * written here too, as `[level] message\n`.
   */
  readonly stderr?: (bytes: Uint8Array) => void;
}

/** What a component run calls and the kernel services it gets (ignored for core modules). */
export interface WasmComponentOptions {
  /**
   * The export to call: a world-level function (`run`), `interface#function`, or `wasi:cli/run` to run a
   * WASI command component (`run: func() -> result`; the outcome's exit code is 0 for `ok`, 1 for `err`, or
   * the code of `wasi:cli/exit`). Default `run`, or `wasi:cli/run` for a component that exports that and no
   * `run` function.
   */
  readonly export?: string;
  /** The call's input string; default the empty string. */
  readonly input?: string;
  /** The container's kv namespace (`forgeone:host/kv`); default a fresh in-memory map that lives for the run. */
  readonly kv?: ContainerKv;
  /** Performs `forgeone:host/http` and `wasi:http` requests the gate allowed; default the global fetch (no redirects). */
  readonly fetch?: (request: HostHttpRequest) => Promise<HostHttpResponse>;
  /** Limits of the default fetch (timeout, body sizes). */
  readonly fetchOptions?: BridgeFetchOptions;
  /** The answer of `forgeone:host/identity.get` (`NOT_FOUND` without it). */
  readonly hostIdentity?: ComponentIdentity;
  /** The answer of `forgeone:host/info.get` (`NOT_FOUND` without it). */
  readonly info?: ComponentInfo;
  /** A refused `memory.grow` the guest survived: `fail` (default, `SANDBOX_MEMORY_EXCEEDED`) or `continue`. */
  readonly onMemoryExceeded?: 'fail' | 'continue';
}

/** One guest to run on a {@link WasmHost}. */
export interface WasmRunSpec {
  /**
   * The guest's bytes, kind detected from the header: a WASI preview1 core module (runs `_start` on
   * `builtin:wasi-p1`) or a component (calls {@link WasmComponentOptions.export} on `builtin:component`).
   */
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
  /** Component runs: the export, its input and the kernel services (ignored for core modules). */
  readonly component?: WasmComponentOptions;
  /**
   * Receives the call records, block by block, before the outcome (see `SandboxSpec.onRecords`), with the
   * container's syscall table to decode them (`decodeBlock(block, syscalls)`).
   */
  readonly onRecords?: (block: RawBlock, syscalls: SyscallTable) => void;
  /** Keep all output (and a component's log lines) in the outcome (default true); off when `stdio` consumes it. */
  readonly retainOutput?: boolean;
  /** Calls per record block (default 256). */
  readonly recordBlockSize?: number;
  /** Extra bridge handlers for the runner (for components they override the kv/fetch/log handlers by method). */
  readonly handlers?: Readonly<Record<string, BridgeHandler>>;
  /** A container id; random when omitted. */
  readonly id?: string;
}

/** How a guest run ended (normally: the guest exited or returned). Failures reject with a ForgeError instead. */
export interface WasmRunOutcome {
  /** The binary's kind. */
  readonly kind: WasmKind;
  /**
   * The guest's exit code: for a module `proc_exit`'s argument (u32), or 0 when `_start` returned; for a
   * component 0 when the export returned ok, 1 when it returned an error, or the code it exited with.
   */
  readonly exitCode: number;
  /** Components: what the export returned (`{ ok, value }` or `{ ok: false, error }`). */
  readonly result?: RunOutcome;
  /** All stdout bytes (also streamed to `stdio.stdout`), bounded by `maxOutputBytes`. */
  readonly stdout: Uint8Array;
  /** All stderr bytes written by the guest (not the log lines). */
  readonly stderr: Uint8Array;
  /** Components: the `forgeone:host/log` lines, `[level] message` (empty with `retainOutput: false`). */
  readonly logs?: readonly string[];
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
  /** The prepared-component cache; default a fresh one (16 components). */
  readonly componentCache?: ComponentModuleCache;
  /**
   * The components' on-disk transpile cache (`<cacheDir>/<sha3>/`: jco's generated bindings, which the
   * workers load). Default {@link defaultComponentCacheDir} (private, per user, under the OS temp dir).
   * Core modules are cached in memory only (V8 cannot serialise compiled modules in Node).
   */
  readonly cacheDir?: string;
  /**
   * Run components on this runner (a module specifier the worker imports) instead of `builtin:component`;
   * it receives the same `ComponentRunnerData` and must answer with a `RunOutcome`.
   */
  readonly componentRunner?: string;
  /** Default limits of every run (each spec may override). */
  readonly limits?: SandboxLimits;
}

/** The facade the kernel and the CLI run guests through. */
export interface WasmHost {
  /**
   * Run a guest to its end. A component is prepared in the kernel first (transpiled, its core modules limited
   * and compiled, cached by hash and memory limit) and its export is checked before a worker is taken.
   * @param spec - bytes, capabilities, kernel policy, limits, stdio, record sink, component call
   * @returns the exit code and output (for a component also the export's result)
   * @throws ForgeError (rejection) `WASM_INVALID`, `WASM_TRANSPILE_FAILED`, `WASM_LINK_ERROR`,
   *   `WASM_EXPORT_MISSING`,
   *   `WASM_TRAP` (naming the trap), `SANDBOX_CPU_EXCEEDED`, `SANDBOX_MEMORY_EXCEEDED`, `SANDBOX_TIMEOUT`,
   *   `SANDBOX_LIMIT_EXCEEDED`, `LIMIT_EXCEEDED` (component stdin too large), `CONTAINER_TERMINATED`,
   *   `CONTAINER_FAILED`
   */
  run(spec: WasmRunSpec): Promise<WasmRunOutcome>;
  /**
   * Start a guest and return its container at once (quarantine, terminate, stats, policy updates). Uses the
   * compiled module (or prepared component) when it is cached; otherwise the worker compiles (a component:
   * transpiles and compiles, seconds) and the cache is filled in the background.
   * @param spec - as {@link WasmHost.run}; a component's stdin must be bytes or text here
   * @returns the container; its `result` value is `{ exitCode }` for a module, a `RunOutcome` for a component
   * @throws ForgeError `WASM_INVALID` (not WebAssembly), `WASM_EXPORT_MISSING` (a cached component without
   *   the export), `SANDBOX_LIMIT_EXCEEDED`, `INVALID_ARGUMENT`
   */
  start(spec: WasmRunSpec): SandboxedContainer;
  /** The compiled-module cache. */
  readonly cache: ModuleCache;
  /** The prepared-component cache. */
  readonly componentCache: ComponentModuleCache;
  /** The pool containers run on. */
  readonly pool: SandboxPool;
  /**
   * Close the host's own pool (a pool given in the options is left open).
   * @returns resolves when its workers are gone
   */
  close(): Promise<void>;
}

/** Largest standard input a component run reads from a stream (it takes its stdin whole): 64 MiB. */
export const COMPONENT_STDIN_MAX_BYTES = 64 << 20;

function limitPagesOf(bytes: number): number {
  if (typeof bytes !== 'number' || !(bytes >= 0)) throw new ForgeError('INVALID_ARGUMENT', 'maxMemoryBytes must be a non-negative number');
  return Math.min(65536, Math.floor(bytes / 65536));
}

/** A fresh in-memory kv namespace (lives as long as the run). */
function memoryKv(): ContainerKv {
  const map = new Map<string, Uint8Array>();
  return {
    get: (k) => Promise.resolve(map.get(k)),
    set: (k, v) => {
      map.set(k, v.slice());
      return Promise.resolve(null);
    },
    delete: (k) => Promise.resolve(map.delete(k)),
    list: (prefix = '') => Promise.resolve([...map.keys()].filter((k) => k.startsWith(prefix)).sort()),
  };
}

const CLI_RUN = /^wasi:cli\/run(@|$)/;

/**
 * Refuse, before a worker is taken, a component that does not export the function to call.
 * @param prepared - the prepared component
 * @param requested - the export to call; undefined for the default ({@link defaultExport})
 * @throws ForgeError `WASM_EXPORT_MISSING` (with a clear word for WASI command components)
 */
function checkExport(prepared: PreparedComponent, requested: string | undefined): void {
  const name = requested ?? defaultExport(prepared.exports);
  const hash = name.indexOf('#');
  const top = hash < 0 ? name : name.slice(0, hash);
  const isCommand = prepared.exports.some(([n, kind]) => kind === 'instance' && CLI_RUN.test(n));
  // `wasi:cli/run` runs any version of the command interface; a versioned name must be the one exported.
  if (isCommandExport(name) && (top === 'wasi:cli/run' ? isCommand : prepared.exports.some(([n, kind]) => n === top && kind === 'instance'))) return;
  const found = prepared.exports.find(([n]) => n === top);
  if (found !== undefined && found[1] === (hash < 0 ? 'function' : 'instance')) return;
  const names = prepared.exports.map(([n, kind]) => (kind === 'function' ? n : `${n} (interface)`));
  if (hash < 0 && isCommand) {
    throw new ForgeError(
      'WASM_EXPORT_MISSING',
      `the component is a WASI command (it exports wasi:cli/run) without a world-level \`${name}\` function: run it with the export \`wasi:cli/run\` (the default when none is named)`,
      { details: { export: name, exports: names, command: 'wasi:cli/run' } },
    );
  }
  throw new ForgeError('WASM_EXPORT_MISSING', `the component does not export a function ${JSON.stringify(name)} (it exports ${names.length === 0 ? 'nothing' : names.join(', ')})`, {
    details: { export: name, exports: names },
  });
}

/** Read a stream to its end, at most `max` bytes. */
async function readWhole(stream: Readable, max: number): Promise<Uint8Array> {
  const puller = pullFrom(stream);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = await puller.read(65536);
      if (chunk === null) break;
      total += chunk.length;
      if (total > max) throw new ForgeError('LIMIT_EXCEEDED', `standard input for a component is over ${max} bytes (components take their stdin whole)`, { details: { limit: max } });
      chunks.push(chunk);
    }
  } finally {
    puller.release();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Create the runtime facade: detects the binary's kind from its header; runs WASI preview1 modules on
 * `builtin:wasi-p1` (compiled once per memory limit and cached; the compiled module is posted to a warm
 * worker) and components on `builtin:component` (transpiled and compiled in the kernel once per memory
 * limit and cached, the bindings loaded by the worker from the on-disk transpile cache; kv, fetch and log
 * answered by the kernel over the bridge); every call of either crosses the gate under the intersection of
 * the kernel policy and the guest's capabilities; stdio and call records stream back.
 * @param options - pool, clock, caches, limits
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
 * // A component: its `run` export, with an input.
 * const { result } = await host.run({ module: component, component: { input: 'hello world' }, capabilities: { log: true } });
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
  const componentCache = options.componentCache ?? new ComponentModuleCache();
  const hostLimits = options.limits ?? {};
  let cacheDir: string | undefined;
  const componentCacheDir = (): string => {
    if (cacheDir === undefined) {
      if (options.cacheDir === undefined) cacheDir = defaultComponentCacheDir();
      else {
        try {
          mkdirSync(options.cacheDir, { recursive: true, mode: 0o700 });
        } catch (cause) {
          throw new ForgeError('IO_ERROR', `cannot create the component cache directory ${options.cacheDir}`, { cause });
        }
        cacheDir = options.cacheDir;
      }
    }
    return cacheDir;
  };

  const prepare = (spec: WasmRunSpec): { kind: WasmKind; limits: SandboxLimits; pages: number } => {
    if (typeof spec !== 'object' || spec === null) throw new ForgeError('INVALID_ARGUMENT', 'a run spec must be an object');
    const kind = detectWasmKind(spec.module);
    const maxMemoryBytes = spec.limits?.maxMemoryBytes ?? hostLimits.maxMemoryBytes ?? options.poolOptions?.limits?.maxMemoryBytes ?? DEFAULT_LIMITS.maxMemoryBytes;
    const pages = limitPagesOf(maxMemoryBytes);
    // The limit the module is rewritten with is passed explicitly, so the worker agrees with the cache.
    return { kind, limits: { ...hostLimits, ...spec.limits, maxMemoryBytes }, pages };
  };

  /** Start the container; `logs` collects a component's log lines. */
  const launch = (spec: WasmRunSpec, runner: string, data: unknown, limits: SandboxLimits, handlers: Record<string, BridgeHandler>): SandboxedContainer => {
    const stdio = spec.stdio ?? {};
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
    const container = pool.start(sandboxSpec);
    started.container = container;
    return container;
  };

  const launchCore = (spec: WasmRunSpec, limits: SandboxLimits, module: Uint8Array | WebAssembly.Module, limitPages: number | undefined): SandboxedContainer => {
    let puller: StreamPuller | undefined;
    let stdin: WasiP1RunnerData['stdin'];
    const handlers: Record<string, BridgeHandler> = { ...spec.handlers };
    const input = spec.stdio?.stdin;
    if (input === undefined || typeof input === 'string' || input instanceof Uint8Array) stdin = input;
    else {
      const p = pullFrom(input);
      puller = p;
      stdin = 'bridge';
      handlers[STDIN_BRIDGE_METHOD] = (max: unknown) => p.read(typeof max === 'number' ? max : 65536);
    }
    const data: WasiP1RunnerData = {
      module,
      ...(limitPages === undefined ? {} : { limitPages }),
      ...(spec.capabilities === undefined ? {} : { capabilities: spec.capabilities }),
      ...(stdin === undefined ? {} : { stdin }),
      ...(spec.policy === undefined ? {} : { identity: spec.policy.identity }),
    };
    let container: SandboxedContainer;
    try {
      container = launch(spec, 'builtin:wasi-p1', data, limits, handlers);
    } catch (e) {
      puller?.release();
      throw e;
    }
    if (puller !== undefined) {
      const p = puller;
      container.result.then(
        () => p.release(),
        () => p.release(),
      );
    }
    return container;
  };

  const launchComponent = (
    spec: WasmRunSpec,
    limits: SandboxLimits,
    prepared: PreparedComponent | undefined,
    stdin: Uint8Array | string | undefined,
    logs: string[] | undefined,
  ): SandboxedContainer => {
    const c = spec.component ?? {};
    const exportName = c.export;
    if (exportName !== undefined && (typeof exportName !== 'string' || exportName === '')) throw new ForgeError('INVALID_ARGUMENT', 'component.export must be a non-empty string');
    if (c.input !== undefined && typeof c.input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'component.input must be a string');
    if (prepared !== undefined) checkExport(prepared, exportName);
    const stderr = spec.stdio?.stderr;
    const encoder = new TextEncoder();
    const log = (level: LogLevel, message: string): void => {
      logs?.push(`[${level}] ${message}`);
      stderr?.(encoder.encode(`[${level}] ${message}\n`));
    };
    const handlers: Record<string, BridgeHandler> = {
      ...componentBridgeHandlers({
        kv: c.kv ?? memoryKv(),
        log,
        ...(c.fetch === undefined ? {} : { fetch: c.fetch }),
        ...(c.fetchOptions === undefined ? {} : { fetchOptions: c.fetchOptions }),
      }),
      ...spec.handlers,
    };
    const data: ComponentRunnerData = {
      bytes: spec.module,
      ...(prepared === undefined ? {} : { compiled: { limitPages: prepared.limitPages, modules: prepared.modules } }),
      capabilities: spec.capabilities ?? {},
      ...(spec.policy === undefined ? {} : { identity: spec.policy.identity }),
      ...(c.hostIdentity === undefined ? {} : { hostIdentity: c.hostIdentity }),
      ...(c.info === undefined ? {} : { info: c.info }),
      cacheDir: componentCacheDir(),
      // Without a name the runner picks the default from the component (`run`, or `wasi:cli/run`).
      ...(exportName === undefined ? {} : { export: exportName }),
      input: c.input ?? '',
      ...(stdin === undefined ? {} : { stdin }),
      ...(c.onMemoryExceeded === undefined ? {} : { onMemoryExceeded: c.onMemoryExceeded }),
    };
    return launch(spec, options.componentRunner ?? COMPONENT_RUNNER, data, limits, handlers);
  };

  const outcome = async (container: SandboxedContainer, kind: WasmKind, logs?: readonly string[]): Promise<WasmRunOutcome> => {
    const r = await container.result;
    const base = { kind, stdout: r.stdout, stderr: r.stderr, stats: r.stats, syscalls: container.syscalls };
    if (kind === 'component') {
      const v = r.value as Partial<{ ok: boolean; value: string; error: string; exitCode: number }> | null | undefined;
      if (typeof v !== 'object' || v === null || typeof v.ok !== 'boolean') throw new ForgeError('CONTAINER_FAILED', 'the component runner answered without a result');
      const result: RunOutcome = v.ok
        ? { ok: true, value: String(v.value ?? ''), ...(typeof v.exitCode === 'number' ? { exitCode: v.exitCode } : {}) }
        : { ok: false, error: String(v.error ?? ''), ...(typeof v.exitCode === 'number' ? { exitCode: v.exitCode } : {}) };
      const exitCode = result.exitCode ?? (result.ok ? 0 : 1);
      return { ...base, exitCode, result, logs: logs ?? [] };
    }
    const value = r.value as Partial<WasiP1Result> | null | undefined;
    const exitCode = typeof value?.exitCode === 'number' ? value.exitCode : 0;
    return { ...base, exitCode };
  };

  return {
    cache,
    componentCache,
    pool,
    start(spec: WasmRunSpec): SandboxedContainer {
      const { kind, limits, pages } = prepare(spec);
      if (kind === 'component') {
        const input = spec.stdio?.stdin;
        if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array)) {
          throw new ForgeError('INVALID_ARGUMENT', 'a component takes its stdin whole: give bytes or text to start(), or use run() with a stream');
        }
        const prepared = componentCache.peek(spec.module, pages);
        // Cold: the worker transpiles and compiles; meanwhile the kernel prepares for the next start.
        if (prepared === undefined) componentCache.get(spec.module, pages, componentCacheDir()).catch(() => undefined);
        return launchComponent(spec, limits, prepared, input, undefined);
      }
      const cached = cache.peek(spec.module, pages);
      if (cached !== undefined) return launchCore(spec, limits, cached.module, cached.limitPages);
      // Cold: the worker rewrites and compiles; meanwhile the cache compiles for the next start.
      cache.get(spec.module, pages).catch(() => undefined);
      return launchCore(spec, limits, spec.module, undefined);
    },
    async run(spec: WasmRunSpec): Promise<WasmRunOutcome> {
      const { kind, limits, pages } = prepare(spec);
      if (kind === 'component') {
        const prepared = await componentCache.get(spec.module, pages, componentCacheDir());
        const input = spec.stdio?.stdin;
        let stdin: Uint8Array | string | undefined;
        if (input === undefined || typeof input === 'string' || input instanceof Uint8Array) stdin = input;
        else if (prepared.imports.includes('wasi:cli/stdin')) {
          checkExport(prepared, spec.component?.export);
          stdin = await readWhole(input, COMPONENT_STDIN_MAX_BYTES);
        }
        const logs = spec.retainOutput === false ? undefined : [];
        return outcome(launchComponent(spec, limits, prepared, stdin, logs), kind, logs);
      }
      const compiled = await cache.get(spec.module, pages);
      return outcome(launchCore(spec, limits, compiled.module, compiled.limitPages), kind);
    },
    async close(): Promise<void> {
      if (own) await pool.close();
    },
  };
}

