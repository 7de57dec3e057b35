// SPDX-License-Identifier: GPL-2.0
/*
 * ktls_test: lib/ktls.c without the kernel's kTLS where it has none.
 *
 * - key derivation against RFC 8448's "Simple 1-RTT Handshake" (section
 *   3): the four traffic secrets and the write key and IV of each;
 * - the record layout the kernel is given (salt || iv, XORed with the
 *   record number) against the RFC's server application data record;
 * - reading a pre-shared key file;
 * - the handshake between two threads over loopback TCP, keys not
 *   installed: each end then sends one record through OpenSSL, and the
 *   peer's derived receive key opens it from the raw socket as record 0,
 *   with nothing else on the wire (no ticket) and nothing left inside
 *   OpenSSL (the server reads the client's Finished while the client's
 *   first record already waits behind it);
 * - failures: a different key, a peer that does not speak TLS, one that
 *   closes, one that never answers;
 * - with kTLS in the kernel, the same with the keys installed: plain
 *   send() and recv() through the kernel's records both ways.
 *
 * Exit status 0 if every check passed. `make -C userspace ktls_test` and
 * run ./ktls_test.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ktls.h"

static int failed, passed;

#define CHECK(cond, ...)						\
	do {								\
		if (cond) {						\
			passed++;					\
		} else {						\
			failed++;					\
			printf("FAIL %s:%d: ", __func__, __LINE__);	\
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
	} while (0)

static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned int b;

	while (*s && n < cap) {
		if (*s == ' ' || *s == '\n') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &b) != 1)
			break;
		out[n++] = b;
		s += 2;
	}
	return n;
}

static bool same_hex(const unsigned char *p, size_t n, const char *hex)
{
	unsigned char want[64];

	return unhex(hex, want, sizeof(want)) == n && !memcmp(p, want, n);
}

/* ---- RFC 8448 section 3: Simple 1-RTT Handshake ---- */

static const struct {
	const char *what, *secret, *key, *iv;
} rfc8448[] = {
	{ "server handshake traffic",
	  "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
	  "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30" },
	{ "client handshake traffic",
	  "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
	  "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f" },
	{ "server application traffic",
	  "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
	  "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984" },
	{ "client application traffic",
	  "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
	  "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9" },
};

static void test_derive(void)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	unsigned char secret[32], iv[12];
	unsigned int i;

	for (i = 0; i < sizeof(rfc8448) / sizeof(rfc8448[0]); i++) {
		CHECK(unhex(rfc8448[i].secret, secret, sizeof(secret)) == 32,
		      "vector");
		memset(&ci, 0xaa, sizeof(ci));
		CHECK(!ktls_derive(secret, sizeof(secret), &ci),
		      "%s: ktls_derive failed", rfc8448[i].what);
		memcpy(iv, ci.salt, 4);
		memcpy(iv + 4, ci.iv, 8);
		CHECK(same_hex(ci.key, 16, rfc8448[i].key), "%s: key",
		      rfc8448[i].what);
		CHECK(same_hex(iv, 12, rfc8448[i].iv), "%s: iv",
		      rfc8448[i].what);
		CHECK(ci.info.version == TLS_1_3_VERSION &&
		      ci.info.cipher_type == TLS_CIPHER_AES_GCM_128,
		      "%s: version and cipher", rfc8448[i].what);
		CHECK(same_hex(ci.rec_seq, 8, "0000000000000000"),
		      "%s: record number 0", rfc8448[i].what);
	}
	CHECK(ktls_derive(secret, 48, &ci) == -EINVAL, "a 48-byte secret");
	printf("derive: RFC 8448 section 3 key and IV of 4 traffic secrets\n");
}

/*
 * Opens TLS 1.3 record @rec (header included, @len bytes) sent as record
 * number @seq under @k, as the kernel does: nonce salt || iv XOR @seq,
 * the header as additional data. The content into @out, its type into
 * @type; its length, or -1.
 */
