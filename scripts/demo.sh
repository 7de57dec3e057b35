#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: build everything, boot Debian's stock kernel in the lab, load
# KVM and kvmig, and live-migrate a running guest between two network
# namespaces (scripts/lab-demo.sh), with kvmigctl watching.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
echo "demo: preparing the lab's stock kernel and building kvmig"
scripts/kernel.sh stock >/dev/null
scripts/build.sh stock
echo "demo: Debian's QEMU with userspace/qemu/patches (built once, then cached)"
scripts/qemu.sh >/dev/null
echo "demo: booting the lab (QEMU TCG, emulated AMD SVM + nested paging)"
scripts/lab-run.sh -q -k stock -l build/lab/demo.log -t 900 -- \
	scripts/lab-demo.sh build/stock/module
