import { createManualClock, utf8, type ManualClock } from '@forgeone/common';
import {
  NodeCryptoProvider,
  SigningKey,
  buildPackage,
  createPackageVerifier,
  createTrustRoot,
  signPackage,
  signTrustRoot,
  type VerifiedPackage,
} from '@forgeone/crypto';
import type { ContainerRecord } from '../../src/index.js';

export const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

/** A really built, signed and verified package (the registry never sees anything else from a kernel). */
export function verifiedPackage(name = 'hello', version = '1.0.0', clock: ManualClock = createManualClock(T0)): VerifiedPackage {
  const provider = new NodeCryptoProvider();
  const rootKey = SigningKey.generate(provider);
  const pkgKey = SigningKey.generate(provider);
  let trustRoot = createTrustRoot(provider, {
    expires: new Date(T0 + 365 * 86_400_000).toISOString().replace('.000Z', 'Z'),
    roles: { root: { keys: [rootKey.toPublic()], threshold: 1 }, packages: { keys: [pkgKey.toPublic()], threshold: 1 } },
  });
  trustRoot = signTrustRoot(provider, trustRoot, rootKey);
  const files = new Map<string, Uint8Array>([['main.wasm', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])], ['README.md', utf8('# x\n')]]);
  const { bytes } = buildPackage(provider, { template: { name, version, entry: 'main.wasm', description: 'test', author: 'ForgeOne', capabilities: [] }, files }, { clock });
  const signed = signPackage(bytes, pkgKey);
  const result = createPackageVerifier({ provider, trustRoot, clock }).verify(signed);
  if (!result.ok) throw result.error;
  return result.value;
}

/** A stand-in with the same shape, for tests about state only (fast, many records). */
export function fakePackage(name = 'app', version = '1.0.0', digestByte = 'ab'): { manifest: { name: string; version: string }; digest: string } {
  return { manifest: { name, version }, digest: digestByte.repeat(32) };
}

/** A record in `creating`, built without a registry. */
export function baseRecord(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: 'ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H',
    name: 'app-1',
    packageName: 'app',
    packageVersion: '1.0.0',
    packageHash: 'ab'.repeat(32),
    identity: { subject: 'plugin:app', tenant: 'acme', trustLevel: 3 },
    policy: { name: 'default', version: 1 },
    restartPolicy: 'never',
    status: 'creating',
    createdAt: T0,
    updatedAt: T0,
    restarts: 0,
    resources: { cpuMs: 0, memoryBytesPeak: 0, calls: 0, denials: 0 },
    transitions: 0,
    history: [{ to: 'creating', at: T0 }],
    ...over,
  };
}
