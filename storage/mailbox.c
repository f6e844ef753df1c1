/*
 * mailbox.c — folders: create, delete, rename, subscriptions, list and
 * status. A folder is a Maildir++ directory; the index's mailbox row holds
 * its UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ (mirrored from tern-uidstate
 * where they must survive the index). Folders that other programs create or
 * remove are picked up when mailboxes are listed or looked up.
 */
#include "storage-private.h"
#include "fts-private.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static bool folder_exists(const char *folder)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/cur", folder);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Add a folder that exists on disk to the index (inside a write
 * transaction). Its tern-uidstate, if any, decides UIDVALIDITY and where
 * UIDs and modseqs continue. */
int store__mbox_register(struct store_user *u, const char *name, const char *folder,
			 uint32_t special_use, struct store_mbox_row *row_r,
			 struct store_error *err)
{
	struct store_uidstate us;
	sqlite3_stmt *st;

	memset(row_r, 0, sizeof(*row_r));
	/* A folder another program (or a crash) left without all of cur/
	 * new/ tmp/ is completed. */
	if (store__folder_create_dirs(folder, strcmp(name, "INBOX") == 0, err) < 0 ||
	    store__uidstate_read(folder, &us, err) < 0)
		return -1;
	if (us.uidvalidity == 0) {
		/* A new folder. */
		us.uidvalidity = store__new_uidvalidity();
		us.uid_ceiling = 1 + STORE_UID_RESERVE;
		us.modseq_ceiling = 1 + STORE_MODSEQ_RESERVE;
		if (store__uidstate_write(folder, &us, err) < 0)
			return -1;
		row_r->uidnext = 1;
		row_r->highestmodseq = 1;
	} else {
		/* A folder the index lost: every UID and modseq below the
		 * reservation may have been seen by a client. */
		row_r->uidnext = us.uid_ceiling > 0 ? us.uid_ceiling : 1;
		row_r->highestmodseq = us.modseq_ceiling > 0 ? us.modseq_ceiling : 1;
	}
	row_r->uidvalidity = us.uidvalidity;
	row_r->special_use = special_use;
	row_r->uid_ceiling = us.uid_ceiling;
	row_r->modseq_ceiling = us.modseq_ceiling;
	if (sqlite3_prepare_v2(u->db,
			       "INSERT INTO mailbox (name, uidvalidity, uidnext, highestmodseq,"
			       " special_use, uid_ceiling, modseq_ceiling, history_modseq)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?4)",
			       -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "insert mailbox");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, row_r->uidvalidity);
	sqlite3_bind_int64(st, 3, row_r->uidnext);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)row_r->highestmodseq);
	sqlite3_bind_int64(st, 5, special_use);
	sqlite3_bind_int64(st, 6, row_r->uid_ceiling);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)row_r->modseq_ceiling);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store__fail_db(err, u->db, "insert mailbox");
	row_r->id = sqlite3_last_insert_rowid(u->db);
	row_r->history_modseq = row_r->highestmodseq;
	return 0;
}

/* Special-use of the folders created for a new user, by name. */
uint32_t store__default_special_use(const char *name)
{
	static const struct {
		const char *name;
		uint32_t use;
	} map[] = {
		{ "Drafts", STORE_USE_DRAFTS }, { "Sent", STORE_USE_SENT },
		{ "Trash", STORE_USE_TRASH }, { "Junk", STORE_USE_JUNK },
		{ "Archive", STORE_USE_ARCHIVE },
	};

	for (size_t i = 0; i < N_ELEMENTS(map); i++) {
		if (strcmp(name, map[i].name) == 0)
			return map[i].use;
	}
	return 0;
}

int store__mbox_find(struct store_user *u, const char *name, struct store_mbox_row *row_r,
		     struct store_error *err)
{
	int found = store__mbox_get(u, name, row_r, err);

	if (found != 0)
		return found;
	char *folder = store__folder_path(u, name, err);

	if (folder == NULL)
		return -1;
	if (!folder_exists(folder)) {
		free(folder);
		return 0;
	}
	/* On disk but unknown to the index: created by another program. */
	if (store__begin(u, true, err) < 0) {
		free(folder);
		return -1;
	}
	found = store__mbox_get(u, name, row_r, err);
	if (found == 0 && store__mbox_register(u, name, folder, store__default_special_use(name),
					       row_r, err) == 0)
		found = 1;
	free(folder);
	if (found < 0) {
		store__rollback(u);
		return -1;
	}
	return store__commit(u, err) < 0 ? -1 : 1;
}

