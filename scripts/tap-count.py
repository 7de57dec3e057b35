#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Count the leaf results of TAP/KTAP files.

Nesting is read from 4-space indentation (KTAP, KUnit) and from "# "
prefixes (kselftest's runner); a result is a leaf when no deeper result came
right before it, so parameterised KUnit cases and selftest programs count
their inner cases, and a program that died before printing any counts once.
A parent that is "not ok" while none of its inner cases failed (a program
that crashed, hung or exited non-zero after its cases passed) is a failure
of its own.
Prints one line per failure, a summary per file, and exits 1 on any failure
or on a file with no results.
"""
import re
import sys

RESULT = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$')


def depth_and_body(line):
    depth = 0
    while True:
        if line.startswith('    '):
            line, depth = line[4:], depth + 1
        elif line.startswith('# '):
            line, depth = line[2:], depth + 1
        elif line.startswith('\t'):
            line, depth = line[1:], depth + 1
        else:
            return depth, line


def count(path):
    passed = failed = skipped = 0
    failures = []
    prev = None
    mark = {}  # depth -> failures counted up to the last result at that depth
    with open(path, errors='replace') as f:
        for raw in f:
            depth, body = depth_and_body(raw.rstrip('\n'))
            m = RESULT.match(body)
            if not m:
                continue
            leaf = prev is None or prev <= depth
            prev = depth
            desc = m.group(3)
            if not leaf:
                if m.group(1) == 'not ok' and failed == mark.get(depth, 0):
                    failed += 1
                    failures.append(desc)
                mark[depth] = failed
                continue
            if m.group(1) == 'not ok':
                failed += 1
                failures.append(desc)
            elif re.search(r'#\s*skip', desc, re.I):
                skipped += 1
            else:
                passed += 1
            mark[depth] = failed
    return passed, failed, skipped, failures


def main():
    tp = tf = ts = 0
    bad = False
    for path in sys.argv[1:]:
        try:
            p, f, s, fails = count(path)
        except OSError as e:
            print(f'tap-count: {path}: {e.strerror}')
            tf += 1
            bad = True
            continue
        for d in fails:
            print(f'FAILED: {path}: {d}')
        if p + f + s == 0:
            print(f'tap-count: {path}: no results')
            tf += 1
            bad = True
        print(f'# {path}: {p} passed, {f} failed, {s} skipped')
        tp, tf, ts = tp + p, tf + f, ts + s
    print(f'{tp} {tf} {ts}', file=sys.stderr)
    return 1 if bad or tf else 0


if __name__ == '__main__':
    sys.exit(main())
