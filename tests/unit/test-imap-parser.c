/*
 * test-imap-parser.c — tern-imapd's incremental command parser
 * (imapd/parser.c): every construct of RFC 9051's command syntax, the same
 * result whatever the chunks (whole, split at every byte, one byte at a
 * time, random sizes), each limit breached with its response code,
 * malformed input and resynchronisation after it, continuation requests,
 * literal streaming, and the sequence-set parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/common.h"
#include "imapd/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct imap_parser_limits default_limits = {
	.max_line = 8192,
	.max_literal = 1024 * 1024,
	.max_depth = 8,
	.max_args = 256,
	.max_command = 64 * 1024,
	.literal_plus = true,
	.utf8 = false,
	.literal8 = true,
};

static void render_arg(struct buf *out, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		buf_printf(out, "A:%s", a->str);
		break;
	case IMAP_ARG_NIL:
		buf_printf(out, "NIL:%s", a->str);
		break;
	case IMAP_ARG_QUOTED:
		buf_printf(out, "Q:<%s>", a->str);
		break;
	case IMAP_ARG_LITERAL:
		buf_printf(out, "L%s%s%s{%llu}", a->flags & IMAP_ARG_LITERAL8 ? "8" : "",
			   a->flags & IMAP_ARG_NONSYNC ? "+" : "",
			   a->flags & IMAP_ARG_HAS_NUL ? "0" : "", (unsigned long long)a->len);
		if (a->flags & IMAP_ARG_STREAMED)
			buf_append_str(out, "S");
		else {
			for (size_t i = 0; i < a->len; i++) {
				if (a->str[i] == '\0')
					buf_append_str(out, "\\0");
				else
					buf_append(out, &a->str[i], 1);
			}
		}
		break;
	case IMAP_ARG_LIST:
		buf_append_str(out, "(");
		for (const struct imap_arg *c = a->child; c != NULL; c = c->next) {
			render_arg(out, c);
			if (c->next != NULL)
				buf_append_str(out, " ");
		}
		buf_append_str(out, ")");
		break;
	}
}

/* Streaming of APPEND's top-level literals into a buffer. */
struct sink {
	struct buf data;
	unsigned calls;
};

static bool want_append(void *ctx, const struct imap_command *cmd, unsigned depth, uint64_t size)
{
	return depth == 0 && cmd->argc >= 1 && strcasecmp(cmd->name, "APPEND") == 0;
}

static void sink_data(void *ctx, const unsigned char *d, size_t n)
{
	struct sink *s = ctx;

	assert_true(n > 0);
	buf_append(&s->data, d, n);
	s->calls++;
}

enum chunking { WHOLE, BYTES, RANDOM };

struct run_opts {
	const struct imap_parser_limits *limits;
	bool stream;
	bool refuse;		/* refuse every synchronising literal */
	size_t split;		/* WHOLE: split once here if nonzero */
};

/*
 * Feed input in chunks and render every event, one per line:
 * "LIT n", "ERR tag response", "CMD tag name args...", and the streamed
 * bytes at the end. The caller frees the result.
 */
