// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the transfer engine's arithmetic at real scale: rounds of
 * a terabyte, links of 400 Gbit/s, limits that must saturate rather than
 * wrap or trap.
 */
#include <kunit/test.h>
#include <linux/bits.h>
#include <linux/limits.h>
#include <linux/sizes.h>
#include <linux/stddef.h>

#include "xfer.h"

#define TIB		BIT_ULL(40)
#define GBIT400		50000000000ULL	/* bytes per second */

/*
 * A zero that is not a constant: inlined with a constant 0, the division
 * that the functions' guard skips would still be evaluated by sparse
 * ("division by zero").
 */
static u64 zero;

static void ns_for_test(struct kunit *test)
{
	/* 1 TiB at 400 Gbit/s: 2^40 / 50e9 s = 21.990232555 s. */
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(TIB, GBIT400), 21990232555ULL);
	/* bytes * NSEC_PER_SEC wraps from 17 GiB on: 32 GiB at 1 GiB/s. */
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(32ULL << 30, 1ULL << 30),
			32 * NSEC_PER_SEC);
	/* The expected downtime of 2^28 pending pages (1 TiB). */
	KUNIT_EXPECT_EQ(test, kvmig_ns_for((1ULL << 28) * SZ_4K, GBIT400),
			21990232555ULL);
	/* No throughput measured yet, and times that do not fit. */
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(TIB, zero), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(U64_MAX, 1), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(U64_MAX / NSEC_PER_SEC, 1), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(U64_MAX / NSEC_PER_SEC - 1, 1),
			(U64_MAX / NSEC_PER_SEC - 1) * NSEC_PER_SEC);
	KUNIT_EXPECT_EQ(test, kvmig_ns_for(0, GBIT400), 0);
}

static void per_sec_test(struct kunit *test)
{
	/* A round of 1 TiB sent in 21.990232555 s: 400 Gbit/s. */
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(TIB, 21990232555ULL),
			50000000001ULL);
	/* 20 GiB in 2 s: past the old 17 GiB wrap. */
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(20ULL << 30, 2 * NSEC_PER_SEC),
			10ULL << 30);
	/* A dirty rate: 2^28 pages logged in 250 ms. */
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(1ULL << 28, 250 * NSEC_PER_MSEC),
			4ULL << 28);
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(TIB, zero), 0);
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(U64_MAX, 1), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_per_sec(1, U64_MAX), 0);
}

static void deadline_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, kvmig_deadline(1000, 5), 1000 + 5 * NSEC_PER_MSEC);
	/* A day of pre-copy from a clock at 1 TiB ns. */
	KUNIT_EXPECT_EQ(test, kvmig_deadline(TIB, 86400000ULL),
			TIB + 86400ULL * NSEC_PER_SEC);
	/* timeout_ms * NSEC_PER_MSEC would wrap: saturate instead. */
	KUNIT_EXPECT_EQ(test, kvmig_deadline(0, U64_MAX), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_deadline(U64_MAX - 10, 1), U64_MAX);
	KUNIT_EXPECT_EQ(test, kvmig_deadline(0, U64_MAX / NSEC_PER_MSEC),
			U64_MAX / NSEC_PER_MSEC * NSEC_PER_MSEC);
}

/* The UAPI of the commit protocol and of the worker's eventfd. */
static void uapi_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_resolve), 32);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_XFER_RESOLVE),
			sizeof(struct kvmig_resolve));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_XFER_RESOLVE), _IOC_WRITE);
	/* event_fd and nr_streams took pad and reserved[0]: same size. */
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_xfer_setup), 72);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_xfer_setup, event_fd), 40);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_xfer_setup, nr_streams), 44);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_xfer_setup, streams_ptr), 48);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_xfer_setup, priority), 56);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_xfer_setup, reserved), 64);
	/* priority, queue_pos and wait_ns took reserved[0..1]: same size. */
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_session_info, wait_ns), 16);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_session_info, stats), 32);
	KUNIT_EXPECT_EQ(test, KVMIG_STATE_IN_DOUBT, 7);
	KUNIT_EXPECT_EQ(test, KVMIG_REC_COMMIT, 6);
	KUNIT_EXPECT_EQ(test, KVMIG_REC_WAIT, 7);
	KUNIT_EXPECT_EQ(test, KVMIG_WIRE_VERSION, 5);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_round), 80);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_round, hole_pages), 48);
}

/*
 * The host's budget shared by weight: exact where it divides, rounded
 * down where it does not, never 0 with a budget, and in 128 bits at
 * terabytes per second.
 */
static void host_share_test(struct kunit *test)
{
	const u64 tb = 1000ULL * 1000 * 1000 * 1000;

	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(0, 3, 1, 1, 3), 0);
	/* One high (3) and one standard (1): 3/4 and 1/4. */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(16000000, 3, 1, 1, 3),
			12000000);
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(16000000, 1, 1, 1, 3),
			4000000);
	/* Alone, whatever its weight: everything. */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(16000000, 1, 0, 1, 3),
			16000000);
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(16000000, 3, 1, 0, 3),
			16000000);
	/* Not counted yet (a racing snapshot): its own weight still counts. */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(16000000, 3, 0, 0, 3),
			16000000);
	/* Three ways: 10 / 3 rounds down; the shares never add up to more. */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(10, 1, 0, 3, 3), 3);
	/* 1 byte/s among 1000 standard ones: 1, not 0 (0 means unpaced). */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(1, 1, 0, 1000, 3), 1);
	/* 100 TB/s among 4 high at 1000 and 4 standard; then budget * w > 2^64. */
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(100 * tb, 1000, 4, 4, 1000),
			div_u64(100 * tb * 1000, 4004));
	KUNIT_EXPECT_EQ(test, kvmig_host_share_of(U64_MAX, 1000, 1, 0, 1000),
			U64_MAX);
	KUNIT_EXPECT_EQ(test,
			kvmig_host_share_of(U64_MAX, 1, U32_MAX, U32_MAX, 1000),
			div64_u64(U64_MAX, (u64)U32_MAX * 1001));
}

static struct kunit_case kvmig_xfer_cases[] = {
	KUNIT_CASE(host_share_test),
	KUNIT_CASE(uapi_layout_test),
	KUNIT_CASE(ns_for_test),
	KUNIT_CASE(per_sec_test),
	KUNIT_CASE(deadline_test),
	{}
};

static struct kunit_suite kvmig_xfer_suite = {
	.name = "kvmig_xfer",
	.test_cases = kvmig_xfer_cases,
};

kunit_test_suites(&kvmig_xfer_suite);
