/*
 * decode.c — streaming content-transfer-encoding decoders (RFC 2045
 * base64 and quoted-printable), for FETCH BINARY and for indexing text
 * parts: store_decoder in storage.h, which says what they do with broken
 * input. The output is made in a small array and appended in batches.
 */
#include "mime-private.h"

#include <string.h>
#include <strings.h>

/* QP states: what the bytes held so far began. */
enum {
	QP_TEXT,
	QP_CR,          /* "\r" */
	QP_EQ,          /* "=" */
	QP_EQ_HEX,      /* "=X", X in hex1 */
	QP_EQ_WS,       /* "=" and whitespace (dropped: a soft break is likely) */
	QP_EQ_CR,       /* "=" [whitespace] "\r" */
};

/* The most one input byte can add to the batch (held whitespace, then a
 * held "\r" or "=X", then itself as CRLF). */
#define STEP_MAX (STORE_DECODER_WS_MAX + 4)

struct out_batch {
	unsigned char data[4096];
	size_t len;
};

enum store_cte mime_cte_parse(const char *value)
{
	if (value == NULL)
		return STORE_CTE_IDENTITY;
	while (*value == ' ' || *value == '\t')
		value++;
	if (strncasecmp(value, "base64", 6) == 0)
		return STORE_CTE_BASE64;
	if (strncasecmp(value, "quoted-printable", 16) == 0)
		return STORE_CTE_QP;
	return STORE_CTE_IDENTITY;
}

