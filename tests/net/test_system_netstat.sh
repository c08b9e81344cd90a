#!/usr/bin/env bash
# `weft netstat --system` against net-tools `netstat` and `ss`, on kernel
# sockets held in every state system_sockets.py can produce, in a network
# namespace of this test's own (nothing else has sockets there):
#   1. `weft netstat --system -tuanp` prints exactly the rows of
#      `netstat -tuanp` (same protocols, addresses, states, queues,
#      owners), and the same without -n (names from /etc/hosts and
#      /etc/services);
#   2. `--system --info` on one established connection agrees with
#      `ss -tin` on rto, rtt, mss, cwnd and the byte counts;
#   3. `--system --json` follows docs/netstat-json.md and holds every
#      socket the helper made, in the state it was put in.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root_netns "$@"

[ -x /usr/bin/netstat ] || skip "needs net-tools netstat (scripts/setup installs it)"
command -v ss >/dev/null || skip "needs ss (iproute2)"

ARGS=()
if [ -e /proc/net/if_inet6 ]; then
  # An address longer than netstat's 23-character column.
  LONG6=2001:db8:1234:5678:9abc:def0:1234:5678
  ip addr add "$LONG6/128" dev lo nodad
  ARGS+=(--long-v6 "$LONG6")
else
  [ "${CI:-}" = "true" ] && fail "no IPv6 in this kernel: tcp6 and udp6 cannot be tested"
  echo "note: no IPv6 in this kernel; testing IPv4 only"
  ARGS+=(--no-ipv6)
fi
if [ -c /dev/net/tun ]; then
  ARGS+=(--tun wsys0)
else
  # Without TUN there is no silent peer: SYN_SENT, SYN_RECV, FIN_WAIT1,
  # CLOSING and LAST_ACK go untested.
  [ "${CI:-}" = "true" ] && fail "no /dev/net/tun: the TUN-held states cannot be produced"
  echo "note: no /dev/net/tun; testing the loopback states only"
fi

# The helper holds its sockets until its stdin closes.
mkfifo "$TMP/hold"
$PY "$HERE/system_sockets.py" "${ARGS[@]}" <"$TMP/hold" >"$TMP/sockets.json" 2>"$TMP/helper.err" &
HELPER=$!
exec 3>"$TMP/hold"
trap 'exec 3>&-; wait "$HELPER" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
  [ -s "$TMP/sockets.json" ] && break
  kill -0 "$HELPER" 2>/dev/null || { cat "$TMP/helper.err"; fail "system_sockets.py exited"; }
  sleep 0.1
done
[ -s "$TMP/sockets.json" ] || { cat "$TMP/helper.err"; fail "system_sockets.py not ready after 10 s"; }
pass "helper holds $($PY -c 'import json,sys; print(len(json.load(sys.stdin)["expect"]))' <"$TMP/sockets.json") sockets"

# 1. The same rows as net-tools. Both read the kernel's tables at nearly
# the same moment; the helper left every queue still, so nothing may
# differ. Header lines must match too (trailing blanks aside: weft cuts
# them); rows are compared as sorted lists of whitespace-separated
# fields, since a row's padding is the only thing weft does not copy.
compare() {  # compare FLAGS
  local flags=$1
  netstat "$flags" >"$TMP/netstat$flags.txt" 2>"$TMP/netstat$flags.err"
  "$WEFT" netstat --system "$flags" >"$TMP/weft$flags.txt" 2>"$TMP/weft$flags.err" ||
    { cat "$TMP/weft$flags.err"; fail "weft netstat --system $flags exited $?"; }
  $PY - "$TMP/netstat$flags.txt" "$TMP/weft$flags.txt" "$flags" <<'PY' || fail "weft netstat --system $3 differs from netstat $3"
import sys
want, got, flags = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read().splitlines(), sys.argv[3]
if [l.rstrip() for l in want[:2]] != got[:2]:
    sys.exit(f"headers differ:\n{want[:2]}\n{got[:2]}")
rows = lambda lines: sorted(" ".join(l.split()) for l in lines[2:])
w, g = rows(want), rows(got)
if w != g:
    print(f"netstat {flags} only:", *sorted(set(w) - set(g)), sep="\n  ")
    print(f"weft netstat --system {flags} only:", *sorted(set(g) - set(w)), sep="\n  ")
    sys.exit(1)
print(f"{len(w)} rows identical")
PY
}
compare -tuanp
pass "weft netstat --system -tuanp == netstat -tuanp"
cat "$TMP/weft-tuanp.txt"

