/*
 * cfg.c — tern.conf: typed keys in one table, parsed with inih.
 *
 * Every key is one line of cfg_keys[]: its section, name, type, where it
 * lives in struct cfg (or struct cfg_service), its range and its default
 * written in tern.conf syntax. Defaults go through the same parser as the
 * file, so they are checked like any value, and cfg_print writes values in
 * the form the parser reads back. Adding a key is a field in common.h, one
 * line here, and its entry in docs/configuration.md and etc/tern.conf (a
 * unit test checks both).
 *
 * inih is fed through our own line reader rather than ini_parse_string or
 * ini_parse_file. That reader knows which line inih is on, so the handler
 * can put the right line number on its error even when inih found a syntax
 * error first, and it turns what inih would silently mangle (lines longer
 * than its buffer, NUL bytes) into errors.
 */
#include "common-private.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#define KIB (UINT64_C(1024))
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define SECOND (UINT64_C(1000)) /* durations are kept in milliseconds */
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* A config file is small; this only stops cfg_load reading /dev/zero. */
#define CFG_MAX_FILE (1024 * 1024)

/* The longest line inih takes whole: its buffer holds the line, an LF and
 * a NUL. The reader gets the real size; cfg_print needs it up front. */
#define CFG_MAX_LINE (INI_MAX_LINE - 2)

enum cfg_type {
	CFG_STRING,   /* char *, not empty; with choices, one of them */
	CFG_OPTSTRING, /* char *, may be empty */
	CFG_BOOL,     /* bool: yes or no */
	CFG_PATH,     /* char *, an absolute path */
	CFG_ENUM,     /* an enum: the index of the value in choices */
	CFG_UINT,     /* uint32_t, decimal */
	CFG_SIZE,     /* uint64_t bytes: 512, 8K, 16M, 1G */
	CFG_DURATION, /* uint64_t milliseconds: 500ms, 10s, 3m, 1h, 1d */
	CFG_ADDRLIST, /* struct cfg_strlist of listen addresses */
	CFG_CIDRLIST, /* struct cfg_strlist of networks, each "addr/prefix" */
	CFG_NAMELIST, /* struct cfg_strlist of user names */
};

/*
 * The sections in file order, and where their keys live in struct cfg. A
 * section takes the keys of one column of cfg_keys[] (the service keys are
 * shared by [imap], [pop3] and [lmtp], each in its own struct cfg_service)
 * and optionally those of a second column of its own, kept in struct cfg
 * itself ([lmtp]'s delivery keys, [pop3]'s UIDLs and login delay).
 */
struct cfg_section {
	const char *name;
	const char *keys;  /* the section column of cfg_keys[] it uses */
	size_t offset;     /* of its struct cfg_service, 0 for the others */
	unsigned svc;      /* which default of cfg_key.def[] applies */
	const char *own_keys; /* a second column, only this section's; or NULL */
};

static const struct cfg_section sections[] = {
	{ "global", "global", 0, 0, NULL },
	{ "tls", "tls", 0, 0, NULL },
	{ "imap", "service", offsetof(struct cfg, imap), 0, "imap" },
	{ "pop3", "service", offsetof(struct cfg, pop3), 1, "pop3" },
	{ "lmtp", "service", offsetof(struct cfg, lmtp), 2, "lmtp" },
	{ "auth", "auth", 0, 0, NULL },
};

struct cfg_key {
	const char *section;        /* "global", "tls", "lmtp", "auth", or
				     * "service": [imap], [pop3] and [lmtp] */
	const char *name;
	enum cfg_type type;
	size_t offset;              /* in struct cfg, or struct cfg_service */
	uint64_t min, max;          /* CFG_UINT, CFG_SIZE, CFG_DURATION */
	const char *const *choices; /* CFG_ENUM, CFG_STRING; NULL-terminated */
	/* Default for imap, pop3, lmtp; a NULL entry takes def[0]. */
	const char *def[3];
};

#define G(field) offsetof(struct cfg, field)
#define S(field) offsetof(struct cfg_service, field)

