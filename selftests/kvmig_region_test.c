// SPDX-License-Identifier: GPL-2.0
/*
 * Region sessions (KVMIG_ATTACH_REGIONS), as QEMU uses kvmig: the VMM names
 * the memory that holds guest RAM, and kvmig migrates it whatever memslots
 * map it. The destination's memslots differ from the source's; the source
 * has an SMRAM-style alias in address space 1; memslots are added, deleted
 * and re-created in mid pre-copy; the VMM reports its own writes by region.
 * Afterwards every region must be identical on both ends. And the refusals:
 * bad regions, regions nothing maps, regions named by another process,
 * ring mode, a memslot that stops logging, and a destination that does not
 * speak regions.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"
#include "kselftest_harness.h"
#include "mig_lib.h"

#define SLOT_SIZE	(2UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / 4096)
#define ALIAS_GPA	0x70000000ULL	/* where the source aliases data slot 1 */
#define ALIAS_SLOT	7
#define SMRAM_SLOT	((1U << 16) | 5)	/* address space 1 */
#define REGION_CTRL	1
#define REGION_DATA	10	/* + data slot index */

static int set_slot(int vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		    uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

/* The VMM's RAM regions: the control area and every data slot. */
static unsigned int vmm_regions(struct vmm *v, struct kvmig_region *r)
{
	unsigned int i;

	r[0] = (struct kvmig_region){ .userspace_addr = (uintptr_t)v->ctrl,
				      .size = VMM_CTRL_SIZE,
				      .id = REGION_CTRL };
	for (i = 0; i < v->cfg.nr_slots; i++)
		r[i + 1] = (struct kvmig_region){
			.userspace_addr = (uintptr_t)v->slots[i].hva,
			.size = v->slots[i].size, .id = REGION_DATA + i };
	return v->cfg.nr_slots + 1;
}

static int attach(int dev, int vm, uint32_t role, uint32_t mode,
		  struct kvmig_region *r, unsigned int nr)
{
	struct kvmig_attach a = {
		.vm_fd = vm, .role = role, .dirty_mode = mode,
		.flags = nr ? KVMIG_ATTACH_REGIONS : 0, .nr_regions = nr,
		.regions_ptr = (uintptr_t)r,
	};

	return ioctl(dev, KVMIG_ATTACH_VM, &a) ? -errno : 0;
}

static int open_dev(void)
{
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	return dev < 0 ? -errno : dev;
}

static int setup(int dev, int sock, uint64_t downtime_ns)
{
	struct kvmig_xfer_setup st = { .sock_fd = sock, .io_timeout_ms = 5000,
				       .max_rounds = 1000,
				       .downtime_ns = downtime_ns };

	return ioctl(dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

static void fill(struct vmm *v, uint64_t gpa, uint32_t count, uint32_t value)
{
	uint32_t *m = vmm_mbox(v, 0);

	m[0] = gpa;
	m[1] = count;
	m[2] = 4096;
	m[3] = value;
}

/* The VMM wrote the mailbox: it says so, by region and offset. */
static int mark_ctrl(int dev, uint64_t off, uint32_t pages)
{
	struct kvmig_dirty_run run = { .gfn = off, .npages = pages,
				       .slot = REGION_CTRL };
	struct kvmig_dirty_mark m = { .nr_runs = 1,
				      .runs_ptr = (uintptr_t)&run };

	return ioctl(dev, KVMIG_DIRTY_MARK, &m) ? -errno : 0;
}

struct dest {
	struct vmm vmm;
	int dev, sock, setup_ret, recv_ret;
	char state[4096];
	struct kvmig_recv r;
	pthread_t thread;
};

static void *dest_thread(void *arg)
{
	struct dest *d = arg;

	d->setup_ret = setup(d->dev, d->sock, 0);
	d->recv_ret = d->setup_ret;
	if (d->setup_ret)
		return NULL;
	d->r = (struct kvmig_recv){ .state_ptr = (uintptr_t)d->state,
				    .state_cap = sizeof(d->state) };
	d->recv_ret = xfer_call(d->dev, KVMIG_XFER_RECV, &d->r, NULL);
	return NULL;
}

FIXTURE(region) {
	struct vmm src;
	struct dest dst;
	int dev, sock;
	bool started;
	bool smram;	/* the source has an address-space-1 alias */
};

FIXTURE_SETUP(region)
{
	struct vmm_config cfg = { .dirty = VMM_DIRTY_BITMAP, .nr_vcpus = 1,
				  .nr_slots = 2, .slot_size = SLOT_SIZE,
				  .initially_set = true };
	struct kvmig_region r[VMM_MAX_SLOTS + 1];
	struct vmm_slot *s1;
	int ret;

	self->dev = self->sock = self->dst.dev = self->dst.sock = -1;
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	self->dev = open_dev();
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev);

	/* SMRAM-style: the first MiB of data slot 0 again, in address
	 * space 1 (KVM has it when built with SMM support).
	 */
	self->smram = ioctl(self->src.kvm, KVM_CHECK_EXTENSION,
			    KVM_CAP_MULTI_ADDRESS_SPACE) > 1;
	if (self->smram) {
		ASSERT_EQ(0, set_slot(self->src.vm, SMRAM_SLOT,
				      KVM_MEM_LOG_DIRTY_PAGES, 0xa0000, 1 << 20,
				      self->src.slots[0].hva));
	} else {
		TH_LOG("no address space 1: SMRAM alias left out");
	}

	/* The destination: same memory, other memslots. Data slot 1 is
	 * mapped as two halves at another address.
	 */
	ASSERT_EQ(0, vmm_create(&self->dst.vmm, &cfg));
	s1 = &self->dst.vmm.slots[1];
	ASSERT_EQ(0, set_slot(self->dst.vmm.vm, s1->id, 0, s1->gpa, 0, NULL));
	ASSERT_EQ(0, set_slot(self->dst.vmm.vm, 20, 0, 0x80000000ULL,
			      SLOT_SIZE / 2, s1->hva));
	ASSERT_EQ(0, set_slot(self->dst.vmm.vm, 21, 0,
			      0x80000000ULL + SLOT_SIZE / 2, SLOT_SIZE / 2,
			      s1->hva + SLOT_SIZE / 2));
	self->dst.dev = open_dev();
	ASSERT_LE(0, self->dst.dev);
	ASSERT_EQ(0, attach(self->dst.dev, self->dst.vmm.vm, KVMIG_ROLE_DEST,
			    KVMIG_DIRTY_AUTO, r, vmm_regions(&self->dst.vmm, r)));
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst.sock));

	fill(&self->src, self->src.slots[0].gpa, SLOT_PAGES / 2, 0x1111);
	ASSERT_EQ(0, vmm_run(&self->src));
}

