#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nbd_compare.sh [--quick] BUILD_DIR: bioring-nbd against the NBD servers people use —
# nbdkit (file plugin), qemu-nbd and nbd-server — serving the same file over a Unix socket
# (or loopback TCP), driven by real clients (issue 14, items 4 and 5).
#
# Each server runs in its default production configuration, as its package starts it:
#   bioring-nbd  --socket S --export bench FILE (reactors: one per core; O_DIRECT)
#   bioring-nbd-zc  the same with --zero-copy (READ replies by IORING_OP_SENDMSG_ZC; only
#                TCP sockets take zero-copy sends: over a Unix socket it measures the
#                fallback). Not in the default SERVERS.
#   bioring-nbd-wb  the same with --cache writeback (buffered I/O through the page cache, as
#                nbdkit's file plugin and qemu-nbd's default do). Not in the default SERVERS.
#   bioring-nbd-pb  the same with --provided-buffers (requests received into io_uring
#                provided buffers shared by a reactor's connections). Not in the default SERVERS.
#   bioring-nbd-base  bioring-nbd as built elsewhere (BIORING_NBD_BASE=PATH: an older build,
#                for A/B runs of a change, interleaved like the others). Not in the default SERVERS.
#   nbdkit       -f -U S file FILE (its default 16 threads; page cache)
#   qemu-nbd     -k S -f raw -x bench -t -e 8 FILE (cache=writeback, aio=threads: its
#                defaults; -t and -e 8 only so that it outlives a client and takes the
#                several connections fio's two jobs and nbdcopy open)
#   nbd-server   -C CONF (a forking daemon, one process per client; page cache; the config
#                names the Unix socket and the export, and a loopback TCP port it must have)
# Workloads, on a file of SIZE in /dev/shm (tmpfs: "shm") and under BUILD_DIR (ext4: "disk"):
#   fio's nbd engine (libnbd), BS (4 KiB) randread and randwrite at iodepth IODEPTH with 1 and 2
#     jobs (one connection each): IOPS, completion latency p50/p99, and the server's CPU per
#     request: user+sys of the server process and its children from /proc/PID/stat before
#     and after the run (clock ticks, 10 ms; children are counted once reaped), / requests;
#   nbdcopy of the whole export out of it (to null:, so that only the server's side of the
#     copy is measured) and into it (from a file in /dev/shm): wall time, MB/s, server CPU;
#   the crypt export (CRYPT=1): bioring-nbd --crypt aes-xts-plain64 (512-bit key) over a
#     plain dm-crypt file against nbdkit's luks filter over a LUKS1 container of the same
#     payload size made by `qemu-img create -f luks` (aes-256-xts-plain64), nbdcopy out and
#     in, on the "shm" target.
# Interleaved: every repetition runs every target, and within it every server in turn
# (each started fresh), every workload; the table shows medians and minimums. Each run
# records the 1-minute load average at its end (the machine may be shared): the table shows
# its median, the header the load at the start and the end.
# TRANSPORT=tcp serves on 127.0.0.1:PORT instead of the Unix socket (every server; nbdcopy
# and fio then connect over loopback TCP).
# --quick: a smoke test of the script, about a minute: REPS=1 RUN_SECONDS=1 SIZE=64M
# JOBS=1 (each still overridable by the environment).
#
# bioring-nbd is looked for at BIORING_NBD, else BUILD_DIR/apps/bioring-nbd or
# BUILD_DIR/apps/nbd/bioring-nbd; when it is not built the other servers still run and the
# table says that bioring-nbd was not measured. A server whose program is missing is skipped
# with a line saying so.
#
# Environment: REPS (3), RUN_SECONDS (5), SIZE (1G), TARGETS ("shm disk"), SERVERS
# ("bioring-nbd nbdkit qemu-nbd nbd-server"; also bioring-nbd-zc, bioring-nbd-wb,
# bioring-nbd-pb, bioring-nbd-base), RWS ("randread
# randwrite"), JOBS ("1 2"), IODEPTH (32), BS (4k), TRANSPORT (unix; tcp), COPY (1),
# CRYPT (1), BIORING_NBD, BIORING_NBD_BASE, RESULTS (ROOT/results/nbd-<UTC stamp>).
# Output: RESULTS/{runs.jsonl,header.txt,table.txt,results.json,nbd_iops_per_cpu.png}.
set -euo pipefail

