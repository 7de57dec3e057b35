// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for sessions: validation of struct kvmig_attach and the
 * choice of dirty tracker, one case per rule.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>

#include "core.h"

struct attach_case {
	const char *name;
	struct kvmig_attach a;
	int ret;
};

#define SRC	.role = KVMIG_ROLE_SOURCE
#define DST	.role = KVMIG_ROLE_DEST

static const struct attach_case attach_cases[] = {
	{ "source auto",	{ SRC },				0 },
	{ "source ring",	{ SRC, .dirty_mode = KVMIG_DIRTY_RING },	0 },
	{ "source bitmap",	{ SRC, .dirty_mode = KVMIG_DIRTY_BITMAP },	0 },
	{ "dest auto",		{ DST },				0 },
	{ "fd INT_MAX",		{ SRC, .vm_fd = 0x7fffffff },		0 },
	{ "role 0",		{ .role = 0 },				-EINVAL },
	{ "role 3",		{ .role = 3 },				-EINVAL },
	{ "mode 3",		{ SRC, .dirty_mode = 3 },		-EINVAL },
	{ "mode ~0",		{ SRC, .dirty_mode = ~0U },		-EINVAL },
	{ "dest with ring",	{ DST, .dirty_mode = KVMIG_DIRTY_RING },	-EINVAL },
	{ "regions",		{ SRC, .flags = KVMIG_ATTACH_REGIONS,
				  .nr_regions = 1, .regions_ptr = 8 },	0 },
	{ "regions, most",	{ DST, .flags = KVMIG_ATTACH_REGIONS,
				  .nr_regions = KVMIG_MAX_REGIONS,
				  .regions_ptr = 8 },			0 },
	{ "regions, none",	{ SRC, .flags = KVMIG_ATTACH_REGIONS,
				  .regions_ptr = 8 },			-EINVAL },
	{ "regions, too many",	{ SRC, .flags = KVMIG_ATTACH_REGIONS,
				  .nr_regions = KVMIG_MAX_REGIONS + 1,
				  .regions_ptr = 8 },			-EINVAL },
	{ "regions, no array",	{ SRC, .flags = KVMIG_ATTACH_REGIONS,
				  .nr_regions = 1 },			-EINVAL },
	{ "count, no flag",	{ SRC, .nr_regions = 1 },		-EINVAL },
	{ "array, no flag",	{ SRC, .regions_ptr = 8 },		-EINVAL },
	{ "flags bit 1",	{ SRC, .flags = 2 },			-EINVAL },
	{ "flags bit 31",	{ SRC, .flags = 1U << 31 },		-EINVAL },
	{ "pad",		{ SRC, .pad = 1 },			-EINVAL },
	{ "reserved[0]",	{ SRC, .reserved = { 1 } },		-EINVAL },
	{ "reserved[1]",	{ SRC, .reserved = { 0, 1 } },		-EINVAL },
	{ "fd negative",	{ SRC, .vm_fd = 0x80000000 },		-EBADF },
};

static void attach_case_desc(const struct attach_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(attach, attach_cases, attach_case_desc);

static void kvmig_attach_check_test(struct kunit *test)
{
	const struct attach_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, kvmig_attach_check(&c->a), c->ret);
}

struct check_setup_case {
	const char *name;
	struct kvmig_check_setup c;
	u32 role;
	int ret;
};