FIXTURE_TEARDOWN(region)
{
	if (self->started) {
		ioctl(self->dst.dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst.thread, NULL);
	}
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	if (self->dst.dev >= 0)
		close(self->dst.dev);
	if (self->dst.sock >= 0)
		close(self->dst.sock);
	vmm_destroy(&self->dst.vmm);
	vmm_destroy(&self->src);
}

/*
 * With a budget of 1 ns, a round sends whatever is pending: rounds until
 * one finds nothing. Return: pages sent, or -errno.
 */
static long drain(int dev)
{
	struct kvmig_round r;
	long sent = 0;
	int i, ret;

	for (i = 0; i < 100; i++) {
		memset(&r, 0, sizeof(r));
		ret = xfer_call(dev, KVMIG_XFER_ROUND, &r, NULL);
		if (ret)
			return ret;
		if (r.status == KVMIG_ROUND_CONVERGED)
			return sent;
		sent += r.pages_sent;
	}
	return -ETIME;
}

static int start_source(FIXTURE_DATA(region) *self, uint64_t downtime_ns)
{
	struct kvmig_region r[VMM_MAX_SLOTS + 1];
	struct kvmig_dirty_start ds = {};
	int ret;

	ret = attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
		     KVMIG_DIRTY_BITMAP, r, vmm_regions(&self->src, r));
	if (ret)
		return ret;
	if (ioctl(self->dev, KVMIG_DIRTY_START, &ds))
		return -errno;
	if (ds.nr_slots != self->src.cfg.nr_slots + 1)
		return -EPROTO;
	if (pthread_create(&self->dst.thread, NULL, dest_thread, &self->dst))
		return -EAGAIN;
	self->started = true;
	return setup(self->dev, self->sock, downtime_ns);
}

