// SPDX-License-Identifier: GPL-2.0
/*
 * In-kernel dirty harvesting: the set kvmig harvests equals exactly the set
 * of pages the guest wrote, round after round, with both trackers, several
 * vCPUs and several memslots; and every way to misuse the dirty-tracking
 * calls gets its error without losing a page.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"
#include "kselftest_harness.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/*
 * The guest. %esi = its mailbox: { u32 nr; u32 seq; struct guest_op[nr] }.
 * For each op it stores op.value at op.count addresses, op.gpa, op.gpa +
 * op.stride, ..., then tells the VMM with an OUT, and starts over when run
 * again. It only reads the mailbox and its code, so it dirties exactly the
 * pages the ops name.
 */
struct guest_op {
	uint32_t gpa, count, stride, value;
};

struct mbox {
	uint32_t nr, seq;
	struct guest_op ops[];
};

#define MAX_OPS	((VMM_MBOX_SIZE - sizeof(struct mbox)) / sizeof(struct guest_op))

asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_writer, guest_writer_end\n"
    ".code32\n"
    "guest_writer:\n"
    "1:	movl (%esi), %ecx\n"		/* ops */
    "	leal 8(%esi), %edi\n"
    "2:	testl %ecx, %ecx\n"
    "	jz 5f\n"
    "	movl (%edi), %eax\n"		/* gpa */
    "	movl 4(%edi), %ebx\n"		/* count */
    "	movl 12(%edi), %edx\n"		/* value */
    "3:	testl %ebx, %ebx\n"
    "	jz 4f\n"
    "	movl %edx, (%eax)\n"
    "	addl 8(%edi), %eax\n"		/* stride */
    "	decl %ebx\n"
    "	jmp 3b\n"
    "4:	addl $16, %edi\n"
    "	decl %ecx\n"
    "	jmp 2b\n"
    "5:	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_writer_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_writer[], guest_writer_end[];

#define SLOT_SIZE	(4UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / 4096)

/* The pages the guest was told to write, per data slot. */
struct expect {
	uint8_t page[VMM_MAX_SLOTS][SLOT_PAGES];
	unsigned long count;
};

static void expect_add(struct vmm *vmm, struct expect *e, uint32_t gpa)
{
	struct vmm_slot *s = vmm_slot_of(vmm, gpa);
	unsigned int i = s - vmm->slots;
	uint64_t pg = (gpa - s->gpa) / 4096;

	if (!e->page[i][pg]++)
		e->count++;
}

/* Tell vCPU @v to write @count pages from @gpa on, @stride apart. */
static void op_add(struct vmm *vmm, struct expect *e, unsigned int v,
		   uint32_t gpa, uint32_t count, uint32_t stride,
		   uint32_t value)
{
	struct mbox *m = vmm_mbox(vmm, v);
	uint32_t i;

	if (m->nr >= MAX_OPS)
		abort();
	m->ops[m->nr++] = (struct guest_op){ gpa, count, stride, value };
	for (i = 0; i < count; i++)
		expect_add(vmm, e, gpa + i * stride);
}

static void ops_clear(struct vmm *vmm)
{
	unsigned int v;

	for (v = 0; v < vmm->cfg.nr_vcpus; v++)
		((struct mbox *)vmm_mbox(vmm, v))->nr = 0;
}

static int open_session(struct __test_metadata *_metadata)
{
	int fd = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return -1, "/dev/kvmig not present: load kvmig.ko");
	ASSERT_LE(0, fd) TH_LOG("/dev/kvmig: %s", strerror(errno));
	return fd;
}

/* Drain the pending set into @got; return the pages read or -errno. */
static long drain(int dev, struct expect *got, struct vmm *vmm)
{
	static struct kvmig_dirty_run runs[512];
	struct kvmig_dirty_read r;
	long pages = 0;
	uint32_t i, j;

	do {
		memset(&r, 0, sizeof(r));
		r.nr_runs = 512;
		r.runs_ptr = (uintptr_t)runs;
		if (ioctl(dev, KVMIG_DIRTY_READ, &r))
			return -errno;
		for (i = 0; i < r.nr_runs; i++) {
			for (j = 0; j < runs[i].npages; j++) {
				uint64_t gpa = (runs[i].gfn + j) * 4096;
				struct vmm_slot *s = vmm_slot_of(vmm, gpa);

				if (!s || s->id != runs[i].slot)
					return -EUCLEAN;
				expect_add(vmm, got, gpa);
			}
			pages += runs[i].npages;
		}
	} while (r.pending);
	return pages;
}