/* In the order of enum log_target and enum log_level. */
static const char *const log_targets[] = { "stderr", "syslog", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const tls_protocols[] = { "TLSv1.2", "TLSv1.3", NULL };
static const char *const user_kinds[] = { "virtual", "system", NULL };
/* In the order of enum cfg_uidl_format. */
static const char *const uidl_formats[] = { "dovecot", "courier", "cyrus", NULL };
/* In the order of false, true. */
static const char *const booleans[] = { "no", "yes", NULL };
/* Characters that login names never contain (auth/username.c). */
static const char *const master_separators[] = { "*", "!", "#", "^", NULL };

/* Mozilla "intermediate": ECDHE with AEAD only, no DHE. */
#define DEFAULT_CIPHERS                                                      \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"         \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"         \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_CIPHERSUITES                                                 \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"                     \
	"TLS_CHACHA20_POLY1305_SHA256"

static const struct cfg_key cfg_keys[] = {
	/* section, name, type, offset, min, max, choices, default(s) */
	{ "global", "mail_user", CFG_STRING, G(mail_user), 0, 0, NULL, { "tern" } },
	{ "global", "mail_root", CFG_PATH, G(mail_root), 0, 0, NULL, { "/var/lib/tern/mail" } },
	{ "global", "log_target", CFG_ENUM, G(log_target), 0, 0, log_targets, { "stderr" } },
	{ "global", "log_level", CFG_ENUM, G(log_level), 0, 0, log_levels, { "info" } },

	{ "tls", "cert", CFG_PATH, G(tls_cert), 0, 0, NULL, { "/etc/tern/tls/cert.pem" } },
	{ "tls", "key", CFG_PATH, G(tls_key), 0, 0, NULL, { "/etc/tern/tls/key.pem" } },
	{ "tls", "min_protocol", CFG_STRING, G(tls_min_protocol), 0, 0, tls_protocols, { "TLSv1.2" } },
	{ "tls", "ciphers", CFG_STRING, G(tls_ciphers), 0, 0, NULL, { DEFAULT_CIPHERS } },
	{ "tls", "ciphersuites", CFG_STRING, G(tls_ciphersuites), 0, 0, NULL, { DEFAULT_CIPHERSUITES } },

	{ "service", "listen", CFG_ADDRLIST, S(listen), 0, 0, NULL,
	  { "0.0.0.0:143 [::]:143", "0.0.0.0:110 [::]:110", "unix:/run/tern/lmtp.sock" } },
	{ "service", "listen_tls", CFG_ADDRLIST, S(listen_tls), 0, 0, NULL,
	  { "0.0.0.0:993 [::]:993", "0.0.0.0:995 [::]:995", "" } },
	{ "service", "max_connections", CFG_UINT, S(max_connections), 1, 1000000, NULL, { "1000" } },
	{ "service", "max_connections_per_ip", CFG_UINT, S(max_connections_per_ip), 0, 1000000, NULL, { "50" } },
	{ "service", "login_timeout", CFG_DURATION, S(login_timeout_ms), 1, DAY, NULL, { "3m", "3m", "5m" } },
	{ "service", "idle_timeout", CFG_DURATION, S(idle_timeout_ms), 1, DAY, NULL, { "30m", "10m", "5m" } },
	{ "service", "output_timeout", CFG_DURATION, S(output_timeout_ms), 1, DAY, NULL, { "5m" } },
	{ "service", "shutdown_timeout", CFG_DURATION, S(shutdown_timeout_ms), 0, HOUR, NULL, { "10s" } },
	{ "service", "max_line_length", CFG_SIZE, S(max_line_length), 512, 16 * MIB, NULL, { "8K" } },
	{ "service", "max_line_length_auth", CFG_SIZE, S(max_line_length_auth), 512, 16 * MIB, NULL, { "64K", "8K", "8K" } },
	{ "service", "output_buffer_size", CFG_SIZE, S(output_buffer_size), 4 * KIB, 16 * MIB, NULL, { "64K" } },
	{ "service", "trusted_proxies", CFG_CIDRLIST, S(trusted_proxies), 0, 0, NULL, { "" } },

	/* Delivery ([lmtp] only): "" host name means the system's. */
	{ "lmtp", "hostname", CFG_OPTSTRING, G(lmtp_hostname), 0, 0, NULL, { "" } },
	{ "lmtp", "local_domains", CFG_NAMELIST, G(lmtp_local_domains), 0, 0, NULL, { "" } },
	{ "lmtp", "recipient_delimiter", CFG_OPTSTRING, G(lmtp_recipient_delimiter), 0, 0, NULL, { "+" } },
	{ "lmtp", "save_to_detail_mailbox", CFG_BOOL, G(lmtp_save_to_detail_mailbox), 0, 0, booleans, { "yes" } },
	{ "lmtp", "max_message_size", CFG_SIZE, G(lmtp_max_message_size), KIB, 4 * GIB, NULL, { "64M" } },
	{ "lmtp", "max_recipients", CFG_UINT, G(lmtp_max_recipients), 1, 100000, NULL, { "100" } },
	{ "lmtp", "quota_full_tempfail", CFG_BOOL, G(lmtp_quota_full_tempfail), 0, 0, booleans, { "no" } },

	/* [imap] only: command limits after login. */
	{ "imap", "append_limit", CFG_SIZE, G(imap_append_limit), KIB, 4 * GIB, NULL, { "64M" } },
	{ "imap", "max_nesting", CFG_UINT, G(imap_max_nesting), 1, 256, NULL, { "32" } },
	{ "imap", "max_sequence_ranges", CFG_UINT, G(imap_max_sequence_ranges), 16, 1000000, NULL, { "65536" } },
	{ "imap", "max_user_connections_per_ip", CFG_UINT, G(imap_max_user_connections_per_ip), 0, 1000000, NULL, { "50" } },

	/* [pop3] only. */
	{ "pop3", "uidl_format", CFG_ENUM, G(pop3_uidl_format), 0, 0, uidl_formats, { "dovecot" } },
	{ "pop3", "login_delay", CFG_DURATION, G(pop3_login_delay_ms), 0, DAY, NULL, { "0" } },

	{ "auth", "users", CFG_ENUM, G(auth_users), 0, 0, user_kinds, { "virtual" } },
	{ "auth", "users_db", CFG_PATH, G(auth_users_db), 0, 0, NULL, { "/var/lib/tern/users.sqlite" } },
	{ "auth", "pam_service", CFG_STRING, G(auth_pam_service), 0, 0, NULL, { "tern" } },
	{ "auth", "pam_confdir", CFG_PATH, G(auth_pam_confdir), 0, 0, NULL, { "/etc/pam.d" } },
	{ "auth", "worker_threads", CFG_UINT, G(auth_worker_threads), 1, 64, NULL, { "4" } },
	{ "auth", "request_timeout", CFG_DURATION, G(auth_request_timeout_ms), SECOND, 10 * MINUTE, NULL, { "30s" } },
	{ "auth", "failure_delay", CFG_DURATION, G(auth_failure_delay_ms), 0, MINUTE, NULL, { "2s" } },
	{ "auth", "failure_delay_max", CFG_DURATION, G(auth_failure_delay_max_ms), 0, HOUR, NULL, { "15s" } },
	{ "auth", "max_concurrent_per_ip", CFG_UINT, G(auth_max_concurrent_per_ip), 1, 10000, NULL, { "5" } },
	{ "auth", "max_failures", CFG_UINT, G(auth_max_failures), 1, 100, NULL, { "3" } },
	{ "auth", "master_users", CFG_NAMELIST, G(auth_master_users), 0, 0, NULL, { "" } },
	{ "auth", "master_separator", CFG_STRING, G(auth_master_separator), 0, 0, master_separators, { "*" } },
};

/* CFG_ENUM values are stored through an int. */
_Static_assert(sizeof(enum log_target) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_user_kind) == sizeof(int), "enum size");

