#!/usr/bin/env python3
"""Kernel sockets in every state a test can hold still, for
test_system_netstat.sh.

Usage: system_sockets.py [--long-v6 ADDR] [--tun NAME] [--no-ipv6]

On loopback (127.0.0.1 and ::1): listeners (one on the wildcard address
with a connection waiting to be accepted), connections seen from both
ends, unread bytes, TIME_WAIT (the active closer), FIN_WAIT2 and
CLOSE_WAIT (one side shut down writing, the other never closes), an IPv4
peer of a dual-stack IPv6 listener, UDP sockets bound and connected with a
datagram waiting. --long-v6 adds a connection on an address too long for
netstat's column (the caller puts it on lo). --tun creates that TUN device
as 192.0.2.1/24 and plays a TCP peer at 192.0.2.2 that never acknowledges
what it should, to hold SYN_SENT, SYN_RECV, FIN_WAIT1, CLOSING, LAST_ACK
and a connection whose sent bytes wait for an ACK.

Every queue is left still before it reports: the test reads the tables
twice (net-tools netstat, then weft) and expects the same numbers.

Prints one JSON line {"pid": ..., "expect": [...], "info": {...}} once
everything is in place, then holds the sockets until stdin closes.
"""
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
import time

from inet_checksum import checksum

expect = []


def row(proto, local, remote, state, owned):
    expect.append({"proto": proto, "local": list(local[:2]), "remote": list(remote[:2]), "state": state, "owned": owned})


