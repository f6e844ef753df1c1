/*
 * output.c — IMAP syntax in both directions for every command family:
 * strings and literals out, flags, mailbox names (modified UTF-7 or
 * UTF-8), dates, numbers, and storage errors as tagged NO responses with
 * their response codes (RFC 5530).
 */
#include "imapd-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------- strings */

/* A quoted string can carry s: no NUL, CR or LF, not too long, 8-bit
 * only where UTF-8 is allowed and valid. */
static bool quotable(const char *s, size_t len, bool utf8)
{
	if (len > 1024)
		return false;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		uint32_t cp;
		int n;

		if (!utf8 || (n = utf8_decode(s + i, len - i, &cp)) < 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

void imap__buf_string(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (!quotable(s, len, utf8)) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, s + i, 1);
	}
	buf_append(out, "\"", 1);
}

void imap__buf_nstring(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		imap__buf_string(out, s, len, utf8);
}

/* --------------------------------------------------------------- flags */

static const struct {
	uint32_t flag;
	const char *name;
} system_flags[] = {
	{ STORE_FLAG_ANSWERED, "\\Answered" },
	{ STORE_FLAG_FLAGGED, "\\Flagged" },
	{ STORE_FLAG_DELETED, "\\Deleted" },
	{ STORE_FLAG_SEEN, "\\Seen" },
	{ STORE_FLAG_DRAFT, "\\Draft" },
};

void imap__buf_flags(struct buf *out, const struct store_mailbox *mb, const struct store_msg *m)
{
	bool first = true;

	buf_append(out, "(", 1);
	for (size_t i = 0; i < N_ELEMENTS(system_flags); i++) {
		if ((m->flags & system_flags[i].flag) == 0)
			continue;
		if (!first)
			buf_append(out, " ", 1);
		buf_append_str(out, system_flags[i].name);
		first = false;
	}
	for (unsigned k = 0; k < 64; k++) {
		const char *name;

		if ((m->keywords & ((uint64_t)1 << k)) == 0 ||
		    (name = store_mailbox_keyword(mb, k)) == NULL)
			continue;
		if (!first)
			buf_append(out, " ", 1);
		buf_append_str(out, name);
		first = false;
	}
	buf_append(out, ")", 1);
}

/* flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom: an atom without
 * "\" (which only system flags carry). */
