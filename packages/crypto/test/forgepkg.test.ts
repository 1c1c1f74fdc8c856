import { describe, expect, it } from 'vitest';
import { canonicalJson, concatBytes, utf8 } from '@forgeone/common';
import {
  DEFAULT_PACKAGE_LIMITS,
  NobleCryptoProvider,
  SigningKey,
  createMemoryTrustState,
  createPackageVerifier,
  encodePackage,
  nextTrustRoot,
  parsePackage,
  signTrustRoot,
  type Manifest,
} from '../src/index.js';
import { DAY, T0, WASM, fixture, samplePackage, type Fixture } from './helpers.js';

function verifier(f: Fixture) {
  return createPackageVerifier({ provider: f.provider, trustRoot: f.trustRoot, clock: f.clock });
}

function codeOf(r: { ok: boolean; error?: { code: string } }): string | null {
  return r.ok ? null : r.error!.code;
}

const be16 = (n: number) => Uint8Array.from([n >> 8, n & 255]);
const be32 = (n: number) => Uint8Array.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const MAGIC = utf8('FORGEPKG');

/** Write a package by hand, with no checks, to make hostile input. */
function raw(o: { manifest: string | Uint8Array; entries: { name: Uint8Array | string; content: Uint8Array; size?: number }[]; count?: number; sigs?: Uint8Array; version?: number }): Uint8Array {
  const m = typeof o.manifest === 'string' ? utf8(o.manifest) : o.manifest;
  const parts = [MAGIC, be16(o.version ?? 1), be16(0), be32(m.length), m, be32(o.count ?? o.entries.length)];
  for (const e of o.entries) {
    const n = typeof e.name === 'string' ? utf8(e.name) : e.name;
    parts.push(be16(n.length), n, be32(e.size ?? e.content.length), e.content);
  }
  parts.push(o.sigs ?? be16(0));
  return concatBytes(...parts);
}

function manifestFor(f: Fixture, names: string[]): { text: string; manifest: Manifest } {
  const files: Record<string, { sha3_256: string; size: number }> = {};
  for (const n of names) files[n] = { sha3_256: Buffer.from(f.provider.sha3_256(WASM)).toString('hex'), size: WASM.length };
  const manifest = {
    schema: 1,
    name: 'hostile',
    version: '1.0.0',
    description: '',
    author: '',
    created: '2026-11-01T00:00:00Z',
    expires: '2027-11-01T00:00:00Z',
    entry: names[0] ?? 'x',
    files,
    capabilities: [],
    dependencies: {},
    metadata: {},
  } as Manifest;
  return { text: canonicalJson(manifest), manifest };
}

