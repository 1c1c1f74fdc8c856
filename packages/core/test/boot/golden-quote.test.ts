import { describe, expect, it } from 'vitest';
import { utf8 } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, nextTrustRoot, signTrustRoot } from '@forgeone/crypto';
import {
  appraise,
  createGolden,
  createQuote,
  measure,
  parseGolden,
  signGolden,
  verifyGolden,
  verifyQuote,
  type MeasurementEvent,
  type MeasurementInput,
} from '../../src/index.js';
import { T0, codeOf, errorOf, trustRootFor } from './helpers.js';

const crypto = new NodeCryptoProvider();

/** Change the first hex digit (in R: always a real change, and still well formed). */
const flipFirstHex = (hex: string): string => `${((parseInt(hex[0]!, 16) ^ 1) & 15).toString(16)}${hex.slice(1)}`;

async function sampleEvents(names = ['trust-root', 'config', 'policy', 'package:hello@0.1.0']): Promise<MeasurementEvent[]> {
  const inputs = names.map((n): MeasurementInput => ({ name: n, kind: 'other', source: { bytes: utf8(`content of ${n}`) } }));
  return [...(await measure(inputs, { crypto })).events];
}

describe('golden measurements', () => {
  it('a threshold of the boot role verifies; fewer, duplicates, other roles and strangers do not', async () => {
    const { doc: root, keys } = trustRootFor(crypto, { nBoot: 3, bootThreshold: 2 });
    const events = await sampleEvents();
    const two = createGolden(events, keys.boot.slice(0, 2), { version: 4 });
    const v = verifyGolden(two, root, crypto);
    expect(v).toMatchObject({ role: 'boot', threshold: 2 });
    expect([...v.signers].sort()).toEqual(keys.boot.slice(0, 2).map((k) => k.keyId).sort());
    expect(v.doc.signed.version).toBe(4);

    const one = createGolden(events, keys.boot.slice(0, 1));
    const e = errorOf(() => verifyGolden(one, root, crypto));
    expect(e.code).toBe('BOOT_GOLDEN_INVALID');
    expect(e.details).toMatchObject({ role: 'boot', threshold: 2 });

    // The same key twice counts once.
    const dup = { ...one, signatures: [one.signatures[0]!, one.signatures[0]!] };
    expect(codeOf(() => verifyGolden(dup, root, crypto))).toBe('BOOT_GOLDEN_INVALID');

    // Root and package keys are not boot keys once a boot role exists.
    expect(codeOf(() => verifyGolden(createGolden(events, [keys.root, keys.packages]), root, crypto))).toBe('BOOT_GOLDEN_INVALID');
    expect(codeOf(() => verifyGolden(createGolden(events, [SigningKey.generate(crypto), SigningKey.generate(crypto)]), root, crypto))).toBe('BOOT_GOLDEN_INVALID');
  });

  it('a changed value, version or signature breaks it', async () => {
    const { doc: root, keys } = trustRootFor(crypto);
    const g = createGolden(await sampleEvents(), [keys.boot[0]!]);
    const changed = structuredClone(g);
    changed.signed.measurements.config = '00'.repeat(32);
    expect(codeOf(() => verifyGolden(changed, root, crypto))).toBe('BOOT_GOLDEN_INVALID');
    const bumped = structuredClone(g);
    bumped.signed.version = 2;
    expect(codeOf(() => verifyGolden(bumped, root, crypto))).toBe('BOOT_GOLDEN_INVALID');
    const badSig = structuredClone(g);
    badSig.signatures[0]!.signature = flipFirstHex(badSig.signatures[0]!.signature);
    expect(codeOf(() => verifyGolden(badSig, root, crypto))).toBe('BOOT_GOLDEN_INVALID');
    // JSON text round trip verifies.
    expect(verifyGolden(JSON.stringify(g), root, crypto).doc).toEqual(g);
  });

  it('a revoked boot key does not count', async () => {
    const { doc: root, keys } = trustRootFor(crypto, { nBoot: 2 });
    const g = createGolden(await sampleEvents(), [keys.boot[0]!]);
    const v2 = signTrustRoot(crypto, nextTrustRoot(crypto, root, { kind: 'revoke-key', keyId: keys.boot[0]!.keyId }), keys.root);
    expect(verifyGolden(g, root, crypto).signers).toEqual([keys.boot[0]!.keyId]);
    expect(codeOf(() => verifyGolden(g, v2, crypto))).toBe('BOOT_GOLDEN_INVALID');
    expect(verifyGolden(signGolden(g, keys.boot[1]!), v2, crypto).signers).toEqual([keys.boot[1]!.keyId]);
  });

  it('without a boot role the root role signs golden values', async () => {
    const { doc: root, keys } = trustRootFor(crypto, { noBootRole: true });
    const events = await sampleEvents();
    expect(verifyGolden(createGolden(events, [keys.root]), root, crypto)).toMatchObject({ role: 'root', signers: [keys.root.keyId] });
    expect(codeOf(() => verifyGolden(createGolden(events, [keys.packages]), root, crypto))).toBe('BOOT_GOLDEN_INVALID');
  });

  it('malformed documents are refused naming the field; poisoned events have no golden value', async () => {
    const { keys } = trustRootFor(crypto);
    const g = createGolden(await sampleEvents(), [keys.boot[0]!]);
    expect(errorOf(() => parseGolden({ ...g, signed: { ...g.signed, type: 'x' } })).details).toEqual({ path: 'signed.type' });
    expect(errorOf(() => parseGolden({ ...g, signed: { ...g.signed, measurements: { config: 'nothex' } } })).details).toEqual({ path: 'signed.measurements.config' });
    expect(codeOf(() => parseGolden('{'))).toBe('BOOT_GOLDEN_INVALID');
    expect(codeOf(() => parseGolden({ ...g, extra: 1 }))).toBe('BOOT_GOLDEN_INVALID');
    const poisoned = [...(await measure([{ name: 'gone', kind: 'config', source: { path: '/nonexistent/forgeone' } }], { crypto })).events];
    expect(errorOf(() => createGolden(poisoned, [keys.boot[0]!])).details).toEqual({ name: 'gone' });
  });
});

