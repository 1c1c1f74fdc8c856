/**
 * The request and response bodies of the API, as zod schemas. The server validates requests with them, the
 * OpenAPI document is generated from them, and the typed client's types are inferred from them.
 *
 * @packageDocumentation
 */
import { z } from 'zod';
import { AUDIT_KINDS } from '@forgeone/observer';
import { API_ROLES } from './roles.js';

/** Prefix of the ids of named schemas: the OpenAPI document lists them under `components.schemas` without it. */
export const SCHEMA_ID_PREFIX = 'forgeone.api.';

function named<T extends z.ZodType>(id: string, schema: T): T {
  return schema.meta({ id: `${SCHEMA_ID_PREFIX}${id}` });
}

const int = z.int().min(0);
const time = z.int().min(0).describe('milliseconds since the Unix epoch');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const text = (max: number) => z.string().min(1).max(max);
const anyRecord = z.record(z.string(), z.unknown());

/** A container id (`ctr_` + ULID). */
export const ContainerId = z.string().regex(/^ctr_[0-9A-Za-z]{1,64}$/, 'a container id: ctr_ followed by letters and digits');
/** A trace id, or the id of the container whose trace is meant. */
export const TraceRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$/, 'a trace id (trc_…) or a container id (ctr_…)');
/** A quarantine record id (`qrn_…`) or the id of the quarantined container. */
export const QuarantineRef = z.string().regex(/^(?:qrn|ctr)_[0-9A-Za-z]{1,64}$/, 'a quarantine record id (qrn_…) or a container id (ctr_…)');

/** Values of an enum in a query string, comma-separated or repeated: `?status=running,paused`. */
function csv<const T extends readonly [string, ...string[]]>(values: T) {
  const one = z.enum(values);
  return z
    .union([z.string().max(1024), z.array(z.string().max(256)).max(64)])
    .describe(`comma-separated (or repeated): ${values.join(', ')}`)
    .transform((v, ctx) => {
      const out: T[number][] = [];
      for (const part of (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(','))) {
        const r = one.safeParse(part.trim());
        if (!r.success) {
          ctx.addIssue({ code: 'custom', message: `unknown value ${JSON.stringify(part)}: expected ${values.join(', ')}` });
          return z.NEVER;
        }
        out.push(r.data);
      }
      return out;
    });
}

// ---------------------------------------------------------------- errors, health

/** The body of every error response. */
export const ErrorBody = named(
  'Error',
  z.strictObject({
    error: z.strictObject({
      code: z.string().describe('a stable ForgeOne error code (ErrorCodes of @forgeone/common)'),
      message: z.string(),
      retryable: z.boolean(),
      details: anyRecord.optional(),
    }),
  }),
);

/** `GET /v1/health`. */
export const HealthBody = named(
  'Health',
  z.strictObject({
    status: z.enum(['ok', 'degraded', 'recovery']),
    mode: z.enum(['normal', 'recovery', 'degraded']),
    time,
  }),
);

// ---------------------------------------------------------------- boot

const TrustRootCheck = z.union([
  z.strictObject({ ok: z.literal(true), version: int, signers: z.array(z.string()) }),
  z.strictObject({ ok: z.literal(false), code: z.string(), message: z.string() }),
]);

/** A boot measurement event. */
export const MeasurementEventBody = named(
  'MeasurementEvent',
  z.strictObject({ index: int, name: z.string(), kind: z.string(), digest: z.string(), poisoned: z.boolean(), error: z.string().optional() }),
);

/** The signed boot quote. */
export const BootQuoteBody = named(
  'BootQuote',
  z.strictObject({ pcr: hex64, eventsDigest: hex64, time, nonce: z.string().optional(), keyId: hex64, signature: z.string() }),
);

/** `GET /v1/boot`. */
export const BootStatusBody = named(
  'BootStatus',
  z.strictObject({
    verdict: z.enum(['verified', 'compromised', 'unknown']),
    mode: z.enum(['normal', 'recovery', 'degraded']),
    degraded: z.boolean().describe('a self-test failed after boot'),
    pcr: hex64,
    time,
    reasons: z.array(z.string()),
    differing: z.array(z.strictObject({ name: z.string(), expected: z.string().nullable(), actual: z.string(), reason: z.string(), error: z.string().optional() })),
    unexpected: z.array(z.string()),
    trustRoot: TrustRootCheck,
    golden: anyRecord.describe('status verified, absent, unchecked or invalid, with details'),
    quote: BootQuoteBody,
    measurements: int.describe('events in the measurement log'),
    kernelKeyId: hex64,
    kernelPublicKey: hex64.describe('the Ed25519 public key that signs traces, the audit log and the quote'),
    audited: z.boolean(),
  }),
);

