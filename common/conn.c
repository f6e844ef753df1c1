/*
 * conn.c — one client connection: accept, optional PROXY header, optional
 * TLS (implicit or STARTTLS), line-oriented input handed to the protocol,
 * queued output with back-pressure, timeouts, and an orderly close.
 *
 * Life cycle (enum conn_state):
 *   ACCEPTED   just accepted
 *   PROXY      a trusted proxy must send its header first
 *   HANDSHAKE  implicit TLS: the session opens after the handshake
 *   OPEN       the protocol's callbacks run
 *   CLOSING    no more input; queued output is being sent (bounded by
 *              output_timeout), then the handles are closed
 *   CLOSED     handles closing; freed when the last reference goes
 *
 * References keep the struct alive while libuv or the server's lists point
 * at it: one for the handles, one per write in flight, one for a thread-pool
 * job, one each while queued for flushing or for deferred input.
 *
 * Reading stops (uv_read_stop) while the session is paused or running a job,
 * while the input buffer is full, and while queued output is above the
 * high-water mark; it resumes when those clear.
 *
 * Layers, top to bottom: the protocol, then COMPRESS=DEFLATE when started
 * (conn_compress_start), then TLS, then the socket. Input: socket bytes
 * (raw) -> SSL_read -> compressed input (c->z) -> inflate -> the line
 * reader; each step moves only as much as the next has room for. Output:
 * conn_write -> deflate -> SSL_write -> out -> uv_write, with a sync flush
 * of the deflater each time queued output is flushed to the socket.
 */
#include "common-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

enum conn_state {
	CONN_ST_ACCEPTED,
	CONN_ST_PROXY,
	CONN_ST_HANDSHAKE,
	CONN_ST_OPEN,
	CONN_ST_CLOSING,
	CONN_ST_CLOSED,
};

struct conn_work {
	uv_work_t req;
	struct conn *c;
	conn_work_fn *work_cb;
	conn_done_fn *done_cb;
	conn_cancel_fn *cancel_cb;
	void *data;
};

struct conn_write_req {
	uv_write_t req;
	struct conn *c;
	struct buf b;
};

struct conn {
	struct conn *next, *prev;       /* server->conns */
	struct conn *dirty_next;        /* server->dirty */
	struct conn *deferred_next;     /* server->deferred */
	struct server *server;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t stream;
		uv_handle_t handle;
	} h;
	uv_timer_t timer;
	unsigned refs;
	unsigned handles_open;
	enum conn_state state;

	bool implicit_tls;      /* accepted on a listen_tls address */
	bool handshake_done;
	bool opened;            /* open_cb ran: close_cb is owed */
	bool refused;
	enum conn_refusal refusal;
	bool reading;
	bool paused;            /* by the session */
	bool eof;
	bool above_high;        /* output above the high-water mark */
	bool ip_counted;
	bool loopback;
	bool is_unix;
	bool dirty, deferred;
	bool in_dispatch;

	struct linereader lr;   /* plaintext input */
	struct buf raw;         /* PROXY header bytes or TLS ciphertext */
	size_t raw_off;
	struct buf out;         /* output not yet handed to uv_write */
	struct buf early_out;   /* plaintext written before the handshake */
	size_t in_flight;       /* bytes in uv_write requests */
	SSL *ssl;
	struct tls_io tls_io;
	struct zstream *z;      /* COMPRESS=DEFLATE, NULL when off */
	struct conn_work *work;

	struct arena *arena;
	void *data;
	struct log_ctx log;
	int remote_port;

	uint64_t timeout_ms;
	uint64_t last_input;
	uint64_t last_output;   /* last write progress (or when output began) */
	uint64_t close_started;
};

/* One static read buffer serves every connection: read callbacks consume it
 * before returning, so idle connections hold no read buffer at all. */
static char read_chunk[64 * 1024];

