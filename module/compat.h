/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The differences between the kernels kvmig builds for: Linux 6.12, and
 * 6.1 LTS as Debian 12 ships it. Every version check of the module is
 * here, each one named after what it tests; the rest of the code is
 * written for the newest kernel and reads like it.
 *
 * 6.1.y took some interfaces of later kernels in its stable updates:
 * bvec_set_page() (6.1.55), vmemdup_array_user() (6.1.64), is_zero_page()
 * with pin_user_pages() leaving the zero page unpinned (6.1.130, its
 * try_grab_page() fixed in 6.1.135; round 0 pins the pages a guest only
 * read, which map the zero page). They need no shim here, and an earlier
 * 6.1 is refused rather than half supported. MSG_SPLICE_PAGES is defined
 * from 6.1.72 on, but TCP ignores it before 6.5 and copies: hence
 * KVMIG_HAVE_SPLICE_PAGES tests the version, not the flag.
 */
#ifndef _KVMIG_COMPAT_H
#define _KVMIG_COMPAT_H

#include <linux/eventfd.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 135)
#error "kvmig needs Linux 6.1.135 or later"
#endif

/*
 * 6.5: sendmsg(MSG_SPLICE_PAGES) sends a bvec's pages without a copy, and
 * ->sendpage is gone. Before, TCP copies whatever sendmsg() is given, and
 * zero-copy is kernel_sendpage(), one page per call (xfer/tcp.c).
 */
#define KVMIG_HAVE_SPLICE_PAGES	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0))

/*
 * 6.6: KUnit test attributes, with which a run may leave slow cases out.
 * Before, every case runs, as it does by default since.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 6, 0)
#define KUNIT_CASE_SLOW(test_name)	KUNIT_CASE(test_name)
#endif

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
/*
 * 6.8 dropped eventfd_signal()'s count, which every caller set to 1.
 * 6.1 adds @n and wakes the readers with EPOLLIN, saturating at
 * ULLONG_MAX; 6.8 adds 1 the same way.
 */
#define eventfd_signal(ctx)		eventfd_signal(ctx, 1)
/* 6.8 renamed KVM's KVM_ADDRESS_SPACE_NUM (x86: 2, with SMM). */
#define KVM_MAX_NR_ADDRESS_SPACES	KVM_ADDRESS_SPACE_NUM
/* 6.8 brought guest_memfd: no memslot of an earlier kernel has one. */
#define KVM_MEM_GUEST_MEMFD		0
#endif

/* 6.11: kunit_vm_mmap() gives a test thread an mm to map memory in. */
#define KVMIG_HAVE_KUNIT_VM_MMAP (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0))

#endif /* _KVMIG_COMPAT_H */
