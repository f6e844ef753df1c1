/*
 * fuzz-mime.c — libFuzzer target for the MIME parser and what is built on
 * it. The input is a message:
 * - parsed whole and fed in pieces (split points taken from the input),
 *   which must give the very same ENVELOPE and BODYSTRUCTURE;
 * - the results must be balanced IMAP lists (quoted strings and literals
 *   skipped) ending in ')';
 * - the part tree's offsets and sizes must stay inside the message's CRLF
 *   size;
 * and, as a header value, it goes through RFC 2047 decoding (the result
 * must be valid UTF-8), parameter and address parsing, and both transfer
 * decoders.
 */
#include "storage/mime-private.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void results(struct mime_part *root, struct buf *out)
{
	buf_init(out, 64 << 20);
	if (mime_write_envelope(out, root) < 0 || mime_write_bodystructure(out, root, true) < 0 ||
	    mime_write_bodystructure(out, root, false) < 0)
		abort();
}

/* One IMAP value list: parentheses balance outside strings and literals. */
static void check_balanced(const struct buf *b)
{
	long depth = 0;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];

		if (c == '"') {
			for (i++; i < b->len && b->data[i] != '"'; i++)
				if (b->data[i] == '\\')
					i++;
		} else if (c == '{') {
			char *end;
			unsigned long long n = strtoull((char *)b->data + i + 1, &end, 10);

			if (*end != '}' || end[1] != '\r' || end[2] != '\n')
				abort();
			i = (size_t)(end + 2 - (char *)b->data) + n;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && --depth < 0) {
			abort();
		} else if (c == '\r' || c == '\n' || c == '\0') {
			abort();
		}
	}
	if (depth != 0)
		abort();
}

static uint64_t crlf_size(const uint8_t *data, size_t size)
{
	uint64_t n = size;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			n++;
	return n;
}

static void check_ranges(const struct mime_part *p, uint64_t total)
{
	if (p->hdr_offset + p->hdr_size > total || p->body_offset + p->body_size > total ||
	    p->body_offset < p->hdr_offset)
		abort();
	for (const struct mime_part *c = p->children; c != NULL; c = c->next)
		check_ranges(c, total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_parser *p1 = mime_parser_new(), *p2 = mime_parser_new();
	struct mime_part *root = mime_parse_buffer(p1, data, size);
	struct buf a, b;

	results(root, &a);
	check_balanced(&a);
	check_ranges(root, crlf_size(data, size));
	/* Fed in pieces of sizes the input picks. */
	size_t off = 0;

	while (off < size) {
		size_t step = 1 + data[off] % 17;

		if (step > size - off)
			step = size - off;
		mime_parser_feed(p2, data + off, step);
		off += step;
	}
	results(mime_parser_finish(p2), &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	mime_parser_free(&p1);
	mime_parser_free(&p2);
	buf_release(&b);
	buf_release(&a);

	/* The input as a header value. */
	char *value = malloc(size + 1);
	struct arena *ar = arena_new(0);

	memcpy(value, data, size);
	value[size] = '\0';
	char *dec = mime_decode_header(ar, value);

	if (!mime_utf8_valid(dec, strlen(dec)))
		abort();
	const char *first;

	mime_params_parse(ar, value, &first);
	mime_address_parse(ar, value, 1000);
	mime_decode_rfc2231(ar, value);
	for (enum store_cte cte = STORE_CTE_IDENTITY; cte <= STORE_CTE_QP; cte++) {
		struct store_decoder d;
		struct buf out;

		buf_init(&out, 64 << 20);
		store_decoder_init(&d, cte);
		store_decoder_feed(&d, &out, data, size);
		store_decoder_finish(&d, &out);
		buf_release(&out);
	}
	arena_free(&ar);
	free(value);
	return 0;
}
