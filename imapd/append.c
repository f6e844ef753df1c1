/*
 * append.c — APPEND and MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502), with
 * literal8 messages (BINARY, RFC 3516), APPENDUID (UIDPLUS, RFC 4315) and
 * the APPENDLIMIT the parser enforces (RFC 7889).
 *
 * Streaming. A message can be far larger than anything a session may
 * hold, so its literal never goes into memory whole: the parser asks
 * imap__append_want about every literal, and the message literals of an
 * APPEND go to imap__append_data instead, into a spool of SPOOL_SIZE
 * bytes. When the spool is full, session.c stops feeding the parser and
 * calls imap__append_flush, which writes the spool to storage in a job
 * (store_save_write, on the pool) and resumes input afterwards. Memory
 * per appending session is the spool, whatever the message size.
 *
 *   want (literal header) -> data ... -> [flush job] -> data ... -> command
 *   complete -> imap__cmd_append: check the arguments -> job: write the
 *   rest, set flags and dates, commit every message, reply
 *
 * The mailbox is the command's first argument, known before any message
 * byte; flags and date-time come before each literal but are only applied
 * at the commit, once the whole command has been checked. A mailbox that
 * does not exist or a failed write is remembered, and the rest of the
 * literal is read and dropped, so the client's bytes are never taken as
 * commands.
 *
 * MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): nothing is committed
 * before every message is written; if a commit fails midway the messages
 * already committed are expunged again (their UIDs stay used, and a client
 * watching the mailbox may see them come and go).
 *
 * Ownership: s->append is created on the loop (want) and used there
 * (data, room) while no job runs; the flush and commit jobs own it while
 * they run; the commit job frees it. imap__append_abort frees it on a
 * parse error (loop) or when the session closes (pool, close_work), and
 * touches nothing else of the session.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Message bytes held before they are written to storage. */
#define SPOOL_SIZE (256 * 1024)

struct append_msg {
	uint64_t size;                  /* the literal's size */
	size_t pending;                 /* its bytes in the spool, not yet written */
	struct store_save *save;        /* begun with its first bytes */
	/* From the command once it is complete (imap__cmd_append). */
	uint32_t flags;
	const char **keywords;          /* in cmd->a */
	size_t keyword_count;
	int64_t date;                   /* -1: now */
	uint32_t uid;                   /* once committed */
};

struct imap_append {
	/* Carries the flush job through session.c's job mechanism, which
	 * frees the session if it closes meanwhile. */
	struct imap_cmd flush_cmd;
	char *mailbox;                  /* storage name, NULL when invalid */
	/* Set once a save failed or cannot be made: the rest is dropped. */
	bool failed;
	struct store_error err;
	struct append_msg *msgs;
	size_t count, cap;
	struct buf spool;               /* msgs' pending bytes, in order */
	uint64_t total;                 /* the literals' sizes so far */
};

static void append_free(struct imap_append **app)
{
	struct imap_append *ap = *app;

	if (ap == NULL)
		return;
	*app = NULL;
	for (size_t i = 0; i < ap->count; i++)
		store_save_abort(&ap->msgs[i].save);
	buf_release(&ap->spool);
	free(ap->msgs);
	free(ap->mailbox);
	free(ap);
}

/* Stop saving: drop what was written and what is spooled; the client's
 * bytes are still read (and dropped) to the end of the command. */
static void append_fail(struct imap_append *ap, const struct store_error *err)
{
	if (!ap->failed && err != NULL)
		ap->err = *err;
	ap->failed = true;
	for (size_t i = 0; i < ap->count; i++) {
		store_save_abort(&ap->msgs[i].save);
		ap->msgs[i].pending = 0;
	}
	buf_clear(&ap->spool);
	buf_shrink_if_empty(&ap->spool, 0);
}

/* ------------------------------------------------------------ streaming */

