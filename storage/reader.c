/*
 * reader.c — a message as IMAP and POP3 see it: LF line ends on disk become
 * CRLF (a CR already before an LF is kept as is), read in pieces so that a
 * large message never sits in memory.
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct store_reader {
	int fd;
	unsigned char buf[16384];
	size_t pos, len;
	bool prev_cr;           /* the last byte handed out was CR */
	bool lf_pending;        /* a CR was emitted for an LF not yet emitted */
};

int store_reader_open(struct store_mailbox *mb, uint32_t uid, struct store_reader **r_r,
		      struct store_error *err)
{
	char path[4096];
	int fd = -1;

	/* A file renamed by another program meanwhile: sync once, retry. */
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		struct store_msg_row row;
		int found = store__msg_path(mb, uid, attempt > 0, &row, path, sizeof(path), err);

		if (found < 0)
			return -1;
		if (found == 0)
			return store__fail(err, STORE_ERR_NOTFOUND, "no message with UID %u", uid);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && (errno != ENOENT || attempt == 1))
			return store__fail_errno(err, errno, "open %s", path);
	}
	struct store_reader *r = xcalloc(1, sizeof(*r));

	r->fd = fd;
	*r_r = r;
	return 0;
}

ssize_t store_reader_read(struct store_reader *r, void *out, size_t max)
{
	unsigned char *o = out;
	size_t n = 0;

	while (n < max) {
		if (r->lf_pending) {
			o[n++] = '\n';
			r->lf_pending = false;
			r->prev_cr = false;
			continue;
		}
		if (r->pos == r->len) {
			ssize_t got = read(r->fd, r->buf, sizeof(r->buf));

			if (got < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (got == 0)
				break;
			r->pos = 0;
			r->len = (size_t)got;
		}
		/* Everything up to the next LF is copied as it is, at once. */
		const unsigned char *src = r->buf + r->pos;
		size_t take = r->len - r->pos < max - n ? r->len - r->pos : max - n;
		const unsigned char *lf = memchr(src, '\n', take);
		size_t run = lf != NULL ? (size_t)(lf - src) : take;

		if (run > 0) {
			memcpy(o + n, src, run);
			n += run;
			r->pos += run;
			r->prev_cr = o[n - 1] == '\r';
			continue;
		}
		/* An LF: after a CR as it is, else as CR LF. */
		r->pos++;
		if (!r->prev_cr) {
			o[n++] = '\r';
			r->lf_pending = true;
			continue;
		}
		o[n++] = '\n';
		r->prev_cr = false;
	}
	return (ssize_t)n;
}

int store_reader_skip(struct store_reader *r, uint64_t crlf_offset)
{
	unsigned char scratch[16384];

	while (crlf_offset > 0) {
		size_t want = crlf_offset < sizeof(scratch) ? (size_t)crlf_offset : sizeof(scratch);
		ssize_t got = store_reader_read(r, scratch, want);

		if (got < 0)
			return -1;
		if (got == 0)
			break;
		crlf_offset -= (uint64_t)got;
	}
	return 0;
}

void store_reader_close(struct store_reader **rp)
{
	struct store_reader *r = *rp;

	if (r == NULL)
		return;
	close(r->fd);
	free(r);
	*rp = NULL;
}
