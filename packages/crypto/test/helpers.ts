import { createManualClock, utf8, type ManualClock } from '@forgeone/common';
import {
  NodeCryptoProvider,
  SigningKey,
  buildPackage,
  createTrustRoot,
  signPackage,
  signTrustRoot,
  type CryptoProvider,
  type ManifestTemplate,
  type TrustRootDocument,
} from '../src/index.js';

export const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
export const DAY = 86_400_000;

export interface Fixture {
  provider: CryptoProvider;
  clock: ManualClock;
  rootKeys: SigningKey[];
  packageKeys: SigningKey[];
  trustRoot: TrustRootDocument;
}

/** A trust root with `nRoot` root keys (threshold `rootThreshold`) and `nPkg` package keys (threshold `k`). */
export function fixture(opts: { nRoot?: number; rootThreshold?: number; nPkg?: number; k?: number; provider?: CryptoProvider } = {}): Fixture {
  const provider = opts.provider ?? new NodeCryptoProvider();
  const clock = createManualClock(T0);
  const rootKeys = Array.from({ length: opts.nRoot ?? 1 }, () => SigningKey.generate(provider));
  const packageKeys = Array.from({ length: opts.nPkg ?? 5 }, () => SigningKey.generate(provider));
  let trustRoot = createTrustRoot(provider, {
    expires: new Date(T0 + 365 * DAY).toISOString().replace('.000Z', 'Z'),
    roles: {
      root: { keys: rootKeys.map((k) => k.toPublic()), threshold: opts.rootThreshold ?? 1 },
      packages: { keys: packageKeys.map((k) => k.toPublic()), threshold: opts.k ?? 3 },
    },
  });
  for (const k of rootKeys) trustRoot = signTrustRoot(provider, trustRoot, k);
  return { provider, clock, rootKeys, packageKeys, trustRoot };
}

export const WASM = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

/** Build a sample package and sign it with the given keys. */
export function samplePackage(f: Fixture, signers: SigningKey[], template: Partial<ManifestTemplate> = {}, files?: Map<string, Uint8Array>): Uint8Array {
  const content =
    files ??
    new Map<string, Uint8Array>([
      ['hello.wasm', WASM],
      ['README.md', utf8('# hello\n')],
      ['data/config.json', utf8('{"greeting":"hi"}')],
    ]);
  let { bytes } = buildPackage(
    f.provider,
    { template: { name: 'hello', version: '1.0.0', entry: 'hello.wasm', description: 'sample', author: 'ForgeOne', capabilities: ['wasi:cli/stdout'], ...template }, files: content },
    { clock: f.clock },
  );
  for (const k of signers) bytes = signPackage(bytes, k);
  return bytes;
}
