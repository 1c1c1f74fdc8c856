import type { Clock, TrustLevelName } from '@forgeone/common';
import type { KernelConfig, KernelConfigInput } from '@forgeone/config';
import type { BootResult, ContainerRecord, ContainerRegistry, MeasurementInput, PriorityClass, RecoveryReport, RestartPolicy, Scheduler, SchedulerPolicy } from '@forgeone/core';
import type { CryptoProvider, SigningKey, TrustRootDocument } from '@forgeone/crypto';
import type { ReplayReport, RunOutcome, SandboxPool } from '@forgeone/execution';
import type { AnomalyFlag, AuditLog, Metrics, Telemetry, TraceCallRecord, TraceExplanation, TraceSummary } from '@forgeone/observer';
import type { Store } from '@forgeone/store';
import type { SelfTestReport } from '@forgeone/diagnostics';
import type { PolicyEngine, Redzone } from '@forgeone/trust';

/** What the kernel asks of an anomaly detector (`@forgeone/diagnostics` detectors fit). */
export interface KernelAnomalyDetector {
  /**
   * Score a finished run of a package.
   * @param records - the run's call records
   * @param key - the package
   * @returns a score in [0, 1] and flags for the trace summary
   */
  score(records: readonly TraceCallRecord[], key: { readonly packageName: string; readonly packageVersion: string }): { readonly score: number; readonly flags: readonly AnomalyFlag[] } | Promise<{ readonly score: number; readonly flags: readonly AnomalyFlag[] }>;
}

/** Options of the measured boot. */
export interface KernelBootOptions {
  /** Extra inputs to measure (the kernel measures its own packages, the config, the policy and the trust root). */
  readonly inputs?: readonly MeasurementInput[];
  /** Signed golden measurements (a document, or a path); without them the boot verdict is `unknown`. */
  readonly golden?: unknown;
  /** Path of the golden measurements file; default `<home>/golden.json` when it exists. */
  readonly goldenPath?: string;
  /** Measure the kernel's own package files (default true). */
  readonly measureKernel?: boolean;
}

/**
 * Options of {@link createKernel}. Only the trust root is required; every subsystem has a default and can be
 * replaced by another implementation of its interface.
 */
export interface KernelOptions {
  /** The trust anchor: a trust root document, or the path of its file. */
  readonly trustRoot: TrustRootDocument | string;
  /** The kernel's home: the file store lives in `<home>/state`, golden values in `<home>/golden.json`. Without it (and without `store`) state is in memory. */
  readonly home?: string;
  /** The kernel config (defaults for every field); it is measured at boot. */
  readonly config?: KernelConfigInput;
  /** The kernel policy (YAML or JSON text); default {@link DEFAULT_KERNEL_POLICY}. It is measured at boot. */
  readonly policy?: string;
  /** The kernel's signing key (traces, audit log, boot quote); default: kept in `<home>/kernel.key`, or a new one per process without a home. */
  readonly kernelKey?: SigningKey;
  /** Boot options. */
  readonly boot?: KernelBootOptions;
  /** Crypto provider; default node:crypto. */
  readonly crypto?: CryptoProvider;
  /** Store; default a file store in `<home>/state`, or a memory store. */
  readonly store?: Store;
  /** Clock; default the system clock. */
  readonly clock?: Clock;
  /** Container registry; default `createContainerRegistry` over the store. */
  readonly registry?: ContainerRegistry;
  /** Scheduler; default `createScheduler` with one local node sized by the config. */
  readonly scheduler?: Scheduler;
  /** Scheduler policy for the default scheduler. */
  readonly schedulerPolicy?: SchedulerPolicy;
  /** Anomaly detector scoring each finished run; default none. */
  readonly anomalyDetector?: KernelAnomalyDetector;
  /** Sandbox pool; default `createSandboxPool` sized by the config (created at the first launch). */
  readonly pool?: SandboxPool;
  /** Audit log; default `createAuditLog` over the store. */
  readonly audit?: AuditLog;
  /** Red zone; default `createRedzone`. */
  readonly redzone?: Redzone;
  /** Telemetry; default `createTelemetry` with Prometheus metrics. */
  readonly telemetry?: Telemetry;
  /** Transpile cache directory; default `<home>/cache`, or a private per-user directory. */
  readonly cacheDir?: string;
  /**
   * A signed config file (`@forgeone/config`, signed by the trust root's `config` role): used instead of
   * `config`, measured at boot, and reloaded live when it changes — a new version is accepted only with a
   * valid signature and a higher version; every decision is audited (`config.changed`).
   */
  readonly configFile?: string;
  /** Watch `configFile` for changes (default true when it is given). */
  readonly watchConfig?: boolean;
}

