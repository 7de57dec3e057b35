// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the wire protocol: encode, decode and every check made on
 * what the peer sends.
 */
#include <kunit/test.h>
#include <linux/bits.h>
#include <linux/kvm.h>

#include "wire.h"

static const struct kvmig_wire_layout_slot layout[] = {
	{ .id = 0, .flags = KVM_MEM_READONLY, .base_gfn = 0, .npages = 16 },
	{ .id = 1, .base_gfn = 0x20000, .npages = 1024 },
	{ .id = 3, .base_gfn = 0x40000, .npages = 100 },
	/* 2 TiB at 2 TiB */
	{ .id = 4, .base_gfn = 1ULL << 29, .npages = 1ULL << 29 },
};

#define TIB2	BIT_ULL(29)		/* gfn of 2 TiB */
#define TIB4	BIT_ULL(30)		/* gfn of 4 TiB */
#define ZCAP	KVMIG_WIRE_MAX_ZERO_RUN	/* 2^18 */

struct rec_case {
	const char *name;
	u16 type, flags;
	u32 slot;
	u64 gfn;
	u32 npages, len;
	int ret;
	u32 index;
};

static const struct rec_case rec_cases[] = {
	{ "pages at slot start", KVMIG_REC_PAGES, 0, 1, 0x20000, 64, 0, 0, 1 },
	{ "pages at slot end", KVMIG_REC_PAGES, 0, 3, 0x40000 + 99, 1, 0, 0, 2 },
	{ "pages in read-only slot", KVMIG_REC_PAGES, 0, 0, 4, 2, 0, 0, 0 },
	{ "pages across slot end", KVMIG_REC_PAGES, 0, 3, 0x40000 + 99, 2, 0, -EPROTO },
	{ "pages below slot", KVMIG_REC_PAGES, 0, 1, 0x1ffff, 1, 0, -EPROTO },
	{ "pages past slot", KVMIG_REC_PAGES, 0, 1, 0x20000 + 1024, 1, 0, -EPROTO },
	{ "gfn that wraps", KVMIG_REC_PAGES, 0, 1, U64_MAX, 2, 0, -EPROTO },
	{ "no pages", KVMIG_REC_PAGES, 0, 1, 0x20000, 0, 0, -EPROTO },
	{ "too many pages", KVMIG_REC_PAGES, 0, 1, 0x20000, 65, 0, -EPROTO },
	{ "unknown slot", KVMIG_REC_PAGES, 0, 2, 0x20000, 1, 0, -EPROTO },
	{ "slot of address space 1", KVMIG_REC_PAGES, 0, 0x10001, 0x20000, 1, 0, -EPROTO },
	{ "pages with length", KVMIG_REC_PAGES, 0, 1, 0x20000, 1, 4096, -EPROTO },
	{ "flags", KVMIG_REC_PAGES, 1, 1, 0x20000, 1, 0, -EPROTO },
	{ "zero run of a whole slot", KVMIG_REC_ZERO, 0, 1, 0x20000, 1024, 0, 0, 1 },
	{ "zero run at the cap", KVMIG_REC_ZERO, 0, 4, TIB2, ZCAP, 0, 0, 3 },
	{ "zero run over the cap", KVMIG_REC_ZERO, 0, 4, TIB2, ZCAP + 1, 0, -EPROTO },
	{ "zero run at the end of 4 TiB", KVMIG_REC_ZERO, 0, 4, TIB4 - ZCAP, ZCAP, 0, 0, 3 },
	{ "zero run past 4 TiB", KVMIG_REC_ZERO, 0, 4, TIB4 - ZCAP + 1, ZCAP, 0, -EPROTO },
	{ "pages of the zero cap", KVMIG_REC_PAGES, 0, 4, TIB2, ZCAP, 0, -EPROTO },
	{ "zero run past slot", KVMIG_REC_ZERO, 0, 3, 0x40000 + 99, 2, 0, -EPROTO },
	{ "state", KVMIG_REC_STATE, 0, 0, 0, 0, 1000, 0 },
	{ "state at the limit", KVMIG_REC_STATE, 0, 0, 0, 0, KVMIG_WIRE_MAX_STATE, 0 },
	{ "state over the limit", KVMIG_REC_STATE, 0, 0, 0, 0, KVMIG_WIRE_MAX_STATE + 1, -EPROTO },
	{ "state with pages", KVMIG_REC_STATE, 0, 0, 0, 1, 10, -EPROTO },
	{ "round", KVMIG_REC_ROUND, 0, 0, 7, 0, 0, 0 },
	{ "end", KVMIG_REC_END, 0, 0, 0, 0, 0, 0 },
	{ "end with a slot", KVMIG_REC_END, 0, 1, 0, 0, 0, -EPROTO },
	{ "type 0", 0, 0, 1, 0x20000, 1, 0, -EPROTO },
	{ "commit", KVMIG_REC_COMMIT, 0, 0, 0, 0, 0, 0 },
	{ "commit with pages", KVMIG_REC_COMMIT, 0, 0, 0, 1, 0, -EPROTO },
	{ "commit with a length", KVMIG_REC_COMMIT, 0, 0, 0, 0, 8, -EPROTO },
	{ "type 7", 7, 0, 1, 0x20000, 1, 0, -EPROTO },
};

