/*
 * selected.c — the selected mailbox as the client sees it: SELECT and
 * EXAMINE (with CONDSTORE and QRESYNC, RFC 7162, and MAILBOXID, RFC 8474),
 * CLOSE, UNSELECT, CHECK, NOOP's poll, IDLE (RFC 2177), the untagged
 * updates every command may carry, and sequence sets.
 *
 * Two views. The store's (store_mailbox_*) is the mailbox on disk as of
 * the last sync; the client's (sel->uids) is what the client was told.
 * imap__sync brings the client's view up to date: new messages at once
 * (EXISTS may always be sent), flag changes at once (FETCH FLAGS), and
 * expunges only where the RFC allows an EXPUNGE or VANISHED response:
 * not during FETCH, STORE and SEARCH (RFC 9051 §7.5.1), so sequence
 * numbers the client is using never shift under it. A message expunged
 * elsewhere stays in the client's view until then; FETCH answers for it
 * what it can (its UID, flags) and says NO [EXPUNGEISSUED] for the rest.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap__selected_free(struct imap_selected **selp)
{
	struct imap_selected *sel = *selp;

	if (sel == NULL)
		return;
	*selp = NULL;
	store_mailbox_close(&sel->mb);
	free(sel->uids);
	free(sel->saved);
	free(sel->name);
	free(sel);
}

uint32_t imap__view_seq(const struct imap_selected *sel, uint32_t uid)
{
	uint32_t lo = 0, hi = sel->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (sel->uids[mid] == uid)
			return mid + 1;
		if (sel->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static void view_append(struct imap_selected *sel, uint32_t uid)
{
	if (sel->count == sel->cap) {
		sel->cap = sel->cap < 64 ? 64 : sel->cap * 2;
		sel->uids = xrealloc(sel->uids, sel->cap * sizeof(*sel->uids));
	}
	sel->uids[sel->count++] = uid;
}

void imap__untagged_flags(struct imap_cmd *cmd, uint32_t seq, const struct store_msg *m,
			  bool with_uid)
{
	struct buf *out = &cmd->out;

	buf_printf(out, "* %u FETCH (FLAGS ", seq);
	imap__buf_flags(out, cmd->s->mail.sel->mb, m);
	if (with_uid || cmd->s->enabled.qresync)
		buf_printf(out, " UID %u", m->uid);
	if (cmd->s->enabled.condstore)
		buf_printf(out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_append_str(out, ")\r\n");
}

/* A UID list as a sequence set ("3:5,9") into out. */
static void buf_uid_set(struct buf *out, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append(out, ",", 1);
		if (j > i)
			buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}

/* ------------------------------------------------------------ updates */

/* Remove from the client's view what the store no longer has, telling
 * the client: EXPUNGE per message (numbers as they shift), or one
 * VANISHED with QRESYNC. */
static void sync_expunges(struct imap_cmd *cmd, struct imap_selected *sel)
{
	struct store_mailbox *mb = sel->mb;
	uint32_t n = store_mailbox_count(mb), j = 0, kept = 0;
	uint32_t *gone = NULL;
	size_t ngone = 0;
	bool vanished = cmd->s->enabled.qresync;

	for (uint32_t i = 0; i < sel->count; i++) {
		uint32_t uid = sel->uids[i];

		while (j < n && store_mailbox_msg(mb, j + 1)->uid < uid)
			j++;
		if (j < n && store_mailbox_msg(mb, j + 1)->uid == uid) {
			sel->uids[kept++] = uid;
			continue;
		}
		if (vanished) {
			if (gone == NULL)
				gone = xcalloc(sel->count, sizeof(*gone));
			gone[ngone++] = uid;
		} else {
			buf_printf(&cmd->out, "* %u EXPUNGE\r\n", kept + 1);
		}
	}
	sel->count = kept;
	if (ngone > 0) {
		buf_append_str(&cmd->out, "* VANISHED ");
		buf_uid_set(&cmd->out, gone, ngone);
		buf_append_str(&cmd->out, "\r\n");
	}
	free(gone);
}

