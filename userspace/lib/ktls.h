/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kTLS for kvmig's connections. kvmig sends and receives through a kTLS
 * socket unchanged: the VMM makes the TLS handshake in userspace and
 * installs the keys (TCP_ULP "tls", SOL_TLS TLS_TX and TLS_RX) before it
 * hands the socket in with KVMIG_XFER_SETUP.
 *
 * ktls_handshake() (ktls.c, OpenSSL 3, link with -lssl -lcrypto) makes a
 * TLS 1.3 handshake authenticated by a pre-shared key both hosts have and
 * installs the keys it agreed on. The static inline helpers below need no
 * OpenSSL: they install keys a program already has, or random ones on both
 * ends of a local pair (benchmarks, tests: no handshake at all).
 */
#ifndef KVMIG_KTLS_H
#define KVMIG_KTLS_H

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS		282
#endif
#ifndef TCP_ULP
#define TCP_ULP		31
#endif

/* The pre-shared key: at least 32 bytes (256 bits), at most 128. */
#define KTLS_PSK_MIN	32
#define KTLS_PSK_MAX	128
/* A handshake's reads and writes each wait this long at most, by default. */
#define KTLS_TIMEOUT_MS	10000

/* What this library negotiates, for messages and reports. */
#define KTLS_DESCRIPTION "TLS 1.3, AES-128-GCM, kTLS"

/* One end's keys: it sends with @tx and receives with @rx. */
struct ktls_keys {
	struct tls12_crypto_info_aes_gcm_128 tx, rx;
};

/*
 * Whether this kernel has kTLS: the "tls" upper layer protocol, loaded on
 * demand if the caller may (CAP_NET_ADMIN). Asked on a socket that is not
 * connected: the kernel looks the ULP up (ENOENT: none) before it refuses
 * to attach it there (ENOTCONN). Nothing is attached.
 */
static inline bool ktls_available(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return true;	/* let the real attempt say what is wrong */
	ok = !setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	     errno != ENOENT;
	close(fd);
	return ok;
}

/*
 * Makes connected TCP socket @fd kTLS with @k. 0, or -errno: -ENOENT, this
 * kernel has no kTLS (modprobe tls). A "tls" ULP already attached (by a TLS
 * library that offloads, say) is used as it is; keys already installed in
 * a direction make that setsockopt fail (EBUSY).
 */
static inline int ktls_install_keys(int fd, const struct ktls_keys *k)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) &&
	    errno != EEXIST)
		return -errno;
	if (setsockopt(fd, SOL_TLS, TLS_TX, &k->tx, sizeof(k->tx)) ||
	    setsockopt(fd, SOL_TLS, TLS_RX, &k->rx, sizeof(k->rx)))
		return -errno;
	return 0;
}

/*
 * Random keys for the two ends of one connection, a key per direction,
 * record numbers from 0: @a sends with what @b receives with, and the
 * other way round. 0, or -EIO.
 */
static inline int ktls_random_keys(struct ktls_keys *a, struct ktls_keys *b)
{
	struct tls12_crypto_info_aes_gcm_128 *k[2] = { &a->tx, &b->tx };
	unsigned int i;

	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	for (i = 0; i < 2; i++) {
		k[i]->info.version = TLS_1_3_VERSION;
		k[i]->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		if (getrandom(k[i]->key, sizeof(k[i]->key), 0) !=
		    sizeof(k[i]->key) ||
		    getrandom(k[i]->salt, sizeof(k[i]->salt), 0) !=
		    sizeof(k[i]->salt) ||
		    getrandom(k[i]->iv, sizeof(k[i]->iv), 0) != sizeof(k[i]->iv))
			return -EIO;
	}
	a->rx = b->tx;
	b->rx = a->tx;
	return 0;
}

