#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# selftest.sh BIN_DIR: the bench programs refuse bad input with status 2 and a message,
# and a short real run of each prints one well-formed JSON object with I/Os in it.
# ctest runs it (bench/CMakeLists.txt); about 10 seconds.
set -uo pipefail
# The runs below pick their backend with --backend; an inherited BIORING_BACKEND=asio (as in
# `BIORING_BACKEND=asio ctest`) would force all of them onto Asio, which scaling.sh refuses.
unset BIORING_BACKEND
BIN=${1:?usage: selftest.sh BIN_DIR}
WORK=$(mktemp -d /dev/shm/bioring-selftest.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FILE=$WORK/data
head -c 16M /dev/urandom >"$FILE"
head -c 8192 /dev/urandom >"$WORK/small"
FAILS=0
fail() { echo "selftest: FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect_usage TOOL ARGS...: exit status 2 and a message on stderr naming the tool.
expect_usage() {
    local tool=$1; shift
    local err
    err=$("$BIN/$tool" "$@" 2>&1 >/dev/null)
    local rc=$?
    [[ $rc -eq 2 ]] || fail "$tool $* exited $rc, expected 2"
    [[ $err == "$tool: "* ]] || fail "$tool $*: no message ('$err')"
}
# expect_json TOOL ARGS...: status 0, JSON with ios > 0 and the common fields.
expect_json() {
    local tool=$1; shift
    local out
    out=$("$BIN/$tool" "$@" --json) || { fail "$tool $* exited $?"; return; }
    python3 - "$tool" "$out" <<'PY' || fail "$tool $*: bad JSON: $out"
import json, sys
j = json.loads(sys.argv[2])
assert j["tool"] == sys.argv[1], j["tool"]
assert j["ios"] > 0 and j["seconds"] > 0 and j["iops"] > 0, j
assert j["cpu_ns_per_io"] > 0 and j["iops_per_core"] > 0, j
lat = j["latency_ns"]
if j["config"]["latency"] == "off":
    assert lat is None and j["latency_samples"] == 0, j
else:
    assert 0 < j["latency_samples"] <= j["ios"], j
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat
for k in ("mb_s", "enter_calls_per_io", "slab_allocs_per_io", "heap_calls_per_io", "config"):
    assert k in j, k
PY
}

TOOLS=(uring-loop asio-file-loop)
[[ -x $BIN/bioring-bench ]] && TOOLS+=(bioring-bench)
for t in "${TOOLS[@]}"; do
    expect_usage "$t" --rw bogus --file "$FILE"
    expect_usage "$t" --qd 0 --file "$FILE"
    expect_usage "$t" --bs 1000 --file "$FILE"
    expect_usage "$t" --bs 4kx --file "$FILE"
    expect_usage "$t" --no-such-option
    expect_usage "$t" --seconds abc --file "$FILE"
    expect_usage "$t" --qd 99999999999999999999999 --file "$FILE"
    expect_usage "$t" --file "$WORK/missing"
    expect_usage "$t" --file "$WORK/small" --threads 4
    expect_usage "$t" --json=yes --file "$FILE"
    expect_json "$t" --file "$FILE" --qd 8 --seconds 0.2
    expect_json "$t" --file "$FILE" --qd 4 --ios 1000 --seconds 0
    # --latency: the three spellings, and refusals of anything else.
    expect_usage "$t" --file "$FILE" --latency bogus
    expect_usage "$t" --file "$FILE" --latency
    expect_usage "$t" --file "$FILE" --latency sample
    expect_usage "$t" --file "$FILE" --latency sample 0
    expect_usage "$t" --file "$FILE" --latency sample 8x
    expect_usage "$t" --file "$FILE" --latency sample -1
    expect_usage "$t" --file "$FILE" --latency sample 16777217
    expect_usage "$t" --file "$FILE" --latency=Off
    expect_json "$t" --file "$FILE" --qd 8 --seconds 0.2 --latency off
    expect_json "$t" --file "$FILE" --qd 8 --seconds 0.2 --latency=sample 3
    # Exact counts under --ios: "all" times every I/O, "sample 8" one in 8, "off" none, and
    # the summary names the mode.
    for spec in "all:8000" "sample 8:1000" "off:0" "sample 1:8000"; do
        mode=${spec%:*}
        want=${spec#*:}
        # shellcheck disable=SC2086 # $mode is one or two words on purpose
        "$BIN/$t" --file "$FILE" --qd 4 --ios 8000 --seconds 0 --latency $mode --json |
            python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["config"]["latency"] == sys.argv[1], j["config"]
assert j["ios"] == 8000 and j["latency_samples"] == int(sys.argv[2]), j' "$mode" "$want" ||
            fail "$t --latency $mode: expected $want timed I/Os of 8000"
    done
    "$BIN/$t" --file "$FILE" --qd 4 --ios 2000 --seconds 0 --latency off |
        grep -q 'latency: not measured (--latency off)' || fail "$t: text summary hides --latency off"
    "$BIN/$t" --file "$FILE" --qd 4 --ios 2000 --seconds 0 |
        grep -q 'latency us (--latency sample 64, ' || fail "$t: default is not --latency sample 64"
done
expect_json uring-loop --rw nop --qd 16 --seconds 0.2
expect_json uring-loop --rw nop --qd 16 --seconds 0.2 --latency off
expect_usage asio-file-loop --rw nop
if [[ -x $BIN/bioring-bench ]]; then
    expect_usage bioring-bench --backend nope
    expect_usage bioring-bench --mode nope
    expect_json bioring-bench --rw nop --qd 16 --seconds 0.2
    expect_json bioring-bench --rw nop --qd 16 --seconds 0.2 --mode per-io
    expect_json bioring-bench --rw nop --qd 16 --seconds 0.2 --mode per-io --latency off
    expect_json bioring-bench --file "$FILE" --qd 8 --seconds 0.2 --mode per-io --latency all
    n=$("$BIN/bioring-bench" --rw nop --qd 8 --ios 6400 --seconds 0 --mode per-io \
        --latency sample 64 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_samples"])')
    [[ $n == 100 ]] || fail "bioring-bench per-io --latency sample 64 timed $n of 6400 NOPs, not 100"
    expect_json bioring-bench --file "$FILE" --qd 8 --seconds 0.2 --same-thread
    expect_usage bioring-bench --rw nop --same-thread --threads 2
    expect_usage bioring-bench --rw nop --same-thread --pin
    expect_usage bioring-bench --rw nop --same-thread=1
    expect_json bioring-bench --rw randrw --file "$FILE" --qd 4 --seconds 0.2 --threads 2
    expect_json bioring-bench --file "$FILE" --qd 8 --seconds 0.2 --fixed-files --backend asio
    # --ios is exact: every request completes and is counted once.
    n=$("$BIN/bioring-bench" --file "$FILE" --qd 8 --ios 5000 --seconds 0 --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ios"])')
    [[ $n == 5000 ]] || fail "bioring-bench --ios 5000 did $n I/Os"
    # Steady state allocates nothing per I/O in loop mode and one slab object in per-io mode.
    "$BIN/bioring-bench" --rw nop --qd 8 --ios 200000 --seconds 0 --json | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["slab_allocs_per_io"] == 0 and j["heap_calls_per_io"] < 1e-3, j' ||
        fail "bioring-bench loop mode allocates per I/O"
    "$BIN/bioring-bench" --rw nop --qd 8 --ios 200000 --seconds 0 --mode per-io --json | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert abs(j["slab_allocs_per_io"] - 1) < 1e-3 and j["heap_calls_per_io"] < 1e-3, j' ||
        fail "bioring-bench per-io mode is not one slab allocation per I/O"
fi
n=$("$BIN/uring-loop" --file "$FILE" --qd 8 --ios 5000 --seconds 0 --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["ios"])')
[[ $n == 5000 ]] || fail "uring-loop --ios 5000 did $n I/Os"
# bench-rusage passes the status through and writes its CPU record.
"$BIN/bench-rusage" "$WORK/ru.json" false && fail "bench-rusage hid a failing status"
"$BIN/bench-rusage" "$WORK/ru.json" "$BIN/uring-loop" --rw nop --seconds 0.2 >/dev/null ||
    fail "bench-rusage run failed"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["user_s"]+j["sys_s"] > 0.05 and j["status"] == 0, j' \
    "$WORK/ru.json" || fail "bench-rusage record: $(cat "$WORK/ru.json")"
# A forgotten OUT must not turn the command's own path into the output file.
cp "$BIN/uring-loop" "$WORK/victim"
st=0
"$BIN/bench-rusage" "$WORK/victim" --rw nop 2>/dev/null || st=$?
[[ $st == 2 ]] || fail "bench-rusage took an OUT without .json (status $st)"
cmp -s "$BIN/uring-loop" "$WORK/victim" || fail "bench-rusage overwrote a non-.json OUT"

# scaling.sh end to end on one thread (NOP: no file to fill), and, in a Release tree, the
# same through a bundle made by bundle.sh (what a device machine runs).
HERE=$(dirname "$(readlink -f "$0")")
BUILD=$(dirname "$(readlink -f "$BIN")")
scaling_ok() { # RESULTS_DIR: a table with all three methods
    grep -q ' bioring-per-io ' "$1/table.txt" && grep -q ' bioring-loop ' "$1/table.txt" &&
        grep -q ' uring ' "$1/table.txt"
}
THREADS=1 REPS=1 RUN_SECONDS=0.2 WORKLOADS=nop RESULTS=$WORK/scaling \
    "$HERE/scaling.sh" "$BUILD" >/dev/null 2>"$WORK/scaling.err" ||
    fail "scaling.sh failed: $(cat "$WORK/scaling.err")"
scaling_ok "$WORK/scaling" || fail "scaling.sh wrote no table with all three methods"
grep -q "LATENCY='sample 64'" "$WORK/scaling/table.txt" || fail "scaling.sh's table does not state --latency"
st=0
THREADS=1 REPS=1 RUN_SECONDS=0.2 WORKLOADS=nop LATENCY="sample 0" RESULTS=$WORK/scaling-bad \
    "$HERE/scaling.sh" "$BUILD" >/dev/null 2>&1 || st=$?
[[ $st == 2 ]] || fail "scaling.sh took LATENCY='sample 0' (status $st)"
st=0
THREADS=1 REPS=1 RUN_SECONDS=0.2 WORKLOADS=nop METHODS="bioring" RESULTS=$WORK/scaling-bad \
    "$HERE/scaling.sh" "$BUILD" >/dev/null 2>&1 || st=$?
[[ $st == 2 ]] || fail "scaling.sh took METHODS=bioring (status $st)"
if ! grep -q '^BIORING_SANITIZE:[A-Z]*=.' "$BUILD/CMakeCache.txt"; then
    "$HERE/bundle.sh" "$BUILD" "$WORK/bundle" >/dev/null 2>"$WORK/bundle.err" ||
        fail "bundle.sh failed: $(cat "$WORK/bundle.err")"
    THREADS=1 REPS=1 RUN_SECONDS=0.2 WORKLOADS=nop RESULTS=$WORK/bundle-scaling \
        "$WORK/bundle/run-scaling" >/dev/null 2>"$WORK/bundle-run.err" ||
        fail "bundle/run-scaling failed: $(cat "$WORK/bundle-run.err")"
    scaling_ok "$WORK/bundle-scaling" || fail "bundle/run-scaling wrote no table"
fi

# nbd_compare.sh: bad settings are refused before anything starts; where nbdkit and fio's
# nbd engine are installed, a --quick run against nbdkit (and bioring-nbd when it is built)
# makes a table, over the Unix socket and over loopback TCP (bioring-nbd-zc there).
for bad in "REPS=0" "JOBS=x" "RWS=read" "TARGETS=tape" "SERVERS=bogus" "SIZE=1k" "CRYPT=2" \
    "BS=3k" "BS=512" "BS=2048k" "TRANSPORT=udp"; do
    st=0
    env "$bad" "$HERE/nbd_compare.sh" --quick "$BUILD" >/dev/null 2>"$WORK/nbd.err" || st=$?
    [[ $st == 2 ]] || fail "nbd_compare.sh took $bad (status $st)"
done
st=0
"$HERE/nbd_compare.sh" --slow "$BUILD" >/dev/null 2>&1 || st=$?
[[ $st == 2 ]] || fail "nbd_compare.sh took --slow (status $st)"
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null && fio --enghelp 2>/dev/null | grep -qw nbd; then
    servers=nbdkit
    [[ -x $BUILD/apps/bioring-nbd ]] && servers="bioring-nbd nbdkit"
    SERVERS=$servers RUN_SECONDS=0.5 SIZE=8M TARGETS=shm RWS=randread CRYPT=0 \
        RESULTS=$WORK/nbd "$HERE/nbd_compare.sh" --quick "$BUILD" >/dev/null 2>"$WORK/nbd.err" ||
        fail "nbd_compare.sh failed: $(cat "$WORK/nbd.err")"
    for s in $servers; do
        grep -qE "^/dev/shm +4k +randread +1 $s " "$WORK/nbd/table.txt" &&
            grep -qE "^copy +/dev/shm +out +$s " "$WORK/nbd/table.txt" ||
            fail "nbd_compare.sh wrote no fio and nbdcopy rows for $s"
    done
    if [[ -x $BUILD/apps/bioring-nbd ]]; then
        SERVERS="bioring-nbd-zc nbdkit" TRANSPORT=tcp BS=256k RUN_SECONDS=0.5 SIZE=8M \
            TARGETS=shm RWS=randread COPY=0 CRYPT=0 RESULTS=$WORK/nbd-tcp \
            "$HERE/nbd_compare.sh" --quick "$BUILD" >/dev/null 2>"$WORK/nbd.err" ||
            fail "nbd_compare.sh over TCP failed: $(cat "$WORK/nbd.err")"
        grep -qE '^/dev/shm +256k +randread +1 bioring-nbd-zc ' "$WORK/nbd-tcp/table.txt" ||
            fail "nbd_compare.sh over TCP wrote no bioring-nbd-zc row"
    fi
fi

# profile.sh end to end, where perf can record here (a software clock: no PMU needed).
if command -v perf >/dev/null && perf record -q -e cpu-clock -o "$WORK/probe.data" -- true \
    >/dev/null 2>&1; then
    RUN_SECONDS=0.2 SIZE=16M TOP=3 "$HERE/profile.sh" "$BUILD" >"$WORK/profile.txt" \
        2>"$WORK/profile.err" || fail "profile.sh failed: $(cat "$WORK/profile.err")"
    grep -q '^asio-randread ' "$WORK/profile.txt" || fail "profile.sh printed no breakdown"
fi

# cachegrind.sh end to end, where valgrind is installed and the tree is not sanitized
# (valgrind cannot run ASan or TSan binaries): exact counts, both methods.
if command -v valgrind >/dev/null && ! grep -q '^BIORING_SANITIZE:[A-Z]*=.' "$BUILD/CMakeCache.txt"; then
    QDS=8 N1=2000 N2=4000 "$HERE/cachegrind.sh" "$BUILD" >"$WORK/cg.txt" 2>"$WORK/cg.err" ||
        fail "cachegrind.sh failed: $(cat "$WORK/cg.err")"
    awk '$1 == 8 && $3 > 20 { n++ } END { exit n == 3 ? 0 : 1 }' "$WORK/cg.txt" ||
        fail "cachegrind.sh printed no counts for all three methods: $(cat "$WORK/cg.txt")"
    N1=5 N2=5 "$HERE/cachegrind.sh" "$BUILD" >/dev/null 2>&1
    [[ $? == 2 ]] || fail "cachegrind.sh took N2 <= N1"
fi

if ((FAILS > 0)); then
    echo "selftest: $FAILS failure(s)" >&2
    exit 1
fi
echo "selftest: all checks passed (${TOOLS[*]})"
