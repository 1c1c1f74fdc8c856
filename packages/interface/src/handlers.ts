/**
 * What each route does, against the kernel's interfaces.
 *
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ForgeError, SyscallTable, createIdentity, toHex, trustVector, type CanonicalValue, type Clock, type TrustLevelName } from '@forgeone/common';
import type { ContainerRecord } from '@forgeone/core';
import { createPackageVerifier, type PackageVerifier, type VerifiedPackage } from '@forgeone/crypto';
import { canonicalHost, canonicalPath } from '@forgeone/execution';
import type { ContainerReport, Kernel, LaunchRequest } from '@forgeone/kernel';
import { buildHeatmap, type HeatmapRun } from '@forgeone/diagnostics';
import { explainTrace, exportTrace, parseTrace, verifyTrace, type AuditFilter } from '@forgeone/observer';
import { compilePolicy, type QuarantineCallRecord, type QuarantineRecord } from '@forgeone/trust';
import type { z } from 'zod';
import type { Api, HandlerResult, OperationId } from './api.js';
import type { EventHub } from './events.js';
import type { PackageInfo, PackageStore } from './packages.js';
import type { TokenClaims } from './tokens.js';

/** The validated value of a schema (undefined when the route has none). */
export type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What a handler is given. */
export interface HandlerContext<K extends OperationId> {
  /** Validated path parameters. */
  readonly params: Api[K] extends { readonly params: infer P } ? Parsed<P> : undefined;
  /** Validated query. */
  readonly query: Api[K] extends { readonly query: infer Q } ? Parsed<Q> : undefined;
  /** Validated body (raw bodies as bytes). */
  readonly body: Api[K] extends { readonly body: infer B } ? (B extends z.ZodType ? z.output<B> : Uint8Array) : undefined;
  /** The caller (null on public routes). */
  readonly caller: TokenClaims | null;
  /** The raw request (for streams and headers). */
  readonly raw: { readonly request: IncomingMessage; readonly response: ServerResponse; readonly headers: IncomingMessage['headers'] };
  /** Take the response over (server-sent events): the handler writes it itself. */
  hijack(): void;
  /** What the audit event of this request names: the handler may set the subject and add details. */
  readonly audit: { subject?: string; details: Record<string, CanonicalValue> };
}

/** One handler per operation. */
export type Handlers = { readonly [K in OperationId]: (ctx: HandlerContext<K>) => Promise<HandlerResult<K> | typeof STREAMED> };

/** Returned by a handler that took the response over. */
export const STREAMED: unique symbol = Symbol('forgeone.api.streamed');

/** Counters the diagnostics route reports. */
export interface ServerStats {
  /** Requests answered. */
  requests: number;
  /** When the server was created (ms). */
  readonly startedAt: number;
}

