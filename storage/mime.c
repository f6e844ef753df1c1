/*
 * mime.c — the streaming MIME/RFC 5322 parser: header fields, multipart
 * boundaries, nested message/rfc822, and each part's offsets, sizes and
 * line counts in the CRLF view, with bounded memory (mime-private.h).
 *
 * Lines are the unit: a line is everything up to an LF, and one CR before
 * that LF is part of the line end, so "\n" and "\r\n" both count as the 2
 * bytes of CRLF that IMAP sends. A line is never held whole: a header line
 * goes into its field (cut at MIME_FIELD_MAX), a body line keeps only its
 * first bytes, which is all a boundary test needs.
 *
 * As RFC 2046 says, the line end before a boundary belongs to the
 * boundary, so a body line's end is only counted once the next line is
 * known not to be a boundary. Boundaries are matched as line prefixes,
 * innermost multipart first, the longest match winning (Dovecot's rules
 * for broken senders); a boundary of an outer multipart closes the inner
 * ones, and one that never comes leaves the parts open to the end.
 */
#include "mime-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A body line's first bytes, kept for the boundary test. */
#define LINE_KEEP (2 + MIME_BOUNDARY_MAX + 2)

struct boundary {
	struct mime_part *multipart;
	char *text;             /* "--" + boundary */
	size_t len;
};

enum pstate { P_HEADER, P_BODY };

struct mime_parser {
	struct arena *arena;
	struct mime_part *root;
	struct mime_part *cur;          /* the part whose header or body is being read */
	enum pstate state;
	uint64_t pos;                   /* CRLF offset of the current line's start */
	/* The current line. */
	unsigned char line[LINE_KEEP];
	size_t line_kept;
	uint64_t line_len;              /* bytes so far, without the LF */
	unsigned char last_byte;
	/* The field being read (header state). */
	struct buf field;
	bool field_open;
	bool field_over;                /* cut at MIME_FIELD_MAX */
	size_t budget_used;
	/* Whether the previous body line's end (CRLF) is still to be counted. */
	bool nl_pending;
	bool nl_header;                 /* it ended a header line */
	struct mime_part *nl_part;
	struct boundary bstack[MIME_DEPTH_MAX + 1];
	unsigned nbound;
	unsigned nparts;
	bool finished;
};

static const char *const field_names[MIME_F_COUNT] = {
	[MIME_F_CONTENT_TYPE] = "content-type",
	[MIME_F_CONTENT_TRANSFER_ENCODING] = "content-transfer-encoding",
	[MIME_F_CONTENT_ID] = "content-id",
	[MIME_F_CONTENT_DESCRIPTION] = "content-description",
	[MIME_F_CONTENT_MD5] = "content-md5",
	[MIME_F_CONTENT_DISPOSITION] = "content-disposition",
	[MIME_F_CONTENT_LANGUAGE] = "content-language",
	[MIME_F_CONTENT_LOCATION] = "content-location",
	[MIME_F_DATE] = "date",
	[MIME_F_SUBJECT] = "subject",
	[MIME_F_FROM] = "from",
	[MIME_F_SENDER] = "sender",
	[MIME_F_REPLY_TO] = "reply-to",
	[MIME_F_TO] = "to",
	[MIME_F_CC] = "cc",
	[MIME_F_BCC] = "bcc",
	[MIME_F_IN_REPLY_TO] = "in-reply-to",
	[MIME_F_MESSAGE_ID] = "message-id",
	[MIME_F_REFERENCES] = "references",
};

static struct mime_part *part_new(struct mime_parser *p, struct mime_part *parent)
{
	struct mime_part *part = arena_alloc(p->arena, sizeof(*part));

	part->parent = parent;
	part->hdr_offset = p->pos;
	part->body_offset = p->pos;
	part->is_message = parent == NULL || parent->kind == MIME_MESSAGE;
	if (parent != NULL) {
		part->depth = parent->depth + 1;
		if (parent->last_child != NULL)
			parent->last_child->next = part;
		else
			parent->children = part;
		parent->last_child = part;
		parent->nchildren++;
	}
	p->nparts++;
	return part;
}

struct mime_parser *mime_parser_new(void)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));

	p->arena = arena_new(16 * 1024);
	buf_init(&p->field, MIME_FIELD_MAX);
	p->root = part_new(p, NULL);
	p->cur = p->root;
	p->state = P_HEADER;
	return p;
}

void mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;

	if (p == NULL)
		return;
	buf_release(&p->field);
	arena_free(&p->arena);
	free(p);
	*pp = NULL;
}

size_t mime_parser_footprint(const struct mime_parser *p)
{
	return sizeof(*p) + arena_footprint(p->arena) + p->field.cap;
}

/* ------------------------------------------------------------ headers */

static void field_finish(struct mime_parser *p)
{
	if (!p->field_open)
		return;
	p->field_open = false;
	char *f = (char *)p->field.data;
	size_t len = p->field.len;
	char *colon = len > 0 ? memchr(f, ':', len) : NULL;

	if (colon == NULL) {
		buf_clear(&p->field);
		return;
	}
	size_t nlen = (size_t)(colon - f);

	while (nlen > 0 && (f[nlen - 1] == ' ' || f[nlen - 1] == '\t'))
		nlen--;
	for (int i = 0; i < MIME_F_COUNT; i++) {
		if (strlen(field_names[i]) != nlen || strncasecmp(f, field_names[i], nlen) != 0)
			continue;
		if (i >= MIME_F_FIRST_ENVELOPE && !p->cur->is_message)
			break;
		if (p->cur->fields[i] != NULL)
			break;
		const char *v = colon + 1;
		size_t vlen = len - (size_t)(v - f);

		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (p->budget_used + vlen > MIME_HEADER_BUDGET)
			break;
		p->budget_used += vlen + 1;
		/* NUL cannot be sent in an IMAP string: dropped. */
		char *copy = arena_alloc(p->arena, vlen + 1);
		size_t n = 0;

		for (size_t k = 0; k < vlen; k++)
			if (v[k] != '\0')
				copy[n++] = v[k];
		copy[n] = '\0';
		p->cur->fields[i] = copy;
		break;
	}
	buf_clear(&p->field);
}

static void field_append(struct mime_parser *p, const unsigned char *data, size_t len)
{
	if (p->field_over)
		return;
	if (buf_append(&p->field, data, len) < 0) {
		size_t room = p->field.max - p->field.len;

		buf_append(&p->field, data, room);
		p->field_over = true;
	}
}

/* ------------------------------------------------------ content types */

static bool ieq(const char *a, const char *b)
{
	return a != NULL && strcasecmp(a, b) == 0;
}

/* The header is complete: what kind of part is it, and what follows. */
static void header_done(struct mime_parser *p)
{
	struct mime_part *part = p->cur;
	const char *ct = part->fields[MIME_F_CONTENT_TYPE];
	const char *first = NULL;
	bool digest_child = part->parent != NULL && part->parent->kind == MIME_MULTIPART &&
		ieq(part->parent->subtype, "digest");

	if (ct != NULL)
		part->params = mime_params_parse(p->arena, ct, &first);
	if (first != NULL) {
		const char *slash = strchr(first, '/');

		if (slash != NULL && slash != first && slash[1] != '\0') {
			part->type = arena_strndup(p->arena, first, (size_t)(slash - first));
			part->subtype = arena_strdup(p->arena, slash + 1);
		}
	}
	if (part->type == NULL) {
		/* No Content-Type, or one without type/subtype: the default,
		 * without the parameters of a broken one. */
		part->params = NULL;
		if (digest_child) {
			part->type = "message";
			part->subtype = "rfc822";
		}
	}
	const char *cd = part->fields[MIME_F_CONTENT_DISPOSITION];

	if (cd != NULL) {
		const char *disp = NULL;

		part->disp_params = mime_params_parse(p->arena, cd, &disp);
		part->disposition = disp;
	}
	part->body_offset = p->pos;
	p->state = P_BODY;
	/* A part that can be descended into, within the limits. */
	bool room = part->depth < MIME_DEPTH_MAX && p->nparts < MIME_PARTS_MAX;

	if (ieq(part->type, "multipart")) {
		const char *b = NULL;

		for (struct mime_param *pm = part->params; pm != NULL; pm = pm->next)
			if (ieq(pm->name, "boundary"))
				b = pm->value;
		part->kind = MIME_MULTIPART;
		if (b == NULL || *b == '\0' || strlen(b) > MIME_BOUNDARY_MAX || !room ||
		    p->nbound >= N_ELEMENTS(p->bstack))
			return;
		struct boundary *bd = &p->bstack[p->nbound++];

		bd->multipart = part;
		bd->len = strlen(b) + 2;
		bd->text = arena_alloc(p->arena, bd->len + 1);
		bd->text[0] = bd->text[1] = '-';
		memcpy(bd->text + 2, b, bd->len - 2);
		return;
	}
	if (ieq(part->type, "message") &&
	    (ieq(part->subtype, "rfc822") || ieq(part->subtype, "global"))) {
		enum store_cte cte = mime_cte_parse(part->fields[MIME_F_CONTENT_TRANSFER_ENCODING]);

		part->kind = MIME_MESSAGE;
		if (cte != STORE_CTE_IDENTITY || !room) {
			/* An encoded message cannot be parsed as it stands. */
			return;
		}
		p->cur = part_new(p, part);
		p->state = P_HEADER;
	}
}

