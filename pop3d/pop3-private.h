/*
 * pop3-private.h — the internals of tern-pop3d, shared by the files of
 * pop3d/ (and its fuzz target). Nothing else includes this.
 *
 *   parse.c     a command line into its verb and arguments; numbers
 *   stuff.c     a message's CRLF bytes into RETR/TOP output: dot-stuffing,
 *               TOP's line count, the final "."
 *   session.c   the session: states, the command table, CAPA, STLS, QUIT
 *   auth.c      USER/PASS and AUTH (SASL) through the auth worker
 *   maildrop.c  the INBOX view: open and lock, STAT/LIST/UIDL, DELE/RSET,
 *               the UPDATE state
 *   retr.c      RETR and TOP, streamed as the socket drains
 *   main.c      settings, the service hooks and main()
 *
 * Threads. Everything that touches the store (opening the user, reading a
 * message, expunging) runs as a thread-pool job (conn_queue_work), one at
 * a time per session, with input paused meanwhile. While a job runs it
 * owns the maildrop: the session does not touch it, and the job never
 * touches the session (STYLE "Blocking work"). If the connection closes
 * during a job, the job's cancel callback closes the maildrop.
 */
#ifndef TERN_POP3_PRIVATE_H
#define TERN_POP3_PRIVATE_H

#include "auth/auth.h"
#include "common/common.h"
#include "storage/storage.h"
#include "storage/store-cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- parse */

enum pop3_verb {
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_AUTH,
	POP3_CMD_APOP,      /* not offered: passwords are checked by PAM */
	POP3_CMD_CAPA,
	POP3_CMD_STLS,
	POP3_CMD_UTF8,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_QUIT,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_UNKNOWN,
};

/* Most arguments a command takes (TOP msg n; AUTH mech initial-response). */
#define POP3_MAX_ARGS 2

struct pop3_arg {
	const char *p;          /* into the line: not NUL-terminated */
	size_t len;
};

struct pop3_command {
	enum pop3_verb verb;
	/* Everything after the keyword and one space, as sent (PASS takes
	 * it whole: passwords may contain spaces). */
	struct pop3_arg rest;
	/* The space-separated arguments; argc above POP3_MAX_ARGS means
	 * "too many". */
	unsigned argc;
	struct pop3_arg argv[POP3_MAX_ARGS];
};

/*
 * Parse one command line (without its line end). Returns 0 with cmd
 * filled (pointing into line), or -1 with *why_r set to the text of an
 * -ERR reply: a control character (NUL included), a keyword that is not
 * 1 to 4 letters. An unknown keyword parses (verb POP3_CMD_UNKNOWN).
 * Never reads outside line[0..len).
 */
int pop3__parse_command(const char *line, size_t len, struct pop3_command *cmd,
			const char **why_r);
/* A message number: 1 to 4294967295, decimal digits only. 0 or -1. */
int pop3__parse_msgnum(const struct pop3_arg *arg, uint32_t *n_r);
/* TOP's line count: 0 to 2^64 - 1, decimal digits only. 0 or -1. */
int pop3__parse_count(const struct pop3_arg *arg, uint64_t *n_r);
/* Name of a verb, upper-case, for logs ("RETR"). */
const char *pop3__verb_name(enum pop3_verb verb);

/* ---------------------------------------------------------------- stuff */

/*
 * Turning a message (CRLF line ends, as store_reader_read gives it) into a
 * multi-line POP3 response body: a '.' starting a line is doubled, and the
 * response ends with CRLF "." CRLF (a CRLF is added when the message does
 * not end with one). For TOP, output stops after the header, the blank
 * line and max_body_lines lines of the body.
 */
struct pop3_stuff {
	bool line_start;        /* the next byte starts a line */
	bool line_empty;        /* nothing but CR on this line so far */
	bool in_body;           /* the blank line after the header was passed */
	bool top;               /* count body lines */
	uint64_t lines_left;    /* TOP: body lines still to send */
	bool done;              /* TOP's limit reached: ignore the rest */
};

void pop3__stuff_init(struct pop3_stuff *st, bool top, uint64_t max_body_lines);
/* Append the stuffed form of in[0..len) to out (out must have room for
 * len * 2 more bytes: buf_append failures are not possible then). Once
 * st->done is set, the rest is ignored. */
void pop3__stuff_feed(struct pop3_stuff *st, const unsigned char *in, size_t len,
		      struct buf *out);
/* The end of the response: CRLF if the last line was not ended, then
 * ".\r\n". */
void pop3__stuff_finish(struct pop3_stuff *st, struct buf *out);

/* ------------------------------------------------------------- settings */

/* Settings from tern.conf, copied at start and on SIGHUP. */
struct pop3_settings {
	enum cfg_uidl_format uidl_format;
	uint64_t login_delay_ms;        /* 0: no LOGIN-DELAY */
	uint32_t max_failures;          /* [auth] max_failures */
};

extern struct pop3_settings pop3__set;
extern struct uv_loop_s *pop3__loop;

/* ------------------------------------------------------------- maildrop */

