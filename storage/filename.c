/*
 * filename.c — Maildir message file names, as Dovecot writes them:
 *
 *     <base>[,S=<size>][,W=<vsize>][,U=<uid>][:2,<info>]
 *
 * Parsing is lenient where other programs differ and strict where a wrong
 * value would do harm:
 * - base is everything up to the first ',' or ':' (1..127 bytes, any byte
 *   but '/'); the name is at most NAME_MAX bytes and does not start with '.'.
 * - Fields may come in any order. S= and W= must fit uint64_t, U= must fit
 *   uint32_t and be at least 1; all three are plain decimal digits. A
 *   malformed value or a repeated S, W or U makes the name invalid: a wrong
 *   size or UID is worse than none. Other fields (Dovecot's ",M=", ",FRS=",
 *   empty ones) are skipped.
 * - ":2," is followed by info: D F P R S T are the system flags (T, trashed,
 *   is \Deleted as in Dovecot; P, passed, has no IMAP flag but is kept), a-z
 *   are keywords. Any other character is ignored, in any order and repeated,
 *   so mail from an MDA with its own letters stays visible.
 * - ":1," (the experimental semantics) and any other text after ':' are
 *   ignored: the message has no info, and the file is still a message.
 *
 * Building writes the fields in the order S, W, U and the info letters in
 * ASCII order (flags, then keywords), as the Maildir specification asks.
 */
#include "storage/storage.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Info letters in ASCII order and their flags. */
static const struct {
	char letter;
	uint32_t flag;
} info_flags[] = {
	{ 'D', STORE_FLAG_DRAFT },
	{ 'F', STORE_FLAG_FLAGGED },
	{ 'P', STORE_FLAG_PASSED },
	{ 'R', STORE_FLAG_ANSWERED },
	{ 'S', STORE_FLAG_SEEN },
	{ 'T', STORE_FLAG_DELETED },
};

#define KEYWORD_LETTERS 26

/* A decimal number of n > 0 digits no larger than max: 0, or -1. */
static int parse_number(const char *s, size_t n, uint64_t max, uint64_t *value_r)
{
	uint64_t v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned int d = (unsigned int)(s[i] - '0');

		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*value_r = v;
	return 0;
}

/* One ",X=value" field of n bytes at s (after the ','). */
static int parse_field(const char *s, size_t n, struct store_filename *fn,
		       bool *seen_uid)
{
	uint64_t v;

	if (n < 2 || s[1] != '=')
		return 0;
	switch (s[0]) {
	case 'S':
		if (fn->has_size || parse_number(s + 2, n - 2, UINT64_MAX, &v) < 0)
			return -1;
		fn->size = v;
		fn->has_size = true;
		return 0;
	case 'W':
		if (fn->has_vsize || parse_number(s + 2, n - 2, UINT64_MAX, &v) < 0)
			return -1;
		fn->vsize = v;
		fn->has_vsize = true;
		return 0;
	case 'U':
		if (*seen_uid || parse_number(s + 2, n - 2, UINT32_MAX, &v) < 0 || v == 0)
			return -1;
		fn->uid = (uint32_t)v;
		*seen_uid = true;
		return 0;
	default:
		return 0;       /* someone else's field */
	}
}

static void parse_info(const char *s, struct store_filename *fn)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'a' && *s < 'a' + KEYWORD_LETTERS) {
			fn->keywords |= 1u << (*s - 'a');
			continue;
		}
		for (size_t i = 0; i < N_ELEMENTS(info_flags); i++) {
			if (*s == info_flags[i].letter)
				fn->flags |= info_flags[i].flag;
		}
	}
}

int store_filename_parse(const char *name, struct store_filename *fn_r)
{
	size_t len = strnlen(name, NAME_MAX + 1);
	bool seen_uid = false;

	memset(fn_r, 0, sizeof(*fn_r));
	if (len == 0 || len > NAME_MAX || name[0] == '.' || memchr(name, '/', len) != NULL)
		return -1;
	size_t base_len = strcspn(name, ",:");

	if (base_len == 0 || base_len >= sizeof(fn_r->base))
		return -1;
	memcpy(fn_r->base, name, base_len);

	const char *p = name + base_len;

	while (*p == ',') {
		p++;
		size_t n = strcspn(p, ",:");

		if (parse_field(p, n, fn_r, &seen_uid) < 0)
			goto fail;
		p += n;
	}
	if (*p == ':' && p[1] == '2' && p[2] == ',') {
		fn_r->has_info = true;
		parse_info(p + 3, fn_r);
	}
	return 0;
fail:
	memset(fn_r, 0, sizeof(*fn_r));
	return -1;
}

