# Shared by the network tests. Each test re-executes itself inside a fresh
# network namespace (unshare -n): the namespace, its TUN device and every
# address in it vanish when the test exits, whatever way it exits.
# Addresses: 192.0.2.0/24 only (RFC 5737 TEST-NET-1).

WEFT=${1:?usage: $0 PATH_TO_WEFT}
WEFT=$(readlink -f "$WEFT")
PY=/usr/bin/python3   # Debian's python, which has scapy
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
  # Exit 77 is ctest's SKIP; under CI=true nothing may skip.
  if [ "${CI:-}" = "true" ]; then echo "FAIL (would skip under CI): $*"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "PASS: $*"; }

need_root_tun() {
  [ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace and a TUN device"
  [ -c /dev/net/tun ] || skip "needs /dev/net/tun"
  command -v unshare >/dev/null || skip "needs unshare (util-linux)"
  if [ -z "${WEFT_IN_NETNS:-}" ]; then
    export WEFT_IN_NETNS=1
    rm -rf "$TMP"  # exec runs no EXIT trap; the re-executed test makes its own
    exec unshare -n -- bash "$0" "$@"
  fi
  ip link set lo up
}

# need_root_netns: as need_root_tun, for tests that need a network
# namespace of their own but no TUN device (or can do without one).
need_root_netns() {
  [ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace"
  command -v unshare >/dev/null || skip "needs unshare (util-linux)"
  if [ -z "${WEFT_IN_NETNS:-}" ]; then
    export WEFT_IN_NETNS=1
    rm -rf "$TMP"  # exec runs no EXIT trap; the re-executed test makes its own
    exec unshare -n -- bash "$0" "$@"
  fi
  ip link set lo up
}

TMP=$(mktemp -d /tmp/weft-net.XXXXXX)
# Control sockets of the hosts this test starts live in its own directory,
# never beside a real daemon's.
export WEFT_RUNTIME_DIR=$TMP/run
HOST_PID=""
cleanup() {
  if [ -n "$HOST_PID" ] && kill -0 "$HOST_PID" 2>/dev/null; then kill -TERM "$HOST_PID" 2>/dev/null; wait "$HOST_PID" 2>/dev/null; fi
  [ -n "${WEFT_KEEP_TMP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

# start_host NAME ARGS...: starts `weft host` in the background and waits for its ready line.
start_host() {
  local log=$TMP/host.log
  "$WEFT" host "$@" >"$log" 2>&1 &
  HOST_PID=$!
  for _ in $(seq 1 100); do
    grep -q "^weft host: ready on" "$log" && return 0
    kill -0 "$HOST_PID" 2>/dev/null || { cat "$log"; fail "weft host exited before it was ready"; }
    sleep 0.05
  done
  cat "$log"; fail "weft host not ready after 5 s"
}

# stop_host: SIGTERM, expects exit 0; counters land in $TMP/host.log.
stop_host() {
  kill -TERM "$HOST_PID"
  local rc=0
  wait "$HOST_PID" || rc=$?
  HOST_PID=""
  [ "$rc" -eq 0 ] || { cat "$TMP/host.log"; fail "weft host exited $rc on SIGTERM"; }
}

# counter NAME: a counter's value from the last counters block in the log.
counter() {
  awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "$TMP/host.log"
}
