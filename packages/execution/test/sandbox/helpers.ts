// Test support: builds the worker entry from source (so tests never depend on a stale dist/), compiles WAT
// with wabt, and provides a real compiled policy.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isForgeError } from '@forgeone/common';
import { parsePolicy } from '@forgeone/trust';
import type { SandboxPolicy } from '../../src/sandbox/index.js';
import type wabtInit from 'wabt';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', '..');

/**
 * Bundle src/worker.ts into test/sandbox/.build/<unique>/worker.js with tsup (dependencies stay external and
 * resolve from the package's node_modules, exactly as from dist/). One build per test file.
 */
export async function buildWorker(): Promise<{ url: URL; cleanup: () => void }> {
  const outDir = join(here, '.build', `${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(outDir, { recursive: true });
  const { build } = await import('tsup');
  await build({
    entry: { worker: join(pkg, 'src/worker.ts') },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    clean: false,
    splitting: false,
    silent: true,
    config: false,
    external: ['@forgeone/common', '@forgeone/trust', '@bytecodealliance/jco'],
  });
  return { url: pathToFileURL(join(outDir, 'worker.js')), cleanup: () => rmSync(outDir, { recursive: true, force: true }) };
}

/** A runner fixture's URL. */
export function fixture(name: string): string {
  return pathToFileURL(join(here, 'fixtures', name)).href;
}

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Wabt | undefined;

/** Compile WAT to a core module. */
export async function wat(text: string): Promise<Uint8Array> {
  wabt ??= await (await import('wabt')).default();
  const m = wabt.parseWat('guest.wat', text);
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

/** A real policy: time, clocks, log and kv allowed, everything else denied (deny by default). */
export const POLICY_TEXT = `
apiVersion: forgeone.policy/v1
name: sandbox-test
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: time, action: allow, syscalls: ["forgeone:time/now", "wasi:clocks/wall-clock"] }
      - { id: log, action: allow, syscalls: ["forgeone:log/write"] }
      - { id: kv, action: allow, syscalls: ["forgeone:kv/get"] }
`;

/** The compiled-in-the-worker policy of {@link POLICY_TEXT}. */
export function testPolicy(text = POLICY_TEXT): SandboxPolicy {
  return { document: parsePolicy(text).policy, identity: { subject: 'plugin:sandbox-test' } };
}

/** The ForgeError code a promise rejects with (fails the test if it resolves or rejects otherwise). */
export async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; details: unknown }> {
  try {
    await p;
  } catch (e) {
    if (!isForgeError(e)) throw new Error(`rejected with a non-ForgeError: ${String(e)}`);
    return { code: e.code, message: e.message, details: e.details };
  }
  throw new Error('expected a rejection');
}
