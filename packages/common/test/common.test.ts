import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ErrorCodes,
  ForgeError,
  TrustLevel,
  canonicalJson,
  compareSemver,
  compareTrust,
  createIdentity,
  createManualClock,
  decodeUtf8Strict,
  fail,
  fromHex,
  idTime,
  isForgeError,
  isId,
  meetsTrust,
  newId,
  parseSemver,
  toForgeError,
  toHex,
  trustVector,
  unwrap,
} from '../src/index.js';

describe('ForgeError', () => {
  it('carries a stable code, status and cause, and is recognised by shape not instanceof', () => {
    const cause = new Error('disk');
    const e = new ForgeError('IO_ERROR', 'write failed', { cause, details: { path: '/x' } });
    expect(e.code).toBe('IO_ERROR');
    expect(e.retryable).toBe(true);
    expect(e.status).toBe(500);
    expect(e.cause).toBe(cause);
    expect(e.toJSON()).toEqual({ code: 'IO_ERROR', message: 'write failed', retryable: true, details: { path: '/x' } });
    const foreign = { name: 'ForgeError', code: 'PKG_EXPIRED', message: 'x' };
    expect(isForgeError(foreign)).toBe(true);
    expect(isForgeError({ name: 'ForgeError', code: 'NOPE' })).toBe(false);
    expect(isForgeError(new Error('x'))).toBe(false);
  });

  it('normalises unknown throws to INTERNAL keeping the cause', () => {
    const e = toForgeError(new TypeError('boom'));
    expect(e.code).toBe('INTERNAL');
    expect(e.cause).toBeInstanceOf(TypeError);
    expect(toForgeError('str', 'IO_ERROR').code).toBe('IO_ERROR');
  });

  it('every code has a description and an HTTP status', () => {
    for (const [code, info] of Object.entries(ErrorCodes)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(info.description.length).toBeGreaterThan(5);
      expect(info.status).toBeGreaterThanOrEqual(400);
    }
  });

  it('Result helpers', () => {
    const r = fail('PKG_EXPIRED', 'old');
    expect(r.ok).toBe(false);
    expect(() => unwrap(r)).toThrow(ForgeError);
    expect(unwrap({ ok: true, value: 3 })).toBe(3);
  });
});

describe('trust', () => {
  it('orders levels from Compromised to Root and by score within a level', () => {
    expect(TrustLevel.Compromised).toBeLessThan(TrustLevel.Untrusted);
    expect(TrustLevel.Trusted).toBeLessThan(TrustLevel.Root);
    expect(compareTrust(trustVector('Verified', 0.2), trustVector('Verified', 0.9))).toBeLessThan(0);
    expect(compareTrust(trustVector('Trusted', 0), trustVector('Verified', 1))).toBeGreaterThan(0);
  });
  it('Compromised never meets any threshold', () => {
    expect(meetsTrust(trustVector('Compromised'), TrustLevel.Compromised)).toBe(false);
    expect(meetsTrust(trustVector('Verified', 0.5), TrustLevel.Verified, 0.6)).toBe(false);
    expect(meetsTrust(trustVector('Trusted', 0), TrustLevel.Verified, 0.6)).toBe(true);
  });
  it('rejects bad levels and scores', () => {
    expect(() => trustVector('Verified', 1.5)).toThrow(/score/);
    expect(() => trustVector(9 as never)).toThrow(/level/);
  });
});

describe('identity', () => {
  it('normalises roles and freezes', () => {
    const id = createIdentity({ subject: 'plugin:hello', roles: ['b', 'a', 'b'] });
    expect(id.roles).toEqual(['a', 'b']);
    expect(id.tenant).toBe('default');
    expect(id.trust.level).toBe(TrustLevel.Untrusted);
    expect(Object.isFrozen(id)).toBe(true);
  });
  it('rejects names that are unsafe in logs and patterns', () => {
    for (const bad of ['', ' x', 'a b', 'x\n', '../etc', 'a'.repeat(300)]) {
      expect(() => createIdentity({ subject: bad })).toThrow(ForgeError);
    }
  });
});

