#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Rewrite QEMU patch 0001 (linux-headers/linux/kvmig.h) from uapi/kvmig.h.

QEMU keeps a copy of the kernel headers it uses; patch 0001 adds kvmig's.
Run this whenever uapi/kvmig.h changes: scripts/tools-test.sh checks that
the copy in the patch is the header, byte for byte.
"""
import glob
import hashlib
import os
import re
import sys

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
hdr = open(os.path.join(top, 'uapi/kvmig.h'), 'rb').read().decode()
path, = glob.glob(os.path.join(top, 'userspace/qemu/patches/0001-*.patch'))
old = open(path).read()
lines = hdr.split('\n')
if lines[-1] == '':
    lines.pop()
n = len(lines)
blob = hashlib.sha1(b'blob %d\0' % len(hdr.encode()) + hdr.encode()).hexdigest()[:8]
head, rest = old.split('\n@@ -0,0 +1,', 1)
tail = rest[rest.index('\n-- \n'):]
head = re.sub(r'^index 00000000\.\.[0-9a-f]+$', 'index 00000000..' + blob, head,
              flags=re.M)
head = re.sub(r'^( linux-headers/linux/kvmig\.h \| )\d+', r'\g<1>%d' % n, head,
              flags=re.M)
head = re.sub(r'^( 1 file changed, )\d+', r'\g<1>%d' % n, head, flags=re.M)
new = head + '\n@@ -0,0 +1,%d @@\n' % n + ''.join('+' + l + '\n' for l in lines)
new = new.rstrip('\n') + tail
if new != old:
    open(path, 'w').write(new)
    print('sync-uapi: rewrote', os.path.relpath(path, top))
sys.exit(0)
