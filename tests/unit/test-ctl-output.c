/*
 * test-ctl-output.c — ternctl's JSON writer (ctl/output.c): every control
 * character, quotes and backslashes escaped; valid UTF-8 kept byte for
 * byte; invalid UTF-8 replaced so the document stays valid; nesting and
 * commas; numbers, booleans and null.
 *
 * The writer prints to stdout, so each test points stdout at a temporary
 * file and compares what landed there. User data cannot reach the control
 * character paths end to end (names and mail directories refuse them), so
 * they are proven here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int saved_stdout = -1;
static FILE *capture;

static void capture_begin(void)
{
	fflush(stdout);
	capture = tmpfile();
	assert_non_null(capture);
	saved_stdout = dup(STDOUT_FILENO);
	assert_true(saved_stdout >= 0);
	assert_int_equal(dup2(fileno(capture), STDOUT_FILENO), STDOUT_FILENO);
}

/* What was written since capture_begin (malloc'd). */
static char *capture_end(void)
{
	fflush(stdout);
	assert_int_equal(dup2(saved_stdout, STDOUT_FILENO), STDOUT_FILENO);
	close(saved_stdout);
	long n = ftell(capture);

	assert_true(n >= 0);
	char *out = calloc(1, (size_t)n + 1);

	assert_non_null(out);
	rewind(capture);
	assert_int_equal(fread(out, 1, (size_t)n, capture), (size_t)n);
	fclose(capture);
	return out;
}

/* The document for one string value: ["<value>"]. */
static char *string_doc(const char *value)
{
	capture_begin();
	ctl_json_begin_array(NULL);
	ctl_json_string(NULL, value);
	ctl_json_end_array();
	ctl_json_finish();
	return capture_end();
}

static void expect_json(const char *value, const char *escaped)
{
	char want[512];
	char *got = string_doc(value);

	snprintf(want, sizeof(want), "[\"%s\"]\n", escaped);
	assert_string_equal(got, want);
	free(got);
}

static void test_control_characters(void **state)
{
	for (int c = 1; c < 0x20; c++) {
		char in[4] = { 'a', (char)c, 'b', '\0' };
		char esc[16];

		switch (c) {
		case '\b':
			strcpy(esc, "a\\bb");
			break;
		case '\f':
			strcpy(esc, "a\\fb");
			break;
		case '\n':
			strcpy(esc, "a\\nb");
			break;
		case '\r':
			strcpy(esc, "a\\rb");
			break;
		case '\t':
			strcpy(esc, "a\\tb");
			break;
		default:
			snprintf(esc, sizeof(esc), "a\\u%04xb", c);
		}
		expect_json(in, esc);
	}
	/* DEL is not a control character to JSON. */
	expect_json("a\x7f" "b", "a\x7f" "b");
}

static void test_quotes_and_backslashes(void **state)
{
	expect_json("say \"hi\"", "say \\\"hi\\\"");
	expect_json("C:\\dir\\", "C:\\\\dir\\\\");
	expect_json("/", "/");
	expect_json("", "");
}

static void test_utf8(void **state)
{
	/* 2, 3 and 4 byte sequences pass through unchanged. */
	expect_json("Entw\xc3\xbc" "rfe", "Entw\xc3\xbc" "rfe");
	expect_json("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87");
	expect_json("\xf0\x9f\x93\xab", "\xf0\x9f\x93\xab");
	expect_json("\xef\xbf\xbf", "\xef\xbf\xbf");
	/* Invalid: a lone continuation byte, an overlong '/', a surrogate, a
	 * sequence cut short at the end, a byte that never starts one, a code
	 * point above U+10FFFF. */
	expect_json("a\x80" "b", "a\\ufffdb");
	expect_json("\xc0\xaf", "\\ufffd\\ufffd");
	expect_json("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
	expect_json("x\xe2\x82", "x\\ufffd\\ufffd");
	expect_json("\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
	expect_json("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
	expect_json("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd");
}

static void test_structure(void **state)
{
	capture_begin();
	ctl_json_begin_object(NULL);
	ctl_json_string("name", "a\"b");
	ctl_json_string("none", NULL);
	ctl_json_bool("yes", true);
	ctl_json_bool("no", false);
	ctl_json_uint("big", UINT64_MAX);
	ctl_json_int("neg", INT64_MIN);
	ctl_json_begin_array("list");
	ctl_json_begin_object(NULL);
	ctl_json_uint("n", 1);
	ctl_json_end_object();
	ctl_json_begin_object(NULL);
	ctl_json_end_object();
	ctl_json_begin_array(NULL);
	ctl_json_end_array();
	ctl_json_end_array();
	ctl_json_begin_object("key\n");
	ctl_json_end_object();
	ctl_json_end_object();
	ctl_json_finish();
	char *got = capture_end();

	assert_string_equal(got, "{\"name\":\"a\\\"b\",\"none\":null,\"yes\":true,\"no\":false,"
				 "\"big\":18446744073709551615,\"neg\":-9223372036854775808,"
				 "\"list\":[{\"n\":1},{},[]],\"key\\n\":{}}\n");
	free(got);

	/* A second document starts afresh: no comma carried over. */
	capture_begin();
	ctl_json_begin_object(NULL);
	ctl_json_uint("a", 1);
	ctl_json_end_object();
	ctl_json_finish();
	got = capture_end();
	assert_string_equal(got, "{\"a\":1}\n");
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_quotes_and_backslashes),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_structure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
