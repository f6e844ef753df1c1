/*
 * bench.h — tern-bench, the load generator of tests/bench/ (not installed).
 *
 * One process, one libuv loop, thousands of client connections; TLS through
 * two OpenSSL memory BIOs per connection, so nothing ever blocks. The files:
 *
 *   conn.c         a client connection: TCP or unix socket, optional TLS
 *                  (implicit or started later), a line reader that can skip
 *                  literals, and writes
 *   hist.c         log-linear latency histogram (percentiles, bounded memory)
 *   runner.c       the client pool: sessions, reconnects, the ramp of
 *                  connects, timing of operations, stop conditions, timeouts
 *                  and the watchdog, the greeting and STARTTLS
 *   msg.c          the messages LMTP delivers and IMAP appends (--size or
 *                  --corpus)
 *   imap-client.c  what every IMAP workload shares: tags, responses and
 *                  literals, capabilities, LOGIN / AUTHENTICATE, APPEND
 *   procmem.c      resident memory of a process tree (idle --pid)
 *   util.c         allocation, user-name formats, SASL PLAIN, random numbers
 *   lmtp.c imap.c imap-bigbox.c pop3.c idle.c   one file per workload
 *   main.c         options, and the report (a table and one JSON line)
 *
 * Everything runs on the loop thread. Functions that return an int return
 * below 0 on error; output parameters end in _r.
 */
#ifndef TERN_BENCH_H
#define TERN_BENCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <uv.h>
#include <openssl/ssl.h>

#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BENCH_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define BENCH_CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---------------------------------------------------------------- options */

enum bench_tls { BENCH_TLS_NONE, BENCH_TLS_IMPLICIT, BENCH_TLS_STARTTLS };

/* A printf-like format with one %d, split once at parse time ("%%" is a
 * literal '%'), so a user-supplied format never reaches printf. */
struct bench_fmt {
	char *prefix;
	char *suffix;
};

struct bench_opt {
	const char *workload;
	/* where */
	const char *host;
	int port;
	const char *unix_path; /* lmtp --unix */
	struct sockaddr_storage addr;
	enum bench_tls tls;
	const char *alpn;
	/* how much */
	unsigned int clients;
	unsigned int concurrency; /* connects in flight while ramping up */
	double duration_s;        /* whole run, warm-up included */
	double warmup_s;
	double timeout_s;         /* bound on one operation */
	uint64_t count;           /* 0: no bound */
	uint64_t seed;
	bool json;
	bool verbose;
	/* who */
	unsigned int users;
	struct bench_fmt user_fmt;
	const char *password;
	bool auth_plain;
	/* messages: lmtp, imap append */
	size_t size;
	const char *corpus;
	unsigned int rcpts;
	struct bench_fmt rcpt_fmt;
	const char *from;
	/* imap */
	unsigned int ops_per_session;
	const char *mix;
	unsigned int idle_ms;
	/* imap-bigbox */
	const char *user;
	const char *mailbox;
	const char *ops;
	unsigned int repeat;
	const char *search_word;
	/* pop3 */
	bool delete_msgs;
	/* idle */
	double hold_s;
	bool login;
	const char *select_mailbox;
	const char *starttls_cmd;
	const char *starttls_ok;
	long pid;
};

/* Set by main.c from the command line; read-only afterwards. */
extern struct bench_opt bench_opt;

/* ------------------------------------------------------------------ util.c */

/* Print "tern-bench: ..." on stderr and exit with status 2. */
void bench_die(const char *fmt, ...) BENCH_PRINTF(1, 2) __attribute__((noreturn));
/* Zeroed allocation; exits on failure, never returns NULL. */
void *bench_xcalloc(size_t nmemb, size_t size);
void *bench_xrealloc(void *ptr, size_t size);
char *bench_xstrdup(const char *s);

/* Split fmt (exactly one %d, any number of "%%") into f. 0 or -1 with
 * *error_r set to a static string. */
int bench_fmt_parse(const char *fmt, struct bench_fmt *f, const char **error_r);
/* Write fmt with n into buf (NUL-terminated, truncated to size): returns
 * the length written. */
size_t bench_fmt_print(const struct bench_fmt *f, unsigned int n, char *buf,
		       size_t size);
