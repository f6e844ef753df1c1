/*
 * cmd-mailbox.c — `ternctl mailbox list|create|delete|rename|status USER …`:
 * a user's mailboxes as IMAP sees them, for the administrator.
 *
 * Counts come from the index after the folder was synced with its files,
 * so mail dropped in by other programs is counted. Tern does not keep
 * IMAP4rev1's \Recent (IMAP4rev2 removed it), so status shows unseen
 * messages, not recent ones.
 *
 * Choices:
 * - create can subscribe the new mailbox (--subscribe), as doveadm's -s;
 * - delete also removes the subscription (an administrator deleting a
 *   mailbox does not want it listed as subscribed but missing), and asks
 *   first when the mailbox holds messages: on a terminal it asks, otherwise
 *   it needs --yes;
 * - rename carries the subscriptions of the mailbox and its children over
 *   to the new names (except INBOX's, since INBOX stays).
 */
#include "ctl/ctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct {
	const char *name;
	uint32_t use;
} special_uses[] = {
	{ "\\All", STORE_USE_ALL },
	{ "\\Archive", STORE_USE_ARCHIVE },
	{ "\\Drafts", STORE_USE_DRAFTS },
	{ "\\Flagged", STORE_USE_FLAGGED },
	{ "\\Junk", STORE_USE_JUNK },
	{ "\\Sent", STORE_USE_SENT },
	{ "\\Trash", STORE_USE_TRASH },
};

/* "\Sent" or "Sent", any case; 0 when unknown. */
static uint32_t special_use_parse(const char *s)
{
	for (size_t i = 0; i < N_ELEMENTS(special_uses); i++) {
		const char *name = special_uses[i].name;

		if (strcasecmp(s, name) == 0 || strcasecmp(s, name + 1) == 0)
			return special_uses[i].use;
	}
	return 0;
}

/* "\Sent \Trash" into out; "" for none. */
static void special_use_format(uint32_t use, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < N_ELEMENTS(special_uses); i++) {
		if ((use & special_uses[i].use) != 0 && len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s", len > 0 ? " " : "",
						special_uses[i].name);
	}
}

static void json_special_use(uint32_t use)
{
	ctl_json_begin_array("special_use");
	for (size_t i = 0; i < N_ELEMENTS(special_uses); i++) {
		if ((use & special_uses[i].use) != 0)
			ctl_json_string(NULL, special_uses[i].name);
	}
	ctl_json_end_array();
}

/* ------------------------------------------------------------ common */

/* What a mailbox command works on: its operands, the user named by the
 * first, their open store, and an arena for the answers. */
struct session {
	char **args;
	struct auth_user user;
	struct store_user *u;
	struct arena *a;
	struct store_error err;
};

/* Open the store of the user args[0] names. EX_OK, or the exit code after
 * saying why. */
static int open_session(struct ctl *ctl, char **args, struct session *s)
{
	int rc = ctl_open_store(ctl, args[0], &s->user, &s->u);

	s->args = args;
	if (rc == EX_OK)
		s->a = arena_new(0);
	return rc;
}

static const struct ctl_command *find_cmd(const char *name);

/* The start of a command without options: its operands (USER first)
 * parsed, then open_session. */
static int begin(struct ctl *ctl, const char *name, int argc, char **argv, int operands,
		 struct session *s)
{
	int first = ctl_parse_options(find_cmd(name), argc, argv, "", NULL, operands, NULL, NULL);

	if (first < 0)
		return EX_USAGE;
	return open_session(ctl, argv + first, s);
}

/* Close what begin opened; returns rc. */
static int finish(struct session *s, int rc)
{
	arena_free(&s->a);
	store_user_close(&s->u);
	return rc;
}

/* A store call failed: "USER: <what>: <error>" on stderr, then finish
 * with the error's exit code. */
static int fail(struct session *s, const char *fmt, ...) ATTR_PRINTF(2, 3);

static int fail(struct session *s, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ctl_error("%s: %s: %s", s->user.name, what, s->err.msg);
	return finish(s, ctl_store_exit(&s->err));
}

/* ------------------------------------------------------------- list */

