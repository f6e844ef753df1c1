/*
 * cmd-index.c — `ternctl index rebuild|check USER` and `ternctl quota
 * recalc USER`: the index of a user's mail, and the usage kept in it.
 *
 * rebuild throws the index away and builds it again from the Maildir
 * (store_user_rebuild): UIDVALIDITY, UIDs, flags and keywords come back
 * from the folders' files and tern-uidstate. It shows each mailbox's
 * counters before and after, so the administrator sees that nothing was
 * lost. UIDNEXT may grow: a rebuild continues above every UID that may
 * have been handed out (DESIGN invariant 2).
 *
 * check changes nothing (storage/check.c): it exits EX_OK when the index
 * matches the Maildir, and EX_DATAERR with one line per problem when not.
 * The fix for any problem it reports is `index rebuild` (or just using the
 * mailbox, which syncs it).
 *
 * quota recalc syncs every folder with its files and recounts the usage.
 */
#include "ctl/ctl.h"

#include <string.h>

/* Each command takes USER and no options: the index of USER in argv, or
 * -1 after printing the usage. */
static int only_user(const struct ctl_command *cmd, int argc, char **argv)
{
	return ctl_parse_options(cmd, argc, argv, "", NULL, 1, NULL, NULL);
}

/* ---------------------------------------------------------- rebuild */

struct counts {
	const char *name;
	bool before, after;     /* present in the index before/after */
	uint32_t messages[2];
	uint32_t unseen[2];
	uint32_t uidvalidity[2];
	uint32_t uidnext[2];
};

struct snapshot {
	struct counts *list;
	size_t count;
};

/* Record the index's view of every mailbox into slot (0 before, 1 after). */
static int take_snapshot(struct store_user *u, struct arena *a, struct snapshot *snap, int slot,
			 struct store_error *err)
{
	struct store_mailbox_info *list;
	size_t count;

	if (store_mailbox_list(u, a, &list, &count, err) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (!list[i].exists)
			continue;
		struct counts *c = NULL;

		for (size_t j = 0; j < snap->count && c == NULL; j++) {
			if (strcmp(snap->list[j].name, list[i].name) == 0)
				c = &snap->list[j];
		}
		if (c == NULL) {
			struct counts *n = arena_alloc(a, (snap->count + 1) * sizeof(*n));

			if (snap->count > 0)
				memcpy(n, snap->list, snap->count * sizeof(*n));
			snap->list = n;
			c = &snap->list[snap->count++];
			c->name = list[i].name;
		}
		if (slot == 0)
			c->before = true;
		else
			c->after = true;
		c->messages[slot] = list[i].messages;
		c->unseen[slot] = list[i].unseen;
		c->uidvalidity[slot] = list[i].uidvalidity;
		c->uidnext[slot] = list[i].uidnext;
	}
	return 0;
}

static void json_side(const char *key, const struct counts *c, int slot, bool present)
{
	if (!present) {
		ctl_json_string(key, NULL);
		return;
	}
	ctl_json_begin_object(key);
	ctl_json_uint("messages", c->messages[slot]);
	ctl_json_uint("unseen", c->unseen[slot]);
	ctl_json_uint("uidvalidity", c->uidvalidity[slot]);
	ctl_json_uint("uidnext", c->uidnext[slot]);
	ctl_json_end_object();
}