void store_decoder_init(struct store_decoder *d, enum store_cte cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
	d->qs = QP_TEXT;
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

/* Append the batch to out once it may not hold another step (or always
 * when force). */
static int batch_flush(struct out_batch *b, struct buf *out, bool force)
{
	if (!force && b->len + STEP_MAX <= sizeof(b->data))
		return 0;
	int ret = b->len > 0 && buf_append(out, b->data, b->len) < 0 ? BUF_ETOOBIG : 0;

	b->len = 0;
	return ret;
}

static void put(struct out_batch *b, unsigned char c)
{
	b->data[b->len++] = c;
}

/* The bytes of the quantum so far, as if padding followed. */
static void b64_pad(struct store_decoder *d, struct out_batch *b)
{
	if (d->nq >= 2)
		put(b, (unsigned char)(d->q[0] << 2 | d->q[1] >> 4));
	if (d->nq == 3)
		put(b, (unsigned char)(d->q[1] << 4 | d->q[2] >> 2));
	d->nq = 0;
}

static int b64_feed(struct store_decoder *d, struct buf *out, const unsigned char *in, size_t n)
{
	struct out_batch b;

	b.len = 0;
	for (size_t i = 0; i < n; i++) {
		int v;

		if (in[i] == '=') {
			/* Padding completes the quantum so far. */
			if (d->nq == 1)
				d->errors = true;
			b64_pad(d, &b);
		} else if ((v = base64_value(in[i], '/')) < 0) {
			if (in[i] != '\r' && in[i] != '\n' && in[i] != ' ' && in[i] != '\t')
				d->errors = true;
			continue;
		} else {
			d->q[d->nq++] = (unsigned char)v;
			if (d->nq == 4) {
				put(&b, (unsigned char)(d->q[0] << 2 | d->q[1] >> 4));
				put(&b, (unsigned char)(d->q[1] << 4 | d->q[2] >> 2));
				put(&b, (unsigned char)(d->q[2] << 6 | d->q[3]));
				d->nq = 0;
			}
		}
		if (batch_flush(&b, out, false) < 0)
			return BUF_ETOOBIG;
	}
	return batch_flush(&b, out, true);
}

static void qp_flush_ws(struct store_decoder *d, struct out_batch *b)
{
	memcpy(b->data + b->len, d->ws, d->nws);
	b->len += d->nws;
	d->nws = 0;
}

/* A line end: whitespace before it is transport padding (RFC 2045 §6.7
 * rule 3) and the line end is CRLF whatever it was. */
static void qp_line_end(struct store_decoder *d, struct out_batch *b)
{
	d->nws = 0;
	put(b, '\r');
	put(b, '\n');
}

/* One byte of QP in state d->qs. */
static void qp_byte(struct store_decoder *d, struct out_batch *b, unsigned char c)
{
again:
	switch (d->qs) {
	case QP_TEXT:
		if (c == '=') {
			qp_flush_ws(d, b);
			d->qs = QP_EQ;
		} else if (c == ' ' || c == '\t') {
			if (d->nws == sizeof(d->ws))
				qp_flush_ws(d, b);
			d->ws[d->nws++] = c;
		} else if (c == '\r') {
			d->qs = QP_CR;
		} else if (c == '\n') {
			qp_line_end(d, b);
		} else {
			qp_flush_ws(d, b);
			put(b, c);
		}
		break;
	case QP_CR:
		d->qs = QP_TEXT;
		if (c == '\n') {
			qp_line_end(d, b);
			break;
		}
		/* A bare CR is text. */
		qp_flush_ws(d, b);
		put(b, '\r');
		goto again;
	case QP_EQ:
		if (hex_value(c) >= 0) {
			d->hex1 = c;
			d->qs = QP_EQ_HEX;
		} else if (c == ' ' || c == '\t') {
			d->qs = QP_EQ_WS;
		} else if (c == '\r') {
			d->qs = QP_EQ_CR;
		} else if (c == '\n') {
			d->qs = QP_TEXT;        /* soft line break */
		} else {
			/* Not an escape: "=" as it was (RFC 2045 §6.7 note 2). */
			d->errors = true;
			put(b, '=');
			d->qs = QP_TEXT;
			goto again;
		}
		break;
	case QP_EQ_HEX:
		d->qs = QP_TEXT;
		if (hex_value(c) >= 0) {
			put(b, (unsigned char)(hex_value(d->hex1) << 4 | hex_value(c)));
			break;
		}
		d->errors = true;
		put(b, '=');
		put(b, d->hex1);
		goto again;
	case QP_EQ_WS:
		/* "=" and whitespace before a line end: a soft break. */
		if (c == ' ' || c == '\t')
			break;
		if (c == '\r' || c == '\n') {
			d->qs = c == '\r' ? QP_EQ_CR : QP_TEXT;
			break;
		}
		d->errors = true;
		put(b, '=');
		d->qs = QP_TEXT;
		goto again;
	case QP_EQ_CR:
		d->qs = QP_TEXT;
		if (c == '\n')
			break;                  /* soft line break */
		d->errors = true;
		goto again;
	}
}

static int qp_feed(struct store_decoder *d, struct buf *out, const unsigned char *in, size_t n)
{
	struct out_batch b;

	b.len = 0;
	for (size_t i = 0; i < n; i++) {
		qp_byte(d, &b, in[i]);
		if (batch_flush(&b, out, false) < 0)
			return BUF_ETOOBIG;
	}
	return batch_flush(&b, out, true);
}

int store_decoder_feed(struct store_decoder *d, struct buf *out, const void *data, size_t len)
{
	switch (d->cte) {
	case STORE_CTE_BASE64:
		return b64_feed(d, out, data, len);
	case STORE_CTE_QP:
		return qp_feed(d, out, data, len);
	case STORE_CTE_IDENTITY:
		break;
	}
	return len > 0 && buf_append(out, data, len) < 0 ? BUF_ETOOBIG : 0;
}

int store_decoder_finish(struct store_decoder *d, struct buf *out)
{
	struct out_batch b;

	b.len = 0;
	if (d->cte == STORE_CTE_BASE64) {
		/* Lenient: a last quantum without its padding. */
		b64_pad(d, &b);
	} else if (d->cte == STORE_CTE_QP) {
		/* Whitespace at the very end is kept (no line end follows). */
		qp_flush_ws(d, &b);
		if (d->qs == QP_EQ || d->qs == QP_EQ_HEX) {
			d->errors = true;
			put(&b, '=');
		}
		if (d->qs == QP_EQ_HEX)
			put(&b, d->hex1);
		if (d->qs == QP_CR)
			put(&b, '\r');
		d->qs = QP_TEXT;
	}
	return batch_flush(&b, out, true);
}
