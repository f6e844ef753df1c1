/*
 * index.c — the per-user SQLite index: schema, connection settings and
 * transactions.
 *
 * WAL mode lets readers run while one writer commits. Writers take the lock
 * up front (BEGIN IMMEDIATE) and wait for each other up to the busy
 * timeout; transactions are short. Commits that hand out UIDs or record
 * expunges are durable (synchronous=FULL); flag and cache updates use
 * NORMAL, which can lose the last commits on power loss but never corrupts
 * (DESIGN.md, Storage).
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta ("
	"  key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS mailbox ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL,"
	"  highestmodseq INTEGER NOT NULL,"
	"  special_use INTEGER NOT NULL DEFAULT 0,"
	"  new_mtime INTEGER NOT NULL DEFAULT 0,"
	"  cur_mtime INTEGER NOT NULL DEFAULT 0,"
	/* Mirrors of tern-uidstate's reservations, to skip reading it. */
	"  uid_ceiling INTEGER NOT NULL DEFAULT 0,"
	"  modseq_ceiling INTEGER NOT NULL DEFAULT 0,"
	/* Expunges are known from this modseq on (the folder's registration). */
	"  history_modseq INTEGER NOT NULL DEFAULT 0,"
	/* When the folder was last listed in full (seconds). */
	"  scanned_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS subscription (name TEXT PRIMARY KEY);"
	/* filename is relative to the folder: "new/..." or "cur/...". */
	"CREATE TABLE IF NOT EXISTS message ("
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  guid TEXT NOT NULL,"
	"  filename TEXT NOT NULL,"
	"  flags INTEGER NOT NULL,"
	"  keywords INTEGER NOT NULL DEFAULT 0,"
	"  modseq INTEGER NOT NULL,"
	"  internal_date INTEGER NOT NULL,"
	"  save_date INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  vsize INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS message_guid ON message (mailbox_id, guid);"
	"CREATE INDEX IF NOT EXISTS message_modseq ON message (mailbox_id, modseq);"
	"CREATE TABLE IF NOT EXISTS expunged ("
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	/* Usage kept exact by triggers, for quota checks in O(1). */
	"CREATE TABLE IF NOT EXISTS usage ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  bytes INTEGER NOT NULL, messages INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO usage VALUES (1, 0, 0);"
	"CREATE TRIGGER IF NOT EXISTS usage_add AFTER INSERT ON message BEGIN"
	"  UPDATE usage SET bytes = bytes + NEW.vsize, messages = messages + 1;"
	"END;"
	"CREATE TRIGGER IF NOT EXISTS usage_del AFTER DELETE ON message BEGIN"
	"  UPDATE usage SET bytes = bytes - OLD.vsize, messages = messages - 1;"
	"END;";

/* A snapshot of an opened mailbox's message list (see view.c). Only a
 * cache: dropped with the mailbox, on rebuild, and when it does not match. */
static const char view_cache_schema[] =
	"CREATE TABLE IF NOT EXISTS view_cache ("
	"  mailbox_id INTEGER PRIMARY KEY,"
	"  uidvalidity INTEGER NOT NULL,"
	"  highestmodseq INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL,"
	"  data BLOB NOT NULL);";

/* Added after version 1, where missing: the digests of what the index
 * expects in each folder's new/ and cur/ (16 bytes, NULL: unknown; see
 * sync.c), and the random SipHash key they are made with. */
static const char digest_schema[] =
	"ALTER TABLE mailbox ADD COLUMN new_digest BLOB;"
	"ALTER TABLE mailbox ADD COLUMN cur_digest BLOB;";

/* The form of the full-text index's text (fts.c), meta 'fts_format' (the
 * number twice, for C and for SQL): 2 since it is kept casemapped
 * (i;unicode-casemap, casemap.h, tables of Unicode 15.0); none before.
 * Raise it when the form changes (new tables, say). */
#define FTS_FORMAT 2
#define FTS_FORMAT_SQL "2"

static bool index_stat(struct store_user *u, struct stat *st)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/" STORE_INDEX_FILE, u->dir);
	return stat(path, st) == 0;
}

