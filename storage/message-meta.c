/*
 * message-meta.c — what the MIME parser learns about a message, kept in
 * the index's message_meta table next to its message row: ENVELOPE, BODY
 * and BODYSTRUCTURE strings, the part tree for section lookup, the Date
 * header as a time, and header fields decoded to UTF-8 for search and
 * sort (SUBJECT, FROM, TO, CC, BCC, Message-ID, In-Reply-To, References;
 * used by search.c and sort.c).
 *
 * Rows are written at save time (save.c, in the transaction of the
 * message row), copied with the message by COPY and MOVE (copy.c), written
 * when a sync adopts a file (sync.c, which covers the rebuild), and on
 * demand for a message without one (an index from before this table): the
 * message is then parsed from its file and its row filled. Triggers drop a row with its message row. The guid column
 * ties a row to its file, so a row that does not match is never used.
 *
 * The part tree blob: per part in preorder, 40 bytes little-endian:
 * parent index (u32, 0xffffffff for the root), kind (u8), 3 bytes zero,
 * then header offset, header size, body offset, body size (u64 each),
 * all in the CRLF view.
 */
#include "storage-private.h"
#include "mime-private.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PART_REC 40
/* The largest strings kept: a hostile message's BODYSTRUCTURE of 10,000
 * parts with long parameters stays well below. */
#define META_STRING_MAX (16 * 1024 * 1024)

const char store__meta_schema[] =
	"CREATE TABLE IF NOT EXISTS message_meta ("
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  guid TEXT NOT NULL,"
	"  envelope BLOB NOT NULL,"
	"  body BLOB NOT NULL,"
	"  bodystructure BLOB NOT NULL,"
	"  parts BLOB NOT NULL,"
	"  date INTEGER,"
	"  subject TEXT, addr_from TEXT, addr_to TEXT, addr_cc TEXT, addr_bcc TEXT,"
	"  message_id TEXT, in_reply_to TEXT, refs TEXT,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE TRIGGER IF NOT EXISTS message_meta_del AFTER DELETE ON message BEGIN"
	"  DELETE FROM message_meta WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS message_meta_move AFTER UPDATE OF mailbox_id, uid"
	"  ON message BEGIN"
	"  DELETE FROM message_meta WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
	"END;"
	/* The full-text index (fts.c): one document per GUID, shared by the
	 * copies of a message; its last copy takes it out of fts_doc (so no
	 * search finds it) and into fts_gone, whose documents are deleted
	 * from message_fts later, many in one statement. fts_pending lists
	 * the messages that have none yet (searched from their files). */
	"CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
	"  guid UNINDEXED, hdr, body, tokenize='trigram', detail='column');"
	"CREATE TABLE IF NOT EXISTS fts_doc ("
	"  guid TEXT PRIMARY KEY, docid INTEGER NOT NULL) WITHOUT ROWID;"
	/* A search maps the documents it finds to their GUIDs. */
	"CREATE INDEX IF NOT EXISTS fts_doc_docid ON fts_doc (docid);"
	"CREATE TABLE IF NOT EXISTS fts_gone (docid INTEGER PRIMARY KEY);"
	"CREATE TABLE IF NOT EXISTS fts_pending ("
	"  mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS message_guid_only ON message (guid);"
	/* An index from before these tables: every message is pending. */
	"INSERT INTO fts_pending SELECT mailbox_id, uid FROM message"
	"  WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'fts');"
	"INSERT INTO meta SELECT 'fts', 1 WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'fts');"
	"CREATE TRIGGER IF NOT EXISTS fts_add AFTER INSERT ON message"
	"  WHEN NOT EXISTS (SELECT 1 FROM fts_doc WHERE guid = NEW.guid) BEGIN"
	"  INSERT OR IGNORE INTO fts_pending VALUES (NEW.mailbox_id, NEW.uid);"
	"END;"
	/* Before meta 'fts_gone' (index.c) this deleted the document from
	 * message_fts itself. */
	"CREATE TRIGGER IF NOT EXISTS fts_del AFTER DELETE ON message BEGIN"
	"  DELETE FROM fts_pending WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
	"  INSERT OR IGNORE INTO fts_gone SELECT docid FROM fts_doc WHERE guid = OLD.guid"
	"    AND NOT EXISTS (SELECT 1 FROM message WHERE guid = OLD.guid);"
	"  DELETE FROM fts_doc WHERE guid = OLD.guid"
	"    AND NOT EXISTS (SELECT 1 FROM message WHERE guid = OLD.guid);"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS fts_move AFTER UPDATE OF mailbox_id, uid ON message BEGIN"
	"  UPDATE fts_pending SET mailbox_id = NEW.mailbox_id, uid = NEW.uid"
	"    WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;"
	"END;";