static void conn_dispatch(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_abort(struct conn *c, const char *reason);
static void conn_update_reading(struct conn *c);
static void conn_arm_timer(struct conn *c);
static void tls_pump(struct conn *c);
static void z_pump(struct conn *c);
static void z_flush(struct conn *c);
static void conn_read_start(struct conn *c);

static size_t high_water(const struct conn *c)
{
	return (size_t)c->server->svc->output_buffer_size;
}

/* Output beyond this closes the connection: protocols stop producing at
 * the high-water mark, so only a client that never reads gets here. */
static size_t output_cap(const struct conn *c)
{
	return high_water(c) * 4;
}

/* --------------------------------------------------------- references */

static void conn_free(struct conn *c)
{
	struct server *s = c->server;

	lr_free(&c->lr);
	buf_release(&c->raw);
	buf_release(&c->out);
	buf_release(&c->early_out);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	zs_free(&c->z);
	arena_free(&c->arena);
	free(c);
	server__conn_closed(s);
}

static void conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

/* ------------------------------------------------------------ accessors */

void conn_set_data(struct conn *c, void *data) { c->data = data; }
void *conn_get_data(const struct conn *c) { return c->data; }
struct log_ctx *conn_log_ctx(struct conn *c) { return &c->log; }
const char *conn_session_id(const struct conn *c) { return c->log.session; }
const char *conn_remote_ip(const struct conn *c) { return c->log.remote; }
int conn_remote_port(const struct conn *c) { return c->remote_port; }
bool conn_is_tls(const struct conn *c) { return c->ssl != NULL && c->handshake_done; }
bool conn_is_loopback(const struct conn *c) { return c->loopback; }
bool conn_is_secure(const struct conn *c) { return conn_is_tls(c) || c->loopback; }
const struct cfg_service *conn_service_cfg(const struct conn *c) { return c->server->svc; }

struct arena *conn_arena(struct conn *c)
{
	if (c->arena == NULL)
		c->arena = arena_new(0);
	return c->arena;
}

bool conn_can_starttls(const struct conn *c)
{
	return c->ssl == NULL && c->z == NULL && c->server->tls_ctx != NULL &&
		c->state == CONN_ST_OPEN;
}

/* ------------------------------------------------------------ addresses */

static void set_remote(struct conn *c, const struct sockaddr *sa)
{
	char ip[64] = "unknown";

	c->loopback = false;
	c->remote_port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		uv_ip4_name(sin, ip, sizeof(ip));
		c->remote_port = ntohs(sin->sin_port);
		c->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		c->remote_port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* Show and count mapped IPv4 peers as IPv4. */
			struct in_addr v4;

			memcpy(&v4, &sin6->sin6_addr.s6_addr[12], 4);
			inet_ntop(AF_INET, &v4, ip, sizeof(ip));
			c->loopback = (ntohl(v4.s_addr) >> 24) == 127;
		} else {
			uv_ip6_name(sin6, ip, sizeof(ip));
			c->loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	}
	snprintf(c->log.remote, sizeof(c->log.remote), "%s", ip);
}

/* ---------------------------------------------------------------- kick */

static void conn_mark_dirty(struct conn *c)
{
	if (c->dirty || c->state == CONN_ST_CLOSED)
		return;
	c->dirty = true;
	c->refs++;
	c->dirty_next = c->server->dirty;
	c->server->dirty = c;
	server__kick(c->server);
}

static void conn_defer_dispatch(struct conn *c)
{
	if (c->deferred || c->state >= CONN_ST_CLOSING)
		return;
	c->deferred = true;
	c->refs++;
	c->deferred_next = c->server->deferred;
	c->server->deferred = c;
	server__kick(c->server);
}

void conn__run_kick(struct server *s)
{
	/* Deferred input first: it may produce output to flush. */
	struct conn *list = s->deferred;

	s->deferred = NULL;
	while (list != NULL) {
		struct conn *c = list;

		list = c->deferred_next;
		c->deferred = false;
		if (c->state == CONN_ST_OPEN) {
			const struct log_ctx *prev = log_set_ctx(&c->log);

			conn_dispatch(c);
			log_set_ctx(prev);
		}
		conn_unref(c);
	}
	list = s->dirty;
	s->dirty = NULL;
	while (list != NULL) {
		struct conn *c = list;

		list = c->dirty_next;
		c->dirty = false;
		if (c->state != CONN_ST_CLOSED) {
			const struct log_ctx *prev = log_set_ctx(&c->log);

			conn_flush(c);
			log_set_ctx(prev);
		}
		conn_unref(c);
	}
}

/* ---------------------------------------------------------------- close */

static void handle_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles_open == 0)
		conn_unref(c);
}

/* Tear down now: the session's close_cb runs, handles close, and the
 * struct is freed when the last reference goes. */
