/*
 * common.h — the runtime every Tern program shares: arena and buffer types,
 * logging, configuration, the libuv listener/connection framework with TLS,
 * and the daemon life cycle (privilege drop, signals, shutdown).
 *
 * This is the one public header of common/. Conventions (shared/STYLE.md):
 * functions return an int where below 0 is an error, 0 means "need more" or
 * "not yet" and above 0 means done; output parameters end in _r; destroy
 * functions take a pointer to the pointer and set it to NULL. Allocation
 * failure logs and aborts: per-client limits, not malloc, stop abuse.
 *
 * Everything here runs on the one libuv loop thread unless a comment says
 * otherwise.
 */
#ifndef TERN_COMMON_H
#define TERN_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TERN_VERSION "0.1.0"

#define ATTR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- memory */

/* Zeroed allocation that aborts (after logging) on failure. Never NULL. */
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);

/* Overwrite a secret so the compiler cannot elide it. */
void mem_wipe(void *p, size_t n);

/* Constant-time comparison of two equally long byte strings: 0 if equal. */
int mem_equal_ct(const void *a, const void *b, size_t n);

/*
 * Arena: many small allocations freed together. A session owns one for its
 * whole life, and each command gets another that is reset after the tagged
 * reply. An arena allocates nothing until first used, so an idle connection
 * with an empty arena costs only the struct.
 */
struct arena;

/* chunk_size is the size of each chunk taken from malloc (0: 1 KiB); the
 * first chunk is smaller (256 bytes), as many sessions need no more. */
struct arena *arena_new(size_t chunk_size);
/* Zeroed, 16-byte aligned memory valid until arena_reset/arena_free. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) ATTR_PRINTF(2, 3);
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap) ATTR_PRINTF(2, 0);
/* Release everything allocated; keeps one chunk for reuse. */
void arena_reset(struct arena *a);
void arena_free(struct arena **a);
/* Bytes currently taken from malloc by the arena (chunks and headers). */
size_t arena_footprint(const struct arena *a);

/*
 * Byte buffer: binary-safe, with a maximum fixed at creation. Growing past
 * the maximum fails with BUF_ETOOBIG and leaves the buffer unchanged. A NUL
 * follows the data for convenience (not counted in len). Storage is taken
 * lazily and can be released while the buffer is empty.
 */
struct buf {
	unsigned char *data;
	size_t len;
	size_t cap;
	size_t max;
};
#define BUF_ETOOBIG (-2)

void buf_init(struct buf *b, size_t max);
/* Make room for extra more bytes: 0 on success, BUF_ETOOBIG. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) ATTR_PRINTF(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) ATTR_PRINTF(2, 0);
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Empty the buffer, keeping its storage. */
void buf_clear(struct buf *b);
/* Free the storage; the buffer stays usable (and empty). */
void buf_release(struct buf *b);
/* Release storage if the buffer is empty and its capacity is above keep. */
void buf_shrink_if_empty(struct buf *b, size_t keep);

/* -------------------------------------------------------- text encodings */

/*
 * base64 digits (RFC 4648 §4) with c63 as the 64th: '/' for base64, ','
 * for the modified base64 of IMAP's modified UTF-7. Each codec keeps its
 * own rules for padding, whitespace and strictness.
 */
/* The value (0..63) of digit c, or -1 for anything else, '=' included. */
int base64_value(unsigned char c, char c63);
/* The digit for the low 6 bits of v. */
char base64_digit(unsigned int v, char c63);

/*
 * Decode one UTF-8 sequence from s (n bytes available, n >= 1): its length
 * (1..4) with the code point in *cp_r, or -1 if it is not valid UTF-8 (a
 * stray continuation byte, a truncated sequence, an overlong form, a
 * surrogate, a code point above U+10FFFF).
 */
int utf8_decode(const void *s, size_t n, uint32_t *cp_r);

/* --------------------------------------------------------------- logging */

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

/*
 * Who a log line is about. The framework sets the current context around
 * every callback into a session, so each line carries the session id and,
 * once known, the user. The context is per thread: thread-pool jobs log
 * without one.
 */
struct log_ctx {
	char session[16];
	char user[128];
	char remote[64];
};

