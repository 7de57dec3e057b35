// SPDX-License-Identifier: GPL-2.0
/*
 * The throttle: slow down a guest that dirties memory faster than the
 * link drains it (KVMIG_SET_THROTTLE).
 *
 * In ring mode each vCPU is paced on its own. Every page collected from
 * a vCPU's ring, by whichever harvester, is charged to that vCPU; when
 * its ring fills, the vCPU thread's KVMIG_DIRTY_HARVEST sleeps until the
 * charge is paid, and only then does the vCPU go back to the guest and
 * write again. The sleep is microsecond-exact (an hrtimer), holds no
 * lock and ends on a signal. In bitmap mode the figures are computed the
 * same way and handed to the VMM as a share of vCPU time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hrtimer.h>
#include <linux/wait.h>
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <kunit/visibility.h>

#include "dirty.h"
#include "../trace.h"

/* A vCPU may dirty this much time's worth of pages ahead of its rate. */
#define THROTTLE_BURST_NS	(10 * NSEC_PER_MSEC)
/* AUTO: the run time one ring-full charges for, at most. */
#define THROTTLE_RUN_MAX_NS	(100 * NSEC_PER_MSEC)
/*
 * One call never sleeps longer. A vCPU is paced once per full ring: the
 * cap bounds how much of its time the throttle can take (a ring filled
 * in T s: at most cap / (cap + T)) and how long the guest sees one vCPU
 * stalled. A signal, a new setting or the session's end wakes it early.
 */
#define THROTTLE_SLEEP_MAX_NS	(5 * NSEC_PER_SEC)
/* Debt beyond this is forgotten, so that no sum can overflow. */
#define THROTTLE_DEBT_MAX_NS	(3600 * NSEC_PER_SEC)

