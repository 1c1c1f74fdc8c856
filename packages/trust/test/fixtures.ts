import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector, type IdentityContext } from '@forgeone/common';
import type { CallContext } from '../src/index.js';

export const NOW = Date.UTC(2026, 10, 23, 10, 0, 0); // a Monday, 10:00 UTC

export function ctx(over: Partial<CallContext> = {}): CallContext {
  return { now: NOW, calls: 0, rate: 0, denied: 0, anomaly: 0, path: undefined, host: undefined, port: undefined, size: undefined, detail: undefined, ...over };
}

export function table(): SyscallTable {
  return new SyscallTable(KNOWN_SYSCALLS);
}

export const alice: IdentityContext = createIdentity({ subject: 'plugin:hello', tenant: 'acme', roles: ['reader'], attributes: { region: 'eu' }, trust: trustVector('Verified', 0.9) });
export const mallory: IdentityContext = createIdentity({ subject: 'plugin:rogue', tenant: 'evil', roles: [], trust: trustVector('Untrusted', 0.2) });

export const POLICY_YAML = `
apiVersion: forgeone.policy/v1
name: default
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - id: stdout
        action: allow
        syscalls: ["wasi:cli/stdout", "wasi:cli/stderr"]
      - id: clocks
        action: allow
        syscalls: ["wasi:clocks/*"]
      - id: read-data
        action: allow
        syscalls: ["wasi:filesystem/open", "wasi:filesystem/read"]
        args: { path: { match: ["/data/**"] } }
        reason: read-only access to /data
      - id: no-secrets
        action: deny
        syscalls: ["wasi:filesystem/*"]
        args: { path: { match: ["/data/secrets/**"] } }
        reason: secrets are never readable
      - id: kv
        action: rate-limit
        syscalls: ["forgeone:kv/*"]
        rateLimit: { perSecond: 2, burst: 2 }
      - id: fetch
        action: audit
        syscalls: ["forgeone:http/fetch"]
        args: { host: { in: ["api.example.com", "*.example.org"] }, port: { in: [443] } }
  untrusted:
    description: what untrusted code may never do
    rules:
      - id: no-network
        action: quarantine
        syscalls: ["wasi:sockets/*"]
        reason: untrusted code opening sockets is compromised
  trusted:
    rules:
      - id: any-fetch
        action: allow
        syscalls: ["forgeone:http/fetch"]
edges:
  - { from: base, to: untrusted, kind: extends, when: { trust: { maxLevel: Limited } } }
  - { from: base, to: trusted, kind: extends, when: { trust: { minLevel: Verified } } }
`;
