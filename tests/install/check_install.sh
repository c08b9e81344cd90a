#!/usr/bin/env bash
# Installs a built weft into a temporary prefix and builds a tiny project
# against it with find_package(weft), linking weft::tcp alone, then runs it:
#   tests/install/check_install.sh BUILD_DIR
# What packaging relies on: every layer target installs and exports, the
# headers keep the tree's layout, weftConfig.cmake finds the dependencies.
set -euo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
for f in lib/libweft_tcp.a lib/libweft_base.a lib/libweft-client.so include/weft/tcp/tcb.hpp \
         include/weft/client/weft.h lib/cmake/weft/weftConfig.cmake lib/cmake/weft/weftTargets.cmake; do
  [ -e "$TMP/prefix/$f" ] || { echo "check_install: $f not installed" >&2; exit 1; }
done
cmake -S "$HERE/consumer" -B "$TMP/build" -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$TMP/build" >/dev/null
out=$("$TMP/build/consumer")
echo "$out"
[[ $out == "rto 1000 ms, checksum "* ]] || { echo "check_install: unexpected output" >&2; exit 1; }
echo "check_install: find_package(weft) and weft::tcp work from an install"