int store__exec(struct store_user *u, const char *sql, struct store_error *err)
{
	if (sqlite3_exec(u->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, sql);
	return 0;
}

/* The number the meta table keeps under key: missing where it has none,
 * -1 where there is no meta table (a new index). */
static int meta_int(struct store_user *u, const char *key, int missing)
{
	sqlite3_stmt *st;
	int v = missing;

	if (sqlite3_prepare_v2(u->db, "SELECT value FROM meta WHERE key = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The schema's version, -1 for a new index. */
static int schema_version(struct store_user *u)
{
	return meta_int(u, "schema", -1);
}

static bool has_digest_columns(struct store_user *u)
{
	sqlite3_stmt *st;
	bool found = false;

	if (sqlite3_prepare_v2(u->db, "SELECT 1 FROM pragma_table_info('mailbox')"
			       " WHERE name = 'cur_digest'", -1, &st, NULL) != SQLITE_OK)
		return false;
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

static bool read_digest_key(struct store_user *u)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(u->db, "SELECT key, value FROM meta WHERE key IN"
			       " ('digest_key0', 'digest_key1')", -1, &st, NULL) != SQLITE_OK)
		return false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);

		u->digest_key[key[strlen(key) - 1] == '1'] = (uint64_t)sqlite3_column_int64(st, 1);
		n++;
	}
	sqlite3_finalize(st);
	return n == 2;
}

/* The digest columns and key, added to an index made before them. Without
 * them (the disk is full, say) this connection keeps no digests, and every
 * sync whose directory times are not trusted reconciles in full. */
static void digest_setup(struct store_user *u)
{
	struct store_error err = { 0 };
	uint64_t key[2];

	u->digests = false;
	if (has_digest_columns(u) && read_digest_key(u)) {
		u->digests = true;
		return;
	}
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		log_warn("index of %s: no random key for the folder digests", u->dir);
		return;
	}
	if (store__begin(u, false, &err) < 0) {
		log_debug("index of %s: folder digests not added: %s", u->dir, err.msg);
		return;
	}
	char sql[200];

	snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO meta VALUES ('digest_key0', %lld),"
		 " ('digest_key1', %lld)", (long long)key[0], (long long)key[1]);
	if ((!has_digest_columns(u) && store__exec(u, digest_schema, &err) < 0) ||
	    store__exec(u, sql, &err) < 0 || store__commit(u, &err) < 0) {
		store__rollback(u);
		log_debug("index of %s: folder digests not added: %s", u->dir, err.msg);
		return;
	}
	u->digests = has_digest_columns(u) && read_digest_key(u);
}

/* The text index's form; 1 where the index does not say (before 2). */
static int fts_format(struct store_user *u)
{
	return meta_int(u, "fts_format", 1);
}

/*
 * A full-text index of an older form: its text would not match what
 * search.c looks for, so it goes, and every message becomes pending
 * (searched from its file, its text kept again in the current form, up
 * to STORE_SEARCH_KEEP_MAX a search). Dropping the table is much quicker
 * than deleting its rows; store__meta_schema creates it again. Without
 * the upgrade (a full disk, say) this connection uses no message_meta
 * at all rather than give wrong answers; the next open tries again.
 */
static void fts_upgrade(struct store_user *u)
{
	struct store_error err = { 0 };

	if (fts_format(u) == FTS_FORMAT)
		return;
	if (store__begin(u, false, &err) < 0)
		goto fail;
	/* Another connection may have done it meanwhile. */
	int v = fts_format(u), pending = 0;

	if (v != FTS_FORMAT) {
		if (store__exec(u, "DROP TABLE message_fts; DELETE FROM fts_doc;"
				" DELETE FROM fts_gone", &err) < 0 ||
		    store__exec(u, "INSERT OR IGNORE INTO fts_pending"
				" SELECT mailbox_id, uid FROM message", &err) < 0)
			goto rollback;
		pending = sqlite3_changes(u->db);
		if (store__exec(u, store__meta_schema, &err) < 0 ||
		    store__exec(u, "INSERT OR REPLACE INTO meta VALUES ('fts_format', "
				FTS_FORMAT_SQL ")", &err) < 0)
			goto rollback;
	}
	if (store__commit(u, &err) < 0)
		goto fail;
	if (pending > 0)
		log_info("index of %s: full-text index emptied for its new form: %d messages"
			 " are indexed again (in the background by tern-imapd, and as"
			 " searches read them)", u->dir, pending);
	return;
rollback:
	store__rollback(u);
fail:
	u->meta = false;
	log_warn("index of %s: full-text index not upgraded: %s", u->dir, err.msg);
}

