// SPDX-License-Identifier: GPL-2.0
/*
 * The switchover's two-phase commit, one lost message at a time.
 *
 * A relay sits between the source and the destination: it forwards the
 * migration stream both ways, reads it as it goes (the wire format of
 * module/xfer/wire.h) and loses exactly one thing: the destination's
 * PREPARED, the source's COMMIT, the destination's acknowledgement, or
 * both connections, reset right after END. In every case at most one side
 * may run the guest (the source iff its session is FAILED, the destination
 * iff DONE), as the ioctls' return codes say and as the sessions' states
 * say. Then an orchestrator settles what is in doubt with
 * KVMIG_XFER_RESOLVE, and the side the outcome names runs the guest.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "vmm.h"
#include "kselftest_harness.h"
#include "mig_lib.h"


#define SLOT_SIZE	(2UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / 4096)
#define STATE_LEN	5000

/*
 * Both sessions' I/O timeout: a lost message is noticed after this long.
 * Short, so that each case ends in seconds; long enough for a loaded lab.
 */
/*
 * 3000 was once too short on the debug kernel (3 December 2026): the
 * destination answered PREPARED some 30 ms after the source had given up
 * waiting for it, and drop_ack found the source FAILED, not in doubt.
 */
#define IO_MS		5000

/*
 * How long a destination may take to end after the source's FINAL has
 * returned: its own I/O timeout and a generous margin. Only a destination
 * that never gives up waiting for COMMIT takes longer.
 */
#define DEST_END_MS	(4 * IO_MS + 10000)

/* The wire protocol, version 5, as the relay reads it (little-endian). */
#define WIRE_MAGIC	0x474d564bU
#define WIRE_VERSION	5
/*
 * le32 magic, le16 version, page_shift, le32 nr_slots, flags, le64
 * guest_pages, le32 nr_streams, pad, le64 token; then nr_slots slots of
 * SLOT_LEN. The relay carries one connection: nr_streams must be 1.
 */
#define HELLO_LEN	40
#define SLOT_LEN	24
/*
 * With the hello's CHECK flag, after the slots: the CHECK, CHECK_LEN
 * bytes with le32 nr_features last, then nr_features of FEATURE_LEN; the
 * destination's first reply is then followed by FINDINGS: le32 magic,
 * le32 nr, then nr of FINDING_LEN.
 */
#define HELLO_CHECK	0x2
#define CHECK_LEN	48
#define FEATURE_LEN	16
#define FINDINGS_LEN	8
#define FINDING_LEN	40
#define REC_LEN		24	/* le16 type, flags, le32 slot, le64 gfn, ... */
#define REPLY_LEN	16	/* le32 magic, le32 status, le64 pages */

enum {
	REC_PAGES = 1,		/* npages * 4096 bytes follow */
	REC_ZERO,
	REC_ROUND,
	REC_STATE,		/* len bytes follow */
	REC_END,
	REC_COMMIT,
	REC_WAIT,		/* the source waits for its turn */
};

/* The destination's replies, in the order it sends them. */
enum { REPLY_HANDSHAKE, REPLY_PREPARED, REPLY_ACK, NR_REPLIES };

enum relay_action {
	PASS,			/* forward everything */
	DROP_PREPARED,		/* lose the destination's PREPARED */
	DROP_COMMIT,		/* lose the source's COMMIT */
	DROP_ACK,		/* lose the acknowledgement of COMMIT */
	RESET_AFTER_END,	/* reset both connections once END went on */
};

/*
 * The relay, a thread. What it loses is lost on a connection that stays
 * up: an end that stops sending (or closes) is not passed on, so that
 * each side finds out only from its own I/O timeout, as it would from a
 * peer that hangs. Only RESET_AFTER_END closes anything.
 */
struct relay {
	enum relay_action action;
	int src, dst;		/* its ends of the two connections */
	int stop;		/* eventfd: the test is done with it */
	pthread_t thread;
	bool running;

	/*
	 * Source to destination: a unit (the hello, HELLO_LEN bytes, or a
	 * record header, REC_LEN) being gathered, or payload bytes to pass
	 * before the next one.
	 */
	uint8_t hdr[CHECK_LEN];
	size_t have;
	uint64_t skip;
	bool hello_seen;
	bool check_due;		/* the CHECK is the next unit */
	bool check;		/* the hello had one */

	/* Destination to source: a reply being gathered. */
	uint8_t reply[REPLY_LEN];
	size_t reply_have;
	bool findings_due;	/* the first reply's FINDINGS are next */
	uint64_t down_skip;	/* finding bytes to pass on */

	/* What it saw; read once it has stopped. */
	unsigned int records, ends, commits, replies, dropped, resets;
	unsigned int send_errors;
	uint32_t reply_status[NR_REPLIES];
	uint64_t reply_pages[NR_REPLIES];
	uint64_t bytes_up, bytes_down;
	int err;		/* a stream it could not follow, or poll() */
};

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void forward(struct relay *r, int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->send_errors++;
			return;
		}
		p += n;
		len -= n;
	}
}

