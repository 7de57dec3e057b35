// SPDX-License-Identifier: GPL-2.0
/*
 * ABI tests of /dev/kvmig: the API query and every way to call it wrongly.
 *
 * With KVMIG_REQUIRE=1 in the environment a missing /dev/kvmig is a
 * failure instead of a skip (the lab sets it: there the module is loaded).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmig.h"
#include "kselftest_harness.h"

#define DEV "/dev/kvmig"

static int open_dev(struct __test_metadata *_metadata)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return -1, DEV " not present: load kvmig.ko");
	ASSERT_LE(0, fd) TH_LOG("open " DEV ": %s", strerror(errno));
	return fd;
}

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open_dev(_metadata);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* ioctl that returns -errno, so EXPECT_EQ shows the error directly. */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

TEST_F(dev, get_api)
{
	__u64 feat[1] = { ~0ULL };
	struct kvmig_api api = {
		.nr_features = 1,
		.features_ptr = (uintptr_t)feat,
	};

	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_API, &api));
	EXPECT_EQ(KVMIG_API_VERSION, api.api_version);
	EXPECT_EQ(KVMIG_NR_FEATURE_WORDS, api.nr_features);
	/* Only bits this header defines may be set. */
	EXPECT_EQ(0, feat[0] & ~KVMIG_F_ALL_0);
	EXPECT_EQ(0, api.flags);
	EXPECT_EQ(0, api.pad);
}

/*
 * API version 2: the two-phase switchover and the transfer worker are
 * announced along with everything version 1 had.
 */
TEST_F(dev, features_of_version_2)
{
	__u64 feat[1] = { 0 };
	struct kvmig_api api = {
		.nr_features = 1,
		.features_ptr = (uintptr_t)feat,
	};
	const __u64 v1 = KVMIG_F0_DIRTY_RING | KVMIG_F0_DIRTY_BITMAP |
			 KVMIG_F0_DIRTY_READ | KVMIG_F0_STATS |
			 KVMIG_F0_XFER_TCP | KVMIG_F0_DIRTY_MARK |
			 KVMIG_F0_LIST;

	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_API, &api));
	EXPECT_EQ(2, api.api_version);
	EXPECT_EQ(v1, feat[0] & v1);
	EXPECT_TRUE(feat[0] & KVMIG_F0_COMMIT);
	EXPECT_TRUE(feat[0] & KVMIG_F0_WORKER);
	/* Every feature, RDMA only where the kernel has the RDMA CM. */
	EXPECT_EQ(KVMIG_F_ALL_0 & ~KVMIG_F0_RDMA, feat[0] & ~KVMIG_F0_RDMA);
}

TEST_F(dev, query_feature_words)
{
	struct kvmig_api api = { };

	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_API, &api));
	EXPECT_EQ(KVMIG_API_VERSION, api.api_version);
	EXPECT_LE(1, api.nr_features);
}

TEST_F(dev, extra_feature_words_untouched)
{
	__u64 feat[4];
	struct kvmig_api api = {
		.nr_features = 4,
		.features_ptr = (uintptr_t)feat,
	};
	unsigned int i;

	memset(feat, 0xa5, sizeof(feat));
	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_API, &api));
	ASSERT_EQ(KVMIG_NR_FEATURE_WORDS, api.nr_features);
	EXPECT_EQ(0, feat[0] & ~KVMIG_F_ALL_0);
	for (i = api.nr_features; i < 4; i++)
		EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, feat[i]);
}

/* A rejected call must leave the caller's struct exactly as it was. */
static void expect_rejected(struct __test_metadata *_metadata, int fd,
			    struct kvmig_api *api, int err)
{
	struct kvmig_api before = *api;

	EXPECT_EQ(err, xioctl(fd, KVMIG_GET_API, api));
	EXPECT_EQ(0, memcmp(&before, api, sizeof(before)));
}

