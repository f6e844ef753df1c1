/*
 * lmtp-private.h — the internals of tern-lmtpd, shared by the files of
 * lmtp/ (and its fuzz target and unit test). Nothing else includes this.
 *
 *   parse.c      a command line into verb, path and parameters
 *   session.c    the session: states, commands and their replies
 *   data.c       DATA (dot-unstuffing) and BDAT bodies into the spool
 *   recipient.c  RCPT: which user an address is, on the thread pool
 *   deliver.c    storing one message for all recipients, on the pool
 *   main.c       settings, the service hooks and main()
 *
 * A transaction (struct lmtp_txn) is owned by its session, or by the one
 * thread-pool job that is working on it: the session does not touch it
 * while a job runs, and a job never touches the session (STYLE "Blocking
 * work"). Strings of a transaction live in its own arena.
 */
#ifndef TERN_LMTP_PRIVATE_H
#define TERN_LMTP_PRIVATE_H

#include "auth/auth.h"
#include "storage/store-cache.h"
#include "common/common.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- parse */

enum lmtp_verb {
	LMTP_CMD_LHLO,
	LMTP_CMD_HELO,      /* HELO and EHLO: SMTP, refused */
	LMTP_CMD_MAIL,
	LMTP_CMD_RCPT,
	LMTP_CMD_DATA,
	LMTP_CMD_BDAT,
	LMTP_CMD_RSET,
	LMTP_CMD_NOOP,
	LMTP_CMD_QUIT,
	LMTP_CMD_VRFY,
	LMTP_CMD_HELP,
	LMTP_CMD_STARTTLS,
	LMTP_CMD_UNKNOWN,
};

/* Most ESMTP parameters on one MAIL or RCPT. */
#define LMTP_MAX_PARAMS 8
/* Longest path (RFC 5321 §4.5.3.1.3: 256 octets with the brackets) and
 * LHLO name we take; they end up in the trace headers. */
#define LMTP_MAX_PATH 512
#define LMTP_MAX_HOSTNAME 255

struct lmtp_param {
	const char *name;       /* upper-cased: "SIZE" */
	const char *value;      /* NULL when the parameter has none */
};

/* A mailbox from a path: local part (quotes removed) and domain. */
struct lmtp_address {
	const char *local;
	const char *domain;     /* NULL for a bare <user> */
	bool utf8;              /* any byte above 127 */
};

struct lmtp_command {
	enum lmtp_verb verb;
	const char *args;       /* after the verb and one space; "" if none */
	/* MAIL FROM and RCPT TO */
	const char *path;       /* the mailbox as written, without <> and
				 * source route; "" for the null path <> */
	struct lmtp_address addr;
	struct lmtp_param params[LMTP_MAX_PARAMS];
	unsigned param_count;
	/* BDAT */
	uint64_t chunk_size;
	bool last;
	/* When parsing failed: the whole reply, "501 5.5.4 ..." */
	const char *error;
};

/*
 * Parse one command line (without its CRLF). Returns 0 with cmd filled
 * (strings in a), or -1 with cmd->error set to the reply to send. A
 * command that parses may still be refused by the session (state, values).
 * Never blocks, never reads outside line[0..len).
 */
int lmtp__parse_command(struct arena *a, const char *line, size_t len,
			struct lmtp_command *cmd);
/* The address inside a path ("user@example.org", "\"a b\"@x", "user"):
 * 0, or -1 when it is not a valid mailbox. Strings in a. */
int lmtp__parse_address(struct arena *a, const char *path, struct lmtp_address *addr_r);

/* ------------------------------------------------------------- settings */

/* The [lmtp] delivery keys, copied at start and on SIGHUP. */
struct lmtp_settings {
	char *hostname;
	struct cfg_strlist local_domains;
	char *recipient_delimiter;
	bool save_to_detail_mailbox;
	uint64_t max_message_size;
	uint32_t max_recipients;
	bool quota_full_tempfail;
};

extern struct lmtp_settings lmtp__set;
/* The user directory, opened at start (thread-safe: its own lock). */
extern struct auth_directory *lmtp__directory;
extern struct uv_loop_s *lmtp__loop;

/* The session callbacks (session.c). */
extern const struct conn_handler lmtp__handler;

/* ----------------------------------------------------------- transaction */

/* What happened to one recipient, in the words of the replies. */
enum lmtp_status {
	LMTP_ST_PENDING,        /* accepted at RCPT, not yet delivered */
	LMTP_ST_DELIVERED,
	LMTP_ST_QUOTA,          /* 552 5.2.2 or 452 4.2.2 */
	LMTP_ST_NOSPACE,        /* 452 4.3.1 */
	LMTP_ST_TEMPFAIL,       /* 451 4.3.0 */
	LMTP_ST_TOO_BIG,        /* 552 5.3.4 */
};

