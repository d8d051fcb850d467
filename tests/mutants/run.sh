#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mutation testing (./run mutants): apply each one-line mutant of tests/mutants/mutants.txt
# to a scratch copy of the tree, rebuild what its tests need (Release), run those tests, and
# report whether they caught it. Prints one line per mutant (killed / survived / equivalent)
# and a final `N of M mutants killed` (equivalent mutants are listed, not counted in M).
#
# usage: tests/mutants/run.sh [--check] [--only REGEX] [--list FILE]
#   --check        only check that every line parses and its pattern applies (no build)
#   --only REGEX   run only the mutants whose line matches REGEX (grep -E)
#   --list FILE    another mutant list (default tests/mutants/mutants.txt)
# Environment: BIORING_MUTANTS_DIR (scratch, default build-mutants/ in the tree; the source
# copy and build tree are reused between runs, so ccache and make keep rebuilds small),
# BIORING_MUTANT_TIMEOUT (seconds per test case, default 60), JOBS (default nproc).
# Exit status: 0 when every mutant was applied and run; 1 when some survived; 2 on a bad
# list line or a pattern not found exactly once (the list must be fixed: code moved).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
LIST=$ROOT/tests/mutants/mutants.txt
ONLY=
CHECK=0
while (($#)); do
    case $1 in
        --check) CHECK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --list) LIST=$(readlink -f "$2"); shift 2 ;;
        *) echo "mutants: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
WORK=${BIORING_MUTANTS_DIR:-$ROOT/build-mutants}
# --check works on its own copy, so it can run beside a full run.
((CHECK)) && WORK=$WORK/check
SRC=$WORK/src
BUILD=$WORK/build
JOBS=${JOBS:-$(nproc)}
export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}

# 1. The scratch source: the tracked and untracked (not ignored) files of the tree. Files are
# copied only when their content differs, so unchanged ones keep their timestamps.
mkdir -p "$SRC"
exec 9>"$WORK/lock"
flock -n 9 || { echo "mutants: another run is using $WORK" >&2; exit 2; }
(cd "$ROOT" && git ls-files -co --exclude-standard) | sort >"$WORK/files"
while IFS= read -r f; do
    [[ -f $ROOT/$f ]] || continue
    if ! cmp -s "$ROOT/$f" "$SRC/$f"; then
        mkdir -p "$(dirname "$SRC/$f")"
        cp "$ROOT/$f" "$SRC/$f"
    fi
done <"$WORK/files"
# Files gone from the tree go from the copy too (tests are globbed).
(cd "$SRC" && find . -type f -printf '%P\n' | sort | comm -23 - "$WORK/files" | xargs -r rm -f)
if ((!CHECK)); then
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBIORING_BUILD_BENCH=OFF \
      -DBIORING_TEST_TIMEOUT="${BIORING_MUTANT_TIMEOUT:-60}" >/dev/null
echo "mutants: building the unmutated tree in $BUILD"
cmake --build "$BUILD" -j "$JOBS" >/dev/null
# Every test, in ctest's numbering: "<number> <executable>" per line.
ctest --test-dir "$BUILD" --show-only=json-v1 | python3 -c '
import json, os, sys
for i, t in enumerate(json.load(sys.stdin).get("tests", []), 1):
    print(i, os.path.basename(t["command"][0]))' >"$WORK/tests"
fi


# ctest arguments selecting a mutant's tests: "all", "F:<regex on test executable names>"
# (every case of those test files), "R:<regex on test names>" or a label regex.
select_args() {
    case $1 in
        all) printf '%s\0' -L 'alloc|runtime|io|apps|reliability' ;;
        R:*) printf '%s\0' -R "${1#R:}" ;;
        F:*)
            local nums
            nums=$(awk -v re="^(${1#F:})$" '$2 ~ re { print $1 }' "$WORK/tests" | paste -sd,)
            [[ -n $nums ]] || return 0
            printf '%s\0' -I "${nums%%,*},${nums%%,*},1,$nums" ;;
        *) printf '%s\0' -L "$1" ;;
    esac
}

