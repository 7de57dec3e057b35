/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmig tracepoints: one per phase of a session. Every event carries the
 * session's id (struct kvmig_stats.id, KVMIG_LIST_SESSIONS). The
 * arguments are plain integers so that raw tracepoint BPF programs read
 * them as they are, without the module's BTF.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvmig

#if !defined(_KVMIG_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _KVMIG_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(kvmig_attach,
	TP_PROTO(u64 id, u32 role, u32 dirty_mode, s32 pid),
	TP_ARGS(id, role, dirty_mode, pid),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, role)
		__field(u32, dirty_mode)
		__field(s32, pid)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->role = role;
		__entry->dirty_mode = dirty_mode;
		__entry->pid = pid;
	),
	TP_printk("session=%llu role=%u dirty_mode=%u pid=%d",
		  __entry->id, __entry->role, __entry->dirty_mode,
		  __entry->pid)
);

TRACE_EVENT(kvmig_round_start,
	TP_PROTO(u64 id, u64 round, u64 pending),
	TP_ARGS(id, round, pending),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, round)
		__field(u64, pending)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->round = round;
		__entry->pending = pending;
	),
	TP_printk("session=%llu round=%llu pending=%llu",
		  __entry->id, __entry->round, __entry->pending)
);

TRACE_EVENT(kvmig_admitted,
	TP_PROTO(u64 id, u64 wait_ns),
	TP_ARGS(id, wait_ns),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, wait_ns)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->wait_ns = wait_ns;
	),
	TP_printk("session=%llu wait_ns=%llu", __entry->id, __entry->wait_ns)
);

TRACE_EVENT(kvmig_round_end,
	TP_PROTO(u64 id, u64 round, u32 status, u64 pages, u64 zero_pages,
		 u64 bytes, u64 remaining, u64 dirty_rate, u64 throughput,
		 u64 expected_downtime_ns),
	TP_ARGS(id, round, status, pages, zero_pages, bytes, remaining,
		dirty_rate, throughput, expected_downtime_ns),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, round)
		__field(u32, status)
		__field(u64, pages)
		__field(u64, zero_pages)
		__field(u64, bytes)
		__field(u64, remaining)
		__field(u64, dirty_rate)
		__field(u64, throughput)
		__field(u64, expected_downtime_ns)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->round = round;
		__entry->status = status;
		__entry->pages = pages;
		__entry->zero_pages = zero_pages;
		__entry->bytes = bytes;
		__entry->remaining = remaining;
		__entry->dirty_rate = dirty_rate;
		__entry->throughput = throughput;
		__entry->expected_downtime_ns = expected_downtime_ns;
	),
	TP_printk("session=%llu round=%llu status=%u pages=%llu zero=%llu bytes=%llu remaining=%llu dirty_rate=%llu throughput=%llu expected_downtime_ns=%llu",
		  __entry->id, __entry->round, __entry->status,
		  __entry->pages, __entry->zero_pages, __entry->bytes,
		  __entry->remaining, __entry->dirty_rate,
		  __entry->throughput, __entry->expected_downtime_ns)
);

TRACE_EVENT(kvmig_switchover_start,
	TP_PROTO(u64 id, u64 round, u64 pending, u32 state_len),
	TP_ARGS(id, round, pending, state_len),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, round)
		__field(u64, pending)
		__field(u32, state_len)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->round = round;
		__entry->pending = pending;
		__entry->state_len = state_len;
	),
	TP_printk("session=%llu round=%llu pending=%llu state_len=%u",
		  __entry->id, __entry->round, __entry->pending,
		  __entry->state_len)
);

TRACE_EVENT(kvmig_switchover_end,
	TP_PROTO(u64 id, s32 err, u64 pages, u64 downtime_ns),
	TP_ARGS(id, err, pages, downtime_ns),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(s32, err)
		__field(u64, pages)
		__field(u64, downtime_ns)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->err = err;
		__entry->pages = pages;
		__entry->downtime_ns = downtime_ns;
	),
	TP_printk("session=%llu err=%d pages=%llu downtime_ns=%llu",
		  __entry->id, __entry->err, __entry->pages,
		  __entry->downtime_ns)
);

TRACE_EVENT(kvmig_done,
	TP_PROTO(u64 id, u32 role, u64 pages, u64 bytes, u64 downtime_ns),
	TP_ARGS(id, role, pages, bytes, downtime_ns),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, role)
		__field(u64, pages)
		__field(u64, bytes)
		__field(u64, downtime_ns)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->role = role;
		__entry->pages = pages;
		__entry->bytes = bytes;
		__entry->downtime_ns = downtime_ns;
	),
	TP_printk("session=%llu role=%u pages=%llu bytes=%llu downtime_ns=%llu",
		  __entry->id, __entry->role, __entry->pages, __entry->bytes,
		  __entry->downtime_ns)
);

TRACE_EVENT(kvmig_failed,
	TP_PROTO(u64 id, u32 role, u32 reason, s32 err),
	TP_ARGS(id, role, reason, err),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, role)
		__field(u32, reason)
		__field(s32, err)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->role = role;
		__entry->reason = reason;
		__entry->err = err;
	),
	TP_printk("session=%llu role=%u reason=%u err=%d",
		  __entry->id, __entry->role, __entry->reason, __entry->err)
);

/* A vCPU thread paid for its dirtied pages (ring mode). */
TRACE_EVENT(kvmig_throttle,
	TP_PROTO(u64 id, u32 vcpu, u64 delay_ns, u64 slept_ns),
	TP_ARGS(id, vcpu, delay_ns, slept_ns),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, vcpu)
		__field(u64, delay_ns)
		__field(u64, slept_ns)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->vcpu = vcpu;
		__entry->delay_ns = delay_ns;
		__entry->slept_ns = slept_ns;
	),
	TP_printk("session=%llu vcpu=%u delay_ns=%llu slept_ns=%llu",
		  __entry->id, __entry->vcpu, __entry->delay_ns,
		  __entry->slept_ns)
);

/* The throttle was set, or its share of vCPU time changed. */
TRACE_EVENT(kvmig_throttle_set,
	TP_PROTO(u64 id, u32 policy, u32 pct, u64 dirty_rate),
	TP_ARGS(id, policy, pct, dirty_rate),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, policy)
		__field(u32, pct)
		__field(u64, dirty_rate)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->policy = policy;
		__entry->pct = pct;
		__entry->dirty_rate = dirty_rate;
	),
	TP_printk("session=%llu policy=%u pct=%u dirty_rate=%llu",
		  __entry->id, __entry->policy, __entry->pct,
		  __entry->dirty_rate)
);

#endif /* _KVMIG_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