static char *run_opts(const char *in, size_t len, enum chunking how, const struct run_opts *o)
{
	struct sink sink = { .calls = 0 };
	struct imap_parser_stream st = { want_append, sink_data, &sink };
	struct imap_parser *p;
	struct buf out;
	size_t pos = 0;

	buf_init(&sink.data, 1 << 24);
	buf_init(&out, 1 << 24);
	p = imap_parser_new(o->limits != NULL ? o->limits : &default_limits,
			    o->stream ? &st : NULL);
	while (pos < len) {
		size_t n = len - pos;

		if (how == BYTES)
			n = 1;
		else if (how == RANDOM)
			n = 1 + (size_t)rand() % 17;
		else if (o->split > pos)
			n = o->split - pos;
		if (n > len - pos)
			n = len - pos;

		size_t off = 0;

		for (;;) {
			size_t used = 0;
			int r = imap_parser_feed(p, in + pos + off, n - off, &used);

			assert_true(used <= n - off);
			off += used;
			if (r == IMAP_PARSE_MORE) {
				assert_int_equal(off, n);
				break;
			}
			if (r == IMAP_PARSE_LITERAL) {
				buf_printf(&out, "LIT %llu\n",
					   (unsigned long long)imap_parser_literal_size(p));
				if (o->refuse)
					imap_parser_refuse_literal(p);
				else
					imap_parser_accept_literal(p);
			} else if (r == IMAP_PARSE_ERROR) {
				const char *tag, *resp = imap_parser_error(p, &tag);

				buf_printf(&out, "ERR %s %s\n", tag, resp);
			} else {
				const struct imap_command *c = imap_parser_command(p);

				assert_int_equal(r, IMAP_PARSE_COMMAND);
				buf_printf(&out, "CMD %s %s", c->tag, c->name);
				for (const struct imap_arg *a = c->args; a != NULL; a = a->next) {
					buf_append_str(&out, " ");
					render_arg(&out, a);
				}
				buf_append_str(&out, "\n");
			}
		}
		pos += n;
	}
	if (sink.data.len > 0)
		buf_printf(&out, "STREAM %.*s\n", (int)sink.data.len, (const char *)sink.data.data);
	if (!imap_parser_idle(p))
		buf_append_str(&out, "PARTIAL\n");
	imap_parser_free(&p);
	assert_null(p);
	buf_release(&sink.data);
	char *s = strdup(out.len > 0 ? (const char *)out.data : "");

	buf_release(&out);
	return s;
}

/* Whole, then split at every byte, one byte at a time and random chunks:
 * all must agree; returns the rendering. */
static char *run_all(const char *in, size_t len, const struct run_opts *o)
{
	struct run_opts oo = *o;
	char *whole = run_opts(in, len, WHOLE, o);

	for (size_t k = 1; k < len; k++) {
		oo.split = k;
		char *s = run_opts(in, len, WHOLE, &oo);

		if (strcmp(s, whole) != 0)
			fail_msg("split at %zu:\n%s\nvs whole:\n%s", k, s, whole);
		free(s);
	}
	char *b = run_opts(in, len, BYTES, o);

	assert_string_equal(b, whole);
	free(b);
	for (int i = 0; i < 5; i++) {
		char *r = run_opts(in, len, RANDOM, o);

		assert_string_equal(r, whole);
		free(r);
	}
	return whole;
}

static void expect_o(const char *in, const struct run_opts *o, const char *want)
{
	char *got = run_all(in, strlen(in), o);

	assert_string_equal(got, want);
	free(got);
}

static void expect(const char *in, const char *want)
{
	struct run_opts o = { 0 };

	expect_o(in, &o, want);
}

static void test_simple(void **state)
{
	expect("a1 NOOP\r\n", "CMD a1 NOOP\n");
	expect("a1 NOOP\r\nA2 capability\r\n", "CMD a1 NOOP\nCMD A2 capability\n");
	expect("x] LOGOUT\r\n", "CMD x] LOGOUT\n");
	expect("a SELECT INBOX\r\n", "CMD a SELECT A:INBOX\n");
	expect("a SELECT [Gmail]/Sent\r\n", "CMD a SELECT A:[Gmail]/Sent\n");
	expect("a UID FETCH 1:*,5 FLAGS\r\n", "CMD a UID A:FETCH A:1:*,5 A:FLAGS\n");
	expect("a LIST \"\" %\r\n", "CMD a LIST Q:<> A:%\n");
	expect("a LIST \"\" *\r\n", "CMD a LIST Q:<> A:*\n");
	expect("a STATUS nil (MESSAGES UIDNEXT)\r\n",
	       "CMD a STATUS NIL:nil (A:MESSAGES A:UIDNEXT)\n");
}

