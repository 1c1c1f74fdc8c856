import { ForgeError, type IdentityInit } from '@forgeone/common';
import { STATE_TAG_EXPORT } from '../../binary/export-state.js';
import type { Capabilities } from '../../capabilities.js';
import type { ComponentIdentity, ComponentInfo } from '../../component/forgeone.js';
import { startComponentSession } from '../../component/runner.js';
import { createSnapshotter, prepareSnapshotComponent, type SnapshotInstanceRef, type SnapshotTarget } from '../../snapshot/index.js';
import type { RunnerEnv, RunnerModule } from '../types.js';

/** The name the sandbox worker registers {@link componentSnapshotRunner} under. */
export const COMPONENT_SNAPSHOT_RUNNER = 'builtin:component-snapshot';

/** Data of the `builtin:component-snapshot` runner (structured-cloneable). */
export interface ComponentSnapshotRunnerData {
  /** The component binary. */
  readonly bytes: Uint8Array;
  /** What the guest may use; nothing else is granted. */
  readonly capabilities?: Capabilities;
  /** The identity the capability policy is compiled for; default subject `capabilities`. */
  readonly identity?: IdentityInit;
  /** The answer of `forgeone:host/identity.get`. */
  readonly hostIdentity?: ComponentIdentity;
  /** The answer of `forgeone:host/info.get`. */
  readonly info?: ComponentInfo;
  /** jco's transpile cache directory (the core modules are rewritten and compiled in the worker each time). */
  readonly cacheDir?: string;
  /** The export a call with an empty name invokes; default `run`. */
  readonly export?: string;
}

function checkData(data: unknown): ComponentSnapshotRunnerData {
  if (typeof data !== 'object' || data === null || !((data as ComponentSnapshotRunnerData).bytes instanceof Uint8Array)) {
    throw new ForgeError('INVALID_ARGUMENT', `${COMPONENT_SNAPSHOT_RUNNER} needs data { bytes, capabilities?, ... }`);
  }
  const d = data as ComponentSnapshotRunnerData;
  if (d.export !== undefined && typeof d.export !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'data.export must be a string');
  return d;
}

/**
 * The `builtin:component-snapshot` runner: a component that serves calls (`container.call(export, input)`,
 * each a `RunOutcome`) and can be snapshotted between them (`container.snapshot()`), or started from a
 * snapshot of the same component (`spec.snapshot`: restored into the new core instances before the first
 * call; another component is refused with `SNAPSHOT_MODULE_MISMATCH` before it is instantiated).
 *
 * Like `builtin:component` (same gate, capability policy, bridge services, output sinks, memory limit, CPU
 * watchdog), except that every core module is rewritten for snapshots (`prepareSnapshotComponent`) in the
 * worker, and the instance always serves. What a component snapshot cannot hold applies (docs/snapshots.md):
 * jco's own tables of resource handles are not captured, so restore only components that hold no resource
 * handle across calls; the host's state (open files, streams) starts fresh.
 *
 * @param env - the runner environment
 * @returns a serving instance
 * @throws ForgeError as `builtin:component`; `SNAPSHOT_MODULE_MISMATCH` (a snapshot of another component),
 *   `SNAPSHOT_UNSUPPORTED` (state a snapshot cannot hold)
 */
export async function runComponentSnapshot(env: RunnerEnv): Promise<unknown> {
  const data = checkData(env.data);
  const prepared = await prepareSnapshotComponent(data.bytes, { maxPages: env.maxMemoryPages, ...(data.cacheDir === undefined ? {} : { cacheDir: data.cacheDir }) });
  const snapshot = env.snapshot;
  if (snapshot !== undefined && (snapshot.kind !== 'component' || snapshot.moduleHash !== prepared.componentHash)) {
    throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of ${snapshot.kind} ${snapshot.moduleHash}, not of component ${prepared.componentHash}`, {
      details: { expected: prepared.componentHash, actual: snapshot.moduleHash },
    });
  }

  const refs: SnapshotInstanceRef[] = [];
  const target: SnapshotTarget = { kind: 'component', moduleHash: prepared.componentHash, instances: refs };
  const session = startComponentSession(env, prepared.loaded, {
    ...(data.capabilities === undefined ? {} : { capabilities: data.capabilities }),
    ...(data.identity === undefined ? {} : { identity: data.identity }),
    ...(data.hostIdentity === undefined ? {} : { hostIdentity: data.hostIdentity }),
    ...(data.info === undefined ? {} : { info: data.info }),
    onCoreInstance: (i) => {
      const tag = i.exports[STATE_TAG_EXPORT];
      const info = tag instanceof WebAssembly.Global ? prepared.modules.get(tag.value as number) : undefined;
      if (info === undefined) throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'a core instance of the component was not prepared for snapshots');
      refs.push({ moduleHash: info.moduleHash, instance: i, layout: info.layout });
    },
    // Before any call: memories grown and written, mutable globals set (every instance checked first).
    ...(snapshot === undefined ? {} : { afterInstantiate: () => createSnapshotter().restore(target, snapshot) }),
  });

  const exportName = data.export ?? 'run';
  return env.serve({
    call: (name, input) => session.call(name === '' ? exportName : name, input),
    close: () => {
      session.dispose();
      return null;
    },
    snapshot: () => {
      // A failed instance's memory is whatever the trap left: not a state to restore.
      const dead = session.failed();
      if (dead !== null) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `the component instance failed (${dead.code}): its state is not captured`);
      return createSnapshotter().capture(target, { containerId: env.id });
    },
  });
}

/** The `builtin:component-snapshot` runner module. */
export const componentSnapshotRunner: RunnerModule = { run: runComponentSnapshot, snapshots: true };
