#!/usr/bin/env node
// Creates, once, the development signing keys and trust root under <repo>/.forgeone-dev/ with the CLI's own
// commands (apps/forgeone/dist/cli.js must be built):
//
//   .forgeone-dev/keys/dev-root.key(.pub)       signs the trust root
//   .forgeone-dev/keys/dev-packages.key(.pub)   signs the example plugins (the packages role, threshold 1)
//   .forgeone-dev/trust-root.json               trusts dev-packages for packages
//
// Run from anywhere: `node tooling/dev-keys/dev-keys.mjs` (prints the paths; --json prints them as JSON).
// It does nothing when the trust root already exists. Concurrent runs (turbo builds the plugins in parallel)
// are safe: each builds a private directory and renames it into place; the first rename wins and the others
// use its keys. Delete .forgeone-dev/ to start over. These are development keys: never trust them in production.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'apps', 'forgeone', 'dist', 'cli.js');
const DEV = join(ROOT, '.forgeone-dev');
const paths = {
  dir: DEV,
  trustRoot: join(DEV, 'trust-root.json'),
  packageKey: join(DEV, 'keys', 'dev-packages.key'),
  rootKey: join(DEV, 'keys', 'dev-root.key'),
};

function forgeone(cwd, ...args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`forgeone ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
}

if (!existsSync(paths.trustRoot)) {
  if (!existsSync(CLI)) {
    console.error(`dev-keys: ${CLI} is missing; build the CLI first (pnpm --filter @forgeone/cli build)`);
    process.exit(1);
  }
  const tmp = `${DEV}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'keys'), { recursive: true });
  try {
    forgeone(tmp, 'keygen', '--out', 'keys/dev-root.key');
    forgeone(tmp, 'keygen', '--out', 'keys/dev-packages.key');
    forgeone(tmp, 'trust', 'init', '--root-key', 'keys/dev-root.key', '--package-key', 'keys/dev-packages.key.pub', '--threshold', '1', '--out', 'trust-root.json');
    try {
      renameSync(tmp, DEV);
    } catch (e) {
      // Another run got there first (or .forgeone-dev exists without a trust root: refuse to touch it).
      if (!existsSync(paths.trustRoot)) throw new Error(`dev-keys: ${DEV} exists but holds no trust-root.json; remove it and run again`, { cause: e });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv.includes('--json')) console.log(JSON.stringify(paths, null, 2));
else console.log(`dev trust root: ${paths.trustRoot}\ndev package key: ${paths.packageKey}`);
