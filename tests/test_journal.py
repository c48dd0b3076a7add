#!/usr/bin/env python3
# test_journal.py - iomapd's messages as journald receives them, through a
# stand-in journald: in a private mount namespace (unshare -m, as root) a
# tmpfs hides /run and a datagram socket at /run/systemd/journal/socket
# reads the native protocol.  iomapd's stderr is a file whose dev:ino is in
# JOURNAL_STREAM, as systemd would set it.
#  1. A start-up failure reaches the journal at priority 3 (err), and
#     nothing goes to stderr.
#  2. A 16 MiB balloon with a hung emulator under a policy that logs at
#     every step: a handful of messages, with DOMID=, GFN=, GFN_COUNT=
#     that cover the 4096 pages, instead of one line per page per step.
# Exit 77 (skip) when not root, or without unshare or libsystemd.
import os, socket, subprocess, sys, tempfile, time

B = os.environ.get("top_builddir", ".")
if os.environ.get("IOMAP_JOURNAL_NS") != "1":
    if os.geteuid() != 0:
        print("SKIP: needs root for a private mount namespace"); sys.exit(77)
    if subprocess.run(["grep", "-q", "define HAVE_SYSTEMD 1", os.path.join(B, "config.h")]).returncode:
        print("SKIP: built without libsystemd"); sys.exit(77)
    env = dict(os.environ, IOMAP_JOURNAL_NS="1")
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__)], env=env)
    except FileNotFoundError:
        print("SKIP: no unshare"); sys.exit(77)
    sys.exit(r.returncode)

fails = 0
def check(cond, what):
    global fails
    print(("PASS: " if cond else "FAIL: ") + what)
    if not cond:
        fails += 1

if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"]).returncode:
    print("SKIP: cannot mount a tmpfs on /run in a private namespace"); sys.exit(77)
os.makedirs("/run/systemd/journal")
j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
j.bind("/run/systemd/journal/socket")
j.settimeout(0.2)

def entries():
    """Every datagram so far, each as a dict (native protocol, text values)."""
    out = []
    while True:
        try:
            d = j.recv(1 << 20)
        except socket.timeout:
            return out
        e = {}
        for line in d.split(b"\n"):
            if b"=" in line:
                k, v = line.split(b"=", 1)
                e[k.decode()] = v.decode(errors="replace")
        out.append(e)

T = tempfile.mkdtemp(prefix="iomapd-journal.")
errf = os.path.join(T, "stderr")

def run_env(f):
    st = os.fstat(f.fileno())
    return dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))

# 1. A start-up failure.
with open(errf, "w") as f:
    r = subprocess.run([os.path.join(B, "iomapd"), "--backend", "sim", "--sim-socket",
                        os.path.join(T, "absent.sock"), "-e", os.path.join(T, "e.sock"),
                        "-s", os.path.join(T, "c.sock")], stderr=f, env=run_env(f))
es = entries()
fatal = [e for e in es if "sim backend" in e.get("MESSAGE", "")]
check(r.returncode == 1, "start-up failure exits 1 (got %d)" % r.returncode)
check(len(fatal) == 1 and fatal[0].get("PRIORITY") == "3" and
      fatal[0].get("SYSLOG_IDENTIFIER") == "iomapd",
      "the failure reaches the journal at priority 3: %r" % fatal)
check(open(errf).read() == "", "nothing on stderr when the journal took it: %r" % open(errf).read())

# 2. A hung emulator, a 16 MiB balloon, a policy that logs at every step.
conf = os.path.join(T, "iomapd.conf")
with open(conf, "w") as f:
    f.write('timeouts = { invalidating = { ms = 150; steps = [ "log", "log", "log" ]; }; };\n')
hc = os.path.join(T, "hc.sock")
f = open(errf, "w")
d = subprocess.Popen([os.path.join(B, "iomapd-sim"), "--backend", "sim-embedded",
                      "--sim-socket", hc, "-e", os.path.join(T, "emu.sock"),
                      "-s", os.path.join(T, "ctl.sock"), "-c", conf], stderr=f, env=run_env(f))
def ctl(*a):
    return subprocess.run([os.path.join(B, "iomap-sim"), "ctl", hc] + list(a),
                          capture_output=True, text=True)
emu = None
try:
    check(ctl("wait").returncode == 0, "iomapd-sim answers")
    ctl("domain-create", "1", "16384")
    emu = subprocess.Popen([os.path.join(B, "example-emulator"), "--iomapd",
                            os.path.join(T, "emu.sock"), "--sim", hc, "--domid", "1",
                            "--map", "0x1000:4096", "--never-answer"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    check(ctl("wait", "mappings", "4096").returncode == 0, "the emulator mapped 4096 pages")
    check(ctl("balloon", "1", "0x1000", "12").stdout.strip() == "4096", "16 MiB ballooned")
    # Three steps of 150 ms: collect until they are all in (10 s at most).
    es, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline:
        es += entries()
        if sum(int(e.get("GFN_COUNT", "0")) for e in es if "waits" in e.get("MESSAGE", "")) >= 3 * 4096:
            break
    time.sleep(0.3)     # anything more would show up now
    es += entries()
finally:
    if emu:
        emu.kill(); emu.wait()
    d.terminate(); d.wait(); f.close()
waits = [e for e in es if "waits" in e.get("MESSAGE", "")]
pages = sum(int(e.get("GFN_COUNT", "0")) for e in waits)
print("journal: %d 'waits' messages for %d page-steps, e.g. %r" %
      (len(waits), pages, waits[0].get("MESSAGE") if waits else None))
check(0 < len(waits) <= 30, "a handful of messages, not 3 x 4096 (%d)" % len(waits))
check(pages == 3 * 4096, "their GFN_COUNT= sum to 3 steps x 4096 pages (%d)" % pages)
check(all(e.get("DOMID") == "1" and e.get("PRIORITY") == "4" and e.get("GFN", "").startswith("0x")
          for e in waits), "each has DOMID=1, GFN=0x..., PRIORITY=4")
check(any(e.get("GFN") == "0x1000" and e.get("GFN_COUNT") == "4096" for e in waits),
      "one message covers gfn 0x1000-0x1fff")
check(open(errf).read() == "", "nothing on stderr: %r" % open(errf).read()[:300])
subprocess.run(["rm", "-rf", T])
sys.exit(1 if fails else 0)