/* ident is the program name (tern-imapd ...), prefixed to every line. */
void log_init(const char *ident, enum log_target target, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* The current session context (may be NULL); returns the previous one. */
const struct log_ctx *log_set_ctx(const struct log_ctx *ctx);

/* Never pass a password or an AUTH exchange to these (DESIGN invariant 6). */
void log_error(const char *fmt, ...) ATTR_PRINTF(1, 2);
void log_warn(const char *fmt, ...) ATTR_PRINTF(1, 2);
void log_info(const char *fmt, ...) ATTR_PRINTF(1, 2);
void log_debug(const char *fmt, ...) ATTR_PRINTF(1, 2);
/* As above, appending ": <strerror(err)>" (err is a positive errno). */
void log_error_errno(int err, const char *fmt, ...) ATTR_PRINTF(2, 3);
void log_warn_errno(int err, const char *fmt, ...) ATTR_PRINTF(2, 3);

/* Fill id with a random printable session id (at least 12 chars + NUL). */
void log_new_session_id(char id[16]);

/* --------------------------------------------------------- configuration */

/*
 * tern.conf: one INI file, a section per daemon. Every key is typed and has
 * a default; docs/configuration.md and etc/tern.conf document each one.
 * Unknown sections or keys and bad values are errors reported as
 * "file:line: message".
 */

/* A list of strings (listen addresses, trusted proxy networks). */
struct cfg_strlist {
	char **items;
	size_t count;
};

/* Settings of one network service: the [imap], [pop3] and [lmtp] sections. */
struct cfg_service {
	struct cfg_strlist listen;      /* plain (STARTTLS) or unix:/path */
	struct cfg_strlist listen_tls;  /* implicit TLS */
	uint32_t max_connections;
	uint32_t max_connections_per_ip;
	uint64_t login_timeout_ms;      /* before authentication */
	uint64_t idle_timeout_ms;       /* after authentication */
	uint64_t output_timeout_ms;     /* client not reading its output */
	uint64_t shutdown_timeout_ms;   /* grace period on SIGTERM */
	uint64_t max_line_length;       /* before authentication */
	uint64_t max_line_length_auth;  /* after authentication */
	uint64_t output_buffer_size;    /* back-pressure high-water mark */
	struct cfg_strlist trusted_proxies; /* CIDRs allowed to send PROXY */
};

/* Whose passwords PAM checks and where users are looked up ([auth] users). */
/* How tern-pop3d builds UIDLs from UIDVALIDITY and UID ([pop3] uidl_format). */
enum cfg_uidl_format {
	CFG_UIDL_DOVECOT, /* %08x UID, %08x UIDVALIDITY (Dovecot's default) */
	CFG_UIDL_COURIER, /* UID<uid>-<uidvalidity> (Courier) */
	CFG_UIDL_CYRUS,   /* <uidvalidity>.<uid> (Cyrus) */
};

enum cfg_user_kind {
	CFG_USERS_VIRTUAL, /* Tern's users database, pam_tern */
	CFG_USERS_SYSTEM,  /* the system's accounts, pam_unix */
};

struct cfg {
	char *path;
	/* [global] */
	char *mail_user;
	char *mail_root;
	enum log_target log_target;
	enum log_level log_level;
	/* [tls] */
	char *tls_cert;
	char *tls_key;
	char *tls_min_protocol;         /* "TLSv1.2" or "TLSv1.3" */
	char *tls_ciphers;              /* TLS 1.2 cipher list */
	char *tls_ciphersuites;         /* TLS 1.3 suites */
	/* [imap] [pop3] [lmtp] */
	struct cfg_service imap;
	struct cfg_service pop3;
	struct cfg_service lmtp;
	/* [lmtp] only: delivery */
	char *lmtp_hostname;            /* "": the system's host name */
	struct cfg_strlist lmtp_local_domains; /* user@these is user */
	char *lmtp_recipient_delimiter; /* "": no user+detail addresses */
	bool lmtp_save_to_detail_mailbox;
	uint64_t lmtp_max_message_size;
	uint32_t lmtp_max_recipients;   /* per transaction */
	bool lmtp_quota_full_tempfail;  /* a full quota is 4xx, not 5xx */
	/* [imap] only */
	uint64_t imap_append_limit;     /* largest APPEND message (APPENDLIMIT) */
	uint32_t imap_max_nesting;      /* parenthesised lists inside lists */
	uint32_t imap_max_sequence_ranges; /* ranges in one sequence set */
	uint32_t imap_max_user_connections_per_ip; /* logged-in sessions; 0: no limit */
	/* [pop3] only */
	enum cfg_uidl_format pop3_uidl_format;
	uint64_t pop3_login_delay_ms;   /* 0: no LOGIN-DELAY */
	/* [auth] */
	enum cfg_user_kind auth_users;
	char *auth_users_db;
	char *auth_pam_service;
	char *auth_pam_confdir;
	uint32_t auth_worker_threads;     /* PAM checks in flight at once */
	uint64_t auth_request_timeout_ms; /* a check taking longer fails */
	uint64_t auth_failure_delay_ms;   /* first failure's delay per address */
	uint64_t auth_failure_delay_max_ms;
	uint32_t auth_max_concurrent_per_ip;
	uint32_t auth_max_failures;       /* per connection, then disconnect */
	struct cfg_strlist auth_master_users;
	char *auth_master_separator;
};

/*
 * Parse the file at path. On success *cfg_r is a new configuration (free
 * with cfg_free) and 1 is returned. On error, -1 and *error_r is a
 * malloc'd "file:line: message" (line 0 when the file cannot be read or a
 * check spans the whole file) that the caller frees.
 */
int cfg_load(const char *path, struct cfg **cfg_r, char **error_r);
/* The same for text in memory; name is used in error messages. */
int cfg_load_string(const char *name, const char *text, struct cfg **cfg_r,
		    char **error_r);
void cfg_free(struct cfg **cfg);
/* Print the effective configuration, every key, in tern.conf syntax. */
void cfg_print(const struct cfg *cfg, FILE *out);
/* The [section] of a service by its name ("imap", "pop3", "lmtp"). */
const struct cfg_service *cfg_service_get(const struct cfg *cfg, const char *name);

/* ---------------------------------------------- listeners and connections */

struct conn;
struct server;

/* Why a connection is refused before its session opens. */
enum conn_refusal {
	CONN_REFUSE_TOO_MANY,        /* max_connections reached */
	CONN_REFUSE_TOO_MANY_PER_IP, /* max_connections_per_ip reached */
};

/* Why the framework is closing a session after calling notice_cb. */
enum conn_notice {
	CONN_NOTICE_IDLE_TIMEOUT,
	CONN_NOTICE_SHUTDOWN,
};

/*
 * What a protocol gives the framework. Callbacks run on the loop; each is
 * called with the log context set to the connection's.
 */
struct conn_handler {
	/* Session starts: allocate session state, write the greeting. For
	 * implicit TLS the greeting is sent once the handshake completes. */
	void (*open_cb)(struct conn *c);
	/* Input may be available: pull it with conn_read_line/_bytes until they
	 * return 0, or stop early with conn_pause. */
	void (*input_cb)(struct conn *c);
	/* Optional: queued output fell below the low-water mark. Producers of
	 * large responses continue here. */
	void (*drain_cb)(struct conn *c);
	/* Optional: write a last line (BYE) before the framework closes the
	 * connection for the given reason. */
	void (*notice_cb)(struct conn *c, enum conn_notice why);
	/* Optional: write a refusal line before the framework closes a
	 * connection it will not serve. Session state does not exist. */
	void (*refuse_cb)(struct conn *c, enum conn_refusal why);
	/* The connection is gone: free session state. No writes possible. */
	void (*close_cb)(struct conn *c);
};

struct uv_loop_s;

/*
 * A daemon's protocol: its config section, ALPN name and handler, and
 * optional life-cycle hooks (NULL: none), through which a daemon starts
 * helpers such as the auth worker without common/ knowing about them.
 */
struct service_def {
	const char *name;          /* "imap": the [imap] section, log ident */
	const char *program;       /* "tern-imapd" */
	const char *alpn;          /* "imap" or NULL for no ALPN check */
	const struct conn_handler *handler;
	/* As root, after the listeners are bound and before the privilege
	 * drop (fork helper processes here). Below 0 stops start-up. */
	int (*prepare_cb)(const struct cfg *cfg);
	/* After the drop, before the first connection is served: attach to
	 * the loop. Below 0 stops start-up. */
	int (*start_cb)(struct uv_loop_s *loop);
	/* SIGHUP, after the new configuration loaded (valid during the call
	 * only: keep copies). */
	void (*reload_cb)(const struct cfg *cfg);
	/* Shutdown, once every connection is gone (or start-up failed after
	 * prepare_cb succeeded): stop helpers and close their handles. */
	void (*stop_cb)(void);
};

/* Session data pointer, owned by the protocol. */
void conn_set_data(struct conn *c, void *data);
void *conn_get_data(const struct conn *c);
/* Arena living as long as the connection. */
struct arena *conn_arena(struct conn *c);
/* Log context (session id, user, remote) of the connection. */
struct log_ctx *conn_log_ctx(struct conn *c);
const char *conn_session_id(const struct conn *c);
/* Remote address without port ("192.0.2.1", "2001:db8::1", "unix"), after
 * any PROXY header. */
const char *conn_remote_ip(const struct conn *c);
int conn_remote_port(const struct conn *c);
bool conn_is_tls(const struct conn *c);
/* True for TLS and for loopback/unix connections. */
bool conn_is_secure(const struct conn *c);
bool conn_is_loopback(const struct conn *c);
/* The service this connection belongs to. */
const struct cfg_service *conn_service_cfg(const struct conn *c);

/*
 * Reading. Input arrives in the connection's buffer (at most the current
 * line limit plus framing); the protocol pulls from it in input_cb.
 *
 * conn_read_line: 1 and *line_r and *len_r set to one line without its line end
 * (CRLF or LF), valid until the next read call; 0 when no complete line is
 * buffered; CONN_ELINE when the line exceeded the limit: the framework
 * discards the rest of that line by itself, and reading continues with the
 * next one.
 */
#define CONN_ELINE (-2)
int conn_read_line(struct conn *c, const char **line_r, size_t *len_r);
/* Up to max raw bytes (literals): returns how many, 0 if none buffered. */
size_t conn_read_bytes(struct conn *c, size_t max, const char **data_r);
/* Bytes currently buffered and not yet read. */
size_t conn_input_pending(const struct conn *c);
/* Set the maximum line length (e.g. larger after login). */
void conn_set_line_max(struct conn *c, size_t max);
/* Stop delivering input_cb (e.g. while a job runs). conn_resume delivers
 * what is buffered on the next loop iteration. */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);