/* An RST on both connections: SO_LINGER of 0, then close. */
static void reset_both(struct relay *r)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(r->src, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(r->dst, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(r->src);
	close(r->dst);
	r->src = r->dst = -1;
	r->resets++;
}

static void on_hello(struct relay *r)
{
	r->hello_seen = true;
	if (get32(r->hdr) != WIRE_MAGIC || get16(r->hdr + 4) != WIRE_VERSION ||
	    get32(r->hdr + 24) != 1 || get32(r->hdr + 28))
		r->err = -EPROTO;
	r->skip = (uint64_t)get32(r->hdr + 8) * SLOT_LEN;
	r->check = r->check_due = get32(r->hdr + 12) & HELLO_CHECK;
	forward(r, r->dst, r->hdr, HELLO_LEN);
}

static void on_check(struct relay *r)
{
	r->check_due = false;
	r->skip = (uint64_t)get32(r->hdr + CHECK_LEN - 4) * FEATURE_LEN;
	forward(r, r->dst, r->hdr, CHECK_LEN);
}

static void on_record(struct relay *r)
{
	uint16_t type = get16(r->hdr);

	r->records++;
	switch (type) {
	case REC_PAGES:
		r->skip = (uint64_t)get32(r->hdr + 16) * 4096;
		break;
	case REC_ZERO:
	case REC_ROUND:
	case REC_WAIT:
		break;
	case REC_STATE:
		r->skip = get32(r->hdr + 20);
		break;
	case REC_END:
		r->ends++;
		break;
	case REC_COMMIT:
		r->commits++;
		if (r->action == DROP_COMMIT) {
			r->dropped++;
			return;
		}
		break;
	default:
		/* Lost: pass the rest on as it comes, unread. */
		r->err = -EPROTO;
		break;
	}
	forward(r, r->dst, r->hdr, REC_LEN);
	if (type == REC_END && r->action == RESET_AFTER_END)
		reset_both(r);
}

/* Source to destination, one header at a time. */
static void from_source(struct relay *r, const uint8_t *p, size_t n)
{
	size_t k, want;

	while (n && r->src >= 0) {
		if (r->err) {
			forward(r, r->dst, p, n);
			return;
		}
		if (r->skip) {
			k = r->skip < n ? r->skip : n;
			forward(r, r->dst, p, k);
			r->skip -= k;
			p += k;
			n -= k;
			continue;
		}
		want = !r->hello_seen ? HELLO_LEN :
		       r->check_due ? CHECK_LEN : REC_LEN;
		k = want - r->have < n ? want - r->have : n;
		memcpy(r->hdr + r->have, p, k);
		r->have += k;
		p += k;
		n -= k;
		if (r->have < want)
			return;
		r->have = 0;
		if (!r->hello_seen)
			on_hello(r);
		else if (r->check_due)
			on_check(r);
		else
			on_record(r);
	}
}

/* Destination to source: replies of 16 bytes. */
static void from_dest(struct relay *r, const uint8_t *p, size_t n)
{
	unsigned int i;
	size_t k;

	while (n && r->src >= 0) {
		if (r->down_skip) {
			k = r->down_skip < n ? r->down_skip : n;
			forward(r, r->src, p, k);
			r->down_skip -= k;
			p += k;
			n -= k;
			continue;
		}
		if (r->findings_due) {
			k = FINDINGS_LEN - r->reply_have < n ?
			    FINDINGS_LEN - r->reply_have : n;
			memcpy(r->reply + r->reply_have, p, k);
			r->reply_have += k;
			p += k;
			n -= k;
			if (r->reply_have < FINDINGS_LEN)
				return;
			r->reply_have = 0;
			r->findings_due = false;
			r->down_skip = (uint64_t)get32(r->reply + 4) *
				       FINDING_LEN;
			forward(r, r->src, r->reply, FINDINGS_LEN);
			continue;
		}
		k = REPLY_LEN - r->reply_have < n ? REPLY_LEN - r->reply_have : n;
		memcpy(r->reply + r->reply_have, p, k);
		r->reply_have += k;
		p += k;
		n -= k;
		if (r->reply_have < REPLY_LEN)
			return;
		r->reply_have = 0;
		i = r->replies++;
		if (get32(r->reply) != WIRE_MAGIC)
			r->err = -EPROTO;
		if (i < NR_REPLIES) {
			r->reply_status[i] = get32(r->reply + 4);
			r->reply_pages[i] = get64(r->reply + 8);
		}
		/* OK, E_LAYOUT, E_STREAMS, E_CHECK: the findings follow. */
		if (i == REPLY_HANDSHAKE && r->check &&
		    (get32(r->reply + 4) == 0 || get32(r->reply + 4) == 2 ||
		     get32(r->reply + 4) == 5 || get32(r->reply + 4) == 6))
			r->findings_due = true;
		if ((i == REPLY_PREPARED && r->action == DROP_PREPARED) ||
		    (i == REPLY_ACK && r->action == DROP_ACK)) {
			r->dropped++;
			continue;
		}
		forward(r, r->src, r->reply, REPLY_LEN);
	}
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	struct pollfd p[3] = {
		{ .fd = r->src, .events = POLLIN },
		{ .fd = r->dst, .events = POLLIN },
		{ .fd = r->stop, .events = POLLIN },
	};
	size_t size = 1 << 16;
	uint8_t *buf = malloc(size);
	unsigned int i;
	ssize_t n;

	if (!buf) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (;;) {
		if (r->src < 0)		/* reset: the numbers may be reused */
			p[0].fd = p[1].fd = -1;
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r->err = -errno;
			break;
		}
		if (p[2].revents)
			break;
		for (i = 0; i < 2 && r->src >= 0; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			n = recv(p[i].fd, buf, size, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* This way is over; the other end is not told. */
				p[i].fd = -1;
				continue;
			}
			if (i == 0) {
				r->bytes_up += n;
				from_source(r, buf, n);
			} else {
				r->bytes_down += n;
				from_dest(r, buf, n);
			}
		}
	}
	free(buf);
	return NULL;
}

