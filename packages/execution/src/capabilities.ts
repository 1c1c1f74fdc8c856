import { ForgeError } from '@forgeone/common';
import type { CallContext, Decision, Policy } from '@forgeone/trust';
import { canonicalHost, canonicalPath } from './gate/canonical.js';
import type { GatePolicy } from './gate/gate.js';

/** A host directory made visible to the guest at a guest path. */
export interface DirGrant {
  /** Directory on the host. */
  readonly hostPath: string;
  /** Absolute guest path it appears at. */
  readonly guestPath: string;
  /** When true, the guest may read but not change anything below it. */
  readonly readOnly?: boolean;
}

/** An allowed network destination. */
export interface NetGrant {
  /** Canonical host (lowercase), or `*.example.com` for any subdomain. */
  readonly host: string;
  /** Port. */
  readonly port: number;
}

/**
 * What a guest may use: the sandbox gives it nothing else (no preopens, no env, no args, no network by
 * default). Built from a package manifest's requests, or from `forgeone exec` options.
 */
export interface Capabilities {
  /** Arguments the guest sees (`argv[0]` first). */
  readonly args?: readonly string[];
  /** Environment variables the guest sees. */
  readonly env?: Readonly<Record<string, string>>;
  /** Directories. */
  readonly dirs?: readonly DirGrant[];
  /** Network destinations (sockets and HTTP). */
  readonly net?: readonly NetGrant[];
  /** Standard input, output and error (default true). */
  readonly stdio?: boolean;
  /** Wall and monotonic clocks (default true). */
  readonly clocks?: boolean;
  /** Random numbers (default true). */
  readonly random?: boolean;
  /** ForgeOne's key-value store (default false). */
  readonly kv?: boolean;
  /** ForgeOne's log (default true). */
  readonly log?: boolean;
}

/**
 * Parse a `HOST::GUEST` directory option (as `wasmtime run --dir`); `HOST` alone maps to the same path.
 * @param spec - the option value
 * @returns the grant
 * @throws ForgeError `INVALID_ARGUMENT` when the guest path is not absolute
 */
export function parseDirGrant(spec: string): DirGrant {
  const at = spec.indexOf('::');
  const hostPath = at < 0 ? spec : spec.slice(0, at);
  let guestPath = at < 0 ? spec : spec.slice(at + 2);
  if (!guestPath.startsWith('/')) guestPath = `/${guestPath}`;
  if (hostPath === '') throw new ForgeError('INVALID_ARGUMENT', `--dir ${spec}: the host directory is empty`);
  return { hostPath, guestPath: canonicalPath(guestPath) };
}

/**
 * Parse a `HOST:PORT` network option.
 * @param spec - the option value (`api.example.com:443`, `[::1]:8080`, `*.example.com:443`)
 * @returns the grant with the host canonicalised
 * @throws ForgeError `INVALID_ARGUMENT` when the port is missing or out of range
 */
export function parseNetGrant(spec: string): NetGrant {
  const at = spec.lastIndexOf(':');
  const port = Number(spec.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ForgeError('INVALID_ARGUMENT', `--allow-net ${spec}: expected HOST:PORT with a port from 1 to 65535`);
  }
  const raw = spec.slice(0, at);
  const host = raw.startsWith('*.') ? `*.${canonicalHost(raw.slice(2))}` : canonicalHost(raw);
  return { host, port };
}

/**
 * Syscalls every capability policy allows (rule `plumbing`): the bookkeeping of the guest's own handles
 * (`check-write`, `flush`, `subscribe`, `ready`, `block`, drops, `wasi:io/error` inspection, `wasi:http` header
 * maps, the accessors of the guest's own requests and of responses already received, local socket state)
 * and `wasi:filesystem/preopens` (the answer is empty unless directories are granted). None reaches anything
 * outside the guest (the real egress — the outgoing-handler call, connect, resolve — is gated separately);
 * refused, they return the interface's error variant, or trap where it has none.
 */
export const PLUMBING_SYSCALLS: readonly string[] = Object.freeze([
  'wasi:io/check-write',
  'wasi:io/flush',
  'wasi:io/subscribe',
  'wasi:io/ready',
  'wasi:io/block',
  'wasi:io/drop',
  'wasi:io/error',
  'wasi:http/fields-*',
  'wasi:http/request-local',
  'wasi:http/response-local',
  'wasi:sockets/local',
  'wasi:filesystem/preopens',
]);

/**
 * The policy that allows exactly what a set of capabilities grants and denies everything else. Laid over
 * the kernel's policy with {@link intersectPolicies}, a call goes through only when both allow it.
 * @param caps - the capabilities
 * @param name - the policy name; default `capabilities`
 * @returns a policy document (docs/policy.md)
 */