static void test_quoted(void **state)
{
	expect("a LOGIN \"bob\" \"p a\\\"s\\\\s\"\r\n",
	       "CMD a LOGIN Q:<bob> Q:<p a\"s\\s>\n");
	expect("a LOGIN \"\" \"\"\r\n", "CMD a LOGIN Q:<> Q:<>\n");
	/* 8-bit only with UTF-8, and then only valid UTF-8. */
	expect("a SELECT \"Entw\xc3\xbcrfe\"\r\n",
	       "ERR a BAD 8-bit characters in quoted string need UTF8=ACCEPT\n");

	struct imap_parser_limits l = default_limits;
	struct run_opts o = { .limits = &l };

	l.utf8 = true;
	expect_o("a SELECT \"Entw\xc3\xbcrfe\"\r\n", &o, "CMD a SELECT Q:<Entw\xc3\xbcrfe>\n");
	expect_o("a SELECT \"bad\xc3\"\r\nb NOOP\r\n", &o,
		 "ERR a BAD Invalid UTF-8 in quoted string\nCMD b NOOP\n");
	expect("a LOGIN \"x\\y\" z\r\nb NOOP\r\n",
	       "ERR a BAD Invalid escape in quoted string\nCMD b NOOP\n");
	expect("a LOGIN \"open\r\nb NOOP\r\n",
	       "ERR a BAD Unterminated quoted string\nCMD b NOOP\n");
}

static void test_lists(void **state)
{
	expect("a STORE 1 +FLAGS (\\Seen \\Flagged $Junk)\r\n",
	       "CMD a STORE A:1 A:+FLAGS (A:\\Seen A:\\Flagged A:$Junk)\n");
	expect("a X () ((a) (b (c))) (NIL \"q\")\r\n",
	       "CMD a X () ((A:a) (A:b (A:c))) (NIL:NIL Q:<q>)\n");
	expect("a APPEND box (\\Seen) \"1-Jan-2020 00:00:00 +0000\" {0}\r\n\r\n",
	       "LIT 0\nCMD a APPEND A:box (A:\\Seen) Q:<1-Jan-2020 00:00:00 +0000> L{0}\n");
	/* FETCH sections keep their spaces and lists inside the atom. */
	expect("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To \"X)\")]<0.10> BODY[])\r\n",
	       "CMD a FETCH A:1 (A:BODY.PEEK[HEADER.FIELDS (From To \"X)\")]<0.10> A:BODY[])\n");
	expect("a X (a\r\nb NOOP\r\n", "ERR a BAD Unbalanced parentheses\nCMD b NOOP\n");
	expect("a X a)\r\nb NOOP\r\n", "ERR a BAD Unbalanced parentheses\nCMD b NOOP\n");
	expect("a X (a )\r\nb NOOP\r\n",
	       "ERR a BAD Invalid characters in argument\nCMD b NOOP\n");
	expect("a X (a)(b)\r\nb NOOP\r\n",
	       "ERR a BAD Missing space between arguments\nCMD b NOOP\n");
}

static void test_literals(void **state)
{
	/* Synchronising: a continuation request for each. */
	expect("a LOGIN {3}\r\nbob {4}\r\np\"(s\r\n",
	       "LIT 3\nLIT 4\nCMD a LOGIN L{3}bob L{4}p\"(s\n");
	/* Non-synchronising: none. */
	expect("a LOGIN {3+}\r\nbob {4+}\r\np\r\ns\r\n",
	       "CMD a LOGIN L+{3}bob L+{4}p\r\ns\n");
	/* literal8, holding a NUL. */
	char in[] = "a APPEND b ~{3+}\r\nx\0y\r\nb APPEND c {1+}\r\n\0\r\n";
	char *got = run_all(in, sizeof(in) - 1, &(struct run_opts){ 0 });

	assert_string_equal(got, "CMD a APPEND A:b L8+0{3}x\\0y\nCMD b APPEND A:c L+0{1}\\0\n");
	free(got);

	struct imap_parser_limits l = default_limits;
	struct run_opts o = { .limits = &l };

	l.literal8 = false;
	expect_o("a APPEND b ~{3}\r\nb NOOP\r\n", &o,
		 "ERR a BAD Invalid characters in atom\nCMD b NOOP\n");
	expect("a LOGIN ~x y\r\n", "CMD a LOGIN A:~x A:y\n");
}

