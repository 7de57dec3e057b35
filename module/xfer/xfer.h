/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The transfer engine: pre-copy rounds, switchover and reception over one
 * or more streams, each a transport (TCP now, RDMA later) behind one ops
 * table.
 */
#ifndef _KVMIG_XFER_H
#define _KVMIG_XFER_H

#include <linux/atomic.h>
#include <linux/bvec.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/time64.h>
#include <linux/types.h>
#include <linux/wait.h>

#include <kvmig.h>
#include "../compat.h"
#include "wire.h"

/* The RDMA transport is built where the kernel has the RDMA CM. */
#define KVMIG_HAVE_RDMA		IS_ENABLED(CONFIG_INFINIBAND_ADDR_TRANS)

struct kvmig_dirty;
struct kvmig_stream;
struct kvmig_xfer;
struct mm_struct;
struct page;
struct socket;
struct task_struct;

/**
 * struct kvmig_transport_ops - moving bytes and pages over one stream
 * @name: for messages
 * @connect: may be NULL: finish setting the connection up, on the
 *	worker, before the handshake's first record
 * @send: send @len bytes of @buf; @more: more follows at once
 * @send_pages: send @n whole pages, zero-copy where the transport allows;
 *	*@spliced counts the pages that went without a copy
 * @recv: receive exactly @len bytes into @buf
 * @recv_pages: receive exactly @n whole pages, straight into them
 * @flush: send now what @send and @send_pages held back (@more): the
 *	end of a pass
 * @shutdown: make blocked and future calls fail: receiving only with
 *	@recv_only, else both ways; may be called from any context that
 *	can sleep, by any thread
 * @release: drop the connection and the transport's state
 *
 * All but @shutdown run on the thread that owns the stream (struct
 * kvmig_stream). Each returns 0 or -errno; after an error the stream is
 * broken and the session fails.
 */
struct kvmig_transport_ops {
	const char *name;
	int (*connect)(struct kvmig_stream *s);
	int (*send)(struct kvmig_stream *s, const void *buf, size_t len,
		    bool more);
	int (*send_pages)(struct kvmig_stream *s, struct page **pages, u32 n,
			  bool more, u32 *spliced);
	int (*recv)(struct kvmig_stream *s, void *buf, size_t len);
	int (*recv_pages)(struct kvmig_stream *s, struct page **pages, u32 n);
	void (*flush)(struct kvmig_stream *s);
	void (*shutdown)(struct kvmig_stream *s, bool recv_only);
	void (*release)(struct kvmig_stream *s);
};

struct socket *kvmig_tcp_lookup(int fd, u32 io_timeout_ms);
int kvmig_tcp_attach(struct kvmig_stream *s, int fd, u32 io_timeout_ms);
#if KVMIG_HAVE_RDMA
int kvmig_rdma_attach(struct kvmig_stream *s, int fd, u32 io_timeout_ms);
#else
static inline int kvmig_rdma_attach(struct kvmig_stream *s, int fd,
				    u32 io_timeout_ms)
{
	return -EOPNOTSUPP;
}
#endif

/**
 * struct kvmig_stream - one connection of a transfer
 *
 * Owned by its thread while it runs a job (streams but the first), by the
 * session's worker otherwise: the worker runs the first stream's share of
 * every job itself, and the handshake and END on every stream while
 * their threads are idle. The counters are written by the owner only and
 * read by the worker (READ_ONCE) to sum them into the transfer's stats.
 *
 * @x: the transfer
 * @index: 0 (control records and its share of pages) .. nr_streams - 1
 * @ops: its transport
 * @conn: the transport's state
 * @task: streams but the first: the thread that runs its jobs
 * @job: the worker bumps it (release) to hand the thread a job
 * @err: why its last job failed
 * @why: KVMIG_FAIL_* for @err, when the error alone does not tell
 * @pages_sent: pages sent with contents
 * @bytes_sent: bytes written
 * @zero_pages: pages sent or received as ZERO records
 * @hole_pages: of those, pages never populated
 * @pages_spliced: pages sent zero-copy
 * @pages_received: pages written into the guest (destination)
 * @done: pages of the current batch it has passed (source)
 * @started: destination: a ROUND came, after which no WAIT may
 * @paced_bytes: @bytes_sent that the pacing has accounted for (source)
 * @pace_due: ktime by which those bytes may have left, at the rate (source)
 * @pages: pages pinned for one record
 * @bvec: the transport's vector over @pages
 */
struct kvmig_stream {
	struct kvmig_xfer *x;
	u32 index;
	const struct kvmig_transport_ops *ops;
	void *conn;
	struct task_struct *task;
	u32 job;
	int err;
	u32 why;
	u64 pages_sent;
	u64 bytes_sent;
	u64 zero_pages;
	u64 hole_pages;
	u64 pages_spliced;
	u64 pages_received;
	u64 done;
	bool started;
	u64 paced_bytes;
	u64 pace_due;
	struct page *pages[KVMIG_WIRE_MAX_RUN];
	struct bio_vec bvec[KVMIG_WIRE_MAX_RUN];
};