export function capabilityPolicy(caps: Capabilities, name = 'capabilities'): Policy {
  type R = Policy['nodes'][string]['rules'][number];
  const rules: R[] = [];
  const allow = (id: string, syscalls: string[], extra: Partial<R> = {}): void => {
    rules.push({ id, action: 'allow', syscalls, ...extra } as R);
  };
  allow('exit', ['wasi:cli/exit', 'wasi:cli/sched-yield', 'wasi:io/poll', 'wasi:clocks/subscribe', 'forgeone:identity/get', 'forgeone:info/get']);
  if (caps.stdio !== false) allow('stdio', ['wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:cli/terminal', 'wasi:io/read', 'wasi:io/write']);
  if (caps.clocks !== false) allow('clocks', ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock', 'forgeone:time/now']);
  if (caps.random !== false) allow('random', ['wasi:random/*']);
  if (caps.log !== false) allow('log', ['forgeone:log/write']);
  if (caps.kv === true) allow('kv', ['forgeone:kv/*']);
  // Given (even empty) means granted: an empty list reveals nothing, and wasi-libc exits 71 when refused.
  if (caps.args !== undefined) allow('args', ['wasi:cli/args']);
  if (caps.env !== undefined) allow('env', ['wasi:cli/env']);
  const dirs = caps.dirs ?? [];
  if (dirs.length > 0) {
    allow('preopens', ['wasi:filesystem/preopens', 'wasi:cli/cwd']);
    const all = dirs.map((d) => `${d.guestPath === '/' ? '' : d.guestPath}/**`);
    const writable = dirs.filter((d) => d.readOnly !== true).map((d) => `${d.guestPath === '/' ? '' : d.guestPath}/**`);
    const reads = ['wasi:filesystem/open', 'wasi:filesystem/read', 'wasi:filesystem/stat', 'wasi:filesystem/readdir', 'wasi:filesystem/readlink', 'wasi:filesystem/advise', 'wasi:filesystem/sync'];
    allow('dirs-read', reads, { args: { path: { match: all } } } as Partial<R>);
    if (writable.length > 0) {
      const writes = [
        'wasi:filesystem/write',
        'wasi:filesystem/create-directory',
        'wasi:filesystem/remove-file',
        'wasi:filesystem/remove-directory',
        'wasi:filesystem/rename',
        'wasi:filesystem/link',
        'wasi:filesystem/symlink',
        'wasi:filesystem/set-size',
        'wasi:filesystem/set-times',
      ];
      allow('dirs-write', writes, { args: { path: { match: writable } } } as Partial<R>);
    }
  }
  const net = caps.net ?? [];
  const byPort = new Map<number, string[]>();
  for (const g of net) byPort.set(g.port, [...(byPort.get(g.port) ?? []), g.host]);
  for (const [port, hosts] of byPort) {
    allow(`net-${port}`, ['wasi:sockets/resolve', 'wasi:sockets/tcp-connect', 'wasi:sockets/tcp-send', 'wasi:sockets/tcp-receive', 'wasi:sockets/udp-send', 'wasi:sockets/udp-receive', 'wasi:http/outgoing-request', 'forgeone:http/fetch'], {
      args: { host: { in: hosts }, port: { in: [port] } },
    } as Partial<R>);
  }
  if (net.length > 0) allow('net-lookup', ['wasi:sockets/resolve'], { args: { host: { in: [...new Set(net.map((g) => g.host))] } } } as Partial<R>);
  // A socket connected to an address a granted name resolved to carries the address as its host and the
  // name as its detail: the grant of the name covers it (the kernel's own rules still see the address).
  for (const [port, hosts] of byPort) {
    const names = hosts.filter((h) => !isIpLiteral(h));
    if (names.length > 0) {
      allow(`net-${port}-resolved`, ['wasi:sockets/tcp-connect', 'wasi:sockets/tcp-send', 'wasi:sockets/tcp-receive'], {
        args: { detail: { in: names }, port: { in: [port] } },
      } as Partial<R>);
    }
  }
  // Bookkeeping of the guest's own handles (stream and pollable plumbing, drops, header maps) reaches
  // nothing outside: always allowed, like asking for the preopens (the answer is empty when none is granted).
  allow('plumbing', [...PLUMBING_SYSCALLS]);
  return {
    apiVersion: 'forgeone.policy/v1',
    name,
    version: 1,
    defaultAction: 'deny',
    root: 'granted',
    nodes: { granted: { description: 'what the capabilities grant', rules } },
    edges: [],
  } as Policy;
}

// An IPv4 or IPv6 literal (canonical text): not a name a guest can resolve.
function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/**
 * A gate policy that lets a call through only when both policies do: the first refusal decides (the
 * capability policy's refusal names `granted/...`), otherwise the kernel policy's decision (so audit
 * verdicts and rule names come from it). Allocation-free.
 * @param kernel - the kernel's policy for the container
 * @param capabilities - the capability policy ({@link capabilityPolicy}, compiled)
 * @returns the combined policy; its mode is the kernel policy's
 */
export function intersectPolicies(kernel: GatePolicy, capabilities: { decide(id: number, ctx: CallContext): Decision }): GatePolicy {
  return {
    get mode() {
      return kernel.mode;
    },
    decide(id: number, ctx: CallContext): Decision {
      const cap = capabilities.decide(id, ctx);
      if (cap.verdict === 'deny' || cap.verdict === 'quarantine') return cap;
      return kernel.decide(id, ctx);
    },
  };
}
