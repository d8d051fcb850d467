#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# apps_compare.sh BUILD_DIR: the apps issue's performance check, in one interleaved run.
#
# copy, on a 1 GiB file in /dev/shm (tmpfs) and one under BUILD_DIR (the ext4 work disk):
#   bioring-copy (its defaults) vs `dd bs=1M iflag=direct oflag=direct` vs `cp`, and
#   `cp` followed by `sync DST` (cp+sync: cp charged for writing its data to the device, as
#   bioring-copy is). On the disk also fio reading SRC and writing DST at once (fio-rw,
#   O_DIRECT, 1M, QD 8 each, end_fsync; wall time of the whole fio process, its start-up
#   and file layout included): what the device gives a tool that moves the same bytes.
# crypt, 4096-byte sectors, on /dev/shm: bioring-crypt encrypt (its defaults) vs
#   cores x the single-core per-sector EVP loop (bench/evp_loop.cpp), and the two ceilings
#   it cannot beat here: the cipher alone on all cores (evp-loop --threads cores) and
#   bioring-copy with crypt's block size, queue depth and threads (the same I/O, no cipher).
#
# Every repetition runs every method once, in turn (A B C A B C ...), so a disturbance on this
# shared machine lands on all of them alike; the table shows the medians. A method's time is
# the wall time of its whole process (start-up, fsync and rename included for the bioring
# apps; cp and dd do not fsync, so they are not charged for writeback; cp+sync is). Before each run the
# source's page cache is dropped with posix_fadvise(DONTNEED) (only this script's files), so
# on ext4 nobody reads a cached source; the destination is removed after each run.
#
# Environment: REPS (5), SIZE_MIB (1024), TARGETS ("shm disk"), BASELINE_DIR (a folder with
# older bioring-copy/bioring-crypt binaries, run as extra methods "copy-base"/"crypt-base"),
# COPY_ARGS / CRYPT_ARGS (extra options for bioring-copy / bioring-crypt).
# Output: the table on stdout; every run as JSON lines in $OUT (default BUILD_DIR/apps_compare.jsonl).
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/apps_compare.sh BUILD_DIR  (env: REPS SIZE_MIB TARGETS BASELINE_DIR COPY_ARGS CRYPT_ARGS)" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
REPS=${REPS:-5}
SIZE_MIB=${SIZE_MIB:-1024}
TARGETS=${TARGETS:-shm disk}
BASE=${BASELINE_DIR:-}
read -r -a COPY_X <<<"${COPY_ARGS:-}"
read -r -a CRYPT_X <<<"${CRYPT_ARGS:-}"
OUT=${OUT:-$BUILD/apps_compare.jsonl}
COPY=$BUILD/apps/bioring-copy
CRYPT=$BUILD/apps/bioring-crypt
EVP=$BUILD/bench/evp-loop
for need in "$COPY" "$CRYPT" "$EVP"; do
    [[ -x $need ]] || { echo "apps_compare.sh: $need is missing: build bioring-copy, bioring-crypt and evp-loop" >&2; exit 1; }
