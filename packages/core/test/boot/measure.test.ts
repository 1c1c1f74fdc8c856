import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { concatBytes, toHex, utf8 } from '@forgeone/common';
import { NobleCryptoProvider, NodeCryptoProvider } from '@forgeone/crypto';
import {
  INITIAL_PCR,
  eventLogDigest,
  extendPcr,
  kernelInputs,
  measure,
  measureDirectory,
  parseEventLog,
  poisonDigest,
  replayEventLog,
  type MeasurementEvent,
  type MeasurementInput,
} from '../../src/index.js';
import { errorOf } from './helpers.js';

const crypto = new NodeCryptoProvider();
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forgeone-measure-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha3 = (b: Uint8Array): string => toHex(crypto.sha3_256(b));

describe('measure', () => {
  it('a file is the SHA3-256 of its content, bytes the SHA3-256 of themselves, and the chain starts at 32 zero bytes', async () => {
    await writeFile(join(dir, 'a'), 'hello');
    const { events, pcr } = await measure(
      [
        { name: 'a', kind: 'config', source: { path: join(dir, 'a') } },
        { name: 'b', kind: 'other', source: { bytes: utf8('hello') } },
      ],
      { crypto },
    );
    expect(events.map((e) => e.digest)).toEqual([sha3(utf8('hello')), sha3(utf8('hello'))]);
    expect(events.map((e) => e.index)).toEqual([0, 1]);
    const step1 = sha3(concatBytes(new Uint8Array(32), crypto.sha3_256(utf8('hello'))));
    expect(extendPcr(crypto, INITIAL_PCR, events[0]!.digest)).toBe(step1);
    expect(pcr).toBe(sha3(concatBytes(Uint8Array.from(Buffer.from(step1, 'hex')), crypto.sha3_256(utf8('hello')))));
  });

  it('an input that cannot be measured extends the poison digest of its name and keeps its place', async () => {
    const inputs: MeasurementInput[] = [
      { name: 'x', kind: 'other', source: { bytes: utf8('x') } },
      { name: 'gone', kind: 'config', source: { path: join(dir, 'nope') } },
      { name: 'y', kind: 'other', source: { bytes: utf8('y') } },
    ];
    const { events, pcr } = await measure(inputs, { crypto });
    expect(events).toHaveLength(3);
    expect(events[1]).toMatchObject({ index: 1, name: 'gone', poisoned: true, digest: poisonDigest(crypto, 'gone') });
    expect(events[1]!.error).toMatch(/ENOENT/);
    expect(poisonDigest(crypto, 'gone')).toBe(sha3(utf8('forgeone.boot.poison\0gone')));
    expect(replayEventLog(events, crypto)).toBe(pcr);
    const ok = await measure([inputs[0]!, inputs[2]!], { crypto });
    expect(ok.pcr).not.toBe(pcr);
  });

  it('refuses a malformed input list naming the field', async () => {
    await expect(measure([{ name: '', kind: 'other', source: { bytes: new Uint8Array() } }], { crypto })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'inputs[0].name' } });
    await expect(measure([{ name: 'a', kind: 'bogus' as never, source: { bytes: new Uint8Array() } }], { crypto })).rejects.toMatchObject({ details: { field: 'inputs[0].kind' } });
    await expect(measure([{ name: 'a', kind: 'other', source: {} as never }], { crypto })).rejects.toMatchObject({ details: { field: 'inputs[0].source' } });
    await expect(measure([{ name: 'a\nb', kind: 'other', source: { bytes: new Uint8Array() } }], { crypto })).rejects.toMatchObject({ details: { field: 'inputs[0].name' } });
  });

  it('replaying any measured byte strings reproduces the chain value (property, both providers)', async () => {
    const noble = new NobleCryptoProvider();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }), async (blobs) => {
        const inputs: MeasurementInput[] = blobs.map((bytes, i) => ({ name: `in${i}`, kind: 'other', source: { bytes } }));
        const a = await measure(inputs, { crypto });
        const b = await measure(inputs, { crypto: noble });
        expect(b.pcr).toBe(a.pcr);
        expect(replayEventLog(a.events, crypto)).toBe(a.pcr);
        if (a.events.length > 0) expect(a.pcr).not.toBe(INITIAL_PCR);
      }),
      { numRuns: 40 },
    );
  });
});

