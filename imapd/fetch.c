/*
 * fetch.c — FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2): message
 * attributes, BODY[section]<partial> and its RFC 822 forms, BINARY
 * (RFC 3516), MODSEQ and CHANGEDSINCE/VANISHED (RFC 7162), SAVEDATE
 * (RFC 8514), EMAILID and THREADID (RFC 8474; THREADID is always NIL).
 *
 * Output is produced in chunks: a job stops once cmd->out holds
 * FETCH_CHUNK bytes and continues where it was on the next call (the
 * position lives in cmd->priv, in the command's arena). A literal larger
 * than a chunk is itself spread over calls: its reader stays open in
 * the state. So memory stays bounded whatever is fetched; only what must
 * be whole goes out at once (a filtered header, a BODYSTRUCTURE).
 *
 * Each message goes in two steps: a check that may still drop it
 * without a trace (gone from the store, an encoding BINARY cannot undo,
 * a store error), then the writing, which only streams.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Output per call. IMAP_CHUNK (256 KiB) is more than the connection
 * accepts at once with the default output_buffer_size (64K: it closes
 * the connection above four times that, counting what is still queued),
 * so FETCH yields at a quarter of it.
 */
#define FETCH_CHUNK (IMAP_CHUNK < 64 * 1024 ? IMAP_CHUNK : 64 * 1024)
/* A header read whole (HEADER.FIELDS filtering, BINARY's MIME header):
 * anything past this is cut at a line end. */
#define HEADER_MAX (1024 * 1024)
/* Part numbers in one section ("1.2.3"). */
#define PATH_MAX_DEPTH 100

/* -------------------------------------------------------------- items */

enum item_kind {
	ITEM_FLAGS,
	ITEM_UID,
	ITEM_INTERNALDATE,
	ITEM_RFC822_SIZE,
	ITEM_ENVELOPE,
	ITEM_BODY,                      /* BODY without a section */
	ITEM_BODYSTRUCTURE,
	ITEM_MODSEQ,
	ITEM_SAVEDATE,
	ITEM_EMAILID,                   /* RFC 8474 */
	ITEM_THREADID,
	ITEM_SECTION,                   /* BODY[..], BINARY[..], RFC822[.HEADER/.TEXT] */
	ITEM_BINARY_SIZE,               /* BINARY.SIZE[..] */
};

struct item {
	enum item_kind kind;
	/* Sections. */
	const char *name;               /* the response's name: "BODY[1.MIME]" */
	bool binary;                    /* BINARY: decode the part's CTE */
	bool seen;                      /* fetching it sets \Seen */
	uint32_t path[PATH_MAX_DEPTH];
	size_t depth;
	enum store_section_kind sect;
	const char **fields;
	size_t nfields;
	bool partial;
	uint64_t poff, plen;
};

/* ------------------------------------------------------------- sources */

/*
 * The bytes of one section as they are sent: ident bytes as stored, then
 * raw bytes decoded (or as stored for STORE_CTE_IDENTITY). Reads the CRLF
 * view, SOURCE_RAW bytes at a time: pend holds what one piece decodes to.
 */
#define SOURCE_RAW 16384

struct source {
	struct store_reader *r;
	uint64_t ident_left;
	uint64_t raw_left;
	struct store_decoder dec;
	bool finished;                  /* store_decoder_finish done */
	struct buf pend;
	size_t pend_pos;
};

static int source_open(struct store_mailbox *mb, uint32_t uid, uint64_t offset,
		       uint64_t ident, uint64_t raw, enum store_cte cte, struct source *s,
		       struct store_error *err)
{
	memset(s, 0, sizeof(*s));
	if (store_reader_open(mb, uid, &s->r, err) < 0)
		return -1;
	if (store_reader_skip(s->r, offset) < 0) {
		store_reader_close(&s->r);
		err->code = STORE_ERR_TEMP;
		snprintf(err->msg, sizeof(err->msg), "UID %u: read failed", uid);
		return -1;
	}
	s->ident_left = ident;
	s->raw_left = raw;
	store_decoder_init(&s->dec, cte);
	/* What store_decoder_feed may write for one piece. */
	buf_init(&s->pend, 2 * SOURCE_RAW + STORE_DECODER_SLACK);
	return 0;
}

static void source_close(struct source *s)
{
	store_reader_close(&s->r);
	buf_release(&s->pend);
}

/* Up to max bytes of the section: the count, 0 at its end, -1 when the
 * file cannot be read. */
static ssize_t source_read(struct source *s, unsigned char *out, size_t max)
{
	ssize_t n;

	if (s->ident_left > 0 || (s->dec.cte == STORE_CTE_IDENTITY && s->raw_left > 0)) {
		uint64_t *left = s->ident_left > 0 ? &s->ident_left : &s->raw_left;

		if (max > *left)
			max = (size_t)*left;
		if ((n = store_reader_read(s->r, out, max)) <= 0)
			return -1;              /* shorter than the index said */
		*left -= (uint64_t)n;
		return n;
	}
	if (s->dec.cte == STORE_CTE_IDENTITY)
		return 0;
	while (s->pend_pos == s->pend.len) {
		unsigned char raw[SOURCE_RAW];
		int r;

		buf_clear(&s->pend);
		s->pend_pos = 0;
		if (s->raw_left == 0) {
			if (s->finished)
				return 0;
			s->finished = true;
			r = store_decoder_finish(&s->dec, &s->pend);
		} else {
			size_t want = s->raw_left < sizeof(raw) ? (size_t)s->raw_left : sizeof(raw);

			if ((n = store_reader_read(s->r, raw, want)) <= 0)
				return -1;
			s->raw_left -= (uint64_t)n;
			r = store_decoder_feed(&s->dec, &s->pend, raw, (size_t)n);
		}
		if (r < 0)
			return -1;              /* cannot happen: pend is large enough */
	}
	size_t take = s->pend.len - s->pend_pos;

	if (take > max)
		take = max;
	memcpy(out, s->pend.data + s->pend_pos, take);
	s->pend_pos += take;
	return (ssize_t)take;
}

