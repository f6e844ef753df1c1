/*
 * sync.c — keeping the index true to the Maildir.
 *
 * Other programs may add files to new/ or cur/, rename them (flag changes
 * by mutt or another MDA) or delete them. A folder is rescanned only when
 * the modification time of new/ or cur/ differs from the one recorded at
 * the last scan (and a time within STORE_MTIME_SETTLE_NS of the scan is not
 * trusted, since a change in the same clock tick would not move it).
 *
 * The scan runs under the index write lock: every writer of ours renames
 * files only while holding it, so the listing cannot race with our own
 * processes. For other programs, a file that seems to be missing is looked
 * for once more before its message is expunged.
 *
 * A file the index does not know is a new message: it gets the next UID and
 * a new name carrying S=, W= and U=. Only a rebuild (trust_uids) keeps the
 * U= a file already carries, since such a file may have been moved in from
 * another folder's UID space (DESIGN.md, Storage).
 *
 * The quick check. Our own flag changes rename files in cur/, so right
 * after one the directory time is not trusted, and a full reconcile
 * (every index row loaded, both directories listed, every name parsed,
 * sorted and matched) would cost ~150 ms at 100,000 messages. Instead each
 * mailbox row keeps, for new/ and for cur/, a digest of the names the
 * index expects there: the sum, in two 64-bit lanes modulo 2^64, of the
 * SipHash-2-4-128 of each "new/<name>" or "cur/<name>", with a random key
 * kept per index (meta digest_key0/1). A sum does not depend on order, and
 * one name is added or taken away in O(1): every writer that adds, renames
 * or removes a message file (save.c, view.c flags and expunge, copy.c, the
 * reconcile here, and so a rebuild) updates the digest in the transaction
 * that changes the rows, under the same write lock. A sync whose times are
 * not trusted first lists only the directories whose time moved, hashing
 * each name as readdir returns it (no allocation, no sort), over exactly
 * the names a reconcile would consider (store__listed_entry). Equal digests
 * mean the directory holds what the index expects: the times are recorded
 * (settled(), the time taken before the listing) and the reconcile is
 * skipped. Anything else — a change by another program, a digest that a
 * writer got wrong, an index from before the digests (NULL), another
 * connection that could not add them — only costs the full reconcile,
 * which stores the digests of what the index then expects. Only a
 * collision of the keyed 128-bit sum could hide a change.
 *
 * What a digest cannot do: it says the files match what the index expects,
 * not that the rows are all there (a row lost some other way, with its
 * digest still counting it). So folders under STORE_RESCAN_AT_OPEN_MAX
 * messages are still reconciled in full at open, and larger ones hourly.
 * And the listing itself costs: readdir of 100,000 entries on ext4
 * (htree) takes ~27 ms of kernel time alone. So our own flag changes and
 * expunges leave times they can vouch for (witness.c), and the open right
 * after one needs no listing at all.
 */
#include "storage-private.h"
#include "fts-private.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct disk_entry {
	char *relname;              /* "new/<name>" or "cur/<name>" */
	struct store_filename fn;
	bool matched;
};

struct index_entry {
	uint32_t uid;
	char *guid;
	char *filename;
	uint32_t flags;
	uint64_t keywords;
	bool seen;
	bool expunged;
};

struct scan {
	struct disk_entry *files;
	size_t count, cap;
};

static void scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->files[i].relname);
	free(s->files);
	memset(s, 0, sizeof(*s));
}

static int scan_dir(const char *folder, const char *sub, struct scan *s,
		    struct store_error *err)
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

		if (!store__listed_entry(d, e, &fn))
			continue;
		if (s->count == s->cap) {
			s->cap = s->cap == 0 ? 64 : s->cap * 2;
			s->files = xrealloc(s->files, s->cap * sizeof(*s->files));
		}
		struct disk_entry *de = &s->files[s->count++];
		size_t n = strlen(sub) + strlen(e->d_name) + 2;

		de->relname = xcalloc(1, n);
		snprintf(de->relname, n, "%s/%s", sub, e->d_name);
		de->fn = fn;
		de->matched = false;
	}
	closedir(d);
	return 0;
}

/* The delivery time a Maildir base name starts with ("<secs>.M<usec>..."),
 * as microseconds; 0 when the name has another form. */
