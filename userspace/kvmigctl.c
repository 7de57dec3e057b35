// SPDX-License-Identifier: GPL-2.0
/*
 * kvmigctl: the operator's thin controller for kvmig.
 *
 * Exit codes: 0 success, 1 a call or the migration failed, 2 bad usage,
 * 3 kvmig not loaded, 4 no such session, 5 no such interface, 6 the
 * migration's outcome is in doubt (watch).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvmig.h"
#include "names.h"
#include "kvmigctl_bpf.h"

#define EXIT_USAGE	2
#define EXIT_NOMODULE	3
#define EXIT_NOSESSION	4
#define EXIT_IN_DOUBT	6

static const char *dev_path = "/dev/kvmig";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmigctl [--device PATH] [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  version            the module's API version and feature words\n"
		"  list [--all]       the migration sessions and their statistics;\n"
		"                     --all includes sessions with no VM, such as\n"
		"                     kvmigctl's own; NOTE says which sources wait\n"
		"                     under the host's limit (queued #N)\n"
		"  watch [ID] [--interval DUR] [--count N] [--wait DUR] [--iface IF]\n"
		"        [--role source|dest]\n"
		"                     a live progress line for session ID (default:\n"
		"                     the newest session still migrating, in that\n"
		"                     role if given): bytes, rate, round, remaining\n"
		"                     and the pre-copy's ETA (\"-\" until known, \">\"\n"
		"                     a lower bound); ends when the session is done\n"
		"                     (exit 0), failed (exit 1), in doubt (exit 6:\n"
		"                     its VMM must have it resolved) or closed. --wait:\n"
		"                     wait that long for the session to appear;\n"
		"                     --iface: add the wire rate measured by the\n"
		"                     eBPF monitor on IF (see monitor)\n"
		"  watch --all [--interval DUR] [--count N] [--wait DUR]\n"
		"                     every migration of this host, a line each:\n"
		"                     running, queued under the host's limit (its\n"
		"                     place and wait), ended; ends when all have\n"
		"                     ended (exit 0 all done, 1 one failed or closed\n"
		"                     unfinished, 6 one in doubt)\n");
	fprintf(f,
		"  check [ID...]      the pre-check's findings of sessions ID (default:\n"
		"                     every session whose handshake ran): each error\n"
		"                     and warning, and whether it refused the\n"
		"                     migration (exit 1 if any session was refused)\n");
	kvmigctl_bpf_usage(f);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -d, --device PATH  kvmig device (default /dev/kvmig)\n"
		"  -j, --json         machine-readable output (one JSON document;\n"
		"                     watch: one JSON object per line)\n"
		"  -h, --help         this help\n"
		"\n"
		"DUR: a duration, 250ms, 5s, 1.5s or 2m; a bare number is ms.\n"
		"\n"
		"Exit status: 0 success, 1 a call or the migration failed, 2 bad\n"
		"usage, 3 kvmig is not loaded (no device node), 4 no such session,\n"
		"5 no such network interface, 6 the migration's outcome is in doubt.\n");
}

static int open_dev(void)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "kvmigctl: %s: %s%s\n", dev_path,
			strerror(errno),
			errno == ENOENT ? " (is kvmig.ko loaded?)" : "");
		exit(errno == ENOENT ? EXIT_NOMODULE : EXIT_FAILURE);
	}
	return fd;
}

static int cmd_version(bool json)
{
	struct kvmig_api api = { };
	__u64 *feat;
	__u32 i;
	int fd = open_dev();

	/* First ask how many feature words there are, then fetch them. */
	if (ioctl(fd, KVMIG_GET_API, &api)) {
		perror("kvmigctl: KVMIG_GET_API");
		return EXIT_FAILURE;
	}
	feat = calloc(api.nr_features ? api.nr_features : 1, sizeof(*feat));
	if (!feat) {
		perror("kvmigctl");
		return EXIT_FAILURE;
	}
	api.features_ptr = (uintptr_t)feat;
	if (ioctl(fd, KVMIG_GET_API, &api)) {
		perror("kvmigctl: KVMIG_GET_API");
		return EXIT_FAILURE;
	}
	close(fd);

	if (json) {
		printf("{\"api_version\": %u, \"features\": [", api.api_version);
		for (i = 0; i < api.nr_features; i++)
			printf("%s\"0x%016" PRIx64 "\"", i ? ", " : "",
			       (uint64_t)feat[i]);
		printf("]}\n");
	} else {
		printf("kvmig API version %u (kvmigctl built for %u)\n",
		       api.api_version, KVMIG_API_VERSION);
		for (i = 0; i < api.nr_features; i++)
			printf("features[%u]  0x%016" PRIx64 "\n", i,
			       (uint64_t)feat[i]);
	}
	free(feat);
	return EXIT_SUCCESS;
}

static const char *state_name(__u32 state)
{
	static const char * const names[] = {
		[KVMIG_STATE_IDLE] = "idle",
		[KVMIG_STATE_ATTACHED] = "attached",
		[KVMIG_STATE_TRACKING] = "tracking",
		[KVMIG_STATE_FAILED] = "failed",
		[KVMIG_STATE_PRECOPY] = "precopy",
		[KVMIG_STATE_RECEIVING] = "receiving",
		[KVMIG_STATE_DONE] = "done",
		[KVMIG_STATE_IN_DOUBT] = "in_doubt",
		[KVMIG_STATE_CHECKED] = "checked",
	};

	return state < sizeof(names) / sizeof(names[0]) && names[state] ?
	       names[state] : "?";
}

