#!/usr/bin/env bash
# Every subcommand answers bad arguments with one line on stderr and exit 2,
# runtime failures with one line and exit 1.
set -uo pipefail
WEFT=${1:?usage: $0 PATH_TO_WEFT}
fails=0
expect() {  # expect CODE ARGS...
  local want=$1; shift
  local err rc
  err=$("$WEFT" "$@" 2>&1 >/dev/null); rc=$?
  local lines
  lines=$(printf '%s' "$err" | grep -c '' || true)
  if [ "$rc" -ne "$want" ] || { [ "$want" -ne 0 ] && [ "$lines" -ne 1 ]; }; then
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

# weft netstat, on saved snapshots (--from-file) until the daemon answers.
HERE=$(cd "$(dirname "$0")" && pwd)
SNAP=$HERE/netstat_snapshot.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf '{"schema": "weft-netstat/1", "sockets": [' >"$TMP/truncated.json"
sed 's/"proto": "udp"/"proto": "sctp"/' "$SNAP" >"$TMP/bad_proto.json"
expect 0 netstat --from-file "$SNAP"
expect 0 netstat --from-file "$SNAP" -tulpn
expect 0 netstat --from-file "$SNAP" -a -e -p --info
expect 0 netstat --from-file "$SNAP" -s
expect 0 netstat --from-file "$SNAP" --json -t
expect 2 netstat --from-file "$SNAP" --no-such-flag
expect 2 netstat --from-file "$SNAP" stray-argument
expect 2 netstat --from-file "$SNAP" -s --info
expect 2 netstat --from-file "$SNAP" --json -s
expect 2 netstat --from-file - -c
expect 1 netstat --from-file "$TMP/missing.json"
expect 1 netstat --from-file "$TMP/truncated.json"
expect 1 netstat --from-file "$TMP/bad_proto.json"
expect 1 netstat --host "$TMP/no-such-host.sock"

check() {  # check NAME WANT GOT
  if [ "$2" = "$3" ]; then
    echo "ok: $1"
  else
    echo "FAIL: $1: want '$2', got '$3'"
    fails=$((fails + 1))
  fi
}
out=$("$WEFT" netstat --from-file "$SNAP" -tn)
check "netstat -tn header" "Active Internet connections (w/o servers)" "$(sed -n 1p <<<"$out")"
check "netstat -tn columns" "Proto Recv-Q Send-Q Local Address           Foreign Address         State" "$(sed -n 2p <<<"$out")"
check "netstat -tn row" "tcp       12   3400 192.0.2.10:7            192.0.2.20:50123        ESTABLISHED" "$(sed -n 3p <<<"$out")"
check "netstat -tn rows" 3 "$(grep -c '' <<<"$out")"
out=$("$WEFT" netstat --from-file - -tulpn <"$SNAP")
check "netstat -tulpn header" "Active Internet connections (only servers)" "$(sed -n 1p <<<"$out")"
check "netstat -tulpn listener" "tcp        0      0 0.0.0.0:7               0.0.0.0:*               LISTEN      -" "$(sed -n 3p <<<"$out")"
out=$("$WEFT" netstat --from-file "$SNAP" -st)
check "netstat -st" "    3 active connection openings" "$(grep 'active connection' <<<"$out")"
out=$("$WEFT" netstat --from-file "$SNAP" --json -u)
check "netstat --json -u schema" 1 "$(grep -c '"schema": "weft-netstat/1"' <<<"$out")"
check "netstat --json -u sockets" 1 "$(grep -c '"proto": "udp"' <<<"$out")"
err=$("$WEFT" netstat --from-file "$TMP/bad_proto.json" 2>&1 >/dev/null)
check "netstat bad snapshot message" "weft netstat: invalid snapshot: sockets[2].proto: 'sctp' is not tcp or udp" "$err"
# -c prints once a second until SIGINT, then exits 0.
timeout --preserve-status -s INT 1.5 "$WEFT" netstat --from-file "$SNAP" -c >"$TMP/c.out"
check "netstat -c exit on SIGINT" 0 "$?"
check "netstat -c repeats" 2 "$(grep -c '^Active' "$TMP/c.out")"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