/** Something the kernel tells its listeners (the API's event stream). */
export type KernelEvent =
  | { readonly type: 'container.state'; readonly id: string; readonly status: string; readonly reason?: string; readonly time: number }
  | { readonly type: 'denial'; readonly id: string; readonly seq: number; readonly syscall: string; readonly verdict: string; readonly rule: string | null; readonly time: number }
  | { readonly type: 'quarantine'; readonly id: string; readonly reason: string; readonly time: number }
  | { readonly type: 'release'; readonly id: string; readonly time: number }
  | { readonly type: 'policy.changed'; readonly version: number; readonly revision: number; readonly kind: string; readonly time: number }
  | { readonly type: 'config.changed'; readonly version: number; readonly accepted: boolean; readonly code?: string; readonly time: number };

/** What to launch. */
export interface LaunchRequest {
  /** A signed `.forgepkg` (verified against the trust root before anything runs). */
  readonly package: Uint8Array;
  /** The input of the plugin's `run`; default the empty string. */
  readonly input?: string;
  /** Who runs it; default `plugin:<package name>`. */
  readonly subject?: string;
  /** Tenant; default `default`. */
  readonly tenant?: string;
  /** Trust level of the identity; default `Verified`. `Compromised` never runs. */
  readonly trust?: TrustLevelName;
  /** Priority class; default `normal`. */
  readonly priority?: PriorityClass;
  /** Resources to reserve; default 64 MiB and one CPU slot. */
  readonly resources?: { readonly memoryMb?: number; readonly cpuSlots?: number };
  /** What happens after a kernel restart; default `never`. */
  readonly restartPolicy?: RestartPolicy;
  /** CPU budget of the run in ms; default the config's. */
  readonly cpuBudgetMs?: number;
  /** A container name; default the package name. */
  readonly name?: string;
  /**
   * Keep the container alive serving calls ({@link Kernel.call}) instead of running `run(input)` once;
   * `input` is not used. A serving container can be snapshotted between calls ({@link Kernel.snapshot}) and
   * ends with {@link Kernel.stop}. Its component is prepared for snapshots in the worker.
   */
  readonly serve?: boolean;
  /**
   * Start from a snapshot taken by this kernel ({@link Kernel.snapshot}): the file's bytes, or its path.
   * Verified before anything runs — signed by the kernel key (else `SNAPSHOT_INVALID`), taken of this
   * package's component (else `SNAPSHOT_MODULE_MISMATCH`); a refusal is audited. The container serves
   * calls, starts with the snapshot's memories and globals, and its trace names the snapshot
   * (`restoredFrom` in the header) and continues at its sequence number.
   */
  readonly fromSnapshot?: Uint8Array | string;
}

/** A snapshot the kernel took ({@link Kernel.snapshot}). */
export interface KernelSnapshot {
  /** The signed snapshot file (`FGSNAP1`, see `@forgeone/observer` `readSnapshot`). */
  readonly bytes: Uint8Array;
  /** SHA3-256 (hex) of the file: how the audit log and a restored container's trace name it. */
  readonly digest: string;
  /** The container it was taken of. */
  readonly containerId: string;
  /** That container's trace. */
  readonly traceId: string;
  /** The sequence number of the container's next call: a restored container's records start here. */
  readonly seq: number;
  /** SHA3-256 (hex) of the component it holds the state of. */
  readonly moduleHash: string;
  /** Where the file was written, when a path was given. */
  readonly path?: string;
}

