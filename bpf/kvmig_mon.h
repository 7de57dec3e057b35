/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Structures shared by the kvmig eBPF programs (bpf/<prog>.bpf.c) and their
 * loader (userspace/kvmigctl_bpf.c). Plain C with UAPI types only, so that
 * both sides include it as is and the maps' BTF carries the field names.
 */
#ifndef KVMIG_MON_H
#define KVMIG_MON_H

#include <linux/types.h>

/* Address families of struct kvmig_flow (the values of AF_INET, AF_INET6). */
#define KVMIG_FAMILY_INET	2
#define KVMIG_FAMILY_INET6	10

/* Directions: the index of the totals map and kvmig_flow.dir. */
#define KVMIG_DIR_INGRESS	0
#define KVMIG_DIR_EGRESS	1
#define KVMIG_DIR_MAX		2

/* Default size of the flows map (kvmigctl monitor attach --max-flows). */
#define KVMIG_MON_MAX_FLOWS	16384
#define KVMIG_MON_MAX_PORTS	64

/**
 * struct kvmig_flow - key of the flows map: one TCP flow in one direction
 * @saddr: source address; IPv4 as v4-mapped IPv6 (::ffff:a.b.c.d)
 * @daddr: destination address, same encoding
 * @sport: source port, host byte order
 * @dport: destination port, host byte order
 * @dir: KVMIG_DIR_INGRESS or KVMIG_DIR_EGRESS
 * @family: KVMIG_FAMILY_INET or KVMIG_FAMILY_INET6
 * @pad: zero (the key is hashed as raw bytes)
 */
struct kvmig_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 dir;
	__u8 family;
	__u8 pad[2];
};

/**
 * struct kvmig_flow_stats - counters of a flow, or of a direction's total
 * @packets: packets, a GSO packet counting for its segments
 * @bytes: skb->len at tc, L2 headers included (once per GSO packet)
 * @payload_bytes: TCP payload bytes
 * @first_ns: CLOCK_MONOTONIC time of the first packet
 * @last_ns: CLOCK_MONOTONIC time of the last packet
 */
struct kvmig_flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 payload_bytes;
	__u64 first_ns;
	__u64 last_ns;
};

/* Roles of struct kvmig_done_event, as KVMIG_ROLE_* in uapi/kvmig.h. */
#define KVMIG_EV_ROLE_SOURCE	1
#define KVMIG_EV_ROLE_DEST	2

/**
 * struct kvmig_done_event - a kvmig_done tracepoint hit, from the ring buffer
 * @id: session id
 * @role: KVMIG_EV_ROLE_SOURCE or KVMIG_EV_ROLE_DEST
 * @pad: zero
 * @pages: pages transferred
 * @bytes: bytes transferred
 * @downtime_ns: downtime of the migration
 * @ts: CLOCK_MONOTONIC time of the event
 */
struct kvmig_done_event {
	__u64 id;
	__u32 role;
	__u32 pad;
	__u64 pages;
	__u64 bytes;
	__u64 downtime_ns;
	__u64 ts;
};

#endif /* KVMIG_MON_H */
