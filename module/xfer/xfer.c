// SPDX-License-Identifier: GPL-2.0
/*
 * The transfer engine. Everything here runs on the session's worker, a
 * kernel thread that adopted the VM's mm (worker.c): pre-copy rounds while
 * the guest runs, the final pass while it is paused, reception on the
 * destination. No session lock is held here: the tracker's lock is taken
 * for one harvest or one batch of runs at a time, never across network
 * I/O, so that a vCPU thread with a full dirty ring waits for one batch
 * at most. Guest pages are pinned (pin_user_pages_fast) from the VM's mm
 * only for the time of one record.
 *
 * The source never writes guest memory; whatever goes wrong, its VM is
 * intact. The destination writes only pages inside its own memslots, as
 * checked record by record by kvmig_wire_decode_rec(), and only while its
 * memslot layout is still the one it agreed to.
 *
 * With several streams, each stream but the first has a thread of its
 * own, which also adopted the VM's mm. The worker hands them each batch of
 * runs (source) or the reception (destination) and runs the first
 * stream's share itself; every page goes on the stream its gfn names
 * (kvmig_wire_stream_of()), and the destination checks that it came
 * there. The first stream to fail stops the others, and its error is the
 * migration's.
 *
 * The switchover is a two-phase commit (wire.h): the source may resume
 * only if it never sent COMMIT, the destination may run only once it has
 * COMMIT; a failure between the two leaves the session IN_DOUBT.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "../dirty/dirty.h"
#include "../trace.h"
#include "xfer.h"

#define KVMIG_RUNS_BATCH	256

/*
 * Off, round 0 pins and reads every page and the destination every page of
 * a ZERO record, as before holes were known: for comparing the two
 * (make bench) and for telling a regression of the walk from one of the
 * rest. Read once per round or record.
 */
static bool holes = true;
module_param(holes, bool, 0644);
MODULE_PARM_DESC(holes, "pass over never-populated guest memory (default on)");

static u64 now_ns(void)
{
	return ktime_get_ns();
}

/* Record why the session fails; the first reason wins. */
static int xfer_fail(struct kvmig_xfer *x, int err)
{
	u32 why;

	if (READ_ONCE(x->cancelled)) {
		why = KVMIG_FAIL_CANCELLED;
		err = -ECANCELED;
	} else if (x->failed && x->failed->why) {
		why = x->failed->why;
	} else if (err == -EPROTO) {
		why = KVMIG_FAIL_PROTOCOL;
	} else if (err == -EFAULT || err == -ENOMEM || err == -ENOSPC) {
		why = KVMIG_FAIL_LOCAL;
	} else {
		why = KVMIG_FAIL_IO;
	}
	if (!x->fail_reason)
		x->fail_reason = why;
	return err;
}

/* Add to a stream's counter: only its owner writes it, the worker reads. */
static inline void stream_add(u64 *counter, u64 n)
{
	WRITE_ONCE(*counter, *counter + n);
}

static int send_rec(struct kvmig_stream *s, u32 type, u32 slot, u64 gfn,
		    u32 npages, u32 len, bool more)
{
	struct kvmig_wire_rec w;

	kvmig_wire_encode_rec(&w, type, slot, gfn, npages, len);
	stream_add(&s->bytes_sent, sizeof(w));
	return s->ops->send(s, &w, sizeof(w), more);
}

/* The worker: sum the streams' counters into @x->st. */
static void sum_streams(struct kvmig_xfer *x)
{
	struct kvmig_stats *st = &x->st;
	struct kvmig_stream *s;
	u32 i;

	st->pages_sent = 0;
	st->bytes_sent = 0;
	st->zero_pages = 0;
	st->hole_pages = 0;
	st->pages_spliced = 0;
	st->pages_received = 0;
	for (i = 0; i < x->nr_streams; i++) {
		s = &x->streams[i];
		st->pages_sent += READ_ONCE(s->pages_sent);
		st->bytes_sent += READ_ONCE(s->bytes_sent);
		st->zero_pages += READ_ONCE(s->zero_pages);
		st->hole_pages += READ_ONCE(s->hole_pages);
		st->pages_spliced += READ_ONCE(s->pages_spliced);
		st->pages_received += READ_ONCE(s->pages_received);
	}
}

/* The batch's pages that every stream has passed. */
static u64 batch_done(struct kvmig_xfer *x)
{
	u64 done = 0;
	u32 i;

	for (i = 0; i < x->nr_streams; i++)
		done += READ_ONCE(x->streams[i].done);
	return done;
}

/* The worker: publish the stats while a call runs. */
static void progress(struct kvmig_xfer *x)
{
	sum_streams(x);
	if (x->batch_nr)
		x->st.remaining = x->batch_base - batch_done(x);
	if (x->progress)
		x->progress(x->progress_arg);
}

/* A job must stop: cancelled, or another stream failed. */
static bool stopping(struct kvmig_xfer *x)
{
	return READ_ONCE(x->cancelled) || READ_ONCE(x->failed);
}

/*
 * Stream @s failed with @err. The first failure is the migration's: it
 * stops every other stream, so that none waits on a peer that stopped
 * too. The destination's first stream stops receiving only: it may still
 * tell the source why.
 */
static void stream_failed(struct kvmig_stream *s, int err)
{
	struct kvmig_xfer *x = s->x;
	struct kvmig_stream *o;
	u32 i;

	s->err = err;
	if (cmpxchg(&x->failed, NULL, s))
		return;
	for (i = 0; i < x->nr_streams; i++) {
		o = &x->streams[i];
		if (o != s)
			o->ops->shutdown(o, !i && x->role == KVMIG_ROLE_DEST);
	}
}

/*
 * Hand every stream but the first the job @fn; the caller runs the first
 * stream's share and then join_streams(). The job's parameters in @x are
 * set before: the release pairs with the thread's acquire of @job.
 */
static void kick_streams(struct kvmig_xfer *x, int (*fn)(struct kvmig_stream *))
{
	struct kvmig_stream *s;
	u32 i;

	if (x->nr_streams == 1)
		return;
	x->job_fn = fn;
	atomic_set(&x->busy, x->nr_streams - 1);
	for (i = 1; i < x->nr_streams; i++) {
		s = &x->streams[i];
		/* The job's parameters before the job: see stream_fn(). */
		smp_store_release(&s->job, s->job + 1);
	}
	wake_up_all(&x->stream_wq);
}

/*
 * Wait until every stream is idle again, publishing the stats meanwhile.
 * Return: 0, or the error of the stream that failed first.
 */