/* ---------------------------------------------------------------- state */

struct fetch_state {
	struct item *items;
	size_t nitems;
	bool want_flags;                /* FLAGS among the items */
	bool any_seen;                  /* some item sets \Seen */
	bool changedsince_set;
	uint64_t changedsince;
	uint32_t *uids;
	size_t count;
	size_t next;                    /* index into uids */
	bool expunged;                  /* some message was gone: EXPUNGEISSUED */
	bool failed;                    /* a read failed mid-literal */
	/* The message being written. */
	bool in_msg;
	size_t item;                    /* index into items */
	uint32_t seq;
	struct store_msg msg;           /* its data, copied */
	bool add_flags;                 /* \Seen was set: FLAGS at the end */
	bool flags_sent, modseq_sent;
	size_t msg_start;               /* in cmd->out, or SIZE_MAX once sent */
	bool first_item;
	/* The literal being streamed. */
	bool lit_active;
	uint64_t lit_left;
	bool lit_nul_fix;               /* NUL becomes 0x80 (BODY[], as Dovecot) */
	bool lit_padding;               /* the file failed: spaces to the end */
	struct source src;
	/* Per-call scratch: structures, located sections, headers. */
	struct arena *tmp;
};

/* ------------------------------------------------------------- parsing */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* nz-number or number at *p: advances *p; false when none or too big. */
static bool parse_num(const char **p, bool zero_ok, uint64_t max, uint64_t *n_r)
{
	const char *s = *p;
	uint64_t n = 0;

	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		if (n > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n == 0 && !zero_ok)
		return false;
	*p = s;
	*n_r = n;
	return true;
}

static bool prefix(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (strncasecmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

/* A character of a header field name (RFC 5322 §3.6.8 ftext). */
static bool is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/*
 * header-list = "(" header-fld-name *(SP header-fld-name) ")", names as
 * astrings (atoms or quoted strings; a literal cannot be in an atom).
 * Names go upper-cased into it->fields and the response name.
 */
static const char *parse_header_list(struct arena *a, const char **p, struct item *it,
				     struct buf *name)
{
	const char *s = *p;
	size_t cap = 8;

	if (*s++ != '(')
		return "BAD Header field list expected";
	it->fields = arena_alloc(a, cap * sizeof(*it->fields));
	buf_append_str(name, " (");
	for (;;) {
		char field[1024];
		size_t n = 0;

		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				if (*s == '\0' || n + 1 >= sizeof(field))
					return "BAD Invalid header field name";
				field[n++] = *s;
			}
			s++;
		} else {
			while (*s != '\0' && *s != ' ' && *s != ')' && n + 1 < sizeof(field))
				field[n++] = *s++;
		}
		field[n] = '\0';
		if (n == 0)
			return "BAD Invalid header field name";
		for (size_t i = 0; i < n; i++) {
			if (!is_ftext((unsigned char)field[i]))
				return "BAD Invalid header field name";
			if (field[i] >= 'a' && field[i] <= 'z')
				field[i] = (char)(field[i] - 'a' + 'A');
		}
		if (it->nfields == cap) {
			const char **more = arena_alloc(a, cap * 2 * sizeof(*more));

			memcpy(more, it->fields, cap * sizeof(*more));
			it->fields = more;
			cap *= 2;
		}
		it->fields[it->nfields++] = arena_strdup(a, field);
		if (it->nfields > 1)
			buf_append(name, " ", 1);
		if (strpbrk(field, "(){%*\"\\]") != NULL)
			imap__buf_string(name, field, n, false);
		else
			buf_append_str(name, field);
		if (*s == ')')
			break;
		if (*s != ' ')
			return "BAD Invalid header field list";
		s++;
	}
	buf_append(name, ")", 1);
	*p = s + 1;
	return NULL;
}

/*
 * section = "[" [section-spec] "]" (binary: section-binary = "["
 * [section-part] "]"), then partial = "<" number "." nz-number ">"
 * (none for BINARY.SIZE). s points after "[". The response's name goes
 * into it->name: "BODY[" section "]" and "<" origin ">" for a partial.
 */
static const char *parse_section(struct arena *a, const char *s, const char *base,
				 bool binary, bool size_only, struct item *it)
{
	struct buf name;
	const char *error = NULL;

	buf_init(&name, 64 * 1024);
	buf_printf(&name, "%s[", base);
	it->sect = STORE_SECTION_BODY;
	/* section-part = nz-number *("." nz-number) */
	while (is_digit(*s)) {
		uint64_t n = 0;

		if (it->depth == PATH_MAX_DEPTH || !parse_num(&s, false, UINT32_MAX, &n)) {
			error = "BAD Invalid section part number";
			goto out;
		}
		it->path[it->depth++] = (uint32_t)n;
		buf_printf(&name, "%s%u", it->depth > 1 ? "." : "", (uint32_t)n);
		if (*s != '.')
			break;
		if (!is_digit(s[1]) && !binary) {
			s++;
			buf_append(&name, ".", 1);
			break;
		}
		s++;
	}
	if (*s != ']') {
		if (binary) {
			error = "BAD Invalid BINARY section";
			goto out;
		}
		if (prefix(&s, "HEADER.FIELDS.NOT ")) {
			it->sect = STORE_SECTION_HEADER_FIELDS_NOT;
			buf_append_str(&name, "HEADER.FIELDS.NOT");
		} else if (prefix(&s, "HEADER.FIELDS ")) {
			it->sect = STORE_SECTION_HEADER_FIELDS;
			buf_append_str(&name, "HEADER.FIELDS");
		} else if (prefix(&s, "HEADER")) {
			it->sect = STORE_SECTION_HEADER;
			buf_append_str(&name, "HEADER");
		} else if (prefix(&s, "TEXT")) {
			it->sect = STORE_SECTION_TEXT;
			buf_append_str(&name, "TEXT");
		} else if (it->depth > 0 && prefix(&s, "MIME")) {
			it->sect = STORE_SECTION_MIME;
			buf_append_str(&name, "MIME");
		} else {
			error = "BAD Invalid section";
			goto out;
		}
		if ((it->sect == STORE_SECTION_HEADER_FIELDS ||
		     it->sect == STORE_SECTION_HEADER_FIELDS_NOT) &&
		    (error = parse_header_list(a, &s, it, &name)) != NULL)
			goto out;
	} else if (it->depth > 0 && s[-1] == '.') {
		error = "BAD Invalid section";
		goto out;
	}
	if (*s++ != ']') {
		error = "BAD Invalid section";
		goto out;
	}
	buf_append(&name, "]", 1);
	if (*s == '<') {
		uint64_t off = 0, len = 0;

		s++;
		if (size_only || !parse_num(&s, true, UINT32_MAX, &off) || *s++ != '.' ||
		    !parse_num(&s, false, UINT32_MAX, &len) || *s++ != '>') {
			error = "BAD Invalid partial";
			goto out;
		}
		it->partial = true;
		it->poff = off;
		it->plen = len;
		/* RFC 9051 §7.5.2: BINARY's response carries no origin. */
		if (!binary)
			buf_printf(&name, "<%llu>", (unsigned long long)off);
	}
	if (*s != '\0')
		error = "BAD Invalid characters after section";
out:
	if (error == NULL)
		it->name = arena_strndup(a, (const char *)name.data, name.len);
	buf_release(&name);
	return error;
}

