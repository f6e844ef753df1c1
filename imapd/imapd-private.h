/*
 * imapd-private.h — the internals of tern-imapd, shared by the files of
 * imapd/. Nothing else includes this.
 *
 *   parser.c    the incremental command parser (parser.h)
 *   main.c      settings, the service hooks and main()
 *   session.c   the connection: input, the command table and dispatch,
 *               jobs and chunked output, CAPABILITY NOOP LOGOUT STARTTLS
 *               ENABLE ID
 *   output.c    writing IMAP syntax: strings, flags, mailbox names in and
 *               out, storage errors as NO codes
 *   login.c     LOGIN and AUTHENTICATE through the auth worker; opening
 *               the user's store
 *   selected.c  the selected mailbox as the client sees it: SELECT
 *               EXAMINE CLOSE UNSELECT CHECK, untagged updates (EXISTS,
 *               EXPUNGE/VANISHED, FETCH FLAGS), sequence sets, IDLE
 *   mailbox.c   CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB
 *               STATUS NAMESPACE GETQUOTA GETQUOTAROOT SETQUOTA
 *   fetch.c     FETCH and UID FETCH, produced in chunks
 *   search.c    SEARCH (ESEARCH, SEARCHRES) and the search-key grammar
 *   sort.c      SORT and THREAD
 *   message.c   STORE COPY MOVE EXPUNGE (and their UID forms)
 *   append.c    APPEND and MULTIAPPEND, streamed to storage
 *   compress.c  COMPRESS DEFLATE (the deflating is common/'s)
 *
 * Threads. Commands that touch the store run on the libuv thread pool as
 * jobs, one at a time per session, with input paused: the loop parses a
 * command, hands it to a job (its `work` function), and writes the job's
 * output when it completes. While a job runs it owns s->mail and the
 * command (struct imap_cmd, including the parsed arguments, which live in
 * the parser's arena and are not touched until the command ends); it never
 * calls conn_* or touches anything else of the session. The loop owns
 * everything else. A session whose connection closes while a job runs is
 * freed by the job's cancel callback, after the job (session.c).
 *
 * Output. A job appends its responses (untagged, then the tagged one) to
 * cmd->out; the loop writes them to the connection. A job with more to
 * say (FETCH 1:* BODY[], a long SEARCH result) stops when cmd->out holds
 * IMAP_CHUNK bytes, sets cmd->more, and is run again once the connection
 * has taken that output: memory per session stays bounded whatever the
 * client asks.
 */
#ifndef TERN_IMAPD_PRIVATE_H
#define TERN_IMAPD_PRIVATE_H

#include "auth/auth.h"
#include "common/common.h"
#include "imapd/parser.h"
#include "storage/storage.h"
#include "storage/store-cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Output a job produces before it yields to the connection. */
#define IMAP_CHUNK (256 * 1024)
/* The most cmd->out may hold: a chunk plus responses that cannot be
 * split (one FETCH line, or the flag updates of a whole mailbox after
 * another client changed them all). A job that reaches it logs and ends
 * the command with NO. */
#define IMAP_OUT_MAX (64 * 1024 * 1024)

/* ------------------------------------------------------------- settings */

/* Settings from tern.conf, copied at start and on SIGHUP. */
struct imap_settings {
	uint64_t append_limit;          /* [imap] append_limit: APPENDLIMIT */
	unsigned max_nesting;           /* [imap] max_nesting, after login */
	unsigned max_sequence_ranges;   /* [imap] max_sequence_ranges */
	uint32_t max_user_connections_per_ip; /* [imap]; 0: no limit */
	uint32_t max_failures;          /* [auth] max_failures */
};

extern struct imap_settings imap__set;
extern struct uv_loop_s *imap__loop;

/* ------------------------------------------------------------- session */

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

#define IMAP_IN_NOT_AUTH (1u << IMAP_STATE_NOT_AUTH)
#define IMAP_IN_AUTH (1u << IMAP_STATE_AUTH)
#define IMAP_IN_SELECTED (1u << IMAP_STATE_SELECTED)
#define IMAP_IN_ANY (IMAP_IN_NOT_AUTH | IMAP_IN_AUTH | IMAP_IN_SELECTED)
#define IMAP_IN_LOGGED_IN (IMAP_IN_AUTH | IMAP_IN_SELECTED)

