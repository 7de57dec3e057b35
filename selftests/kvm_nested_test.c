// SPDX-License-Identifier: GPL-2.0
/*
 * Proves that real KVM guests run where the tests run: a one-vCPU VM in
 * real mode adds two registers, reports the sum on an I/O port, stores it
 * in guest memory and halts. The host checks each exit and the memory.
 *
 * Under the lab (QEMU TCG with emulated SVM) this is nested KVM. With
 * KVMIG_REQUIRE=1 a missing /dev/kvm fails instead of skipping.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define MEM_SIZE	0x10000
#define CODE_GPA	0x1000
#define DATA_GPA	0x2000
#define PORT		0x10

/* Guest code, 16-bit real mode. */
static const uint8_t guest_code[] = {
	0x01, 0xd8,		/* add ax, bx */
	0xba, PORT, 0x00,	/* mov dx, PORT */
	0xee,			/* out dx, al */
	0xa3, DATA_GPA & 0xff, DATA_GPA >> 8,	/* mov [DATA_GPA], ax */
	0xf4,			/* hlt */
};

FIXTURE(vm) {
	int kvm, vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

FIXTURE_SETUP(vm)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
	};
	struct kvm_sregs sregs;
	int size;

	self->vm = self->vcpu = -1;
	self->mem = MAP_FAILED;
	self->run = MAP_FAILED;
	self->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (self->kvm < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_LE(0, self->kvm) TH_LOG("/dev/kvm: %s", strerror(errno));
	ASSERT_EQ(KVM_API_VERSION, ioctl(self->kvm, KVM_GET_API_VERSION, 0));

	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, self->vm) TH_LOG("KVM_CREATE_VM: %s", strerror(errno));

	self->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	memcpy(self->mem + CODE_GPA, guest_code, sizeof(guest_code));
	region.userspace_addr = (uintptr_t)self->mem;
	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &region));

	self->vcpu = ioctl(self->vm, KVM_CREATE_VCPU, 0);
	ASSERT_LE(0, self->vcpu) TH_LOG("KVM_CREATE_VCPU: %s", strerror(errno));
	size = ioctl(self->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, size);
	self->run_size = size;
	self->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, self->run);

	ASSERT_EQ(0, ioctl(self->vcpu, KVM_GET_SREGS, &sregs));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	ASSERT_EQ(0, ioctl(self->vcpu, KVM_SET_SREGS, &sregs));
}

FIXTURE_TEARDOWN(vm)
{
	if (self->run != MAP_FAILED)
		munmap(self->run, self->run_size);
	if (self->vcpu >= 0)
		close(self->vcpu);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, MEM_SIZE);
	if (self->vm >= 0)
		close(self->vm);
	if (self->kvm >= 0)
		close(self->kvm);
}

/*
 * Nested and emulated, the first entry is slow on the debug kernel: the
 * timeout is a safety net, not a measurement.
 */
TEST_F_TIMEOUT(vm, add_out_store_hlt, 300)
{
	struct kvm_regs regs = {
		.rip = CODE_GPA,
		.rax = 2,
		.rbx = 3,
		.rflags = 0x2,
	};
	struct kvm_run *run = self->run;
	uint16_t stored;

	ASSERT_EQ(0, ioctl(self->vcpu, KVM_SET_REGS, &regs));

	ASSERT_EQ(0, ioctl(self->vcpu, KVM_RUN, 0));
	ASSERT_EQ(KVM_EXIT_IO, run->exit_reason)
		TH_LOG("exit reason %u", run->exit_reason);
	EXPECT_EQ(KVM_EXIT_IO_OUT, run->io.direction);
	EXPECT_EQ(PORT, run->io.port);
	EXPECT_EQ(1, run->io.size);
	EXPECT_EQ(5, *((uint8_t *)run + run->io.data_offset));

	ASSERT_EQ(0, ioctl(self->vcpu, KVM_RUN, 0));
	ASSERT_EQ(KVM_EXIT_HLT, run->exit_reason)
		TH_LOG("exit reason %u", run->exit_reason);

	memcpy(&stored, self->mem + DATA_GPA, sizeof(stored));
	EXPECT_EQ(5, stored);
	ASSERT_EQ(0, ioctl(self->vcpu, KVM_GET_REGS, &regs));
	EXPECT_EQ(CODE_GPA + sizeof(guest_code), regs.rip);
}

TEST_HARNESS_MAIN