# Every state the helper made is really there (else the comparison above
# proves less than it claims).
$PY - "$TMP/sockets.json" "$TMP/netstat-tuanp.txt" <<'PY' || fail "a state is missing from netstat's output"
import json, sys
made = {e["state"] for e in json.load(open(sys.argv[1]))["expect"]}
seen = {l.split()[5] for l in open(sys.argv[2]).read().splitlines()[2:] if len(l.split()) > 6 and l.split()[5].isupper()}
missing = made - seen - {""}
if missing:
    sys.exit(f"states made but not listed by netstat: {sorted(missing)}")
print("states:", " ".join(sorted(made - {""})), "+ UDP unconnected")
PY
pass "every state listed"

compare -tuap
pass "weft netstat --system -tuap == netstat -tuap (names from /etc/hosts and /etc/services)"
compare -tlnp
compare -unp
pass "-l and -u select the same rows as netstat's"
compare -tuanep
compare -tuae
pass "-e: the same users and inodes (numeric and named)"

# Without root, other users' processes cannot be looked into: net-tools
# and weft both show "-" for their sockets (here: all of them, the
# helper runs as root), weft with one line on stderr, and the rows are
# still all there.
command -v setpriv >/dev/null || skip "needs setpriv (util-linux) to run as nobody"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
"${NOBODY[@]}" netstat -tuanp >"$TMP/netstat-nobody.txt" 2>/dev/null
rc=0; "${NOBODY[@]}" "$WEFT" netstat --system -tuanp >"$TMP/weft-nobody.txt" 2>"$TMP/weft-nobody.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$TMP/weft-nobody.err"; fail "weft netstat --system -p as nobody exited $rc"; }
[ "$(grep -c '' "$TMP/weft-nobody.err")" -eq 1 ] && grep -q "not all processes could be identified" "$TMP/weft-nobody.err" ||
  { cat "$TMP/weft-nobody.err"; fail "as nobody: want one 'not all processes could be identified' line on stderr"; }
diff <(tail -n +3 "$TMP/netstat-nobody.txt" | awk '{$1=$1; print}' | sort) \
     <(tail -n +3 "$TMP/weft-nobody.txt" | awk '{$1=$1; print}' | sort) ||
  fail "as nobody, weft netstat --system -tuanp differs from netstat -tuanp"
grep -q python3 "$TMP/weft-nobody.txt" && fail "as nobody, weft named root's process"
pass "as nobody: the same rows as netstat, owners '-', and: $(cat "$TMP/weft-nobody.err")"