/*
 * Connect @src_sock (the source's socket) and @dst_sock (the
 * destination's) through a relay doing @action.
 */
static int relay_start(struct relay *r, enum relay_action action,
		       int *src_sock, int *dst_sock)
{
	/* A relay blocked on a destination that stopped reading gives up. */
	struct timeval tv = { .tv_sec = 4 * IO_MS / 1000 };
	int one = 1, ret;

	memset(r, 0, sizeof(*r));
	r->action = action;
	r->src = r->dst = r->stop = -1;
	ret = tcp_pair(src_sock, &r->src);
	if (!ret)
		ret = tcp_pair(&r->dst, dst_sock);
	if (ret)
		return ret;
	/* Replies and COMMIT are small: Nagle must not hold them. */
	setsockopt(r->src, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(r->dst, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(r->src, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(r->dst, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r->stop = eventfd(0, EFD_CLOEXEC);
	if (r->stop < 0)
		return -errno;
	if (pthread_create(&r->thread, NULL, relay_thread, r))
		return -EAGAIN;
	r->running = true;
	return 0;
}

static void relay_stop(struct relay *r)
{
	uint64_t one = 1;

	if (r->running) {
		if (write(r->stop, &one, sizeof(one)) == sizeof(one))
			pthread_join(r->thread, NULL);
		r->running = false;
	}
	if (r->src >= 0)
		close(r->src);
	if (r->dst >= 0)
		close(r->dst);
	if (r->stop >= 0)
		close(r->stop);
	r->src = r->dst = r->stop = -1;
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

/* The VMM writes the mailbox itself: KVM does not log that. */
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

/* Defaults for the rest: a 300 ms downtime budget, no bandwidth cap. */
static int setup(int dev, int sock, uint32_t max_rounds, int event_fd)
{
	struct kvmig_xfer_setup st = {
		.sock_fd = sock, .max_rounds = max_rounds,
		.io_timeout_ms = IO_MS,
	};

	if (event_fd >= 0) {
		st.flags = KVMIG_XFER_SETUP_EVENTFD;
		st.event_fd = event_fd;
	}
	return ioctl(dev, KVMIG_XFER_SETUP, &st) ? -errno : 0;
}

static int get_stats(int dev, struct kvmig_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(dev, KVMIG_GET_STATS, st) ? -errno : 0;
}

static uint32_t state_of(int dev)
{
	struct kvmig_stats st;

	return get_stats(dev, &st) ? ~0U : st.state;
}

static int resolve(int dev, uint32_t decision)
{
	struct kvmig_resolve rs = { .decision = decision };

	return ioctl(dev, KVMIG_XFER_RESOLVE, &rs) ? -errno : 0;
}

static const char *state_name(uint32_t state)
{
	switch (state) {
	case KVMIG_STATE_DONE:		return "DONE";
	case KVMIG_STATE_FAILED:	return "FAILED";
	case KVMIG_STATE_IN_DOUBT:	return "IN_DOUBT";
	case KVMIG_STATE_PRECOPY:	return "PRECOPY";
	case KVMIG_STATE_RECEIVING:	return "RECEIVING";
	default:			return "other";
	}
}

/* The state a transfer call's return value announces. */
static uint32_t state_of_ret(int ret)
{
	return !ret ? KVMIG_STATE_DONE :
	       ret == -EINPROGRESS ? KVMIG_STATE_IN_DOUBT : KVMIG_STATE_FAILED;
}

/* The destination side, in a thread: attach, handshake, receive. */
struct dest {
	struct vmm vmm;
	int dev, sock;
	int setup_ret, recv_ret;
	struct kvmig_recv r;
	char state[8192];
	pthread_t thread;
};

static void *dest_thread(void *arg)
{
	struct dest *d = arg;

	d->setup_ret = setup(d->dev, d->sock, 0, -1);
	if (d->setup_ret) {
		d->recv_ret = d->setup_ret;
		return NULL;
	}
	memset(&d->r, 0, sizeof(d->r));
	d->r.state_ptr = (uintptr_t)d->state;
	d->r.state_cap = sizeof(d->state);
	d->recv_ret = ioctl(d->dev, KVMIG_XFER_RECV, &d->r) ? -errno : 0;
	return NULL;
}

/*
 * The source's KVMIG_XFER_FINAL, in a thread, so that the test can watch
 * the session's eventfd meanwhile.
 */
struct final_call {
	int dev;
	struct kvmig_final f;
	int ret;
	pthread_t thread;
};

static void *final_thread(void *arg)
{
	struct final_call *fc = arg;

	fc->ret = ioctl(fc->dev, KVMIG_XFER_FINAL, &fc->f) ? -errno : 0;
	return NULL;
}

static void add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static long ms_until(const struct timespec *end)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (end->tv_sec - now.tv_sec) * 1000 +
	       (end->tv_nsec - now.tv_nsec) / 1000000;
}

FIXTURE(commit) {
	struct vmm src;
	struct dest *dst;
	struct relay relay;
	int dev;		/* source session */
	int sock;		/* the source's end, towards the relay */
	int efd;		/* eventfd for the source's setup, or -1 */
	bool dest_started;
	char state[STATE_LEN];	/* the source's device state */
	int src_ret;		/* its KVMIG_XFER_FINAL */
};

FIXTURE_VARIANT(commit) {
	enum vmm_dirty mode;
};

FIXTURE_VARIANT_ADD(commit, ring) {
	.mode = VMM_DIRTY_RING,
};

FIXTURE_VARIANT_ADD(commit, bitmap) {
	.mode = VMM_DIRTY_BITMAP,
};

FIXTURE_SETUP(commit)
{
	struct vmm_config cfg = {
		.dirty = variant->mode, .nr_vcpus = 1, .nr_slots = 2,
		.slot_size = SLOT_SIZE,
	};
	struct kvmig_dirty_start ds = {};
	unsigned int i;
	int ret;

	self->dev = self->sock = self->efd = -1;
	self->relay.src = self->relay.dst = self->relay.stop = -1;
	self->dst = calloc(1, sizeof(*self->dst));
	ASSERT_NE(NULL, self->dst);
	self->dst->dev = self->dst->sock = -1;
	for (i = 0; i < STATE_LEN; i++)
		self->state[i] = i * 7 + 1;

	ret = vmm_create(&self->src, &cfg);
	if (ret == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvm not present");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, vmm_load(&self->src, guest_fill,
			      guest_fill_end - guest_fill));
	ASSERT_EQ(0, vmm_create(&self->dst->vmm, &cfg));

	self->dev = session(self->src.vm, KVMIG_ROLE_SOURCE,
			    variant->mode == VMM_DIRTY_RING ?
			    KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP);
	if (self->dev == -ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, KVMIG_DIRTY_START, &ds));
	self->dst->dev = session(self->dst->vmm.vm, KVMIG_ROLE_DEST,
				 KVMIG_DIRTY_AUTO);
	ASSERT_LE(0, self->dst->dev);

	/* The guest has written something before migration starts. */
	fill(&self->src, 0, 0, SLOT_PAGES / 4, 4, 0x1000);
	ASSERT_EQ(0, vmm_run(&self->src));
}

FIXTURE_TEARDOWN(commit)
{
	/*
	 * Cancel, and close the relay: a destination still in its
	 * handshake, where there may be nothing to cancel, sees the end of
	 * the stream.
	 */
	if (self->dest_started)
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
	relay_stop(&self->relay);
	if (self->dest_started)
		pthread_join(self->dst->thread, NULL);
	if (self->dev >= 0)
		close(self->dev);
	if (self->sock >= 0)
		close(self->sock);
	if (self->efd >= 0)
		close(self->efd);
	if (self->dst->dev >= 0)
		close(self->dst->dev);
	if (self->dst->sock >= 0)
		close(self->dst->sock);
	vmm_destroy(&self->dst->vmm);
	vmm_destroy(&self->src);
	free(self->dst);
}

/* Take what the eventfd has counted so far. */
static void drain(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) == sizeof(v))
		;
}

