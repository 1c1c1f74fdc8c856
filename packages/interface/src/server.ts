/**
 * `createApiServer`: the kernel behind a Fastify HTTP server.
 *
 * @packageDocumentation
 */
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { ForgeError, systemClock, type CanonicalValue, type Clock } from '@forgeone/common';
import type { PublicKeyInfo } from '@forgeone/crypto';
import type { Kernel } from '@forgeone/kernel';
import type { z } from 'zod';
import { API, isRaw, type Contract, type OperationId } from './api.js';
import { errorBody, statusOf, toApiError, validationError } from './errors.js';
import { createEventHub, type EventHub } from './events.js';
import { STREAMED, createHandlers, type HandlerContext, type Handlers, type ServerStats } from './handlers.js';
import { buildOpenApiDocument } from './openapi.js';
import { createStorePackageStore, type PackageStore } from './packages.js';
import { roleAllows } from './roles.js';
import { API_TOKEN_ROLE, createTokenVerifier, tokenKeysFromTrustRoot, type TokenClaims, type TokenVerifier } from './tokens.js';

/** The API's version, in the OpenAPI document. */
export const API_VERSION = '1.0.0';
/** The port `forgeone serve` listens on by default. */
export const DEFAULT_PORT = 7480;

/** Who may issue tokens. */
export interface ApiAuthOptions {
  /** Keys trusted to sign tokens. */
  readonly keys?: readonly PublicKeyInfo[];
  /** Also trust the keys of this role of the kernel's trust root (default `api` when the trust root has that role). */
  readonly trustRootRole?: string;
  /** Clock skew accepted on token times, seconds (default 30). */
  readonly clockToleranceSeconds?: number;
}

/** Limits of the server. */
export interface ApiLimits {
  /** Largest JSON body, bytes (default 1 MiB). */
  readonly bodyBytes?: number;
  /** Largest package upload, bytes (default 64 MiB). */
  readonly packageBytes?: number;
  /** Requests per token per window (default 600). */
  readonly requestsPerWindow?: number;
  /** The rate window, ms (default 60,000). */
  readonly windowMs?: number;
  /** Event streams open at once (default 64). */
  readonly eventStreams?: number;
  /** Time a client has to send a whole request, ms (default 60,000). */
  readonly requestTimeoutMs?: number;
}

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  /** The kernel to serve. */
  readonly kernel: Kernel;
  /** Who may issue tokens. */
  readonly auth: ApiAuthOptions;
  /** Address to listen on (default `127.0.0.1`). */
  readonly host?: string;
  /** Port (default {@link DEFAULT_PORT}; 0 for any free port). */
  readonly port?: number;
  /** Limits. */
  readonly limits?: ApiLimits;
  /** Where uploads are kept (default: in the kernel's store). */
  readonly packages?: PackageStore;
  /** Also install every upload into the kernel home, so later boots measure it (needs a kernel home; default false). */
  readonly installPackages?: boolean;
  /** Time source (default the system clock). */
  readonly clock?: Clock;
  /** Check every JSON response against its schema (for tests: a mismatch answers 500). Default false. */
  readonly validateResponses?: boolean;
  /** Heartbeat of the event stream, ms (default 15,000). */
  readonly heartbeatMs?: number;
  /** Told about unexpected errors (answered with `INTERNAL`); default: printed on standard error. */
  readonly onError?: (error: unknown, request: { readonly method: string; readonly url: string }) => void;
}

/** Where a server listens. */
export interface ApiAddress {
  /** Host. */
  readonly host: string;
  /** Port. */
  readonly port: number;
  /** `http://host:port`. */
  readonly url: string;
}

/** A route as the HTTP framework registered it. */
export interface RegisteredRoute {
  /** Method. */
  readonly method: string;
  /** Path with `:name` parameters. */
  readonly path: string;
  /** Operation id, for API routes. */
  readonly operationId: string | undefined;
}

