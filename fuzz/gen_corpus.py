#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seed corpus for wire_fuzz: well-formed streams the fuzzer mutates."""
import struct
import sys

HELLO = struct.pack('<IHHIIQ', 0x474d564b, 3, 12, 4, 0, 1560)
SLOTS = b''.join(struct.pack('<IIQQ', *s) for s in
                 [(0, 2, 0, 48), (1, 4, 0x20000, 512), (3, 4, 0x40000, 512),
                  (40000, 0, 0xfffffffffff00, 0xff)])


def rec(t, slot=0, gfn=0, n=0, ln=0):
    return struct.pack('<HHIQII', t, 0, slot, gfn, n, ln)


streams = {
    'empty_end': HELLO + SLOTS + rec(3, gfn=0) + rec(4, ln=4) + b'abcd' + rec(5),
    'pages': HELLO + SLOTS + rec(3) + rec(1, 1, 0x20000, 2) + b'\x11' * 8192
    + rec(2, 3, 0x40000, 64) + rec(2, 1, 0x20000, 512)
    + rec(1, 0, 47, 1) + b'\x22' * 4096
    + rec(4, ln=0) + rec(5) + rec(6),
    'edge': HELLO + SLOTS + rec(1, 40000, 0xfffffffffffbf, 64) + b'\0' * 262144
    + rec(5),
}
for name, data in streams.items():
    with open(f'{sys.argv[1]}/{name}', 'wb') as f:
        f.write(data)
