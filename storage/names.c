/*
 * names.c — mailbox names: validation, the Maildir++ directory mapping and
 * modified UTF-7 (RFC 3501 §5.1.3, RFC 9051 §5.1).
 *
 * A name in the API is UTF-8 with '/' between levels. On disk INBOX is the
 * Maildir root ("") and every other mailbox is one directory ".A.B" whose
 * components are the name's components in modified UTF-7, as Dovecot and
 * Courier write them, so a Maildir can move between them and Tern.
 *
 * Besides the rules in storage.h, two more kinds of name are refused, so
 * that none of the classic path tricks (shared/ROBUSTNESS.md §17) is even
 * representable: a name starting with '~' (other servers read "~user" as
 * another user's mail, as RFC 3501's own example does), and cur, new and
 * tmp as a child of INBOX (INBOX is the Maildir root, so a naive mapping
 * would put them onto INBOX's own directories; ours would not, but a name
 * that looks like it does is worth refusing). '.' is refused anywhere, which
 * also refuses "." and "..". Control characters are C0, DEL and C1
 * (U+0080..U+009F); quotes, backslashes, '*', '%' and '~' inside a name are
 * ordinary characters: the IMAP layer quotes or literal-encodes names.
 *
 * Modified UTF-7 decoding accepts only the canonical form, the one the
 * encoder produces, so decode followed by encode gives back the input and
 * two spellings of one name can never name two directories.
 */
#include "storage/storage.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

/* -------------------------------------------------------- characters */

/* C0, DEL and C1 (U+0080..U+009F). */
static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* ------------------------------------------------------------ output */

/* A bounded string being written; overflow sticks. One byte is always
 * kept for the NUL. */
struct out {
	char *p;
	size_t size;
	size_t len;
	bool overflow;
};

