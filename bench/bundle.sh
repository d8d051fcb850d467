#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bundle.sh BUILD_DIR OUT_DIR: a self-contained folder that runs bench/scaling.sh on another
# x86-64 Linux machine with nothing installed and nothing reachable (issue 5, "Scaling":
# "carry a build whose libraries ... travel with it").
#
#   OUT/run-scaling      the entry point: scaling.sh with OUT as its BUILD_DIR (same env)
#   OUT/bench/           bioring-bench, uring-loop, bench-rusage, scaling.sh
#   OUT/lib/             every shared library they load that is not glibc's (ldd), and the
#                        ones bioring-bench dlopen()s at run time (alloc/backing.cpp:
#                        libmimalloc.so.2 by soname, found through LD_LIBRARY_PATH)
#   OUT/glibc/           this machine's libc, libm and dynamic loader: used only where the
#                        host's glibc cannot run the binaries (too old, or none), by starting
#                        each binary through OUT/glibc/ld-linux-x86-64.so.2 (BENCH_LAUNCH)
#   OUT/bin/             taskset and awk, for a host that lacks them (last on PATH)
#   OUT/MANIFEST.txt     source commit, build type, the glibc the binaries need, checksums
#
# The bundle is checked before it is declared good: every ELF in it resolves its libraries
# inside it (apart from glibc's) with `env -i LD_LIBRARY_PATH=OUT/lib ldd`, and entirely
# inside it through the carried loader; a short NOP run loads libmimalloc from OUT/lib in
# both modes; the whole stays under 48 MiB (a device call carries at most 64 MiB).
set -euo pipefail

if [[ $# -ne 2 || ! -d $1 ]]; then
    echo "usage: bench/bundle.sh BUILD_DIR OUT_DIR   (BUILD_DIR: a Release build with bioring-bench, uring-loop, bench-rusage)" >&2
    exit 2
fi
BUILD=$(readlink -f "$1")
OUT=$(readlink -m "$2")
HERE=$(dirname "$(readlink -f "$0")")
[[ $OUT != *[[:space:]]* ]] || { echo "bundle.sh: OUT_DIR must not contain white space: $OUT" >&2; exit 2; }
BINS=(bioring-bench uring-loop bench-rusage)
for b in "${BINS[@]}"; do
    [[ -x $BUILD/bench/$b ]] || { echo "bundle.sh: $BUILD/bench/$b is missing: build the targets ${BINS[*]}" >&2; exit 1; }
done
for tool in ldd objdump sha256sum; do
    command -v $tool >/dev/null || { echo "bundle.sh: $tool is needed" >&2; exit 1; }
done
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" 2>/dev/null; }
if [[ -n $(cache_value BIORING_SANITIZE) ]]; then
    echo "bundle.sh: $BUILD is a sanitizer build (BIORING_SANITIZE=$(cache_value BIORING_SANITIZE)): its figures would mean nothing" >&2
    exit 1
fi
[[ $(cache_value CMAKE_BUILD_TYPE) == Release ]] ||
    echo "bundle.sh: warning: $BUILD is a '$(cache_value CMAKE_BUILD_TYPE)' build, not Release" >&2

if [[ -e $OUT ]]; then
    if [[ -f $OUT/.bioring-bundle ]]; then
        rm -rf "$OUT"
    elif [[ -n $(ls -A "$OUT") ]]; then
        echo "bundle.sh: $OUT exists and is not a bundle: refusing to overwrite it" >&2
        exit 1
    fi
fi
mkdir -p "$OUT"/{bench,lib,glibc,bin/.carried}
touch "$OUT/.bioring-bundle"

# glibc's own objects stay the host's (they must match its loader); everything else travels.
is_glibc() { [[ $1 =~ ^(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl)\.so\.[0-9]+$|^ld-linux ]]; }
INTERP=""
# take FILE: copy FILE's libraries into lib/ (or glibc/), by soname; fail on "not found".
take() {
    local line name path
    while IFS= read -r line; do
        if [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ not\ found ]]; then
            echo "bundle.sh: $1 needs ${BASH_REMATCH[1]}, which is not found here" >&2
            exit 1
        elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ ([^[:space:]]+) ]]; then
            name=${BASH_REMATCH[1]}
            path=${BASH_REMATCH[2]}
            if is_glibc "$name"; then
                cp -L "$path" "$OUT/glibc/$name"
            else
                cp -L "$path" "$OUT/lib/$name"
            fi
        elif [[ $line =~ ^[[:space:]]*(/[^[:space:]]*ld-linux[^[:space:]]*) ]]; then
            INTERP=${BASH_REMATCH[1]}
        fi
    done < <(ldd "$1")
}

