#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_api.py - iomapd's JSON-RPC API through the real socket.

Starts iomap-sim, iomapd and example-emulators in a temporary directory
and talks to the control socket with nothing but Python's standard
library (socket, json, subprocess): every method, results checked
against json-api/schema/*.json, and bad input (malformed JSON, wrong
types, unknown methods, oversized and deeply nested requests, a client
that never reads, an unprivileged client).  After each bad client the
daemon must keep serving the others.

Run from the build directory (make check does); srcdir from $srcdir.
Exit: 0 pass, 1 fail, 77 skip (not used unless a binary is missing).
"""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import BUILD, check, finish, procs, wait_for  # noqa: E402
SRC = os.path.abspath(os.environ.get("srcdir", os.path.join(os.path.dirname(__file__), "..")))
SCHEMA_DIR = os.path.join(SRC, "json-api", "schema")



# ---- a tiny JSON-schema checker (the subset json-api/schema uses) ----------

def validate(v, s, path="$"):
    errs = []
    t = s.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        ok = False
        for ty in types:
            if ty == "object" and isinstance(v, dict): ok = True
            elif ty == "array" and isinstance(v, list): ok = True
            elif ty == "string" and isinstance(v, str): ok = True
            elif ty == "integer" and isinstance(v, int) and not isinstance(v, bool): ok = True
            elif ty == "number" and isinstance(v, (int, float)) and not isinstance(v, bool): ok = True
            elif ty == "boolean" and isinstance(v, bool): ok = True
            elif ty == "null" and v is None: ok = True
        if not ok:
            return ["%s: %r is not %s" % (path, v, t)]
    if "enum" in s and v not in s["enum"]:
        errs.append("%s: %r not in %s" % (path, v, s["enum"]))
    if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]:
        errs.append("%s: %r < %r" % (path, v, s["minimum"]))
    if "maximum" in s and isinstance(v, (int, float)) and v > s["maximum"]:
        errs.append("%s: %r > %r" % (path, v, s["maximum"]))
    if "pattern" in s and isinstance(v, str):
        import re
        if not re.search(s["pattern"], v):
            errs.append("%s: %r does not match %s" % (path, v, s["pattern"]))
    if isinstance(v, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in v:
                errs.append("%s: missing %s" % (path, r))
        for k, x in v.items():
            if k in props:
                errs += validate(x, props[k], path + "." + k)
            elif s.get("additionalProperties") is False:
                errs.append("%s: unexpected member %s" % (path, k))
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            errs += validate(x, s["items"], "%s[%d]" % (path, i))
    return errs


SCHEMAS = {}
for f in sorted(os.listdir(SCHEMA_DIR)):
    if f.endswith(".json") and f != "notifications.json":
        with open(os.path.join(SCHEMA_DIR, f)) as fh:
            s = json.load(fh)
        SCHEMAS[s["method"]] = s
with open(os.path.join(SCHEMA_DIR, "notifications.json")) as fh:
    NOTES = json.load(fh)["notifications"]


# ---- clients -----------------------------------------------------------------

class Client:
    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self.s.sendall(data)

    def line(self, timeout=5.0):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln

    def msg(self, timeout=5.0):
        return json.loads(self.line(timeout))

    def reply(self, timeout=5.0):
        """The next response (skipping notifications)."""
        while True:
            m = self.msg(timeout)
            if "method" not in m:
                return m

    def call(self, method, params=None, timeout=5.0):
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            req["params"] = params
        self.send_raw((json.dumps(req) + "\n").encode())
        r = self.reply(timeout)
        assert r.get("id") == rid, "id mismatch: %r" % r
        return r

    def close(self):
        self.s.close()


def ok(c, method, params=None, timeout=5.0):
    r = c.call(method, params, timeout)
    if "error" in r:
        check(False, "%s %s succeeds" % (method, params or ""), repr(r["error"]))
        return None
    errs = validate(r["result"], SCHEMAS[method]["result"])
    check(not errs and r.get("jsonrpc") == "2.0",
          "%s%s: result matches json-api/schema/%s.json" %
          (method, " " + json.dumps(params) if params else "", method), "; ".join(errs[:5]))
    return r["result"]


def err(c, method, params, code, what):
    r = c.call(method, params)
    e = r.get("error", {})
    check(e.get("code") == code and isinstance(e.get("message"), str) and e["message"],
          "%s -> error %d (%s)" % (what, code, e.get("message")), repr(r))
    return e


def raw_err(c, data, code, what, expect_id=None):
    c.send_raw(data)
    r = c.reply()
    e = r.get("error", {})
    check(e.get("code") == code and r.get("id") == expect_id and "result" not in r,
          "%s -> error %d (%s)" % (what, code, e.get("message")), repr(r)[:300])
    return r


# ---- the set-up -----------------------------------------------------------------

def start(args, log):
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def simctl(T, *args):
    return subprocess.run([os.path.join(BUILD, "iomap-sim"), "ctl", T + "/hc.sock"] +
                          [str(a) for a in args], capture_output=True, text=True, timeout=10)


def main():
    for b in ("iomapd", "iomap-sim", "example-emulator"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            print("SKIP: %s not built in %s" % (b, BUILD))
            return 77
    T = tempfile.mkdtemp(prefix="iomapd-api.")
    os.chmod(T, 0o711)      # an unprivileged client must reach the socket
    log = open(os.path.join(T, "log"), "w")
    ctl = T + "/ctl.sock"
    sock_gid = 65534        # nogroup: the "may query" group of this test
    daemon = None
    with open(T + "/iomapd.conf", "w") as fh:
        fh.write("emulators = ( { domid = 0; targets = \"any\"; } );\nquotas = { pending_per_emulator = 1048576; };\n")
    try:
        start([BUILD + "/iomap-sim", "-s", T + "/sim.sock", "-H", T + "/hc.sock", "-g", "2",
               "-G", "16384", "-l", "200"], log)
        check(wait_for(lambda: os.path.exists(T + "/hc.sock")), "iomap-sim up")
        daemon = start([BUILD + "/iomapd", "--backend", "sim", "--sim-socket", T + "/sim.sock",
                        "-e", T + "/emu.sock", "-s", ctl, "--socket-group", str(sock_gid),
                        "--stop-timeout", "3000", "-c", T + "/iomapd.conf"], log)
        check(wait_for(lambda: os.path.exists(ctl)), "iomapd up, control socket created")
        st = os.stat(ctl)
        check(st.st_mode & 0o777 == 0o660 and st.st_gid == sock_gid,
              "control socket mode 0660, group %d" % sock_gid,
              "mode %o gid %d" % (st.st_mode & 0o777, st.st_gid))
        E = BUILD + "/example-emulator"
        c = Client(ctl)

        def registered(n):
            return lambda: len([e for e in c.call("emulator.list")["result"]["emulators"]
                                if e["registered"]]) == n
        # The simulated hypervisor numbers ioreq servers per guest, as Xen
        # does: started one after the other, the two of d1 are 0:1:0 and
        # 0:1:1, d2's is 0:2:0.
        emu1 = start([E, "--iomapd", T + "/emu.sock", "--sim", T + "/hc.sock", "--domid", "1",
                      "--map", "0x1000:1024"], log)
        check(wait_for(registered(1)), "0:1:0 registered")
        # A slow emulator (answers after 4 s) and one that never answers in time.
        emu2 = start([E, "--iomapd", T + "/emu.sock", "--sim", T + "/hc.sock", "--domid", "1",
                      "--map", "0x3000:256", "--answer-delay-ms", "4000"], log)
        check(wait_for(registered(2)), "0:1:1 registered")
        emu3 = start([E, "--iomapd", T + "/emu.sock", "--sim", T + "/hc.sock", "--domid", "2",
                      "--map", "0x2000:64", "--answer-delay-ms", "600000"], log)

        def emus_ready():
            r = c.call("emulator.list")["result"]["emulators"]
            return len([e for e in r if e["registered"] and e["mappings"]]) == 3
        check(wait_for(emus_ready), "three emulators registered with mappings")

        # ---- every method ------------------------------------------------
        check(set(SCHEMAS) == {"version", "status", "domain.list", "emulator.list",
                               "mapping.list", "page.list", "stats", "metrics",
                               "emulator.drain", "policy.get", "policy.reload", "subscribe"},
              "a schema for each of the 12 methods", sorted(SCHEMAS))
        v = ok(c, "version")
        check(v and v["backend"] == "sim" and v["api"] == 1, "version: sim backend, API 1")
        s = ok(c, "status")
        check(s and s["mappings"] == 1024 + 256 + 64 and s["emulators"] == 3,
              "status counts 1344 mappings of 3 emulators", repr(s))
        d = ok(c, "domain.list")
        check(d and sorted(x["domid"] for x in d["domains"]) == [1, 2], "domain.list: domains 1, 2")
        ok(c, "emulator.list")

        # mapping.list: pagination covers everything exactly once, in order.
        # A call also stops at its time budget (a short page with a cursor),
        # so under load there may be more than 14 pages, never fewer.
        seen, cursor, pages, biggest = [], None, 0, 0
        while True:
            p = {"limit": 100}
            if cursor:
                p["cursor"] = cursor
            r = ok(c, "mapping.list", p) if pages < 2 else c.call("mapping.list", p)["result"]
            seen += [(m["emulator"], m["domid"], m["gfn"]) for m in r["mappings"]]
            biggest = max(biggest, len(r["mappings"]))
            pages += 1
            cursor = r["next_cursor"]
            if not cursor:
                break
        # Order: emulator by emulator (in the daemon's slot order), then
        # domid, then gfn.
        runs = [m[0] for i, m in enumerate(seen) if i == 0 or seen[i - 1][0] != m[0]]
        in_order = len(runs) == len(set(runs)) and all(
            seen[i - 1][0] != seen[i][0] or seen[i - 1][1:] < seen[i][1:]
            for i in range(1, len(seen)))
        check(len(seen) == 1344 and len(set(seen)) == 1344 and in_order and
              pages >= 14 and biggest <= 100,
              "mapping.list limit 100: 1344 mappings, at most 100 a page (%d pages), "
              "in order, no duplicates" % pages, "%d in %d pages" % (len(seen), pages))
        r = ok(c, "mapping.list", {"emulator": "0:1:1", "domid": 1, "gfn_start": 0x3010,
                                   "gfn_end": 0x301f})
        check(r and [m["gfn"] for m in r["mappings"]] == list(range(0x3010, 0x3020)),
              "mapping.list filters: emulator 0:1:1, domid 1, gfns 0x3010-0x301f")
        r = ok(c, "mapping.list", {"emulator": {"emu_domid": 0, "target": 2, "ioservid": 0}, "limit": 10000})
        check(r and len(r["mappings"]) == 64 and r["next_cursor"] is None,
              "mapping.list emulator as object, all 64 in one page")
        err(c, "mapping.list", {"cursor": "garbage"}, -32020, "mapping.list bad cursor")
        err(c, "mapping.list", {"domid": "one"}, -32602, "mapping.list domid of wrong type")
        err(c, "mapping.list", {"limit": 0}, -32602, "mapping.list limit 0")
        err(c, "mapping.list", {"limit": 10001}, -32602, "mapping.list limit above 10000")
        err(c, "mapping.list", {"emulator": "zero"}, -32602, "mapping.list bad emulator")
        err(c, "mapping.list", {"gfn_start": 9, "gfn_end": 1}, -32602, "mapping.list empty range")
        err(c, "mapping.list", {"bogus": 1}, -32602, "mapping.list unknown parameter")

        # ---- notifications ----------------------------------------------
        sub = Client(ctl)
        r = ok(sub, "subscribe", {"events": ["page.released", "emulator.gone", "page.timeout"]})
        err(sub, "subscribe", {"events": ["page.exploded"]}, -32040, "subscribe to an unknown event")
        err(sub, "subscribe", {"events": "page.released"}, -32602, "subscribe events not an array")
        ok(sub, "subscribe", {"events": ["page.released", "emulator.gone", "page.timeout"]})

        # ---- pages in flight, page.list, drain ------------------------------
        t0 = time.time()
        check(simctl(T, "balloon", 1, 0x1000, 9).returncode == 0, "balloon d1 0x1000 order 9")
        check(simctl(T, "balloon", 1, 0x3000, 8).returncode == 0, "balloon d1 0x3000 order 8 (slow emulator)")
        check(simctl(T, "balloon", 2, 0x2000, 5).returncode == 0, "balloon d2 0x2000 order 5 (stuck emulator)")

        def inval():
            r = c.call("page.list", {"state": "invalidating", "limit": 10000})["result"]
            return r["pages"]
        check(wait_for(lambda: len(inval()) == 256 + 32, 3), "page.list: 288 pages INVALIDATING",
              "got %d" % len(inval()))
        r = ok(c, "page.list", {"state": "invalidating", "domid": 2})
        check(r and len(r["pages"]) == 32 and all(
            p["waits_for"]["holders"] == [{"emulator": "0:2:0", "count": 1}] for p in r["pages"]),
            "page.list: d2's pages wait for holder 0:2:0")
        r = ok(c, "page.list", {"limit": 7})
        check(r and len(r["pages"]) == 7 and r["next_cursor"], "page.list limit 7 gives a cursor")
        ok(c, "page.list", {"limit": 7, "cursor": r["next_cursor"]})
        err(c, "page.list", {"state": "released"}, -32602, "page.list unknown state")
        err(c, "page.list", {"cursor": "m1.0.0.0"}, -32020, "page.list foreign cursor")

        # drain of the slow emulator: finishes by itself (drain, not cancel)
        r = ok(c, "emulator.drain", {"emulator": "0:1:1", "timeout_ms": 8000}, timeout=15)
        check(r and r["outcome"] == "drained" and r["forced_pages"] == 0 and
              r["held_pages_at_start"] > 0,
              "emulator.drain 0:1:1: drained without forcing (%s ms)" %
              (r and round(r["elapsed_ms"])), repr(r))
        # drain of the stuck emulator: forced at the deadline
        r = ok(c, "emulator.drain", {"emulator": "0:2:0", "timeout_ms": 300}, timeout=10)
        check(r and r["outcome"] == "forced" and r["forced_pages"] == 32 and
              250 <= r["elapsed_ms"] < 3000,
              "emulator.drain 0:2:0 timeout 300 ms: 32 pages force-unmapped", repr(r))
        err(c, "emulator.drain", {"emulator": "9:9:9"}, -32010, "drain of an unknown emulator")
        err(c, "emulator.drain", {}, -32602, "drain without emulator")
        err(c, "emulator.drain", {"emulator": "0:1:0", "timeout_ms": -5}, -32602, "drain negative timeout")
        check(wait_for(lambda: c.call("status")["result"]["pages"]["invalidating"] == 0 and
                       c.call("status")["result"]["pages"]["flushing"] == 0, 5),
              "every removed page released (I2)")
        rep = json.loads(simctl(T, "check").stdout)
        check(rep["violations"] == 0 and rep["held_pages"] == 0,
              "iomap-sim check: no violations, nothing held", repr(rep))

        # notifications received: released ranges add up, timeout seen
        released, kinds = 0, set()
        deadline = time.time() + 3
        while time.time() < deadline and released < 800:
            try:
                m = sub.msg(timeout=max(0.1, deadline - time.time()))
            except (socket.timeout, TimeoutError):
                break
            if "method" not in m:
                continue
            kinds.add(m["method"])
            e = validate(m["params"], NOTES[m["method"]])
            check(not e and "id" not in m, "notification %s matches the schema" % m["method"],
                  "; ".join(e)) if m["method"] not in kinds - {m["method"]} else None
            if m["method"] == "page.released":
                released += m["params"]["nr"]
        check(released == 512 + 256 + 32, "page.released notifications cover 800 pages",
              "got %d" % released)
        check("page.timeout" in kinds, "page.timeout notification for the drain deadline")
        emu1.terminate()
        emu1.wait()
        got = False
        deadline = time.time() + 3
        while time.time() < deadline and not got:
            try:
                m = sub.msg(timeout=max(0.1, deadline - time.time()))
            except (socket.timeout, TimeoutError):
                break
            if m.get("method") == "emulator.gone":
                got = m["params"]["emulator"] == "0:1:0" and not validate(m["params"], NOTES["emulator.gone"])
        check(got, "emulator.gone notification when 0:1:0 exits")

        # ---- stats, metrics, policy ----------------------------------------
        s = ok(c, "stats")
        lat = s["release_latency"]
        check(lat["count"] == s["counters"]["pages_released"] >= 800 and
              0 < lat["p50_us"] <= lat["p99_us"] <= lat["max_us"],
              "stats: latency count = released, p50 <= p99 <= max", repr(lat))
        m = ok(c, "metrics")
        lines = m.splitlines() if m else []
        import re
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInf]+$')
        bad = [ln for ln in lines if not ln.startswith("#") and not sample.match(ln)]
        check(m and not bad and "# TYPE iomapd_release_latency_seconds histogram" in lines and
              any(ln.startswith("iomapd_pages_released_total ") for ln in lines) and
              m.endswith("\n"), "metrics: Prometheus text format", repr(bad[:3]))
        pg = ok(c, "policy.get")
        check(pg and pg["quotas"]["pending_per_emulator"] == 1048576,
              "policy.get shows the file's quota", repr(pg))
        with open(T + "/iomapd.conf", "w") as fh:
            fh.write("quotas = { pending_per_emulator = ; };\n")
        e = err(c, "policy.reload", None, -32031, "policy.reload of a broken file")
        check("iomapd.conf:1" in e.get("message", ""), "the error names file and line", repr(e))
        pg2 = ok(c, "policy.get")
        check(pg2 == pg, "the old policy stays in force after a refused reload")
        with open(T + "/iomapd.conf", "w") as fh:
            fh.write("emulators = ( { domid = 0; targets = \"any\"; } );\nquotas = { pending_per_emulator = 4096; };\n")
        ok(c, "policy.reload")
        pg = ok(c, "policy.get")
        check(pg and pg["quotas"]["pending_per_emulator"] == 4096, "policy.reload takes the new file")

        # ---- bad input ------------------------------------------------------
        b = Client(ctl)
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","id":1\n', -32700, "malformed JSON")
        raw_err(b, b'this is not json\n', -32700, "not JSON at all")
        raw_err(b, b'42\n', -32600, "a number as request")
        # JSON-RPC 2.0 batches: one array of replies, none for notifications
        b.send_raw(b'[{"jsonrpc":"2.0","method":"status","id":1}]\n')
        r = b.reply()
        check(isinstance(r, list) and len(r) == 1 and r[0].get("id") == 1 and "result" in r[0],
              "a batch of one request -> an array of one reply", repr(r)[:300])
        b.send_raw(b'[{"jsonrpc":"2.0","method":"status","id":1},'
                   b'{"jsonrpc":"2.0","method":"status"},{"foo":"boo"},'
                   b'{"jsonrpc":"2.0","method":"no.such","id":"5"},7]\n')
        r = b.reply()
        check(isinstance(r, list) and len(r) == 4 and r[0].get("id") == 1 and
              r[1].get("error", {}).get("code") == -32600 and r[1].get("id") is None and
              r[2].get("error", {}).get("code") == -32601 and r[2].get("id") == "5" and
              r[3].get("error", {}).get("code") == -32600,
              "a mixed batch: results, -32600 for the invalid ones, nothing for the "
              "notification", repr(r)[:400])
        raw_err(b, b'[]\n', -32600, "an empty batch")
        b.send_raw(b'[{"jsonrpc":"2.0","method":"status"},{"jsonrpc":"2.0","method":"version"}]\n')
        r = b.call("version")
        check("result" in r, "a batch of notifications gets no reply at all", repr(r)[:200])
        b.send_raw(b'[{"jsonrpc":"2.0","method":"emulator.drain","params":{"emulator":"0:1:0"},'
                   b'"id":12}]\n')
        r = b.reply()
        check(isinstance(r, list) and r[0].get("error", {}).get("code") in (-32600, -32000),
              "a method that answers later is refused inside a batch", repr(r)[:300])
        # an invalid request is answered (id null), even without an id
        raw_err(b, b'{"jsonrpc":"2.0","method":1}\n', -32600, "invalid request, no id")
        raw_err(b, b'{"jsonrpc":"1.0","method":"status"}\n', -32600, "jsonrpc 1.0, no id")
        raw_err(b, b'{"method":"status","id":2}\n', -32600, "no jsonrpc member", 2)
        raw_err(b, b'{"jsonrpc":"1.0","method":"status","id":3}\n', -32600, "jsonrpc 1.0", 3)
        raw_err(b, b'{"jsonrpc":"2.0","method":7,"id":4}\n', -32600, "method not a string", 4)
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","id":[1]}\n', -32600, "id an array")
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","id":5,"extra":1}\n', -32600,
                "unknown request member", 5)
        raw_err(b, b'{"jsonrpc":"2.0","method":"no.such","id":6}\n', -32601, "unknown method", 6)
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","params":[1],"id":7}\n', -32602,
                "positional params", 7)
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","params":{"x":1},"id":8}\n', -32602,
                "unknown parameter", 8)
        raw_err(b, b'{"jsonrpc":"2.0","method":"status","id":9,"id":10}\n', -32700,
                "duplicate member")
        # a notification gets no answer; the next request does
        b.send_raw(b'{"jsonrpc":"2.0","method":"status"}\n')
        r = b.call("version")
        check("result" in r, "notification (no id) is not answered")
        deep = b'{"jsonrpc":"2.0","method":"status","id":11,"params":{"a":' + b"[" * 5000 + \
               b"]" * 5000 + b"}}\n"
        raw_err(b, deep, -32600, "request nested 5000 deep")
        r = b.call("status")
        check("result" in r, "same connection still served after the deep request")
        # no raw newline inside values: a string with newlines comes back escaped
        b.send_raw(b'{"jsonrpc":"2.0","method":"no\\nsuch","id":"a\\nb"}\n')
        ln = b.line()
        check(json.loads(ln)["id"] == "a\nb" and b"\n" not in ln,
              "newlines inside values are escaped, one message per line")
        # oversized: an error, then the connection is closed
        big = Client(ctl)
        try:
            big.send_raw(b'{"jsonrpc":"2.0","method":"status","id":1,"params":{"x":"' +
                         b"x" * 200000)
        except OSError:
            pass
        try:
            r = big.msg()
            check(r["error"]["code"] == -32600 and "larger" in r["error"]["message"],
                  "oversized request -> -32600 (%s)" % r["error"]["message"])
            try:
                more = big.s.recv(100)
            except OSError:
                more = b""
            check(more == b"", "oversized request: connection closed")
        except (EOFError, OSError) as ex:
            check(False, "oversized request gets an error before the close", repr(ex))

        # wrong types for every method that takes params
        err(c, "emulator.drain", {"emulator": 5}, -32602, "drain emulator a number")
        err(c, "emulator.drain", {"emulator": "0:1:0", "unmap_all": "yes"}, -32602,
            "drain unmap_all a string")
        err(c, "page.list", {"limit": "10"}, -32602, "page.list limit a string")
        err(c, "subscribe", {}, -32602, "subscribe without events")

        # ---- a client that never reads; idle clients ----------------------------
        idle = [Client(ctl) for _ in range(5)]
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.connect(ctl)
        hog.setblocking(False)
        req = b'{"jsonrpc":"2.0","method":"metrics","id":1}\n' * 64
        sent = 0
        t_end = time.time() + 3
        while time.time() < t_end:
            try:
                sent += hog.send(req)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        worst = 0.0
        for i in range(50):
            t1 = time.time()
            r = c.call("status", timeout=2)
            worst = max(worst, time.time() - t1)
        check(worst < 0.5, "others served while a client never reads (worst %.1f ms, %d bytes "
              "of requests queued)" % (worst * 1000, sent))
        s = c.call("stats")["result"]["counters"]
        print("note: clients dropped so far: %d" % s["api_clients_dropped"])
        hog.close()
        for x in idle:
            x.close()

        # ---- permissions ------------------------------------------------------
        if os.geteuid() == 0:
            def as_user(gid, fn):
                rd, wr = os.pipe()
                pid = os.fork()
                if pid == 0:
                    try:
                        os.close(rd)
                        os.setgroups([])
                        os.setgid(gid)
                        os.setuid(65534)
                        out = fn()
                    except Exception as ex:
                        out = {"exception": repr(ex)}
                    os.write(wr, json.dumps(out).encode())
                    os._exit(0)
                os.close(wr)
                data = b""
                while True:
                    d2 = os.read(rd, 65536)
                    if not d2:
                        break
                    data += d2
                os.waitpid(pid, 0)
                return json.loads(data)

            def member():
                u = Client(ctl)
                return {"status": u.call("status"),
                        "drain": u.call("emulator.drain", {"emulator": "0:1:1"}),
                        "reload": u.call("policy.reload")}
            out = as_user(sock_gid, member)
            check("result" in out.get("status", {}), "socket-group member (uid 65534) may call status",
                  repr(out)[:300])
            check(out.get("drain", {}).get("error", {}).get("code") == -32000,
                  "socket-group member may not drain (-32000)", repr(out)[:300])
            check(out.get("reload", {}).get("error", {}).get("code") == -32000,
                  "socket-group member may not reload (-32000)", repr(out)[:300])

            def outsider():
                try:
                    Client(ctl)
                    return {"connected": True}
                except OSError as ex:
                    return {"errno": ex.errno}
            out = as_user(4242, outsider)
            check(out.get("errno") == errno.EACCES, "a user outside the socket group cannot connect",
                  repr(out))
        else:
            print("note: not root: permission checks skipped")

        # ---- still alive; a clean stop ---------------------------------------------
        r = ok(c, "status")
        check(r is not None and daemon.poll() is None, "daemon still serving after all of the above")
        c.close()
        sub.close()
        b.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "SIGTERM: iomapd exits 0", "rc %r" % rc)
        check(not os.path.exists(ctl), "SIGTERM: control socket removed")
    finally:
        exit_status = finish("test_api", T, log, "daemon and sim log", 6000)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
