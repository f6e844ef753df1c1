/*
 * test-filename.c — Maildir file names (storage/filename.c): Dovecot's
 * names with S=, W=, U= and info, fields in any order, other programs'
 * fields and info letters, every malformed case, overflow, build order,
 * the build/parse round trip, and unique bases from store_new_base, also
 * from several threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/storage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALL_FLAGS (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
		   STORE_FLAG_DELETED | STORE_FLAG_DRAFT | STORE_FLAG_PASSED)
#define ALL_KEYWORDS 0x3ffffffu

static struct store_filename parse_ok(const char *name)
{
	struct store_filename fn;

	if (store_filename_parse(name, &fn) != 0)
		fail_msg("\"%s\" not parsed", name);
	return fn;
}

static void test_dovecot_names(void **state)
{
	struct store_filename fn;

	fn = parse_ok("1700000000.M123P456.host,S=1234,W=1260:2,S");
	assert_string_equal(fn.base, "1700000000.M123P456.host");
	assert_true(fn.has_size);
	assert_int_equal(fn.size, 1234);
	assert_true(fn.has_vsize);
	assert_int_equal(fn.vsize, 1260);
	assert_int_equal(fn.uid, 0);
	assert_true(fn.has_info);
	assert_int_equal(fn.flags, STORE_FLAG_SEEN);
	assert_int_equal(fn.keywords, 0);

	fn = parse_ok("1700000000.M123P456Q7R0a1b2c3d.mail.example.org,S=5,W=6,U=42:2,FRSab");
	assert_string_equal(fn.base, "1700000000.M123P456Q7R0a1b2c3d.mail.example.org");
	assert_int_equal(fn.size, 5);
	assert_int_equal(fn.vsize, 6);
	assert_int_equal(fn.uid, 42);
	assert_int_equal(fn.flags, STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED | STORE_FLAG_SEEN);
	assert_int_equal(fn.keywords, 0x3);

	/* In new/: no info at all. */
	fn = parse_ok("1700000000.M1P2.host");
	assert_string_equal(fn.base, "1700000000.M1P2.host");
	assert_false(fn.has_size);
	assert_false(fn.has_vsize);
	assert_false(fn.has_info);
	assert_int_equal(fn.flags, 0);

	/* In cur/ without flags. */
	fn = parse_ok("1700000000.M1P2.host,S=10:2,");
	assert_true(fn.has_info);
	assert_int_equal(fn.flags, 0);
	assert_int_equal(fn.keywords, 0);

	/* Courier and old Dovecot: a host with escaped characters. */
	fn = parse_ok("1700000000.M1P2.a\\057b\\072c\\054d,S=1:2,");
	assert_string_equal(fn.base, "1700000000.M1P2.a\\057b\\072c\\054d");

	/* The plain qmail form. */
	fn = parse_ok("1700000000.12345.host:2,RS");
	assert_string_equal(fn.base, "1700000000.12345.host");
	assert_false(fn.has_size);
	assert_int_equal(fn.flags, STORE_FLAG_ANSWERED | STORE_FLAG_SEEN);
}

static void test_fields(void **state)
{
	struct store_filename fn;

	/* Any order. */
	fn = parse_ok("b,U=7,W=10,S=9:2,S");
	assert_int_equal(fn.size, 9);
	assert_int_equal(fn.vsize, 10);
	assert_int_equal(fn.uid, 7);

	/* Other programs' fields are skipped, wherever they are. */
	fn = parse_ok("b,M=abc,S=5,FRS=2,,x,S,s=1,u=2,W=3,GUID=a=b:2,T");
	assert_int_equal(fn.size, 5);
	assert_int_equal(fn.vsize, 3);
	assert_int_equal(fn.uid, 0);
	assert_int_equal(fn.flags, STORE_FLAG_DELETED);
	fn = parse_ok("b,");
	assert_string_equal(fn.base, "b");
	assert_false(fn.has_info);

	/* Limits. */
	fn = parse_ok("b,S=18446744073709551615,W=0,U=4294967295");
	assert_int_equal(fn.size, UINT64_MAX);
	assert_true(fn.has_vsize);
	assert_int_equal(fn.vsize, 0);
	assert_int_equal(fn.uid, UINT32_MAX);
	fn = parse_ok("b,S=000000000000000000000000000012,U=0001");
	assert_int_equal(fn.size, 12);
	assert_int_equal(fn.uid, 1);
	fn = parse_ok("b,S=0");
	assert_true(fn.has_size);
	assert_int_equal(fn.size, 0);
}

