import { ForgeError, isForgeError } from '@forgeone/common';
import { canonicalUrl } from '../gate/canonical.js';
import { HostResultError, RESULT_OK, utf8Length, type HostContext, type HostErrorPayload } from './host.js';
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

const LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error']);
const FOUND = 1;
const ABSENT = new Uint8Array([0]);
const TRUE = new Uint8Array([1]);
const FALSE = new Uint8Array([0]);
const encoder = new TextEncoder();

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

  const checkKey = (key: string): void => {
    if (typeof key !== 'string' || key.length === 0) throw invalid('a key must be a non-empty string');
    if (utf8Length(key) > o.maxKeyBytes) throw invalid(`a key may hold at most ${o.maxKeyBytes} bytes`);
  };

  return {
    'forgeone:host/types': {},
    'forgeone:host/log': {
      write(level: string, message: string): void {
        if (!LEVELS.has(level)) throw invalid(`unknown log level ${JSON.stringify(level)}`);
        const size = utf8Length(message);
        if (size > o.maxLogBytes) throw new HostResultError({ code: 'LIMIT_EXCEEDED', message: `a log message may hold at most ${o.maxLogBytes} bytes` } satisfies HostErrorPayload);
        gate.args.detail = level;
        gate.args.size = size;
        ctx.enterOrHostError(LOG);
        try {
          services.log(level as LogLevel, message);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK);
      },
    },
    'forgeone:host/kv': {
      get(key: string): Uint8Array | undefined {
        checkKey(key);
        gate.args.detail = key;
        ctx.enterOrHostError(KV_GET);
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
        checkKey(key);
        if (value.length > o.maxValueBytes) throw new HostResultError({ code: 'LIMIT_EXCEEDED', message: `a value may hold at most ${o.maxValueBytes} bytes` } satisfies HostErrorPayload);
        gate.args.detail = key;
        gate.args.size = value.length;
        ctx.enterOrHostError(KV_SET);
        try {
          services.kvSet(key, value);
        } catch (cause) {
          ctx.serviceFailed(cause);
        }
        gate.exit(RESULT_OK);
      },
      delete(key: string): boolean {
        checkKey(key);
        gate.args.detail = key;
        ctx.enterOrHostError(KV_DELETE);
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
        if (typeof prefix !== 'string' || utf8Length(prefix) > o.maxKeyBytes) throw invalid('bad prefix');
        gate.args.detail = prefix;
        ctx.enterOrHostError(KV_LIST);
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
        let target: { host: string; port: number; url: string };
        try {
          target = canonicalUrl(req.url);
        } catch (cause) {
          throw new HostResultError({ code: 'INVALID_ARGUMENT', message: isForgeError(cause) ? cause.message : 'bad URL' } satisfies HostErrorPayload);
        }
        const method = req.method.toUpperCase();
        if (!/^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/.test(method)) throw invalid(`bad method ${JSON.stringify(req.method)}`);
        gate.args.host = target.host;
        gate.args.port = target.port;
        gate.args.size = req.body?.length ?? 0;
        gate.args.detail = method;
        ctx.enterOrHostError(FETCH);
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
        const id = o.identity;
        if (id === undefined) ctx.serviceFailed(new ForgeError('NOT_FOUND', 'no identity was given to this container'));
        gate.exit(RESULT_OK);
        return { subject: id.subject, tenant: id.tenant, roles: [...id.roles], trustLevel: id.trustLevel };
      },
    },
    'forgeone:host/info': {
      get(): { containerId: string; packageName: string; packageVersion: string; kernelVersion: string } {
        ctx.enterOrHostError(INFO);
        const info = o.info;
        if (info === undefined) ctx.serviceFailed(new ForgeError('NOT_FOUND', 'no container info was given to this container'));
        gate.exit(RESULT_OK);
        return { containerId: info.containerId, packageName: info.packageName, packageVersion: info.packageVersion, kernelVersion: info.kernelVersion };
      },
    },
    'forgeone:host/time': {
      now(): bigint {
        ctx.enterOrHostError(TIME);
        const ms = BigInt(Math.floor(o.nowMs()));
        timeView.setBigUint64(0, ms, true);
        gate.exit(RESULT_OK, timeBytes);
        return ms;
      },
    },
  };
}
