import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPreview1 } from '../../src/wasi/index.js';
import { Errno } from '../../src/fs/index.js';
import { allowAllGate, buildCGuest, policyGate, tempDir } from './helpers.js';

// The C guest (plugins/c-guest/main.c, clang + wasi-libc) running end to end on the preview1 host.
describe('C guest (clang + wasi-libc) end to end', () => {
  let wasm: Uint8Array;
  let tmp: ReturnType<typeof tempDir>;
  let data: string;
  beforeAll(() => {
    wasm = readFileSync(buildCGuest());
    tmp = tempDir();
    data = join(tmp.dir, 'data');
    mkdirSync(join(data, 'out'), { recursive: true });
    mkdirSync(join(tmp.dir, 'secret'));
    writeFileSync(join(tmp.dir, 'secret', 'passwd'), 'root:x:0:0\n');
    writeFileSync(join(data, 'input.txt'), 'hello forge\n');
    symlinkSync('../secret', join(data, 'escape'));
  }, 300_000);
  afterAll(() => tmp.cleanup());

  const run = async (gate: ReturnType<typeof allowAllGate>['gate'], args: string[]) => {
    let out = '';
    let err = '';
    const dec = new TextDecoder();
    const r = await runPreview1(wasm, {
      gate,
      args,
      env: { GREETING: 'hi there' },
      preopens: [{ guestPath: '/data', hostPath: data }],
      stdout: (b) => (out += dec.decode(b)),
      stderr: (b) => (err += dec.decode(b)),
    });
    return { ...r, out, err };
  };

  it('runs with args, env, clocks, random, files, and exits with the code it was given', async () => {
    const { gate, records } = allowAllGate();
    const r = await run(gate, ['c-guest', 'alpha', '7']);
    expect(r.err).toBe('c-guest done\n');
    expect(r.exitCode).toBe(7);
    const lines = r.out.split('\n');
    expect(lines).toContain('argc=3');
    expect(lines).toContain('argv[0]=c-guest');
    expect(lines).toContain('argv[1]=alpha');
    expect(lines).toContain('GREETING=hi there');
    expect(lines).toContain('HOME=(unset)'); // only the env the host was given
    expect(lines).toContain('realtime_after_2020=1');
    expect(lines).toContain('monotonic_nondecreasing=1');
    expect(lines).toContain('random_differs=1');
    expect(lines).toContain('input=hello forge');
    expect(lines).toContain('result_size=19 head=upper:');
    expect(lines).toContain('data_entries=3'); // input.txt, out, escape
    // escapes: `..` above the preopen, a path outside every preopen, a symlink leading out
    expect(lines).toContain(`dotdot_escape=refused errno=${Errno.NOTCAPABLE}`);
    expect(lines).toContain(`outside_preopen=refused errno=${Errno.NOTCAPABLE}`);
    expect(lines).toContain(`symlink_escape=refused errno=${Errno.NOTCAPABLE}`);
    expect(readFileSync(join(data, 'out', 'result.txt'), 'utf8')).toBe('upper:HELLO FORGE!\n');
    // every call crossed the gate; the record holds the non-recomputable results
    const names = new Set(records.map((c) => c.syscall));
    for (const n of ['wasi:cli/args', 'wasi:cli/env', 'wasi:clocks/wall-clock', 'wasi:random/random', 'wasi:filesystem/open', 'wasi:filesystem/read', 'wasi:cli/stdout', 'wasi:cli/exit']) {
      expect(names.has(n), n).toBe(true);
    }
    const read = records.find((c) => c.syscall === 'wasi:filesystem/read' && c.args.path === '/data/input.txt' && c.resultBytes !== null && c.resultBytes.length > 0);
    expect(new TextDecoder().decode(read!.resultBytes!)).toBe('hello forge\n');
    const rnd = records.find((c) => c.syscall === 'wasi:random/random');
    expect(rnd!.resultBytes!.length).toBe(rnd!.args.size);
  });

  it('under a compiled policy: reads under /data allowed, the write to /data/out denied', async () => {
    const { gate, records } = policyGate(`
apiVersion: forgeone.policy/v1
name: c-guest
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: cli, action: allow, syscalls: ["wasi:cli/*", "wasi:clocks/*", "wasi:random/*", "wasi:filesystem/preopens"] }
      - id: data-read
        action: allow
        syscalls: ["wasi:filesystem/open", "wasi:filesystem/read", "wasi:filesystem/stat", "wasi:filesystem/readdir"]
        args: { path: { match: ["/data", "/data/*.txt"] } }
`);
    const r = await run(gate, ['c-guest']);
    expect(r.out).toContain('input=hello forge');
    expect(r.err).toContain('FAIL create /data/out/result.txt (errno 2)'); // EACCES
    expect(r.exitCode).toBeGreaterThanOrEqual(10);
    const denied = records.find((c) => c.syscall === 'wasi:filesystem/open' && c.args.path === '/data/out/result.txt');
    expect(denied?.allowed).toBe(false);
    expect(denied?.verdict).toBe('deny');
  });

  // wasi-libc's start code calls args_sizes_get before main(argc, argv), and getenv() first calls
  // environ_sizes_get; either failing ends the program with _Exit(EX_OSERR) = 71 before any output.
  const deny = (syscall: string): string => `
apiVersion: forgeone.policy/v1
name: c-guest-no-${syscall.split('/')[1]}
version: 1
defaultAction: allow
root: base
nodes:
  base:
    rules:
      - { id: no, action: deny, syscalls: ["${syscall}"] }
`;

  it('wasi-libc exits 71 (EX_OSERR) when the policy refuses wasi:cli/args, before main runs', async () => {
    const { gate, records } = policyGate(deny('wasi:cli/args'));
    const r = await run(gate, ['c-guest', '3']);
    expect(r.exitCode).toBe(71);
    expect(r.out).toBe('');
    expect(records.find((c) => c.syscall === 'wasi:cli/args')).toMatchObject({ allowed: false, verdict: 'deny' });
  });

  it('a refused preopen scan (EBADF) looks like no preopens: the program runs, its file calls fail', async () => {
    const { gate, records } = policyGate(deny('wasi:filesystem/preopens'));
    const r = await run(gate, ['c-guest', '3']);
    expect(r.exitCode).not.toBe(71);
    expect(r.exitCode).toBeGreaterThanOrEqual(10); // main's file checks failed
    expect(r.out).toContain('GREETING=hi there');
    expect(r.out).not.toContain('input=hello forge');
    expect(records.find((c) => c.syscall === 'wasi:filesystem/preopens')).toMatchObject({ allowed: false, result: -1 });
  });

  it('wasi-libc exits 71 at the first getenv() when the policy refuses wasi:cli/env', async () => {
    const { gate } = policyGate(deny('wasi:cli/env'));
    const r = await run(gate, ['c-guest', '3']);
    expect(r.exitCode).toBe(71);
    // main ran: its lines before getenv() are out (stdout is a character device, so wasi-libc line-buffers it)
    expect(r.out).toContain('argv[1]=3');
    expect(r.out).not.toContain('GREETING=');
  });
});