static uint64_t delivery_usec(const char *base)
{
	char *end;
	unsigned long long secs = strtoull(base, &end, 10);
	unsigned long long usec = 0;

	if (end == base || *end != '.')
		return 0;
	if (end[1] == 'M')
		usec = strtoull(end + 2, NULL, 10) % 1000000;
	return (uint64_t)secs * 1000000 + usec;
}

/*
 * Files carrying a UID first, by UID, then the rest by name (names begin
 * with the delivery time): a rebuild is repeatable. Of two files with one
 * UID the newer delivery comes first and keeps it: the older is a save a
 * crash cut short between its link and its commit (never acknowledged),
 * whose UID the next save then handed out again.
 */
static int entry_cmp(const void *a, const void *b)
{
	const struct disk_entry *x = a, *y = b;
	uint64_t ux = x->fn.uid == 0 ? UINT64_MAX : x->fn.uid;
	uint64_t uy = y->fn.uid == 0 ? UINT64_MAX : y->fn.uid;

	if (ux != uy)
		return ux < uy ? -1 : 1;
	if (x->fn.uid != 0) {
		uint64_t tx = delivery_usec(x->fn.base), ty = delivery_usec(y->fn.base);

		if (tx != ty)
			return tx > ty ? -1 : 1;
	}
	return strcmp(x->fn.base, y->fn.base);
}

static int scan_folder(const char *folder, struct scan *s, struct store_error *err)
{
	memset(s, 0, sizeof(*s));
	if (scan_dir(folder, "new", s, err) < 0 || scan_dir(folder, "cur", s, err) < 0) {
		scan_free(s);
		return -1;
	}
	if (s->count > 1)
		qsort(s->files, s->count, sizeof(*s->files), entry_cmp);
	return 0;
}

/* ---------------------------------------------------------- digests */

static _Atomic uint64_t full_reconciles, quick_listings;

uint64_t store__full_reconciles(void)
{
	return full_reconciles;
}

uint64_t store__quick_listings(void)
{
	return quick_listings;
}

