#!/usr/bin/env python3
# test_metrics.py - the opt-in metrics endpoint (iomapd --metrics): HTTP
# GET /metrics answers the Prometheus text format 0.0.4, or OpenMetrics
# 1.0.0 to a client that asks for it; both parse with Debian's
# python3-prometheus-client (the Prometheus and the OpenMetrics parser) and
# with the strict checks below; the release-latency histogram has the
# same buckets at every scrape and they reach past the policy's longest
# wait (timeout x (steps + 1)); other paths get 404, other methods 405; a
# bad address is refused at start.  xl-iomap metrics parses too.
import os, re, subprocess, sys, tempfile, time, urllib.request, urllib.error

try:
    from prometheus_client.parser import text_string_to_metric_families as prom_parse
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
except ImportError:
    # pyenv or a venv ahead of Debian's python3 on the PATH.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3") and not os.environ.get("IOMAP_REEXEC"):
        os.environ["IOMAP_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    prom_parse = om_parse = None

B = os.environ.get("top_builddir", ".")
fails = 0
def check(cond, what):
    global fails
    print(("PASS: " if cond else "FAIL: ") + what)
    if not cond:
        fails += 1

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')

def strict(text, om):
    """Line-level checks of the exposition; returns a list of problems."""
    bad, types, seen_fam, cur = [], {}, [], None
    lines = text.split("\n")
    if lines[-1] != "":
        bad.append("no final newline")
    lines = lines[:-1]
    if om:
        if not lines or lines[-1] != "# EOF":
            bad.append("OpenMetrics text does not end with # EOF")
        lines = lines[:-1]
    elif "# EOF" in lines:
        bad.append("# EOF in the Prometheus format")
    for l in lines:
        if l.startswith("# HELP ") or l.startswith("# TYPE "):
            parts = l.split(" ", 3)
            fam = parts[2]
            if l.startswith("# TYPE "):
                if fam in types:
                    bad.append("family %s typed twice" % fam)
                types[fam] = parts[3]
                if om and parts[3] == "counter" and fam.endswith("_total"):
                    bad.append("OpenMetrics counter family %s ends in _total" % fam)
                if fam in seen_fam:
                    bad.append("family %s is not contiguous" % fam)
                seen_fam.append(fam)
                cur = fam
            continue
        if l.startswith("#") or l == "":
            bad.append("stray line %r" % l)
            continue
        m = SAMPLE.match(l)
        if not m:
            bad.append("bad sample line %r" % l)
            continue
        name = m.group(1)
        t = types.get(cur)
        ok = {"counter": [cur + "_total"] if om else [cur],
              "gauge": [cur],
              "histogram": [cur + "_bucket", cur + "_sum", cur + "_count"]}.get(t, [])
        if name not in ok:
            bad.append("sample %s outside its family %s (%s)" % (name, cur, t))
    return bad

def histogram(text):
    b = [(m.group(1), int(m.group(2))) for m in
         re.finditer(r'^iomapd_release_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.M)]
    count = int(re.search(r'^iomapd_release_latency_seconds_count (\d+)$', text, re.M).group(1))
    return b, count

T = tempfile.mkdtemp(prefix="iomapd-metrics.")
hc = os.path.join(T, "hc.sock")
conf = os.path.join(T, "iomapd.conf")
with open(conf, "w") as f:     # the longest wait: 5 s x (3 steps + 1) = 20 s
    f.write('timeouts = { invalidating = { ms = 5000; steps = [ "log", "force-unmap", '
            '"kill-emulator" ]; }; flushing = { ms = 1000; steps = [ "log" ]; }; };\n')

# A bad address: refused at start, one line, exit 1.
r = subprocess.run([os.path.join(B, "iomapd-sim"), "--backend", "sim-embedded", "--sim-socket",
                    os.path.join(T, "x.sock"), "-e", os.path.join(T, "xe.sock"), "-s",
                    os.path.join(T, "xc.sock"), "--metrics", "127.0.0.1"],
                   capture_output=True, text=True)
check(r.returncode == 2 and r.stderr == "iomapd: --metrics 127.0.0.1: want ADDRESS:PORT "
      "(127.0.0.1:9477, [::1]:9477)\n", "--metrics without a port: one line, exit 2: %r" % r.stderr)

log = open(os.path.join(T, "log"), "w+")
d = subprocess.Popen([os.path.join(B, "iomapd-sim"), "--backend", "sim-embedded", "--sim-socket",
                      hc, "-e", os.path.join(T, "emu.sock"), "-s", os.path.join(T, "ctl.sock"),
                      "-c", conf, "--metrics", "127.0.0.1:0"], stderr=log)
emu = None
def ctl(*a):
    return subprocess.run([os.path.join(B, "iomap-sim"), "ctl", hc] + list(a),
                          capture_output=True, text=True)
try:
    check(ctl("wait").returncode == 0, "iomapd-sim with --metrics answers")
    log.seek(0)
    m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read())
    check(m is not None, "the log says where the metrics are")
    url = "http://127.0.0.1:%s" % m.group(1)

    def get(path="/metrics", accept=None, method="GET"):
        req = urllib.request.Request(url + path, method=method)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type"), resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, None, ""

    st, ct, before = get()
    ctl("domain-create", "1", "16384")
    emu = subprocess.Popen([os.path.join(B, "example-emulator"), "--iomapd",
                            os.path.join(T, "emu.sock"), "--sim", hc, "--domid", "1",
                            "--map", "0x1000:1024"], stdout=subprocess.DEVNULL)
    ctl("wait", "mappings", "1024")
    ctl("balloon", "1", "0x1000", "9")
    check(ctl("wait", "pages_released", "512").returncode == 0, "512 pages released")
    st, ct, prom = get()
    check(st == 200 and ct == "text/plain; version=0.0.4; charset=utf-8",
          "GET /metrics: 200, %s" % ct)
    st2, ct2, om = get(accept="application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    check(st2 == 200 and ct2 == "application/openmetrics-text; version=1.0.0; charset=utf-8",
          "Accept: application/openmetrics-text: %s" % ct2)
    for name, text, is_om in (("Prometheus", prom, False), ("OpenMetrics", om, True)):
        problems = strict(text, is_om)
        check(not problems, "%s text passes the strict checks %s" % (name, problems[:3]))
    if prom_parse:
        fams = {f.name: f for f in prom_parse(prom)}
        check("iomapd_release_latency_seconds" in fams and
              fams["iomapd_release_latency_seconds"].type == "histogram",
              "prometheus_client parses the Prometheus text (%d families)" % len(fams))
        try:
            ofams = {f.name: f for f in om_parse(om)}
            rel = [s for s in ofams["iomapd_pages_released"].samples if s.name.endswith("_total")]
            check(ofams["iomapd_pages_released"].type == "counter" and rel[0].value == 512,
                  "prometheus_client's OpenMetrics parser: %d families, pages_released 512"
                  % len(ofams))
        except Exception as e:
            check(False, "OpenMetrics parser refuses the text: %s" % e)
        # The Prometheus format is not OpenMetrics: the parser must see that
        # (else the check above proves nothing).
        try:
            list(om_parse(prom))
            check(False, "the OpenMetrics parser accepted Prometheus text")
        except Exception:
            check(True, "the OpenMetrics parser refuses the Prometheus format (no # EOF)")
    else:
        print("note: python3-prometheus-client missing: strict checks only")
    hb, _ = histogram(before)
    ha, count = histogram(prom)
    check([b[0] for b in hb] == [b[0] for b in ha], "the same buckets before and after traffic")
    les = [float(b[0]) for b in ha]
    check(les == sorted(les) and ha[-1][0] == "+Inf", "bucket bounds ascending, ending at +Inf")
    check(all(ha[i][1] <= ha[i + 1][1] for i in range(len(ha) - 1)) and ha[-1][1] == count == 512,
          "cumulative counts, +Inf = count = 512")
    finite = [x for x in les if x != float("inf")]
    check(finite[-1] >= 20.0 and finite[0] <= 20e-6,
          "buckets from %g s to %g s cover the policy's 20 s longest wait" % (finite[0], finite[-1]))
    check(get("/other")[0] == 404, "GET /other: 404")
    st = get(method="POST")[0]
    check(st in (405, 501), "POST /metrics: refused (%d)" % st)
    st, _, head = get(method="HEAD")
    check(st == 200 and head == "", "HEAD /metrics: 200, no body")
    x = subprocess.run([os.path.join(B, "xl-iomap"), "--socket", os.path.join(T, "ctl.sock"),
                        "metrics"], capture_output=True, text=True)
    check(x.returncode == 0 and not strict(x.stdout, False), "xl-iomap metrics: the Prometheus format")
    if prom_parse:
        check(len(list(prom_parse(x.stdout))) > 20, "xl-iomap metrics parses")
finally:
    if emu:
        emu.terminate(); emu.wait()
    d.terminate(); d.wait()
    log.seek(0)
    if fails:
        print(log.read())
    subprocess.run(["rm", "-rf", T])
sys.exit(1 if fails else 0)
