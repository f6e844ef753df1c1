/*
 * parser.c — the incremental IMAP command parser of parser.h.
 *
 * One state machine walks the bytes of a command once, whatever the chunks
 * they arrive in: the state (and a token being collected) lives in the
 * parser between calls, so splitting a command anywhere gives the same
 * result. Finished tokens are copied into the command's arena; memory is
 * bounded by max_command plus one struct per argument (max_args). After an
 * error the parser skips the rest of the command without keeping anything,
 * draining a non-synchronising literal the client has already committed to
 * sending, so the next command starts in step.
 */
#include "imapd/parser.h"

#include "common/common.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum state {
	S_START,	/* between commands */
	S_TAG,
	S_NAME,
	S_ARG,		/* an argument must start here */
	S_AFTER,	/* after an argument: SP, ")" or CRLF */
	S_ATOM,
	S_BRACKET,	/* inside BODY[...] */
	S_BRACKET_QUOTED,
	S_BRACKET_ESC,
	S_QUOTED,
	S_QUOTED_ESC,
	S_TILDE,	/* "~" at the start of an argument: literal8 or atom */
	S_LIT_NUM,	/* after "{" */
	S_LIT_BRACE,	/* after "+": "}" must follow */
	S_LIT_CR,
	S_LIT_LF,
	S_LIT_WAIT,	/* synchronising literal announced, daemon deciding */
	S_LIT_DATA,
	S_LF,		/* CR ended the command, LF must follow */
	S_DONE,		/* command returned; the next feed starts anew */
	S_SKIP,		/* after an error: to the end of the line */
	S_DRAIN,	/* after an error: a non-synchronising literal's bytes */
};

/* An open list and where its next child goes. */
struct frame {
	struct imap_arg *list;
	struct imap_arg **tail;
	struct frame *up;
};

struct imap_parser {
	struct imap_parser_limits limits;
	struct imap_parser_stream stream;
	struct arena *arena;
	enum state state;
	struct buf tok;			/* the token being collected */
	struct imap_command cmd;
	struct imap_arg **tail;		/* where the next top-level argument goes */
	struct frame *frame;		/* innermost open list, NULL at top level */
	unsigned depth;
	unsigned nargs;			/* arguments in the whole tree */
	size_t line_len;
	size_t kept;			/* octets of this command kept in memory */
	bool after_sp;			/* S_ARG entered after SP (")" invalid) */

	/* Literal being announced or read. */
	uint64_t lit_size;
	uint64_t lit_left;
	bool lit_plus;
	bool lit8;
	bool lit_digits;
	struct imap_arg *lit_arg;
	unsigned char *lit_dst;		/* NULL when streamed */

	/* Error and skipping. */
	const char *error;
	int skip_lit;			/* literal header seen while skipping: 0-4 */
	uint64_t skip_num;
	bool skip_plus;
};

static const struct imap_parser_stream no_stream;

static bool is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* What an argument's atom may hold: ASTRING-CHAR, list-wildcards, and "\"
 * for flags (\Seen, \*). */
static bool is_arg_char(unsigned char c)
{
	return is_atom_char(c) || c == ']' || c == '%' || c == '*' || c == '\\';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool is_tag_char(unsigned char c)
{
	return (is_atom_char(c) || c == ']') && c != '+';
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
				    const struct imap_parser_stream *stream)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->stream = stream != NULL ? *stream : no_stream;
	p->arena = arena_new(0);
	imap_parser_set_limits(p, limits);
	p->state = S_START;
	return p;
}

void imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	buf_release(&p->tok);
	arena_free(&p->arena);
	free(p);
	*pp = NULL;
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits)
{
	p->limits = *limits;
	buf_release(&p->tok);
	/* A token never exceeds the command budget (+1: buf keeps a NUL). */
	buf_init(&p->tok, limits->max_command + 1);
}

uint64_t imap_parser_drain_left(const struct imap_parser *p)
{
	return p->state == S_DRAIN ? p->lit_left : 0;
}

size_t imap_parser_footprint(const struct imap_parser *p)
{
	return sizeof(*p) + p->tok.cap + arena_footprint(p->arena);
}