/* The name of user number idx (0-based; formatted 1-based). */
size_t bench_user_name(unsigned int idx, char *buf, size_t size);

/* Base64 of "\0user\0pass" (SASL PLAIN) into buf: returns its length, or
 * -1 when buf is too small. */
int bench_sasl_plain(const char *user, const char *pass, char *buf, size_t size);

/* splitmix64: a small deterministic generator per client. */
void bench_rng_seed(uint64_t *state, uint64_t seed, uint64_t stream);
uint64_t bench_rng_next(uint64_t *state);
/* Uniform in [0, n); n > 0. */
uint32_t bench_rng_below(uint64_t *state, uint32_t n);

/* Quote s as an IMAP quoted string (with the quotes) into buf: returns the
 * length, or -1 if s holds CR, LF or NUL or does not fit. */
int bench_imap_quote(const char *s, char *buf, size_t size);

/* ------------------------------------------------------------------ hist.c */

/* Values in nanoseconds, 0 .. 2^36 (68 s; larger ones are clamped), with
 * 128 linear sub-buckets per power of two: under 0.8% error at any value.
 * A fixed 30 KiB per histogram, whatever the number of samples. */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_MAX_EXP 36
#define BENCH_HIST_BUCKETS ((BENCH_HIST_MAX_EXP - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

struct bench_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t buckets[BENCH_HIST_BUCKETS];
};

/* Add one value (a latency in ns). The caller owns h (zeroed to start). */
void bench_hist_record(struct bench_hist *h, uint64_t ns);
/* The value at quantile q (0 < q <= 1) in ns: the middle of its bucket,
 * never above the largest value recorded. 0 when empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* ------------------------------------------------------------------ conn.c */

/* Why a connection failed; the names are those of the report. */
enum bench_fail {
	BENCH_FAIL_CONNECT,  /* connect() failed */
	BENCH_FAIL_TLS,      /* handshake or TLS record error */
	BENCH_FAIL_EOF,      /* closed by the server, or a socket error */
	BENCH_FAIL_TIMEOUT,  /* an operation took longer than --timeout */
	BENCH_FAIL_LINE,     /* an unexpected or negative reply */
	BENCH_FAIL_COUNT,
};
extern const char *const bench_fail_names[BENCH_FAIL_COUNT];

struct bench_conn;

/* What a connection reports. All come from the loop, never from inside a
 * bench_conn_* call. */
struct bench_conn_cb {
	/* Connected and, with TLS, the handshake done (also after
	 * bench_conn_starttls). */
	void (*ready)(struct bench_conn *c);
	/* One line without its CR LF, NUL-terminated, writable, valid until
	 * the callback returns. */
	void (*line)(struct bench_conn *c, char *line, size_t len);
	/* The connection failed or the server closed it. It is already
	 * closing: closed follows. Never called after bench_conn_close(). */
	void (*fail)(struct bench_conn *c, enum bench_fail kind, const char *detail);
	/* The handle is closed and the struct may be opened again. */
	void (*closed)(struct bench_conn *c);
};

struct bench_conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	uv_connect_t connect_req;
	const struct bench_conn_cb *cb;
	SSL *ssl;
	BIO *rbio; /* socket -> SSL */
	BIO *wbio; /* SSL -> socket */
	/* A line split across reads; allocated only then. */
	char *partial;
	size_t partial_len, partial_cap;
	uint64_t skip;       /* bytes still to pass over (a literal) */
	uint64_t bytes_in;   /* plaintext received, this connection */
	uint64_t bytes_out;  /* plaintext sent, this connection */
	uint8_t state;       /* conn.c's enum */
};

/* A piece of data to send. stable: it lives until the program ends (the
 * messages of msg.c), so it is sent without a copy. */
struct bench_iov {
	const void *data;
	size_t len;
	bool stable;
};

/* Create the client TLS context (any certificate accepted, SNI
 * "localhost", ALPN if alpn is not NULL). Exits on failure. */
void bench_tls_init(const char *alpn);
void bench_tls_deinit(void);

/* Connect c to bench_opt's address (or unix_path), TLS from the start if
 * tls. The struct must be unused or closed. On an immediate failure
 * returns a libuv error and calls nothing: the caller counts the failure
 * and calls bench_conn_close(), after which closed follows. */
