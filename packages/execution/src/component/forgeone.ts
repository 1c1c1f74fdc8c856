import { ForgeError, isForgeError } from '@forgeone/common';
import { canonicalHost } from '../gate/canonical.js';
import { HostResultError, RESULT_OK, recordedJson, utf8Length, type HostContext, type HostErrorPayload } from './host.js';
import { GuestMemory, withLowering } from './lower.js';
import type { HostHttpResponse, HostServices, LogLevel } from './services.js';

/** `identity-info` of `forgeone:host/identity`. */
export interface ComponentIdentity {
  /** Who the container runs as. */
  readonly subject: string;
  /** Tenant. */
  readonly tenant: string;
  /** Roles. */
  readonly roles: readonly string[];
  /** Trust level name (`Verified`, ...). */
  readonly trustLevel: string;
}

/** `container-info` of `forgeone:host/info`. */
export interface ComponentInfo {
  /** Container id. */
  readonly containerId: string;
  /** Package name. */
  readonly packageName: string;
  /** Package version. */
  readonly packageVersion: string;
  /** Kernel version. */
  readonly kernelVersion: string;
}

/** What the `forgeone:host` interfaces need. */
export interface ForgeoneHostOptions {
  /** Host services (kv, fetch, log). */
  readonly services: HostServices;
  /** Identity answered by `identity.get`; the call fails with `NOT_FOUND` when absent. */
  readonly identity: ComponentIdentity | undefined;
  /** Container info answered by `info.get`; the call fails with `NOT_FOUND` when absent. */
  readonly info: ComponentInfo | undefined;
  /** Wall clock in ms since the epoch for `time.now`. */
  readonly nowMs: () => number;
  /** Largest kv value accepted, bytes. */
  readonly maxValueBytes: number;
  /** Largest kv key accepted, bytes. */
  readonly maxKeyBytes: number;
  /** Largest log message accepted, bytes. */
  readonly maxLogBytes: number;
}

const FOUND = 1;
const ABSENT = new Uint8Array([0]);
const TRUE = new Uint8Array([1]);
const FALSE = new Uint8Array([0]);
const encoder = new TextEncoder();
/** The `level` enum of `forgeone:host/log` by discriminant. */
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

function invalid(message: string): HostResultError {
  return new HostResultError({ code: 'INVALID_ARGUMENT', message } satisfies HostErrorPayload);
}

interface HttpRequestRecord {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | undefined;
}

/**
 * Encode a response for the record: u32 LE length of a JSON head `{status, headers}`, the head, the body.
 * @param r - the response
 * @returns the bytes
 */
export function encodeHttpResponse(r: HostHttpResponse): Uint8Array {
  const head = encoder.encode(JSON.stringify({ status: r.status, headers: r.headers }));
  const out = new Uint8Array(4 + head.length + r.body.length);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(r.body, 4 + head.length);
  return out;
}

/**
 * Decode a response recorded by {@link encodeHttpResponse}.
 * @param bytes - the recorded bytes
 * @returns the response
 * @throws ForgeError `INVALID_ARGUMENT` when the bytes are not an encoded response
 */
export function decodeHttpResponse(bytes: Uint8Array): HostHttpResponse {
  const bad = (): ForgeError => new ForgeError('INVALID_ARGUMENT', 'the bytes are not a recorded HTTP response');
  if (bytes.length < 4) throw bad();
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + headLength > bytes.length) throw bad();
  let head: { status?: unknown; headers?: unknown };
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headLength))) as typeof head;
  } catch {
    throw bad();
  }
  if (typeof head.status !== 'number' || !Array.isArray(head.headers)) throw bad();
  const headers = (head.headers as unknown[]).map((h): [string, string] => {
    if (!Array.isArray(h) || typeof h[0] !== 'string' || typeof h[1] !== 'string') throw bad();
    return [h[0], h[1]];
  });
  return { status: head.status, headers, body: bytes.slice(4 + headLength) };
}

