import { describe, expect, it } from 'vitest';
import { NobleCryptoProvider, nextTrustRoot, signTrustRoot } from '@forgeone/crypto';
import { CONFIG_SIGNING_PREFIX, addConfigSignature, configSigningBytes, parseConfig, signConfig, verifyConfig, type SignedConfigDocument } from '../src/index.js';
import { fixture, thrown } from './helpers.js';

function tamper(doc: SignedConfigDocument, edit: (config: Record<string, Record<string, unknown>>) => void): SignedConfigDocument {
  const copy = structuredClone(doc) as { signed: { config: Record<string, Record<string, unknown>> } };
  edit(copy.signed.config);
  return copy as unknown as SignedConfigDocument;
}

describe('signConfig / verifyConfig', () => {
  it('a config signed by the config role verifies and parses, defaults spelled out', () => {
    const f = fixture();
    const doc = signConfig({ version: 4, boot: { allowDegraded: true } }, f.configKeys);
    expect(doc.signed.type).toBe('forgeone.config');
    expect(doc.signed.version).toBe(4);
    expect(doc.signed.config).toEqual(parseConfig({ version: 4, boot: { allowDegraded: true } }));
    const v = verifyConfig(doc, f.trustRoot, { crypto: f.crypto });
    expect(v.version).toBe(4);
    expect(v.config.boot.allowDegraded).toBe(true);
    expect(v.signers).toEqual([f.configKeys[0]!.keyId]);
    // JSON text round trip, and the portable provider agrees.
    expect(verifyConfig(JSON.stringify(doc), f.trustRoot, { crypto: new NobleCryptoProvider() }).config).toEqual(v.config);
  });

  it('signatures cover the domain-separated canonical body', () => {
    const f = fixture();
    const doc = signConfig({ version: 2 }, f.configKeys);
    const bytes = configSigningBytes(doc.signed);
    expect(new TextDecoder().decode(bytes.subarray(0, CONFIG_SIGNING_PREFIX.length))).toBe(CONFIG_SIGNING_PREFIX);
    const sig = Uint8Array.from(Buffer.from(doc.signatures[0]!.signature, 'hex'));
    expect(f.crypto.verify(sig, bytes, f.configKeys[0]!.publicKey)).toBe(true);
    // The same signature does not verify without the prefix (no cross-protocol reuse).
    expect(f.crypto.verify(sig, bytes.subarray(CONFIG_SIGNING_PREFIX.length), f.configKeys[0]!.publicKey)).toBe(false);
  });

  it('an invalid config is refused before signing', () => {
    const f = fixture();
    const e = thrown(() => signConfig({ scheduler: { cpuSlots: 0 } }, f.configKeys));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual(['scheduler.cpuSlots: expected a positive integer']);
  });

  it.each([
    ['a changed field', (c: Record<string, Record<string, unknown>>) => { c.boot!.allowDegraded = true; }],
    ['an added field', (c: Record<string, Record<string, unknown>>) => { c.api!.jwtSecretEnv = 'EVIL'; }],
    ['a removed section', (c: Record<string, Record<string, unknown>>) => { delete c.federation; }],
  ])('%s after signing is CONFIG_SIGNATURE_INVALID', (_label, edit) => {
    const f = fixture();
    const doc = tamper(signConfig({ version: 2 }, f.configKeys), edit);
    const e = thrown(() => verifyConfig(doc, f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.details?.rejected).toEqual([{ keyId: f.configKeys[0]!.keyId, reason: 'invalid' }]);
  });

  it('a tampered version is CONFIG_SIGNATURE_INVALID', () => {
    const f = fixture();
    const doc = signConfig({ version: 2 }, f.configKeys);
    const bumped = { ...doc, signed: { ...doc.signed, version: 3, config: { ...(doc.signed.config as object), version: 3 } } };
    expect(thrown(() => verifyConfig(bumped, f.trustRoot, { crypto: f.crypto })).code).toBe('CONFIG_SIGNATURE_INVALID');
  });

  it('a signer outside the config role does not count', () => {
    const f = fixture();
    const doc = signConfig({ version: 2 }, [f.outsider]);
    const e = thrown(() => verifyConfig(doc, f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.message).toContain('(not counted: 1 untrusted)');
    // A root key or a packages key is not a config key either.
    expect(thrown(() => verifyConfig(signConfig({ version: 2 }, [f.rootKey]), f.trustRoot, { crypto: f.crypto })).code).toBe('CONFIG_SIGNATURE_INVALID');
  });

  it('an unsigned document is refused', () => {
    const f = fixture();
    const e = thrown(() => verifyConfig(signConfig({}, []), f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.message).toContain('0 distinct valid signature(s) by the config role, 1 required');
  });

  it('below the threshold is refused; at the threshold is accepted', () => {
    const f = fixture({ n: 3, k: 2 });
    const [a, b, c] = f.configKeys as [typeof f.outsider, typeof f.outsider, typeof f.outsider];
    const one = signConfig({ version: 2 }, [a, f.outsider]);
    const e = thrown(() => verifyConfig(one, f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.details).toMatchObject({ signers: [a.keyId], threshold: 2 });
    const two = addConfigSignature(one, c);
    expect(verifyConfig(two, f.trustRoot, { crypto: f.crypto }).signers).toHaveLength(2);
    expect(verifyConfig(signConfig({ version: 2 }, [a, b, c]), f.trustRoot, { crypto: f.crypto }).signers).toHaveLength(3);
  });

  it('the same key signing twice counts once', () => {
    const f = fixture({ n: 2, k: 2 });
    const doc = signConfig({ version: 2 }, [f.configKeys[0]!]);
    const doubled: SignedConfigDocument = { ...doc, signatures: [doc.signatures[0]!, { ...doc.signatures[0]! }] };
    const e = thrown(() => verifyConfig(doubled, f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.details).toMatchObject({ signers: [f.configKeys[0]!.keyId], rejected: [{ keyId: f.configKeys[0]!.keyId, reason: 'duplicate' }] });
    // addConfigSignature replaces a key's earlier signature instead of adding a second.
    expect(addConfigSignature(doc, f.configKeys[0]!).signatures).toHaveLength(1);
  });

  it('a revoked config key never counts', () => {
    const f = fixture({ n: 2, k: 1 });
    const [a, b] = f.configKeys as [typeof f.outsider, typeof f.outsider];
    let root = nextTrustRoot(f.crypto, f.trustRoot, { kind: 'revoke-key', keyId: a.keyId });
    root = signTrustRoot(f.crypto, root, f.rootKey);
    expect(thrown(() => verifyConfig(signConfig({ version: 2 }, [a]), root, { crypto: f.crypto })).code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(verifyConfig(signConfig({ version: 2 }, [b]), root, { crypto: f.crypto }).version).toBe(2);
  });

  it('a trust root without a config role refuses every config', () => {
    const f = fixture({ n: 0 });
    const e = thrown(() => verifyConfig(signConfig({ version: 2 }, [f.outsider, f.rootKey]), f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_SIGNATURE_INVALID');
    expect(e.message).toContain('has no "config" role');
    expect(e.details).toMatchObject({ reason: 'no-config-role' });
  });

  it('garbage signatures are not counted and never crash', () => {
    const f = fixture();
    const doc = signConfig({ version: 2 }, f.configKeys);
    const bad = { ...doc, signatures: [{ keyId: f.configKeys[0]!.keyId, signature: 'zz' }, { keyId: 'nope', signature: '00'.repeat(64) }] };
    expect(thrown(() => verifyConfig(bad, f.trustRoot, { crypto: f.crypto })).code).toBe('CONFIG_SIGNATURE_INVALID');
  });

  it('a malformed document names the bad field', () => {
    const f = fixture();
    const doc = signConfig({ version: 2 }, f.configKeys);
    const cases: [unknown, string][] = [
      ['{"signed":', '$: not valid JSON'],
      [{ ...doc, extra: 1 }, 'extra: unknown field'],
      [{ ...doc, signed: { ...doc.signed, type: 'forgeone.policy' } }, "signed.type: expected 'forgeone.config'"],
      [{ ...doc, signed: { ...doc.signed, version: 0 } }, 'signed.version: expected a positive integer'],
      [{ ...doc, signatures: 'none' }, 'signatures: expected a list of { keyId, signature }'],
      [{ signed: doc.signed }, 'signatures: required'],
    ];
    for (const [input, expected] of cases) {
      const e = thrown(() => verifyConfig(input, f.trustRoot, { crypto: f.crypto }));
      expect(e.code).toBe('CONFIG_INVALID');
      expect((e.details?.issues as string[])[0]).toContain(expected);
    }
  });

  it('a validly signed but invalid config names the field inside the document', () => {
    const f = fixture();
    const [key] = f.configKeys as [typeof f.outsider];
    let doc: SignedConfigDocument = { signed: { type: 'forgeone.config', version: 2, config: { version: 2, scheduler: { cpuSlots: 0 } } }, signatures: [] };
    doc = addConfigSignature(doc, key);
    const e = thrown(() => verifyConfig(doc, f.trustRoot, { crypto: f.crypto }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual(['signed.config.scheduler.cpuSlots: expected a positive integer']);
    // The outer version must match the config's own.
    doc = addConfigSignature({ signed: { type: 'forgeone.config', version: 3, config: { version: 2 } }, signatures: [] }, key);
    expect(thrown(() => verifyConfig(doc, f.trustRoot, { crypto: f.crypto })).details?.issues).toEqual(['signed.version: 3 does not match signed.config.version (2)']);
    // A fraction is not canonical JSON, so it cannot be signed or verified.
    const frac = { signed: { type: 'forgeone.config', version: 2, config: { version: 2, scheduler: { cpuSlots: 1.5 } } }, signatures: [] };
    expect(thrown(() => verifyConfig(frac, f.trustRoot, { crypto: f.crypto })).code).toBe('CONFIG_INVALID');
  });

  it('with `after`, the same or a lower version is CONFIG_ROLLBACK', () => {
    const f = fixture();
    const doc = signConfig({ version: 5 }, f.configKeys);
    expect(verifyConfig(doc, f.trustRoot, { crypto: f.crypto, after: 4 }).version).toBe(5);
    for (const after of [5, 6]) {
      const e = thrown(() => verifyConfig(doc, f.trustRoot, { crypto: f.crypto, after }));
      expect(e.code).toBe('CONFIG_ROLLBACK');
      expect(e.details).toEqual({ offered: 5, current: after });
    }
  });
});
