/*
 * fts.c — the full-text index behind SEARCH BODY and TEXT.
 *
 * Each message's searchable text is kept in the index's message_fts table
 * (SQLite FTS5 with the trigram tokenizer, folded case): column hdr is the
 * top-level header, unfolded and decoded to UTF-8 ("Name: value" lines),
 * column body the decoded text/ parts (content-transfer-encoding undone,
 * charsets converted to UTF-8), one after the other. Both are kept in
 * their i;unicode-casemap form (casemap.h), the form SEARCH compares: the
 * trigrams of a casemapped needle are then trigrams of every text that
 * contains it, and the check is a plain substring test. The trigram index
 * only narrows a search down: search.c checks the stored text of each
 * candidate for the substring, so tokenising never loses a match. An
 * index from before the casemapped form is emptied when it is opened, and
 * its messages become pending (index.c).
 *
 * A document belongs to a GUID (fts_doc), not to a UID: the copies a COPY
 * or MOVE makes share it, and a trigger drops it with the last message of
 * that GUID. Messages without a document (an index from before the table,
 * a file that could not be read when it was adopted) are in fts_pending,
 * and search reads their text from the file.
 *
 * A file a sync adopts whose GUID has a document already (a copy made
 * by another program) shares it.
 *
 * Deleting a document from message_fts is costly: FTS5 tokenises its
 * whole text again to delete its trigrams, and writes an index segment
 * for each statement (measured: 1.6 ms a document one per transaction,
 * 0.8 ms a hundred in one statement). So the trigger that drops a
 * document with its last message (message-meta.c) only takes it out of
 * fts_doc, which makes it unreachable: searches find messages through
 * fts_doc, never through message_fts's own guid column. Its docid goes
 * to fts_gone, and store__fts_purge deletes such documents later, up to
 * FTS_PURGE_BATCH in one statement: tern-imapd's background job
 * (catchup.c), and any process once more than FTS_GONE_MAX wait.
 *
 * The text is built from the file after the MIME parser has found the
 * parts: one more sequential read, of the CRLF view the parser's offsets
 * refer to, keeping only the text parts (at save time the parser's tree
 * is at hand; a sync adopting a file parses it once more for this). At
 * most FTS_BODY_MAX bytes of text (after decoding) and FTS_HDR_MAX of
 * header are taken per message, and at most twice that is kept once
 * casemapped (which only text of unusual characters comes near).
 */
#include "storage-private.h"
#include "mime-private.h"
#include "fts-private.h"
#include "storage/casemap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FTS_READ_SIZE (64 * 1024)

struct segment {
	uint64_t start, end;            /* CRLF view */
	bool header;
	struct store_decoder dec;
	const char *charset;            /* NULL: none given */
};

struct store__fts_doc *store__fts_doc_new(void)
{
	struct store__fts_doc *d = xcalloc(1, sizeof(*d));

	d->refs = 1;
	buf_init(&d->hdr, FTS_HDR_MAX + 1024);
	buf_init(&d->body, FTS_BODY_MAX + 16);
	return d;
}

struct store__fts_doc *store__fts_doc_ref(struct store__fts_doc *d)
{
	d->refs++;
	return d;
}

void store__fts_doc_unref(struct store__fts_doc **dp)
{
	struct store__fts_doc *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	if (--d->refs > 0)
		return;
	buf_release(&d->hdr);
	buf_release(&d->body);
	free(d);
}

static bool is_text_leaf(const struct mime_part *p)
{
	return p->kind == MIME_LEAF && (p->type == NULL || strcasecmp(p->type, "text") == 0);
}

static const char *param_value(const struct mime_param *p, const char *name)
{
	for (; p != NULL; p = p->next)
		if (strcasecmp(p->name, name) == 0)
			return p->value;
	return NULL;
}

/* The text leaves in preorder (so in file order). */
static void collect(const struct mime_part *p, struct segment *segs, size_t *n, size_t max)
{
	if (is_text_leaf(p) && *n < max && p->body_size > 0) {
		struct segment *s = &segs[(*n)++];

		s->start = p->body_offset;
		s->end = p->body_offset + p->body_size;
		store_decoder_init(&s->dec, mime_cte_parse(p->fields[MIME_F_CONTENT_TRANSFER_ENCODING]));
		s->charset = param_value(p->params, "charset");
	}
	for (const struct mime_part *c = p->children; c != NULL; c = c->next)
		collect(c, segs, n, max);
}

