import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runIn, secretOf, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

describe('forgeone keygen', () => {
  it('writes a 0600 private key and a 0644 .pub, prints the key id and never the secret', async () => {
    const r = await runIn(dir, ['keygen', '--out', 'release.key']);
    expect(r.code).toBe(0);
    const priv = JSON.parse(await readFile(join(dir, 'release.key'), 'utf8')) as { keyId: string; secretKey: string };
    const pub = JSON.parse(await readFile(join(dir, 'release.key.pub'), 'utf8')) as { keyId: string; secretKey?: string };
    expect(pub.keyId).toBe(priv.keyId);
    expect(pub.secretKey).toBeUndefined();
    expect(r.stdout).toContain(priv.keyId);
    expect(r.stdout + r.stderr).not.toContain(priv.secretKey);
    if (process.platform !== 'win32') {
      expect((await stat(join(dir, 'release.key'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, 'release.key.pub'))).mode & 0o777).toBe(0o644);
    }
  });

  it('--json prints one document with the key id and both file names', async () => {
    const r = await runIn(dir, ['keygen', '--out', 'k.key', '--json']);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc).toEqual({ ok: true, keyId: expect.stringMatching(/^[0-9a-f]{64}$/), privateKeyFile: 'k.key', publicKeyFile: 'k.key.pub' });
    expect(r.stdout).not.toContain(await secretOf(join(dir, 'k.key')));
  });

  it('refuses to overwrite without --force and replaces with it', async () => {
    await runIn(dir, ['keygen', '--out', 'k.key']);
    const before = await readFile(join(dir, 'k.key'), 'utf8');

    const again = await runIn(dir, ['keygen', '--out', 'k.key']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error KEY_FILE_EXISTS: k\.key already exists/);
    expect(await readFile(join(dir, 'k.key'), 'utf8')).toBe(before);

    const json = await runIn(dir, ['keygen', '--out', 'k.key', '--json']);
    expect(json.code).toBe(1);
    expect(json.json()).toMatchObject({ ok: false, code: 'KEY_FILE_EXISTS' });

    const forced = await runIn(dir, ['keygen', '--out', 'k.key', '--force', '--json']);
    expect(forced.code).toBe(0);
    const after = JSON.parse(await readFile(join(dir, 'k.key'), 'utf8')) as { keyId: string; secretKey: string };
    expect(after.keyId).not.toBe(JSON.parse(before).keyId);
    expect(forced.json().keyId).toBe(after.keyId);
    expect(forced.stdout + forced.stderr).not.toContain(after.secretKey);
    if (process.platform !== 'win32') expect((await stat(join(dir, 'k.key'))).mode & 0o777).toBe(0o600);
  });

  it('refuses when only the .pub exists, leaving no lone private key behind', async () => {
    await writeFile(join(dir, 'k.key.pub'), 'something else\n');
    const r = await runIn(dir, ['keygen', '--out', 'k.key']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('KEY_FILE_EXISTS');
    await expect(stat(join(dir, 'k.key'))).rejects.toThrow();
  });

  it('works with the noble provider', async () => {
    const r = await runIn(dir, ['--provider', 'noble', 'keygen', '--out', 'n.key', '--json']);
    expect(r.code).toBe(0);
    expect(r.json().keyId).toBe(JSON.parse(await readFile(join(dir, 'n.key.pub'), 'utf8')).keyId);
  });

  it('a missing --out or an unknown provider is a usage error (exit 2)', async () => {
    expect((await runIn(dir, ['keygen'])).code).toBe(2);
    const bad = await runIn(dir, ['--provider', 'rot13', 'keygen', '--out', 'x.key', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json()).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', usage: true });
  });
});