enum { F_SUBJECT, F_FROM, F_TO, F_CC, F_BCC, F_MSGID, F_INREPLYTO, F_REFS, F_N };

struct store__meta {
	int refs;
	struct buf envelope, body, bodystructure, parts;
	bool has_date;
	int64_t date;
	char *text[F_N];
};

/* ------------------------------------------------------------- dates */

static int month_of(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months + 3 * i, 3) == 0)
			return i;
	return -1;
}

/* Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

/* RFC 5322 date-time (and the obsolete forms: two-digit years, zone
 * names), to seconds since the epoch in UTC. */
static bool parse_date(const char *s, int64_t *t_r)
{
	int day, year, hh, mm, ss = 0, mon, n = 0;
	char mname[4];

	while (*s == ' ' || *s == '\t')
		s++;
	if (isalpha((unsigned char)*s)) {
		const char *comma = strchr(s, ',');

		s = comma != NULL ? comma + 1 : s + strcspn(s, " ");
	}
	if (sscanf(s, " %d %3s %d %d:%d%n", &day, mname, &year, &hh, &mm, &n) != 5)
		return false;
	s += n;
	if (*s == ':') {
		n = 0;
		if (sscanf(s, ":%d%n", &ss, &n) != 1)
			return false;
		s += n;
	}
	mon = month_of(mname);
	if (mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return false;
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	while (*s == ' ' || *s == '\t')
		s++;
	int offset = 0;

	if (*s == '+' || *s == '-') {
		int z = atoi(s + 1);

		offset = (z / 100) * 60 + z % 100;
		if (*s == '-')
			offset = -offset;
	} else {
		static const struct {
			const char *name;
			int hours;
		} zones[] = {
			{ "EDT", -4 }, { "EST", -5 }, { "CDT", -5 }, { "CST", -6 },
			{ "MDT", -6 }, { "MST", -7 }, { "PDT", -7 }, { "PST", -8 },
		};
		for (size_t i = 0; i < N_ELEMENTS(zones); i++)
			if (strncasecmp(s, zones[i].name, 3) == 0)
				offset = zones[i].hours * 60;
	}
	*t_r = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 +
		hh * 3600 + mm * 60 + ss - (int64_t)offset * 60;
	return true;
}

/* ------------------------------------------------------ building one */

static void put_le(struct buf *b, uint64_t v, int bytes)
{
	unsigned char tmp[8];

	for (int i = 0; i < bytes; i++)
		tmp[i] = (unsigned char)(v >> (8 * i));
	buf_append(b, tmp, (size_t)bytes);
}

static void parts_blob(struct buf *b, const struct mime_part *part, uint32_t parent,
		       uint32_t *next_index)
{
	uint32_t self = (*next_index)++;

	put_le(b, parent, 4);
	put_le(b, (uint64_t)part->kind, 4);
	put_le(b, part->hdr_offset, 8);
	put_le(b, part->hdr_size, 8);
	put_le(b, part->body_offset, 8);
	put_le(b, part->body_size, 8);
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		parts_blob(b, c, self, next_index);
}

struct store__meta *store__meta_from_parts(const struct mime_part *root)
{
	struct store__meta *m = xcalloc(1, sizeof(*m));
	struct arena *a = arena_new(0);
	static const enum mime_field text_fields[F_N] = {
		[F_SUBJECT] = MIME_F_SUBJECT, [F_FROM] = MIME_F_FROM, [F_TO] = MIME_F_TO,
		[F_CC] = MIME_F_CC, [F_BCC] = MIME_F_BCC, [F_MSGID] = MIME_F_MESSAGE_ID,
		[F_INREPLYTO] = MIME_F_IN_REPLY_TO, [F_REFS] = MIME_F_REFERENCES,
	};
	uint32_t n = 0;

	m->refs = 1;
	buf_init(&m->envelope, META_STRING_MAX);
	buf_init(&m->body, META_STRING_MAX);
	buf_init(&m->bodystructure, META_STRING_MAX);
	buf_init(&m->parts, (size_t)PART_REC * (MIME_PARTS_MAX + MIME_DEPTH_MAX + 2));
	mime_write_envelope(&m->envelope, root);
	mime_write_bodystructure(&m->body, root, false);
	mime_write_bodystructure(&m->bodystructure, root, true);
	parts_blob(&m->parts, root, UINT32_MAX, &n);
	if (root->fields[MIME_F_DATE] != NULL)
		m->has_date = parse_date(root->fields[MIME_F_DATE], &m->date);
	for (int i = 0; i < F_N; i++) {
		const char *v = root->fields[text_fields[i]];

		if (v != NULL)
			m->text[i] = xstrdup(mime_decode_header(a, v));
	}
	arena_free(&a);
	return m;
}

struct store__meta *store__meta_ref(struct store__meta *m)
{
	m->refs++;
	return m;
}

void store__meta_unref(struct store__meta **mp)
{
	struct store__meta *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	if (--m->refs > 0)
		return;
	buf_release(&m->envelope);
	buf_release(&m->body);
	buf_release(&m->bodystructure);
	buf_release(&m->parts);
	for (int i = 0; i < F_N; i++)
		free(m->text[i]);
	free(m);
}

/* Parse a message file (stored form), reading it in pieces. NULL with
 * *err on a read error. */
struct store__meta *store__meta_parse_file(const char *path, struct store_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		store__fail_errno(err, errno, "open %s", path);
		return NULL;
	}
	struct mime_parser *p = mime_parser_new();
	char *buf = xcalloc(1, 65536);
	struct store__meta *m = NULL;

	for (;;) {
		ssize_t n = read(fd, buf, 65536);

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
	m = store__meta_from_parts(mime_parser_finish(p));
out:
	free(buf);
	close(fd);
	mime_parser_free(&p);
	return m;
}

/* -------------------------------------------------------- the table */

static void bind_buf(sqlite3_stmt *st, int col, const struct buf *b)
{
	sqlite3_bind_blob(st, col, b->data != NULL ? (const void *)b->data : "", (int)b->len,
			  SQLITE_STATIC);
}

static int meta_insert(struct store_user *u, sqlite3_stmt *st, int64_t mailbox_id, uint32_t uid,
		       const char *guid, const struct store__meta *m, struct store_error *err)
{
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, guid, -1, SQLITE_STATIC);
	bind_buf(st, 4, &m->envelope);
	bind_buf(st, 5, &m->body);
	bind_buf(st, 6, &m->bodystructure);
	bind_buf(st, 7, &m->parts);
	if (m->has_date)
		sqlite3_bind_int64(st, 8, m->date);
	else
		sqlite3_bind_null(st, 8);
	for (int i = 0; i < F_N; i++)
		sqlite3_bind_text(st, 9 + i, m->text[i], -1, SQLITE_STATIC);
	return store__step_cached(u, st, "insert message_meta", err);
}

