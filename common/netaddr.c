/*
 * netaddr.c — the address syntax of tern.conf, shared by the parser that
 * validates it and the server that binds and matches it: listen addresses
 * ("192.0.2.1:143", "[2001:db8::1]:993", "unix:/run/tern/lmtp.sock") and
 * networks ("10.0.0.0/8", "2001:db8::/32", a bare address).
 */
#include "common-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static int parse_port(const char *s)
{
	int v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

const char *netaddr_parse_inet(const char *text, struct sockaddr_storage *ss_r)
{
	static const char expected[] = "expected IPv4:port, [IPv6]:port or unix:/path";
	char host[INET6_ADDRSTRLEN];
	const char *port;
	size_t hlen;
	int family;

	memset(ss_r, 0, sizeof(*ss_r));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return expected;
		family = AF_INET6;
		port = close + 2;
		text++;
		hlen = (size_t)(close - text);
	} else {
		const char *colon = strrchr(text, ':');

		if (colon == NULL)
			return expected;
		family = AF_INET;
		port = colon + 1;
		hlen = (size_t)(colon - text);
	}
	if (hlen >= sizeof(host))
		return family == AF_INET ? "not an IPv4 address" : "not an IPv6 address";
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	int p = parse_port(port);

	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss_r;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "not an IPv4 address (IPv6 goes in brackets)";
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)(p < 0 ? 0 : p));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss_r;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return "not an IPv6 address";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)(p < 0 ? 0 : p));
	}
	if (p < 0)
		return "the port must be 1..65535";
	return NULL;
}

const char *netaddr_check_listen(const char *text)
{
	struct sockaddr_storage ss;

	if (strncmp(text, "unix:", 5) == 0) {
		size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

		if (text[5] != '/')
			return "a unix socket path must be absolute";
		if (strlen(text + 5) > max)
			return "unix socket path too long";
		return NULL;
	}
	return netaddr_parse_inet(text, &ss);
}

int cidr_parse(const char *text, struct sockaddr_storage *net_r, unsigned *bits_r)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned max_bits;

	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	memset(net_r, 0, sizeof(*net_r));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)net_r)->sin_addr) == 1) {
		net_r->ss_family = AF_INET;
		max_bits = 32;
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)net_r)->sin6_addr) == 1) {
		net_r->ss_family = AF_INET6;
		max_bits = 128;
	} else {
		return -1;
	}
	*bits_r = max_bits;
	if (slash != NULL) {
		const char *p = slash + 1;
		unsigned bits = 0;

		if (*p == '\0' || strlen(p) > 3)
			return -1;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max_bits)
			return -1;
		*bits_r = bits;
	}
	return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));

	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool cidr_match(const struct sockaddr_storage *net, unsigned bits, const struct sockaddr *addr)
{
	const unsigned char *a;
	struct in_addr mapped;

	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;

		if (net->ss_family == AF_INET6)
			return prefix_match((const unsigned char *)&((const struct sockaddr_in6 *)net)->sin6_addr,
					    sin6->sin6_addr.s6_addr, bits);
		if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return false;
		memcpy(&mapped, &sin6->sin6_addr.s6_addr[12], 4);
		a = (const unsigned char *)&mapped;
	} else if (addr->sa_family == AF_INET) {
		if (net->ss_family != AF_INET)
			return false;
		a = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
	} else {
		return false;
	}
	if (net->ss_family != AF_INET)
		return false;
	return prefix_match((const unsigned char *)&((const struct sockaddr_in *)net)->sin_addr,
			    a, bits);
}