static struct item *add_item(struct fetch_state *st, struct arena *a, size_t *cap,
			     enum item_kind kind)
{
	if (st->nitems == *cap) {
		struct item *more = arena_alloc(a, *cap * 2 * sizeof(*more));

		memcpy(more, st->items, *cap * sizeof(*more));
		st->items = more;
		*cap *= 2;
	}
	struct item *it = &st->items[st->nitems++];

	it->kind = kind;
	return it;
}

static bool has_item(const struct fetch_state *st, enum item_kind kind)
{
	for (size_t i = 0; i < st->nitems; i++)
		if (st->items[i].kind == kind)
			return true;
	return false;
}

static const struct {
	const char *name;
	enum item_kind kind;
} simple_items[] = {
	{ "FLAGS", ITEM_FLAGS },
	{ "UID", ITEM_UID },
	{ "INTERNALDATE", ITEM_INTERNALDATE },
	{ "RFC822.SIZE", ITEM_RFC822_SIZE },
	{ "ENVELOPE", ITEM_ENVELOPE },
	{ "BODY", ITEM_BODY },
	{ "BODYSTRUCTURE", ITEM_BODYSTRUCTURE },
	{ "MODSEQ", ITEM_MODSEQ },
	{ "SAVEDATE", ITEM_SAVEDATE },
	{ "EMAILID", ITEM_EMAILID },
	{ "THREADID", ITEM_THREADID },
};

/* fetch-att: one item into st. */
static const char *parse_item(struct fetch_state *st, struct arena *a, size_t *cap,
			      const struct imap_arg *arg)
{
	const char *s;

	if (arg->type != IMAP_ARG_ATOM)
		return "BAD Invalid fetch item";
	s = arg->str;
	for (size_t i = 0; i < N_ELEMENTS(simple_items); i++) {
		if (strcasecmp(s, simple_items[i].name) != 0)
			continue;
		if (!has_item(st, simple_items[i].kind))
			add_item(st, a, cap, simple_items[i].kind);
		return NULL;
	}
	static const struct {
		const char *name;
		const char *response;
		enum store_section_kind sect;
		bool seen;
	} rfc822[] = {
		{ "RFC822", "RFC822", STORE_SECTION_BODY, true },
		{ "RFC822.HEADER", "RFC822.HEADER", STORE_SECTION_HEADER, false },
		{ "RFC822.TEXT", "RFC822.TEXT", STORE_SECTION_TEXT, true },
	};
	for (size_t i = 0; i < N_ELEMENTS(rfc822); i++) {
		if (strcasecmp(s, rfc822[i].name) != 0)
			continue;
		struct item *it = add_item(st, a, cap, ITEM_SECTION);

		it->name = rfc822[i].response;
		it->sect = rfc822[i].sect;
		it->seen = rfc822[i].seen;
		return NULL;
	}
	static const struct {
		const char *prefix;
		const char *base;
		bool binary, peek, size;
	} sections[] = {
		{ "BODY[", "BODY", false, false, false },
		{ "BODY.PEEK[", "BODY", false, true, false },
		{ "BINARY[", "BINARY", true, false, false },
		{ "BINARY.PEEK[", "BINARY", true, true, false },
		{ "BINARY.SIZE[", "BINARY.SIZE", true, true, true },
	};
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		const char *p = s;

		if (!prefix(&p, sections[i].prefix))
			continue;
		struct item *it = add_item(st, a, cap,
					   sections[i].size ? ITEM_BINARY_SIZE : ITEM_SECTION);
		const char *error = parse_section(a, p, sections[i].base, sections[i].binary,
						  sections[i].size, it);

		it->binary = sections[i].binary;
		it->seen = !sections[i].peek;
		return error;
	}
	return "BAD Unknown fetch item";
}