usage() {
    echo "usage: bench/nbd_compare.sh [--quick] BUILD_DIR   (env: REPS RUN_SECONDS SIZE TARGETS SERVERS RWS JOBS IODEPTH BS TRANSPORT COPY CRYPT BIORING_NBD RESULTS)" >&2
    exit 2
}
QUICK=0
if [[ ${1:-} == --quick ]]; then
    QUICK=1
    shift
fi
[[ $# -eq 1 && -d $1 ]] || usage
if ((QUICK)); then
    REPS=${REPS:-1} RUN_SECONDS=${RUN_SECONDS:-1} SIZE=${SIZE:-64M} JOBS=${JOBS:-1}
fi
BUILD=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(dirname "$HERE")
REPS=${REPS:-3}
RUNSEC=${RUN_SECONDS:-5}
SIZE=${SIZE:-1G}
TARGETS=${TARGETS:-shm disk}
SERVERS=${SERVERS:-bioring-nbd nbdkit qemu-nbd nbd-server}
RWS=${RWS:-randread randwrite}
JOBS=${JOBS:-1 2}
IODEPTH=${IODEPTH:-32}
BS=${BS:-4k}
TRANSPORT=${TRANSPORT:-unix}
COPY=${COPY:-1}
CRYPT=${CRYPT:-1}

bad() { echo "nbd_compare.sh: $*" >&2; exit 2; }
[[ $REPS =~ ^[1-9][0-9]*$ ]] || bad "REPS must be a positive integer, not '$REPS'"
[[ $IODEPTH =~ ^[1-9][0-9]*$ ]] || bad "IODEPTH must be a positive integer, not '$IODEPTH'"
[[ $RUNSEC =~ ^[0-9]+(\.[0-9]+)?$ && $RUNSEC != 0 ]] || bad "RUN_SECONDS must be a positive number, not '$RUNSEC'"
for j in $JOBS; do [[ $j =~ ^[1-9][0-9]*$ ]] || bad "JOBS must list positive integers, not '$j'"; done
for rw in $RWS; do [[ $rw == randread || $rw == randwrite ]] || bad "RWS: '$rw' is not randread or randwrite"; done
for t in $TARGETS; do [[ $t == shm || $t == disk ]] || bad "TARGETS: '$t' is not shm or disk"; done
[[ $COPY == 0 || $COPY == 1 ]] || bad "COPY must be 0 or 1"
[[ $CRYPT == 0 || $CRYPT == 1 ]] || bad "CRYPT must be 0 or 1"
[[ $TRANSPORT == unix || $TRANSPORT == tcp ]] || bad "TRANSPORT must be unix or tcp, not '$TRANSPORT'"
[[ ${BS,,} =~ ^([0-9]+)(k?)$ ]] || bad "BS must look like 4k or 256k, not '$BS'"
bs_bytes=${BASH_REMATCH[1]}
[[ ${BASH_REMATCH[2]} == k ]] && bs_bytes=$((bs_bytes << 10))
# bioring-nbd advertises its O_DIRECT alignment (4 KiB) as the minimum block size, and
# libnbd refuses requests that are not a multiple of it.
((bs_bytes >= 4096 && bs_bytes <= 1 << 20 && bs_bytes % 4096 == 0)) ||
    bad "BS must be a multiple of 4k from 4k to 1024k, not '$BS'"
[[ ${SIZE,,} =~ ^([0-9]+)([kmg]?)$ ]] || bad "SIZE must look like 256M or 1G, not '$SIZE'"
case ${BASH_REMATCH[2]} in
k) size_bytes=$((BASH_REMATCH[1] << 10)) ;;
m) size_bytes=$((BASH_REMATCH[1] << 20)) ;;
g) size_bytes=$((BASH_REMATCH[1] << 30)) ;;
*) size_bytes=${BASH_REMATCH[1]} ;;
esac
((size_bytes >= 1 << 20 && size_bytes % (1 << 20) == 0)) || bad "SIZE must be a whole number of MiB, not '$SIZE'"

for tool in fio nbdinfo python3; do
    command -v $tool >/dev/null || { echo "nbd_compare.sh: $tool is needed (./run setup installs it)" >&2; exit 1; }
