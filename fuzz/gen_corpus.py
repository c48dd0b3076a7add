#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ (run from the source tree)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

def ev(t, flags=0, domid=0, emu=0, ios=0, nr=1, seq=0, gfn=0, arg=0):
    return struct.pack('<BBHHHIIQQ', t, flags, domid, emu, ios, nr, seq, gfn, arg)

MAP, UNMAP, FLUSH, DONE, REMOVED, DESTROYED, GONE, OVERFLOW, DMAP, DHELD, DEND, RESULT = range(1, 13)

def region(records, prod=None, cons=0, flags=0, ev_slots=64, cmd_slots=64, magic=0x50414d4f,
           version=0x10000):
    hdr = struct.pack('<IIIIIIII', magic, version, ev_slots, cmd_slots, 4096,
                      4096 + ev_slots * 32, flags, 0)
    hdr = hdr.ljust(64, b'\0')
    hdr += struct.pack('<I', len(records) if prod is None else prod).ljust(64, b'\0')
    hdr += struct.pack('<I', cons).ljust(64, b'\0')
    hdr = hdr.ljust(4096, b'\0')
    body = b''.join(records).ljust(ev_slots * 32, b'\0')
    return hdr + body + b'\0' * (cmd_slots * 32)

life = [
    ev(MAP, domid=1, emu=0, ios=1, nr=16, gfn=0x100, arg=0x5000),
    ev(MAP, domid=1, emu=0, ios=2, nr=4, gfn=0x104, arg=0x5004),
    ev(REMOVED, domid=1, nr=8, gfn=0x100, arg=0x5000),
    ev(UNMAP, domid=1, emu=0, ios=1, nr=8, seq=1, gfn=0x100, arg=0x5000),
    ev(FLUSH, seq=1),
    ev(UNMAP, domid=1, emu=0, ios=2, nr=4, seq=2, gfn=0x104, arg=0x5004, flags=4),
    ev(FLUSH, seq=2),
    ev(DONE, seq=1),
    ev(DONE, seq=2),
]
faults = [
    ev(MAP, domid=2, emu=3, ios=1, nr=32, gfn=0, arg=0x100),
    ev(MAP, domid=2, emu=3, ios=1, nr=1, gfn=0, arg=0x100, flags=1),
    ev(REMOVED, domid=2, nr=32, gfn=0, arg=0x100),
    ev(GONE, emu=3, ios=1),
    ev(DESTROYED, domid=2),
    ev(DESTROYED, domid=3),
    ev(OVERFLOW, nr=5, arg=5),
    ev(DHELD, domid=2, nr=2, gfn=0x10, arg=0x200, seq=9),
    ev(DMAP, domid=2, emu=0, ios=1, nr=1, gfn=0x10, arg=0x200),
    ev(DEND, seq=9, arg=3, nr=1, domid=2, gfn=0x11),
    ev(DMAP, domid=2, emu=0, ios=1, nr=1, gfn=0x11, arg=0x201),
    ev(DEND, seq=9, arg=9, nr=0),
    ev(RESULT, flags=1, seq=(-2) & 0xffffffff, arg=7),
    ev(RESULT, flags=4, seq=(-28) & 0xffffffff, arg=8),
]
bad = [
    ev(MAP, domid=1, nr=0), ev(MAP, domid=0x7ff0, nr=1), ev(MAP, domid=1, nr=1 << 19),
    ev(MAP, domid=1, nr=1, gfn=(1 << 52) - 1), ev(MAP, flags=0xf0, nr=1),
    ev(UNMAP, domid=1, emu=9, nr=3, gfn=7), ev(DONE, seq=0xfffffff0),
    ev(FLUSH, seq=0xffffffff), ev(0), ev(200, nr=0xffffffff, gfn=2**64 - 1),
    ev(REMOVED, domid=5, nr=1 << 18, gfn=0, arg=0),
]

def stream(recs):
    return b'\x01' + b''.join(recs)

def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

write('ring', 'stream-lifecycle', stream(life))
write('ring', 'stream-faults', stream(life + faults))
write('ring', 'stream-bad', stream(bad + life))
write('ring', 'stream-long', stream((life + faults) * 12))
write('ring', 'region-lifecycle', b'\x00' + region(life))
write('ring', 'region-overflow', b'\x00' + region(life[:3], flags=1))
write('ring', 'region-bad-prod', b'\x00' + region(life, prod=1000))
write('ring', 'region-wrapped', b'\x00' + region(life, prod=(0xfffffffe + 9) & 0xffffffff, cons=0xfffffffe))
write('ring', 'region-bad-magic', b'\x00' + region(life, magic=0x12345678))
write('ring', 'region-bad-version', b'\x00' + region(life, version=0x20000))
write('ring', 'region-bad-slots', b'\x00' + region(life, ev_slots=48))
write('ring', 'region-short', b'\x00' + region(life)[:100])

