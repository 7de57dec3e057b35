// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through kvmig over TCP: a source VM whose guest keeps
 * writing goes to a destination VM of the same layout, in pre-copy rounds
 * and a final pass; then memory and device state must be identical. And
 * every way it can go wrong: layout mismatch, malformed streams, a peer
 * that vanishes, stalls or lies, cancel, signals, the VMM stopped or
 * killed, rmmod; the source VM is intact and runs on after each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"
#include "kselftest_harness.h"
#include "mig_lib.h"
#include "rdma_peer.h"


/*
 * Guest that never rests: %esi = mailbox { u32 gpa, pages, stop }. It
 * stamps the pass number into every page of its share, pass after pass,
 * and does the OUT only once the VMM has set stop (checked after each
 * pass), so each vCPU dirties its whole share as fast as it can.
 */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_sweep, guest_sweep_end\n"
    ".code32\n"
    "guest_sweep:\n"
    "	xorl %ebx, %ebx\n"
    "1:	incl %ebx\n"
    "	movl (%esi), %eax\n"
    "	movl 4(%esi), %ecx\n"
    "2:	movl %ebx, (%eax)\n"
    "	addl $4096, %eax\n"
    "	loop 2b\n"
    "	cmpl $0, 8(%esi)\n"
    "	je 1b\n"
    "	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_sweep_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_sweep[], guest_sweep_end[];

#define SLOT_SIZE	(2UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / 4096)
#define WIRE_MAGIC	0x474d564b
#define WIRE_VERSION	5
#define STATE_MAX	(16U << 20)	/* KVMIG_WIRE_MAX_STATE */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void fill(struct vmm *vmm, unsigned int slot, uint32_t first,
		 uint32_t count, uint32_t stride, uint32_t value)
{
	uint32_t *m = vmm_mbox(vmm, 0);

	m[0] = vmm->slots[slot].gpa + first * 4096;
	m[1] = count;
	m[2] = stride * 4096;
	m[3] = value;
}

/*
 * The VMM writes the mailboxes through its own mapping: KVM does not log
 * that, so a tracked VMM reports it, as it would report device DMA.
 */
static int mark_mboxes(int dev, unsigned int nr_vcpus)
{
	struct kvmig_dirty_run run = {
		.gfn = VMM_MBOX_GPA / 4096, .slot = VMM_CTRL_SLOT,
		.npages = nr_vcpus * VMM_MBOX_SIZE / 4096,
	};
	struct kvmig_dirty_mark m = { .nr_runs = 1,
				      .runs_ptr = (uintptr_t)&run };

	return ioctl(dev, KVMIG_DIRTY_MARK, &m) ? -errno : 0;
}

static int mark_mbox(int dev)
{
	struct kvmig_dirty_run run = {
		.gfn = VMM_MBOX_GPA / 4096, .npages = 1, .slot = VMM_CTRL_SLOT,
	};
	struct kvmig_dirty_mark m = { .nr_runs = 1,
				      .runs_ptr = (uintptr_t)&run };

	return ioctl(dev, KVMIG_DIRTY_MARK, &m) ? -errno : 0;
}

static int session(int vm, uint32_t role, uint32_t mode)
{
	struct kvmig_attach a = { .vm_fd = vm, .role = role,
				  .dirty_mode = mode };
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	if (dev < 0)
		return -errno;
	if (ioctl(dev, KVMIG_ATTACH_VM, &a)) {
		int err = -errno;

		close(dev);
		return err;
	}
	return dev;
}

/* A source session on @vm, tracking. */
static int source_session(int vm, enum vmm_dirty mode)
{
	struct kvmig_dirty_start ds = {};
	int dev = session(vm, KVMIG_ROLE_SOURCE, mode == VMM_DIRTY_RING ?
			  KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP);

	if (dev < 0)
		return dev;
	if (ioctl(dev, KVMIG_DIRTY_START, &ds)) {
		int err = -errno;

		close(dev);
		return err;
	}
	return dev;
}

/* KVMIG_XFER_SETUP over @sock and the @nr - 1 other streams @more. */
static int setup_streams(int dev, int sock, const int *more, unsigned int nr,
			 uint64_t downtime_ns, uint32_t max_rounds,
			 uint64_t bandwidth, uint32_t io_ms)
{
	uint32_t fds[KVMIG_MAX_STREAMS];
	struct kvmig_xfer_setup st = {
		.sock_fd = sock, .downtime_ns = downtime_ns,
		.max_rounds = max_rounds, .bandwidth = bandwidth,
		.io_timeout_ms = io_ms,
	};
	unsigned int i;

	if (nr > 1) {
		for (i = 0; i + 1 < nr; i++)
			fds[i] = more[i];
		st.flags = KVMIG_XFER_SETUP_STREAMS;
		st.nr_streams = nr;
		st.streams_ptr = (uintptr_t)fds;
	}
	return ioctl(dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

/* One connection over RDMA, set up through @sock. */
static int setup_rdma(int dev, int sock, uint64_t downtime_ns,
		      uint32_t max_rounds, uint32_t io_ms)
{
	struct kvmig_xfer_setup st = {
		.sock_fd = sock, .flags = KVMIG_XFER_SETUP_RDMA,
		.downtime_ns = downtime_ns, .max_rounds = max_rounds,
		.io_timeout_ms = io_ms,
	};

	return ioctl(dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

static int setup(int dev, int sock, uint64_t downtime_ns,
		 uint32_t max_rounds, uint64_t bandwidth, uint32_t io_ms)
{
	return setup_streams(dev, sock, NULL, 1, downtime_ns, max_rounds,
			     bandwidth, io_ms);
}

static int get_stats(int dev, struct kvmig_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(dev, KVMIG_GET_STATS, st) ? -errno : 0;
}

/* Poll a session's stats until @done says so or @ms pass; 0 or -ETIME. */
static int wait_stats(int dev, struct kvmig_stats *st, unsigned int ms,
		      bool (*done)(const struct kvmig_stats *st))
{
	uint64_t end = now_ns() + ms * 1000000ULL;

	for (;;) {
		if (get_stats(dev, st))
			return -errno;
		if (done(st))
			return 0;
		if (now_ns() > end)
			return -ETIME;
		usleep(10000);
	}
}

/* The destination has taken pre-copy records in (or failed). */
static bool dest_has_records(const struct kvmig_stats *st)
{
	return st->pages_received + st->zero_pages ||
	       st->state == KVMIG_STATE_FAILED;
}

/* The destination side, in a thread: attach, handshake, receive. */
struct dest {
	struct vmm vmm;
	int dev, sock;
	int more[KVMIG_MAX_STREAMS - 1];	/* its other streams */
	unsigned int nr_streams;
	bool rdma;		/* over RDMA (setup_rdma()) */
	int setup_ret, recv_ret;
	struct kvmig_recv r;
	char *state;
	uint32_t state_cap;
	uint32_t io_ms;		/* its I/O timeout */
	pthread_t thread;
};

static void *dest_thread(void *arg)
{
	struct dest *d = arg;

	d->setup_ret = d->rdma ?
		setup_rdma(d->dev, d->sock, 0, 0, d->io_ms) :
		setup_streams(d->dev, d->sock, d->more, d->nr_streams, 0, 0, 0,
			      d->io_ms);
	if (d->setup_ret) {
		d->recv_ret = d->setup_ret;
		return NULL;
	}
	memset(&d->r, 0, sizeof(d->r));
	d->r.state_ptr = (uintptr_t)d->state;
	d->r.state_cap = d->state_cap;
	d->recv_ret = xfer_call(d->dev, KVMIG_XFER_RECV, &d->r, NULL);
	return NULL;
}

/* A fresh destination VM of the layout @cfg, with its session. */
static int dest_init(struct dest *d, const struct vmm_config *cfg,
		     uint32_t state_cap)
{
	unsigned int i;
	int ret;

	memset(d, 0, sizeof(*d));
	d->dev = d->sock = -1;
	for (i = 0; i < KVMIG_MAX_STREAMS - 1; i++)
		d->more[i] = -1;
	d->nr_streams = 1;
	d->io_ms = 3000;
	d->state_cap = state_cap;
	d->state = malloc(state_cap ?: 1);
	if (!d->state)
		return -ENOMEM;
	ret = vmm_create(&d->vmm, cfg);
	if (ret)
		return ret;
	d->dev = session(d->vmm.vm, KVMIG_ROLE_DEST, KVMIG_DIRTY_AUTO);
	return d->dev < 0 ? d->dev : 0;
}

static void dest_fini(struct dest *d)
{
	unsigned int i;

	if (d->dev >= 0)
		close(d->dev);
	if (d->sock >= 0)
		close(d->sock);
	for (i = 0; i < KVMIG_MAX_STREAMS - 1; i++)
		if (d->more[i] >= 0)
			close(d->more[i]);
	vmm_destroy(&d->vmm);
	free(d->state);
	d->state = NULL;
	d->dev = d->sock = -1;
	for (i = 0; i < KVMIG_MAX_STREAMS - 1; i++)
		d->more[i] = -1;
}

FIXTURE(mig) {
	struct vmm src;
	struct dest *dst;
	int dev;	/* source session */
	int sock;	/* source end */
	bool started;
	const struct kvm_cpuid2 *cpuid;	/* both VMs' vCPUs', or NULL */
	unsigned int dst_vcpus;		/* 0: as the source, 1 */
};

FIXTURE_VARIANT(mig) {
	enum vmm_dirty mode;
	uint64_t dst_slot_size;	/* 0: same as the source */
};

FIXTURE_VARIANT_ADD(mig, ring) {
	.mode = VMM_DIRTY_RING,
};

FIXTURE_VARIANT_ADD(mig, bitmap) {
	.mode = VMM_DIRTY_BITMAP,
};

static void prepare_migration(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mig) *self, enum vmm_dirty mode,
		      uint64_t dst_size)
{
	struct vmm_config cfg = {
		.dirty = mode, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SLOT_SIZE, .cpuid = self->cpuid,
	};
	int ret;

	self->dev = self->sock = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	self->dst->dev = self->dst->sock = -1;
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));

	self->dev = source_session(self->src.vm, mode);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("%s", strerror(-self->dev));
	cfg.slot_size = dst_size ?: SLOT_SIZE;
	cfg.nr_vcpus = self->dst_vcpus ?: 1;
	ASSERT_EQ(0, dest_init(self->dst, &cfg, 8192));
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst->sock));

	/* The guest has written something before migration starts. */
	fill(&self->src, 0, 0, SLOT_PAGES / 4, 4, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

/* Start the destination thread and the source's handshake. */
static int mig_connect(FIXTURE_DATA(mig) *self, uint64_t downtime_ns,
		       uint32_t max_rounds, uint64_t bandwidth)
{
	if (pthread_create(&self->dst->thread, NULL, dest_thread, self->dst))
		return -EAGAIN;
	self->started = true;
	return setup(self->dev, self->sock, downtime_ns, max_rounds,
		     bandwidth, 3000);
}

static void mig_join(FIXTURE_DATA(mig) *self)
{
	if (self->started)
		pthread_join(self->dst->thread, NULL);
	self->started = false;
}

FIXTURE_SETUP(mig)
{
	prepare_migration(_metadata, self, variant->mode, variant->dst_slot_size);
}

FIXTURE_TEARDOWN(mig)
{
	if (self->started) {
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
		mig_join(self);
	}
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	if (self->dst) {
		dest_fini(self->dst);
		free(self->dst);
	}
	vmm_destroy(&self->src);
}

static void expect_same_memory(struct __test_metadata *_metadata,
			       struct vmm *a, struct vmm *b)
{
	unsigned int i;

	EXPECT_EQ(0, memcmp(a->ctrl, b->ctrl, VMM_CTRL_SIZE));
	for (i = 0; i < a->cfg.nr_slots; i++)
		EXPECT_EQ(0, memcmp(a->slots[i].hva, b->slots[i].hva,
				    a->slots[i].size))
			TH_LOG("slot %u differs", a->slots[i].id);
}

/* The source VM is intact: it runs, and its memory is what it wrote. */
static void expect_source_runs(struct __test_metadata *_metadata,
			       struct vmm *src)
{
	uint32_t v;

	fill(src, 1, 3, 1, 1, 0xabcd);
	ASSERT_EQ(0, vmm_run(src));
	memcpy(&v, src->slots[1].hva + 3 * 4096, 4);
	EXPECT_EQ(0xabcd, v);
}

static void expect_failed(struct __test_metadata *_metadata, int dev,
			  uint32_t reason)
{
	struct kvmig_stats st;
	struct kvmig_round r = {};

	ASSERT_EQ(0, get_stats(dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_EQ(reason, st.fail_reason);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(EBUSY, errno);
}

TEST_F_TIMEOUT(mig, precopy_and_switchover, 600)
{
	struct kvmig_round r;
	struct kvmig_final f = {};
	struct kvmig_stats st;
	char state[5000];
	unsigned int i, sent_rounds = 0;
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };

	for (i = 0; i < sizeof(state); i++)
		state[i] = i * 7;
	/* A budget of 1 ns never converges: rounds run to max_rounds. */
	ASSERT_EQ(0, mig_connect(self, 1, 4, 0));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r))
			TH_LOG("round %u: %s", i, strerror(errno));
		EXPECT_EQ(i, r.round);
		if (r.status != KVMIG_ROUND_SENT)
			break;
		sent_rounds++;
		if (i == 0) {
			/* Round 0: all memory, zero pages as markers. */
			/* Nonzero: a quarter of slot 0, code and mailbox. */
			EXPECT_EQ(SLOT_PAGES / 4 + 2, r.pages_sent);
			EXPECT_LT(SLOT_PAGES, r.zero_pages);
		} else {
			/* What the guest wrote, and the mailbox. */
			EXPECT_EQ(101, r.remaining);
			EXPECT_EQ(101, r.pages_sent);
		}
		/* The guest goes on writing between rounds. */
		fill(&self->src, i % 2, 7 * i, 100, 3, 0x2000 + i);
		ASSERT_EQ(0, mark_mbox(self->dev));
		ASSERT_EQ(0, vmm_run(&self->src));
	}
	EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, r.status);
	EXPECT_EQ(4, sent_rounds);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);

	/* Paused: the last writes go in the final pass. */
	fill(&self->src, 1, 500, 10, 1, 0x3000);
	ASSERT_EQ(0, mark_mbox(self->dev));
	ASSERT_EQ(0, vmm_run(&self->src));
	f.state_ptr = (uintptr_t)state;
	f.state_len = sizeof(state);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	/* The last round stopped at max_rounds and sent nothing: its 100
	 * pages, the mailbox and the 10 written while paused go now.
	 */
	EXPECT_EQ(111, f.pages_sent);
	EXPECT_LT(0, f.downtime_ns);
	mig_join(self);
	ASSERT_EQ(0, self->dst->recv_ret) TH_LOG("%s",
						 strerror(-self->dst->recv_ret));
	EXPECT_EQ(sizeof(state), self->dst->r.state_len);
	EXPECT_EQ(0, memcmp(state, self->dst->state, sizeof(state)));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);

	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	EXPECT_EQ(sent_rounds, st.xfer_round);
	EXPECT_EQ(st.pages_sent, self->dst->r.pages_received);
	EXPECT_EQ(st.pages_sent, st.pages_spliced);
	EXPECT_EQ(0, st.pages_copied);
	EXPECT_EQ(f.downtime_ns, st.downtime_ns);
	TH_LOG("sent %llu pages (%llu spliced), %llu zero, %llu bytes, downtime %llu us",
	       (unsigned long long)st.pages_sent,
	       (unsigned long long)st.pages_spliced,
	       (unsigned long long)st.zero_pages,
	       (unsigned long long)st.bytes_sent,
	       (unsigned long long)st.downtime_ns / 1000);
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);

	/* The destination guest runs on from the migrated memory. */
	ASSERT_EQ(0, vmm_load(&self->dst->vmm, guest_fill,
			      guest_fill_end - guest_fill));
	fill(&self->dst->vmm, 0, 1, 1, 1, 0x4444);
	ASSERT_EQ(0, vmm_run(&self->dst->vmm));
}

TEST_F_TIMEOUT(mig, converges, 600)
{
	struct kvmig_round r = {};
	struct kvmig_final f = {};

	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));	/* defaults: 300 ms */
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(KVMIG_ROUND_SENT, r.status);
	fill(&self->src, 0, 0, 5, 1, 0x5555);
	ASSERT_EQ(0, mark_mbox(self->dev));
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(KVMIG_ROUND_CONVERGED, r.status);
	EXPECT_EQ(6, r.remaining);
	EXPECT_GE(300000000ULL, r.expected_downtime_ns);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(6, f.pages_sent);
	mig_join(self);
	ASSERT_EQ(0, self->dst->recv_ret);
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
}

/*
 * A sparse guest: 2 x 16 MiB of RAM of which the guest touched 320 pages.
 * Round 0 must send the never-populated rest as zero markers without
 * faulting it in (the source's RAM stays as populated as it was, a memfd
 * is not allocated), the destination must not populate it either, and
 * holes the guest writes after round 0 must still arrive. mincore(2) is
 * the kernel's own, independent account of what is populated: resident
 * in the page tables (anonymous) or in the page cache (memfd); the lab
 * has no swap.
 *
 * The variants with the walk turned off (module parameter holes=0) show
 * what round 0 did before: it populated every page, on both sides.
 */
#define SPARSE_SLOT	(16UL << 20)
#define SPARSE_PAGES	(SPARSE_SLOT / 4096)
#define HOLES_PARAM	"/sys/module/kvmig/parameters/holes"