static int open_record(const struct tls12_crypto_info_aes_gcm_128 *k,
		       uint64_t seq, const unsigned char *rec, size_t len,
		       unsigned char *out, int *type)
{
	unsigned char nonce[12];
	EVP_CIPHER_CTX *c;
	int n, m, i, ok;

	if (len < 5 + 16 + 1 || rec[0] != 0x17 || rec[1] != 3 || rec[2] != 3 ||
	    (size_t)(rec[3] << 8 | rec[4]) != len - 5)
		return -1;
	memcpy(nonce, k->salt, 4);
	memcpy(nonce + 4, k->iv, 8);
	for (i = 0; i < 8; i++)
		nonce[11 - i] ^= seq >> (8 * i);
	c = EVP_CIPHER_CTX_new();
	ok = c &&
	     EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, k->key, nonce) &&
	     EVP_DecryptUpdate(c, NULL, &n, rec, 5) &&
	     EVP_DecryptUpdate(c, out, &n, rec + 5, len - 5 - 16) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
				 (void *)(rec + len - 16)) &&
	     EVP_DecryptFinal_ex(c, out + n, &m) > 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return -1;
	/* TLSInnerPlaintext: content, type, zero padding */
	while (n > 0 && !out[n - 1])
		n--;
	if (!n)
		return -1;
	*type = out[--n];
	return n;
}

/* RFC 8448 section 3: the server's application data, record number 1. */
static void test_record(void)
{
	static const char rec_hex[] =
		"17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36"
		"e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf33254"
		"0dd032e167c2955d";
	struct tls12_crypto_info_aes_gcm_128 k;
	unsigned char secret[32], rec[128], out[128];
	size_t len = unhex(rec_hex, rec, sizeof(rec));
	int n, type, i;

	unhex(rfc8448[2].secret, secret, sizeof(secret));
	CHECK(!ktls_derive(secret, sizeof(secret), &k), "derive");
	n = open_record(&k, 1, rec, len, out, &type);
	CHECK(n == 50 && type == 23, "record 1: %d bytes of type %d", n, type);
	for (i = 0; i < n && i < 50; i++)
		if (out[i] != i)
			break;
	CHECK(i == 50, "record 1: content 00 01 .. 31");
	CHECK(open_record(&k, 0, rec, len, out, &type) < 0,
	      "record 1 opened as record 0");
	printf("record: RFC 8448's server record 1 opened with the derived key, salt and iv\n");
}

/* ---- pre-shared key files ---- */

static int psk_file(const char *content, char *path)
{
	int fd;

	strcpy(path, "/tmp/ktls_test.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, content, strlen(content)) !=
		      (ssize_t)strlen(content)) {
		perror("psk file");
		exit(1);
	}
	close(fd);
	return 0;
}

static void test_psk_file(void)
{
	static const struct {
		const char *content;
		int ret;
	} cases[] = {
		{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 32 },
		{ "00010203 04050607 08090a0b 0c0d0e0f\n10111213 14151617 18191A1B 1C1D1E1F 2021\r\n", 34 },
		{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e\n", -EINVAL },
		{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\n", -EINVAL },
		{ "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", -EINVAL },
		{ "", -EINVAL },
	};
	unsigned char psk[KTLS_PSK_MAX];
	char path[64], err[256], big[4 * KTLS_PSK_MAX + 8];
	unsigned int i;
	int ret;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		psk_file(cases[i].content, path);
		err[0] = 0;
		ret = ktls_read_psk(path, psk, err, sizeof(err));
		CHECK(ret == cases[i].ret, "case %u: %d, not %d (%s)", i, ret,
		      cases[i].ret, err);
		CHECK(ret > 0 || err[0], "case %u: no message", i);
		if (ret > 0)
			CHECK(psk[0] == 0 && psk[31] == 0x1f, "case %u: bytes", i);
		if (ret < 0)
			printf("psk: refused as it should: %s\n", err + strlen(path) + 2);
		unlink(path);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	psk_file(big, path);
	ret = ktls_read_psk(path, psk, err, sizeof(err));
	CHECK(ret == -EINVAL, "too long: %d", ret);
	unlink(path);
	ret = ktls_read_psk("/nonexistent/psk", psk, err, sizeof(err));
	CHECK(ret == -ENOENT, "missing: %d", ret);
	printf("psk: refused as it should: %s\n", err);
}

/* ---- the handshake between two threads ---- */

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (void *)&sa, sizeof(sa)))
		return -errno;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (*b < 0)
		return -errno;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

