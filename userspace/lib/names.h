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

#endif /* KVMIG_NAMES_H */
