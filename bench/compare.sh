#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare.sh BUILD_DIR: bioring-bench side by side with fio's io_uring engine, the plain
# liburing loop (uring-loop) and Asio's io_uring random_access_file (asio-file-loop).
# bioring-bench runs in both of its modes: per-io (the headline: one request coroutine, one
# BioSet allocation holding frame + Bio, per I/O) and loop (one long-lived coroutine per
# queue slot).
#
# One run, interleaved: for each repetition, every point (target x QD) runs every tool in
# turn (A B C D A B C D ...), so that a disturbance on this shared machine lands on all
# methods alike; the table shows medians and minimums. Every run of every tool is wrapped in
# bench-rusage, which reports wait4()'s user+sys time of the whole process tree: all its
# threads (io_uring io-wq workers included) and fio's job processes. That one figure is
# the CPU per I/O of every method (it includes each tool's start-up and teardown, which a
# run of a few seconds dilutes; the in-run figures the tools print about themselves are
# kept in runs.jsonl as self_cpu_ns_per_io).
#
# Workloads (TARGETS): 4 KiB O_DIRECT random reads at QD 1, 8, 32, 128 on a file in
# /dev/shm (tmpfs: "shm") and on a file under BUILD_DIR (the ext4 work disk: "disk"); the
# CPU-bound case ("cached"): 4 KiB buffered random reads at QD 32 and 128 of a file under
# BUILD_DIR that is entirely in the page cache, where io_uring completes each read inline
# in io_uring_enter and the runtime's own cost shows (the file is read through twice right
# before every run, as this VM's memory manager evicts idle pages: see warm_cache; its
# page-cache residency is recorded with fincore); NOPs at QD 1, 32, 128 for bioring-bench and uring-loop only (fio
# has no io_uring NOP engine: its null engine never enters io_uring; Asio has no NOP).
#
# Latency (LATENCY): every tool but fio runs with the same --latency (bench/latency.hpp);
# the default "sample 64" times one I/O in 64 (under 2 ns per I/O). fio times every I/O
# with LATENCY=all and runs with --gtod_reduce=1 (no per-I/O timestamps) otherwise. The
# table header states the setting.
#
# Environment: REPS (5), SECONDS or RUN_SECONDS (2; per run), QDS ("1 8 32 128"),
# CACHED_QDS ("32 128"), NOP_QDS ("1 32 128"), BS (4k), SIZE (1G per file),
# TARGETS ("shm disk cached"), LATENCY ("sample 64"; or "all", "off"),
# TOOLS ("bioring-per-io bioring-loop fio uring asio"; "bioring" means both bioring modes;
# also "uring-plain": uring-loop --plain-ring, the plain loop on a ring with Asio's setup
# flags, which shows what the flags alone cost; "base-per-io", "base-loop": bioring-bench
# of the build BASE, e.g. the code before a change, in the same interleaved run),
# BASE (a second build folder, for the base-* tools), RESULTS (ROOT/results).
# Output: RESULTS/<UTC timestamp>/{runs.jsonl,results.json,table.txt,kiops_per_core.png}
# and RESULTS/latest -> that folder.
_seconds_from_env=$SECONDS  # bash owns $SECONDS (it counts up); read it before any work
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/compare.sh BUILD_DIR   (env: REPS SECONDS QDS CACHED_QDS NOP_QDS BS SIZE TARGETS LATENCY TOOLS)" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(dirname "$HERE")
REPS=${REPS:-5}
if [[ -n ${RUN_SECONDS:-} ]]; then
    RUNSEC=$RUN_SECONDS
elif ((_seconds_from_env > 0)); then
    RUNSEC=$_seconds_from_env
else
    RUNSEC=2
