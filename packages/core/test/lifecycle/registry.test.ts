import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdentity, createManualClock, isForgeError, trustVector, type ManualClock } from '@forgeone/common';
import { createFileStore, createMemoryStore, type Store } from '@forgeone/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createContainerRegistry, type ContainerRegistry, type LaunchInput, type RestartPolicy } from '../../src/index.js';
import { T0, fakePackage, verifiedPackage } from './helpers.js';

const identity = createIdentity({ subject: 'plugin:hello', tenant: 'acme', trust: trustVector('Verified') });
const policy = { name: 'default', version: 3 };

async function rejects(p: Promise<unknown>): Promise<{ code: string; details?: Readonly<Record<string, unknown>> }> {
  try {
    await p;
  } catch (e) {
    if (!isForgeError(e)) throw e;
    return e.details === undefined ? { code: e.code } : { code: e.code, details: e.details };
  }
  throw new Error('expected a rejection');
}

function input(over: Partial<LaunchInput> = {}): LaunchInput {
  return { package: fakePackage(), identity, policy, ...over };
}

describe('container registry (memory store)', () => {
  let clock: ManualClock;
  let store: Store;
  let reg: ContainerRegistry;

  beforeEach(async () => {
    clock = createManualClock(T0);
    store = createMemoryStore();
    reg = await createContainerRegistry({ store, clock });
  });
  afterEach(async () => {
    await store.close();
  });

  it('launches a verified package as creating, recording package, identity and policy', async () => {
    const pkg = verifiedPackage('hello', '2.1.0', clock);
    const rec = await reg.launch({ package: pkg, identity, policy, restartPolicy: 'on-failure' });
    expect(rec).toMatchObject({
      status: 'creating',
      packageName: 'hello',
      packageVersion: '2.1.0',
      packageHash: pkg.digest,
      identity: { subject: 'plugin:hello', tenant: 'acme', trustLevel: 3 },
      policy: { name: 'default', version: 3 },
      restartPolicy: 'on-failure',
      createdAt: T0,
      restarts: 0,
      resources: { cpuMs: 0, memoryBytesPeak: 0, calls: 0, denials: 0 },
    });
    expect(rec.id).toMatch(/^ctr_[0-9A-Z]{26}$/);
    expect(rec.name).toMatch(/^hello-[0-9a-z]{6}$/);
    expect(reg.get(rec.id)).toEqual(rec);
  });

  it('refuses a compromised identity, a bad digest, a bad policy and a taken name', async () => {
    const bad = createIdentity({ subject: 'plugin:evil', trust: trustVector('Compromised') });
    expect((await rejects(reg.launch(input({ identity: bad })))).code).toBe('IDENTITY_COMPROMISED');
    expect(await rejects(reg.launch(input({ package: { manifest: { name: 'a', version: '1' }, digest: 'XYZ' } })))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'package.digest' },
    });
    expect(await rejects(reg.launch(input({ policy: { name: 'p', version: 0 } })))).toMatchObject({ details: { field: 'policy.version' } });
    expect(await rejects(reg.launch(input({ restartPolicy: 'sometimes' as RestartPolicy })))).toMatchObject({ details: { field: 'restartPolicy' } });
    expect(await rejects(reg.launch(input({ name: '../etc' })))).toMatchObject({ details: { field: 'name' } });
    const a = await reg.launch(input({ name: 'web' }));
    expect((await rejects(reg.launch(input({ name: 'web' })))).code).toBe('ALREADY_EXISTS');
    expect((await rejects(reg.launch(input({ id: a.id, name: 'other' })))).code).toBe('ALREADY_EXISTS');
    // once the first is terminal the name is free again
    await reg.markStopped(a.id);
    expect((await reg.launch(input({ name: 'web' }))).name).toBe('web');
    expect(reg.list()).toHaveLength(2);
  });

  it('walks a container through its life and refuses invalid moves with a code', async () => {
    const { id } = await reg.launch(input());
    expect((await rejects(reg.pause(id))).code).toBe('CONTAINER_INVALID_TRANSITION');
    clock.advance(10);
    expect((await reg.start(id)).status).toBe('running');
    expect((await reg.pause(id, { message: 'operator' })).status).toBe('paused');
    expect((await rejects(reg.start(id))).code).toBe('CONTAINER_INVALID_TRANSITION');
    expect((await reg.resume(id)).status).toBe('running');
    expect((await reg.quarantine(id, { message: 'anomaly' })).status).toBe('quarantined');
    expect((await reg.resume(id, { message: 'cleared by reviewer' })).status).toBe('running');
    const stopping = await reg.stop(id, { graceMs: 2000 });
    expect(stopping).toMatchObject({ status: 'stopping', stopDeadline: T0 + 10 + 2000 });
    expect((await rejects(reg.resume(id))).code).toBe('CONTAINER_INVALID_TRANSITION');
    const stopped = await reg.markStopped(id);
    expect(stopped.status).toBe('stopped');
    expect(stopped.history.map((h) => h.to)).toEqual(['creating', 'running', 'paused', 'running', 'quarantined', 'running', 'stopping', 'stopped']);
    for (const attempt of [reg.start(id), reg.pause(id), reg.fail(id, { code: 'WASM_TRAP', message: 'x' }), reg.stop(id)]) {
      expect((await rejects(attempt)).code).toBe('CONTAINER_INVALID_TRANSITION');
    }
    expect((await rejects(reg.restart(id))).code).toBe('CONTAINER_INVALID_TRANSITION'); // policy never
  });

  it('reports an unknown id as NOT_FOUND', async () => {
    expect((await rejects(reg.start('ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H'))).code).toBe('NOT_FOUND');
    expect((await rejects(reg.account('nope', { calls: 1 }))).code).toBe('NOT_FOUND');
    expect(reg.get('nope')).toBeUndefined();
    expect(await reg.remove('nope')).toBe(false);
  });

  it('lists stops whose grace period has ended', async () => {
    const a = await reg.launch(input());
    const b = await reg.launch(input());
    await reg.start(a.id);
    await reg.start(b.id);
    await reg.stop(a.id, { graceMs: 1000 });
    await reg.stop(b.id, { graceMs: 5000 });
    expect(reg.overdueStops()).toEqual([]);
    clock.advance(1000);
    expect(reg.overdueStops().map((r) => r.id)).toEqual([a.id]);
    expect(reg.overdueStops(T0 + 5000).map((r) => r.id)).toEqual([a.id, b.id]);
    await reg.markStopped(a.id, { message: 'terminated after grace period' });
    expect(reg.overdueStops(T0 + 5000).map((r) => r.id)).toEqual([b.id]);
  });

  it('fails with a reason and restarts as the policy allows', async () => {
    const never = await reg.launch(input());
    const onFail = await reg.launch(input({ restartPolicy: 'on-failure' }));
    for (const r of [never, onFail]) {
      await reg.start(r.id);
      await reg.fail(r.id, { code: 'WASM_TRAP', message: 'unreachable executed' });
    }
    expect(reg.get(never.id)?.reason).toEqual({ code: 'WASM_TRAP', message: 'unreachable executed' });
    expect((await rejects(reg.restart(never.id))).code).toBe('CONTAINER_INVALID_TRANSITION');
    const again = await reg.restart(onFail.id);
    expect(again).toMatchObject({ status: 'creating', restarts: 1 });
    expect((await rejects(reg.fail(onFail.id, { message: 'no code' } as never))).details).toEqual({ field: 'reason.code' });
  });

  it('accumulates resources and applies concurrent changes without losing any', async () => {
    const { id } = await reg.launch(input());
    await reg.start(id);
    await Promise.all(Array.from({ length: 50 }, (_, i) => reg.account(id, { cpuMs: 2, calls: 3, denials: i % 2, memoryBytes: i * 1000 })));
    expect(reg.get(id)?.resources).toEqual({ cpuMs: 100, calls: 150, denials: 25, memoryBytesPeak: 49_000 });
    expect((await rejects(reg.account(id, { cpuMs: -1 }))).details).toEqual({ field: 'usage.cpuMs' });
    // two racing moves: the first wins, the second is judged against its result
    const [p, s] = await Promise.allSettled([reg.pause(id), reg.pause(id)]);
    expect(p.status).toBe('fulfilled');
    expect(s.status).toBe('rejected');
    expect(reg.get(id)?.status).toBe('paused');
  });

  it('removes only terminal records', async () => {
    const { id } = await reg.launch(input());
    expect((await rejects(reg.remove(id))).code).toBe('CONTAINER_INVALID_TRANSITION');
    await reg.markStopped(id);
    expect(await reg.remove(id)).toBe(true);
    expect(reg.get(id)).toBeUndefined();
    expect(await (await store.kv('containers')).get(id)).toBeUndefined();
  });

  it('filters lists by status and tenant, oldest first', async () => {
    const other = createIdentity({ subject: 'plugin:x', tenant: 'globex', trust: trustVector('Trusted') });
    const a = await reg.launch(input());
    clock.advance(1);
    const b = await reg.launch(input({ identity: other }));
    clock.advance(1);
    const c = await reg.launch(input());
    await reg.start(b.id);
    expect(reg.list().map((r) => r.id)).toEqual([a.id, b.id, c.id]);
    expect(reg.list({ status: 'creating' }).map((r) => r.id)).toEqual([a.id, c.id]);
    expect(reg.list({ status: ['running', 'paused'] }).map((r) => r.id)).toEqual([b.id]);
    expect(reg.list({ tenant: 'globex' }).map((r) => r.id)).toEqual([b.id]);
  });
});

