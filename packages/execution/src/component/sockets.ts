// wasi:sockets 0.2 for components: TCP client connections over a NetBackend (a thread of its own that owns
// the operating system's sockets), name resolution, and the gate and network grants in front of both.
import { ForgeError, isForgeError } from '@forgeone/common';
import type { NetGrant } from '../capabilities.js';
import { canonicalHost } from '../gate/canonical.js';
import { HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, failureBytes, type HostContext } from './host.js';
import { DISPOSE, InputStream, IoError, OutputStream, Pollable, RecordedIoError, enterErrorInspection, gateDrop, ioIds, type ByteSink, type ByteSource, type StreamTarget } from './io.js';
import { createNetBackend, netFailureOf, type NetAddress, type NetBackend, type NetConnection } from './net.js';

/** Canonical form of an IPv6 literal (compressed, lowercase); other hosts unchanged. */
export function canonicalIp(host: string): string {
  if (!host.includes(':')) return host;
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host;
  }
}

/**
 * Whether a canonical destination is granted.
 * @param grants - the grants
 * @param host - canonical host
 * @param port - port, or undefined to ask about the host alone (name lookup)
 * @returns true when some grant covers it
 */
export function networkGranted(grants: readonly NetGrant[], host: string, port: number | undefined): boolean {
  for (const g of grants) {
    const hostOk = g.host === '*' || g.host === host || (g.host.startsWith('*.') && host.endsWith(g.host.slice(1)));
    if (hostOk && (port === undefined || g.port === port)) return true;
  }
  return false;
}

/** What the socket interfaces need (part of the WASI host options). */
export interface SocketHostOptions {
  /** Granted network destinations. */
  readonly network: readonly NetGrant[];
  /** Monotonic clock, ns. */
  readonly monotonicNs: () => bigint;
  /** Registers a clean-up to run when the container's imports are disposed. */
  readonly onDispose: (fn: () => void) => void;
  /**
   * The backend that performs the I/O. Default: {@link createNetBackend}, started on the first allowed
   * connect or name lookup and disposed with the container. An injected backend is not disposed (the
   * connections the container opened on it are closed).
   */
  readonly net?: NetBackend | undefined;
}

/** `wasi:sockets/network.network`: one per container, shared by every handle the guest holds. */
export class Network {
  readonly #ctx: HostContext | undefined;

  /** @param ctx - the host context whose gate the guest's drop crosses (none: not gated) */
  constructor(ctx?: HostContext) {
    this.#ctx = ctx;
  }

