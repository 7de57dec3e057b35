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
 * The switchover is a two-phase commit (wire.h): the source may resume
 * only if it never sent COMMIT, the destination may run only once it has
 * COMMIT; a failure between the two leaves the session IN_DOUBT.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/sched.h>
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

static int send_rec(struct kvmig_xfer *x, u32 type, u32 slot, u64 gfn,
		    u32 npages, u32 len, bool more)
{
	struct kvmig_wire_rec w;

	kvmig_wire_encode_rec(&w, type, slot, gfn, npages, len);
	x->st.bytes_sent += sizeof(w);
	return x->ops->send(x, &w, sizeof(w), more);
}

static void progress(struct kvmig_xfer *x)
{
	if (x->progress)
		x->progress(x->progress_arg);
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

/* Keep under the bandwidth cap: sleep until the round's average fits. */
static void cap_bandwidth(struct kvmig_xfer *x, u64 t0, u64 bytes)
{
	u64 due;

	if (!x->bandwidth)
		return;
	due = t0 + min(kvmig_ns_for(bytes, x->bandwidth), U64_MAX - t0);
	while (now_ns() < due && !READ_ONCE(x->cancelled))
		usleep_range(500, 1000);
}

/*
 * Send pages [@gfn, @gfn + @n) of memslot @ks, at most KVMIG_WIRE_MAX_RUN:
 * pinned read-only from the VMM's mm, spliced into the socket. With
 * @zero_check, runs of zero pages go as ZERO records without contents.
 */
static int send_batch(struct kvmig_xfer *x, struct kvmig_slot *ks, u64 gfn,
		      u32 n, bool zero_check, u64 *sent, u64 *zeros)
{
	unsigned long hva = slot_hva(ks, gfn);
	u32 i, j, got, spliced = 0;
	bool zero;
	int ret;

	ret = pin_user_pages_fast(hva, n, 0, x->pages);
	if (ret < 0)
		return ret;
	got = ret;
	if (got < n) {
		ret = -EFAULT;
		goto out;
	}

	for (i = 0; i < n; i = j) {
		zero = zero_check && page_is_zero(x->pages[i]);
		for (j = i + 1; j < n; j++)
			if ((zero_check && page_is_zero(x->pages[j])) != zero)
				break;
		if (zero) {
			ret = send_rec(x, KVMIG_REC_ZERO, ks->id, gfn + i,
				       j - i, 0, true);
			*zeros += j - i;
			x->st.zero_pages += j - i;
		} else {
			ret = send_rec(x, KVMIG_REC_PAGES, ks->id, gfn + i,
				       j - i, 0, true);
			if (!ret)
				ret = x->ops->send_pages(x, x->pages + i, j - i,
							 true, &spliced);
			*sent += j - i;
			x->st.pages_sent += j - i;
			x->st.bytes_sent += (u64)(j - i) * PAGE_SIZE;
		}
		if (ret)
			break;
	}
	x->st.pages_spliced += spliced;
out:
	unpin_user_pages(x->pages, got);
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
 * One pass over the pending set: take a batch of runs (the tracker's lock
 * is held for that only), send it, go on. Pages dirtied meanwhile are
 * pending again and go in this pass or the next. With @zero_check (round
 * 0), never-populated ranges go as ZERO records without being pinned.
 */
static int send_pending(struct kvmig_xfer *x, bool zero_check, u64 *sent,
			u64 *zeros)
{
	struct kvmig_dirty *d = x->d;
	struct kvmig_dirty_run *r;
	struct kvmig_slot *ks;
	u64 t0 = now_ns(), b0 = x->st.bytes_sent, pages, pending, off, left;
	bool walk = zero_check && READ_ONCE(holes), hole;
	u32 nr, i, n;
	int ret;

	kvmig_dirty_rewind(d);
	while ((nr = kvmig_dirty_take(d, x->runs, KVMIG_RUNS_BATCH, &pages,
				      &pending))) {
		left = pages;
		for (i = 0; i < nr; i++) {
			r = &x->runs[i];
			ks = kvmig_dirty_slot(d, r->slot);
			for (off = 0; off < r->npages; off += n) {
				if (READ_ONCE(x->cancelled))
					return -ECANCELED;
				n = next_record(ks, r->gfn + off,
						r->npages - off, walk, &hole);
				if (hole) {
					ret = send_rec(x, KVMIG_REC_ZERO, ks->id,
						       r->gfn + off, n, 0, true);
					*zeros += n;
					x->st.zero_pages += n;
					x->st.hole_pages += n;
				} else {
					ret = send_batch(x, ks, r->gfn + off, n,
							 zero_check, sent,
							 zeros);
				}
				if (ret)
					return ret;
				left -= n;
				x->st.remaining = pending + left;
				progress(x);
				cap_bandwidth(x, t0, x->st.bytes_sent - b0);
				/*
				 * A round can cover all of guest memory and,
				 * on a fast link, never block in the socket:
				 * let the guest's vCPU threads run.
				 */
				cond_resched();
			}
		}
	}
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

/* One pre-copy round; see struct kvmig_round. */
int kvmig_xfer_round(struct kvmig_xfer *x, struct kvmig_round *r)
{
	struct kvmig_dirty *d = x->d;
	u64 t0, sent = 0, zeros = 0, b0, h0;
	bool first = !x->st.xfer_round;
	int ret;

	r->round = x->st.xfer_round;
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

	t0 = now_ns();
	b0 = x->st.bytes_sent;
	h0 = x->st.hole_pages;
	ret = send_rec(x, KVMIG_REC_ROUND, 0, x->st.xfer_round, 0, 0, true);
	if (!ret)
		ret = send_pending(x, first, &sent, &zeros);
	r->pages_sent = sent;
	r->zero_pages = zeros;
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

static int recv_reply(struct kvmig_xfer *x, struct kvmig_wire_reply *rep)
{
	int ret = x->ops->recv(x, rep, sizeof(*rep));

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
	u64 t0 = now_ns(), sent = 0, zeros = 0;
	struct kvmig_wire_reply rep;
	int ret;

	x->outcome = KVMIG_STATE_FAILED;
	ret = harvest(x);
	if (ret)
		return xfer_fail(x, ret);
	update_expected(x);
	trace_kvmig_switchover_start(x->id, x->st.xfer_round, x->st.remaining,
				     f->state_len);
	ret = send_rec(x, KVMIG_REC_ROUND, 0, x->st.xfer_round, 0, 0, true);
	if (!ret)
		ret = send_pending(x, false, &sent, &zeros);
	f->pages_sent = sent;
	if (!ret)
		ret = send_rec(x, KVMIG_REC_STATE, 0, 0, 0, f->state_len, true);
	if (!ret && f->state_len) {
		ret = x->ops->send(x, state, f->state_len, true);
		x->st.bytes_sent += f->state_len;
	}
	if (!ret)
		ret = send_rec(x, KVMIG_REC_END, 0, 0, 0, 0, false);
	if (!ret)
		ret = recv_reply(x, &rep);
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
	ret = send_rec(x, KVMIG_REC_COMMIT, 0, 0, 0, 0, false);
	if (!ret)
		ret = recv_reply(x, &rep);
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
static void send_status(struct kvmig_xfer *x, u32 status, u64 pages)
{
	struct kvmig_wire_reply rep = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.status = cpu_to_le32(status),
		.pages = cpu_to_le64(pages),
	};

	x->ops->send(x, &rep, sizeof(rep), false);
}

/*
 * Before writing into the destination guest: is the memslot layout still
 * the one the source was promised, and so are the host addresses we write
 * through? Cheap when the generation did not move.
 */
static int dest_layout_ok(struct kvmig_xfer *x)
{
	struct kvmig_dirty *d = x->d;
	int idx, ret;

	mutex_lock(&d->lock);
	idx = srcu_read_lock(&d->kvm->srcu);
	ret = kvmig_dirty_check_layout(d);
	srcu_read_unlock(&d->kvm->srcu, idx);
	mutex_unlock(&d->lock);
	if (ret) {
		pr_warn_ratelimited("destination memslots changed during the migration\n");
		x->fail_reason = KVMIG_FAIL_MEMSLOTS;
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

	if (READ_ONCE(x->cancelled))
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

static int recv_zero(struct kvmig_xfer *x, struct kvmig_slot *ks, u64 gfn,
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
			x->st.hole_pages += span;
			cond_resched();
			continue;
		}
		for (j = 0; j < span; j++) {
			ret = recv_zero_page(x, hva + (j << PAGE_SHIFT));
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int recv_pages(struct kvmig_xfer *x, struct kvmig_slot *ks, u64 gfn,
		      u32 n)
{
	unsigned long hva = slot_hva(ks, gfn);
	int ret, got;

	got = pin_user_pages_fast(hva, n, FOLL_WRITE, x->pages);
	if (got < 0)
		return got;
	ret = got < n ? -EFAULT : x->ops->recv_pages(x, x->pages, n);
	unpin_user_pages_dirty_lock(x->pages, got, !ret);
	return ret;
}

static int recv_state(struct kvmig_xfer *x, const struct kvmig_rec *rec,
		      u32 cap, u32 *status)
{
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
	return x->ops->recv(x, x->state, rec->len);
}

/* One record of phase one; returns 1 at END. */
static int recv_rec(struct kvmig_xfer *x, const struct kvmig_rec *rec, u32 cap,
		    u32 *status)
{
	struct kvmig_slot *ks = &x->d->slots[rec->slot_index];
	int ret;

	switch (rec->type) {
	case KVMIG_REC_PAGES:
		ret = dest_layout_ok(x);
		if (!ret)
			ret = recv_pages(x, ks, rec->gfn, rec->npages);
		if (!ret)
			x->st.pages_received += rec->npages;
		return ret;
	case KVMIG_REC_ZERO:
		ret = dest_layout_ok(x);
		if (!ret)
			ret = recv_zero(x, ks, rec->gfn, rec->npages);
		if (!ret)
			x->st.zero_pages += rec->npages;
		return ret;
	case KVMIG_REC_ROUND:
		x->st.xfer_round = rec->gfn;
		return 0;
	case KVMIG_REC_STATE:
		return recv_state(x, rec, cap, status);
	case KVMIG_REC_END:
		if (!x->state) {
			pr_warn_ratelimited("end of stream without device state\n");
			return -EPROTO;
		}
		return 1;
	default:	/* COMMIT before END */
		pr_warn_ratelimited("record %u out of order\n", rec->type);
		return -EPROTO;
	}
}

static int recv_decode(struct kvmig_xfer *x, struct kvmig_rec *rec)
{
	struct kvmig_wire_rec w;
	int ret;

	ret = x->ops->recv(x, &w, sizeof(w));
	if (ret)
		return ret;
	ret = kvmig_wire_decode_rec(&w, x->layout, x->d->nr_slots, rec);
	if (ret)
		pr_warn_ratelimited("malformed record from the source (type %u, slot %u, gfn %llu, %u pages, len %u)\n",
				    le16_to_cpu(w.type), le32_to_cpu(w.slot),
				    le64_to_cpu(w.gfn), le32_to_cpu(w.npages),
				    le32_to_cpu(w.len));
	return ret;
}

/*
 * Reception on the destination; see struct kvmig_recv. Phase one takes
 * records until END and answers PREPARED; a failure before that answer
 * is FAILED (and the source told why, if the link still works). From the
 * moment PREPARED may have left, the source may have committed: a failure
 * then is IN_DOUBT, never FAILED. Only COMMIT makes the outcome DONE.
 */
int kvmig_xfer_recv(struct kvmig_xfer *x, struct kvmig_recv *r)
{
	u32 status = KVMIG_WIRE_E_PROTO;
	struct kvmig_rec rec;
	int ret;

	x->outcome = KVMIG_STATE_FAILED;
	do {
		ret = READ_ONCE(x->cancelled) ? -ECANCELED : 0;
		if (!ret)
			ret = recv_decode(x, &rec);
		if (!ret)
			ret = recv_rec(x, &rec, r->state_cap, &status);
		if (!ret)
			progress(x);
		cond_resched();	/* records may be queued faster than taken */
	} while (!ret);
	if (ret < 0) {
		if (ret == -EFAULT || ret == -ENOMEM)
			status = KVMIG_WIRE_E_LOCAL;
		send_status(x, status, x->st.pages_received);
		return xfer_fail(x, ret);
	}

	r->state_len = x->state_len;
	r->pages_received = x->st.pages_received;
	r->zero_pages = x->st.zero_pages;
	r->rounds = x->st.xfer_round + 1;

	/* Phase two: from here on, never FAILED. */
	x->outcome = KVMIG_STATE_IN_DOUBT;
	ret = x->ops->send(x, &(struct kvmig_wire_reply) {
			.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
			.status = cpu_to_le32(KVMIG_WIRE_OK),
			.pages = cpu_to_le64(x->st.pages_received),
		}, sizeof(struct kvmig_wire_reply), false);
	if (!ret)
		ret = READ_ONCE(x->cancelled) ? -ECANCELED : recv_decode(x, &rec);
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
	send_status(x, KVMIG_WIRE_OK, x->st.pages_received);
	return 0;
}

/* Source: send the layout, wait for the verdict. */
static int handshake_source(struct kvmig_xfer *x)
{
	struct kvmig_dirty *d = x->d;
	struct kvmig_wire_hello h = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.page_shift = cpu_to_le16(PAGE_SHIFT),
		.nr_slots = cpu_to_le32(d->nr_slots),
		.flags = cpu_to_le32(d->regions ? KVMIG_WIRE_HELLO_REGIONS : 0),
		.guest_pages = cpu_to_le64(d->guest_pages),
	};
	struct kvmig_wire_slot ws;
	struct kvmig_wire_reply rep;
	int ret;
	u32 i;

	ret = x->ops->send(x, &h, sizeof(h), true);
	for (i = 0; i < d->nr_slots && !ret; i++) {
		ws.id = cpu_to_le32(d->slots[i].id);
		ws.flags = cpu_to_le32(d->slots[i].flags);
		ws.base_gfn = cpu_to_le64(d->slots[i].base_gfn);
		ws.npages = cpu_to_le64(d->slots[i].npages);
		ret = x->ops->send(x, &ws, sizeof(ws), i + 1 < d->nr_slots);
	}
	if (!ret)
		ret = recv_reply(x, &rep);
	if (ret)
		return ret;
	switch (le32_to_cpu(rep.status)) {
	case KVMIG_WIRE_OK:
		return 0;
	case KVMIG_WIRE_E_LAYOUT:
		pr_warn_ratelimited("destination refused: its memslot layout differs\n");
		x->fail_reason = KVMIG_FAIL_LAYOUT;
		return -EPROTO;
	default:
		pr_warn_ratelimited("destination refused the handshake (status %u)\n",
				    le32_to_cpu(rep.status));
		x->fail_reason = KVMIG_FAIL_PEER;
		return -EPROTO;
	}
}

/* Destination: check the source's layout against ours, answer. */
static int handshake_dest(struct kvmig_xfer *x)
{
	struct kvmig_dirty *d = x->d;
	struct kvmig_wire_hello h;
	struct kvmig_wire_slot ws;
	u32 i, nr, status;
	int ret;

	ret = x->ops->recv(x, &h, sizeof(h));
	if (ret)
		return ret;
	status = kvmig_wire_check_hello(&h);
	if (status) {
		pr_warn_ratelimited("bad handshake from the source (status %u)\n",
				    status);
		send_status(x, status, 0);
		x->fail_reason = status == KVMIG_WIRE_E_VERSION ?
				 KVMIG_FAIL_PEER : KVMIG_FAIL_PROTOCOL;
		return -EPROTO;
	}
	nr = le32_to_cpu(h.nr_slots);
	for (i = 0; i < nr; i++) {
		ret = x->ops->recv(x, &ws, sizeof(ws));
		if (ret)
			return ret;
		if (!status && (i >= d->nr_slots ||
				kvmig_wire_compare_slot(&ws, &x->layout[i])))
			status = KVMIG_WIRE_E_LAYOUT;
	}
	if (nr != d->nr_slots ||
	    le64_to_cpu(h.guest_pages) != d->guest_pages ||
	    !!(le32_to_cpu(h.flags) & KVMIG_WIRE_HELLO_REGIONS) != d->regions)
		status = KVMIG_WIRE_E_LAYOUT;
	send_status(x, status, 0);
	if (status) {
		pr_warn_ratelimited("refused the source: memslot layout differs\n");
		x->fail_reason = KVMIG_FAIL_LAYOUT;
		return -EPROTO;
	}
	return 0;
}

struct kvmig_xfer *kvmig_xfer_create(struct kvmig_dirty *d, u32 role,
				     const struct kvmig_xfer_setup *setup)
{
	struct kvmig_xfer *x;
	u32 i;
	int ret;

	x = kzalloc(sizeof(*x), GFP_KERNEL_ACCOUNT);
	if (!x)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&x->sock_lock);
	x->d = d;
	x->role = role;
	x->max_rounds = setup->max_rounds ?: 30;
	x->downtime_ns = setup->downtime_ns ?: 300 * NSEC_PER_MSEC;
	x->bandwidth = setup->bandwidth;
	if (setup->timeout_ms)
		x->deadline_ns = kvmig_deadline(now_ns(), setup->timeout_ms);

	ret = -ENOMEM;
	x->layout = kvcalloc(d->nr_slots, sizeof(*x->layout),
			     GFP_KERNEL_ACCOUNT);
	x->runs = kvcalloc(KVMIG_RUNS_BATCH, sizeof(*x->runs),
			   GFP_KERNEL_ACCOUNT);
	if (!x->layout || !x->runs)
		goto err_free;
	for (i = 0; i < d->nr_slots; i++) {
		x->layout[i].id = d->slots[i].id;
		x->layout[i].flags = d->slots[i].flags;
		x->layout[i].base_gfn = d->slots[i].base_gfn;
		x->layout[i].npages = d->slots[i].npages;
	}

	ret = kvmig_tcp_attach(x, setup->sock_fd,
			       setup->io_timeout_ms ?: 10000);
	if (ret)
		goto err_free;
	return x;

err_free:
	kvfree(x->runs);
	kvfree(x->layout);
	kfree(x);
	return ERR_PTR(ret);
}

/* The handshake, after create; on error the session fails. */
int kvmig_xfer_handshake(struct kvmig_xfer *x)
{
	int ret;

	ret = x->role == KVMIG_ROLE_SOURCE ? handshake_source(x) :
					      handshake_dest(x);
	return ret ? xfer_fail(x, ret) : 0;
}

void kvmig_xfer_destroy(struct kvmig_xfer *x)
{
	x->ops->release(x);
	kvfree(x->state);
	kvfree(x->runs);
	kvfree(x->layout);
	kfree(x);
}

void kvmig_xfer_cancel(struct kvmig_xfer *x)
{
	WRITE_ONCE(x->cancelled, true);
	x->ops->shutdown(x);
}
