/* SPDX-License-Identifier: GPL-2.0 */
/* Names of kvmig's UAPI values, as kvmigctl and the demo print them. */
#ifndef KVMIG_NAMES_H
#define KVMIG_NAMES_H

#include <stdint.h>
#include <stdio.h>
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
	case KVMIG_FAIL_CHECK:
		return "refused by the pre-check";
	}
	return "?";
}

/* struct kvmig_check.status, KVMIG_CHECK_* */
static inline const char *kvmig_check_status_name(uint32_t status)
{
	switch (status) {
	case KVMIG_CHECK_NOT_RUN:
		return "not run";
	case KVMIG_CHECK_PASSED:
		return "passed";
	case KVMIG_CHECK_WARNED:
		return "passed with warnings";
	case KVMIG_CHECK_REFUSED:
		return "refused";
	}
	return "?";
}

/* A finding's short name (struct kvmig_finding.code). */
static inline const char *kvmig_finding_name(uint32_t code)
{
	switch (code) {
	case KVMIG_CHECK_E_UUID:
		return "uuid";
	case KVMIG_CHECK_E_LAYOUT:
		return "layout";
	case KVMIG_CHECK_E_VCPUS:
		return "vcpus";
	case KVMIG_CHECK_E_CPUID:
		return "cpuid";
	case KVMIG_CHECK_W_UUID:
		return "uuid-one-side";
	case KVMIG_CHECK_W_DIRTY:
		return "dirty-ring";
	case KVMIG_CHECK_W_NO_CPUID:
		return "cpuid-not-compared";
	case KVMIG_CHECK_W_CPUID_VCPUS:
		return "cpuid-vcpus-differ";
	case KVMIG_CHECK_W_CPUID_UNREAD:
		return "cpuid-unread";
	case KVMIG_CHECK_W_CPUID_LEAF:
		return "cpuid-leaf";
	case KVMIG_CHECK_W_MANUAL:
		return "manual-protect";
	}
	return "unknown";
}

/* What a finding means, in words, into @buf. */
static inline void kvmig_finding_text(const struct kvmig_finding *f,
				      char *buf, size_t len)
{
	static const char *const reg[] = { "eax", "ebx", "ecx", "edx" };
	unsigned long long s = f->source, d = f->dest;

	switch (f->code) {
	case KVMIG_CHECK_E_UUID:
		snprintf(buf, len, "the two VMs' identities differ");
		break;
	case KVMIG_CHECK_E_LAYOUT:
		snprintf(buf, len, "memslot layout differs from slot %u on",
			 f->index);
		break;
	case KVMIG_CHECK_E_VCPUS:
		snprintf(buf, len, "%llu vCPUs at the source, %llu at the destination",
			 s, d);
		break;
	case KVMIG_CHECK_E_CPUID:
		snprintf(buf, len, "CPUID %#x.%u %s bits %#x: the guest sees them, the destination lacks them (guest %#llx, destination %#llx)",
			 f->function, f->index, reg[f->reg & 3], f->bits, s, d);
		break;
	case KVMIG_CHECK_W_UUID:
		snprintf(buf, len, "only the %s named an identity: not compared",
			 s ? "source" : "destination");
		break;
	case KVMIG_CHECK_W_DIRTY:
		snprintf(buf, len, "dirty ring of %llu bytes per vCPU at the source, %llu at the destination",
			 s, d);
		break;
	case KVMIG_CHECK_W_NO_CPUID:
		snprintf(buf, len, "the destination passed no supported CPUID: not compared");
		break;
	case KVMIG_CHECK_W_CPUID_VCPUS:
		snprintf(buf, len, "vCPU %u's CPUID features differ from vCPU 0's",
			 f->index);
		break;
	case KVMIG_CHECK_W_CPUID_UNREAD:
		snprintf(buf, len, "vCPU %u's CPUID was not read (it never ran and was busy)",
			 f->index);
		break;
	case KVMIG_CHECK_W_CPUID_LEAF:
		snprintf(buf, len, "the guest's highest CPUID leaf %#llx is above the destination's %#llx",
			 s, d);
		break;
	case KVMIG_CHECK_W_MANUAL:
		snprintf(buf, len, "manual dirty-log protect %s at the source, %s at the destination",
			 s ? "on" : "off", d ? "on" : "off");
		break;
	default:
		snprintf(buf, len, "code %u, leaf %#x.%u reg %u bits %#x, source %llu, destination %llu",
			 f->code, f->function, f->index, f->reg, f->bits, s, d);
	}
}

#endif /* KVMIG_NAMES_H */
