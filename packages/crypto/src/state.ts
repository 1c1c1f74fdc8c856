import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ForgeError, compareSemver } from '@forgeone/common';

/**
 * What the verifier remembers between runs so that versions never go back: the highest trust root version
 * and, per package name, the highest package version accepted.
 */
export interface TrustState {
  /**
   * The highest package version accepted for a name.
   * @param name - package name
   * @returns the version, or undefined when none was accepted
   */
  highestPackageVersion(name: string): string | undefined;
  /**
   * Record an accepted package version (a lower one never replaces a higher one). Durable when it returns.
   * @param name - package name
   * @param version - the accepted version
   */
  recordPackageVersion(name: string, version: string): Promise<void>;
  /** @returns the highest trust root version accepted, or undefined */
  highestRootVersion(): number | undefined;
  /**
   * Record an accepted trust root version. Durable when it returns.
   * @param version - the version
   */
  recordRootVersion(version: number): Promise<void>;
}

const StateSchema = z.strictObject({
  type: z.literal('forgeone.trust-state'),
  rootVersion: z.number().int().min(0),
  packages: z.record(z.string(), z.string()),
});

type StateDoc = z.infer<typeof StateSchema>;

class StateImpl implements TrustState {
  constructor(
    protected doc: StateDoc,
    private readonly persist: (doc: StateDoc) => Promise<void>,
  ) {}

  highestPackageVersion(name: string): string | undefined {
    return Object.hasOwn(this.doc.packages, name) ? this.doc.packages[name] : undefined;
  }

  async recordPackageVersion(name: string, version: string): Promise<void> {
    const cur = this.highestPackageVersion(name);
    if (cur !== undefined && compareSemver(version, cur) <= 0) return;
    this.doc = { ...this.doc, packages: { ...this.doc.packages, [name]: version } };
    await this.persist(this.doc);
  }

  highestRootVersion(): number | undefined {
    return this.doc.rootVersion === 0 ? undefined : this.doc.rootVersion;
  }

  async recordRootVersion(version: number): Promise<void> {
    if (version <= this.doc.rootVersion) return;
    this.doc = { ...this.doc, rootVersion: version };
    await this.persist(this.doc);
  }
}

function empty(): StateDoc {
  return { type: 'forgeone.trust-state', rootVersion: 0, packages: {} };
}

/**
 * A state kept in memory only, for tests and one-shot checks.
 * @returns a fresh state
 */
export function createMemoryTrustState(): TrustState {
  return new StateImpl(empty(), async () => {});
}

/**
 * A state kept in a JSON file, replaced atomically (write a temporary file, fsync, rename, fsync the
 * directory) so a crash never leaves it half-written and an acknowledged record survives.
 * @param path - the state file; created on first record
 * @returns the state
 * @throws ForgeError `STATE_CORRUPT` when the file exists but is not a valid state, `IO_ERROR` when unreadable
 * @example
 * ```ts
 * const state = await openFileTrustState('.forgeone/state.json');
 * ```
 */
export async function openFileTrustState(path: string): Promise<TrustState> {
  let doc = empty();
  try {
    const text = await readFile(path, 'utf8');
    const parsed = StateSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
    doc = parsed.data;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ForgeError('STATE_CORRUPT', `trust state ${path} is unreadable or corrupt: ${(e as Error).message}`, { cause: e });
    }
  }
  return new StateImpl(doc, async (next) => {
    try {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(next, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      const dh = await open(dirname(path), 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (e) {
      throw new ForgeError('IO_ERROR', `cannot write trust state ${path}: ${(e as Error).message}`, { cause: e });
    }
  });
}
