#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mutants.py - every guard of the daemon matters: remove it, a named test fails.

For each guard below, in a clone of this tree (build/mutants by default):
apply the mutation (one exact text replacement that removes the guard),
rebuild what the named test needs, run it, and check that the named test
fails; then restore the file.  A mutation whose text is not found is an
error too (the table went stale).  The same table is in
docs/RELIABILITY.md ("Guards and the tests that catch their removal").

  scripts/mutants.py [--list] [--only N[,N...]] [--rotate K] [--dir DIR]

--rotate K runs the K-th third of the table (CI runs one third a time,
rotating on the day of the year).  Exit 0 when every mutant run was
caught, 1 otherwise.
"""
import argparse
import os
import subprocess
import sys
import time

# (guard, file, text, replacement, test program, test name or None)
MUTANTS = [
    ("the policy never 'kills' the wildcard holder of CPU mappings",
     "daemon/core/enforce.c",
     "    if (e->killed || e->ioservid == IOMAP_IOSERVID_ANY)\n        return;",
     "    if (e->killed)\n        return;",
     "tests/test_cpu_maps", "CPU-only page past the policy's steps: no kill of the wildcard"),
    ("I1: a page waits in FLUSHING until the flush that covers its last unmap",
     "daemon/core/pages.c",
     "    if (seq_done(p->cover_seq, d->max_done)) {\n        release(d, pi);",
     "    if (1) {\n        release(d, pi);",
     "tests/test_lifecycle", None),
    ("resync: DUMP records outside our own chunk are ignored",
     "daemon/core/ingest.c",
     "        if (!d->rs_in_chunk) {",
     "        if (0) {",
     "tests/test_hostile", "resync: a predecessor's last chunk is not ours"),
    ("resync: a chunk is ours only if DUMP_BEGIN echoes our dump id",
     "daemon/core/ingest.c",
     "        if (ev->arg != d->rs_id) {",
     "        if (0) {",
     "tests/test_hostile", "resync: a predecessor's last chunk is not ours"),
    ("a refused RELEASE rebuilds the books",
     "daemon/core/ingest.c",
     "            d->resync_wanted = 1;\n        }\n        return;",
     "        }\n        return;",
     "tests/test_hostile", "a refused RELEASE: resync, released later"),
    ("emulator entries are reclaimed once they hold nothing",
     "daemon/core/ingest.c",
     "        emu_reclaim(d);     /*",
     "        (void)0;     /*",
     "tests/test_hostile", "emulator churn beyond the table"),
    ("a map the full emulator table cannot hold is force-unmapped",
     "daemon/core/ingest.c",
     "    emu_force_unmap_id(d, &id, ev->gfn, n);\n    return 1;",
     "    return 0;",
     "tests/test_hostile", "emulator table full: mappings force-unmapped"),
    ("the dump says which ioreq servers are gone (DUMP_EMU)",
     "daemon/core/ingest.c",
     "                e->alive = ev->arg != 0;",
     "                e->alive = 1;",
     "tests/test_hostile", "an emulator dies while the ring overflows"),
    ("a domain destroyed mid-dump restarts the dump",
     "daemon/core/ingest.c",
     "        } else if (d->resync == RS_CHUNKS) {",
     "        } else if (0) {",
     "tests/test_hostile", "resync: a stub domain destroyed mid-dump"),
    ("drains wait for the books to be rebuilt",
     "daemon/core/enforce.c",
     "    if (d->resync != RS_NONE)\n        return;\n\n    for (dr = LIST_FIRST(&d->drains)",
     "    for (dr = LIST_FIRST(&d->drains)",
     "tests/test_hostile", "a drain asked during a resync waits for the books"),
    ("answers are judged by the daemon's own record, not the shared page",
     "ioreq/channel.c",
     "        copy.count = q->count;",
     "        copy.count = s->count;",
     "tests/test_hostile", "answers judged by the daemon's own record"),
    ("an answer in a slot never sent is not an answer",
     "ioreq/channel.c",
     "        if (!q->used) {",
     "        if (0) {",
     "tests/test_hostile", "answers judged by the daemon's own record"),
    ("deny by default only with an emulators list",
     "policy/parse.c",
     "    if ((s = config_lookup(cf, \"emulators\")) != NULL) {\n        p->enforce_rules = 1;",
     "    p->enforce_rules = 1;\n    if ((s = config_lookup(cf, \"emulators\")) != NULL) {",
     "tests/test_hostile", "a policy with only quotas denies nothing"),
    ("a hello is one whole message (trailing bytes refused)",
     "daemon/emusock.c",
     "    n = recv(fd, &h, sizeof(h), MSG_TRUNC);",
     "    n = recv(fd, &h, sizeof(h), 0);",
     "tests/test_emusock.py", None),
    ("registration by the kernel-attested uid",
     "daemon/emusock.c",
     "    if (!policy_may_register(core_policy(io->core), c->uid, id.emu_domid, id.target,",
     "    if (0 && !policy_may_register(core_policy(io->core), c->uid, id.emu_domid, id.target,",
     "tests/test_emusock.py", None),
    ("at most 32 connections wait for their hello",
     "daemon/emusock.c",
     "    if (es->npending >= EMUSOCK_MAX_PENDING ||",
     "    if (0 ||",
     "tests/test_emusock.py", None),
    ("control access by the peer's own groups (SO_PEERGROUPS)",
     "json-api/control.c",
     "    ngroups = listen_peer_groups(fd, groups, (int)(sizeof(groups) / sizeof(groups[0])));",
     "    ngroups = 0;",
     "tests/test_access.py", None),
    ("flush sequences are serial numbers: compared across the 2^32 wrap",
     "daemon/core/core_priv.h",
     "    return (int32_t)(a - b) > 0;",
     "    return a > b;",
     "tests/test_hostile", "flush sequences compared across the wrap"),
    ("a holder counts more than 2^16 mappings of one page",
     "daemon/core/core_priv.h",
     "    uint32_t count;         /* mappings of this page by that emulator (one",
     "    uint16_t count;         /* mappings of this page by that emulator (one",
     "tests/test_hostile", "a page mapped at 65,537 bfns by one emulator"),
    ("a chunk's mappings are applied at its end, whatever the record order",
     "daemon/core/ingest.c",
     "            rs_note_map(d, ev);\n        }\n        return;",
     "            rs_note_map(d, ev);\n            rs_apply_maps(d);\n        }\n        return;",
     "tests/test_hostile", "resync: records of a chunk in any order"),
    ("a failed flush asks for another one",
     "daemon/core/ingest.c",
     "        d->flush_wanted = 1;\n        log_warnx(\"%s: flush %u failed",
     "        log_warnx(\"%s: flush %u failed",
     "tests/test_faults", "device-TLB flush fails: frames leaked"),
    ("a RELEASE answered -EIO (leaked frames) is no disagreement",
     "daemon/core/ingest.c",
     "        if (ev->flags == IOMAP_CMD_RELEASE && (int32_t)ev->seq == -EIO) {",
     "        if (0) {",
     "tests/test_faults", "device-TLB flush fails: frames leaked"),
    ("at most 16 registrations per non-root uid",
     "daemon/emusock.c",
     "                            same_uid_reg >= EMUSOCK_MAX_REGISTERED_PER_UID))) {",
     "                            0))) {",
     "tests/test_emusock.py", None),
    ("an answer kick is read whatever is in flight (no busy loop)",
     "daemon/emusock.c",
     "    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)",
     "    if (0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)",
     "tests/test_emu_answer_kick.py", None),
    ("libiomap-emu: a channel file shorter than a page is refused (SIGBUS)",
     "ioreq/channel.c",
     "    if (!S_ISREG(st.st_mode) || st.st_size < 4096)",
     "    if (0 && !S_ISREG(st.st_mode))",
     "tests/test_emu_lib_hostile.py", None),
    ("libiomap-emu: the received eventfds are made non-blocking",
     "ioreq/channel.c",
     "    if (set_nonblock(req_fd) < 0 || set_nonblock(resp_fd) < 0)",
     "    if (0 && set_nonblock(req_fd) < 0)",
     "tests/test_emu_lib_hostile.py", None),
    ("libiomap-emu: descriptors of a refused or malformed welcome are closed",
     "ioreq/client.c",
     "        close_rights(&mh);\n        return rc;",
     "        (void)close_rights;\n        return rc;",
     "tests/test_emu_lib_hostile.py", None),
    ("control: at most 16 clients per non-admin uid",
     "json-api/control.c",
     "        else if (!c->admin && same_uid >= CTL_MAX_PER_UID)",
     "        else if (0 && same_uid)",
     "tests/test_ctl_bounds.py", None),
    ("control: the last 8 client slots are kept for admins",
     "json-api/control.c",
     "        else if (!c->admin && others >= CTL_MAX_CLIENTS - CTL_ADMIN_RESERVED)",
     "        else if (0 && others)",
     "tests/test_ctl_bounds.py", None),
    ("emulator socket: 8 of the 32 waiting places are kept for root",
     "daemon/emusock.c",
     "        (cred->uid != 0 && es->npending >= EMUSOCK_MAX_PENDING - EMUSOCK_PENDING_ROOT) ||",
     "        (cred->uid != 0 && 0) ||",
     "tests/test_emusock.py", None),
    ("at most 16 metrics connections at a time",
     "json-api/metrics.c",
     "    if (m->nconns >= METRICS_MAX_CONNS) {",
     "    if (0) {",
     "tests/test_metrics_flood.py", None),
    ("a metrics connection is closed 5 s after it was accepted",
     "json-api/metrics.c",
     "    evtimer_add(c->deadline, &tv);",
     "    (void)tv;",
     "tests/test_metrics_flood.py", None),
    ("libevent's messages are rate limited",
     "util/evlog.c",
     "    if (in_window >= EVLOG_BURST) {",
     "    if (0) {",
     "tests/test_log", "libevent's messages: through the logger, rate limited"),
    ("the kill-emulator step signals the registrant's pidfd, never a reused pid",
     "daemon/emusock.c",
     "    if (pidfd_signal(c->pidfd, SIGKILL) < 0) {",
     "    if (kill(c->pid, SIGKILL) < 0) {",
     "tests/test_emu_kill_pidfd.py", None),
]


def run(cmd, cwd, env=None, timeout=None):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("--rotate", type=int)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if a.list:
        for i, m in enumerate(MUTANTS):
            print("%2d  %-70s %s%s" % (i, m[0], m[4], " / " + m[5] if m[5] else ""))
        return 0
    pick = list(range(len(MUTANTS)))
    if a.only:
        pick = [int(x) for x in a.only.split(",")]
    elif a.rotate is not None:
        pick = [i for i in pick if i % 3 == a.rotate % 3]
    d = a.dir or os.path.join(src, "build", "mutants")
    if not os.path.isdir(os.path.join(d, ".git")):
        subprocess.run(["rm", "-rf", d], check=True)
        subprocess.run(["git", "clone", "-q", src, d], check=True)
    else:
        run(["git", "fetch", "-q", src, "HEAD"], d)
        run(["git", "checkout", "-q", "-f", "FETCH_HEAD"], d)
    if not os.path.exists(os.path.join(d, "Makefile")):
        r = run(["sh", "-c", "autoreconf -fi >/dev/null 2>&1 && ./configure -q"], d)
        if r.returncode:
            print(r.stdout + r.stderr)
            return 1
    env = dict(os.environ, top_builddir=d, srcdir=d)
    uncaught = 0
    for i in pick:
        guard, path, old, new, prog, name = MUTANTS[i]
        f = os.path.join(d, path)
        text = open(f).read()
        if text.count(old) != 1:
            print("STALE %2d %s: the text to remove is in %s %d times" % (i, guard, path,
                                                                        text.count(old)))
            uncaught += 1
            continue
        t0 = time.time()
        open(f, "w").write(text.replace(old, new))
        try:
            targets = ["iomapd", "iomapd-sim"] if prog.endswith(".py") else [prog]
            b = run(["make", "-s", "-j2"] + targets, d)
            if b.returncode:
                print("BUILD %2d %s:\n%s" % (i, guard, (b.stdout + b.stderr)[-1500:]))
                uncaught += 1
                continue
            cmd = ["python3", prog] if prog.endswith(".py") else ["./" + prog]
            try:
                r = run(cmd, d, env=env, timeout=600)
                out, rc = r.stdout + r.stderr, r.returncode
            except subprocess.TimeoutExpired:
                out, rc = "timed out", 124
            if name is not None:
                key = "Test: %s ..." % name
                if key in out:
                    # Its part of the output, up to the next test: failed, or
                    # the program died in it (no "passed").
                    seg = out.split(key, 1)[1].split("  Test: ", 1)[0]
                    caught = "FAILED" in seg or "passed" not in seg
                else:
                    caught = rc != 0        # died before reaching it
            else:
                caught = rc != 0
            print("%s %2d  %-66s %s%s (%.0f s)" % ("CAUGHT" if caught else "MISSED", i, guard,
                  prog, " / " + name if name else "", time.time() - t0))
            if not caught:
                uncaught += 1
                print(out[-1500:])
        finally:
            open(f, "w").write(text)
    # Leave the clone built as it is at HEAD.
    run(["make", "-s", "-j2"], d)
    print("mutants: %d run, %d caught, %d not" % (len(pick), len(pick) - uncaught, uncaught))
    return 1 if uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
