/*
 * session.c — one LMTP session (RFC 2033): the commands, their order and
 * their replies, with ENHANCEDSTATUSCODES (RFC 2034) on every reply but
 * the greeting and 354.
 *
 *   INIT   --LHLO-->  READY  --MAIL-->  MAIL  --RCPT...-->  MAIL
 *   MAIL   --DATA/BDAT LAST: one reply per accepted recipient-->  READY
 *   RSET and LHLO end a transaction; STARTTLS starts over at INIT.
 *
 * Input. Commands are lines from the connection (conn_read_line, under
 * max_line_length). DATA and BDAT bodies are raw bytes, which may be
 * longer than any line limit: they go through lmtp__data_feed into the
 * transaction's bounded spool. A read for DATA can take bytes past the end
 * of the data (the next pipelined commands, RFC 2920); those wait in
 * `leftover` and are read before the connection's own buffer, by lines or
 * bytes, so pipelining works across a message's end.
 *
 * Work. RCPT lookups and everything that touches a store run as
 * thread-pool jobs (conn_queue_work), one at a time, with input paused
 * meanwhile (the replies of a pipelined group stay in order). While a
 * flush or delivery job runs it owns the transaction; the session gets it
 * back in the job's completion (or, if the connection closed meanwhile,
 * the cancel callback frees it).
 *
 * Errors. Syntax and sequence errors (500, 501, 502, 503, 555) are counted;
 * after MAX_ERRORS the session ends with 421. Storage and lookup failures
 * are 4xx so that the MTA retries; nothing the client sends is echoed back
 * except addresses that parsed.
 */
#include "lmtp-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ERRORS 20

enum lmtp_session_state {
	LMTP_STATE_INIT,        /* before LHLO */
	LMTP_STATE_READY,       /* after LHLO, no transaction */
	LMTP_STATE_MAIL,        /* in a transaction */
};

struct lmtp_session {
	struct conn *conn;
	enum lmtp_session_state state;
	char lhlo[LMTP_MAX_HOSTNAME + 1];
	struct arena *cmd_arena;        /* the current command's strings */
	struct lmtp_txn *txn;
	bool txn_in_job;                /* a flush or delivery job owns txn */
	bool rcpt_in_job;
	const char *rcpt_address;       /* of the RCPT being looked up */
	bool in_data;                   /* reading DATA */
	bool in_chunk;                  /* reading a BDAT chunk */
	uint64_t chunk_left;
	bool chunk_last;
	const char *chunk_error;        /* reply after a refused chunk */
	struct buf leftover;            /* read past the end of DATA */
	size_t leftover_pos;
	struct buf joined;              /* a line split across leftover and input */
	unsigned errors;
	bool waiting_drain;
	bool closed;                    /* QUIT or an error ended it */
};

static void session_input(struct conn *c);

/* ---------------------------------------------------------------- input */

static size_t leftover_len(const struct lmtp_session *s)
{
	return s->leftover.len - s->leftover_pos;
}

/* Forget a leftover that has been read to its end. Done before the next
 * read rather than after the last, so that in_unread can give bytes back. */
static void leftover_compact(struct lmtp_session *s)
{
	if (s->leftover.len > 0 && leftover_len(s) == 0) {
		buf_clear(&s->leftover);
		s->leftover_pos = 0;
	}
}

/* Up to max bytes: what was left over first, then the connection's. */
static size_t in_bytes(struct lmtp_session *s, size_t max, const char **data_r,
		       bool *from_leftover_r)
{
	size_t n;

	leftover_compact(s);
	n = leftover_len(s);
	*from_leftover_r = n > 0;
	if (n == 0)
		return conn_read_bytes(s->conn, max, data_r);
	if (n > max)
		n = max;
	*data_r = (const char *)s->leftover.data + s->leftover_pos;
	s->leftover_pos += n;
	return n;
}

/* Give back the last n bytes in_bytes returned. */
static void in_unread(struct lmtp_session *s, const char *data, size_t n, bool from_leftover)
{
	if (n == 0)
		return;
	if (from_leftover) {
		s->leftover_pos -= n;
		return;
	}
	/* From the connection, read while the leftover was empty: at most
	 * one read's worth. */
	if (buf_append(&s->leftover, data, n) < 0) {
		log_error("bug: LMTP leftover overflow");
		abort();
	}
}

