/*
 * utf8.c — decoding one UTF-8 sequence as RFC 3629 defines it, for the
 * places that must tell valid UTF-8 from anything else: mailbox names
 * (storage/names.c) and ternctl's JSON strings (ctl/output.c). One
 * definition, so that what one accepts the other does too.
 */
#include "common.h"

int utf8_decode(const void *s, size_t n, uint32_t *cp_r)
{
	const unsigned char *p = s;
	unsigned char c = p[0];
	/* The range of the second byte; later ones are always 0x80..0xbf. */
	unsigned char lo = 0x80, hi = 0xbf;
	uint32_t cp;
	int len;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;      /* overlong */
		else if (c == 0xed)
			hi = 0x9f;      /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;      /* overlong */
		else if (c == 0xf4)
			hi = 0x8f;      /* above U+10FFFF */
	} else {
		return -1;
	}
	if (n < (size_t)len)
		return -1;
	for (int i = 1; i < len; i++) {
		if (p[i] < lo || p[i] > hi)
			return -1;
		lo = 0x80;
		hi = 0xbf;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*cp_r = cp;
	return len;
}