/* Suffixes, largest first: cfg_print uses the first that divides exactly. */
struct unit {
	const char *suffix;
	uint64_t factor;
};

static const struct unit size_units[] = {
	{ "G", GIB }, { "M", MIB }, { "K", KIB }, { "k", KIB }, { "", 1 },
};
static const struct unit duration_units[] = {
	{ "d", DAY }, { "h", HOUR }, { "m", MINUTE }, { "s", SECOND },
	{ "ms", 1 }, { "", SECOND },
};

struct parser {
	struct cfg *cfg;
	/* The reader: the rest of the text, and the line inih is on. */
	const char *pos, *end;
	unsigned line;
	bool indented;
	/* The first error, without "file:line: ". */
	char *error;
	unsigned error_line;
	/* Keys given so far, by cfg_keys[] and sections[] index. */
	bool seen[N_ELEMENTS(cfg_keys)][N_ELEMENTS(sections)];
};

static char *str_vprintf(const char *fmt, va_list ap) ATTR_PRINTF(1, 0);
static char *str_vprintf(const char *fmt, va_list ap)
{
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return xstrdup("(error formatting message)");
	char *s = xcalloc(1, (size_t)n + 1);

	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *str_printf(const char *fmt, ...) ATTR_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *s = str_vprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Record an error on the current line unless there is one already, since
 * only the first is reported. Returns -1. */
static int fail(struct parser *p, const char *fmt, ...) ATTR_PRINTF(2, 3);
static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->error != NULL)
		return -1;
	va_start(ap, fmt);
	p->error = str_vprintf(fmt, ap);
	va_end(ap);
	p->error_line = p->line;
	return -1;
}

