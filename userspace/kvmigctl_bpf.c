// SPDX-License-Identifier: GPL-2.0
/*
 * kvmigctl's eBPF commands.
 *
 * monitor: loads bpf/kvmig_mon.bpf.c on an interface's clsact ingress and
 * egress with our own handle and priority, and pins its maps in
 * KVMIG_PIN_ROOT/<netns inode>/<ifname>/ so that `show` (and
 * kvmig_mon_totals()) can read them from another process; the tc filters
 * keep the programs alive.
 *
 * announce: after a migration the destination announces the VM's MAC as
 * QEMU does (net/announce.c): the same RARP frame on the same schedule,
 * transmitted by bpf/kvmig_announce.bpf.c through BPF_PROG_TEST_RUN.
 * --wait-done first waits for kvmig.ko's kvmig_done tracepoint
 * (bpf/kvmig_events.bpf.c) of one destination session: --session's, or
 * the only one running, never whichever ends first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kvmig.h"
#include "kvmigctl_bpf.h"
#include "kvmig_mon.skel.h"
#include "kvmig_announce.skel.h"
#include "kvmig_events.skel.h"

#define EXIT_USAGE	2
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

_Static_assert(KVMIG_EV_ROLE_SOURCE == KVMIG_ROLE_SOURCE, "role mismatch");
_Static_assert(KVMIG_EV_ROLE_DEST == KVMIG_ROLE_DEST, "role mismatch");

static const char *const dir_name[KVMIG_DIR_MAX] = { "ingress", "egress" };
static const char *const map_names[] = { "flows", "totals", "ports" };

void kvmigctl_bpf_usage(FILE *f)
{
	fprintf(f,
		"  monitor attach IFACE [--port PORT]... [--max-flows N]\n"
		"                     count the TCP flows on IFACE with PORT as\n"
		"                     source or destination port (default %u),\n"
		"                     the N most recent flows (default %u) and\n"
		"                     totals; maps pinned in\n"
		"                     " KVMIG_PIN_ROOT "/NETNS-INODE/IFACE/\n"
		"  monitor detach IFACE\n"
		"                     remove the monitor from IFACE\n"
		"  monitor show IFACE [--interval DUR]\n"
		"                     packets, bytes and TCP payload bytes per\n"
		"                     flow and direction; --interval: also the\n"
		"                     throughput over DUR\n"
		"  announce IFACE --mac MAC [--initial DUR] [--max DUR]\n"
		"        [--rounds N] [--step DUR]\n"
		"        [--wait-done [--session ID] [--timeout DUR]]\n"
		"                     QEMU's gratuitous RARP for MAC out of IFACE,\n"
		"                     on QEMU's schedule (defaults 50ms, 550ms, 5,\n"
		"                     100ms); --wait-done: first wait for the end\n"
		"                     of an incoming migration: of session ID,\n"
		"                     else of the one destination session running\n"
		"                     (or the first to start; several: an error),\n"
		"                     at most DUR (default 0: forever)\n",
		KVMIG_DEFAULT_PORT, KVMIG_MON_MAX_FLOWS);
}

/* Set around calls whose failure is an answer, not an error. */
static bool libbpf_quiet;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	static int debug = -1;

	if (debug < 0)
		debug = !!getenv("KVMIG_DEBUG");
	if ((level != LIBBPF_WARN || libbpf_quiet) && !debug)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void sleep_until(__u64 ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000ull,
		.tv_nsec = ns % 1000000000ull,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int parse_u64(const char *s, __u64 max, __u64 *v)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

static int opt_u64(const char *name, const char *s, __u64 max, __u64 *v)
{
	if (parse_u64(s, max, v)) {
		fprintf(stderr, "kvmigctl: bad --%s '%s'\n", name, s);
		return -EINVAL;
	}
	return 0;
}

int kvmigctl_opt_ms(const char *name, const char *s, __u64 max_ms, __u64 *ms)
{
	static const struct {
		const char *unit;
		__u64 mul;
	} units[] = { { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 } };
	__u64 whole = 0, frac = 0, scale = 1, mul, v;
	const char *p = s;
	unsigned int i;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			goto bad;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale >= 1000000)
				goto bad;
			frac = frac * 10 + (*p - '0');
			scale *= 10;
		}
		if (scale == 1)
			goto bad;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(p, units[i].unit))
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	mul = units[i].mul;
	/* frac * mul < 10^6 * 60000: no overflow. */
	if (whole > max_ms / mul || (frac * mul) % scale)
		goto bad;
	v = whole * mul + frac * mul / scale;
	if (v > max_ms)
		goto bad;
	*ms = v;
	return 0;
bad:
	fprintf(stderr, "kvmigctl: bad --%s '%s' (a duration up to %llu ms: 250ms, 5s, 1.5s, 2m; a bare number is ms)\n",
		name, s, (unsigned long long)max_ms);
	return -EINVAL;
}

/*
 * A name the kernel would accept (dev_valid_name()); it is also a path
 * component under KVMIG_PIN_ROOT.
 */
