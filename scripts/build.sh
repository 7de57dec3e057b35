#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh debug|stock|stock61: build kvmig (warnings are errors) for one lab
# kernel in build/<name>/, a copy of the sources (kbuild writes objects next
# to them, so each kernel needs its own), plus the selftests and userspace
# (these do not depend on the kernel: the same binaries serve every lab).
# Prints nothing but errors; exits non-zero on failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

case ${1:-} in
debug) kdir=$(scripts/kernel.sh debug) ;;
stock | stock61)
	k=$(scripts/kernel.sh "$1")
	kdir=$k/root/usr/src/linux-headers-$(cat "$k/abi")
	;;
*) echo "usage: $0 debug|stock|stock61" >&2; exit 2 ;;
esac

dir=$top/build/$1
rm -rf "$dir"
mkdir -p "$dir"
cp -r Kbuild module uapi "$dir/"
make -s -C "$kdir" M="$dir" KVMIG_WERROR=y modules
# The selftests build against the kselftest harness of the lab's kernel
# source, which kernel.sh unpacks for the debug kernel (make check asks for
# that kernel first). Should the unpacked tree be gone while the debug
# kernel is cached, the two headers are taken from Debian's tarball.
cache=${KVMIG_CACHE:-$HOME/.cache/kvmig}
ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
ksrc=$cache/src-$ver
if [ ! -f "$ksrc/tools/testing/selftests/kselftest_harness.h" ]; then
	ksrc=$cache/ksft-$ver
	if [ ! -f "$ksrc/.done" ]; then
		rm -rf "$ksrc" "$ksrc.tmp"
		mkdir -p "$ksrc.tmp"
		tar -C "$ksrc.tmp" --strip-components=1 --wildcards \
			-xf /usr/src/linux-source-6.12.tar.xz \
			'*/tools/testing/selftests/kselftest.h' \
			'*/tools/testing/selftests/kselftest_harness.h'
		touch "$ksrc.tmp/.done"
		mv "$ksrc.tmp" "$ksrc"
	fi
fi
make -s -C selftests KVMIG_WERROR=1 KSRC="$ksrc"
make -s -C userspace KVMIG_WERROR=1
make -s -C bench KVMIG_WERROR=1