# 2. --info against ss -tin on the helper's IPv4 connection (idle, so the
# figures are the same whenever each tool reads them).
read -r LADDR LPORT RADDR RPORT < <($PY -c '
import json, sys
i = json.load(sys.stdin)["info"]
print(i["local"][0], i["local"][1], i["remote"][0], i["remote"][1])' <"$TMP/sockets.json")
"$WEFT" netstat --system -tn --info >"$TMP/info.txt" 2>"$TMP/info.err" || { cat "$TMP/info.err"; fail "--system --info"; }
ss -tin src "$LADDR:$LPORT" dst "$RADDR:$RPORT" >"$TMP/ss.txt"
$PY - "$TMP/info.txt" "$TMP/ss.txt" "$LADDR:$LPORT" "$RADDR:$RPORT" <<'PY' || fail "--info disagrees with ss -tin"
import re, sys
weft = open(sys.argv[1]).read().splitlines()
ss = open(sys.argv[2]).read()
local, remote = sys.argv[3], sys.argv[4]
line = None
for i, l in enumerate(weft):
    f = l.split()
    if len(f) > 4 and f[3] == local and f[4] == remote:
        line = weft[i + 1]
if line is None or not line.startswith("        rto:"):
    sys.exit(f"no --info line under {local} -> {remote}")
print("weft:", line.strip())
print("ss:  ", " ".join(ss.split("\n", 2)[-1].split()))
def fields(text):
    return dict(m.groups() for m in re.finditer(r"\b([a-z_]+):([0-9][0-9./]*)", text))
w, s = fields(line), fields(ss)
# weft prints cwnd as "cwnd:SEGMENTS (BYTES bytes)"; ss as "cwnd:SEGMENTS".
bad = [k for k in ("rto", "rtt", "mss", "cwnd", "snd_wnd", "bytes_sent", "bytes_acked", "bytes_received")
       if k in s and w.get(k) != s[k]]
missing = [k for k in ("rto", "rtt", "mss", "cwnd") if k not in s]
if missing:
    sys.exit(f"ss printed no {missing}")
if bad:
    sys.exit("differ: " + ", ".join(f"{k} weft {w.get(k)} ss {s[k]}" for k in bad))
PY
pass "--info agrees with ss -tin (rto, rtt, mss, cwnd, snd_wnd, bytes)"

# 3. --json: the documented schema, and every socket the helper made.
"$WEFT" netstat --system -tuan --json >"$TMP/system.json" 2>"$TMP/json.err" || { cat "$TMP/json.err"; fail "--system --json"; }
$PY - "$TMP/system.json" "$TMP/sockets.json" <<'PY' || fail "--system --json"
import ipaddress, json, sys
doc = json.load(open(sys.argv[1]))
made = json.load(open(sys.argv[2]))
assert doc["schema"] == "weft-netstat/2", doc["schema"]
h = doc["host"]
assert h["name"] == "system" and h["kind"] == "system" and h["pid"] == 0 and isinstance(h["link"], str), h
assert isinstance(doc["counters"], dict) and doc["counters"]["tcp"]["active_opens"] >= 1
TCP = {"LISTEN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
       "LAST_ACK", "CLOSING"}
def uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
have = {}
for s in doc["sockets"]:
    p = s["proto"]
    assert p in ("tcp", "tcp6", "udp", "udp6"), p
    assert s["state"] in (TCP if p.startswith("tcp") else {"", "ESTABLISHED"}), s
    for end in ("local", "remote"):
        a = ipaddress.ip_address(s[end]["address"])
        assert a.version == (6 if p.endswith("6") else 4), s
        assert uint(s[end]["port"]) and s[end]["port"] <= 65535, s
    assert all(uint(s[k]) for k in ("id", "recv_q", "send_q", "uid")), s
    o = s["owner"]
    assert o is None or (uint(o["pid"]) and uint(o["uid"]) and isinstance(o["program"], str)), s
    if "tcp_info" in s:
        t = s["tcp_info"]
        for k in ("srtt_us", "rttvar_us", "rto_us", "cwnd", "ssthresh", "snd_wnd", "rcv_wnd", "mss", "retransmits",
                  "bytes_in", "bytes_out", "snd_wscale", "rcv_wscale"):
            assert uint(t[k]), (k, s)
        assert isinstance(t["sack"], bool) and isinstance(t["timestamps"], bool)
        assert t["cwnd"] % t["mss"] == 0 if t["mss"] else True, t
    key = (p, s["local"]["address"], s["local"]["port"], s["remote"]["address"], s["remote"]["port"])
    have[key] = s
n_info = 0
for e in made["expect"]:
    key = (e["proto"], e["local"][0], e["local"][1], e["remote"][0], e["remote"][1])
    s = have.get(key)
    assert s, f"not in --json: {e}"
    assert s["state"] == e["state"], (e, s["state"])
    want_pid = made["pid"] if e["owned"] else None
    got_pid = s["owner"]["pid"] if s["owner"] else None
    assert got_pid == want_pid, (e, s["owner"])
    if s["owner"]:
        assert s["owner"]["program"] == "python3", s["owner"]
    if s["state"] == "ESTABLISHED" and e["proto"].startswith("tcp"):
        assert "tcp_info" in s, s
        n_info += 1
# In this namespace nobody else has sockets: the helper's are all there is.
extra = set(have) - {(e["proto"], e["local"][0], e["local"][1], e["remote"][0], e["remote"][1]) for e in made["expect"]}
assert not extra, f"sockets nobody made: {sorted(extra)}"
print(f"{len(doc['sockets'])} sockets, exactly the {len(made['expect'])} made, each in its state with its owner; "
      f"{n_info} established TCP with tcp_info")
PY
pass "--system --json: schema weft-netstat/2, every socket in its state with its owner"

# 4. Errors: no /proc to read gives one line and exit 1.
rc=0; err=$("$WEFT" netstat --system --proc-root "$TMP/no-proc" 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] && [ "$(grep -c '' <<<"$err")" -eq 1 ] || fail "missing /proc: exit $rc, stderr: $err"
pass "missing /proc: $err"