/*
 * meta 'fts_gone' (1): the trigger fts_del leaves a message's document in
 * message_fts, listed in fts_gone, rather than delete it there (which
 * cost an expunge ~1 ms of FTS5 work; fts.c deletes them in batches).
 * store__meta_schema creates fts_gone where missing but keeps an older
 * fts_del, so an index from before gets the new trigger here, once.
 * Without it (a full disk, say) the old trigger goes on deleting the
 * documents itself, which is slower but right; the next open tries again.
 */
static void fts_gone_upgrade(struct store_user *u)
{
	struct store_error err = { 0 };

	if (meta_int(u, "fts_gone", 0) == 1)
		return;
	if (store__begin(u, false, &err) < 0)
		goto fail;
	/* Another connection may have done it meanwhile. */
	if (meta_int(u, "fts_gone", 0) != 1 &&
	    (store__exec(u, "DROP TRIGGER IF EXISTS fts_del", &err) < 0 ||
	     store__exec(u, store__meta_schema, &err) < 0 ||
	     store__exec(u, "INSERT OR REPLACE INTO meta VALUES ('fts_gone', 1)", &err) < 0)) {
		store__rollback(u);
		goto fail;
	}
	if (store__commit(u, &err) < 0)
		goto fail;
	return;
fail:
	log_warn("index of %s: text index trigger not upgraded: %s", u->dir, err.msg);
}

/* Open (creating if needed) and check the index: 1 when it was created
 * (empty), 0 when it existed. A database that SQLite cannot read, or with a
 * schema we do not know, is CORRUPT: the caller rebuilds it from the
 * Maildir. */
/*
 * Memory per open index. A daemon keeps one open per session (10,000 idle
 * IMAP sessions are 10,000 connections), so SQLite's per-connection
 * up-front allocations dominate an idle session: no bulk page-cache
 * allocation at open (pages come one at a time as they are read), and a
 * small lookaside (SQLite's default is 120 KiB per connection).
 */
#define LOOKASIDE_SLOT 128
#define LOOKASIDE_SLOTS 32

/*
 * Waiting for the write lock. SQLite's own busy handler sleeps longer and
 * longer (up to 100 ms a try), so a session waiting behind a busy writer
 * keeps missing the moments the lock is free and waits seconds (measured:
 * SELECT up to 4.9 s while another session ran STOREs back to back).
 * Trying every millisecond takes the lock within about a millisecond of
 * its release, at the cost of a wake-up per millisecond while waiting.
 */
static int busy_wait(void *data, int tries)
{
	struct store_user *u = data;
	int64_t now = store__now_ns();

	if (u->busy_nowait)
		return 0;
	if (tries == 0)
		u->busy_since = now;
	if (now - u->busy_since >= (int64_t)BUSY_TIMEOUT_MS * 1000000)
		return 0;
	sqlite3_sleep(1);
	return 1;
}

/*
 * Reads through a mapping of the file rather than pread into SQLite's
 * cache: a FETCH ENVELOPE of 10,000 messages of a 100,000-message index
 * took 67-70 ms with pread copies, 53-59 ms mapped. The pages are the file
 * system's cache, shared by every session of the user; an idle session has
 * no index open. The file is never truncated under a mapping (no VACUUM; a
 * rebuild puts a new file in place). But a transaction that begins after
 * another connection's commit unmaps the whole mapping (a TLB shootdown on
 * every core) and maps it again page by page: where many connections write
 * one index at once and read little, as tern-lmtpd's, that costs more than
 * it saves.
 */
static int64_t index_mmap_size = 256 * 1024 * 1024;

void store_set_index_mapping(bool on)
{
	index_mmap_size = on ? 256 * 1024 * 1024 : 0;
}

/*
 * WAL mode. Turning a new database to WAL takes its exclusive lock, and
 * when several connections open a new index at once (a burst of first
 * deliveries) SQLite answers SQLITE_BUSY at once, without the busy
 * handler (two readers both wanting to write would deadlock): so retry,
 * within the same bound as any wait for the lock.
 */
static int set_wal_mode(struct store_user *u, struct store_error *err)
{
	int64_t start = store__now_ns();

	for (;;) {
		int rc = sqlite3_exec(u->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);

		if (rc == SQLITE_OK)
			return 0;
		if ((rc & 0xff) != SQLITE_BUSY ||
		    store__now_ns() - start >= (int64_t)BUSY_TIMEOUT_MS * 1000000)
			return store__fail_db(err, u->db, "PRAGMA journal_mode=WAL");
		sqlite3_sleep(1);
	}
}