/* Does section s take key k? */
static bool section_has(const struct cfg_section *s, const struct cfg_key *k)
{
	return strcmp(k->section, s->keys) == 0 ||
	       (s->own_keys != NULL && strcmp(k->section, s->own_keys) == 0);
}

/* Where k of section s lives: the main column's keys at the section's
 * offset, its own column's in struct cfg itself. */
static size_t field_offset(const struct cfg_section *s, const struct cfg_key *k)
{
	return (strcmp(k->section, s->keys) == 0 ? s->offset : 0) + k->offset;
}

static void *field(struct cfg *cfg, const struct cfg_section *s, const struct cfg_key *k)
{
	return (char *)cfg + field_offset(s, k);
}

static const void *field_const(const struct cfg *cfg, const struct cfg_section *s,
			       const struct cfg_key *k)
{
	return (const char *)cfg + field_offset(s, k);
}

static bool is_list(const struct cfg_key *k)
{
	return k->type == CFG_ADDRLIST || k->type == CFG_CIDRLIST || k->type == CFG_NAMELIST;
}

/* ------------------------------------------------------------- values */

static void strlist_add(struct cfg_strlist *l, char *item)
{
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = item;
}

static void strlist_clear(struct cfg_strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* Decimal digits only: no sign, no space, not empty. *s moves past them.
 * 0 on success, -1 if there are no digits, -2 on overflow. */
static int parse_digits(const char **s, uint64_t *v_r)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*s = p;
	*v_r = v;
	return 0;
}

/* A number followed by exactly one of the suffixes. Same returns as
 * parse_digits, -1 also for an unknown suffix. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n_units,
			   uint64_t *v_r)
{
	uint64_t v;
	int ret = parse_digits(&s, &v);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(s, units[i].suffix) != 0)
			continue;
		if (v > UINT64_MAX / units[i].factor)
			return -2;
		*v_r = v * units[i].factor;
		return 0;
	}
	return -1;
}

/* Print v with the largest suffix that divides it: 65536 -> "64K". */
static void format_number(enum cfg_type type, uint64_t v, char *buf, size_t size)
{
	const struct unit *units = NULL;
	size_t n = 0;

	if (type == CFG_SIZE) {
		units = size_units;
		n = N_ELEMENTS(size_units);
	} else if (type == CFG_DURATION) {
		units = duration_units;
		n = N_ELEMENTS(duration_units);
	}
	for (size_t i = 0; v != 0 && i < n; i++) {
		if (v % units[i].factor == 0) {
			snprintf(buf, size, "%llu%s",
				 (unsigned long long)(v / units[i].factor), units[i].suffix);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)v);
}

