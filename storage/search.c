/*
 * search.c — SEARCH: evaluating a criteria tree (storage.h) over an opened
 * mailbox.
 *
 * Each node yields one byte per message of the view (match or not), so a
 * tree costs a few bytes per message however deep it is. Keys on what the
 * view holds (flags, dates, sizes, UIDs, modseqs) are answered from it;
 * header keys read message_meta a row at a time; BODY, TEXT and HEADER
 * read the text kept by fts.c. Strings match with i;unicode-casemap
 * (RFC 5051, casemap.h): the needle's casemapped form is looked for in
 * the text's, which fts.c keeps casemapped already (the header fields of
 * message_meta are casemapped as they are read). For a string of three
 * characters or more (once casemapped) the trigram index picks the
 * candidates first; each candidate's text is then checked for the
 * substring, so the result is what a scan of every message would give.
 * Shorter strings scan the stored text of every message of the mailbox.
 * Messages still waiting for their text
 * (fts_pending: an index from before the text index, a Maildir adopted in
 * bulk) are read from their files, and the text of up to
 * STORE_SEARCH_KEEP_MAX of them is kept for the next searches; the
 * stored text and that list are read in one snapshot, since a catch-up
 * (catchup.c) may move messages from the one to the other meanwhile.
 * EMAILID hashes each message's GUID (objectid.c); THREADID matches
 * nothing.
 */
#include "storage-private.h"
#include "fts-private.h"
#include "storage/casemap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct search_ctx {
	struct store_mailbox *mb;
	uint32_t n;
	int64_t now;
	struct buf fold;                /* casemapped text of message_meta */
	/* The string key being evaluated, casemapped: its string, and
	 * HEADER's field name. */
	struct buf needle, name;
	struct store_error *err;
};

/* ---------------------------------------------------------- matching */

/* Does the casemapped needle (nlen bytes) occur in the casemapped text? */
static bool contains(const char *hay, size_t len, const char *needle, size_t nlen)
{
	if (nlen == 0)
		return true;
	return len >= nlen && memmem(hay, len, needle, nlen) != NULL;
}

/* Does the needle (casemapped, nlen bytes) occur in hay (len bytes of
 * UTF-8, not casemapped)? tmp holds hay's form. */
static bool match_buf(struct buf *tmp, const char *hay, size_t len, const char *needle,
		      size_t nlen)
{
	if (nlen == 0)
		return true;
	buf_clear(tmp);
	store_casemap(tmp, hay, len);
	return contains((const char *)tmp->data, tmp->len, needle, nlen);
}

bool store_search_match(const char *hay, size_t len, const char *needle)
{
	struct buf tmp, form;

	buf_init(&tmp, SIZE_MAX);
	buf_init(&form, SIZE_MAX);
	store_casemap(&form, needle, strlen(needle));
	bool ok = match_buf(&tmp, hay, len, (const char *)form.data, form.len);

	buf_release(&tmp);
	buf_release(&form);
	return ok;
}

static const char *buf_str(const struct buf *b)
{
	return b->data != NULL ? (const char *)b->data : "";
}

/* The casemapped forms of a string key's string and field name. */
static void casemap_key(struct search_ctx *c, const struct store_search *s)
{
	buf_clear(&c->needle);
	buf_clear(&c->name);
	if (s->str != NULL)
		store_casemap(&c->needle, s->str, strlen(s->str));
	if (s->header != NULL)
		store_casemap(&c->name, s->header, strlen(s->header));
}

/* ------------------------------------------------------ simple keys */

