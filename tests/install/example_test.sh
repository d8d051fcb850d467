#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install bioring into a scratch prefix, build the README's example program as an outside
# project against it (CMake package and pkg-config both), and run it. The example is taken
# from README.md itself, so the README can never drift from what is tested.
# usage: example_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d "$build/install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null

mkdir -p "$work/example"
awk '/<!-- example:begin -->/{on=1; next} /<!-- example:end -->/{on=0} on && !/^```/' \
    "$src/README.md" > "$work/example/main.cpp"
if [[ ! -s $work/example/main.cpp ]]; then
    echo "README.md has no example between the example:begin/end markers" >&2
    exit 1
fi
cat > "$work/example/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(bioring_example CXX)
find_package(bioring 0.1 REQUIRED)
add_executable(example main.cpp)
target_link_libraries(example PRIVATE bioring::io)
CMAKE
cmake -S "$work/example" -B "$work/example/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example/build" >/dev/null

# pkg-config route: same source, plain g++.
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" \
    g++ -O2 -o "$work/example/example-pc" "$work/example/main.cpp" \
    $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" \
      pkg-config --cflags --libs bioring)

data=${BIORING_TEST_DIR:-/dev/shm}/bioring-example.$$
"$work/example/build/example" "$data"
"$work/example/example-pc" "$data"
rm -f "$data"
echo "installed example built with find_package and pkg-config and ran"
