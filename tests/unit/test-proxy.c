/* Unit tests for the PROXY protocol parser and trusted-network matching. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/common-private.h"

static const unsigned char sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static int parse_str(const char *s, struct proxy_result *r)
{
	return proxy_parse((const unsigned char *)s, strlen(s), r);
}

static void test_v1_tcp4(void **state)
{
	struct proxy_result r;
	const char *h = "PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\nA1 NOOP\r\n";
	char ip[64];

	assert_int_equal(parse_str(h, &r), (int)strlen("PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\n"));
	assert_false(r.local);
	struct sockaddr_in *sin = (struct sockaddr_in *)&r.src;

	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 51234);
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	assert_string_equal(ip, "192.0.2.7");
}

static void test_v1_tcp6_and_unknown(void **state)
{
	struct proxy_result r;
	char ip[64];

	assert_true(parse_str("PROXY TCP6 2001:db8::7 2001:db8::1 4000 993\r\n", &r) > 0);
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r.src;

	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 4000);
	inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
	assert_string_equal(ip, "2001:db8::7");
	assert_true(parse_str("PROXY UNKNOWN\r\n", &r) > 0);
	assert_true(r.local);
}

static void test_v1_incremental_and_bad(void **state)
{
	struct proxy_result r;
	const char *h = "PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\n";

	for (size_t i = 0; i < strlen(h); i++)
		assert_int_equal(proxy_parse((const unsigned char *)h, i, &r), 0);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 192.0.2.1 51234\r\n", &r), -1);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.300 192.0.2.1 1 2\r\n", &r), -1);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 192.0.2.1 65536 2\r\n", &r), -1);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 192.0.2.1 -1 2\r\n", &r), -1);
	assert_int_equal(parse_str("PROXY TCP5 192.0.2.7 192.0.2.1 1 2\r\n", &r), -1);
	assert_int_equal(parse_str("PROXX TCP4", &r), -1);
	assert_int_equal(parse_str("A1 LOGIN", &r), -1);
	/* No CRLF within the 107-byte maximum. */
	char longline[200];

	memset(longline, 'a', sizeof(longline) - 1);
	memcpy(longline, "PROXY ", 6);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(parse_str(longline, &r), -1);
}

static size_t v2_header(unsigned char *out, unsigned cmd, unsigned fam,
			const void *addrs, size_t addrs_len)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)(0x20 | cmd);
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(addrs_len >> 8);
	out[15] = (unsigned char)(addrs_len & 0xFF);
	memcpy(out + 16, addrs, addrs_len);
	return 16 + addrs_len;
}

static void test_v2_ipv4_ipv6_local(void **state)
{
	unsigned char h[128];
	unsigned char a4[12 + 5] = { 198, 51, 100, 9, 192, 0, 2, 1, 0x1F, 0x90, 0, 143,
				     /* a TLV the parser must skip */ 0x04, 0, 2, 'x', 'y' };
	struct proxy_result r;
	size_t n = v2_header(h, 1, 0x11, a4, sizeof(a4));

	for (size_t i = 0; i < n; i++)
		assert_int_equal(proxy_parse(h, i, &r), 0);
	assert_int_equal(proxy_parse(h, n, &r), (int)n);
	struct sockaddr_in *sin = (struct sockaddr_in *)&r.src;

	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(((unsigned char *)&sin->sin_addr)[0], 198);

	unsigned char a6[36] = { 0x20, 0x01, 0x0d, 0xb8 };

	a6[15] = 7;
	a6[32] = 0x01;
	a6[33] = 0x02;
	n = v2_header(h, 1, 0x21, a6, sizeof(a6));
	assert_int_equal(proxy_parse(h, n, &r), (int)n);
	assert_int_equal(r.src.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&r.src)->sin6_port), 0x0102);

	n = v2_header(h, 0, 0x00, "", 0);
	assert_int_equal(proxy_parse(h, n, &r), (int)n);
	assert_true(r.local);
}

static void test_v2_bad(void **state)
{
	unsigned char h[128];
	unsigned char a4[12] = { 0 };
	struct proxy_result r;
	size_t n;

	/* Address block too short for the family. */
	n = v2_header(h, 1, 0x11, a4, 8);
	assert_int_equal(proxy_parse(h, n, &r), -1);
	/* Wrong version. */
	n = v2_header(h, 1, 0x11, a4, sizeof(a4));
	h[12] = 0x11;
	assert_int_equal(proxy_parse(h, n, &r), -1);
	/* Unknown command, UDP family. */
	n = v2_header(h, 2, 0x11, a4, sizeof(a4));
	assert_int_equal(proxy_parse(h, n, &r), -1);
	n = v2_header(h, 1, 0x12, a4, sizeof(a4));
	assert_int_equal(proxy_parse(h, n, &r), -1);
	/* Declared length beyond the bound. */
	n = v2_header(h, 1, 0x11, a4, sizeof(a4));
	h[14] = 0xFF;
	assert_int_equal(proxy_parse(h, n, &r), -1);
	/* Broken signature. */
	n = v2_header(h, 1, 0x11, a4, sizeof(a4));
	h[5] = 'X';
	assert_int_equal(proxy_parse(h, n, &r), -1);
}

static void test_cidr(void **state)
{
	struct sockaddr_storage net;
	unsigned bits;
	struct sockaddr_in in4 = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	assert_int_equal(cidr_parse("10.1.0.0/16", &net, &bits), 0);
	assert_int_equal(bits, 16);
	inet_pton(AF_INET, "10.1.200.3", &in4.sin_addr);
	assert_true(cidr_match(&net, bits, (struct sockaddr *)&in4));
	inet_pton(AF_INET, "10.2.0.1", &in4.sin_addr);
	assert_false(cidr_match(&net, bits, (struct sockaddr *)&in4));
	/* IPv4-mapped IPv6 peers match IPv4 networks. */
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
	assert_true(cidr_match(&net, bits, (struct sockaddr *)&in6));

	assert_int_equal(cidr_parse("2001:db8::/33", &net, &bits), 0);
	inet_pton(AF_INET6, "2001:db8:7fff::1", &in6.sin6_addr);
	assert_true(cidr_match(&net, bits, (struct sockaddr *)&in6));
	inet_pton(AF_INET6, "2001:db8:8000::1", &in6.sin6_addr);
	assert_false(cidr_match(&net, bits, (struct sockaddr *)&in6));

	assert_int_equal(cidr_parse("127.0.0.1", &net, &bits), 0);
	assert_int_equal(bits, 32);
	assert_int_equal(cidr_parse("10.0.0.0/33", &net, &bits), -1);
	assert_int_equal(cidr_parse("10.0.0.0/", &net, &bits), -1);
	assert_int_equal(cidr_parse("10.0.0.0/8x", &net, &bits), -1);
	assert_int_equal(cidr_parse("host.example/8", &net, &bits), -1);
	assert_int_equal(cidr_parse("", &net, &bits), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_and_unknown),
		cmocka_unit_test(test_v1_incremental_and_bad),
		cmocka_unit_test(test_v2_ipv4_ipv6_local),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_cidr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
