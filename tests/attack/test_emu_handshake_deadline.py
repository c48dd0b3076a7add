#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""attack: iomap_emu_open()/iomap_emu_reconnect() promise to block "for at
most the handshake (two seconds)".  A daemon whose backlog is full and
that accepts late, then never answers, held the caller about 4 s:
connect() waited up to SO_SNDTIMEO, then recv() another SO_RCVTIMEO.
A timing check, so not in make check.  Run from the build directory.
"""
import ctypes
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from test_emu_lib_hostile import check, failures, in_child, lib  # noqa: E402


def main():
    L = lib()
    T = tempfile.mkdtemp(prefix="emu-deadline.")
    # ---- 4. the two-second handshake ---------------------------------------
    def slow_daemon():
        path = T + "/slow.sock"
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ls.bind(path)
        ls.listen(0)
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        filler.connect(path)                        # the backlog is full

        def later():
            time.sleep(1.8)
            ls.accept()                             # lets the library in...
            c, _ = ls.accept()
            time.sleep(30)                          # ...and never answers
        threading.Thread(target=later, daemon=True).start()
        t0 = time.time()
        err = ctypes.c_int(0)
        L.iomap_emu_open(path.encode(), 0, 1, 0, 1, ctypes.byref(err))
        dt = time.time() - t0
        print("handshake gave up after %.1f s (err %d)" % (dt, err.value))
        return 0 if dt < 2.6 else 4
    got = in_child(slow_daemon, 15)
    check(got == ("exit", 0), "a stalled daemon: iomap_emu_open gives up within ~2 s", got)

    os.system("rm -rf " + T)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
