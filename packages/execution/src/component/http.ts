import { isForgeError } from '@forgeone/common';
import type { NetGrant } from '../capabilities.js';
import { canonicalHost, canonicalUrl } from '../gate/canonical.js';
import { encodeHttpResponse } from './forgeone.js';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, refusalBytes, type HostContext } from './host.js';
import { DISPOSE, InputStream, OutputStream, Pollable, bufferSource, enterErrorInspection, gateDrop } from './io.js';
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

/** Interned ids of the syscalls of the guest's own HTTP objects (one set per container). */
interface LocalIds {
  /** `wasi:http/request-local`: outgoing requests, their bodies and request options. */
  readonly request: number;
  /** `wasi:http/response-local`: responses already received, their bodies, the futures' answers. */
  readonly response: number;
}

const localIdsOf = new WeakMap<HostContext, LocalIds>();

/** The ids of `wasi:http/request-local` and `response-local` for a container, interned on first use. */
function localIds(ctx: HostContext): LocalIds {
  let ids = localIdsOf.get(ctx);
  if (ids === undefined) {
    ids = Object.freeze({ request: ctx.id('wasi:http/request-local'), response: ctx.id('wasi:http/response-local') });
    localIdsOf.set(ctx, ids);
  }
  return ids;
}

/**
 * Enter the gate for a function of the guest's own HTTP objects that has no error case: `detail` = the
 * function; refused, the call traps with the refusal code. The caller closes the call.
 */
function localOrTrap(ctx: HostContext, id: number, fn: string): void {
  ctx.gate.args.detail = fn;
  ctx.enterOrTrap(id);
}

/**
 * Enter the gate for a function of the guest's own HTTP objects with an error case: `detail` = the
 * function; refused, the call returns `errorCase`. The caller closes the call.
 */
function localOrError(ctx: HostContext, id: number, fn: string, errorCase: unknown): void {
  ctx.gate.args.detail = fn;
  ctx.enterOrWasiError(id, errorCase);
}

/** After the gate allowed a local function: record it as failed and return the error case. */
function localFailed(ctx: HostContext, errorCase: unknown): never {
  ctx.gate.exit(RESULT_FAILED);
  throw new HostResultError(errorCase);
}

/** The `error-code` a refused future returns: `some(ok(err(HTTP-request-denied)))`. */
const FUTURE_DENIED = Object.freeze({ tag: 'ok', val: Object.freeze({ tag: 'err', val: Object.freeze({ tag: 'HTTP-request-denied' }) }) });
/** `error-code.HTTP-request-denied`. */
const REQUEST_DENIED = Object.freeze({ tag: 'HTTP-request-denied' });

const METHOD_DETAILS = new Map<string, string>();

/** `set-method:<METHOD>` for a valid method (one string per method), else `set-method`. */
function setMethodDetail(m: Method): string {
  const name = m.tag === 'other' ? (typeof m.val === 'string' && TOKEN.test(m.val) ? m.val.toUpperCase() : undefined) : m.tag.toUpperCase();
  if (name === undefined || !TOKEN.test(name)) return 'set-method';
  let d = METHOD_DETAILS.get(name);
  if (d === undefined) {
    d = `set-method:${name}`;
    if (METHOD_DETAILS.size < 64) METHOD_DETAILS.set(name, d);
  }
  return d;
}

const SCHEME_NAME = /^[a-z][a-z0-9+.-]{0,31}$/;

/** `set-scheme:<scheme>` (lowercase), `set-scheme` when none or malformed. */
function setSchemeDetail(s: Scheme | undefined): string {
  if (s === undefined) return 'set-scheme';
  if (s.tag === 'HTTP') return 'set-scheme:http';
  if (s.tag === 'HTTPS') return 'set-scheme:https';
  const v = typeof s.val === 'string' ? s.val.toLowerCase() : '';
  return SCHEME_NAME.test(v) ? `set-scheme:${v}` : 'set-scheme';
}

/**
 * The canonical host and port of an authority (`host`, `host:port`, `[v6]:port`), for the record; parts
 * that do not parse are left undefined (the authority is checked for real when the request is handled).
 */
