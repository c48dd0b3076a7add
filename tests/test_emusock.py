#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_emusock.py - the emulator registration socket against hostile peers
(issue 12 items 4, 6, 10).

Against a real iomapd-sim (the simulated hypervisor built in), with hellos
written by hand:
  - a hello with trailing bytes, a short one, one of another protocol
    version, one naming a reserved domain id: refused, nothing registered;
  - an empty message: the connection is closed and the log says so;
  - connections that never say hello: at most 32 wait, the rest are
    refused at once (-EBUSY), and the silent ones are closed after 5 s;
  - a process of another uid: refused at accept (-EPERM) unless an
    emulators entry names its uid, and then only as what that entry covers;
  - two registrations of the same ioreq server: the second is refused.

Run as root from the build directory (make check does).  Exit: 0 pass,
1 fail, 77 skip.
"""
import errno
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

MAGIC, WELCOME_SIZE, NOBODY = 0x554d4549, 8, 65534


def hello(emu_domid, target, ioservid, caps=1, version=2):
    return struct.pack("<IHHHHI", MAGIC, version, emu_domid, ioservid, target, caps)


def register(path, msg, timeout=5):
    """Send msg as the hello; the welcome status (0 or -errno), or None."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None, None
    try:
        s.send(msg)
    except OSError:
        pass                    # refused at accept: the welcome is there already
    try:
        w = s.recv(64)
    except OSError:
        s.close()
        return None, None
    if len(w) < WELCOME_SIZE:
        s.close()
        return None, None
    magic, status = struct.unpack("<Ii", w[:8])
    return status, s


