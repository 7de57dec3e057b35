// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the hole walk (holes.c) on real mappings: KUnit gives the
 * test thread an mm of its own (kunit_vm_mmap()), where anonymous and
 * shmem memory is populated page by page through put_user() and
 * get_user(), as a guest's faults would populate a VMM's. Before Linux
 * 6.11 KUnit has no kunit_vm_mmap(), the test thread no mm to map memory
 * in, and the cases skip (KVMIG_HAVE_KUNIT_VM_MMAP).
 */
#include <kunit/test.h>
#include <linux/limits.h>
#include <linux/mman.h>
#include <linux/sched.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>

#include "xfer.h"

#if KVMIG_HAVE_KUNIT_VM_MMAP
#define PG(a, i)	((a) + ((unsigned long)(i) << PAGE_SHIFT))

static void expect_span(struct kunit *test, unsigned long addr,
			unsigned long n, unsigned long want, bool want_hole)
{
	bool hole = !want_hole;

	KUNIT_EXPECT_EQ(test, kvmig_hole_span(current->mm, addr, n, &hole),
			want);
	KUNIT_EXPECT_EQ(test, hole, want_hole);
}

static void touch(struct kunit *test, unsigned long addr, u32 v)
{
	KUNIT_ASSERT_EQ(test, put_user(v, (u32 __user *)addr), 0);
}

static void anon_test(struct kunit *test)
{
	unsigned long a, i;
	u32 v;

	/* 8 MiB: four page tables' worth, never touched. */
	a = kunit_vm_mmap(test, NULL, 0, SZ_8M, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, 0);
	KUNIT_ASSERT_NE_MSG(test, a, 0, "no mm for the test");
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(a));
	expect_span(test, a, 2048, 2048, true);
	/* Asking for more than the VMA stops at its end, at any scale. */
	expect_span(test, a, ULONG_MAX, 2048, true);
	expect_span(test, a, 1ULL << 40, 2048, true);
	expect_span(test, PG(a, 2040), 100, 8, true);
	expect_span(test, a, 0, 0, false);

	touch(test, PG(a, 5), 1);
	expect_span(test, a, 2048, 5, true);
	expect_span(test, PG(a, 5), 2043, 1, false);
	expect_span(test, PG(a, 6), 2042, 2042, true);

	/* A populated run across a page table's end, wherever it falls. */
	for (i = 1000; i < 1100; i++)
		touch(test, PG(a, i), i);
	expect_span(test, PG(a, 6), 2042, 994, true);
	expect_span(test, PG(a, 1000), 1048, 100, false);
	expect_span(test, PG(a, 1050), 10, 10, false);
	expect_span(test, PG(a, 1100), 948, 948, true);

	/* A read maps the zero page: populated, the pin will see zero. */
	KUNIT_ASSERT_EQ(test, get_user(v, (u32 __user *)PG(a, 1500)), 0);
	KUNIT_EXPECT_EQ(test, v, 0);
	expect_span(test, PG(a, 1100), 948, 400, true);
	expect_span(test, PG(a, 1500), 548, 1, false);

	/* Not a VMA of the mm: one page, populated, for the pin to refuse. */
	expect_span(test, PG(a, 2048) + SZ_1G, 10, 1, false);
}

static void shmem_test(struct kunit *test)
{
	struct file *f;
	unsigned long a, b;

	f = shmem_file_setup("kvmig-kunit", SZ_4M, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(f));
	a = kunit_vm_mmap(test, f, 0, SZ_4M, PROT_READ | PROT_WRITE,
			  MAP_SHARED, 0);
	b = kunit_vm_mmap(test, f, 0, SZ_4M, PROT_READ | PROT_WRITE,
			  MAP_SHARED, 0);
	fput(f);	/* the mappings hold it */
	KUNIT_ASSERT_NE(test, a, 0);
	KUNIT_ASSERT_NE(test, b, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(a) || IS_ERR_VALUE(b));
	expect_span(test, a, 1024, 1024, true);

	touch(test, PG(a, 10), 7);
	touch(test, PG(a, 11), 7);
	expect_span(test, a, 1024, 10, true);
	expect_span(test, PG(a, 10), 1014, 2, false);
	expect_span(test, PG(a, 12), 1012, 1012, true);
	/*
	 * The second mapping has no page table entry for them, but the file
	 * holds their data: the page cache says populated.
	 */
	expect_span(test, b, 1024, 10, true);
	expect_span(test, PG(b, 10), 1014, 2, false);
	expect_span(test, PG(b, 12), 1012, 1012, true);
}
#else
static void anon_test(struct kunit *test)
{
	kunit_skip(test, "no kunit_vm_mmap() before Linux 6.11");
}

static void shmem_test(struct kunit *test)
{
	kunit_skip(test, "no kunit_vm_mmap() before Linux 6.11");
}
#endif

static struct kunit_case holes_cases[] = {
	KUNIT_CASE(anon_test),
	KUNIT_CASE(shmem_test),
	{}
};

static struct kunit_suite holes_suite = {
	.name = "kvmig_holes",
	.test_cases = holes_cases,
};

kunit_test_suite(holes_suite);