static int mailbox_list(struct ctl *ctl, int argc, char **argv)
{
	struct session s = { 0 };
	struct store_mailbox_info *list;
	size_t count;
	int rc = begin(ctl, "mailbox list", argc, argv, 1, &s);

	if (rc != EX_OK)
		return rc;
	if (store_mailbox_list(s.u, s.a, &list, &count, &s.err) < 0)
		return fail(&s, "cannot list the mailboxes");
	/* Fresh counts: each folder synced with its files first. */
	for (size_t i = 0; i < count; i++) {
		if (!list[i].exists)
			continue;
		struct store_mailbox_info info;
		bool subscribed = list[i].subscribed, children = list[i].has_children;

		if (store_mailbox_status(s.u, list[i].name, s.a, &info, &s.err) < 0) {
			if (s.err.code == STORE_ERR_NOTFOUND) {
				/* Deleted by someone else meanwhile. */
				list[i].exists = false;
				continue;
			}
			return fail(&s, "cannot read mailbox %s", list[i].name);
		}
		list[i] = info;
		list[i].subscribed = subscribed;
		list[i].has_children = children;
	}
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", s.user.name);
		ctl_json_begin_array("mailboxes");
		for (size_t i = 0; i < count; i++) {
			const struct store_mailbox_info *mi = &list[i];

			ctl_json_begin_object(NULL);
			ctl_json_string("name", mi->name);
			ctl_json_bool("exists", mi->exists);
			json_special_use(mi->special_use);
			ctl_json_bool("subscribed", mi->subscribed);
			ctl_json_uint("messages", mi->messages);
			ctl_json_uint("unseen", mi->unseen);
			ctl_json_uint("size", mi->vsize);
			ctl_json_end_object();
		}
		ctl_json_end_array();
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		size_t width = strlen("MAILBOX");

		for (size_t i = 0; i < count; i++) {
			if (strlen(list[i].name) > width)
				width = strlen(list[i].name);
		}
		printf("%-*s  %-12s %-4s %9s %9s %12s\n", (int)width, "MAILBOX", "SPECIAL-USE",
		       "SUB", "MESSAGES", "UNSEEN", "SIZE");
		for (size_t i = 0; i < count; i++) {
			const struct store_mailbox_info *mi = &list[i];
			char use[128];

			special_use_format(mi->special_use, use, sizeof(use));
			if (!mi->exists) {
				printf("%-*s  %-12s %-4s %9s %9s %12s\n", (int)width, mi->name,
				       "-", mi->subscribed ? "yes" : "no", "-", "-",
				       "(no mailbox)");
				continue;
			}
			printf("%-*s  %-12s %-4s %9u %9u %12llu\n", (int)width, mi->name,
			       use[0] != '\0' ? use : "-", mi->subscribed ? "yes" : "no",
			       mi->messages, mi->unseen, (unsigned long long)mi->vsize);
		}
	}
	return finish(&s, EX_OK);
}

/* ----------------------------------------------------------- create */

struct create_opts {
	uint32_t special_use;
	bool subscribe;
};

static int create_take(int opt, const char *arg, void *data)
{
	struct create_opts *o = data;

	switch (opt) {
	case 'u': {
		uint32_t use = special_use_parse(arg);

		if (use == 0) {
			ctl_error("unknown special-use attribute %s", arg);
			return -1;
		}
		o->special_use |= use;
		return 0;
	}
	case 's':
		o->subscribe = true;
		return 0;
	}
	return -1;
}

static int mailbox_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "special-use", required_argument, NULL, 'u' },
		{ "subscribe", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct create_opts o = { 0 };
	int first = ctl_parse_options(find_cmd("mailbox create"), argc, argv, "u:s", longopts, 2,
				      create_take, &o);
	struct session s = { 0 };
	int rc;

	if (first < 0)
		return EX_USAGE;
	if ((rc = open_session(ctl, argv + first, &s)) != EX_OK)
		return rc;
	const char *name = s.args[1];

	if (store_mailbox_create(s.u, name, o.special_use, &s.err) < 0 ||
	    (o.subscribe && store_mailbox_subscribe(s.u, name, true, &s.err) < 0))
		return fail(&s, "cannot create mailbox %s", name);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", s.user.name);
		ctl_json_string("mailbox", name);
		ctl_json_bool("created", true);
		json_special_use(o.special_use);
		ctl_json_bool("subscribed", o.subscribe);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("created mailbox %s for %s\n", name, s.user.name);
	}
	return finish(&s, EX_OK);
}