static const char *role_name(__u32 role)
{
	return role == KVMIG_ROLE_SOURCE ? "source" :
	       role == KVMIG_ROLE_DEST ? "dest" : "-";
}

/* All sessions, in *@out (malloc'ed); returns their number or -1. */
static int list_sessions(int fd, struct kvmig_session_info **out)
{
	struct kvmig_session_info *info = NULL, *p;
	struct kvmig_list l = { };

	for (;;) {
		if (ioctl(fd, KVMIG_LIST_SESSIONS, &l)) {
			perror("kvmigctl: KVMIG_LIST_SESSIONS");
			free(info);
			return -1;
		}
		if (l.nr_filled == l.nr_sessions)
			break;
		/* Sessions came and went: make room and ask again. */
		p = realloc(info, (l.nr_sessions + 8) * sizeof(*info));
		if (!p) {
			perror("kvmigctl");
			free(info);
			return -1;
		}
		info = p;
		l.nr_sessions += 8;
		l.sessions_ptr = (uintptr_t)info;
	}
	*out = info;
	return l.nr_filled;
}

int kvmigctl_live_dests(__u64 *ids, int max)
{
	struct kvmig_session_info *info = NULL;
	int fd, i, n, live = 0;

	fd = open_dev();
	if (fd < 0)
		return -ENODEV;
	n = list_sessions(fd, &info);
	close(fd);
	if (n < 0)
		return -EIO;
	for (i = 0; i < n; i++) {
		const struct kvmig_stats *st = &info[i].stats;

		if (st->role != KVMIG_ROLE_DEST ||
		    st->state == KVMIG_STATE_DONE ||
		    st->state == KVMIG_STATE_FAILED ||
		    st->state == KVMIG_STATE_CHECKED)
			continue;
		if (live < max)
			ids[live] = st->id;
		live++;
	}
	free(info);
	return live;
}

static const char *priority_name(const struct kvmig_session_info *i)
{
	return i->priority == KVMIG_PRIORITY_HIGH ? "high" : "standard";
}

/*
 * What the NOTE column says of a session: why it failed, that it waits,
 * its priority. Into @buf, which it returns.
 */
static const char *session_note(const struct kvmig_session_info *i,
				char *buf, size_t size)
{
	const struct kvmig_stats *st = &i->stats;

	buf[0] = '\0';
	if (st->state == KVMIG_STATE_FAILED)
		snprintf(buf, size, "%s", kvmig_fail_name(st->fail_reason));
	else if (st->state == KVMIG_STATE_IN_DOUBT)
		snprintf(buf, size, "outcome in doubt: to be resolved");
	else if (i->flags & KVMIG_SESSION_SELF)
		snprintf(buf, size, "(kvmigctl)");
	else if (i->flags & KVMIG_SESSION_QUEUED && i->queue_pos)
		snprintf(buf, size, "queued #%u, %.1f s", i->queue_pos,
			 i->wait_ns / 1e9);
	else if (i->flags & KVMIG_SESSION_QUEUED)
		snprintf(buf, size, "queued at the source");
	if (st->role == KVMIG_ROLE_SOURCE && i->priority == KVMIG_PRIORITY_HIGH)
		snprintf(buf + strlen(buf), size - strlen(buf), "%shigh priority",
			 buf[0] ? ", " : "");
	return buf;
}

static void json_session(const struct kvmig_session_info *i)
{
	const struct kvmig_stats *st = &i->stats;

	printf("{\"id\": %llu, \"pid\": %u, \"self\": %s, \"state\": \"%s\", "
	       "\"role\": \"%s\", \"fail_reason\": %u, \"fail\": \"%s\", "
	       "\"dirty_mode\": %u, \"nr_slots\": %u, \"guest_pages\": %llu, "
	       "\"harvests\": %llu, \"pages_harvested\": %llu, "
	       "\"pages_pending\": %llu, \"harvest_ns\": %llu, "
	       "\"round\": %llu, \"pages_sent\": %llu, \"bytes_sent\": %llu, "
	       "\"zero_pages\": %llu, \"pages_spliced\": %llu, "
	       "\"pages_copied\": %llu, \"pages_received\": %llu, "
	       "\"dirty_rate\": %llu, \"throughput\": %llu, "
	       "\"expected_downtime_ns\": %llu, \"downtime_ns\": %llu, "
	       "\"remaining\": %llu, \"throttle\": \"%s\", "
	       "\"throttle_pct\": %u, \"throttle_ns\": %llu, "
	       "\"hole_pages\": %llu, \"priority\": \"%s\", "
	       "\"queued\": %s, \"queue_pos\": %u, \"wait_ns\": %llu}",
	       (unsigned long long)st->id, i->pid,
	       i->flags & KVMIG_SESSION_SELF ? "true" : "false",
	       state_name(st->state), role_name(st->role), st->fail_reason,
	       kvmig_fail_name(st->fail_reason), st->dirty_mode, st->nr_slots,
	       (unsigned long long)st->guest_pages,
	       (unsigned long long)st->rounds,
	       (unsigned long long)st->pages_harvested,
	       (unsigned long long)st->pages_pending,
	       (unsigned long long)st->harvest_ns,
	       (unsigned long long)st->xfer_round,
	       (unsigned long long)st->pages_sent,
	       (unsigned long long)st->bytes_sent,
	       (unsigned long long)st->zero_pages,
	       (unsigned long long)st->pages_spliced,
	       (unsigned long long)st->pages_copied,
	       (unsigned long long)st->pages_received,
	       (unsigned long long)st->dirty_rate,
	       (unsigned long long)st->throughput,
	       (unsigned long long)st->expected_downtime_ns,
	       (unsigned long long)st->downtime_ns,
	       (unsigned long long)st->remaining,
	       kvmig_throttle_name(st->throttle_policy), st->throttle_pct,
	       (unsigned long long)st->throttle_ns,
	       (unsigned long long)st->hole_pages, priority_name(i),
	       i->flags & KVMIG_SESSION_QUEUED ? "true" : "false",
	       i->queue_pos, (unsigned long long)i->wait_ns);
}

