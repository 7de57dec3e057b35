// SPDX-License-Identifier: GPL-2.0
/*
 * kvmigctl: the operator's thin controller for kvmig.
 *
 * Exit codes: 0 success, 1 a call failed, 2 bad usage, 3 kvmig not loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmig.h"

#define EXIT_USAGE	2
#define EXIT_NOMODULE	3

static const char *dev_path = "/dev/kvmig";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmigctl [--device PATH] COMMAND [--json]\n"
		"\n"
		"Commands:\n"
		"  version     show the module's API version and feature words\n"
		"\n"
		"Options:\n"
		"  -d, --device PATH  kvmig device (default /dev/kvmig)\n"
		"  -j, --json         machine-readable output\n"
		"  -h, --help         this help\n"
		"\n"
		"Exit status: 0 success, 1 a call failed, 2 bad usage,\n"
		"3 kvmig is not loaded (no device node).\n");
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

static int cmd_version(int json)
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "+d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev_path = optarg;
			break;
		case 'j':
			json = 1;
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
	/* Options may also follow the command. */
	for (c = optind + 1; c < argc; c++) {
		if (!strcmp(argv[c], "--json") || !strcmp(argv[c], "-j")) {
			json = 1;
		} else {
			fprintf(stderr, "kvmigctl: unexpected argument '%s'\n",
				argv[c]);
			return EXIT_USAGE;
		}
	}
	if (!strcmp(argv[optind], "version"))
		return cmd_version(json);
	fprintf(stderr, "kvmigctl: unknown command '%s' (see --help)\n",
		argv[optind]);
	return EXIT_USAGE;
}
