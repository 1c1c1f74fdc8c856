import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy, type Decision } from '@forgeone/trust';
import { Gate, RingRecorder, decodeBlock, type CallRecord, type GatePolicy } from '../../src/gate/index.js';
import { createPreview1Host, type Preview1Host, type Preview1Options } from '../../src/wasi/index.js';

export const ALLOW: Decision = { verdict: 'allow', rule: null, reason: 'test', rateLimited: false, code: null };

/** A gate whose policy allows everything, recording every call. */
export function allowAllGate(policy?: GatePolicy): { gate: Gate; records: CallRecord[] } {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const records: CallRecord[] = [];
  const recorder = new RingRecorder({ blockSize: 1, onBlock: (b) => records.push(...decodeBlock(b, syscalls)) });
  const gate = new Gate({ syscalls, policy: policy ?? { mode: 'enforce', decide: () => ALLOW }, recorder });
  return { gate, records };
}

/** A gate deciding with a real compiled policy (YAML). */
export function policyGate(yaml: string): { gate: Gate; records: CallRecord[] } {
  const { policy } = parsePolicy(yaml);
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const identity = createIdentity({ subject: 'plugin:wasi-test', trust: trustVector('Verified') });
  const program = compilePolicy(policy, { identity, syscalls });
  const records: CallRecord[] = [];
  const recorder = new RingRecorder({ blockSize: 1, onBlock: (b) => records.push(...decodeBlock(b, syscalls)) });
  const gate = new Gate({ syscalls, policy: { mode: 'enforce', decide: (id, ctx) => program.decide(id, ctx) }, recorder });
  return { gate, records };
}

let wabtP: Promise<{ parseWat: (name: string, text: string) => { toBinary: (o: object) => { buffer: Uint8Array } } }> | undefined;

/** Compile WAT text to wasm bytes with wabt.js. */
export async function wat(text: string): Promise<Uint8Array> {
  wabtP ??= (async () => (await import('wabt')).default())() as never;
  const wabt = await wabtP!;
  return wabt.parseWat('test.wat', text).toBinary({}).buffer;
}

export function tempDir(prefix = 'forgeone-wasi-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Signatures of all preview1 functions: param types, 'i' = i32, 'I' = i64. */
export const SIGNATURES: Readonly<Record<string, string>> = {
  args_get: 'ii',
  args_sizes_get: 'ii',
  environ_get: 'ii',
  environ_sizes_get: 'ii',
  clock_res_get: 'ii',
  clock_time_get: 'iIi',
  fd_advise: 'iIIi',
  fd_allocate: 'iII',
  fd_close: 'i',
  fd_datasync: 'i',
  fd_fdstat_get: 'ii',
  fd_fdstat_set_flags: 'ii',
  fd_fdstat_set_rights: 'iII',
  fd_filestat_get: 'ii',
  fd_filestat_set_size: 'iI',
  fd_filestat_set_times: 'iIIi',
  fd_pread: 'iiiIi',
  fd_prestat_get: 'ii',
  fd_prestat_dir_name: 'iii',
  fd_pwrite: 'iiiIi',
  fd_read: 'iiii',
  fd_readdir: 'iiiIi',
  fd_renumber: 'ii',
  fd_seek: 'iIii',
  fd_sync: 'i',
  fd_tell: 'ii',
  fd_write: 'iiii',
  path_create_directory: 'iii',
  path_filestat_get: 'iiiii',
  path_filestat_set_times: 'iiiiIIi',
  path_link: 'iiiiiii',
  path_open: 'iiiiiIIii',
  path_readlink: 'iiiiii',
  path_remove_directory: 'iii',
  path_rename: 'iiiiii',
  path_symlink: 'iiiii',
  path_unlink_file: 'iii',
  poll_oneoff: 'iiii',
  proc_exit: 'i',
  proc_raise: 'i',
  sched_yield: '',
  random_get: 'ii',
  sock_accept: 'iii',
  sock_recv: 'iiiiii',
  sock_send: 'iiiii',
  sock_shutdown: 'ii',
};

/** A WAT module importing every preview1 function and exporting a thin wasm wrapper of each, plus memory. */
export function harnessWat(): string {
  const lines = ['(module'];
  for (const [name, sig] of Object.entries(SIGNATURES)) {
    const params = [...sig].map((c) => (c === 'I' ? 'i64' : 'i32')).join(' ');
    const result = name === 'proc_exit' ? '' : '(result i32)';
    lines.push(`  (import "wasi_snapshot_preview1" "${name}" (func $${name} (param ${params}) ${result}))`);
  }
  lines.push('  (memory (export "memory") 2)');
  for (const [name, sig] of Object.entries(SIGNATURES)) {
    const params = [...sig].map((c) => (c === 'I' ? 'i64' : 'i32')).join(' ');
    const result = name === 'proc_exit' ? '' : '(result i32)';
    const gets = [...sig].map((_, i) => `(local.get ${i})`).join(' ');
    lines.push(`  (func (export "${name}") (param ${params}) ${result} (call $${name} ${gets}))`);
  }
  lines.push(')');
  return lines.join('\n');
}

let harnessModule: Promise<WebAssembly.Module> | undefined;

/** A guest whose exports call the host's preview1 functions directly, for precise errno checks. */
export interface Harness {
  readonly host: Preview1Host;
  readonly call: Record<string, (...args: (number | bigint)[]) => number>;
  readonly mem: () => Uint8Array;
  readonly dv: () => DataView;
  /** Write a UTF-8 string at ptr; returns its length. */
  put(ptr: number, text: string): number;
  get(ptr: number, len: number): string;
  u32(ptr: number): number;
  u64(ptr: number): bigint;
}

export async function harness(options: Preview1Options): Promise<Harness> {
  harnessModule ??= wat(harnessWat()).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>));
  const host = createPreview1Host(options);
  const instance = await WebAssembly.instantiate(await harnessModule, host.imports as unknown as WebAssembly.Imports);
  host.bind(instance);
  const memory = instance.exports['memory'] as WebAssembly.Memory;
  const mem = (): Uint8Array => new Uint8Array(memory.buffer);
  const dv = (): DataView => new DataView(memory.buffer);
  return {
    host,
    call: instance.exports as unknown as Harness['call'],
    mem,
    dv,
    put: (ptr, text) => {
      const b = new TextEncoder().encode(text);
      mem().set(b, ptr);
      return b.length;
    },
    get: (ptr, len) => new TextDecoder().decode(mem().subarray(ptr, ptr + len)),
    u32: (ptr) => dv().getUint32(ptr, true),
    u64: (ptr) => dv().getBigUint64(ptr, true),
  };
}

const here = dirname(fileURLToPath(import.meta.url));
export const C_GUEST_DIR = resolve(here, '../../../../plugins/c-guest');

/** Build plugins/c-guest/c-guest.wasm when missing or older than main.c; throws (never skips) without clang. */
export function buildCGuest(): string {
  const wasm = join(C_GUEST_DIR, 'c-guest.wasm');
  const src = join(C_GUEST_DIR, 'main.c');
  let stale = true;
  try {
    stale = statSync(wasm).mtimeMs < Math.max(statSync(src).mtimeMs, statSync(join(C_GUEST_DIR, 'build.sh')).mtimeMs);
  } catch {
    stale = true;
  }
  if (stale) {
    const r = spawnSync('sh', [join(C_GUEST_DIR, 'build.sh')], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(
        `cannot build the C guest (plugins/c-guest/build.sh exited ${r.status}): ${r.stderr}\n` +
          'Install clang with wasi-libc: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32',
      );
    }
  }
  return wasm;
}