/* ----------------------------------------------------------- delete */

static void print_deleted(const struct ctl *ctl, const struct session *s,
			  const struct store_mailbox_info *info, bool deleted)
{
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", s->user.name);
		ctl_json_string("mailbox", info->name);
		ctl_json_bool("deleted", deleted);
		ctl_json_uint("messages", info->messages);
		ctl_json_end_object();
		ctl_json_finish();
	} else if (deleted) {
		printf("deleted mailbox %s of %s (%u messages)\n", info->name, s->user.name,
		       info->messages);
	} else {
		printf("kept mailbox %s of %s\n", info->name, s->user.name);
	}
}

static int mailbox_delete(struct ctl *ctl, int argc, char **argv)
{
	struct session s = { 0 };
	struct store_mailbox_info info;
	int rc = begin(ctl, "mailbox delete", argc, argv, 2, &s);

	if (rc != EX_OK)
		return rc;
	const char *name = s.args[1];

	if (store_mailbox_status(s.u, name, s.a, &info, &s.err) < 0)
		return fail(&s, "cannot delete mailbox %s", name);
	if (info.messages > 0 && !ctl->yes) {
		char question[512];

		if (!isatty(STDIN_FILENO)) {
			ctl_error("%s: mailbox %s holds %u messages: add --yes to delete it",
				  s.user.name, info.name, info.messages);
			return finish(&s, EX_USAGE);
		}
		snprintf(question, sizeof(question),
			 "Delete mailbox %s of %s with its %u messages?", info.name, s.user.name,
			 info.messages);
		if (!ctl_confirm(question)) {
			print_deleted(ctl, &s, &info, false);
			return finish(&s, EX_OK);
		}
	}
	if (store_mailbox_delete(s.u, info.name, &s.err) < 0 ||
	    store_mailbox_subscribe(s.u, info.name, false, &s.err) < 0)
		return fail(&s, "cannot delete mailbox %s", name);
	print_deleted(ctl, &s, &info, true);
	return finish(&s, EX_OK);
}

/* ----------------------------------------------------------- rename */

/* Move the subscriptions of from and its children to the new names. */
static int move_subscriptions(struct session *s, const char *from, const char *to)
{
	struct store_mailbox_info *list;
	size_t count, flen = strlen(from);
	int ret = 0;

	/* INBOX stays, and so does its subscription. */
	if (strcasecmp(from, "INBOX") == 0)
		return 0;
	if (store_mailbox_list(s->u, s->a, &list, &count, &s->err) < 0)
		return -1;
	for (size_t i = 0; i < count && ret == 0; i++) {
		const char *name = list[i].name;

		if (!list[i].subscribed || strncmp(name, from, flen) != 0 ||
		    (name[flen] != '\0' && name[flen] != STORE_SEP))
			continue;
		char *newname = arena_printf(s->a, "%s%s", to, name + flen);

		ret = store_mailbox_subscribe(s->u, name, false, &s->err);
		if (ret == 0)
			ret = store_mailbox_subscribe(s->u, newname, true, &s->err);
	}
	return ret;
}

static int mailbox_rename(struct ctl *ctl, int argc, char **argv)
{
	struct session s = { 0 };
	int rc = begin(ctl, "mailbox rename", argc, argv, 3, &s);

	if (rc != EX_OK)
		return rc;
	const char *from = s.args[1], *to = s.args[2];

	if (store_mailbox_rename(s.u, from, to, &s.err) < 0)
		return fail(&s, "cannot rename mailbox %s to %s", from, to);
	if (move_subscriptions(&s, from, to) < 0)
		ctl_error("%s: renamed, but the subscriptions were not moved: %s", s.user.name,
			  s.err.msg);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", s.user.name);
		ctl_json_string("from", from);
		ctl_json_string("to", to);
		ctl_json_bool("renamed", true);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("renamed mailbox %s of %s to %s\n", from, s.user.name, to);
	}
	return finish(&s, EX_OK);
}