fi
QDS=${QDS:-1 8 32 128}
CACHED_QDS=${CACHED_QDS:-32 128}
NOP_QDS=${NOP_QDS:-1 32 128}
BS=${BS:-4k}
SIZE=${SIZE:-1G}
TARGETS=${TARGETS:-shm disk cached}
LATENCY=${LATENCY:-sample 64}
TOOLS=${TOOLS:-bioring-per-io bioring-loop fio uring asio}
TOOLS=$(sed -E 's/(^| )bioring( |$)/\1bioring-per-io bioring-loop\2/g' <<<"$TOOLS")
RESULTS=${RESULTS:-$ROOT/results}
read -r -a LAT <<<"$LATENCY"
case "${LAT[*]}" in
all | off) ;;
sample\ *) [[ ${#LAT[@]} -eq 2 && ${LAT[1]} =~ ^[1-9][0-9]*$ ]] ||
    { echo "compare.sh: LATENCY='$LATENCY': expected all, off or 'sample N'" >&2; exit 2; } ;;
*) echo "compare.sh: LATENCY='$LATENCY': expected all, off or 'sample N'" >&2; exit 2 ;;
esac
FIO_LAT=()
[[ ${LAT[0]} == all ]] || FIO_LAT=(--gtod_reduce=1)

BIN=$BUILD/bench
BASE_BIN=""
[[ -n ${BASE:-} ]] && BASE_BIN=$(readlink -f "$BASE")/bench
RUSAGE=$BIN/bench-rusage
for need in "$RUSAGE" "$BIN/uring-loop"; do
    [[ -x $need ]] || { echo "compare.sh: $need is missing: build the bench targets first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed for the summary" >&2; exit 1; }

# Which tools can run here; a missing one is skipped with a line saying so.
declare -A HAVE=()
for t in $TOOLS; do
    case $t in
    bioring-per-io | bioring-loop) [[ -x $BIN/bioring-bench ]] && HAVE[$t]=1 || echo "compare.sh: skipping $t: $BIN/bioring-bench not built" ;;
    base-per-io | base-loop)
        [[ -n $BASE_BIN && -x $BASE_BIN/bioring-bench ]] && HAVE[$t]=1 ||
            { echo "compare.sh: $t needs BASE=<build folder with bench/bioring-bench>" >&2; exit 2; } ;;
    uring | uring-plain) HAVE[$t]=1 ;;
    asio) [[ -x $BIN/asio-file-loop ]] && HAVE[$t]=1 || echo "compare.sh: skipping asio-file-loop: not built" ;;
    fio) command -v fio >/dev/null && HAVE[$t]=1 || echo "compare.sh: skipping fio: not installed" ;;
    *) echo "compare.sh: unknown tool '$t' in TOOLS (bioring-per-io bioring-loop bioring base-per-io base-loop fio uring uring-plain asio)" >&2; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/$STAMP
mkdir -p "$OUT"
WORK=$(mktemp -d)
SHM_FILE=/dev/shm/bioring-compare-$$.dat
DISK_FILE=$BUILD/bioring-compare-$$.dat
CACHED_FILE=$BUILD/bioring-compare-cached-$$.dat
cleanup() { rm -rf "$WORK"; rm -f "$SHM_FILE" "$DISK_FILE" "$CACHED_FILE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

size_bytes=$(python3 -c "
import sys; s=sys.argv[1].lower(); m={'k':1<<10,'m':1<<20,'g':1<<30,'t':1<<40}
print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))" "$SIZE")
make_file() { # path: pseudo-random data, written once, synced so O_DIRECT reads see it on disk
    head -c "$size_bytes" /dev/urandom >"$1"
    sync "$1"
}
declare -A FILE_OF=([shm]=$SHM_FILE [disk]=$DISK_FILE [cached]=$CACHED_FILE)
for tgt in $TARGETS; do
    [[ -n ${FILE_OF[$tgt]:-} ]] || { echo "compare.sh: unknown target '$tgt' (shm disk cached)" >&2; exit 2; }
    echo "compare.sh: creating $SIZE test file ${FILE_OF[$tgt]}"
    make_file "${FILE_OF[$tgt]}"
done

# warm_cache FILE: read FILE through the page cache right before a "cached" run (this VM's
# memory manager evicts idle pages); prints the share of its pages resident afterwards.
# Twice: a page read once sits on the inactive LRU list, and the run's first access to it
# would move it to the active list (folio_mark_accessed: a batch move under the LRU lock,
# about 100 ns per read while it lasts) — a cost charged to whichever tool runs first.
# Read twice, every page is active before every run, for every tool.
warm_cache() {
    dd if="$1" of=/dev/null bs=1M status=none
    dd if="$1" of=/dev/null bs=1M status=none
    if command -v fincore >/dev/null; then
        fincore --bytes --noheadings --output RES,SIZE "$1" |
            awk '{ printf "%.4f", ($2 > 0 ? $1 / $2 : 0) }'
    else
        echo null
    fi
}

