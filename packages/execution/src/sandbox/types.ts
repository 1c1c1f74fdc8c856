import type { IdentityInit, SyscallTable } from '@forgeone/common';
import type { SnapshotState } from '@forgeone/observer';
import type { Decision, EnforcementMode, Policy, Tightening } from '@forgeone/trust';
import type { CallRecorder, Gate, GatePolicy, RawBlock, RingRecorder } from '../gate/index.js';
import type { OutputSink } from './output.js';

/** Limits of one container. Every field has a default (see {@link DEFAULT_LIMITS}). */
export interface SandboxLimits {
  /**
   * CPU budget of one guest run, in ms: the time the guest runs without crossing the gate (from an entry
   * or the return of a host call to the next host call or the return). Time blocked in host calls, in the
   * bridge or in quarantine does not count.
   */
  readonly cpuPerCallMs?: number;
  /** CPU budget of the whole container, in ms of time spent running guest code (the sum of all guest runs). */
  readonly cpuTotalMs?: number;
  /** Wall-clock limit of the container's life in ms (`SANDBOX_TIMEOUT`); none by default. */
  readonly timeoutMs?: number;
  /** Largest linear memory of any memory of the guest, in bytes (rounded down to 64 KiB pages). */
  readonly maxMemoryBytes?: number;
  /** Bytes of stdout plus stderr the guest may write; further output is refused. */
  readonly maxOutputBytes?: number;
  /** Files the guest may hold open at once; passed to the runner, which enforces it. */
  readonly maxOpenFiles?: number;
  /** How long a bridge call waits for the main thread before `SANDBOX_TIMEOUT`, in ms. */
  readonly bridgeTimeoutMs?: number;
}

/** Limits with every default filled in. */
export type ResolvedLimits = Required<Omit<SandboxLimits, 'timeoutMs'>> & { readonly timeoutMs: number | undefined };

/** The defaults of {@link SandboxLimits}. */
export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  cpuPerCallMs: 5_000,
  cpuTotalMs: 60_000,
  timeoutMs: undefined,
  maxMemoryBytes: 128 * 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
  maxOpenFiles: 64,
  bridgeTimeoutMs: 30_000,
});

/** The policy a container starts with; compiled inside the worker for the container's syscall table. */
export interface SandboxPolicy {
  /** The parsed policy document (`parsePolicy(text).policy`). */
  readonly document: Policy;
  /** The container's identity. */
  readonly identity: IdentityInit;
  /** Enforcement mode; default `enforce`. */
  readonly mode?: EnforcementMode;
  /** Tightenings laid over the policy. */
  readonly tightenings?: readonly Tightening[];
}

/** A change of a running container's policy; fields left out keep their value. */
export interface PolicyUpdate {
  /** A new policy document. */
  readonly document?: Policy;
  /** A new enforcement mode. */
  readonly mode?: EnforcementMode;
  /** The new full list of tightenings. */
  readonly tightenings?: readonly Tightening[];
}

/** An async handler of bridge calls, run on the main thread. */
export type BridgeHandler = (payload: unknown) => Promise<unknown>;

/** What {@link SandboxPool.start} runs. Everything but `handlers` and `onOutput` is sent to the worker. */
export interface SandboxSpec<D = unknown> {
  /**
   * The runner: a built-in name (`builtin:core`) or a module specifier/URL the worker imports; the module
   * exports `run(env)` (or a default function) — see {@link RunnerModule}.
   */
  readonly runner: string;
  /** Structured-cloneable data for the runner (module bytes, options). */
  readonly data: D;
  /** The container's policy; without one every gated call is denied. */
  readonly policy?: SandboxPolicy;
  /** Limits over the pool's defaults. */
  readonly limits?: SandboxLimits;
  /** Async handlers the worker can call synchronously through {@link SyncBridge.call}. */
  readonly handlers?: Readonly<Record<string, BridgeHandler>>;
  /** Receives output chunks as the guest writes them. */
  readonly onOutput?: (stream: 'stdout' | 'stderr', bytes: Uint8Array) => void;
  /**
   * Receives the container's call records, block by block and in order, before `result` settles. When
   * given, the worker records every call of gates made with {@link RunnerEnv.createGate} into a
   * {@link RingRecorder} in shared memory and hands each block to the kernel: a full block every
   * `recordBlockSize` calls, and the partial block when the container ends, when a gated call is about to
   * block on quarantine, when a serving call returns, and when the runner fails. A block normally stays in
   * its shared slot and the kernel thread copies it out (the worker only posts a few numbers); when the
   * kernel falls behind and no slot is free, the worker posts a copy. Each block given to this callback is
   * the kernel's own copy. Decode with `decodeBlock(block, container.syscalls)`.
   *
   * When the kernel kills the worker (CPU budget, `terminate`, a crash), the calls not yet handed over are
   * salvaged from the shared memory and delivered as a last block before `result` rejects.
   */
  readonly onRecords?: (block: RawBlock) => void;
  /**
   * Keep the output in the result (`RunResult.stdout`/`stderr`); default true. Turn it off when `onOutput`
   * consumes the output (a long-running CLI guest), so the kernel does not hold it all.
   */
  readonly retainOutput?: boolean;
  /** Calls per record block; default 256. Smaller blocks lose less when a container is killed. */
  readonly recordBlockSize?: number;
  /** A container id; a random one when omitted. */
  readonly id?: string;
  /**
   * Start from a snapshot (`readSnapshot` verified it; see docs/snapshots.md): the runner restores its
   * memories and globals into its fresh instance before any call (and refuses another module with
   * `SNAPSHOT_MODULE_MISMATCH`), and the container's gates number calls from the snapshot's trace position
   * (`snapshot.trace.seq`, 0 without one), so its records continue the execution DNA where it stood. Only
   * runners that support snapshots accept it (`builtin:core` and `builtin:wasi-p1` serving,
   * `builtin:component-snapshot`); the others fail with `SNAPSHOT_UNSUPPORTED`.
   */
  readonly snapshot?: SnapshotState;
}