describe('.forgepkg build, sign, verify', () => {
  it('round-trips: 3-of-5 verifies under both providers and reports signers, threshold and digest', () => {
    const f = fixture({ nPkg: 5, k: 3 });
    const pkg = samplePackage(f, f.packageKeys.slice(0, 3));
    const r = verifier(f).verify(pkg);
    if (!r.ok) throw r.error;
    expect(r.value.manifest.name).toBe('hello');
    expect(r.value.signers).toHaveLength(3);
    expect(r.value.threshold).toBe(3);
    expect(r.value.digest).toMatch(/^[0-9a-f]{64}$/);
    expect([...r.value.files.keys()]).toEqual(['README.md', 'data/config.json', 'hello.wasm']);
    expect(r.value.files.get('hello.wasm')).toEqual(WASM);
    const noble = createPackageVerifier({ provider: new NobleCryptoProvider(), trustRoot: f.trustRoot, clock: f.clock });
    expect(codeOf(noble.verify(pkg))).toBeNull();
  });

  it('signing twice with one key keeps one entry', () => {
    const f = fixture();
    const k = f.packageKeys[0]!;
    const pkg = samplePackage(f, [k, k, k]);
    const parsed = parsePackage(pkg);
    expect(parsed.ok && parsed.value.signatures.length).toBe(1);
  });

  it('a flipped content byte fails with PKG_HASH_MISMATCH', () => {
    const f = fixture();
    const pkg = samplePackage(f, f.packageKeys.slice(0, 3));
    const at = Buffer.from(pkg).indexOf(Buffer.from('{"greeting"'));
    pkg[at + 3]! ^= 0x20;
    expect(codeOf(verifier(f).verify(pkg))).toBe('PKG_HASH_MISMATCH');
  });

  it('an expired package fails with PKG_EXPIRED, judged at one start time', () => {
    const f = fixture();
    const pkg = samplePackage(f, f.packageKeys.slice(0, 3), { validDays: 1 });
    expect(codeOf(verifier(f).verify(pkg))).toBeNull();
    f.clock.advance(DAY);
    expect(codeOf(verifier(f).verify(pkg))).toBe('PKG_EXPIRED');
  });

  it('a package from the future fails with PKG_NOT_YET_VALID', () => {
    const f = fixture();
    const pkg = samplePackage(f, f.packageKeys.slice(0, 3));
    f.clock.set(T0 - DAY);
    expect(codeOf(verifier(f).verify(pkg))).toBe('PKG_NOT_YET_VALID');
  });

  it('a rollback fails with PKG_ROLLBACK', async () => {
    const f = fixture();
    const state = createMemoryTrustState();
    const v = verifier(f);
    const newer = v.verify(samplePackage(f, f.packageKeys.slice(0, 3), { version: '1.1.0' }), { state });
    expect(codeOf(newer)).toBeNull();
    await state.recordPackageVersion('hello', '1.1.0');
    expect(codeOf(v.verify(samplePackage(f, f.packageKeys.slice(0, 3), { version: '1.0.0' }), { state }))).toBe('PKG_ROLLBACK');
    expect(codeOf(v.verify(samplePackage(f, f.packageKeys.slice(0, 3), { version: '1.1.0' }), { state }))).toBeNull();
    expect(codeOf(v.verify(samplePackage(f, f.packageKeys.slice(0, 3), { version: '1.1.0-rc.1' }), { state }))).toBe('PKG_ROLLBACK');
  });

  it('2 signatures where 3 are needed fail with PKG_QUORUM_NOT_MET', () => {
    const f = fixture({ k: 3 });
    const r = verifier(f).verify(samplePackage(f, f.packageKeys.slice(0, 2)));
    expect(codeOf(r)).toBe('PKG_QUORUM_NOT_MET');
    expect(!r.ok && r.error.details).toMatchObject({ threshold: 3, signers: [f.packageKeys[0]!.keyId, f.packageKeys[1]!.keyId] });
  });

  it("one key's signature repeated 3 times counts once: PKG_SIGNATURE_DUPLICATE", () => {
    const f = fixture({ k: 3 });
    const one = parsePackage(samplePackage(f, [f.packageKeys[0]!]));
    if (!one.ok) throw one.error;
    const sig = one.value.signatures[0]!;
    const tripled = encodePackage({ manifest: one.value.manifest, files: one.value.files, signatures: [sig, sig, sig] });
    const r = verifier(f).verify(tripled);
    expect(codeOf(r)).toBe('PKG_SIGNATURE_DUPLICATE');
    expect(!r.ok && r.error.details).toMatchObject({ signers: [f.packageKeys[0]!.keyId] });
  });

  it('signatures from unknown, revoked or corrupted keys do not count, each with its own code', () => {
    const f = fixture({ k: 2 });
    const stranger = SigningKey.generate(f.provider);
    expect(codeOf(verifier(f).verify(samplePackage(f, [f.packageKeys[0]!, stranger])))).toBe('PKG_SIGNER_UNTRUSTED');
    expect(codeOf(verifier(f).verify(samplePackage(f, [])))).toBe('PKG_UNSIGNED');

    const good = parsePackage(samplePackage(f, f.packageKeys.slice(0, 2)));
    if (!good.ok) throw good.error;
    const broken = Uint8Array.from(good.value.signatures[1]!.signature);
    broken[10]! ^= 1;
    const corrupted = encodePackage({ ...good.value, signatures: [good.value.signatures[0]!, { keyId: good.value.signatures[1]!.keyId, signature: broken }] });
    expect(codeOf(verifier(f).verify(corrupted))).toBe('PKG_SIGNATURE_INVALID');

    // Revoke package key 1 in trust root v2: the same package no longer meets 2-of-n.
    let v2 = nextTrustRoot(f.provider, f.trustRoot, { kind: 'revoke-key', keyId: f.packageKeys[1]!.keyId });
    v2 = signTrustRoot(f.provider, v2, f.rootKeys[0]!);
    const pkg = samplePackage(f, f.packageKeys.slice(0, 2));
    expect(codeOf(verifier(f).verify(pkg))).toBeNull();
    const after = createPackageVerifier({ provider: f.provider, trustRoot: v2, clock: f.clock });
    expect(codeOf(after.verify(pkg))).toBe('PKG_SIGNER_REVOKED');
  });

  it('an expired trust root fails verification at the same start time', () => {
    const f = fixture();
    const pkg = samplePackage(f, f.packageKeys.slice(0, 3), { validDays: 3000 });
    f.clock.advance(400 * DAY);
    expect(codeOf(verifier(f).verify(pkg))).toBe('TRUST_ROOT_EXPIRED');
  });
});

