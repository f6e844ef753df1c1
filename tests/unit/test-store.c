/*
 * Unit tests for storage/: a user's Maildir and index on a temporary
 * directory — mailboxes, saving and reading, flags, expunge, changes made
 * by other programs, rebuild, corruption, quota and concurrent saves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
/* For the folder digests and the count of full reconciles (sync.c). */
#include "storage/storage-private.h"
/* For the bounds on unreachable text documents (fts.c). */
#include "storage/fts-private.h"

#include <sqlite3.h>
#include <uv.h>

#include "test-util.h"

struct fixture {
	char dir[256];
	struct store_user *u;
};

static void rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_user_options opt = { .create = true };
	struct store_error err = { 0 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	strcat(f->dir, "/user");
	if (store_user_open(f->dir, &opt, &f->u, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char parent[256];

	store_user_close(&f->u);
	snprintf(parent, sizeof(parent), "%s", f->dir);
	*strrchr(parent, '/') = '\0';
	rm_rf(parent);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	struct store_user_options opt = { .create = false };
	struct store_error err = { 0 };

	store_user_close(&f->u);
	if (store_user_open(f->dir, &opt, &f->u, &err) < 0)
		fail_msg("reopen: %s", err.msg);
}

static uint32_t save(struct store_user *u, const char *mailbox, const char *body, uint32_t flags)
{
	struct store_save *s;
	struct store_error err = { 0 };
	uint32_t uidvalidity, uid;

	if (store_save_begin(u, mailbox, &s, &err) < 0)
		fail_msg("save_begin: %s", err.msg);
	store_save_set_flags(s, flags);
	/* Written in two pieces, split inside a CRLF. */
	size_t half = strlen(body) / 2;

	assert_int_equal(store_save_write(s, body, half, &err), 0);
	assert_int_equal(store_save_write(s, body + half, strlen(body) - half, &err), 0);
	if (store_save_commit(&s, &uidvalidity, &uid, &err) < 0)
		fail_msg("commit: %s", err.msg);
	assert_null(s);
	assert_true(uidvalidity != 0);
	return uid;
}

static struct store_mailbox *open_mb(struct store_user *u, const char *name)
{
	struct store_mailbox *mb;
	struct store_error err = { 0 };

	if (store_mailbox_open(u, name, &mb, &err) < 0)
		fail_msg("open %s: %s", name, err.msg);
	return mb;
}

static char *read_all(struct store_mailbox *mb, uint32_t uid)
{
	struct store_reader *r;
	struct store_error err = { 0 };
	static char out[65536];
	size_t len = 0;
	ssize_t n;

	if (store_reader_open(mb, uid, &r, &err) < 0)
		fail_msg("reader: %s", err.msg);
	while ((n = store_reader_read(r, out + len, 7)) > 0)
		len += (size_t)n;
	assert_true(n == 0);
	out[len] = '\0';
	store_reader_close(&r);
	return out;
}

/* Names of the files in a folder's subdirectory ("new" or "cur"). */
static int list_files(const char *dir, char names[][256], int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < max) {
		if (e->d_name[0] != '.')
			snprintf(names[n++], 256, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static void test_new_user_layout(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox_info *list;
	size_t count;
	struct store_error err = { 0 };
	struct arena *a = arena_new(0);
	char path[512];
	struct stat st;

	assert_int_equal(store_mailbox_list(f->u, a, &list, &count, &err), 0);
	assert_int_equal(count, 6);
	static const char *const names[] = { "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash" };

	for (size_t i = 0; i < count; i++) {
		assert_string_equal(list[i].name, names[i]);
		assert_true(list[i].exists);
		assert_true(list[i].uidvalidity != 0);
		assert_int_equal(list[i].uidnext, 1);
	}
	assert_int_equal(list[4].special_use, STORE_USE_SENT);
	assert_int_equal(list[5].special_use, STORE_USE_TRASH);
	snprintf(path, sizeof(path), "%s/Maildir/.Sent/maildirfolder", f->dir);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/Maildir/tern-uidstate", f->dir);
	assert_int_equal(stat(path, &st), 0);
	arena_free(&a);
}

static void test_save_and_read(void **state)
{
	struct fixture *f = *state;
	const char *body = "From: a@example.org\r\nSubject: hi\r\n\r\nline one\r\nbare\rcr\r\n";
	uint32_t uid1 = save(f->u, "INBOX", body, 0);
	uint32_t uid2 = save(f->u, "INBOX", "Subject: two\n\nLF only\n", STORE_FLAG_SEEN);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	char path[512], names[4][256];

	assert_int_equal(uid1, 1);
	assert_int_equal(uid2, 2);
	assert_int_equal(store_mailbox_count(mb), 2);
	assert_int_equal(store_mailbox_uidnext(mb), 3);
	const struct store_msg *m = store_mailbox_msg(mb, 1);

	assert_int_equal(m->uid, 1);
	/* Stored with LF; sizes: on disk and with CRLF. */
	assert_int_equal(m->vsize, strlen(body));
	assert_int_equal(m->size, strlen(body) - 5);
	assert_string_equal(read_all(mb, 1), body);
	assert_string_equal(read_all(mb, 2), "Subject: two\r\n\r\nLF only\r\n");
	assert_int_equal(store_mailbox_msg(mb, 2)->flags, STORE_FLAG_SEEN);
	assert_null(store_mailbox_msg(mb, 3));
	assert_int_equal(store_mailbox_seq(mb, 2), 2);
	assert_int_equal(store_mailbox_seq(mb, 7), 0);

	/* The first went to new/ (no flags), the second to cur/ with S. */
	snprintf(path, sizeof(path), "%s/Maildir/new", f->dir);
	assert_int_equal(list_files(path, names, 4), 1);
	assert_non_null(strstr(names[0], ",U=1"));
	assert_non_null(strstr(names[0], ",W=55"));
	snprintf(path, sizeof(path), "%s/Maildir/cur", f->dir);
	assert_int_equal(list_files(path, names, 4), 1);
	assert_non_null(strstr(names[0], ",U=2:2,S"));
	snprintf(path, sizeof(path), "%s/Maildir/tmp", f->dir);
	assert_int_equal(list_files(path, names, 4), 0);

	/* Partial reads: skip into the CRLF view. */
	struct store_reader *r;
	struct store_error err = { 0 };
	char buf[16];

	assert_int_equal(store_reader_open(mb, 2, &r, &err), 0);
	assert_int_equal(store_reader_skip(r, 12), 0);
	assert_int_equal(store_reader_read(r, buf, 4), 4);
	assert_memory_equal(buf, "\r\n\r\n", 4);
	store_reader_close(&r);
	store_mailbox_close(&mb);
}

static void test_flags_keywords_expunge(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	uint32_t uids[3];

	for (int i = 0; i < 3; i++)
		uids[i] = save(f->u, "INBOX", "Subject: x\n\nbody\n", 0);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	uint64_t m0 = store_mailbox_highestmodseq(mb);
	const char *kw[] = { "$Forwarded", "Work" };
	size_t failed = 99;

	assert_int_equal(store_mailbox_set_flags(mb, uids, 2, STORE_FLAGS_ADD,
						 STORE_FLAG_FLAGGED | STORE_FLAG_SEEN, kw, 2, 0,
						 &failed, &err), 0);
	assert_int_equal(failed, 0);
	const struct store_msg *m = store_mailbox_msg(mb, 1);

	assert_int_equal(m->flags, STORE_FLAG_FLAGGED | STORE_FLAG_SEEN);
	assert_int_equal(m->keywords, 3);
	assert_true(m->modseq > m0);
	assert_string_equal(store_mailbox_keyword(mb, 0), "$Forwarded");
	assert_string_equal(store_mailbox_keyword(mb, 1), "Work");
	uint64_t m1 = store_mailbox_highestmodseq(mb);

	/* CONDSTORE: unchanged since an older modseq fails for changed ones. */
	assert_int_equal(store_mailbox_set_flags(mb, uids, 3, STORE_FLAGS_REMOVE,
						 STORE_FLAG_SEEN, NULL, 0, m0, &failed, &err), 0);
	assert_int_equal(failed, 2);
	assert_int_equal(store_mailbox_msg(mb, 1)->flags, STORE_FLAG_FLAGGED | STORE_FLAG_SEEN);

	/* The file names carry the flags and keyword letters. */
	char path[512], names[8][256];

	snprintf(path, sizeof(path), "%s/Maildir/cur", f->dir);
	int n = list_files(path, names, 8);
	int with_kw = 0;

	for (int i = 0; i < n; i++)
		with_kw += strstr(names[i], ":2,FSab") != NULL;
	assert_int_equal(with_kw, 2);

	uint64_t before_expunge = store_mailbox_highestmodseq(mb);

	assert_int_equal(store_mailbox_expunge(mb, &uids[1], 1, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 2);
	/* QRESYNC: what vanished since a modseq. */
	struct arena *a = arena_new(0);
	uint32_t *vanished;
	size_t nvanished;
	bool complete;

	assert_int_equal(store_mailbox_expunged_since(mb, before_expunge, a, &vanished,
						      &nvanished, &complete, &err), 0);
	assert_int_equal(nvanished, 1);
	assert_int_equal(vanished[0], uids[1]);
	assert_true(complete);
	assert_int_equal(store_mailbox_expunged_since(mb, store_mailbox_highestmodseq(mb), a,
						      &vanished, &nvanished, &complete, &err), 0);
	assert_int_equal(nvanished, 0);
	arena_free(&a);
	assert_int_equal(store_mailbox_seq(mb, uids[2]), 2);
	assert_true(store_mailbox_highestmodseq(mb) > m1);
	store_mailbox_close(&mb);

	/* Another session sees the same. */
	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_count(mb), 2);
	assert_int_equal(store_mailbox_msg(mb, 1)->keywords, 3);
	store_mailbox_close(&mb);
}

static void test_mailbox_operations(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	struct arena *a = arena_new(0);
	struct store_mailbox_info *list, info;
	size_t count;

	assert_int_equal(store_mailbox_create(f->u, "Projects", 0, &err), 0);
	assert_int_equal(store_mailbox_create(f->u, "Projects/Tern", 0, &err), 0);
	assert_int_equal(store_mailbox_create(f->u, "Entwürfe", 0, &err), 0);
	assert_int_equal(store_mailbox_create(f->u, "Projects", 0, &err), -1);
	assert_int_equal(err.code, STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_create(f->u, "../escape", 0, &err), -1);
	assert_int_equal(err.code, STORE_ERR_BADNAME);
	save(f->u, "Projects/Tern", "Subject: t\n\nx\n", 0);

	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/Maildir/.Entw&APw-rfe/cur", f->dir);
	assert_int_equal(stat(path, &st), 0);

	assert_int_equal(store_mailbox_rename(f->u, "Projects", "Old/Projects", &err), 0);
	assert_int_equal(store_mailbox_status(f->u, "Old/Projects/Tern", a, &info, &err), 0);
	assert_int_equal(info.messages, 1);
	assert_int_equal(store_mailbox_status(f->u, "Projects/Tern", a, &info, &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	assert_int_equal(store_mailbox_rename(f->u, "Old", "Old/x", &err), -1);

	/* Renaming INBOX moves its messages and leaves it empty. */
	save(f->u, "INBOX", "Subject: i\n\ni\n", 0);
	assert_int_equal(store_mailbox_rename(f->u, "inbox", "Old Mail", &err), 0);
	assert_int_equal(store_mailbox_status(f->u, "INBOX", a, &info, &err), 0);
	assert_int_equal(info.messages, 0);
	assert_int_equal(store_mailbox_status(f->u, "Old Mail", a, &info, &err), 0);
	assert_int_equal(info.messages, 1);

	assert_int_equal(store_mailbox_subscribe(f->u, "Old/Projects", true, &err), 0);
	assert_int_equal(store_mailbox_subscribe(f->u, "Gone", true, &err), 0);
	assert_int_equal(store_mailbox_delete(f->u, "INBOX", &err), -1);
	assert_int_equal(err.code, STORE_ERR_PERM);
	assert_int_equal(store_mailbox_delete(f->u, "Old/Projects/Tern", &err), 0);
	assert_int_equal(store_mailbox_delete(f->u, "Old/Projects/Tern", &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);

	assert_int_equal(store_mailbox_list(f->u, a, &list, &count, &err), 0);
	bool saw_gone = false, saw_projects = false;

	for (size_t i = 0; i < count; i++) {
		if (strcmp(list[i].name, "Gone") == 0) {
			saw_gone = true;
			assert_false(list[i].exists);
			assert_true(list[i].subscribed);
		}
		if (strcmp(list[i].name, "Old/Projects") == 0) {
			saw_projects = true;
			assert_true(list[i].subscribed);
			assert_false(list[i].has_children);
		}
		assert_null(strstr(list[i].name, "Tern"));
	}
	assert_true(saw_gone && saw_projects);
	arena_free(&a);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_changes_by_other_programs(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	char path[4096], path2[4096], names[8][256];

	uint32_t uid = save(f->u, "INBOX", "Subject: mine\n\nx\n", 0);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	/* Another MDA drops a file into new/. */
	snprintf(path, sizeof(path), "%s/Maildir/new/1700000000.M1P2.otherhost", f->dir);
	write_file(path, "Subject: dropped\n\nhello\n");
	/* Directory times within one tick are not trusted: no wait needed. */
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 2);
	const struct store_msg *m = store_mailbox_msg(mb, 2);

	assert_int_equal(m->uid, uid + 1);
	assert_int_equal(m->vsize, 27);
	assert_string_equal(read_all(mb, m->uid), "Subject: dropped\r\n\r\nhello\r\n");
	/* It got a name with its UID. */
	snprintf(path, sizeof(path), "%s/Maildir/new", f->dir);
	int n = list_files(path, names, 8);
	int found = 0;

	for (int i = 0; i < n; i++)
		found += strncmp(names[i], "1700000000.M1P2.otherhost,S=24,W=27,U=", 38) == 0;
	assert_int_equal(found, 1);

	/* mutt marks our message read and moves it to cur/. */
	for (int i = 0; i < n; i++) {
		if (strstr(names[i], ",U=1") != NULL) {
			snprintf(path, sizeof(path), "%s/Maildir/new/%s", f->dir, names[i]);
			snprintf(path2, sizeof(path2), "%s/Maildir/cur/%s:2,RS", f->dir, names[i]);
			assert_int_equal(rename(path, path2), 0);
		}
	}
	uint64_t before = store_mailbox_highestmodseq(mb);

	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	m = store_mailbox_msg(mb, 1);
	assert_int_equal(m->flags, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED);
	assert_true(m->modseq > before);

	/* And deletes it. */
	assert_int_equal(unlink(path2), 0);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 1);
	assert_int_equal(store_mailbox_msg(mb, 1)->uid, uid + 1);
	store_mailbox_close(&mb);

	/* A folder made by another program is listed. */
	snprintf(path, sizeof(path), "%s/Maildir/.Lists", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Maildir/.Lists/cur", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Maildir/.Lists/new", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Maildir/.Lists/tmp", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	mb = open_mb(f->u, "Lists");
	assert_int_equal(store_mailbox_count(mb), 0);
	store_mailbox_close(&mb);
}

/* Entries that only look like messages: a directory and a symbolic link
 * (to a file outside the user's directory) named like message files. The
 * folder stays usable, they are not messages, and a rebuild agrees. */
static void test_non_files_with_message_names(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	char path[4096], outside[4096];

	save(f->u, "INBOX", "Subject: real\n\nx\n", 0);
	snprintf(path, sizeof(path), "%s/Maildir/cur/1700000001.M1P1.host:2,S", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	write_file(outside, "Subject: not yours\n\nsecret\n");
	snprintf(path, sizeof(path), "%s/Maildir/new/1700000002.M2P2.host", f->dir);
	assert_int_equal(symlink(outside, path), 0);

	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 1);
	assert_string_equal(read_all(mb, store_mailbox_msg(mb, 1)->uid), "Subject: real\r\n\r\nx\r\n");
	store_mailbox_close(&mb);

	store_user_close(&f->u);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_count(mb), 1);
	store_mailbox_close(&mb);
}

static void index_path(struct fixture *f, char *path, size_t size)
{
	snprintf(path, size, "%s/index.sqlite", f->dir);
}

/*
 * Saving takes its input in whatever pieces it arrives, and stores runs
 * between CRs at a time: random texts of CR, LF and letters (one longer
 * than the save buffer), written in random pieces, are stored with CR LF
 * as LF (a bare CR kept), and their sizes and CRLF view are those of a
 * byte-by-byte model.
 */
static void test_save_line_ends_any_write_size(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	unsigned seed = 7;
	const size_t lens[] = { 1, 2, 3, 17, 64, 200, 70000 };

	for (size_t round = 0; round < 40; round++) {
		size_t len = lens[round % N_ELEMENTS(lens)];
		char *in = malloc(len), *stored = malloc(len), *view = malloc(2 * len + 1);
		size_t ns = 0, nv = 0;

		/* Mostly letters in the long text, so that runs are long. */
		for (size_t i = 0; i < len; i++) {
			unsigned r = (unsigned)rand_r(&seed) % (len > 1000 ? 40 : 4);

			in[i] = r == 0 ? '\r' : r == 1 ? '\n' : 'a';
		}
		/* The model: CR LF stored as LF, a bare CR kept; the CRLF view
		 * adds a CR before each LF not already after one. */
		for (size_t i = 0; i < len; i++) {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				continue;
			stored[ns++] = in[i];
		}
		for (size_t i = 0; i < ns; i++) {
			if (stored[i] == '\n' && (i == 0 || stored[i - 1] != '\r'))
				view[nv++] = '\r';
			view[nv++] = stored[i];
		}
		view[nv] = '\0';

		struct store_save *sv;
		uint32_t uidvalidity, uid;

		assert_int_equal(store_save_begin(f->u, "INBOX", &sv, &err), 0);
		for (size_t off = 0; off < len;) {
			size_t piece = 1 + (size_t)rand_r(&seed) % (len > 1000 ? 9000 : 5);

			if (piece > len - off)
				piece = len - off;
			assert_int_equal(store_save_write(sv, in + off, piece, &err), 0);
			off += piece;
		}
		assert_int_equal(store_save_commit(&sv, &uidvalidity, &uid, &err), 0);

		struct store_mailbox *mb = open_mb(f->u, "INBOX");
		const struct store_msg *m = store_mailbox_msg(mb, store_mailbox_seq(mb, uid));

		assert_int_equal(m->size, ns);
		assert_int_equal(m->vsize, nv);
		struct store_reader *r;
		char *got = malloc(nv + 1);
		size_t n = 0;
		ssize_t k;

		assert_int_equal(store_reader_open(mb, uid, &r, &err), 0);
		while ((k = store_reader_read(r, got + n, nv + 1 - n)) > 0)
			n += (size_t)k;
		assert_true(k == 0);
		store_reader_close(&r);
		assert_int_equal(n, nv);
		assert_memory_equal(got, view, nv);
		free(got);
		store_mailbox_close(&mb);
		free(in);
		free(stored);
		free(view);
	}
}

/* The CRLF view of mixed line ends is the same whatever the read sizes:
 * LF becomes CR LF, CR LF and a bare CR stay as they are. (Saving stores
 * CR LF as LF, so "\r\r\n" is stored as "\r\n" and read back so.) */
static void test_reader_line_ends_any_read_size(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	const char *stored = "Subject: ends\r\n\nlf\ncrlf\r\nbare\rcr\n\n\r\r\n\nend";
	const char *want = "Subject: ends\r\n\r\nlf\r\ncrlf\r\nbare\rcr\r\n\r\n\r\n\r\nend";
	uint32_t uid = save(f->u, "INBOX", stored, 0);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	const size_t sizes[] = { 1, 2, 3, 7, 4096 };

	for (size_t k = 0; k < N_ELEMENTS(sizes); k++) {
		struct store_reader *r;
		char out[256];
		size_t n = 0;
		ssize_t got;

		assert_int_equal(store_reader_open(mb, uid, &r, &err), 0);
		while ((got = store_reader_read(r, out + n, sizes[k] < sizeof(out) - n ?
							sizes[k] : sizeof(out) - n)) > 0)
			n += (size_t)got;
		assert_true(got == 0);
		store_reader_close(&r);
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
	store_mailbox_close(&mb);
}

/*
 * A save cut short by a crash after its link and before its commit leaves
 * a whole file with a UID the index never handed out; the next save may
 * hand that UID out again. If the index is then lost before a sync adopts
 * the orphan, the rebuild must keep the UID for the acknowledged message
 * (the newer one), not for the orphan.
 */
static void test_rebuild_prefers_acknowledged_save(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	uint32_t first = save(f->u, "INBOX", "Subject: first\n\nx\n", 0);
	/* The orphan: an older delivery time, the UID the index gives next. */
	snprintf(path, sizeof(path), "%s/Maildir/new/1600000000.M1P1.host,S=19,W=22,U=%u",
		 f->dir, first + 1);
	write_file(path, "Subject: orphan\n\nx\n");
	uint32_t acked = save(f->u, "INBOX", "Subject: acked\n\nx\n", 0);

	store_user_close(&f->u);
	index_path(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	strcat(path, "-wal");
	unlink(path);
	reopen(f);

	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), 3);
	assert_int_not_equal(store_mailbox_seq(mb, acked), 0);
	assert_string_equal(read_all(mb, acked), "Subject: acked\r\n\r\nx\r\n");
	assert_string_equal(read_all(mb, first), "Subject: first\r\n\r\nx\r\n");
	store_mailbox_close(&mb);
}

static void test_rebuild_keeps_uids_and_flags(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	char path[512];
	const char *kw[] = { "Important" };
	uint32_t uids[4];

	for (int i = 0; i < 4; i++)
		uids[i] = save(f->u, "INBOX", "Subject: r\n\nbody\n", 0);
	assert_int_equal(store_mailbox_create(f->u, "Keep", 0, &err), 0);
	uint32_t kuid = save(f->u, "Keep", "Subject: k\n\nk\n", STORE_FLAG_DRAFT);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	uint32_t uidvalidity = store_mailbox_uidvalidity(mb);

	assert_int_equal(store_mailbox_set_flags(mb, &uids[1], 1, STORE_FLAGS_ADD,
						 STORE_FLAG_FLAGGED, kw, 1, 0, NULL, &err), 0);
	/* The highest UID is expunged: it must never come back. */
	assert_int_equal(store_mailbox_expunge(mb, &uids[3], 1, &err), 0);
	uint64_t modseq = store_mailbox_highestmodseq(mb);

	store_mailbox_close(&mb);
	assert_int_equal(store_mailbox_subscribe(f->u, "Keep", true, &err), 0);

	/* The index deleted while nothing runs. */
	store_user_close(&f->u);
	index_path(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	strcat(path, "-wal");
	unlink(path);
	reopen(f);

	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_uidvalidity(mb), uidvalidity);
	assert_int_equal(store_mailbox_count(mb), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_mailbox_msg(mb, (uint32_t)i + 1)->uid, uids[i]);
	assert_int_equal(store_mailbox_msg(mb, 2)->flags, STORE_FLAG_FLAGGED);
	assert_int_equal(store_mailbox_msg(mb, 2)->keywords, 1);
	assert_string_equal(store_mailbox_keyword(mb, 0), "Important");
	/* Neither UIDs nor modseqs go back. */
	assert_true(store_mailbox_uidnext(mb) > uids[3]);
	assert_true(store_mailbox_highestmodseq(mb) >= modseq);
	/* The expunge history before the rebuild is gone, and says so. */
	struct arena *ar = arena_new(0);
	uint32_t *vanished;
	size_t nvanished;
	bool complete = true;

	assert_int_equal(store_mailbox_expunged_since(mb, 1, ar, &vanished, &nvanished,
						      &complete, &err), 0);
	assert_false(complete);
	arena_free(&ar);
	store_mailbox_close(&mb);
	uint32_t next = save(f->u, "INBOX", "Subject: after\n\nx\n", 0);

	assert_true(next > uids[3]);
	mb = open_mb(f->u, "Keep");
	assert_int_equal(store_mailbox_msg(mb, 1)->uid, kuid);
	assert_int_equal(store_mailbox_msg(mb, 1)->flags, STORE_FLAG_DRAFT);
	store_mailbox_close(&mb);

	struct arena *a = arena_new(0);
	struct store_mailbox_info *list;
	size_t count;
	bool subscribed = false;

	assert_int_equal(store_mailbox_list(f->u, a, &list, &count, &err), 0);
	for (size_t i = 0; i < count; i++)
		subscribed |= strcmp(list[i].name, "Keep") == 0 && list[i].subscribed;
	assert_true(subscribed);
	arena_free(&a);

	/* A view open while the index is replaced keeps working. */
	mb = open_mb(f->u, "INBOX");
	struct store_user *other;
	struct store_user_options ropt = { .create = false };

	index_path(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_user_open(f->dir, &ropt, &other, &err), 0);
	store_user_close(&other);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 4);
	assert_int_equal(store_mailbox_msg(mb, 2)->uid, uids[1]);
	assert_int_equal(store_mailbox_msg(mb, 2)->flags, STORE_FLAG_FLAGGED);
	store_mailbox_close(&mb);

	/* ternctl index rebuild: the same result. */
	store_user_close(&f->u);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_count(mb), 4);
	assert_int_equal(store_mailbox_msg(mb, 4)->uid, next);
	store_mailbox_close(&mb);
}

static void test_corrupt_index_detected(void **state)
{
	struct fixture *f = *state;
	char path[512];
	uint32_t uid = save(f->u, "INBOX", "Subject: c\n\nc\n", 0);

	store_user_close(&f->u);
	index_path(f, path, sizeof(path));
	/* The WAL is kept after close and would cover the damaged pages: take
	 * it away, so only the damaged main file is left. */
	char wal[600];

	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	/* Overwrite the first pages (header included). */
	int fd = open(path, O_WRONLY);
	char junk[8192];

	assert_true(fd >= 0);
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	reopen(f);

	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), 1);
	assert_int_equal(store_mailbox_msg(mb, 1)->uid, uid);
	store_mailbox_close(&mb);
	/* The damaged file was kept aside. */
	DIR *d = opendir(f->dir);
	struct dirent *e;
	bool aside = false;

	while ((e = readdir(d)) != NULL)
		aside |= strncmp(e->d_name, "index.sqlite.corrupt-", 21) == 0;
	closedir(d);
	assert_true(aside);
}

static void test_quota(void **state)
{
	struct fixture *f = *state;
	struct store_quota q = { .max_bytes = 100, .max_messages = 0 };
	struct store_user_options opt = { .create = false, .quota = &q };
	struct store_error err = { 0 };
	struct store_save *s;
	uint32_t uv, uid;
	char body[61];

	store_user_close(&f->u);
	assert_int_equal(store_user_open(f->dir, &opt, &f->u, &err), 0);
	memset(body, 'a', 60);
	body[60] = '\0';
	save(f->u, "INBOX", body, 0);
	assert_int_equal(store_save_begin(f->u, "INBOX", &s, &err), 0);
	assert_int_equal(store_save_write(s, body, 60, &err), 0);
	assert_int_equal(store_save_commit(&s, &uv, &uid, &err), -1);
	assert_int_equal(err.code, STORE_ERR_QUOTA);

	uint64_t bytes, msgs;

	assert_int_equal(store_user_usage(f->u, &bytes, &msgs, &err), 0);
	assert_int_equal(bytes, 60);
	assert_int_equal(msgs, 1);
	/* Nothing of the refused message is left behind. */
	char path[512], names[4][256];

	snprintf(path, sizeof(path), "%s/Maildir/tmp", f->dir);
	assert_int_equal(list_files(path, names, 4), 0);
	snprintf(path, sizeof(path), "%s/Maildir/new", f->dir);
	assert_int_equal(list_files(path, names, 4), 1);
}

static void test_copy_and_move(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	const char *kw[] = { "Project" };
	uint32_t uids[3], dest[3], uidvalidity;
	struct stat st1, st2;
	char path[4096], names[8][256];

	for (int i = 0; i < 3; i++)
		uids[i] = save(f->u, "INBOX", "Subject: c\n\ncopy me\n", STORE_FLAG_SEEN);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_set_flags(mb, uids, 1, STORE_FLAGS_ADD, 0, kw, 1, 0,
						 NULL, &err), 0);
	/* A UID that does not exist is skipped (0). */
	uint32_t wanted[3] = { uids[0], 999, uids[1] };

	assert_int_equal(store_mailbox_copy(mb, wanted, 3, "Archive", false, &uidvalidity, dest,
					    &err), 0);
	assert_int_equal(dest[0], 1);
	assert_int_equal(dest[1], 0);
	assert_int_equal(dest[2], 2);
	assert_int_equal(store_mailbox_count(mb), 3);
	struct store_mailbox *ar = open_mb(f->u, "Archive");

	assert_int_equal(store_mailbox_uidvalidity(ar), uidvalidity);
	assert_int_equal(store_mailbox_count(ar), 2);
	assert_int_equal(store_mailbox_msg(ar, 1)->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_msg(ar, 1)->keywords, 1);
	assert_string_equal(store_mailbox_keyword(ar, 0), "Project");
	assert_string_equal(read_all(ar, 1), "Subject: c\r\n\r\ncopy me\r\n");
	/* A hard link: one inode, two names. */
	snprintf(path, sizeof(path), "%s/Maildir/.Archive/cur", f->dir);
	assert_int_equal(list_files(path, names, 8), 2);
	snprintf(path, sizeof(path), "%s/Maildir/.Archive/cur/%s", f->dir, names[0]);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(st1.st_nlink, 2);

	/* Move: gone from the source with a modseq, present in the target. */
	uint64_t before = store_mailbox_highestmodseq(mb);

	assert_int_equal(store_mailbox_copy(mb, &uids[2], 1, "Trash", true, &uidvalidity, dest,
					    &err), 0);
	assert_int_equal(dest[0], 1);
	assert_int_equal(store_mailbox_count(mb), 2);
	assert_true(store_mailbox_highestmodseq(mb) > before);
	struct store_mailbox *tr = open_mb(f->u, "Trash");

	assert_int_equal(store_mailbox_count(tr), 1);
	snprintf(path, sizeof(path), "%s/Maildir/.Trash/cur", f->dir);
	assert_int_equal(list_files(path, names, 8), 1);
	snprintf(path, sizeof(path), "%s/Maildir/.Trash/cur/%s", f->dir, names[0]);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_nlink, 1);
	assert_int_equal(store_mailbox_copy(mb, uids, 1, "Nowhere", false, &uidvalidity, dest,
					    &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);

	/* Usage: 3 in INBOX... 2 left, 2 copies, 1 moved. */
	uint64_t bytes, msgs;

	assert_int_equal(store_user_usage(f->u, &bytes, &msgs, &err), 0);
	assert_int_equal(msgs, 5);
	store_mailbox_close(&tr);
	store_mailbox_close(&ar);
	store_mailbox_close(&mb);
}

/* A keyword another session made after this view was loaded: a copy or
 * move from this view keeps it. */
static void test_copy_keyword_made_since_view(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	const char *kw[] = { "Late" };
	uint32_t uid = save(f->u, "INBOX", "Subject: k\n\nkeyword\n", 0), dest, uidvalidity;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	struct store_mailbox *other = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_set_flags(other, &uid, 1, STORE_FLAGS_ADD, 0, kw, 1, 0,
						 NULL, &err), 0);
	store_mailbox_close(&other);
	assert_int_equal(store_mailbox_copy(mb, &uid, 1, "Archive", true, &uidvalidity, &dest,
					    &err), 0);
	store_mailbox_close(&mb);
	struct store_mailbox *ar = open_mb(f->u, "Archive");

	assert_int_equal(store_mailbox_msg(ar, 1)->keywords, 1);
	assert_string_equal(store_mailbox_keyword(ar, 0), "Late");
	store_mailbox_close(&ar);
}

