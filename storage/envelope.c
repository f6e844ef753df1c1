/*
 * envelope.c — the IMAP ENVELOPE of a message (RFC 9051 §7.5.2, RFC 3501
 * formal syntax) and the RFC 5322 address-list parser behind it.
 *
 * Strings are the raw header values: encoded words stay encoded (clients
 * decode them), folding is undone. Sender and Reply-To default to From
 * when absent or empty, as the RFC requires. The address parser is
 * lenient the way Dovecot's is: a list that does not follow RFC 5322
 * still gives what can be made of it, an address without a domain gets
 * host "MISSING_DOMAIN" and one without a local part "MISSING_MAILBOX", a
 * comment stands in for a missing display name, and groups become the
 * RFC's group markers.
 */
#include "mime-private.h"

#include <string.h>

/* Addresses of one field shown in an ENVELOPE. */
#define ENVELOPE_ADDRESSES_MAX 1000

struct addr_parser {
	struct arena *a;
	const char *s;
	struct buf comment;     /* the last comment seen, for a missing name */
};

static void ap_skip_ws(struct addr_parser *ap)
{
	for (;;) {
		while (*ap->s == ' ' || *ap->s == '\t' || *ap->s == '\r' || *ap->s == '\n')
			ap->s++;
		if (*ap->s != '(')
			return;
		int depth = 0;

		buf_clear(&ap->comment);
		while (*ap->s != '\0') {
			char c = *ap->s;

			if (c == '\\' && ap->s[1] != '\0') {
				buf_append(&ap->comment, ap->s + 1, 1);
				ap->s += 2;
				continue;
			}
			ap->s++;
			if (c == '(' && depth++ == 0)
				continue;
			if (c == ')' && --depth == 0)
				break;
			buf_append(&ap->comment, &c, 1);
		}
	}
}

static bool is_atext(unsigned char c)
{
	return c > ' ' && c != 0x7f && strchr("()<>@,;:\\\".[]", c) == NULL;
}

/* A word: an atom or a quoted string (unquoted), appended to out. 0 if
 * there is none here. */
static int ap_word(struct addr_parser *ap, struct buf *out)
{
	const char *s = ap->s;

	if (*s == '"') {
		s++;
		while (*s != '\0' && *s != '"') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			/* Folding inside a quoted string is removed. */
			if (*s != '\r' && *s != '\n')
				buf_append(out, s, 1);
			s++;
		}
		if (*s == '"')
			s++;
		ap->s = s;
		return 1;
	}
	const char *start = s;

	while (is_atext((unsigned char)*s))
		s++;
	if (s == start)
		return 0;
	buf_append(out, start, (size_t)(s - start));
	ap->s = s;
	return 1;
}

/* A phrase or local part: words and dots. In a phrase, words that had
 * whitespace (or a comment) between them are joined by one space; a local
 * part is kept tight. */
static void ap_phrase(struct addr_parser *ap, struct buf *out, bool local)
{
	for (;;) {
		const char *before_ws = ap->s;

		ap_skip_ws(ap);
		bool space = !local && ap->s != before_ws && out->len > 0;

		if (*ap->s == '.') {
			buf_append(out, space ? " ." : ".", space ? 2 : 1);
			ap->s++;
			continue;
		}
		size_t before = out->len;

		if (space)
			buf_append(out, " ", 1);
		if (ap_word(ap, out) == 0) {
			out->len = before;
			if (out->data != NULL)
				out->data[out->len] = '\0';
			return;
		}
	}
}

/* A domain: dot-atoms or a domain literal, up to a delimiter. */
static void ap_domain(struct addr_parser *ap, struct buf *out)
{
	for (;;) {
		ap_skip_ws(ap);
		if (*ap->s == '[') {
			const char *end = strchr(ap->s, ']');
			size_t n = end != NULL ? (size_t)(end - ap->s) + 1 : strlen(ap->s);

			buf_append(out, ap->s, n);
			ap->s += n;
			continue;
		}
		if (*ap->s == '.') {
			buf_append(out, ".", 1);
			ap->s++;
			continue;
		}
		if (ap_word(ap, out) == 0)
			return;
	}
}

