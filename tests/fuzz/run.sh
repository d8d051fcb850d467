#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer targets with clang++ (no CMake: the project's trees are GCC builds) and
# run each for a bounded time: args_fuzz (the apps' argument parsing) and nbd_protocol_fuzz
# (bioring-nbd's handshake and request parsing). Any crash, sanitizer report or failed check
# (a trap) fails the script and leaves the input in $OUT_DIR.
# usage: tests/fuzz/run.sh [SECONDS]   (per target; default 30; FUZZ_OUT=dir to keep the
#        build elsewhere; FUZZ_TARGETS="nbd_protocol_fuzz" to run a subset)
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
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT" -I"$OUT_DIR/include")
"$CXX" "${FLAGS[@]}" "$ROOT/tests/fuzz/args_fuzz.cpp" "$ROOT/apps/common/args.cpp" \
    -o "$OUT_DIR/args_fuzz"
"$CXX" "${FLAGS[@]}" "$ROOT/tests/fuzz/nbd_protocol_fuzz.cpp" "$ROOT/apps/nbd/protocol.cpp" \
    -o "$OUT_DIR/nbd_protocol_fuzz"

# nbd seeds: byte 0 picks the export; then client flags, options, requests (see the target).
mkdir -p "$OUT_DIR/corpus-nbd"
python3 - "$OUT_DIR/corpus-nbd" <<'PY'
import struct, sys
d = sys.argv[1]
IHAVEOPT = 0x49484156454F5054
def opt(o, payload=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(payload)) + payload
def req(t, off, ln, flags=0, cookie=1):
    return struct.pack(">IHHQQI", 0x25609513, flags, t, cookie, off, ln)
go = opt(7, struct.pack(">I", 0) + struct.pack(">HHHH", 3, 1, 2, 3))
meta = struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", 15) + b"base:allocation"
seeds = {
    "go_rw": bytes([0x21]) + struct.pack(">I", 3) + opt(8) + opt(10, meta) + go
             + req(1, 0, 4096) + b"x" * 4096 + req(0, 4096, 512) + req(3, 0, 0)
             + req(7, 0, 1 << 20, 8) + req(4, 0, 4096) + req(6, 0, 4096, 2) + req(2, 0, 0),
    "export_name": bytes([0x01]) + struct.pack(">I", 1) + opt(1, b"disk") + req(0, 0, 512),
    "list_info": bytes([0x06]) + struct.pack(">I", 3) + opt(3) + opt(6, struct.pack(">I", 4)
             + b"disk" + struct.pack(">HH", 1, 2)) + opt(9, meta) + opt(2),
    "starttls": bytes([0x21]) + struct.pack(">I", 3) + opt(8) + opt(3) + opt(5) + opt(5)
             + opt(8) + opt(10, meta) + go + req(0, 0, 512),
    "too_long": bytes([0x00]) + struct.pack(">I", 1) + struct.pack(">QII", IHAVEOPT, 7, 1 << 30),
    "ro_writes": bytes([0x70]) + req(1, 0, 512) + b"y" * 512 + req(4, 0, 512) + req(6, 0, 512),
    "past_end": bytes([0x68]) + req(0, (1 << 30) - 512, 4096) + req(0, 0, (1 << 20) + 1)
             + req(9, 0, 1) + req(0, 0, 512, 0x8000),
}
for k, v in seeds.items():
    open(f"{d}/{k}", "wb").write(v)
PY

cd "$OUT_DIR"
failed=0
# run_target NAME CORPUS MAX_LEN: -max_total_time bounds the run; libFuzzer exits non-zero on
# a crash, leak or timeout.
run_target() {
    local name=$1 corpus=$2 max_len=$3
    if [[ -n ${FUZZ_TARGETS:-} && " $FUZZ_TARGETS " != *" $name "* ]]; then
        return
    fi
    local status
    set +e
    "./$name" -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=1024 -print_final_stats=1 "$corpus" 2>&1 | tail -n 25
    status=${PIPESTATUS[0]}
    set -e
    if [[ $status -ne 0 ]]; then
        echo "fuzz: $name FAILED (status $status); the crashing input is in $OUT_DIR" >&2
        failed=1
    else
        echo "fuzz: $name ran ${SECONDS_TO_RUN}s without a crash"
    fi
}
run_target args_fuzz "$OUT_DIR/corpus" 256
run_target nbd_protocol_fuzz "$OUT_DIR/corpus-nbd" 16384
exit "$failed"
