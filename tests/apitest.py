# Shared by the Python tests that drive iomapd, iomap-sim and emulators as
# processes through their sockets (Python 3 standard library only).
import os
import subprocess
import time

BUILD = os.path.abspath(os.environ.get("top_builddir", os.getcwd()))

failures = []
passes = [0]
procs = []


def check(cond, what, detail=""):
    if cond:
        passes[0] += 1
        print("PASS: %s" % what)
    else:
        failures.append(what)
        print("FAIL: %s %s" % (what, detail))


def wait_for(cond, timeout=10.0, step=0.05):
    t = time.time() + timeout
    while time.time() < t:
        if cond():
            return True
        time.sleep(step)
    return cond()


def finish(name, T, log, title, tail):
    """Stop what is still running; on failure show the log's tail, else
    remove T.  Returns the test program's exit status."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    log.close()
    if failures:
        print("---- %s (%s) ----" % (title, T))
        with open(os.path.join(T, "log")) as fh:
            print(fh.read()[-tail:])
    else:
        subprocess.run(["rm", "-rf", T])
    print("%s: %d passed, %d failed" % (name, passes[0], len(failures)))
    return 1 if failures else 0
