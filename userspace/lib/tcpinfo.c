// SPDX-License-Identifier: GPL-2.0
/*
 * tcpinfo.c: TCP_INFO's byte counters. glibc's struct tcp_info stops
 * before them, hence <linux/tcp.h>'s, in a file of their own.
 */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "tcpinfo.h"

int tcp_counts_add(int fd, struct tcp_counts *c)
{
	struct tcp_info ti = {};
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	/* Kernels before 4.19 stop short of the byte counters. */
	if (len < offsetof(struct tcp_info, tcpi_bytes_retrans) +
		  sizeof(ti.tcpi_bytes_retrans))
		return -EOPNOTSUPP;
	c->bytes_sent += ti.tcpi_bytes_sent;
	c->bytes_retrans += ti.tcpi_bytes_retrans;
	c->bytes_acked += ti.tcpi_bytes_acked;
	c->bytes_received += ti.tcpi_bytes_received;
	c->segs_retrans += ti.tcpi_total_retrans;
	return 0;
}