static size_t count_text_leaves(const struct mime_part *p)
{
	size_t n = is_text_leaf(p) ? 1 : 0;

	for (const struct mime_part *c = p->children; c != NULL; c = c->next)
		n += count_text_leaves(c);
	return n;
}

/* Append decoded text in its charset to out as UTF-8: as declared when
 * that works, else as UTF-8 when valid, else as ISO-8859-1. NULs become
 * spaces (the text is SQLite text). */
static void append_text(struct buf *out, const char *charset, struct buf *raw)
{
	size_t start = out->len;

	for (size_t i = 0; i < raw->len; i++)
		if (raw->data[i] == '\0')
			raw->data[i] = ' ';
	if ((charset == NULL || mime_charset_to_utf8(out, charset, raw->data, raw->len) < 0) &&
	    mime_charset_to_utf8(out, "utf-8", raw->data, raw->len) < 0 &&
	    mime_charset_to_utf8(out, "iso-8859-1", raw->data, raw->len) < 0)
		return;
	if (out->len > start)
		buf_append(out, "\n", 1);
}

/* One unfolded field "Name: value" to out, its value decoded (RFC 2047). */
static void header_field(struct buf *out, struct arena *a, struct buf *field)
{
	const char *f = (const char *)field->data;
	const char *colon = field->len > 0 ? memchr(f, ':', field->len) : NULL;

	if (colon != NULL) {
		const char *v = colon + 1;

		while (*v == ' ' || *v == '\t')
			v++;
		buf_append(out, f, (size_t)(colon - f));
		buf_append(out, ": ", 2);
		buf_append_str(out, mime_decode_header(a, v));
		buf_append(out, "\n", 1);
	}
	buf_clear(field);
}

/* "Name: value" lines of a raw header (CRLF view), appended to out. */
static void header_lines(struct buf *out, const char *h, size_t len)
{
	struct arena *a = arena_new(0);
	struct buf field;
	const char *end = h + len;

	buf_init(&field, FTS_HDR_MAX);
	while (h < end) {
		const char *nl = memchr(h, '\n', (size_t)(end - h));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t l = (size_t)(next - h);

		while (l > 0 && (h[l - 1] == '\n' || h[l - 1] == '\r'))
			l--;
		bool cont = h[0] == ' ' || h[0] == '\t';

		if (!cont)
			header_field(out, a, &field);
		if (l == 0 && !cont)
			break;
		/* NULs would end the value early. */
		for (size_t i = 0; i < l; i++)
			buf_append(&field, h[i] == '\0' ? " " : h + i, 1);
		h = next;
	}
	header_field(out, a, &field);
	buf_release(&field);
	arena_free(&a);
}

/* Feed the bytes [vpos, vpos + n) of the CRLF view to the segments. */
static void feed(struct segment *segs, size_t nsegs, size_t *cur, uint64_t vpos,
		 const unsigned char *v, size_t n, struct buf *raw, struct buf *hdr_raw,
		 struct store__fts_doc *doc)
{
	while (*cur < nsegs) {
		struct segment *s = &segs[*cur];

		if (s->start >= vpos + n)
			return;
		uint64_t from = s->start > vpos ? s->start : vpos;
		uint64_t to = s->end < vpos + n ? s->end : vpos + n;

		if (to > from) {
			const unsigned char *p = v + (from - vpos);

			if (s->header)
				buf_append(hdr_raw, p, (size_t)(to - from));
			else
				store_decoder_feed(&s->dec, raw, p, (size_t)(to - from));
		}
		if (s->end > vpos + n)
			return;
		/* The segment is complete. */
		if (!s->header) {
			store_decoder_finish(&s->dec, raw);
			append_text(&doc->body, s->charset, raw);
			buf_clear(raw);
		}
		(*cur)++;
	}
}

/* Replace text by its casemapped form, cut between characters at max. */
static void casemap_text(struct buf *text, size_t max)
{
	struct buf form;

	buf_init(&form, max);
	store_casemap(&form, text->data, text->len);
	buf_release(text);
	*text = form;
}