/* The items: a macro, one fetch-att, or a list of them. */
static const char *parse_items(struct fetch_state *st, struct arena *a,
			       const struct imap_arg *arg)
{
	static const struct {
		const char *name;
		enum item_kind kinds[5];
		size_t n;
	} macros[] = {
		{ "ALL", { ITEM_FLAGS, ITEM_INTERNALDATE, ITEM_RFC822_SIZE, ITEM_ENVELOPE }, 4 },
		{ "FAST", { ITEM_FLAGS, ITEM_INTERNALDATE, ITEM_RFC822_SIZE }, 3 },
		{ "FULL", { ITEM_FLAGS, ITEM_INTERNALDATE, ITEM_RFC822_SIZE, ITEM_ENVELOPE,
			    ITEM_BODY }, 5 },
	};
	size_t cap = 8;
	const char *error;

	st->items = arena_alloc(a, cap * sizeof(*st->items));
	if (arg->type == IMAP_ARG_ATOM) {
		for (size_t i = 0; i < N_ELEMENTS(macros); i++) {
			if (strcasecmp(arg->str, macros[i].name) != 0)
				continue;
			for (size_t k = 0; k < macros[i].n; k++)
				add_item(st, a, &cap, macros[i].kinds[k]);
			return NULL;
		}
		return parse_item(st, a, &cap, arg);
	}
	if (arg->type != IMAP_ARG_LIST || arg->count == 0)
		return "BAD Fetch items expected";
	for (const struct imap_arg *c = arg->child; c != NULL; c = c->next)
		if ((error = parse_item(st, a, &cap, c)) != NULL)
			return error;
	return NULL;
}

/* fetch-modifiers (RFC 7162): "(" CHANGEDSINCE n [VANISHED] ")". */
static const char *parse_modifiers(struct imap_cmd *cmd, struct fetch_state *st,
				   const struct imap_arg *arg, bool *vanished_r)
{
	if (arg->type != IMAP_ARG_LIST || arg->count == 0)
		return "BAD Invalid fetch modifiers";
	for (const struct imap_arg *m = arg->child; m != NULL; m = m->next) {
		if (m->type != IMAP_ARG_ATOM)
			return "BAD Invalid fetch modifier";
		if (strcasecmp(m->str, "CHANGEDSINCE") == 0 && !st->changedsince_set) {
			const char *p;

			m = m->next;
			if (m == NULL || m->type != IMAP_ARG_ATOM)
				return "BAD Invalid CHANGEDSINCE value";
			p = m->str;
			if (!parse_num(&p, true, INT64_MAX, &st->changedsince) || *p != '\0')
				return "BAD Invalid CHANGEDSINCE value";
			st->changedsince_set = true;
		} else if (strcasecmp(m->str, "VANISHED") == 0 && !*vanished_r) {
			*vanished_r = true;
		} else {
			return "BAD Unknown fetch modifier";
		}
	}
	if (*vanished_r) {
		if (!cmd->uid)
			return "BAD VANISHED only with UID FETCH";
		if (!cmd->s->enabled.qresync)
			return "BAD VANISHED needs ENABLE QRESYNC first";
		if (!st->changedsince_set)
			return "BAD VANISHED needs CHANGEDSINCE";
	}
	return NULL;
}

/* ------------------------------------------------------ VANISHED (EARLIER) */

static bool in_set(const struct imap_seqset *set, uint32_t uid)
{
	for (unsigned r = 0; r < set->count; r++) {
		uint32_t lo = set->ranges[r].lo, hi = set->ranges[r].hi;

		lo = lo == IMAP_SEQ_STAR ? UINT32_MAX : lo;
		hi = hi == IMAP_SEQ_STAR ? UINT32_MAX : hi;
		if (uid >= (lo < hi ? lo : hi) && uid <= (lo < hi ? hi : lo))
			return true;
	}
	return false;
}

/* RFC 7162 §3.2.6: the UIDs of the set expunged since CHANGEDSINCE, as
 * "* VANISHED (EARLIER) uids". UIDs the client still has in its view are
 * left to the VANISHED the end of the command sends. */
static void vanished_earlier(struct imap_cmd *cmd, struct fetch_state *st, const char *text)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct imap_seqset *set;
	struct store_error err = { 0 };
	const char *error;
	uint32_t *gone;
	size_t ngone, w = 0;
	bool complete;

	if (imap_seqset_parse(text, strlen(text), imap__set.max_sequence_ranges, true, cmd->a,
			      &set, &error) < 0 || set->last)
		return;
	if (store_mailbox_expunged_since(sel->mb, st->changedsince, cmd->a, &gone, &ngone,
					 &complete, &err) < 0) {
		log_warn("FETCH VANISHED: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < ngone; i++)
		if (in_set(set, gone[i]) && imap__view_seq(sel, gone[i]) == 0)
			gone[w++] = gone[i];
	if (w == 0)
		return;
	buf_append_str(&cmd->out, "* VANISHED (EARLIER) ");
	for (size_t i = 0; i < w;) {
		size_t j = i;

		while (j + 1 < w && gone[j + 1] == gone[j] + 1)
			j++;
		buf_printf(&cmd->out, i > 0 ? ",%u" : "%u", gone[i]);
		if (j > i)
			buf_printf(&cmd->out, ":%u", gone[j]);
		i = j + 1;
	}
	buf_append_str(&cmd->out, "\r\n");
}

/* ------------------------------------------------------------- headers */

/* Read a located section (a header) whole, at most HEADER_MAX bytes cut
 * at a line end, into out (in st->tmp). */
static int read_header(struct store_mailbox *mb, uint32_t uid, const struct store_section *sec,
		       struct arena *a, char **out_r, size_t *len_r, struct store_error *err)
{
	struct source src;
	uint64_t want = sec->size < HEADER_MAX ? sec->size : HEADER_MAX;
	char *h = arena_alloc(a, (size_t)want + 1);
	size_t n = 0;

	*out_r = h;
	*len_r = 0;
	if (want == 0)
		return 0;
	if (source_open(mb, uid, sec->offset, 0, want, STORE_CTE_IDENTITY, &src, err) < 0)
		return -1;
	while (n < want) {
		ssize_t got = source_read(&src, (unsigned char *)h + n, (size_t)want - n);

		if (got <= 0)
			break;
		n += (size_t)got;
	}
	source_close(&src);
	if (want < sec->size) {
		while (n > 0 && h[n - 1] != '\n')
			n--;
	}
	h[n] = '\0';
	*len_r = n;
	return 0;
}

/* The value of a header field (unfolded, in a), or NULL. */
static const char *header_value(struct arena *a, const char *h, size_t len, const char *field)
{
	size_t flen = strlen(field);
	const char *end = h + len;

	for (const char *s = h; s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *next = nl != NULL ? nl + 1 : end;

		if ((size_t)(end - s) > flen && strncasecmp(s, field, flen) == 0) {
			const char *v = s + flen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (v < end && *v == ':') {
				struct buf b;

				buf_init(&b, HEADER_MAX);
				v++;
				/* The field and its continuation lines. */
				for (;;) {
					for (; v < next; v++)
						if (*v != '\r' && *v != '\n')
							buf_append(&b, v, 1);
					if (next >= end || (*next != ' ' && *next != '\t'))
						break;
					v = next;
					nl = memchr(v, '\n', (size_t)(end - v));
					next = nl != NULL ? nl + 1 : end;
				}
				char *r = arena_strndup(a, b.data != NULL ? (char *)b.data : "", b.len);

				buf_release(&b);
				return r;
			}
		}
		s = next;
	}
	return NULL;
}

/* The first token of a field value, trimmed, up to ';' or a comment. */
static bool value_is(const char *v, const char *word)
{
	size_t n = strlen(word);

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, word, n) != 0)
		return false;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';' || *v == '(';
}

