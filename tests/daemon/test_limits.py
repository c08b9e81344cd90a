#!/usr/bin/python3
"""A weft host daemon at its limits (issue 10): out of descriptors, and at
--max-sockets.

  test_limits.py WEFT

1. Out of descriptors: a host runs under `ulimit -n 400` and this script
   opens control connections until the daemon has no descriptor left. The
   daemon must then sit idle (it spun at 100% CPU on its level-triggered
   listener) and serve again as soon as descriptors are freed.
2. At --max-sockets 4, a connection established on a listener waits in the
   listener's queue (it was reset) and is handed over once a socket closes;
   a new socket gets ENFILE meanwhile.

No privileges: the hosts use a 127.0.0.1 UDP port and addresses in
192.0.2.0/24; their control sockets live in a temporary WEFT_RUNTIME_DIR.
"""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from many_clients import free_udp_port  # noqa: E402  (beside this file)

ADDR = "192.0.2.30"
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def ok(msg):
    print("ok: " + msg)


def start_host(weft, tmp, env, name, extra, nofile=None):
    log = open(os.path.join(tmp, f"host-{name}.log"), "w")

    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    p = subprocess.Popen([weft, "host", "--name", name, "--addr", ADDR + "/24",
                          "--udp-link", f"127.0.0.1:{free_udp_port()}"] + extra,
                         stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=limit)
    path = os.path.join(tmp, f"host-{name}.log")
    for _ in range(200):
        if "ready on" in open(path).read():
            return p
        if p.poll() is not None:
            sys.exit(f"FAIL: host {name} exited: {open(path).read()}")
        time.sleep(0.05)
    sys.exit(f"FAIL: host {name} not ready")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return -1


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def netstat_json(weft, env, name, timeout):
    r = subprocess.run([weft, "netstat", "-a", "--json"], env=dict(env, WEFT_HOST=name),
                       capture_output=True, text=True, timeout=timeout)
    return json.loads(r.stdout) if r.returncode == 0 else None


def out_of_descriptors(weft, tmp, env):
    host = start_host(weft, tmp, env, "fd", [], nofile=400)
    path = os.path.join(env["WEFT_RUNTIME_DIR"], "fd", "control.sock")
    conns = []
    # Far more than 400 - the daemon's own: it runs out, and the rest wait
    # in the kernel's listen queue (then connect says EAGAIN).
    stalled = time.time()
    while len(conns) < 600 and time.time() - stalled < 1.0:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:  # the listen queue is full: the daemon is behind, or stopped taking
            s.close()
            time.sleep(0.01)
            continue
        conns.append(s)
        stalled = time.time()
    time.sleep(0.5)
    fds = len(os.listdir(f"/proc/{host.pid}/fd"))
    if fds < 390:
        fail(f"the daemon holds {fds} descriptors of 400 after {len(conns)} connections: not at its limit")
    c0 = cpu_seconds(host.pid)
    time.sleep(2.0)
    used = cpu_seconds(host.pid) - c0
    if used > 0.2:
        fail(f"out of descriptors, the daemon used {used:.2f} s of CPU in 2 s (spinning)")
    else:
        ok(f"out of descriptors ({fds} open), the daemon idles: {used:.2f} s of CPU in 2 s")
    # Freed: it serves again at once. (The last ones wait in the listen
    # queue; they would take the first descriptors freed.)
    for s in conns[-250:]:
        s.close()
    conns = conns[:-250]
    t0 = time.time()
    snap = None
    while time.time() - t0 < 5 and snap is None:
        try:
            snap = netstat_json(weft, env, "fd", timeout=5)
        except subprocess.TimeoutExpired:
            pass
    if snap is None:
        fail("after 250 control connections closed, netstat still got no answer")
    else:
        ex = snap["counters"]["daemon"]["descriptor_exhaustion"]
        if ex < 1:
            fail(f"daemon.descriptor_exhaustion is {ex}")
        else:
            ok(f"served again {time.time() - t0:.2f} s after descriptors were freed "
               f"(daemon.descriptor_exhaustion {ex})")
    for s in conns:
        s.close()
    if stop(host) != 0:
        fail("host fd did not stop cleanly")


def max_sockets(weft, tmp, env):
    host = start_host(weft, tmp, env, "cap", ["--max-sockets", "4"])
    lib_path = os.path.join(os.path.dirname(os.path.abspath(weft)), "libweft-client.so")
    # The client library runs in a child of its own: it reads WEFT_HOST once.
    code = r'''
import ctypes, errno, os, select, socket, struct, sys, time
lib = ctypes.CDLL(sys.argv[1], use_errno=True)
def sa(port):
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton("192.0.2.30") + bytes(8)
def check(cond, what):
    if not cond:
        print("FAIL: " + what); sys.exit(1)
l = lib.weft_socket(socket.AF_INET, socket.SOCK_STREAM, 0)
a = sa(5000)
check(lib.weft_bind(l, a, len(a)) == 0 and lib.weft_listen(l, 8) == 0, "listen")
c1 = lib.weft_socket(socket.AF_INET, socket.SOCK_STREAM, 0)
c2 = lib.weft_socket(socket.AF_INET, socket.SOCK_STREAM, 0)
check(lib.weft_connect(c1, a, len(a)) == 0, "connect c1")
a1 = lib.weft_accept(l, None, None)
check(a1 >= 0, "accept a1")
# Four sockets: c2's connection completes in TCP but cannot be handed over.
check(lib.weft_connect(c2, a, len(a)) == 0, "connect c2 (errno %d)" % ctypes.get_errno())
r, _, _ = select.select([l], [], [], 0.5)
check(not r, "the listener is readable at the socket limit")
check(lib.weft_socket(socket.AF_INET, socket.SOCK_STREAM, 0) == -1 and ctypes.get_errno() == errno.ENFILE,
      "a fifth socket: want ENFILE, got errno %d" % ctypes.get_errno())
lib.weft_close(c1); lib.weft_close(a1)
r, _, _ = select.select([l], [], [], 3.0)
check(r, "the waiting connection was not handed over after two sockets closed")
a2 = lib.weft_accept(l, None, None)
check(a2 >= 0, "accept a2")
check(lib.weft_send(c2, b"hi", 2, 0) == 2, "send on c2")
buf = ctypes.create_string_buffer(8)
n = lib.weft_recv(a2, buf, 8, 0)
check(n == 2 and buf.raw[:2] == b"hi", "the waiting connection carries data (recv %d errno %d)" % (n, ctypes.get_errno()))
print("ok: at --max-sockets 4 a connection waits in the listener's queue, a new socket gets ENFILE, "
      "and the connection is handed over intact when sockets close")
'''
    r = subprocess.run([sys.executable, "-c", code, lib_path], env=dict(env, WEFT_HOST="cap"),
                       capture_output=True, text=True, timeout=30)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        fail(f"max-sockets client exit {r.returncode}: {r.stderr.strip()}")
    snap = netstat_json(weft, env, "cap", timeout=5)
    hits = snap["counters"]["daemon"]["socket_limit_hits"] if snap else 0
    if hits < 2:
        fail(f"daemon.socket_limit_hits is {hits}, want at least 2 (the waiting connection, the refused socket)")
    if stop(host) != 0:
        fail("host cap did not stop cleanly")


def main():
    weft = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weft-limits.")
    env = dict(os.environ, WEFT_RUNTIME_DIR=os.path.join(tmp, "run"))
    env.pop("WEFT_HOST", None)
    try:
        out_of_descriptors(weft, tmp, env)
        max_sockets(weft, tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print(f"{fails} failure(s)")
        sys.exit(1)


if __name__ == "__main__":
    main()
