#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cachegrind.sh BUILD_DIR: instructions and simulated L1 data-cache misses per NOP, for
# bioring-bench in both modes (per-io: one request coroutine and one BioSet allocation per
# NOP; loop: one coroutine per slot) and uring-loop — the exact counterpart of compare.sh's NOP rows, whose
# timings move ±10-20 % on this shared machine while these counts do not move at all.
#
# Each figure is (run of N2 NOPs − run of N1 NOPs) / (N2 − N1), so start-up and teardown
# cancel out. User space only (valgrind does not see the kernel's half of a NOP, which is
# the same code for both). The caches simulated are this machine's by default (L1d 48 KiB
# 12-way, L2 2 MiB 16-way, 64-byte lines), with cachegrind's LRU replacement rather than
# the hardware's; the miss counts show how much state each method cycles through per loop
# turn (at QD 128, 128 coroutine frames against 128 small slots), not cycles.
#
# bioring-bench runs with --same-thread: valgrind holds its lock across a blocking
# io_uring_enter, so a reactor on a Runtime thread would deadlock against the main thread.
#
# Every run takes --latency LATENCY ("sample 64", as compare.sh's default; "all", "off").
#
# BREAKDOWN=1 adds, under each bioring line, the same difference per function (instructions
# per NOP, functions above 0.5): where a request's instructions go. A coroutine appears as
# three functions: its name alone is the ramp (frame allocation, parameters, promise), the
# "actor" clone its body from resume to suspension and the final awaiter, the "destroy" clone
# the frame's destruction and free. Inline code counts in the function it was inlined into.
#
# Environment: QDS ("32 128"), N1 (100000), N2 (300000), D1 (49152,12,64),
# LL (2097152,16,64), LATENCY ("sample 64"), BREAKDOWN (0). Output: one line per QD and
# method (and its functions with BREAKDOWN=1).
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: bench/cachegrind.sh BUILD_DIR   (env: QDS N1 N2 D1 LL LATENCY)" >&2
    exit 2
fi
BIN=$(readlink -f "$1")/bench
QDS=${QDS:-32 128}
N1=${N1:-100000}
N2=${N2:-300000}
D1=${D1:-49152,12,64}
LL=${LL:-2097152,16,64}
BREAKDOWN=${BREAKDOWN:-0}
read -r -a LAT <<<"${LATENCY:-sample 64}"
for need in bioring-bench uring-loop; do
    [[ -x $BIN/$need ]] || { echo "cachegrind.sh: $BIN/$need is missing: build the bench targets" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "cachegrind.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if ! [[ $N1 =~ ^[0-9]+$ && $N2 =~ ^[0-9]+$ ]] || (( N2 <= N1 )); then
    echo "cachegrind.sh: N1 and N2 must be whole numbers with N2 > N1 (got '$N1', '$N2')" >&2
    exit 2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# counts N CMD...: "instructions d1_misses" of one cachegrind run of CMD with --ios N.
counts() {
    local n=$1
    shift
    if ! valgrind --tool=cachegrind --cache-sim=yes --D1="$D1" --LL="$LL" \
        --cachegrind-out-file="$WORK/cg.$n.out" "$@" --ios "$n" >"$WORK/out" 2>"$WORK/err"; then
        echo "cachegrind.sh: failed: $* --ios $n: $(tail -3 "$WORK/err")" >&2
        exit 1
    fi
    python3 - "$WORK/err" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def total(label):
    m = re.search(label + r":\s+([\d,]+)", text)
    if not m:
        sys.exit(f"cachegrind.sh: no '{label}' in valgrind's summary")
    return int(m.group(1).replace(",", ""))
print(total(r"I\s+refs"), total(r"D1\s+misses"))
PY
}

# breakdown: per-function (Ir of the N2 run - Ir of the N1 run) / (N2 - N1), largest first.
breakdown() {
    python3 - "$WORK/cg.$N1.out" "$WORK/cg.$N2.out" "$N1" "$N2" <<'PY'
import re, sys
def per_fn(path):
    out, fn = {}, None
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = line[3:].strip()
        elif fn and line[:1].isdigit():
            f = line.split()
            if len(f) > 1:
                out[fn] = out.get(fn, 0) + int(f[1])
    return out
def short(name):
    name = name.replace("(anonymous namespace)::", "")
    clone = re.findall(r"\[clone (\.[a-z]+)\]", name)
    depth, base = 0, ""
    for ch in name:  # the qualified name before its parameter list
        if ch == "(" and depth == 0 and base:
            break
        depth += ch == "<"
        depth -= ch == ">"
        base += ch
    return base + (" [" + clone[-1][1:] + "]" if clone else "")
a, b = per_fn(sys.argv[1]), per_fn(sys.argv[2])
n = int(sys.argv[4]) - int(sys.argv[3])
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, short(k)) for k in set(a) | set(b))
for d, k in reversed(rows):
    if d >= 0.5:
        print(f"       {d:8.1f}  {k}")
PY
}

echo "# --latency ${LAT[*]}"
printf '%-4s %-14s %14s %16s\n' QD method instr/NOP "D1 misses/NOP"
for qd in $QDS; do
    for method in bioring-per-io bioring-loop uring-loop; do
        case $method in
        bioring-per-io) cmd=("$BIN/bioring-bench" --mode per-io --same-thread) ;;
        bioring-loop) cmd=("$BIN/bioring-bench" --mode loop --same-thread) ;;
        uring-loop) cmd=("$BIN/uring-loop") ;;
        esac
        cmd+=(--rw nop --qd "$qd" --latency "${LAT[@]}")
        r1=$(counts "$N1" "${cmd[@]}")
        r2=$(counts "$N2" "${cmd[@]}")
        read -r i1 m1 <<<"$r1"
        read -r i2 m2 <<<"$r2"
        awk -v qd="$qd" -v m="$method" -v i1="$i1" -v i2="$i2" -v m1="$m1" -v m2="$m2" \
            -v n1="$N1" -v n2="$N2" \
            'BEGIN { d = (m2-m1)/(n2-n1); if (d < 0.005) d = 0;  # start-up noise, not a count
                     printf "%-4s %-14s %14.1f %16.2f\n", qd, m, (i2-i1)/(n2-n1), d }'
        if [[ $BREAKDOWN == 1 && $method == bioring-* ]]; then
            breakdown
        fi
    done
done
