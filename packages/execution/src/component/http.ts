import { isForgeError } from '@forgeone/common';
import type { NetGrant } from '../capabilities.js';
import { canonicalUrl } from '../gate/canonical.js';
import { encodeHttpResponse } from './forgeone.js';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, type HostContext } from './host.js';
import { InputStream, OutputStream, Pollable, bufferSource } from './io.js';
import type { HostHttpResponse, HostServices } from './services.js';
import { networkGranted } from './wasi.js';

/** Largest outgoing request body, bytes. */
export const MAX_HTTP_BODY = 16 * 1024 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `wasi:http/types.method`: `{ tag: 'get' }`, ..., or `{ tag: 'other', val }`. */
export type Method = { tag: string; val?: string };
/** `wasi:http/types.scheme`. */
export type Scheme = { tag: 'HTTP' | 'HTTPS' | 'other'; val?: string };

/** `wasi:http/types.fields`: header names and values, immutable once attached to a request or response. */
export class Fields {
  readonly #list: [string, Uint8Array][] = [];
  #immutable = false;

  /**
   * Implements `from-list`.
   * @param entries - name/value pairs
   * @returns new mutable fields
   */
  static fromList(entries: [string, Uint8Array][]): Fields {
    const f = new Fields();
    for (const [k, v] of entries) f.append(k, v);
    return f;
  }

  /**
   * Immutable fields from string pairs (response headers).
   * @param entries - name/value pairs
   * @returns the fields
   * @internal
   */
  static frozen(entries: readonly (readonly [string, string])[]): Fields {
    const f = new Fields();
    for (const [k, v] of entries) f.#list.push([k.toLowerCase(), enc.encode(v)]);
    f.#immutable = true;
    return f;
  }

  /**
   * Make the fields immutable (attached to a request).
   * @returns this
   * @internal
   */
  freeze(): this {
    this.#immutable = true;
    return this;
  }

  /**
   * Implements `get`.
   * @param name - header name
   * @returns its values
   */
  get(name: string): Uint8Array[] {
    const n = name.toLowerCase();
    return this.#list.filter(([k]) => k === n).map(([, v]) => v.slice());
  }

  /**
   * Implements `has`.
   * @param name - header name
   * @returns whether present
   */
  has(name: string): boolean {
    const n = name.toLowerCase();
    return this.#list.some(([k]) => k === n);
  }

  /**
   * Implements `set`.
   * @param name - header name
   * @param values - replacement values
   */
  set(name: string, values: Uint8Array[]): void {
    this.#mutable(name);
    this.delete(name);
    for (const v of values) this.append(name, v);
  }

