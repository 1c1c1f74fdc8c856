import { ForgeError, createIdentity, isForgeError, type IdentityInit } from '@forgeone/common';
import { compilePolicy } from '@forgeone/trust';
import { STATE_TAG_EXPORT } from '../../binary/export-state.js';
import { memoryExceeded } from '../../binary/index.js';
import { capabilityPolicy, intersectPolicies, type Capabilities } from '../../capabilities.js';
import { buildComponentImports, disposeComponentImports } from '../../component/adapter.js';
import type { ComponentIdentity, ComponentInfo } from '../../component/forgeone.js';
import { guestError, instantiateComponent, type ComponentInstance, type RunOutcome } from '../../component/run.js';
import { bridgeServices } from '../../component/runner.js';
import type { GatePolicy } from '../../gate/index.js';
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
 * each a {@link RunOutcome}) and can be snapshotted between them (`container.snapshot()`), or started from a
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

  const caps: Capabilities = data.capabilities ?? {};
  const capProgram = compilePolicy(capabilityPolicy(caps), { identity: createIdentity(data.identity ?? { subject: 'capabilities' }), syscalls: env.syscalls });
  const policy: GatePolicy = env.kernelPolicy ? intersectPolicies(env.policy, capProgram) : { mode: 'enforce', decide: (id, ctx) => capProgram.decide(id, ctx) };
  const gate = env.createGate({ policy });
  const imports = buildComponentImports({
    gate,
    services: bridgeServices(env.bridge),
    stdout: (b) => void env.stdout.write(b),
    stderr: (b) => void env.stderr.write(b),
    ...(caps.args === undefined ? {} : { args: caps.args }),
    ...(caps.env === undefined ? {} : { env: caps.env }),
    ...(caps.dirs === undefined ? {} : { preopens: caps.dirs }),
    ...(caps.net === undefined ? {} : { network: caps.net }),
    ...(data.hostIdentity === undefined ? {} : { identity: data.hostIdentity }),
    ...(data.info === undefined ? {} : { info: data.info }),
  });

  const refs: SnapshotInstanceRef[] = [];
  const exceeded = (): number => {
    let pages = 0;
    for (const r of refs) pages = Math.max(pages, memoryExceeded(r.instance.exports));
    return pages;
  };
  const report = (): void => {
    let pages = 0;
    for (const r of refs) for (const v of Object.values(r.instance.exports)) if (v instanceof WebAssembly.Memory) pages = Math.max(pages, v.buffer.byteLength / 65536);
    env.reportMemory(pages);
  };
  const memoryError = (requested: number, cause: unknown, what: string): ForgeError =>
    new ForgeError('SANDBOX_MEMORY_EXCEEDED', `${what} after memory.grow of ${requested} pages was refused; the limit is ${env.maxMemoryPages} pages`, {
      cause,
      details: { requestedPages: requested, limitPages: env.maxMemoryPages },
    });

  let instance: ComponentInstance;
  const target: SnapshotTarget = { kind: 'component', moduleHash: prepared.componentHash, instances: refs };
  try {
    instance = env.guest(() =>
      instantiateComponent(prepared.loaded, imports, {
        onCoreInstance: (i) => {
          const tag = i.exports[STATE_TAG_EXPORT];
          const info = tag instanceof WebAssembly.Global ? prepared.modules.get(tag.value as number) : undefined;
          if (info === undefined) throw new ForgeError('SNAPSHOT_UNSUPPORTED', 'a core instance of the component was not prepared for snapshots');
          refs.push({ moduleHash: info.moduleHash, instance: i, layout: info.layout });
        },
      }),
    );
    // Before any call: memories grown and written, mutable globals set (every instance checked first).
    if (snapshot !== undefined) createSnapshotter().restore(target, snapshot);
  } catch (e) {
    disposeComponentImports(imports);
    const requested = exceeded();
    if (requested > 0) throw memoryError(requested, e, 'the guest failed to start');
    if (e instanceof RangeError && /memory/i.test(e.message)) throw new ForgeError('SANDBOX_MEMORY_EXCEEDED', `the guest's memory could not be allocated: ${e.message}`, { cause: e });
    throw isForgeError(e) ? e : guestError(e);
  }
  report();

  let dead: ForgeError | null = null;
  const exportName = data.export ?? 'run';
  const call = (name: string, input: unknown): RunOutcome => {
    if (dead !== null) throw new ForgeError('CONTAINER_FAILED', `the component instance failed earlier (${dead.code}) and cannot be called again`, { cause: dead, details: { failure: dead.code } });
    if (typeof input !== 'string') throw new ForgeError('INVALID_ARGUMENT', 'the input of a component call must be a string');
    try {
      const out = env.guest(() => instance.call({ export: name === '' ? exportName : name, input }));
      const requested = exceeded();
      if (requested > 0) {
        dead = memoryError(requested, undefined, `the guest ran out of memory (it answered ${out.ok ? 'ok' : 'with an error'})`);
        throw dead;
      }
      return out;
    } catch (e) {
      if (e === dead) throw e;
      const requested = exceeded();
      const err = requested > 0 ? memoryError(requested, e, `the guest failed (${e instanceof Error ? e.message : String(e)})`) : isForgeError(e) ? e : guestError(e);
      if (err.code !== 'WASM_EXPORT_MISSING' && err.code !== 'INVALID_ARGUMENT') dead = err;
      throw err;
    } finally {
      report();
    }
  };
  return env.serve({
    call,
    close: () => {
      disposeComponentImports(imports);
      return null;
    },
    snapshot: () => {
      // A failed instance's memory is whatever the trap left: not a state to restore.
      if (dead !== null) throw new ForgeError('SNAPSHOT_UNSUPPORTED', `the component instance failed (${dead.code}): its state is not captured`);
      return createSnapshotter().capture(target, { containerId: env.id });
    },
  });
}

/** The `builtin:component-snapshot` runner module. */
export const componentSnapshotRunner: RunnerModule = { run: runComponentSnapshot, snapshots: true };