bool store__listed_entry(DIR *d, const struct dirent *e, struct store_filename *fn_r)
{
	struct store_filename fn;
	struct stat st;

	if (e->d_name[0] == '.' || store_filename_parse(e->d_name, fn_r != NULL ? fn_r : &fn) < 0)
		return false;
	/* A directory or a symbolic link with a message's name is not a
	 * message: reading it would fail (or leave the user's directory). */
	if (e->d_type == DT_REG)
		return true;
	if (e->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* SipHash-2-4 with its 128-bit output (Aumasson and Bernstein's reference
 * siphash.c with outlen 16). */
void store__siphash128(const uint64_t key[2], const void *data, size_t len, uint64_t out[2])
{
	const unsigned char *p = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i;

	v1 ^= 0xee;
	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xee;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	out[0] = v0 ^ v1 ^ v2 ^ v3;
	v1 ^= 0xdd;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	out[1] = v0 ^ v1 ^ v2 ^ v3;
}

static void digest_add(const struct store_user *u, struct store_digest *d, const char *relname,
		       size_t len, bool add)
{
	uint64_t h[2];

	store__siphash128(u->digest_key, relname, len, h);
	if (add) {
		d->a += h[0];
		d->b += h[1];
	} else {
		d->a -= h[0];
		d->b -= h[1];
	}
}

static bool digest_equal(const struct store_digest *x, const struct store_digest *y)
{
	return x->known && y->known && x->a == y->a && x->b == y->b;
}

/* Which digest a "new/..." or "cur/..." name belongs to, or -1. */
static int digest_dir(const char *relname)
{
	if (strncmp(relname, "new/", 4) == 0)
		return STORE_DIGEST_NEW;
	if (strncmp(relname, "cur/", 4) == 0)
		return STORE_DIGEST_CUR;
	return -1;
}

void store__digest_name(struct store_user *u, struct store_mbox_row *row, const char *relname,
			bool add)
{
	int d = digest_dir(relname);

	if (!u->digests)
		return;
	if (d < 0) {
		/* Not a name a listing can show: nothing to compare with. */
		row->digest[STORE_DIGEST_NEW].known = false;
		row->digest[STORE_DIGEST_CUR].known = false;
		return;
	}
	if (row->digest[d].known)
		digest_add(u, &row->digest[d], relname, strlen(relname), add);
}

/* The digest of what new/ or cur/ holds now: one pass of readdir, each
 * name checked and hashed in place (no allocation, no sort). */
static int digest_listing(struct store_user *u, const char *folder, int dir,
			  struct store_digest *d_r, struct store_error *err)
{
	const char *sub = dir == STORE_DIGEST_NEW ? "new" : "cur";
	char path[4096], relname[4 + 256];
	DIR *d;
	struct dirent *e;

	quick_listings++;
	memset(d_r, 0, sizeof(*d_r));
	d_r->known = true;
	snprintf(path, sizeof(path), "%s/%s", folder, sub);
	d = opendir(path);
	if (d == NULL)
		return store__fail_errno(err, errno, "opendir %s", path);
	memcpy(relname, sub, 3);
	relname[3] = '/';
	while ((e = readdir(d)) != NULL) {
		size_t len = strnlen(e->d_name, 256);

		if (len == 256 || !store__listed_entry(d, e, NULL))
			continue;
		memcpy(relname + 4, e->d_name, len);
		digest_add(u, d_r, relname, 4 + len, true);
	}
	closedir(d);
	return 0;
}

int store__folder_digests(struct store_user *u, const char *name,
			  struct store_digest stored_r[STORE_DIGEST_DIRS],
			  struct store_digest index_r[STORE_DIGEST_DIRS],
			  struct store_digest listed_r[STORE_DIGEST_DIRS], struct store_error *err)
{
	struct store_mbox_row row;
	sqlite3_stmt *st;
	char *folder;
	int rc, ret = -1;

	if (!u->digests)
		return store__fail(err, STORE_ERR_TEMP, "the index keeps no digests");
	rc = store__mbox_get(u, name, &row, err);
	if (rc <= 0)
		return rc == 0 ? store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name) : -1;
	folder = store__folder_path(u, name, err);
	if (folder == NULL)
		return -1;
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		stored_r[d] = row.digest[d];
		memset(&index_r[d], 0, sizeof(index_r[d]));
		index_r[d].known = true;
		if (digest_listing(u, folder, d, &listed_r[d], err) < 0)
			goto out;
	}
	if (sqlite3_prepare_v2(u->db, "SELECT filename FROM message WHERE mailbox_id = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		store__fail_db(err, u->db, "load messages");
		goto out;
	}
	sqlite3_bind_int64(st, 1, row.id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *relname = (const char *)sqlite3_column_text(st, 0);
		int d = digest_dir(relname);

		if (d < 0)
			index_r[STORE_DIGEST_NEW].known = index_r[STORE_DIGEST_CUR].known = false;
		else
			digest_add(u, &index_r[d], relname, strlen(relname), true);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store__fail_db(err, u->db, "load messages");
		goto out;
	}
	ret = 0;
out:
	free(folder);
	return ret;
}

/* --------------------------------------------------- index entries */

struct index_set {
	struct index_entry *rows;
	size_t count;
	size_t *table;          /* open addressing by guid: row index + 1 */
	size_t table_size;
};

static size_t guid_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static struct index_entry *index_find(struct index_set *set, const char *guid)
{
	size_t mask = set->table_size - 1;

	for (size_t i = guid_hash(guid) & mask;; i = (i + 1) & mask) {
		size_t slot = set->table[i];

		if (slot == 0)
			return NULL;
		if (strcmp(set->rows[slot - 1].guid, guid) == 0)
			return &set->rows[slot - 1];
	}
}

static void index_set_free(struct index_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		free(set->rows[i].guid);
		free(set->rows[i].filename);
	}
	free(set->rows);
	free(set->table);
	memset(set, 0, sizeof(*set));
}