  /** The guest dropped a handle: crosses the gate as `wasi:io/drop` (`network`); nothing to free. */
  [DISPOSE](): void {
    if (this.#ctx !== undefined) gateDrop(this.#ctx, 'network');
  }
}

/** `wasi:sockets/network.ip-socket-address`. */
export type IpSocketAddress =
  | { tag: 'ipv4'; val: { port: number; address: [number, number, number, number] } }
  | { tag: 'ipv6'; val: { port: number; flowInfo: number; address: number[]; scopeId: number } };

/** `wasi:sockets/network.ip-address`. */
export type IpAddress = { tag: 'ipv4'; val: [number, number, number, number] } | { tag: 'ipv6'; val: number[] };

function formatAddress(a: IpSocketAddress): { host: string; port: number } {
  const port = a.val.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('bad port');
  if (a.tag === 'ipv4') {
    const b = a.val.address;
    if (b.length !== 4 || b.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error('bad address');
    return { host: b.join('.'), port };
  }
  if (a.tag !== 'ipv6') throw new Error('bad family');
  const w = a.val.address;
  if (w.length !== 8 || w.some((n) => !Number.isInteger(n) || n < 0 || n > 0xffff)) throw new Error('bad address');
  return { host: canonicalIp(w.map((n) => n.toString(16)).join(':')), port };
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * An IP address in canonical text as `wasi:sockets` hands it to the guest.
 * @param text - an IPv4 or IPv6 address
 * @returns the address, or undefined when the text is not an IP address
 */
export function ipAddressOf(text: string): IpAddress | undefined {
  const v4 = IPV4.exec(text);
  if (v4 !== null) {
    const b = [Number(v4[1]), Number(v4[2]), Number(v4[3]), Number(v4[4])] as [number, number, number, number];
    return b.every((n) => n <= 255) ? { tag: 'ipv4', val: b } : undefined;
  }
  if (!text.includes(':') || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  // The URL parser writes an embedded IPv4 tail in hex, so the canonical form has only hex groups.
  const [head, tail] = host.includes('::') ? host.split('::') : [host, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const words = [...left, ...Array<string>(Math.max(0, zeros)).fill('0'), ...right].map((h) => parseInt(h, 16));
  return words.length === 8 && words.every((n) => Number.isInteger(n)) ? { tag: 'ipv6', val: words } : undefined;
}

function socketAddressOf(a: NetAddress): IpSocketAddress {
  const ip = ipAddressOf(a.address);
  if (ip?.tag === 'ipv6') return { tag: 'ipv6', val: { port: a.port, flowInfo: 0, address: ip.val, scopeId: 0 } };
  if (ip?.tag === 'ipv4') return { tag: 'ipv4', val: { port: a.port, address: ip.val } };
  return { tag: 'ipv4', val: { port: a.port, address: [0, 0, 0, 0] } };
}

/**
 * What `start-connect` records as its result: the connection's two ends, JSON (a replay answers
 * `local-address` and `remote-address` from it).
 * @param c - the connection
 * @returns the bytes
 */
export function encodeConnection(c: NetConnection): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ local: c.local, remote: c.remote }));
}

/**
 * What `resolve-addresses` records as its result: the addresses, a JSON list of canonical text.
 * @param addresses - the addresses
 * @returns the bytes
 */
export function encodeAddresses(addresses: readonly string[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(addresses));
}

/**
 * The failure recorded for a network operation (`failureBytes`): code `NET_FAILED`, message = the
 * `wasi:sockets` error code the guest got, so a replay gives it the same one.
 * @param reason - the error code
 * @returns the bytes
 */
export function netFailureBytes(reason: string): Uint8Array {
  return failureBytes('NET_FAILED', reason);
}

/** The error codes a name lookup may report; other reasons become `permanent-resolver-failure`. */
const LOOKUP_REASONS: ReadonlySet<string> = new Set(['name-unresolvable', 'temporary-resolver-failure', 'permanent-resolver-failure', 'timeout']);

/**
 * What every socket of a container shares: its gate, grants, backend and the names it resolved. Built by
 * {@link socketImports}; the guest never sees it.
 */
export class SocketHost {
  /** The host context. */
  readonly ctx: HostContext;
  /** The container's network grants. */
  readonly grants: readonly NetGrant[];
  /** Monotonic clock, ns. */
  readonly now: () => bigint;
  /** Interned syscall ids. */
  readonly ids: {
    readonly bind: number;
    readonly connect: number;
    readonly listen: number;
    readonly send: number;
    readonly receive: number;
    readonly udpBind: number;
    readonly udpSend: number;
    readonly resolve: number;
    readonly local: number;
    readonly accept: number;
  };
  /** IP address → the granted names that resolved to it in this container. */
  readonly resolved = new Map<string, string[]>();
  /** Backend ids of the connections the container holds. */
  readonly open = new Set<number>();
  /** How the guest's thread waits (wakes on termination). */
  readonly sleeper: (ms: number) => void;
  #net: NetBackend | undefined;
  readonly #owned: boolean;
  #disposed = false;

  /**
   * @param ctx - the host context
   * @param o - grants, clock, clean-up registration, optional backend
   */
  constructor(ctx: HostContext, o: SocketHostOptions) {
    this.ctx = ctx;
    this.grants = o.network;
    this.now = o.monotonicNs;
    this.#net = o.net;
    this.#owned = o.net === undefined;
    this.sleeper = (ms): void => ctx.sleep(ms);
    this.ids = {
      bind: ctx.id('wasi:sockets/tcp-bind'),
      connect: ctx.id('wasi:sockets/tcp-connect'),
      listen: ctx.id('wasi:sockets/tcp-listen'),
      send: ctx.id('wasi:sockets/tcp-send'),
      receive: ctx.id('wasi:sockets/tcp-receive'),
      udpBind: ctx.id('wasi:sockets/udp-bind'),
      udpSend: ctx.id('wasi:sockets/udp-send'),
      resolve: ctx.id('wasi:sockets/resolve'),
      local: ctx.id('wasi:sockets/local'),
      accept: ctx.id('wasi:sockets/tcp-accept'),
    };
    o.onDispose(() => this.dispose());
  }