/* Compare, and log the first differences. */
static unsigned long diff(struct __test_metadata *_metadata, struct vmm *vmm,
			  struct expect *want, struct expect *got)
{
	unsigned long n = 0, i, p;

	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		for (p = 0; p < SLOT_PAGES; p++) {
			if (!want->page[i][p] == !got->page[i][p])
				continue;
			if (n++ < 8)
				TH_LOG("slot %u page %lu: %s", vmm->slots[i].id,
				       p, want->page[i][p] ?
				       "written, not harvested" :
				       "harvested, not written");
		}
	}
	return n;
}

static int harvest(int dev, struct kvmig_harvest *h)
{
	memset(h, 0, sizeof(*h));
	return ioctl(dev, KVMIG_DIRTY_HARVEST, h) ? -errno : 0;
}

static int ring_full_harvest(struct vmm *vmm, void *arg)
{
	struct kvmig_harvest h;

	return harvest(*(int *)arg, &h);
}

static int get_stats(int dev, struct kvmig_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(dev, KVMIG_GET_STATS, st) ? -errno : 0;
}

FIXTURE(dirty) {
	struct vmm vmm;
	int dev;
	struct expect *want, *got;
	struct kvmig_dirty_start start;
};

FIXTURE_VARIANT(dirty) {
	enum vmm_dirty mode;
	unsigned int vcpus;
	unsigned int slots;
	uint32_t ring_bytes;
	bool parallel;		/* ring-full harvests not serialised */
};

FIXTURE_VARIANT_ADD(dirty, ring_1vcpu_1slot) {
	.mode = VMM_DIRTY_RING, .vcpus = 1, .slots = 1,
};

FIXTURE_VARIANT_ADD(dirty, ring_3vcpus_3slots) {
	.mode = VMM_DIRTY_RING, .vcpus = 3, .slots = 3,
};

/* 256 entries: rounds overflow the soft limit, the VMM asks kvmig. */
FIXTURE_VARIANT_ADD(dirty, ring_small_2vcpus_2slots) {
	.mode = VMM_DIRTY_RING, .vcpus = 2, .slots = 2, .ring_bytes = 4096,
};

/*
 * The same, with the vCPU threads' harvests not serialised by the VMM:
 * kvmig's own tracker lock must keep concurrent harvests from losing or
 * inventing pages.
 */
FIXTURE_VARIANT_ADD(dirty, ring_small_3vcpus_parallel) {
	.mode = VMM_DIRTY_RING, .vcpus = 3, .slots = 3, .ring_bytes = 4096,
	.parallel = true,
};

FIXTURE_VARIANT_ADD(dirty, bitmap_1vcpu_1slot) {
	.mode = VMM_DIRTY_BITMAP, .vcpus = 1, .slots = 1,
};

FIXTURE_VARIANT_ADD(dirty, bitmap_3vcpus_3slots) {
	.mode = VMM_DIRTY_BITMAP, .vcpus = 3, .slots = 3,
};

/* A VM of the given shape with the writer guest, attached and tracking. */
static void setup_tracking(struct __test_metadata *_metadata,
			   struct vmm *vmm, int *dev,
			   struct kvmig_dirty_start *start,
			   const struct vmm_config *cfg)
{
	struct kvmig_attach a = {
		.role = KVMIG_ROLE_SOURCE,
		.dirty_mode = cfg->dirty == VMM_DIRTY_RING ?
			      KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP,
	};
	int ret;

	*dev = -1;
	ret = vmm_create(vmm, cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(vmm, guest_writer,
			      guest_writer_end - guest_writer));
	*dev = open_session(_metadata);
	if (*dev < 0)
		return;
	a.vm_fd = vmm->vm;
	ASSERT_EQ(0, ioctl(*dev, KVMIG_ATTACH_VM, &a))
		TH_LOG("attach: %s", strerror(errno));
	memset(start, 0, sizeof(*start));
	ASSERT_EQ(0, ioctl(*dev, KVMIG_DIRTY_START, start))
		TH_LOG("start: %s", strerror(errno));
	vmm->ring_full = ring_full_harvest;
	vmm->ring_full_arg = dev;
}

