/* Unit tests for auth/sasl.c: strict base64 (RFC 4648 vectors and every
 * way to break it), PLAIN (RFC 4616) and LOGIN exchanges with and without
 * an initial response, hostile messages (ROBUSTNESS.md 22), limits, cancel,
 * and steps after the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* ---------------------------------------------------------------- helpers */

/* base64 of len bytes, malloc'd. */
static char *b64(const void *data, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);

	assert_non_null(out);
	sasl_base64_encode(data, len, out);
	return out;
}

/* One step with a NUL-terminated line (or NULL). */
static enum sasl_step step(struct sasl *s, const char *line, const char **challenge_r,
			   const char **why_r)
{
	return sasl_step(s, line, line == NULL ? 0 : strlen(line), challenge_r, why_r);
}

/* A PLAIN exchange with the raw message as initial response: the result,
 * and *why_r for SASL_BAD. */
static enum sasl_step plain_ir(const void *msg, size_t len, const char **why_r)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge;
	char *line = b64(msg, len);
	enum sasl_step r = step(s, line, &challenge, why_r);

	free(line);
	sasl_free(&s);
	return r;
}

static void expect_credentials(const struct sasl *s, const char *authzid, const char *authcid,
			       const char *password)
{
	const char *z, *c, *p;

	sasl_credentials(s, &z, &c, &p);
	assert_string_equal(z, authzid);
	assert_string_equal(c, authcid);
	assert_string_equal(p, password);
}

/* ----------------------------------------------------------------- base64 */

static void test_base64_rfc4648_vectors(void **state)
{
	static const char *const vectors[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};

	for (size_t i = 0; i < N_ELEMENTS(vectors); i++) {
		const char *raw = vectors[i][0], *enc = vectors[i][1];
		char out[16];
		unsigned char dec[16];
		ssize_t n;

		assert_int_equal(sasl_base64_encode(raw, strlen(raw), out), strlen(enc));
		assert_string_equal(out, enc);
		n = sasl_base64_decode(enc, strlen(enc), dec);
		assert_int_equal(n, strlen(raw));
		assert_memory_equal(dec, raw, strlen(raw));
	}
}

static void test_base64_all_bytes_round_trip(void **state)
{
	unsigned char raw[256], dec[258];
	char enc[((sizeof(raw) + 2) / 3) * 4 + 1];

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	/* Every length, so each padding case meets every byte value. */
	for (size_t len = 0; len <= sizeof(raw); len++) {
		size_t n = sasl_base64_encode(raw, len, enc);

		assert_int_equal(n, (len + 2) / 3 * 4);
		assert_int_equal(sasl_base64_decode(enc, n, dec), len);
		assert_memory_equal(dec, raw, len);
	}
}

static void test_base64_refused(void **state)
{
	static const char *const bad[] = {
		"====",      /* padding only */
		"Zg=",       /* length not a multiple of 4 */
		"Zg",        /* padding missing */
		"Zm9vY",     /* trailing garbage */
		"Zm9vYg==Zg==", /* padding before the end */
		"Zm=v",      /* pad then data */
		"Z===",      /* three pads */
		"Zm 9v",     /* whitespace */
		"Zm9v\r\n",  /* line end */
		"Zm9v\t   ",
		"Zh==",      /* non-zero pad bits ("Zg==" is canonical) */
		"Zm9=",      /* non-zero pad bits ("Zm8=" is canonical) */
		"Zm9-",      /* base64url alphabet */
		"Zm9_",
		"Zm\xc3\xa9",   /* non-ASCII */
	};
	unsigned char out[32];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(sasl_base64_decode(bad[i], strlen(bad[i]), out), -1);
	/* An embedded NUL is not base64 either. */
	assert_int_equal(sasl_base64_decode("Zm\0v", 4, out), -1);
}

/* ------------------------------------------------------------------ names */

static void test_mech_parse(void **state)
{
	enum sasl_mech m;

	assert_int_equal(sasl_mech_parse("PLAIN", &m), 0);
	assert_int_equal(m, SASL_PLAIN);
	assert_int_equal(sasl_mech_parse("plain", &m), 0);
	assert_int_equal(m, SASL_PLAIN);
	assert_int_equal(sasl_mech_parse("Login", &m), 0);
	assert_int_equal(m, SASL_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mech_parse("PLAIN ", &m), -1);
	assert_int_equal(sasl_mech_parse("", &m), -1);
	assert_string_equal(sasl_mech_name(SASL_PLAIN), "PLAIN");
	assert_string_equal(sasl_mech_name(SASL_LOGIN), "LOGIN");
}