static const char *buf_str(struct arena *a, const struct buf *b)
{
	return b->len == 0 ? NULL : arena_strndup(a, (const char *)b->data, b->len);
}

struct mime_address *mime_address_parse(struct arena *a, const char *value, unsigned max)
{
	struct addr_parser ap = { .a = a, .s = value };
	struct mime_address *head = NULL, **tail = &head;
	struct buf phrase, local, domain, route;
	unsigned count = 0;
	bool in_group = false;

	buf_init(&ap.comment, MIME_FIELD_MAX);
	buf_init(&phrase, MIME_FIELD_MAX);
	buf_init(&local, MIME_FIELD_MAX);
	buf_init(&domain, MIME_FIELD_MAX);
	buf_init(&route, MIME_FIELD_MAX);
	while (*ap.s != '\0' && count < max) {
		struct mime_address *ad;

		buf_clear(&phrase);
		buf_clear(&local);
		buf_clear(&domain);
		buf_clear(&route);
		buf_clear(&ap.comment);
		ap_skip_ws(&ap);
		if (*ap.s == '\0')
			break;
		if (*ap.s == ',') {
			ap.s++;
			continue;
		}
		if (*ap.s == ';') {
			ap.s++;
			if (in_group) {
				ad = arena_alloc(a, sizeof(*ad));
				*tail = ad;
				tail = &ad->next;
				count++;
				in_group = false;
			}
			continue;
		}
		const char *start = ap.s;

		ap_phrase(&ap, &phrase, false);
		ap_skip_ws(&ap);
		if (*ap.s == ':' && !in_group) {
			/* group-name ":" */
			ap.s++;
			ad = arena_alloc(a, sizeof(*ad));
			ad->mailbox = phrase.len > 0 ? buf_str(a, &phrase) : "";
			*tail = ad;
			tail = &ad->next;
			count++;
			in_group = true;
			continue;
		}
		const char *name = NULL;

		if (*ap.s == '<') {
			/* [phrase] "<" [route ":"] addr-spec ">" */
			name = buf_str(a, &phrase);
			ap.s++;
			ap_skip_ws(&ap);
			if (*ap.s == '@') {
				/* A route only if a ':' ends it ("<@x.test>"
				 * is a domain without a local part). */
				const char *route_start = ap.s;

				while (*ap.s == '@' || *ap.s == ',') {
					buf_append(&route, ap.s, 1);
					ap.s++;
					if (route.data[route.len - 1] == '@')
						ap_domain(&ap, &route);
					ap_skip_ws(&ap);
				}
				if (*ap.s == ':') {
					ap.s++;
				} else {
					ap.s = route_start;
					buf_clear(&route);
				}
			}
			ap_phrase(&ap, &local, true);
			ap_skip_ws(&ap);
			if (*ap.s == '@') {
				ap.s++;
				ap_domain(&ap, &domain);
			}
			ap_skip_ws(&ap);
			if (*ap.s == '>')
				ap.s++;
		} else {
			/* addr-spec: what was read is the local part. */
			ap.s = start;
			buf_clear(&ap.comment);
			ap_phrase(&ap, &local, true);
			ap_skip_ws(&ap);
			if (*ap.s == '@') {
				ap.s++;
				ap_domain(&ap, &domain);
			}
			ap_skip_ws(&ap);
			if (ap.comment.len > 0)
				name = buf_str(a, &ap.comment);
		}
		ap_skip_ws(&ap);
		if (local.len == 0 && domain.len == 0 && name == NULL) {
			/* Nothing usable here: skip to the next address. */
			if (ap.s == start && *ap.s != '\0')
				ap.s++;
			while (*ap.s != '\0' && *ap.s != ',' && *ap.s != ';')
				ap.s++;
			continue;
		}
		ad = arena_alloc(a, sizeof(*ad));
		ad->name = name;
		ad->route = buf_str(a, &route);
		ad->mailbox = local.len > 0 ? buf_str(a, &local) : "MISSING_MAILBOX";
		ad->host = domain.len > 0 ? buf_str(a, &domain) : "MISSING_DOMAIN";
		*tail = ad;
		tail = &ad->next;
		count++;
		/* Garbage after an address, up to the next delimiter. */
		while (*ap.s != '\0' && *ap.s != ',' && *ap.s != ';')
			ap.s++;
	}
	if (in_group) {
		/* The group never ended: end it. */
		*tail = arena_alloc(a, sizeof(struct mime_address));
	}
	buf_release(&ap.comment);
	buf_release(&phrase);
	buf_release(&local);
	buf_release(&domain);
	buf_release(&route);
	return head;
}

