#!/usr/bin/env bash
# weft's TCP services on TUN against the real kernel's TCP: bulk into
# discard, a SHA-256-checked stream through echo, chargen's pattern, 500
# concurrent connections, 10,000 connect/close cycles with no socket left
# behind, a refused connect, and a captured session that tshark validates.
#
# Sizes: WEFT_TCP_DISCARD_BYTES (default 1 GiB), WEFT_TCP_ECHO_BYTES
# (default 100 MB), WEFT_TCP_CYCLES (default 10000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root_tun "$@"

DISCARD_BYTES=${WEFT_TCP_DISCARD_BYTES:-1073741824}
ECHO_BYTES=${WEFT_TCP_ECHO_BYTES:-100000000}
CYCLES=${WEFT_TCP_CYCLES:-10000}
T="$PY $HERE/tcp_streams.py 192.0.2.2"

# usr1_counter NAME: asks the running host for its counters (SIGUSR1) and
# prints NAME's value from that block.
usr1_counter() {
  local before
  before=$(grep -c "counters (SIGUSR1)" "$TMP/host.log" || true)
  kill -USR1 "$HOST_PID"
  for _ in $(seq 1 100); do
    [ "$(grep -c "counters (SIGUSR1)" "$TMP/host.log" || true)" -gt "$before" ] && break
    sleep 0.02
  done
  sleep 0.05  # the block is printed whole, then flushed
  counter "$1"
}
# wait_counter NAME VALUE SECONDS: polls until NAME == VALUE.
wait_counter() {
  local v
  for _ in $(seq 1 $(( $3 * 4 ))); do
    v=$(usr1_counter "$1")
    [ "$v" -eq "$2" ] && return 0
    sleep 0.25
  done
  fail "$1 is $v, expected $2 within $3 s"
}

start_host --tun wt0 --addr 192.0.2.2/24 --kernel-addr 192.0.2.1 --services all --seed 2
LISTENERS=4

# 0. Daytime first: weft closes first there, so these connections wait in
# TIME-WAIT (2 MSL = 60 s) on weft's side; checked at the end that they go.
TW_START=$(date +%s)
$T daytime 20 || fail "daytime"
tw=$(usr1_counter tcp.time_wait)
[ "$tw" -ge 1 ] || fail "daytime: weft closed first but has no TIME-WAIT socket"
pass "daytime: 20 connections, text then EOF ($tw in TIME-WAIT on weft)"

# 1. Bulk into discard; weft counts what it read.
out=$($T discard "$DISCARD_BYTES") || fail "discard: $out"
wait_counter services.tcp.discard.active 0 10
got=$(counter services.tcp.discard.bytes_in)
[ "$got" -eq "$DISCARD_BYTES" ] || fail "discard counted $got bytes, sent $DISCARD_BYTES"
pass "$out; weft counted $got bytes"

# 2. Echo, sending and receiving at once, SHA-256 both ways.
out=$($T echo "$ECHO_BYTES") || fail "echo: $out"
pass "$out"

# 3. Chargen for 10 s, every byte checked against RFC 864's pattern; the
# client closes with bytes unread (RST), and chargen lets go.
out=$($T chargen 10) || fail "chargen: $out"
wait_counter services.tcp.chargen.active 0 10
pass "$out"

# 4. 500 concurrent kernel connections through echo.
out=$($T many 500 20000) || fail "many: $out"
wait_counter services.tcp.echo.active 0 10
pass "$out"

# 5. Sequential connect/close cycles: the kernel closes first, so nothing
# but the listeners and daytime's TIME-WAITs may remain on weft's side.
out=$($T cycles "$CYCLES") || fail "cycles: $out"
wait_counter services.tcp.echo.active 0 10
# Both gauges from one counters block (daytime's TIME-WAITs may expire
# meanwhile): every socket but the listeners must be in TIME-WAIT.
for _ in $(seq 1 40); do
  socks=$(usr1_counter tcp.sockets); tw=$(counter tcp.time_wait)
  [ "$socks" -eq $((LISTENERS + tw)) ] && break
  sleep 0.25