static void expect_same_regions(struct __test_metadata *_metadata,
				struct vmm *a, struct vmm *b)
{
	unsigned int i;

	EXPECT_EQ(0, memcmp(a->ctrl, b->ctrl, VMM_CTRL_SIZE));
	for (i = 0; i < a->cfg.nr_slots; i++)
		EXPECT_EQ(0, memcmp(a->slots[i].hva, b->slots[i].hva,
				    a->slots[i].size))
			TH_LOG("region %u differs", REGION_DATA + i);
}

/*
 * Pre-copy while the guest writes through memslots of both address spaces
 * and the source's memslots change under the session: a memslot added
 * (and written through), deleted after a harvest, and data slot 0 deleted
 * and created again. Then the switchover; every region must match.
 */
TEST_F_TIMEOUT(region, follows_memslots_to_other_layout, 300)
{
	struct vmm_slot *s0 = &self->src.slots[0], *s1 = &self->src.slots[1];
	struct kvmig_harvest h = {};
	struct kvmig_final f = {};
	struct kvmig_stats st = {};
	struct kvmig_round r;

	ASSERT_EQ(0, start_source(self, 1));
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(0, xfer_call(self->dev, KVMIG_XFER_ROUND, &r, NULL));
	EXPECT_EQ(0, r.round);

	/* QEMU's setup: every logging memslot starts with all bits set, the
	 * address-space-1 one included; round 0's harvest took them all and
	 * cleared them in both address spaces: nothing is left.
	 */
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_LE(2 * SLOT_PAGES + (self->smram ? 256 : 0),
		  st.pages_harvested);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(0, h.found);
	EXPECT_EQ(0, drain(self->dev));

	/* Through a memslot that did not exist when tracking started (all
	 * set when created: its 512 pages go again).
	 */
	ASSERT_EQ(0, set_slot(self->src.vm, ALIAS_SLOT, KVM_MEM_LOG_DIRTY_PAGES,
			      ALIAS_GPA, SLOT_SIZE, s1->hva));
	fill(&self->src, ALIAS_GPA + 5 * 4096, 40, 0x2222);
	ASSERT_EQ(0, vmm_run(&self->src));
	ASSERT_EQ(0, mark_ctrl(self->dev, VMM_MBOX_GPA / 4096, 1));
	EXPECT_EQ(SLOT_PAGES + 1, drain(self->dev));

	/* Written through it again, harvested, then deleted. */
	fill(&self->src, ALIAS_GPA + 100 * 4096, 10, 0x3333);
	ASSERT_EQ(0, vmm_run(&self->src));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(10, h.found);
	ASSERT_EQ(0, set_slot(self->src.vm, ALIAS_SLOT, 0, ALIAS_GPA, 0, NULL));
	ASSERT_EQ(0, mark_ctrl(self->dev, VMM_MBOX_GPA / 4096, 1));
	EXPECT_EQ(11, drain(self->dev));

	/* Data slot 0 deleted and created again, as QEMU does on a
	 * topology change (all set again), then written through.
	 */
	ASSERT_EQ(0, set_slot(self->src.vm, s0->id, 0, s0->gpa, 0, NULL));
	ASSERT_EQ(0, set_slot(self->src.vm, s0->id, KVM_MEM_LOG_DIRTY_PAGES,
			      s0->gpa, s0->size, s0->hva));
	fill(&self->src, s0->gpa + 300 * 4096, 20, 0x4444);
	ASSERT_EQ(0, vmm_run(&self->src));
	ASSERT_EQ(0, mark_ctrl(self->dev, VMM_MBOX_GPA / 4096, 1));
	EXPECT_EQ(SLOT_PAGES + 1, drain(self->dev));

	/* The VMM writes data memory itself: only its report sends it. */
	memset(s1->hva + 7 * 4096, 0x5a, 4096);
	{
		struct kvmig_dirty_run run = { .gfn = 7, .npages = 1,
					       .slot = REGION_DATA + 1 };
		struct kvmig_dirty_mark m = { .nr_runs = 1,
					      .runs_ptr = (uintptr_t)&run };

		ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
		/* Outside the region: refused, nothing marked. */
		run.gfn = SLOT_PAGES;
		EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(1, drain(self->dev));

	/* The guest writes once more; the final pass takes it. */
	fill(&self->src, s0->gpa + 400 * 4096, 3, 0x5555);
	ASSERT_EQ(0, vmm_run(&self->src));
	ASSERT_EQ(0, mark_ctrl(self->dev, VMM_MBOX_GPA / 4096, 1));
	ASSERT_EQ(0, xfer_call(self->dev, KVMIG_XFER_FINAL, &f, NULL));
	pthread_join(self->dst.thread, NULL);
	self->started = false;
	ASSERT_EQ(0, self->dst.recv_ret);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	TH_LOG("%llu pages sent in %llu rounds, %llu zero, %llu harvested",
	       (unsigned long long)st.pages_sent,
	       (unsigned long long)st.xfer_round,
	       (unsigned long long)st.zero_pages,
	       (unsigned long long)st.pages_harvested);
	expect_same_regions(_metadata, &self->src, &self->dst.vmm);
}

/* A writable memslot that maps region memory stops logging: the guest's
 * writes through it would be lost, so the session fails; the source VM
 * is intact and runs on.
 */
TEST_F_TIMEOUT(region, unlogged_memslot_fails, 300)
{
	struct vmm_slot *s0 = &self->src.slots[0];
	struct kvmig_round r = {};
	struct kvmig_stats st = {};
	uint32_t v;

	ASSERT_EQ(0, start_source(self, 0));
	ASSERT_EQ(0, xfer_call(self->dev, KVMIG_XFER_ROUND, &r, NULL));
	ASSERT_EQ(0, set_slot(self->src.vm, s0->id, 0, s0->gpa, s0->size,
			      s0->hva));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(-ESTALE, xfer_call(self->dev, KVMIG_XFER_ROUND, &r, NULL));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_EQ(KVMIG_FAIL_MEMSLOTS, st.fail_reason);
	fill(&self->src, s0->gpa + 9 * 4096, 1, 0xabcd);
	ASSERT_EQ(0, vmm_run(&self->src));
	memcpy(&v, s0->hva + 9 * 4096, 4);
	EXPECT_EQ(0xabcd, v);
}

/* Both ends refuse the handshake: the layouts differ. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(region) *self)
{
	struct kvmig_stats st = {};

	ASSERT_EQ(0, pthread_create(&self->dst.thread, NULL, dest_thread,
				    &self->dst));
	self->started = true;
	EXPECT_EQ(-EPROTO, setup(self->dev, self->sock, 0));
	pthread_join(self->dst.thread, NULL);
	self->started = false;
	EXPECT_EQ(-EPROTO, self->dst.setup_ret);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(KVMIG_FAIL_LAYOUT, st.fail_reason);
}

/* The destination has regions of another size: refused at handshake. */
TEST_F_TIMEOUT(region, other_sizes_refused, 300)
{
	struct kvmig_region r[VMM_MAX_SLOTS + 1];
	struct kvmig_dirty_start ds = {};
	unsigned int n;

	n = vmm_regions(&self->src, r);
	r[2].size -= 4096;
	ASSERT_EQ(0, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
			    KVMIG_DIRTY_BITMAP, r, n));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
	expect_refused(_metadata, self);
}

