// SPDX-License-Identifier: GPL-2.0
/*
 * KVMIG_ATTACH_VM: attaching a VM in each dirty-tracking mode, and one
 * test per way to get it wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmig.h"
#include "kselftest_harness.h"

#define RING_BYTES	65536

enum vm_kind { VM_PLAIN, VM_MANUAL, VM_RING };

/* Opens /dev/kvm and a /dev/kvmig session, or skips; 0 on success. */
static int open_both(struct __test_metadata *_metadata, int *kvm, int *dev)
{
	*kvm = *dev = -1;
	*kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return -1, "/dev/kvm not present");
	ASSERT_LE(0, *kvm) TH_LOG("/dev/kvm: %s", strerror(errno));
	*dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	if (*dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return -1, "/dev/kvmig not present: load kvmig.ko");
	ASSERT_LE(0, *dev) TH_LOG("/dev/kvmig: %s", strerror(errno));
	return 0;
}

static void close_both(int kvm, int dev)
{
	if (dev >= 0)
		close(dev);
	if (kvm >= 0)
		close(kvm);
}

FIXTURE(attach) {
	int kvm;	/* /dev/kvm */
	int dev;	/* /dev/kvmig session */
};

FIXTURE_SETUP(attach)
{
	open_both(_metadata, &self->kvm, &self->dev);
}

FIXTURE_TEARDOWN(attach)
{
	close_both(self->kvm, self->dev);
}

FIXTURE(mode) {
	int kvm;
	int dev;
};

FIXTURE_SETUP(mode)
{
	open_both(_metadata, &self->kvm, &self->dev);
}

FIXTURE_TEARDOWN(mode)
{
	close_both(self->kvm, self->dev);
}

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static int enable_cap(int vm, __u32 cap, __u64 arg0)
{
	struct kvm_enable_cap c = { .cap = cap, .args = { arg0 } };

	return xioctl(vm, KVM_ENABLE_CAP, &c);
}

/* A VM set up for one dirty-tracking mode, or -errno. */
static int create_vm(int kvm, enum vm_kind kind)
{
	int vm = ioctl(kvm, KVM_CREATE_VM, 0), ret = 0;

	if (vm < 0)
		return -errno;
	if (kind == VM_MANUAL)
		ret = enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
				 KVM_DIRTY_LOG_INITIALLY_SET);
	else if (kind == VM_RING)
		ret = enable_cap(vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
				 RING_BYTES);
	if (ret) {
		close(vm);
		return ret;
	}
	return vm;
}

static int attach(int dev, int vm_fd, __u32 role, __u32 *mode)
{
	struct kvmig_attach a = {
		.vm_fd = vm_fd,
		.role = role,
		.dirty_mode = *mode,
	};
	int ret = xioctl(dev, KVMIG_ATTACH_VM, &a);

	*mode = a.dirty_mode;
	return ret;
}

struct mode_case {
	enum vm_kind kind;
	__u32 role, mode;
	int ret;
	__u32 out;
};

FIXTURE_VARIANT(mode) {
	struct mode_case c;
};

#define MODE_VARIANT(name, k, r, m, e, o)				\
	FIXTURE_VARIANT_ADD(mode, name) {				\
		.c = { .kind = k, .role = r, .mode = m, .ret = e, .out = o } \
	}

MODE_VARIANT(ring_vm_auto, VM_RING, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_AUTO, 0, KVMIG_DIRTY_RING);
MODE_VARIANT(ring_vm_ring, VM_RING, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_RING, 0, KVMIG_DIRTY_RING);
MODE_VARIANT(ring_vm_bitmap, VM_RING, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_BITMAP, -EINVAL, 0);
MODE_VARIANT(manual_vm_auto, VM_MANUAL, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_AUTO, 0, KVMIG_DIRTY_BITMAP);
MODE_VARIANT(manual_vm_bitmap, VM_MANUAL, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_BITMAP, 0, KVMIG_DIRTY_BITMAP);
MODE_VARIANT(manual_vm_ring, VM_MANUAL, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_RING, -EINVAL, 0);
MODE_VARIANT(plain_vm_bitmap, VM_PLAIN, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_BITMAP, -EINVAL, 0);
MODE_VARIANT(plain_vm_auto, VM_PLAIN, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_AUTO, -EINVAL, 0);
MODE_VARIANT(plain_vm_dest, VM_PLAIN, KVMIG_ROLE_DEST, KVMIG_DIRTY_AUTO, 0, KVMIG_DIRTY_AUTO);

