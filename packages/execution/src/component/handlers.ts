import { ForgeError, isForgeError } from '@forgeone/common';
import type { BridgeHandler } from '../sandbox/types.js';
import type { HostHttpRequest, HostHttpResponse, LogLevel } from './services.js';

/**
 * The bridge methods a component container calls (worker → kernel), and their payloads:
 *
 * | method | payload | answer |
 * |---|---|---|
 * | `kv.get` | key (string) | `Uint8Array`, or null when absent |
 * | `kv.set` | `{ key, value: Uint8Array }` | null |
 * | `kv.delete` | key | whether it existed |
 * | `kv.list` | prefix | sorted keys |
 * | `http.fetch` | {@link HostHttpRequest} | {@link HostHttpResponse} |
 * | `log` | `{ level, message }` | null |
 */
export const COMPONENT_BRIDGE_METHODS = Object.freeze({
  kvGet: 'kv.get',
  kvSet: 'kv.set',
  kvDelete: 'kv.delete',
  kvList: 'kv.list',
  fetch: 'http.fetch',
  log: 'log',
} as const);

/**
 * The key-value namespace of one container, as the kernel holds it (a `@forgeone/store` `KvMap` fits).
 * The kernel passes a namespace of its own per container: keys are the guest's, unprefixed.
 */
export interface ContainerKv {
  /**
   * Read a key.
   * @param key - the key
   * @returns the value, or undefined when absent
   */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Write a key.
   * @param key - the key
   * @param value - the value
   * @returns when stored
   */
  set(key: string, value: Uint8Array): Promise<unknown>;
  /**
   * Delete a key.
   * @param key - the key
   * @returns whether it existed
   */
  delete(key: string): Promise<boolean>;
  /**
   * List keys.
   * @param prefix - keys starting with it
   * @returns the keys, sorted
   */
  list(prefix?: string): Promise<readonly string[]>;
}

/** Options of the default fetch of {@link componentBridgeHandlers}. */
export interface BridgeFetchOptions {
  /** Give up after this many ms (`SANDBOX_TIMEOUT`); default 10,000. */
  readonly timeoutMs?: number;
  /** Largest response body, bytes (`LIMIT_EXCEEDED`); default 8 MiB. */
  readonly maxResponseBytes?: number;
  /** Largest request body, bytes (`LIMIT_EXCEEDED`); default 8 MiB. */
  readonly maxRequestBytes?: number;
}

/** Options of {@link componentBridgeHandlers}. */
export interface ComponentBridgeOptions {
  /** The container's own kv namespace; without it kv calls fail with `NOT_FOUND`. */
  readonly kv?: ContainerKv;
  /**
   * Performs a request the gate allowed. Default: the global `fetch`, redirects not followed (the gate
   * checked this destination only: a 3xx goes back to the guest), with {@link ComponentBridgeOptions.fetchOptions}.
   */
  readonly fetch?: (request: HostHttpRequest) => Promise<HostHttpResponse>;
  /** Limits of the default fetch. */
  readonly fetchOptions?: BridgeFetchOptions;
  /** Receives the guest's log lines; dropped when omitted. */
  readonly log?: (level: LogLevel, message: string) => void;
}

const LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error']);

function bad(what: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', `bad bridge payload: ${what}`);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be a string`);
  return v;
}

function checkRequest(v: unknown): HostHttpRequest {
  if (typeof v !== 'object' || v === null) throw bad('a request must be an object');
  const r = v as Record<string, unknown>;
  const method = str(r.method, 'method');
  const url = str(r.url, 'url');
  const headers = r.headers;
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw bad('headers must be [name, value] string pairs');
  }
  const body = r.body;
  if (body !== undefined && body !== null && !(body instanceof Uint8Array)) throw bad('body must be bytes');
  return { method, url, headers: headers as [string, string][], body: body instanceof Uint8Array ? body : undefined };
}

/**
 * The kernel side of a component container's host services: the `handlers` record for `pool.start`
 * (see {@link COMPONENT_BRIDGE_METHODS}). Payloads are checked (`INVALID_ARGUMENT`); a handler's
 * ForgeError reaches the guest's `host-error` with its code.
 *
 * @example
 * ```ts
 * const kv = await store.kv(`plugin/${containerId}`);
 * pool.start({ runner: 'builtin:component', data, policy, handlers: componentBridgeHandlers({ kv, log: (l, m) => logs.push(m) }) });
 * ```
 * @param options - the container's kv namespace, fetch and log
 * @returns the handlers by method name
 */
