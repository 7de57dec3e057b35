// SPDX-License-Identifier: GPL-2.0
/*
 * The host's limits on outgoing migrations: how many run at once, in the
 * order they asked, and how they share the host's bandwidth by priority.
 *
 * A source takes a ticket when its round 0 starts (kvmig_host_join()) and
 * gives it back when it leaves PRECOPY, or is destroyed
 * (kvmig_host_leave()). Tickets beyond max_outgoing wait in a FIFO queue;
 * whoever frees a place, or raises max_outgoing, admits the queue's head.
 *
 *   NONE --join--> QUEUED --admit--> RUNNING --leave--> DONE
 *                    \________________leave____________/
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/export.h>
#include <linux/list.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <kunit/visibility.h>

#include "xfer.h"

/*
 * kvmig_host_lock protects the queue, the running counts and every
 * ticket's @state and @node. It is a spinlock taken for a few
 * instructions, never while sleeping; readers of the counts outside it
 * (the pacing, kvmig_host_share()) take a snapshot with READ_ONCE and
 * only derive a rate from it.
 */
static DEFINE_SPINLOCK(kvmig_host_lock);
static LIST_HEAD(kvmig_host_queue);		/* QUEUED tickets, oldest first */
static u32 kvmig_host_running[KVMIG_PRIORITY_HIGH + 1];	/* per priority */
/* Woken when a ticket is admitted or the queue moves. */
static DECLARE_WAIT_QUEUE_HEAD(kvmig_host_wq);
static atomic_t kvmig_host_gen = ATOMIC_INIT(0);

static unsigned int max_outgoing = 4;
static unsigned long max_bandwidth;
static unsigned int high_weight = 3;

static u32 running_total(void)
{
	return kvmig_host_running[KVMIG_PRIORITY_STANDARD] +
	       kvmig_host_running[KVMIG_PRIORITY_HIGH];
}

/* Admit queued tickets, oldest first, while there is room. */
static void admit(void)
{
	struct kvmig_ticket *t, *next;
	u32 limit = READ_ONCE(max_outgoing);
	u64 now = ktime_get_ns();

	lockdep_assert_held(&kvmig_host_lock);

	list_for_each_entry_safe(t, next, &kvmig_host_queue, node) {
		if (limit && running_total() >= limit)
			break;
		list_del_init(&t->node);
		t->wait_ns = now - t->queued_at;
		/* Pairs with kvmig_host_position(): @wait_ns first. */
		smp_store_release(&t->state, KVMIG_TICKET_RUNNING);
		WRITE_ONCE(kvmig_host_running[t->priority],
			   kvmig_host_running[t->priority] + 1);
	}
}

static void moved(void)
{
	atomic_inc(&kvmig_host_gen);
	wake_up_all(&kvmig_host_wq);
}

void kvmig_host_join(struct kvmig_ticket *t)
{
	spin_lock(&kvmig_host_lock);
	if (t->state == KVMIG_TICKET_NONE) {
		t->queued_at = ktime_get_ns();
		t->state = KVMIG_TICKET_QUEUED;
		list_add_tail(&t->node, &kvmig_host_queue);
		admit();
	}
	spin_unlock(&kvmig_host_lock);
	moved();
}

/* Give the place back, queued or running; any number of times. */
void kvmig_host_leave(struct kvmig_ticket *t)
{
	spin_lock(&kvmig_host_lock);
	switch (t->state) {
	case KVMIG_TICKET_QUEUED:
		list_del_init(&t->node);
		t->wait_ns = ktime_get_ns() - t->queued_at;
		break;
	case KVMIG_TICKET_RUNNING:
		WRITE_ONCE(kvmig_host_running[t->priority],
			   kvmig_host_running[t->priority] - 1);
		break;
	}
	/* Pairs with kvmig_host_position(): @wait_ns first. */
	smp_store_release(&t->state, KVMIG_TICKET_DONE);
	admit();
	spin_unlock(&kvmig_host_lock);
	moved();
}

/*
 * Where @t waits: 1 at the head of the queue, 0 if it does not wait. Its
 * wait so far goes to *@wait_ns. The session publishes it after every
 * record: a ticket that does not wait is read without the lock.
 */
