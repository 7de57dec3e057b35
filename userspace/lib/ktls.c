// SPDX-License-Identifier: GPL-2.0
/*
 * The TLS 1.3 handshake of a kvmig connection, with OpenSSL 3, and the kTLS
 * keys it yields (ktls.h).
 *
 * OpenSSL 3.0 (Debian 12's) can hand TLS 1.3 to kTLS for sending only: its
 * tls13_change_cipher_state() offloads under SSL_OP_ENABLE_KTLS when the
 * key change is (SSL3_CC_WRITE | SSL3_CC_APPLICATION) and skips any read
 * key (ssl/tls13_enc.c); TLS 1.3 receive offload came to master after 3.0
 * had branched (openssl/openssl pull request 17942). So this file does not
 * ask OpenSSL for offload at all: it takes the two application traffic
 * secrets from the handshake (the key log callback, the only public way
 * 3.0 gives them out), derives each direction's key and IV itself (RFC
 * 8446 7.3) and installs both directions the same way, whatever the
 * OpenSSL version.
 *
 * What makes the keys right for the kernel, record number 0 each way:
 *
 * - no record goes out under the application keys before the kernel has
 *   them: the server sends no session ticket (SSL_CTX_set_num_tickets(0))
 *   and nobody sends close_notify (the SSL object is freed without
 *   SSL_shutdown()); no key update, no post-handshake authentication;
 * - no byte of the peer's first application records is read by OpenSSL:
 *   the socket BIO reads the socket directly, and with read_ahead off
 *   OpenSSL 3.0 reads exactly a record's 5-byte header, then exactly its
 *   body (ssl3_read_n(), ssl/record/rec_layer_s3.c), never beyond. The
 *   client's Finished is the last message either way (no tickets), and the
 *   server returns from SSL_accept() once it has read it, so each end is
 *   left with the peer's first application record, if any was sent
 *   already, unread in the socket; SSL_has_pending() checks that nothing is
 *   left inside OpenSSL. Read-ahead, or a BIO with a buffer of its own,
 *   would swallow what the kernel must decrypt: never turn them on here.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/ssl.h>

#include "ktls.h"

/* Both ends name the key so; the server knows no other. */
static const char psk_identity[] = "kvmig";
/* TLS_AES_128_GCM_SHA256 */
static const unsigned char suite_id[2] = { 0x13, 0x01 };
#define SECRET_LEN	32	/* SHA-256 */

/* One handshake's state, the SSL object's app data. */
struct hs {
	const unsigned char *psk;
	size_t psk_len;
	unsigned char client_secret[SECRET_LEN], server_secret[SECRET_LEN];
	bool have_client, have_server;
	bool hello;		/* server: a ClientHello came */
	bool server_hello;	/* client: a ServerHello came */
	bool psk_found;		/* server: the client named our key */
	bool bad_line;		/* a key log line we could not read */
};

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2 * @len hex digits at @s into @out; 0 or -1. */
static int unhex(const char *s, size_t n, unsigned char *out, size_t len)
{
	size_t i;
	int hi, lo;

	if (n != 2 * len)
		return -1;
	for (i = 0; i < len; i++) {
		hi = hexval(s[2 * i]);
		lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = hi << 4 | lo;
	}
	return 0;
}

/*
 * The key log: "LABEL <client random, hex> <secret, hex>" per secret
 * (NSS's format). Only the first application traffic secrets are kept.
 */
static void keylog(const SSL *ssl, const char *line)
{
	static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char server[] = "SERVER_TRAFFIC_SECRET_0 ";
	static const char server_hs[] = "SERVER_HANDSHAKE_TRAFFIC_SECRET ";
	struct hs *hs = SSL_get_app_data(ssl);
	unsigned char *out;
	const char *sp;
	bool *have;

	/* Its handshake secret: the server answered with a ServerHello. */
	if (!strncmp(line, server_hs, sizeof(server_hs) - 1))
		hs->server_hello = true;
	if (!strncmp(line, client, sizeof(client) - 1)) {
		out = hs->client_secret;
		have = &hs->have_client;
	} else if (!strncmp(line, server, sizeof(server) - 1)) {
		out = hs->server_secret;
		have = &hs->have_server;
	} else {
		return;
	}
	sp = strrchr(line, ' ');
	if (!sp || unhex(sp + 1, strlen(sp + 1), out, SECRET_LEN)) {
		hs->bad_line = true;
		return;
	}
	*have = true;
}

