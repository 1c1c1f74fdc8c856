#!/bin/sh
# Pack c-guest.wasm and README.md into dist/c-guest.forgepkg with the CLI's `pkg build`, and sign it with the
# dev packages key (`node ../../tooling/dev-keys/dev-keys.mjs` creates it once). Run after build.sh.
# The package is built from a staging directory: `pkg build` walks its whole directory and refuses symbolic
# links, and this one holds node_modules (pnpm links).
set -eu
cd "$(dirname "$0")"
ROOT=../..
CLI="$ROOT/apps/forgeone/dist/cli.js"
KEY="${FORGEONE_PACKAGE_KEY:-$ROOT/.forgeone-dev/keys/dev-packages.key}"
[ -f c-guest.wasm ] || { echo "c-guest: c-guest.wasm is missing; run build.sh first" >&2; exit 1; }
[ -f "$CLI" ] || { echo "c-guest: $CLI is missing; build the CLI first" >&2; exit 1; }
rm -rf dist
mkdir -p dist/package
cp forgepkg.json c-guest.wasm README.md dist/package/
node "$CLI" pkg build dist/package --out dist/c-guest.forgepkg
node "$CLI" pkg sign dist/c-guest.forgepkg --key "$KEY"
rm -rf dist/package
