/*
 * message.c — changing the messages of the selected mailbox: STORE (with
 * CONDSTORE's UNCHANGEDSINCE, RFC 7162 §3.1.3), COPY and MOVE (RFC 9051
 * §6.4.7, RFC 6851) with UIDPLUS's COPYUID (RFC 4315), EXPUNGE and UID
 * EXPUNGE, in their sequence-number and UID forms.
 *
 * STORE and imap__sync. imap__sync reports every flag change with a
 * modseq above sel->reported_modseq, whoever made it, so a STORE must not
 * leave its own changes there to be told twice. It syncs first (the
 * client learns of other changes and new messages, and reported_modseq
 * catches up), makes the change, answers for the messages it changed
 * itself, and then moves reported_modseq to the new highest modseq only
 * when nothing else changed meanwhile: the same messages in the store,
 * and every modseq above the old mark belonging to a message just
 * answered for. Otherwise the mark stays and the next sync reports those
 * messages once more, which is redundant but never wrong.
 *
 * MOVE and EXPUNGE change the store first and let imap__sync(cmd, true)
 * tell the client: the messages gone from the store leave its view with
 * EXPUNGE (or VANISHED with QRESYNC), numbered as they shift.
 */
#include "imapd-private.h"

#include <string.h>
#include <strings.h>

/* A sorted number list as a compact sequence set ("3:5,9") into out. */
static void buf_num_set(struct buf *out, const uint32_t *nums, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && nums[j + 1] == nums[j] + 1)
			j++;
		if (i > 0)
			buf_append(out, ",", 1);
		if (j > i)
			buf_printf(out, "%u:%u", nums[i], nums[j]);
		else
			buf_printf(out, "%u", nums[i]);
		i = j + 1;
	}
}

/* The sequence set argument: an atom, else NULL (imap__seqset_uids then
 * answers "BAD Sequence set expected"). */
static const char *set_arg(const struct imap_arg *arg)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM ? arg->str : NULL;
}

/* The message of uid in the store's view, or NULL when it is gone. */
static const struct store_msg *store_msg_by_uid(struct store_mailbox *mb, uint32_t uid)
{
	uint32_t seq = store_mailbox_seq(mb, uid);

	return seq != 0 ? store_mailbox_msg(mb, seq) : NULL;
}

/* --------------------------------------------------------------- STORE */

enum target_status {
	TARGET_PASS,            /* handed to the store */
	TARGET_EXPUNGED,        /* in the client's view, gone from the store */
	TARGET_MODIFIED,        /* failed UNCHANGEDSINCE */
};

enum target_report {
	REPORT_NONE,
	REPORT_FLAGS,           /* * n FETCH (FLAGS ...) */
	REPORT_MODSEQ,          /* * n FETCH ([UID u] MODSEQ (m)): .SILENT with CONDSTORE */
};

struct store_target {
	uint32_t uid;
	uint32_t pre_flags;     /* as the client knew them when the command began */
	uint64_t pre_keywords;
	uint8_t status;         /* enum target_status */
	uint8_t report;         /* enum target_report */
};

/* STORE between its chunks of output. */
struct store_job {
	struct store_target *t;
	size_t count, next;
	const char *tagged_status, *tagged_text;
	bool advance;           /* move reported_modseq to new_modseq at the end */
	uint64_t new_modseq;
};

struct store_args {
	bool unchanged;         /* UNCHANGEDSINCE given */
	uint64_t unchanged_since;
	enum store_flag_op op;
	bool silent;
	uint32_t flags;
	const char **keywords;
	size_t keyword_count;
};

/* store-modifiers: "(" UNCHANGEDSINCE mod-sequence-valzer ")" (RFC 7162
 * §3.1.3; at most one). */
static int store_modifiers(const struct imap_arg *list, struct store_args *sa,
			   const char **error_r)
{
	for (const struct imap_arg *p = list->child; p != NULL; p = p->next) {
		const struct imap_arg *v = p->next;

		if (p->type != IMAP_ARG_ATOM || strcasecmp(p->str, "UNCHANGEDSINCE") != 0) {
			*error_r = "BAD Unknown STORE modifier";
			return -1;
		}
		if (sa->unchanged || v == NULL || v->type != IMAP_ARG_ATOM ||
		    !imap__parse_u64(v->str, true, &sa->unchanged_since) ||
		    sa->unchanged_since > INT64_MAX) {
			*error_r = "BAD Invalid UNCHANGEDSINCE modifier";
			return -1;
		}
		sa->unchanged = true;
		p = v;
	}
	return 0;
}

