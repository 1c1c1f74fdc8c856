import { Worker } from 'node:worker_threads';
import { KNOWN_SYSCALLS, SyscallTable, createIdentity, trustVector } from '@forgeone/common';
import { compilePolicy, parsePolicy, type Decision } from '@forgeone/trust';
import { describe, expect, it } from 'vitest';
import {
  CONTROL_CALLS,
  CONTROL_IN_CALL,
  CONTROL_STATE,
  ContainerState,
  Gate,
  RingRecorder,
  canonicalHost,
  createCoarseClock,
  decodeBlock,
  canonicalPath,
  canonicalUrl,
  createControl,
  quarantineControl,
  releaseControl,
  terminateControl,
  type CallRecord,
  type GatePolicy,
} from '../../src/index.js';

const POLICY = `
apiVersion: forgeone.policy/v1
name: gate-test
version: 1
defaultAction: deny
root: base
nodes:
  base:
    rules:
      - { id: stdout, action: allow, syscalls: ["wasi:cli/stdout"] }
      - id: read-data
        action: allow
        syscalls: ["wasi:filesystem/read", "wasi:filesystem/open"]
        args: { path: { match: ["/data/**"] } }
      - id: kv-limit
        action: rate-limit
        syscalls: ["forgeone:kv/get"]
        rateLimit: { perSecond: 1, burst: 2 }
      - { id: audit-time, action: audit, syscalls: ["forgeone:time/now"] }
      - id: trap
        action: quarantine
        syscalls: ["wasi:filesystem/open"]
        args: { path: { match: ["/etc/**"] } }
`;

function setup(mode: GatePolicy['mode'] = 'enforce', now = () => 1_700_000_000_000) {
  const { policy } = parsePolicy(POLICY);
  const syscalls = new SyscallTable(KNOWN_SYSCALLS);
  const identity = createIdentity({ subject: 'plugin:test', trust: trustVector('Verified') });
  const program = compilePolicy(policy, { identity, syscalls });
  const blocks: CallRecord[][] = [];
  const recorder = new RingRecorder({ blockSize: 4, onBlock: (b) => blocks.push(decodeBlock(b, syscalls)) });
  const quarantined: string[] = [];
  const gate = new Gate({
    syscalls,
    policy: { mode, decide: (id, ctx) => program.decide(id, ctx) },
    recorder,
    now,
    onQuarantine: (s) => quarantined.push(s),
  });
  return { gate, syscalls, recorder, blocks, quarantined };
}

