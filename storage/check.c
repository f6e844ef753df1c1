/*
 * check.c — the index compared with the Maildir (`ternctl index check`),
 * and usage recounted from the messages (`ternctl quota recalc`).
 *
 * The check changes nothing: it opens the existing index without creating
 * or rebuilding it, and never syncs. It does take the index write lock
 * (BEGIN IMMEDIATE, then ROLLBACK) while it compares one folder, because
 * every writer of ours renames and links files only while holding that
 * lock: a delivery or flag change in progress would otherwise show up as a
 * file the index does not know, or a row whose file is gone. Other
 * programs' changes (mutt renaming a file, say) are reported: they are
 * what the next sync would repair.
 */
#include "storage-private.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK_BUSY_TIMEOUT_MS 10000

struct check_ctx {
	struct store_user *u;
	store_check_cb *cb;
	void *data;
	struct store_check_summary *sum;
};

static void report(struct check_ctx *cc, const char *mailbox, enum store_check_kind kind,
		   const char *fmt, ...) ATTR_PRINTF(4, 5);

static void report(struct check_ctx *cc, const char *mailbox, enum store_check_kind kind,
		   const char *fmt, ...)
{
	struct store_check_problem p = { .mailbox = mailbox, .kind = kind };
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	p.detail = detail;
	cc->sum->problems++;
	cc->cb(&p, cc->data);
}

/* A message file in new/ or cur/. */
struct check_file {
	char *relname;
	struct store_filename fn;
	uint64_t disk_size;
	bool matched;
};

/* An index row. */
struct check_row {
	uint32_t uid;
	char *guid;
	char *filename;
	uint32_t flags;
	uint64_t size;
	bool matched;
};

static int file_by_name(const void *a, const void *b)
{
	return strcmp(((const struct check_file *)a)->relname,
		      ((const struct check_file *)b)->relname);
}

static int file_by_uid(const void *a, const void *b)
{
	const struct check_file *x = *(const struct check_file *const *)a;
	const struct check_file *y = *(const struct check_file *const *)b;

	if (x->fn.uid != y->fn.uid)
		return x->fn.uid < y->fn.uid ? -1 : 1;
	return strcmp(x->relname, y->relname);
}

static int list_sub(const char *folder, const char *sub, struct check_file **files,
		    size_t *count, size_t *cap, struct store_error *err)
{
	char path[4096];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/%s", folder, sub);
	d = opendir(path);
	if (d == NULL)
		return store__fail_errno(err, errno, "opendir %s", path);
	while ((e = readdir(d)) != NULL) {
		struct store_filename fn;
		struct stat st;
		char file[4400];

		/* Exactly the names a sync lists (and digests), so that the
		 * check and the sync agree on what the folder holds. */
		if (!store__listed_entry(d, e, &fn))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		/* Gone since readdir: another program's doing, as if unlisted. */
		if (stat(file, &st) < 0)
			continue;
		if (*count == *cap) {
			*cap = *cap == 0 ? 64 : *cap * 2;
			*files = xrealloc(*files, *cap * sizeof(**files));
		}
		struct check_file *cf = &(*files)[(*count)++];
		size_t n = strlen(sub) + strlen(e->d_name) + 2;

		cf->relname = xcalloc(1, n);
		snprintf(cf->relname, n, "%s/%s", sub, e->d_name);
		cf->fn = fn;
		cf->disk_size = (uint64_t)st.st_size;
		cf->matched = false;
	}
	closedir(d);
	return 0;
}

static int load_rows(struct store_user *u, int64_t id, struct check_row **rows_r,
		     size_t *count_r, struct store_error *err)
{
	sqlite3_stmt *st;
	struct check_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc;

	if (sqlite3_prepare_v2(u->db, "SELECT uid, guid, filename, flags, size FROM message"
			       " WHERE mailbox_id = ? ORDER BY filename", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "load messages");
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			rows = xrealloc(rows, cap * sizeof(*rows));
		}
		struct check_row *r = &rows[count++];

		r->uid = (uint32_t)sqlite3_column_int64(st, 0);
		r->guid = xstrdup((const char *)sqlite3_column_text(st, 1));
		r->filename = xstrdup((const char *)sqlite3_column_text(st, 2));
		r->flags = (uint32_t)sqlite3_column_int64(st, 3);
		r->size = (uint64_t)sqlite3_column_int64(st, 4);
		r->matched = false;
	}
	sqlite3_finalize(st);
	*rows_r = rows;
	*count_r = count;
	if (rc != SQLITE_DONE)
		return store__fail_db(err, u->db, "load messages");
	return 0;
}