done
CORES=$(nproc)
FIO=$(command -v fio || true)
[[ -n $FIO ]] || echo "apps_compare.sh: no fio here: fio-rw is not measured" >&2
# GNU time reports the user+sys CPU of the whole process (its io_uring io-wq workers
# included): the CPU each method spends per GiB, which is what bounds them on a busy box.
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "apps_compare.sh: $TIME (GNU time) is needed" >&2; exit 1; }
# crypt's own defaults (bioring-crypt --help), for the same-I/O copy ceiling.
CRYPT_IO=$("$CRYPT" --help | python3 -c '
import re, sys
t = sys.stdin.read()
bs = re.search(r"--bs SIZE.*?default (\w+)\)", t, re.S).group(1)
qd = re.search(r"--qd N.*?default (\d+)\)", t, re.S).group(1)
print(bs, qd)')
read -r CRYPT_BS CRYPT_QD <<<"$CRYPT_IO"

SHM_DIR=$(mktemp -d /dev/shm/apps-compare.XXXXXX)
DISK_DIR=$(mktemp -d "$BUILD/apps-compare.XXXXXX")
trap 'rm -rf "$SHM_DIR" "$DISK_DIR"' EXIT
trap 'exit 130' INT TERM
KEY=$SHM_DIR/key
head -c 64 /dev/urandom >"$KEY"
: >"$OUT"

dir_of() { [[ $1 == shm ]] && echo "$SHM_DIR" || echo "$DISK_DIR"; }
for t in $TARGETS; do
    d=$(dir_of "$t")
    head -c $((SIZE_MIB << 20)) /dev/urandom >"$d/src"
done
drop() { python3 -c 'import os,sys
for p in sys.argv[1:]:
    if os.path.exists(p):
        fd=os.open(p,os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }

# run NAME TARGET CMD...: time one run of CMD (wall, whole process), record MB/s.
run() {
    local name=$1 target=$2
    shift 2
    local d
    d=$(dir_of "$target")
    drop "$d/src"
    local t0 t1
    t0=$(date +%s%N)
    if ! "$TIME" -f '%U %S' -o "$d/cpu" "$@" >/dev/null 2>"$d/err"; then
        echo "apps_compare.sh: $name on $target failed: $(cat "$d/err")" >&2
        exit 1
    fi
    t1=$(date +%s%N)
    rm -f "$d/dst"
    python3 -c 'import json,sys; n,t,ns,mib,cpu=sys.argv[1:]; ns=int(ns); b=int(mib)<<20
u,s=map(float,open(cpu).read().split()[-2:])
print(json.dumps({"method":n,"target":t,"seconds":ns/1e9,"mb_per_s":b/ns*1e3,"cpu_s":u+s}))' \
        "$name" "$target" "$((t1 - t0))" "$SIZE_MIB" "$d/cpu" >>"$OUT"
}
# evp NAME THREADS: the in-memory cipher loop; records its own GB/s as MB/s.
evp() {
    "$EVP" --sector-size 4096 --seconds 1 --threads "$2" | python3 -c 'import json,sys
d=json.load(sys.stdin); print(json.dumps({"method":sys.argv[1],"target":"memory","seconds":d["seconds"],"mb_per_s":d["gbps"]*1e3}))' "$1" >>"$OUT"
}

for ((rep = 1; rep <= REPS; rep++)); do
    echo "apps_compare.sh: repetition $rep/$REPS" >&2
    for t in $TARGETS; do
        d=$(dir_of "$t")
        run bioring-copy "$t" "$COPY" --quiet "${COPY_X[@]}" "$d/src" "$d/dst"
        run dd "$t" dd if="$d/src" of="$d/dst" bs=1M iflag=direct oflag=direct
        run cp "$t" cp "$d/src" "$d/dst"
        run cp+sync "$t" sh -c 'cp "$1" "$2" && sync "$2"' sh "$d/src" "$d/dst"
        if [[ $t == disk && -n $FIO ]]; then
            run fio-rw "$t" "$FIO" --output=/dev/null --ioengine=io_uring --direct=1 --bs=1M \
                --iodepth=8 --size="${SIZE_MIB}M" --end_fsync=1 --fallocate=truncate \
                --name=r --filename="$d/src" --rw=read --name=w --filename="$d/dst" --rw=write
        fi
        if [[ -n $BASE ]]; then
            run copy-base "$t" "$BASE/bioring-copy" --quiet "$d/src" "$d/dst"
        fi
    done
    if [[ " $TARGETS " == *" shm "* ]]; then
        d=$SHM_DIR
        run bioring-crypt shm "$CRYPT" encrypt --quiet --key-file "$KEY" --sector-size 4096 \
            "${CRYPT_X[@]}" "$d/src" "$d/dst"
        evp evp-1core 1
        evp evp-all-cores "$CORES"
        run copy-crypt-io shm "$COPY" --quiet --bs "$CRYPT_BS" --qd "$CRYPT_QD" --threads "$CORES" \
            "$d/src" "$d/dst"
        if [[ -n $BASE ]]; then
            run crypt-base shm "$BASE/bioring-crypt" encrypt --quiet --key-file "$KEY" \
                --sector-size 4096 "$d/src" "$d/dst"
        fi
    fi
done

python3 - "$OUT" "$CORES" "$SIZE_MIB" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
cpu = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["target"], r["method"])].append(r["mb_per_s"])
    if "cpu_s" in r:
        cpu[(r["target"], r["method"])].append(r["cpu_s"])