/* -------------------------------------------------------------- lines */

/* The boundary a line starts with, innermost multipart first, the longest
 * winning; -1 if none. */
static int boundary_match(struct mime_parser *p, bool *close_r)
{
	int best = -1;

	if (p->line_kept < 2 || p->line[0] != '-' || p->line[1] != '-')
		return -1;
	for (int i = (int)p->nbound - 1; i >= 0; i--) {
		struct boundary *b = &p->bstack[i];

		if (b->len <= p->line_kept && memcmp(p->line, b->text, b->len) == 0 &&
		    (best < 0 || p->bstack[best].len < b->len))
			best = i;
	}
	if (best >= 0) {
		size_t l = p->bstack[best].len;

		*close_r = p->line_kept >= l + 2 && p->line[l] == '-' && p->line[l + 1] == '-';
	}
	return best;
}

/* The previous line's end, now known not to be before a boundary, is
 * counted: in the header of the part it ended a header line of, or the
 * body, and in the bodies of the parts around it. */
static void count_pending_nl(struct mime_parser *p)
{
	if (!p->nl_pending)
		return;
	struct mime_part *q = p->nl_part;

	if (p->nl_header) {
		q->hdr_size += 2;
		q = q->parent;
	}
	for (; q != NULL; q = q->parent) {
		q->body_size += 2;
		q->body_lines++;
	}
	p->nl_pending = false;
}

/* n bytes of the current part's header (header) or body, which are also
 * bytes of the bodies around it. */
static void bytes_add(struct mime_parser *p, uint64_t n, bool header)
{
	struct mime_part *q = p->cur;

	if (header) {
		q->hdr_size += n;
		q = q->parent;
	}
	for (; q != NULL; q = q->parent)
		q->body_size += n;
}

static void set_pending_nl(struct mime_parser *p, bool header)
{
	p->nl_pending = true;
	p->nl_header = header;
	p->nl_part = p->cur;
}

/* A whole line has been read: content_len bytes (CR of CRLF excluded),
 * terminated by an LF or not (the end of the message). */
static void line_done(struct mime_parser *p, uint64_t content_len, bool terminated)
{
	uint64_t vlen = content_len + (terminated ? 2 : 0);
	bool close = false;
	int bi = p->nbound > 0 ? boundary_match(p, &close) : -1;

	if (bi >= 0) {
		struct mime_part *mp = p->bstack[bi].multipart;

		/* The line end before the boundary belongs to it: to the
		 * multipart's body, not to the part it ends. */
		if (p->nl_pending) {
			p->nl_part = mp;
			p->nl_header = false;
			count_pending_nl(p);
		}
		if (p->state == P_HEADER) {
			field_finish(p);
			header_done(p);
		}
		p->nbound = (unsigned)bi + 1;
		p->cur = mp;
		bytes_add(p, content_len, false);
		p->pos += vlen;
		if (terminated)
			set_pending_nl(p, false);
		p->state = P_BODY;
		if (close) {
			/* What follows is the epilogue. */
			p->nbound--;
			return;
		}
		if (p->nparts >= MIME_PARTS_MAX) {
			/* No more parts: the rest is this multipart's text. */
			p->nbound--;
			return;
		}
		count_pending_nl(p);
		p->cur = part_new(p, mp);
		p->state = P_HEADER;
		return;
	}
	count_pending_nl(p);
	if (p->state == P_HEADER) {
		p->pos += vlen;
		if (content_len == 0 && terminated) {
			/* The empty line ends the header and is part of it. */
			bytes_add(p, 2, true);
			for (struct mime_part *q = p->cur->parent; q != NULL; q = q->parent)
				q->body_lines++;
			field_finish(p);
			header_done(p);
			return;
		}
		bytes_add(p, content_len, true);
		if (terminated) {
			set_pending_nl(p, true);
		} else {
			field_finish(p);
			header_done(p);
		}
		return;
	}
	bytes_add(p, content_len, false);
	p->pos += vlen;
	if (terminated)
		set_pending_nl(p, false);
}