/** The end of a container's run. */
export interface ContainerReport {
  /** Container id. */
  readonly id: string;
  /** Trace id of its execution DNA. */
  readonly traceId: string;
  /** The final lifecycle record. */
  readonly record: ContainerRecord;
  /** What `run` returned, or null when the run failed. */
  readonly outcome: RunOutcome | null;
  /** The failure, or null. */
  readonly error: { readonly code: string; readonly message: string } | null;
  /** Lines the guest logged (`[level] message`). */
  readonly logs: readonly string[];
  /** The trace summary (integrity, denials, flags). */
  readonly summary: TraceSummary;
  /** The explanation of the run (text and JSON). */
  readonly explanation: TraceExplanation;
}

/** A launched container. */
export interface ContainerHandle {
  /** Container id. */
  readonly id: string;
  /** Trace id. */
  readonly traceId: string;
  /** Resolves once the scheduler admitted it and it started. */
  readonly started: Promise<void>;
  /** Settles when the run ended: the guest's failures are in the report; it rejects only when the kernel itself fails (store, audit). */
  readonly done: Promise<ContainerReport>;
  /** The current lifecycle record. */
  record(): ContainerRecord | undefined;
}

/** The kernel: one working system. */
export interface Kernel {
  /** The boot result (verdict, mode, quote). */
  readonly boot: BootResult;
  /** The config in force. */
  readonly config: KernelConfig;
  /** What the restart recovery found. */
  readonly recovered: RecoveryReport;
  /** The crypto provider. */
  readonly crypto: CryptoProvider;
  /** The store. */
  readonly store: Store;
  /** The audit log. */
  readonly audit: AuditLog;
  /** The container registry. */
  readonly registry: ContainerRegistry;
  /** The scheduler. */
  readonly scheduler: Scheduler;
  /** The red zone. */
  readonly redzone: Redzone;
  /** Telemetry. */
  readonly telemetry: Telemetry;
  /** Prometheus metrics (also behind `telemetry`). */
  readonly metrics: Metrics | undefined;
  /** The kernel's signing key (its public half verifies the traces, the audit log and the boot quote). */
  readonly kernelKey: SigningKey;
  /** The policy engine: the signed policy in force, live tightenings (applied to running containers too). */
  readonly policy: PolicyEngine;
  /** Whether a self-test failed (the kernel keeps running, marked degraded). */
  readonly degraded: boolean;
  /**
   * Subscribe to kernel events.
   * @param listener - called for each event (must not throw)
   * @returns unsubscribe
   */
  onEvent(listener: (event: KernelEvent) => void): () => void;
  /**
   * Containers known to the registry (this process's and recovered ones).
   * @returns their records
   */
  list(): readonly ContainerRecord[];
  /**
   * Verify and keep a package in `<home>/packages` (measured at every later boot).
   * @param bytes - the `.forgepkg`
   * @returns name, version and digest
   */
  install(bytes: Uint8Array): Promise<{ readonly name: string; readonly version: string; readonly digest: string }>;
  /**
   * Pause a running container: its next call blocks until resume (no red zone).
   * @param id - container id
   */
  pause(id: string): Promise<void>;
  /**
   * Resume a paused container.
   * @param id - container id
   */
  resume(id: string): Promise<void>;
  /**
   * Stop a container: it has `graceMs` to finish, then it is terminated.
   * @param id - container id
   * @param options - grace period (default 2000 ms)
   * @returns the report
   */
  stop(id: string, options?: { readonly graceMs?: number }): Promise<ContainerReport>;
  /**
   * Run the self-tests (crypto known answers, policy canaries, store, clock, trust root, sandbox canaries);
   * the results go to the audit log; a failure marks the kernel degraded.
   * @returns the report
   */
  selfTest(): Promise<SelfTestReport>;
  /**
   * Launch a plugin: verify its package, check boot and identity, admit it through the scheduler, run it in a
   * sandbox with its execution DNA recorded.
   * @param request - what to launch
   * @returns the handle
   * @throws ForgeError `BOOT_RECOVERY_MODE`, a package verification code, `IDENTITY_COMPROMISED`, `INVALID_ARGUMENT`
   */
  launch(request: LaunchRequest): Promise<ContainerHandle>;
  /**
   * Start a container from a snapshot: {@link Kernel.launch} with `fromSnapshot`.
   * @param file - the snapshot file's bytes, or its path
   * @param request - the package (the one the snapshot was taken of) and the launch options
   * @returns the handle of the new, serving container
   * @throws ForgeError `SNAPSHOT_INVALID` (altered, truncated, or not signed by this kernel's key),
   *   `SNAPSHOT_MODULE_MISMATCH` (another package), as {@link Kernel.launch}
   */
  restore(file: Uint8Array | string, request: Omit<LaunchRequest, 'fromSnapshot'>): Promise<ContainerHandle>;
  /**
   * Call an export of a serving container (launched with `serve` or from a snapshot).
   * @param id - container id
   * @param input - the export's input
   * @param options - the export; default `run`
   * @returns what the guest returned
   * @throws ForgeError `NOT_FOUND`, `INVALID_ARGUMENT` (the container does not serve), the call's error
   */
  call(id: string, input: string, options?: { readonly export?: string }): Promise<RunOutcome>;
  /**
   * Snapshot a serving container between two calls: its instances' memories and globals and its trace
   * position, after a signed `snapshot` checkpoint of its trace, in a file signed by the kernel key. Audited
   * (`api.action`, action `snapshot`). The container goes on serving.
   * @param id - container id
   * @param options - a path to write the file to (atomically); without it only the bytes are returned
   * @returns the file and what it names
   * @throws ForgeError `NOT_FOUND`, `SNAPSHOT_UNSUPPORTED` (the container does not serve calls, or holds
   *   state a snapshot cannot), `CONTAINER_TERMINATED` (it ended meanwhile)
   */
  snapshot(id: string, options?: { readonly path?: string }): Promise<KernelSnapshot>;
  /**
   * A launched container of this kernel process.
   * @param id - container id
   * @returns the handle, or undefined
   */
  get(id: string): ContainerHandle | undefined;
  /**
   * Move a running container to the red zone: its next call blocks; evidence is kept; audited; a signed
   * trace checkpoint is written.
   * @param id - container id
   * @param reason - why
   */
  quarantine(id: string, reason: string): Promise<void>;
  /**
   * Release a quarantined container: its blocked call continues to its decision.
   * @param id - container id
   */
  release(id: string): Promise<void>;
  /**
   * Terminate a container: its blocked call is refused and the worker stopped.
   * @param id - container id
   * @param reason - why
   */
  terminate(id: string, reason: string): Promise<void>;
  /**
   * Export the execution DNA of a container (JSON lines, verifiable offline with the kernel key).
   * @param id - container id
   * @returns the trace file text
   */
  exportTrace(id: string): Promise<string>;
  /**
   * Replay a finished container from its trace and its package.
   * @param id - container id
   * @returns the replay report
   */
  replay(id: string): Promise<ReplayReport>;
  /**
   * Decide and record a call made on behalf of an embedded (in-process, trusted) workload: the prelude's
   * `secureSyscall`. The call crosses a gate with the kernel policy for `subject` and is recorded in that
   * subject's session trace; `perform` runs only when allowed.
   * @param subject - who calls
   * @param syscall - the syscall name
   * @param args - canonical arguments
   * @param perform - the host operation
   * @returns the verdict and, when allowed, what `perform` returned
   */
  secureSyscall<T>(subject: string, syscall: string, args: SyscallArgs, perform?: () => T): Promise<SecureSyscallResult<T>>;
  /** Stop every container, close the pool, the clock and the store. Idempotent. */
  shutdown(): Promise<void>;
}

/** Canonical arguments of {@link Kernel.secureSyscall}. */
export interface SyscallArgs {
  /** A guest path (canonicalised before matching). */
  readonly path?: string;
  /** A host (lowercased before matching). */
  readonly host?: string;
  /** A port. */
  readonly port?: number;
  /** A size in bytes. */
  readonly size?: number;
  /** Other canonical detail. */
  readonly detail?: string;
}

/** The result of {@link Kernel.secureSyscall}. */
export interface SecureSyscallResult<T> {
  /** Whether the call was performed. */
  readonly allowed: boolean;
  /** The verdict. */
  readonly verdict: string;
  /** The deciding rule, or null. */
  readonly rule: string | null;
  /** The refusal code, or null. */
  readonly code: string | null;
  /** What `perform` returned, when allowed. */
  readonly value?: T;
}
