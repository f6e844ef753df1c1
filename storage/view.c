/*
 * view.c — an opened (selected) mailbox: its messages in UID order as last
 * synced, refreshed incrementally by modseq (every change to a message,
 * and every expunge, gets a modseq above the previous highest), flag and
 * keyword changes, and expunge.
 */
#include "storage-private.h"
#include "fts-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void msg_from_row(sqlite3_stmt *st, struct store_msg *m)
{
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->flags = (uint32_t)sqlite3_column_int64(st, 1);
	m->keywords = (uint64_t)sqlite3_column_int64(st, 2);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
	m->internal_date = sqlite3_column_int64(st, 4);
	m->save_date = sqlite3_column_int64(st, 5);
	m->size = (uint64_t)sqlite3_column_int64(st, 6);
	m->vsize = (uint64_t)sqlite3_column_int64(st, 7);
}

uint32_t store_mailbox_seq(const struct store_mailbox *mb, uint32_t uid)
{
	uint32_t lo = 0, hi = mb->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (mb->msgs[mid].uid == uid)
			return mid + 1;
		if (mb->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static void view_put(struct store_mailbox *mb, const struct store_msg *m)
{
	uint32_t seq = store_mailbox_seq(mb, m->uid);

	if (seq != 0) {
		mb->msgs[seq - 1] = *m;
		return;
	}
	if (mb->count == mb->cap) {
		mb->cap = mb->cap == 0 ? 64 : mb->cap * 2;
		mb->msgs = xrealloc(mb->msgs, mb->cap * sizeof(*mb->msgs));
	}
	uint32_t i = mb->count;

	/* New UIDs are almost always the highest: this is an append. */
	while (i > 0 && mb->msgs[i - 1].uid > m->uid) {
		mb->msgs[i] = mb->msgs[i - 1];
		i--;
	}
	mb->msgs[i] = *m;
	mb->count++;
}

static void view_remove(struct store_mailbox *mb, uint32_t uid)
{
	uint32_t seq = store_mailbox_seq(mb, uid);

	if (seq == 0)
		return;
	memmove(&mb->msgs[seq - 1], &mb->msgs[seq], (mb->count - seq) * sizeof(*mb->msgs));
	mb->count--;
}

static int msg_uid_cmp(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Another process may have added keywords to the folder: a bit without a
 * name in this view means the list must be read again. */
static int reload_keywords_if_needed(struct store_mailbox *mb, struct store_error *err)
{
	uint64_t all = 0;

	for (uint32_t i = 0; i < mb->count; i++)
		all |= mb->msgs[i].keywords;
	if (mb->keyword_count >= 64 || (all >> mb->keyword_count) == 0)
		return 0;
	store__keywords_free(mb->keywords, mb->keyword_count);
	mb->keywords = NULL;
	mb->keyword_count = 0;
	return store__keywords_load(mb->folder, &mb->keywords, &mb->keyword_count, err);
}

/* Bring the view up to the index: rows changed and rows expunged since
 * the view's highestmodseq. */
int store__view_refresh(struct store_mailbox *mb, struct store_error *err)
{
	struct store_user *u = mb->user;
	struct store_mbox_row row;
	sqlite3_stmt *st;
	int rc;
	int found = store__mbox_get(u, mb->name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "mailbox %s was deleted", mb->name);
		return -1;
	}
	if (row.uidvalidity != mb->uidvalidity)
		return store__fail(err, STORE_ERR_NOTFOUND, "mailbox %s was recreated", mb->name);
	if (row.id != mb->id) {
		/* The index was rebuilt under this view (same UIDVALIDITY, so the
		 * same UIDs): read the whole list again from the new index. */
		mb->id = row.id;
		mb->count = 0;
		mb->highestmodseq = 0;
		mb->uidnext = 0;
		mb->history_start = row.history_modseq;
	}
	if (row.highestmodseq == mb->highestmodseq && row.uidnext == mb->uidnext)
		return 0;
	/* One read transaction, so rows and expunges are from one moment. */
	mb->cache_ok = false;
	if (store__begin_read(u, err) < 0)
		return -1;
	st = store__stmt(u, STORE_STMT_VIEW_EXPUNGED, "SELECT uid FROM expunged"
			 " WHERE mailbox_id = ? AND modseq > ?", err);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)mb->highestmodseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		view_remove(mb, (uint32_t)sqlite3_column_int64(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto fail;
	/* An empty view reads every row, in UID order. Otherwise the rows
	 * changed since are found through the modseq index (not by walking
	 * every row of the mailbox, which SQLite would pick for ORDER BY uid),
	 * and put in UID order here, so that new messages are appends. */
	bool all = mb->highestmodseq == 0;

	st = all ? store__stmt(u, STORE_STMT_VIEW_ALL,
			       "SELECT uid, flags, keywords, modseq, internal_date, save_date, size,"
			       " vsize FROM message WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
			       err) :
		store__stmt(u, STORE_STMT_VIEW_CHANGED,
			    "SELECT uid, flags, keywords, modseq, internal_date, save_date, size,"
			    " vsize FROM message INDEXED BY message_modseq"
			    " WHERE mailbox_id = ? AND modseq > ?", err);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)mb->highestmodseq);
	struct store_msg *changed = NULL;
	size_t nchanged = 0, cap = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_msg m;

		msg_from_row(st, &m);
		if (all) {
			view_put(mb, &m);
		} else {
			if (nchanged == cap) {
				cap = cap == 0 ? 256 : cap * 2;
				changed = xrealloc(changed, cap * sizeof(*changed));
			}
			changed[nchanged++] = m;
		}
		mb->changes_since_cache++;
	}
	sqlite3_reset(st);
	if (nchanged > 1)
		qsort(changed, nchanged, sizeof(*changed), msg_uid_cmp);
	for (size_t i = 0; i < nchanged; i++)
		view_put(mb, &changed[i]);
	free(changed);
	if (rc != SQLITE_DONE)
		goto fail;
	/* The mailbox row again, inside this snapshot: still the one read
	 * above, not deleted or made again meanwhile. */
	found = store__mbox_get(u, mb->name, &row, err);
	if (found <= 0 || row.id != mb->id || row.uidvalidity != mb->uidvalidity) {
		store__rollback(u);
		if (found == 0)
			return store__fail(err, STORE_ERR_NOTFOUND, "mailbox %s was deleted",
					   mb->name);
		if (found > 0)
			return store__fail(err, STORE_ERR_NOTFOUND, "mailbox %s was recreated",
					   mb->name);
		return -1;
	}
	store__commit(u, err);
	mb->uidnext = row.uidnext;
	mb->highestmodseq = row.highestmodseq;
	mb->cache_ok = true;
	return reload_keywords_if_needed(mb, err);
fail:
	store__fail_db(err, u->db, "load messages");
	store__rollback(u);
	return -1;
}