function authorityTarget(a: string | undefined): { host: string | undefined; port: number | undefined } {
  if (a === undefined || a === '') return { host: undefined, port: undefined };
  let host = a;
  let port: number | undefined;
  const close = a.lastIndexOf(']');
  const colon = a.lastIndexOf(':');
  if (colon > close && (a.startsWith('[') || a.indexOf(':') === colon)) {
    host = a.slice(0, colon);
    const p = Number(a.slice(colon + 1));
    port = Number.isInteger(p) && p >= 0 && p <= 65535 && colon + 1 < a.length ? p : undefined;
  }
  try {
    return { host: canonicalHost(host), port };
  } catch {
    return { host: undefined, port };
  }
}

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

/**
 * `wasi:http/types.outgoing-body`: collects the request body in host memory. `write` and `finish` cross the
 * gate as `wasi:http/request-local` (`detail` = the function), and so does each write of its stream
 * (`detail` `body-write`, `size` = the bytes); refused, they return their error case.
 */
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
  readonly #id: number;

  /**
   * @param ctx - host context
   * @param now - monotonic clock
   */
  constructor(ctx: HostContext, now: () => bigint) {
    this.#ctx = ctx;
    this.#now = now;
    this.#id = localIds(ctx).request;
  }

  /**
   * Implements `write`.
   * @returns the stream the body is written to (once)
   * @throws HostResultError (unit error) when refused or asked twice
   */
  write(): OutputStream {
    const ctx = this.#ctx;
    localOrError(ctx, this.#id, 'write', undefined);
    if (this.#stream !== undefined) localFailed(ctx, undefined);
    // Writes go to host memory, each crossing the gate as `request-local` (`body-write`, with its size); the
    // request as a whole crosses it in `handle` (the stream's bookkeeping with the label `outgoing-body-stream`).
    this.#stream = new OutputStream(ctx, this.#id, (bytes) => {
      if (this.finished) throw new Error('body finished');
      if (this.size + bytes.length > MAX_HTTP_BODY) throw new Error('body too large');
      this.chunks.push(bytes.slice());
      this.size += bytes.length;
    }, this.#now, 'body-write', undefined, 'outgoing-body-stream');
    ctx.gate.exit(RESULT_OK);
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
   * @throws HostResultError `HTTP-request-denied` when the gate refuses
   */
  static finish(body: OutgoingBody, _trailers?: Fields): void {
    localOrError(body.#ctx, body.#id, 'finish', REQUEST_DENIED);
    body.finished = true;
    body.#ctx.gate.exit(RESULT_OK);
  }
}

/**
 * `wasi:http/types.outgoing-request`. Built by a container (its import object's class passes the context),
 * the constructor and every accessor and setter cross the gate as `wasi:http/request-local` with `detail` =
 * the function (`new-outgoing-request`, `method`, `set-method:<METHOD>`, `path-with-query`,
 * `set-path-with-query`, `scheme`, `set-scheme:<scheme>`, `authority`, `set-authority` — with the
 * authority's canonical host and port —, `headers`, `body`); refused, a function with an error case returns
 * it, the others trap with the refusal code. Nothing leaves the guest here: `handle` is the egress. Its drop
 * crosses the gate as `wasi:io/drop` (`outgoing-request`).
 */
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
  readonly #id: number;

  /**
   * @param headers - the request headers (become immutable)
   * @param ctx - the container (the import object's class passes it); without one there is no body and
   *   nothing is gated
   * @param now - monotonic clock
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  constructor(headers: Fields, ctx?: HostContext, now?: () => bigint) {
    this.#id = ctx === undefined ? -1 : localIds(ctx).request;
    if (ctx !== undefined) localOrTrap(ctx, this.#id, 'new-outgoing-request');
    this.fields = headers.freeze();
    this.#ctx = ctx;
    this.#now = now;
    ctx?.gate.exit(RESULT_OK);
  }

  /** Enter a function without an error case (a trap when refused); false for a host-side request. */
  #trap(fn: string): boolean {
    if (this.#ctx === undefined) return false;
    localOrTrap(this.#ctx, this.#id, fn);
    return true;
  }

  /** Enter a function whose error case is the unit error; false for a host-side request. */
  #orError(fn: string): boolean {
    if (this.#ctx === undefined) return false;
    localOrError(this.#ctx, this.#id, fn, undefined);
    return true;
  }

  /** Close a call entered with {@link OutgoingRequest.#trap} or {@link OutgoingRequest.#orError}. */
  #ok(gated: boolean): void {
    if (gated) this.#ctx!.gate.exit(RESULT_OK);
  }

  /** Fail a call (recorded as failed when gated) with the unit error. */
  #fail(gated: boolean): never {
    if (gated) this.#ctx!.gate.exit(RESULT_FAILED);
    throw new HostResultError(undefined);
  }

  /**
   * Implements `body`.
   * @returns the body (once)
   * @throws HostResultError (unit error) when refused or asked twice
   */
  body(): OutgoingBody {
    const gated = this.#orError('body');
    if (this.outgoing !== undefined || this.#ctx === undefined || this.#now === undefined) this.#fail(gated);
    this.outgoing = new OutgoingBody(this.#ctx, this.#now);
    this.#ok(gated);
    return this.outgoing;
  }

  /** The guest dropped the request: crosses the gate as `wasi:io/drop`; the garbage collector frees it. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'outgoing-request');
  }

  /**
   * Implements `method`.
   * @returns the method
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  method(): Method {
    this.#ok(this.#trap('method'));
    return this.methodValue;
  }

  /**
   * Implements `set-method`.
   * @param m - the method
   * @throws HostResultError (unit error) when refused or malformed
   */
  setMethod(m: Method): void {
    const gated = this.#orError(this.#ctx === undefined ? 'set-method' : setMethodDetail(m));
    if (m.tag === 'other' && (typeof m.val !== 'string' || !TOKEN.test(m.val))) this.#fail(gated);
    this.methodValue = m;
    this.#ok(gated);
  }

  /**
   * Implements `path-with-query`.
   * @returns path and query
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  pathWithQuery(): string | undefined {
    this.#ok(this.#trap('path-with-query'));
    return this.path;
  }

  /**
   * Implements `set-path-with-query`.
   * @param p - path and query
   * @throws HostResultError (unit error) when refused or malformed
   */
  setPathWithQuery(p: string | undefined): void {
    const gated = this.#orError('set-path-with-query');
    if (p !== undefined && (/[\s#]/.test(p) || (!p.startsWith('/') && p !== '*'))) this.#fail(gated);
    this.path = p;
    this.#ok(gated);
  }

  /**
   * Implements `scheme`.
   * @returns the scheme
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  scheme(): Scheme | undefined {
    this.#ok(this.#trap('scheme'));
    return this.schemeValue;
  }

  /**
   * Implements `set-scheme`.
   * @param s - the scheme
   * @throws HostResultError (unit error) when refused
   */
  setScheme(s: Scheme | undefined): void {
    const gated = this.#orError(this.#ctx === undefined ? 'set-scheme' : setSchemeDetail(s));
    this.schemeValue = s;
    this.#ok(gated);
  }

  /**
   * Implements `authority`.
   * @returns the authority
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  authority(): string | undefined {
    this.#ok(this.#trap('authority'));
    return this.authorityValue;
  }

  /**
   * Implements `set-authority`: crosses the gate with the authority's canonical host and port (when they
   * parse).
   * @param a - the authority
   * @throws HostResultError (unit error) when refused or malformed
   */
  setAuthority(a: string | undefined): void {
    const bad = a !== undefined && /[\s/@?#]/.test(a);
    if (this.#ctx !== undefined && !bad) {
      const t = authorityTarget(a);
      this.#ctx.gate.args.host = t.host;
      this.#ctx.gate.args.port = t.port;
    }
    const gated = this.#orError('set-authority');
    if (bad) this.#fail(gated);
    this.authorityValue = a;
    this.#ok(gated);
  }

  /**
   * Implements `headers`.
   * @returns the headers (immutable)
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  headers(): Fields {
    this.#ok(this.#trap('headers'));
    return this.fields;
  }
}

/**
 * `wasi:http/types.request-options`: accepted, not enforced (the host services own timeouts). Built by a
 * container, the constructor, getters and setters cross the gate as `wasi:http/request-local` with
 * `detail` = the function (`new-request-options`, `connect-timeout`, `set-connect-timeout`, ...): refused,
 * the getters and the constructor trap, the setters return their (unit) error. Its drop crosses the gate as
 * `wasi:io/drop` (`request-options`).
 */
export class RequestOptions {
  #connect: bigint | undefined;
  #first: bigint | undefined;
  #between: bigint | undefined;
  readonly #ctx: HostContext | undefined;
  readonly #id: number;

  /**
   * @param ctx - the container (the import object's class passes it); none: nothing is gated
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  constructor(ctx?: HostContext) {
    this.#ctx = ctx;
    this.#id = ctx === undefined ? -1 : localIds(ctx).request;
    this.#get('new-request-options');
  }

  /** Cross the gate for a getter (a trap when refused). */
  #get(fn: string): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    localOrTrap(ctx, this.#id, fn);
    ctx.gate.exit(RESULT_OK);
  }

  /** Cross the gate for a setter (the unit error when refused). */
  #set(fn: string): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    localOrError(ctx, this.#id, fn, undefined);
    ctx.gate.exit(RESULT_OK);
  }

  /** The guest dropped the options: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'request-options');
  }

  /**
   * Implements `connect-timeout`.
   * @returns connect timeout
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  connectTimeout(): bigint | undefined {
    this.#get('connect-timeout');
    return this.#connect;
  }
  /**
   * Implements `set-connect-timeout`.
   * @param d - connect timeout
   * @throws HostResultError (unit error) when the gate refuses
   */
  setConnectTimeout(d: bigint | undefined): void {
    this.#set('set-connect-timeout');
    this.#connect = d;
  }
  /**
   * Implements `first-byte-timeout`.
   * @returns first-byte timeout
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  firstByteTimeout(): bigint | undefined {
    this.#get('first-byte-timeout');
    return this.#first;
  }
  /**
   * Implements `set-first-byte-timeout`.
   * @param d - first-byte timeout
   * @throws HostResultError (unit error) when the gate refuses
   */
  setFirstByteTimeout(d: bigint | undefined): void {
    this.#set('set-first-byte-timeout');
    this.#first = d;
  }
  /**
   * Implements `between-bytes-timeout`.
   * @returns between-bytes timeout
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  betweenBytesTimeout(): bigint | undefined {
    this.#get('between-bytes-timeout');
    return this.#between;
  }
  /**
   * Implements `set-between-bytes-timeout`.
   * @param d - between-bytes timeout
   * @throws HostResultError (unit error) when the gate refuses
   */
  setBetweenBytesTimeout(d: bigint | undefined): void {
    this.#set('set-between-bytes-timeout');
    this.#between = d;
  }
}

/** What a response body's stream records: nothing of the bytes (they are in the response's record). */
const RECOMPUTED = Object.freeze({ recomputed: true });

/**
 * `wasi:http/types.incoming-body`: the response body, already in host memory (and in the record, with the
 * response). `stream` and `finish` cross the gate as `wasi:http/response-local` (`detail` = the function),
 * and so does each read of the stream (`detail` `body-read`, `size` = the bytes asked for; the bytes are not
 * recorded again): refused, `stream` and reads return their error case, `finish` traps.
 */
export class IncomingBody {
  readonly #bytes: Uint8Array;
  readonly #ctx: HostContext;
  readonly #now: () => bigint;
  readonly #id: number;
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
    this.#id = localIds(ctx).response;
  }

  /**
   * Implements `stream`.
   * @returns a stream over the body (once); its bytes were recorded with the response
   * @throws HostResultError (unit error) when refused or asked twice
   */
  stream(): InputStream {
    const ctx = this.#ctx;
    localOrError(ctx, this.#id, 'stream', undefined);
    if (this.#taken) localFailed(ctx, undefined);
    this.#taken = true;
    ctx.gate.exit(RESULT_OK);
    return new InputStream(ctx, this.#id, bufferSource(this.#bytes), this.#now, 'body-read', undefined, 'incoming-body-stream', RECOMPUTED);
  }

  /**
   * Implements `finish`.
   * @param body - the body
   * @returns trailers: none
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  static finish(body: IncomingBody): FutureTrailers {
    localOrTrap(body.#ctx, body.#id, 'finish');
    body.#ctx.gate.exit(RESULT_OK);
    return new FutureTrailers(body.#ctx);
  }

  /** The guest dropped the body: crosses the gate as `wasi:io/drop` (`incoming-body`); nothing to free. */
  [DISPOSE](): void {
    gateDrop(this.#ctx, 'incoming-body');
  }
}

/**
 * `wasi:http/types.future-trailers`: always ready, no trailers. When built with a host context, `get`
 * crosses the gate as `wasi:http/response-local` (`detail` `future-trailers.get`; refused, it answers
 * `HTTP-request-denied`), `subscribe` and the drop as `wasi:io/subscribe` and `wasi:io/drop`.
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
  /**
   * Implements `get`.
   * @returns `some(ok(ok(none)))`; refused, `some(ok(err(HTTP-request-denied)))`
   */
  get(): unknown {
    const ctx = this.#ctx;
    if (ctx !== undefined) {
      ctx.gate.args.detail = 'future-trailers.get';
      if (!ctx.gate.enter(localIds(ctx).response)) {
        ctx.gate.exit(RESULT_REFUSED, refusalBytes(ctx.refusalCode()));
        return FUTURE_DENIED;
      }
      ctx.gate.exit(RESULT_OK);
    }
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }

  /** The guest dropped the future: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'future-trailers');
  }
}

/**
 * `wasi:http/types.incoming-response`, received and recorded as a whole by the future's `get`. Built with a
 * host context, `status`, `headers` and `consume` cross the gate as `wasi:http/response-local` (`detail` =
 * the function; their answers are recomputed from the recorded response, nothing more is recorded):
 * refused, `consume` returns its error, the others trap. Its drop crosses the gate as `wasi:io/drop`
 * (`incoming-response`).
 */
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

  /**
   * Implements `status`.
   * @returns the status
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  status(): number {
    const ctx = this.#ctx;
    if (ctx !== undefined) {
      localOrTrap(ctx, localIds(ctx).response, 'status');
      ctx.gate.exit(RESULT_OK);
    }
    return this.#status;
  }
  /**
   * Implements `headers`.
   * @returns the headers (immutable)
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  headers(): Fields {
    const ctx = this.#ctx;
    if (ctx !== undefined) {
      localOrTrap(ctx, localIds(ctx).response, 'headers');
      ctx.gate.exit(RESULT_OK);
    }
    return this.#headers;
  }
  /**
   * Implements `consume`.
   * @returns the body (once)
   * @throws HostResultError (unit error) when refused or asked twice
   */
  consume(): IncomingBody {
    const ctx = this.#ctx;
    if (ctx !== undefined) localOrError(ctx, localIds(ctx).response, 'consume', undefined);
    if (this.#consumed) {
      if (ctx !== undefined) localFailed(ctx, undefined);
      throw new HostResultError(undefined);
    }
    this.#consumed = true;
    ctx?.gate.exit(RESULT_OK);
    return this.#body;
  }
}

/**
 * `wasi:http/types.future-incoming-response`: performs the request when first asked for the response.
 * `get` crosses the gate once: the first time as the request itself (`wasi:http/outgoing-request`,
 * `detail` `response`, its answer recorded), otherwise — asked again, or nothing to send — as
 * `wasi:http/response-local` (`detail` `future-incoming-response.get`; refused, it answers
 * `HTTP-request-denied`). `subscribe` and the drop cross the gate (`wasi:io/subscribe`, `wasi:io/drop`)
 * when built with a host context.
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

  /**
   * Implements `get`.
   * @returns `some(ok(result))` once, then `some(err)`; refused, `some(ok(err(HTTP-request-denied)))`
   */
  get(): unknown {
    if (this.#done) {
      const ctx = this.#ctx;
      if (ctx !== undefined && !enterFutureGet(ctx)) return FUTURE_DENIED;
      ctx?.gate.exit(RESULT_FAILED);
      return { tag: 'err', val: undefined };
    }
    this.#done = true;
    return { tag: 'ok', val: this.#perform() };
  }
}

/**
 * Enter `future-incoming-response.get` as `wasi:http/response-local` (a `get` that sends nothing).
 * @returns false when refused (recorded)
 */
function enterFutureGet(ctx: HostContext): boolean {
  ctx.gate.args.detail = 'future-incoming-response.get';
  if (ctx.gate.enter(localIds(ctx).response)) return true;
  ctx.gate.exit(RESULT_REFUSED, refusalBytes(ctx.refusalCode()));
  return false;
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
      // Inspecting an error crosses the gate as `wasi:io/error`: these errors never carry an HTTP code.
      httpErrorCode(_err: unknown): undefined {
        enterErrorInspection(ctx, 'http-error-code');
        gate.exit(RESULT_OK);
        return undefined;
      },
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
          if (body !== undefined && !body.finished) {
            // Nothing is sent: the call crosses the gate as the local `get` it is.
            if (!enterFutureGet(ctx)) return FUTURE_DENIED.val;
            gate.exit(RESULT_FAILED);
            return { tag: 'err', val: { tag: 'HTTP-protocol-error' } };
          }
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
