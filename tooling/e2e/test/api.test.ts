// The API end to end over real HTTP on 127.0.0.1, with the real plugins: upload and verify packages, launch
// them by digest, watch rogue be quarantined in the event stream, analyse, release, terminate and stop it,
// verify, explain and replay traces, and verify the audit log that recorded every request with its caller.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isForgeError } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { createApiServer, createClient, issueToken, type ApiServer, type ClientEvent, type ForgeClient } from '@forgeone/interface';
import { createKernel, type Kernel } from '@forgeone/kernel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const TRUST_ROOT = join(ROOT, '.forgeone-dev', 'trust-root.json');
const pkg = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'plugins', name, 'dist', `${name}.forgepkg`)));

/** Reads an event stream in the background; `waitFor` resolves once a matching event has arrived. */
function watch(client: ForgeClient) {
  const seen: ClientEvent[] = [];
  const controller = new AbortController();
  let wake: (() => void) | undefined;
  const reading = (async () => {
    for await (const e of client.events({ signal: controller.signal })) {
      seen.push(e);
      wake?.();
    }
  })().catch((e: unknown) => {
    if (!controller.signal.aborted) throw e;
  });
  return {
    seen,
    async waitFor(match: (e: ClientEvent) => boolean, what: string, timeoutMs = 120_000): Promise<ClientEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = seen.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no ${what} event within ${timeoutMs} ms; saw ${seen.map((e) => e.type).join(', ')}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000);
        });
      }
    },
    async stop() {
      controller.abort();
      await reading;
    },
  };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isForgeError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

let tmp: string;
let kernel: Kernel;
let server: ApiServer;
let admin: ForgeClient;
let operator: ForgeClient;
const unexpected: unknown[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-api-e2e-'));
  const provider = new NodeCryptoProvider();
  const tokenKey = SigningKey.generate(provider);
  kernel = await createKernel({ trustRoot: TRUST_ROOT, home: join(tmp, 'home'), cacheDir: join(tmp, 'cache') });
  server = await createApiServer({ kernel, auth: { keys: [tokenKey.toPublic()] }, port: 0, validateResponses: true, installPackages: true, onError: (e) => unexpected.push(e) });
  const { url } = await server.listen();
  admin = createClient({ baseUrl: url, token: await issueToken({ key: tokenKey, role: 'admin', subject: 'user:e2e-admin', ttlSeconds: 3600 }) });
  operator = createClient({ baseUrl: url, token: await issueToken({ key: tokenKey, role: 'operator', subject: 'user:e2e-operator', ttlSeconds: 3600 }) });
});

afterAll(async () => {
  await server?.close();
  await kernel?.shutdown();
  rmSync(tmp, { recursive: true, force: true });
  expect(unexpected).toEqual([]);
});