policy_seeds = {
    'full': open(os.path.join(HERE, '..', 'policy', 'iomapd.conf.example'), 'rb').read(),
    'empty': b'',
    'minimal': b'emulators = ( { domid = 0; targets = [ 1 ]; } );\n',
    'any': b'emulators = ( { domid = "any"; ioservid = "any"; targets = "any"; readonly = true; } );\n',
    'ranges': b'reserved = ( { domid = 1; gfn = 0xfd000; nr = 16; }, { gfn = 0; nr = 1; } );\n'
              b'readonly = ( { domid = "any"; gfn = 0xc0; nr = 64; } );\n',
    'timeouts': b'timeouts = { invalidating = { ms = 0; steps = [ ]; };\n'
                b'  flushing = { ms = 86400000; steps = [ "log", "flush", "crash-guest", "none" ]; }; };\n',
    'quotas': b'quotas = { mappings_per_emulator = 0; mappings_per_domain = 1099511627776;\n'
              b'  pending_per_emulator = 1L; pending_per_domain = 0x10; };\n',
    'bad-syntax': b'emulators = ( { domid = 0; targets = [1] ',
    'bad-key': b'quotas = { mappings = 5; };\n',
    'bad-type': b'emulators = ( { domid = "zero"; targets = 1; } );\n',
    'bad-list': b'emulators = { domid = 0; };\nreserved = 5;\n',
    'nested': b'timeouts = { invalidating = { steps = [ [ "log" ] ]; }; };\n',
}
for name, data in policy_seeds.items():
    write('policy', name, data)

# JSON-RPC: first byte = caller (bit 0 root, bit 1 stopping, high nibble
# picks the policy.reload outcome), then request lines.
import json

def rq(method, params=None, rid=1, **extra):
    r = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        r["params"] = params
    r.update(extra)
    return json.dumps(r).encode()

def lines(*ls, caller=1):
    return bytes([caller]) + b'\n'.join(ls) + b'\n'