/* One message of the session's fixed list. */
struct pop3_msg {
	uint32_t uid;
	uint64_t vsize;         /* CRLF size */
	bool deleted;           /* DELE'd in this session */
	bool retrieved;         /* RETR'd whole: \Seen at UPDATE */
};

/*
 * The maildrop: the user's INBOX as it was at login, locked against other
 * POP3 sessions of the user. Message numbers (1..count) index msgs.
 */
struct pop3_maildrop {
	char *user_dir;
	struct store_quota quota;       /* the store's, for storage/store-cache.c */
	struct store_user *store;
	struct store_mailbox *mb;
	int lock_fd;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	uint32_t count;
};

enum pop3_open_result {
	POP3_OPEN_OK,
	POP3_OPEN_IN_USE,       /* another POP3 session holds the lock */
	POP3_OPEN_LOGIN_DELAY,  /* the last login is too recent */
	POP3_OPEN_FAILED,       /* store error: temporary */
};

/* A login's maildrop opening, as a thread-pool job. */
struct pop3_open_job {
	char *user_dir;
	struct store_quota quota;
	uint64_t login_delay_ms;
	enum pop3_open_result result;
	struct pop3_maildrop *md;       /* POP3_OPEN_OK */
	char error[256];                /* for the log */
};

void pop3__open_work(void *data);
/* Free a job (closing a maildrop it still holds, on the pool). */
void pop3__open_job_free(void *data);

/* The UIDL of message i (0-based) into out (at least 72 bytes). */
void pop3__uidl(const struct pop3_maildrop *md, uint32_t i, char *out, size_t size);

/* The UPDATE state: expunge the DELE'd messages, set \Seen on those
 * retrieved; then the maildrop is closed. A thread-pool job. */
struct pop3_update_job {
	struct pop3_maildrop *md;
	uint32_t deleted;               /* how many were expunged */
	bool failed;
	char error[256];
};

void pop3__update_work(void *data);

/* Close and free a maildrop. Closing the store may block: from the loop,
 * use pop3__maildrop_close_async. */
void pop3__maildrop_close(struct pop3_maildrop **md);
void pop3__maildrop_close_async(struct pop3_maildrop **md);

/* -------------------------------------------------------------- session */

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,      /* QUIT is running the expunge */
};

/* A RETR or TOP in progress. */
struct pop3_retr {
	uint32_t uid;
	bool top;
	bool whole;             /* RETR: mark the message as retrieved */
	uint32_t msgnum;
	struct pop3_stuff st;
	struct store_reader *reader;
	struct buf out;         /* stuffed bytes for the connection */
	size_t chunk;           /* bytes to read per job */
	bool started;           /* the +OK line was sent */
	bool eof;
	int error;              /* store errcode of a failure, 0 */
	char errmsg[256];
	struct pop3_maildrop *md;
};

struct pop3_session {
	struct conn *conn;
	enum pop3_state state;
	unsigned bad_commands;
	unsigned auth_failures;
	char *user;                     /* USER's name, until PASS */
	struct sasl *sasl;              /* an AUTH exchange */
	const char *sasl_mech;
	struct auth_request *auth;      /* a check in flight */
	bool job_running;               /* a job owns md (or will make it) */
	bool waiting_drain;             /* input paused until output drains */
	struct pop3_maildrop *md;
	struct pop3_retr *retr;
	bool listing;                   /* a LIST or UIDL listing in progress */
	bool listing_uidl;
	uint32_t list_next;             /* index of the next message to list */
};

/* session.c */
extern const struct conn_handler pop3__handler;
/* Count a bad command; disconnects after the state's limit. */
void pop3__bad_command(struct pop3_session *s, const char *reply);
/* Enter TRANSACTION (after the maildrop opened) or leave AUTHORIZATION. */
void pop3__set_state(struct pop3_session *s, enum pop3_state state);

/* auth.c */
void pop3__cmd_user(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_pass(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_auth(struct pop3_session *s, const struct pop3_command *cmd);
/* A client line during an AUTH exchange. */
void pop3__sasl_input(struct pop3_session *s, const char *line, size_t len);
/* Plaintext logins allowed on this connection (TLS or loopback). */
bool pop3__plaintext_allowed(const struct pop3_session *s);
void pop3__auth_cancel(struct pop3_session *s);

/* maildrop.c (the TRANSACTION commands on the session's list) */
void pop3__cmd_stat(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_list(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_dele(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_rset(struct pop3_session *s, const struct pop3_command *cmd);
/* The output drained: continue a listing in progress. */
void pop3__list_continue(struct pop3_session *s);
/* QUIT in TRANSACTION: the UPDATE state. */
void pop3__update(struct pop3_session *s);
/* The message a number names, not deleted: its index, or -1 after
 * replying -ERR. */
int64_t pop3__msg_lookup(struct pop3_session *s, const struct pop3_arg *arg);

/* retr.c */
void pop3__cmd_retr(struct pop3_session *s, const struct pop3_command *cmd);
void pop3__cmd_top(struct pop3_session *s, const struct pop3_command *cmd);
/* The output drained: produce more of a RETR in progress. */
void pop3__retr_drain(struct pop3_session *s);
/* The connection is gone: free a RETR (a job may still own it). */
void pop3__retr_abandon(struct pop3_session *s);

#endif
