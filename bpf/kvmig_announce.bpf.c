// SPDX-License-Identifier: GPL-2.0
/*
 * kvmig_announce: transmits the frame it is given out of one interface.
 * Run only through BPF_PROG_TEST_RUN with the complete Ethernet frame as
 * data_in: bpf_clone_redirect() queues a copy on @ifindex's egress, and the
 * test-run skb itself is dropped. The loader sets @ifindex before each run
 * and reads the helper's result from @result.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

__u32 ifindex;
long result;

SEC("tc")
int kvmig_announce(struct __sk_buff *skb)
{
	result = bpf_clone_redirect(skb, ifindex, 0);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
