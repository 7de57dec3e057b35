#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sparse.sh: build kvmig for the debug kernel with sparse on every file
# (C=2), in build/sparse/ (kbuild writes objects next to the sources), and
# fail on any warning or error sparse or the compiler prints.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kdir=$(scripts/kernel.sh debug)
dir=$top/build/sparse
rm -rf "$dir"
mkdir -p "$dir"
cp -r Kbuild module uapi "$dir/"
out=$(make -s -C "$kdir" M="$dir" C=2 modules 2>&1)
found=$(grep -E ': (warning|error): ' <<<"$out" || true)
if [ -n "$found" ]; then
	echo "$found"
	exit 1
fi
