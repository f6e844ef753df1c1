/*
 * retr.c — RETR and TOP (RFC 1939 §7): a message streamed to the client
 * in pieces, with back-pressure, so that a message of any size never sits
 * in memory.
 *
 * Each piece is a thread-pool job: it opens the message the first time
 * (store_reader_open), reads up to one output buffer's worth of the CRLF
 * view, and dot-stuffs it (stuff.c) into the RETR's buffer; at the end it
 * closes the reader and adds the final ".". Back on the loop the piece is
 * written; the next job starts at once while the output queue has room,
 * otherwise when it drains (drain_cb). A piece is at most the output
 * buffer size before stuffing (at most 4/3 of it after), so queued output
 * stays under the framework's cap of four times that size.
 *
 * The +OK line goes out only once the message is open: a message that
 * another session or program expunged meanwhile gets "-ERR" and the
 * session goes on. An I/O error after +OK cannot be reported in the
 * protocol: the connection is closed (the client sees a truncated
 * response without the final ".").
 */
#include "pop3-private.h"

#include <stdlib.h>
#include <string.h>

/* Smallest piece, whatever output_buffer_size says. */
#define MIN_CHUNK 4096

static void retr_free(struct pop3_retr **rp)
{
	struct pop3_retr *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	store_reader_close(&r->reader);
	buf_release(&r->out);
	free(r);
}

/* On a pool thread: the next piece into r->out. */
static void retr_work(void *data)
{
	struct pop3_retr *r = data;
	unsigned char in[16384];
	struct store_error err = { 0 };
	bool at_end = false;

	if (r->reader == NULL) {
		if (store_reader_open(r->md->mb, r->uid, &r->reader, &err) < 0) {
			r->error = err.code != STORE_ERR_NONE ? (int)err.code : STORE_ERR_TEMP;
			snprintf(r->errmsg, sizeof(r->errmsg), "%s", err.msg);
			return;
		}
	}
	while (r->out.len < r->chunk && !r->st.done) {
		size_t want = r->chunk - r->out.len;
		ssize_t n = store_reader_read(r->reader, in, want < sizeof(in) ? want : sizeof(in));

		if (n < 0) {
			r->error = STORE_ERR_TEMP;
			snprintf(r->errmsg, sizeof(r->errmsg), "read error on UID %u", r->uid);
			return;
		}
		if (n == 0) {
			at_end = true;
			break;
		}
		if (buf_reserve(&r->out, (size_t)n * 2) < 0) {
			r->error = STORE_ERR_LIMIT;
			snprintf(r->errmsg, sizeof(r->errmsg), "output buffer limit");
			return;
		}
		pop3__stuff_feed(&r->st, in, (size_t)n, &r->out);
	}
	if (at_end || r->st.done) {
		/* End of the message, or TOP's last line. */
		store_reader_close(&r->reader);
		pop3__stuff_finish(&r->st, &r->out);
		r->eof = true;
	}
}

static void retr_done(struct conn *c, void *data);

static void retr_cancel(void *data)
{
	struct pop3_retr *r = data;

	pop3__maildrop_close_async(&r->md);
	retr_free(&r);
}

static void retr_next(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;

	/* The job owns the maildrop while it runs. */
	r->md = s->md;
	s->md = NULL;
	if (conn_queue_work(s->conn, retr_work, retr_done, retr_cancel, r) < 0) {
		s->md = r->md;
		r->md = NULL;
		log_error("cannot queue a RETR job");
		conn_close(s->conn, "internal error");
		return;
	}
	s->job_running = true;
}

static void retr_finish(struct pop3_session *s)
{
	retr_free(&s->retr);
	conn_resume(s->conn);
}

static void retr_done(struct conn *c, void *data)
{
	struct pop3_session *s = conn_get_data(c);
	struct pop3_retr *r = data;

	s->job_running = false;
	s->md = r->md;
	r->md = NULL;
	if (r->error != 0) {
		if (r->started) {
			log_error("RETR of UID %u failed after it started: %s", r->uid, r->errmsg);
			conn_close(c, "message read error");
		} else if (r->error == STORE_ERR_NOTFOUND) {
			log_info("RETR of UID %u: expunged by another session", r->uid);
			conn_printf(c, "-ERR Message %u was deleted by another session\r\n",
				    r->msgnum);
		} else {
			log_error("RETR of UID %u failed: %s", r->uid, r->errmsg);
			conn_printf(c, "-ERR [SYS/TEMP] Cannot read message %u (%s)\r\n", r->msgnum,
				    conn_session_id(c));
		}
		retr_finish(s);
		return;
	}
	if (!r->started) {
		r->started = true;
		if (r->top)
			conn_write_str(c, "+OK Top of message follows\r\n");
		else
			conn_printf(c, "+OK %llu octets\r\n",
				    (unsigned long long)s->md->msgs[r->msgnum - 1].vsize);
	}
	conn_write(c, r->out.data, r->out.len);
	buf_clear(&r->out);
	if (r->eof) {
		if (r->whole)
			s->md->msgs[r->msgnum - 1].retrieved = true;
		retr_finish(s);
		return;
	}
	if (conn_writable(c))
		retr_next(s);
	/* Otherwise drain_cb continues. */
}

void pop3__retr_drain(struct pop3_session *s)
{
	if (s->retr != NULL && !s->job_running && conn_writable(s->conn))
		retr_next(s);
}

static void retr_start(struct pop3_session *s, int64_t i, bool top, uint64_t lines)
{
	const struct cfg_service *svc = conn_service_cfg(s->conn);
	struct pop3_retr *r = xcalloc(1, sizeof(*r));

	r->uid = s->md->msgs[i].uid;
	r->msgnum = (uint32_t)i + 1;
	r->top = top;
	r->whole = !top;
	r->chunk = svc->output_buffer_size > MIN_CHUNK ? (size_t)svc->output_buffer_size :
		   MIN_CHUNK;
	/* A piece is at most chunk bytes of input, stuffed to twice that at
	 * worst, plus the final line. */
	buf_init(&r->out, 3 * r->chunk + 64);
	pop3__stuff_init(&r->st, top, lines);
	s->retr = r;
	conn_pause(s->conn);
	retr_next(s);
}

void pop3__cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	int64_t i = pop3__msg_lookup(s, &cmd->argv[0]);

	if (i >= 0)
		retr_start(s, i, false, 0);
}

void pop3__cmd_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	uint64_t lines;
	int64_t i;

	if (pop3__parse_count(&cmd->argv[1], &lines) < 0) {
		pop3__bad_command(s, "Invalid number of lines");
		return;
	}
	i = pop3__msg_lookup(s, &cmd->argv[0]);
	if (i >= 0)
		retr_start(s, i, true, lines);
}

void pop3__retr_abandon(struct pop3_session *s)
{
	/* While a job runs it owns the RETR: its cancel callback frees it. */
	if (s->job_running) {
		s->retr = NULL;
		return;
	}
	retr_free(&s->retr);
}