#define META_INSERT_INTO "INSERT OR REPLACE INTO message_meta (mailbox_id, uid, guid, envelope," \
	" body, bodystructure, parts, date, subject, addr_from, addr_to, addr_cc, addr_bcc," \
	" message_id, in_reply_to, refs)"

int store__meta_insert(struct store_user *u, int64_t mailbox_id, uint32_t uid, const char *guid,
		       const struct store__meta *m, struct store_error *err)
{
	if (!u->meta)
		return 0;
	return meta_insert(u, store__stmt(u, STORE_STMT_META_INSERT, META_INSERT_INTO
					  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
					  err), mailbox_id, uid, guid, m, err);
}

int store__meta_keep(struct store_user *u, int64_t mailbox_id, uint32_t uid, const char *guid,
		     const struct store__meta *m, struct store_error *err)
{
	if (!u->meta)
		return 0;
	/* A row left for an expunged message would seem to belong to a
	 * message of a later mailbox given the same id. */
	return meta_insert(u, store__stmt(u, STORE_STMT_META_KEEP, META_INSERT_INTO
					  " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
					  " ?13, ?14, ?15, ?16 WHERE EXISTS (SELECT 1 FROM message"
					  "  WHERE mailbox_id = ?1 AND uid = ?2 AND guid = ?3)", err),
			   mailbox_id, uid, guid, m, err);
}

