import { ForgeError, systemClock } from '@forgeone/common';
import type { Clock } from '@forgeone/common';
import { TighteningSchema } from '@forgeone/trust';
import type { PolicyEngine, Tightening } from '@forgeone/trust';
import { clip, milli } from './audit.js';
import type { DiagnosticsAuditSink } from './audit.js';
import { HEATMAP_FORMAT, RUN_COLUMN } from './heatmap/build.js';
import type { Heatmap, HeatmapCell } from './heatmap/build.js';

/** The ladder a hot cell climbs, one rung per hot run: audit, then delay, then deny, then quarantine. */
export const TIGHTENING_LADDER = Object.freeze(['audit', 'delay', 'deny', 'quarantine'] as const);

/** A rung of the ladder. */
export type TighteningRung = (typeof TIGHTENING_LADDER)[number];

/** The actor named on tightenings diagnostics makes (and reverts), unless told otherwise. */
export const TIGHTENING_ACTOR = 'diagnostics:tightening';

/** When a cell is hot. */
export interface TighteningThresholds {
  /** Heat from which a cell is hot (default 0.5). */
  readonly hot?: number;
  /** Calls a cell must hold to be considered (default 1). */
  readonly minCalls?: number;
}

/** One step for one hot cell. */
export interface TighteningStep {
  /** The identity subject (the heatmap row). */
  readonly subject: string;
  /** The syscall (the heatmap column). */
  readonly syscall: string;
  /** The cell's heat. */
  readonly score: number;
  /** The cell's counts. */
  readonly calls: number;
  /** Refused calls in the cell. */
  readonly denials: number;
  /** Anomaly flags in the cell. */
  readonly anomalies: number;
  /** The strictest rung already in force for this subject and syscall, or null. */
  readonly from: TighteningRung | null;
  /** The rung this step applies. */
  readonly action: Tightening['action'];
  /** Rungs passed over because the policy engine cannot apply them, each with why. */
  readonly skipped: readonly { readonly rung: TighteningRung; readonly note: string }[];
  /** Why, for explanations and the audit log. */
  readonly reason: string;
}

/** The outcome of {@link planTightening}. */
export interface TighteningPlan {
  /** Steps, hottest cell first. */
  readonly steps: readonly TighteningStep[];
  /** Hot cells that get no step, and why (top of the ladder, not a syscall). */
  readonly notes: readonly string[];
}

/** Options of {@link planTightening}. */
export interface PlanTighteningOptions {
  /** When a cell is hot. */
  readonly thresholds?: TighteningThresholds;
  /** The tightenings in force (`engine.tightenings`): the ladder continues from them. */
  readonly current?: readonly Tightening[];
  /** Actions the engine can apply (default: those of its tightening schema: audit, deny, quarantine). */
  readonly supported?: readonly string[];
}

const ENGINE_ACTIONS: readonly string[] = TighteningSchema.shape.action.options;

function rungIndex(action: string): number {
  return (TIGHTENING_LADDER as readonly string[]).indexOf(action);
}

function sameScope(t: Tightening, subject: string, syscall: string): boolean {
  const subjects = t.identity?.subjects;
  const other = t.identity !== undefined && (t.identity.tenants !== undefined || t.identity.roles !== undefined || t.identity.attributes !== undefined);
  return !other && subjects !== undefined && subjects.length === 1 && subjects[0] === subject && t.syscalls.length === 1 && t.syscalls[0] === syscall;
}

/**
 * The rung in force for a subject and syscall: the strictest tightening scoped to exactly that subject and
 * syscall (by anyone).
 * @param current - tightenings in force
 * @param subject - the identity subject
 * @param syscall - the syscall
 * @returns the rung, or null
 */
export function currentRung(current: readonly Tightening[], subject: string, syscall: string): TighteningRung | null {
  let best = -1;
  for (const t of current) if (sameScope(t, subject, syscall)) best = Math.max(best, rungIndex(t.action));
  return best < 0 ? null : TIGHTENING_LADDER[best]!;
}

