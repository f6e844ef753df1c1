/*
 * parser.h — tern-imapd's incremental command parser (private to imapd/).
 *
 * The daemon feeds whatever bytes have arrived; the parser consumes what it
 * can and stops at an event: a complete command (tag, name and a tree of
 * arguments in the parser's arena), a synchronising literal waiting for the
 * daemon's "+" (so the size is checked before the client sends it), or an
 * error carrying the response to give. It never blocks, never reads on its
 * own and never needs a whole command in one piece: a command split at any
 * byte gives the same result. Literal bytes can be streamed to a callback
 * (APPEND) instead of being kept. Pure functions over bytes: no sockets.
 *
 * Grammar: RFC 9051 §4 and §9 (tag, atom, quoted, literal {n} {n+}, literal8
 * ~{n}, lists, NIL); LITERAL+/LITERAL- from RFC 7888. A bracketed section in
 * an atom (FETCH's BODY[HEADER.FIELDS (From To)]<0.10>) is kept whole in the
 * atom, spaces and parentheses included, for the FETCH code to parse.
 */
#ifndef TERN_IMAPD_PARSER_H
#define TERN_IMAPD_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_NIL,		/* the atom NIL (any case); str keeps its text */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

#define IMAP_ARG_LITERAL8 0x01	/* ~{n}: may hold NUL (BINARY) */
#define IMAP_ARG_NONSYNC  0x02	/* {n+} */
#define IMAP_ARG_STREAMED 0x04	/* bytes went to the stream callback; str NULL */
#define IMAP_ARG_HAS_NUL  0x08	/* a literal holding NUL (refused unless literal8) */

struct imap_arg {
	enum imap_arg_type type;
	unsigned flags;
	/* Atom, NIL, quoted, literal: the bytes (unescaped), NUL-terminated,
	 * in the parser's arena; len is the literal's size even if streamed. */
	const char *str;
	uint64_t len;
	/* List: its children. */
	struct imap_arg *child;
	unsigned count;
	struct imap_arg *next;
};

struct imap_command {
	const char *tag;
	const char *name;	/* as sent; compare without case */
	struct imap_arg *args;	/* first argument after the name, or NULL */
	unsigned argc;		/* top-level arguments */
};

struct imap_parser_limits {
	size_t max_line;	/* octets of one line, literal data excluded */
	uint64_t max_literal;	/* octets of one literal (APPENDLIMIT) */
	unsigned max_depth;	/* list nesting; 0 allows no list */
	unsigned max_args;	/* arguments in the whole tree */
	size_t max_command;	/* octets kept in memory for one command */
	bool literal_plus;	/* LITERAL+: any {n+}; else LITERAL-: {n+} <= 4096 */
	bool utf8;		/* 8-bit (valid UTF-8) allowed in quoted strings */
	bool literal8;		/* ~{n} allowed (BINARY) */
};

/* RFC 7888 LITERAL-: the largest non-synchronising literal. */
#define IMAP_LITERAL_MINUS_MAX 4096

/*
 * Streaming: for each literal, want_cb is asked (with the command so far:
 * cmd->argc is the position the literal will take, depth 0 at top level)
 * whether its bytes should go to data_cb in chunks instead of memory. The
 * limit max_literal applies either way; max_command does not count a
 * streamed literal. data_cb gets the bytes in order, zero or more calls.
 */
struct imap_parser_stream {
	bool (*want_cb)(void *ctx, const struct imap_command *cmd, unsigned depth,
			uint64_t size);
	void (*data_cb)(void *ctx, const unsigned char *data, size_t len);
	void *ctx;
};

enum imap_parse_result {
	IMAP_PARSE_ERROR = -1,	/* imap_parser_error() says what to answer */
	IMAP_PARSE_MORE = 0,	/* all input consumed, command not complete */
	IMAP_PARSE_COMMAND = 1,	/* imap_parser_command() is complete */
	IMAP_PARSE_LITERAL = 2,	/* synchronising literal: accept or refuse it */
};

struct imap_parser;

/* A parser with its own arena; limits are copied. Never fails (aborts on
 * malloc failure). stream may be NULL. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
				    const struct imap_parser_stream *stream);
void imap_parser_free(struct imap_parser **p);
/* Change the limits between commands (e.g. after login). */
void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits);

/*
 * Consume bytes from data; *used_r says how many (the caller keeps the rest
 * for the next call). Stops at the first event:
 * - IMAP_PARSE_MORE: everything used, call again when more arrives;
 * - IMAP_PARSE_COMMAND: the command is in imap_parser_command(), valid
 *   until the next feed; the next feed starts a new command;
 * - IMAP_PARSE_LITERAL: a synchronising literal of imap_parser_literal_size()
 *   octets (already checked against max_literal and max_command) waits: call
 *   imap_parser_accept_literal() and send "+ ..." or refuse it; feeding
 *   without deciding returns IMAP_PARSE_LITERAL again;
 * - IMAP_PARSE_ERROR: answer with imap_parser_error(); the parser then skips
 *   the rest of the command (a literal already announced non-synchronising
 *   is drained, the line skipped to its end) and starts anew, silently.
 * Never blocks.
 */
int imap_parser_feed(struct imap_parser *p, const void *data, size_t len, size_t *used_r);
const struct imap_command *imap_parser_command(const struct imap_parser *p);
uint64_t imap_parser_literal_size(const struct imap_parser *p);
void imap_parser_accept_literal(struct imap_parser *p);
/* The daemon answered the tagged NO itself: the client sends no literal,
 * so the parser starts the next command with the next byte. */
void imap_parser_refuse_literal(struct imap_parser *p);

/*
 * After IMAP_PARSE_ERROR: the response without its tag, e.g. "BAD Missing
 * CRLF", "NO [TOOBIG] Literal too big", "BAD [LIMIT] Too many arguments".
 * *tag_r is the command's tag or "*" when none was read yet.
 */
const char *imap_parser_error(const struct imap_parser *p, const char **tag_r);
/* After IMAP_PARSE_ERROR: octets of a non-synchronising literal the
 * parser will read and drop before the next command (0: none). */
uint64_t imap_parser_drain_left(const struct imap_parser *p);
/* True while the parser is between commands (no partial command buffered). */
bool imap_parser_idle(const struct imap_parser *p);
/* Bytes the parser holds from malloc (struct, token, arena), for the
 * daemon's per-connection accounting. */
size_t imap_parser_footprint(const struct imap_parser *p);

/* Atom, NIL, quoted or stored literal as a string (astring/nstring): the
 * bytes or NULL for other types and streamed literals. */
const char *imap_arg_string(const struct imap_arg *arg);

/*
 * sequence-set = (seq-number / seq-range) ["," sequence-set] / "$"
 * Numbers are nz-number (1..4294967295); "*" is stored as IMAP_SEQ_STAR.
 * Ranges whose ends are both numbers come ordered low:high. "$" (SEARCHRES)
 * only when allow_last; then last is true and count 0. At most max_ranges
 * ranges. 0 on success with *set_r in arena; below 0 with *error_r, a
 * response text such as "BAD Invalid sequence set" or "BAD [LIMIT] ...".
 */
#define IMAP_SEQ_STAR 0u

struct imap_seq_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	bool last;
	unsigned count;
	struct imap_seq_range ranges[];
};

int imap_seqset_parse(const char *s, size_t len, unsigned max_ranges, bool allow_last,
		      struct arena *arena, struct imap_seqset **set_r, const char **error_r);

#endif
