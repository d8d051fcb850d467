#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nbd_tls.sh BUILD_DIR: what TLS costs bioring-nbd, measured with nbdcopy over a Unix socket
# on /dev/shm, next to bioring-nbd in clear and to nbdkit's file plugin with TLS.
#
# Servers (each started fresh for every repetition, in turn, so a disturbance on a shared
# machine lands on all of them alike):
#   bioring-plain  bioring-nbd --socket S FILE
#   bioring-tls    bioring-nbd --socket S --tls require --tls-certificates DIR FILE
#   nbdkit-tls     nbdkit -f -U S --tls=require --tls-certificates=DIR file FILE
# (certificates from tests/nbd/make_certs.sh: EC P-256; the client is libnbd's nbdcopy,
# GnuTLS, which negotiates TLS 1.3 with these servers.)
# Workloads: "out": nbdcopy --connections=4 --requests=64 URI null: (the server reads and
# encrypts; the client only decrypts); "in": nbdcopy --connections=4 --requests=64 --flush
# SRC URI. Reported: wall time (median and minimum), MiB/s at the median, and the server's
# CPU (user+sys from /proc/PID/stat, 10 ms ticks) per GiB moved, median.
# Environment: REPS (5), SIZE (512M), BIORING_NBD (default BUILD_DIR/apps/bioring-nbd).
# Output: the table on stdout. A missing nbdkit drops its rows with a line saying so.
set -euo pipefail

usage() {
    echo "usage: bench/nbd_tls.sh BUILD_DIR   (env: REPS SIZE BIORING_NBD)" >&2
    exit 2
}
[[ $# -eq 1 && -d $1 ]] || usage
BUILD=$(readlink -f "$1")
ROOT=$(dirname "$(dirname "$(readlink -f "$0")")")
REPS=${REPS:-5}
SIZE=${SIZE:-512M}
NBD=${BIORING_NBD:-$BUILD/apps/bioring-nbd}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "nbd_tls.sh: REPS must be a positive integer" >&2; exit 2; }
[[ -x $NBD ]] || { echo "nbd_tls.sh: no bioring-nbd at $NBD (build it first)" >&2; exit 2; }
command -v nbdcopy >/dev/null || { echo "nbd_tls.sh: nbdcopy is not installed" >&2; exit 2; }

SERVERS="bioring-plain bioring-tls"
if command -v nbdkit >/dev/null; then
    SERVERS="$SERVERS nbdkit-tls"
else
    echo "nbd_tls.sh: nbdkit is not installed: nbdkit-tls is not measured"
fi

work=$(mktemp -d /dev/shm/bioring-nbd-tls.XXXXXX)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
sh "$ROOT/tests/nbd/make_certs.sh" "$work/certs"
head -c "$SIZE" /dev/urandom > "$work/src.img"
bytes=$(stat -c %s "$work/src.img")
truncate -s "$bytes" "$work/disk.img"
sock=$work/s.sock
certs=$work/certs

start() {
    rm -f "$sock"
    case $1 in
    bioring-plain) "$NBD" --socket "$sock" "$work/disk.img" > "$work/server.out" 2>&1 & ;;
    bioring-tls) "$NBD" --socket "$sock" --tls require --tls-certificates "$certs/server" \
                     "$work/disk.img" > "$work/server.out" 2>&1 & ;;
    nbdkit-tls) nbdkit -f -U "$sock" --tls=require --tls-certificates="$certs/server" \
                    file "$work/disk.img" > "$work/server.out" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 200); do [[ -S $sock ]] && return; sleep 0.05; done
    echo "nbd_tls.sh: $1 did not start: $(cat "$work/server.out")" >&2
    exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
uri() {
    case $1 in
    bioring-plain) echo "nbd+unix:///?socket=$sock" ;;
    *) echo "nbds+unix:///?socket=$sock&tls-certificates=$certs/client" ;;
    esac
}

runs=$work/runs.txt
for rep in $(seq "$REPS"); do
    for s in $SERVERS; do
        start "$s"
        for op in in out; do
            c0=$(ticks)
            t0=$(date +%s.%N)
            if [[ $op == in ]]; then
                nbdcopy --connections=4 --requests=64 --flush "$work/src.img" "$(uri "$s")"
            else
                nbdcopy --connections=4 --requests=64 "$(uri "$s")" null:
            fi
            t1=$(date +%s.%N)
            c1=$(ticks)
            echo "$s $op $(echo "$t1 - $t0" | bc -l) $((c1 - c0))" >> "$runs"
        done
        cmp -s "$work/src.img" "$work/disk.img" || { echo "nbd_tls.sh: $s: data differs" >&2; exit 1; }
        stop
    done
done

hz=$(getconf CLK_TCK)
echo "nbdcopy, 4 connections x 64 requests, $SIZE on /dev/shm over a Unix socket; $REPS repetitions"
echo "$(nproc) CPUs; $(openssl version)"
printf '%-14s %-4s %10s %10s %9s %16s\n' server op "median s" "min s" "MiB/s" "server CPU s/GiB"
for s in $SERVERS; do
    for op in in out; do
        awk -v s="$s" -v op="$op" -v bytes="$bytes" -v hz="$hz" '
            BEGIN { n = 0 }
            $1 == s && $2 == op { t[n] = $3; c[n] = $4; n++ }
            function median(a, n,   i, j, x) {
                for (i = 1; i < n; i++) for (j = i; j > 0 && a[j-1] > a[j]; j--) {
                    x = a[j]; a[j] = a[j-1]; a[j-1] = x }
                return n % 2 ? a[int(n/2)] : (a[n/2-1] + a[n/2]) / 2 }
            END {
                mt = median(t, n); min = t[0]; mc = median(c, n) / hz
                printf "%-14s %-4s %10.3f %10.3f %9.0f %16.2f\n", s, op, mt, min,
                       bytes / 1048576 / mt, mc / (bytes / 1073741824) }' "$runs"
    done
done
