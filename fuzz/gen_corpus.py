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
