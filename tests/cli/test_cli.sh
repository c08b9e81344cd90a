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
# The link flags: exactly one of --tun and --udp-link, and each link's own flags only with it.
U="--udp-link 127.0.0.1:9000 --addr 192.0.2.10/24"
expect 2 host --addr 192.0.2.10/24
expect 2 host --tun t0 $U
expect 2 host $U --kernel-addr 192.0.2.1
expect 2 host $U --gateway 192.0.2.1
expect 2 host --tun t0 --addr 192.0.2.10/24 --udp-peer 192.0.2.20=127.0.0.1:9001
expect 2 host --udp-link 127.0.0.1 --addr 192.0.2.10/24
expect 2 host --udp-link 127.0.0.1:0 --addr 192.0.2.10/24
expect 2 host --udp-link 127.0.0.1:65536 --addr 192.0.2.10/24
expect 2 host --udp-link localhost:9000 --addr 192.0.2.10/24
expect 2 host $U --mtu 65508
expect 2 host $U --udp-peer 192.0.2.20
expect 2 host $U --udp-peer 192.0.2.20=127.0.0.1
expect 2 host $U --udp-peer 192.0.2.20=127.0.0.1:0
expect 2 host $U --udp-peer 198.51.100.20=127.0.0.1:9001
expect 2 host $U --udp-peer 192.0.2.10=127.0.0.1:9001
expect 2 host $U --udp-peer 192.0.2.255=127.0.0.1:9001
expect 2 host $U --udp-peer 192.0.2.20=127.0.0.1:9001 --udp-peer 192.0.2.20=127.0.0.1:9002
expect 2 host $U --udp-peer 192.0.2.20=127.0.0.1:9000

