import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_DIR, keygens, ok, tempDir } from './helpers.js';

const BIN = join(APP_DIR, 'dist', 'cli.js');
let dir: string;
let cleanup: () => Promise<void>;

function forgeone(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (turbo runs build before test)`);
  ({ dir, cleanup } = await tempDir());
  await keygens(dir, 'root', 'p1');
  await ok(dir, 'trust', 'init', '--root-key', 'root.key', '--package-key', 'p1.key.pub', '--threshold', '1', '--out', 'trust-root.json');
});
afterAll(async () => cleanup());

describe('the built forgeone binary', () => {
  it('starts with a shebang and prints help with status 0', async () => {
    expect((await readFile(BIN, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const r = forgeone('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: forgeone');
    expect(r.stdout).toContain('Examples:');
  });

  it('exits 1 with the error code when verification fails', async () => {
    await writeFile(join(dir, 'bad.forgepkg'), 'this is not a package');
    const text = forgeone('pkg', 'verify', 'bad.forgepkg', '--trust-root', 'trust-root.json');
    expect(text.status).toBe(1);
    expect(text.stderr).toMatch(/^error PKG_BAD_MAGIC: /);
    const json = forgeone('pkg', 'verify', 'bad.forgepkg', '--trust-root', 'trust-root.json', '--json');
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: 'PKG_BAD_MAGIC', signers: [], threshold: 1 });
  });

  it('exits 2 on a usage error', () => {
    const r = forgeone('pkg', 'verify', 'x.forgepkg');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("required option '--trust-root <file>' not specified");
  });
});
