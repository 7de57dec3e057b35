// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the /dev/kvmig control plane: the validation of
 * struct kvmig_api, one case per rule.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/module.h>

#include "core.h"

struct api_case {
	const char *name;
	void (*mutate)(struct kvmig_api *api);
	int ret;
};

static void none(struct kvmig_api *api)
{
}

static void set_flags(struct kvmig_api *api)
{
	api->flags = 1;
}

static void set_high_flag(struct kvmig_api *api)
{
	api->flags = 1U << 31;
}

static void set_pad(struct kvmig_api *api)
{
	api->pad = 1;
}

static void set_reserved0(struct kvmig_api *api)
{
	api->reserved[0] = 1;
}

static void set_reserved3(struct kvmig_api *api)
{
	api->reserved[3] = 1ULL << 63;
}

static void words_no_ptr(struct kvmig_api *api)
{
	api->nr_features = 1;
}

static void words_and_ptr(struct kvmig_api *api)
{
	api->nr_features = 4;
	api->features_ptr = 0x1000;
}

static void ptr_no_words(struct kvmig_api *api)
{
	api->features_ptr = 0x1000;
}

static const struct api_case api_cases[] = {
	{ "zeroed",		none,		0 },
	{ "flags bit 0",	set_flags,	-EINVAL },
	{ "flags bit 31",	set_high_flag,	-EINVAL },
	{ "pad",		set_pad,	-EINVAL },
	{ "reserved[0]",	set_reserved0,	-EINVAL },
	{ "reserved[3]",	set_reserved3,	-EINVAL },
	{ "words, no pointer",	words_no_ptr,	-EINVAL },
	{ "words and pointer",	words_and_ptr,	0 },
	{ "pointer, no words",	ptr_no_words,	0 },
};

static void api_case_desc(const struct api_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(api, api_cases, api_case_desc);

static void kvmig_api_check_test(struct kunit *test)
{
	const struct api_case *c = test->param_value;
	struct kvmig_api api = { };

	c->mutate(&api);
	KUNIT_EXPECT_EQ(test, kvmig_api_check(&api), c->ret);
}

static void kvmig_api_fill_test(struct kunit *test)
{
	struct kvmig_api api = { .nr_features = 7, .features_ptr = 0x1000 };

	kvmig_api_fill(&api, 1);
	KUNIT_EXPECT_EQ(test, api.api_version, KVMIG_API_VERSION);
	KUNIT_EXPECT_EQ(test, api.nr_features, 1);
	/* What the caller passed in stays untouched. */
	KUNIT_EXPECT_EQ(test, api.features_ptr, 0x1000);
	KUNIT_EXPECT_EQ(test, api.flags, 0);
}

static void kvmig_api_layout_test(struct kunit *test)
{
	/* The UAPI struct must not change size or layout: it is ABI. */
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_api), 56);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvmig_api, features_ptr), 16);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvmig_api) % 8, 0);
	KUNIT_EXPECT_EQ(test, _IOC_SIZE(KVMIG_GET_API), sizeof(struct kvmig_api));
	KUNIT_EXPECT_EQ(test, _IOC_DIR(KVMIG_GET_API), _IOC_READ | _IOC_WRITE);
}

static struct kunit_case kvmig_api_cases[] = {
	KUNIT_CASE_PARAM(kvmig_api_check_test, api_gen_params),
	KUNIT_CASE(kvmig_api_fill_test),
	KUNIT_CASE(kvmig_api_layout_test),
	{}
};

static struct kunit_suite kvmig_api_suite = {
	.name = "kvmig_api",
	.test_cases = kvmig_api_cases,
};

kunit_test_suites(&kvmig_api_suite);

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KUnit tests for kvmig");
