/*
 * rfc2047.c — header values decoded to UTF-8: RFC 2047 encoded words
 * (B and Q, any charset iconv knows, language suffix ignored, whitespace
 * between adjacent encoded words dropped) and RFC 2231 extended parameter
 * values. For the index's search and sort columns; ENVELOPE and
 * BODYSTRUCTURE keep the raw values.
 *
 * An encoded word that cannot be decoded (unknown charset, bad encoding,
 * invalid bytes) is kept as it stands, as Dovecot does. Raw 8-bit bytes
 * outside encoded words are taken as UTF-8 when valid, else as
 * ISO-8859-1, so the result is always valid UTF-8.
 */
#include "mime-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decode one encoded word "=?cs?e?text?=" starting at s: its length, or 0
 * if it is not one (or cannot be decoded). */
static size_t decode_word(struct buf *out, const char *s)
{
	if (s[0] != '=' || s[1] != '?')
		return 0;
	const char *cs = s + 2;
	const char *q1 = strchr(cs, '?');

	if (q1 == NULL || q1 == cs || q1[1] == '\0' || q1[2] != '?')
		return 0;
	char enc = q1[1];
	const char *text = q1 + 3;
	const char *end = strstr(text, "?=");

	if (end == NULL)
		return 0;
	for (const char *c = text; c < end; c++)
		if (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
			return 0;
	char charset[48];
	size_t cslen = (size_t)(q1 - cs);

	if (cslen >= sizeof(charset))
		return 0;
	memcpy(charset, cs, cslen);
	charset[cslen] = '\0';
	/* RFC 2231 §5: charset*language. */
	char *star = strchr(charset, '*');

	if (star != NULL)
		*star = '\0';
	struct store_decoder d;
	struct buf raw;

	buf_init(&raw, MIME_FIELD_MAX);
	if (enc == 'B' || enc == 'b') {
		store_decoder_init(&d, STORE_CTE_BASE64);
		store_decoder_feed(&d, &raw, text, (size_t)(end - text));
		store_decoder_finish(&d, &raw);
	} else if (enc == 'Q' || enc == 'q') {
		/* Q: "_" is a space; otherwise like quoted-printable. */
		store_decoder_init(&d, STORE_CTE_QP);
		for (const char *c = text; c < end; c++)
			store_decoder_feed(&d, &raw, *c == '_' ? " " : c, 1);
		store_decoder_finish(&d, &raw);
	} else {
		buf_release(&raw);
		return 0;
	}
	int ret = d.errors ? -1 :
		mime_charset_to_utf8(out, charset, raw.data != NULL ? raw.data : (unsigned char *)"",
				     raw.len);
	buf_release(&raw);
	return ret < 0 ? 0 : (size_t)(end + 2 - s);
}

/* Raw bytes: UTF-8 when valid, else ISO-8859-1. */
static void append_raw(struct buf *out, const char *s, size_t len)
{
	if (mime_utf8_valid(s, len) || mime_charset_to_utf8(out, "ISO-8859-1", s, len) < 0)
		buf_append(out, s, len);
}

static bool all_ws(const char *s, const char *end)
{
	for (; s < end; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

char *mime_decode_header(struct arena *a, const char *value)
{
	struct buf out, word;
	const char *s = value, *text = value;
	bool after_word = false;

	buf_init(&out, MIME_FIELD_MAX * 2);
	buf_init(&word, MIME_FIELD_MAX * 2);
	while (*s != '\0') {
		if (s[0] != '=' || s[1] != '?') {
			s++;
			continue;
		}
		buf_clear(&word);
		size_t n = decode_word(&word, s);

		if (n == 0) {
			s++;
			continue;
		}
		/* Whitespace between two encoded words is not shown. */
		if (!after_word || !all_ws(text, s))
			append_raw(&out, text, (size_t)(s - text));
		buf_append(&out, word.data, word.len);
		s += n;
		text = s;
		after_word = true;
	}
	append_raw(&out, text, (size_t)(s - text));
	buf_release(&word);
	/* Unfold: CR and LF removed. */
	size_t n = 0;

	for (size_t i = 0; i < out.len; i++)
		if (out.data[i] != '\r' && out.data[i] != '\n')
			out.data[n++] = out.data[i];
	char *res = arena_strndup(a, out.data != NULL ? (char *)out.data : "", n);

	buf_release(&out);
	return res;
}

char *mime_decode_rfc2231(struct arena *a, const char *value)
{
	const char *q1 = strchr(value, '\'');
	const char *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;

	if (q2 == NULL)
		return NULL;
	char charset[48];
	size_t cslen = (size_t)(q1 - value);

	if (cslen >= sizeof(charset))
		return NULL;
	memcpy(charset, value, cslen);
	charset[cslen] = '\0';
	struct buf raw, out;

	buf_init(&raw, MIME_FIELD_MAX);
	buf_init(&out, MIME_FIELD_MAX * 2);
	for (const char *c = q2 + 1; *c != '\0'; c++) {
		unsigned char b = (unsigned char)*c;

		if (*c == '%' && c[1] != '\0' && c[2] != '\0') {
			char hex[3] = { c[1], c[2], '\0' };
			char *end;
			unsigned long v = strtoul(hex, &end, 16);

			if (*end == '\0') {
				b = (unsigned char)v;
				c += 2;
			}
		}
		buf_append(&raw, &b, 1);
	}
	char *res = NULL;

	if (raw.len == 0)
		res = arena_strdup(a, "");
	else if (mime_charset_to_utf8(&out, cslen > 0 ? charset : "us-ascii", raw.data, raw.len) == 0)
		res = arena_strndup(a, (char *)out.data, out.len);
	buf_release(&raw);
	buf_release(&out);
	return res;
}