/*
 * The content-transfer-encoding of a part, from its MIME header (the
 * message header for depth 0). Multipart and message parts are never
 * encoded (RFC 2045 §6.4): identity whatever the header says. *known_r
 * is false for an encoding BINARY cannot decode (*cte_r is then identity).
 */
static int part_cte(struct store_mailbox *mb, uint32_t uid, const struct item *it,
		    struct arena *a, enum store_cte *cte_r, bool *known_r,
		    struct store_error *err)
{
	struct store_section sec;
	char *h;
	size_t len;
	const char *v;

	*cte_r = STORE_CTE_IDENTITY;
	*known_r = true;
	if (store_section_locate(mb, uid, it->path, it->depth,
				 it->depth > 0 ? STORE_SECTION_MIME : STORE_SECTION_HEADER, a,
				 &sec, err) < 0)
		return err->code == STORE_ERR_NOTFOUND ? 0 : -1;
	if (read_header(mb, uid, &sec, a, &h, &len, err) < 0)
		return -1;
	if ((v = header_value(a, h, len, "Content-Type")) != NULL) {
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "multipart/", 10) == 0 || strncasecmp(v, "message/", 8) == 0)
			return 0;
	}
	if ((v = header_value(a, h, len, "Content-Transfer-Encoding")) == NULL)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0' || value_is(v, "7bit") || value_is(v, "8bit") || value_is(v, "binary"))
		*cte_r = STORE_CTE_IDENTITY;
	else if (value_is(v, "base64"))
		*cte_r = STORE_CTE_BASE64;
	else if (value_is(v, "quoted-printable"))
		*cte_r = STORE_CTE_QP;
	else
		*known_r = false;
	return 0;
}

/* --------------------------------------------------------------- writing */

/* Take back what was written after len (a message not to be sent). */
static void out_truncate(struct buf *out, size_t len)
{
	out->len = len;
	if (out->data != NULL)
		out->data[len] = '\0';
}

/* The name of an item in a response. */
static const char *item_name(const struct item *it)
{
	if (it->name != NULL)
		return it->name;
	for (size_t i = 0; i < N_ELEMENTS(simple_items); i++)
		if (simple_items[i].kind == it->kind)
			return simple_items[i].name;
	return "NIL";
}

static void item_sep(struct fetch_state *st, struct buf *out)
{
	if (!st->first_item)
		buf_append(out, " ", 1);
	st->first_item = false;
}

/* Stream the current literal into cmd->out until it ends or the chunk is
 * full. true when it ended. */
static bool lit_pump(struct imap_cmd *cmd, struct fetch_state *st)
{
	struct buf *out = &cmd->out;
	unsigned char tmp[16384];

	while (st->lit_left > 0) {
		if (out->len >= FETCH_CHUNK)
			return false;
		size_t want = st->lit_left < sizeof(tmp) ? (size_t)st->lit_left : sizeof(tmp);
		ssize_t n = -1;

		if (!st->lit_padding && (n = source_read(&st->src, tmp, want)) <= 0) {
			/* The literal's size is announced: the stream stays valid only
			 * if exactly that much follows. */
			log_warn("FETCH: UID %u became unreadable with %llu bytes of a literal "
				 "left, padded", st->msg.uid, (unsigned long long)st->lit_left);
			source_close(&st->src);
			st->lit_padding = true;
			st->failed = true;
		}
		if (st->lit_padding) {
			memset(tmp, ' ', want);
			n = (ssize_t)want;
		}
		if (st->lit_nul_fix) {
			for (unsigned char *p = tmp; (p = memchr(p, '\0', (size_t)(tmp + n - p))) != NULL;)
				*p++ = 0x80;
		}
		buf_append(out, tmp, (size_t)n);
		st->lit_left -= (uint64_t)n;
	}
	source_close(&st->src);
	st->lit_active = false;
	st->lit_padding = false;
	return true;
}

/* Skip n bytes of a source (a partial's offset in decoded data). */
static int source_skip(struct source *s, uint64_t n)
{
	unsigned char tmp[16384];

	while (n > 0) {
		ssize_t got = source_read(s, tmp, n < sizeof(tmp) ? (size_t)n : sizeof(tmp));

		if (got <= 0)
			return got < 0 ? -1 : 0;
		n -= (uint64_t)got;
	}
	return 0;
}

/* Size of a decoded source, and whether it holds a NUL (one pass). */
static int source_measure(struct source *s, uint64_t *size_r, bool *nul_r)
{
	unsigned char tmp[16384];
	ssize_t n;

	*size_r = 0;
	*nul_r = false;
	while ((n = source_read(s, tmp, sizeof(tmp))) > 0) {
		*size_r += (uint64_t)n;
		if (!*nul_r && memchr(tmp, '\0', (size_t)n) != NULL)
			*nul_r = true;
	}
	return n < 0 ? -1 : 0;
}