describe('the API over HTTP with the real plugins', () => {
  it('uploads and verifies packages, runs hello, quarantines rogue in the event stream, releases, terminates and stops it, and the audit log verifies', async () => {
    const events = watch(operator);
    try {
      // Upload and verify.
      const hello = (await operator.packages.upload(pkg('hello'))).package;
      const rogue = (await operator.packages.upload(pkg('rogue'))).package;
      expect(hello).toMatchObject({ name: 'hello', uploadedBy: 'api:user:e2e-operator' });
      expect(await operator.packages.verify(hello.digest)).toMatchObject({ ok: true, name: 'hello', digest: hello.digest });
      expect((await operator.packages.list()).packages.map((p) => p.name).sort()).toEqual(['hello', 'rogue']);
      const tampered = pkg('hello');
      tampered[tampered.length - 100]! ^= 1;
      expect(await code(operator.packages.upload(tampered))).toMatch(/^PKG_/);

      // hello, launched by digest, finishes; its state changes come through the stream.
      const h = (await operator.containers.launch({ body: { digest: hello.digest, input: 'ForgeOne' } })).container;
      expect(h).toMatchObject({ packageName: 'hello', live: true });
      const hr = await operator.containers.report({ params: { id: h.id }, query: { waitMs: 120_000 } });
      expect(hr.done).toBe(true);
      expect(hr.report?.outcome).toEqual({ ok: true, value: 'Hello, ForgeOne!' });
      expect(hr.report?.status).toBe('stopped');
      await events.waitFor((e) => e.type === 'container.state' && e.data['id'] === h.id && e.data['status'] === 'stopped', 'hello stopped');
      const helloStates = events.seen.filter((e) => e.type === 'container.state' && e.data['id'] === h.id).map((e) => e.data['status']);
      expect(helloStates).toEqual(['creating', 'running', 'stopped']);
      expect(await code(operator.containers.pause({ params: { id: h.id } }))).toBe('CONTAINER_INVALID_TRANSITION');

      // Its trace verifies, explains, exports and replays identically.
      const tv = await operator.traces.verify({ params: { id: h.id } });
      expect(tv).toMatchObject({ ok: true, complete: true, signers: [kernel.kernelKey.keyId] });
      const trace = await operator.traces.get({ params: { id: h.id }, query: { limit: 5 } });
      expect(trace.containerId).toBe(h.id);
      expect(trace.calls.length).toBe(Math.min(5, trace.records));
      expect((await operator.traces.explain({ params: { id: trace.traceId } })).verified).toBe(true);
      expect((await operator.traces.export({ params: { id: trace.traceId } })).split('\n')[0]).toContain('"t":"header"');
      const replay = await operator.traces.replay({ params: { id: h.id } });
      expect(replay).toMatchObject({ identical: true, containerId: h.id });

      // Two rogues: both are quarantined; the stream says so.
      const ra = (await operator.containers.launch({ body: { digest: rogue.digest, input: 'all', cpuBudgetMs: 30_000, name: 'rogue-a' } })).container;
      const rb = (await operator.containers.launch({ body: { package: Buffer.from(pkg('rogue')).toString('base64'), input: 'all', cpuBudgetMs: 30_000, name: 'rogue-b' } })).container;
      const qa = await events.waitFor((e) => e.type === 'quarantine' && e.data['id'] === ra.id, 'rogue-a quarantine');
      await events.waitFor((e) => e.type === 'quarantine' && e.data['id'] === rb.id, 'rogue-b quarantine');
      expect(String(qa.data['reason'])).not.toBe('');
      expect(events.seen.some((e) => e.type === 'denial' && e.data['id'] === ra.id)).toBe(true);
      expect((await operator.containers.get({ params: { id: ra.id } })).container.status).toBe('quarantined');
      const listed = await operator.quarantine.list({ query: { state: 'active' } });
      expect(listed.records.map((r) => r.containerId)).toEqual(expect.arrayContaining([ra.id, rb.id]));
      const analysis = await operator.quarantine.analyze({ params: { id: ra.id } });
      expect(analysis.denied.length).toBeGreaterThan(0);
      expect(analysis.record.state).toBe('analyzing');

      // rogue-a: terminated through the red zone; its evidence (trace) stays verifiable.
      const terminated = await operator.quarantine.terminate({ params: { id: ra.id }, body: { reason: 'e2e: hostile' } });
      expect(terminated.record?.state).toBe('terminated');
      const ar = await operator.containers.report({ params: { id: ra.id }, query: { waitMs: 120_000 } });
      expect(ar.report?.status).toBe('failed');
      expect((await operator.traces.verify({ params: { id: ra.id } })).ok).toBe(true);

      // rogue-b: released (its held call continues), then stopped with a short grace period.
      const released = await operator.quarantine.release({ params: { id: rb.id } });
      expect(released.record?.state).toBe('released');
      await events.waitFor((e) => e.type === 'release' && e.data['id'] === rb.id, 'rogue-b release');
      const stopped = await operator.containers.stop({ params: { id: rb.id }, body: { graceMs: 100 } });
      expect(stopped.done).toBe(true);
      expect(['stopped', 'failed']).toContain(stopped.report?.status);

      // The heatmap, served as JSON, has rogue's refused calls in its row.
      const heat = (await operator.diagnostics.heatmap({ query: {} })) as { identities?: { rows: string[] }; cells?: unknown[] };
      expect(JSON.stringify(heat)).toContain('plugin:rogue');

      // The audit log verifies, and holds every mutating request with its caller.
      const audit = await admin.audit.verify();
      expect(audit).toMatchObject({ ok: true, issue: null });
      const actions = (await admin.audit.query({ query: { kind: ['api.action'], limit: 1000 } })).events;
      const byOp = (op: string) => actions.filter((a) => a.details['operation'] === op);
      expect(byOp('uploadPackage').map((a) => [a.actor, a.details['status']])).toEqual([
        ['api:user:e2e-operator', 201],
        ['api:user:e2e-operator', 201],
        ['api:user:e2e-operator', 400],
      ]);
      expect(byOp('launchContainer').map((a) => a.subject)).toEqual([h.id, ra.id, rb.id]);
      expect(byOp('terminateQuarantine')[0]).toMatchObject({ subject: ra.id, actor: 'api:user:e2e-operator', details: { status: 200 } });
      expect(byOp('releaseQuarantine')[0]).toMatchObject({ subject: rb.id, details: { status: 200 } });
      expect(byOp('stopContainer')[0]).toMatchObject({ subject: rb.id, details: { status: 200, graceMs: 100 } });
      expect(byOp('pauseContainer')[0]).toMatchObject({ subject: h.id, details: { status: 409, code: 'CONTAINER_INVALID_TRANSITION' } });
      const evidence = await admin.audit.evidence({ query: { subject: ra.id } });
      expect(evidence).toMatchObject({ format: 'forgeone.audit-evidence/v2' });
    } finally {
      await events.stop();
    }
  });

  it('pauses, resumes and stops a running container', async () => {
    const events = watch(operator);
    try {
      // rogue's `loop` spins without returning: it runs until it is stopped.
      const c = (await operator.containers.launch({ body: { package: Buffer.from(pkg('rogue')).toString('base64'), input: 'loop', cpuBudgetMs: 120_000, name: 'spinner' } })).container;
      await events.waitFor((e) => e.type === 'container.state' && e.data['id'] === c.id && e.data['status'] === 'running', 'spinner running');
      expect((await operator.containers.pause({ params: { id: c.id } })).container.status).toBe('paused');
      expect(await code(operator.containers.pause({ params: { id: c.id } }))).toBe('CONTAINER_INVALID_TRANSITION');
      expect((await operator.containers.resume({ params: { id: c.id } })).container.status).toBe('running');
      const stopped = await operator.containers.stop({ params: { id: c.id }, body: { graceMs: 200 } });
      expect(stopped.done).toBe(true);
      expect(['stopped', 'failed']).toContain(stopped.container.status);
      const states = events.seen.filter((e) => e.type === 'container.state' && e.data['id'] === c.id).map((e) => e.data['status']);
      expect(states.slice(0, 5)).toEqual(['creating', 'running', 'paused', 'running', 'stopping']);
      const actions = (await admin.audit.query({ query: { kind: 'api.action', subject: c.id } })).events.map((e) => [e.details['operation'] ?? e.details['action'], e.details['status'] ?? null]);
      expect(actions).toEqual(
        expect.arrayContaining([
          ['pauseContainer', 200],
          ['pauseContainer', 409],
          ['resumeContainer', 200],
          ['stopContainer', 200],
        ]),
      );
      // The caller's request is one api.action; what happened to the container is the kernel's own event, once.
      expect(actions.filter(([op]) => op === 'pause' || op === 'resume')).toEqual([]);
      const lifecycle = (await admin.audit.query({ query: { kind: 'container.paused,container.resumed', subject: c.id } })).events.map((e) => e.kind);
      expect(lifecycle).toEqual(['container.paused', 'container.resumed']);
    } finally {
      await events.stop();
    }
  });
});
