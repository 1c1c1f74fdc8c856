import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable, createIdentity, newId, systemClock, toForgeError, toHex, trustVector, type TrustLevelName } from '@forgeone/common';
import { createFileConfigSource, parseConfig, type ConfigSource, type KernelConfig } from '@forgeone/config';
import { builtinSelfTests, createSelfTestRegistry, sandboxSelfTests, type SelfTestReport } from '@forgeone/diagnostics';
import {
  assertWorkloadsAllowed,
  createBoot,
  createContainerRegistry,
  createLocalNode,
  createScheduler,
  kernelInputs,
  type BootResult,
  type ContainerRecord,
  type ContainerRegistry,
  type MeasurementInput,
  type Scheduler,
} from '@forgeone/core';
import { NodeCryptoProvider, SigningKey, type CryptoProvider, createPackageVerifier, loadSigningKey, parseTrustRoot, saveSigningKey, type TrustRootDocument, type VerifiedPackage } from '@forgeone/crypto';
import {
  COMPONENT_RUNNER,
  COMPONENT_SNAPSHOT_RUNNER,
  Gate,
  RingRecorder,
  canonicalHost,
  canonicalPath,
  componentBridgeHandlers,
  createCoarseClock,
  createSandboxPool,
  decodeBlock,
  defaultComponentCacheDir,
  detectWasmKind,
  pluginCapabilities,
  prepareComponentModules,
  replayComponent,
  type CallRecord,
  type ComponentRunnerData,
  type ComponentSnapshotRunnerData,
  type ReplayReport,
  type RunOutcome,
  type SandboxPool,
  type SandboxedContainer,
} from '@forgeone/execution';
import {
  createAuditLog,
  createMetrics,
  createTelemetry,
  createTraceWriter,
  explainTrace,
  exportTrace,
  parseTrace,
  readSnapshot,
  tracePositionOf,
  verifyTrace,
  writeSnapshot,
  writeSnapshotFile,
  type AuditLog,
  type Snapshot,
  type TraceCallRecord,
  type TraceWriter,
} from '@forgeone/observer';
import { createFileStore, createMemoryStore, type Store } from '@forgeone/store';
import { createPolicyEngine, createRedzone, parsePolicy, type Policy } from '@forgeone/trust';
import type { ContainerHandle, ContainerReport, Kernel, KernelEvent, KernelOptions, KernelSnapshot, LaunchRequest, SecureSyscallResult, SyscallArgs } from './types.js';

/**
 * The kernel's default policy: what any plugin may do once its package requested it (the package's
 * capabilities are laid over it: a call needs both), and the red lines that quarantine at once: system paths,
 * and the cloud metadata address.
 */
export const DEFAULT_KERNEL_POLICY = `
apiVersion: forgeone.policy/v1
name: forgeone-kernel-default
version: 1
defaultAction: deny
root: base
nodes:
  base:
    description: what any plugin may do once its package requested it
    rules:
      - { id: metadata, action: quarantine, syscalls: ["forgeone:http/fetch", "wasi:http/*", "wasi:sockets/*"], args: { host: { in: ["169.254.169.254", "metadata.google.internal"] } }, reason: the cloud metadata address is never a plugin's business }
      - { id: system-paths, action: quarantine, syscalls: ["wasi:filesystem/*"], args: { path: { match: ["/etc/**", "/proc/**", "/sys/**"] } }, reason: system paths are never a plugin's business }
      - { id: basics, action: allow, syscalls: ["forgeone:log/write", "forgeone:time/now", "forgeone:identity/get", "forgeone:info/get", "wasi:cli/*", "wasi:clocks/*", "wasi:random/*", "wasi:io/*"], reason: plugin basics }
      - { id: kv, action: allow, syscalls: ["forgeone:kv/*"], args: { path: { match: ["/**"] } }, reason: kv under canonical keys }
      - { id: files, action: allow, syscalls: ["wasi:filesystem/*"], reason: files the package requested }
      - { id: network, action: allow, syscalls: ["forgeone:http/fetch", "wasi:http/*", "wasi:sockets/*"], reason: hosts the package requested }
`;

/** Denials after which the kernel moves a container to the red zone (it sees them block by block). */
export const QUARANTINE_AFTER_DENIALS = 5;

// Sandbox canaries of the self-test (WASI preview1 modules, assembled from WAT with wabt):
// (module (memory 1) (func (export "_start") (loop (br 0))))
const SPIN_CANARY = 'AGFzbQEAAAABBAFgAAADAgEABQMBAAEHEwIGbWVtb3J5AgAGX3N0YXJ0AAAKCQEHAANADAALCw==';
// _start: proc_exit(environ_sizes_get(0, 4)) — asks for the environment, which no canary is granted.
const HOSTILE_CANARY =
  'AGFzbQEAAAABDgNgAn9/AX9gAX8AYAAAAk8CFndhc2lfc25hcHNob3RfcHJldmlldzERZW52aXJvbl9zaXplc19nZXQAABZ3YXNpX3NuYXBzaG90X3ByZXZpZXcxCXByb2NfZXhpdAABAwIBAgUDAQABBxMCBm1lbW9yeQIABl9zdGFydAACCgwBCgBBAEEEEAAQAQs=';

/** Calls per record block of kernel containers: small, so the kernel sees a hostile guest early. */
const RECORD_BLOCK_SIZE = 8;

