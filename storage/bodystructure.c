/*
 * bodystructure.c — BODY and BODYSTRUCTURE strings (RFC 9051 §7.5.2, RFC
 * 3501 formal syntax: body-type-basic/-text/-msg/-mpart with body-ext-1part
 * and body-ext-mpart) from the parser's part tree.
 *
 * Where the grammar needs something the message does not have, Dovecot's
 * choices are used: a part without Content-Type is text/plain (in a
 * multipart/digest, message/rfc822); a text part without parameters gets
 * ("charset" "us-ascii"); the encoding defaults to "7bit"; a multipart
 * with no parts (no boundary, or a boundary that never appears) shows one
 * empty text/plain part, since the grammar needs at least one. Extension
 * data is always complete: MD5, disposition, language, location.
 */
#include "mime-private.h"

#include <string.h>
#include <strings.h>

#define EMPTY_TEXT_PART "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

void mime_write_nstring(struct buf *out, const char *s)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	size_t len = strlen(s);
	bool literal = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n' || c >= 0x80 || len > 4096) {
			literal = true;
			break;
		}
	}
	if (literal) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append_str(out, "\"");
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, s + i, 1);
	}
	buf_append_str(out, "\"");
}

static void write_params(struct buf *out, const struct mime_param *pm)
{
	if (pm == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_str(out, "(");
	for (; pm != NULL; pm = pm->next) {
		mime_write_nstring(out, pm->name);
		buf_append_str(out, " ");
		mime_write_nstring(out, pm->value);
		if (pm->next != NULL)
			buf_append_str(out, " ");
	}
	buf_append_str(out, ")");
}

static void write_disposition(struct buf *out, const struct mime_part *part)
{
	if (part->disposition == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_str(out, "(");
	mime_write_nstring(out, part->disposition);
	buf_append_str(out, " ");
	write_params(out, part->disp_params);
	buf_append_str(out, ")");
}

/* body-fld-lang: a list of the comma-separated language tags. */
static void write_language(struct buf *out, const char *value)
{
	char tags[16][64];
	unsigned n = 0;

	for (const char *s = value; s != NULL && *s != '\0' && n < N_ELEMENTS(tags);) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		size_t k = 0;

		while (*s != '\0' && *s != ',' && *s != ' ' && *s != '\t' && *s != '(') {
			if (k < sizeof(tags[0]) - 1)
				tags[n][k++] = *s;
			s++;
		}
		if (*s == '(') {
			/* A comment: skipped. */
			const char *e = strchr(s, ')');

			s = e != NULL ? e + 1 : s + strlen(s);
		}
		tags[n][k] = '\0';
		if (k > 0)
			n++;
	}
	if (n == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	if (n == 1) {
		mime_write_nstring(out, tags[0]);
		return;
	}
	buf_append_str(out, "(");
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(out, " ");
		mime_write_nstring(out, tags[i]);
	}
	buf_append_str(out, ")");
}

static void write_ext_common(struct buf *out, const struct mime_part *part)
{
	buf_append_str(out, " ");
	write_disposition(out, part);
	buf_append_str(out, " ");
	write_language(out, part->fields[MIME_F_CONTENT_LANGUAGE]);
	buf_append_str(out, " ");
	mime_write_nstring(out, part->fields[MIME_F_CONTENT_LOCATION]);
}

static void write_part(struct buf *out, const struct mime_part *part, bool extended);

static void write_multipart(struct buf *out, const struct mime_part *part, bool extended)
{
	buf_append_str(out, "(");
	if (part->children == NULL) {
		buf_append_str(out, EMPTY_TEXT_PART);
		if (extended)
			buf_append_str(out, " NIL NIL NIL NIL");
		buf_append_str(out, ")");
	}
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		write_part(out, c, extended);
	buf_append_str(out, " ");
	mime_write_nstring(out, part->subtype);
	if (extended) {
		buf_append_str(out, " ");
		write_params(out, part->params);
		write_ext_common(out, part);
	}
	buf_append_str(out, ")");
}

static void write_part(struct buf *out, const struct mime_part *part, bool extended)
{
	if (part->kind == MIME_MULTIPART) {
		write_multipart(out, part, extended);
		return;
	}
	const char *type = part->type != NULL ? part->type : "text";
	const char *subtype = part->type != NULL ? part->subtype : "plain";
	const char *enc = part->fields[MIME_F_CONTENT_TRANSFER_ENCODING];
	bool text = strcasecmp(type, "text") == 0;

	buf_append_str(out, "(");
	mime_write_nstring(out, type);
	buf_append_str(out, " ");
	mime_write_nstring(out, subtype);
	buf_append_str(out, " ");
	if (part->params == NULL && text)
		buf_append_str(out, "(\"charset\" \"us-ascii\")");
	else
		write_params(out, part->params);
	buf_append_str(out, " ");
	mime_write_nstring(out, part->fields[MIME_F_CONTENT_ID]);
	buf_append_str(out, " ");
	mime_write_nstring(out, part->fields[MIME_F_CONTENT_DESCRIPTION]);
	buf_append_str(out, " ");
	mime_write_nstring(out, enc != NULL && *enc != '\0' ? enc : "7bit");
	buf_printf(out, " %llu", (unsigned long long)part->body_size);
	if (part->kind == MIME_MESSAGE) {
		const struct mime_part *msg = part->children;

		buf_append_str(out, " ");
		if (msg != NULL) {
			mime_write_envelope(out, msg);
			buf_append_str(out, " ");
			mime_write_bodystructure(out, msg, extended);
		} else {
			buf_append_str(out, EMPTY_ENVELOPE " " EMPTY_TEXT_PART);
			buf_append_str(out, extended ? " NIL NIL NIL NIL)" : ")");
		}
		buf_printf(out, " %llu", (unsigned long long)part->body_lines);
	} else if (text) {
		buf_printf(out, " %llu", (unsigned long long)part->body_lines);
	}
	if (extended) {
		buf_append_str(out, " ");
		mime_write_nstring(out, part->fields[MIME_F_CONTENT_MD5]);
		write_ext_common(out, part);
	}
	buf_append_str(out, ")");
}

bool mime__buf_overflowed(const struct buf *out)
{
	/* A failed append leaves the buffer as it was, so it failed only if
	 * the buffer came within one append of its maximum; no single append
	 * here is longer than a field, quoted. */
	return out->len + 2 * MIME_FIELD_MAX + 64 > out->max;
}

int mime_write_bodystructure(struct buf *out, const struct mime_part *root, bool extended)
{
	size_t before = out->len;

	write_part(out, root, extended);
	if (!mime__buf_overflowed(out))
		return 0;
	/* Only a hostile message gets here (thousands of nested messages
	 * with long headers): the whole body as one opaque part. */
	log_warn("BODYSTRUCTURE too large for its buffer: written as one part");
	out->len = before;
	buf_printf(out, "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" %llu%s)",
		   (unsigned long long)root->body_size, extended ? " NIL NIL NIL NIL" : "");
	return mime__buf_overflowed(out) ? BUF_ETOOBIG : 0;
}