/*
 * Wait for the eventfd until a signal finds the source's session ended.
 * Signals for earlier events (a round's result) may come first: each is
 * read, and the wait goes on while the session still runs.
 */
static uint32_t wait_end_signal(struct __test_metadata *_metadata,
				int efd, int dev)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	struct timespec end;
	uint32_t state = ~0U;
	bool ended = false;
	long left;

	clock_gettime(CLOCK_MONOTONIC, &end);
	add_ms(&end, 2 * IO_MS + DEST_END_MS);
	while (!ended && (left = ms_until(&end)) > 0) {
		if (poll(&p, 1, left) <= 0)
			continue;
		drain(efd);
		state = state_of(dev);
		ended = state == KVMIG_STATE_DONE ||
			state == KVMIG_STATE_IN_DOUBT ||
			state == KVMIG_STATE_FAILED;
		if (!ended)
			TH_LOG("eventfd signalled in state %s",
			       state_name(state));
	}
	EXPECT_TRUE(ended) TH_LOG("eventfd not signalled when the session ended (state now %s)",
				  state_name(state_of(dev)));
	return state;
}

/*
 * Migrate through a relay doing @action: pre-copy rounds until converged,
 * then KVMIG_XFER_FINAL with a device state. Returns when the source's
 * FINAL and the destination's RECV have both returned (or the destination
 * was given up on: a failure).
 */