/*
 * Makes a connected pair @a, @b kTLS with random keys, as a VMM does after
 * its handshake, without one: for benchmarks and tests, where both ends
 * are this process. 0, or -errno (-ENOENT: no kTLS in this kernel).
 */
static inline int ktls_random_pair(int a, int b)
{
	struct ktls_keys ka, kb;
	int ret = ktls_random_keys(&ka, &kb);

	if (!ret)
		ret = ktls_install_keys(a, &ka);
	if (!ret)
		ret = ktls_install_keys(b, &kb);
	memset(&ka, 0, sizeof(ka));
	memset(&kb, 0, sizeof(kb));
	return ret;
}

/* ---- ktls.c: the handshake (OpenSSL) ---- */

/* What ktls_handshake_opts() takes beyond the key; zeroed: the defaults. */
struct ktls_opts {
	int timeout_ms;		/* per read or write; 0: KTLS_TIMEOUT_MS */
	/*
	 * Tests: make the handshake and derive the keys, but leave the
	 * socket as it is (no ULP, no keys): for kernels without kTLS.
	 */
	bool no_install;
	struct ktls_keys *keys;	/* tests: the keys, if not NULL */
	/* Tests: called with the SSL object (an SSL *) before the handshake. */
	void (*setup)(void *ssl, void *arg);
	/*
	 * Tests: called with the handshake's SSL object (an SSL *) once the
	 * keys are derived, before it is freed, e.g. to SSL_write() one
	 * record and check the keys and the record number on the wire.
	 */
	void (*after)(void *ssl, void *arg);
	void *arg;
};

/*
 * The TLS 1.3 handshake on connected TCP socket @fd, as the client or as
 * the @server, authenticated by the external pre-shared key @psk (both
 * ends the same, KTLS_PSK_MIN to KTLS_PSK_MAX bytes) with an ephemeral
 * (EC)DHE exchange, cipher suite TLS_AES_128_GCM_SHA256, then kTLS in
 * both directions. Nothing else goes through the socket: no session
 * ticket, no close_notify, no byte read beyond the handshake's last
 * record, so that the first application record each way is record 0 of
 * the kernel's. Blocking (@fd must not be O_NONBLOCK); each read or
 * write waits KTLS_TIMEOUT_MS at most, or @opts->timeout_ms (the socket's
 * own timeouts are put back after). SIGPIPE is held off meanwhile.
 *
 * 0, or -errno with a message in @err: -EINVAL the key's length; -EPROTO
 * the handshake failed (a different key, a peer that does not speak TLS
 * or not this way); -ETIMEDOUT; -ECONNRESET the peer closed; -ENOENT no
 * kTLS in this kernel; another -errno from the socket.
 */
int ktls_handshake(int fd, bool server, const unsigned char *psk,
		   size_t psk_len, char *err, size_t errlen);
int ktls_handshake_opts(int fd, bool server, const unsigned char *psk,
			size_t psk_len, const struct ktls_opts *opts,
			char *err, size_t errlen);

/*
 * The AES-128-GCM key and IV of TLS 1.3 traffic secret @secret (SHA-256,
 * 32 bytes), HKDF-Expand-Label(secret, "key" / "iv", "", 16 / 12) as RFC
 * 8446 7.3 has them, as the kernel takes them: salt the IV's first 4
 * bytes, iv its last 8, record number 0. 0, or -EINVAL / -EIO.
 */
int ktls_derive(const unsigned char *secret, size_t len,
		struct tls12_crypto_info_aes_gcm_128 *ci);

/*
 * Reads a pre-shared key, in hex (blanks and line ends ignored), from
 * @path into @psk (KTLS_PSK_MAX bytes). Its length, or -errno with a
 * message in @err: unreadable, not hex, shorter than KTLS_PSK_MIN or
 * longer than KTLS_PSK_MAX bytes.
 */
int ktls_read_psk(const char *path, unsigned char *psk, char *err,
		  size_t errlen);

#endif /* KVMIG_KTLS_H */