/* A large mailbox opens from its snapshot plus what changed since; the
 * result must equal a view read row by row. */
static void test_view_cache_matches_index(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	char path[4096];

	for (unsigned i = 0; i < 1500; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/cur/%u.M1P1.t,S=14,W=17:2,%s", f->dir,
			 1700000000 + i, i % 2 ? "S" : "");
		write_file(path, "Subject: v\n\nv\n");
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), 1500);
	store_mailbox_close(&mb); /* writes the snapshot */

	/* Changes after the snapshot: flags, expunges, a new message. */
	mb = open_mb(f->u, "INBOX");
	uint32_t some[3] = { 5, 700, 1400 };

	assert_int_equal(store_mailbox_set_flags(mb, some, 3, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
						 NULL, 0, 0, NULL, &err), 0);
	uint32_t gone[2] = { 1, 1499 };

	assert_int_equal(store_mailbox_expunge(mb, gone, 2, &err), 0);
	store_mailbox_close(&mb);
	uint32_t fresh = save(f->u, "INBOX", "Subject: new\n\nn\n", 0);

	struct store_mailbox *cached = open_mb(f->u, "INBOX");
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM view_cache", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store_mailbox *direct = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(cached), 1499);
	assert_int_equal(store_mailbox_count(direct), 1499);
	assert_memory_equal(store_mailbox_msg(cached, 1), store_mailbox_msg(direct, 1),
			    1499 * sizeof(struct store_msg));
	assert_int_equal(store_mailbox_msg(cached, 1499)->uid, fresh);
	assert_true(store_mailbox_msg(cached, store_mailbox_seq(cached, 700))->flags &
		    STORE_FLAG_FLAGGED);
	assert_int_equal(store_mailbox_seq(cached, 1), 0);
	store_mailbox_close(&direct);
	store_mailbox_close(&cached);
}