/** `GET /v1/boot/measurements`. */
export const BootMeasurementsBody = z.strictObject({ pcr: hex64, quote: BootQuoteBody, events: z.array(MeasurementEventBody) });

// ---------------------------------------------------------------- packages

/** A package the API keeps. */
export const PackageInfoBody = named(
  'Package',
  z.strictObject({
    name: z.string(),
    version: z.string(),
    digest: hex64.describe('SHA3-256 of the signed manifest: launch it by this'),
    size: int.describe('bytes of the .forgepkg'),
    signers: z.array(z.string()).describe('ids of the trusted keys whose signatures counted'),
    threshold: int,
    uploadedAt: time,
    uploadedBy: z.string(),
  }),
);

/** `GET /v1/packages`. */
export const PackageListBody = z.strictObject({ packages: z.array(PackageInfoBody) });
/** `POST /v1/packages`, `GET /v1/packages/{digest}`. */
export const PackageBody = z.strictObject({ package: PackageInfoBody });
/** `POST /v1/packages/verify` and `POST /v1/packages/{digest}/verify`: a package that verified (one that does not gets an error). */
export const PackageVerificationBody = named(
  'PackageVerification',
  z.strictObject({ ok: z.literal(true), name: z.string(), version: z.string(), digest: hex64, signers: z.array(z.string()), threshold: int, verifiedAt: time }),
);
/** Path parameters naming a package. */
export const DigestParams = z.strictObject({ digest: hex64 });

// ---------------------------------------------------------------- containers

/** The container states. */
export const CONTAINER_STATUS_VALUES = ['creating', 'running', 'paused', 'quarantined', 'stopping', 'stopped', 'failed'] as const;
const Status = z.enum(CONTAINER_STATUS_VALUES);
const Reason = z.strictObject({ code: z.string().optional(), message: z.string() });

/** A container, as the registry records it, with its trace id when this server's kernel launched it. */
export const ContainerBody = named(
  'Container',
  z.strictObject({
    id: z.string(),
    name: z.string(),
    packageName: z.string(),
    packageVersion: z.string(),
    packageHash: z.string(),
    identity: z.strictObject({ subject: z.string(), tenant: z.string(), trustLevel: z.union([z.int(), z.string()]) }),
    policy: z.strictObject({ name: z.string(), version: int }),
    restartPolicy: z.string(),
    status: Status,
    reason: Reason.optional(),
    createdAt: time,
    updatedAt: time,
    stopDeadline: time.optional(),
    restarts: int,
    resources: z.strictObject({ cpuMs: z.number().min(0), memoryBytesPeak: int, calls: int, denials: int }),
    transitions: int,
    history: z.array(z.strictObject({ from: Status.optional(), to: Status, at: time, reason: Reason.optional() })),
    traceId: z.string().nullable().describe('null when the container was not launched by this kernel process'),
    live: z.boolean().describe('whether this kernel process runs (or ran) it: only those can be paused, stopped, released or replayed'),
  }),
);

/** `GET /v1/containers` query. */
export const ContainerListQuery = z.strictObject({ status: csv(CONTAINER_STATUS_VALUES).optional(), tenant: text(256).optional() });
/** `GET /v1/containers`. */
export const ContainerListBody = z.strictObject({ containers: z.array(ContainerBody) });
/** One container. */
export const ContainerResultBody = z.strictObject({ container: ContainerBody });
/** Path parameters naming a container. */
export const ContainerParams = z.strictObject({ id: ContainerId });

/** `POST /v1/containers`: launch an uploaded package by digest, or one given inline (base64). */
export const LaunchRequestBody = z
  .strictObject({
    digest: hex64.optional().describe('an uploaded package'),
    package: z.base64().max(64 * 1024 * 1024).optional().describe('a signed .forgepkg, base64 (instead of digest)'),
    input: z.string().max(65536).optional(),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/).optional(),
    subject: text(256).optional().describe('who the workload runs as; default plugin:<package name>'),
    tenant: text(256).optional(),
    trust: z.enum(['Untrusted', 'Limited', 'Verified', 'Trusted', 'Root']).optional().describe('above Verified needs the admin role'),
    priority: z.enum(['background', 'low', 'normal', 'high', 'critical']).optional(),
    cpuBudgetMs: z.int().min(1).max(3_600_000).optional(),
    memoryMb: z.int().min(1).max(65536).optional(),
    restartPolicy: z.enum(['never', 'on-failure', 'always']).optional(),
  })
  .refine((b) => (b.digest === undefined) !== (b.package === undefined), { message: 'give exactly one of digest and package', path: ['digest'] });