/* Bytes of the current line (no LF among them). */
static void line_bytes(struct mime_parser *p, const unsigned char *d, size_t n)
{
	if (n == 0)
		return;
	if (p->state == P_HEADER) {
		if (p->line_len == 0) {
			/* A new physical line: a continuation, or a new field. */
			if (d[0] != ' ' && d[0] != '\t') {
				field_finish(p);
				buf_clear(&p->field);
				p->field_open = true;
				p->field_over = false;
			}
		}
		if (p->field_open) {
			/* The CR of a CRLF is not part of the field; it is only
			 * known to be one at the LF, so a CR is held back. */
			if (p->last_byte == '\r' && p->line_len > 0)
				field_append(p, (const unsigned char *)"\r", 1);
			field_append(p, d, d[n - 1] == '\r' ? n - 1 : n);
		}
	}
	if (p->line_kept < LINE_KEEP) {
		size_t k = LINE_KEEP - p->line_kept < n ? LINE_KEEP - p->line_kept : n;

		memcpy(p->line + p->line_kept, d, k);
		p->line_kept += k;
	}
	p->line_len += n;
	p->last_byte = d[n - 1];
}

static void line_end(struct mime_parser *p, bool terminated)
{
	uint64_t content = p->line_len;

	if (terminated && content > 0 && p->last_byte == '\r')
		content--;
	/* For the boundary test, the kept bytes without the CR. */
	if (terminated && p->line_kept > 0 && p->line_kept == p->line_len &&
	    p->line[p->line_kept - 1] == '\r')
		p->line_kept--;
	line_done(p, content, terminated);
	p->line_kept = 0;
	p->line_len = 0;
	p->last_byte = 0;
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const unsigned char *d = data, *end = d + len;

	while (d < end) {
		const unsigned char *nl = memchr(d, '\n', (size_t)(end - d));

		if (nl == NULL) {
			line_bytes(p, d, (size_t)(end - d));
			return;
		}
		line_bytes(p, d, (size_t)(nl - d));
		line_end(p, true);
		d = nl + 1;
	}
}

struct mime_part *mime_parser_finish(struct mime_parser *p)
{
	if (p->finished)
		return p->root;
	p->finished = true;
	if (p->line_len > 0)
		line_end(p, false);
	if (p->state == P_HEADER) {
		field_finish(p);
		header_done(p);
	}
	count_pending_nl(p);
	return p->root;
}

struct mime_part *mime_parse_buffer(struct mime_parser *p, const void *data, size_t len)
{
	mime_parser_feed(p, data, len);
	return mime_parser_finish(p);
}

/* ---------------------------------------------------------- parameters */

/* RFC 2045 tspecials plus space and controls end a token. */
static bool is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static void skip_cfws(const char **sp)
{
	const char *s = *sp;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s != '(')
			break;
		int depth = 0;

		while (*s != '\0') {
			if (*s == '\\' && s[1] != '\0') {
				s += 2;
				continue;
			}
			if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
			s++;
		}
	}
	*sp = s;
}

/* A token or quoted string (unquoted), or NULL. */
static char *parse_value(struct arena *a, const char **sp)
{
	const char *s = *sp;

	if (*s == '"') {
		size_t cap = strlen(s);
		char *out = arena_alloc(a, cap + 1);
		size_t n = 0;

		s++;
		while (*s != '\0' && *s != '"') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			out[n++] = *s++;
		}
		if (*s == '"')
			s++;
		out[n] = '\0';
		*sp = s;
		return out;
	}
	const char *start = s;

	while (is_token_char((unsigned char)*s))
		s++;
	if (s == start)
		return NULL;
	*sp = s;
	return arena_strndup(a, start, (size_t)(s - start));
}

struct raw_param {
	char *base;             /* name without the *N / * suffix */
	int section;            /* -1: no continuation number */
	bool extended;          /* ended in '*' */
	char *value;
};

/* Merge RFC 2231 continuations: name*0, name*1*, ... in section order. */
static struct mime_param *merge_params(struct arena *a, struct raw_param *raw, unsigned n)
{
	struct mime_param *head = NULL, **tail = &head;
	bool *used = arena_alloc(a, n + 1);