static int index_load(struct store_user *u, int64_t mailbox_id, struct index_set *set,
		      struct store_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;

	memset(set, 0, sizeof(*set));
	if (sqlite3_prepare_v2(u->db, "SELECT uid, guid, filename, flags, keywords FROM message"
			       " WHERE mailbox_id = ?", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "load messages");
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (set->count == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			set->rows = xrealloc(set->rows, cap * sizeof(*set->rows));
		}
		struct index_entry *ie = &set->rows[set->count++];

		ie->uid = (uint32_t)sqlite3_column_int64(st, 0);
		ie->guid = xstrdup((const char *)sqlite3_column_text(st, 1));
		ie->filename = xstrdup((const char *)sqlite3_column_text(st, 2));
		ie->flags = (uint32_t)sqlite3_column_int64(st, 3);
		ie->keywords = (uint64_t)sqlite3_column_int64(st, 4);
		ie->seen = false;
		ie->expunged = false;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		index_set_free(set);
		return store__fail_db(err, u->db, "load messages");
	}
	set->table_size = 16;
	while (set->table_size < set->count * 2)
		set->table_size *= 2;
	set->table = xcalloc(set->table_size, sizeof(*set->table));
	for (size_t r = 0; r < set->count; r++) {
		size_t mask = set->table_size - 1;
		size_t i = guid_hash(set->rows[r].guid) & mask;

		while (set->table[i] != 0)
			i = (i + 1) & mask;
		set->table[i] = r + 1;
	}
	return 0;
}

/* ----------------------------------------------------------- changes */

struct sync_ctx {
	struct store_user *u;
	const char *folder;
	struct store_mbox_row row;
	uint64_t modseq;        /* the modseq of this sync's changes */
	bool changed;
	bool durable;           /* UIDs handed out or expunges recorded */
	bool expunged;          /* message rows deleted */
	bool trust_uids;
	bool lazy;              /* adopting many files: index rows only */
	struct store_digest digest[STORE_DIGEST_DIRS]; /* of the names now expected */
	uint32_t *used_uids;    /* trust_uids: UIDs taken so far, sorted */
	size_t used_count, used_cap;
};

static int update_file(struct sync_ctx *sc, struct index_entry *ie, const struct disk_entry *de,
		       struct store_error *err)
{
	sqlite3_stmt *st;
	bool flags_changed = ie->flags != de->fn.flags ||
		(ie->keywords & 0x3FFFFFF) != de->fn.keywords;

	st = flags_changed ?
		store__stmt(sc->u, STORE_STMT_SYNC_REFLAG, "UPDATE message SET filename = ?, flags = ?,"
			    " keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?", err) :
		store__stmt(sc->u, STORE_STMT_SYNC_RENAME, "UPDATE message SET filename = ?"
			    " WHERE mailbox_id = ? AND uid = ?", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, de->relname, -1, SQLITE_STATIC);
	if (flags_changed) {
		/* Keywords beyond the 26 letters live only in the index. */
		uint64_t kw = (ie->keywords & ~(uint64_t)0x3FFFFFF) | de->fn.keywords;

		sqlite3_bind_int64(st, 2, de->fn.flags);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)kw);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)sc->modseq);
		sqlite3_bind_int64(st, 5, sc->row.id);
		sqlite3_bind_int64(st, 6, ie->uid);
		sc->changed = true;
	} else {
		sqlite3_bind_int64(st, 2, sc->row.id);
		sqlite3_bind_int64(st, 3, ie->uid);
	}
	if (store__step_cached(sc->u, st, "update message", err) < 0)
		return -1;
	free(ie->filename);
	ie->filename = xstrdup(de->relname);
	return 0;
}

