#!/usr/bin/env python3
"""Writes malformed packets into a TUN interface with AF_PACKET, which hands
bytes to the TUN's reader (the weft host) unmodified: the kernel's raw IP
sockets would repair checksums and lengths."""
import random
import socket
import struct
import sys

from inet_checksum import checksum as csum

iface, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(1234)

def ip(payload, proto=17, ihl=5, total=None, version=4, fix_sum=True, opts=b""):
    hl = ihl * 4
    total = total if total is not None else 20 + len(opts) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, total & 0xFFFF, rng.randrange(65536), 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + opts
    if fix_sum:
        h = h[:10] + struct.pack("!H", csum(h[:max(hl, 20)] if hl <= len(h) else h)) + h[12:]
    return h + payload

def udp(sport, dport, data, length=None, good_sum=True):
    length = length if length is not None else 8 + len(data)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    if good_sum:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(seg))
        c = csum(pseudo + seg) or 0xFFFF
    else:
        c = 0x1234
    return seg[:6] + struct.pack("!H", c) + seg[8:]

pkts = []
good = ip(udp(40000, 9, b"hello"))
pkts += [good[:n] for n in range(0, 20)]                      # truncated below an IP header
pkts.append(good[:10] + b"\x00\x00" + good[12:])               # bad IP checksum
pkts.append(ip(udp(40000, 9, b"x"), ihl=4))                    # IHL < 5
pkts.append(ip(udp(40000, 9, b"x"), ihl=15))                   # IHL beyond the bytes
pkts.append(ip(udp(40000, 9, b"hello"), total=200))            # total length beyond the bytes
pkts.append(ip(udp(40000, 9, b"hello"), total=12))             # total length short of the header
pkts.append(ip(udp(40000, 9, b"hello", good_sum=False)))       # bad UDP checksum
pkts.append(ip(udp(40000, 9, b"hello", length=4)))             # UDP length < 8
pkts.append(ip(udp(40000, 9, b"hello", length=300)))           # UDP length beyond the datagram
pkts.append(ip(b"\x08\x00\x00\x00\x00\x01", proto=1))          # ICMP shorter than 8 bytes
pkts.append(ip(b"\x08\x00\x12\x34\x00\x01\x00\x01", proto=1))  # ICMP with a bad checksum
v6 = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\1", b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\2")
pkts.append(v6 + b"\0" * 8)                                    # IPv6: unsupported
for _ in range(500):                                           # random garbage of every length
    pkts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
for _ in range(500):                                           # a good packet with random bytes flipped
    b = bytearray(good)
    for _ in range(rng.randrange(1, 4)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    pkts.append(bytes(b))

s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
n = 0
for p in pkts:
    if not p:
        continue
    proto = 0x86DD if p[0] >> 4 == 6 else 0x0800
    try:
        s.sendto(p, (iface, proto))
        n += 1
    except OSError:
        pass
print(f"injected {n} malformed packets")
