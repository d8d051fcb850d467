#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bioring-nbd part of the soak (tests/soak.sh calls it): bioring-nbd from the ASan+UBSan
# tree, for a bounded time, with file faults that io/ must absorb (EAGAIN, EINTR resubmitted;
# held completions late and reordered), serving at the same time
#  - fio's nbd engine: 2 jobs of random writes (4K-64K, iodepth 16) verified with crc32c,
#    each on its own region, then verified again in a second pass;
#  - two chaos clients (tests/nbd/hostile_clients.py chaos): READ/WRITE/FLUSH/TRIM/
#    WRITE_ZEROES over raw connections, dropped with requests in flight now and then, every
#    read checked against what they last wrote.
# Then SIGTERM: exit 0, no sanitizer report (leaks included), every layer's frames back.
# usage: tests/nbd/soak_nbd.sh BUILD_DIR SECONDS
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=${1:?usage: soak_nbd.sh BUILD_DIR SECONDS}
SECS=${2:?usage: soak_nbd.sh BUILD_DIR SECONDS}
for t in fio /usr/bin/python3; do
    command -v "$t" >/dev/null || { echo "soak nbd: $t is not installed (./run setup)" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "soak nbd: this fio has no nbd engine" >&2; exit 1; }
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target bioring-nbd >/dev/null
NBD=$(find "$BUILD" -name bioring-nbd -type f -perm -u+x | head -n1)
WORK=$(mktemp -d "$(cd "$BUILD" && pwd)/soak-nbd.XXXXXX")
SERVER=
cleanup() {
    [[ -n $SERVER ]] && kill -9 "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
MiB=$((1 << 20))
truncate -s $((64 * MiB)) "$WORK/disk.img"
FAULTS="op=any,err=EAGAIN,p=0.02,seed=11;op=any,err=EINTR,p=0.02,seed=12;op=any,hold,p=0.1,seed=13"
BIORING_FAULT=$FAULTS "$NBD" --socket "$WORK/nbd.sock" --threads 2 --max-requests 32 \
    "$WORK/disk.img" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
for _ in $(seq 200); do grep -q serving "$WORK/server.out" 2>/dev/null && break; sleep 0.05; done
grep -q serving "$WORK/server.out" || { cat "$WORK/server.err" >&2; exit 1; }
URI="nbd+unix:///?socket=$WORK/nbd.sock"
echo "== soak nbd: bioring-nbd (ASan), ${SECS}s, BIORING_FAULT=$FAULTS"
# fio: regions [0, 16M) and [16M, 32M) (offset_increment); chaos: [32M, 48M) and [48M, 64M).
FIO=(fio --name=soak --ioengine=nbd "--uri=$URI" --rw=randwrite --bsrange=4k-64k --size=16m
     --numjobs=2 --offset_increment=16m --iodepth=16 --verify=crc32c --verify_fatal=1
     --randseed=21 --group_reporting --verify_state_save=0)
(
    CHAOS_SECONDS=$SECS CHAOS_OFFSET=$((32 * MiB)) CHAOS_BYTES=$((16 * MiB)) CHAOS_SEED=1 \
        /usr/bin/python3 "$ROOT/tests/nbd/hostile_clients.py" "$NBD" "$WORK" chaos
) >"$WORK/chaos1.out" 2>&1 &
C1=$!
(
    CHAOS_SECONDS=$SECS CHAOS_OFFSET=$((48 * MiB)) CHAOS_BYTES=$((16 * MiB)) CHAOS_SEED=2 \
        /usr/bin/python3 "$ROOT/tests/nbd/hostile_clients.py" "$NBD" "$WORK" chaos
) >"$WORK/chaos2.out" 2>&1 &
C2=$!
status=0
end=$((SECONDS + SECS))
passes=0
while ((SECONDS < end)); do
    "${FIO[@]}" --do_verify=1 >"$WORK/fio.out" 2>&1 || { cat "$WORK/fio.out"; status=1; break; }
    "${FIO[@]}" --verify_only=1 >"$WORK/fio.out" 2>&1 || { cat "$WORK/fio.out"; status=1; break; }
    passes=$((passes + 1))
done
echo "soak nbd: fio wrote and verified 32 MiB $passes times (twice each)"
for c in $C1 $C2; do wait "$c" || status=1; done
cat "$WORK/chaos1.out" "$WORK/chaos2.out"
kill -USR1 "$SERVER"; sleep 1
kill -TERM "$SERVER"
rc=0; wait "$SERVER" || rc=$?
SERVER=
if ((rc != 0)) || grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$WORK/server.err"; then
    echo "soak nbd: server exit $rc" >&2; tail -n 60 "$WORK/server.err" >&2; status=1
fi
# The SIGUSR1 table (taken idle): every layer's in-use column is 0.
if awk '($1 == "nbd" || $1 == "crypt" || $1 == "file") && $3 != 0 {bad=1} END {exit !bad}' \
        "$WORK/server.err"; then
    echo "soak nbd: frames still in use when idle" >&2; grep -A4 "^# layer" "$WORK/server.err" >&2
    status=1
fi
grep -E "injected|in-use|^nbd|^file" "$WORK/server.err" || true
((status == 0)) && echo "soak nbd: PASS (${SECS}s)"
exit "$status"