# The build targets (test executables) behind a selection.
targets_of() {
    (($#)) || return 0
    ctest --test-dir "$BUILD" --show-only=json-v1 "$@" | python3 -c '
import json, os, sys
seen = []
for t in json.load(sys.stdin).get("tests", []):
    name = os.path.basename(t["command"][0])
    if name not in seen:
        seen.append(name)
print(" ".join(seen))'
}

# apply FILE PATTERN REPLACEMENT: replace the one occurrence, or exit 2.
apply() {
    python3 - "$@" <<'PY'
import sys
path, pattern, repl = sys.argv[1:4]
text = open(path).read()
# A literal \n in a list field stands for a newline (a pattern may span lines to be unique).
pattern, repl = pattern.replace("\\n", "\n"), repl.replace("\\n", "\n")
n = text.count(pattern)
if n != 1:
    sys.stderr.write(f"mutants: pattern found {n} times (must be once) in {path}: {pattern}\n")
    sys.exit(2)
open(path, "w").write(text.replace(pattern, repl))
PY
}

killed=0 total=0 equivalent=0 lineno=0
survivors=()
start=$(date +%s)
if ((CHECK)); then
    echo "mutants: checking $LIST"
fi
while IFS= read -r -u 3 line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%"${line##*[![:space:]]}"} # trailing blanks
    [[ -z $line || $line == \#* ]] && continue
    if [[ -n $ONLY ]] && ! grep -Eq -- "$ONLY" <<<"$line"; then
        continue
    fi
    mapfile -t f < <(L=$line awk 'BEGIN { n = split(ENVIRON["L"], a, / \| /); for (i = 1; i <= n; i++) print a[i] }')
    if ((${#f[@]} < 5 || ${#f[@]} > 6)); then
        echo "mutants: $LIST:$lineno: want 5 or 6 fields separated by ' | ', got ${#f[@]}" >&2
        exit 2
    fi
    for i in "${!f[@]}"; do
        f[i]=${f[i]//'\|'/|}
    done
    file=${f[0]} pattern=${f[1]} repl=${f[2]} breaks=${f[3]} tests=${f[4]} note=${f[5]:-}
    id="$file:$lineno"
    [[ -f $SRC/$file ]] || { echo "mutants: $LIST:$lineno: no file $file" >&2; exit 2; }
    cp "$SRC/$file" "$WORK/original"
    apply "$SRC/$file" "$pattern" "$repl" || exit 2
    if ((CHECK)); then
        cp "$WORK/original" "$SRC/$file"
        total=$((total + 1))
        continue
    fi
    if [[ $note == equivalent:* ]]; then
        cp "$WORK/original" "$SRC/$file"
        equivalent=$((equivalent + 1))
        printf 'equivalent %-40s %s (%s)\n' "$id" "$breaks" "${note#equivalent: }"
        continue
    fi
    total=$((total + 1))
    mapfile -d '' sel < <(select_args "$tests")
    read -r -a tgts <<<"$(targets_of "${sel[@]}")"
    t0=$(date +%s)
    if ((${#tgts[@]} == 0)); then
        echo "mutants: $LIST:$lineno: '$tests' selects no test" >&2
        cp "$WORK/original" "$SRC/$file"
        exit 2
    fi
    if ! cmake --build "$BUILD" -j "$JOBS" --target "${tgts[@]}" >"$WORK/build.log" 2>&1; then
        # A mutant that does not compile is a bad list entry, not a kill.
        cp "$WORK/original" "$SRC/$file"
        echo "mutants: $LIST:$lineno: the mutant does not build (see $WORK/build.log)" >&2
        exit 2
    fi
    if ctest --test-dir "$BUILD" -j "$JOBS" --stop-on-failure "${sel[@]}" >"$WORK/ctest.log" 2>&1; then
        verdict=survived
        survivors+=("$id: $breaks")
    else
        verdict=killed
        killed=$((killed + 1))
    fi
    cp "$WORK/original" "$SRC/$file" # a new mtime: the next build recompiles it (ccache hit)
    printf '%-10s %-40s %s [%ss, %s]\n' "$verdict" "$id" "$breaks" "$(($(date +%s) - t0))" "$tests"
done 3<"$LIST"
if ((CHECK)); then
    echo "mutants: $total mutants parse and apply"
    exit 0
fi
echo "mutants: $(( $(date +%s) - start )) s; $equivalent equivalent mutants not counted"
for s in "${survivors[@]}"; do
    echo "survivor: $s"
done
echo "$killed of $total mutants killed"
((killed == total))
