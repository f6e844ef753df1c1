/*
 * userdb.c — the users database of Tern's virtual users: one SQLite file
 * ([auth] users_db) that ternctl writes and the daemons and pam_tern.so
 * read.
 *
 *   users(name, password, enabled, quota_bytes, quota_messages, mail_dir,
 *         created, updated)
 *
 * PRAGMA user_version holds the schema version, for future migrations; a
 * file with a newer version is refused rather than misread. The file is
 * created 0600 (it holds password hashes) in WAL mode, so a reader never
 * waits for ternctl and ternctl never waits for readers; the WAL and shm
 * files get the database file's mode and owner from SQLite. A busy timeout
 * of 5 s covers two writers at once.
 *
 * Opening with SQLITE_OPEN_READWRITE falls back to read-only by itself when
 * the file is not writable; only the create path ever changes the schema.
 * A handle is used by one thread at a time (the directory holds a mutex).
 *
 * Part of the auth core linked into pam_tern.so: plain libc and sqlite3,
 * nothing from common/. Errors come back as malloc'd strings.
 */
#include "auth/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USERDB_VERSION 1
#define USERDB_BUSY_TIMEOUT_MS 5000

struct userdb {
	sqlite3 *db;
	char *path;
	/* userdb_get's statement, prepared once: a lookup is made for every
	 * LMTP recipient and login, and parsing it was 8% of tern-lmtpd's
	 * CPU delivering to ten recipients at a time. */
	sqlite3_stmt *get;
};

static const char schema_sql[] =
	"CREATE TABLE users ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" password TEXT NOT NULL,"
	" enabled INTEGER NOT NULL DEFAULT 1,"
	" quota_bytes INTEGER NOT NULL DEFAULT 0,"
	" quota_messages INTEGER NOT NULL DEFAULT 0,"
	" mail_dir TEXT NULL,"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"PRAGMA user_version = 1;";

#define USER_COLUMNS "name, enabled, quota_bytes, quota_messages, mail_dir, created, updated, password"