void imap__sync(struct imap_cmd *cmd, bool allow_expunge)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct store_error err = { 0 };

	if (sel == NULL)
		return;
	if (store_mailbox_sync(sel->mb, &err) < 0) {
		log_warn("mailbox sync failed: %s", err.msg);
		return;
	}
	struct store_mailbox *mb = sel->mb;
	uint32_t n = store_mailbox_count(mb);
	uint64_t highest = store_mailbox_highestmodseq(mb);

	if (highest == sel->reported_modseq && n == sel->count)
		return;
	uint32_t old_max = sel->count > 0 ? sel->uids[sel->count - 1] : 0;
	uint32_t last = n > 0 ? store_mailbox_msg(mb, n)->uid : 0;

	/* Without new UIDs, equal counts mean equal sets: nothing expunged. */
	if (allow_expunge && !(n == sel->count && last <= old_max))
		sync_expunges(cmd, sel);
	if (last > old_max) {
		uint32_t first_new = n;

		while (first_new > 0 && store_mailbox_msg(mb, first_new)->uid > old_max)
			first_new--;
		for (uint32_t j = first_new; j < n; j++)
			view_append(sel, store_mailbox_msg(mb, j + 1)->uid);
		buf_printf(&cmd->out, "* %u EXISTS\r\n", sel->count);
	}
	if (highest != sel->reported_modseq) {
		for (uint32_t j = 1; j <= n; j++) {
			const struct store_msg *m = store_mailbox_msg(mb, j);
			uint32_t seq;

			if (m->modseq <= sel->reported_modseq || m->uid > old_max)
				continue;
			if ((seq = imap__view_seq(sel, m->uid)) != 0)
				imap__untagged_flags(cmd, seq, m, false);
		}
		sel->reported_modseq = highest;
	}
}

/* ------------------------------------------------------ sequence sets */

int imap__seqset_uids(struct imap_cmd *cmd, const char *text, bool by_uid, uint32_t **uids_r,
		      size_t *count_r, const char **error_r)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct imap_seqset *set;
	uint32_t *out;
	size_t n = 0;

	if (text == NULL) {
		*error_r = "BAD Sequence set expected";
		return -1;
	}
	if (imap_seqset_parse(text, strlen(text), imap__set.max_sequence_ranges, true, cmd->a,
			      &set, error_r) < 0)
		return -1;
	if (set->last) {
		/* "$": the saved UIDs still in the view. */
		out = arena_alloc(cmd->a, (sel->saved_count + 1) * sizeof(*out));
		for (size_t i = 0; sel->saved_valid && i < sel->saved_count; i++)
			if (imap__view_seq(sel, sel->saved[i]) != 0)
				out[n++] = sel->saved[i];
		*uids_r = out;
		*count_r = n;
		return 0;
	}
	/* Mark the view's messages the set names, then list them in order. */
	unsigned char *mark = arena_alloc(cmd->a, sel->count + 1);
	uint32_t max_uid = sel->count > 0 ? sel->uids[sel->count - 1] : 0;

	for (unsigned r = 0; r < set->count; r++) {
		uint32_t lo = set->ranges[r].lo, hi = set->ranges[r].hi;

		if (by_uid) {
			if (lo == IMAP_SEQ_STAR)
				lo = max_uid;
			if (hi == IMAP_SEQ_STAR)
				hi = max_uid;
			if (lo > hi) {
				uint32_t t = lo;

				lo = hi;
				hi = t;
			}
			/* The first view index with a UID >= lo. */
			uint32_t a = 0, b = sel->count;

			while (a < b) {
				uint32_t mid = a + (b - a) / 2;

				if (sel->uids[mid] < lo)
					a = mid + 1;
				else
					b = mid;
			}
			for (uint32_t i = a; i < sel->count && sel->uids[i] <= hi; i++)
				mark[i] = 1;
			continue;
		}
		if (sel->count == 0 && (lo == IMAP_SEQ_STAR || hi == IMAP_SEQ_STAR))
			continue;
		if (lo == IMAP_SEQ_STAR)
			lo = sel->count;
		if (hi == IMAP_SEQ_STAR)
			hi = sel->count;
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (hi > sel->count) {
			*error_r = "BAD Invalid message sequence number";
			return -1;
		}
		memset(mark + lo - 1, 1, hi - lo + 1);
	}
	for (uint32_t i = 0; i < sel->count; i++)
		n += mark[i];
	out = arena_alloc(cmd->a, (n + 1) * sizeof(*out));
	n = 0;
	for (uint32_t i = 0; i < sel->count; i++)
		if (mark[i])
			out[n++] = sel->uids[i];
	*uids_r = out;
	*count_r = n;
	return 0;
}