/*
 * The selected mailbox as the client knows it. The store's view
 * (store_mailbox_*) is what is on disk as of the last sync; the client's
 * view (uids) is what it has been told: message n is uids[n - 1].
 * Expunges reach the client's view only when an EXPUNGE or VANISHED
 * response may be sent (RFC 9051 §7.5.1), so between them a UID in uids
 * may be gone from the store ("pending expunge").
 */
struct imap_selected {
	char *name;                     /* UTF-8, malloc'd */
	bool readonly;                  /* EXAMINE */
	struct store_mailbox *mb;
	uint32_t *uids;                 /* the client's view, ascending */
	uint32_t count, cap;
	/* Flag changes with a modseq up to this are known to the client. */
	uint64_t reported_modseq;
	/* SEARCHRES (RFC 5182): the last SEARCH ... SAVE result, as UIDs. */
	uint32_t *saved;
	size_t saved_count;
	bool saved_valid;
};

/* The store side of a session: owned by the running job, else the loop. */
struct imap_mail {
	char *user_dir;
	struct store_quota quota;
	struct store_user *store;
	struct imap_selected *sel;      /* NULL unless SELECTED */
	bool catch_up_due;              /* a job found work for catchup.c */
};

/* What the client turned on (ENABLE, or implicitly). Read by jobs; a job
 * may turn condstore on (RFC 7162 §3.1: the first MODSEQ, CHANGEDSINCE or
 * UNCHANGEDSINCE does), as the loop does not look while a job runs. */
struct imap_enabled {
	bool rev2;                      /* ENABLE IMAP4rev2 */
	bool utf8;                      /* IMAP4rev2 or UTF8=ACCEPT: names in UTF-8 */
	bool condstore;                 /* MODSEQ in untagged FETCH */
	bool qresync;                   /* VANISHED instead of EXPUNGE */
};

struct imap_cmd;
struct imap_append;

struct imap_session {
	struct conn *conn;
	enum imap_state state;
	struct imap_parser *parser;
	struct buf in;                  /* bytes read, not yet consumed */
	unsigned bad_commands;
	unsigned auth_failures;
	struct imap_enabled enabled;
	struct imap_mail mail;
	struct imap_cmd *cmd;           /* the command in progress, or NULL */
	struct imap_cmd *cmd_mem;       /* kept between commands (its arena too) */
	bool in_input;                  /* session_input is on the stack */
	bool job_running;               /* a job owns mail and cmd */
	bool closed;                    /* the connection is gone (a job still runs) */
	bool waiting_drain;             /* input paused until output drains */
	/* A job's output waiting for the connection to drain (session.c):
	 * the command, how much of its out is queued, and the step callback
	 * to run after it. */
	struct imap_cmd *out_cmd;
	size_t out_pos;
	void (*out_step)(struct imap_cmd *cmd);
	bool compressed;                /* COMPRESS DEFLATE is active */
	char *user;                     /* logged in as (for logs and QUOTA) */
	char *userip;                   /* counted in login.c's user+address table */
	/* AUTHENTICATE in progress (client lines go to SASL). */
	struct sasl *sasl;
	const char *sasl_mech;
	char *sasl_tag;
	struct auth_request *auth;      /* a password check in flight */
	/* IDLE in progress (client lines: DONE). */
	bool idling;
	struct store_watch *watch;
	bool idle_sync_pending;         /* a change arrived while a job ran */
	bool idle_done_ok;              /* the line that ended IDLE was DONE */
	/* APPEND streaming its literal (append.c). */
	struct imap_append *append;
};

/* ------------------------------------------------------------- commands */

/* Runs on the loop: checks, replies itself, or starts the job with
 * imap__cmd_queue. */
typedef void imap_loop_fn(struct imap_cmd *cmd);
/* Runs on a thread-pool thread: the store work, output into cmd->out. */
typedef void imap_work_fn(struct imap_cmd *cmd);

#define IMAP_CMD_UID 0x01       /* valid after "UID" (UID FETCH ...) */
#define IMAP_CMD_ONLY_UID 0x02  /* only after "UID" (UID EXPUNGE) */

struct imap_cmd_def {
	const char *name;               /* upper case */
	unsigned states;                /* IMAP_IN_* */
	unsigned flags;                 /* IMAP_CMD_* */
	imap_loop_fn *loop;             /* NULL: queue work at once */
	imap_work_fn *work;             /* NULL: loop does everything */
};

