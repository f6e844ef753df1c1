/*
 * compress.c — a raw deflate stream (RFC 1951) in each direction, for
 * COMPRESS=DEFLATE (RFC 4978). It knows nothing of connections: conn.c
 * feeds it the bytes below the protocol (socket or TLS plaintext) and
 * pulls inflated input out in bounded pieces, and hands it protocol
 * output whose compressed form it passes to an emit callback.
 *
 * Memory. The deflater's state is fixed at init: (1 << (ZS_WBITS + 2)) +
 * (1 << (ZS_MEMLEVEL + 9)) bytes plus ~6 KiB, i.e. 128 KiB + 64 KiB with
 * memLevel 7 (memLevel 8, zlib's default, would be 256 KiB; 7 costs under
 * 1% of ratio on IMAP traffic). The inflater's 32 KiB window is allocated
 * on first use. Compressed input waiting to be inflated is held in `in`,
 * which conn.c keeps to about one read chunk; inflated output is never
 * produced beyond what the caller asks for, so a small input that inflates
 * to gigabytes (a "zip bomb") costs time in bounded slices, not memory.
 */
#include "common-private.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Window of the deflater: a client's inflater accepts any up to 15. */
#define ZS_WBITS 15
#define ZS_MEMLEVEL 7

struct zstream {
	z_stream def;
	z_stream inf;
	bool unflushed;         /* deflated since the last sync flush */
	bool in_ended;          /* the client's stream ended (final block) */
	struct buf in;          /* compressed input not yet inflated */
	size_t in_off;
	uint64_t plain_out, wire_out;
};

static voidpf zs_alloc(voidpf opaque, uInt items, uInt size)
{
	/* Not zeroed: zlib initialises what it reads, and untouched pages of
	 * the large tables then cost no memory until they are used. */
	size_t n = (size_t)items * size;
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL) {
		log_error("out of memory allocating %zu bytes", n);
		abort();
	}
	return p;
}

static void zs_release(voidpf opaque, voidpf p)
{
	free(p);
}

struct zstream *zs_new(size_t in_max)
{
	struct zstream *zs = xcalloc(1, sizeof(*zs));

	zs->def.zalloc = zs->inf.zalloc = zs_alloc;
	zs->def.zfree = zs->inf.zfree = zs_release;
	if (deflateInit2(&zs->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -ZS_WBITS,
			 ZS_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zs);
		return NULL;
	}
	if (inflateInit2(&zs->inf, -15) != Z_OK) {
		deflateEnd(&zs->def);
		free(zs);
		return NULL;
	}
	buf_init(&zs->in, in_max);
	return zs;
}

void zs_free(struct zstream **zsp)
{
	struct zstream *zs = *zsp;

	if (zs == NULL)
		return;
	log_debug("compression plain_out=%llu wire_out=%llu",
		  (unsigned long long)zs->plain_out, (unsigned long long)zs->wire_out);
	deflateEnd(&zs->def);
	inflateEnd(&zs->inf);
	buf_release(&zs->in);
	free(zs);
	*zsp = NULL;
}

/* ---------------------------------------------------------------- output */

/* Run the deflater over its current input with flush, emitting what it
 * produces in pieces of at most a stack buffer. */
static void zs_run(struct zstream *zs, int flush, zs_emit_fn *emit, void *ctx)
{
	unsigned char chunk[16384];

	do {
		zs->def.next_out = chunk;
		zs->def.avail_out = sizeof(chunk);
		/* Z_BUF_ERROR only says there was nothing to do. */
		(void)deflate(&zs->def, flush);
		size_t n = sizeof(chunk) - zs->def.avail_out;

		if (n > 0) {
			zs->wire_out += n;
			emit(ctx, chunk, n);
		}
	} while (zs->def.avail_in > 0 || zs->def.avail_out == 0);
}

void zs_deflate(struct zstream *zs, const void *data, size_t len, zs_emit_fn *emit,
		void *ctx)
{
	const unsigned char *p = data;

	zs->plain_out += len;
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		zs->def.next_in = (Bytef *)p;
		zs->def.avail_in = n;
		zs_run(zs, Z_NO_FLUSH, emit, ctx);
		p += n;
		len -= n;
		zs->unflushed = true;
	}
	zs->def.next_in = NULL;
}

void zs_flush(struct zstream *zs, zs_emit_fn *emit, void *ctx)
{
	if (!zs->unflushed)
		return;
	zs->def.next_in = NULL;
	zs->def.avail_in = 0;
	zs_run(zs, Z_SYNC_FLUSH, emit, ctx);
	zs->unflushed = false;
}

/* ----------------------------------------------------------------- input */

int zs_feed(struct zstream *zs, const void *data, size_t len)
{
	if (zs->in_ended || len == 0)
		return 0;
	if (zs->in_off > 0 && zs->in.len + len > zs->in.max) {
		buf_consume(&zs->in, zs->in_off);
		zs->in_off = 0;
	}
	return buf_append(&zs->in, data, len);
}

size_t zs_pending(const struct zstream *zs)
{
	return zs->in.len - zs->in_off;
}

int zs_inflate(struct zstream *zs, void *out, size_t max, size_t *len_r,
	       const char **error_r)
{
	*len_r = 0;
	if (zs->in_ended)
		return ZS_END;
	if (zs_pending(zs) == 0 || max == 0)
		return 0;
	zs->inf.next_in = zs->in.data + zs->in_off;
	zs->inf.avail_in = (uInt)(zs_pending(zs) > UINT32_MAX / 2 ? UINT32_MAX / 2 :
				  zs_pending(zs));
	zs->inf.next_out = out;
	zs->inf.avail_out = (uInt)(max > UINT32_MAX / 2 ? UINT32_MAX / 2 : max);
	uInt in_before = zs->inf.avail_in, out_before = zs->inf.avail_out;
	int ret = inflate(&zs->inf, Z_SYNC_FLUSH);

	zs->in_off += in_before - zs->inf.avail_in;
	*len_r = out_before - zs->inf.avail_out;
	zs->inf.next_in = NULL;
	zs->inf.next_out = NULL;
	if (zs->in_off == zs->in.len) {
		zs->in_off = 0;
		buf_clear(&zs->in);
		buf_shrink_if_empty(&zs->in, 0);
	}
	switch (ret) {
	case Z_OK:
	case Z_BUF_ERROR:
		return 0;
	case Z_STREAM_END:
		/* The client ended its stream: what follows is not ours to
		 * read. */
		zs->in_ended = true;
		zs->in_off = 0;
		buf_release(&zs->in);
		return ZS_END;
	default:
		*error_r = zs->inf.msg != NULL ? zs->inf.msg : "invalid deflate data";
		zs->in_ended = true;
		zs->in_off = 0;
		buf_release(&zs->in);
		return -1;
	}
}