enum write_result { WRITE_OK, WRITE_GONE, WRITE_ERROR };

/* A string from memory as the item's value: "" when empty. */
static void write_mem_literal(struct buf *out, const char *data, size_t len, uint64_t poff,
			      bool partial, uint64_t plen)
{
	if (partial) {
		if (poff >= len)
			len = 0;
		else {
			data += poff;
			len -= (size_t)poff;
			if (len > plen)
				len = (size_t)plen;
		}
	}
	if (len == 0) {
		buf_append_str(out, "\"\"");
		return;
	}
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, data, len);
}

/*
 * BODY[...], BINARY[...], BINARY.SIZE[...] and RFC822*: the name, then the
 * value (a literal started here and streamed by lit_pump).
 */
static enum write_result write_section(struct imap_cmd *cmd, struct fetch_state *st,
				       const struct item *it, struct store_error *err)
{
	struct store_mailbox *mb = cmd->s->mail.sel->mb;
	struct buf *out = &cmd->out;
	uint32_t uid = st->msg.uid;
	struct store_section sec;
	enum store_cte cte = STORE_CTE_IDENTITY;
	bool known;
	uint64_t ident = 0, size;
	bool nul = false;

	if (store_section_locate(mb, uid, it->path, it->depth, it->sect, st->tmp, &sec, err) < 0) {
		if (err->code != STORE_ERR_NOTFOUND)
			return WRITE_ERROR;
		if (store_mailbox_seq(mb, uid) == 0)
			return WRITE_GONE;
		/* No such part: an empty string (RFC 9051 §6.4.5, as Dovecot). */
		buf_printf(out, "%s %s", it->name, it->kind == ITEM_BINARY_SIZE ? "0" : "\"\"");
		return WRITE_OK;
	}
	if (sec.filter) {
		char *h;
		size_t len;
		struct buf f;

		if (read_header(mb, uid, &sec, st->tmp, &h, &len, err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
		buf_init(&f, HEADER_MAX + 4);
		store_header_filter(h, len, it->fields, it->nfields,
				    it->sect == STORE_SECTION_HEADER_FIELDS_NOT, &f);
		buf_printf(out, "%s ", it->name);
		write_mem_literal(out, f.data != NULL ? (char *)f.data : "", f.len, it->poff,
				  it->partial, it->plen);
		buf_release(&f);
		return WRITE_OK;
	}
	if (it->binary) {
		if (part_cte(mb, uid, it, st->tmp, &cte, &known, err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
		if (it->depth == 0 && cte != STORE_CTE_IDENTITY) {
			/* BINARY[] of a single-part message: its header as it is,
			 * then the body decoded. */
			struct store_section text;

			if (store_section_locate(mb, uid, NULL, 0, STORE_SECTION_TEXT, st->tmp,
						 &text, err) < 0)
				return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
			ident = text.offset;
		}
		/* The decoded size and whether a literal8 is needed: one pass. */
		if (source_open(mb, uid, sec.offset, ident, sec.size - ident, cte, &st->src,
				err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
		int r = source_measure(&st->src, &size, &nul);

		source_close(&st->src);
		if (r < 0) {
			err->code = STORE_ERR_TEMP;
			snprintf(err->msg, sizeof(err->msg), "UID %u: read failed", uid);
			return store_mailbox_seq(mb, uid) == 0 ? WRITE_GONE : WRITE_ERROR;
		}
		if (it->kind == ITEM_BINARY_SIZE) {
			buf_printf(out, "%s %llu", it->name, (unsigned long long)size);
			return WRITE_OK;
		}
	} else {
		size = sec.size;
	}
	uint64_t skip = 0;

	if (it->partial) {
		skip = it->poff < size ? it->poff : size;
		size -= skip;
		if (size > it->plen)
			size = it->plen;
	}
	if (size == 0) {
		buf_printf(out, "%s \"\"", it->name);
		return WRITE_OK;
	}
	/* Identity data is skipped by the reader; decoded data is decoded to
	 * be skipped. */
	uint64_t offset = sec.offset, raw = sec.size - ident;

	if (cte == STORE_CTE_IDENTITY) {
		offset += skip;
		raw = size;
		ident = 0;
		skip = 0;
	}
	if (source_open(mb, uid, offset, ident, raw, cte, &st->src, err) < 0)
		return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
	if (skip > 0 && source_skip(&st->src, skip) < 0) {
		source_close(&st->src);
		err->code = STORE_ERR_TEMP;
		snprintf(err->msg, sizeof(err->msg), "UID %u: read failed", uid);
		return WRITE_ERROR;
	}
	buf_printf(out, "%s %s{%llu}\r\n", it->name, it->binary && nul ? "~" : "",
		   (unsigned long long)size);
	st->lit_active = true;
	st->lit_left = size;
	st->lit_nul_fix = !it->binary;
	st->lit_padding = false;
	return WRITE_OK;
}

/* One item of the current message into cmd->out. */
static enum write_result write_item(struct imap_cmd *cmd, struct fetch_state *st,
				    const struct item *it, struct store_error *err)
{
	struct store_mailbox *mb = cmd->s->mail.sel->mb;
	struct buf *out = &cmd->out;
	struct store_msg_structure ms;
	const struct store_msg *m = &st->msg;

	switch (it->kind) {
	case ITEM_FLAGS:
		item_sep(st, out);
		buf_append_str(out, "FLAGS ");
		imap__buf_flags(out, mb, m);
		st->flags_sent = true;
		return WRITE_OK;
	case ITEM_UID:
		item_sep(st, out);
		buf_printf(out, "UID %u", m->uid);
		return WRITE_OK;
	case ITEM_INTERNALDATE:
		item_sep(st, out);
		buf_append_str(out, "INTERNALDATE ");
		imap__buf_date_time(out, m->internal_date);
		return WRITE_OK;
	case ITEM_RFC822_SIZE:
		item_sep(st, out);
		buf_printf(out, "RFC822.SIZE %llu", (unsigned long long)m->vsize);
		return WRITE_OK;
	case ITEM_MODSEQ:
		item_sep(st, out);
		buf_printf(out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
		st->modseq_sent = true;
		return WRITE_OK;
	case ITEM_SAVEDATE:
		item_sep(st, out);
		buf_append_str(out, "SAVEDATE ");
		if (m->save_date > 0)
			imap__buf_date_time(out, m->save_date);
		else
			buf_append_str(out, "NIL");
		return WRITE_OK;
	case ITEM_EMAILID: {
		char id[STORE_OBJECTID_SIZE];

		if (store_msg_email_id(mb, m->uid, id, err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
		item_sep(st, out);
		buf_printf(out, "EMAILID (%s)", id);
		return WRITE_OK;
	}
	case ITEM_THREADID:
		/* No threads are kept: RFC 8474 §5.2 allows NIL. */
		item_sep(st, out);
		buf_append_str(out, "THREADID NIL");
		return WRITE_OK;
	case ITEM_ENVELOPE:
	case ITEM_BODY:
	case ITEM_BODYSTRUCTURE:
		if (store_msg_structure(mb, m->uid, st->tmp, &ms, err) < 0)
			return err->code == STORE_ERR_NOTFOUND ? WRITE_GONE : WRITE_ERROR;
		item_sep(st, out);
		if (it->kind == ITEM_ENVELOPE) {
			buf_append_str(out, "ENVELOPE ");
			buf_append(out, ms.envelope, ms.envelope_len);
		} else if (it->kind == ITEM_BODY) {
			buf_append_str(out, "BODY ");
			buf_append(out, ms.body, ms.body_len);
		} else {
			buf_append_str(out, "BODYSTRUCTURE ");
			buf_append(out, ms.bodystructure, ms.bodystructure_len);
		}
		return WRITE_OK;
	case ITEM_SECTION:
	case ITEM_BINARY_SIZE: {
		size_t mark = out->len;
		enum write_result r;

		item_sep(st, out);
		if ((r = write_section(cmd, st, it, err)) != WRITE_OK)
			out_truncate(out, mark);
		return r;
	}
	}
	return WRITE_OK;
}

/*
 * Start a message: gone from the store (skipped), not changed since
 * CHANGEDSINCE (skipped), a BINARY it cannot decode (the command ends),
 * and \Seen set where fetching a body does that. 1: write it, 0: skip,
 * -1: *err_text or *err is the command's tagged reply.
 */
static int begin_message(struct imap_cmd *cmd, struct fetch_state *st, uint32_t uid,
			 const char **err_text, struct store_error *err)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	struct store_mailbox *mb = sel->mb;
	uint32_t seq = store_mailbox_seq(mb, uid);

	if (seq == 0) {
		/* Expunged by someone else, still in the client's view. */
		st->expunged = true;
		return 0;
	}
	st->msg = *store_mailbox_msg(mb, seq);
	if (st->changedsince_set && st->msg.modseq <= st->changedsince)
		return 0;
	for (size_t i = 0; i < st->nitems; i++) {
		const struct item *it = &st->items[i];
		enum store_cte cte;
		bool known;

		if (!it->binary)
			continue;
		if (part_cte(mb, uid, it, st->tmp, &cte, &known, err) < 0) {
			if (err->code == STORE_ERR_NOTFOUND) {
				st->expunged = true;
				return 0;
			}
			return -1;
		}
		if (!known) {
			*err_text = "NO [UNKNOWN-CTE] Cannot decode the part's "
				    "Content-Transfer-Encoding";
			return -1;
		}
	}
	st->add_flags = false;
	if (st->any_seen && !sel->readonly && (st->msg.flags & STORE_FLAG_SEEN) == 0) {
		uint64_t before = store_mailbox_highestmodseq(mb);
		bool current = sel->reported_modseq == before;

		if (store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0,
					    0, NULL, err) < 0)
			return -1;
		if ((seq = store_mailbox_seq(mb, uid)) == 0) {
			st->expunged = true;
			return 0;
		}
		st->msg = *store_mailbox_msg(mb, seq);
		/* The change is told in this response (FLAGS): when it is the
		 * only one since the client was last told, the closing sync
		 * need not tell it again. */
		if (current && st->msg.modseq == before + 1 &&
		    store_mailbox_highestmodseq(mb) == st->msg.modseq)
			sel->reported_modseq = st->msg.modseq;
		st->add_flags = !st->want_flags;
	}
	return 1;
}

/* ------------------------------------------------------------- the job */

static void fetch_end(struct fetch_state *st)
{
	source_close(&st->src);
	st->lit_active = false;
	arena_free(&st->tmp);
}

static void fetch_fail(struct imap_cmd *cmd, struct fetch_state *st, const char *text,
		       const struct store_error *err)
{
	fetch_end(st);
	if (st->msg_start != SIZE_MAX && st->in_msg)
		out_truncate(&cmd->out, st->msg_start);
	st->in_msg = false;
	if (text != NULL)
		imap__tagged_error(cmd, text);
	else
		imap__tagged_store_error(cmd, err, false);
}

/* Parse the command and set up the state; false when it is answered. */
/* The command ends, or the session goes between chunks: a literal's
 * reader may still be open. */
static void fetch_cleanup(struct imap_cmd *cmd)
{
	struct fetch_state *st = cmd->priv;

	if (st == NULL)
		return;
	source_close(&st->src);
	arena_free(&st->tmp);
}

static bool fetch_start(struct imap_cmd *cmd)
{
	struct fetch_state *st = arena_alloc(cmd->a, sizeof(*st));
	const struct imap_arg *set = imap__cmd_arg(cmd, 0), *items = imap__cmd_arg(cmd, 1);
	const struct imap_arg *mods = imap__cmd_arg(cmd, 2);
	const char *error;
	bool vanished = false;

	if (cmd->argc < 2 || cmd->argc > 3) {
		imap__tagged(cmd, "BAD", "%s takes a sequence set, items and modifiers",
			     cmd->name);
		return false;
	}
	if (set->type != IMAP_ARG_ATOM) {
		imap__tagged_error(cmd, "BAD Invalid sequence set");
		return false;
	}
	if ((error = parse_items(st, cmd->a, items)) != NULL ||
	    (mods != NULL && (error = parse_modifiers(cmd, st, mods, &vanished)) != NULL)) {
		imap__tagged_error(cmd, error);
		return false;
	}
	/* See what others changed first: new messages can be fetched, and
	 * what is gone is known (no expunge is told here, §7.5.1). */
	imap__sync(cmd, false);
	if (imap__seqset_uids(cmd, set->str, cmd->uid, &st->uids, &st->count, &error) < 0) {
		imap__tagged_error(cmd, error);
		return false;
	}
	/* UID FETCH always says the UID (RFC 9051 §6.4.9), first as Dovecot. */
	if (cmd->uid && !has_item(st, ITEM_UID)) {
		size_t cap = st->nitems + 1;
		struct item *all = arena_alloc(cmd->a, cap * sizeof(*all));

		all[0].kind = ITEM_UID;
		memcpy(all + 1, st->items, st->nitems * sizeof(*all));
		st->items = all;
		st->nitems++;
	}
	st->want_flags = has_item(st, ITEM_FLAGS);
	for (size_t i = 0; i < st->nitems; i++)
		st->any_seen |= st->items[i].seen;
	/* MODSEQ and CHANGEDSINCE enable CONDSTORE (RFC 7162 §3.1). */
	if (has_item(st, ITEM_MODSEQ) || st->changedsince_set)
		cmd->s->enabled.condstore = true;
	if (vanished)
		vanished_earlier(cmd, st, set->str);
	st->msg_start = SIZE_MAX;
	cmd->priv = st;
	cmd->cleanup = fetch_cleanup;
	return true;
}

void imap__cmd_fetch(struct imap_cmd *cmd)
{
	struct fetch_state *st = cmd->priv;
	struct imap_selected *sel = cmd->s->mail.sel;
	struct store_error err = { 0 };
	const char *err_text = NULL;

	if (st == NULL) {
		if (!fetch_start(cmd))
			return;
		st = cmd->priv;
	}
	st->tmp = arena_new(16 * 1024);
	if (st->in_msg)
		st->msg_start = SIZE_MAX;       /* its start was sent already */
	while (st->in_msg || st->next < st->count) {
		if (!st->in_msg) {
			if (cmd->out.len >= FETCH_CHUNK) {
				arena_free(&st->tmp);
				cmd->more = true;
				return;
			}
			arena_reset(st->tmp);
			int r = begin_message(cmd, st, st->uids[st->next], &err_text, &err);

			if (r < 0) {
				fetch_fail(cmd, st, err_text, &err);
				return;
			}
			if (r == 0) {
				st->next++;
				continue;
			}
			st->in_msg = true;
			st->item = 0;
			st->first_item = true;
			st->flags_sent = st->modseq_sent = false;
			st->msg_start = cmd->out.len;
			st->seq = imap__view_seq(sel, st->msg.uid);
			buf_printf(&cmd->out, "* %u FETCH (", st->seq);
		}
		for (; st->item < st->nitems; st->item++) {
			if (!st->lit_active) {
				enum write_result r = write_item(cmd, st, &st->items[st->item], &err);

				if (r == WRITE_GONE) {
					st->expunged = true;
					if (st->msg_start != SIZE_MAX) {
						/* Nothing of it was sent: drop it. */
						out_truncate(&cmd->out, st->msg_start);
						st->in_msg = false;
						break;
					}
					item_sep(st, &cmd->out);
					buf_printf(&cmd->out, "%s NIL", item_name(&st->items[st->item]));
				} else if (r == WRITE_ERROR) {
					if (st->msg_start != SIZE_MAX) {
						fetch_fail(cmd, st, NULL, &err);
						return;
					}
					log_warn("FETCH: UID %u: %s", st->msg.uid, err.msg);
					st->failed = true;
					item_sep(st, &cmd->out);
					buf_printf(&cmd->out, "%s NIL", item_name(&st->items[st->item]));
				}
			}
			if (st->lit_active && !lit_pump(cmd, st)) {
				/* The rest of the literal in the next chunk. */
				st->msg_start = SIZE_MAX;
				arena_free(&st->tmp);
				cmd->more = true;
				return;
			}
		}
		if (!st->in_msg) {
			st->next++;
			continue;
		}
		/* \Seen was set by this fetch: the new flags go with it. */
		if (st->add_flags && !st->flags_sent) {
			item_sep(st, &cmd->out);
			buf_append_str(&cmd->out, "FLAGS ");
			imap__buf_flags(&cmd->out, sel->mb, &st->msg);
			st->flags_sent = true;
		}
		/* CHANGEDSINCE, or flags with CONDSTORE on (RFC 7162 §3.1.4.1). */
		if (!st->modseq_sent && (st->changedsince_set ||
					 (st->flags_sent && cmd->s->enabled.condstore))) {
			item_sep(st, &cmd->out);
			buf_printf(&cmd->out, "MODSEQ (%llu)", (unsigned long long)st->msg.modseq);
		}
		buf_append_str(&cmd->out, ")\r\n");
		st->in_msg = false;
		st->next++;
	}
	fetch_end(st);
	imap__sync(cmd, cmd->uid);
	if (st->expunged)
		imap__tagged(cmd, "NO", "[EXPUNGEISSUED] Some messages were expunged");
	else if (st->failed)
		imap__tagged(cmd, "NO", "[SERVERBUG] Some messages could not be read (%s)",
			     conn_session_id(cmd->s->conn));
	else
		imap__tagged(cmd, "OK", "%s%s completed", cmd->uid ? "UID " : "", cmd->name);
}