u32 kvmig_host_position(const struct kvmig_ticket *t, u64 *wait_ns)
{
	const struct kvmig_ticket *q;
	u32 pos = 0;

	/* Pairs with admit() and kvmig_host_leave(). */
	if (smp_load_acquire(&t->state) != KVMIG_TICKET_QUEUED) {
		*wait_ns = t->wait_ns;
		return 0;
	}
	spin_lock(&kvmig_host_lock);
	*wait_ns = t->wait_ns;
	if (t->state == KVMIG_TICKET_QUEUED) {
		*wait_ns = ktime_get_ns() - t->queued_at;
		list_for_each_entry(q, &kvmig_host_queue, node) {
			pos++;
			if (q == t)
				break;
		}
	}
	spin_unlock(&kvmig_host_lock);
	return pos;
}

/*
 * Wait until @t is admitted, @stop says so, the queue moves or @timeout
 * (jiffies) passes. Returns whether @t runs.
 */
bool kvmig_host_wait(struct kvmig_ticket *t, bool (*stop)(void *), void *arg,
		     long timeout)
{
	int gen = atomic_read(&kvmig_host_gen);

	wait_event_timeout(kvmig_host_wq,
			   READ_ONCE(t->state) != KVMIG_TICKET_QUEUED ||
			   stop(arg) || atomic_read(&kvmig_host_gen) != gen,
			   timeout);
	return READ_ONCE(t->state) == KVMIG_TICKET_RUNNING;
}

/* Wake every waiter, so that a cancelled one sees it at once. */
void kvmig_host_kick(void)
{
	wake_up_all(&kvmig_host_wq);
}

/*
 * A share of @budget bytes per second: @weight out of the running
 * sources' weights, @nr_high high ones at @high_w and @nr_std standard
 * ones at 1. 0 means no budget; never 0 otherwise. The counts are a
 * snapshot and may not include the caller yet: its weight counts at
 * least once.
 */
VISIBLE_IF_KUNIT u64 kvmig_host_share_of(u64 budget, u32 weight, u32 nr_high,
					 u32 nr_std, u32 high_w)
{
	u64 total;

	if (!budget)
		return 0;
	total = (u64)nr_high * high_w + nr_std;
	total = max_t(u64, total, weight);
	return max_t(u64, mul_u64_u64_div_u64(budget, weight, total), 1);
}
EXPORT_SYMBOL_IF_KUNIT(kvmig_host_share_of);

/* @t's share of max_bandwidth now; 0: no budget, or @t does not run. */
u64 kvmig_host_share(const struct kvmig_ticket *t)
{
	u32 hw = READ_ONCE(high_weight);

	if (READ_ONCE(t->state) != KVMIG_TICKET_RUNNING)
		return 0;
	return kvmig_host_share_of(READ_ONCE(max_bandwidth),
				   t->priority == KVMIG_PRIORITY_HIGH ? hw : 1,
				   READ_ONCE(kvmig_host_running[KVMIG_PRIORITY_HIGH]),
				   READ_ONCE(kvmig_host_running[KVMIG_PRIORITY_STANDARD]),
				   hw);
}

/* A new max_outgoing admits whoever now fits. */
static int set_max_outgoing(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_uint(val, kp);

	if (ret)
		return ret;
	spin_lock(&kvmig_host_lock);
	admit();
	spin_unlock(&kvmig_host_lock);
	moved();
	return 0;
}

static const struct kernel_param_ops max_outgoing_ops = {
	.set = set_max_outgoing,
	.get = param_get_uint,
};

static int set_high_weight(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, KVMIG_MAX_WEIGHT);
}

static const struct kernel_param_ops high_weight_ops = {
	.set = set_high_weight,
	.get = param_get_uint,
};

module_param_cb(max_outgoing, &max_outgoing_ops, &max_outgoing, 0644);
MODULE_PARM_DESC(max_outgoing,
		 "Outgoing migrations that run at once; more wait in order (0: no limit)");
module_param(max_bandwidth, ulong, 0644);
MODULE_PARM_DESC(max_bandwidth,
		 "Bytes per second all outgoing migrations share by priority (0: no budget)");
module_param_cb(high_weight, &high_weight_ops, &high_weight, 0644);
MODULE_PARM_DESC(high_weight,
		 "Weight of a high-priority migration in max_bandwidth; standard is 1 (1-1000)");
