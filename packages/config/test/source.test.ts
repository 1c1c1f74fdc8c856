import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForgeError } from '@forgeone/common';
import { nextTrustRoot, signTrustRoot, SigningKey } from '@forgeone/crypto';
import {
  addConfigSignature,
  createFileConfigSource,
  createStaticConfigSource,
  signConfig,
  writeSignedConfig,
  type ConfigAuditEvent,
  type ConfigEvent,
  type ConfigSource,
  type KernelConfigInput,
} from '../src/index.js';
import { fixture, nextEvent, replaceFile, tempDir, type Fixture } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let f: Fixture;
let path: string;
let audits: ConfigAuditEvent[];
const sources: ConfigSource[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  f = fixture();
  path = join(dir, 'config.json');
  audits = [];
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
  await cleanup();
});

function source(extra: Partial<Parameters<typeof createFileConfigSource>[0]> = {}): ConfigSource {
  const s = createFileConfigSource({ path, trustRoot: f.trustRoot, crypto: f.crypto, debounceMs: 20, audit: (e) => void audits.push(e), ...extra });
  sources.push(s);
  return s;
}

const write = (config: KernelConfigInput, keys = f.configKeys) => writeSignedConfig(path, config, keys);
const writeDoc = (doc: unknown) => replaceFile(path, JSON.stringify(doc));

describe('createFileConfigSource: load', () => {
  it('reads, verifies and parses the file, and audits the first config', async () => {
    await write({ version: 3, api: { port: 9000 } });
    const s = source();
    expect(s.current()).toBeUndefined();
    const config = await s.load();
    expect(config.api.port).toBe(9000);
    expect(s.current()).toBe(config);
    expect(await s.load()).toBe(config);
    expect(audits).toEqual([{ kind: 'config.change', version: 3, previous: null }]);
  });

  it('refuses a file the trust root does not vouch for, and audits the refusal', async () => {
    await write({ version: 3 }, [f.outsider]);
    const s = source();
    await expect(s.load()).rejects.toMatchObject({ code: 'CONFIG_SIGNATURE_INVALID' });
    expect(s.current()).toBeUndefined();
    expect(audits).toEqual([expect.objectContaining({ kind: 'config.rejected', version: 3, previous: null, code: 'CONFIG_SIGNATURE_INVALID' })]);
  });

  it('refuses every config when the trust root has no config role', async () => {
    const noRole = fixture({ n: 0 });
    await write({ version: 3 }, [noRole.rootKey]);
    const s = source({ trustRoot: noRole.trustRoot, crypto: noRole.crypto });
    await expect(s.load()).rejects.toMatchObject({ code: 'CONFIG_SIGNATURE_INVALID', details: { reason: 'no-config-role' } });
  });

  it('a missing file is IO_ERROR', async () => {
    await expect(source().load()).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(audits[0]).toMatchObject({ kind: 'config.rejected', version: null, code: 'IO_ERROR' });
  });

  it('minVersion refuses an older file put in place while the kernel was down', async () => {
    await write({ version: 4 });
    await expect(source({ minVersion: 5 }).load()).rejects.toMatchObject({ code: 'CONFIG_ROLLBACK', details: { offered: 4, minimum: 5 } });
    expect((await source({ minVersion: 4 }).load()).version).toBe(4);
  });

  it('a change that cannot be audited is not applied', async () => {
    await write({ version: 3 });
    const s = source({ audit: () => Promise.reject(new ForgeError('IO_ERROR', 'audit log full')) });
    await expect(s.load()).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('audit log full') });
    expect(s.current()).toBeUndefined();
  });
});