/* ------------------------------------------------------ SELECT/EXAMINE */

struct qresync_args {
	uint32_t uidvalidity;
	uint64_t modseq;
	const char *known_uids;         /* NULL: all */
};

/* select-param: "(" CONDSTORE / QRESYNC (uidvalidity modseq
 * [known-uids [seq-match-data]]) ")". 0, or -1 with *error_r. */
static int select_params(struct imap_cmd *cmd, const struct imap_arg *list, bool *condstore_r,
			 struct qresync_args *q, bool *qresync_r, const char **error_r)
{
	*error_r = "BAD Invalid SELECT parameters";
	if (list->type != IMAP_ARG_LIST)
		return -1;
	for (const struct imap_arg *p = list->child; p != NULL; p = p->next) {
		if (p->type != IMAP_ARG_ATOM)
			return -1;
		if (strcasecmp(p->str, "CONDSTORE") == 0) {
			*condstore_r = true;
			continue;
		}
		if (strcasecmp(p->str, "QRESYNC") != 0)
			return -1;
		if (!cmd->s->enabled.qresync) {
			*error_r = "BAD QRESYNC needs ENABLE QRESYNC first";
			return -1;
		}
		const struct imap_arg *qa = p->next;

		if (qa == NULL || qa->type != IMAP_ARG_LIST || qa->count < 2 || qa->count > 4)
			return -1;
		const struct imap_arg *v = qa->child, *m = v->next, *k = m->next;

		if (v->type != IMAP_ARG_ATOM || !imap__parse_u32(v->str, false, &q->uidvalidity) ||
		    m->type != IMAP_ARG_ATOM || !imap__parse_u64(m->str, false, &q->modseq))
			return -1;
		if (k != NULL) {
			if (k->type != IMAP_ARG_ATOM)
				return -1;
			q->known_uids = k->str;
		}
		*qresync_r = true;
		p = qa;
	}
	return 0;
}

/* Is uid in the UID set text ("1:5,9")? (Parsed once by the caller.) */
static bool set_has(const struct imap_seqset *set, uint32_t uid)
{
	for (unsigned r = 0; r < set->count; r++) {
		uint32_t lo = set->ranges[r].lo, hi = set->ranges[r].hi;

		if (lo == IMAP_SEQ_STAR)
			lo = UINT32_MAX;
		if (hi == IMAP_SEQ_STAR)
			hi = UINT32_MAX;
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (uid >= lo && uid <= hi)
			return true;
	}
	return false;
}

/* RFC 7162 §3.2.5: what changed since the client's modseq. */
static void qresync_report(struct imap_cmd *cmd, struct imap_selected *sel,
			   const struct qresync_args *q)
{
	struct store_mailbox *mb = sel->mb;
	struct imap_seqset *known = NULL;
	const char *error;
	struct store_error err = { 0 };
	uint32_t *gone;
	size_t ngone;
	bool complete;

	if (q->uidvalidity != store_mailbox_uidvalidity(mb))
		return;
	if (q->known_uids != NULL &&
	    imap_seqset_parse(q->known_uids, strlen(q->known_uids), imap__set.max_sequence_ranges,
			      false, cmd->a, &known, &error) < 0)
		known = NULL;
	if (store_mailbox_expunged_since(mb, q->modseq, cmd->a, &gone, &ngone, &complete, &err) < 0) {
		log_warn("QRESYNC: %s", err.msg);
		ngone = 0;
		complete = true;
	}
	if (!complete && known != NULL) {
		/* History is incomplete: every known UID not here vanished. */
		uint32_t uidnext = store_mailbox_uidnext(mb);
		size_t cap = 0;

		for (unsigned r = 0; r < known->count; r++) {
			uint32_t lo = known->ranges[r].lo, hi = known->ranges[r].hi;

			if (lo == IMAP_SEQ_STAR || lo >= uidnext)
				lo = uidnext - 1;
			if (hi == IMAP_SEQ_STAR || hi >= uidnext)
				hi = uidnext - 1;
			cap += (size_t)(hi > lo ? hi - lo : lo - hi) + 1;
		}
		if (cap <= 10 * 1000 * 1000) {
			gone = arena_alloc(cmd->a, (cap + 1) * sizeof(*gone));
			ngone = 0;
			for (uint32_t uid = 1; uid < uidnext; uid++)
				if (set_has(known, uid) && store_mailbox_seq(mb, uid) == 0)
					gone[ngone++] = uid;
		}
	}
	size_t w = 0;

	/* The expunged list is read after the view: a UID expunged since
	 * the view was taken is still counted by this SELECT and is told as
	 * an expunge at the next sync, not here. */
	for (size_t i = 0; i < ngone; i++)
		if ((known == NULL || set_has(known, gone[i])) && store_mailbox_seq(mb, gone[i]) == 0)
			gone[w++] = gone[i];
	if (w > 0) {
		buf_append_str(&cmd->out, "* VANISHED (EARLIER) ");
		buf_uid_set(&cmd->out, gone, w);
		buf_append_str(&cmd->out, "\r\n");
	}
	for (uint32_t j = 1; j <= store_mailbox_count(mb); j++) {
		const struct store_msg *m = store_mailbox_msg(mb, j);

		if (m->modseq > q->modseq && (known == NULL || set_has(known, m->uid)))
			imap__untagged_flags(cmd, j, m, true);
	}
}