int kvmig_throttle_check(const struct kvmig_throttle *t)
{
	if (t->flags || t->pad || memchr_inv(t->reserved, 0, sizeof(t->reserved)))
		return -EINVAL;
	switch (t->policy) {
	case KVMIG_THROTTLE_OFF:
		if (t->dirty_rate || t->initial_pct || t->step_pct ||
		    t->max_pct)
			return -EINVAL;
		return 0;
	case KVMIG_THROTTLE_AUTO:
		if (t->dirty_rate)
			return -EINVAL;
		if (!t->initial_pct || t->initial_pct > 99 ||
		    !t->step_pct || t->step_pct > 99 ||
		    !t->max_pct || t->max_pct > 99)
			return -EINVAL;
		return 0;
	case KVMIG_THROTTLE_RATE:
		if (!t->dirty_rate || t->initial_pct || t->step_pct)
			return -EINVAL;
		if (!t->max_pct || t->max_pct > 99)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_throttle_check);

/*
 * Nanoseconds that @pages cost a vCPU that may dirty @rate pages per
 * second between @nr_vcpus: pages * nr_vcpus / rate seconds, saturated
 * at THROTTLE_DEBT_MAX_NS.
 */
u64 kvmig_throttle_cost(u64 pages, u32 nr_vcpus, u64 rate)
{
	u64 n;

	if (!rate)
		return 0;
	if (check_mul_overflow(pages, (u64)max(nr_vcpus, 1U), &n))
		return THROTTLE_DEBT_MAX_NS;
	/* n / rate seconds, without n * NSEC_PER_SEC overflowing */
	if (div64_u64(n, rate) >= THROTTLE_DEBT_MAX_NS / NSEC_PER_SEC)
		return THROTTLE_DEBT_MAX_NS;
	return mul_u64_u64_div_u64(n, NSEC_PER_SEC, rate);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_throttle_cost);

/* AUTO: the sleep that takes @pct percent of a vCPU that ran @run_ns. */
u64 kvmig_throttle_auto_ns(u64 run_ns, u32 pct)
{
	if (!pct)
		return 0;
	pct = min(pct, 99U);
	run_ns = min_t(u64, run_ns, THROTTLE_RUN_MAX_NS);
	return min_t(u64, div_u64(run_ns * pct, 100 - pct),
		     THROTTLE_SLEEP_MAX_NS);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_throttle_auto_ns);

/*
 * RATE in bitmap mode: the share to ask for, so that a guest that
 * dirtied @measured pages per second while @pct was applied dirties
 * @target. Its unthrottled rate is measured / (1 - pct).
 */
u32 kvmig_throttle_rate_pct(u64 measured, u32 pct, u64 target, u32 max_pct)
{
	u64 full, keep;

	pct = min(pct, 99U);
	if (!target || !measured)
		return 0;
	/* measured * 100 fits: a rate above 2^57 pages/s is not a guest's */
	full = div_u64(min_t(u64, measured, U64_MAX / 100) * 100, 100 - pct);
	if (full <= target)
		return 0;
	keep = mul_u64_u64_div_u64(target, 100, full);	/* target < full */
	return min_t(u32, 100 - keep, max_pct);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_throttle_rate_pct);

int kvmig_throttle_start(struct kvmig_dirty *d)
{
	lockdep_assert_held(&d->lock);

	if (!d->nr_fetch)
		return 0;
	d->thr_vcpu = kvcalloc(d->nr_fetch, sizeof(*d->thr_vcpu),
			       GFP_KERNEL_ACCOUNT);
	return d->thr_vcpu ? 0 : -ENOMEM;
}

void kvmig_throttle_stop(struct kvmig_dirty *d)
{
	kvfree(d->thr_vcpu);
	d->thr_vcpu = NULL;
}

/* Wake every vCPU thread asleep in the throttle; any context that sleeps. */
void kvmig_throttle_wake(struct kvmig_dirty *d)
{
	WRITE_ONCE(d->thr_gen, READ_ONCE(d->thr_gen) + 1);
	wake_up_all(&d->thr_wq);
}

/*
 * Set the policy; the session checked it with kvmig_throttle_check().
 * Sleepers wake and pay under the new setting from their next full ring.
 */
void kvmig_throttle_set(struct kvmig_dirty *d, const struct kvmig_throttle *t)
{
	u32 i;

	mutex_lock(&d->lock);
	d->thr = *t;
	d->thr_pct = 0;
	d->thr_high = 0;
	for (i = 0; d->thr_vcpu && i < d->nr_fetch; i++)
		d->thr_vcpu[i] = (struct kvmig_throttle_vcpu){};
	trace_kvmig_throttle_set(d->id, t->policy, 0, t->dirty_rate);
	mutex_unlock(&d->lock);
	kvmig_throttle_wake(d);
}

/* Ring mode: @pages were collected from vCPU @idx's ring at @now. */
void kvmig_throttle_charge(struct kvmig_dirty *d, u32 idx, u64 pages, u64 now)
{
	struct kvmig_throttle_vcpu *v;

	lockdep_assert_held(&d->lock);

	if (d->thr.policy != KVMIG_THROTTLE_RATE || !d->thr_vcpu)
		return;
	v = &d->thr_vcpu[idx];
	v->paid_ns = max(v->paid_ns, now - min(now, THROTTLE_BURST_NS));
	v->paid_ns += kvmig_throttle_cost(pages,
					  atomic_read(&d->kvm->online_vcpus),
					  d->thr.dirty_rate);
	v->paid_ns = min(v->paid_ns, now + THROTTLE_DEBT_MAX_NS);
}

/* The index of the vCPU that @current runs, or -1. */
static int current_vcpu(struct kvmig_dirty *d)
{
	struct pid *pid = task_pid(current);
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, d->kvm) {
		/* Compared, never dereferenced: no RCU read section needed. */
		if (rcu_access_pointer(vcpu->pid) == pid)
			return i < d->nr_fetch ? i : -1;
	}
	return -1;
}

