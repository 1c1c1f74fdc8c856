import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ForgeError, KNOWN_SYSCALLS, SyscallTable, createIdentity, newId, systemClock, toForgeError, trustVector, type TrustLevelName } from '@forgeone/common';
import { parseConfig, type KernelConfig } from '@forgeone/config';
import {
  assertWorkloadsAllowed,
  createBoot,
  createContainerRegistry,
  createLocalNode,
  createScheduler,
  kernelInputs,
  type BootResult,
  type ContainerRegistry,
  type MeasurementInput,
  type Scheduler,
} from '@forgeone/core';
import { NodeCryptoProvider, SigningKey, type CryptoProvider, createPackageVerifier, loadSigningKey, parseTrustRoot, saveSigningKey, type TrustRootDocument, type VerifiedPackage } from '@forgeone/crypto';
import {
  COMPONENT_RUNNER,
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
  type ReplayReport,
  type RunOutcome,
  type SandboxPool,
  type SandboxedContainer,
} from '@forgeone/execution';
import { createAuditLog, createMetrics, createTelemetry, createTraceWriter, explainTrace, exportTrace, parseTrace, verifyTrace, type AuditLog, type TraceCallRecord, type TraceWriter } from '@forgeone/observer';
import { createFileStore, createMemoryStore, type Store } from '@forgeone/store';
import { compilePolicy, createRedzone, parsePolicy, type Policy } from '@forgeone/trust';
import type { ContainerHandle, ContainerReport, Kernel, KernelOptions, LaunchRequest, SecureSyscallResult, SyscallArgs } from './types.js';

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

/** Calls per record block of kernel containers: small, so the kernel sees a hostile guest early. */
const RECORD_BLOCK_SIZE = 8;

interface Live {
  readonly id: string;
  readonly traceId: string;
  readonly writer: TraceWriter;
  readonly records: TraceCallRecord[];
  readonly verified: VerifiedPackage;
  readonly input: string;
  container: SandboxedContainer | undefined;
  denials: number;
  quarantined: boolean;
  redzoneId: string | undefined;
  handle: ContainerHandle;
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
  const config: KernelConfig = parseConfig(options.config ?? {});
  const policyText = options.policy ?? DEFAULT_KERNEL_POLICY;
  const policy: Policy = parsePolicy(policyText).policy;
  const trustRootBytes = typeof options.trustRoot === 'string' ? readFileSync(options.trustRoot) : new TextEncoder().encode(JSON.stringify(options.trustRoot));
  const trustRoot: TrustRootDocument = parseTrustRoot(crypto, JSON.parse(new TextDecoder().decode(trustRootBytes)) as unknown);
  const audit: AuditLog = options.audit ?? (await createAuditLog({ store, crypto, signingKey: kernelKey, clock }));

  // Measured boot: the trust root, the config, the policy, the kernel's own packages, and extra inputs.
  const inputs: MeasurementInput[] = [
    { name: 'config', kind: 'config', source: { bytes: new TextEncoder().encode(JSON.stringify(config)) } },
    { name: 'policy', kind: 'policy', source: { bytes: new TextEncoder().encode(policyText) } },
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
  };

  const terminate = async (id: string, reason: string): Promise<void> => {
    const l = live.get(id);
    if (l === undefined) throw new ForgeError('NOT_FOUND', `no live container ${id}`);
    // The worker first: nothing the guest does can outlive the decision.
    await l.container?.terminate(reason);
    if (l.redzoneId !== undefined) redzone.terminate(l.redzoneId, { actor: 'kernel', note: reason });
    await audit.append({ kind: 'termination', subject: id, actor: 'kernel', details: { reason, traceId: l.traceId } });
  };

