#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""attack: a query-only member of the control socket's group locks root
and the admin group out of the control socket.

control.c counts every client against CTL_MAX_CLIENTS (64) before it
looks at who connects, there is no per-uid bound and no idle timeout.  A
user in the socket group only (may query, may not drain or reload) opens
64 connections and keeps them silent: root's `xl-iomap drain`/`reload`
then gets "too many control clients", for as long as the user likes.
control.c's own comment says "An admin may always connect."  Each refused
attempt also logs a warning line (no rate limit), so a connect loop
floods the journal as well.

Run as root from the build directory.  Exit 0 pass, 1 fail, 77 skip.
"""
import grp
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

NOBODY = 65534


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    try:
        group = grp.getgrgid(NOBODY).gr_name
    except KeyError:
        print("SKIP: no group %d" % NOBODY)
        return 77
    T = tempfile.mkdtemp(prefix="iomapd-lockout.")
    os.chmod(T, 0o755)
    log = open(os.path.join(T, "log"), "w")
    emu, ctl = T + "/emu.sock", T + "/ctl.sock"
    try:
        procs.append(subprocess.Popen([BUILD + "/iomapd-sim", "--backend", "sim-embedded",
                                       "--sim-socket", T + "/hc.sock", "-e", emu, "-s", ctl,
                                       "-c", "/dev/null", "--socket-group", group],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(ctl)), "iomapd-sim up")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                    # the socket-group member
            os.close(r)
            os.setgroups([NOBODY])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            held = []
            for _ in range(80):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(ctl)
                    held.append(s)
                except OSError:
                    break
            os.write(w, b"x")
            time.sleep(30)
            os._exit(0)
        os.close(w)
        os.read(r, 1)
        time.sleep(0.5)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(ctl)
        s.sendall(b'{"jsonrpc":"2.0","method":"status","id":1}\n')
        buf = b""
        try:
            while b"\n" not in buf:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
        except OSError:
            pass
        reply = json.loads(buf.split(b"\n")[0]) if buf else {}
        check("result" in reply, "root still gets an answer while a socket-group user "
              "holds idle connections", buf[:120])
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    finally:
        rc = finish("test_ctl_admin_lockout", T, log, "iomapd-sim log", 1500)
    return rc


if __name__ == "__main__":
    sys.exit(main())