done
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "nbd_compare.sh: this fio has no nbd engine" >&2; exit 1; }

NBD_BIN=${BIORING_NBD:-}
if [[ -z $NBD_BIN ]]; then
    for c in "$BUILD/apps/bioring-nbd" "$BUILD/apps/nbd/bioring-nbd"; do
        [[ -x $c ]] && { NBD_BIN=$c; break; }
    done
fi
NOTES=()
declare -A HAVE=()
for s in $SERVERS; do
    case $s in
    bioring-nbd-base)
                 [[ -n ${BIORING_NBD_BASE:-} && -x $BIORING_NBD_BASE ]] || bad "bioring-nbd-base needs BIORING_NBD_BASE=PATH to an executable"
                 HAVE[$s]=1 ;;
    bioring-nbd | bioring-nbd-zc | bioring-nbd-wb | bioring-nbd-pb)
                 if [[ -n $NBD_BIN && -x $NBD_BIN ]]; then HAVE[$s]=1; else
                     NOTES+=("$s not measured: no binary at ${BIORING_NBD:-$BUILD/apps/bioring-nbd or $BUILD/apps/nbd/bioring-nbd}")
                 fi ;;
    nbdkit) command -v nbdkit >/dev/null && HAVE[$s]=1 || NOTES+=("nbdkit not installed: skipped") ;;
    qemu-nbd) command -v qemu-nbd >/dev/null && HAVE[$s]=1 || NOTES+=("qemu-nbd not installed: skipped") ;;
    nbd-server) command -v nbd-server >/dev/null && HAVE[$s]=1 || NOTES+=("nbd-server not installed: skipped") ;;
    *) bad "unknown server '$s' in SERVERS (bioring-nbd bioring-nbd-zc bioring-nbd-wb bioring-nbd-pb bioring-nbd-base nbdkit qemu-nbd nbd-server)" ;;
    esac
