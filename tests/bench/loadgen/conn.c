/*
 * conn.c — one client connection of tern-bench: TCP (or a unix socket),
 * optional TLS over two memory BIOs, a line reader, and writes.
 *
 * Reading: every connection reads into one static buffer (callbacks run one
 * at a time). With TLS the ciphertext goes into the read BIO and SSL_read
 * fills a second static buffer. The plaintext is split into lines; a line
 * completed inside the buffer is handed out in place (NUL-terminated over
 * its CR LF), so only a line split across reads is copied, into a buffer
 * that is freed again once it grows large. bench_conn_skip() passes over
 * the next n bytes (an IMAP literal) without looking at them.
 *
 * Writing: plaintext is copied into the uv_write request unless it is
 * stable (it outlives the program's connections, as msg.c's messages do);
 * with TLS, SSL_write encrypts into the write BIO and its contents go out
 * in one request. A client writes a bounded amount per operation, so no
 * back-pressure is needed.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "bench.h"

enum conn_state {
	CONN_UNUSED,
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_OPEN,
	CONN_CLOSING,
};

#define READ_BUF_SIZE (64 * 1024)
#define LINE_MAX_LEN (16 * 1024 * 1024)   /* a SEARCH of a huge mailbox fits */
#define PARTIAL_KEEP (16 * 1024)          /* free larger line buffers when done */
#define WRITE_MAX_BUFS 8

const char *const bench_fail_names[BENCH_FAIL_COUNT] = {
	"connect_failed", "tls_failed", "eof", "timeout", "refused_line",
};

struct write_req {
	uv_write_t req;
	struct bench_conn *conn;
	char data[]; /* copies, freed with the request */
};

static SSL_CTX *ssl_ctx;
static char read_buf[READ_BUF_SIZE];
static char plain_buf[READ_BUF_SIZE];

void bench_tls_init(const char *alpn)
{
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (ssl_ctx == NULL)
		bench_die("SSL_CTX_new failed");
	/* A benchmark: trust whatever certificate the server has. */
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* Thousands of idle connections: no idle record buffers; every
	 * session a full handshake, like a first connection. */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	if (alpn != NULL) {
		unsigned char wire[256];
		size_t len = strlen(alpn);

		if (len == 0 || len > 255)
			bench_die("bad --alpn");
		wire[0] = (unsigned char)len;
		memcpy(wire + 1, alpn, len);
		if (SSL_CTX_set_alpn_protos(ssl_ctx, wire, (unsigned int)len + 1) != 0)
			bench_die("SSL_CTX_set_alpn_protos failed");
	}
}

void bench_tls_deinit(void)
{
	if (ssl_ctx != NULL)
		SSL_CTX_free(ssl_ctx);
	ssl_ctx = NULL;
}

bool bench_conn_is_open(const struct bench_conn *c)
{
	return c->state != CONN_UNUSED && c->state != CONN_CLOSING;
}

static void on_closed(uv_handle_t *h)
{
	struct bench_conn *c = h->data;

	if (c->ssl != NULL)
		SSL_free(c->ssl); /* and both BIOs */
	c->ssl = NULL;
	c->rbio = c->wbio = NULL;
	free(c->partial);
	c->partial = NULL;
	c->partial_len = c->partial_cap = 0;
	c->bytes_in = c->bytes_out = 0;
	c->state = CONN_UNUSED;
	c->cb->closed(c);
}

