import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ForgeError, toForgeError } from '@forgeone/common';
import { SigningKey, createTrustRoot, loadSigningKey, savePublicKey, saveSigningKey, signPackage, signTrustRoot } from '@forgeone/crypto';
import { createKernel, type ContainerReport } from '@forgeone/kernel';
import { verifyTrace } from '@forgeone/observer';
import type { Context } from '../context.js';
import { EXIT_FAILURE, EXIT_OK } from '../errors.js';
import { examples } from '../format.js';

interface DemoOptions {
  readonly home: string;
  readonly plugins?: string;
}

/** Where the built example plugins are, from the CLI's own location in the repository. */
function defaultPluginsDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../plugins');
}

async function key(ctx: Context, file: string): Promise<SigningKey> {
  if (existsSync(file)) return loadSigningKey(ctx.provider, file);
  const k = SigningKey.generate(ctx.provider);
  await saveSigningKey(k, file);
  return k;
}

/**
 * Register `forgeone demo`: the reference app's main job in one command.
 * @param program - the root command
 * @param ctx - the context
 */
export function registerDemo(program: Command, ctx: Context): void {
  program
    .command('demo')
    .summary('boot a kernel, run hello and rogue side by side, explain and verify both runs')
    .description(
      'The reference app. In a home directory (created, or reused): a root key, a package key and a trust root; the\n' +
        'example plugins (built by `pnpm build`) signed with the package key; a kernel booted with measured boot (the\n' +
        'verdict is printed); hello and rogue launched side by side through the scheduler into sandboxes. rogue is\n' +
        'denied and moved to the red zone while hello finishes; rogue is then terminated, its evidence kept. Both runs\n' +
        'are explained, their execution DNA written to the home and verified, hello replayed. Needs no server.\n' +
        'Exit status 0 when all of that happened as it should.',
    )
    .option('--home <dir>', 'the demo home (keys, trust root, signed packages, kernel state, traces)', '.forgeone-demo-home')
    .option('--plugins <dir>', 'the directory of the built example plugins (default: the repository\'s plugins/)')
    .addHelpText('after', examples('forgeone demo', 'forgeone demo --home /tmp/forgeone-demo --json'))
    .action(async (opts: DemoOptions) => {
      const home = ctx.path(opts.home);
      const pluginsDir = opts.plugins === undefined ? defaultPluginsDir() : ctx.path(opts.plugins);
      const text: string[] = [];
      const say = (line = ''): void => {
        text.push(line);
        if (!ctx.json) ctx.io.stdout(`${line}\n`);
      };
      const problems: string[] = [];
      mkdirSync(join(home, 'keys'), { recursive: true, mode: 0o700 });

      // 1. Keys and a trust root (reused when the home has them).
      const rootKey = await key(ctx, join(home, 'keys', 'root.key'));
      const packageKey = await key(ctx, join(home, 'keys', 'packages.key'));
      const trustRootFile = join(home, 'trust-root.json');
      if (!existsSync(trustRootFile)) {
        const expires = new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        const doc = signTrustRoot(ctx.provider, createTrustRoot(ctx.provider, { expires, roles: { root: { keys: [rootKey.toPublic()], threshold: 1 }, packages: { keys: [packageKey.toPublic()], threshold: 1 } } }), rootKey);
        writeFileSync(trustRootFile, `${JSON.stringify(doc, null, 2)}\n`);
      }
      say(`== home ${opts.home}: root key ${rootKey.keyId.slice(0, 12)}…, package key ${packageKey.keyId.slice(0, 12)}…, trust root ${join(opts.home, 'trust-root.json')}`);

      // 2. The example plugins, signed with this home's package key.
      const packages: Record<string, Uint8Array> = {};
      for (const name of ['hello', 'rogue']) {
        const built = join(pluginsDir, name, 'dist', `${name}.forgepkg`);
        if (!existsSync(built)) throw new ForgeError('NOT_FOUND', `${built} is missing: build the plugins first (pnpm build)`);
        packages[name] = signPackage(new Uint8Array(readFileSync(built)), packageKey);
        writeFileSync(join(home, `${name}.forgepkg`), packages[name]);
      }
      say(`== signed ${Object.keys(packages).join(' and ')} with the package key`);

      // 3. Boot.
      const kernel = await createKernel({ trustRoot: trustRootFile, home });
      try {
        const b = kernel.boot;
        say(`== boot: ${b.verdict} (${b.mode} mode), ${b.events.length} measurements, PCR ${b.pcr.slice(0, 16)}…, quote signed by kernel key ${kernel.kernelKey.keyId.slice(0, 12)}…`);
        if (b.verdict === 'unknown') say('   (no golden measurements in this home: record them to turn unknown into verified)');
        for (const d of b.differing) say(`   differs: ${d.name} (${d.reason})`);
        if (b.mode === 'recovery') {
          problems.push('the kernel booted into recovery mode');
          throw new ForgeError('BOOT_RECOVERY_MODE', 'the kernel booted into recovery mode: no workloads run');
        }

        // 4. hello and rogue side by side.
        const rogue = await kernel.launch({ package: packages['rogue']!, input: 'all', cpuBudgetMs: 30_000 });
        const hello = await kernel.launch({ package: packages['hello']!, input: 'ForgeOne' });
        say(`== launched rogue (${rogue.id}) and hello (${hello.id}) side by side`);
        const h = await hello.done;
        say(`== hello finished: ${h.outcome?.ok === true ? h.outcome.value : JSON.stringify(h.error ?? h.outcome)} (${h.record.status}); logs: ${h.logs.join(' | ')}`);
        if (h.outcome?.ok !== true) problems.push('hello did not finish');
        const deadline = Date.now() + 60_000;
        // The kernel moves rogue to the red zone as its denials arrive; wait for the audited decision.
        const audited = async () => (await kernel.audit.query({ kind: 'quarantine', subject: rogue.id })).length > 0;
        while (!(await audited()) && Date.now() < deadline && rogue.record()?.status === 'running') await new Promise((r) => setTimeout(r, 50));
        const quarantined = kernel.redzone.isQuarantined(rogue.id);
        say(`== rogue: ${quarantined ? 'QUARANTINED (red zone: suspended, every call held, evidence kept)' : `not quarantined (${rogue.record()?.status ?? '?'})`}`);
        if (!quarantined) problems.push('rogue was not quarantined');
        const q = (await kernel.audit.query({ kind: 'quarantine' })).find((e) => e.subject === rogue.id);
        if (q !== undefined) say(`   why: ${String(q.details['reason'])}`);
        await kernel.terminate(rogue.id, 'demo: terminated after quarantine').catch(() => undefined);
        const r = await rogue.done;
        say(`== rogue terminated: ${r.record.status}${r.error === null ? '' : ` (${r.error.code})`}; ${r.summary.denials} denied call(s), integrity ${(r.summary.integrity / 1000).toFixed(3)}`);

        // 5. Explanations, traces, replay.
        const reports: [string, ContainerReport][] = [['hello', h], ['rogue', r]];
        for (const [name, report] of reports) {
          say('');
          say(`== explanation of ${name}`);
          for (const line of report.explanation.text.trimEnd().split('\n')) say(`   ${line}`);
          const exported = await kernel.exportTrace(report.id);
          const file = join(home, `${name}.dna`);
          writeFileSync(file, exported);
          await savePublicKey(kernel.kernelKey, `${file}.pub`, { overwrite: true });
          const v = verifyTrace(exported, { trustedKeys: [kernel.kernelKey], crypto: ctx.provider });
          say(`== trace of ${name}: ${v.ok ? `verified (${v.records} records, ${v.checkpoints.length} signed checkpoints)` : `NOT verified: ${v.issue?.code}`} → ${join(opts.home, `${name}.dna`)}`);
          if (!v.ok) problems.push(`the ${name} trace did not verify`);
        }
        const replay = await kernel.replay(hello.id);
        say(`== replay of hello from its trace: ${replay.identical ? `identical (${replay.matched} calls)` : `DIVERGED: ${replay.divergence?.message}`}`);
        if (!replay.identical) problems.push('the hello replay diverged');
        const audit = await kernel.audit.verify();
        say(`== audit log: ${audit.ok ? 'verified' : 'NOT verified'}, ${(await kernel.audit.query()).length} events`);
        if (!audit.ok) problems.push('the audit log did not verify');
      } catch (e) {
        const err = toForgeError(e);
        if (problems.length === 0) problems.push(`${err.code}: ${err.message}`);
      } finally {
        await kernel.shutdown();
      }
      say('');
      say(problems.length === 0 ? '== demo OK' : `== demo FAILED: ${problems.join('; ')}`);
      ctx.finish({ exitCode: problems.length === 0 ? EXIT_OK : EXIT_FAILURE, json: { ok: problems.length === 0, code: problems.length === 0 ? null : 'DEMO_FAILED', problems, lines: text }, text: [] });
    });
}
