/**
 * The API contract: every route once, with its method, path, schemas, who may call it and whether it is
 * audited. The server binds one handler per entry, the OpenAPI document is generated from it, and the typed
 * client builds its requests from it.
 *
 * @packageDocumentation
 */
import type { z } from 'zod';
import { ADMIN, AUDIT, INSPECT, OPERATE, READ, type RouteAccess } from './roles.js';
import * as S from './schemas.js';

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT';

/** A body or response that is not JSON: bytes or text of a content type. */
export interface RawContent {
  /** Always `raw`. */
  readonly raw: true;
  /** Its media type. */
  readonly contentType: string;
  /** What it is, for the OpenAPI document. */
  readonly description: string;
}

/** One route of the API. */
export interface Contract {
  /** The method. */
  readonly method: HttpMethod;
  /** The path, with `:name` parameters (`/v1/containers/:id`). */
  readonly path: string;
  /** One line for the OpenAPI document. */
  readonly summary: string;
  /** Its group. */
  readonly tag: string;
  /** Who may call it. */
  readonly access: RouteAccess;
  /** Path parameters. */
  readonly params?: z.ZodType;
  /** Query parameters. */
  readonly query?: z.ZodType;
  /** The request body: JSON validated by a schema, or raw bytes. */
  readonly body?: z.ZodType | RawContent;
  /** The response body on success. */
  readonly response: z.ZodType | RawContent;
  /** The success status (default 200). */
  readonly status?: 200 | 201 | 202;
  /** Whether the request changes state: it is written to the audit log (kind `api.action`) with the caller. */
  readonly audit?: boolean;
  /** Which body size limit applies (default `json`). */
  readonly bodyLimit?: 'json' | 'package' | 'launch';
}

function route<const C extends Contract>(c: C): C {
  return c;
}

const OCTETS: RawContent = { raw: true, contentType: 'application/octet-stream', description: 'a signed .forgepkg package' };
const NDJSON: RawContent = { raw: true, contentType: 'application/x-ndjson', description: 'one JSON document per line; verifies offline with the kernel key' };