static void conn_finish_close(struct conn *c)
{
	struct server *s = c->server;

	if (c->state == CONN_ST_CLOSED)
		return;
	c->state = CONN_ST_CLOSED;
	if (c->opened && s->def->handler->close_cb != NULL)
		s->def->handler->close_cb(c);
	c->opened = false;
	c->data = NULL;
	zs_free(&c->z);
	if (c->ip_counted) {
		server__ip_unref(s, c->log.remote);
		c->ip_counted = false;
	}
	s->conn_count--;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, handle_closed_cb);
	uv_close(&c->h.handle, handle_closed_cb);
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->state >= CONN_ST_CLOSING)
		return;
	log_info("disconnect reason=%s", reason);
	/* The last output (a BYE) must be decodable: flush the deflater
	 * through TLS before TLS goes, then drop the zlib state. */
	if (c->z != NULL) {
		z_flush(c);
		zs_free(&c->z);
	}
	if (c->state >= CONN_ST_CLOSING)
		return; /* the flush failed and aborted */
	c->state = CONN_ST_CLOSING;
	c->close_started = uv_now(c->server->loop);
	conn_update_reading(c);
	if (c->ssl != NULL && c->handshake_done) {
		/* Queue close_notify, then free the SSL object at once: OpenSSL
		 * keeps a 16 KiB write buffer after SSL_shutdown, which would add
		 * up when thousands of sessions close together. Nothing is
		 * written through TLS after this point. */
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	conn_mark_dirty(c);
	conn_arm_timer(c);
}

static void conn_abort(struct conn *c, const char *reason)
{
	if (c->state == CONN_ST_CLOSED)
		return;
	if (c->state < CONN_ST_CLOSING)
		log_info("disconnect reason=%s", reason);
	c->state = CONN_ST_CLOSING;
	buf_release(&c->out);
	conn_finish_close(c);
}

/* --------------------------------------------------------------- output */

static void write_cb(uv_write_t *req, int status)
{
	struct conn_write_req *w = (struct conn_write_req *)req;
	struct conn *c = w->c;
	const struct log_ctx *prev = log_set_ctx(&c->log);

	c->in_flight -= w->b.len;
	buf_release(&w->b);
	free(w);
	c->last_output = uv_now(c->server->loop);
	if (status < 0) {
		if (status != UV_ECANCELED)
			conn_abort(c, "write error");
	} else if (c->state == CONN_ST_CLOSING) {
		if (c->in_flight == 0 && c->out.len == 0)
			conn_finish_close(c);
	} else if (c->state != CONN_ST_CLOSED) {
		if (c->above_high && c->in_flight + c->out.len <= high_water(c) / 2) {
			c->above_high = false;
			if (c->state == CONN_ST_OPEN &&
			    c->server->def->handler->drain_cb != NULL)
				c->server->def->handler->drain_cb(c);
			conn_update_reading(c);
		}
	}
	log_set_ctx(prev);
	conn_unref(c);
}

static void conn_flush(struct conn *c)
{
	if (c->state == CONN_ST_CLOSED)
		return;
	if (c->z != NULL && c->state < CONN_ST_CLOSING) {
		/* End this batch of output so the client can decode it all.
		 * It is sent below: no need to be queued for flushing again. */
		bool dirty = c->dirty;

		c->dirty = true;
		z_flush(c);
		c->dirty = dirty;
		if (c->state == CONN_ST_CLOSED)
			return;
	}
	if (c->out.len > 0) {
		struct conn_write_req *w = xcalloc(1, sizeof(*w));
		uv_buf_t ub;

		/* Hand the buffer's storage to the request; out starts anew. */
		w->b = c->out;
		w->c = c;
		buf_init(&c->out, c->out.max);
		ub = uv_buf_init((char *)w->b.data, (unsigned)w->b.len);
		bool started = c->in_flight == 0;

		if (started)
			c->last_output = uv_now(c->server->loop);
		c->in_flight += w->b.len;
		c->refs++;
		int ret = uv_write(&w->req, &c->h.stream, &ub, 1, write_cb);

		if (ret < 0) {
			c->in_flight -= w->b.len;
			buf_release(&w->b);
			free(w);
			c->refs--;
			conn_abort(c, "write error");
			return;
		}
		if (c->in_flight >= high_water(c) && !c->above_high) {
			c->above_high = true;
			conn_update_reading(c);
		}
		/* The output deadline may come before the idle one. */
		if (started)
			conn_arm_timer(c);
	}
	if (c->state == CONN_ST_CLOSING && c->in_flight == 0)
		conn_finish_close(c);
}

static bool output_fits(struct conn *c, size_t len)
{
	size_t queued = c->in_flight + c->out.len + c->early_out.len;

	if (len > output_cap(c) || queued > output_cap(c) - len) {
		log_warn("output buffer full: client is not reading");
		conn_abort(c, "output overflow");
		return false;
	}
	return true;
}

