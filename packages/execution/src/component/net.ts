import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ForgeError } from '@forgeone/common';

/**
 * Why a network operation failed, in the words of `wasi:sockets/network.error-code` (the socket adapter
 * hands these to the guest as they are).
 */
export type NetFailure =
  | 'connection-refused'
  | 'connection-reset'
  | 'connection-aborted'
  | 'timeout'
  | 'remote-unreachable'
  | 'name-unresolvable'
  | 'temporary-resolver-failure'
  | 'invalid-state'
  | 'unknown';

/** An address of a connected socket. */
export interface NetAddress {
  /** The IP address, canonical text (IPv6 without brackets, lowercase). */
  readonly address: string;
  /** The port. */
  readonly port: number;
  /** `ipv4` or `ipv6`. */
  readonly family: 'ipv4' | 'ipv6';
}

/** A connected TCP socket as the backend reports it. */
export interface NetConnection {
  /** The backend's handle for the socket. */
  readonly id: number;
  /** The local end. */
  readonly local: NetAddress;
  /** The remote end. */
  readonly remote: NetAddress;
}

/**
 * What the socket adapter needs from the operating system, with synchronous calls: a guest's host call
 * cannot await, so the backend does the I/O on a thread of its own and the guest's thread waits for the
 * answer (as `wasmtime` does on its own I/O threads). Nothing here decides anything: the adapter has
 * already gated every call and checked the network grants before it reaches the backend.
 */
export interface NetBackend {
  /**
   * Resolve a host name to its IP addresses.
   * @param name - a canonical host name
   * @param timeoutMs - how long to wait
   * @returns the addresses (canonical text), IPv4 first
   * @throws ForgeError `NET_FAILED` with `details.reason` a {@link NetFailure}
   */
  resolve(name: string, timeoutMs?: number): string[];
  /**
   * Open a TCP connection.
   * @param address - the remote IP address
   * @param port - the remote port
   * @param timeoutMs - how long to wait for the connection
   * @returns the connection
   * @throws ForgeError `NET_FAILED` with `details.reason` a {@link NetFailure}
   */
  connect(address: string, port: number, timeoutMs?: number): NetConnection;
  /**
   * Take the bytes received so far (at most `max`), without waiting.
   * @param id - the connection
   * @param max - most bytes to take
   * @returns the bytes (empty when none are buffered yet), or null when the peer closed and all were taken
   * @throws ForgeError `NET_FAILED` when the connection failed (`details.reason`), `NOT_FOUND` for an unknown id
   */
  read(id: number, max: number): Uint8Array | null;
  /**
   * Wait until bytes or the end of the stream can be read, or the time is up.
   * @param id - the connection
   * @param timeoutMs - how long to wait
   * @returns whether a read would now return something (bytes, end of stream or an error)
   */
  waitReadable(id: number, timeoutMs: number): boolean;
  /**
   * Send bytes (queued on the backend's thread; the call returns once they are handed over).
   * @param id - the connection
   * @param bytes - the bytes
   * @throws ForgeError `NET_FAILED` when the connection is closed or failed
   */
  write(id: number, bytes: Uint8Array): void;
  /**
   * Shut one or both directions of a connection.
   * @param id - the connection
   * @param how - which direction
   */
  shutdown(id: number, how: 'receive' | 'send' | 'both'): void;
  /**
   * Close a connection and forget it (idempotent).
   * @param id - the connection
   */
  close(id: number): void;
  /** Close every connection and stop the backend's thread. */
  dispose(): Promise<void>;
}

/** Options of {@link createNetBackend}. */
export interface NetBackendOptions {
  /** Default wait for resolve and connect, ms (default 10 000). */
  readonly timeoutMs?: number;
  /** Bytes buffered per connection before the backend stops reading from the peer (default 1 MiB). */
  readonly maxBufferedBytes?: number;
}

interface Request {
  readonly seq: number;
  readonly method: string;
  readonly args: readonly unknown[];
}

type Response = { readonly seq: number; readonly ok: true; readonly value: unknown } | { readonly seq: number; readonly ok: false; readonly code: string; readonly reason: string; readonly message: string };

