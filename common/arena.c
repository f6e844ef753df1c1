/*
 * arena.c — chunked bump allocator. Chunks are linked newest first; an
 * allocation larger than half a chunk gets a chunk of its own so that it
 * does not waste the current one.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_CHUNK 1024
#define ARENA_FIRST_CHUNK 256

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;   /* usable bytes after the header */
	size_t used;
	/* data follows, aligned */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
	struct arena_chunk *chunks;
	size_t chunk_size;
	size_t footprint;
};

static size_t align_up(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

struct arena *arena_new(size_t chunk_size)
{
	struct arena *a = xcalloc(1, sizeof(*a));

	a->chunk_size = chunk_size == 0 ? ARENA_DEFAULT_CHUNK : chunk_size;
	return a;
}

static struct arena_chunk *chunk_new(struct arena *a, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct arena_chunk)) {
		log_error("arena allocation of %zu bytes is too large", size);
		abort();
	}
	struct arena_chunk *c = malloc(sizeof(*c) + size);

	if (c == NULL) {
		log_error("out of memory allocating %zu bytes", size);
		abort();
	}
	c->size = size;
	c->used = 0;
	a->footprint += sizeof(*c) + size;
	return c;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = align_up(size == 0 ? 1 : size);
	struct arena_chunk *c = a->chunks;

	if (need < size) {
		log_error("arena allocation of %zu bytes is too large", size);
		abort();
	}
	if (c == NULL || c->size - c->used < need) {
		if (need > a->chunk_size / 2) {
			/* Dedicated chunk, linked behind the current one so the
			 * current chunk's free space stays in use. */
			struct arena_chunk *big = chunk_new(a, need);

			if (c == NULL) {
				big->next = NULL;
				a->chunks = big;
			} else {
				big->next = c->next;
				c->next = big;
			}
			big->used = need;
			memset(big->data, 0, need);
			return big->data;
		}
		/* A small first chunk, when the allocation fits it: many
		 * sessions never need more. */
		bool first_small = a->chunks == NULL && a->chunk_size > ARENA_FIRST_CHUNK &&
				   need <= ARENA_FIRST_CHUNK;

		c = chunk_new(a, first_small ? ARENA_FIRST_CHUNK : a->chunk_size);
		c->next = a->chunks;
		a->chunks = c;
	}
	void *p = c->data + c->used;

	c->used += need;
	memset(p, 0, need);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;

	/* Most strings fit the stack buffer: format once, copy. */
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return arena_strdup(a, "");
	if ((size_t)n < sizeof(small))
		return arena_strndup(a, small, (size_t)n);
	char *p = arena_alloc(a, (size_t)n + 1);

	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *keep = NULL;
	struct arena_chunk *c = a->chunks;

	/* Keep one regular-sized chunk for reuse, free the rest. */
	while (c != NULL) {
		struct arena_chunk *next = c->next;

		if (keep == NULL && c->size == a->chunk_size) {
			keep = c;
		} else {
			a->footprint -= sizeof(*c) + c->size;
			free(c);
		}
		c = next;
	}
	if (keep != NULL) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->chunks = keep;
}

void arena_free(struct arena **ap)
{
	struct arena *a = *ap;

	if (a == NULL)
		return;
	for (struct arena_chunk *c = a->chunks, *next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
	*ap = NULL;
}

size_t arena_footprint(const struct arena *a)
{
	return sizeof(*a) + a->footprint;
}