static int cmd_list(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ }
	};
	struct kvmig_session_info *info = NULL;
	bool all = false, first = true;
	int fd, n, i, c;

	optind = 0;	/* a full reset: main() parsed with "+" */
	while ((c = getopt_long(argc, argv, "aj", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'j')
			json = true;
		else
			return EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "kvmigctl: list: unexpected argument '%s'\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	fd = open_dev();
	n = list_sessions(fd, &info);
	close(fd);
	if (n < 0)
		return EXIT_FAILURE;

	if (json)
		printf("[");
	else
		printf("%4s %7s %-6s %-9s %5s %10s %8s %10s %10s %9s %s\n",
		       "ID", "PID", "ROLE", "STATE", "ROUND", "SENT_MiB",
		       "MB/s", "REMAINING", "DIRTY/s", "DOWNTIME", "NOTE");
	for (i = 0; i < n; i++) {
		const struct kvmig_stats *st = &info[i].stats;
		double mib = st->role == KVMIG_ROLE_DEST ?
			     st->pages_received * 4096.0 / (1 << 20) :
			     st->bytes_sent / (double)(1 << 20);
		char dt[32] = "-", note[96];

		/* Sessions with no VM yet (kvmigctl's own, say) only with --all. */
		if (!all && (info[i].flags & KVMIG_SESSION_SELF ||
			     st->state == KVMIG_STATE_IDLE))
			continue;
		if (json) {
			printf("%s", first ? "\n  " : ",\n  ");
			json_session(&info[i]);
			first = false;
			continue;
		}
		if (st->downtime_ns)
			snprintf(dt, sizeof(dt), "%.1fms",
				 st->downtime_ns / 1e6);
		printf("%4llu %7u %-6s %-9s %5llu %10.1f %8.1f %10llu %10llu %9s %s\n",
		       (unsigned long long)st->id, info[i].pid,
		       role_name(st->role), state_name(st->state),
		       (unsigned long long)st->xfer_round, mib,
		       st->throughput / 1e6,
		       (unsigned long long)st->pages_pending,
		       (unsigned long long)st->dirty_rate, dt,
		       session_note(&info[i], note, sizeof(note)));
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	free(info);
	return EXIT_SUCCESS;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Session @id, or with @id 0 the newest one still migrating, in @role if
 * that is not 0.
 */
static int find_session(int fd, __u64 id, __u32 role,
			struct kvmig_session_info *out)
{
	struct kvmig_session_info *info = NULL;
	int n, i, found = 0;

	n = list_sessions(fd, &info);
	if (n < 0)
		return -1;
	for (i = n - 1; i >= 0; i--) {
		const struct kvmig_stats *st = &info[i].stats;

		if (info[i].flags & KVMIG_SESSION_SELF)
			continue;
		if (!id && role && st->role != role)
			continue;
		if (id ? st->id == id :
		    st->state == KVMIG_STATE_TRACKING ||
		    st->state == KVMIG_STATE_PRECOPY ||
		    st->state == KVMIG_STATE_RECEIVING) {
			*out = info[i];
			found = 1;
			break;
		}
	}
	free(info);
	return found;
}

/*
 * The pre-copy's ETA: the pages that remain, at the rate pages go out less
 * the rate at which the guest dirties them (distinct pages per second at
 * the module's last harvest). The send rate is measured over the samples
 * of the last ETA_WINDOW_S seconds, so that the first sample, a moment
 * after the transfer began, does not decide it; until the samples span
 * ETA_MIN_SPAN_S there is no estimate, nor while the guest dirties as fast
 * as pages go out. What the guest dirtied since the last harvest is not
 * in the module's remaining count yet: it is estimated at the dirty rate
 * and added, so that the estimate does not fall by the send rate within a
 * round and jump at the next harvest. Round 0 has no dirty rate yet (its
 * harvest had no interval before it): the estimate then only covers
 * sending what remains, a lower bound. The estimate follows the
 * migration: it rises when the guest speeds up or the link slows, and is
 * never 0 while pages remain.
 */
#define ETA_SAMPLES	32
#define ETA_WINDOW_S	3.0
#define ETA_MIN_SPAN_S	1.0

struct eta {
	double t[ETA_SAMPLES];
	__u64 pages[ETA_SAMPLES];
	unsigned int n, head;	/* valid samples, next slot */
	__u64 round;		/* the round at the last sample */
	double t_harvest;	/* when we first saw it: its harvest */
};

/*
 * Record pages sent at time t; the send rate in pages/s, or -1. Samples
 * are kept at least ETA_WINDOW_S / ETA_SAMPLES apart, so that they span
 * the window at any --interval; the rate is from the oldest kept sample
 * in the window to this one.
 */
static double eta_rate(struct eta *e, double t, __u64 pages)
{
	unsigned int last = (e->head + ETA_SAMPLES - 1) % ETA_SAMPLES, old;

	if (!e->n || t - e->t[last] >= ETA_WINDOW_S / ETA_SAMPLES) {
		e->t[e->head] = t;
		e->pages[e->head] = pages;
		e->head = (e->head + 1) % ETA_SAMPLES;
		if (e->n < ETA_SAMPLES)
			e->n++;
	}
	old = (e->head + ETA_SAMPLES - e->n) % ETA_SAMPLES;
	while (e->n > 2 && t - e->t[old] > ETA_WINDOW_S) {
		old = (old + 1) % ETA_SAMPLES;
		e->n--;
	}
	if (t - e->t[old] < ETA_MIN_SPAN_S || pages < e->pages[old])
		return -1;
	return (pages - e->pages[old]) / (t - e->t[old]);
}

/* Seconds to send @left pages at @send_pps with @dirty_pps dirtied; -1. */
static double eta_of(double left, double send_pps, double dirty_pps)
{
	double eta;

	if (left <= 0)
		return 0;
	if (send_pps <= 0 || send_pps <= dirty_pps)
		return -1;
	eta = left / (send_pps - dirty_pps);
	return eta < 0.001 ? 0.001 : eta;
}

/* printf() at the end of the string in @buf, truncating at @size. */
static void __attribute__((format(printf, 3, 4)))
appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* watch --all: every migration of this host, one line each. */
#define WATCH_ALL_MAX	256

struct watched {
	struct kvmig_session_info si;
	__u64 done_prev;	/* bytes at the sample before */
	double rate;		/* bytes per second, smoothed */
	bool listed;		/* in the last listing */
	bool closed;		/* gone before it ended, as far as we know */
};

static bool state_ended(__u32 state)
{
	return state == KVMIG_STATE_DONE || state == KVMIG_STATE_FAILED ||
	       state == KVMIG_STATE_IN_DOUBT || state == KVMIG_STATE_CHECKED;
}

static bool state_migrating(__u32 state)
{
	return state == KVMIG_STATE_TRACKING || state == KVMIG_STATE_PRECOPY ||
	       state == KVMIG_STATE_RECEIVING;
}

/*
 * A source that has sent pages and not ended: it holds a place under the
 * host's max_outgoing (one that has set up but not called round 0 yet
 * holds none, and is not queued either).
 */
static bool watched_sending(const struct kvmig_stats *st)
{
	return st->role == KVMIG_ROLE_SOURCE &&
	       st->state == KVMIG_STATE_PRECOPY &&
	       st->pages_sent + st->zero_pages > 0;
}

static bool watched_ended(const struct watched *w)
{
	return w->closed || state_ended(w->si.stats.state);
}

static __u64 watched_bytes(const struct kvmig_stats *st)
{
	return st->role == KVMIG_ROLE_DEST ? st->pages_received * 4096ULL :
	       st->bytes_sent;
}

/* Take a listing into @w: new migrations join, gone ones are settled. */
static int watch_all_sample(int fd, struct watched *w, unsigned int *nr,
			    struct kvmig_done_watch *dw, double dt)
{
	struct kvmig_session_info *info = NULL;
	struct kvmig_done_event ev;
	unsigned int j;
	int n, i;

	n = list_sessions(fd, &info);
	if (n < 0)
		return -1;
	for (j = 0; j < *nr; j++)
		w[j].listed = false;
	for (i = 0; i < n; i++) {
		const struct kvmig_stats *st = &info[i].stats;

		if (info[i].flags & KVMIG_SESSION_SELF)
			continue;
		for (j = 0; j < *nr && w[j].si.stats.id != st->id; j++)
			;
		/* Only migrations that were under way when seen first. */
		if (j == *nr) {
			if (!state_migrating(st->state) ||
			    *nr == WATCH_ALL_MAX)
				continue;
			memset(&w[j], 0, sizeof(w[j]));
			w[j].done_prev = watched_bytes(st);
			(*nr)++;
		}
		if (dt > 0) {
			double inst = (watched_bytes(st) - w[j].done_prev) / dt;

			w[j].rate = w[j].rate ? 0.5 * w[j].rate + 0.5 * inst :
				    inst;
		}
		w[j].done_prev = watched_bytes(st);
		w[j].si = info[i];
		w[j].listed = true;
	}
	free(info);
	/* Closed between two samples: done, if the tracepoint said so. */
	for (j = 0; j < *nr; j++) {
		if (w[j].listed || watched_ended(&w[j]))
			continue;
		if (dw && kvmig_done_watch_find(dw, w[j].si.stats.id,
						&ev) == 1) {
			w[j].si.stats.state = KVMIG_STATE_DONE;
			w[j].si.stats.downtime_ns = ev.downtime_ns;
			w[j].si.flags &= ~KVMIG_SESSION_QUEUED;
			w[j].si.queue_pos = 0;
		} else {
			w[j].closed = true;
		}
	}
	return 0;
}

static void watch_all_line(const struct watched *w, char *line, size_t size)
{
	const struct kvmig_stats *st = &w->si.stats;
	char note[96];

	snprintf(line, size,
		 "session %4llu %-6s %-9s round %2llu %9.1f MiB %7.1f MB/s",
		 (unsigned long long)st->id, role_name(st->role),
		 w->closed ? "closed" : state_name(st->state),
		 (unsigned long long)st->xfer_round,
		 watched_bytes(st) / (double)(1 << 20), w->rate / 1e6);
	/* Before its round 0 a source has counted nothing yet. */
	if (watched_sending(st))
		appendf(line, size, "  remaining %8llu pages",
			(unsigned long long)st->remaining);
	if (st->state == KVMIG_STATE_DONE && st->downtime_ns)
		appendf(line, size, "  downtime %.1f ms", st->downtime_ns / 1e6);
	session_note(&w->si, note, sizeof(note));
	if (note[0])
		appendf(line, size, "  %s", note);
}

static int watch_all(unsigned long interval_ms, unsigned long count,
		     double wait_s, bool json)
{
	static struct watched w[WATCH_ALL_MAX];
	static char prev[WATCH_ALL_MAX][256];
	unsigned int nr = 0, j, running, queued, ended;
	struct kvmig_done_watch *dw;
	bool tty = isatty(1), doubt = false, failed = false;
	double t0 = now_s(), t, t_prev = 0;
	unsigned long n = 0;
	char line[256];
	int fd;

	fd = open_dev();
	dw = kvmig_done_watch_open(0);
	if (!dw)
		fprintf(stderr, "kvmigctl: watch: no completion events (%s); a session closed between samples shows as closed\n",
			strerror(errno));
	for (;;) {
		t = now_s();
		if (watch_all_sample(fd, w, &nr, dw, n ? t - t_prev : 0)) {
			kvmig_done_watch_close(dw);
			close(fd);
			return EXIT_FAILURE;
		}
		t_prev = t;
		if (!nr) {
			if (t - t0 >= wait_s) {
				fprintf(stderr, "kvmigctl: watch: no session is migrating\n");
				kvmig_done_watch_close(dw);
				close(fd);
				return EXIT_NOSESSION;
			}
			usleep(50000);
			continue;
		}
		running = queued = ended = 0;
		for (j = 0; j < nr; j++) {
			if (watched_ended(&w[j]))
				ended++;
			else if (w[j].si.flags & KVMIG_SESSION_QUEUED)
				queued++;
			else if (watched_sending(&w[j].si.stats))
				running++;
		}
		if (json) {
			printf("{\"t\": %.3f, \"sending\": %u, \"queued\": %u, \"ended\": %u, \"sessions\": [",
			       t - t0, running, queued, ended);
			for (j = 0; j < nr; j++) {
				const struct kvmig_stats *st = &w[j].si.stats;

				printf("%s{\"id\": %llu, \"role\": \"%s\", \"state\": \"%s\", "
				       "\"priority\": \"%s\", \"queued\": %s, \"queue_pos\": %u, "
				       "\"wait_ns\": %llu, \"round\": %llu, \"bytes\": %llu, "
				       "\"pages\": %llu, \"rate_Bps\": %.0f, "
				       "\"remaining_pages\": %llu}",
				       j ? ", " : "", (unsigned long long)st->id,
				       role_name(st->role),
				       w[j].closed ? "closed" : state_name(st->state),
				       priority_name(&w[j].si),
				       w[j].si.flags & KVMIG_SESSION_QUEUED ?
				       "true" : "false", w[j].si.queue_pos,
				       (unsigned long long)w[j].si.wait_ns,
				       (unsigned long long)st->xfer_round,
				       (unsigned long long)watched_bytes(st),
				       (unsigned long long)(st->role == KVMIG_ROLE_DEST ?
				       st->pages_received : st->pages_sent) +
				       st->zero_pages,
				       w[j].rate,
				       (unsigned long long)st->remaining);
			}
			printf("]}\n");
		} else {
			/* A terminal gets the whole table again; a file, changes. */
			if (tty)
				printf("\033[H\033[J");
			if (tty || !n)
				printf("%.1f s: %u sources sending, %u queued, %u ended\n",
				       t - t0, running, queued, ended);
			for (j = 0; j < nr; j++) {
				watch_all_line(&w[j], line, sizeof(line));
				if (tty)
					printf("%s\n", line);
				else if (strcmp(line, prev[j]))
					printf("%6.1f %s\n", t - t0, line);
				strcpy(prev[j], line);
			}
		}
		fflush(stdout);
		n++;
		if (ended == nr || (count && n >= count))
			break;
		usleep(interval_ms * 1000);
	}
	kvmig_done_watch_close(dw);
	close(fd);
	for (j = 0; j < nr; j++) {
		doubt |= w[j].si.stats.state == KVMIG_STATE_IN_DOUBT;
		failed |= w[j].closed ||
			  w[j].si.stats.state == KVMIG_STATE_FAILED;
	}
	if (ended < nr)
		return EXIT_SUCCESS;	/* --count: still under way */
	return doubt ? EXIT_IN_DOUBT : failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_watch(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ "iface", required_argument, NULL, 'I' },
		{ "role", required_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ }
	};
	bool all = false;
	double t, t0, t_prev = 0, rate = 0, wire = 0, wait_s = 0, left, eta;
	double ahead;
	char line[256], prev[256] = "";
	bool eta_min;
	unsigned long interval_ms = 500, count = 0, n = 0;
	struct kvmig_flow_stats tot[2], tot_prev[2];
	__u64 id = 0, done_prev = 0, done, ms = 0;
	__u32 role = 0;
	struct kvmig_session_info si;
	const struct kvmig_stats *st = &si.stats;
	struct kvmig_done_watch *dw;
	struct kvmig_done_event ev;
	bool done_ev = false;
	const char *iface = NULL;
	bool tty = isatty(1), have_wire = false;
	struct eta e = { };
	char *end;
	int fd, c, r, ret;

	optind = 0;	/* a full reset: main() parsed with "+" */
	while ((c = getopt_long(argc, argv, "i:c:w:I:r:aj", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'i':
			if (kvmigctl_opt_ms("interval", optarg, 3600000, &ms) ||
			    !ms)
				return EXIT_USAGE;
			interval_ms = ms;
			break;
		case 'c':
			count = strtoul(optarg, &end, 0);
			if (*end) {
				fprintf(stderr, "kvmigctl: watch: bad --count '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'w':
			if (kvmigctl_opt_ms("wait", optarg, 86400000, &ms))
				return EXIT_USAGE;
			wait_s = ms / 1e3;
			break;
		case 'I':
			iface = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "source")) {
				role = KVMIG_ROLE_SOURCE;
			} else if (!strcmp(optarg, "dest")) {
				role = KVMIG_ROLE_DEST;
			} else {
				fprintf(stderr, "kvmigctl: watch: --role source or dest\n");
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (all) {
		if (optind < argc || iface || role) {
			fprintf(stderr, "kvmigctl: watch: --all takes no session id, --iface or --role\n");
			return EXIT_USAGE;
		}
		return watch_all(interval_ms, count, wait_s, json);
	}
	if (optind < argc) {
		id = strtoull(argv[optind], &end, 0);
		if (*end || !id || optind + 1 < argc) {
			fprintf(stderr, "kvmigctl: watch: bad session id '%s'\n",
				argv[optind]);
			return EXIT_USAGE;
		}
	}
	if (iface) {
		ret = kvmig_mon_totals(iface, tot_prev);
		if (ret) {
			fprintf(stderr, "kvmigctl: watch: no eBPF monitor on '%s': %s (see 'monitor attach')\n",
				iface, strerror(-ret));
			return ret == -ENODEV ? KVMIG_EXIT_NOIF : EXIT_FAILURE;
		}
	}

	fd = open_dev();
	t0 = now_s();
	while (!(r = find_session(fd, id, role, &si))) {
		if (now_s() - t0 >= wait_s) {
			if (id)
				fprintf(stderr, "kvmigctl: watch: no session %llu\n",
					(unsigned long long)id);
			else
				fprintf(stderr, "kvmigctl: watch: no session is migrating\n");
			close(fd);
			return EXIT_NOSESSION;
		}
		usleep(50000);
	}
	if (r < 0) {
		close(fd);
		return EXIT_FAILURE;
	}
	id = st->id;
	/*
	 * A VMM may close its session right after completing: the done
	 * tracepoint tells, whenever we sample.
	 */
	dw = kvmig_done_watch_open(id);
	if (!dw)
		fprintf(stderr, "kvmigctl: watch: no completion events (%s); sampling only\n",
			strerror(errno));

	for (;;) {
		t = now_s();
		done = st->role == KVMIG_ROLE_DEST ?
		       st->pages_received * 4096ULL :
		       st->bytes_sent;
		if (n && t > t_prev) {
			double inst = (done - done_prev) / (t - t_prev);

			rate = n == 1 ? inst : 0.5 * rate + 0.5 * inst;
		}
		if (iface && !kvmig_mon_totals(iface, tot)) {
			if (n && t > t_prev)
				wire = (tot[0].bytes + tot[1].bytes -
					tot_prev[0].bytes - tot_prev[1].bytes) /
				       (t - t_prev);
			memcpy(tot_prev, tot, sizeof(tot));
			have_wire = n > 0;
		}
		/*
		 * What is left goes at the send rate, less what the guest
		 * dirties meanwhile; no estimate while that is not positive.
		 */
		left = st->role != KVMIG_ROLE_SOURCE ? -1 :
		       st->state == KVMIG_STATE_TRACKING ?
		       st->pages_pending * 4096.0 : st->remaining * 4096.0;
		eta_min = st->state == KVMIG_STATE_PRECOPY && !st->xfer_round;
		/* Each round begins with the harvest that measures the rate. */
		if (!n || st->xfer_round != e.round) {
			e.round = st->xfer_round;
			e.t_harvest = t;
		}
		/* Dirtied since the last harvest, at most all of the guest. */
		ahead = left / 4096;
		if (left > 0 && !eta_min) {
			ahead += st->dirty_rate * (t - e.t_harvest);
			if (st->guest_pages && ahead > st->guest_pages)
				ahead = st->guest_pages;
		}
		/* The send rate is measured in pre-copy only. */
		eta = st->state == KVMIG_STATE_PRECOPY ?
		      eta_rate(&e, t, st->pages_sent) : -1;
		if (left < 0)
			eta = -1;
		else if (st->state == KVMIG_STATE_DONE)
			eta = 0;
		else if (eta >= 0)
			eta = eta_of(ahead, eta,
				     eta_min ? 0 : (double)st->dirty_rate);
		else
			eta = -1;

		if (json) {
			printf("{\"t\": %.3f, \"id\": %llu, \"role\": \"%s\", \"state\": \"%s\", "
			       "\"round\": %llu, \"bytes\": %llu, \"rate_Bps\": %.0f, "
			       "\"remaining_pages\": %llu, \"eta_s\": ",
			       t - t0, (unsigned long long)id,
			       role_name(st->role), state_name(st->state),
			       (unsigned long long)st->xfer_round,
			       (unsigned long long)done, rate,
			       (unsigned long long)(left > 0 ? left / 4096 : 0));
			if (eta >= 0)
				printf("%.3f, \"eta_is_min\": %s", eta,
				       eta_min ? "true" : "false");
			else
				printf("null");
			if (have_wire)
				printf(", \"wire_Bps\": %.0f", wire);
			printf(", \"dirty_rate_pps\": %llu, \"throttle\": \"%s\", "
			       "\"throttle_pct\": %u}\n",
			       (unsigned long long)st->dirty_rate,
			       kvmig_throttle_name(st->throttle_policy),
			       st->throttle_pct);
		} else {
			line[0] = '\0';
			appendf(line, sizeof(line),
				"session %llu %s %-9s round %2llu  %9.1f MiB  %7.1f MB/s",
				(unsigned long long)id, role_name(st->role),
				state_name(st->state),
				(unsigned long long)st->xfer_round,
				done / (double)(1 << 20), rate / 1e6);
			if (have_wire)
				appendf(line, sizeof(line), "  wire %7.1f MB/s",
					wire / 1e6);
			if (left >= 0)
				appendf(line, sizeof(line),
					"  remaining %8.0f pages", left / 4096);
			if (left >= 0 && eta >= 0.1)
				appendf(line, sizeof(line), "  ETA %s%6.1f s",
					eta_min ? ">" : " ", eta);
			else if (left > 0 && eta > 0)
				appendf(line, sizeof(line), "  ETA    <0.1 s");
			else if (left >= 0 && eta == 0)
				appendf(line, sizeof(line), "  ETA      0 s");
			else if (left >= 0)
				appendf(line, sizeof(line), "  ETA       - ");
			if (st->throttle_policy)
				appendf(line, sizeof(line), "  throttle %s %2u%%",
					kvmig_throttle_name(st->throttle_policy),
					st->throttle_pct);
			/* Off a terminal, a line per change, not per sample. */
			if (tty)
				printf("\r\033[K%s", line);
			else if (strcmp(line, prev))
				printf("%s\n", line);
			strcpy(prev, line);
		}
		fflush(stdout);
		done_prev = done;
		t_prev = t;
		n++;

		/* In doubt is as far as a session goes on its own. */
		if (st->state == KVMIG_STATE_DONE ||
		    st->state == KVMIG_STATE_FAILED ||
		    st->state == KVMIG_STATE_IN_DOUBT ||
		    st->state == KVMIG_STATE_CHECKED)
			break;
		if (count && n >= count)
			break;
		usleep(interval_ms * 1000);
		r = find_session(fd, id, role, &si);
		if (dw && kvmig_done_watch_check(dw, &ev) == 1)
			done_ev = true;
		if (r < 0)
			break;
		if (!r && done_ev) {
			/* Completed and closed between two samples. */
			si.stats.state = KVMIG_STATE_DONE;
			si.stats.downtime_ns = ev.downtime_ns;
			if (st->role == KVMIG_ROLE_SOURCE)
				si.stats.bytes_sent = ev.bytes;
			else
				si.stats.pages_received = ev.pages;
			si.stats.pages_pending = 0;
			si.stats.remaining = 0;
			continue;
		}
		if (!r) {
			if (json)
				printf("{\"id\": %llu, \"state\": \"closed\"}\n",
				       (unsigned long long)id);
			else
				printf("%ssession %llu closed before it completed\n",
				       tty ? "\n" : "", (unsigned long long)id);
			kvmig_done_watch_close(dw);
			close(fd);
			return EXIT_FAILURE;
		}
	}
	kvmig_done_watch_close(dw);
	close(fd);
	if (r < 0)
		return EXIT_FAILURE;
	if (!json) {
		if (tty)
			printf("\n");
		if (st->state == KVMIG_STATE_DONE && st->downtime_ns)
			printf("session %llu done: downtime %.1f ms\n",
			       (unsigned long long)id, st->downtime_ns / 1e6);
		else if (st->state == KVMIG_STATE_DONE)
			printf("session %llu done\n", (unsigned long long)id);
		else if (st->state == KVMIG_STATE_FAILED)
			printf("session %llu failed: %s\n",
			       (unsigned long long)id,
			       kvmig_fail_name(st->fail_reason));
		else if (st->state == KVMIG_STATE_IN_DOUBT)
			printf("session %llu in doubt: its VMM must neither resume nor discard the VM until the orchestrator resolves it\n",
			       (unsigned long long)id);
	}
	if (st->state == KVMIG_STATE_IN_DOUBT)
		return EXIT_IN_DOUBT;
	return st->state == KVMIG_STATE_FAILED ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* How many of @argv's arguments are --json. */
static int json_args(int argc, char **argv)
{
	int a, n = 0;

	for (a = 1; a < argc; a++)
		n += !strcmp(argv[a], "--json") || !strcmp(argv[a], "-j");
	return n;
}

/* Session @id's findings, printed; 1 if it was refused, -1 if gone. */
static int check_one(int fd, const struct kvmig_session_info *info,
		     bool json, bool *first)
{
	struct kvmig_finding f[KVMIG_MAX_FINDINGS];
	struct kvmig_check c = { .nr_findings = KVMIG_MAX_FINDINGS,
				 .findings_ptr = (uintptr_t)f,
				 .id = info->stats.id };
	const char *role = role_name(info->stats.role);
	const char *state = state_name(info->stats.state);
	const char *sev, *status;
	unsigned long long id;
	char text[256];
	__u32 i;

	if (ioctl(fd, KVMIG_GET_CHECK, &c))
		return -1;
	id = c.id;
	status = kvmig_check_status_name(c.status);
	if (json)
		printf("%s{\"id\": %llu, \"pid\": %u, \"role\": \"%s\", \"state\": \"%s\", \"status\": \"%s\", \"findings\": [",
		       *first ? "\n  " : ",\n  ", id, info->pid, role, state,
		       status);
	else
		printf("session %llu (pid %u, %s, %s): pre-check %s\n", id,
		       info->pid, role, state, status);
	for (i = 0; i < c.nr_filled; i++) {
		kvmig_finding_text(&f[i], text, sizeof(text));
		sev = f[i].severity == KVMIG_CHECK_ERROR ? "error" : "warning";
		if (!json) {
			printf("  %-7s %-18s %s\n", sev,
			       kvmig_finding_name(f[i].code), text);
			continue;
		}
		printf("%s\n    {\"severity\": \"%s\", \"code\": %u, \"name\": \"%s\", \"function\": %u, \"index\": %u, \"reg\": %u, \"bits\": %u, \"source\": %llu, \"dest\": %llu, \"text\": \"%s\"}",
		       i ? "," : "", sev, f[i].code,
		       kvmig_finding_name(f[i].code), f[i].function,
		       f[i].index, f[i].reg, f[i].bits,
		       (unsigned long long)f[i].source,
		       (unsigned long long)f[i].dest, text);
	}
	if (json)
		printf("%s]}", c.nr_filled ? "\n  " : "");
	*first = false;
	return c.status == KVMIG_CHECK_REFUSED;
}

static int cmd_check(int argc, char **argv, bool json)
{
	struct kvmig_session_info *info = NULL;
	int fd, n, i, a, ret = EXIT_SUCCESS, r;
	bool first = true, found;
	char *end;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--json") || !strcmp(argv[a], "-j")) {
			json = true;
			continue;
		}
		strtoull(argv[a], &end, 10);
		if (!*argv[a] || *end) {
			fprintf(stderr, "kvmigctl: check: '%s' is not a session id\n",
				argv[a]);
			return EXIT_USAGE;
		}
	}
	fd = open_dev();
	n = list_sessions(fd, &info);
	if (n < 0)
		return EXIT_FAILURE;
	if (json)
		printf("[");
	for (a = 1; a < argc; a++) {
		unsigned long long id;

		if (argv[a][0] == '-')
			continue;
		id = strtoull(argv[a], NULL, 10);
		for (i = 0, found = false; i < n && !found; i++) {
			if (info[i].stats.id != id)
				continue;
			found = true;
			r = check_one(fd, &info[i], json, &first);
			if (r > 0)
				ret = EXIT_FAILURE;
			else if (r < 0)
				found = false;
		}
		if (!found) {
			fprintf(stderr, "kvmigctl: check: no session %llu\n", id);
			ret = EXIT_NOSESSION;
		}
	}
	for (i = 0; i < n && argc == 1 + json_args(argc, argv); i++) {
		/* By default, the sessions whose handshake got somewhere. */
		if (info[i].flags & KVMIG_SESSION_SELF ||
		    info[i].stats.state == KVMIG_STATE_IDLE ||
		    info[i].stats.state == KVMIG_STATE_ATTACHED ||
		    info[i].stats.state == KVMIG_STATE_TRACKING)
			continue;
		if (check_one(fd, &info[i], json, &first) > 0)
			ret = EXIT_FAILURE;
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	close(fd);
	free(info);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	bool json = false;
	char **sub;
	int nsub, c;

	while ((c = getopt_long(argc, argv, "+d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv + optind;
	nsub = argc - optind;
	if (!strcmp(sub[0], "version")) {
		for (c = 1; c < nsub; c++) {
			if (strcmp(sub[c], "--json") && strcmp(sub[c], "-j")) {
				fprintf(stderr, "kvmigctl: unexpected argument '%s'\n",
					sub[c]);
				return EXIT_USAGE;
			}
			json = true;
		}
		return cmd_version(json);
	}
	if (!strcmp(sub[0], "list"))
		return cmd_list(nsub, sub, json);
	if (!strcmp(sub[0], "check"))
		return cmd_check(nsub, sub, json);
	if (!strcmp(sub[0], "watch"))
		return cmd_watch(nsub, sub, json);
	if (!strcmp(sub[0], "monitor"))
		return kvmigctl_monitor(nsub, sub, json);
	if (!strcmp(sub[0], "announce"))
		return kvmigctl_announce(nsub, sub, json);
	if (!strcmp(sub[0], "help")) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	fprintf(stderr, "kvmigctl: unknown command '%s' (see --help)\n", sub[0]);
	return EXIT_USAGE;
}