describe('ids and clock', () => {
  it('ids are well formed, unique and carry their time', () => {
    const t = Date.UTC(2026, 10, 23);
    const a = newId('ctr', t);
    expect(isId(a, 'ctr')).toBe(true);
    expect(isId(a, 'trc')).toBe(false);
    expect(idTime(a)).toBe(t);
    expect(newId('ctr', t)).not.toBe(a);
    expect(newId('ctr', t + 1) > a).toBe(true);
  });
  it('manual clock moves only when told', () => {
    const c = createManualClock(1000);
    expect(c.now()).toBe(1000);
    c.advance(500);
    expect(c.now()).toBe(1500);
    expect(c.monotonicNs()).toBe(500_000_000n);
  });
});

describe('bytes and canonical JSON', () => {
  it('hex round-trips and rejects junk', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        expect(fromHex(toHex(b))).toEqual(b);
      }),
    );
    expect(() => fromHex('abc')).toThrow(ForgeError);
    expect(() => fromHex('zz')).toThrow(ForgeError);
    expect(() => fromHex('00', 2)).toThrow(ForgeError);
  });
  it('strict UTF-8 refuses invalid sequences', () => {
    expect(decodeUtf8Strict(new Uint8Array([0x68, 0x69]))).toBe('hi');
    expect(decodeUtf8Strict(new Uint8Array([0xc3, 0x28]))).toBeUndefined();
    expect(decodeUtf8Strict(new Uint8Array([0xed, 0xa0, 0x80]))).toBeUndefined();
  });
  it('canonical JSON sorts keys, drops undefined and refuses floats', () => {
    expect(canonicalJson({ b: 1, a: [true, 'x', null], c: undefined })).toBe('{"a":[true,"x",null],"b":1}');
    expect(() => canonicalJson({ x: 1.5 })).toThrow(/safe integers/);
    expect(() => canonicalJson({ x: '\ud800' })).toThrow(/surrogate/);
    expect(canonicalJson({ x: '😀' })).toBe('{"x":"😀"}');
  });
  it('canonical JSON is stable under key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.integer()), (d) => {
        const reversed = Object.fromEntries(Object.entries(d).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(d));
        expect(JSON.parse(canonicalJson(d))).toEqual(d);
      }),
    );
  });
});

describe('semver', () => {
  it('follows SemVer 2.0.0 precedence', () => {
    const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '2.0.0'];
    for (let i = 1; i < ordered.length; i++) expect(compareSemver(ordered[i - 1]!, ordered[i]!)).toBeLessThan(0);
    expect(compareSemver('1.0.0+a', '1.0.0+b')).toBe(0);
  });
  it('rejects malformed versions', () => {
    for (const bad of ['1', '1.0', '01.0.0', '1.0.0-', 'v1.0.0', '1.0.0-01', '99999999999999999999.0.0']) {
      expect(parseSemver(bad)).toBeUndefined();
    }
  });
});

describe('syscall table', () => {
  it('interns names to dense ids and back', async () => {
    const { SyscallTable, KNOWN_SYSCALLS } = await import('../src/index.js');
    const t = new SyscallTable(KNOWN_SYSCALLS);
    expect(t.size).toBe(KNOWN_SYSCALLS.length);
    expect(t.id('wasi:cli/stdout')).toBe(KNOWN_SYSCALLS.indexOf('wasi:cli/stdout'));
    expect(t.name(t.id('forgeone:kv/get'))).toBe('forgeone:kv/get');
    expect(t.intern('wasi:cli/stdout')).toBe(t.id('wasi:cli/stdout'));
    expect(t.id('custom:x/y')).toBe(-1);
    expect(t.intern('custom:x/y')).toBe(KNOWN_SYSCALLS.length);
    expect(() => t.intern('Bad Name')).toThrow(ForgeError);
  });
});

describe('formatFieldPath', () => {
  it('renders validator paths', async () => {
    const { formatFieldPath } = await import('../src/index.js');
    expect(formatFieldPath(['nodes', 'base', 'rules', 0, 'action'])).toBe('nodes.base.rules[0].action');
    expect(formatFieldPath([])).toBe('$');
  });
});
