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

/* Options of a command: parsed with getopt_long from argv[0] (the
 * command's word, which getopt skips). Returns the index of the first
 * operand, or -1 after printing usage. */
static int parse_options(const struct ctl_command *cmd, int argc, char **argv,
			 const struct option *longopts, const char *shortopts,
			 int (*take)(int opt, const char *arg, void *data), void *data)
{
	int opt;

	optind = 0; /* restart getopt for this argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (opt == '?' || take == NULL || take(opt, optarg, data) < 0) {
			ctl_usage(cmd);
			return -1;
		}
	}
	return optind;
}

/* ------------------------------------------------------------- list */

static const struct ctl_command *find_cmd(const char *name);

static int mailbox_list(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = find_cmd("mailbox list");
	int first = parse_options(cmd, argc, argv, NULL, "", NULL, NULL);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	struct store_mailbox_info *list;
	size_t count;
	int rc;

	if (first < 0)
		return EX_USAGE;
	if (argc - first != 1)
		return ctl_usage(cmd);
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	struct arena *a = arena_new(0);

	if (store_mailbox_list(u, a, &list, &count, &err) < 0)
		goto fail;
	/* Fresh counts: each folder synced with its files first. */
	for (size_t i = 0; i < count; i++) {
		if (!list[i].exists)
			continue;
		struct store_mailbox_info info;
		bool subscribed = list[i].subscribed, children = list[i].has_children;

		if (store_mailbox_status(u, list[i].name, a, &info, &err) < 0) {
			if (err.code == STORE_ERR_NOTFOUND) {
				/* Deleted by someone else meanwhile. */
				list[i].exists = false;
				continue;
			}
			goto fail;
		}
		list[i] = info;
		list[i].subscribed = subscribed;
		list[i].has_children = children;
	}
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
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
	arena_free(&a);
	store_user_close(&u);
	return EX_OK;
fail:
	ctl_error("%s: %s", user.name, err.msg);
	arena_free(&a);
	store_user_close(&u);
	return ctl_store_exit(&err);
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
	const struct ctl_command *cmd = find_cmd("mailbox create");
	struct create_opts o = { 0 };
	int first = parse_options(cmd, argc, argv, longopts, "u:s", create_take, &o);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	int rc;

	if (first < 0)
		return EX_USAGE;
	if (argc - first != 2)
		return ctl_usage(cmd);
	const char *name = argv[first + 1];

	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	if (store_mailbox_create(u, name, o.special_use, &err) < 0 ||
	    (o.subscribe && store_mailbox_subscribe(u, name, true, &err) < 0)) {
		ctl_error("%s: cannot create mailbox %s: %s", user.name, name, err.msg);
		store_user_close(&u);
		return ctl_store_exit(&err);
	}
	store_user_close(&u);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_string("mailbox", name);
		ctl_json_bool("created", true);
		json_special_use(o.special_use);
		ctl_json_bool("subscribed", o.subscribe);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("created mailbox %s for %s\n", name, user.name);
	}
	return EX_OK;
}

/* ----------------------------------------------------------- delete */

/* Ask on the terminal: true for an answer starting with y. */
static bool confirm(const char *question)
{
	char answer[16];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return false;
	return answer[0] == 'y' || answer[0] == 'Y';
}

