import type { Command } from 'commander';
import { ForgeError, decodeUtf8Strict } from '@forgeone/common';
import {
  buildHeatmap,
  createDetectorSet,
  createFrequencyDetector,
  createRuleDetector,
  createSequenceDetector,
  createStoreBaselines,
  planTightening,
  renderHeatmapSvg,
  traceKey,
} from '@forgeone/diagnostics';
import type { AnomalyDetector, HeatmapRun } from '@forgeone/diagnostics';
import { parseTrace, verifyTrace } from '@forgeone/observer';
import type { AnomalyFlag, Trace } from '@forgeone/observer';
import { createMemoryStore } from '@forgeone/store';
import type { Context } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { readFileLimited, writeFileAtomic } from '../files.js';
import { examples, layout } from '../format.js';
import { issueJson, readChainFile, trustedKeysFrom } from './trace.js';
import type { KeyOptions } from './trace.js';

interface HeatmapOptions extends KeyOptions {
  readonly out?: string;
  readonly learn?: readonly string[];
  readonly rules: boolean;
  readonly rulesFile?: string;
  readonly bucket?: string;
  readonly hot: string;
  readonly title?: string;
}

function positiveInt(value: string, option: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${option} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function heat(value: string): number {
  const n = Number(value);
  if (!/^[0-9.]+$/.test(value) || !(n > 0 && n <= 1)) throw new UsageError(`--hot must be a number in (0, 1], got ${JSON.stringify(value)}`);
  return n;
}

async function readTraces(ctx: Context, files: readonly string[], opts: KeyOptions): Promise<{ file: string; trace: Trace }[]> {
  const verify = opts.trustRoot !== undefined || (opts.key ?? []).length > 0;
  const keys = verify ? await trustedKeysFrom(ctx, opts) : undefined;
  const out: { file: string; trace: Trace }[] = [];
  for (const file of files) {
    const bytes = await readChainFile(ctx, file);
    if (keys !== undefined) {
      const v = verifyTrace(bytes, { trustedKeys: keys, crypto: ctx.provider, allowIncomplete: true });
      if (!v.ok) throw new ForgeError('STATE_CORRUPT', `${file}: ${v.issue!.code}: ${v.issue!.message}`, { details: { file, issue: issueJson(v.issue!) } });
    }
    try {
      out.push({ file, trace: parseTrace(bytes, ctx.provider) });
    } catch (e) {
      const fe = e as ForgeError;
      throw new ForgeError(fe.code ?? 'STATE_CORRUPT', `${file}: ${fe.message}`, { cause: e, details: { file, ...(fe.details ?? {}) } });
    }
  }
  return out;
}

async function readRules(ctx: Context, file: string): Promise<unknown> {
  const text = decodeUtf8Strict(await readFileLimited(ctx.path(file), file, { maxBytes: 4 * 1024 * 1024, limitCode: 'LIMIT_EXCEEDED' }));
  try {
    return JSON.parse(text ?? '');
  } catch {
    throw new ForgeError('INVALID_ARGUMENT', `${file}: not JSON (expected an array of detection rules)`);
  }
}

/**
 * Register `forgeone heatmap`.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerHeatmap(program: Command, ctx: Context): void {
  program
    .command('heatmap')
    .summary('draw denials and anomalies of exported traces as a heatmap')
    .description(
      'Build a heatmap of refused calls and anomaly flags over identity × syscall and container × time from exported\n' +
        'traces, and write it as an SVG image (--out) and/or print it as JSON (--json). Flags come from the traces\n' +
        "(their summaries), from the default detection rules (unless --no-rules; --rules-file replaces them), and, with\n" +
        '--learn, from sequence and frequency detectors that learn each package from the given normal traces first.\n' +
        'The output also lists the tightening steps (audit → delay → deny → quarantine) the hot cells would get.\n' +
        'Traces are verified only when --trust-root or --key is given.',
    )
    .argument('<traces...>', 'exported traces (JSON lines)')
    .option('-o, --out <file>', 'write the SVG image here')
    .option('--learn <traces...>', 'normal traces to learn each package from before scoring')
    .option('--no-rules', 'do not apply the default detection rules')
    .option('--rules-file <file>', 'detection rules to apply instead of the defaults (JSON array)')
    .option('--bucket <ms>', 'time bucket width of the container × time grid, ms (default: about 24 buckets)')
    .option('--hot <score>', 'heat from which a cell is hot, for the tightening plan', '0.5')
    .option('--title <text>', 'the image title')
    .option('--trust-root <file>', 'verify the traces against the keys of a role of this trust root')
    .option('--role <name>', 'the trust root role whose keys sign traces', 'kernel')
    .option('--key <file...>', 'verify the traces against these public key files')
    .addHelpText(
      'after',
      examples('forgeone heatmap runs/*.dna --out heatmap.svg', 'forgeone heatmap suspect.dna --learn normal/*.dna --out heatmap.svg --json', 'forgeone heatmap runs/*.dna --key kernel.key.pub --json'),
    )
    .action(async (files: string[], opts: HeatmapOptions) => {
      const bucketMs = opts.bucket === undefined ? undefined : positiveInt(opts.bucket, '--bucket');
      const hot = heat(opts.hot);
      if (opts.rulesFile !== undefined && !opts.rules) throw new UsageError('give --rules-file or --no-rules, not both');
      const traces = await readTraces(ctx, files, opts);
      const detectors: AnomalyDetector[] = [];
      if (opts.rules) detectors.push(createRuleDetector(opts.rulesFile === undefined ? {} : { rules: await readRules(ctx, opts.rulesFile) }));
      const learn = opts.learn ?? [];
      if (learn.length > 0) {
        const baselines = createStoreBaselines(createMemoryStore());
        const learned = [createSequenceDetector({ baselines }), createFrequencyDetector({ baselines })];
        const byPackage = new Map<string, { key: ReturnType<typeof traceKey>; runs: Trace['records'][] }>();
        for (const { trace } of await readTraces(ctx, learn, opts)) {
          const key = traceKey(trace);
          const k = `${key.packageName}@${key.packageVersion}`;
          const entry = byPackage.get(k) ?? { key, runs: [] };
          entry.runs.push(trace.records);
          byPackage.set(k, entry);
        }
        for (const { key, runs } of byPackage.values()) for (const d of learned) await d.learn(runs, key);
        detectors.push(...learned);
      }
      const detector = detectors.length === 0 ? undefined : createDetectorSet(detectors);
      const runs: HeatmapRun[] = [];
      for (const { trace } of traces) {
        const flags: AnomalyFlag[] = [...(trace.summary?.flags ?? [])];
        if (detector !== undefined) flags.push(...(await detector.score(trace.records, traceKey(trace))).flags);
        runs.push({ subject: trace.header.identity.subject, containerId: trace.header.containerId, records: trace.records, flags });
      }
      const heatmap = buildHeatmap(runs, bucketMs === undefined ? {} : { bucketMs });
      const plan = planTightening(heatmap, { thresholds: { hot } });
      if (opts.out !== undefined) await writeFileAtomic(ctx.path(opts.out), opts.out, renderHeatmapSvg(heatmap, opts.title === undefined ? {} : { title: opts.title }));
      const hottest = [...heatmap.identitySyscall.cells].filter((c) => c.score > 0).sort((a, b) => b.score - a.score || b.denials - a.denials);
      const t = heatmap.totals;
      ctx.finish({
        exitCode: EXIT_OK,
        json: { ok: true, code: null, out: opts.out ?? null, detectors: detectors.map((d) => d.name), heatmap, tightening: plan },
        text: [
          ...layout([
            ['traces', `${t.runs} (${t.records} calls, ${t.denials} refused, ${t.anomalies} anomaly flag(s))`],
            ['detectors', detectors.length === 0 ? 'none (flags from the traces only)' : detectors.map((d) => d.name).join(', ')],
            ['hottest', hottest.slice(0, 8).map((c) => `${c.score.toFixed(2)}  ${c.row} × ${c.col} (${c.denials} refused, ${c.anomalies} flag(s))`)],
            ['integrity', heatmap.integrity.slice(0, 8).map((c) => `${c.integrity.toFixed(3)}  ${c.containerId} (${c.subject})`)],
            ['tighten', [...plan.steps.map((s) => `${s.subject} × ${s.syscall}: ${s.from ?? 'none'} → ${s.action}`), ...plan.notes]],
          ]),
          ...(opts.out === undefined ? [] : [`wrote ${opts.out}`]),
        ],
      });
    });
}
