/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcpinfo.h: what TCP itself counted on a connection (TCP_INFO), for the
 * reports that set kvmig's counts beside the wire's.
 */
#ifndef KVMIG_TCPINFO_H
#define KVMIG_TCPINFO_H

/* Sums over connections, in payload bytes. */
struct tcp_counts {
	unsigned long long bytes_sent;		/* all, retransmissions too */
	unsigned long long bytes_retrans;	/* retransmitted */
	unsigned long long bytes_acked;		/* acknowledged by the peer */
	unsigned long long bytes_received;	/* delivered in order */
	unsigned long long segs_retrans;	/* segments retransmitted */
};

/* Add @fd's counts to @c; 0, or -errno (not a TCP socket). */
int tcp_counts_add(int fd, struct tcp_counts *c);

#endif