static void test_info(void **state)
{
	struct store_filename fn;

	fn = parse_ok("b:2,DFPRST");
	assert_int_equal(fn.flags, ALL_FLAGS);
	fn = parse_ok("b:2,TSRPFD");
	assert_int_equal(fn.flags, ALL_FLAGS);
	fn = parse_ok("b:2,P");
	assert_int_equal(fn.flags, STORE_FLAG_PASSED);
	fn = parse_ok("b:2,T");
	assert_int_equal(fn.flags, STORE_FLAG_DELETED);
	fn = parse_ok("b:2,D");
	assert_int_equal(fn.flags, STORE_FLAG_DRAFT);
	fn = parse_ok("b:2,abcdefghijklmnopqrstuvwxyz");
	assert_int_equal(fn.flags, 0);
	assert_int_equal(fn.keywords, ALL_KEYWORDS);
	fn = parse_ok("b:2,z");
	assert_int_equal(fn.keywords, 1u << 25);

	/* Other letters (e.g. an MDA's own) are ignored, not errors. */
	fn = parse_ok("b:2,SSXYZO0!a,:b\\~");
	assert_int_equal(fn.flags, STORE_FLAG_SEEN);
	assert_int_equal(fn.keywords, 0x3);

	/* ":1," and anything else after ':' is no info; still a message. */
	fn = parse_ok("b,S=3:1,S");
	assert_false(fn.has_info);
	assert_int_equal(fn.flags, 0);
	assert_int_equal(fn.size, 3);
	fn = parse_ok("b:");
	assert_false(fn.has_info);
	fn = parse_ok("b:2");
	assert_false(fn.has_info);
	fn = parse_ok("b:3,S");
	assert_false(fn.has_info);
	assert_int_equal(fn.flags, 0);
	fn = parse_ok("b:2;S");
	assert_false(fn.has_info);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		".", "..", ".dovecot-keywords", ".hidden,S=1:2,S", ".nfs000001",
		"a/b", "/x", "new/x", "x/",
		",S=1", ":2,S", ",", ":",
		"b,S=", "b,W=", "b,U=",
		"b,S=-1", "b,S=+1", "b,W=+0", "b,U=-1", "b,S= 1", "b,S=1 ",
		"b,S=1x", "b,S=0x10", "b,S=1e3", "b,U=1.5",
		"b,S=1,S=2", "b,S=1,S=1", "b,W=1,W=1", "b,U=1,U=2",
		"b,S=1,W=2,U=3,S=4:2,S",
		"b,U=0", "b,U=00",
		"b,U=4294967296", "b,U=99999999999",
		"b,S=18446744073709551616", "b,S=99999999999999999999",
		"b,W=18446744073709551616", "b,W=184467440737095516150",
	};
	struct store_filename fn;
	char name[512];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (store_filename_parse(bad[i], &fn) != -1)
			fail_msg("\"%s\" parsed", bad[i]);
	}

	/* base: 127 bytes at most. */
	memset(name, 'x', 127);
	strcpy(name + 127, ",S=1:2,S");
	fn = parse_ok(name);
	assert_int_equal(strlen(fn.base), 127);
	memset(name, 'x', 128);
	strcpy(name + 128, ",S=1:2,S");
	assert_int_equal(store_filename_parse(name, &fn), -1);
	name[128] = '\0';
	assert_int_equal(store_filename_parse(name, &fn), -1);

	/* The whole name: NAME_MAX (255) bytes at most. */
	memset(name, 'x', 100);
	strcpy(name + 100, ",S=1,");
	memset(name + 105, 'M', 150);
	name[255] = '\0';
	fn = parse_ok(name);
	assert_int_equal(fn.size, 1);
	name[255] = 'M';
	name[256] = '\0';
	assert_int_equal(store_filename_parse(name, &fn), -1);
	memset(name, 'x', 500);
	name[500] = '\0';
	assert_int_equal(store_filename_parse(name, &fn), -1);
}

