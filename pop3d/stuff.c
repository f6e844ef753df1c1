/*
 * stuff.c — a message's bytes into the body of a RETR or TOP response
 * (RFC 1939 §3): lines that start with '.' get another '.', and the
 * response ends with CRLF "." CRLF. The input is the CRLF view of the
 * store (store_reader_read), fed in pieces of any size: the state carries
 * what a line has seen across pieces.
 *
 * TOP n sends the header, the blank line after it and n lines of the body.
 * A line ends at LF; the blank line is a line with nothing but an optional
 * CR. A message without a blank line is all header: TOP sends it whole.
 */
#include "pop3-private.h"

#include <string.h>

void pop3__stuff_init(struct pop3_stuff *st, bool top, uint64_t max_body_lines)
{
	memset(st, 0, sizeof(*st));
	st->line_start = true;
	st->line_empty = true;
	st->top = top;
	st->lines_left = max_body_lines;
}

/* A line ended (its LF is already out). */
static void end_line(struct pop3_stuff *st)
{
	if (!st->in_body) {
		if (st->line_empty) {
			st->in_body = true;
			if (st->top && st->lines_left == 0)
				st->done = true;
		}
	} else if (st->top) {
		if (--st->lines_left == 0)
			st->done = true;
	}
	st->line_start = true;
	st->line_empty = true;
}

void pop3__stuff_feed(struct pop3_stuff *st, const unsigned char *in, size_t len,
		      struct buf *out)
{
	size_t i = 0;

	if (st->top && st->in_body && st->lines_left == 0)
		st->done = true;
	while (i < len && !st->done) {
		if (st->line_start) {
			if (in[i] == '.')
				buf_append(out, ".", 1);
			st->line_start = false;
		}
		/* Copy up to and including the next LF in one piece. */
		const unsigned char *lf = memchr(in + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - in) : len;

		if (st->line_empty) {
			for (size_t j = i; j < end; j++) {
				if (in[j] != '\r') {
					st->line_empty = false;
					break;
				}
			}
		}
		if (lf != NULL) {
			buf_append(out, in + i, end + 1 - i);
			i = end + 1;
			end_line(st);
		} else {
			buf_append(out, in + i, len - i);
			i = len;
		}
	}
}

void pop3__stuff_finish(struct pop3_stuff *st, struct buf *out)
{
	if (!st->line_start)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
	st->done = true;
}