static int set_holes(char v)
{
	int fd = open(HOLES_PARAM, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, &v, 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static uint64_t resident(const void *p, size_t len)
{
	size_t n = len / 4096, i;
	unsigned char *vec = malloc(n);
	uint64_t r = 0;

	if (!vec || mincore((void *)p, len, vec)) {
		free(vec);
		return UINT64_MAX;
	}
	for (i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
}

static uint64_t vm_resident(struct vmm *vmm)
{
	uint64_t r = resident(vmm->ctrl, VMM_CTRL_SIZE);
	unsigned int i;

	for (i = 0; i < vmm->cfg.nr_slots; i++)
		r += resident(vmm->slots[i].hva, vmm->slots[i].size);
	return r;
}

static uint64_t nonzero_pages(struct vmm *vmm)
{
	static const char zero[4096];
	uint64_t r = 0, p;
	unsigned int i;

	for (p = 0; p < VMM_CTRL_SIZE / 4096; p++)
		r += !!memcmp(vmm->ctrl + p * 4096, zero, 4096);
	for (i = 0; i < vmm->cfg.nr_slots; i++)
		for (p = 0; p < vmm->slots[i].size / 4096; p++)
			r += !!memcmp(vmm->slots[i].hva + p * 4096, zero, 4096);
	return r;
}

/*
 * Populated page by page: a huge page would fill 512 at once. EINVAL: a
 * kernel without transparent huge pages (the debug kernel) has none.
 */
static int no_thp(struct vmm *vmm)
{
	unsigned int i;

	for (i = 0; i < vmm->cfg.nr_slots; i++)
		if (!vmm->cfg.memfd &&
		    madvise(vmm->slots[i].hva, vmm->slots[i].size,
			    MADV_NOHUGEPAGE) && errno != EINVAL)
			return -errno;
	return 0;
}

FIXTURE(sparse) {
	struct vmm src;
	struct dest dst;
	int dev, sock;
	bool started, param_set;
};

FIXTURE_VARIANT(sparse) {
	enum vmm_dirty mode;
	bool memfd;
	bool no_walk;
};

FIXTURE_VARIANT_ADD(sparse, anon_ring) {
	.mode = VMM_DIRTY_RING,
};

FIXTURE_VARIANT_ADD(sparse, memfd_bitmap) {
	.mode = VMM_DIRTY_BITMAP, .memfd = true,
};

FIXTURE_VARIANT_ADD(sparse, memfd_ring_no_walk) {
	.mode = VMM_DIRTY_RING, .memfd = true, .no_walk = true,
};

FIXTURE_VARIANT_ADD(sparse, anon_bitmap_no_walk) {
	.mode = VMM_DIRTY_BITMAP, .no_walk = true,
};

FIXTURE_SETUP(sparse)
{
	struct vmm_config cfg = {
		.dirty = variant->mode, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SPARSE_SLOT, .memfd = variant->memfd,
	};
	int ret;

	self->dev = self->sock = -1;
	self->dst.dev = self->dst.sock = -1;
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	self->dev = source_session(self->src.vm, variant->mode);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("%s", strerror(-self->dev));
	ASSERT_EQ(0, dest_init(&self->dst, &cfg, 64));
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst.sock));
	ASSERT_EQ(0, no_thp(&self->src));
	ASSERT_EQ(0, no_thp(&self->dst.vmm));
	if (variant->no_walk) {
		ASSERT_EQ(0, set_holes('N')) TH_LOG(HOLES_PARAM);
		self->param_set = true;
	}

	/* Every 64th page of slot 0, 256 pages in a row of slot 1. */
	fill(&self->src, 0, 0, SPARSE_PAGES / 64, 64, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
	fill(&self->src, 1, 1000, 256, 1, 0x2000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

FIXTURE_TEARDOWN(sparse)
{
	if (self->started) {
		ioctl(self->dst.dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst.thread, NULL);
	}
	if (self->param_set)
		set_holes('Y');
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	dest_fini(&self->dst);
	vmm_destroy(&self->src);
}

TEST_F_TIMEOUT(sparse, round_0_leaves_holes_alone, 600)
{
	uint64_t total = VMM_CTRL_SIZE / 4096 + 2 * SPARSE_PAGES;
	uint64_t before, after, holes, t0, t1, nonzero;
	struct kvmig_round r = {};
	struct kvmig_final f = {};
	struct kvmig_stats st, dst;
	char state = 's';

	before = vm_resident(&self->src);
	ASSERT_NE(UINT64_MAX, before);
	/* Code, mailbox and what the guest wrote, far from all of it. */
	ASSERT_LE(SPARSE_PAGES / 64 + 256, before);
	ASSERT_GT(total / 8, before);
	holes = total - before;

	ASSERT_EQ(0, pthread_create(&self->dst.thread, NULL, dest_thread,
				    &self->dst));
	self->started = true;
	ASSERT_EQ(0, setup(self->dev, self->sock, 1, 10, 0, 3000));
	t0 = now_ns();
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	t1 = now_ns();
	ASSERT_EQ(KVMIG_ROUND_SENT, r.status);
	after = vm_resident(&self->src);
	EXPECT_EQ(total, r.pages_sent + r.zero_pages);
	TH_LOG("round 0: %llu pages sent, %llu zero of which %llu holes, in %llu ms; source resident %llu -> %llu of %llu pages",
	       (unsigned long long)r.pages_sent,
	       (unsigned long long)r.zero_pages,
	       (unsigned long long)r.hole_pages,
	       (unsigned long long)(t1 - t0) / 1000000,
	       (unsigned long long)before, (unsigned long long)after,
	       (unsigned long long)total);
	if (variant->no_walk) {
		/* Every page was faulted in: shmem allocated, anon mapped. */
		EXPECT_EQ(0, r.hole_pages);
		EXPECT_EQ(total, after);
	} else {
		/* Exactly what mincore calls unpopulated, and left so. */
		EXPECT_EQ(holes, r.hole_pages);
		EXPECT_EQ(before, after);
	}

	/* The guest writes into holes after round 0: they must arrive. */
	fill(&self->src, 1, 3000, 100, 1, 0x3000);
	ASSERT_EQ(0, mark_mbox(self->dev));
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(101, r.pages_sent);
	EXPECT_EQ(0, r.hole_pages);
	f.state_ptr = (uintptr_t)&state;
	f.state_len = 1;
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	pthread_join(self->dst.thread, NULL);
	self->started = false;
	ASSERT_EQ(0, self->dst.recv_ret);

	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(variant->no_walk ? 0 : holes, st.hole_pages);
	ASSERT_EQ(0, get_stats(self->dst.dev, &dst));
	EXPECT_EQ(KVMIG_STATE_DONE, dst.state);
	after = vm_resident(&self->dst.vmm);
	nonzero = nonzero_pages(&self->src);
	TH_LOG("destination: %llu pages received, %llu zero of which %llu holes; resident %llu, nonzero at the source %llu",
	       (unsigned long long)dst.pages_received,
	       (unsigned long long)dst.zero_pages,
	       (unsigned long long)dst.hole_pages,
	       (unsigned long long)after, (unsigned long long)nonzero);
	if (variant->no_walk) {
		EXPECT_EQ(0, dst.hole_pages);
		EXPECT_EQ(total, after);
	} else {
		/* A fresh destination: every zero page it got is a hole. */
		EXPECT_EQ(dst.zero_pages, dst.hole_pages);
		EXPECT_LE(st.hole_pages, dst.hole_pages);
		/* Only what came with contents was populated. */
		EXPECT_EQ(nonzero, after);
	}
	expect_same_memory(_metadata, &self->src, &self->dst.vmm);
}

/*
 * The destination is blocked in KVMIG_XFER_RECV: statistics and the
 * session list must still answer (a hang here fails the test by its
 * timeout), and show live progress.
 */
TEST_F_TIMEOUT(mig, stats_and_list_during_recv, 300)
{
	struct kvmig_session_info info[64];
	struct kvmig_stats sd, ss;
	struct kvmig_round r = {};
	struct kvmig_list l = {
		.nr_sessions = 64,
		.sessions_ptr = (uintptr_t)info,
	};
	bool seen_src = false, seen_dst = false;
	__u32 i;

	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));
	for (i = 0; i < 100; i++) {	/* its SETUP may not have returned */
		ASSERT_EQ(0, get_stats(self->dst->dev, &sd));
		if (sd.state == KVMIG_STATE_RECEIVING)
			break;
		usleep(50000);
	}
	EXPECT_EQ(KVMIG_STATE_RECEIVING, sd.state);
	usleep(200000);		/* the destination is blocked in RECV */
	ASSERT_EQ(0, get_stats(self->dst->dev, &sd));
	EXPECT_EQ(0, sd.pages_received);

	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(KVMIG_ROUND_SENT, r.status);
	/* Round 0 went out whole; the destination is still in RECV. */
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, get_stats(self->dst->dev, &sd));
		if (sd.pages_received + sd.zero_pages >= r.pages_sent +
							  r.zero_pages)
			break;
		usleep(50000);
	}
	EXPECT_EQ(r.pages_sent, sd.pages_received);
	EXPECT_EQ(r.zero_pages, sd.zero_pages);
	EXPECT_EQ(KVMIG_STATE_RECEIVING, sd.state);

	ASSERT_EQ(0, get_stats(self->dev, &ss));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_LIST_SESSIONS, &l));
	for (i = 0; i < l.nr_filled; i++) {
		if (info[i].stats.id == ss.id) {
			seen_src = true;
			EXPECT_EQ(KVMIG_SESSION_SELF, info[i].flags);
			EXPECT_EQ(KVMIG_STATE_PRECOPY, info[i].stats.state);
			EXPECT_EQ(ss.bytes_sent, info[i].stats.bytes_sent);
			EXPECT_EQ(r.pages_sent, info[i].stats.pages_sent);
		}
		if (info[i].stats.id == sd.id) {
			seen_dst = true;
			EXPECT_EQ(KVMIG_STATE_RECEIVING, info[i].stats.state);
			EXPECT_EQ(KVMIG_ROLE_DEST, info[i].stats.role);
			EXPECT_EQ(sd.pages_received,
				  info[i].stats.pages_received);
		}
	}
	EXPECT_TRUE(seen_src);
	EXPECT_TRUE(seen_dst);
}

/* The peer goes away in mid pre-copy. */
static void peer_goes_away(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mig) *self)
{
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, mig_connect(self, 1, 10, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	/*
	 * Round 0 can fit in the socket's buffers before the destination's
	 * thread is inside KVMIG_XFER_RECV: cancel only once it is.
	 */
	ASSERT_EQ(0, wait_stats(self->dst->dev, &st, 60000, dest_has_records));
	/* Cancel the destination: it shuts its socket down, then close. */
	ASSERT_EQ(0, ioctl(self->dst->dev, KVMIG_XFER_CANCEL));
	mig_join(self);
	EXPECT_EQ(-ECANCELED, self->dst->recv_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_CANCELLED);
	close(self->dst->dev);
	self->dst->dev = -1;
	close(self->dst->sock);
	self->dst->sock = -1;

	fill(&self->src, 0, 0, SLOT_PAGES, 1, 0x6666);
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) TH_LOG("%s",
							       strerror(errno));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
}

TEST_F_TIMEOUT(mig, peer_closes_mid_precopy, 600)
{
	peer_goes_away(_metadata, self);
}

/* The peer stops answering in mid switchover: the I/O timeout ends it. */
TEST_F_TIMEOUT(mig, peer_silent_at_switchover, 600)
{
	struct kvmig_final f = {};
	struct kvmig_round r = {};
	struct timespec ts;
	uint64_t t0;
	int err;

	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	/* The destination is stopped: it reads nothing and answers nothing. */
	ASSERT_EQ(0, ioctl(self->dst->dev, KVMIG_XFER_CANCEL));
	mig_join(self);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	err = errno;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	EXPECT_GE(30, ts.tv_sec - t0);
	/*
	 * A cancelled destination tells the source when it can: if its
	 * cancel raced with the round's last records, its status reached the
	 * source before the socket was shut (the peer failed: EPROTO);
	 * otherwise the source hears nothing and its I/O timeout ends it.
	 */
	if (err == EPROTO) {
		expect_failed(_metadata, self->dev, KVMIG_FAIL_PEER);
	} else {
		EXPECT_TRUE(err == ETIMEDOUT || err == ECONNRESET ||
			    err == EPIPE) TH_LOG("%s", strerror(err));
		expect_failed(_metadata, self->dev, KVMIG_FAIL_IO);
	}
	expect_source_runs(_metadata, &self->src);
}

/* The round has sent pages: it is under way, not about to start. */
static bool round_sending(const struct kvmig_stats *st)
{
	return st->pages_sent || st->state != KVMIG_STATE_PRECOPY;
}

/* Cancel from another thread while a throttled round is sending. */
struct canceller {
	int dev;
	pthread_t thread;
	struct kvmig_stats st;	/* as seen just before cancelling */
	int wait_ret, cancel_ret;
};

static void *cancel_when_sending(void *arg)
{
	struct canceller *c = arg;

	c->wait_ret = wait_stats(c->dev, &c->st, 60000, round_sending);
	c->cancel_ret = ioctl(c->dev, KVMIG_XFER_CANCEL) ? -errno : 0;
	return NULL;
}

TEST_F_TIMEOUT(mig, cancel_mid_round, 600)
{
	struct canceller c = { .dev = self->dev };
	struct kvmig_round r = {};

	/* 64 KiB/s: round 0 would take many seconds. */
	ASSERT_EQ(0, mig_connect(self, 0, 0, 65536));
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, cancel_when_sending, &c));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(ECANCELED, errno);
	pthread_join(c.thread, NULL);
	/* The cancel came while the round was sending, not before it. */
	EXPECT_EQ(0, c.wait_ret);
	EXPECT_EQ(KVMIG_STATE_PRECOPY, c.st.state);
	EXPECT_LT(0, c.st.pages_sent);
	EXPECT_EQ(0, c.cancel_ret);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_CANCELLED);
	mig_join(self);
	EXPECT_NE(0, self->dst->recv_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
}

/*
 * Cancel between rounds, with no call running: the session is FAILED at
 * once (the old module only flagged it, and kept PRECOPY until the next
 * call tripped over the shut socket), and the next call is refused.
 */
TEST_F_TIMEOUT(mig, cancel_between_rounds, 600)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, mig_connect(self, 1, 10, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(KVMIG_ROUND_SENT, r.status);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_CANCEL));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_EQ(KVMIG_FAIL_CANCELLED, st.fail_reason);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & POLLERR) TH_LOG("revents %#x", pfd.revents);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_CANCELLED);
	/* Cancelling an ended session is a wrong-state call. */
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_CANCEL));
	EXPECT_EQ(EBUSY, errno);
	mig_join(self);
	EXPECT_NE(0, self->dst->recv_ret);
	expect_source_runs(_metadata, &self->src);
}

/*
 * KVMIG_XFER_FINAL before round 0 went out would switch over with pages
 * never sent (the old module did, and the destination resumed a partial
 * image): it must be refused and change nothing.
 */
TEST_F_TIMEOUT(mig, final_before_round_0, 600)
{
	char state[64] = "vcpu state";
	struct kvmig_final f = { .state_ptr = (uintptr_t)state,
				 .state_len = sizeof(state) };
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_PRECOPY, st.state);
	EXPECT_EQ(0, st.xfer_round);
	EXPECT_EQ(0, st.pages_sent);

	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(0, r.round);
	EXPECT_EQ(KVMIG_ROUND_SENT, r.status);
	memset(&f, 0, sizeof(f));
	f.state_ptr = (uintptr_t)state;
	f.state_len = sizeof(state);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	mig_join(self);
	ASSERT_EQ(0, self->dst->recv_ret);
	EXPECT_EQ(sizeof(state), self->dst->r.state_len);
	EXPECT_EQ(0, memcmp(state, self->dst->state, sizeof(state)));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
}

/* The device state does not fit the destination's buffer. */
TEST_F_TIMEOUT(mig, state_too_big_for_destination, 600)
{
	struct kvmig_round r = {};
	struct kvmig_final f = {};
	char state[100] = "vcpu state";

	self->dst->state_cap = 10;
	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	f.state_ptr = (uintptr_t)state;
	f.state_len = sizeof(state);
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EPROTO, errno);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_PEER);
	mig_join(self);
	EXPECT_EQ(-ENOSPC, self->dst->recv_ret);
	expect_source_runs(_metadata, &self->src);
}

/*
 * Device state at the limit: exactly 16 MiB goes through, byte for byte;
 * one byte more is refused before anything is sent, and the session stays
 * in pre-copy.
 */
TEST_F_TIMEOUT(mig, state_of_16_mib, 600)
{
	struct kvmig_round r = {};
	struct kvmig_final f = {};
	struct kvmig_stats st;
	uint8_t *state;
	uint32_t i, seed = 1;

	free(self->dst->state);
	self->dst->state = malloc(STATE_MAX);
	ASSERT_NE(NULL, self->dst->state);
	self->dst->state_cap = STATE_MAX;
	state = malloc(STATE_MAX + 1);
	ASSERT_NE(NULL, state);
	for (i = 0; i < STATE_MAX + 1; i++) {
		seed = seed * 1103515245 + 12345;
		state[i] = seed >> 16;
	}
	ASSERT_EQ(0, mig_connect(self, 0, 0, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));

	f.state_ptr = (uintptr_t)state;
	f.state_len = STATE_MAX + 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_PRECOPY, st.state);

	memset(&f, 0, sizeof(f));
	f.state_ptr = (uintptr_t)state;
	f.state_len = STATE_MAX;
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	mig_join(self);
	ASSERT_EQ(0, self->dst->recv_ret) TH_LOG("%s",
						 strerror(-self->dst->recv_ret));
	EXPECT_EQ(STATE_MAX, self->dst->r.state_len);
	EXPECT_EQ(0, memcmp(state, self->dst->state, STATE_MAX));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
	free(state);
}

/*
 * A whole migration of the source VM on a new session, connection and
 * destination VM, after an earlier session on it ended: the old one is
 * closed first (one VM, one session).
 */
static void migrate_again(struct __test_metadata *_metadata,
			  FIXTURE_DATA(mig) *self, enum vmm_dirty mode)
{
	struct dest *d = calloc(1, sizeof(*d));
	struct kvmig_round r;
	struct kvmig_final f = {};
	unsigned int i;
	int dev, sock;

	ASSERT_NE(NULL, d);
	if (self->dev >= 0)
		close(self->dev);
	self->dev = -1;
	if (self->sock >= 0)
		close(self->sock);
	self->sock = -1;

	dev = source_session(self->src.vm, mode);
	ASSERT_LE(0, dev) TH_LOG("new session: %s", strerror(-dev));
	self->dev = dev;
	ASSERT_EQ(0, dest_init(d, &self->src.cfg, 8192));
	ASSERT_EQ(0, tcp_pair(&sock, &d->sock));
	self->sock = sock;
	ASSERT_EQ(0, pthread_create(&d->thread, NULL, dest_thread, d));
	ASSERT_EQ(0, setup(dev, sock, 0, 0, 0, 3000));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, ioctl(dev, KVMIG_XFER_ROUND, &r))
			TH_LOG("round %u: %s", i, strerror(errno));
		EXPECT_EQ(i, r.round);
		if (r.status != KVMIG_ROUND_SENT)
			break;
		fill(&self->src, 1, 11 * i, 20, 5, 0x7000 + i);
		ASSERT_EQ(0, mark_mbox(dev));
		ASSERT_EQ(0, vmm_run(&self->src));
	}
	ASSERT_EQ(0, ioctl(dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	pthread_join(d->thread, NULL);
	ASSERT_EQ(0, d->recv_ret) TH_LOG("%s", strerror(-d->recv_ret));
	expect_same_memory(_metadata, &self->src, &d->vmm);
	dest_fini(d);
	free(d);
}

TEST_F_TIMEOUT(mig, migrate_again_after_cancel, 600)
{
	struct kvmig_round r = {};

	ASSERT_EQ(0, mig_connect(self, 1, 10, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_CANCEL));
	mig_join(self);
	fill(&self->src, 0, 1, 50, 2, 0x8888);
	ASSERT_EQ(0, vmm_run(&self->src));
	migrate_again(_metadata, self, variant->mode);
}

TEST_F_TIMEOUT(mig, migrate_again_after_peer_closed, 600)
{
	peer_goes_away(_metadata, self);
	migrate_again(_metadata, self, variant->mode);
}

/*
 * The transfer calls from a process that is not the VMM (a fork: another
 * mm), holding the session's file: they run (the worker works in the
 * VM's address space; the old module refused them with -EPERM), while
 * harvesting still needs the VM's own process.
 */
TEST_F_TIMEOUT(mig, xfer_from_another_process, 600)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, mig_connect(self, 1, 2, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmig_harvest h = {};
		struct kvmig_final f = {};
		struct kvmig_round r;
		unsigned int i;

		for (i = 0;; i++) {
			memset(&r, 0, sizeof(r));
			if (ioctl(self->dev, KVMIG_XFER_ROUND, &r))
				_exit(errno == EPERM ? 10 : 11);
			if (r.round != i)
				_exit(12);
			if (r.status != KVMIG_ROUND_SENT)
				break;
		}
		if (!ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h) ||
		    errno != EPERM)
			_exit(20);
		if (ioctl(self->dev, KVMIG_XFER_FINAL, &f))
			_exit(30);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* 10: ROUND refused with EPERM, 20: HARVEST allowed, 30: FINAL. */
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	mig_join(self);
	ASSERT_EQ(0, self->dst->recv_ret);
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
}

