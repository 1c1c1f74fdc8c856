import { join } from 'node:path';
import { isForgeError } from '@forgeone/common';
import { NodeCryptoProvider, SigningKey } from '@forgeone/crypto';
import { readSnapshotFile, writeSnapshotFile } from '@forgeone/observer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha3Hex } from '../../src/component/loader.js';
import { createSnapshotter, instantiateComponentWithSnapshot, instantiateWithSnapshot, prepareSnapshotComponent, prepareSnapshotModule } from '../../src/snapshot/index.js';
import { watComponent } from '../component/helpers.js';
import { tempDir, wat } from '../wasi/helpers.js';

const crypto = new NodeCryptoProvider();
const kernelKey = new SigningKey(crypto, new Uint8Array(32).fill(7));
const trusted = { trustedKeys: [kernelKey.publicKey], crypto };

/**
 * Two core instances: `store` defines the memory and a `total` global; `logic` imports both and keeps a
 * call count of its own. `inc` returns calls × 1e6 + total × 1e3 + the memory cell.
 */
const STORE = `(core module $store
    (memory (export "memory") 1)
    (global (export "total") (mut i32) (i32.const 0)))`;
const LOGIC = `(core module $logic
    (import "store" "memory" (memory 1))
    (import "store" "total" (global $total (mut i32)))
    (global $calls (mut i32) (i32.const 0))
    (func (export "inc") (result i32)
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (global.set $total (i32.add (global.get $total) (i32.const 10)))
      (i32.store (i32.const 32) (i32.add (i32.load (i32.const 32)) (i32.const 1)))
      (i32.add (i32.mul (global.get $calls) (i32.const 1000000))
        (i32.add (i32.mul (global.get $total) (i32.const 1000)) (i32.load (i32.const 32))))))`;
const COMPONENT = `(component
  ${STORE}
  ${LOGIC}
  (core instance $s (instantiate $store))
  (core instance $l (instantiate $logic (with "store" (instance $s))))
  (func $inc (result u32) (canon lift (core func $l "inc")))
  (export "inc" (func $inc)))`;

const expected = (n: number): number => n * 1_000_000 + n * 10 * 1000 + n;

describe('snapshots of a component (its core instances)', () => {
  let bytes: Uint8Array;
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    bytes = await watComponent(COMPONENT);
    tmp = tempDir('forgeone-snapshot-component-');
  }, 120_000);
  afterAll(() => tmp.cleanup());

  it('captures every core instance in creation order and restores them into a new instantiation', async () => {
    const prepared = await prepareSnapshotComponent(bytes);
    expect(prepared.componentHash).toBe(sha3Hex(bytes));
    const first = instantiateComponentWithSnapshot(prepared);
    const inc1 = first.exports['inc'] as () => number;
    for (let i = 1; i <= 4; i++) expect(inc1()).toBe(expected(i));

    const state = createSnapshotter().capture(first.target, { containerId: 'ctr-component' });
    expect(state.kind).toBe('component');
    expect(state.instances).toHaveLength(2);
    // store: the memory and the shared total; logic: only its own call count (its memory and total are imported)
    expect(state.instances[0]!.memories.map((m) => m.index)).toEqual([0]);
    expect(state.instances[0]!.globals.map((g) => g.value)).toEqual(['40']);
    expect(state.instances[1]!.memories).toEqual([]);
    expect(state.instances[1]!.globals.map((g) => [g.index, g.value])).toEqual([[1, '4']]);
    const hashes = [...prepared.modules.values()].map((m) => m.moduleHash);
    expect(state.instances.every((i) => hashes.includes(i.moduleHash))).toBe(true);
    expect(new Set(state.instances.map((i) => i.moduleHash)).size).toBe(2);

    const path = join(tmp.dir, 'component.fgsnap');
    await writeSnapshotFile(path, state, { signingKey: kernelKey, crypto });
    const snapshot = await readSnapshotFile(path, trusted);
    const second = instantiateComponentWithSnapshot(await prepareSnapshotComponent(bytes), {}, { snapshot });
    expect((second.exports['inc'] as () => number)()).toBe(expected(5));
    // Without it a new instantiation starts over.
    expect((instantiateComponentWithSnapshot(prepared).exports['inc'] as () => number)()).toBe(expected(1));
  });

  it('a component snapshot is refused by a module and a module snapshot by the component', async () => {
    const prepared = await prepareSnapshotComponent(bytes);
    const componentState = createSnapshotter().capture(instantiateComponentWithSnapshot(prepared).target, { containerId: 'ctr-c' });
    const module = await prepareSnapshotModule(await wat('(module (memory 1) (global (mut i32) (i32.const 0)))'));
    const moduleState = createSnapshotter().capture(instantiateWithSnapshot(module), { containerId: 'ctr-m' });
    const codeOf = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        if (!isForgeError(e)) throw e;
        return e.code;
      }
      return 'none';
    };
    expect(codeOf(() => instantiateWithSnapshot(module, {}, { snapshot: componentState }))).toBe('SNAPSHOT_MODULE_MISMATCH');
    expect(codeOf(() => instantiateComponentWithSnapshot(prepared, {}, { snapshot: moduleState }))).toBe('SNAPSHOT_MODULE_MISMATCH');
    // The right component hash but instances swapped: each instance's module hash is checked.
    const swapped = { ...componentState, instances: [...componentState.instances].reverse() };
    const target = instantiateComponentWithSnapshot(prepared).target;
    expect(codeOf(() => createSnapshotter().restore(target, swapped))).toBe('SNAPSHOT_MODULE_MISMATCH');
  });
});