static void migrate(struct __test_metadata *_metadata,
		    FIXTURE_DATA(commit) *self, enum relay_action action)
{
	struct final_call fc = { .dev = self->dev };
	struct kvmig_round r;
	struct timespec end;
	uint32_t end_state = ~0U;
	unsigned int i;
	int ret;

	ASSERT_EQ(0, relay_start(&self->relay, action, &self->sock,
				 &self->dst->sock));
	ASSERT_EQ(0, pthread_create(&self->dst->thread, NULL, dest_thread,
				    self->dst));
	self->dest_started = true;
	ASSERT_EQ(0, setup(self->dev, self->sock, 6, self->efd));

	/* Nothing is in doubt during pre-copy: RESOLVE changes nothing. */
	EXPECT_EQ(-EBUSY, resolve(self->dev, KVMIG_RESOLVE_COMMIT));
	EXPECT_EQ(-EBUSY, resolve(self->dev, KVMIG_RESOLVE_ABORT));
	EXPECT_EQ(KVMIG_STATE_PRECOPY, state_of(self->dev));

	for (i = 0; i < 8; i++) {
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(0, ioctl(self->dev, KVMIG_XFER_ROUND, &r))
			TH_LOG("round %u: %s", i, strerror(errno));
		if (r.status != KVMIG_ROUND_SENT)
			break;
		/* The guest goes on writing between rounds. */
		fill(&self->src, i % 2, 7 * i, 50, 3, 0x2000 + i);
		ASSERT_EQ(0, mark_mbox(self->dev));
		ASSERT_EQ(0, vmm_run(&self->src));
	}
	ASSERT_NE(KVMIG_ROUND_SENT, r.status);

	/* Paused: its last writes go in the final pass. */
	fill(&self->src, 1, 500, 10, 1, 0x3000);
	ASSERT_EQ(0, mark_mbox(self->dev));
	ASSERT_EQ(0, vmm_run(&self->src));
	if (self->efd >= 0)
		drain(self->efd);	/* the rounds' results */

	fc.f.state_ptr = (uintptr_t)self->state;
	fc.f.state_len = STATE_LEN;
	ASSERT_EQ(0, pthread_create(&fc.thread, NULL, final_thread, &fc));
	if (self->efd >= 0)
		end_state = wait_end_signal(_metadata, self->efd, self->dev);
	pthread_join(fc.thread, NULL);
	self->src_ret = fc.ret;
	if (self->efd >= 0)
		EXPECT_EQ(state_of_ret(fc.ret), end_state);

	/* The destination ends on its own, by COMMIT or its I/O timeout. */
	clock_gettime(CLOCK_REALTIME, &end);
	add_ms(&end, DEST_END_MS);
	ret = pthread_timedjoin_np(self->dst->thread, NULL, &end);
	EXPECT_EQ(0, ret) TH_LOG("the destination did not end in %d ms (state %s)",
				 DEST_END_MS,
				 state_name(state_of(self->dst->dev)));
	if (ret)
		ioctl(self->dst->dev, KVMIG_XFER_CANCEL);
	relay_stop(&self->relay);
	if (ret)
		pthread_join(self->dst->thread, NULL);
	self->dest_started = false;

	TH_LOG("source FINAL %d (%s), destination RECV %d (%s)", fc.ret,
	       strerror(-fc.ret), self->dst->recv_ret,
	       strerror(-self->dst->recv_ret));
	TH_LOG("relay: %llu bytes up, %llu down, %u records, %u END, %u COMMIT, %u replies, %u dropped, %u resets, %u send errors",
	       (unsigned long long)self->relay.bytes_up,
	       (unsigned long long)self->relay.bytes_down,
	       self->relay.records, self->relay.ends, self->relay.commits,
	       self->relay.replies, self->relay.dropped, self->relay.resets,
	       self->relay.send_errors);
	ASSERT_EQ(0, self->relay.err) TH_LOG("the relay could not follow the stream");
	/* What it did not mean to lose, it passed on whole. */
	EXPECT_EQ(0, self->relay.send_errors);
	ASSERT_EQ(0, self->dst->setup_ret);
	/* The handshake went through, accepted. */
	ASSERT_LE(1, self->relay.replies);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_HANDSHAKE]);
	/* Every case goes as far as END. */
	ASSERT_EQ(1, self->relay.ends);
}

/*
 * Who may run the guest: the source iff FAILED, the destination iff DONE;
 * never both. Checked by the calls' return values and by the sessions'
 * states, which must agree.
 */
static void expect_exclusive(struct __test_metadata *_metadata,
			     FIXTURE_DATA(commit) *self)
{
	uint32_t s = state_of(self->dev), d = state_of(self->dst->dev);
	bool src_runs = s == KVMIG_STATE_FAILED;
	bool dst_runs = d == KVMIG_STATE_DONE;

	TH_LOG("source %s, destination %s", state_name(s), state_name(d));
	ASSERT_FALSE(src_runs && dst_runs);
	ASSERT_FALSE(state_of_ret(self->src_ret) == KVMIG_STATE_FAILED &&
		     state_of_ret(self->dst->recv_ret) == KVMIG_STATE_DONE);
	EXPECT_EQ(state_of_ret(self->src_ret), s);
	EXPECT_EQ(state_of_ret(self->dst->recv_ret), d);
}

/*
 * poll() on a session: EPOLLIN when DONE, EPOLLPRI when IN_DOUBT, EPOLLERR
 * when FAILED. A VMM that waits for EPOLLIN must never take a session in
 * doubt for a finished one.
 */
