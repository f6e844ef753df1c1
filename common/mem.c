/* mem.c — allocation that never returns NULL, and helpers for secrets. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
	log_error("out of memory allocating %zu bytes", size);
	abort();
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);

	if (p == NULL)
		oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xcalloc(1, n);

	memcpy(p, s, n);
	return p;
}

void mem_wipe(void *p, size_t n)
{
	/* explicit_bzero is not removed by dead-store elimination. */
	explicit_bzero(p, n);
}

int mem_equal_ct(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff != 0;
}