static bool uid_used(const struct sync_ctx *sc, uint32_t uid)
{
	size_t lo = 0, hi = sc->used_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sc->used_uids[mid] == uid)
			return true;
		if (sc->used_uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void uid_mark_used(struct sync_ctx *sc, uint32_t uid)
{
	size_t i = sc->used_count;

	if (sc->used_count == sc->used_cap) {
		sc->used_cap = sc->used_cap == 0 ? 256 : sc->used_cap * 2;
		sc->used_uids = xrealloc(sc->used_uids, sc->used_cap * sizeof(uint32_t));
	}
	while (i > 0 && sc->used_uids[i - 1] > uid) {
		sc->used_uids[i] = sc->used_uids[i - 1];
		i--;
	}
	sc->used_uids[i] = uid;
	sc->used_count++;
}

/* A file the index does not know: give it a UID and a full name. */
static int add_file(struct sync_ctx *sc, struct disk_entry *de, bool new_guid,
		    struct store_error *err)
{
	struct store_filename fn = de->fn;
	char oldpath[4096], newpath[4096], name[512];
	const char *sub = de->relname[0] == 'n' ? "new" : "cur";
	struct stat stbuf;
	uint32_t uid;

	snprintf(oldpath, sizeof(oldpath), "%s/%s", sc->folder, de->relname);
	if (stat(oldpath, &stbuf) < 0) {
		if (errno == ENOENT)
			return 0; /* gone meanwhile */
		return store__fail_errno(err, errno, "stat %s", oldpath);
	}
	if (!fn.has_size || !fn.has_vsize || fn.size != (uint64_t)stbuf.st_size) {
		if (store__file_vsize(oldpath, &fn.size, &fn.vsize, err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? 0 : -1;
		fn.has_size = fn.has_vsize = true;
	}
	if (sc->trust_uids && fn.uid != 0 && !uid_used(sc, fn.uid)) {
		uid = fn.uid;
		if (uid >= sc->row.uidnext)
			sc->row.uidnext = uid + 1;
	} else {
		uid = sc->row.uidnext++;
	}
	if (sc->trust_uids)
		uid_mark_used(sc, uid);
	if (store__uidstate_reserve(sc->folder, &sc->row, uid, sc->modseq, err) < 0)
		return -1;
	if (new_guid)
		store_new_base(fn.base, sizeof(fn.base));
	fn.uid = uid;
	fn.has_info = true;
	if (store_filename_build(&fn, name, sizeof(name)) < 0)
		return store__fail(err, STORE_ERR_TEMP, "file name too long in %s", sc->folder);
	snprintf(newpath, sizeof(newpath), "%s/%s/%s", sc->folder, sub, name);
	if (strcmp(oldpath, newpath) != 0 && rename(oldpath, newpath) < 0) {
		if (errno == ENOENT)
			return 0;
		return store__fail_errno(err, errno, "rename %s", oldpath);
	}
	char relname[600];
	sqlite3_stmt *st;

	snprintf(relname, sizeof(relname), "%s/%s", sub, name);
	st = store__stmt(sc->u, STORE_STMT_SYNC_ADD,
			 "INSERT INTO message (mailbox_id, uid, guid, filename, flags, keywords,"
			 " modseq, internal_date, save_date, size, vsize)"
			 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, sc->row.id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, fn.base, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, relname, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, fn.flags);
	sqlite3_bind_int64(st, 6, fn.keywords);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)sc->modseq);
	/* Maildir keeps the received date as the file's mtime. */
	sqlite3_bind_int64(st, 8, (sqlite3_int64)stbuf.st_mtim.tv_sec);
	sqlite3_bind_int64(st, 9, store__now_ns() / 1000000000LL);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)fn.size);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)fn.vsize);
	sc->changed = true;
	sc->durable = true;
	if (store__step_cached(sc->u, st, "insert message", err) < 0)
		return -1;
	digest_add(sc->u, &sc->digest[de->relname[0] == 'n' ? STORE_DIGEST_NEW : STORE_DIGEST_CUR],
		   relname, strlen(relname), true);
	/* Adopting many files at once (a migrated Maildir, a rebuild): the
	 * row only. The structure is parsed on first use (message-meta.c,
	 * search.c, sort.c) and the message stays in fts_pending (its insert
	 * trigger), read from its file by search until a search keeps its
	 * text. */
	if (sc->lazy)
		return 0;
	/* The message's structure, parsed now (message-meta.c); a file that
	 * cannot be read gets it on demand later. */
	struct store__meta *m = store__meta_parse_file(newpath, err);

	if (m == NULL) {
		log_warn("%s: not parsed: %s", newpath, err->msg);
		memset(err, 0, sizeof(*err));
	} else {
		int ret = store__meta_insert(sc->u, sc->row.id, uid, fn.base, m, err);

		store__meta_unref(&m);
		if (ret < 0)
			return -1;
	}
	/* Its text for SEARCH (fts.c). */
	return store__fts_adopt(sc->u, newpath, fn.base, err);
}

static int expunge_row(struct sync_ctx *sc, uint32_t uid, struct store_error *err)
{
	sc->changed = true;
	sc->durable = true;
	sc->expunged = true;
	return store__expunge_row(sc->u, sc->row.id, uid, sc->modseq, err);
}

static int save_row(struct sync_ctx *sc, int64_t new_mtime, int64_t cur_mtime,
		    struct store_error *err)
{
	sqlite3_stmt *st;