/* Bytes below compression: to TLS or straight to the output queue. */
static void conn_write_wire(struct conn *c, const void *data, size_t len)
{
	if (c->ssl == NULL) {
		buf_append(&c->out, data, len);
	} else if (!c->handshake_done) {
		buf_append(&c->early_out, data, len);
		return;
	} else {
		const unsigned char *p = data;

		while (len > 0) {
			int n = len > 16384 ? 16384 : (int)len;
			int ret = SSL_write(c->ssl, p, n);

			if (ret <= 0) {
				log_info("TLS write failed: %s", tls_error_string());
				conn_abort(c, "TLS error");
				return;
			}
			p += ret;
			len -= (size_t)ret;
		}
	}
	if (c->in_flight + c->out.len >= high_water(c) && !c->above_high) {
		c->above_high = true;
		conn_update_reading(c);
	}
	conn_mark_dirty(c);
}

static void z_emit(void *ctx, const void *data, size_t len)
{
	struct conn *c = ctx;

	if (c->state != CONN_ST_CLOSED)
		conn_write_wire(c, data, len);
}

/* Sync-flush the deflater into the layers below. */
static void z_flush(struct conn *c)
{
	zs_flush(c->z, z_emit, c);
}

/*
 * With compression on, the output limits (output_buffer_size, the high-
 * water mark, and the cap at 4 times it) count compressed bytes, as they
 * go to the socket (after TLS, ciphertext), like the queue itself; the
 * deflater's own pending output is bounded by its fixed state. The cap
 * check below still takes len uncompressed, so a single write never
 * passes more than the cap into the deflater.
 */
void conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->state >= CONN_ST_CLOSING || len == 0)
		return;
	if (!output_fits(c, len))
		return;
	if (c->z != NULL && (c->ssl == NULL || c->handshake_done)) {
		zs_deflate(c->z, data, len, z_emit, c);
		/* Flushed when the queue goes out, even if nothing came yet. */
		if (c->state < CONN_ST_CLOSING)
			conn_mark_dirty(c);
		return;
	}
	conn_write_wire(c, data, len);
}

void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		conn_write(c, small, (size_t)n);
		return;
	}
	char *big = xcalloc(1, (size_t)n + 1);

	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	conn_write(c, big, (size_t)n);
	free(big);
}

bool conn_writable(const struct conn *c)
{
	return c->state == CONN_ST_OPEN &&
		c->in_flight + c->out.len + c->early_out.len < high_water(c);
}

size_t conn_output_pending(const struct conn *c)
{
	return c->in_flight + c->out.len + c->early_out.len;
}

/* ---------------------------------------------------------------- input */

/* Nothing is read while the session is paused or its job runs, so a
 * command loop stops by itself after queueing work. */
static bool input_deliverable(const struct conn *c)
{
	return c->state == CONN_ST_OPEN && !c->paused && c->work == NULL;
}

/* Compressed input is inflated by conn_dispatch. A protocol that reads from
 * its own callbacks (outside input_cb) may empty the line reader while
 * compressed input (or ciphertext behind it) waits: run the dispatch on
 * the next loop turn, or it would wait for bytes the client already sent. */
static void z_want_pump(struct conn *c)
{
	if (c->z != NULL && !c->in_dispatch && lr_has_room(&c->lr) &&
	    (zs_pending(c->z) > 0 || (c->ssl != NULL && c->raw_off < c->raw.len)))
		conn_defer_dispatch(c);
}

int conn_read_line(struct conn *c, const char **line_r, size_t *len_r)
{
	if (!input_deliverable(c))
		return 0;
	int ret = lr_read_line(&c->lr, line_r, len_r);

	z_want_pump(c);
	return ret;
}

size_t conn_read_bytes(struct conn *c, size_t max, const char **data_r)
{
	if (!input_deliverable(c))
		return 0;
	size_t n = lr_read_bytes(&c->lr, max, data_r);

	z_want_pump(c);
	return n;
}

size_t conn_input_pending(const struct conn *c)
{
	return lr_pending(&c->lr) + (c->z != NULL ? zs_pending(c->z) : 0);
}

void conn_set_line_max(struct conn *c, size_t max)
{
	lr_set_line_max(&c->lr, max);
	conn_update_reading(c);
}

void conn_pause(struct conn *c)
{
	c->paused = true;
	conn_update_reading(c);
}

void conn_resume(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	conn_update_reading(c);
	conn_defer_dispatch(c);
}