/* A session holding the external PSK, for either end. */
static SSL_SESSION *psk_session(SSL *ssl, const struct hs *hs)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suite_id);
	SSL_SESSION *sess;

	if (!cipher)
		return NULL;
	sess = SSL_SESSION_new();
	if (!sess)
		return NULL;
	if (!SSL_SESSION_set1_master_key(sess, hs->psk, hs->psk_len) ||
	    !SSL_SESSION_set_cipher(sess, cipher) ||
	    !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

/* Client: the PSK to offer (@md: after a HelloRetryRequest, its hash). */
static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id,
		   size_t *idlen, SSL_SESSION **sessp)
{
	struct hs *hs = SSL_get_app_data(ssl);
	SSL_SESSION *sess;

	*sessp = NULL;
	sess = psk_session(ssl, hs);
	if (!sess)
		return 0;
	if (md && md != SSL_CIPHER_get_handshake_digest(
				SSL_SESSION_get0_cipher(sess))) {
		/* Cannot happen with one suite; offer nothing then. */
		SSL_SESSION_free(sess);
		return 1;
	}
	*id = (const unsigned char *)psk_identity;
	*idlen = sizeof(psk_identity) - 1;
	*sessp = sess;
	return 1;
}

/* Server: the PSK the client names; none for any other identity. */
static int find_psk(SSL *ssl, const unsigned char *id, size_t idlen,
		    SSL_SESSION **sessp)
{
	struct hs *hs = SSL_get_app_data(ssl);

	*sessp = NULL;
	if (idlen != sizeof(psk_identity) - 1 ||
	    memcmp(id, psk_identity, idlen))
		return 1;	/* unknown: the handshake fails */
	*sessp = psk_session(ssl, hs);
	if (!*sessp)
		return 0;
	hs->psk_found = true;
	return 1;
}

/* Server: a ClientHello came, so the peer speaks TLS at least. */
static int client_hello(SSL *ssl, int *alert, void *arg)
{
	struct hs *hs = SSL_get_app_data(ssl);

	(void)alert;
	(void)arg;
	hs->hello = true;
	return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * OpenSSL's error queue, emptied, as one line into @buf. Whether it says
 * the peer closed the connection (@eof), or sent a TLS alert (@alert).
 */
static void ssl_errors(char *buf, size_t len, bool *eof, bool *alert)
{
	unsigned long e;
	size_t n = 0;

	buf[0] = 0;
	*eof = *alert = false;
	while ((e = ERR_get_error())) {
		if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
			*eof |= ERR_GET_REASON(e) ==
				SSL_R_UNEXPECTED_EOF_WHILE_READING;
			/* reasons of received alerts: 1000 + the alert */
			*alert |= ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
		}
		if (n + 3 < len) {
			if (n) {
				memcpy(buf + n, "; ", 3);
				n += 2;
			}
			ERR_error_string_n(e, buf + n, len - n);
			n += strlen(buf + n);
		}
	}
}

static SSL_CTX *make_ctx(bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() :
				   TLS_client_method());

	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
	    !SSL_CTX_set_num_tickets(ctx, 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * No ticket (num_tickets 0 above: in TLS 1.3 SSL_OP_NO_TICKET would
	 * only make them stateful), no session cache, no dummy
	 * ChangeCipherSpec records, no offload by OpenSSL itself (3.0 could
	 * take the sending side: this file installs both, see above), and
	 * no read-ahead (see above).
	 */
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT |
				   SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(ctx, 0);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_keylog_callback(ctx, keylog);
	if (server) {
		SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
		SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
	} else {
		SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
	}
	return ctx;
}

int ktls_derive(const unsigned char *secret, size_t len,
		struct tls12_crypto_info_aes_gcm_128 *ci)
{
	static const struct {
		const char *label;
		size_t len;
	} out[2] = { { "key", 16 }, { "iv", 12 } };
	unsigned char buf[2][16];
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	unsigned int i;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ret = 0;

	if (len != SECRET_LEN)
		return -EINVAL;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_3_KDF, NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!kctx)
		return -EIO;
	for (i = 0; i < 2 && !ret; i++) {
		/* HKDF-Expand-Label(secret, label, "", length) */
		OSSL_PARAM p[] = {
			OSSL_PARAM_int(OSSL_KDF_PARAM_MODE, &mode),
			OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST,
					       (char *)"SHA256", 0),
			OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY,
						(void *)secret, len),
			OSSL_PARAM_octet_string(OSSL_KDF_PARAM_PREFIX,
						(void *)"tls13 ", 6),
			OSSL_PARAM_octet_string(OSSL_KDF_PARAM_LABEL,
						(void *)out[i].label,
						strlen(out[i].label)),
			OSSL_PARAM_END
		};

		if (EVP_KDF_derive(kctx, buf[i], out[i].len, p) <= 0)
			ret = -EIO;
	}
	EVP_KDF_CTX_free(kctx);
	if (!ret) {
		memset(ci, 0, sizeof(*ci));
		ci->info.version = TLS_1_3_VERSION;
		ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci->key, buf[0], sizeof(ci->key));
		/* The kernel's nonce: salt || iv, XORed with the record number. */
		memcpy(ci->salt, buf[1], sizeof(ci->salt));
		memcpy(ci->iv, buf[1] + sizeof(ci->salt), sizeof(ci->iv));
		/* rec_seq: 0, the first record under these keys */
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