static bool base_valid(const char *base, size_t len)
{
	return len > 0 && len < sizeof(((struct store_filename *)NULL)->base) &&
	       base[0] != '.' && strcspn(base, "/,:") == len;
}

int store_filename_build(const struct store_filename *fn, char *out, size_t out_size)
{
	char buf[NAME_MAX + 1];
	size_t base_len = strnlen(fn->base, sizeof(fn->base));
	size_t n = 0;
	uint32_t kw = fn->keywords & ((1u << KEYWORD_LETTERS) - 1);
	bool info = fn->has_info || kw != 0;

	if (out_size > 0)
		out[0] = '\0';
	if (!base_valid(fn->base, base_len))
		return -1;
	/* At most 127 + 2 * 23 + 13 + 3 + 6 + 26 = 221 bytes: buf is enough. */
	memcpy(buf, fn->base, base_len);
	n = base_len;
	if (fn->has_size)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",S=%llu",
				      (unsigned long long)fn->size);
	if (fn->has_vsize)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",W=%llu",
				      (unsigned long long)fn->vsize);
	if (fn->uid != 0)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",U=%lu",
				      (unsigned long)fn->uid);
	for (size_t i = 0; i < N_ELEMENTS(info_flags); i++)
		info = info || (fn->flags & info_flags[i].flag) != 0;
	if (info) {
		memcpy(buf + n, ":2,", 3);
		n += 3;
		for (size_t i = 0; i < N_ELEMENTS(info_flags); i++) {
			if ((fn->flags & info_flags[i].flag) != 0)
				buf[n++] = info_flags[i].letter;
		}
		for (int i = 0; i < KEYWORD_LETTERS; i++) {
			if ((kw & (1u << i)) != 0)
				buf[n++] = (char)('a' + i);
		}
	}
	buf[n] = '\0';
	if (n >= out_size)
		return -1;
	memcpy(out, buf, n + 1);
	return 0;
}

/* ---------------------------------------------------------- new base */

/* The longest base store_new_base writes, so that it fits a
 * struct store_filename. */
#define BASE_MAX (sizeof(((struct store_filename *)NULL)->base) - 1)

static atomic_uint_fast64_t base_counter;

/* The host name with '/', ':' and ',' written as \057, \072 and \054 (the
 * Maildir rule, plus ',' which starts our fields), cut short at a whole
 * character so that it fits room bytes. */
static void append_host(char *out, size_t room)
{
	char host[256];
	size_t n = 0;

	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	for (const char *h = host; *h != '\0'; h++) {
		const char *esc = NULL;

		if (*h == '/')
			esc = "\\057";
		else if (*h == ':')
			esc = "\\072";
		else if (*h == ',')
			esc = "\\054";
		size_t len = esc != NULL ? 4 : 1;

		if (n + len > room)
			break;
		if (esc != NULL)
			memcpy(out + n, esc, 4);
		else
			out[n] = *h;
		n += len;
	}
	out[n] = '\0';
}

void store_new_base(char *out, size_t out_size)
{
	char buf[BASE_MAX + 1];
	struct timespec ts;
	uint64_t seq = atomic_fetch_add(&base_counter, 1);
	uint32_t rnd;
	int n;

	if (out_size == 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (getentropy(&rnd, sizeof(rnd)) < 0) {
		/* Not expected on Linux >= 3.17; pid, time and seq stay unique. */
		rnd = (uint32_t)ts.tv_nsec ^ (uint32_t)(seq * 2654435761u);
	}
	n = snprintf(buf, sizeof(buf), "%lld.M%ldP%ldQ%lluR%08lx.",
		     (long long)ts.tv_sec, (long)(ts.tv_nsec / 1000), (long)getpid(),
		     (unsigned long long)seq, (unsigned long)rnd);
	if (n > 0 && (size_t)n < sizeof(buf))
		append_host(buf + n, sizeof(buf) - 1 - (size_t)n);
	snprintf(out, out_size, "%s", buf);
}
