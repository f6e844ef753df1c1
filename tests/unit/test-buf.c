/*
 * test-buf.c — the byte buffer of common.h: lazy storage, the maximum
 * (BUF_ETOOBIG leaves the buffer unchanged), NUL termination, binary data,
 * consume, clear, release and shrink.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/common.h"

#include <stdlib.h>
#include <string.h>

/* The buffer holds exactly want (len bytes) followed by a NUL. */
static void assert_buf(const struct buf *b, const void *want, size_t len)
{
	assert_int_equal(b->len, len);
	assert_true(b->cap > b->len);
	assert_true(b->len <= b->max);
	assert_memory_equal(b->data, want, len);
	assert_int_equal(b->data[len], '\0');
}

static void test_init_takes_no_storage(void **state)
{
	struct buf b;

	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	buf_release(&b);
	assert_null(b.data);
}

static void test_append_keeps_nul(void **state)
{
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_buf(&b, "hello", 5);
	assert_int_equal(buf_append_str(&b, ", world"), 0);
	assert_buf(&b, "hello, world", 12);
	assert_string_equal((char *)b.data, "hello, world");
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_append_str(&b, ""), 0);
	assert_buf(&b, "hello, world", 12);
	buf_release(&b);
}

/* No maximum (SIZE_MAX) must not wrap the capacity to nothing. */
static void test_unlimited_buffer(void **state)
{
	struct buf b;
	char chunk[100];

	memset(chunk, 'x', sizeof(chunk));
	buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 10000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[9999], 'x');
	assert_int_equal(b.data[10000], '\0');
	buf_release(&b);
}

static void test_binary_data(void **state)
{
	static const unsigned char bin[] = { 'a', 0, 'b', 0, 0, 0xff, '\r', '\n', 0 };
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(buf_append(&b, bin, sizeof(bin)), 0);
	assert_buf(&b, bin, sizeof(bin));
	assert_int_equal(buf_append(&b, bin, sizeof(bin)), 0);
	assert_int_equal(b.len, 2 * sizeof(bin));
	assert_memory_equal(b.data + sizeof(bin), bin, sizeof(bin));
	buf_consume(&b, 3);
	assert_buf(&b, "\0\0\xff\r\n\0a\0b\0\0\xff\r\n\0", 2 * sizeof(bin) - 3);
	buf_release(&b);
}

static void test_max_is_enforced(void **state)
{
	struct buf b;

	buf_init(&b, 10);
	/* Exactly max bytes fit. */
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_buf(&b, "0123456789", 10);

	/* Anything more fails and changes nothing. */
	unsigned char *data = b.data;
	size_t cap = b.cap;

	assert_int_equal(buf_append(&b, "x", 1), BUF_ETOOBIG);
	assert_int_equal(buf_append_str(&b, "xyz"), BUF_ETOOBIG);
	assert_int_equal(buf_printf(&b, "%d", 7), BUF_ETOOBIG);
	assert_int_equal(buf_reserve(&b, 1), BUF_ETOOBIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), BUF_ETOOBIG);
	assert_buf(&b, "0123456789", 10);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);

	/* A partly full buffer: a too-large append leaves no partial copy. */
	buf_clear(&b);
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(buf_append(&b, "defghijk", 8), BUF_ETOOBIG);
	assert_buf(&b, "abc", 3);
	assert_int_equal(buf_printf(&b, "%s", "12345678"), BUF_ETOOBIG);
	assert_buf(&b, "abc", 3);
	assert_int_equal(buf_append(&b, "defghij", 7), 0);
	assert_buf(&b, "abcdefghij", 10);

	/* Reserving space never overflows into success. */
	buf_consume(&b, 10);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), BUF_ETOOBIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 5), BUF_ETOOBIG);
	assert_int_equal(buf_reserve(&b, 11), BUF_ETOOBIG);
	assert_int_equal(buf_reserve(&b, 10), 0);
	buf_release(&b);

	/* An empty buffer that has no storage yet stays without it. */
	buf_init(&b, 4);
	assert_int_equal(buf_append(&b, "12345", 5), BUF_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	buf_release(&b);
}

static void test_reserve(void **state)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append(&b, "xy", 2), 0);
	assert_int_equal(buf_reserve(&b, 5000), 0);
	assert_true(b.cap >= b.len + 5000);
	assert_buf(&b, "xy", 2);
	/* The reserved room is writable (AddressSanitizer checks). */
	memset(b.data + b.len, 'z', 5000);
	buf_release(&b);
}