bool imap__append_want(void *ctx, const struct imap_command *pc, unsigned depth,
		       uint64_t size)
{
	struct imap_session *s = ctx;
	struct imap_append *ap = s->append;

	/* A message is a top-level literal after the mailbox (the mailbox
	 * itself may be a literal: argc 0). What else sits between them is
	 * checked when the command is complete; a literal in the wrong place
	 * is streamed and dropped with the rest then. */
	if (s->state != IMAP_STATE_AUTH && s->state != IMAP_STATE_SELECTED)
		return false;
	if (depth != 0 || pc->argc == 0 || pc->name == NULL || strcasecmp(pc->name, "APPEND") != 0)
		return false;
	if (ap == NULL) {
		struct arena *a = arena_new(0);
		const char *error, *name = imap__mailbox_in(pc->args, &s->enabled, a, &error);

		ap = xcalloc(1, sizeof(*ap));
		ap->flush_cmd.s = s;
		ap->flush_cmd.name = "APPEND";
		buf_init(&ap->spool, SPOOL_SIZE);
		if (name != NULL)
			ap->mailbox = xstrdup(name);
		else
			ap->failed = true;      /* the command's check says why */
		arena_free(&a);
		s->append = ap;
	}
	if (ap->count == ap->cap) {
		ap->cap = ap->cap == 0 ? 4 : ap->cap * 2;
		ap->msgs = xrealloc(ap->msgs, ap->cap * sizeof(*ap->msgs));
	}
	memset(&ap->msgs[ap->count], 0, sizeof(ap->msgs[0]));
	ap->msgs[ap->count].size = size;
	ap->msgs[ap->count].date = -1;
	ap->count++;
	ap->total += size;
	return true;
}

void imap__append_data(void *ctx, const unsigned char *data, size_t len)
{
	struct imap_session *s = ctx;
	struct imap_append *ap = s->append;

	if (ap == NULL || ap->failed || ap->count == 0)
		return;
	/* session.c feeds no more than imap__append_room allows. */
	if (buf_append(&ap->spool, data, len) < 0) {
		struct store_error err = { .code = STORE_ERR_TEMP };

		snprintf(err.msg, sizeof(err.msg), "bug: APPEND spool overrun");
		log_error("%s", err.msg);
		append_fail(ap, &err);
		return;
	}
	ap->msgs[ap->count - 1].pending += len;
}

size_t imap__append_room(const struct imap_session *s)
{
	const struct imap_append *ap = s->append;

	if (ap == NULL || ap->failed)
		return SIZE_MAX;
	return ap->spool.len < SPOOL_SIZE ? SPOOL_SIZE - ap->spool.len : 0;
}

/* Before message i's first byte is written: refuse it at once when the
 * quota cannot hold it with the ones before it in this command, rather
 * than writing it all to find out at the commit. */
static int quota_precheck(struct imap_mail *m, struct imap_append *ap, size_t i,
			  struct store_error *err)
{
	uint64_t bytes, messages, adding = 0;

	if (m->quota.max_bytes == 0 && m->quota.max_messages == 0)
		return 0;
	for (size_t j = 0; j <= i; j++)
		adding += ap->msgs[j].size;
	if (store_user_usage(m->store, &bytes, &messages, err) < 0)
		return -1;
	if ((m->quota.max_bytes != 0 && bytes + adding > m->quota.max_bytes) ||
	    (m->quota.max_messages != 0 && messages + i + 1 > m->quota.max_messages)) {
		err->code = STORE_ERR_QUOTA;
		snprintf(err->msg, sizeof(err->msg), "quota exceeded by APPEND");
		return -1;
	}
	return 0;
}

/* On the pool: the spool to storage, each message's bytes to its save
 * (begun with its first bytes). */
static void spool_write(struct imap_mail *m, struct imap_append *ap)
{
	struct store_error err = { 0 };
	size_t off = 0;

	if (ap->failed)
		return;
	for (size_t i = 0; i < ap->count; i++) {
		struct append_msg *msg = &ap->msgs[i];

		if (msg->pending == 0)
			continue;
		if (msg->save == NULL &&
		    (quota_precheck(m, ap, i, &err) < 0 ||
		     store_save_begin(m->store, ap->mailbox, &msg->save, &err) < 0)) {
			append_fail(ap, &err);
			return;
		}
		if (store_save_write(msg->save, ap->spool.data + off, msg->pending, &err) < 0) {
			append_fail(ap, &err);
			return;
		}
		off += msg->pending;
		msg->pending = 0;
	}
	buf_clear(&ap->spool);
}