done
((${#HAVE[@]} > 0)) || { echo "nbd_compare.sh: no server to run (${NOTES[*]})" >&2; exit 1; }
if ((COPY || CRYPT)); then
    command -v nbdcopy >/dev/null || { echo "nbd_compare.sh: nbdcopy is needed (package libnbd-bin)" >&2; exit 1; }
fi
if ((CRYPT)); then
    command -v qemu-img >/dev/null || { echo "nbd_compare.sh: qemu-img is needed for the LUKS container" >&2; exit 1; }
    [[ -n ${HAVE[nbdkit]:-} ]] || NOTES+=("crypt: nbdkit missing, no luks filter to compare with")
fi
for s in $SERVERS; do
    [[ -n ${HAVE[$s]:-} ]] && echo "nbd_compare.sh: server $s" >&2
done
for n in "${NOTES[@]}"; do echo "nbd_compare.sh: note: $n" >&2; done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${RESULTS:-$ROOT/results/nbd-$STAMP}
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
WORK=$(mktemp -d /dev/shm/bioring-nbdcmp.XXXXXX)
DISK_DIR=$(mktemp -d "$BUILD/bioring-nbdcmp.XXXXXX")
SPID=""
SOWNED=0
stop_server() {
    [[ -n $SPID ]] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SPID" 2>/dev/null; then
        echo "nbd_compare.sh: server pid $SPID ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$SPID" 2>/dev/null || true
    fi
    ((SOWNED)) && wait "$SPID" 2>/dev/null || true
    SPID=""
}
cleanup() { stop_server; rm -rf "$WORK" "$DISK_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A DIR_OF=([shm]=$WORK [disk]=$DISK_DIR)
fill() { # PATH: SIZE bytes of random data, on the device before any server starts (else the
    # first runs' O_DIRECT writes would wait for the write-back of the fill's dirty pages)
    dd if=/dev/urandom of="$1" bs=1M count=$((size_bytes >> 20)) conv=fsync status=none
}
for t in $TARGETS; do
    echo "nbd_compare.sh: filling ${DIR_OF[$t]}/export.raw ($SIZE)" >&2
    fill "${DIR_OF[$t]}/export.raw"
done
if ((COPY || CRYPT)); then
    fill "$WORK/source.raw" # what nbdcopy copies into the exports
fi
KEY=$WORK/xts.key
if ((CRYPT)); then
    head -c 64 /dev/urandom >"$KEY"
    fill "$WORK/crypt.raw" # bioring-nbd's plain dm-crypt backing file (no header)
    # LUKS1 (qemu's luks format), aes-256-xts-plain64; a short PBKDF so opening is quick.
    qemu-img create -q -f luks --object secret,id=sec0,data=bench-passphrase \
        -o key-secret=sec0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,iter-time=200 \
        "$WORK/luks.img" "$size_bytes"
fi

SOCK=$WORK/nbd.sock
URI="nbd+unix:///bench?socket=$SOCK"
PORT=""
if [[ $TRANSPORT == tcp ]]; then
    # A loopback port picked at random (each server is started on it fresh); taken ports are
    # unlikely and make the server fail to start, which stops the script with its log.
    PORT=$((20000 + RANDOM % 20000))
    URI="nbd://127.0.0.1:$PORT/bench"
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# start_server NAME FILE [crypt]: start NAME serving FILE on SOCK as export "bench"; sets
# SPID (the process whose /proc/PID/stat is read). Waits until a client can connect.
start_server() {
    local name=$1 file=$2 crypt=${3:-}
    rm -f "$SOCK"
    SOWNED=1
    case $name in
    bioring-nbd | bioring-nbd-zc | bioring-nbd-wb | bioring-nbd-pb | bioring-nbd-base)
        local bin=$NBD_BIN
        [[ $name == bioring-nbd-base ]] && bin=$BIORING_NBD_BASE
        local args=(--socket "$SOCK")
        [[ $TRANSPORT == tcp ]] && args=(--listen "127.0.0.1:$PORT")
        [[ $name == bioring-nbd-zc ]] && args+=(--zero-copy)
        [[ $name == bioring-nbd-wb ]] && args+=(--cache writeback)
        [[ $name == bioring-nbd-pb ]] && args+=(--provided-buffers)
        if [[ -n $crypt ]]; then
            "$bin" "${args[@]}" --export bench --crypt aes-xts-plain64 --key-file "$KEY" \
                --key-size 512 "$file" >"$WORK/server.log" 2>&1 &
        else
            "$bin" "${args[@]}" --export bench "$file" >"$WORK/server.log" 2>&1 &
        fi
        SPID=$! ;;
    nbdkit)
        local args=(-U "$SOCK")
        [[ $TRANSPORT == tcp ]] && args=(-i 127.0.0.1 -p "$PORT")
        if [[ -n $crypt ]]; then
            nbdkit -f "${args[@]}" --filter=luks file "$file" passphrase=bench-passphrase \
                >"$WORK/server.log" 2>&1 &
        else
            nbdkit -f "${args[@]}" file "$file" >"$WORK/server.log" 2>&1 &
        fi
        SPID=$! ;;
    qemu-nbd)
        local args=(-k "$SOCK")
        [[ $TRANSPORT == tcp ]] && args=(-b 127.0.0.1 -p "$PORT")
        qemu-nbd "${args[@]}" -f raw -x bench -t -e 8 "$file" >"$WORK/server.log" 2>&1 &
        SPID=$! ;;
    nbd-server)
        # It must listen on TCP too: a loopback port picked at random, unlikely to be taken.
        cat >"$WORK/nbd-server.conf" <<EOF
[generic]
    unixsock = $SOCK
    listenaddr = 127.0.0.1
    port = ${PORT:-$((40000 + RANDOM % 20000))}
[bench]
    exportname = $file
EOF
        rm -f "$WORK/nbd-server.pid"
        SOWNED=0
        nbd-server -C "$WORK/nbd-server.conf" -p "$WORK/nbd-server.pid" >"$WORK/server.log" 2>&1 ||
            { echo "nbd_compare.sh: nbd-server did not start: $(cat "$WORK/server.log")" >&2; exit 1; }
        local i=0
        while [[ ! -s $WORK/nbd-server.pid ]] && ((i++ < 50)); do sleep 0.1; done
        SPID=$(cat "$WORK/nbd-server.pid" 2>/dev/null || true)
        [[ -n $SPID ]] || { echo "nbd_compare.sh: nbd-server wrote no pid file" >&2; exit 1; } ;;
    esac
    local i
    for ((i = 0; i < 150; i++)); do
        nbdinfo --size "$URI" >/dev/null 2>&1 && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "nbd_compare.sh: $name${crypt:+ (crypt)} is not serving $URI:" >&2
    sed 's/^/    /' "$WORK/server.log" >&2
    exit 1
}