interface Live {
  readonly id: string;
  readonly traceId: string;
  readonly writer: TraceWriter;
  readonly records: TraceCallRecord[];
  readonly verified: VerifiedPackage;
  readonly input: string;
  /** Whether the container serves calls (`serve`, or started from a snapshot). */
  readonly serving: boolean;
  /** The sequence number of its first call: the snapshot's position when restored, else 0. */
  readonly firstSeq: number;
  /** The verified snapshot it starts from, if any. */
  readonly snapshot: Snapshot | undefined;
  container: SandboxedContainer | undefined;
  denials: number;
  quarantined: boolean;
  redzoneId: string | undefined;
  handle: ContainerHandle;
  markStarted: () => void;
  /** Counters read just before the kernel terminated the container (a killed run's own counters are lost with it). */
  lastStats?: { readonly guestMs: number; readonly calls: number; readonly memoryPages: number };
}

const KERNEL_PACKAGES = ['@forgeone/common', '@forgeone/crypto', '@forgeone/trust', '@forgeone/store', '@forgeone/observer', '@forgeone/execution', '@forgeone/core', '@forgeone/config'];

function kernelPackageDirs(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const dirs: Record<string, string> = {};
  for (const name of KERNEL_PACKAGES) {
    try {
      dirs[name] = dirname(require.resolve(`${name}/package.json`));
    } catch {
      // measured as poison below: a kernel package that cannot be found is never skipped silently
      dirs[name] = join('/nonexistent', name);
    }
  }
  return dirs;
}

/**
 * Build and boot a kernel: crypto, store, audit log, trust root, config, measured boot, restart recovery,
 * scheduler, red zone, telemetry, sandbox pool — each from `options` when given (any implementation of its
 * interface), else the default. A compromised boot leaves the kernel in recovery mode: it answers, but
 * refuses launches with `BOOT_RECOVERY_MODE`.
 *
 * @example
 * ```ts
 * const kernel = await createKernel({ trustRoot: '.forgeone-dev/trust-root.json', home: '.forgeone-home' });
 * console.log(kernel.boot.verdict, kernel.boot.mode);
 * const hello = await kernel.launch({ package: await readFile('plugins/hello/dist/hello.forgepkg'), input: 'ForgeOne' });
 * console.log((await hello.done).outcome);
 * await kernel.shutdown();
 * ```
 * @param options - the trust root, a home, and any replacements
 * @returns the booted kernel
 * @throws ForgeError `CONFIG_INVALID`, `POLICY_INVALID`, trust root codes (a malformed trust root document)
 */
