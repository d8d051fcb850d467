#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare.sh BUILD_DIR: bioring-bench side by side with fio's io_uring engine, the plain
# liburing loop (uring-loop) and Asio's io_uring random_access_file (asio-file-loop).
#
# One run, interleaved: for each repetition, every point (target x QD) runs every tool in
# turn (A B C D A B C D ...), so that a disturbance on this shared machine lands on all
# methods alike; the table shows medians. Every run of every tool is wrapped in
# bench-rusage, which reports wait4()'s user+sys time of the whole process tree: all its
# threads (io_uring io-wq workers included) and fio's job processes. That one figure is
# the CPU per I/O of every method (it includes each tool's start-up and teardown, which a
# run of a few seconds dilutes; the in-run figures the tools print about themselves are
# kept in runs.jsonl as self_cpu_ns_per_io).
#
# Workloads: 4 KiB O_DIRECT random reads at QD 1, 8, 32, 128 on a file in /dev/shm (tmpfs)
# and on a file under BUILD_DIR (the ext4 work disk); NOPs at QD 1, 32, 128 for bioring-bench
# and uring-loop only (fio has no io_uring NOP engine: its null engine never enters
# io_uring; Asio has no NOP operation).
#
# Environment: REPS (5), SECONDS or RUN_SECONDS (2; per run), QDS ("1 8 32 128"),
# NOP_QDS ("1 32 128"), BS (4k), SIZE (1G per file), TARGETS ("shm disk"),
# TOOLS ("bioring fio uring asio"; also "uring-plain": uring-loop --plain-ring, the plain
# loop on a ring with Asio's setup flags, which shows what the flags alone cost),
# RESULTS (ROOT/results).
# Output: RESULTS/<UTC timestamp>/{runs.jsonl,results.json,table.txt,kiops_per_core.png}
# and RESULTS/latest -> that folder.
_seconds_from_env=$SECONDS  # bash owns $SECONDS (it counts up); read it before any work
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/compare.sh BUILD_DIR   (env: REPS SECONDS QDS NOP_QDS BS SIZE TARGETS TOOLS)" >&2
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
NOP_QDS=${NOP_QDS:-1 32 128}
BS=${BS:-4k}
SIZE=${SIZE:-1G}
TARGETS=${TARGETS:-shm disk}
TOOLS=${TOOLS:-bioring fio uring asio}
RESULTS=${RESULTS:-$ROOT/results}

BIN=$BUILD/bench
RUSAGE=$BIN/bench-rusage
for need in "$RUSAGE" "$BIN/uring-loop"; do
    [[ -x $need ]] || { echo "compare.sh: $need is missing: build the bench targets first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed for the summary" >&2; exit 1; }

# Which tools can run here; a missing one is skipped with a line saying so.
declare -A HAVE=()
for t in $TOOLS; do
    case $t in
    bioring) [[ -x $BIN/bioring-bench ]] && HAVE[$t]=1 || echo "compare.sh: skipping bioring-bench: $BIN/bioring-bench not built" ;;
    uring | uring-plain) HAVE[$t]=1 ;;
    asio) [[ -x $BIN/asio-file-loop ]] && HAVE[$t]=1 || echo "compare.sh: skipping asio-file-loop: not built" ;;
    fio) command -v fio >/dev/null && HAVE[$t]=1 || echo "compare.sh: skipping fio: not installed" ;;
    *) echo "compare.sh: unknown tool '$t' in TOOLS (bioring fio uring uring-plain asio)" >&2; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/$STAMP
mkdir -p "$OUT"
WORK=$(mktemp -d)
SHM_FILE=/dev/shm/bioring-compare-$$.dat
DISK_FILE=$BUILD/bioring-compare-$$.dat
cleanup() { rm -rf "$WORK"; rm -f "$SHM_FILE" "$DISK_FILE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

size_bytes=$(python3 -c "
import sys; s=sys.argv[1].lower(); m={'k':1<<10,'m':1<<20,'g':1<<30,'t':1<<40}
print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))" "$SIZE")
make_file() { # path: pseudo-random data, written once, synced so O_DIRECT reads see it on disk
    head -c "$size_bytes" /dev/urandom >"$1"
    sync "$1"
}
declare -A FILE_OF=([shm]=$SHM_FILE [disk]=$DISK_FILE)
for tgt in $TARGETS; do
    [[ -n ${FILE_OF[$tgt]:-} ]] || { echo "compare.sh: unknown target '$tgt' (shm disk)" >&2; exit 2; }
    echo "compare.sh: creating $SIZE test file ${FILE_OF[$tgt]}"
    make_file "${FILE_OF[$tgt]}"
done

# run_one TOOL TARGET RW QD REP: one wrapped run; appends one line to runs.jsonl.
run_one() {
    local tool=$1 tgt=$2 rw=$3 qd=$4 rep=$5 file="" cmd=()
    [[ $tgt != - ]] && file=${FILE_OF[$tgt]}
    case $tool in
    bioring) cmd=("$BIN/bioring-bench" --rw "$rw" --bs "$BS" --qd "$qd" --seconds "$RUNSEC" --json)
             [[ $rw != nop ]] && cmd+=(--file "$file" --fixed-files) ;;
    uring)   cmd=("$BIN/uring-loop" --rw "$rw" --bs "$BS" --qd "$qd" --seconds "$RUNSEC" --json)
             [[ $rw != nop ]] && cmd+=(--file "$file") ;;
    uring-plain) # the plain loop on a ring set up as Asio sets up its own (no
             # SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN): what the ring flags alone cost
             cmd=("$BIN/uring-loop" --plain-ring --rw "$rw" --bs "$BS" --qd "$qd"
                  --seconds "$RUNSEC" --json)
             [[ $rw != nop ]] && cmd+=(--file "$file") ;;
    asio)    cmd=("$BIN/asio-file-loop" --rw "$rw" --bs "$BS" --qd "$qd" --seconds "$RUNSEC"
                  --file "$file" --json) ;;
    fio)     cmd=(fio --name=cmp --filename="$file" --ioengine=io_uring --direct=1 --registerfiles
                  --fixedbufs --hipri=0 --rw="$rw" --bs="$BS" --iodepth="$qd" --size="$size_bytes"
                  --time_based --runtime="$RUNSEC" --norandommap --randrepeat=0
                  --output-format=json) ;;
    esac
    local status=0
    "$RUSAGE" "$WORK/rusage.json" "${cmd[@]}" >"$WORK/out.json" 2>"$WORK/err.txt" || status=$?
    if ((status != 0)); then
        echo "compare.sh: $tool $tgt $rw qd=$qd failed (status $status):" >&2
        sed 's/^/    /' "$WORK/err.txt" >&2
        FAILED=$((FAILED + 1))
        return 0
    fi
    python3 "$HERE/compare_summary.py" record "$tool" "$tgt" "$rw" "$qd" "$rep" \
        "$WORK/out.json" "$WORK/rusage.json" "${cmd[*]}" >>"$OUT/runs.jsonl"
}

FAILED=0
points=()
for tgt in $TARGETS; do
    for qd in $QDS; do points+=("$tgt randread $qd"); done
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
    echo "# bench/compare.sh $BUILD  (REPS=$REPS SECONDS=$RUNSEC BS=$BS SIZE=$SIZE QDS='$QDS' NOP_QDS='$NOP_QDS')"
    echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
} >"$OUT/header.txt"
python3 "$HERE/compare_summary.py" summarize "$OUT"
ln -sfn "$STAMP" "$RESULTS/latest"
if ((FAILED > 0)); then
    echo "compare.sh: $FAILED run(s) failed (see above)" >&2
    exit 1
fi