static int64_t day_of(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static bool date_test(enum store_search_kind k, int64_t t, int64_t day)
{
	int64_t d = day_of(t);

	switch (k) {
	case STORE_SEARCH_BEFORE:
	case STORE_SEARCH_SENTBEFORE:
	case STORE_SEARCH_SAVEDBEFORE:
		return d < day;
	case STORE_SEARCH_ON:
	case STORE_SEARCH_SENTON:
	case STORE_SEARCH_SAVEDON:
		return d == day;
	default:
		return d >= day;
	}
}

static int keyword_index(const struct store_mailbox *mb, const char *name)
{
	for (unsigned i = 0; i < mb->keyword_count; i++)
		if (strcasecmp(mb->keywords[i], name) == 0)
			return (int)i;
	return -1;
}

static void eval_set(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	bool uids = s->kind == STORE_SEARCH_UID;
	uint32_t max = uids ? (c->n > 0 ? c->mb->msgs[c->n - 1].uid : 0) : c->n;

	for (size_t r = 0; r < s->set_count && c->n > 0; r++) {
		uint32_t lo = s->set[r].lo == STORE_SEQ_STAR ? max : s->set[r].lo;
		uint32_t hi = s->set[r].hi == STORE_SEQ_STAR ? max : s->set[r].hi;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (!uids) {
			for (uint64_t q = lo < 1 ? 1 : lo; q <= hi && q <= c->n; q++)
				out[q - 1] = 1;
			continue;
		}
		/* The first message with a UID >= lo, then on while <= hi. */
		uint32_t a = 0, b = c->n;

		while (a < b) {
			uint32_t mid = a + (b - a) / 2;

			if (c->mb->msgs[mid].uid < lo)
				a = mid + 1;
			else
				b = mid;
		}
		for (uint32_t i = a; i < c->n && c->mb->msgs[i].uid <= hi; i++)
			out[i] = 1;
	}
}

static void eval_simple(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	int kw = -1;

	if (s->kind == STORE_SEARCH_KEYWORD || s->kind == STORE_SEARCH_UNKEYWORD)
		kw = s->str != NULL ? keyword_index(c->mb, s->str) : -1;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct store_msg *m = &c->mb->msgs[i];
		bool r = false;

		switch (s->kind) {
		case STORE_SEARCH_ALL:
			r = true;
			break;
		case STORE_SEARCH_FLAGS:
			r = (m->flags & s->flags) == s->flags;
			break;
		case STORE_SEARCH_UNFLAGS:
			r = (m->flags & s->flags) == 0;
			break;
		case STORE_SEARCH_KEYWORD:
			r = kw >= 0 && kw < 64 && (m->keywords & (1ULL << kw)) != 0;
			break;
		case STORE_SEARCH_UNKEYWORD:
			r = !(kw >= 0 && kw < 64 && (m->keywords & (1ULL << kw)) != 0);
			break;
		case STORE_SEARCH_BEFORE:
		case STORE_SEARCH_ON:
		case STORE_SEARCH_SINCE:
			r = date_test(s->kind, m->internal_date, s->day);
			break;
		case STORE_SEARCH_SAVEDBEFORE:
		case STORE_SEARCH_SAVEDON:
		case STORE_SEARCH_SAVEDSINCE:
			r = date_test(s->kind, m->save_date, s->day);
			break;
		case STORE_SEARCH_OLDER:
			r = m->internal_date < c->now - (int64_t)s->number;
			break;
		case STORE_SEARCH_YOUNGER:
			r = m->internal_date >= c->now - (int64_t)s->number;
			break;
		case STORE_SEARCH_LARGER:
			r = m->vsize > s->number;
			break;
		case STORE_SEARCH_SMALLER:
			r = m->vsize < s->number;
			break;
		case STORE_SEARCH_MODSEQ:
			r = m->modseq >= s->number;
			break;
		default:
			break;
		}
		out[i] = r;
	}
}

/* ------------------------------------------------------- header keys */

static const char *meta_column(enum store_search_kind k)
{
	switch (k) {
	case STORE_SEARCH_SUBJECT:
		return "subject";
	case STORE_SEARCH_FROM:
		return "addr_from";
	case STORE_SEARCH_TO:
		return "addr_to";
	case STORE_SEARCH_CC:
		return "addr_cc";
	case STORE_SEARCH_BCC:
		return "addr_bcc";
	default:
		return "date";
	}
}