/* A large folder that lost an index row gets it back at the periodic full
 * listing; stale tmp/ files go then too, fresh ones stay. */
static void test_periodic_rescan(void **state)
{
	struct fixture *f = *state;
	char path[4096], sql[256];
	sqlite3 *db;

	for (unsigned i = 0; i < 1200; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/cur/%u.M2P2.t,S=14,W=17:2,S", f->dir,
			 1700000000 + i);
		write_file(path, "Subject: p\n\np\n");
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), 1200);
	store_mailbox_close(&mb);
	snprintf(path, sizeof(path), "%s/Maildir/tmp/stale", f->dir);
	write_file(path, "left by a crash");
	struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/Maildir/tmp/fresh", f->dir);
	write_file(path, "being written");

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM message WHERE uid = 7", NULL, NULL, NULL),
			 SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE mailbox SET scanned_at = 0 WHERE name = 'INBOX'");
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_count(mb), 1200);
	assert_int_equal(store_mailbox_seq(mb, 7), 0);
	assert_true(store_mailbox_msg(mb, 1200)->uid > 1200);
	store_mailbox_close(&mb);
	snprintf(path, sizeof(path), "%s/Maildir/tmp/stale", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/Maildir/tmp/fresh", f->dir);
	assert_int_equal(access(path, F_OK), 0);
}

