/*
 * catchup.c — filling in, ahead of use, what a bulk adoption left out.
 *
 * A sync that finds many unknown files at once (a migrated Maildir) adds
 * their index rows only (sync.c): their structure (message_meta) is parsed
 * on first use and their text waits in fts_pending, so SEARCH reads their
 * files like a server without a text index would. store_user_catch_up does
 * that work for a few messages at a time, for a daemon's background job:
 * the files are read and parsed without the write lock, then stored in one
 * short transaction, so that sessions and deliveries hardly wait for it.
 * The same job deletes the text of expunged messages from the full-text
 * index (fts.c), FTS_PURGE_BATCH documents a transaction, once a batch
 * of them has gathered.
 */
#include "storage-private.h"
#include "fts-private.h"

#include <stdlib.h>
#include <string.h>

struct pending {
	int64_t mailbox_id;
	uint32_t uid;
	char *guid;
	char *path;
	struct store__meta *meta;       /* NULL: has a row, or unreadable */
	struct store__fts_doc *doc;     /* NULL: unreadable (stays pending) */
};

int store_user_pending(struct store_user *u)
{
	sqlite3_stmt *st;

	if (!u->meta)
		return 0;
	if (sqlite3_prepare_v2(u->db, "SELECT 1 FROM fts_pending LIMIT 1", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rc == SQLITE_ROW ? 1 : -1;
	/* Fewer than a batch of documents to delete wait for more: one
	 * statement deleting many costs half as much a document. */
	int gone = store__fts_gone_count(u, FTS_PURGE_BATCH);

	return gone < 0 ? -1 : gone >= FTS_PURGE_BATCH;
}

/* Up to max pending messages, their files read and parsed. */
static int load_batch(struct store_user *u, unsigned max, struct pending *p, unsigned *n_r,
		      struct store_error *err)
{
	sqlite3_stmt *st;
	unsigned n = 0;
	int rc;

	if (sqlite3_prepare_v2(u->db, "SELECT p.mailbox_id, p.uid, m.guid, m.filename, b.name,"
			       " EXISTS (SELECT 1 FROM message_meta x WHERE"
			       "  x.mailbox_id = p.mailbox_id AND x.uid = p.uid)"
			       " FROM fts_pending p"
			       " JOIN message m ON m.mailbox_id = p.mailbox_id AND m.uid = p.uid"
			       " JOIN mailbox b ON b.id = p.mailbox_id"
			       " ORDER BY p.mailbox_id, p.uid LIMIT ?", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "catch up");
	sqlite3_bind_int64(st, 1, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_error ferr = { 0 };
		char *folder = store__folder_path(u, (const char *)sqlite3_column_text(st, 4), &ferr);

		if (folder == NULL)
			continue;
		struct pending *e = &p[n++];

		memset(e, 0, sizeof(*e));
		e->mailbox_id = sqlite3_column_int64(st, 0);
		e->uid = (uint32_t)sqlite3_column_int64(st, 1);
		e->guid = xstrdup((const char *)sqlite3_column_text(st, 2));
		const char *filename = (const char *)sqlite3_column_text(st, 3);
		size_t len = strlen(folder) + 1 + strlen(filename) + 1;

		e->path = xcalloc(1, len);
		snprintf(e->path, len, "%s/%s", folder, filename);
		free(folder);
		/* Parsed here, outside the write lock. */
		if (sqlite3_column_int(st, 5) == 0)
			e->meta = store__meta_parse_file(e->path, &ferr);
		e->doc = store__fts_doc_from_file(e->path, &ferr);
	}
	sqlite3_finalize(st);
	*n_r = n;
	if (rc != SQLITE_DONE)
		return store__fail_db(err, u->db, "catch up");
	return 0;
}

int store_user_catch_up(struct store_user *u, unsigned max, bool *more_r,
			struct store_error *err)
{
	struct pending *p;
	unsigned n = 0, stored = 0;
	int ret = -1;

	*more_r = false;
	if (!u->meta || max == 0)
		return 0;
	/* Documents of expunged messages first, a batch a call (a read
	 * first: most calls have none, and need no write lock for them). */
	int purged = store__fts_gone_count(u, 1);

	if (purged > 0)
		purged = store__fts_purge(u, FTS_PURGE_BATCH, err);
	else if (purged < 0)
		return store__fail_db(err, u->db, "catch up");
	if (purged < 0)
		return -1;
	bool more_gone = purged == FTS_PURGE_BATCH;

	/* A read snapshot for the batch: its rows and their files belong
	 * together. */
	if (store__exec(u, "BEGIN", err) < 0)
		return -1;
	p = xcalloc(max, sizeof(*p));
	ret = load_batch(u, max, p, &n, err);
	store__exec(u, "COMMIT", err);
	if (ret < 0 || n == 0)
		goto out;
	if (store__begin(u, false, err) < 0) {
		ret = -1;
		goto out;
	}
	for (unsigned i = 0; i < n && ret == 0; i++) {
		/* Gone or renamed since (an expunge, a flag change): the next
		 * round reads it under its new name. */
		if (p[i].doc == NULL)
			continue;
		if (p[i].meta != NULL &&
		    store__meta_keep(u, p[i].mailbox_id, p[i].uid, p[i].guid, p[i].meta, err) < 0)
			ret = -1;
		else if (store__fts_insert(u, p[i].guid, p[i].doc, err) < 0)
			ret = -1;
		else
			stored++;
	}
	if (ret < 0 || store__commit(u, err) < 0) {
		store__rollback(u);
		ret = -1;
		goto out;
	}
	/* Messages that could not be read stay pending: more only if this
	 * round got somewhere. */
	*more_r = n == max && stored > 0;
out:
	*more_r = *more_r || (ret == 0 && more_gone);
	for (unsigned i = 0; i < n; i++) {
		free(p[i].guid);
		free(p[i].path);
		store__meta_unref(&p[i].meta);
		store__fts_doc_unref(&p[i].doc);
	}
	free(p);
	return ret;
}
