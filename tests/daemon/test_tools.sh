#!/usr/bin/env bash
# weft cat and weft ping between two weft host daemons joined by the
# IP-in-UDP link on 127.0.0.1 (no root, no TUN): host a 192.0.2.10 and host
# b 192.0.2.20; 192.0.2.99 is a tunnel peer of a's mapped to a port nobody
# reads, so what is sent there vanishes. Each tool picks its host with
# WEFT_HOST. Checks the exact one-line errors and exit codes, 10 MB both
# ways with SHA-256, end-of-stream handling, resets, UDP, ping output.
set -uo pipefail
WEFT=${1:?usage: $0 PATH_TO_WEFT}
TMP=$(mktemp -d /tmp/weft-tools.XXXXXX)
chmod 755 "$TMP"   # the non-root case below reaches the control socket here
export WEFT_RUNTIME_DIR=$TMP/run
unset WEFT_HOST
fails=0
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }   # seconds since $1
is() { awk -v t="$1" "BEGIN { exit !($2) }"; }   # is SECONDS 't >= 1 && t < 3'
# Every client runs under a timeout: a hang is a failure, not a stuck test.
A() { WEFT_HOST=a timeout 60 "$WEFT" "$@"; }
B() { WEFT_HOST=b timeout 60 "$WEFT" "$@"; }