/* The digests of a folder as stored, as computed from its message rows and
 * from a listing of new/ and cur/: all known and all equal. */
static void assert_digests_agree(struct fixture *f, const char *name)
{
	struct store_digest stored[STORE_DIGEST_DIRS], index[STORE_DIGEST_DIRS];
	struct store_digest listed[STORE_DIGEST_DIRS];
	struct store_error err = { 0 };

	if (store__folder_digests(f->u, name, stored, index, listed, &err) < 0)
		fail_msg("digests of %s: %s", name, err.msg);
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		if (!stored[d].known || !index[d].known || !listed[d].known)
			fail_msg("%s: digest %d unknown", name, d);
		if (stored[d].a != index[d].a || stored[d].b != index[d].b)
			fail_msg("%s: digest %d as stored differs from the index's", name, d);
		if (stored[d].a != listed[d].a || stored[d].b != listed[d].b)
			fail_msg("%s: digest %d as stored differs from the listing's", name, d);
	}
}

static void test_digest_follows_every_change(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	char path[4096], path2[4096], names[8][256];
	uint32_t uids[4], dest[2], uidvalidity;

	/* A folder starts without a digest; its first sync makes one. */
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_digests_agree(f, "INBOX");
	uids[0] = save(f->u, "INBOX", "Subject: a\n\na\n", 0);
	assert_digests_agree(f, "INBOX");
	uids[1] = save(f->u, "INBOX", "Subject: b\n\nb\n", STORE_FLAG_SEEN);
	uids[2] = save(f->u, "INBOX", "Subject: c\n\nc\n", 0);
	uids[3] = save(f->u, "INBOX", "Subject: d\n\nd\n", 0);
	assert_digests_agree(f, "INBOX");
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	/* From new/ to cur/, then within cur/. */
	assert_int_equal(store_mailbox_set_flags(mb, uids, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
						 NULL, 0, 0, NULL, &err), 0);
	assert_digests_agree(f, "INBOX");
	assert_int_equal(store_mailbox_set_flags(mb, uids, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
						 NULL, 0, 0, NULL, &err), 0);
	assert_digests_agree(f, "INBOX");
	assert_int_equal(store_mailbox_expunge(mb, &uids[1], 1, &err), 0);
	assert_digests_agree(f, "INBOX");
	assert_int_equal(store_mailbox_copy(mb, uids, 1, "Archive", false, &uidvalidity, dest,
					    &err), 0);
	assert_digests_agree(f, "INBOX");
	assert_digests_agree(f, "Archive");
	assert_int_equal(store_mailbox_copy(mb, &uids[2], 1, "Trash", true, &uidvalidity, dest,
					    &err), 0);
	assert_digests_agree(f, "INBOX");
	assert_digests_agree(f, "Trash");
	/* A move within the folder: a new UID, the old one expunged. */
	assert_int_equal(store_mailbox_copy(mb, &uids[3], 1, "INBOX", true, &uidvalidity, dest,
					    &err), 0);
	assert_digests_agree(f, "INBOX");

	/* Changes by other programs, then a sync. */
	snprintf(path, sizeof(path), "%s/Maildir/new/1700000000.M9P9.otherhost", f->dir);
	write_file(path, "Subject: dropped\n\nhello\n");
	snprintf(path, sizeof(path), "%s/Maildir/cur", f->dir);
	int n = list_files(path, names, 8);

	assert_true(n >= 2);
	snprintf(path, sizeof(path), "%s/Maildir/cur/%s", f->dir, names[0]);
	snprintf(path2, sizeof(path2), "%s/Maildir/cur/%sT", f->dir, names[0]);
	assert_int_equal(rename(path, path2), 0);
	snprintf(path, sizeof(path), "%s/Maildir/cur/%s", f->dir, names[1]);
	assert_int_equal(unlink(path), 0);
	/* Ignored by the sync, and by the digests: hidden and unparseable. */
	snprintf(path, sizeof(path), "%s/Maildir/cur/.hidden", f->dir);
	write_file(path, "x");
	snprintf(path, sizeof(path), "%s/Maildir/cur/bad,U=0", f->dir);
	write_file(path, "x");
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_digests_agree(f, "INBOX");
	store_mailbox_close(&mb);

	/* A rebuild. */
	store_user_close(&f->u);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	assert_digests_agree(f, "INBOX");
	assert_digests_agree(f, "Archive");
	assert_digests_agree(f, "Trash");

	/* An index from before the digests: the columns and key are added,
	 * and the first sync of each folder reconciles in full. */
	sqlite3 *db;

	store_user_close(&f->u);
	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE mailbox DROP COLUMN new_digest;"
				      "ALTER TABLE mailbox DROP COLUMN cur_digest;"
				      "DELETE FROM meta WHERE key LIKE 'digest_key%'",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	uint64_t full = store__full_reconciles();

	mb = open_mb(f->u, "INBOX");
	assert_true(store__full_reconciles() > full);
	/* a (or d) renamed by the other program, and the dropped file. */
	assert_int_equal(store_mailbox_count(mb), 2);
	store_mailbox_close(&mb);
	assert_digests_agree(f, "INBOX");
}

static void dir_mtime(const char *path, struct timespec *ts)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	*ts = st.st_mtim;
}

/* Give a directory the time it had right after our own change: as if the
 * other program's change fell in the same timestamp tick. */
static void same_tick(const char *path, const struct timespec *ts)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, *ts };

	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

enum foreign_change { FOREIGN_NONE, FOREIGN_RENAME, FOREIGN_DROP, FOREIGN_DELETE };

/*
 * Our flag change on a large folder (so that opening it does not list it in
 * full anyway), then another program's change in the same tick, then the
 * next open. Returns the view it opened; *full_r: whether the open
 * reconciled in full.
 */
static struct store_mailbox *change_in_same_tick(struct fixture *f, enum foreign_change what,
						 bool *full_r)
{
	struct store_error err = { 0 };
	char newdir[1024], curdir[1024], path[4096], path2[4096];
	struct timespec new_t, cur_t;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	/* The newest message is in new/: flagging it moves it to cur/. */
	uint32_t uid = store_mailbox_msg(mb, store_mailbox_count(mb))->uid;

	assert_int_equal(store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
						 NULL, 0, 0, NULL, &err), 0);
	store_mailbox_close(&mb);
	snprintf(newdir, sizeof(newdir), "%s/Maildir/new", f->dir);
	snprintf(curdir, sizeof(curdir), "%s/Maildir/cur", f->dir);
	dir_mtime(newdir, &new_t);
	dir_mtime(curdir, &cur_t);
	switch (what) {
	case FOREIGN_NONE:
		break;
	case FOREIGN_RENAME:
		/* mutt marks message 100 (UID 100, as adopted) seen. */
		snprintf(path, sizeof(path), "%s/1700000099.M2P2.t,S=14,W=17,U=100:2,", curdir);
		snprintf(path2, sizeof(path2), "%s/1700000099.M2P2.t,S=14,W=17,U=100:2,S", curdir);
		assert_int_equal(rename(path, path2), 0);
		break;
	case FOREIGN_DROP:
		snprintf(path, sizeof(path), "%s/1700009999.M3P3.otherhost", newdir);
		write_file(path, "Subject: dropped\n\nhello\n");
		break;
	case FOREIGN_DELETE:
		snprintf(path, sizeof(path), "%s/1700000199.M2P2.t,S=14,W=17,U=200:2,", curdir);
		assert_int_equal(unlink(path), 0);
		break;
	}
	same_tick(newdir, &new_t);
	same_tick(curdir, &cur_t);
	uint64_t full = store__full_reconciles();

	mb = open_mb(f->u, "INBOX");
	*full_r = store__full_reconciles() > full;
	return mb;
}

/* 1,200 messages adopted with their UIDs (a rebuild trusts U=): a folder
 * large enough that opening it does not list it in full. */
static void large_adopted_inbox(struct fixture *f)
{
	struct store_error err = { 0 };
	char path[4096];

	for (unsigned i = 0; i < 1200; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/cur/%u.M2P2.t,S=14,W=17,U=%u:2,", f->dir,
			 1700000000 + i, i + 1);
		write_file(path, "Subject: p\n\np\n");
	}
	store_user_close(&f->u);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), 1200);
	assert_int_equal(store_mailbox_seq(mb, 100), 100);
	store_mailbox_close(&mb);
}

