/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmigctl's eBPF commands: `monitor` (per-flow TCP throughput of an
 * interface, bpf/kvmig_mon.bpf.c) and `announce` (QEMU's gratuitous RARP
 * after a migration, bpf/kvmig_announce.bpf.c and bpf/kvmig_events.bpf.c).
 */
#ifndef KVMIGCTL_BPF_H
#define KVMIGCTL_BPF_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdio.h>

#include "kvmig_mon.h"

/* The migration port the monitor counts when no --port is given. */
#define KVMIG_DEFAULT_PORT	7001

/* Exit status: the interface does not exist (1-4 are kvmigctl.c's). */
#define KVMIG_EXIT_NOIF		5

/* Our tc filters, on ingress and egress: detach removes exactly these. */
#define KVMIG_TC_HANDLE		0x6b76
#define KVMIG_TC_PRIO		0x6b76

/* The monitor's maps are pinned in KVMIG_PIN_ROOT/<netns inode>/<ifname>/. */
#define KVMIG_BPFFS		"/sys/fs/bpf"
#define KVMIG_PIN_ROOT		KVMIG_BPFFS "/kvmig"

/*
 * A duration option in ms: "250ms", "5s", "1.5s", "2m", or a bare number of
 * ms; at most @max_ms and a whole number of ms. 0, or -EINVAL with the
 * reason on stderr.
 */
int kvmigctl_opt_ms(const char *name, const char *s, __u64 max_ms, __u64 *ms);

/*
 * The ids of the destination sessions that have not ended (not DONE or
 * FAILED), at most @max of them in @ids: their number, or -errno.
 */
int kvmigctl_live_dests(__u64 *ids, int max);

/* argv[0] is the command word ("monitor", "announce"). */
int kvmigctl_monitor(int argc, char **argv, bool json);
int kvmigctl_announce(int argc, char **argv, bool json);
void kvmigctl_bpf_usage(FILE *f);

/*
 * The monitor's totals on @ifname, indexed by KVMIG_DIR_*: 0 or -errno,
 * -ENOENT when no monitor is attached there.
 */
int kvmig_mon_totals(const char *ifname, struct kvmig_flow_stats tot[2]);

/*
 * The kvmig_done tracepoint of session @id, whatever its role, through
 * bpf/kvmig_events.bpf.c: watch uses it to see a completion even when the
 * VMM closes its session before the next sample. open: NULL and errno on
 * failure; check: 1 and *@ev once the event came, 0 before, or -errno.
 */
struct kvmig_done_watch;
struct kvmig_done_watch *kvmig_done_watch_open(__u64 id);
int kvmig_done_watch_check(struct kvmig_done_watch *dw,
			   struct kvmig_done_event *ev);
/* Opened with id 0: the event of session @id, if it came (1), or 0. */
int kvmig_done_watch_find(struct kvmig_done_watch *dw, __u64 id,
			  struct kvmig_done_event *ev);
void kvmig_done_watch_close(struct kvmig_done_watch *dw);

#endif /* KVMIGCTL_BPF_H */