static bool valid_keyword(const char *s)
{
	if (*s == '\0' || strlen(s) > 128)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int parse_one_flag(const struct imap_arg *arg, struct arena *a, uint32_t *flags,
			  const char **kw, size_t *nkw, const char **error_r)
{
	const char *s = arg->str;

	if (arg->type != IMAP_ARG_ATOM) {
		*error_r = "BAD Flags are atoms";
		return -1;
	}
	if (s[0] == '\\') {
		for (size_t i = 0; i < N_ELEMENTS(system_flags); i++) {
			if (strcasecmp(s, system_flags[i].name) == 0) {
				*flags |= system_flags[i].flag;
				return 0;
			}
		}
		*error_r = strcasecmp(s, "\\Recent") == 0 ?
			   "BAD \\Recent cannot be set" : "BAD Invalid system flag";
		return -1;
	}
	if (!valid_keyword(s)) {
		*error_r = "BAD Invalid keyword";
		return -1;
	}
	for (size_t i = 0; i < *nkw; i++)
		if (strcasecmp(kw[i], s) == 0)
			return 0;
	kw[(*nkw)++] = arena_strdup(a, s);
	return 0;
}

int imap__parse_flags(const struct imap_arg *arg, struct arena *a, uint32_t *flags_r,
		      const char ***kw_r, size_t *kw_count_r, const char **error_r)
{
	const struct imap_arg *first = arg;
	unsigned n = 1;

	*flags_r = 0;
	*kw_count_r = 0;
	if (arg->type == IMAP_ARG_LIST) {
		first = arg->child;
		n = arg->count;
	}
	const char **kw = arena_alloc(a, (n + 1) * sizeof(*kw));

	for (const struct imap_arg *f = first; f != NULL && n > 0; f = f->next, n--)
		if (parse_one_flag(f, a, flags_r, kw, kw_count_r, error_r) < 0)
			return -1;
	*kw_r = kw;
	return 0;
}

/* ------------------------------------------------------- mailbox names */

void imap__buf_mailbox(struct buf *out, const char *name, const struct imap_enabled *e)
{
	if (!e->utf8) {
		size_t size = strlen(name) * 4 + 16;
		char *enc = xcalloc(1, size);

		if (store_mutf7_encode(name, enc, size) == 0) {
			imap__buf_string(out, enc, strlen(enc), false);
			free(enc);
			return;
		}
		free(enc);
	}
	imap__buf_string(out, name, strlen(name), true);
}

const char *imap__mailbox_in(const struct imap_arg *arg, const struct imap_enabled *e,
			     struct arena *a, const char **error_r)
{
	const char *raw = imap__arg_astring(arg);
	char dir[STORE_NAME_MAX * 4 + 64];
	const char *why;

	if (raw == NULL || (arg->flags & IMAP_ARG_HAS_NUL)) {
		*error_r = "BAD Mailbox name expected";
		return NULL;
	}
	if (strcasecmp(raw, "INBOX") == 0)
		return "INBOX";
	const char *name = raw;

	if (!e->utf8) {
		size_t size = strlen(raw) * 3 + 1;
		char *dec = arena_alloc(a, size);

		for (const unsigned char *p = (const unsigned char *)raw; *p != '\0'; p++) {
			if (*p >= 0x80) {
				*error_r = "BAD [CANNOT] 8-bit mailbox names need ENABLE UTF8=ACCEPT";
				return NULL;
			}
		}
		if (store_mutf7_decode(raw, dec, size) < 0) {
			*error_r = "BAD [CANNOT] Invalid modified UTF-7 in mailbox name";
			return NULL;
		}
		name = dec;
	}
	if (store_name_to_dir(name, dir, sizeof(dir), &why) < 0) {
		*error_r = arena_printf(a, "NO [CANNOT] Invalid mailbox name: %s", why);
		return NULL;
	}
	/* "inbox/x" is "INBOX/x". */
	if (strncasecmp(name, "INBOX/", 6) == 0)
		name = arena_printf(a, "INBOX%s", name + 5);
	return name;
}

/* ---------------------------------------------------------------- dates */

static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

void imap__buf_date_time(struct buf *out, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		   months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static bool valid_day(int y, int m, int d)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (y < 1 || y > 9999 || m < 0 || m > 11 || d < 1 || d > mdays[m])
		return false;
	if (m == 1 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int64_t imap__parse_date(const char *s)
{
	/* date-day "-" date-month "-" date-year; date-day is 1*2DIGIT. */
	size_t dlen = strspn(s, "0123456789");
	int d, m, y;

	if (dlen < 1 || dlen > 2 || s[dlen] != '-')
		return INT64_MIN;
	d = atoi(s);
	s += dlen + 1;
	if ((m = month_index(s)) < 0 || s[3] != '-' || !digits(s + 4, 4) || s[8] != '\0')
		return INT64_MIN;
	y = atoi(s + 4);
	if (!valid_day(y, m, d))
		return INT64_MIN;
	return days_from_civil(y, (unsigned)m + 1, (unsigned)d);
}

int64_t imap__parse_date_time(const char *s)
{
	/* (SP DIGIT / 2DIGIT) "-" date-month "-" date-year SP time SP zone */
	int d, m, y, hh, mm, ss, zone;

	if (strlen(s) != 26 || !(s[0] == ' ' || (s[0] >= '0' && s[0] <= '9')) ||
	    !digits(s + 1, 1) || s[2] != '-' || s[6] != '-' || !digits(s + 7, 4) ||
	    s[11] != ' ' || !digits(s + 12, 2) || s[14] != ':' || !digits(s + 15, 2) ||
	    s[17] != ':' || !digits(s + 18, 2) || s[20] != ' ' ||
	    (s[21] != '+' && s[21] != '-') || !digits(s + 22, 4))
		return -1;
	d = (s[0] == ' ' ? 0 : (s[0] - '0') * 10) + (s[1] - '0');
	if ((m = month_index(s + 3)) < 0)
		return -1;
	y = atoi(s + 7);
	hh = atoi(s + 12);
	mm = atoi(s + 15);
	ss = atoi(s + 18);
	zone = ((s[22] - '0') * 10 + (s[23] - '0')) * 60 + (s[24] - '0') * 10 + (s[25] - '0');
	if (!valid_day(y, m, d) || hh > 23 || mm > 59 || ss > 60 || zone > 24 * 60)
		return -1;
	int64_t t = days_from_civil(y, (unsigned)m + 1, (unsigned)d) * 86400 +
		    hh * 3600 + mm * 60 + ss;

	return s[21] == '+' ? t - zone * 60 : t + zone * 60;
}

/* -------------------------------------------------------------- numbers */

bool imap__parse_u64(const char *s, bool zero_ok, uint64_t *n_r)
{
	uint64_t n = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n == 0 && !zero_ok)
		return false;
	*n_r = n;
	return true;
}

bool imap__parse_u32(const char *s, bool zero_ok, uint32_t *n_r)
{
	uint64_t n;

	if (!imap__parse_u64(s, zero_ok, &n) || n > UINT32_MAX)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

/* --------------------------------------------------------------- errors */

void imap__tagged_store_error(struct imap_cmd *cmd, const struct store_error *err,
			      bool trycreate)
{
	const char *sid = conn_session_id(cmd->s->conn);

	switch (err->code) {
	case STORE_ERR_NOTFOUND:
		imap__tagged(cmd, "NO", trycreate ? "[TRYCREATE] Mailbox does not exist" :
			     "[NONEXISTENT] Mailbox does not exist");
		return;
	case STORE_ERR_EXISTS:
		imap__tagged(cmd, "NO", "[ALREADYEXISTS] Mailbox already exists");
		return;
	case STORE_ERR_BADNAME:
		imap__tagged(cmd, "NO", "[CANNOT] Invalid mailbox name");
		return;
	case STORE_ERR_PERM:
		imap__tagged(cmd, "NO", "[CANNOT] Operation not allowed (%s)", err->msg);
		return;
	case STORE_ERR_QUOTA:
		imap__tagged(cmd, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_ERR_LIMIT:
		imap__tagged(cmd, "NO", "[LIMIT] %s", err->msg);
		return;
	case STORE_ERR_NOSPACE:
		log_error("%s: %s", cmd->name, err->msg);
		imap__tagged(cmd, "NO", "[UNAVAILABLE] Out of disk space, try again later (%s)", sid);
		return;
	case STORE_ERR_CORRUPT:
	case STORE_ERR_TEMP:
	case STORE_ERR_NONE:
		break;
	}
	log_error("%s: %s", cmd->name, err->msg);
	imap__tagged(cmd, "NO", "[SERVERBUG] Internal error, try again later (%s)", sid);
}
