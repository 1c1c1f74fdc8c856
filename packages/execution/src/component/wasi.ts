import { createHash, randomFillSync } from 'node:crypto';
import { ForgeError } from '@forgeone/common';
import type { DirGrant, NetGrant } from '../capabilities.js';
import { canonicalHost } from '../gate/canonical.js';
import { Descriptor, DirectoryEntryStream, createComponentFilesystem } from './filesystem.js';
import { ComponentExit, HostResultError, RESULT_FAILED, RESULT_OK, RESULT_REFUSED, recordedJson, type HostContext } from './host.js';
import { InputStream, IoError, OutputStream, Pollable, pollList, type ByteSink, type ByteSource } from './io.js';

/** A directory granted to the guest (the lead's `DirGrant` from capabilities). */
export type ComponentPreopen = DirGrant;

/** Canonical form of an IPv6 literal (compressed, lowercase); other hosts unchanged. */
function canonicalIp(host: string): string {
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

/** What the WASI 0.2 interfaces need (normalised by `buildComponentImports`). */
export interface WasiHostOptions {
  /** argv. */
  readonly args: readonly string[];
  /** Environment pairs. */
  readonly env: readonly (readonly [string, string])[];
  /** Initial working directory, if any. */
  readonly cwd: string | undefined;
  /** stdout sink. */
  readonly stdout: ByteSink | undefined;
  /** stderr sink. */
  readonly stderr: ByteSink | undefined;
  /** stdin source. */
  readonly stdin: ByteSource | undefined;
  /** Granted directories. */
  readonly preopens: readonly ComponentPreopen[];
  /** Granted network destinations. */
  readonly network: readonly NetGrant[];
  /** Wall clock, ns since the epoch. */
  readonly wallNs: () => bigint;
  /** Monotonic clock, ns. */
  readonly monotonicNs: () => bigint;
  /** Fills a buffer with random bytes (secure and insecure). */
  readonly random: (into: Uint8Array) => void;
  /** Registers a clean-up to run when the container's imports are disposed (host descriptors). */
  readonly onDispose: (fn: () => void) => void;
}

const textEncoder = new TextEncoder();

/**
 * What the record keeps of `get-environment`: the SHA3-256 of the pairs (each name and value as UTF-8,
 * NUL-terminated), never the values, which may be secrets.
 * @param env - the pairs, in the order the guest sees them
 * @returns 32 bytes
 */
export function environmentDigest(env: readonly (readonly [string, string])[]): Uint8Array {
  const h = createHash('sha3-256');
  for (const [k, v] of env) {
    h.update(k, 'utf8');
    h.update('\0');
    h.update(v, 'utf8');
    h.update('\0');
  }
  return new Uint8Array(h.digest());
}

/** Most random bytes one call may ask for. */
export const MAX_RANDOM_BYTES = 1 << 20;


/** `wasi:cli/terminal-input.terminal-input`: never handed out (the guest has no terminal). */
export class TerminalInput {}
/** `wasi:cli/terminal-output.terminal-output`: never handed out (the guest has no terminal). */
export class TerminalOutput {}

/**
 * Build the WASI 0.2 interfaces the host implements: cli, clocks, random, io, filesystem (preopens over the
 * confined filesystem layer, every descriptor method gated), sockets (gated and fenced by network grants).
 * @param ctx - the host context
 * @param o - normalised options
 * @returns import objects keyed by unversioned interface name
 */
export function wasiImports(ctx: HostContext, o: WasiHostOptions): Record<string, Record<string, unknown>> {
  const gate = ctx.gate;
  const mono = o.monotonicNs;
  const ID = {
    args: ctx.id('wasi:cli/args'),
    env: ctx.id('wasi:cli/env'),
    cwd: ctx.id('wasi:cli/cwd'),
    exit: ctx.id('wasi:cli/exit'),
    stdin: ctx.id('wasi:cli/stdin'),
    stdout: ctx.id('wasi:cli/stdout'),
    stderr: ctx.id('wasi:cli/stderr'),
    terminal: ctx.id('wasi:cli/terminal'),
    wall: ctx.id('wasi:clocks/wall-clock'),
    monotonic: ctx.id('wasi:clocks/monotonic-clock'),
    subscribe: ctx.id('wasi:clocks/subscribe'),
    random: ctx.id('wasi:random/random'),
    insecure: ctx.id('wasi:random/insecure'),
    seed: ctx.id('wasi:random/insecure-seed'),
    poll: ctx.id('wasi:io/poll'),
    preopens: ctx.id('wasi:filesystem/preopens'),
  };
  const sleeper = (ms: number): void => ctx.sleep(ms);
  const scratch = new Uint8Array(16);
  const view = new DataView(scratch.buffer);
  const wallBytes = scratch.subarray(0, 12);
  const u64Bytes = scratch.subarray(0, 8);

  const stdout = new OutputStream(ctx, ID.stdout, o.stdout, mono);
  const stderr = new OutputStream(ctx, ID.stderr, o.stderr, mono);
  const stdin = new InputStream(ctx, ID.stdin, o.stdin, mono);

  const randomBytes = (id: number, len: bigint): Uint8Array => {
    if (len > BigInt(MAX_RANDOM_BYTES)) throw new ForgeError('LIMIT_EXCEEDED', `at most ${MAX_RANDOM_BYTES} random bytes per call`);
    const n = Number(len);
    gate.args.size = n;
    ctx.enterOrTrap(id);
    const out = new Uint8Array(n);
    o.random(out);
    gate.exit(RESULT_OK, out);
    return out;
  };
  const randomU64 = (id: number): bigint => {
    gate.args.size = 8;
    ctx.enterOrTrap(id);
    o.random(u64Bytes);
    gate.exit(RESULT_OK, u64Bytes);
    return view.getBigUint64(0, true);
  };

  const fs = filesystemImports(ctx, o);
  const sockets = socketImports(ctx, o);

  return {
    'wasi:cli/environment': {
      // The environment may hold secrets: the record keeps its SHA3-256 (a replay must be given the same
      // environment, and diverges here when it was not); arguments and the cwd are recorded as JSON.
      getEnvironment(): [string, string][] {
        ctx.enterOrTrap(ID.env);
        const env = o.env.map(([k, v]): [string, string] => [k, v]);
        gate.exit(RESULT_OK, environmentDigest(env));
        return env;
      },
      getArguments(): string[] {
        ctx.enterOrTrap(ID.args);
        const args = recordedJson<string[]>(ctx)?.map(String) ?? [...o.args];
        gate.exit(RESULT_OK, textEncoder.encode(JSON.stringify(args)));
        return args;
      },
      initialCwd(): string | undefined {
        ctx.enterOrTrap(ID.cwd);
        const rec = recordedJson<{ cwd: string | null }>(ctx);
        const cwd = rec === undefined ? o.cwd : (rec.cwd ?? undefined);
        gate.exit(RESULT_OK, textEncoder.encode(JSON.stringify({ cwd: cwd ?? null })));
        return cwd;
      },
    },
    'wasi:cli/exit': {
      exit(status: { tag: 'ok' | 'err' }): never {
        gate.args.detail = status.tag;
        ctx.enterOrTrap(ID.exit);
        gate.exit(RESULT_OK);
        throw new ComponentExit(status.tag === 'ok' ? 0 : 1);
      },
      exitWithCode(code: number): never {
        gate.args.detail = String(code);
        ctx.enterOrTrap(ID.exit);
        gate.exit(RESULT_OK);
        throw new ComponentExit(code);
      },
    },
    // Handing out the stream handles is bookkeeping; each read and write crosses the gate.
    'wasi:cli/stdin': { getStdin: (): InputStream => stdin },
    'wasi:cli/stdout': { getStdout: (): OutputStream => stdout },
    'wasi:cli/stderr': { getStderr: (): OutputStream => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: (): undefined => noTerminal(ctx, ID.terminal, 'stdin') },
    'wasi:cli/terminal-stdout': { getTerminalStdout: (): undefined => noTerminal(ctx, ID.terminal, 'stdout') },
    'wasi:cli/terminal-stderr': { getTerminalStderr: (): undefined => noTerminal(ctx, ID.terminal, 'stderr') },
    'wasi:clocks/wall-clock': {
      now(): { seconds: bigint; nanoseconds: number } {
        ctx.enterOrTrap(ID.wall);
        const ns = o.wallNs();
        const seconds = ns / 1_000_000_000n;
        const nanoseconds = Number(ns % 1_000_000_000n);
        view.setBigUint64(0, seconds, true);
        view.setUint32(8, nanoseconds, true);
        gate.exit(RESULT_OK, wallBytes);
        return { seconds, nanoseconds };
      },
      resolution(): { seconds: bigint; nanoseconds: number } {
        gate.args.detail = 'resolution';
        ctx.enterOrTrap(ID.wall);
        gate.exit(RESULT_OK);
        return { seconds: 0n, nanoseconds: 1_000_000 };
      },
    },
    'wasi:clocks/monotonic-clock': {
      now(): bigint {
        ctx.enterOrTrap(ID.monotonic);
        const ns = mono();
        view.setBigUint64(0, ns, true);
        gate.exit(RESULT_OK, u64Bytes);
        return ns;
      },
      resolution(): bigint {
        gate.args.detail = 'resolution';
        ctx.enterOrTrap(ID.monotonic);
        gate.exit(RESULT_OK);
        return 1000n;
      },
      subscribeInstant(when: bigint): Pollable {
        gate.args.detail = 'instant';
        ctx.enterOrTrap(ID.subscribe);
        gate.exit(RESULT_OK);
        return new Pollable(mono, when < 0n ? 0n : when, sleeper);
      },
      subscribeDuration(duration: bigint): Pollable {
        gate.args.detail = 'duration';
        gate.args.size = Number(duration / 1_000_000n);
        ctx.enterOrTrap(ID.subscribe);
        const now = mono();
        gate.exit(RESULT_OK);
        return new Pollable(mono, now + (duration < 0n ? 0n : duration), sleeper);
      },
    },
    'wasi:random/random': {
      getRandomBytes: (len: bigint): Uint8Array => randomBytes(ID.random, len),
      getRandomU64: (): bigint => randomU64(ID.random),
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint): Uint8Array => randomBytes(ID.insecure, len),
      getInsecureRandomU64: (): bigint => randomU64(ID.insecure),
    },
    'wasi:random/insecure-seed': {
      insecureSeed(): [bigint, bigint] {
        gate.args.size = 16;
        ctx.enterOrTrap(ID.seed);
        o.random(scratch);
        gate.exit(RESULT_OK, scratch);
        return [view.getBigUint64(0, true), view.getBigUint64(8, true)];
      },
    },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': {
      Pollable,
      poll(list: Pollable[]): Uint32Array {
        gate.args.size = list.length;
        ctx.enterOrTrap(ID.poll);
        try {
          const ready = pollList(list, mono);
          gate.exit(RESULT_OK);
          return ready;
        } catch (e) {
          gate.exit(RESULT_FAILED);
          throw e;
        }
      },
    },
    'wasi:io/streams': { InputStream, OutputStream },
    ...fs,
    ...sockets,
  };
}