FIXTURE_SETUP(dirty)
{
	struct vmm_config cfg = {
		.dirty = variant->mode,
		.nr_vcpus = variant->vcpus,
		.nr_slots = variant->slots,
		.slot_size = SLOT_SIZE,
		.ring_bytes = variant->ring_bytes,
	};

	self->dev = -1;
	self->want = calloc(1, sizeof(*self->want));
	self->got = calloc(1, sizeof(*self->got));
	ASSERT_TRUE(self->want && self->got);
	setup_tracking(_metadata, &self->vmm, &self->dev, &self->start, &cfg);
	self->vmm.ring_full_parallel = variant->parallel;
}

FIXTURE_TEARDOWN(dirty)
{
	if (self->dev >= 0)
		close(self->dev);
	vmm_destroy(&self->vmm);
	free(self->want);
	free(self->got);
}

TEST_F_TIMEOUT(dirty, start_reports_layout, 300)
{
	struct kvmig_stats st;

	/* The control slot (read-only) is recorded too. */
	EXPECT_EQ(variant->slots + 1, self->start.nr_slots);
	EXPECT_EQ(variant->slots * SLOT_PAGES + VMM_CTRL_SIZE / 4096,
		  self->start.guest_pages);
	if (variant->mode == VMM_DIRTY_BITMAP) {
		EXPECT_NE(0, self->start.scratch_addr);
		EXPECT_LT(0, self->start.scratch_len);
	} else {
		EXPECT_EQ(0, self->start.scratch_addr);
	}
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_TRACKING, st.state);
	EXPECT_EQ(KVMIG_ROLE_SOURCE, st.role);
	EXPECT_EQ(self->start.nr_slots, st.nr_slots);
	EXPECT_EQ(self->start.guest_pages, st.guest_pages);
	EXPECT_EQ(0, st.rounds);
}

/*
 * Several rounds of random pages in every slot from every vCPU, with a
 * run across a 64-page boundary, pages written twice and by two vCPUs,
 * and a round that writes nothing.
 */
TEST_F_TIMEOUT(dirty, harvested_equals_written, 600)
{
	struct vmm *vmm = &self->vmm;
	unsigned int round, v, k, seed = 20261122 + variant->vcpus;
	struct kvmig_harvest h;
	struct kvmig_stats st;
	unsigned long total = 0;
	uint64_t before;

	srandom(seed);
	TH_LOG("seed %u", seed);
	for (round = 0; round < 5; round++) {
		memset(self->want, 0, sizeof(*self->want));
		memset(self->got, 0, sizeof(*self->got));
		ops_clear(vmm);
		for (v = 0; v < vmm->cfg.nr_vcpus && round != 2; v++) {
			for (k = 0; k < 40; k++) {
				struct vmm_slot *s =
					&vmm->slots[random() % vmm->cfg.nr_slots];
				uint32_t pg = random() % SLOT_PAGES;

				op_add(vmm, self->want, v, s->gpa + pg * 4096 +
				       (random() % 1024) * 4, 1, 0, round);
			}
			/* The same page twice, and one page by all vCPUs. */
			op_add(vmm, self->want, v, vmm->slots[0].gpa + 4096 * 7,
			       2, 0, v);
			/* A run across a word of the bitmap. */
			op_add(vmm, self->want, v, vmm->slots[0].gpa +
			       4096 * (100 + 200 * v + round), 70, 4096, v);
			/* Past the soft limit of a small ring. */
			if (variant->ring_bytes)
				op_add(vmm, self->want, v,
				       vmm->slots[v % vmm->cfg.nr_slots].gpa +
				       4096 * 600, 250, 4096, v);
		}
		ASSERT_EQ(0, get_stats(self->dev, &st));
		before = st.pages_harvested;
		ASSERT_EQ(0, vmm_run(vmm));
		ASSERT_EQ(0, harvest(self->dev, &h));
		EXPECT_EQ(self->want->count, h.pending);
		/* Ring-full exits harvested part of the round already. */
		ASSERT_EQ(0, get_stats(self->dev, &st));
		EXPECT_LE(self->want->count, st.pages_harvested - before);
		if (!variant->ring_bytes)
			EXPECT_LE(self->want->count, h.found);
		ASSERT_EQ((long)self->want->count, drain(self->dev, self->got,
							  vmm));
		EXPECT_EQ(0, diff(_metadata, vmm, self->want, self->got))
			TH_LOG("round %u", round);
		total += self->want->count;
	}
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(0, st.pages_pending);
	EXPECT_EQ(total, st.pages_read);
	EXPECT_LE(5, st.rounds);
	EXPECT_LE(total, st.pages_harvested);
	if (variant->ring_bytes)
		EXPECT_LT(0, vmm->ring_full_exits);
	TH_LOG("%lu pages over 5 rounds, %lu ring-full exits", total,
	       vmm->ring_full_exits);
}