static const struct check_setup_case check_setup_cases[] = {
	{ "nothing", {}, 1, 0 },
	{ "uuid", { .flags = KVMIG_CHECK_UUID, .uuid = { 1 } }, 1, 0 },
	{ "uuid, all zero", { .flags = KVMIG_CHECK_UUID }, 1, -EINVAL },
	{ "uuid, unflagged", { .uuid = { [15] = 1 } }, 2, -EINVAL },
	{ "cpuid at the destination", { .flags = KVMIG_CHECK_CPUID,
	  .nr_cpuid = 1, .cpuid_ptr = 4096 }, 2, 0 },
	{ "cpuid, KVM's most", { .flags = KVMIG_CHECK_CPUID,
	  .nr_cpuid = KVMIG_MAX_CPUID, .cpuid_ptr = 4096 }, 2, 0 },
	{ "cpuid at the source", { .flags = KVMIG_CHECK_CPUID,
	  .nr_cpuid = 1, .cpuid_ptr = 4096 }, 1, -EINVAL },
	{ "cpuid, none", { .flags = KVMIG_CHECK_CPUID, .cpuid_ptr = 4096 },
	  2, -EINVAL },
	{ "cpuid, too many", { .flags = KVMIG_CHECK_CPUID,
	  .nr_cpuid = KVMIG_MAX_CPUID + 1, .cpuid_ptr = 4096 }, 2, -EINVAL },
	{ "cpuid, no pointer", { .flags = KVMIG_CHECK_CPUID, .nr_cpuid = 1 },
	  2, -EINVAL },
	{ "cpuid, unflagged", { .nr_cpuid = 1, .cpuid_ptr = 4096 }, 2,
	  -EINVAL },
	{ "unknown flag", { .flags = 4 }, 1, -EINVAL },
	{ "reserved", { .reserved = { [3] = 1 } }, 1, -EINVAL },
};

static void check_setup_case_desc(const struct check_setup_case *c,
				  char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(check_setup, check_setup_cases, check_setup_case_desc);

static void kvmig_check_setup_check_test(struct kunit *test)
{
	const struct check_setup_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, kvmig_check_setup_check(&c->c, c->role), c->ret);
}

struct mode_case {
	const char *name;
	u32 role, mode, ring_size;
	bool manual;
	int ret;
	u32 out;
};

static const struct mode_case mode_cases[] = {
	{ "auto, rings",	1, 0, 4096, false, 0, KVMIG_DIRTY_RING },
	{ "auto, manual",	1, 0, 0, true, 0, KVMIG_DIRTY_BITMAP },
	{ "auto, neither",	1, 0, 0, false, -EINVAL },
	{ "ring, rings",	1, 1, 65536, false, 0, KVMIG_DIRTY_RING },
	{ "ring, no rings",	1, 1, 0, true, -EINVAL },
	{ "bitmap, manual",	1, 2, 0, true, 0, KVMIG_DIRTY_BITMAP },
	{ "bitmap, no manual",	1, 2, 0, false, -EINVAL },
	{ "bitmap, rings",	1, 2, 4096, true, -EINVAL },
	{ "dest, anything",	2, 0, 0, false, 0, KVMIG_DIRTY_AUTO },
};

static void mode_case_desc(const struct mode_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(mode, mode_cases, mode_case_desc);

static void kvmig_dirty_mode_resolve_test(struct kunit *test)
{
	const struct mode_case *c = test->param_value;
	u32 out = 0xdead;
	int ret;

	ret = kvmig_dirty_mode_resolve(c->role, c->mode, c->ring_size,
				       c->manual, &out);
	KUNIT_EXPECT_EQ(test, ret, c->ret);
	/* On error the output is left alone. */
	KUNIT_EXPECT_EQ(test, out, ret ? 0xdead : c->out);
}

static void kvmig_attach_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_attach), 48);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_attach, nr_regions), 16);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_attach, regions_ptr), 24);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_attach, reserved), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_region), 32);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_region, id), 16);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_ATTACH_VM),
			sizeof(struct kvmig_attach));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_ATTACH_VM),
			_IOC_READ | _IOC_WRITE);
}

static void kvmig_list_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_list), 48);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_list, sessions_ptr), 8);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_list, nr_filled), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_session_info), 232);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_session_info, stats), 32);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_LIST_SESSIONS),
			sizeof(struct kvmig_list));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_LIST_SESSIONS),
			_IOC_READ | _IOC_WRITE);
}

static struct kunit_case kvmig_session_cases[] = {
	KUNIT_CASE_PARAM(kvmig_attach_check_test, attach_gen_params),
	KUNIT_CASE_PARAM(kvmig_dirty_mode_resolve_test, mode_gen_params),
	KUNIT_CASE_PARAM(kvmig_check_setup_check_test, check_setup_gen_params),
	KUNIT_CASE(kvmig_attach_layout_test),
	KUNIT_CASE(kvmig_list_layout_test),
	{}
};

static struct kunit_suite kvmig_session_suite = {
	.name = "kvmig_session",
	.test_cases = kvmig_session_cases,
};

kunit_test_suites(&kvmig_session_suite);
