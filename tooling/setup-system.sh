#!/usr/bin/env bash
# Installs the Debian packages ForgeOne's build and tests need beyond Node.js, when they are missing:
#   clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 — to build the C guest (plugins/c-guest) as a
#   WASI preview1 module, proving non-JS guests run on ForgeOne's own preview1 host.
# Idempotent: does nothing when everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
[ -d /usr/share/wasi-sysroot ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev-wasm32)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "== installing Debian packages: ${need[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
