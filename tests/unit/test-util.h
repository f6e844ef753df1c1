/*
 * test-util.h — small helpers more than one cmocka unit test needs. Include
 * it after <cmocka.h>: failures are cmocka assertions, so these are for the
 * test runner's own process only.
 */
#ifndef TERN_TEST_UTIL_H
#define TERN_TEST_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything in f, from its start, as a NUL-terminated string to free;
 * closes f. */
static inline char *test_read_stream(FILE *f)
{
	char *text;
	long len;

	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

/* The whole file at path as a NUL-terminated string to free. */
static inline char *test_read_file(const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	return test_read_stream(f);
}

#ifdef SQLITE_VERSION
/* Run sql on the index of the user at user_dir, on a connection of its
 * own (as another process would). For tests that include <sqlite3.h>
 * first. */
static inline void test_index_exec(const char *user_dir, const char *sql)
{
	char path[512];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/index.sqlite", user_dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * Another connection's commit at one exact moment: fn(arg) runs once, as
 * the next statement of db whose SQL contains sql_part starts, before it
 * reads anything (a trace callback). For tests of reads that must see
 * one snapshot; they reach db through storage-private.h.
 */
struct test_at_stmt {
	const char *sql_part;
	void (*fn)(void *arg);
	void *arg;
	bool armed;             /* cleared once fn ran */
};

static inline int test_at_stmt_cb(unsigned type, void *ctx, void *p, void *x)
{
	struct test_at_stmt *t = ctx;

	(void)p;
	if (type == SQLITE_TRACE_STMT && t->armed && strstr(x, t->sql_part) != NULL) {
		t->armed = false;
		t->fn(t->arg);
	}
	return 0;
}

static inline void test_at_stmt_arm(sqlite3 *db, struct test_at_stmt *t)
{
	t->armed = true;
	sqlite3_trace_v2(db, SQLITE_TRACE_STMT, test_at_stmt_cb, t);
}

/* Stop watching db; fn must have run. */
static inline void test_at_stmt_done(sqlite3 *db, struct test_at_stmt *t)
{
	sqlite3_trace_v2(db, 0, NULL, NULL);
	assert_false(t->armed);
}
#endif

#endif