static void flush_work(struct imap_cmd *cmd)
{
	spool_write(&cmd->s->mail, cmd->s->append);
}

static void flush_done(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	/* The framework reads on only when the connection has new bytes;
	 * what s->in already holds is fed from here. */
	imap__handler.input_cb(s->conn);
}

void imap__append_flush(struct imap_session *s)
{
	struct imap_append *ap = s->append;

	if (ap == NULL)
		return;
	imap__cmd_queue_step(&ap->flush_cmd, flush_work, flush_done);
	if (!s->job_running) {
		/* Not queued (the connection is closing): drop the message
		 * rather than stall input on a full spool. */
		struct store_error err = { .code = STORE_ERR_TEMP };

		snprintf(err.msg, sizeof(err.msg), "cannot queue the APPEND spool flush");
		append_fail(ap, &err);
	}
}

void imap__append_abort(struct imap_session *s)
{
	append_free(&s->append);
}

/* ------------------------------------------------------------- command */

/* A uid-set ("4:6,9") of ascending UIDs. */
static void buf_uid_set(struct buf *out, const struct append_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && msgs[j + 1].uid == msgs[j].uid + 1)
			j++;
		if (i > 0)
			buf_append(out, ",", 1);
		if (j > i)
			buf_printf(out, "%u:%u", msgs[i].uid, msgs[j].uid);
		else
			buf_printf(out, "%u", msgs[i].uid);
		i = j + 1;
	}
}

/* Keywords of the committed messages: the save API takes only system
 * flags, so they are added to the new messages afterwards. */
static int set_keywords(struct imap_mail *m, struct imap_append *ap, struct store_error *err)
{
	struct store_mailbox *mb = NULL;
	int ret = 0;

	for (size_t i = 0; i < ap->count && ret == 0; i++) {
		struct append_msg *msg = &ap->msgs[i];

		if (msg->keyword_count == 0)
			continue;
		if (mb == NULL && store_mailbox_open(m->store, ap->mailbox, &mb, err) < 0)
			return -1;
		ret = store_mailbox_set_flags(mb, &msg->uid, 1, STORE_FLAGS_ADD, 0,
					      msg->keywords, msg->keyword_count, 0, NULL, err);
	}
	store_mailbox_close(&mb);
	return ret;
}