// The backend's thread: owns the sockets, answers one request at a time (waitReadable answers when data
// arrives or its time is up), wakes the caller through the shared signal.
const NET_THREAD = `
const { workerData } = require('node:worker_threads');
const net = require('node:net');
const dns = require('node:dns');
const { port, signal: sab, maxBuffered } = workerData;
const signal = new Int32Array(sab);
const conns = new Map();
let nextId = 1;
const REASONS = { ECONNREFUSED: 'connection-refused', ECONNRESET: 'connection-reset', ECONNABORTED: 'connection-aborted', ETIMEDOUT: 'timeout', EHOSTUNREACH: 'remote-unreachable', ENETUNREACH: 'remote-unreachable', ENOTFOUND: 'name-unresolvable', EAI_AGAIN: 'temporary-resolver-failure', EPIPE: 'connection-reset' };
const reason = (e) => REASONS[e && e.code] || 'unknown';
function answer(m) { port.postMessage(m); Atomics.store(signal, 0, m.seq); Atomics.notify(signal, 0); }
const ok = (seq, value) => answer({ seq, ok: true, value });
const fail = (seq, code, why, message) => answer({ seq, ok: false, code, reason: why, message });
function addr(a, p, fam) { return { address: String(a || '').toLowerCase(), port: p || 0, family: fam === 'IPv6' || fam === 6 ? 'ipv6' : 'ipv4' }; }
function readable(c) { return c.size > 0 || c.ended || c.error !== null; }
function wake(c) { const w = c.waiter; if (w) { c.waiter = null; clearTimeout(w.timer); ok(w.seq, true); } }
const handlers = {
  resolve(seq, name, timeoutMs) {
    let done = false;
    const timer = setTimeout(() => { if (!done) { done = true; fail(seq, 'NET_FAILED', 'timeout', 'resolving ' + name + ' timed out'); } }, timeoutMs);
    dns.lookup(name, { all: true }, (err, list) => {
      if (done) return; done = true; clearTimeout(timer);
      if (err) return fail(seq, 'NET_FAILED', reason(err), 'cannot resolve ' + name + ': ' + err.code);
      const v4 = list.filter((a) => a.family === 4).map((a) => a.address);
      const v6 = list.filter((a) => a.family === 6).map((a) => a.address.toLowerCase());
      ok(seq, [...new Set([...v4, ...v6])]);
    });
  },
  connect(seq, address, p, timeoutMs) {
    const s = net.connect({ host: address, port: p, noDelay: true });
    let settled = false;
    const timer = setTimeout(() => { if (!settled) { settled = true; s.destroy(); fail(seq, 'NET_FAILED', 'timeout', 'connecting to ' + address + ':' + p + ' timed out'); } }, timeoutMs);
    s.once('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); fail(seq, 'NET_FAILED', reason(e), 'cannot connect to ' + address + ':' + p + ': ' + (e.code || e.message)); } });
    s.once('connect', () => {
      if (settled) return; settled = true; clearTimeout(timer);
      const id = nextId++;
      const c = { s, chunks: [], size: 0, ended: false, error: null, waiter: null };
      conns.set(id, c);
      s.on('data', (b) => { c.chunks.push(b); c.size += b.length; if (c.size >= maxBuffered) s.pause(); wake(c); });
      s.on('end', () => { c.ended = true; wake(c); });
      s.on('error', (e) => { c.error = reason(e); wake(c); });
      s.on('close', () => { c.ended = true; wake(c); });
      ok(seq, { id, local: addr(s.localAddress, s.localPort, s.localFamily), remote: addr(s.remoteAddress, s.remotePort, s.remoteFamily) });
    });
  },
  read(seq, id, max) {
    const c = conns.get(id);
    if (!c) return fail(seq, 'NOT_FOUND', 'invalid-state', 'no connection ' + id);
    if (c.size === 0) {
      if (c.error !== null) return fail(seq, 'NET_FAILED', c.error, 'the connection failed: ' + c.error);
      return ok(seq, c.ended ? null : new Uint8Array(0));
    }
    const n = Math.min(max, c.size);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const b = c.chunks[0];
      const take = Math.min(b.length, n - at);
      out.set(b.subarray(0, take), at);
      at += take;
      if (take === b.length) c.chunks.shift(); else c.chunks[0] = b.subarray(take);
    }
    c.size -= n;
    if (c.size < maxBuffered && c.s.isPaused()) c.s.resume();
    ok(seq, out);
  },
  waitReadable(seq, id, timeoutMs) {
    const c = conns.get(id);
    if (!c || readable(c)) return ok(seq, true);
    if (c.waiter) { const w = c.waiter; c.waiter = null; clearTimeout(w.timer); ok(w.seq, false); }
    const w = { seq, timer: setTimeout(() => { if (c.waiter === w) { c.waiter = null; ok(seq, false); } }, timeoutMs) };
    c.waiter = w;
  },
  write(seq, id, bytes) {
    const c = conns.get(id);
    if (!c) return fail(seq, 'NOT_FOUND', 'invalid-state', 'no connection ' + id);
    if (c.error !== null || c.s.destroyed || c.s.writableEnded) return fail(seq, 'NET_FAILED', c.error || 'connection-reset', 'the connection is closed for writing');
    c.s.write(bytes);
    ok(seq, undefined);
  },
  shutdown(seq, id, how) {
    const c = conns.get(id);
    if (!c) return fail(seq, 'NOT_FOUND', 'invalid-state', 'no connection ' + id);
    if (how !== 'receive') c.s.end();
    if (how !== 'send') { c.ended = true; c.chunks = []; c.size = 0; c.s.pause(); wake(c); }
    ok(seq, undefined);
  },
  close(seq, id) {
    const c = conns.get(id);
    if (c) { conns.delete(id); c.s.destroy(); wake(c); }
    ok(seq, undefined);
  },
};
port.on('message', (m) => {
  const h = Object.prototype.hasOwnProperty.call(handlers, m.method) ? handlers[m.method] : undefined;
  if (!h) return fail(m.seq, 'INVALID_ARGUMENT', 'unknown', 'no method ' + m.method);
  try { h(m.seq, ...m.args); } catch (e) { fail(m.seq, 'NET_FAILED', 'unknown', String(e && e.message || e)); }
});
`;