describe('appraise', () => {
  it('verified, unknown, and compromised naming each differing, missing and unexpected input', async () => {
    const { keys } = trustRootFor(crypto);
    const events = await sampleEvents();
    const golden = createGolden(events, [keys.boot[0]!]);
    expect(appraise(events, golden)).toEqual({ verdict: 'verified', differing: [], unexpected: [] });
    expect(appraise(events, null)).toEqual({ verdict: 'unknown', differing: [], unexpected: [] });

    const other = await sampleEvents(['trust-root', 'config', 'extra']);
    const changed = other.map((e) => (e.name === 'config' ? { ...e, digest: 'ab'.repeat(32) } : e));
    const a = appraise(changed, golden);
    expect(a.verdict).toBe('compromised');
    expect(a.differing).toEqual([
      { name: 'config', expected: golden.signed.measurements.config, actual: 'ab'.repeat(32), reason: 'mismatch' },
      { name: 'package:hello@0.1.0', expected: golden.signed.measurements['package:hello@0.1.0'], actual: 'missing', reason: 'missing' },
      { name: 'policy', expected: golden.signed.measurements.policy, actual: 'missing', reason: 'missing' },
    ]);
    expect(a.unexpected).toEqual(['extra']);
  });
});

describe('quotes', () => {
  it('verify against the event log and the kernel key, and reject every kind of tampering', async () => {
    const kernel = SigningKey.generate(crypto);
    const events = await sampleEvents();
    const quote = createQuote(events, kernel, crypto, T0, 'nonce-1');
    expect(verifyQuote(quote, events, kernel.publicKey, crypto)).toEqual({ pcr: quote.pcr, keyId: kernel.keyId, time: T0 });

    const reason = (q: unknown, ev: readonly MeasurementEvent[], key: Uint8Array = kernel.publicKey): unknown => {
      const e = errorOf(() => verifyQuote(q, ev, key, crypto));
      expect(e.code).toBe('BOOT_QUOTE_INVALID');
      return e.details?.reason;
    };
    // A changed digest.
    expect(reason(quote, events.map((e, i) => (i === 2 ? { ...e, digest: 'cd'.repeat(32) } : e)))).toBe('pcr');
    // Reordered, with indexes renumbered so the log is well formed.
    const swapped = [events[0]!, events[2]!, events[1]!, events[3]!].map((e, i) => ({ ...e, index: i }));
    expect(reason(quote, swapped)).toBe('pcr');
    // Reordered as is: the indexes give it away.
    expect(reason(quote, [events[1]!, events[0]!, events[2]!, events[3]!])).toBe('events');
    // Removed.
    expect(reason(quote, events.slice(0, 3))).toBe('pcr');
    expect(reason(quote, [events[0]!, events[2]!, events[3]!].map((e, i) => ({ ...e, index: i })))).toBe('pcr');
    // Renamed: the chain is the same, the log digest is not.
    expect(reason(quote, events.map((e, i) => (i === 1 ? { ...e, name: 'config2' } : e)))).toBe('events-digest');
    // The quoted value itself changed: the signature no longer covers it.
    expect(reason({ ...quote, pcr: 'ef'.repeat(32) }, events)).toBe('signature');
    expect(reason({ ...quote, nonce: 'nonce-2' }, events)).toBe('signature');
    // A bad signature, another key, a malformed quote.
    expect(reason({ ...quote, signature: flipFirstHex(quote.signature) }, events)).toBe('signature');
    expect(reason(quote, events, SigningKey.generate(crypto).publicKey)).toBe('key');
    const other = SigningKey.generate(crypto);
    expect(reason({ ...createQuote(events, other, crypto, T0), keyId: kernel.keyId }, events)).toBe('signature');
    expect(reason({ ...quote, time: -1 }, events)).toBe('malformed');
    expect(errorOf(() => verifyQuote({ ...quote, pcr: 'x' }, events, kernel.publicKey, crypto)).details).toMatchObject({ reason: 'malformed', path: 'pcr' });
  });
});
