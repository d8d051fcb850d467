#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install bioring into a scratch prefix and use it as an outside project would:
#  - the README's example (taken from README.md itself, so the README cannot drift) and
#    tests/install/umbrella_example.cpp (only <bioring/bioring.hpp>) build with
#    find_package(bioring) and with pkg-config under -std=c++20 and -std=c++23, and run;
#  - the installed headers are exactly the public ones plus the detail/ headers that the
#    public ones include, every public header compiles on its own, and the umbrella
#    includes every public header.
# usage: example_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d "$build/install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "install test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
inc=$work/prefix/include

# --- the installed header set -------------------------------------------------------
[[ -z $(find "$inc" -mindepth 1 -maxdepth 1 ! -name bioring) ]] ||
    fail "something other than include/bioring/ was installed: $(ls "$inc")"
(cd "$inc" && find bioring -name '*.hpp' | sort) > "$work/installed"
# What the public headers reach through #include <bioring/...>, transitively.
grep -v '/detail/' "$work/installed" > "$work/public"
cp "$work/public" "$work/reached"
while :; do
    (cd "$inc" && xargs -a "$work/reached" grep -ho '#include <bioring/[^>]*>' || true) |
        sed 's/#include <\(.*\)>/\1/' | cat - "$work/reached" | sort -u > "$work/reached.new"
    missing=$(comm -23 "$work/reached.new" "$work/installed")
    [[ -z $missing ]] || fail "installed headers include headers that are not installed: $missing"
    cmp -s "$work/reached.new" "$work/reached" && break
    mv "$work/reached.new" "$work/reached"
done
extra=$(comm -13 "$work/reached" "$work/installed")
[[ -z $extra ]] || fail "installed but no public header needs them (internal headers must not be installed): $extra"
# Every public header is in the umbrella, and the umbrella names only public headers.
grep -o '#include <bioring/[^>]*>' "$inc/bioring/bioring.hpp" | sed 's/#include <\(.*\)>/\1/' |
    sort > "$work/umbrella"
grep -vx 'bioring/bioring.hpp' "$work/public" > "$work/public-layers"
[[ $(comm -3 "$work/umbrella" "$work/public-layers") == "" ]] ||
    fail "the umbrella and the public headers differ: $(comm -3 "$work/umbrella" "$work/public-layers" | tr '\n' ' ')"
# Each public header compiles alone (it includes what it uses).
while read -r h; do
    printf '#include <%s>\n' "$h" | g++ -std=c++20 -fsyntax-only -I"$inc" -x c++ - ||
        fail "<$h> does not compile on its own"
done < "$work/public"
# The library refuses C++17 with a clear message rather than a cascade of errors.
if printf '#include <bioring/bioring.hpp>\n' | g++ -std=c++17 -fsyntax-only -I"$inc" -x c++ - \
        2> "$work/cxx17.err"; then
    fail "<bioring/bioring.hpp> compiled under -std=c++17"
fi
grep -q 'bioring needs C++20' "$work/cxx17.err" || fail "no clear message under -std=c++17"

# --- the two programs, both ways -------------------------------------------------------
mkdir -p "$work/example"
awk '/<!-- example:begin -->/{on=1; next} /<!-- example:end -->/{on=0} on && !/^```/' \
    "$src/README.md" > "$work/example/main.cpp"
[[ -s $work/example/main.cpp ]] || fail "README.md has no example between the example:begin/end markers"
cp "$src/tests/install/umbrella_example.cpp" "$work/example/umbrella.cpp"
cat > "$work/example/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(bioring_example CXX)
find_package(bioring 0.1 REQUIRED)
add_executable(example main.cpp)
target_link_libraries(example PRIVATE bioring::io)
add_executable(umbrella umbrella.cpp)
target_link_libraries(umbrella PRIVATE bioring::io)
CMAKE
cmake -S "$work/example" -B "$work/example/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example/build" >/dev/null

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
pc=$(pkg-config --cflags --libs bioring)
[[ $pc != *-std=* ]] || fail "pkg-config's flags force a language standard: $pc"
for std in c++20 c++23; do
    for prog in main umbrella; do
        # shellcheck disable=SC2086
        g++ -std=$std -O2 -Wall -Wextra -Werror -o "$work/example/$prog-$std" \
            "$work/example/$prog.cpp" $pc
    done
done

data=${BIORING_TEST_DIR:-/dev/shm}/bioring-example.$$
trap 'rm -rf "$work"; rm -f "$data"' EXIT
"$work/example/build/example" "$data"
"$work/example/build/umbrella" "$data"
for std in c++20 c++23; do
    "$work/example/main-$std" "$data"
    "$work/example/umbrella-$std" "$data"
done
echo "installed tree: headers checked; README example and umbrella program built with" \
     "find_package and pkg-config (C++20, C++23) and ran"