	for (unsigned i = 0; i < n; i++) {
		if (used[i])
			continue;
		used[i] = true;
		struct mime_param *pm = arena_alloc(a, sizeof(*pm));

		bool has_zero = false;

		for (unsigned k = 0; k < n && raw[i].section >= 0; k++)
			if (raw[k].section == 0 && strcasecmp(raw[k].base, raw[i].base) == 0)
				has_zero = true;
		if (raw[i].section < 0 || !has_zero) {
			/* Plain, or sections without a start: kept as sent. */
			pm->name = raw[i].section < 0 ?
				(raw[i].extended ? arena_printf(a, "%s*", raw[i].base) : raw[i].base) :
				arena_printf(a, "%s*%d%s", raw[i].base, raw[i].section,
					     raw[i].extended ? "*" : "");
			pm->value = raw[i].value;
		} else {
			/* Sections 0, 1, 2... as long as they are there. */
			struct buf v;
			bool extended = false;

			buf_init(&v, MIME_FIELD_MAX);
			for (int sec = 0;; sec++) {
				unsigned k;

				for (k = 0; k < n; k++)
					if (raw[k].section == sec &&
					    strcasecmp(raw[k].base, raw[i].base) == 0)
						break;
				if (k == n)
					break;
				used[k] = true;
				if (sec == 0)
					extended = raw[k].extended;
				if (extended && !raw[k].extended) {
					/* A plain section inside an extended value
					 * is percent-encoded to stay one. */
					for (const char *c = raw[k].value; *c != '\0'; c++) {
						if (is_token_char((unsigned char)*c) && *c != '%' &&
						    *c != '\'' && *c != '*')
							buf_append(&v, c, 1);
						else
							buf_printf(&v, "%%%02X", (unsigned char)*c);
					}
				} else {
					buf_append_str(&v, raw[k].value);
				}
			}
			pm->name = extended ? arena_printf(a, "%s*", raw[i].base) : raw[i].base;
			pm->value = arena_strndup(a, v.data != NULL ? (char *)v.data : "", v.len);
			buf_release(&v);
		}
		*tail = pm;
		tail = &pm->next;
	}
	return head;
}

struct mime_param *mime_params_parse(struct arena *a, const char *value, const char **first_r)
{
	const char *s = value;
	struct raw_param raw[MIME_PARAMS_MAX];
	unsigned n = 0;

	*first_r = NULL;
	skip_cfws(&s);
	/* type "/" subtype (spaces around the slash are tolerated), or a
	 * disposition token. */
	const char *start = s;

	while (is_token_char((unsigned char)*s))
		s++;
	if (s == start)
		return NULL;
	char *first = arena_strndup(a, start, (size_t)(s - start));

	skip_cfws(&s);
	if (*s == '/') {
		s++;
		skip_cfws(&s);
		const char *st = s;

		while (is_token_char((unsigned char)*s))
			s++;
		first = arena_printf(a, "%s/%.*s", first, (int)(s - st), st);
	}
	*first_r = first;
	while (n < MIME_PARAMS_MAX) {
		skip_cfws(&s);
		if (*s != ';') {
			/* Garbage: skip to the next ';'. */
			s = strchr(s, ';');
			if (s == NULL)
				break;
		}
		s++;
		skip_cfws(&s);
		const char *ns = s;

		while (is_token_char((unsigned char)*s))
			s++;
		if (s == ns)
			continue;
		size_t nlen = (size_t)(s - ns);

		skip_cfws(&s);
		if (*s != '=')
			continue;
		s++;
		skip_cfws(&s);
		char *v = parse_value(a, &s);

		if (v == NULL)
			continue;
		struct raw_param *rp = &raw[n++];

		rp->extended = nlen > 1 && ns[nlen - 1] == '*';
		if (rp->extended)
			nlen--;
		rp->section = -1;
		/* name*N: a continuation section. */
		const char *star = memchr(ns, '*', nlen);

		if (star != NULL && star > ns && star + 1 < ns + nlen) {
			int sec = 0;
			const char *d = star + 1;

			for (; d < ns + nlen && *d >= '0' && *d <= '9' && sec < 100000; d++)
				sec = sec * 10 + (*d - '0');
			if (d == ns + nlen) {
				rp->section = sec;
				nlen = (size_t)(star - ns);
			}
		}
		rp->base = arena_strndup(a, ns, nlen);
		rp->value = v;
	}
	return merge_params(a, raw, n);
}