/** `POST /v1/containers/{id}/stop`. */
export const StopRequestBody = z.strictObject({ graceMs: z.int().min(0).max(600_000).optional() });

const Outcome = z.union([
  z.strictObject({ ok: z.literal(true), value: z.string(), exitCode: z.int().optional() }),
  z.strictObject({ ok: z.literal(false), error: z.string(), exitCode: z.int().optional() }),
]);

/** The end of a container's run. */
export const ContainerReportBody = named(
  'ContainerReport',
  z.strictObject({
    id: z.string(),
    traceId: z.string(),
    status: Status,
    outcome: Outcome.nullable(),
    error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
    logs: z.array(z.string()),
    summary: anyRecord.describe('the signed trace summary: counts, integrity, red flags'),
    explanation: z.strictObject({ text: z.string(), json: anyRecord }),
  }),
);

/** `GET /v1/containers/{id}/report` query. */
export const ReportQuery = z.strictObject({ waitMs: z.coerce.number().int().min(0).max(120_000).optional().describe('wait up to this long for the run to end') });
/** `GET /v1/containers/{id}/report`, `POST /v1/containers/{id}/stop`. */
export const ReportResultBody = z.strictObject({ done: z.boolean(), container: ContainerBody, report: ContainerReportBody.nullable() });

// ---------------------------------------------------------------- policy

/** `GET /v1/policy`. */
export const PolicyBody = named(
  'Policy',
  z.strictObject({
    name: z.string(),
    version: int,
    revision: int.describe('tightenings and reverts on top of the signed version'),
    policy: anyRecord.describe('the policy document in force'),
    tightenings: z.array(anyRecord),
  }),
);

/** `PUT /v1/policy`: a signed policy bundle. */
export const PolicyBundleBody = z.strictObject({
  policy: anyRecord.describe('the policy document'),
  signatures: z.array(z.strictObject({ keyId: hex64, signature: z.string().regex(/^[0-9a-f]{128}$/) })).min(1).max(64),
});

/** `PUT /v1/policy` result. */
export const PolicyInstallBody = z.strictObject({ version: int, revision: int, warnings: z.array(anyRecord) });

const TrustName = z.enum(['Compromised', 'Untrusted', 'Limited', 'Verified', 'Trusted', 'Root']);

/** `POST /v1/policy/explain`: the call to explain. */
export const ExplainRequestBody = z.strictObject({
  syscall: z.string().regex(/^[a-z][a-z0-9-]*:[a-z0-9-]+\/[a-z0-9*-]+(?:\/[a-z0-9*-]+)*$/, 'a syscall name such as wasi:filesystem/open').max(128),
  args: z
    .strictObject({
      path: z.string().max(4096).optional(),
      host: z.string().max(253).optional(),
      port: z.int().min(0).max(65535).optional(),
      size: z.int().min(0).optional(),
    })
    .optional(),
  identity: z
    .strictObject({
      subject: text(256),
      tenant: text(256).optional(),
      trust: TrustName.optional(),
      roles: z.array(text(128)).max(64).optional(),
      attributes: z.record(z.string().max(128), z.string().max(1024)).optional(),
    })
    .optional(),
  context: z
    .strictObject({ calls: int.optional(), rate: int.optional(), denied: int.optional(), anomaly: z.number().min(0).max(1).optional() })
    .optional(),
});

/** The explanation of a decision. */
export const ExplainBody = named(
  'PolicyExplanation',
  z.strictObject({
    syscall: z.string(),
    decision: z.strictObject({ verdict: z.enum(['allow', 'audit', 'deny', 'quarantine']), rule: z.string().nullable(), reason: z.string(), rateLimited: z.boolean(), code: z.string().nullable() }),
    policy: z.strictObject({ name: z.string(), version: int }),
    activeNodes: z.array(z.string()),
    inactiveNodes: z.array(z.strictObject({ node: z.string(), reason: z.string() })),
    candidates: z.array(z.strictObject({ rule: z.string(), action: z.string(), matched: z.boolean(), failed: z.string().optional(), hadToken: z.boolean().optional() })),
    text: z.string(),
  }),
);