  /**
   * Implements `delete`.
   * @param name - header name
   */
  delete(name: string): void {
    this.#mutable(name);
    const n = name.toLowerCase();
    for (let i = this.#list.length - 1; i >= 0; i--) if (this.#list[i]![0] === n) this.#list.splice(i, 1);
  }

  /**
   * Implements `append`.
   * @param name - header name
   * @param value - value
   */
  append(name: string, value: Uint8Array): void {
    this.#mutable(name);
    if (value.includes(0x0a) || value.includes(0x0d) || value.includes(0)) throw new HostResultError({ tag: 'invalid-syntax' });
    this.#list.push([name.toLowerCase(), value.slice()]);
  }

  /** @returns all pairs */
  entries(): [string, Uint8Array][] {
    return this.#list.map(([k, v]) => [k, v.slice()]);
  }

  /** @returns a mutable copy */
  clone(): Fields {
    return Fields.fromList(this.#list);
  }

  /**
   * The pairs as strings, for the host services.
   * @returns name/value pairs
   * @internal
   */
  pairs(): [string, string][] {
    return this.#list.map(([k, v]) => [k, dec.decode(v)]);
  }

  #mutable(name: string): void {
    if (this.#immutable) throw new HostResultError({ tag: 'immutable' });
    if (!TOKEN.test(name)) throw new HostResultError({ tag: 'invalid-syntax' });
  }
}

/** `wasi:http/types.outgoing-body`: collects the request body in host memory. */
export class OutgoingBody {
  /** @internal */
  readonly chunks: Uint8Array[] = [];
  /** @internal */
  size = 0;
  /** @internal */
  finished = false;
  #stream: OutputStream | undefined;
  readonly #ctx: HostContext;
  readonly #now: () => bigint;

  /**
   * @param ctx - host context
   * @param now - monotonic clock
   */
  constructor(ctx: HostContext, now: () => bigint) {
    this.#ctx = ctx;
    this.#now = now;
  }

  /** @returns the stream the body is written to (once) */
  write(): OutputStream {
    if (this.#stream !== undefined) throw new HostResultError(undefined);
    // Writes go to host memory; the request as a whole crosses the gate in `handle`.
    this.#stream = new OutputStream(this.#ctx, -1, (bytes) => {
      if (this.finished) throw new Error('body finished');
      if (this.size + bytes.length > MAX_HTTP_BODY) throw new Error('body too large');
      this.chunks.push(bytes.slice());
      this.size += bytes.length;
    }, this.#now);
    return this.#stream;
  }

  /**
   * Implements `finish`.
   * @param body - the body
   * @param _trailers - trailers (ignored: the host services have none)
   */
  static finish(body: OutgoingBody, _trailers?: Fields): void {
    body.finished = true;
  }
}

/** `wasi:http/types.outgoing-request`. */
export class OutgoingRequest {
  /** @internal */
  methodValue: Method = { tag: 'get' };
  /** @internal */
  path: string | undefined = undefined;
  /** @internal */
  schemeValue: Scheme | undefined = undefined;
  /** @internal */
  authorityValue: string | undefined = undefined;
  /** @internal */
  readonly fields: Fields;
  /** @internal */
  outgoing: OutgoingBody | undefined;

  /** @param headers - the request headers (become immutable) */
  constructor(headers: Fields) {
    this.fields = headers.freeze();
  }

  /** @returns the body (once) */
  body(): OutgoingBody {
    if (this.outgoing !== undefined) throw new HostResultError(undefined);
    const ctx = (this.constructor as unknown as { ctx?: HostContext }).ctx;
    const now = (this.constructor as unknown as { now?: () => bigint }).now;
    if (ctx === undefined || now === undefined) throw new HostResultError(undefined);
    this.outgoing = new OutgoingBody(ctx, now);
    return this.outgoing;
  }

  /** @returns the method */
  method(): Method {
    return this.methodValue;
  }

  /**
   * Implements `set-method`.
   * @param m - the method
   */
  setMethod(m: Method): void {
    if (m.tag === 'other' && (typeof m.val !== 'string' || !TOKEN.test(m.val))) throw new HostResultError(undefined);
    this.methodValue = m;
  }

  /** @returns path and query */
  pathWithQuery(): string | undefined {
    return this.path;
  }

  /**
   * Implements `set-path-with-query`.
   * @param p - path and query
   */
  setPathWithQuery(p: string | undefined): void {
    if (p !== undefined && (/[\s#]/.test(p) || (!p.startsWith('/') && p !== '*'))) throw new HostResultError(undefined);
    this.path = p;
  }

  /** @returns the scheme */
  scheme(): Scheme | undefined {
    return this.schemeValue;
  }

  /**
   * Implements `set-scheme`.
   * @param s - the scheme
   */
  setScheme(s: Scheme | undefined): void {
    this.schemeValue = s;
  }

  /** @returns the authority */
  authority(): string | undefined {
    return this.authorityValue;
  }

  /**
   * Implements `set-authority`.
   * @param a - the authority
   */
  setAuthority(a: string | undefined): void {
    if (a !== undefined && /[\s/@?#]/.test(a)) throw new HostResultError(undefined);
    this.authorityValue = a;
  }

  /** @returns the headers (immutable) */
  headers(): Fields {
    return this.fields;
  }
}

/** `wasi:http/types.request-options`: accepted, not enforced (the host services own timeouts). */
export class RequestOptions {
  #connect: bigint | undefined;
  #first: bigint | undefined;
  #between: bigint | undefined;
  /** @returns connect timeout */
  connectTimeout(): bigint | undefined {
    return this.#connect;
  }
  /**
   * Implements `set-connect-timeout`.
   * @param d - connect timeout
   */
  setConnectTimeout(d: bigint | undefined): void {
    this.#connect = d;
  }
  /** @returns first-byte timeout */
  firstByteTimeout(): bigint | undefined {
    return this.#first;
  }
  /**
   * Implements `set-first-byte-timeout`.
   * @param d - first-byte timeout
   */
  setFirstByteTimeout(d: bigint | undefined): void {
    this.#first = d;
  }
  /** @returns between-bytes timeout */
  betweenBytesTimeout(): bigint | undefined {
    return this.#between;
  }
  /**
   * Implements `set-between-bytes-timeout`.
   * @param d - between-bytes timeout
   */
  setBetweenBytesTimeout(d: bigint | undefined): void {
    this.#between = d;
  }
}

/** `wasi:http/types.incoming-body`: the response body, already in host memory. */
export class IncomingBody {
  readonly #bytes: Uint8Array;
  readonly #ctx: HostContext;
  readonly #now: () => bigint;
  #taken = false;

  /**
   * @param ctx - host context
   * @param bytes - the body
   * @param now - monotonic clock
   */
  constructor(ctx: HostContext, bytes: Uint8Array, now: () => bigint) {
    this.#ctx = ctx;
    this.#bytes = bytes;
    this.#now = now;
  }

  /** @returns a stream over the body (once); its bytes were recorded with the response */
  stream(): InputStream {
    if (this.#taken) throw new HostResultError(undefined);
    this.#taken = true;
    return new InputStream(this.#ctx, -1, bufferSource(this.#bytes), this.#now);
  }

  /**
   * Implements `finish`.
   * @param _body - the body
   * @returns trailers: none
   */
  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** `wasi:http/types.future-trailers`: always ready, no trailers. */
export class FutureTrailers {
  /** @returns a ready pollable */
  subscribe(): Pollable {
    return new Pollable(() => 0n);
  }
  /** @returns `some(ok(ok(none)))` */
  get(): unknown {
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }
}

/** `wasi:http/types.incoming-response`. */
export class IncomingResponse {
  readonly #status: number;
  readonly #headers: Fields;
  readonly #body: IncomingBody;
  #consumed = false;

  /**
   * @param status - status
   * @param headers - headers
   * @param body - body
   */
  constructor(status: number, headers: Fields, body: IncomingBody) {
    this.#status = status;
    this.#headers = headers;
    this.#body = body;
  }
  /** @returns the status */
  status(): number {
    return this.#status;
  }
  /** @returns the headers (immutable) */
  headers(): Fields {
    return this.#headers;
  }
  /** @returns the body (once) */
  consume(): IncomingBody {
    if (this.#consumed) throw new HostResultError(undefined);
    this.#consumed = true;
    return this.#body;
  }
}

/** `wasi:http/types.future-incoming-response`: performs the request when first asked for the response. */
export class FutureIncomingResponse {
  readonly #perform: () => unknown;
  #done = false;

  /** @param perform - produces the `result<incoming-response, error-code>` */
  constructor(perform: () => unknown) {
    this.#perform = perform;
  }
  /** @returns a ready pollable (the host answers synchronously) */
  subscribe(): Pollable {
    return new Pollable(() => 0n);
  }
  /** @returns `some(ok(result))` once, then `some(err)` */
  get(): unknown {
    if (this.#done) return { tag: 'err', val: undefined };
    this.#done = true;
    return { tag: 'ok', val: this.#perform() };
  }
}

function methodName(m: Method): string {
  return m.tag === 'other' ? (m.val ?? 'GET').toUpperCase() : m.tag.toUpperCase();
}

/**
 * Build `wasi:http/types` and `wasi:http/outgoing-handler` for outgoing requests. `handle` crosses the gate
 * as `wasi:http/outgoing-request` with the canonical host and port (and the method in `detail`), refused with
 * `HTTP-request-denied` unless the policy allows it and a network grant covers it. The request is performed
 * by `services.fetch` when the guest first asks the future for the response (after writing the body); that
 * second crossing (`detail` = `response`, `size` = body size) carries the response bytes for the record.
 * The server side (incoming-handler) is not implemented: its resources deny.
 * @param ctx - host context
 * @param services - host services
 * @param grants - network grants
 * @param now - monotonic clock
 * @returns the import objects
 */
export function httpImports(ctx: HostContext, services: HostServices, grants: readonly NetGrant[], now: () => bigint): Record<string, Record<string, unknown>> {
  const ID = ctx.id('wasi:http/outgoing-request');
  const gate = ctx.gate;
  // OutgoingRequest.body() needs the context: carried on a per-container subclass.
  class Request extends OutgoingRequest {
    static ctx = ctx;
    static now = now;
  }
  return {
    'wasi:http/types': {
      Fields,
      OutgoingRequest: Request,
      OutgoingBody,
      RequestOptions,
      IncomingResponse,
      IncomingBody,
      FutureTrailers,
      FutureIncomingResponse,
      httpErrorCode: (): undefined => undefined,
    },
    'wasi:http/outgoing-handler': {
      handle(request: OutgoingRequest, _options?: RequestOptions): FutureIncomingResponse {
        const scheme = request.schemeValue?.tag === 'HTTP' ? 'http' : request.schemeValue?.tag === 'other' ? request.schemeValue.val ?? '' : 'https';
        let target: { host: string; port: number; url: string };
        try {
          if (request.authorityValue === undefined) throw new Error('no authority');
          target = canonicalUrl(`${scheme}://${request.authorityValue}${request.path ?? '/'}`);
        } catch {
          throw new HostResultError({ tag: 'HTTP-request-URI-invalid' });
        }
        const method = methodName(request.methodValue);
        gate.args.host = target.host;
        gate.args.port = target.port;
        gate.args.detail = method;
        ctx.enterOrWasiError(ID, { tag: 'HTTP-request-denied' });
        if (!networkGranted(grants, target.host, target.port)) {
          gate.exit(RESULT_REFUSED);
          throw new HostResultError({ tag: 'HTTP-request-denied' });
        }
        gate.exit(RESULT_OK);
        return new FutureIncomingResponse(() => {
          const body = request.outgoing;
          if (body !== undefined && !body.finished) return { tag: 'err', val: { tag: 'HTTP-protocol-error' } };
          let bytes: Uint8Array | undefined;
          if (body !== undefined && body.size > 0) {
            bytes = new Uint8Array(body.size);
            let at = 0;
            for (const c of body.chunks) {
              bytes.set(c, at);
              at += c.length;
            }
          }
          gate.args.host = target.host;
          gate.args.port = target.port;
          gate.args.size = bytes?.length ?? 0;
          gate.args.detail = 'response';
          if (!gate.enter(ID)) {
            gate.exit(RESULT_REFUSED);
            return { tag: 'err', val: { tag: 'HTTP-request-denied' } };
          }
          let res: HostHttpResponse;
          try {
            res = services.fetch({ method, url: target.url, headers: request.fields.pairs(), body: bytes });
          } catch (cause) {
            gate.exit(RESULT_FAILED);
            return { tag: 'err', val: { tag: 'internal-error', val: isForgeError(cause) ? `${cause.code}: ${cause.message}` : 'the host could not make the request' } };
          }
          gate.exit(RESULT_OK, encodeHttpResponse(res));
          return { tag: 'ok', val: new IncomingResponse(res.status, Fields.frozen(res.headers), new IncomingBody(ctx, res.body, now)) };
        });
      },
    },
  };
}
