import { ForgeError, createIdentity, isForgeError, type IdentityInit } from '@forgeone/common';
import { compilePolicy } from '@forgeone/trust';
import { limitMemoryDetailed, memoryExceeded } from '../binary/index.js';
import { capabilityPolicy, intersectPolicies, parseNetGrant, type Capabilities, type DirGrant } from '../capabilities.js';
import type { GatePolicy } from '../gate/index.js';
import type { RunnerEnv, RunnerModule, SyncBridge } from '../sandbox/types.js';
import { buildComponentImports, disposeComponentImports } from './adapter.js';
import type { ComponentIdentity, ComponentInfo } from './forgeone.js';
import { COMPONENT_BRIDGE_METHODS } from './handlers.js';
import { transpileComponent, type LoadedComponent } from './loader.js';
import { defaultExport, guestError, instantiateComponent, type ComponentInstance, type RunOutcome } from './run.js';
import type { HostHttpRequest, HostHttpResponse, HostServices } from './services.js';

/** The name the sandbox worker registers {@link componentRunner} under. */
export const COMPONENT_RUNNER = 'builtin:component';

/** Core modules compiled by the kernel for a container (see {@link prepareComponentModules}). */
export interface PreparedComponentModules {
  /** The memory limit, in pages, the modules were rewritten with; refused when above the container's. */
  readonly limitPages: number;
  /** The compiled core modules by jco's file name (`WebAssembly.Module`s can be posted to workers). */
  readonly modules: ReadonlyMap<string, WebAssembly.Module>;
}

/** Data of the `builtin:component` runner (structured-cloneable). */
export interface ComponentRunnerData {
  /** The component binary. */
  readonly bytes: Uint8Array;
  /**
   * Core modules already limited and compiled by the kernel ({@link prepareComponentModules}): the worker
   * then skips the rewrite and compilation (seconds for a componentize-js guest). Default: done in the worker.
   */
  readonly compiled?: PreparedComponentModules;
  /** What the guest may use; nothing else is granted (default: nothing but the always-allowed basics). */
  readonly capabilities?: Capabilities;
  /** The identity the capability policy is compiled for; default subject `capabilities`. */
  readonly identity?: IdentityInit;
  /** The answer of `forgeone:host/identity.get` (the call fails with `NOT_FOUND` without it). */
  readonly hostIdentity?: ComponentIdentity;
  /** The answer of `forgeone:host/info.get`. */
  readonly info?: ComponentInfo;
  /** The transpile cache directory (`<cacheDir>/<sha3>/`); recommended: a worker then never runs jco twice. */
  readonly cacheDir?: string;
  /**
   * The export to call: a world-level function (`run`), `interface#function`, or `wasi:cli/run` to run a
   * WASI command. Default `run`, or `wasi:cli/run` for a component that exports that and no `run` function.
   */
  readonly export?: string;
  /** The input of a single run; default the empty string. Ignored with `serve`. */
  readonly input?: string;
  /** Serve repeated calls (`container.call('run', input)`) on one instance instead of running once. */
  readonly serve?: boolean;
  /** What the guest reads from stdin (if it imports it); default empty. */
  readonly stdin?: Uint8Array | string;
  /**
   * What to do when a `memory.grow` of the guest was refused by the limit but the guest went on (a
   * JavaScript guest catches its out-of-memory error): `fail` (default) fails the call with
   * `SANDBOX_MEMORY_EXCEEDED` and retires the instance; `continue` keeps the guest's answer.
   */
  readonly onMemoryExceeded?: 'fail' | 'continue';
}

/**
 * {@link HostServices} of a sandboxed component: every service is a synchronous bridge call to the kernel
 * (methods {@link COMPONENT_BRIDGE_METHODS}, answered by {@link componentBridgeHandlers}); the guest's CPU
 * clock is paused while the kernel works.
 * @param bridge - the container's bridge
 * @returns the services
 */