/**
 * What {@link SandboxedContainer.snapshot} captured: the instances' state (container id set, no trace
 * position: the kernel adds the trace id and block hash it knows) and the sequence number of the
 * container's next call.
 */
export interface ContainerSnapshot {
  /** The captured memories and globals, with the container id; `trace` is not set. */
  readonly state: SnapshotState;
  /** The sequence number of the container's next call: every call below it was recorded before the capture. */
  readonly seq: number;
}

/** Counters of a container, read from shared memory without stopping it. */
export interface ContainerStats {
  /** The container id. */
  readonly id: string;
  /** Lifecycle phase. */
  readonly phase: 'running' | 'serving' | 'done' | 'failed';
  /** The control state word: `running`, `quarantined` or `terminated`. */
  readonly state: 'running' | 'quarantined' | 'terminated';
  /** Calls that crossed the gate. */
  readonly calls: number;
  /** The syscall id in progress, or -1. */
  readonly inCall: number;
  /** ms spent running guest code, including the current run. */
  readonly guestMs: number;
  /** ms of the current guest run, or 0 when the guest is not running. */
  readonly currentRunMs: number;
  /** ms since the container started. */
  readonly wallMs: number;
  /** Output bytes accepted. */
  readonly outputBytes: number;
  /** Linear memory pages last reported by the runner. */
  readonly memoryPages: number;
}

/** The outcome of a container that ended normally. */
export interface RunResult {
  /** What the runner returned (or the value given at close for serving containers). */
  readonly value: unknown;
  /** Everything written to stdout (bounded by `maxOutputBytes`; empty with `retainOutput: false`). */
  readonly stdout: Uint8Array;
  /** Everything written to stderr (bounded by `maxOutputBytes`). */
  readonly stderr: Uint8Array;
  /** The final counters. */
  readonly stats: ContainerStats;
}

/** Worker side: a synchronous call into the main thread's async handlers. */
export interface SyncBridge {
  /**
   * Call a main-thread handler and block this thread until it settles.
   * @param method - the handler name
   * @param payload - structured-cloneable payload
   * @param timeoutMs - how long to wait; default the container's `bridgeTimeoutMs`
   * @returns the handler's value
   * @throws ForgeError with the handler's code, `NOT_FOUND` for an unknown handler, `SANDBOX_TIMEOUT` on timeout
   */
  call(method: string, payload: unknown, timeoutMs?: number): unknown;
}

