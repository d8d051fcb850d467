#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh BUILD_DIR: a short tour of bioring on data made here (./run demo calls it).
#
#   1. a 256 MiB random file and a 64-byte key in /dev/shm
#   2. bioring-crypt encrypt, then decrypt; the round trip must be byte-exact (cmp) and the
#      ciphertext must differ from the plaintext
#   3. bioring-copy --verify; the copy must be byte-exact; bioring-wal bench (64 producers,
#      group commit) then verify of its log
#   4. bioring-nbd: serve a file, nbdinfo it, copy the data in and out with nbdcopy
#      (4 connections, 64 requests in flight), then the same through a --crypt export whose
#      backing file must equal bioring-crypt's output; cmp at each step
#   5. bioring-bench: 4 KiB O_DIRECT random reads at QD 32 and NOPs at QD 32, each next to
#      uring-loop (the plain liburing loop) doing the same work
# then a summary. Everything it creates is removed at exit. Exit status: 0 when every step
# passed, 1 when one failed. A program that is not built is skipped with a line saying so
# (DEMO_STRICT=1 turns a skip into a failure). Env: DEMO_SIZE (256M), DEMO_SECONDS (2).
set -uo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/demo.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
SIZE=${DEMO_SIZE:-256M}
SECS=${DEMO_SECONDS:-2}
STRICT=${DEMO_STRICT:-0}
COPY=$BUILD/apps/bioring-copy
CRYPT=$BUILD/apps/bioring-crypt
WAL=$BUILD/apps/bioring-wal
NBD=$BUILD/apps/bioring-nbd
BENCH=$BUILD/bench/bioring-bench
LOOP=$BUILD/bench/uring-loop

