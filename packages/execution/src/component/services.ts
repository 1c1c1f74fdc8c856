import { ForgeError } from '@forgeone/common';

/** Log levels of `forgeone:host/log`. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** An HTTP request a guest asks the host to make (`forgeone:host/http.fetch`, `wasi:http/outgoing-handler`). */
export interface HostHttpRequest {
  /** Method, uppercase (`GET`, `POST`, ...). */
  readonly method: string;
  /** Absolute http(s) URL, with the canonical host and an explicit port already checked by the gate. */
  readonly url: string;
  /** Header name/value pairs in the guest's order. */
  readonly headers: readonly (readonly [string, string])[];
  /** Request body, if any. */
  readonly body: Uint8Array | undefined;
}

/** The host's answer to a {@link HostHttpRequest}. */
export interface HostHttpResponse {
  /** HTTP status. */
  readonly status: number;
  /** Header name/value pairs. */
  readonly headers: readonly (readonly [string, string])[];
  /** The whole response body. */
  readonly body: Uint8Array;
}

/**
 * What the host does outside the guest on its behalf. Every method is synchronous: guests run in worker
 * threads, and an implementation that needs the main thread (network, the store) blocks on a
 * SharedArrayBuffer bridge. Methods are called only after the gate allowed the call; keys are given as
 * the guest wrote them — the implementation namespaces them per container. Throw a `ForgeError` to fail a
 * call: its code reaches the guest in `host-error`.
 */
export interface HostServices {
  /**
   * Read a key.
   * @param key - the guest's key
   * @returns the value, or undefined when absent
   */
  kvGet(key: string): Uint8Array | undefined;
  /**
   * Write a key.
   * @param key - the guest's key
   * @param value - the value (owned by the callee)
   */
  kvSet(key: string, value: Uint8Array): void;
  /**
   * Delete a key.
   * @param key - the guest's key
   * @returns whether it existed
   */
  kvDelete(key: string): boolean;
  /**
   * List keys.
   * @param prefix - keys starting with this
   * @returns matching keys, sorted
   */
  kvList(prefix: string): string[];
  /**
   * Make an HTTP request and wait for the whole response.
   * @param request - the request
   * @returns the response
   */
  fetch(request: HostHttpRequest): HostHttpResponse;
  /**
   * Write one log line of the guest.
   * @param level - severity
   * @param message - the guest's text
   */
  log(level: LogLevel, message: string): void;
}

/** One line the guest logged into {@link MemoryServices}. */
export interface LoggedLine {
  /** Severity. */
  readonly level: LogLevel;
  /** Text. */
  readonly message: string;
}

/** {@link HostServices} held in memory, with the state exposed for tests and inline use. */
export interface MemoryServices extends HostServices {
  /** The key-value store. */
  readonly kv: Map<string, Uint8Array>;
  /** Lines logged, in order. */
  readonly logs: LoggedLine[];
}

/** Options of {@link createMemoryServices}. */
export interface MemoryServicesOptions {
  /** Initial keys. */
  readonly kv?: Iterable<readonly [string, Uint8Array]>;
  /** Answers fetches; without it every fetch fails with `POLICY_DENIED` (no network in memory services). */
  readonly fetch?: (request: HostHttpRequest) => HostHttpResponse;
  /** Most log lines kept (older ones are dropped); default 10,000. */
  readonly maxLogLines?: number;
}

/**
 * In-memory host services: a Map for kv, an array for logs, and no network (fetch fails with a ForgeError
 * unless a `fetch` function is given).
 * @param options - initial keys, fetch handler, log cap
 * @returns the services and their state
 */
export function createMemoryServices(options: MemoryServicesOptions = {}): MemoryServices {
  const kv = new Map<string, Uint8Array>();
  for (const [k, v] of options.kv ?? []) kv.set(k, v.slice());
  const logs: LoggedLine[] = [];
  const maxLines = options.maxLogLines ?? 10_000;
  const fetchFn = options.fetch;
  return {
    kv,
    logs,
    kvGet: (key) => kv.get(key)?.slice(),
    kvSet: (key, value) => void kv.set(key, value.slice()),
    kvDelete: (key) => kv.delete(key),
    kvList: (prefix) => [...kv.keys()].filter((k) => k.startsWith(prefix)).sort(),
    fetch(request) {
      if (fetchFn === undefined) throw new ForgeError('POLICY_DENIED', 'these host services have no network');
      return fetchFn(request);
    },
    log(level, message) {
      logs.push({ level, message });
      if (logs.length > maxLines) logs.splice(0, logs.length - maxLines);
    },
  };
}
