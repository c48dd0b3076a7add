#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_emu_answer_kick.py - a kick of a registered emulator's answer
eventfd with no request in flight is read by iomapd.  Before, it made the
daemon's loop spin at 100% CPU for good.

emusock.c watches the answer eventfd (EV_READ|EV_PERSIST) and only asks
for a core pass; the core (emu_collect) drains the eventfd only for an
emulator with requests in flight (chan.busy != 0).  So a kick with none in
flight is never read, the eventfd stays readable, and the loop wakes
again at once, forever.  Any registered peer can do it (a deprivileged
QEMU, too), and an honest one can by a race: it answers A and B, the
daemon reaps both after A's kick, then B's kick arrives with busy == 0.

Check (no timing assertion): after the kick, the daemon must have read
the eventfd (it becomes unreadable) within 10 s, twice more after that,
and the daemon is still running.  It also prints the daemon's CPU time over
one second (information only).

Run as root from the build directory (make check does).  Exit 0 pass,
1 fail, 77 skip.
"""
import array
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

MAGIC = 0x554d4549


def hello(emu_domid, target, ioservid, caps=1):
    return struct.pack("<IHHHHI", MAGIC, 2, emu_domid, ioservid, target, caps)


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    if not os.access(os.path.join(BUILD, "iomapd-sim"), os.X_OK):
        print("SKIP: iomapd-sim not built in %s" % BUILD)
        return 77
    T = tempfile.mkdtemp(prefix="iomapd-kick.")
    log = open(os.path.join(T, "log"), "w")
    emu, ctl = T + "/emu.sock", T + "/ctl.sock"
    try:
        d = subprocess.Popen([BUILD + "/iomapd-sim", "--backend", "sim-embedded",
                              "--sim-socket", T + "/hc.sock", "-e", emu, "-s", ctl,
                              "-c", "/dev/null"], stdout=log, stderr=subprocess.STDOUT)
        procs.append(d)
        check(wait_for(lambda: os.path.exists(emu) and os.path.exists(ctl)), "iomapd-sim up")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        s.connect(emu)
        s.send(hello(0, 1, 5))
        msg, anc, _, _ = s.recvmsg(8, socket.CMSG_SPACE(3 * 4))
        check(struct.unpack("<Ii", msg)[1] == 0 and anc, "0:1:5 registers")
        fds = array.array("i")
        fds.frombytes(anc[0][2])
        resp = fds[2]
        os.write(resp, struct.pack("=Q", 1))       # an answer kick, nothing in flight
        check(wait_for(lambda: not readable(resp), timeout=10),
              "the daemon read the answer kick (the eventfd is no longer readable)")
        # Twice more, and one kick per idle second is still read each time.
        for _ in range(2):
            os.write(resp, struct.pack("=Q", 1))
            check(wait_for(lambda: not readable(resp), timeout=10),
                  "a later kick is read too")
        c0 = cpu_seconds(d.pid)
        time.sleep(1)
        print("daemon CPU over 1 s after the kicks: %.2f s" % (cpu_seconds(d.pid) - c0))
        check(d.poll() is None, "iomapd-sim is still running")
        s.close()
    finally:
        rc = finish("test_emu_answer_kick", T, log, "iomapd-sim log", 2000)
    return rc


if __name__ == "__main__":
    sys.exit(main())
