/*
 * test-arena.c — the arena allocator of common.h: alignment, zeroing,
 * large allocations, strings, and that reset frees memory but keeps
 * working.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/common.h"

#include <string.h>

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i] != 0)
			return false;
	}
	return true;
}

static void test_new_allocates_nothing(void **state)
{
	struct arena *a = arena_new(4096);

	/* Only the struct itself until the first allocation. */
	assert_true(arena_footprint(a) < 4096);
	assert_non_null(arena_alloc(a, 1));
	/* The first chunk is small (most sessions need little)... */
	size_t first = arena_footprint(a);

	assert_true(first > 0 && first < 4096);
	/* ...later ones have the configured size. */
	for (int i = 0; i < 64; i++)
		assert_non_null(arena_alloc(a, 16));
	assert_true(arena_footprint(a) >= first + 4096);
	arena_free(&a);
	assert_null(a);
	arena_free(&a); /* NULL is fine */
	assert_null(a);
}

static void test_alignment_and_zeroing(void **state)
{
	struct arena *a = arena_new(0);
	unsigned char *blocks[200];
	size_t sizes[200];

	for (size_t i = 0; i < N_ELEMENTS(blocks); i++) {
		sizes[i] = 1 + (i * 37) % 300; /* 1..300 bytes, odd sizes too */
		blocks[i] = arena_alloc(a, sizes[i]);
		assert_non_null(blocks[i]);
		assert_int_equal((uintptr_t)blocks[i] % 16, 0);
		assert_true(all_zero(blocks[i], sizes[i]));
		memset(blocks[i], (int)(i & 0xff), sizes[i]);
	}
	/* No block overlaps another: every pattern is intact. */
	for (size_t i = 0; i < N_ELEMENTS(blocks); i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(blocks[i][j], i & 0xff);
	}
	arena_free(&a);
}

static void test_reused_memory_is_zeroed(void **state)
{
	struct arena *a = arena_new(1024);
	unsigned char *p = arena_alloc(a, 256);

	memset(p, 0xff, 256);
	arena_reset(a);
	p = arena_alloc(a, 256);
	assert_true(all_zero(p, 256));
	arena_free(&a);
}

/* A first allocation larger than the small first chunk but not large
 * enough for a chunk of its own gets a regular chunk, not an overflow. */
static void test_first_allocation_above_first_chunk(void **state)
{
	struct arena *a = arena_new(1024);
	unsigned char *p = arena_alloc(a, 416);
	unsigned char *q = arena_alloc(a, 8);

	memset(p, 0xff, 416);
	assert_true(all_zero(q, 8));
	assert_true(arena_footprint(a) >= 1024);
	arena_free(&a);
}

static void test_large_allocations(void **state)
{
	struct arena *a = arena_new(1024);
	unsigned char *small1 = arena_alloc(a, 10);
	unsigned char *big = arena_alloc(a, 1000000);
	unsigned char *small2 = arena_alloc(a, 10);

	assert_non_null(big);
	assert_int_equal((uintptr_t)big % 16, 0);
	assert_true(all_zero(big, 1000000));
	memset(big, 0xab, 1000000);
	memset(small1, 1, 10);
	memset(small2, 2, 10);
	assert_int_equal(big[0], 0xab);
	assert_int_equal(big[999999], 0xab);
	assert_int_equal(small1[9], 1);
	assert_int_equal(small2[0], 2);
	assert_true(arena_footprint(a) >= 1000000);

	/* Exactly one chunk, and just over it. */
	unsigned char *exact = arena_alloc(a, 1024);
	unsigned char *over = arena_alloc(a, 1025);

	assert_true(all_zero(exact, 1024) && all_zero(over, 1025));
	memset(exact, 3, 1024);
	memset(over, 4, 1025);
	assert_int_equal(big[999999], 0xab);
	arena_free(&a);
}

static void test_reset_releases_and_keeps_working(void **state)
{
	struct arena *a = arena_new(1024);

	for (int i = 0; i < 1000; i++)
		memset(arena_alloc(a, 100), 0x5a, 100);
	arena_alloc(a, 50000);
	size_t full = arena_footprint(a);

	assert_true(full > 100000);
	arena_reset(a);
	size_t after_reset = arena_footprint(a);

	/* One chunk is kept for reuse; the rest went back to malloc. */
	assert_true(after_reset < full);
	assert_true(after_reset <= 1024 + 256);
	/* Small allocations reuse the kept chunk. */
	char *s = arena_strdup(a, "after reset");

	assert_string_equal(s, "after reset");
	assert_int_equal(arena_footprint(a), after_reset);

	/* Many cycles do not grow the arena. */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 100; i++) {
			unsigned char *p = arena_alloc(a, 64);

			assert_true(all_zero(p, 64));
			memset(p, round, 64);
		}
		arena_alloc(a, 5000);
		arena_reset(a);
		assert_int_equal(arena_footprint(a), after_reset);
	}
	arena_free(&a);
}

static char *vprintf_helper(struct arena *a, const char *fmt, ...) ATTR_PRINTF(2, 3);
static char *vprintf_helper(struct arena *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *s = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return s;
}

static void test_strings(void **state)
{
	struct arena *a = arena_new(64);
	char *dup = arena_strdup(a, "hello");
	char *ndup = arena_strndup(a, "hello world", 5);
	char *empty = arena_strdup(a, "");

	assert_string_equal(dup, "hello");
	assert_string_equal(ndup, "hello");
	assert_string_equal(empty, "");
	assert_int_equal((uintptr_t)ndup % 16, 0);

	/* A prefix is NUL-terminated: the byte after it is not copied. */
	char *prefix = arena_strndup(a, "abcdef", 3);

	assert_memory_equal(prefix, "abc", 4);

	assert_string_equal(arena_printf(a, "%s=%d", "count", 42), "count=42");
	assert_string_equal(vprintf_helper(a, "%05u|%-3s|%c", 7u, "x", 'y'), "00007|x  |y");
	assert_string_equal(arena_printf(a, "%s", ""), "");

	/* Longer than a chunk. */
	char longs[5000];

	memset(longs, 'q', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	char *p = arena_printf(a, "<%s>", longs);

	assert_int_equal(strlen(p), sizeof(longs) + 1);
	assert_int_equal(p[0], '<');
	assert_int_equal(p[4999], 'q');
	assert_int_equal(p[5000], '>');
	/* Earlier strings are untouched. */
	assert_string_equal(dup, "hello");
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_allocates_nothing),
		cmocka_unit_test(test_alignment_and_zeroing),
		cmocka_unit_test(test_reused_memory_is_zeroed),
		cmocka_unit_test(test_first_allocation_above_first_chunk),
		cmocka_unit_test(test_large_allocations),
		cmocka_unit_test(test_reset_releases_and_keeps_working),
		cmocka_unit_test(test_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
