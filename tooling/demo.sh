#!/usr/bin/env bash
# The ForgeOne demo: first the reference app (`forgeone demo`: measured boot, hello and rogue side by side in
# sandboxes, rogue quarantined and terminated while hello finishes, both runs explained, traces verified, hello
# replayed), then the signed sample plugin (plugins/hello, built and signed with the dev keys by `pnpm build`)
# verified and run behind the gate in a worker sandbox, its signed execution trace verified offline, a tampered
# trace caught at the altered line, the hostile plugin (plugins/rogue) refused, capped and killed; then the
# package workflow: signing keys, a 3-of-5 trust root, a package built, signed, inspected and verified, and two
# packages that must be refused (a tampered one and an under-signed one).
#
# Run it with `pnpm demo`, which builds the CLI first; this script builds nothing. Everything it writes goes to
# .forgeone-demo/ at the repository root (git-ignored, recreated on every run). It exits 0 only when the good
# package verifies and both bad ones are refused with their expected error codes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="$ROOT/apps/forgeone/dist/cli.js"
D=.forgeone-demo

if [[ ! -f "$CLI" ]]; then
  echo "demo: $CLI is missing; run 'pnpm demo', which builds the CLI first" >&2
  exit 1
fi

forgeone() { node "$CLI" "$@"; }

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n== %d. %s\n' "$step_no" "$*"
}

problems=0
problem() {
  echo "PROBLEM: $*" >&2
  problems=$((problems + 1))
}

# expect_refused CODE FILE: `pkg verify` must refuse FILE with exit status 1 and error code CODE.
expect_refused() {
  local want=$1 file=$2 out status=0 got
  out=$(forgeone pkg verify "$file" --trust-root "$D/trust-root.json" --json) || status=$?
  got=$(node -e 'const d = JSON.parse(process.argv[1]); console.log(`${d.code}: ${d.message}`)' "$out")
  if [[ $status -eq 1 && ${got%%:*} == "$want" ]]; then
    echo "expected failure: $file refused (exit status 1)"
    echo "  error $got"
  else
    problem "$file: expected exit status 1 with $want, got exit status $status with ${got%%:*}"
  fi
}

cd "$ROOT"
rm -rf "$D"
mkdir -p "$D/keys"
DEV_ROOT=.forgeone-dev/trust-root.json

step "The reference app: boot a kernel, run hello and rogue side by side, explain and verify both runs"
forgeone demo --home "$D/home" || problem "forgeone demo failed"

step "Verify the signed sample plugin against the dev trust root (made by tooling/dev-keys during the build)"
forgeone pkg verify plugins/hello/dist/hello.forgepkg --trust-root "$DEV_ROOT" || problem "hello.forgepkg did not verify"

step "Run it: worker sandbox, every host call through the gate, a signed execution trace"
forgeone run plugins/hello/dist/hello.forgepkg --trust-root "$DEV_ROOT" --input ForgeOne --trace "$D/hello.dna" || problem "hello did not run"

step "Verify the trace offline with the kernel's public key"
forgeone trace verify "$D/hello.dna" --key "$D/hello.dna.pub" || problem "the hello trace did not verify"

step "Tamper with the trace (one call record says 'deny' instead of 'allow'): verification must name the line"
node -e '
  const fs = require("node:fs");
  const file = process.argv[1];
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const at = lines.findIndex((l) => l.includes("\"verdict\":\"allow\""));
  lines[at] = lines[at].replace("\"verdict\":\"allow\"", "\"verdict\":\"deny\"");
  fs.writeFileSync(file.replace(/\.dna$/, "-tampered.dna"), lines.join("\n"));
  console.log(`changed line ${at + 1}`);
' "$D/hello.dna"
status=0
forgeone trace verify "$D/hello-tampered.dna" --key "$D/hello.dna.pub" || status=$?
[[ $status -eq 1 ]] && echo "expected failure: the tampered trace was refused" || problem "the tampered trace was not refused"

