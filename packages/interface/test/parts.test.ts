// The event hub over real HTTP, the package store over a memory and a file store, and how unexpected errors
// are answered.
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForgeError } from '@forgeone/common';
import { createKernel } from '@forgeone/kernel';
import { createFileStore, createMemoryStore } from '@forgeone/store';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.js';
import { toApiError } from '../src/errors.js';
import { createEventHub, type HubEvent } from '../src/events.js';
import { createStorePackageStore, type PackageInfo, type PackageStore } from '../src/packages.js';
import { createApiServer } from '../src/server.js';
import { issueToken } from '../src/tokens.js';
import { http, makeKeys, makeTrustRoot } from './fixture.js';

/** Read `count` events (`id`, `event`, `data`) from an SSE response. */
async function readEvents(res: Response, count: number): Promise<{ id: number; event: string; data: Record<string, unknown> }[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const out: { id: number; event: string; data: Record<string, unknown> }[] = [];
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const f = Object.fromEntries(frame.split('\n').filter((l) => /^(id|event|data): /.test(l)).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      if (f.data !== undefined) out.push({ id: Number(f.id), event: f.event!, data: JSON.parse(f.data) as Record<string, unknown> });
    }
  }
  await reader.cancel();
  return out;
}

describe('event hub', () => {
  it('fans events out by type, resumes after Last-Event-ID, limits streams, and ends them on close', async () => {
    let emit: (e: HubEvent) => void = () => undefined;
    let subscribed = 0;
    const hub = createEventHub({
      subscribe: (l) => {
        emit = l;
        subscribed++;
        return () => {
          subscribed--;
        };
      },
      maxStreams: 2,
    });
    const server: Server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      try {
        const last = req.headers['last-event-id'];
        hub.open(req, res, { types: u.searchParams.get('types')?.split(','), lastEventId: typeof last === 'string' ? Number(last) : undefined });
      } catch (e) {
        res.writeHead((e as ForgeError).status).end((e as ForgeError).code);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const all = await fetch(`${base}/`);
      const quarantines = await fetch(`${base}/?types=quarantine`);
      expect(all.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(hub.streams).toBe(2);
      const third = await fetch(`${base}/`);
      expect([third.status, await third.text()]).toEqual([429, 'RATE_LIMITED']);
      const reading = [readEvents(all, 3), readEvents(quarantines, 1)];
      emit({ type: 'container.state', time: 1, id: 'ctr_1', status: 'running' } as HubEvent);
      emit({ type: 'quarantine', time: 2, id: 'ctr_1', reason: 'x' } as HubEvent);
      emit({ type: 'release', time: 3, id: 'ctr_1' } as HubEvent);
      const [a, q] = await Promise.all(reading);
      expect(a!.map((e) => [e.id, e.event, e.data['time']])).toEqual([
        [1, 'container.state', 1],
        [2, 'quarantine', 2],
        [3, 'release', 3],
      ]);
      expect(q!.map((e) => e.id)).toEqual([2]);
      // Both readers left: a new client resumes after event 1 and gets the kept events 2 and 3.
      await expect.poll(() => hub.streams).toBe(0);
      const resumed = await fetch(`${base}/`, { headers: { 'last-event-id': '1' } });
      expect((await readEvents(resumed, 2)).map((e) => e.id)).toEqual([2, 3]);
      await expect.poll(() => hub.streams).toBe(0);
      const open = await fetch(`${base}/`);
      const ended = open.text();
      await expect.poll(() => hub.streams).toBe(1);
      hub.close();
      expect(await ended).toMatch(/^retry: 2000\n/);
      expect(subscribed).toBe(0);
    } finally {
      hub.close();
      server.close();
    }
  });
});

const info = (digest: string, at: number): PackageInfo => ({ name: 'p', version: '1.0.0', digest, size: 0, signers: ['k'], threshold: 1, uploadedAt: at, uploadedBy: 'api:t' });

describe('package store', () => {
  it('keeps bytes in chunks, one copy per digest, and survives a reopen of a file store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forgeone-api-pkgs-'));
    try {
      const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
      const d1 = '1'.repeat(64);
      const d2 = '2'.repeat(64);
      let store = await createFileStore({ dir });
      let pkgs = await createStorePackageStore({ store, chunkBytes: 3000 });
      const [first, second] = await Promise.all([pkgs.put(bytes, { ...info(d1, 5), size: bytes.length }), pkgs.put(new Uint8Array(3), info(d1, 9))]);
      expect(second).toEqual(first);
      await pkgs.put(new Uint8Array(0), info(d2, 1));
      expect(await pkgs.get(d1)).toEqual(bytes);
      expect(await pkgs.get(d2)).toEqual(new Uint8Array(0));
      expect((await pkgs.list()).map((p) => p.digest)).toEqual([d2, d1]);
      expect((await store.log(`api/packages/${d1}`)).length).toBe(4);
      await store.close();
      store = await createFileStore({ dir });
      pkgs = await createStorePackageStore({ store });
      expect(await pkgs.get(d1)).toEqual(bytes);
      expect(await pkgs.info(d1)).toMatchObject({ uploadedAt: 5, size: 10_000 });
      expect(await pkgs.get('3'.repeat(64))).toBeUndefined();
      await expect(pkgs.put(bytes, info('nope', 1))).rejects.toThrow(/64 lowercase hex/);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('unexpected errors', () => {
  it('are answered 500 INTERNAL without their message, reported to onError, and the server keeps serving', async () => {
    expect(toApiError(new Error('/etc/secret went wrong')).error.toJSON()).toEqual({ code: 'INTERNAL', message: 'internal error (see the server log)', retryable: false });
    expect(toApiError(new ForgeError('INTERNAL', 'leaky detail')).error.message).not.toContain('leaky');
    const keys = makeKeys();
    const kernel = await createKernel({ trustRoot: makeTrustRoot(keys), store: createMemoryStore(), boot: { measureKernel: false } });
    const broken: PackageStore = {
      put: async () => Promise.reject(new TypeError('boom at /srv/secret')),
      get: async () => undefined,
      info: async () => undefined,
      list: async () => Promise.reject(new TypeError('boom at /srv/secret')),
    };
    const seen: unknown[] = [];
    const server = await createApiServer({ kernel, auth: {}, port: 0, packages: broken, onError: (e) => seen.push(e) });
    const { url } = await server.listen();
    try {
      const token = await issueToken({ key: keys.api, role: 'reader', subject: 'user:x', ttlSeconds: 60 });
      const r = await http(`${url}/v1/packages`, { token });
      expect(r.status).toBe(500);
      expect(r.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error (see the server log)', retryable: false } });
      expect(r.text).not.toContain('secret');
      expect(seen).toHaveLength(1);
      expect((await createClient({ baseUrl: url, token }).containers.list()).containers).toEqual([]);
    } finally {
      await server.close();
      await kernel.shutdown();
    }
  });

  it('refuses to start without any token key', async () => {
    const keys = makeKeys();
    const kernel = await createKernel({ trustRoot: makeTrustRoot(keys, false), store: createMemoryStore(), boot: { measureKernel: false } });
    try {
      await expect(createApiServer({ kernel, auth: {}, port: 0 })).rejects.toThrow(/no key may issue API tokens/);
      await expect(createApiServer({ kernel, auth: { trustRootRole: 'ops' }, port: 0 })).rejects.toThrow(/no role "ops"/);
    } finally {
      await kernel.shutdown();
    }
  });
});