static int check_ifname(const char *name)
{
	size_t i, len = strlen(name);

	if (!len || len >= IFNAMSIZ || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		goto bad;
	for (i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == ':' || name[i] <= ' ' ||
		    name[i] == '"' || name[i] == '\\' || name[i] == 0x7f)
			goto bad;
	return 0;
bad:
	fprintf(stderr, "kvmigctl: bad interface name '%s'\n", name);
	return -EINVAL;
}

static int ifindex_of(const char *name)
{
	int ifindex = if_nametoindex(name);

	if (!ifindex)
		fprintf(stderr, "kvmigctl: no interface '%s'\n", name);
	return ifindex;
}

/* Monitor. */

struct flow {
	struct kvmig_flow key;
	struct kvmig_flow_stats st;
};

struct sample {
	struct flow *flows;
	size_t nr;
	struct kvmig_flow_stats tot[KVMIG_DIR_MAX];
	__u64 ns;
};

/*
 * Interface names are per network namespace, bpffs is per mount namespace:
 * the pins are keyed by both, KVMIG_PIN_ROOT/NETNS/IFACE/MAP, NETNS being
 * the inode of our network namespace (stat -L -c %i /proc/self/ns/net).
 * With @ifname NULL, the namespace's directory.
 */
static int pin_path(char *buf, size_t size, const char *ifname,
		    const char *map)
{
	static unsigned long long netns;
	struct stat st;
	int n;

	if (!netns) {
		if (stat("/proc/self/ns/net", &st)) {
			fprintf(stderr, "kvmigctl: /proc/self/ns/net: %s\n",
				strerror(errno));
			return -errno;
		}
		netns = st.st_ino;
	}
	if (map)
		n = snprintf(buf, size, KVMIG_PIN_ROOT "/%llu/%s/%s", netns,
			     ifname, map);
	else if (ifname)
		n = snprintf(buf, size, KVMIG_PIN_ROOT "/%llu/%s", netns,
			     ifname);
	else
		n = snprintf(buf, size, KVMIG_PIN_ROOT "/%llu", netns);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int open_pinned(const char *ifname, const char *map)
{
	char path[PATH_MAX];
	int fd, err;

	err = pin_path(path, sizeof(path), ifname, map);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int kvmig_mon_totals(const char *ifname, struct kvmig_flow_stats tot[2])
{
	__u32 i;
	int fd, err = 0;

	fd = open_pinned(ifname, "totals");
	if (fd < 0)
		return fd;
	for (i = 0; i < KVMIG_DIR_MAX && !err; i++)
		if (bpf_map_lookup_elem(fd, &i, &tot[i]))
			err = -errno;
	close(fd);
	return err;
}

/* Mount the BPF filesystem if it is not, and make KVMIG_PIN_ROOT. */
static int pin_root(void)
{
	struct statfs sfs;

	if (statfs(KVMIG_BPFFS, &sfs)) {
		fprintf(stderr, "kvmigctl: %s: %s\n", KVMIG_BPFFS,
			strerror(errno));
		return -errno;
	}
	if (sfs.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", KVMIG_BPFFS, "bpf", 0, NULL)) {
			fprintf(stderr, "kvmigctl: mounting bpffs on %s: %s\n",
				KVMIG_BPFFS, strerror(errno));
			return -errno;
		}
		/* In a private mount namespace (ip netns exec), it is too. */
		fprintf(stderr, "kvmigctl: mounted bpffs on %s\n", KVMIG_BPFFS);
	}
	if (mkdir(KVMIG_PIN_ROOT, 0700) && errno != EEXIST) {
		fprintf(stderr, "kvmigctl: %s: %s\n", KVMIG_PIN_ROOT,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/* Remove the pins of @ifname and their directory; 1 if there was one. */
static int unpin(const char *ifname)
{
	char path[PATH_MAX];
	int found = 0, err = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(map_names); i++) {
		if (pin_path(path, sizeof(path), ifname, map_names[i]))
			return -ENAMETOOLONG;
		if (!unlink(path))
			found = 1;
		else if (errno != ENOENT)
			err = -errno;
	}
	if (pin_path(path, sizeof(path), ifname, NULL))
		return -ENAMETOOLONG;
	if (!rmdir(path))
		found = 1;
	else if (errno != ENOENT)
		err = -errno;
	if (err)
		fprintf(stderr, "kvmigctl: removing %s: %s\n", path,
			strerror(-err));
	/* The namespace's directory goes with its last monitor. */
	if (!err && !pin_path(path, sizeof(path), NULL, NULL))
		rmdir(path);
	return err ? err : found;
}

static int tc_detach(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KVMIG_TC_HANDLE,
		    .priority = KVMIG_TC_PRIO);
	int err;

	/* "Cannot find specified filter chain" when not attached. */
	libbpf_quiet = true;
	err = bpf_tc_detach(&hook, &opts);
	libbpf_quiet = false;
	return err;
}

static int tc_attach(int ifindex, enum bpf_tc_attach_point point,
		     struct bpf_program *prog)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KVMIG_TC_HANDLE,
		    .priority = KVMIG_TC_PRIO,
		    .prog_fd = bpf_program__fd(prog));

	return bpf_tc_attach(&hook, &opts);
}

static int mon_attach(const char *ifname, const __u16 *ports, int nr_ports,
		      __u32 max_flows)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS |
						      BPF_TC_EGRESS);
	struct bpf_map *maps[3];
	struct kvmig_mon *skel;
	char dir[PATH_MAX], path[PATH_MAX];
	int ifindex, i, err;
	__u8 one = 1;

	ifindex = ifindex_of(ifname);
	if (!ifindex)
		return KVMIG_EXIT_NOIF;
	if (pin_root())
		return EXIT_FAILURE;
	if (pin_path(dir, sizeof(dir), NULL, NULL))
		return EXIT_FAILURE;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "kvmigctl: %s: %s\n", dir, strerror(errno));
		return EXIT_FAILURE;
	}
	if (pin_path(dir, sizeof(dir), ifname, NULL))
		return EXIT_FAILURE;
	if (mkdir(dir, 0700)) {
		err = errno;
		if (err == EEXIST)
			fprintf(stderr, "kvmigctl: monitor already attached to %s (%s exists)\n",
				ifname, dir);
		else
			fprintf(stderr, "kvmigctl: %s: %s\n", dir, strerror(err));
		return EXIT_FAILURE;
	}

	skel = kvmig_mon__open();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "kvmigctl: opening kvmig_mon: %s\n",
			strerror(-err));
		goto out_rmdir;
	}
	err = bpf_map__set_max_entries(skel->maps.flows, max_flows);
	if (!err)
		err = kvmig_mon__load(skel);
	if (err) {
		fprintf(stderr, "kvmigctl: loading kvmig_mon: %s\n",
			strerror(-err));
		goto out_destroy;
	}
	for (i = 0; i < nr_ports; i++) {
		err = bpf_map__update_elem(skel->maps.ports, &ports[i],
					   sizeof(ports[i]), &one, sizeof(one),
					   BPF_ANY);
		if (err) {
			fprintf(stderr, "kvmigctl: setting port %u: %s\n",
				ports[i], strerror(-err));
			goto out_destroy;
		}
	}

	hook.ifindex = ifindex;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		fprintf(stderr, "kvmigctl: clsact on %s: %s\n", ifname,
			strerror(-err));
		goto out_destroy;
	}
	err = tc_attach(ifindex, BPF_TC_INGRESS, skel->progs.kvmig_mon_ingress);
	if (err) {
		fprintf(stderr, "kvmigctl: attaching to %s ingress: %s%s\n",
			ifname, strerror(-err),
			err == -EEXIST ? " (monitor already attached)" : "");
		goto out_destroy;
	}
	err = tc_attach(ifindex, BPF_TC_EGRESS, skel->progs.kvmig_mon_egress);
	if (err) {
		fprintf(stderr, "kvmigctl: attaching to %s egress: %s%s\n",
			ifname, strerror(-err),
			err == -EEXIST ? " (monitor already attached)" : "");
		goto out_ingress;
	}

	maps[0] = skel->maps.flows;
	maps[1] = skel->maps.totals;
	maps[2] = skel->maps.ports;
	for (i = 0; i < 3; i++) {
		err = pin_path(path, sizeof(path), ifname, map_names[i]);
		if (!err)
			err = bpf_map__pin(maps[i], path);
		if (err) {
			fprintf(stderr, "kvmigctl: pinning %s: %s\n", path,
				strerror(-err));
			goto out_unpin;
		}
	}
	/* The filters hold the programs, the programs and pins the maps. */
	kvmig_mon__destroy(skel);
	return EXIT_SUCCESS;

