import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock, utf8, type ManualClock } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, buildPackage, createTrustRoot, signPackage, signTrustRoot, type CryptoProvider, type TrustRootDocument } from '@forgeone/crypto';
import { kernelInputs, type MeasurementInput } from '../../src/index.js';

export const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
export const DAY = 86_400_000;

/** Catch a thrown ForgeError's code (or undefined). */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

/** The code and details of a thrown error. */
export function errorOf(fn: () => unknown): { code?: string; details?: Record<string, unknown>; message?: string } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; details?: Record<string, unknown>; message?: string };
  }
  throw new Error('expected a throw');
}

export interface Keys {
  root: SigningKey;
  packages: SigningKey;
  boot: SigningKey[];
  kernel: SigningKey;
}

/** A trust root with roles root, packages and (unless `noBootRole`) boot with `bootThreshold` of `nBoot` keys. */
export function trustRootFor(crypto: CryptoProvider, opts: { nBoot?: number; bootThreshold?: number; noBootRole?: boolean; expiresInDays?: number } = {}): { doc: TrustRootDocument; keys: Keys } {
  const keys: Keys = {
    root: SigningKey.generate(crypto),
    packages: SigningKey.generate(crypto),
    boot: Array.from({ length: opts.nBoot ?? 2 }, () => SigningKey.generate(crypto)),
    kernel: SigningKey.generate(crypto),
  };
  const roles: Record<string, { keys: { keyId: string; publicKey: Uint8Array }[]; threshold: number }> = {
    root: { keys: [keys.root.toPublic()], threshold: 1 },
    packages: { keys: [keys.packages.toPublic()], threshold: 1 },
  };
  if (!(opts.noBootRole ?? false)) roles.boot = { keys: keys.boot.map((k) => k.toPublic()), threshold: opts.bootThreshold ?? 1 };
  const unsigned = createTrustRoot(crypto, {
    expires: new Date(T0 + (opts.expiresInDays ?? 365) * DAY).toISOString().replace('.000Z', 'Z'),
    roles,
  });
  return { doc: signTrustRoot(crypto, unsigned, keys.root), keys };
}

/** A fake install: kernel packages, config, a policy bundle directory, a trust root file and two installed packages. */
export interface Install {
  dir: string;
  crypto: CryptoProvider;
  clock: ManualClock;
  keys: Keys;
  trustRoot: TrustRootDocument;
  trustRootPath: string;
  kernelDirs: Record<string, string>;
  configPath: string;
  policyDir: string;
  packagePaths: Record<string, string>;
  /** The inputs boot measures besides the trust root (kernel files listed afresh each call). */
  inputs(): Promise<MeasurementInput[]>;
  cleanup(): Promise<void>;
}

export async function makeInstall(opts: { crypto?: CryptoProvider; nBoot?: number; bootThreshold?: number; noBootRole?: boolean } = {}): Promise<Install> {
  const crypto = opts.crypto ?? new NodeCryptoProvider();
  const clock = createManualClock(T0);
  const dir = await mkdtemp(join(tmpdir(), 'forgeone-boot-'));
  const { doc, keys } = trustRootFor(crypto, opts);

  const kernelDirs: Record<string, string> = {};
  const kernelFiles: Record<string, Record<string, string>> = {
    '@forgeone/core': { 'index.js': 'export const core = 1;\n', 'index.d.ts': 'export declare const core: number;\n', 'boot/measure.js': 'export const m = 2;\n' },
    '@forgeone/common': { 'index.js': 'export const common = 3;\n' },
  };
  for (const [name, files] of Object.entries(kernelFiles)) {
    const pkgDir = join(dir, 'node_modules', ...name.split('/'));
    kernelDirs[name] = pkgDir;
    await mkdir(join(pkgDir, 'dist', 'boot'), { recursive: true });
    await writeFile(join(pkgDir, 'package.json'), JSON.stringify({ name, version: '0.1.0', type: 'module' }));
    for (const [f, text] of Object.entries(files)) await writeFile(join(pkgDir, 'dist', f), text);
  }

  const etc = join(dir, 'etc');
  await mkdir(etc);
  const configPath = join(etc, 'config.json');
  await writeFile(configPath, JSON.stringify({ allowDegraded: true, listen: '127.0.0.1:7070' }));
  const trustRootPath = join(etc, 'trust-root.json');
  await writeFile(trustRootPath, JSON.stringify(doc, null, 2));
  const policyDir = join(etc, 'policy');
  await mkdir(join(policyDir, 'rules'), { recursive: true });
  await writeFile(join(policyDir, 'bundle.json'), JSON.stringify({ version: 3 }));
  await writeFile(join(policyDir, 'rules', 'default.policy'), 'deny *\nallow wasi:cli/stdout\n');
  await symlink('rules/default.policy', join(policyDir, 'current'));

  const pkgDir = join(dir, 'packages');
  await mkdir(pkgDir);
  const packagePaths: Record<string, string> = {};
  for (const [name, version] of [
    ['hello', '0.1.0'],
    ['world', '0.2.0'],
  ] as const) {
    let { bytes } = buildPackage(crypto, { template: { name, version, entry: 'main.wasm' }, files: new Map([['main.wasm', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])], ['README.md', utf8(`# ${name}\n`)]]) }, { clock });
    bytes = signPackage(bytes, keys.packages);
    const p = join(pkgDir, `${name}-${version}.forgepkg`);
    await writeFile(p, bytes);
    packagePaths[`package:${name}@${version}`] = p;
  }

  return {
    dir,
    crypto,
    clock,
    keys,
    trustRoot: doc,
    trustRootPath,
    kernelDirs,
    configPath,
    policyDir,
    packagePaths,
    async inputs() {
      return [
        ...(await kernelInputs(kernelDirs)),
        { name: 'config', kind: 'config', source: { path: configPath } },
        { name: 'policy', kind: 'policy', source: { path: policyDir } },
        ...Object.entries(packagePaths).map(([name, path]): MeasurementInput => ({ name, kind: 'package', source: { path } })),
      ];
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