/* Pages harvested but not read yet stay pending across harvests. */
TEST_F_TIMEOUT(dirty, pending_accumulates, 300)
{
	struct vmm *vmm = &self->vmm;
	struct kvmig_harvest h;

	op_add(vmm, self->want, 0, vmm->slots[0].gpa, 10, 4096, 1);
	ASSERT_EQ(0, vmm_run(vmm));
	ASSERT_EQ(0, harvest(self->dev, &h));
	EXPECT_EQ(10, h.pending);
	ops_clear(vmm);
	op_add(vmm, self->want, 0, vmm->slots[0].gpa + 5 * 4096, 10, 4096, 2);
	ASSERT_EQ(0, vmm_run(vmm));
	ASSERT_EQ(0, harvest(self->dev, &h));
	EXPECT_EQ(15, h.pending);
	EXPECT_EQ(2, h.round);
	ASSERT_EQ(15, drain(self->dev, self->got, vmm));
	EXPECT_EQ(0, diff(_metadata, vmm, self->want, self->got));
	/* Nothing written since: an empty harvest. */
	ASSERT_EQ(0, harvest(self->dev, &h));
	EXPECT_EQ(0, h.found);
	EXPECT_EQ(0, h.pending);
}

/* A read that cannot be written back consumes nothing. */
TEST_F_TIMEOUT(dirty, read_fault_loses_nothing, 300)
{
	struct vmm *vmm = &self->vmm;
	struct kvmig_dirty_read r = { .nr_runs = 16 };
	struct kvmig_harvest h;

	op_add(vmm, self->want, 0, vmm->slots[0].gpa, 3, 8192, 1);
	ASSERT_EQ(0, vmm_run(vmm));
	ASSERT_EQ(0, harvest(self->dev, &h));
	r.runs_ptr = 8;		/* unmapped */
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(3, drain(self->dev, self->got, vmm));
	EXPECT_EQ(0, diff(_metadata, vmm, self->want, self->got));
}