/**
 * kvmig_throttle_vcpu - make the calling vCPU thread pay for its pages
 * @d: the tracker
 *
 * Called after a harvest, with no lock held. Ring mode only; a thread
 * that is not a vCPU's returns at once. Sleeps at most
 * THROTTLE_SLEEP_MAX_NS, and less if a signal comes or
 * kvmig_throttle_wake() is called.
 */
void kvmig_throttle_vcpu(struct kvmig_dirty *d)
{
	struct kvmig_throttle_vcpu *v;
	u64 now, delay = 0, slept;
	u32 gen;
	int idx;

	if (!d->thr_vcpu)
		return;

	mutex_lock(&d->lock);
	idx = d->thr.policy ? current_vcpu(d) : -1;
	if (idx < 0)
		goto out;
	v = &d->thr_vcpu[idx];
	now = ktime_get_ns();
	if (d->thr.policy == KVMIG_THROTTLE_RATE && v->paid_ns > now)
		delay = v->paid_ns - now;
	else if (d->thr.policy == KVMIG_THROTTLE_AUTO)
		delay = kvmig_throttle_auto_ns(now - min(now, v->woke_ns),
					       d->thr_pct);
	delay = min_t(u64, delay, THROTTLE_SLEEP_MAX_NS);
	if (!delay) {
		v->woke_ns = now;
		goto out;
	}
	gen = READ_ONCE(d->thr_gen);
	mutex_unlock(&d->lock);

	/* The timer's slack is the task's: 50 us unless set otherwise. */
	wait_event_interruptible_hrtimeout(d->thr_wq,
					   READ_ONCE(d->thr_gen) != gen,
					   ns_to_ktime(delay));
	slept = ktime_get_ns() - now;

	mutex_lock(&d->lock);
	/* A new setting may have reset the account meanwhile: no harm. */
	v->woke_ns = now + slept;
	d->thr_ns += slept;
	trace_kvmig_throttle(d->id, idx, delay, slept);
out:
	mutex_unlock(&d->lock);
}

/**
 * kvmig_throttle_update - the throttle's step, at each of the worker's
 *	harvests
 * @d: the tracker
 * @dirtied: pages newly dirtied since the worker's last harvest
 * @rate: the same, per second
 * @sent: bytes sent meanwhile
 * @interval_ns: time since that harvest
 */
void kvmig_throttle_update(struct kvmig_dirty *d, u64 dirtied, u64 rate,
			   u64 sent, u64 interval_ns)
{
	u32 vcpus = max(atomic_read(&d->kvm->online_vcpus), 1);
	u32 pct;

	mutex_lock(&d->lock);
	pct = d->thr_pct;
	switch (d->thr.policy) {
	case KVMIG_THROTTLE_AUTO:
		/* QEMU's test: dirtied more than half of what went out. */
		if (dirtied > div_u64(sent, 2 * PAGE_SIZE)) {
			if (++d->thr_high >= 2) {
				d->thr_high = 0;
				pct = pct ? pct + d->thr.step_pct :
					    d->thr.initial_pct;
				pct = min(pct, d->thr.max_pct);
			}
		} else {
			d->thr_high = 0;
		}
		break;
	case KVMIG_THROTTLE_RATE:
		if (!interval_ns)
			break;
		if (d->thr_vcpu) {
			/* What the vCPUs slept, as a share of their time */
			pct = min_t(u64, 99,
				    div64_u64((d->thr_ns - d->thr_ns_seen) * 100,
					      interval_ns * vcpus));
			d->thr_ns_seen = d->thr_ns;
		} else {
			pct = kvmig_throttle_rate_pct(rate, pct,
						      d->thr.dirty_rate,
						      d->thr.max_pct);
		}
		break;
	}
	if (pct != d->thr_pct)
		trace_kvmig_throttle_set(d->id, d->thr.policy, pct,
					 d->thr.dirty_rate);
	d->thr_pct = pct;
	mutex_unlock(&d->lock);
}