/* Every mode against every kind of VM, through one checker. */
TEST_F(mode, attach)
{
	const struct mode_case *c = &variant->c;
	__u32 mode = c->mode;
	int vm = create_vm(self->kvm, c->kind);

	ASSERT_LE(0, vm) TH_LOG("create_vm: %s", strerror(-vm));
	EXPECT_EQ(c->ret, attach(self->dev, vm, c->role, &mode));
	/* Out on success; untouched on failure. */
	EXPECT_EQ(c->ret ? c->mode : c->out, mode);
	close(vm);
}

TEST_F(attach, closed_and_bogus_fds)
{
	__u32 mode = KVMIG_DIRTY_AUTO;
	int vm = create_vm(self->kvm, VM_PLAIN);

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, close(vm));
	EXPECT_EQ(-EBADF, attach(self->dev, vm, KVMIG_ROLE_DEST, &mode));
	EXPECT_EQ(-EBADF, attach(self->dev, 99999, KVMIG_ROLE_DEST, &mode));
	EXPECT_EQ(-EBADF, attach(self->dev, -1, KVMIG_ROLE_DEST, &mode));
}

TEST_F(attach, non_kvm_fds)
{
	__u32 mode = KVMIG_DIRTY_AUTO;
	int null = open("/dev/null", O_RDWR), p[2];
	int vm = create_vm(self->kvm, VM_PLAIN), vcpu;

	ASSERT_LE(0, null);
	ASSERT_LE(0, vm);
	ASSERT_EQ(0, pipe(p));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ASSERT_LE(0, vcpu);

	EXPECT_EQ(-EINVAL, attach(self->dev, null, KVMIG_ROLE_DEST, &mode));
	EXPECT_EQ(-EINVAL, attach(self->dev, p[0], KVMIG_ROLE_DEST, &mode));
	/* /dev/kvm itself, a vCPU and kvmig's own fd are not VMs either. */
	EXPECT_EQ(-EINVAL, attach(self->dev, self->kvm, KVMIG_ROLE_DEST, &mode));
	EXPECT_EQ(-EINVAL, attach(self->dev, vcpu, KVMIG_ROLE_DEST, &mode));
	EXPECT_EQ(-EINVAL, attach(self->dev, self->dev, KVMIG_ROLE_DEST, &mode));

	/* Still IDLE after all that: a good attach goes through. */
	EXPECT_EQ(0, attach(self->dev, vm, KVMIG_ROLE_DEST, &mode));
	close(vcpu);
	close(vm);
	close(p[0]);
	close(p[1]);
	close(null);
}

TEST_F(attach, bad_fields)
{
	int vm = create_vm(self->kvm, VM_MANUAL);
	struct kvmig_attach a;
	unsigned int i;

	ASSERT_LE(0, vm);
	for (i = 0; i < 32; i++) {
		a = (struct kvmig_attach){ .vm_fd = vm,
			.role = KVMIG_ROLE_SOURCE, .flags = 1U << i };
		EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	}
	for (i = 0; i < 2; i++) {
		a = (struct kvmig_attach){ .vm_fd = vm,
			.role = KVMIG_ROLE_SOURCE };
		a.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	}
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE,
		.pad = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	/* Regions fields without KVMIG_ATTACH_REGIONS, and the reverse. */
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE,
		.nr_regions = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE,
		.regions_ptr = (uintptr_t)&a };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE,
		.flags = KVMIG_ATTACH_REGIONS, .nr_regions = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = 0 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = 3 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE,
		.dirty_mode = 3 };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_DEST,
		.dirty_mode = KVMIG_DIRTY_BITMAP };
	EXPECT_EQ(-EINVAL, xioctl(self->dev, KVMIG_ATTACH_VM, &a));

	EXPECT_EQ(-EFAULT, xioctl(self->dev, KVMIG_ATTACH_VM, NULL));
	EXPECT_EQ(-EFAULT, xioctl(self->dev, KVMIG_ATTACH_VM, (void *)1));

	/* None of it attached anything. */
	a = (struct kvmig_attach){ .vm_fd = vm, .role = KVMIG_ROLE_SOURCE };
	EXPECT_EQ(0, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	EXPECT_EQ(KVMIG_DIRTY_BITMAP, a.dirty_mode);
	close(vm);
}

TEST_F(attach, read_only_arg_attaches_nothing)
{
	int vm = create_vm(self->kvm, VM_MANUAL);
	struct kvmig_attach *ro, a = { .role = KVMIG_ROLE_SOURCE };

	ASSERT_LE(0, vm);
	a.vm_fd = vm;
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = a;
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, xioctl(self->dev, KVMIG_ATTACH_VM, ro));
	/* The failed call left the session IDLE. */
	EXPECT_EQ(0, xioctl(self->dev, KVMIG_ATTACH_VM, &a));
	munmap(ro, 4096);
	close(vm);
}