function noTerminal(ctx: HostContext, id: number, which: string): undefined {
  // "Not a terminal" is also the answer when refused: the safe value, with no error case to return.
  ctx.gate.args.detail = which;
  const allowed = ctx.gate.enter(id);
  ctx.gate.exit(allowed ? RESULT_OK : RESULT_REFUSED);
  return undefined;
}

function filesystemImports(ctx: HostContext, o: WasiHostOptions): Record<string, Record<string, unknown>> {
  const { dispose, preopens } = createComponentFilesystem(ctx, o.preopens, o.monotonicNs);
  o.onDispose(dispose);
  const PREOPENS = ctx.id('wasi:filesystem/preopens');
  return {
    'wasi:filesystem/preopens': {
      getDirectories(): [Descriptor, string][] {
        // Refused: the guest sees no directories (the list has no error case; an empty list is the safe answer).
        ctx.gate.args.size = preopens.length;
        const allowed = ctx.gate.enter(PREOPENS);
        ctx.gate.exit(allowed ? RESULT_OK : RESULT_REFUSED);
        return allowed ? preopens.map((d) => [d, d.guestPath]) : [];
      },
    },
    'wasi:filesystem/types': {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode(err: unknown): string | undefined {
        return err instanceof IoError ? err.filesystemCode : undefined;
      },
    },
  };
}