/*
 * KVMIG_DIRTY_MARK takes only runs inside the layout, all or nothing: a
 * call with one bad run among good ones marks none of them. Checked in
 * tracking and again in pre-copy, between rounds.
 */
static void expect_mark_all_or_nothing(struct __test_metadata *_metadata,
				       struct vmm *src, int dev)
{
	struct kvmig_dirty_run runs[3] = {
		{ .gfn = src->slots[1].gpa / 4096, .npages = 3,
		  .slot = src->slots[1].id },
		{ .gfn = src->slots[0].gpa / 4096 + 9, .npages = 1,
		  .slot = src->slots[0].id },
		/* Across the end of the slot. */
		{ .gfn = src->slots[1].gpa / 4096 + SLOT_PAGES - 1,
		  .npages = 2, .slot = src->slots[1].id },
	};
	struct kvmig_dirty_mark m = { .nr_runs = 3,
				      .runs_ptr = (uintptr_t)runs };
	struct kvmig_stats st;
	uint64_t pending;

	ASSERT_EQ(0, get_stats(dev, &st));
	pending = st.pages_pending;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, get_stats(dev, &st));
	EXPECT_EQ(pending, st.pages_pending);

	m.nr_runs = 2;
	EXPECT_EQ(0, ioctl(dev, KVMIG_DIRTY_MARK, &m));
	ASSERT_EQ(0, get_stats(dev, &st));
	EXPECT_EQ(pending + 4, st.pages_pending);
	pending = st.pages_pending;

	runs[0].slot = 42;
	runs[0].gfn += 10;	/* not pending yet, were it accepted */
	EXPECT_EQ(-1, ioctl(dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	runs[0].slot = src->slots[1].id;
	runs[1].npages = 0;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	runs[1].npages = 1;
	m.flags = 1;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, get_stats(dev, &st));
	EXPECT_EQ(pending, st.pages_pending);
}

TEST_F_TIMEOUT(mig, dirty_mark, 300)
{
	struct kvmig_harvest h = {};
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(SLOT_PAGES / 4, st.pages_pending);
	expect_mark_all_or_nothing(_metadata, &self->src, self->dev);

	/* Round 0 consumed everything; marks go on counting. */
	ASSERT_EQ(0, mig_connect(self, 1, 10, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(0, st.pages_pending);
	expect_mark_all_or_nothing(_metadata, &self->src, self->dev);
}

/* A socket that is not a connected TCP socket is refused. */
/* A bad eventfd is refused before anything is set up: still TRACKING. */
TEST_F_TIMEOUT(mig, setup_refuses_bad_eventfd, 300)
{
	struct kvmig_xfer_setup su = {
		.sock_fd = 999, .flags = KVMIG_XFER_SETUP_EVENTFD,
	};
	struct kvmig_stats st;
	int p[2];

	ASSERT_EQ(0, pipe(p));
	su.event_fd = p[0];		/* not an eventfd */
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.event_fd = 998;		/* not open */
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EBADF, errno);
	su.event_fd = 0x80000000U;	/* not an fd at all */
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EBADF, errno);
	su.flags = 0;			/* an event_fd without its flag */
	su.event_fd = p[0];
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_TRACKING, st.state);
	close(p[0]);
	close(p[1]);
}

TEST_F_TIMEOUT(mig, setup_needs_connected_tcp, 300)
{
	int fds[2], u;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
	EXPECT_EQ(-EINVAL, setup(self->dev, fds[0], 0, 0, 0, 0));
	u = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT_EQ(-EINVAL, setup(self->dev, u, 0, 0, 0, 0));
	EXPECT_EQ(-ENOTSOCK, setup(self->dev, self->src.vm, 0, 0, 0, 0));
	EXPECT_EQ(-EBADF, setup(self->dev, 999, 0, 0, 0, 0));
	close(u);
	close(fds[0]);
	close(fds[1]);
}

/*
 * The pre-check (KVMIG_SET_CHECK, KVMIG_GET_CHECK): what the handshake
 * compares before any page moves, and the dry run.
 */
#define HANDSHAKE_BYTES(slots)	(40 + 24 * (slots) + 48 + 15 * 16)

static const uint8_t uuid_a[16] = { 0x6b, 0x76, 0x6d, 0x69, 0x67, 1 };
static const uint8_t uuid_b[16] = { 0x6b, 0x76, 0x6d, 0x69, 0x67, 2 };

static int set_check(int dev, const uint8_t *uuid,
		     const struct kvm_cpuid2 *cpuid)
{
	struct kvmig_check_setup c = {};

	if (uuid) {
		c.flags |= KVMIG_CHECK_UUID;
		memcpy(c.uuid, uuid, sizeof(c.uuid));
	}
	if (cpuid) {
		c.flags |= KVMIG_CHECK_CPUID;
		c.nr_cpuid = cpuid->nent;
		c.cpuid_ptr = (uintptr_t)cpuid->entries;
	}
	return ioctl(dev, KVMIG_SET_CHECK, &c) ? -errno : 0;
}

/* @dev's findings into @f (room for KVMIG_MAX_FINDINGS); its status. */
static int get_check(int dev, struct kvmig_finding *f, uint32_t *nr)
{
	struct kvmig_check c = { .nr_findings = KVMIG_MAX_FINDINGS,
				 .findings_ptr = (uintptr_t)f };

	memset(f, 0, KVMIG_MAX_FINDINGS * sizeof(*f));
	if (ioctl(dev, KVMIG_GET_CHECK, &c))
		return -errno;
	*nr = c.nr_filled;
	if (c.nr_filled != c.nr_findings)
		return -E2BIG;
	return c.status;
}

static const struct kvmig_finding *
find_code(const struct kvmig_finding *f, uint32_t nr, uint32_t code)
{
	uint32_t i;

	for (i = 0; i < nr; i++)
		if (f[i].code == code)
			return &f[i];
	return NULL;
}

static void log_findings(struct __test_metadata *_metadata,
			 const struct kvmig_finding *f, uint32_t nr)
{
	uint32_t i;

	for (i = 0; i < nr; i++)
		TH_LOG("finding %u: %s %u, leaf %#x.%u reg %u bits %#x, source %llu, destination %llu",
		       i, f[i].severity == KVMIG_CHECK_ERROR ? "error" : "warning",
		       f[i].code, f[i].function, f[i].index, f[i].reg,
		       f[i].bits, (unsigned long long)f[i].source,
		       (unsigned long long)f[i].dest);
}

/*
 * Both ends read the same findings, with status @status; the first is
 * @code (0: there are none). Returns how many, in @f.
 */
static uint32_t expect_findings(struct __test_metadata *_metadata,
				FIXTURE_DATA(mig) *m, int status,
				uint32_t code, struct kvmig_finding *f)
{
	struct kvmig_finding g[KVMIG_MAX_FINDINGS];
	uint32_t nr = 0, nr_dst = 0;

	EXPECT_EQ(status, get_check(m->dev, f, &nr));
	EXPECT_EQ(status, get_check(m->dst->dev, g, &nr_dst));
	log_findings(_metadata, f, nr);
	EXPECT_EQ(nr, nr_dst);
	EXPECT_EQ(0, memcmp(f, g, sizeof(g)));
	if (code) {
		EXPECT_LT(0, nr);
		EXPECT_EQ(code, f[0].code);
	} else {
		EXPECT_EQ(0, nr);
	}
	return nr;
}

static void expect_refused_for(struct __test_metadata *_metadata,
			       FIXTURE_DATA(mig) *m, uint32_t code)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];

	expect_findings(_metadata, m, KVMIG_CHECK_REFUSED, code, f);
	EXPECT_EQ(KVMIG_CHECK_ERROR, f[0].severity);
}

FIXTURE(check) {
	FIXTURE_DATA(mig) m;
	struct kvm_cpuid2 *offered;	/* KVM_GET_SUPPORTED_CPUID */
	struct kvm_cpuid2 *guest;	/* what the source's vCPUs get */
};

FIXTURE_SETUP(check)
{
	self->m.dev = self->m.sock = -1;
	self->offered = vmm_supported_cpuid();
	if (!self->offered && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_NE(NULL, self->offered) TH_LOG("%s", strerror(errno));
	self->guest = malloc(sizeof(*self->guest) + self->offered->nent *
			     sizeof(self->offered->entries[0]));
	ASSERT_NE(NULL, self->guest);
	memcpy(self->guest, self->offered, sizeof(*self->guest) +
	       self->offered->nent * sizeof(self->offered->entries[0]));
}

FIXTURE_TEARDOWN(check)
{
	if (self->m.dst || self->m.dev >= 0)
		mig_teardown(_metadata, &self->m, NULL);
	free(self->guest);
	free(self->offered);
}

/* Both VMs, their vCPUs given @self->guest; the destination @dst_vcpus. */
static void check_prepare(struct __test_metadata *_metadata,
			  FIXTURE_DATA(check) *self, unsigned int dst_vcpus)
{
	self->m.cpuid = self->guest;
	self->m.dst_vcpus = dst_vcpus;
	prepare_migration(_metadata, &self->m, VMM_DIRTY_RING, 0);
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn,
				     uint32_t index)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

static int dry_run(FIXTURE_DATA(mig) *m)
{
	struct kvmig_xfer_setup st = {
		.sock_fd = m->sock, .flags = KVMIG_XFER_SETUP_DRY_RUN,
		.io_timeout_ms = 3000,
	};

	if (pthread_create(&m->dst->thread, NULL, dest_thread, m->dst))
		return -EAGAIN;
	m->started = true;
	return ioctl(m->dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

/* Nothing moved: the source sent its handshake and no page. */
static void expect_no_page(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mig) *m)
{
	struct kvmig_stats st;

	ASSERT_EQ(0, get_stats(m->dev, &st));
	EXPECT_EQ(0, st.pages_sent);
	EXPECT_EQ(0, st.zero_pages);
	EXPECT_EQ(0, st.xfer_round);
	EXPECT_EQ(HANDSHAKE_BYTES(st.nr_slots), st.bytes_sent);
	ASSERT_EQ(0, get_stats(m->dst->dev, &st));
	EXPECT_EQ(0, st.pages_received);
	EXPECT_EQ(0, st.zero_pages);
}

TEST_F_TIMEOUT(check, identity_differs_refused, 600)
{
	check_prepare(_metadata, self, 0);
	ASSERT_EQ(0, set_check(self->m.dev, uuid_a, NULL));
	ASSERT_EQ(0, set_check(self->m.dst->dev, uuid_b, self->offered));
	EXPECT_EQ(-ECONNREFUSED, mig_connect(&self->m, 0, 0, 0));
	mig_join(&self->m);
	EXPECT_EQ(-ECONNREFUSED, self->m.dst->setup_ret);
	expect_failed(_metadata, self->m.dev, KVMIG_FAIL_CHECK);
	expect_failed(_metadata, self->m.dst->dev, KVMIG_FAIL_CHECK);
	expect_refused_for(_metadata, &self->m, KVMIG_CHECK_E_UUID);
	expect_no_page(_metadata, &self->m);
	expect_source_runs(_metadata, &self->m.src);
}

/*
 * The guest sees the FPU (CPUID.1:EDX[0]) and the destination's KVM, as
 * its VMM reports it, does not: one error, naming that bit alone.
 */
TEST_F_TIMEOUT(check, feature_missing_at_destination_refused, 600)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvm_cpuid_entry2 *e;
	uint32_t nr, i;

	check_prepare(_metadata, self, 0);
	e = leaf(self->offered, 1, 0);
	ASSERT_NE(NULL, e);
	ASSERT_TRUE(e->edx & 1);
	e->edx &= ~1U;
	ASSERT_EQ(0, set_check(self->m.dst->dev, NULL, self->offered));
	EXPECT_EQ(-ECONNREFUSED, mig_connect(&self->m, 0, 0, 0));
	mig_join(&self->m);
	expect_failed(_metadata, self->m.dev, KVMIG_FAIL_CHECK);
	expect_failed(_metadata, self->m.dst->dev, KVMIG_FAIL_CHECK);
	nr = expect_findings(_metadata, &self->m, KVMIG_CHECK_REFUSED,
			     KVMIG_CHECK_E_CPUID, f);
	EXPECT_EQ(1, f[0].function);
	EXPECT_EQ(KVMIG_CPUID_EDX, f[0].reg);
	EXPECT_EQ(1, f[0].bits);
	for (i = 1; i < nr; i++)
		EXPECT_EQ(KVMIG_CHECK_WARNING, f[i].severity);
	expect_no_page(_metadata, &self->m);
	expect_source_runs(_metadata, &self->m.src);
}

/*
 * The source's VMM gave its guest a feature that this host's KVM does
 * not offer (the lowest clear bit of CPUID.7.0:EBX), and the destination
 * runs on the same KVM: refused, in a dry run.
 */
TEST_F_TIMEOUT(check, feature_added_at_source_refused, 600)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvm_cpuid_entry2 *e;
	uint32_t bit;

	e = leaf(self->guest, 7, 0);
	ASSERT_NE(NULL, e);
	ASSERT_NE(~0U, e->ebx);
	bit = 1U << __builtin_ctz(~e->ebx);
	e->ebx |= bit;
	check_prepare(_metadata, self, 0);
	ASSERT_EQ(0, set_check(self->m.dst->dev, NULL, self->offered));
	EXPECT_EQ(-ECONNREFUSED, dry_run(&self->m));
	mig_join(&self->m);
	EXPECT_EQ(-ECONNREFUSED, self->m.dst->setup_ret);
	expect_findings(_metadata, &self->m, KVMIG_CHECK_REFUSED,
			KVMIG_CHECK_E_CPUID, f);
	EXPECT_EQ(7, f[0].function);
	EXPECT_EQ(0, f[0].index);
	EXPECT_EQ(KVMIG_CPUID_EBX, f[0].reg);
	EXPECT_EQ(bit, f[0].bits);
	expect_no_page(_metadata, &self->m);
	expect_source_runs(_metadata, &self->m.src);
}

/* A dry run against a destination with two vCPUs for one. */
TEST_F_TIMEOUT(check, dry_run_refused_for_vcpus, 600)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvmig_stats st;

	check_prepare(_metadata, self, 2);
	ASSERT_EQ(0, set_check(self->m.dst->dev, NULL, self->offered));
	EXPECT_EQ(-ECONNREFUSED, dry_run(&self->m));
	mig_join(&self->m);
	EXPECT_EQ(-ECONNREFUSED, self->m.dst->setup_ret);
	expect_findings(_metadata, &self->m, KVMIG_CHECK_REFUSED,
			KVMIG_CHECK_E_VCPUS, f);
	EXPECT_EQ(1, f[0].source);
	EXPECT_EQ(2, f[0].dest);
	/* A dry run ends CHECKED either way, not FAILED. */
	ASSERT_EQ(0, get_stats(self->m.dev, &st));
	EXPECT_EQ(KVMIG_STATE_CHECKED, st.state);
	EXPECT_EQ(KVMIG_FAIL_NONE, st.fail_reason);
	ASSERT_EQ(0, get_stats(self->m.dst->dev, &st));
	EXPECT_EQ(KVMIG_STATE_CHECKED, st.state);
	expect_no_page(_metadata, &self->m);
	expect_source_runs(_metadata, &self->m.src);
}

/*
 * A dry run that passes sends no page and ends both sessions CHECKED; a
 * real migration then takes new sessions, on the same VMs.
 */
TEST_F_TIMEOUT(check, dry_run_then_migrate, 600)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct pollfd pfd = { .events = POLLIN };
	struct kvmig_round r = {};
	struct kvmig_check g = {};
	struct kvmig_stats st;

	check_prepare(_metadata, self, 0);
	ASSERT_EQ(0, set_check(self->m.dev, uuid_a, NULL));
	ASSERT_EQ(0, set_check(self->m.dst->dev, uuid_a, self->offered));
	ASSERT_EQ(0, dry_run(&self->m)) TH_LOG("%s", strerror(errno));
	mig_join(&self->m);
	EXPECT_EQ(0, self->m.dst->setup_ret);
	/* The destination's RECV finds no migration to receive. */
	EXPECT_EQ(-EBUSY, self->m.dst->recv_ret);
	expect_findings(_metadata, &self->m, KVMIG_CHECK_PASSED, 0, f);
	ASSERT_EQ(0, get_stats(self->m.dev, &st));
	EXPECT_EQ(KVMIG_STATE_CHECKED, st.state);
	/* Another fd reads the session by its id, as kvmigctl check does. */
	g.id = st.id;
	ASSERT_EQ(0, ioctl(self->m.dst->dev, KVMIG_GET_CHECK, &g));
	EXPECT_EQ(KVMIG_CHECK_PASSED, g.status);
	EXPECT_EQ(0, g.nr_findings);
	pfd.fd = self->m.dev;
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-EBUSY, set_check(self->m.dev, uuid_b, NULL));
	expect_no_page(_metadata, &self->m);
	expect_source_runs(_metadata, &self->m.src);
	migrate_again(_metadata, &self->m, VMM_DIRTY_RING);
}

/* Warnings are reported and the migration goes on to the end. */
TEST_F_TIMEOUT(check, warnings_do_not_block, 600)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvmig_round r = {};
	struct kvmig_final fin = {};
	uint32_t nr, i;

	check_prepare(_metadata, self, 0);
	/* An identity at the source only; no CPUID from the destination. */
	ASSERT_EQ(0, set_check(self->m.dev, uuid_a, NULL));
	ASSERT_EQ(0, mig_connect(&self->m, 0, 0, 0));
	nr = expect_findings(_metadata, &self->m, KVMIG_CHECK_WARNED,
			     KVMIG_CHECK_W_UUID, f);
	EXPECT_EQ(2, nr);
	for (i = 0; i < nr; i++)
		EXPECT_EQ(KVMIG_CHECK_WARNING, f[i].severity);
	EXPECT_EQ(1, f[0].source);
	EXPECT_EQ(0, f[0].dest);
	EXPECT_NE(NULL, find_code(f, nr, KVMIG_CHECK_W_NO_CPUID));
	do {
		ASSERT_EQ(0, ioctl(self->m.dev, KVMIG_XFER_ROUND, &r));
	} while (r.status == KVMIG_ROUND_SENT);
	ASSERT_EQ(0, ioctl(self->m.dev, KVMIG_XFER_FINAL, &fin));
	mig_join(&self->m);
	ASSERT_EQ(0, self->m.dst->recv_ret);
	expect_same_memory(_metadata, &self->m.src, &self->m.dst->vmm);
}

