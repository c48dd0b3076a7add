#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_ctl_bounds: a query-only member of the control socket's group
cannot lock root and the admin group out of the control socket.

A user in the socket group only (may query, may not drain or reload)
opens 80 connections and keeps them silent.  It gets CTL_MAX_PER_UID (16)
of them, the others are refused with a reason.  Four such uids get 56
together: the last 8 of the 64 are kept for admins.  The refusals are
logged once, not 264 times, and root still gets an answer.  (Before: the first 64
were taken, root got "too many control clients", and every refusal was a
log line.)

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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
        kids, got = [], []
        # Four query-only uids, one after the other, each asking for 80.
        for uid in (NOBODY, NOBODY - 1, NOBODY - 2, NOBODY - 3):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:                # a socket-group member
                os.close(r)
                os.setgroups([NOBODY])
                os.setgid(NOBODY)
                os.setuid(uid)
                held = []
                for _ in range(80):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        s.connect(ctl)
                        held.append(s)
                    except OSError:
                        break
                # The refused ones got a reason and EOF; the kept stay silent.
                why, kept = b"", 0
                time.sleep(1)
                for s in held:
                    s.setblocking(False)
                    try:
                        d = s.recv(512)
                    except BlockingIOError:
                        kept += 1
                        continue
                    if d and not why:
                        why = d
                os.write(w, b"%d %s" % (kept, why.split(b"\n")[0]))
                time.sleep(60)
                os._exit(0)
            os.close(w)
            kids.append(pid)
            got.append(os.read(r, 1024).split(b" ", 1))
            os.close(r)
        check(int(got[0][0]) == 16, "a non-admin uid holds 16 control connections",
              got[0][0])
        check(b"of this uid" in got[0][1], "refused with the reason", got[0][1][:120])
        total = sum(int(g[0]) for g in got)
        check(total == 56, "four uids hold 56 together: 8 of 64 are kept for admins",
              total)
        check(b"kept for admins" in got[3][1], "the fourth is told why", got[3][1][:120])
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
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    finally:
        log.flush()
        refusals = open(os.path.join(T, "log")).read().count("refused (")
        check(refusals == 1, "one log line for %d refusals" % (4 * 80 - 56), refusals)
        rc = finish("test_ctl_bounds", T, log, "iomapd-sim log", 1500)
    return rc


if __name__ == "__main__":
    sys.exit(main())
