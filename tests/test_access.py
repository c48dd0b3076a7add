#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_access.py - who may use the control socket (issue 12 item 9).

Access is decided by the connecting process's own credentials as the
kernel saw them at connect (SO_PEERCRED, SO_PEERGROUPS), never by the
user database.  Against a real iomapd with --socket-group G and
--admin-group A, from processes running as uid 65534 with chosen groups:
  - no group: refused;
  - G only as a supplementary group (systemd's SupplementaryGroups=):
    may query, may not call policy.reload;
  - A only, not G: may connect and call policy.reload (the socket is 0666
    then: one file cannot carry two groups);
  - a process that dropped its groups has lost them.
Before, the daemon read the user database: the second and third cases were
refused and a process that had dropped A still passed policy.reload.

Run as root from the build directory (make check does).  Exit: 0 pass,
1 fail, 77 skip (not root, or a binary is missing).
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

G_SOCK, G_ADMIN, NOBODY = 47001, 47002, 65534


def call_as(path, groups, method, gid=NOBODY):
    """method on the socket from a child of uid 65534 with these groups.
    Returns "refused" (no reply, or the connection's refusal), or the
    error code of the reply, or 0 for a result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = "refused"
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(NOBODY)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            s.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            if buf:
                m = json.loads(buf.split(b"\n", 1)[0])
                if m.get("id") is None and "error" in m:
                    out = "refused"
                else:
                    out = str(m["error"]["code"]) if "error" in m else "0"
        except (OSError, ValueError, KeyError):
            out = "refused"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    res = b""
    while True:
        d = os.read(r, 64)
        if not d:
            break
        res += d
    os.close(r)
    os.waitpid(pid, 0)
    return res.decode()


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root to run clients as other users")
        return 77
    for b in ("iomapd", "iomap-sim"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            print("SKIP: %s not built in %s" % (b, BUILD))
            return 77
    T = tempfile.mkdtemp(prefix="iomapd-access.")
    os.chmod(T, 0o755)
    log = open(os.path.join(T, "log"), "w")
    try:
        procs.append(subprocess.Popen([BUILD + "/iomap-sim", "-s", T + "/sim.sock",
                                       "-H", T + "/hc.sock", "-g", "1", "-G", "4096"],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(T + "/hc.sock")), "iomap-sim up")
        ctl = T + "/ctl.sock"
        procs.append(subprocess.Popen([BUILD + "/iomapd", "--backend", "sim",
                                       "--sim-socket", T + "/sim.sock", "-e", T + "/emu.sock",
                                       "-s", ctl, "--socket-group", str(G_SOCK),
                                       "--admin-group", str(G_ADMIN), "-c", T + "/none.conf"],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(ctl)), "iomapd up")
        st = os.stat(ctl)
        check(stat.S_IMODE(st.st_mode) == 0o666 and st.st_gid == G_SOCK,
              "with an admin group apart from the socket group: mode 0666, group G",
              "mode %o gid %d" % (stat.S_IMODE(st.st_mode), st.st_gid))

        got = call_as(ctl, [], "status")
        check(got == "refused", "no group: refused", got)
        got = call_as(ctl, [G_SOCK], "status")
        check(got == "0", "socket group as a supplementary group only: may query", got)
        got = call_as(ctl, [G_SOCK], "policy.reload")
        check(got == "-32000", "socket group: policy.reload denied (-32000)", got)
        got = call_as(ctl, [G_SOCK], "status", gid=G_SOCK)
        check(got == "0", "socket group as the primary group: may query", got)
        got = call_as(ctl, [G_ADMIN], "status")
        check(got == "0", "admin group, not in the socket group: may connect", got)
        got = call_as(ctl, [G_ADMIN], "policy.reload")
        check(got == "0", "admin group: policy.reload allowed", got)
        got = call_as(ctl, [G_ADMIN, G_SOCK], "policy.reload")
        check(got == "0", "both groups: policy.reload allowed", got)
        # The same 'user' after dropping its groups: nothing is left.
        got = call_as(ctl, [], "policy.reload")
        check(got == "refused", "groups dropped: refused, whatever the user database says",
              got)

        # With only a socket group the socket stays 0660 (the file decides too).
        ctl2 = T + "/ctl2.sock"
        procs.append(subprocess.Popen([BUILD + "/iomapd", "--backend", "sim",
                                       "--sim-socket", T + "/sim.sock", "-e", T + "/emu2.sock",
                                       "-s", ctl2, "--socket-group", str(G_SOCK),
                                       "-c", T + "/none.conf"],
                                      stdout=log, stderr=subprocess.STDOUT))
        # A second daemon on the same sim is refused by iomap-sim's attach
        # socket only if it is busy; what matters here is the socket mode.
        if wait_for(lambda: os.path.exists(ctl2), timeout=5):
            st = os.stat(ctl2)
            check(stat.S_IMODE(st.st_mode) == 0o660,
                  "only a socket group: mode 0660", "mode %o" % stat.S_IMODE(st.st_mode))
    finally:
        status = finish("test_access", T, log, "iomapd and iomap-sim log", 4000)
    return status


if __name__ == "__main__":
    sys.exit(main())
