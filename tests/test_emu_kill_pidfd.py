#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""the policy's kill-emulator step kills the process that registered, or
nobody: never a process that got its pid later.

The registration socket's SO_PEERCRED pid is that of the process that
connected.  A registered connection can outlive that process (a fork
keeps it), and the pid can then be given to another process.  The test
makes that happen deterministically in a private pid namespace
(unshare --pid, then /proc/sys/kernel/ns_last_pid chooses the next pid):

  - the registrant R connects, registers as ioreq server 0:1:0, maps 64
    pages through the simulated hypervisor, forks a keeper K that holds
    both connections and never answers, and exits;
  - a bystander V is given R's pid;
  - the guest removes 4 of the mapped pages; the policy's invalidating
    timeout (300 ms, steps log then kill-emulator) runs its kill step.

Checks: V is still alive, the daemon logged that the registrant is gone,
and the pages are released all the same (forced unmap).  Needs root (the
namespace and ns_last_pid); exit 0 pass, 1 fail, 77 skip.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402

EMU_MAGIC = 0x554d4549
SIMHC_MAGIC = 0x43484d53
SIMHC_EMU_CREATE, SIMHC_MAP = 1, 2
REQ = struct.Struct("<IHHHHIQQII")
RESP_HEAD = struct.Struct("<Iiq")

CONF = """emulators = ( { domid = 0; ioservid = 0; targets = [ 1 ]; } );
timeouts = {
  invalidating = { ms = 300; steps = [ "log", "kill-emulator" ]; };
};
"""


def hc(fd, op, domid=0, emu_domid=0, nr=0, gfn=0, bfn=0):
    fd.send(REQ.pack(SIMHC_MAGIC, op, domid, emu_domid, 0, nr, gfn, bfn, 0, 0))
    return RESP_HEAD.unpack(fd.recv(4096)[:RESP_HEAD.size])[2]


def registrant(T, w):
    """Child: register, map, fork the keeper, report our pid and exit."""
    try:
        h = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        h.connect(T + "/hc.sock")
        ioservid = hc(h, SIMHC_EMU_CREATE, domid=1, emu_domid=0)
        e = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        e.connect(T + "/emu.sock")
        e.send(struct.pack("<IHHHHI", EMU_MAGIC, 2, 0, ioservid, 1, 1))
        msg, anc, _, _ = e.recvmsg(64, socket.CMSG_SPACE(3 * 4))
        status = struct.unpack("<Ii", msg[:8])[1]
        mapped = hc(h, SIMHC_MAP, domid=1, nr=64, gfn=0x100, bfn=0x100) if status == 0 else -1
        if os.fork() == 0:
            # The keeper: holds the registration and the ioreq server, answers nothing.
            os.close(w)
            signal.pause()
            os._exit(0)
        os.write(w, b"%d %d %d %d\n" % (os.getpid(), ioservid, status, mapped))
    except Exception as ex:  # noqa: BLE001
        os.write(w, b"error %s\n" % repr(ex).encode())
    os._exit(0)


def ctl(T, *a):
    return subprocess.run([BUILD + "/iomap-sim", "ctl", T + "/hc.sock"] + list(a),
                          capture_output=True, text=True).stdout


def field(report, name):
    import re
    m = re.search(r'"%s":(-?\d+)' % name, report)
    return int(m.group(1)) if m else None


def scenario(T, log, victims):
    if True:
        procs.append(subprocess.Popen([BUILD + "/iomap-sim", "-s", T + "/sim.sock", "-H",
                                       T + "/hc.sock", "-g", "1", "-G", "4096", "-l", "200"],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(T + "/hc.sock")), "iomap-sim up")
        procs.append(subprocess.Popen([BUILD + "/iomapd", "--backend", "sim", "--sim-socket",
                                       T + "/sim.sock", "-e", T + "/emu.sock", "-s",
                                       T + "/ctl.sock", "-c", T + "/iomapd.conf"],
                                      stdout=log, stderr=subprocess.STDOUT))
        check(wait_for(lambda: os.path.exists(T + "/emu.sock")), "iomapd up")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            registrant(T, w)
        os.close(w)
        line = os.read(r, 256).decode().split()
        os.close(r)
        os.waitpid(pid, 0)             # R is gone and reaped: its pid is free
        ok = len(line) == 4 and line[2] == "0" and line[3] == "64"
        check(ok, "the registrant registered and mapped 64 pages", line)
        if not ok:
            return
        check(wait_for(lambda: field(ctl(T, "report"), "mappings") == 64), "64 mappings")
        # The bystander gets the registrant's pid.
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        victim = subprocess.Popen(["sleep", "60"])
        victims.append(victim)
        check(victim.pid == pid, "the bystander has the registrant's pid %d" % pid, victim.pid)
        if victim.pid != pid:
            return
        check(ctl(T, "balloon", "1", "0x100", "4").strip() == "16", "16 pages removed")
        # Log step after 300 ms, kill step after 600 ms; the pages are
        # force-unmapped after it whatever the kill did.
        check(wait_for(lambda: field(ctl(T, "report"), "held_pages") == 0, timeout=20),
              "the pages are released after the kill step")
        check(victim.poll() is None, "the bystander that got the registrant's pid is alive",
              victim.returncode)
        text = open(T + "/log").read()
        check("is gone" in text and "nothing to kill" in text,
              "the daemon says the registrant is gone")


def inside():
    T = tempfile.mkdtemp(prefix="iomapd-killpid.")
    log = open(T + "/log", "w")
    open(T + "/iomapd.conf", "w").write(CONF)
    victims = []
    try:
        scenario(T, log, victims)
    finally:
        for v in victims:
            if v.poll() is None:
                v.kill()
                v.wait()
    return finish("test_emu_kill_pidfd", T, log, "iomap-sim and iomapd log", 4000)


def main():
    if os.environ.get("IOMAP_KILLPID_NS"):
        return inside()
    if os.geteuid() != 0:
        print("SKIP: needs root (a pid namespace and ns_last_pid)")
        return 77
    if shutil.which("unshare") is None:
        print("SKIP: no unshare")
        return 77
    for p in ("iomapd", "iomap-sim"):
        if not os.access(os.path.join(BUILD, p), os.X_OK):
            print("SKIP: %s not built in %s" % (p, BUILD))
            return 77
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                            "echo 1 > /proc/sys/kernel/ns_last_pid"], capture_output=True)
    if probe.returncode != 0:
        print("SKIP: cannot make a pid namespace here: %s" % probe.stderr.decode().strip())
        return 77
    env = dict(os.environ, IOMAP_KILLPID_NS="1", top_builddir=BUILD)
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                           os.path.abspath(__file__)], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
