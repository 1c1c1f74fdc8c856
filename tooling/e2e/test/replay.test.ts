// Forensic replay of the example plugins, through the CLI: `forgeone run <pkg> --trace` records a signed
// trace; `forgeone trace replay <trace> <pkg>` verifies both and re-runs the component on the recorded
// results. Every example plugin replays identically; another package diverges at the right record.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '@forgeone/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const TRUST_ROOT = join(ROOT, '.forgeone-dev', 'trust-root.json');
const pkg = (name: string): string => join(ROOT, 'plugins', name, 'dist', `${name}.forgepkg`);

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'forgeone-replay-e2e-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

async function forgeone(...args: string[]): Promise<{ code: number; json: Record<string, unknown>; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...args, '--json'], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), isTTY: false, env: {}, cwd: tmp });
  return { code, json: JSON.parse(stdout) as Record<string, unknown>, stderr };
}

async function runTraced(name: string, input: string, trace: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await forgeone('run', pkg(name), '--trust-root', TRUST_ROOT, '--input', input, '--trace', trace, '--cache-dir', join(tmp, 'cache'), ...extra);
  expect(r.json.traceFile, r.stderr).toBe(trace);
  return r.json;
}

async function replay(trace: string, name: string): Promise<{ code: number; json: Record<string, unknown> }> {
  return forgeone('trace', 'replay', trace, pkg(name), '--trust-root', TRUST_ROOT, '--key', `${trace}.pub`, '--cache-dir', join(tmp, 'cache'));
}

describe('forgeone trace replay', () => {
  it('hello, kv-counter, fetcher and rogue each replay identically', async () => {
    const state = join(tmp, 'state');
    const cases: [string, string, string[]][] = [
      ['hello', 'ForgeOne', []],
      ['kv-counter', '', ['--state', state]],
      // The second run reads the count the first one stored: the replay answers that read from the record.
      ['kv-counter', '', ['--state', state]],
      // No network in CI: the fetch fails in the host (or succeeds where there is network); either is recorded.
      ['fetcher', 'https://example.com/', []],
      ['rogue', 'passwd', []],
      ['rogue', 'net', []],
    ];
    let i = 0;
    for (const [name, input, extra] of cases) {
      const trace = join(tmp, `${name}-${i++}.dna`);
      const ran = await runTraced(name, input, trace, extra);
      const r = await replay(trace, name);
      expect(r.json, `${name} ${input}`).toMatchObject({ ok: true, identical: true, divergence: null, package: { samePackage: true } });
      expect(r.code).toBe(0);
      expect(r.json.records as number).toBeGreaterThan(0);
      // The replay returned what the run returned.
      const outcome = r.json.outcome as { ok: boolean; value?: string };
      if (ran.ok === true) expect(outcome).toEqual({ ok: true, value: ran.value });
    }
    const second = JSON.parse(readFileSync(join(tmp, 'kv-counter-2.dna'), 'utf8').split('\n')[0]!) as { invocation: unknown };
    expect(second.invocation).toEqual({ export: 'run', input: '' });
  });

  it('another package offered for the trace diverges at the first call it makes differently', async () => {
    const trace = join(tmp, 'hello-for-kv.dna');
    await runTraced('hello', 'ForgeOne', trace);
    const r = await replay(trace, 'kv-counter');
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'REPLAY_DIVERGED', identical: false, package: { samePackage: false } });
    const d = r.json.divergence as { seq: number; kind: string; expected: { syscall: string } | null; got: { syscall: string } | null };
    expect(['syscall', 'arguments', 'missing-call', 'extra-call']).toContain(d.kind);
    expect(d.seq).toBe(r.json.matched);
  });

  it('a tampered trace is refused before anything runs', async () => {
    const trace = join(tmp, 'hello-tampered.dna');
    await runTraced('hello', 'ForgeOne', trace);
    const lines = readFileSync(trace, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('"t":"call"'));
    lines[at] = lines[at]!.replace('"allowed":true', '"allowed":false');
    writeFileSync(trace, lines.join('\n'));
    const r = await replay(trace, 'hello');
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'STATE_CORRUPT' });
  });
});