static void sqlite_setup(void)
{
	/* Fails harmlessly if the program initialised SQLite already. */
	sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

/* Open (or create) the database at path. Without it, a -wal or -shm left
 * beside it belongs to the old one (deleted by an administrator, say) and
 * must never be replayed into the new file: they are removed first. That
 * happens under an exclusive lock, held until the new file exists, so that
 * the -wal of a database another thread or process has just created is
 * never taken for an old one (its commits would go on in an unlinked file
 * while others use a new one). The lock is a file of its own, not the
 * user directory that rebuilds lock (store__rebuild_locked), which may
 * reopen the index while they hold theirs. */
static int open_db(struct store_user *u, const char *path)
{
	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	if (access(path, F_OK) == 0)
		return sqlite3_open_v2(path, &u->db, flags, NULL);
	char lock_path[4200];

	snprintf(lock_path, sizeof(lock_path), "%s/" STORE_INDEX_LOCK_FILE, u->dir);
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	while (lock >= 0 && flock(lock, LOCK_EX) < 0 && errno == EINTR)
		;
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		char side[4200];

		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	int rc = sqlite3_open_v2(path, &u->db, flags, NULL);

	if (lock >= 0)
		close(lock); /* releases the lock */
	return rc;
}

int store__index_open(struct store_user *u, struct store_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, sqlite_setup);
	size_t n = strlen(u->dir) + sizeof("/" STORE_INDEX_FILE);
	char *path = xcalloc(1, n);

	snprintf(path, n, "%s/" STORE_INDEX_FILE, u->dir);
	int rc = open_db(u, path);

	free(path);
	if (rc != SQLITE_OK) {
		int ret = store__fail_db(err, u->db, "open");

		if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
			err->code = STORE_ERR_CORRUPT;
		store__index_close(u);
		return ret;
	}
	struct stat st;

	if (index_stat(u, &st)) {
		u->index_ino = st.st_ino;
		u->index_dev = st.st_dev;
	}
	sqlite3_busy_handler(u->db, busy_wait, u);
	sqlite3_db_config(u->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, LOOKASIDE_SLOT, LOOKASIDE_SLOTS);
	/* Keep -wal and -shm when the last connection closes: the next session
	 * then need not create them, and can read even on a full disk. */
	int persist = 1;

	sqlite3_file_control(u->db, NULL, SQLITE_FCNTL_PERSIST_WAL, &persist);
	sqlite3_extended_result_codes(u->db, 1);
	char pragmas[160];

	snprintf(pragmas, sizeof(pragmas), "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
		 "PRAGMA cache_size=-8192; PRAGMA mmap_size=%lld;", (long long)index_mmap_size);
	if (set_wal_mode(u, err) < 0 || store__exec(u, pragmas, err) < 0)
		goto fail;
	u->sync_level = STORE_SYNC_NORMAL;
	int version = schema_version(u);

	if (version > SCHEMA_VERSION) {
		store__fail(err, STORE_ERR_CORRUPT, "index: schema version %d is newer than %d",
			    version, SCHEMA_VERSION);
		goto fail;
	}
	/* Added after version 1: created where missing. */
	if (store__exec(u, view_cache_schema, err) < 0)
		goto fail;
	if (version < 0) {
		if (store__begin(u, true, err) < 0)
			goto fail;
		if (store__exec(u, schema, err) < 0 ||
		    store__exec(u, "INSERT OR REPLACE INTO meta VALUES ('schema', 1),"
				" ('fts_format', " FTS_FORMAT_SQL "), ('fts_gone', 1)", err) < 0) {
			store__rollback(u);
			goto fail;
		}
		if (store__commit(u, err) < 0)
			goto fail;
	}
	/* Added after version 1 (message-meta.c): created where missing,
	 * after the message table its triggers watch. Without it (an old
	 * index on a full disk, say) messages are parsed on every use. */
	struct store_error meta_err = { 0 };

	u->meta = store__exec(u, store__meta_schema, &meta_err) == 0;
	if (!u->meta)
		log_warn("index of %s: no message_meta table: %s", u->dir, meta_err.msg);
	else {
		fts_upgrade(u);
		if (u->meta)
			fts_gone_upgrade(u);
	}
	digest_setup(u);
	return version < 0 ? 1 : 0;
fail:
	if (err->code == STORE_ERR_TEMP) {
		int code = sqlite3_extended_errcode(u->db) & 0xff;

		if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
			err->code = STORE_ERR_CORRUPT;
	}
	store__index_close(u);
	return -1;
}