/* store-att-flags: (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list /
 * (flag *(SP flag))), from args[first] on. */
static int store_parse(struct imap_cmd *cmd, struct store_args *sa, const char **error_r)
{
	const struct imap_arg *a = cmd->args != NULL ? cmd->args->next : NULL;

	*error_r = "BAD STORE takes a set, a data item and flags";
	if (a != NULL && a->type == IMAP_ARG_LIST) {
		if (store_modifiers(a, sa, error_r) < 0)
			return -1;
		a = a->next;
	}
	if (a == NULL || a->type != IMAP_ARG_ATOM || a->next == NULL)
		return -1;
	const char *item = a->str;

	sa->op = STORE_FLAGS_SET;
	if (*item == '+' || *item == '-')
		sa->op = *item++ == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
	if (strcasecmp(item, "FLAGS.SILENT") == 0) {
		sa->silent = true;
	} else if (strcasecmp(item, "FLAGS") != 0) {
		*error_r = "BAD Invalid STORE data item";
		return -1;
	}
	a = a->next;
	if (a->next == NULL)
		return imap__parse_flags(a, cmd->a, &sa->flags, &sa->keywords,
					 &sa->keyword_count, error_r);
	/* Several flag atoms: each parsed alone, merged without repeats. */
	size_t cap = 0;

	for (const struct imap_arg *f = a; f != NULL; f = f->next)
		cap++;
	sa->keywords = arena_alloc(cmd->a, (cap + 1) * sizeof(*sa->keywords));
	for (; a != NULL; a = a->next) {
		uint32_t flags;
		const char **kw;
		size_t nkw;

		if (a->type == IMAP_ARG_LIST) {
			*error_r = "BAD Flags are atoms";
			return -1;
		}
		if (imap__parse_flags(a, cmd->a, &flags, &kw, &nkw, error_r) < 0)
			return -1;
		sa->flags |= flags;
		for (size_t i = 0; i < nkw; i++) {
			size_t k = 0;

			while (k < sa->keyword_count && strcasecmp(sa->keywords[k], kw[i]) != 0)
				k++;
			if (k == sa->keyword_count)
				sa->keywords[sa->keyword_count++] = kw[i];
		}
	}
	return 0;
}

/* The keyword bits of the STORE's keywords in the folder's list now. */
static uint64_t keyword_mask(struct store_mailbox *mb, const struct store_args *sa)
{
	uint64_t mask = 0;

	for (size_t i = 0; i < sa->keyword_count; i++) {
		for (unsigned k = 0; k < 64 && store_mailbox_keyword(mb, k) != NULL; k++) {
			if (strcasecmp(store_mailbox_keyword(mb, k), sa->keywords[i]) == 0) {
				mask |= (uint64_t)1 << k;
				break;
			}
		}
	}
	return mask;
}

/* Did m end up as the STORE alone would have left the target? If not,
 * someone else changed it too and the client must be told its flags. */
static bool store_as_expected(const struct store_target *t, const struct store_msg *m,
			      const struct store_args *sa, uint64_t kwmask)
{
	uint32_t f = t->pre_flags & ~(uint32_t)STORE_FLAG_PASSED, want = sa->flags;
	uint64_t k = t->pre_keywords;

	switch (sa->op) {
	case STORE_FLAGS_SET:
		f = want;
		k = kwmask;
		break;
	case STORE_FLAGS_ADD:
		f |= want;
		k |= kwmask;
		break;
	case STORE_FLAGS_REMOVE:
		f &= ~want;
		k &= ~kwmask;
		break;
	}
	return (m->flags & ~(uint32_t)STORE_FLAG_PASSED) == f && m->keywords == k;
}