static int set_slot(struct vmm *vmm, struct vmm_slot *s, uint32_t flags,
		    uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = s->id, .flags = flags, .guest_phys_addr = s->gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)s->hva,
	};

	return ioctl(vmm->vm, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

static void expect_failed(struct __test_metadata *_metadata, int dev,
			  uint32_t reason)
{
	struct kvmig_harvest h;
	struct kvmig_dirty_read r = { .nr_runs = 1, .runs_ptr = 8 };
	struct kvmig_stats st;

	EXPECT_EQ(-ESTALE, harvest(dev, &h));
	ASSERT_EQ(0, get_stats(dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_EQ(reason, st.fail_reason);
	/* Failed stays failed. */
	EXPECT_EQ(-ESTALE, harvest(dev, &h));
	EXPECT_EQ(-1, ioctl(dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(ESTALE, errno);
}

TEST_F_TIMEOUT(dirty, memslot_deleted_fails, 300)
{
	ASSERT_EQ(0, set_slot(&self->vmm, &self->vmm.slots[0], 0, 0));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_MEMSLOTS);
}

TEST_F_TIMEOUT(dirty, memslot_added_fails, 300)
{
	struct vmm_slot s = {
		.id = 100, .gpa = 0x100000, .size = 4096,
		.hva = self->vmm.slots[0].hva,
	};

	ASSERT_EQ(0, set_slot(&self->vmm, &s, KVM_MEM_LOG_DIRTY_PAGES, 4096));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_MEMSLOTS);
}

TEST_F_TIMEOUT(dirty, memslot_moved_fails, 300)
{
	struct vmm_slot s = self->vmm.slots[0];

	ASSERT_EQ(0, set_slot(&self->vmm, &s, 0, 0));
	s.gpa += SLOT_SIZE;
	ASSERT_EQ(0, set_slot(&self->vmm, &s, KVM_MEM_LOG_DIRTY_PAGES,
			      SLOT_SIZE));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_MEMSLOTS);
}

TEST_F_TIMEOUT(dirty, dirty_logging_turned_off_fails, 300)
{
	ASSERT_EQ(0, set_slot(&self->vmm, &self->vmm.slots[0], 0, SLOT_SIZE));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_MEMSLOTS);
}

/*
 * Only the VM's own process may harvest or take pages out of the pending
 * set: another process holding the session's file (a fork, another mm)
 * gets -EPERM and changes nothing.
 */
TEST_F_TIMEOUT(dirty, tracking_from_another_process, 300)
{
	struct vmm *vmm = &self->vmm;
	struct kvmig_harvest h;
	struct kvmig_dirty_start st = {};
	int status;
	pid_t pid;

	op_add(vmm, self->want, 0, vmm->slots[0].gpa, 5, 4096, 1);
	ASSERT_EQ(0, vmm_run(vmm));
	ASSERT_EQ(0, harvest(self->dev, &h));
	ASSERT_EQ(5, h.pending);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmig_dirty_run runs[8];
		struct kvmig_dirty_read r = {
			.nr_runs = 8, .runs_ptr = (uintptr_t)runs,
		};

		if (harvest(self->dev, &h) != -EPERM)
			_exit(1);
		if (!ioctl(self->dev, KVMIG_DIRTY_READ, &r) || errno != EPERM)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* 1: HARVEST allowed, 2: DIRTY_READ allowed. */
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	/* Still tracking, nothing taken, and start again is a wrong-state call. */
	EXPECT_EQ(0, harvest(self->dev, &h));
	EXPECT_EQ(5, h.pending);
	EXPECT_EQ(5, drain(self->dev, self->got, vmm));
	EXPECT_EQ(0, diff(_metadata, vmm, self->want, self->got));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, &st));
	EXPECT_EQ(EBUSY, errno);
}

/*
 * The VMM dies while tracking, after guest writes: the lab's kmemleak scan
 * and splat check after the run tell whether anything leaked.
 */
TEST_F_TIMEOUT(dirty, vmm_exits_while_tracking, 300)
{
	struct vmm *vmm = &self->vmm;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmm child;
		struct vmm_config cfg = vmm->cfg;
		struct kvmig_attach a = { .role = KVMIG_ROLE_SOURCE };
		struct kvmig_dirty_start st = {};
		struct kvmig_harvest h;
		struct expect *e = calloc(1, sizeof(*e));
		int dev;

		if (!e || vmm_create(&child, &cfg) ||
		    vmm_load(&child, guest_writer,
			     guest_writer_end - guest_writer))
			_exit(1);
		dev = open("/dev/kvmig", O_RDWR);
		a.vm_fd = child.vm;
		if (dev < 0 || ioctl(dev, KVMIG_ATTACH_VM, &a) ||
		    ioctl(dev, KVMIG_DIRTY_START, &st))
			_exit(2);
		child.ring_full = ring_full_harvest;
		child.ring_full_arg = &dev;
		op_add(&child, e, 0, child.slots[0].gpa, 100, 4096, 1);
		if (vmm_run(&child) || harvest(dev, &h) || h.pending != 100)
			_exit(3);
		_exit(0);	/* no close, no munmap: the exit does it */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
}

