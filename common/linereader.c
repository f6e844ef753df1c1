/*
 * linereader.c — splits buffered input into lines (CRLF or LF) and raw runs
 * (literals) under a line-length limit. An overlong line is reported once
 * and the rest of it, up to its LF, is discarded as it arrives, so memory
 * stays at line_max + one read chunk however long the line is.
 */
#include "common-private.h"

#include <string.h>

void lr_init(struct linereader *lr, size_t line_max)
{
	memset(lr, 0, sizeof(*lr));
	lr->line_max = line_max;
	buf_init(&lr->in, line_max + LR_SLACK);
}

void lr_set_line_max(struct linereader *lr, size_t line_max)
{
	lr->line_max = line_max;
	/* Never below what is already buffered. */
	lr->in.max = line_max + LR_SLACK > lr->in.len ? line_max + LR_SLACK : lr->in.len;
}

size_t lr_pending(const struct linereader *lr)
{
	return lr->in.len - lr->pos;
}

bool lr_has_room(const struct linereader *lr)
{
	/* A line of line_max plus CRLF must fit before the slack. */
	return lr_pending(lr) < lr->line_max + 2;
}

void lr_compact(struct linereader *lr)
{
	if (lr->pos > 0) {
		buf_consume(&lr->in, lr->pos);
		lr->pos = 0;
	}
	buf_shrink_if_empty(&lr->in, 0);
}

int lr_feed(struct linereader *lr, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (lr->skipping) {
		const unsigned char *lf = memchr(p, '\n', len);

		if (lf == NULL)
			return 0;
		lr->skipping = false;
		len -= (size_t)(lf + 1 - p);
		p = lf + 1;
	}
	if (len == 0)
		return 0;
	if (lr->pos > 0 && lr->in.len + len > lr->in.max)
		lr_compact(lr);
	return buf_append(&lr->in, p, len);
}

int lr_read_line(struct linereader *lr, const char **line_r, size_t *len_r)
{
	size_t avail = lr_pending(lr);

	if (avail == 0)
		return 0;
	const unsigned char *start = lr->in.data + lr->pos;
	const unsigned char *lf = memchr(start + lr->scan, '\n', avail - lr->scan);

	if (lf == NULL) {
		lr->scan = avail;
		if (avail > lr->line_max + 1) {
			/* No LF within the limit (+1 for a CR): drop what we
			 * have and skip the rest of the line as it arrives. */
			lr->pos = lr->in.len;
			lr->scan = 0;
			lr->skipping = true;
			lr_compact(lr);
			return CONN_ELINE;
		}
		return 0;
	}
	size_t len = (size_t)(lf - start);

	lr->pos += len + 1;
	lr->scan = 0;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	if (len > lr->line_max)
		return CONN_ELINE;
	*line_r = (const char *)start;
	*len_r = len;
	return 1;
}

size_t lr_read_bytes(struct linereader *lr, size_t max, const char **data_r)
{
	size_t n = lr_pending(lr);

	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	*data_r = (const char *)lr->in.data + lr->pos;
	lr->pos += n;
	lr->scan = 0;
	return n;
}

void lr_discard(struct linereader *lr)
{
	lr->pos = lr->in.len;
	lr->scan = 0;
	lr->skipping = false;
	lr_compact(lr);
}

void lr_free(struct linereader *lr)
{
	buf_release(&lr->in);
	lr->pos = 0;
	lr->scan = 0;
}