/* Every field of KVMIG_SET_CHECK and the dry-run flag, checked. */
TEST_F_TIMEOUT(check, calls_check_their_arguments, 300)
{
	struct kvmig_check_setup c = {};
	struct kvmig_xfer_setup st = {};
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvmig_check g = {};
	uint32_t nr;

	check_prepare(_metadata, self, 0);
	c.flags = KVMIG_CHECK_UUID;			/* all-zero identity */
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_SET_CHECK, &c));
	EXPECT_EQ(EINVAL, errno);
	c.flags = 0;
	c.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_SET_CHECK, &c));
	EXPECT_EQ(EINVAL, errno);
	/* A source's CPUID is its vCPUs', from KVM. */
	EXPECT_EQ(-EINVAL, set_check(self->m.dev, NULL, self->offered));
	self->offered->nent = KVMIG_MAX_CPUID + 1;
	EXPECT_EQ(-EINVAL, set_check(self->m.dst->dev, NULL, self->offered));
	self->offered->nent = 1;
	c = (struct kvmig_check_setup){ .flags = KVMIG_CHECK_CPUID,
					.nr_cpuid = 1, .cpuid_ptr = 8 };
	EXPECT_EQ(-1, ioctl(self->m.dst->dev, KVMIG_SET_CHECK, &c));
	EXPECT_EQ(EFAULT, errno);
	g.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_GET_CHECK, &g));
	EXPECT_EQ(EINVAL, errno);
	g = (struct kvmig_check){ .id = ~0ULL };	/* no such session */
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_GET_CHECK, &g));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(KVMIG_CHECK_NOT_RUN, get_check(self->m.dev, f, &nr));
	EXPECT_EQ(0, nr);
	/* The destination follows the source's CHECK: no dry run of its own. */
	st.sock_fd = self->m.dst->sock;
	st.flags = KVMIG_XFER_SETUP_DRY_RUN;
	EXPECT_EQ(-1, ioctl(self->m.dst->dev, KVMIG_XFER_SETUP, &st));
	EXPECT_EQ(EINVAL, errno);
	/* Nor a priority: the host's limits are the source's (KVMIG_F0_HOST). */
	st.flags = 0;
	st.priority = KVMIG_PRIORITY_HIGH;
	EXPECT_EQ(-1, ioctl(self->m.dst->dev, KVMIG_XFER_SETUP, &st));
	EXPECT_EQ(EINVAL, errno);
	/* At a source: only the two priorities, and pad 0. */
	st.sock_fd = self->m.sock;
	st.priority = KVMIG_PRIORITY_HIGH + 1;
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_XFER_SETUP, &st));
	EXPECT_EQ(EINVAL, errno);
	st.priority = KVMIG_PRIORITY_HIGH;
	st.pad = 1;
	EXPECT_EQ(-1, ioctl(self->m.dev, KVMIG_XFER_SETUP, &st));
	EXPECT_EQ(EINVAL, errno);
	/* Once the transfer exists, the settings are fixed. */
	ASSERT_EQ(0, mig_connect(&self->m, 0, 0, 0));
	EXPECT_EQ(-EBUSY, set_check(self->m.dev, uuid_a, NULL));
}

/* A destination whose memslots differ is refused before any page moves. */
FIXTURE(mismatch) {
	FIXTURE_DATA(mig) m;
};

FIXTURE_SETUP(mismatch)
{
	prepare_migration(_metadata, &self->m, VMM_DIRTY_BITMAP, SLOT_SIZE / 2);
}

FIXTURE_TEARDOWN(mismatch)
{
	mig_teardown(_metadata, &self->m, NULL);
}

TEST_F_TIMEOUT(mismatch, layout_refused, 600)
{
	struct kvmig_stats st;

	EXPECT_EQ(-EPROTO, mig_connect(&self->m, 0, 0, 0));
	mig_join(&self->m);
	EXPECT_EQ(-EPROTO, self->m.dst->setup_ret);
	expect_failed(_metadata, self->m.dev, KVMIG_FAIL_LAYOUT);
	expect_failed(_metadata, self->m.dst->dev, KVMIG_FAIL_LAYOUT);
	/* The pre-check names it: slot 1, the first data slot, differs. */
	expect_refused_for(_metadata, &self->m, KVMIG_CHECK_E_LAYOUT);
	ASSERT_EQ(0, get_stats(self->m.dev, &st));
	EXPECT_EQ(0, st.pages_sent);
	expect_source_runs(_metadata, &self->m.src);
}

/* rmmod cannot pull the module from under an open session. */
TEST(rmmod_while_open)
{
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	struct kvmig_stats st;

	if (dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, dev);
	EXPECT_EQ(-1, syscall(SYS_delete_module, "kvmig", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY)
		TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, get_stats(dev, &st));
	close(dev);
}

/* Transfer calls in the wrong state or with bad arguments. */
TEST(xfer_abi)
{
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	struct kvmig_xfer_setup su = { .sock_fd = 0,
				       .flags = (__u32)~KVMIG_XFER_SETUP_FLAGS };
	struct kvmig_round r = {};
	struct kvmig_final f = {};
	struct kvmig_recv rv = {};

	if (dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, dev);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.flags = 0;
	su.nr_streams = 1;	/* without KVMIG_XFER_SETUP_STREAMS */
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.nr_streams = 0;
	su.reserved = 1;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.reserved = 0;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_RECV, &rv));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_CANCEL));
	EXPECT_EQ(EBUSY, errno);
	f.state_len = STATE_MAX + 1;
	f.state_ptr = 8;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EINVAL, errno);
	rv.pad = 1;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_RECV, &rv));
	EXPECT_EQ(EINVAL, errno);
	close(dev);
}

/* A hand-made source that speaks the wire protocol, for malformed streams. */
struct raw_rec {
	uint16_t type, flags;
	uint32_t slot;
	uint64_t gfn;
	uint32_t npages, len;
};

/* The v4 HELLO. */
struct raw_hello {
	uint32_t magic;
	uint16_t version, page_shift;
	uint32_t nr_slots, flags;
	uint64_t guest_pages;
	uint32_t nr_streams, pad;
	uint64_t token;
};

/* The opening of each stream but the first. */
struct raw_stream {
	uint32_t magic;
	uint16_t version, index;
	uint64_t token;
};

#define RAW_TOKEN	0x1234567890abcdefULL
#define RAW_HELLO_CHECK	0x2	/* a CHECK follows the slots */

/* A memslot as the HELLO describes it. */
struct raw_slot {
	uint32_t id, flags;
	uint64_t base_gfn, npages;
};

/* A source's HELLO and its memslots, as they go on the wire. */
struct raw_opening {
	struct raw_hello h;
	struct raw_slot s[VMM_MAX_SLOTS + 1];
};

/* Fill @o for @vmm and @nr streams; the bytes that go on the wire. */
static size_t raw_opening(struct raw_opening *o, struct vmm *vmm,
			  unsigned int nr)
{
	unsigned int i;

	memset(o, 0, sizeof(*o));
	o->h = (struct raw_hello){ WIRE_MAGIC, WIRE_VERSION, 12,
				   vmm->cfg.nr_slots + 1, 0, 0, nr, 0,
				   RAW_TOKEN };
	o->s[0] = (struct raw_slot){ 0, KVM_MEM_READONLY, 0,
				     VMM_CTRL_SIZE / 4096 };
	o->h.guest_pages = VMM_CTRL_SIZE / 4096;
	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		o->s[i + 1].id = vmm->slots[i].id;
		o->s[i + 1].base_gfn = vmm->slots[i].gpa / 4096;
		o->s[i + 1].npages = vmm->slots[i].size / 4096;
		o->h.guest_pages += o->s[i + 1].npages;
	}
	return sizeof(o->h) + sizeof(o->s[0]) * o->h.nr_slots;
}

/*
 * A source's handshake on @nr streams @socks, by hand; returns the
 * destination's status, or -EIO.
 */
static int raw_handshake_streams(struct vmm *vmm, const int *socks,
				 unsigned int nr)
{
	struct raw_stream rs = { WIRE_MAGIC, WIRE_VERSION, 0, RAW_TOKEN };
	struct raw_opening o;
	size_t len = raw_opening(&o, vmm, nr);
	uint32_t reply[4];
	unsigned int i;

	if (write(socks[0], &o, len) != (ssize_t)len)
		return -EIO;
	for (i = 1; i < nr; i++) {
		rs.index = i;
		if (write(socks[i], &rs, sizeof(rs)) != sizeof(rs))
			return -EIO;
	}
	if (read(socks[0], reply, 16) != 16)
		return -EIO;
	return reply[1];
}

static int raw_handshake(struct vmm *vmm, int sock)
{
	return raw_handshake_streams(vmm, &sock, 1);
}

FIXTURE(raw) {
	struct dest *dst;
};

FIXTURE_SETUP(raw)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_BITMAP, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SLOT_SIZE,
	};
	int ret;

	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	ret = dest_init(self->dst, &cfg, 8192);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm or /dev/kvmig not present");
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(raw)
{
	dest_fini(self->dst);
	free(self->dst);
}

/* Records a bad source could send; each must be refused with -EPROTO. */
static const struct raw_rec bad_recs[] = {
	{ 1, 0, 1, 0x20000 + SLOT_PAGES, 1, 0 },	/* past the slot */
	{ 1, 0, 1, 0x20000 - 1, 1, 0 },			/* before it */
	{ 1, 0, 1, 0x20000 + SLOT_PAGES - 1, 2, 0 },	/* across its end */
	{ 1, 0, 2, 0x20000, 1, 0 },			/* no slot 2 */
	{ 1, 0, 1, 0xffffffffffffffffULL, 2, 0 },	/* wrapping gfn */
	{ 1, 0, 1, 0x20000, 1000, 0 },			/* too long a run */
	{ 2, 0, 1, 0x20000, (1U << 18) + 1, 0 },	/* too long a zero run */
	{ 2, 0, 1, 0x20000, SLOT_PAGES + 1, 0 },	/* zeros past the slot */
	{ 1, 1, 1, 0x20000, 1, 0 },			/* flags */
	{ 9, 0, 1, 0x20000, 1, 0 },			/* unknown type */
	{ 4, 0, 0, 0, 0, 0x7fffffff },			/* huge state */
	{ 5, 0, 0, 0, 0, 0 },				/* end, no state */
	{ 6, 0, 0, 0, 0, 0 },				/* commit before end */
	{ 7, 0, 0, 1, 0, 0 },				/* wait with a gfn */
};

TEST_F_TIMEOUT(raw, malformed_records_refused, 600)
{
	unsigned int i;
	int src;
	uint8_t junk[4096];

	memset(junk, 0x5a, sizeof(junk));
	for (i = 0; i < sizeof(bad_recs) / sizeof(bad_recs[0]); i++) {
		struct raw_rec rec = bad_recs[i];
		uint32_t reply[4];

		if (self->dst->dev >= 0)
			close(self->dst->dev);
		self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
		ASSERT_LE(0, self->dst->dev);
		ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
		ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL,
					    dest_thread, self->dst));
		ASSERT_EQ(0, raw_handshake(&self->dst->vmm, src));
		rec.slot = rec.slot == 1 ? self->dst->vmm.slots[0].id : rec.slot;
		ASSERT_EQ(sizeof(rec), write(src, &rec, sizeof(rec)));
		write(src, junk, sizeof(junk));
		pthread_join(self->dst->thread, NULL);
		EXPECT_EQ(-EPROTO, self->dst->recv_ret) TH_LOG("record %u", i);
		/* The destination says why before it goes. */
		EXPECT_EQ(16, read(src, reply, 16));
		EXPECT_EQ(3, reply[1]) TH_LOG("record %u", i);
		expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
		close(src);
		close(self->dst->sock);
		self->dst->sock = -1;
	}
	/* Nothing was written into the guest. */
	for (i = 0; i < SLOT_SIZE; i += 4096)
		ASSERT_EQ(0, self->dst->vmm.slots[0].hva[i]);
}

/*
 * WAIT (the source waits for its turn under its host's max_outgoing) is
 * taken before the first ROUND, and the destination says so in its
 * listing; after a ROUND it is a protocol error.
 */
TEST_F_TIMEOUT(raw, wait_after_round_refused, 600)
{
	const struct raw_rec wait = { 7, 0, 0, 0, 0, 0 };
	const struct raw_rec round0 = { 3, 0, 0, 0, 0, 0 };
	struct kvmig_session_info info[16];
	struct kvmig_list l = { .nr_sessions = 16,
				.sessions_ptr = (uintptr_t)info };
	struct kvmig_stats st = {};
	uint32_t reply[4], i, j;
	bool queued = false;
	int src;

	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	ASSERT_EQ(0, raw_handshake(&self->dst->vmm, src));
	ASSERT_EQ(sizeof(wait), write(src, &wait, sizeof(wait)));
	ASSERT_EQ(sizeof(wait), write(src, &wait, sizeof(wait)));
	/* Taken: the destination lists itself as queued at the source. */
	ASSERT_EQ(0, ioctl(self->dst->dev, KVMIG_GET_STATS, &st));
	for (i = 0; i < 600 && !queued; i++) {
		usleep(100000);
		l.nr_sessions = 16;
		ASSERT_EQ(0, ioctl(self->dst->dev, KVMIG_LIST_SESSIONS, &l));
		for (j = 0; j < l.nr_filled; j++)
			if (info[j].stats.id == st.id)
				queued = info[j].flags & KVMIG_SESSION_QUEUED;
	}
	EXPECT_TRUE(queued);
	ASSERT_EQ(sizeof(round0), write(src, &round0, sizeof(round0)));
	ASSERT_EQ(sizeof(wait), write(src, &wait, sizeof(wait)));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->recv_ret);
	EXPECT_EQ(16, read(src, reply, 16));
	EXPECT_EQ(3, reply[1]);	/* E_PROTO */
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
	close(src);
}

TEST_F_TIMEOUT(raw, bad_handshakes_refused, 600)
{
	static const uint32_t garbage[10] = { 0xdeadbeef, 1, 2, 3, 4, 5, 6,
					      7, 8, 9 };
	/* Version 1: a peer from before the two-phase commit. */
	uint32_t wrong_version[10] = { WIRE_MAGIC, 1 | (12 << 16), 3, 0, 0,
				       0, 1, 0, 0, 0 };
	int src;

	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	ASSERT_EQ(40, write(src, garbage, 40));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
	close(src);
	close(self->dst->sock);

	close(self->dst->dev);
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
	ASSERT_LE(0, self->dst->dev);
	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	ASSERT_EQ(40, write(src, wrong_version, 40));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PEER);
	close(src);
}

/*
 * The source VMM is killed in mid pre-copy: the destination fails. The
 * kill comes once the destination has taken pre-copy records in, so the
 * child is known to have got that far (a child that failed earlier would
 * also leave the destination with a reset connection).
 */
TEST_F_TIMEOUT(raw, source_vmm_killed, 600)
{
	struct kvmig_stats st;
	pid_t pid;
	int src, status, ret;

	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmm_config cfg = self->dst->vmm.cfg;
		struct vmm v;
		struct kvmig_round r = {};
		int dev;

		close(self->dst->sock);
		if (vmm_create(&v, &cfg))
			_exit(1);
		/* Contents to send, at 64 KiB/s: most of a minute. */
		memset(v.slots[0].hva, 0x77, v.slots[0].size);
		dev = source_session(v.vm, VMM_DIRTY_BITMAP);
		if (dev < 0 || setup(dev, src, 0, 0, 65536, 3000))
			_exit(2);
		ioctl(dev, KVMIG_XFER_ROUND, &r);	/* throttled: slow */
		_exit(3);
	}
	close(src);
	ret = wait_stats(self->dst->dev, &st, 120000, dest_has_records);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x", status);
	pthread_join(self->dst->thread, NULL);
	/* The child got as far as pre-copy: its handshake went through. */
	EXPECT_EQ(0, ret);
	EXPECT_EQ(KVMIG_STATE_RECEIVING, st.state);
	EXPECT_EQ(0, self->dst->setup_ret);
	EXPECT_EQ(-ECONNRESET, self->dst->recv_ret)
		TH_LOG("%s", strerror(-self->dst->recv_ret));
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
}

/* Byte streams with a deadline: a peer that never answers fails, not hangs. */
#define IO_WAIT_MS	60000