static void test_quick_check_sees_same_tick_changes(void **state)
{
	struct fixture *f = *state;
	bool full;

	/* A writer that cannot watch the directories (no inotify): the
	 * times its changes leave are not trusted, and a change by another
	 * program in the same tick does not move them (witness.c). */
	store__witness_disable(true);
	large_adopted_inbox(f);
	struct store_mailbox *mb;

	/* Only our own change: the listings match, no full reconcile. */
	save(f->u, "INBOX", "Subject: n\n\nn\n", 0);
	mb = change_in_same_tick(f, FOREIGN_NONE, &full);
	assert_false(full);
	assert_int_equal(store_mailbox_count(mb), 1201);
	store_mailbox_close(&mb);

	/* A flag change by mutt in the same tick as ours. */
	save(f->u, "INBOX", "Subject: n\n\nn\n", 0);
	mb = change_in_same_tick(f, FOREIGN_RENAME, &full);
	assert_true(full);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 100))->flags, STORE_FLAG_SEEN);
	assert_int_equal(store_mailbox_count(mb), 1202);
	store_mailbox_close(&mb);

	/* A file dropped into new/ by another MDA. */
	save(f->u, "INBOX", "Subject: n\n\nn\n", 0);
	mb = change_in_same_tick(f, FOREIGN_DROP, &full);
	assert_true(full);
	assert_int_equal(store_mailbox_count(mb), 1204);
	assert_string_equal(read_all(mb, store_mailbox_msg(mb, 1204)->uid),
			    "Subject: dropped\r\n\r\nhello\r\n");
	store_mailbox_close(&mb);

	/* A file deleted by another program. */
	save(f->u, "INBOX", "Subject: n\n\nn\n", 0);
	mb = change_in_same_tick(f, FOREIGN_DELETE, &full);
	assert_true(full);
	assert_int_equal(store_mailbox_count(mb), 1204);
	assert_int_equal(store_mailbox_seq(mb, 200), 0);
	store_mailbox_close(&mb);
	assert_digests_agree(f, "INBOX");
	store__witness_disable(false);
}

/* Open INBOX; whether that listed a directory or reconciled in full. */
static struct store_mailbox *open_counting(struct fixture *f, bool *listed_r, bool *full_r)
{
	uint64_t listings = store__quick_listings(), full = store__full_reconciles();
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	*listed_r = store__quick_listings() > listings;
	*full_r = store__full_reconciles() > full;
	return mb;
}

static void test_witnessed_changes_keep_times_trusted(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	bool listed, full;
	char curdir[1024], from[4096], to[4096];

	large_adopted_inbox(f);
	snprintf(curdir, sizeof(curdir), "%s/Maildir/cur", f->dir);
	/* Past the settling time of the adoption's directory times. */
	usleep((STORE_MTIME_SETTLE_FINE_NS / 1000) + 20000);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	store_mailbox_close(&mb);
	mb = open_counting(f, &listed, &full);
	assert_false(listed);
	assert_false(full);

	/* Our flag change and expunge right before the next open: the times
	 * they left are trusted, nothing is listed. */
	uint32_t uid = 5;

	assert_int_equal(store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
						 NULL, 0, 0, NULL, &err), 0);
	uid = 6;
	assert_int_equal(store_mailbox_expunge(mb, &uid, 1, &err), 0);
	store_mailbox_close(&mb);
	mb = open_counting(f, &listed, &full);
	assert_false(listed);
	assert_false(full);
	assert_int_equal(store_mailbox_count(mb), 1199);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 5))->flags, STORE_FLAG_FLAGGED);
	store_mailbox_close(&mb);

	/* Another program's rename right after ours is seen, however soon. */
	uid = 7;
	mb = open_mb(f->u, "INBOX");
	assert_int_equal(store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
						 NULL, 0, 0, NULL, &err), 0);
	store_mailbox_close(&mb);
	snprintf(from, sizeof(from), "%s/1700000007.M2P2.t,S=14,W=17,U=8:2,", curdir);
	snprintf(to, sizeof(to), "%s/1700000007.M2P2.t,S=14,W=17,U=8:2,D", curdir);
	assert_int_equal(rename(from, to), 0);
	mb = open_counting(f, &listed, &full);
	assert_true(full);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 8))->flags, STORE_FLAG_DRAFT);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 7))->flags, STORE_FLAG_SEEN);
	store_mailbox_close(&mb);

	/* Another program's rename during our transaction: the time is left
	 * untrusted. And with only our own, it is the one witnessed. */
	char folder[1024], mine[4096], mine2[4096];

	snprintf(folder, sizeof(folder), "%s/Maildir", f->dir);
	snprintf(mine, sizeof(mine), "%s/1700000019.M2P2.t,S=14,W=17,U=20:2,", curdir);
	snprintf(mine2, sizeof(mine2), "%s/1700000019.M2P2.t,S=14,W=17,U=20:2,F", curdir);
	snprintf(from, sizeof(from), "%s/1700000029.M2P2.t,S=14,W=17,U=30:2,", curdir);
	snprintf(to, sizeof(to), "%s/1700000029.M2P2.t,S=14,W=17,U=30:2,S", curdir);
	for (int foreign = 1; foreign >= 0; foreign--) {
		struct store_witness w;
		struct store_mbox_row row;
		struct stat st;

		/* Trusted times to start from (the open above listed cur/). */
		usleep((STORE_MTIME_SETTLE_FINE_NS / 1000) + 20000);
		store_mailbox_close(&mb);
		mb = open_mb(f->u, "INBOX");
		assert_int_equal(store__begin(f->u, true, &err), 0);
		assert_int_equal(store__mbox_get(f->u, "INBOX", &row, &err), 1);
		store__witness_begin(&w, folder, &row);
		assert_true(w.trusted[STORE_DIGEST_CUR]);
		assert_int_equal(rename(mine, mine2), 0);
		store__witness_change(&w, "cur/mine", "cur/mine2");
		if (foreign)
			assert_int_equal(rename(from, to), 0);
		assert_int_equal(store__witness_end(&w, f->u, folder, &row, &err), 0);
		assert_int_equal(stat(curdir, &st), 0);
		if (foreign)
			assert_true(row.cur_mtime == 0);
		else
			assert_true(row.cur_mtime == (int64_t)st.st_mtim.tv_sec * 1000000000LL +
				    st.st_mtim.tv_nsec);
		store__rollback(f->u);
		assert_int_equal(rename(mine2, mine), 0);
		if (foreign)
			assert_int_equal(rename(to, from), 0);
	}
	store_mailbox_close(&mb);
}

/* An open does not wait for another session's write transaction: it shows
 * the index as committed, and the next sync sees the rest. */
static void test_open_does_not_wait_for_a_writer(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { .create = false };
	struct store_error err = { 0 };
	struct store_user *writer;
	char from[4096], to[4096];

	large_adopted_inbox(f);
	usleep((STORE_MTIME_SETTLE_FINE_NS / 1000) + 20000);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	store_mailbox_close(&mb);
	assert_int_equal(store_user_open(f->dir, &opt, &writer, &err), 0);
	assert_int_equal(store__begin(writer, false, &err), 0);
	/* Another program's flag change while the lock is held throughout. */
	snprintf(from, sizeof(from), "%s/Maildir/cur/1700000009.M2P2.t,S=14,W=17,U=10:2,", f->dir);
	snprintf(to, sizeof(to), "%s/Maildir/cur/1700000009.M2P2.t,S=14,W=17,U=10:2,S", f->dir);
	assert_int_equal(rename(from, to), 0);
	f->u->busy_since = 0; /* set by the first try of a wait for the lock */
	mb = open_mb(f->u, "INBOX");
	assert_true(f->u->busy_since == 0);
	assert_int_equal(store_mailbox_count(mb), 1200);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 10))->flags, 0);
	/* The same for a view already open. */
	assert_int_equal(store_mailbox_reopen(mb, &err), 0);
	assert_true(f->u->busy_since == 0);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 10))->flags, 0);
	store__rollback(writer);
	store_user_close(&writer);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_msg(mb, store_mailbox_seq(mb, 10))->flags, STORE_FLAG_SEEN);
	store_mailbox_close(&mb);
}

struct saver_arg {
	const char *dir;
	int count;
	uint32_t uids[50];
};

static void *saver(void *p)
{
	struct saver_arg *arg = p;
	struct store_user_options opt = { .create = false };
	struct store_error err = { 0 };
	struct store_user *u;

	if (store_user_open(arg->dir, &opt, &u, &err) < 0)
		return (void *)1;
	for (int i = 0; i < arg->count; i++) {
		struct store_save *s;
		uint32_t uv;

		if (store_save_begin(u, "INBOX", &s, &err) < 0 ||
		    store_save_write(s, "Subject: c\n\nc\n", 14, &err) < 0 ||
		    store_save_commit(&s, &uv, &arg->uids[i], &err) < 0) {
			store_user_close(&u);
			return (void *)1;
		}
	}
	store_user_close(&u);
	return NULL;
}

static void test_concurrent_saves(void **state)
{
	struct fixture *f = *state;
	enum { THREADS = 8, EACH = 25 };
	pthread_t th[THREADS];
	struct saver_arg args[THREADS];
	bool seen[THREADS * EACH + 1] = { false };

	for (int t = 0; t < THREADS; t++) {
		args[t].dir = f->dir;
		args[t].count = EACH;
		assert_int_equal(pthread_create(&th[t], NULL, saver, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		void *ret;

		assert_int_equal(pthread_join(th[t], &ret), 0);
		assert_null(ret);
	}
	/* Every message has its own UID, 1..N without gaps or repeats. */
	for (int t = 0; t < THREADS; t++) {
		for (int i = 0; i < EACH; i++) {
			uint32_t uid = args[t].uids[i];

			assert_true(uid >= 1 && uid <= THREADS * EACH);
			assert_false(seen[uid]);
			seen[uid] = true;
		}
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), THREADS * EACH);
	store_mailbox_close(&mb);
}

/*
 * STATUS reads UIDNEXT and HIGHESTMODSEQ and the counts in one snapshot:
 * a delivery by another connection just as it counts shows in all of
 * them or in none.
 */
static void deliver_by_other(void *arg)
{
	save(arg, "INBOX", "Subject: meanwhile\r\n\r\nx\r\n", 0);
}

static void test_status_one_snapshot(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };
	struct store_user *other;
	struct store_mailbox_info info;
	struct arena *a = arena_new(0);

	save(f->u, "INBOX", "Subject: one\r\n\r\nx\r\n", 0);
	assert_int_equal(store_user_open(f->dir, &opt, &other, &err), 0);
	struct test_at_stmt at = {
		.sql_part = "SELECT count(*), coalesce(sum(vsize)", .fn = deliver_by_other,
		.arg = other,
	};

	test_at_stmt_arm(f->u->db, &at);
	assert_int_equal(store_mailbox_status(f->u, "INBOX", a, &info, &err), 0);
	test_at_stmt_done(f->u->db, &at);
	assert_int_equal(info.messages, 1);
	assert_int_equal(info.uidnext, 2);
	/* The next one sees the delivery in both. */
	assert_int_equal(store_mailbox_status(f->u, "INBOX", a, &info, &err), 0);
	assert_int_equal(info.messages, 2);
	assert_int_equal(info.uidnext, 3);
	store_user_close(&other);
	arena_free(&a);
}

/* While DELETE waits for the write lock, another session renames the
 * mailbox away and creates a new one under its name: the new one is
 * deleted, the renamed one keeps its messages. */