	st = store__stmt(sc->u, STORE_STMT_SYNC_MBOX,
			 "UPDATE mailbox SET uidnext = ?, highestmodseq = ?, new_mtime = ?,"
			 " cur_mtime = ?, uid_ceiling = ?, modseq_ceiling = ?,"
			 " scanned_at = strftime('%s', 'now') WHERE id = ?", err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, sc->row.uidnext);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(sc->changed ? sc->modseq :
						  sc->row.highestmodseq));
	sqlite3_bind_int64(st, 3, new_mtime);
	sqlite3_bind_int64(st, 4, cur_mtime);
	sqlite3_bind_int64(st, 5, sc->row.uid_ceiling);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)sc->row.modseq_ceiling);
	sqlite3_bind_int64(st, 7, sc->row.id);
	return store__step_cached(sc->u, st, "update mailbox", err);
}

/*
 * A directory time that can be trusted at the next sync, else 0 (rescan).
 * A change in the same timestamp tick as the last one would not move the
 * time, so the time is trusted only once its tick was over before the scan
 * began: a few milliseconds where the file system keeps fine-grained times,
 * two seconds where it keeps whole seconds (a time with zero nanoseconds).
 */
static int64_t settled(int64_t mtime, int64_t now)
{
	int64_t window = mtime % 1000000000LL != 0 ? STORE_MTIME_SETTLE_FINE_NS :
		STORE_MTIME_SETTLE_NS;

	return mtime > 0 && now - mtime > window ? mtime : 0;
}

/* Files in tmp/ older than Maildir's 36 hours are leftovers of saves and
 * expunges a crash cut short. */
static void remove_stale_tmp(const char *folder)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int64_t now = store__now_ns() / 1000000000LL;

	snprintf(path, sizeof(path), "%s/tmp", folder);
	d = opendir(path);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char file[4400];

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		if (lstat(file, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtim.tv_sec > STORE_TMP_MAX_AGE_S)
			unlink(file);
	}
	closedir(d);
}

static int reconcile(struct sync_ctx *sc, struct store_error *err)
{
	struct scan disk;
	struct index_set idx;
	int ret = -1;

	full_reconciles++;
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		memset(&sc->digest[d], 0, sizeof(sc->digest[d]));
		sc->digest[d].known = sc->u->digests;
	}
	remove_stale_tmp(sc->folder);
	if (index_load(sc->u, sc->row.id, &idx, err) < 0)
		return -1;
	if (scan_folder(sc->folder, &disk, err) < 0) {
		index_set_free(&idx);
		return -1;
	}
	if (sc->trust_uids) {
		for (size_t i = 0; i < idx.count; i++)
			uid_mark_used(sc, idx.rows[i].uid);
	}
	for (size_t i = 0; i < disk.count; i++) {
		struct disk_entry *de = &disk.files[i];
		struct index_entry *ie = index_find(&idx, de->fn.base);

		if (ie != NULL && !ie->seen) {
			ie->seen = true;
			de->matched = true;
			if (strcmp(ie->filename, de->relname) != 0 &&
			    update_file(sc, ie, de, err) < 0)
				goto out;
		}
	}
	/* Unknown files (in entry_cmp order). A second file with a GUID
	 * already matched gets a GUID of its own. More than
	 * STORE_ADOPT_EAGER_MAX of them are adopted lazily (add_file). */
	size_t unknown = 0;

	for (size_t i = 0; i < disk.count; i++)
		unknown += !disk.files[i].matched;
	sc->lazy = unknown > STORE_ADOPT_EAGER_MAX;
	for (size_t i = 0; i < disk.count; i++) {
		struct disk_entry *de = &disk.files[i];

		if (!de->matched && add_file(sc, de, index_find(&idx, de->fn.base) != NULL, err) < 0)
			goto out;
	}
	/* Index rows without a file: look once more (another program may have
	 * renamed it while we listed), then expunge. */
	bool missing = false;

	for (size_t i = 0; i < idx.count; i++)
		missing |= !idx.rows[i].seen;
	if (missing) {
		struct scan again;

		if (scan_folder(sc->folder, &again, err) < 0)
			goto out;
		for (size_t i = 0; i < idx.count; i++) {
			struct index_entry *ie = &idx.rows[i];

			if (ie->seen)
				continue;
			struct disk_entry *found = NULL;

			for (size_t j = 0; j < again.count && found == NULL; j++) {
				if (strcmp(again.files[j].fn.base, ie->guid) == 0)
					found = &again.files[j];
			}
			if (found != NULL) {
				if (strcmp(found->relname, ie->filename) != 0 &&
				    update_file(sc, ie, found, err) < 0) {
					scan_free(&again);
					goto out;
				}
			} else if (expunge_row(sc, ie->uid, err) < 0) {
				scan_free(&again);
				goto out;
			} else {
				ie->expunged = true;
			}
		}
		scan_free(&again);
	}
	/* The digests of what the index now expects (the files added are in
	 * already). */
	for (size_t i = 0; i < idx.count; i++) {
		struct index_entry *ie = &idx.rows[i];
		int d = digest_dir(ie->filename);

		if (ie->expunged)
			continue;
		if (d < 0)
			sc->digest[STORE_DIGEST_NEW].known = sc->digest[STORE_DIGEST_CUR].known = false;
		else
			digest_add(sc->u, &sc->digest[d], ie->filename, strlen(ie->filename), true);
	}
	ret = 0;
