#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lab-demo.sh MODDIR: inside the lab guest, what `make demo` shows.
set -euo pipefail
mod=$1
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "host: $(uname -sr), $(nproc) vCPUs; CPU has: $(grep -ow -m1 -e svm -e npt /proc/cpuinfo | sort -u | tr '\n' ' ')"
say "loading KVM: modprobe ccp kvm_amd"
scripts/lab-modprobe ccp
scripts/lab-modprobe kvm_amd
dmesg | grep -E 'kvm_amd|SVM' | sed 's/^/  /' || true
ls -l /dev/kvm

say "loading kvmig: insmod $mod/kvmig.ko"
insmod "$mod/kvmig.ko"
dmesg | grep 'kvmig:' | sed 's/^/  /'
ls -l /dev/kvmig
lsmod | grep -E '^(kvmig|kvm_amd|kvm) '

say "asking kvmig for its API: userspace/kvmigctl version"
userspace/kvmigctl version

say "running a nested KVM guest: selftests/kvm_nested_test"
selftests/kvm_nested_test | grep -E '^(ok|not ok|# (PASSED|FAILED|Totals))'

say "unloading: rmmod kvmig"
rmmod kvmig
say "done: KVM and kvmig are working in the lab"