/* The socket's send and receive timeouts, to put back. */
struct timeouts {
	struct timeval snd, rcv;
	bool saved;
};

static void set_timeouts(int fd, int ms, struct timeouts *old)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };
	socklen_t len = sizeof(old->snd);

	old->saved = !getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &old->snd, &len) &&
		     (len = sizeof(old->rcv),
		      !getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &old->rcv, &len));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void put_timeouts(int fd, const struct timeouts *old)
{
	if (!old->saved)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &old->snd, sizeof(old->snd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &old->rcv, sizeof(old->rcv));
}

/*
 * Why SSL_connect() / SSL_accept() returned @ret: a message and -errno.
 * @sys: errno right after the call.
 */
static int hs_failed(SSL *ssl, int ret, int sys, bool server,
		     const struct hs *hs, char *err, size_t errlen)
{
	const char *peer = server ? "client" : "server";
	int code = SSL_get_error(ssl, ret);
	bool eof, alert;
	char msg[512];

	ssl_errors(msg, sizeof(msg), &eof, &alert);
	if (eof || code == SSL_ERROR_SYSCALL || code == SSL_ERROR_WANT_READ ||
	    code == SSL_ERROR_WANT_WRITE) {
		if (sys == EAGAIN || sys == EWOULDBLOCK) {
			say(err, errlen, "TLS handshake failed: the %s did not answer in time",
			    peer);
			return -ETIMEDOUT;
		}
		if (eof || !sys || sys == ECONNRESET || sys == EPIPE) {
			say(err, errlen, "TLS handshake failed: the %s closed the connection (does it use TLS, with the same pre-shared key?)",
			    peer);
			return -ECONNRESET;
		}
		say(err, errlen, "TLS handshake failed: %s", strerror(sys));
		return -sys;
	}
	if (server && !hs->hello)
		say(err, errlen, "TLS handshake failed: the client sent no TLS ClientHello (does it use TLS?): %s",
		    msg[0] ? msg : "no detail");
	else if (!server && !hs->server_hello && !alert)
		say(err, errlen, "TLS handshake failed: the server did not answer in TLS (does it use TLS?): %s",
		    msg[0] ? msg : "no detail");
	else if (server && !hs->psk_found)
		say(err, errlen, "TLS handshake failed: the client offered no pre-shared key of kvmig's: %s",
		    msg[0] ? msg : "no detail");
	else
		say(err, errlen, "TLS handshake failed (is the pre-shared key the same at both ends?): %s",
		    msg[0] ? msg : "no detail");
	return -EPROTO;
}

