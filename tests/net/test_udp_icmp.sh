#!/usr/bin/env bash
# A weft host on TUN against the real kernel: ping (with fragments both
# ways), 50 kernel sockets at once through echo, a refused port, garbage
# injected into the TUN, and a pcap that tshark validates.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root_tun "$@"

start_host --tun wt0 --addr 192.0.2.2/24 --kernel-addr 192.0.2.1 --services all --pcap "$TMP/run.pcap" --seed 1

# 1. ping, 56/1400/4000-byte payloads (4000 is fragmented both ways).
for size in 56 1400 4000; do
  ping -c 3 -i 0.2 -W 2 -s "$size" 192.0.2.2 >"$TMP/ping.txt" || { cat "$TMP/ping.txt"; fail "ping -s $size"; }
  grep -q " 0% packet loss" "$TMP/ping.txt" || { cat "$TMP/ping.txt"; fail "ping -s $size lost packets"; }
done
pass "ping 56, 1400 and 4000 bytes"

# 2. 50 kernel sockets each send 200 datagrams to echo at once.
$PY "$HERE/udp_echo_many.py" 192.0.2.2 7 50 200 || fail "concurrent UDP echo"
pass "50 sockets x 200 datagrams through echo"

# 3. A closed port: ConnectionRefusedError in Python.
$PY - <<'PY' || fail "closed port not refused"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("192.0.2.2", 4444))
s.send(b"anyone?")
try:
    s.recv(100)
except ConnectionRefusedError:
    raise SystemExit(0)
raise SystemExit("no ConnectionRefusedError")
PY
pass "closed port refused"

# 3b. Datagrams larger than the MTU go out fragmented and come back whole.
$PY - <<'PY' || fail "large UDP datagrams through echo"
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for n in (1473, 4000, 20000, 65507):
    data = os.urandom(n)
    s.sendto(data, ("192.0.2.2", 7))
    back, _ = s.recvfrom(70000)
    assert back == data, (n, len(back))
PY
pass "UDP 1473, 4000, 20000 and 65507 bytes echoed intact (fragmented both ways)"

# 4. Daytime and chargen answer.
$PY - <<'PY' || fail "daytime/chargen"
import socket
for port, check in ((13, lambda d: d.endswith(b"\r\n") and len(d) > 10), (19, lambda d: len(d) == 512 and d[:72] == bytes(range(32, 104)))):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b"x", ("192.0.2.2", port))
    d, _ = s.recvfrom(2000)
    assert check(d), (port, d[:80])
PY
pass "daytime and chargen"

# 5. Garbage and truncated packets written into the TUN (AF_PACKET on the
# TUN interface delivers bytes unmodified to the weft host).
$PY "$HERE/inject_garbage.py" wt0 192.0.2.1 192.0.2.2 >"$TMP/inject.txt" || { cat "$TMP/inject.txt"; fail "inject"; }
sleep 0.3
kill -0 "$HOST_PID" || fail "weft host died on garbage"
ping -c 1 -W 2 192.0.2.2 >/dev/null || fail "host no longer answers after garbage"
pass "garbage survived: $(cat "$TMP/inject.txt")"

stop_host
for c in ip.in_bad_checksum ip.in_bad_header_len ip.in_bad_total_len ip.in_truncated ip.in_unsupported udp.bad_checksum udp.bad_length icmp.in_errors; do
  [ "$(counter $c)" -gt 0 ] || { grep -A200 "counters (exit)" "$TMP/host.log"; fail "counter $c did not move"; }
done
pass "drops counted by reason"

# 6. The pcap: tshark with checksum validation finds nothing malformed or
# bad among weft's packets, and counts what the host counted.
sent_by_weft='ip.src==192.0.2.2'
bad=$(tshark -r "$TMP/run.pcap" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
  -Y "$sent_by_weft && (_ws.malformed || ip.checksum.status==0 || udp.checksum.status==0 || icmp.checksum.status==0 || _ws.expert.severity>=error)" 2>/dev/null | wc -l)
[ "$bad" -eq 0 ] || { tshark -r "$TMP/run.pcap" -o ip.check_checksum:TRUE -Y "$sent_by_weft && (_ws.malformed || _ws.expert.severity>=error)" | head; fail "$bad bad packets from weft in the pcap"; }
weft_pkts=$(tshark -r "$TMP/run.pcap" -Y "$sent_by_weft" 2>/dev/null | wc -l)
[ "$weft_pkts" -gt 100 ] || fail "only $weft_pkts weft packets in the pcap"
in_pcap=$(tshark -r "$TMP/run.pcap" 2>/dev/null | wc -l)
counted=$(( $(counter link.rx_packets) + $(counter link.tx_packets) ))
[ "$in_pcap" -eq "$counted" ] || fail "pcap has $in_pcap packets, host counted $counted"
pass "pcap: $in_pcap packets ($weft_pkts from weft), none malformed, checksums good"