static void test_printf(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(buf_printf(&b, "%s %d", "a", 1), 0);
	assert_int_equal(buf_printf(&b, "|%03u|%x", 7u, 255u), 0);
	assert_buf(&b, "a 1|007|ff", 10);

	/* Growing through printf; the result is exactly as long. */
	char big[3000];

	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 10 + 2 + 2999);
	assert_int_equal(b.data[10], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	buf_release(&b);
}

static void test_consume(void **state)
{
	struct buf b;

	buf_init(&b, 100);
	assert_int_equal(buf_append_str(&b, "abcdef"), 0);
	buf_consume(&b, 0);
	assert_buf(&b, "abcdef", 6);
	buf_consume(&b, 2);
	assert_buf(&b, "cdef", 4);
	buf_consume(&b, 3);
	assert_buf(&b, "f", 1);
	buf_consume(&b, 1);
	assert_buf(&b, "", 0);
	/* Usable again after being emptied. */
	assert_int_equal(buf_append_str(&b, "gh"), 0);
	assert_buf(&b, "gh", 2);

	/* Consuming frees room under the maximum. */
	buf_clear(&b);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(buf_append(&b, "x", 1), BUF_ETOOBIG);
	buf_consume(&b, 40);
	assert_int_equal(buf_append(&b, "0123456789012345678901234567890123456789", 40), 0);
	assert_int_equal(b.len, 100);
	assert_int_equal(b.data[59], 'x');
	assert_int_equal(b.data[60], '0');
	buf_release(&b);
}

static void test_clear_keeps_storage(void **state)
{
	struct buf b;

	buf_init(&b, 1000);
	assert_int_equal(buf_append_str(&b, "some text"), 0);
	size_t cap = b.cap;

	buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_non_null(b.data);
	assert_int_equal(b.data[0], '\0');
	buf_release(&b);
}

static void test_shrink_if_empty(void **state)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(buf_reserve(&b, 10000), 0);
	assert_int_equal(buf_append_str(&b, "busy"), 0);
	size_t cap = b.cap;

	/* Not empty: kept whatever its size. */
	buf_shrink_if_empty(&b, 0);
	assert_int_equal(b.cap, cap);
	assert_buf(&b, "busy", 4);

	/* Empty but within keep: kept. */
	buf_clear(&b);
	buf_shrink_if_empty(&b, cap);
	assert_int_equal(b.cap, cap);
	assert_non_null(b.data);

	/* Empty and above keep: released. */
	buf_shrink_if_empty(&b, 4096);
	assert_int_equal(b.cap, 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 1 << 20);

	/* Still usable. */
	assert_int_equal(buf_append_str(&b, "again"), 0);
	assert_buf(&b, "again", 5);
	buf_release(&b);
}

static void test_release(void **state)
{
	struct buf b;

	buf_init(&b, 500);
	assert_int_equal(buf_append_str(&b, "data"), 0);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 500);
	buf_release(&b); /* twice is fine */

	assert_int_equal(buf_append_str(&b, "more"), 0);
	assert_buf(&b, "more", 4);
	buf_release(&b);
}

static void test_large_growth(void **state)
{
	struct buf b;
	unsigned char chunk[4096];
	const size_t total = 4 << 20;

	buf_init(&b, total);
	for (size_t off = 0; off < total; off += sizeof(chunk)) {
		memset(chunk, (int)((off / sizeof(chunk)) & 0xff), sizeof(chunk));
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	}
	assert_int_equal(b.len, total);
	assert_int_equal(b.data[total], '\0');
	for (size_t off = 0; off < total; off += sizeof(chunk))
		assert_int_equal(b.data[off + 100], (off / sizeof(chunk)) & 0xff);
	assert_int_equal(buf_append(&b, "!", 1), BUF_ETOOBIG);
	assert_int_equal(b.len, total);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_takes_no_storage),
		cmocka_unit_test(test_append_keeps_nul),
		cmocka_unit_test(test_binary_data),
		cmocka_unit_test(test_unlimited_buffer),
		cmocka_unit_test(test_max_is_enforced),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_consume),
		cmocka_unit_test(test_clear_keeps_storage),
		cmocka_unit_test(test_shrink_if_empty),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_large_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
