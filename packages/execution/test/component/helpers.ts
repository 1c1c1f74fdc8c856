import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, isForgeError, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy } from '@forgeone/trust';
import { HostResultError } from '../../src/component/host.js';
import { Gate, RingRecorder, decodeBlock, type CallRecord } from '../../src/gate/index.js';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
/** Fixture sources. */
export const FIXTURES = join(here, '../fixtures/components');
/** The ForgeOne WIT package. */
export const WIT = join(here, '../../../../plugins/wit/forgeone.wit');
/** Built artefacts live outside the repository. */
export const BUILD_DIR = join(tmpdir(), 'forgeone-test-components');

/**
 * Componentize a JS guest with componentize-js 0.17 in a child process, cached by the hash of everything
 * that goes into it (source, WIT, world, disabled features).
 */
export async function buildGuest(source: string, opts: { wit?: string; world?: string; disable?: readonly string[] } = {}): Promise<Uint8Array> {
  const wit = opts.wit ?? WIT;
  const world = opts.world ?? 'plugin';
  const disable = opts.disable === undefined || opts.disable.length === 0 ? '-' : opts.disable.join(',');
  const src = join(FIXTURES, source);
  const h = createHash('sha3-256');
  h.update(await readFile(src));
  h.update(await readFile(wit.endsWith('.wit') ? wit : join(wit, 'probe.wit')));
  h.update(`${world}\0${disable}\0componentize-js@0.17.0`);
  const out = join(BUILD_DIR, `${source.replace(/\W/g, '_')}-${h.digest('hex').slice(0, 24)}.wasm`);
  if (!existsSync(out)) {
    await mkdir(BUILD_DIR, { recursive: true });
    await run(process.execPath, ['--import', join(FIXTURES, 'lzma-stub.mjs'), join(FIXTURES, 'componentize.mjs'), src, wit, world, out, disable], {
      cwd: FIXTURES,
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
  }
  return new Uint8Array(await readFile(out));
}

/** Assemble a component from WebAssembly text (component model) with jco's wasm-tools. */
export async function watComponent(wat: string): Promise<Uint8Array> {
  const { parse } = (await import('@bytecodealliance/jco')) as unknown as { parse: (wat: string) => Promise<Uint8Array> };
  return parse(wat);
}

/** All feature names componentize-js can disable. */
export const ALL_FEATURES = ['stdio', 'random', 'clocks', 'http'] as const;

/** A gate over a real compiled policy, with a ring recorder. */
export function policyGate(yaml: string): { gate: Gate; recorder: { flush(): CallRecord[] }; syscalls: SyscallTable } {
  const { policy } = parsePolicy(yaml);
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const identity = createIdentity({ subject: 'plugin:test', trust: trustVector('Verified') });
  const program = compilePolicy(policy, { identity, syscalls });
  const ring = new RingRecorder({ blockSize: 4096 });
  const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) }, recorder: ring });
  const recorder = {
    flush(): CallRecord[] {
      const block = ring.flush();
      return block === null ? [] : decodeBlock(block, syscalls);
    },
  };
  return { gate, recorder, syscalls };
}

/** A policy allowing everything except what `deny` names. */
export function allowAllExcept(...deny: string[]): string {
  const rules = [`      - { id: allow-all, action: allow, syscalls: ["*"] }`];
  if (deny.length > 0) rules.push(`      - { id: no, action: deny, syscalls: [${deny.map((d) => JSON.stringify(d)).join(', ')}] }`);
  return `
apiVersion: forgeone.policy/v1
name: component-test
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
${rules.join('\n')}
`;
}

/**
 * What a call threw.
 * @param fn - the call
 * @returns the thrown value
 */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/**
 * The error value (`HostResultError.payload`) a host function returned to the guest.
 * @param fn - the call
 * @returns the payload
 */
export function payload(fn: () => unknown): unknown {
  const e = thrown(fn);
  if (e instanceof HostResultError) return e.payload;
  throw e;
}

/**
 * The ForgeError code of a call that trapped.
 * @param fn - the call
 * @returns the code
 */
export function trapCode(fn: () => unknown): string {
  const e = thrown(fn);
  if (!isForgeError(e)) throw new Error(`expected a ForgeError, got ${String(e)}`);
  return e.code;
}