int store__meta_copy(struct store_user *u, int64_t src_mailbox_id, uint32_t src_uid,
		     int64_t dst_mailbox_id, uint32_t dst_uid, const char *dst_guid,
		     struct store_error *err)
{
	if (!u->meta)
		return 0;
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_META_COPY, "INSERT OR REPLACE INTO message_meta"
				       " SELECT ?, ?, ?, m.envelope, m.body, m.bodystructure, m.parts,"
				       " m.date, m.subject, m.addr_from, m.addr_to, m.addr_cc,"
				       " m.addr_bcc, m.message_id, m.in_reply_to, m.refs"
				       " FROM message_meta m JOIN message g ON g.mailbox_id = m.mailbox_id"
				       " AND g.uid = m.uid AND g.guid = m.guid"
				       " WHERE m.mailbox_id = ? AND m.uid = ?", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, dst_mailbox_id);
	sqlite3_bind_int64(st, 2, dst_uid);
	sqlite3_bind_text(st, 3, dst_guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, src_mailbox_id);
	sqlite3_bind_int64(st, 5, src_uid);
	return store__step_cached(u, st, "copy message_meta", err);
}

/* The row's guid and file name, 1 found, 0 not, -1 error. */
static int msg_file(struct store_mailbox *mb, uint32_t uid, char *guid, size_t guid_size,
		    char *path, size_t path_size, struct store_error *err)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(mb->user->db, "SELECT guid, filename FROM message"
			       " WHERE mailbox_id = ? AND uid = ?", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, mb->user->db, "message lookup");
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		snprintf(guid, guid_size, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(path, path_size, "%s/%s", mb->folder,
			 (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return store__fail(err, STORE_ERR_NOTFOUND, "no message with UID %u", uid);
	return store__fail_db(err, mb->user->db, "message lookup");
}

static const void *col_dup(struct arena *a, sqlite3_stmt *st, int col, size_t *len_r)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	char *copy = arena_alloc(a, len + 1);

	if (len > 0)
		memcpy(copy, p, len);
	*len_r = len;
	return copy;
}

/* The stored row of a UID whose guid matches its message row: 1 with r
 * filled, 0 when there is none, -1 error. */
static int meta_row(struct store_mailbox *mb, uint32_t uid, struct arena *a,
		    struct store_msg_structure *r, const void **parts_r, size_t *parts_len_r,
		    struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(mb->user, STORE_STMT_META_ROW,
				       "SELECT m.envelope, m.body, m.bodystructure, m.parts"
				       " FROM message_meta m JOIN message g"
				       " ON g.mailbox_id = m.mailbox_id AND g.uid = m.uid"
				       " AND g.guid = m.guid WHERE m.mailbox_id = ? AND m.uid = ?",
				       err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		r->envelope = col_dup(a, st, 0, &r->envelope_len);
		r->body = col_dup(a, st, 1, &r->body_len);
		r->bodystructure = col_dup(a, st, 2, &r->bodystructure_len);
		if (parts_r != NULL)
			*parts_r = col_dup(a, st, 3, parts_len_r);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store__fail_db(err, mb->user->db, "message_meta lookup");
}

/* Fill r from the message's row, parsing the file first (and storing its
 * row) when there is none. */
static int meta_get(struct store_mailbox *mb, uint32_t uid, struct arena *a,
		    struct store_msg_structure *r, const void **parts_r, size_t *parts_len_r,
		    struct store_error *err)
{
	struct store_user *u = mb->user;

	for (int attempt = 0; attempt < 3; attempt++) {
		int found = u->meta ? meta_row(mb, uid, a, r, parts_r, parts_len_r, err) : 0;

		if (found != 0)
			return found < 0 ? -1 : 0;
		/* No row: parse the file now and keep the result. */
		char guid[128], path[4096];

		if (msg_file(mb, uid, guid, sizeof(guid), path, sizeof(path), err) < 0)
			return -1;
		struct store__meta *m = store__meta_parse_file(path, err);

		if (m == NULL) {
			if (err->code != STORE_ERR_NOTFOUND || attempt > 0)
				return -1;
			/* Renamed by another program: sync, then again. */
			if (store_mailbox_sync(mb, err) < 0)
				return -1;
			continue;
		}
		int ret = u->meta ? store__begin(u, false, err) :
			store__fail(err, STORE_ERR_TEMP, "no message_meta table");

		if (ret == 0) {
			ret = store__meta_keep(u, mb->id, uid, guid, m, err);
			ret = ret < 0 ? ret : store__commit(u, err);
			if (ret < 0)
				store__rollback(u);
		}
		if (ret < 0) {
			/* Not kept (a busy or full index): still answered. */
			log_debug("message_meta of UID %u not stored: %s", uid, err->msg);
			r->envelope = arena_strndup(a, (char *)m->envelope.data, m->envelope.len);
			r->envelope_len = m->envelope.len;
			r->body = arena_strndup(a, (char *)m->body.data, m->body.len);
			r->body_len = m->body.len;
			r->bodystructure = arena_strndup(a, (char *)m->bodystructure.data,
							 m->bodystructure.len);
			r->bodystructure_len = m->bodystructure.len;
			if (parts_r != NULL) {
				char *p = arena_alloc(a, m->parts.len + 1);

				memcpy(p, m->parts.data, m->parts.len);
				*parts_r = p;
				*parts_len_r = m->parts.len;
			}
			store__meta_unref(&m);
			memset(err, 0, sizeof(*err));
			return 0;
		}
		store__meta_unref(&m);
	}
	return store__fail(err, STORE_ERR_TEMP, "message_meta of UID %u keeps changing", uid);
}

int store_msg_structure(struct store_mailbox *mb, uint32_t uid, struct arena *a,
			struct store_msg_structure *r, struct store_error *err)
{
	memset(r, 0, sizeof(*r));
	return meta_get(mb, uid, a, r, NULL, NULL, err);
}

/* --------------------------------------------------------- sections */

struct part_rec {
	uint32_t parent;
	uint32_t kind;
	uint64_t hdr_offset, hdr_size, body_offset, body_size;
};

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void rec_at(const unsigned char *blob, uint32_t i, struct part_rec *r)
{
	const unsigned char *p = blob + (size_t)i * PART_REC;

	r->parent = (uint32_t)get_le(p, 4);
	r->kind = (uint32_t)get_le(p + 4, 4);
	r->hdr_offset = get_le(p + 8, 8);
	r->hdr_size = get_le(p + 16, 8);
	r->body_offset = get_le(p + 24, 8);
	r->body_size = get_le(p + 32, 8);
}

/* The n-th child (1-based) of part i, or UINT32_MAX. */
static uint32_t nth_child(const unsigned char *blob, uint32_t count, uint32_t i, uint32_t n)
{
	struct part_rec r;

	for (uint32_t k = i + 1; k < count; k++) {
		rec_at(blob, k, &r);
		if (r.parent == i && --n == 0)
			return k;
	}
	return UINT32_MAX;
}

/* Part n of the message whose node is msg: the n-th part of a multipart,
 * or for any other body, part 1 is the body itself (RFC 9051 §6.4.5). */
static uint32_t enter_message(const unsigned char *blob, uint32_t count, uint32_t msg, uint32_t n)
{
	struct part_rec r;

	rec_at(blob, msg, &r);
	if (r.kind == MIME_MULTIPART)
		return nth_child(blob, count, msg, n);
	return n == 1 ? msg : UINT32_MAX;
}

int store_section_locate(struct store_mailbox *mb, uint32_t uid, const uint32_t *path,
			 size_t depth, enum store_section_kind kind, struct arena *a,
			 struct store_section *r, struct store_error *err)
{
	struct store_msg_structure ms;
	const unsigned char *blob;
	size_t blob_len;

	memset(r, 0, sizeof(*r));
	if (meta_get(mb, uid, a, &ms, (const void **)&blob, &blob_len, err) < 0)
		return -1;
	uint32_t count = (uint32_t)(blob_len / PART_REC);
	uint32_t node = 0;
	struct part_rec rec;

	if (count == 0)
		return store__fail(err, STORE_ERR_CORRUPT, "UID %u: no part tree", uid);
	for (size_t i = 0; i < depth; i++) {
		if (i == 0) {
			node = enter_message(blob, count, 0, path[i]);
		} else {
			rec_at(blob, node, &rec);
			if (rec.kind == MIME_MULTIPART)
				node = nth_child(blob, count, node, path[i]);
			else if (rec.kind == MIME_MESSAGE) {
				uint32_t msg = nth_child(blob, count, node, 1);

				node = msg == UINT32_MAX ? msg : enter_message(blob, count, msg, path[i]);
			} else
				node = UINT32_MAX;
		}
		if (node == UINT32_MAX || path[i] == 0)
			return store__fail(err, STORE_ERR_NOTFOUND, "UID %u: no such part", uid);
	}
	rec_at(blob, node, &rec);
	/* HEADER, TEXT and HEADER.FIELDS of a part are of the message in it. */
	if (depth > 0 && kind != STORE_SECTION_BODY && kind != STORE_SECTION_MIME) {
		if (rec.kind != MIME_MESSAGE)
			return store__fail(err, STORE_ERR_NOTFOUND, "UID %u: part is no message", uid);
		uint32_t msg = nth_child(blob, count, node, 1);

		if (msg == UINT32_MAX) {
			/* A message not parsed (a limit, an encoding): empty. */
			r->offset = rec.body_offset;
			return 0;
		}
		rec_at(blob, msg, &rec);
	}
	switch (kind) {
	case STORE_SECTION_BODY:
		if (depth == 0) {
			r->offset = 0;
			r->size = rec.hdr_size + rec.body_size;
		} else {
			r->offset = rec.body_offset;
			r->size = rec.body_size;
		}
		break;
	case STORE_SECTION_MIME:
		if (depth == 0)
			return store__fail(err, STORE_ERR_NOTFOUND, "MIME needs a part");
		r->offset = rec.hdr_offset;
		r->size = rec.hdr_size;
		break;
	case STORE_SECTION_HEADER:
	case STORE_SECTION_HEADER_FIELDS:
	case STORE_SECTION_HEADER_FIELDS_NOT:
		r->offset = rec.hdr_offset;
		r->size = rec.hdr_size;
		r->filter = kind != STORE_SECTION_HEADER;
		break;
	case STORE_SECTION_TEXT:
		r->offset = rec.body_offset;
		r->size = rec.body_size;
		break;
	}
	return 0;
}

/* ------------------------------------------------- header filtering */

static bool field_listed(const char *name, size_t len, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(fields[i]) == len && strncasecmp(fields[i], name, len) == 0)
			return true;
	return false;
}

int store_header_filter(const void *hdr, size_t len, const char *const *fields, size_t nfields,
			bool not, struct buf *out)
{
	const char *s = hdr, *end = s + len;
	bool keep = false;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t linelen = (size_t)(next - s);

		/* The empty line ends the header (and is always kept). */
		if ((linelen == 2 && s[0] == '\r') || (linelen == 1 && s[0] == '\n'))
			break;
		if (s[0] != ' ' && s[0] != '\t') {
			const char *colon = memchr(s, ':', linelen);

			if (colon == NULL) {
				keep = false;
			} else {
				size_t nlen = (size_t)(colon - s);

				while (nlen > 0 && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
					nlen--;
				keep = field_listed(s, nlen, fields, nfields) != not;
			}
		}
		if (keep && buf_append(out, s, linelen) < 0)
			return BUF_ETOOBIG;
		s = next;
	}
	return buf_append(out, "\r\n", 2) < 0 ? BUF_ETOOBIG : 0;
}