static void test_build(void **state)
{
	struct store_filename fn;
	char out[256];

	memset(&fn, 0, sizeof(fn));
	strcpy(fn.base, "1700000000.M1P2Q3R00000000.host");
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host");

	fn.has_info = true;
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host:2,");

	fn.uid = 9;
	fn.vsize = 1260;
	fn.has_vsize = true;
	fn.size = 1234;
	fn.has_size = true;
	fn.flags = ALL_FLAGS;
	fn.keywords = (1u << 25) | (1u << 2) | 1u;
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host,S=1234,W=1260,U=9:2,DFPRSTacz");

	/* Flags alone imply info; unknown flag and keyword bits are dropped. */
	fn.has_info = false;
	fn.flags = STORE_FLAG_SEEN | (1u << 30);
	fn.keywords = 1u << 31;
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host,S=1234,W=1260,U=9:2,S");
	fn.flags = STORE_FLAG_DELETED;
	fn.keywords = 0;
	fn.has_size = false;
	fn.uid = 0;
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host,W=1260:2,T");

	/* The largest values. */
	fn.size = UINT64_MAX;
	fn.has_size = true;
	fn.vsize = UINT64_MAX;
	fn.uid = UINT32_MAX;
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M1P2Q3R00000000.host,S=18446744073709551615,"
			    "W=18446744073709551615,U=4294967295:2,T");

	/* Exactly enough room, and one byte less. */
	size_t len = strlen(out);

	assert_int_equal(store_filename_build(&fn, out, len + 1), 0);
	assert_int_equal(strlen(out), len);
	assert_int_equal(store_filename_build(&fn, out, len), -1);
	assert_string_equal(out, "");
	assert_int_equal(store_filename_build(&fn, out, 0), -1);
}

static void test_build_refuses_bad_base(void **state)
{
	static const char *const bad[] = {
		"", ".x", "a,b", "a:b", "a/b", "..",
	};
	struct store_filename fn;
	char out[256];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		memset(&fn, 0, sizeof(fn));
		strcpy(fn.base, bad[i]);
		if (store_filename_build(&fn, out, sizeof(out)) != -1)
			fail_msg("base \"%s\" built as \"%s\"", bad[i], out);
	}
	/* Not NUL-terminated. */
	memset(&fn, 0, sizeof(fn));
	memset(fn.base, 'x', sizeof(fn.base));
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), -1);
	fn.base[sizeof(fn.base) - 1] = '\0';
	assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd64(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void assert_same(const struct store_filename *a, const struct store_filename *b)
{
	assert_string_equal(a->base, b->base);
	assert_int_equal(a->has_size, b->has_size);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->has_vsize, b->has_vsize);
	assert_int_equal(a->vsize, b->vsize);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->has_info, b->has_info);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->keywords, b->keywords);
}