int bench_conn_open(struct bench_conn *c, uv_loop_t *loop,
		    const struct bench_conn_cb *cb, bool tls);
/* Start TLS on an open plain connection (after the server accepted
 * STARTTLS): ready follows once the handshake is done. Any plaintext the
 * server sent after that line fails the connection (STARTTLS injection).
 * Returns < 0 if the handshake could not start (the caller fails it). */
int bench_conn_starttls(struct bench_conn *c);
/* Queue data (encrypted with TLS). Returns < 0 if the connection is
 * closing or the write failed at once: the caller gives it up. Never
 * blocks. */
int bench_conn_writev(struct bench_conn *c, const struct bench_iov *iov, unsigned int n);
/* The next n bytes received are passed over, not split into lines. */
void bench_conn_skip(struct bench_conn *c, uint64_t n);
/* Close; idempotent. closed follows (from the loop). */
void bench_conn_close(struct bench_conn *c);
bool bench_conn_is_open(const struct bench_conn *c);

/* ---------------------------------------------------------------- runner.c */

/* Operation ids: indexes into the table of bench_op_register(). */
#define BENCH_OP_NONE (-1)
#define BENCH_OP_UNTIMED (-2) /* bounded by --timeout, but never reported */
#define BENCH_OP_CONNECT 0    /* TCP + TLS + greeting (+ STARTTLS) */
#define BENCH_MAX_OPS 32

struct bench_op_stats {
	const char *name;
	uint64_t errors;
	uint64_t bytes; /* plaintext both ways during the counted ones */
	struct bench_hist hist; /* successes only */
};

/* One client: a connection and the sessions run over it one after the
 * other. A workload's client struct starts with this one. */
struct bench_client {
	struct bench_conn conn;
	unsigned int id;  /* 0-based */
	uint64_t rng;
	unsigned int sessions; /* begun so far */
	/* the operation in flight */
	int op;
	bool op_counted;
	uint64_t op_start_ns;
	uint64_t op_deadline_ms;
	uint64_t op_bytes; /* conn bytes in + out when it began */
	/* runner-private */
	uint8_t state, phase;
	bool ramping, last_failed;
	bool session_partial;
	bool timer_init;
	uv_timer_t timer;
	void (*timer_cb)(struct bench_client *cl);
	void (*tls_then)(struct bench_client *cl);
	const char *starttls_ok;
};

struct bench_json;

/* A workload: what runs over each connection. */
struct bench_workload {
	const char *name;
	size_t client_size;        /* of its client struct */
	const char *greeting_ok;   /* prefix of a good greeting; NULL: any line */
	/* --starttls right after the greeting; NULL: the workload does it */
	const char *starttls_cmd, *starttls_ok;
	bool reconnect;            /* retry (after 100 ms) when a session failed */
	bool ramp_manual;          /* calls bench_ramp_release() itself */
	bool hold;                 /* no deadline: ends by bench_stop_all() */
	/* After the options are known: register operations, load data.
	 * 0 or -1 with *error_r. */
	int (*init)(const char **error_r);
	/* May client cl begin another session? (runs before connecting) */
	bool (*session_begin)(struct bench_client *cl);
	/* Optional: the greeting line (already checked against greeting_ok). */
	void (*greeting)(struct bench_client *cl, const char *line);
	/* Connected, greeted, TLS done: run the session. */
	void (*start)(struct bench_client *cl);
	/* A line while the session runs. */
	void (*line)(struct bench_client *cl, char *line, size_t len);
	/* Optional: the connection of cl failed or was dropped. */
	void (*failed)(struct bench_client *cl, enum bench_fail kind);
	/* Optional: SIGINT / SIGTERM (default: bench_stop()). */
	void (*stop)(void);
	/* Optional: every client is done; close the workload's handles. */
	void (*done)(void);
	/* The "throughput" object and any extra top-level fields. */
	void (*report)(struct bench_json *j);
	/* Exit status: 0 when the run went as planned (default: no errors). */
	int (*status)(void);
};

/* Register an operation name (a static string): returns its id. Call from
 * init, in the order of the report. */
int bench_op_register(const char *name);
int bench_op_count(void);
const struct bench_op_stats *bench_op_get(int id);