out_unpin:
	while (i--)
		bpf_map__unpin(maps[i], NULL);
	tc_detach(ifindex, BPF_TC_EGRESS);
out_ingress:
	tc_detach(ifindex, BPF_TC_INGRESS);
out_destroy:
	kvmig_mon__destroy(skel);
out_rmdir:
	rmdir(dir);
	if (!pin_path(dir, sizeof(dir), NULL, NULL))
		rmdir(dir);
	return EXIT_FAILURE;
}

static int mon_detach(const char *ifname)
{
	enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	int ifindex, i, err, found = 0, failed = 0;

	ifindex = if_nametoindex(ifname);
	/* With the interface gone only its pins may be left. */
	for (i = 0; ifindex && i < 2; i++) {
		err = tc_detach(ifindex, points[i]);
		if (!err) {
			found = 1;
		} else if (err != -ENOENT && err != -EINVAL) {
			/* -EINVAL: no clsact qdisc at all. */
			fprintf(stderr, "kvmigctl: detaching from %s %s: %s\n",
				ifname, dir_name[i], strerror(-err));
			failed = 1;
		}
	}
	err = unpin(ifname);
	if (err < 0)
		failed = 1;
	else if (err)
		found = 1;
	if (!found && !failed) {
		if (!ifindex)
			fprintf(stderr, "kvmigctl: no interface '%s'\n", ifname);
		else
			fprintf(stderr, "kvmigctl: no monitor on %s\n", ifname);
		return ifindex ? EXIT_FAILURE : KVMIG_EXIT_NOIF;
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int flow_cmp(const void *a, const void *b)
{
	const struct flow *x = a, *y = b;

	if (x->key.dir != y->key.dir)
		return x->key.dir - y->key.dir;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static int take_sample(int flows_fd, int totals_fd, struct sample *s)
{
	struct kvmig_flow cur, next;
	size_t cap = 0;
	bool first = true;
	__u32 i;

	s->flows = NULL;
	s->nr = 0;
	s->ns = now_ns();
	for (i = 0; i < KVMIG_DIR_MAX; i++)
		if (bpf_map_lookup_elem(totals_fd, &i, &s->tot[i]))
			return -errno;
	while (!bpf_map_get_next_key(flows_fd, first ? NULL : &cur, &next)) {
		first = false;
		cur = next;
		if (s->nr == cap) {
			struct flow *f;

			cap = cap ? 2 * cap : 64;
			f = realloc(s->flows, cap * sizeof(*f));
			if (!f)
				return -ENOMEM;
			s->flows = f;
		}
		if (bpf_map_lookup_elem(flows_fd, &cur, &s->flows[s->nr].st)) {
			if (errno == ENOENT)	/* deleted meanwhile */
				continue;
			return -errno;
		}
		s->flows[s->nr++].key = cur;
	}
	if (errno != ENOENT)
		return -errno;
	qsort(s->flows, s->nr, sizeof(*s->flows), flow_cmp);
	return 0;
}

static __u64 rate(__u64 now, __u64 then, __u64 ns)
{
	return now > then && ns ? (now - then) * 1000000000.0 / ns : 0;
}

static void addr_str(const struct kvmig_flow *k, const __u8 *a, char *buf,
		     size_t size)
{
	if (k->family == KVMIG_FAMILY_INET)
		inet_ntop(AF_INET, a + 12, buf, size);
	else
		inet_ntop(AF_INET6, a, buf, size);
}

static void endpoint_str(const struct kvmig_flow *k, const __u8 *a,
			 __u16 port, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	addr_str(k, a, addr, sizeof(addr));
	snprintf(buf, size, k->family == KVMIG_FAMILY_INET ? "%s:%u" :
		 "[%s]:%u", addr, port);
}

static void print_stats_json(const struct kvmig_flow_stats *st,
			     const struct kvmig_flow_stats *old, __u64 ns)
{
	printf("\"packets\": %llu, \"bytes\": %llu, \"payload_bytes\": %llu",
	       (unsigned long long)st->packets, (unsigned long long)st->bytes,
	       (unsigned long long)st->payload_bytes);
	if (old)
		printf(", \"rate_Bps\": %llu, \"payload_rate_Bps\": %llu",
		       (unsigned long long)rate(st->bytes, old->bytes, ns),
		       (unsigned long long)rate(st->payload_bytes,
						old->payload_bytes, ns));
}

static void print_stats_text(const char *dir, const char *src,
			     const char *dst, const struct kvmig_flow_stats *st,
			     const struct kvmig_flow_stats *old, __u64 ns)
{
	__u64 r;

	printf("%-8s %-45s %-45s %10llu %14llu %14llu", dir, src, dst,
	       (unsigned long long)st->packets, (unsigned long long)st->bytes,
	       (unsigned long long)st->payload_bytes);
	if (old) {
		r = rate(st->bytes, old->bytes, ns);
		printf(" %12llu %9.2f", (unsigned long long)r, r / 1e6);
	}
	printf("\n");
}

static void print_show(const char *ifname, const struct sample *s,
		       const struct sample *old, bool json)
{
	static const struct kvmig_flow_stats zero;
	char src[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8];
	const struct kvmig_flow_stats *o = NULL;
	__u64 ns = old ? s->ns - old->ns : 0;
	size_t i;

	if (json)
		printf("{\"interface\": \"%s\", ", ifname);
	if (json && old)
		printf("\"interval_ms\": %.3f, ", ns / 1e6);
	if (json)
		printf("\"flows\": [");
	else
		printf("%-8s %-45s %-45s %10s %14s %14s%s\n", "DIR", "SOURCE",
		       "DESTINATION", "PACKETS", "BYTES", "PAYLOAD",
		       old ? "      BYTES/S      MB/S" : "");
	for (i = 0; i < s->nr; i++) {
		const struct flow *f = &s->flows[i];
		const struct kvmig_flow *k = &f->key;

		if (old) {
			const struct flow *of;

			of = bsearch(f, old->flows, old->nr, sizeof(*f),
				     flow_cmp);
			o = of ? &of->st : &zero;
		}
		if (!json) {
			endpoint_str(k, k->saddr, k->sport, src, sizeof(src));
			endpoint_str(k, k->daddr, k->dport, dst, sizeof(dst));
			print_stats_text(dir_name[k->dir & 1], src, dst, &f->st,
					 o, ns);
			continue;
		}
		addr_str(k, k->saddr, src, sizeof(src));
		addr_str(k, k->daddr, dst, sizeof(dst));
		printf("%s{\"family\": \"%s\", \"saddr\": \"%s\", \"daddr\": \"%s\", \"sport\": %u, \"dport\": %u, \"dir\": \"%s\", ",
		       i ? ", " : "",
		       k->family == KVMIG_FAMILY_INET ? "ipv4" : "ipv6",
		       src, dst, k->sport, k->dport, dir_name[k->dir & 1]);
		print_stats_json(&f->st, o, ns);
		printf("}");
	}
	if (json)
		printf("], \"totals\": {");
	for (i = 0; i < KVMIG_DIR_MAX; i++) {
		o = old ? &old->tot[i] : NULL;
		if (!json) {
			print_stats_text("total", dir_name[i], "", &s->tot[i],
					 o, ns);
			continue;
		}
		printf("%s\"%s\": {", i ? ", " : "", dir_name[i]);
		print_stats_json(&s->tot[i], o, ns);
		printf("}");
	}
	if (json)
		printf("}}\n");
}

static int mon_show(const char *ifname, __u64 interval_ms, bool json)
{
	struct sample s[2] = { };
	int flows_fd, totals_fd, err, ret = EXIT_FAILURE;

	flows_fd = open_pinned(ifname, "flows");
	if (flows_fd < 0) {
		fprintf(stderr, "kvmigctl: no monitor on %s: %s\n", ifname,
			strerror(-flows_fd));
		return EXIT_FAILURE;
	}
	totals_fd = open_pinned(ifname, "totals");
	if (totals_fd < 0) {
		fprintf(stderr, "kvmigctl: no monitor on %s: %s\n", ifname,
			strerror(-totals_fd));
		goto out_flows;
	}
	err = take_sample(flows_fd, totals_fd, &s[0]);
	if (!err && interval_ms) {
		sleep_until(s[0].ns + interval_ms * 1000000);
		err = take_sample(flows_fd, totals_fd, &s[1]);
	}
	if (err) {
		fprintf(stderr, "kvmigctl: reading the maps of %s: %s\n",
			ifname, strerror(-err));
		goto out;
	}
	if (interval_ms)
		print_show(ifname, &s[1], &s[0], json);
	else
		print_show(ifname, &s[0], NULL, json);
	ret = EXIT_SUCCESS;
out:
	free(s[0].flows);
	free(s[1].flows);
	close(totals_fd);
out_flows:
	close(flows_fd);
	return ret;
}

enum { OPT_MAX_FLOWS = 256 };

int kvmigctl_monitor(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ }
	};
	__u16 ports[KVMIG_MON_MAX_PORTS];
	__u64 v, interval = 0, max_flows = 0;
	int c, nr_ports = 0;
	const char *cmd, *ifname;

	libbpf_set_print(libbpf_print);
	/*
	 * 0, not 1: glibc then also forgets the "+" (stop at the first
	 * non-option) of kvmigctl's own option string, so that options may
	 * follow IFACE here.
	 */
	optind = 0;
	while ((c = getopt_long(argc, argv, "p:i:j", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (opt_u64("port", optarg, 65535, &v) || !v)
				goto usage;
			if (nr_ports == KVMIG_MON_MAX_PORTS) {
				fprintf(stderr, "kvmigctl: at most %d ports\n",
					KVMIG_MON_MAX_PORTS);
				goto usage;
			}
			ports[nr_ports++] = v;
			break;
		case OPT_MAX_FLOWS:
			if (opt_u64("max-flows", optarg, 1 << 20, &max_flows) ||
			    !max_flows)
				goto usage;
			break;
		case 'i':
			if (kvmigctl_opt_ms("interval", optarg, 3600000, &v) ||
			    !v)
				goto usage;
			interval = v;
			break;
		case 'j':
			json = true;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	cmd = argv[optind];
	ifname = argv[optind + 1];
	if (check_ifname(ifname))
		return EXIT_USAGE;
	if (strcmp(cmd, "attach") && (nr_ports || max_flows))
		goto usage;
	if (strcmp(cmd, "show") && interval)
		goto usage;

	if (!strcmp(cmd, "attach")) {
		if (!nr_ports)
			ports[nr_ports++] = KVMIG_DEFAULT_PORT;
		return mon_attach(ifname, ports, nr_ports,
				  max_flows ?: KVMIG_MON_MAX_FLOWS);
	}
	if (!strcmp(cmd, "detach"))
		return mon_detach(ifname);
	if (!strcmp(cmd, "show"))
		return mon_show(ifname, interval, json);
usage:
	fprintf(stderr, "Usage: kvmigctl [--json] COMMAND ...\n");
	kvmigctl_bpf_usage(stderr);
	return EXIT_USAGE;
}

/* Announce. */

#define ANNOUNCE_LEN	60

/* QEMU's announce_self_create() (net/announce.c), byte for byte. */
static void rarp_frame(__u8 *buf, const __u8 *mac)
{
	memset(buf, 0, ANNOUNCE_LEN);
	memset(buf, 0xff, 6);		/* destination: broadcast */
	memcpy(buf + 6, mac, 6);	/* source */
	buf[12] = 0x80;			/* ethertype: RARP, 0x8035 */
	buf[13] = 0x35;
	buf[15] = 1;			/* hardware type: Ethernet */
	buf[16] = 0x08;			/* protocol type: IPv4, 0x0800 */
	buf[18] = 6;			/* hardware address length */
	buf[19] = 4;			/* protocol address length */
	buf[21] = 3;			/* opcode: reverse request */
	memcpy(buf + 22, mac, 6);	/* sender hardware address */
	memcpy(buf + 32, mac, 6);	/* target hardware address */
	/* Both protocol addresses and the padding to 60 bytes are 0. */
}

static int parse_mac(const char *s, __u8 *mac)
{
	unsigned int b[6];
	int i, n = -1;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &n) != 6 || n != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		/* sscanf's %x skips blanks and takes signs: be strict. */
		if (!strchr("0123456789abcdefABCDEF", s[3 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[3 * i + 1]))
			return -EINVAL;
		mac[i] = b[i];
	}
	if (mac[0] & 1)		/* multicast: not a NIC's address */
		return -EINVAL;
	return 0;
}

#define DONE_SEEN_MAX	64

/*
 * Waiting for one destination session's end: @session once @bound (by
 * --session, or chosen at the start as the only destination session
 * running). Until then, the ends seen since the tracepoint was attached
 * are kept in @seen, so that a session that ended while we looked is not
 * missed.
 */
struct done_wait {
	__u64 session;
	bool bound;
	bool done;
	struct kvmig_done_event ev;
	struct kvmig_done_event seen[DONE_SEEN_MAX];
	unsigned int nr_seen;
};

static int on_done(void *ctx, void *data, size_t size)
{
	struct done_wait *w = ctx;
	const struct kvmig_done_event *ev = data;

	if (w->done || size < sizeof(*ev) || ev->role != KVMIG_ROLE_DEST)
		return 0;
	if (!w->bound) {
		if (w->nr_seen < DONE_SEEN_MAX)
			w->seen[w->nr_seen] = *ev;
		w->nr_seen++;
		return 0;
	}
	if (ev->id != w->session)
		return 0;
	w->ev = *ev;
	w->done = true;
	return 0;
}

/*
 * No --session: tie the announcement to the one destination session that
 * is running, or, if none runs yet, to the first that appears. Several
 * at once are refused: announcing one VM's MAC when another VM arrives
 * would move the wrong guest's traffic. 0, or -errno with the reason
 * said.
 */
static int bind_session(struct done_wait *w)
{
	__u64 ids[DONE_SEEN_MAX];
	unsigned int i;
	int n;

	n = kvmigctl_live_dests(ids, DONE_SEEN_MAX);
	if (n < 0) {
		fprintf(stderr, "kvmigctl: cannot list kvmig sessions: %s\n",
			strerror(-n));
		return n;
	}
	if (n > 1 || (!n && w->nr_seen > 1)) {
		fprintf(stderr, "kvmigctl: %d destination sessions: name the one to announce with --session ID (kvmigctl list)\n",
			n > 1 ? n : (int)w->nr_seen);
		return -EEXIST;
	}
	if (n == 1) {
		w->session = ids[0];
	} else if (w->nr_seen == 1) {
		w->session = w->seen[0].id;	/* it ended while we looked */
	} else {
		return 0;			/* none yet: look again */
	}
	w->bound = true;
	fprintf(stderr, "kvmigctl: announcing after destination session %llu\n",
		(unsigned long long)w->session);
	for (i = 0; i < w->nr_seen && i < DONE_SEEN_MAX; i++) {
		if (w->seen[i].id == w->session) {
			w->ev = w->seen[i];
			w->done = true;
		}
	}
	return 0;
}

static int wait_done(struct done_wait *w, __u64 timeout_ms)
{
	struct kvmig_events *skel;
	struct ring_buffer *rb = NULL;
	__u64 deadline = now_ns() + timeout_ms * 1000000;
	int err, ms;

	skel = kvmig_events__open_and_load();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "kvmigctl: loading kvmig_events: %s\n",
			strerror(-err));
		return err;
	}
	libbpf_quiet = true;
	skel->links.kvmig_done =
		bpf_program__attach_raw_tracepoint(skel->progs.kvmig_done,
						   "kvmig_done");
	libbpf_quiet = false;
	if (!skel->links.kvmig_done) {
		err = -errno;
		fprintf(stderr,
			"kvmigctl: attaching to tracepoint kvmig_done: %s%s\n",
			strerror(-err),
			err == -ENOENT ? " (is kvmig.ko loaded?)" : "");
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_done, w,
			      NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "kvmigctl: ring buffer: %s\n", strerror(-err));
		goto out;
	}
	while (!w->done) {
		__u64 now = now_ns();

		/* Events first: the attached tracepoint misses no end. */
		if (!w->bound) {
			err = ring_buffer__consume(rb);
			if (err >= 0)
				err = bind_session(w);
			if (err < 0)
				goto out;
			if (w->done)
				break;
		}
		if (!timeout_ms) {
			ms = -1;
		} else if (now >= deadline) {
			fprintf(stderr,
				"kvmigctl: no end of migration within %llu ms\n",
				(unsigned long long)timeout_ms);
			err = -ETIMEDOUT;
			goto out;
		} else {
			ms = (deadline - now + 999999) / 1000000;
		}
		/* Unbound, look for a destination session every 100 ms. */
		if (!w->bound && (ms < 0 || ms > 100))
			ms = 100;
		err = ring_buffer__poll(rb, ms);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "kvmigctl: polling the ring buffer: %s\n",
				strerror(-err));
			goto out;
		}
	}
	err = 0;
