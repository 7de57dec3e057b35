#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kvmig_qemu_test.sh's migrations with QEMU's RAM carried by kvmig: Debian's
# QEMU with userspace/qemu/patches (scripts/qemu.sh links it into
# build/qemu/), capability x-kvmig on both ends, SMM on (address space 1
# memslots over guest RAM), bitmap mode with manual protect and initially
# set bits (QEMU's defaults). The dmaio guest's pages are written only by
# QEMU's virtio-blk: they reach the destination only through DIRTY_MARK.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
q=$(cd .. && pwd)/build/qemu/qemu-system-x86_64
[ -x "$q" ] || skip "no patched QEMU at $q: run scripts/qemu.sh"
[ -c /dev/kvmig ] || skip "/dev/kvmig not present"
export KVMIG_QEMU=$q KVMIG_QEMU_CAPS=x-kvmig
export KVMIG_QEMU_ARGS="${KVMIG_QEMU_ARGS:--machine pc,smm=on}"
exec ./kvmig_qemu_test.sh