static void free_rows(struct check_row *rows, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(rows[i].guid);
		free(rows[i].filename);
	}
	free(rows);
}

static void free_files(struct check_file *files, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(files[i].relname);
	free(files);
}

static struct check_file *find_file(struct check_file *files, size_t count, const char *relname)
{
	struct check_file key = { .relname = (char *)relname };

	return bsearch(&key, files, count, sizeof(*files), file_by_name);
}

/* Files and rows of one folder, compared (under the write lock). */
static int check_messages(struct check_ctx *cc, const char *name, const char *folder,
			  const struct store_mbox_row *mrow, struct store_error *err)
{
	struct check_file *files = NULL;
	struct check_row *rows = NULL;
	size_t nfiles = 0, cap = 0, nrows = 0;
	int ret = -1;

	if (list_sub(folder, "new", &files, &nfiles, &cap, err) < 0 ||
	    list_sub(folder, "cur", &files, &nfiles, &cap, err) < 0 ||
	    load_rows(cc->u, mrow->id, &rows, &nrows, err) < 0)
		goto out;
	cc->sum->files += nfiles;
	cc->sum->messages += nrows;
	if (nfiles > 1)
		qsort(files, nfiles, sizeof(*files), file_by_name);

	for (size_t i = 0; i < nrows; i++) {
		struct check_row *r = &rows[i];
		struct check_file *f = find_file(files, nfiles, r->filename);

		if (r->uid >= mrow->uidnext)
			report(cc, name, STORE_CHECK_UID, "UID %u is not below UIDNEXT %u",
			       r->uid, mrow->uidnext);
		if (f == NULL) {
			/* Renamed behind our back (a flag change by another
			 * program) or gone. */
			for (size_t j = 0; j < nfiles && f == NULL; j++) {
				if (strcmp(files[j].fn.base, r->guid) == 0 && !files[j].matched)
					f = &files[j];
			}
			if (f == NULL) {
				report(cc, name, STORE_CHECK_FILE_MISSING,
				       "UID %u: file %s is gone", r->uid, r->filename);
				continue;
			}
			report(cc, name, STORE_CHECK_FILE_RENAMED,
			       "UID %u: file %s is now %s", r->uid, r->filename, f->relname);
		}
		f->matched = true;
		r->matched = true;
		if (f->fn.uid != 0 && f->fn.uid != r->uid)
			report(cc, name, STORE_CHECK_UID, "UID %u: file %s carries U=%u",
			       r->uid, f->relname, f->fn.uid);
		if (f->fn.flags != r->flags)
			report(cc, name, STORE_CHECK_FLAGS,
			       "UID %u: flags 0x%x in the index, 0x%x in the file name",
			       r->uid, r->flags, f->fn.flags);
		if (f->disk_size != r->size)
			report(cc, name, STORE_CHECK_SIZE,
			       "UID %u: %llu bytes in the index, %llu on disk", r->uid,
			       (unsigned long long)r->size, (unsigned long long)f->disk_size);
	}
	for (size_t i = 0; i < nfiles; i++) {
		if (!files[i].matched)
			report(cc, name, STORE_CHECK_FILE_UNINDEXED, "file %s is not in the index",
			       files[i].relname);
	}

	/* Two files claiming one UID: a rebuild would have to renumber one. */
	struct check_file **by_uid = xcalloc(nfiles + 1, sizeof(*by_uid));
	size_t nuid = 0;

	for (size_t i = 0; i < nfiles; i++) {
		if (files[i].fn.uid != 0)
			by_uid[nuid++] = &files[i];
	}
	if (nuid > 1)
		qsort(by_uid, nuid, sizeof(*by_uid), file_by_uid);
	for (size_t i = 1; i < nuid; i++) {
		if (by_uid[i]->fn.uid == by_uid[i - 1]->fn.uid)
			report(cc, name, STORE_CHECK_DUPLICATE_UID, "U=%u: both %s and %s",
			       by_uid[i]->fn.uid, by_uid[i - 1]->relname, by_uid[i]->relname);
	}
	free(by_uid);
	ret = 0;
out:
	free_files(files, nfiles);
	free_rows(rows, nrows);
	return ret;
}