/** `wasi:sockets/network.network`. */
export class Network {}

/** `wasi:sockets/network.ip-socket-address`. */
export type IpSocketAddress =
  | { tag: 'ipv4'; val: { port: number; address: [number, number, number, number] } }
  | { tag: 'ipv6'; val: { port: number; flowInfo: number; address: number[]; scopeId: number } };

function formatAddress(a: IpSocketAddress): { host: string; port: number } {
  if (a.tag === 'ipv4') return { host: a.val.address.join('.'), port: a.val.port };
  return { host: canonicalIp(a.val.address.map((n) => n.toString(16)).join(':')), port: a.val.port };
}

const SOCKET_LOCAL_METHODS = [
  'localAddress', 'remoteAddress', 'setListenBacklogSize', 'keepAliveEnabled', 'setKeepAliveEnabled', 'keepAliveIdleTime',
  'setKeepAliveIdleTime', 'keepAliveInterval', 'setKeepAliveInterval', 'keepAliveCount', 'setKeepAliveCount', 'hopLimit',
  'setHopLimit', 'receiveBufferSize', 'setReceiveBufferSize', 'sendBufferSize', 'setSendBufferSize', 'shutdown',
  'finishBind', 'finishConnect', 'finishListen', 'accept', 'unicastHopLimit', 'setUnicastHopLimit', 'stream',
] as const;