static void begin_command(struct imap_parser *p)
{
	arena_reset(p->arena);
	buf_clear(&p->tok);
	buf_shrink_if_empty(&p->tok, 1024);
	memset(&p->cmd, 0, sizeof(p->cmd));
	p->tail = &p->cmd.args;
	p->frame = NULL;
	p->depth = 0;
	p->nargs = 0;
	p->line_len = 0;
	p->kept = 0;
	p->error = NULL;
	p->lit_arg = NULL;
	p->lit_dst = NULL;
}

/* Errors. The mode says how the rest of the command is skipped. */
enum skip { SKIP_LINE, SKIP_NOTHING, SKIP_LITERAL };

static int fail(struct imap_parser *p, enum skip how, const char *response)
{
	p->error = response;
	buf_clear(&p->tok);
	p->skip_lit = 0;
	switch (how) {
	case SKIP_LINE:
		p->state = S_SKIP;
		break;
	case SKIP_NOTHING:
		p->state = S_START;
		break;
	case SKIP_LITERAL:
		p->lit_left = p->lit_size;
		p->state = S_DRAIN;
		break;
	}
	return IMAP_PARSE_ERROR;
}

static int tok_add(struct imap_parser *p, unsigned char c)
{
	if (p->kept >= p->limits.max_command || buf_append(&p->tok, &c, 1) < 0)
		return -1;
	p->kept++;
	return 0;
}

static struct imap_arg *add_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *arg;

	if (p->nargs >= p->limits.max_args)
		return NULL;
	p->nargs++;
	arg = arena_alloc(p->arena, sizeof(*arg));
	arg->type = type;
	if (p->frame != NULL) {
		*p->frame->tail = arg;
		p->frame->tail = &arg->next;
		p->frame->list->count++;
	} else {
		*p->tail = arg;
		p->tail = &arg->next;
		p->cmd.argc++;
	}
	return arg;
}

/* The collected token becomes an argument of the given type. */
static int end_token(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *arg = add_arg(p, type);

	if (arg == NULL)
		return fail(p, SKIP_LINE, "BAD [LIMIT] Too many arguments");
	if (type == IMAP_ARG_ATOM && p->tok.len == 3 &&
	    strncasecmp((const char *)p->tok.data, "NIL", 3) == 0)
		arg->type = IMAP_ARG_NIL;
	arg->str = arena_strndup(p->arena, (const char *)p->tok.data, p->tok.len);
	arg->len = p->tok.len;
	buf_clear(&p->tok);
	p->state = S_AFTER;
	return 0;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		int l = utf8_decode(s + i, n - i, &cp);

		if (l < 0)
			return false;
		i += (size_t)l;
	}
	return true;
}

/* Only the section-taking FETCH items open a bracket that may hold spaces
 * and lists: BODY[...], BODY.PEEK[...], BINARY[...], BINARY.PEEK[...],
 * BINARY.SIZE[...]. Elsewhere "[" is an ordinary ASTRING-CHAR. */
static bool opens_section(const struct imap_parser *p)
{
	static const char *const items[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (p->tok.len == strlen(items[i]) &&
		    strncasecmp((const char *)p->tok.data, items[i], p->tok.len) == 0)
			return true;
	}
	return false;
}

/* literal = "{" number64 ["+"] "}" CRLF *CHAR8
 * literal8 = "~{" number64 ["+"] "}" CRLF *OCTET
 * Called when the header's CRLF is complete: check it against the limits. */