static int check_folder(struct check_ctx *cc, const char *name, struct store_error *err)
{
	struct store_mbox_row row;
	struct store_uidstate us;
	char *folder = store__folder_path(cc->u, name, err);
	int ret = -1;

	if (folder == NULL)
		return -1;
	if (store__exec(cc->u, "BEGIN IMMEDIATE", err) < 0)
		goto out;
	int found = store__mbox_get(cc->u, name, &row, err);

	if (found < 0)
		goto rollback;
	if (found == 0) {
		/* Removed by someone else since the listing. */
		ret = 0;
		goto rollback;
	}
	cc->sum->mailboxes++;
	if (store__uidstate_read(folder, &us, err) < 0)
		goto rollback;
	if (us.uidvalidity == 0)
		report(cc, name, STORE_CHECK_UIDSTATE, "no " STORE_UIDSTATE_FILE " in the folder");
	else if (us.uidvalidity != row.uidvalidity)
		report(cc, name, STORE_CHECK_UIDSTATE,
		       "UIDVALIDITY %u in the index, %u in " STORE_UIDSTATE_FILE,
		       row.uidvalidity, us.uidvalidity);
	else if (row.uidnext > us.uid_ceiling)
		report(cc, name, STORE_CHECK_UIDSTATE,
		       "UIDNEXT %u is above the reservation %u in " STORE_UIDSTATE_FILE,
		       row.uidnext, us.uid_ceiling);
	ret = check_messages(cc, name, folder, &row, err);
rollback:
	store__rollback(cc->u);
out:
	free(folder);
	return ret;
}

