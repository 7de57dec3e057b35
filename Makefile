# SPDX-License-Identifier: GPL-2.0
#
# kvmig: `make` builds module/kvmig.ko against KDIR (default: the running
# kernel's build tree) and the selftests. `make check` and `make demo` run
# everything in the QEMU lab; see README.md.

KDIR ?= /lib/modules/$(shell uname -r)/build
# The lab kernel `make bench` runs on: stock (Debian's 6.12) or stock61
# (Debian 12's own 6.1), e.g. `make bench KERNEL=stock61`.
KERNEL ?= stock

all: module selftests userspace

module:
	@test -f $(KDIR)/Makefile || { \
		echo "kvmig: no kernel build tree at KDIR=$(KDIR)."; \
		echo "kvmig: install the headers of the target kernel, or pass KDIR=<tree>;"; \
		echo "kvmig: 'make check' and 'make demo' set up the lab's own kernels."; \
		exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

selftests:
	$(MAKE) -C selftests

userspace:
	$(MAKE) -C userspace


check:
	scripts/check.sh

demo:
	scripts/demo.sh

demo-evacuate:
	scripts/demo.sh evacuate

bench:
	scripts/bench.sh $(KERNEL)

checkpatch:
	scripts/checkpatch.sh

# Every file through sparse against the debug kernel; any warning fails.
sparse:
	scripts/sparse.sh

modules_install: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

clean:
	$(MAKE) -C selftests clean
	$(MAKE) -C userspace clean
	$(MAKE) -C bench clean
	rm -rf build
	find module -name '*.o' -o -name '*.ko' -o -name '*.mod' \
		-o -name '*.mod.c' -o -name '.*.cmd' | xargs rm -f
	rm -f modules.order Module.symvers module/modules.order

.PHONY: all module selftests userspace check demo demo-evacuate bench checkpatch sparse modules_install clean
