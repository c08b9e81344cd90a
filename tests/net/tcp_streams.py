#!/usr/bin/env python3
"""Kernel-side TCP clients for test_tcp.sh, against weft's TCP services.

  tcp_streams.py HOST discard BYTES          send BYTES to discard (9), wait for its close
  tcp_streams.py HOST echo BYTES             BYTES through echo (7), SHA-256 both ways, two threads
  tcp_streams.py HOST chargen SECONDS        read chargen (19) for SECONDS, verify every byte
  tcp_streams.py HOST many N BYTES           N connections to echo at once, each gets its own bytes
  tcp_streams.py HOST cycles N               N sequential connect/close cycles to echo
  tcp_streams.py HOST daytime N              N daytime (13) connections: a line of text, then EOF
  tcp_streams.py HOST refused PORT           connect to a closed port: ConnectionRefusedError, fast

Each prints one line of results (rates in MB/s, 1 MB = 10^6 bytes) and
exits non-zero with a reason on failure. Streams use 1 MiB buffers so that
Python is never the bottleneck.
"""
import hashlib
import os
import selectors
import socket
import sys
import threading
import time

CHUNK = 1 << 20
TIMEOUT = 60


def connect(host, port, timeout=TIMEOUT):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def block(seed):
    """64 KiB from a seed. Generating fresh random bytes for gigabytes is too
    slow in pure Python; stream_data() repeats this block and stamps each
    4 KiB with its position, so no two 4 KiB pieces of a stream are equal."""
    return hashlib.sha256(f"weft-{seed}".encode()).digest() * 2048


def stream_data(total, seed):
    """Yields `total` bytes in CHUNK-sized memoryviews, different in every chunk."""
    base = bytearray(block(seed) * (CHUNK // 65536))
    sent, n = 0, 0
    while sent < total:
        # Stamp the chunk number every 4 KiB so chunks differ (a misplaced
        # chunk changes the hash).
        for off in range(0, CHUNK, 4096):
            base[off:off + 8] = (n * 256 + off // 4096).to_bytes(8, "little")
        m = min(CHUNK, total - sent)
        yield memoryview(base)[:m]
        sent += m
        n += 1


def discard(host, nbytes):
    s = connect(host, 9)
    t0 = time.monotonic()
    for chunk in stream_data(nbytes, 1):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    # discard closes once it has read our FIN, i.e. everything before it.
    if s.recv(1) != b"":
        sys.exit("discard sent data")
    dt = time.monotonic() - t0
    s.close()
    print(f"discard: {nbytes} bytes in {dt:.2f} s = {nbytes / dt / 1e6:.1f} MB/s")


def echo(host, nbytes):
    s = connect(host, 7)
    h_out, h_in = hashlib.sha256(), hashlib.sha256()
    err = []

    def sender():
        try:
            for chunk in stream_data(nbytes, 2):
                h_out.update(chunk)
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:  # noqa: BLE001 - reported below
            err.append(f"sender: {e!r}")

    t0 = time.monotonic()
    th = threading.Thread(target=sender)
    th.start()
    got = 0
    buf = bytearray(CHUNK)
    try:
        while True:
            n = s.recv_into(buf)
            if n == 0:
                break
            h_in.update(memoryview(buf)[:n])
            got += n
    except Exception as e:  # noqa: BLE001
        err.append(f"receiver after {got} bytes: {e!r}")
    th.join()
    dt = time.monotonic() - t0
    s.close()
    if err:
        sys.exit("; ".join(err))
    if got != nbytes:
        sys.exit(f"echo returned {got} of {nbytes} bytes")
    if h_in.digest() != h_out.digest():
        sys.exit("echo: SHA-256 differs")
    print(f"echo: {nbytes} bytes each way in {dt:.2f} s = {nbytes / dt / 1e6:.1f} MB/s, sha256 {h_in.hexdigest()[:16]}... matches")


def chargen_period():
    out = bytearray()
    for line in range(95):
        out += bytes(32 + (line + c) % 95 for c in range(72)) + b"\r\n"
    return bytes(out)


def chargen(host, seconds):
    period = chargen_period()
    table = period * (CHUNK // len(period) + 2)
    s = connect(host, 19)
    buf = bytearray(CHUNK)
    got, off = 0, 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        n = s.recv_into(buf)
        if n == 0:
            sys.exit(f"chargen closed after {got} bytes")
        if memoryview(buf)[:n] != memoryview(table)[off:off + n]:
            sys.exit(f"chargen: pattern wrong in bytes {got}..{got + n}")
        got += n
        off = (off + n) % len(period)
    dt = time.monotonic() - t0
    s.close()  # unread bytes: the kernel resets, chargen must let go
    if got < len(period):
        sys.exit(f"chargen: only {got} bytes")
    print(f"chargen: {got} bytes in {dt:.2f} s = {got / dt / 1e6:.1f} MB/s, pattern verified")


def many(host, nconn, nbytes):
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(nconn):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, 7))
        payload = (f"conn{i:05d}:".encode() + os.urandom(16)) * (nbytes // 26 + 1)
        c = {"i": i, "s": s, "out": payload[:nbytes], "sent": 0, "in": bytearray(), "done": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = nconn
    deadline = time.monotonic() + TIMEOUT
    while left and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1):
            c = key.data
            s = c["s"]
            if ev & selectors.EVENT_WRITE and c["sent"] < nbytes:
                try:
                    c["sent"] += s.send(c["out"][c["sent"]:c["sent"] + 65536])
                except BlockingIOError:
                    pass
                if c["sent"] == nbytes:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                if d:
                    c["in"] += d
                else:
                    sel.unregister(s)
                    s.close()
                    c["done"] = True
                    left -= 1
    bad = [c["i"] for c in conns if not c["done"] or bytes(c["in"]) != c["out"]]
    if bad:
        sys.exit(f"{len(bad)} of {nconn} connections did not get exactly their bytes back (first: {bad[:5]})")
    print(f"many: {nconn} concurrent connections x {nbytes} bytes, each got exactly its own bytes back")


def cycles(host, n):
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection((host, 7), timeout=10)
        if i % 10 == 0:  # now and then with a byte through echo too
            s.sendall(b"x")
            if s.recv(1) != b"x":
                sys.exit(f"cycle {i}: echo did not answer")
        s.close()
    dt = time.monotonic() - t0
    print(f"cycles: {n} connect/close cycles in {dt:.2f} s ({n / dt:.0f}/s)")


def daytime(host, n):
    for i in range(n):
        s = socket.create_connection((host, 13), timeout=10)
        data = b""
        while True:
            d = s.recv(1000)
            if not d:
                break
            data += d
        s.close()
        if not (data.endswith(b"\r\n") and len(data) > 10):
            sys.exit(f"daytime {i}: {data!r}")
    print(f"daytime: {n} connections, e.g. {data.decode().strip()!r}")


def refused(host, port):
    t0 = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        dt = time.monotonic() - t0
        if dt > 1:
            sys.exit(f"refused only after {dt:.2f} s")
        print(f"refused: ConnectionRefusedError in {dt * 1000:.1f} ms")
        return
    except OSError as e:
        sys.exit(f"connect to closed port {port}: {e!r}, not ConnectionRefusedError")
    sys.exit(f"connect to closed port {port} succeeded")


def main():
    host, what, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
    {"discard": discard, "echo": echo, "chargen": chargen, "many": many, "cycles": cycles,
     "daytime": daytime, "refused": refused}[what](host, *args)


if __name__ == "__main__":
    main()
