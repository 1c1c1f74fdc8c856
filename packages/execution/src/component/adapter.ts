import { ForgeError } from '@forgeone/common';
import type { Gate } from '../gate/gate.js';
import { denyInterface } from './deny.js';
import { forgeoneImports, type ComponentIdentity, type ComponentInfo } from './forgeone.js';
import { HostContext } from './host.js';
import { httpImports } from './http.js';
import { bufferSource, type ByteSink, type ByteSource } from './io.js';
import type { ComponentImports } from './loader.js';
import { unversioned } from './loader.js';
import type { NetBackend } from './net.js';
import type { HostServices } from './services.js';
import { parseNetGrant, type NetGrant } from '../capabilities.js';
import { osRandom, wasiImports, type ComponentPreopen } from './wasi.js';

/** Clock sources of {@link ComponentImportsOptions}. */
export interface ComponentClocks {
  /** Wall clock, ns since the epoch. */
  readonly wallNs?: () => bigint;
  /**
   * Wall clock in ms since the epoch, for `forgeone:host/time` (no BigInt on the way). Default: from
   * `wallNs` when that is given, else `performance.timeOrigin + performance.now()`.
   */
  readonly wallMs?: () => number;
  /** Monotonic clock, ns from an arbitrary origin. */
  readonly monotonicNs?: () => bigint;
}

/** Options of {@link buildComponentImports}. Everything the guest may reach is off unless given. */
export interface ComponentImportsOptions {
  /** The container's gate: every host function crosses it. */
  readonly gate: Gate;
  /** Host services behind `forgeone:host` (kv, fetch, log). Without them those calls fail with `host-error`. */
  readonly services?: HostServices;
  /** `wasi:cli/environment.get-arguments`; default none. */
  readonly args?: readonly string[];
  /** `wasi:cli/environment.get-environment`; default none. */
  readonly env?: Readonly<Record<string, string>> | readonly (readonly [string, string])[];
  /** `wasi:cli/environment.initial-cwd`; default none. */
  readonly cwd?: string;
  /** Receives what the guest writes to stdout (each write is gated as `wasi:cli/stdout`); dropped when omitted. */
  readonly stdout?: ByteSink;
  /** Receives what the guest writes to stderr (`wasi:cli/stderr`); dropped when omitted. */
  readonly stderr?: ByteSink;
  /** What the guest reads from stdin (`wasi:cli/stdin`): bytes, or a source; empty when omitted. */
  readonly stdin?: Uint8Array | ByteSource;
  /** Directories granted to the guest; default none. */
  readonly preopens?: readonly ComponentPreopen[];
  /**
   * Network destinations `wasi:sockets` and `wasi:http` may reach, as grants or `host:port` strings (`parseNetGrant`);
   * default none. A destination must be granted here and allowed by the policy.
   */
  readonly network?: readonly (NetGrant | string)[];
  /**
   * The backend `wasi:sockets` connects and resolves through. Default: a `createNetBackend()` of the
   * container's own, started on the first allowed connect or name lookup and disposed with the imports
   * ({@link disposeComponentImports}). An injected backend stays open; the connections the container made
   * on it are closed at dispose. A replay passes one that answers from the record (`replayHost(gate).net`).
   */
  readonly net?: NetBackend;
  /** Answer of `forgeone:host/identity.get`. */
  readonly identity?: ComponentIdentity;
  /** Answer of `forgeone:host/info.get`. */
  readonly info?: ComponentInfo;
  /** Clocks (for replay and tests). */
  readonly clocks?: ComponentClocks;
  /** Random source for `wasi:random/*` (for replay and tests); the OS CSPRNG by default. */
  readonly random?: (into: Uint8Array) => void;
  /** Largest kv value, bytes; default 1 MiB. */
  readonly maxValueBytes?: number;
  /** Largest kv key, bytes; default 1 KiB. */
  readonly maxKeyBytes?: number;
  /** Largest log message, bytes; default 64 KiB. */
  readonly maxLogBytes?: number;
}

const noServices: HostServices = {
  kvGet: () => {
    throw new ForgeError('NOT_FOUND', 'no key-value store is attached to this container');
  },
  kvSet: () => {
    throw new ForgeError('NOT_FOUND', 'no key-value store is attached to this container');
  },
  kvDelete: () => {
    throw new ForgeError('NOT_FOUND', 'no key-value store is attached to this container');
  },
  kvList: () => {
    throw new ForgeError('NOT_FOUND', 'no key-value store is attached to this container');
  },
  fetch: () => {
    throw new ForgeError('POLICY_DENIED', 'no network is attached to this container');
  },
  log: () => undefined,
};