rpc_seeds = {
    'version': lines(rq('version')),
    'status': lines(rq('status'), caller=0),
    'domain-list': lines(rq('domain.list')),
    'emulator-list': lines(rq('emulator.list', rid="e")),
    'mapping-list': lines(rq('mapping.list', {"limit": 10}),
                          rq('mapping.list', {"cursor": "m1.0.1.10a", "limit": 5}, 2),
                          rq('mapping.list', {"emulator": "0:1", "domid": 1, "gfn_start": 0x100,
                                              "gfn_end": 0x1ff}, 3),
                          rq('mapping.list', {"emulator": {"emu_domid": 3, "ioservid": 1}}, 4)),
    'page-list': lines(rq('page.list', {"limit": 3}), rq('page.list', {"cursor": "p1.3"}, 2),
                       rq('page.list', {"state": "flushing", "domid": 1}, 3),
                       rq('page.list', {"state": "invalidating"}, 4)),
    'stats': lines(rq('stats')),
    'metrics': lines(rq('metrics')),
    'drain': lines(rq('emulator.drain', {"emulator": "0:1", "timeout_ms": 300}),
                   rq('emulator.drain', {"emulator": "0:1"}, 2), rq('status', None, 3),
                   rq('status', None, 4), rq('status', None, 5), rq('page.list', None, 6)),
    'drain-unmap-all': lines(rq('emulator.drain', {"emulator": "3:1", "unmap_all": True,
                                                    "timeout_ms": 0})),
    'drain-denied': lines(rq('emulator.drain', {"emulator": "0:1"}), caller=0),
    'drain-stopping': lines(rq('emulator.drain', {"emulator": "0:2"}), caller=3),
    'policy': lines(rq('policy.get'), rq('policy.reload', None, 2), rq('policy.get', None, 3),
                    rq('policy.reload', None, 4), rq('policy.reload', None, 5),
                    rq('policy.get', None, 6), rq('policy.reload', None, 7),
                    rq('mapping.list', None, 8), rq('stats', None, 9)),
    'subscribe': lines(rq('subscribe', {"events": ["page.released", "page.timeout",
                                                   "emulator.gone"]}),
                       rq('subscribe', {"events": []}, 2),
                       rq('subscribe', {"events": ["page.exploded"]}, 3)),
    'notification': lines(b'{"jsonrpc":"2.0","method":"status"}',
                          b'{"jsonrpc":"2.0","method":"emulator.drain","params":{"emulator":"0:1"}}'),
    'malformed': lines(b'{"jsonrpc":"2.0","method":"status","id":1', b'this is not json',
                       b'', b'   \r', b'{"jsonrpc":"2.0","method":"status","id":9,"id":10}',
                       b'{"jsonrpc":"2.0","method":"st\\u0000atus","id":"\\ud800"}',
                       b'\xff\xfe{}'),
    'invalid-request': lines(b'42', b'[{"jsonrpc":"2.0","method":"status","id":1}]', b'null',
                             b'{"method":"status","id":2}', b'{"jsonrpc":"1.0","method":"status","id":3}',
                             b'{"jsonrpc":"2.0","method":7,"id":4}',
                             b'{"jsonrpc":"2.0","method":"status","id":[1]}',
                             b'{"jsonrpc":"2.0","method":"status","id":5,"extra":1}',
                             b'{"jsonrpc":"2.0","method":"no.such","id":6}',
                             b'{"jsonrpc":"2.0","method":"status","params":[1],"id":7}',
                             b'{"jsonrpc":"2.0","method":"status","params":{"x":1},"id":8}'),
    'nested': lines(b'{"jsonrpc":"2.0","method":"status","id":11,"params":{"a":' + b'[' * 40 +
                    b']' * 40 + b'}}',
                    b'{"jsonrpc":"2.0","method":"status","id":12,"params":{"a":' + b'[' * 5000 +
                    b']' * 5000 + b'}}',
                    b'{"jsonrpc":"2.0","method":"subscribe","id":13,"params":{"events":[[[["x"]]]]}}',
                    b'{"jsonrpc":"2.0","method":"status","id":"[{\\"","params":{}}'),
    'huge-ids': lines(b'{"jsonrpc":"2.0","method":"status","id":9223372036854775807}',
                      b'{"jsonrpc":"2.0","method":"status","id":-9223372036854775808}',
                      b'{"jsonrpc":"2.0","method":"status","id":99999999999999999999999}',
                      b'{"jsonrpc":"2.0","method":"status","id":1.5}',
                      b'{"jsonrpc":"2.0","method":"status","id":1e400}',
                      b'{"jsonrpc":"2.0","method":"status","id":"' + b'i' * 4000 + b'"}',
                      b'{"jsonrpc":"2.0","method":"status","id":null}',
                      b'{"jsonrpc":"2.0","method":"status","id":true}'),
    'wrong-types': lines(rq('mapping.list', {"domid": "one"}), rq('mapping.list', {"limit": 0}, 2),
                         rq('mapping.list', {"limit": 10001}, 3),
                         rq('mapping.list', {"emulator": "zero"}, 4),
                         rq('mapping.list', {"emulator": "4294967296:1"}, 5),
                         rq('mapping.list', {"gfn_start": 9, "gfn_end": 1}, 6),
                         rq('mapping.list', {"cursor": 5}, 7),
                         rq('mapping.list', {"cursor": "m1.99999.0.0"}, 8),
                         rq('mapping.list', {"domid": -1}, 9),
                         rq('mapping.list', {"domid": 1.0}, 10),
                         rq('page.list', {"limit": "10"}, 11), rq('page.list', {"state": 1}, 12),
                         rq('page.list', {"cursor": "p1.18446744073709551615"}, 13),
                         rq('emulator.drain', {"emulator": 5}, 14),
                         rq('emulator.drain', {"emulator": "0:1", "unmap_all": "yes"}, 15),
                         rq('emulator.drain', {"emulator": "0:1", "timeout_ms": -5}, 16),
                         rq('emulator.drain', {"emulator": "9:9"}, 17),
                         rq('emulator.drain', {}, 18),
                         rq('subscribe', {}, 19), rq('subscribe', {"events": "page.released"}, 20),
                         rq('status', "x", 21), rq('version', {"a": 1}, 22)),
    'long-names': lines(rq('\u00e9' * 200), rq('status', {"\u00e9" * 300: 1}, 2),
                        rq('status', None, 3, **{"\u00e9" * 300: 1})),
    'escapes': lines(b'{"jsonrpc":"2.0","method":"no\\nsuch","id":"a\\nb"}',
                     b'{"jsonrpc":"2.0","method":"status","id":"\\"\\\\\\/\\b\\f\\n\\r\\t"}'),
}
for name, data in rpc_seeds.items():
    write('rpc', name, data)