/* Hand buffered input to the protocol until it stops consuming. */
static void conn_dispatch(struct conn *c)
{
	const struct conn_handler *h = c->server->def->handler;

	if (c->in_dispatch)
		return; /* conn_resume from inside input_cb */
	c->in_dispatch = true;
	/* Bounded work per callback, so one pipelining client cannot starve
	 * the others: the rest waits for the next loop turn. */
	unsigned rounds;

	for (rounds = 0; input_deliverable(c) && rounds < 64; rounds++) {
		if (c->ssl != NULL && c->handshake_done)
			tls_pump(c);
		else if (c->z != NULL)
			z_pump(c);
		size_t before = lr_pending(&c->lr);

		if (before == 0 || !input_deliverable(c))
			break;
		h->input_cb(c);
		if (lr_pending(&c->lr) == before)
			break; /* waiting for more bytes */
	}
	c->in_dispatch = false;
	if (c->state >= CONN_ST_CLOSING)
		return;
	if (rounds == 64 && input_deliverable(c) &&
	    (lr_pending(&c->lr) > 0 || (c->z != NULL && zs_pending(c->z) > 0)))
		conn_defer_dispatch(c);
	lr_compact(&c->lr);
	if (c->eof && input_deliverable(c) && !c->deferred)
		conn_close(c, "disconnected");
	conn_update_reading(c);
}

