#!/usr/bin/env bash
# The same packetdrill scripts against the Linux kernel and against weft
# (tests/packetdrill/kernel/*.pkt): what a RST leaves in SO_ERROR in each
# TCP state (issue 11; docs/conformance.md's table), checked on a kernel
# socket in the same test. The kernel runs inside this test's own network
# namespace on packetdrill's TUN device (192.0.2.0/24 only); weft runs in
# virtual time through libweft_packetdrill.so. packetdrill is not in
# Debian: $PACKETDRILL, else ../shared/tools/packetdrill/packetdrill beside
# the repository; without it the scripts are reported as not run.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
REPO=$(cd "$HERE/../.." && pwd)
PD=${PACKETDRILL:-$REPO/../shared/tools/packetdrill/packetdrill}
if [ ! -x "$PD" ]; then
  echo "packetdrill kernel scripts: not run (no packetdrill binary: set PACKETDRILL, see README)"
  exit 0
fi
need_root_tun "$@"
SO=$(dirname "$WEFT")/libweft_packetdrill.so
[ -f "$SO" ] || fail "$SO not built"
cd "$REPO/tests/packetdrill/kernel" || fail "no scripts"
fails=0 n=0
for script in *.pkt; do
  n=$((n + 1))
  # The kernel in real time: a loaded machine may answer a few ms late.
  if out=$(timeout 60 "$PD" --tolerance_usecs=50000 --ip_version=ipv4 --local_ip=192.0.2.2 --remote_ip=192.0.2.1 \
             --gateway_ip=192.0.2.254 --netmask_ip=255.255.255.0 "$script" 2>&1); then
    pass "kernel: $script"
  else
    echo "FAIL: kernel: $script"; sed 's/^/     /' <<<"$out"; fails=$((fails + 1))
  fi
  if out=$(timeout 60 "$PD" --ip_version=ipv4 --local_ip=192.0.2.2 --remote_ip=192.0.2.1 \
             --so_filename="$SO" --so_flags="local_ip=192.0.2.2" "$script" 2>&1); then
    pass "weft: $script"
  else
    echo "FAIL: weft: $script"; sed 's/^/     /' <<<"$out"; fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ] || { echo "$fails of $((2 * n)) runs failed"; exit 1; }
echo "all $n scripts pass on the kernel and on weft"