/**
 * Plan the next tightening step for every hot cell of the identity × syscall grid: one rung up the ladder
 * (audit → delay → deny → quarantine) from the strictest tightening already in force for that subject and
 * syscall, so a cell that stays hot run after run escalates. A rung the engine cannot apply (delay: the policy
 * engine has no delay action) is passed over with a note. Cells at quarantine get no step.
 * @param heatmap - the heatmap
 * @param options - thresholds, tightenings in force, supported actions
 * @returns the steps and notes
 * @throws ForgeError `INVALID_ARGUMENT` for a threshold out of range or something that is not a heatmap
 * @example
 * ```ts
 * const plan = planTightening(heatmap, { current: engine.tightenings });
 * for (const step of plan.steps) await applyTightening(engine, step, { audit });
 * ```
 */
export function planTightening(heatmap: Heatmap, options: PlanTighteningOptions = {}): TighteningPlan {
  if (typeof heatmap !== 'object' || heatmap === null || heatmap.format !== HEATMAP_FORMAT || !Array.isArray(heatmap.identitySyscall?.cells)) {
    throw new ForgeError('INVALID_ARGUMENT', `not a heatmap (format ${HEATMAP_FORMAT})`, { details: { field: 'heatmap' } });
  }
  const hot = options.thresholds?.hot ?? 0.5;
  const minCalls = options.thresholds?.minCalls ?? 1;
  if (typeof hot !== 'number' || !(hot > 0 && hot <= 1)) throw new ForgeError('INVALID_ARGUMENT', 'thresholds.hot must be in (0, 1]', { details: { field: 'thresholds.hot' } });
  if (!Number.isSafeInteger(minCalls) || minCalls < 0) throw new ForgeError('INVALID_ARGUMENT', 'thresholds.minCalls must be an integer >= 0', { details: { field: 'thresholds.minCalls' } });
  const supported = new Set(options.supported ?? ENGINE_ACTIONS);
  const current = options.current ?? [];
  const cells: HeatmapCell[] = heatmap.identitySyscall.cells.filter((c) => c.score >= hot && (c.calls >= minCalls || c.col === RUN_COLUMN));
  cells.sort((a, b) => b.score - a.score || (a.row < b.row ? -1 : a.row > b.row ? 1 : a.col < b.col ? -1 : 1));
  const steps: TighteningStep[] = [];
  const notes: string[] = [];
  for (const c of cells) {
    if (c.col === RUN_COLUMN) {
      notes.push(`${c.row}: heat ${c.score.toFixed(2)} from flags that name no call; no syscall to tighten`);
      continue;
    }
    const from = currentRung(current, c.row, c.col);
    const skipped: { rung: TighteningRung; note: string }[] = [];
    let next = from === null ? 0 : rungIndex(from) + 1;
    while (next < TIGHTENING_LADDER.length && !supported.has(TIGHTENING_LADDER[next]!)) {
      skipped.push({ rung: TIGHTENING_LADDER[next]!, note: `the policy engine has no ${TIGHTENING_LADDER[next]} action; skipped` });
      next++;
    }
    if (next >= TIGHTENING_LADDER.length) {
      notes.push(`${c.row} × ${c.col}: heat ${c.score.toFixed(2)}, already at ${from ?? 'the top'}: the top of the ladder`);
      continue;
    }
    const action = TIGHTENING_LADDER[next]! as Tightening['action'];
    const why =
      `diagnostics: ${c.row} × ${c.col} heat ${c.score.toFixed(2)} ≥ ${hot} (${c.calls} call(s), ${c.denials} refused, ${c.anomalies} flag(s)` +
      `${c.severity === null ? '' : `, strongest ${c.severity}`}); step ${from ?? 'none'} → ${action}` +
      `${skipped.length === 0 ? '' : ` (${skipped.map((s) => s.note).join('; ')})`}`;
    steps.push({ subject: c.row, syscall: c.col, score: c.score, calls: c.calls, denials: c.denials, anomalies: c.anomalies, from, action, skipped, reason: clip(why, 1024) });
  }
  return { steps, notes };
}