export function bridgeServices(bridge: SyncBridge): HostServices {
  const M = COMPONENT_BRIDGE_METHODS;
  const wrong = (method: string): ForgeError => new ForgeError('IO_ERROR', `the kernel's ${method} handler answered with the wrong type`);
  return {
    kvGet(key) {
      const v = bridge.call(M.kvGet, key);
      if (v === null || v === undefined) return undefined;
      if (!(v instanceof Uint8Array)) throw wrong(M.kvGet);
      return v;
    },
    kvSet(key, value) {
      bridge.call(M.kvSet, { key, value });
    },
    kvDelete(key) {
      return bridge.call(M.kvDelete, key) === true;
    },
    kvList(prefix) {
      const v = bridge.call(M.kvList, prefix);
      if (!Array.isArray(v) || !v.every((k) => typeof k === 'string')) throw wrong(M.kvList);
      return v as string[];
    },
    fetch(request: HostHttpRequest): HostHttpResponse {
      const v = bridge.call(M.fetch, { method: request.method, url: request.url, headers: request.headers, body: request.body });
      if (typeof v !== 'object' || v === null) throw wrong(M.fetch);
      const r = v as Partial<HostHttpResponse>;
      if (typeof r.status !== 'number' || !(r.body instanceof Uint8Array) || !Array.isArray(r.headers)) throw wrong(M.fetch);
      const headers = r.headers.filter((h): h is [string, string] => Array.isArray(h) && typeof h[0] === 'string' && typeof h[1] === 'string');
      return { status: r.status, headers, body: r.body };
    },
    log(level, message) {
      bridge.call(M.log, { level, message });
    },
  };
}

const hooks = new Map<number, (name: string, bytes: Uint8Array) => Uint8Array>();

/**
 * The `prepareCoreModule` hook writing a memory limit (with `memory.grow` instrumentation) into every core
 * module. One function per limit, so the component cache keeps compiled modules per limit.
 * @param pages - the limit in 64 KiB pages
 * @returns the hook
 */
export function memoryLimitHook(pages: number): (name: string, bytes: Uint8Array) => Uint8Array {
  let hook = hooks.get(pages);
  if (hook === undefined) {
    hook = (_name, bytes) => limitMemoryDetailed(bytes, pages).bytes;
    hooks.set(pages, hook);
  }
  return hook;
}

/**
 * Kernel side: transpile (cached) and compile a component's core modules with a memory limit written in,
 * once, to hand to many containers as {@link ComponentRunnerData.compiled}.
 * @param bytes - the component
 * @param options - the limit (bytes, rounded down to pages) and the transpile cache directory
 * @returns the modules and the limit they carry
 * @throws ForgeError as `transpileComponent`
 */
export async function prepareComponentModules(bytes: Uint8Array, options: { readonly maxMemoryBytes: number; readonly cacheDir?: string }): Promise<PreparedComponentModules> {
  const limitPages = Math.min(65536, Math.floor(options.maxMemoryBytes / 65536));
  const loaded = await transpileComponent(bytes, { prepareCoreModule: memoryLimitHook(limitPages), ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }) });
  return { limitPages, modules: loaded.coreModules };
}

