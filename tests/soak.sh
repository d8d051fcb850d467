#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The opt-in soak (./run soak): bioring-soak from an ASan+UBSan build, bounded in time.
# usage: tests/soak.sh BUILD_DIR     (the ASan tree; ./run soak passes build-asan)
# SOAK_SECONDS (default 60, at most 300) is the duration of each of the two runs below
# split in halves: io_uring on the ext4 work tree, then the Asio backend on tmpfs; then
# bioring-nbd for half of it (tests/nbd/soak_nbd.sh: faults, fio verify, chaos clients).
# Exit status: non-zero on a mismatch, an unexpected I/O error, or a sanitizer report
# (leaks included: detect_leaks=1).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BUILD=${1:?usage: tests/soak.sh BUILD_DIR}
TOTAL=${SOAK_SECONDS:-60}
if ! [[ $TOTAL =~ ^[0-9]+$ ]] || ((TOTAL < 2 || TOTAL > 300)); then
    echo "soak: SOAK_SECONDS=$TOTAL is outside 2..300" >&2
    exit 2
fi
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target bioring-soak >/dev/null
SOAK=$BUILD/tests/bioring-soak
[[ -x $SOAK ]] || SOAK=$(find "$BUILD" -name bioring-soak -type f -perm -u+x | head -n1)
HALF=$((TOTAL / 2))
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
WORK=$(mktemp -d "$(cd "$BUILD" && pwd)/soak.XXXXXX")
SHM=$(mktemp -d /dev/shm/bioring-soak.XXXXXX)
trap 'rm -rf "$WORK" "$SHM"' EXIT
# Phase 1 also injects faults that io/ must absorb transparently (EAGAIN and EINTR are
# resubmitted; held completions arrive late and reordered): any of them surfacing is an
# error of the run.
FAULTS="op=any,err=EAGAIN,p=0.02,seed=5;op=any,err=EINTR,p=0.02,seed=6;op=any,hold,p=0.1,seed=7"
echo "== soak 1/3: io_uring, ext4, ${HALF}s, BIORING_FAULT=$FAULTS"
BIORING_FAULT=$FAULTS "$SOAK" --seconds "$HALF" --threads 2 --qd 16 --mib 32 --dir "$WORK"
echo "== soak 2/3: Asio backend, tmpfs, $((TOTAL - HALF))s"
BIORING_BACKEND=asio "$SOAK" --seconds "$((TOTAL - HALF))" --threads 3 --qd 8 --mib 16 --dir "$SHM"
echo "== soak 3/3: bioring-nbd under ASan with fio verify and chaos clients, ${HALF}s"
"$ROOT/tests/nbd/soak_nbd.sh" "$BUILD" "$HALF"
echo "soak: PASS (${TOTAL}s + ${HALF}s of bioring-nbd)"
