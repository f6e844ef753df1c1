/*
 * test-auth-core.c — the auth core that pam_tern.so shares with the daemons
 * and ternctl: login name validation (ROBUSTNESS 19), password hashes
 * (yescrypt, hashes made by libcrypt itself as mkpasswd makes them, hashes
 * that must never verify) and the users database. Linked against the core
 * alone, which proves it needs nothing from common/.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "auth/auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- names */

static void name_ok(const char *in, const char *want)
{
	char out[AUTH_NAME_MAX + 1];
	const char *why = "unset";

	if (auth_name_normalize(in, out, sizeof(out), &why) != 0)
		fail_msg("\"%s\" refused: %s", in, why);
	assert_null(why);
	assert_string_equal(out, want);
}

static void name_bad(const char *in)
{
	char out[AUTH_NAME_MAX + 1];
	const char *why = NULL;

	memset(out, 'x', sizeof(out));
	if (auth_name_normalize(in, out, sizeof(out), &why) != -1)
		fail_msg("\"%s\" accepted", in);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	/* The reason never echoes the name back. */
	if (strlen(in) >= 3)
		assert_null(strstr(why, in));
	/* Nothing half-normalized is left for a careless caller. */
	assert_int_equal(out[0], '\0');
}

static void test_names_good(void **state)
{
	char max[AUTH_NAME_MAX + 1];

	name_ok("alice", "alice");
	name_ok("user@example.org", "user@example.org");
	name_ok("Alice@Example.ORG", "alice@example.org");
	name_ok("ALICE", "alice");
	name_ok("a.b_c-d+tag@mail.example.org", "a.b_c-d+tag@mail.example.org");
	name_ok("x", "x");
	name_ok("0day", "0day");
	name_ok("u@1.example", "u@1.example");
	memset(max, 'A', AUTH_NAME_MAX);
	max[AUTH_NAME_MAX] = '\0';
	{
		char want[AUTH_NAME_MAX + 1];

		memset(want, 'a', AUTH_NAME_MAX);
		want[AUTH_NAME_MAX] = '\0';
		name_ok(max, want);
	}
}

static void test_names_bad(void **state)
{
	static const char *const bad[] = {
		/* ROBUSTNESS 19 */
		"../../etc", "a/b", "a@../../x", "a%u", "a\tb",
		/* the rest of the rules */
		"", ".alice", "-alice", "@example.org", "alice@", "a@b@c", "alice.",
		"a..b", "alice@.example.org", "alice@-example.org", "alice@example.org.",
		"a b", " alice", "alice ", "a\nb", "a\rb", "a\x01", "a\x7f", "a\\b", "a:b",
		"a*master", "a!b", "$(id)", "`id`", "a;b", "a|b", "a'b", "a\"b", "%d/%n",
		"\xc3\xa4lice", "al\xff\x63\x65", "a@b/c", "/etc/passwd",
	};
	char long_name[301];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		name_bad(bad[i]);
	memset(long_name, 'a', 300);
	long_name[300] = '\0';
	name_bad(long_name);
	long_name[AUTH_NAME_MAX + 1] = '\0';
	name_bad(long_name);
}

static void test_names_null_and_small_buffer(void **state)
{
	char out[8];
	const char *why = NULL;

	assert_int_equal(auth_name_normalize(NULL, out, sizeof(out), &why), -1);
	assert_non_null(why);
	/* A buffer too small for the name is refused, not overrun. */
	assert_int_equal(auth_name_normalize("longer-than-8", out, sizeof(out), &why), -1);
	assert_int_equal(auth_name_normalize("short", out, sizeof(out), &why), 0);
	assert_string_equal(out, "short");
}

/* ---------------------------------------------------------- passwords */

static void test_hash_and_verify(void **state)
{
	char hash[AUTH_HASH_MAX], hash2[AUTH_HASH_MAX];

	assert_int_equal(auth_password_hash("Secret 1!", hash, sizeof(hash)), 0);
	assert_memory_equal(hash, "$y$", 3);
	assert_true(auth_password_verify("Secret 1!", hash));
	assert_false(auth_password_verify("Secret 1", hash));
	assert_false(auth_password_verify("Secret 1!!", hash));
	assert_false(auth_password_verify("secret 1!", hash));
	assert_false(auth_password_verify("", hash));
	assert_false(auth_password_verify(NULL, hash));
	/* A fresh salt every time. */
	assert_int_equal(auth_password_hash("Secret 1!", hash2, sizeof(hash2)), 0);
	assert_string_not_equal(hash, hash2);
	assert_true(auth_password_verify("Secret 1!", hash2));
}

