/* Unit tests for the line reader: line ends, limits, literals, and input
 * fed one byte at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "common/common-private.h"

static void feed(struct linereader *lr, const char *s)
{
	assert_int_equal(lr_feed(lr, s, strlen(s)), 0);
}

static void expect_line(struct linereader *lr, const char *want)
{
	const char *line;
	size_t len;

	assert_int_equal(lr_read_line(lr, &line, &len), 1);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(line, want, len);
}

static void test_crlf_and_lf(void **state)
{
	struct linereader lr;
	const char *line;
	size_t len;

	lr_init(&lr, 100);
	feed(&lr, "a1 NOOP\r\nb2 NOOP\nc3 part");
	expect_line(&lr, "a1 NOOP");
	expect_line(&lr, "b2 NOOP");
	assert_int_equal(lr_read_line(&lr, &line, &len), 0);
	feed(&lr, "ial\r\n");
	expect_line(&lr, "c3 partial");
	assert_int_equal(lr_read_line(&lr, &line, &len), 0);
	assert_int_equal(lr_pending(&lr), 0);
	lr_free(&lr);
}

static void test_empty_line_and_bare_cr(void **state)
{
	struct linereader lr;

	lr_init(&lr, 100);
	feed(&lr, "\r\n\nx\ry\r\n");
	expect_line(&lr, "");
	expect_line(&lr, "");
	/* A CR not followed by LF is data. */
	expect_line(&lr, "x\ry");
	lr_free(&lr);
}

static void test_one_byte_at_a_time(void **state)
{
	static const char input[] = "A LOGIN user pass\r\nB SELECT INBOX\r\n";
	struct linereader lr;
	const char *line;
	size_t len;
	int lines = 0;

	lr_init(&lr, 100);
	for (size_t i = 0; i < sizeof(input) - 1; i++) {
		assert_int_equal(lr_feed(&lr, input + i, 1), 0);
		int ret = lr_read_line(&lr, &line, &len);

		if (ret == 1) {
			lines++;
			assert_true(input[i] == '\n');
		} else {
			assert_int_equal(ret, 0);
		}
		lr_compact(&lr);
	}
	assert_int_equal(lines, 2);
	lr_free(&lr);
}

static void test_exact_limit(void **state)
{
	struct linereader lr;
	char line[51];

	lr_init(&lr, 50);
	memset(line, 'a', 50);
	line[50] = '\0';
	feed(&lr, line);
	feed(&lr, "\r\n");
	expect_line(&lr, line);
	lr_free(&lr);
}

static void test_overlong_line_skipped(void **state)
{
	struct linereader lr;
	char chunk[1000];
	const char *line;
	size_t len;

	lr_init(&lr, 50);
	memset(chunk, 'z', sizeof(chunk));
	/* The overlong line arrives in pieces; it is reported once... */
	assert_int_equal(lr_feed(&lr, chunk, 100), 0);
	assert_int_equal(lr_read_line(&lr, &line, &len), CONN_ELINE);
	assert_int_equal(lr_pending(&lr), 0);
	/* ...and the rest of it is dropped as it arrives, memory flat. */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(lr_feed(&lr, chunk, sizeof(chunk)), 0);
		assert_int_equal(lr_read_line(&lr, &line, &len), 0);
		assert_int_equal(lr_pending(&lr), 0);
	}
	feed(&lr, "zzz\r\nNEXT\r\n");
	expect_line(&lr, "NEXT");
	lr_free(&lr);
}

static void test_overlong_line_complete_in_buffer(void **state)
{
	struct linereader lr;
	char big[80];
	const char *line;
	size_t len;

	lr_init(&lr, 50);
	memset(big, 'q', 60);
	memcpy(big + 60, "\r\nok\r\n", 7);
	feed(&lr, big);
	assert_int_equal(lr_read_line(&lr, &line, &len), CONN_ELINE);
	expect_line(&lr, "ok");
	lr_free(&lr);
}

static void test_room_and_raw_bytes(void **state)
{
	struct linereader lr;
	const char *data;

	lr_init(&lr, 10);
	assert_true(lr_has_room(&lr));
	feed(&lr, "{5}\r\nhelloX\r\n");
	expect_line(&lr, "{5}");
	assert_int_equal(lr_read_bytes(&lr, 5, &data), 5);
	assert_memory_equal(data, "hello", 5);
	expect_line(&lr, "X");
	assert_int_equal(lr_read_bytes(&lr, 5, &data), 0);
	/* Full once a maximal line and its CRLF are buffered unread. */
	feed(&lr, "0123456789\r\n");
	assert_false(lr_has_room(&lr));
	lr_discard(&lr);
	assert_true(lr_has_room(&lr));
	assert_int_equal(lr_pending(&lr), 0);
	lr_free(&lr);
}

static void test_raise_limit(void **state)
{
	struct linereader lr;
	char line[201];

	lr_init(&lr, 100);
	lr_set_line_max(&lr, 200);
	memset(line, 'b', 200);
	line[200] = '\0';
	feed(&lr, line);
	feed(&lr, "\n");
	expect_line(&lr, line);
	lr_free(&lr);
}

static void test_nul_is_data(void **state)
{
	struct linereader lr;
	const char *line;
	size_t len;

	lr_init(&lr, 100);
	assert_int_equal(lr_feed(&lr, "a\0b\r\n", 5), 0);
	assert_int_equal(lr_read_line(&lr, &line, &len), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(line, "a\0b", 3);
	lr_free(&lr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf_and_lf),
		cmocka_unit_test(test_empty_line_and_bare_cr),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_exact_limit),
		cmocka_unit_test(test_overlong_line_skipped),
		cmocka_unit_test(test_overlong_line_complete_in_buffer),
		cmocka_unit_test(test_room_and_raw_bytes),
		cmocka_unit_test(test_raise_limit),
		cmocka_unit_test(test_nul_is_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
