#!/bin/sh
# Build rogue-c.wasm, a hostile WASI preview1 command, with clang and wasi-libc (as plugins/c-guest).
# Debian/Ubuntu: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
# Elsewhere: point CC at wasi-sdk's clang, or WASI_SYSROOT at a wasi-libc sysroot.
set -eu
cd "$(dirname "$0")"
CC="${CC:-clang}"
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "rogue-c: '$CC' not found. Install clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 (Debian) or wasi-sdk." >&2
  exit 127
fi
SYSROOT="${WASI_SYSROOT:-}"
if [ -z "$SYSROOT" ]; then
  for d in /usr/share/wasi-sysroot /opt/wasi-sdk/share/wasi-sysroot; do
    if [ -d "$d" ]; then SYSROOT="$d"; break; fi
  done
fi
# Debian's clang finds wasi-libc in /usr/{include,lib}/wasm32-wasi without a sysroot.
"$CC" --target=wasm32-wasi ${SYSROOT:+--sysroot="$SYSROOT"} -O2 -Wall -Wextra -Werror -o rogue-c.wasm.tmp main.c
mv rogue-c.wasm.tmp rogue-c.wasm
echo "rogue-c: built $(pwd)/rogue-c.wasm"
