#!/usr/bin/env bash
# Compile the Cython GGUF header parser with libFuzzer's coverage instrumentation, and libFuzzer itself
# as a library to preload, into DIR (default /tmp/gguf-fuzz-native). Needs clang and its runtime
# (Debian: apt-get install clang-14 libclang-rt-14-dev). See README.md.
set -euo pipefail
OUT=${1:-/tmp/gguf-fuzz-native}
CLANG=${CLANG:-clang-14}
CLANGXX=${CLANGXX:-clang++-14}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
SANITIZE=${SANITIZE:-fuzzer-no-link}  # e.g. SANITIZE=fuzzer-no-link,undefined
mkdir -p "$OUT"
EXT=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
INC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
"$PY" -m cython -3 "$ROOT/gpt4all_core/gguf/_parse.pyx" -o "$OUT/_parse.c"
"$CLANG" -O1 -g -fPIC -shared -fsanitize="$SANITIZE" -I"$INC" "$OUT/_parse.c" -o "$OUT/_parse$EXT"
RT=$("$CLANG" -print-resource-dir)/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a
"$CLANGXX" -shared -o "$OUT/libfuzzer.so" -Wl,--whole-archive "$RT" -Wl,--no-whole-archive
echo "built $OUT/_parse$EXT and $OUT/libfuzzer.so"