/*
 * Writing. Output is queued and sent when the loop next turns, coalesced.
 * conn_writable is false while queued output is above the high-water mark;
 * a producer of a large response stops then and continues in drain_cb.
 * Output above 4 times the mark closes the connection (a client that never
 * reads cannot grow memory).
 */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_write_str(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) ATTR_PRINTF(2, 3);
bool conn_writable(const struct conn *c);
size_t conn_output_pending(const struct conn *c);

/* Idle timeout of the session in milliseconds (0: none). Reset by input. */
void conn_set_timeout(struct conn *c, uint64_t ms);

/*
 * STARTTLS/STLS: call after queueing the positive reply. Everything the
 * client sent after that command is discarded (no pipelined plaintext
 * survives into TLS), then the handshake starts. Returns -1 if TLS is not
 * configured or already active.
 */
int conn_starttls(struct conn *c);
/* True when conn_starttls is allowed: TLS configured and not yet active. */
bool conn_can_starttls(const struct conn *c);

/*
 * COMPRESS=DEFLATE (RFC 4978): call after queueing the positive reply,
 * which still goes out uncompressed. From the next write on, output is
 * raw deflate (RFC 1951), sync-flushed each time queued output goes to
 * the socket, so the client can always decode everything sent; input is
 * inflated, including input already buffered here and not yet read by
 * the protocol (it came after the command). Compression sits above TLS:
 * data is compressed, then encrypted. Output limits (conn_writable, the
 * 4x cap) count compressed bytes; inflated input never exceeds the line
 * limit's buffer, however well it compresses. Invalid compressed input
 * closes the connection. Costs ~200 KiB of zlib state per connection,
 * freed at close. Returns -1 if already active, if the connection is not
 * open (or its TLS handshake is not done), or if zlib fails to start.
 * Does not block.
 */