static void expect_poll(struct __test_metadata *_metadata, int dev,
			bool dest)
{
	struct pollfd p = { .fd = dev, .events = POLLIN | POLLPRI };
	uint32_t state = state_of(dev);

	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_TRUE(state == KVMIG_STATE_DONE ||
		    state == KVMIG_STATE_IN_DOUBT ||
		    state == KVMIG_STATE_FAILED) TH_LOG("state %u", state);
	switch (state) {
	case KVMIG_STATE_DONE:
		EXPECT_TRUE(p.revents & POLLIN);
		EXPECT_FALSE(p.revents & (POLLERR | POLLPRI));
		break;
	case KVMIG_STATE_IN_DOUBT:
		EXPECT_TRUE(p.revents & POLLPRI);
		EXPECT_FALSE(p.revents & POLLERR);
		if (dest)	/* a source's convergence may linger */
			EXPECT_FALSE(p.revents & POLLIN);
		break;
	case KVMIG_STATE_FAILED:
		EXPECT_TRUE(p.revents & POLLERR);
		break;
	}
	TH_LOG("%s %s: revents %#x", dest ? "destination" : "source",
	       state_name(state), p.revents);
}

/* Everything arrived: the destination holds the source's image. */
static void expect_image(struct __test_metadata *_metadata,
			 FIXTURE_DATA(commit) *self)
{
	struct vmm *a = &self->src, *b = &self->dst->vmm;
	struct kvmig_stats st;
	unsigned int i;

	EXPECT_EQ(STATE_LEN, self->dst->r.state_len);
	EXPECT_EQ(0, memcmp(self->state, self->dst->state, STATE_LEN));
	EXPECT_EQ(0, memcmp(a->ctrl, b->ctrl, VMM_CTRL_SIZE));
	for (i = 0; i < a->cfg.nr_slots; i++)
		EXPECT_EQ(0, memcmp(a->slots[i].hva, b->slots[i].hva,
				    a->slots[i].size))
			TH_LOG("slot %u differs", a->slots[i].id);
	ASSERT_EQ(0, get_stats(self->dev, &st));
	EXPECT_EQ(st.pages_sent, self->dst->r.pages_received);
	/* PREPARED carried the same count. */
	EXPECT_EQ(self->dst->r.pages_received,
		  self->relay.reply_pages[REPLY_PREPARED]);
}

/* The source VM is intact and runs: a page changes. */
static void expect_source_runs(struct __test_metadata *_metadata,
			       struct vmm *src)
{
	uint32_t v;

	memcpy(&v, src->slots[1].hva + 3 * 4096, 4);
	ASSERT_NE(0xabcd, v);
	fill(src, 1, 3, 1, 1, 0xabcd);
	ASSERT_EQ(0, vmm_run(src));
	memcpy(&v, src->slots[1].hva + 3 * 4096, 4);
	EXPECT_EQ(0xabcd, v);
}

/* The destination guest runs on from the migrated memory. */
static void expect_dest_runs(struct __test_metadata *_metadata,
			     struct vmm *dst)
{
	uint32_t v;

	ASSERT_EQ(0, vmm_load(dst, guest_fill, guest_fill_end - guest_fill));
	fill(dst, 0, 1, 1, 1, 0x4444);
	ASSERT_EQ(0, vmm_run(dst));
	memcpy(&v, dst->slots[0].hva + 4096, 4);
	EXPECT_EQ(0x4444, v);
}

/*
 * Resolve one session in doubt: a bad call first (it must change
 * nothing), then @decision.
 */
static void resolve_one(struct __test_metadata *_metadata, int dev,
			uint32_t decision)
{
	struct kvmig_resolve bad = { .decision = decision, .flags = 1 };
	struct kvmig_stats st;

	EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_RESOLVE, &bad));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(KVMIG_STATE_IN_DOUBT, state_of(dev));
	ASSERT_EQ(0, resolve(dev, decision)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_stats(dev, &st));
	if (decision == KVMIG_RESOLVE_COMMIT) {
		EXPECT_EQ(KVMIG_STATE_DONE, st.state);
	} else {
		EXPECT_EQ(KVMIG_STATE_FAILED, st.state);
		EXPECT_EQ(KVMIG_FAIL_ABORTED, st.fail_reason);
	}
}

/*
 * Settle as an orchestrator, which can ask both hosts: abort if either
 * side FAILED; commit if the destination may already run (DONE); with
 * both in doubt, either is right: commit, unless @prefer_abort.
 * Then the side the outcome names runs the guest, and nothing is in doubt.
 */