/* One command line: from the leftover if it has one, joined with the
 * connection's next line when the leftover ends mid-line. As
 * conn_read_line. */
static int in_line(struct lmtp_session *s, const char **line_r, size_t *len_r)
{
	size_t n = leftover_len(s), max = (size_t)conn_service_cfg(s->conn)->max_line_length;
	const char *rest, *line;
	size_t len;
	int ret;

	leftover_compact(s);
	n = leftover_len(s);
	if (n == 0)
		return conn_read_line(s->conn, line_r, len_r);
	rest = (const char *)s->leftover.data + s->leftover_pos;
	const char *lf = memchr(rest, '\n', n);

	if (lf != NULL) {
		len = (size_t)(lf - rest);
		s->leftover_pos += len + 1;
		buf_clear(&s->joined);
		if (buf_append(&s->joined, rest, len) < 0)
			ret = CONN_ELINE;
		else
			ret = 1;
	} else {
		ret = conn_read_line(s->conn, &line, &len);
		if (ret == 0)
			return 0;
		buf_clear(&s->joined);
		if (ret == 1 && (buf_append(&s->joined, rest, n) < 0 ||
				 buf_append(&s->joined, line, len) < 0))
			ret = CONN_ELINE;
		s->leftover_pos += n;
	}
	if (ret < 0)
		return ret;
	len = s->joined.len;
	if (len > 0 && s->joined.data[len - 1] == '\r')
		len--;
	if (len > max)
		return CONN_ELINE;
	*line_r = (const char *)s->joined.data;
	*len_r = len;
	return 1;
}

/* -------------------------------------------------------------- replies */

static void reply(struct lmtp_session *s, const char *text)
{
	conn_write_str(s->conn, text);
	conn_write_str(s->conn, "\r\n");
}

/* A syntax or sequence error: counted, and the session ends after many. */
static void reply_error(struct lmtp_session *s, const char *text)
{
	reply(s, text);
	if (++s->errors >= MAX_ERRORS) {
		conn_printf(s->conn, "421 4.7.0 %s Too many errors, closing connection\r\n",
			    lmtp__set.hostname);
		conn_close(s->conn, "too many errors");
		s->closed = true;
	}
}

static void end_transaction(struct lmtp_session *s)
{
	lmtp__txn_free(&s->txn);
	if (s->state == LMTP_STATE_MAIL)
		s->state = LMTP_STATE_READY;
}

/* -------------------------------------------------------- message body */

static void flush_work(void *data)
{
	lmtp__deliver_flush(data);
}

static void finish_work(void *data)
{
	lmtp__deliver_finish(data);
}

/* The connection closed while a job had the transaction. */
static void txn_cancel(void *data)
{
	struct lmtp_txn *t = data;

	lmtp__txn_free(&t);
}

static void flush_done(struct conn *c, void *data)
{
	struct lmtp_session *s = conn_get_data(c);

	s->txn_in_job = false;
	session_input(c);
}

static void reply_rcpt_status(struct lmtp_session *s, const struct lmtp_rcpt *r)
{
	struct conn *c = s->conn;

	switch (r->status) {
	case LMTP_ST_DELIVERED:
		conn_printf(c, "250 2.0.0 <%s> %s Saved\r\n", r->address, conn_session_id(c));
		log_info("delivered rcpt=<%s> user=%s mailbox=%s uid=%u size=%llu", r->address,
			 r->user, r->saved_in, r->uid, (unsigned long long)s->txn->msg_size);
		return;
	case LMTP_ST_QUOTA:
		if (lmtp__set.quota_full_tempfail)
			conn_printf(c, "452 4.2.2 <%s> Mailbox is full\r\n", r->address);
		else
			conn_printf(c, "552 5.2.2 <%s> Mailbox is full\r\n", r->address);
		break;
	case LMTP_ST_NOSPACE:
		conn_printf(c, "452 4.3.1 <%s> Insufficient system storage\r\n", r->address);
		break;
	case LMTP_ST_TOO_BIG:
		conn_printf(c, "552 5.3.4 <%s> Message too big for system\r\n", r->address);
		break;
	case LMTP_ST_PENDING:
	case LMTP_ST_TEMPFAIL:
		conn_printf(c, "451 4.3.0 <%s> %s Temporary failure, try again later\r\n",
			    r->address, conn_session_id(c));
		break;
	}
	log_info("not delivered rcpt=<%s> user=%s status=%d reason=%s", r->address, r->user,
		 (int)r->status, r->error != NULL ? r->error : "-");
}