/* ------------------------------------------------------------------ PLAIN */

static void test_plain_initial_response(void **state)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why;

	/* RFC 4616 section 4: "\0tim\0tanstaaftanstaaf". */
	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_DONE);
	expect_credentials(s, "", "tim", "tanstaaftanstaaf");
	sasl_free(&s);
	assert_null(s);
}

static void test_plain_with_authzid(void **state)
{
	static const char msg[] = "Ursel\0Kurt\0xipj3plmq";
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why;
	char *line = b64(msg, sizeof(msg) - 1);

	assert_int_equal(step(s, line, &challenge, &why), SASL_DONE);
	expect_credentials(s, "Ursel", "Kurt", "xipj3plmq");
	free(line);
	sasl_free(&s);
}

static void test_plain_without_initial_response(void **state)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why;

	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	/* PLAIN's challenge is empty: IMAP sends "+ " and POP3 "+ ". */
	assert_string_equal(challenge, "");
	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_DONE);
	expect_credentials(s, "", "tim", "tanstaaftanstaaf");
	sasl_free(&s);
}

static void test_plain_bad_messages(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
	} bad[] = {
#define M(s) { s, sizeof(s) - 1 }
		M("user password"),          /* valid base64 without NULs */
		M("\0user password"),        /* one NUL */
		M("\0user\0pass\0word"),     /* three NULs */
		M("a\0b\0c\0"),
		M("\0\0password"),           /* empty authcid */
		M("\0user\0"),               /* empty password */
		M("\0\0"),
		M(""),
#undef M
	};
	const char *why;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		why = NULL;
		assert_int_equal(plain_ir(bad[i].msg, bad[i].len, &why), SASL_BAD);
		assert_non_null(why);
	}
}

static void test_plain_reasons_do_not_echo(void **state)
{
	static const char msg[] = "\0secretuser\0secretpass\0more";
	const char *why;

	assert_int_equal(plain_ir(msg, sizeof(msg) - 1, &why), SASL_BAD);
	assert_null(strstr(why, "secret"));
	assert_string_equal(why, "PLAIN message has more than two NUL separators");
}

static void test_plain_robustness_inputs(void **state)
{
	struct sasl *s;
	const char *challenge, *why;
	char *garbage;

	/* "====" as initial response and as the answer to the challenge. */
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, "====", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "invalid base64");
	sasl_free(&s);
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "====", &challenge, &why), SASL_BAD);
	sasl_free(&s);

	/* 10 KB of base64 garbage: over the limit, refused before decoding. */
	garbage = malloc(10240 + 1);
	assert_non_null(garbage);
	for (size_t i = 0; i < 10240; i++)
		garbage[i] = "A+/z9"[i % 5];
	garbage[10240] = '\0';
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, garbage, &challenge, &why), SASL_BAD);
	assert_string_equal(why, "response too long");
	sasl_free(&s);
	free(garbage);
}

static void test_plain_input_limit(void **state)
{
	/* A valid message whose base64 is exactly SASL_MAX_INPUT long is
	 * decoded (and refused for its field length); one group more is
	 * refused before decoding. */
	size_t raw_len = SASL_MAX_INPUT / 4 * 3;
	unsigned char *raw = calloc(1, raw_len + 3);
	const char *why;

	assert_non_null(raw);
	memset(raw, 'a', raw_len + 3);
	raw[0] = '\0';
	raw[5] = '\0';
	assert_int_equal(plain_ir(raw, raw_len, &why), SASL_BAD);
	assert_string_equal(why, "password too long");
	assert_int_equal(plain_ir(raw, raw_len + 3, &why), SASL_BAD);
	assert_string_equal(why, "response too long");
	free(raw);
}