static void settle(struct __test_metadata *_metadata,
		   FIXTURE_DATA(commit) *self, bool prefer_abort)
{
	uint32_t s = state_of(self->dev), d = state_of(self->dst->dev);
	uint32_t s_reason, d_reason, decision;
	struct kvmig_stats st;

	expect_poll(_metadata, self->dev, false);
	expect_poll(_metadata, self->dst->dev, true);
	/* Why a session failed on its own, before anything is resolved. */
	ASSERT_EQ(0, get_stats(self->dev, &st));
	s_reason = s == KVMIG_STATE_FAILED ? st.fail_reason : 0;
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	d_reason = d == KVMIG_STATE_FAILED ? st.fail_reason : 0;

	if (s == KVMIG_STATE_FAILED || d == KVMIG_STATE_FAILED)
		decision = KVMIG_RESOLVE_ABORT;
	else if (s == KVMIG_STATE_DONE || d == KVMIG_STATE_DONE)
		decision = KVMIG_RESOLVE_COMMIT;
	else
		decision = prefer_abort ? KVMIG_RESOLVE_ABORT :
				  KVMIG_RESOLVE_COMMIT;
	TH_LOG("orchestrator: %s",
	       decision == KVMIG_RESOLVE_COMMIT ? "commit" : "abort");

	if (s == KVMIG_STATE_IN_DOUBT)
		resolve_one(_metadata, self->dev, decision);
	if (d == KVMIG_STATE_IN_DOUBT)
		resolve_one(_metadata, self->dst->dev, decision);

	/* Settled: nothing is in doubt, RESOLVE has nothing to do. */
	EXPECT_EQ(-EBUSY, resolve(self->dev, KVMIG_RESOLVE_COMMIT));
	EXPECT_EQ(-EBUSY, resolve(self->dev, KVMIG_RESOLVE_ABORT));
	EXPECT_EQ(-EBUSY, resolve(self->dst->dev, KVMIG_RESOLVE_COMMIT));
	EXPECT_EQ(-EBUSY, resolve(self->dst->dev, KVMIG_RESOLVE_ABORT));

	s = state_of(self->dev);
	d = state_of(self->dst->dev);
	TH_LOG("settled: source %s, destination %s", state_name(s),
	       state_name(d));
	if (decision == KVMIG_RESOLVE_COMMIT) {
		ASSERT_EQ(KVMIG_STATE_DONE, s);
		ASSERT_EQ(KVMIG_STATE_DONE, d);
	} else {
		ASSERT_EQ(KVMIG_STATE_FAILED, s);
		ASSERT_EQ(KVMIG_STATE_FAILED, d);
	}
	/* A session that had failed on its own keeps its reason. */
	ASSERT_EQ(0, get_stats(self->dev, &st));
	if (s_reason) {
		EXPECT_NE(KVMIG_FAIL_NONE, s_reason);
		EXPECT_EQ(s_reason, st.fail_reason);
	}
	ASSERT_EQ(0, get_stats(self->dst->dev, &st));
	if (d_reason)
		EXPECT_EQ(d_reason, st.fail_reason);
	expect_poll(_metadata, self->dev, false);
	expect_poll(_metadata, self->dst->dev, true);

	if (s == KVMIG_STATE_FAILED)
		expect_source_runs(_metadata, &self->src);
	if (d == KVMIG_STATE_DONE)
		expect_dest_runs(_metadata, &self->dst->vmm);
}

/* Nothing lost: both DONE, the destination has the image and the state. */
TEST_F_TIMEOUT(commit, pass, 300)
{
	migrate(_metadata, self, PASS);
	EXPECT_EQ(1, self->relay.commits);
	EXPECT_EQ(3, self->relay.replies);
	EXPECT_EQ(0, self->relay.dropped);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_PREPARED]);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_ACK]);
	expect_exclusive(_metadata, self);
	ASSERT_EQ(0, self->src_ret);
	ASSERT_EQ(0, self->dst->recv_ret);
	expect_image(_metadata, self);
	settle(_metadata, self, false);
}

/*
 * PREPARED lost: the source never sent COMMIT, so it fails and resumes;
 * the destination has everything but no COMMIT: in doubt, not running.
 */
TEST_F_TIMEOUT(commit, drop_prepared, 300)
{
	migrate(_metadata, self, DROP_PREPARED);
	ASSERT_LE(2, self->relay.replies);
	EXPECT_EQ(1, self->relay.dropped);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_PREPARED]);
	/* No COMMIT without PREPARED. */
	EXPECT_EQ(0, self->relay.commits);
	expect_exclusive(_metadata, self);
	EXPECT_NE(0, self->src_ret);
	EXPECT_NE(-EINPROGRESS, self->src_ret);
	EXPECT_EQ(KVMIG_STATE_FAILED, state_of(self->dev));
	EXPECT_EQ(-EINPROGRESS, self->dst->recv_ret);
	EXPECT_EQ(KVMIG_STATE_IN_DOUBT, state_of(self->dst->dev));
	/* In doubt, the destination got the state and the image all the same. */
	expect_image(_metadata, self);
	settle(_metadata, self, false);
}

static void drop_commit(struct __test_metadata *_metadata,
			FIXTURE_DATA(commit) *self, bool prefer_abort)
{
	migrate(_metadata, self, DROP_COMMIT);
	ASSERT_EQ(1, self->relay.commits);
	EXPECT_EQ(1, self->relay.dropped);
	/* The destination answered PREPARED and never acknowledged. */
	EXPECT_EQ(2, self->relay.replies);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_PREPARED]);
	expect_exclusive(_metadata, self);
	EXPECT_EQ(-EINPROGRESS, self->src_ret);
	EXPECT_EQ(KVMIG_STATE_IN_DOUBT, state_of(self->dev));
	EXPECT_EQ(-EINPROGRESS, self->dst->recv_ret);
	EXPECT_EQ(KVMIG_STATE_IN_DOUBT, state_of(self->dst->dev));
	expect_image(_metadata, self);
	settle(_metadata, self, prefer_abort);
}

/* COMMIT lost: both in doubt, neither runs; the orchestrator commits. */
TEST_F_TIMEOUT(commit, drop_commit, 300)
{
	drop_commit(_metadata, self, false);
}