describe('Gate', () => {
  it('allows, denies and records with the canonical arguments and the deciding rule', () => {
    const { gate, syscalls, recorder, blocks } = setup();
    const read = syscalls.id('wasi:filesystem/read');
    gate.args.path = '/data/a.txt';
    expect(gate.enter(read)).toBe(true);
    gate.exit(0, new Uint8Array([1, 2, 3]));
    gate.args.path = '/secret/b.txt';
    gate.args.detail = 'fd=4';
    expect(gate.enter(read)).toBe(false);
    expect(gate.refusal).toBe('POLICY_DENIED');
    gate.exit(-1);
    recorder.flush();
    const records = blocks.flat();
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ seq: 0, syscall: 'wasi:filesystem/read', args: { path: '/data/a.txt' }, verdict: 'allow', rule: 'base/read-data', allowed: true, result: 0 });
    expect([...records[0]!.resultBytes!]).toEqual([1, 2, 3]);
    expect(records[1]).toMatchObject({ seq: 1, args: { path: '/secret/b.txt', detail: 'fd=4' }, verdict: 'deny', rule: null, allowed: false, result: -1, resultBytes: null });
    expect(gate.denied).toBe(1);
    // arguments are reset by exit, so a later call never sees stale ones
    expect(gate.args.path).toBeUndefined();
  });

  it('feeds the call history to the policy: a rate limit refuses the third call within a second', () => {
    let t = 1_700_000_000_000;
    const { gate, syscalls } = setup('enforce', () => t);
    const get = syscalls.id('forgeone:kv/get');
    const verdicts: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      verdicts.push(gate.enter(get) ? null : gate.refusal);
      gate.exit(0);
      t += 10;
    }
    expect(verdicts).toEqual([null, null, 'POLICY_RATE_LIMITED']);
    t += 1500;
    expect(gate.enter(get)).toBe(true);
    gate.exit(0);
  });

  it('audit verdicts proceed and are recorded as audit; audit mode lets denials through but records them', () => {
    const { gate, syscalls, recorder, blocks } = setup();
    expect(gate.enter(syscalls.id('forgeone:time/now'))).toBe(true);
    gate.exit(0);
    const audit = setup('audit');
    audit.gate.args.path = '/secret';
    expect(audit.gate.enter(audit.syscalls.id('wasi:filesystem/read'))).toBe(true);
    audit.gate.exit(0);
    recorder.flush();
    audit.recorder.flush();
    expect(blocks.flat()[0]!.verdict).toBe('audit');
    expect(audit.blocks.flat()[0]).toMatchObject({ verdict: 'deny', allowed: true });
  });

  it('a quarantine verdict sets the shared flag; later calls are refused (deny mode) until release', () => {
    const { gate, syscalls, quarantined, blocks } = setup();
    const open = syscalls.id('wasi:filesystem/open');
    gate.args.path = '/etc/passwd';
    expect(gate.enter(open)).toBe(false);
    gate.exit(-1);
    expect(gate.refusal).toBe('CONTAINER_QUARANTINED');
    expect(quarantined).toEqual(['wasi:filesystem/open']);
    expect(gate.control[CONTROL_STATE]).toBe(ContainerState.Quarantined);
    const stdout = syscalls.id('wasi:cli/stdout');
    expect(gate.enter(stdout)).toBe(false);
    gate.exit(-1);
    releaseControl(gate.control);
    expect(gate.enter(stdout)).toBe(true);
    gate.exit(0);
    terminateControl(gate.control);
    expect(gate.enter(stdout)).toBe(false);
    expect(gate.refusal).toBe('CONTAINER_TERMINATED');
    gate.exit(-1);
    expect(blocks.flat().map((r) => r.verdict)).toEqual(['quarantine', 'suspended', 'allow', 'terminated']);
    expect(gate.control[CONTROL_CALLS]).toBe(4);
    expect(gate.control[CONTROL_IN_CALL]).toBe(-1);
  });

  it('hands full blocks to the sink and keeps sequence numbers across blocks', () => {
    const { gate, syscalls, blocks, recorder } = setup();
    const stdout = syscalls.id('wasi:cli/stdout');
    for (let i = 0; i < 10; i++) {
      gate.args.size = i;
      gate.enter(stdout);
      gate.exit(0);
    }
    recorder.flush();
    expect(blocks.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(blocks.flat().map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(blocks.flat().map((r) => r.args.size)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('blocks a quarantined guest thread until release; a blocked call wakes refused on termination', async () => {
    // A real second thread plays the guest, using the Gate's wait protocol on a shared control array.
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      const c = workerData.control;
      parentPort.postMessage('calling');
      let state = Atomics.load(c, 0);
      while (state === 1) { Atomics.wait(c, 0, 1); state = Atomics.load(c, 0); }
      parentPort.postMessage(state);
    `;
    const run = async (wake: (c: Int32Array) => void): Promise<number> => {
      const control = createControl();
      quarantineControl(control);
      const worker = new Worker(src, { eval: true, workerData: { control } });
      const seen: unknown[] = [];
      let calling!: () => void;
      const called = new Promise<void>((r) => (calling = r));
      const done = new Promise<number>((resolve) =>
        worker.on('message', (m: unknown) => {
          seen.push(m);
          if (m === 'calling') calling();
          if (typeof m === 'number') resolve(m);
        }),
      );
      await called; // the worker started and reached its call (however long a loaded machine takes)
      await new Promise((r) => setTimeout(r, 150));
      expect(seen).toEqual(['calling']); // still blocked
      wake(control);
      const state = await done;
      await worker.terminate();
      return state;
    };
    expect(await run(releaseControl)).toBe(ContainerState.Running);
    expect(await run(terminateControl)).toBe(ContainerState.Terminated);
  });

  it('a gate in block mode on this thread waits for release from another thread', async () => {
    const { syscalls } = setup();
    const control = createControl();
    const allow: Decision = { verdict: 'allow', rule: 'x/y', reason: '', rateLimited: false, code: null };
    const gate = new Gate({ syscalls, control, policy: { mode: 'enforce', decide: () => allow }, onQuarantined: 'block' });
    quarantineControl(control);
    const waker = new Worker(`const { workerData } = require('node:worker_threads'); setTimeout(() => { Atomics.store(workerData.c, 0, 0); Atomics.notify(workerData.c, 0); }, 100);`, { eval: true, workerData: { c: control } });
    const t0 = performance.now();
    expect(gate.enter(syscalls.id('wasi:cli/stdout'))).toBe(true);
    gate.exit(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(50);
    await waker.terminate();
  });
});

describe('RingRecorder', () => {
  it('keeps non-ASCII arguments, drops result bytes larger than the arena but keeps the call', () => {
    const syscalls = new SyscallTable(KNOWN_SYSCALLS);
    const recorder = new RingRecorder({ arenaBytes: 128 });
    const args = { path: '/données/ñ.txt', host: undefined, port: 8080, size: undefined, detail: 'ключ' };
    recorder.record(0, 3, args, 0, null, true, 0, 1, 2, new Uint8Array(100));
    const first = decodeBlock(recorder.flush()!, syscalls);
    expect(first[0]).toMatchObject({ args: { path: '/données/ñ.txt', port: 8080, detail: 'ключ' }, resultBytes: null });
    recorder.record(1, 3, args, 0, null, true, 0, 1, 2, new Uint8Array([9]));
    const second = decodeBlock(recorder.flush()!, syscalls);
    expect(second[0]).toMatchObject({ seq: 1, args: { path: '/données/ñ.txt' } });
    expect([...second[0]!.resultBytes!]).toEqual([9]);
    expect(recorder.flush()).toBeNull();
  });
});

describe('coarse clock', () => {
  it('advances in shared memory, readable with a plain load', async () => {
    const clock = createCoarseClock(0.5);
    // Wait (however long a loaded machine takes) until the clock thread has written at least once.
    const first = clock.now();
    for (let i = 0; i < 500 && clock.now() === first; i++) await new Promise((r) => setTimeout(r, 10));
    const a = clock.now();
    expect(a).not.toBe(first);
    await new Promise((r) => setTimeout(r, 100));
    const b = clock.now();
    expect(b - a).toBeGreaterThan(20);
    expect(Math.abs(b - Date.now())).toBeLessThan(100);
    await clock.stop();
  });
});

describe('canonicalisation', () => {
  it('paths: absolute, no dot segments, never above the root', () => {
    expect(canonicalPath('a/./b//c/', '/data')).toBe('/data/a/b/c');
    expect(canonicalPath('../../etc/passwd', '/data')).toBe('/etc/passwd');
    expect(canonicalPath('/../..')).toBe('/');
    expect(() => canonicalPath('a\0b')).toThrow(/NUL/);
  });
  it('hosts: lowercase, no trailing dot, IDNA, bracketless IPv6; URLs get explicit ports', () => {
    expect(canonicalHost('API.Example.COM.')).toBe('api.example.com');
    expect(canonicalHost('bücher.de')).toBe('xn--bcher-kva.de');
    expect(canonicalHost('[::1]')).toBe('::1');
    expect(() => canonicalHost('')).toThrow();
    expect(canonicalUrl('https://Example.com/x')).toMatchObject({ host: 'example.com', port: 443 });
    expect(canonicalUrl('http://example.com:8080/')).toMatchObject({ port: 8080 });
    expect(() => canonicalUrl('file:///etc/passwd')).toThrow(/only http/);
    expect(() => canonicalUrl('http://u:p@example.com/')).toThrow(/credentials/);
  });
});

describe('RingRecorder block age', () => {
  it('hands over a partial block once its first call is older than maxBlockAgeMs', () => {
    const blocks: number[] = [];
    const recorder = new RingRecorder({ blockSize: 256, maxBlockAgeMs: 50, onBlock: (b) => blocks.push(b.count) });
    const args = { path: undefined, host: undefined, port: undefined, size: undefined, detail: undefined };
    for (let i = 0; i < 10; i++) recorder.record(i, 1, args, 0, null, true, 0, 1000 + i * 10, 0, null);
    // calls at 1000..1050 close the first block at the call 50 ms after its first; the rest stay pending
    expect(blocks).toEqual([6]);
    expect(recorder.pending).toBe(4);
  });
});