describe('restart recovery (file store)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'forgeone-core-lifecycle-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('recovers every container after the kernel restarts', async () => {
    const clock = createManualClock(T0);
    let store = await createFileStore({ dir });
    let reg = await createContainerRegistry({ store, clock });
    const launch = async (name: string, restartPolicy: RestartPolicy): Promise<string> => (await reg.launch(input({ name, restartPolicy }))).id;

    const runningNever = await launch('running-never', 'never');
    await reg.start(runningNever);
    await reg.account(runningNever, { cpuMs: 40, calls: 7, memoryBytes: 1 << 20 });
    const runningAlways = await launch('running-always', 'always');
    await reg.start(runningAlways);
    const pausedOnFailure = await launch('paused-onfailure', 'on-failure');
    await reg.start(pausedOnFailure);
    await reg.pause(pausedOnFailure);
    const creatingNever = await launch('creating-never', 'never');
    const stoppingAlways = await launch('stopping-always', 'always');
    await reg.start(stoppingAlways);
    await reg.stop(stoppingAlways, { graceMs: 100 });
    const quarantined = await launch('quarantined', 'always');
    await reg.start(quarantined);
    await reg.quarantine(quarantined, { message: 'exfiltration attempt' });
    const stopped = await launch('stopped', 'always');
    await reg.markStopped(stopped);
    const failed = await launch('failed', 'never');
    await reg.fail(failed, { code: 'SANDBOX_MEMORY_EXCEEDED', message: 'over 64 MiB' });
    const before = new Map(reg.list().map((r) => [r.id, r]));

    // The kernel dies: nothing is closed cleanly except the file store's lock, which is taken over anyway.
    await store.close();
    clock.advance(60_000);

    store = await createFileStore({ dir });
    reg = await createContainerRegistry({ store, clock });
    expect(reg.corrupt).toEqual([]);
    // Loaded exactly as they were.
    for (const r of reg.list()) expect(r).toEqual(before.get(r.id));

    const report = await reg.recover();
    expect(report.failed.map((r) => r.id).sort()).toEqual([runningNever, creatingNever, stoppingAlways].sort());
    expect(report.toRestart.map((r) => r.id).sort()).toEqual([runningAlways, pausedOnFailure].sort());
    expect(report.quarantined.map((r) => r.id)).toEqual([quarantined]);
    for (const r of report.failed) {
      expect(r.status).toBe('failed');
      expect(r.reason?.code).toBe('KERNEL_RESTART');
      expect(r.updatedAt).toBe(T0 + 60_000);
    }
    for (const r of report.toRestart) {
      expect(r).toMatchObject({ status: 'creating', restarts: 1 });
      expect(r.history.slice(-2).map((h) => [h.from, h.to, h.reason?.code])).toEqual([
        [before.get(r.id)!.status, 'failed', 'KERNEL_RESTART'],
        ['failed', 'creating', 'KERNEL_RESTART'],
      ]);
    }
    expect(reg.get(quarantined)).toEqual(before.get(quarantined)); // evidence untouched
    expect(reg.get(stopped)?.status).toBe('stopped');
    expect(reg.get(failed)?.reason?.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(reg.get(runningNever)?.resources).toEqual({ cpuMs: 40, calls: 7, denials: 0, memoryBytesPeak: 1 << 20 });
    // A second call in the same life changes nothing.
    expect(await reg.recover()).toBe(report);
    const after = new Map(reg.list().map((r) => [r.id, r]));
    await store.close();

    // The recovery itself is durable.
    store = await createFileStore({ dir });
    reg = await createContainerRegistry({ store, clock });
    for (const r of reg.list()) expect(r).toEqual(after.get(r.id));
    // The restarted ones can run again; the names of failed ones are free.
    await reg.start(runningAlways);
    expect((await reg.launch(input({ name: 'running-never' }))).status).toBe('creating');
    await store.close();
  });

  it('keeps unreadable records out of the index, reports them and leaves them in place', async () => {
    let store = await createFileStore({ dir });
    let reg = await createContainerRegistry({ store });
    const good = await reg.launch(input());
    await (await store.kv('containers')).set('ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H', new TextEncoder().encode('{"v":1,"id":"nope"}'));
    await store.close();

    store = await createFileStore({ dir });
    reg = await createContainerRegistry({ store });
    expect(reg.list().map((r) => r.id)).toEqual([good.id]);
    expect(reg.corrupt).toHaveLength(1);
    expect(reg.corrupt[0]?.key).toBe('ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H');
    expect((await reg.recover()).corrupt).toEqual(reg.corrupt);
    expect(await (await store.kv('containers')).get('ctr_01JD2Q5W7X4V3C9B8N6M5K4J3H')).toBeDefined();
    await store.close();
  });
});