/** The API server. */
export interface ApiServer {
  /**
   * Start listening.
   * @returns the address
   * @throws ForgeError `IO_ERROR` when the address is taken
   */
  listen(): Promise<ApiAddress>;
  /** Stop: end event streams, close connections. Idempotent; the kernel is not shut down. */
  close(): Promise<void>;
  /** The address, once listening. */
  readonly address: ApiAddress | undefined;
  /** Every route registered with the HTTP framework. */
  readonly routes: readonly RegisteredRoute[];
  /** The OpenAPI document. */
  readonly openapi: Readonly<Record<string, unknown>>;
  /** Live event streams. */
  readonly eventStreams: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: TokenClaims | null;
  }
  interface FastifyContextConfig {
    operationId?: OperationId;
    contract?: Contract;
  }
}

interface OpStats {
  readonly statuses: Map<number, number>;
  seconds: number;
  count: number;
}

/**
 * Create the API server over a kernel: `/v1` routes from {@link API}, bearer tokens checked against the
 * trusted keys, roles enforced, per-token rate limits, body size limits, strict validation, every mutating
 * request audited (`api.action`), an event stream, `/metrics`, and the OpenAPI document.
 * @example
 * ```ts
 * const server = await createApiServer({ kernel, auth: { keys: [tokenKey.toPublic()] }, port: 0 });
 * const { url } = await server.listen();
 * ```
 * @param options - kernel, auth, address, limits
 * @returns the server (not listening yet)
 * @throws ForgeError `INVALID_ARGUMENT` when no token key is configured
 */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { kernel } = options;
  const clock = options.clock ?? systemClock;
  const limits = options.limits ?? {};
  const bodyBytes = limits.bodyBytes ?? 1 << 20;
  const packageBytes = limits.packageBytes ?? 64 << 20;
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_PORT;
  const onError = options.onError ?? ((e, r) => console.error(`forgeone api: ${r.method} ${r.url}:`, e));

  const keys: PublicKeyInfo[] = [...(options.auth.keys ?? [])];
  const trustRoot = kernel.boot.trustRootDocument;
  const role = options.auth.trustRootRole ?? API_TOKEN_ROLE;
  if (trustRoot !== null && trustRoot.signed.roles[role] !== undefined) keys.push(...tokenKeysFromTrustRoot(trustRoot, role));
  else if (options.auth.trustRootRole !== undefined) throw new ForgeError('TRUST_ROLE_UNKNOWN', `the kernel's trust root has no role ${JSON.stringify(role)}`);
  if (keys.length === 0) throw new ForgeError('INVALID_ARGUMENT', 'no key may issue API tokens: give auth.keys, or a trust root with an api role', { details: { field: 'auth.keys' } });
  const verifier: TokenVerifier = createTokenVerifier({ keys, clock, ...(options.auth.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: options.auth.clockToleranceSeconds }) });

  const packages = options.packages ?? (await createStorePackageStore({ store: kernel.store }));
  const hub: EventHub = createEventHub({ subscribe: (l) => kernel.onEvent(l), maxStreams: limits.eventStreams ?? 64, ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }) });
  const stats: ServerStats = { requests: 0, startedAt: clock.now() };
  const opStats = new Map<string, OpStats>();
  // Mutating requests already written to the audit log by their handler (the error handler writes the others).
  const audited = new WeakSet<FastifyRequest>();
  let address: ApiAddress | undefined;
  let closed = false;
  let openapi: Record<string, unknown> | undefined;
  const document = (): Record<string, unknown> => (openapi ??= buildOpenApiDocument({ version: API_VERSION, ...(address === undefined ? {} : { serverUrl: address.url }) }));

  const handlers: Handlers = createHandlers({
    kernel,
    packages,
    installPackages: options.installPackages ?? false,
    hub,
    clock,
    openapi: document,
    apiMetrics: () => renderApiMetrics(opStats, hub),
    stats,
  });

  const app = Fastify({
    logger: false,
    bodyLimit: bodyBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    exposeHeadRoutes: false,
    return503OnClosing: true,
    requestTimeout: limits.requestTimeoutMs ?? 60_000,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: true },
  });
  app.decorateRequest('caller', null);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const auditAction = async (request: FastifyRequest, c: Contract, op: string, status: number, code: string | null, subject: string | undefined, details: Record<string, CanonicalValue>): Promise<void> => {
    const caller = request.caller;
    if (caller === null) return;
    const params = (request.params ?? {}) as { id?: unknown; digest?: unknown };
    const target = subject ?? (typeof params.id === 'string' ? params.id : typeof params.digest === 'string' ? params.digest : op);
    await kernel.audit.append({
      kind: 'api.action',
      subject: target.slice(0, 256) || op,
      actor: `api:${caller.subject}`.slice(0, 256),
      details: { operation: op, method: c.method, path: request.url.split('?')[0]!.slice(0, 512), role: caller.role, tokenId: caller.tokenId, status, ...(code === null ? {} : { code }), ...details },
    });
  };

  // Errors from hooks, parsing and handlers: a code and its status, never a stack trace; mutating requests of
  // a known caller that failed before their handler ran are audited here.
  app.setErrorHandler(async (e, request, reply) => {
    const c = request.routeOptions.config.contract;
    const { error, unexpected } = toApiError(e, { bodyLimit: request.routeOptions.bodyLimit ?? bodyBytes });
    if (unexpected) onError(e, { method: request.method, url: request.url });
    const status = statusOf(error);
    if (c?.audit === true && request.caller !== null && !audited.has(request) && error.code !== 'RATE_LIMITED') {
      await auditAction(request, c, request.routeOptions.config.operationId ?? 'unknown', status, error.code, undefined, {}).catch((ae: unknown) => onError(ae, { method: request.method, url: request.url }));
    }
    if (error.code === 'AUTH_MISSING' || error.code === 'AUTH_INVALID' || error.code === 'AUTH_EXPIRED') reply.header('www-authenticate', 'Bearer realm="forgeone"');
    return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(errorBody(error)));
  });
  app.setNotFoundHandler(async (request) => {
    throw new ForgeError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`);
  });

  // 1. Who calls: a valid token (every route but the public ones).
  app.addHook('onRequest', async (request) => {
    const c = request.routeOptions.config.contract;
    if (c === undefined || c.access === 'public') return;
    const header = request.headers.authorization;
    if (header === undefined || header === '') throw new ForgeError('AUTH_MISSING', 'this route needs a bearer token (Authorization: Bearer <token>)');
    if (!/^Bearer [^\s]+$/i.test(header)) throw new ForgeError('AUTH_INVALID', 'the Authorization header is not "Bearer <token>"');
    request.caller = await verifier.verify(header.slice(7));
  });
  // 2. How often: per token.
  await app.register(rateLimit, {
    global: false,
    max: limits.requestsPerWindow ?? 600,
    timeWindow: limits.windowMs ?? 60_000,
    keyGenerator: (request) => request.caller?.tokenId ?? request.ip,
    allowList: (request) => request.caller === null,
    errorResponseBuilder: (_request, context) =>
      new ForgeError('RATE_LIMITED', `rate limit of ${context.max} requests reached; retry in ${context.after}`, { details: { limit: context.max, retryAfterMs: context.ttl } }),
  });
  app.addHook('onRequest', app.rateLimit());
  // 3. What for: the token's role must be allowed on the route.
  app.addHook('onRequest', async (request) => {
    const c = request.routeOptions.config.contract;
    const caller = request.caller;
    if (c === undefined || c.access === 'public' || caller === null) return;
    if (!roleAllows(c.access, caller.role)) {
      throw new ForgeError('AUTH_FORBIDDEN', `role ${caller.role} may not call ${request.routeOptions.config.operationId}; it needs ${c.access.join(' or ')}`, { details: { role: caller.role, allowed: [...c.access] } });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    stats.requests++;
    const op = request.routeOptions.config.operationId ?? 'unmatched';
    let s = opStats.get(op);
    if (s === undefined) opStats.set(op, (s = { statuses: new Map(), seconds: 0, count: 0 }));
    s.statuses.set(reply.statusCode, (s.statuses.get(reply.statusCode) ?? 0) + 1);
    s.seconds += reply.elapsedTime / 1000;
    s.count++;
  });

  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) registered.push({ method, path: r.url, operationId: (r.config as { operationId?: string } | undefined)?.operationId });
  });

  const parse = <T>(schema: z.ZodType | undefined, value: unknown, where: 'body' | 'query' | 'path'): T => {
    if (schema === undefined) return undefined as T;
    const r = schema.safeParse(value);
    if (!r.success) throw validationError(where, r.error.issues);
    return r.data as T;
  };

  const serve = async (op: OperationId, c: Contract, request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const audit: { subject?: string; details: Record<string, CanonicalValue> } = { details: {} };
    let hijacked = false;
    let result: unknown;
    let failure: unknown;
    try {
      let body: unknown;
      if (c.body !== undefined) {
        const b = request.body;
        if (isRaw(c.body)) {
          if (!Buffer.isBuffer(b)) throw new ForgeError('UNSUPPORTED_MEDIA_TYPE', `the body must be ${c.body.contentType}`, { details: { field: 'content-type' } });
          body = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
        } else {
          if (Buffer.isBuffer(b)) throw new ForgeError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json', { details: { field: 'content-type' } });
          body = parse(c.body, b ?? {}, 'body');
        }
      }
      const ctx = {
        params: parse(c.params, request.params, 'path'),
        query: parse(c.query, request.query, 'query'),
        body,
        caller: request.caller,
        raw: { request: request.raw, response: reply.raw, headers: request.headers },
        hijack: () => {
          hijacked = true;
          reply.hijack();
        },
        audit,
      };
      result = await (handlers[op] as (ctx: HandlerContext<OperationId>) => Promise<unknown>)(ctx as unknown as HandlerContext<OperationId>);
      if (options.validateResponses === true && result !== STREAMED && !isRaw(c.response)) {
        const v = c.response.safeParse(result);
        if (!v.success) {
          throw new ForgeError('INTERNAL', `response of ${op} does not match its schema`, { cause: validationError('body', v.error.issues) });
        }
      }
    } catch (e) {
      failure = e;
    }
    if (c.audit === true && request.caller !== null) {
      const { error } = failure === undefined ? { error: undefined } : toApiError(failure);
      audited.add(request);
      await auditAction(request, c, op, error === undefined ? (c.status ?? 200) : statusOf(error), error?.code ?? null, audit.subject, audit.details);
    }
    if (failure !== undefined) throw failure;
    if (hijacked || result === STREAMED) return reply;
    reply.code(c.status ?? 200);
    if (isRaw(c.response)) return reply.type(c.response.contentType).send(result as string | Uint8Array);
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(result));
  };

  for (const [op, c] of Object.entries(API) as [OperationId, Contract][]) {
    app.route({
      method: c.method,
      url: c.path,
      bodyLimit: c.bodyLimit === 'package' ? packageBytes : c.bodyLimit === 'launch' ? Math.ceil((packageBytes * 4) / 3) + (1 << 16) : bodyBytes,
      config: { operationId: op, contract: c },
      handler: (request, reply) => serve(op, c, request, reply),
    });
  }
  app.addHook('preClose', async () => hub.close());
  await app.ready();

  return {
    async listen() {
      if (address !== undefined) return address;
      try {
        await app.listen({ host, port });
      } catch (e) {
        throw new ForgeError('IO_ERROR', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
      }
      const a = app.server.address();
      const actualPort = typeof a === 'object' && a !== null ? a.port : port;
      address = { host, port: actualPort, url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}` };
      openapi = undefined;
      return address;
    },
    async close() {
      if (closed) return;
      closed = true;
      hub.close();
      await app.close();
    },
    get address() {
      return address;
    },
    routes: registered,
    get openapi() {
      return document();
    },
    get eventStreams() {
      return hub.streams;
    },
  };
}

function renderApiMetrics(ops: ReadonlyMap<string, OpStats>, hub: EventHub): string {
  const lines = [
    '# HELP forgeone_api_requests_total API requests answered, by operation and status.',
    '# TYPE forgeone_api_requests_total counter',
  ];
  for (const [op, s] of ops) for (const [status, n] of s.statuses) lines.push(`forgeone_api_requests_total{operation="${op}",status="${status}"} ${n}`);
  lines.push('# HELP forgeone_api_request_duration_seconds Time to answer API requests, by operation.', '# TYPE forgeone_api_request_duration_seconds summary');
  for (const [op, s] of ops) lines.push(`forgeone_api_request_duration_seconds_sum{operation="${op}"} ${s.seconds}`, `forgeone_api_request_duration_seconds_count{operation="${op}"} ${s.count}`);
  lines.push('# HELP forgeone_api_event_streams Open event streams.', '# TYPE forgeone_api_event_streams gauge', `forgeone_api_event_streams ${hub.streams}`);
  return `${lines.join('\n')}\n`;
}
