#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_emu_lib_hostile.py - libiomap-emu against a daemon that does not
play by the rules.

<iomap/emu.h> promises: "The library never prints and never exits: every
failure is a return value", and iomap_emu_reconnect() "blocks for at most
the handshake (two seconds)".  The library is loaded with ctypes (the
built .libs/libiomap-emu.so.1) and pointed at a fake daemon that answers
the hello with:

  1. a refusal (-EPERM) that nevertheless carries three descriptors, and a
     welcome of status 0 with two or four descriptors: the library returns
     the error but keeps the descriptors it was sent (fd leak in QEMU,
     every reconnect attempt);
  2. a memfd of 0 bytes as the channel page: ioreq_chan_attach() reads the
     magic through a mapping with no page behind it: SIGBUS kills QEMU
     (no size check, no seals: the daemon can also shrink it later);
  3. a valid page but a blocking request eventfd: the documented loop
     `while ((n = iomap_emu_next(e, &r)) > 0)` blocks forever in the second
     call's read() of the eventfd (the library never sets O_NONBLOCK on
     what it receives);
The two-second bound of the handshake is checked by
tests/attack/test_emu_handshake_deadline.py (a timing check: not in make
check).

Before the fix each case failed: the descriptors were kept, the 0-byte
memfd was a SIGBUS, the loop hung.  Cases 2 and 3 run in a child process so that a crash or a hang is observed,
not suffered.  Run from the build directory (make check does; no root needed).  Exit 0
pass, 1 fail, 77 skip.
"""
import array
import ctypes
import errno
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

BUILD = os.path.abspath(os.environ.get("top_builddir", os.getcwd()))
MAGIC, PAGE_MAGIC = 0x554d4549, 0x51524f49
failures = []


def check(cond, what, detail=""):
    print(("PASS: %s" if cond else "FAIL: %s " + str(detail)) % what)
    if not cond:
        failures.append(what)


class Req(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_int), ("global_", ctypes.c_int),
                ("domid", ctypes.c_uint16), ("gfn", ctypes.c_uint64),
                ("nr", ctypes.c_uint32)]


def lib():
    L = ctypes.CDLL(os.path.join(BUILD, ".libs", "libiomap-emu.so.1"))
    L.iomap_emu_open.restype = ctypes.c_void_p
    L.iomap_emu_open.argtypes = [ctypes.c_char_p, ctypes.c_uint16, ctypes.c_uint16,
                                 ctypes.c_uint16, ctypes.c_uint32,
                                 ctypes.POINTER(ctypes.c_int)]
    L.iomap_emu_next.argtypes = [ctypes.c_void_p, ctypes.POINTER(Req)]
    L.iomap_emu_close.argtypes = [ctypes.c_void_p]
    return L


def page(ready_slots=0):
    pg = bytearray(4096)
    struct.pack_into("<IIII HH", pg, 0, PAGE_MAGIC, 1, 63, 1, 0, 0)
    for i in range(ready_slots):
        off = 32 + 32 * i
        struct.pack_into("<QQIIIH", pg, off, (0x100 + i) << 12, 1, 1, 4096, 0, 0)
        pg[off + 30] = 1            # IOREQ_READY
        pg[off + 31] = 16           # INVALIDATE_PAGE
    return bytes(pg)


def fake_daemon(path, answer, keep=True):
    """Listen on path; answer(conn) for one connection, in a thread; keep:
    hold the connection open afterwards (else close it: its descriptor
    is not counted as the library's)."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ls.bind(path)
    ls.listen(0)

    def run():
        c, _ = ls.accept()
        c.recv(64)
        answer(c)
        if not keep:
            c.close()
            return
        time.sleep(30)          # keep the connection (and its fds) alive
    threading.Thread(target=run, daemon=True).start()
    return ls


def welcome(c, status, fds):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    c.sendmsg([struct.pack("<Ii", MAGIC, status)], anc)


def nfds():
    return len(os.listdir("/proc/self/fd"))


def in_child(fn, timeout):
    """Run fn() in a child; ('exit', code) / ('signal', n) / ('hang', None)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:       # noqa: BLE001
            os._exit(99)
    t = time.time() + timeout
    while time.time() < t:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            return ("signal", os.WTERMSIG(st)) if os.WIFSIGNALED(st) \
                else ("exit", os.WEXITSTATUS(st))
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return ("hang", None)


def main():
    if not os.path.exists(os.path.join(BUILD, ".libs", "libiomap-emu.so.1")):
        print("SKIP: libiomap-emu not built in %s" % BUILD)
        return 77
    # A sanitizer build's library cannot be loaded into python (the ASan
    # runtime must come first): it aborts, so probe in a child.
    if in_child(lambda: (lib(), 0)[1], 10) != ("exit", 0):
        print("SKIP: cannot load libiomap-emu into python (sanitizer build?)")
        return 77
    L = lib()
    T = tempfile.mkdtemp(prefix="emu-hostile.")

    # ---- 1. descriptors that come with an error ------------------------------
    for n, (status, count) in enumerate([(-errno.EPERM, 3), (0, 2), (0, 4)]):
        path = "%s/d%d.sock" % (T, n)
        mine = [os.eventfd(0) for _ in range(count)]
        ls = fake_daemon(path, lambda c: welcome(c, status, mine), keep=False)
        before = nfds()
        err = ctypes.c_int(0)
        h = L.iomap_emu_open(path.encode(), 0, 1, 0, 1, ctypes.byref(err))
        time.sleep(0.3)             # the fake daemon has closed its end
        leaked = nfds() - before
        check(h is None and err.value < 0 and leaked == 0,
              "welcome status %d with %d fds: error returned, no descriptor kept"
              % (status, count), "err=%d, %d fds leaked" % (err.value, leaked))
        ls.close()

    # ---- 2. a 0-byte memfd -----------------------------------------------------
    def short_page():
        path = T + "/short.sock"
        m = os.memfd_create("x")
        ls = fake_daemon(path, lambda c: welcome(c, 0, [m, os.eventfd(0, os.EFD_NONBLOCK),
                                                         os.eventfd(0, os.EFD_NONBLOCK)]))
        err = ctypes.c_int(0)
        h = L.iomap_emu_open(path.encode(), 0, 1, 0, 1, ctypes.byref(err))
        ls.close()
        return 0 if h is None and err.value < 0 else 1
    got = in_child(short_page, 10)
    check(got == ("exit", 0), "a 0-byte channel memfd: an error, not a crash", got)

    # ---- 3. a blocking request eventfd --------------------------------------
    def blocking_eventfd():
        path = T + "/block.sock"
        m = os.memfd_create("x")
        os.write(m, page(ready_slots=1))
        req = os.eventfd(0)                         # blocking
        ls = fake_daemon(path, lambda c: welcome(c, 0, [m, req,
                                                         os.eventfd(0, os.EFD_NONBLOCK)]))
        err = ctypes.c_int(0)
        h = L.iomap_emu_open(path.encode(), 0, 1, 0, 1, ctypes.byref(err))
        ls.close()
        if h is None:
            return 2
        os.eventfd_write(req, 1)
        r = Req()
        n = 0
        while L.iomap_emu_next(h, ctypes.byref(r)) > 0:     # as <iomap/emu.h> says
            n += 1
        return 0 if n == 1 else 3
    got = in_child(blocking_eventfd, 10)
    check(got == ("exit", 0), "a blocking request eventfd: the next() loop ends", got)

    os.system("rm -rf " + T)
    print("test_emu_lib_hostile: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