# Two hosts joined by the UDP tunnel on 127.0.0.1, no privileges: both say
# ready, both stop cleanly on SIGTERM. Ports are picked at random below the
# kernel's ephemeral range; a port someone holds (exit 1, "in use") means
# another try.
TMP=$(mktemp -d)
export WEFT_RUNTIME_DIR=$TMP/run   # control sockets of the hosts started here
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
# wait_ready FILE PID: 0 once FILE holds the ready line, 1 if PID exits or 10 s pass first.
wait_ready() {
  local i
  for i in $(seq 100); do
    grep -q '^weft host: ready on ' "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
udp_pair() {
  local try pa pb a b
  for try in 1 2 3 4 5; do
    pa=$((20000 + RANDOM % 12000)); pb=$((pa + 1))
    "$WEFT" host --udp-link "127.0.0.1:$pa" --addr 192.0.2.10/24 --udp-peer "192.0.2.20=127.0.0.1:$pb" \
      --name a --services all >"$TMP/a.out" 2>"$TMP/a.err" & a=$!
    "$WEFT" host --udp-link "127.0.0.1:$pb" --addr 192.0.2.20/24 --udp-peer "192.0.2.10=127.0.0.1:$pa" \
      --name b --services all >"$TMP/b.out" 2>"$TMP/b.err" & b=$!
    PIDS=("$a" "$b")
    if wait_ready "$TMP/a.out" "$a" && wait_ready "$TMP/b.out" "$b"; then
      local ok=1 want rc
      for want in "udp:127.0.0.1:$pa, 192.0.2.10/24" "udp:127.0.0.1:$pb, 192.0.2.20/24"; do
        grep -qF "weft host: ready on $want, control socket $WEFT_RUNTIME_DIR/" "$TMP/a.out" "$TMP/b.out" || { echo "FAIL: no ready line '$want'"; ok=0; }
      done
      # A live daemon keeps its name: a second one refuses to start.
      rc=0; "$WEFT" host --udp-link "127.0.0.1:$((pb + 1))" --addr 192.0.2.30/24 --name a >"$TMP/c.out" 2>"$TMP/c.err" || rc=$?
      if [ "$rc" -ne 1 ] || ! grep -qF "weft host: another weft host is already serving 'a' at $WEFT_RUNTIME_DIR/a/control.sock" "$TMP/c.err"; then
        echo "FAIL: a second host named 'a' exited $rc: $(cat "$TMP/c.err")"; ok=0
      fi
      # The host's own directory, closed to others; the socket's mode from
      # the umask at bind (no group given: 0600).
      [ "$(stat -c %a "$WEFT_RUNTIME_DIR/a")" = 700 ] || { echo "FAIL: host directory mode $(stat -c %a "$WEFT_RUNTIME_DIR/a"), want 700"; ok=0; }
      [ "$(stat -c %a "$WEFT_RUNTIME_DIR/a/control.sock")" = 600 ] || { echo "FAIL: control socket mode $(stat -c %a "$WEFT_RUNTIME_DIR/a/control.sock"), want 600"; ok=0; }
      kill -TERM "$a" "$b"
      wait "$a"; rc=$?; [ "$rc" -eq 0 ] || { echo "FAIL: host A exit $rc after SIGTERM: $(cat "$TMP/a.err")"; ok=0; }
      wait "$b"; rc=$?; [ "$rc" -eq 0 ] || { echo "FAIL: host B exit $rc after SIGTERM: $(cat "$TMP/b.err")"; ok=0; }
      PIDS=()
      grep -q 'udp_link.rx_unknown_source' "$TMP/a.out" || { echo "FAIL: no udp_link counters in A's exit print"; ok=0; }
      [ "$ok" -eq 1 ] && echo "ok: two hosts on the UDP tunnel (ports $pa, $pb) ready, exit 0 on SIGTERM"
      return $((1 - ok))
    fi
    kill "$a" "$b" 2>/dev/null; wait "$a" "$b" 2>/dev/null; PIDS=()
    grep -qi 'in use' "$TMP/a.err" "$TMP/b.err" && continue
    echo "FAIL: UDP tunnel hosts not ready: A: $(cat "$TMP/a.err") B: $(cat "$TMP/b.err")"
    return 1
  done
  echo "FAIL: no free UDP port pair after 5 tries"
  return 1
}
udp_pair || fails=$((fails + 1))

# The open-file limit: raised as far as allowed; an explicit --max-sockets
# it cannot hold is refused (each socket costs the daemon up to three
# descriptors), the default is lowered to fit, and said.
rc=0; ( ulimit -n 300; exec "$WEFT" host --udp-link "127.0.0.1:1" --addr 192.0.2.10/24 --name lim --max-sockets 4096 ) \
  >"$TMP/l.out" 2>"$TMP/l.err" || rc=$?
if [ "$rc" -eq 1 ] && grep -qxF "weft host: --max-sockets 4096 needs 12544 descriptors and the open-file limit is 300 (hard limit 300): raise it (ulimit -n) or lower --max-sockets to 14 at most" "$TMP/l.err"; then
  echo "ok: --max-sockets beyond the open-file limit is refused"
else
  echo "FAIL: --max-sockets 4096 under ulimit -n 300: exit $rc, $(cat "$TMP/l.err")"; fails=$((fails + 1))
fi
for bad in 0 1000001; do
  rc=0; "$WEFT" host --udp-link 127.0.0.1:1 --addr 192.0.2.10/24 --max-sockets "$bad" >/dev/null 2>"$TMP/l.err" || rc=$?
  [ "$rc" -eq 2 ] && grep -qF -- "--max-sockets: $bad must be 1-1000000" "$TMP/l.err" || { echo "FAIL: --max-sockets $bad: exit $rc, $(cat "$TMP/l.err")"; fails=$((fails + 1)); }
done
for try in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 12000))
  ( ulimit -n 300; exec "$WEFT" host --udp-link "127.0.0.1:$p" --addr 192.0.2.10/24 --name lim ) \
    >"$TMP/l.out" 2>"$TMP/l.err" & l=$!
  PIDS=("$l")
  if wait_ready "$TMP/l.out" "$l"; then
    kill -TERM "$l"; wait "$l"; PIDS=()
    if grep -qF "weft host: open-file limit is 300 (hard limit 300): serving at most 14 sockets, not 4096" "$TMP/l.err"; then
      echo "ok: a low open-file limit lowers the default, and says so"
    else
      echo "FAIL: no open-file limit note: $(cat "$TMP/l.err")"; fails=$((fails + 1))
    fi
    break
  fi
  kill "$l" 2>/dev/null; wait "$l" 2>/dev/null; PIDS=()
  grep -qi 'in use' "$TMP/l.err" && continue
  echo "FAIL: host with a low open-file limit: $(cat "$TMP/l.err")"; fails=$((fails + 1)); break