describe('createFileConfigSource: reload', () => {
  it('accepts only a valid signature and a strictly higher version; the config in force survives every refusal', async () => {
    await write({ version: 2, node: { name: 'two' } });
    const changes: [number, number | undefined][] = [];
    const rejections: string[] = [];
    const s = source({ onChange: (c, p) => changes.push([c.version, p?.version]), onReject: (e) => rejections.push(e.code) });
    const v2 = await s.load();

    // Same bytes again: nothing happened, nothing audited.
    expect(await s.reload()).toEqual({ status: 'unchanged', config: v2 });

    const refused: [string, () => Promise<unknown>, string, number | null][] = [
      ['same version, other content', () => write({ version: 2, node: { name: 'evil' } }), 'CONFIG_ROLLBACK', 2],
      ['lower version', () => write({ version: 1 }), 'CONFIG_ROLLBACK', 1],
      ['untrusted signer', () => write({ version: 9 }, [f.outsider]), 'CONFIG_SIGNATURE_INVALID', 9],
      ['tampered after signing', () => writeDoc(((d) => ((d.signed.config as { boot: { allowDegraded: boolean } }).boot.allowDegraded = true, d))(structuredClone(signConfig({ version: 9 }, f.configKeys)))), 'CONFIG_SIGNATURE_INVALID', 9],
      ['malformed JSON', () => replaceFile(path, '{"signed": {"version": 9'), 'CONFIG_INVALID', null],
      ['unsigned', () => writeDoc({ signed: { type: 'forgeone.config', version: 9, config: { version: 9 } }, signatures: [] }), 'CONFIG_SIGNATURE_INVALID', 9],
    ];
    for (const [label, act, code, version] of refused) {
      await act();
      const outcome = await s.reload();
      expect(outcome.status, label).toBe('rejected');
      if (outcome.status !== 'rejected') continue;
      expect(outcome.error.code, label).toBe(code);
      expect(outcome.current, label).toBe(v2);
      expect(s.current(), label).toBe(v2);
      expect(audits.at(-1), label).toMatchObject({ kind: 'config.rejected', version, previous: 2, code });
    }
    expect(rejections).toEqual(refused.map((r) => r[2]));

    await write({ version: 3, node: { name: 'three' } });
    const outcome = await s.reload();
    expect(outcome).toMatchObject({ status: 'accepted', previous: v2 });
    expect(s.current()?.node.name).toBe('three');
    expect(changes).toEqual([[2, undefined], [3, 2]]);
    expect(audits.at(-1)).toEqual({ kind: 'config.change', version: 3, previous: 2 });
    expect(audits).toHaveLength(1 + refused.length + 1);
  });

  it('a validly signed but invalid config is refused with the field named', async () => {
    await write({ version: 2 });
    const s = source();
    await s.load();
    const [key] = f.configKeys as [SigningKey];
    await writeDoc(addConfigSignature({ signed: { type: 'forgeone.config', version: 3, config: { version: 3, api: { port: -1 } } }, signatures: [] }, key));
    const outcome = await s.reload();
    expect(outcome).toMatchObject({ status: 'rejected', error: { code: 'CONFIG_INVALID', details: { issues: ['signed.config.api.port: expected a non-negative integer'] } } });
  });

  it('follows the trust root in force when given a function (key rotation)', async () => {
    let root = f.trustRoot;
    const newKey = SigningKey.generate(f.crypto);
    await write({ version: 2 });
    const s = source({ trustRoot: () => root });
    await s.load();
    await write({ version: 3 }, [newKey]);
    expect((await s.reload()).status).toBe('rejected');
    root = signTrustRoot(f.crypto, nextTrustRoot(f.crypto, f.trustRoot, { kind: 'add-key', role: 'config', key: newKey.toPublic() }), f.rootKey);
    expect(await s.reload()).toMatchObject({ status: 'accepted', config: { version: 3 } });
  });

  it('listeners that throw do not undo a decision', async () => {
    await write({ version: 2 });
    const s = source({ onChange: () => { throw new Error('listener bug'); } });
    s.subscribe(() => { throw new Error('listener bug'); });
    expect((await s.load()).version).toBe(2);
  });
});