cores = int(sys.argv[2])
mb = int(sys.argv[3]) * 1.048576  # the file's size in MB (10^6 bytes), as MB/s counts
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"{'target':8} {'method':16} {'median MB/s':>12} {'runs':>5} {'min..max':>12} "
      f"{'CPU s (user+sys)':>17}")
for (t, m), v in sorted(runs.items()):
    c = f"{statistics.median(cpu[(t, m)]):.2f}" if cpu[(t, m)] else "-"
    print(f"{t:8} {m:16} {med[(t, m)]:12.0f} {len(v):5} {min(v):5.0f}..{max(v):<5.0f} {c:>17}")
print()
for t in ("shm", "disk"):
    if (t, "bioring-copy") in med:
        c = med[(t, "bioring-copy")]
        print(f"copy {t}: {c / med[(t, 'dd')]:.2f}x dd, {c / med[(t, 'cp')]:.2f}x cp, "
              f"{c / med[(t, 'cp+sync')]:.2f}x cp+sync"
              + (f" (baseline: {med[(t, 'copy-base')] / med[(t, 'dd')]:.2f}x dd, "
                 f"{med[(t, 'copy-base')] / med[(t, 'cp')]:.2f}x cp)"
                 if (t, "copy-base") in med else ""))
        if (t, "fio-rw") in med:
            print(f"  fio reading SRC and writing DST at once: {med[(t, 'fio-rw')]:.0f} MB/s "
                  f"-> copy = {c / med[(t, 'fio-rw')]:.2f}x fio-rw")
if ("shm", "bioring-crypt") in med:
    c = med[("shm", "bioring-crypt")]
    target = 0.85 * cores * med[("memory", "evp-1core")]
    print(f"crypt shm: {c:.0f} MB/s = {c / (cores * med[('memory', 'evp-1core')]):.2f}x "
          f"(cores={cores} x evp-1core); issue target 0.85x = {target:.0f} MB/s")
    io = med[("shm", "copy-crypt-io")]
    allc = med[("memory", "evp-all-cores")]
    print(f"ceilings: cipher alone on {cores} cores {allc:.0f} MB/s, the same I/O without the "
          f"cipher {io:.0f} MB/s -> crypt = {c / min(io, allc):.2f}x min(ceilings)")
    # CPU is what bounds crypt on tmpfs: every MB costs the I/O's CPU (two kernel copies and
    # the runtime, measured by copy-crypt-io) plus the cipher's (1 / evp-1core), on `cores`.
    io_cost = statistics.median(cpu[("shm", "copy-crypt-io")]) / mb  # core-seconds per MB
    ciph_cost = 1 / med[("memory", "evp-1core")]
    print(f"CPU per MB: I/O {io_cost * 1e6:.0f} us, cipher {ciph_cost * 1e6:.0f} us -> at most "
          f"{cores / (io_cost + ciph_cost):.0f} MB/s on {cores} cores (crypt = "
          f"{c * (io_cost + ciph_cost) / cores:.2f}x of that); the target needs the I/O at "
          f"{max(cores / target - ciph_cost, 0) * 1e6:.0f} us per MB or less")
    if ("shm", "crypt-base") in med:
        print(f"crypt baseline: {med[('shm', 'crypt-base')]:.0f} MB/s")
PY