function checkData(data: unknown): ComponentRunnerData {
  if (typeof data !== 'object' || data === null) throw new ForgeError('INVALID_ARGUMENT', `${COMPONENT_RUNNER} needs data { bytes, capabilities?, ... }`);
  const d = data as ComponentRunnerData;
  if (!(d.bytes instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', `${COMPONENT_RUNNER} needs data.bytes (the component, a Uint8Array)`);
  if (d.input !== undefined && typeof d.input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'data.input must be a string');
  if (d.export !== undefined && typeof d.export !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'data.export must be a string');
  if (d.stdin !== undefined && typeof d.stdin !== 'string' && !(d.stdin instanceof Uint8Array)) throw new ForgeError('INVALID_ARGUMENT', 'data.stdin must be bytes or text');
  return d;
}

/**
 * The `builtin:component` runner: runs a WebAssembly component (the `forgeone:host/plugin` world, or any
 * world whose export takes and returns strings) in the sandbox worker, or a WASI command component (it
 * exports `wasi:cli/run`): its `run` is called and the outcome carries its exit code (0 for `ok`, 1 for
 * `err`, the code of `wasi:cli/exit`); arguments, environment, stdin and the standard streams are the
 * capabilities' and the data's, as for any component.
 *
 * - loading: `transpileComponent` with `data.cacheDir`; core modules get the container's memory limit
 *   (`limitMemory` with `memory.grow` instrumentation) — or arrive compiled with a limit no higher
 *   ({@link prepareComponentModules});
 * - policy: every host function crosses a gate deciding with the intersection of the kernel's policy and
 *   the policy of `data.capabilities` (the capability policy alone when the spec has no kernel policy);
 * - host services (kv, fetch, log) are bridge calls to the kernel ({@link bridgeServices}); stdout/stderr go
 *   to the container's counting sinks; network grants of the capabilities fence `wasi:sockets`/`wasi:http`;
 * - instantiation and every call run under the CPU watchdog (`env.guest`);
 * - result: the {@link RunOutcome} of one call, or with `serve` an instance answering
 *   `container.call(exportName, input)` with a {@link RunOutcome} each.
 *
 * @param env - the runner environment
 * @returns the outcome, or a serving instance
 * @throws ForgeError `WASM_INVALID` / `WASM_TRANSPILE_FAILED` (bad component), `WASM_EXPORT_MISSING`,
 *   `WASM_TRAP` naming the trap, `SANDBOX_MEMORY_EXCEEDED` (a refused `memory.grow`), a refusal code of a
 *   host call that trapped (`CONTAINER_TERMINATED`), `INVALID_ARGUMENT` for bad data
 */
export async function runComponentContainer(env: RunnerEnv): Promise<unknown> {
  const data = checkData(env.data);
  let loaded: LoadedComponent;
  const cacheDir = data.cacheDir === undefined ? {} : { cacheDir: data.cacheDir };
  if (data.compiled !== undefined) {
    const { limitPages, modules } = data.compiled;
    if (typeof limitPages !== 'number' || !(limitPages <= env.maxMemoryPages) || !(modules instanceof Map)) {
      throw new ForgeError('INVALID_ARGUMENT', `compiled core modules must be limited to at most ${env.maxMemoryPages} pages (limitPages ${String(limitPages)})`);
    }
    loaded = await transpileComponent(data.bytes, { ...cacheDir, compiled: modules });
  } else {
    loaded = await transpileComponent(data.bytes, { ...cacheDir, prepareCoreModule: memoryLimitHook(env.maxMemoryPages) });
  }

  const session = startComponentSession(env, loaded, {
    ...(data.capabilities === undefined ? {} : { capabilities: data.capabilities }),
    ...(data.identity === undefined ? {} : { identity: data.identity }),
    ...(data.hostIdentity === undefined ? {} : { hostIdentity: data.hostIdentity }),
    ...(data.info === undefined ? {} : { info: data.info }),
    ...(data.stdin === undefined ? {} : { stdin: typeof data.stdin === 'string' ? new TextEncoder().encode(data.stdin) : data.stdin }),
    ...(data.onMemoryExceeded === 'continue' ? { keepGoingOverMemory: true } : {}),
  });
  const { call, dispose } = session;

  const exportName = data.export ?? defaultExport(loaded.exports);
  if (data.serve === true) {
    return env.serve({
      call: (name, input) => call(name === '' ? exportName : name, input),
      close: () => {
        dispose();
        return null;
      },
    });
  }
  try {
    return call(exportName, data.input ?? '');
  } finally {
    dispose();
  }
}

/** Options of {@link startComponentSession}. */
export interface ComponentSessionOptions {
  /** What the guest may use; nothing else is granted. */
  readonly capabilities?: Capabilities;
  /** The identity the capability policy is compiled for; default subject `capabilities`. */
  readonly identity?: IdentityInit;
  /** The answer of `forgeone:host/identity.get`. */
  readonly hostIdentity?: ComponentIdentity;
  /** The answer of `forgeone:host/info.get`. */
  readonly info?: ComponentInfo;
  /** The guest's stdin. */
  readonly stdin?: Uint8Array;
  /** Keep the instance usable after a refused `memory.grow` the guest survived (default: it fails). */
  readonly keepGoingOverMemory?: boolean;
  /** Called with each core instance as it is created. */
  readonly onCoreInstance?: (instance: WebAssembly.Instance) => void;
  /** Run after instantiation, before any call, under the same error handling (a snapshot restore). */
  readonly afterInstantiate?: () => void;
}

/** A component instantiated for a sandboxed container, answering calls ({@link startComponentSession}). */
export interface ComponentSession {
  /**
   * Call an export under the CPU watchdog, with memory accounting.
   * @param name - the export
   * @param input - the input string
   * @returns the outcome
   * @throws ForgeError as the runner documents; `CONTAINER_FAILED` after an earlier failure
   */
  readonly call: (name: string, input: unknown) => RunOutcome;
  /** The failure that ended the instance, or null while it is usable. */
  readonly failed: () => ForgeError | null;
  /** Release the host resources of the imports. */
  readonly dispose: () => void;
}

/**
 * What the component runners share: the gate deciding with the kernel's policy intersected with the
 * capability policy, the import object (bridge services, the container's output sinks, the capabilities'
 * grants), instantiation and every call under the CPU watchdog, and the memory accounting (a refused
 * `memory.grow` ends the instance with `SANDBOX_MEMORY_EXCEEDED`).
 * @param env - the runner environment
 * @param loaded - the transpiled component
 * @param options - capabilities, identities, stdin, hooks
 * @returns the session
 * @throws ForgeError when instantiation (or `afterInstantiate`) fails: `SANDBOX_MEMORY_EXCEEDED`, `WASM_TRAP`, ...
 */
export function startComponentSession(env: RunnerEnv, loaded: LoadedComponent, options: ComponentSessionOptions = {}): ComponentSession {
  const caps: Capabilities = options.capabilities ?? {};
  const capProgram = compilePolicy(capabilityPolicy(caps), { identity: createIdentity(options.identity ?? { subject: 'capabilities' }), syscalls: env.syscalls });
  const policy: GatePolicy = env.kernelPolicy ? intersectPolicies(env.policy, capProgram) : { mode: 'enforce', decide: (id, ctx) => capProgram.decide(id, ctx) };
  const gate = env.createGate({ policy });

  const imports = buildComponentImports({
    gate,
    services: bridgeServices(env.bridge),
    stdout: (b) => void env.stdout.write(b),
    stderr: (b) => void env.stderr.write(b),
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    ...(caps.args === undefined ? {} : { args: caps.args }),
    ...(caps.env === undefined ? {} : { env: caps.env }),
    ...(caps.dirs === undefined ? {} : { preopens: caps.dirs }),
    ...(caps.net === undefined ? {} : { network: caps.net }),
    ...(options.hostIdentity === undefined ? {} : { identity: options.hostIdentity }),
    ...(options.info === undefined ? {} : { info: options.info }),
  });

  const cores: WebAssembly.Instance[] = [];
  const exceeded = (): number => {
    let pages = 0;
    for (const c of cores) pages = Math.max(pages, memoryExceeded(c.exports));
    return pages;
  };
  const report = (): void => {
    let pages = 0;
    for (const c of cores) for (const v of Object.values(c.exports)) if (v instanceof WebAssembly.Memory) pages = Math.max(pages, v.buffer.byteLength / 65536);
    env.reportMemory(pages);
  };
  const memoryError = (requested: number, cause: unknown, what: string): ForgeError =>
    new ForgeError('SANDBOX_MEMORY_EXCEEDED', `${what} after memory.grow of ${requested} pages was refused; the limit is ${env.maxMemoryPages} pages`, {
      cause,
      details: { requestedPages: requested, limitPages: env.maxMemoryPages },
    });

  let instance: ComponentInstance;
  try {
    instance = env.guest(() =>
      instantiateComponent(loaded, imports, {
        onCoreInstance: (i) => {
          cores.push(i);
          options.onCoreInstance?.(i);
        },
      }),
    );
    options.afterInstantiate?.();
  } catch (e) {
    disposeComponentImports(imports);
    const requested = exceeded();
    if (requested > 0) throw memoryError(requested, e, 'the guest failed to start');
    if (e instanceof RangeError && /memory/i.test(e.message)) throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest's memory could not be allocated: ${e.message}`, { cause: e });
    throw isForgeError(e) ? e : guestError(e);
  }
  report();

  let dead: ForgeError | null = null;
  const call = (name: string, input: unknown): RunOutcome => {
    if (dead !== null) throw new ForgeError('CONTAINER_FAILED', `the component instance failed earlier (${dead.code}) and cannot be called again`, { cause: dead, details: { failure: dead.code } });
    if (typeof input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'the input of a component call must be a string');
    try {
      const out = env.guest(() => instance.call({ export: name, input }));
      const requested = exceeded();
      if (requested > 0 && options.keepGoingOverMemory !== true) {
        dead = memoryError(requested, undefined, `the guest ran out of memory (it answered ${out.ok ? 'ok' : 'with an error'})`);
        throw dead;
      }
      return out;
    } catch (e) {
      if (e === dead) throw e;
      const requested = exceeded();
      const err = requested > 0 ? memoryError(requested, e, `the guest failed (${e instanceof Error ? e.message : String(e)})`) : isForgeError(e) ? e : guestError(e);
      if (err.code !== 'WASM_EXPORT_MISSING' && err.code !== 'INVALID_ARGUMENT') dead = err;
      throw err;
    } finally {
      report();
    }
  };
  return { call, failed: () => dead, dispose: () => disposeComponentImports(imports) };
}

/** The `builtin:component` runner module (register it in the worker: `startSandboxWorker({ 'builtin:component': componentRunner })`). */
export const componentRunner: RunnerModule = { run: runComponentContainer };

/** Host directories for a plugin's requested preopens, by guest path. */
export type PreopenHostDirs = Readonly<Record<string, string>>;

/**
 * The capabilities a plugin package asks for, from its manifest metadata (`forgeone.capabilities`, canonical
 * JSON written by `forgeone plugin build`, and `forgeone.engine-features`), as sandbox {@link Capabilities}.
 * A request, not a grant: the kernel's policy is laid over it at the gate. Requested preopens are granted
 * only when `hostDirs` maps their guest path to a host directory.
 * @param metadata - the package manifest's `metadata`
 * @param hostDirs - host directories for requested preopens
 * @returns the capabilities
 * @throws ForgeError `INVALID_ARGUMENT` when the metadata is missing or malformed
 */
export function pluginCapabilities(metadata: Readonly<Record<string, string>>, hostDirs: PreopenHostDirs = {}): Capabilities {
  const text = metadata['forgeone.capabilities'];
  if (typeof text !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'the package has no forgeone.capabilities metadata (not a plugin package?)');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ForgeError('INVALID_ARGUMENT', 'forgeone.capabilities is not JSON', { cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ForgeError('INVALID_ARGUMENT', 'forgeone.capabilities must be an object');
  const c = raw as Record<string, unknown>;
  const flag = (k: string): boolean => {
    const v = c[k];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new ForgeError('INVALID_ARGUMENT', `forgeone.capabilities.${k} must be a boolean`);
    return v;
  };
  const list = (k: string): unknown[] => {
    const v = c[k];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new ForgeError('INVALID_ARGUMENT', `forgeone.capabilities.${k} must be a list`);
    return v;
  };
  const net = list('http').map((h) => {
    if (typeof h !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'forgeone.capabilities.http lists host:port strings');
    return parseNetGrant(h);
  });
  const dirs: DirGrant[] = [];
  for (const p of list('preopens')) {
    const { path, access } = (typeof p === 'object' && p !== null ? p : {}) as { path?: unknown; access?: unknown };
    if (typeof path !== 'string' || !path.startsWith('/')) throw new ForgeError('INVALID_ARGUMENT', 'forgeone.capabilities.preopens lists { path, access }');
    const hostPath = Object.hasOwn(hostDirs, path) ? hostDirs[path] : undefined;
    if (hostPath !== undefined) dirs.push({ hostPath, guestPath: path, ...(access === 'read-write' ? {} : { readOnly: true }) });
  }
  const features = new Set((metadata['forgeone.engine-features'] ?? '').split(',').filter((f) => f !== ''));
  return {
    log: flag('log'),
    kv: flag('kv'),
    net,
    dirs,
    stdio: features.has('stdio'),
    random: features.has('random'),
    clocks: flag('time') || features.has('clocks'),
  };
}