static void out_init(struct out *o, char *p, size_t size)
{
	o->p = p;
	o->size = size;
	o->len = 0;
	o->overflow = size == 0;
	if (size > 0)
		p[0] = '\0';
}

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->overflow)
		return;
	if (n >= o->size - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_addc(struct out *o, char c)
{
	out_add(o, &c, 1);
}

/* 0 if everything fit; otherwise -1 and the output is the empty string. */
static int out_finish(struct out *o)
{
	if (o->overflow) {
		if (o->size > 0)
			o->p[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------- modified UTF-7 */

/* Modified UTF-7's base64 has ',' where base64 has '/'. */
#define MUTF7_C63 ','

/* Printable US-ASCII: the characters that represent themselves. */
static bool mutf7_direct(uint32_t cp)
{
	return cp >= 0x20 && cp <= 0x7e;
}

/*
 * Encode len bytes of UTF-8 at s (no NUL inside) and append to o. -1 on
 * invalid UTF-8; overflow is left in o.
 */
static int mutf7_encode_n(const char *s, size_t len, struct out *o)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	bool in_run = false;
	uint32_t bits = 0;
	unsigned int nbits = 0;

	while (i < len) {
		uint32_t cp;
		int n = utf8_decode(p + i, len - i, &cp);

		if (n < 0 || cp == 0)
			return -1;
		i += (size_t)n;
		if (mutf7_direct(cp)) {
			if (in_run) {
				if (nbits > 0)
					out_addc(o, base64_digit(bits << (6 - nbits), MUTF7_C63));
				out_addc(o, '-');
				in_run = false;
				nbits = 0;
				bits = 0;
			}
			if (cp == '&')
				out_add(o, "&-", 2);
			else
				out_addc(o, (char)cp);
			continue;
		}
		if (!in_run) {
			out_addc(o, '&');
			in_run = true;
		}
		uint32_t units[2];
		int nunits = 1;

		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nunits = 2;
		} else {
			units[0] = cp;
		}
		for (int u = 0; u < nunits; u++) {
			bits = (bits << 16) | units[u];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				out_addc(o, base64_digit(bits >> nbits, MUTF7_C63));
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (in_run) {
		if (nbits > 0)
			out_addc(o, base64_digit(bits << (6 - nbits), MUTF7_C63));
		out_addc(o, '-');
	}
	return 0;
}

static void utf8_put(struct out *o, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	out_add(o, b, n);
}

/*
 * Decode one base64 run starting just after its '&' at *pp and ending with
 * '-' (consumed). Only the canonical form is accepted: at least one UTF-16
 * unit, fewer than 6 leftover bits and all of them zero, surrogates in
 * pairs, and no character that could have been written directly (printable
 * ASCII) or that a C string cannot hold (U+0000).
 */
static int mutf7_decode_run(const unsigned char **pp, struct out *o)
{
	const unsigned char *p = *pp;
	uint32_t bits = 0, high = 0;
	unsigned int nbits = 0;
	bool any = false;

	for (;; p++) {
		if (*p == '-')
			break;
		int v = base64_value(*p, MUTF7_C63);

		if (v < 0)
			return -1;      /* bad base64 or no closing '-' */
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;

		bits &= (1u << nbits) - 1;
		any = true;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;      /* high surrogate without low */
			utf8_put(o, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1;      /* low surrogate alone */
		} else if (unit == 0 || mutf7_direct(unit)) {
			return -1;
		} else {
			utf8_put(o, unit);
		}
	}
	if (!any || high != 0 || nbits >= 6 || bits != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

/* Decode the NUL-terminated s and append to o. */
static int mutf7_decode_str(const char *s, struct out *o)
{
	const unsigned char *p = (const unsigned char *)s;
	bool after_run = false;

	while (*p != '\0') {
		if (*p == '&') {
			if (p[1] == '-') {
				out_addc(o, '&');
				p += 2;
				after_run = false;
				continue;
			}
			/* Two runs in a row must have been written as one. */
			if (after_run)
				return -1;
			p++;
			if (mutf7_decode_run(&p, o) < 0)
				return -1;
			after_run = true;
			continue;
		}
		if (!mutf7_direct(*p))
			return -1;      /* raw 8-bit or control byte */
		out_addc(o, (char)*p);
		p++;
		after_run = false;
	}
	return 0;
}

int store_mutf7_encode(const char *utf8, char *out, size_t out_size)
{
	struct out o;

	out_init(&o, out, out_size);
	if (mutf7_encode_n(utf8, strlen(utf8), &o) < 0) {
		if (out_size > 0)
			out[0] = '\0';
		return -1;
	}
	return out_finish(&o);
}

int store_mutf7_decode(const char *mutf7, char *out, size_t out_size)
{
	struct out o;

	out_init(&o, out, out_size);
	if (mutf7_decode_str(mutf7, &o) < 0) {
		if (out_size > 0)
			out[0] = '\0';
		return -1;
	}
	return out_finish(&o);
}

/* ------------------------------------------------------------- names */

static bool is_maildir_subdir(const char *s, size_t n)
{
	return n == 3 && (memcmp(s, "cur", 3) == 0 || memcmp(s, "new", 3) == 0 ||
			  memcmp(s, "tmp", 3) == 0);
}

/* Whole-name checks: length, UTF-8, control characters. */
static const char *check_chars(const char *name, size_t *len_r)
{
	size_t len = strnlen(name, STORE_NAME_MAX + 1);
	const unsigned char *p = (const unsigned char *)name;

	if (len == 0)
		return "empty name";
	if (len > STORE_NAME_MAX)
		return "name too long";
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		int n = utf8_decode(p + i, len - i, &cp);

		if (n < 0)
			return "invalid UTF-8";
		if (is_control(cp))
			return "control character in name";
		i += (size_t)n;
	}
	*len_r = len;
	return NULL;
}

static const char *name_to_dir(const char *name, char *dir, size_t dir_size)
{
	char tmp[NAME_MAX + 1];
	struct out o;
	const char *why;
	size_t len = 0;
	int depth = 0;
	bool inbox_child = false;

	if ((why = check_chars(name, &len)) != NULL)
		return why;
	if (name[0] == STORE_SEP)
		return "name starts with a separator";
	if (name[len - 1] == STORE_SEP)
		return "name ends with a separator";
	if (name[0] == '~')
		return "name starts with '~'";
	if (strcasecmp(name, "INBOX") == 0) {
		if (dir_size < 1)
			return "buffer too small";
		dir[0] = '\0';
		return NULL;
	}

	out_init(&o, tmp, sizeof(tmp));
	for (const char *p = name; *p != '\0';) {
		const char *sep = strchr(p, STORE_SEP);
		size_t n = sep != NULL ? (size_t)(sep - p) : strlen(p);

		if (n == 0)
			return "empty level in name";
		if (memchr(p, '.', n) != NULL)
			return "'.' in name";
		if (++depth > STORE_DEPTH_MAX)
			return "name too deep";
		if (depth == 1 && is_maildir_subdir(p, n))
			return "reserved name";
		if (depth == 2 && inbox_child && is_maildir_subdir(p, n))
			return "reserved name";
		out_addc(&o, '.');
		if (depth == 1 && n == 5 && strncasecmp(p, "INBOX", 5) == 0) {
			out_add(&o, "INBOX", 5);
			inbox_child = true;
		} else if (mutf7_encode_n(p, n, &o) < 0) {
			return "invalid UTF-8";  /* not reached: checked above */
		}
		p += n;
		if (*p == STORE_SEP)
			p++;
	}
	if (o.overflow)
		return "name too long on disk";
	if (o.len >= dir_size)
		return "buffer too small";
	memcpy(dir, tmp, o.len + 1);
	return NULL;
}

int store_name_to_dir(const char *name, char *dir, size_t dir_size, const char **why_r)
{
	const char *why = name_to_dir(name, dir, dir_size);

	if (why == NULL)
		return 0;
	if (dir_size > 0)
		dir[0] = '\0';
	if (why_r != NULL)
		*why_r = why;
	return -1;
}

int store_dir_to_name(const char *dir, char *name, size_t name_size)
{
	char tmp[4 * (NAME_MAX + 1)];
	char again[NAME_MAX + 1];
	struct out o;
	size_t len;

	if (name_size > 0)
		name[0] = '\0';
	if (dir[0] == '\0') {
		/* The Maildir root. */
		if (name_size < sizeof("INBOX"))
			return -1;
		memcpy(name, "INBOX", sizeof("INBOX"));
		return 0;
	}
	if (dir[0] != '.' || strnlen(dir, NAME_MAX + 1) > NAME_MAX)
		return -1;
	out_init(&o, tmp, sizeof(tmp));
	if (mutf7_decode_str(dir + 1, &o) < 0 || out_finish(&o) < 0)
		return -1;
	/* '.' can only come from a literal '.', never from a base64 run. */
	for (char *p = tmp; *p != '\0'; p++) {
		if (*p == '.')
			*p = STORE_SEP;
		else if (*p == STORE_SEP)
			return -1;
	}
	/* Only what store_name_to_dir would have written is a folder. */
	if (name_to_dir(tmp, again, sizeof(again)) != NULL || strcmp(again, dir) != 0)
		return -1;
	len = strlen(tmp);
	if (len >= name_size)
		return -1;
	memcpy(name, tmp, len + 1);
	return 0;
}