out:
	ring_buffer__free(rb);
	kvmig_events__destroy(skel);
	return err;
}

struct schedule {
	__u64 initial, max, rounds, step;
};

/*
 * qemu_announce_timer_step(): the wait after a frame, when @left frames
 * are still to go.
 */
static __u64 announce_gap(const struct schedule *sc, __u64 left)
{
	__u64 gap = sc->initial + (sc->rounds - left - 1) * sc->step;

	return gap > sc->max ? sc->max : gap;
}

static int announce(int ifindex, const __u8 *mac, const struct schedule *sc,
		    bool json, bool wrapped)
{
	struct kvmig_announce *skel;
	__u8 frame[ANNOUNCE_LEN];
	__u64 n, t, t0 = 0;
	int err;

	rarp_frame(frame, mac);
	skel = kvmig_announce__open_and_load();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "kvmigctl: loading kvmig_announce: %s\n",
			strerror(-err));
		return EXIT_FAILURE;
	}
	if (json)
		printf("%s[", wrapped ? "\"frames\": " : "");
	for (n = 1, t = 0; n <= sc->rounds; n++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame,
			    .data_size_in = sizeof(frame), .repeat = 1);

		if (n > 1)
			sleep_until(t + announce_gap(sc, sc->rounds - n + 1) *
				    1000000);
		skel->bss->ifindex = ifindex;
		skel->bss->result = 0;
		t = now_ns();
		if (n == 1)
			t0 = t;
		err = bpf_prog_test_run_opts(
			bpf_program__fd(skel->progs.kvmig_announce), &opts);
		if (err) {
			fprintf(stderr, "%skvmigctl: BPF_PROG_TEST_RUN: %s\n",
				json ? "\n" : "", strerror(-err));
			goto fail;
		}
		if (skel->bss->result) {
			/* A negative errno, or a positive NET_XMIT_* code. */
			fprintf(stderr, "%skvmigctl: bpf_clone_redirect: %s\n",
				json ? "\n" : "",
				skel->bss->result < 0 ?
				strerror(-skel->bss->result) :
				"dropped by the device");
			goto fail;
		}
		if (json)
			printf("%s{\"n\": %llu, \"t_ms\": %.3f}",
			       n > 1 ? ", " : "", (unsigned long long)n,
			       t / 1e6);
		else
			printf("announce %llu/%llu t=%.3f ms (+%.3f ms)\n",
			       (unsigned long long)n,
			       (unsigned long long)sc->rounds, t / 1e6,
			       (t - t0) / 1e6);
		fflush(stdout);
	}
	if (json)
		printf("]%s\n", wrapped ? "}" : "");
	kvmig_announce__destroy(skel);
	return EXIT_SUCCESS;