static void test_bad_literal_headers(void **state)
{
	expect("a X {}\r\nb NOOP\r\n", "ERR a BAD Invalid literal header\nCMD b NOOP\n");
	expect("a X {+}\r\nb NOOP\r\n", "ERR a BAD Invalid literal header\nCMD b NOOP\n");
	expect("a X {-1}\r\nb NOOP\r\n", "ERR a BAD Invalid literal header\nCMD b NOOP\n");
	expect("a X {5\r\nb NOOP\r\n", "ERR a BAD Invalid literal header\nCMD b NOOP\n");
	expect("a X {5}x\r\nb NOOP\r\n",
	       "ERR a BAD Literal header must end the line\nCMD b NOOP\n");
	expect("a X {5}\rx\nb NOOP\r\n", "ERR a BAD CR without LF\nCMD b NOOP\n");
	expect("a X {99999999999999999999}\r\nb NOOP\r\n",
	       "ERR a BAD Invalid literal size\nCMD b NOOP\n");
	expect("a X x{3}\r\nb NOOP\r\n", "ERR a BAD Invalid characters in atom\nCMD b NOOP\n");
	/* An error earlier on a line ending in {n+}: its bytes are drained. */
	expect("a X \x01 {5+}\r\nb NOP\r\nc NOOP\r\n",
	       "ERR a BAD Invalid characters in argument\nCMD c NOOP\n");
}

static void test_malformed(void **state)
{
	expect("a NOOP\rb NOOP\r\nc NOOP\r\n", "ERR a BAD CR without LF\nCMD c NOOP\n");
	expect("a NOOP\nb NOOP\r\n", "ERR a BAD LF without CR\nCMD b NOOP\n");
	expect("\r\na NOOP\r\n", "ERR * BAD Empty command line\nCMD a NOOP\n");
	expect("a\r\nb NOOP\r\n", "ERR * BAD Missing command name\nCMD b NOOP\n");
	expect("a+b NOOP\r\nc NOOP\r\n", "ERR * BAD Invalid tag\nCMD c NOOP\n");
	expect("a  NOOP\r\nb NOOP\r\n", "ERR a BAD Invalid command name\nCMD b NOOP\n");
	expect("a NOOP \r\nb NOOP\r\n", "ERR a BAD Missing argument\nCMD b NOOP\n");
	expect("a X y\nb NOOP\r\n", "ERR a BAD Invalid characters in atom\nCMD b NOOP\n");
	expect("a X \"y\"\nb NOOP\r\n", "ERR a BAD LF without CR\nCMD b NOOP\n");

	char nul1[] = "a X y\0z\r\nb NOOP\r\n";
	char *got = run_all(nul1, sizeof(nul1) - 1, &(struct run_opts){ 0 });

	assert_string_equal(got, "ERR a BAD Invalid characters in atom\nCMD b NOOP\n");
	free(got);

	char nul2[] = "a X \"y\0z\"\r\nb NOOP\r\n";

	got = run_all(nul2, sizeof(nul2) - 1, &(struct run_opts){ 0 });
	assert_string_equal(got, "ERR a BAD Unterminated quoted string\nCMD b NOOP\n");
	free(got);
	expect("a X (\x80)\r\nb NOOP\r\n",
	       "ERR a BAD Invalid characters in argument\nCMD b NOOP\n");
}