struct store__fts_doc *store__fts_doc_build(int fd, const struct mime_part *root,
					    struct store_error *err)
{
	size_t max = count_text_leaves(root) + 1;
	struct segment *segs = xcalloc(max, sizeof(*segs));
	size_t nsegs = 1, cur = 0;

	segs[0].header = true;
	segs[0].start = root->hdr_offset;
	segs[0].end = root->hdr_offset + root->hdr_size;
	collect(root, segs, &nsegs, max);

	struct store__fts_doc *doc = store__fts_doc_new();
	unsigned char *in = xcalloc(1, FTS_READ_SIZE);
	unsigned char *view = xcalloc(2, FTS_READ_SIZE);
	struct buf raw, hdr_raw;
	uint64_t vpos = 0, off = 0;
	bool last_cr = false;

	buf_init(&raw, FTS_BODY_MAX);
	buf_init(&hdr_raw, FTS_HDR_MAX);
	while (cur < nsegs) {
		ssize_t n = pread(fd, in, FTS_READ_SIZE, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			store__fail_errno(err, errno, "read message for the text index");
			store__fts_doc_unref(&doc);
			break;
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		size_t vn = 0;

		for (ssize_t i = 0; i < n; i++) {
			if (in[i] == '\n' && !last_cr)
				view[vn++] = '\r';
			last_cr = in[i] == '\r';
			view[vn++] = in[i];
		}
		feed(segs, nsegs, &cur, vpos, view, vn, &raw, &hdr_raw, doc);
		vpos += vn;
	}
	if (doc != NULL) {
		/* A truncated file: what there is. */
		if (cur < nsegs)
			feed(segs, nsegs, &cur, vpos, view, 0, &raw, &hdr_raw, doc);
		for (; cur < nsegs; cur++) {
			if (segs[cur].header)
				continue;
			store_decoder_finish(&segs[cur].dec, &raw);
			append_text(&doc->body, segs[cur].charset, &raw);
			buf_clear(&raw);
		}
		header_lines(&doc->hdr, (const char *)hdr_raw.data, hdr_raw.len);
		casemap_text(&doc->hdr, 2 * FTS_HDR_MAX);
		casemap_text(&doc->body, 2 * FTS_BODY_MAX);
	}
	buf_release(&raw);
	buf_release(&hdr_raw);
	free(in);
	free(view);
	free(segs);
	return doc;
}

struct store__fts_doc *store__fts_doc_from_file(const char *path, struct store_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		store__fail_errno(err, errno, "open %s", path);
		return NULL;
	}
	struct mime_parser *p = mime_parser_new();
	unsigned char *buf = xcalloc(1, FTS_READ_SIZE);
	struct store__fts_doc *doc = NULL;