describe('createFileConfigSource: watch (real file system events)', () => {
  it('hot-reloads a newer signed file, refuses the rest, and keeps the config in force', async () => {
    await write({ version: 2 });
    const s = source();
    const v2 = await s.load();
    s.watch();
    s.watch(); // idempotent

    const rejected = (code: string) => (e: ConfigEvent) => e.kind === 'config.rejected' && e.error.code === code;

    let waiting = nextEvent(s, rejected('CONFIG_ROLLBACK'));
    await write({ version: 2, api: { port: 1234 } });
    expect(await waiting).toMatchObject({ current: v2 });

    waiting = nextEvent(s, rejected('CONFIG_ROLLBACK'));
    await write({ version: 1 });
    await waiting;

    waiting = nextEvent(s, rejected('CONFIG_SIGNATURE_INVALID'));
    await write({ version: 5 }, [f.outsider]);
    await waiting;

    waiting = nextEvent(s, rejected('CONFIG_INVALID'));
    await replaceFile(path, 'not json at all');
    await waiting;
    expect(s.current()).toBe(v2);

    waiting = nextEvent(s, (e) => e.kind === 'config.change');
    await write({ version: 3, scheduler: { cpuSlots: 8 } });
    const change = await waiting;
    expect(change).toMatchObject({ kind: 'config.change', previous: v2, config: { version: 3, scheduler: { cpuSlots: 8 } } });
    expect(s.current()?.scheduler.cpuSlots).toBe(8);

    // An in-place (non-atomic) write is seen too.
    waiting = nextEvent(s, (e) => e.kind === 'config.change');
    await writeFile(path, JSON.stringify(signConfig({ version: 4 }, f.configKeys)));
    expect(await waiting).toMatchObject({ config: { version: 4 } });

    const kinds = audits.map((a) => `${a.kind}:${a.version}:${a.code ?? ''}`);
    expect(kinds).toContain('config.change:3:');
    expect(kinds).toContain('config.change:4:');
    for (const code of ['CONFIG_ROLLBACK', 'CONFIG_SIGNATURE_INVALID', 'CONFIG_INVALID']) expect(kinds.some((k) => k.endsWith(`:${code}`))).toBe(true);
    expect(audits.filter((a) => a.kind === 'config.change').map((a) => [a.version, a.previous])).toEqual([[2, null], [3, 2], [4, 3]]);
  });
});

describe('createStaticConfigSource', () => {
  it('holds a config given in code and accepts only newer updates, audited', async () => {
    const events: ConfigEvent[] = [];
    const s = createStaticConfigSource({ version: 1, api: { port: 0 } }, { audit: (e) => void audits.push(e) });
    s.subscribe((e) => events.push(e));
    s.watch();
    const c1 = await s.load();
    expect(c1.api.port).toBe(0);
    expect(await s.reload()).toEqual({ status: 'unchanged', config: c1 });
    expect(await s.update({ version: 1, api: { port: 1 } })).toMatchObject({ status: 'rejected', error: { code: 'CONFIG_ROLLBACK' } });
    expect(await s.update({ version: 2, api: { port: 'x' } as never })).toMatchObject({ status: 'rejected', error: { code: 'CONFIG_INVALID' } });
    expect(s.current()).toBe(c1);
    expect(await s.update({ version: 2, api: { port: 2 } })).toMatchObject({ status: 'accepted', previous: c1 });
    expect(s.current()?.api.port).toBe(2);
    expect(events.map((e) => e.kind)).toEqual(['config.change', 'config.rejected', 'config.rejected', 'config.change']);
    expect(audits.map((a) => [a.kind, a.version, a.previous, a.code])).toEqual([
      ['config.change', 1, null, undefined],
      ['config.rejected', 1, 1, 'CONFIG_ROLLBACK'],
      ['config.rejected', null, 1, 'CONFIG_INVALID'],
      ['config.change', 2, 1, undefined],
    ]);
    await s.close();
  });

  it('an invalid config is refused at creation', () => {
    expect(() => createStaticConfigSource({ scheduler: { cpuSlots: 0 } })).toThrow(/scheduler\.cpuSlots: expected a positive integer/);
  });
});