/* Tests of one tracker only: one vCPU, one data slot. */
FIXTURE(one) {
	struct vmm vmm;
	int dev;
	struct expect want;
	struct kvmig_dirty_start start;
};

FIXTURE_VARIANT(one) {
	enum vmm_dirty mode;
};

FIXTURE_VARIANT_ADD(one, ring) {
	.mode = VMM_DIRTY_RING,
};

FIXTURE_VARIANT_ADD(one, bitmap) {
	.mode = VMM_DIRTY_BITMAP,
};

FIXTURE_SETUP(one)
{
	struct vmm_config cfg = {
		.dirty = variant->mode, .nr_vcpus = 1, .nr_slots = 1,
		.slot_size = SLOT_SIZE,
	};

	setup_tracking(_metadata, &self->vmm, &self->dev, &self->start, &cfg);
}

FIXTURE_TEARDOWN(one)
{
	if (self->dev >= 0)
		close(self->dev);
	vmm_destroy(&self->vmm);
}

static void ignore_page(void *arg, uint32_t slot, uint64_t offset)
{
}

/*
 * The VMM reaping its own rings (ring mode), or clearing the bitmap behind
 * kvmig's back (bitmap mode). The first is caught; the second cannot be,
 * and this test pins down what happens then: the cleared pages are gone
 * from kvmig's view, which is why the UAPI forbids it.
 */
TEST_F_TIMEOUT(one, vmm_harvesting_too, 300)
{
	struct vmm *vmm = &self->vmm;
	struct kvmig_harvest h;

	op_add(vmm, &self->want, 0, vmm->slots[0].gpa, 4, 4096, 1);
	ASSERT_EQ(0, vmm_run(vmm));
	if (variant->mode == VMM_DIRTY_RING) {
		ASSERT_EQ(4, vmm_harvest_ring(vmm, ignore_page, NULL));
		expect_failed(_metadata, self->dev, KVMIG_FAIL_RING_STOLEN);
	} else {
		ASSERT_EQ(4, vmm_harvest_bitmap(vmm, ignore_page, NULL));
		ASSERT_EQ(0, harvest(self->dev, &h));
		EXPECT_EQ(0, h.found);
	}
}

/* Closing the session unmaps the bitmap scratch area from the VMM. */
TEST_F_TIMEOUT(one, close_unmaps_scratch, 300)
{
	uint64_t addr = self->start.scratch_addr;

	if (variant->mode == VMM_DIRTY_RING) {
		EXPECT_EQ(0, addr);
		return;
	}
	ASSERT_NE(0, addr);
	EXPECT_EQ(0, msync((void *)(uintptr_t)addr, 4096, MS_ASYNC));
	close(self->dev);
	self->dev = -1;
	EXPECT_EQ(-1, msync((void *)(uintptr_t)addr, 4096, MS_ASYNC));
	EXPECT_EQ(ENOMEM, errno);
}

/* The ABI: one test per rule. */
FIXTURE(abi) {
	struct vmm vmm;
	int dev;
};

FIXTURE_SETUP(abi)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_BITMAP, .nr_vcpus = 1, .nr_slots = 1,
		.slot_size = SLOT_SIZE,
	};
	int ret;

	self->dev = -1;
	ret = vmm_create(&self->vmm, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	self->dev = open_session(_metadata);
}

FIXTURE_TEARDOWN(abi)
{
	if (self->dev >= 0)
		close(self->dev);
	vmm_destroy(&self->vmm);
}

static int attach(int dev, int vm, uint32_t role)
{
	struct kvmig_attach a = { .vm_fd = vm, .role = role };

	return ioctl(dev, KVMIG_ATTACH_VM, &a) ? -errno : 0;
}

