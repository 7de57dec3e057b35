#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh debug|stock: build kvmig (warnings are errors) for one lab kernel
# in build/<name>/, a copy of the sources (kbuild writes objects next to
# them, so each kernel needs its own), plus the selftests and userspace.
# Prints nothing but errors; exits non-zero on failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

case ${1:-} in
debug) kdir=$(scripts/kernel.sh debug) ;;
stock)
	k=$(scripts/kernel.sh stock)
	kdir=$k/root/usr/src/linux-headers-$(cat "$k/abi")
	;;
*) echo "usage: $0 debug|stock" >&2; exit 2 ;;
esac

dir=$top/build/$1
rm -rf "$dir"
mkdir -p "$dir"
cp -r Kbuild module uapi "$dir/"
make -s -C "$kdir" M="$dir" KVMIG_WERROR=y modules
make -s -C selftests KVMIG_WERROR=1
make -s -C userspace KVMIG_WERROR=1
make -s -C bench KVMIG_WERROR=1
