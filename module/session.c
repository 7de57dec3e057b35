// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open file of /dev/kvmig, and attaching a KVM VM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/kvm_host.h>
#include <linux/pid.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "core.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/*
 * Every session, oldest first, for KVMIG_LIST_SESSIONS. A lister reads
 * only the sessions' published snapshots, never takes a session's lock,
 * and so never waits for a transfer.
 */
static LIST_HEAD(kvmig_sessions);	/* under kvmig_sessions_lock */
static DEFINE_MUTEX(kvmig_sessions_lock);
static atomic64_t kvmig_last_id = ATOMIC64_INIT(0);

struct kvmig_session *kvmig_session_create(void)
{
	struct kvmig_session *s;

	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return NULL;
	mutex_init(&s->lock);
	init_waitqueue_head(&s->wq);
	init_waitqueue_head(&s->work_wq);
	s->state = KVMIG_STATE_IDLE;
	s->id = atomic64_inc_return(&kvmig_last_id);
	s->pid = get_pid(task_tgid(current));
	seqlock_init(&s->snap_lock);
	s->snap.id = s->id;

	mutex_lock(&kvmig_sessions_lock);
	list_add_tail(&s->node, &kvmig_sessions);
	mutex_unlock(&kvmig_sessions_lock);
	return s;
}

/*
 * Called from the file's release: no ioctl can reach @s any more, only a
 * lister until @s leaves the list, and listers read nothing but @s->snap.
 * Undoes, in reverse: the worker, the eventfd and the transfer (SETUP),
 * the tracker (START or SETUP), the VM (ATTACH), the session (open).
 */
void kvmig_session_destroy(struct kvmig_session *s)
{
	struct kvm *kvm;

	kvmig_worker_stop(s);
	if (s->event)
		eventfd_ctx_put(s->event);
	if (s->xfer)
		kvmig_xfer_destroy(s->xfer);
	kvfree(s->op.state);
	if (s->dirty)
		kvmig_dirty_destroy(s->dirty);
	if (s->vm_file) {
		kvm = s->kvm;
		mutex_lock(&kvmig_sessions_lock);
		s->kvm = NULL;		/* the VM may be attached again */
		mutex_unlock(&kvmig_sessions_lock);
		kvm_put_kvm(kvm);
		fput(s->vm_file);
	}
	kvfree(s->regions);
	kvfree(s->check.cpuid);

	mutex_lock(&kvmig_sessions_lock);
	list_del(&s->node);
	mutex_unlock(&kvmig_sessions_lock);
	put_pid(s->pid);
	mutex_destroy(&s->lock);
	kfree(s);
}

/*
 * Publish what KVMIG_GET_STATS and KVMIG_LIST_SESSIONS report. Readers
 * retry on @snap_lock and never block; each part is copied by whoever may
 * read it consistently (see struct kvmig_session.snap).
 */
void kvmig_session_publish(struct kvmig_session *s, unsigned int what)
{
	struct kvmig_dirty_counters c = {};
	struct kvmig_stats *st = &s->snap;
	struct kvmig_xfer *x = s->xfer;
	struct kvmig_snap_host h = {};

	if (what & KVMIG_PUB_STATE)
		lockdep_assert_held(&s->lock);
	if (!s->dirty)
		what &= ~KVMIG_PUB_DIRTY;
	if (!x)
		what &= ~KVMIG_PUB_XFER;
	if (what & KVMIG_PUB_DIRTY)
		kvmig_dirty_counters(s->dirty, &c);
	if (what & KVMIG_PUB_XFER) {
		h.priority = x->ticket.priority;
		if (s->role == KVMIG_ROLE_SOURCE)
			h.queue_pos = kvmig_host_position(&x->ticket,
							  &h.wait_ns);
		if (h.queue_pos || READ_ONCE(x->peer_waits))
			h.flags = KVMIG_SESSION_QUEUED;
	}

	write_seqlock(&s->snap_lock);
	if (what & KVMIG_PUB_STATE) {
		st->state = s->state;
		st->role = s->role;
		st->dirty_mode = s->dirty_mode;
		st->fail_reason = s->fail_reason;
		if (s->dirty) {
			st->nr_slots = s->dirty->nr_slots;
			st->guest_pages = s->dirty->guest_pages;
		}
	}
	if (what & KVMIG_PUB_XFER) {
		st->xfer_round = x->st.xfer_round;
		st->pages_sent = x->st.pages_sent;
		st->bytes_sent = x->st.bytes_sent;
		st->zero_pages = x->st.zero_pages;
		st->pages_spliced = x->st.pages_spliced;
		st->pages_copied = x->st.pages_sent - x->st.pages_spliced;
		st->pages_received = x->st.pages_received;
		st->dirty_rate = x->st.dirty_rate;
		st->throughput = x->st.throughput;
		st->expected_downtime_ns = x->st.expected_downtime_ns;
		st->downtime_ns = x->st.downtime_ns;
		st->remaining = x->st.remaining;
		st->hole_pages = x->st.hole_pages;
		s->snap_host = h;
	}
	if (what & KVMIG_PUB_DIRTY) {
		st->rounds = c.rounds;
		st->pages_harvested = c.pages_harvested;
		st->pages_pending = c.pages_pending;
		st->pages_read = c.pages_read;
		st->harvest_ns = c.harvest_ns;
		st->throttle_policy = c.thr_policy;
		st->throttle_pct = c.thr_pct;
		st->throttle_ns = c.thr_ns;
	}
	write_sequnlock(&s->snap_lock);
}

/* Every control call that took the session lock publishes what it changed. */
static void session_unlock(struct kvmig_session *s)
{
	kvmig_session_publish(s, KVMIG_PUB_STATE | KVMIG_PUB_DIRTY);
	mutex_unlock(&s->lock);
}

