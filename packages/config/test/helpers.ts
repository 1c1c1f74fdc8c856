import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isForgeError, type ErrorCode } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey, createTrustRoot, signTrustRoot, type CryptoProvider, type TrustRootDocument } from '@forgeone/crypto';
import { expect } from 'vitest';
import type { ConfigEvent, ConfigSource } from '../src/index.js';

export interface Fixture {
  crypto: CryptoProvider;
  rootKey: SigningKey;
  configKeys: SigningKey[];
  outsider: SigningKey;
  trustRoot: TrustRootDocument;
}

/** A signed trust root with a `config` role of `n` keys and threshold `k` (no config role when `n` is 0). */
export function fixture(opts: { n?: number; k?: number } = {}): Fixture {
  const crypto = new NodeCryptoProvider();
  const rootKey = SigningKey.generate(crypto);
  const packageKey = SigningKey.generate(crypto);
  const configKeys = Array.from({ length: opts.n ?? 1 }, () => SigningKey.generate(crypto));
  const roles: Record<string, { keys: ReturnType<SigningKey['toPublic']>[]; threshold: number }> = {
    root: { keys: [rootKey.toPublic()], threshold: 1 },
    packages: { keys: [packageKey.toPublic()], threshold: 1 },
  };
  if (configKeys.length > 0) roles.config = { keys: configKeys.map((k) => k.toPublic()), threshold: opts.k ?? 1 };
  const trustRoot = signTrustRoot(crypto, createTrustRoot(crypto, { expires: '2099-01-01T00:00:00Z', roles }), rootKey);
  return { crypto, rootKey, configKeys, outsider: SigningKey.generate(crypto), trustRoot };
}

/** Run `fn` and return the ForgeError it throws (fails the test when it does not throw one). */
export function thrown(fn: () => unknown): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> | undefined } {
  try {
    fn();
  } catch (e) {
    if (isForgeError(e)) return e;
    throw e;
  }
  expect.fail('expected a ForgeError');
}

/** The `details.issues` lines of a CONFIG_INVALID error. */
export function issuesOf(fn: () => unknown): string[] {
  const e = thrown(fn);
  expect(e.code).toBe('CONFIG_INVALID');
  return e.details?.issues as string[];
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'forgeone-config-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

let n = 0;
/** Replace a file atomically (as editors and deploy tools do), so a watcher never sees half of it. */
export async function replaceFile(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.test-${process.pid}-${++n}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** The next event of a source that matches `match`. */
export function nextEvent(source: ConfigSource, match: (e: ConfigEvent) => boolean = () => true): Promise<ConfigEvent> {
  return new Promise((resolve) => {
    const off = source.subscribe((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });
}
