#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the kernel's checkpatch.pl (from the lab's kernel source) on kvmig's
# kernel code and UAPI header. Exit 1 on any error or warning.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KVMIG_CACHE:-$HOME/.cache/kvmig}
ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
cp=$cache/src-$ver/scripts/checkpatch.pl
[ -x "$cp" ] || "$top/scripts/kernel.sh" debug >/dev/null
cd "$top"
"$cp" --no-tree --strict --terse --show-types -f \
	module/*.c module/core.h module/dirty/*.c module/dirty/*.h \
	module/xfer/*.c module/xfer/*.h uapi/*.h
# Tracepoint headers are written in the TRACE_EVENT() layout that
# include/trace/events/ uses, which --strict's alignment checks dislike.
"$cp" --no-tree --strict --terse --show-types -f \
	--ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT module/trace.h
# compat.h is where the version checks live, by design: each is a
# LINUX_VERSION_CODE comparison, which checkpatch warns about one by one.
"$cp" --no-tree --strict --terse --show-types -f \
	--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON module/compat.h