/** Options of {@link applyTightening} and {@link revertTightening}. */
export interface TighteningApplyOptions {
  /** Receives a `policy.changed` event per step (the audit log). */
  readonly audit?: DiagnosticsAuditSink;
  /** Who acts (default `diagnostics:tightening`). */
  readonly actor?: string;
  /** Time of the audit event (default: the system clock). */
  readonly clock?: Clock;
}

/** A step that was applied. */
export interface AppliedTightening {
  /** The step. */
  readonly step: TighteningStep;
  /** The tightening the engine made (its id reverts it). */
  readonly tightening: Tightening;
  /** The policy version and revision in force afterwards. */
  readonly version: { readonly version: number; readonly revision: number };
}

/** The part of the policy engine tightening needs. */
export type TighteningEngine = Pick<PolicyEngine, 'tighten' | 'revert' | 'version' | 'policy' | 'tightenings'>;

/**
 * Apply one step through the policy engine's tightening API (a new policy revision, never looser than before,
 * explainable through its reason), then record it in the audit log.
 * @param engine - the policy engine
 * @param step - a step from {@link planTightening}
 * @param options - audit sink, actor, clock
 * @returns the tightening and the new version
 * @throws ForgeError `INVALID_ARGUMENT` for a malformed step (the engine rejects it); the audit sink's error
 *   when recording fails (the tightening is then in force: revert it or retry the record)
 */
export async function applyTightening(engine: TighteningEngine, step: TighteningStep, options: TighteningApplyOptions = {}): Promise<AppliedTightening> {
  const actor = options.actor ?? TIGHTENING_ACTOR;
  let tightening: Tightening;
  try {
    tightening = engine.tighten({ syscalls: [step.syscall], identity: { subjects: [step.subject] }, action: step.action, reason: clip(step.reason, 1024), actor });
  } catch (e) {
    throw new ForgeError('INVALID_ARGUMENT', `the policy engine refused the tightening of ${step.subject} × ${step.syscall}: ${(e as Error).message}`, { cause: e, details: { field: 'step' } });
  }
  const version = { ...engine.version };
  if (options.audit !== undefined) {
    await options.audit({
      kind: 'policy.changed',
      subject: engine.policy.name,
      actor,
      time: Math.floor((options.clock ?? systemClock).now()),
      details: {
        change: 'tightened',
        tighteningId: tightening.id,
        action: step.action,
        from: step.from,
        skipped: step.skipped.map((s) => s.rung),
        identity: step.subject,
        syscall: step.syscall,
        scoreMilli: milli(step.score),
        denials: step.denials,
        anomalies: step.anomalies,
        reason: clip(step.reason),
        version: version.version,
        revision: version.revision,
      },
    });
  }
  return { step, tightening, version };
}

/**
 * Revert a tightening (a new policy revision without it), and record it in the audit log. Reverting the top
 * step of a cell leaves the steps below it in force: the cell goes one rung down.
 * @param engine - the policy engine
 * @param id - the tightening id
 * @param options - audit sink, actor, clock, and why
 * @returns the policy version and revision afterwards
 * @throws ForgeError `NOT_FOUND` when no such tightening is in force; the audit sink's error
 */
export async function revertTightening(engine: TighteningEngine, id: string, options: TighteningApplyOptions & { readonly reason?: string } = {}): Promise<{ version: number; revision: number }> {
  const actor = options.actor ?? TIGHTENING_ACTOR;
  const t = engine.tightenings.find((x) => x.id === id);
  if (t === undefined) throw new ForgeError('NOT_FOUND', `no tightening ${id} is in force`, { details: { id } });
  engine.revert(id, actor);
  const version = { ...engine.version };
  if (options.audit !== undefined) {
    await options.audit({
      kind: 'policy.changed',
      subject: engine.policy.name,
      actor,
      time: Math.floor((options.clock ?? systemClock).now()),
      details: {
        change: 'reverted',
        tighteningId: id,
        action: t.action,
        identity: t.identity?.subjects?.join(',') ?? '*',
        syscall: t.syscalls.join(','),
        reason: clip(options.reason ?? 'reverted'),
        version: version.version,
        revision: version.revision,
      },
    });
  }
  return version;
}