WORK=$(mktemp -d /dev/shm/bioring-demo.XXXXXX)
NBD_PID=""
cleanup() {
    [[ -n $NBD_PID ]] && kill -KILL "$NBD_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -a SUMMARY=()
FAILED=0
pass() { SUMMARY+=("PASS  $1"); echo "demo: PASS $1"; }
fail() { SUMMARY+=("FAIL  $1"); echo "demo: FAIL $1" >&2; FAILED=$((FAILED + 1)); }
skip() {
    if [[ $STRICT == 1 ]]; then
        fail "$1 (not built: $2)"
    else
        SUMMARY+=("SKIP  $1 ($2 not built)")
        echo "demo: SKIP $1: $2 is not built"
    fi
}
have() { [[ -x $1 ]]; }
# step NAME COMMAND...: run it, showing its output; record PASS/FAIL.
step() {
    local name=$1; shift
    echo "demo: \$ ${*/#$BUILD\//}"
    if "$@"; then pass "$name"; else fail "$name (exit $?)"; fi
}

echo "demo: making $SIZE of random data and a 512-bit key in $WORK"
head -c "$SIZE" /dev/urandom >"$WORK/data" || { fail "make data"; exit 1; }
head -c 64 /dev/urandom >"$WORK/key" || { fail "make key"; exit 1; }

if have "$CRYPT"; then
    step "crypt encrypt" "$CRYPT" encrypt --key-file "$WORK/key" "$WORK/data" "$WORK/data.enc"
    step "crypt decrypt" "$CRYPT" decrypt --key-file "$WORK/key" "$WORK/data.enc" "$WORK/data.dec"
    if cmp -s "$WORK/data" "$WORK/data.dec"; then
        pass "decrypt(encrypt(data)) == data (cmp)"
    else
        fail "decrypt(encrypt(data)) differs from data"
    fi
    if [[ -f $WORK/data.enc ]] && ! cmp -s "$WORK/data" "$WORK/data.enc"; then
        pass "ciphertext differs from plaintext"
    else
        fail "ciphertext missing or equal to plaintext"
    fi
    rm -f "$WORK/data.enc" "$WORK/data.dec"
else
    skip "crypt round trip" "$CRYPT"
fi

if have "$COPY"; then
    step "copy --verify" "$COPY" --verify "$WORK/data" "$WORK/data.copy"
    if cmp -s "$WORK/data" "$WORK/data.copy"; then
        pass "copy == data (cmp)"
    else
        fail "copy differs from data"
    fi
    rm -f "$WORK/data.copy"
else
    skip "copy --verify" "$COPY"
fi

if have "$WAL"; then
    mkdir -p "$WORK/wal"
    step "wal bench" "$WAL" bench "$WORK/wal" --producers 64 --seconds "$SECS"
    step "wal verify" "$WAL" verify "$WORK/wal/wal-0.log"
    rm -rf "$WORK/wal"
else
    skip "wal bench + verify" "$WAL"
fi

# nbd_start ARGS...: start bioring-nbd on $WORK/nbd.sock, wait for its "serving" line.
nbd_start() {
    rm -f "$WORK/nbd.log"
    echo "demo: \$ bioring-nbd --socket \$WORK/nbd.sock ${*//$WORK/\$WORK} &"
    "$NBD" --socket "$WORK/nbd.sock" "$@" >"$WORK/nbd.log" 2>&1 &
    NBD_PID=$!
    for _ in $(seq 200); do
        grep -q serving "$WORK/nbd.log" 2>/dev/null && { cat "$WORK/nbd.log"; return 0; }
        kill -0 "$NBD_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/nbd.log" >&2
    return 1
}
# nbd_stop: SIGTERM, which must end in exit 0 after a flush.
nbd_stop() {
    kill -TERM "$NBD_PID"
    local rc=0
    wait "$NBD_PID" || rc=$?
    NBD_PID=""
    tail -n 1 "$WORK/nbd.log"
    return $rc
}
URI="nbd+unix:///demo?socket=$WORK/nbd.sock"
if ! have "$NBD"; then
    skip "bioring-nbd" "$NBD"
elif ! command -v nbdcopy >/dev/null || ! command -v nbdinfo >/dev/null; then
    if [[ $STRICT == 1 ]]; then fail "bioring-nbd (nbdcopy/nbdinfo missing: ./run setup)"
    else SUMMARY+=("SKIP  bioring-nbd (nbdcopy/nbdinfo not installed)"); fi
else
    truncate -s "$SIZE" "$WORK/disk"
    if nbd_start --export demo "$WORK/disk"; then
        step "nbdinfo" nbdinfo "$URI"
        step "nbdcopy in (4 connections, 64 requests)" \
            nbdcopy --connections=4 --requests=64 --flush "$WORK/data" "$URI"
        step "nbdcopy out" nbdcopy --connections=4 --requests=64 "$URI" "$WORK/back"
        if cmp -s "$WORK/data" "$WORK/disk" && cmp -s "$WORK/data" "$WORK/back"; then
            pass "served file == data == copy out (cmp)"
        else
            fail "nbd round trip differs from data"
        fi
        if nbd_stop; then pass "bioring-nbd exits 0 on SIGTERM"; else fail "bioring-nbd exit status"; fi
    else
        fail "bioring-nbd start"
    fi
    rm -f "$WORK/back"
    truncate -s 0 "$WORK/disk"
    truncate -s "$SIZE" "$WORK/disk"
    if nbd_start --export demo --crypt aes-xts-plain64 --key-file "$WORK/key" "$WORK/disk"; then
        step "nbdcopy into the crypt export" nbdcopy --connections=4 --requests=64 --flush \
            "$WORK/data" "$URI"
        step "nbdcopy out of the crypt export" nbdcopy "$URI" "$WORK/back"
        if nbd_stop; then pass "crypt bioring-nbd exits 0 on SIGTERM"; else fail "crypt bioring-nbd exit status"; fi
        if cmp -s "$WORK/data" "$WORK/back"; then
            pass "crypt export reads back the plaintext (cmp)"
        else
            fail "crypt export read back differs"
        fi
        if have "$CRYPT" && "$CRYPT" encrypt --quiet --key-file "$WORK/key" "$WORK/data" "$WORK/ref" &&
            cmp -s "$WORK/ref" "$WORK/disk"; then
            pass "crypt export's file == bioring-crypt encrypt output (cmp)"
        else
            fail "crypt export's file differs from bioring-crypt encrypt"
        fi
    else
        fail "bioring-nbd --crypt start"
    fi
    rm -f "$WORK/disk" "$WORK/back" "$WORK/ref"
fi

# bench_pair RW QD: bioring-bench and uring-loop on the same work; one line each + ratio.
declare -a BENCH_LINES=()
bench_pair() {
    local rw=$1 qd=$2 args=(--rw "$1" --qd "$2" --seconds "$SECS" --json) b="" l=""
    [[ $rw != nop ]] && args+=(--file "$WORK/data")
    if have "$BENCH"; then
        echo "demo: \$ bioring-bench ${args[*]}$([[ $rw != nop ]] && echo ' --fixed-files')"
        local bargs=("${args[@]}")
        [[ $rw != nop ]] && bargs+=(--fixed-files) # uring-loop registers its file too
        if b=$("$BENCH" "${bargs[@]}"); then pass "bioring-bench $rw qd=$qd"; else fail "bioring-bench $rw qd=$qd"; b=""; fi
    else
        skip "bioring-bench $rw qd=$qd" "$BENCH"
    fi
    if have "$LOOP"; then
        echo "demo: \$ uring-loop ${args[*]}"
        if l=$("$LOOP" "${args[@]}"); then pass "uring-loop $rw qd=$qd"; else fail "uring-loop $rw qd=$qd"; l=""; fi
    else
        skip "uring-loop $rw qd=$qd" "$LOOP"
    fi
    BENCH_LINES+=("$(python3 - "$rw" "$qd" "$b" "$l" <<'PY'
import json, sys
rw, qd, b, l = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def one(name, text):
    if not text:
        return None, f"  {name:<14} -"
    j = json.loads(text)
    return j, (f"  {name:<14} {j['iops']/1e3:9.1f} kIOPS  {j['cpu_ns_per_io']:7.0f} CPU ns/IO  "
               f"{j['iops_per_core']/1e3:9.1f} kIOPS/core  p99 {j['latency_ns']['p99']/1e3:7.1f} us")
jb, lb = one("bioring-bench", b)
jl, ll = one("uring-loop", l)
out = [f"{'4 KiB O_DIRECT randread' if rw != 'nop' else 'NOP'} at QD {qd}:", lb, ll]
if jb and jl:
    out.append(f"  bioring-bench / uring-loop: IOPS x{jb['iops']/jl['iops']:.2f}, "
               f"per core x{jb['iops_per_core']/jl['iops_per_core']:.2f}")
print("\n".join(out))
PY
)")
}
bench_pair randread 32
bench_pair nop 32

echo
echo "== bioring demo summary ($(uname -r), $(nproc) CPUs)"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
for s in "${BENCH_LINES[@]}"; do echo "$s"; done
if ((FAILED > 0)); then
    echo "demo: $FAILED step(s) failed" >&2
    exit 1
fi
echo "demo: all steps passed"