static int join_streams(struct kvmig_xfer *x)
{
	struct kvmig_stream *f;

	while (!wait_event_idle_timeout(x->done_wq, !atomic_read(&x->busy),
					HZ / 10))
		progress(x);
	f = READ_ONCE(x->failed);
	return f ? f->err : 0;
}

/* A stream's thread: run each job handed in, until the transfer ends. */
static int stream_fn(void *arg)
{
	struct kvmig_stream *s = arg;
	struct kvmig_xfer *x = s->x;
	u32 seen = 0;
	int ret;

	kthread_use_mm(x->mm);
	for (;;) {
		wait_event_idle(x->stream_wq,
				/* Pairs with kick_streams()'s release. */
				smp_load_acquire(&s->job) != seen ||
				kthread_should_stop());
		if (kthread_should_stop())
			break;
		seen = smp_load_acquire(&s->job);	/* as above */
		ret = x->job_fn(s);
		if (ret)
			stream_failed(s, ret);
		if (atomic_dec_and_test(&x->busy))
			wake_up(&x->done_wq);
	}
	kthread_unuse_mm(x->mm);
	return 0;
}

static bool page_is_zero(struct page *page)
{
	void *p;
	bool zero;

	if (is_zero_page(page))
		return true;
	p = kmap_local_page(page);
	zero = !memchr_inv(p, 0, PAGE_SIZE);
	kunmap_local(p);
	return zero;
}

/* The VMM's address of page @gfn of memslot @ks. */
static unsigned long slot_hva(struct kvmig_slot *ks, u64 gfn)
{
	return ks->userspace_addr + ((gfn - ks->base_gfn) << PAGE_SHIFT);
}

/* How far behind its rate a stream may fall and still catch up. */
#define KVMIG_PACE_SLACK_NS	(50 * NSEC_PER_MSEC)

/*
 * A stream's rate: its part of the session's cap or of the session's
 * share of the host's budget, whichever is lower; 0: unpaced.
 */
static u64 pace_rate(struct kvmig_xfer *x)
{
	u64 share = kvmig_host_share(&x->ticket);
	u64 rate = x->bandwidth;

	if (share && (!rate || share < rate))
		rate = share;
	return rate ? max(div_u64(rate, x->nr_streams), 1ULL) : 0;
}

/*
 * Keep under the rate: the bytes sent since the last call move the
 * stream's due time on by their time at today's rate, so that a new share
 * applies from the next run on, and a pause earns no burst beyond
 * KVMIG_PACE_SLACK_NS.
 */
static void pace(struct kvmig_stream *s)
{
	u64 bytes = s->bytes_sent - s->paced_bytes;
	u64 rate = pace_rate(s->x), now = now_ns();

	s->paced_bytes = s->bytes_sent;
	if (!rate)
		return;
	s->pace_due = max(s->pace_due, now - min(now, KVMIG_PACE_SLACK_NS));
	s->pace_due += min(kvmig_ns_for(bytes, rate), U64_MAX - s->pace_due);
	while (now_ns() < s->pace_due && !stopping(s->x))
		usleep_range(500, 1000);
}

/*
 * Send pages [@gfn, @gfn + @n) of memslot @ks on stream @s, at most
 * KVMIG_WIRE_MAX_RUN: pinned read-only from the VMM's mm, spliced into
 * the socket. With @zero_check, runs of zero pages go as ZERO records
 * without contents.
 */
static int send_batch(struct kvmig_stream *s, struct kvmig_slot *ks, u64 gfn,
		      u32 n, bool zero_check)
{
	unsigned long hva = slot_hva(ks, gfn);
	u32 i, j, got, spliced = 0;
	bool zero;
	int ret;

	ret = pin_user_pages_fast(hva, n, 0, s->pages);
	if (ret < 0)
		return ret;
	got = ret;
	if (got < n) {
		ret = -EFAULT;
		goto out;
	}

	for (i = 0; i < n; i = j) {
		zero = zero_check && page_is_zero(s->pages[i]);
		for (j = i + 1; j < n; j++)
			if ((zero_check && page_is_zero(s->pages[j])) != zero)
				break;
		if (zero) {
			ret = send_rec(s, KVMIG_REC_ZERO, ks->id, gfn + i,
				       j - i, 0, true);
			stream_add(&s->zero_pages, j - i);
		} else {
			ret = send_rec(s, KVMIG_REC_PAGES, ks->id, gfn + i,
				       j - i, 0, true);
			if (!ret)
				ret = s->ops->send_pages(s, s->pages + i, j - i,
							 true, &spliced);
			stream_add(&s->pages_sent, j - i);
			stream_add(&s->bytes_sent, (u64)(j - i) * PAGE_SIZE);
		}
		if (ret)
			break;
	}
	stream_add(&s->pages_spliced, spliced);
out:
	unpin_user_pages(s->pages, got);
	return ret;
}

/*
 * Round 0: how many of the @n pages at @gfn go in the next record, and
 * whether they are a hole, sent as a ZERO record without being touched.
 */
static u32 next_record(struct kvmig_slot *ks, u64 gfn, u64 n, bool walk,
		       bool *hole)
{
	*hole = false;
	if (!walk)
		return min_t(u64, n, KVMIG_WIRE_MAX_RUN);
	n = kvmig_hole_span(current->mm, slot_hva(ks, gfn),
			    min_t(u64, n, KVMIG_WIRE_MAX_ZERO_RUN), hole);
	return *hole ? n : min_t(u64, n, KVMIG_WIRE_MAX_RUN);
}

/*
 * Stream @s's share of the batch of runs the worker took: the pages whose
 * gfn names @s. Records never cross a share (512 pages) when there are
 * several streams.
 */
static int send_share(struct kvmig_stream *s)
{
	struct kvmig_xfer *x = s->x;
	struct kvmig_dirty_run *r;
	struct kvmig_slot *ks;
	u64 off, gfn, n;
	bool hole;
	u32 i;
	int ret;

	for (i = 0; i < x->batch_nr; i++) {
		r = &x->batch_runs[i];
		ks = kvmig_dirty_slot(x->d, r->slot);
		for (off = 0; off < r->npages; off += n) {
			if (stopping(x))
				return -ECANCELED;
			gfn = r->gfn + off;
			n = r->npages - off;
			if (x->nr_streams > 1) {
				n = kvmig_wire_share_left(gfn, n);
				if (kvmig_wire_stream_of(gfn, x->nr_streams) !=
				    s->index)
					continue;
			}
			n = next_record(ks, gfn, n, x->walk, &hole);
			if (hole) {
				ret = send_rec(s, KVMIG_REC_ZERO, ks->id, gfn, n,
					       0, true);
				stream_add(&s->zero_pages, n);
				stream_add(&s->hole_pages, n);
			} else {
				ret = send_batch(s, ks, gfn, n, x->zero_check);
			}
			if (ret)
				return ret;
			stream_add(&s->done, n);
			if (!s->index)
				progress(x);
			pace(s);
			/*
			 * A round can cover all of guest memory and,
			 * on a fast link, never block in the socket:
			 * let the guest's vCPU threads run.
			 */
			cond_resched();
		}
	}
	return 0;
}

