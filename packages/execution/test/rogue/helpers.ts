// Support for the rogue-c tests: build the hostile C guest, plant its traps, parse its report, split the call
// record into one segment per attempt, and snapshot the host directories it must not change.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, type ErrorCode } from '@forgeone/common';
import { compilePolicy } from '@forgeone/trust';
import { capabilityPolicy, type Capabilities } from '../../src/capabilities.js';
import { Gate, RingRecorder, decodeBlock, type CallRecord } from '../../src/gate/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const ROGUE_DIR = resolve(here, '../../../../plugins/rogue-c');

/** Build plugins/rogue-c/rogue-c.wasm when missing or older than its sources; throws (never skips) without clang. */
export function buildRogue(): string {
  const wasm = join(ROGUE_DIR, 'rogue-c.wasm');
  let stale = true;
  try {
    const built = statSync(wasm).mtimeMs;
    stale = built < Math.max(statSync(join(ROGUE_DIR, 'main.c')).mtimeMs, statSync(join(ROGUE_DIR, 'build.sh')).mtimeMs);
  } catch {
    stale = true;
  }
  if (stale) {
    const r = spawnSync('sh', [join(ROGUE_DIR, 'build.sh')], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(
        `cannot build the rogue C guest (plugins/rogue-c/build.sh exited ${String(r.status)}): ${r.stderr}\n` +
          'Install clang with wasi-libc: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32',
      );
    }
  }
  return wasm;
}

/**
 * Lay out the arena under `root`: `data/` is the preopen (with `sub/` and the planted symlinks), next to it
 * (outside the preopen) `secret.txt`, `victim.txt` and `outside/keep.txt`.
 */
export function plant(root: string, tag: string): { data: string } {
  const data = join(root, 'data');
  mkdirSync(join(data, 'sub'), { recursive: true });
  mkdirSync(join(root, 'outside'));
  writeFileSync(join(root, 'secret.txt'), 'secret: outside the preopen\n');
  writeFileSync(join(root, 'victim.txt'), 'victim: must survive\n');
  writeFileSync(join(root, 'outside', 'keep.txt'), 'keep\n');
  symlinkSync('/etc', join(data, 'link'));
  symlinkSync('/etc/passwd', join(data, 'abs'));
  symlinkSync('../secret.txt', join(data, 'rel'));
  symlinkSync(join(root, 'outside'), join(data, 'outlink'));
  symlinkSync(join(root, 'outside', `pwned-dangle-${tag}`), join(data, 'dangle'));
  symlinkSync(`../outside/pwned-dangle-rel-${tag}`, join(data, 'dangle-rel'));
  // contained where they are (both lead to /data), but climbing above their own directory: pinned there
  symlinkSync('..', join(data, 'sub', 'pinned'));
  mkdirSync(join(data, 'box', 'inner'), { recursive: true });
  symlinkSync('../..', join(data, 'box', 'inner', 'top'));
  return { data };
}

/**
 * Every entry below `dir` (recursively, not following symlinks, skipping `skip`) with its type and content:
 * compare two snapshots to prove nothing changed.
 */
export function snapshot(dir: string, skip?: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (p === skip) continue;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[p] = `link -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else out[p] = `file ${st.size} ino ${st.ino} nlink ${st.nlink} ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

/**
 * Where the host kernel lands following `path` (an absolute host path), resolved component by component with
 * lstat/readlink as path resolution does (`..` from where a link landed, absolute targets from `/`): the real
 * path, the lexical remainder appended from the first missing component (a dangling link), or `null` for a loop.
 */
export function hostResolve(path: string): string | null {
  const todo = path.split('/').filter((c) => c !== '' && c !== '.');
  let cur = '/';
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, c);
    let st;
    try {
      st = lstatSync(next);
    } catch {
      return posix.normalize(join(next, ...todo)); // missing: the rest as it reads
    }
    if (!st.isSymbolicLink()) {
      cur = next;
      continue;
    }
    if (++links > 40) return null;
    const target = readlinkSync(next);
    if (target.startsWith('/')) cur = '/';
    todo.unshift(...target.split('/').filter((t) => t !== '' && t !== '.'));
  }
  return cur;
}

