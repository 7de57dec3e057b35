// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: one per open file of /dev/kvmig, and attaching a KVM VM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
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
	s->state = KVMIG_STATE_IDLE;
	s->id = atomic64_inc_return(&kvmig_last_id);
	s->pid = get_pid(task_tgid(current));
	seqcount_init(&s->snap_seq);
	s->snap.id = s->id;

	mutex_lock(&kvmig_sessions_lock);
	list_add_tail(&s->node, &kvmig_sessions);
	mutex_unlock(&kvmig_sessions_lock);
	return s;
}

/*
 * Called from the file's release: no ioctl can reach @s any more, only a
 * lister until @s leaves the list, and listers read nothing but @s->snap.
 */
void kvmig_session_destroy(struct kvmig_session *s)
{
	if (s->xfer)
		kvmig_xfer_destroy(s->xfer);
	if (s->dirty)
		kvmig_dirty_destroy(s->dirty);
	if (s->state >= KVMIG_STATE_ATTACHED) {
		kvm_put_kvm(s->kvm);
		fput(s->vm_file);
	}

	mutex_lock(&kvmig_sessions_lock);
	list_del(&s->node);
	mutex_unlock(&kvmig_sessions_lock);
	put_pid(s->pid);
	mutex_destroy(&s->lock);
	kfree(s);
}

/*
 * Publish what KVMIG_GET_STATS and KVMIG_LIST_SESSIONS report. Writers are
 * serialised by the session lock; readers retry on @snap_seq and never
 * block, so a writer must not be preempted inside.
 */
static void session_publish(struct kvmig_session *s)
{
	struct kvmig_stats *st = &s->snap;
	struct kvmig_dirty *d = s->dirty;
	struct kvmig_xfer *x = s->xfer;

	lockdep_assert_held(&s->lock);

	preempt_disable();
	write_seqcount_begin(&s->snap_seq);
	st->state = s->state;
	st->role = s->role;
	st->dirty_mode = s->dirty_mode;
	st->fail_reason = s->fail_reason;
	if (x) {
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
	}
	if (d) {
		st->nr_slots = d->nr_slots;
		st->guest_pages = d->guest_pages;
		st->rounds = d->rounds;
		st->pages_harvested = d->pages_harvested;
		st->pages_pending = d->pages_pending;
		st->pages_read = d->pages_read;
		st->harvest_ns = d->harvest_ns;
	}
	write_seqcount_end(&s->snap_seq);
	preempt_enable();
}

/* Every ioctl that took the session lock publishes what it changed. */
static void session_unlock(struct kvmig_session *s)
{
	session_publish(s);
	mutex_unlock(&s->lock);
}

/* The transfer engine's progress, after each record: see struct kvmig_xfer. */
static void xfer_progress(void *arg)
{
	session_publish(arg);
}

static void session_snapshot(struct kvmig_session *s, struct kvmig_stats *st)
{
	unsigned int seq;

	do {
		seq = read_seqcount_begin(&s->snap_seq);
		*st = s->snap;
	} while (read_seqcount_retry(&s->snap_seq, seq));
}