int ktls_handshake_opts(int fd, bool server, const unsigned char *psk,
			size_t psk_len, const struct ktls_opts *opts,
			char *err, size_t errlen)
{
	static const struct ktls_opts defaults;
	struct hs hs = { .psk = psk, .psk_len = psk_len };
	struct ktls_keys keys;
	struct timespec zero = {};
	sigset_t pipe, oldmask;
	struct timeouts old;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int ret, sys;

	if (!opts)
		opts = &defaults;
	if (!psk || psk_len < KTLS_PSK_MIN || psk_len > KTLS_PSK_MAX) {
		say(err, errlen, "the pre-shared key has %zu bytes, not %d to %d",
		    psk_len, KTLS_PSK_MIN, KTLS_PSK_MAX);
		return -EINVAL;
	}
	ERR_clear_error();
	ctx = make_ctx(server);
	ssl = ctx ? SSL_new(ctx) : NULL;
	/* SSL_set_fd(): a socket BIO, which will not close @fd. */
	if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_app_data(ssl, &hs)) {
		char msg[256];
		bool eof, alert;

		ssl_errors(msg, sizeof(msg), &eof, &alert);
		say(err, errlen, "OpenSSL: cannot set up TLS 1.3 with a pre-shared key: %s",
		    msg);
		ret = -ENOMEM;
		goto out;
	}
	if (opts->setup)
		opts->setup(ssl, opts->arg);
	set_timeouts(fd, opts->timeout_ms > 0 ? opts->timeout_ms :
			 KTLS_TIMEOUT_MS, &old);
	/*
	 * OpenSSL's socket BIO write()s without MSG_NOSIGNAL: a peer that
	 * reset the connection would kill the process with SIGPIPE. Held
	 * off for the handshake, and taken if it came (EPIPE says it).
	 */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &oldmask);
	errno = 0;
	ret = server ? SSL_accept(ssl) : SSL_connect(ssl);
	sys = errno;
	if (!sigismember(&oldmask, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	put_timeouts(fd, &old);
	if (ret != 1) {
		ret = hs_failed(ssl, ret, sys, server, &hs, err, errlen);
		goto out;
	}
	ret = -EPROTO;
	if (SSL_version(ssl) != TLS1_3_VERSION ||
	    SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl)) != 0x1301 ||
	    !SSL_session_reused(ssl)) {
		/* The contexts allow nothing else: a bug if ever seen. */
		say(err, errlen, "TLS handshake: not TLS 1.3 with AES-128-GCM and the pre-shared key (%s, %s)",
		    SSL_get_version(ssl),
		    SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
		goto out;
	}
	if (!hs.have_client || !hs.have_server || hs.bad_line) {
		say(err, errlen, "TLS handshake: OpenSSL gave out no application traffic secrets");
		goto out;
	}
	if (SSL_has_pending(ssl)) {
		/* Something the kernel should decrypt is inside OpenSSL. */
		say(err, errlen, "TLS handshake: OpenSSL read past the handshake, into what the kernel must decrypt");
		goto out;
	}
	/* The client sends with the client's secret, the server with its own. */
	ret = -EIO;
	if (ktls_derive(server ? hs.server_secret : hs.client_secret,
			SECRET_LEN, &keys.tx) ||
	    ktls_derive(server ? hs.client_secret : hs.server_secret,
			SECRET_LEN, &keys.rx)) {
		say(err, errlen, "TLS handshake: cannot derive the traffic keys (OpenSSL's TLS13-KDF)");
		goto out;
	}
	if (opts->keys)
		*opts->keys = keys;
	if (opts->after)
		opts->after(ssl, opts->arg);
	ret = 0;
	if (!opts->no_install) {
		ret = ktls_install_keys(fd, &keys);
		if (ret == -ENOENT)
			say(err, errlen, "this kernel has no kTLS (modprobe tls)");
		else if (ret)
			say(err, errlen, "installing the kTLS keys: %s",
			    strerror(-ret));
	}
	OPENSSL_cleanse(&keys, sizeof(keys));
out:
	/*
	 * No SSL_shutdown(): no close_notify, nothing more on the socket,
	 * which belongs to the kernel now. SSL_free() sends nothing.
	 */
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	OPENSSL_cleanse(&hs, sizeof(hs));
	ERR_clear_error();
	return ret;
}

int ktls_handshake(int fd, bool server, const unsigned char *psk,
		   size_t psk_len, char *err, size_t errlen)
{
	return ktls_handshake_opts(fd, server, psk, psk_len, NULL, err, errlen);
}

int ktls_read_psk(const char *path, unsigned char *psk, char *err,
		  size_t errlen)
{
	char buf[4 * KTLS_PSK_MAX + 2];
	size_t i, n = 0;
	ssize_t len;
	int fd, hi = -1, v, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		say(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	len = read(fd, buf, sizeof(buf));
	ret = -errno;
	close(fd);
	if (len < 0) {
		say(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = -EINVAL;
	if ((size_t)len == sizeof(buf)) {
		say(err, errlen, "%s: longer than a key of at most %d bytes in hex",
		    path, KTLS_PSK_MAX);
		goto out;
	}
	for (i = 0; i < (size_t)len; i++) {
		if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
		    buf[i] == '\r')
			continue;
		v = hexval((unsigned char)buf[i]);
		if (v < 0) {
			say(err, errlen, "%s: not a key in hex (byte %zu is not a hex digit)",
			    path, i + 1);
			goto out;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == KTLS_PSK_MAX) {
			say(err, errlen, "%s: a key of more than %d bytes",
			    path, KTLS_PSK_MAX);
			goto out;
		}
		psk[n++] = hi << 4 | v;
		hi = -1;
	}
	if (hi >= 0) {
		say(err, errlen, "%s: an odd number of hex digits", path);
		goto out;
	}
	if (n < KTLS_PSK_MIN) {
		say(err, errlen, "%s: a key of %zu bytes, at least %d needed (%d hex digits: openssl rand -hex %d)",
		    path, n, KTLS_PSK_MIN, 2 * KTLS_PSK_MIN, KTLS_PSK_MIN);
		goto out;
	}
	ret = n;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret < 0)
		OPENSSL_cleanse(psk, KTLS_PSK_MAX);
	return ret;
}