/*
 * One pass over the pending set: take a batch of runs (the tracker's lock
 * is held for that only), send it over every stream, go on. Pages dirtied
 * meanwhile are pending again and go in this pass or the next; a page
 * taken twice goes twice on its stream, in order. With @zero_check (round
 * 0), never-populated ranges go as ZERO records without being pinned.
 */
static int send_pending(struct kvmig_xfer *x, bool zero_check)
{
	struct kvmig_stream *s0 = &x->streams[0];
	struct kvmig_dirty *d = x->d;
	u64 pages, pending;
	u32 nr, i;
	int ret;

	x->zero_check = zero_check;
	x->walk = zero_check && READ_ONCE(holes);
	x->batch_runs = x->runs;
	kvmig_dirty_rewind(d);
	while ((nr = kvmig_dirty_take(d, x->runs, KVMIG_RUNS_BATCH, &pages,
				      &pending))) {
		for (i = 0; i < x->nr_streams; i++)
			WRITE_ONCE(x->streams[i].done, 0);
		x->batch_nr = nr;
		x->batch_base = pending + pages;
		kick_streams(x, send_share);
		ret = send_share(s0);
		if (ret)
			stream_failed(s0, ret);
		ret = join_streams(x);
		x->st.remaining = x->batch_base - batch_done(x);
		x->batch_nr = 0;
		if (ret)
			return ret;
	}
	/* The pass's last records go now, not with the next pass. */
	for (i = 0; i < x->nr_streams; i++)
		x->streams[i].ops->flush(&x->streams[i]);
	return 0;
}

/*
 * Harvest, measure the dirty rate since the last harvest and step the
 * throttle. The rate counts distinct pages newly added to the pending
 * set by every harvest since, this one and those of vCPU threads with a
 * full ring: a page dirtied twice, or dirtied again before it was sent,
 * costs one page to send.
 */
static int harvest(struct kvmig_xfer *x)
{
	struct kvmig_dirty_counters c = {};
	u64 t = now_ns(), found = 0, dirtied, dt;
	int ret;

	ret = kvmig_dirty_harvest(x->d, &found, &c);
	dirtied = c.pages_dirtied - x->last_dirtied;
	if (x->last_harvest_ns && t > x->last_harvest_ns) {
		dt = t - x->last_harvest_ns;
		x->st.dirty_rate = kvmig_per_sec(dirtied, dt);
		kvmig_throttle_update(x->d, dirtied, x->st.dirty_rate,
				      x->st.bytes_sent - x->last_bytes, dt);
	}
	x->last_harvest_ns = t;
	x->last_dirtied = c.pages_dirtied;
	x->last_bytes = x->st.bytes_sent;
	x->st.remaining = c.pages_pending;
	if (ret == -ESTALE)
		x->fail_reason = x->d->fail_reason;
	return ret;
}

static void update_expected(struct kvmig_xfer *x)
{
	x->st.expected_downtime_ns =
		kvmig_ns_for(x->st.remaining * PAGE_SIZE, x->st.throughput);
}

/*
 * A control record on every stream, by the worker while the others are
 * idle: ROUND, so that a stream whose shares the guest leaves clean still
 * hears from the source every round, and WAIT, while the source waits
 * for its turn; both within the destination's I/O timeout.
 */
static int send_all(struct kvmig_xfer *x, u32 type, u64 gfn, bool more)
{
	int ret = 0;
	u32 i;

	for (i = 0; i < x->nr_streams && !ret; i++)
		ret = send_rec(&x->streams[i], type, 0, gfn, 0, 0, more);
	return ret;
}

static bool stop_waiting(void *x)
{
	return stopping(x);
}

/*
 * Before round 0: take a place under the host's max_outgoing, waiting in
 * line if there is none, and telling the destination so every quarter of
 * the I/O timeout (at most every second). The session publishes where it
 * stands in the queue as it moves.
 */
static int wait_turn(struct kvmig_xfer *x)
{
	u64 tick = clamp_t(u64, x->io_timeout_ms / 4, 10, 1000) * NSEC_PER_MSEC;
	u64 next = now_ns() + tick;
	int ret = 0;

	kvmig_host_join(&x->ticket);
	while (!kvmig_host_wait(&x->ticket, stop_waiting, x,
				nsecs_to_jiffies(tick))) {
		if (stopping(x))
			return -ECANCELED;
		if (now_ns() >= next) {
			ret = send_all(x, KVMIG_REC_WAIT, 0, false);
			if (ret)
				return ret;
			next = now_ns() + tick;
		}
		progress(x);
	}
	trace_kvmig_admitted(x->id, x->ticket.wait_ns);
	progress(x);
	return 0;
}

/* One pre-copy round; see struct kvmig_round. */
int kvmig_xfer_round(struct kvmig_xfer *x, struct kvmig_round *r)
{
	struct kvmig_dirty *d = x->d;
	u64 t0, b0, p0, z0, h0;
	bool first = !x->st.xfer_round;
	int ret;

	r->round = x->st.xfer_round;
	if (first) {
		ret = wait_turn(x);
		if (ret)
			return xfer_fail(x, ret);
	}
	ret = harvest(x);
	if (ret)
		return xfer_fail(x, ret);
	if (first) {
		/*
		 * Round 0 sends everything: what KVM logged until now is in
		 * it, so the harvest above re-protected those pages and
		 * round 1 starts from a clean log, as QEMU's first bitmap
		 * sync does.
		 */
		x->st.dirty_rate = 0;	/* no interval to measure yet */
		kvmig_dirty_fill(d);
		x->st.remaining = d->guest_pages;
	}
	update_expected(x);
	r->remaining = x->st.remaining;
	r->expected_downtime_ns = x->st.expected_downtime_ns;
	trace_kvmig_round_start(x->id, x->st.xfer_round, x->st.remaining);

	if (!first) {
		if (x->st.expected_downtime_ns <= x->downtime_ns)
			r->status = KVMIG_ROUND_CONVERGED;
		else if (x->st.xfer_round >= x->max_rounds)
			r->status = KVMIG_ROUND_MAX_ROUNDS;
		else if (x->deadline_ns && now_ns() >= x->deadline_ns)
			r->status = KVMIG_ROUND_TIMEOUT;
		if (r->status)
			return 0;
	}

	sum_streams(x);
	t0 = now_ns();
	b0 = x->st.bytes_sent;
	p0 = x->st.pages_sent;
	z0 = x->st.zero_pages;
	h0 = x->st.hole_pages;
	ret = send_all(x, KVMIG_REC_ROUND, x->st.xfer_round, true);
	if (!ret)
		ret = send_pending(x, first);
	sum_streams(x);
	r->pages_sent = x->st.pages_sent - p0;
	r->zero_pages = x->st.zero_pages - z0;
	r->hole_pages = x->st.hole_pages - h0;
	if (ret)
		return xfer_fail(x, ret);
	if (now_ns() > t0)
		x->st.throughput = kvmig_per_sec(x->st.bytes_sent - b0,
						 now_ns() - t0);
	x->st.xfer_round++;
	r->status = KVMIG_ROUND_SENT;
	return 0;
}

