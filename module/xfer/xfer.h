/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The transfer engine: pre-copy rounds, switchover and reception over a
 * transport (TCP now, RDMA later) behind one ops table.
 */
#ifndef _KVMIG_XFER_H
#define _KVMIG_XFER_H

#include <linux/bvec.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include <kvmig.h>
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
 * All but @shutdown run under the session lock. Each returns 0 or -errno;
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
 * @lock: the session's lock: protects everything here but @sock and
 *	@cancelled
 * @sock_lock: protects @sock against KVMIG_XFER_CANCEL, which runs
 *	without @lock
 * @cancelled: set once by KVMIG_XFER_CANCEL
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
 * @fail_reason: KVMIG_FAIL_*, when an operation failed the session
 * @id: the session's id, for the tracepoints
 * @progress: called under @lock after each record sent or received, so
 *	that the session publishes @st while a call runs; may be NULL
 * @progress_arg: its argument
 */
struct kvmig_xfer {
	struct mutex *lock; /* the session's: see above */
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
	u32 fail_reason;
	u64 id;
	void (*progress)(void *arg);
	void *progress_arg;
};

struct kvmig_xfer *kvmig_xfer_create(struct mutex *lock,
				     struct kvmig_dirty *d, u32 role,
				     const struct kvmig_xfer_setup *setup);
int kvmig_xfer_handshake(struct kvmig_xfer *x);
void kvmig_xfer_destroy(struct kvmig_xfer *x);
int kvmig_xfer_round(struct kvmig_xfer *x, struct kvmig_round *r);
int kvmig_xfer_final(struct kvmig_xfer *x, struct kvmig_final *f,
		     const void __user *state);
int kvmig_xfer_recv(struct kvmig_xfer *x, struct kvmig_recv *r);
void kvmig_xfer_cancel(struct kvmig_xfer *x);

#endif /* _KVMIG_XFER_H */