static void finish_done(struct conn *c, void *data)
{
	struct lmtp_session *s = conn_get_data(c);
	struct lmtp_txn *t = s->txn;

	s->txn_in_job = false;
	for (size_t i = 0; i < t->rcpt_count; i++)
		reply_rcpt_status(s, t->rcpts[i]);
	end_transaction(s);
	session_input(c);
}

static void start_job(struct lmtp_session *s, conn_work_fn *work, conn_done_fn *done)
{
	if (conn_queue_work(s->conn, work, done, txn_cancel, s->txn) < 0) {
		/* Cannot happen with one job at a time; fail safe. */
		log_error("cannot queue delivery work");
		reply(s, "421 4.3.0 Temporary failure, closing connection");
		conn_close(s->conn, "cannot queue work");
		s->closed = true;
		return;
	}
	s->txn_in_job = true;
}

/* Room in the spool for one more read. */
static size_t spool_room(const struct lmtp_txn *t)
{
	size_t room = t->spool.max - t->spool.len;

	/* data_feed may add a held CR; discarding needs no room. */
	if (t->too_big)
		return 64 * 1024;
	return room > 8 ? room - 8 : 0;
}

/* Read DATA. Returns true when more commands may be read now. */
static bool data_input(struct lmtp_session *s)
{
	struct lmtp_txn *t = s->txn;

	for (;;) {
		const char *p;
		bool from_leftover;
		size_t used, n = in_bytes(s, spool_room(t), &p, &from_leftover);

		if (n == 0)
			return false;
		if (lmtp__data_feed(t, (const unsigned char *)p, n, &used) == 1) {
			in_unread(s, p + used, n - used, from_leftover);
			s->in_data = false;
			start_job(s, finish_work, finish_done);
			return false;
		}
		if (t->spool.len >= LMTP_SPOOL_FLUSH) {
			start_job(s, flush_work, flush_done);
			return false;
		}
	}
}

