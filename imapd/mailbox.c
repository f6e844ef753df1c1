/*
 * mailbox.c — commands on mailboxes as a whole: CREATE (with
 * CREATE-SPECIAL-USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * LIST (LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154, LIST-STATUS RFC
 * 5819) and LSUB, STATUS (STATUS=SIZE RFC 8438, CONDSTORE RFC 7162,
 * APPENDLIMIT RFC 7889, MAILBOXID RFC 8474), NAMESPACE (RFC 2342) and
 * QUOTA (RFC 9208). CREATE answers with the new MAILBOXID (RFC 8474).
 *
 * Names. One personal namespace with the prefix "" and the separator
 * "/". Names travel in modified UTF-7 until the client enables UTF-8
 * (imap__mailbox_in, imap__buf_mailbox); the store speaks UTF-8.
 *
 * Hierarchy. The store keeps Maildir++ folders, where "Archive/2024" may
 * exist without "Archive" (CREATE makes no parents, as Dovecot's Maildir++
 * layout does not). LIST shows such a missing parent as \Noselect, or
 * \NonExistent to clients using LIST-EXTENDED or IMAP4rev2, with
 * \HasChildren, for every pattern that matches it (Dovecot does the same).
 *
 * The selected mailbox. DELETE of it closes it first and the session is
 * back in the authenticated state (as Dovecot does); RENAME of it (or of
 * a parent) keeps it selected under its new name.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* LIST output per job run. Below IMAP_CHUNK: a connection takes at most
 * 4 x [service] output_buffer_size queued (256 KiB by default) before it
 * is closed as not reading, so one chunk must stay well under that. */
#define LIST_CHUNK (IMAP_CHUNK < 32 * 1024 ? IMAP_CHUNK : 32 * 1024)

static const struct {
	uint32_t use;
	const char *name;
} special_uses[] = {
	{ STORE_USE_ALL, "\\All" },
	{ STORE_USE_ARCHIVE, "\\Archive" },
	{ STORE_USE_DRAFTS, "\\Drafts" },
	{ STORE_USE_FLAGGED, "\\Flagged" },
	{ STORE_USE_JUNK, "\\Junk" },
	{ STORE_USE_SENT, "\\Sent" },
	{ STORE_USE_TRASH, "\\Trash" },
};

/* A mailbox argument in the store's UTF-8, or NULL after the error reply. */
static const char *mailbox_arg(struct imap_cmd *cmd, const struct imap_arg *arg)
{
	const char *name, *error;

	if ((name = imap__mailbox_in(arg, &cmd->s->enabled, cmd->a, &error)) == NULL)
		imap__tagged_error(cmd, error);
	return name;
}

/* ----------------------------------------------------------- CREATE */

/* create-param list: "(USE (\Sent ...))" (RFC 6154 §3). 0, or -1 after
 * the error reply. */
static int create_params(struct imap_cmd *cmd, const struct imap_arg *list, uint32_t *use_r)
{
	if (list->type != IMAP_ARG_LIST) {
		imap__tagged(cmd, "BAD", "CREATE parameters must be a list");
		return -1;
	}
	for (const struct imap_arg *p = list->child; p != NULL; p = p->next) {
		if (p->type != IMAP_ARG_ATOM || strcasecmp(p->str, "USE") != 0 ||
		    p->next == NULL || p->next->type != IMAP_ARG_LIST) {
			imap__tagged(cmd, "BAD", "Unknown CREATE parameter");
			return -1;
		}
		p = p->next;
		for (const struct imap_arg *u = p->child; u != NULL; u = u->next) {
			size_t i;

			if (u->type != IMAP_ARG_ATOM) {
				imap__tagged(cmd, "BAD", "Special-use attributes are atoms");
				return -1;
			}
			for (i = 0; i < N_ELEMENTS(special_uses); i++)
				if (strcasecmp(u->str, special_uses[i].name) == 0)
					break;
			if (i == N_ELEMENTS(special_uses)) {
				imap__tagged(cmd, "NO",
					     "[USEATTR] Unsupported special-use attribute");
				return -1;
			}
			*use_r |= special_uses[i].use;
		}
	}
	return 0;
}