export async function createKernel(options: KernelOptions): Promise<Kernel> {
  const crypto = options.crypto ?? new NodeCryptoProvider();
  const clock = options.clock ?? systemClock;
  const home = options.home;
  if (home !== undefined) mkdirSync(home, { recursive: true, mode: 0o700 });
  const store: Store = options.store ?? (home === undefined ? createMemoryStore() : await createFileStore({ dir: join(home, 'state') }));
  const kernelKey = options.kernelKey ?? (await homeKey(home, crypto));
  const policyText = options.policy ?? DEFAULT_KERNEL_POLICY;
  const policy: Policy = parsePolicy(policyText).policy;
  const trustRootBytes = typeof options.trustRoot === 'string' ? readFileSync(options.trustRoot) : new TextEncoder().encode(JSON.stringify(options.trustRoot));
  const trustRoot: TrustRootDocument = parseTrustRoot(crypto, JSON.parse(new TextDecoder().decode(trustRootBytes)) as unknown);
  const audit: AuditLog = options.audit ?? (await createAuditLog({ store, crypto, signingKey: kernelKey, clock }));
  const listeners = new Set<(e: KernelEvent) => void>();
  const emit = (e: KernelEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own
      }
    }
  };
  let config: KernelConfig;
  let configSource: ConfigSource | undefined;
  let configBytes: Uint8Array;
  if (options.configFile !== undefined) {
    configBytes = readFileSync(options.configFile);
    configSource = createFileConfigSource({
      path: options.configFile,
      trustRoot,
      crypto,
      audit: async (e) => {
        await audit.append({ kind: 'config.changed', subject: 'config', actor: 'kernel', details: { decision: e.kind === 'config.change' ? 'accepted' : 'rejected', version: e.version, previous: e.previous, ...(e.code === undefined ? {} : { code: e.code }) } });
        emit({ type: 'config.changed', version: e.version ?? 0, accepted: e.kind === 'config.change', ...(e.code === undefined ? {} : { code: e.code }), time: clock.now() });
      },
      onChange: (next) => {
        config = next;
      },
    });
    config = await configSource.load();
    if (options.watchConfig !== false) configSource.watch();
  } else {
    config = parseConfig(options.config ?? {});
    configBytes = new TextEncoder().encode(JSON.stringify(config));
  }

  // Measured boot: the trust root, the config, the policy, the kernel's own packages, and extra inputs.
  const inputs: MeasurementInput[] = [
    { name: 'config', kind: 'config', source: { bytes: configBytes } },
    { name: 'policy', kind: 'policy', source: { bytes: new TextEncoder().encode(policyText) } },
    ...installedPackages(home),
    ...(options.boot?.measureKernel === false ? [] : await kernelInputs(kernelPackageDirs())),
    ...(options.boot?.inputs ?? []),
  ];
  const goldenPath = options.boot?.goldenPath ?? (home !== undefined && existsSync(join(home, 'golden.json')) ? join(home, 'golden.json') : undefined);
  const boot = createBoot({
    crypto,
    ...(typeof options.trustRoot === 'string' ? { trustRootPath: options.trustRoot } : { trustRoot: options.trustRoot }),
    inputs,
    ...(options.boot?.golden !== undefined ? { golden: options.boot.golden } : goldenPath !== undefined ? { goldenPath } : {}),
    kernelKey,
    allowDegraded: config.boot.allowDegraded,
    audit: async (event) => void (await audit.append(event as never)),
    clock,
  });
  const bootResult: BootResult = await boot.boot();

  const registry: ContainerRegistry = options.registry ?? (await createContainerRegistry({ store, clock }));
  const recovered = await registry.recover();
  for (const r of recovered.failed) {
    await audit.append({ kind: 'container.stopped', subject: r.id, actor: 'kernel', details: { status: r.status, reason: r.reason?.message ?? 'kernel restart', code: r.reason?.code ?? 'KERNEL_RESTART' } });
  }
  const scheduler: Scheduler =
    options.scheduler ??
    createScheduler({
      nodes: [createLocalNode({ id: config.node.id, capacity: { memoryMb: config.scheduler.memoryMb, cpuSlots: config.scheduler.cpuSlots, maxInstances: config.scheduler.maxInstances } })],
      ...(options.schedulerPolicy === undefined ? {} : { policy: options.schedulerPolicy }),
      clock,
      agingMs: config.scheduler.agingMs,
    });
  const redzone = options.redzone ?? createRedzone({ clock });
  const engine = createPolicyEngine({ provider: crypto, trustRoot, initial: policy, clock });
  const metrics = createMetrics();
  const telemetry = options.telemetry ?? createTelemetry({ metrics });
  const verifier = createPackageVerifier({ provider: crypto, trustRoot, clock });
  const cacheDir = options.cacheDir ?? (home === undefined ? defaultComponentCacheDir() : join(home, 'cache'));
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });

  let pool: SandboxPool | undefined = options.pool;
  let coarse: ReturnType<typeof createCoarseClock> | undefined;
  const getPool = (): SandboxPool => {
    if (pool === undefined) {
      coarse = createCoarseClock();
      pool = createSandboxPool({
        size: Math.max(1, config.sandbox.poolSize),
        maxContainers: config.scheduler.maxInstances,
        clockBuffer: coarse.buffer,
        limits: { maxMemoryBytes: config.sandbox.memoryLimitMb << 20, cpuTotalMs: config.sandbox.cpuBudgetMs, cpuPerCallMs: config.sandbox.cpuBudgetMs, maxOutputBytes: config.sandbox.maxOutputBytes },
      });
    }
    return pool;
  };

  const live = new Map<string, Live>();
  const waiting = new Map<string, () => void>();
  let closed = false;
  let degraded = false;
  const state = (id: string, status: string, reason?: string): void => emit({ type: 'container.state', id, status, ...(reason === undefined ? {} : { reason }), time: clock.now() });

  // A policy change (a signed bundle installed, a tightening, a revert) is audited and reaches running
  // containers at once: their next call decides with it.
  engine.onChange((change) => {
    void audit
      .append({ kind: 'policy.changed', subject: engine.policy.name, actor: change.actor, details: { change: change.kind, version: change.version, revision: change.revision, ...(change.tightening === undefined ? {} : { tightening: change.tightening.id, action: change.tightening.action }) } })
      .catch(() => undefined);
    emit({ type: 'policy.changed', version: change.version, revision: change.revision, kind: change.kind, time: clock.now() });
    for (const l of live.values()) l.container?.updatePolicy({ document: engine.policy, tightenings: engine.tightenings });
  });

  const pump = (): void => {
    const tick = scheduler.tick();
    for (const a of tick.admitted) waiting.get(a.workload.id)?.();
    for (const p of tick.preempted) {
      const l = live.get(p.workload.id);
      scheduler.release(p.workload.id);
      if (l !== undefined) void terminate(l.id, `preempted by ${p.by}`);
    }
  };

  const verifyPackage = async (bytes: Uint8Array): Promise<VerifiedPackage> => {
    const v = verifier.verify(bytes);
    if (!v.ok) {
      await audit.append({ kind: 'package.refused', subject: 'package', actor: 'kernel', details: { code: v.error.code, message: v.error.message } });
      throw v.error;
    }
    await audit.append({ kind: 'package.accepted', subject: `${v.value.manifest.name}@${v.value.manifest.version}`, actor: 'kernel', details: { digest: v.value.digest, signers: v.value.signers.length } });
    return v.value;
  };

  const quarantine = async (id: string, reason: string): Promise<void> => {
    const l = live.get(id);
    if (l === undefined) throw new ForgeError('NOT_FOUND', `no live container ${id}`);
    if (l.quarantined) return;
    l.quarantined = true;
    l.container?.quarantine();
    l.redzoneId = redzone.quarantine(id, { reason, traceId: l.traceId, actor: 'kernel' }).id;
    await registry.quarantine(id, { message: reason, code: 'CONTAINER_QUARANTINED' });
    await l.writer.checkpoint('quarantine');
    await audit.append({ kind: 'quarantine', subject: id, actor: 'kernel', details: { reason, traceId: l.traceId, calls: l.records.length, denials: l.denials } });
    emit({ type: 'quarantine', id, reason, time: clock.now() });
    state(id, 'quarantined', reason);
  };

  const release = async (id: string): Promise<void> => {
    const l = live.get(id);
    if (l === undefined || !l.quarantined) throw new ForgeError('NOT_FOUND', `no quarantined container ${id}`);
    l.quarantined = false;
    l.denials = 0;
    if (l.redzoneId !== undefined) redzone.release(l.redzoneId, { actor: 'kernel' });
    l.redzoneId = undefined;
    await registry.resume(id, { message: 'released from the red zone' });
    l.container?.release();
    await audit.append({ kind: 'release', subject: id, actor: 'kernel', details: { traceId: l.traceId } });
    emit({ type: 'release', id, time: clock.now() });
    state(id, 'running', 'released');
  };

  const terminate = async (id: string, reason: string): Promise<void> => {
    const l = live.get(id);
    if (l === undefined) throw new ForgeError('NOT_FOUND', `no live container ${id}`);
    // The worker first: nothing the guest does can outlive the decision.
    if (l.container !== undefined) l.lastStats = l.container.stats();
    await l.container?.terminate(reason);
    if (l.redzoneId !== undefined) redzone.terminate(l.redzoneId, { actor: 'kernel', note: reason });
    await audit.append({ kind: 'termination', subject: id, actor: 'kernel', details: { reason, traceId: l.traceId } });
  };

  const onRecords = (l: Live, records: readonly CallRecord[]): void => {
    void l.writer.append(records);
    l.records.push(...records);
    let quarantineVerdict: CallRecord | undefined;
    for (const r of records) {
      if (!r.allowed) {
        l.denials++;
        emit({ type: 'denial', id: l.id, seq: r.seq, syscall: r.syscall, verdict: r.verdict, rule: r.rule, time: clock.now() });
      }
      if (r.verdict === 'quarantine' && quarantineVerdict === undefined) quarantineVerdict = r;
    }
    if (l.quarantined) return;
    if (quarantineVerdict !== undefined) void quarantine(l.id, `policy rule ${quarantineVerdict.rule ?? '(default)'} quarantined ${quarantineVerdict.syscall} at record ${quarantineVerdict.seq}`).catch(() => undefined);
    else if (l.denials >= QUARANTINE_AFTER_DENIALS) void quarantine(l.id, `${l.denials} denied calls`).catch(() => undefined);
  };

  const run = async (l: Live, request: LaunchRequest, subject: string, trust: TrustLevelName): Promise<ContainerReport> => {
    const { manifest, files } = l.verified;
    const component = files.get(manifest.entry)!;
    const logs: string[] = [];
    let outcome: RunOutcome | null = null;
    let failure: ForgeError | null = null;
    await registry.start(l.id);
    state(l.id, 'running');
    try {
      const kv = await store.kv(`kv/${manifest.name}`);
      const capabilities = pluginCapabilities(manifest.metadata ?? {});
      // A serving container is prepared for snapshots in the worker (its core modules rewritten there).
      const data: ComponentRunnerData | ComponentSnapshotRunnerData = l.serving
        ? { bytes: component, cacheDir, capabilities, identity: { subject } }
        : { bytes: component, compiled: await prepareComponentModules(component, { maxMemoryBytes: config.sandbox.memoryLimitMb << 20, cacheDir }), cacheDir, capabilities, identity: { subject }, input: l.input };
      const container = getPool().start({
        id: l.id,
        runner: l.serving ? COMPONENT_SNAPSHOT_RUNNER : COMPONENT_RUNNER,
        data,
        ...(l.snapshot === undefined ? {} : { snapshot: l.snapshot }),
        policy: { document: engine.policy, identity: { subject, trust: trustVector(trust) }, mode: config.policy.mode, tightenings: engine.tightenings },
        handlers: componentBridgeHandlers({ kv, log: (level, message) => logs.push(`[${level}] ${message}`) }),
        onRecords: (block) => onRecords(l, decodeBlock(block, container.syscalls)),
        recordBlockSize: RECORD_BLOCK_SIZE,
        ...(request.cpuBudgetMs === undefined ? {} : { limits: { cpuTotalMs: request.cpuBudgetMs, cpuPerCallMs: request.cpuBudgetMs } }),
      });
      l.container = container;
      l.markStarted();
      if (closed) void container.terminate('kernel shutdown');
      const span = telemetry.startRun({ containerId: l.id, traceId: l.traceId, package: { name: manifest.name, version: manifest.version }, subject, policy: { name: engine.policy.name, version: engine.policy.version } });
      try {
        outcome = (await container.result).value as RunOutcome;
      } catch (e) {
        failure = toForgeError(e);
      }
      const end = container.stats();
      const before = l.lastStats;
      const stats = { guestMs: Math.max(end.guestMs, before?.guestMs ?? 0), calls: Math.max(end.calls, before?.calls ?? 0), memoryPages: Math.max(end.memoryPages, before?.memoryPages ?? 0) };
      await registry.account(l.id, { cpuMs: Math.round(stats.guestMs), calls: stats.calls, denials: l.denials, memoryBytes: stats.memoryPages * 65536 }).catch(() => undefined);
      span.observe(l.records);
      span.end(failure === null ? { outcome: outcome?.ok === false ? 'error' : 'returned' } : { outcome: 'failed', error: failure });
    } catch (e) {
      failure = toForgeError(e);
    }
    scheduler.release(l.id);
    const flags = options.anomalyDetector === undefined ? [] : (await options.anomalyDetector.score(l.records, { packageName: manifest.name, packageVersion: manifest.version })).flags;
    const summary = await l.writer.stop({
      outcome: failure === null ? (outcome?.ok === false ? 'error' : 'returned') : failure.code === 'SANDBOX_CPU_EXCEEDED' ? 'terminated' : l.quarantined ? 'quarantined' : 'failed',
      flags,
    });
    let record;
    if (failure === null) record = await registry.markStopped(l.id, { message: outcome?.ok === false ? 'returned an error' : 'returned' });
    else record = await registry.fail(l.id, { code: failure.code, message: failure.message });
    state(l.id, record.status, record.reason?.message);
    await audit.append({ kind: 'container.stopped', subject: l.id, actor: 'kernel', details: { status: record.status, traceId: l.traceId, calls: summary.records, denials: summary.denials, integrityMilli: summary.integrity, ...(failure === null ? {} : { code: failure.code }) } });
    const exported = await exportTrace(store, l.traceId);
    const verification = verifyTrace(exported, { trustedKeys: [kernelKey], crypto });
    const explanation = explainTrace(parseTrace(exported, crypto), { verification }); // the flags are in the summary already
    pump();
    return { id: l.id, traceId: l.traceId, record, outcome, error: failure === null ? null : { code: failure.code, message: failure.message }, logs, summary, explanation };
  };

  // A snapshot offered to start a container: signed by this kernel, of this package's component. A refusal is audited.
  const acceptSnapshot = async (file: Uint8Array | string, verified: VerifiedPackage, entry: Uint8Array): Promise<{ snapshot: Snapshot; digest: string }> => {
    let snapshot: Snapshot;
    let bytes: Uint8Array;
    try {
      if (typeof file === 'string') {
        try {
          bytes = new Uint8Array(await readFile(file));
        } catch (cause) {
          throw new ForgeError('IO_ERROR', `cannot read the snapshot file ${JSON.stringify(file)}`, { cause, details: { path: file } });
        }
      } else if (file instanceof Uint8Array) bytes = file;
      else throw new ForgeError('SNAPSHOT_INVALID', 'fromSnapshot must be the snapshot file\'s bytes or its path', { details: { reason: 'header' } });
      // Read once: the bytes verified are the bytes whose digest the new trace names.
      snapshot = readSnapshot(bytes, { trustedKeys: [kernelKey], crypto });
      const moduleHash = toHex(crypto.sha3_256(entry));
      if (snapshot.kind !== 'component' || snapshot.moduleHash !== moduleHash) {
        throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of ${snapshot.kind} ${snapshot.moduleHash}, not of ${verified.manifest.name}@${verified.manifest.version} (component ${moduleHash})`, {
          details: { expected: moduleHash, actual: snapshot.moduleHash },
        });
      }
      if (snapshot.trace === undefined) throw new ForgeError('SNAPSHOT_INVALID', 'the snapshot names no trace position: a kernel snapshot always does', { details: { reason: 'header', path: 'trace' } });
    } catch (e) {
      const err = toForgeError(e);
      await audit.append({ kind: 'api.action', subject: `${verified.manifest.name}@${verified.manifest.version}`, actor: 'kernel', details: { action: 'restore', decision: 'refused', code: err.code, message: err.message } });
      throw err;
    }
    // The file's digest names it in the new trace's header and in the audit log.
    return { snapshot, digest: toHex(crypto.sha3_256(bytes)) };
  };

  const launch = async (request: LaunchRequest, restartOf?: ContainerRecord): Promise<ContainerHandle> => {
    if (closed) throw new ForgeError('INVALID_ARGUMENT', 'the kernel is shut down');
    assertWorkloadsAllowed(bootResult);
    const verified = await verifyPackage(request.package);
    const { manifest, files } = verified;
    const entry = files.get(manifest.entry);
    if (entry === undefined || detectWasmKind(entry) !== 'component') {
      throw new ForgeError('INVALID_ARGUMENT', `${manifest.name}: the kernel launches plugin components; run core modules with forgeone run or exec`);
    }
    const restored = request.fromSnapshot === undefined ? undefined : await acceptSnapshot(request.fromSnapshot, verified, entry);
    const serving = request.serve === true || restored !== undefined;
    const firstSeq = restored?.snapshot.trace?.seq ?? 0;
    const trust: TrustLevelName = request.trust ?? 'Verified';
    const subject = request.subject ?? `plugin:${manifest.name}`;
    const identity = createIdentity({ subject, tenant: request.tenant ?? 'default', trust: trustVector(trust) });
    if (trust === 'Compromised') throw new ForgeError('IDENTITY_COMPROMISED', `${subject} is compromised and never runs`);
    const newIdValue = newId('ctr');
    const record =
      restartOf ??
      (await registry.launch({
        package: { manifest: { name: manifest.name, version: manifest.version }, digest: verified.digest },
        identity,
        policy: { name: engine.policy.name, version: engine.policy.version },
        // Names are unique among active containers: by default the package name and the id's tail.
        name: request.name ?? `${manifest.name}-${newIdValue.slice(-8).toLowerCase()}`,
        restartPolicy: request.restartPolicy ?? 'never',
        id: newIdValue,
      }));
    // A container that may be restarted after a kernel restart keeps what it needs to start again.
    if ((request.restartPolicy ?? 'never') !== 'never' && home !== undefined) {
      const dir = join(home, 'state', 'restart');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, `${record.id}.forgepkg`), request.package, { mode: 0o600 });
      const { package: _bytes, fromSnapshot: _snapshot, ...rest } = request;
      writeFileSync(join(dir, `${record.id}.json`), JSON.stringify(rest), { mode: 0o600 });
    }
    const traceId = newId('trc');
    const input = request.input ?? '';
    const writer = await createTraceWriter({
      store,
      crypto,
      signingKey: kernelKey,
      blockSize: config.observer.blockSize,
      checkpointEvery: config.observer.checkpointEvery,
      header: {
        traceId,
        containerId: record.id,
        identity,
        package: { name: manifest.name, version: manifest.version, hash: `sha3-256:${verified.digest}` },
        policy: { name: engine.policy.name, version: engine.policy.version },
        // A serving container's calls carry their own inputs: no single invocation to keep.
        ...(serving ? {} : { invocation: { export: 'run', input } }),
        ...(restored === undefined
          ? {}
          : {
              restoredFrom: {
                snapshot: restored.digest,
                traceId: restored.snapshot.trace!.traceId,
                containerId: restored.snapshot.container.id,
                seq: firstSeq,
                ...(restored.snapshot.trace!.blockHash === undefined ? {} : { blockHash: restored.snapshot.trace!.blockHash }),
              },
            }),
      },
    });
    const submitted = scheduler.submit({
      id: record.id,
      priority: request.priority ?? 'normal',
      trust: identity.trust.level,
      resources: { memoryMb: request.resources?.memoryMb ?? 64, cpuSlots: request.resources?.cpuSlots ?? 1 },
    });
    if (!submitted.ok) {
      await registry.fail(record.id, { code: submitted.error.code, message: submitted.error.message });
      await writer.stop({ outcome: 'refused' });
      throw submitted.error;
    }
    state(record.id, 'creating');
    await audit.append({
      kind: 'container.launched',
      subject: record.id,
      actor: subject,
      details: {
        package: `${manifest.name}@${manifest.version}`,
        digest: verified.digest,
        traceId,
        priority: request.priority ?? 'normal',
        restarted: restartOf !== undefined,
        ...(serving ? { serving: true } : {}),
        ...(restored === undefined ? {} : { restoredFrom: { snapshot: restored.digest, traceId: restored.snapshot.trace!.traceId, containerId: restored.snapshot.container.id, seq: firstSeq } }),
      },
    });
    let admit!: () => void;
    const admitted = new Promise<void>((resolve) => (admit = resolve));
    let markStarted!: () => void;
    // Resolves when the sandbox runs the guest (or, if the run fails before that, when it ends).
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const l: Live = {
      id: record.id,
      traceId,
      writer,
      records: [],
      verified,
      input,
      serving,
      firstSeq,
      snapshot: restored?.snapshot,
      container: undefined,
      denials: 0,
      quarantined: false,
      redzoneId: undefined,
      handle: undefined as never,
      markStarted,
    };
    live.set(record.id, l);
    const done = admitted.then(() => run(l, request, subject, trust)).finally(markStarted);
    l.handle = { id: record.id, traceId, started, done, record: () => registry.get(record.id) };
    waiting.set(record.id, () => {
      waiting.delete(record.id);
      admit();
    });
    pump();
    return l.handle;
  };

  // The prelude's inline path: one gate per subject, in this thread, recorded into a session trace.
  const sessions = new Map<string, { gate: Gate; ring: RingRecorder; writer: TraceWriter; syscalls: SyscallTable }>();
  const session = async (subject: string) => {
    let s = sessions.get(subject);
    if (s === undefined) {
      const syscalls = new SyscallTable(KNOWN_SYSCALLS);
      const identity = createIdentity({ subject, trust: trustVector('Verified') });
      const program = engine.attach({ identity, syscalls }, config.policy.mode);
      const writer = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: { traceId: newId('trc'), containerId: `session:${subject}`.slice(0, 256), identity, package: { name: 'inline', version: '0.0.0', hash: 'none' }, policy: { name: engine.policy.name, version: engine.policy.version } } });
      const ring = new RingRecorder({ blockSize: 1, onBlock: (b) => void writer.append(decodeBlock(b, syscalls)) });
      const gate = new Gate({ syscalls, policy: program, recorder: ring });
      s = { gate, ring, writer, syscalls };
      sessions.set(subject, s);
    }
    return s;
  };

  const kernel: Kernel = {
    boot: bootResult,
    get config() {
      return config;
    },
    recovered,
    crypto,
    store,
    audit,
    registry,
    scheduler,
    redzone,
    telemetry,
    metrics,
    kernelKey,
    policy: engine,
    get degraded() {
      return degraded;
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    list: () => registry.list(),
    async install(bytes) {
      if (home === undefined) throw new ForgeError('INVALID_ARGUMENT', 'installing packages needs a kernel home');
      const v = await verifyPackage(bytes);
      const dir = join(home, 'packages');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, `${v.manifest.name}@${v.manifest.version}.forgepkg`), bytes, { mode: 0o600 });
      return { name: v.manifest.name, version: v.manifest.version, digest: v.digest };
    },
    async pause(id) {
      const l = live.get(id);
      if (l?.container === undefined) throw new ForgeError('NOT_FOUND', `no running container ${id}`);
      await registry.pause(id, { message: 'paused' });
      l.container.quarantine();
      state(id, 'paused');
      await audit.append({ kind: 'container.paused', subject: id, actor: 'kernel', details: {} });
    },
    async resume(id) {
      const l = live.get(id);
      if (l?.container === undefined) throw new ForgeError('NOT_FOUND', `no running container ${id}`);
      await registry.resume(id, { message: 'resumed' });
      l.container.release();
      state(id, 'running', 'resumed');
      await audit.append({ kind: 'container.resumed', subject: id, actor: 'kernel', details: {} });
    },
    async stop(id, stopOptions = {}) {
      const l = live.get(id);
      if (l === undefined) throw new ForgeError('NOT_FOUND', `no container ${id} in this kernel process`);
      const graceMs = stopOptions.graceMs ?? 2000;
      const current = registry.get(id)?.status;
      if (current === 'running' || current === 'paused' || current === 'quarantined') {
        await registry.stop(id, { graceMs, reason: { message: `stop requested (grace ${graceMs} ms)` } });
        state(id, 'stopping');
        if (current !== 'running') l.container?.release();
      }
      // A serving container ends between calls: closed, its calls in progress finish first.
      if (l.serving) void l.container?.close().catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([l.handle.done.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
      clearTimeout(timer);
      if (!finished && l.container !== undefined) {
        l.lastStats = l.container.stats();
        await l.container.terminate(`stopped: the grace period of ${graceMs} ms ended`);
      }
      return l.handle.done;
    },
    async selfTest(): Promise<SelfTestReport> {
      const tests = createSelfTestRegistry({
        clock,
        audit: async (e) => void (await audit.append(e)),
        onDegraded: () => {
          degraded = true;
        },
      });
      tests.registerAll(builtinSelfTests({ providers: [crypto], policy: true, store: { store }, clock, trustRoot }));
      tests.registerAll(sandboxSelfTests(() => sandboxCanary(getPool(), engine.policy)));
      const report = await tests.runAll();
      if (report.degraded) degraded = true;
      return report;
    },
    launch: (request) => launch(request),
    restore: (file, request) => launch({ ...request, fromSnapshot: file }),
    async call(id, input, callOptions = {}) {
      const l = live.get(id);
      if (l === undefined) throw new ForgeError('NOT_FOUND', `no container ${id} in this kernel process`);
      if (!l.serving) throw new ForgeError('INVALID_ARGUMENT', `${id} does not serve calls: launch it with serve`);
      await l.handle.started;
      const container = l.container;
      if (container === undefined) throw new ForgeError('CONTAINER_TERMINATED', `${id} ended before it served`);
      await container.serving;
      return (await container.call(callOptions.export ?? 'run', input)) as RunOutcome;
    },
    async snapshot(id, snapOptions = {}): Promise<KernelSnapshot> {
      const l = live.get(id);
      if (l === undefined) throw new ForgeError('NOT_FOUND', `no container ${id} in this kernel process`);
      if (!l.serving) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `${id} does not serve calls, so it is never between two: launch it with serve to snapshot it`);
      await l.handle.started;
      const container = l.container;
      if (container === undefined) throw new ForgeError('CONTAINER_TERMINATED', `${id} ended before it served`);
      await container.serving;
      // Between two calls; every record before the capture has reached onRecords (and the writer) by now.
      const captured = await container.snapshot();
      const checkpoint = await l.writer.checkpoint('snapshot');
      const trace = tracePositionOf(checkpoint, l.firstSeq);
      if (trace.seq !== captured.seq) {
        throw new ForgeError('INTERNAL', `the trace of ${id} holds calls up to ${trace.seq}, the container is at ${captured.seq}`, { details: { trace: trace.seq, container: captured.seq } });
      }
      const state = { ...captured.state, container: { id }, trace };
      const signing = { signingKey: kernelKey, crypto, clock };
      const bytes = snapOptions.path === undefined ? writeSnapshot(state, signing) : await writeSnapshotFile(snapOptions.path, state, signing);
      const digest = toHex(crypto.sha3_256(bytes));
      await audit.append({ kind: 'api.action', subject: id, actor: 'kernel', details: { action: 'snapshot', snapshot: digest, traceId: l.traceId, seq: trace.seq, moduleHash: state.moduleHash, ...(snapOptions.path === undefined ? {} : { path: snapOptions.path }) } });
      return { bytes, digest, containerId: id, traceId: l.traceId, seq: trace.seq, moduleHash: state.moduleHash, ...(snapOptions.path === undefined ? {} : { path: snapOptions.path }) };
    },
    get: (id) => live.get(id)?.handle,
    quarantine,
    release,
    terminate,
    async exportTrace(id) {
      const l = live.get(id);
      if (l === undefined) throw new ForgeError('NOT_FOUND', `no container ${id} in this kernel process`);
      return exportTrace(store, l.traceId);
    },
    async replay(id): Promise<ReplayReport> {
      const l = live.get(id);
      if (l === undefined) throw new ForgeError('NOT_FOUND', `no container ${id} in this kernel process`);
      if (l.serving) throw new ForgeError('REPLAY_UNSUPPORTED', `${id} served calls (or started from a snapshot): a replay re-runs one call of a fresh instance`);
      await l.handle.done;
      const parsed = parseTrace(await exportTrace(store, l.traceId), crypto);
      const component = l.verified.files.get(l.verified.manifest.entry)!;
      return replayComponent({ records: parsed.records, component, input: l.input, cacheDir, network: pluginCapabilities(l.verified.manifest.metadata ?? {}).net ?? [] });
    },
    async secureSyscall<T>(subject: string, syscall: string, args: SyscallArgs, perform?: () => T): Promise<SecureSyscallResult<T>> {
      const s = await session(subject);
      const id = s.syscalls.intern(syscall);
      const a = s.gate.args;
      a.path = args.path === undefined ? undefined : canonicalPath(args.path);
      a.host = args.host === undefined ? undefined : canonicalHost(args.host);
      a.port = args.port;
      a.size = args.size;
      a.detail = args.detail;
      const allowed = s.gate.enter(id);
      const decision = s.gate.decision;
      const code = s.gate.refusal;
      if (!allowed) {
        s.gate.exit(-1);
        // No decision: the session's quarantine flag refused the call first (an earlier call quarantined it).
        const held = code === 'CONTAINER_TERMINATED' ? 'terminated' : 'suspended';
        return { allowed: false, verdict: decision?.verdict ?? held, rule: decision?.rule ?? null, code };
      }
      let value: T | undefined;
      try {
        value = perform?.();
        s.gate.exit(0);
      } catch (e) {
        s.gate.exit(1);
        throw e;
      }
      return { allowed: true, verdict: decision?.verdict ?? 'allow', rule: decision?.rule ?? null, code: null, ...(value === undefined ? {} : { value }) };
    },
    async shutdown() {
      if (closed) return;
      closed = true;
      for (const l of live.values()) {
        if (l.container !== undefined) await l.container.terminate('kernel shutdown').catch(() => undefined);
      }
      await Promise.allSettled([...live.values()].map((l) => l.handle.done));
      for (const s of sessions.values()) await s.writer.stop({ outcome: 'returned' });
      await configSource?.close();
      await pool?.close();
      await coarse?.stop();
      if (options.store === undefined) await store.close();
    },
  };
  // Containers whose restart policy asks for it start again (from what their launch kept).
  for (const r of recovered.toRestart) {
    const dir = home === undefined ? undefined : join(home, 'state', 'restart');
    try {
      if (dir === undefined || !existsSync(join(dir, `${r.id}.forgepkg`))) throw new ForgeError('NOT_FOUND', 'nothing was kept to restart it from');
      const rest = JSON.parse(readFileSync(join(dir, `${r.id}.json`), 'utf8')) as Omit<LaunchRequest, 'package'>;
      await launch({ ...rest, package: new Uint8Array(readFileSync(join(dir, `${r.id}.forgepkg`))) }, r);
    } catch (e) {
      const err = toForgeError(e);
      await registry.fail(r.id, { code: 'KERNEL_RESTART', message: `could not be restarted: ${err.code}: ${err.message}` }).catch(() => undefined);
    }
  }
  return kernel;
}

async function homeKey(home: string | undefined, crypto: CryptoProvider): Promise<SigningKey> {
  if (home === undefined) return SigningKey.generate(crypto);
  const file = join(home, 'kernel.key');
  if (existsSync(file)) return loadSigningKey(crypto, file);
  const key = SigningKey.generate(crypto);
  await saveSigningKey(key, file);
  return key;
}


/**
 * The packages installed in a kernel home, each a boot measurement.
 * @param home - the kernel home
 * @returns one input per `.forgepkg` in `<home>/packages`
 */
function installedPackages(home: string | undefined): MeasurementInput[] {
  if (home === undefined) return [];
  const dir = join(home, 'packages');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.forgepkg'))
    .sort()
    .map((f): MeasurementInput => ({ name: `package:${f}`, kind: 'package', source: { path: join(dir, f) } }));
}

/**
 * The sandbox canaries: a spinning module must be killed for CPU, a module asking for what it was not
 * granted must be denied.
 * @param pool - the kernel's sandbox pool
 * @param policy - the kernel policy
 */
async function sandboxCanary(pool: SandboxPool, policy: Policy): Promise<void> {
  const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
  const spin = pool.start({ runner: 'builtin:wasi-p1', data: { module: bytes(SPIN_CANARY) }, limits: { cpuTotalMs: 250, cpuPerCallMs: 250 } });
  const spun = await spin.result.then(
    () => 'returned',
    (e: unknown) => toForgeError(e).code,
  );
  if (spun !== 'SANDBOX_CPU_EXCEEDED') throw new ForgeError('SELFTEST_FAILED', `the spinning canary was not stopped for CPU (${spun})`);
  const records: CallRecord[] = [];
  const hostile = pool.start({
    runner: 'builtin:wasi-p1',
    data: { module: bytes(HOSTILE_CANARY) },
    policy: { document: policy, identity: { subject: 'selftest:canary' } },
    onRecords: (b) => records.push(...decodeBlock(b, hostile.syscalls)),
  });
  await hostile.result.catch(() => undefined);
  if (!records.some((r) => !r.allowed)) throw new ForgeError('SELFTEST_FAILED', `the hostile canary's request was not denied (${records.map((r) => `${r.syscall}:${r.verdict}`).join(', ') || 'no calls recorded'})`);
}