static int mailbox_delete(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = find_cmd("mailbox delete");
	int first = parse_options(cmd, argc, argv, NULL, "", NULL, NULL);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	struct store_mailbox_info info;
	int rc;

	if (first < 0)
		return EX_USAGE;
	if (argc - first != 2)
		return ctl_usage(cmd);
	const char *name = argv[first + 1];

	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	struct arena *a = arena_new(0);

	if (store_mailbox_status(u, name, a, &info, &err) < 0)
		goto fail;
	if (info.messages > 0 && !ctl->yes) {
		char question[512];

		if (!isatty(STDIN_FILENO)) {
			ctl_error("%s: mailbox %s holds %u messages: add --yes to delete it",
				  user.name, info.name, info.messages);
			arena_free(&a);
			store_user_close(&u);
			return EX_USAGE;
		}
		snprintf(question, sizeof(question),
			 "Delete mailbox %s of %s with its %u messages?", info.name, user.name,
			 info.messages);
		if (!confirm(question)) {
			if (ctl->json) {
				ctl_json_begin_object(NULL);
				ctl_json_string("user", user.name);
				ctl_json_string("mailbox", info.name);
				ctl_json_bool("deleted", false);
				ctl_json_uint("messages", info.messages);
				ctl_json_end_object();
				ctl_json_finish();
			} else {
				printf("kept mailbox %s of %s\n", info.name, user.name);
			}
			arena_free(&a);
			store_user_close(&u);
			return EX_OK;
		}
	}
	if (store_mailbox_delete(u, info.name, &err) < 0 ||
	    store_mailbox_subscribe(u, info.name, false, &err) < 0)
		goto fail;
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_string("mailbox", info.name);
		ctl_json_bool("deleted", true);
		ctl_json_uint("messages", info.messages);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("deleted mailbox %s of %s (%u messages)\n", info.name, user.name,
		       info.messages);
	}
	arena_free(&a);
	store_user_close(&u);
	return EX_OK;
fail:
	ctl_error("%s: cannot delete mailbox %s: %s", user.name, name, err.msg);
	arena_free(&a);
	store_user_close(&u);
	return ctl_store_exit(&err);
}

/* ----------------------------------------------------------- rename */

/* Move the subscriptions of from and its children to the new names. */
static int move_subscriptions(struct store_user *u, const char *from, const char *to,
			      struct store_error *err)
{
	struct arena *a = arena_new(0);
	struct store_mailbox_info *list;
	size_t count, flen = strlen(from);
	int ret = 0;

	if (strcasecmp(from, "INBOX") == 0 || store_mailbox_list(u, a, &list, &count, err) < 0) {
		arena_free(&a);
		return strcasecmp(from, "INBOX") == 0 ? 0 : -1;
	}
	for (size_t i = 0; i < count && ret == 0; i++) {
		const char *name = list[i].name;

		if (!list[i].subscribed || strncmp(name, from, flen) != 0 ||
		    (name[flen] != '\0' && name[flen] != STORE_SEP))
			continue;
		char *newname = arena_printf(a, "%s%s", to, name + flen);

		ret = store_mailbox_subscribe(u, name, false, err);
		if (ret == 0)
			ret = store_mailbox_subscribe(u, newname, true, err);
	}
	arena_free(&a);
	return ret;
}

static int mailbox_rename(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = find_cmd("mailbox rename");
	int first = parse_options(cmd, argc, argv, NULL, "", NULL, NULL);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	int rc;

	if (first < 0)
		return EX_USAGE;
	if (argc - first != 3)
		return ctl_usage(cmd);
	const char *from = argv[first + 1], *to = argv[first + 2];

	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	if (store_mailbox_rename(u, from, to, &err) < 0) {
		ctl_error("%s: cannot rename mailbox %s to %s: %s", user.name, from, to, err.msg);
		store_user_close(&u);
		return ctl_store_exit(&err);
	}
	if (move_subscriptions(u, from, to, &err) < 0)
		ctl_error("%s: renamed, but the subscriptions were not moved: %s", user.name,
			  err.msg);
	store_user_close(&u);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_string("from", from);
		ctl_json_string("to", to);
		ctl_json_bool("renamed", true);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("renamed mailbox %s of %s to %s\n", from, user.name, to);
	}
	return EX_OK;
}

/* ----------------------------------------------------------- status */

static int mailbox_status(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = find_cmd("mailbox status");
	int first = parse_options(cmd, argc, argv, NULL, "", NULL, NULL);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	struct store_mailbox_info info;
	int rc;

	if (first < 0)
		return EX_USAGE;
	if (argc - first != 2)
		return ctl_usage(cmd);
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	struct arena *a = arena_new(0);

	if (store_mailbox_status(u, argv[first + 1], a, &info, &err) < 0) {
		ctl_error("%s: %s", user.name, err.msg);
		arena_free(&a);
		store_user_close(&u);
		return ctl_store_exit(&err);
	}
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
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
	arena_free(&a);
	store_user_close(&u);
	return EX_OK;
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
			"terminal (an answer other than y keeps it, exit 0), and otherwise\n"
			"needs --yes (exit 64 without). INBOX cannot be deleted (exit 77).",
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