/* Run workload wl until every client is done. Returns after closing all
 * handles; the results are then read with the accessors below. */
void bench_run(const struct bench_workload *wl);
uv_loop_t *bench_loop(void);

/* Time an operation of cl from now; one at a time per client. It is
 * counted if it starts after the warm-up and before the stop. extra_ms is
 * added to its --timeout bound. */
void bench_op_begin(struct bench_client *cl, int op, uint64_t extra_ms);
/* End the operation in flight (nothing if none): a latency if ok, an
 * error if not. */
void bench_op_end(struct bench_client *cl, bool ok);

/* The session of cl is over: close its connection; the next session
 * starts when that is done. ok: it completed (counted as a session if it
 * ends after the warm-up and none of its operations was cut short by the
 * stop). */
void bench_session_end(struct bench_client *cl, bool ok);
/* Give up the session of cl: the operation in flight fails, the kind is
 * counted, the connection closes and (with wl->reconnect) a new session
 * starts 100 ms later. Does nothing if cl is not in a session. */
void bench_client_fail(struct bench_client *cl, enum bench_fail kind, const char *detail);
/* Count a failure that no connection had (a client never started). */
void bench_count_failure(enum bench_fail kind);
/* Send, failing the client (as EOF) if the connection cannot write. */
void bench_sendv(struct bench_client *cl, const struct bench_iov *iov, unsigned int n);
void bench_sendf(struct bench_client *cl, const char *fmt, ...) BENCH_PRINTF(2, 3);
/* Send cmd, skip lines starting with '*', and on a line starting with ok
 * start TLS, then call then (any other line fails the client). */
void bench_starttls(struct bench_client *cl, const char *cmd, const char *ok,
		    void (*then)(struct bench_client *cl));

/* The client's one timer: cb after ms (replacing any pending one). */
void bench_timer_start(struct bench_client *cl, uint64_t ms,
		       void (*cb)(struct bench_client *cl));
void bench_timer_stop(struct bench_client *cl);

/* Past the duration, or stopped by a signal: start no new operation. */
bool bench_stopping(void);
/* Before the warm-up ends. */
bool bench_warming_up(void);
/* May a new top-level operation start (a delivery, a session)? Counts it
 * against --count when it does. */
bool bench_take_top(void);
/* True once --count top-level operations have been started. */
bool bench_top_exhausted(void);
/* Stop starting operations now (what the deadline does). */
void bench_stop(void);
/* Start no more connections: clients not started yet are done. */
void bench_stop_starting(void);
/* Close every connection now; no operation is counted any more and no
 * session starts. */
void bench_stop_all(void);
/* A ramping client (wl->ramp_manual) is set up: let the next one connect. */
void bench_ramp_release(struct bench_client *cl);

unsigned int bench_client_count(void);
struct bench_client *bench_client_at(unsigned int i);
/* Has cl begun its first connect? */
bool bench_client_started(const struct bench_client *cl);

/* Results, once bench_run() returned. */
double bench_elapsed_s(void);
uint64_t bench_sessions(void);
uint64_t bench_errors(void);
uint64_t bench_fail_kind(enum bench_fail kind);
bool bench_forced(void); /* the watchdog or a second signal ended it */

/* ------------------------------------------------------------------- msg.c */

#define BENCH_MSG_HDR_MAX 1024

/* One message to send: a header made for it and a body shared by all. */
struct bench_msg {
	char hdr[BENCH_MSG_HDR_MAX];
	size_t hdr_len;
	const char *body; /* stable: lives until exit */
	size_t body_len;
	size_t size;      /* the message's size in CRLF form, unstuffed */
};

/* Prepare --corpus (read every file; CRLF; dot-stuffed too if stuffed) or
 * the generated body of --size. 0, or -1 with *error_r. */
int bench_msg_init(bool plain, bool stuffed, const char **error_r);
/* Message number seq of client for rcpt to: LMTP's dot-stuffed form if
 * stuffed, else IMAP's. The data to send is hdr then body. */
void bench_msg_next(struct bench_msg *m, bool stuffed, uint64_t seq,
		    unsigned int client, const char *to);

/* ----------------------------------------------------------- imap-client.c */