for b in "${BINS[@]}"; do
    cp "$BUILD/bench/$b" "$OUT/bench/$b"
    take "$BUILD/bench/$b"
done
cp "$HERE/scaling.sh" "$OUT/bench/scaling.sh"

# The libraries bioring-bench dlopen()s by soname (alloc/backing.cpp). Missing one is not
# fatal for the bench (it falls back to aligned_alloc/mmap), but it changes what is measured.
find_lib() { # SONAME: its path on this machine
    local ldc p
    for ldc in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
        if command -v "$ldc" >/dev/null; then
            p=$("$ldc" -p | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }')
            [[ -n $p ]] && { echo "$p"; return; }
        fi
    done
    for p in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/local/lib /lib64 /usr/lib64; do
        [[ -e $p/$1 ]] && { echo "$p/$1"; return; }
    done
}
DLOPENED=$(grep -aoE 'libmimalloc\.so\.[0-9]+' "$BUILD/bench/bioring-bench" | sort -u || true)
[[ -n $DLOPENED ]] || echo "bundle.sh: warning: bioring-bench names no libmimalloc.so.N to dlopen" >&2
for so in $DLOPENED; do
    p=$(find_lib "$so")
    if [[ -z $p ]]; then
        echo "bundle.sh: warning: $so (dlopen()ed by alloc/) is not on this machine: the bundle's bioring-bench will use aligned_alloc/mmap slabs" >&2
        continue
    fi
    cp -L "$p" "$OUT/lib/$so"
    take "$p"
done

# Fallback tools for a bare host. Each is started through the carried loader, so it runs
# whatever the host's libc.
for tool in taskset awk; do
    t=$(command -v $tool) || { echo "bundle.sh: warning: no $tool here to carry" >&2; continue; }
    t=$(readlink -f "$t")
    cp "$t" "$OUT/bin/.carried/$tool"
    take "$t"
    cat >"$OUT/bin/$tool" <<EOF
#!/bin/sh
# $tool from the machine that made this bundle, for a host without one (run-scaling puts
# bin/ last on PATH); started through the carried loader so that the host's libc does not matter.
B=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")
exec "\$B/glibc/$(basename "$INTERP")" --inhibit-cache --library-path "\$B/lib:\$B/glibc" "\$B/bin/.carried/$tool" "\$@"
EOF
    chmod +x "$OUT/bin/$tool"
done
[[ -n $INTERP ]] || { echo "bundle.sh: ldd named no dynamic loader" >&2; exit 1; }
cp -L "$INTERP" "$OUT/glibc/$(basename "$INTERP")"
LOADER=$(basename "$INTERP")

cat >"$OUT/run-scaling" <<EOF
#!/usr/bin/env bash
# run-scaling: bench/scaling.sh from this bundle (made by bench/bundle.sh), with the bundle
# as its BUILD_DIR; every scaling.sh variable works (THREADS REPS RUN_SECONDS QD SIZE
# WORKLOADS FILE_DIR RESULTS ...). The binaries find their libraries in lib/. Where the
# host's glibc cannot start them (older than MANIFEST.txt says, or none), or with
# BUNDLE_GLIBC=1, each is started through the carried glibc/$LOADER instead.
set -euo pipefail
B=\$(dirname "\$(readlink -f "\$0")")
export LD_LIBRARY_PATH=\$B/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PATH=\$PATH:\$B/bin
if [[ -z \${BENCH_LAUNCH:-} ]]; then
    launch="\$B/glibc/$LOADER --inhibit-cache --library-path \$B/lib:\$B/glibc"
    if [[ \${BUNDLE_GLIBC:-0} == 1 ]]; then
        export BENCH_LAUNCH=\$launch
    elif ! err=\$( { "\$B/bench/bioring-bench" --help && "\$B/bench/uring-loop" --help &&
                    { "\$B/bench/bench-rusage" 2>&1 || true; } | grep -q '^usage: bench-rusage'; } 2>&1 >/dev/null); then
        echo "run-scaling: the host cannot start the binaries itself (\${err:0:300}); using the carried glibc" >&2
        export BENCH_LAUNCH=\$launch
    fi
fi
exec bash "\$B/bench/scaling.sh" "\$B" "\$@"
EOF
chmod +x "$OUT/run-scaling"

