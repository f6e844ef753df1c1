/*
 * common-private.h — internals shared between the files of common/ (and
 * its unit tests and fuzz targets). Nothing outside common/ and tests/
 * includes this.
 */
#ifndef TERN_COMMON_PRIVATE_H
#define TERN_COMMON_PRIVATE_H

#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <uv.h>

/* ----------------------------------------------------------- linereader */

/*
 * Input buffer split into lines and raw byte runs. It holds at most
 * line_max + slack bytes: the connection stops reading from the socket when
 * lr_has_room is false, so a feed of one read chunk always fits.
 */
#define LR_SLACK (64 * 1024 + 2)

struct linereader {
	struct buf in;
	size_t pos;       /* start of unread data in in.data */
	size_t scan;      /* offset from pos already searched for LF */
	size_t line_max;
	bool skipping;    /* discarding the rest of an overlong line */
};

void lr_init(struct linereader *lr, size_t line_max);
void lr_set_line_max(struct linereader *lr, size_t line_max);
/* Append bytes; returns 0, or BUF_ETOOBIG if they do not fit (the caller
 * keeps to lr_has_room, so that is a bug, not client behaviour). */
int lr_feed(struct linereader *lr, const void *data, size_t len);
/* As conn_read_line / conn_read_bytes in common.h. */
int lr_read_line(struct linereader *lr, const char **line_r, size_t *len_r);
size_t lr_read_bytes(struct linereader *lr, size_t max, const char **data_r);
size_t lr_pending(const struct linereader *lr);
/* True while another read chunk may be fed. */
bool lr_has_room(const struct linereader *lr);
/* Drop everything buffered (STARTTLS). */
void lr_discard(struct linereader *lr);
/* Move unread data to the front; release storage when empty. */
void lr_compact(struct linereader *lr);
void lr_free(struct linereader *lr);

/* ---------------------------------------------------------------- proxy */

/* PROXY protocol header (v1 text or v2 binary). */
#define PROXY_MAX_HEADER (16 + 2048)

struct proxy_result {
	bool local;                      /* LOCAL/UNKNOWN: keep the real peer */
	struct sockaddr_storage src;
};

/* >0: header complete, that many bytes consumed; 0: need more; -1: not a
 * valid header (close the connection). */
int proxy_parse(const unsigned char *data, size_t len, struct proxy_result *r);

/* ------------------------------------------------------------------ tls */

/* Where a TLS connection's ciphertext comes from and goes to: a custom BIO
 * reads in->data[*in_off..] and appends to out. */
struct tls_io {
	struct buf *in;
	size_t *in_off;
	struct buf *out;
};

/* Build a server context from [tls]: certificate chain, key, protocol
 * floor, ciphers; alpn (or NULL) is the protocol a client offering ALPN
 * must include. NULL with *error_r (malloc'd) on failure. */
SSL_CTX *tls_ctx_new(const struct cfg *cfg, const char *alpn, char **error_r);
/* A server SSL bound to io. */
SSL *tls_new(SSL_CTX *ctx, struct tls_io *io);
/* Text of the last OpenSSL error queue entries (static buffer). */
const char *tls_error_string(void);
void tls_library_init(void);

/* ------------------------------------------------------------- compress */

/*
 * COMPRESS=DEFLATE (compress.c): a raw deflate stream each way. Output:
 * zs_deflate compresses without flushing, zs_flush ends what was given so
 * far with a sync flush (00 00 ff ff) so the peer can decode all of it;
 * compressed bytes go to emit as they are produced. Input: zs_feed keeps
 * compressed bytes (at most in_max pending), zs_inflate inflates at most
 * max bytes of them into out.
 */
struct zstream;
typedef void zs_emit_fn(void *ctx, const void *data, size_t len);

#define ZS_END 1

/* NULL if zlib cannot initialise (allocation failure aborts). */
struct zstream *zs_new(size_t in_max);
void zs_free(struct zstream **zs);
void zs_deflate(struct zstream *zs, const void *data, size_t len, zs_emit_fn *emit,
		void *ctx);
/* A sync flush, if anything was deflated since the last one. */
void zs_flush(struct zstream *zs, zs_emit_fn *emit, void *ctx);
/* 0, or BUF_ETOOBIG beyond in_max (the caller keeps to its bound, so that
 * is a bug). Ignored after the stream ended. */
int zs_feed(struct zstream *zs, const void *data, size_t len);
/* Compressed bytes fed and not yet inflated. */
size_t zs_pending(const struct zstream *zs);
/* Inflate into out (at most max bytes, *len_r of them): 0 when more input
 * may follow (pending input left over means out was full), ZS_END when
 * the client ended its stream (the rest is dropped), -1 with *error_r
 * (static text) on invalid data. */
int zs_inflate(struct zstream *zs, void *out, size_t max, size_t *len_r,
	       const char **error_r);

/* ------------------------------------------------------ server and conn */

struct listener {
	struct listener *next;
	struct server *server;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t stream;
		uv_handle_t handle;
	} h;
	bool is_pipe;
	bool tls;               /* implicit TLS */
	char *addr;             /* as configured */
};

struct ip_count;

struct cidr_net {
	struct sockaddr_storage net;
	unsigned bits;
};

struct server {
	uv_loop_t *loop;
	const struct service_def *def;
	struct cfg *cfg;
	const struct cfg_service *svc; /* the def->name section of cfg */
	SSL_CTX *tls_ctx;               /* NULL: no TLS */
	struct listener *listeners;
	struct conn *conns;             /* all live connections */
	uint32_t conn_count;             /* open connections (limits) */
	uint32_t conns_allocated;        /* not yet freed (clean shutdown) */
	struct cidr_net *trusted;        /* trusted_proxies, parsed */
	size_t trusted_count;
	struct ip_count **ip_table;     /* per-address connection counts */
	size_t ip_table_size;
	struct conn *dirty;             /* connections with output to flush */
	struct conn *deferred;          /* connections to dispatch input to */
	uv_idle_t kick;                 /* runs flushes and deferred input */
	bool kick_active;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t shutdown_timer;
	bool shutting_down;
	bool finished;
};

/* conn.c */
void conn__accept(struct listener *l);
void conn__notify_shutdown(struct server *s);
void conn__abort_all(struct server *s);
void conn__run_kick(struct server *s);

/* server.c */
void server__kick(struct server *s);
void server__conn_closed(struct server *s);
/* Per-address counts: returns the count after incrementing. */
uint32_t server__ip_ref(struct server *s, const char *ip);
void server__ip_unref(struct server *s, const char *ip);
/* Is addr (the real peer) allowed to send a PROXY header? */
bool server__is_trusted_proxy(const struct server *s, const struct sockaddr *addr);

/* netaddr.c: "192.0.2.1:143" or "[2001:db8::1]:993": NULL with *ss_r set,
 * or a static text saying what is wrong. */
const char *netaddr_parse_inet(const char *text, struct sockaddr_storage *ss_r);
/* As above, also accepting "unix:/absolute/path": NULL if valid. */
const char *netaddr_check_listen(const char *text);
/* "a.b.c.d/n" or "v6/n" (or a bare address): 0 on success. */
int cidr_parse(const char *text, struct sockaddr_storage *net_r, unsigned *bits_r);
bool cidr_match(const struct sockaddr_storage *net, unsigned bits,
		const struct sockaddr *addr);

#endif