done

# A stale control socket (its daemon died without removing it) is replaced.
mkdir -p "$WEFT_RUNTIME_DIR/stale"
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])' "$WEFT_RUNTIME_DIR/stale/control.sock"
for try in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 12000))
  "$WEFT" host --udp-link "127.0.0.1:$p" --addr 192.0.2.10/24 --name stale >"$TMP/s.out" 2>"$TMP/s.err" & s=$!
  PIDS=("$s")
  if wait_ready "$TMP/s.out" "$s"; then
    kill -TERM "$s"; wait "$s"; PIDS=()
    [ -e "$WEFT_RUNTIME_DIR/stale" ] && { echo "FAIL: the control socket (or its directory) outlived its daemon"; fails=$((fails + 1)); }
    echo "ok: a stale control socket is replaced, and removed at exit"
    break
  fi
  kill "$s" 2>/dev/null; wait "$s" 2>/dev/null; PIDS=()
  grep -qi 'in use' "$TMP/s.err" && continue
  echo "FAIL: host over a stale control socket: $(cat "$TMP/s.err")"; fails=$((fails + 1)); break
done

# SIGTERM during setup is a clean stop, not death by signal: the host blocks
# its signals before it builds anything (a TERM sent just as "ready" printed
# used to kill it before its loop took the signal, leaving its directory).
# Setup is held deterministically: --pcap names a FIFO, whose open blocks
# until a reader comes; the TERM arrives while it waits.
mkfifo "$TMP/setup.fifo"
p=$((20000 + RANDOM % 12000))
"$WEFT" host --udp-link "127.0.0.1:$p" --addr 192.0.2.10/24 --name early --pcap "$TMP/setup.fifo" >"$TMP/e.out" 2>"$TMP/e.err" & s=$!
PIDS=("$s")
for i in $(seq 100); do  # until it waits in open(2) on the FIFO
  grep -q 'fifo\|pipe' "/proc/$s/wchan" 2>/dev/null && break
  [ "$(ls -l "/proc/$s/fd" 2>/dev/null | grep -c 'setup.fifo')" -gt 0 ] && break
  sleep 0.05
done
sleep 0.2
kill -TERM "$s"
cat "$TMP/setup.fifo" >/dev/null & r=$!
wait "$s"; rc=$?; PIDS=(); wait "$r" 2>/dev/null
if [ "$rc" -ne 0 ] || [ -e "$WEFT_RUNTIME_DIR/early" ]; then
  echo "FAIL: SIGTERM during setup: exit $rc (want 0), directory left: $([ -e "$WEFT_RUNTIME_DIR/early" ] && echo yes || echo no); $(cat "$TMP/e.err")"; fails=$((fails + 1))
else
  echo "ok: SIGTERM during setup is a clean stop"
fi