// ---------------------------------------------------------------- traces

/** Path parameters naming a trace. */
export const TraceParams = z.strictObject({ id: TraceRef });
/** `GET /v1/traces/{id}` query: a page of calls. */
export const TraceQuery = z.strictObject({ from: z.coerce.number().int().min(0).optional(), limit: z.coerce.number().int().min(0).max(10_000).optional() });

/** One recorded call. */
export const TraceCallBody = named(
  'TraceCall',
  z.strictObject({
    seq: int,
    syscall: z.string(),
    args: z.strictObject({ path: z.string().optional(), host: z.string().optional(), port: z.number().optional(), size: z.number().optional(), detail: z.string().optional() }),
    verdict: z.string(),
    rule: z.string().nullable(),
    allowed: z.boolean(),
    result: z.int(),
    start: z.number(),
    duration: z.number(),
    resultBytes: int.nullable().describe('length of the recorded result bytes, when there are some'),
  }),
);

/** `GET /v1/traces/{id}`. */
export const TraceBody = named(
  'Trace',
  z.strictObject({
    traceId: z.string(),
    containerId: z.string(),
    header: anyRecord,
    summary: anyRecord.nullable(),
    complete: z.boolean(),
    blocks: int,
    records: int,
    checkpoints: z.array(z.strictObject({ line: int, reason: z.string(), block: z.int(), records: int, keyId: z.string() })),
    from: int,
    calls: z.array(TraceCallBody),
  }),
);

const Issue = z.strictObject({ code: z.string(), message: z.string(), line: int, seq: int.optional(), block: int.optional() }).nullable();

/** `POST /v1/traces/{id}/verify`. */
export const TraceVerificationBody = named(
  'TraceVerification',
  z.strictObject({
    ok: z.boolean(),
    issue: Issue,
    traceId: z.string().nullable(),
    records: int,
    blocks: int,
    checkpoints: int,
    signers: z.array(z.string()),
    complete: z.boolean(),
    summary: anyRecord.nullable(),
  }),
);

/** `GET /v1/traces/{id}/explain`. */
export const TraceExplanationBody = z.strictObject({ traceId: z.string(), verified: z.boolean(), text: z.string(), json: anyRecord });

/** `POST /v1/traces/{id}/replay`. */
export const ReplayBody = named(
  'Replay',
  z.strictObject({
    traceId: z.string(),
    containerId: z.string(),
    identical: z.boolean(),
    matched: int,
    records: int,
    divergence: anyRecord.nullable(),
    outcome: anyRecord,
    stdout: z.string(),
    stderr: z.string(),
    logs: z.array(z.unknown()),
  }),
);

// ---------------------------------------------------------------- quarantine

/** Quarantine states. */
export const QUARANTINE_STATE_VALUES = ['active', 'analyzing', 'remediating', 'released', 'terminated'] as const;

/** A red zone record. */
export const QuarantineRecordBody = named(
  'QuarantineRecord',
  z.strictObject({
    id: z.string(),
    containerId: z.string(),
    reason: z.string(),
    quarantinedAt: time,
    traceId: z.string().optional(),
    state: z.enum(QUARANTINE_STATE_VALUES),
    updatedAt: time,
    history: z.array(z.strictObject({ from: z.enum(QUARANTINE_STATE_VALUES).nullable(), to: z.enum(QUARANTINE_STATE_VALUES), actor: z.string(), at: time, note: z.string().optional() })),
  }),
);

/** `GET /v1/quarantine` query. */
export const QuarantineListQuery = z.strictObject({ state: z.enum(QUARANTINE_STATE_VALUES).optional(), containerId: ContainerId.optional() });
/** `GET /v1/quarantine`. */
export const QuarantineListBody = z.strictObject({ records: z.array(QuarantineRecordBody) });
/** Path parameters naming a quarantine record or container. */
export const QuarantineParams = z.strictObject({ id: QuarantineRef });
/** `POST /v1/quarantine`: move a container to the red zone. */
export const QuarantineRequestBody = z.strictObject({ containerId: ContainerId, reason: text(1024) });
/** `POST /v1/quarantine/{id}/terminate`. */
export const TerminateRequestBody = z.strictObject({ reason: text(1024).optional() });
/** The result of a red zone action. */
export const QuarantineActionBody = z.strictObject({ containerId: z.string(), record: QuarantineRecordBody.nullable(), container: ContainerBody.nullable() });