TEST_F(dev, flags_rejected)
{
	unsigned int bit;

	for (bit = 0; bit < 32; bit++) {
		struct kvmig_api api = { .flags = 1U << bit };

		expect_rejected(_metadata, self->fd, &api, -EINVAL);
	}
}

TEST_F(dev, pad_rejected)
{
	struct kvmig_api api = { .pad = 0x80000000 };

	expect_rejected(_metadata, self->fd, &api, -EINVAL);
}

TEST_F(dev, reserved_rejected)
{
	unsigned int i;

	for (i = 0; i < 4; i++) {
		struct kvmig_api api = { };

		api.reserved[i] = 1ULL << (i * 16);
		expect_rejected(_metadata, self->fd, &api, -EINVAL);
	}
}

TEST_F(dev, words_without_pointer)
{
	struct kvmig_api api = { .nr_features = 1 };

	expect_rejected(_metadata, self->fd, &api, -EINVAL);
}

TEST_F(dev, bad_feature_pointer)
{
	static const uint64_t bad[] = {
		1,			/* unmapped first page */
		0xffff800000000000ULL,	/* kernel half */
		0x0000800000000000ULL,	/* non-canonical */
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvmig_api api = {
			.nr_features = 1,
			.features_ptr = bad[i],
		};

		EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API, &api));
	}
}

TEST_F(dev, read_only_feature_array)
{
	struct kvmig_api api = { .nr_features = 1 };
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);

	ASSERT_NE(MAP_FAILED, ro);
	api.features_ptr = (uintptr_t)ro;
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API, &api));
	munmap(ro, 4096);
}

TEST_F(dev, bad_arg_pointer)
{
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API, NULL));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API, (void *)1));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API,
				  (void *)0xffff800000000000ULL));
}

TEST_F(dev, read_only_arg)
{
	struct kvmig_api *api = mmap(NULL, 4096, PROT_READ,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, api);
	/* Readable, so it validates, but the answer cannot be written. */
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_GET_API, api));
	munmap(api, 4096);
}

TEST_F(dev, unknown_ioctls)
{
	struct kvmig_api api = { };
	char big[256] = { };

	/* Unused numbers in the core range and beyond it. */
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOWR(KVMIG_IO, 0x0f,
						  struct kvmig_api), &api));
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IO(KVMIG_IO, 0xff), NULL));
	/* Same number, wrong direction or wrong size. */
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOR(KVMIG_IO, 0x00,
						 struct kvmig_api), &api));
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOW(KVMIG_IO, 0x00,
						 struct kvmig_api), &api));
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOWR(KVMIG_IO, 0x00, big), big));
	/* Another driver's magic. */
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOWR(0xAE, 0x00,
						  struct kvmig_api), &api));
}