/* The transfer's progress, after each record: on the worker. */
static void xfer_progress(void *arg)
{
	kvmig_session_publish(arg, KVMIG_PUB_XFER | KVMIG_PUB_DIRTY);
}

static void session_snapshot(struct kvmig_session *s, struct kvmig_stats *st,
			     struct kvmig_snap_host *h)
{
	unsigned int seq;

	do {
		seq = read_seqbegin(&s->snap_lock);
		*st = s->snap;
		if (h)
			*h = s->snap_host;
	} while (read_seqretry(&s->snap_lock, seq));
}

/* A state change under the session lock, seen by lockless readers. */
static void set_state(struct kvmig_session *s, u32 state)
{
	lockdep_assert_held(&s->lock);

	/* Pairs with dirty_live(): what the state promises is set up. */
	smp_store_release(&s->state, state);
	/*
	 * Past pre-copy nothing is throttled any more: a vCPU thread asleep
	 * in the throttle goes back to its guest now (a failed migration's
	 * source runs on at full speed).
	 */
	if (s->dirty && state != KVMIG_STATE_TRACKING &&
	    state != KVMIG_STATE_PRECOPY)
		kvmig_throttle_wake(s->dirty);
	/*
	 * Nor does the source hold a place under the host's limits. Its
	 * worker joined the queue during a call, which has ended: no call
	 * runs when the state leaves PRECOPY (kvmig_xfer_leave_host()).
	 */
	if (s->xfer && state != KVMIG_STATE_PRECOPY)
		kvmig_xfer_leave_host(s->xfer);
}

/* The checks that need no VM: one rule per line. */
VISIBLE_IF_KUNIT int kvmig_attach_check(const struct kvmig_attach *a)
{
	bool regions = a->flags & KVMIG_ATTACH_REGIONS;

	if (a->flags & ~KVMIG_ATTACH_FLAGS)
		return -EINVAL;
	if (a->pad)
		return -EINVAL;
	if (memchr_inv(a->reserved, 0, sizeof(a->reserved)))
		return -EINVAL;
	if (regions && (!a->nr_regions || a->nr_regions > KVMIG_MAX_REGIONS))
		return -EINVAL;
	if (regions && !a->regions_ptr)
		return -EINVAL;
	if (!regions && (a->nr_regions || a->regions_ptr))
		return -EINVAL;
	if (a->role != KVMIG_ROLE_SOURCE && a->role != KVMIG_ROLE_DEST)
		return -EINVAL;
	if (a->dirty_mode > KVMIG_DIRTY_BITMAP)
		return -EINVAL;
	if (a->role == KVMIG_ROLE_DEST && a->dirty_mode != KVMIG_DIRTY_AUTO)
		return -EINVAL;
	if (a->vm_fd > INT_MAX)
		return -EBADF;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_attach_check);

/*
 * Pick the tracker a source will use on a VM set up with @ring_size bytes
 * of dirty ring per vCPU (0: none) and manual dirty-log protection or not.
 * With rings, KVM refuses KVM_GET_DIRTY_LOG, so bitmap mode needs a VM
 * without them.
 */
VISIBLE_IF_KUNIT int kvmig_dirty_mode_resolve(u32 role, u32 mode,
					      u32 ring_size,
					      bool manual_protect, u32 *out)
{
	if (role == KVMIG_ROLE_DEST) {
		*out = KVMIG_DIRTY_AUTO;
		return 0;
	}
	if (mode == KVMIG_DIRTY_AUTO)
		mode = ring_size ? KVMIG_DIRTY_RING : KVMIG_DIRTY_BITMAP;
	if (mode == KVMIG_DIRTY_RING && !ring_size)
		return -EINVAL;
	if (mode == KVMIG_DIRTY_BITMAP && (ring_size || !manual_protect))
		return -EINVAL;
	*out = mode;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_dirty_mode_resolve);

static int __attach(struct kvmig_session *s, struct kvmig_attach *a,
		    struct kvmig_region *regions)
{
	struct kvmig_session *other;
	struct file *file;
	struct kvm *kvm;
	u32 mode;
	int ret;

	lockdep_assert_held(&s->lock);

	if (s->state != KVMIG_STATE_IDLE)
		return -EBUSY;

	file = fget(a->vm_fd);
	if (!file)
		return -EBADF;
	ret = -EINVAL;
	if (!file_is_kvm(file))
		goto err_fput;
	kvm = file->private_data;
	/* Both are set under kvm->lock before vCPUs exist; re-checked later. */
	ret = kvmig_dirty_mode_resolve(a->role, a->dirty_mode,
				       READ_ONCE(kvm->dirty_ring_size),
				       READ_ONCE(kvm->manual_dirty_log_protect) &
				       KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
				       &mode);
	if (ret)
		goto err_fput;
	/*
	 * A ring entry names a memslot that may be gone by the time it is
	 * read, and a region session follows memslot changes: bitmap only.
	 * Region addresses are the VMM's own.
	 */
	ret = -EOPNOTSUPP;
	if (regions && mode == KVMIG_DIRTY_RING)
		goto err_fput;
	ret = -EPERM;
	if (regions && current->mm != kvm->mm)
		goto err_fput;

	/* One VM, one session: two harvesters would each lose pages. */
	ret = -EBUSY;
	mutex_lock(&kvmig_sessions_lock);
	list_for_each_entry(other, &kvmig_sessions, node)
		if (other->kvm == kvm)
			break;
	if (list_entry_is_head(other, &kvmig_sessions, node))
		s->kvm = kvm;
	mutex_unlock(&kvmig_sessions_lock);
	if (s->kvm != kvm)
		goto err_fput;

