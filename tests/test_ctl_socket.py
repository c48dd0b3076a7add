#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_ctl_socket.py - the control socket is created safely (issue 3).

Against real iomapd processes (each on its own iomap-sim), with nothing
but Python's standard library:
  - the socket is a socket of mode 0660, also when iomapd runs under
    umask 000;
  - a live daemon on the path: a second iomapd refuses to start, says so,
    and leaves the first one's socket alone (same inode, still answering);
  - a stale socket file (nobody listening) is replaced;
  - a regular file, a directory or a symlink at the path is not removed:
    iomapd refuses with a message naming the path.

Run from the build directory (make check does).  Exit: 0 pass, 1 fail,
77 skip (a binary is missing).
"""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402



def status(path):
    """One status call on the control socket; the result or None."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b'{"jsonrpc":"2.0","method":"status","id":1}\n')
        buf = b""
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        s.close()
        return json.loads(buf.split(b"\n", 1)[0]).get("result")
    except (OSError, ValueError):
        return None


def start_sim(T, n, log):
    p = subprocess.Popen([BUILD + "/iomap-sim", "-s", "%s/sim%d.sock" % (T, n),
                          "-H", "%s/hc%d.sock" % (T, n), "-g", "1", "-G", "4096"],
                         stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    wait_for(lambda: os.path.exists("%s/hc%d.sock" % (T, n)))
    return p


def iomapd(T, n, ctl, umask=None):
    """Start iomapd number n (on its own sim) with control socket ctl."""
    def pre():
        if umask is not None:
            os.umask(umask)
    out = open("%s/iomapd%d.%d.log" % (T, n, len(procs)), "w+")
    p = subprocess.Popen([BUILD + "/iomapd", "--backend", "sim",
                          "--sim-socket", "%s/sim%d.sock" % (T, n),
                          "-e", "%s/emu%d.sock" % (T, n), "-s", ctl,
                          "-c", T + "/none.conf"],
                         stdout=out, stderr=subprocess.STDOUT, preexec_fn=pre)
    p.out = out
    procs.append(p)
    return p


def output(p):
    p.out.seek(0)
    return p.out.read()


def refused(p, timeout=10):
    """The exit status and output of an iomapd expected to give up."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None, output(p)
    return p.returncode, output(p)


def main():
    for b in ("iomapd", "iomap-sim"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            print("SKIP: %s not built in %s" % (b, BUILD))
            return 77
    T = tempfile.mkdtemp(prefix="iomapd-sock.")
    log = open(os.path.join(T, "log"), "w")
    try:
        for n in range(1, 5):
            start_sim(T, n, log)

        # ---- a live daemon, mode 0660 even under umask 000 -----------------
        ctl = T + "/ctl.sock"
        a = iomapd(T, 1, ctl, umask=0)
        check(wait_for(lambda: status(ctl) is not None), "first iomapd answers on its socket")
        st = os.lstat(ctl)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
              "control socket is a socket of mode 0660 (iomapd under umask 000)",
              "mode %o" % st.st_mode)

        # ---- a second iomapd on the same path ------------------------------
        b = iomapd(T, 2, ctl)
        rc, out = refused(b)
        check(rc not in (None, 0), "second iomapd on a live socket exits non-zero", "rc %r" % rc)
        check("in use by a running iomapd" in out and ctl in out,
              "it says the socket is in use by a running iomapd", repr(out[-300:]))
        st2 = os.lstat(ctl) if os.path.lexists(ctl) else None
        check(st2 is not None and st2.st_ino == st.st_ino and stat.S_ISSOCK(st2.st_mode),
              "the first daemon's socket is left alone (same inode)")
        check(a.poll() is None and status(ctl) is not None,
              "the first daemon still answers on it")

        # ---- a stale socket: nobody listening --------------------------------
        stale = T + "/stale.sock"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()                       # the file stays, nobody listens
        os.chmod(stale, 0o600)
        check(status(stale) is None, "a stale socket file: nobody answers on it")
        c = iomapd(T, 3, stale)
        check(wait_for(lambda: status(stale) is not None),
              "iomapd starts on a stale socket and answers")
        st3 = os.lstat(stale)
        check(stat.S_ISSOCK(st3.st_mode) and stat.S_IMODE(st3.st_mode) == 0o660,
              "the stale socket (mode 0600) was replaced by a new one of mode 0660",
              "mode %o" % st3.st_mode)
        c.terminate()
        check(c.wait(timeout=10) == 0 and not os.path.lexists(stale),
              "SIGTERM: the replacement socket is removed at exit")
        check("removing stale socket " + stale in output(c),
              "the log says the stale socket was removed", repr(output(c)[-300:]))

        # ---- things that are not sockets --------------------------------------
        reg = T + "/file.sock"
        with open(reg, "w") as fh:
            fh.write("precious\n")
        d = T + "/dir.sock"
        os.mkdir(d)
        lnk = T + "/link.sock"
        os.symlink(ctl, lnk)            # even pointing at a live socket
        for path, kind in ((reg, "a regular file"), (d, "a directory"), (lnk, "a symlink")):
            before = os.lstat(path)
            p = iomapd(T, 4, path)
            rc, out = refused(p)
            check(rc not in (None, 0) and "exists and is not a socket" in out and path in out,
                  "%s at the path: iomapd refuses, naming it" % kind, "rc %r %r" % (rc, out[-300:]))
            after = os.lstat(path) if os.path.lexists(path) else None
            check(after is not None and after.st_ino == before.st_ino and
                  stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode),
                  "%s at the path is left in place" % kind)
        with open(reg) as fh:
            check(fh.read() == "precious\n", "the regular file's content is untouched")
        check(os.path.exists(T + "/sim4.sock") and not os.path.exists(T + "/emu4.sock"),
              "a refused iomapd leaves no emulator socket behind")

        check(a.poll() is None and status(ctl) is not None,
              "the first daemon served throughout")
        a.terminate()
        check(a.wait(timeout=10) == 0 and not os.path.lexists(ctl),
              "SIGTERM: the first daemon removes its socket")
    finally:
        exit_status = finish("test_ctl_socket", T, log, "sim log", 4000)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
