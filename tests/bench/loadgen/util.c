/*
 * util.c — small helpers of tern-bench: allocation that exits on failure,
 * user-name formats, SASL PLAIN, IMAP quoting and a random generator.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench.h"

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fputs("tern-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void *bench_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

void *bench_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

char *bench_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = bench_xcalloc(1, n);

	memcpy(p, s, n);
	return p;
}

/* Copy fmt[0..n) into a new string with "%%" turned into "%". */
static char *unescape_percent(const char *fmt, size_t n)
{
	char *out = bench_xcalloc(1, n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		out[o++] = fmt[i];
		if (fmt[i] == '%')
			i++; /* the second '%' of "%%" (checked by the caller) */
	}
	out[o] = '\0';
	return out;
}

int bench_fmt_parse(const char *fmt, struct bench_fmt *f, const char **error_r)
{
	const char *d = NULL;

	for (const char *p = fmt; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
		} else if (p[1] == 'd' && d == NULL) {
			d = p;
			p++;
		} else {
			*error_r = "the format must hold exactly one %d (and %% for '%')";
			return -1;
		}
	}
	if (d == NULL) {
		*error_r = "the format must hold exactly one %d";
		return -1;
	}
	if (strlen(fmt) > 200) {
		*error_r = "the format is too long";
		return -1;
	}
	f->prefix = unescape_percent(fmt, (size_t)(d - fmt));
	f->suffix = unescape_percent(d + 2, strlen(d + 2));
	return 0;
}

size_t bench_fmt_print(const struct bench_fmt *f, unsigned int n, char *buf, size_t size)
{
	int r = snprintf(buf, size, "%s%u%s", f->prefix, n, f->suffix);

	if (r < 0)
		return 0;
	return (size_t)r < size ? (size_t)r : size - 1;
}

size_t bench_user_name(unsigned int idx, char *buf, size_t size)
{
	return bench_fmt_print(&bench_opt.user_fmt, idx + 1, buf, size);
}

int bench_sasl_plain(const char *user, const char *pass, char *buf, size_t size)
{
	unsigned char raw[600];
	size_t ul = strlen(user), pl = strlen(pass);
	size_t n = ul + pl + 2;

	if (ul + pl > 512 || ((n + 2) / 3) * 4 + 1 > size)
		return -1;
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	return EVP_EncodeBlock((unsigned char *)buf, raw, (int)n);
}

int bench_imap_quote(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (size < 3)
		return -1;
	buf[o++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n')
			return -1;
		if (o + 4 > size)
			return -1;
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

void bench_rng_seed(uint64_t *state, uint64_t seed, uint64_t stream)
{
	*state = seed * 0x9e3779b97f4a7c15ULL + stream * 0xbf58476d1ce4e5b9ULL + 1;
	(void)bench_rng_next(state);
}

uint64_t bench_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint32_t bench_rng_below(uint64_t *state, uint32_t n)
{
	/* Multiply-shift: bias below 2^-32, irrelevant here. */
	return (uint32_t)(((bench_rng_next(state) >> 32) * (uint64_t)n) >> 32);
}