	kvm_get_kvm(kvm);
	s->vm_file = file;
	s->role = a->role;
	s->dirty_mode = mode;
	s->regions = regions;
	s->nr_regions = regions ? a->nr_regions : 0;
	set_state(s, KVMIG_STATE_ATTACHED);
	a->dirty_mode = mode;
	return 0;

err_fput:
	fput(file);
	return ret;
}

long kvmig_session_attach(struct kvmig_session *s,
			  struct kvmig_attach __user *argp)
{
	struct kvmig_region *regions = NULL;
	struct kvmig_attach a;
	int ret;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	ret = kvmig_attach_check(&a);
	if (ret)
		return ret;
	/* Fail before attaching if the answer could not be written back. */
	if (put_user(a.dirty_mode, &argp->dirty_mode))
		return -EFAULT;
	if (a.flags & KVMIG_ATTACH_REGIONS) {
		regions = vmemdup_array_user(u64_to_user_ptr(a.regions_ptr),
					     a.nr_regions, sizeof(*regions));
		if (IS_ERR(regions))
			return PTR_ERR(regions);
		ret = kvmig_regions_check(regions, a.nr_regions);
		if (ret)
			goto out_free;
	}

	mutex_lock(&s->lock);
	ret = __attach(s, &a, regions);
	session_unlock(s);
	if (ret)
		goto out_free;
	trace_kvmig_attach(s->id, a.role, a.dirty_mode, task_tgid_nr(current));

	if (put_user(a.dirty_mode, &argp->dirty_mode))
		return -EFAULT;
	return 0;

out_free:
	kvfree(regions);
	return ret;
}

/* May the dirty-tracking calls run now? */
static int tracking_check(struct kvmig_session *s)
{
	lockdep_assert_held(&s->lock);

	if (s->state == KVMIG_STATE_FAILED || s->state == KVMIG_STATE_CHECKED)
		return -ESTALE;
	if (s->state != KVMIG_STATE_TRACKING)
		return -EBUSY;
	return 0;
}

/* Dirty tracking found the session cannot go on (-ESTALE). */
static void dirty_failed(struct kvmig_session *s)
{
	static const char * const why[] = {
		[KVMIG_FAIL_MEMSLOTS] = "the memslot layout changed",
		[KVMIG_FAIL_RING_STOLEN] = "another harvester reaped the dirty rings",
	};

	lockdep_assert_held(&s->lock);

	if (s->state == KVMIG_STATE_FAILED)
		return;
	/*
	 * A transfer call running owns the outcome: it may be past the
	 * point of no return of a switchover. Make it give up; it ends the
	 * session as FAILED or IN_DOUBT, whichever is true.
	 */
	if (s->op.running) {
		kvmig_xfer_cancel(s->xfer);
		return;
	}
	if (s->xfer)
		kvmig_xfer_cancel(s->xfer);
	set_state(s, KVMIG_STATE_FAILED);
	s->fail_reason = s->dirty->fail_reason;
	trace_kvmig_failed(s->id, s->role, s->fail_reason, -ESTALE);
	pr_warn_ratelimited("pid %d: dirty tracking failed: %s\n",
			    task_pid_nr(current),
			    s->fail_reason < ARRAY_SIZE(why) &&
			    why[s->fail_reason] ? why[s->fail_reason] : "?");
	kvmig_session_notify(s);
}

static int __dirty_start(struct kvmig_session *s, struct kvmig_dirty_start *a)
{
	struct kvmig_dirty *d;

	lockdep_assert_held(&s->lock);

	if (s->state != KVMIG_STATE_ATTACHED)
		return -EBUSY;
	if (s->role != KVMIG_ROLE_SOURCE)
		return -EINVAL;
	if (current->mm != s->kvm->mm)
		return -EPERM;

	d = kvmig_dirty_create(s->kvm, s->vm_file, s->dirty_mode,
			       s->regions, s->nr_regions);
	if (IS_ERR(d))
		return PTR_ERR(d);
	d->id = s->id;
	s->dirty = d;
	set_state(s, KVMIG_STATE_TRACKING);
	a->nr_slots = d->nr_slots;
	a->guest_pages = d->guest_pages;
	a->scratch_addr = d->uscratch;
	a->scratch_len = d->uscratch ? d->uscratch_len : 0;
	return 0;
}

long kvmig_session_dirty_start(struct kvmig_session *s,
			       struct kvmig_dirty_start __user *argp)
{
	struct kvmig_dirty_start a;
	int ret;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	/* Output fields are ignored on input. */
	if (a.flags || memchr_inv(a.reserved, 0, sizeof(a.reserved)))
		return -EINVAL;
	/* Fail before starting if the answer could not be written back. */
	if (copy_to_user(argp, &a, sizeof(a)))
		return -EFAULT;

	mutex_lock(&s->lock);
	ret = __dirty_start(s, &a);
	session_unlock(s);
	if (ret)
		return ret;

	if (copy_to_user(argp, &a, sizeof(a)))
		return -EFAULT;
	return 0;
}

/*
 * May the dirty tracking calls of a vCPU thread run? They read the state
 * without the session lock, which a control call may hold: the tracker
 * exists from TRACKING on and never goes away before the file does.
 */
static int dirty_live(struct kvmig_session *s)
{
	/* Pairs with set_state(): s->dirty is set before TRACKING. */
	u32 state = smp_load_acquire(&s->state);

	/* After a dry run as after a failure, the source's VM runs on. */
	if (state == KVMIG_STATE_FAILED || state == KVMIG_STATE_CHECKED)
		return -ESTALE;
	if (state != KVMIG_STATE_TRACKING && state != KVMIG_STATE_PRECOPY)
		return -EBUSY;
	return 0;
}