/**
 * Every symlink below `root` (walked with lstat, never following a link) whose target, resolved by the host
 * kernel's rules from where the link is ({@link hostResolve}), lands outside `data` (the preopen's host
 * directory, itself included as inside), as `relative path -> target`, sorted. A loop leads nowhere.
 */
export function linksLeadingOut(root: string, data: string): string[] {
  const inside = realpathSync(data);
  const top = realpathSync(root);
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) {
        const to = hostResolve(p);
        if (to !== null && to !== inside && !to.startsWith(`${inside}/`)) out.push(`${relative(top, p)} -> ${readlinkSync(p)}`);
      }
    }
  };
  walk(top);
  return out.sort();
}

/** The links {@link plant} places under `data/` that lead out of it (on purpose), as {@link linksLeadingOut} lists them. */
export function plantedLinksLeadingOut(root: string, tag: string): string[] {
  return [
    'data/abs -> /etc/passwd',
    `data/dangle -> ${join(root, 'outside', `pwned-dangle-${tag}`)}`,
    `data/dangle-rel -> ../outside/pwned-dangle-rel-${tag}`,
    'data/link -> /etc',
    `data/outlink -> ${join(root, 'outside')}`,
    'data/rel -> ../secret.txt',
  ].sort();
}

/** One line of the guest's report. */
export interface Attempt {
  readonly name: string;
  readonly outcome: 'refused' | 'ALLOWED';
  /** The errno of a refusal. */
  readonly errno: number | null;
  /** The rest of the line. */
  readonly text: string;
  /** The ` [note]` on how the attempt was set up, or ''. */
  readonly note: string;
}

const LINE = /^(\S+): (refused errno=(\d+) \([^)]*\)|refused .*?|ALLOWED .*?)(?: \[(.*)\])?$/;

/** Parse the report; lines starting with `#` are comments. Throws on a line it does not understand. */
export function parseReport(stdout: string): Attempt[] {
  const out: Attempt[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`rogue-c printed a line the test does not understand: ${JSON.stringify(line)}`);
    out.push({
      name: m[1]!,
      outcome: m[2]!.startsWith('refused') ? 'refused' : 'ALLOWED',
      errno: m[3] === undefined ? null : Number(m[3]),
      text: m[2]!,
      note: m[4] ?? '',
    });
  }
  return out;
}

/**
 * Split the call record at the guest's stdout writes (one write per line, line-buffered): segment 0 holds the
 * start-up calls before the `# rogue-c` header, segment `i + 1` the calls of attempt `i` (made after the
 * previous line, before its own), the last one the exit.
 */
export function segments(records: readonly CallRecord[]): CallRecord[][] {
  const out: CallRecord[][] = [[]];
  for (const r of records) {
    if (r.syscall === 'wasi:cli/stdout') out.push([]);
    else out[out.length - 1]!.push(r);
  }
  return out;
}

/** A refused decision as the compiled policy returned it, in order. */
export interface Refusal {
  readonly syscall: string;
  readonly path: string | undefined;
  readonly code: ErrorCode | null;
}

/**
 * A gate deciding with the compiled capability policy of `caps` (deny by default), recording every call with a
 * RingRecorder, and keeping the compiled policy's code of every refusal (the record holds the verdict and rule,
 * the code is what `gate.refusal` is set to).
 */
export function capabilityGate(caps: Capabilities): { gate: Gate; records: CallRecord[]; refusals: Refusal[] } {
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const program = compilePolicy(capabilityPolicy(caps), { identity: createIdentity({ subject: 'plugin:rogue-c' }), syscalls });
  const records: CallRecord[] = [];
  const refusals: Refusal[] = [];
  const recorder = new RingRecorder({ blockSize: 1, onBlock: (b) => records.push(...decodeBlock(b, syscalls)) });
  const gate = new Gate({
    syscalls,
    recorder,
    policy: {
      mode: 'enforce',
      decide: (id, ctx) => {
        const d = program.decide(id, ctx);
        if (d.verdict !== 'allow') refusals.push({ syscall: syscalls.name(id), path: ctx.path, code: d.code });
        return d;
      },
    },
  });
  return { gate, records, refusals };
}