/* MULTIAPPEND's atomicity after a failed commit: take back the first n. */
static void uncommit(struct imap_mail *m, struct imap_append *ap, size_t n)
{
	struct store_mailbox *mb = NULL;
	struct store_error err = { 0 };
	uint32_t *uids;

	if (n == 0)
		return;
	uids = xcalloc(n, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = ap->msgs[i].uid;
	if (store_mailbox_open(m->store, ap->mailbox, &mb, &err) < 0 ||
	    store_mailbox_expunge(mb, uids, n, &err) < 0)
		log_error("MULTIAPPEND: %zu messages committed before a failure stay in %s: %s",
			  n, ap->mailbox, err.msg);
	store_mailbox_close(&mb);
	free(uids);
}

/* On the pool: write the rest, commit every message, reply. */
static void append_work(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_mail *m = &s->mail;
	struct imap_append *ap = s->append;
	struct store_error err = { 0 };
	uint32_t uidvalidity = 0;
	size_t done = 0;

	spool_write(m, ap);
	if (ap->failed) {
		if (ap->err.code == STORE_ERR_NONE)
			ap->err.code = STORE_ERR_TEMP;
		imap__tagged_store_error(cmd, &ap->err, true);
		goto out;
	}
	for (; done < ap->count; done++) {
		struct append_msg *msg = &ap->msgs[done];

		store_save_set_flags(msg->save, msg->flags);
		if (msg->date >= 0)
			store_save_set_internal_date(msg->save, msg->date);
		if (store_save_commit(&msg->save, &uidvalidity, &msg->uid, &err) < 0)
			break;
	}
	if (done < ap->count) {
		uncommit(m, ap, done);
		imap__tagged_store_error(cmd, &err, true);
		goto out;
	}
	if (set_keywords(m, ap, &err) < 0)
		log_warn("APPEND: keywords not set in %s: %s", ap->mailbox, err.msg);
	/* The new messages are EXISTS for a client that has the mailbox
	 * selected (RFC 9051 §6.3.12). */
	imap__sync(cmd, true);
	buf_printf(&cmd->out, "%s OK [APPENDUID %u ", cmd->tag, uidvalidity);
	buf_uid_set(&cmd->out, ap->msgs, ap->count);
	buf_append_str(&cmd->out, "] Append completed\r\n");
out:
	append_free(&s->append);
}

/* A refused command, on the loop: the response text ("BAD ..." or
 * "NO ..."), and nothing of it is kept. */
static void append_refuse(struct imap_cmd *cmd, const char *response)
{
	struct imap_session *s = cmd->s;

	imap__append_abort(s);
	if (strncmp(response, "BAD ", 4) == 0)
		imap__bad(s, cmd->tag, response + 4);
	else
		conn_printf(s->conn, "%s %s\r\n", cmd->tag, response);
	imap__cmd_end(cmd);
}

/*
 * append = "APPEND" SP mailbox 1*append-message
 * append-message = [SP flag-list] [SP date-time] SP literal (RFC 3502,
 * literal8 with BINARY). The messages' bytes are already with storage (or
 * dropped); this checks the rest and starts the commit.
 */
void imap__cmd_append(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_append *ap = s->append;
	const struct imap_arg *arg = cmd->args;
	const char *error;
	size_t n = 0;

	if (arg == NULL) {
		append_refuse(cmd, "BAD APPEND needs a mailbox and a message");
		return;
	}
	if (imap__mailbox_in(arg, &s->enabled, cmd->a, &error) == NULL) {
		append_refuse(cmd, error);
		return;
	}
	for (arg = arg->next; arg != NULL; arg = arg->next, n++) {
		const struct imap_arg *flags = NULL, *date = NULL;

		if (arg->type == IMAP_ARG_LIST) {
			flags = arg;
			arg = arg->next;
		}
		if (arg != NULL && arg->type == IMAP_ARG_QUOTED) {
			date = arg;
			arg = arg->next;
		}
		if (arg == NULL || arg->type != IMAP_ARG_LITERAL ||
		    !(arg->flags & IMAP_ARG_STREAMED) || ap == NULL || n >= ap->count) {
			append_refuse(cmd, "BAD Invalid arguments: mailbox [(flags)] "
				      "[\"date-time\"] {message literal}");
			return;
		}
		struct append_msg *msg = &ap->msgs[n];

		if (flags != NULL && imap__parse_flags(flags, cmd->a, &msg->flags, &msg->keywords,
						       &msg->keyword_count, &error) < 0) {
			append_refuse(cmd, error);
			return;
		}
		if (date != NULL && (msg->date = imap__parse_date_time(date->str)) < 0) {
			append_refuse(cmd, "BAD Invalid internal date");
			return;
		}
		/* RFC 3516: only literal8 may carry NUL. */
		if ((arg->flags & IMAP_ARG_HAS_NUL) && !(arg->flags & IMAP_ARG_LITERAL8)) {
			append_refuse(cmd, "BAD NUL in a message literal (send it as literal8)");
			return;
		}
		if (arg->len == 0) {
			/* As Dovecot: an empty message is no message. */
			append_refuse(cmd, "NO Can't save a zero byte message");
			return;
		}
	}
	if (n == 0 || ap == NULL || n != ap->count) {
		append_refuse(cmd, n == 0 ? "BAD APPEND needs a message literal" :
			      "BAD Invalid arguments: mailbox [(flags)] [\"date-time\"] "
			      "{message literal}");
		return;
	}
	imap__cmd_queue(cmd, append_work);
	if (!s->job_running)
		imap__append_abort(s);  /* not queued: the session is closing */
}