static void test_limits(void **state)
{
	struct imap_parser_limits l = default_limits;
	struct run_opts o = { .limits = &l };

	l.max_line = 16;
	expect_o("a LOGIN 123456789\r\nb NOOP\r\n", &o,
		 "ERR a BAD [TOOBIG] Command line too long\nCMD b NOOP\n");
	/* Literal data does not count against the line. */
	expect_o("a X {20}\r\n01234567890123456789 y\r\n", &o,
		 "LIT 20\nCMD a X L{20}01234567890123456789 A:y\n");

	l = default_limits;
	l.max_literal = 10;
	/* Synchronising: refused before the client sends it. */
	expect_o("a APPEND x {11}\r\nb NOOP\r\n", &o, "ERR a NO [TOOBIG] Literal too big\nCMD b NOOP\n");
	/* Non-synchronising: refused, and drained. */
	expect_o("a APPEND x {11+}\r\nb NOOP\r\nc\r\n\r\nd NOOP\r\n", &o,
		 "ERR a NO [TOOBIG] Literal too big\nCMD d NOOP\n");

	/* LITERAL-: {n+} above 4096. */
	l = default_limits;
	l.literal_plus = false;
	expect_o("a X {4096+}\r\n", &o, "PARTIAL\n");
	expect_o("a X {4097+}\r\n", &o,
		 "ERR a BAD [TOOBIG] Non-synchronising literal above 4096 octets\nPARTIAL\n");
	expect_o("a X {4097}\r\n", &o, "LIT 4097\nPARTIAL\n");

	l = default_limits;
	l.max_depth = 2;
	expect_o("a X ((a))\r\n", &o, "CMD a X ((A:a))\n");
	expect_o("a X (((a)))\r\nb NOOP\r\n", &o,
		 "ERR a BAD [LIMIT] Lists nested too deeply\nCMD b NOOP\n");

	l = default_limits;
	l.max_args = 3;
	expect_o("a X b (c)\r\n", &o, "CMD a X A:b (A:c)\n");
	expect_o("a X b (c) d\r\nb NOOP\r\n", &o, "ERR a BAD [LIMIT] Too many arguments\nCMD b NOOP\n");
	expect_o("a X b c d {1}\r\nb NOOP\r\n", &o, "ERR a BAD [LIMIT] Too many arguments\nCMD b NOOP\n");

	l = default_limits;
	l.max_command = 20;
	expect_o("a X {10}\r\n0123456789 {9}\r\nb NOOP\r\n", &o,
		 "LIT 10\nERR a BAD [TOOBIG] Command too long\nCMD b NOOP\n");
	expect_o("a X 0123456789 0123456789\r\nb NOOP\r\n", &o,
		 "ERR a BAD [TOOBIG] Command too long\nCMD b NOOP\n");
}

static void test_refuse_literal(void **state)
{
	struct run_opts o = { .refuse = true };

	expect_o("a APPEND x {5}\r\nb NOOP\r\n", &o, "LIT 5\nCMD b NOOP\n");
}

static void test_streaming(void **state)
{
	struct run_opts o = { .stream = true };

	expect_o("a APPEND box (\\Seen) {12}\r\nhello\r\nworld\r\n", &o,
		 "LIT 12\nCMD a APPEND A:box (A:\\Seen) L{12}S\nSTREAM hello\r\nworld\n");
	/* MULTIAPPEND: both literals stream; other commands' are stored. */
	expect_o("a APPEND box {2+}\r\nab ~{2+}\r\ncd\r\nb LOGIN {1+}\r\nx y\r\n", &o,
		 "CMD a APPEND A:box L+{2}S L8+{2}S\nCMD b LOGIN L+{1}x A:y\nSTREAM abcd\n");

	/* A streamed literal may exceed max_command, not max_literal. */
	struct imap_parser_limits l = default_limits;

	l.max_command = 16;
	l.max_literal = 100;
	o.limits = &l;
	expect_o("a APPEND b {40+}\r\n0123456789012345678901234567890123456789\r\n", &o,
		 "CMD a APPEND A:b L+{40}S\nSTREAM 0123456789012345678901234567890123456789\n");
}

/* Directly: the parser waits at a synchronising literal until the daemon
 * decides, without taking more bytes; streamed bytes arrive as they come. */
static void test_continuation(void **state)
{
	struct sink sink = { .calls = 0 };
	struct imap_parser_stream st = { want_append, sink_data, &sink };
	struct imap_parser *p = imap_parser_new(&default_limits, &st);
	const char *in = "t1 APPEND box {5}\r\nabcde\r\n";
	size_t hdr = strlen("t1 APPEND box {5}\r\n"), used;

	buf_init(&sink.data, 1024);
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_LITERAL);
	assert_int_equal(used, hdr);
	assert_int_equal(imap_parser_literal_size(p), 5);
	assert_false(imap_parser_idle(p));
	/* Not decided yet: nothing more is consumed. */
	assert_int_equal(imap_parser_feed(p, in + hdr, strlen(in) - hdr, &used), IMAP_PARSE_LITERAL);
	assert_int_equal(used, 0);
	imap_parser_accept_literal(p);
	for (size_t i = hdr; i < hdr + 5; i++) {
		assert_int_equal(imap_parser_feed(p, in + i, 1, &used), IMAP_PARSE_MORE);
		assert_int_equal(used, 1);
	}
	assert_int_equal(sink.calls, 5);
	assert_int_equal(sink.data.len, 5);
	assert_memory_equal(sink.data.data, "abcde", 5);
	assert_int_equal(imap_parser_feed(p, "\r\n", 2, &used), IMAP_PARSE_COMMAND);
	assert_int_equal(used, 2);

	const struct imap_command *c = imap_parser_command(p);

	assert_string_equal(c->tag, "t1");
	assert_string_equal(c->name, "APPEND");
	assert_int_equal(c->argc, 2);
	assert_string_equal(imap_arg_string(c->args), "box");
	assert_null(imap_arg_string(c->args->next));
	assert_true(c->args->next->flags & IMAP_ARG_STREAMED);
	assert_int_equal(c->args->next->len, 5);
	assert_true(imap_parser_idle(p));
	buf_release(&sink.data);
	imap_parser_free(&p);
}