/** Every route of the API, by operation id. */
export const API = {
  health: route({ method: 'GET', path: '/v1/health', summary: 'Liveness and boot mode (no token needed)', tag: 'health', access: 'public', response: S.HealthBody }),
  openapi: route({ method: 'GET', path: '/v1/openapi.json', summary: 'This API as an OpenAPI 3.1 document', tag: 'health', access: READ, response: S.OpenApiBody }),
  whoami: route({ method: 'GET', path: '/v1/whoami', summary: 'The caller, as the server reads its token', tag: 'health', access: READ, response: S.WhoamiBody }),

  bootStatus: route({ method: 'GET', path: '/v1/boot', summary: 'Boot verdict, mode, trust root and golden checks, and the signed quote', tag: 'boot', access: READ, response: S.BootStatusBody }),
  bootMeasurements: route({ method: 'GET', path: '/v1/boot/measurements', summary: 'The measured-boot event log and the quote it replays to', tag: 'boot', access: READ, response: S.BootMeasurementsBody }),

  listPackages: route({ method: 'GET', path: '/v1/packages', summary: 'Uploaded packages', tag: 'packages', access: READ, response: S.PackageListBody }),
  uploadPackage: route({ method: 'POST', path: '/v1/packages', summary: 'Upload a signed package: verified against the trust root, then kept', tag: 'packages', access: OPERATE, body: OCTETS, response: S.PackageBody, status: 201, audit: true, bodyLimit: 'package' }),
  verifyPackageBytes: route({ method: 'POST', path: '/v1/packages/verify', summary: 'Verify a package against the trust root without keeping it', tag: 'packages', access: INSPECT, body: OCTETS, response: S.PackageVerificationBody, bodyLimit: 'package' }),
  getPackage: route({ method: 'GET', path: '/v1/packages/:digest', summary: 'One uploaded package', tag: 'packages', access: READ, params: S.DigestParams, response: S.PackageBody }),
  verifyPackage: route({ method: 'POST', path: '/v1/packages/:digest/verify', summary: 'Verify an uploaded package again, now', tag: 'packages', access: INSPECT, params: S.DigestParams, response: S.PackageVerificationBody }),

  listContainers: route({ method: 'GET', path: '/v1/containers', summary: 'Containers, oldest first', tag: 'containers', access: READ, query: S.ContainerListQuery, response: S.ContainerListBody }),
  launchContainer: route({ method: 'POST', path: '/v1/containers', summary: 'Launch a package (uploaded, by digest; or inline)', tag: 'containers', access: OPERATE, body: S.LaunchRequestBody, response: S.ContainerResultBody, status: 202, audit: true, bodyLimit: 'launch' }),
  getContainer: route({ method: 'GET', path: '/v1/containers/:id', summary: 'One container', tag: 'containers', access: READ, params: S.ContainerParams, response: S.ContainerResultBody }),
  containerReport: route({ method: 'GET', path: '/v1/containers/:id/report', summary: 'The end of a run: outcome, logs, trace summary, explanation (optionally waiting for it)', tag: 'containers', access: READ, params: S.ContainerParams, query: S.ReportQuery, response: S.ReportResultBody }),
  pauseContainer: route({ method: 'POST', path: '/v1/containers/:id/pause', summary: 'Pause a running container (its next call waits)', tag: 'containers', access: OPERATE, params: S.ContainerParams, response: S.ContainerResultBody, audit: true }),
  resumeContainer: route({ method: 'POST', path: '/v1/containers/:id/resume', summary: 'Resume a paused container', tag: 'containers', access: OPERATE, params: S.ContainerParams, response: S.ContainerResultBody, audit: true }),
  stopContainer: route({ method: 'POST', path: '/v1/containers/:id/stop', summary: 'Stop a container: a grace period, then termination', tag: 'containers', access: OPERATE, params: S.ContainerParams, body: S.StopRequestBody, response: S.ReportResultBody, audit: true }),

  getPolicy: route({ method: 'GET', path: '/v1/policy', summary: 'The policy in force, with its tightenings', tag: 'policy', access: READ, response: S.PolicyBody }),
  replacePolicy: route({ method: 'PUT', path: '/v1/policy', summary: 'Replace the policy with a bundle signed by the trust root\'s policy role', tag: 'policy', access: ADMIN, body: S.PolicyBundleBody, response: S.PolicyInstallBody, audit: true }),
  explainPolicy: route({ method: 'POST', path: '/v1/policy/explain', summary: 'Explain the decision the policy in force makes for a call', tag: 'policy', access: INSPECT, body: S.ExplainRequestBody, response: S.ExplainBody }),

  getTrace: route({ method: 'GET', path: '/v1/traces/:id', summary: 'A trace: header, summary, checkpoints and a page of calls', tag: 'traces', access: INSPECT, params: S.TraceParams, query: S.TraceQuery, response: S.TraceBody }),
  verifyTrace: route({ method: 'POST', path: '/v1/traces/:id/verify', summary: 'Verify a trace: hash chain and checkpoint signatures against the kernel key', tag: 'traces', access: INSPECT, params: S.TraceParams, response: S.TraceVerificationBody }),
  explainTrace: route({ method: 'GET', path: '/v1/traces/:id/explain', summary: 'Explain a run: what it touched, what was refused and why, a verdict', tag: 'traces', access: INSPECT, params: S.TraceParams, response: S.TraceExplanationBody }),
  replayTrace: route({ method: 'POST', path: '/v1/traces/:id/replay', summary: 'Replay a finished run from its trace and compare', tag: 'traces', access: INSPECT, params: S.TraceParams, response: S.ReplayBody, audit: true }),
  exportTrace: route({ method: 'GET', path: '/v1/traces/:id/export', summary: 'Export a trace (JSON lines)', tag: 'traces', access: INSPECT, params: S.TraceParams, response: NDJSON }),

  listQuarantine: route({ method: 'GET', path: '/v1/quarantine', summary: 'Red zone records', tag: 'quarantine', access: INSPECT, query: S.QuarantineListQuery, response: S.QuarantineListBody }),
  quarantineContainer: route({ method: 'POST', path: '/v1/quarantine', summary: 'Move a running container to the red zone', tag: 'quarantine', access: OPERATE, body: S.QuarantineRequestBody, response: S.QuarantineActionBody, status: 201, audit: true }),
  analyzeQuarantine: route({ method: 'POST', path: '/v1/quarantine/:id/analyze', summary: 'Analyse what a quarantined container did', tag: 'quarantine', access: INSPECT, params: S.QuarantineParams, response: S.QuarantineReportBody, audit: true }),
  releaseQuarantine: route({ method: 'POST', path: '/v1/quarantine/:id/release', summary: 'Release a quarantined container: its held call continues', tag: 'quarantine', access: OPERATE, params: S.QuarantineParams, response: S.QuarantineActionBody, audit: true }),
  terminateQuarantine: route({ method: 'POST', path: '/v1/quarantine/:id/terminate', summary: 'Terminate a quarantined container, keeping its evidence', tag: 'quarantine', access: OPERATE, params: S.QuarantineParams, body: S.TerminateRequestBody, response: S.QuarantineActionBody, audit: true }),

  queryAudit: route({ method: 'GET', path: '/v1/audit', summary: 'Audit events', tag: 'audit', access: AUDIT, query: S.AuditQuery, response: S.AuditListBody }),
  verifyAudit: route({ method: 'GET', path: '/v1/audit/verify', summary: 'Verify the whole audit log against the kernel key', tag: 'audit', access: AUDIT, response: S.AuditVerificationBody }),
  auditEvidence: route({ method: 'GET', path: '/v1/audit/evidence', summary: 'An evidence bundle of the matching events (verifies offline)', tag: 'audit', access: AUDIT, query: S.AuditQuery, response: S.AuditEvidenceBody }),
  exportAudit: route({ method: 'GET', path: '/v1/audit/export', summary: 'Export the whole audit log (JSON lines)', tag: 'audit', access: AUDIT, response: NDJSON }),

  diagnostics: route({ method: 'GET', path: '/v1/diagnostics', summary: 'Kernel and server state for operators', tag: 'diagnostics', access: INSPECT, response: S.DiagnosticsBody }),
  heatmap: route({ method: 'GET', path: '/v1/diagnostics/heatmap', summary: 'Denials and anomaly flags over identity × syscall and container × time, from the recorded traces', tag: 'diagnostics', access: INSPECT, query: S.HeatmapQuery, response: S.HeatmapBody }),
  selfTest: route({ method: 'POST', path: '/v1/diagnostics/selftest', summary: 'Run the kernel self-tests (a failure marks it degraded)', tag: 'diagnostics', access: OPERATE, response: S.SelfTestBody, audit: true }),
  events: route({ method: 'GET', path: '/v1/events', summary: 'Live events: container state changes, denials, quarantines, policy changes (server-sent events)', tag: 'events', access: READ, query: S.EventsQuery, response: { raw: true, contentType: 'text/event-stream', description: 'server-sent events: `event` is the type, `data` an Event document, `id` a sequence number (send Last-Event-ID to resume)' } }),
  metrics: route({ method: 'GET', path: '/metrics', summary: 'Prometheus metrics: the kernel\'s and the API\'s', tag: 'diagnostics', access: READ, response: { raw: true, contentType: 'text/plain; version=0.0.4; charset=utf-8', description: 'Prometheus text format' } }),
} as const satisfies Record<string, Contract>;