struct lmtp_rcpt {
	const char *address;    /* as the client wrote it, for replies */
	const char *user;       /* the user it is */
	const char *mail_dir;
	const char *mailbox;    /* the +detail mailbox, or INBOX */
	struct store_user *store; /* taken at RCPT, owned by the transaction */
	struct store_quota quota; /* the store's, for storage/store-cache.c */
	enum lmtp_status status;
	uint32_t uid;
	const char *saved_in;   /* the mailbox it went to */
	const char *error;      /* why it failed, for the log */
	char commit_error[256]; /* set by a commit thread */
};

/* The message's data, as received so far, waits here for the next job. */
#define LMTP_SPOOL_FLUSH (128 * 1024)

/* DATA's dot-unstuffing state between reads. */
enum lmtp_dot_state {
	LMTP_DOT_LINE_START,    /* after CRLF (or at the start) */
	LMTP_DOT_TEXT,
	LMTP_DOT_CR,            /* after a CR inside a line */
	LMTP_DOT_DOT,           /* a '.' at the start of a line (dropped) */
	LMTP_DOT_DOT_CR,        /* ".\r" at the start of a line (CR held) */
};

struct lmtp_txn {
	struct arena *arena;
	const char *sender;     /* "" for <> */
	uint64_t declared_size; /* MAIL SIZE=, 0 when not given */
	uint64_t max_size;      /* max_message_size when MAIL came */
	uint32_t max_recipients;
	bool smtputf8;
	bool binarymime;
	struct lmtp_rcpt **rcpts;
	size_t rcpt_count, rcpt_cap;
	unsigned rcpt_attempts; /* RCPT commands, accepted or not */

	/* The message: trace headers and data not yet written. */
	bool data_started;      /* DATA or the first BDAT came */
	bool bdat;
	struct buf spool;
	uint64_t msg_size;      /* message bytes received (the limit) */
	bool too_big;
	enum lmtp_dot_state dot;
	/* The first copy, in the first recipient's store that took it. */
	struct store_save *save;
	size_t save_rcpt;       /* whose store it is in */
	bool save_failed;       /* no copy can be made: every recipient fails */
	enum lmtp_status save_status;
	const char *save_error;
};

struct lmtp_txn *lmtp__txn_new(void);
/* Free a transaction with everything it holds. Closing stores may block:
 * on the loop thread this hands the work to the thread pool. */
void lmtp__txn_free(struct lmtp_txn **txn);
/* The same, on a pool thread: closes at once. */
void lmtp__txn_free_now(struct lmtp_txn **txn);

/* ------------------------------------------------------------------ data */

/*
 * DATA: unstuff in[0..len) into the spool (while the message is within the
 * size limit), tracking lines across calls. Returns 1 when the terminating
 * CRLF.CRLF was reached, with *used_r the bytes consumed up to and
 * including it (what follows is the next command); 0 when all of in was
 * consumed. Only CRLF "." CRLF ends the data: a bare LF is data (stored as
 * a line end, as Postfix and Dovecot do), and so is a bare CR.
 */
int lmtp__data_feed(struct lmtp_txn *t, const unsigned char *in, size_t len, size_t *used_r);
/* BDAT: a chunk's bytes, as they are. */
void lmtp__bdat_feed(struct lmtp_txn *t, const unsigned char *in, size_t len);
/* The trace headers at the start of the spool. */
void lmtp__trace_headers(struct lmtp_txn *t, const char *lhlo_name, const char *remote_ip,
			 bool tls, const char *session_id);

/* ------------------------------------------------------------- recipient */

/* What RCPT found out, on the loop after the job. */
enum lmtp_rcpt_result {
	LMTP_RCPT_OK,
	LMTP_RCPT_UNKNOWN,      /* 550 5.1.1 */
	LMTP_RCPT_LOOKUP_FAIL,  /* 451 4.3.0 */
	LMTP_RCPT_OVER_QUOTA,   /* 552 5.2.2 / 452 4.2.2 */
	LMTP_RCPT_NOSPACE,      /* 452 4.3.1 */
	LMTP_RCPT_STORE_FAIL,   /* 451 4.3.0 */
};

struct lmtp_rcpt_job;

/* A lookup of addr (the parsed RCPT path) with the current settings. */
struct lmtp_rcpt_job *lmtp__rcpt_job_new(const struct lmtp_address *addr, uint64_t size_hint);
/* On a pool thread: look up, open the user's store, check the quota. */
void lmtp__rcpt_job_run(void *job);
/* On the loop: the result; for LMTP_RCPT_OK the recipient, allocated in
 * t's arena, takes over the opened store. Frees the job. */
enum lmtp_rcpt_result lmtp__rcpt_job_finish(struct lmtp_rcpt_job *job, struct lmtp_txn *t,
					    const char *address, struct lmtp_rcpt **rcpt_r);
/* The connection went away while the job ran. */
void lmtp__rcpt_job_cancel(void *job);

/* --------------------------------------------------------------- deliver */

/*
 * The thread-pool halves of a delivery. flush writes the spool into the
 * first copy (beginning it in the first recipient's store that takes it);
 * finish also shares the copy with every other recipient and commits each
 * one, setting every recipient's status, then closes their stores.
 */
void lmtp__deliver_flush(struct lmtp_txn *t);
void lmtp__deliver_finish(struct lmtp_txn *t);

#endif