static int read_full(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t *b = buf;
	ssize_t n;

	while (len) {
		if (poll(&p, 1, IO_WAIT_MS) != 1)
			return -ETIME;
		n = read(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		b += n;
		len -= n;
	}
	return 0;
}

static int skip_bytes(int fd, uint64_t len)
{
	static __thread uint8_t buf[65536];
	size_t n;
	int ret;

	for (; len; len -= n) {
		n = len < sizeof(buf) ? len : sizeof(buf);
		ret = read_full(fd, buf, n);
		if (ret)
			return ret;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	ssize_t n;

	while (len) {
		n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		b += n;
		len -= n;
	}
	return 0;
}

/*
 * A hand-made destination: it accepts any handshake, reads the pre-copy
 * stream, and answers the source's END as told, to see what a source does
 * with an answer it must not trust.
 */
enum raw_answer {
	RAW_SILENT,		/* never gets to answer */
	RAW_BAD_MAGIC,		/* a reply that is no reply */
	RAW_WRONG_PAGES,	/* "everything arrived", with the wrong count */
};

struct raw_dest {
	int sock;
	enum raw_answer answer;
	pthread_t thread;
	const char *err;	/* what went wrong, or NULL */
	int cut;		/* how the stream ended before END */
	atomic_ulong recs;	/* ROUND, PAGES and ZERO records */
	uint64_t pages;		/* in PAGES records */
	bool end_seen;
	size_t after_end;	/* bytes the source sent after END */
	bool commit_seen;	/* a COMMIT record among them */
};

static void *raw_dest_thread(void *arg)
{
	struct raw_dest *rd = arg;
	struct raw_hello h;
	/* A REPLY (OK), then FINDINGS: none. */
	uint32_t reply[6] = { WIRE_MAGIC, 0, 0, 0, WIRE_MAGIC, 0 };
	uint32_t check[12];
	struct raw_rec rec;
	uint8_t buf[4096];
	ssize_t n;
	int ret;

	/* HELLO, slots, CHECK (nr_features last), features. */
	if (read_full(rd->sock, &h, sizeof(h)) || h.magic != WIRE_MAGIC ||
	    h.nr_slots > 512 || !(h.flags & RAW_HELLO_CHECK) ||
	    skip_bytes(rd->sock, 24ULL * h.nr_slots) ||
	    read_full(rd->sock, check, sizeof(check)) || check[11] > 32 ||
	    skip_bytes(rd->sock, 16ULL * check[11]) ||
	    write_full(rd->sock, reply, sizeof(reply))) {
		rd->err = "handshake";
		return NULL;
	}
	while (!rd->end_seen) {
		ret = read_full(rd->sock, &rec, sizeof(rec));
		if (ret) {
			rd->cut = ret;
			rd->err = "no END";
			return NULL;
		}
		switch (rec.type) {
		case 1:		/* PAGES */
			rd->pages += rec.npages;
			ret = skip_bytes(rd->sock, rec.npages * 4096ULL);
			atomic_fetch_add(&rd->recs, 1);
			break;
		case 2:		/* ZERO */
		case 3:		/* ROUND */
			atomic_fetch_add(&rd->recs, 1);
			break;
		case 4:		/* STATE */
			ret = skip_bytes(rd->sock, rec.len);
			break;
		case 5:		/* END */
			rd->end_seen = true;
			break;
		default:
			rd->err = "unexpected record";
			return NULL;
		}
		if (ret) {
			rd->err = "stream cut in a record";
			return NULL;
		}
	}
	if (rd->answer == RAW_BAD_MAGIC)
		reply[0] = 0xdeadbeef;
	reply[2] = rd->pages;
	if (rd->answer == RAW_WRONG_PAGES)
		reply[2] = rd->pages + 1;
	if (write_full(rd->sock, reply, sizeof(reply))) {
		rd->err = "could not answer END";
		return NULL;
	}
	/* After that answer the source must send nothing: read to the end. */
	for (;;) {
		struct pollfd p = { .fd = rd->sock, .events = POLLIN };

		if (poll(&p, 1, IO_WAIT_MS) != 1) {
			rd->err = "the connection stayed open";
			return NULL;
		}
		n = read(rd->sock, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (!rd->after_end && n >= 2 && buf[0] == 6 && !buf[1])
			rd->commit_seen = true;
		rd->after_end += n;
	}
	return NULL;
}

/*
 * A destination that answers END with a reply it cannot mean: the source
 * must fail before COMMIT (not DONE, and not IN_DOUBT, since it never
 * committed), send nothing more, and its VM runs on.
 */
static void hostile_prepared(struct __test_metadata *_metadata,
			     FIXTURE_DATA(mig) *self, enum raw_answer answer)
{
	struct raw_dest rd = { .sock = self->dst->sock, .answer = answer };
	char state[64] = "vcpu state";
	struct kvmig_final f = { .state_ptr = (uintptr_t)state,
				 .state_len = sizeof(state) };
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, pthread_create(&rd.thread, NULL, raw_dest_thread, &rd));
	ASSERT_EQ(0, setup(self->dev, self->sock, 0, 0, 0, 3000));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EPROTO, errno) TH_LOG("final: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_TRUE(st.fail_reason == KVMIG_FAIL_PROTOCOL ||
		    st.fail_reason == KVMIG_FAIL_PEER)
		TH_LOG("fail reason %u", st.fail_reason);
	/* Closing the source's ends lets the peer read to the end. */
	close(self->dev);
	self->dev = -1;
	close(self->sock);
	self->sock = -1;
	pthread_join(rd.thread, NULL);
	EXPECT_EQ(NULL, rd.err) TH_LOG("raw destination: %s", rd.err);
	EXPECT_TRUE(rd.end_seen);
	EXPECT_FALSE(rd.commit_seen);
	EXPECT_EQ(0, rd.after_end);
	expect_source_runs(_metadata, &self->src);
}

TEST_F_TIMEOUT(mig, prepared_with_bad_magic, 600)
{
	hostile_prepared(_metadata, self, RAW_BAD_MAGIC);
}

TEST_F_TIMEOUT(mig, prepared_with_wrong_page_count, 600)
{
	hostile_prepared(_metadata, self, RAW_WRONG_PAGES);
}

/* Is session @id among those @dev can list? 1, 0, or -errno. */
static int listed(int dev, uint64_t id)
{
	static struct kvmig_session_info info[KVMIG_LIST_MAX];
	struct kvmig_list l = {
		.nr_sessions = KVMIG_LIST_MAX,
		.sessions_ptr = (uintptr_t)info,
	};
	uint32_t i;

	if (ioctl(dev, KVMIG_LIST_SESSIONS, &l))
		return -errno;
	for (i = 0; i < l.nr_filled; i++)
		if (info[i].stats.id == id)
			return 1;
	return 0;
}

/* Tests with a VMM in a child process; @dev is a session of the test's. */
FIXTURE(child) {
	int dev;
};

FIXTURE_SETUP(child)
{
	self->dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("/dev/kvmig: %s", strerror(errno));
}

FIXTURE_TEARDOWN(child)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * A source VMM goes away in pre-copy, killed in the middle of a round or
 * exiting between rounds without closing anything: its session must go
 * with it (a worker that kept the session, its VM or its socket alive
 * would leak all of them).
 */
static void vmm_dies(struct __test_metadata *_metadata, int dev, bool killed)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_BITMAP, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SLOT_SIZE,
	};
	struct raw_dest rd = { .answer = RAW_SILENT };
	int up[2], down[2], src, status, ret;
	uint64_t id = 0, end;
	pid_t pid;

	if (geteuid())
		SKIP(return, "only root lists other processes' sessions");
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	ASSERT_EQ(0, tcp_pair(&src, &rd.sock));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmig_round r = {};
		struct kvmig_stats st;
		struct vmm v;
		char c;
		int s;

		close(up[0]);
		close(down[1]);
		close(rd.sock);
		if (vmm_create(&v, &cfg))
			_exit(1);
		memset(v.slots[0].hva, 0x77, SLOT_SIZE);
		s = source_session(v.vm, cfg.dirty);
		if (s < 0 || get_stats(s, &st) ||
		    write(up[1], &st.id, sizeof(st.id)) != sizeof(st.id))
			_exit(2);
		/* Killed: at 64 KiB/s, round 0 takes most of a minute. */
		if (setup(s, src, 0, 0, killed ? 65536 : 0, 10000))
			_exit(3);
		if (ioctl(s, KVMIG_XFER_ROUND, &r))
			_exit(4);
		/* Between rounds: exit without closing anything. */
		if (read(down[0], &c, 1) != 1)
			_exit(5);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	close(src);
	ASSERT_EQ(0, pthread_create(&rd.thread, NULL, raw_dest_thread, &rd));
	ASSERT_EQ(sizeof(id), read(up[0], &id, sizeof(id)));
	/* Pre-copy reached: records arrive. */
	end = now_ns() + IO_WAIT_MS * 1000000ULL;
	while (!atomic_load(&rd.recs) && now_ns() < end)
		usleep(10000);
	EXPECT_LT(0, atomic_load(&rd.recs));
	EXPECT_EQ(1, listed(dev, id));

	if (killed)
		kill(pid, SIGKILL);
	else
		ASSERT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	if (killed) {
		EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x", status);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("status %#x", status);
	}

	/* Its session leaves the list soon after: poll with a deadline. */
	end = now_ns() + IO_WAIT_MS * 1000000ULL;
	while ((ret = listed(dev, id)) == 1 && now_ns() < end)
		usleep(20000);
	EXPECT_EQ(0, ret) TH_LOG("session %llu still listed",
				 (unsigned long long)id);
	/* And so was its socket: the peer read to the end, not a timeout. */
	pthread_join(rd.thread, NULL);
	EXPECT_TRUE(rd.cut == -EPIPE || rd.cut == -ECONNRESET)
		TH_LOG("peer: %s", strerror(-rd.cut));
	close(rd.sock);
	close(up[0]);
	close(down[1]);
}

TEST_F_TIMEOUT(child, session_gone_after_vmm_killed, 600)
{
	vmm_dies(_metadata, self->dev, true);
}

TEST_F_TIMEOUT(child, session_gone_after_vmm_exits, 600)
{
	vmm_dies(_metadata, self->dev, false);
}

/* What the source VMM in a child tells the test, after its migration. */
struct child_report {
	int ret[8];		/* of each ROUND */
	uint64_t round[8];
	uint32_t status[8];
	unsigned int nr;	/* ROUND calls */
	unsigned int eintr;	/* calls that returned -EINTR */
	int final_ret;
};

/*
 * The source VMM of vmm_stopped_mid_round, in the child: it migrates to
 * @sock, says 'S' before round 0 and 'E' after it on @up, then sends its
 * report and all of its guest memory there.
 */
static void
stopped_source(int sock, int up, const struct vmm_config *cfg)
{
	struct child_report rep = {};
	char state[64] = "vcpu state";
	struct kvmig_final f = { .state_ptr = (uintptr_t)state,
				 .state_len = sizeof(state) };
	struct kvmig_round r;
	unsigned int i;
	struct vmm v;
	int dev;

	if (vmm_create(&v, cfg) ||
	    vmm_load(&v, guest_fill, guest_fill_end - guest_fill))
		_exit(1);
	/* 642 pages with contents: 2.5 s of round 0 at 1 MiB/s. */
	fill(&v, 0, 0, SLOT_PAGES, 1, 0x1111);
	if (vmm_run(&v))
		_exit(2);
	fill(&v, 1, 0, SLOT_PAGES / 4, 1, 0x2222);
	if (vmm_run(&v))
		_exit(2);
	dev = source_session(v.vm, cfg->dirty);
	if (dev < 0 || setup(dev, sock, 1, 2, 1 << 20, 10000))
		_exit(3);
	if (write(up, "S", 1) != 1)
		_exit(4);
	for (i = 0; i < 8; i++) {
		memset(&r, 0, sizeof(r));
		rep.ret[i] = xfer_call(dev, KVMIG_XFER_ROUND, &r, &rep.eintr);
		rep.round[i] = r.round;
		rep.status[i] = r.status;
		rep.nr++;
		if (!i && write(up, "E", 1) != 1)
			_exit(4);
		if (rep.ret[i] || r.status != KVMIG_ROUND_SENT)
			break;
		fill(&v, 1, 3 * i, 50, 7, 0x3333 + i);
		if (mark_mbox(dev) || vmm_run(&v))
			_exit(5);
	}
	rep.final_ret = xfer_call(dev, KVMIG_XFER_FINAL, &f, &rep.eintr);
	if (write_full(up, &rep, sizeof(rep)) ||
	    write_full(up, v.ctrl, VMM_CTRL_SIZE))
		_exit(6);
	for (i = 0; i < v.cfg.nr_slots; i++)
		if (write_full(up, v.slots[i].hva, v.slots[i].size))
			_exit(6);
	_exit(0);
}

/* Read @len bytes of the child's memory and compare them with @mem. */
static bool same_as_read(int fd, const void *mem, size_t len)
{
	void *buf = malloc(len);
	bool same;

	same = buf && !read_full(fd, buf, len) && !memcmp(buf, mem, len);
	free(buf);
	return same;
}

static bool dest_has_pages(const struct kvmig_stats *st)
{
	return st->pages_received || st->state == KVMIG_STATE_FAILED;
}

/* Round 0 of stopped_source(): slot 0, a quarter of slot 1, code, mailbox. */
#define STOPPED_ROUND_0	(SLOT_PAGES + SLOT_PAGES / 4 + 2)
/* Socket buffers of 64 KiB: pages in flight, at most, with some slack. */
#define STOPPED_BUF	65536
#define STOPPED_SLACK	128

/*
 * The source VMM process is stopped (SIGSTOP) in the middle of a round
 * and continued (SIGCONT): the migration goes on as if nothing happened.
 * Small socket buffers keep the round from being all in flight already:
 * the old module ran the round in the VMM's own ioctl, which the pending
 * stop signal broke off as soon as a send had to wait: FAILED.
 */
TEST_F_TIMEOUT(child, vmm_stopped_mid_round, 600)
{
	struct vmm_config cfg = {
		.dirty = VMM_DIRTY_RING, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SLOT_SIZE,
	};
	struct pollfd pfd;
	struct kvmig_stats st, st2;
	struct child_report rep;
	struct dest *d = calloc(1, sizeof(*d));
	unsigned int i;
	int up[2], src, status, ret;
	char c;
	pid_t pid;

	ASSERT_NE(NULL, d);
	ret = dest_init(d, &cfg, 8192);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, tcp_pair_buf(&src, &d->sock, STOPPED_BUF));
	d->io_ms = 30000;	/* the source may be stopped for a while */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(up[0]);
		close(d->sock);
		stopped_source(src, up[1], &cfg);
	}
	close(up[1]);
	close(src);
	ASSERT_EQ(0, pthread_create(&d->thread, NULL, dest_thread, d));
	ASSERT_EQ(1, read(up[0], &c, 1));
	ASSERT_EQ('S', c);
	/* Round 0 is sending... */
	ASSERT_EQ(0, wait_stats(d->dev, &st, IO_WAIT_MS, dest_has_pages));
	ASSERT_EQ(KVMIG_STATE_RECEIVING, st.state);
	/* From the stop to SIGCONT, nothing may end the test early. */
	EXPECT_EQ(0, kill(pid, SIGSTOP));
	EXPECT_EQ(pid, waitpid(pid, &status, WUNTRACED));
	EXPECT_TRUE(WIFSTOPPED(status)) TH_LOG("status %#x", status);
	/*
	 * ...and far from done when the stop came: the destination had not
	 * had most of it, and the rest cannot have been in flight.
	 */
	pfd = (struct pollfd){ .fd = up[0], .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(0, get_stats(d->dev, &st));
	EXPECT_GT(STOPPED_ROUND_0 - STOPPED_SLACK, st.pages_received);
	/* Stopped for a while; the transfer's own thread is not the VMM's. */
	usleep(300000);
	EXPECT_EQ(0, get_stats(d->dev, &st2));
	TH_LOG("while the VMM was stopped for 300 ms, %llu pages arrived",
	       (unsigned long long)(st2.pages_received - st.pages_received));
	ASSERT_EQ(0, kill(pid, SIGCONT));

	ASSERT_EQ(0, read_full(up[0], &c, 1));
	EXPECT_EQ('E', c);
	ASSERT_EQ(0, read_full(up[0], &rep, sizeof(rep)));
	EXPECT_TRUE(same_as_read(up[0], d->vmm.ctrl, VMM_CTRL_SIZE));
	for (i = 0; i < cfg.nr_slots; i++)
		EXPECT_TRUE(same_as_read(up[0], d->vmm.slots[i].hva,
					 SLOT_SIZE)) TH_LOG("slot %u", i);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child status %#x", status);
	pthread_join(d->thread, NULL);
	EXPECT_EQ(0, d->recv_ret) TH_LOG("%s", strerror(-d->recv_ret));

	/* Rounds 0 and 1, then max_rounds; none skipped, none twice. */
	EXPECT_EQ(3, rep.nr);
	for (i = 0; i < rep.nr && i < 8; i++) {
		EXPECT_EQ(0, rep.ret[i]) TH_LOG("round %u: %s", i,
						strerror(-rep.ret[i]));
		EXPECT_EQ(i, rep.round[i]);
	}
	EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, rep.status[2]);
	EXPECT_EQ(0, rep.final_ret) TH_LOG("final: %s",
					   strerror(-rep.final_ret));
	/* A stop without a handler restarts the call: no -EINTR seen. */
	EXPECT_EQ(0, rep.eintr);
	close(up[0]);
	dest_fini(d);
	free(d);
}

/*
 * A signal handler fires every 2 ms in the thread that calls
 * KVMIG_XFER_ROUND and _FINAL. Without SA_RESTART each interrupted call
 * returns -EINTR and is made again, and joins the work it left; with
 * SA_RESTART the kernel restarts it. Either way every round runs once,
 * in order, and the migration completes. The old module ran the round in
 * the caller's ioctl: a signal broke off a waiting send or receive and
 * the session FAILED.
 */
static atomic_ulong sigs_caught;

static void on_sigusr1(int sig)
{
	atomic_fetch_add(&sigs_caught, 1);
}

struct storm {
	pthread_t target, thread;
	atomic_bool stop;
};

static void *storm_thread(void *arg)
{
	struct storm *s = arg;
	struct timespec ts = { .tv_nsec = 2000000 };

	while (!atomic_load(&s->stop)) {
		pthread_kill(s->target, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

FIXTURE(sig) {
	FIXTURE_DATA(mig) m;
};

FIXTURE_VARIANT(sig) {
	bool restart;
};

FIXTURE_VARIANT_ADD(sig, eintr) {
	.restart = false,
};

FIXTURE_VARIANT_ADD(sig, sa_restart) {
	.restart = true,
};

FIXTURE_SETUP(sig)
{
	prepare_migration(_metadata, &self->m, VMM_DIRTY_RING, 0);
}

FIXTURE_TEARDOWN(sig)
{
	mig_teardown(_metadata, &self->m, NULL);
}

TEST_F_TIMEOUT(sig, rounds_under_signals, 600)
{
	FIXTURE_DATA(mig) *m = &self->m;
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct storm storm = { .target = pthread_self() };
	char state[5000];
	struct kvmig_final f = { .state_ptr = (uintptr_t)state,
				 .state_len = sizeof(state) };
	struct kvmig_round r;
	struct kvmig_stats st;
	unsigned int i, eintr = 0, sent = 0;

	for (i = 0; i < sizeof(state); i++)
		state[i] = i * 13;
	sa.sa_flags = variant->restart ? SA_RESTART : 0;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	/* 1 MiB/s: each round is long enough to be interrupted often. */
	ASSERT_EQ(0, mig_connect(m, 1, 3, 1 << 20));
	ASSERT_EQ(0, pthread_create(&storm.thread, NULL, storm_thread, &storm));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, xfer_call(m->dev, KVMIG_XFER_ROUND, &r, &eintr))
			TH_LOG("round %u: %s", i, strerror(errno));
		EXPECT_EQ(i, r.round);
		if (r.status != KVMIG_ROUND_SENT)
			break;
		sent++;
		fill(&m->src, i % 2, 5 * i, 100, 3, 0x9000 + i);
		ASSERT_EQ(0, mark_mbox(m->dev));
		ASSERT_EQ(0, vmm_run(&m->src));
	}
	EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, r.status);
	EXPECT_EQ(3, sent);
	ASSERT_EQ(0, xfer_call(m->dev, KVMIG_XFER_FINAL, &f, &eintr))
		TH_LOG("final: %s", strerror(errno));
	atomic_store(&storm.stop, true);
	pthread_join(storm.thread, NULL);

	mig_join(m);
	ASSERT_EQ(0, m->dst->recv_ret) TH_LOG("%s",
					      strerror(-m->dst->recv_ret));
	EXPECT_EQ(sizeof(state), m->dst->r.state_len);
	EXPECT_EQ(0, memcmp(state, m->dst->state, sizeof(state)));
	expect_same_memory(_metadata, &m->src, &m->dst->vmm);
	ASSERT_EQ(0, get_stats(m->dev, &st));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	EXPECT_EQ(sent, st.xfer_round);
	TH_LOG("%lu signals caught, %u calls interrupted, destination counted %llu rounds",
	       atomic_load(&sigs_caught), eintr,
	       (unsigned long long)m->dst->r.rounds);
	EXPECT_LT(0, atomic_load(&sigs_caught));
	if (variant->restart) {
		EXPECT_EQ(0, eintr);
	} else {
		EXPECT_LT(0, eintr);	/* the signals did reach the calls */
	}
}

/*
 * Dirty rings smaller than what the guest dirties in one round: three
 * vCPUs each sweep their own 2 MiB memslot without rest, faster than a
 * throttled round sends, so their rings fill while rounds run. Each
 * vCPU thread answers KVM_EXIT_DIRTY_RING_FULL with KVMIG_DIRTY_HARVEST,
 * as a VMM does; that must succeed during pre-copy, also while a round
 * runs in another thread (the old module held the session lock for the
 * whole round, and then refused the harvest with -EBUSY: the vCPU could
 * not go on). Then switchover, and every page must have arrived.
 */