static bool meta_test(struct search_ctx *c, const struct store_search *s, uint32_t i,
		      sqlite3_stmt *st)
{
	if (s->kind >= STORE_SEARCH_SENTBEFORE && s->kind <= STORE_SEARCH_SENTSINCE) {
		int64_t t = sqlite3_column_type(st, 1) == SQLITE_NULL ?
			c->mb->msgs[i].internal_date : sqlite3_column_int64(st, 1);

		return date_test(s->kind, t, s->day);
	}
	const char *v = (const char *)sqlite3_column_text(st, 1);

	return v != NULL && match_buf(&c->fold, v, (size_t)sqlite3_column_bytes(st, 1),
				      buf_str(&c->needle), c->needle.len);
}

int store__meta_fill(struct store_mailbox *mb, uint32_t uid, struct store_error *err_r)
{
	struct store_user *u = mb->user;
	struct store_msg_row row;
	struct store_error err = { 0 };
	char guid[128], path[4800];
	sqlite3_stmt *st;
	int found = store__msg_path(mb, uid, false, &row, path, sizeof(path), err_r);

	if (found <= 0)
		return found;
	if (sqlite3_prepare_v2(u->db, "SELECT guid FROM message WHERE mailbox_id = ? AND uid = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err_r, u->db, "search");
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	found = sqlite3_step(st) == SQLITE_ROW;
	if (found)
		snprintf(guid, sizeof(guid), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (!found)
		return 0;
	struct store__meta *m = store__meta_parse_file(path, &err);

	/* Renamed meanwhile: looked for again after a sync. */
	if (m == NULL && err.code == STORE_ERR_NOTFOUND) {
		found = store__msg_path(mb, uid, true, &row, path, sizeof(path), err_r);
		if (found <= 0)
			return found;
		memset(&err, 0, sizeof(err));
		m = store__meta_parse_file(path, &err);
	}
	if (m == NULL) {
		log_debug("search: %s: %s", path, err.msg);
		return 0;
	}
	if (store__begin(u, false, &err) == 0) {
		if (store__meta_keep(u, mb->id, uid, guid, m, &err) < 0 ||
		    store__commit(u, &err) < 0)
			store__rollback(u);
	}
	if (err.code != STORE_ERR_NONE)
		log_debug("search: message_meta of UID %u not stored: %s", uid, err.msg);
	store__meta_unref(&m);
	return 0;
}

/* SUBJECT, FROM, TO, CC, BCC and SENT*: message_meta's decoded fields.
 * A message without a row gets one first. */
static int eval_meta(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	struct store_user *u = c->mb->user;
	uint8_t *seen = xcalloc(c->n + 1, 1);
	char sql[200];
	sqlite3_stmt *st;
	int rc, ret = -1;

	casemap_key(c, s);
	snprintf(sql, sizeof(sql), "SELECT uid, %s FROM message_meta WHERE mailbox_id = ?"
		 " AND uid >= ? ORDER BY uid", meta_column(s->kind));
	if (!u->meta) {
		store__fail(c->err, STORE_ERR_TEMP, "no message_meta table");
		goto out;
	}
	if (sqlite3_prepare_v2(u->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store__fail_db(c->err, u->db, "search");
		goto out;
	}
	sqlite3_bind_int64(st, 1, c->mb->id);
	sqlite3_bind_int64(st, 2, 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t seq = store_mailbox_seq(c->mb, (uint32_t)sqlite3_column_int64(st, 0));

		if (seq == 0)
			continue;
		seen[seq - 1] = 1;
		out[seq - 1] = meta_test(c, s, seq - 1, st);
	}
	if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		store__fail_db(c->err, u->db, "search");
		goto out;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		if (seen[i])
			continue;
		uint32_t uid = c->mb->msgs[i].uid;

		/* No statement may be running during store__meta_fill's commit. */
		sqlite3_reset(st);
		if (store__meta_fill(c->mb, uid, c->err) < 0)
			break;
		sqlite3_bind_int64(st, 2, uid);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == uid)
			out[i] = meta_test(c, s, i, st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	ret = c->err->code == STORE_ERR_NONE ? 0 : -1;
out:
	free(seen);
	return ret;
}

/* ------------------------------------------------- BODY, TEXT, HEADER */

/* HEADER name value: a "Name: value" line of hdr whose name is the key's
 * field name and whose value contains the key's string (all casemapped:
 * the names are compared as i;unicode-casemap strings too). */
static bool header_test(struct search_ctx *c, const char *hdr, size_t len)
{
	const char *name = buf_str(&c->name);
	size_t nlen = c->name.len;
	const char *p = hdr, *end = hdr + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t l = (size_t)((nl != NULL ? nl : end) - p);

		if (l >= nlen + 1 && p[nlen] == ':' && memcmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;

			if (v < p + l && *v == ' ')
				v++;
			if (contains(v, (size_t)(p + l - v), buf_str(&c->needle), c->needle.len))
				return true;
		}
		p = next;
	}
	return false;
}

/* The key on a message's stored (casemapped) header and body text. */
static bool text_test(struct search_ctx *c, const struct store_search *s, const char *hdr,
		      size_t hlen, const char *body, size_t blen)
{
	const char *needle = buf_str(&c->needle);

	switch (s->kind) {
	case STORE_SEARCH_BODY:
		return contains(body, blen, needle, c->needle.len);
	case STORE_SEARCH_TEXT:
		return contains(hdr, hlen, needle, c->needle.len) ||
			contains(body, blen, needle, c->needle.len);
	default:
		return header_test(c, hdr, hlen);
	}
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Most trigrams a query asks for: any subset of the string's trigrams
 * finds a superset of the messages, which the check then narrows. */
#define QUERY_TRIGRAMS_MAX 16

/* An FTS5 query for the substring s (3+ characters) in column col: its
 * trigrams ANDed (the trigram tokenizer folds case), every third one and
 * the last, so together they cover the string. Phrases would be exact
 * but need detail=full, a much larger index. */
static char *fts_query(const char *col, const char *s)
{
	size_t starts[QUERY_TRIGRAMS_MAX + 1];
	size_t nchars = 0, len = strlen(s), pos[4096];
	struct buf q;

	/* Character starts (the first 4096 are plenty to choose from). */
	for (size_t i = 0; i < len && nchars < N_ELEMENTS(pos); i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			pos[nchars++] = i;
	size_t n = 0;

	for (size_t c = 0; c + 3 <= nchars && n < QUERY_TRIGRAMS_MAX; c += 3)
		starts[n++] = c;
	if (starts[n - 1] != nchars - 3)
		starts[n++] = nchars - 3;
	buf_init(&q, SIZE_MAX);
	buf_printf(&q, "%s : (", col);
	for (size_t t = 0; t < n; t++) {
		size_t from = pos[starts[t]];
		size_t to = starts[t] + 3 < nchars ? pos[starts[t] + 3] : len;

		buf_append_str(&q, t == 0 ? "\"" : " AND \"");
		for (size_t i = from; i < to; i++)
			buf_append(&q, s[i] == '"' ? "\"\"" : s + i, s[i] == '"' ? 2 : 1);
		buf_append(&q, "\"", 1);
	}
	buf_append(&q, ")", 1);
	char *r = xstrdup((const char *)q.data);

	buf_release(&q);
	return r;
}

/* Documents stored per transaction by keep_doc. */
#define KEEP_BATCH 256

/* Store the document read for a pending message (relname "new/..." or
 * "cur/...": its GUID is the file name's base), so that the next search
 * need not read the file: in transactions of KEEP_BATCH, committed when
 * doc is NULL, at most *budget of them. *kept counts the open
 * transaction's documents, -1 once a write failed (a busy or full index:
 * the messages stay pending). */
static void keep_doc(struct store_user *u, int *kept, int *budget, const char *relname,
		     const struct store__fts_doc *doc)
{
	struct store_error err = { 0 };
	struct store_filename fn;

	if (*kept < 0 || (doc != NULL && *budget <= 0))
		return;
	if (doc == NULL || *kept == KEEP_BATCH) {
		if (*kept > 0 && store__commit(u, &err) < 0)
			goto fail;
		*kept = 0;
		if (doc == NULL)
			return;
	}
	const char *slash = strrchr(relname, '/');

	if (store_filename_parse(slash != NULL ? slash + 1 : relname, &fn) < 0)
		return;
	if (*kept == 0 && store__begin(u, false, &err) < 0) {
		*kept = -1;
		log_debug("search: text not kept: %s", err.msg);
		return;
	}
	if (store__fts_insert(u, fn.base, doc, &err) < 0)
		goto fail;
	(*kept)++;
	(*budget)--;
	return;
fail:
	store__rollback(u);
	*kept = -1;
	log_debug("search: text not kept: %s", err.msg);
}

/* The UIDs of the mailbox's messages that have no text in the index yet
 * (*n_r of them, in a new array). */
static int pending_uids(struct search_ctx *c, uint32_t **uids_r, size_t *n_r)
{
	struct store_user *u = c->mb->user;
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*uids_r = NULL;
	*n_r = 0;
	if (sqlite3_prepare_v2(u->db, "SELECT uid FROM fts_pending WHERE mailbox_id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return store__fail_db(c->err, u->db, "search");
	sqlite3_bind_int64(st, 1, c->mb->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xrealloc(uids, cap * sizeof(*uids));
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		return store__fail_db(c->err, u->db, "search");
	}
	*uids_r = uids;
	*n_r = n;
	return 0;
}

/* The pending messages (pending_uids): from their files (and their text
 * then kept). */
static int eval_pending(struct search_ctx *c, const struct store_search *s, uint8_t *out,
			const uint32_t *uids, size_t n)
{
	struct store_user *u = c->mb->user;
	int kept = 0, budget = STORE_SEARCH_KEEP_MAX;

	for (size_t i = 0; i < n; i++) {
		uint32_t seq = store_mailbox_seq(c->mb, uids[i]);
		struct store_msg_row row;
		char path[4800];

		if (seq == 0 ||
		    store__msg_path(c->mb, uids[i], false, &row, path, sizeof(path), c->err) <= 0) {
			if (c->err->code != STORE_ERR_NONE)
				break;
			continue;
		}
		struct store_error ferr = { 0 };
		struct store__fts_doc *doc = store__fts_doc_from_file(path, &ferr);

		/* Renamed meanwhile (a flag change by another session or
		 * program): looked for again after a sync. */
		if (doc == NULL && ferr.code == STORE_ERR_NOTFOUND) {
			int found = store__msg_path(c->mb, uids[i], true, &row, path,
						    sizeof(path), c->err);

			if (found < 0)
				break;
			if (found == 0)
				continue;
			memset(&ferr, 0, sizeof(ferr));
			doc = store__fts_doc_from_file(path, &ferr);
		}
		/* Gone (expunged): the next sync tells the client. */
		if (doc == NULL) {
			log_debug("search: %s: %s", path, ferr.msg);
			continue;
		}
		out[seq - 1] = text_test(c, s, buf_str(&doc->hdr), doc->hdr.len,
					 buf_str(&doc->body), doc->body.len);
		keep_doc(u, &kept, &budget, row.filename, doc);
		store__fts_doc_unref(&doc);
	}
	keep_doc(u, &kept, &budget, NULL, NULL);
	return c->err->code == STORE_ERR_NONE ? 0 : -1;
}

static int eval_text(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	struct store_user *u = c->mb->user;
	const char *col = s->kind == STORE_SEARCH_BODY ? "body" :
		s->kind == STORE_SEARCH_TEXT ? "{hdr body}" : "hdr";
	/* Only the columns the key looks at are read. */
	const char *cols = s->kind == STORE_SEARCH_BODY ? "NULL, f.body" :
		s->kind == STORE_SEARCH_TEXT ? "f.hdr, f.body" : "f.hdr, NULL";
	char *q = NULL, sql[300];
	sqlite3_stmt *st;
	int rc;

	if (!u->meta)
		return store__fail(c->err, STORE_ERR_TEMP, "no text index");
	casemap_key(c, s);
	const char *needle = buf_str(&c->needle);

	if (utf8_chars(needle) >= 3) {
		q = fts_query(col, needle);
		/* Through fts_doc, not f.guid: a document that lost its last
		 * message stays in message_fts a while (fts.c), and a message
		 * saved since with its GUID has a document of its own. CROSS
		 * JOIN keeps the MATCH the outer loop: left to itself, SQLite
		 * runs it once per message of the mailbox (rowid = ?). */
		snprintf(sql, sizeof(sql), "SELECT m.uid, %s FROM message_fts f"
			 " CROSS JOIN fts_doc d ON d.docid = f.rowid"
			 " CROSS JOIN message m ON m.mailbox_id = ? AND m.guid = d.guid"
			 " WHERE message_fts MATCH ?", cols);
	} else {
		snprintf(sql, sizeof(sql), "SELECT m.uid, %s FROM message m"
			 " JOIN fts_doc d ON d.guid = m.guid"
			 " JOIN message_fts f ON f.rowid = d.docid"
			 " WHERE m.mailbox_id = ?", cols);
	}
	/* One read transaction for the stored text and the pending list: a
	 * message whose text is stored meanwhile (catch-up, another search)
	 * would otherwise be in neither. */
	if (store__begin_read(u, c->err) < 0) {
		free(q);
		return -1;
	}
	rc = sqlite3_prepare_v2(u->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		free(q);
		store__fail_db(c->err, u->db, "search");
		store__rollback(u);
		return -1;
	}
	sqlite3_bind_int64(st, 1, c->mb->id);
	if (q != NULL)
		sqlite3_bind_text(st, 2, q, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t seq = store_mailbox_seq(c->mb, (uint32_t)sqlite3_column_int64(st, 0));

		if (seq == 0)
			continue;
		const char *hdr = (const char *)sqlite3_column_text(st, 1);
		size_t hlen = (size_t)sqlite3_column_bytes(st, 1);
		const char *body = (const char *)sqlite3_column_text(st, 2);
		size_t blen = (size_t)sqlite3_column_bytes(st, 2);

		out[seq - 1] = text_test(c, s, hdr != NULL ? hdr : "", hlen,
					 body != NULL ? body : "", blen);
	}
	sqlite3_finalize(st);
	free(q);
	uint32_t *pending = NULL;
	size_t npending = 0;

	if (rc != SQLITE_DONE)
		store__fail_db(c->err, u->db, "search");
	else
		pending_uids(c, &pending, &npending);
	/* Ends the read transaction (nothing was written). */
	store__rollback(u);
	int ret = c->err->code == STORE_ERR_NONE ?
		eval_pending(c, s, out, pending, npending) : -1;

	free(pending);
	return ret;
}

/* ---------------------------------------------------------- EMAILID */

/* EMAILID (RFC 8474 §5): the id is a hash of the GUID, so each message's
 * GUID is read and hashed (one pass over the mailbox's rows). */
static int eval_emailid(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	struct store_user *u = c->mb->user;
	char id[STORE_OBJECTID_SIZE];
	sqlite3_stmt *st;
	int rc;

	/* What no message can have is not looked for. */
	if (!store_objectid_valid(s->str))
		return 0;
	if (sqlite3_prepare_v2(u->db, "SELECT uid, guid FROM message WHERE mailbox_id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return store__fail_db(c->err, u->db, "search");
	sqlite3_bind_int64(st, 1, c->mb->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t seq = store_mailbox_seq(c->mb, (uint32_t)sqlite3_column_int64(st, 0));

		if (seq == 0)
			continue;
		store__email_id((const char *)sqlite3_column_text(st, 1), id);
		out[seq - 1] = strcmp(id, s->str) == 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store__fail_db(c->err, u->db, "search");
	return 0;
}

/* --------------------------------------------------------- the tree */

static int eval(struct search_ctx *c, const struct store_search *s, uint8_t *out)
{
	uint8_t *tmp;
	int ret = 0;

	memset(out, 0, c->n);
	switch (s->kind) {
	case STORE_SEARCH_AND:
	case STORE_SEARCH_OR:
		tmp = xcalloc(c->n + 1, 1);
		memset(out, s->kind == STORE_SEARCH_AND, c->n);
		for (const struct store_search *k = s->children; k != NULL && ret == 0;
		     k = k->next) {
			ret = eval(c, k, tmp);
			for (uint32_t i = 0; i < c->n; i++)
				out[i] = s->kind == STORE_SEARCH_AND ? out[i] & tmp[i] :
					out[i] | tmp[i];
		}
		free(tmp);
		return ret;
	case STORE_SEARCH_NOT:
		if (s->children == NULL)
			return store__fail(c->err, STORE_ERR_LIMIT, "NOT without a key");
		ret = eval(c, s->children, out);
		for (uint32_t i = 0; i < c->n; i++)
			out[i] = !out[i];
		return ret;
	case STORE_SEARCH_UID:
	case STORE_SEARCH_SEQ:
		eval_set(c, s, out);
		return 0;
	case STORE_SEARCH_SUBJECT:
	case STORE_SEARCH_FROM:
	case STORE_SEARCH_TO:
	case STORE_SEARCH_CC:
	case STORE_SEARCH_BCC:
		if (s->str == NULL)
			return store__fail(c->err, STORE_ERR_LIMIT, "search key without a string");
		return eval_meta(c, s, out);
	case STORE_SEARCH_SENTBEFORE:
	case STORE_SEARCH_SENTON:
	case STORE_SEARCH_SENTSINCE:
		return eval_meta(c, s, out);
	case STORE_SEARCH_HEADER:
	case STORE_SEARCH_BODY:
	case STORE_SEARCH_TEXT:
		if (s->kind == STORE_SEARCH_HEADER && (s->header == NULL || s->header[0] == '\0'))
			return store__fail(c->err, STORE_ERR_LIMIT, "HEADER without a field name");
		if (s->str == NULL)
			return store__fail(c->err, STORE_ERR_LIMIT, "search key without a string");
		return eval_text(c, s, out);
	case STORE_SEARCH_EMAILID:
		if (s->str == NULL)
			return store__fail(c->err, STORE_ERR_LIMIT, "search key without a string");
		return eval_emailid(c, s, out);
	case STORE_SEARCH_THREADID:
		/* No message has a THREADID (all are NIL). */
		return 0;
	default:
		eval_simple(c, s, out);
		return 0;
	}
}

int store_mailbox_search(struct store_mailbox *mb, const struct store_search *crit,
			 struct arena *a, uint32_t **uids_r, size_t *count_r,
			 struct store_error *err)
{
	struct search_ctx c = {
		.mb = mb, .n = mb->count, .now = (int64_t)time(NULL), .err = err,
	};
	uint8_t *res = xcalloc(mb->count + 1, 1);

	memset(err, 0, sizeof(*err));
	*uids_r = NULL;
	*count_r = 0;
	buf_init(&c.fold, SIZE_MAX);
	buf_init(&c.needle, SIZE_MAX);
	buf_init(&c.name, SIZE_MAX);
	int ret = eval(&c, crit, res);

	buf_release(&c.fold);
	buf_release(&c.needle);
	buf_release(&c.name);
	if (ret == 0) {
		size_t n = 0;

		for (uint32_t i = 0; i < c.n; i++)
			n += res[i];
		*uids_r = arena_alloc(a, (n + 1) * sizeof(**uids_r));
		for (uint32_t i = 0; i < c.n; i++)
			if (res[i])
				(*uids_r)[(*count_r)++] = mb->msgs[i].uid;
	}
	free(res);
	return ret;
}