/** `POST /v1/quarantine/{id}/analyze`. */
export const QuarantineReportBody = named(
  'QuarantineReport',
  z.strictObject({
    record: QuarantineRecordBody,
    generatedAt: time,
    calls: int.describe('calls up to the quarantine'),
    callsAfterQuarantine: int,
    bySyscall: z.array(z.strictObject({ syscall: z.string(), count: int })),
    byVerdict: z.record(z.string(), int),
    denied: z.array(anyRecord),
    firstDenial: anyRecord.nullable(),
    flags: z.array(z.strictObject({ flag: z.string(), count: int })),
    summary: z.string(),
  }),
);

// ---------------------------------------------------------------- audit

/** An audit event. */
export const AuditEventBody = named(
  'AuditEvent',
  z.strictObject({ seq: int, kind: z.enum(AUDIT_KINDS), subject: z.string(), actor: z.string(), time, details: anyRecord }),
);

/** `GET /v1/audit` and `GET /v1/audit/evidence` query. */
export const AuditQuery = z.strictObject({
  kind: csv(AUDIT_KINDS).optional(),
  subject: text(256).optional(),
  from: z.coerce.number().int().min(0).optional(),
  to: z.coerce.number().int().min(0).optional(),
  offset: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

/** `GET /v1/audit`. */
export const AuditListBody = z.strictObject({ events: z.array(AuditEventBody), total: int, offset: int, limit: int });

/** `GET /v1/audit/verify`. */
export const AuditVerificationBody = named(
  'AuditVerification',
  z.strictObject({ ok: z.boolean(), issue: Issue, logId: z.string().nullable(), events: int, checkpoints: int, signers: z.array(z.string()), kernelKeyId: hex64 }),
);

/** `GET /v1/audit/evidence`: an evidence bundle (verifies offline with the kernel key). */
export const AuditEvidenceBody = named('AuditEvidence', anyRecord.describe('format forgeone.audit-evidence/v2: events, their proofs and the signed head'));

// ---------------------------------------------------------------- diagnostics, tokens, events

/** `GET /v1/diagnostics`. */
export const DiagnosticsBody = named(
  'Diagnostics',
  z.strictObject({
    boot: z.strictObject({ verdict: z.string(), mode: z.string() }),
    degraded: z.boolean(),
    containers: z.record(z.string(), int),
    quarantine: z.record(z.string(), int),
    registryCorrupt: int,
    recovered: z.strictObject({ failed: int, toRestart: int, quarantined: int }),
    policy: z.strictObject({ name: z.string(), version: int, revision: int, tightenings: int }),
    process: z.strictObject({ uptimeSeconds: z.number(), rssBytes: int, heapUsedBytes: int, node: z.string(), pid: int }),
    api: z.strictObject({ uptimeSeconds: z.number(), eventStreams: int, packages: int, requests: int }),
  }),
);

/** `GET /v1/diagnostics/heatmap` query: how many of the most recent containers to draw from (default 100). */
export const HeatmapQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).optional() });
/** `GET /v1/diagnostics/heatmap`: the heatmap JSON of `@forgeone/diagnostics` (`buildHeatmap`). */
export const HeatmapBody = named('Heatmap', anyRecord.describe('identity × syscall and container × time cells (denials, flags, score), per-container integrity'));

/** `POST /v1/diagnostics/selftest`. */
export const SelfTestBody = named('SelfTestReport', anyRecord.describe('results, counts by status, degraded, duration'));

/** `GET /v1/whoami`: the caller, as the server sees its token. */
export const WhoamiBody = z.strictObject({ subject: z.string(), role: z.enum(API_ROLES), tokenId: z.string(), expiresAt: int, keyId: hex64 });

/** Kinds of live events. */
export const EVENT_TYPES = ['container.state', 'denial', 'quarantine', 'release', 'policy.changed', 'config.changed'] as const;
/** `GET /v1/events` query. */
export const EventsQuery = z.strictObject({ types: csv(EVENT_TYPES).optional() });
/** One live event: the `data` of a server-sent event whose `event` is its `type`. */
export const ApiEventBody = named('Event', z.looseObject({ type: z.enum(EVENT_TYPES), time }));

/** `GET /v1/openapi.json`: the OpenAPI 3.1 document. */
export const OpenApiBody = anyRecord.describe('an OpenAPI 3.1 document');

/** An empty query or path. */
export const Empty = z.strictObject({});
