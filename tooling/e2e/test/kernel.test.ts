// The kernel end to end: createKernel boots (measured, against golden values when there are some), launches the
// example plugins from their signed packages through the scheduler into sandboxes, records their execution DNA,
// moves rogue to the red zone while hello finishes, recovers after a kill -9, boots a tampered install into
// recovery, and takes a replacement for each subsystem.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isForgeError } from '@forgeone/common';
import { createGolden, createScheduler, createLocalNode, type Scheduler } from '@forgeone/core';
import { NobleCryptoProvider, NodeCryptoProvider, loadSigningKey } from '@forgeone/crypto';
import { createKernel, type Kernel } from '@forgeone/kernel';
import { verifyTrace } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const TRUST_ROOT = join(ROOT, '.forgeone-dev', 'trust-root.json');
const pkg = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'plugins', name, 'dist', `${name}.forgepkg`)));

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-kernel-e2e-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isForgeError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

describe('createKernel', () => {
  it('runs hello and rogue side by side: rogue is denied and quarantined while hello finishes; both traces verify', async () => {
    const kernel = await createKernel({ trustRoot: TRUST_ROOT, home: join(tmp, 'side-by-side'), cacheDir: join(tmp, 'cache') });
    try {
      expect(kernel.boot.verdict).toBe('unknown'); // no golden values in a fresh home
      expect(kernel.boot.mode).toBe('normal');
      const rogue = await kernel.launch({ package: pkg('rogue'), input: 'all', cpuBudgetMs: 20_000 });
      const hello = await kernel.launch({ package: pkg('hello'), input: 'ForgeOne' });
      const h = await hello.done;
      expect(h.outcome).toEqual({ ok: true, value: 'Hello, ForgeOne!' });
      expect(h.record.status).toBe('stopped');
      // rogue is held in the red zone (its guest blocked on its next call), evidence kept.
      await rogue.started;
      // The kernel's quarantine step ends with its audit event.
      await expect.poll(async () => (await kernel.audit.query({ kind: 'quarantine', subject: rogue.id })).length, { timeout: 60_000 }).toBe(1);
      expect(kernel.redzone.isQuarantined(rogue.id)).toBe(true);
      expect(rogue.record()?.status).toBe('quarantined');
      await kernel.terminate(rogue.id, 'demo: compromised');
      const r = await rogue.done;
      expect(r.record.status).toBe('failed');
      expect(r.summary.denials).toBeGreaterThan(0);
      expect(r.explanation.json.verdict).not.toBe('clean');
      for (const report of [h, r]) {
        const v = verifyTrace(await kernel.exportTrace(report.id), { trustedKeys: [kernel.kernelKey] });
        expect(v.ok, JSON.stringify(v.issue)).toBe(true);
      }
      const kinds = (await kernel.audit.query()).map((e) => e.kind);
      for (const k of ['boot', 'package.accepted', 'container.launched', 'quarantine', 'termination', 'container.stopped']) expect(kinds).toContain(k);
      expect((await kernel.audit.verify()).ok).toBe(true);
      // The replay of hello is identical.
      expect((await kernel.replay(hello.id)).identical).toBe(true);
    } finally {
      await kernel.shutdown();
    }
  });

  it('refuses a tampered package, and a compromised identity', async () => {
    const kernel = await createKernel({ trustRoot: TRUST_ROOT, cacheDir: join(tmp, 'cache'), boot: { measureKernel: false } });
    try {
      const bad = pkg('hello');
      bad[bad.length - 100]! ^= 1;
      expect(await code(kernel.launch({ package: bad }))).toMatch(/^PKG_/);
      expect(await code(kernel.launch({ package: pkg('hello'), trust: 'Compromised' }))).toBe('IDENTITY_COMPROMISED');
      expect((await kernel.audit.query()).some((e) => e.kind === 'package.refused')).toBe(true);
    } finally {
      await kernel.shutdown();
    }
  });

  it('a tampered install boots into recovery mode and runs nothing', async () => {
    const home = join(tmp, 'golden');
    const first = await createKernel({ trustRoot: TRUST_ROOT, home, cacheDir: join(tmp, 'cache') });
    const rootKey = await loadSigningKey(first.crypto, join(ROOT, '.forgeone-dev', 'keys', 'dev-root.key'));
    writeFileSync(join(home, 'golden.json'), JSON.stringify(createGolden(first.boot.events, [rootKey])));
    await first.shutdown();
    const verified = await createKernel({ trustRoot: TRUST_ROOT, home, cacheDir: join(tmp, 'cache') });
    expect(verified.boot.verdict).toBe('verified');
    await verified.shutdown();
    // The measured policy changed: compromised, naming it; recovery mode refuses launches.
    const tampered = await createKernel({ trustRoot: TRUST_ROOT, home, cacheDir: join(tmp, 'cache'), policy: `${(await import('@forgeone/kernel')).DEFAULT_KERNEL_POLICY}\n# changed\n` });
    try {
      expect(tampered.boot.verdict).toBe('compromised');
      expect(tampered.boot.mode).toBe('recovery');
      expect(tampered.boot.differing.map((d) => d.name)).toEqual(['policy']);
      expect(await code(tampered.launch({ package: pkg('hello') }))).toBe('BOOT_RECOVERY_MODE');
      expect((await tampered.audit.query({ kind: 'boot' })).at(-1)?.details).toMatchObject({ verdict: 'compromised' });
    } finally {
      await tampered.shutdown();
    }
  });

  it('after kill -9, a running container is recovered as failed with KERNEL_RESTART, one with restart policy `always` runs again', async () => {
    const home = join(tmp, 'restart');
    const script = `
      import { readFileSync } from 'node:fs';
      import { createKernel } from '@forgeone/kernel';
      const kernel = await createKernel({ trustRoot: ${JSON.stringify(TRUST_ROOT)}, home: ${JSON.stringify(home)}, cacheDir: ${JSON.stringify(join(tmp, 'cache'))}, boot: { measureKernel: false } });
      const bytes = new Uint8Array(readFileSync(${JSON.stringify(join(ROOT, 'plugins/rogue/dist/rogue.forgepkg'))}));
      const c = await kernel.launch({ package: bytes, input: 'loop', cpuBudgetMs: 600000 });
      const again = await kernel.launch({ package: bytes, input: 'loop', cpuBudgetMs: 600000, restartPolicy: 'always' });
      await c.started;
      await again.started;
      await new Promise((r) => setTimeout(r, 200));
      console.log('RUNNING ' + c.id + ' ' + again.id);
      setInterval(() => {}, 1000);
    `;
    // A module file beside the tests (so @forgeone/kernel resolves), not `-e`: workers inherit `--input-type`.
    const scriptFile = join(here, `.kill-child-${process.pid}.mjs`);
    writeFileSync(scriptFile, script);
    const child = spawn(process.execPath, [scriptFile], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
    child.on('exit', () => rmSync(scriptFile, { force: true }));
    const [id, restartId] = await new Promise<[string, string]>((resolveId, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /RUNNING (\S+) (\S+)/.exec(out);
        if (m !== null) resolveId([m[1]!, m[2]!]);
      });
      child.on('exit', (c) => reject(new Error(`the child exited (${c}) before its container ran: ${out}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const kernel = await createKernel({ trustRoot: TRUST_ROOT, home, cacheDir: join(tmp, 'cache'), boot: { measureKernel: false } });
    try {
      expect(kernel.recovered.failed.map((r) => r.id)).toContain(id);
      expect(kernel.registry.get(id)).toMatchObject({ status: 'failed', reason: { code: 'KERNEL_RESTART' } });
      // The one whose restart policy says `always` runs again, under the same id.
      expect(kernel.recovered.toRestart.map((r) => r.id)).toEqual([restartId]);
      await kernel.get(restartId)!.started;
      expect(kernel.registry.get(restartId)?.status).toBe('running');
      expect((await kernel.audit.query({ kind: 'container.launched', subject: restartId })).at(-1)?.details).toMatchObject({ restarted: true });
    } finally {
      await kernel.shutdown();
    }
  });

  it('takes a replacement for each subsystem: memory store, noble crypto, an anomaly detector, a scheduler', async () => {
    let submitted = 0;
    const inner = createScheduler({ nodes: [createLocalNode({ id: 'n1', capacity: { memoryMb: 1024, cpuSlots: 2, maxInstances: 4 } })] });
    const scheduler: Scheduler = { ...inner, policy: inner.policy, submit: (spec) => (submitted++, inner.submit(spec)) };
    const store = createMemoryStore();
    const kernel: Kernel = await createKernel({
      trustRoot: TRUST_ROOT,
      store,
      crypto: new NobleCryptoProvider(),
      scheduler,
      anomalyDetector: { score: (records) => ({ score: 1, flags: [{ name: 'custom-detector', severity: 'high', detail: `${records.length} calls seen` }] }) },
      cacheDir: join(tmp, 'cache'),
      boot: { measureKernel: false },
    });
    try {
      expect(kernel.crypto).toBeInstanceOf(NobleCryptoProvider);
      const c = await kernel.launch({ package: pkg('hello'), input: 'swap' });
      const r = await c.done;
      expect(r.outcome).toEqual({ ok: true, value: 'Hello, swap!' });
      expect(submitted).toBe(1);
      expect(r.summary.flags.map((f) => f.name)).toContain('custom-detector');
      expect((await store.log(`trace/${r.traceId}`)).length).toBeGreaterThan(0);
      expect(verifyTrace(await kernel.exportTrace(c.id), { trustedKeys: [kernel.kernelKey], crypto: new NodeCryptoProvider() }).ok).toBe(true);
      // The prelude-style inline path: decided by the kernel policy, recorded.
      expect(await kernel.secureSyscall('app:embedder', 'forgeone:log/write', { detail: 'info', size: 2 }, () => 42)).toMatchObject({ allowed: true, value: 42 });
      expect(await kernel.secureSyscall('app:embedder', 'wasi:filesystem/open', { path: '/etc/../etc/passwd' }, () => 1)).toMatchObject({ allowed: false, verdict: 'quarantine' });
    } finally {
      await kernel.shutdown();
    }
  });
});

describe('kernel operations', () => {
  it('stops a spinning container after its grace period, pauses and resumes, and tightens live', async () => {
    const kernel = await createKernel({ trustRoot: TRUST_ROOT, cacheDir: join(tmp, 'cache'), boot: { measureKernel: false } });
    const events: string[] = [];
    kernel.onEvent((e) => events.push(`${e.type}${'status' in e ? `:${e.status}` : ''}`));
    try {
      // Stop with a grace period: a spinning guest does not finish, so it is terminated when the grace ends.
      const spin = await kernel.launch({ package: pkg('rogue'), input: 'loop', cpuBudgetMs: 600_000 });
      await spin.started;
      const stopped = await kernel.stop(spin.id, { graceMs: 300 });
      expect(stopped.error?.code).toBe('CONTAINER_TERMINATED');
      expect(stopped.record.status).toBe('failed');
      // Pause and resume (the lifecycle moves; the guest's next host call would block while paused).
      const other = await kernel.launch({ package: pkg('rogue'), input: 'loop', cpuBudgetMs: 600_000 });
      await other.started;
      await kernel.pause(other.id);
      expect(kernel.registry.get(other.id)?.status).toBe('paused');
      await kernel.resume(other.id);
      expect(kernel.registry.get(other.id)?.status).toBe('running');
      expect((await kernel.stop(other.id, { graceMs: 100 })).record.status).toBe('failed');
      // A tightening applies to the next container: hello's log call is denied now.
      kernel.policy.tighten({ syscalls: ['forgeone:log/write'], action: 'deny', reason: 'e2e: no logging', actor: 'test' });
      const hello = await (await kernel.launch({ package: pkg('hello'), input: 'tight' })).done;
      expect(hello.summary.denials).toBe(1);
      // Resources are accounted per container: its calls, its denials, its memory.
      expect(hello.record.resources).toMatchObject({ calls: 1, denials: 1 });
      expect(hello.record.resources.memoryBytesPeak).toBeGreaterThan(0);
      expect(hello.explanation.text).toMatch(/tightening/);
      const changes = await kernel.audit.query({ kind: 'policy.changed' });
      expect(changes.at(-1)?.details).toMatchObject({ change: 'tightened', action: 'deny' });
      expect(events).toEqual(expect.arrayContaining(['container.state:creating', 'container.state:running', 'container.state:paused', 'container.state:stopping', 'container.state:failed', 'policy.changed', 'denial']));
    } finally {
      await kernel.shutdown();
    }
  });

  it('self-tests pass (crypto, policy, store, clock, trust root, sandbox canaries) and are audited', async () => {
    const kernel = await createKernel({ trustRoot: TRUST_ROOT, cacheDir: join(tmp, 'cache'), boot: { measureKernel: false } });
    try {
      const report = await kernel.selfTest();
      expect(report.results.filter((r) => r.status === 'failed' || r.status === 'error').map((r) => `${r.name}: ${r.status} ${r.message ?? ''}`)).toEqual([]);
      expect(report.results.map((r) => r.name)).toContain('sandbox.canaries');
      expect(kernel.degraded).toBe(false);
      expect((await kernel.audit.query({ kind: 'selftest' })).length).toBe(1);
    } finally {
      await kernel.shutdown();
    }
  });
});

describe('forgeone demo', () => {
  it('runs the reference app end to end in a fresh home and exits 0', async () => {
    const { runCli } = await import('@forgeone/cli');
    let stdout = '';
    const status = await runCli(['demo', '--home', join(tmp, 'demo-home'), '--json'], { stdout: (t) => (stdout += t), stderr: () => undefined, isTTY: false, env: {}, cwd: tmp });
    const out = JSON.parse(stdout) as { ok: boolean; problems: string[]; lines: string[] };
    expect(out.problems).toEqual([]);
    expect(status).toBe(0);
    const text = out.lines.join('\n');
    expect(text).toMatch(/== boot: unknown \(normal mode\)/);
    expect(text).toMatch(/hello finished: Hello, ForgeOne!/);
    expect(text).toMatch(/rogue: QUARANTINED/);
    expect(text).toMatch(/trace of hello: verified/);
    expect(text).toMatch(/trace of rogue: verified/);
    expect(text).toMatch(/replay of hello from its trace: identical/);
  });
});