/* One command from parsing to its tagged reply. */
struct imap_cmd {
	struct imap_session *s;
	const struct imap_cmd_def *def;
	const char *tag;
	const char *name;               /* def->name ("FETCH"), also after UID */
	bool uid;                       /* "UID FETCH" */
	/* The arguments after the name (after the sub-command for UID). */
	const struct imap_arg *args;
	unsigned argc;
	struct arena *a;                /* scratch for this command */
	struct buf out;                 /* responses a job produced */
	void *priv;                     /* a command's state between chunks */
	imap_work_fn *job;              /* what imap__cmd_queue runs */
	/* Set by imap__cmd_queue_step: called on the loop when that job is
	 * over, instead of ending the command (IDLE's updates). */
	void (*step_done)(struct imap_cmd *cmd);
	bool more;                      /* run work again once out is sent */
	/* Set by a job, applied on the loop when the command ends. */
	bool set_state;
	enum imap_state next_state;
	/* Called on the loop after the last work, before out is written
	 * (login's capabilities). */
	void (*finish)(struct imap_cmd *cmd);
	/* Releases what priv holds (FETCH's open reader) when the command
	 * ends, also when the session goes in the middle of it. May block
	 * (closes files): called where a job could run. */
	void (*cleanup)(struct imap_cmd *cmd);
};

/* session.c */
extern const struct conn_handler imap__handler;
/* Queue cmd->def->work (or work) as the session's job. */
void imap__cmd_queue(struct imap_cmd *cmd, imap_work_fn *work);
/* Run work as a job that does not end the command: done is called on
 * the loop once the job's output (cmd->out) is queued. */
void imap__cmd_queue_step(struct imap_cmd *cmd, imap_work_fn *work,
			  void (*done)(struct imap_cmd *cmd));
/* On the loop, for a command that finished without a job (its tagged
 * reply already written): end it and read the next one. */
void imap__cmd_end(struct imap_cmd *cmd);
/* The one place the session state changes (traced in the debug log). */
void imap__set_state(struct imap_session *s, enum imap_state state);
/* A BAD reply to a command, counted: after 3 before login or 20 after,
 * the session ends. On the loop only. */
void imap__bad(struct imap_session *s, const char *tag, const char *text);
/* The capability list for a state, without "* CAPABILITY ". */
void imap__capabilities(const struct imap_session *s, enum imap_state state, struct buf *out);

/* Appending to cmd->out (jobs and loop). The tagged reply: "<tag> <status>
 * <text>\r\n", text printf-style; status is "OK", "NO" or "BAD". */
void imap__tagged(struct imap_cmd *cmd, const char *status, const char *fmt, ...)
	ATTR_PRINTF(3, 4);
void imap__untagged(struct imap_cmd *cmd, const char *fmt, ...) ATTR_PRINTF(2, 3);
/* A tagged reply from a response text "BAD ..." or "NO ..." (the error
 * texts of the parsing helpers here). */
void imap__tagged_error(struct imap_cmd *cmd, const char *response);
/* A tagged NO for a storage error: [TRYCREATE], [NONEXISTENT],
 * [ALREADYEXISTS], [OVERQUOTA], [LIMIT], [CANNOT], [NOPERM],
 * [SERVERBUG]/[UNAVAILABLE] with the session id (details to the log). */
void imap__tagged_store_error(struct imap_cmd *cmd, const struct store_error *err,
			      bool trycreate);

/* Argument checks: the type of args[i] and its string (atom, quoted,
 * literal; NULL for lists, NIL and streamed literals). */
const char *imap__arg_astring(const struct imap_arg *arg);
/* The i-th top-level argument of cmd (0-based) or NULL. */
const struct imap_arg *imap__cmd_arg(const struct imap_cmd *cmd, unsigned i);

/* ------------------------------------------------------------- output.c */

/* Append s as an IMAP string: an atom-safe quoted string when it can be
 * (no CR, LF, NUL; 8-bit only if utf8), else a literal {n}. */
void imap__buf_string(struct buf *out, const char *s, size_t len, bool utf8);
/* As above, or NIL for NULL. */
void imap__buf_nstring(struct buf *out, const char *s, size_t len, bool utf8);
/* The flags of m: "(\Seen \Flagged $Junk)" */
void imap__buf_flags(struct buf *out, const struct store_mailbox *mb, const struct store_msg *m);
/* A mailbox name for the client: UTF-8 when e->utf8, else modified UTF-7;
 * always quoted (or a literal). */
