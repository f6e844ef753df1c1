/* Unit tests for the deflate streams of COMPRESS=DEFLATE (compress.c):
 * round trips against itself, sync flushes that make everything sent
 * decodable, input fed one byte at a time, bounded inflation of a "zip
 * bomb", invalid data and the end of the client's stream. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/common-private.h"

static void emit_cb(void *ctx, const void *data, size_t len)
{
	assert_int_equal(buf_append(ctx, data, len), 0);
}

/* Inflate everything zs holds into out, in pieces of at most piece. */
static int drain(struct zstream *zs, struct buf *out, size_t piece)
{
	char tmp[4096];
	int ret = 0;

	assert_true(piece <= sizeof(tmp));
	while (zs_pending(zs) > 0 && ret == 0) {
		size_t n;
		const char *error = NULL;

		ret = zs_inflate(zs, tmp, piece, &n, &error);
		assert_true(n <= piece);
		assert_int_equal(buf_append(out, tmp, n), 0);
		if (ret < 0)
			assert_non_null(error);
	}
	return ret;
}

static void test_round_trip_with_sync_flush(void **state)
{
	struct zstream *a = zs_new(1 << 20), *b = zs_new(1 << 20);
	struct buf wire, plain;

	assert_non_null(a);
	assert_non_null(b);
	buf_init(&wire, 1 << 20);
	buf_init(&plain, 1 << 20);
	zs_deflate(a, "a1 OK NOOP completed\r\n", 22, emit_cb, &wire);
	zs_flush(a, emit_cb, &wire);
	/* A sync flush ends with an empty stored block. */
	assert_true(wire.len >= 4);
	assert_memory_equal(wire.data + wire.len - 4, "\x00\x00\xff\xff", 4);
	assert_int_equal(zs_feed(b, wire.data, wire.len), 0);
	assert_int_equal(drain(b, &plain, 4096), 0);
	assert_int_equal(plain.len, 22);
	assert_memory_equal(plain.data, "a1 OK NOOP completed\r\n", 22);
	/* A second flush with nothing new adds nothing. */
	size_t before = wire.len;

	zs_flush(a, emit_cb, &wire);
	assert_int_equal(wire.len, before);
	buf_release(&wire);
	buf_release(&plain);
	zs_free(&a);
	zs_free(&b);
	assert_null(a);
}

static void test_one_byte_at_a_time(void **state)
{
	struct zstream *a = zs_new(1 << 20), *b = zs_new(16);
	struct buf wire, plain, want;

	buf_init(&wire, 1 << 20);
	buf_init(&plain, 1 << 20);
	buf_init(&want, 1 << 20);
	for (int i = 0; i < 2000; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "* %d FETCH (FLAGS (\\Seen))\r\n", i);

		buf_append(&want, line, (size_t)n);
		zs_deflate(a, line, (size_t)n, emit_cb, &wire);
		if (i % 100 == 0)
			zs_flush(a, emit_cb, &wire);
	}
	zs_flush(a, emit_cb, &wire);
	assert_true(wire.len < want.len / 4);
	for (size_t i = 0; i < wire.len; i++) {
		assert_int_equal(zs_feed(b, wire.data + i, 1), 0);
		assert_int_equal(drain(b, &plain, 7), 0);
	}
	assert_int_equal(plain.len, want.len);
	assert_memory_equal(plain.data, want.data, want.len);
	buf_release(&wire);
	buf_release(&plain);
	buf_release(&want);
	zs_free(&a);
	zs_free(&b);
}

/* 10 MiB that compresses to about 10 KiB: each call gives at most what
 * was asked for, and what is not yet inflated stays compressed. */
static void test_bomb_inflates_in_bounded_pieces(void **state)
{
	struct zstream *a = zs_new(1 << 20), *b = zs_new(64 * 1024);
	struct buf wire;
	char *big = malloc(10 << 20), out[4096];
	size_t total = 0, calls = 0;

	memset(big, 'A', 10 << 20);
	buf_init(&wire, 1 << 20);
	zs_deflate(a, big, 10 << 20, emit_cb, &wire);
	zs_flush(a, emit_cb, &wire);
	assert_true(wire.len < 64 * 1024);
	assert_int_equal(zs_feed(b, wire.data, wire.len), 0);
	while (zs_pending(b) > 0) {
		size_t n;
		const char *error;

		assert_int_equal(zs_inflate(b, out, sizeof(out), &n, &error), 0);
		assert_true(n <= sizeof(out));
		total += n;
		calls++;
		/* Compressed input is consumed only as output is taken. */
		if (total < (10 << 20) - sizeof(out))
			assert_true(zs_pending(b) > 0);
	}
	assert_int_equal(total, 10 << 20);
	assert_true(calls >= (10 << 20) / sizeof(out));
	free(big);
	buf_release(&wire);
	zs_free(&a);
	zs_free(&b);
}

static void test_feed_beyond_max(void **state)
{
	struct zstream *b = zs_new(8);

	assert_int_equal(zs_feed(b, "12345678", 8), 0);
	assert_int_equal(zs_feed(b, "9", 1), BUF_ETOOBIG);
	assert_int_equal(zs_pending(b), 8);
	zs_free(&b);
}

static void test_invalid_data(void **state)
{
	struct zstream *b = zs_new(1024);
	struct buf plain;

	buf_init(&plain, 1024);
	/* BFINAL=1, BTYPE=11: a reserved block type. */
	assert_int_equal(zs_feed(b, "\xff\xff\xff\xff garbage", 12), 0);
	assert_int_equal(drain(b, &plain, 4096), -1);
	assert_int_equal(zs_pending(b), 0);
	/* Nothing more is taken. */
	assert_int_equal(zs_feed(b, "x", 1), 0);
	assert_int_equal(zs_pending(b), 0);
	buf_release(&plain);
	zs_free(&b);
}

static void test_stream_end(void **state)
{
	struct zstream *b = zs_new(1024);
	struct buf plain;
	size_t n;
	const char *error;
	/* "a NOOP\r\n" as a final fixed-Huffman block, then trailing junk. */
	unsigned char final[64];
	z_stream zc;

	memset(&zc, 0, sizeof(zc));
	assert_int_equal(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zc.next_in = (Bytef *)"a NOOP\r\n";
	zc.avail_in = 8;
	zc.next_out = final;
	zc.avail_out = sizeof(final);
	assert_int_equal(deflate(&zc, Z_FINISH), Z_STREAM_END);
	size_t len = sizeof(final) - zc.avail_out;

	deflateEnd(&zc);
	buf_init(&plain, 1024);
	assert_int_equal(zs_feed(b, final, len), 0);
	assert_int_equal(zs_feed(b, "junk", 4), 0);
	assert_int_equal(drain(b, &plain, 4096), ZS_END);
	assert_int_equal(plain.len, 8);
	assert_memory_equal(plain.data, "a NOOP\r\n", 8);
	assert_int_equal(zs_pending(b), 0);
	assert_int_equal(zs_inflate(b, final, sizeof(final), &n, &error), ZS_END);
	assert_int_equal(n, 0);
	buf_release(&plain);
	zs_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_with_sync_flush),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_bomb_inflates_in_bounded_pieces),
		cmocka_unit_test(test_feed_beyond_max),
		cmocka_unit_test(test_invalid_data),
		cmocka_unit_test(test_stream_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
