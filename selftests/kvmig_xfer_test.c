// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration through kvmig over TCP: a source VM whose guest keeps
 * writing goes to a destination VM of the same layout, in pre-copy rounds
 * and a final pass; then memory and device state must be identical. And
 * every way it can go wrong: layout mismatch, malformed streams, a peer
 * that vanishes or stalls, cancel, the VMM killed, rmmod; the source VM is
 * intact and runs on after each.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"
#include "kselftest_harness.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/*
 * Guest: %esi = mailbox { u32 gpa, count, stride, value }: stores value to
 * count addresses from gpa, stride apart, then OUT, and again when run.
 */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_fill, guest_fill_end\n"
    ".code32\n"
    "guest_fill:\n"
    "1:	movl (%esi), %eax\n"
    "	movl 4(%esi), %ecx\n"
    "	movl 12(%esi), %edx\n"
    "	jecxz 3f\n"
    "2:	movl %edx, (%eax)\n"
    "	addl 8(%esi), %eax\n"
    "	loop 2b\n"
    "3:	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_fill_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_fill[], guest_fill_end[];

#define SLOT_SIZE	(2UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / 4096)

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
 * The VMM writes the mailbox through its own mapping: KVM does not log
 * that, so a tracked VMM reports it, as it would report device DMA.
 */
static int mark_mbox(int dev)
{
	struct kvmig_dirty_run run = {
		.gfn = VMM_MBOX_GPA / 4096, .npages = 1, .slot = VMM_CTRL_SLOT,
	};
	struct kvmig_dirty_mark m = { .nr_runs = 1,
				      .runs_ptr = (uintptr_t)&run };

	return ioctl(dev, KVMIG_DIRTY_MARK, &m) ? -errno : 0;
}

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (void *)&sa, sizeof(sa)))
		return -errno;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (*b < 0)
		return -errno;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
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