static int parse_number(struct parser *p, const char *where, const struct cfg_key *k,
			const char *value, uint64_t *v_r)
{
	char lo[32], hi[32];
	int ret;

	if (k->type == CFG_SIZE) {
		ret = parse_with_unit(value, size_units, N_ELEMENTS(size_units), v_r);
		if (ret == -1)
			return fail(p, "%s: '%s' is not a size (a number with an optional suffix k, M or G)",
				    where, value);
	} else if (k->type == CFG_DURATION) {
		ret = parse_with_unit(value, duration_units, N_ELEMENTS(duration_units), v_r);
		if (ret == -1)
			return fail(p, "%s: '%s' is not a duration (a number with a unit ms, s, m, h or d)",
				    where, value);
	} else {
		const char *end = value;

		ret = parse_digits(&end, v_r);
		if (ret == -1 || (ret == 0 && *end != '\0'))
			return fail(p, "%s: '%s' is not a number", where, value);
	}
	if (ret < 0 || *v_r < k->min || *v_r > k->max) {
		format_number(k->type, k->min, lo, sizeof(lo));
		format_number(k->type, k->max, hi, sizeof(hi));
		return fail(p, "%s: %s is out of range (%s..%s)", where, value, lo, hi);
	}
	return 0;
}

/* "address/prefix" or a bare address, IPv4 or IPv6. Returns the network
 * with its prefix always written out, or NULL (and *why_r) if invalid. */
static char *parse_cidr(const char *s, const char **why_r)
{
	struct sockaddr_storage net;
	unsigned bits;

	if (cidr_parse(s, &net, &bits) < 0) {
		*why_r = "expected an IPv4 or IPv6 address with an optional /prefix "
			 "(0..32 or 0..128)";
		return NULL;
	}
	if (strchr(s, '/') == NULL)
		return str_printf("%s/%u", s, bits);
	return xstrdup(s);
}

/* Split at commas and whitespace; check and append each item. */
static int parse_list(struct parser *p, const char *where, const struct cfg_key *k,
		      const char *value, struct cfg_strlist *l)
{
	static const char sep[] = ", \t\r\n\v\f";
	char item[CFG_MAX_LINE + 1];
	const char *why;

	for (const char *s = value + strspn(value, sep); *s != '\0'; s += strspn(s, sep)) {
		size_t len = strcspn(s, sep);

		/* inih leaves " ; comment" on continuation lines. */
		if (*s == ';' && s > value && isspace((unsigned char)s[-1]))
			break;

		/* Values come from one line, so an item always fits. */
		if (len >= sizeof(item))
			return fail(p, "%s: item too long", where);
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		if (k->type == CFG_ADDRLIST) {
			why = netaddr_check_listen(item);
			if (why != NULL)
				return fail(p, "%s: bad address '%s': %s", where, item, why);
			strlist_add(l, xstrdup(item));
		} else if (k->type == CFG_NAMELIST) {
			/* Login names are checked fully by auth/; here only what
			 * could never be one. */
			for (const char *c = item; *c != '\0'; c++) {
				if ((unsigned char)*c < 0x21 || *c == 0x7f)
					return fail(p, "%s: bad name '%s'", where, item);
			}
			strlist_add(l, xstrdup(item));
		} else {
			char *net = parse_cidr(item, &why);

			if (net == NULL)
				return fail(p, "%s: bad network '%s': %s", where, item, why);
			strlist_add(l, net);
		}
	}
	return 0;
}