# weft netstat --all-hosts: every weft host in the runtime directory, then
# the kernel's sockets, one section each. A control socket nobody answers
# on (its host died) costs one line on stderr; the rest still prints.
all_hosts() {
  local try pa pb a b sv out rc ok=1 i
  for try in 1 2 3 4 5; do
    pa=$((20000 + RANDOM % 12000)); pb=$((pa + 1))
    "$WEFT" host --udp-link "127.0.0.1:$pa" --addr 192.0.2.10/24 --udp-peer "192.0.2.20=127.0.0.1:$pb" \
      --name a --services echo >"$TMP/a.out" 2>"$TMP/a.err" & a=$!
    "$WEFT" host --udp-link "127.0.0.1:$pb" --addr 192.0.2.20/24 --udp-peer "192.0.2.10=127.0.0.1:$pa" \
      --name b >"$TMP/b.out" 2>"$TMP/b.err" & b=$!
    PIDS=("$a" "$b")
    if wait_ready "$TMP/a.out" "$a" && wait_ready "$TMP/b.out" "$b"; then break; fi
    kill "$a" "$b" 2>/dev/null; wait "$a" "$b" 2>/dev/null; PIDS=()
    grep -qi 'in use' "$TMP/a.err" "$TMP/b.err" && continue
    echo "FAIL: --all-hosts: hosts not ready: A: $(cat "$TMP/a.err") B: $(cat "$TMP/b.err")"
    return 1
  done
  [ ${#PIDS[@]} -eq 2 ] || { echo "FAIL: --all-hosts: no free UDP port pair after 5 tries"; return 1; }
  WEFT_HOST=b "$WEFT" serve echo --port 7007 >"$TMP/serve.out" 2>&1 & sv=$!
  PIDS+=("$sv")
  for i in $(seq 100); do
    "$WEFT" netstat --host b -tln 2>/dev/null | grep -q ':7007 ' && break
    sleep 0.1
  done
  mkdir -p -m 700 "$WEFT_RUNTIME_DIR/gone"
  /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])' "$WEFT_RUNTIME_DIR/gone/control.sock"

  out=$("$WEFT" netstat --all-hosts -a -p -n 2>"$TMP/all.err"); rc=$?
  [ "$rc" -eq 0 ] || { echo "FAIL: --all-hosts -a -p -n exit $rc: $(cat "$TMP/all.err")"; ok=0; }
  # (Not root: other users' processes cannot be looked into, one more line.)
  if [ "$(grep -vc 'not all processes could be identified' "$TMP/all.err")" -ne 1 ] ||
     ! grep -q "^weft netstat: host 'gone': not running (no weft host '.*gone/control.sock' at .*gone/control.sock: Connection refused)$" "$TMP/all.err"; then
    echo "FAIL: --all-hosts: want one 'not running' line for gone/control.sock, got: $(cat "$TMP/all.err")"; ok=0
  fi
  local want row='%-4s  %6s %6s %-23s %-23s %-11s %s' prog=$WEFT
  # a's echo service belongs to a's daemon, b's echo to the weft serve
  # process; in the kernel's section, each daemon holds its UDP link,
  # named as net-tools names it (an absolute argv[0] cut to its base name).
  [[ $WEFT == /* ]] && prog=${WEFT##*/}
  for want in "weft host 'a' (192.0.2.10/24, pid $a):" "weft host 'b' (192.0.2.20/24, pid $b):" "system (Linux kernel):" \
      "$(printf "$row" tcp 0 0 0.0.0.0:7 '0.0.0.0:*' LISTEN "$a/weft")" \
      "$(printf "$row" tcp 0 0 0.0.0.0:7007 '0.0.0.0:*' LISTEN "$sv/weft")" \
      "$(printf "$row" udp 0 0 "127.0.0.1:$pa" '0.0.0.0:*' '' "$a/$prog")" \
      "$(printf "$row" udp 0 0 "127.0.0.1:$pb" '0.0.0.0:*' '' "$b/$prog")"; do
    grep -qxF -- "$want" <<<"$out" || { echo "FAIL: --all-hosts -a -p -n: no line '$want' in:"; echo "$out"; ok=0; }
  done
  # Sections come in that order: a, b, then the kernel.
  [ "$(grep -E "^(weft host|system)" <<<"$out" | cut -c1-13 | tr '\n' '|')" = "weft host 'a'|weft host 'b'|system (Linux|" ] ||
    { echo "FAIL: --all-hosts section order: $(grep -E "^(weft host|system)" <<<"$out")"; ok=0; }

  # --json: an array of snapshots, weft hosts first, the kernel last.
  "$WEFT" netstat --all-hosts --json -ta >"$TMP/all.json" 2>/dev/null
  /usr/bin/python3 - "$TMP/all.json" "$sv" <<'PY' || { echo "FAIL: --all-hosts --json"; ok=0; }
import json, sys
docs = json.load(open(sys.argv[1]))
assert [d["host"]["name"] for d in docs] == ["a", "b", "system"], [d["host"]["name"] for d in docs]
assert [d["schema"] for d in docs] == ["weft-netstat/1", "weft-netstat/1", "weft-netstat/2"]
assert any(s["local"]["port"] == 7007 and s["owner"]["pid"] == int(sys.argv[2]) for s in docs[1]["sockets"])
assert all(s["proto"] in ("tcp", "tcp6") for d in docs for s in d["sockets"])
PY

  # No /proc: the weft hosts still print, the kernel's section is one
  # line on stderr, and the exit status says something was missing.
  out=$("$WEFT" netstat --all-hosts -t --proc-root "$TMP/no-proc" 2>"$TMP/noproc.err"); rc=$?
  if [ "$rc" -ne 1 ] || ! grep -qF "weft host 'b' (192.0.2.20/24, pid $b):" <<<"$out" ||
     ! grep -qx "weft netstat: system: cannot read $TMP/no-proc/net/tcp: No such file or directory (is $TMP/no-proc mounted?)" "$TMP/noproc.err"; then
    echo "FAIL: --all-hosts without /proc: exit $rc, stderr: $(cat "$TMP/noproc.err")"; ok=0
  fi
  # $WEFT_HOST (set for clients) does not count as --host given.
  WEFT_HOST=b "$WEFT" netstat --system -t >/dev/null 2>"$TMP/env.err" || { echo "FAIL: WEFT_HOST=b netstat --system: $(cat "$TMP/env.err")"; ok=0; }

  kill -TERM "$sv" "$a" "$b" 2>/dev/null; wait "$sv" "$a" "$b" 2>/dev/null; PIDS=()
  rm -rf "$WEFT_RUNTIME_DIR/gone"
  # An empty runtime directory: the kernel's section alone, nothing on stderr.
  out=$(WEFT_RUNTIME_DIR=$TMP/empty "$WEFT" netstat --all-hosts -t 2>"$TMP/empty.err"); rc=$?
  if [ "$rc" -ne 0 ] || [ -s "$TMP/empty.err" ] || [ "$(head -1 <<<"$out")" != "system (Linux kernel):" ]; then
    echo "FAIL: --all-hosts with no hosts: exit $rc, first line '$(head -1 <<<"$out")', stderr $(cat "$TMP/empty.err")"; ok=0
  fi
  [ "$ok" -eq 1 ] && echo "ok: netstat --all-hosts: hosts a and b (a weft serve on b), a stale socket reported, the kernel last"
  return $((1 - ok))
}
all_hosts || fails=$((fails + 1))
expect 2 netstat --system --host a
expect 2 netstat --system --from-file "$TMP/x.json"
expect 2 netstat --system --all-hosts
expect 2 netstat --all-hosts --host a
expect 0 netstat --system -tuan
expect 0 netstat --system -s
expect 0 netstat --system --json -u
expect 0 netstat --system -t --info
expect 1 netstat --system --proc-root "$TMP/no-proc"

# weft netstat, on saved snapshots (--from-file) until the daemon answers.
HERE=$(cd "$(dirname "$0")" && pwd)
SNAP=$HERE/netstat_snapshot.json
NTMP=$TMP/netstat
mkdir -p "$NTMP"
printf '{"schema": "weft-netstat/1", "sockets": [' >"$NTMP/truncated.json"
sed 's/"proto": "udp"/"proto": "sctp"/' "$SNAP" >"$NTMP/bad_proto.json"
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
expect 1 netstat --from-file "$NTMP/missing.json"
expect 1 netstat --from-file "$NTMP/truncated.json"
expect 1 netstat --from-file "$NTMP/bad_proto.json"
expect 1 netstat --host "$NTMP/no-such-host.sock"

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
err=$("$WEFT" netstat --from-file "$NTMP/bad_proto.json" 2>&1 >/dev/null)
check "netstat bad snapshot message" "weft netstat: invalid snapshot: sockets[2].proto: 'sctp' is not tcp or udp" "$err"
# -c prints once a second until SIGINT, then exits 0.
timeout --preserve-status -s INT 1.5 "$WEFT" netstat --from-file "$SNAP" -c >"$NTMP/c.out"
check "netstat -c exit on SIGINT" 0 "$?"
check "netstat -c repeats" 2 "$(grep -c '^Active' "$NTMP/c.out")"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