out:
	scan_free(&disk);
	index_set_free(&idx);
	return ret;
}

/*
 * The quick check, for a folder whose directory times are not trusted: list
 * only the directories whose time moved, and compare the digest of each
 * listing with the digest of what the index expects. Equal means that the
 * directory holds exactly the names the index has (but for a collision of
 * the keyed 128-bit digest): the directory times are recorded as a full
 * reconcile would, and nothing else is done. 1: done, 0: a full reconcile
 * is needed, -1: error.
 */
static int64_t dir_mtime(const char *folder, const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", folder, sub);
	return store__mtime_ns(path);
}

static int quick_check(struct store_user *u, const char *name, const char *folder, bool wait,
		       struct store_error *err)
{
	struct store_mbox_row row;
	int found;

	if (!u->digests)
		return 0;
	/* Under the write lock, as a reconcile: our writers rename files only
	 * while they hold it, so the listing never sees one half done. Not
	 * durable: at most the directory times are written. */
	u->busy_nowait = !wait;
	found = store__begin(u, false, err);
	u->busy_nowait = false;
	if (found < 0) {
		if (wait || sqlite3_errcode(u->db) != SQLITE_BUSY)
			return -1;
		/* A writer of ours holds the lock: the directory is as it
		 * left it, and it records that with its commit. */
		memset(err, 0, sizeof(*err));
		return 1;
	}
	found = store__mbox_get(u, name, &row, err);
	if (found <= 0) {
		store__rollback(u);
		return found < 0 ? -1 : 0;
	}
	/* Times taken before the listing, as in a reconcile; looked at again
	 * now that we hold the lock: a writer of ours that held it may have
	 * left times it witnessed (witness.c), and then nothing is to list. */
	int64_t now = store__now_ns();
	int64_t mtime[STORE_DIGEST_DIRS] = { dir_mtime(folder, "new"), dir_mtime(folder, "cur") };
	int64_t known[STORE_DIGEST_DIRS] = { row.new_mtime, row.cur_mtime };

	if (now / 1000000000LL - row.scanned_at >= STORE_RESCAN_INTERVAL_S) {
		store__rollback(u);
		return 0;
	}
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		struct store_digest listed;

		if (!row.digest[d].known) {
			store__rollback(u);
			return 0;
		}
		/* Unchanged since a listing that began after its time's tick:
		 * nothing moved in this directory. */
		if (mtime[d] != 0 && mtime[d] == known[d])
			continue;
		if (digest_listing(u, folder, d, &listed, err) < 0) {
			store__rollback(u);
			return -1;
		}
		if (!digest_equal(&listed, &row.digest[d])) {
			store__rollback(u);
			return 0;
		}
	}
	int64_t keep[STORE_DIGEST_DIRS];

	for (int d = 0; d < STORE_DIGEST_DIRS; d++)
		keep[d] = mtime[d] != 0 && mtime[d] == known[d] ? known[d] : settled(mtime[d], now);
	if (keep[STORE_DIGEST_NEW] == row.new_mtime && keep[STORE_DIGEST_CUR] == row.cur_mtime) {
		store__rollback(u);
		return 1;
	}
	row.new_mtime = keep[STORE_DIGEST_NEW];
	row.cur_mtime = keep[STORE_DIGEST_CUR];
	if (store__mbox_save_times(u, &row, err) < 0 || store__commit(u, err) < 0) {
		/* Only a hint for the next sync (a full disk, say). */
		store__rollback(u);
		log_debug("sync of %s: %s", name, err->msg);
	}
	return 1;
}