/* Another session's mailbox operation, run by test_at_stmt. */
struct other_session {
	struct store_user *u;
	const char *name, *to;
};

static void rename_and_recreate(void *arg)
{
	struct other_session *r = arg;
	struct store_error err = { 0 };

	assert_int_equal(store_mailbox_rename(r->u, r->name, r->to, &err), 0);
	assert_int_equal(store_mailbox_create(r->u, r->name, 0, &err), 0);
}

/* The one number sql yields, on the user's own connection. */
static int64_t index_int(struct store_user *u, const char *sql)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(u->db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);

	sqlite3_finalize(st);
	return v;
}

static void test_delete_while_renamed(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };
	struct store_mailbox_info info;
	struct arena *a = arena_new(0);
	struct other_session r = { .name = "Work", .to = "Work Old" };

	assert_int_equal(store_mailbox_create(f->u, "Work", 0, &err), 0);
	save(f->u, "Work", "Subject: keep\n\nme\n", 0);
	assert_int_equal(store_user_open(f->dir, &opt, &r.u, &err), 0);
	struct test_at_stmt at = { .sql_part = "BEGIN IMMEDIATE", .fn = rename_and_recreate,
				   .arg = &r };

	test_at_stmt_arm(f->u->db, &at);
	assert_int_equal(store_mailbox_delete(f->u, "Work", &err), 0);
	test_at_stmt_done(f->u->db, &at);
	/* Before anything syncs: the index rows of the right mailbox went. */
	assert_int_equal(index_int(f->u, "SELECT count(*) FROM mailbox WHERE name = 'Work'"), 0);
	assert_int_equal(index_int(f->u, "SELECT count(*) FROM message m JOIN mailbox b"
				   " ON b.id = m.mailbox_id WHERE b.name = 'Work Old'"), 1);
	assert_int_equal(store_mailbox_status(f->u, "Work", a, &info, &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	assert_int_equal(store_mailbox_status(f->u, "Work Old", a, &info, &err), 0);
	assert_int_equal(info.messages, 1);
	struct store_mailbox *mb = open_mb(f->u, "Work Old");

	assert_int_equal(store_mailbox_count(mb), 1);
	store_mailbox_close(&mb);
	store_user_close(&r.u);
	arena_free(&a);
}

/* A view brought up to date while another session deletes its mailbox
 * and makes a new one of the same name: the view is told so, and does
 * not take the new mailbox's UIDNEXT and HIGHESTMODSEQ. */
static void delete_and_recreate(void *arg)
{
	struct other_session *r = arg;
	struct store_error err = { 0 };

	assert_int_equal(store_mailbox_delete(r->u, r->name, &err), 0);
	assert_int_equal(store_mailbox_create(r->u, r->name, 0, &err), 0);
	save(r->u, r->name, "Subject: new\n\nthe new one\n", 0);
}

static void test_refresh_while_recreated(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };
	struct other_session r = { .name = "Work" };

	assert_int_equal(store_mailbox_create(f->u, "Work", 0, &err), 0);
	save(f->u, "Work", "Subject: one\n\nx\n", 0);
	struct store_mailbox *mb = open_mb(f->u, "Work");

	save(f->u, "Work", "Subject: two\n\nx\n", 0);
	assert_int_equal(store_user_open(f->dir, &opt, &r.u, &err), 0);
	struct test_at_stmt at = { .sql_part = "SELECT uid FROM expunged",
				   .fn = delete_and_recreate, .arg = &r };

	test_at_stmt_arm(f->u->db, &at);
	assert_int_equal(store_mailbox_sync(mb, &err), -1);
	test_at_stmt_done(f->u->db, &at);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	store_mailbox_close(&mb);
	store_user_close(&r.u);
}

/* LIST forgets the rows of folders gone from the Maildir; one made again
 * (by another program) while LIST waits for the write lock keeps its
 * row, and so its UIDVALIDITY and UIDs. */