#define RING_VCPUS	3
#define STALL_CAP	65536

struct ring_ctx {
	int dev;
	atomic_bool precopy, in_round;
	atomic_ulong harvests, in_precopy, during_round, failed;
	atomic_int first_err;
};

static int ring_full_harvest(struct vmm *vmm, void *arg)
{
	struct ring_ctx *c = arg;
	bool round = atomic_load(&c->in_round);
	bool precopy = atomic_load(&c->precopy);
	struct kvmig_harvest h = {};
	int ret, zero = 0;

	ret = ioctl(c->dev, KVMIG_DIRTY_HARVEST, &h) ? -errno : 0;
	atomic_fetch_add(&c->harvests, 1);
	if (precopy)
		atomic_fetch_add(&c->in_precopy, 1);
	if (round)
		atomic_fetch_add(&c->during_round, 1);
	if (ret) {
		atomic_fetch_add(&c->failed, 1);
		atomic_compare_exchange_strong(&c->first_err, &zero, ret);
	}
	return ret;
}

FIXTURE(rings) {
	struct vmm src;
	struct dest *dst;
	int dev, sock;
	struct ring_ctx ctx;
	pthread_t guest;
	bool guest_started, dst_started;
	int guest_err;
	uint64_t *stall;
	uint64_t slot_size;
};

FIXTURE_VARIANT(rings) {
	uint32_t entries;
	bool full_expected;	/* soft limit below a vCPU's 512 pages */
};

/* KVM's smallest ring on x86 is one page; 64 entries are reserved. */
FIXTURE_VARIANT_ADD(rings, entries_256) {
	.entries = 256, .full_expected = true,
};

FIXTURE_VARIANT_ADD(rings, entries_512) {
	.entries = 512, .full_expected = true,
};

FIXTURE_VARIANT_ADD(rings, entries_4096) {
	.entries = 4096, .full_expected = false,
};

static void *ring_guest(void *arg)
{
	FIXTURE_DATA(rings) *self = arg;

	self->guest_err = vmm_run(&self->src);
	return NULL;
}

/* Tell every vCPU to stop after its pass; 0 or the guest's error. */
static int ring_guest_stop(FIXTURE_DATA(rings) *self)
{
	unsigned int v;

	if (!self->guest_started)
		return 0;
	for (v = 0; v < RING_VCPUS; v++)
		__atomic_store_n((uint32_t *)vmm_mbox(&self->src, v) + 2, 1,
				 __ATOMIC_RELEASE);
	pthread_join(self->guest, NULL);
	self->guest_started = false;
	return self->guest_err;
}

/*
 * The source, its session and a destination: vCPU v sweeps memslot v. In
 * bitmap mode (@mode) there are no rings, and @entries is unused.
 */
static void ring_src_setup(struct __test_metadata *_metadata,
			FIXTURE_DATA(rings) *self, enum vmm_dirty mode,
			uint32_t entries, uint64_t slot_size)
{
	struct vmm_config cfg = {
		.dirty = mode, .nr_vcpus = RING_VCPUS,
		.nr_slots = RING_VCPUS, .slot_size = slot_size,
	};
	unsigned int v;
	int ret;

	if (mode == VMM_DIRTY_RING)
		cfg.ring_bytes = entries * sizeof(struct kvm_dirty_gfn);
	self->slot_size = slot_size;

	self->dev = self->sock = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	self->stall = calloc(STALL_CAP, sizeof(*self->stall));
	ASSERT_TRUE(self->dst && self->stall);
	self->dst->dev = self->dst->sock = -1;
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	if (ret == -EINVAL)	/* e.g. with PML, 576 entries are reserved */
		SKIP(return, "KVM refuses a ring of %u entries", entries);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_sweep,
			      guest_sweep_end - guest_sweep));
	for (v = 0; v < RING_VCPUS; v++) {
		uint32_t *m = vmm_mbox(&self->src, v);

		m[0] = self->src.slots[v].gpa;
		m[1] = slot_size / 4096;
		m[2] = 0;
	}
	self->dev = source_session(self->src.vm, mode);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("%s", strerror(-self->dev));
	ASSERT_EQ(0, dest_init(self->dst, &cfg, 8192));
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst->sock));
	if (mode != VMM_DIRTY_RING)
		return;
	self->ctx.dev = self->dev;
	self->src.ring_full = ring_full_harvest;
	self->src.ring_full_arg = &self->ctx;
	self->src.ring_stall_ns = self->stall;
	self->src.ring_stall_cap = STALL_CAP;
}

FIXTURE_SETUP(rings)
{
	ring_src_setup(_metadata, self, VMM_DIRTY_RING, variant->entries,
		       SLOT_SIZE);
}

static void ring_src_teardown(FIXTURE_DATA(rings) *self)
{
	/* Its sleeps would slow the stop; it reads the session's stats. */
	vmm_throttle_stop(&self->src);
	ring_guest_stop(self);
	if (self->dst_started) {
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst->thread, NULL);
	}
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	if (self->dst) {
		dest_fini(self->dst);
		free(self->dst);
	}
	vmm_destroy(&self->src);
	free(self->stall);
}

FIXTURE_TEARDOWN(rings)
{
	ring_src_teardown(self);
}

/* The guest's passes so far: vCPU @v's stamp in the last page of its slot. */
static uint32_t ring_passes(FIXTURE_DATA(rings) *self, unsigned int v)
{
	return __atomic_load_n((uint32_t *)(self->src.slots[v].hva +
					    self->slot_size - 4096),
			       __ATOMIC_RELAXED);
}

/* Wait until every vCPU has made @n passes; its time, or 0 on timeout. */
static uint64_t ring_wait_passes(FIXTURE_DATA(rings) *self, uint32_t n)
{
	uint64_t t0 = now_ns(), end = t0 + IO_WAIT_MS * 1000000ULL;
	unsigned int v;

	for (v = 0; v < RING_VCPUS; v++) {
		while (ring_passes(self, v) < n) {
			if (now_ns() > end || !self->guest_started)
				return 0;
			usleep(1000);
		}
	}
	return now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Start the guest and measure, once it is past its first pass, the pages
 * per second it writes (under nested TCG a pass takes a while); 0 if it
 * does not make its passes.
 */
static uint64_t ring_guest_rate(FIXTURE_DATA(rings) *self)
{
	uint64_t t0, pages = RING_VCPUS * self->slot_size / 4096;

	if (pthread_create(&self->guest, NULL, ring_guest, self))
		return 0;
	self->guest_started = true;
	if (!ring_wait_passes(self, 2))
		return 0;
	t0 = now_ns();
	if (!ring_wait_passes(self, 4))
		return 0;
	return pages * 1000000000ULL * 2 / (now_ns() - t0 ?: 1);
}

/*
 * Bitmap mode: once a page is dirty the guest writes it again without a
 * fault or a log entry, so its passes say nothing of how fast it dirties
 * memory. Measure that instead: harvest through the session (which
 * write-protects every page again, as each round does) and wait until
 * every vCPU has made two more passes, so has dirtied each of its pages
 * again; three times. Pages per second, or 0 if the guest stalls.
 */
static uint64_t bitmap_guest_rate(FIXTURE_DATA(rings) *self)
{
	uint64_t t0, end, pages = RING_VCPUS * self->slot_size / 4096;
	uint32_t from[RING_VCPUS];
	struct kvmig_harvest h;
	unsigned int i, v;

	if (pthread_create(&self->guest, NULL, ring_guest, self))
		return 0;
	self->guest_started = true;
	if (!ring_wait_passes(self, 2))
		return 0;
	t0 = now_ns();
	end = t0 + IO_WAIT_MS * 1000000ULL;
	for (i = 0; i < 3; i++) {
		memset(&h, 0, sizeof(h));
		if (ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h))
			return 0;
		for (v = 0; v < RING_VCPUS; v++)
			from[v] = ring_passes(self, v);
		for (v = 0; v < RING_VCPUS; v++) {
			while (ring_passes(self, v) - from[v] < 2) {
				if (now_ns() > end)
					return 0;
				usleep(1000);
			}
		}
	}
	return pages * 1000000000ULL * 3 / (now_ns() - t0 ?: 1);
}

/* Stop the guest, switch over, and compare both VMs' memory. */
static void ring_switchover(struct __test_metadata *_metadata,
			    FIXTURE_DATA(rings) *self, struct kvmig_final *f)
{
	unsigned int i;

	/* Pause the vCPUs; the VMM wrote the stop flags itself. */
	for (i = 0; i < RING_VCPUS; i++)
		((uint32_t *)vmm_mbox(&self->src, i))[2] = 1;
	ASSERT_EQ(0, mark_mboxes(self->dev, RING_VCPUS));
	EXPECT_EQ(0, ring_guest_stop(self))
		TH_LOG("a vCPU stopped on an error: %s",
		       strerror(-self->guest_err));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, f))
		TH_LOG("final: %s", strerror(errno));
	pthread_join(self->dst->thread, NULL);
	self->dst_started = false;
	ASSERT_EQ(0, self->dst->recv_ret) TH_LOG("%s",
						 strerror(-self->dst->recv_ret));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
}

TEST_F_TIMEOUT(rings, harvest_while_round_runs, 600)
{
	char state[256] = "three vCPUs";
	struct kvmig_final f = { .state_ptr = (uintptr_t)state,
				 .state_len = sizeof(state) };
	struct ring_ctx *c = &self->ctx;
	uint64_t pass_ns, rate, bandwidth;
	struct kvmig_round r;
	unsigned long exits, n;
	unsigned int i;
	int ret;

	/*
	 * Cap the bandwidth at half of the rate at which the guest dirties
	 * memory. So the guest dirties faster than a round sends, whatever
	 * the machine, and every round takes a few passes' time: enough for
	 * the small rings to fill in it.
	 */
	rate = ring_guest_rate(self);
	ASSERT_LT(0, rate);
	pass_ns = RING_VCPUS * SLOT_PAGES * 1000000000ULL / rate;
	bandwidth = rate * 4096 / 2;
	if (bandwidth > 8 << 20)
		bandwidth = 8 << 20;
	if (bandwidth < 512 << 10)
		bandwidth = 512 << 10;
	/* (A ring that never fills is never reaped: no faults, fast passes.) */
	ksft_print_msg("ring of %u entries: a pass over 512 pages takes %llu us, the guest writes %llu pages/s; bandwidth %llu KiB/s\n",
		       variant->entries, (unsigned long long)pass_ns / 1000,
		       (unsigned long long)rate,
		       (unsigned long long)bandwidth >> 10);

	/* Stopping the guest takes a pass: the destination must wait. */
	self->dst->io_ms = 60000;
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	self->dst_started = true;
	atomic_store(&c->precopy, true);
	ASSERT_EQ(0, setup(self->dev, self->sock, 0, 3, bandwidth, 60000));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		atomic_store(&c->in_round, true);
		ret = ioctl(self->dev, KVMIG_XFER_ROUND, &r) ? -errno : 0;
		atomic_store(&c->in_round, false);
		ASSERT_EQ(0, ret) TH_LOG("round %u: %s", i, strerror(-ret));
		EXPECT_EQ(i, r.round);
		if (r.status != KVMIG_ROUND_SENT)
			break;
	}
	ksft_print_msg("ring of %u entries: pre-copy ended in round %u with status %u, %llu pages left\n",
		       variant->entries, i, r.status,
		       (unsigned long long)r.remaining);

	ring_switchover(_metadata, self, &f);

	exits = self->src.ring_full_exits;
	EXPECT_EQ(0, atomic_load(&c->failed))
		TH_LOG("%lu of %lu harvests failed, the first with %s",
		       atomic_load(&c->failed), atomic_load(&c->harvests),
		       strerror(-atomic_load(&c->first_err)));
	if (variant->full_expected) {
		/* The test reached the case it is about. */
		EXPECT_LT(0, exits);
		EXPECT_LT(0, atomic_load(&c->in_precopy));
		EXPECT_LT(0, atomic_load(&c->during_round));
	}
	n = exits < STALL_CAP ? exits : STALL_CAP;
	qsort(self->stall, n, sizeof(*self->stall), cmp_u64);
	ksft_print_msg("ring of %u entries: %lu ring-full exits, %lu harvests in pre-copy, %lu during a round; vCPU stall p50 %llu us, p99 %llu us\n",
		       variant->entries, exits, atomic_load(&c->in_precopy),
		       atomic_load(&c->during_round),
		       n ? (unsigned long long)self->stall[(n - 1) / 2] / 1000 : 0ULL,
		       n ? (unsigned long long)self->stall[(n - 1) * 99 / 100] / 1000 : 0ULL);
}

/*
 * The throttle. Three vCPUs sweep 4 MiB each without rest; the link is
 * set from the rate measured first so that, even though pre-copy's own
 * work slows the guest down, it still writes at least three times as
 * fast as the link drains (checked without a throttle, measured from
 * the guest's pass stamps). In bitmap mode that rate is the one at
 * which the guest dirties pages write-protected again (see
 * bitmap_guest_rate()); its passes then write far faster than that,
 * and the check without a throttle that matters is that every round
 * ends with most of memory dirty again. The downtime budget fits 40 % of
 * guest memory. Without a throttle every round finds all of memory dirty
 * again: pre-copy must end at max_rounds without converging. With AUTO
 * or RATE pre-copy must converge: in ring mode kvmig makes the vCPU
 * threads sleep in KVMIG_DIRTY_HARVEST when their rings fill; in bitmap
 * mode it only publishes throttle_pct, and the test VMM's applier
 * (vmm_throttle_start) kicks the vCPUs out of KVM_RUN and sleeps them.
 * Either way the switchover then moves every page.
 */
#define THR_SLOT_SIZE	(4UL << 20)
#define THR_ROUNDS	8
#define THR_SLOWER	15	/* link = the guest's rate / THR_SLOWER */

FIXTURE(thr) {
	FIXTURE_DATA(rings) r;
};

FIXTURE_VARIANT(thr) {
	enum vmm_dirty mode;
	struct kvmig_throttle t;	/* dirty_rate: divides the link's */
	bool converges;
};

/* The same three settings in either mode */
#define THR_OFF		{ .policy = KVMIG_THROTTLE_OFF }
#define THR_AUTO	{ .policy = KVMIG_THROTTLE_AUTO, .initial_pct = 80, \
			  .step_pct = 19, .max_pct = 99 }
#define THR_RATE	{ .policy = KVMIG_THROTTLE_RATE, .dirty_rate = 10, \
			  .max_pct = 99 }

FIXTURE_VARIANT_ADD(thr, off) {
	.mode = VMM_DIRTY_RING, .t = THR_OFF, .converges = false,
};

FIXTURE_VARIANT_ADD(thr, auto_converge) {
	.mode = VMM_DIRTY_RING, .t = THR_AUTO, .converges = true,
};

FIXTURE_VARIANT_ADD(thr, dirty_rate) {
	.mode = VMM_DIRTY_RING, .t = THR_RATE, .converges = true,
};

FIXTURE_VARIANT_ADD(thr, bitmap_off) {
	.mode = VMM_DIRTY_BITMAP, .t = THR_OFF, .converges = false,
};

FIXTURE_VARIANT_ADD(thr, bitmap_auto_converge) {
	.mode = VMM_DIRTY_BITMAP, .t = THR_AUTO, .converges = true,
};

FIXTURE_VARIANT_ADD(thr, bitmap_dirty_rate) {
	.mode = VMM_DIRTY_BITMAP, .t = THR_RATE, .converges = true,
};

FIXTURE_SETUP(thr)
{
	ring_src_setup(_metadata, &self->r, variant->mode, 256,
		       THR_SLOT_SIZE);
	/* Each vCPU thread harvests on its own, as QEMU's do. */
	self->r.src.ring_full_parallel = true;
}

FIXTURE_TEARDOWN(thr)
{
	ring_src_teardown(&self->r);
}

TEST_F_TIMEOUT(thr, converges_only_throttled, 600)
{
	FIXTURE_DATA(rings) *r = &self->r;
	const uint64_t pages = RING_VCPUS * THR_SLOT_SIZE / 4096;
	const bool bitmap = variant->mode == VMM_DIRTY_BITMAP;
	struct kvmig_throttle t = variant->t;
	struct kvmig_final f = {};
	struct kvmig_stats st = {};
	uint64_t rate, bandwidth, budget, t0, writes, slept, applied = 0;
	uint32_t passes0[RING_VCPUS];
	struct kvmig_round rd;
	unsigned int i;
	int ret;

	rate = bitmap ? bitmap_guest_rate(r) : ring_guest_rate(r);
	ASSERT_LT(0, rate);
	bandwidth = rate * 4096 / THR_SLOWER;
	if (bandwidth < 256 << 10)
		bandwidth = 256 << 10;
	/* 40 % of memory at the link's speed */
	budget = pages * 4096 * 4 / 10 * 1000000000ULL / bandwidth;
	if (t.policy == KVMIG_THROTTLE_RATE)	/* a tenth of the link's */
		t.dirty_rate = bandwidth / 4096 / t.dirty_rate ?: 1;
	ksft_print_msg("throttle %u, %s: the guest writes %llu pages/s, link %llu KiB/s, budget %llu ms, target %llu pages/s\n",
		       t.policy, bitmap ? "bitmap" : "ring",
		       (unsigned long long)rate,
		       (unsigned long long)bandwidth >> 10,
		       (unsigned long long)budget / 1000000,
		       (unsigned long long)t.dirty_rate);

	r->dst->io_ms = 60000;
	ASSERT_EQ(0, pthread_create(&r->dst->thread, NULL, dest_thread,
				    r->dst));
	r->dst_started = true;
	ASSERT_EQ(0, setup(r->dev, r->sock, budget, THR_ROUNDS, bandwidth,
			   60000));
	ASSERT_EQ(0, ioctl(r->dev, KVMIG_SET_THROTTLE, &t))
		TH_LOG("%s", strerror(errno));
	/* Also for OFF: then it must never sleep a vCPU. */
	if (bitmap)
		ASSERT_EQ(0, vmm_throttle_start(&r->src, r->dev));
	t0 = now_ns();
	for (i = 0; i < RING_VCPUS; i++)
		passes0[i] = ring_passes(r, i);
	for (i = 0;; i++) {
		memset(&rd, 0, sizeof(rd));
		ret = ioctl(r->dev, KVMIG_XFER_ROUND, &rd) ? -errno : 0;
		ASSERT_EQ(0, ret) TH_LOG("round %u: %s", i, strerror(-ret));
		ASSERT_EQ(0, get_stats(r->dev, &st));
		/* Who slept the vCPUs: kvmig (ring) or the VMM (bitmap) */
		slept = bitmap ? __atomic_load_n(&r->src.throttle_slept_ns,
						 __ATOMIC_RELAXED) :
				 st.throttle_ns;
		ksft_print_msg("round %u: status %u, %llu of %llu pages dirty, dirty rate %llu pages/s, throttle %u %%, vCPUs slept %llu ms\n",
			       i, rd.status, (unsigned long long)rd.remaining,
			       (unsigned long long)pages,
			       (unsigned long long)st.dirty_rate,
			       st.throttle_pct,
			       (unsigned long long)slept / 1000000);
		if (rd.status != KVMIG_ROUND_SENT)
			break;
	}
	/* The guest's page writes per second during pre-copy */
	for (writes = 0, i = 0; i < RING_VCPUS; i++)
		writes += (uint64_t)(ring_passes(r, i) - passes0[i]) *
			  (THR_SLOT_SIZE / 4096);
	writes = writes * 1000000000ULL / (now_ns() - t0);
	ksft_print_msg("throttle %u: during pre-copy the guest wrote %llu pages/s, %.1f times the link\n",
		       t.policy, (unsigned long long)writes,
		       writes * 4096.0 / bandwidth);
	EXPECT_EQ(t.policy, st.throttle_policy);
	if (variant->converges) {
		EXPECT_EQ(KVMIG_ROUND_CONVERGED, rd.status);
		if (t.policy == KVMIG_THROTTLE_AUTO)
			EXPECT_LE(t.initial_pct, st.throttle_pct);
	} else {
		/* The case the test is about: a guest faster than the link */
		EXPECT_LE(bandwidth * 3, writes * 4096);
		EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, rd.status);
		EXPECT_LT(pages * 4 / 10, rd.remaining);
		EXPECT_EQ(0, st.throttle_pct);
	}

	/* Its sleeps would hold up the pause, as a VMM's pause ends them. */
	if (bitmap) {
		EXPECT_EQ(0, vmm_throttle_stop(&r->src));
		applied = now_ns() - t0;
	}
	ring_switchover(_metadata, r, &f);
	EXPECT_EQ(0, atomic_load(&r->ctx.failed));
	/* Every sleep has ended: the vCPUs did sleep, or never did. */
	ASSERT_EQ(0, get_stats(r->dev, &st));
	if (bitmap) {
		/* kvmig cannot stop a vCPU in bitmap mode: the VMM did */
		EXPECT_EQ(0, st.throttle_ns);
		for (i = 0; i < RING_VCPUS; i++) {
			slept = __atomic_load_n(&r->src.vcpus[i].throttle_slept_ns,
						__ATOMIC_RELAXED);
			ksft_print_msg("throttle %u, bitmap: vCPU %u slept %llu ms in the VMM, of %llu ms of pre-copy\n",
				       t.policy, i,
				       (unsigned long long)slept / 1000000,
				       (unsigned long long)applied / 1000000);
			if (variant->converges) {
				EXPECT_LT(0, slept) TH_LOG("vCPU %u", i);
			} else {
				EXPECT_EQ(0, slept) TH_LOG("vCPU %u", i);
			}
		}
	} else if (variant->converges) {
		EXPECT_LT(0, st.throttle_ns);
	} else {
		EXPECT_EQ(0, st.throttle_ns);
	}
	ksft_print_msg("throttle %u: %llu pages in the final pass, downtime %llu ms\n",
		       t.policy, (unsigned long long)f.pages_sent,
		       (unsigned long long)f.downtime_ns / 1000000);
}