void bench_conn_close(struct bench_conn *c)
{
	if (c->state == CONN_UNUSED || c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	uv_close(&c->u.handle, on_closed);
}

/* Give up the connection and tell the owner. */
static void conn_fail(struct bench_conn *c, enum bench_fail kind, const char *detail)
{
	if (!bench_conn_is_open(c))
		return;
	bench_conn_close(c);
	c->cb->fail(c, kind, detail);
}

static void tls_fail(struct bench_conn *c, const char *what)
{
	char msg[256];
	unsigned long e = ERR_get_error();

	snprintf(msg, sizeof(msg), "TLS %s: %s", what,
		 e != 0 ? ERR_reason_error_string(e) : "protocol error");
	ERR_clear_error();
	conn_fail(c, BENCH_FAIL_TLS, msg);
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct bench_conn *c = w->conn;

	free(w);
	if (status < 0 && status != UV_ECANCELED)
		conn_fail(c, BENCH_FAIL_EOF, uv_strerror(status));
}

/* Hand bufs to uv_write; copy says which to copy into the request. */
static int write_raw(struct bench_conn *c, uv_buf_t *bufs, const bool *copy, unsigned int n)
{
	size_t copied = 0, off = 0;
	struct write_req *w;
	int r;

	for (unsigned int i = 0; i < n; i++)
		if (copy[i])
			copied += bufs[i].len;
	w = bench_xcalloc(1, sizeof(*w) + copied);
	w->conn = c;
	for (unsigned int i = 0; i < n; i++) {
		if (!copy[i])
			continue;
		memcpy(w->data + off, bufs[i].base, bufs[i].len);
		bufs[i].base = w->data + off;
		off += bufs[i].len;
	}
	r = uv_write(&w->req, &c->u.stream, bufs, n, on_written);
	if (r < 0)
		free(w);
	return r;
}

/* Move what TLS produced (records, alerts) to the socket. */
static int flush_tls(struct bench_conn *c)
{
	size_t n = BIO_ctrl_pending(c->wbio);
	struct write_req *w;
	uv_buf_t b;
	int r;

	if (n == 0)
		return 0;
	w = bench_xcalloc(1, sizeof(*w) + n);
	w->conn = c;
	if (BIO_read(c->wbio, w->data, (int)n) != (int)n)
		bench_die("BIO_read of %zu pending bytes failed", n);
	b = uv_buf_init(w->data, (unsigned int)n);
	r = uv_write(&w->req, &c->u.stream, &b, 1, on_written);
	if (r < 0)
		free(w);
	return r;
}

int bench_conn_writev(struct bench_conn *c, const struct bench_iov *iov, unsigned int n)
{
	uv_buf_t bufs[WRITE_MAX_BUFS];
	bool copy[WRITE_MAX_BUFS];

	if (c->state != CONN_OPEN || n > WRITE_MAX_BUFS)
		return -1;
	for (unsigned int i = 0; i < n; i++)
		c->bytes_out += iov[i].len;
	if (c->ssl != NULL) {
		for (unsigned int i = 0; i < n; i++) {
			if (iov[i].len == 0)
				continue;
			if (SSL_write(c->ssl, iov[i].data, (int)iov[i].len) != (int)iov[i].len) {
				ERR_clear_error();
				return -1;
			}
		}
		return flush_tls(c);
	}
	for (unsigned int i = 0; i < n; i++) {
		bufs[i] = uv_buf_init((char *)(uintptr_t)iov[i].data, (unsigned int)iov[i].len);
		copy[i] = !iov[i].stable;
	}
	return write_raw(c, bufs, copy, n);
}

void bench_conn_skip(struct bench_conn *c, uint64_t n)
{
	c->skip += n;
}

/* Deliver one complete line (the '\n' at line[len - 1]). */
static void deliver_line(struct bench_conn *c, char *line, size_t len)
{
	len--; /* '\n' */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	c->cb->line(c, line, len);
}

/* Plaintext from the server: lines, literals to pass over. */
static void feed_plain(struct bench_conn *c, char *data, size_t len)
{
	bool was_tls = c->ssl != NULL;

	c->bytes_in += len;
	while (len > 0 && c->state == CONN_OPEN) {
		char *nl;
		size_t take;

		if (c->skip > 0) {
			take = c->skip < len ? (size_t)c->skip : len;
			c->skip -= take;
			data += take;
			len -= take;
			continue;
		}
		nl = memchr(data, '\n', len);
		take = nl != NULL ? (size_t)(nl - data) + 1 : len;
		if (c->partial_len + take > LINE_MAX_LEN) {
			conn_fail(c, BENCH_FAIL_LINE, "line longer than 16 MiB");
			return;
		}
		if (nl != NULL && c->partial_len == 0) {
			deliver_line(c, data, take);
		} else {
			if (c->partial_len + take + 1 > c->partial_cap) {
				size_t cap = c->partial_cap == 0 ? 256 : c->partial_cap;
				while (cap < c->partial_len + take + 1)
					cap *= 2;
				c->partial = bench_xrealloc(c->partial, cap);
				c->partial_cap = cap;
			}
			memcpy(c->partial + c->partial_len, data, take);
			c->partial_len += take;
			if (nl != NULL) {
				size_t n = c->partial_len;
				c->partial_len = 0;
				deliver_line(c, c->partial, n);
				if (c->partial_cap > PARTIAL_KEEP && c->partial_len == 0) {
					free(c->partial);
					c->partial = NULL;
					c->partial_cap = 0;
				}
			}
		}
		data += take;
		len -= take;
		if (!was_tls && c->ssl != NULL) {
			/* STARTTLS began in that line's callback. The server
			 * waits for our ClientHello: plaintext after its reply
			 * would be injected into the TLS session. */
			if (len > 0)
				conn_fail(c, BENCH_FAIL_LINE, "plaintext after the STARTTLS reply");
			return;
		}
	}
}

static void tls_new(struct bench_conn *c)
{
	c->ssl = SSL_new(ssl_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
		bench_die("cannot create an SSL object");
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	c->state = CONN_HANDSHAKE;
}

/* Drive the handshake: 1 done, 0 needs more, -1 failed (reported). */
static int tls_handshake(struct bench_conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (flush_tls(c) < 0) {
		conn_fail(c, BENCH_FAIL_TLS, "write failed during the handshake");
		return -1;
	}
	if (r == 1) {
		c->state = CONN_OPEN;
		return 1;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		tls_fail(c, "handshake");
		return -1;
	}
}

static void feed_tls(struct bench_conn *c, const char *data, size_t len)
{
	if (BIO_write(c->rbio, data, (int)len) != (int)len)
		bench_die("BIO_write failed");
	if (c->state == CONN_HANDSHAKE) {
		if (tls_handshake(c) <= 0)
			return;
		c->cb->ready(c);
	}
	while (c->state == CONN_OPEN) {
		int n = SSL_read(c->ssl, plain_buf, sizeof(plain_buf));

		if (n > 0) {
			feed_plain(c, plain_buf, (size_t)n);
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			if (flush_tls(c) < 0) /* e.g. a key update reply */
				conn_fail(c, BENCH_FAIL_EOF, "write failed");
			return;
		case SSL_ERROR_ZERO_RETURN:
			conn_fail(c, BENCH_FAIL_EOF, "TLS close_notify from the server");
			return;
		default:
			tls_fail(c, "read");
			return;
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = read_buf;
	buf->len = sizeof(read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct bench_conn *c = s->data;

	if (nread == 0 || !bench_conn_is_open(c))
		return;
	if (nread < 0) {
		conn_fail(c, BENCH_FAIL_EOF, nread == UV_EOF ? "connection closed by the server"
							     : uv_strerror((int)nread));
		return;
	}
	if (c->ssl != NULL)
		feed_tls(c, buf->base, (size_t)nread);
	else
		feed_plain(c, buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct bench_conn *c = req->data;
	int r;

	if (status == UV_ECANCELED || c->state != CONN_CONNECTING)
		return;
	if (status < 0) {
		conn_fail(c, BENCH_FAIL_CONNECT, uv_strerror(status));
		return;
	}
	r = uv_read_start(&c->u.stream, on_alloc, on_read);
	if (r < 0) {
		conn_fail(c, BENCH_FAIL_CONNECT, uv_strerror(r));
		return;
	}
	if (c->ssl != NULL) {
		c->state = CONN_HANDSHAKE;
		tls_handshake(c); /* the ClientHello */
		return;
	}
	c->state = CONN_OPEN;
	c->cb->ready(c);
}

int bench_conn_open(struct bench_conn *c, uv_loop_t *loop,
		    const struct bench_conn_cb *cb, bool tls)
{
	int r = 0;

	c->cb = cb;
	c->skip = 0;
	c->bytes_in = c->bytes_out = 0;
	c->partial_len = 0;
	c->state = CONN_CONNECTING;
	c->connect_req.data = c;
	if (bench_opt.unix_path != NULL) {
		uv_pipe_init(loop, &c->u.pipe, 0);
		c->u.handle.data = c;
		uv_pipe_connect(&c->connect_req, &c->u.pipe, bench_opt.unix_path, on_connect);
	} else {
		uv_tcp_init(loop, &c->u.tcp);
		c->u.handle.data = c;
		uv_tcp_nodelay(&c->u.tcp, 1);
		r = uv_tcp_connect(&c->connect_req, &c->u.tcp,
				   (const struct sockaddr *)&bench_opt.addr, on_connect);
	}
	if (r == 0 && tls) {
		tls_new(c);
		c->state = CONN_CONNECTING; /* the handshake starts once connected */
	}
	return r;
}

int bench_conn_starttls(struct bench_conn *c)
{
	int r;

	if (c->state != CONN_OPEN || c->ssl != NULL)
		return -1;
	tls_new(c);
	r = SSL_do_handshake(c->ssl); /* the ClientHello */
	if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return -1;
	}
	return flush_tls(c);
}