static int setup(int dev, int sock, uint64_t downtime_ns,
		 uint32_t max_rounds, uint64_t bandwidth, uint32_t io_ms)
{
	struct kvmig_xfer_setup st = {
		.sock_fd = sock, .downtime_ns = downtime_ns,
		.max_rounds = max_rounds, .bandwidth = bandwidth,
		.io_timeout_ms = io_ms,
	};

	return ioctl(dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

static int get_stats(int dev, struct kvmig_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(dev, KVMIG_GET_STATS, st) ? -errno : 0;
}

/* The destination side, in a thread: attach, handshake, receive. */
struct dest {
	struct vmm vmm;
	int dev, sock;
	int setup_ret, recv_ret;
	struct kvmig_recv r;
	char state[8192];
	uint32_t state_cap;
	pthread_t thread;
};

static void *dest_thread(void *arg)
{
	struct dest *d = arg;

	d->setup_ret = setup(d->dev, d->sock, 0, 0, 0, 3000);
	if (d->setup_ret) {
		d->recv_ret = d->setup_ret;
		return NULL;
	}
	memset(&d->r, 0, sizeof(d->r));
	d->r.state_ptr = (uintptr_t)d->state;
	d->r.state_cap = d->state_cap;
	d->recv_ret = ioctl(d->dev, KVMIG_XFER_RECV, &d->r) ? -errno : 0;
	return NULL;
}

FIXTURE(mig) {
	struct vmm src;
	struct dest *dst;
	int dev;	/* source session */
	int sock;	/* source end */
	bool started;
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
		.slot_size = SLOT_SIZE,
	};
	struct kvmig_dirty_start ds = {};
	int ret;

	self->dev = self->sock = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	self->dst->dev = self->dst->sock = -1;
	self->dst->state_cap = sizeof(self->dst->state);
	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	cfg.slot_size = dst_size ?: SLOT_SIZE;
	ASSERT_EQ(0, vmm_create(&self->dst->vmm, &cfg));

	self->dev = session(self->src.vm, KVMIG_ROLE_SOURCE,
			    mode == VMM_DIRTY_RING ? KVMIG_DIRTY_RING :
						     KVMIG_DIRTY_BITMAP);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST,
				 KVMIG_DIRTY_AUTO);
	ASSERT_LE(0, self->dst->dev);
	ASSERT_EQ(0, tcp_pair(&self->sock, &self->dst->sock));

	/* The guest has written something before migration starts. */
	fill(&self->src, 0, 0, SLOT_PAGES / 4, 4, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

/* Start the destination thread and the source's handshake. */
static int mig_connect(FIXTURE_DATA(mig) *self, uint64_t downtime_ns,
		       uint32_t max_rounds, uint64_t bandwidth)
{
	int ret;

	if (pthread_create(&self->dst->thread, NULL, dest_thread, self->dst))
		return -EAGAIN;
	self->started = true;
	ret = setup(self->dev, self->sock, downtime_ns, max_rounds,
		    bandwidth, 3000);
	return ret;
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
	if (self->dst->dev >= 0)
		close(self->dst->dev);
	if (self->dst->sock >= 0)
		close(self->dst->sock);
	vmm_destroy(&self->dst->vmm);
	vmm_destroy(&self->src);
	free(self->dst);
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
 * The destination holds its session lock for the whole of
 * KVMIG_XFER_RECV: statistics and the session list must still answer
 * (a hang here fails the test by its timeout), and show live progress.
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

/* The peer goes away in mid pre-copy. */
TEST_F_TIMEOUT(mig, peer_closes_mid_precopy, 600)
{
	struct kvmig_round r = {};

	ASSERT_EQ(0, mig_connect(self, 1, 10, 0));
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
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

/* Cancel from another thread while a throttled round is sending. */
static void *cancel_later(void *arg)
{
	usleep(300000);
	ioctl(*(int *)arg, KVMIG_XFER_CANCEL);
	return NULL;
}

TEST_F_TIMEOUT(mig, cancel_mid_round, 600)
{
	struct kvmig_round r = {};
	pthread_t t;

	/* 64 KiB/s: round 0 would take many seconds. */
	ASSERT_EQ(0, mig_connect(self, 0, 0, 65536));
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_later, &self->dev));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_XFER_ROUND, &r));
	EXPECT_EQ(ECANCELED, errno);
	pthread_join(t, NULL);
	expect_failed(_metadata, self->dev, KVMIG_FAIL_CANCELLED);
	mig_join(self);
	EXPECT_NE(0, self->dst->recv_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
	expect_source_runs(_metadata, &self->src);
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
	ASSERT_EQ(0, get_stats(self->m.dev, &st));
	EXPECT_EQ(0, st.pages_sent);
	expect_source_runs(_metadata, &self->m.src);
}

/* A hand-made source that speaks the wire protocol, for malformed streams. */
struct raw_rec {
	uint16_t type, flags;
	uint32_t slot;
	uint64_t gfn;
	uint32_t npages, len;
};

static int raw_handshake(struct vmm *vmm, int sock)
{
	struct {
		uint32_t magic;
		uint16_t version, page_shift;
		uint32_t nr_slots, flags;
		uint64_t guest_pages;
	} h = { 0x474d564b, 1, 12, vmm->cfg.nr_slots + 1, 0, 0 };
	struct {
		uint32_t id, flags;
		uint64_t base_gfn, npages;
	} s[VMM_MAX_SLOTS + 1] = {
		{ 0, KVM_MEM_READONLY, 0, VMM_CTRL_SIZE / 4096 },
	};
	uint32_t reply[4];
	unsigned int i;

	h.guest_pages = VMM_CTRL_SIZE / 4096;
	for (i = 0; i < vmm->cfg.nr_slots; i++) {
		s[i + 1].id = vmm->slots[i].id;
		s[i + 1].base_gfn = vmm->slots[i].gpa / 4096;
		s[i + 1].npages = vmm->slots[i].size / 4096;
		h.guest_pages += s[i + 1].npages;
	}
	if (write(sock, &h, sizeof(h)) != sizeof(h) ||
	    write(sock, s, sizeof(s[0]) * h.nr_slots) !=
	    (ssize_t)(sizeof(s[0]) * h.nr_slots) ||
	    read(sock, reply, 16) != 16)
		return -EIO;
	return reply[1];
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
	self->dst->dev = self->dst->sock = -1;
	self->dst->state_cap = sizeof(self->dst->state);
	ret = vmm_create(&self->dst->vmm, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
	if (self->dst->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dst->dev);
}

FIXTURE_TEARDOWN(raw)
{
	if (self->dst->dev >= 0)
		close(self->dst->dev);
	if (self->dst->sock >= 0)
		close(self->dst->sock);
	vmm_destroy(&self->dst->vmm);
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
	{ 1, 1, 1, 0x20000, 1, 0 },			/* flags */
	{ 9, 0, 1, 0x20000, 1, 0 },			/* unknown type */
	{ 4, 0, 0, 0, 0, 0x7fffffff },			/* huge state */
	{ 5, 0, 0, 0, 0, 0 },				/* end, no state */
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
		EXPECT_EQ(3, reply[1]);
		expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
		close(src);
		close(self->dst->sock);
		self->dst->sock = -1;
	}
	/* Nothing was written into the guest. */
	for (i = 0; i < SLOT_SIZE; i += 4096)
		ASSERT_EQ(0, self->dst->vmm.slots[0].hva[i]);
}

TEST_F_TIMEOUT(raw, bad_handshakes_refused, 600)
{
	static const uint32_t garbage[6] = { 0xdeadbeef, 1, 2, 3, 4, 5 };
	uint32_t wrong_version[6] = { 0x474d564b, 2 | (12 << 16), 3, 0, 0, 0 };
	int src;

	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	ASSERT_EQ(24, write(src, garbage, 24));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PROTOCOL);
	close(src);
	close(self->dst->sock);

	close(self->dst->dev);
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST, 0);
	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	ASSERT_EQ(24, write(src, wrong_version, 24));
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-EPROTO, self->dst->setup_ret);
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_PEER);
	close(src);
}