static int literal_header(struct imap_parser *p)
{
	enum skip how = p->lit_plus ? SKIP_LITERAL : SKIP_NOTHING;
	bool streamed;

	p->line_len = 0;
	if (p->lit_plus && !p->limits.literal_plus && p->lit_size > IMAP_LITERAL_MINUS_MAX)
		return fail(p, how, "BAD [TOOBIG] Non-synchronising literal above 4096 octets");
	if (p->lit_size > p->limits.max_literal)
		return fail(p, how, "NO [TOOBIG] Literal too big");
	streamed = p->stream.want_cb != NULL &&
		p->stream.want_cb(p->stream.ctx, &p->cmd, p->depth, p->lit_size);
	if (!streamed && p->lit_size > p->limits.max_command - p->kept)
		return fail(p, how, "BAD [TOOBIG] Command too long");

	struct imap_arg *arg = add_arg(p, IMAP_ARG_LITERAL);

	if (arg == NULL)
		return fail(p, how, "BAD [LIMIT] Too many arguments");
	arg->len = p->lit_size;
	arg->flags = (p->lit8 ? IMAP_ARG_LITERAL8 : 0) | (p->lit_plus ? IMAP_ARG_NONSYNC : 0) |
		(streamed ? IMAP_ARG_STREAMED : 0);
	if (!streamed) {
		p->kept += p->lit_size;
		p->lit_dst = arena_alloc(p->arena, (size_t)p->lit_size + 1);
		arg->str = (const char *)p->lit_dst;
	} else {
		p->lit_dst = NULL;
	}
	p->lit_arg = arg;
	p->lit_left = p->lit_size;
	if (p->lit_plus) {
		p->state = S_LIT_DATA;
		return 0;
	}
	p->state = S_LIT_WAIT;
	return IMAP_PARSE_LITERAL;
}

/* Copy (or stream) as much of the literal as has arrived. */
static size_t literal_data(struct imap_parser *p, const unsigned char *d, size_t n)
{
	if (n > p->lit_left)
		n = (size_t)p->lit_left;
	if (n == 0)
		return 0;
	if (!(p->lit_arg->flags & IMAP_ARG_HAS_NUL) && memchr(d, 0, n) != NULL)
		p->lit_arg->flags |= IMAP_ARG_HAS_NUL;
	if (p->lit_dst != NULL) {
		memcpy(p->lit_dst + (p->lit_size - p->lit_left), d, n);
	} else {
		p->stream.data_cb(p->stream.ctx, d, n);
	}
	p->lit_left -= n;
	return n;
}

/* Track a literal header at the end of a line being skipped, so that a
 * non-synchronising literal's bytes are drained and not taken as commands. */
static void skip_byte(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		if (p->skip_lit == 4 && p->skip_plus) {
			p->lit_left = p->skip_num;
			p->state = S_DRAIN;
		} else {
			p->state = S_START;
		}
		p->skip_lit = 0;
		return;
	}
	if (c == '{') {
		p->skip_lit = 1;
		p->skip_num = 0;
		p->skip_plus = false;
	} else if (p->skip_lit == 1 && c >= '0' && c <= '9') {
		p->skip_num = p->skip_num > UINT64_MAX / 10 - 1 ? UINT64_MAX :
			p->skip_num * 10 + (uint64_t)(c - '0');
	} else if (p->skip_lit == 1 && c == '+') {
		p->skip_plus = true;
		p->skip_lit = 2;
	} else if ((p->skip_lit == 1 || p->skip_lit == 2) && c == '}') {
		p->skip_lit = 3;
	} else if (p->skip_lit == 3 && c == '\r') {
		p->skip_lit = 4;
	} else {
		p->skip_lit = 0;
	}
}

/* A line ended (CR seen): the command is complete unless a list is open. */
static int end_line(struct imap_parser *p)
{
	if (p->depth > 0)
		return fail(p, SKIP_LINE, "BAD Unbalanced parentheses");
	p->state = S_LF;
	return 0;
}

/*
 * The grammar step() follows (RFC 9051 §9):
 *   command     = tag SP name *(SP argument) CRLF
 *   tag         = 1*<any ASTRING-CHAR except "+">
 *   argument    = atom / quoted / literal / literal8 / "(" [argument
 *                 *(SP argument)] ")"      ; NIL is an atom, typed apart
 *   quoted      = DQUOTE *QUOTED-CHAR DQUOTE
 *   QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials
 *                 / UTF8-2 / UTF8-3 / UTF8-4       ; UTF-8 only when allowed
 * An argument's atom takes ASTRING-CHAR, list-wildcards and "\" (flags).
 */