done
[ "$socks" -eq $((LISTENERS + tw)) ] || fail "weft holds $socks sockets: $LISTENERS listeners, $tw in TIME-WAIT and $((socks - LISTENERS - tw)) others"
pass "$out; weft holds $LISTENERS listeners + $tw TIME-WAIT sockets, nothing else"

# 6. A closed port is refused at once (weft answers the SYN with RST).
out=$($T refused 4444) || fail "refused: $out"
pass "$out"

# TIME-WAIT expires: 2 MSL after the daytime connections, nothing is left
# but the listeners.
left=$(( TW_START + 62 - $(date +%s) ))
[ "$left" -gt 0 ] && sleep "$left"
wait_counter tcp.time_wait 0 10
wait_counter tcp.sockets "$LISTENERS" 10
pass "TIME-WAIT expired after 2 MSL: only the $LISTENERS listeners remain"

stop_host
for c in tcp.in_errs tcp.bad_checksum services.tcp.echo.resets services.tcp.discard.resets services.tcp.daytime.resets; do
  [ "$(counter $c)" -eq 0 ] || { grep -A200 "counters (exit)" "$TMP/host.log"; fail "counter $c is $(counter $c)"; }
done
echo "weft: $(counter services.tcp.echo.connections) echo connections, $(counter tcp.passive_opens) passive opens," \
  "$(counter tcp.retrans_segs) retransmitted segments, $(counter tcp.out_rsts) RSTs sent"

# 7. A short captured session: handshake, 1 MB echoed, a refused connect, a
# close. tshark with checksum validation finds nothing wrong in what weft sent.
start_host --tun wt0 --addr 192.0.2.2/24 --kernel-addr 192.0.2.1 --services all --seed 3 --pcap "$TMP/tcp.pcap"
$T echo 1000000 >/dev/null || fail "echo (captured)"
$T refused 4444 >/dev/null || fail "refused (captured)"
sleep 0.3
stop_host
sent_by_weft='ip.src==192.0.2.2'
check="-o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE"
bad=$(tshark -r "$TMP/tcp.pcap" $check \
  -Y "$sent_by_weft && (_ws.malformed || ip.checksum.status==0 || tcp.checksum.status==0 || _ws.expert.severity>=error)" 2>/dev/null | wc -l)
[ "$bad" -eq 0 ] || { tshark -r "$TMP/tcp.pcap" $check -Y "$sent_by_weft && (_ws.malformed || tcp.checksum.status==0 || _ws.expert.severity>=error)" | head; fail "$bad bad packets from weft"; }
good=$(tshark -r "$TMP/tcp.pcap" $check -Y "$sent_by_weft && tcp.checksum.status==1" 2>/dev/null | wc -l)
weft_pkts=$(tshark -r "$TMP/tcp.pcap" -Y "$sent_by_weft && tcp" 2>/dev/null | wc -l)
[ "$good" -eq "$weft_pkts" ] || fail "only $good of $weft_pkts TCP segments from weft have a verified checksum"
synack=$(tshark -r "$TMP/tcp.pcap" -Y "$sent_by_weft && tcp.flags.syn==1 && tcp.flags.ack==1" 2>/dev/null | wc -l)
fin=$(tshark -r "$TMP/tcp.pcap" -Y "$sent_by_weft && tcp.flags.fin==1" 2>/dev/null | wc -l)
rst=$(tshark -r "$TMP/tcp.pcap" -Y "$sent_by_weft && tcp.flags.reset==1 && tcp.srcport==4444" 2>/dev/null | wc -l)
[ "$synack" -ge 1 ] && [ "$fin" -ge 1 ] && [ "$rst" -ge 1 ] || fail "pcap lacks SYN-ACK ($synack), FIN ($fin) or the refusing RST ($rst)"
in_pcap=$(tshark -r "$TMP/tcp.pcap" 2>/dev/null | wc -l)
counted=$(( $(counter link.rx_packets) + $(counter link.tx_packets) ))
[ "$in_pcap" -eq "$counted" ] || fail "pcap has $in_pcap packets, host counted $counted"
pass "pcap: $in_pcap packets, $weft_pkts TCP segments from weft, all checksums verified, none malformed"