/*
 * Several streams: each page goes on the stream its gfn names, in 2 MiB
 * shares, so the guest here spans 8 shares over 2 slots of 8 MiB.
 */
#define ST_SLOT_SIZE	(8UL << 20)
#define ST_SLOT_PAGES	(ST_SLOT_SIZE / 4096)

FIXTURE(streams) {
	struct vmm src;
	struct dest *dst;
	int dev;
	int sock;
	int more[KVMIG_MAX_STREAMS - 1];
	bool started;
};

FIXTURE_VARIANT(streams) {
	enum vmm_dirty mode;
	unsigned int nr;
	bool ktls;	/* every connection kTLS, as set up by the VMMs */
};

FIXTURE_VARIANT_ADD(streams, ring_4) {
	.mode = VMM_DIRTY_RING, .nr = 4,
};

FIXTURE_VARIANT_ADD(streams, bitmap_3) {
	.mode = VMM_DIRTY_BITMAP, .nr = 3,
};

FIXTURE_VARIANT_ADD(streams, ring_3_ktls) {
	.mode = VMM_DIRTY_RING, .nr = 3, .ktls = true,
};

FIXTURE_SETUP(streams)
{
	struct vmm_config cfg = {
		.dirty = variant->mode, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = ST_SLOT_SIZE,
	};
	unsigned int i;
	int ret;

	self->dev = self->sock = -1;
	for (i = 0; i < KVMIG_MAX_STREAMS - 1; i++)
		self->more[i] = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	self->dst->dev = self->dst->sock = -1;
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	self->dev = source_session(self->src.vm, variant->mode);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("%s", strerror(-self->dev));
	ASSERT_EQ(0, dest_init(self->dst, &cfg, 8192));
	self->dst->nr_streams = variant->nr;
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst->sock));
	for (i = 0; i + 1 < variant->nr; i++)
		ASSERT_EQ(0, tcp_pair(&self->more[i], &self->dst->more[i]));
	if (variant->ktls) {
		ret = ktls_random_pair(self->sock, self->dst->sock);
		if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
			SKIP(return, "no kTLS in this kernel");
		ASSERT_EQ(0, ret) TH_LOG("kTLS: %s", strerror(-ret));
		for (i = 0; i + 1 < variant->nr; i++)
			ASSERT_EQ(0, ktls_random_pair(self->more[i],
						      self->dst->more[i]));
	}

	/* Before migration, every 4th page of slot 0: every share of it. */
	fill(&self->src, 0, 0, ST_SLOT_PAGES / 4, 4, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

FIXTURE_TEARDOWN(streams)
{
	unsigned int i;

	if (self->started) {
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst->thread, NULL);
	}
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	for (i = 0; i < KVMIG_MAX_STREAMS - 1; i++)
		if (self->more[i] >= 0)
			close(self->more[i]);
	if (self->dst) {
		dest_fini(self->dst);
		free(self->dst);
	}
	vmm_destroy(&self->src);
}

static int streams_connect(FIXTURE_DATA(streams) *self, unsigned int nr,
			   uint64_t downtime_ns, uint32_t max_rounds)
{
	if (pthread_create(&self->dst->thread, NULL, dest_thread, self->dst))
		return -EAGAIN;
	self->started = true;
	return setup_streams(self->dev, self->sock, self->more, nr,
			     downtime_ns, max_rounds, 0, 3000);
}

/*
 * The bytes a TCP socket has received: struct tcp_info's
 * tcpi_bytes_received (since Linux 4.1), at offset 128 of the kernel's
 * layout; glibc's struct tcp_info stops before it.
 */
static uint64_t tcp_bytes_received(int fd)
{
	uint64_t ti[32] = { 0 };
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) || len < 136)
		return 0;
	return ti[128 / 8];
}

/*
 * Rounds in which the guest writes the same pages again and again, in
 * every share: a page's copies go on one stream, in order, so the last
 * copy wins on the destination. Were the copies spread over streams, an
 * older copy could land after a newer one and the memory would differ.
 */
TEST_F_TIMEOUT(streams, rewritten_pages_arrive_last_copy, 600)
{
	struct kvmig_final f = {};
	struct kvmig_round r;
	struct kvmig_stats st;
	unsigned int i;
	uint64_t got;

	ASSERT_EQ(0, streams_connect(self, variant->nr, 1, 6));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r))
			TH_LOG("round %u: %s", i, strerror(errno));
		if (r.status != KVMIG_ROUND_SENT)
			break;
		if (i == 0)
			EXPECT_EQ(ST_SLOT_PAGES / 4 + 2, r.pages_sent);
		/* One page in 16 of both slots, a new value each round. */
		fill(&self->src, i % 2, 0, ST_SLOT_PAGES / 16, 16, 0x3000 + i);
		ASSERT_EQ(0, mark_mbox(self->dev));
		ASSERT_EQ(0, vmm_run(&self->src));
		fill(&self->src, 1 - i % 2, 3, ST_SLOT_PAGES / 16, 16,
		     0x4000 + i);
		ASSERT_EQ(0, vmm_run(&self->src));
	}
	EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, r.status);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	ASSERT_EQ(0, self->dst->recv_ret)
		TH_LOG("%s", strerror(-self->dst->recv_ret));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	EXPECT_EQ(st.pages_sent, self->dst->r.pages_received);
	/* kTLS takes pages by reference, but encrypts them: a copy. */
	EXPECT_EQ(variant->ktls ? 0 : st.pages_sent, st.pages_spliced);
	EXPECT_EQ(variant->ktls ? st.pages_sent : 0, st.pages_copied);
	/* Every stream carried pages: at least its share of round 0's. */
	got = tcp_bytes_received(self->dst->sock);
	EXPECT_LE(ST_SLOT_PAGES / 4 / variant->nr / 2 * 4096ULL, got)
		TH_LOG("stream 0: %llu bytes", (unsigned long long)got);
	for (i = 0; i + 1 < variant->nr; i++) {
		got = tcp_bytes_received(self->dst->more[i]);
		EXPECT_LE(ST_SLOT_PAGES / 4 / variant->nr / 2 * 4096ULL, got)
			TH_LOG("stream %u: %llu bytes", i + 1,
			       (unsigned long long)got);
	}
}

/*
 * One stream of the destination breaks in mid pre-copy: the migration
 * fails at both ends, cleanly, and the source VM runs on.
 */
TEST_F_TIMEOUT(streams, one_stream_cut_mid_precopy, 600)
{
	struct kvmig_round r = {};
	struct kvmig_stats st;
	unsigned int i;

	ASSERT_EQ(0, streams_connect(self, variant->nr, 1, 10));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, wait_stats(self->dst->dev, &st, 60000, dest_has_records));
	ASSERT_EQ(0, shutdown(self->dst->more[variant->nr - 2], SHUT_RDWR));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_EQ(-ECONNRESET, self->dst->recv_ret)
		TH_LOG("%s", strerror(-self->dst->recv_ret));
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
	/* The destination goes away; the source finds out as it sends. */
	close(self->dst->dev);
	self->dst->dev = -1;
	close(self->dst->sock);
	self->dst->sock = -1;
	for (i = 0; i + 1 < variant->nr; i++) {
		close(self->dst->more[i]);
		self->dst->more[i] = -1;
	}
	/* Within the smallest ring: a page in 8 of both slots, all shares. */
	fill(&self->src, 0, 0, ST_SLOT_PAGES / 8, 8, 0x6666);
	ASSERT_EQ(0, vmm_run(&self->src));
	fill(&self->src, 1, 0, ST_SLOT_PAGES / 8, 8, 0x6667);
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) TH_LOG("%s",
							       strerror(errno));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
}

/* Both ends must name as many streams: the handshake refuses otherwise. */
TEST_F_TIMEOUT(streams, streams_differ_in_number, 300)
{
	self->dst->nr_streams = variant->nr - 1;
	EXPECT_EQ(-EPROTO, streams_connect(self, variant->nr, 0, 0));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_STREAMS);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_STREAMS);
	expect_source_runs(_metadata, &self->src);
}

/* The same streams in another order: refused before any page moves. */
TEST_F_TIMEOUT(streams, streams_out_of_order, 300)
{
	int t = self->dst->more[0];
	struct kvmig_stats st;

	self->dst->more[0] = self->dst->more[1];
	self->dst->more[1] = t;
	EXPECT_EQ(-EPROTO, streams_connect(self, variant->nr, 0, 0));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_STREAMS);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_STREAMS);
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	EXPECT_EQ(0, st.pages_received + st.zero_pages);
	expect_source_runs(_metadata, &self->src);
}

/* Bad stream arguments: a clear error, and the session still TRACKING. */
TEST_F_TIMEOUT(streams, setup_checks_streams, 300)
{
	uint32_t fds[KVMIG_MAX_STREAMS] = { 0 };
	struct kvmig_xfer_setup su = { .sock_fd = self->sock };
	struct kvmig_stats st;
	int lone, i;

#define EXPECT_SETUP(err, what) do { \
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su)) TH_LOG(what); \
	EXPECT_EQ(err, errno) TH_LOG("%s: %s", what, strerror(errno)); \
} while (0)

	for (i = 0; i < KVMIG_MAX_STREAMS; i++)
		fds[i] = self->more[0];
	su.nr_streams = 2;
	EXPECT_SETUP(EINVAL, "nr_streams without the flag");
	su.nr_streams = 0;
	su.streams_ptr = (uintptr_t)fds;
	EXPECT_SETUP(EINVAL, "streams_ptr without the flag");
	su.flags = KVMIG_XFER_SETUP_STREAMS;
	su.nr_streams = 1;
	EXPECT_SETUP(EINVAL, "one stream with the flag");
	su.nr_streams = KVMIG_MAX_STREAMS + 1;
	EXPECT_SETUP(EINVAL, "too many streams");
	su.nr_streams = 2;
	su.streams_ptr = 8;
	EXPECT_SETUP(EFAULT, "bad streams_ptr");
	su.streams_ptr = (uintptr_t)fds;
	fds[0] = 0x80000000u;
	EXPECT_SETUP(EBADF, "fd out of range");
	fds[0] = 999;
	EXPECT_SETUP(EBADF, "fd not open");
	fds[0] = self->sock;
	EXPECT_SETUP(EINVAL, "the first socket twice");
	fds[0] = dup(self->sock);
	ASSERT_LE(0, (int)fds[0]);
	EXPECT_SETUP(EINVAL, "the first socket, duplicated");
	close(fds[0]);
	lone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, lone);
	fds[0] = lone;
	EXPECT_SETUP(EINVAL, "a socket not connected");
	fds[0] = self->more[0];
	fds[1] = self->more[0];
	su.nr_streams = 3;
	EXPECT_SETUP(EINVAL, "another socket twice");
	close(lone);
#undef EXPECT_SETUP
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_TRACKING, st.state);
	/* Nothing was lost: the same session migrates over all of them. */
	if (variant->nr >= 3) {
		struct kvmig_final f = {};
		struct kvmig_round r = {};

		ASSERT_EQ(0, streams_connect(self, variant->nr, 0, 0));
		do {
			ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
		} while (r.status == KVMIG_ROUND_SENT);
		ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f));
		pthread_join(self->dst->thread, NULL);
		self->started = false;
		ASSERT_EQ(0, self->dst->recv_ret);
		expect_same_memory(_metadata, &self->src, &self->dst->vmm);
	}
}


/*
 * RDMA: one reliable connection through the RDMA CM, set up through a TCP
 * socket between the two ends. It needs an RDMA device with an IPv4
 * address, named by KVMIG_RDMA_ADDR: kvmig_rdma_test.sh makes one (soft
 * RoCE over a dummy device) and runs this fixture, with source and
 * destination at the same address, through that one device.
 */
FIXTURE(rdma) {
	struct vmm src;
	struct dest *dst;
	int dev;
	int sock;
	bool started;
};

FIXTURE_VARIANT(rdma) {
	enum vmm_dirty mode;
};

FIXTURE_VARIANT_ADD(rdma, ring) {
	.mode = VMM_DIRTY_RING,
};

FIXTURE_VARIANT_ADD(rdma, bitmap) {
	.mode = VMM_DIRTY_BITMAP,
};

FIXTURE_SETUP(rdma)
{
	struct vmm_config cfg = {
		.dirty = variant->mode, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = ST_SLOT_SIZE,
	};
	const char *at = getenv("KVMIG_RDMA_ADDR");
	struct in_addr addr;
	__u64 feat[1] = { 0 };
	struct kvmig_api api = { .nr_features = 1,
				 .features_ptr = (uintptr_t)feat };
	int ret;

	self->dev = self->sock = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	self->dst->dev = self->dst->sock = -1;
	if (!at)
		SKIP(return, "no RDMA device: KVMIG_RDMA_ADDR unset (kvmig_rdma_test.sh sets one up)");
	ASSERT_EQ(1, inet_pton(AF_INET, at, &addr)) TH_LOG("KVMIG_RDMA_ADDR %s", at);
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	self->dev = source_session(self->src.vm, variant->mode);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev) TH_LOG("%s", strerror(-self->dev));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_GET_API, &api));
	ASSERT_TRUE(feat[0] & KVMIG_F0_RDMA) TH_LOG("module built without RDMA");
	ASSERT_EQ(0, dest_init(self->dst, &cfg, 8192));
	self->dst->rdma = true;
	ASSERT_EQ(0, tcp_pair_at(&self->sock, &self->dst->sock, 0,
				 addr.s_addr));
	/* Before migration, every 4th page of slot 0. */
	fill(&self->src, 0, 0, ST_SLOT_PAGES / 4, 4, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

FIXTURE_TEARDOWN(rdma)
{
	if (self->started) {
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst->thread, NULL);
	}
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	if (self->dst) {
		dest_fini(self->dst);
		free(self->dst);
	}
	vmm_destroy(&self->src);
}

static int rdma_start(FIXTURE_DATA(rdma) *self, uint64_t downtime_ns,
		      uint32_t max_rounds)
{
	if (pthread_create(&self->dst->thread, NULL, dest_thread, self->dst))
		return -EAGAIN;
	self->started = true;
	return setup_rdma(self->dev, self->sock, downtime_ns, max_rounds,
			  3000);
}

/*
 * A whole migration over RDMA while the guest rewrites pages round after
 * round: the same memory at both ends, every page written straight from
 * the source guest's pages (RDMA WRITE), none copied by kvmig.
 */
TEST_F_TIMEOUT(rdma, migrates_zero_copy, 600)
{
	struct kvmig_final f = {};
	struct kvmig_round r;
	struct kvmig_stats st, dst;
	unsigned int i;

	ASSERT_EQ(0, rdma_start(self, 1, 5));
	for (i = 0;; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r))
			TH_LOG("round %u: %s", i, strerror(errno));
		if (r.status != KVMIG_ROUND_SENT)
			break;
		if (i == 0)
			EXPECT_EQ(ST_SLOT_PAGES / 4 + 2, r.pages_sent);
		fill(&self->src, i % 2, 0, ST_SLOT_PAGES / 16, 16, 0x3000 + i);
		ASSERT_EQ(0, mark_mbox(self->dev));
		ASSERT_EQ(0, vmm_run(&self->src));
	}
	EXPECT_EQ(KVMIG_ROUND_MAX_ROUNDS, r.status);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_FINAL, &f))
		TH_LOG("final: %s", strerror(errno));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	ASSERT_EQ(0, self->dst->setup_ret)
		TH_LOG("%s", strerror(-self->dst->setup_ret));
	ASSERT_EQ(0, self->dst->recv_ret)
		TH_LOG("%s", strerror(-self->dst->recv_ret));
	expect_same_memory(_metadata, &self->src, &self->dst->vmm);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	ASSERT_EQ(0, get_stats(self->dst->dev, &dst));
	EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	EXPECT_EQ(KVMIG_STATE_DONE, dst.state);
	EXPECT_EQ(st.pages_sent, self->dst->r.pages_received);
	EXPECT_LT(ST_SLOT_PAGES / 4, st.pages_sent);
	EXPECT_EQ(st.pages_sent, st.pages_spliced);
	EXPECT_EQ(0, st.pages_copied);
	ksft_print_msg("RDMA: %llu pages written in %llu rounds, %llu zero-copy, %llu bytes sent\n",
		       (unsigned long long)st.pages_sent,
		       (unsigned long long)st.rounds,
		       (unsigned long long)st.pages_spliced,
		       (unsigned long long)st.bytes_sent);
}

