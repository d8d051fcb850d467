#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# profile.sh BUILD_DIR: where each method's CPU per I/O goes, in ns per I/O — the profile
# behind compare.sh's ratios (issue 5: "where a target is missed, say what a profile shows
# the cost to be").
#
# Each method runs once under `perf record -e cpu-clock` (a software clock: this works in
# VMs without a hardware PMU) and under bench-rusage (its CPU per I/O). The samples are
# split by thread — the submitting thread vs io_uring's io-wq workers (iou-wrk-*), which
# run the reads that cannot complete without blocking (tmpfs O_DIRECT reads are all of
# them) — and by kind: user code, the vDSO clock (every tool times every I/O), the kernel's
# data copy, and the rest of the kernel. Each share times the method's CPU ns per I/O gives
# ns per I/O; the top symbols of each method follow.
#
# Workloads: 4 KiB O_DIRECT random reads on a file in /dev/shm at QD (32) for
# bioring-bench (--mode per-io and loop), uring-loop, uring-loop --plain-ring (Asio's ring
# flags) and asio-file-loop; 4 KiB buffered random reads of a page-cached file under
# BUILD_DIR (compare.sh's CPU-bound case; read through right before each run) for
# bioring-bench per-io, uring-loop and asio-file-loop; NOPs at QD for bioring-bench (both
# modes) and uring-loop; every run with --latency LATENCY. Environment: QD (32), RUN_SECONDS (2), SIZE (256M), TOP (12
# symbols per method), LATENCY ("sample 64"; "all", "off").
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/profile.sh BUILD_DIR   (env: QD RUN_SECONDS SIZE TOP LATENCY)" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
BIN=$BUILD/bench
QD=${QD:-32}
RUNSEC=${RUN_SECONDS:-2}
SIZE=${SIZE:-256M}
TOP=${TOP:-12}
read -r -a LAT <<<"${LATENCY:-sample 64}"
for need in bioring-bench uring-loop asio-file-loop bench-rusage; do
    [[ -x $BIN/$need ]] || { echo "profile.sh: $BIN/$need is missing: build the bench targets" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "profile.sh: perf is needed (apt-get install linux-perf)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "profile.sh: python3 is needed" >&2; exit 1; }

WORK=$(mktemp -d)
FILE=/dev/shm/bioring-profile-$$.dat
CACHED=$BUILD/bioring-profile-cached-$$.dat
trap 'rm -rf "$WORK"; rm -f "$FILE" "$CACHED"' EXIT
trap 'exit 130' INT TERM
head -c "$SIZE" /dev/urandom >"$FILE"
head -c "$SIZE" /dev/urandom >"$CACHED"
warm() { # into the page cache and onto its active list (twice: see compare.sh's warm_cache)
    dd if="$CACHED" of=/dev/null bs=1M status=none
    dd if="$CACHED" of=/dev/null bs=1M status=none
}

# prof NAME CMD...: one perf-recorded, rusage-wrapped run; its breakdown into WORK/NAME.json.
prof() {
    local name=$1
    shift
    if ! perf record -q -e cpu-clock -F 4999 -o "$WORK/$name.data" -- \
        "$BIN/bench-rusage" "$WORK/$name.ru.json" "$@" --json >"$WORK/$name.out.json" \
        2>"$WORK/$name.err"; then
        echo "profile.sh: $name failed: $(cat "$WORK/$name.err")" >&2
        exit 1
    fi
    perf report -i "$WORK/$name.data" --no-children --sort comm,dso,sym -g none --stdio \
        -F overhead,comm,dso,sym 2>/dev/null >"$WORK/$name.txt"
    python3 - "$name" "$WORK" "$TOP" <<'PY'
import json, re, sys
name, work, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = json.load(open(f"{work}/{name}.out.json"))
ru = json.load(open(f"{work}/{name}.ru.json"))
ns = (ru["user_s"] + ru["sys_s"]) * 1e9 / out["ios"]
COPY = re.compile(r"(_copy_to_iter|_copy_from_iter|copy_page_to_iter|copy_page_from_iter|"
                  r"memcpy|rep_movs|copy_user)")
CLOCK = re.compile(r"clock_gettime|now_ns")
parts = {}
syms = {}
total = 0.0
for line in open(f"{work}/{name}.txt"):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
    if not m:
        continue
    pct, comm, dso, kind, sym = float(m[1]), m[2], m[3], m[4], m[5]
    if dso == "bench-rusage" or comm == "bench-rusage":
        continue
    total += pct
    thread = "io-wq" if comm.startswith("iou-wrk") else "submitter"
    if CLOCK.search(sym):
        what = "clock"
    elif kind != "k":
        what = "user"
    elif COPY.search(sym):
        what = "kernel copy"
    else:
        what = "kernel other"
    parts[(thread, what)] = parts.get((thread, what), 0.0) + pct
    syms[sym] = syms.get(sym, 0.0) + pct
rec = {"name": name, "cpu_ns_per_io": ns,
       "ns": {f"{t}/{w}": v / total * ns for (t, w), v in parts.items()},
       "top": sorted(((v / total * ns, s) for s, v in syms.items()), reverse=True)[:top]}
json.dump(rec, open(f"{work}/{name}.json", "w"))
PY
}

echo "profile.sh: QD $QD, ${RUNSEC}s per run, perf cpu-clock at 4999 Hz" >&2
R=(--qd "$QD" --seconds "$RUNSEC" --latency "${LAT[@]}")
echo "# --latency ${LAT[*]}"
prof perio-randread "$BIN/bioring-bench" --mode per-io "${R[@]}" --file "$FILE" --fixed-files
prof loop-randread "$BIN/bioring-bench" --mode loop "${R[@]}" --file "$FILE" --fixed-files
prof uring-randread "$BIN/uring-loop" "${R[@]}" --file "$FILE"
prof uring-plain-randread "$BIN/uring-loop" "${R[@]}" --file "$FILE" --plain-ring
prof asio-randread "$BIN/asio-file-loop" "${R[@]}" --file "$FILE"
warm
prof perio-cached "$BIN/bioring-bench" --mode per-io "${R[@]}" --file "$CACHED" --fixed-files --no-direct
warm
prof uring-cached "$BIN/uring-loop" "${R[@]}" --file "$CACHED" --no-direct
warm
prof asio-cached "$BIN/asio-file-loop" "${R[@]}" --file "$CACHED" --no-direct
prof perio-nop "$BIN/bioring-bench" --mode per-io "${R[@]}" --rw nop
prof loop-nop "$BIN/bioring-bench" --mode loop "${R[@]}" --rw nop
prof uring-nop "$BIN/uring-loop" "${R[@]}" --rw nop

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
names = ["perio-randread", "loop-randread", "uring-randread", "uring-plain-randread",
         "asio-randread", "perio-cached", "uring-cached", "asio-cached", "perio-nop",
         "loop-nop", "uring-nop"]
recs = [json.load(open(f"{work}/{n}.json")) for n in names]
cols = ["submitter/user", "submitter/clock", "submitter/kernel copy",
        "submitter/kernel other", "io-wq/kernel copy", "io-wq/kernel other"]
print("ns per I/O (CPU of every thread; perf cpu-clock shares x bench-rusage CPU per I/O)")
print(f"{'method':22} {'total':>7} " + " ".join(f"{c.replace('submitter/', 'sub ').replace('kernel ', 'k-'):>13}" for c in cols))
for r in recs:
    other = sum(v for k, v in r["ns"].items() if k not in cols)
    row = [r["ns"].get(c, 0.0) for c in cols]
    row[-1] += other  # io-wq user/clock samples (none expected) fold into the last column
    print(f"{r['name']:22} {r['cpu_ns_per_io']:7.0f} " + " ".join(f"{v:13.0f}" for v in row))
for r in recs:
    print(f"\n{r['name']}: top symbols, ns per I/O")
    for v, s in r["top"]:
        print(f"  {v:7.1f}  {s}")
PY