  const onRecords = (l: Live, records: readonly CallRecord[]): void => {
    void l.writer.append(records);
    l.records.push(...records);
    let quarantineVerdict: CallRecord | undefined;
    for (const r of records) {
      if (!r.allowed) l.denials++;
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
    try {
      const compiled = await prepareComponentModules(component, { maxMemoryBytes: config.sandbox.memoryLimitMb << 20, cacheDir });
      const kv = await store.kv(`kv/${manifest.name}`);
      const data: ComponentRunnerData = { bytes: component, compiled, cacheDir, capabilities: pluginCapabilities(manifest.metadata ?? {}), identity: { subject }, input: l.input };
      const container = getPool().start({
        id: l.id,
        runner: COMPONENT_RUNNER,
        data,
        policy: { document: policy, identity: { subject, trust: trustVector(trust) }, mode: config.policy.mode },
        handlers: componentBridgeHandlers({ kv, log: (level, message) => logs.push(`[${level}] ${message}`) }),
        onRecords: (block) => onRecords(l, decodeBlock(block, container.syscalls)),
        recordBlockSize: RECORD_BLOCK_SIZE,
        ...(request.cpuBudgetMs === undefined ? {} : { limits: { cpuTotalMs: request.cpuBudgetMs, cpuPerCallMs: request.cpuBudgetMs } }),
      });
      l.container = container;
      const span = telemetry.startRun({ containerId: l.id, traceId: l.traceId, package: { name: manifest.name, version: manifest.version }, subject, policy: { name: policy.name, version: policy.version } });
      try {
        outcome = (await container.result).value as RunOutcome;
      } catch (e) {
        failure = toForgeError(e);
      }
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
    await audit.append({ kind: 'container.stopped', subject: l.id, actor: 'kernel', details: { status: record.status, traceId: l.traceId, calls: summary.records, denials: summary.denials, integrityMilli: summary.integrity, ...(failure === null ? {} : { code: failure.code }) } });
    const exported = await exportTrace(store, l.traceId);
    const verification = verifyTrace(exported, { trustedKeys: [kernelKey], crypto });
    const explanation = explainTrace(parseTrace(exported, crypto), { verification, flags: [...flags] });
    pump();
    return { id: l.id, traceId: l.traceId, record, outcome, error: failure === null ? null : { code: failure.code, message: failure.message }, logs, summary, explanation };
  };

  const launch = async (request: LaunchRequest): Promise<ContainerHandle> => {
    if (closed) throw new ForgeError('INVALID_ARGUMENT', 'the kernel is shut down');
    assertWorkloadsAllowed(bootResult);
    const verified = await verifyPackage(request.package);
    const { manifest, files } = verified;
    const entry = files.get(manifest.entry);
    if (entry === undefined || detectWasmKind(entry) !== 'component') {
      throw new ForgeError('INVALID_ARGUMENT', `${manifest.name}: the kernel launches plugin components; run core modules with forgeone run or exec`);
    }
    const trust: TrustLevelName = request.trust ?? 'Verified';
    const subject = request.subject ?? `plugin:${manifest.name}`;
    const identity = createIdentity({ subject, tenant: request.tenant ?? 'default', trust: trustVector(trust) });
    if (trust === 'Compromised') throw new ForgeError('IDENTITY_COMPROMISED', `${subject} is compromised and never runs`);
    const record = await registry.launch({
      package: { manifest: { name: manifest.name, version: manifest.version }, digest: verified.digest },
      identity,
      policy: { name: policy.name, version: policy.version },
      name: request.name ?? manifest.name,
      restartPolicy: request.restartPolicy ?? 'never',
      id: newId('ctr'),
    });
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
        policy: { name: policy.name, version: policy.version },
        invocation: { export: 'run', input },
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
    await audit.append({ kind: 'container.launched', subject: record.id, actor: subject, details: { package: `${manifest.name}@${manifest.version}`, digest: verified.digest, traceId, priority: request.priority ?? 'normal' } });
    let admit!: () => void;
    const started = new Promise<void>((resolve) => (admit = resolve));
    const l: Live = { id: record.id, traceId, writer, records: [], verified, input, container: undefined, denials: 0, quarantined: false, redzoneId: undefined, handle: undefined as never };
    live.set(record.id, l);
    const done = started.then(() => run(l, request, subject, trust));
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
      const program = compilePolicy(policy, { identity, syscalls });
      const writer = await createTraceWriter({ store, crypto, signingKey: kernelKey, header: { traceId: newId('trc'), containerId: `session:${subject}`.slice(0, 256), identity, package: { name: 'inline', version: '0.0.0', hash: 'none' }, policy: { name: policy.name, version: policy.version } } });
      const ring = new RingRecorder({ blockSize: 1, onBlock: (b) => void writer.append(decodeBlock(b, syscalls)) });
      const gate = new Gate({ syscalls, policy: { mode: config.policy.mode, decide: (id, ctx) => program.decide(id, ctx) }, recorder: ring });
      s = { gate, ring, writer, syscalls };
      sessions.set(subject, s);
    }
    return s;
  };

  const kernel: Kernel = {
    boot: bootResult,
    config,
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
    launch,
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
      await pool?.close();
      await coarse?.stop();
      if (options.store === undefined) await store.close();
    },
  };
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