/* Normalise INBOX's case; everything else is case-sensitive. */
static const char *canonical(const char *name)
{
	if (strcasecmp(name, "INBOX") == 0)
		return "INBOX";
	return name;
}

int store_mailbox_create(struct store_user *u, const char *name, uint32_t special_use,
			 struct store_error *err)
{
	struct store_mbox_row row;
	char *folder;
	int ret = -1;

	name = canonical(name);
	folder = store__folder_path(u, name, err);
	if (folder == NULL)
		return -1;
	if (store__begin(u, true, err) < 0)
		goto out;
	int found = store__mbox_get(u, name, &row, err);

	if (found != 0 || folder_exists(folder)) {
		if (found >= 0)
			store__fail(err, STORE_ERR_EXISTS, "mailbox %s exists", name);
		store__rollback(u);
		goto out;
	}
	if (store__folder_create_dirs(folder, strcmp(name, "INBOX") == 0, err) < 0 ||
	    store__mbox_register(u, name, folder, special_use, &row, err) < 0) {
		store__rollback(u);
		goto out;
	}
	ret = store__commit(u, err);
out:
	free(folder);
	return ret;
}

int store_mailbox_delete(struct store_user *u, const char *name, struct store_error *err)
{
	struct store_mbox_row row;
	char *folder;
	int ret = -1;

	name = canonical(name);
	if (strcmp(name, "INBOX") == 0)
		return store__fail(err, STORE_ERR_PERM, "INBOX cannot be deleted");
	folder = store__folder_path(u, name, err);
	if (folder == NULL)
		return -1;
	int found = store__mbox_find(u, name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		goto out;
	}
	if (store__begin(u, true, err) < 0)
		goto out;
	/* Again under the lock: the wait for it may have seen the mailbox
	 * renamed or deleted, and another made under its name. */
	found = store__mbox_get(u, name, &row, err);
	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		store__rollback(u);
		goto out;
	}
	/* First take the folder out of the Maildir in one rename, so a crash
	 * cannot leave it half deleted; the rest is cleanup. */
	char trash[4096];

	snprintf(trash, sizeof(trash), "%s/..DELETED.%u.%lld", u->maildir, row.uidvalidity,
		 (long long)store__now_ns());
	if (rename(folder, trash) < 0) {
		store__fail_errno(err, errno, "rename %s", folder);
		store__rollback(u);
		goto out;
	}
	sqlite3_stmt *st;
	static const char *const deletes[] = {
		"DELETE FROM message WHERE mailbox_id = ?",
		"DELETE FROM expunged WHERE mailbox_id = ?",
		"DELETE FROM view_cache WHERE mailbox_id = ?",
		"DELETE FROM mailbox WHERE id = ?",
	};

	for (size_t i = 0; i < N_ELEMENTS(deletes); i++) {
		if (sqlite3_prepare_v2(u->db, deletes[i], -1, &st, NULL) != SQLITE_OK) {
			store__fail_db(err, u->db, "delete mailbox");
			goto undo;
		}
		sqlite3_bind_int64(st, 1, row.id);
		int rc = sqlite3_step(st);

		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			store__fail_db(err, u->db, "delete mailbox");
			goto undo;
		}
	}
	if (store__commit(u, err) < 0) {
		rename(trash, folder);
		goto out;
	}
	store__fsync_dir(u->maildir, err);
	store__remove_tree(trash);
	store__fts_gone_bound(u);
	ret = 0;
	goto out;
undo:
	rename(trash, folder);
	store__rollback(u);
out:
	free(folder);
	return ret;
}

/* Folders below name ("name/..."), by their index rows. */
static int rename_children(struct store_user *u, const char *from, const char *to,
			   bool undo, struct store_error *err)
{
	sqlite3_stmt *st;
	size_t flen = strlen(from);
	int ret = 0;

	if (sqlite3_prepare_v2(u->db, "SELECT name FROM mailbox WHERE substr(name, 1, ?) = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "rename");
	char prefix[STORE_NAME_MAX + 2];

	snprintf(prefix, sizeof(prefix), "%s/", undo ? to : from);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)strlen(prefix));
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *child = (const char *)sqlite3_column_text(st, 0);
		char newname[STORE_NAME_MAX * 2 + 2];
		const char *rest = child + (undo ? strlen(to) : flen);

		snprintf(newname, sizeof(newname), "%s%s", undo ? from : to, rest);
		char *a = store__folder_path(u, child, err);
		char *b = a == NULL ? NULL : store__folder_path(u, newname, err);

		if (a == NULL || b == NULL || (rename(a, b) < 0 && errno != ENOENT)) {
			if (a != NULL && b != NULL)
				store__fail_errno(err, errno, "rename %s", a);
			ret = -1;
		}
		free(a);
		free(b);
		if (ret < 0 && !undo)
			break;
	}
	sqlite3_finalize(st);
	return ret;
}

/* RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox and
 * leaves INBOX empty (its children stay where they are). */
static int rename_inbox(struct store_user *u, const char *to, struct store_error *err)
{
	struct store_mailbox *mb;
	int ret = -1;

	if (store_mailbox_create(u, to, 0, err) < 0)
		return -1;
	if (store_mailbox_open(u, "INBOX", &mb, err) < 0)
		return -1;
	uint32_t n = store_mailbox_count(mb);
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	uint32_t *dest = xcalloc(n + 1, sizeof(*dest));
	uint32_t uidvalidity;

	for (uint32_t seq = 1; seq <= n; seq++)
		uids[seq - 1] = store_mailbox_msg(mb, seq)->uid;
	ret = store_mailbox_copy(mb, uids, n, to, true, &uidvalidity, dest, err);
	free(uids);
	free(dest);
	store_mailbox_close(&mb);
	return ret;
}

int store_mailbox_rename(struct store_user *u, const char *from, const char *to,
			 struct store_error *err)
{
	struct store_mbox_row row, other;
	char *src = NULL, *dst = NULL;
	int ret = -1;

	from = canonical(from);
	to = canonical(to);
	if (strcmp(from, "INBOX") == 0)
		return rename_inbox(u, to, err);
	if (strcmp(to, "INBOX") == 0)
		return store__fail(err, STORE_ERR_EXISTS, "mailbox INBOX exists");
	size_t flen = strlen(from);

	if (strncmp(to, from, flen) == 0 && to[flen] == STORE_SEP)
		return store__fail(err, STORE_ERR_BADNAME, "cannot move a mailbox into itself");
	src = store__folder_path(u, from, err);
	dst = src == NULL ? NULL : store__folder_path(u, to, err);
	if (dst == NULL)
		goto out;
	int found = store__mbox_find(u, from, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", from);
		goto out;
	}
	if (store__begin(u, true, err) < 0)
		goto out;
	int exists = store__mbox_get(u, to, &other, err);

	if (exists != 0 || folder_exists(dst)) {
		if (exists >= 0)
			store__fail(err, STORE_ERR_EXISTS, "mailbox %s exists", to);
		store__rollback(u);
		goto out;
	}
	if (rename(src, dst) < 0) {
		store__fail_errno(err, errno, "rename %s", src);
		store__rollback(u);
		goto out;
	}
	if (rename_children(u, from, to, false, err) < 0)
		goto undo;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(u->db,
			       "UPDATE mailbox SET name = ?2 || substr(name, ?3 + 1)"
			       " WHERE name = ?1 OR substr(name, 1, ?3 + 1) = ?1 || '/'",
			       -1, &st, NULL) != SQLITE_OK) {
		store__fail_db(err, u->db, "rename");
		goto undo;
	}
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)flen);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store__fail_db(err, u->db, "rename");
		goto undo;
	}
	if (store__commit(u, err) < 0)
		goto undo_disk;
	store__fsync_dir(u->maildir, err);
	ret = 0;
	goto out;
undo:
	store__rollback(u);
undo_disk:
	rename_children(u, from, to, true, err);
	rename(dst, src);
out:
	free(src);
	free(dst);
	return ret;
}

#define SUBSCRIPTIONS_FILE "subscriptions"

/* Rewrite the Maildir's subscriptions file from the index (in the write
 * transaction that changed it). */