TEST_F(dev, no_read_write_seek_mmap)
{
	char buf[8];

	EXPECT_EQ(-1, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(-1, write(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED,
				   self->fd, 0));
}

TEST(device_mode)
{
	struct stat st;

	if (stat(DEV, &st) && errno == ENOENT && !getenv("KVMIG_REQUIRE"))
		SKIP(return, DEV " not present: load kvmig.ko");
	ASSERT_EQ(0, stat(DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	/* It hands out control of VMs: root only. */
	EXPECT_EQ(0600, st.st_mode & 07777);
}

TEST(sessions_are_independent)
{
	struct kvmig_api api = { };
	int a, b, i;

	a = open_dev(_metadata);
	if (a < 0)
		return;
	b = open_dev(_metadata);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, close(a));
	EXPECT_EQ(0, xioctl(b, KVMIG_GET_API, &api));
	ASSERT_EQ(0, close(b));

	/* Many short sessions: each must free what it allocated. */
	for (i = 0; i < 1000; i++) {
		a = open_dev(_metadata);
		ASSERT_LE(0, a);
		ASSERT_EQ(0, close(a));
	}
}

/* All sessions visible to the caller, in @info[@cap]; returns the count. */
static int list(int fd, struct kvmig_session_info *info, __u32 cap,
		__u32 *filled)
{
	struct kvmig_list l = {
		.nr_sessions = cap,
		.sessions_ptr = (uintptr_t)info,
	};

	if (ioctl(fd, KVMIG_LIST_SESSIONS, &l))
		return -errno;
	*filled = l.nr_filled;
	return l.nr_sessions;
}

static struct kvmig_session_info *find(struct kvmig_session_info *info,
				       __u32 n, __u64 id)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if (info[i].stats.id == id)
			return &info[i];
	return NULL;
}

TEST_F(dev, list_sessions)
{
	struct kvmig_session_info info[64], *me, *other;
	struct kvmig_stats sa = { }, sb = { };
	__u32 filled = 0;
	int b, n;

	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_STATS, &sa));
	EXPECT_NE(0, sa.id);
	b = open_dev(_metadata);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, xioctl(b, KVMIG_GET_STATS, &sb));
	EXPECT_LT(sa.id, sb.id);	/* in order of opening, never reused */

	n = list(self->fd, info, 64, &filled);
	ASSERT_LE(2, n);
	ASSERT_EQ(n < 64 ? n : 64, filled);
	me = find(info, filled, sa.id);
	other = find(info, filled, sb.id);
	ASSERT_NE(NULL, me);
	ASSERT_NE(NULL, other);
	EXPECT_EQ(KVMIG_SESSION_SELF, me->flags);
	EXPECT_EQ(0, other->flags);
	EXPECT_EQ(getpid(), me->pid);
	EXPECT_EQ(getpid(), other->pid);
	EXPECT_EQ(KVMIG_STATE_IDLE, other->stats.state);
	EXPECT_EQ(0, memcmp(&sb, &other->stats, sizeof(sb)));
	EXPECT_LT(me - info, other - info);	/* oldest first */

	/* Closed sessions leave the list. */
	ASSERT_EQ(0, close(b));
	n = list(self->fd, info, 64, &filled);
	EXPECT_EQ(NULL, find(info, filled, sb.id));

	/* Too little room: the count still says how many there are. */
	EXPECT_EQ(n, list(self->fd, info, 1, &filled));
	EXPECT_EQ(1, filled);
	EXPECT_EQ(n, list(self->fd, NULL, 0, &filled));
	EXPECT_EQ(0, filled);
}

TEST_F(dev, list_rejects_bad_input)
{
	struct kvmig_session_info info[2];
	struct kvmig_list l;

	memset(&l, 0, sizeof(l));
	l.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	memset(&l, 0, sizeof(l));
	l.pad = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	memset(&l, 0, sizeof(l));
	l.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	memset(&l, 0, sizeof(l));
	l.nr_sessions = 1;	/* room, but no array */
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	l.sessions_ptr = (uintptr_t)info;
	l.nr_sessions = KVMIG_LIST_MAX + 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	l.nr_sessions = 2;
	l.sessions_ptr = 8;	/* unmapped */
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_LIST_SESSIONS, &l));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, KVMIG_LIST_SESSIONS, (void *)8));
}

/*
 * KVMIG_GET_STATS: the id is an output, and a struct from an earlier call
 * (or a listing) carries one: it is not refused on input, and the answer
 * is this session's own id whatever came in.
 */
TEST_F(dev, stats_id_on_input)
{
	struct kvmig_stats st, again;

	memset(&st, 0, sizeof(st));
	ASSERT_EQ(0, xioctl(self->fd, KVMIG_GET_STATS, &st));
	ASSERT_NE(0, st.id);
	again = st;
	EXPECT_EQ(0, xioctl(self->fd, KVMIG_GET_STATS, &again));
	EXPECT_EQ(st.id, again.id);
	again.id = st.id + 12345;
	EXPECT_EQ(0, xioctl(self->fd, KVMIG_GET_STATS, &again));
	EXPECT_EQ(st.id, again.id);
	/* flags is the one input field, and still checked. */
	again.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, KVMIG_GET_STATS, &again));
}

TEST_HARNESS_MAIN
