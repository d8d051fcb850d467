#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer target for the apps' argument parsing with clang++ (no CMake: the
# project's trees are GCC builds) and run it for a bounded time; any crash, sanitizer report
# or failed check (a trap) fails the script and leaves the input in $OUT_DIR.
# usage: tests/fuzz/run.sh [SECONDS]   (default 30; FUZZ_OUT=dir to keep the build elsewhere)
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
SECONDS_TO_RUN=${1:-30}
OUT_DIR=${FUZZ_OUT:-$ROOT/build-fuzz}
CXX=${FUZZ_CXX:-clang++}
mkdir -p "$OUT_DIR/corpus"
# A small seed corpus: the spellings the apps document, and a few hostile ones.
i=0
for s in "4K" "1MiB" "2g" "99999999999999P" "-1" "18446744073709551615" "18446744073709551616" \
         "0" "4096" "1e3" " 4K" "+4" "4kb" "--bs=64K" "--qd" "--verify"; do
    printf '%s' "$s" > "$OUT_DIR/corpus/seed$i"; i=$((i + 1))
done
printf -- '--bs\0064K\0--qd\0004\0src\0dst' > "$OUT_DIR/corpus/argv"
# <bioring/...> resolves as in a CMake build tree: links to the source folders.
mkdir -p "$OUT_DIR/include/bioring"
for e in alloc runtime io bioring.hpp; do ln -sfn "$ROOT/$e" "$OUT_DIR/include/bioring/$e"; done
"$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$ROOT" -I"$OUT_DIR/include" "$ROOT/tests/fuzz/args_fuzz.cpp" "$ROOT/apps/common/args.cpp" \
    -o "$OUT_DIR/args_fuzz"
cd "$OUT_DIR"
# -max_total_time bounds the run; libFuzzer exits non-zero on a crash, leak or timeout.
./args_fuzz -max_total_time="$SECONDS_TO_RUN" -max_len=256 -timeout=10 -rss_limit_mb=1024 \
    -print_final_stats=1 "$OUT_DIR/corpus" 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
    echo "fuzz: args_fuzz FAILED (status $status); the crashing input is in $OUT_DIR" >&2
    exit 1
fi
echo "fuzz: args_fuzz ran ${SECONDS_TO_RUN}s without a crash"