static void test_bounded_memory(void **state)
{
	struct imap_parser_limits l = default_limits;
	struct imap_parser *p;
	char chunk[4096];
	size_t used;
	int errors = 0;

	l.max_line = 1000;
	l.max_command = 2000;
	p = imap_parser_new(&l, NULL);
	memset(chunk, 'x', sizeof(chunk));
	memcpy(chunk, "a X ", 4);
	/* An endless line: one error, then everything is skipped. */
	for (int i = 0; i < 2000; i++) {
		size_t off = 0;

		while (off < sizeof(chunk)) {
			int r = imap_parser_feed(p, chunk + off, sizeof(chunk) - off, &used);

			off += used;
			if (r == IMAP_PARSE_ERROR)
				errors++;
			else
				assert_int_equal(r, IMAP_PARSE_MORE);
		}
		assert_true(imap_parser_footprint(p) < 16 * 1024);
	}
	assert_int_equal(errors, 1);
	imap_parser_free(&p);
}

static void test_seqset(void **state)
{
	struct arena *a = arena_new(0);
	struct imap_seqset *s;
	const char *err = NULL;

	assert_int_equal(imap_seqset_parse("1:5,7,*,9:*,4294967295,10:3", 27, 10, false, a, &s, &err), 0);
	assert_false(s->last);
	assert_int_equal(s->count, 6);
	assert_int_equal(s->ranges[0].lo, 1);
	assert_int_equal(s->ranges[0].hi, 5);
	assert_int_equal(s->ranges[1].lo, 7);
	assert_int_equal(s->ranges[1].hi, 7);
	assert_int_equal(s->ranges[2].lo, IMAP_SEQ_STAR);
	assert_int_equal(s->ranges[3].lo, 9);
	assert_int_equal(s->ranges[3].hi, IMAP_SEQ_STAR);
	assert_int_equal(s->ranges[4].lo, 4294967295u);
	assert_int_equal(s->ranges[5].lo, 3);
	assert_int_equal(s->ranges[5].hi, 10);

	assert_int_equal(imap_seqset_parse("$", 1, 10, true, a, &s, &err), 0);
	assert_true(s->last);
	assert_int_equal(s->count, 0);
	assert_int_equal(imap_seqset_parse("$", 1, 10, false, a, &s, &err), -1);
	assert_string_equal(err, "BAD Invalid sequence set");

	static const char *const bad[] = {
		"", "0", "01", "1,", ",1", "1::2", "1:", ":1", "4294967296",
		"99999999999999999999", "1,$", "a", "1 2", "*:", "-1", "1,,2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(imap_seqset_parse(bad[i], strlen(bad[i]), 10, true, a, &s, &err), -1);
		assert_string_equal(err, "BAD Invalid sequence set");
	}
	assert_int_equal(imap_seqset_parse("1,2,3", 5, 3, false, a, &s, &err), 0);
	assert_int_equal(imap_seqset_parse("1,2,3,4", 7, 3, false, a, &s, &err), -1);
	assert_string_equal(err, "BAD [LIMIT] Too many ranges in sequence set");
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_bad_literal_headers),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_refuse_literal),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_bounded_memory),
		cmocka_unit_test(test_seqset),
	};

	srand(8);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
