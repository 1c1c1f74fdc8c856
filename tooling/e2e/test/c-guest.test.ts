// The C guest (plugins/c-guest: clang + wasi-libc, a WASI preview1 command) from its signed package, run by
// `forgeone run` (in-process through runCli) under a kernel policy laid over the capabilities its manifest
// requests, with a --dir grant: its output and exit code, its three escape attempts refused, the signed trace.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '@forgeone/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const PACKAGE = join(ROOT, 'plugins', 'c-guest', 'dist', 'c-guest.forgepkg');
const TRUST_ROOT = join(ROOT, '.forgeone-dev', 'trust-root.json');

/**
 * The operator's policy for command-line guests: the basics, and files under /data only; writes only below
 * /data/out. The package's requested capabilities are laid over it: a call needs both.
 */
const KERNEL_POLICY = `
apiVersion: forgeone.policy/v1
name: e2e-c-guest
version: 1
defaultAction: deny
root: cli
nodes:
  cli:
    rules:
      - { id: basics, action: allow, syscalls: ["wasi:cli/*", "wasi:clocks/*", "wasi:random/*", "wasi:filesystem/preopens"] }
      - id: data-read
        action: allow
        syscalls: ["wasi:filesystem/open", "wasi:filesystem/read", "wasi:filesystem/stat", "wasi:filesystem/readdir", "wasi:filesystem/readlink"]
        args: { path: { match: ["/data", "/data/**"] } }
      - id: out-write
        action: allow
        syscalls: ["wasi:filesystem/write", "wasi:filesystem/create-directory"]
        args: { path: { match: ["/data/out/**"] } }
      - { id: system, action: quarantine, syscalls: ["wasi:filesystem/*"], args: { path: { match: ["/etc/**", "/proc/**"] } } }
`;

/** Like KERNEL_POLICY, but nothing may be written. */
const READ_ONLY_POLICY = KERNEL_POLICY.replace('name: e2e-c-guest', 'name: e2e-c-guest-read-only').replace(/ {6}- id: out-write[\s\S]*?\/data\/out\/\*\*"\] \} \}\n/, '');

let tmp: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function forgeone(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), isTTY: false, env: {}, cwd: tmp });
  return { code, stdout, stderr };
}

/** A fresh /data for the guest: input.txt, an empty out/, and `escape -> ../secret` leading out. */
function freshData(name: string): string {
  const data = join(tmp, name);
  mkdirSync(join(data, 'out'), { recursive: true });
  writeFileSync(join(data, 'input.txt'), 'hello forge\n');
  symlinkSync('../secret', join(data, 'escape'));
  return data;
}

/** A call line of an exported DNA trace (JSON lines; `forgeone trace verify` checks the chain and signatures). */
interface CallLine {
  readonly seq: number;
  readonly syscall: string;
  readonly args: { readonly path?: string; readonly detail?: string };
  readonly verdict: string;
  readonly rule: string | null;
  readonly allowed: boolean;
  readonly result: number;
  readonly resultBytes: string | null;
}

/** The call lines of a trace file, in order. */
function traceOf(file: string): readonly CallLine[] {
  return readFileSync(join(tmp, file), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as CallLine & { t: string })
    .filter((l) => l.t === 'call');
}

beforeAll(() => {
  if (!existsSync(PACKAGE)) throw new Error(`${PACKAGE} is missing: build it with \`pnpm --filter @forgeone/plugin-c-guest build\` (needs clang + wasi-libc)`);
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-e2e-c-'));
  mkdirSync(join(tmp, 'secret'));
  writeFileSync(join(tmp, 'secret', 'passwd'), 'root:x:0:0\n');
  writeFileSync(join(tmp, 'kernel.yaml'), KERNEL_POLICY);
  writeFileSync(join(tmp, 'read-only.yaml'), READ_ONLY_POLICY);
});

