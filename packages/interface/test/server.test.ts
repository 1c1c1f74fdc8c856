// The server over real HTTP on 127.0.0.1, with a real kernel: tokens, roles, limits, validation, the routes
// that need no running plugin, and the audit trail of mutating requests.
import { signPolicyBundle } from '@forgeone/trust';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/client.js';
import { createManualClock, http, smallPackage, startHarness, type Harness } from './fixture.js';
import { isForgeError } from '@forgeone/common';

let h: Harness;
let admin: string;
let operator: string;
let auditor: string;
let reader: string;

beforeAll(async () => {
  h = await startHarness({ limits: { bodyBytes: 64 * 1024, packageBytes: 256 * 1024 } });
  [admin, operator, auditor, reader] = await Promise.all([h.token('admin'), h.token('operator'), h.token('auditor'), h.token('reader')]);
});
afterAll(async () => {
  await h.close();
  expect(h.unexpected).toEqual([]);
});

describe('authentication', () => {
  it('answers health without a token, and nothing else', async () => {
    const r = await http(`${h.url}/v1/health`);
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ status: 'ok', mode: 'normal' });
    for (const path of ['/v1/boot', '/v1/containers', '/v1/openapi.json', '/metrics', '/v1/events']) {
      const a = await http(`${h.url}${path}`);
      expect([path, a.status, a.json().error?.code]).toEqual([path, 401, 'AUTH_MISSING']);
      expect(a.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('refuses malformed, wrongly signed and expired tokens with their codes', async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{ authorization: 'Basic dXNlcjpwdw==' }, 401, 'AUTH_INVALID'],
      [{ authorization: 'Bearer' }, 401, 'AUTH_INVALID'],
      [{ authorization: 'Bearer not-a-jwt' }, 401, 'AUTH_INVALID'],
      [{ authorization: `Bearer ${await h.token('admin', { key: h.keys.stranger })}` }, 401, 'AUTH_INVALID'],
      [{ authorization: `Bearer ${await h.token('admin', { key: h.keys.packages })}` }, 401, 'AUTH_INVALID'],
      [{ authorization: `Bearer ${await h.token('admin', { ttlSeconds: 60, clock: createManualClock(Date.now() - 3_600_000) })}` }, 401, 'AUTH_EXPIRED'],
      [{ authorization: `Bearer ${admin.slice(0, -4)}AAAA` }, 401, 'AUTH_INVALID'],
    ];
    for (const [headers, status, code] of cases) {
      const r = await http(`${h.url}/v1/containers`, { headers });
      expect([headers.authorization?.slice(0, 20), r.status, r.json().error?.code]).toEqual([headers.authorization?.slice(0, 20), status, code]);
    }
    expect((await http(`${h.url}/v1/containers`, { token: admin })).status).toBe(200);
  });

  it('enforces roles with 403 AUTH_FORBIDDEN, and audits refused mutations with the caller', async () => {
    const tiny = smallPackage(h.keys.packages, 'forbidden-pkg');
    const upload = await http(`${h.url}/v1/packages`, { token: reader, body: tiny, headers: { 'content-type': 'application/octet-stream' } });
    expect(upload.status).toBe(403);
    expect(upload.json().error).toMatchObject({ code: 'AUTH_FORBIDDEN', details: { role: 'reader', allowed: ['admin', 'operator'] } });
    const matrix: [string, string, string, number][] = [
      ['GET', '/v1/audit', reader, 403],
      ['GET', '/v1/audit', operator, 403],
      ['GET', '/v1/audit', auditor, 200],
      ['GET', '/v1/quarantine', reader, 403],
      ['GET', '/v1/quarantine', auditor, 200],
      ['GET', '/v1/diagnostics', reader, 403],
      ['GET', '/v1/diagnostics', operator, 200],
      ['GET', '/v1/containers', reader, 200],
      ['PUT', '/v1/policy', operator, 403],
      ['PUT', '/v1/policy', auditor, 403],
      ['POST', '/v1/containers', auditor, 403],
    ];
    for (const [method, path, token, status] of matrix) {
      const r = await http(`${h.url}${path}`, { method, token, ...(method === 'GET' ? {} : { json: {} }) });
      expect([method, path, r.status]).toEqual([method, path, status]);
      if (status === 403) expect(r.json().error?.code).toBe('AUTH_FORBIDDEN');
    }
    const refused = (await h.kernel.audit.query({ kind: 'api.action' })).filter((e) => e.details['code'] === 'AUTH_FORBIDDEN');
    expect(refused.map((e) => [e.actor, e.details['operation'], e.details['status']])).toEqual(
      expect.arrayContaining([
        ['api:user:reader', 'uploadPackage', 403],
        ['api:user:operator', 'replacePolicy', 403],
        ['api:user:auditor', 'launchContainer', 403],
      ]),
    );
  });

  it('tells the caller who it is', async () => {
    const r = await http(`${h.url}/v1/whoami`, { token: auditor });
    expect(r.json()).toMatchObject({ subject: 'user:auditor', role: 'auditor', keyId: h.keys.api.keyId });
  });
});

