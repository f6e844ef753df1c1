/*
 * Unit tests for the wire format between a daemon and its auth worker
 * (auth/worker-private.h): round trips, and frames a broken or hostile
 * peer could send — bad lengths, truncation, fields over their limits or
 * with NULs inside, trailing bytes — all refused without reading past the
 * frame. The end-to-end behaviour is in tests/protocol/test_auth.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth/worker-private.h"

static void fill_request(struct auth_wire_request *req)
{
	memset(req, 0, sizeof(*req));
	req->id = 0x01020304;
	strcpy(req->mech, "PLAIN");
	strcpy(req->authzid, "");
	strcpy(req->authcid, "alice@example.org");
	strcpy(req->password, "pa ss\tw\xc3\xb6rd");
	strcpy(req->remote_ip, "2001:db8::1");
}

static void fill_reply(struct auth_wire_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->id = 0xfffffffe;
	reply->result = AUTH_OK;
	strcpy(reply->master, "admin");
	strcpy(reply->detail, "");
	strcpy(reply->user.name, "bob");
	strcpy(reply->user.mail_dir, "/var/mail/bob");
	reply->user.enabled = true;
	reply->user.quota_bytes = UINT64_MAX;
	reply->user.quota_messages = 12345;
	reply->user.created = -1;
	reply->user.updated = INT64_MAX;
}

static void test_request_round_trip(void **state)
{
	struct auth_wire_request in, out;
	struct buf b;

	fill_request(&in);
	buf_init(&b, 1 << 20);
	assert_int_equal(auth__request_encode(&in, &b), 0);
	assert_int_equal(auth__frame_length(b.data, b.len), (ssize_t)b.len);
	assert_int_equal(auth__request_decode(b.data, b.len, &out), 0);
	assert_int_equal(out.id, in.id);
	assert_string_equal(out.mech, in.mech);
	assert_string_equal(out.authzid, in.authzid);
	assert_string_equal(out.authcid, in.authcid);
	assert_string_equal(out.password, in.password);
	assert_string_equal(out.remote_ip, in.remote_ip);
	/* A request is not a reply. */
	struct auth_wire_reply reply;

	assert_int_equal(auth__reply_decode(b.data, b.len, &reply), -1);
	buf_release(&b);
}

static void test_reply_round_trip(void **state)
{
	struct auth_wire_reply in, out;
	struct buf b;

	fill_reply(&in);
	buf_init(&b, 1 << 20);
	assert_int_equal(auth__reply_encode(&in, &b), 0);
	assert_int_equal(auth__reply_decode(b.data, b.len, &out), 0);
	assert_int_equal(out.id, in.id);
	assert_int_equal(out.result, AUTH_OK);
	assert_string_equal(out.master, "admin");
	assert_string_equal(out.user.name, "bob");
	assert_string_equal(out.user.mail_dir, "/var/mail/bob");
	assert_true(out.user.enabled);
	assert_true(out.user.quota_bytes == UINT64_MAX);
	assert_true(out.user.quota_messages == 12345);
	assert_true(out.user.created == -1);
	assert_true(out.user.updated == INT64_MAX);
	buf_release(&b);
}