/* The untagged FETCH responses, a chunk at a time, then the tagged reply. */
static void store_output(struct imap_cmd *cmd, struct store_job *j)
{
	struct imap_selected *sel = cmd->s->mail.sel;

	for (; j->next < j->count; j->next++) {
		const struct store_target *t = &j->t[j->next];
		const struct store_msg *m;

		if (cmd->out.len >= IMAP_CHUNK) {
			cmd->more = true;
			return;
		}
		if (t->report == REPORT_NONE || (m = store_msg_by_uid(sel->mb, t->uid)) == NULL)
			continue;
		uint32_t seq = imap__view_seq(sel, t->uid);

		if (t->report == REPORT_FLAGS) {
			imap__untagged_flags(cmd, seq, m, cmd->uid);
			continue;
		}
		buf_printf(&cmd->out, "* %u FETCH (", seq);
		if (cmd->uid || cmd->s->enabled.qresync)
			buf_printf(&cmd->out, "UID %u ", t->uid);
		buf_printf(&cmd->out, "MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
	}
	if (j->advance)
		sel->reported_modseq = j->new_modseq;
	imap__tagged(cmd, j->tagged_status, "%s", j->tagged_text);
}

/*
 * After the change: what each target reports, and whether the client now
 * knows every change up to the store's highest modseq (see the top). h0
 * is reported_modseq after the first sync; n0 and last0 the store's count
 * and last UID then.
 */
static void store_settle(struct imap_cmd *cmd, struct store_job *j, const struct store_args *sa,
			 uint64_t h0, uint32_t n0, uint32_t last0, size_t failed)
{
	struct store_mailbox *mb = cmd->s->mail.sel->mb;
	uint64_t kwmask = keyword_mask(mb, sa);
	bool condstore = cmd->s->enabled.condstore;

	for (size_t i = 0; i < j->count; i++) {
		struct store_target *t = &j->t[i];
		const struct store_msg *m;

		if (t->status != TARGET_PASS || (m = store_msg_by_uid(mb, t->uid)) == NULL)
			continue;
		bool expected = store_as_expected(t, m, sa, kwmask);

		/* The store refused some that changed after our sync (it
		 * counts them only): those not as this STORE would leave
		 * them are the ones. */
		if (failed > 0 && !expected && m->modseq > sa->unchanged_since) {
			t->status = TARGET_MODIFIED;
			t->report = m->modseq > h0 ? REPORT_FLAGS : REPORT_NONE;
			continue;
		}
		if (m->modseq <= h0)
			continue;       /* unchanged: its flags were already so */
		if (!sa->silent || !expected)
			t->report = REPORT_FLAGS;
		else if (condstore)
			t->report = REPORT_MODSEQ;
	}
	/* Nothing else changed: same messages, and every modseq above h0
	 * is one of the targets answered for (UIDs ascend in both lists). */
	uint32_t n = store_mailbox_count(mb);
	bool clean = n == n0 && (n == 0 || store_mailbox_msg(mb, n)->uid == last0);
	size_t ti = 0;

	for (uint32_t s = 1; clean && s <= n; s++) {
		const struct store_msg *m = store_mailbox_msg(mb, s);

		if (m->modseq <= h0)
			continue;
		while (ti < j->count && j->t[ti].uid < m->uid)
			ti++;
		clean = ti < j->count && j->t[ti].uid == m->uid && j->t[ti].status == TARGET_PASS;
	}
	j->advance = clean;
	j->new_modseq = store_mailbox_highestmodseq(mb);
}

/* MODIFIED's set: sequence numbers, or UIDs for UID STORE. */
static const char *store_modified_text(struct imap_cmd *cmd, const struct store_job *j)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	uint32_t *nums = arena_alloc(cmd->a, (j->count + 1) * sizeof(*nums));
	size_t n = 0;
	struct buf text;

	for (size_t i = 0; i < j->count; i++)
		if (j->t[i].status == TARGET_MODIFIED)
			nums[n++] = cmd->uid ? j->t[i].uid : imap__view_seq(sel, j->t[i].uid);
	if (n == 0)
		return NULL;
	buf_init(&text, IMAP_OUT_MAX);
	buf_append_str(&text, "[MODIFIED ");
	buf_num_set(&text, nums, n);
	buf_append_str(&text, "] Conditional store failed");
	char *s = arena_strndup(cmd->a, (const char *)text.data, text.len);

	buf_release(&text);
	return s;
}