describe('directory measurement', () => {
  async function tree(root: string, order: 'ab' | 'ba'): Promise<void> {
    await mkdir(join(root, 'sub'), { recursive: true });
    const files: [string, string][] = [
      ['a.txt', 'A'],
      ['sub/b.txt', 'B'],
    ];
    for (const [p, t] of order === 'ab' ? files : [...files].reverse()) await writeFile(join(root, p), t);
  }

  it('does not depend on creation order, and changes with any content, name, or added directory', async () => {
    const one = join(dir, 'one');
    const two = join(dir, 'two');
    await tree(one, 'ab');
    await tree(two, 'ba');
    const d1 = await measureDirectory(crypto, one);
    expect(await measureDirectory(crypto, two)).toBe(d1);
    await writeFile(join(two, 'sub', 'b.txt'), 'C');
    expect(await measureDirectory(crypto, two)).not.toBe(d1);
    await writeFile(join(two, 'sub', 'b.txt'), 'B');
    await mkdir(join(two, 'empty'));
    expect(await measureDirectory(crypto, two)).not.toBe(d1);
  });

  it('measures a symlink as its target text and never follows it out of the tree', async () => {
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'secret v1');
    const root = join(dir, 'bundle');
    await mkdir(root);
    await symlink(outside, join(root, 'link'));
    const before = await measureDirectory(crypto, root);
    await writeFile(outside, 'secret v2');
    expect(await measureDirectory(crypto, root)).toBe(before);

    // A regular file holding the link's target text is not the same as the link.
    const asFile = join(dir, 'asfile');
    await mkdir(asFile);
    await writeFile(join(asFile, 'link'), outside);
    expect(await measureDirectory(crypto, asFile)).not.toBe(before);
  });

  it('a symlink to a directory outside the tree is not descended into', async () => {
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'f'), 'x');
    const root = join(dir, 'r');
    await mkdir(root);
    await symlink(outside, join(root, 'alias'));
    const d = await measureDirectory(crypto, root);
    await writeFile(join(outside, 'g'), 'y');
    await writeFile(join(outside, 'f'), 'changed');
    expect(await measureDirectory(crypto, root)).toBe(d);
  });

  it('an entry limit poisons the input', async () => {
    const root = join(dir, 'many');
    await mkdir(root);
    for (let i = 0; i < 5; i++) await writeFile(join(root, `f${i}`), String(i));
    const { events } = await measure([{ name: 'many', kind: 'other', source: { path: root } }], { crypto, limits: { maxEntries: 3 } });
    expect(events[0]).toMatchObject({ poisoned: true });
    expect(events[0]!.error).toMatch(/more than 3 entries/);
  });

  it('a top-level symlink is followed, unless noFollow asks for its target text', async () => {
    await writeFile(join(dir, 'target'), 'T');
    await symlink(join(dir, 'target'), join(dir, 'link'));
    const { events } = await measure(
      [
        { name: 'followed', kind: 'config', source: { path: join(dir, 'link') } },
        { name: 'link', kind: 'config', source: { path: join(dir, 'link'), noFollow: true } },
      ],
      { crypto },
    );
    expect(events[0]!.digest).toBe(sha3(utf8('T')));
    expect(events[1]!.digest).toBe(sha3(concatBytes(utf8('forgeone/boot/symlink/v1\0'), utf8(join(dir, 'target')))));
  });
});

describe('event logs', () => {
  async function sample(): Promise<MeasurementEvent[]> {
    return [...(await measure(['a', 'b', 'c'].map((n): MeasurementInput => ({ name: n, kind: 'other', source: { bytes: utf8(n) } })), { crypto })).events];
  }

  it('rejects malformed logs naming the field', async () => {
    const ev = await sample();
    expect(errorOf(() => parseEventLog([ev[0], { ...ev[1], index: 5 }], crypto)).details).toEqual({ field: 'events[1].index' });
    expect(errorOf(() => parseEventLog([ev[0], { ...ev[1], digest: 'zz' }], crypto)).details).toEqual({ field: 'events[1].digest' });
    expect(errorOf(() => parseEventLog([ev[0], { ...ev[1], name: 'a' }], crypto)).details).toEqual({ field: 'events[1].name' });
    expect(errorOf(() => parseEventLog([{ ...ev[0], poisoned: true }], crypto)).details).toEqual({ field: 'events[0].digest' });
    expect(errorOf(() => parseEventLog('x', crypto)).details).toEqual({ field: 'events' });
    expect(errorOf(() => replayEventLog([{ ...ev[0]!, extra: 1 } as never], crypto)).code).toBe('INVALID_ARGUMENT');
  });

  it('the log digest binds names as well as digests', async () => {
    const ev = await sample();
    const renamed = ev.map((e, i) => (i === 1 ? { ...e, name: 'B' } : e));
    expect(replayEventLog(renamed, crypto)).toBe(replayEventLog(ev, crypto));
    expect(eventLogDigest(renamed, crypto)).not.toBe(eventLogDigest(ev, crypto));
  });
});

describe('kernelInputs', () => {
  it('lists package.json and every dist file of each package, by name, and stands in for an unlistable dist', async () => {
    const core = join(dir, 'core');
    await mkdir(join(core, 'dist', 'x'), { recursive: true });
    await writeFile(join(core, 'package.json'), '{}');
    await writeFile(join(core, 'dist', 'index.js'), '1');
    await writeFile(join(core, 'dist', 'x', 'y.js'), '2');
    await symlink('/etc/passwd', join(core, 'dist', 'ln'));
    const broken = join(dir, 'broken');
    await mkdir(broken);
    const inputs = await kernelInputs({ '@forgeone/core': core, '@forgeone/broken': broken });
    expect(inputs.map((i) => i.name)).toEqual([
      'kernel:@forgeone/broken/package.json',
      'kernel:@forgeone/broken/dist',
      'kernel:@forgeone/core/package.json',
      'kernel:@forgeone/core/dist/index.js',
      'kernel:@forgeone/core/dist/ln',
      'kernel:@forgeone/core/dist/x/y.js',
    ]);
    const { events } = await measure(inputs, { crypto });
    expect(events.filter((e) => e.poisoned).map((e) => e.name)).toEqual(['kernel:@forgeone/broken/package.json', 'kernel:@forgeone/broken/dist']);
    // The link is measured as its text, not as /etc/passwd.
    expect(events[4]!.digest).toBe(sha3(concatBytes(utf8('forgeone/boot/symlink/v1\0'), utf8('/etc/passwd'))));
  });

  it('refuses a malformed package map', async () => {
    await expect(kernelInputs(['x'] as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'packageDirs' } });
    await expect(kernelInputs({ a: '' })).rejects.toMatchObject({ details: { field: 'packageDirs.a' } });
  });
});