static void test_round_trip(void **state)
{
	static const char base_chars[] = "0123456789abcdefXYZ.-_=+\\~ M";

	for (int iter = 0; iter < 100000; iter++) {
		struct store_filename fn, back;
		char out[256], again[256];
		size_t blen = 1 + rnd64() % 127;

		memset(&fn, 0, sizeof(fn));
		for (size_t i = 0; i < blen; i++)
			fn.base[i] = base_chars[rnd64() % (sizeof(base_chars) - 1)];
		if (fn.base[0] == '.')
			fn.base[0] = '1';
		fn.has_size = rnd64() & 1;
		fn.size = fn.has_size ? rnd64() >> (rnd64() % 64) : 0;
		fn.has_vsize = rnd64() & 1;
		fn.vsize = fn.has_vsize ? rnd64() >> (rnd64() % 64) : 0;
		fn.uid = rnd64() & 1 ? (uint32_t)(rnd64() >> (32 + rnd64() % 32)) : 0;
		fn.flags = (uint32_t)rnd64() & ALL_FLAGS;
		fn.keywords = (uint32_t)rnd64() & ALL_KEYWORDS & (uint32_t)rnd64();
		fn.has_info = (rnd64() & 1) || fn.flags != 0 || fn.keywords != 0;

		assert_int_equal(store_filename_build(&fn, out, sizeof(out)), 0);
		assert_true(strlen(out) <= 255);
		assert_int_equal(store_filename_parse(out, &back), 0);
		assert_same(&fn, &back);
		assert_int_equal(store_filename_build(&back, again, sizeof(again)), 0);
		assert_string_equal(out, again);
	}
}

/* ---------------------------------------------------------- new base */

#define NBASES 100000
#define NTHREADS 4

struct base_batch {
	char (*bases)[128];
	size_t n;
};

static void *make_bases(void *arg)
{
	struct base_batch *b = arg;

	for (size_t i = 0; i < b->n; i++)
		store_new_base(b->bases[i], sizeof(b->bases[i]));
	return NULL;
}

static int cmp_base(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void check_unique(char (*bases)[128], size_t n)
{
	qsort(bases, n, sizeof(bases[0]), cmp_base);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(bases[i - 1], bases[i]) == 0)
			fail_msg("duplicate base %s", bases[i]);
	}
}

static void check_base(const char *base)
{
	struct store_filename fn;
	long long sec;
	long usec, pid;
	unsigned long long seq;
	char rnd[9];
	int end = 0;

	assert_true(strlen(base) > 0 && strlen(base) <= 127);
	assert_null(strpbrk(base, "/,:"));
	assert_int_equal(store_filename_parse(base, &fn), 0);
	assert_string_equal(fn.base, base);
	assert_false(fn.has_info);
	assert_int_equal(sscanf(base, "%lld.M%ldP%ldQ%lluR%8[0-9a-f].%n",
				&sec, &usec, &pid, &seq, rnd, &end), 5);
	assert_true(end > 0);
	assert_int_equal(strlen(rnd), 8);
	assert_true(usec >= 0 && usec < 1000000);
	assert_int_equal(pid, (long)getpid());
	assert_true(base[end] != '\0');
}

static void test_new_base_unique(void **state)
{
	char (*bases)[128] = calloc(NBASES, sizeof(*bases));
	struct base_batch all = { bases, NBASES };

	assert_non_null(bases);
	make_bases(&all);
	for (size_t i = 0; i < NBASES; i += 997)
		check_base(bases[i]);
	check_unique(bases, NBASES);
	free(bases);
}

static void test_new_base_threads(void **state)
{
	char (*bases)[128] = calloc(NBASES, sizeof(*bases));
	struct base_batch batch[NTHREADS];
	pthread_t tid[NTHREADS];

	assert_non_null(bases);
	for (int t = 0; t < NTHREADS; t++) {
		batch[t].bases = bases + t * (NBASES / NTHREADS);
		batch[t].n = NBASES / NTHREADS;
		assert_int_equal(pthread_create(&tid[t], NULL, make_bases, &batch[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_join(tid[t], NULL), 0);
	check_unique(bases, NBASES);
	free(bases);
}

static void test_new_base_small_buffer(void **state)
{
	char out[16];

	memset(out, 'x', sizeof(out));
	store_new_base(out, 10);
	assert_int_equal(strlen(out), 9);
	assert_int_equal(out[10], 'x');
	store_new_base(out, 1);
	assert_string_equal(out, "");
	store_new_base(out, 0);         /* writes nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dovecot_names),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_build_refuses_bad_base),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_new_base_unique),
		cmocka_unit_test(test_new_base_threads),
		cmocka_unit_test(test_new_base_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
