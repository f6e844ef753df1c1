/*
 * charset.c — text in a named charset to UTF-8, with glibc's iconv, for
 * RFC 2047 encoded words, RFC 2231 parameters and (later) search of text
 * parts. Unknown charsets and invalid bytes are reported, not guessed:
 * the caller then keeps the raw bytes, as the RFCs allow and as Dovecot
 * does.
 */
#include "mime-private.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

bool mime_utf8_valid(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

int mime_charset_to_utf8(struct buf *out, const char *charset, const void *data, size_t len)
{
	if (strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "utf8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0) {
		if (!mime_utf8_valid(data, len))
			return -1;
		return buf_append(out, data, len) < 0 ? -1 : 0;
	}
	/* Charset names go to iconv_open only when they look like one. */
	for (const char *c = charset; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("-_.:", *c) != NULL))
			return -1;
	if (*charset == '\0' || strlen(charset) > 40)
		return -1;
	iconv_t cd = iconv_open("UTF-8", charset);

	if (cd == (iconv_t)-1)
		return -1;
	size_t start = out->len;
	char *in = (char *)data;
	size_t inleft = len;
	int ret = 0;

	while (inleft > 0) {
		if (buf_reserve(out, inleft * 4 + 16) < 0) {
			ret = -1;
			break;
		}
		char *o = (char *)out->data + out->len;
		size_t oleft = out->cap - out->len - 1;
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);

		out->len = (size_t)(o - (char *)out->data);
		if (r == (size_t)-1 && errno != E2BIG) {
			ret = -1;
			break;
		}
	}
	iconv_close(cd);
	if (ret < 0)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return ret;
}