# --- checks ------------------------------------------------------------------------------
fail() { echo "bundle.sh: FAIL: $*" >&2; exit 1; }
elfs=()
for f in "$OUT"/bench/* "$OUT"/lib/* "$OUT"/bin/.carried/*; do
    [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] && elfs+=("$f")
done
# 1. With the host's loader: everything but glibc resolves inside lib/.
for f in "${elfs[@]}"; do
    while IFS= read -r line; do
        if [[ $line == *"not found"* ]]; then
            fail "$f: $line (env -i LD_LIBRARY_PATH=$OUT/lib ldd)"
        elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ ([^[:space:]]+) ]]; then
            name=${BASH_REMATCH[1]}
            path=${BASH_REMATCH[2]}
            is_glibc "$name" || [[ $path == "$OUT/lib/"* ]] ||
                fail "$f: $name resolves to $path, outside the bundle"
        fi
    done < <(env -i LD_LIBRARY_PATH="$OUT/lib" ldd "$f")
done
# 2. With the carried loader: everything, glibc included, resolves inside the bundle.
for f in "$OUT"/bench/{bioring-bench,uring-loop,bench-rusage} "$OUT"/bin/.carried/*; do
    while IFS= read -r line; do
        [[ $line =~ =\>\ ([^[:space:]]+) ]] || continue
        [[ ${BASH_REMATCH[1]} == "$OUT/"* ]] || fail "$f: '$line' outside the bundle (carried loader)"
    done < <(env -i "$OUT/glibc/$LOADER" --inhibit-cache --library-path "$OUT/lib:$OUT/glibc" --list "$f")
done
# 3. A short NOP run in each mode loads libmimalloc from lib/ (alloc/ dlopen()s it).
for mode in host carried; do
    launch=()
    [[ $mode == carried ]] && launch=("$OUT/glibc/$LOADER" --inhibit-cache --library-path "$OUT/lib:$OUT/glibc")
    log=$(env -i LD_LIBRARY_PATH="$OUT/lib" LD_DEBUG=libs "${launch[@]}" "$OUT/bench/bioring-bench" \
        --rw nop --qd 4 --seconds 0.1 --json 2>&1 >/dev/null) || fail "bioring-bench ($mode loader) did not run: ${log: -500}"
    for so in $DLOPENED; do
        grep -q "calling init: $OUT/lib/$so" <<<"$log" || fail "bioring-bench ($mode loader) did not load $OUT/lib/$so"
    done
    [[ $mode == host ]] || grep -q "calling init: $OUT/glibc/libc.so" <<<"$log" ||
        fail "the carried loader did not use the carried libc"
done
# 4. Small enough to carry.
bytes=$(du -sb "$OUT" | cut -f1)
((bytes < 48 << 20)) || fail "the bundle is $((bytes >> 20)) MiB (limit 48 MiB)"

need_glibc=$(for f in "$OUT"/bench/* "$OUT"/lib/*; do
    [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] && objdump -T "$f"
done | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sort -t. -k2,2n -u | tail -1)
{
    echo "bioring scaling bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) by bench/bundle.sh"
    src=$(cache_value CMAKE_HOME_DIRECTORY)
    if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
        echo "source: $src at $(git -C "$src" rev-parse HEAD)$(git -C "$src" status --porcelain --untracked-files=no -- alloc runtime io bench 2>/dev/null | grep -q . && echo ' (uncommitted changes in alloc/ runtime/ io/ bench/ now; the binaries are from the build time)')"
    else
        echo "source: ${src:-unknown} (not a git work tree)"
    fi
    echo "build: $BUILD ($(cache_value CMAKE_BUILD_TYPE), $($(cache_value CMAKE_CXX_COMPILER) --version 2>/dev/null | head -1))"
    echo "made on: $(uname -sr), $(ldd --version 2>&1 | head -1)"
    echo "the binaries need ${need_glibc:-?} or newer from the host; otherwise run-scaling uses glibc/ (BUNDLE_GLIBC=1 forces it)"
    echo "run: RESULTS=/some/dir ./run-scaling   (env as bench/scaling.sh: THREADS REPS RUN_SECONDS ...)"
    echo
    (cd "$OUT" && find . -type f ! -name MANIFEST.txt ! -name .bioring-bundle | sort | xargs sha256sum)
} >"$OUT/MANIFEST.txt"
echo "bundle.sh: $OUT: $((bytes >> 10)) KiB, needs ${need_glibc:-?} (or its own glibc/); checks passed"