/* A memslot session meets a region destination: refused. */
TEST_F_TIMEOUT(region, memslot_source_refused, 300)
{
	struct kvmig_dirty_start ds = {};

	ASSERT_EQ(0, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
			    KVMIG_DIRTY_BITMAP, NULL, 0));
	/* Without regions, the address-space-1 memslot is refused. */
	if (self->smram) {
		EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
		EXPECT_EQ(EOPNOTSUPP, errno);
		ASSERT_EQ(0, set_slot(self->src.vm, SMRAM_SLOT, 0, 0xa0000, 0,
				      NULL));
	}
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
	expect_refused(_metadata, self);
}

/* Refusals at ATTACH and DIRTY_START; none leaves the session attached. */
TEST_F(region, bad_regions)
{
	struct kvmig_region r[VMM_MAX_SLOTS + 2], good[VMM_MAX_SLOTS + 1];
	struct kvmig_dirty_start ds = {};
	unsigned int n = vmm_regions(&self->src, good);
	void *unmapped;

	memcpy(r, good, sizeof(good));
	/* Two regions over the same memory. */
	r[1].userspace_addr += 4096;
	r[2] = r[1];
	r[2].id = 99;
	EXPECT_EQ(-EINVAL, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
				  KVMIG_DIRTY_BITMAP, r, n));
	memcpy(r, good, sizeof(good));
	r[1].id = r[0].id;
	EXPECT_EQ(-EINVAL, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
				  KVMIG_DIRTY_BITMAP, r, n));
	memcpy(r, good, sizeof(good));
	r[0].size = 100;
	EXPECT_EQ(-EINVAL, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
				  KVMIG_DIRTY_BITMAP, r, n));
	memcpy(r, good, sizeof(good));
	r[0].flags = 1;
	EXPECT_EQ(-EINVAL, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
				  KVMIG_DIRTY_BITMAP, r, n));
	EXPECT_EQ(-EFAULT, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
				  KVMIG_DIRTY_BITMAP, (void *)8, n));

	/* A region that no memslot maps is not guest memory. */
	unmapped = aligned_alloc(4096, 4 * 4096);
	ASSERT_NE(NULL, unmapped);
	memcpy(r, good, sizeof(good));
	r[n] = (struct kvmig_region){ .userspace_addr = (uintptr_t)unmapped,
				      .size = 4 * 4096, .id = 77 };
	ASSERT_EQ(0, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
			    KVMIG_DIRTY_BITMAP, r, n + 1));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
	EXPECT_EQ(EINVAL, errno);
	free(unmapped);
}