/**
 * struct kvmig_xfer - a session's transfer
 *
 * Owned by the session's worker while it runs a call (handshake, round,
 * final, receive); by the session's ioctls, under the session's lock, when
 * it does not. The worker runs one call at a time and hands the other
 * streams their share of it (the job fields below, set before the streams
 * are kicked); a call returns only once every stream is idle again. Only
 * @cancelled, @failed and the transports' shutdown are touched by others
 * while a call runs.
 *
 * @cancelled: set once by KVMIG_XFER_CANCEL, from any thread
 * @failed: the stream whose job failed first (cmpxchg), or NULL
 * @nr_streams: streams in @streams, 1..KVMIG_MAX_STREAMS
 * @streams: the connections
 * @token: the source's random number, in HELLO and every STREAM
 * @mm: with more than one stream: the VM's mm (mmget), for their threads
 * @busy: streams but the first still running the current job
 * @stream_wq: where idle stream threads wait for a job
 * @done_wq: where the worker waits for @busy to drop to 0
 * @job_fn: the current job, run by every stream
 * @walk: source job: round 0 passes over holes (see send_pending())
 * @zero_check: source job: round 0 sends zero pages as ZERO records
 * @batch_runs: source job: the runs to send
 * @batch_nr: source job: how many; 0 outside a pass
 * @batch_base: source: pages pending, with the batch's, when it was taken
 * @ticket: source: its place under the host's limits
 * @io_timeout_ms: the I/O timeout, for the keepalive while queued
 * @peer_waits: destination: the source said it waits for its turn
 * @d: the session's layout and, for a source, its dirty tracker
 * @layout: @d's memslots as the wire describes them
 * @role: KVMIG_ROLE_*
 * @max_rounds: source limits, see struct kvmig_xfer_setup
 * @downtime_ns: the downtime budget
 * @bandwidth: bytes per second at most, 0: no cap
 * @deadline_ns: ktime after which pre-copy stops converging, 0: none
 * @runs: a batch of runs taken from the pending set
 * @state: destination: the device state received
 * @state_len: its length
 * @st: statistics, reported by KVMIG_GET_STATS; the streams' counters
 *	are summed into it by the worker
 * @last_harvest_ns: ktime of the last harvest, for the dirty rate
 * @last_dirtied: the tracker's pages_dirtied at that harvest
 * @last_bytes: @st.bytes_sent at that harvest
 * @fail_reason: KVMIG_FAIL_*, when an operation failed the session
 * @outcome: after final or receive: KVMIG_STATE_DONE, _FAILED or
 *	_IN_DOUBT (the two-phase commit, see wire.h); after a dry run's
 *	handshake, KVMIG_STATE_CHECKED
 * @id: the session's id, for the tracepoints
 * @progress: called by the worker after each record sent or received, so
 *	that the session publishes @st while a call runs; may be NULL
 * @progress_arg: its argument
 * @check: the session's pre-check settings
 * @dry_run: the handshake is all there is (KVMIG_XFER_SETUP_DRY_RUN, or
 *	the source's CHECK asked for it)
 * @findings: the pre-check's findings, written by the handshake alone;
 *	the session reads them once the handshake has ended
 * @nr_findings: how many
 * @check_status: KVMIG_CHECK_NOT_RUN, _PASSED, _WARNED or _REFUSED
 */
/* struct kvmig_ticket.state; see host.c */
enum {
	KVMIG_TICKET_NONE,	/* round 0 has not started */
	KVMIG_TICKET_QUEUED,	/* waits in the host's queue */
	KVMIG_TICKET_RUNNING,	/* holds one of the host's places */
	KVMIG_TICKET_DONE,	/* gave its place back, for good */
};

#define KVMIG_MAX_WEIGHT	1000	/* the module's high_weight, at most */

/**
 * struct kvmig_ticket - a source's place under the host's limits (host.c)
 * @node: in the host's queue while QUEUED, under kvmig_host_lock
 * @state: KVMIG_TICKET_*, written under kvmig_host_lock, read with
 *	READ_ONCE by the pacing and the waiter
 * @priority: KVMIG_PRIORITY_*, fixed at create
 * @queued_at: ktime when it joined the queue
 * @wait_ns: how long it waited, once admitted or gone
 */
struct kvmig_ticket {
	struct list_head node;
	u32 state;
	u32 priority;
	u64 queued_at;
	u64 wait_ns;
};

void kvmig_host_join(struct kvmig_ticket *t);
void kvmig_host_leave(struct kvmig_ticket *t);
u32 kvmig_host_position(const struct kvmig_ticket *t, u64 *wait_ns);
bool kvmig_host_wait(struct kvmig_ticket *t, bool (*stop)(void *), void *arg,
		     long timeout);