void imap__buf_mailbox(struct buf *out, const char *name, const struct imap_enabled *e);
/*
 * A mailbox name from the client (an astring) to the storage's UTF-8:
 * modified UTF-7 decoded unless e->utf8; "INBOX" in any case is INBOX.
 * NULL with *error_r (a tagged response text, e.g. "BAD Invalid modified
 * UTF-7 in mailbox name") when it is not a valid name.
 */
const char *imap__mailbox_in(const struct imap_arg *arg, const struct imap_enabled *e,
			     struct arena *a, const char **error_r);
/* Internal date as "dd-Mon-yyyy hh:mm:ss +zzzz" (in UTC). */
void imap__buf_date_time(struct buf *out, int64_t when);
/* date-time of APPEND ("dd-Mon-yyyy hh:mm:ss +zzzz", day may be " d"):
 * seconds since the epoch, or -1. */
int64_t imap__parse_date_time(const char *s);
/* date of SEARCH (d-Mon-yyyy, dd-Mon-yyyy, also quoted): days since
 * 1970-01-01, or INT64_MIN when invalid. */
int64_t imap__parse_date(const char *s);
/* A flag or keyword list "(\Seen $Junk)" or one flag atom: system flags
 * into *flags_r, keywords into *kw_r (in a). \Recent and \* are refused.
 * 0, or -1 with *error_r. */
int imap__parse_flags(const struct imap_arg *arg, struct arena *a, uint32_t *flags_r,
		      const char ***kw_r, size_t *kw_count_r, const char **error_r);
/* A number: nz-number or number (0 allowed when zero_ok), 32 or 64 bit. */
bool imap__parse_u32(const char *s, bool zero_ok, uint32_t *n_r);
bool imap__parse_u64(const char *s, bool zero_ok, uint64_t *n_r);

/* -------------------------------------------------------------- login.c */

void imap__cmd_login(struct imap_cmd *cmd);          /* loop */
void imap__cmd_authenticate(struct imap_cmd *cmd);   /* loop */
/* A client line while AUTHENTICATE waits for it. */
void imap__sasl_input(struct imap_session *s, const char *line, size_t len);
/* Cancel a check or exchange in flight (STARTTLS, close). */
void imap__auth_cancel(struct imap_session *s);
/* The session is gone: it no longer counts against its user and address
 * ([imap] max_user_connections_per_ip). */
void imap__login_release(struct imap_session *s);
bool imap__plaintext_allowed(const struct imap_session *s);

/* ----------------------------------------------------------- selected.c */

void imap__cmd_select(struct imap_cmd *cmd);         /* work: SELECT, EXAMINE */
void imap__cmd_close(struct imap_cmd *cmd);          /* work: CLOSE, UNSELECT */
void imap__cmd_check(struct imap_cmd *cmd);          /* work: CHECK, NOOP (selected) */
void imap__cmd_idle(struct imap_cmd *cmd);           /* loop */
/* A client line while IDLE waits for DONE. */
void imap__idle_input(struct imap_session *s, const char *line, size_t len);
/* Stop IDLE's watch (close, shutdown). */
void imap__idle_stop(struct imap_session *s);
/* Close the selected mailbox (job side; also from cancel paths). */
void imap__selected_free(struct imap_selected **sel);

/*
 * Untagged updates (job side): sync the store and tell the client what
 * changed since it was last told, into cmd->out: "* n EXISTS" for new
 * messages, "* n EXPUNGE" (or "* VANISHED uids" with QRESYNC) when
 * allow_expunge, and "* n FETCH (FLAGS (...) [UID u] [MODSEQ (m)])" for
 * flag changes by anyone. Without allow_expunge (FETCH, STORE, SEARCH)
 * expunged messages stay in the client's view. A failed sync is logged
 * and reported nothing.
 */
void imap__sync(struct imap_cmd *cmd, bool allow_expunge);

/*
 * A sequence set from the client (an atom) as the UIDs it names in the
 * client's view, ascending and unique, in cmd->a. by_uid: the set holds
 * UIDs (UID commands): UIDs not in the view are left out, "*" is the
 * highest UID in the view. Otherwise sequence numbers: one outside
 * 1..count is an error ("BAD Invalid message sequence number"); "*" on
 * an empty mailbox names nothing. "$" is the SEARCHRES result (the saved
 * UIDs still in the view). 0, or -1 with *error_r (a tagged response
 * text).
 */