static void write_addresses(struct buf *out, struct arena *a, const char *value)
{
	struct mime_address *list = value != NULL ?
		mime_address_parse(a, value, ENVELOPE_ADDRESSES_MAX) : NULL;

	if (list == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_str(out, "(");
	for (struct mime_address *ad = list; ad != NULL; ad = ad->next) {
		buf_append_str(out, "(");
		mime_write_nstring(out, ad->name);
		buf_append_str(out, " ");
		mime_write_nstring(out, ad->route);
		buf_append_str(out, " ");
		mime_write_nstring(out, ad->mailbox);
		buf_append_str(out, " ");
		mime_write_nstring(out, ad->host);
		buf_append_str(out, ")");
	}
	buf_append_str(out, ")");
}

/* Empty or only whitespace counts as absent (for the Sender/Reply-To
 * defaults and for NIL strings). */
static const char *nonempty(const char *s)
{
	if (s == NULL)
		return NULL;
	for (const char *c = s; *c != '\0'; c++)
		if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n')
			return s;
	return NULL;
}

int mime_write_envelope(struct buf *out, const struct mime_part *msg)
{
	size_t before = out->len;
	struct arena *a = arena_new(0);
	const char *const *f = msg->fields;
	const char *from = nonempty(f[MIME_F_FROM]);
	const char *sender = nonempty(f[MIME_F_SENDER]);
	const char *reply_to = nonempty(f[MIME_F_REPLY_TO]);

	/* A Sender or Reply-To that yields no address also defaults. */
	if (sender != NULL && mime_address_parse(a, sender, 1) == NULL)
		sender = NULL;
	if (reply_to != NULL && mime_address_parse(a, reply_to, 1) == NULL)
		reply_to = NULL;
	buf_append_str(out, "(");
	mime_write_nstring(out, nonempty(f[MIME_F_DATE]));
	buf_append_str(out, " ");
	mime_write_nstring(out, f[MIME_F_SUBJECT]);
	buf_append_str(out, " ");
	write_addresses(out, a, from);
	buf_append_str(out, " ");
	write_addresses(out, a, sender != NULL ? sender : from);
	buf_append_str(out, " ");
	write_addresses(out, a, reply_to != NULL ? reply_to : from);
	buf_append_str(out, " ");
	write_addresses(out, a, nonempty(f[MIME_F_TO]));
	buf_append_str(out, " ");
	write_addresses(out, a, nonempty(f[MIME_F_CC]));
	buf_append_str(out, " ");
	write_addresses(out, a, nonempty(f[MIME_F_BCC]));
	buf_append_str(out, " ");
	mime_write_nstring(out, nonempty(f[MIME_F_IN_REPLY_TO]));
	buf_append_str(out, " ");
	mime_write_nstring(out, nonempty(f[MIME_F_MESSAGE_ID]));
	buf_append_str(out, ")");
	arena_free(&a);
	if (mime__buf_overflowed(out)) {
		log_warn("ENVELOPE too large for its buffer: written empty");
		out->len = before;
		return buf_append_str(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)") < 0 ? BUF_ETOOBIG : 0;
	}
	return 0;
}
