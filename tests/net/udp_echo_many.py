#!/usr/bin/env python3
"""N kernel UDP sockets each send M datagrams to an echo service at once.
Each socket must get back only its own datagrams (checked by content), and
at least 99% of them overall."""
import selectors
import socket
import sys
import time

host, port, nsock, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sel = selectors.DefaultSelector()
socks = []
for i in range(nsock):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    socks.append(s)
    sel.register(s, selectors.EVENT_READ, i)

def payload(i, seq):
    return f"sock{i:03d}-seq{seq:05d}-".encode() + bytes((i * 7 + seq + k) % 256 for k in range(64))

got = [set() for _ in range(nsock)]
foreign = 0
sent = 0

def drain(timeout):
    """Reads every ready socket; a datagram counts only if it is the socket's own."""
    global foreign
    for key, _ in sel.select(timeout=timeout):
        s, i = key.fileobj, key.data
        while True:
            try:
                d = s.recv(4096)
            except BlockingIOError:
                break
            tag = d[:18].decode(errors="replace")
            if tag.startswith(f"sock{i:03d}-") and tag[11:16].isdigit() and d == payload(i, int(tag[11:16])):
                got[i].add(int(tag[11:16]))
            else:
                foreign += 1
# Interleave the sockets' sends so they really are concurrent, while reading.
for seq in range(per):
    for i, s in enumerate(socks):
        s.sendto(payload(i, seq), (host, port))
        sent += 1
    drain(0)
    if seq % 5 == 0:
        time.sleep(0.001)

deadline = time.time() + 5
while time.time() < deadline and sum(len(g) for g in got) < sent:
    drain(0.2)

total = sum(len(g) for g in got)
worst = min(len(g) for g in got)
print(f"sent {sent}, echoed back {total} ({100.0 * total / sent:.2f}%), worst socket {worst}/{per}, foreign {foreign}")
if foreign:
    sys.exit("a socket received datagrams that were not its own")
if total < 0.99 * sent:
    sys.exit("fewer than 99% came back")