static void rec_case_desc(const struct rec_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(rec, rec_cases, rec_case_desc);

static void decode_rec_test(struct kunit *test)
{
	const struct rec_case *c = test->param_value;
	struct kvmig_wire_rec w;
	struct kvmig_rec out;
	int ret;

	kvmig_wire_encode_rec(&w, c->type, c->slot, c->gfn, c->npages, c->len);
	w.flags = cpu_to_le16(c->flags);
	ret = kvmig_wire_decode_rec(&w, layout, ARRAY_SIZE(layout), &out);
	KUNIT_EXPECT_EQ(test, ret, c->ret);
	if (ret)
		return;
	KUNIT_EXPECT_EQ(test, out.type, c->type);
	KUNIT_EXPECT_EQ(test, out.gfn, c->gfn);
	KUNIT_EXPECT_EQ(test, out.npages, c->npages);
	KUNIT_EXPECT_EQ(test, out.len, c->len);
	if (c->type == KVMIG_REC_PAGES || c->type == KVMIG_REC_ZERO)
		KUNIT_EXPECT_EQ(test, out.slot_index, c->index);
}

static void hello_test(struct kunit *test)
{
	struct kvmig_wire_hello h = {
		.magic = cpu_to_le32(KVMIG_WIRE_MAGIC),
		.version = cpu_to_le16(KVMIG_WIRE_VERSION),
		.page_shift = cpu_to_le16(12),
		.nr_slots = cpu_to_le32(3),
	}, b;

	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&h), 0);
	b = h;
	b.magic = cpu_to_le32(0x12345678);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.version = cpu_to_le16(KVMIG_WIRE_VERSION + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	/* Version 1 had no COMMIT: a v1 source would leave us in doubt. */
	b.version = cpu_to_le16(1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	b = h;
	b.page_shift = cpu_to_le16(16);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_VERSION);
	b = h;
	b.flags = cpu_to_le32(KVMIG_WIRE_HELLO_REGIONS);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), 0);
	b.flags = cpu_to_le32(2);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b.flags = cpu_to_le32(1U << 31 | KVMIG_WIRE_HELLO_REGIONS);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.nr_slots = 0;
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
	b = h;
	b.nr_slots = cpu_to_le32(KVMIG_WIRE_MAX_SLOTS + 1);
	KUNIT_EXPECT_EQ(test, kvmig_wire_check_hello(&b), KVMIG_WIRE_E_PROTO);
}

static void compare_slot_test(struct kunit *test)
{
	struct kvmig_wire_slot w = {
		.id = cpu_to_le32(1),
		.flags = cpu_to_le32(KVM_MEM_LOG_DIRTY_PAGES),
		.base_gfn = cpu_to_le64(0x20000),
		.npages = cpu_to_le64(1024),
	}, b;

	/* Dirty logging is the source's business: it does not count. */
	KUNIT_EXPECT_EQ(test, kvmig_wire_compare_slot(&w, &layout[1]), 0);
	b = w;
	b.id = cpu_to_le32(3);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.base_gfn = cpu_to_le64(0x20001);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.npages = cpu_to_le64(1023);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
	b = w;
	b.flags = cpu_to_le32(KVM_MEM_READONLY);
	KUNIT_EXPECT_NE(test, kvmig_wire_compare_slot(&b, &layout[1]), 0);
}

static void wire_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_hello), 24);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_slot), 24);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_rec), 24);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_wire_reply), 16);
}

static struct kunit_case kvmig_wire_cases[] = {
	KUNIT_CASE_PARAM(decode_rec_test, rec_gen_params),
	KUNIT_CASE(hello_test),
	KUNIT_CASE(compare_slot_test),
	KUNIT_CASE(wire_layout_test),
	{}
};

static struct kunit_suite kvmig_wire_suite = {
	.name = "kvmig_wire",
	.test_cases = kvmig_wire_cases,
};

kunit_test_suites(&kvmig_wire_suite);
