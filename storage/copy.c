/*
 * copy.c — COPY and MOVE between a user's folders. A copy is a hard link
 * (the same file, a new name carrying the destination UID), or a copy of
 * the bytes where the file system cannot link. A message keeps its GUID.
 * Everything happens in one durable transaction: the destination gets its
 * UIDs and, for a move, the source its expunges, or nothing happens at all
 * (the names are put back when the transaction fails).
 */
#include "storage-private.h"
#include "fts-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bytes, durably, where a hard link is not possible. */
static int copy_bytes(const char *from, const char *to, struct store_error *err)
{
	int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	char buf[65536];
	ssize_t n;
	int ret = -1;

	if (in < 0 || out < 0) {
		store__fail_errno(err, errno, "open %s", in < 0 ? from : to);
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			store__fail_errno(err, errno == 0 ? ENOSPC : errno, "write %s", to);
			goto out;
		}
	}
	if (n < 0 || fdatasync(out) < 0) {
		store__fail_errno(err, errno, "copy %s", from);
		goto out;
	}
	ret = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret < 0 && out >= 0)
		unlink(to);
	return ret;
}

/* Keyword bits of the source folder to bits of the destination's list.
 * A bit beyond the view's list is a keyword another session made since
 * the view was loaded: the list is read again from the folder's file,
 * which has it (the caller holds the write lock; the list only grows). */
static int map_keywords(struct store_mailbox *mb, uint64_t src, const char *dst_folder,
			char ***dst_list, unsigned *dst_count, uint64_t *dst_r,
			struct store_error *err)
{
	char **names = mb->keywords, **fresh = NULL;
	unsigned count = mb->keyword_count;
	int ret = 0;

	*dst_r = 0;
	if (count < 64 && (src >> count) != 0) {
		if (store__keywords_load(mb->folder, &fresh, &count, err) < 0) {
			store__keywords_free(fresh, count);
			return -1;
		}
		names = fresh;
	}
	for (unsigned i = 0; i < count && i < 64; i++) {
		if ((src & ((uint64_t)1 << i)) == 0 || names[i][0] == '\0')
			continue;
		int idx = store__keyword_index(dst_folder, dst_list, dst_count, names[i], true,
					       err);

		if (idx < 0) {
			ret = -1;
			break;
		}
		*dst_r |= (uint64_t)1 << idx;
	}
	if (fresh != NULL)
		store__keywords_free(fresh, count);
	return ret;
}

struct created {
	char path[4096];        /* the new name in the destination */
	char src_path[4096];    /* the source file (removed by a move) */
	bool src_removed;       /* a move removed the source name already */
};

/* Does the mailbox hold a message with this GUID? 1, 0, or -1. */
static int guid_in_mailbox(struct store_user *u, int64_t mailbox_id, const char *guid,
			   struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_COPY_GUID,
				       "SELECT 1 FROM message WHERE mailbox_id = ? AND guid = ?", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, guid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store__fail_db(err, u->db, "copy");
	return rc == SQLITE_ROW;
}