/* The checks that need no VM: one rule per line. */
VISIBLE_IF_KUNIT int kvmig_attach_check(const struct kvmig_attach *a)
{
	if (a->flags)
		return -EINVAL;
	if (memchr_inv(a->reserved, 0, sizeof(a->reserved)))
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

static int __attach(struct kvmig_session *s, struct kvmig_attach *a)
{
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
	ret = -EPERM;
	if (kvm->mm != current->mm)
		goto err_fput;
	/* Both are set under kvm->lock before vCPUs exist; re-checked later. */
	ret = kvmig_dirty_mode_resolve(a->role, a->dirty_mode,
				       READ_ONCE(kvm->dirty_ring_size),
				       READ_ONCE(kvm->manual_dirty_log_protect) &
				       KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
				       &mode);
	if (ret)
		goto err_fput;

	kvm_get_kvm(kvm);
	s->vm_file = file;
	s->kvm = kvm;
	s->role = a->role;
	s->dirty_mode = mode;
	s->state = KVMIG_STATE_ATTACHED;
	a->dirty_mode = mode;
	return 0;

err_fput:
	fput(file);
	return ret;
}

long kvmig_session_attach(struct kvmig_session *s,
			  struct kvmig_attach __user *argp)
{
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

	mutex_lock(&s->lock);
	ret = __attach(s, &a);
	session_unlock(s);
	if (ret)
		return ret;
	trace_kvmig_attach(s->id, a.role, a.dirty_mode, task_tgid_nr(current));

	if (put_user(a.dirty_mode, &argp->dirty_mode))
		return -EFAULT;
	return 0;
}

/* May the dirty-tracking calls run now? */
static int tracking_check(struct kvmig_session *s)
{
	lockdep_assert_held(&s->lock);

	if (s->state == KVMIG_STATE_FAILED)
		return -ESTALE;
	if (s->state != KVMIG_STATE_TRACKING)
		return -EBUSY;
	return 0;
}

static void session_fail(struct kvmig_session *s)
{
	static const char * const why[] = {
		[KVMIG_FAIL_MEMSLOTS] = "the memslot layout changed",
		[KVMIG_FAIL_RING_STOLEN] = "another harvester reaped the dirty rings",
	};

	lockdep_assert_held(&s->lock);

	s->state = KVMIG_STATE_FAILED;
	s->fail_reason = s->dirty->fail_reason;
	trace_kvmig_failed(s->id, s->role, s->fail_reason, -ESTALE);
	pr_warn_ratelimited("pid %d: dirty tracking failed: %s\n",
			    task_pid_nr(current),
			    s->fail_reason < ARRAY_SIZE(why) &&
			    why[s->fail_reason] ? why[s->fail_reason] : "?");
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

	d = kvmig_dirty_create(&s->lock, s->kvm, s->vm_file, s->dirty_mode);
	if (IS_ERR(d))
		return PTR_ERR(d);
	s->dirty = d;
	s->state = KVMIG_STATE_TRACKING;
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

static int __harvest(struct kvmig_session *s, struct kvmig_harvest *h)
{
	int ret;

	lockdep_assert_held(&s->lock);

	ret = tracking_check(s);
	if (ret)
		return ret;
	if (current->mm != s->kvm->mm)
		return -EPERM;

	ret = kvmig_dirty_harvest(s->dirty, &h->found);
	if (ret == -ESTALE)
		session_fail(s);
	h->pending = s->dirty->pages_pending;
	h->round = s->dirty->rounds;
	return ret;
}

long kvmig_session_harvest(struct kvmig_session *s,
			   struct kvmig_harvest __user *argp)
{
	struct kvmig_harvest h;
	int ret;

	if (copy_from_user(&h, argp, sizeof(h)))
		return -EFAULT;
	if (h.flags || h.pad || memchr_inv(h.reserved, 0, sizeof(h.reserved)))
		return -EINVAL;

	mutex_lock(&s->lock);
	ret = __harvest(s, &h);
	session_unlock(s);
	if (ret)
		return ret;

	/* What was harvested stays pending, even if this copy fails. */
	if (copy_to_user(argp, &h, sizeof(h)))
		return -EFAULT;
	return 0;
}

#define KVMIG_READ_MAX_RUNS	65536

static int __dirty_read(struct kvmig_session *s, struct kvmig_dirty_read *r,
			struct kvmig_dirty_read __user *argp)
{
	struct kvmig_dirty_run *runs;
	u32 n;
	int ret;

	lockdep_assert_held(&s->lock);

	ret = tracking_check(s);
	if (ret)
		return ret;

	/* There are never more runs than pending pages. */
	n = min_t(u64, r->nr_runs, s->dirty->pages_pending);
	if (!n) {
		r->nr_runs = 0;
		r->pages = 0;
		r->pending = 0;
		return copy_to_user(argp, r, sizeof(*r)) ? -EFAULT : 0;
	}
	runs = kvmalloc_array(n, sizeof(*runs), GFP_KERNEL_ACCOUNT);
	if (!runs)
		return -ENOMEM;
	n = kvmig_dirty_collect_runs(s->dirty, runs, n, &r->pages);
	r->nr_runs = n;
	r->pending = s->dirty->pages_pending - r->pages;

	/* Copy everything out first: on -EFAULT nothing is consumed. */
	ret = -EFAULT;
	if (copy_to_user(u64_to_user_ptr(r->runs_ptr), runs,
			 (size_t)n * sizeof(*runs)) ||
	    copy_to_user(argp, r, sizeof(*r)))
		goto out;
	kvmig_dirty_consume(s->dirty, runs, n);
	ret = 0;
out:
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
	if (st.flags || st.id || memchr_inv(st.reserved, 0, sizeof(st.reserved)))
		return -EINVAL;
	session_snapshot(s, &st);
	if (copy_to_user(argp, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

/* An operation of the transfer failed: the session is FAILED. */
static void xfer_failed(struct kvmig_session *s, int err)
{
	lockdep_assert_held(&s->lock);

	s->fail_reason = s->xfer->fail_reason ?: s->dirty->fail_reason ?:
			 KVMIG_FAIL_IO;
	WRITE_ONCE(s->state, KVMIG_STATE_FAILED);
	trace_kvmig_failed(s->id, s->role, s->fail_reason, err);
	pr_warn_ratelimited("pid %d: migration failed (%d, reason %u)\n",
			    task_pid_nr(current), err, s->fail_reason);
	wake_up_interruptible_all(&s->wq);
}

static int __xfer_setup(struct kvmig_session *s, struct kvmig_xfer_setup *a)
{
	bool source = s->role == KVMIG_ROLE_SOURCE;
	struct kvmig_dirty *d;
	struct kvmig_xfer *x;
	int ret;

	lockdep_assert_held(&s->lock);

	if (s->state != (source ? KVMIG_STATE_TRACKING : KVMIG_STATE_ATTACHED))
		return -EBUSY;
	if (current->mm != s->kvm->mm)
		return -EPERM;

	if (!source) {
		d = kvmig_dirty_create(&s->lock, s->kvm, s->vm_file,
				       KVMIG_DIRTY_AUTO);
		if (IS_ERR(d))
			return PTR_ERR(d);
		s->dirty = d;
	}
	x = kvmig_xfer_create(&s->lock, s->dirty, s->role, a);
	if (IS_ERR(x)) {
		if (!source) {
			kvmig_dirty_destroy(s->dirty);
			s->dirty = NULL;
		}
		return PTR_ERR(x);
	}
	x->id = s->id;
	x->progress = xfer_progress;
	x->progress_arg = s;
	/* Pairs with kvmig_session_cancel(): it sees x initialised. */
	smp_store_release(&s->xfer, x);
	WRITE_ONCE(s->state, source ? KVMIG_STATE_PRECOPY :
				      KVMIG_STATE_RECEIVING);

	ret = kvmig_xfer_handshake(x);
	if (ret)
		xfer_failed(s, ret);
	return ret;
}

long kvmig_session_xfer_setup(struct kvmig_session *s,
			      struct kvmig_xfer_setup __user *argp)
{
	struct kvmig_xfer_setup a;
	int ret;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.flags || memchr_inv(a.reserved, 0, sizeof(a.reserved)))
		return -EINVAL;
	if (a.sock_fd > INT_MAX)
		return -EBADF;

	mutex_lock(&s->lock);
	ret = __xfer_setup(s, &a);
	session_unlock(s);
	return ret;
}

/* May a transfer call run now, in @state? */
static int xfer_check(struct kvmig_session *s, u32 state)
{
	lockdep_assert_held(&s->lock);

	if (s->state != state)
		return -EBUSY;
	if (current->mm != s->kvm->mm)
		return -EPERM;
	return 0;
}

long kvmig_session_round(struct kvmig_session *s,
			 struct kvmig_round __user *argp)
{
	struct kvmig_round r;
	int ret;

	if (copy_from_user(&r, argp, sizeof(r)))
		return -EFAULT;
	if (r.flags || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;
	memset(&r, 0, sizeof(r));

	mutex_lock(&s->lock);
	ret = xfer_check(s, KVMIG_STATE_PRECOPY);
	if (!ret) {
		ret = kvmig_xfer_round(s->xfer, &r);
		if (!ret)
			trace_kvmig_round_end(s->id, r.round, r.status,
					      r.pages_sent, r.zero_pages,
					      s->xfer->st.bytes_sent,
					      r.remaining, s->xfer->st.dirty_rate,
					      s->xfer->st.throughput,
					      r.expected_downtime_ns);
		if (ret) {
			xfer_failed(s, ret);
		} else if (r.status != KVMIG_ROUND_SENT) {
			s->converged = true;
			wake_up_interruptible_all(&s->wq);
		}
	}
	session_unlock(s);
	if (ret)
		return ret;
	return copy_to_user(argp, &r, sizeof(r)) ? -EFAULT : 0;
}

long kvmig_session_final(struct kvmig_session *s,
			 struct kvmig_final __user *argp)
{
	struct kvmig_final f;
	int ret;

	if (copy_from_user(&f, argp, sizeof(f)))
		return -EFAULT;
	if (f.flags || memchr_inv(f.reserved, 0, sizeof(f.reserved)))
		return -EINVAL;
	if (f.state_len > KVMIG_WIRE_MAX_STATE || (f.state_len && !f.state_ptr))
		return -EINVAL;

	mutex_lock(&s->lock);
	ret = xfer_check(s, KVMIG_STATE_PRECOPY);
	if (!ret) {
		ret = kvmig_xfer_final(s->xfer, &f,
				       u64_to_user_ptr(f.state_ptr));
		trace_kvmig_switchover_end(s->id, ret, f.pages_sent,
					   f.downtime_ns);
		if (!ret) {
			trace_kvmig_done(s->id, s->role, s->xfer->st.pages_sent,
					 s->xfer->st.bytes_sent, f.downtime_ns);
			WRITE_ONCE(s->state, KVMIG_STATE_DONE);
			wake_up_interruptible_all(&s->wq);
		} else if (ret != -EFAULT || s->xfer->fail_reason) {
			xfer_failed(s, ret);
		}
	}
	session_unlock(s);
	if (ret)
		return ret;
	return copy_to_user(argp, &f, sizeof(f)) ? -EFAULT : 0;
}

long kvmig_session_recv(struct kvmig_session *s,
			struct kvmig_recv __user *argp)
{
	struct kvmig_recv r;
	int ret;

	if (copy_from_user(&r, argp, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.pad || memchr_inv(r.reserved, 0, sizeof(r.reserved)))
		return -EINVAL;
	if (r.state_cap && !r.state_ptr)
		return -EINVAL;

	mutex_lock(&s->lock);
	ret = xfer_check(s, KVMIG_STATE_RECEIVING);
	if (!ret) {
		ret = kvmig_xfer_recv(s->xfer, &r);
		if (!ret) {
			trace_kvmig_done(s->id, s->role, r.pages_received,
					 r.pages_received * PAGE_SIZE + r.state_len,
					 0);
			WRITE_ONCE(s->state, KVMIG_STATE_DONE);
			wake_up_interruptible_all(&s->wq);
		} else {
			xfer_failed(s, ret);
		}
	}
	session_unlock(s);
	if (ret)
		return ret;
	return copy_to_user(argp, &r, sizeof(r)) ? -EFAULT : 0;
}

/* Without the session lock: the call to cancel may be holding it. */
long kvmig_session_cancel(struct kvmig_session *s)
{
	/* Pairs with the release in __xfer_setup(). */
	struct kvmig_xfer *x = smp_load_acquire(&s->xfer);

	if (!x)
		return -EBUSY;
	kvmig_xfer_cancel(x);
	return 0;
}

__poll_t kvmig_session_poll(struct kvmig_session *s, struct file *file,
			    poll_table *wait)
{
	u32 state;

	poll_wait(file, &s->wq, wait);
	state = READ_ONCE(s->state);
	if (state == KVMIG_STATE_FAILED)
		return EPOLLERR;
	if (state == KVMIG_STATE_DONE ||
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

	mutex_lock(&s->lock);
	if (s->state == KVMIG_STATE_TRACKING || s->state == KVMIG_STATE_PRECOPY)
		ret = kvmig_dirty_mark(s->dirty, runs, m.nr_runs);
	else
		ret = s->state == KVMIG_STATE_FAILED ? -ESTALE : -EBUSY;
	session_unlock(s);
	kvfree(runs);
	return ret;
}

long kvmig_session_list(struct kvmig_session *self,
			struct kvmig_list __user *argp)
{
	struct kvmig_session_info *info = NULL, *i;
	bool all = capable(CAP_SYS_ADMIN);
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
			i->flags = s == self ? KVMIG_SESSION_SELF : 0;
			session_snapshot(s, &i->stats);
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
