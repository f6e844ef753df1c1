/*
 * decode.c — streaming content-transfer-encoding decoders (RFC 2045
 * base64 and quoted-printable), for FETCH BINARY and for indexing text
 * parts. Input comes in pieces of any size; a base64 quantum or a QP
 * escape split across pieces is carried over. Invalid input is skipped
 * (and noted in d->errors), never fatal: mail in the wild is often broken.
 */
#include "mime-private.h"

#include <string.h>
#include <strings.h>

enum mime_cte mime_cte_parse(const char *value)
{
	if (value == NULL)
		return MIME_CTE_IDENTITY;
	while (*value == ' ' || *value == '\t')
		value++;
	if (strncasecmp(value, "base64", 6) == 0)
		return MIME_CTE_BASE64;
	if (strncasecmp(value, "quoted-printable", 16) == 0)
		return MIME_CTE_QP;
	return MIME_CTE_IDENTITY;
}

void mime_decoder_init(struct mime_decoder *d, enum mime_cte cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64_feed(struct mime_decoder *d, struct buf *out, const unsigned char *s, size_t len)
{
	unsigned char tmp[3 * 256];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=') {
			/* Padding: the quantum so far is complete. */
			if (d->npending == 2)
				tmp[n++] = (unsigned char)(d->pending[0] << 2 | d->pending[1] >> 4);
			else if (d->npending == 3) {
				tmp[n++] = (unsigned char)(d->pending[0] << 2 | d->pending[1] >> 4);
				tmp[n++] = (unsigned char)(d->pending[1] << 4 | d->pending[2] >> 2);
			} else if (d->npending == 1) {
				d->errors = true;
			}
			d->npending = 0;
		} else {
			int v = base64_value(s[i], '/');

			if (v < 0) {
				if (s[i] != '\r' && s[i] != '\n' && s[i] != ' ' && s[i] != '\t')
					d->errors = true;
				continue;
			}
			d->pending[d->npending++] = (unsigned char)v;
			if (d->npending == 4) {
				tmp[n++] = (unsigned char)(d->pending[0] << 2 | d->pending[1] >> 4);
				tmp[n++] = (unsigned char)(d->pending[1] << 4 | d->pending[2] >> 2);
				tmp[n++] = (unsigned char)(d->pending[2] << 6 | d->pending[3]);
				d->npending = 0;
			}
		}
		if (n > sizeof(tmp) - 3) {
			if (buf_append(out, tmp, n) < 0)
				return BUF_ETOOBIG;
			n = 0;
		}
	}
	return n > 0 && buf_append(out, tmp, n) < 0 ? BUF_ETOOBIG : 0;
}

/* QP: "=XX" is a byte, "=" at a line end is a soft break, and trailing
 * whitespace on a line is dropped (RFC 2045 §6.7 rule 3). Whitespace is
 * held in pending until the next non-blank byte or line end decides. */
static int qp_feed(struct mime_decoder *d, struct buf *out, const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (d->npending > 0 && d->pending[0] == '=') {
			if (d->npending == 1) {
				if (c == '\r') {
					d->qp_soft_cr = true;
					continue;
				}
				if (c == '\n') {
					d->npending = 0;
					d->qp_soft_cr = false;
					continue;
				}
				if (d->qp_soft_cr || (c == ' ' || c == '\t')) {
					/* "=" + whitespace up to the line end: soft. */
					if (c == ' ' || c == '\t')
						continue;
					d->qp_soft_cr = false;
				}
				d->pending[d->npending++] = c;
				continue;
			}
			int hi = hex_value(d->pending[1]), lo = hex_value(c);

			d->npending = 0;
			if (hi < 0 || lo < 0) {
				/* Not an escape: kept as it was (as Dovecot). */
				d->errors = true;
				unsigned char raw[3] = { '=', d->pending[1], c };

				if (buf_append(out, raw, 3) < 0)
					return BUF_ETOOBIG;
				continue;
			}
			unsigned char b = (unsigned char)(hi << 4 | lo);

			if (buf_append(out, &b, 1) < 0)
				return BUF_ETOOBIG;
			continue;
		}
		if (c == '=') {
			d->npending = 1;
			d->pending[0] = '=';
			d->qp_soft_cr = false;
			continue;
		}
		if (buf_append(out, &c, 1) < 0)
			return BUF_ETOOBIG;
	}
	return 0;
}

int mime_decoder_feed(struct mime_decoder *d, struct buf *out, const void *data, size_t len)
{
	switch (d->cte) {
	case MIME_CTE_BASE64:
		return b64_feed(d, out, data, len);
	case MIME_CTE_QP:
		return qp_feed(d, out, data, len);
	case MIME_CTE_IDENTITY:
		break;
	}
	return buf_append(out, data, len) < 0 ? BUF_ETOOBIG : 0;
}

int mime_decoder_finish(struct mime_decoder *d, struct buf *out)
{
	int ret = 0;

	if (d->cte == MIME_CTE_BASE64 && d->npending > 1) {
		/* Missing padding: decode what there is. */
		ret = b64_feed(d, out, (const unsigned char *)"==", 4 - d->npending);
	} else if (d->cte == MIME_CTE_QP && d->npending == 2) {
		d->errors = true;
		ret = buf_append(out, d->pending, 2) < 0 ? BUF_ETOOBIG : 0;
	}
	d->npending = 0;
	return ret;
}