void store__index_close(struct store_user *u)
{
	for (int i = 0; i < STORE_STMT_N; i++) {
		sqlite3_finalize(u->stmts[i]);
		u->stmts[i] = NULL;
	}
	if (u->db != NULL) {
		sqlite3_close_v2(u->db);
		u->db = NULL;
	}
	u->sync_level = STORE_SYNC_UNKNOWN;
}

sqlite3_stmt *store__stmt(struct store_user *u, enum store_stmt_id id, const char *sql,
			  struct store_error *err)
{
	sqlite3_stmt *st = u->stmts[id];

	if (st == NULL) {
		if (sqlite3_prepare_v3(u->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			store__fail_db(err, u->db, "prepare");
			return NULL;
		}
		u->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}


/*
 * Another process may have found the index damaged or missing and put a
 * new one in its place: a writer that went on with the old file would hand
 * out UIDs the new index does not know, a reader would show a stale view.
 * So every write transaction, and every mailbox open and sync, first checks
 * that the file is still the one opened, and follows it if not.
 */
int store__follow_replaced_index(struct store_user *u, struct store_error *err)
{
	struct stat st;

	if (index_stat(u, &st) && st.st_ino == u->index_ino && st.st_dev == u->index_dev)
		return 0;
	log_warn("index of %s was replaced or removed: opening the current one", u->dir);
	store__index_close(u);
	int fresh = store__index_open(u, err);

	if (fresh < 0)
		return -1;
	if (fresh > 0 || store__index_needs_rebuild(u))
		return store__rebuild_locked(u, false, err);
	return 0;
}

int store__exec_cached(struct store_user *u, enum store_stmt_id id, const char *sql,
		       struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, id, sql, err);

	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store__fail_db(err, u->db, sql);
	return 0;
}

int store__begin(struct store_user *u, bool durable, struct store_error *err)
{
	if (store__follow_replaced_index(u, err) < 0)
		return -1;
	/* The level applies to the next commit; it cannot change inside a
	 * transaction. Set only when it changes: the pragma takes effect as
	 * it is compiled, so each run compiles it again (~7,000 instructions
	 * a transaction). */
	int level = durable ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;

	if (u->sync_level != level) {
		if (store__exec_cached(u, durable ? STORE_STMT_SYNC_FULL : STORE_STMT_SYNC_NORMAL,
				       durable ? "PRAGMA synchronous=FULL" :
				       "PRAGMA synchronous=NORMAL", err) < 0)
			return -1;
		u->sync_level = level;
	}
	return store__exec_cached(u, STORE_STMT_BEGIN, "BEGIN IMMEDIATE", err);
}

int store__begin_read(struct store_user *u, struct store_error *err)
{
	return store__exec_cached(u, STORE_STMT_BEGIN_READ, "BEGIN", err);
}

int store__commit(struct store_user *u, struct store_error *err)
{
	int ret = store__exec_cached(u, STORE_STMT_COMMIT, "COMMIT", err);

	if (ret < 0)
		store__rollback(u);
	return ret;
}

void store__rollback(struct store_user *u)
{
	if (!sqlite3_get_autocommit(u->db))
		sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
}

static void digest_from_column(sqlite3_stmt *st, int col, struct store_digest *d)
{
	const unsigned char *p = sqlite3_column_blob(st, col);

	memset(d, 0, sizeof(*d));
	if (p == NULL || sqlite3_column_bytes(st, col) != 16)
		return;
	for (int i = 0; i < 8; i++) {
		d->a |= (uint64_t)p[i] << (8 * i);
		d->b |= (uint64_t)p[8 + i] << (8 * i);
	}
	d->known = true;
}

int store__mbox_get(struct store_user *u, const char *name, struct store_mbox_row *row_r,
		    struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_MBOX_ROW, u->digests ?
			"SELECT id, uidvalidity, uidnext, highestmodseq, special_use,"
			" new_mtime, cur_mtime, uid_ceiling, modseq_ceiling, history_modseq,"
			" scanned_at, new_digest, cur_digest FROM mailbox WHERE name = ?" :
			"SELECT id, uidvalidity, uidnext, highestmodseq, special_use,"
			" new_mtime, cur_mtime, uid_ceiling, modseq_ceiling, history_modseq,"
			" scanned_at, NULL, NULL FROM mailbox WHERE name = ?", err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_r->id = sqlite3_column_int64(st, 0);
		row_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		row_r->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		row_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		row_r->special_use = (uint32_t)sqlite3_column_int64(st, 4);
		row_r->new_mtime = sqlite3_column_int64(st, 5);
		row_r->cur_mtime = sqlite3_column_int64(st, 6);
		row_r->uid_ceiling = (uint32_t)sqlite3_column_int64(st, 7);
		row_r->modseq_ceiling = (uint64_t)sqlite3_column_int64(st, 8);
		row_r->history_modseq = (uint64_t)sqlite3_column_int64(st, 9);
		row_r->scanned_at = sqlite3_column_int64(st, 10);
		digest_from_column(st, 11, &row_r->digest[STORE_DIGEST_NEW]);
		digest_from_column(st, 12, &row_r->digest[STORE_DIGEST_CUR]);
		sqlite3_reset(st);
		return 1;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	store__fail_db(err, u->db, "mailbox lookup");
	sqlite3_reset(st);
	return -1;
}

int store__step_cached(struct store_user *u, sqlite3_stmt *st, const char *what,
		       struct store_error *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store__fail_db(err, u->db, what);
	return 0;
}

int store__mbox_save_digests(struct store_user *u, const struct store_mbox_row *row,
			     struct store_error *err)
{
	unsigned char blob[STORE_DIGEST_DIRS][16];
	sqlite3_stmt *st;