static int recv_reply(struct kvmig_stream *s, struct kvmig_wire_reply *rep)
{
	int ret = s->ops->recv(s, rep, sizeof(*rep));

	if (ret)
		return ret;
	if (le32_to_cpu(rep->magic) != KVMIG_WIRE_MAGIC)
		return -EPROTO;
	return 0;
}

/*
 * Switchover; the VMM has paused every vCPU. See struct kvmig_final.
 * @state: the device state, in kernel memory, f->state_len bytes.
 *
 * Phase one: the last pages, the state and END; the destination answers
 * PREPARED once it has everything. Any failure up to here leaves the
 * outcome FAILED: without COMMIT the destination never runs the guest, so
 * the source VMM resumes. Phase two: COMMIT, the point of no return, then
 * the acknowledgment. A failure from the moment COMMIT may have left is
 * IN_DOUBT: only the orchestrator can know whether the destination runs.
 */
int kvmig_xfer_final(struct kvmig_xfer *x, struct kvmig_final *f,
		     const void *state)
{
	struct kvmig_stream *s0 = &x->streams[0];
	u64 t0 = now_ns(), p0;
	struct kvmig_wire_reply rep;
	int ret;
	u32 i;

	x->outcome = KVMIG_STATE_FAILED;
	ret = harvest(x);
	if (ret)
		return xfer_fail(x, ret);
	update_expected(x);
	trace_kvmig_switchover_start(x->id, x->st.xfer_round, x->st.remaining,
				     f->state_len);
	sum_streams(x);
	p0 = x->st.pages_sent;
	ret = send_all(x, KVMIG_REC_ROUND, x->st.xfer_round, true);
	if (!ret)
		ret = send_pending(x, false);
	/* Each other stream ends here: its last page went before. */
	for (i = 1; i < x->nr_streams && !ret; i++)
		ret = send_rec(&x->streams[i], KVMIG_REC_END, 0, 0, 0, 0,
			       false);
	sum_streams(x);
	f->pages_sent = x->st.pages_sent - p0;
	if (!ret)
		ret = send_rec(s0, KVMIG_REC_STATE, 0, 0, 0, f->state_len, true);
	if (!ret && f->state_len) {
		ret = s0->ops->send(s0, state, f->state_len, true);
		stream_add(&s0->bytes_sent, f->state_len);
	}
	if (!ret)
		ret = send_rec(s0, KVMIG_REC_END, 0, 0, 0, 0, false);
	if (!ret)
		ret = recv_reply(s0, &rep);
	sum_streams(x);
	if (ret)
		return xfer_fail(x, ret);
	if (le32_to_cpu(rep.status) != KVMIG_WIRE_OK) {
		pr_warn_ratelimited("destination failed the migration (status %u)\n",
				    le32_to_cpu(rep.status));
		x->fail_reason = KVMIG_FAIL_PEER;
		return -EPROTO;
	}
	if (le64_to_cpu(rep.pages) != x->st.pages_sent) {
		pr_warn_ratelimited("destination received %llu pages, %llu sent\n",
				    le64_to_cpu(rep.pages), x->st.pages_sent);
		x->fail_reason = KVMIG_FAIL_PEER;
		return -EPROTO;
	}

	/* The point of no return: from here on, never FAILED. */
	x->outcome = KVMIG_STATE_IN_DOUBT;
	ret = send_rec(s0, KVMIG_REC_COMMIT, 0, 0, 0, 0, false);
	if (!ret)
		ret = recv_reply(s0, &rep);
	/* bytes_sent counts the COMMIT too. */
	sum_streams(x);
	if (!ret && le32_to_cpu(rep.status) != KVMIG_WIRE_OK)
		ret = -EPROTO;
	if (ret) {
		pr_warn_ratelimited("no acknowledgment of COMMIT (%d): outcome in doubt\n",
				    ret);
		xfer_fail(x, ret);
		return -EINPROGRESS;
	}
	x->outcome = KVMIG_STATE_DONE;
	x->st.remaining = 0;
	x->st.downtime_ns = now_ns() - t0;
	f->downtime_ns = x->st.downtime_ns;
	return 0;
}

/* Best effort: tell the source why, before failing. */
static void send_status(struct kvmig_stream *s, u32 status, u64 pages)
{
	struct kvmig_wire_reply rep = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.status = cpu_to_le32(status),
		.pages = cpu_to_le64(pages),
	};

	s->ops->send(s, &rep, sizeof(rep), false);
}

/* Destination: the findings, after the REPLY to a CHECK hello. */
static void send_findings(struct kvmig_stream *s,
			  const struct kvmig_wire_finding *w, u32 nr)
{
	struct kvmig_wire_findings hdr = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.nr = cpu_to_le32(nr),
	};

	if (s->ops->send(s, &hdr, sizeof(hdr), nr) || !nr)
		return;
	s->ops->send(s, w, nr * sizeof(*w), false);
}

/*
 * Before writing into the destination guest: is the memslot layout still
 * the one the source was promised, and so are the host addresses we write
 * through? Cheap when the generation did not move.
 */
static int dest_layout_ok(struct kvmig_stream *s)
{
	struct kvmig_dirty *d = s->x->d;
	int idx, ret;

	mutex_lock(&d->lock);
	idx = srcu_read_lock(&d->kvm->srcu);
	ret = kvmig_dirty_check_layout(d);
	srcu_read_unlock(&d->kvm->srcu, idx);
	mutex_unlock(&d->lock);
	if (ret) {
		pr_warn_ratelimited("destination memslots changed during the migration\n");
		s->why = KVMIG_FAIL_MEMSLOTS;
	}
	return ret;
}

/*
 * ZERO record on the destination: its RAM starts zeroed, so only a page
 * that is not zero any more is cleared (as QEMU's ram_handle_zero()), and
 * a page never populated is not touched at all.
 */