/* The largest request and reply fit the frame limit. */
static void test_limits_fit(void **state)
{
	struct auth_wire_request req;
	struct auth_wire_reply reply;
	struct buf b;

	memset(&req, 0, sizeof(req));
	memset(req.mech, 'M', AUTH_WIRE_MECH_MAX);
	memset(req.authzid, 'z', AUTH_WIRE_LOGIN_MAX);
	memset(req.authcid, 'c', AUTH_WIRE_LOGIN_MAX);
	memset(req.password, 'p', AUTH_WIRE_PASSWORD_MAX);
	memset(req.remote_ip, '1', AUTH_WIRE_IP_MAX);
	buf_init(&b, 1 << 20);
	assert_int_equal(auth__request_encode(&req, &b), 0);
	assert_true(b.len <= AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX);
	assert_int_equal(auth__request_decode(b.data, b.len, &req), 0);
	assert_int_equal(strlen(req.password), AUTH_WIRE_PASSWORD_MAX);
	buf_clear(&b);

	fill_reply(&reply);
	memset(reply.master, 'm', AUTH_NAME_MAX);
	memset(reply.detail, 'd', AUTH_WIRE_DETAIL_MAX);
	memset(reply.user.name, 'n', AUTH_NAME_MAX);
	memset(reply.user.mail_dir, '/', AUTH_WIRE_PATH_MAX);
	assert_int_equal(auth__reply_encode(&reply, &b), 0);
	assert_true(b.len <= AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX);
	assert_int_equal(auth__reply_decode(b.data, b.len, &reply), 0);
	buf_release(&b);
}

/* A field over its limit is not encoded (nothing appended). */
static void test_encode_refuses_oversized(void **state)
{
	struct auth_wire_request *req = calloc(1, sizeof(*req) + 16);
	struct buf b;

	fill_request(req);
	buf_init(&b, 1 << 20);
	memset(req->password, 'p', AUTH_WIRE_PASSWORD_MAX);
	assert_int_equal(auth__request_encode(req, &b), 0);
	buf_clear(&b);
	/* One byte more: the terminator's place holds a character. */
	req->password[AUTH_WIRE_PASSWORD_MAX] = 'p';
	assert_int_equal(auth__request_encode(req, &b), -1);
	assert_int_equal(b.len, 0);
	buf_release(&b);
	free(req);
}

/* Fed one byte at a time, a frame is "need more" until it is whole. */
static void test_frame_length_incremental(void **state)
{
	struct auth_wire_request req;
	struct buf b;

	fill_request(&req);
	buf_init(&b, 1 << 20);
	auth__request_encode(&req, &b);
	auth__request_encode(&req, &b); /* two frames back to back */
	size_t one = b.len / 2;

	for (size_t i = 0; i < one; i++)
		assert_int_equal(auth__frame_length(b.data, i), 0);
	for (size_t i = one; i <= b.len; i++)
		assert_int_equal(auth__frame_length(b.data, i), (ssize_t)one);
	buf_release(&b);
}

static void test_frame_length_bounds(void **state)
{
	unsigned char f[8] = { 0 };

	/* Shorter than a header's worth of body, or over the maximum. */
	assert_int_equal(auth__frame_length(f, sizeof(f)), -1);
	f[3] = AUTH_WIRE_HEADER - 4;
	assert_int_equal(auth__frame_length(f, sizeof(f)), 0);
	f[0] = 0xff;
	assert_int_equal(auth__frame_length(f, sizeof(f)), -1);
	f[0] = 0;
	f[2] = (AUTH_WIRE_BODY_MAX + 1) >> 8;
	f[3] = (AUTH_WIRE_BODY_MAX + 1) & 0xff;
	assert_int_equal(auth__frame_length(f, sizeof(f)), -1);
}

/* Every truncation of a valid body, with its length field adjusted to
 * match, is refused; so is a trailing byte. */
