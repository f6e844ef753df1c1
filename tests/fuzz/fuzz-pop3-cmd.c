/*
 * fuzz-pop3-cmd.c — libFuzzer target for tern-pop3d's command reader
 * (pop3d/parse.c) and its RETR/TOP writer (pop3d/stuff.c), the code that
 * sees a client's bytes first and the code that frames message bytes for
 * the client. The input is split at LF into lines (a CR before the LF is
 * dropped, as conn_read_line does); each line is parsed as a command, and
 * the whole input is also sent through the stuffer as a message. Checked:
 * - a parse failure comes with a reason; a command that parses has a verb,
 *   arguments inside the line, non-empty and without spaces, at most one
 *   more than POP3_MAX_ARGS counted; numbers parse only from digits and
 *   print back to the same value;
 * - RETR output ends with CRLF "." CRLF, and undoing the dot-stuffing gives
 *   back the message (plus a CRLF when it did not end with a line end);
 *   feeding it in pieces (sizes from the input) gives the same bytes;
 * - TOP output is a prefix of RETR's that ends at a line end.
 * Under ASan this also proves neither reads outside its input.
 */
#include "pop3d/pop3-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bound of the test buffers (buf_init with SIZE_MAX overflows its cap). */
#define BUF_MAX (64u * 1024 * 1024)

static void check_number(const struct pop3_arg *arg)
{
	uint64_t n;
	uint32_t m;
	char text[32];

	if (pop3__parse_count(arg, &n) == 0) {
		for (size_t i = 0; i < arg->len; i++) {
			if (arg->p[i] < '0' || arg->p[i] > '9')
				abort();
		}
		snprintf(text, sizeof(text), "%llu", (unsigned long long)n);
		size_t skip = 0;

		while (skip + 1 < arg->len && arg->p[skip] == '0')
			skip++;
		if (strlen(text) != arg->len - skip || memcmp(text, arg->p + skip, strlen(text)) != 0)
			abort();
	}
	if (pop3__parse_msgnum(arg, &m) == 0) {
		if (m == 0 || pop3__parse_count(arg, &n) < 0 || n != m)
			abort();
	}
}

static void check_line(const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *why = NULL;

	if (pop3__parse_command(line, len, &cmd, &why) < 0) {
		if (why == NULL || strpbrk(why, "\r\n") != NULL)
			abort();
		return;
	}
	if (cmd.verb > POP3_CMD_UNKNOWN || cmd.argc > POP3_MAX_ARGS + 1)
		abort();
	if (cmd.rest.p < line || cmd.rest.p + cmd.rest.len > line + len)
		abort();
	for (unsigned i = 0; i < cmd.argc && i < POP3_MAX_ARGS; i++) {
		const struct pop3_arg *a = &cmd.argv[i];

		if (a->len == 0 || a->p < line || a->p + a->len > line + len ||
		    memchr(a->p, ' ', a->len) != NULL)
			abort();
		check_number(a);
	}
}

/* The stuffed form of data, fed in pieces whose sizes come from sizes[]. */
static void stuff(const uint8_t *data, size_t size, bool top, uint64_t lines,
		  const uint8_t *sizes, size_t nsizes, struct buf *out)
{
	struct pop3_stuff st;
	size_t pos = 0, k = 0;

	pop3__stuff_init(&st, top, lines);
	while (pos < size) {
		size_t n = nsizes > 0 ? (size_t)sizes[k++ % nsizes] + 1 : size;

		if (n > size - pos)
			n = size - pos;
		if (buf_reserve(out, n * 2) < 0)
			abort();
		pop3__stuff_feed(&st, data + pos, n, out);
		pos += n;
	}
	if (buf_reserve(out, 8) < 0)
		abort();
	pop3__stuff_finish(&st, out);
}

static void check_stuffing(const uint8_t *data, size_t size)
{
	struct buf whole, pieces, top, un;
	const uint8_t *sizes = data;
	size_t nsizes = size < 8 ? size : 8;

	buf_init(&whole, BUF_MAX);
	buf_init(&pieces, BUF_MAX);
	buf_init(&top, BUF_MAX);
	buf_init(&un, BUF_MAX);
	stuff(data, size, false, 0, NULL, 0, &whole);
	stuff(data, size, false, 0, sizes, nsizes, &pieces);
	if (whole.len != pieces.len || memcmp(whole.data, pieces.data, whole.len) != 0)
		abort();
	if (whole.len < 3 || memcmp(whole.data + whole.len - 3, ".\r\n", 3) != 0 ||
	    (whole.len > 3 && whole.data[whole.len - 4] != '\n'))
		abort();

	/* Undo the stuffing line by line (lines end at LF). */
	size_t body = whole.len - 3;

	for (size_t i = 0; i < body;) {
		const unsigned char *lf = memchr(whole.data + i, '\n', body - i);
		size_t end = lf != NULL ? (size_t)(lf - whole.data) + 1 : body;

		if (whole.data[i] == '.')
			i++;
		buf_append(&un, whole.data + i, end - i);
		i = end;
	}
	bool ended = size == 0 || data[size - 1] == '\n';

	if (un.len != size + (ended ? 0 : 2) || (size > 0 && memcmp(un.data, data, size) != 0))
		abort();

	/* TOP: a prefix of RETR's body ending at a line end, then ".". */
	uint64_t lines = size > 0 ? data[0] % 8 : 0;

	stuff(data, size, true, lines, sizes, nsizes, &top);
	if (top.len < 3 || top.len > whole.len ||
	    memcmp(top.data, whole.data, top.len - 3) != 0 ||
	    (top.len > 3 && top.data[top.len - 4] != '\n'))
		abort();
	buf_release(&whole);
	buf_release(&pieces);
	buf_release(&top);
	buf_release(&un);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t start = 0;

	for (size_t i = 0; i <= size; i++) {
		if (i == size || p[i] == '\n') {
			size_t len = i - start;

			if (len > 0 && p[start + len - 1] == '\r')
				len--;
			if (i < size || len > 0)
				check_line(p + start, len);
			start = i + 1;
		}
	}
	check_stuffing(data, size);
	return 0;
}