describe('limits and validation', () => {
  it('answers a malformed or oversized body with 400 or 413 and a code, never 500', async () => {
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, { body?: string | Uint8Array; headers?: Record<string, string> }, number, string][] = [
      ['POST', '/v1/policy/explain', { body: '{"syscall": ', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: '', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: '[1,2,3]', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: '{"syscall":"wasi:cli/stdout","__proto__":{"x":1}}', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: '{"syscall":"wasi:cli/stdout","extra":1}', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: '{"syscall":42}', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/policy/explain', { body: JSON.stringify({ syscall: 'wasi:cli/stdout', pad: 'x'.repeat(70 * 1024) }), headers: json }, 413, 'LIMIT_EXCEEDED'],
      ['POST', '/v1/policy/explain', { body: 'syscall=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['POST', '/v1/policy/explain', { body: new Uint8Array([1, 2]), headers: { 'content-type': 'application/octet-stream' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['POST', '/v1/packages', { body: '{}', headers: json }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['POST', '/v1/packages', { body: new Uint8Array(300 * 1024), headers: { 'content-type': 'application/octet-stream' } }, 413, 'LIMIT_EXCEEDED'],
      ['POST', '/v1/packages', { body: new Uint8Array([1, 2, 3]), headers: { 'content-type': 'application/octet-stream' } }, 400, 'PKG_BAD_MAGIC'],
      ['POST', '/v1/containers', { body: '{"input":"x"}', headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/containers', { body: JSON.stringify({ digest: 'a'.repeat(64), package: 'AAAA' }), headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/containers', { body: JSON.stringify({ digest: 'a'.repeat(64) }), headers: json }, 404, 'NOT_FOUND'],
      ['POST', '/v1/containers', { body: JSON.stringify({ package: 'not base64!' }), headers: json }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/containers', { body: JSON.stringify({ package: Buffer.from('junk').toString('base64') }), headers: json }, 400, 'PKG_BAD_MAGIC'],
      ['GET', '/v1/containers?status=running,bogus', {}, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/containers/not-an-id', {}, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/containers/ctr_01ABCDEF', {}, 404, 'NOT_FOUND'],
      ['GET', '/v1/packages/xyz', {}, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/audit?limit=0', {}, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/audit?kind=boot,nope', {}, 400, 'INVALID_ARGUMENT'],
      ['GET', '/v1/traces/trc_missing', {}, 404, 'NOT_FOUND'],
      ['POST', '/v1/quarantine/ctr_01ABCDEF/release', {}, 404, 'NOT_FOUND'],
      ['DELETE', '/v1/containers', {}, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, init, status, code] of cases) {
      const r = await http(`${h.url}${path}`, { method, token: admin, ...init });
      expect([method, path, r.status, r.json().error?.code]).toEqual([method, path, status, code]);
    }
  });

  it('names the bad field', async () => {
    const r = await http(`${h.url}/v1/policy/explain`, { token: admin, json: { syscall: 'wasi:cli/stdout', args: { port: 70000 } } });
    expect(r.status).toBe(400);
    expect(r.json().error?.details).toMatchObject({ field: 'body.args.port' });
    const q = await http(`${h.url}/v1/quarantine`, { token: admin, json: { containerId: 'ctr_01ABC', reason: '' } });
    expect(q.json().error?.details).toMatchObject({ field: 'body.reason' });
  });

  it('never answers 500 to arbitrary JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v1/containers', '/v1/policy/explain', '/v1/quarantine', '/v1/containers/ctr_01ABC/stop'), fc.jsonValue({ maxDepth: 4 }), async (path, value) => {
        const r = await http(`${h.url}${path}`, { token: operator, json: value });
        expect(r.status, `${path} ${JSON.stringify(value)} → ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(typeof r.json().error?.code).toBe('string');
      }),
      { numRuns: 150 },
    );
  });

  it('limits requests per token with 429 RATE_LIMITED; other tokens are not affected', async () => {
    const limited = await startHarness({ limits: { requestsPerWindow: 5, windowMs: 60_000 } });
    try {
      const t1 = await limited.token('reader');
      const t2 = await limited.token('reader');
      for (let i = 0; i < 5; i++) expect((await http(`${limited.url}/v1/containers`, { token: t1 })).status).toBe(200);
      const over = await http(`${limited.url}/v1/containers`, { token: t1 });
      expect(over.status).toBe(429);
      expect(over.json().error).toMatchObject({ code: 'RATE_LIMITED', retryable: true, details: { limit: 5 } });
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await http(`${limited.url}/v1/containers`, { token: t2 })).status).toBe(200);
      // health is not limited by any token's budget
      expect((await http(`${limited.url}/v1/health`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('routes', () => {
  it('documents every registered route in /v1/openapi.json, with its roles', async () => {
    const doc = (await http(`${h.url}/v1/openapi.json`, { token: reader })).json() as { openapi: string; paths: Record<string, Record<string, { operationId: string; 'x-forgeone-roles': string[] }>>; components: { schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const registered = h.server.routes.map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    expect(registered.length).toBeGreaterThan(30);
    expect(new Set(documented)).toEqual(new Set(registered));
    expect(doc.paths['/v1/policy']!.put!['x-forgeone-roles']).toEqual(['admin']);
    expect(doc.paths['/v1/health']!.get!['x-forgeone-roles']).toEqual([]);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Error', 'Container', 'Package', 'AuditEvent']));
    // Every $ref points at a component that exists.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
  });

  it('uploads, lists and verifies packages; refuses one signed by an untrusted key', async () => {
    const client = createClient({ baseUrl: h.url, token: operator });
    const bytes = smallPackage(h.keys.packages, 'tiny', '1.2.3');
    const up = await client.packages.upload(bytes);
    expect(up.package).toMatchObject({ name: 'tiny', version: '1.2.3', size: bytes.length, signers: [h.keys.packages.keyId], uploadedBy: 'api:user:operator' });
    const again = await client.packages.upload(bytes);
    expect(again.package.uploadedAt).toBe(up.package.uploadedAt);
    expect((await client.packages.list()).packages.map((p) => p.digest)).toContain(up.package.digest);
    expect((await client.packages.get({ params: { digest: up.package.digest } })).package.name).toBe('tiny');
    expect(await client.packages.verify(up.package.digest)).toMatchObject({ ok: true, digest: up.package.digest });
    expect(await client.packages.verify(bytes)).toMatchObject({ ok: true, name: 'tiny' });
    const untrusted = smallPackage(h.keys.stranger, 'tiny', '1.2.4');
    const e = await client.packages.upload(untrusted).catch((x: unknown) => x);
    expect(isForgeError(e) && e.code).toMatch(/^PKG_(SIGNER_UNTRUSTED|QUORUM_NOT_MET|SIGNATURE_INVALID)$/);
    const audit = await h.kernel.audit.query({ kind: 'api.action', subject: 'tiny@1.2.3' });
    expect(audit[0]).toMatchObject({ actor: 'api:user:operator', details: { operation: 'uploadPackage', status: 201, role: 'operator', digest: up.package.digest } });
  });

  it('explains a decision of the policy in force, and replaces the policy with a signed bundle', async () => {
    const client = createClient({ baseUrl: h.url, token: admin });
    const denied = await client.policy.explain({ body: { syscall: 'wasi:filesystem/open', args: { path: '/etc/../etc/passwd' } } });
    expect(denied.decision).toMatchObject({ verdict: 'quarantine', rule: 'base/system-paths' });
    const allowed = await client.policy.explain({ body: { syscall: 'forgeone:log/write' } });
    expect(allowed.decision.verdict).toBe('allow');
    const current = await client.policy.get();
    expect(current).toMatchObject({ name: 'forgeone-kernel-default', version: 1 });
    const next = { ...current.policy, version: 2 };
    // Unsigned by the policy role: refused.
    const forged = signPolicyBundle({ policy: next }, h.keys.stranger);
    const e = await client.policy.replace({ body: forged as never }).catch((x: unknown) => x);
    expect(isForgeError(e) && e.code).toBe('POLICY_BUNDLE_SIGNATURE');
    const events = client.events({ types: ['policy.changed'] })[Symbol.asyncIterator]();
    const first = events.next();
    const signed = signPolicyBundle({ policy: next }, h.keys.policy);
    expect(await client.policy.replace({ body: signed as never })).toMatchObject({ version: 2 });
    expect((await first).value).toMatchObject({ type: 'policy.changed', data: { type: 'policy.changed', version: 2, kind: 'installed' } });
    await events.return?.();
    expect((await client.policy.get()).version).toBe(2);
    const replay = await client.policy.replace({ body: signed as never }).catch((x: unknown) => x);
    expect(isForgeError(replay) && replay.code).toBe('POLICY_VERSION');
    const kinds = (await h.kernel.audit.query({ kind: ['policy.changed', 'api.action'] })).filter((x) => x.kind === 'policy.changed' || x.details['operation'] === 'replacePolicy');
    expect(kinds.map((x) => [x.kind, x.details['status'] ?? x.details['version']])).toEqual(
      expect.arrayContaining([
        ['api.action', 400],
        ['policy.changed', 2],
        ['api.action', 200],
        ['api.action', 409],
      ]),
    );
  });

  it('serves the audit log: query, verify, evidence, export', async () => {
    const client = createClient({ baseUrl: h.url, token: auditor });
    const q = await client.audit.query({ query: { kind: ['boot'] } });
    expect(q.events[0]).toMatchObject({ kind: 'boot', seq: 0 });
    const page = await client.audit.query({ query: { offset: 1, limit: 2 } });
    expect(page.events.map((e) => e.seq)).toEqual([1, 2]);
    const v = await client.audit.verify();
    expect(v).toMatchObject({ ok: true, issue: null, kernelKeyId: h.kernel.kernelKey.keyId });
    expect(v.events).toBe(page.total);
    const evidence = await client.audit.evidence({ query: { kind: ['boot'] } });
    expect(evidence).toMatchObject({ format: 'forgeone.audit-evidence/v2' });
    const exported = await client.audit.export();
    expect(exported.split('\n').filter((l) => l !== '').length).toBeGreaterThan(v.events);
  });

  it('serves boot status, measurements, diagnostics and metrics', async () => {
    const client = createClient({ baseUrl: h.url, token: operator });
    const boot = await client.boot.status();
    expect(boot).toMatchObject({ verdict: 'unknown', mode: 'normal', trustRoot: { ok: true }, kernelKeyId: h.kernel.kernelKey.keyId });
    const m = await client.boot.measurements();
    expect(m.events[0]).toMatchObject({ index: 0, name: 'trust-root' });
    expect(m.pcr).toBe(boot.pcr);
    const d = await client.diagnostics.get();
    expect(d.api.requests).toBeGreaterThan(0);
    const metrics = await client.diagnostics.metrics();
    expect(metrics).toMatch(/^forgeone_api_requests_total\{operation="listContainers",status="200"\} \d+$/m);
    expect(metrics).toMatch(/forgeone_gate_calls_total/);
  });

  it('turns error responses into ForgeErrors with the server\'s code in the client', async () => {
    const e = await createClient({ baseUrl: h.url, token: reader }).containers.pause({ params: { id: 'ctr_01ABC' } }).catch((x: unknown) => x);
    expect(isForgeError(e) && [e.code, e.details?.['status']]).toEqual(['AUTH_FORBIDDEN', 403]);
    const gone = await createClient({ baseUrl: 'http://127.0.0.1:1', token: reader }).health().catch((x: unknown) => x);
    expect(isForgeError(gone) && gone.code).toBe('IO_ERROR');
  });
});