/**
 * Start a network backend: a thread that owns the TCP sockets and answers synchronous calls from the
 * guest's thread (Atomics.wait on a shared signal, the answer read with `receiveMessageOnPort`). The thread
 * starts on the first call, so a container that never connects costs nothing.
 * @param options - default timeout, buffer bound
 * @returns the backend
 * @example
 * ```ts
 * const net = createNetBackend();
 * const c = net.connect('127.0.0.1', 8080);
 * net.write(c.id, new TextEncoder().encode('ping'));
 * if (net.waitReadable(c.id, 1000)) console.log(net.read(c.id, 1024));
 * await net.dispose();
 * ```
 */
export function createNetBackend(options: NetBackendOptions = {}): NetBackend {
  const defaultTimeout = options.timeoutMs ?? 10_000;
  const maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  let thread: { worker: Worker; port: MessagePort; signal: Int32Array } | null = null;
  let seq = 0;
  let disposed = false;

  function start(): { worker: Worker; port: MessagePort; signal: Int32Array } {
    if (disposed) throw new ForgeError('NET_FAILED', 'the network backend was disposed', { details: { reason: 'invalid-state' } });
    if (thread !== null) return thread;
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(4);
    const worker = new Worker(NET_THREAD, { eval: true, workerData: { port: port2, signal: sab, maxBuffered }, transferList: [port2] });
    worker.unref();
    port1.unref();
    thread = { worker, port: port1, signal: new Int32Array(sab) };
    return thread;
  }

  // One synchronous round trip. The wait is bounded by the operation's own timeout plus a margin (the
  // thread answers every request, a timeout included).
  function call(method: string, args: readonly unknown[], waitMs: number): unknown {
    const t = start();
    const n = (seq = (seq + 1) | 0 || 1);
    t.port.postMessage({ seq: n, method, args } satisfies Request);
    const deadline = performance.now() + waitMs + 5_000;
    for (;;) {
      const seen = Atomics.load(t.signal, 0);
      if (seen === n) break;
      const left = deadline - performance.now();
      if (left <= 0) throw new ForgeError('NET_FAILED', `the network thread did not answer ${method}`, { details: { reason: 'timeout' } });
      Atomics.wait(t.signal, 0, seen, left);
    }
    for (;;) {
      const m = receiveMessageOnPort(t.port);
      if (m === undefined) throw new ForgeError('NET_FAILED', `the network thread's answer to ${method} was lost`, { details: { reason: 'unknown' } });
      const r = m.message as Response;
      if (r.seq !== n) continue;
      if (r.ok) return r.value;
      throw new ForgeError(r.code === 'NOT_FOUND' ? 'NOT_FOUND' : r.code === 'INVALID_ARGUMENT' ? 'INVALID_ARGUMENT' : 'NET_FAILED', r.message, { details: { reason: r.reason } });
    }
  }

  return {
    resolve: (name, timeoutMs = defaultTimeout) => call('resolve', [name, timeoutMs], timeoutMs) as string[],
    connect: (address, port, timeoutMs = defaultTimeout) => call('connect', [address, port, timeoutMs], timeoutMs) as NetConnection,
    read: (id, max) => call('read', [id, Math.max(0, Math.floor(max))], 0) as Uint8Array | null,
    waitReadable: (id, timeoutMs) => call('waitReadable', [id, Math.max(0, timeoutMs)], timeoutMs) as boolean,
    write(id, bytes) {
      call('write', [id, bytes.slice()], 0);
    },
    shutdown(id, how) {
      call('shutdown', [id, how], 0);
    },
    close(id) {
      if (thread !== null && !disposed) call('close', [id], 0);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      const t = thread;
      thread = null;
      if (t !== null) {
        t.port.close();
        await t.worker.terminate();
      }
    },
  };
}

/**
 * The failure reason a backend error carries, for the guest's `error-code`.
 * @param e - an error thrown by a {@link NetBackend} call
 * @returns the reason, `unknown` when the error carries none
 */
export function netFailureOf(e: unknown): NetFailure {
  const reason = e instanceof ForgeError ? (e.details as { reason?: unknown } | undefined)?.reason : undefined;
  return typeof reason === 'string' ? (reason as NetFailure) : 'unknown';
}
