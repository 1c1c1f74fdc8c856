// Shared by the component and recording benches: the two loop guests (bench/fixtures/loop.js componentized,
// bench/fixtures/loop.wat assembled) and the policy that allows their two calls.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy } from '@forgeone/trust';

const here = fileURLToPath(new URL('.', import.meta.url));
const WIT = join(here, '../../../plugins/wit/forgeone.wit');
const GUEST = join(here, 'fixtures/loop.js');
const TOOLS = join(here, '../test/fixtures/components');
/** Where built guests and jco's transpile cache live (outside the repository). */
export const BUILD = join(tmpdir(), 'forgeone-bench-components');

/** Componentize the JS loop guest once (child process, lzma stub), cached by the hash of what goes into it. */
export async function buildJsLoopGuest() {
  const disable = 'stdio,random,clocks,http';
  const h = createHash('sha3-256');
  h.update(await readFile(GUEST));
  h.update(await readFile(WIT));
  h.update(`plugin\0${disable}\0componentize-js@0.17.0`);
  const out = join(BUILD, `loop-${h.digest('hex').slice(0, 24)}.wasm`);
  if (!existsSync(out)) {
    await mkdir(BUILD, { recursive: true });
    const t0 = performance.now();
    await promisify(execFile)(process.execPath, ['--import', join(TOOLS, 'lzma-stub.mjs'), join(TOOLS, 'componentize.mjs'), GUEST, WIT, 'plugin', out, disable], {
      cwd: TOOLS,
      timeout: 300_000,
      maxBuffer: 16 << 20,
    });
    console.log(`componentized ${GUEST} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return new Uint8Array(await readFile(out));
}

/** The WAT loop guest assembled into a component with jco's wasm-tools. */
export async function buildWatLoopGuest() {
  const { parse } = await import('@bytecodealliance/jco');
  return parse(await readFile(join(here, 'fixtures/loop.wat'), 'utf8'));
}

/** A compiled policy allowing time.now and log.write (and denying the filesystem), with its syscall table. */
export function loopPolicy() {
  const { policy } = parsePolicy(`
apiVersion: forgeone.policy/v1
name: bench
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: time, action: allow, syscalls: ["forgeone:time/now"] }
      - { id: log, action: allow, syscalls: ["forgeone:log/write"] }
      - { id: no-fs, action: deny, syscalls: ["wasi:filesystem/*"] }
`);
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const identity = createIdentity({ subject: 'plugin:bench', trust: trustVector('Verified') });
  const program = compilePolicy(policy, { identity, syscalls });
  return { policy, syscalls, identity, gatePolicy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) } };
}