long kvmig_session_harvest(struct kvmig_session *s,
			   struct kvmig_harvest __user *argp)
{
	struct kvmig_dirty_counters c;
	struct kvmig_harvest h;
	int ret;

	if (copy_from_user(&h, argp, sizeof(h)))
		return -EFAULT;
	if (h.flags || h.pad || memchr_inv(h.reserved, 0, sizeof(h.reserved)))
		return -EINVAL;

	/* Only the tracker's lock: a vCPU with a full ring must not wait
	 * for a control call, let alone for the network.
	 */
	ret = dirty_live(s);
	if (ret)
		return ret;
	if (current->mm != s->kvm->mm)
		return -EPERM;
	ret = kvmig_dirty_harvest(s->dirty, &h.found, &c);
	if (ret == -ESTALE) {
		mutex_lock(&s->lock);
		dirty_failed(s);
		session_unlock(s);
		return ret;
	}
	h.pending = c.pages_pending;
	h.round = c.rounds;
	kvmig_session_publish(s, KVMIG_PUB_DIRTY);
	if (ret)
		return ret;

	/* A vCPU thread pays for its pages here, holding nothing. */
	kvmig_throttle_vcpu(s->dirty);

	/* What was harvested stays pending, even if this copy fails. */
	if (copy_to_user(argp, &h, sizeof(h)))
		return -EFAULT;
	return 0;
}

long kvmig_session_throttle(struct kvmig_session *s,
			    struct kvmig_throttle __user *argp)
{
	struct kvmig_throttle t;
	int ret;

	if (copy_from_user(&t, argp, sizeof(t)))
		return -EFAULT;
	ret = kvmig_throttle_check(&t);
	if (ret)
		return ret;

	mutex_lock(&s->lock);
	if (s->role != KVMIG_ROLE_SOURCE ||
	    (s->state != KVMIG_STATE_TRACKING &&
	     s->state != KVMIG_STATE_PRECOPY)) {
		ret = -EBUSY;
	} else {
		kvmig_throttle_set(s->dirty, &t);
		ret = 0;
	}
	session_unlock(s);
	return ret;
}

#define KVMIG_READ_MAX_RUNS	65536

static int __dirty_read(struct kvmig_session *s, struct kvmig_dirty_read *r,
			struct kvmig_dirty_read __user *argp)
{
	struct kvmig_dirty *d = s->dirty;
	struct kvmig_dirty_run *runs;
	u32 n;
	int ret;

	lockdep_assert_held(&s->lock);

	ret = tracking_check(s);
	if (ret)
		return ret;
	/* Only the VMM may take pages out: anyone else would lose them. */
	if (current->mm != s->kvm->mm)
		return -EPERM;

	mutex_lock(&d->lock);
	/* There are never more runs than pending pages. */
	n = min_t(u64, r->nr_runs, d->pages_pending);
	ret = -ENOMEM;
	runs = n ? kvmalloc_array(n, sizeof(*runs), GFP_KERNEL_ACCOUNT) : NULL;
	if (n && !runs)
		goto out;
	r->pages = 0;
	n = n ? kvmig_dirty_collect_runs(d, runs, n, &r->pages) : 0;
	r->nr_runs = n;
	r->pending = d->pages_pending - r->pages;

	/* Copy everything out first: on -EFAULT nothing is consumed. */
	ret = -EFAULT;
	if (copy_to_user(u64_to_user_ptr(r->runs_ptr), runs,
			 (size_t)n * sizeof(*runs)) ||
	    copy_to_user(argp, r, sizeof(*r)))
		goto out;
	kvmig_dirty_consume(d, runs, n);
	ret = 0;
out:
	mutex_unlock(&d->lock);
	kvfree(runs);
	return ret;
}

long kvmig_session_dirty_read(struct kvmig_session *s,
			      struct kvmig_dirty_read __user *argp)
{
	struct kvmig_dirty_read r;
	int ret;