afterAll(() => {
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('the C guest from its signed package through forgeone run', () => {
  it('runs with its requested capabilities and the --dir grant: its lines, its exit code, escapes refused, a verified trace', async () => {
    const data = freshData('data');
    const r = await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--policy', 'kernel.yaml', '--dir', `${data}::/data`, '--env', 'GREETING=hi there', '--trace', 'run.dna', '--', 'alpha', '7');
    expect(r.code, r.stderr).toBe(7);
    expect(r.stdout.split('\n')).toEqual([
      'argc=3',
      'argv[0]=c-guest',
      'argv[1]=alpha',
      'argv[2]=7',
      'GREETING=hi there',
      'HOME=(unset)',
      'realtime_after_2020=1',
      'monotonic_nondecreasing=1',
      'random_differs=1',
      'input=hello forge',
      'result_size=19 head=upper:',
      'data_entries=3',
      // `..` above the preopen: the path is /etc/passwd, outside every grant: refused at the gate (EACCES).
      'dotdot_escape=refused errno=2',
      // No preopen holds /etc: wasi-libc refuses it itself (ENOTCAPABLE), the host never sees it.
      'outside_preopen=refused errno=76',
      // A link inside /data leading out: the confined file system refuses to follow it (ENOTCAPABLE).
      'symlink_escape=refused errno=76',
      '',
    ]);
    expect(r.stderr).toMatch(/^c-guest done\nc-guest@1\.0\.0 verified \(1 of 1 signatures\) and ran in ctr_/);
    expect(r.stderr).toContain('exit code: 7');
    expect(r.stderr).toContain('Outcome:     exited (exit code 7)');
    expect(readFileSync(join(data, 'out', 'result.txt'), 'utf8')).toBe('upper:HELLO FORGE!\n');
    // Nothing appeared outside the granted directory.
    expect(readdirSync(tmp).sort()).toEqual(['data', 'kernel.yaml', 'read-only.yaml', 'run.dna', 'run.dna.pub', 'secret']);
    expect(readdirSync(join(tmp, 'secret'))).toEqual(['passwd']);

    const v = await forgeone('trace', 'verify', 'run.dna', '--key', 'run.dna.pub', '--json');
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, complete: true, denials: 1, quarantines: 0 });
    const records = traceOf('run.dna');
    // The one refusal: the capabilities refused /etc/passwd before the kernel's quarantine rule was asked.
    expect(records.filter((c) => !c.allowed)).toEqual([expect.objectContaining({ syscall: 'wasi:filesystem/open', args: { path: '/etc/passwd' }, verdict: 'deny', result: -1 })]);
    // The symlink escape crossed the gate as a path under /data; the file system refused to follow the link out.
    expect(records.find((c) => c.args.path === '/data/escape/passwd')).toMatchObject({ syscall: 'wasi:filesystem/open', allowed: true, result: 76 });
    // Every file call the host performed stayed under /data; the kernel policy's rules decided the allowed ones.
    for (const c of records.filter((x) => x.allowed && x.syscall.startsWith('wasi:filesystem/') && x.args.path !== undefined)) {
      expect(c.args.path === '/data' || c.args.path!.startsWith('/data/'), c.args.path).toBe(true);
      expect(c.rule, `${c.syscall} ${c.args.path}`).toMatch(/^cli\/(basics|data-read|out-write)$/);
    }
    // The bytes read from files are in the record (replay answers from it).
    const read = records.find((c) => c.syscall === 'wasi:filesystem/read' && c.args.path === '/data/input.txt' && (c.resultBytes?.length ?? 0) > 0);
    expect(Buffer.from(read!.resultBytes!, 'base64').toString()).toBe('hello forge\n');
    expect(records.at(-1)).toMatchObject({ syscall: 'wasi:cli/exit', allowed: true });
  });

  it('the kernel policy narrows what the package requested: with writes not allowed, every write is refused with EACCES', async () => {
    const data = freshData('data-ro');
    const r = await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--policy', 'read-only.yaml', '--dir', `${data}::/data`, '--trace', 'ro.dna', '--json', '--', '3');
    const out = JSON.parse(r.stdout) as { exitCode: number; stdout: string; stderr: string; code: string | null };
    expect(out.code).toBeNull();
    expect(out.exitCode).toBe(14); // 10 + four failed checks
    expect(r.code).toBe(14);
    expect(out.stdout).toContain('input=hello forge');
    expect(out.stdout).toContain('GREETING=(unset)');
    // fopen(..., "w") is an open with O_CREAT|O_TRUNC: decided as a write, refused, so nothing is created.
    expect(out.stderr).toContain('FAIL create /data/out/result.txt (errno 2)');
    expect(out.stderr).toContain('FAIL open for append (errno 2)');
    expect(out.stderr).toContain('FAIL mkdir (errno 2)');
    expect(existsSync(join(data, 'out', 'result.txt'))).toBe(false);
    expect(existsSync(join(data, 'out', 'sub'))).toBe(false);
    const refused = traceOf('ro.dna').filter((c) => !c.allowed);
    expect(refused.map((c) => [c.syscall, c.args.path, c.verdict])).toEqual([
      ['wasi:filesystem/write', '/data/out/result.txt', 'deny'],
      ['wasi:filesystem/write', '/data/out/result.txt', 'deny'],
      ['wasi:filesystem/create-directory', '/data/out/sub', 'deny'],
      ['wasi:filesystem/open', '/etc/passwd', 'deny'],
    ]);
  });

  // Regression: path_open with O_CREAT / O_TRUNC (or write rights) is decided as wasi:filesystem/write, so a
  // kernel policy that allows open and read but no write cannot let a guest create or empty files.
  it('a policy without writes cannot make path_open(O_TRUNC) empty an existing file', async () => {
    const data = freshData('data-trunc');
    writeFileSync(join(data, 'out', 'result.txt'), 'precious\n');
    await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--policy', 'read-only.yaml', '--dir', `${data}::/data`, '--json', '--', '3');
    expect(readFileSync(join(data, 'out', 'result.txt'), 'utf8')).toBe('precious\n');
  });

  it('without --dir it gets no directory; granting what it did not request is refused before it runs', async () => {
    const r = await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--policy', 'kernel.yaml', '--', '5');
    expect(r.code).toBeGreaterThanOrEqual(10);
    expect(r.stdout).toContain('input=\n');
    expect(r.stdout).toContain('data_entries=0');
    expect(r.stderr).toContain('FAIL open /data/input.txt');

    const env = await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--env', 'HOME=/root', '--json');
    expect(env.code).toBe(1);
    expect(JSON.parse(env.stdout)).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', message: expect.stringContaining('only the variables GREETING') });
    const dir = await forgeone('run', PACKAGE, '--trust-root', TRUST_ROOT, '--dir', `${tmp}::/`, '--json');
    expect(JSON.parse(dir.stdout)).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', message: expect.stringContaining('does not request filesystem access at /') });
  });

  it('a tampered package is refused with its code before anything runs', async () => {
    const bytes = readFileSync(PACKAGE);
    const tampered = Buffer.from(bytes);
    tampered[bytes.length - 5000]! ^= 0x01; // inside the module
    writeFileSync(join(tmp, 'tampered.forgepkg'), tampered);
    const data = freshData('data-tampered');
    const r = await forgeone('run', 'tampered.forgepkg', '--trust-root', TRUST_ROOT, '--dir', `${data}::/data`, '--trace', 'tampered.dna', '--', '0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error PKG_HASH_MISMATCH: /);
    expect(r.stdout).toBe('');
    expect(existsSync(join(tmp, 'tampered.dna'))).toBe(false);
    expect(readdirSync(join(data, 'out'))).toEqual([]);
  });
});