static int index_rebuild(struct ctl *ctl, int argc, char **argv)
{
	int first = only_user(&ctl_index_commands[0], argc, argv);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	struct snapshot snap = { 0 };
	int rc;

	if (first < 0)
		return EX_USAGE;
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	struct arena *a = arena_new(0);

	/* Before: what the index holds now (without syncing it first). */
	if (take_snapshot(u, a, &snap, 0, &err) < 0)
		goto fail;
	store_user_close(&u);
	if (store_user_rebuild(user.mail_dir, &err) < 0) {
		ctl_error("%s: the rebuild failed: %s", user.name, err.msg);
		arena_free(&a);
		return ctl_store_exit(&err);
	}
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK) {
		arena_free(&a);
		return rc;
	}
	if (take_snapshot(u, a, &snap, 1, &err) < 0)
		goto fail;
	store_user_close(&u);

	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_begin_array("mailboxes");
		for (size_t i = 0; i < snap.count; i++) {
			const struct counts *c = &snap.list[i];

			ctl_json_begin_object(NULL);
			ctl_json_string("name", c->name);
			json_side("before", c, 0, c->before);
			json_side("after", c, 1, c->after);
			ctl_json_end_object();
		}
		ctl_json_end_array();
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("rebuilt the index of %s\n", user.name);
		printf("%-24s %-20s %-26s %s\n", "MAILBOX", "MESSAGES", "UIDVALIDITY", "UIDNEXT");
		for (size_t i = 0; i < snap.count; i++) {
			const struct counts *c = &snap.list[i];
			char before[3][16] = { "-", "-", "-" }, after[3][16] = { "-", "-", "-" };

			if (c->before) {
				snprintf(before[0], 16, "%u", c->messages[0]);
				snprintf(before[1], 16, "%u", c->uidvalidity[0]);
				snprintf(before[2], 16, "%u", c->uidnext[0]);
			}
			if (c->after) {
				snprintf(after[0], 16, "%u", c->messages[1]);
				snprintf(after[1], 16, "%u", c->uidvalidity[1]);
				snprintf(after[2], 16, "%u", c->uidnext[1]);
			}
			printf("%-24s %-8s -> %-8s %-10s -> %-10s %s -> %s\n", c->name,
			       before[0], after[0], before[1], after[1], before[2], after[2]);
		}
	}
	arena_free(&a);
	return EX_OK;
fail:
	ctl_error("%s: %s", user.name, err.msg);
	arena_free(&a);
	store_user_close(&u);
	return ctl_store_exit(&err);
}

/* ------------------------------------------------------------ check */

static const char *kind_name(enum store_check_kind kind)
{
	switch (kind) {
	case STORE_CHECK_NO_INDEX: return "no-index";
	case STORE_CHECK_FOLDER_UNINDEXED: return "folder-not-indexed";
	case STORE_CHECK_FOLDER_MISSING: return "folder-missing";
	case STORE_CHECK_FILE_UNINDEXED: return "file-not-indexed";
	case STORE_CHECK_FILE_MISSING: return "file-missing";
	case STORE_CHECK_FILE_RENAMED: return "file-renamed";
	case STORE_CHECK_DUPLICATE_UID: return "duplicate-uid";
	case STORE_CHECK_UID: return "uid";
	case STORE_CHECK_FLAGS: return "flags";
	case STORE_CHECK_SIZE: return "size";
	case STORE_CHECK_UIDSTATE: return "uidstate";
	case STORE_CHECK_USAGE: return "usage";
	}
	return "unknown";
}

struct check_out {
	struct ctl *ctl;
	const char *user;
};

static void check_problem_cb(const struct store_check_problem *p, void *data)
{
	struct check_out *out = data;

	if (out->ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("mailbox", p->mailbox);
		ctl_json_string("kind", kind_name(p->kind));
		ctl_json_string("detail", p->detail);
		ctl_json_end_object();
	} else {
		printf("%s: %s: %s\n", p->mailbox != NULL ? p->mailbox : out->user,
		       kind_name(p->kind), p->detail);
	}
}

static int index_check(struct ctl *ctl, int argc, char **argv)
{
	int first = only_user(&ctl_index_commands[1], argc, argv);
	struct auth_user user;
	struct store_error err = { 0 };
	struct store_check_summary sum;
	int rc;

	if (first < 0)
		return EX_USAGE;
	/* Only the lookup: opening the store could sync or rebuild. */
	rc = ctl_lookup_user(ctl, argv[first], &user);
	if (rc != EX_OK)
		return rc;

	struct check_out out = { .ctl = ctl, .user = user.name };

	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_begin_array("problems");
	}
	int ret = store_user_check(user.mail_dir, check_problem_cb, &out, &sum, &err);

	if (ret < 0 && err.code == STORE_ERR_NOTFOUND) {
		/* No mail yet: nothing can disagree. */
		memset(&sum, 0, sizeof(sum));
		ret = 0;
	}
	if (ctl->json) {
		ctl_json_end_array();
		if (ret == 0) {
			ctl_json_bool("consistent", sum.problems == 0);
			ctl_json_uint("mailboxes", sum.mailboxes);
			ctl_json_uint("messages", sum.messages);
			ctl_json_uint("files", sum.files);
		} else {
			ctl_json_string("error", err.msg);
		}
		ctl_json_end_object();
		ctl_json_finish();
	}
	if (ret < 0) {
		ctl_error("%s: the check failed: %s", user.name, err.msg);
		return ctl_store_exit(&err);
	}
	if (!ctl->json) {
		printf("%s: %u mailboxes, %llu messages in the index, %llu files: %s",
		       user.name, sum.mailboxes, (unsigned long long)sum.messages,
		       (unsigned long long)sum.files,
		       sum.problems == 0 ? "consistent\n" : "");
		if (sum.problems > 0)
			printf("%llu problems (`ternctl index rebuild %s` repairs them)\n",
			       (unsigned long long)sum.problems, user.name);
	}
	return sum.problems == 0 ? EX_OK : EX_DATAERR;
}