/* step() result: the byte must be seen again in the new state. */
#define AGAIN 100

/*
 * One byte of command text (not literal data). Returns 0 when consumed,
 * AGAIN, or an event.
 */
static int step(struct imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case S_TAG:
		if (c == ' ' && p->tok.len > 0) {
			p->cmd.tag = arena_strndup(p->arena, (const char *)p->tok.data, p->tok.len);
			buf_clear(&p->tok);
			p->state = S_NAME;
			return 0;
		}
		if (c == '\r' || c == '\n')
			return fail(p, SKIP_LINE, p->tok.len == 0 ? "BAD Empty command line" :
				    "BAD Missing command name");
		if (!is_tag_char(c))
			return fail(p, SKIP_LINE, "BAD Invalid tag");
		return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;

	case S_NAME:
		if ((c == ' ' || c == '\r') && p->tok.len > 0) {
			p->cmd.name = arena_strndup(p->arena, (const char *)p->tok.data, p->tok.len);
			buf_clear(&p->tok);
			p->after_sp = true;
			p->state = c == ' ' ? S_ARG : S_LF;
			return 0;
		}
		if (c == '\n')
			return fail(p, SKIP_LINE, "BAD LF without CR");
		if (!is_atom_char(c))
			return fail(p, SKIP_LINE, "BAD Invalid command name");
		return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;

	case S_ARG:
		if (c == '(') {
			if (p->depth >= p->limits.max_depth)
				return fail(p, SKIP_LINE, "BAD [LIMIT] Lists nested too deeply");
			struct imap_arg *list = add_arg(p, IMAP_ARG_LIST);

			if (list == NULL)
				return fail(p, SKIP_LINE, "BAD [LIMIT] Too many arguments");
			struct frame *f = arena_alloc(p->arena, sizeof(*f));

			f->list = list;
			f->tail = &list->child;
			f->up = p->frame;
			p->frame = f;
			p->depth++;
			p->after_sp = false;
			return 0;
		}
		if (c == ')' && !p->after_sp && p->depth > 0) {
			p->state = S_AFTER;	/* "()" */
			return AGAIN;
		}
		if (c == '"') {
			p->state = S_QUOTED;
			return 0;
		}
		if (c == '{') {
			p->lit8 = false;
			goto literal;
		}
		if (c == '~' && p->limits.literal8) {
			p->state = S_TILDE;
			return 0;
		}
		if (is_arg_char(c)) {
			p->state = S_ATOM;
			return AGAIN;
		}
		return fail(p, SKIP_LINE, c == '\r' || c == '\n' ? "BAD Missing argument" :
			    "BAD Invalid characters in argument");

	case S_TILDE:
		if (c == '{') {
			p->lit8 = true;
			goto literal;
		}
		if (tok_add(p, '~') < 0)
			return fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long");
		p->state = S_ATOM;
		return AGAIN;

	case S_AFTER:
		if (c == ' ') {
			p->after_sp = true;
			p->state = S_ARG;
			return 0;
		}
		if (c == ')' && p->depth > 0) {
			p->frame = p->frame->up;
			p->depth--;
			return 0;
		}
		if (c == '\r')
			return end_line(p);
		if (c == '\n')
			return fail(p, SKIP_LINE, "BAD LF without CR");
		return fail(p, SKIP_LINE, c == ')' ? "BAD Unbalanced parentheses" :
			    "BAD Missing space between arguments");

	case S_ATOM:
		if (c == '[' && opens_section(p)) {
			if (tok_add(p, c) < 0)
				return fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long");
			p->state = S_BRACKET;
			return 0;
		}
		if (is_arg_char(c))
			return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;
		if (c == ' ' || c == ')' || c == '\r') {
			int r = end_token(p, IMAP_ARG_ATOM);

			return r < 0 ? r : AGAIN;
		}
		return fail(p, SKIP_LINE, "BAD Invalid characters in atom");

	case S_BRACKET:
	case S_BRACKET_QUOTED:
	case S_BRACKET_ESC:
		/* The section is kept verbatim; only its end is found here. */
		if (c < 0x20 || c >= 0x7f || (p->state == S_BRACKET && (c == '[' || c == '{')))
			return fail(p, SKIP_LINE, "BAD Invalid characters in section");
		if (p->state == S_BRACKET_ESC)
			p->state = S_BRACKET_QUOTED;
		else if (p->state == S_BRACKET_QUOTED && c == '\\')
			p->state = S_BRACKET_ESC;
		else if (c == '"')
			p->state = p->state == S_BRACKET ? S_BRACKET_QUOTED : S_BRACKET;
		else if (p->state == S_BRACKET && c == ']')
			p->state = S_ATOM;
		return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;

	case S_QUOTED:
		/* quoted = DQUOTE *QUOTED-CHAR DQUOTE */
		if (c == '"') {
			if (!valid_utf8(p->tok.data, p->tok.len))
				return fail(p, SKIP_LINE, "BAD Invalid UTF-8 in quoted string");
			return end_token(p, IMAP_ARG_QUOTED);
		}
		if (c == '\\') {
			p->state = S_QUOTED_ESC;
			return 0;
		}
		if (c == '\r' || c == '\n' || c == 0)
			return fail(p, SKIP_LINE, "BAD Unterminated quoted string");
		if (c >= 0x80 && !p->limits.utf8)
			return fail(p, SKIP_LINE, "BAD 8-bit characters in quoted string need UTF8=ACCEPT");
		return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;

	case S_QUOTED_ESC:
		if (c != '"' && c != '\\')
			return fail(p, SKIP_LINE, "BAD Invalid escape in quoted string");
		p->state = S_QUOTED;
		return tok_add(p, c) < 0 ? fail(p, SKIP_LINE, "BAD [TOOBIG] Command too long") : 0;

	case S_LIT_NUM:
		if (c >= '0' && c <= '9') {
			/* number64: at most 2^63-1 */
			if (p->lit_size > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(c - '0')) / 10)
				return fail(p, SKIP_LINE, "BAD Invalid literal size");
			p->lit_size = p->lit_size * 10 + (uint64_t)(c - '0');
			p->lit_digits = true;
			return 0;
		}
		if (p->lit_digits && c == '+') {
			p->lit_plus = true;
			p->state = S_LIT_BRACE;
			return 0;
		}
		if (p->lit_digits && c == '}') {
			p->state = S_LIT_CR;
			return 0;
		}
		return fail(p, SKIP_LINE, "BAD Invalid literal header");

	case S_LIT_BRACE:
		if (c != '}')
			return fail(p, SKIP_LINE, "BAD Invalid literal header");
		p->state = S_LIT_CR;
		return 0;

	case S_LIT_CR:
		if (c != '\r')
			return fail(p, SKIP_LINE, "BAD Literal header must end the line");
		p->state = S_LIT_LF;
		return 0;

	case S_LIT_LF:
		if (c != '\n')
			return fail(p, SKIP_LINE, "BAD CR without LF");
		return literal_header(p);

	case S_LF:
		if (c != '\n')
			return fail(p, SKIP_LINE, "BAD CR without LF");
		p->state = S_DONE;
		return IMAP_PARSE_COMMAND;

	default:
		abort();
	}

