import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HELLO_DIR, keygens, ok, runIn, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let ids: Record<string, string>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  ids = await keygens(dir, 'root', 'root2', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'p1.key.pub', 'p2.key.pub', 'p3.key.pub', 'p4.key.pub', 'p5.key.pub', '--threshold', '3', '--out', 'v1.json');
});
afterEach(async () => cleanup());

async function fails(args: string[]): Promise<Record<string, unknown>> {
  const r = await runIn(dir, [...args, '--json']);
  expect(r.code).toBe(1);
  return r.json();
}

async function signedPackage(out: string, signers: string[]): Promise<void> {
  await ok(dir, 'pkg', 'build', HELLO_DIR, '--out', out);
  for (const k of signers) await ok(dir, 'pkg', 'sign', out, '--key', `${k}.key`);
}

describe('trust init', () => {
  it('creates the optional policy and config roles', async () => {
    const doc = await ok(dir, 'trust', 'init', '--root-key', 'root.key', 'root2.key', '--root-threshold', '2', '--package-key', 'p1.key.pub', '--threshold', '1',
      '--policy-key', 'p2.key.pub', 'p3.key.pub', '--policy-threshold', '2', '--config-key', 'p4.key.pub', '--valid-days', '30', '--out', 'full.json');
    expect(doc.roles).toEqual({
      root: { threshold: 2, keyIds: [ids.root, ids.root2].sort() },
      packages: { threshold: 1, keyIds: [ids.p1] },
      policy: { threshold: 2, keyIds: [ids.p2, ids.p3].sort() },
      config: { threshold: 1, keyIds: [ids.p4] },
    });
    expect([...(doc.signers as string[])].sort()).toEqual([ids.root, ids.root2].sort());
    const days = (Date.parse(doc.expires as string) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('--expires and --valid-days together is a usage error', async () => {
    const r = await runIn(dir, ['trust', 'init', '--root-key', 'root.key', '--package-key', 'p1.key.pub', '--threshold', '1', '--expires', '2030-01-01', '--valid-days', '3', '--out', 'x.json']);
    expect(r.code).toBe(2);
  });

  it('a tampered trust root fails verification', async () => {
    const doc = JSON.parse(await readFile(join(dir, 'v1.json'), 'utf8')) as { signed: { roles: { packages: { threshold: number } } } };
    doc.signed.roles.packages.threshold = 1;
    await writeFile(join(dir, 'forged.json'), JSON.stringify(doc));
    expect(await fails(['trust', 'verify', 'forged.json'])).toMatchObject({ code: 'TRUST_ROOT_SIGNATURE' });
  });
});

describe('trust add-key', () => {
  it('adds a package key in version 2; packages it signs verify against v2 only', async () => {
    const v2 = await ok(dir, 'trust', 'add-key', '--trust-root', 'v1.json', '--role', 'packages', '--key', 'p6.key.pub', '--sign-key', 'root.key', '--out', 'v2.json');
    expect(v2).toMatchObject({ version: 2, complete: true, roles: { packages: { threshold: 3 } } });
    expect((v2.roles as { packages: { keyIds: string[] } }).packages.keyIds).toContain(ids.p6);
    expect(await ok(dir, 'trust', 'verify', 'v2.json', '--previous', 'v1.json')).toMatchObject({ version: 2, previous: { version: 1, signers: [ids.root] } });

    await signedPackage('p.forgepkg', ['p1', 'p2', 'p6']);
    await ok(dir, 'pkg', 'verify', 'p.forgepkg', '--trust-root', 'v2.json');
    expect(await fails(['pkg', 'verify', 'p.forgepkg', '--trust-root', 'v1.json'])).toMatchObject({ code: 'PKG_SIGNER_UNTRUSTED' });
  });

  it('refuses a signing key that is not a root key', async () => {
    expect(await fails(['trust', 'add-key', '--trust-root', 'v1.json', '--role', 'packages', '--key', 'p6.key.pub', '--sign-key', 'p1.key', '--out', 'v2.json'])).toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(stat(join(dir, 'v2.json'))).rejects.toThrow();
  });
});

describe('trust rotate', () => {
  const rotate = ['trust', 'rotate', '--trust-root', 'v1.json', '--role', 'root', '--new-key', 'root2.key.pub', '--threshold', '1', '--out', 'v2.json'];

  it('a root rotation signed by the old and the new key verifies with --previous', async () => {
    const v2 = await ok(dir, ...rotate, '--sign-key', 'root.key', 'root2.key');
    expect(v2).toMatchObject({ version: 2, complete: true, signers: [ids.root2], previousSigners: [ids.root], roles: { root: { keyIds: [ids.root2] } } });
    expect(await ok(dir, 'trust', 'verify', 'v2.json', '--previous', 'v1.json')).toMatchObject({ ok: true, signers: [ids.root2], previous: { signers: [ids.root] } });
  });

  it('signed only by the new key it fails with TRUST_ROOT_ROTATION and writes nothing', async () => {
    expect(await fails([...rotate, '--sign-key', 'root2.key'])).toMatchObject({ code: 'TRUST_ROOT_ROTATION' });
    await expect(stat(join(dir, 'v2.json'))).rejects.toThrow();
  });

  it('--partial writes it for the old key holder to complete with trust sign', async () => {
    const partial = await ok(dir, ...rotate, '--sign-key', 'root2.key', '--partial');
    expect(partial).toMatchObject({ complete: false, pending: { code: 'TRUST_ROOT_ROTATION' }, signatures: [ids.root2] });
    expect(await fails(['trust', 'verify', 'v2.json', '--previous', 'v1.json'])).toMatchObject({ code: 'TRUST_ROOT_ROTATION' });

    const signed = await ok(dir, 'trust', 'sign', 'v2.json', '--key', 'root.key', '--previous', 'v1.json');
    expect(signed).toMatchObject({ complete: true, checkedPrevious: true, pending: null, keyId: ids.root });
    await ok(dir, 'trust', 'verify', 'v2.json', '--previous', 'v1.json');
  });
});

describe('trust revoke-key', () => {
  it('a revoked signer no longer counts: PKG_SIGNER_REVOKED when that breaks the quorum', async () => {
    await signedPackage('p.forgepkg', ['p1', 'p2', 'p3']);
    await ok(dir, 'pkg', 'verify', 'p.forgepkg', '--trust-root', 'v1.json');

    const v2 = await ok(dir, 'trust', 'revoke-key', '--trust-root', 'v1.json', '--key', 'p3.key.pub', '--sign-key', 'root.key', '--out', 'v2.json');
    expect(v2).toMatchObject({ version: 2, revoked: [ids.p3] });
    await ok(dir, 'trust', 'verify', 'v2.json', '--previous', 'v1.json');

    const doc = await fails(['pkg', 'verify', 'p.forgepkg', '--trust-root', 'v2.json']);
    expect(doc).toMatchObject({ code: 'PKG_SIGNER_REVOKED', threshold: 3 });
    expect([...(doc.signers as string[])].sort()).toEqual([ids.p1, ids.p2].sort());
  });

  it('takes a key id too, and needs one of --key-id and --key', async () => {
    const v2 = await ok(dir, 'trust', 'revoke-key', '--trust-root', 'v1.json', '--key-id', ids.p5!, '--sign-key', 'root.key', '--out', 'v2.json');
    expect(v2.revoked).toEqual([ids.p5]);
    expect((await runIn(dir, ['trust', 'revoke-key', '--trust-root', 'v1.json', '--sign-key', 'root.key', '--out', 'v3.json'])).code).toBe(2);
    expect((await runIn(dir, ['trust', 'revoke-key', '--trust-root', 'v1.json', '--key-id', 'abc', '--sign-key', 'root.key', '--out', 'v3.json'])).code).toBe(2);
  });

  it('an update must follow its previous version by exactly one', async () => {
    await ok(dir, 'trust', 'revoke-key', '--trust-root', 'v1.json', '--key', 'p5.key.pub', '--sign-key', 'root.key', '--out', 'v2.json');
    await ok(dir, 'trust', 'revoke-key', '--trust-root', 'v2.json', '--key', 'p4.key.pub', '--sign-key', 'root.key', '--out', 'v3.json');
    expect(await fails(['trust', 'verify', 'v3.json', '--previous', 'v1.json'])).toMatchObject({ code: 'TRUST_ROOT_VERSION' });
  });
});