/** The API's routes. */
export type Api = typeof API;
/** An operation id. */
export type OperationId = keyof Api;

/** The path parameters of a route's request, when it has some. */
export type ParamsIn<C> = C extends { readonly params: infer P extends z.ZodType } ? { readonly params: z.input<P> } : object;
/** The query of a route's request, when it takes one. */
export type QueryIn<C> = C extends { readonly query: infer Q extends z.ZodType } ? { readonly query?: z.input<Q> } : object;
/** The body of a route's request, when it takes one: JSON, or bytes. */
export type BodyIn<C> = C extends { readonly body: infer B } ? (B extends z.ZodType ? { readonly body: z.input<B> } : { readonly body: Uint8Array }) : object;

/** What a request of an operation carries: path parameters, query and body, each when the route has them. */
export type InputOf<K extends OperationId> = ParamsIn<Api[K]> & QueryIn<Api[K]> & BodyIn<Api[K]>;
/** What an operation answers: the parsed JSON body, or the text of a raw response. */
export type OutputOf<K extends OperationId> = Api[K]['response'] extends z.ZodType ? z.output<Api[K]['response']> : string;
/** `T` with every array and object readonly, so handlers may return the kernel's frozen records as they are. */
export type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [P in keyof T]: DeepReadonly<T[P]> } : T;
/** What a handler of an operation returns (JSON before serialisation, or the raw body). */
export type HandlerResult<K extends OperationId> = Api[K]['response'] extends z.ZodType ? DeepReadonly<z.input<Api[K]['response']>> : string | Uint8Array;

/**
 * The OpenAPI form of a route path: `/v1/containers/:id` → `/v1/containers/{id}`.
 * @param path - a contract path
 * @returns the templated path
 */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/**
 * Whether a contract's body or response is raw content (not JSON).
 * @param value - a body or response of a contract
 * @returns true for raw content
 */
export function isRaw(value: Contract['body'] | Contract['response']): value is RawContent {
  return typeof value === 'object' && value !== null && (value as { raw?: unknown }).raw === true;
}