static int sync_folder(struct store_user *u, const char *name, bool force, bool trust_uids,
		       bool wait, struct store_error *err)
{
	struct store_mbox_row row;
	char *folder = store__folder_path(u, name, err);
	char path[4096];
	int ret = -1;

	if (folder == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/new", folder);
	int64_t new_mtime = store__mtime_ns(path);

	snprintf(path, sizeof(path), "%s/cur", folder);
	int64_t cur_mtime = store__mtime_ns(path);

	if (new_mtime < 0 || cur_mtime < 0) {
		store__fail(err, STORE_ERR_NOTFOUND, "folder %s is gone", name);
		goto out;
	}
	/* The cheap path: nothing moved since the last scan. */
	if (!force) {
		int found = store__mbox_get(u, name, &row, err);

		if (found < 0)
			goto out;
		if (found == 0) {
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
			goto out;
		}
		if (row.new_mtime == new_mtime && row.cur_mtime == cur_mtime && new_mtime != 0 &&
		    store__now_ns() / 1000000000LL - row.scanned_at < STORE_RESCAN_INTERVAL_S) {
			ret = 0;
			goto out;
		}
		/* Next cheapest: the listings match the index. */
		int quick = quick_check(u, name, folder, wait, err);

		if (quick != 0) {
			ret = quick < 0 ? -1 : 0;
			goto out;
		}
	}
	if (store__begin(u, true, err) < 0)
		goto out;
	int found = store__mbox_get(u, name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		store__rollback(u);
		goto out;
	}
	struct sync_ctx sc = {
		.u = u, .folder = folder, .row = row, .modseq = row.highestmodseq + 1,
		.trust_uids = trust_uids,
	};
	/* Times taken before the listing: a change during it moves them again
	 * and the next sync rescans. */
	int64_t now = store__now_ns();

	if (store__uidstate_reserve(folder, &sc.row, 0, sc.modseq, err) < 0 ||
	    reconcile(&sc, err) < 0) {
		free(sc.used_uids);
		store__rollback(u);
		goto out;
	}
	free(sc.used_uids);
	int64_t keep_new = settled(new_mtime, now), keep_cur = settled(cur_mtime, now);

	bool scan_was_due = now / 1000000000LL - row.scanned_at >= STORE_RESCAN_INTERVAL_S;
	bool same_digests = true;

	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		same_digests &= sc.digest[d].known == row.digest[d].known &&
			(!sc.digest[d].known || digest_equal(&sc.digest[d], &row.digest[d]));
		sc.row.digest[d] = sc.digest[d];
	}
	if (!sc.changed && keep_new == row.new_mtime && keep_cur == row.cur_mtime && !scan_was_due &&
	    sc.row.uid_ceiling == row.uid_ceiling && sc.row.modseq_ceiling == row.modseq_ceiling &&
	    same_digests) {
		/* Nothing to write: reading works on a full disk too. */
		store__rollback(u);
		ret = 0;
		goto out;
	}
	if (save_row(&sc, keep_new, keep_cur, err) < 0 ||
	    store__mbox_save_digests(u, &sc.row, err) < 0) {
		store__rollback(u);
		goto out;
	}
	ret = store__commit(u, err);
	if (ret == 0 && sc.expunged)
		store__fts_gone_bound(u);
	if (ret < 0 && !sc.changed) {
		/* Only the directory times were to be remembered: a hint, not
		 * worth failing a read for (a full disk, say). */
		log_debug("sync of %s: %s", name, err->msg);
		ret = 0;
	}
out:
	free(folder);
	return ret;
}

int store__sync_folder_opts(struct store_user *u, const char *name, bool force,
			    bool trust_uids, struct store_error *err)
{
	return sync_folder(u, name, force, trust_uids, true, err);
}

int store__sync_folder_nowait(struct store_user *u, const char *name, struct store_error *err)
{
	return sync_folder(u, name, false, false, false, err);
}

int store__sync_folder(struct store_user *u, const char *name, bool force,
		       struct store_error *err)
{
	return store__sync_folder_opts(u, name, force, false, err);
}