  /**
   * The backend, started on first use.
   * @returns the backend
   * @throws ForgeError `NET_FAILED` after dispose; `INTERNAL` during a replay without an injected backend
   */
  net(): NetBackend {
    if (this.#disposed) throw new ForgeError('NET_FAILED', 'the container was disposed', { details: { reason: 'invalid-state' } });
    this.assertCanReach();
    this.#net ??= createNetBackend();
    return this.#net;
  }

  /**
   * A replay answers from the record and must never reach the network: without an injected backend it
   * stops before the gate is entered.
   * @throws ForgeError `INTERNAL` during a replay without an injected backend
   */
  assertCanReach(): void {
    if (this.#net === undefined && this.ctx.replaying) throw new ForgeError('INTERNAL', 'a replay needs a network backend that answers from the record (replayHost(gate).net)');
  }

  /**
   * Close one of the container's connections (idempotent).
   * @param id - the backend's connection id
   */
  close(id: number): void {
    if (!this.open.delete(id)) return;
    try {
      this.#net?.close(id);
    } catch {
      // already gone
    }
  }

  /** Close the container's connections and stop the backend when it is the container's own. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    for (const id of [...this.open]) this.close(id);
    this.#disposed = true;
    const net = this.#net;
    this.#net = undefined;
    if (this.#owned && net !== undefined) void net.dispose().catch(() => undefined);
  }

  /**
   * Enter the gate for a function on the guest's own socket state (`wasi:sockets/local`, `detail` = the
   * function) that has an error case: refused, it returns `access-denied`. Close with {@link SocketHost.ok}
   * or {@link SocketHost.failed}.
   * @param fn - the function, kebab-case
   * @throws HostResultError `access-denied` when refused
   */
  local(fn: string): void {
    this.ctx.gate.args.detail = fn;
    this.ctx.enterOrWasiError(this.ids.local, 'access-denied');
  }

  /**
   * As {@link SocketHost.local} for a function without an error case: refused, it traps.
   * @param fn - the function, kebab-case
   * @throws ForgeError with the refusal code when refused
   */
  localOrTrap(fn: string): void {
    this.ctx.gate.args.detail = fn;
    this.ctx.enterOrTrap(this.ids.local);
  }

  /** Close an allowed local call: it succeeded (nothing recorded but the result code). */
  ok(): void {
    this.ctx.gate.exit(RESULT_OK);
  }

  /**
   * Close an allowed local call as failed and return the error code to the guest.
   * @param code - the `wasi:sockets` error code
   * @returns never
   * @throws HostResultError `code`
   */
  failed(code: string): never {
    this.ctx.gate.exit(RESULT_FAILED);
    throw new HostResultError(code);
  }

  /**
   * Cross the gate for a call the adapter does not perform (bind, UDP) and fail it.
   * @param id - the syscall
   * @param address - the address the guest gave, recorded as host and port
   * @returns never
   * @throws HostResultError `invalid-argument`, `access-denied` (refused or not granted), else `not-supported`
   */
  fence(id: number, address: IpSocketAddress | undefined): never {
    let dest: { host: string; port: number } | undefined;
    if (address !== undefined) {
      try {
        dest = formatAddress(address);
      } catch {
        throw new HostResultError('invalid-argument');
      }
    }
    const gate = this.ctx.gate;
    gate.args.host = dest?.host;
    gate.args.port = dest?.port;
    this.ctx.enterOrWasiError(id, 'access-denied');
    if (dest !== undefined && !networkGranted(this.grants, dest.host, dest.port)) {
      gate.exit(RESULT_REFUSED);
      throw new HostResultError('access-denied');
    }
    gate.exit(RESULT_FAILED, netFailureBytes('not-supported'));
    throw new HostResultError('not-supported');
  }
}

type TcpState =
  | { readonly s: 'unbound' }
  | { readonly s: 'connect-ready'; readonly conn: NetConnection; readonly name: string | undefined }
  | { readonly s: 'connect-failed'; readonly reason: string }
  | { readonly s: 'connected'; readonly conn: NetConnection; readonly input: InputStream; readonly output: OutputStream }
  | { readonly s: 'closed' };

const NS = 1_000_000_000n;

/**
 * `wasi:sockets/tcp.tcp-socket`, a client socket. `start-connect` checks the address (family, port,
 * unspecified address: `invalid-argument`), crosses the gate as `wasi:sockets/tcp-connect` with the
 * canonical host (the IP) and port — `detail` = the host name when the IP came from a `resolve-addresses`
 * of a granted name — and is refused with `access-denied` when the policy refuses or no grant covers the
 * destination (recorded with result -1). Allowed, it connects at once (synchronously, through the
 * container's {@link NetBackend}) and records the connection's two ends, or the failure; `finish-connect`
 * then returns the streams, or the failure (`connection-refused`, `timeout`, ...). Reads and writes of the
 * streams cross the gate as `wasi:sockets/tcp-receive` / `tcp-send` with the peer's host and port (and the
 * name as `detail`); the bytes read are recorded. `shutdown` crosses it as `tcp-send` with `detail`
 * `shutdown:<how>`. Binding, listening and accepting are not supported: `start-bind` crosses the gate
 * (`wasi:sockets/tcp-bind`) and fails with `not-supported`; `start-listen` (`wasi:sockets/tcp-listen`) and
 * `accept` (`wasi:sockets/tcp-accept`) cross the gate and fail with `invalid-state` (the socket is never
 * bound), `access-denied` when refused. Options keep their defaults (setters: `not-supported`). Everything
 * else acts on the socket's own state and crosses the gate as `wasi:sockets/local` with `detail` = the
 * function (`finish-connect`, `local-address`, `keep-alive-enabled`, `set-hop-limit`, ...): refused, it
 * returns `access-denied`, or traps where the function has no error case (`address-family`,
 * `is-listening`). `subscribe` (`wasi:io/subscribe`, a trap when refused) and the drop (`wasi:io/drop`,
 * which closes the connection) cross the gate with `detail` `tcp-socket`.
 */
export class TcpSocket {
  readonly #host: SocketHost;
  readonly #family: 'ipv4' | 'ipv6';
  #state: TcpState = { s: 'unbound' };

  /**
   * @param host - what the container's sockets share
   * @param family - `ipv4` or `ipv6`
   * @internal
   */
  constructor(host: SocketHost, family: 'ipv4' | 'ipv6') {
    this.#host = host;
    this.#family = family;
  }

  /**
   * Implements `address-family`.
   * @returns the address family
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  addressFamily(): string {
    this.#host.localOrTrap('address-family');
    this.#host.ok();
    return this.#family;
  }

  /**
   * Implements `is-listening`.
   * @returns false: sockets never listen here
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  isListening(): boolean {
    this.#host.localOrTrap('is-listening');
    this.#host.ok();
    return false;
  }

  /**
   * Implements `start-bind`: crosses the gate, then `not-supported` (or `access-denied`).
   * @param _network - the network handle
   * @param address - local address
   * @throws HostResultError `access-denied`, `not-supported`, `invalid-argument`
   */
  startBind(_network: Network, address: IpSocketAddress): void {
    if (this.#state.s !== 'unbound') throw new HostResultError('invalid-state');
    this.#host.fence(this.#host.ids.bind, address);
  }

  /** Implements `finish-bind`: no bind is ever in progress. @throws HostResultError `not-in-progress`, `access-denied` */
  finishBind(): void {
    this.#host.local('finish-bind');
    this.#host.failed('not-in-progress');
  }

  /**
   * Implements `start-connect`: gate, grants, then the connection itself.
   * @param _network - the network handle
   * @param address - remote address
   * @throws HostResultError `invalid-argument`, `invalid-state`, `access-denied`
   */
  startConnect(_network: Network, address: IpSocketAddress): void {
    if (this.#state.s !== 'unbound') throw new HostResultError('invalid-state');
    const h = this.#host;
    let dest: { host: string; port: number };
    try {
      dest = formatAddress(address);
    } catch {
      throw new HostResultError('invalid-argument');
    }
    if (address.tag !== this.#family || dest.port === 0 || dest.host === '0.0.0.0' || dest.host === '::') throw new HostResultError('invalid-argument');
    // Granted by a grant naming the IP, or by the grant of a name that resolved to it in this container.
    const names = h.resolved.get(dest.host) ?? [];
    let name: string | undefined;
    let granted = networkGranted(h.grants, dest.host, dest.port);
    if (!granted) {
      name = names.find((n) => networkGranted(h.grants, n, dest.port));
      granted = name !== undefined;
      name ??= names[0];
    }
    h.assertCanReach();
    const gate = h.ctx.gate;
    gate.args.host = dest.host;
    gate.args.port = dest.port;
    gate.args.detail = name;
    h.ctx.enterOrWasiError(h.ids.connect, 'access-denied');
    if (!granted) {
      gate.exit(RESULT_REFUSED);
      throw new HostResultError('access-denied');
    }
    let conn: NetConnection;
    try {
      conn = h.net().connect(dest.host, dest.port);
    } catch (e) {
      const reason = netFailureOf(e);
      gate.exit(RESULT_FAILED, netFailureBytes(reason));
      this.#state = { s: 'connect-failed', reason };
      return;
    }
    h.open.add(conn.id);
    gate.exit(RESULT_OK, encodeConnection(conn));
    this.#state = { s: 'connect-ready', conn, name };
  }

  /**
   * Implements `finish-connect`.
   * @returns the connection's input and output streams
   * @throws HostResultError the connect's failure (`connection-refused`, ...), `not-in-progress`
   */
  finishConnect(): [InputStream, OutputStream] {
    const h = this.#host;
    // The connection was made (and recorded) by start-connect: this hands out its result.
    h.local('finish-connect');
    const st = this.#state;
    if (st.s === 'connect-failed') {
      this.#state = { s: 'closed' };
      return h.failed(st.reason);
    }
    if (st.s !== 'connect-ready') return h.failed('not-in-progress');
    const id = st.conn.id;
    const remote = st.conn.remote;
    const fail = (e: unknown): never => {
      const reason = isForgeError(e) && e.code === 'NOT_FOUND' ? 'invalid-state' : netFailureOf(e);
      throw new RecordedIoError('NET_FAILED', reason);
    };
    const source: ByteSource = (max) => {
      try {
        return h.net().read(id, max);
      } catch (e) {
        return fail(e);
      }
    };
    const sink: ByteSink = (bytes) => {
      try {
        h.net().write(id, bytes);
      } catch (e) {
        fail(e);
      }
    };
    const readable = (waitMs: number): boolean => {
      if (h.ctx.replaying) return true;
      try {
        return h.net().waitReadable(id, waitMs);
      } catch {
        return true; // the read will report it
      }
    };
    const target: StreamTarget = { host: remote.address, port: remote.port, readable, sleeper: h.sleeper };
    const input = new InputStream(h.ctx, h.ids.receive, source, h.now, st.name, undefined, 'tcp-input-stream', target);
    const output = new OutputStream(h.ctx, h.ids.send, sink, h.now, st.name, undefined, 'tcp-output-stream', target);
    this.#state = { s: 'connected', conn: st.conn, input, output };
    h.ok();
    return [input, output];
  }

  /**
   * Implements `start-listen`: crosses the gate as `wasi:sockets/tcp-listen`; the socket is never bound.
   * @throws HostResultError `invalid-state`, `access-denied` when refused
   */
  startListen(): void {
    const h = this.#host;
    h.ctx.enterOrWasiError(h.ids.listen, 'access-denied');
    h.failed('invalid-state');
  }

  /** Implements `finish-listen`. @throws HostResultError `not-in-progress`, `access-denied` */
  finishListen(): void {
    this.#host.local('finish-listen');
    this.#host.failed('not-in-progress');
  }

  /**
   * Implements `accept`: crosses the gate as `wasi:sockets/tcp-accept`; the socket never listens.
   * @throws HostResultError `invalid-state`, `access-denied` when refused
   */
  accept(): never {
    const h = this.#host;
    h.ctx.enterOrWasiError(h.ids.accept, 'access-denied');
    return h.failed('invalid-state');
  }

  /**
   * Implements `local-address` (of the connection start-connect recorded).
   * @returns the local end of the connection
   * @throws HostResultError `invalid-state` before the connection is made, `access-denied` when refused
   */
  localAddress(): IpSocketAddress {
    this.#host.local('local-address');
    const a = socketAddressOf(this.#connection().local);
    this.#host.ok();
    return a;
  }

  /**
   * Implements `remote-address` (of the connection start-connect recorded).
   * @returns the remote end of the connection
   * @throws HostResultError `invalid-state` before the connection is made, `access-denied` when refused
   */
  remoteAddress(): IpSocketAddress {
    this.#host.local('remote-address');
    const a = socketAddressOf(this.#connection().remote);
    this.#host.ok();
    return a;
  }

  /**
   * Implements `shutdown`: crosses the gate as `wasi:sockets/tcp-send` with the peer, size 0 and `detail`
   * `shutdown:<how>`.
   * @param how - `receive`, `send` or `both`
   * @throws HostResultError `invalid-state` when not connected, `access-denied` when refused
   */
  shutdown(how: 'receive' | 'send' | 'both'): void {
    const st = this.#state;
    if (st.s !== 'connected') throw new HostResultError('invalid-state');
    if (how !== 'receive' && how !== 'send' && how !== 'both') throw new HostResultError('invalid-argument');
    const h = this.#host;
    const gate = h.ctx.gate;
    gate.args.host = st.conn.remote.address;
    gate.args.port = st.conn.remote.port;
    gate.args.size = 0;
    gate.args.detail = `shutdown:${how}`;
    h.ctx.enterOrWasiError(h.ids.send, 'access-denied');
    try {
      h.net().shutdown(st.conn.id, how);
    } catch (e) {
      const reason = netFailureOf(e);
      gate.exit(RESULT_FAILED, netFailureBytes(reason));
      throw new HostResultError(reason);
    }
    gate.exit(RESULT_OK);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setListenBacklogSize(_value: bigint): void {
    this.#set('set-listen-backlog-size');
  }

  /** @returns false (the default) @throws HostResultError `access-denied` when refused */
  keepAliveEnabled(): boolean {
    return this.#get('keep-alive-enabled', false);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setKeepAliveEnabled(_value: boolean): void {
    this.#set('set-keep-alive-enabled');
  }

  /** @returns the default idle time (2 h), ns @throws HostResultError `access-denied` when refused */
  keepAliveIdleTime(): bigint {
    return this.#get('keep-alive-idle-time', 7200n * NS);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setKeepAliveIdleTime(_value: bigint): void {
    this.#set('set-keep-alive-idle-time');
  }

  /** @returns the default interval (75 s), ns @throws HostResultError `access-denied` when refused */
  keepAliveInterval(): bigint {
    return this.#get('keep-alive-interval', 75n * NS);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setKeepAliveInterval(_value: bigint): void {
    this.#set('set-keep-alive-interval');
  }

  /** @returns the default probe count (9) @throws HostResultError `access-denied` when refused */
  keepAliveCount(): number {
    return this.#get('keep-alive-count', 9);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setKeepAliveCount(_value: number): void {
    this.#set('set-keep-alive-count');
  }

  /** @returns the default hop limit (64) @throws HostResultError `access-denied` when refused */
  hopLimit(): number {
    return this.#get('hop-limit', 64);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setHopLimit(_value: number): void {
    this.#set('set-hop-limit');
  }

  /** @returns the nominal receive buffer size (64 KiB) @throws HostResultError `access-denied` when refused */
  receiveBufferSize(): bigint {
    return this.#get('receive-buffer-size', 65536n);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setReceiveBufferSize(_value: bigint): void {
    this.#set('set-receive-buffer-size');
  }

  /** @returns the nominal send buffer size (64 KiB) @throws HostResultError `access-denied` when refused */
  sendBufferSize(): bigint {
    return this.#get('send-buffer-size', 65536n);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setSendBufferSize(_value: bigint): void {
    this.#set('set-send-buffer-size');
  }

  /**
   * Implements `subscribe`.
   * @returns a pollable, ready at once (connecting is synchronous)
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return subscribeResource(this.#host.ctx, 'tcp-socket', this.#host.now);
  }

  /** The guest dropped the socket: crosses the gate as `wasi:io/drop`, then closes the connection. */
  [DISPOSE](): void {
    try {
      gateDrop(this.#host.ctx, 'tcp-socket');
    } finally {
      const st = this.#state;
      if (st.s === 'connected' || st.s === 'connect-ready') this.#host.close(st.conn.id);
      this.#state = { s: 'closed' };
    }
  }

  /** The connection, inside a local call already entered (failed as `invalid-state` when none). */
  #connection(): NetConnection {
    const st = this.#state;
    if (st.s !== 'connected' && st.s !== 'connect-ready') this.#host.failed('invalid-state');
    return st.conn;
  }

  /** A getter of an option: crosses the gate as `wasi:sockets/local` and answers the default. */
  #get<T>(fn: string, value: T): T {
    this.#host.local(fn);
    this.#host.ok();
    return value;
  }

  /** A setter of an option: crosses the gate as `wasi:sockets/local`; options cannot be changed. */
  #set(fn: string): never {
    this.#host.local(fn);
    return this.#host.failed('not-supported');
  }
}

/**
 * Older name of {@link TcpSocket}.
 * @deprecated use TcpSocket
 */
export const Socket = TcpSocket;
/**
 * Older name of {@link TcpSocket}.
 * @deprecated use TcpSocket
 */
export type Socket = TcpSocket;

/**
 * `wasi:sockets/udp.udp-socket`: refused. `start-bind` crosses the gate as `wasi:sockets/udp-bind` and
 * `stream` as `wasi:sockets/udp-send` (with the remote's canonical host and port when given); both fail with
 * `access-denied` when refused or not granted, else `not-supported`. The socket's own state (`finish-bind`,
 * addresses, options) crosses the gate as `wasi:sockets/local` with `detail` = the function (refused:
 * `access-denied`; `address-family` traps). `subscribe` and the drop cross the gate with `detail`
 * `udp-socket`.
 */
export class UdpSocket {
  readonly #host: SocketHost;
  readonly #family: 'ipv4' | 'ipv6';

  /**
   * @param host - what the container's sockets share
   * @param family - `ipv4` or `ipv6`
   * @internal
   */
  constructor(host: SocketHost, family: 'ipv4' | 'ipv6') {
    this.#host = host;
    this.#family = family;
  }

  /**
   * Implements `address-family`.
   * @returns the address family
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  addressFamily(): string {
    this.#host.localOrTrap('address-family');
    this.#host.ok();
    return this.#family;
  }

  /**
   * Implements `start-bind`: crosses the gate, then `not-supported` (or `access-denied`).
   * @param _network - the network handle
   * @param address - local address
   * @throws HostResultError `access-denied`, `not-supported`, `invalid-argument`
   */
  startBind(_network: Network, address: IpSocketAddress): void {
    this.#host.fence(this.#host.ids.udpBind, address);
  }

  /** Implements `finish-bind`. @throws HostResultError `not-in-progress`, `access-denied` */
  finishBind(): void {
    this.#host.local('finish-bind');
    this.#host.failed('not-in-progress');
  }

  /**
   * Implements `stream`: with a remote address, crosses the gate as `udp-send`; always fails.
   * @param remote - the remote address, if any
   * @throws HostResultError `access-denied`, `not-supported`, `invalid-argument`
   */
  stream(remote: IpSocketAddress | undefined): never {
    return this.#host.fence(this.#host.ids.udpSend, remote);
  }

  /** Implements `local-address`. @throws HostResultError `invalid-state` (never bound), `access-denied` */
  localAddress(): never {
    this.#host.local('local-address');
    return this.#host.failed('invalid-state');
  }

  /** Implements `remote-address`. @throws HostResultError `invalid-state` (never connected), `access-denied` */
  remoteAddress(): never {
    this.#host.local('remote-address');
    return this.#host.failed('invalid-state');
  }

  /** A getter of an option: crosses the gate as `wasi:sockets/local` and answers the default. */
  #get<T>(fn: string, value: T): T {
    this.#host.local(fn);
    this.#host.ok();
    return value;
  }

  /** A setter of an option: crosses the gate as `wasi:sockets/local`; options cannot be changed. */
  #set(fn: string): never {
    this.#host.local(fn);
    return this.#host.failed('not-supported');
  }

  /** @returns the default hop limit (64) @throws HostResultError `access-denied` when refused */
  unicastHopLimit(): number {
    return this.#get('unicast-hop-limit', 64);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setUnicastHopLimit(_value: number): void {
    this.#set('set-unicast-hop-limit');
  }

  /** @returns the nominal receive buffer size (64 KiB) @throws HostResultError `access-denied` when refused */
  receiveBufferSize(): bigint {
    return this.#get('receive-buffer-size', 65536n);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setReceiveBufferSize(_value: bigint): void {
    this.#set('set-receive-buffer-size');
  }

  /** @returns the nominal send buffer size (64 KiB) @throws HostResultError `access-denied` when refused */
  sendBufferSize(): bigint {
    return this.#get('send-buffer-size', 65536n);
  }

  /** @param _value - ignored @throws HostResultError `not-supported`, `access-denied` when refused */
  setSendBufferSize(_value: bigint): void {
    this.#set('set-send-buffer-size');
  }

  /**
   * Implements `subscribe`.
   * @returns a pollable, ready at once
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return subscribeResource(this.#host.ctx, 'udp-socket', this.#host.now);
  }

  /** The guest dropped the socket: crosses the gate as `wasi:io/drop`; nothing to free. */
  [DISPOSE](): void {
    gateDrop(this.#host.ctx, 'udp-socket');
  }
}

/**
 * `wasi:sockets/ip-name-lookup.resolve-address-stream`: yields the addresses of a resolved name (decided
 * and recorded by `resolve-addresses`). When built with a host context, `resolve-next-address` crosses the
 * gate as `wasi:sockets/local` (`detail` `resolve-next-address`; refused: `access-denied`; the answer is
 * recomputed from the recorded lookup), `subscribe` and the drop as `wasi:io/subscribe` and `wasi:io/drop`.
 */
export class ResolveAddressStream {
  readonly #addresses: unknown[];
  readonly #now: () => bigint;
  readonly #ctx: HostContext | undefined;
  readonly #local: number;

  /**
   * @param addresses - `ip-address` values
   * @param now - monotonic clock
   * @param ctx - the host context whose gate the guest's calls cross (none: not gated)
   */
  constructor(addresses: unknown[], now: () => bigint, ctx?: HostContext) {
    this.#addresses = addresses;
    this.#now = now;
    this.#ctx = ctx;
    this.#local = ctx === undefined ? -1 : ctx.id('wasi:sockets/local');
  }

  /**
   * Implements `resolve-next-address`.
   * @returns the next address, or undefined at the end
   * @throws HostResultError `access-denied` when the gate refuses
   */
  resolveNextAddress(): unknown {
    const ctx = this.#ctx;
    if (ctx === undefined) return this.#addresses.shift();
    ctx.gate.args.detail = 'resolve-next-address';
    ctx.enterOrWasiError(this.#local, 'access-denied');
    const next = this.#addresses.shift();
    ctx.gate.exit(RESULT_OK);
    return next;
  }

  /**
   * Implements `subscribe`.
   * @returns a pollable, ready at once
   * @throws ForgeError with the refusal code (a trap) when the gate refuses
   */
  subscribe(): Pollable {
    return this.#ctx === undefined ? new Pollable(this.#now) : subscribeResource(this.#ctx, 'resolve-address-stream', this.#now);
  }

  /** The guest dropped the stream: crosses the gate as `wasi:io/drop`; the addresses left are let go. */
  [DISPOSE](): void {
    try {
      if (this.#ctx !== undefined) gateDrop(this.#ctx, 'resolve-address-stream');
    } finally {
      this.#addresses.length = 0;
    }
  }
}

/**
 * `subscribe` of a resource that is always ready (sockets, name lookups, HTTP futures): crosses the gate as
 * `wasi:io/subscribe` with `detail` = the resource; refused, it traps (the function has no error case).
 * @param ctx - the host context
 * @param what - the resource, recorded as `detail`
 * @param now - monotonic clock of the pollable
 * @returns a pollable, ready at once, whose own calls cross the gate too
 * @throws ForgeError with the refusal code when refused
 */
export function subscribeResource(ctx: HostContext, what: string, now: () => bigint): Pollable {
  ctx.gate.args.detail = what;
  ctx.enterOrTrap(ioIds(ctx).subscribe);
  ctx.gate.exit(RESULT_OK);
  return new Pollable(now, -1n, undefined, ctx, what);
}

/**
 * Build `wasi:sockets` (network, instance-network, tcp, tcp-create-socket, udp, udp-create-socket,
 * ip-name-lookup) for one container. `resolve-addresses` crosses the gate as `wasi:sockets/resolve` with
 * the canonical host and needs a grant naming the host (any port); an IP literal answers itself, a name
 * goes to the backend. The answer is recorded (a JSON list of the addresses), and the addresses of a
 * granted name are remembered: a later `start-connect` to one of them is granted by that name's grants.
 * @param ctx - the host context
 * @param o - grants, clock, clean-up registration, optional backend
 * @returns import objects keyed by unversioned interface name
 */
export function socketImports(ctx: HostContext, o: SocketHostOptions): Record<string, Record<string, unknown>> {
  const h = new SocketHost(ctx, o);
  const gate = ctx.gate;
  const network = new Network(ctx);
  return {
    'wasi:sockets/network': {
      Network,
      // Inspecting an error crosses the gate as `wasi:io/error` (a trap when refused: no error case).
      networkErrorCode(err: unknown): string | undefined {
        enterErrorInspection(ctx, 'network-error-code');
        gate.exit(RESULT_OK);
        return err instanceof IoError && err.code === 'NET_FAILED' ? err.message : undefined;
      },
    },
    // Handing out the network and making a socket act on the guest's own state: `wasi:sockets/local`.
    'wasi:sockets/instance-network': {
      instanceNetwork(): Network {
        h.localOrTrap('instance-network');
        h.ok();
        return network;
      },
    },
    'wasi:sockets/tcp': { TcpSocket },
    'wasi:sockets/udp': { UdpSocket },
    'wasi:sockets/tcp-create-socket': {
      createTcpSocket(f: string): TcpSocket {
        h.local('create-tcp-socket');
        if (f !== 'ipv4' && f !== 'ipv6') return h.failed('not-supported');
        h.ok();
        return new TcpSocket(h, f);
      },
    },
    'wasi:sockets/udp-create-socket': {
      createUdpSocket(f: string): UdpSocket {
        h.local('create-udp-socket');
        if (f !== 'ipv4' && f !== 'ipv6') return h.failed('not-supported');
        h.ok();
        return new UdpSocket(h, f);
      },
    },
    'wasi:sockets/ip-name-lookup': {
      ResolveAddressStream,
      resolveAddresses(_network: Network, name: string): ResolveAddressStream {
        let host: string;
        try {
          host = canonicalIp(canonicalHost(name));
        } catch {
          throw new HostResultError('invalid-argument');
        }
        const literal = ipAddressOf(host) !== undefined;
        if (!literal) h.assertCanReach();
        gate.args.host = host;
        ctx.enterOrWasiError(h.ids.resolve, 'access-denied');
        if (!networkGranted(h.grants, host, undefined)) {
          gate.exit(RESULT_REFUSED);
          throw new HostResultError('access-denied');
        }
        let addresses: string[];
        if (literal) addresses = [host];
        else {
          try {
            addresses = h.net().resolve(host).map(canonicalIp);
          } catch (e) {
            const why = netFailureOf(e);
            const reason = LOOKUP_REASONS.has(why) ? (why === 'timeout' ? 'temporary-resolver-failure' : why) : 'permanent-resolver-failure';
            gate.exit(RESULT_FAILED, netFailureBytes(reason));
            throw new HostResultError(reason);
          }
          for (const a of addresses) {
            const names = h.resolved.get(a);
            if (names === undefined) h.resolved.set(a, [host]);
            else if (!names.includes(host)) names.push(host);
          }
        }
        gate.exit(RESULT_OK, encodeAddresses(addresses));
        const values = addresses.map(ipAddressOf).filter((a): a is IpAddress => a !== undefined);
        return new ResolveAddressStream(values, h.now, ctx);
      },
    },
  };
}
