#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Count the leaf results of TAP/KTAP files and check them against the plans.

Nesting is read from 4-space indentation (KTAP, KUnit) and from "# "
prefixes (kselftest's runner); a result is a leaf when no deeper result came
right before it, so parameterised KUnit cases and selftest programs count
their inner cases, and a program that died before printing any counts once.
A parent that is "not ok" while none of its inner cases failed (a program
that crashed, hung or exited non-zero after its cases passed) is a failure
of its own.

Every stream (the file, each nested program or subtest: from its version
line or first line to the parent's result) is checked against its plan
("1..N", before or after the results): fewer or more results than planned,
or no plan at all, is one failure, named after the parent's result. Only a
nested KTAP subtest may leave its plan out (KUnit's parameterised cases do:
Documentation/dev-tools/ktap.rst allows it when the count is not known in
advance). A program that was killed half-way or stopped printing therefore
fails even when its parent says "ok", and so does a truncated file.

Prints one line per failure, a summary per file, and exits 1 on any failure
or on a file with no results. The last line, on stderr, is the totals:
"passed failed skipped".
"""
import re
import sys

RESULT = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$')
PLAN = re.compile(r'^1\.\.(\d+)\b')
VERSION = re.compile(r'^(K?TAP) version \d+')
# What names a stream that ends without its parent's result: kselftest's
# runner says "selftests: kvmig: PROG" before it, KTAP "Subtest: NAME" in it.
NAME = re.compile(r'^(?:selftests: \S+: (\S+)|Subtest: (\S+))$')


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


class Stream:
    def __init__(self, depth, line, ktap=False):
        self.depth, self.line, self.ktap = depth, line, ktap
        self.plan = None
        self.results = 0
        self.name = None

    def problem(self):
        """What is wrong with this stream once it has ended, or None."""
        if self.plan is None:
            if self.ktap and self.depth > 0:
                return None
            return f'no plan (1..N), {self.results} results'
        if self.results < self.plan:
            return (f'stream ended after {self.results} of '
                    f'{self.plan} planned results')
        if self.results > self.plan:
            return f'{self.results} results, {self.plan} planned'
        return None


def count(path):
    passed = failed = skipped = 0
    failures = []
    prev = None
    mark = {}  # depth -> failures counted up to the last result at that depth
    open_ = {}  # depth -> Stream
    pending = {}  # depth -> name for the next stream opened at that depth

    def close(deeper_than, name):
        """End the streams nested deeper than a depth; name: the parent.
        Returns how many of them failed."""
        nonlocal failed
        bad = 0
        for d in sorted((d for d in open_ if d > deeper_than), reverse=True):
            s = open_.pop(d)
            why = s.problem()
            if why:
                bad += 1
                failed += 1
                who = name or s.name or f'stream from line {s.line}'
                failures.append(f'{who}: {why}')
        return bad

    def stream(depth, lineno, ktap=False, new=False):
        if new or depth not in open_:
            open_[depth] = Stream(depth, lineno, ktap)
            open_[depth].name = pending.pop(depth, None)
        return open_[depth]

    with open(path, errors='replace') as f:
        for lineno, raw in enumerate(f, 1):
            depth, body = depth_and_body(raw.rstrip('\r\n'))
            v = VERSION.match(body)
            if v:
                close(depth - 1, None)
                stream(depth, lineno, v.group(1) == 'KTAP', new=True)
                continue
            p = PLAN.match(body)
            if p:
                close(depth, None)
                s = stream(depth, lineno)
                if s.plan is not None:
                    failed += 1
                    failures.append(f'line {lineno}: a second plan')
                s.plan = int(p.group(1))
                continue
            n = NAME.match(body)
            if n:
                up = open_.get(depth - 1)
                if n.group(2) and up and up.name is None:
                    up.name = n.group(2)
                else:
                    pending[depth] = n.group(1) or n.group(2)
                continue
            m = RESULT.match(body)
            if not m:
                continue
            desc = m.group(3)
            # The parent's result ends its children's streams: count their
            # problems first, so that the parent of a short stream is one
            # failure, not two, and never a pass.
            short = close(depth, desc)
            stream(depth, lineno).results += 1
            leaf = prev is None or prev <= depth
            prev = depth
            if short:
                mark[depth] = failed
                continue
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
    # End of file: what is still open was cut short, unless the file has
    # no results at all (reported as such by the caller).
    if passed + failed + skipped:
        close(0, None)
        close(-1, 'the whole file')
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