/*
 * COMMIT lost, and the orchestrator aborts instead, which is as right
 * while neither side runs: both FAILED (aborted), the source resumes.
 */
TEST_F_TIMEOUT(commit, drop_commit_then_abort, 300)
{
	drop_commit(_metadata, self, true);
}

/* The acknowledgement lost: the destination runs, the source is in doubt. */
TEST_F_TIMEOUT(commit, drop_ack, 300)
{
	migrate(_metadata, self, DROP_ACK);
	EXPECT_EQ(1, self->relay.commits);
	ASSERT_EQ(3, self->relay.replies);
	EXPECT_EQ(1, self->relay.dropped);
	EXPECT_EQ(0, self->relay.reply_status[REPLY_ACK]);
	expect_exclusive(_metadata, self);
	EXPECT_EQ(-EINPROGRESS, self->src_ret);
	EXPECT_EQ(KVMIG_STATE_IN_DOUBT, state_of(self->dev));
	EXPECT_EQ(0, self->dst->recv_ret);
	EXPECT_EQ(KVMIG_STATE_DONE, state_of(self->dst->dev));
	expect_image(_metadata, self);
	settle(_metadata, self, false);
}

/*
 * Both connections reset right after END: the source had no PREPARED and
 * fails; the destination fails, or is in doubt if it had taken END and
 * answered PREPARED before the reset reached it.
 */
TEST_F_TIMEOUT(commit, reset_after_end, 300)
{
	uint32_t d;

	migrate(_metadata, self, RESET_AFTER_END);
	ASSERT_EQ(1, self->relay.resets);
	EXPECT_EQ(0, self->relay.commits);
	expect_exclusive(_metadata, self);
	EXPECT_NE(0, self->src_ret);
	EXPECT_NE(-EINPROGRESS, self->src_ret);
	EXPECT_EQ(KVMIG_STATE_FAILED, state_of(self->dev));
	d = state_of(self->dst->dev);
	EXPECT_TRUE(d == KVMIG_STATE_FAILED || d == KVMIG_STATE_IN_DOUBT);
	TH_LOG("the destination was %s after the reset (RECV %s)",
	       state_name(d), strerror(-self->dst->recv_ret));
	if (d == KVMIG_STATE_IN_DOUBT) {
		EXPECT_EQ(STATE_LEN, self->dst->r.state_len);
		EXPECT_EQ(0, memcmp(self->state, self->dst->state, STATE_LEN));
	}
	settle(_metadata, self, false);
}

/*
 * The source's eventfd is signalled when its session ends, DONE or in
 * doubt, while KVMIG_XFER_FINAL is still being waited for in a thread.
 */
TEST_F_TIMEOUT(commit, eventfd_done, 300)
{
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	migrate(_metadata, self, PASS);
	expect_exclusive(_metadata, self);
	ASSERT_EQ(0, self->src_ret);
	settle(_metadata, self, false);
}

TEST_F_TIMEOUT(commit, eventfd_in_doubt, 300)
{
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	migrate(_metadata, self, DROP_ACK);
	EXPECT_EQ(1, self->relay.dropped);
	expect_exclusive(_metadata, self);
	ASSERT_EQ(-EINPROGRESS, self->src_ret);
	settle(_metadata, self, false);
}

/* RESOLVE's arguments are checked first; then it needs a session in doubt. */
TEST(resolve_abi)
{
	static const struct kvmig_resolve bad[] = {
		{ .decision = 0 },
		{ .decision = 3 },
		{ .decision = ~0U },
		{ .decision = KVMIG_RESOLVE_COMMIT, .flags = 1 },
		{ .decision = KVMIG_RESOLVE_ABORT, .flags = 1U << 31 },
		{ .decision = KVMIG_RESOLVE_COMMIT, .reserved = { 1 } },
		{ .decision = KVMIG_RESOLVE_ABORT, .reserved = { 0, 0, 1 } },
	};
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);
	unsigned int i;

	if (dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, dev);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, ioctl(dev, KVMIG_XFER_RESOLVE, &bad[i]));
		EXPECT_EQ(EINVAL, errno) TH_LOG("case %u", i);
	}
	EXPECT_EQ(-EBUSY, resolve(dev, KVMIG_RESOLVE_COMMIT));
	EXPECT_EQ(-EBUSY, resolve(dev, KVMIG_RESOLVE_ABORT));
	EXPECT_EQ(KVMIG_STATE_IDLE, state_of(dev));
	close(dev);
}

/* The module says it speaks the two-phase commit, on its worker. */
TEST(api_announces_commit)
{
	__u64 feat[KVMIG_NR_FEATURE_WORDS] = {};
	struct kvmig_api api = {
		.nr_features = KVMIG_NR_FEATURE_WORDS,
		.features_ptr = (uintptr_t)feat,
	};
	int dev = open("/dev/kvmig", O_RDWR | O_CLOEXEC);

	if (dev < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, "/dev/kvmig not present");
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, ioctl(dev, KVMIG_GET_API, &api));
	EXPECT_EQ(KVMIG_API_VERSION, api.api_version);
	EXPECT_TRUE(feat[0] & KVMIG_F0_COMMIT);
	EXPECT_TRUE(feat[0] & KVMIG_F0_WORKER);
	close(dev);
}

TEST_HARNESS_MAIN