void imap__cmd_create(struct imap_cmd *cmd)
{
	const struct imap_arg *arg = cmd->args;
	struct store_error err = { 0 };
	const char *raw = imap__arg_astring(arg), *name;
	struct imap_arg trimmed;
	uint32_t use = 0;

	if (cmd->argc < 1 || cmd->argc > 2) {
		imap__tagged(cmd, "BAD", "CREATE takes a mailbox name and parameters");
		return;
	}
	if (cmd->argc == 2 && create_params(cmd, arg->next, &use) < 0)
		return;
	/* RFC 9051 §6.3.4: a trailing separator only says that the client
	 * means to create names below it. */
	if (raw != NULL && arg->len > 1 && raw[arg->len - 1] == '/') {
		trimmed = *arg;
		trimmed.str = arena_strndup(cmd->a, raw, (size_t)arg->len - 1);
		trimmed.len--;
		trimmed.next = NULL;
		arg = &trimmed;
	}
	if ((name = mailbox_arg(cmd, arg)) == NULL)
		return;
	if (store_mailbox_create(cmd->s->mail.store, name, use, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	/* RFC 8474 §4.1: the new mailbox's MAILBOXID in the reply. The
	 * mailbox exists now whatever happens: without an id (disk full)
	 * the reply is a plain OK. */
	const char *id = NULL;

	if (store_mailbox_id_of(cmd->s->mail.store, name, cmd->a, &id, &err) < 0) {
		log_warn("CREATE %s: no MAILBOXID: %s", name, err.msg);
		id = NULL;
	}
	imap__sync(cmd, true);
	if (id != NULL)
		imap__tagged(cmd, "OK", "[MAILBOXID (%s)] CREATE completed", id);
	else
		imap__tagged(cmd, "OK", "CREATE completed");
}

/* ----------------------------------------------------------- DELETE */

void imap__cmd_delete(struct imap_cmd *cmd)
{
	struct imap_mail *mail = &cmd->s->mail;
	struct store_error err = { 0 };
	const char *name;

	if (cmd->argc != 1) {
		imap__tagged(cmd, "BAD", "DELETE takes a mailbox name");
		return;
	}
	if ((name = mailbox_arg(cmd, cmd->args)) == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap__tagged(cmd, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (mail->sel != NULL && strcmp(mail->sel->name, name) == 0) {
		/* As Dovecot: the selected mailbox is closed first (so nothing
		 * of it is written after the delete) and the session is back
		 * in the authenticated state, whatever the delete does. */
		imap__selected_free(&mail->sel);
		cmd->set_state = true;
		cmd->next_state = IMAP_STATE_AUTH;
	}
	if (store_mailbox_delete(mail->store, name, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "DELETE completed");
}

/* ----------------------------------------------------------- RENAME */

/* The selected mailbox is from, or below it: its name after the rename. */
static const char *renamed(struct arena *a, const char *sel, const char *from, const char *to)
{
	size_t n = strlen(from);

	if (strcmp(from, "INBOX") == 0 || strncmp(sel, from, n) != 0 ||
	    (sel[n] != '\0' && sel[n] != '/'))
		return NULL;
	return arena_printf(a, "%s%s", to, sel + n);
}

void imap__cmd_rename(struct imap_cmd *cmd)
{
	struct imap_mail *mail = &cmd->s->mail;
	struct store_error err = { 0 };
	const char *from, *to, *sel_to = NULL;

	if (cmd->argc != 2) {
		imap__tagged(cmd, "BAD", "RENAME takes two mailbox names");
		return;
	}
	if ((from = mailbox_arg(cmd, cmd->args)) == NULL ||
	    (to = mailbox_arg(cmd, cmd->args->next)) == NULL)
		return;
	/* The selected mailbox's folder moves: its handle is reopened under
	 * the new name (same UIDVALIDITY, so the client's view stays). */
	if (mail->sel != NULL && (sel_to = renamed(cmd->a, mail->sel->name, from, to)) != NULL)
		store_mailbox_close(&mail->sel->mb);
	int ret = store_mailbox_rename(mail->store, from, to, &err);

	if (sel_to != NULL) {
		struct imap_selected *sel = mail->sel;
		struct store_error oerr = { 0 };
		const char *now = ret == 0 ? sel_to : sel->name;

		if (store_mailbox_open(mail->store, now, &sel->mb, &oerr) < 0) {
			log_warn("RENAME: cannot reopen the selected mailbox: %s", oerr.msg);
			imap__selected_free(&mail->sel);
			cmd->set_state = true;
			cmd->next_state = IMAP_STATE_AUTH;
		} else if (ret == 0) {
			free(sel->name);
			sel->name = xstrdup(sel_to);
		}
	}
	if (ret < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "RENAME completed");
}

/* ------------------------------------------------------- SUBSCRIBE */

/* RFC 9051 §6.3.7: a name may be subscribed whether or not it exists;
 * unsubscribing a name that is not subscribed is not an error. */
void imap__cmd_subscribe(struct imap_cmd *cmd)
{
	bool subscribe = strcmp(cmd->name, "SUBSCRIBE") == 0;
	struct store_error err = { 0 };
	const char *name;

	if (cmd->argc != 1) {
		imap__tagged(cmd, "BAD", "%s takes a mailbox name", cmd->name);
		return;
	}
	if ((name = mailbox_arg(cmd, cmd->args)) == NULL)
		return;
	if (store_mailbox_subscribe(cmd->s->mail.store, name, subscribe, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/* ----------------------------------------------------------- STATUS */

enum status_item {
	STATUS_MESSAGES,
	STATUS_UIDNEXT,
	STATUS_UIDVALIDITY,
	STATUS_UNSEEN,
	STATUS_RECENT,
	STATUS_SIZE,
	STATUS_HIGHESTMODSEQ,
	STATUS_DELETED,
	STATUS_APPENDLIMIT,
	STATUS_MAILBOXID,
	STATUS_ITEMS
};

static const char *const status_names[STATUS_ITEMS] = {
	[STATUS_MESSAGES] = "MESSAGES",
	[STATUS_UIDNEXT] = "UIDNEXT",
	[STATUS_UIDVALIDITY] = "UIDVALIDITY",
	[STATUS_UNSEEN] = "UNSEEN",
	[STATUS_RECENT] = "RECENT",
	[STATUS_SIZE] = "SIZE",
	[STATUS_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
	[STATUS_DELETED] = "DELETED",
	[STATUS_APPENDLIMIT] = "APPENDLIMIT",
	[STATUS_MAILBOXID] = "MAILBOXID",
};

/* The items asked for, in the client's order, each once. */
struct status_req {
	enum status_item items[STATUS_ITEMS];
	unsigned count;
	unsigned mask;
};

/* status-att list: 0, or -1 with *error_r. */
static int status_parse(const struct imap_arg *list, struct status_req *req,
			const char **error_r)
{
	memset(req, 0, sizeof(*req));
	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0) {
		*error_r = "BAD STATUS items must be a non-empty list";
		return -1;
	}
	for (const struct imap_arg *a = list->child; a != NULL; a = a->next) {
		unsigned i;

		for (i = 0; i < STATUS_ITEMS; i++)
			if (a->type == IMAP_ARG_ATOM && strcasecmp(a->str, status_names[i]) == 0)
				break;
		if (i == STATUS_ITEMS) {
			*error_r = "BAD Unknown STATUS item";
			return -1;
		}
		if (req->mask & (1u << i))
			continue;
		req->mask |= 1u << i;
		req->items[req->count++] = (enum status_item)i;
	}
	return 0;
}

/* DELETED (RFC 9051 §6.3.11): the index keeps no count of \Deleted, so
 * the mailbox is opened and its flags counted. */
static int count_deleted(struct store_user *u, const char *name, uint32_t *n_r,
			 struct store_error *err)
{
	struct store_mailbox *mb;
	uint32_t n = 0;

	if (store_mailbox_open(u, name, &mb, err) < 0)
		return -1;
	for (uint32_t j = 1; j <= store_mailbox_count(mb); j++)
		if (store_mailbox_msg(mb, j)->flags & STORE_FLAG_DELETED)
			n++;
	store_mailbox_close(&mb);
	*n_r = n;
	return 0;
}

/* "* STATUS name (...)" into cmd->out; -1 with *err (nothing written). */
static int status_write(struct imap_cmd *cmd, const char *name, const struct status_req *req,
			struct store_error *err)
{
	struct store_user *u = cmd->s->mail.store;
	struct store_mailbox_info info;
	struct buf *out = &cmd->out;
	uint32_t deleted = 0;

	if (store_mailbox_status(u, name, cmd->a, &info, err) < 0)
		return -1;
	/* A folder without an id yet gets one now (status only reads it). */
	if ((req->mask & (1u << STATUS_MAILBOXID)) && info.mailboxid == NULL &&
	    store_mailbox_id_of(u, name, cmd->a, &info.mailboxid, err) < 0)
		return -1;
	if ((req->mask & (1u << STATUS_DELETED)) && count_deleted(u, name, &deleted, err) < 0)
		return -1;
	if (req->mask & (1u << STATUS_HIGHESTMODSEQ)) {
		/* RFC 7162 §3.1: STATUS HIGHESTMODSEQ enables CONDSTORE. The
		 * loop does not read the session while the job runs (as
		 * SELECT (CONDSTORE) in selected.c). */
		cmd->s->enabled.condstore = true;
	}
	buf_append_str(out, "* STATUS ");
	imap__buf_mailbox(out, name, &cmd->s->enabled);
	buf_append_str(out, " (");
	for (unsigned i = 0; i < req->count; i++) {
		enum status_item it = req->items[i];

		if (i > 0)
			buf_append(out, " ", 1);
		buf_printf(out, "%s ", status_names[it]);
		switch (it) {
		case STATUS_MESSAGES:
			buf_printf(out, "%u", info.messages);
			break;
		case STATUS_UIDNEXT:
			buf_printf(out, "%u", info.uidnext);
			break;
		case STATUS_UIDVALIDITY:
			buf_printf(out, "%u", info.uidvalidity);
			break;
		case STATUS_UNSEEN:
			buf_printf(out, "%u", info.unseen);
			break;
		case STATUS_RECENT:
			/* No session ever sees a message as recent here. */
			buf_append_str(out, "0");
			break;
		case STATUS_SIZE:
			buf_printf(out, "%llu", (unsigned long long)info.vsize);
			break;
		case STATUS_HIGHESTMODSEQ:
			buf_printf(out, "%llu", (unsigned long long)info.highestmodseq);
			break;
		case STATUS_DELETED:
			buf_printf(out, "%u", deleted);
			break;
		case STATUS_APPENDLIMIT:
			if (imap__set.append_limit == 0)
				buf_append_str(out, "NIL");
			else
				buf_printf(out, "%llu", (unsigned long long)imap__set.append_limit);
			break;
		case STATUS_MAILBOXID:
			buf_printf(out, "(%s)", info.mailboxid);
			break;
		case STATUS_ITEMS:
			break;
		}
	}
	buf_append_str(out, ")\r\n");
	return 0;
}

void imap__cmd_status(struct imap_cmd *cmd)
{
	struct store_error err = { 0 };
	struct status_req req;
	const char *name, *error;

	if (cmd->argc != 2) {
		imap__tagged(cmd, "BAD", "STATUS takes a mailbox name and a list of items");
		return;
	}
	if (status_parse(cmd->args->next, &req, &error) < 0) {
		imap__tagged_error(cmd, error);
		return;
	}
	if ((name = mailbox_arg(cmd, cmd->args)) == NULL)
		return;
	if (status_write(cmd, name, &req, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "STATUS completed");
}

/* ------------------------------------------------------------- LIST */

/* One name LIST may show: a mailbox, a subscription, or a parent that
 * exists only because of the names below it. */
struct list_entry {
	const char *name;
	uint32_t special_use;
	bool exists;
	bool subscribed;
	bool implied;           /* added as a parent of other names */
	bool children;          /* an existing mailbox below it */
	bool child_subscribed;  /* a subscribed name below it */
};

struct list_ctx {
	struct list_entry *entries;
	size_t count, next;
	const char **patterns;
	size_t npatterns;
	bool lsub;
	bool ext;               /* \NonExistent rather than \Noselect */
	bool sel_subscribed, sel_special, recursive;
	bool ret_subscribed, ret_children, ret_status;
	struct status_req status;
};

/* Does name match pattern? "*" matches anything, "%" anything but the
 * separator (RFC 9051 §6.3.9). Runs over the positions of name that the
 * pattern so far can reach: time pattern x name, no backtracking. */
static bool pattern_match(const char *pattern, const char *name)
{
	enum { MAX = STORE_NAME_MAX * 4 + 1 };
	bool reach[MAX + 1], next[MAX + 1];
	size_t n = strlen(name);

	if (n > MAX)
		return false;
	memset(reach, 0, sizeof(reach));
	reach[0] = true;
	for (const char *p = pattern; *p != '\0'; p++) {
		bool any = false;

		if (*p == '*' || *p == '%') {
			bool run = false;

			for (size_t j = 0; j <= n; j++) {
				if (*p == '%' && j > 0 && name[j - 1] == '/')
					run = false;
				run = run || reach[j];
				next[j] = run;
				any = any || run;
			}
		} else {
			next[0] = false;
			for (size_t j = 0; j < n; j++) {
				next[j + 1] = reach[j] && name[j] == *p;
				any = any || next[j + 1];
			}
		}
		if (!any)
			return false;
		memcpy(reach, next, (n + 1) * sizeof(*reach));
	}
	return reach[n];
}

static bool any_pattern_match(const struct list_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->npatterns; i++)
		if (pattern_match(ctx->patterns[i], name))
			return true;
	return false;
}

/* Reference and pattern joined (RFC 9051 §6.3.9), decoded from modified
 * UTF-7 unless UTF-8 is on, runs of wildcards folded ("*%" is "*"), a
 * leading "inbox" as "INBOX". NULL with *error_r. */
static const char *list_pattern(struct imap_cmd *cmd, const char *ref, const char *pat,
				const char **error_r)
{
	size_t rlen = strlen(ref);
	const char *joined;

	if (rlen > 0 && ref[rlen - 1] == '/' && pat[0] == '/')
		pat++;
	joined = arena_printf(cmd->a, "%s%s", ref, pat);
	if (!cmd->s->enabled.utf8) {
		size_t size = strlen(joined) * 3 + 1;
		char *dec = arena_alloc(cmd->a, size);

		for (const unsigned char *p = (const unsigned char *)joined; *p != '\0'; p++) {
			if (*p >= 0x80) {
				*error_r = "BAD [CANNOT] 8-bit mailbox names need "
					   "ENABLE UTF8=ACCEPT";
				return NULL;
			}
		}
		if (store_mutf7_decode(joined, dec, size) < 0) {
			*error_r = "BAD [CANNOT] Invalid modified UTF-7 in mailbox pattern";
			return NULL;
		}
		joined = dec;
	}
	char *out = arena_alloc(cmd->a, strlen(joined) + 1);
	size_t n = 0;

	for (const char *p = joined; *p != '\0'; p++) {
		bool wild = *p == '*' || *p == '%';

		if (wild && n > 0 && (out[n - 1] == '*' || out[n - 1] == '%')) {
			if (*p == '*')
				out[n - 1] = '*';
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return out;
}

/* INBOX first, then byte order; a mailbox before its implied twin. */
static int entry_cmp(const void *a, const void *b)
{
	const struct list_entry *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	int c;

	if (xi != yi)
		return xi ? -1 : 1;
	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return (int)x->implied - (int)y->implied;
}

/* The store's mailboxes and subscriptions with every parent of theirs,
 * sorted, one entry per name. 0, or -1 with *err. */
static int list_entries(struct imap_cmd *cmd, struct list_ctx *ctx, struct store_error *err)
{
	struct store_mailbox_info *list;
	size_t count, cap = 0, n = 0;

	if (store_mailbox_list(cmd->s->mail.store, cmd->a, &list, &count, err) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		cap++;
		for (const char *p = list[i].name; *p != '\0'; p++)
			cap += *p == '/';
	}
	struct list_entry *e = arena_alloc(cmd->a, (cap + 1) * sizeof(*e));

	for (size_t i = 0; i < count; i++) {
		const struct store_mailbox_info *mi = &list[i];

		e[n++] = (struct list_entry){
			.name = mi->name,
			.special_use = mi->special_use,
			.exists = mi->exists,
			.subscribed = mi->subscribed,
		};
		for (const char *p = strchr(mi->name, '/'); p != NULL; p = strchr(p + 1, '/')) {
			e[n++] = (struct list_entry){
				.name = arena_strndup(cmd->a, mi->name, (size_t)(p - mi->name)),
				.implied = true,
				.children = mi->exists,
				.child_subscribed = mi->subscribed,
			};
		}
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), entry_cmp);
	/* Merge each name's entries: the mailbox's own, then what its
	 * descendants say about it. */
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (w > 0 && strcmp(e[w - 1].name, e[i].name) == 0) {
			e[w - 1].children |= e[i].children;
			e[w - 1].child_subscribed |= e[i].child_subscribed;
			continue;
		}
		e[w++] = e[i];
	}
	ctx->entries = e;
	ctx->count = w;
	return 0;
}

/* LSUB with "%" (RFC 3501 §6.3.9): a parent that is not subscribed is
 * shown (\Noselect) when a subscribed name below it is cut off by the
 * pattern that matched the parent. */
static bool lsub_parent_shown(const struct list_ctx *ctx, size_t i)
{
	const char *name = ctx->entries[i].name;
	size_t len = strlen(name);

	for (size_t p = 0; p < ctx->npatterns; p++) {
		if (!pattern_match(ctx->patterns[p], name))
			continue;
		for (size_t j = i + 1; j < ctx->count; j++) {
			const struct list_entry *d = &ctx->entries[j];

			if (strncmp(d->name, name, len) != 0 || d->name[len] != '/')
				break;
			if (d->subscribed && !pattern_match(ctx->patterns[p], d->name))
				return true;
		}
	}
	return false;
}

static void attr(struct buf *out, bool *first, const char *name)
{
	if (!*first)
		buf_append(out, " ", 1);
	buf_append_str(out, name);
	*first = false;
}

/* The LIST (or LSUB) response for entry i, if it is selected and
 * matches; with LIST-STATUS its STATUS response after it. */
static void list_one(struct imap_cmd *cmd, struct list_ctx *ctx, size_t i)
{
	const struct list_entry *e = &ctx->entries[i];
	struct buf *out = &cmd->out;
	bool first = true, childinfo = false, noselect = false;

	if (ctx->lsub) {
		if (e->subscribed ? !any_pattern_match(ctx, e->name) :
		    !(e->child_subscribed && lsub_parent_shown(ctx, i)))
			return;
		buf_printf(out, "* LSUB (%s) \"/\" ", e->subscribed ? "" : "\\Noselect");
		imap__buf_mailbox(out, e->name, &cmd->s->enabled);
		buf_append_str(out, "\r\n");
		return;
	}
	if (ctx->sel_subscribed) {
		/* RECURSIVEMATCH: a parent that is not subscribed itself is
		 * shown for the subscribed names below it (RFC 5258 §3.5). */
		if (!e->subscribed && !(ctx->recursive && e->child_subscribed))
			return;
	} else if (!e->exists && !e->children) {
		return;
	}
	if (ctx->sel_special && (!e->exists || e->special_use == 0))
		return;
	if (!any_pattern_match(ctx, e->name))
		return;
	childinfo = ctx->recursive && ctx->sel_subscribed && e->child_subscribed;
	buf_append_str(out, "* LIST (");
	if (!e->exists) {
		attr(out, &first, ctx->ext ? "\\NonExistent" : "\\Noselect");
		noselect = true;
	}
	if (e->subscribed && ctx->ret_subscribed)
		attr(out, &first, "\\Subscribed");
	if (ctx->ret_children)
		attr(out, &first, e->children ? "\\HasChildren" : "\\HasNoChildren");
	/* Special-use attributes go to every client, as Dovecot does. */
	for (size_t k = 0; e->exists && k < N_ELEMENTS(special_uses); k++)
		if (e->special_use & special_uses[k].use)
			attr(out, &first, special_uses[k].name);
	buf_append_str(out, ") \"/\" ");
	imap__buf_mailbox(out, e->name, &cmd->s->enabled);
	if (childinfo)
		buf_append_str(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_append_str(out, "\r\n");
	if (ctx->ret_status && !noselect) {
		struct store_error err = { 0 };

		/* RFC 5819 §2: a mailbox whose status cannot be had is only
		 * listed. */
		if (status_write(cmd, e->name, &ctx->status, &err) < 0)
			log_warn("LIST-STATUS %s: %s", e->name, err.msg);
	}
}

/* list-select-opts (RFC 5258 §3.1, RFC 6154 §5.2). 0, or -1 with *error_r. */
static int list_select_opts(struct list_ctx *ctx, const struct imap_arg *list,
			    const char **error_r)
{
	bool other = false;

	for (const struct imap_arg *o = list->child; o != NULL; o = o->next) {
		if (o->type != IMAP_ARG_ATOM) {
			*error_r = "BAD Invalid LIST selection option";
			return -1;
		}
		if (strcasecmp(o->str, "SUBSCRIBED") == 0) {
			ctx->sel_subscribed = true;
			ctx->ret_subscribed = true;
			other = true;
		} else if (strcasecmp(o->str, "SPECIAL-USE") == 0) {
			ctx->sel_special = true;
			other = true;
		} else if (strcasecmp(o->str, "RECURSIVEMATCH") == 0) {
			ctx->recursive = true;
		} else if (strcasecmp(o->str, "REMOTE") != 0) {
			/* REMOTE: there are no remote mailboxes to add. */
			*error_r = "BAD Unknown LIST selection option";
			return -1;
		}
	}
	if (ctx->recursive && !other) {
		*error_r = "BAD RECURSIVEMATCH needs another selection option";
		return -1;
	}
	return 0;
}

/* list-return-opts (RFC 5258 §3.2, RFC 6154 §5.2, RFC 5819). */
static int list_return_opts(struct list_ctx *ctx, const struct imap_arg *list,
			    const char **error_r)
{
	if (list->type != IMAP_ARG_LIST) {
		*error_r = "BAD RETURN options must be a list";
		return -1;
	}
	for (const struct imap_arg *o = list->child; o != NULL; o = o->next) {
		if (o->type != IMAP_ARG_ATOM) {
			*error_r = "BAD Invalid LIST return option";
			return -1;
		}
		if (strcasecmp(o->str, "SUBSCRIBED") == 0) {
			ctx->ret_subscribed = true;
		} else if (strcasecmp(o->str, "CHILDREN") == 0) {
			ctx->ret_children = true;
		} else if (strcasecmp(o->str, "SPECIAL-USE") == 0) {
			/* Special-use attributes are always returned. */
		} else if (strcasecmp(o->str, "STATUS") == 0) {
			if (status_parse(o->next, &ctx->status, error_r) < 0)
				return -1;
			ctx->ret_status = true;
			o = o->next;
		} else {
			*error_r = "BAD Unknown LIST return option";
			return -1;
		}
	}
	return 0;
}

/* A list-mailbox argument's text (atom with wildcards, string). */
static const char *list_mailbox_text(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST || (arg->flags & IMAP_ARG_HAS_NUL))
		return NULL;
	return imap_arg_string(arg);
}

/*
 * LIST [selection-opts] reference (pattern / (patterns)) [RETURN (opts)],
 * LSUB reference pattern. Sets up ctx, or replies with the error and
 * returns -1. *root_r: a pattern was "", the request for the separator.
 */
static int list_parse(struct imap_cmd *cmd, struct list_ctx *ctx, bool *root_r)
{
	const struct imap_arg *a = cmd->args;
	const char *error = "BAD Invalid LIST arguments", *ref;
	bool sel_opts = false;

	ctx->lsub = strcmp(cmd->name, "LSUB") == 0;
	if (!ctx->lsub && a != NULL && a->type == IMAP_ARG_LIST) {
		if (list_select_opts(ctx, a, &error) < 0)
			goto bad;
		sel_opts = true;
		ctx->ext = true;
		a = a->next;
	}
	if ((ref = list_mailbox_text(a)) == NULL || a->next == NULL)
		goto bad;
	a = a->next;
	const struct imap_arg *pats = a->type == IMAP_ARG_LIST ? a->child : a;
	unsigned npats = a->type == IMAP_ARG_LIST ? a->count : 1;

	if (a->type == IMAP_ARG_LIST) {
		if (ctx->lsub || npats == 0)
			goto bad;
		ctx->ext = true;
	}
	ctx->patterns = arena_alloc(cmd->a, npats * sizeof(*ctx->patterns));
	for (const struct imap_arg *p = pats; p != NULL && ctx->npatterns < npats; p = p->next) {
		const char *text = list_mailbox_text(p), *pat;

		if (text == NULL)
			goto bad;
		if (text[0] == '\0') {
			*root_r = true;
			continue;
		}
		if ((pat = list_pattern(cmd, ref, text, &error)) == NULL)
			goto bad;
		ctx->patterns[ctx->npatterns++] = pat;
	}
	a = a->next;
	if (a != NULL) {
		if (ctx->lsub || a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "RETURN") != 0 ||
		    a->next == NULL || a->next->next != NULL) {
			error = "BAD Invalid LIST arguments";
			goto bad;
		}
		if (list_return_opts(ctx, a->next, &error) < 0)
			goto bad;
		ctx->ext = true;
	}
	if (cmd->s->enabled.rev2)
		ctx->ext = true;
	/* Children are reported unless only the subscriptions were asked
	 * for (Dovecot: always for the basic LIST). */
	if (!ctx->lsub && !(sel_opts && ctx->sel_subscribed))
		ctx->ret_children = true;
	return 0;
bad:
	imap__tagged_error(cmd, error);
	return -1;
}

void imap__cmd_list(struct imap_cmd *cmd)
{
	struct list_ctx *ctx = cmd->priv;

	if (ctx == NULL) {
		struct store_error err = { 0 };
		bool root = false;

		ctx = arena_alloc(cmd->a, sizeof(*ctx));
		if (list_parse(cmd, ctx, &root) < 0)
			return;
		if (root) {
			/* RFC 9051 §6.3.9: "" asks for the separator and the
			 * root of the reference, which is "" here. */
			buf_printf(&cmd->out, "* %s (\\Noselect) \"/\" \"\"\r\n", cmd->name);
		}
		if (ctx->npatterns > 0 && list_entries(cmd, ctx, &err) < 0) {
			imap__tagged_store_error(cmd, &err, false);
			return;
		}
		cmd->priv = ctx;
	}
	while (ctx->next < ctx->count) {
		if (cmd->out.len >= LIST_CHUNK) {
			cmd->more = true;
			return;
		}
		list_one(cmd, ctx, ctx->next++);
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/* -------------------------------------------------------- NAMESPACE */

/* RFC 2342: one personal namespace, no other users', no shared. */
void imap__cmd_namespace(struct imap_cmd *cmd)
{
	if (cmd->argc != 0) {
		imap__bad(cmd->s, cmd->tag, "NAMESPACE takes no arguments");
		imap__cmd_end(cmd);
		return;
	}
	conn_printf(cmd->s->conn,
		    "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n%s OK NAMESPACE completed\r\n",
		    cmd->tag);
	imap__cmd_end(cmd);
}

/* ------------------------------------------------------------ QUOTA */

/*
 * RFC 9208: one quota root, "", for all of the user's mail, with the
 * limits of the user's account (ternctl user quota): STORAGE in KiB (the
 * usage rounded up, the limit down) and MESSAGE, each only when limited.
 */
static int quota_write(struct imap_cmd *cmd, struct store_error *err)
{
	const struct store_quota *q = &cmd->s->mail.quota;
	uint64_t bytes, messages;
	bool first = true;

	if (store_user_usage(cmd->s->mail.store, &bytes, &messages, err) < 0)
		return -1;
	buf_append_str(&cmd->out, "* QUOTA \"\" (");
	if (q->max_bytes != 0) {
		buf_printf(&cmd->out, "STORAGE %llu %llu",
			   (unsigned long long)((bytes + 1023) / 1024),
			   (unsigned long long)(q->max_bytes / 1024));
		first = false;
	}
	if (q->max_messages != 0)
		buf_printf(&cmd->out, "%sMESSAGE %llu %llu", first ? "" : " ",
			   (unsigned long long)messages, (unsigned long long)q->max_messages);
	buf_append_str(&cmd->out, ")\r\n");
	return 0;
}

void imap__cmd_getquota(struct imap_cmd *cmd)
{
	bool root = strcmp(cmd->name, "GETQUOTAROOT") == 0;
	struct store_error err = { 0 };

	if (cmd->argc != 1) {
		imap__tagged(cmd, "BAD", "%s takes one argument", cmd->name);
		return;
	}
	if (root) {
		struct store_mailbox_info info;
		const char *name = mailbox_arg(cmd, cmd->args);

		if (name == NULL)
			return;
		if (store_mailbox_status(cmd->s->mail.store, name, cmd->a, &info, &err) < 0) {
			imap__tagged_store_error(cmd, &err, false);
			return;
		}
		buf_append_str(&cmd->out, "* QUOTAROOT ");
		imap__buf_mailbox(&cmd->out, name, &cmd->s->enabled);
		buf_append_str(&cmd->out, " \"\"\r\n");
	} else {
		const char *r = imap__arg_astring(cmd->args);

		if (r == NULL) {
			imap__tagged(cmd, "BAD", "GETQUOTA takes a quota root");
			return;
		}
		if (r[0] != '\0') {
			imap__tagged(cmd, "NO", "[NONEXISTENT] No such quota root");
			return;
		}
	}
	if (quota_write(cmd, &err) < 0) {
		buf_clear(&cmd->out);
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	imap__sync(cmd, true);
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/* Limits are the administrator's (ternctl user quota), not the user's. */
void imap__cmd_setquota(struct imap_cmd *cmd)
{
	if (cmd->argc != 2 || cmd->args->next->type != IMAP_ARG_LIST) {
		imap__bad(cmd->s, cmd->tag, "SETQUOTA takes a quota root and a list of limits");
		imap__cmd_end(cmd);
		return;
	}
	conn_printf(cmd->s->conn, "%s NO [NOPERM] Quota limits are set by the administrator\r\n",
		    cmd->tag);
	imap__cmd_end(cmd);
}
