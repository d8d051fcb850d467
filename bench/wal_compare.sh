#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wal_compare.sh BUILD_DIR [ROUNDS]: bioring-wal's group commit against the naive baseline
# (bench/wal_naive.cpp: one pwrite + fdatasync per record from N threads), 256 producers,
# 128-byte records, on /dev/shm and on the ext4 work disk (a directory under /work, or
# WAL_EXT4_DIR). The programs run interleaved — naive and the bioring-wal variants,
# then the next round — so that a noisy machine slows all of them alike; each round is one
# line per program (records/s and commit p50/p99), and the summary gives the median and the
# minimum of records/s over the rounds and the ratio of the medians to the baseline.
# Programs: naive (N threads); wal (one reactor, N producers); wal-prealloc (the same on a
# log preallocated with synced zeros); wal-2x-prealloc (two reactors, two logs, N/2
# producers each: the same N producers in all).
# Env: WAL_SECONDS (3) per run, WAL_PRODUCERS (256), WAL_PREALLOC (256M).
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
    echo "usage: bench/wal_compare.sh BUILD_DIR [ROUNDS (default 5)]" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
ROUNDS=${2:-5}
SECS=${WAL_SECONDS:-3}
PROD=${WAL_PRODUCERS:-256}
PREALLOC=${WAL_PREALLOC:-256M}
WAL=$BUILD/apps/bioring-wal
NAIVE=$BUILD/bench/wal-naive
for p in "$WAL" "$NAIVE"; do
    [[ -x $p ]] || { echo "wal_compare.sh: $p is not built" >&2; exit 1; }
done
EXT4_ROOT=${WAL_EXT4_DIR:-/work/tmp}
mkdir -p "$EXT4_ROOT"
SHM=$(mktemp -d /dev/shm/bioring-wal-cmp.XXXXXX)
EXT4=$(mktemp -d "$EXT4_ROOT/bioring-wal-cmp.XXXXXX")
trap 'rm -rf "$SHM" "$EXT4"' EXIT

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ext4: $EXT4 ($(df -T "$EXT4" | awk 'NR==2{print $2, $1}')); $SECS s per run, $PROD producers, 128-byte records"
printf '%-6s %-5s %-22s %12s %10s %10s\n' where round program records/s p50_ms p99_ms
declare -A RES
for round in $(seq 1 "$ROUNDS"); do
    for where in shm ext4; do
        dir=$SHM; [[ $where == ext4 ]] && dir=$EXT4
        for prog in naive wal wal-prealloc wal-2x-prealloc; do
            case $prog in
            naive) out=$("$NAIVE" "$dir" --threads "$PROD" --seconds "$SECS" --json) ;;
            wal) out=$("$WAL" bench "$dir" --producers "$PROD" --seconds "$SECS" --json) ;;
            wal-prealloc) out=$("$WAL" bench "$dir" --producers "$PROD" --seconds "$SECS" \
                                --prealloc "$PREALLOC" --json) ;;
            wal-2x-prealloc) out=$("$WAL" bench "$dir" --threads 2 --producers $((PROD / 2)) \
                                   --seconds "$SECS" --prealloc "$PREALLOC" --json) ;;
            esac
            rps=$(field records_per_s <<<"$out")
            printf '%-6s %-5s %-22s %12s %10s %10s\n' "$where" "$round" "$prog" "$rps" \
                "$(field commit_p50_ms <<<"$out")" "$(field commit_p99_ms <<<"$out")"
            RES[$where.$prog]+="$rps "
            rm -f "$dir"/*.log
        done
    done
done
echo
printf '%-6s %-22s %14s %14s %16s\n' where program median_rec/s min_rec/s median_vs_naive
for where in shm ext4; do
    base=$(tr ' ' '\n' <<<"${RES[$where.naive]}" | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
    for prog in naive wal wal-prealloc wal-2x-prealloc; do
        sorted=$(tr ' ' '\n' <<<"${RES[$where.$prog]}" | grep . | sort -n)
        med=$(awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}' <<<"$sorted")
        min=$(head -1 <<<"$sorted")
        printf '%-6s %-22s %14s %14s %15.1fx\n' "$where" "$prog" "$med" "$min" \
            "$(awk -v m="$med" -v b="$base" 'BEGIN{print (b > 0 ? m / b : 0)}')"
    done
done