CLK_TCK=$(getconf CLK_TCK)
# ticks PID: user+sys clock ticks of PID, its reaped children, and its live descendants.
ticks() {
    local pid=$1 total=0 t c
    [[ -r /proc/$pid/stat ]] || { echo 0; return; }
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + ${t:-0}))
    for c in $(pgrep -P "$pid" 2>/dev/null || true); do
        total=$((total + $(ticks "$c")))
    done
    echo "$total"
}

# record KIND SERVER TARGET REP KEY=VALUE...: one JSON line of runs.jsonl
record() {
    python3 - "$@" >>"$OUT/runs.jsonl" <<'PY'
import json, sys
kind, server, target, rep = sys.argv[1:5]
rec = {"kind": kind, "server": server, "target": target, "rep": int(rep)}
for kv in sys.argv[5:]:
    k, v = kv.split("=", 1)
    try:
        rec[k] = json.loads(v)
    except ValueError:
        rec[k] = v
print(json.dumps(rec))
PY
}

FAILED=0
# run_fio SERVER TARGET RW JOBS REP
run_fio() {
    local server=$1 tgt=$2 rw=$3 jobs=$4 rep=$5 t0 t1
    t0=$(ticks "$SPID")
    if ! fio --name=nbd --ioengine=nbd --uri="$URI" --rw="$rw" --bs="$bs_bytes" --iodepth="$IODEPTH" \
        --numjobs="$jobs" --group_reporting --size="$size_bytes" --time_based --runtime="$RUNSEC" \
        --norandommap --randrepeat=0 --output-format=json >"$WORK/fio.json" 2>"$WORK/fio.err"; then
        echo "nbd_compare.sh: fio $rw jobs=$jobs against $server ($tgt) failed:" >&2
        sed 's/^/    /' "$WORK/fio.err" "$WORK/server.log" >&2
        FAILED=$((FAILED + 1))
        return 0
    fi
    sleep 0.3 # nbd-server reaps its per-client process; its CPU then shows in cutime
    t1=$(ticks "$SPID")
    local vals
    vals=$(python3 - "$WORK/fio.json" "$rw" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text[text.find("{"):])
job = j["jobs"][0]
side = job["write" if sys.argv[2] == "randwrite" else "read"]
pct = side.get("clat_ns", {}).get("percentile", {})
print(side["total_ios"], side["runtime"] / 1000.0, pct.get("50.000000", "null"),
      pct.get("99.000000", "null"), job.get("error", 0))
PY
)
    local ios secs p50 p99 err
    read -r ios secs p50 p99 err <<<"$vals"
    if ((err != 0 || ios == 0)); then
        echo "nbd_compare.sh: fio $rw jobs=$jobs against $server ($tgt): error $err, $ios I/Os" >&2
        FAILED=$((FAILED + 1))
        return 0
    fi
    record fio "$server" "$tgt" "$rep" rw="$rw" jobs="$jobs" iodepth="$IODEPTH" bs="$bs_bytes" \
        transport="$TRANSPORT" load1="$(cut -d' ' -f1 /proc/loadavg)" ios="$ios" \
        seconds="$secs" p50_ns="$p50" p99_ns="$p99" server_cpu_s="$(awk -v a="$t0" -v b="$t1" \
        -v h="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / h }')"
}

# run_copy SERVER TARGET DIRECTION(out|in) REP [KIND]
run_copy() {
    local server=$1 tgt=$2 dir=$3 rep=$4 kind=${5:-copy} t0 t1 w0 w1
    local src=$URI dst=null:
    [[ $dir == in ]] && { src=$WORK/source.raw; dst=$URI; }
    t0=$(ticks "$SPID")
    w0=$(date +%s.%N)
    if ! nbdcopy "$src" "$dst" 2>"$WORK/copy.err"; then
        echo "nbd_compare.sh: nbdcopy $dir against $server ($tgt, $kind) failed:" >&2
        sed 's/^/    /' "$WORK/copy.err" "$WORK/server.log" >&2
        FAILED=$((FAILED + 1))
        return 0
    fi
    w1=$(date +%s.%N)
    sleep 0.3
    t1=$(ticks "$SPID")
    record "$kind" "$server" "$tgt" "$rep" direction="$dir" bytes="$size_bytes" \
        transport="$TRANSPORT" load1="$(cut -d' ' -f1 /proc/loadavg)" \
        seconds="$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.4f", b - a }')" \
        server_cpu_s="$(awk -v a="$t0" -v b="$t1" -v h="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / h }')"
}