static void conn_update_reading(struct conn *c)
{
	bool want = c->state < CONN_ST_CLOSING && !c->eof &&
		lr_has_room(&c->lr) && !c->above_high &&
		(c->z == NULL || zs_pending(c->z) == 0) &&
		(c->state != CONN_ST_OPEN || (!c->paused && c->work == NULL));

	if (want && !c->reading) {
		conn_read_start(c);
	} else if (!want && c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

/* ------------------------------------------------------------- compress */

/* Inflate compressed input into the line reader as far as it has room:
 * never more, so a small input that inflates to gigabytes waits in its
 * compressed form (a read chunk at most) until the protocol consumes. */
static void z_pump(struct conn *c)
{
	while (c->z != NULL && c->state < CONN_ST_CLOSING && lr_has_room(&c->lr) &&
	       zs_pending(c->z) > 0) {
		char plain[16384];
		size_t n;
		const char *error = NULL;
		int ret = zs_inflate(c->z, plain, sizeof(plain), &n, &error);

		if (n > 0)
			lr_feed(&c->lr, plain, n);
		if (ret < 0) {
			log_info("invalid compressed input: %s", error);
			conn_close(c, "invalid compressed input");
			return;
		}
		if (ret == ZS_END) {
			/* No more input can follow the final block. */
			c->eof = true;
			return;
		}
	}
}

/* Bytes from the socket or TLS: protocol input, or compressed input. */
static void conn_input_plain(struct conn *c, const char *data, size_t len)
{
	if (c->z == NULL) {
		lr_feed(&c->lr, data, len);
		return;
	}
	if (zs_feed(c->z, data, len) < 0) {
		log_error("bug: compressed input overflow");
		conn_abort(c, "compressed input overflow");
		return;
	}
	z_pump(c);
}

int conn_compress_start(struct conn *c)
{
	if (c->z != NULL || c->state != CONN_ST_OPEN || (c->ssl != NULL && !c->handshake_done))
		return -1;
	/* Room for what the line reader holds now plus a read chunk; reading
	 * stops while any compressed input waits, so that is the bound. */
	c->z = zs_new(c->lr.in.max + sizeof(read_chunk));
	if (c->z == NULL) {
		log_error("cannot start compression: zlib initialisation failed");
		return -1;
	}
	/* What the protocol has not read yet came after the command: it is
	 * compressed. The line reader's storage is left alone (the caller
	 * may still hold a line in it) and compacted after input_cb. */
	const char *data;
	size_t n = lr_read_bytes(&c->lr, SIZE_MAX, &data);

	c->lr.skipping = false;
	if (n > 0) {
		zs_feed(c->z, data, n);
		conn_defer_dispatch(c);
	}
	log_debug("compression started (deflate)");
	conn_update_reading(c);
	return 0;
}

/* ------------------------------------------------------------------ TLS */

static void conn_open(struct conn *c);

static void tls_handshake_done(struct conn *c)
{
	c->handshake_done = true;
	log_debug("TLS established protocol=%s cipher=%s", SSL_get_version(c->ssl),
		  SSL_get_cipher_name(c->ssl));
	if (c->state == CONN_ST_HANDSHAKE)
		conn_open(c);
	if (c->early_out.len > 0 && c->state == CONN_ST_OPEN) {
		struct buf early = c->early_out;

		buf_init(&c->early_out, c->early_out.max);
		conn_write(c, early.data, early.len);
		buf_release(&early);
	}
}

/* Move ciphertext from raw through the SSL object into the line reader,
 * as far as the line reader has room. */
static void tls_pump(struct conn *c)
{
	if (!c->handshake_done) {
		int ret = SSL_do_handshake(c->ssl);

		if (ret == 1) {
			tls_handshake_done(c);
		} else {
			int err = SSL_get_error(c->ssl, ret);

			if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
				log_info("TLS handshake failed: %s",
					 err == SSL_ERROR_SSL ? tls_error_string() :
					 "connection closed");
				ERR_clear_error();
				/* Send the alert, if any, then close. */
				conn_close(c, "TLS handshake failed");
			}
		}
		if (c->out.len > 0)
			conn_mark_dirty(c);
	}
	while (c->handshake_done && c->state < CONN_ST_CLOSING && lr_has_room(&c->lr)) {
		char plain[16384];

		if (c->z != NULL) {
			/* Compressed input first; read more only once it is
			 * all inflated (else the line reader is full). */
			z_pump(c);
			if (c->state >= CONN_ST_CLOSING || zs_pending(c->z) > 0 ||
			    !lr_has_room(&c->lr))
				break;
		}
		int ret = SSL_read(c->ssl, plain, sizeof(plain));

		if (ret > 0) {
			conn_input_plain(c, plain, (size_t)ret);
			continue;
		}
		int err = SSL_get_error(c->ssl, ret);

		if (err == SSL_ERROR_ZERO_RETURN) {
			c->eof = true;
		} else if (err != SSL_ERROR_WANT_READ) {
			log_info("TLS read failed: %s", err == SSL_ERROR_SSL ?
				 tls_error_string() : "connection closed");
			ERR_clear_error();
			conn_abort(c, "TLS error");
		}
		break;
	}
	if (c->raw_off == c->raw.len) {
		c->raw_off = 0;
		buf_clear(&c->raw);
		buf_shrink_if_empty(&c->raw, 0);
	}
	if (c->out.len > 0)
		conn_mark_dirty(c);
}

static int conn_tls_start(struct conn *c)
{
	/* Output written so far is plaintext and goes out as such (the
	 * STARTTLS reply); everything written after this goes through TLS. */
	c->tls_io.in = &c->raw;
	c->tls_io.in_off = &c->raw_off;
	c->tls_io.out = &c->out;
	c->ssl = tls_new(c->server->tls_ctx, &c->tls_io);
	if (c->ssl == NULL) {
		log_error("cannot create TLS session: %s", tls_error_string());
		return -1;
	}
	c->handshake_done = false;
	return 0;
}

int conn_starttls(struct conn *c)
{
	if (!conn_can_starttls(c))
		return -1;
	/* Nothing the client pipelined after the command survives. */
	lr_discard(&c->lr);
	if (conn_tls_start(c) < 0) {
		conn_abort(c, "TLS error");
		return -1;
	}
	/* No TLS 1.3 session ticket after STARTTLS: it would arrive just as
	 * the client sends its first command, and a client that reads and
	 * writes its TLS socket from two threads (imaplib2, offlineimap's
	 * IMAP library) then loses that command (measured: 1 run in 10). A
	 * client resumes the sessions of implicit TLS; after STARTTLS it
	 * starts anew anyway. */
	SSL_set_num_tickets(c->ssl, 0);
	return 0;
}

/* ------------------------------------------------------------- timers */

static uint64_t min_deadline(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t session_timeout(const struct conn *c)
{
	if (c->state < CONN_ST_OPEN)
		return c->server->svc->login_timeout_ms;
	return c->timeout_ms;
}

static void conn_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct log_ctx *prev = log_set_ctx(&c->log);
	uint64_t now = uv_now(c->server->loop);
	uint64_t out_to = c->server->svc->output_timeout_ms;
	uint64_t idle = session_timeout(c);

	if (c->state == CONN_ST_CLOSING) {
		if (now - c->close_started >= out_to)
			conn_abort(c, "output timeout while closing");
	} else if (c->in_flight > 0 && now - c->last_output >= out_to) {
		conn_abort(c, "output timeout");
	} else if (idle > 0 && now - c->last_input >= idle) {
		if (c->opened && c->server->def->handler->notice_cb != NULL)
			c->server->def->handler->notice_cb(c, CONN_NOTICE_IDLE_TIMEOUT);
		conn_close(c, "idle timeout");
	}
	if (c->state != CONN_ST_CLOSED)
		conn_arm_timer(c);
	log_set_ctx(prev);
}

static void conn_arm_timer(struct conn *c)
{
	if (c->state == CONN_ST_CLOSED)
		return;
	uint64_t now = uv_now(c->server->loop);
	uint64_t out_to = c->server->svc->output_timeout_ms;
	uint64_t idle = session_timeout(c);
	uint64_t deadline = UINT64_MAX;

	if (c->state == CONN_ST_CLOSING) {
		deadline = c->close_started + out_to;
	} else {
		if (idle > 0)
			deadline = c->last_input + idle;
		if (c->in_flight > 0)
			deadline = min_deadline(deadline, c->last_output + out_to);
	}
	if (deadline == UINT64_MAX) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, conn_timer_cb, deadline > now ? deadline - now : 0, 0);
}