export function componentBridgeHandlers(options: ComponentBridgeOptions = {}): Record<string, BridgeHandler> {
  const handlers: Record<string, BridgeHandler> = {};
  const kv = options.kv;
  if (kv !== undefined) {
    handlers[COMPONENT_BRIDGE_METHODS.kvGet] = async (p) => (await kv.get(str(p, 'key'))) ?? null;
    handlers[COMPONENT_BRIDGE_METHODS.kvSet] = async (p) => {
      if (typeof p !== 'object' || p === null) throw bad('kv.set takes { key, value }');
      const { key, value } = p as { key?: unknown; value?: unknown };
      if (!(value instanceof Uint8Array)) throw bad('value must be bytes');
      await kv.set(str(key, 'key'), value);
      return null;
    };
    handlers[COMPONENT_BRIDGE_METHODS.kvDelete] = async (p) => kv.delete(str(p, 'key'));
    handlers[COMPONENT_BRIDGE_METHODS.kvList] = async (p) => [...(await kv.list(str(p, 'prefix')))];
  }
  const fetchFn = options.fetch ?? defaultFetch(options.fetchOptions ?? {});
  handlers[COMPONENT_BRIDGE_METHODS.fetch] = async (p) => {
    const res = await fetchFn(checkRequest(p));
    return { status: res.status, headers: res.headers.map(([k, v]) => [k, v]), body: res.body };
  };
  const log = options.log;
  handlers[COMPONENT_BRIDGE_METHODS.log] = (p) => {
    if (typeof p !== 'object' || p === null) return Promise.reject(bad('log takes { level, message }'));
    const { level, message } = p as { level?: unknown; message?: unknown };
    if (typeof level !== 'string' || !LEVELS.has(level)) return Promise.reject(bad('unknown log level'));
    log?.(level as LogLevel, str(message, 'message'));
    return Promise.resolve(null);
  };
  return handlers;
}

/**
 * The default fetch of {@link componentBridgeHandlers}: the global `fetch`, http(s) only, no redirects
 * followed, a timeout, and the response body read up to a cap.
 * @param o - limits
 * @returns the fetch function
 */
export function defaultFetch(o: BridgeFetchOptions): (request: HostHttpRequest) => Promise<HostHttpResponse> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxResponse = o.maxResponseBytes ?? 8 << 20;
  const maxRequest = o.maxRequestBytes ?? 8 << 20;
  return async (req) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch (cause) {
      throw new ForgeError('INVALID_ARGUMENT', 'not a URL', { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ForgeError('INVALID_ARGUMENT', `only http and https URLs can be fetched, not ${url.protocol}`);
    if (req.body !== undefined && req.body.length > maxRequest) throw new ForgeError('LIMIT_EXCEEDED', `the request body is over ${maxRequest} bytes`);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const res = await fetch(url, {
        method: req.method,
        headers: req.headers.map(([k, v]): [string, string] => [k, v]),
        ...(req.body === undefined || req.method === 'GET' || req.method === 'HEAD' ? {} : { body: req.body.slice() as Uint8Array<ArrayBuffer> }),
        redirect: 'manual',
        signal: controller.signal,
      });
      const headers: [string, string][] = [];
      res.headers.forEach((v, k) => headers.push([k, v]));
      const chunks: Uint8Array[] = [];
      let total = 0;
      if (res.body !== null) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.length;
          if (total > maxResponse) {
            await reader.cancel().catch(() => undefined);
            throw new ForgeError('LIMIT_EXCEEDED', `the response body is over ${maxResponse} bytes`, { details: { limit: maxResponse } });
          }
          chunks.push(value);
        }
      }
      const body = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      return { status: res.status, headers, body };
    } catch (cause) {
      if (isForgeError(cause)) throw cause;
      if (controller.signal.aborted) throw new ForgeError('SANDBOX_TIMEOUT', `fetch ${url.host} took over ${timeoutMs} ms`, { cause });
      const detail = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause);
      throw new ForgeError('IO_ERROR', `fetch ${url.host} failed: ${detail}`, { cause });
    } finally {
      clearTimeout(timer);
    }
  };
}