fail:
	kvmig_announce__destroy(skel);
	return EXIT_FAILURE;
}

/*
 * Long only: watch has -I (--iface), -r (--role) and -w (--wait), and a
 * short option means one thing in every command.
 */
enum { OPT_INITIAL = 256, OPT_ROUNDS, OPT_WAIT_DONE };

int kvmigctl_announce(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "mac", required_argument, NULL, 'm' },
		{ "initial", required_argument, NULL, OPT_INITIAL },
		{ "max", required_argument, NULL, 'M' },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "step", required_argument, NULL, 's' },
		{ "wait-done", no_argument, NULL, OPT_WAIT_DONE },
		{ "session", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ }
	};
	struct schedule sc = {
		.initial = 50, .max = 550, .rounds = 5, .step = 100,
	};
	struct done_wait w = { };
	const char *mac_arg = NULL;
	__u64 timeout = 0;
	bool wait = false;
	int c, ifindex;
	__u8 mac[6];

	libbpf_set_print(libbpf_print);
	optind = 0;	/* see kvmigctl_monitor() */
	while ((c = getopt_long(argc, argv, "m:M:s:S:t:j", opts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			mac_arg = optarg;
			break;
		case OPT_INITIAL:
			if (kvmigctl_opt_ms("initial", optarg, 3600000,
					    &sc.initial))
				goto usage;
			break;
		case 'M':
			if (kvmigctl_opt_ms("max", optarg, 3600000, &sc.max))
				goto usage;
			break;
		case OPT_ROUNDS:
			if (opt_u64("rounds", optarg, 1000, &sc.rounds))
				goto usage;
			break;
		case 's':
			if (kvmigctl_opt_ms("step", optarg, 3600000, &sc.step))
				goto usage;
			break;
		case OPT_WAIT_DONE:
			wait = true;
			break;
		case 'S':
			if (opt_u64("session", optarg, UINT64_MAX, &w.session))
				goto usage;
			w.bound = true;
			break;
		case 't':
			if (kvmigctl_opt_ms("timeout", optarg, 86400000,
					    &timeout))
				goto usage;
			break;
		case 'j':
			json = true;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 1 || !mac_arg)
		goto usage;
	if (!wait && (w.bound || timeout)) {
		fprintf(stderr, "kvmigctl: --session and --timeout go with --wait-done\n");
		goto usage;
	}
	if (parse_mac(mac_arg, mac)) {
		fprintf(stderr, "kvmigctl: bad MAC address '%s' (want a unicast xx:xx:xx:xx:xx:xx)\n",
			mac_arg);
		return EXIT_USAGE;
	}
	if (check_ifname(argv[optind]))
		return EXIT_USAGE;
	ifindex = ifindex_of(argv[optind]);
	if (!ifindex)
		return KVMIG_EXIT_NOIF;

	if (wait) {
		if (wait_done(&w, timeout))
			return EXIT_FAILURE;
		if (json)
			printf("{\"done\": {\"id\": %llu, \"role\": \"destination\", \"pages\": %llu, \"bytes\": %llu, \"downtime_ns\": %llu, \"t_ms\": %.3f}, ",
			       (unsigned long long)w.ev.id,
			       (unsigned long long)w.ev.pages,
			       (unsigned long long)w.ev.bytes,
			       (unsigned long long)w.ev.downtime_ns,
			       w.ev.ts / 1e6);
		else
			printf("kvmig_done: session %llu role destination pages %llu bytes %llu downtime %.3f ms t=%.3f ms\n",
			       (unsigned long long)w.ev.id,
			       (unsigned long long)w.ev.pages,
			       (unsigned long long)w.ev.bytes,
			       w.ev.downtime_ns / 1e6, w.ev.ts / 1e6);
		fflush(stdout);
	}
	return announce(ifindex, mac, &sc, json, wait);
usage:
	fprintf(stderr, "Usage: kvmigctl [--json] COMMAND ...\n");
	kvmigctl_bpf_usage(stderr);
	return EXIT_USAGE;
}

struct kvmig_done_watch {
	struct kvmig_events *skel;
	struct ring_buffer *rb;
	struct done_wait w;
};

/* Not for announce: any role. */
static int on_any_done(void *ctx, void *data, size_t size)
{
	struct done_wait *w = ctx;
	const struct kvmig_done_event *ev = data;

	if (size < sizeof(*ev))
		return 0;
	/* Any session (watch --all): keep them, kvmig_done_watch_find(). */
	if (!w->session) {
		if (w->nr_seen < DONE_SEEN_MAX)
			w->seen[w->nr_seen++] = *ev;
		return 0;
	}
	if (w->done || ev->id != w->session)
		return 0;
	w->ev = *ev;
	w->done = true;
	return 0;
}

struct kvmig_done_watch *kvmig_done_watch_open(__u64 id)
{
	struct kvmig_done_watch *dw = calloc(1, sizeof(*dw));
	int err = -ENOMEM;

	if (!dw)
		goto fail;
	libbpf_set_print(libbpf_print);
	dw->w.session = id;
	dw->skel = kvmig_events__open_and_load();
	if (!dw->skel) {
		err = -errno;
		goto fail;
	}
	libbpf_quiet = true;
	dw->skel->links.kvmig_done =
		bpf_program__attach_raw_tracepoint(dw->skel->progs.kvmig_done,
						   "kvmig_done");
	libbpf_quiet = false;
	if (!dw->skel->links.kvmig_done) {
		err = -errno;
		goto fail;
	}
	dw->rb = ring_buffer__new(bpf_map__fd(dw->skel->maps.events),
				  on_any_done, &dw->w, NULL);
	if (!dw->rb) {
		err = -errno;
		goto fail;
	}
	return dw;
fail:
	kvmig_done_watch_close(dw);
	errno = -err;
	return NULL;
}

int kvmig_done_watch_check(struct kvmig_done_watch *dw,
			   struct kvmig_done_event *ev)
{
	int err = ring_buffer__consume(dw->rb);

	if (err < 0)
		return err;
	if (!dw->w.done)
		return 0;
	*ev = dw->w.ev;
	return 1;
}

int kvmig_done_watch_find(struct kvmig_done_watch *dw, __u64 id,
			  struct kvmig_done_event *ev)
{
	int err = ring_buffer__consume(dw->rb);
	unsigned int i;

	if (err < 0)
		return err;
	for (i = 0; i < dw->w.nr_seen; i++) {
		if (dw->w.seen[i].id == id) {
			*ev = dw->w.seen[i];
			return 1;
		}
	}
	return 0;
}

void kvmig_done_watch_close(struct kvmig_done_watch *dw)
{
	if (!dw)
		return;
	ring_buffer__free(dw->rb);
	kvmig_events__destroy(dw->skel);
	free(dw);
}