void conn_set_timeout(struct conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	conn_arm_timer(c);
}

/* --------------------------------------------------------- thread pool */

static void work_thread_cb(uv_work_t *req)
{
	struct conn_work *w = req->data;

	w->work_cb(w->data);
}

static void work_after_cb(uv_work_t *req, int status)
{
	struct conn_work *w = req->data;
	struct conn *c = w->c;
	const struct log_ctx *prev = log_set_ctx(&c->log);

	c->work = NULL;
	if (c->state == CONN_ST_OPEN) {
		w->done_cb(c, w->data);
		conn_update_reading(c);
		conn_defer_dispatch(c);
	} else if (w->cancel_cb != NULL) {
		w->cancel_cb(w->data);
	}
	free(w);
	log_set_ctx(prev);
	conn_unref(c);
}

int conn_queue_work(struct conn *c, conn_work_fn *work_cb, conn_done_fn *done_cb,
		    conn_cancel_fn *cancel_cb, void *data)
{
	if (c->work != NULL || c->state != CONN_ST_OPEN)
		return -1;
	struct conn_work *w = xcalloc(1, sizeof(*w));

	w->c = c;
	w->work_cb = work_cb;
	w->done_cb = done_cb;
	w->cancel_cb = cancel_cb;
	w->data = data;
	w->req.data = w;
	if (uv_queue_work(c->server->loop, &w->req, work_thread_cb, work_after_cb) < 0) {
		free(w);
		return -1;
	}
	c->work = w;
	c->refs++;
	conn_update_reading(c);
	return 0;
}

/* ----------------------------------------------------- accept and open */

static void conn_open(struct conn *c)
{
	const struct conn_handler *h = c->server->def->handler;

	c->state = CONN_ST_OPEN;
	if (c->refused) {
		if (h->refuse_cb != NULL)
			h->refuse_cb(c, c->refusal);
		conn_close(c, c->refusal == CONN_REFUSE_TOO_MANY ?
			   "too many connections" : "too many connections from address");
		return;
	}
	c->opened = true;
	c->timeout_ms = c->server->svc->login_timeout_ms;
	conn_arm_timer(c);
	h->open_cb(c);
}

/* The real client address is known: apply the per-address limit, then
 * start TLS or open the session. */
static void conn_begin(struct conn *c)
{
	struct server *s = c->server;
	uint32_t limit = s->svc->max_connections_per_ip;

	log_info("connect remote=%s port=%d%s", c->log.remote, c->remote_port,
		 c->implicit_tls ? " tls=yes" : "");
	if (!c->refused && !c->is_unix) {
		uint32_t n = server__ip_ref(s, c->log.remote);

		c->ip_counted = true;
		if (limit != 0 && n > limit) {
			c->refused = true;
			c->refusal = CONN_REFUSE_TOO_MANY_PER_IP;
		}
	}
	if (c->implicit_tls) {
		c->state = CONN_ST_HANDSHAKE;
		if (conn_tls_start(c) < 0)
			conn_abort(c, "TLS error");
	} else {
		conn_open(c);
	}
}

static void conn_input_raw(struct conn *c, const char *data, size_t len)
{
	if (c->state == CONN_ST_PROXY) {
		struct proxy_result pr;

		if (buf_append(&c->raw, data, len) < 0) {
			conn_abort(c, "PROXY header too long");
			return;
		}
		int ret = proxy_parse(c->raw.data, c->raw.len, &pr);

		if (ret == 0) {
			if (c->raw.len >= PROXY_MAX_HEADER)
				conn_abort(c, "PROXY header too long");
			return;
		}
		if (ret < 0) {
			log_info("invalid PROXY header from trusted proxy remote=%s",
				 c->log.remote);
			conn_abort(c, "invalid PROXY header");
			return;
		}
		if (!pr.local) {
			log_debug("PROXY header from %s", c->log.remote);
			set_remote(c, (struct sockaddr *)&pr.src);
		}
		c->raw_off = (size_t)ret;
		conn_begin(c);
		if (c->state >= CONN_ST_CLOSING)
			return;
		if (c->ssl == NULL) {
			/* Plaintext after the header is protocol input. */
			lr_feed(&c->lr, c->raw.data + c->raw_off, c->raw.len - c->raw_off);
			buf_release(&c->raw);
			c->raw_off = 0;
		} else {
			tls_pump(c);
		}
		return;
	}
	if (c->ssl != NULL) {
		if (c->raw_off > 0 && c->raw.len + len > c->raw.max) {
			buf_consume(&c->raw, c->raw_off);
			c->raw_off = 0;
		}
		if (buf_append(&c->raw, data, len) < 0) {
			conn_abort(c, "TLS input overflow");
			return;
		}
		tls_pump(c);
		return;
	}
	conn_input_plain(c, data, len);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	*b = uv_buf_init(read_chunk, sizeof(read_chunk));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = stream->data;
	const struct log_ctx *prev = log_set_ctx(&c->log);

	if (nread > 0) {
		c->last_input = uv_now(c->server->loop);
		conn_input_raw(c, b->base, (size_t)nread);
	} else if (nread == UV_EOF) {
		c->eof = true;
	} else if (nread < 0) {
		conn_abort(c, nread == UV_ECONNRESET ? "connection reset" : "read error");
	}
	if (c->state == CONN_ST_OPEN) {
		conn_dispatch(c);
	} else if (c->eof && c->state < CONN_ST_CLOSING) {
		conn_abort(c, "disconnected");
	}
	if (c->state != CONN_ST_CLOSED)
		conn_update_reading(c);
	log_set_ctx(prev);
}