	if (copy_from_user(&r, argp, sizeof(r)))
		return -EFAULT;
	if (r.flags || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;
	if (!r.nr_runs || r.nr_runs > KVMIG_READ_MAX_RUNS || !r.runs_ptr)
		return -EINVAL;

	mutex_lock(&s->lock);
	ret = __dirty_read(s, &r, argp);
	session_unlock(s);
	return ret;
}

long kvmig_session_stats(struct kvmig_session *s,
			 struct kvmig_stats __user *argp)
{
	struct kvmig_stats st;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	/* All but @flags is output: a struct from an earlier call is fine. */
	if (st.flags)
		return -EINVAL;
	session_snapshot(s, &st, NULL);
	if (copy_to_user(argp, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

/* The transfer failed: the session is FAILED. */
static void xfer_failed(struct kvmig_session *s, int err)
{
	lockdep_assert_held(&s->lock);

	if (s->state == KVMIG_STATE_FAILED)
		return;		/* the first reason stands */
	s->fail_reason = s->xfer->fail_reason ?: s->dirty->fail_reason ?:
			 KVMIG_FAIL_IO;
	set_state(s, KVMIG_STATE_FAILED);
	trace_kvmig_failed(s->id, s->role, s->fail_reason, err);
	pr_warn_ratelimited("session %llu: migration failed (%d, reason %u)\n",
			    s->id, err, s->fail_reason);
}

/* The end of a switchover, either side: DONE, IN_DOUBT or FAILED. */
static void xfer_ended(struct kvmig_session *s, int ret)
{
	struct kvmig_xfer *x = s->xfer;

	lockdep_assert_held(&s->lock);

	if (!ret) {
		set_state(s, KVMIG_STATE_DONE);
		trace_kvmig_done(s->id, s->role,
				 s->role == KVMIG_ROLE_SOURCE ? x->st.pages_sent :
				 x->st.pages_received,
				 s->role == KVMIG_ROLE_SOURCE ? x->st.bytes_sent :
				 x->st.pages_received * PAGE_SIZE + x->state_len,
				 x->st.downtime_ns);
	} else if (x->outcome == KVMIG_STATE_IN_DOUBT) {
		s->fail_reason = x->fail_reason;
		set_state(s, KVMIG_STATE_IN_DOUBT);
		pr_warn_ratelimited("session %llu: outcome in doubt (%d): the orchestrator must resolve it\n",
				    s->id, ret);
	} else {
		xfer_failed(s, ret);
	}
}

/* On the worker: run the call in s->op, then publish its end. */
void kvmig_session_run_op(struct kvmig_session *s)
{
	struct kvmig_xfer *x = s->xfer;
	struct kvmig_op *op = &s->op;
	struct kvmig_round *r = &op->out.round;
	int ret = -EINVAL;

	switch (op->kind) {
	case KVMIG_OP_HANDSHAKE:
		ret = kvmig_xfer_handshake(x);
		break;
	case KVMIG_OP_ROUND:
		ret = kvmig_xfer_round(x, r);
		if (!ret)
			trace_kvmig_round_end(s->id, r->round, r->status,
					      r->pages_sent, r->zero_pages,
					      x->st.bytes_sent, r->remaining,
					      x->st.dirty_rate, x->st.throughput,
					      r->expected_downtime_ns);
		break;
	case KVMIG_OP_FINAL:
		op->out.final.state_len = op->state_len;
		ret = kvmig_xfer_final(x, &op->out.final, op->state);
		trace_kvmig_switchover_end(s->id, ret, op->out.final.pages_sent,
					   op->out.final.downtime_ns);
		break;
	case KVMIG_OP_RECV:
		op->out.recv.state_cap = op->state_cap;
		ret = kvmig_xfer_recv(x, &op->out.recv);
		break;
	}

	mutex_lock(&s->lock);
	switch (op->kind) {
	case KVMIG_OP_HANDSHAKE:
		memcpy(s->findings, x->findings, sizeof(s->findings));
		s->nr_findings = x->nr_findings;
		s->check_status = x->check_status;
		/* Pairs with read_findings(): the findings first. */
		smp_store_release(&s->checked, true);
		if (x->outcome == KVMIG_STATE_CHECKED)
			set_state(s, KVMIG_STATE_CHECKED);
		else if (ret)
			xfer_failed(s, ret);
		break;
	case KVMIG_OP_ROUND:
		if (ret)
			xfer_failed(s, ret);
		else if (r->status != KVMIG_ROUND_SENT)
			WRITE_ONCE(s->converged, true);
		break;
	case KVMIG_OP_FINAL:
	case KVMIG_OP_RECV:
		xfer_ended(s, ret);
		break;
	}
	kvfree(op->state);
	op->state = NULL;
	op->ret = ret;
	op->running = false;
	WRITE_ONCE(s->op_done_seq, op->seq);
	kvmig_session_publish(s, KVMIG_PUB_XFER);
	session_unlock(s);
	kvmig_session_notify(s);
}

/*
 * Hand a call to the worker, or join the same call still running, and
 * wait for it without holding anything. On return 0 the result is in
 * *@out (and, for RECV, the state to copy out is in s->xfer).
 */
static int op_call(struct kvmig_session *s, u32 kind, void **state,
		   u32 state_len, u32 state_cap, void *out, size_t size)
{
	u64 seq;
	int ret;

	ret = kvmig_op_submit(s, kind, &seq);
	if (ret < 0) {
		session_unlock(s);
		return ret;
	}
	if (ret) {
		s->op.state = *state;
		s->op.state_len = state_len;
		s->op.state_cap = state_cap;
		*state = NULL;
		kvmig_op_kick(s);
	}
	mutex_unlock(&s->lock);

	ret = kvmig_op_wait(s, seq);
	if (ret)
		return ret;

	mutex_lock(&s->lock);
	if (s->op.seq != seq) {
		/* Collected and replaced by another thread meanwhile. */
		session_unlock(s);
		return -EBUSY;
	}
	s->op.collected = true;
	memcpy(out, &s->op.out, size);
	ret = s->op.ret;
	session_unlock(s);
	return ret;
}

/* May a new transfer call start in @state? Joining one is always fine. */
static bool op_joinable(struct kvmig_session *s, u32 kind)
{
	lockdep_assert_held(&s->lock);

	return s->op.kind == kind && (s->op.running || !s->op.collected);
}

static int __xfer_setup(struct kvmig_session *s, struct kvmig_xfer_setup *a,
			const u32 *fds)
{
	bool source = s->role == KVMIG_ROLE_SOURCE;
	struct eventfd_ctx *event = NULL;
	struct kvmig_dirty *d;
	struct kvmig_xfer *x;
	int ret;

	lockdep_assert_held(&s->lock);

	if (s->state != (source ? KVMIG_STATE_TRACKING : KVMIG_STATE_ATTACHED))
		return -EBUSY;
	/* A destination follows the source's CHECK and its host's limits. */
	if ((a->flags & KVMIG_XFER_SETUP_DRY_RUN || a->priority) && !source)
		return -EINVAL;

	if (a->flags & KVMIG_XFER_SETUP_EVENTFD) {
		event = eventfd_ctx_fdget(a->event_fd);
		if (IS_ERR(event))
			return PTR_ERR(event);
	}
	if (!source) {
		d = kvmig_dirty_create(s->kvm, s->vm_file, KVMIG_DIRTY_AUTO,
				       s->regions, s->nr_regions);
		if (IS_ERR(d)) {
			ret = PTR_ERR(d);
			goto err_event;
		}
		s->dirty = d;
	}
	x = kvmig_xfer_create(s->dirty, s->role, a, fds, s->id, &s->check);
	if (IS_ERR(x)) {
		ret = PTR_ERR(x);
		goto err_dirty;
	}
	x->progress = xfer_progress;
	x->progress_arg = s;
	s->xfer = x;
	ret = kvmig_worker_start(s);
	if (ret)
		goto err_xfer;
	s->event = event;
	set_state(s, source ? KVMIG_STATE_PRECOPY : KVMIG_STATE_RECEIVING);
	return 0;

err_xfer:
	s->xfer = NULL;
	kvmig_xfer_destroy(x);
err_dirty:
	if (!source) {
		kvmig_dirty_destroy(s->dirty);
		s->dirty = NULL;
	}
err_event:
	if (event)
		eventfd_ctx_put(event);
	return ret;
}

long kvmig_session_xfer_setup(struct kvmig_session *s,
			      struct kvmig_xfer_setup __user *argp)
{
	u32 fds[KVMIG_MAX_STREAMS - 1], i;
	struct kvmig_xfer_setup a;
	void *none = NULL;
	int ret;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.flags & ~KVMIG_XFER_SETUP_FLAGS || a.pad ||
	    a.priority > KVMIG_PRIORITY_HIGH || a.reserved)
		return -EINVAL;

	if (!(a.flags & KVMIG_XFER_SETUP_EVENTFD) && a.event_fd)
		return -EINVAL;
	if (a.flags & KVMIG_XFER_SETUP_STREAMS ?
	    a.nr_streams < 2 || a.nr_streams > KVMIG_MAX_STREAMS :
	    a.nr_streams || a.streams_ptr)
		return -EINVAL;
	/* RDMA: one connection (xfer/rdma.c). */
	if ((a.flags & KVMIG_XFER_SETUP_RDMA) &&
	    (a.flags & KVMIG_XFER_SETUP_STREAMS))
		return -EINVAL;
	if (a.nr_streams &&
	    copy_from_user(fds, u64_to_user_ptr(a.streams_ptr),
			   (a.nr_streams - 1) * sizeof(*fds)))
		return -EFAULT;
	if (a.sock_fd > INT_MAX || a.event_fd > INT_MAX)
		return -EBADF;
	for (i = 0; i + 1 < a.nr_streams; i++)
		if (fds[i] > INT_MAX)
			return -EBADF;

	mutex_lock(&s->lock);
	/* An interrupted SETUP, made again, waits for its handshake. */
	if (!op_joinable(s, KVMIG_OP_HANDSHAKE)) {
		ret = __xfer_setup(s, &a, fds);
		if (ret) {
			session_unlock(s);
			return ret;
		}
	}
	return op_call(s, KVMIG_OP_HANDSHAKE, &none, 0, 0, &a, 0);
}

/* The checks that need no session: one rule per line. */
VISIBLE_IF_KUNIT int kvmig_check_setup_check(const struct kvmig_check_setup *c,
					     u32 role)
{
	static const u8 none[16];
	bool uuid = c->flags & KVMIG_CHECK_UUID;
	bool cpuid = c->flags & KVMIG_CHECK_CPUID;

	if (c->flags & ~KVMIG_CHECK_FLAGS)
		return -EINVAL;
	if (memchr_inv(c->reserved, 0, sizeof(c->reserved)))
		return -EINVAL;
	if (uuid == !memcmp(c->uuid, none, sizeof(none)))
		return -EINVAL;
	if (cpuid && role != KVMIG_ROLE_DEST)
		return -EINVAL;
	if (cpuid && (!c->nr_cpuid || c->nr_cpuid > KVMIG_MAX_CPUID ||
		      !c->cpuid_ptr))
		return -EINVAL;
	if (!cpuid && (c->nr_cpuid || c->cpuid_ptr))
		return -EINVAL;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_check_setup_check);

long kvmig_session_set_check(struct kvmig_session *s,
			     struct kvmig_check_setup __user *argp)
{
	struct kvmig_cpuid_entry *cpuid = NULL;
	struct kvmig_check_setup c;
	int ret;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.flags & KVMIG_CHECK_CPUID) {
		if (!c.nr_cpuid || c.nr_cpuid > KVMIG_MAX_CPUID)
			return -EINVAL;
		cpuid = vmemdup_array_user(u64_to_user_ptr(c.cpuid_ptr),
					   c.nr_cpuid, sizeof(*cpuid));
		if (IS_ERR(cpuid))
			return PTR_ERR(cpuid);
	}

	mutex_lock(&s->lock);
	ret = -EBUSY;
	if (s->state != KVMIG_STATE_ATTACHED &&
	    !(s->state == KVMIG_STATE_TRACKING &&
	      s->role == KVMIG_ROLE_SOURCE))
		goto out;
	ret = kvmig_check_setup_check(&c, s->role);
	if (ret)
		goto out;
	swap(s->check.cpuid, cpuid);
	s->check.nr_cpuid = c.nr_cpuid;
	s->check.has_uuid = c.flags & KVMIG_CHECK_UUID;
	memcpy(s->check.uuid, c.uuid, sizeof(c.uuid));
out:
	session_unlock(s);
	kvfree(cpuid);
	return ret;
}

/* @s's findings into @f, if its handshake has ended; @s stays alive. */
static u32 read_findings(struct kvmig_session *s, struct kvmig_finding *f,
			 u32 *status)
{
	/* Pairs with kvmig_session_run_op(): final once set. */
	if (!smp_load_acquire(&s->checked)) {
		*status = KVMIG_CHECK_NOT_RUN;
		return 0;
	}
	memcpy(f, s->findings, s->nr_findings * sizeof(*f));
	*status = s->check_status;
	return s->nr_findings;
}

long kvmig_session_get_check(struct kvmig_session *self,
			     struct kvmig_check __user *argp)
{
	bool all = capable(CAP_SYS_ADMIN);
	struct kvmig_finding *f;
	struct kvmig_session *s;
	struct kvmig_check c;
	int ret = 0;
	u32 n = 0;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.flags || memchr_inv(c.reserved, 0, sizeof(c.reserved)))
		return -EINVAL;
	f = kcalloc(KVMIG_MAX_FINDINGS, sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;

	if (!c.id || c.id == self->id) {
		n = read_findings(self, f, &c.status);
	} else {
		/* As KVMIG_LIST_SESSIONS would show it; it stays listed. */
		ret = -ENOENT;
		mutex_lock(&kvmig_sessions_lock);
		list_for_each_entry(s, &kvmig_sessions, node) {
			if (s->id != c.id ||
			    (!all && s->pid != task_tgid(current)))
				continue;
			n = read_findings(s, f, &c.status);
			ret = 0;
			break;
		}
		mutex_unlock(&kvmig_sessions_lock);
	}

	c.nr_filled = min(c.nr_findings, n);
	if (!ret && c.nr_filled &&
	    copy_to_user(u64_to_user_ptr(c.findings_ptr), f,
			 c.nr_filled * sizeof(*f)))
		ret = -EFAULT;
	c.nr_findings = n;
	if (!ret && copy_to_user(argp, &c, sizeof(c)))
		ret = -EFAULT;
	kfree(f);
	return ret;
}

/* May a new transfer call start now, in @state? */
static int xfer_check(struct kvmig_session *s, u32 state)
{
	lockdep_assert_held(&s->lock);

	if (s->state != state)
		return -EBUSY;
	return 0;
}

long kvmig_session_round(struct kvmig_session *s,
			 struct kvmig_round __user *argp)
{
	struct kvmig_round r;
	void *none = NULL;
	int ret;