static int start(int dev)
{
	struct kvmig_dirty_start st = {};

	return ioctl(dev, KVMIG_DIRTY_START, &st) ? -errno : 0;
}

static int read_runs(int dev)
{
	struct kvmig_dirty_run runs[4];
	struct kvmig_dirty_read r = {
		.nr_runs = 4, .runs_ptr = (uintptr_t)runs,
	};

	return ioctl(dev, KVMIG_DIRTY_READ, &r) ? -errno : 0;
}

TEST_F(abi, calls_before_attach)
{
	struct kvmig_harvest h;
	struct kvmig_stats st;

	EXPECT_EQ(-EBUSY, start(self->dev));
	EXPECT_EQ(-EBUSY, harvest(self->dev, &h));
	EXPECT_EQ(-EBUSY, read_runs(self->dev));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_IDLE, st.state);
	EXPECT_EQ(0, st.role);
}

TEST_F(abi, calls_before_start)
{
	struct kvmig_harvest h;
	struct kvmig_stats st;

	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	EXPECT_EQ(-EBUSY, harvest(self->dev, &h));
	EXPECT_EQ(-EBUSY, read_runs(self->dev));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_ATTACHED, st.state);
	EXPECT_EQ(KVMIG_DIRTY_BITMAP, st.dirty_mode);
}

TEST_F(abi, double_start)
{
	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	ASSERT_EQ(0, start(self->dev));
	EXPECT_EQ(-EBUSY, start(self->dev));
	EXPECT_EQ(-EBUSY, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
}

TEST_F(abi, destination_does_not_track)
{
	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_DEST));
	EXPECT_EQ(-EINVAL, start(self->dev));
}

TEST_F(abi, start_bad_fields)
{
	struct kvmig_dirty_start st = { .flags = 1 };

	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, &st));
	EXPECT_EQ(EINVAL, errno);
	st.flags = 0;
	st.reserved[3] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, &st));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_START, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Nothing of that started anything. */
	EXPECT_EQ(0, start(self->dev));
}

TEST_F(abi, start_needs_dirty_logging)
{
	struct vmm_slot *s = &self->vmm.slots[0];

	ASSERT_EQ(0, set_slot(&self->vmm, s, 0, s->size));
	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	EXPECT_EQ(-EINVAL, start(self->dev));
	ASSERT_EQ(0, set_slot(&self->vmm, s, KVM_MEM_LOG_DIRTY_PAGES, s->size));
	EXPECT_EQ(0, start(self->dev));
}

TEST_F(abi, harvest_bad_fields)
{
	struct kvmig_harvest h = { .flags = 1 };

	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	ASSERT_EQ(0, start(self->dev));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);
	h.flags = 0;
	h.pad = 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);
	h.pad = 0;
	h.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_HARVEST, 8));
	EXPECT_EQ(EFAULT, errno);
	/* Output fields are ignored on input: a struct can be reused. */
	h.reserved[0] = 0;
	h.found = h.pending = h.round = 99;
	EXPECT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	EXPECT_EQ(1, h.round);
}

TEST_F(abi, read_bad_fields)
{
	struct kvmig_dirty_run runs[1];
	struct kvmig_dirty_read r = { .nr_runs = 1, .flags = 1,
				      .runs_ptr = (uintptr_t)runs };

	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	ASSERT_EQ(0, start(self->dev));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EINVAL, errno);
	r.flags = 0;
	r.reserved[2] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EINVAL, errno);
	r.reserved[2] = 0;
	r.nr_runs = 0;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EINVAL, errno);
	r.nr_runs = 65537;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EINVAL, errno);
	r.nr_runs = 1;
	r.runs_ptr = 0;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(EINVAL, errno);
	r.runs_ptr = (uintptr_t)runs;
	EXPECT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_READ, &r));
	EXPECT_EQ(0, r.nr_runs);
}