describe('.forgepkg hostile input', () => {
  const f = fixture();
  const v = verifier(f);
  const good = samplePackage(f, f.packageKeys.slice(0, 3));

  it.each([
    ['empty file', new Uint8Array(0), 'PKG_TRUNCATED'],
    ['half a magic', MAGIC.subarray(0, 4), 'PKG_TRUNCATED'],
    ['wrong magic', utf8('\x7fELF....'), 'PKG_BAD_MAGIC'],
    ['a wasm file', WASM, 'PKG_BAD_MAGIC'],
    ['future format version', concatBytes(MAGIC, be16(2), be16(0)), 'PKG_UNSUPPORTED_VERSION'],
    ['reserved flags', concatBytes(MAGIC, be16(1), be16(1)), 'PKG_MALFORMED'],
    ['header only', concatBytes(MAGIC, be16(1), be16(0)), 'PKG_TRUNCATED'],
    ['manifest length beyond the file', concatBytes(MAGIC, be16(1), be16(0), be32(1000), utf8('{}')), 'PKG_TRUNCATED'],
    ['manifest length over the limit', concatBytes(MAGIC, be16(1), be16(0), be32(0xffffffff)), 'PKG_LIMIT_EXCEEDED'],
    ['truncated in the middle', good.subarray(0, Math.floor(good.length / 2)), 'PKG_TRUNCATED'],
    ['truncated by one byte', good.subarray(0, good.length - 1), 'PKG_TRUNCATED'],
    ['trailing garbage', concatBytes(good, Uint8Array.of(0)), 'PKG_MALFORMED'],
  ])('%s → %s', (_name, bytes, code) => {
    expect(codeOf(v.verify(bytes))).toBe(code);
  });

  it('invalid UTF-8 in the manifest or a file name', () => {
    expect(codeOf(v.verify(raw({ manifest: Uint8Array.of(0x7b, 0xc3, 0x28, 0x7d), entries: [] })))).toBe('PKG_INVALID_UTF8');
    const { text } = manifestFor(f, ['a.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: Uint8Array.of(0x61, 0xff), content: WASM }] })))).toBe('PKG_INVALID_UTF8');
  });

  it('a manifest that is not JSON, breaks the schema, or is not canonical', () => {
    expect(codeOf(v.verify(raw({ manifest: '{nope', entries: [] })))).toBe('PKG_MANIFEST_INVALID');
    const r = v.verify(raw({ manifest: '{"schema":1,"name":"UPPER"}', entries: [] }));
    expect(codeOf(r)).toBe('PKG_MANIFEST_INVALID');
    const { text } = manifestFor(f, ['a.wasm']);
    const spaced = JSON.stringify(JSON.parse(text), null, 1);
    expect(codeOf(v.verify(raw({ manifest: spaced, entries: [{ name: 'a.wasm', content: WASM }] })))).toBe('PKG_MANIFEST_NOT_CANONICAL');
    const dupKey = text.replace('{"author":""', '{"author":"","author":""');
    expect(codeOf(v.verify(raw({ manifest: dupKey, entries: [{ name: 'a.wasm', content: WASM }] })))).toBe('PKG_MANIFEST_NOT_CANONICAL');
  });

  it.each([
    ['../escape.wasm'],
    ['a/../../b'],
    ['/etc/passwd'],
    ['C:/windows'],
    ['dir\\file'],
    ['nul\u0000byte'],
    ['./a'],
    ['a//b'],
    ['trailing/'],
    ['line\nbreak'],
    ['e\u0301.wasm'],
  ])('file name %j is refused with PKG_INVALID_PATH', (name) => {
    const { text } = manifestFor(f, ['a.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name, content: WASM }] })))).toBe('PKG_INVALID_PATH');
    // The same names are refused in the manifest too.
    expect(codeOf(v.verify(raw({ manifest: manifestFor(f, [name]).text, entries: [] })))).toBe('PKG_MANIFEST_INVALID');
  });

  it('duplicate entries (also differing only by case) are refused', () => {
    const { text } = manifestFor(f, ['a.wasm', 'b.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }, { name: 'a.wasm', content: WASM }] })))).toBe('PKG_DUPLICATE_ENTRY');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }, { name: 'A.wasm', content: WASM }] })))).toBe('PKG_DUPLICATE_ENTRY');
  });

  it('content that does not match the manifest list is refused', () => {
    const { text } = manifestFor(f, ['a.wasm', 'b.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }] })))).toBe('PKG_CONTENT_MISMATCH');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }, { name: 'c.wasm', content: WASM }] })))).toBe('PKG_CONTENT_MISMATCH');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'b.wasm', content: WASM }, { name: 'a.wasm', content: WASM }] })))).toBe('PKG_CONTENT_MISMATCH');
  });

  it('declared sizes far larger than the file, and counts over the limits, fail before anything is read', () => {
    const { text } = manifestFor(f, ['a.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM, size: 0x7fffffff }] })))).toBe('PKG_LIMIT_EXCEEDED');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM, size: 100_000 }] })))).toBe('PKG_CONTENT_MISMATCH');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [], count: 0xffffffff })))).toBe('PKG_LIMIT_EXCEEDED');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }], sigs: be16(0xffff) })))).toBe('PKG_LIMIT_EXCEEDED');
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: 'a.wasm', content: WASM }], sigs: be16(3) })))).toBe('PKG_TRUNCATED');
    const small = createPackageVerifier({ provider: f.provider, trustRoot: f.trustRoot, clock: f.clock, limits: { ...DEFAULT_PACKAGE_LIMITS, maxPackageBytes: 100 } });
    expect(codeOf(small.verify(good))).toBe('PKG_LIMIT_EXCEEDED');
  });

  it('a name longer than the limit is refused', () => {
    const long = `${'a'.repeat(300)}.wasm`;
    const { text } = manifestFor(f, ['a.wasm']);
    expect(codeOf(v.verify(raw({ manifest: text, entries: [{ name: long, content: WASM }] })))).toBe('PKG_INVALID_PATH');
  });

  it('non-Uint8Array input is an error result, not a throw', () => {
    expect(codeOf(v.verify('hello' as unknown as Uint8Array))).toBe('INVALID_ARGUMENT');
  });
});

describe('package directories and rollback state', () => {
  it('readPackageDirectory packs only what "include" lists, refuses symlinks, and names a missing include', async () => {
    const { mkdtemp, mkdir, writeFile, symlink } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readPackageDirectory } = await import('../src/index.js');
    const dir = await mkdtemp(join(tmpdir(), 'forgepkg-dir-'));
    await mkdir(join(dir, 'lib'));
    await writeFile(join(dir, 'a.wasm'), WASM);
    await writeFile(join(dir, 'lib', 'b.txt'), 'b');
    await writeFile(join(dir, 'build-script.mjs'), '//');
    await writeFile(join(dir, 'forgepkg.json'), JSON.stringify({ name: 'x', version: '1.0.0', entry: 'a.wasm', include: ['a.wasm', 'lib'] }));
    const input = await readPackageDirectory(dir);
    expect([...input.files.keys()].sort()).toEqual(['a.wasm', 'lib/b.txt']);
    await writeFile(join(dir, 'forgepkg.json'), JSON.stringify({ name: 'x', version: '1.0.0', entry: 'a.wasm', include: ['missing.wasm'] }));
    await expect(readPackageDirectory(dir)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await writeFile(join(dir, 'forgepkg.json'), JSON.stringify({ name: 'x', version: '1.0.0', entry: 'a.wasm' }));
    await symlink('/etc/passwd', join(dir, 'lib', 'link'));
    await expect(readPackageDirectory(dir)).rejects.toMatchObject({ code: 'PKG_INVALID_PATH' });
  });

  it('a trust root older than one already accepted is refused when verifying with state', async () => {
    const f = fixture();
    const state = createMemoryTrustState();
    await state.recordRootVersion(2);
    const r = verifier(f).verify(samplePackage(f, f.packageKeys.slice(0, 3)), { state });
    expect(codeOf(r)).toBe('TRUST_ROOT_ROLLBACK');
  });

  it('verification reports progress per hashed file', () => {
    const f = fixture();
    const seen: string[] = [];
    verifier(f).verify(samplePackage(f, f.packageKeys.slice(0, 3)), { onProgress: (done, total, name) => seen.push(`${done}/${total} ${name}`) });
    expect(seen).toEqual(['1/3 README.md', '2/3 data/config.json', '3/3 hello.wasm']);
  });
});