/* ----------------------------------------------------------- recalc */

static int quota_recalc(struct ctl *ctl, int argc, char **argv)
{
	int first = only_user(&ctl_index_commands[2], argc, argv);
	struct auth_user user;
	struct store_user *u;
	struct store_error err = { 0 };
	uint64_t old_bytes, old_messages, bytes, messages;
	int rc;

	if (first < 0)
		return EX_USAGE;
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		return rc;
	if (store_user_usage_recalc(u, &old_bytes, &old_messages, &bytes, &messages, &err) < 0) {
		ctl_error("%s: %s", user.name, err.msg);
		store_user_close(&u);
		return ctl_store_exit(&err);
	}
	store_user_close(&u);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_begin_object("old");
		ctl_json_uint("bytes", old_bytes);
		ctl_json_uint("messages", old_messages);
		ctl_json_end_object();
		ctl_json_begin_object("new");
		ctl_json_uint("bytes", bytes);
		ctl_json_uint("messages", messages);
		ctl_json_end_object();
		ctl_json_begin_object("limit");
		ctl_json_uint("bytes", user.quota_bytes);
		ctl_json_uint("messages", user.quota_messages);
		ctl_json_end_object();
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("usage of %s recalculated\n", user.name);
		printf("bytes:    %llu -> %llu", (unsigned long long)old_bytes,
		       (unsigned long long)bytes);
		if (user.quota_bytes != 0)
			printf(" (limit %llu)", (unsigned long long)user.quota_bytes);
		printf("\nmessages: %llu -> %llu", (unsigned long long)old_messages,
		       (unsigned long long)messages);
		if (user.quota_messages != 0)
			printf(" (limit %llu)", (unsigned long long)user.quota_messages);
		printf("\n");
	}
	return EX_OK;
}

const struct ctl_command ctl_index_commands[] = {
	{
		.name = "index rebuild",
		.usage = "USER",
		.summary = "rebuild a user's index from the Maildir",
		.help = "Replaces the index of USER with one built from the Maildir alone\n"
			"(the old one is kept as index.sqlite.corrupt-<time>). UIDVALIDITY,\n"
			"UIDs, flags, keywords and subscriptions are kept; UIDNEXT may grow.\n"
			"Shows each mailbox's messages, UIDVALIDITY and UIDNEXT before and after.",
		.run = index_rebuild,
	},
	{
		.name = "index check",
		.usage = "USER",
		.summary = "compare a user's index with the Maildir",
		.help = "Compares the index of USER with the Maildir without changing\n"
			"either: folders missing on either side, files the index does not know,\n"
			"rows whose file is gone, duplicate UIDs, flags and sizes, the folders'\n"
			"tern-uidstate and the usage totals. Exits 0 when they agree, 65\n"
			"(EX_DATAERR) with one line per problem when not.",
		.run = index_check,
	},
	{
		.name = "quota recalc",
		.usage = "USER",
		.summary = "recount a user's usage from the mailboxes",
		.help = "Syncs every mailbox of USER with its files, recounts the bytes\n"
			"(with CRLF line ends) and messages stored, and shows the old and new\n"
			"values with the user's limits.",
		.run = quota_recalc,
	},
	{ .name = NULL },
};