literal:
	p->lit_size = 0;
	p->lit_plus = false;
	p->lit_digits = false;
	p->state = S_LIT_NUM;
	return 0;
}

int imap_parser_feed(struct imap_parser *p, const void *data, size_t len, size_t *used_r)
{
	const unsigned char *d = data;
	size_t i = 0;
	int r = IMAP_PARSE_MORE;

	for (;;) {
		switch (p->state) {
		case S_DONE:
			p->state = S_START;
			continue;
		case S_LIT_WAIT:
			*used_r = i;
			return IMAP_PARSE_LITERAL;
		case S_LIT_DATA:
			i += literal_data(p, d + i, len - i);
			if (p->lit_left == 0) {
				p->lit_arg = NULL;
				p->state = S_AFTER;
			}
			break;
		case S_DRAIN: {
			size_t n = len - i < p->lit_left ? len - i : (size_t)p->lit_left;

			i += n;
			p->lit_left -= n;
			if (p->lit_left == 0)
				p->state = S_SKIP;
			break;
		}
		default:
			break;
		}
		if (p->state == S_LIT_DATA || p->state == S_DRAIN || i == len)
			break;

		unsigned char c = d[i];

		if (p->state == S_SKIP) {
			skip_byte(p, c);
			i++;
			continue;
		}
		if (p->state == S_START) {
			begin_command(p);
			p->state = S_TAG;
		}
		if (++p->line_len > p->limits.max_line) {
			r = fail(p, SKIP_LINE, "BAD [TOOBIG] Command line too long");
			if (c == '\n')
				p->state = S_START;
			i++;
			break;
		}
		do {
			r = step(p, c);
		} while (r == AGAIN);
		i++;
		if (r == IMAP_PARSE_ERROR && p->state == S_SKIP && c == '\n')
			p->state = S_START;	/* the bad byte ended the line */
		if (r != 0)
			break;
	}
	*used_r = i;
	return r;
}

