#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""the --metrics HTTP endpoint under a connection flood (slowloris).

Any local user (the unit allows loopback) may open connections to the
metrics port and keep each alive by sending one header byte every few
seconds.  The daemon runs with RLIMIT_NOFILE 256 here, so that 300 such
connections would fill its descriptor table if it let them.

Outcomes checked (no timings; the waits are far beyond the bounds):
  - while 300 slow clients try to hold connections, the daemon keeps a
    bounded number of descriptors (it caps the metrics connections);
  - a slow client that has not finished its request 12 s after connecting
    has been closed (an overall deadline, not a per-read timeout);
  - meanwhile the daemon answers a control request and a root emulator
    registers;
  - the log stays short (no flood of libevent accept warnings; whatever
    libevent says goes through the daemon's logger);
  - once the flood is over, a scrape is answered again.

Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

MAGIC = 0x554d4549
NCONN = 300
MAX_LOG_LINES = 100


def control_status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(b'{"jsonrpc":"2.0","method":"status","id":1}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
        return json.loads(buf).get("result") is not None
    except (OSError, ValueError) as e:
        return repr(e)
    finally:
        s.close()


def register(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect(path)
        s.send(struct.pack("<IHHHHI", MAGIC, 2, 0, 1, 1, 1))
        return struct.unpack("<Ii", s.recv(64)[:8])[1]
    except OSError as e:
        return repr(e)
    finally:
        s.close()


def closed_by_peer(c):
    """True if the daemon has closed c (EOF or reset), without blocking."""
    c.setblocking(False)
    try:
        return c.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def shrink(path, keep=65536):
    """A flooded log (gigabytes, without the fix) cut down to its tail."""
    if os.path.getsize(path) > keep:
        with open(path, "rb") as f:
            f.seek(-keep, os.SEEK_END)
            tail = f.read()
        with open(path, "wb") as f:
            f.write(tail)


def main():
    if not os.access(os.path.join(BUILD, "iomapd-sim"), os.X_OK):
        print("SKIP: iomapd-sim not built in %s" % BUILD)
        return 77
    T = tempfile.mkdtemp(prefix="iomapd-mflood.")
    log = open(os.path.join(T, "log"), "w")
    emu, ctl = T + "/emu.sock", T + "/ctl.sock"
    conns = []
    try:
        d = subprocess.Popen(["prlimit", "--nofile=256:256", BUILD + "/iomapd-sim",
                              "--backend", "sim-embedded", "--sim-socket", T + "/hc.sock",
                              "-e", emu, "-s", ctl, "-c", "/dev/null",
                              "--metrics", "127.0.0.1:0"], stdout=log, stderr=subprocess.STDOUT)
        procs.append(d)
        check(wait_for(lambda: "metrics on http" in open(T + "/log").read()), "iomapd-sim up")
        port = int(re.search(r"127\.0\.0\.1:(\d+)/metrics", open(T + "/log").read()).group(1))
        for _ in range(NCONN):
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=5)
                c.send(b"G")
                conns.append(c)
            except OSError:
                break
        first = conns[0] if conns else None
        # Within the 5 s every connection gets, only the cap (16) bounds them.
        time.sleep(0.5)
        nfd0 = len(os.listdir("/proc/%d/fd" % d.pid))
        print("with %d clients connected: the daemon holds %d descriptors" % (len(conns), nfd0))
        check(nfd0 < 64, "at most 16 metrics connections are kept (well under 64 "
              "descriptors in all)", nfd0)
        # Slowloris: a byte every 3 s (shorter than any per-read timeout).
        for _ in range(4):
            time.sleep(3)
            for c in conns:
                try:
                    c.send(b"E")
                except OSError:
                    pass
        nfd = len(os.listdir("/proc/%d/fd" % d.pid))
        print("after 12 s of slowloris: the daemon holds %d descriptors" % nfd)
        check(nfd < 128, "the metrics endpoint does not fill the daemon's descriptor table",
              nfd)
        check(first is not None and closed_by_peer(first),
              "a client still sending its request 12 s after connecting has been closed")
        # Open the flood again: the daemon must serve the others meanwhile.
        for c in conns:
            c.close()
        conns = []
        for _ in range(NCONN):
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=5)
                c.send(b"G")
                conns.append(c)
            except OSError:
                break
        st = control_status(ctl)
        check(st is True, "the control socket answers during the flood", st)
        if os.geteuid() == 0:
            st = register(emu)
            check(st == 0, "a root emulator registers during the flood", st)
        else:
            print("SKIP: registration (needs root)")
        for c in conns:
            c.close()
        conns = []
        body = None
        for _ in range(50):
            try:
                body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                              timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        check(body is not None and "iomapd_" in body, "a scrape is answered after the flood")
        check(d.poll() is None, "the daemon is still running")
        text = open(T + "/log", errors="replace").read()
        warns = text.count("Error from accept() call")
        lines = text.count("\n")
        print("log: %d lines, %d libevent accept warnings" % (lines, warns))
        check(warns < 10, "no flood of libevent accept warnings in the log", warns)
        check(lines < MAX_LOG_LINES, "the log stays under %d lines" % MAX_LOG_LINES, lines)
        check(not re.search(r"^\[(warn|err|msg|debug)\]", text, re.M),
              "libevent's messages go through the daemon's logger")
    finally:
        for c in conns:
            c.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shrink(T + "/log")
        rc = finish("test_metrics_flood", T, log, "iomapd-sim log", 3000)
    return rc


if __name__ == "__main__":
    sys.exit(main())
