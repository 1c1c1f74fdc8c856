import { mkdtemp, readFile, stat, chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toHex } from '@forgeone/common';
import { NobleCryptoProvider, NodeCryptoProvider, SigningKey, keyIdOf, loadPublicKey, loadSigningKey, saveSigningKey } from '../src/index.js';

const provider = new NodeCryptoProvider();

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('key files', () => {
  it('writes the private key 0600 and the public key beside it; loads both; key id is the hash of the public key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-keys-'));
    const key = SigningKey.generate(provider);
    const path = join(dir, 'release.key');
    const pub = await saveSigningKey(key, path);
    expect(pub).toBe(`${path}.pub`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(key.keyId).toBe(toHex(provider.sha3_256(key.publicKey)));
    expect(keyIdOf(new NobleCryptoProvider(), key.publicKey)).toBe(key.keyId);
    const loaded = await loadSigningKey(new NobleCryptoProvider(), path);
    expect(loaded.keyId).toBe(key.keyId);
    const msg = new TextEncoder().encode('m');
    expect(provider.verify(loaded.sign(msg), msg, key.publicKey)).toBe(true);
    expect((await loadPublicKey(provider, pub)).keyId).toBe(key.keyId);
    expect(await readFile(pub, 'utf8')).not.toContain('secretKey');
  });

  it('refuses to overwrite, refuses world-readable private keys, refuses a mismatched public key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-keys-'));
    const key = SigningKey.generate(provider);
    const path = join(dir, 'k.key');
    await saveSigningKey(key, path);
    expect(await code(saveSigningKey(key, path))).toBe('KEY_FILE_EXISTS');
    await chmod(path, 0o644);
    expect(await code(loadSigningKey(provider, path))).toBe('KEY_FILE_PERMISSIONS');
    await chmod(path, 0o600);
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
    doc.publicKey = toHex(SigningKey.generate(provider).publicKey);
    await writeFile(path, JSON.stringify(doc), { mode: 0o600 });
    expect(await code(loadSigningKey(provider, path))).toBe('KEY_FILE_INVALID');
    await writeFile(path, 'not json', { mode: 0o600 });
    expect(await code(loadSigningKey(provider, path))).toBe('KEY_FILE_INVALID');
    expect(await code(loadSigningKey(provider, join(dir, 'missing')))).toBe('NOT_FOUND');
  });

  it('never shows the secret when printed, inspected or serialised', () => {
    const key = SigningKey.generate(provider);
    const secret = toHex(key.exportSecret());
    for (const shown of [JSON.stringify(key), inspect(key), String(key), `${key}`, JSON.stringify({ key })]) {
      expect(shown).not.toContain(secret);
      expect(shown).toContain(key.keyId);
    }
  });
});

describe('key files: no stray private key', () => {
  it('refuses before writing anything when only the .pub exists', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-keys-'));
    const path = join(dir, 'k.key');
    await writeFile(`${path}.pub`, '{}');
    expect(await code(saveSigningKey(SigningKey.generate(provider), path))).toBe('KEY_FILE_EXISTS');
    expect(await code(stat(path))).toBe('ENOENT');
  });
});