/*
 * Regions are addresses in the VMM's own mapping: only the VM's process may
 * name them. A process that holds the session and the VM's file through
 * fork (another mm) gets -EPERM at attach, and leaves the session idle for
 * the VMM.
 */
TEST_F(region, regions_of_another_process)
{
	struct kvmig_region r[VMM_MAX_SLOTS + 1];
	unsigned int n = vmm_regions(&self->src, r);
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
			     KVMIG_DIRTY_BITMAP, r, n) == -EPERM ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	EXPECT_EQ(0, attach(self->dev, self->src.vm, KVMIG_ROLE_SOURCE,
			    KVMIG_DIRTY_BITMAP, r, n));
}

/* Regions need the bitmap tracker: a VM with dirty rings is refused. */
TEST(ring_mode_refused)
{
	struct vmm_config cfg = { .dirty = VMM_DIRTY_RING, .nr_vcpus = 1,
				  .nr_slots = 1, .slot_size = SLOT_SIZE };
	struct kvmig_region r[2];
	struct vmm v;
	int dev, ret;

	ret = vmm_create(&v, &cfg);
	if (ret && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "no VM with dirty rings here (%d)", ret);
	ASSERT_EQ(0, ret);
	dev = open_dev();
	ASSERT_LE(0, dev);
	EXPECT_EQ(-EOPNOTSUPP, attach(dev, v.vm, KVMIG_ROLE_SOURCE,
				      KVMIG_DIRTY_AUTO, r, vmm_regions(&v, r)));
	EXPECT_EQ(-EOPNOTSUPP, attach(dev, v.vm, KVMIG_ROLE_SOURCE,
				      KVMIG_DIRTY_RING, r, vmm_regions(&v, r)));
	/* Still IDLE: attaching without regions works. */
	EXPECT_EQ(0, attach(dev, v.vm, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_RING,
			    NULL, 0));
	close(dev);
	vmm_destroy(&v);
}

TEST_HARNESS_MAIN