/** What a runner receives in the worker. */
export interface RunnerEnv<D = unknown> {
  /** The container id. */
  readonly id: string;
  /** The spec's data. */
  readonly data: D;
  /** The control array shared with the kernel. */
  readonly control: Int32Array;
  /** The container's limits (runners enforce `maxOpenFiles` and apply `maxMemoryBytes` with `limitMemory`). */
  readonly limits: ResolvedLimits;
  /** `maxMemoryBytes` in 64 KiB pages, for `limitMemory`. */
  readonly maxMemoryPages: number;
  /** The container's syscall table (the catalogue interned in order). */
  readonly syscalls: SyscallTable;
  /** The container's live policy: picks up updates at the next decision. */
  readonly policy: GatePolicy;
  /**
   * Whether the spec gave a kernel policy. Without one {@link RunnerEnv.policy} denies every call; a runner
   * that brings its own policy (capabilities) then uses that alone.
   */
  readonly kernelPolicy: boolean;
  /** The container's recorder when the spec asked for records (`onRecords`), else undefined. */
  readonly recorder: RingRecorder | undefined;
  /** Post the recorder's partial block now (no-op without records). */
  flushRecords(): void;
  /** The synchronous bridge to the main thread. */
  readonly bridge: SyncBridge;
  /**
   * The state to restore into the runner's fresh instance before any call (the spec's `snapshot`), or
   * undefined. A runner that cannot restore must fail with `SNAPSHOT_UNSUPPORTED` when it is set.
   */
  readonly snapshot: SnapshotState | undefined;
  /** The sequence number of the first call of the container's gates: the snapshot's trace position, or 0. */
  readonly startSeq: number;
  /** Counting sink for stdout (shares the output budget with stderr). */
  readonly stdout: OutputSink;
  /** Counting sink for stderr. */
  readonly stderr: OutputSink;
  /**
   * A gate over the container's control array and live policy, blocking on quarantine, that marks guest
   * runs for the CPU watchdog on every enter and exit, and records into the container's recorder. Its
   * calls are numbered from {@link RunnerEnv.startSeq}.
   * @param options - a recorder (default the container's), a policy (default {@link RunnerEnv.policy}; e.g.
   *   `intersectPolicies(env.policy, capabilities)`) and a quarantine callback
   * @returns the gate
   */
  createGate(options?: {
    readonly recorder?: CallRecorder;
    readonly policy?: GatePolicy;
    readonly onQuarantine?: (syscall: string, decision: Decision) => void;
  }): Gate;
  /**
   * Run guest code under the CPU watchdog (an export call). Nested host calls through a gate from
   * {@link RunnerEnv.createGate} pause the clock.
   * @param fn - the guest entry
   * @returns what it returns
   */
  guest<T>(fn: () => T): T;
  /**
   * Apply pending policy updates now (the gate does this at each decision).
   * @returns true when an update was applied
   */
  pollPolicy(): boolean;
  /**
   * Be told of policy updates (called inside the gated call that picks them up).
   * @param cb - receives the update
   * @returns a function removing the listener
   */
  onPolicyUpdate(cb: (update: PolicyUpdate) => void): () => void;
  /**
   * Report the guest's memory size for {@link ContainerStats}.
   * @param pages - current pages
   */
  reportMemory(pages: number): void;
  /**
   * Mark an instance as serving calls: return the value from `run` to keep the container alive.
   * @param instance - handles {@link SandboxedContainer.call} and close
   * @returns the value `run` must return
   */
  serve(instance: RunnerInstance): unknown;
}

/** What a runner's `run` may return: a value (the container ends), or an instance serving repeated calls. */
export interface RunnerInstance {
  /** Invoke an export with structured-cloneable input; the guest run is metered by the sandbox. */
  call?(name: string, input: unknown): unknown;
  /** Called when the container is closed; its value becomes the result's value. */
  close?(): unknown;
  /**
   * Capture the instance's memories and globals between two calls (the sandbox never calls it while a
   * call runs). The container id is set; the sandbox adds the trace position.
   * @returns the state (`Snapshotter.capture` of `@forgeone/observer`)
   */
  snapshot?(): SnapshotState;
}

/** A runner module: `run` (or the default export) runs the guest. */
export interface RunnerModule {
  /** Run the guest; return a value, or `env.serve(instance)` to serve calls. */
  readonly run?: Runner;
  /** Same as `run`. */
  readonly default?: Runner;
  /**
   * Optional warm-up the worker runs before it reports ready (for built-in runners): exercise the runner's
   * code paths once on a throw-away guest, so the first real container does not pay for cold code.
   */
  readonly warm?: () => unknown;
  /**
   * Whether the runner restores {@link RunnerEnv.snapshot} (a start from a snapshot). A container started
   * from a snapshot with a runner that does not say so fails with `SNAPSHOT_UNSUPPORTED`.
   */
  readonly snapshots?: boolean;
}

/**
 * Runs a guest inside the worker. Return a value to end the container with it, or `env.serve(instance)` to
 * keep the container alive for {@link SandboxedContainer.call}.
 */
export type Runner = (env: RunnerEnv) => unknown;