static void conn_read_start(struct conn *c)
{
	if (uv_read_start(&c->h.stream, alloc_cb, read_cb) == 0)
		c->reading = true;
}

void conn__accept(struct listener *l)
{
	struct server *s = l->server;
	struct conn *c = xcalloc(1, sizeof(*c));
	int ret;

	c->server = s;
	c->refs = 1;
	c->implicit_tls = l->tls;
	if (l->is_pipe)
		ret = uv_pipe_init(s->loop, &c->h.pipe, 0);
	else
		ret = uv_tcp_init(s->loop, &c->h.tcp);
	if (ret < 0) {
		log_error("cannot create connection handle: %s", uv_strerror(ret));
		free(c);
		return;
	}
	c->h.handle.data = c;
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 2;
	lr_init(&c->lr, (size_t)s->svc->max_line_length);
	buf_init(&c->raw, PROXY_MAX_HEADER + sizeof(read_chunk) + 32 * 1024);
	buf_init(&c->out, SIZE_MAX / 2);
	buf_init(&c->early_out, SIZE_MAX / 2);
	log_new_session_id(c->log.session);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	s->conns_allocated++;
	c->last_input = c->last_output = uv_now(s->loop);

	const struct log_ctx *prev = log_set_ctx(&c->log);

	ret = uv_accept(&l->h.stream, &c->h.stream);
	if (ret < 0) {
		log_warn("accept failed: %s", uv_strerror(ret));
		c->state = CONN_ST_CLOSING;
		conn_finish_close(c);
		log_set_ctx(prev);
		return;
	}
	if (l->is_pipe) {
		snprintf(c->log.remote, sizeof(c->log.remote), "unix");
		c->loopback = true;
		c->is_unix = true;
	} else {
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);

		memset(&ss, 0, sizeof(ss));
		uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &sslen);
		uv_tcp_nodelay(&c->h.tcp, 1);
		set_remote(c, (struct sockaddr *)&ss);
		if (server__is_trusted_proxy(s, (struct sockaddr *)&ss))
			c->state = CONN_ST_PROXY;
	}
	if (s->conn_count > s->svc->max_connections) {
		c->refused = true;
		c->refusal = CONN_REFUSE_TOO_MANY;
	}
	if (c->state != CONN_ST_PROXY)
		conn_begin(c);
	if (c->state < CONN_ST_CLOSED) {
		conn_arm_timer(c);
		conn_update_reading(c);
	}
	log_set_ctx(prev);
}

/* --------------------------------------------------------- server-wide */

void conn__notify_shutdown(struct server *s)
{
	struct conn *c = s->conns;

	while (c != NULL) {
		struct conn *next = c->next;
		const struct log_ctx *prev = log_set_ctx(&c->log);

		if (c->state == CONN_ST_OPEN && c->opened) {
			if (s->def->handler->notice_cb != NULL)
				s->def->handler->notice_cb(c, CONN_NOTICE_SHUTDOWN);
			conn_close(c, "shutdown");
		} else if (c->state < CONN_ST_CLOSING) {
			conn_abort(c, "shutdown");
		}
		log_set_ctx(prev);
		c = next;
	}
}

void conn__abort_all(struct server *s)
{
	while (s->conns != NULL) {
		struct conn *c = s->conns;
		const struct log_ctx *prev = log_set_ctx(&c->log);

		conn_abort(c, "shutdown timeout");
		log_set_ctx(prev);
	}
}