/** What the handlers need. */
export interface HandlerDeps {
  /** The kernel. */
  readonly kernel: Kernel;
  /** Uploaded packages. */
  readonly packages: PackageStore;
  /** Also install every upload into the kernel home (measured at later boots). */
  readonly installPackages: boolean;
  /** The event fan-out. */
  readonly hub: EventHub;
  /** Time source. */
  readonly clock: Clock;
  /** The OpenAPI document. */
  readonly openapi: () => Record<string, unknown>;
  /** Prometheus text of the API's own metrics. */
  readonly apiMetrics: () => string;
  /** Counters. */
  readonly stats: ServerStats;
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function actor(caller: TokenClaims | null): string {
  return caller === null ? 'api:anonymous' : `api:${caller.subject}`;
}

const TERMINAL = new Set(['stopped', 'failed']);

/**
 * Build the handlers.
 * @param deps - kernel, stores, hub, clock
 * @returns one handler per operation
 */
export function createHandlers(deps: HandlerDeps): Handlers {
  const { kernel, packages, hub, clock, stats } = deps;
  let verifier: PackageVerifier | undefined;
  const verifyBytes = (bytes: Uint8Array): VerifiedPackage => {
    const trustRoot = kernel.boot.trustRootDocument;
    if (trustRoot === null) throw new ForgeError('BOOT_RECOVERY_MODE', 'the kernel\'s trust root did not verify at boot: no package can be verified');
    verifier ??= createPackageVerifier({ provider: kernel.crypto, trustRoot, clock });
    const v = verifier.verify(bytes);
    if (!v.ok) throw v.error;
    return v.value;
  };
  const verification = (v: VerifiedPackage) => ({ ok: true as const, name: v.manifest.name, version: v.manifest.version, digest: v.digest, signers: [...v.signers], threshold: v.threshold, verifiedAt: v.verifiedAt });

  const container = (record: ContainerRecord) => {
    const handle = kernel.get(record.id);
    return { ...record, traceId: handle?.traceId ?? null, live: handle !== undefined };
  };
  const recordOf = (id: string): ContainerRecord => {
    const r = kernel.registry.get(id);
    if (r === undefined) throw new ForgeError('NOT_FOUND', `no container ${id}`, { details: { id } });
    return r;
  };
  const report = (r: ContainerReport) => ({
    id: r.id,
    traceId: r.traceId,
    status: r.record.status,
    outcome: r.outcome === null ? null : { ...r.outcome },
    error: r.error,
    logs: [...r.logs],
    summary: { ...r.summary },
    explanation: { text: r.explanation.text, json: r.explanation.json as unknown as Record<string, unknown> },
  });

  // A trace by id, or the trace of a container (this process's, or one the audit log names).
  const traceIdOf = async (id: string): Promise<string> => {
    if (!id.startsWith('ctr_')) return id;
    const live = kernel.get(id)?.traceId;
    if (live !== undefined) return live;
    const launched = await kernel.audit.query({ kind: 'container.launched', subject: id });
    const traceId = launched[0]?.details['traceId'];
    if (typeof traceId !== 'string') throw new ForgeError('NOT_FOUND', `no trace known for container ${id}`, { details: { id } });
    return traceId;
  };

  // A quarantine record by id, or the latest record of a container.
  const quarantineOf = (id: string): QuarantineRecord => {
    if (id.startsWith('qrn_')) return kernel.redzone.get(id);
    const records = kernel.redzone.list({ containerId: id });
    const open = records.filter((r) => r.state !== 'released' && r.state !== 'terminated');
    const r = open.at(-1) ?? records.at(-1);
    if (r === undefined) throw new ForgeError('NOT_FOUND', `container ${id} has no quarantine record`, { details: { id } });
    return r;
  };
  const quarantineAction = (containerId: string, recordId: string | null) => {
    const record = recordId === null ? null : kernel.redzone.get(recordId);
    const r = kernel.registry.get(containerId);
    return { containerId, record: record === null ? null : { ...record }, container: r === undefined ? null : container(r) };
  };

  const auditFilter = (q: { kind?: AuditFilter['kind']; subject?: string | undefined; from?: number | undefined; to?: number | undefined }): AuditFilter => ({
    ...opt('kind', q.kind),
    ...opt('subject', q.subject),
    ...opt('from', q.from),
    ...opt('to', q.to),
  });

  const handlers: Handlers = {
    async health() {
      const mode = kernel.boot.mode;
      return { status: mode === 'recovery' ? 'recovery' : mode === 'degraded' || kernel.degraded ? 'degraded' : 'ok', mode, time: clock.now() };
    },
    async openapi() {
      return deps.openapi();
    },
    async whoami({ caller }) {
      return { subject: caller!.subject, role: caller!.role, tokenId: caller!.tokenId, expiresAt: caller!.expiresAt, keyId: caller!.keyId };
    },

    async bootStatus() {
      const b = kernel.boot;
      return {
        verdict: b.verdict,
        mode: b.mode,
        degraded: kernel.degraded,
        pcr: b.pcr,
        time: b.time,
        reasons: [...b.reasons],
        differing: b.differing.map((d) => ({ ...d })),
        unexpected: [...b.unexpected],
        trustRoot: b.trustRoot.ok ? { ok: true as const, version: b.trustRoot.version, signers: [...b.trustRoot.signers] } : { ok: false as const, code: b.trustRoot.code, message: b.trustRoot.message },
        golden: { ...b.golden },
        quote: { ...b.quote },
        measurements: b.events.length,
        kernelKeyId: kernel.kernelKey.keyId,
        kernelPublicKey: toHex(kernel.kernelKey.publicKey),
        audited: b.audited,
      };
    },
    async bootMeasurements() {
      return { pcr: kernel.boot.pcr, quote: { ...kernel.boot.quote }, events: kernel.boot.events.map((e) => ({ ...e })) };
    },

    async listPackages() {
      return { packages: await packages.list() };
    },
    async uploadPackage({ body, caller, audit }) {
      const v = verifyBytes(body);
      audit.subject = `${v.manifest.name}@${v.manifest.version}`;
      audit.details.digest = v.digest;
      if (deps.installPackages) await kernel.install(body);
      const info: PackageInfo = { name: v.manifest.name, version: v.manifest.version, digest: v.digest, size: body.length, signers: [...v.signers], threshold: v.threshold, uploadedAt: clock.now(), uploadedBy: actor(caller) };
      return { package: await packages.put(body, info) };
    },
    async verifyPackageBytes({ body }) {
      return verification(verifyBytes(body));
    },
    async getPackage({ params }) {
      const info = await packages.info(params.digest);
      if (info === undefined) throw new ForgeError('NOT_FOUND', `no uploaded package ${params.digest}`, { details: { digest: params.digest } });
      return { package: info };
    },
    async verifyPackage({ params }) {
      const bytes = await packages.get(params.digest);
      if (bytes === undefined) throw new ForgeError('NOT_FOUND', `no uploaded package ${params.digest}`, { details: { digest: params.digest } });
      return verification(verifyBytes(bytes));
    },

    async listContainers({ query }) {
      const records = kernel.registry.list({ ...opt('status', query.status), ...opt('tenant', query.tenant) });
      return { containers: records.map(container) };
    },
    async launchContainer({ body, caller, audit }) {
      if ((body.trust === 'Trusted' || body.trust === 'Root') && caller!.role !== 'admin') {
        throw new ForgeError('AUTH_FORBIDDEN', `launching with trust ${body.trust} needs the admin role`, { details: { field: 'body.trust', role: caller!.role } });
      }
      let bytes: Uint8Array;
      if (body.digest !== undefined) {
        const stored = await packages.get(body.digest);
        if (stored === undefined) throw new ForgeError('NOT_FOUND', `no uploaded package ${body.digest}: upload it first (POST /v1/packages)`, { details: { field: 'body.digest' } });
        bytes = stored;
        audit.details.digest = body.digest;
      } else {
        bytes = new Uint8Array(Buffer.from(body.package!, 'base64'));
        audit.details.inline = bytes.length;
      }
      const request: LaunchRequest = {
        package: bytes,
        ...opt('input', body.input),
        ...opt('name', body.name),
        ...opt('subject', body.subject),
        ...opt('tenant', body.tenant),
        ...opt('trust', body.trust as TrustLevelName | undefined),
        ...opt('priority', body.priority),
        ...opt('cpuBudgetMs', body.cpuBudgetMs),
        ...opt('restartPolicy', body.restartPolicy),
        ...(body.memoryMb === undefined ? {} : { resources: { memoryMb: body.memoryMb } }),
      };
      const handle = await kernel.launch(request);
      audit.subject = handle.id;
      audit.details.traceId = handle.traceId;
      return { container: container(recordOf(handle.id)) };
    },
    async getContainer({ params }) {
      return { container: container(recordOf(params.id)) };
    },
    async containerReport({ params, query }) {
      const record = recordOf(params.id);
      const handle = kernel.get(params.id);
      if (handle === undefined) return { done: TERMINAL.has(record.status), container: container(record), report: null };
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([handle.done, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), query.waitMs ?? 0)))]);
      clearTimeout(timer);
      return { done: waited !== undefined, container: container(recordOf(params.id)), report: waited === undefined ? null : report(waited) };
    },
    async pauseContainer({ params }) {
      await kernel.pause(params.id);
      return { container: container(recordOf(params.id)) };
    },
    async resumeContainer({ params }) {
      await kernel.resume(params.id);
      return { container: container(recordOf(params.id)) };
    },
    async stopContainer({ params, body, audit }) {
      recordOf(params.id);
      audit.details.graceMs = body.graceMs ?? 2000;
      const r = await kernel.stop(params.id, opt('graceMs', body.graceMs));
      return { done: true, container: container(recordOf(params.id)), report: report(r) };
    },

    async getPolicy() {
      const engine = kernel.policy;
      return {
        name: engine.policy.name,
        version: engine.version.version,
        revision: engine.version.revision,
        policy: engine.policy as unknown as Record<string, unknown>,
        tightenings: engine.tightenings.map((t) => ({ ...t })),
      };
    },
    async replacePolicy({ body, caller, audit }) {
      const r = kernel.policy.install({ policy: body.policy, signatures: body.signatures }, actor(caller));
      if (!r.ok) throw r.error;
      audit.subject = kernel.policy.policy.name;
      audit.details.version = r.value.version;
      return { version: r.value.version, revision: kernel.policy.version.revision, warnings: r.value.warnings.map((w) => ({ ...w })) };
    },
    async explainPolicy({ body }) {
      const id = body.identity;
      const identity = createIdentity({
        subject: id?.subject ?? 'plugin:unknown',
        ...opt('tenant', id?.tenant),
        ...opt('roles', id?.roles),
        ...opt('attributes', id?.attributes),
        trust: trustVector(id?.trust ?? 'Verified'),
      });
      const syscalls = new SyscallTable([body.syscall]);
      const program = compilePolicy(kernel.policy.policy, { identity, syscalls }, { tightenings: kernel.policy.tightenings });
      const a = body.args ?? {};
      const c = body.context ?? {};
      return program.explain(syscalls.intern(body.syscall), {
        path: a.path === undefined ? undefined : canonicalPath(a.path),
        host: a.host === undefined ? undefined : canonicalHost(a.host),
        port: a.port,
        size: a.size,
        now: clock.now(),
        calls: c.calls ?? 0,
        rate: c.rate ?? 0,
        denied: c.denied ?? 0,
        anomaly: c.anomaly ?? 0,
      });
    },

    async getTrace({ params, query }) {
      const traceId = await traceIdOf(params.id);
      const trace = parseTrace(await exportTrace(kernel.store, traceId), kernel.crypto);
      const from = query.from ?? 0;
      const limit = query.limit ?? 100;
      return {
        traceId,
        containerId: trace.header.containerId,
        header: { ...trace.header },
        summary: trace.summary === null ? null : { ...trace.summary },
        complete: trace.complete,
        blocks: trace.blocks,
        records: trace.records.length,
        checkpoints: trace.checkpoints.map((c) => ({ ...c })),
        from,
        calls: trace.records.slice(from, from + limit).map((r) => ({
          seq: r.seq,
          syscall: r.syscall,
          args: { ...r.args },
          verdict: r.verdict,
          rule: r.rule,
          allowed: r.allowed,
          result: r.result,
          start: r.start,
          duration: r.duration,
          resultBytes: r.resultBytes === null ? null : r.resultBytes.length,
        })),
      };
    },
    async verifyTrace({ params }) {
      const traceId = await traceIdOf(params.id);
      const v = verifyTrace(await exportTrace(kernel.store, traceId), { trustedKeys: [kernel.kernelKey], crypto: kernel.crypto, allowIncomplete: true });
      return {
        ok: v.ok,
        issue: v.issue === null ? null : { ...v.issue },
        traceId: v.traceId,
        records: v.records,
        blocks: v.blocks,
        checkpoints: v.checkpoints.length,
        signers: [...v.signers],
        complete: v.complete,
        summary: v.summary === null ? null : { ...v.summary },
      };
    },
    async explainTrace({ params }) {
      const traceId = await traceIdOf(params.id);
      const exported = await exportTrace(kernel.store, traceId);
      const v = verifyTrace(exported, { trustedKeys: [kernel.kernelKey], crypto: kernel.crypto, allowIncomplete: true });
      const e = explainTrace(parseTrace(exported, kernel.crypto), { verification: v });
      return { traceId, verified: v.ok, text: e.text, json: e.json as unknown as Record<string, unknown> };
    },
    async replayTrace({ params, audit }) {
      const traceId = await traceIdOf(params.id);
      const trace = parseTrace(await exportTrace(kernel.store, traceId), kernel.crypto);
      const containerId = trace.header.containerId;
      audit.subject = containerId;
      audit.details.traceId = traceId;
      const r = await kernel.replay(containerId);
      const text = (b: Uint8Array): string => new TextDecoder().decode(b);
      audit.details.identical = r.identical;
      return {
        traceId,
        containerId,
        identical: r.identical,
        matched: r.matched,
        records: r.records,
        divergence: r.divergence === null ? null : ({ ...r.divergence } as Record<string, unknown>),
        outcome: { ...r.outcome },
        stdout: text(r.stdout),
        stderr: text(r.stderr),
        logs: r.logs.map((l) => ({ ...l })),
      };
    },
    async exportTrace({ params }) {
      return exportTrace(kernel.store, await traceIdOf(params.id));
    },

    async listQuarantine({ query }) {
      return { records: kernel.redzone.list({ state: query.state, containerId: query.containerId }).map((r) => ({ ...r })) };
    },
    async quarantineContainer({ body, caller, audit }) {
      audit.subject = body.containerId;
      recordOf(body.containerId);
      await kernel.quarantine(body.containerId, `${body.reason} (by ${actor(caller)})`);
      return quarantineAction(body.containerId, quarantineOf(body.containerId).id);
    },
    async analyzeQuarantine({ params, caller, audit }) {
      const record = quarantineOf(params.id);
      audit.subject = record.containerId;
      audit.details.record = record.id;
      const calls: QuarantineCallRecord[] = [];
      const traceId = record.traceId ?? (await traceIdOf(record.containerId).catch(() => undefined));
      if (traceId !== undefined) {
        const trace = parseTrace(await exportTrace(kernel.store, traceId), kernel.crypto);
        // Calls held or refused by the red zone itself (suspended, terminated) are not policy decisions.
        for (const r of trace.records) {
          if (r.verdict === 'suspended' || r.verdict === 'terminated') continue;
          calls.push({ seq: r.seq, time: Math.floor(r.start), syscall: r.syscall, verdict: r.verdict, rule: r.rule, reason: r.rule ?? 'the default action' });
        }
      }
      const r = kernel.redzone.analyze(record.id, calls, { actor: actor(caller) });
      return {
        record: { ...r.record },
        generatedAt: r.generatedAt,
        calls: r.calls.length,
        callsAfterQuarantine: r.callsAfterQuarantine,
        bySyscall: r.bySyscall.map((s) => ({ ...s })),
        byVerdict: { ...r.byVerdict },
        denied: r.denied.map((d) => ({ ...d })),
        firstDenial: r.firstDenial === null ? null : { ...r.firstDenial },
        flags: r.flags.map((f) => ({ ...f })),
        summary: r.summary,
      };
    },
    async releaseQuarantine({ params, audit }) {
      const record = quarantineOf(params.id);
      audit.subject = record.containerId;
      audit.details.record = record.id;
      await kernel.release(record.containerId);
      return quarantineAction(record.containerId, record.id);
    },
    async terminateQuarantine({ params, body, caller, audit }) {
      const record = quarantineOf(params.id);
      audit.subject = record.containerId;
      audit.details.record = record.id;
      await kernel.terminate(record.containerId, body.reason ?? `terminated by ${actor(caller)}`);
      return quarantineAction(record.containerId, record.id);
    },

    async queryAudit({ query }) {
      const events = await kernel.audit.query(auditFilter(query));
      const offset = query.offset ?? 0;
      const limit = query.limit ?? 100;
      return { events: events.slice(offset, offset + limit).map((e) => ({ ...e })), total: events.length, offset, limit };
    },
    async verifyAudit() {
      const v = await kernel.audit.verify();
      return { ok: v.ok, issue: v.issue === null ? null : { ...v.issue }, logId: v.logId, events: v.events, checkpoints: v.checkpoints, signers: [...v.signers], kernelKeyId: kernel.kernelKey.keyId };
    },
    async auditEvidence({ query }) {
      return (await kernel.audit.exportEvidence(auditFilter(query))) as unknown as Record<string, unknown>;
    },
    async exportAudit() {
      return kernel.audit.exportLog();
    },

    async diagnostics() {
      const containers: Record<string, number> = {};
      for (const r of kernel.registry.list()) containers[r.status] = (containers[r.status] ?? 0) + 1;
      const quarantine: Record<string, number> = {};
      for (const r of kernel.redzone.list()) quarantine[r.state] = (quarantine[r.state] ?? 0) + 1;
      const mem = process.memoryUsage();
      return {
        boot: { verdict: kernel.boot.verdict, mode: kernel.boot.mode },
        degraded: kernel.degraded,
        containers,
        quarantine,
        registryCorrupt: kernel.registry.corrupt.length,
        recovered: { failed: kernel.recovered.failed.length, toRestart: kernel.recovered.toRestart.length, quarantined: kernel.recovered.quarantined.length },
        policy: { name: kernel.policy.policy.name, version: kernel.policy.version.version, revision: kernel.policy.version.revision, tightenings: kernel.policy.tightenings.length },
        process: { uptimeSeconds: process.uptime(), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, node: process.version, pid: process.pid },
        api: { uptimeSeconds: (clock.now() - stats.startedAt) / 1000, eventStreams: hub.streams, packages: (await packages.list()).length, requests: stats.requests },
      };
    },
    async heatmap({ query }) {
      const limit = query.limit ?? 100;
      const records = [...kernel.registry.list()].sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
      const runs: HeatmapRun[] = [];
      for (const r of records) {
        let traceId: string;
        try {
          traceId = await traceIdOf(r.id);
        } catch {
          continue; // no trace recorded (refused before it ran)
        }
        const trace = parseTrace(await exportTrace(kernel.store, traceId), kernel.crypto);
        runs.push({ subject: trace.header.identity.subject, containerId: r.id, records: trace.records, flags: trace.summary?.flags ?? [] });
      }
      return JSON.parse(JSON.stringify(buildHeatmap(runs))) as Record<string, unknown>;
    },
    async selfTest({ audit }) {
      const r = await kernel.selfTest();
      audit.details.degraded = r.degraded;
      return JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
    },
    async events({ query, raw, hijack }) {
      const last = raw.headers['last-event-id'];
      const lastEventId = typeof last === 'string' && /^[0-9]{1,15}$/.test(last) ? Number(last) : undefined;
      hub.open(raw.request, raw.response, { types: query.types, lastEventId });
      hijack();
      return STREAMED;
    },
    async metrics() {
      return `${kernel.metrics?.render() ?? ''}${deps.apiMetrics()}`;
    },
  };
  return handlers;
}