static void make_folder_again(void *arg)
{
	char path[4096];

	for (int i = 0; i < 3; i++) {
		static const char *const sub[] = { "", "/cur", "/new" };

		snprintf(path, sizeof(path), "%s%s", (const char *)arg, sub[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
}

static void test_list_keeps_folder_made_again(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	struct store_mailbox_info info, *list;
	size_t count;
	struct arena *a = arena_new(0);
	char folder[4096], cmd[4200];

	assert_int_equal(store_mailbox_create(f->u, "Gone", 0, &err), 0);
	assert_int_equal(store_mailbox_status(f->u, "Gone", a, &info, &err), 0);
	uint32_t uidvalidity = info.uidvalidity;

	snprintf(folder, sizeof(folder), "%s/Maildir/.Gone", f->dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", folder);
	assert_int_equal(system(cmd), 0);
	struct test_at_stmt at = { .sql_part = "BEGIN IMMEDIATE", .fn = make_folder_again,
				   .arg = folder };

	test_at_stmt_arm(f->u->db, &at);
	assert_int_equal(store_mailbox_list(f->u, a, &list, &count, &err), 0);
	test_at_stmt_done(f->u->db, &at);
	assert_int_equal(store_mailbox_status(f->u, "Gone", a, &info, &err), 0);
	assert_int_equal(info.uidvalidity, uidvalidity);
	arena_free(&a);
}

/* A durable transaction commits with synchronous=FULL, any other with
 * NORMAL, whatever came before (store__begin sets the pragma only when
 * the level changes). */
static void test_sync_level_follows_begin(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	static const bool durable[] = { true, true, false, false, true, false, true };

	for (size_t i = 0; i < sizeof(durable) / sizeof(durable[0]); i++) {
		assert_int_equal(store__begin(f->u, durable[i], &err), 0);
		/* PRAGMA synchronous: 1 NORMAL, 2 FULL. */
		assert_int_equal(index_int(f->u, "PRAGMA synchronous"), durable[i] ? 2 : 1);
		assert_int_equal(store__commit(f->u, &err), 0);
	}
	/* A new connection starts at NORMAL, and knows it. */
	reopen(f);
	assert_int_equal(index_int(f->u, "PRAGMA synchronous"), 1);
	assert_int_equal(store__begin(f->u, true, &err), 0);
	assert_int_equal(index_int(f->u, "PRAGMA synchronous"), 2);
	assert_int_equal(store__commit(f->u, &err), 0);
}

struct watch_state {
	int notified;
	uv_timer_t deadline;
	bool timed_out;
};

static void watched_cb(void *data)
{
	struct watch_state *ws = data;

	ws->notified++;
	uv_stop(ws->deadline.loop);
}

static void deadline_cb(uv_timer_t *t)
{
	struct watch_state *ws = t->data;

	ws->timed_out = true;
	uv_stop(t->loop);
}

static void *deliver_one(void *p)
{
	struct saver_arg *arg = p;

	arg->count = 1;
	return saver(arg);
}

static void test_watch_sees_delivery(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	uv_loop_t loop;
	struct watch_state ws = { 0 };
	struct store_watch *w1, *w2;
	struct saver_arg arg = { .dir = f->dir };
	pthread_t th;

	assert_int_equal(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &ws.deadline);
	ws.deadline.data = &ws;
	/* Two sessions watching one folder share one watch. */
	assert_int_equal(store_watch_start(&loop, f->u, "INBOX", watched_cb, &ws, &w1, &err), 0);
	assert_int_equal(store_watch_start(&loop, f->u, "INBOX", watched_cb, &ws, &w2, &err), 0);
	/* Bounded: a missing notification fails after 10 s. */
	uv_timer_start(&ws.deadline, deadline_cb, 10000, 0);
	assert_int_equal(pthread_create(&th, NULL, deliver_one, &arg), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(ws.timed_out);
	assert_true(ws.notified >= 1);
	store_watch_stop(&w1);
	store_watch_stop(&w2);
	assert_null(w1);
	uv_close((uv_handle_t *)&ws.deadline, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

struct mailboxid_arg {
	const char *folder;
	char id[STORE_OBJECTID_SIZE];
	int ret;
};

static void *mailboxid_getter(void *p)
{
	struct mailboxid_arg *arg = p;
	struct store_error err = { 0 };

	arg->ret = store__mailboxid_get(arg->folder, arg->id, &err);
	return NULL;
}

/* RFC 8474 object ids: MAILBOXID in the folder (tern-mailboxid), EMAILID
 * from the GUID. */
static void test_object_ids(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	struct store_mailbox_info info;
	struct arena *a = arena_new(0);
	char path[4096], text[512], id[STORE_OBJECTID_SIZE], long_id[300];

	assert_true(store_objectid_valid("a"));
	assert_true(store_objectid_valid("F-_09azAZ"));
	assert_false(store_objectid_valid(""));
	assert_false(store_objectid_valid("a.b"));
	assert_false(store_objectid_valid("a b"));
	assert_false(store_objectid_valid("\xc3\xa4"));
	memset(long_id, 'x', sizeof(long_id));
	long_id[255] = '\0';
	assert_true(store_objectid_valid(long_id));
	long_id[255] = 'x';
	long_id[256] = '\0';
	assert_false(store_objectid_valid(long_id));

	/* MAILBOXID: status only reads it; made on first need, then the same
	 * from status and from an opened mailbox, kept in the folder. */
	const char *got;

	assert_int_equal(store_mailbox_status(f->u, "Archive", a, &info, &err), 0);
	assert_null(info.mailboxid);
	assert_int_equal(store_mailbox_id_of(f->u, "Nope", a, &got, &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	assert_int_equal(store_mailbox_id_of(f->u, "Archive", a, &got, &err), 0);
	assert_true(got[0] == 'F' && strlen(got) == 33);
	assert_true(store_objectid_valid(got));
	char archive[STORE_OBJECTID_SIZE];

	snprintf(archive, sizeof(archive), "%s", got);
	assert_int_equal(store_mailbox_status(f->u, "Archive", a, &info, &err), 0);
	assert_string_equal(info.mailboxid, archive);
	struct store_mailbox *mb = open_mb(f->u, "Archive");

	assert_string_equal(store_mailbox_id(mb, &err), archive);
	store_mailbox_close(&mb);
	snprintf(path, sizeof(path), "%s/Maildir/.Archive/tern-mailboxid", f->dir);
	FILE *fp = fopen(path, "r");

	assert_non_null(fp);
	assert_non_null(fgets(text, sizeof(text), fp));
	fclose(fp);
	assert_int_equal(strcspn(text, "\n"), strlen(archive));
	assert_string_equal(text + strlen(archive), "\n");
	assert_memory_equal(text, archive, strlen(archive));
	/* Unique; kept by a rename and a rebuild; new after delete+create. */
	assert_int_equal(store_mailbox_id_of(f->u, "inbox", a, &got, &err), 0);
	assert_string_not_equal(got, archive);
	assert_int_equal(store_mailbox_status(f->u, "INBOX", a, &info, &err), 0);
	assert_string_equal(info.mailboxid, got);
	assert_int_equal(store_mailbox_rename(f->u, "Archive", "Old/Archive", &err), 0);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	assert_int_equal(store_mailbox_status(f->u, "Old/Archive", a, &info, &err), 0);
	assert_string_equal(info.mailboxid, archive);
	assert_int_equal(store_mailbox_delete(f->u, "Old/Archive", &err), 0);
	assert_int_equal(store_mailbox_create(f->u, "Old/Archive", 0, &err), 0);
	assert_int_equal(store_mailbox_id_of(f->u, "Old/Archive", a, &got, &err), 0);
	assert_string_not_equal(got, archive);

	/* A folder without one, or with a damaged one: threads asking at
	 * once all get the one id that ends up in the file (rounds: the
	 * race is a narrow one). */
	snprintf(path, sizeof(path), "%s/Maildir/.Sent", f->dir);
	char file[4200];

	snprintf(file, sizeof(file), "%s/tern-mailboxid", path);
	enum { N = 8, ROUNDS = 40 };
	pthread_t th[N];
	struct mailboxid_arg args[N];

	for (int round = 0; round < ROUNDS; round++) {
		if (round % 2 == 0) {
			unlink(file);
		} else {
			FILE *damaged = fopen(file, "w");

			assert_non_null(damaged);
			fputs("not an id!\n", damaged);
			fclose(damaged);
		}
		for (int i = 0; i < N; i++) {
			args[i].folder = path;
			assert_int_equal(pthread_create(&th[i], NULL, mailboxid_getter, &args[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
			assert_int_equal(args[i].ret, 0);
			assert_string_equal(args[i].id, args[0].id);
		}
		assert_int_equal(store_mailbox_status(f->u, "Sent", a, &info, &err), 0);
		assert_string_equal(info.mailboxid, args[0].id);
	}

	/* EMAILID: fixed for a GUID (clients keep it), shared by copies in
	 * other folders and kept by a move; a copy in the same folder is a
	 * message of its own. */
	store__email_id("1700000000.M1P2Q3R4.host", id);
	assert_string_equal(id, "Med9098dd3e0d2e190221509778167c93");
	uint32_t uids[2], dest[2], uidvalidity;
	char ids[2][STORE_OBJECTID_SIZE], other[STORE_OBJECTID_SIZE];

	uids[0] = save(f->u, "INBOX", "Subject: e\n\none\n", 0);
	uids[1] = save(f->u, "INBOX", "Subject: e\n\none\n", 0);
	mb = open_mb(f->u, "INBOX");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_msg_email_id(mb, uids[i], ids[i], &err), 0);
		assert_true(ids[i][0] == 'M' && strlen(ids[i]) == 33);
	}
	assert_string_not_equal(ids[0], ids[1]);
	assert_int_equal(store_msg_email_id(mb, 999, other, &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	assert_int_equal(store_mailbox_copy(mb, &uids[0], 1, "Trash", false, &uidvalidity, dest,
					    &err), 0);
	assert_int_equal(store_mailbox_copy(mb, &uids[1], 1, "Drafts", true, &uidvalidity,
					    &dest[1], &err), 0);
	assert_int_equal(store_mailbox_copy(mb, &uids[0], 1, "INBOX", false, &uidvalidity, &dest[0],
					    &err), 0);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_msg_email_id(mb, dest[0], other, &err), 0);
	assert_string_not_equal(other, ids[0]);
	/* SEARCH EMAILID: exact; THREADID: nothing. */
	struct store_search s = { .kind = STORE_SEARCH_EMAILID, .str = ids[0] };
	uint32_t *found;
	size_t n;

	assert_int_equal(store_mailbox_search(mb, &s, a, &found, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(found[0], uids[0]);
	s.str = "not.valid";
	assert_int_equal(store_mailbox_search(mb, &s, a, &found, &n, &err), 0);
	assert_int_equal(n, 0);
	s.kind = STORE_SEARCH_THREADID;
	s.str = "T1";
	assert_int_equal(store_mailbox_search(mb, &s, a, &found, &n, &err), 0);
	assert_int_equal(n, 0);
	store_mailbox_close(&mb);
	const char *names[] = { "Trash", "Drafts" };

	for (int i = 0; i < 2; i++) {
		mb = open_mb(f->u, names[i]);
		assert_int_equal(store_msg_email_id(mb, store_mailbox_msg(mb, 1)->uid, other, &err),
				 0);
		assert_string_equal(other, ids[i]);
		store_mailbox_close(&mb);
	}
	/* And after a rebuild. */
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	reopen(f);
	mb = open_mb(f->u, "Drafts");
	assert_int_equal(store_msg_email_id(mb, store_mailbox_msg(mb, 1)->uid, other, &err), 0);
	assert_string_equal(other, ids[1]);
	store_mailbox_close(&mb);
	arena_free(&a);
}

/* One number from the index, read beside the store's own connection. */
static long long db_count(struct fixture *f, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* UIDs of a search with one key, as a byte per UID (1..max). */
static void search_uids(struct store_mailbox *mb, const struct store_search *s, uint8_t *hit,
			uint32_t max)
{
	struct arena *a = arena_new(0);
	struct store_error err = { 0 };
	uint32_t *uids;
	size_t n;

	memset(hit, 0, max + 1);
	if (store_mailbox_search(mb, s, a, &uids, &n, &err) < 0)
		fail_msg("search: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		assert_true(uids[i] >= 1 && uids[i] <= max);
		hit[uids[i]] = 1;
	}
	arena_free(&a);
}

/* More than STORE_ADOPT_EAGER_MAX files found at once (a migrated
 * Maildir) are adopted with their rows only: no message_meta, all in
 * fts_pending. Structure, header keys and BODY still answer exactly, and
 * a BODY search keeps at most STORE_SEARCH_KEEP_MAX texts. A few files
 * dropped later take the eager path. */
static void test_bulk_adoption_is_lazy(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	enum { BULK = 600 };
	char path[4096], text[512];

	for (int i = 0; i < BULK; i++) {
		bool special = i % 50 == 7;

		snprintf(path, sizeof(path), "%s/Maildir/cur/17000%05d.M%dP1.oldhost:2,S", f->dir, i,
			 i);
		snprintf(text, sizeof(text),
			 "From: Sender %d <s%d@example.org>\nSubject: %s %d\n"
			 "Content-Type: text/plain\nContent-Transfer-Encoding: %s\n\n%s\n",
			 i, i, special ? "Quarterly report" : "Note", i,
			 special ? "base64" : "7bit",
			 /* "about the zebrafish tank" */
			 special ? "YWJvdXQgdGhlIHplYnJhZmlzaCB0YW5r" : "plain words only");
		write_file(path, text);
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), BULK);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_meta"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_pending"), BULK);

	/* Which UIDs should match, from the files themselves. */
	uint8_t want[BULK + 1] = { 0 }, hit[BULK + 1];
	uint32_t special_uid = 0;

	for (uint32_t seq = 1; seq <= BULK; seq++) {
		uint32_t uid = store_mailbox_msg(mb, seq)->uid;

		assert_true(uid >= 1 && uid <= BULK);
		want[uid] = strstr(read_all(mb, uid), "Quarterly report") != NULL;
		if (want[uid] && special_uid == 0)
			special_uid = uid;
	}
	assert_int_not_equal(special_uid, 0);

	/* ENVELOPE parsed on demand, and its row kept. */
	struct arena *a = arena_new(0);
	struct store_msg_structure ms;

	assert_int_equal(store_msg_structure(mb, special_uid, a, &ms, &err), 0);
	assert_non_null(strstr(ms.envelope, "\"Quarterly report "));
	assert_true(strstr(ms.bodystructure, "\"BASE64\"") != NULL ||
		    strstr(ms.bodystructure, "\"base64\"") != NULL);
	arena_free(&a);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_meta"), 1);

	struct store_search subj = { .kind = STORE_SEARCH_SUBJECT, .str = "quarterly REPORT" };
	struct store_search hdr = { .kind = STORE_SEARCH_HEADER, .header = "Subject",
				    .str = "quarterly" };
	struct store_search body = { .kind = STORE_SEARCH_BODY, .str = "ZebraFish" };

	search_uids(mb, &subj, hit, BULK);
	assert_memory_equal(hit, want, sizeof(want));
	/* The first BODY search reads every pending file and keeps at most
	 * STORE_SEARCH_KEEP_MAX texts. */
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_pending"), BULK);
	search_uids(mb, &body, hit, BULK);
	assert_memory_equal(hit, want, sizeof(want));
	long long left = db_count(f, "SELECT count(*) FROM fts_pending");

	assert_int_equal(left, BULK > STORE_SEARCH_KEEP_MAX ? BULK - STORE_SEARCH_KEEP_MAX : 0);
	search_uids(mb, &body, hit, BULK);
	assert_memory_equal(hit, want, sizeof(want));
	search_uids(mb, &hdr, hit, BULK);
	assert_memory_equal(hit, want, sizeof(want));

	/* A few files dropped by another program: parsed and indexed now. */
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/new/1710000000.M%dP9.mda", f->dir, i);
		write_file(path, "Subject: late\n\nzebrafish again\n");
	}
	long long meta = db_count(f, "SELECT count(*) FROM message_meta");

	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), BULK + 2);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_meta"), meta + 2);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_pending"), left);
	store_mailbox_close(&mb);
}

static void test_catch_up_fills_bulk_adoption(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	enum { BULK = 600, BATCH = 64 };
	char path[4096];

	for (int i = 0; i < BULK; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/cur/17000%05d.M%dP1.oldhost:2,S", f->dir, i,
			 i);
		write_file(path, i % 100 == 3 ? "Subject: catch\n\nthe quokka smiles\n" :
			   "Subject: other\n\nplain words\n");
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_count(mb), BULK);
	assert_int_equal(store_user_pending(f->u), 1);
	/* One message gone behind the index's back: it stays pending. */
	struct store_msg_row gone;

	assert_int_equal(store__msg_row(mb, BULK, &gone, &err), 1);
	snprintf(path, sizeof(path), "%s/Maildir/%s", f->dir, gone.filename);
	assert_int_equal(unlink(path), 0);

	bool more = true;
	int rounds = 0;

	while (more) {
		assert_int_equal(store_user_catch_up(f->u, BATCH, &more, &err), 0);
		assert_true(++rounds <= BULK / BATCH + 2);
		/* Flag changes between rounds rename files: still read. */
		if (rounds == 2) {
			uint32_t uids[3] = { 200, 201, 202 };

			assert_int_equal(store_mailbox_set_flags(mb, uids, 3, STORE_FLAGS_ADD,
								 STORE_FLAG_FLAGGED, NULL, 0, 0, NULL,
								 &err), 0);
		}
	}
	assert_true(rounds >= BULK / BATCH);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_pending"), 1);
	assert_int_equal(store_user_pending(f->u), 1);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_meta"), BULK - 1);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_doc"), BULK - 1);

	/* The text is in the index now: emptied files are still found. */
	for (uint32_t uid = 4; uid < BULK; uid += 100) {
		struct store_msg_row row;

		assert_int_equal(store__msg_row(mb, uid, &row, &err), 1);
		snprintf(path, sizeof(path), "%s/Maildir/%s", f->dir, row.filename);
		write_file(path, "Subject: catch\n\n\n");
	}
	struct store_search body = { .kind = STORE_SEARCH_BODY, .str = "QUOKKA" };
	uint8_t hit[BULK + 1];
	int found = 0;

	search_uids(mb, &body, hit, BULK);
	for (int uid = 1; uid <= BULK; uid++)
		found += hit[uid];
	assert_int_equal(found, BULK / 100);
	store_mailbox_close(&mb);
}

/* n files with a word of their own ("uniq<i>word"), indexed. */
static struct store_mailbox *indexed_inbox(struct fixture *f, int n)
{
	struct store_error err = { 0 };
	char path[4096], text[256];

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/Maildir/cur/17000%05d.M%dP1.oldhost:2,S", f->dir, i,
			 i);
		snprintf(text, sizeof(text), "Subject: note %d\n\nsome uniq%dword here\n", i, i);
		write_file(path, text);
	}
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	bool more = true;

	assert_int_equal(store_mailbox_count(mb), n);
	while (more)
		assert_int_equal(store_user_catch_up(f->u, 64, &more, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_pending"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), n);
	return mb;
}

static int hits(struct store_mailbox *mb, const char *word, uint32_t max)
{
	struct store_search s = { .kind = STORE_SEARCH_BODY, .str = word };
	uint8_t hit[1024];
	int found = 0;

	assert_true(max < sizeof(hit));
	search_uids(mb, &s, hit, max);
	for (uint32_t uid = 1; uid <= max; uid++)
		found += hit[uid];
	return found;
}

static void no_problem_cb(const struct store_check_problem *p, void *data)
{
	(void)data;
	fail_msg("index check: %s", p->detail);
}

/*
 * Expunged messages leave their documents in message_fts, unreachable and
 * listed in fts_gone: the background catch-up deletes them once a batch
 * has gathered (store_user_pending says so with nothing else to do), and
 * a process without one deletes them all once more than FTS_GONE_MAX wait.
 */
static void test_expunged_text_purged(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	enum { N = FTS_GONE_MAX + 2 * FTS_PURGE_BATCH + 20 };
	struct store_mailbox *mb = indexed_inbox(f, N);
	uint32_t uids[N];
	char word[32];

	assert_int_equal(store_user_pending(f->u), 0);
	for (int i = 0; i < N; i++)
		uids[i] = (uint32_t)(i + 1);
	/* Fewer than a batch: left for later. */
	assert_int_equal(store_mailbox_expunge(mb, uids, 10, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 10);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), N);
	assert_int_equal(store_user_pending(f->u), 0);
	/* A batch and more: the catch-up's work, one batch a call. */
	assert_int_equal(store_mailbox_expunge(mb, uids + 10, FTS_PURGE_BATCH + 10, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), FTS_PURGE_BATCH + 20);
	assert_int_equal(store_user_pending(f->u), 1);
	for (int i = 0; i < FTS_PURGE_BATCH + 20; i++) {
		snprintf(word, sizeof(word), "uniq%dword", i);
		assert_int_equal(hits(mb, word, N), 0);
	}
	assert_int_equal(hits(mb, "uniq99word", N), 1);
	/* Waiting documents are no damage to `ternctl index check`. */
	struct store_check_summary sum;

	assert_int_equal(store_user_check(f->dir, no_problem_cb, NULL, &sum, &err), 0);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(sum.messages, N - FTS_PURGE_BATCH - 20);
	bool more;

	assert_int_equal(store_user_catch_up(f->u, 64, &more, &err), 0);
	assert_true(more);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 20);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), N - FTS_PURGE_BATCH);
	assert_int_equal(store_user_catch_up(f->u, 64, &more, &err), 0);
	assert_false(more);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"),
			 N - FTS_PURGE_BATCH - 20);
	assert_int_equal(store_user_pending(f->u), 0);

	/* More than FTS_GONE_MAX at once: deleted by the expunge itself. */
	size_t done = FTS_PURGE_BATCH + 20, left = N - done;

	assert_true(left > FTS_GONE_MAX);
	assert_int_equal(store_mailbox_expunge(mb, uids + done, FTS_GONE_MAX, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), FTS_GONE_MAX);
	assert_int_equal(store_mailbox_expunge(mb, uids + done + FTS_GONE_MAX, 1, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), left - FTS_GONE_MAX - 1);
	assert_int_equal(store_mailbox_count(mb), left - FTS_GONE_MAX - 1);
	snprintf(word, sizeof(word), "uniq%dword", N - 1);
	assert_int_equal(hits(mb, word, N), 1);
	store_mailbox_close(&mb);

	/* A deleted mailbox's documents go the same way. */
	assert_int_equal(store_mailbox_create(f->u, "Old", 0, &err), 0);
	assert_int_equal(save(f->u, "Old", "Subject: old\n\nobsolete text\n", 0), 1);
	assert_int_equal(store_mailbox_delete(f->u, "Old", &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 1);
}

