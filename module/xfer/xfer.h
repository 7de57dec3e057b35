/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The transfer engine: pre-copy rounds, switchover and reception over a
 * transport (TCP now, RDMA later) behind one ops table.
 */
#ifndef _KVMIG_XFER_H
#define _KVMIG_XFER_H

#include <linux/bvec.h>
#include <linux/limits.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/spinlock.h>
#include <linux/time64.h>
#include <linux/types.h>

#include <kvmig.h>
#include "../compat.h"
#include "wire.h"

struct kvmig_dirty;
struct kvmig_xfer;
struct page;
struct socket;

/**
 * struct kvmig_transport_ops - moving bytes and pages to the peer
 * @name: for messages
 * @send: send @len bytes of @buf; @more: more follows at once
 * @send_pages: send @n whole pages, zero-copy where the socket allows;
 *	*@spliced counts the pages that went without a copy
 * @recv: receive exactly @len bytes into @buf
 * @recv_pages: receive exactly @n whole pages, straight into them
 * @shutdown: make blocked and future calls fail (cancel); may be called
 *	from any context that can sleep, without the session lock
 * @release: drop the connection
 *
 * All but @shutdown run on the session's worker. Each returns 0 or -errno;
 * after an error the stream is broken and the session fails.
 */
struct kvmig_transport_ops {
	const char *name;
	int (*send)(struct kvmig_xfer *x, const void *buf, size_t len,
		    bool more);
	int (*send_pages)(struct kvmig_xfer *x, struct page **pages, u32 n,
			  bool more, u32 *spliced);
	int (*recv)(struct kvmig_xfer *x, void *buf, size_t len);
	int (*recv_pages)(struct kvmig_xfer *x, struct page **pages, u32 n);
	void (*shutdown)(struct kvmig_xfer *x);
	void (*release)(struct kvmig_xfer *x);
};

extern const struct kvmig_transport_ops kvmig_tcp_ops;

int kvmig_tcp_attach(struct kvmig_xfer *x, int fd, u32 io_timeout_ms);

/**
 * struct kvmig_xfer - a session's transfer
 *
 * Owned by the session's worker while it runs a call (handshake, round,
 * final, receive); by the session's ioctls, under the session's lock, when
 * it does not. The worker runs one call at a time. Only @cancelled and
 * @sock (under @sock_lock) are touched by others while a call runs.
 *
 * @sock_lock: protects @sock against KVMIG_XFER_CANCEL
 * @cancelled: set once by KVMIG_XFER_CANCEL, from any thread
 * @ops: the transport
 * @sock: the connection (TCP), with a file reference
 * @d: the session's layout and, for a source, its dirty tracker
 * @layout: @d's memslots as the wire describes them
 * @role: KVMIG_ROLE_*
 * @max_rounds: source limits, see struct kvmig_xfer_setup
 * @downtime_ns: the downtime budget
 * @bandwidth: bytes per second at most, 0: no cap
 * @deadline_ns: ktime after which pre-copy stops converging, 0: none
 * @runs: a batch of runs taken from the pending set
 * @pages: pages pinned for one record
 * @bvec: the transport's vector over @pages
 * @state: destination: the device state received
 * @state_len: its length
 * @st: statistics, reported by KVMIG_GET_STATS
 * @last_harvest_ns: ktime of the last harvest, for the dirty rate
 * @last_dirtied: the tracker's pages_dirtied at that harvest
 * @last_bytes: @st.bytes_sent at that harvest
 * @fail_reason: KVMIG_FAIL_*, when an operation failed the session
 * @outcome: after final or receive: KVMIG_STATE_DONE, _FAILED or
 *	_IN_DOUBT (the two-phase commit, see wire.h)
 * @id: the session's id, for the tracepoints
 * @progress: called by the worker after each record sent or received, so
 *	that the session publishes @st while a call runs; may be NULL
 * @progress_arg: its argument
 */
struct kvmig_xfer {
	spinlock_t sock_lock; /* see above */
	bool cancelled;
	const struct kvmig_transport_ops *ops;
	struct socket *sock;
	struct kvmig_dirty *d;
	struct kvmig_wire_layout_slot *layout;
	u32 role;
	u32 max_rounds;
	u64 downtime_ns;
	u64 bandwidth;
	u64 deadline_ns;
	struct kvmig_dirty_run *runs;
	struct page *pages[KVMIG_WIRE_MAX_RUN];
	struct bio_vec bvec[KVMIG_WIRE_MAX_RUN];
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
};

struct kvmig_xfer *kvmig_xfer_create(struct kvmig_dirty *d, u32 role,
				     const struct kvmig_xfer_setup *setup);
int kvmig_xfer_handshake(struct kvmig_xfer *x);
void kvmig_xfer_destroy(struct kvmig_xfer *x);
int kvmig_xfer_round(struct kvmig_xfer *x, struct kvmig_round *r);
int kvmig_xfer_final(struct kvmig_xfer *x, struct kvmig_final *f,
		     const void *state);
int kvmig_xfer_recv(struct kvmig_xfer *x, struct kvmig_recv *r);
void kvmig_xfer_cancel(struct kvmig_xfer *x);

struct mm_struct;
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