int imap__seqset_uids(struct imap_cmd *cmd, const char *set, bool by_uid, uint32_t **uids_r,
		      size_t *count_r, const char **error_r);
/* Sequence number of uid in the client's view, 0 when absent. */
uint32_t imap__view_seq(const struct imap_selected *sel, uint32_t uid);
/* "* <seq> FETCH (FLAGS (...) [UID u] [MODSEQ (m)])" into cmd->out: UID
 * when with_uid (UID commands, QRESYNC), MODSEQ when CONDSTORE is on. */
void imap__untagged_flags(struct imap_cmd *cmd, uint32_t seq, const struct store_msg *m,
			  bool with_uid);

/* ------------------------------------------------------------ mailbox.c */

void imap__cmd_create(struct imap_cmd *cmd);         /* work */
void imap__cmd_delete(struct imap_cmd *cmd);         /* work */
void imap__cmd_rename(struct imap_cmd *cmd);         /* work */
void imap__cmd_subscribe(struct imap_cmd *cmd);      /* work: SUBSCRIBE, UNSUBSCRIBE */
void imap__cmd_list(struct imap_cmd *cmd);           /* work: LIST, LSUB */
void imap__cmd_status(struct imap_cmd *cmd);         /* work */
void imap__cmd_namespace(struct imap_cmd *cmd);      /* loop */
void imap__cmd_getquota(struct imap_cmd *cmd);       /* work: GETQUOTA, GETQUOTAROOT */
void imap__cmd_setquota(struct imap_cmd *cmd);       /* loop: refused */

/* -------------------------------------------------------------- fetch.c */

void imap__cmd_fetch(struct imap_cmd *cmd);          /* work */

/* ------------------------------------------------------------- search.c */

void imap__cmd_search(struct imap_cmd *cmd);         /* work */
/*
 * search-key list (RFC 9051 §6.4.4 with RFC 7162 MODSEQ, RFC 5032
 * OLDER/YOUNGER, RFC 8514 SAVED*) from args (count of them) into a tree
 * in cmd->a. A CHARSET other than UTF-8 and US-ASCII is refused.
 * *condstore_r is set when MODSEQ was used (CONDSTORE is then on).
 * 0, or -1 with *error_r ("BAD ..." or "NO [BADCHARSET (UTF-8 US-ASCII)] ...").
 */
int imap__search_parse(struct imap_cmd *cmd, const struct imap_arg *args, unsigned count,
		       struct store_search **tree_r, bool *condstore_r, const char **error_r);

/* --------------------------------------------------------------- sort.c */

void imap__cmd_sort(struct imap_cmd *cmd);           /* work */
void imap__cmd_thread(struct imap_cmd *cmd);         /* work */

/* ------------------------------------------------------------ message.c */

void imap__cmd_store(struct imap_cmd *cmd);          /* work */
void imap__cmd_copy(struct imap_cmd *cmd);           /* work: COPY, MOVE */
void imap__cmd_expunge(struct imap_cmd *cmd);        /* work: EXPUNGE, UID EXPUNGE */

/* ----------------------------------------------------------- compress.c */

void imap__cmd_compress(struct imap_cmd *cmd);       /* loop */

/* ------------------------------------------------------------- append.c */

void imap__cmd_append(struct imap_cmd *cmd);         /* loop, then work */
/* The parser's streaming hooks: APPEND's message literals go to storage. */
bool imap__append_want(void *ctx, const struct imap_command *pc, unsigned depth,
		       uint64_t size);
void imap__append_data(void *ctx, const unsigned char *data, size_t len);
/* Room for more literal bytes before the spool must be flushed (0: flush
 * first with imap__append_flush). */
size_t imap__append_room(const struct imap_session *s);
/* Start a job writing the spool to storage; input resumes after it. */
void imap__append_flush(struct imap_session *s);
/* The session is closing or the command failed: drop what was saved. */
void imap__append_abort(struct imap_session *s);

/* catchup.c: fill in, in the background, what the user's bulk-adopted
 * messages lack (store_user_catch_up); one job per user, on the loop thread. */
void imap__catch_up_start(const char *user_dir);
/* At shutdown: jobs end after their current batch. */
void imap__catch_up_stop(void);

#endif