static int subscriptions_save(struct store_user *u, struct store_error *err)
{
	struct buf text;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(u->db, "SELECT name FROM subscription ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "subscriptions");
	buf_init(&text, SIZE_MAX / 2);
	while (sqlite3_step(st) == SQLITE_ROW)
		buf_printf(&text, "%s\n", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	int ret = store__write_file_atomic(u->maildir, SUBSCRIPTIONS_FILE, text.data, text.len,
					   err);

	buf_release(&text);
	return ret;
}

int store__subscriptions_load(struct store_user *u, struct store_error *err)
{
	char path[4096], line[STORE_NAME_MAX + 2], dir[1024];
	const char *why;

	snprintf(path, sizeof(path), "%s/" SUBSCRIPTIONS_FILE, u->maildir);
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return errno == ENOENT ? 0 : store__fail_errno(err, errno, "open %s", path);
	if (store__begin(u, false, err) < 0) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (store_name_to_dir(line, dir, sizeof(dir), &why) < 0)
			continue;
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(u->db, "INSERT OR IGNORE INTO subscription VALUES (?)", -1,
				       &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, line, -1, SQLITE_TRANSIENT);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
	}
	fclose(f);
	return store__commit(u, err);
}

int store_mailbox_subscribe(struct store_user *u, const char *name, bool subscribe,
			    struct store_error *err)
{
	char dir[1024];
	const char *why;
	sqlite3_stmt *st;

	name = canonical(name);
	if (store_name_to_dir(name, dir, sizeof(dir), &why) < 0)
		return store__fail(err, STORE_ERR_BADNAME, "bad mailbox name: %s", why);
	if (store__begin(u, false, err) < 0)
		return -1;
	if (sqlite3_prepare_v2(u->db, subscribe ?
			       "INSERT OR IGNORE INTO subscription VALUES (?)" :
			       "DELETE FROM subscription WHERE name = ?", -1, &st, NULL) != SQLITE_OK) {
		store__fail_db(err, u->db, "subscribe");
		store__rollback(u);
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store__fail_db(err, u->db, "subscribe");
		store__rollback(u);
		return -1;
	}
	if (subscriptions_save(u, err) < 0) {
		store__rollback(u);
		return -1;
	}
	return store__commit(u, err);
}

/* Make the mailbox table match the folders on disk: register folders that
 * other programs created, forget those they removed. */
static int folders_reconcile(struct store_user *u, struct store_error *err)
{
	DIR *d = opendir(u->maildir);
	struct dirent *e;
	char name[STORE_NAME_MAX + 1];
	struct store_mbox_row row;

	if (d == NULL)
		return store__fail_errno(err, errno, "opendir %s", u->maildir);
	if (store__mbox_find(u, "INBOX", &row, err) < 0) {
		closedir(d);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || store_dir_to_name(e->d_name, name, sizeof(name)) < 0)
			continue;
		if (store__mbox_find(u, name, &row, err) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	/* Rows whose folder is gone. */
	sqlite3_stmt *st;
	char **gone = NULL;
	size_t ngone = 0;

	if (sqlite3_prepare_v2(u->db, "SELECT name FROM mailbox", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "list");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);
		char *folder = store__folder_path(u, n, err);

		if (folder != NULL && !folder_exists(folder)) {
			gone = xrealloc(gone, (ngone + 1) * sizeof(*gone));
			gone[ngone++] = xstrdup(n);
		}
		free(folder);
	}
	sqlite3_finalize(st);
	int ret = 0;

	for (size_t i = 0; i < ngone; i++) {
		if (ret == 0 && store__begin(u, true, err) == 0) {
			/* Still gone, under the lock: not made again meanwhile. */
			char *folder = store__folder_path(u, gone[i], err);
			bool still_gone = folder != NULL && !folder_exists(folder);

			free(folder);
			if (still_gone && store__mbox_get(u, gone[i], &row, err) == 1) {
				char sql[256];

				snprintf(sql, sizeof(sql),
					 "DELETE FROM message WHERE mailbox_id = %lld;"
					 "DELETE FROM expunged WHERE mailbox_id = %lld;"
					 "DELETE FROM view_cache WHERE mailbox_id = %lld;"
					 "DELETE FROM mailbox WHERE id = %lld;",
					 (long long)row.id, (long long)row.id, (long long)row.id,
					 (long long)row.id);
				if (store__exec(u, sql, err) < 0) {
					store__rollback(u);
					ret = -1;
				}
			}
			if (ret == 0)
				ret = store__commit(u, err);
		}
		free(gone[i]);
	}
	free(gone);
	if (ngone > 0)
		store__fts_gone_bound(u);
	return ret;
}

static int fill_counts(struct store_user *u, int64_t id, struct store_mailbox_info *info,
		       struct store_error *err)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(u->db, "SELECT count(*), coalesce(sum(vsize), 0),"
			       " coalesce(sum((flags & 1) = 0), 0) FROM message WHERE mailbox_id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "status");
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		info->messages = (uint32_t)sqlite3_column_int64(st, 0);
		info->vsize = (uint64_t)sqlite3_column_int64(st, 1);
		info->unseen = (uint32_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return 0;
}

static int info_cmp(const void *a, const void *b)
{
	const struct store_mailbox_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int store_mailbox_list(struct store_user *u, struct arena *a,
		       struct store_mailbox_info **list_r, size_t *count_r,
		       struct store_error *err)
{
	sqlite3_stmt *st;
	struct store_mailbox_info *list = NULL;
	size_t count = 0, cap = 0;

	if (folders_reconcile(u, err) < 0)
		return -1;
	/* Mailboxes, then subscriptions without a mailbox. */
	if (sqlite3_prepare_v2(u->db,
			       "SELECT m.name, m.id, m.uidvalidity, m.uidnext, m.highestmodseq,"
			       " m.special_use, s.name IS NOT NULL FROM mailbox m"
			       " LEFT JOIN subscription s ON s.name = m.name"
			       " UNION ALL SELECT s.name, 0, 0, 0, 0, 0, 1 FROM subscription s"
			       " WHERE s.name NOT IN (SELECT name FROM mailbox)",
			       -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "list");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct store_mailbox_info *n = arena_alloc(a, ncap * sizeof(*n));

			if (count > 0)
				memcpy(n, list, count * sizeof(*n));
			list = n;
			cap = ncap;
		}
		struct store_mailbox_info *mi = &list[count++];
		int64_t id = sqlite3_column_int64(st, 1);

		mi->name = arena_strdup(a, (const char *)sqlite3_column_text(st, 0));
		mi->exists = id != 0;
		mi->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
		mi->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
		mi->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
		mi->special_use = (uint32_t)sqlite3_column_int64(st, 5);
		mi->subscribed = sqlite3_column_int(st, 6) != 0;
		if (mi->exists && fill_counts(u, id, mi, err) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	if (count > 1)
		qsort(list, count, sizeof(*list), info_cmp);
	for (size_t i = 0; i + 1 < count; i++) {
		size_t n = strlen(list[i].name);

		/* Sorted: a child sorts right after its parent's prefix. */
		for (size_t j = i + 1; j < count && strncmp(list[j].name, list[i].name, n) == 0; j++) {
			if (list[j].name[n] == STORE_SEP && list[j].exists) {
				list[i].has_children = true;
				break;
			}
		}
	}
	*list_r = list;
	*count_r = count;
	return 0;
}

int store_mailbox_status(struct store_user *u, const char *name, struct arena *a,
			 struct store_mailbox_info *info_r, struct store_error *err)
{
	struct store_mbox_row row;

	name = canonical(name);
	int found = store__mbox_find(u, name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		return -1;
	}
	if (store__sync_folder(u, name, false, err) < 0)
		return -1;
	memset(info_r, 0, sizeof(*info_r));
	/* UIDNEXT and HIGHESTMODSEQ from the same moment as the counts: read
	 * apart, a delivery or expunge in between shows in one only. */
	if (store__begin_read(u, err) < 0)
		return -1;
	found = store__mbox_get(u, name, &row, err);
	if (found > 0 && fill_counts(u, row.id, info_r, err) < 0)
		found = -1;
	store__rollback(u);
	if (found <= 0) {
		/* Deleted meanwhile. */
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		return -1;
	}
	info_r->name = arena_strdup(a, name);
	info_r->exists = true;
	info_r->uidvalidity = row.uidvalidity;
	info_r->uidnext = row.uidnext;
	info_r->highestmodseq = row.highestmodseq;
	info_r->special_use = row.special_use;
	/* The id only if the folder has one: making one is a synced write,
	 * which a STATUS of every folder must not cost (store_mailbox_id_of
	 * makes it). An unreadable one is left out the same way. */
	char id[STORE_OBJECTID_SIZE];
	struct store_error id_err = { 0 };
	char *folder = store__folder_path(u, name, &id_err);

	if (folder != NULL && store__mailboxid_read(folder, id, &id_err) == 1)
		info_r->mailboxid = arena_strdup(a, id);
	free(folder);
	return 0;
}