/**
 * Build the import object for a component: WASI 0.2 (cli, clocks, random, io, filesystem, sockets) and
 * `wasi:http` (outgoing requests through `services.fetch`) and `forgeone:host` (log, kv, http, identity,
 * info, time), every function crossing the gate. The object answers any interface name: interfaces (and
 * members) the adapter does not implement (the `wasi:http` server side, or anything else a component
 * imports) get a deny interface whose functions cross the gate under the nearest catalogue
 * syscall and trap, so every component instantiates and every attempt is recorded. Keys are unversioned
 * (`wasi:cli/stdout`); a versioned key is answered as its unversioned name.
 *
 * @example
 * ```ts
 * const services = createMemoryServices();
 * const imports = buildComponentImports({ gate, services, stdout: (b) => out.push(b) });
 * const result = runComponent(await transpileComponent(bytes), imports, { input: 'hello' });
 * ```
 * @param options - gate, services and grants
 * @returns the import object (pass to `LoadedComponent.instantiate` or `runComponent`)
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed network grant or preopen path, `IO_ERROR` when a
 *   preopen's host directory cannot be opened
 */
export function buildComponentImports(options: ComponentImportsOptions): ComponentImports {
  const ctx = new HostContext(options.gate);
  const origin = performance.timeOrigin;
  const hr0 = process.hrtime.bigint();
  const wallNs = options.clocks?.wallNs ?? ((): bigint => BigInt(Math.round((origin + performance.now()) * 1e6)));
  const monotonicNs = options.clocks?.monotonicNs ?? ((): bigint => process.hrtime.bigint() - hr0);
  const env = options.env === undefined ? [] : Array.isArray(options.env) ? (options.env as readonly (readonly [string, string])[]) : Object.entries(options.env as Record<string, string>);
  const stdin = options.stdin === undefined ? undefined : options.stdin instanceof Uint8Array ? bufferSource(options.stdin.slice()) : options.stdin;
  const network = (options.network ?? []).map((g) => (typeof g === 'string' ? parseNetGrant(g) : g));
  const cleanups: (() => void)[] = [];
  const implemented: Record<string, Record<string, unknown>> = {
    ...wasiImports(ctx, {
      args: options.args ?? [],
      env,
      cwd: options.cwd,
      stdout: options.stdout,
      stderr: options.stderr,
      stdin,
      preopens: options.preopens ?? [],
      network,
      wallNs,
      monotonicNs,
      random: options.random ?? osRandom,
      onDispose: (fn) => cleanups.push(fn),
      net: options.net,
    }),
    ...httpImports(ctx, options.services ?? noServices, network, monotonicNs),
    ...forgeoneImports(ctx, {
      services: options.services ?? noServices,
      identity: options.identity,
      info: options.info,
      nowMs: options.clocks?.wallMs ?? (options.clocks?.wallNs === undefined ? (): number => origin + performance.now() : (): number => Number(wallNs() / 1_000_000n)),
      maxValueBytes: options.maxValueBytes ?? 1 << 20,
      maxKeyBytes: options.maxKeyBytes ?? 1024,
      maxLogBytes: options.maxLogBytes ?? 64 * 1024,
    }),
  };
  const objects = new Map<string, Record<string, unknown>>();
  const imports = new Proxy(Object.create(null) as ComponentImports, {
    get(_target, prop) {
      if (typeof prop !== 'string') return undefined;
      const key = unversioned(prop);
      let obj = objects.get(key);
      if (obj === undefined) {
        // Implemented interfaces are still wrapped: a function the adapter lacks (a newer WASI minor) denies.
        obj = denyInterface(ctx, key, implemented[key] ?? {});
        objects.set(key, obj);
      }
      return obj;
    },
    has: () => true,
  });
  disposers.set(imports, () => {
    for (const fn of cleanups.splice(0)) fn();
  });
  return imports;
}

const disposers = new WeakMap<object, () => void>();

/**
 * Release what an import object holds on the host (the descriptors of its confined filesystem, its sockets
 * and network thread). Call it when the container ends; later filesystem calls of the guest fail with
 * `bad-descriptor`, socket calls with `invalid-state`. Idempotent.
 * @param imports - an import object from {@link buildComponentImports}
 */
export function disposeComponentImports(imports: ComponentImports): void {
  disposers.get(imports)?.();
}