int conn_compress_start(struct conn *c);

/* Close after queued output is sent (bounded by output_timeout). reason is
 * logged. No callback but close_cb follows. */
void conn_close(struct conn *c, const char *reason);

/*
 * Blocking work on the libuv thread pool. work_cb runs on a pool thread with
 * only data (copies, never the connection or its arena); done_cb runs on the
 * loop afterwards, unless the connection closed meanwhile, in which case
 * cancel_cb (if set) runs instead so data can be freed. Input is paused
 * while the job runs and resumed after done_cb (unless done_cb paused it).
 * One job per connection at a time: returns -1 if one is already running.
 */
typedef void conn_work_fn(void *data);
typedef void conn_done_fn(struct conn *c, void *data);
typedef void conn_cancel_fn(void *data);
int conn_queue_work(struct conn *c, conn_work_fn *work_cb, conn_done_fn *done_cb,
		    conn_cancel_fn *cancel_cb, void *data);

/* ---------------------------------------------------------------- daemon */

/*
 * The whole life of a daemon: parse the command line (-c tern.conf, -t to
 * check the config and exit, -V), load the configuration, bind the
 * service's listeners, load TLS, drop to mail_user, handle SIGTERM (graceful
 * shutdown) and SIGHUP (reload: certificate, limits, log level), run the
 * loop. Returns the process exit status.
 */
int daemon_main(const struct service_def *def, int argc, char **argv);

/* Drop root to user (and its groups). 0 when not root; -1 with a logged
 * error when it fails or root could be regained. */
int priv_drop(const char *user);

#endif
