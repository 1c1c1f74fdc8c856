import { ForgeError } from '@forgeone/common';
import type { SnapshotState } from '@forgeone/observer';
import { STATE_TAG_EXPORT, exportState, type StateLayout } from '../binary/export-state.js';
import { limitMemoryDetailed } from '../binary/limit-memory.js';
import { ComponentCache, sha3Hex, transpileComponent, type ComponentExports, type ComponentImports, type LoadedComponent } from '../component/loader.js';
import { createSnapshotter, type SnapshotTarget } from './snapshotter.js';
import type { SnapshotInstanceRef } from './state.js';

/** Options of {@link prepareSnapshotComponent}. */
export interface SnapshotComponentOptions {
  /** Also write a memory limit (pages) into every core module, as the sandbox does. */
  readonly maxPages?: number;
  /** The in-memory component cache (default a fresh one, so no core module compiled without the rewrite is reused). */
  readonly cache?: ComponentCache;
  /** jco's on-disk transpile cache (see `transpileComponent`). */
  readonly cacheDir?: string;
}

/** One core module of a component, prepared for snapshots. */
export interface SnapshotCoreModule {
  /** jco's file name for it. */
  readonly name: string;
  /** SHA3-256 (hex) of its original bytes. */
  readonly moduleHash: string;
  /** Where its state lies. */
  readonly layout: StateLayout;
}

/** A component whose core modules are prepared for snapshots. */
export interface SnapshotComponent {
  /** SHA3-256 (hex) of the component bytes: a snapshot's `moduleHash`. */
  readonly componentHash: string;
  /** The loaded component (jco bindings, rewritten core modules). */
  readonly loaded: LoadedComponent;
  /** Its core modules by tag (the number each rewritten module exports as `__forgeone_module_tag`). */
  readonly modules: ReadonlyMap<number, SnapshotCoreModule>;
}

/**
 * Prepare a component for snapshots: transpile it with jco and rewrite each core module (`exportState`
 * with a tag naming the module, then an optional memory limit) before it is compiled.
 *
 * What a component snapshot holds is its core instances' memories and globals. jco's JavaScript glue
 * keeps state of its own (resource handle tables, borrowed handles, pending streams and futures) that no
 * snapshot holds: restore only components whose state between calls lives in linear memory and globals
 * (no live resource handles across the snapshot).
 * @param bytes - the component
 * @param options - memory limit and caches
 * @returns the prepared component
 * @throws ForgeError as `transpileComponent`; `SNAPSHOT_UNSUPPORTED` as `exportState`
 */
export async function prepareSnapshotComponent(bytes: Uint8Array, options: SnapshotComponentOptions = {}): Promise<SnapshotComponent> {
  const modules = new Map<number, SnapshotCoreModule>();
  const maxPages = options.maxPages;
  const prepareCoreModule = (name: string, original: Uint8Array): Uint8Array => {
    const tag = modules.size;
    const exported = exportState(original, { tag });
    let layout = exported.layout;
    let rewritten = exported.bytes;
    if (maxPages !== undefined) {
      rewritten = limitMemoryDetailed(rewritten, maxPages, { validate: false }).bytes;
      layout = { ...layout, memories: layout.memories.map((m) => ({ ...m, max: Math.min(m.max ?? maxPages, maxPages) })) };
    }
    modules.set(tag, { name, moduleHash: sha3Hex(original), layout });
    return rewritten;
  };
  const loaded = await transpileComponent(bytes, {
    prepareCoreModule,
    cache: options.cache ?? new ComponentCache(),
    ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
  });
  if (modules.size !== loaded.coreModules.size) {
    throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'the component\'s core modules were compiled without the snapshot rewrite (a shared cache held them): prepare with a fresh cache');
  }
  return { componentHash: loaded.hash, loaded, modules };
}

/** Options of {@link instantiateComponentWithSnapshot}. */
export interface InstantiateComponentOptions {
  /** A verified snapshot (`readSnapshot`) or a captured state to restore into the new instances. */
  readonly snapshot?: SnapshotState;
}

/** An instantiated component and its core instances as a snapshot target. */
export interface SnapshotComponentInstance {
  /** The component's lifted exports. */
  readonly exports: ComponentExports;
  /** Its core instances in creation order, for the snapshotter. */
  readonly target: SnapshotTarget;
}

/**
 * Instantiate a prepared component, collecting its core instances in creation order, and restore a
 * snapshot into them before anything is called.
 * @param prepared - the component ({@link prepareSnapshotComponent})
 * @param imports - its imports (see `buildComponentImports`)
 * @param options - a snapshot to restore
 * @returns the exports and the snapshot target
 * @throws ForgeError `SNAPSHOT_MODULE_MISMATCH` (the snapshot is of another component or module),
 *   `SNAPSHOT_UNSUPPORTED` (a core instance not prepared for snapshots), whatever the component's start-up throws
 */
export function instantiateComponentWithSnapshot(prepared: SnapshotComponent, imports: ComponentImports = {}, options: InstantiateComponentOptions = {}): SnapshotComponentInstance {
  if (options.snapshot !== undefined && (options.snapshot.kind !== 'component' || options.snapshot.moduleHash !== prepared.componentHash)) {
    throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of ${options.snapshot.kind} ${options.snapshot.moduleHash}, not of component ${prepared.componentHash}`, {
      details: { expected: prepared.componentHash, actual: options.snapshot.moduleHash },
    });
  }
  const instances: SnapshotInstanceRef[] = [];
  const exports = prepared.loaded.instantiate(imports, {
    onCoreInstance: (instance) => {
      const tag = instance.exports[STATE_TAG_EXPORT];
      const info = tag instanceof WebAssembly.Global ? prepared.modules.get(tag.value as number) : undefined;
      if (info === undefined) throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'a core instance of the component was not prepared for snapshots');
      instances.push({ moduleHash: info.moduleHash, instance, layout: info.layout });
    },
  });
  const target: SnapshotTarget = { kind: 'component', moduleHash: prepared.componentHash, instances };
  if (options.snapshot !== undefined) createSnapshotter().restore(target, options.snapshot);
  return { exports, target };
}