int store_mailbox_copy(struct store_mailbox *mb, const uint32_t *uids, size_t count,
		       const char *dest, bool move, uint32_t *dest_uidvalidity_r,
		       uint32_t *dest_uids_r, struct store_error *err)
{
	struct store_user *u = mb->user;
	struct store_mbox_row src_row, dst_row;
	char **dst_keywords = NULL;
	unsigned dst_keyword_count = 0;
	struct created *made = xcalloc(count + 1, sizeof(*made));
	size_t nmade = 0;
	char *dst_folder = NULL;
	int ret = -1;
	int found = store__mbox_find(u, dest, &dst_row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", dest);
		free(made);
		return -1;
	}
	dst_folder = store__folder_path(u, dest, err);
	if (dst_folder == NULL || store__keywords_load(dst_folder, &dst_keywords,
						       &dst_keyword_count, err) < 0)
		goto out;
	if (store__begin(u, true, err) < 0)
		goto out;
	if (store__mbox_get(u, mb->name, &src_row, err) <= 0 ||
	    store__mbox_get(u, dest, &dst_row, err) <= 0) {
		store__fail(err, STORE_ERR_NOTFOUND, "mailbox is gone");
		goto rollback;
	}
	bool same = src_row.id == dst_row.id;
	uint64_t dst_modseq = dst_row.highestmodseq + 1;
	uint64_t src_modseq = same ? dst_modseq : src_row.highestmodseq + 1;
	bool any = false;

	if (store__uidstate_reserve(dst_folder, &dst_row, 0, dst_modseq, err) < 0 ||
	    (move && !same && store__uidstate_reserve(mb->folder, &src_row, 0, src_modseq,
						      err) < 0))
		goto rollback;
	for (size_t i = 0; i < count; i++) {
		struct store_msg_row m;

		dest_uids_r[i] = 0;
		found = store__msg_row(mb, uids[i], &m, err);
		if (found < 0)
			goto rollback;
		if (found == 0)
			continue;
		if (!move && store__quota_check(u, m.vsize, 1, err) < 0)
			goto rollback;
		uint32_t uid = dst_row.uidnext;
		uint64_t kw;

		if (uid == UINT32_MAX) {
			store__fail(err, STORE_ERR_LIMIT, "no UIDs left in %s", dest);
			goto rollback;
		}
		if (store__uidstate_reserve(dst_folder, &dst_row, uid, dst_modseq, err) < 0 ||
		    map_keywords(mb, m.keywords, dst_folder, &dst_keywords, &dst_keyword_count,
				 &kw, err) < 0)
			goto rollback;
		struct store_filename fn;
		const char *base = strchr(m.filename, '/');
		char name[512], relname[600], src_path[4096];

		if (base == NULL || store_filename_parse(base + 1, &fn) < 0) {
			store__fail(err, STORE_ERR_TEMP, "bad file name %s in index", m.filename);
			goto rollback;
		}
		/* Within one folder the GUID names one message (sync matches files
		 * by it): a second copy into a folder that has it gets a GUID of
		 * its own, and its own full-text document. */
		int has = guid_in_mailbox(u, dst_row.id, fn.base, err);

		if (has < 0)
			goto rollback;
		if (has > 0)
			store_new_base(fn.base, sizeof(fn.base));
		fn.uid = uid;
		fn.size = m.size;
		fn.vsize = m.vsize;
		fn.has_size = fn.has_vsize = true;
		fn.flags = m.flags;
		fn.keywords = (uint32_t)(kw & 0x3FFFFFF);
		fn.has_info = true;
		if (store_filename_build(&fn, name, sizeof(name)) < 0) {
			store__fail(err, STORE_ERR_TEMP, "file name too long");
			goto rollback;
		}
		snprintf(relname, sizeof(relname), "cur/%s", name);
		snprintf(src_path, sizeof(src_path), "%s/%s", mb->folder, m.filename);
		snprintf(made[nmade].src_path, sizeof(made[nmade].src_path), "%s", src_path);
		snprintf(made[nmade].path, sizeof(made[nmade].path), "%s/%s", dst_folder, relname);
		bool linked = link(src_path, made[nmade].path) == 0;

		if (!linked) {
			if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
				store__fail_errno(err, errno, "link %s", src_path);
				goto rollback;
			}
			if (copy_bytes(src_path, made[nmade].path, err) < 0)
				goto rollback;
		}
		/* A move takes the source name away now, while the new name
		 * holds the file: the message always has one name, and an
		 * interrupted move leaves it in one folder only. */
		made[nmade].src_removed = move && linked && unlink(src_path) == 0;
		nmade++;
		sqlite3_stmt *st = store__stmt(u, STORE_STMT_COPY_ROW,
				"INSERT INTO message (mailbox_id, uid, guid, filename, flags,"
				" keywords, modseq, internal_date, save_date, size, vsize)"
				" VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s', 'now'), ?, ?)", err);

		if (st == NULL)
			goto rollback;
		sqlite3_bind_int64(st, 1, dst_row.id);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_text(st, 3, fn.base, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, relname, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 5, m.flags);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)kw);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)dst_modseq);
		sqlite3_bind_int64(st, 8, m.internal_date);
		sqlite3_bind_int64(st, 9, (sqlite3_int64)m.size);
		sqlite3_bind_int64(st, 10, (sqlite3_int64)m.vsize);
		if (store__step_cached(u, st, "copy", err) < 0)
			goto rollback;
		/* The parse results go along (message-meta.c). */
		if (store__meta_copy(u, src_row.id, uids[i], dst_row.id, uid, fn.base, err) < 0)
			goto rollback;
		if (move && store__expunge_row(u, src_row.id, uids[i], src_modseq, err) < 0)
			goto rollback;
		store__digest_name(u, &dst_row, relname, true);
		if (move)
			store__digest_name(u, same ? &dst_row : &src_row, m.filename, false);
		dest_uids_r[i] = uid;
		dst_row.uidnext = uid + 1;
		any = true;
	}
	if (any) {
		char sql[300];

		snprintf(sql, sizeof(sql),
			 "UPDATE mailbox SET uidnext = %u, highestmodseq = %llu, uid_ceiling = %u,"
			 " modseq_ceiling = %llu WHERE id = %lld;",
			 dst_row.uidnext, (unsigned long long)dst_modseq, dst_row.uid_ceiling,
			 (unsigned long long)dst_row.modseq_ceiling, (long long)dst_row.id);
		if (store__exec(u, sql, err) < 0 || store__mbox_save_digests(u, &dst_row, err) < 0)
			goto rollback;
		if (move && !same) {
			snprintf(sql, sizeof(sql),
				 "UPDATE mailbox SET highestmodseq = %llu, modseq_ceiling = %llu"
				 " WHERE id = %lld;", (unsigned long long)src_modseq,
				 (unsigned long long)src_row.modseq_ceiling, (long long)src_row.id);
			if (store__exec(u, sql, err) < 0 ||
			    store__mbox_save_digests(u, &src_row, err) < 0)
				goto rollback;
		}
	}
	if (store__commit(u, err) < 0)
		goto undo_files;
	/* The new names are durable before the caller reports success. */
	char cur[4096];

	snprintf(cur, sizeof(cur), "%s/cur", dst_folder);
	if (any && store__fsync_dir(cur, err) < 0)
		goto out;
	/* Copied bytes (no link possible): the source goes after the commit;
	 * cut short, a sync finds it again — a duplicate, never a loss. */
	for (size_t i = 0; move && i < nmade; i++) {
		if (!made[i].src_removed)
			unlink(made[i].src_path);
	}
	*dest_uidvalidity_r = dst_row.uidvalidity;
	if (move && any)
		store__fts_gone_bound(u);
	ret = 0;
	goto out;
rollback:
	store__rollback(u);
undo_files:
	for (size_t i = 0; i < nmade; i++) {
		if (made[i].src_removed && link(made[i].path, made[i].src_path) < 0) {
			/* Keep the only name the message has left. */
			log_error("cannot restore %s after a failed move: %s", made[i].src_path,
				  strerror(errno));
			continue;
		}
		unlink(made[i].path);
	}
out:
	store__keywords_free(dst_keywords, dst_keyword_count);
	free(dst_folder);
	free(made);
	if (ret == 0)
		return store__view_refresh(mb, err);
	return ret;
}