: >"$OUT/runs.jsonl"
nserv=${#HAVE[@]}
echo "nbd_compare.sh: $REPS repetitions; $nserv servers x targets '$TARGETS' x (fio: '$RWS' x jobs '$JOBS' of ${RUNSEC}s$( ((COPY)) && echo ', nbdcopy out and in')); results in $OUT" >&2
for ((rep = 1; rep <= REPS; rep++)); do
    for tgt in $TARGETS; do
        for server in $SERVERS; do
            [[ -n ${HAVE[$server]:-} ]] || continue
            echo "nbd_compare.sh: rep $rep/$REPS $tgt $server" >&2
            start_server "$server" "${DIR_OF[$tgt]}/export.raw"
            for rw in $RWS; do
                for jobs in $JOBS; do
                    run_fio "$server" "$tgt" "$rw" "$jobs" "$rep"
                done
            done
            if ((COPY)); then
                run_copy "$server" "$tgt" out "$rep"
                run_copy "$server" "$tgt" in "$rep"
            fi
            stop_server
        done
    done
    if ((CRYPT)); then
        for server in bioring-nbd nbdkit; do
            [[ -n ${HAVE[$server]:-} ]] || continue
            echo "nbd_compare.sh: rep $rep/$REPS crypt $server" >&2
            if [[ $server == bioring-nbd ]]; then
                start_server bioring-nbd "$WORK/crypt.raw" crypt
            else
                start_server nbdkit "$WORK/luks.img" crypt
            fi
            run_copy "$server" shm out "$rep" crypt
            run_copy "$server" shm in "$rep" crypt
            stop_server
        done
    fi
done

{
    echo "# bench/nbd_compare.sh$( ((QUICK)) && echo ' --quick') $BUILD  (REPS=$REPS RUN_SECONDS=$RUNSEC SIZE=$SIZE TARGETS='$TARGETS' RWS='$RWS' JOBS='$JOBS' IODEPTH=$IODEPTH BS=$BS TRANSPORT=$TRANSPORT COPY=$COPY CRYPT=$CRYPT)"
    echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); started $STAMP; load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "# servers: $(for s in $SERVERS; do [[ -n ${HAVE[$s]:-} ]] || continue
        case $s in
        bioring-nbd) printf '%s; ' "bioring-nbd ($NBD_BIN)" ;;
        bioring-nbd-zc) printf '%s; ' "bioring-nbd-zc (--zero-copy)" ;;
        bioring-nbd-wb) printf '%s; ' "bioring-nbd-wb (--cache writeback)" ;;
        bioring-nbd-pb) printf '%s; ' "bioring-nbd-pb (--provided-buffers)" ;;
        bioring-nbd-base) printf '%s; ' "bioring-nbd-base ($BIORING_NBD_BASE)" ;;
        nbdkit) printf '%s; ' "$(nbdkit --version 2>&1 | head -1) (file plugin, default threads)" ;;
        qemu-nbd) printf '%s; ' "$(qemu-nbd --version 2>&1 | head -1) (-t -e 8)" ;;
        nbd-server) printf '%s; ' "nbd-server $(nbd-server -V 2>&1 | grep -oE '[0-9]+\.[0-9.]+' | head -1) (forking daemon)" ;;
        esac; done)"
    echo "# clients: $(fio --version) (nbd engine), $(nbdcopy --version 2>&1 | head -1); $([[ $TRANSPORT == tcp ]] && echo 'loopback TCP' || echo 'Unix socket'); disk = $(findmnt -n -o FSTYPE -T "$BUILD" 2>/dev/null || echo '?') under $BUILD"
    for n in "${NOTES[@]}"; do echo "# note: $n"; done
} >"$OUT/header.txt"
python3 "$HERE/nbd_summary.py" "$OUT"
if ((FAILED > 0)); then
    echo "nbd_compare.sh: $FAILED run(s) failed (see above)" >&2
    exit 1
fi