static void test_plain_field_limits(void **state)
{
	/* 512-byte identities and a 1024-byte password are the limits. */
	char msg[512 + 1 + 512 + 1 + 1025];
	struct sasl *s;
	const char *challenge, *why, *z, *c, *p;
	char *line;
	size_t len;

	memset(msg, 'z', 512);
	msg[512] = '\0';
	memset(msg + 513, 'c', 512);
	msg[1025] = '\0';
	memset(msg + 1026, 'p', 1024);
	len = 1026 + 1024;
	line = b64(msg, len);
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, line, &challenge, &why), SASL_DONE);
	sasl_credentials(s, &z, &c, &p);
	assert_int_equal(strlen(z), 512);
	assert_int_equal(strlen(c), 512);
	assert_int_equal(strlen(p), 1024);
	sasl_free(&s);
	free(line);

	msg[1026 + 1024] = 'p';
	assert_int_equal(plain_ir(msg, len + 1, &why), SASL_BAD);
	assert_string_equal(why, "password too long");

	/* 513-byte authcid. */
	memset(msg, 0, sizeof(msg));
	memset(msg + 1, 'c', 513);
	memcpy(msg + 515, "pw", 2);
	assert_int_equal(plain_ir(msg, 517, &why), SASL_BAD);
	assert_string_equal(why, "identity too long");
	/* 513-byte authzid. */
	memset(msg, 'z', 513);
	msg[513] = '\0';
	memcpy(msg + 514, "c\0pw", 4);
	assert_int_equal(plain_ir(msg, 518, &why), SASL_BAD);
	assert_string_equal(why, "identity too long");
}

static void test_plain_empty_initial_response(void **state)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why;

	/* "=" is an empty initial response: an empty PLAIN message is bad. */
	assert_int_equal(step(s, "=", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "PLAIN message needs two NUL separators");
	sasl_free(&s);

	/* "=" is only for the initial response; after a challenge it is not
	 * base64. */
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "=", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "invalid base64");
	sasl_free(&s);
}

static void test_cancel(void **state)
{
	const enum sasl_mech mechs[] = { SASL_PLAIN, SASL_LOGIN };

	for (size_t i = 0; i < N_ELEMENTS(mechs); i++) {
		struct sasl *s = sasl_begin(mechs[i]);
		const char *challenge, *why, *z, *c, *p;

		assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
		assert_int_equal(step(s, "*", &challenge, &why), SASL_CANCELLED);
		/* Nothing more after a cancel, and no credentials. */
		assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why),
				 SASL_BAD);
		assert_non_null(why);
		sasl_credentials(s, &z, &c, &p);
		assert_string_equal(c, "");
		assert_string_equal(p, "");
		sasl_free(&s);
	}
}

static void test_cancel_in_login_password(void **state)
{
	struct sasl *s = sasl_begin(SASL_LOGIN);
	const char *challenge, *why;

	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "*", &challenge, &why), SASL_CANCELLED);
	sasl_free(&s);
}

static void test_step_after_done(void **state)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why, *z, *c, *p;

	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_DONE);
	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "authentication exchange already finished");
	/* The credentials are gone once the exchange went bad. */
	sasl_credentials(s, &z, &c, &p);
	assert_string_equal(p, "");
	assert_int_equal(step(s, NULL, &challenge, &why), SASL_BAD);
	sasl_free(&s);
}

static void test_step_after_bad(void **state)
{
	struct sasl *s = sasl_begin(SASL_PLAIN);
	const char *challenge, *why;

	assert_int_equal(step(s, "!!!!", &challenge, &why), SASL_BAD);
	/* A good message after a bad one is still refused. */
	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "authentication exchange already finished");
	sasl_free(&s);
}

static void test_null_line_mid_exchange(void **state)
{
	struct sasl *s = sasl_begin(SASL_LOGIN);
	const char *challenge, *why;

	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, NULL, &challenge, &why), SASL_BAD);
	assert_non_null(why);
	sasl_free(&s);
}

static void test_credentials_before_done(void **state)
{
	struct sasl *s = sasl_begin(SASL_LOGIN);
	const char *challenge, *why, *z, *c, *p;

	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	sasl_credentials(s, &z, &c, &p);
	assert_string_equal(z, "");
	assert_string_equal(c, "");
	assert_string_equal(p, "");
	sasl_free(&s);
}

/* ------------------------------------------------------------------ LOGIN */

static void test_login_without_initial_response(void **state)
{
	struct sasl *s = sasl_begin(SASL_LOGIN);
	const char *challenge, *why;

	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	assert_string_equal(challenge, "VXNlcm5hbWU6");
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	assert_int_equal(step(s, "dGFuc3RhYWZ0YW5zdGFhZg==", &challenge, &why), SASL_DONE);
	expect_credentials(s, "", "tim", "tanstaaftanstaaf");
	sasl_free(&s);
}

static void test_login_with_initial_response(void **state)
{
	struct sasl *s = sasl_begin(SASL_LOGIN);
	const char *challenge, *why;

	/* The initial response carries the user name. */
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_string_equal(challenge, "UGFzc3dvcmQ6");
	assert_int_equal(step(s, "c2VjcmV0", &challenge, &why), SASL_DONE);
	expect_credentials(s, "", "tim", "secret");
	sasl_free(&s);
}

