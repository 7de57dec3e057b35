// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig_mon: per-flow TCP throughput of one interface, at tc ingress and
 * egress. Only flows with a source or destination port in the ports map
 * are counted (an empty map counts nothing). Never drops or changes a
 * packet: both programs always return TC_ACT_OK.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kvmig_mon.h"

/*
 * LRU: when it is full, a new flow takes the place of the least recently
 * counted one instead of going uncounted (totals count every packet
 * either way). kvmigctl sets max_entries at load (--max-flows).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KVMIG_MON_MAX_FLOWS);
	__type(key, struct kvmig_flow);
	__type(value, struct kvmig_flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KVMIG_DIR_MAX);
	__type(key, __u32);
	__type(value, struct kvmig_flow_stats);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KVMIG_MON_MAX_PORTS);
	__type(key, __u16);
	__type(value, __u8);
} ports SEC(".maps");

static __always_inline void add(struct kvmig_flow_stats *s, __u64 packets,
				__u64 bytes, __u64 payload, __u64 now)
{
	__sync_fetch_and_add(&s->packets, packets);
	__sync_fetch_and_add(&s->bytes, bytes);
	__sync_fetch_and_add(&s->payload_bytes, payload);
	/* Racy but monotonic enough: these are for display. */
	if (!s->first_ns)
		s->first_ns = now;
	s->last_ns = now;
}

static __always_inline int account(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct kvmig_flow_stats *s, init = { };
	struct kvmig_flow key;
	struct tcphdr *tcp;
	__u32 hlen, idx = dir;
	__u64 packets, now;
	__u16 sport, dport;

	__builtin_memset(&key, 0, sizeof(key));
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		if (ip->protocol != IPPROTO_TCP ||
		    ip->frag_off & bpf_htons(0x1fff) || ip->ihl < 5)
			return TC_ACT_OK;
		hlen = ip->ihl * 4;
		tcp = (void *)ip + hlen;
		key.family = KVMIG_FAMILY_INET;
		key.saddr[10] = 0xff;
		key.saddr[11] = 0xff;
		key.daddr[10] = 0xff;
		key.daddr[11] = 0xff;
		__builtin_memcpy(&key.saddr[12], &ip->saddr, 4);
		__builtin_memcpy(&key.daddr[12], &ip->daddr, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		/* Extension headers are not followed. */
		if (ip6->nexthdr != IPPROTO_TCP)
			return TC_ACT_OK;
		hlen = sizeof(*ip6);
		tcp = (void *)(ip6 + 1);
		key.family = KVMIG_FAMILY_INET6;
		__builtin_memcpy(key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(key.daddr, &ip6->daddr, 16);
	} else {
		return TC_ACT_OK;
	}
	if ((void *)(tcp + 1) > data_end || tcp->doff < 5)
		return TC_ACT_OK;

	sport = bpf_ntohs(tcp->source);
	dport = bpf_ntohs(tcp->dest);
	if (!bpf_map_lookup_elem(&ports, &sport) &&
	    !bpf_map_lookup_elem(&ports, &dport))
		return TC_ACT_OK;
	key.sport = sport;
	key.dport = dport;
	key.dir = dir;

	/* A GSO packet carries the headers once, for all its segments. */
	hlen += sizeof(*eth) + tcp->doff * 4;
	packets = skb->gso_segs ? skb->gso_segs : 1;
	now = bpf_ktime_get_ns();

	s = bpf_map_lookup_elem(&flows, &key);
	if (!s) {
		init.first_ns = now;
		/* Another CPU may have created it meanwhile: EEXIST is fine. */
		bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&flows, &key);
		if (!s)
			return TC_ACT_OK;
	}
	add(s, packets, skb->len, skb->len > hlen ? skb->len - hlen : 0, now);

	s = bpf_map_lookup_elem(&totals, &idx);
	if (s)
		add(s, packets, skb->len, skb->len > hlen ? skb->len - hlen : 0,
		    now);
	return TC_ACT_OK;
}

SEC("tc")
int kvmig_mon_ingress(struct __sk_buff *skb)
{
	return account(skb, KVMIG_DIR_INGRESS);
}

SEC("tc")
int kvmig_mon_egress(struct __sk_buff *skb)
{
	return account(skb, KVMIG_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