/*
 * The destination goes away in mid pre-copy (its VMM cancels, as one that
 * is killed closes everything): both ends fail, cleanly, and the source
 * VM runs on.
 */
TEST_F_TIMEOUT(rdma, peer_gone_mid_precopy, 600)
{
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, rdma_start(self, 1, 10));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, wait_stats(self->dst->dev, &st, 60000, dest_has_records));
	ASSERT_EQ(0, ioctl(self->dst->dev, KVMIG_XFER_CANCEL));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_NE(0, self->dst->recv_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_CANCELLED);
	close(self->dst->dev);
	self->dst->dev = -1;
	fill(&self->src, 0, 0, ST_SLOT_PAGES / 8, 8, 0x6666);
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) TH_LOG("%s",
							       strerror(errno));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
}

/*
 * The source cancels in mid pre-copy: FAILED at both ends, the source VM
 * runs on, and the destination guest got no page after its QP was drained.
 */
TEST_F_TIMEOUT(rdma, source_cancels, 600)
{
	struct kvmig_round r = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, rdma_start(self, 1, 10));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_CANCEL));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_NE(0, self->dst->recv_ret);
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_CANCELLED);
	expect_source_runs(_metadata, &self->src);
}

/* Run "rdma link ARGS..." in a child; its pid, or -errno. */
static pid_t rdma_link(const char *verb, const char *dev, const char *netdev)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		if (netdev)
			execlp("rdma", "rdma", "link", verb, dev, "type", "rxe",
			       "netdev", netdev, (char *)NULL);
		else
			execlp("rdma", "rdma", "link", verb, dev, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait up to @ms for child @pid; true once it exited, its @status set. */
static bool wait_child(pid_t pid, int *status, unsigned int ms)
{
	uint64_t end = now_ns() + ms * 1000000ULL;

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(50000);
	} while (now_ns() < end);
	return false;
}

/*
 * Whether RDMA device @dev has the GID of IPv4 address @addr, within @ms:
 * a device just added fills its GID table from its netdev's addresses
 * afterwards, and the RDMA CM finds nothing at that address before.
 */
static bool rdma_gid_ready(const char *dev, const char *addr, unsigned int ms)
{
	uint64_t end = now_ns() + ms * 1000000ULL;
	struct in_addr a;
	char want[64], path[128], got[64];
	unsigned int i;
	FILE *f;

	if (inet_pton(AF_INET, addr, &a) != 1)
		return false;
	a.s_addr = ntohl(a.s_addr);
	snprintf(want, sizeof(want),
		 "0000:0000:0000:0000:0000:ffff:%04x:%04x",
		 a.s_addr >> 16, a.s_addr & 0xffff);
	do {
		for (i = 0; i < 16; i++) {
			snprintf(path, sizeof(path),
				 "/sys/class/infiniband/%s/ports/1/gids/%u", dev,
				 i);
			f = fopen(path, "r");
			if (!f)
				break;
			if (fgets(got, sizeof(got), f) &&
			    !strncmp(got, want, strlen(want))) {
				fclose(f);
				return true;
			}
			fclose(f);
		}
		usleep(100000);
	} while (now_ns() < end);
	return false;
}

/*
 * The RDMA device goes away in mid pre-copy (soft-RoCE's link deleted,
 * as when a NIC's driver unbinds). The removal waits for whoever holds
 * the device: it must not wait for the sessions' fds to close. Both ends
 * fail, and the source VM runs on. The device is added back for the
 * tests that follow.
 */
TEST_F_TIMEOUT(rdma, device_removed_mid_precopy, 600)
{
	const char *rxe = getenv("KVMIG_RDMA_DEV");
	const char *netdev = getenv("KVMIG_RDMA_NETDEV");
	struct kvmig_round r = {};
	struct kvmig_stats st;
	int status = -1;
	bool gone;
	pid_t pid;

	if (!rxe || !netdev)
		SKIP(return, "KVMIG_RDMA_DEV or KVMIG_RDMA_NETDEV unset (kvmig_rdma_test.sh sets them)");
	ASSERT_EQ(0, rdma_start(self, 1, 10));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ASSERT_EQ(0, wait_stats(self->dst->dev, &st, 60000, dest_has_records));
	pid = rdma_link("delete", rxe, NULL);
	ASSERT_LT(0, pid) TH_LOG("fork: %s", strerror(-pid));
	gone = wait_child(pid, &status, 60000);
	EXPECT_TRUE(gone) TH_LOG("rdma link delete %s still waits after 60 s, the sessions open",
				 rxe);
	if (!gone) {
		/* Let it finish, so that the device can come back. */
		ioctl(self->dev, KVMIG_XFER_CANCEL);
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
		pthread_join(self->dst->thread, NULL);
		self->started = false;
		close(self->dev);
		self->dev = -1;
		close(self->dst->dev);
		self->dst->dev = -1;
		waitpid(pid, &status, 0);
	}
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("rdma link delete %s: status %#x", rxe, status);
	pid = rdma_link("add", rxe, netdev);
	ASSERT_LT(0, pid);
	ASSERT_TRUE(wait_child(pid, &status, 60000));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("rdma link add %s type rxe netdev %s: status %#x", rxe,
		       netdev, status);
	ASSERT_TRUE(rdma_gid_ready(rxe, getenv("KVMIG_RDMA_ADDR"), 30000))
		TH_LOG("%s has no GID for %s after 30 s", rxe,
		       getenv("KVMIG_RDMA_ADDR"));
	if (!gone)
		return;

	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_NE(0, self->dst->recv_ret);
	ksft_print_msg("destination: %s\n", strerror(-self->dst->recv_ret));
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
	fill(&self->src, 0, 0, ST_SLOT_PAGES / 8, 8, 0x7777);
	ASSERT_EQ(0, vmm_run(&self->src));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	ksft_print_msg("source: %s\n", strerror(errno));
	expect_failed(_metadata, self->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
}

/* The userspace RDMA CM, for a peer written by hand: rdma_ucm loaded. */
#define RPEER_NEEDED()							\
	do {								\
		if (access("/dev/infiniband/rdma_cm", R_OK | W_OK))	\
			SKIP(return, "no /dev/infiniband/rdma_cm (rdma_ucm): no userspace RDMA peer"); \
	} while (0)

/*
 * A source written by hand (rdma_peer.h) in place of kvmig's, with the
 * destination's session as usual: connected and through the handshake,
 * it sends one PAGES record for @npages pages at slot 0's page @first and
 * takes the GRANT. The destination's RECV runs in its thread.
 */
static void rdma_hostile_start(struct __test_metadata *_metadata,
			       FIXTURE_DATA(rdma) *self, struct rpeer *p,
			       uint64_t first, uint32_t npages,
			       struct rp_msg *grant)
{
	struct raw_rec rec = { 1, 0, self->dst->vmm.slots[0].id,
			       self->dst->vmm.slots[0].gpa / 4096 + first,
			       npages, 0 };
	struct raw_opening o;
	size_t len = raw_opening(&o, &self->dst->vmm, 1);
	uint32_t reply[4] = { 0 };
	struct rp_msg m;
	int ret;

	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	self->started = true;
	ret = rpeer_connect(p, self->sock, getenv("KVMIG_RDMA_ADDR"));
	ASSERT_EQ(0, ret) TH_LOG("connecting: %s", strerror(-ret));
	ASSERT_EQ(0, rpeer_data(p, &o, len));
	ASSERT_EQ(0, rpeer_recv(p, &m, reply, sizeof(reply), 10000));
	ASSERT_EQ(RP_DATA, m.type);
	ASSERT_EQ(0, reply[1]) TH_LOG("handshake status %u", reply[1]);
	ASSERT_EQ(0, rpeer_data(p, &rec, sizeof(rec)));
	ASSERT_EQ(0, rpeer_recv(p, grant, NULL, 0, 10000));
	ASSERT_EQ(RP_GRANT, grant->type);
	ASSERT_EQ(npages, grant->npages);
}

/* The destination failed, for @reason, and wrote nothing outside @keep. */
static void rdma_hostile_end(struct __test_metadata *_metadata,
			     FIXTURE_DATA(rdma) *self, uint32_t reason,
			     uint64_t first, uint32_t npages)
{
	const uint8_t *hva = self->dst->vmm.slots[0].hva;
	uint64_t off, bad = 0;

	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_NE(0, self->dst->recv_ret);
	ksft_print_msg("destination: %s\n", strerror(-self->dst->recv_ret));
	expect_failed(_metadata, self->dst->dev, reason);
	for (off = 0; off < self->dst->vmm.slots[0].size; off++)
		if (hva[off] && (off / 4096 < first ||
				 off / 4096 >= first + npages))
			bad++;
	EXPECT_EQ(0, bad) TH_LOG("%llu bytes written outside the run",
				 (unsigned long long)bad);
}

/*
 * The peer WRITEs a page more than it was granted: the write is refused
 * (the MR covers the run alone), the destination fails, and no byte lands
 * outside the run.
 */
TEST_F_TIMEOUT(rdma, hostile_write_past_the_grant, 300)
{
	struct rpeer *p = calloc(1, sizeof(*p));
	struct rp_msg g;
	int ret;

	RPEER_NEEDED();
	ASSERT_NE(NULL, p);
	rdma_hostile_start(_metadata, self, p, 8, 2, &g);
	memset(p->pages, 0xa5, sizeof(p->pages));
	ret = rpeer_write(p, 3, g.addr, g.rkey);
	EXPECT_NE(0, ret);
	ksft_print_msg("3-page WRITE into a 2-page grant: %s\n",
		       ret > 0 ? ibv_wc_status_str(ret) : strerror(-ret));
	rdma_hostile_end(_metadata, self, KVMIG_FAIL_IO, 8, 2);
	rpeer_close(p);
	free(p);
}

/*
 * WRITTEN for fewer pages than the run: refused (EPROTO), and nothing
 * outside the run.
 */
TEST_F_TIMEOUT(rdma, hostile_written_miscounted, 300)
{
	struct rpeer *p = calloc(1, sizeof(*p));
	struct rp_msg g;

	RPEER_NEEDED();
	ASSERT_NE(NULL, p);
	rdma_hostile_start(_metadata, self, p, 8, 2, &g);
	memset(p->pages, 0x3c, sizeof(p->pages));
	ASSERT_EQ(0, rpeer_write(p, 2, g.addr, g.rkey));
	ASSERT_EQ(0, rpeer_post(p, RP_WRITTEN, NULL, 0, 0, 0, 1));
	rdma_hostile_end(_metadata, self, KVMIG_FAIL_PROTOCOL, 8, 2);
	EXPECT_EQ(-EPROTO, self->dst->recv_ret);
	rpeer_close(p);
	free(p);
}

/*
 * A run written and acknowledged, then the next one granted: a WRITE with
 * the first run's key, invalidated since, is refused, and the first
 * run's page keeps what was written under its grant.
 */
TEST_F_TIMEOUT(rdma, hostile_write_with_a_stale_key, 300)
{
	struct rpeer *p = calloc(1, sizeof(*p));
	struct raw_rec rec;
	struct rp_msg g, g2;
	unsigned int i;
	int ret;

	RPEER_NEEDED();
	ASSERT_NE(NULL, p);
	rdma_hostile_start(_metadata, self, p, 8, 1, &g);
	memset(p->pages, 0x11, 4096);
	ASSERT_EQ(0, rpeer_write(p, 1, g.addr, g.rkey));
	ASSERT_EQ(0, rpeer_send(p, RP_WRITTEN, NULL, 0, 0, 0, 1));
	rec = (struct raw_rec){ 1, 0, self->dst->vmm.slots[0].id,
				self->dst->vmm.slots[0].gpa / 4096 + 9, 1, 0 };
	ASSERT_EQ(0, rpeer_data(p, &rec, sizeof(rec)));
	ASSERT_EQ(0, rpeer_recv(p, &g2, NULL, 0, 10000));
	ASSERT_EQ(RP_GRANT, g2.type);
	EXPECT_NE(g.rkey, g2.rkey);
	memset(p->pages, 0x22, 4096);
	ret = rpeer_write(p, 1, g.addr, g.rkey);
	EXPECT_NE(0, ret);
	ksft_print_msg("WRITE with the invalidated key: %s\n",
		       ret > 0 ? ibv_wc_status_str(ret) : strerror(-ret));
	rdma_hostile_end(_metadata, self, KVMIG_FAIL_IO, 8, 2);
	for (i = 0; i < 4096; i++)
		if (self->dst->vmm.slots[0].hva[8 * 4096 + i] != 0x11)
			break;
	EXPECT_EQ(4096, i) TH_LOG("page 8, byte %u", i);
	rpeer_close(p);
	free(p);
}

/*
 * Out of turn: a GRANT from the source, or a DATA message that says more
 * bytes than it carries. Each is refused (EPROTO) before any page.
 */
TEST_F_TIMEOUT(rdma, hostile_messages_refused, 300)
{
	struct rpeer *p = calloc(1, sizeof(*p));
	struct rp_msg g;
	uint8_t b[16] = { 0 };

	RPEER_NEEDED();
	ASSERT_NE(NULL, p);
	rdma_hostile_start(_metadata, self, p, 8, 1, &g);
	/* Where WRITTEN is due, a GRANT. */
	ASSERT_EQ(0, rpeer_post(p, RP_GRANT, NULL, 0, g.addr, g.rkey, 1));
	rdma_hostile_end(_metadata, self, KVMIG_FAIL_PROTOCOL, 8, 1);
	EXPECT_EQ(-EPROTO, self->dst->recv_ret);
	rpeer_close(p);

	/* Again, from the start: a DATA message says 100 bytes, has 16. */
	close(self->sock);
	close(self->dst->sock);
	close(self->dst->dev);
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
	ASSERT_LE(0, self->dst->dev);
	ASSERT_EQ(0, tcp_pair_at(&self->sock, &self->dst->sock, 0,
				 inet_addr(getenv("KVMIG_RDMA_ADDR"))));
	memset(p, 0, sizeof(*p));
	rdma_hostile_start(_metadata, self, p, 8, 1, &g);
	ASSERT_EQ(0, rpeer_write(p, 1, g.addr, g.rkey));
	ASSERT_EQ(0, rpeer_send(p, RP_WRITTEN, NULL, 0, 0, 0, 1));
	/* By hand: rpeer_post() sends as many bytes as it says. */
	memcpy(p->tx, &(struct rp_msg){ RP_DATA, 100, 0, 0, 0 },
	       sizeof(struct rp_msg));
	memcpy(p->tx + sizeof(struct rp_msg), b, sizeof(b));
	ASSERT_EQ(0, rdma_post_send(p->id, NULL, p->tx,
				    sizeof(struct rp_msg) + sizeof(b),
				    p->tx_mr, 0));
	rdma_hostile_end(_metadata, self, KVMIG_FAIL_PROTOCOL, 8, 1);
	EXPECT_EQ(-EPROTO, self->dst->recv_ret);
	rpeer_close(p);
	free(p);
}

/*
 * RDMA at one end only: neither end takes the other's first bytes, both
 * fail within the I/O timeout, and no page moves.
 */
TEST_F_TIMEOUT(rdma, one_end_without_rdma, 300)
{
	struct kvmig_stats st;

	self->dst->rdma = false;
	EXPECT_NE(0, rdma_start(self, 0, 0));
	pthread_join(self->dst->thread, NULL);
	self->started = false;
	EXPECT_NE(0, self->dst->setup_ret);
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
	EXPECT_EQ(0, st.pages_received + st.zero_pages);
	expect_source_runs(_metadata, &self->src);

	/* The other way round: a TCP source, an RDMA destination. */
	close(self->dev);
	close(self->sock);
	self->sock = -1;
	close(self->dst->dev);
	close(self->dst->sock);
	self->dst->sock = -1;
	self->dev = source_session(self->src.vm, variant->mode);
	ASSERT_LE(0, self->dev);
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
	ASSERT_LE(0, self->dst->dev);
	self->dst->rdma = true;
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	EXPECT_NE(0, setup(self->dev, self->sock, 0, 0, 0, 3000));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->setup_ret)
		TH_LOG("%s", strerror(-self->dst->setup_ret));
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
	expect_source_runs(_metadata, &self->src);
}

/* RDMA takes one connection: not with several streams. */
TEST_F_TIMEOUT(rdma, setup_checks_rdma, 300)
{
	uint32_t fds[1] = { self->sock };
	struct kvmig_xfer_setup su = {
		.sock_fd = self->sock,
		.flags = KVMIG_XFER_SETUP_RDMA | KVMIG_XFER_SETUP_STREAMS,
		.nr_streams = 2, .streams_ptr = (uintptr_t)fds,
	};
	struct kvmig_stats st;

	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su = (struct kvmig_xfer_setup){ .sock_fd = 999,
					.flags = KVMIG_XFER_SETUP_RDMA };
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EBADF, errno);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(KVMIG_STATE_TRACKING, st.state);
}

/*
 * A source sends a page on a stream its gfn does not name, or a run across
 * two shares, or a control record on a stream but the first: each could
 * reorder a page's copies, and is refused before anything is written.
 */
TEST_F_TIMEOUT(raw, record_on_wrong_stream_refused, 600)
{
	uint8_t junk[4096];
	unsigned int c;

	memset(junk, 0x5a, sizeof(junk));
	for (c = 0; c < 3; c++) {
		uint64_t gfn = self->dst->vmm.slots[0].gpa / 4096;
		struct raw_rec rec = { 1, 0, self->dst->vmm.slots[0].id, gfn,
				       1, 0 };
		unsigned int on = !((gfn >> 9) % 2);	/* the other stream */
		int src[2];
		uint32_t reply[4];

		if (c == 1) {	/* the right stream, across two shares */
			rec.gfn = gfn + 510;
			rec.npages = 4;
			on = (gfn >> 9) % 2;
		} else if (c == 2) {	/* COMMIT on the second stream */
			rec = (struct raw_rec){ 6, 0, 0, 0, 0, 0 };
			on = 1;
		}
		if (self->dst->dev >= 0)
			close(self->dst->dev);
		self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
		ASSERT_LE(0, self->dst->dev);
		self->dst->nr_streams = 2;
		ASSERT_EQ(0, tcp_pair(&src[0], &self->dst->sock));
		ASSERT_EQ(0, tcp_pair(&src[1], &self->dst->more[0]));
		ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL,
					    dest_thread, self->dst));
		ASSERT_EQ(0, raw_handshake_streams(&self->dst->vmm, src, 2));
		ASSERT_EQ(sizeof(rec), write(src[on], &rec, sizeof(rec)));
		write(src[on], junk, sizeof(junk));
		pthread_join(self->dst->thread, NULL);
		EXPECT_EQ(-EPROTO, self->dst->recv_ret) TH_LOG("case %u", c);
		/* The first stream says why. */
		EXPECT_EQ(16, read(src[0], reply, 16));
		EXPECT_EQ(3, reply[1]) TH_LOG("case %u", c);
		expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
		close(src[0]);
		close(src[1]);
		close(self->dst->sock);
		self->dst->sock = -1;
		close(self->dst->more[0]);
		self->dst->more[0] = -1;
	}
	for (c = 0; c < SLOT_SIZE; c += 4096)
		ASSERT_EQ(0, self->dst->vmm.slots[0].hva[c]);
}

TEST_HARNESS_MAIN