static int parse_value(struct parser *p, const struct cfg_section *s,
		       const struct cfg_key *k, const char *value)
{
	void *dst = field(p->cfg, s, k);
	char where[64];
	uint64_t v;

	snprintf(where, sizeof(where), "[%s] %s", s->name, k->name);
	if (is_list(k))
		return parse_list(p, where, k, value, dst);
	if (value[0] == '\0' && k->type != CFG_OPTSTRING)
		return fail(p, "%s: empty value", where);

	switch (k->type) {
	case CFG_STRING:
	case CFG_OPTSTRING:
	case CFG_PATH:
	case CFG_BOOL:
	case CFG_ENUM: {
		if (k->type == CFG_PATH && value[0] != '/')
			return fail(p, "%s: '%s' is not an absolute path", where, value);
		int i = 0;

		if (k->choices != NULL) {
			while (k->choices[i] != NULL && strcmp(k->choices[i], value) != 0)
				i++;
			if (k->choices[i] == NULL) {
				char allowed[128] = "";

				for (int j = 0; k->choices[j] != NULL; j++) {
					strncat(allowed, j > 0 ? ", " : "",
						sizeof(allowed) - strlen(allowed) - 1);
					strncat(allowed, k->choices[j],
						sizeof(allowed) - strlen(allowed) - 1);
				}
				return fail(p, "%s: '%s' is not one of %s", where, value, allowed);
			}
		}
		if (k->type == CFG_ENUM) {
			*(int *)dst = i;
		} else if (k->type == CFG_BOOL) {
			*(bool *)dst = i == 1;
		} else {
			free(*(char **)dst);
			*(char **)dst = xstrdup(value);
		}
		return 0;
	}
	case CFG_UINT:
		if (parse_number(p, where, k, value, &v) < 0)
			return -1;
		*(uint32_t *)dst = (uint32_t)v;
		return 0;
	case CFG_SIZE:
	case CFG_DURATION:
		if (parse_number(p, where, k, value, &v) < 0)
			return -1;
		*(uint64_t *)dst = v;
		return 0;
	case CFG_ADDRLIST:
	case CFG_CIDRLIST:
	case CFG_NAMELIST:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------- parsing */

static const struct cfg_section *find_section(const char *name, size_t len)
{
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		if (strlen(sections[i].name) == len && memcmp(sections[i].name, name, len) == 0)
			return &sections[i];
	}
	return NULL;
}

/*
 * inih's line reader (like fgets): one line of the text per call. Counting
 * lines here tells the handler which line it is on. A line with a NUL byte
 * or too long for inih's buffer is an error, and inih gets an empty line
 * instead of a mangled one; only a long comment is simply cut short.
 * Section headers are checked here because inih calls the handler only for
 * keys, so an empty unknown section would otherwise pass.
 */
static char *read_line_cb(char *str, int num, void *stream)
{
	struct parser *p = stream;

	if (p->pos >= p->end || num < 2)
		return NULL;

	const char *eol = memchr(p->pos, '\n', (size_t)(p->end - p->pos));
	const char *line = p->pos;
	size_t len = (size_t)((eol != NULL ? eol : p->end) - line);
	size_t start = 0;

	p->pos = eol != NULL ? eol + 1 : p->end;
	p->line++;
	if (p->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
		start = 3; /* UTF-8 BOM, which inih skips too */
	p->indented = len > start && isspace((unsigned char)line[start]);
	while (start < len && isspace((unsigned char)line[start]))
		start++;

	if (memchr(line, '\0', len) != NULL) {
		fail(p, "the line contains a NUL byte");
		len = 0;
	} else if (len > (size_t)num - 2) {
		if (start < len && (line[start] == '#' || line[start] == ';')) {
			len = (size_t)num - 2;
		} else {
			fail(p, "line too long (the limit is %d characters)", num - 2);
			len = 0;
		}
	} else if (!p->indented && start < len && line[start] == '[') {
		const char *name = line + start + 1;
		const char *close = memchr(name, ']', len - start - 1);

		/* Without ']' it is a syntax error that inih reports. */
		if (close != NULL && find_section(name, (size_t)(close - name)) == NULL)
			fail(p, "unknown section [%.*s] (known: [global], [tls], [imap], [pop3], [lmtp])",
			     (int)(close - name), name);
	}
	memcpy(str, line, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int handler_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct cfg_section *s;

	if (p->error != NULL)
		return 0; /* only the first error is reported */
	if (section[0] == '\0') {
		fail(p, "key '%s' is outside any section (put it under [global], [tls], [imap], [pop3] or [lmtp])",
		     name);
		return 0;
	}
	s = find_section(section, strlen(section));
	if (s == NULL) {
		fail(p, "unknown section [%s]", section);
		return 0;
	}

	const struct cfg_key *k = NULL, *elsewhere = NULL;

	for (size_t i = 0; i < N_ELEMENTS(cfg_keys); i++) {
		if (strcmp(cfg_keys[i].name, name) != 0)
			continue;
		if (section_has(s, &cfg_keys[i]))
			k = &cfg_keys[i];
		else
			elsewhere = &cfg_keys[i];
	}
	if (k == NULL) {
		char hint[64] = "";

		if (elsewhere != NULL && strcmp(elsewhere->section, "service") == 0)
			snprintf(hint, sizeof(hint), " (it belongs in [imap], [pop3] or [lmtp])");
		else if (elsewhere != NULL)
			snprintf(hint, sizeof(hint), " (it belongs in [%s])", elsewhere->section);
		fail(p, "unknown key '%s' in [%s]%s", name, s->name, hint);
		return 0;
	}

	bool *seen = &p->seen[k - cfg_keys][s - sections];

	if (*seen && !is_list(k)) {
		if (p->indented)
			fail(p, "[%s] %s: takes a single value, but an indented line continues it",
			     s->name, name);
		else
			fail(p, "[%s] %s: duplicate key", s->name, name);
		return 0;
	}
	/* The file's first mention of a list replaces the default; repeats
	 * and continuation lines append to it. */
	if (!*seen && is_list(k))
		strlist_clear(field(p->cfg, s, k));
	*seen = true;
	return parse_value(p, s, k, value) == 0;
}

static struct cfg *cfg_new_defaults(const char *path)
{
	struct parser p = { .cfg = xcalloc(1, sizeof(struct cfg)) };

	p.cfg->path = xstrdup(path);
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		const struct cfg_section *s = &sections[i];

		for (size_t j = 0; j < N_ELEMENTS(cfg_keys); j++) {
			const struct cfg_key *k = &cfg_keys[j];
			const char *def = k->def[s->svc] != NULL ? k->def[s->svc] : k->def[0];

			if (!section_has(s, k))
				continue;
			if (parse_value(&p, s, k, def) < 0) {
				log_error("bug: bad default: %s", p.error);
				abort();
			}
		}
	}
	return p.cfg;
}

static int cfg_parse(const char *name, const char *text, size_t len,
		     struct cfg **cfg_r, char **error_r)
{
	struct parser p = { .pos = text, .end = text + len };
	int ret;

	*cfg_r = NULL;
	*error_r = NULL;
	p.cfg = cfg_new_defaults(name);
	ret = ini_parse_stream(read_line_cb, &p, handler_cb, &p);
	if (ret > 0 && (p.error == NULL || (unsigned)ret < p.error_line)) {
		/* inih's own error (it does not say which), before ours. */
		free(p.error);
		p.error = xstrdup("syntax error: expected [section], key = value or a comment");
		p.error_line = (unsigned)ret;
	} else if (ret < 0 && p.error == NULL) {
		p.error = xstrdup("cannot parse");
		p.error_line = 0;
	}
	if (p.error != NULL) {
		*error_r = str_printf("%s:%u: %s", name, p.error_line, p.error);
		free(p.error);
		cfg_free(&p.cfg);
		return -1;
	}
	*cfg_r = p.cfg;
	return 1;
}

int cfg_load_string(const char *name, const char *text, struct cfg **cfg_r, char **error_r)
{
	return cfg_parse(name, text, strlen(text), cfg_r, error_r);
}

int cfg_load(const char *path, struct cfg **cfg_r, char **error_r)
{
	struct buf text;
	char chunk[4096];
	size_t n;
	int err = 0;
	FILE *f = fopen(path, "re");

	*cfg_r = NULL;
	if (f == NULL) {
		*error_r = str_printf("%s:0: cannot read: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&text, CFG_MAX_FILE);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&text, chunk, n) < 0) {
			err = EFBIG;
			break;
		}
	}
	if (err == 0 && ferror(f))
		err = errno != 0 ? errno : EIO;
	fclose(f);
	if (err != 0) {
		buf_release(&text);
		*error_r = str_printf("%s:0: cannot read: %s", path, strerror(err));
		return -1;
	}

	int ret = cfg_parse(path, text.data != NULL ? (const char *)text.data : "",
			    text.len, cfg_r, error_r);

	buf_release(&text);
	return ret;
}

void cfg_free(struct cfg **cfgp)
{
	struct cfg *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		for (size_t j = 0; j < N_ELEMENTS(cfg_keys); j++) {
			const struct cfg_key *k = &cfg_keys[j];

			if (!section_has(&sections[i], k))
				continue;
			if (is_list(k))
				strlist_clear(field(cfg, &sections[i], k));
			else if (k->type == CFG_STRING || k->type == CFG_OPTSTRING ||
				 k->type == CFG_PATH)
				free(*(char **)field(cfg, &sections[i], k));
		}
	}
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

/* ------------------------------------------------------------ printing */

/* Items on one line while it stays short, then on indented continuation
 * lines (which the parser appends). */
static void print_list(FILE *out, const char *name, const struct cfg_strlist *l)
{
	int col = fprintf(out, "%s =", name);

	for (size_t i = 0; i < l->count; i++) {
		if (i > 0 && col + 1 + (int)strlen(l->items[i]) > 78) {
			fputs("\n   ", out);
			col = 3;
		}
		col += fprintf(out, " %s", l->items[i]);
	}
	fputc('\n', out);
}

static void print_key(FILE *out, const struct cfg *cfg, const struct cfg_section *s,
		      const struct cfg_key *k)
{
	const void *v = field_const(cfg, s, k);
	char num[32];
	const char *text = num;

	switch (k->type) {
	case CFG_STRING:
	case CFG_OPTSTRING:
	case CFG_PATH:
		text = *(char *const *)v;
		break;
	case CFG_BOOL:
		text = k->choices[*(const bool *)v ? 1 : 0];
		break;
	case CFG_ENUM:
		text = k->choices[*(const int *)v];
		break;
	case CFG_UINT:
		format_number(k->type, *(const uint32_t *)v, num, sizeof(num));
		break;
	case CFG_SIZE:
	case CFG_DURATION:
		format_number(k->type, *(const uint64_t *)v, num, sizeof(num));
		break;
	case CFG_ADDRLIST:
	case CFG_CIDRLIST:
	case CFG_NAMELIST:
		print_list(out, k->name, v);
		return;
	}
	/* Without spaces where they would change the value: after a space, a
	 * leading ';' starts a comment, and a value that only fit its line
	 * without them must keep fitting. */
	if (text[0] == '\0')
		fprintf(out, "%s =\n", k->name);
	else if (text[0] == ';' || strlen(k->name) + 3 + strlen(text) > CFG_MAX_LINE)
		fprintf(out, "%s=%s\n", k->name, text);
	else
		fprintf(out, "%s = %s\n", k->name, text);
}

void cfg_print(const struct cfg *cfg, FILE *out)
{
	fprintf(out, "# Tern %s configuration, from %s\n", TERN_VERSION, cfg->path);
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		fprintf(out, "\n[%s]\n", sections[i].name);
		for (size_t j = 0; j < N_ELEMENTS(cfg_keys); j++) {
			if (section_has(&sections[i], &cfg_keys[j]))
				print_key(out, cfg, &sections[i], &cfg_keys[j]);
		}
	}
}

const struct cfg_service *cfg_service_get(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		const void *svc = (const char *)cfg + sections[i].offset;

		if (strcmp(sections[i].keys, "service") == 0 && strcmp(sections[i].name, name) == 0)
			return svc;
	}
	return NULL;
}
