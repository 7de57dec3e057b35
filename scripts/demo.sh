#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: build everything, boot Debian's stock kernel in the lab, load
# KVM and kvmig, and live-migrate a running guest between two network
# namespaces (scripts/lab-demo.sh), with kvmigctl watching.
# make demo-evacuate (demo.sh evacuate): the same lab, and several demo VMs
# leaving one "host" at once under kvmig's host limits
# (scripts/lab-demo-evacuate.sh), kvmigctl watch --all showing them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
what=${1:-}
scripts/deps.sh
echo "demo: preparing the lab's stock kernel and building kvmig"
scripts/kernel.sh stock >/dev/null
scripts/build.sh stock
if [ "$what" = evacuate ]; then
	echo "demo: booting the lab (QEMU TCG, emulated AMD SVM + nested paging)"
	exec scripts/lab-run.sh -q -k stock -l build/lab/demo-evacuate.log \
		-t 900 -- scripts/lab-demo-evacuate.sh build/stock/module
fi
echo "demo: Debian's QEMU with userspace/qemu/patches (built once, then cached)"
scripts/qemu.sh >/dev/null
echo "demo: booting the lab (QEMU TCG, emulated AMD SVM + nested paging)"
scripts/lab-run.sh -q -k stock -l build/lab/demo.log -t 900 -- \
	scripts/lab-demo.sh build/stock/module