	if (copy_from_user(&r, argp, sizeof(r)))
		return -EFAULT;
	if (r.flags || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;

	mutex_lock(&s->lock);
	if (!op_joinable(s, KVMIG_OP_ROUND)) {
		ret = xfer_check(s, KVMIG_STATE_PRECOPY);
		if (ret) {
			session_unlock(s);
			return ret;
		}
	}
	ret = op_call(s, KVMIG_OP_ROUND, &none, 0, 0, &r, sizeof(r));
	if (ret)
		return ret;
	return copy_to_user(argp, &r, sizeof(r)) ? -EFAULT : 0;
}

long kvmig_session_final(struct kvmig_session *s,
			 struct kvmig_final __user *argp)
{
	void *state = NULL;
	struct kvmig_final f;
	int ret;

	if (copy_from_user(&f, argp, sizeof(f)))
		return -EFAULT;
	if (f.flags || memchr_inv(f.reserved, 0, sizeof(f.reserved)))
		return -EINVAL;
	if (f.state_len > KVMIG_WIRE_MAX_STATE || (f.state_len && !f.state_ptr))
		return -EINVAL;

	mutex_lock(&s->lock);
	if (!op_joinable(s, KVMIG_OP_FINAL)) {
		ret = xfer_check(s, KVMIG_STATE_PRECOPY);
		/* Pages never sent would be missing: round 0 goes first. */
		if (!ret && (s->op.running || !s->xfer->st.xfer_round))
			ret = -EBUSY;
		if (!ret && f.state_len) {
			/* Copied here, in the caller's mm: the worker runs in
			 * the VM's. Nothing is sent if this fails.
			 */
			state = vmemdup_user(u64_to_user_ptr(f.state_ptr),
					     f.state_len);
			if (IS_ERR(state)) {
				ret = PTR_ERR(state);
				state = NULL;
			}
		}
		if (ret) {
			session_unlock(s);
			return ret;
		}
	}
	ret = op_call(s, KVMIG_OP_FINAL, &state, f.state_len, 0, &f, sizeof(f));
	kvfree(state);	/* only if the call was joined */
	if (ret && ret != -EINPROGRESS)
		return ret;
	if (copy_to_user(argp, &f, sizeof(f)))
		return -EFAULT;
	return ret;
}

long kvmig_session_recv(struct kvmig_session *s,
			struct kvmig_recv __user *argp)
{
	struct kvmig_xfer *x;
	struct kvmig_recv r, in;
	void *none = NULL;
	int ret;

