#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seed corpus for wire_fuzz: well-formed streams the fuzzer mutates.

Each input is one stream of a migration, as wire_fuzz.c reads it: the
HELLO and SLOTs, a byte choosing the stream (modulo nr_streams), the
STREAM opening unless it is the first, then that stream's records.
"""
import struct
import sys

MAGIC = 0x474d564b
VERSION = 4
TOKEN = 0x0123456789abcdef


def hello(nr_streams=1, token=TOKEN):
    return struct.pack('<IHHIIQIIQ', MAGIC, VERSION, 12, 4, 0, 1560,
                       nr_streams, 0, token)


def stream(index, token=TOKEN):
    return struct.pack('<IHHQ', MAGIC, VERSION, index, token)


# As wire_fuzz.c's layout. Slot 1 is shares 256..259 (gfn >> 9); slot
# 40000 is in share 2^43 - 1: stream 1 of 2, 3 of 4, 15 of 16.
SLOTS = b''.join(struct.pack('<IIQQ', *s) for s in
                 [(0, 2, 0, 48), (1, 4, 0x20000, 2048), (3, 4, 0x40000, 512),
                  (40000, 0, 0xfffffffffff00, 0xff)])


def rec(t, slot=0, gfn=0, n=0, ln=0):
    return struct.pack('<HHIQII', t, 0, slot, gfn, n, ln)


def first(nr_streams=1):
    """The first stream's opening: HELLO, SLOTs, stream 0."""
    return hello(nr_streams) + SLOTS + bytes([0])


def other(nr_streams, index):
    """Another stream's opening: the HELLO it belongs to, then STREAM."""
    return hello(nr_streams) + SLOTS + bytes([index]) + stream(index)


streams = {
    'empty_end': first() + rec(3, gfn=0) + rec(4, ln=4) + b'abcd' + rec(5),
    'pages': first() + rec(3) + rec(1, 1, 0x20000, 2) + b'\x11' * 8192
    + rec(2, 3, 0x40000, 64) + rec(2, 1, 0x20000, 512)
    + rec(1, 0, 47, 1) + b'\x22' * 4096
    + rec(4, ln=0) + rec(5) + rec(6),
    'edge': first() + rec(1, 40000, 0xfffffffffffbf, 64) + b'\0' * 262144
    + rec(5),
    # Four streams: the first with its share (256) and all the rest.
    'streams4_0': first(4) + rec(3) + rec(1, 1, 0x20000, 2) + b'\x33' * 8192
    + rec(2, 1, 0x20002, 510) + rec(2, 3, 0x40000, 512)
    + rec(1, 0, 47, 1) + b'\x44' * 4096
    + rec(4, ln=4) + b'dcba' + rec(5) + rec(6),
    'streams4_1': other(4, 1) + rec(1, 1, 0x20200, 1) + b'\x55' * 4096
    + rec(2, 1, 0x20201, 511) + rec(5),
    'streams4_3': other(4, 3) + rec(2, 1, 0x20600, 512)
    + rec(1, 40000, 0xfffffffffff00, 2) + b'\x66' * 8192 + rec(5),
    'streams2_1': other(2, 1) + rec(2, 1, 0x20200, 512)
    + rec(2, 40000, 0xfffffffffff00, 0xff) + rec(5),
    'streams16_15': other(16, 15) + rec(1, 40000, 0xfffffffffffbf, 1)
    + b'\x77' * 4096 + rec(5),
}
for name, data in streams.items():
    with open(f'{sys.argv[1]}/{name}', 'wb') as f:
        f.write(data)