/* Read a BDAT chunk. Returns true when more commands may be read now. */
static bool chunk_input(struct lmtp_session *s)
{
	struct lmtp_txn *t = s->txn;

	while (s->chunk_left > 0) {
		const char *p;
		bool from_leftover;
		size_t max = s->chunk_error != NULL ? 64 * 1024 : spool_room(t);

		if (max > s->chunk_left)
			max = (size_t)s->chunk_left;
		size_t n = in_bytes(s, max, &p, &from_leftover);

		if (n == 0)
			return false;
		s->chunk_left -= n;
		if (s->chunk_error != NULL)
			continue;
		lmtp__bdat_feed(t, (const unsigned char *)p, n);
		if (s->chunk_left > 0 && t->spool.len >= LMTP_SPOOL_FLUSH) {
			start_job(s, flush_work, flush_done);
			return false;
		}
	}
	s->in_chunk = false;
	if (s->chunk_error != NULL) {
		reply_error(s, s->chunk_error);
		s->chunk_error = NULL;
		return true;
	}
	if (s->chunk_last) {
		start_job(s, finish_work, finish_done);
		return false;
	}
	if (t->too_big)
		reply(s, "552 5.3.4 Message too big for system");
	else
		conn_printf(s->conn, "250 2.0.0 %llu octets received\r\n",
			    (unsigned long long)t->msg_size);
	if (t->spool.len >= LMTP_SPOOL_FLUSH) {
		start_job(s, flush_work, flush_done);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------- commands */

static void cmd_lhlo(struct lmtp_session *s, const struct lmtp_command *cmd)
{
	struct conn *c = s->conn;

	end_transaction(s);
	snprintf(s->lhlo, sizeof(s->lhlo), "%s", cmd->args);
	s->state = LMTP_STATE_READY;
	conn_set_timeout(c, conn_service_cfg(c)->idle_timeout_ms);
	conn_printf(c, "250-%s\r\n"
		    "250-PIPELINING\r\n"
		    "250-ENHANCEDSTATUSCODES\r\n"
		    "250-8BITMIME\r\n"
		    "250-SIZE %llu\r\n"
		    "250-CHUNKING\r\n"
		    "250-BINARYMIME\r\n"
		    "%s"
		    "250 SMTPUTF8\r\n",
		    lmtp__set.hostname, (unsigned long long)lmtp__set.max_message_size,
		    conn_can_starttls(c) ? "250-STARTTLS\r\n" : "");
}

static bool parse_size(const char *v, uint64_t *n_r)
{
	uint64_t n = 0;

	if (v == NULL || *v == '\0' || strlen(v) > 20)
		return false;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*n_r = n;
	return true;
}

static void cmd_mail(struct lmtp_session *s, const struct lmtp_command *cmd)
{
	uint64_t size = 0;
	bool utf8 = false, binary = false;

	if (s->state == LMTP_STATE_INIT) {
		reply_error(s, "503 5.5.1 Send LHLO first");
		return;
	}
	if (s->state == LMTP_STATE_MAIL) {
		reply_error(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	for (unsigned i = 0; i < cmd->param_count; i++) {
		const struct lmtp_param *p = &cmd->params[i];

		if (strcmp(p->name, "SIZE") == 0) {
			if (!parse_size(p->value, &size)) {
				reply_error(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
		} else if (strcmp(p->name, "BODY") == 0) {
			if (p->value == NULL) {
				reply_error(s, "501 5.5.4 Bad BODY parameter");
				return;
			}
			if (strcasecmp(p->value, "BINARYMIME") == 0) {
				binary = true;
			} else if (strcasecmp(p->value, "7BIT") != 0 &&
				   strcasecmp(p->value, "8BITMIME") != 0) {
				reply_error(s, "501 5.5.4 Unknown BODY type");
				return;
			}
		} else if (strcmp(p->name, "SMTPUTF8") == 0 && p->value == NULL) {
			utf8 = true;
		} else {
			reply_error(s, "555 5.5.4 Unsupported parameter");
			return;
		}
	}
	if (cmd->addr.utf8 && !utf8) {
		reply_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (size > lmtp__set.max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	s->txn = lmtp__txn_new();
	s->txn->sender = arena_strdup(s->txn->arena, cmd->path);
	s->txn->declared_size = size;
	s->txn->max_size = lmtp__set.max_message_size;
	s->txn->max_recipients = lmtp__set.max_recipients;
	s->txn->smtputf8 = utf8;
	s->txn->binarymime = binary;
	s->state = LMTP_STATE_MAIL;
	reply(s, "250 2.1.0 OK");
}

static void rcpt_done(struct conn *c, void *data)
{
	struct lmtp_session *s = conn_get_data(c);
	struct lmtp_txn *t = s->txn;
	struct lmtp_rcpt *r = NULL;
	const char *a = s->rcpt_address;

	s->rcpt_in_job = false;
	switch (lmtp__rcpt_job_finish(data, t, a, &r)) {
	case LMTP_RCPT_OK:
		if (t->rcpt_count == t->rcpt_cap) {
			size_t cap = t->rcpt_cap > 0 ? t->rcpt_cap * 2 : 8;
			struct lmtp_rcpt **list = arena_alloc(t->arena, cap * sizeof(*list));

			if (t->rcpt_count > 0)
				memcpy(list, t->rcpts, t->rcpt_count * sizeof(*list));
			t->rcpts = list;
			t->rcpt_cap = cap;
		}
		t->rcpts[t->rcpt_count++] = r;
		conn_printf(c, "250 2.1.5 <%s> OK\r\n", a);
		break;
	case LMTP_RCPT_UNKNOWN:
		conn_printf(c, "550 5.1.1 <%s> User doesn't exist\r\n", a);
		break;
	case LMTP_RCPT_OVER_QUOTA:
		if (lmtp__set.quota_full_tempfail)
			conn_printf(c, "452 4.2.2 <%s> Mailbox is full\r\n", a);
		else
			conn_printf(c, "552 5.2.2 <%s> Mailbox is full\r\n", a);
		break;
	case LMTP_RCPT_NOSPACE:
		conn_printf(c, "452 4.3.1 <%s> Insufficient system storage\r\n", a);
		break;
	case LMTP_RCPT_LOOKUP_FAIL:
	case LMTP_RCPT_STORE_FAIL:
		conn_printf(c, "451 4.3.0 <%s> %s Temporary failure, try again later\r\n", a,
			    conn_session_id(c));
		break;
	}
	session_input(c);
}

static void cmd_rcpt(struct lmtp_session *s, const struct lmtp_command *cmd)
{
	struct lmtp_txn *t = s->txn;

	if (s->state != LMTP_STATE_MAIL) {
		reply_error(s, "503 5.5.1 Send MAIL first");
		return;
	}
	if (t->data_started) {
		reply_error(s, "503 5.5.1 RCPT after BDAT");
		return;
	}
	if (cmd->param_count > 0) {
		reply_error(s, "555 5.5.4 Unsupported parameter");
		return;
	}
	if (cmd->addr.utf8 && !t->smtputf8) {
		reply_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	t->rcpt_attempts++;
	if (t->rcpt_count >= t->max_recipients) {
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	struct lmtp_rcpt_job *job = lmtp__rcpt_job_new(&cmd->addr, t->declared_size);

	s->rcpt_address = arena_strdup(t->arena, cmd->path);
	if (conn_queue_work(s->conn, lmtp__rcpt_job_run, rcpt_done, lmtp__rcpt_job_cancel,
			    job) < 0) {
		lmtp__rcpt_job_cancel(job);
		conn_printf(s->conn, "451 4.3.0 <%s> Temporary failure, try again later\r\n",
			    s->rcpt_address);
		return;
	}
	s->rcpt_in_job = true;
}

/* Why a DATA or BDAT cannot start now, or NULL. */
static const char *body_refusal(const struct lmtp_session *s, bool bdat)
{
	const struct lmtp_txn *t = s->txn;

	if (s->state != LMTP_STATE_MAIL)
		return "503 5.5.1 Send MAIL first";
	if (t->rcpt_count == 0)
		return t->rcpt_attempts == 0 ? "503 5.5.1 Send RCPT first" :
			"554 5.5.1 No valid recipients";
	if (!bdat && t->bdat)
		return "503 5.5.1 DATA after BDAT";
	if (!bdat && t->binarymime)
		return "503 5.5.1 BODY=BINARYMIME needs BDAT";
	return NULL;
}

static void start_body(struct lmtp_session *s, bool bdat)
{
	struct lmtp_txn *t = s->txn;
	struct conn *c = s->conn;

	if (t->data_started)
		return;
	t->data_started = true;
	t->bdat = bdat;
	lmtp__trace_headers(t, s->lhlo, conn_remote_ip(c), conn_is_tls(c), conn_session_id(c));
}

static void cmd_data(struct lmtp_session *s)
{
	const char *why = body_refusal(s, false);

	if (why != NULL) {
		reply_error(s, why);
		return;
	}
	start_body(s, false);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->in_data = true;
}

/* The chunk is read (or discarded) whatever the answer: its bytes are not
 * commands (RFC 3030 §2). */
static void cmd_bdat(struct lmtp_session *s, const struct lmtp_command *cmd)
{
	struct lmtp_txn *t = s->txn;

	s->in_chunk = true;
	s->chunk_left = cmd->chunk_size;
	s->chunk_last = cmd->last;
	s->chunk_error = body_refusal(s, true);
	if (s->chunk_error != NULL)
		return;
	start_body(s, true);
	if (cmd->chunk_size > t->max_size - t->msg_size)
		t->too_big = true;
}

static void cmd_starttls(struct lmtp_session *s)
{
	if (!conn_can_starttls(s->conn)) {
		reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	end_transaction(s);
	s->state = LMTP_STATE_INIT;
	s->lhlo[0] = '\0';
	/* Nothing pipelined after STARTTLS survives into TLS. */
	buf_clear(&s->leftover);
	s->leftover_pos = 0;
	conn_starttls(s->conn);
}

static void run_command(struct lmtp_session *s, const char *line, size_t len)
{
	struct lmtp_command cmd;

	arena_reset(s->cmd_arena);
	if (lmtp__parse_command(s->cmd_arena, line, len, &cmd) < 0) {
		reply_error(s, cmd.error);
		return;
	}
	switch (cmd.verb) {
	case LMTP_CMD_LHLO:
		cmd_lhlo(s, &cmd);
		break;
	case LMTP_CMD_HELO:
		reply_error(s, "500 5.5.1 This is LMTP: use LHLO");
		break;
	case LMTP_CMD_MAIL:
		cmd_mail(s, &cmd);
		break;
	case LMTP_CMD_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case LMTP_CMD_DATA:
		cmd_data(s);
		break;
	case LMTP_CMD_BDAT:
		cmd_bdat(s, &cmd);
		break;
	case LMTP_CMD_RSET:
		end_transaction(s);
		reply(s, "250 2.0.0 OK");
		break;
	case LMTP_CMD_NOOP:
		reply(s, "250 2.0.0 OK");
		break;
	case LMTP_CMD_QUIT:
		conn_printf(s->conn, "221 2.0.0 %s Bye\r\n", lmtp__set.hostname);
		conn_close(s->conn, "quit");
		s->closed = true;
		break;
	case LMTP_CMD_VRFY:
		reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case LMTP_CMD_HELP:
		reply(s, "214 2.0.0 Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT");
		break;
	case LMTP_CMD_STARTTLS:
		cmd_starttls(s);
		break;
	case LMTP_CMD_UNKNOWN:
		break;
	}
}

/* Everything readable now, until a job starts or input runs out. */
static void session_input(struct conn *c)
{
	struct lmtp_session *s = conn_get_data(c);
	const char *line;
	size_t len;

	while (s != NULL && !s->closed && !s->txn_in_job && !s->rcpt_in_job &&
	       !s->waiting_drain) {
		if (s->in_data) {
			if (!data_input(s))
				return;
			continue;
		}
		if (s->in_chunk) {
			if (!chunk_input(s))
				return;
			continue;
		}
		int ret = in_line(s, &line, &len);

		if (ret == 0)
			return;
		if (ret == CONN_ELINE)
			reply_error(s, "500 5.5.2 Line too long");
		else
			run_command(s, line, len);
		if (!s->closed && !conn_writable(c)) {
			/* A client that pipelines without reading: wait. */
			s->waiting_drain = true;
			conn_pause(c);
		}
	}
}

/* ----------------------------------------------------- framework hooks */

static void lmtp_open(struct conn *c)
{
	struct lmtp_session *s = arena_alloc(conn_arena(c), sizeof(*s));
	size_t line_max = (size_t)conn_service_cfg(c)->max_line_length;

	s->conn = c;
	s->cmd_arena = arena_new(0);
	buf_init(&s->leftover, 2 * LMTP_SPOOL_FLUSH + line_max + 64 * 1024);
	buf_init(&s->joined, 2 * line_max + 64 * 1024);
	conn_set_data(c, s);
	conn_printf(c, "220 %s Tern LMTP ready\r\n", lmtp__set.hostname);
}

static void lmtp_input(struct conn *c)
{
	session_input(c);
}

static void lmtp_drain(struct conn *c)
{
	struct lmtp_session *s = conn_get_data(c);

	if (s == NULL || !s->waiting_drain)
		return;
	s->waiting_drain = false;
	conn_resume(c);
	session_input(c);
}

static void lmtp_notice(struct conn *c, enum conn_notice why)
{
	if (why == CONN_NOTICE_SHUTDOWN)
		conn_printf(c, "421 4.3.2 %s Server shutting down\r\n", lmtp__set.hostname);
	else
		conn_printf(c, "421 4.4.2 %s Timeout, closing connection\r\n", lmtp__set.hostname);
}

static void lmtp_refuse(struct conn *c, enum conn_refusal why)
{
	conn_printf(c, "421 4.3.2 %s Too many connections, try again later\r\n",
		    lmtp__set.hostname);
}

static void lmtp_close(struct conn *c)
{
	struct lmtp_session *s = conn_get_data(c);

	if (s == NULL)
		return;
	/* A job that has the transaction frees it in its cancel callback. */
	if (!s->txn_in_job)
		lmtp__txn_free(&s->txn);
	arena_free(&s->cmd_arena);
	buf_release(&s->leftover);
	buf_release(&s->joined);
}

const struct conn_handler lmtp__handler = {
	.open_cb = lmtp_open,
	.input_cb = lmtp_input,
	.drain_cb = lmtp_drain,
	.notice_cb = lmtp_notice,
	.refuse_cb = lmtp_refuse,
	.close_cb = lmtp_close,
};