/** A running container. */
export interface SandboxedContainer {
  /** The container id. */
  readonly id: string;
  /** The control array shared with the worker (quarantine flag, policy epoch, call counters). */
  readonly control: Int32Array;
  /** The container's syscall names, mirrored from the worker: decode record blocks with it. */
  readonly syscalls: SyscallTable;
  /** Settles when the container ends: the run result, or a ForgeError with the failure's code. */
  readonly result: Promise<RunResult>;
  /**
   * Resolves when the runner is serving calls (after `run` returned an instance); rejects like `result`
   * when the container ends before.
   */
  readonly serving: Promise<void>;
  /**
   * Invoke an export of a serving container.
   * @param name - the export
   * @param input - structured-cloneable input
   * @returns the value the runner returned
   * @throws ForgeError (rejection) with the call's error, or the container's when it fails meanwhile
   */
  call(name: string, input?: unknown): Promise<unknown>;
  /** Set the quarantine flag: the guest's next gated call blocks until release or termination. */
  quarantine(): void;
  /** Clear the quarantine flag: a blocked call continues. */
  release(): void;
  /**
   * Terminate: a blocked call wakes and is refused, the worker is stopped, the container ends with
   * `CONTAINER_TERMINATED`.
   * @param reason - why, kept in the error's message and details
   * @returns resolves when the worker is gone
   */
  terminate(reason?: string): Promise<void>;
  /**
   * End a serving container normally (the runner's `close` runs); `result` resolves.
   * @returns the result
   */
  close(): Promise<RunResult>;
  /**
   * Capture a serving container's state between two calls: the worker answers after every call sent before
   * it has returned, and before any call sent after it starts (the guest is between exported calls; no
   * stack is captured). Every record of the calls before the capture has been handed to `onRecords` when
   * this resolves.
   * @param timeoutMs - how long to wait for the guest to be between calls (default 30 000)
   * @returns the state and the sequence number of the next call
   * @throws ForgeError (rejection) `SNAPSHOT_UNSUPPORTED` when the container does not serve calls or its
   *   runner cannot capture (see {@link SandboxSpec.snapshot}), or state it cannot hold;
   *   `CONTAINER_QUARANTINED` when the container is held (release it first); `SANDBOX_TIMEOUT` when no call
   *   boundary came in time; the container's error when it ends meanwhile
   */
  snapshot(timeoutMs?: number): Promise<ContainerSnapshot>;
  /**
   * Change the container's policy while it runs: the next gated call decides with the new policy.
   * @param update - what changes
   */
  updatePolicy(update: PolicyUpdate): void;
  /** @returns the counters */
  stats(): ContainerStats;
}

/** Options of {@link createSandboxPool}. */
export interface SandboxPoolOptions {
  /** Warm workers kept ready; default 2. */
  readonly size?: number;
  /** Containers alive at once; more are refused with `SANDBOX_LIMIT_EXCEEDED`. Default 16. */
  readonly maxContainers?: number;
  /** The worker script; default `worker.js` beside the built library (`@forgeone/execution/worker`). */
  readonly workerUrl?: string | URL;
  /** Runner modules each warm worker imports before it is handed out. */
  readonly preload?: readonly string[];
  /** V8 heap limits of each worker: the second memory fence (JS heap only; wasm memory is limited by rewriting). */
  readonly resourceLimits?: {
    readonly maxOldGenerationSizeMb?: number;
    readonly maxYoungGenerationSizeMb?: number;
    readonly codeRangeSizeMb?: number;
    readonly stackSizeMb?: number;
  };
  /** Limits applied to every container (each spec may override). */
  readonly limits?: SandboxLimits;
  /** How often the watchdog checks CPU budgets, in ms; default 10. */
  readonly watchdogIntervalMs?: number;
  /**
   * The buffer of a coarse clock (`createCoarseClock().buffer`): when given, each worker's gates and guest
   * clock read time from it instead of calling `performance.now()` on every host call.
   */
  readonly clockBuffer?: SharedArrayBuffer;
  /** How long `terminate` lets the worker unwind before stopping it, in ms; default 50. */
  readonly terminateGraceMs?: number;
}

/** A pool of pre-warmed sandbox workers. */
export interface SandboxPool {
  /**
   * Start a container on a warm worker.
   * @param spec - runner, data, policy, limits, handlers
   * @returns the container handle
   * @throws ForgeError `SANDBOX_LIMIT_EXCEEDED` at `maxContainers`, `INVALID_ARGUMENT` for a bad spec or a closed pool
   */
  start<D>(spec: SandboxSpec<D>): SandboxedContainer;
  /** Containers alive now. */
  readonly active: number;
  /** Warm workers ready now. */
  readonly warm: number;
  /**
   * Resolves when `size` warm workers have finished starting (and preloading).
   * @returns resolves when warm
   */
  ready(): Promise<void>;
  /**
   * Stop every worker; running containers end with `CONTAINER_TERMINATED`.
   * @returns resolves when all workers are gone
   */
  close(): Promise<void>;
}
