/*
 * fuzz-imap-parser.c — libFuzzer target for tern-imapd's incremental
 * command parser (imapd/parser.c), the code that sees a client's bytes
 * first. The input is fed twice: whole, and in chunks whose sizes come from
 * its first bytes; every synchronising literal is accepted, and top-level
 * literals of APPEND are streamed. Checked:
 * - both runs give the same events (commands rendered, continuation sizes,
 *   error responses) and the same streamed bytes: splitting never matters;
 * - the parser never claims more bytes than it was given, and memory stays
 *   bounded by the limits;
 * - every error response is BAD or NO, on one line; commands have a tag and
 *   a name, lists nest at most max_depth deep, argument counts add up;
 * - the sequence-set parser on every atom keeps its ranges within bounds.
 */
#include "common/common.h"
#include "imapd/parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits limits = {
	.max_line = 256,
	.max_literal = 4096,
	.max_depth = 4,
	.max_args = 64,
	.max_command = 2048,
	.literal_plus = false,
	.utf8 = true,
	.literal8 = true,
};

#define OUT_MAX (16u * 1024 * 1024)

static bool want(void *ctx, const struct imap_command *cmd, unsigned depth, uint64_t size)
{
	return depth == 0 && strcasecmp(cmd->name, "APPEND") == 0;
}

static void sink(void *ctx, const unsigned char *d, size_t n)
{
	if (n == 0 || buf_append(ctx, d, n) < 0)
		abort();
}

static void check_seqset(const struct imap_arg *a)
{
	struct arena *ar = arena_new(0);
	struct imap_seqset *set;
	const char *err = NULL;

	if (imap_seqset_parse(a->str, (size_t)a->len, 8, true, ar, &set, &err) == 0) {
		if (set->count > 8 || (set->last && set->count != 0))
			abort();
		for (unsigned i = 0; i < set->count; i++) {
			const struct imap_seq_range *r = &set->ranges[i];

			if (r->lo != IMAP_SEQ_STAR && r->hi != IMAP_SEQ_STAR && r->lo > r->hi)
				abort();
		}
	} else if (err == NULL || strncmp(err, "BAD ", 4) != 0) {
		abort();
	}
	arena_free(&ar);
}

static unsigned render(struct buf *out, const struct imap_arg *a, unsigned depth)
{
	unsigned n = 0;

	if (depth > limits.max_depth)
		abort();
	for (; a != NULL; a = a->next, n++) {
		buf_printf(out, " %d:%u:%llu:", (int)a->type, a->flags, (unsigned long long)a->len);
		if (a->type == IMAP_ARG_LIST) {
			buf_append_str(out, "(");
			if (render(out, a->child, depth + 1) != a->count)
				abort();
			buf_append_str(out, ")");
		} else if (!(a->flags & IMAP_ARG_STREAMED)) {
			if (a->str == NULL)
				abort();
			buf_append(out, a->str, (size_t)a->len);
			if (a->type == IMAP_ARG_ATOM)
				check_seqset(a);
		}
	}
	return n;
}

static void run(const uint8_t *data, size_t size, const uint8_t *sizes, size_t nsizes,
		struct buf *out, struct buf *streamed)
{
	struct imap_parser_stream st = { want, sink, streamed };
	struct imap_parser *p = imap_parser_new(&limits, &st);
	size_t pos = 0, k = 0;

	while (pos < size) {
		size_t n = nsizes > 0 ? (size_t)sizes[k++ % nsizes] % 64 + 1 : size;

		if (n > size - pos)
			n = size - pos;
		for (size_t off = 0;;) {
			size_t used = SIZE_MAX;
			int r = imap_parser_feed(p, data + pos + off, n - off, &used);

			if (used > n - off)
				abort();
			off += used;
			if (imap_parser_footprint(p) > 64 * 1024)
				abort();
			if (r == IMAP_PARSE_MORE) {
				if (off != n)
					abort();
				break;
			}
			if (r == IMAP_PARSE_LITERAL) {
				buf_printf(out, "LIT %llu\n", (unsigned long long)imap_parser_literal_size(p));
				imap_parser_accept_literal(p);
			} else if (r == IMAP_PARSE_ERROR) {
				const char *tag, *e = imap_parser_error(p, &tag);

				if (e == NULL || tag == NULL || strpbrk(e, "\r\n") != NULL ||
				    (strncmp(e, "BAD ", 4) != 0 && strncmp(e, "NO ", 3) != 0))
					abort();
				buf_printf(out, "ERR %s %s\n", tag, e);
			} else if (r == IMAP_PARSE_COMMAND) {
				const struct imap_command *c = imap_parser_command(p);

				if (c->tag == NULL || c->name == NULL || *c->tag == '\0' || *c->name == '\0')
					abort();
				buf_printf(out, "CMD %s %s", c->tag, c->name);
				if (render(out, c->args, 0) != c->argc)
					abort();
				buf_append_str(out, "\n");
			} else {
				abort();
			}
		}
		pos += n;
	}
	imap_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b, sa, sb;

	buf_init(&a, OUT_MAX);
	buf_init(&b, OUT_MAX);
	buf_init(&sa, OUT_MAX);
	buf_init(&sb, OUT_MAX);
	run(data, size, NULL, 0, &a, &sa);
	run(data, size, data, size < 8 ? size : 8, &b, &sb);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0) ||
	    sa.len != sb.len || (sa.len > 0 && memcmp(sa.data, sb.data, sa.len) != 0))
		abort();
	buf_release(&a);
	buf_release(&b);
	buf_release(&sa);
	buf_release(&sb);
	return 0;
}