enum imapc_event {
	IMAPC_NONE,      /* handled inside (a continuation we were waiting for) */
	IMAPC_UNTAGGED,  /* "* ..." or a piece of one after a literal */
	IMAPC_CONT,      /* "+ ..." nobody was waiting for */
	IMAPC_TAGGED,    /* the reply to the command in flight: see status */
	IMAPC_GARBAGE,   /* anything else */
};

enum imapc_status { IMAPC_OK, IMAPC_NO, IMAPC_BAD };

/* What the untagged response being read is. */
enum imapc_resp {
	IMAPC_RESP_OTHER,
	IMAPC_RESP_FETCH,
	IMAPC_RESP_SEARCH,
	IMAPC_RESP_EXISTS,
	IMAPC_RESP_BYE,
};

/* IMAP client state, embedded in a workload's client. */
struct imapc {
	unsigned int seq;
	char tag[12];            /* of the command in flight, "" if none */
	enum imapc_status status; /* of the last tagged reply */
	const char *text;        /* its text after the status word */
	enum imapc_resp resp;    /* of the untagged response being read */
	bool fragment;           /* the line continues one that ended in {n} */
	uint32_t number;         /* "* <number> FETCH/EXISTS" */
	/* capabilities, from CAPABILITY responses and response codes */
	bool caps_known, literal_plus, uidplus, idle, sasl_ir;
	uint32_t exists, uidvalidity;
	/* sent once the server asks for more with "+" */
	struct bench_iov cont[4];
	unsigned int ncont;
	char contbuf[512];
};

/* Forget everything: a new connection. */
void imapc_reset(struct imapc *ic);
/* Reset, then learn the capabilities the greeting line may carry. */
void imapc_greeting(struct imapc *ic, const char *line);
/* After STARTTLS the capabilities seen before count no more. */
void imapc_forget_caps(struct imapc *ic);
/* Send "<new tag> <command>\r\n". */
void imapc_send(struct bench_client *cl, struct imapc *ic, const char *fmt, ...)
	BENCH_PRINTF(3, 4);
/* LOGIN, or AUTHENTICATE PLAIN (with SASL-IR if offered) if plain. */
void imapc_login(struct bench_client *cl, struct imapc *ic, const char *user,
		 const char *pass, bool plain);
/* APPEND m to mailbox (quoted by the caller): LITERAL+ if offered, else a
 * synchronising literal sent on the server's "+". */
void imapc_append(struct bench_client *cl, struct imapc *ic, const char *mailbox,
		  const struct bench_msg *m);
/* Parse a line; see enum imapc_event. Passes over literals by itself. */
enum imapc_event imapc_line(struct bench_client *cl, struct imapc *ic, char *line,
			    size_t len);
/* The value of a response code in text, as "[NAME v1 v2]": a pointer to
 * "v1 ...", or NULL. */
const char *imapc_code(const char *text, const char *name);
/* The UID in a FETCH response line ("UID n"), or 0. */
uint32_t imapc_fetch_uid(const char *line);

/* --------------------------------------------------------------- procmem.c */

struct bench_procmem {
	uint64_t rss_kib; /* VmRSS, summed */
	uint64_t pss_kib; /* Pss of smaps_rollup, summed */
	unsigned int procs;
};

/* pid and all its descendants (threads' children files, or the ppid in
 * /proc/PID/stat where the kernel has no children files). 0, or -1 with
 * *error_r (static). Reads /proc: a few ms for a few hundred processes. */
int bench_procmem_sample(long pid, struct bench_procmem *m_r, const char **error_r);

/* ------------------------------------------------------------------ main.c */

/* The report: JSON on one line, or the same as indented "key: value" lines
 * for people. */
void bench_json_obj(struct bench_json *j, const char *key); /* "key":{ */
void bench_json_end(struct bench_json *j);                  /* } */
void bench_json_u64(struct bench_json *j, const char *key, uint64_t v);
void bench_json_num(struct bench_json *j, const char *key, double v, int decimals);
void bench_json_str(struct bench_json *j, const char *key, const char *v);

/* The workloads (not const: idle's init fills in its STARTTLS strings). */
extern struct bench_workload bench_lmtp;
extern struct bench_workload bench_imap;
extern struct bench_workload bench_imap_bigbox;
extern struct bench_workload bench_pop3;
extern struct bench_workload bench_idle;

#endif