/**
 * A TCP or UDP socket. `start-bind` and `start-connect` cross the gate under `wasi:sockets/tcp-bind|connect`
 * (`udp-bind`) with the canonical host and port; they fail with `access-denied` when the policy refuses or no
 * network grant covers the destination (recorded with result -1), and with `not-supported` when allowed
 * (this adapter has no socket backend yet). Everything else is local socket state: `invalid-state`.
 */
export class Socket {
  readonly #ctx: HostContext;
  readonly #grants: readonly NetGrant[];
  readonly #bindId: number;
  readonly #connectId: number;
  readonly #family: string;
  readonly #now: () => bigint;

  /**
   * @param ctx - host context
   * @param grants - network grants
   * @param bindId - syscall id of bind
   * @param connectId - syscall id of connect (or send, for UDP)
   * @param family - `ipv4` or `ipv6`
   * @param now - monotonic clock
   */
  constructor(ctx: HostContext, grants: readonly NetGrant[], bindId: number, connectId: number, family: string, now: () => bigint) {
    this.#ctx = ctx;
    this.#grants = grants;
    this.#bindId = bindId;
    this.#connectId = connectId;
    this.#family = family;
    this.#now = now;
  }

  /** @returns the address family */
  addressFamily(): string {
    return this.#family;
  }

  /** @returns false: sockets never listen here */
  isListening(): boolean {
    return false;
  }