/* The source VMM is killed in mid pre-copy: the destination fails. */
TEST_F_TIMEOUT(raw, source_vmm_killed, 600)
{
	pid_t pid;
	int src, status;

	ASSERT_EQ(0, tcp_pair(&src, &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmm_config cfg = self->dst->vmm.cfg;
		struct vmm v;
		struct kvmig_dirty_start ds = {};
		struct kvmig_round r = {};
		int dev;

		close(self->dst->sock);
		if (vmm_create(&v, &cfg))
			_exit(1);
		/* Contents to send, at 4 KiB/s: minutes of round 0. */
		memset(v.slots[0].hva, 0x77, v.slots[0].size);
		dev = session(v.vm, KVMIG_ROLE_SOURCE, KVMIG_DIRTY_BITMAP);
		if (dev < 0 || ioctl(dev, KVMIG_DIRTY_START, &ds) ||
		    setup(dev, src, 0, 0, 4096, 3000))
			_exit(2);
		ioctl(dev, KVMIG_XFER_ROUND, &r);	/* throttled: slow */
		_exit(3);
	}
	close(src);
	usleep(500000);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x", status);
	pthread_join(self->dst->thread, NULL);
	EXPECT_EQ(-ECONNRESET, self->dst->recv_ret)
		TH_LOG("%s", strerror(-self->dst->recv_ret));
	expect_failed(_metadata, self->dst->dev, KVMIG_FAIL_IO);
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
	struct kvmig_xfer_setup su = { .sock_fd = 0, .flags = 1 };
	struct kvmig_round r = {};
	struct kvmig_final f = {};
	struct kvmig_recv rv = {};

	if (dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, dev);
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.flags = 0;
	su.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_SETUP, &su));
	EXPECT_EQ(EINVAL, errno);
	su.reserved[1] = 0;
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
	f.state_len = (16U << 20) + 1;
	f.state_ptr = 8;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_FINAL, &f));
	EXPECT_EQ(EINVAL, errno);
	rv.pad = 1;
	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_RECV, &rv));
	EXPECT_EQ(EINVAL, errno);
	close(dev);
}

/* KVMIG_DIRTY_MARK takes only runs inside the layout, all or nothing. */
TEST_F_TIMEOUT(mig, dirty_mark, 300)
{
	struct kvmig_dirty_run runs[2] = {
		{ .gfn = self->src.slots[1].gpa / 4096, .npages = 3,
		  .slot = self->src.slots[1].id },
		{ .gfn = self->src.slots[1].gpa / 4096 + SLOT_PAGES - 1,
		  .npages = 2, .slot = self->src.slots[1].id },
	};
	struct kvmig_dirty_mark m = { .nr_runs = 2,
				      .runs_ptr = (uintptr_t)runs };
	struct kvmig_harvest h = {};
	struct kvmig_stats st;

	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_HARVEST, &h));
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	m.nr_runs = 1;
	EXPECT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
	runs[0].slot = 42;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	m.flags = 1;
	EXPECT_EQ(-1, ioctl(self->dev, KVMIG_DIRTY_MARK, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, get_stats(self->dev, &st) ?: (int)st.pages_pending -
		  (int)(SLOT_PAGES / 4 + 3));
}

/* A socket that is not a connected TCP socket is refused. */
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

TEST_HARNESS_MAIN