# run_one TOOL TARGET RW QD REP: one wrapped run; appends one line to runs.jsonl.
run_one() {
    local tool=$1 tgt=$2 rw=$3 qd=$4 rep=$5 file="" cmd=() direct=1 resident=null
    [[ $tgt != - ]] && file=${FILE_OF[$tgt]}
    [[ $tgt == cached ]] && direct=0
    local common=(--rw "$rw" --bs "$BS" --qd "$qd" --seconds "$RUNSEC" --latency "${LAT[@]}" --json)
    ((direct)) || common+=(--no-direct)
    case $tool in
    bioring-per-io | bioring-loop)
             cmd=("$BIN/bioring-bench" --mode "$([[ $tool == bioring-per-io ]] && echo per-io || echo loop)"
                  "${common[@]}")
             [[ $rw != nop ]] && cmd+=(--file "$file" --fixed-files) ;;
    base-per-io | base-loop)
             cmd=("$BASE_BIN/bioring-bench" --mode "$([[ $tool == base-per-io ]] && echo per-io || echo loop)"
                  "${common[@]}")
             [[ $rw != nop ]] && cmd+=(--file "$file" --fixed-files) ;;
    uring)   cmd=("$BIN/uring-loop" "${common[@]}")
             [[ $rw != nop ]] && cmd+=(--file "$file") ;;
    uring-plain) # the plain loop on a ring set up as Asio sets up its own (no
             # SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN): what the ring flags alone cost
             cmd=("$BIN/uring-loop" --plain-ring "${common[@]}")
             [[ $rw != nop ]] && cmd+=(--file "$file") ;;
    asio)    cmd=("$BIN/asio-file-loop" "${common[@]}" --file "$file") ;;
    fio)     # --invalidate=0: fio would otherwise drop the file's page cache before the job
             cmd=(fio --name=cmp --filename="$file" --ioengine=io_uring --direct="$direct"
                  --invalidate=0 --registerfiles --fixedbufs --hipri=0 --rw="$rw" --bs="$BS"
                  --iodepth="$qd" --size="$size_bytes" --time_based --runtime="$RUNSEC"
                  --norandommap --randrepeat=0 "${FIO_LAT[@]}" --output-format=json) ;;
    esac
    [[ $tgt == cached ]] && resident=$(warm_cache "$file")
    local status=0
    "$RUSAGE" "$WORK/rusage.json" "${cmd[@]}" >"$WORK/out.json" 2>"$WORK/err.txt" || status=$?
    if ((status != 0)); then
        echo "compare.sh: $tool $tgt $rw qd=$qd failed (status $status):" >&2
        sed 's/^/    /' "$WORK/err.txt" >&2
        FAILED=$((FAILED + 1))
        return 0
    fi
    python3 "$HERE/compare_summary.py" record "$tool" "$tgt" "$rw" "$qd" "$rep" \
        "$WORK/out.json" "$WORK/rusage.json" "${cmd[*]}" "$resident" >>"$OUT/runs.jsonl"
}

FAILED=0
points=()
for tgt in $TARGETS; do
    qds=$QDS
    [[ $tgt == cached ]] && qds=$CACHED_QDS
    for qd in $qds; do points+=("$tgt randread $qd"); done
done
for qd in $NOP_QDS; do points+=("- nop $qd"); done
total=0
for p in "${points[@]}"; do
    read -r tgt rw qd <<<"$p"
    for t in $TOOLS; do
        [[ -n ${HAVE[$t]:-} ]] || continue
        [[ $rw == nop && ($t == fio || $t == asio || $t == uring-plain) ]] && continue
        total=$((total + 1))
    done
done
echo "compare.sh: $REPS repetitions x $((total)) runs of ${RUNSEC}s, interleaved; results in $OUT"

n=0
for ((rep = 1; rep <= REPS; rep++)); do
    for p in "${points[@]}"; do
        read -r tgt rw qd <<<"$p"
        for t in $TOOLS; do
            [[ -n ${HAVE[$t]:-} ]] || continue
            [[ $rw == nop && ($t == fio || $t == asio || $t == uring-plain) ]] && continue
            n=$((n + 1))
            [[ -t 1 ]] && printf "\r  run %d/%d: rep %d %-7s %-4s %-8s qd=%-4s" "$n" $((total * REPS)) "$rep" "$t" "$tgt" "$rw" "$qd"
            run_one "$t" "$tgt" "$rw" "$qd" "$rep"
        done
    done
done
printf '\n'

{
    echo "# bench/compare.sh $BUILD  (REPS=$REPS SECONDS=$RUNSEC BS=$BS SIZE=$SIZE QDS='$QDS' CACHED_QDS='$CACHED_QDS' NOP_QDS='$NOP_QDS' TARGETS='$TARGETS' LATENCY='$LATENCY')"
    [[ -n $BASE_BIN ]] && echo "# base per-io, base loop: $BASE_BIN/bioring-bench"
    echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); started $STAMP, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "# latency: bioring-bench, uring-loop, asio-file-loop --latency $LATENCY; fio $([[ ${LAT[0]} == all ]] && echo "times every I/O (its default)" || echo "--gtod_reduce=1 (no per-I/O timestamps, no percentiles)")"
    [[ " $TARGETS " == *" disk "* || " $TARGETS " == *" cached "* ]] &&
        echo "# disk/cached files in $BUILD: $(findmnt -n -o FSTYPE -T "$BUILD" 2>/dev/null || stat -f -c %T "$BUILD"); cached = buffered reads (--no-direct, fio --direct=0 --invalidate=0) of a file read through twice right before each run"
} >"$OUT/header.txt"
python3 "$HERE/compare_summary.py" summarize "$OUT"
ln -sfn "$STAMP" "$RESULTS/latest"
if ((FAILED > 0)); then
    echo "compare.sh: $FAILED run(s) failed (see above)" >&2
    exit 1
fi
