import { isForgeError } from '@forgeone/common';
import type { NetGrant } from '../capabilities.js';
import { canonicalUrl } from '../gate/canonical.js';
import { encodeHttpResponse } from './forgeone.js';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, refusalBytes, type HostContext } from './host.js';
import { DISPOSE, InputStream, OutputStream, Pollable, bufferSource, gateDrop } from './io.js';
import type { HostHttpResponse, HostServices } from './services.js';
import { networkGranted, subscribeResource } from './wasi.js';

/** Largest outgoing request body, bytes. */
export const MAX_HTTP_BODY = 16 * 1024 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `wasi:http/types.method`: `{ tag: 'get' }`, ..., or `{ tag: 'other', val }`. */
export type Method = { tag: string; val?: string };
/** `wasi:http/types.scheme`. */
export type Scheme = { tag: 'HTTP' | 'HTTPS' | 'other'; val?: string };

/** Interned ids of the `wasi:http/fields-*` syscalls (one set per container). */
export interface FieldsIds {
  /** `[constructor]fields`. */
  readonly create: number;
  /** `[static]fields.from-list`. */
  readonly fromList: number;
  /** `get`. */
  readonly get: number;
  /** `has`. */
  readonly has: number;
  /** `set`. */
  readonly set: number;
  /** `append`. */
  readonly append: number;
  /** `delete`. */
  readonly delete: number;
  /** `entries`. */
  readonly entries: number;
  /** `clone`. */
  readonly clone: number;
}

/** The container a {@link Fields} belongs to: whose gate its functions cross, and how it makes siblings. */
export interface FieldsHost {
  /** The host context. */
  readonly ctx: HostContext;
  /** The syscall ids. */
  readonly ids: FieldsIds;
  /**
   * Make empty fields of the container's own class, without crossing the gate (host-made fields).
   * @returns new mutable fields
   */
  make(): Fields;
}

/** `header-error.forbidden`: what a refused `fields` call with an error case returns. */
const FORBIDDEN = Object.freeze({ tag: 'forbidden' });
const INVALID_SYNTAX = Object.freeze({ tag: 'invalid-syntax' });
const IMMUTABLE = Object.freeze({ tag: 'immutable' });

function validValue(value: Uint8Array): boolean {
  return !(value.includes(0x0a) || value.includes(0x0d) || value.includes(0));
}

/**
 * `wasi:http/types.fields`: header names and values, immutable once attached to a request or response.
 * Built by a container's import object ({@link httpImports}), every function the guest calls crosses the gate
 * as `wasi:http/fields-<function>` (`fields-new` for the constructor, `fields-from-list`, `fields-get`,
 * `fields-has`, `fields-set`, `fields-append`, `fields-delete`, `fields-entries`, `fields-clone`) with the
 * header name lowercased as `detail` (none when it is not a valid name: it has no canonical form) and the
 * values' byte length as `size` (the entry count for `from-list`); the drop crosses as `wasi:io/drop`
 * (`fields`). A refusal returns `header-error.forbidden` where the function has an error case, and traps
 * with the refusal code where it has none (constructor, `get`, `has`, `entries`, `clone`).
 */
export class Fields {
  readonly #list: [string, Uint8Array][] = [];
  #immutable = false;
  readonly #host: FieldsHost | undefined;

  /**
   * Implements `[constructor]fields` (through the container's class, which passes its host).
   * @param host - the container (none: host-side fields, nothing gated)
   * @param quiet - made by the host, not by the guest: do not cross the gate
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  constructor(host?: FieldsHost, quiet = false) {
    this.#host = host;
    if (host !== undefined && !quiet) {
      host.ctx.enterOrTrap(host.ids.create);
      host.ctx.gate.exit(RESULT_OK);
    }
  }

  /**
   * Implements `from-list` for host-side fields (nothing gated); a container's class gates it.
   * @param entries - name/value pairs
   * @returns new mutable fields
   * @throws HostResultError `invalid-syntax` for a bad name or value
   */
  static fromList(entries: [string, Uint8Array][]): Fields {
    return Fields.fill(new Fields(), entries);
  }

  /**
   * Add entries to fresh fields, checking each (no gate).
   * @param f - the fields
   * @param entries - name/value pairs
   * @returns `f`
   * @throws HostResultError `invalid-syntax` for a bad name or value
   * @internal
   */
  static fill(f: Fields, entries: readonly (readonly [string, Uint8Array])[]): Fields {
    for (const [k, v] of entries) {
      if (!TOKEN.test(k) || !validValue(v)) throw new HostResultError(INVALID_SYNTAX);
      f.#list.push([k.toLowerCase(), v.slice()]);
    }
    return f;
  }

