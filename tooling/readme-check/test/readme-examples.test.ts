import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { transform } from 'esbuild';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Example {
  pkgDir: string;
  index: number;
  code: string;
}

function examples(): Example[] {
  const out: Example[] = [];
  for (const group of ['packages', 'apps']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const readme = join(base, name, 'README.md');
      if (!existsSync(readme)) continue;
      const text = readFileSync(readme, 'utf8');
      const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
      blocks.forEach((code, index) => {
        if (/from '@forgeone\//.test(code)) out.push({ pkgDir: join(base, name), index, code });
      });
    }
  }
  return out;
}

const all = examples();

describe('README examples run against the built packages', () => {
  it('every package under packages/ has a README with at least one runnable example', () => {
    const pkgs = readdirSync(join(root, 'packages')).filter((n) => existsSync(join(root, 'packages', n, 'package.json')));
    for (const p of pkgs) expect(all.some((e) => e.pkgDir === join(root, 'packages', p)), `${p} README example`).toBe(true);
  });

  it.each(all.map((e) => [`${relative(root, e.pkgDir)} #${e.index}`, e] as const))('%s', async (_label, e) => {
    const { code } = await transform(e.code, { loader: 'ts', format: 'esm', target: 'node20' });
    const file = join(e.pkgDir, `.readme-example-${e.index}.mjs`);
    await writeFile(file, code);
    try {
      // An example that fails exits non-zero (run rejects); one that reports an error on stderr fails too.
      const { stderr } = await run(process.execPath, [file], { cwd: e.pkgDir, timeout: 60_000 });
      expect(stderr).toBe('');
    } finally {
      await rm(file, { force: true });
    }
  });
});
