#!/usr/bin/env bash
# Runs every packetdrill script in tests/packetdrill/scripts against
# libweft_packetdrill.so (virtual time, no privileges, no network):
#   tests/packetdrill/run_scripts.sh BUILD_DIR
# The tool is $PACKETDRILL, else ../shared/tools/packetdrill/packetdrill
# beside the repository. Without one, says so and exits 0: the scripts
# are not run (scripts/test counts this apart from failures).
# Prints ok/FAIL per script (a failure's output follows it) and
# "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no build directory $1" >&2; exit 2; }
SO="$BUILD/libweft_packetdrill.so"
PD=${PACKETDRILL:-$REPO/../shared/tools/packetdrill/packetdrill}
if [ ! -x "$PD" ]; then
  echo "packetdrill scripts: not run (no packetdrill binary: set PACKETDRILL or build it, see README)"
  exit 0
fi
if [ ! -f "$SO" ]; then
  echo "$0: $SO not built (target weft_packetdrill)" >&2
  exit 2
fi
# The addresses the scripts use: weft is 192.0.2.2, the scripted peer 192.0.2.1.
pass=0 fail=0
for script in "$HERE"/scripts/*.pkt; do
  name=$(basename "$script")
  # The tool resolves `...` paths and writes nothing beside the script, but
  # run from the scripts' folder so that relative paths in them work.
  if out=$(cd "$HERE/scripts" && timeout 60 "$PD" --ip_version=ipv4 --local_ip=192.0.2.2 --remote_ip=192.0.2.1 \
             --so_filename="$SO" --so_flags="local_ip=192.0.2.2" "$name" 2>&1); then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    sed 's/^/     /' <<<"$out"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