	for (;;) {
		ssize_t n = read(fd, buf, FTS_READ_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			store__fail_errno(err, errno, "read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		mime_parser_feed(p, buf, (size_t)n);
	}
	doc = store__fts_doc_build(fd, mime_parser_finish(p), err);
out:
	free(buf);
	close(fd);
	mime_parser_free(&p);
	return doc;
}

static int run(struct store_user *u, sqlite3_stmt *st, struct store_error *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store__fail_db(err, u->db, what);
	return 0;
}

int store__fts_has(struct store_user *u, const char *guid)
{
	sqlite3_stmt *st;

	if (!u->meta)
		return 0;
	if (sqlite3_prepare_v2(u->db, "SELECT 1 FROM fts_doc WHERE guid = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	int found = sqlite3_step(st) == SQLITE_ROW;

	sqlite3_finalize(st);
	return found;
}

int store__fts_insert(struct store_user *u, const char *guid, const struct store__fts_doc *doc,
		      struct store_error *err)
{
	sqlite3_stmt *st;

	if (!u->meta)
		return 0;
	/* No message has the GUID any more (expunged since its file was
	 * read, by a catch-up or a search): no document, which nothing
	 * would ever delete. Statements cached: every save that keeps its
	 * text (APPEND, a catch-up) runs them. */
	st = store__stmt(u, STORE_STMT_FTS_GUID_USED,
			 "SELECT 1 FROM message WHERE guid = ? LIMIT 1", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store__fail_db(err, u->db, "text index");
	/* A document the GUID had goes the way of an expunged one. */
	st = store__stmt(u, STORE_STMT_FTS_REPLACED, "INSERT OR IGNORE INTO fts_gone"
			 " SELECT docid FROM fts_doc WHERE guid = ?", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	if (store__step_cached(u, st, "text index", err) < 0)
		return -1;
	st = store__stmt(u, STORE_STMT_FTS_TEXT,
			 "INSERT INTO message_fts (guid, hdr, body) VALUES (?, ?, ?)", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, doc->hdr.data != NULL ? (const char *)doc->hdr.data : "",
			  (int)doc->hdr.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, doc->body.data != NULL ? (const char *)doc->body.data : "",
			  (int)doc->body.len, SQLITE_STATIC);
	if (store__step_cached(u, st, "text index", err) < 0)
		return -1;
	sqlite3_int64 docid = sqlite3_last_insert_rowid(u->db);

	st = store__stmt(u, STORE_STMT_FTS_DOC, "INSERT OR REPLACE INTO fts_doc VALUES (?, ?)", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, docid);
	if (store__step_cached(u, st, "text index", err) < 0)
		return -1;
	/* Every message of this GUID has its text now. */
	st = store__stmt(u, STORE_STMT_FTS_UNPEND, "DELETE FROM fts_pending WHERE (mailbox_id, uid)"
			 " IN (SELECT mailbox_id, uid FROM message WHERE guid = ?)", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	return store__step_cached(u, st, "text index", err);
}

int store__fts_adopt(struct store_user *u, const char *path, const char *guid,
		     struct store_error *err)
{
	if (!u->meta || store__fts_has(u, guid))
		return 0;
	struct store_error rerr = { 0 };
	struct store__fts_doc *doc = store__fts_doc_from_file(path, &rerr);

	/* Unreadable now: the message stays pending (searched from its file). */
	if (doc == NULL) {
		log_warn("%s: not in the text index: %s", path, rerr.msg);
		return 0;
	}
	int ret = store__fts_insert(u, guid, doc, err);

	store__fts_doc_unref(&doc);
	return ret;
}

int store__fts_gone_count(struct store_user *u, int max)
{
	sqlite3_stmt *st;
	int n = -1;

	if (!u->meta)
		return 0;
	if (sqlite3_prepare_v2(u->db, "SELECT count(*) FROM"
			       " (SELECT 1 FROM fts_gone LIMIT ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, max);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int purge_step(struct store_user *u, const char *sql, unsigned max,
		      struct store_error *err)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(u->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "text index purge");
	sqlite3_bind_int64(st, 1, max);
	return run(u, st, err, "text index purge");
}

int store__fts_purge(struct store_user *u, unsigned max, struct store_error *err)
{
	if (!u->meta || max == 0)
		return 0;
	if (store__begin(u, false, err) < 0)
		return -1;
	/* Both statements pick the same docids: nothing else writes
	 * fts_gone inside this transaction. */
	if (purge_step(u, "DELETE FROM message_fts WHERE rowid IN"
		       " (SELECT docid FROM fts_gone ORDER BY docid LIMIT ?)", max, err) < 0 ||
	    purge_step(u, "DELETE FROM fts_gone WHERE docid IN"
		       " (SELECT docid FROM fts_gone ORDER BY docid LIMIT ?)", max, err) < 0) {
		store__rollback(u);
		return -1;
	}
	int n = sqlite3_changes(u->db);

	if (store__commit(u, err) < 0)
		return -1;
	return n;
}

void store__fts_gone_bound(struct store_user *u)
{
	struct store_error err = { 0 };
	int n = store__fts_gone_count(u, FTS_GONE_MAX + 1);

	if (n <= FTS_GONE_MAX)
		return;
	/* A batch a transaction, so that other writers get their turn. */
	while ((n = store__fts_purge(u, FTS_PURGE_BATCH, &err)) == FTS_PURGE_BATCH)
		;
	/* Harmless: the documents wait for the next purge. */
	if (n < 0)
		log_debug("index of %s: text index not purged: %s", u->dir, err.msg);
}
