/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the migration selftests share: the guest that fills memory on
 * request, a loopback TCP pair, and transfer calls that ride out signals.
 * Included by one test program each, after vmm.h.
 */
#ifndef KVMIG_MIG_LIB_H
#define KVMIG_MIG_LIB_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ktls.h"

#include "vmm.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

/*
 * Guest: %esi = mailbox { u32 gpa, count, stride, value }: stores value to
 * count addresses from gpa, stride apart, then OUT, and again when run.
 */
asm(".pushsection .rodata.guest, \"a\"\n"
    ".global guest_fill, guest_fill_end\n"
    ".code32\n"
    "guest_fill:\n"
    "1:	movl (%esi), %eax\n"
    "	movl 4(%esi), %ecx\n"
    "	movl 12(%esi), %edx\n"
    "	jecxz 3f\n"
    "2:	movl %edx, (%eax)\n"
    "	addl 8(%esi), %eax\n"
    "	loop 2b\n"
    "3:	outb %al, $" XSTR(VMM_PORT_DONE) "\n"
    "	jmp 1b\n"
    "guest_fill_end:\n"
    ".code64\n"
    ".popsection\n");
extern const char guest_fill[], guest_fill_end[];

/*
 * A connected pair, @a to @b, both at the IPv4 address @addr (network
 * order). With @buf, both ends get socket buffers of about that size, so
 * that what is in flight stays small and a sender soon has to wait for
 * its receiver.
 */
static inline int tcp_pair_at(int *a, int *b, int buf, in_addr_t addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = addr;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 ||
	    (buf && setsockopt(l, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf))) ||
	    bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 ||
	    (buf && setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf))) ||
	    connect(*a, (void *)&sa, sizeof(sa)))
		return -errno;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (*b < 0)
		return -errno;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* The same over loopback. */
static inline int tcp_pair_buf(int *a, int *b, int buf)
{
	return tcp_pair_at(a, b, buf, htonl(INADDR_LOOPBACK));
}

static inline int tcp_pair(int *a, int *b)
{
	return tcp_pair_buf(a, b, 0);
}

/*
 * A transfer call, made again after each -EINTR (counted in @eintr, if
 * given): the same ioctl joins the call the signal interrupted.
 */
static inline int xfer_call(int dev, unsigned long cmd, void *arg,
			    unsigned int *eintr)
{
	while (ioctl(dev, cmd, arg)) {
		if (errno != EINTR)
			return -errno;
		if (eintr)
			(*eintr)++;
	}
	return 0;
}

#endif /* KVMIG_MIG_LIB_H */