static int check_usage(struct check_ctx *cc, struct store_error *err)
{
	sqlite3_stmt *st;
	int ret = -1;

	if (sqlite3_prepare_v2(cc->u->db, "SELECT (SELECT bytes FROM usage WHERE id = 1),"
			       " (SELECT messages FROM usage WHERE id = 1),"
			       " (SELECT coalesce(sum(vsize), 0) FROM message),"
			       " (SELECT count(*) FROM message)", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, cc->u->db, "usage");
	if (sqlite3_step(st) == SQLITE_ROW) {
		uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t messages = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t sum_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		uint64_t sum_messages = (uint64_t)sqlite3_column_int64(st, 3);

		if (bytes != sum_bytes || messages != sum_messages)
			report(cc, NULL, STORE_CHECK_USAGE,
			       "usage says %llu bytes in %llu messages; the messages add up to"
			       " %llu bytes in %llu", (unsigned long long)bytes,
			       (unsigned long long)messages, (unsigned long long)sum_bytes,
			       (unsigned long long)sum_messages);
		ret = 0;
	} else {
		store__fail_db(err, cc->u->db, "usage");
	}
	sqlite3_finalize(st);
	return ret;
}

static bool folder_on_disk(const char *folder)
{
	char path[4400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/cur", folder);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Mailboxes of the index against the folders on disk, then each folder. */
static int check_all(struct check_ctx *cc, struct store_error *err)
{
	sqlite3_stmt *st;
	char **names = NULL;
	size_t count = 0;
	int ret = 0;

	if (sqlite3_prepare_v2(cc->u->db, "SELECT name FROM mailbox ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return store__fail_db(err, cc->u->db, "list");
	while (sqlite3_step(st) == SQLITE_ROW) {
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);

	DIR *d = opendir(cc->u->maildir);
	struct dirent *e;
	char name[STORE_NAME_MAX + 1];

	if (d == NULL) {
		ret = store__fail_errno(err, errno, "opendir %s", cc->u->maildir);
		goto out;
	}
	while ((e = readdir(d)) != NULL) {
		bool known = false;

		if (e->d_name[0] != '.' || store_dir_to_name(e->d_name, name, sizeof(name)) < 0)
			continue;
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", cc->u->maildir, e->d_name);
		if (!folder_on_disk(path))
			continue;
		for (size_t i = 0; i < count && !known; i++)
			known = strcmp(names[i], name) == 0;
		if (!known)
			report(cc, name, STORE_CHECK_FOLDER_UNINDEXED,
			       "folder %s is not in the index", e->d_name);
	}
	closedir(d);

	for (size_t i = 0; i < count && ret == 0; i++) {
		char *folder = store__folder_path(cc->u, names[i], err);

		if (folder == NULL) {
			report(cc, names[i], STORE_CHECK_FOLDER_MISSING,
			       "the index has a mailbox with a bad name");
			continue;
		}
		bool present = folder_on_disk(folder);

		free(folder);
		if (!present) {
			report(cc, names[i], STORE_CHECK_FOLDER_MISSING,
			       "the mailbox's folder is gone");
			continue;
		}
		ret = check_folder(cc, names[i], err);
	}
	if (ret == 0)
		ret = check_usage(cc, err);
out:
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return ret;
}

int store_user_check(const char *user_dir, store_check_cb *cb, void *data,
		     struct store_check_summary *sum_r, struct store_error *err)
{
	struct store_user u = { 0 };
	struct check_ctx cc = { .u = &u, .cb = cb, .data = data, .sum = sum_r };
	size_t n = strlen(user_dir) + sizeof("/Maildir");
	char *index_path;
	struct stat st;
	int ret = -1;

	memset(sum_r, 0, sizeof(*sum_r));
	u.dir = xstrdup(user_dir);
	u.maildir = xcalloc(1, n);
	snprintf(u.maildir, n, "%s/Maildir", user_dir);
	n = strlen(user_dir) + sizeof("/" STORE_INDEX_FILE);
	index_path = xcalloc(1, n);
	snprintf(index_path, n, "%s/" STORE_INDEX_FILE, user_dir);

	if (stat(u.maildir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		store__fail(err, STORE_ERR_NOTFOUND, "no Maildir in %s", user_dir);
		goto out;
	}
	if (stat(index_path, &st) < 0) {
		if (errno != ENOENT) {
			store__fail_errno(err, errno, "stat %s", index_path);
			goto out;
		}
		report(&cc, NULL, STORE_CHECK_NO_INDEX,
		       "there is no index (the next open rebuilds it)");
		ret = 0;
		goto out;
	}
	/* No SQLITE_OPEN_CREATE: an index that vanished meanwhile is not
	 * replaced by an empty one. */
	if (sqlite3_open_v2(index_path, &u.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		store__fail_db(err, u.db, "open");
		goto out;
	}
	sqlite3_busy_timeout(u.db, CHECK_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(u.db, 1);
	if (store__index_needs_rebuild(&u)) {
		report(&cc, NULL, STORE_CHECK_NO_INDEX,
		       "the index is incomplete (a rebuild was interrupted or never ran)");
		ret = 0;
		goto out;
	}
	ret = check_all(&cc, err);
	if (ret < 0) {
		int code = sqlite3_extended_errcode(u.db) & 0xff;

		if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
			err->code = STORE_ERR_CORRUPT;
	}
out:
	/* With the statements the check's lookups cached on it. */
	store__index_close(&u);
	free(index_path);
	free(u.dir);
	free(u.maildir);
	return ret;
}

int store_user_usage_recalc(struct store_user *u, uint64_t *old_bytes_r,
			    uint64_t *old_messages_r, uint64_t *bytes_r, uint64_t *messages_r,
			    struct store_error *err)
{
	struct arena *a = arena_new(0);
	struct store_mailbox_info *list;
	size_t count;
	int ret = -1;

	if (store_user_usage(u, old_bytes_r, old_messages_r, err) < 0 ||
	    store_mailbox_list(u, a, &list, &count, err) < 0)
		goto out;
	/* Each folder in full, so files added or removed by other programs
	 * count (or stop counting) before the sum is taken. */
	for (size_t i = 0; i < count; i++) {
		if (list[i].exists && store__sync_folder(u, list[i].name, true, err) < 0 &&
		    err->code != STORE_ERR_NOTFOUND)
			goto out;
	}
	if (store__begin(u, false, err) < 0)
		goto out;
	if (store__exec(u, "INSERT OR REPLACE INTO usage VALUES (1,"
			" (SELECT coalesce(sum(vsize), 0) FROM message),"
			" (SELECT count(*) FROM message))", err) < 0) {
		store__rollback(u);
		goto out;
	}
	if (store__commit(u, err) < 0)
		goto out;
	ret = store_user_usage(u, bytes_r, messages_r, err);
out:
	arena_free(&a);
	return ret;
}