static void test_decode_truncated_and_trailing(void **state)
{
	struct auth_wire_request req;
	struct auth_wire_reply reply;
	struct buf b;

	fill_request(&req);
	buf_init(&b, 1 << 20);
	auth__request_encode(&req, &b);
	size_t full = b.len;

	for (size_t n = AUTH_WIRE_HEADER; n < full; n++) {
		unsigned char *copy = malloc(n);

		memcpy(copy, b.data, n);
		copy[0] = (unsigned char)((n - 4) >> 24);
		copy[1] = (unsigned char)((n - 4) >> 16);
		copy[2] = (unsigned char)((n - 4) >> 8);
		copy[3] = (unsigned char)(n - 4);
		assert_int_equal(auth__request_decode(copy, n, &req), -1);
		free(copy);
	}
	unsigned char *longer = malloc(full + 1);

	memcpy(longer, b.data, full);
	longer[full] = 0;
	longer[3]++;
	assert_int_equal(auth__request_decode(longer, full + 1, &req), -1);
	/* A length field that disagrees with the frame given. */
	assert_int_equal(auth__request_decode(b.data, full - 1, &req), -1);
	free(longer);
	buf_clear(&b);

	fill_reply(&reply);
	auth__reply_encode(&reply, &b);
	full = b.len;
	for (size_t n = AUTH_WIRE_HEADER; n < full; n++) {
		unsigned char *copy = malloc(n);

		memcpy(copy, b.data, n);
		copy[3] = (unsigned char)(n - 4);
		copy[2] = (unsigned char)((n - 4) >> 8);
		assert_int_equal(auth__reply_decode(copy, n, &reply), -1);
		free(copy);
	}
	buf_release(&b);
}

/* Build a request frame by hand with one string field's length/bytes. */
static size_t raw_request(unsigned char *out, const unsigned char *field, size_t flen,
			  uint16_t declared)
{
	size_t n = AUTH_WIRE_HEADER;

	out[4] = AUTH_WIRE_REQUEST;
	memset(out + 5, 0, 4);
	/* mech = declared/field; then four empty strings. */
	out[n++] = (unsigned char)(declared >> 8);
	out[n++] = (unsigned char)declared;
	memcpy(out + n, field, flen);
	n += flen;
	for (int i = 0; i < 4; i++) {
		out[n++] = 0;
		out[n++] = 0;
	}
	out[0] = out[1] = 0;
	out[2] = (unsigned char)((n - 4) >> 8);
	out[3] = (unsigned char)(n - 4);
	return n;
}

static void test_decode_hostile_fields(void **state)
{
	unsigned char frame[256];
	struct auth_wire_request req;
	size_t n;

	n = raw_request(frame, (const unsigned char *)"PLAIN", 5, 5);
	assert_int_equal(auth__request_decode(frame, n, &req), 0);
	assert_string_equal(req.mech, "PLAIN");
	/* NUL inside a string. */
	n = raw_request(frame, (const unsigned char *)"PL\0IN", 5, 5);
	assert_int_equal(auth__request_decode(frame, n, &req), -1);
	/* Declared longer than the field's limit, even with the bytes there. */
	unsigned char big[AUTH_WIRE_MECH_MAX + 1];

	memset(big, 'M', sizeof(big));
	n = raw_request(frame, big, sizeof(big), sizeof(big));
	assert_int_equal(auth__request_decode(frame, n, &req), -1);
	/* Declared longer than what follows. */
	n = raw_request(frame, (const unsigned char *)"PLAIN", 5, 0xffff);
	assert_int_equal(auth__request_decode(frame, n, &req), -1);
	/* Wrong type. */
	n = raw_request(frame, (const unsigned char *)"PLAIN", 5, 5);
	frame[4] = AUTH_WIRE_REPLY;
	assert_int_equal(auth__request_decode(frame, n, &req), -1);
}

static void test_decode_bad_result(void **state)
{
	struct auth_wire_reply reply;
	struct buf b;

	fill_reply(&reply);
	buf_init(&b, 1 << 20);
	auth__reply_encode(&reply, &b);
	b.data[AUTH_WIRE_HEADER] = AUTH_LIMITED + 1;
	assert_int_equal(auth__reply_decode(b.data, b.len, &reply), -1);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_limits_fit),
		cmocka_unit_test(test_encode_refuses_oversized),
		cmocka_unit_test(test_frame_length_incremental),
		cmocka_unit_test(test_frame_length_bounds),
		cmocka_unit_test(test_decode_truncated_and_trailing),
		cmocka_unit_test(test_decode_hostile_fields),
		cmocka_unit_test(test_decode_bad_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