static void test_hash_refusals(void **state)
{
	char small[16];
	char hash[AUTH_HASH_MAX];

	errno = 0;
	assert_int_equal(auth_password_hash("", hash, sizeof(hash)), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(auth_password_hash("password", small, sizeof(small)), -1);
	assert_int_equal(errno, ENOSPC);
}

/* libcrypt takes passwords shorter than CRYPT_MAX_PASSPHRASE_SIZE (512);
 * longer ones are refused when hashing and never verify. */
static void test_long_password(void **state)
{
	char hash[AUTH_HASH_MAX];
	char pw[8193];

	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 1] = '\0';
	assert_int_equal(auth_password_hash(pw, hash, sizeof(hash)), 0);
	assert_true(auth_password_verify(pw, hash));
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 2] = 'q';
	assert_false(auth_password_verify(pw, hash));
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 2] = 'p';
	pw[CRYPT_MAX_PASSPHRASE_SIZE - 1] = 'p';
	assert_false(auth_password_verify(pw, hash));
	assert_int_equal(auth_password_hash(pw, hash, sizeof(hash)), -1);
	assert_false(auth_password_verify(pw, hash));
}

/* Fixed vectors: a yescrypt hash made by libcrypt (what mkpasswd -m
 * yescrypt writes) and the SHA-512 crypt example from its specification. */
static void test_known_hashes(void **state)
{
	static const char y_hash[] =
		"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$uwuXvWv36FhylqLds3EiJKQyl6H8XIaeQOJb6.XXSs0";
	static const char sha512_hash[] =
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4"
		"OTLiBFdcbYEdFCoEOfaS35inz1";

	assert_true(auth_password_verify("Secret 1!", y_hash));
	assert_false(auth_password_verify("Secret 2!", y_hash));
	assert_true(auth_password_verify("Hello world!", sha512_hash));
	assert_false(auth_password_verify("Hello world", sha512_hash));
}

/* Hashes made the way mkpasswd makes them: crypt_gensalt + crypt. */
static void verify_libcrypt_scheme(const char *prefix)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;
	char *copy;

	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)));
	h = crypt("correct horse", setting);
	assert_non_null(h);
	assert_memory_equal(h, prefix, strlen(prefix));
	copy = strdup(h);
	assert_true(auth_password_verify("correct horse", copy));
	assert_false(auth_password_verify("correct horse ", copy));
	free(copy);
}

static void test_libcrypt_hashes(void **state)
{
	verify_libcrypt_scheme("$y$");
	verify_libcrypt_scheme("$6$");
	verify_libcrypt_scheme("$5$");
	verify_libcrypt_scheme("$2b$");
}

static void test_bad_hashes_never_verify(void **state)
{
	char hash[AUTH_HASH_MAX], mutated[AUTH_HASH_MAX + 2];
	size_t len;
	static const char *const bad[] = {
		"", "*", "!", "*0", "*1", "!!", "x", "$y$", "$y$j9T$", "$y$garbage",
		"$6$saltstring$", "$6$", "$1$", "$99$abc$def", "!$6$saltstring$svn8UoSV",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(auth_password_verify("", bad[i]));
		assert_false(auth_password_verify("password", bad[i]));
		assert_false(auth_password_verify(bad[i], bad[i]));
	}
	assert_false(auth_password_verify("pw", NULL));

	assert_int_equal(auth_password_hash("pw", hash, sizeof(hash)), 0);
	len = strlen(hash);
	/* A locked copy ("!" prefix, as usermod -L does) never verifies. */
	snprintf(mutated, sizeof(mutated), "!%s", hash);
	assert_false(auth_password_verify("pw", mutated));
	snprintf(mutated, sizeof(mutated), "*%s", hash);
	assert_false(auth_password_verify("pw", mutated));
	/* Truncated, extended, or one character changed. */
	memcpy(mutated, hash, len - 1);
	mutated[len - 1] = '\0';
	assert_false(auth_password_verify("pw", mutated));
	snprintf(mutated, sizeof(mutated), "%sA", hash);
	assert_false(auth_password_verify("pw", mutated));
	strcpy(mutated, hash);
	mutated[len - 1] = mutated[len - 1] == 'A' ? 'B' : 'A';
	assert_false(auth_password_verify("pw", mutated));
}