/*
 * The view cache: a snapshot of a large mailbox's message list, so that
 * opening it reads one blob and then only what changed since (by modseq)
 * instead of every row. Written when a view closes, if the mailbox is large
 * and the snapshot is missing or far behind. Host byte order: the index is
 * not meant to move between machines (it can always be rebuilt).
 */
#define VIEW_CACHE_MIN_MESSAGES 1000
#define VIEW_CACHE_MAGIC 0x5445524eU /* "TERN" */

struct view_cache_header {
	uint32_t magic;
	uint32_t msg_size;      /* sizeof(struct store_msg) when written */
	uint32_t count;
	uint32_t reserved;
};

static void view_cache_load(struct store_mailbox *mb)
{
	struct store_error err = { 0 };
	sqlite3 *db = mb->user->db;
	sqlite3_stmt *st;
	sqlite3_blob *blob;
	struct view_cache_header h;

	/* The row and its blob in one snapshot. The blob is read straight
	 * into the view (sqlite3_blob_read): a column value would be copied
	 * out of its overflow pages once more first. */
	if (store__begin_read(mb->user, &err) < 0)
		return;
	if (sqlite3_prepare_v2(db, "SELECT uidvalidity, highestmodseq, uidnext"
			       " FROM view_cache WHERE mailbox_id = ?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, mb->id);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (uint32_t)sqlite3_column_int64(st, 0) == mb->uidvalidity &&
	    sqlite3_blob_open(db, "main", "view_cache", "data", mb->id, 0, &blob) == SQLITE_OK) {
		size_t len = (size_t)sqlite3_blob_bytes(blob);

		if (len >= sizeof(h) && sqlite3_blob_read(blob, &h, sizeof(h), 0) == SQLITE_OK &&
		    h.magic == VIEW_CACHE_MAGIC && h.msg_size == sizeof(struct store_msg) &&
		    len == sizeof(h) + (size_t)h.count * sizeof(struct store_msg)) {
			mb->cap = h.count > 64 ? h.count : 64;
			mb->msgs = xrealloc(mb->msgs, mb->cap * sizeof(*mb->msgs));
			if (h.count == 0 ||
			    sqlite3_blob_read(blob, mb->msgs, (int)(h.count * sizeof(*mb->msgs)),
					      sizeof(h)) == SQLITE_OK) {
				mb->count = h.count;
				mb->highestmodseq = (uint64_t)sqlite3_column_int64(st, 1);
				mb->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
				mb->cache_modseq = mb->highestmodseq;
			}
		}
		sqlite3_blob_close(blob);
	}
	sqlite3_finalize(st);
out:
	store__commit(mb->user, &err);
}

static void view_cache_save(struct store_mailbox *mb)
{
	struct store_error err = { 0 };
	struct view_cache_header h = {
		.magic = VIEW_CACHE_MAGIC, .msg_size = sizeof(struct store_msg), .count = mb->count,
	};
	size_t len = sizeof(h) + (size_t)mb->count * sizeof(*mb->msgs);
	unsigned char *data = xcalloc(1, len);
	sqlite3_stmt *st;

	memcpy(data, &h, sizeof(h));
	memcpy(data + sizeof(h), mb->msgs, (size_t)mb->count * sizeof(*mb->msgs));
	if (store__begin(mb->user, false, &err) == 0) {
		if (sqlite3_prepare_v2(mb->user->db, "INSERT OR REPLACE INTO view_cache"
				       " VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, mb->id);
			sqlite3_bind_int64(st, 2, mb->uidvalidity);
			sqlite3_bind_int64(st, 3, (sqlite3_int64)mb->highestmodseq);
			sqlite3_bind_int64(st, 4, mb->uidnext);
			sqlite3_bind_blob(st, 5, data, (int)len, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		if (store__commit(mb->user, &err) < 0)
			log_debug("view cache not saved: %s", err.msg);
	}
	free(data);
}

static int64_t folder_message_count(struct store_user *u, int64_t id)
{
	struct store_error err = { 0 };
	sqlite3_stmt *st;
	int64_t n = INT64_MAX;

	st = store__stmt(u, STORE_STMT_COUNT, "SELECT count(*) FROM message WHERE mailbox_id = ?",
			 &err);
	if (st == NULL)
		return n;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/* Fewer than STORE_RESCAN_AT_OPEN_MAX messages (counting no further). */
static bool folder_is_small(struct store_user *u, int64_t id)
{
	struct store_error err = { 0 };
	sqlite3_stmt *st;
	int64_t n = INT64_MAX;

	st = store__stmt(u, STORE_STMT_COUNT_UPTO, "SELECT count(*) FROM (SELECT 1 FROM message"
			 " WHERE mailbox_id = ? LIMIT ?)", &err);
	if (st == NULL)
		return false;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, STORE_RESCAN_AT_OPEN_MAX);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n < STORE_RESCAN_AT_OPEN_MAX;
}

int store_mailbox_open(struct store_user *u, const char *name, struct store_mailbox **mb_r,
		       struct store_error *err)
{
	struct store_mbox_row row;

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	if (store__follow_replaced_index(u, err) < 0)
		return -1;
	int found = store__mbox_find(u, name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		return -1;
	}
	/* Small folders are scanned in full at every open, which also heals an
	 * index that lost a row; large ones only when their directories moved,
	 * and not while another session of ours is writing (the open would
	 * wait for its transaction; the next sync looks). */
	bool small = folder_is_small(u, row.id);

	if ((small ? store__sync_folder(u, name, true, err) :
	     store__sync_folder_nowait(u, name, err)) < 0 ||
	    store__mbox_get(u, name, &row, err) < 0)
		return -1;
	struct store_mailbox *mb = xcalloc(1, sizeof(*mb));

	mb->user = u;
	mb->name = xstrdup(name);
	mb->folder = store__folder_path(u, name, err);
	mb->id = row.id;
	mb->uidvalidity = row.uidvalidity;
	mb->history_start = row.history_modseq;
	/* From the snapshot if there is one, else from an empty view at modseq
	 * 0; the refresh then loads what changed since. */
	mb->uidnext = 0;
	mb->highestmodseq = 0;
	view_cache_load(mb);
	if (store__keywords_load(mb->folder, &mb->keywords, &mb->keyword_count, err) < 0 ||
	    store__view_refresh(mb, err) < 0) {
		store_mailbox_close(&mb);
		return -1;
	}
	/* The snapshot is only as good as the expunge records: an index that
	 * lost rows some other way shows up as a different count. Then read
	 * everything, and let the close write a new snapshot. */
	if (mb->cache_modseq != 0 && mb->count != folder_message_count(u, mb->id)) {
		log_warn("view cache of %s did not match the index: reading it in full", name);
		mb->count = 0;
		mb->highestmodseq = 0;
		mb->uidnext = 0;
		mb->cache_modseq = 0;
		if (store__view_refresh(mb, err) < 0) {
			store_mailbox_close(&mb);
			return -1;
		}
	}
	*mb_r = mb;
	return 0;
}

void store_mailbox_close(struct store_mailbox **mbp)
{
	struct store_mailbox *mb = *mbp;

	if (mb == NULL)
		return;
	/* Refresh the snapshot when the mailbox is large and the snapshot is
	 * missing or more than a tenth of the mailbox behind. */
	if (mb->count >= VIEW_CACHE_MIN_MESSAGES && mb->cache_ok &&
	    (mb->cache_modseq == 0 || mb->changes_since_cache > mb->count / 10))
		view_cache_save(mb);
	store__keywords_free(mb->keywords, mb->keyword_count);
	free(mb->msgs);
	free(mb->name);
	free(mb->folder);
	free(mb);
	*mbp = NULL;
}

int store_mailbox_reopen(struct store_mailbox *mb, struct store_error *err)
{
	if (store__follow_replaced_index(mb->user, err) < 0 ||
	    store__sync_folder_nowait(mb->user, mb->name, err) < 0)
		return -1;
	return store__view_refresh(mb, err);
}

int store_mailbox_sync(struct store_mailbox *mb, struct store_error *err)
{
	if (store__follow_replaced_index(mb->user, err) < 0 ||
	    store__sync_folder(mb->user, mb->name, false, err) < 0)
		return -1;
	return store__view_refresh(mb, err);
}

uint32_t store_mailbox_count(const struct store_mailbox *mb) { return mb->count; }
uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mb) { return mb->uidvalidity; }
uint32_t store_mailbox_uidnext(const struct store_mailbox *mb) { return mb->uidnext; }
uint64_t store_mailbox_highestmodseq(const struct store_mailbox *mb) { return mb->highestmodseq; }

const struct store_msg *store_mailbox_msg(const struct store_mailbox *mb, uint32_t seq)
{
	if (seq == 0 || seq > mb->count)
		return NULL;
	return &mb->msgs[seq - 1];
}

const char *store_mailbox_keyword(const struct store_mailbox *mb, unsigned n)
{
	return n < mb->keyword_count ? mb->keywords[n] : NULL;
}

/* ------------------------------------------------------------ changes */

int store__msg_row(struct store_mailbox *mb, uint32_t uid, struct store_msg_row *row_r,
		   struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(mb->user, STORE_STMT_MSG_ROW,
				       "SELECT filename, flags, keywords, modseq,"
				       " internal_date, size, vsize FROM message"
				       " WHERE mailbox_id = ? AND uid = ?", err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(row_r->filename, sizeof(row_r->filename), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		row_r->flags = (uint32_t)sqlite3_column_int64(st, 1);
		row_r->keywords = (uint64_t)sqlite3_column_int64(st, 2);
		row_r->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		row_r->internal_date = sqlite3_column_int64(st, 4);
		row_r->size = (uint64_t)sqlite3_column_int64(st, 5);
		row_r->vsize = (uint64_t)sqlite3_column_int64(st, 6);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store__fail_db(err, mb->user->db, "message lookup");
}

int store__expunge_row(struct store_user *u, int64_t mailbox_id, uint32_t uid, uint64_t modseq,
		       struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_EXPUNGE_ROW,
				       "DELETE FROM message WHERE mailbox_id = ? AND uid = ?", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if (store__step_cached(u, st, "expunge", err) < 0)
		return -1;
	st = store__stmt(u, STORE_STMT_EXPUNGE_NOTE, "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
			 err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	return store__step_cached(u, st, "expunge", err);
}

int store__msg_path(struct store_mailbox *mb, uint32_t uid, bool resync,
		    struct store_msg_row *row_r, char *path, size_t size, struct store_error *err)
{
	if (resync && store__sync_folder(mb->user, mb->name, true, err) < 0)
		return -1;
	int found = store__msg_row(mb, uid, row_r, err);

	if (found > 0)
		snprintf(path, size, "%s/%s", mb->folder, row_r->filename);
	return found;
}

static int bump_mailbox(struct store_mailbox *mb, struct store_mbox_row *row, uint64_t modseq,
			struct store_error *err)
{
	sqlite3_stmt *st;

	st = store__stmt(mb->user, STORE_STMT_MBOX_BUMP, "UPDATE mailbox SET highestmodseq = ?,"
			 " modseq_ceiling = ? WHERE id = ?", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)row->modseq_ceiling);
	sqlite3_bind_int64(st, 3, mb->id);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store__fail_db(err, mb->user->db, "update mailbox");
	return store__mbox_save_digests(mb->user, row, err);
}

/* The mailbox row under the write lock; NOTFOUND if the mailbox went. */
static int lock_mailbox_row(struct store_mailbox *mb, struct store_mbox_row *row,
			    struct store_error *err)
{
	int found = store__mbox_get(mb->user, mb->name, row, err);

	if (found < 0)
		return -1;
	if (found == 0 || row->id != mb->id)
		return store__fail(err, STORE_ERR_NOTFOUND, "mailbox %s is gone", mb->name);
	return 0;
}

/* Rename the file to carry the new flags (in cur/, where info belongs):
 * 1 if renamed, 0 if the name stays. */
static int rename_for_flags(struct store_mailbox *mb, const char *filename, uint32_t flags,
			    uint64_t keywords, char *newrel, size_t newrel_size,
			    struct store_error *err)
{
	struct store_filename fn;
	const char *base = strchr(filename, '/');
	char name[512], oldpath[4096], newpath[4096];

	if (base == NULL || store_filename_parse(base + 1, &fn) < 0)
		return store__fail(err, STORE_ERR_TEMP, "bad file name %s in index", filename);
	/* Passed (P) has no IMAP flag: keep it. */
	fn.flags = flags | (fn.flags & STORE_FLAG_PASSED);
	fn.keywords = (uint32_t)(keywords & 0x3FFFFFF);
	fn.has_info = true;
	if (store_filename_build(&fn, name, sizeof(name)) < 0)
		return store__fail(err, STORE_ERR_TEMP, "file name too long");
	snprintf(newrel, newrel_size, "cur/%s", name);
	snprintf(oldpath, sizeof(oldpath), "%s/%s", mb->folder, filename);
	snprintf(newpath, sizeof(newpath), "%s/%s", mb->folder, newrel);
	if (strcmp(oldpath, newpath) == 0)
		return 0;
	if (rename(oldpath, newpath) < 0)
		return store__fail_errno(err, errno, "rename %s", oldpath);
	return 1;
}

/* File renames made inside a transaction, to put back if it fails. */
struct renames {
	char (*pairs)[2][640];  /* old and new names relative to the folder */
	size_t count, cap;
};

static void renames_add(struct renames *r, const char *from, const char *to)
{
	if (r->count == r->cap) {
		r->cap = r->cap == 0 ? 16 : r->cap * 2;
		r->pairs = xrealloc(r->pairs, r->cap * sizeof(*r->pairs));
	}
	snprintf(r->pairs[r->count][0], sizeof(r->pairs[0][0]), "%s", from);
	snprintf(r->pairs[r->count][1], sizeof(r->pairs[0][1]), "%s", to);
	r->count++;
}

static void renames_undo(struct store_mailbox *mb, struct renames *r)
{
	char from[4096], to[4096];

	for (size_t i = r->count; i > 0; i--) {
		snprintf(from, sizeof(from), "%s/%s", mb->folder, r->pairs[i - 1][1]);
		snprintf(to, sizeof(to), "%s/%s", mb->folder, r->pairs[i - 1][0]);
		if (rename(from, to) < 0)
			log_warn("cannot rename %s back: %s", from, strerror(errno));
	}
}

static void renames_free(struct renames *r)
{
	free(r->pairs);
	memset(r, 0, sizeof(*r));
}

/* One transaction of store_mailbox_set_flags: count UIDs, one modseq;
 * *failed_r counts the UNCHANGEDSINCE refusals. */
static int set_flags_batch(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			   enum store_flag_op op, uint32_t flags,
			   const char *const *keywords, size_t keyword_count,
			   uint64_t unchanged_since, size_t *failed_r, struct store_error *err)
{
	struct store_user *u = mb->user;
	struct store_mbox_row row;
	uint64_t kwmask = 0;
	size_t failed = 0;
	struct renames renames = { 0 };
	struct store_witness witness = { .fd = -1 };

	if (store__begin(u, false, err) < 0)
		return -1;
	if (lock_mailbox_row(mb, &row, err) < 0)
		goto fail;
	store__witness_begin(&witness, mb->folder, &row);
	/* Keyword names to bits, adding new ones to the folder's list (under
	 * the write lock, so two processes cannot take the same letter). */
	for (size_t i = 0; i < keyword_count; i++) {
		int idx = store__keyword_index(mb->folder, &mb->keywords, &mb->keyword_count,
					       keywords[i], op != STORE_FLAGS_REMOVE, err);

		if (idx < 0 && op != STORE_FLAGS_REMOVE)
			goto fail;
		if (idx >= 0)
			kwmask |= (uint64_t)1 << idx;
	}
	uint64_t modseq = row.highestmodseq + 1;
	bool changed = false;

	if (store__uidstate_reserve(mb->folder, &row, 0, modseq, err) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		char newrel[600];
		struct store_msg_row cur;
		int found = store__msg_row(mb, uids[i], &cur, err);

		if (found < 0)
			goto fail;
		if (found == 0)
			continue;
		if (unchanged_since != 0 && cur.modseq > unchanged_since) {
			failed++;
			continue;
		}
		uint32_t nf = op == STORE_FLAGS_SET ? flags | (cur.flags & STORE_FLAG_PASSED) :
			op == STORE_FLAGS_ADD ?
			(cur.flags | flags) : (cur.flags & ~flags);
		uint64_t nk = op == STORE_FLAGS_SET ? kwmask : op == STORE_FLAGS_ADD ?
			(cur.keywords | kwmask) : (cur.keywords & ~kwmask);

		if (nf == cur.flags && nk == cur.keywords)
			continue;
		int renamed = rename_for_flags(mb, cur.filename, nf, nk, newrel, sizeof(newrel),
					       err);

		if (renamed < 0) {
			if (err->code == STORE_ERR_NOTFOUND)
				continue; /* removed by another program: sync will tell */
			goto fail;
		}
		if (renamed)
			store__witness_change(&witness, cur.filename, newrel);
		renames_add(&renames, cur.filename, newrel);
		sqlite3_stmt *st = store__stmt(u, STORE_STMT_FLAGS, "UPDATE message SET flags = ?,"
					       " keywords = ?, modseq = ?, filename = ?"
					       " WHERE mailbox_id = ? AND uid = ?", err);

		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, nf);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)nk);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		sqlite3_bind_text(st, 4, newrel, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 5, mb->id);
		sqlite3_bind_int64(st, 6, uids[i]);
		int rc = sqlite3_step(st);

		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			store__fail_db(err, u->db, "update flags");
			goto fail;
		}
		store__digest_name(u, &row, cur.filename, false);
		store__digest_name(u, &row, newrel, true);
		changed = true;
	}
	if (changed && bump_mailbox(mb, &row, modseq, err) < 0)
		goto fail;
	if (store__witness_end(&witness, u, mb->folder, &row, err) < 0)
		goto fail;
	if (store__commit(u, err) < 0)
		goto undo;
	renames_free(&renames);
	*failed_r += failed;
	return 0;
fail:
	store__rollback(u);
undo:
	store__witness_cancel(&witness);
	/* The index keeps the old flags: so must the file names. */
	renames_undo(mb, &renames);
	renames_free(&renames);
	return -1;
}

/* UIDs per write transaction: a STORE of many messages leaves the write
 * lock free between batches, so other sessions (a SELECT's check, a
 * delivery) wait for one batch, not the whole command (about 0.1 ms a
 * message, so ~25 ms). Each batch has its own modseq. */
#define SET_FLAGS_BATCH 256

int store_mailbox_set_flags(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			    enum store_flag_op op, uint32_t flags,
			    const char *const *keywords, size_t keyword_count,
			    uint64_t unchanged_since, size_t *failed_r, struct store_error *err)
{
	size_t failed = 0;

	for (size_t done = 0; done < count || done == 0; done += SET_FLAGS_BATCH) {
		size_t n = count - done < SET_FLAGS_BATCH ? count - done : SET_FLAGS_BATCH;

		if (set_flags_batch(mb, uids + done, n, op, flags, keywords, keyword_count,
				    unchanged_since, &failed, err) < 0)
			return -1;
		if (count == 0)
			break;
	}
	if (failed_r != NULL)
		*failed_r = failed;
	return store__view_refresh(mb, err);
}

int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			  struct store_error *err)
{
	struct store_user *u = mb->user;
	struct store_mbox_row row;
	bool changed = false;
	struct renames hidden_files = { 0 };
	struct store_witness witness = { .fd = -1 };
	char path[4096];

	if (store__begin(u, true, err) < 0)
		return -1;
	if (lock_mailbox_row(mb, &row, err) < 0)
		goto fail;
	store__witness_begin(&witness, mb->folder, &row);
	uint64_t modseq = row.highestmodseq + 1;

	if (store__uidstate_reserve(mb->folder, &row, 0, modseq, err) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		struct store_msg_row cur;
		int found = store__msg_row(mb, uids[i], &cur, err);

		if (found < 0)
			goto fail;
		if (found == 0)
			continue;
		/* Out of sight now, removed after the commit: if the commit
		 * fails the file comes back, so a refused expunge loses nothing. */
		char hidden[620], hidden_path[4096];
		const char *base = strchr(cur.filename, '/');

		snprintf(hidden, sizeof(hidden), "tmp/%s.expunged", base != NULL ? base + 1 : cur.filename);
		snprintf(path, sizeof(path), "%s/%s", mb->folder, cur.filename);
		snprintf(hidden_path, sizeof(hidden_path), "%s/%s", mb->folder, hidden);
		if (rename(path, hidden_path) < 0) {
			if (errno != ENOENT) {
				store__fail_errno(err, errno, "rename %s", path);
				goto fail;
			}
		} else {
			store__witness_change(&witness, cur.filename, hidden);
			renames_add(&hidden_files, cur.filename, hidden);
		}
		if (store__expunge_row(u, mb->id, uids[i], modseq, err) < 0)
			goto fail;
		store__digest_name(u, &row, cur.filename, false);
		changed = true;
	}
	if (changed && bump_mailbox(mb, &row, modseq, err) < 0)
		goto fail;
	if (store__witness_end(&witness, u, mb->folder, &row, err) < 0)
		goto fail;
	if (store__commit(u, err) < 0)
		goto undo;
	for (size_t i = 0; i < hidden_files.count; i++) {
		snprintf(path, sizeof(path), "%s/%s", mb->folder, hidden_files.pairs[i][1]);
		unlink(path);
	}
	renames_free(&hidden_files);
	if (changed)
		store__fts_gone_bound(u);
	return store__view_refresh(mb, err);
fail:
	store__rollback(u);
undo:
	store__witness_cancel(&witness);
	renames_undo(mb, &hidden_files);
	renames_free(&hidden_files);
	return -1;
}

int store_mailbox_expunged_since(struct store_mailbox *mb, uint64_t modseq, struct arena *a,
				 uint32_t **uids_r, size_t *count_r, bool *complete_r,
				 struct store_error *err)
{
	struct store_user *u = mb->user;
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	int rc;

	/* The history starts where the folder was (re)registered: a rebuild
	 * starts highestmodseq at the reservation and forgets older expunges. */
	*complete_r = modseq >= mb->history_start;
	if (sqlite3_prepare_v2(u->db, "SELECT uid FROM expunged WHERE mailbox_id = ? AND"
			       " modseq > ? ORDER BY uid", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "expunged");
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			uint32_t *n = arena_alloc(a, ncap * sizeof(*n));

			if (count > 0)
				memcpy(n, uids, count * sizeof(*n));
			uids = n;
			cap = ncap;
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store__fail_db(err, u->db, "expunged");
	*uids_r = uids;
	*count_r = count;
	return 0;
}