	if (copy_from_user(&in, argp, sizeof(in)))
		return -EFAULT;
	if (in.flags || in.pad || memchr_inv(in.reserved, 0, sizeof(in.reserved)))
		return -EINVAL;
	if (in.state_cap && !in.state_ptr)
		return -EINVAL;

	mutex_lock(&s->lock);
	if (!op_joinable(s, KVMIG_OP_RECV)) {
		ret = xfer_check(s, KVMIG_STATE_RECEIVING);
		if (ret) {
			session_unlock(s);
			return ret;
		}
	}
	ret = op_call(s, KVMIG_OP_RECV, &none, 0, in.state_cap, &r, sizeof(r));
	if (ret && ret != -EINPROGRESS)
		return ret;

	/*
	 * Everything arrived (DONE, or IN_DOUBT waiting to be settled): the
	 * VMM gets the state either way. The worker is done with it, and it
	 * lives as long as this file, which this call holds.
	 */
	x = s->xfer;
	if (r.state_len > in.state_cap)
		return -ENOSPC;
	if (r.state_len && copy_to_user(u64_to_user_ptr(in.state_ptr), x->state,
					r.state_len))
		return -EFAULT;
	r.flags = 0;
	r.pad = 0;
	r.state_ptr = in.state_ptr;
	r.state_cap = in.state_cap;
	if (copy_to_user(argp, &r, sizeof(r)))
		return -EFAULT;
	return ret;
}

/*
 * Without waiting: a call in progress is made to give up (its sockets are
 * shut down) and ends the session itself; with no call running, the
 * session is FAILED here and now.
 */
long kvmig_session_cancel(struct kvmig_session *s)
{
	int ret = 0;

	mutex_lock(&s->lock);
	if (!s->xfer || (s->state != KVMIG_STATE_PRECOPY &&
			 s->state != KVMIG_STATE_RECEIVING)) {
		ret = -EBUSY;
	} else {
		kvmig_xfer_cancel(s->xfer);
		if (!s->op.running) {
			s->xfer->fail_reason = KVMIG_FAIL_CANCELLED;
			xfer_failed(s, -ECANCELED);
		}
	}
	session_unlock(s);
	kvmig_session_notify(s);
	return ret;
}

long kvmig_session_resolve(struct kvmig_session *s,
			   struct kvmig_resolve __user *argp)
{
	struct kvmig_resolve a;
	int ret = 0;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.flags || memchr_inv(a.reserved, 0, sizeof(a.reserved)))
		return -EINVAL;
	if (a.decision != KVMIG_RESOLVE_COMMIT &&
	    a.decision != KVMIG_RESOLVE_ABORT)
		return -EINVAL;

