/* SPDX-License-Identifier: GPL-2.0 */
/* Names of kvmig's UAPI values, as kvmigctl and the demo print them. */
#ifndef KVMIG_NAMES_H
#define KVMIG_NAMES_H

#include <stdint.h>
#include "kvmig.h"

static inline const char *kvmig_throttle_name(uint32_t policy)
{
	switch (policy) {
	case KVMIG_THROTTLE_OFF:
		return "off";
	case KVMIG_THROTTLE_AUTO:
		return "auto";
	case KVMIG_THROTTLE_RATE:
		return "rate";
	}
	return "?";
}

/* Why a session failed (struct kvmig_stats.fail_reason), KVMIG_FAIL_*. */
static inline const char *kvmig_fail_name(uint32_t reason)
{
	switch (reason) {
	case KVMIG_FAIL_NONE:
		return "none";
	case KVMIG_FAIL_MEMSLOTS:
		return "memslots changed";
	case KVMIG_FAIL_RING_STOLEN:
		return "dirty ring reaped by another harvester";
	case KVMIG_FAIL_LAYOUT:
		return "peer memslot layout differs";
	case KVMIG_FAIL_PROTOCOL:
		return "malformed stream from the peer";
	case KVMIG_FAIL_IO:
		return "connection failed or timed out";
	case KVMIG_FAIL_CANCELLED:
		return "cancelled";
	case KVMIG_FAIL_PEER:
		return "the peer failed";
	case KVMIG_FAIL_LOCAL:
		return "guest memory not accessible";
	case KVMIG_FAIL_ABORTED:
		return "aborted";
	case KVMIG_FAIL_STREAMS:
		return "peer streams differ in number or order";
	}
	return "?";
}

#endif /* KVMIG_NAMES_H */