	if (!u->digests)
		return 0;
	st = store__stmt(u, STORE_STMT_MBOX_DIGESTS,
			 "UPDATE mailbox SET new_digest = ?, cur_digest = ? WHERE id = ?", err);
	if (st == NULL)
		return -1;
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		for (int i = 0; i < 8; i++) {
			blob[d][i] = (unsigned char)(row->digest[d].a >> (8 * i));
			blob[d][8 + i] = (unsigned char)(row->digest[d].b >> (8 * i));
		}
		if (row->digest[d].known)
			sqlite3_bind_blob(st, 1 + d, blob[d], 16, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 1 + d);
	}
	sqlite3_bind_int64(st, 3, row->id);
	return store__step_cached(u, st, "mailbox update", err);
}

int store__mbox_save_ceilings(struct store_user *u, const struct store_mbox_row *row,
			      struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_MBOX_CEILINGS,
				       "UPDATE mailbox SET uid_ceiling = ?, modseq_ceiling = ? WHERE id = ?", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row->uid_ceiling);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)row->modseq_ceiling);
	sqlite3_bind_int64(st, 3, row->id);
	return store__step_cached(u, st, "mailbox update", err);
}

int store__mbox_save_times(struct store_user *u, const struct store_mbox_row *row,
			   struct store_error *err)
{
	sqlite3_stmt *st = store__stmt(u, STORE_STMT_MBOX_TIMES,
				       "UPDATE mailbox SET new_mtime = ?, cur_mtime = ? WHERE id = ?", err);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, row->new_mtime);
	sqlite3_bind_int64(st, 2, row->cur_mtime);
	sqlite3_bind_int64(st, 3, row->id);
	return store__step_cached(u, st, "mailbox update", err);
}

/* meta 'rebuild' is set while a rebuild runs: a crash in the middle leaves
 * it set, and the next open starts the rebuild again. */
bool store__index_needs_rebuild(struct store_user *u)
{
	sqlite3_stmt *st;
	bool needed = true;

	/* Also an index without even INBOX: created, but the rebuild that
	 * fills it never ran. */
	if (sqlite3_prepare_v2(u->db, "SELECT (SELECT value FROM meta WHERE key = 'rebuild'),"
			       " (SELECT count(*) FROM mailbox)", -1, &st, NULL) != SQLITE_OK)
		return true;
	if (sqlite3_step(st) == SQLITE_ROW)
		needed = sqlite3_column_int(st, 0) != 0 || sqlite3_column_int(st, 1) == 0;
	sqlite3_finalize(st);
	return needed;
}
