#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scaling.sh BUILD_DIR: how bioring-bench's per-core figure holds up as threads are added,
# against the plain liburing loop run as the same number of pinned processes (issue 5,
# "Scaling").
#
# For each N in THREADS: `bioring-bench --threads N --pin` in each of its modes (N reactors
# in one process, reactor i pinned to CPU i; method bioring-per-io: --mode per-io, one
# request coroutine and one BioSet allocation per I/O, the headline; bioring-loop: --mode
# loop, one coroutine per queue slot) and N separate `uring-loop --threads 1` processes, process i
# pinned with taskset to the i-th CPU this script may use, started together, their IOPS
# summed. uring-loop has no offset/range option, so each process reads its own file of SIZE
# bytes; bioring-bench reads one file of SIZE x max(THREADS) bytes, which it splits into N
# ranges (so its ranges are >= SIZE: every range is far beyond the CPU caches either way).
# Both read 4 KiB O_DIRECT blocks at random at QD per thread, with registered files and
# buffers. NOP runs the same shape with no file.
#
# Interleaved like compare.sh: each repetition runs every point with both methods in turn,
# so a disturbance lands on both; the table shows medians. Every process runs under
# bench-rusage (wait4's user+sys of the whole process: all its threads, io-wq included); for
# the N uring-loop processes their CPU times are summed. kIOPS/core = I/Os per CPU-second
# / 1000; scaling efficiency = IOPS at N / (N x IOPS at 1 thread), same method.
#
# The files live in FILE_DIR (default /dev/shm), a tmpfs: they need SIZE x 2 x max(THREADS)
# bytes there (the default SIZE halves until they fit). Before any file is made, the script
# checks that the binaries start and that io_uring works. No python: the arithmetic and the
# summary are POSIX awk. It runs unchanged from a bundle made by bench/bundle.sh (binaries in
# BUILD_DIR/bench/; the bundle carries taskset and awk for a bare host).
#
# Every run times its I/Os as LATENCY says (--latency; default "sample 64": one I/O in 64).
#
# Environment: THREADS (1 2 4 ... up to nproc, and nproc), REPS (5), RUN_SECONDS (2),
# QD (128), BS (4k), SIZE (1G per thread, a multiple of 1M), WORKLOADS ("randread nop"),
# METHODS ("bioring-per-io bioring-loop uring"), LATENCY ("sample 64"; "all", "off"),
# FILE_DIR (/dev/shm), BIORING_ARGS / URING_ARGS (extra options for each run), BENCH_LAUNCH
# (a command prefix for the bench binaries, e.g. a dynamic loader),
# RESULTS (the output folder; default ROOT/results/scaling-<UTC timestamp>, with
# ROOT/results/scaling-latest pointing at it).
# Output: the table on stdout; RESULTS/{runs.jsonl,points.jsonl,table.txt}.
set -euo pipefail