void kvmig_host_kick(void);
u64 kvmig_host_share(const struct kvmig_ticket *t);
#if IS_ENABLED(CONFIG_KUNIT)
u64 kvmig_host_share_of(u64 budget, u32 weight, u32 nr_high, u32 nr_std,
			u32 high_w);
#endif

/*
 * The pre-check's settings (KVMIG_SET_CHECK), owned by the session, which
 * refuses to change them once the transfer exists.
 */
struct kvmig_check_cfg {
	bool has_uuid;
	u8 uuid[16];
	struct kvmig_cpuid_entry *cpuid;	/* NULL: none given */
	u32 nr_cpuid;
};

struct kvmig_xfer {
	bool cancelled;
	struct kvmig_stream *failed;
	u32 nr_streams;
	struct kvmig_stream *streams;
	u64 token;
	struct mm_struct *mm;
	atomic_t busy;
	wait_queue_head_t stream_wq;
	wait_queue_head_t done_wq;
	int (*job_fn)(struct kvmig_stream *s);
	bool walk;
	bool zero_check;
	struct kvmig_dirty_run *batch_runs;
	u32 batch_nr;
	u64 batch_base;
	struct kvmig_ticket ticket;
	u32 io_timeout_ms;
	bool peer_waits;
	struct kvmig_dirty *d;
	struct kvmig_wire_layout_slot *layout;
	u32 role;
	u32 max_rounds;
	u64 downtime_ns;
	u64 bandwidth;
	u64 deadline_ns;
	struct kvmig_dirty_run *runs;
	void *state;
	u32 state_len;
	struct kvmig_stats st;
	u64 last_harvest_ns;
	u64 last_dirtied;
	u64 last_bytes;
	u32 fail_reason;
	u32 outcome;
	u64 id;
	void (*progress)(void *arg);
	void *progress_arg;
	const struct kvmig_check_cfg *check;
	bool dry_run;
	struct kvmig_finding findings[KVMIG_MAX_FINDINGS];
	u32 nr_findings;
	u32 check_status;
};

struct kvm;
void kvmig_check_describe(struct kvm *kvm, const u8 *uuid, bool dry_run,
			  struct kvmig_wire_check *c,
			  struct kvmig_wire_feature *f);
void kvmig_check_local(struct kvm *kvm, struct kvmig_check_local *l);

struct kvmig_xfer *kvmig_xfer_create(struct kvmig_dirty *d, u32 role,
				     const struct kvmig_xfer_setup *setup,
				     const u32 *fds, u64 id,
				     const struct kvmig_check_cfg *check);
int kvmig_xfer_handshake(struct kvmig_xfer *x);
void kvmig_xfer_destroy(struct kvmig_xfer *x);
int kvmig_xfer_round(struct kvmig_xfer *x, struct kvmig_round *r);
int kvmig_xfer_final(struct kvmig_xfer *x, struct kvmig_final *f,
		     const void *state);
int kvmig_xfer_recv(struct kvmig_xfer *x, struct kvmig_recv *r);
void kvmig_xfer_cancel(struct kvmig_xfer *x);
void kvmig_xfer_leave_host(struct kvmig_xfer *x);

unsigned long kvmig_hole_span(struct mm_struct *mm, unsigned long addr,
			      unsigned long n, bool *hole);

/*
 * Rates and times at any scale: a round of terabytes, links of hundreds
 * of Gbit/s. amount * NSEC_PER_SEC would wrap past 17 GiB, so the product
 * is taken in 128 bits; a quotient that does not fit saturates at
 * U64_MAX (x86's divq would trap on it). KUnit checks them (xfer_test.c).
 */

/* Nanoseconds to move @bytes at @rate bytes per second; U64_MAX if @rate is 0. */
static inline u64 kvmig_ns_for(u64 bytes, u64 rate)
{
	if (!rate || div64_u64(bytes, rate) >= U64_MAX / NSEC_PER_SEC)
		return U64_MAX;
	return mul_u64_u64_div_u64(bytes, NSEC_PER_SEC, rate);
}

/* @amount per second, over @ns nanoseconds; 0 if @ns is 0. */
static inline u64 kvmig_per_sec(u64 amount, u64 ns)
{
	if (!ns)
		return 0;
	if (div64_u64(amount, ns) >= U64_MAX / NSEC_PER_SEC)
		return U64_MAX;
	return mul_u64_u64_div_u64(amount, NSEC_PER_SEC, ns);
}

/* @now + @ms milliseconds, saturating at U64_MAX. */
static inline u64 kvmig_deadline(u64 now, u64 ms)
{
	u64 ns, t;

	if (check_mul_overflow(ms, (u64)NSEC_PER_MSEC, &ns) ||
	    check_add_overflow(now, ns, &t))
		return U64_MAX;
	return t;
}

#endif /* _KVMIG_XFER_H */