/**
 * Build the `forgeone:host` interfaces: log, kv, http, identity, info, time (and the type-only `types`).
 * Each function crosses the gate under its syscall (`forgeone:kv/get`, ...) with canonical arguments:
 * kv calls carry the key in `detail` and (set) the value size in `size`; fetch carries host, port, body
 * size and the method in `detail`; log carries the level in `detail` and the message size. Refusals and
 * service failures return `host-error { code, message }`.
 * @param ctx - the host context
 * @param o - services and static values
 * @returns import objects keyed `forgeone:host/<interface>`
 */
export function forgeoneImports(ctx: HostContext, o: ForgeoneHostOptions): Record<string, Record<string, unknown>> {
  const gate = ctx.gate;
  const services = o.services;
  const LOG = ctx.id('forgeone:log/write');
  const KV_GET = ctx.id('forgeone:kv/get');
  const KV_SET = ctx.id('forgeone:kv/set');
  const KV_DELETE = ctx.id('forgeone:kv/delete');
  const KV_LIST = ctx.id('forgeone:kv/list');
  const FETCH = ctx.id('forgeone:http/fetch');
  const IDENTITY = ctx.id('forgeone:identity/get');
  const INFO = ctx.id('forgeone:info/get');
  const TIME = ctx.id('forgeone:time/now');
  const timeBytes = new Uint8Array(8);
  const timeView = new DataView(timeBytes.buffer);

  // What is wrong with a key (or a list prefix), or null. Checked after the gate decided, so a malformed
  // attempt is on record like any other.
  const keyProblem = (key: unknown, asPrefix: boolean): ForgeError | null => {
    if (typeof key !== 'string' || (key.length === 0 && !asPrefix)) return new ForgeError('INVALID_ARGUMENT', 'a key must be a non-empty string');
    if (utf8Length(key) > o.maxKeyBytes) return new ForgeError('INVALID_ARGUMENT', `a key may hold at most ${o.maxKeyBytes} bytes`);
    return null;
  };
  // A kv call carries its key as `detail`, and as `path` (`/` + key) when the key is canonical, so policies
  // can scope keys with path globs; a key shaped like an escape (`/etc/passwd`, `../x`, `a//b`) carries no
  // path, matches no path-scoped rule, and is refused even when the policy allows it (see kvKeyPath). A key
  // that is not a string or is too long carries neither; the call crosses the gate and then fails with
  // INVALID_ARGUMENT (or with `problem`, the caller's own check).
  const enterKv = (id: number, key: string, asPrefix: boolean, problem: ForgeError | null = null): void => {
    let bad = keyProblem(key, asPrefix);
    if (bad === null) {
      const path = kvKeyPath(key, asPrefix);
      gate.args.detail = key;
      if (path !== null) gate.args.path = path;
      else bad = new ForgeError('INVALID_ARGUMENT', `${JSON.stringify(key.slice(0, 64))} is not a key: keys are relative names of non-empty /-separated segments, none of them . or .., without control characters or backslashes`);
    }
    bad ??= problem;
    ctx.enterOrHostError(id);
    if (bad !== null) ctx.serviceFailed(bad);
  };

  // The bodies shared by the JS-level and the core-level forms of the hot calls.
  const logWrite = (level: LogLevel, message: string, size: number): void => {
    gate.args.detail = level;
    gate.args.size = size;
    ctx.enterOrHostError(LOG);
    // Over the limit: refused after the gate, so the attempt (and its size) is on record.
    if (size > o.maxLogBytes) ctx.serviceFailed(new ForgeError('LIMIT_EXCEEDED', `a log message may hold at most ${o.maxLogBytes} bytes`));
    try {
      services.log(level, message);
    } catch (cause) {
      ctx.serviceFailed(cause);
    }
    gate.exit(RESULT_OK);
  };
  // Milliseconds since the epoch, recorded as a little-endian u64.
  const timeNow = (): number => {
    ctx.enterOrHostError(TIME);
    const ms = Math.floor(o.nowMs());
    timeView.setUint32(0, ms >>> 0, true);
    timeView.setUint32(4, Math.floor(ms / 0x1_0000_0000), true);
    gate.exit(RESULT_OK, timeBytes);
    return ms;
  };

  return {
    'forgeone:host/types': {},
    'forgeone:host/log': {
      write: withLowering(
        (level: string, message: string): void => {
          // jco lifts the enum to one of these constants (an invalid discriminant traps before this point);
          // the check is for callers that are not a transpiled component.
          if (level !== 'info' && level !== 'debug' && level !== 'warn' && level !== 'error') throw invalid(`unknown log level ${JSON.stringify(level)}`);
          logWrite(level, message, utf8Length(message));
        },
        // Core level (jco's hybrid bindings): the level is the enum's index, the message is copied out of
        // guest memory once, and its size is its length in bytes — no lifting, no recount.
        (options) => {
          const mem = new GuestMemory(options);
          return (level: number, ptr: number, len: number, retptr: number): void => {
            const name = LEVELS[level];
            if (name === undefined) throw new TypeError('invalid discriminant specified for Level');
            const message = mem.string(ptr, len);
            try {
              logWrite(name, message, mem.utf16 ? utf8Length(message) : len >>> 0);
            } catch (cause) {
              mem.failed(cause, retptr, 4);
              return;
            }
            const at = retptr >>> 0;
            mem.check(at, 1);
            mem.u8[at] = 0;
          };
        },
      ),
    },
    'forgeone:host/kv': {
      get(key: string): Uint8Array | undefined {
        enterKv(KV_GET, key, false);
        let value: Uint8Array | undefined;
        try {
          value = services.kvGet(key);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        if (value === undefined) {
          gate.exit(RESULT_OK, ABSENT);
          return undefined;
        }
        // Record: 1 then the value (0 alone means absent), so replay can answer either way.
        const rec = new Uint8Array(1 + value.length);
        rec[0] = FOUND;
        rec.set(value, 1);
        gate.exit(RESULT_OK, rec);
        return value;
      },
      set(key: string, value: Uint8Array): void {
        gate.args.size = value.length;
        enterKv(KV_SET, key, false, value.length > o.maxValueBytes ? new ForgeError('LIMIT_EXCEEDED', `a value may hold at most ${o.maxValueBytes} bytes`) : null);
        try {
          services.kvSet(key, value);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK);
      },
      delete(key: string): boolean {
        enterKv(KV_DELETE, key, false);
        let existed = false;
        try {
          existed = services.kvDelete(key);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK, existed ? TRUE : FALSE);
        return existed;
      },
      list(prefix: string): string[] {
        enterKv(KV_LIST, prefix, true);
        let keys: string[] = [];
        try {
          keys = services.kvList(prefix);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK, encoder.encode(JSON.stringify(keys)));
        return keys;
      },
    },
    'forgeone:host/http': {
      fetch(req: HttpRequestRecord): { status: number; headers: [string, string][]; body: Uint8Array } {
        const target = fetchTarget(req.url);
        const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
        const methodOk = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/.test(method);
        // Every fetch crosses the gate with what canonical arguments it has: a URL of another scheme carries
        // no host or port (so no host-scoped rule allows it), and is refused after the gate anyway, as are a
        // URL with credentials (the gate saw the real host, the one after the `@`), a malformed URL (no
        // scheme) and a malformed method (`-` in the detail).
        if (target.host !== null) {
          gate.args.host = target.host;
          gate.args.port = target.port;
        }
        gate.args.size = req.body?.length ?? 0;
        gate.args.detail = `${methodOk ? method : '-'} ${target.scheme}`;
        ctx.enterOrHostError(FETCH);
        if (target.refusal !== null) ctx.serviceFailed(new ForgeError('INVALID_ARGUMENT', target.refusal));
        if (!methodOk) ctx.serviceFailed(new ForgeError('INVALID_ARGUMENT', `bad method ${JSON.stringify(String(req.method).slice(0, 64))}`));
        let res: HostHttpResponse;
        try {
          res = services.fetch({ method, url: target.url, headers: req.headers, body: req.body });
          if (!Number.isInteger(res.status) || res.status < 100 || res.status > 999) throw new ForgeError('IO_ERROR', `bad status ${res.status}`);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK, encodeHttpResponse(res));
        return { status: res.status, headers: res.headers.map(([k, v]) => [k, v]), body: res.body };
      },
    },
    'forgeone:host/identity': {
      get(): { subject: string; tenant: string; roles: string[]; trustLevel: string } {
        ctx.enterOrHostError(IDENTITY);
        // The answer is recorded (as JSON) so a replay gives the guest the same identity.
        const id = recordedJson<ComponentIdentity>(ctx) ?? o.identity;
        if (id === undefined) ctx.serviceFailed(new ForgeError('NOT_FOUND', 'no identity was given to this container'));
        const value = { subject: String(id.subject), tenant: String(id.tenant), roles: Array.from(id.roles, String), trustLevel: String(id.trustLevel) };
        gate.exit(RESULT_OK, encoder.encode(JSON.stringify(value)));
        return value;
      },
    },
    'forgeone:host/info': {
      get(): { containerId: string; packageName: string; packageVersion: string; kernelVersion: string } {
        ctx.enterOrHostError(INFO);
        const info = recordedJson<ComponentInfo>(ctx) ?? o.info;
        if (info === undefined) ctx.serviceFailed(new ForgeError('NOT_FOUND', 'no container info was given to this container'));
        const value = { containerId: String(info.containerId), packageName: String(info.packageName), packageVersion: String(info.packageVersion), kernelVersion: String(info.kernelVersion) };
        gate.exit(RESULT_OK, encoder.encode(JSON.stringify(value)));
        return value;
      },
    },
    'forgeone:host/time': {
      now: withLowering(
        (): bigint => BigInt(timeNow()),
        // Core level: the u64 is written as two 32-bit halves (no BigInt on the way).
        (options) => {
          const mem = new GuestMemory(options);
          return (retptr: number): void => {
            let ms: number;
            try {
              ms = timeNow();
            } catch (cause) {
              mem.failed(cause, retptr, 8);
              return;
            }
            const at = retptr >>> 0;
            mem.check(at, 16);
            const v = mem.view;
            v.setUint8(at, 0);
            v.setUint32(at + 8, ms >>> 0, true);
            v.setUint32(at + 12, Math.floor(ms / 0x1_0000_0000), true);
          };
        },
      ),
    },
  };
}

/**
 * The policy path of a kv key: `/` + the key when it is canonical — non-empty `/`-separated segments, none
 * `.` or `..`, no control characters or backslashes (for a prefix, a trailing `/` is allowed and dropped,
 * and the empty prefix is `/`) — otherwise null.
 * @param key - the guest's key or prefix
 * @param asPrefix - whether it is a `list` prefix
 * @returns the path, or null for a key that is not canonical
 */
export function kvKeyPath(key: string, asPrefix: boolean): string | null {
  let k = key;
  if (asPrefix) {
    if (k === '') return '/';
    if (k.endsWith('/')) k = k.slice(0, -1);
  }
  // eslint-disable-next-line no-control-regex
  if (k === '' || /[\u0000-\u001f\u007f\\]/.test(k)) return null;
  for (const seg of k.split('/')) if (seg === '' || seg === '.' || seg === '..') return null;
  return `/${k}`;
}

interface FetchTarget {
  /** `http`, `https`, or the other scheme. */
  readonly scheme: string;
  /** Canonical host, or null for a scheme without one the host fetches. */
  readonly host: string | null;
  /** Port (explicit or the scheme's default), 0 when `host` is null. */
  readonly port: number;
  /** The URL as parsed. */
  readonly url: string;
  /** Why the call is refused even if the policy allows it, or null. */
  readonly refusal: string | null;
}

// A malformed URL or host is a refusal too (decided after the gate, like the others), not a throw.
function fetchTarget(url: unknown): FetchTarget {
  const malformed = (refusal: string): FetchTarget => ({ scheme: '', host: null, port: 0, url: '', refusal });
  if (typeof url !== 'string') return malformed('the URL must be a string');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return malformed(`not a URL: ${JSON.stringify(url.slice(0, 128))}`);
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https') return { scheme, host: null, port: 0, url: u.href, refusal: `only http and https URLs can be fetched, not ${scheme}:` };
  let host: string;
  try {
    host = canonicalHost(u.hostname);
  } catch (cause) {
    return { scheme, host: null, port: 0, url: '', refusal: isForgeError(cause) ? cause.message : 'bad host' };
  }
  const port = u.port === '' ? (scheme === 'https' ? 443 : 80) : Number(u.port);
  const refusal = u.username !== '' || u.password !== '' ? 'credentials in URLs are not allowed' : null;
  return { scheme, host, port, url: u.href, refusal };
}