usage() {
    echo "usage: bench/scaling.sh BUILD_DIR   (env: THREADS REPS RUN_SECONDS QD BS SIZE WORKLOADS METHODS LATENCY FILE_DIR BIORING_ARGS URING_ARGS BENCH_LAUNCH RESULTS)" >&2
    exit 2
}
[[ $# -eq 1 && -d $1 ]] || usage
BUILD=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(dirname "$HERE")
CORES=$(nproc)

default_threads() {
    local n=1 out=""
    while ((n <= CORES)); do
        out+="$n "
        n=$((n * 2))
    done
    (((CORES & (CORES - 1)) != 0)) && out+="$CORES"
    echo "$out"
}
THREADS=${THREADS:-$(default_threads)}
REPS=${REPS:-5}
RUNSEC=${RUN_SECONDS:-2}
QD=${QD:-128}
BS=${BS:-4k}
SIZE_SET=${SIZE:-}
SIZE=${SIZE:-1G}
WORKLOADS=${WORKLOADS:-randread nop}
METHODS=${METHODS:-bioring-per-io bioring-loop uring}
LATENCY=${LATENCY:-sample 64}
FILE_DIR=${FILE_DIR:-/dev/shm}
read -r -a BIORING_X <<<"${BIORING_ARGS:-}"
read -r -a URING_X <<<"${URING_ARGS:-}"
# BENCH_LAUNCH: a prefix for every bench binary; bundle.sh's run-scaling sets it to the
# bundle's own dynamic loader and glibc where the host's glibc cannot run the binaries.
read -r -a LAUNCH <<<"${BENCH_LAUNCH:-}"

bad() { echo "scaling.sh: $*" >&2; exit 2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }
is_uint "$REPS" || bad "REPS must be a positive integer, not '$REPS'"
is_uint "$QD" || bad "QD must be a positive integer, not '$QD'"
[[ $RUNSEC =~ ^[0-9]+(\.[0-9]+)?$ && $RUNSEC != 0 ]] || bad "RUN_SECONDS must be a positive number, not '$RUNSEC'"
MAXN=0
for n in $THREADS; do
    is_uint "$n" || bad "THREADS must list positive integers, not '$n'"
    ((n > MAXN)) && MAXN=$n
done
((MAXN > 0)) || bad "THREADS is empty"
for w in $WORKLOADS; do
    [[ $w == randread || $w == nop ]] || bad "WORKLOADS: '$w' is not randread or nop"
done
for m in $METHODS; do
    [[ $m == bioring-per-io || $m == bioring-loop || $m == uring ]] ||
        bad "METHODS: '$m' is not bioring-per-io, bioring-loop or uring"
done
[[ -n ${METHODS// /} ]] || bad "METHODS is empty"
read -r -a LAT <<<"$LATENCY"
[[ ${LAT[*]} == all || ${LAT[*]} == off || (${#LAT[@]} -eq 2 && ${LAT[0]} == sample && ${LAT[1]} =~ ^[1-9][0-9]*$) ]] ||
    bad "LATENCY='$LATENCY': expected all, off or 'sample N'"
# SIZE in bytes: a whole number of MiB, so that dd fills it in 1 MiB blocks.
[[ ${SIZE,,} =~ ^([0-9]+)([kmgt]?)$ ]] || bad "SIZE must look like 512M or 1G, not '$SIZE'"
case ${BASH_REMATCH[2]} in
k) size_bytes=$((BASH_REMATCH[1] << 10)) ;;
m) size_bytes=$((BASH_REMATCH[1] << 20)) ;;
g) size_bytes=$((BASH_REMATCH[1] << 30)) ;;
t) size_bytes=$((BASH_REMATCH[1] << 40)) ;;
*) size_bytes=${BASH_REMATCH[1]} ;;
esac
((size_bytes >= 1 << 20 && size_bytes % (1 << 20) == 0)) || bad "SIZE must be a whole number of MiB (>= 1M), not '$SIZE'"
size_mib=$((size_bytes >> 20))

BIN=$BUILD/bench
RUSAGE=$BIN/bench-rusage
for need in "$RUSAGE" "$BIN/bioring-bench" "$BIN/uring-loop"; do
    [[ -x $need ]] || { echo "scaling.sh: $need is missing: build bioring-bench, uring-loop and bench-rusage first" >&2; exit 1; }
done
# A binary that cannot start here (a missing library, too old a glibc) says so now, not
# after the files are made.
for b in bioring-bench uring-loop; do
    if ! err=$("${LAUNCH[@]}" "$BIN/$b" --help 2>&1 >/dev/null); then
        echo "scaling.sh: $BIN/$b does not run here: $err" >&2
        exit 1
    fi
done
err=$("${LAUNCH[@]}" "$RUSAGE" 2>&1) || true
[[ $err == *"usage: bench-rusage"* ]] || { echo "scaling.sh: $RUSAGE does not run here: $err" >&2; exit 1; }
# io_uring must work here (a kernel with io_uring_disabled, or a seccomp profile, would
# fail every uring-loop run and send bioring-bench to its Asio backend): say so in a second.
if ! err=$("${LAUNCH[@]}" "$BIN/uring-loop" --rw nop --qd 1 --ios 1000 --seconds 0 --json 2>&1); then
    echo "scaling.sh: io_uring does not work here: $err" >&2
    exit 1
fi
err=$("${LAUNCH[@]}" "$BIN/bioring-bench" --rw nop --qd 1 --ios 1000 --seconds 0 --json 2>&1) || true
[[ $err == *'"backend":"io_uring'* ]] ||
    { echo "scaling.sh: bioring-bench does not run on io_uring here: ${err:0:500}" >&2; exit 1; }
for tool in taskset awk dd; do
    command -v $tool >/dev/null || { echo "scaling.sh: $tool is needed (a bundle from bench/bundle.sh carries taskset and awk)" >&2; exit 1; }
done

# The CPUs this script may use, in order: uring-loop process i goes to the i-th of them.
# bioring-bench pins reactor i to CPU i (system numbering), the same CPUs when the set is
# 0..n-1; otherwise the two methods do not sit on the same CPUs, and the header says so.
expand_cpus() {
    local part out=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            for ((c = ${part%-*}; c <= ${part#*-}; c++)); do out+=("$c"); done
        else
            out+=("$part")
        fi
    done
    echo "${out[@]}"
}
read -r -a CPUS <<<"$(expand_cpus "$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)")"
((${#CPUS[@]} > 0)) || read -r -a CPUS <<<"$(seq 0 $((CORES - 1)))"
NOTES=()
((MAXN > ${#CPUS[@]})) && NOTES+=("THREADS goes up to $MAXN but only ${#CPUS[@]} CPUs are usable: threads share CPUs")
for ((i = 0; i < MAXN && i < ${#CPUS[@]}; i++)); do
    if ((CPUS[i] != i)); then
        NOTES+=("usable CPUs are ${CPUS[*]}: bioring-bench pins reactor i to CPU i, uring-loop process i to the i-th usable CPU")
        break
    fi
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
DEFAULT_RESULTS=$ROOT/results/scaling-$STAMP
OUT=${RESULTS:-$DEFAULT_RESULTS}
made_out=0
# shellcheck disable=SC2034 # made_out is read by the EXIT trap
[[ -d $OUT ]] || made_out=1
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
WORK=$(mktemp -d)
FILES=$(mktemp -d "$FILE_DIR/bioring-scaling.XXXXXX") ||
    { echo "scaling.sh: cannot create a folder in FILE_DIR=$FILE_DIR" >&2; rm -rf "$WORK"; exit 1; }
# A run that stops before its first result leaves no empty results folder behind.
trap 'rm -rf "$WORK" "$FILES"; if ((made_out)); then rmdir "$OUT" 2>/dev/null || true; fi' EXIT
trap 'exit 130' INT TERM

# --- the files: one of SIZE x MAXN for bioring-bench, one of SIZE per uring-loop process.
need_files=0
for w in $WORKLOADS; do [[ $w == randread ]] && need_files=1; done
BIG=$FILES/bioring.dat
slot_file() { echo "$FILES/uring-$1.dat"; }
if ((need_files)); then
    avail=$(($(stat -f -c '%a * %S' "$FILES")))
    fstype=$(stat -f -c %T "$FILES")
    # The default SIZE halves (down to 64M) until the files fit; a SIZE that was asked for
    # does not.
    while ((avail < 2 * MAXN * size_bytes + (64 << 20))); do
        if [[ -n $SIZE_SET ]] || ((size_bytes <= 64 << 20)); then
            echo "scaling.sh: $FILE_DIR has $((avail >> 20)) MiB free; the files need $((2 * MAXN * size_bytes >> 20)) MiB (2 x $MAXN x SIZE=$SIZE): set a smaller SIZE or another FILE_DIR" >&2
            exit 1
        fi
        size_bytes=$((size_bytes / 2))
        size_mib=$((size_bytes >> 20))
        SIZE=${size_mib}M
    done
    [[ -n $SIZE_SET || $SIZE == 1G ]] ||
        NOTES+=("SIZE cut from 1G to $SIZE per thread to fit the $((avail >> 20)) MiB free in $FILE_DIR")
    need=$((2 * MAXN * size_bytes))
    [[ $fstype == tmpfs ]] || NOTES+=("FILE_DIR=$FILE_DIR is $fstype, not tmpfs: reads may reach a device")
    echo "scaling.sh: filling $((need >> 20)) MiB of random data in $FILES" >&2
    # MAXN jobs write the big file's MAXN slices and the MAXN slot files in parallel
    # (/dev/urandom gives each one about 300 MB/s); at most CORES jobs at a time.
    jobs_run=0
    fill() { dd if=/dev/urandom of="$1" bs=1M count="$size_mib" seek="$2" conv=notrunc status=none; }
    for ((i = 0; i < MAXN; i++)); do
        for spec in "$BIG $((i * size_mib))" "$(slot_file "$i") 0"; do
            read -r path seek <<<"$spec"
            fill "$path" "$seek" &
            jobs_run=$((jobs_run + 1))
            if ((jobs_run >= CORES)); then
                wait -n
                jobs_run=$((jobs_run - 1))
            fi
        done
    done
    wait
    for ((i = 0; i < MAXN; i++)); do
        [[ $(stat -c %s "$(slot_file "$i")") -eq $size_bytes ]] ||
            { echo "scaling.sh: filling $(slot_file "$i") failed" >&2; exit 1; }
    done
    [[ $(stat -c %s "$BIG") -eq $((MAXN * size_bytes)) ]] || { echo "scaling.sh: filling $BIG failed" >&2; exit 1; }
fi

jnum() { # FILE KEY: the number after the first "KEY": in FILE (the tools print one line)
    local line
    line=$(<"$1")
    line=${line#*\""$2"\":}
    [[ $line =~ ^(-?[0-9][0-9.eE+-]*) ]] && echo "${BASH_REMATCH[1]}"
}
jstr() { # FILE KEY: the string after the first "KEY":"
    local line
    line=$(<"$1")
    [[ $line == *\""$2"\":\"* ]] || return 0
    line=${line#*\""$2"\":\"}
    echo "${line%%\"*}"
}
cpu_of() { # RUSAGE.json: user+sys seconds
    awk -v u="$(jnum "$1" user_s)" -v s="$(jnum "$1" sys_s)" 'BEGIN { printf "%.6f", u + s }'
}
fail_run() { # WHAT ERRFILE
    echo "scaling.sh: $1 failed:" >&2
    sed 's/^/    /' "$2" >&2
    FAILED=$((FAILED + 1))
}
BACKEND=""
# record METHOD RW N REP IOS SECONDS IOPS CPU_S PROCS_JSON: one line of runs.jsonl
record() {
    local method=$1 rw=$2 n=$3 rep=$4 ios=$5 secs=$6 iops=$7 cpu=$8 procs=$9
    printf '{"method":"%s","rw":"%s","threads":%d,"rep":%d,"qd":%d,"ios":%s,"seconds":%s,"iops":%s,"cpu_s":%s,"procs":%s}\n' \
        "$method" "$rw" "$n" "$rep" "$QD" "$ios" "$secs" "$iops" "$cpu" "$procs" >>"$OUT/runs.jsonl"
}

# bioring-bench: one process, N pinned reactors, in mode per-io or loop.
run_bioring() {
    local mode=$1 rw=$2 n=$3 rep=$4
    local cmd=("${LAUNCH[@]}" "$BIN/bioring-bench" --mode "$mode" --rw "$rw" --bs "$BS" --qd "$QD"
               --threads "$n" --pin --seconds "$RUNSEC" --latency "${LAT[@]}" --json)
    [[ $rw != nop ]] && cmd+=(--file "$BIG" --fixed-files)
    cmd+=("${BIORING_X[@]}")
    if ! "${LAUNCH[@]}" "$RUSAGE" "$WORK/ru.json" "${cmd[@]}" >"$WORK/out.json" 2>"$WORK/err.txt"; then
        fail_run "bioring-bench --mode $mode $rw threads=$n" "$WORK/err.txt"
        return 0
    fi
    [[ -n $BACKEND ]] || BACKEND=$(jstr "$WORK/out.json" backend)
    local ios secs iops cpu
    ios=$(jnum "$WORK/out.json" ios)
    secs=$(jnum "$WORK/out.json" seconds)
    iops=$(jnum "$WORK/out.json" iops)
    cpu=$(cpu_of "$WORK/ru.json")
    record "bioring-$mode" "$rw" "$n" "$rep" "$ios" "$secs" "$iops" "$cpu" \
        "[{\"cpu\":\"$( ((n == 1)) && echo 0 || echo "0-$((n - 1))")\",\"ios\":$ios,\"iops\":$iops,\"cpu_s\":$cpu}]"
}

# uring-loop: N processes of one thread, process i pinned to CPUS[i], started together.
run_uring() {
    local rw=$1 n=$2 rep=$3 i cpu
    local pids=()
    for ((i = 0; i < n; i++)); do
        cpu=${CPUS[i % ${#CPUS[@]}]}
        local cmd=(taskset -c "$cpu" "${LAUNCH[@]}" "$BIN/uring-loop" --rw "$rw" --bs "$BS" --qd "$QD"
                   --threads 1 --no-pin --seconds "$RUNSEC" --latency "${LAT[@]}" --json)
        [[ $rw != nop ]] && cmd+=(--file "$(slot_file "$i")")
        cmd+=("${URING_X[@]}")
        "${LAUNCH[@]}" "$RUSAGE" "$WORK/ru.$i.json" "${cmd[@]}" >"$WORK/out.$i.json" 2>"$WORK/err.$i.txt" &
        pids+=($!)
    done
    local bad=0
    for ((i = 0; i < n; i++)); do
        if ! wait "${pids[i]}"; then
            fail_run "uring-loop process $i of $n ($rw)" "$WORK/err.$i.txt"
            bad=1
        fi
    done
    ((bad == 0)) || return 0
    local ios=0 secs=0 iops=0 cpu_s=0 procs="" pi ps pio pc
    for ((i = 0; i < n; i++)); do
        pi=$(jnum "$WORK/out.$i.json" ios)
        ps=$(jnum "$WORK/out.$i.json" seconds)
        pio=$(jnum "$WORK/out.$i.json" iops)
        pc=$(cpu_of "$WORK/ru.$i.json")
        procs+="${procs:+,}{\"cpu\":\"${CPUS[i % ${#CPUS[@]}]}\",\"ios\":$pi,\"seconds\":$ps,\"iops\":$pio,\"cpu_s\":$pc}"
        read -r ios secs iops cpu_s <<<"$(echo "$ios $secs $iops $cpu_s $pi $ps $pio $pc" |
            awk '{ printf "%d %.6f %.1f %.6f", $1 + $5, ($6 > $2 ? $6 : $2), $3 + $7, $4 + $8 }')"
    done
    record uring "$rw" "$n" "$rep" "$ios" "$secs" "$iops" "$cpu_s" "[$procs]"
}

FAILED=0
: >"$OUT/runs.jsonl"
nthreads=$(wc -w <<<"$THREADS")
nwork=$(wc -w <<<"$WORKLOADS")
nmeth=$(wc -w <<<"$METHODS")
total=$((REPS * nthreads * nwork * nmeth))
echo "scaling.sh: $REPS repetitions x $((nthreads * nwork * nmeth)) runs of ${RUNSEC}s, interleaved (about $(awk -v t="$total" -v s="$RUNSEC" 'BEGIN { printf "%.0f", t * (s + 0.2) }') s); results in $OUT" >&2
k=0
for ((rep = 1; rep <= REPS; rep++)); do
    for rw in $WORKLOADS; do
        for n in $THREADS; do
            for method in $METHODS; do
                k=$((k + 1))
                if [[ -t 2 ]]; then
                    printf '\r  run %d/%d: rep %d %-8s threads=%-3s %-14s' "$k" "$total" "$rep" "$rw" "$n" "$method" >&2
                fi
                case $method in
                bioring-per-io) run_bioring per-io "$rw" "$n" "$rep" ;;
                bioring-loop) run_bioring loop "$rw" "$n" "$rep" ;;
                uring) run_uring "$rw" "$n" "$rep" ;;
                esac
            done
        done
    done
    [[ -t 2 ]] || echo "scaling.sh: repetition $rep/$REPS done" >&2
done
[[ -t 2 ]] && printf '\n' >&2

{
    echo "# bench/scaling.sh  THREADS='$THREADS' REPS=$REPS RUN_SECONDS=$RUNSEC QD=$QD BS=$BS SIZE=$SIZE/thread WORKLOADS='$WORKLOADS' METHODS='$METHODS' LATENCY='$LATENCY' FILE_DIR=$FILE_DIR"
    echo "# $(uname -sr), $CORES CPUs (usable: ${CPUS[*]}), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# bioring-bench backend: ${BACKEND:-?}; binaries started by: ${BENCH_LAUNCH:-the system loader}"
    for note in "${NOTES[@]}"; do echo "# note: $note"; done
    echo "# medians; bioring-per-io / bioring-loop = bioring-bench --mode per-io / loop --threads N --pin (one process); uring = N pinned uring-loop processes, IOPS summed; all with --latency $LATENCY"
    echo "# CPU = user+sys of every process (all threads, io-wq included) per I/O; kIOPS/core = I/Os per CPU-second / 1000"
    echo "# eff = IOPS at N / (N x IOPS at 1), same method; x uring/core = the method's kIOPS/core / uring kIOPS/core"
} >"$OUT/header.txt"

# The summary, in POSIX awk (mawk, gawk and busybox run it): medians per (rw, N, method).
SUMMARY=$(cat <<'AWK'
function num(key,   i, s) {
    i = index($0, "\"" key "\":")
    if (i == 0) return ""
    s = substr($0, i + length(key) + 3)
    match(s, /^-?[0-9][0-9.eE+-]*/)
    return substr(s, 1, RLENGTH) + 0
}
function str(key,   i, s) {
    i = index($0, "\"" key "\":\"")
    s = substr($0, i + length(key) + 4)
    return substr(s, 1, index(s, "\"") - 1)
}
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) {
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    ios = num("ios"); cpu = num("cpu_s")
    if (ios <= 0) next
    k = str("rw") SUBSEP num("threads") SUBSEP str("method")
    iops[k] = iops[k] " " num("iops")
    ns[k] = ns[k] " " (cpu * 1e9 / ios)
    if (cpu > 0) kpc[k] = kpc[k] " " (ios / cpu / 1e3)
    runs[k]++
    nt[num("threads")] = 1
}
END {
    printf "%-9s %4s  %-14s %12s %10s %11s %6s %13s %3s\n", "rw", "N", "method", "IOPS", "CPU ns/IO", "kIOPS/core", "eff", "x uring/core", "n"
    nw = split(order, ws, " ")
    # threads in ascending order
    m = 0
    for (t in nt) ts[++m] = t + 0
    for (i = 2; i <= m; i++) { v = ts[i]; for (j = i - 1; j >= 1 && ts[j] > v; j--) ts[j + 1] = ts[j]; ts[j + 1] = v }
    nm = split(methods, ms, " ")
    for (w = 1; w <= nw; w++) {
        rw = ws[w]
        for (i = 1; i <= m; i++) {
            t = ts[i]
            for (q = 1; q <= nm; q++) {
                k = rw SUBSEP t SUBSEP ms[q]
                if (!(k in runs)) continue
                mi = median(iops[k]); mn = median(ns[k]); mk = median(kpc[k])
                k1 = rw SUBSEP 1 SUBSEP ms[q]
                eff = (k1 in runs) ? sprintf("%.2f", mi / (t * median(iops[k1]))) : "-"
                ku = rw SUBSEP t SUBSEP "uring"
                ratio = (ms[q] != "uring" && (ku in runs) && mk != "" && median(kpc[ku]) > 0) ? sprintf("%.2f", mk / median(kpc[ku])) : ""
                printf "%-9s %4d  %-14s %12.0f %10.0f %11s %6s %13s %3d\n", rw, t, ms[q], mi, mn, (mk == "" ? "-" : sprintf("%.1f", mk)), eff, ratio, runs[k]
                printf "{\"rw\":\"%s\",\"threads\":%d,\"method\":\"%s\",\"runs\":%d,\"iops\":%.1f,\"cpu_ns_per_io\":%.2f,\"kiops_per_core\":%s,\"scaling_efficiency\":%s,\"per_core_vs_uring\":%s}\n", rw, t, ms[q], runs[k], mi, mn, (mk == "" ? "null" : sprintf("%.3f", mk)), (eff == "-" ? "null" : eff), (ratio == "" ? "null" : ratio) > points
                if (ratio != "") last[rw, ms[q]] = sprintf("%s at N=%d: %s per core = %sx uring-loop", rw, t, ms[q], ratio)
            }
        }
        if (i > 1) print ""
    }
    for (w = 1; w <= nw; w++)
        for (q = 1; q <= nm; q++)
            if ((ws[w], ms[q]) in last) print last[ws[w], ms[q]] (ws[w] == "randread" ? " (issue 5 target at 16 threads: >= 0.90x)" : "")
}
AWK
)
: >"$OUT/points.jsonl"
{
    cat "$OUT/header.txt"
    awk -v order="$WORKLOADS" -v methods="$METHODS" -v points="$OUT/points.jsonl" "$SUMMARY" "$OUT/runs.jsonl"
} >"$OUT/table.txt"
cat "$OUT/table.txt"
if [[ -z ${RESULTS:-} ]]; then
    ln -sfn "$(basename "$OUT")" "$ROOT/results/scaling-latest"
fi
if ((FAILED > 0)); then
    echo "scaling.sh: $FAILED run(s) failed (see above)" >&2
    exit 1
fi