const struct imap_command *imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

uint64_t imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

void imap_parser_accept_literal(struct imap_parser *p)
{
	if (p->state == S_LIT_WAIT)
		p->state = S_LIT_DATA;
}

void imap_parser_refuse_literal(struct imap_parser *p)
{
	if (p->state == S_LIT_WAIT)
		p->state = S_START;
}

const char *imap_parser_error(const struct imap_parser *p, const char **tag_r)
{
	*tag_r = p->cmd.tag != NULL ? p->cmd.tag : "*";
	return p->error;
}

bool imap_parser_idle(const struct imap_parser *p)
{
	return p->state == S_START || p->state == S_DONE;
}

const char *imap_arg_string(const struct imap_arg *arg)
{
	if (arg->type == IMAP_ARG_LIST || (arg->flags & IMAP_ARG_STREAMED))
		return NULL;
	return arg->str;
}

/* nz-number = digit-nz *DIGIT, at most 4294967295; or "*". */
static int seq_number(const char *s, size_t len, size_t *i, uint32_t *n_r)
{
	uint64_t n = 0;
	size_t start = *i;

	if (*i < len && s[*i] == '*') {
		(*i)++;
		*n_r = IMAP_SEQ_STAR;
		return 0;
	}
	if (*i >= len || s[*i] < '1' || s[*i] > '9')
		return -1;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		n = n * 10 + (uint64_t)(s[*i] - '0');
		if (n > UINT32_MAX || *i - start >= 10)
			return -1;
		(*i)++;
	}
	*n_r = (uint32_t)n;
	return 0;
}

int imap_seqset_parse(const char *s, size_t len, unsigned max_ranges, bool allow_last,
		      struct arena *arena, struct imap_seqset **set_r, const char **error_r)
{
	struct imap_seqset *set;
	size_t n = 1, i = 0;

	if (allow_last && len == 1 && s[0] == '$') {
		set = arena_alloc(arena, sizeof(*set));
		set->last = true;
		*set_r = set;
		return 0;
	}
	for (size_t k = 0; k < len; k++) {
		if (s[k] == ',')
			n++;
	}
	if (n > max_ranges) {
		*error_r = "BAD [LIMIT] Too many ranges in sequence set";
		return -1;
	}
	set = arena_alloc(arena, sizeof(*set) + n * sizeof(set->ranges[0]));
	for (;;) {
		struct imap_seq_range *r = &set->ranges[set->count];

		if (seq_number(s, len, &i, &r->lo) < 0)
			goto bad;
		r->hi = r->lo;
		if (i < len && s[i] == ':') {
			i++;
			if (seq_number(s, len, &i, &r->hi) < 0)
				goto bad;
		}
		if (r->lo != IMAP_SEQ_STAR && r->hi != IMAP_SEQ_STAR && r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
		set->count++;
		if (i == len)
			break;
		if (s[i] != ',')
			goto bad;
		i++;
	}
	*set_r = set;
	return 0;
bad:
	*error_r = "BAD Invalid sequence set";
	return -1;
}
