#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""attack: the --metrics HTTP endpoint has no bound on connections.

Any local user (the unit allows loopback) opens connections to the
metrics port and keeps each alive by sending one header byte every few
seconds (evhttp_set_timeout(10) is a per-read timeout, reset by every
byte; a request has no overall deadline).  The daemon accepts until its
descriptor table is full; then:
  - libevent's evconnlistener retries accept() at once on EMFILE (no
    error callback, no back-off): the loop spins at 100% CPU;
  - each retry writes "[warn] Error from accept() call" to stderr,
    bypassing the logger and its rate limits (millions of lines a minute
    into the journal; event_set_log_callback is never installed);
  - emulators cannot register (no descriptor for the memfd/eventfds, and
    the emulator acceptor backs off): a root QEMU's iomap_emu_open()
    times out.
The daemon runs with RLIMIT_NOFILE 256 so that 300 connections suffice;
with the unit's 8192 it takes 8192 (one user, a few processes).

Checks: after 12 s of slowloris (longer than the 10 s timeout) the
connections are still open (the bound is what fails), a root emulator
registers, and the log has no more than a few libevent warnings.

Run as root from the build directory.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

MAGIC = 0x554d4549
NCONN = 300


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
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
        # Slowloris: a byte every 3 s keeps each past the 10 s timeout.
        for _ in range(4):
            time.sleep(3)
            for c in conns:
                try:
                    c.send(b"E")
                except OSError:
                    pass
        nfd = len(os.listdir("/proc/%d/fd" % d.pid))
        c0 = cpu_seconds(d.pid)
        time.sleep(1)
        print("after 12 s: daemon holds %d descriptors, %.2f s CPU in the last 1 s"
              % (nfd, cpu_seconds(d.pid) - c0))
        check(nfd < 200, "the metrics endpoint does not fill the daemon's descriptor table",
              nfd)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        st = None
        try:
            s.connect(emu)
            s.send(struct.pack("<IHHHHI", MAGIC, 2, 0, 1, 1, 1))
            st = struct.unpack("<Ii", s.recv(64)[:8])[1]
        except OSError as e:
            st = repr(e)
        check(st == 0, "a root emulator still registers during the flood", st)
        s.close()
        warns = open(T + "/log").read().count("Error from accept() call")
        check(warns < 10, "no flood of libevent accept warnings in the log", warns)
    finally:
        for c in conns:
            c.close()
        rc = finish("test_metrics_flood", T, log, "iomapd-sim log", 600)
    return rc


if __name__ == "__main__":
    sys.exit(main())