def as_uid(uid, fn):
    """fn() in a child running as uid (no groups); its int result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = -999
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = fn()
        except Exception:       # noqa: BLE001 - the child reports what it can
            pass
        os.write(w, str(out if isinstance(out, int) else -997).encode())
        os._exit(0)
    os.close(w)
    res = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    return int(res or b"-998")


def emulators(ctl):
    import json
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(ctl)
    s.sendall(b'{"jsonrpc":"2.0","method":"emulator.list","id":1}\n')
    buf = b""
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    return [e["emulator"] for e in json.loads(buf)["result"]["emulators"] if e["registered"]]


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    if not os.access(os.path.join(BUILD, "iomapd-sim"), os.X_OK):
        print("SKIP: iomapd-sim not built in %s" % BUILD)
        return 77
    T = tempfile.mkdtemp(prefix="iomapd-emusock.")
    os.chmod(T, 0o755)
    log = open(os.path.join(T, "log"), "w")
    emu, ctl = T + "/emu.sock", T + "/ctl.sock"
    with open(T + "/iomapd.conf", "w") as fh:
        fh.write("emulators = (\n"
                 "  { domid = 0; targets = \"any\"; },\n"
                 "  { domid = 0; targets = [ 1 ]; uid = %d; }%s\n"
                 ");\n" % (NOBODY, "".join(",\n  { domid = 0; targets = [ 1 ]; uid = %d; }"
                                              % (NOBODY - k) for k in range(1, 8))))
    try:
        procs.append(subprocess.Popen([BUILD + "/iomapd-sim", "--backend", "sim-embedded",
                                       "--sim-socket", T + "/hc.sock", "-e", emu, "-s", ctl,
                                       "-c", T + "/iomapd.conf"],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(emu) and os.path.exists(ctl)), "iomapd-sim up")

        # ---- a second daemon on the same emulator socket ----------------------
        # It is refused, and leaves nothing behind: before, its own
        # simulated-hypercall socket stayed (die() skipped the backend).
        p2 = subprocess.run([BUILD + "/iomapd-sim", "--backend", "sim-embedded",
                             "--sim-socket", T + "/hc2.sock", "-e", emu, "-s", T + "/ctl2.sock",
                             "-c", T + "/iomapd.conf"], capture_output=True, text=True,
                            timeout=20)
        check(p2.returncode == 1 and "in use by a running iomapd" in p2.stderr,
              "a second iomapd-sim on the same emulator socket exits 1", p2.stderr[-200:])
        check(not os.path.exists(T + "/hc2.sock") and not os.path.exists(T + "/ctl2.sock"),
              "and leaves no socket of its own behind", os.listdir(T))

        # ---- malformed hellos -------------------------------------------------
        st, s = register(emu, hello(0, 1, 0) + b"x")
        check(st == -errno.EPROTO, "a hello with one trailing byte: -EPROTO", st)
        st, s = register(emu, hello(0, 1, 0) + b"\0" * 65536)
        check(st == -errno.EPROTO, "a hello with 64 KiB of trailing bytes: -EPROTO", st)
        st, s = register(emu, hello(0, 1, 0)[:12])
        check(st == -errno.EPROTO, "a short hello: -EPROTO", st)
        st, s = register(emu, hello(0, 1, 0, version=1))
        check(st == -errno.EPROTO, "a hello of protocol 1: -EPROTO", st)
        st, s = register(emu, hello(0x7ff4, 1, 0))
        check(st == -errno.EINVAL, "emulator domain 0x7ff4 (reserved): -EINVAL", st)
        st, s = register(emu, hello(0, 0x7ff0, 0))
        check(st == -errno.EINVAL, "target 0x7ff0 (reserved): -EINVAL", st)
        st, s = register(emu, hello(0, 1, 0, caps=0x80))
        check(st == -errno.EINVAL, "unknown caps: -EINVAL", st)
        check(emulators(ctl) == [], "nothing registered by any of them", emulators(ctl))
        z = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        z.settimeout(5)
        z.connect(emu)
        z.send(b"")
        check(z.recv(64) == b"", "an empty message: the connection is closed")
        z.close()
        check(wait_for(lambda: "empty message" in open(T + "/log").read()),
              "and the log says so")

        # ---- the same ioreq server twice -------------------------------------
        st, first = register(emu, hello(0, 1, 5))
        check(st == 0, "0:1:5 registers", st)
        st, s = register(emu, hello(0, 1, 5))
        check(st == -errno.EEXIST, "a second 0:1:5: -EEXIST", st)
        st, other = register(emu, hello(0, 2, 5))
        check(st == 0, "0:2:5 (same id, another guest) registers too", st)

        # ---- uids ---------------------------------------------------------------
        def reg(target):
            return lambda: register(emu, hello(0, target, 7))[0]
        check(as_uid(NOBODY, reg(1)) == 0,
              "uid %d, named by an entry for guest 1: registers 0:1:7" % NOBODY)
        check(as_uid(NOBODY, reg(2)) == -errno.EPERM,
              "the same uid as 0:2:7 (not covered): -EPERM")
        # Refused at accept: the welcome may race the hello and be lost in
        # the reset; then the log is the witness.
        got = as_uid(4242, reg(1))
        check(got == -errno.EPERM or
              (got < -900 and wait_for(lambda: "(uid 4242) refused" in open(T + "/log").read())),
              "uid 4242 (named nowhere): refused at accept", got)

        # A guest's QEMU (a non-root uid) may hold at most 16 registrations:
        # it must not run the daemon out of descriptors or fill the table.
        def many():
            held, ok = [], 0
            for n in range(100, 120):
                st, s = register(emu, hello(0, 1, n))
                if st == 0:
                    ok += 1
                    held.append(s)
            return ok
        got = as_uid(NOBODY, many)
        check(got == 16, "uid %d: 16 of 20 registrations, the rest refused" % NOBODY, got)

        # ---- eight guests' QEMUs fill the waiting room ----------------------
        # 8 uids x 4 silent connections: only 24 may wait (8 places are
        # root's), and root registers meanwhile.
        kids, waiting = [], 0
        for k in range(8):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.setgroups([])
                os.setgid(NOBODY - k)
                os.setuid(NOBODY - k)
                held, kept = [], 0
                for _ in range(4):
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    c.connect(emu)
                    held.append(c)
                time.sleep(0.3)
                for c in held:
                    c.setblocking(False)
                    try:
                        c.recv(64)      # a welcome now is a refusal (-EBUSY)
                    except BlockingIOError:
                        kept += 1
                os.write(w, b"%d" % kept)
                time.sleep(30)
                os._exit(0)
            os.close(w)
            kids.append(pid)
            waiting += int(os.read(r, 16) or b"0")
            os.close(r)
        check(waiting == 24, "8 uids x 4 silent connections: 24 wait, 8 places kept "
              "for root", waiting)
        st, s = register(emu, hello(0, 4, 0))
        check(st == 0, "root registers while they wait", st)
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        time.sleep(0.3)

        # ---- silent connections ------------------------------------------------
        idle, refused = [], 0
        for _ in range(40):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(2)
            s.connect(emu)
            idle.append(s)
        time.sleep(0.5)
        for s in idle:
            s.setblocking(False)
            try:
                w = s.recv(64)
                if len(w) >= 8 and struct.unpack("<Ii", w[:8])[1] == -errno.EBUSY:
                    refused += 1
            except BlockingIOError:
                pass
        check(refused >= 8, "40 silent connections: those past 32 are refused (-EBUSY)",
              "%d refused" % refused)
        st, s = register(emu, hello(0, 3, 0))
        check(st == -errno.EBUSY or st is None, "a hello while 32 wait: refused", st)
        time.sleep(5.5)
        closed = 0
        for s in idle:
            s.setblocking(True)
            s.settimeout(2)
            try:
                closed += s.recv(64) == b""
            except OSError:
                pass
        check(closed >= 30, "after 5 s without a hello they are closed (%d)" % closed)
        check(wait_for(lambda: "no hello within" in open(T + "/log").read()),
              "and the log says so")
        st, s = register(emu, hello(0, 3, 0))
        check(st == 0, "then a registration goes through again", st)
    finally:
        status = finish("test_emusock", T, log, "iomapd-sim log", 6000)
    return status


if __name__ == "__main__":
    sys.exit(main())