  /** @returns a pollable, ready at once */
  subscribe(): Pollable {
    return new Pollable(this.#now);
  }

  /**
   * Implements `start-bind`.
   * @param _network - the network handle
   * @param address - local address
   */
  startBind(_network: Network, address: IpSocketAddress): void {
    this.#fence(this.#bindId, address);
  }

  /**
   * Implements `start-connect`.
   * @param _network - the network handle
   * @param address - remote address
   */
  startConnect(_network: Network, address: IpSocketAddress): void {
    this.#fence(this.#connectId, address);
  }

  /** @internal */
  #fence(id: number, address: IpSocketAddress): never {
    let dest: { host: string; port: number };
    try {
      dest = formatAddress(address);
    } catch {
      throw new HostResultError('invalid-argument');
    }
    const gate = this.#ctx.gate;
    gate.args.host = dest.host;
    gate.args.port = dest.port;
    this.#ctx.enterOrWasiError(id, 'access-denied');
    if (!networkGranted(this.#grants, dest.host, dest.port)) {
      gate.exit(RESULT_REFUSED);
      throw new HostResultError('access-denied');
    }
    gate.exit(RESULT_FAILED);
    throw new HostResultError('not-supported');
  }
}

for (const name of SOCKET_LOCAL_METHODS) {
  Object.defineProperty(Socket.prototype, name, {
    value: (): never => {
      throw new HostResultError('invalid-state');
    },
    writable: false,
    enumerable: false,
  });
}

/** `wasi:sockets/ip-name-lookup.resolve-address-stream`: yields the addresses of a resolved name. */
export class ResolveAddressStream {
  readonly #addresses: unknown[];
  readonly #now: () => bigint;

  /**
   * @param addresses - `ip-address` values
   * @param now - monotonic clock
   */
  constructor(addresses: unknown[], now: () => bigint) {
    this.#addresses = addresses;
    this.#now = now;
  }

  /** @returns the next address, or undefined at the end */
  resolveNextAddress(): unknown {
    return this.#addresses.shift();
  }

  /** @returns a pollable, ready at once */
  subscribe(): Pollable {
    return new Pollable(this.#now);
  }
}

function socketImports(ctx: HostContext, o: WasiHostOptions): Record<string, Record<string, unknown>> {
  const gate = ctx.gate;
  const TCP_BIND = ctx.id('wasi:sockets/tcp-bind');
  const TCP_CONNECT = ctx.id('wasi:sockets/tcp-connect');
  const UDP_BIND = ctx.id('wasi:sockets/udp-bind');
  const UDP_SEND = ctx.id('wasi:sockets/udp-send');
  const RESOLVE = ctx.id('wasi:sockets/resolve');
  const network = new Network();
  return {
    'wasi:sockets/network': { Network },
    'wasi:sockets/instance-network': { instanceNetwork: (): Network => network },
    'wasi:sockets/tcp': { TcpSocket: Socket },
    'wasi:sockets/udp': { UdpSocket: Socket },
    'wasi:sockets/tcp-create-socket': {
      createTcpSocket: (family: string): Socket => new Socket(ctx, o.network, TCP_BIND, TCP_CONNECT, family, o.monotonicNs),
    },
    'wasi:sockets/udp-create-socket': {
      createUdpSocket: (family: string): Socket => new Socket(ctx, o.network, UDP_BIND, UDP_SEND, family, o.monotonicNs),
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
        gate.args.host = host;
        ctx.enterOrWasiError(RESOLVE, 'access-denied');
        if (!networkGranted(o.network, host, undefined)) {
          gate.exit(RESULT_REFUSED);
          throw new HostResultError('access-denied');
        }
        const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
        if (v4 !== null) {
          gate.exit(RESULT_OK);
          return new ResolveAddressStream([{ tag: 'ipv4', val: [Number(v4[1]), Number(v4[2]), Number(v4[3]), Number(v4[4])] }], o.monotonicNs);
        }
        // Name resolution needs a host service this adapter does not have yet.
        gate.exit(RESULT_FAILED);
        throw new HostResultError('permanent-resolver-failure');
      },
    },
  };
}

/**
 * Default random source: the operating system's CSPRNG.
 * @param into - buffer to fill
 */
export function osRandom(into: Uint8Array): void {
  randomFillSync(into);
}
