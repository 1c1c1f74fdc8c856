/**
 * The typed client of the API: one method per route, errors as ForgeErrors with the server's code.
 *
 * @packageDocumentation
 */
import { ForgeError, isErrorCode } from '@forgeone/common';
import { API, isRaw, type Contract, type InputOf, type OperationId, type OutputOf } from './api.js';

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:7480`. */
  readonly baseUrl: string;
  /** A bearer token from `forgeone token issue` (not needed for health). */
  readonly token?: string;
  /** The fetch to use (default the global one). */
  readonly fetch?: typeof fetch;
  /** Give up on a request after this long, ms (default 120,000; event streams are not limited). */
  readonly timeoutMs?: number;
}

/** One live event. */
export interface ClientEvent {
  /** The event id (send it back as `lastEventId` to resume). */
  readonly id: number;
  /** The type: `container.state`, `denial`, `quarantine`, `release`, `policy.changed`, `config.changed`. */
  readonly type: string;
  /** The event document (`type`, `time` and its own fields: `id` of the container, `status`, `reason`, …). */
  readonly data: Readonly<Record<string, unknown>> & { readonly type: string; readonly time: number };
}

/** Options of {@link ForgeClient.events}. */
export interface EventsOptions {
  /** Only these types. */
  readonly types?: readonly string[];
  /** Resume after this event id. */
  readonly lastEventId?: number;
  /** Stops the stream. */
  readonly signal?: AbortSignal;
}

/** A client method of an operation: takes its input (optional when it has none) and returns its output. */
export type Call<K extends OperationId> = object extends InputOf<K> ? (input?: InputOf<K>) => Promise<OutputOf<K>> : (input: InputOf<K>) => Promise<OutputOf<K>>;

/** The client. Every method maps to one operation of the API; `call` reaches any of them by id. */
export interface ForgeClient {
  /** The server. */
  readonly baseUrl: string;
  /**
   * Call an operation by id.
   * @param operation - the operation id (see `API`)
   * @param input - path parameters, query and body, as the operation takes them
   * @returns the parsed response
   * @throws ForgeError with the server's code (or `IO_ERROR` when the server cannot be reached)
   */
  call<K extends OperationId>(operation: K, input?: InputOf<K>): Promise<OutputOf<K>>;
  /**
   * Read the live event stream.
   * @param options - type filter, resume point, abort signal
   * @returns the events, as they come
   */
  events(options?: EventsOptions): AsyncIterable<ClientEvent>;
  /** Liveness (no token needed). */
  readonly health: Call<'health'>;
  /** The caller as the server sees the token. */
  readonly whoami: Call<'whoami'>;
  /** The OpenAPI document. */
  readonly openapi: Call<'openapi'>;
  /** Boot status and its measurements. */
  readonly boot: { readonly status: Call<'bootStatus'>; readonly measurements: Call<'bootMeasurements'> };
  /** Packages. */
  readonly packages: {
    /** Uploaded packages. */
    readonly list: Call<'listPackages'>;
    /** One package. */
    readonly get: Call<'getPackage'>;
    /**
     * Upload a signed package.
     * @param bytes - the `.forgepkg`
     */
    upload(bytes: Uint8Array): Promise<OutputOf<'uploadPackage'>>;
    /**
     * Verify a package: uploaded (by digest) or given as bytes.
     * @param what - a digest, or the bytes
     */
    verify(what: string | Uint8Array): Promise<OutputOf<'verifyPackage'>>;
  };
  /** Containers. */
  readonly containers: {
    readonly list: Call<'listContainers'>;
    readonly launch: Call<'launchContainer'>;
    readonly get: Call<'getContainer'>;
    readonly report: Call<'containerReport'>;
    readonly pause: Call<'pauseContainer'>;
    readonly resume: Call<'resumeContainer'>;
    readonly stop: Call<'stopContainer'>;
  };
  /** The policy. */
  readonly policy: { readonly get: Call<'getPolicy'>; readonly replace: Call<'replacePolicy'>; readonly explain: Call<'explainPolicy'> };
  /** Traces. */
  readonly traces: { readonly get: Call<'getTrace'>; readonly verify: Call<'verifyTrace'>; readonly explain: Call<'explainTrace'>; readonly replay: Call<'replayTrace'>; readonly export: Call<'exportTrace'> };
  /** The red zone. */
  readonly quarantine: {
    readonly list: Call<'listQuarantine'>;
    readonly add: Call<'quarantineContainer'>;
    readonly analyze: Call<'analyzeQuarantine'>;
    readonly release: Call<'releaseQuarantine'>;
    readonly terminate: Call<'terminateQuarantine'>;
  };
  /** The audit log. */
  readonly audit: { readonly query: Call<'queryAudit'>; readonly verify: Call<'verifyAudit'>; readonly evidence: Call<'auditEvidence'>; readonly export: Call<'exportAudit'> };
  /** Diagnostics. */
  readonly diagnostics: { readonly get: Call<'diagnostics'>; readonly heatmap: Call<'heatmap'>; readonly selfTest: Call<'selfTest'>; readonly metrics: Call<'metrics'> };
}

interface AnyInput {
  readonly params?: Record<string, unknown>;
  readonly query?: Record<string, unknown>;
  readonly body?: unknown;
}

function buildUrl(baseUrl: string, c: Contract, input: AnyInput): string {
  const path = c.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const v = input.params?.[name];
    if (v === undefined) throw new ForgeError('INVALID_ARGUMENT', `missing path parameter ${name}`, { details: { field: `params.${name}` } });
    return encodeURIComponent(String(v));
  });
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(input.query ?? {})) {
    if (v === undefined) continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const qs = q.toString();
  return `${baseUrl.replace(/\/+$/, '')}${path}${qs === '' ? '' : `?${qs}`}`;
}

async function toError(res: Response): Promise<ForgeError> {
  const text = await res.text().catch(() => '');
  try {
    const doc = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = doc.error;
    if (e !== undefined && typeof e.code === 'string' && isErrorCode(e.code)) {
      const details = typeof e.details === 'object' && e.details !== null ? (e.details as Record<string, unknown>) : undefined;
      return new ForgeError(e.code, typeof e.message === 'string' ? e.message : e.code, { details: { status: res.status, ...details } });
    }
  } catch {
    // not an API error body
  }
  return new ForgeError(res.status === 404 ? 'NOT_FOUND' : res.status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT', `HTTP ${res.status}: ${text.slice(0, 200)}`, { details: { status: res.status } });
}

/**
 * Create a client of a ForgeOne API server.
 * @example
 * ```ts
 * const client = createClient({ baseUrl: 'http://127.0.0.1:7480', token });
 * const { containers } = await client.containers.list();
 * ```
 * @param options - the server, the token, a fetch
 * @returns the client
 */
export function createClient(options: ClientOptions): ForgeClient {
  const doFetch = options.fetch ?? fetch;
  const baseUrl = options.baseUrl;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const headers = (extra: Record<string, string> = {}): Record<string, string> => (options.token === undefined ? extra : { authorization: `Bearer ${options.token}`, ...extra });

  const send = async (c: Contract, input: AnyInput, init: { signal?: AbortSignal; accept?: string } = {}): Promise<Response> => {
    const url = buildUrl(baseUrl, c, input);
    let body: RequestInit['body'];
    const h: Record<string, string> = { accept: init.accept ?? (isRaw(c.response) ? c.response.contentType : 'application/json') };
    if (c.body !== undefined) {
      if (isRaw(c.body)) {
        body = input.body as Uint8Array;
        h['content-type'] = c.body.contentType;
      } else {
        body = JSON.stringify(input.body ?? {});
        h['content-type'] = 'application/json';
      }
    }
    try {
      return await doFetch(url, { method: c.method, headers: headers(h), ...(body === undefined ? {} : { body }), signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      if ((e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError') throw new ForgeError('IO_ERROR', `${c.method} ${url}: no answer within ${timeoutMs} ms`, { cause: e, retryable: true });
      throw new ForgeError('IO_ERROR', `${c.method} ${url}: ${(e as Error).message}`, { cause: e, retryable: true });
    }
  };

  const call = async <K extends OperationId>(operation: K, input?: InputOf<K>): Promise<OutputOf<K>> => {
    const c: Contract = API[operation];
    const res = await send(c, (input ?? {}) as AnyInput);
    if (!res.ok) throw await toError(res);
    if (isRaw(c.response)) return (await res.text()) as OutputOf<K>;
    return (await res.json()) as OutputOf<K>;
  };
  const bind =
    <K extends OperationId>(op: K): Call<K> =>
    ((input?: InputOf<K>) => call(op, input)) as Call<K>;

  async function* events(opts: EventsOptions = {}): AsyncIterable<ClientEvent> {
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      const res = await doFetch(buildUrl(baseUrl, API.events, { query: opts.types === undefined ? {} : { types: opts.types } }), {
        headers: headers({ accept: 'text/event-stream', ...(opts.lastEventId === undefined ? {} : { 'last-event-id': String(opts.lastEventId) }) }),
        signal: controller.signal,
      }).catch((e: unknown) => {
        throw new ForgeError('IO_ERROR', `cannot open the event stream: ${(e as Error).message}`, { cause: e, retryable: true });
      });
      if (!res.ok) throw await toError(res);
      if (res.body === null) return;
      const decoder = new TextDecoder();
      let buffer = '';
      const reader = res.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (controller.signal.aborted) return;
          throw new ForgeError('IO_ERROR', `the event stream broke: ${(e as Error).message}`, { cause: e, retryable: true });
        }
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id = 0;
          let type = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data === '') continue;
          yield { id, type, data: JSON.parse(data) as ClientEvent['data'] };
        }
      }
    } finally {
      opts.signal?.removeEventListener('abort', stop);
      controller.abort();
    }
  }

  return {
    baseUrl,
    call,
    events,
    health: bind('health'),
    whoami: bind('whoami'),
    openapi: bind('openapi'),
    boot: { status: bind('bootStatus'), measurements: bind('bootMeasurements') },
    packages: {
      list: bind('listPackages'),
      get: bind('getPackage'),
      upload: (bytes) => call('uploadPackage', { body: bytes }),
      verify: (what) => (typeof what === 'string' ? call('verifyPackage', { params: { digest: what } }) : call('verifyPackageBytes', { body: what })),
    },
    containers: {
      list: bind('listContainers'),
      launch: bind('launchContainer'),
      get: bind('getContainer'),
      report: bind('containerReport'),
      pause: bind('pauseContainer'),
      resume: bind('resumeContainer'),
      stop: bind('stopContainer'),
    },
    policy: { get: bind('getPolicy'), replace: bind('replacePolicy'), explain: bind('explainPolicy') },
    traces: { get: bind('getTrace'), verify: bind('verifyTrace'), explain: bind('explainTrace'), replay: bind('replayTrace'), export: bind('exportTrace') },
    quarantine: { list: bind('listQuarantine'), add: bind('quarantineContainer'), analyze: bind('analyzeQuarantine'), release: bind('releaseQuarantine'), terminate: bind('terminateQuarantine') },
    audit: { query: bind('queryAudit'), verify: bind('verifyAudit'), evidence: bind('auditEvidence'), export: bind('exportAudit') },
    diagnostics: { get: bind('diagnostics'), heatmap: bind('heatmap'), selfTest: bind('selfTest'), metrics: bind('metrics') },
  };
}