	mutex_lock(&s->lock);
	if (s->state != KVMIG_STATE_IN_DOUBT) {
		ret = -EBUSY;
	} else if (a.decision == KVMIG_RESOLVE_COMMIT) {
		s->fail_reason = KVMIG_FAIL_NONE;
		xfer_ended(s, 0);
	} else {
		s->xfer->fail_reason = KVMIG_FAIL_ABORTED;
		s->xfer->outcome = KVMIG_STATE_FAILED;
		xfer_failed(s, -ECANCELED);
	}
	if (!ret)
		pr_info("session %llu: was in doubt, resolved: %s\n", s->id,
			a.decision == KVMIG_RESOLVE_COMMIT ? "commit" : "abort");
	session_unlock(s);
	kvmig_session_notify(s);
	return ret;
}

__poll_t kvmig_session_poll(struct kvmig_session *s, struct file *file,
			    poll_table *wait)
{
	u32 state;

	poll_wait(file, &s->wq, wait);
	state = READ_ONCE(s->state);
	if (state == KVMIG_STATE_FAILED)
		return EPOLLERR;
	if (state == KVMIG_STATE_IN_DOUBT)
		return EPOLLPRI;
	if (state == KVMIG_STATE_DONE || state == KVMIG_STATE_CHECKED ||
	    (state == KVMIG_STATE_PRECOPY && READ_ONCE(s->converged)))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

long kvmig_session_dirty_mark(struct kvmig_session *s,
			      struct kvmig_dirty_mark __user *argp)
{
	struct kvmig_dirty_mark m;
	struct kvmig_dirty_run *runs;
	int ret;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (m.flags || memchr_inv(m.reserved, 0, sizeof(m.reserved)))
		return -EINVAL;
	if (!m.nr_runs || m.nr_runs > KVMIG_READ_MAX_RUNS)
		return -EINVAL;
	runs = vmemdup_array_user(u64_to_user_ptr(m.runs_ptr), m.nr_runs,
				  sizeof(*runs));
	if (IS_ERR(runs))
		return PTR_ERR(runs);

	/* Only the tracker's lock, as for HARVEST: never the network's. */
	ret = dirty_live(s);
	if (!ret)
		ret = kvmig_dirty_mark(s->dirty, runs, m.nr_runs);
	if (!ret)
		kvmig_session_publish(s, KVMIG_PUB_DIRTY);
	kvfree(runs);
	return ret;
}

long kvmig_session_list(struct kvmig_session *self,
			struct kvmig_list __user *argp)
{
	struct kvmig_session_info *info = NULL, *i;
	bool all = capable(CAP_SYS_ADMIN);
	struct kvmig_snap_host h;
	struct kvmig_session *s;
	u32 n = 0, filled = 0;
	struct kvmig_list l;
	int ret = 0;

	if (copy_from_user(&l, argp, sizeof(l)))
		return -EFAULT;
	if (l.flags || l.pad || memchr_inv(l.reserved, 0, sizeof(l.reserved)))
		return -EINVAL;
	if (l.nr_sessions > KVMIG_LIST_MAX ||
	    (l.nr_sessions && !l.sessions_ptr))
		return -EINVAL;
	if (l.nr_sessions) {
		info = kvcalloc(l.nr_sessions, sizeof(*info),
				GFP_KERNEL_ACCOUNT);
		if (!info)
			return -ENOMEM;
	}

	mutex_lock(&kvmig_sessions_lock);
	list_for_each_entry(s, &kvmig_sessions, node) {
		if (!all && s->pid != task_tgid(current))
			continue;
		if (filled < l.nr_sessions) {
			i = &info[filled++];
			i->pid = pid_vnr(s->pid);
			session_snapshot(s, &i->stats, &h);
			i->flags = h.flags |
				   (s == self ? KVMIG_SESSION_SELF : 0);
			i->priority = h.priority;
			i->queue_pos = h.queue_pos;
			i->wait_ns = h.wait_ns;
		}
		n++;
	}
	mutex_unlock(&kvmig_sessions_lock);

	if (filled && copy_to_user(u64_to_user_ptr(l.sessions_ptr), info,
				   (size_t)filled * sizeof(*info)))
		ret = -EFAULT;
	l.nr_sessions = n;
	l.nr_filled = filled;
	if (!ret && copy_to_user(argp, &l, sizeof(l)))
		ret = -EFAULT;
	kvfree(info);
	return ret;
}
