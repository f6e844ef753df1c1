/*
 * proxy.c — the PROXY protocol header that a trusted front proxy (HAProxy,
 * nginx) sends before anything else, carrying the real client address.
 * Version 1 is one text line of at most 107 bytes; version 2 is a binary
 * header of 16 bytes plus addresses and TLVs. Only TCP over IPv4/IPv6 is
 * taken; LOCAL (v2) and UNKNOWN (v1) keep the real peer address.
 */
#include "common-private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAX 107

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* A decimal port 0..65535 without sign or leading junk. */
static int parse_port(const char *s, uint16_t *port_r)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

static int parse_v1(const unsigned char *data, size_t len, struct proxy_result *r)
{
	const unsigned char *crlf = NULL;

	for (size_t i = 0; i + 1 < len && i < V1_MAX; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n') {
			crlf = data + i;
			break;
		}
	}
	if (crlf == NULL)
		return len >= V1_MAX ? -1 : 0;
	size_t line_len = (size_t)(crlf - data);
	char line[V1_MAX + 1];

	memcpy(line, data, line_len);
	line[line_len] = '\0';
	if (strlen(line) != line_len)
		return -1; /* NUL inside */

	char *fields[6];
	size_t n = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if (n == N_ELEMENTS(fields))
			return -1;
		fields[n++] = tok;
	}
	if (n < 2 || strcmp(fields[0], "PROXY") != 0)
		return -1;
	if (strcmp(fields[1], "UNKNOWN") == 0) {
		r->local = true;
		return (int)line_len + 2;
	}
	if (n != 6)
		return -1;
	uint16_t sport, dport;

	if (parse_port(fields[4], &sport) < 0 || parse_port(fields[5], &dport) < 0)
		return -1;
	memset(&r->src, 0, sizeof(r->src));
	if (strcmp(fields[1], "TCP4") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&r->src;
		struct in_addr dst;

		if (inet_pton(AF_INET, fields[2], &sin->sin_addr) != 1 ||
		    inet_pton(AF_INET, fields[3], &dst) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(sport);
	} else if (strcmp(fields[1], "TCP6") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->src;
		struct in6_addr dst;

		if (inet_pton(AF_INET6, fields[2], &sin6->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, fields[3], &dst) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(sport);
	} else {
		return -1;
	}
	r->local = false;
	return (int)line_len + 2;
}

static int parse_v2(const unsigned char *data, size_t len, struct proxy_result *r)
{
	if (len < 16)
		return 0;
	unsigned ver_cmd = data[12];
	unsigned fam = data[13];
	size_t body = ((size_t)data[14] << 8) | data[15];

	if ((ver_cmd >> 4) != 2)
		return -1;
	if (16 + body > PROXY_MAX_HEADER)
		return -1;
	if (len < 16 + body)
		return 0;
	const unsigned char *p = data + 16;

	memset(&r->src, 0, sizeof(r->src));
	switch (ver_cmd & 0x0F) {
	case 0x0: /* LOCAL: health check by the proxy itself */
		r->local = true;
		return (int)(16 + body);
	case 0x1: /* PROXY */
		break;
	default:
		return -1;
	}
	switch (fam) {
	case 0x11: { /* TCP over IPv4: src, dst, sport, dport */
		struct sockaddr_in *sin = (struct sockaddr_in *)&r->src;

		if (body < 12)
			return -1;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, p, 4);
		memcpy(&sin->sin_port, p + 8, 2);
		break;
	}
	case 0x21: { /* TCP over IPv6 */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->src;

		if (body < 36)
			return -1;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, p, 16);
		memcpy(&sin6->sin6_port, p + 32, 2);
		break;
	}
	case 0x00: /* UNSPEC */
		r->local = true;
		return (int)(16 + body);
	default:
		return -1; /* UDP, unix: not for a mail service */
	}
	r->local = false;
	return (int)(16 + body);
}

int proxy_parse(const unsigned char *data, size_t len, struct proxy_result *r)
{
	if (len == 0)
		return 0;
	if (data[0] == 'P') {
		static const char v1_prefix[] = "PROXY ";
		size_t n = len < 6 ? len : 6;

		if (memcmp(data, v1_prefix, n) != 0)
			return -1;
		return parse_v1(data, len, r);
	}
	size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

	if (memcmp(data, v2_sig, n) != 0)
		return -1;
	return parse_v2(data, len, r);
}