static void set_error(char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(char **error_r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (error_r == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	*error_r = s;
}

static enum userdb_result db_error(struct userdb *db, const char *what, char **error_r)
{
	set_error(error_r, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->db));
	return USERDB_ERROR;
}

/* Run SQL without results; 0 or -1 with the error set. */
static int exec_sql(struct userdb *db, const char *sql, const char *what, char **error_r)
{
	if (sqlite3_exec(db->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		db_error(db, what, error_r);
		return -1;
	}
	return 0;
}

/* A single integer from a query (PRAGMA user_version, a count). */
static int query_int(struct userdb *db, const char *sql, int64_t *value_r, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_error(db, "cannot read the database", error_r);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		db_error(db, "cannot read the database", error_r);
		return -1;
	}
	*value_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Give a new, empty database its schema. Runs under BEGIN IMMEDIATE, so two
 * ternctl processes creating the file at once do not both do it. */
static int init_schema(struct userdb *db, char **error_r)
{
	int64_t version, tables;

	/* WAL is persistent: set once here, every later open uses it. */
	if (exec_sql(db, "PRAGMA journal_mode=WAL", "cannot set WAL mode", error_r) < 0)
		return -1;
	if (exec_sql(db, "BEGIN IMMEDIATE", "cannot lock the database", error_r) < 0)
		return -1;
	if (query_int(db, "PRAGMA user_version", &version, error_r) < 0 ||
	    query_int(db, "SELECT count(*) FROM sqlite_master", &tables, error_r) < 0)
		goto fail;
	if (version == 0 && tables == 0) {
		if (exec_sql(db, schema_sql, "cannot create the schema", error_r) < 0)
			goto fail;
	}
	if (exec_sql(db, "COMMIT", "cannot create the schema", error_r) < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Create the file with mode 0600 whatever the umask, if it is not there. */
static int create_file(const char *path, char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		set_error(error_r, "%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) < 0) {
		set_error(error_r, "%s: cannot set mode 0600: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

int userdb_open(const char *path, bool create, struct userdb **db_r, char **error_r)
{
	struct userdb *db;
	int64_t version;
	struct stat st;

	*db_r = NULL;
	if (error_r != NULL)
		*error_r = NULL;
	if (create) {
		if (create_file(path, error_r) < 0)
			return -1;
	} else if (stat(path, &st) < 0) {
		/* SQLite would say only "unable to open database file". */
		set_error(error_r, "%s: %s", path, strerror(errno));
		return -1;
	}

	db = calloc(1, sizeof(*db));
	if (db == NULL || (db->path = strdup(path)) == NULL) {
		free(db);
		set_error(error_r, "%s: out of memory", path);
		return -1;
	}
	if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		if (db->db == NULL)
			set_error(error_r, "%s: cannot open: out of memory", path);
		else
			db_error(db, "cannot open", error_r);
		goto fail;
	}
	sqlite3_extended_result_codes(db->db, 1);
	sqlite3_busy_timeout(db->db, USERDB_BUSY_TIMEOUT_MS);

	if (create && init_schema(db, error_r) < 0)
		goto fail;
	/* The first read also tells a corrupted or foreign file. */
	if (query_int(db, "PRAGMA user_version", &version, error_r) < 0)
		goto fail;
	if (version == 0) {
		set_error(error_r, "%s: not a Tern users database", path);
		goto fail;
	}
	if (version > USERDB_VERSION) {
		set_error(error_r, "%s: made by a newer Tern (schema version %lld, this one knows %d)",
			  path, (long long)version, USERDB_VERSION);
		goto fail;
	}
	*db_r = db;
	return 0;
fail:
	sqlite3_close(db->db);
	free(db->path);
	free(db);
	return -1;
}

void userdb_close(struct userdb **dbp)
{
	struct userdb *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	sqlite3_finalize(db->get);
	sqlite3_close(db->db);
	free(db->path);
	free(db);
}

/* ------------------------------------------------------------- checks */

static bool check_name(const char *name, char **error_r)
{
	char norm[AUTH_NAME_MAX + 1];
	const char *why;

	if (auth_name_normalize(name, norm, sizeof(norm), &why) < 0) {
		set_error(error_r, "invalid user name: %s", why);
		return false;
	}
	if (strcmp(norm, name) != 0) {
		set_error(error_r, "user name not in normalized (lower-case) form");
		return false;
	}
	return true;
}

/* A crypt(3) string: printable ASCII without spaces, shorter than
 * AUTH_HASH_MAX. Whether libcrypt knows the scheme is checked at login. */
static bool check_hash(const char *hash, char **error_r)
{
	size_t len = hash == NULL ? 0 : strnlen(hash, AUTH_HASH_MAX);
	size_t i;

	if (len == 0 || len >= AUTH_HASH_MAX) {
		set_error(error_r, "password hash empty or too long");
		return false;
	}
	for (i = 0; i < len; i++) {
		if (hash[i] <= ' ' || hash[i] > '~') {
			set_error(error_r, "password hash has invalid characters");
			return false;
		}
	}
	return true;
}

static bool check_quota(uint64_t bytes, uint64_t messages, char **error_r)
{
	if (bytes > INT64_MAX || messages > INT64_MAX) {
		set_error(error_r, "quota too large");
		return false;
	}
	return true;
}

static bool check_mail_dir(const char *dir, char **error_r)
{
	size_t len, i;

	if (dir == NULL)
		return true;
	len = strnlen(dir, sizeof(((struct auth_user *)0)->mail_dir));
	if (dir[0] != '/' || len >= sizeof(((struct auth_user *)0)->mail_dir)) {
		set_error(error_r, "mail directory must be an absolute path shorter than %zu bytes",
			  sizeof(((struct auth_user *)0)->mail_dir));
		return false;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)dir[i] < ' ' || dir[i] == 0x7f) {
			set_error(error_r, "mail directory has control characters");
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ changes */

/* Run a prepared change; NOT_FOUND when it touched no row. */
static enum userdb_result step_change(struct userdb *db, sqlite3_stmt *st, const char *what,
				      char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, what, error_r);
	return sqlite3_changes(db->db) == 0 ? USERDB_NOT_FOUND : USERDB_OK;
}

enum userdb_result userdb_add(struct userdb *db, const char *name, const char *hash,
			      uint64_t quota_bytes, uint64_t quota_messages,
			      const char *mail_dir, char **error_r)
{
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	int rc;

	if (mail_dir != NULL && mail_dir[0] == '\0')
		mail_dir = NULL;
	if (!check_name(name, error_r) || !check_hash(hash, error_r) ||
	    !check_quota(quota_bytes, quota_messages, error_r) || !check_mail_dir(mail_dir, error_r))
		return USERDB_ERROR;
	if (sqlite3_prepare_v2(db->db,
			       "INSERT INTO users (name, password, enabled, quota_bytes,"
			       " quota_messages, mail_dir, created, updated)"
			       " VALUES (?, ?, 1, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot add user", error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)quota_bytes);
	sqlite3_bind_int64(st, 4, (int64_t)quota_messages);
	if (mail_dir != NULL)
		sqlite3_bind_text(st, 5, mail_dir, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return USERDB_OK;
	if (sqlite3_extended_errcode(db->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		return USERDB_EXISTS;
	return db_error(db, "cannot add user", error_r);
}

enum userdb_result userdb_delete(struct userdb *db, const char *name, char **error_r)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db->db, "DELETE FROM users WHERE name = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_error(db, "cannot delete user", error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return step_change(db, st, "cannot delete user", error_r);
}

enum userdb_result userdb_set_hash(struct userdb *db, const char *name, const char *hash,
				   char **error_r)
{
	sqlite3_stmt *st;

	if (!check_hash(hash, error_r))
		return USERDB_ERROR;
	if (sqlite3_prepare_v2(db->db, "UPDATE users SET password = ?, updated = ? WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot change password", error_r);
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return step_change(db, st, "cannot change password", error_r);
}

enum userdb_result userdb_set_enabled(struct userdb *db, const char *name, bool enabled,
				      char **error_r)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db->db, "UPDATE users SET enabled = ?, updated = ? WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot change user", error_r);
	sqlite3_bind_int(st, 1, enabled ? 1 : 0);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return step_change(db, st, "cannot change user", error_r);
}

enum userdb_result userdb_set_quota(struct userdb *db, const char *name, uint64_t quota_bytes,
				    uint64_t quota_messages, char **error_r)
{
	sqlite3_stmt *st;

	if (!check_quota(quota_bytes, quota_messages, error_r))
		return USERDB_ERROR;
	if (sqlite3_prepare_v2(db->db,
			       "UPDATE users SET quota_bytes = ?, quota_messages = ?, updated = ?"
			       " WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot change quota", error_r);
	sqlite3_bind_int64(st, 1, (int64_t)quota_bytes);
	sqlite3_bind_int64(st, 2, (int64_t)quota_messages);
	sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
	sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
	return step_change(db, st, "cannot change quota", error_r);
}

/* ------------------------------------------------------------ reading */

static uint64_t column_u64(sqlite3_stmt *st, int col)
{
	int64_t v = sqlite3_column_int64(st, col);

	return v < 0 ? 0 : (uint64_t)v;
}

/* One row of USER_COLUMNS into user_r. */
static int fill_user(struct userdb *db, sqlite3_stmt *st, const char *mail_root,
		     struct auth_user *user_r, char **error_r)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *dir = (const char *)sqlite3_column_text(st, 4);
	int n;

	memset(user_r, 0, sizeof(*user_r));
	if (name == NULL || strlen(name) > AUTH_NAME_MAX) {
		set_error(error_r, "%s: invalid user name in the database", db->path);
		return -1;
	}
	strcpy(user_r->name, name);
	user_r->enabled = sqlite3_column_int64(st, 1) != 0;
	user_r->quota_bytes = column_u64(st, 2);
	user_r->quota_messages = column_u64(st, 3);
	user_r->created = sqlite3_column_int64(st, 5);
	user_r->updated = sqlite3_column_int64(st, 6);
	if (dir != NULL && dir[0] != '\0') {
		n = snprintf(user_r->mail_dir, sizeof(user_r->mail_dir), "%s", dir);
	} else {
		const char *root = mail_root == NULL ? "" : mail_root;
		size_t rlen = strlen(root);
		const char *sep = rlen > 0 && root[rlen - 1] == '/' ? "" : "/";

		n = snprintf(user_r->mail_dir, sizeof(user_r->mail_dir), "%s%s%s", root, sep, name);
	}
	if (n < 0 || (size_t)n >= sizeof(user_r->mail_dir)) {
		set_error(error_r, "%s: mail directory of %s too long", db->path, name);
		return -1;
	}
	return 0;
}

enum userdb_result userdb_get(struct userdb *db, const char *name, const char *mail_root,
			      struct auth_user *user_r, char **hash_r, char **error_r)
{
	enum userdb_result result;
	sqlite3_stmt *st;
	int rc;

	if (hash_r != NULL)
		*hash_r = NULL;
	if (db->get == NULL &&
	    sqlite3_prepare_v3(db->db, "SELECT " USER_COLUMNS " FROM users WHERE name = ?", -1,
			       SQLITE_PREPARE_PERSISTENT, &db->get, NULL) != SQLITE_OK)
		return db_error(db, "cannot read user", error_r);
	st = db->get;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		result = USERDB_NOT_FOUND;
	} else if (rc != SQLITE_ROW) {
		result = db_error(db, "cannot read user", error_r);
	} else if (fill_user(db, st, mail_root, user_r, error_r) < 0) {
		result = USERDB_ERROR;
	} else {
		result = USERDB_OK;
		if (hash_r != NULL) {
			const char *hash = (const char *)sqlite3_column_text(st, 7);

			*hash_r = strdup(hash != NULL ? hash : "");
			if (*hash_r == NULL) {
				set_error(error_r, "out of memory");
				result = USERDB_ERROR;
			}
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return result;
}

enum userdb_result userdb_list(struct userdb *db, const char *mail_root, userdb_list_cb *cb,
			       void *data, char **error_r)
{
	enum userdb_result result = USERDB_OK;
	struct auth_user user;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->db, "SELECT " USER_COLUMNS " FROM users ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(db, "cannot list users", error_r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fill_user(db, st, mail_root, &user, error_r) < 0) {
			result = USERDB_ERROR;
			break;
		}
		if (cb(&user, data) != 0)
			break;
	}
	if (result == USERDB_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		result = db_error(db, "cannot list users", error_r);
	sqlite3_finalize(st);
	return result;
}