/* The trigger of an index from before fts_gone, which deleted documents
 * from message_fts itself. */
static const char old_fts_del[] =
	"DROP TRIGGER fts_del; DROP TABLE fts_gone; DROP INDEX fts_doc_docid;"
	"DELETE FROM meta WHERE key = 'fts_gone';"
	"CREATE TRIGGER fts_del AFTER DELETE ON message BEGIN"
	"  DELETE FROM fts_pending WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
	"  DELETE FROM message_fts WHERE rowid = (SELECT docid FROM fts_doc WHERE guid = OLD.guid)"
	"    AND NOT EXISTS (SELECT 1 FROM message WHERE guid = OLD.guid);"
	"  DELETE FROM fts_doc WHERE guid = OLD.guid"
	"    AND NOT EXISTS (SELECT 1 FROM message WHERE guid = OLD.guid);"
	"END;";

/* An index with that trigger gets the new one when opened, once. */
static void test_fts_gone_upgrade(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	uint32_t uid[3];

	for (int i = 0; i < 3; i++)
		uid[i] = save(f->u, "INBOX", "Subject: up\n\nupgraded text\n", 0);
	store_user_close(&f->u);
	test_index_exec(f->dir, old_fts_del);
	assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master"
				  " WHERE name IN ('fts_gone', 'fts_doc_docid')"), 0);
	reopen(f);
	assert_int_equal(db_count(f, "SELECT value FROM meta WHERE key = 'fts_gone'"), 1);
	assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master"
				  " WHERE name IN ('fts_gone', 'fts_doc_docid')"), 2);
	assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master WHERE name = 'fts_del'"
				  " AND instr(sql, 'INSERT OR IGNORE INTO fts_gone') > 0"), 1);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(store_mailbox_expunge(mb, &uid[0], 1, &err), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 1);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), 3);
	assert_int_equal(hits(mb, "upgraded", 3), 2);
	store_mailbox_close(&mb);

	/* Done once: with meta 'fts_gone' set, an open leaves fts_del alone
	 * (here put back to the old text behind the index's back). */
	store_user_close(&f->u);
	test_index_exec(f->dir, "DROP TRIGGER fts_del;"
		"CREATE TRIGGER fts_del AFTER DELETE ON message BEGIN"
		"  DELETE FROM fts_pending WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
		"END;");
	reopen(f);
	assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master WHERE name = 'fts_del'"
				  " AND instr(sql, 'fts_gone') > 0"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM meta WHERE key = 'fts_gone'"), 1);
}

/*
 * A burst of first deliveries: several threads open a user that has no
 * Maildir and no index yet, at the same moment. Every open succeeds (the
 * index's switch to WAL mode once answered "database is locked" at once
 * to one of them, which tern-lmtpd turned into a 451).
 */
#define FIRST_OPENERS 8
#define FIRST_OPEN_ROUNDS 25

struct first_open {
	const char *dir;
	pthread_barrier_t *barrier;
	unsigned delay_us;      /* after the barrier: the openers' phases overlap */
	int ret;
	char msg[256];
};

static void *first_open_thread(void *data)
{
	struct first_open *o = data;
	struct store_user_options opt = { .create = true };
	struct store_error err = { 0 };
	struct store_user *u = NULL;

	pthread_barrier_wait(o->barrier);
	usleep(o->delay_us);
	o->ret = store_user_open(o->dir, &opt, &u, &err);
	if (o->ret < 0)
		snprintf(o->msg, sizeof(o->msg), "%s", err.msg);
	store_user_close(&u);
	return NULL;
}

static void test_concurrent_first_opens(void **state)
{
	struct fixture *f = *state;

	for (int round = 0; round < FIRST_OPEN_ROUNDS; round++) {
		char dir[300];
		pthread_barrier_t barrier;
		pthread_t threads[FIRST_OPENERS];
		struct first_open opens[FIRST_OPENERS];

		snprintf(dir, sizeof(dir), "%s-first-%d", f->dir, round);
		pthread_barrier_init(&barrier, NULL, FIRST_OPENERS);
		for (int i = 0; i < FIRST_OPENERS; i++) {
			opens[i] = (struct first_open){ .dir = dir, .barrier = &barrier,
							.delay_us = (unsigned)(i * round * 20) };
			assert_int_equal(pthread_create(&threads[i], NULL, first_open_thread,
							&opens[i]), 0);
		}
		for (int i = 0; i < FIRST_OPENERS; i++)
			pthread_join(threads[i], NULL);
		pthread_barrier_destroy(&barrier);
		for (int i = 0; i < FIRST_OPENERS; i++) {
			if (opens[i].ret != 0)
				fail_msg("round %d, opener %d: %s", round, i, opens[i].msg);
		}
		store__remove_tree(dir);
	}
}

/* A rebuild cut short by a crash starts again from its empty tables: the
 * text index goes as a whole, leaving nothing in fts_gone. */
static void test_rebuild_empties_text_index(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++)
		save(f->u, "INBOX", "Subject: again\n\nrebuilt text\n", 0);
	store_user_close(&f->u);
	test_index_exec(f->dir, "INSERT OR REPLACE INTO meta VALUES ('rebuild', 1)");
	reopen(f);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message_fts"), 3);
	assert_int_equal(db_count(f, "SELECT count(*) FROM fts_doc"), 3);
	assert_int_equal(db_count(f, "SELECT count(*) FROM message"), 3);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(hits(mb, "rebuilt", 3), 3);
	store_mailbox_close(&mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_user_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_keywords_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_operations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_by_other_programs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_keeps_uids_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_index_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_keyword_made_since_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_view_cache_matches_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_periodic_rescan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_follows_every_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_witnessed_changes_keep_times_trusted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_does_not_wait_for_a_writer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quick_check_sees_same_tick_changes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_saves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_one_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_while_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_keeps_folder_made_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_while_recreated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_level_follows_begin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_sees_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_files_with_message_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_prefers_acknowledged_save, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_line_ends_any_read_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_adoption_is_lazy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_fills_bulk_adoption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunged_text_purged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fts_gone_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_empties_text_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_first_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_line_ends_any_write_size, setup, teardown),
	};

	log_init("test-store", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