# ---------------------------------------------------------------- hosts
wait_ready() {  # FILE PID
  local i
  for i in $(seq 100); do
    grep -q '^weft host: ready on ' "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
free_ports() {  # three free UDP ports on 127.0.0.1
  /usr/bin/python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}
started=0
for _ in 1 2 3 4 5; do
  read -r PA PB PZ < <(free_ports)
  "$WEFT" host --name a --ecn --addr 192.0.2.10/24 --udp-link "127.0.0.1:$PA" \
    --udp-peer "192.0.2.20=127.0.0.1:$PB" --udp-peer "192.0.2.99=127.0.0.1:$PZ" >"$TMP/a.log" 2>&1 &
  HA=$!
  "$WEFT" host --name b --addr 192.0.2.20/24 --udp-link "127.0.0.1:$PB" \
    --udp-peer "192.0.2.10=127.0.0.1:$PA" --services echo >"$TMP/b.log" 2>&1 &
  HB=$!
  PIDS=("$HA" "$HB")
  if wait_ready "$TMP/a.log" "$HA" && wait_ready "$TMP/b.log" "$HB"; then started=1; break; fi
  kill "$HA" "$HB" 2>/dev/null; wait "$HA" "$HB" 2>/dev/null; PIDS=()
  grep -qi 'in use' "$TMP/a.log" "$TMP/b.log" || break
done
if [ "$started" -ne 1 ]; then
  echo "FAIL: hosts not ready: a: $(cat "$TMP/a.log") b: $(cat "$TMP/b.log")"
  exit 1
fi
echo "hosts: a 192.0.2.10 on 127.0.0.1:$PA, b 192.0.2.20 on 127.0.0.1:$PB, 192.0.2.99 -> 127.0.0.1:$PZ (nobody)"

# listening PROTO PORT: wait (up to 5 s) until host b has a listener there.
listening() {
  local i
  for i in $(seq 100); do
    WEFT_HOST=b "$WEFT" netstat "-${1}ln" 2>/dev/null | grep -q "^${1}[^ ]* .*:$2 " && return 0
    sleep 0.05
  done
  echo "FAIL: nothing listening on b $1 port $2"; fails=$((fails + 1))
  return 1
}

# ---------------------------------------------------------------- usage
usage() {  # ARGS...: exit 2 and exactly one line on stderr, before any host is asked
  local err rc
  err=$(WEFT_HOST=nosuch "$WEFT" "$@" 2>&1 >/dev/null </dev/null); rc=$?
  if [ "$rc" -ne 2 ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; then
    fail "weft $* -> exit $rc (want 2), stderr: $err"
  else
    ok "weft $* -> 2: $err"
  fi
}
usage cat
usage cat 192.0.2.20
usage cat 192.0.2.20 80 81
usage cat example.com 80
usage cat 192.0.2.20 0
usage cat 192.0.2.20 65536
usage cat 192.0.2.20 http
usage cat -w 0 192.0.2.20 80
usage cat -w abc 192.0.2.20 80
usage cat -l
usage cat -l 192.0.2.20 80 81
usage cat -l -p 80 81
usage cat -s 1.2.3 192.0.2.20 80
usage cat --bogus 192.0.2.20 80
usage ping
usage ping 192.0.2.20 192.0.2.21
usage ping example.com
usage ping -c 0 192.0.2.20
usage ping -s 65508 192.0.2.20
usage ping -i 0 192.0.2.20
usage ping -W 0 192.0.2.20

# ------------------------------------------------------ no daemon there
expect_err() {  # WANT_RC WANT_STDERR CMD...: exact stderr and exit code
  local want_rc=$1 want=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null </dev/null); rc=$?
  if [ "$rc" -ne "$want_rc" ] || [ "$err" != "$want" ]; then
    fail "$* -> exit $rc, stderr '$err' (want $want_rc, '$want')"
  else
    ok "$* -> $rc: $err"
  fi
}
expect_err 1 "weft cat: no weft host 'nosuch' at $WEFT_RUNTIME_DIR/nosuch/control.sock: No such file or directory" \
  env WEFT_HOST=nosuch "$WEFT" cat 192.0.2.20 80
expect_err 1 "weft ping: no weft host 'nosuch' at $WEFT_RUNTIME_DIR/nosuch/control.sock: No such file or directory" \
  env WEFT_HOST=nosuch "$WEFT" ping -c 1 192.0.2.20

# ---------------------------------------------------------------- errors
expect_err 1 "weft cat: connect 192.0.2.20:4444: Connection refused" A cat 192.0.2.20 4444
# No route (outside a's prefix, no gateway): refused at once, not timed out.
expect_err 1 "weft cat: connect 203.0.113.1:80: Network is unreachable" A cat 203.0.113.1 80
t0=$(now)
expect_err 1 "weft cat: connect 192.0.2.99:4444: Connection timed out" A cat -w 1 192.0.2.99 4444
t=$(elapsed "$t0")
if is "$t" 't >= 0.9 && t < 3'; then ok "-w 1 gave up after ${t}s"; else fail "-w 1 gave up after ${t}s (want 1-3 s)"; fi

# A port below 1024 is the daemon's to refuse (it trusts SO_PEERCRED): as
# nobody when we are root, else as ourselves.
if [ "$(id -u)" -eq 0 ]; then
  if command -v setpriv >/dev/null; then
    # (The test opens a's directory and socket to everyone for this; a
    # daemon itself never does: --socket-group is how others get in.)
    chmod 0755 "$WEFT_RUNTIME_DIR/a"; chmod 0666 "$WEFT_RUNTIME_DIR/a/control.sock"
    expect_err 1 "weft cat: bind 0.0.0.0:80: Permission denied" \
      setpriv --reuid=nobody --regid=nogroup --clear-groups env WEFT_HOST=a "$WEFT" cat -l 80
    chmod 0700 "$WEFT_RUNTIME_DIR/a"; chmod 0600 "$WEFT_RUNTIME_DIR/a/control.sock"
  else
    echo "skip: no setpriv for the non-root bind"
  fi
else
  expect_err 1 "weft cat: bind 0.0.0.0:80: Permission denied" A cat -l 80
fi

# A port someone holds: the second listener is refused.
WEFT_HOST=a "$WEFT" cat -l 6010 </dev/zero >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do WEFT_HOST=a "$WEFT" netstat -ltn | grep -q ':6010 ' && break; sleep 0.1; done
expect_err 1 "weft cat: bind 0.0.0.0:6010: Address already in use" A cat -l 6010
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true

# ------------------------------------------------------- 10 MB, each way
head -c 10000000 /dev/urandom >"$TMP/in_a"
head -c 10000000 /dev/urandom >"$TMP/in_b"
sum() { sha256sum <"$1" | cut -d' ' -f1; }
transfer() {  # NAME PORT LISTENER_IN CLIENT_IN LISTENER_OUT CLIENT_OUT: b listens, a connects
  local name=$1 port=$2 lin=$3 cin=$4 lout=$5 cout=$6 l rc_l rc_c t0 t
  B cat -l "$port" <"$lin" >"$lout" 2>"$TMP/l.err" &
  l=$!
  listening t "$port"
  t0=$(now)
  A cat 192.0.2.20 "$port" <"$cin" >"$cout" 2>"$TMP/c.err"; rc_c=$?
  wait "$l"; rc_l=$?
  t=$(elapsed "$t0")
  if [ "$rc_c" -ne 0 ] || [ "$rc_l" -ne 0 ]; then
    fail "$name: exit client $rc_c ($(cat "$TMP/c.err")), listener $rc_l ($(cat "$TMP/l.err"))"
    return
  fi
  echo "$name: ${t}s until both ends exited"
}
check_same() {  # WHAT GOT WANT
  if [ -f "$2" ] && [ "$(sum "$2")" = "$(sum "$3")" ]; then ok "$1: SHA-256 matches"; else fail "$1: $(wc -c <"$2" 2>/dev/null) bytes, SHA-256 differs"; fi
}
transfer "a -> b, 10 MB" 5001 /dev/null "$TMP/in_a" "$TMP/out_b" /dev/null
check_same "a -> b" "$TMP/out_b" "$TMP/in_a"
transfer "b -> a, 10 MB" 5002 "$TMP/in_b" /dev/null /dev/null "$TMP/out_a"
check_same "b -> a" "$TMP/out_a" "$TMP/in_b"
rm -f "$TMP/out_a" "$TMP/out_b"
transfer "a <-> b at once, 10 MB each way" 5003 "$TMP/in_b" "$TMP/in_a" "$TMP/out_b" "$TMP/out_a"
check_same "both ways, at b" "$TMP/out_b" "$TMP/in_a"
check_same "both ways, at a" "$TMP/out_a" "$TMP/in_b"

# ------------------------------------------------------- end of stream
# The client's stdin ends first: it sends FIN and keeps reading. The
# listener's reply is written only once the client's data has arrived (so
# after the client's FIN), and the client must still be there to print it.
# The listener's stdin is a FIFO that only this shell writes (fd 9).
mkfifo "$TMP/late"
exec 9<>"$TMP/late"
B cat -l 5004 <"$TMP/late" >"$TMP/l.out" 2>"$TMP/l.err" 9>&- &
l=$!
listening t 5004
echo early | A cat 192.0.2.20 5004 >"$TMP/c.out" 2>"$TMP/c.err" 9>&- &
c=$!
for _ in $(seq 100); do [ -s "$TMP/l.out" ] && break; sleep 0.05; done
sleep 0.5
kill -0 "$c" 2>/dev/null; alive=$?
echo late >&9
exec 9>&-
wait "$c"; rc=$?
wait "$l"; rc_l=$?
if [ "$alive" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$rc_l" -eq 0 ] && [ "$(cat "$TMP/c.out")" = late ] &&
   [ "$(cat "$TMP/l.out")" = early ]; then
  ok "half close: client sent 'early' and FIN, waited, read 'late', both exit 0"
else
  fail "half close: client (alive after its FIN: $((1 - alive))) exit $rc got '$(cat "$TMP/c.out")' ($(cat "$TMP/c.err")); listener exit $rc_l got '$(cat "$TMP/l.out")' ($(cat "$TMP/l.err"))"
fi
# The listener's stdin ends first (at once): the client still sends all of
# its own, then both exit 0.
B cat -l 5005 </dev/null >"$TMP/l.out" 2>"$TMP/l.err" &
l=$!
listening t 5005
(echo one; sleep 0.5; echo two) | A cat 192.0.2.20 5005 >"$TMP/c.out" 2>"$TMP/c.err"; rc=$?
wait "$l"; rc_l=$?
if [ "$rc" -eq 0 ] && [ "$rc_l" -eq 0 ] && [ "$(cat "$TMP/l.out")" = "$(printf 'one\ntwo')" ] && [ ! -s "$TMP/c.out" ]; then
  ok "peer's FIN first: the client's stdin still goes through, both exit 0"
else
  fail "peer's FIN first: client exit $rc ($(cat "$TMP/c.err")); listener exit $rc_l got '$(cat "$TMP/l.out")'"
fi

# A reset: the listener is stopped, data arrives that it never reads, it
# is killed; its host resets the connection (unread data) and the client,
# idle on an open stdin, reports it. The stdins are FIFOs this shell holds
# open (no EOF) and writes to.
mkfifo "$TMP/hold_l" "$TMP/hold_c"
exec 7<>"$TMP/hold_l" 8<>"$TMP/hold_c"
WEFT_HOST=b "$WEFT" cat -l 5006 <"$TMP/hold_l" >/dev/null 2>&1 &
l=$!
PIDS+=("$l")
listening t 5006
WEFT_HOST=a timeout 30 "$WEFT" cat 192.0.2.20 5006 <"$TMP/hold_c" >/dev/null 2>"$TMP/c.err" &
c=$!
PIDS+=("$c")
sleep 0.3
kill -STOP "$l"
echo unread >&8
sleep 0.5
kill -KILL "$l"
wait "$l" 2>/dev/null
wait "$c"; rc=$?
exec 7>&- 8>&-
if [ "$rc" -eq 1 ] && [ "$(cat "$TMP/c.err")" = "weft cat: recv: Connection reset by peer" ]; then
  ok "reset -> exit 1: $(cat "$TMP/c.err")"
else
  fail "reset: exit $rc, stderr '$(cat "$TMP/c.err")'"
fi

# stdout closed: reported, exit 1 (as ncat reports its write error).
B cat -l 5007 <"$TMP/in_b" >/dev/null 2>/dev/null &
l=$!
listening t 5007
A cat 192.0.2.20 5007 </dev/null 2>"$TMP/c.err" | head -c 10 >/dev/null
rc=${PIPESTATUS[0]}
wait "$l"
if [ "$rc" -eq 1 ] && [ "$(cat "$TMP/c.err")" = "weft cat: write stdout: Broken pipe" ]; then
  ok "closed stdout -> exit 1: $(cat "$TMP/c.err")"
else
  fail "closed stdout: exit $rc, stderr '$(cat "$TMP/c.err")'"
fi

# ---------------------------------------------------------------- UDP
out=$(echo hello-udp | A cat -u -w 1 192.0.2.20 7 2>&1); rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = hello-udp ]; then ok "UDP round trip through b's echo service"; else fail "UDP echo: exit $rc, '$out'"; fi
echo pong | B cat -u -l -w 1 7001 >"$TMP/l.out" 2>"$TMP/l.err" &
l=$!
listening u 7001
(echo ping; sleep 1) | A cat -u -w 1 192.0.2.20 7001 >"$TMP/c.out" 2>"$TMP/c.err"; rc=$?
wait "$l"; rc_l=$?
if [ "$rc" -eq 0 ] && [ "$rc_l" -eq 0 ] && [ "$(cat "$TMP/c.out")" = pong ] && [ "$(cat "$TMP/l.out")" = ping ]; then
  ok "UDP -l: first datagram 'ping' picks the peer, 'pong' goes back"
else
  fail "UDP -l: client exit $rc got '$(cat "$TMP/c.out")' ($(cat "$TMP/c.err")); listener exit $rc_l got '$(cat "$TMP/l.out")' ($(cat "$TMP/l.err"))"
fi
expect_err 1 "weft cat: recv: Connection refused" bash -c "(echo x; sleep 2) | WEFT_HOST=a timeout 10 '$WEFT' cat -u 192.0.2.20 7777"

# ---------------------------------------------------------------- ping
A ping -c 3 192.0.2.20 >"$TMP/p.out" 2>"$TMP/p.err"; rc=$?
cat "$TMP/p.out"
mapfile -t L <"$TMP/p.out"
pat_reply='^64 bytes from 192\.0\.2\.20: icmp_seq=N ttl=64 time=[0-9]+(\.[0-9]+)? ms$'
good=1
[ "$rc" -eq 0 ] || good=0
[ "${#L[@]}" -eq 8 ] || good=0
[ "${L[0]:-}" = "PING 192.0.2.20 (192.0.2.20) 56(84) bytes of data." ] || good=0
for i in 1 2 3; do [[ "${L[$i]:-}" =~ ${pat_reply/N/$i} ]] || good=0; done
[ "${L[4]-x}" = "" ] || good=0
[ "${L[5]:-}" = "--- 192.0.2.20 ping statistics ---" ] || good=0
[[ "${L[6]:-}" =~ ^3\ packets\ transmitted,\ 3\ received,\ 0%\ packet\ loss,\ time\ (19[0-9][0-9]|2[0-4][0-9][0-9])ms$ ]] || good=0
[[ "${L[7]:-}" =~ ^rtt\ min/avg/max/mdev\ =\ [0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}\ ms$ ]] || good=0
[ -s "$TMP/p.err" ] && good=0
if [ "$good" -eq 1 ]; then ok "ping -c 3 192.0.2.20"; else fail "ping -c 3 192.0.2.20: exit $rc, stderr '$(cat "$TMP/p.err")'"; fi

t0=$(now)
A ping -c 2 -W 1 192.0.2.99 >"$TMP/p.out" 2>"$TMP/p.err"; rc=$?
t=$(elapsed "$t0")
cat "$TMP/p.out"
mapfile -t L <"$TMP/p.out"
if [ "$rc" -eq 1 ] && [ "${#L[@]}" -eq 4 ] && [ "${L[0]}" = "PING 192.0.2.99 (192.0.2.99) 56(84) bytes of data." ] &&
   [[ "${L[3]}" =~ ^2\ packets\ transmitted,\ 0\ received,\ 100%\ packet\ loss,\ time\ 1[0-9]{3}ms$ ]] &&
   is "$t" 't < 3.5'; then
  ok "ping -c 2 -W 1 192.0.2.99: 100% loss, exit 1 after ${t}s"
else
  fail "ping 192.0.2.99: exit $rc after ${t}s"
fi

# Fragmented both ways over the tunnel (MTU 1472).
out=$(A ping -c 1 -s 4000 192.0.2.20 2>&1); rc=$?
if [ "$rc" -eq 0 ] && grep -Eq '^4008 bytes from 192\.0\.2\.20: icmp_seq=1 ttl=64 ' <<<"$out"; then
  ok "ping -s 4000: $(sed -n 2p <<<"$out")"
else
  fail "ping -s 4000: exit $rc: $out"
fi

# No -c: until SIGINT, which prints the statistics (exit 0: replies came).
WEFT_HOST=a "$WEFT" ping -i 0.2 192.0.2.20 >"$TMP/p.out" 2>&1 &
p=$!
PIDS+=("$p")
for _ in $(seq 200); do [ "$(grep -c '^64 bytes from' "$TMP/p.out")" -ge 3 ] && break; sleep 0.05; done
kill -INT "$p"
wait "$p"; rc=$?
stats=$(grep -E '^[0-9]+ packets transmitted, [0-9]+ received, ' "$TMP/p.out")
read -r sent _ _ got _ <<<"$stats"
if [ "$rc" -eq 0 ] && grep -q '^--- 192.0.2.20 ping statistics ---$' "$TMP/p.out" && [ "${got:-0}" -ge 3 ] &&
   [ "$sent" -ge "$got" ] && grep -q '^rtt min/avg/max/mdev = ' "$TMP/p.out"; then
  ok "ping until SIGINT: $stats"
else
  fail "ping until SIGINT: exit $rc: $(cat "$TMP/p.out")"
fi

# Host a requests ECN on its active opens (--ecn); b, as Linux, accepts:
# the connections a's cats made to b negotiated it, on both ends.
ecn_count() { WEFT_HOST=$1 "$WEFT" netstat --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["tcp"]["ecn_negotiated"])'; }
na=$(ecn_count a); nb=$(ecn_count b)
if [ "${na:-0}" -ge 1 ] && [ "${nb:-0}" -ge 1 ]; then ok "--ecn: ECN negotiated on $na of a's connections, $nb of b's"; else fail "--ecn: tcp.ecn_negotiated a=$na b=$nb"; fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
