/*
 * mime-private.h — the MIME/RFC 5322 parser and what is built from its
 * result (ENVELOPE, BODY, BODYSTRUCTURE, decoded header fields), private
 * to storage/.
 *
 * The parser is fed a message in pieces (any line ends) and keeps only a
 * bounded amount of it: the header fields IMAP needs, each cut at
 * MIME_FIELD_MAX and all of them together at MIME_HEADER_BUDGET, and the
 * first bytes of each body line (enough to recognise a boundary). Offsets
 * and sizes are those of the CRLF view (store_reader), so they are what
 * IMAP sends. Parts beyond MIME_PARTS_MAX and nesting beyond
 * MIME_DEPTH_MAX are not descended into: their bytes become the body of
 * the part that was open (Dovecot does the same), so a hostile message
 * still gets a valid ENVELOPE and BODYSTRUCTURE in bounded time and
 * memory.
 */
#ifndef TERN_MIME_PRIVATE_H
#define TERN_MIME_PRIVATE_H

#include "common/common.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_DEPTH_MAX 100
#define MIME_PARTS_MAX 10000
/* One header field (unfolded) is kept up to this many bytes. */
#define MIME_FIELD_MAX (64 * 1024)
/* All fields kept for one message, together. */
#define MIME_HEADER_BUDGET (2 * 1024 * 1024)
/* Parameters kept per Content-Type or Content-Disposition. */
#define MIME_PARAMS_MAX 64
/* RFC 2046 allows 70; a little more for broken senders (as Dovecot). */
#define MIME_BOUNDARY_MAX 80

struct mime_param {
	const char *name;       /* RFC 2231 continuations merged, "name*" if extended */
	const char *value;      /* extended: "charset'lang'%XX..." as sent */
	struct mime_param *next;
};

/* The fields of one header this parser keeps (unfolded raw values, NULL
 * when absent; the first occurrence counts). */
enum mime_field {
	MIME_F_CONTENT_TYPE,
	MIME_F_CONTENT_TRANSFER_ENCODING,
	MIME_F_CONTENT_ID,
	MIME_F_CONTENT_DESCRIPTION,
	MIME_F_CONTENT_MD5,
	MIME_F_CONTENT_DISPOSITION,
	MIME_F_CONTENT_LANGUAGE,
	MIME_F_CONTENT_LOCATION,
	MIME_F_DATE,
	MIME_F_SUBJECT,
	MIME_F_FROM,
	MIME_F_SENDER,
	MIME_F_REPLY_TO,
	MIME_F_TO,
	MIME_F_CC,
	MIME_F_BCC,
	MIME_F_IN_REPLY_TO,
	MIME_F_MESSAGE_ID,
	MIME_F_REFERENCES,
	MIME_F_COUNT
};

/* The first one that belongs only to a message's header (not a part's). */
#define MIME_F_FIRST_ENVELOPE MIME_F_DATE

enum mime_kind {
	MIME_LEAF,              /* a body of its own */
	MIME_MULTIPART,         /* children are the parts */
	MIME_MESSAGE,           /* message/rfc822 (or global): one child, the message */
};

struct mime_part {
	struct mime_part *parent, *children, *last_child, *next;
	enum mime_kind kind;
	bool is_message;        /* its header is a message's header (root, or in a MIME_MESSAGE) */
	const char *type, *subtype;   /* as sent; NULL: defaulted */
	struct mime_param *params;
	const char *disposition;
	struct mime_param *disp_params;
	const char *fields[MIME_F_COUNT];
	/* CRLF view: the header (with its empty line) and the body. */
	uint64_t hdr_offset, hdr_size;
	uint64_t body_offset, body_size;
	uint64_t body_lines;    /* LFs in the body */
	unsigned depth;
	unsigned nchildren;
};

struct mime_parser;

struct mime_parser *mime_parser_new(void);
/* Feed the next bytes of the message; never fails (limits only stop the
 * descent). */
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* The end of the message: the part tree, valid until mime_parser_free. */
struct mime_part *mime_parser_finish(struct mime_parser *p);
/* Bytes the parser holds (for tests of the memory bound). */
size_t mime_parser_footprint(const struct mime_parser *p);
void mime_parser_free(struct mime_parser **p);

/* Parse a whole message held in memory (tests, on-demand parsing). */
struct mime_part *mime_parse_buffer(struct mime_parser *p, const void *data, size_t len);

/* bodystructure.c: BODYSTRUCTURE (extended) or BODY of the tree rooted at
 * the message part, appended to out. When out's maximum (which should be
 * at least 1 MiB) cannot hold it, a minimal valid one is written instead
 * (and logged); BUF_ETOOBIG only if not even that fits. */
int mime_write_bodystructure(struct buf *out, const struct mime_part *root, bool extended);
/* Whether appends to out may have failed for its maximum (they leave it
 * unchanged, so a too-long result would be silently incomplete). */
bool mime__buf_overflowed(const struct buf *out);
/* An IMAP string (quoted, or a literal when it must be) or NIL for NULL. */
void mime_write_nstring(struct buf *out, const char *s);

/* envelope.c: ENVELOPE of a message part (root, or child of MIME_MESSAGE),
 * with the same fallback (all NIL) as mime_write_bodystructure. */
int mime_write_envelope(struct buf *out, const struct mime_part *msg);

/* An address of a header field, as the ENVELOPE shows it. A group start
 * has mailbox = group name and host NULL; a group end has all NULL. */
struct mime_address {
	const char *name, *route, *mailbox, *host;
	struct mime_address *next;
};
/* Parse an address list (lenient, like Dovecot); at most max addresses. */
struct mime_address *mime_address_parse(struct arena *a, const char *value, unsigned max);

/* Parameters of a Content-Type/Content-Disposition value: sets *first_r to
 * the leading token(s) ("text/plain" or "attachment") and returns the list
 * (continuations merged). */
struct mime_param *mime_params_parse(struct arena *a, const char *value, const char **first_r);

/* rfc2047.c: a header value decoded to UTF-8 (encoded words decoded,
 * undecodable ones kept as they are, other 8-bit bytes taken as UTF-8 if
 * valid, else as ISO-8859-1), unfolded, in a. */
char *mime_decode_header(struct arena *a, const char *value);
/* An RFC 2231 extended value "charset'lang'%XX.." to UTF-8 (NULL on
 * failure). */
char *mime_decode_rfc2231(struct arena *a, const char *value);

/* charset.c: convert len bytes in charset to UTF-8, appended to out. -1
 * when the charset is unknown or the bytes are not valid in it (out is
 * then unchanged). */
int mime_charset_to_utf8(struct buf *out, const char *charset, const void *data, size_t len);
bool mime_utf8_valid(const void *data, size_t len);

/* The encoding a Content-Transfer-Encoding value names (leniently: by its
 * start); IDENTITY for NULL and for any other. */
enum store_cte mime_cte_parse(const char *value);

#endif
