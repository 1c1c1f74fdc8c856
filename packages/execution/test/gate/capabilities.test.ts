import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import { describe, expect, it } from 'vitest';
import { Gate, capabilityPolicy, intersectPolicies, parseDirGrant, parseNetGrant, type Capabilities } from '../../src/index.js';

const syscalls = new SyscallTable(KNOWN_SYSCALLS);
const identity = createIdentity({ subject: 'plugin:caps', trust: trustVector('Verified') });

function gateFor(caps: Capabilities, kernelYaml?: string) {
  const capProgram = compilePolicy(parsePolicy(capabilityPolicy(caps)).policy, { identity, syscalls });
  const kernel = kernelYaml === undefined ? undefined : compilePolicy(parsePolicy(kernelYaml).policy, { identity, syscalls });
  const policy = kernel === undefined ? { mode: 'enforce' as const, decide: capProgram.decide.bind(capProgram) } : intersectPolicies({ mode: 'enforce', decide: kernel.decide.bind(kernel) }, capProgram);
  return new Gate({ syscalls, policy });
}

function tryCall(gate: Gate, name: string, args: { path?: string; host?: string; port?: number } = {}): string {
  Object.assign(gate.args, args);
  const ok = gate.enter(syscalls.id(name));
  gate.exit(ok ? 0 : -1);
  return ok ? 'allow' : `${gate.refusal} ${gate.decision?.rule ?? ''}`.trim();
}

describe('capabilities', () => {
  it('parses --dir and --allow-net like wasmtime', () => {
    expect(parseDirGrant('/tmp/x::/data')).toEqual({ hostPath: '/tmp/x', guestPath: '/data' });
    expect(parseDirGrant('/srv/www')).toEqual({ hostPath: '/srv/www', guestPath: '/srv/www' });
    expect(parseNetGrant('API.Example.com:443')).toEqual({ host: 'api.example.com', port: 443 });
    expect(parseNetGrant('*.Example.com:8443')).toEqual({ host: '*.example.com', port: 8443 });
    expect(() => parseNetGrant('example.com')).toThrow(/HOST:PORT/);
    expect(() => parseNetGrant('example.com:70000')).toThrow(/HOST:PORT/);
  });

  it('the default sandbox: stdio, clocks and random only; no files, env, args or network', () => {
    const gate = gateFor({});
    expect(tryCall(gate, 'wasi:cli/stdout')).toBe('allow');
    expect(tryCall(gate, 'wasi:clocks/wall-clock')).toBe('allow');
    expect(tryCall(gate, 'wasi:random/random')).toBe('allow');
    expect(tryCall(gate, 'wasi:cli/env')).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'wasi:cli/args')).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'wasi:filesystem/open', { path: '/etc/passwd' })).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'wasi:sockets/tcp-connect', { host: 'example.com', port: 443 })).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'forgeone:kv/get')).toBe('POLICY_DENIED');
  });

  it('grants exactly the directories, read-only where asked, and the host:port pairs given', () => {
    const gate = gateFor({ dirs: [{ hostPath: '/tmp/a', guestPath: '/data' }, { hostPath: '/tmp/b', guestPath: '/etc-ro', readOnly: true }], net: [{ host: 'api.example.com', port: 443 }] });
    expect(tryCall(gate, 'wasi:filesystem/open', { path: '/data/x.txt' })).toBe('allow');
    expect(tryCall(gate, 'wasi:filesystem/write', { path: '/data/x.txt' })).toBe('allow');
    expect(tryCall(gate, 'wasi:filesystem/read', { path: '/etc-ro/conf' })).toBe('allow');
    expect(tryCall(gate, 'wasi:filesystem/write', { path: '/etc-ro/conf' })).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'wasi:filesystem/open', { path: '/database' })).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'wasi:sockets/tcp-connect', { host: 'api.example.com', port: 443 })).toBe('allow');
    expect(tryCall(gate, 'wasi:sockets/tcp-connect', { host: 'api.example.com', port: 80 })).toBe('POLICY_DENIED');
    expect(tryCall(gate, 'forgeone:http/fetch', { host: 'evil.example.net', port: 443 })).toBe('POLICY_DENIED');
  });

  it('intersected with a kernel policy, a call needs both; the kernel names the allowing rule', () => {
    const kernel = `
apiVersion: forgeone.policy/v1
name: kernel
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no-secrets, action: deny, syscalls: ["wasi:filesystem/*"], args: { path: { match: ["/data/secret/**"] } } }
      - { id: audit-open, action: audit, syscalls: ["wasi:filesystem/open"] }
`;
    const gate = gateFor({ dirs: [{ hostPath: '/tmp/a', guestPath: '/data' }] }, kernel);
    expect(tryCall(gate, 'wasi:filesystem/open', { path: '/data/x' })).toBe('allow');
    expect(gate.decision?.rule).toBe('base/audit-open');
    expect(tryCall(gate, 'wasi:filesystem/open', { path: '/data/secret/key' })).toBe('POLICY_DENIED base/no-secrets');
    // the kernel allows everything else by default, but the capabilities do not grant it
    expect(tryCall(gate, 'wasi:cli/env')).toBe('POLICY_DENIED');
  });
});