  /**
   * Immutable fields from string pairs (response headers), made without crossing the gate.
   * @param entries - name/value pairs
   * @param host - the container whose class the fields get (so the guest can use them)
   * @returns the fields
   * @internal
   */
  static frozen(entries: readonly (readonly [string, string])[], host?: FieldsHost): Fields {
    const f = host === undefined ? new Fields() : host.make();
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
   * Cross the gate for a call with a header name (`detail`, lowercased) and a size.
   * @returns false when refused (recorded)
   */
  #enter(id: number, name: string | undefined, size: number | undefined): boolean {
    const host = this.#host;
    if (host === undefined) return true;
    const gate = host.ctx.gate;
    gate.args.detail = name !== undefined && TOKEN.test(name) ? name.toLowerCase() : undefined;
    gate.args.size = size;
    if (gate.enter(id)) return true;
    gate.exit(RESULT_REFUSED, refusalBytes(host.ctx.refusalCode()));
    return false;
  }

  /** As {@link Fields.#enter} for a function without an error case: a refusal traps. */
  #enterOrTrap(id: number, name: string | undefined): void {
    if (!this.#enter(id, name, undefined)) throw this.#host!.ctx.refusalError(id);
  }

  #exit(result: number): void {
    this.#host?.ctx.gate.exit(result);
  }

  /**
   * Implements `get`.
   * @param name - header name
   * @returns its values
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  get(name: string): Uint8Array[] {
    this.#enterOrTrap(this.#host?.ids.get ?? -1, name);
    const n = name.toLowerCase();
    const out = this.#list.filter(([k]) => k === n).map(([, v]) => v.slice());
    this.#exit(RESULT_OK);
    return out;
  }

  /**
   * Implements `has`.
   * @param name - header name
   * @returns whether present
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  has(name: string): boolean {
    this.#enterOrTrap(this.#host?.ids.has ?? -1, name);
    const n = name.toLowerCase();
    const found = this.#list.some(([k]) => k === n);
    this.#exit(RESULT_OK);
    return found;
  }

  /**
   * Implements `set`.
   * @param name - header name
   * @param values - replacement values
   * @throws HostResultError `forbidden` when the gate refuses, `invalid-syntax`, `immutable`
   */
  set(name: string, values: Uint8Array[]): void {
    let size = 0;
    for (const v of values) size += v.length;
    if (!this.#enter(this.#host?.ids.set ?? -1, name, size)) throw new HostResultError(FORBIDDEN);
    this.#mutable(name);
    if (!values.every(validValue)) this.#fail(INVALID_SYNTAX);
    this.#remove(name.toLowerCase());
    for (const v of values) this.#list.push([name.toLowerCase(), v.slice()]);
    this.#exit(RESULT_OK);
  }

  /**
   * Implements `delete`.
   * @param name - header name
   * @throws HostResultError `forbidden` when the gate refuses, `invalid-syntax`, `immutable`
   */
  delete(name: string): void {
    if (!this.#enter(this.#host?.ids.delete ?? -1, name, undefined)) throw new HostResultError(FORBIDDEN);
    this.#mutable(name);
    this.#remove(name.toLowerCase());
    this.#exit(RESULT_OK);
  }

  /**
   * Implements `append`.
   * @param name - header name
   * @param value - value
   * @throws HostResultError `forbidden` when the gate refuses, `invalid-syntax`, `immutable`
   */
  append(name: string, value: Uint8Array): void {
    if (!this.#enter(this.#host?.ids.append ?? -1, name, value.length)) throw new HostResultError(FORBIDDEN);
    this.#mutable(name);
    if (!validValue(value)) this.#fail(INVALID_SYNTAX);
    this.#list.push([name.toLowerCase(), value.slice()]);
    this.#exit(RESULT_OK);
  }

  /**
   * Implements `entries`.
   * @returns all pairs
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  entries(): [string, Uint8Array][] {
    this.#enterOrTrap(this.#host?.ids.entries ?? -1, undefined);
    const out = this.#list.map(([k, v]): [string, Uint8Array] => [k, v.slice()]);
    this.#exit(RESULT_OK);
    return out;
  }

  /**
   * Implements `clone`.
   * @returns a mutable copy
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  clone(): Fields {
    this.#enterOrTrap(this.#host?.ids.clone ?? -1, undefined);
    const copy = Fields.fill(this.#host === undefined ? new Fields() : this.#host.make(), this.#list);
    this.#exit(RESULT_OK);
    return copy;
  }

  /** The guest dropped its handle: crosses the gate as `wasi:io/drop` (`fields`); the garbage collector frees the rest. */
  [DISPOSE](): void {
    if (this.#host !== undefined) gateDrop(this.#host.ctx, 'fields');
  }

  /**
   * The pairs as strings, for the host services.
   * @returns name/value pairs
   * @internal
   */
  pairs(): [string, string][] {
    return this.#list.map(([k, v]) => [k, dec.decode(v)]);
  }

  #remove(n: string): void {
    for (let i = this.#list.length - 1; i >= 0; i--) if (this.#list[i]![0] === n) this.#list.splice(i, 1);
  }

  /** After the gate allowed the call: fail it (recorded as failed) with a header error. */
  #fail(error: unknown): never {
    this.#exit(RESULT_FAILED);
    throw new HostResultError(error);
  }

  #mutable(name: string): void {
    if (this.#immutable) this.#fail(IMMUTABLE);
    if (!TOKEN.test(name)) this.#fail(INVALID_SYNTAX);
  }
}

/**
 * The `Fields` class a container's import object hands jco: the constructor and `from-list` cross that
 * container's gate, and every instance (also those the host makes, like response headers) belongs to it.
 * @param ctx - the host context
 * @returns the class and its host
 */
function containerFields(ctx: HostContext): { Class: typeof Fields; host: FieldsHost } {
  const QUIET = Symbol('made by the host');
  const ids: FieldsIds = Object.freeze({
    create: ctx.id('wasi:http/fields-new'),
    fromList: ctx.id('wasi:http/fields-from-list'),
    get: ctx.id('wasi:http/fields-get'),
    has: ctx.id('wasi:http/fields-has'),
    set: ctx.id('wasi:http/fields-set'),
    append: ctx.id('wasi:http/fields-append'),
    delete: ctx.id('wasi:http/fields-delete'),
    entries: ctx.id('wasi:http/fields-entries'),
    clone: ctx.id('wasi:http/fields-clone'),
  });
  const host: FieldsHost = { ctx, ids, make: () => new ContainerFields(QUIET) };
  class ContainerFields extends Fields {
    constructor(quiet?: unknown) {
      super(host, quiet === QUIET);
    }

    static override fromList(entries: [string, Uint8Array][]): Fields {
      const gate = ctx.gate;
      gate.args.size = entries.length;
      ctx.enterOrWasiError(ids.fromList, FORBIDDEN);
      let f: Fields;
      try {
        f = Fields.fill(host.make(), entries);
      } catch (e) {
        gate.exit(RESULT_FAILED);
        throw e;
      }
      gate.exit(RESULT_OK);
      return f;
    }
  }
  return { Class: ContainerFields, host };
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
    // Writes go to host memory; the request as a whole crosses the gate in `handle` (the stream's
    // bookkeeping crosses it with the label `outgoing-body`).
    this.#stream = new OutputStream(this.#ctx, -1, (bytes) => {
      if (this.finished) throw new Error('body finished');
      if (this.size + bytes.length > MAX_HTTP_BODY) throw new Error('body too large');
      this.chunks.push(bytes.slice());
      this.size += bytes.length;
    }, this.#now, undefined, undefined, 'outgoing-body-stream');
    return this.#stream;
  }

  /**
   * The guest dropped the body without finishing it (the request then fails with `HTTP-protocol-error`):
   * crosses the gate as `wasi:io/drop` (`outgoing-body`); the bytes written are freed, refused or not.
   */
  [DISPOSE](): void {
    try {
      gateDrop(this.#ctx, 'outgoing-body');
    } finally {
      this.chunks.length = 0;
      this.size = 0;
    }
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

/** `wasi:http/types.outgoing-request`. Its drop crosses the gate as `wasi:io/drop` (`outgoing-request`). */
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
  readonly #ctx: HostContext | undefined;
  readonly #now: (() => bigint) | undefined;

  /**
   * @param headers - the request headers (become immutable)
   * @param ctx - the container (the import object's class passes it); without one there is no body
   * @param now - monotonic clock
   */
  constructor(headers: Fields, ctx?: HostContext, now?: () => bigint) {
    this.fields = headers.freeze();
    this.#ctx = ctx;
    this.#now = now;
  }

  /** @returns the body (once) */
  body(): OutgoingBody {
    if (this.outgoing !== undefined) throw new HostResultError(undefined);
    if (this.#ctx === undefined || this.#now === undefined) throw new HostResultError(undefined);
    this.outgoing = new OutgoingBody(this.#ctx, this.#now);
    return this.outgoing;
  }

  /** The guest dropped the request: crosses the gate as `wasi:io/drop`; the garbage collector frees it. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'outgoing-request');
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

/**
 * `wasi:http/types.request-options`: accepted, not enforced (the host services own timeouts). Its drop
 * crosses the gate as `wasi:io/drop` (`request-options`).
 */
export class RequestOptions {
  #connect: bigint | undefined;
  #first: bigint | undefined;
  #between: bigint | undefined;
  readonly #ctx: HostContext | undefined;

  /** @param ctx - the container (the import object's class passes it) */
  constructor(ctx?: HostContext) {
    this.#ctx = ctx;
  }

  /** The guest dropped the options: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'request-options');
  }

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
    return new InputStream(this.#ctx, -1, bufferSource(this.#bytes), this.#now, undefined, undefined, 'incoming-body-stream');
  }

  /**
   * Implements `finish`.
   * @param body - the body
   * @returns trailers: none
   */
  static finish(body: IncomingBody): FutureTrailers {
    return new FutureTrailers(body.#ctx);
  }

  /** The guest dropped the body: crosses the gate as `wasi:io/drop` (`incoming-body`); nothing to free. */
  [DISPOSE](): void {
    gateDrop(this.#ctx, 'incoming-body');
  }
}

/**
 * `wasi:http/types.future-trailers`: always ready, no trailers. `subscribe` and the drop cross the gate
 * (`wasi:io/subscribe`, `wasi:io/drop`) when built with a host context.
 */
export class FutureTrailers {
  readonly #ctx: HostContext | undefined;

  /** @param ctx - the container */
  constructor(ctx?: HostContext) {
    this.#ctx = ctx;
  }

  /**
   * Implements `subscribe`.
   * @returns a ready pollable
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return this.#ctx === undefined ? new Pollable(() => 0n) : subscribeResource(this.#ctx, 'future-trailers', () => 0n);
  }
  /** @returns `some(ok(ok(none)))` */
  get(): unknown {
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }

  /** The guest dropped the future: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'future-trailers');
  }
}

/** `wasi:http/types.incoming-response`. Its drop crosses the gate as `wasi:io/drop` (`incoming-response`). */
export class IncomingResponse {
  readonly #status: number;
  readonly #headers: Fields;
  readonly #body: IncomingBody;
  readonly #ctx: HostContext | undefined;
  #consumed = false;

  /**
   * @param status - status
   * @param headers - headers
   * @param body - body
   * @param ctx - the container
   */
  constructor(status: number, headers: Fields, body: IncomingBody, ctx?: HostContext) {
    this.#status = status;
    this.#headers = headers;
    this.#body = body;
    this.#ctx = ctx;
  }

  /** The guest dropped the response: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'incoming-response');
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

/**
 * `wasi:http/types.future-incoming-response`: performs the request when first asked for the response.
 * `subscribe` and the drop cross the gate (`wasi:io/subscribe`, `wasi:io/drop`) when built with a host
 * context.
 */
export class FutureIncomingResponse {
  readonly #perform: () => unknown;
  readonly #ctx: HostContext | undefined;
  #done = false;

  /**
   * @param perform - produces the `result<incoming-response, error-code>`
   * @param ctx - the container
   */
  constructor(perform: () => unknown, ctx?: HostContext) {
    this.#perform = perform;
    this.#ctx = ctx;
  }

  /**
   * Implements `subscribe`.
   * @returns a ready pollable (the host answers synchronously)
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return this.#ctx === undefined ? new Pollable(() => 0n) : subscribeResource(this.#ctx, 'future-incoming-response', () => 0n);
  }

  /** The guest dropped the future (a request not asked for is never performed): `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'future-incoming-response');
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
 * Header maps cross the gate on every function ({@link Fields}); drops of every resource and `subscribe` of
 * the futures cross it as `wasi:io/drop` and `wasi:io/subscribe`. The server side (incoming-handler) is not
 * implemented: its resources deny.
 * @param ctx - host context
 * @param services - host services
 * @param grants - network grants
 * @param now - monotonic clock
 * @returns the import objects
 */
export function httpImports(ctx: HostContext, services: HostServices, grants: readonly NetGrant[], now: () => bigint): Record<string, Record<string, unknown>> {
  const ID = ctx.id('wasi:http/outgoing-request');
  const gate = ctx.gate;
  // The classes the guest constructs need the container: per-container subclasses pass it.
  class Request extends OutgoingRequest {
    constructor(headers: Fields) {
      super(headers, ctx, now);
    }
  }
  class Options extends RequestOptions {
    constructor() {
      super(ctx);
    }
  }
  const fields = containerFields(ctx);
  return {
    'wasi:http/types': {
      Fields: fields.Class,
      OutgoingRequest: Request,
      OutgoingBody,
      RequestOptions: Options,
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
          return { tag: 'ok', val: new IncomingResponse(res.status, Fields.frozen(res.headers, fields.host), new IncomingBody(ctx, res.body, now), ctx) };
        }, ctx);
      },
    },
  };
}
