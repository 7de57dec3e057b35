// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig_events: the kvmig_done tracepoint of kvmig.ko (end of a migration,
 * on either side) into a ring buffer, for `kvmigctl announce --wait-done`.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "kvmig_mon.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* TP_PROTO(u64 id, u32 role, u64 pages, u64 bytes, u64 downtime_ns) */
SEC("raw_tp/kvmig_done")
int BPF_PROG(kvmig_done, __u64 id, __u32 role, __u64 pages, __u64 bytes,
	     __u64 downtime_ns)
{
	struct kvmig_done_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->id = id;
	e->role = role;
	e->pad = 0;
	e->pages = pages;
	e->bytes = bytes;
	e->downtime_ns = downtime_ns;
	e->ts = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