struct end {
	int fd;
	bool server;
	unsigned char psk[KTLS_PSK_MAX];
	size_t psk_len;
	struct ktls_opts opts;
	struct ktls_keys keys;
	const char *say;	/* sent through OpenSSL after the handshake */
	int ret;
	char err[512];
	double secs;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The first application record, written by OpenSSL's record layer. */
static void say_one(void *ssl, void *arg)
{
	struct end *e = arg;

	if (e->say && SSL_write(ssl, e->say, strlen(e->say)) !=
		      (int)strlen(e->say))
		e->ret = -EIO;
}

/*
 * The server, once it has sent its Finished, waits before it reads the
 * client's: the client's Finished and its first record are then both in
 * the socket, and the server must take the one and leave the other.
 */
static void server_dawdle(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if ((where & SSL_CB_ACCEPT_LOOP) &&
	    SSL_get_state(ssl) == TLS_ST_SW_FINISHED)
		usleep(100000);
}

static void setup_server(void *ssl, void *arg)
{
	(void)arg;
	SSL_set_info_callback(ssl, server_dawdle);
}

static void *run_end(void *arg)
{
	struct end *e = arg;
	double t = now();
	int ret;

	e->opts.keys = &e->keys;
	e->opts.arg = e;
	if (e->say)
		e->opts.after = say_one;
	ret = ktls_handshake_opts(e->fd, e->server, e->psk, e->psk_len,
				  &e->opts, e->err, sizeof(e->err));
	if (!e->ret)
		e->ret = ret;
	e->secs = now() - t;
	return NULL;
}

/* Both ends at once: @c the client, @s the server, on a new pair. */
static void handshake(struct end *c, struct end *s)
{
	pthread_t t;

	CHECK(!tcp_pair(&c->fd, &s->fd), "tcp pair");
	c->server = false;
	s->server = true;
	pthread_create(&t, NULL, run_end, s);
	run_end(c);
	pthread_join(t, NULL);
}

static void random_psk(struct end *e, size_t len)
{
	e->psk_len = len;
	CHECK(getrandom(e->psk, len, 0) == (ssize_t)len, "getrandom");
}

/* One whole record from @fd, or -1; nothing waits: -2 */
static int read_record(int fd, unsigned char *buf, size_t cap, bool wait)
{
	ssize_t n = recv(fd, buf, 5, MSG_WAITALL | (wait ? 0 : MSG_DONTWAIT));
	size_t len;

	if (n < 0 && !wait && errno == EAGAIN)
		return -2;
	if (n != 5)
		return -1;
	len = buf[3] << 8 | buf[4];
	if (5 + len > cap ||
	    recv(fd, buf + 5, len, MSG_WAITALL) != (ssize_t)len)
		return -1;
	return 5 + len;
}

/* @to's first record from @from's OpenSSL, opened with @to's rx keys. */
static void check_first_record(const struct end *from, const struct end *to)
{
	struct timeval tv = { .tv_sec = 2 };
	unsigned char rec[512], out[512];
	int n, type;

	/* Not for ever: a record OpenSSL swallowed never comes. */
	setsockopt(to->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read_record(to->fd, rec, sizeof(rec), true);
	CHECK(n > 0, "no record from the %s", from->server ? "server" : "client");
	if (n <= 0)
		return;
	n = open_record(&to->keys.rx, 0, rec, n, out, &type);
	CHECK(n == (int)strlen(from->say) && type == 23 &&
	      !memcmp(out, from->say, n),
	      "the %s's first application record is not record 0 under the derived keys",
	      from->server ? "server" : "client");
	/* Nothing after it: no ticket, no close_notify. */
	CHECK(read_record(to->fd, rec, sizeof(rec), false) == -2,
	      "more records from the %s", from->server ? "server" : "client");
}

static void test_handshake(void)
{
	struct end c = { .say = "source to destination, record 0" };
	struct end s = { .say = "destination to source, record 0" };

	random_psk(&c, 32);
	s.psk_len = c.psk_len;
	memcpy(s.psk, c.psk, c.psk_len);
	c.opts.no_install = s.opts.no_install = true;
	s.opts.setup = setup_server;
	handshake(&c, &s);
	CHECK(!c.ret && !s.ret, "client %d (%s), server %d (%s)", c.ret, c.err,
	      s.ret, s.err);
	CHECK(!memcmp(&c.keys.tx, &s.keys.rx, sizeof(c.keys.tx)) &&
	      !memcmp(&s.keys.tx, &c.keys.rx, sizeof(s.keys.tx)),
	      "the ends' keys do not match");
	CHECK(memcmp(&c.keys.tx, &c.keys.rx, sizeof(c.keys.tx)),
	      "the same key both ways");
	CHECK(s.secs >= 0.1, "the server did not wait (%.3f s)", s.secs);
	check_first_record(&c, &s);
	check_first_record(&s, &c);
	if (!failed)
		printf("handshake: TLS 1.3 PSK in %.1f ms (the server held 100 ms before reading the client's Finished); each end's first record opened as record 0 with the derived keys, nothing else on the wire\n",
		       c.secs * 1e3);
	close(c.fd);
	close(s.fd);

	/* The longest key, and another handshake gets other keys. */
	{
		struct end c2 = {}, s2 = {};

		random_psk(&c2, KTLS_PSK_MAX);
		s2.psk_len = c2.psk_len;
		memcpy(s2.psk, c2.psk, c2.psk_len);
		c2.opts.no_install = s2.opts.no_install = true;
		handshake(&c2, &s2);
		CHECK(!c2.ret && !s2.ret, "%d-byte key: %s / %s", KTLS_PSK_MAX,
		      c2.err, s2.err);
		CHECK(memcmp(&c2.keys.tx, &c.keys.tx, sizeof(c.keys.tx)),
		      "two handshakes, the same keys");
		close(c2.fd);
		close(s2.fd);
	}
	printf("handshake: a %d-byte key works too; two handshakes have different keys\n",
	       KTLS_PSK_MAX);
}

static void test_wrong_psk(void)
{
	struct end c = {}, s = {};

	random_psk(&c, 32);
	random_psk(&s, 32);
	c.opts.no_install = s.opts.no_install = true;
	handshake(&c, &s);
	CHECK(c.ret == -EPROTO && s.ret == -EPROTO &&
	      strstr(c.err, "same at both ends") &&
	      strstr(s.err, "binder does not verify"),
	      "a different key: client %d (%s), server %d (%s)", c.ret, c.err,
	      s.ret, s.err);
	CHECK(c.secs < 5 && s.secs < 5, "slow to fail: %.1f s, %.1f s",
	      c.secs, s.secs);
	printf("wrong key: client %d (%s)\n", c.ret, c.err);
	printf("wrong key: server %d (%s)\n", s.ret, s.err);
	close(c.fd);
	close(s.fd);

	/* A key too short is refused before anything is sent. */
	c.psk_len = KTLS_PSK_MIN - 1;
	c.ret = ktls_handshake(-1, false, c.psk, c.psk_len, c.err,
			       sizeof(c.err));
	CHECK(c.ret == -EINVAL, "short key: %d", c.ret);
}

/* Peers that do not speak TLS: garbage, a close, silence. */
static void test_bad_peers(void)
{
	static const char hello[24] = "not a TLS ClientHello!";
	struct end e = {};
	int a, b;
	double t;

	random_psk(&e, 32);

	/* A server that gets what kvmig's source sends without TLS. */
	CHECK(!tcp_pair(&a, &b), "pair");
	CHECK(write(a, hello, sizeof(hello)) == sizeof(hello), "write");
	e.ret = ktls_handshake(b, true, e.psk, e.psk_len, e.err,
			       sizeof(e.err));
	CHECK(e.ret == -EPROTO, "garbage: %d (%s)", e.ret, e.err);
	printf("not TLS: server %d (%s)\n", e.ret, e.err);
	close(a);
	close(b);

	/* A client whose server answers, but not in TLS (kvmig refusing). */
	CHECK(!tcp_pair(&a, &b), "pair");
	CHECK(write(b, hello, sizeof(hello)) == sizeof(hello), "write");
	e.ret = ktls_handshake(a, false, e.psk, e.psk_len, e.err,
			       sizeof(e.err));
	CHECK(e.ret == -EPROTO && strstr(e.err, "did not answer in TLS"),
	      "answer not TLS: %d (%s)", e.ret, e.err);
	printf("not TLS: client %d (%s)\n", e.ret, e.err);
	close(a);
	close(b);

	/* A client whose server closes at once. */
	CHECK(!tcp_pair(&a, &b), "pair");
	close(b);
	e.ret = ktls_handshake(a, false, e.psk, e.psk_len, e.err,
			       sizeof(e.err));
	CHECK(e.ret == -ECONNRESET, "closed: %d (%s)", e.ret, e.err);
	printf("closed: client %d (%s)\n", e.ret, e.err);
	close(a);

	/* A client whose server never answers. */
	CHECK(!tcp_pair(&a, &b), "pair");
	e.opts.timeout_ms = 300;
	e.opts.no_install = true;
	t = now();
	e.ret = ktls_handshake_opts(a, false, e.psk, e.psk_len, &e.opts,
				    e.err, sizeof(e.err));
	t = now() - t;
	CHECK(e.ret == -ETIMEDOUT && t > 0.25 && t < 2,
	      "silent: %d after %.2f s (%s)", e.ret, t, e.err);
	printf("silent: client %d after %.2f s (%s)\n", e.ret, t, e.err);
	close(a);
	close(b);
}

/* With kTLS in this kernel: installed, and plain I/O through it. */
static void test_installed(void)
{
	static const char msg[2][40] = { "through the kernel's kTLS, one way",
					 "through the kernel's kTLS, the other" };
	struct end c = {}, s = {};
	char buf[64];
	int a, b;

	random_psk(&c, 32);
	s.psk_len = c.psk_len;
	memcpy(s.psk, c.psk, c.psk_len);
	if (!ktls_available()) {
		/* The handshake completes; the install says what is missing. */
		handshake(&c, &s);
		CHECK(c.ret == -ENOENT && s.ret == -ENOENT &&
		      strstr(c.err, "modprobe tls"),
		      "no kTLS: client %d (%s), server %d (%s)", c.ret, c.err,
		      s.ret, s.err);
		printf("installed: this kernel has no kTLS, as both ends say: %s\n",
		       c.err);
		close(c.fd);
		close(s.fd);
		CHECK(!tcp_pair(&a, &b), "pair");
		CHECK(ktls_random_pair(a, b) == -ENOENT, "random pair");
		close(a);
		close(b);
		return;
	}
	handshake(&c, &s);
	CHECK(!c.ret && !s.ret, "client %d (%s), server %d (%s)", c.ret, c.err,
	      s.ret, s.err);
	if (c.ret || s.ret)
		return;
	CHECK(send(c.fd, msg[0], sizeof(msg[0]), 0) == sizeof(msg[0]) &&
	      recv(s.fd, buf, sizeof(msg[0]), MSG_WAITALL) == sizeof(msg[0]) &&
	      !memcmp(buf, msg[0], sizeof(msg[0])), "client to server");
	CHECK(send(s.fd, msg[1], sizeof(msg[1]), 0) == sizeof(msg[1]) &&
	      recv(c.fd, buf, sizeof(msg[1]), MSG_WAITALL) == sizeof(msg[1]) &&
	      !memcmp(buf, msg[1], sizeof(msg[1])), "server to client");
	close(c.fd);
	close(s.fd);
	CHECK(!tcp_pair(&a, &b) && !ktls_random_pair(a, b), "random pair");
	CHECK(send(a, msg[0], sizeof(msg[0]), 0) == sizeof(msg[0]) &&
	      recv(b, buf, sizeof(msg[0]), MSG_WAITALL) == sizeof(msg[0]) &&
	      !memcmp(buf, msg[0], sizeof(msg[0])), "random pair");
	close(a);
	close(b);
	printf("installed: kTLS both ways after the handshake, and with random keys\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("OpenSSL %s, kTLS in this kernel: %s\n",
	       OpenSSL_version(OPENSSL_VERSION),
	       ktls_available() ? "yes" : "no");
	test_derive();
	test_record();
	test_psk_file();
	test_handshake();
	test_wrong_psk();
	test_bad_peers();
	test_installed();
	printf("%s: %d checks passed, %d failed\n", failed ? "FAIL" : "ok",
	       passed, failed);
	return failed ? 1 : 0;
}