void imap__cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_selected *sel = s->mail.sel;
	struct store_args sa = { 0 };
	struct store_error err = { 0 };
	const char *error;
	uint32_t *uids;
	size_t count;

	if (cmd->priv != NULL) {
		store_output(cmd, cmd->priv);
		return;
	}
	if (store_parse(cmd, &sa, &error) < 0) {
		imap__tagged_error(cmd, error);
		return;
	}
	/* A CONDSTORE enabling command (RFC 7162 §3.1): MODSEQ from now on. */
	if (sa.unchanged)
		s->enabled.condstore = true;
	/* Expunges may be told now only for UID STORE (RFC 9051 §7.5.1). */
	imap__sync(cmd, cmd->uid);
	if (sel->readonly) {
		imap__tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap__seqset_uids(cmd, set_arg(cmd->args), cmd->uid, &uids, &count, &error) < 0) {
		imap__tagged_error(cmd, error);
		return;
	}
	struct store_mailbox *mb = sel->mb;
	struct store_job *j = arena_alloc(cmd->a, sizeof(*j));
	uint32_t *pass = arena_alloc(cmd->a, (count + 1) * sizeof(*pass));
	size_t npass = 0;
	bool expunged = false;

	j->t = arena_alloc(cmd->a, (count + 1) * sizeof(*j->t));
	j->count = count;
	for (size_t i = 0; i < count; i++) {
		struct store_target *t = &j->t[i];
		const struct store_msg *m = store_msg_by_uid(mb, uids[i]);

		t->uid = uids[i];
		if (m == NULL) {
			/* Expunged elsewhere, still in the client's view. */
			t->status = TARGET_EXPUNGED;
			expunged = true;
		} else if (sa.unchanged && m->modseq > sa.unchanged_since) {
			/* UNCHANGEDSINCE 0 fails for every message, as every
			 * modseq is at least 1 (RFC 7162 §3.1.3). */
			t->status = TARGET_MODIFIED;
		} else {
			t->status = TARGET_PASS;
			t->pre_flags = m->flags;
			t->pre_keywords = m->keywords;
			pass[npass++] = uids[i];
		}
	}
	uint64_t h0 = sel->reported_modseq;
	uint32_t n0 = store_mailbox_count(mb);
	uint32_t last0 = n0 > 0 ? store_mailbox_msg(mb, n0)->uid : 0;
	size_t failed = 0;

	/* The store checks UNCHANGEDSINCE again under its lock: a change
	 * made since our sync is never overwritten. (0 there would mean
	 * unconditional, but with UNCHANGEDSINCE 0 nothing passes.) */
	if (npass > 0 &&
	    store_mailbox_set_flags(mb, pass, npass, sa.op, sa.flags, sa.keywords,
				    sa.keyword_count, sa.unchanged ? sa.unchanged_since : 0,
				    &failed, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	store_settle(cmd, j, &sa, h0, n0, last0, failed);
	const char *modified = store_modified_text(cmd, j);

	if (modified != NULL) {
		j->tagged_status = "OK";
		j->tagged_text = modified;
	} else if (expunged) {
		/* The rest were stored (RFC 9051 §7.1, EXPUNGEISSUED). */
		j->tagged_status = "NO";
		j->tagged_text = "[EXPUNGEISSUED] Some of the requested messages no longer exist";
	} else {
		j->tagged_status = "OK";
		j->tagged_text = "Store completed";
	}
	cmd->priv = j;
	store_output(cmd, j);
}

/* ---------------------------------------------------------- COPY, MOVE */

void imap__cmd_copy(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_selected *sel = s->mail.sel;
	bool move = strcmp(cmd->name, "MOVE") == 0;
	struct store_error err = { 0 };
	const char *dest, *error;
	uint32_t *uids, *dest_uids, uidvalidity = 0;
	size_t count;

	if (cmd->argc != 2) {
		imap__tagged(cmd, "BAD", "%s takes a set and a mailbox name", cmd->name);
		return;
	}
	if ((dest = imap__mailbox_in(cmd->args->next, &s->enabled, cmd->a, &error)) == NULL) {
		imap__tagged_error(cmd, error);
		return;
	}
	if (move && sel->readonly) {
		imap__tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	/* UID forms drop what is gone first, so only present UIDs are
	 * named. Sequence numbers keep their meaning until the copy is done
	 * (their expunges are told afterwards), but the store's view is
	 * brought up to date either way to find messages gone meanwhile. */
	imap__sync(cmd, cmd->uid);
	if (imap__seqset_uids(cmd, set_arg(cmd->args), cmd->uid, &uids, &count, &error) < 0) {
		imap__tagged_error(cmd, error);
		return;
	}
	/* As Dovecot: a message expunged elsewhere fails the whole copy. */
	for (size_t i = 0; i < count; i++) {
		if (store_mailbox_seq(sel->mb, uids[i]) == 0) {
			imap__sync(cmd, true);
			imap__tagged(cmd, "NO", "[EXPUNGEISSUED] Some of the requested messages"
				     " no longer exist");
			return;
		}
	}
	if (count == 0) {
		imap__sync(cmd, true);
		imap__tagged(cmd, "OK", "No messages found");
		return;
	}
	dest_uids = arena_alloc(cmd->a, count * sizeof(*dest_uids));
	if (store_mailbox_copy(sel->mb, uids, count, dest, move, &uidvalidity, dest_uids,
			       &err) < 0) {
		imap__tagged_store_error(cmd, &err, true);
		return;
	}
	/* COPYUID pairs the two sets in order (RFC 4315 §3); a message that
	 * vanished during the copy has no pair. */
	uint32_t *src = arena_alloc(cmd->a, count * sizeof(*src));
	size_t n = 0;
	struct buf code;

	for (size_t i = 0; i < count; i++) {
		if (dest_uids[i] != 0) {
			src[n] = uids[i];
			dest_uids[n++] = dest_uids[i];
		}
	}
	buf_init(&code, IMAP_OUT_MAX);
	if (n > 0) {
		buf_printf(&code, "[COPYUID %u ", uidvalidity);
		buf_num_set(&code, src, n);
		buf_append(&code, " ", 1);
		buf_num_set(&code, dest_uids, n);
		buf_append_str(&code, "] ");
	}
	if (move) {
		/* RFC 6851 §4.3: COPYUID in an untagged OK before the expunges. */
		if (n > 0)
			imap__untagged(cmd, "OK %.*sMoved UIDs", (int)code.len,
				       (const char *)code.data);
		imap__sync(cmd, true);
		imap__tagged(cmd, "OK", "Move completed");
	} else {
		imap__sync(cmd, true);
		imap__tagged(cmd, "OK", "%.*sCopy completed", (int)code.len,
			     (const char *)code.data);
	}
	buf_release(&code);
}

/* ------------------------------------------------------------- EXPUNGE */

void imap__cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct store_error err = { 0 };
	const char *error;
	uint32_t *uids, *del;
	size_t count, k = 0;

	if (cmd->argc != (cmd->uid ? 1u : 0u)) {
		imap__tagged(cmd, "BAD", cmd->uid ? "UID EXPUNGE takes a UID set" :
			     "EXPUNGE takes no arguments");
		return;
	}
	imap__sync(cmd, true);
	if (sel->readonly) {
		imap__tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	/* After the sync the client's view is the store's. */
	if (cmd->uid) {
		if (imap__seqset_uids(cmd, set_arg(cmd->args), true, &uids, &count, &error) < 0) {
			imap__tagged_error(cmd, error);
			return;
		}
	} else {
		uids = sel->uids;
		count = sel->count;
	}
	del = arena_alloc(cmd->a, (count + 1) * sizeof(*del));
	for (size_t i = 0; i < count; i++) {
		const struct store_msg *m = store_msg_by_uid(sel->mb, uids[i]);

		if (m != NULL && (m->flags & STORE_FLAG_DELETED))
			del[k++] = uids[i];
	}
	if (k > 0 && store_mailbox_expunge(sel->mb, del, k, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "Expunge completed");
}
