#!/usr/bin/env bash
# Every subcommand answers bad arguments with one line on stderr and exit 2.
set -uo pipefail
WEFT=${1:?usage: $0 PATH_TO_WEFT}
fails=0
expect() {  # expect CODE ARGS...
  local want=$1; shift
  local err rc
  err=$("$WEFT" "$@" 2>&1 >/dev/null); rc=$?
  local lines
  lines=$(printf '%s' "$err" | grep -c '' || true)
  if [ "$rc" -ne "$want" ] || { [ "$want" -eq 2 ] && [ "$lines" -ne 1 ]; }; then
    echo "FAIL: weft $* -> exit $rc (want $want), stderr ($lines lines): $err"
    fails=$((fails + 1))
  else
    echo "ok: weft $* -> $rc: $err"
  fi
}
expect 2
expect 2 nosuchcommand
expect 2 host
expect 2 host --tun t0
expect 2 host --tun t0 --addr 192.0.2.2
expect 2 host --tun t0 --addr 192.0.2.300/24
expect 2 host --tun t0 --addr 192.0.2.2/24 --mtu 20
expect 2 host --tun t0 --addr 192.0.2.2/24 --mtu abc
expect 2 host --tun t0 --addr 192.0.2.2/24 --services echo,bogus
expect 2 host --tun t0 --addr 192.0.2.2/24 --kernel-addr 198.51.100.1
expect 2 host --tun t0 --addr 192.0.2.2/24 --kernel-addr 192.0.2.2
expect 2 host --tun t0 --addr 192.0.2.2/24 --gateway 203.0.113.1
expect 2 host --tun t0 --addr 192.0.2.0/24
expect 2 host --tun t0 --addr 192.0.2.2/24 --unknown-flag
expect 2 sim --loss 2
expect 2 sim --clients 0
expect 0 sim --clients 2
expect 0 --help
expect 1 host --tun this-name-is-too-long-for-linux --addr 192.0.2.2/24
[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