step "Run the C guest (clang + wasi-libc, WASI preview1) from its signed package on ForgeOne's own preview1 host"
mkdir -p "$D/cg/out" && echo 'hello forge' > "$D/cg/input.txt"
status=0
forgeone run plugins/c-guest/dist/c-guest.forgepkg --trust-root "$DEV_ROOT" --dir "$D/cg::/data" --env GREETING=demo --trace "$D/c-guest.dna" -- demo 0 || status=$?
[[ $status -eq 0 ]] && echo "c-guest exited 0; its escape attempts were refused (see its output)" || problem "c-guest exited $status"

step "Run the hostile plugin: every attempt refused by the policy, its allocation capped, its busy loop killed"
status=0
forgeone run plugins/rogue/dist/rogue.forgepkg --trust-root "$DEV_ROOT" --input all --cpu-budget-ms 2000 --trace "$D/rogue.dna" || status=$?
[[ $status -eq 1 ]] && echo "expected failure: rogue was stopped (exit status 1)" || problem "rogue was not stopped (exit status $status)"

step "Generate 1 root key and 5 package signing keys (private keys are 0600, never printed)"
for k in root p1 p2 p3 p4 p5; do
  out=$(forgeone keygen --out "$D/keys/$k.key")
  printf '%-5s %s\n' "$k" "${out%%$'\n'*}"
done

step "Create the trust root: the root key signs it; packages need 3 of the 5 package keys"
forgeone trust init --root-key "$D/keys/root.key" \
  --package-key "$D"/keys/p{1,2,3,4,5}.key.pub --threshold 3 \
  --out "$D/trust-root.json"

step "Build the sample package (the core-module fixture apps/forgeone/test/fixtures/hello-core) into an unsigned package"
forgeone pkg build apps/forgeone/test/fixtures/hello-core --out "$D/hello.forgepkg"
cp "$D/hello.forgepkg" "$D/under-signed.forgepkg"

step "Sign it with 3 of the package keys (p1, p3, p5)"
for k in p1 p3 p5; do
  forgeone pkg sign "$D/hello.forgepkg" --key "$D/keys/$k.key"
done

step "Inspect it (shows what it claims; nothing verified yet)"
forgeone pkg inspect "$D/hello.forgepkg"

step "Verify it against the trust root (must succeed)"
if forgeone pkg verify "$D/hello.forgepkg" --trust-root "$D/trust-root.json"; then
  verified=yes
else
  verified=no
  problem "the correctly signed package did not verify"
fi

step "Tamper with a copy: flip one byte inside hello.wasm's content (must fail: PKG_HASH_MISMATCH)"
cp "$D/hello.forgepkg" "$D/tampered.forgepkg"
node -e '
  const fs = require("node:fs");
  const [file, wasmFile] = process.argv.slice(1);
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf(fs.readFileSync(wasmFile));
  if (at < 0) throw new Error("hello.wasm not found in the package");
  bytes[at + 20] ^= 0x01;
  fs.writeFileSync(file, bytes);
  console.log(`flipped the byte at offset ${at + 20} of ${file}`);
' "$D/tampered.forgepkg" apps/forgeone/test/fixtures/hello-core/hello.wasm
expect_refused PKG_HASH_MISMATCH "$D/tampered.forgepkg"

step "Sign another copy with only 2 keys (must fail: PKG_QUORUM_NOT_MET)"
for k in p2 p4; do
  forgeone pkg sign "$D/under-signed.forgepkg" --key "$D/keys/$k.key" >/dev/null
done
echo "signed $D/under-signed.forgepkg with p2 and p4"
expect_refused PKG_QUORUM_NOT_MET "$D/under-signed.forgepkg"

printf '\n== Summary\n'
if [[ $verified == yes && $problems -eq 0 ]]; then
  echo "demo OK: the reference app booted a kernel, ran hello beside rogue (quarantined, terminated) and verified both traces; hello ran behind the gate with a verified signed trace (a tampered copy was caught), the C guest ran from its"
  echo "signed package, rogue was stopped; the 3-of-5 package verified; the tampered and under-signed copies were refused"
  echo "(files are in $D/)"
else
  echo "demo FAILED: $problems problem(s), see above" >&2
  exit 1
fi