TEST_F(abi, stats_bad_fields)
{
	struct kvmig_stats st = { .flags = 1 };

	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(EINVAL, errno);
	st.flags = 0;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_GET_STATS, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Output fields are ignored on input: a struct can be reused. */
	st.throttle_policy = st.throttle_pct = 7;
	st.throttle_ns = 7;
	st.hole_pages = 7;
	EXPECT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(0, st.throttle_policy);
	EXPECT_EQ(0, st.throttle_ns);
	EXPECT_EQ(0, st.hole_pages);
}

static int set_throttle(int dev, const struct kvmig_throttle *t)
{
	return ioctl(dev, KVMIG_SET_THROTTLE, t) ? -errno : 0;
}

/* Each field out of range, or set for another policy, is refused. */
TEST_F(abi, throttle_bad_fields)
{
	const struct kvmig_throttle bad[] = {
		{ .policy = 3 },
		{ .policy = KVMIG_THROTTLE_OFF, .max_pct = 50 },
		{ .policy = KVMIG_THROTTLE_OFF, .dirty_rate = 1 },
		{ .policy = KVMIG_THROTTLE_AUTO, .step_pct = 10, .max_pct = 99 },
		{ .policy = KVMIG_THROTTLE_AUTO, .initial_pct = 100,
		  .step_pct = 10, .max_pct = 99 },
		{ .policy = KVMIG_THROTTLE_AUTO, .initial_pct = 20,
		  .step_pct = 0, .max_pct = 99 },
		{ .policy = KVMIG_THROTTLE_AUTO, .initial_pct = 20,
		  .step_pct = 10, .max_pct = 100 },
		{ .policy = KVMIG_THROTTLE_AUTO, .initial_pct = 20,
		  .step_pct = 10, .max_pct = 99, .dirty_rate = 5 },
		{ .policy = KVMIG_THROTTLE_RATE, .max_pct = 99 },
		{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000 },
		{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000,
		  .max_pct = 99, .initial_pct = 20 },
		{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000,
		  .max_pct = 99, .flags = 1 },
		{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000,
		  .max_pct = 99, .pad = 1 },
		{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000,
		  .max_pct = 99, .reserved[3] = 1 },
	};
	const struct kvmig_throttle rate = {
		.policy = KVMIG_THROTTLE_RATE, .dirty_rate = 1000,
		.max_pct = 99,
	};
	struct kvmig_stats st = {};
	unsigned int i;

	/* Not a source that tracks: nothing to throttle. */
	EXPECT_EQ(-EBUSY, set_throttle(self->dev, &rate));
	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_SOURCE));
	EXPECT_EQ(-EBUSY, set_throttle(self->dev, &rate));
	ASSERT_EQ(0, start(self->dev));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, set_throttle(self->dev, &bad[i]))
			TH_LOG("case %u", i);
	EXPECT_EQ(-EFAULT, set_throttle(self->dev, NULL));
	/* None of those changed the policy. */
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(KVMIG_THROTTLE_OFF, st.throttle_policy);
	ASSERT_EQ(0, set_throttle(self->dev, &rate));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_STATS, &st));
	EXPECT_EQ(KVMIG_THROTTLE_RATE, st.throttle_policy);
	EXPECT_EQ(0, st.throttle_pct);	/* nothing measured yet */
}

TEST_F(abi, throttle_refused_by_destination)
{
	const struct kvmig_throttle t = {
		.policy = KVMIG_THROTTLE_AUTO, .initial_pct = 20,
		.step_pct = 10, .max_pct = 99,
	};

	ASSERT_EQ(0, attach(self->dev, self->vmm.vm, KVMIG_ROLE_DEST));
	EXPECT_EQ(-EBUSY, set_throttle(self->dev, &t));
}

TEST_F(abi, features_announced)
{
	uint64_t feat = 0;
	struct kvmig_api api = { .nr_features = 1,
				 .features_ptr = (uintptr_t)&feat };
	uint64_t want = KVMIG_F0_DIRTY_RING | KVMIG_F0_DIRTY_BITMAP |
			KVMIG_F0_DIRTY_READ | KVMIG_F0_STATS |
			KVMIG_F0_THROTTLE;

	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_API, &api));
	EXPECT_EQ(want, feat & want);
}

TEST_HARNESS_MAIN