void imap__cmd_select(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_mail *mail = &s->mail;
	bool readonly = strcmp(cmd->name, "EXAMINE") == 0;
	bool condstore = false, qresync = false;
	struct qresync_args q = { 0 };
	struct store_error err = { 0 };
	const char *name, *error;
	struct buf *out = &cmd->out;

	if (cmd->argc < 1 || cmd->argc > 2 ||
	    (cmd->argc == 2 && select_params(cmd, cmd->args->next, &condstore, &q, &qresync,
					     &error) < 0)) {
		imap__tagged_error(cmd, cmd->argc < 1 || cmd->argc > 2 ?
				   "BAD SELECT takes a mailbox name and parameters" : error);
		return;
	}
	if ((name = imap__mailbox_in(cmd->args, &s->enabled, cmd->a, &error)) == NULL) {
		imap__tagged_error(cmd, error);
		return;
	}
	/* The old mailbox closes first, whatever happens (RFC 9051 §6.3.2).
	 * The same one again keeps its view, brought up to date below, rather
	 * than reading it anew (100,000 messages: ~0.3 ms against ~7 ms). */
	struct store_mailbox *same = NULL;

	if (mail->sel != NULL) {
		if (strcmp(mail->sel->name, name) == 0) {
			same = mail->sel->mb;
			mail->sel->mb = NULL;
		}
		imap__selected_free(&mail->sel);
		if (s->enabled.qresync || s->enabled.rev2)
			imap__untagged(cmd, "OK [CLOSED] Previous mailbox closed");
	}
	cmd->set_state = true;
	cmd->next_state = IMAP_STATE_AUTH;
	struct imap_selected *sel = xcalloc(1, sizeof(*sel));

	sel->mb = same;
	if (same != NULL ? store_mailbox_reopen(same, &err) < 0 :
	    store_mailbox_open(mail->store, name, &sel->mb, &err) < 0) {
		store_mailbox_close(&sel->mb);
		free(sel);
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	mail->catch_up_due = store_user_pending(mail->store) == 1;
	if (condstore)
		s->enabled.condstore = true;
	sel->name = xstrdup(name);
	sel->readonly = readonly;
	struct store_mailbox *mb = sel->mb;
	uint32_t n = store_mailbox_count(mb), unseen = 0;

	sel->cap = n > 0 ? n : 16;
	sel->uids = xcalloc(sel->cap, sizeof(*sel->uids));
	for (uint32_t j = 1; j <= n; j++) {
		const struct store_msg *m = store_mailbox_msg(mb, j);

		sel->uids[j - 1] = m->uid;
		if (unseen == 0 && (m->flags & STORE_FLAG_SEEN) == 0)
			unseen = j;
	}
	sel->count = n;
	sel->reported_modseq = store_mailbox_highestmodseq(mb);
	mail->sel = sel;

	buf_printf(out, "* %u EXISTS\r\n", n);
	if (!s->enabled.rev2) {
		buf_append_str(out, "* 0 RECENT\r\n");
		if (unseen != 0)
			buf_printf(out, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	}
	buf_append_str(out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned k = 0; store_mailbox_keyword(mb, k) != NULL; k++)
		buf_printf(out, " %s", store_mailbox_keyword(mb, k));
	buf_append_str(out, ")\r\n* OK [PERMANENTFLAGS (");
	if (!readonly) {
		buf_append_str(out, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
		for (unsigned k = 0; store_mailbox_keyword(mb, k) != NULL; k++)
			buf_printf(out, " %s", store_mailbox_keyword(mb, k));
		buf_append_str(out, " \\*");
	}
	buf_append_str(out, ")] Flags permitted\r\n");
	buf_printf(out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", store_mailbox_uidvalidity(mb));
	buf_printf(out, "* OK [UIDNEXT %u] Predicted next UID\r\n", store_mailbox_uidnext(mb));
	buf_printf(out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		   (unsigned long long)store_mailbox_highestmodseq(mb));
	/* RFC 8474 §4.2. A mailbox whose id cannot be had (disk full while
	 * making it) is still selected, without it. */
	const char *mailboxid = store_mailbox_id(mb, &err);

	if (mailboxid != NULL)
		buf_printf(out, "* OK [MAILBOXID (%s)] Ok\r\n", mailboxid);
	else
		log_warn("%s %s: no MAILBOXID: %s", cmd->name, name, err.msg);
	if (s->enabled.rev2) {
		buf_append_str(out, "* LIST () \"/\" ");
		imap__buf_mailbox(out, name, &s->enabled);
		buf_append_str(out, "\r\n");
	}
	if (qresync)
		qresync_report(cmd, sel, &q);
	cmd->next_state = IMAP_STATE_SELECTED;
	imap__tagged(cmd, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		     cmd->name);
}

/* ------------------------------------------------------- CLOSE, CHECK */

void imap__cmd_close(struct imap_cmd *cmd)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct store_error err = { 0 };

	if (cmd->argc != 0) {
		imap__tagged(cmd, "BAD", "%s takes no arguments", cmd->name);
		return;
	}
	/* CLOSE expunges \Deleted messages silently (RFC 9051 §6.4.1). */
	if (strcmp(cmd->name, "CLOSE") == 0 && !sel->readonly &&
	    store_mailbox_sync(sel->mb, &err) == 0) {
		uint32_t n = store_mailbox_count(sel->mb);
		uint32_t *uids = arena_alloc(cmd->a, (n + 1) * sizeof(*uids));
		size_t k = 0;

		for (uint32_t j = 1; j <= n; j++)
			if (store_mailbox_msg(sel->mb, j)->flags & STORE_FLAG_DELETED)
				uids[k++] = store_mailbox_msg(sel->mb, j)->uid;
		if (k > 0 && store_mailbox_expunge(sel->mb, uids, k, &err) < 0)
			log_warn("CLOSE: expunge failed: %s", err.msg);
	}
	imap__selected_free(&cmd->s->mail.sel);
	cmd->set_state = true;
	cmd->next_state = IMAP_STATE_AUTH;
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

void imap__cmd_check(struct imap_cmd *cmd)
{
	if (cmd->argc != 0) {
		imap__tagged(cmd, "BAD", "%s takes no arguments", cmd->name);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/* ---------------------------------------------------------------- IDLE */

/*
 * Most sessions of a busy server sit in IDLE, so an idling session keeps
 * no store open: after each look at the mailbox its index connection and
 * mailbox view are closed (SQLite costs tens of KiB per connection), and
 * the client's view (uids, reported_modseq) is all that stays. A change
 * notification or DONE opens them again; the sync then compares the
 * client's view with the mailbox as it is, as after any other command.
 */

/* Open what IDLE released (job side). */
static int mail_reopen(struct imap_mail *m, struct store_error *err)
{
	const struct store_user_options opt = { .create = false, .quota = &m->quota };

	if (m->store == NULL)
		m->store = store_cache_take(m->user_dir, &m->quota);
	if (m->store == NULL && store_user_open(m->user_dir, &opt, &m->store, err) < 0)
		return -1;
	if (m->sel != NULL && m->sel->mb == NULL &&
	    store_mailbox_open(m->store, m->sel->name, &m->sel->mb, err) < 0)
		return -1;
	return 0;
}

static void mail_release(struct imap_mail *m)
{
	if (m->sel != NULL)
		store_mailbox_close(&m->sel->mb);
	store_user_close(&m->store);
}

static void idle_sync_work(struct imap_cmd *cmd)
{
	struct imap_mail *m = &cmd->s->mail;
	struct store_error err = { 0 };

	if (mail_reopen(m, &err) < 0) {
		log_warn("IDLE: cannot open the mailbox: %s", err.msg);
		return;
	}
	imap__sync(cmd, true);
	mail_release(m);
}

/* DONE: the store opens again before the tagged reply. */
static void idle_end_work(struct imap_cmd *cmd)
{
	struct imap_mail *m = &cmd->s->mail;
	struct store_error err = { 0 };

	cmd->priv = NULL;
	if (mail_reopen(m, &err) < 0) {
		log_error("IDLE: cannot open the mailbox again: %s", err.msg);
		cmd->priv = cmd;        /* failed */
		return;
	}
	imap__sync(cmd, true);
}

static void idle_end_done(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	if (cmd->priv != NULL) {
		conn_printf(s->conn, "* BYE [UNAVAILABLE] Cannot open the mailbox (%s)\r\n",
			    conn_session_id(s->conn));
		conn_close(s->conn, "mailbox unavailable after IDLE");
		s->state = IMAP_STATE_LOGOUT;
	} else if (s->idle_done_ok) {
		conn_printf(s->conn, "%s OK Idle completed\r\n", cmd->tag);
	}
	imap__cmd_end(cmd);
}

/* IDLE is over (DONE, or a bad line): reply once the store is back. */
static void idle_finish(struct imap_session *s, bool done)
{
	struct imap_cmd *cmd = s->cmd;

	if (!done) {
		imap__bad(s, cmd->tag, "Expected DONE");
		if (s->state == IMAP_STATE_LOGOUT) {
			imap__cmd_end(cmd);
			return;
		}
	}
	if (s->mail.store != NULL) {
		if (done)
			conn_printf(s->conn, "%s OK Idle completed\r\n", cmd->tag);
		imap__cmd_end(cmd);
		return;
	}
	/* After a BAD, idle_end_done sends no second tagged reply. */
	s->idle_done_ok = done;
	imap__cmd_queue_step(cmd, idle_end_work, idle_end_done);
}

static void idle_sync_start(struct imap_session *s);

static void idle_sync_done(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	if (!s->idling) {
		/* DONE came while the job ran. */
		idle_finish(s, s->idle_done_ok);
		return;
	}
	if (s->idle_sync_pending)
		idle_sync_start(s);
}

static void idle_sync_start(struct imap_session *s)
{
	s->idle_sync_pending = false;
	if (s->mail.sel == NULL || s->cmd == NULL)
		return;
	imap__cmd_queue_step(s->cmd, idle_sync_work, idle_sync_done);
}

static void idle_changed(void *data)
{
	struct imap_session *s = data;

	if (!s->idling)
		return;
	if (s->job_running) {
		s->idle_sync_pending = true;
		return;
	}
	idle_sync_start(s);
}

void imap__idle_stop(struct imap_session *s)
{
	store_watch_stop(&s->watch);
	s->idling = false;
}

void imap__cmd_idle(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct store_error err = { 0 };

	if (cmd->argc != 0) {
		imap__bad(s, cmd->tag, "IDLE takes no arguments");
		imap__cmd_end(cmd);
		return;
	}
	s->idling = true;
	conn_write_str(s->conn, "+ idling\r\n");
	if (s->mail.sel == NULL)
		return;
	if (store_watch_start(imap__loop, s->mail.store, s->mail.sel->name, idle_changed, s,
			      &s->watch, &err) < 0)
		log_warn("IDLE: cannot watch the mailbox: %s", err.msg);
	/* What changed between the last command and the watch. */
	idle_sync_start(s);
}

void imap__idle_input(struct imap_session *s, const char *line, size_t len)
{
	bool done = line != NULL && strcasecmp(line, "DONE") == 0;

	imap__idle_stop(s);
	s->idle_sync_pending = false;
	s->idle_done_ok = done;
	if (s->job_running)
		return; /* idle_sync_done finishes */
	idle_finish(s, done);
}