TEST_F(attach, double_attach)
{
	__u32 mode = KVMIG_DIRTY_AUTO;
	int vm = create_vm(self->kvm, VM_MANUAL);
	int vm2 = create_vm(self->kvm, VM_MANUAL);

	ASSERT_LE(0, vm);
	ASSERT_LE(0, vm2);
	ASSERT_EQ(0, attach(self->dev, vm, KVMIG_ROLE_SOURCE, &mode));
	mode = KVMIG_DIRTY_AUTO;
	EXPECT_EQ(-EBUSY, attach(self->dev, vm, KVMIG_ROLE_SOURCE, &mode));
	mode = KVMIG_DIRTY_AUTO;
	EXPECT_EQ(-EBUSY, attach(self->dev, vm2, KVMIG_ROLE_DEST, &mode));
	close(vm2);
	close(vm);
}

TEST_F(attach, vm_fd_closed_while_attached)
{
	__u32 mode = KVMIG_DIRTY_AUTO;
	int vm = create_vm(self->kvm, VM_RING);

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, attach(self->dev, vm, KVMIG_ROLE_SOURCE, &mode));
	/* The session holds its own reference: the VM lives on. */
	ASSERT_EQ(0, close(vm));
	EXPECT_EQ(0, close(self->dev));
	self->dev = -1;
}

/*
 * Holding the VM's file is what grants it, as with KVM's own ioctls: a
 * process that got it (here by fork, another mm) may attach it (the old
 * module refused with -EPERM). Starting dirty tracking still needs the
 * VM's own process: KVM's dirty-log calls work only there.
 */
TEST_F(attach, vm_of_another_process)
{
	int vm = create_vm(self->kvm, VM_MANUAL), status;
	pid_t pid;

	ASSERT_LE(0, vm);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmig_dirty_start ds = {};
		__u32 mode = KVMIG_DIRTY_AUTO;
		int dev = open("/dev/kvmig", O_RDWR);

		if (attach(dev, vm, KVMIG_ROLE_SOURCE, &mode))
			_exit(1);
		if (mode != KVMIG_DIRTY_BITMAP)
			_exit(2);
		_exit(xioctl(dev, KVMIG_DIRTY_START, &ds) == -EPERM ? 0 : 3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* 1: attach refused, 3: tracking started from another mm. */
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	close(vm);
}

/*
 * One VM, one session: two sessions on one VM would both harvest it and
 * each lose the pages the other took. A second attach fails with -EBUSY
 * in either role, and succeeds once the first session is closed.
 */
TEST_F(attach, one_session_per_vm)
{
	static const __u32 roles[2][2] = {
		{ KVMIG_ROLE_SOURCE, KVMIG_ROLE_DEST },
		{ KVMIG_ROLE_DEST, KVMIG_ROLE_SOURCE },
	};
	unsigned int i, j;
	__u32 mode;

	for (i = 0; i < 2; i++) {
		int vm = create_vm(self->kvm, VM_MANUAL);
		int first = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
		int second = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, vm);
		ASSERT_LE(0, first);
		ASSERT_LE(0, second);
		mode = KVMIG_DIRTY_AUTO;
		ASSERT_EQ(0, attach(first, vm, roles[i][0], &mode));
		for (j = 0; j < 2; j++) {
			mode = KVMIG_DIRTY_AUTO;
			EXPECT_EQ(-EBUSY, attach(second, vm, roles[i][j],
						 &mode))
				TH_LOG("first %u, second %u", roles[i][0],
				       roles[i][j]);
		}
		/* The refused session is still IDLE: it can have the VM now. */
		ASSERT_EQ(0, close(first));
		mode = KVMIG_DIRTY_AUTO;
		EXPECT_EQ(0, attach(second, vm, roles[i][1], &mode));
		close(second);
		close(vm);
	}
}

TEST_F(attach, vmm_exits_while_attached)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		/* A VMM that attaches and dies without closing anything. */
		__u32 mode = KVMIG_DIRTY_AUTO;
		int kvm = open("/dev/kvm", O_RDWR);
		int vm = create_vm(kvm, VM_RING);
		int dev = open("/dev/kvmig", O_RDWR);

		if (vm < 0 || dev < 0 ||
		    attach(dev, vm, KVMIG_ROLE_SOURCE, &mode) ||
		    mode != KVMIG_DIRTY_RING)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_HARNESS_MAIN