static void test_login_challenges_decode(void **state)
{
	unsigned char out[16];
	ssize_t n;

	n = sasl_base64_decode("VXNlcm5hbWU6", 12, out);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "Username:", 9);
	n = sasl_base64_decode("UGFzc3dvcmQ6", 12, out);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "Password:", 9);
}

static void test_login_bad(void **state)
{
	struct sasl *s;
	const char *challenge, *why;
	char *line;

	/* NUL in the user name. */
	line = b64("ti\0m", 4);
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, line, &challenge, &why), SASL_BAD);
	assert_string_equal(why, "NUL in user name");
	sasl_free(&s);
	free(line);

	/* NUL in the password. */
	line = b64("pass\0word", 9);
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, line, &challenge, &why), SASL_BAD);
	assert_string_equal(why, "NUL in password");
	sasl_free(&s);
	free(line);

	/* Empty user name: "=" as initial response, "" after the prompt. */
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, "=", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "empty user name");
	sasl_free(&s);
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "", &challenge, &why), SASL_BAD);
	sasl_free(&s);

	/* Empty password. */
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "empty password");
	sasl_free(&s);

	/* Bad base64 for the password. */
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, "c2VjcmV0\r\n", &challenge, &why), SASL_BAD);
	assert_string_equal(why, "invalid base64");
	sasl_free(&s);
}

static void test_login_limits(void **state)
{
	char name[513], pass[1025];
	struct sasl *s;
	const char *challenge, *why;
	char *line;

	memset(name, 'u', sizeof(name));
	line = b64(name, sizeof(name));
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, line, &challenge, &why), SASL_BAD);
	assert_string_equal(why, "user name too long");
	sasl_free(&s);
	free(line);

	memset(pass, 'p', sizeof(pass));
	line = b64(pass, sizeof(pass));
	s = sasl_begin(SASL_LOGIN);
	assert_int_equal(step(s, "dGlt", &challenge, &why), SASL_CHALLENGE);
	assert_int_equal(step(s, line, &challenge, &why), SASL_BAD);
	assert_string_equal(why, "password too long");
	sasl_free(&s);
	free(line);
}

/* Exchanges fed many times (ROBUSTNESS.md 22: 10,000 aborted exchanges):
 * each is independent, and the next good one still works. */
static void test_many_aborted_exchanges(void **state)
{
	struct sasl *s;
	const char *challenge, *why;

	for (int i = 0; i < 10000; i++) {
		s = sasl_begin(i % 2 == 0 ? SASL_PLAIN : SASL_LOGIN);
		assert_int_equal(step(s, NULL, &challenge, &why), SASL_CHALLENGE);
		assert_int_equal(step(s, i % 3 == 0 ? "*" : "====", &challenge, &why),
				 i % 3 == 0 ? SASL_CANCELLED : SASL_BAD);
		sasl_free(&s);
	}
	s = sasl_begin(SASL_PLAIN);
	assert_int_equal(step(s, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &challenge, &why), SASL_DONE);
	sasl_free(&s);
}

static void test_free_null(void **state)
{
	struct sasl *s = NULL;

	sasl_free(&s);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_base64_all_bytes_round_trip),
		cmocka_unit_test(test_base64_refused),
		cmocka_unit_test(test_mech_parse),
		cmocka_unit_test(test_plain_initial_response),
		cmocka_unit_test(test_plain_with_authzid),
		cmocka_unit_test(test_plain_without_initial_response),
		cmocka_unit_test(test_plain_bad_messages),
		cmocka_unit_test(test_plain_reasons_do_not_echo),
		cmocka_unit_test(test_plain_robustness_inputs),
		cmocka_unit_test(test_plain_input_limit),
		cmocka_unit_test(test_plain_field_limits),
		cmocka_unit_test(test_plain_empty_initial_response),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cancel_in_login_password),
		cmocka_unit_test(test_step_after_done),
		cmocka_unit_test(test_step_after_bad),
		cmocka_unit_test(test_null_line_mid_exchange),
		cmocka_unit_test(test_credentials_before_done),
		cmocka_unit_test(test_login_without_initial_response),
		cmocka_unit_test(test_login_with_initial_response),
		cmocka_unit_test(test_login_challenges_decode),
		cmocka_unit_test(test_login_bad),
		cmocka_unit_test(test_login_limits),
		cmocka_unit_test(test_many_aborted_exchanges),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
