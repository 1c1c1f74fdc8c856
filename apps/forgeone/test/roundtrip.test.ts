import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELLO_DIR, keygens, ok, runIn, secretOf, tempDir, transcript } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(async () => cleanup());

describe('the full round trip through runCli', () => {
  it('keygen x5, trust init 3-of-5, pkg build, sign x3, verify, inspect', async () => {
    const ids = await keygens(dir, 'root', 'p1', 'p2', 'p3', 'p4', 'p5');
    const pkgKeys = ['p1', 'p2', 'p3', 'p4', 'p5'];

    const init = await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', ...pkgKeys.map((k) => `${k}.key.pub`), '--threshold', '3', '--out', 'trust-root.json');
    expect(init).toMatchObject({ ok: true, version: 1, signers: [ids.root] });
    expect((init.roles as Record<string, unknown>).packages).toEqual({ threshold: 3, keyIds: pkgKeys.map((k) => ids[k]).sort() });
    const text = await readFile(join(dir, 'trust-root.json'), 'utf8');
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`); // pretty, two spaces

    const built = await ok(dir, 'pkg', 'build', HELLO_DIR, '--out', 'hello.forgepkg');
    expect(built).toMatchObject({ ok: true, name: 'hello', version: '1.0.0', digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(built.files).toBeGreaterThanOrEqual(2);

    for (const [i, k] of ['p1', 'p3', 'p5'].entries()) {
      const signed = await ok(dir, 'pkg', 'sign', 'hello.forgepkg', '--key', `${k}.key`);
      expect(signed).toMatchObject({ keyId: ids[k], signatureCount: i + 1, replaced: false });
    }

    const verified = await ok(dir, 'pkg', 'verify', 'hello.forgepkg', '--trust-root', 'trust-root.json');
    expect(verified).toMatchObject({ ok: true, code: null, name: 'hello', version: '1.0.0', threshold: 3, digest: built.digest });
    expect([...(verified.signers as string[])].sort()).toEqual([ids.p1, ids.p3, ids.p5].sort());

    const inspected = await ok(dir, 'pkg', 'inspect', 'hello.forgepkg');
    const files = inspected.files as { name: string; size: number; sha3_256: string }[];
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['hello.wasm', 'README.md']));
    expect(files.find((f) => f.name === 'hello.wasm')!.size).toBe((await readFile(join(HELLO_DIR, 'hello.wasm'))).length);
    expect(inspected).toMatchObject({ verified: false, digest: built.digest, manifest: { name: 'hello', entry: 'hello.wasm', capabilities: ['wasi:cli/stdout'] } });
    expect((inspected.signatures as { keyId: string }[]).map((s) => s.keyId)).toEqual([ids.p1, ids.p3, ids.p5]);

    // Text mode: exit 0 and a short summary.
    const plain = await runIn(dir, ['pkg', 'verify', 'hello.forgepkg', '--trust-root', 'trust-root.json']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^verified\s+hello@1\.0\.0/);
    expect(plain.stdout).toContain('3 of 3 required');

    // No private key ever reached the output.
    const everything = transcript.join('');
    for (const k of ['root', ...pkgKeys]) expect(everything).not.toContain(await secretOf(join(dir, `${k}.key`)));
  });

  it('signing twice with one key replaces its signature instead of adding one', async () => {
    const again = await ok(dir, 'pkg', 'sign', 'hello.forgepkg', '--key', 'p1.key');
    expect(again).toMatchObject({ replaced: true, signatureCount: 3 });
  });

  it('inspect works on an unsigned package', async () => {
    await ok(dir, 'pkg', 'build', HELLO_DIR, '--out', 'unsigned.forgepkg');
    const r = await ok(dir, 'pkg', 'inspect', 'unsigned.forgepkg');
    expect(r.signatures).toEqual([]);
    const v = await runIn(dir, ['pkg', 'verify', 'unsigned.forgepkg', '--trust-root', 'trust-root.json', '--json']);
    expect(v.code).toBe(1);
    expect(v.json()).toMatchObject({ ok: false, code: 'PKG_UNSIGNED', signers: [], threshold: 3 });
  });

  it('shortens key ids to 16 hex characters on a terminal, keeps them whole otherwise', async () => {
    const id = (JSON.parse(await readFile(join(dir, 'p1.key.pub'), 'utf8')) as { keyId: string }).keyId;
    const tty = await runIn(dir, ['trust', 'verify', 'trust-root.json'], { isTTY: true });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toContain(id.slice(0, 16));
    expect(tty.stdout).not.toContain(id);
    const piped = await runIn(dir, ['trust', 'verify', 'trust-root.json']);
    expect(piped.stdout).toContain(id);
    const json = await runIn(dir, ['trust', 'verify', 'trust-root.json', '--json'], { isTTY: true });
    expect(JSON.stringify(json.json())).toContain(id);
  });

  it('the noble provider reaches the same verdict', async () => {
    const v = await ok(dir, '--provider', 'noble', 'pkg', 'verify', 'hello.forgepkg', '--trust-root', 'trust-root.json');
    expect(v).toMatchObject({ ok: true, threshold: 3 });
  });
});