/* ----------------------------------------------------------- status */

static int mailbox_status(struct ctl *ctl, int argc, char **argv)
{
	struct session s = { 0 };
	struct store_mailbox_info info;
	int rc = begin(ctl, "mailbox status", argc, argv, 2, &s);

	if (rc != EX_OK)
		return rc;
	if (store_mailbox_status(s.u, s.args[1], s.a, &info, &s.err) < 0)
		return fail(&s, "cannot read mailbox %s", s.args[1]);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", s.user.name);
		ctl_json_string("mailbox", info.name);
		json_special_use(info.special_use);
		ctl_json_uint("messages", info.messages);
		ctl_json_uint("unseen", info.unseen);
		ctl_json_uint("uidvalidity", info.uidvalidity);
		ctl_json_uint("uidnext", info.uidnext);
		ctl_json_uint("highestmodseq", info.highestmodseq);
		ctl_json_uint("size", info.vsize);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		char use[128];

		special_use_format(info.special_use, use, sizeof(use));
		printf("mailbox:       %s\n", info.name);
		printf("special-use:   %s\n", use[0] != '\0' ? use : "-");
		printf("messages:      %u\n", info.messages);
		printf("unseen:        %u\n", info.unseen);
		printf("uidvalidity:   %u\n", info.uidvalidity);
		printf("uidnext:       %u\n", info.uidnext);
		printf("highestmodseq: %llu\n", (unsigned long long)info.highestmodseq);
		printf("size:          %llu\n", (unsigned long long)info.vsize);
	}
	return finish(&s, EX_OK);
}

const struct ctl_command ctl_mailbox_commands[] = {
	{
		.name = "mailbox list",
		.usage = "USER",
		.summary = "list a user's mailboxes with their counts",
		.help = "Lists every mailbox of USER, and subscriptions without a mailbox:\n"
			"special-use attributes, whether it is subscribed, messages, unseen\n"
			"messages and size (bytes with CRLF line ends, as IMAP counts). Each\n"
			"folder is first synced with its files.",
		.run = mailbox_list,
	},
	{
		.name = "mailbox create",
		.usage = "USER NAME [--special-use \\Sent|\\Drafts|\\Trash|\\Junk|\\Archive|"
			 "\\All|\\Flagged] [--subscribe]",
		.summary = "create a mailbox",
		.help = "Creates mailbox NAME (UTF-8, '/' separates levels) for USER.\n"
			"--special-use (repeatable) marks it for clients (RFC 6154);\n"
			"--subscribe also subscribes it. Exits 73 (EX_CANTCREAT) when it\n"
			"exists, 65 (EX_DATAERR) for a name that is refused.",
		.run = mailbox_create,
	},
	{
		.name = "mailbox delete",
		.usage = "USER NAME",
		.summary = "delete a mailbox and its messages",
		.help = "Deletes mailbox NAME of USER with its messages, and its\n"
			"subscription; its children stay. When it holds messages, asks on a\n"
			"terminal (an answer other than y or yes keeps it, exit 0), and\n"
			"otherwise needs --yes (exit 64 without). INBOX cannot be deleted\n"
			"(exit 77).",
		.run = mailbox_delete,
	},
	{
		.name = "mailbox rename",
		.usage = "USER OLD NEW",
		.summary = "rename a mailbox and its children",
		.help = "Renames mailbox OLD of USER, with its children, to NEW; their\n"
			"subscriptions follow. Renaming INBOX moves its messages into NEW\n"
			"and leaves INBOX empty (as IMAP RENAME does).",
		.run = mailbox_rename,
	},
	{
		.name = "mailbox status",
		.usage = "USER NAME",
		.summary = "show a mailbox's counters",
		.help = "Shows mailbox NAME of USER: messages, unseen messages, UIDVALIDITY,\n"
			"UIDNEXT, HIGHESTMODSEQ and size (bytes with CRLF line ends). Tern\n"
			"does not keep \\Recent (IMAP4rev2 dropped it).",
		.run = mailbox_status,
	},
	{ .name = NULL },
};

static const struct ctl_command *find_cmd(const char *name)
{
	for (const struct ctl_command *c = ctl_mailbox_commands; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	abort();
}