static int recv_zero_page(struct kvmig_xfer *x, unsigned long hva)
{
	struct page *page;
	int ret;

	if (stopping(x))
		return -ECANCELED;
	ret = pin_user_pages_fast(hva, 1, 0, &page);
	if (ret != 1)
		return ret < 0 ? ret : -EFAULT;
	if (page_is_zero(page)) {
		unpin_user_page(page);
		return 0;
	}
	unpin_user_page(page);
	ret = pin_user_pages_fast(hva, 1, FOLL_WRITE, &page);
	if (ret != 1)
		return ret < 0 ? ret : -EFAULT;
	clear_highpage(page);
	unpin_user_pages_dirty_lock(&page, 1, true);
	cond_resched();
	return 0;
}

static int recv_zero(struct kvmig_stream *s, struct kvmig_slot *ks, u64 gfn,
		     u32 n)
{
	bool walk = READ_ONCE(holes), hole = false;
	unsigned long hva, span, j;
	u32 i;
	int ret;

	for (i = 0; i < n; i += span) {
		hva = slot_hva(ks, gfn + i);
		span = 1;
		if (walk)
			span = kvmig_hole_span(current->mm, hva, n - i, &hole);
		if (hole) {
			stream_add(&s->hole_pages, span);
			cond_resched();
			continue;
		}
		for (j = 0; j < span; j++) {
			ret = recv_zero_page(s->x, hva + (j << PAGE_SHIFT));
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int recv_pages(struct kvmig_stream *s, struct kvmig_slot *ks, u64 gfn,
		      u32 n)
{
	unsigned long hva = slot_hva(ks, gfn);
	int ret, got;

	got = pin_user_pages_fast(hva, n, FOLL_WRITE, s->pages);
	if (got < 0)
		return got;
	ret = got < n ? -EFAULT : s->ops->recv_pages(s, s->pages, n);
	unpin_user_pages_dirty_lock(s->pages, got, !ret);
	return ret;
}

static int recv_state(struct kvmig_stream *s, const struct kvmig_rec *rec,
		      u32 cap, u32 *status)
{
	struct kvmig_xfer *x = s->x;

	if (x->state) {
		pr_warn_ratelimited("device state sent twice\n");
		return -EPROTO;
	}
	if (rec->len > cap) {
		*status = KVMIG_WIRE_E_LOCAL;
		return -ENOSPC;
	}
	x->state = kvmalloc(rec->len ?: 1, GFP_KERNEL_ACCOUNT);
	if (!x->state)
		return -ENOMEM;
	x->state_len = rec->len;
	return s->ops->recv(s, x->state, rec->len);
}

/* One record of phase one on stream @s; returns 1 at END. */
static int recv_rec(struct kvmig_stream *s, const struct kvmig_rec *rec,
		    u32 cap, u32 *status)
{
	struct kvmig_xfer *x = s->x;
	struct kvmig_slot *ks = &x->d->slots[rec->slot_index];
	int ret;

	switch (rec->type) {
	case KVMIG_REC_PAGES:
		ret = dest_layout_ok(s);
		if (!ret)
			ret = recv_pages(s, ks, rec->gfn, rec->npages);
		if (!ret)
			stream_add(&s->pages_received, rec->npages);
		return ret;
	case KVMIG_REC_ZERO:
		ret = dest_layout_ok(s);
		if (!ret)
			ret = recv_zero(s, ks, rec->gfn, rec->npages);
		if (!ret)
			stream_add(&s->zero_pages, rec->npages);
		return ret;
	case KVMIG_REC_ROUND:
		s->started = true;
		if (!s->index) {
			x->st.xfer_round = rec->gfn;
			WRITE_ONCE(x->peer_waits, false);
		}
		return 0;
	case KVMIG_REC_WAIT:
		if (s->started) {
			pr_warn_ratelimited("WAIT after the first round\n");
			return -EPROTO;
		}
		if (!s->index)
			WRITE_ONCE(x->peer_waits, true);
		return 0;
	case KVMIG_REC_STATE:
		return recv_state(s, rec, cap, status);
	case KVMIG_REC_END:
		if (!s->index && !x->state) {
			pr_warn_ratelimited("end of stream without device state\n");
			return -EPROTO;
		}
		return 1;
	default:	/* COMMIT before END */
		pr_warn_ratelimited("record %u out of order\n", rec->type);
		return -EPROTO;
	}
}

/* Receive a record header on @s and check it: the layout, the share. */
static int recv_decode(struct kvmig_stream *s, struct kvmig_rec *rec)
{
	struct kvmig_xfer *x = s->x;
	struct kvmig_wire_rec w;
	int ret;

	ret = s->ops->recv(s, &w, sizeof(w));
	if (ret)
		return ret;
	ret = kvmig_wire_decode_rec(&w, x->layout, x->d->nr_slots, rec);
	if (!ret)
		ret = kvmig_wire_check_share(rec, s->index, x->nr_streams);
	if (ret)
		pr_warn_ratelimited("malformed record from the source on stream %u (type %u, slot %u, gfn %llu, %u pages, len %u)\n",
				    s->index, le16_to_cpu(w.type),
				    le32_to_cpu(w.slot), le64_to_cpu(w.gfn),
				    le32_to_cpu(w.npages), le32_to_cpu(w.len));
	return ret;
}

/*
 * Records on stream @s until its END (1), an error (< 0), or, for the
 * first stream, never 0: ROUND, STATE and the pages of its share.
 */
static int recv_records(struct kvmig_stream *s, u32 cap, u32 *status)
{
	struct kvmig_xfer *x = s->x;
	struct kvmig_rec rec;
	int ret;

	do {
		ret = stopping(x) ? -ECANCELED : 0;
		if (!ret)
			ret = recv_decode(s, &rec);
		if (!ret)
			ret = recv_rec(s, &rec, cap, status);
		if (!ret && !s->index)
			progress(x);
		cond_resched();	/* records may be queued faster than taken */
	} while (!ret);
	return ret;
}

/* A stream's job on the destination: its share, until its END. */
static int recv_share(struct kvmig_stream *s)
{
	u32 status;
	int ret;

	ret = recv_records(s, 0, &status);
	return ret < 0 ? ret : 0;
}

/* The reply's status for the first failure, @err. */
static u32 fail_status(int err, u32 status)
{
	if (err == -EFAULT || err == -ENOMEM)
		return KVMIG_WIRE_E_LOCAL;
	return status;
}

/*
 * Reception on the destination; see struct kvmig_recv. Phase one takes
 * records until END on every stream and answers PREPARED; a failure before
 * that answer is FAILED (and the source told why, if the link still
 * works). From the moment PREPARED may have left, the source may have
 * committed: a failure then is IN_DOUBT, never FAILED. Only COMMIT makes
 * the outcome DONE.
 */
int kvmig_xfer_recv(struct kvmig_xfer *x, struct kvmig_recv *r)
{
	struct kvmig_stream *s0 = &x->streams[0];
	u32 status = KVMIG_WIRE_E_PROTO;
	struct kvmig_rec rec;
	int ret;

	x->outcome = KVMIG_STATE_FAILED;
	kick_streams(x, recv_share);
	ret = recv_records(s0, r->state_cap, &status);
	if (ret < 0)
		stream_failed(s0, ret);
	/* Every stream has had its END, or stops now. */
	ret = join_streams(x);
	sum_streams(x);
	if (ret) {
		if (x->failed != s0)
			status = KVMIG_WIRE_E_PROTO;
		send_status(s0, fail_status(ret, status),
			    x->st.pages_received);
		return xfer_fail(x, ret);
	}

	r->state_len = x->state_len;
	r->pages_received = x->st.pages_received;
	r->zero_pages = x->st.zero_pages;
	r->rounds = x->st.xfer_round + 1;

	/* Phase two: from here on, never FAILED. */
	x->outcome = KVMIG_STATE_IN_DOUBT;
	ret = s0->ops->send(s0, &(struct kvmig_wire_reply) {
			.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
			.status = cpu_to_le32(KVMIG_WIRE_OK),
			.pages = cpu_to_le64(x->st.pages_received),
		}, sizeof(struct kvmig_wire_reply), false);
	if (!ret)
		ret = READ_ONCE(x->cancelled) ? -ECANCELED :
						recv_decode(s0, &rec);
	if (!ret && rec.type != KVMIG_REC_COMMIT)
		ret = -EPROTO;
	if (ret) {
		pr_warn_ratelimited("no COMMIT from the source (%d): outcome in doubt\n",
				    ret);
		xfer_fail(x, ret);
		return -EINPROGRESS;
	}
	x->outcome = KVMIG_STATE_DONE;
	/* The source is done either way; it may miss this if the link fails. */
	send_status(s0, KVMIG_WIRE_OK, x->st.pages_received);
	return 0;
}

/* Does a CHECK hello's REPLY with @status carry FINDINGS after it? */
static bool findings_follow(u32 status)
{
	return status == KVMIG_WIRE_OK || status == KVMIG_WIRE_E_LAYOUT ||
	       status == KVMIG_WIRE_E_STREAMS || status == KVMIG_WIRE_E_CHECK;
}

/* Keep the findings, in wire order, and what they amount to. */
static int keep_findings(struct kvmig_xfer *x,
			 const struct kvmig_wire_finding *w, u32 nr)
{
	bool error = false;
	u32 i;

	for (i = 0; i < nr; i++) {
		if (kvmig_wire_decode_finding(&w[i], &x->findings[i]))
			return -EPROTO;
		error |= x->findings[i].severity == KVMIG_CHECK_ERROR;
	}
	x->nr_findings = nr;
	x->check_status = error ? KVMIG_CHECK_REFUSED :
			  nr ? KVMIG_CHECK_WARNED : KVMIG_CHECK_PASSED;
	return 0;
}

/* Source: the destination's findings, after its REPLY. */
static int recv_findings(struct kvmig_xfer *x, struct kvmig_stream *s0)
{
	struct kvmig_wire_finding *w;
	struct kvmig_wire_findings hdr;
	u32 nr;
	int ret;

	ret = s0->ops->recv(s0, &hdr, sizeof(hdr));
	if (ret)
		return ret;
	nr = le32_to_cpu(hdr.nr);
	if (le32_to_cpu(hdr.magic) != KVMIG_WIRE_MAGIC ||
	    nr > KVMIG_MAX_FINDINGS)
		return -EPROTO;
	if (!nr)
		return keep_findings(x, NULL, 0);
	w = kcalloc(nr, sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	ret = s0->ops->recv(s0, w, nr * sizeof(*w));
	if (!ret)
		ret = keep_findings(x, w, nr);
	kfree(w);
	return ret;
}

/* Source: send the layout and open every stream, wait for the verdict. */
static int handshake_source(struct kvmig_xfer *x)
{
	struct kvmig_stream *s0 = &x->streams[0];
	struct kvmig_dirty *d = x->d;
	struct kvmig_wire_hello h = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.page_shift = cpu_to_le16(PAGE_SHIFT),
		.nr_slots = cpu_to_le32(d->nr_slots),
		.flags = cpu_to_le32(d->regions ? KVMIG_WIRE_HELLO_REGIONS : 0),
		.guest_pages = cpu_to_le64(d->guest_pages),
		.nr_streams = cpu_to_le32(x->nr_streams),
		.token = cpu_to_le64(x->token),
	};
	struct kvmig_wire_stream ws = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.token = cpu_to_le64(x->token),
	};
	struct kvmig_wire_feature f[KVMIG_NR_FEATURE_REGS];
	struct kvmig_wire_check c;
	struct kvmig_wire_slot sl;
	struct kvmig_wire_reply rep;
	u32 i, status;
	int ret;

	kvmig_check_describe(d->kvm, x->check->has_uuid ? x->check->uuid : NULL,
			     x->dry_run, &c, f);
	h.flags |= cpu_to_le32(KVMIG_WIRE_HELLO_CHECK);
	/* bytes_sent counts the handshake: all that kvmig writes. */
	stream_add(&s0->bytes_sent, sizeof(h) + d->nr_slots * sizeof(sl) +
		   sizeof(c) + sizeof(f));
	ret = s0->ops->send(s0, &h, sizeof(h), true);
	for (i = 0; i < d->nr_slots && !ret; i++) {
		sl.id = cpu_to_le32(d->slots[i].id);
		sl.flags = cpu_to_le32(d->slots[i].flags);
		sl.base_gfn = cpu_to_le64(d->slots[i].base_gfn);
		sl.npages = cpu_to_le64(d->slots[i].npages);
		ret = s0->ops->send(s0, &sl, sizeof(sl), true);
	}
	if (!ret)
		ret = s0->ops->send(s0, &c, sizeof(c), true);
	if (!ret)
		ret = s0->ops->send(s0, f, sizeof(f), false);
	for (i = 1; i < x->nr_streams && !ret; i++) {
		ws.index = cpu_to_le16(i);
		stream_add(&x->streams[i].bytes_sent, sizeof(ws));
		ret = x->streams[i].ops->send(&x->streams[i], &ws, sizeof(ws),
					      false);
	}
	if (!ret)
		ret = recv_reply(s0, &rep);
	status = le32_to_cpu(rep.status);
	if (!ret && findings_follow(status))
		ret = recv_findings(x, s0);
	if (ret)
		return ret;
	if (x->dry_run &&
	    (status == KVMIG_WIRE_E_LAYOUT || status == KVMIG_WIRE_E_CHECK)) {
		x->outcome = KVMIG_STATE_CHECKED;
		return -ECONNREFUSED;
	}
	switch (status) {
	case KVMIG_WIRE_OK:
		if (x->dry_run)
			x->outcome = KVMIG_STATE_CHECKED;
		return 0;
	case KVMIG_WIRE_E_LAYOUT:
		pr_warn_ratelimited("destination refused: its memslot layout differs\n");
		x->fail_reason = KVMIG_FAIL_LAYOUT;
		return -EPROTO;
	case KVMIG_WIRE_E_CHECK:
		pr_warn_ratelimited("destination refused: the pre-check found an error\n");
		x->fail_reason = KVMIG_FAIL_CHECK;
		return -ECONNREFUSED;
	case KVMIG_WIRE_E_STREAMS:
		pr_warn_ratelimited("destination refused: its streams differ\n");
		x->fail_reason = KVMIG_FAIL_STREAMS;
		return -EPROTO;
	default:
		pr_warn_ratelimited("destination refused the handshake (status %u)\n",
				    le32_to_cpu(rep.status));
		x->fail_reason = KVMIG_FAIL_PEER;
		return -EPROTO;
	}
}

/*
 * Destination: check the source's layout against ours, then that each
 * other stream belongs to this migration and is in its place; answer.
 */
static int handshake_dest(struct kvmig_xfer *x)
{
	struct kvmig_stream *s0 = &x->streams[0];
	struct kvmig_dirty *d = x->d;
	struct kvmig_check_local l = { .layout_ok = true };
	struct kvmig_wire_finding *wf = NULL;
	struct kvmig_wire_feature *f = NULL;
	struct kvmig_wire_check c;
	struct kvmig_wire_hello h;
	struct kvmig_wire_stream ws;
	struct kvmig_wire_slot sl;
	u32 i, nr, status, nf = 0;
	bool check, dry_run;
	int ret;

	ret = s0->ops->recv(s0, &h, sizeof(h));
	if (ret)
		return ret;
	status = kvmig_wire_check_hello(&h);
	if (status) {
		pr_warn_ratelimited("bad handshake from the source (status %u)\n",
				    status);
		send_status(s0, status, 0);
		x->fail_reason = status == KVMIG_WIRE_E_VERSION ?
				 KVMIG_FAIL_PEER : KVMIG_FAIL_PROTOCOL;
		return -EPROTO;
	}
	nr = le32_to_cpu(h.nr_slots);
	for (i = 0; i < nr; i++) {
		ret = s0->ops->recv(s0, &sl, sizeof(sl));
		if (ret)
			return ret;
		if (!status && (i >= d->nr_slots ||
				kvmig_wire_compare_slot(&sl, &x->layout[i]))) {
			status = KVMIG_WIRE_E_LAYOUT;
			l.layout_slot = i;
		}
	}
	if (!status && (nr != d->nr_slots ||
			le64_to_cpu(h.guest_pages) != d->guest_pages ||
			!!(le32_to_cpu(h.flags) & KVMIG_WIRE_HELLO_REGIONS) !=
			d->regions)) {
		status = KVMIG_WIRE_E_LAYOUT;
		l.layout_slot = min(nr, d->nr_slots);
	}
	l.layout_ok = !status;
	check = le32_to_cpu(h.flags) & KVMIG_WIRE_HELLO_CHECK;
	dry_run = false;
	if (check) {
		ret = s0->ops->recv(s0, &c, sizeof(c));
		if (ret)
			return ret;
		if (kvmig_wire_check_check(&c)) {
			pr_warn_ratelimited("bad pre-check from the source\n");
			send_status(s0, KVMIG_WIRE_E_PROTO, 0);
			x->fail_reason = KVMIG_FAIL_PROTOCOL;
			return -EPROTO;
		}
		dry_run = le32_to_cpu(c.flags) & KVMIG_WIRE_CHECK_DRY_RUN;
		nr = le32_to_cpu(c.nr_features);
		f = kcalloc(KVMIG_WIRE_MAX_FEATURES, sizeof(*f), GFP_KERNEL);
		wf = kcalloc(KVMIG_MAX_FINDINGS, sizeof(*wf), GFP_KERNEL);
		ret = -ENOMEM;
		if (!f || !wf)
			goto out;
		ret = nr ? s0->ops->recv(s0, f, nr * sizeof(*f)) : 0;
		if (ret)
			goto out;
		kvmig_check_local(d->kvm, &l);
		l.has_uuid = x->check->has_uuid;
		memcpy(l.uuid, x->check->uuid, sizeof(l.uuid));
		l.cpuid = x->check->cpuid;
		l.nr_cpuid = x->check->nr_cpuid;
		nf = kvmig_wire_check_eval(&l, &c, f, wf, KVMIG_MAX_FINDINGS);
		ret = keep_findings(x, wf, nf);
		if (ret)
			goto out;
	}
	if (!status && le32_to_cpu(h.nr_streams) != x->nr_streams)
		status = KVMIG_WIRE_E_STREAMS;
	x->token = le64_to_cpu(h.token);
	for (i = 1; i < x->nr_streams && !status; i++) {
		ret = x->streams[i].ops->recv(&x->streams[i], &ws, sizeof(ws));
		if (ret)
			goto out;
		status = kvmig_wire_check_stream(&ws, i, x->token);
	}
	if (!status && x->check_status == KVMIG_CHECK_REFUSED)
		status = KVMIG_WIRE_E_CHECK;
	send_status(s0, status, 0);
	if (check)
		send_findings(s0, wf, nf);
	ret = 0;
	if (dry_run && status != KVMIG_WIRE_E_STREAMS) {
		x->dry_run = true;
		x->outcome = KVMIG_STATE_CHECKED;
		ret = status ? -ECONNREFUSED : 0;
		goto out;
	}
	switch (status) {
	case KVMIG_WIRE_OK:
		break;
	case KVMIG_WIRE_E_CHECK:
		pr_warn_ratelimited("refused the source: the pre-check found an error\n");
		x->fail_reason = KVMIG_FAIL_CHECK;
		ret = -ECONNREFUSED;
		break;
	case KVMIG_WIRE_E_STREAMS:
		pr_warn_ratelimited("refused the source: its streams differ (%u, here %u) or are out of place\n",
				    le32_to_cpu(h.nr_streams), x->nr_streams);
		x->fail_reason = KVMIG_FAIL_STREAMS;
		ret = -EPROTO;
		break;
	default:
		pr_warn_ratelimited("refused the source: memslot layout differs\n");
		x->fail_reason = KVMIG_FAIL_LAYOUT;
		ret = -EPROTO;
		break;
	}
out:
	kfree(wf);
	kfree(f);
	return ret;
}

/* Give stream @i its connection, and its thread (all but the first). */
static int stream_init(struct kvmig_xfer *x, u32 i, int fd, u32 io_timeout_ms,
		       bool rdma)
{
	struct kvmig_stream *s = &x->streams[i];
	int ret;

	s->x = x;
	s->index = i;
	ret = rdma ? kvmig_rdma_attach(s, fd, io_timeout_ms) :
		     kvmig_tcp_attach(s, fd, io_timeout_ms);
	if (ret || !i)
		return ret;
	s->task = kthread_create(stream_fn, s, "kvmig-%llu-%u", x->id, i);
	if (IS_ERR(s->task)) {
		ret = PTR_ERR(s->task);
		s->task = NULL;
		s->ops->release(s);
		return ret;
	}
	wake_up_process(s->task);
	return 0;
}

/* Undo stream_init(): stop the thread, then drop the connection. */
static void stream_fini(struct kvmig_stream *s)
{
	if (s->task)
		kthread_stop(s->task);
	s->ops->release(s);
}

/*
 * @fds: the setup's other sockets, setup->nr_streams - 1 of them (none
 * without KVMIG_XFER_SETUP_STREAMS), checked to be in range.
 */
struct kvmig_xfer *kvmig_xfer_create(struct kvmig_dirty *d, u32 role,
				     const struct kvmig_xfer_setup *setup,
				     const u32 *fds, u64 id,
				     const struct kvmig_check_cfg *check)
{
	u32 i, timeout = setup->io_timeout_ms ?: 10000;
	struct kvmig_xfer *x;
	int ret;

	x = kzalloc(sizeof(*x), GFP_KERNEL_ACCOUNT);
	if (!x)
		return ERR_PTR(-ENOMEM);
	x->d = d;
	x->role = role;
	x->id = id;
	x->check = check;
	x->dry_run = setup->flags & KVMIG_XFER_SETUP_DRY_RUN;
	x->nr_streams = setup->nr_streams ?: 1;
	x->token = get_random_u64();
	atomic_set(&x->busy, 0);
	init_waitqueue_head(&x->stream_wq);
	init_waitqueue_head(&x->done_wq);
	x->max_rounds = setup->max_rounds ?: 30;
	x->downtime_ns = setup->downtime_ns ?: 300 * NSEC_PER_MSEC;
	x->bandwidth = setup->bandwidth;
	x->io_timeout_ms = timeout;
	INIT_LIST_HEAD(&x->ticket.node);
	x->ticket.priority = setup->priority;
	if (setup->timeout_ms)
		x->deadline_ns = kvmig_deadline(now_ns(), setup->timeout_ms);

	ret = -ENOMEM;
	x->layout = kvcalloc(d->nr_slots, sizeof(*x->layout),
			     GFP_KERNEL_ACCOUNT);
	x->runs = kvcalloc(KVMIG_RUNS_BATCH, sizeof(*x->runs),
			   GFP_KERNEL_ACCOUNT);
	x->streams = kvcalloc(x->nr_streams, sizeof(*x->streams),
			      GFP_KERNEL_ACCOUNT);
	if (!x->layout || !x->runs || !x->streams)
		goto err_free;
	for (i = 0; i < d->nr_slots; i++) {
		x->layout[i].id = d->slots[i].id;
		x->layout[i].flags = d->slots[i].flags;
		x->layout[i].base_gfn = d->slots[i].base_gfn;
		x->layout[i].npages = d->slots[i].npages;
	}

	/* The streams' threads work in the VM's mm, as the worker does. */
	if (x->nr_streams > 1) {
		ret = -ESRCH;
		if (!mmget_not_zero(d->kvm->mm))
			goto err_free;
		x->mm = d->kvm->mm;
	}
	for (i = 0; i < x->nr_streams; i++) {
		ret = stream_init(x, i, i ? fds[i - 1] : setup->sock_fd,
				  timeout,
				  setup->flags & KVMIG_XFER_SETUP_RDMA);
		if (ret)
			goto err_streams;
	}
	return x;

err_streams:
	while (i--)
		stream_fini(&x->streams[i]);
	if (x->mm)
		mmput(x->mm);
err_free:
	kvfree(x->streams);
	kvfree(x->runs);
	kvfree(x->layout);
	kfree(x);
	return ERR_PTR(ret);
}

/* The handshake, after create; on error the session fails. */
int kvmig_xfer_handshake(struct kvmig_xfer *x)
{
	struct kvmig_stream *s;
	int ret = 0;
	u32 i;

	for (i = 0; i < x->nr_streams && !ret; i++) {
		s = &x->streams[i];
		if (s->ops->connect)
			ret = s->ops->connect(s);
	}
	if (ret)
		return xfer_fail(x, ret);
	ret = x->role == KVMIG_ROLE_SOURCE ? handshake_source(x) :
					      handshake_dest(x);
	sum_streams(x);
	/* A dry run that got its findings ended as it should. */
	if (x->outcome == KVMIG_STATE_CHECKED)
		return ret;
	return ret ? xfer_fail(x, ret) : 0;
}

/*
 * The source has left PRECOPY, or its session goes: its place under the
 * host's limits goes to the next in line.
 */
void kvmig_xfer_leave_host(struct kvmig_xfer *x)
{
	u32 state = READ_ONCE(x->ticket.state);

	/* Only the worker joins, and never while this runs: see session.c. */
	if (state != KVMIG_TICKET_NONE && state != KVMIG_TICKET_DONE)
		kvmig_host_leave(&x->ticket);
}

/* Called once no call runs: every stream is idle. */
void kvmig_xfer_destroy(struct kvmig_xfer *x)
{
	u32 i = x->nr_streams;

	kvmig_xfer_leave_host(x);
	while (i--)
		stream_fini(&x->streams[i]);
	if (x->mm)
		mmput(x->mm);
	kvfree(x->state);
	kvfree(x->streams);
	kvfree(x->runs);
	kvfree(x->layout);
	kfree(x);
}

void kvmig_xfer_cancel(struct kvmig_xfer *x)
{
	u32 i;

	WRITE_ONCE(x->cancelled, true);
	for (i = 0; i < x->nr_streams; i++)
		x->streams[i].ops->shutdown(&x->streams[i], false);
	kvmig_host_kick();	/* a source waiting for its turn stops now */
}
