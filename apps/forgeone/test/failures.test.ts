import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePackage, parsePackage } from '@forgeone/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HELLO_DIR, keygens, ok, runIn, sampleCopy, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let ids: Record<string, string>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  ids = await keygens(dir, 'root', 'p1', 'p2', 'p3', 'p4', 'p5');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'p1.key.pub', 'p2.key.pub', 'p3.key.pub', 'p4.key.pub', 'p5.key.pub', '--threshold', '3', '--out', 'trust-root.json');
});
afterAll(async () => cleanup());

/** Build `source` into `out` and sign it with the named keys. */
async function buildSigned(source: string, out: string, signers: string[]): Promise<void> {
  await ok(dir, 'pkg', 'build', source, '--out', out);
  for (const k of signers) await ok(dir, 'pkg', 'sign', out, '--key', `${k}.key`);
}

/** `pkg verify --json`, which must fail with exit status 1; returns the document. */
async function verifyFails(file: string, ...extra: string[]): Promise<Record<string, unknown>> {
  const r = await runIn(dir, ['pkg', 'verify', file, '--trust-root', 'trust-root.json', '--json', ...extra]);
  expect(r.code).toBe(1);
  const doc = r.json();
  expect(doc).toMatchObject({ ok: false, file, signers: expect.any(Array), threshold: expect.any(Number) });
  return doc;
}

describe('pkg verify fails with its own code', () => {
  it('PKG_HASH_MISMATCH: one flipped byte inside hello.wasm', async () => {
    await buildSigned(HELLO_DIR, 'tampered.forgepkg', ['p1', 'p2', 'p3']);
    const bytes = await readFile(join(dir, 'tampered.forgepkg'));
    const wasm = await readFile(join(HELLO_DIR, 'hello.wasm'));
    const at = bytes.indexOf(wasm);
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf(wasm, at + 1)).toBe(-1);
    bytes[at + 20]! ^= 0x01;
    await writeFile(join(dir, 'tampered.forgepkg'), bytes);

    const doc = await verifyFails('tampered.forgepkg');
    expect(doc).toMatchObject({ code: 'PKG_HASH_MISMATCH', name: 'hello', version: '1.0.0', threshold: 3 });
    expect(doc.message).toContain('hello.wasm');

    const text = await runIn(dir, ['pkg', 'verify', 'tampered.forgepkg', '--trust-root', 'trust-root.json']);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
    expect(text.stderr).toMatch(/^error PKG_HASH_MISMATCH: /);
  });

  it('PKG_EXPIRED: a one-day package judged two days later with --now', async () => {
    await buildSigned(await sampleCopy(dir, 'short-lived', { validDays: 1 }), 'short.forgepkg', ['p1', 'p2', 'p3']);
    await ok(dir, 'pkg', 'verify', 'short.forgepkg', '--trust-root', 'trust-root.json');
    const later = new Date(Date.now() + 2 * DAY).toISOString();
    const doc = await verifyFails('short.forgepkg', '--now', later);
    expect(doc).toMatchObject({ code: 'PKG_EXPIRED', name: 'hello' });
  });

  it('PKG_ROLLBACK: 1.0.0 after 1.1.0 was accepted into the same state', async () => {
    await buildSigned(await sampleCopy(dir, 'newer', { version: '1.1.0' }), 'newer.forgepkg', ['p1', 'p2', 'p3']);
    await buildSigned(HELLO_DIR, 'older.forgepkg', ['p1', 'p2', 'p3']);
    await ok(dir, 'pkg', 'verify', 'newer.forgepkg', '--trust-root', 'trust-root.json', '--state', 'state.json');
    expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toMatchObject({ packages: { hello: '1.1.0' } });
    const doc = await verifyFails('older.forgepkg', '--state', 'state.json');
    expect(doc).toMatchObject({ code: 'PKG_ROLLBACK', version: '1.0.0' });
    // Without the state the older version is fine: rollback protection is what the state adds.
    await ok(dir, 'pkg', 'verify', 'older.forgepkg', '--trust-root', 'trust-root.json');
  });

  it('PKG_QUORUM_NOT_MET: two signatures where three are needed', async () => {
    await buildSigned(HELLO_DIR, 'two.forgepkg', ['p1', 'p2']);
    const doc = await verifyFails('two.forgepkg');
    expect(doc).toMatchObject({ code: 'PKG_QUORUM_NOT_MET', threshold: 3 });
    expect([...(doc.signers as string[])].sort()).toEqual([ids.p1, ids.p2].sort());
  });

  it('PKG_SIGNATURE_DUPLICATE: one key signature repeated three times', async () => {
    await buildSigned(HELLO_DIR, 'dup.forgepkg', ['p4']);
    const parsed = parsePackage(new Uint8Array(await readFile(join(dir, 'dup.forgepkg'))));
    if (!parsed.ok) throw parsed.error;
    const [sig] = parsed.value.signatures;
    await writeFile(join(dir, 'dup.forgepkg'), encodePackage({ manifest: parsed.value.manifest, files: parsed.value.files, signatures: [sig!, sig!, sig!] }));
    const doc = await verifyFails('dup.forgepkg');
    expect(doc).toMatchObject({ code: 'PKG_SIGNATURE_DUPLICATE', signers: [ids.p4], threshold: 3 });
  });

  it('a file that is not a package, and a missing one, still give the full document', async () => {
    await writeFile(join(dir, 'junk.forgepkg'), 'not a package\n');
    expect(await verifyFails('junk.forgepkg')).toMatchObject({ code: 'PKG_BAD_MAGIC', name: null, version: null, digest: null, signers: [], threshold: 3 });
    expect(await verifyFails('missing.forgepkg')).toMatchObject({ code: 'NOT_FOUND' });
  });
});
