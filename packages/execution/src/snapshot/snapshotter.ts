import { ForgeError } from '@forgeone/common';
import type { SnapshotContext, SnapshotState, Snapshotter } from '@forgeone/observer';
import { captureInstanceState, planRestore, type SnapshotInstanceRef } from './state.js';

/**
 * What a `Snapshotter` (from `@forgeone/observer`) works on: a module's one core instance, or a component's core instances in
 * creation order, with the hash of the original module or component bytes.
 */
export interface SnapshotTarget {
  /** `module` (one instance) or `component`. */
  readonly kind: 'module' | 'component';
  /** SHA3-256 (hex) of the original module or component bytes. */
  readonly moduleHash: string;
  /** The core instances, in creation order. */
  readonly instances: readonly SnapshotInstanceRef[];
}

/**
 * Create the snapshotter for core modules and components: `capture` copies every instance's defined
 * memories and globals with the container id and trace position; `restore` checks the module (kind, hash,
 * every instance's module hash and layout) for all instances before it changes any, then applies.
 * @returns the snapshotter
 * @example
 * ```ts
 * const snapshotter = createSnapshotter();
 * const state = snapshotter.capture(target, { containerId: 'ctr-1', trace: { traceId: 'tr-1', seq: gate.sequence } });
 * await writeSnapshotFile('/var/lib/forgeone/ctr-1.fgsnap', state, { signingKey, crypto });
 * // later, into a fresh instance of the same module:
 * snapshotter.restore(fresh, await readSnapshotFile('/var/lib/forgeone/ctr-1.fgsnap', { trustedKeys, crypto }));
 * ```
 */
export function createSnapshotter(): Snapshotter<SnapshotTarget> {
  return {
    capture(target: SnapshotTarget, context: SnapshotContext): SnapshotState {
      checkTarget(target);
      if (typeof context !== 'object' || context === null || typeof context.containerId !== 'string') {
        throw new ForgeError('INVALID_ARGUMENT', 'a snapshot context needs a containerId');
      }
      return {
        kind: target.kind,
        moduleHash: target.moduleHash,
        container: { id: context.containerId },
        ...(context.trace === undefined ? {} : { trace: context.trace }),
        instances: target.instances.map((ref) => captureInstanceState(ref)),
      };
    },
    restore(target: SnapshotTarget, state: SnapshotState): void {
      checkTarget(target);
      if (state.kind !== target.kind || state.moduleHash !== target.moduleHash) {
        throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot was taken of ${state.kind} ${state.moduleHash}, not of this ${target.kind} ${target.moduleHash}`, {
          details: { expected: target.moduleHash, actual: state.moduleHash },
        });
      }
      if (state.instances.length !== target.instances.length) {
        throw new ForgeError('SNAPSHOT_MODULE_MISMATCH', `the snapshot holds ${state.instances.length} core instances, this ${target.kind} has ${target.instances.length}`, {
          details: { expected: target.instances.length, actual: state.instances.length },
        });
      }
      // Check every instance before changing any.
      const plans = target.instances.map((ref, i) => planRestore(ref, state.instances[i]!));
      for (const plan of plans) plan.apply();
    },
  };
}

function checkTarget(target: SnapshotTarget): void {
  if (typeof target !== 'object' || target === null || !Array.isArray(target.instances)) throw new ForgeError('INVALID_ARGUMENT', 'a snapshot target needs its instances');
  if (target.kind === 'module' && target.instances.length !== 1) throw new ForgeError('INVALID_ARGUMENT', 'a module snapshot target has exactly one instance');
}