static void test_secret_equal(void **state)
{
	assert_true(auth_secret_equal("abcdef", "abcdef", 6));
	assert_false(auth_secret_equal("abcdef", "xbcdef", 6));
	assert_false(auth_secret_equal("abcdef", "abcdex", 6));
	assert_true(auth_secret_equal("abc", "xyz", 0));
	assert_true(auth_secret_equal("a\0b", "a\0b", 3));
	assert_false(auth_secret_equal("a\0b", "a\0c", 3));
}

/* ------------------------------------------------------- users database */

struct fixture {
	char dir[64];
	char path[128];
	struct userdb *db;
};

static int db_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *error = NULL;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-auth-core-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/users.sqlite", f->dir);
	if (userdb_open(f->path, true, &f->db, &error) != 0)
		fail_msg("userdb_open: %s", error);
	*state = f;
	return 0;
}

static int db_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	userdb_close(&f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void add_ok(struct userdb *db, const char *name, const char *hash)
{
	char *error = NULL;

	if (userdb_add(db, name, hash, 0, 0, NULL, &error) != USERDB_OK)
		fail_msg("userdb_add %s: %s", name, error);
	assert_null(error);
}

static void get_ok(struct userdb *db, const char *name, const char *root, struct auth_user *u,
		   char **hash_r)
{
	char *error = NULL;

	if (userdb_get(db, name, root, u, hash_r, &error) != USERDB_OK)
		fail_msg("userdb_get %s: %s", name, error != NULL ? error : "not found");
}

static void test_db_create_mode(void **state)
{
	struct fixture *f = *state;
	struct userdb *db = NULL;
	char path[160];
	char *error = NULL;
	struct stat st;
	mode_t old = umask(0);

	/* 0600 even with a permissive umask: the file holds hashes. */
	snprintf(path, sizeof(path), "%s/other.sqlite", f->dir);
	assert_int_equal(userdb_open(path, true, &db, &error), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	add_ok(db, "alice", "$6$x$y");
	userdb_close(&db);
	assert_null(db);
	userdb_close(&db); /* harmless twice */
}

static void test_db_missing(void **state)
{
	struct fixture *f = *state;
	struct userdb *db = (struct userdb *)1;
	char path[160];
	char *error = NULL;

	snprintf(path, sizeof(path), "%s/missing.sqlite", f->dir);
	assert_int_equal(userdb_open(path, false, &db, &error), -1);
	assert_null(db);
	assert_non_null(error);
	assert_non_null(strstr(error, "missing.sqlite"));
	free(error);
	/* Not created by a reader. */
	assert_int_equal(access(path, F_OK), -1);
}

static void test_db_add_get(void **state)
{
	struct fixture *f = *state;
	struct auth_user u;
	char *hash = NULL, *error = NULL;
	int64_t now = (int64_t)time(NULL);

	add_ok(f->db, "alice", "$y$j9T$abc$def");
	assert_int_equal(userdb_add(f->db, "alice", "$6$other$hash", 0, 0, NULL, &error),
			 USERDB_EXISTS);
	assert_null(error);

	get_ok(f->db, "alice", "/srv/mail", &u, &hash);
	assert_string_equal(u.name, "alice");
	assert_string_equal(u.mail_dir, "/srv/mail/alice");
	assert_true(u.enabled);
	assert_int_equal(u.quota_bytes, 0);
	assert_int_equal(u.quota_messages, 0);
	assert_true(u.created >= now - 5 && u.created <= now + 5);
	assert_int_equal(u.updated, u.created);
	/* The first add's hash stayed. */
	assert_string_equal(hash, "$y$j9T$abc$def");
	free(hash);

	/* Without hash_r; a mail_root ending in '/' gives no "//". */
	get_ok(f->db, "alice", "/srv/mail/", &u, NULL);
	assert_string_equal(u.mail_dir, "/srv/mail/alice");

	hash = (char *)1;
	assert_int_equal(userdb_get(f->db, "bob", "/srv/mail", &u, &hash, &error),
			 USERDB_NOT_FOUND);
	assert_null(hash);
	assert_null(error);

	/* Quota and mail directory override. */
	assert_int_equal(userdb_add(f->db, "bob@example.org", "$6$s$h", 1000000, 500,
				    "/data/bob", &error), USERDB_OK);
	get_ok(f->db, "bob@example.org", "/srv/mail", &u, NULL);
	assert_string_equal(u.mail_dir, "/data/bob");
	assert_int_equal(u.quota_bytes, 1000000);
	assert_int_equal(u.quota_messages, 500);
	/* An empty override is the default. */
	assert_int_equal(userdb_add(f->db, "carol", "$6$s$h", 0, 0, "", &error), USERDB_OK);
	get_ok(f->db, "carol", "/m", &u, NULL);
	assert_string_equal(u.mail_dir, "/m/carol");
}

static void test_db_add_refusals(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	static const char *const bad_names[] = { "Alice", "../x", "", "a/b", "a b" };
	size_t i;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(userdb_add(f->db, bad_names[i], "$6$s$h", 0, 0, NULL, &error),
				 USERDB_ERROR);
		assert_non_null(error);
		free(error);
		error = NULL;
	}
	assert_int_equal(userdb_add(f->db, "dave", "", 0, 0, NULL, &error), USERDB_ERROR);
	free(error);
	assert_int_equal(userdb_add(f->db, "dave", "has space", 0, 0, NULL, &error), USERDB_ERROR);
	free(error);
	assert_int_equal(userdb_add(f->db, "dave", "$6$s$h", 0, 0, "relative/dir", &error),
			 USERDB_ERROR);
	free(error);
	assert_int_equal(userdb_add(f->db, "dave", "$6$s$h", UINT64_MAX, 0, NULL, &error),
			 USERDB_ERROR);
	free(error);
	error = NULL;
	/* Nothing was added by the refusals. */
	struct auth_user u;

	assert_int_equal(userdb_get(f->db, "dave", "/m", &u, NULL, &error), USERDB_NOT_FOUND);
}

struct list_ctx {
	char names[16][AUTH_NAME_MAX + 1];
	int count;
	int stop_after;
};

static int list_cb(const struct auth_user *user, void *data)
{
	struct list_ctx *ctx = data;

	assert_true(ctx->count < 16);
	strcpy(ctx->names[ctx->count++], user->name);
	return ctx->count == ctx->stop_after;
}

static void test_db_list(void **state)
{
	struct fixture *f = *state;
	struct list_ctx ctx = { .count = 0 };
	char *error = NULL;

	assert_int_equal(userdb_list(f->db, "/m", list_cb, &ctx, &error), USERDB_OK);
	assert_int_equal(ctx.count, 0);

	add_ok(f->db, "carol", "$6$s$h");
	add_ok(f->db, "alice", "$6$s$h");
	add_ok(f->db, "bob@example.org", "$6$s$h");
	add_ok(f->db, "b", "$6$s$h");
	assert_int_equal(userdb_list(f->db, "/m", list_cb, &ctx, &error), USERDB_OK);
	assert_int_equal(ctx.count, 4);
	assert_string_equal(ctx.names[0], "alice");
	assert_string_equal(ctx.names[1], "b");
	assert_string_equal(ctx.names[2], "bob@example.org");
	assert_string_equal(ctx.names[3], "carol");

	/* The callback stops the listing. */
	memset(&ctx, 0, sizeof(ctx));
	ctx.stop_after = 2;
	assert_int_equal(userdb_list(f->db, "/m", list_cb, &ctx, &error), USERDB_OK);
	assert_int_equal(ctx.count, 2);
	assert_string_equal(ctx.names[1], "b");
}

/* Backdate a row so that a change is seen to move "updated". */
static void backdate(const char *path, const char *name)
{
	sqlite3 *db;
	char sql[256];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	snprintf(sql, sizeof(sql), "UPDATE users SET created = 1000, updated = 1000 WHERE name = '%s'",
		 name);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_db_changes(void **state)
{
	struct fixture *f = *state;
	struct auth_user u;
	char *hash = NULL, *error = NULL;
	int64_t now = (int64_t)time(NULL);

	add_ok(f->db, "alice", "$6$old$hash");
	backdate(f->path, "alice");

	assert_int_equal(userdb_set_hash(f->db, "alice", "$6$new$hash", &error), USERDB_OK);
	get_ok(f->db, "alice", "/m", &u, &hash);
	assert_string_equal(hash, "$6$new$hash");
	free(hash);
	assert_int_equal(u.created, 1000);
	assert_true(u.updated >= now - 5 && u.updated <= now + 5);

	backdate(f->path, "alice");
	assert_int_equal(userdb_set_enabled(f->db, "alice", false, &error), USERDB_OK);
	get_ok(f->db, "alice", "/m", &u, NULL);
	assert_false(u.enabled);
	assert_true(u.updated >= now - 5);
	assert_int_equal(userdb_set_enabled(f->db, "alice", true, &error), USERDB_OK);
	get_ok(f->db, "alice", "/m", &u, NULL);
	assert_true(u.enabled);

	backdate(f->path, "alice");
	assert_int_equal(userdb_set_quota(f->db, "alice", 5ULL << 30, 10000, &error), USERDB_OK);
	get_ok(f->db, "alice", "/m", &u, NULL);
	assert_int_equal(u.quota_bytes, 5ULL << 30);
	assert_int_equal(u.quota_messages, 10000);
	assert_true(u.updated >= now - 5);
	assert_int_equal(userdb_set_quota(f->db, "alice", INT64_MAX, INT64_MAX, &error),
			 USERDB_OK);
	get_ok(f->db, "alice", "/m", &u, NULL);
	assert_int_equal(u.quota_bytes, INT64_MAX);
	assert_int_equal(userdb_set_quota(f->db, "alice", UINT64_MAX, 0, &error), USERDB_ERROR);
	assert_non_null(error);
	free(error);
	error = NULL;
	assert_int_equal(userdb_set_hash(f->db, "alice", "", &error), USERDB_ERROR);
	free(error);
	error = NULL;

	/* Unknown users. */
	assert_int_equal(userdb_set_hash(f->db, "nobody", "$6$x$y", &error), USERDB_NOT_FOUND);
	assert_int_equal(userdb_set_enabled(f->db, "nobody", false, &error), USERDB_NOT_FOUND);
	assert_int_equal(userdb_set_quota(f->db, "nobody", 1, 1, &error), USERDB_NOT_FOUND);
	assert_int_equal(userdb_delete(f->db, "nobody", &error), USERDB_NOT_FOUND);
	assert_null(error);

	assert_int_equal(userdb_delete(f->db, "alice", &error), USERDB_OK);
	assert_int_equal(userdb_get(f->db, "alice", "/m", &u, NULL, &error), USERDB_NOT_FOUND);
	assert_int_equal(userdb_delete(f->db, "alice", &error), USERDB_NOT_FOUND);
	/* The name is free again. */
	add_ok(f->db, "alice", "$6$s$h");
}

static void test_db_reopen(void **state)
{
	struct fixture *f = *state;
	struct auth_user u;
	char *hash = NULL, *error = NULL;
	struct userdb *db2 = NULL;

	add_ok(f->db, "alice", "$6$s$h");
	assert_int_equal(userdb_set_quota(f->db, "alice", 42, 7, &error), USERDB_OK);
	userdb_close(&f->db);

	assert_int_equal(userdb_open(f->path, false, &f->db, &error), 0);
	get_ok(f->db, "alice", "/m", &u, &hash);
	assert_string_equal(hash, "$6$s$h");
	assert_int_equal(u.quota_bytes, 42);
	assert_int_equal(u.quota_messages, 7);
	free(hash);

	/* create on an existing database keeps it. */
	assert_int_equal(userdb_open(f->path, true, &db2, &error), 0);
	get_ok(db2, "alice", "/m", &u, NULL);
	/* Two handles see each other's changes. */
	add_ok(db2, "bob", "$6$s$h");
	get_ok(f->db, "bob", "/m", &u, NULL);
	userdb_close(&db2);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void open_fails(const char *path, bool create, const char *want)
{
	struct userdb *db = NULL;
	char *error = NULL;

	assert_int_equal(userdb_open(path, create, &db, &error), -1);
	assert_null(db);
	assert_non_null(error);
	if (want != NULL && strstr(error, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", error, want);
	free(error);
}

static void test_db_corrupt(void **state)
{
	struct fixture *f = *state;
	char path[160], garbage[8192];
	sqlite3 *db;
	size_t i;

	/* Not a database at all. */
	snprintf(path, sizeof(path), "%s/garbage.sqlite", f->dir);
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 7 + 3);
	write_file(path, garbage, sizeof(garbage));
	open_fails(path, false, "garbage.sqlite");
	open_fails(path, true, "garbage.sqlite");

	/* A header claiming SQLite with broken pages behind it. */
	memcpy(garbage, "SQLite format 3", 16);
	write_file(path, garbage, sizeof(garbage));
	open_fails(path, false, NULL);

	/* Some other program's database. */
	snprintf(path, sizeof(path), "%s/foreign.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	open_fails(path, false, "not a Tern users database");
	open_fails(path, true, "not a Tern users database");

	/* A newer schema is refused, not misread. */
	snprintf(path, sizeof(path), "%s/newer.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE users(name); PRAGMA user_version = 99",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	open_fails(path, false, "newer");

	/* An empty file opened without create has no schema. */
	snprintf(path, sizeof(path), "%s/empty.sqlite", f->dir);
	write_file(path, "", 0);
	open_fails(path, false, "not a Tern users database");
}

static void test_db_long_values(void **state)
{
	struct fixture *f = *state;
	char name[AUTH_NAME_MAX + 2], hash[AUTH_HASH_MAX + 1];
	char dir[4097], root[4096];
	struct auth_user u;
	char *got = NULL, *error = NULL;

	memset(name, 'n', sizeof(name));
	name[AUTH_NAME_MAX] = '\0';
	add_ok(f->db, name, "$6$s$h");
	get_ok(f->db, name, "/m", &u, NULL);
	assert_string_equal(u.name, name);
	name[AUTH_NAME_MAX] = 'n';
	name[AUTH_NAME_MAX + 1] = '\0';
	assert_int_equal(userdb_add(f->db, name, "$6$s$h", 0, 0, NULL, &error), USERDB_ERROR);
	free(error);
	error = NULL;

	memset(hash, 'h', sizeof(hash));
	hash[AUTH_HASH_MAX - 1] = '\0';
	add_ok(f->db, "longhash", hash);
	get_ok(f->db, "longhash", "/m", &u, &got);
	assert_string_equal(got, hash);
	free(got);
	hash[AUTH_HASH_MAX - 1] = 'h';
	hash[AUTH_HASH_MAX] = '\0';
	assert_int_equal(userdb_add(f->db, "toolong", hash, 0, 0, NULL, &error), USERDB_ERROR);
	free(error);
	error = NULL;

	/* The longest mail directory that fits struct auth_user. */
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[sizeof(u.mail_dir) - 1] = '\0';
	assert_int_equal(userdb_add(f->db, "longdir", "$6$s$h", 0, 0, dir, &error), USERDB_OK);
	get_ok(f->db, "longdir", "/m", &u, NULL);
	assert_string_equal(u.mail_dir, dir);
	dir[sizeof(u.mail_dir) - 1] = 'd';
	dir[sizeof(u.mail_dir)] = '\0';
	assert_int_equal(userdb_add(f->db, "toolongdir", "$6$s$h", 0, 0, dir, &error),
			 USERDB_ERROR);
	free(error);
	error = NULL;

	/* A default directory that would not fit is an error, not overflow. */
	memset(root, 'r', sizeof(root));
	root[0] = '/';
	root[sizeof(root) - 1] = '\0';
	assert_int_equal(userdb_get(f->db, "longdir", root, &u, NULL, &error), USERDB_OK);
	assert_int_equal(userdb_get(f->db, "longhash", root, &u, NULL, &error), USERDB_ERROR);
	assert_non_null(strstr(error, "too long"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_good),
		cmocka_unit_test(test_names_bad),
		cmocka_unit_test(test_names_null_and_small_buffer),
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_hash_refusals),
		cmocka_unit_test(test_long_password),
		cmocka_unit_test(test_known_hashes),
		cmocka_unit_test(test_libcrypt_hashes),
		cmocka_unit_test(test_bad_hashes_never_verify),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test_setup_teardown(test_db_create_mode, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_missing, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_add_get, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_add_refusals, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_list, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_changes, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_reopen, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_corrupt, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_db_long_values, db_setup, db_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