def wait_for(pred, what, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    sys.exit(f"system_sockets.py: timed out waiting for {what}")


def readable(s, timeout=5.0):
    r, _, _ = select.select([s], [], [], timeout)
    return bool(r)


def inq(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


held = []  # every socket stays referenced until exit


def loopback(fam, addr, wildcard):
    tcp = "tcp" if fam == socket.AF_INET else "tcp6"
    udp = "udp" if fam == socket.AF_INET else "udp6"
    zero = "0.0.0.0" if fam == socket.AF_INET else "::"

    lst = socket.socket(fam, socket.SOCK_STREAM)
    lst.bind((addr, 0))
    lst.listen(16)
    held.append(lst)
    row(tcp, lst.getsockname(), (zero, 0), "LISTEN", True)

    def pair():
        c = socket.create_connection(lst.getsockname()[:2])
        s, _ = lst.accept()
        held.extend([c, s])
        return c, s

    # Established, seen from both ends; the test compares this one with ss,
    # after some bytes each way (then idle, so every figure holds still).
    c1, s1 = pair()
    c1.sendall(b"q" * 300)
    assert s1.recv(300, socket.MSG_WAITALL) == b"q" * 300
    s1.sendall(b"r" * 200)
    assert c1.recv(200, socket.MSG_WAITALL) == b"r" * 200
    row(tcp, c1.getsockname(), c1.getpeername(), "ESTABLISHED", True)
    row(tcp, s1.getsockname(), s1.getpeername(), "ESTABLISHED", True)

    # 1000 bytes the receiver never reads: its Recv-Q.
    c2, s2 = pair()
    c2.sendall(b"u" * 1000)
    wait_for(lambda: inq(s2) == 1000, "1000 unread bytes")
    row(tcp, c2.getsockname(), c2.getpeername(), "ESTABLISHED", True)
    row(tcp, s2.getsockname(), s2.getpeername(), "ESTABLISHED", True)

    # TIME_WAIT: the client closes first, then the server; the client's
    # end lingers 60 s with no process (net-tools: owner "-").
    c3, s3 = pair()
    c_name, c_peer = c3.getsockname(), c3.getpeername()
    c3.close()
    held.remove(c3)
    assert readable(s3) and s3.recv(1) == b""
    s3.close()
    held.remove(s3)
    row(tcp, c_name, c_peer, "TIME_WAIT", False)

    # FIN_WAIT2 / CLOSE_WAIT: the client stops writing, the server never
    # closes (nor reads the end of stream: its FIN stays in Recv-Q).
    c4, s4 = pair()
    c4.shutdown(socket.SHUT_WR)
    assert readable(s4)
    row(tcp, c4.getsockname(), c4.getpeername(), "FIN_WAIT2", True)
    row(tcp, s4.getsockname(), s4.getpeername(), "CLOSE_WAIT", True)

    # A wildcard listener with a connection nobody accepted: Recv-Q 1, and
    # the queued socket belongs to no process yet.
    wl = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        wl.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
    wl.bind((wildcard, 0))
    wl.listen(16)
    held.append(wl)
    c5 = socket.create_connection((addr, wl.getsockname()[1]))
    held.append(c5)
    assert readable(wl)
    row(tcp, wl.getsockname(), (zero, 0), "LISTEN", True)
    row(tcp, c5.getsockname(), c5.getpeername(), "ESTABLISHED", True)
    row(tcp, c5.getpeername(), c5.getsockname(), "ESTABLISHED", False)

    if fam == socket.AF_INET6:
        # An IPv4 client of the dual-stack listener: tcp6 rows with
        # IPv4-mapped addresses.
        c6 = socket.create_connection(("127.0.0.1", wl.getsockname()[1]))
        held.append(c6)
        # Accept the first queued connection (c5's) and this one.
        for _ in range(2):
            s, _ = wl.accept()
            held.append(s)
            if s.getpeername()[1] == c6.getsockname()[1]:
                row(tcp, s.getsockname(), s.getpeername(), "ESTABLISHED", True)
            else:
                expect.remove({"proto": tcp, "local": list(c5.getpeername()[:2]), "remote": list(c5.getsockname()[:2]),
                               "state": "ESTABLISHED", "owned": False})
                row(tcp, s.getsockname(), s.getpeername(), "ESTABLISHED", True)
        row("tcp", c6.getsockname(), c6.getpeername(), "ESTABLISHED", True)
        # ... and one more left in the queue, so that tcp6 has an
        # unaccepted connection too.
        c7 = socket.create_connection((addr, wl.getsockname()[1]))
        held.append(c7)
        assert readable(wl)
        row(tcp, c7.getpeername(), c7.getsockname(), "ESTABLISHED", False)
        row(tcp, c7.getsockname(), c7.getpeername(), "ESTABLISHED", True)

    # UDP: bound, bound on the wildcard, connected; one datagram waits.
    u1 = socket.socket(fam, socket.SOCK_DGRAM)
    u1.bind((addr, 0))
    u2 = socket.socket(fam, socket.SOCK_DGRAM)
    u2.connect(u1.getsockname()[:2])
    u3 = socket.socket(fam, socket.SOCK_DGRAM)
    u3.bind((wildcard, 0))
    held.extend([u1, u2, u3])
    u2.send(b"d" * 100)
    assert readable(u1)
    row(udp, u1.getsockname(), (zero, 0), "", True)
    row(udp, u2.getsockname(), u2.getpeername(), "ESTABLISHED", True)
    row(udp, u3.getsockname(), (zero, 0), "", True)
    return c1


def long_v6(addr):
    lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lst.bind((addr, 0))
    lst.listen(4)
    c = socket.create_connection(lst.getsockname()[:2])
    s, _ = lst.accept()
    held.extend([lst, c, s])
    row("tcp6", lst.getsockname(), ("::", 0), "LISTEN", True)
    row("tcp6", c.getsockname(), c.getpeername(), "ESTABLISHED", True)
    row("tcp6", s.getsockname(), s.getpeername(), "ESTABLISHED", True)


# ---- a TCP peer on a TUN device ------------------------------------------------

KERNEL, PEER, NOBODY = "192.0.2.1", "192.0.2.2", "192.0.2.3"
SYN, ACK, FIN = 0x02, 0x10, 0x01


class Peer:
    """Writes hand-made IPv4/TCP packets into the TUN device and reads the
    kernel's. Each conversation is from PEER:sport to the kernel."""

    def __init__(self, name):
        TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
        self.fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        subprocess.run(["ip", "addr", "add", f"{KERNEL}/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)

    def send(self, sport, dport, seq, ack, flags, data=b""):
        src, dst = socket.inet_aton(PEER), socket.inet_aton(KERNEL)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
        csum = checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        os.write(self.fd, ip + tcp)

    def expect(self, pred, what, timeout=5.0):
        """The next kernel TCP segment for which pred(seg) holds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                sys.exit(f"system_sockets.py: no {what} from the kernel")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            pkt = os.read(self.fd, 65536)
            if len(pkt) < 40 or pkt[0] >> 4 != 4 or pkt[9] != 6:
                continue  # IPv6 router solicitations and the like
            ihl = (pkt[0] & 0xF) * 4
            sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
            seg = {"src": socket.inet_ntoa(pkt[12:16]), "dst": socket.inet_ntoa(pkt[16:20]), "sport": sport,
                   "dport": dport, "seq": seq, "ack": ack, "flags": flags,
                   "len": len(pkt) - ihl - (off >> 4) * 4}
            if pred(seg):
                return seg

    def connect(self, sport, dport):
        """Three-way handshake from the peer; returns (our next seq, theirs)."""
        isn = 1000000 + sport
        self.send(sport, dport, isn, 0, SYN)
        sa = self.expect(lambda s: s["dport"] == sport and s["flags"] & (SYN | ACK) == SYN | ACK, "SYN-ACK")
        self.send(sport, dport, isn + 1, sa["seq"] + 1, ACK)
        return isn + 1, sa["seq"] + 1


def start_connect(held, to):
    """A kernel TCP socket whose SYN to `to` is on its way (kept in held)."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    held.append(c)
    try:
        c.connect(to)
    except BlockingIOError:
        pass
    return c


def tun_states(name):
    peer = Peer(name)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind((KERNEL, 0))
    lst.listen(16)
    held.append(lst)
    port = lst.getsockname()[1]
    row("tcp", (KERNEL, port), ("0.0.0.0", 0), "LISTEN", True)

    def accepted(sport):
        assert readable(lst)
        s, who = lst.accept()
        assert who == (PEER, sport), who
        held.append(s)
        return s

    # SYN_RECV: a SYN whose SYN-ACK is never acknowledged.
    peer.send(40001, port, 5000, 0, SYN)
    peer.expect(lambda s: s["dport"] == 40001 and s["flags"] & SYN, "SYN-ACK")
    row("tcp", (KERNEL, port), (PEER, 40001), "SYN_RECV", False)

    # FIN_WAIT1: the kernel's FIN is never acknowledged.
    peer.connect(40002, port)
    s = accepted(40002)
    s.shutdown(socket.SHUT_WR)
    peer.expect(lambda g: g["dport"] == 40002 and g["flags"] & FIN, "FIN")
    row("tcp", (KERNEL, port), (PEER, 40002), "FIN_WAIT1", True)

    # CLOSING: both send FIN at once; ours does not acknowledge theirs.
    ours, theirs = peer.connect(40003, port)
    s = accepted(40003)
    s.shutdown(socket.SHUT_WR)
    fin = peer.expect(lambda g: g["dport"] == 40003 and g["flags"] & FIN, "FIN")
    peer.send(40003, port, ours, fin["seq"], FIN | ACK)
    peer.expect(lambda g: g["dport"] == 40003 and g["ack"] == ours + 1, "ACK of our FIN")
    row("tcp", (KERNEL, port), (PEER, 40003), "CLOSING", True)

    # LAST_ACK: we close first (CLOSE_WAIT there), then the kernel's FIN
    # is never acknowledged.
    ours, theirs = peer.connect(40004, port)
    s = accepted(40004)
    peer.send(40004, port, ours, theirs, FIN | ACK)
    peer.expect(lambda g: g["dport"] == 40004 and g["ack"] == ours + 1, "ACK of our FIN")
    s.shutdown(socket.SHUT_WR)
    peer.expect(lambda g: g["dport"] == 40004 and g["flags"] & FIN, "FIN")
    row("tcp", (KERNEL, port), (PEER, 40004), "LAST_ACK", True)

    # A connection from the kernel whose data is never acknowledged: a
    # steady Send-Q of 5000.
    c = start_connect(held, (PEER, 8080))
    syn = peer.expect(lambda g: g["sport"] == c.getsockname()[1] and g["flags"] & SYN, "SYN")
    peer.send(8080, syn["sport"], 7000000, syn["seq"] + 1, SYN | ACK)
    peer.expect(lambda g: g["dport"] == 8080 and g["flags"] & ACK, "ACK of our SYN-ACK")
    c.setblocking(True)
    c.sendall(b"s" * 5000)
    row("tcp", c.getsockname(), (PEER, 8080), "ESTABLISHED", True)

    # SYN_SENT: a SYN to an address nobody answers for.
    c = start_connect(held, (NOBODY, 80))
    row("tcp", c.getsockname(), (NOBODY, 80), "SYN_SENT", True)
    held.append(peer)


def main():
    args = sys.argv[1:]
    opt = {}
    while args:
        k = args.pop(0)
        if k in ("--long-v6", "--tun") and args:
            opt[k] = args.pop(0)
        elif k == "--no-ipv6":
            opt[k] = True
        else:
            sys.exit(f"usage: {sys.argv[0]} [--long-v6 ADDR] [--tun NAME] [--no-ipv6]")
    c4 = loopback(socket.AF_INET, "127.0.0.1", "0.0.0.0")
    if "--no-ipv6" not in opt:
        loopback(socket.AF_INET6, "::1", "::")
    if "--long-v6" in opt:
        long_v6(opt["--long-v6"])
    if "--tun" in opt:
        tun_states(opt["--tun"])
    time.sleep(0.2)  # let the last ACKs settle
    info = {"local": list(c4.getsockname()), "remote": list(c4.getpeername())}
    print(json.dumps({"pid": os.getpid(), "expect": expect, "info": info}), flush=True)
    sys.stdin.read()  # hold everything until the test closes our stdin


main()
