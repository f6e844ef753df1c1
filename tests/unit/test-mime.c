/*
 * test-mime.c — the MIME parser, ENVELOPE and BODYSTRUCTURE against the
 * hand-written expectations of tests/data/mime/, fed whole, one byte at a
 * time and in odd pieces; RFC 2047/2231 decoding, the transfer-encoding
 * decoders, and the limits of hostile messages (time and memory); and
 * in the store: results kept at save, parsed on demand for a message
 * without them, adopted files parsed by the sync, and section lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/mime-private.h"
#include "storage/storage.h"
#include "storage/storage-private.h"

#include <unistd.h>

#define CORPUS SOURCE_ROOT "/tests/data/mime"

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	struct stat st;

	fstat(fileno(f), &st);
	char *data = malloc((size_t)st.st_size + 1);

	assert_non_null(data);
	*len_r = fread(data, 1, (size_t)st.st_size, f);
	data[*len_r] = '\0';
	fclose(f);
	return data;
}

/* An expectation file: one line, without its final newline. */
static char *read_expected(const char *name, const char *ext)
{
	char path[512];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s.%s", CORPUS, name, ext);
	char *s = read_file(path, &len);

	if (s != NULL && len > 0 && s[len - 1] == '\n')
		s[len - 1] = '\0';
	return s;
}

/* The three strings of a parsed message, in one buffer separated by
 * newlines (which never occur unescaped... except in literals, which the
 * corpus avoids). */
struct results {
	struct buf bs, body, env;
};

static void results_of(struct mime_part *root, struct results *r)
{
	buf_init(&r->bs, 64 << 20);
	buf_init(&r->body, 64 << 20);
	buf_init(&r->env, 64 << 20);
	assert_int_equal(mime_write_bodystructure(&r->bs, root, true), 0);
	assert_int_equal(mime_write_bodystructure(&r->body, root, false), 0);
	assert_int_equal(mime_write_envelope(&r->env, root), 0);
}

static void results_free(struct results *r)
{
	buf_release(&r->bs);
	buf_release(&r->body);
	buf_release(&r->env);
}

/* Parse data fed in pieces of step bytes (0: whole). */
static void parse_in_steps(const char *data, size_t len, size_t step, struct results *r)
{
	struct mime_parser *p = mime_parser_new();

	if (step == 0)
		step = len;
	for (size_t off = 0; off < len; off += step)
		mime_parser_feed(p, data + off, len - off < step ? len - off : step);
	results_of(mime_parser_finish(p), r);
	mime_parser_free(&p);
}

static void compare_expected(const char *name, const char *ext, const struct buf *got)
{
	char *want = read_expected(name, ext);

	if (want == NULL)
		return;
	if (strcmp(want, (const char *)got->data) != 0) {
		print_error("%s.%s\n want: %s\n got:  %s\n", name, ext, want, got->data);
		fail();
	}
	free(want);
}

static void test_corpus(void **state)
{
	DIR *d = opendir(CORPUS);
	struct dirent *e;
	unsigned checked = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 4, ".eml") != 0)
			continue;
		char name[256], path[512];
		size_t len;

		snprintf(name, sizeof(name), "%.*s", (int)(n - 4), e->d_name);
		snprintf(path, sizeof(path), "%s/%s", CORPUS, e->d_name);
		char *data = read_file(path, &len);
		struct results whole, bytes, odd;

		assert_non_null(data);
		parse_in_steps(data, len, 0, &whole);
		compare_expected(name, "bodystructure", &whole.bs);
		compare_expected(name, "body", &whole.body);
		compare_expected(name, "envelope", &whole.env);
		/* The same, whatever the pieces. */
		parse_in_steps(data, len, 1, &bytes);
		parse_in_steps(data, len, 7, &odd);
		assert_string_equal(whole.bs.data, bytes.bs.data);
		assert_string_equal(whole.env.data, bytes.env.data);
		assert_string_equal(whole.bs.data, odd.bs.data);
		assert_string_equal(whole.env.data, odd.env.data);
		results_free(&whole);
		results_free(&bytes);
		results_free(&odd);
		free(data);
		checked++;
	}
	closedir(d);
	assert_true(checked >= 10);
}

static char *parse_str(const char *msg, bool envelope)
{
	struct mime_parser *p = mime_parser_new();
	struct mime_part *root = mime_parse_buffer(p, msg, strlen(msg));
	struct buf b;

	buf_init(&b, 1 << 20);
	if (envelope)
		mime_write_envelope(&b, root);
	else
		mime_write_bodystructure(&b, root, true);
	char *s = strdup((char *)b.data);

	buf_release(&b);
	mime_parser_free(&p);
	return s;
}

static void test_addresses(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "a@b.test", "((NIL NIL \"a\" \"b.test\"))" },
		{ "a@b.test (Real Name)", "((\"Real Name\" NIL \"a\" \"b.test\"))" },
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		  "((\"Pete\" NIL \"pete\" \"silly.test\"))" },
		{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		  "((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")"
		  "(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")"
		  "(NIL NIL NIL NIL))" },
		{ "undisclosed-recipients:;", "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))" },
		{ "<@r1.test,@r2.test:joe@x.test>", "((NIL \"@r1.test,@r2.test\" \"joe\" \"x.test\"))" },
		{ "\"john doe\"@x.test", "((NIL NIL \"john doe\" \"x.test\"))" },
		{ "localonly", "((NIL NIL \"localonly\" \"MISSING_DOMAIN\"))" },
		{ "Mary <@x.test>", "((\"Mary\" NIL \"MISSING_MAILBOX\" \"x.test\"))" },
		{ ",,, a@b.test ,,", "((NIL NIL \"a\" \"b.test\"))" },
		{ "=?utf-8?q?J=C3=B6rg?= <j@x.test>", "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.test\"))" },
		{ "Joe Q. Public <j@x.test>", "((\"Joe Q. Public\" NIL \"j\" \"x.test\"))" },
		{ "x@[192.0.2.1]", "((NIL NIL \"x\" \"[192.0.2.1]\"))" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char msg[512], want[1024];

		snprintf(msg, sizeof(msg), "To: %s\n\n", cases[i].in);
		snprintf(want, sizeof(want), "(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)", cases[i].want);
		char *got = parse_str(msg, true);

		if (strcmp(got, want) != 0) {
			print_error("in: %s\n want: %s\n got:  %s\n", cases[i].in, want, got);
			fail();
		}
		free(got);
	}
}

static void test_rfc2047(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus Berlin", "Grüße aus Berlin" },
		{ "=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab" },
		{ "=?ISO-8859-1?Q?a?=\r\n   =?ISO-8859-1?B?4g==?=", "aâ" },
		{ "=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text" },
		{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
		{ "=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore" },
		{ "=?x-unknown?Q?abc?= tail", "=?x-unknown?Q?abc?= tail" },
		{ "=?UTF-8?B?invalid!?=", "=?UTF-8?B?invalid!?=" },
		{ "=?UTF-8?Q?bad=FF?=", "=?UTF-8?Q?bad=FF?=" },
		{ "broken =?UTF-8?Q?no end", "broken =?UTF-8?Q?no end" },
		{ "caf\xe9", "café" },
		{ "café", "café" },
		{ "=?utf-8?b?5pel5pys6Kqe?=", "日本語" },
	};
	struct arena *a = arena_new(0);

	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		assert_string_equal(mime_decode_header(a, cases[i].in), cases[i].want);
	assert_string_equal(mime_decode_rfc2231(a, "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"),
			    "This is ***fun***");
	assert_string_equal(mime_decode_rfc2231(a, "iso-8859-1''%E9t%E9.txt"), "été.txt");
	assert_string_equal(mime_decode_rfc2231(a, "utf-8''%C3%A9"), "é");
	assert_null(mime_decode_rfc2231(a, "no-quote"));
	assert_null(mime_decode_rfc2231(a, "x-nonexistent''abc"));
	arena_free(&a);
}

static void test_params(void **state)
{
	struct arena *a = arena_new(0);
	const char *first;
	struct mime_param *pm;

	pm = mime_params_parse(a, "message/external-body; access-type=URL;"
			       " URL*0=\"ftp://\"; URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
			       &first);
	assert_string_equal(first, "message/external-body");
	assert_string_equal(pm->name, "access-type");
	assert_string_equal(pm->value, "URL");
	assert_string_equal(pm->next->name, "URL");
	assert_string_equal(pm->next->value, "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");
	assert_null(pm->next->next);
	pm = mime_params_parse(a, "application/x-stuff;"
			       " title*0*=us-ascii'en'This%20is%20even%20more%20;"
			       " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"", &first);
	assert_string_equal(pm->name, "title*");
	assert_string_equal(pm->value,
			    "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!");
	assert_string_equal(mime_decode_rfc2231(a, pm->value),
			    "This is even more ***fun*** isn't it!");
	/* Out of order sections, comments, odd spacing. */
	pm = mime_params_parse(a, " text / plain (comment) ; name*1=\"b\" ;name*0=a ; x = \"q\\\"d\"",
			       &first);
	assert_string_equal(first, "text/plain");
	assert_string_equal(pm->name, "name");
	assert_string_equal(pm->value, "ab");
	assert_string_equal(pm->next->name, "x");
	assert_string_equal(pm->next->value, "q\"d");
	/* A continuation without section 0 is kept as sent. */
	pm = mime_params_parse(a, "text/plain; n*1=x", &first);
	assert_string_equal(pm->name, "n*1");
	assert_string_equal(pm->value, "x");
	arena_free(&a);
}

static void decode_all(enum store_cte cte, const char *in, size_t step, struct buf *out)
{
	struct store_decoder d;
	size_t len = strlen(in);

	store_decoder_init(&d, cte);
	for (size_t off = 0; off < len; off += step)
		assert_int_equal(store_decoder_feed(&d, out, in + off, len - off < step ? len - off : step), 0);
	assert_int_equal(store_decoder_finish(&d, out), 0);
}

static void test_decoders(void **state)
{
	static const struct {
		enum store_cte cte;
		const char *in, *want;
	} cases[] = {
		{ STORE_CTE_BASE64, "SGVsbG8sIFdvcmxkIQ==", "Hello, World!" },
		{ STORE_CTE_BASE64, "SGVs\r\nbG8s\r\nIFdv\r\ncmxk\r\nIQ==\r\n", "Hello, World!" },
		{ STORE_CTE_BASE64, "SGVsbG8", "Hello" },
		{ STORE_CTE_BASE64, "SG!!Vs*bG8=", "Hello" },
		{ STORE_CTE_QP, "caf=C3=A9 =3D ok", "café = ok" },
		{ STORE_CTE_QP, "soft=\r\nbreak=\nhere", "softbreakhere" },
		{ STORE_CTE_QP, "lower=c3=a9", "loweré" },
		{ STORE_CTE_QP, "bad=ZZescape", "bad=ZZescape" },
		{ STORE_CTE_QP, "line one\r\nline two\r\n", "line one\r\nline two\r\n" },
		/* RFC 2045 §6.7: trailing whitespace goes, a line break is CRLF,
		 * a bad "=" is kept and the byte after it read again. */
		{ STORE_CTE_QP, "a  \r\nb", "a\r\nb" },
		{ STORE_CTE_QP, "a\nb", "a\r\nb" },
		{ STORE_CTE_QP, "==41", "=A" },
		{ STORE_CTE_QP, "=4=41", "=4A" },
		{ STORE_CTE_QP, "abc=", "abc=" },
		{ STORE_CTE_IDENTITY, "as is=41", "as is=41" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		for (size_t step = 1; step <= 5; step += 4) {
			struct buf out;

			buf_init(&out, 1 << 20);
			decode_all(cases[i].cte, cases[i].in, step, &out);
			assert_string_equal(out.data != NULL ? (char *)out.data : "", cases[i].want);
			buf_release(&out);
		}
	}
	assert_int_equal(mime_cte_parse(" Base64"), STORE_CTE_BASE64);
	assert_int_equal(mime_cte_parse("QUOTED-PRINTABLE"), STORE_CTE_QP);
	assert_int_equal(mime_cte_parse("8bit"), STORE_CTE_IDENTITY);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A hostile message generated piece by piece: parsed within a generous
 * time bound (it is a hang check, not a timing), with the parser's memory
 * under max_footprint, and still a valid ENVELOPE and BODYSTRUCTURE. */
typedef void gen_fn(struct mime_parser *p);

static struct buf hostile(gen_fn *gen, size_t max_footprint)
{
	struct mime_parser *p = mime_parser_new();
	double t0 = now_s();

	gen(p);
	struct mime_part *root = mime_parser_finish(p);
	struct results r;

	results_of(root, &r);
	assert_true(now_s() - t0 < 30.0);
	assert_true(mime_parser_footprint(p) < max_footprint);
	assert_true(r.env.len > 0 && r.env.data[0] == '(' && r.env.data[r.env.len - 1] == ')');
	mime_parser_free(&p);
	buf_release(&r.body);
	buf_release(&r.env);
	return r.bs;
}

static void feed_str(struct mime_parser *p, const char *s)
{
	mime_parser_feed(p, s, strlen(s));
}

static void gen_deep(struct mime_parser *p)
{
	char line[128];

	feed_str(p, "From: a@b.test\nSubject: deep\n");
	for (int i = 0; i < 200; i++) {
		snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n",
			 i, i);
		feed_str(p, line);
	}
	feed_str(p, "Content-Type: text/plain\n\nbottom\n");
}

static void gen_many_parts(struct mime_parser *p)
{
	feed_str(p, "Content-Type: multipart/mixed; boundary=x\n\n");
	for (int i = 0; i < 20000; i++)
		feed_str(p, "--x\nContent-Type: text/plain\n\npart\n");
	feed_str(p, "--x--\n");
}

static void gen_many_headers(struct mime_parser *p)
{
	feed_str(p, "From: a@b.test\n");
	for (int i = 0; i < 200000; i++)
		feed_str(p, "To: someone@example.test\n");
	feed_str(p, "\nbody\n");
}

static void gen_long_header(struct mime_parser *p)
{
	static char chunk[65536];

	memset(chunk, 'a', sizeof(chunk));
	feed_str(p, "Subject: ");
	for (int i = 0; i < 50 * 16; i++)
		mime_parser_feed(p, chunk, sizeof(chunk));
	feed_str(p, "\n\nbody\n");
}

static void gen_many_params(struct mime_parser *p)
{
	char param[64];

	feed_str(p, "Content-Type: text/plain");
	for (int i = 0; i < 10000; i++) {
		snprintf(param, sizeof(param), ";\n p%d*%d*=utf-8''x", i % 3, i);
		feed_str(p, param);
	}
	feed_str(p, "\n\nbody\n");
}

/* A message/rfc822 that contains itself, as far as anyone cares to nest. */
static void gen_self_nesting(struct mime_parser *p)
{
	for (int i = 0; i < 1000; i++)
		feed_str(p, "Subject: again\nContent-Type: message/rfc822\n\n");
	feed_str(p, "\nend\n");
}

static void test_hostile(void **state)
{
	struct buf bs;

	bs = hostile(gen_deep, 4 << 20);
	/* Nesting stops at MIME_DEPTH_MAX: the multiparts at depths 0 to
	 * MIME_DEPTH_MAX - 1 have parts, the one below shows the empty text
	 * part a multipart without parts gets. */
	unsigned depth = 0;

	for (size_t i = 0; i < bs.len && bs.data[i] == '('; i++)
		depth++;
	assert_int_equal(depth, MIME_DEPTH_MAX + 2);
	buf_release(&bs);

	bs = hostile(gen_many_parts, 16 << 20);
	unsigned parts = 0;

	for (const char *s = (char *)bs.data; (s = strstr(s, "(\"text\" \"plain\"")) != NULL; s++)
		parts++;
	assert_int_equal(parts, MIME_PARTS_MAX - 1);
	buf_release(&bs);

	bs = hostile(gen_many_headers, 1 << 20);
	buf_release(&bs);
	bs = hostile(gen_long_header, 1 << 20);
	buf_release(&bs);
	bs = hostile(gen_many_params, 2 << 20);
	assert_non_null(strstr((char *)bs.data, "\"p0*\" \"utf-8''x"));
	buf_release(&bs);
	bs = hostile(gen_self_nesting, 4 << 20);
	buf_release(&bs);
}

/* 100 MB with a 90 MB base64 attachment, parsed without holding it. */
static void gen_big(struct mime_parser *p)
{
	static char line[78];

	memset(line, 'A', 76);
	line[76] = '\n';
	feed_str(p, "From: big@x.test\nContent-Type: multipart/mixed; boundary=B\n\n"
		 "--B\nContent-Type: text/plain\n\n");
	for (int i = 0; i < 10 * 1000 * 1000 / 77; i++)
		mime_parser_feed(p, line, 77);
	feed_str(p, "--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n");
	for (int i = 0; i < 90 * 1000 * 1000 / 77; i++)
		mime_parser_feed(p, line, 77);
	feed_str(p, "--B--\n");
}

static void test_big_message(void **state)
{
	struct buf bs = hostile(gen_big, 256 * 1024);
	unsigned long long lines = 90 * 1000 * 1000 / 77;
	char want[256];

	/* The attachment's last line end belongs to the closing boundary. */
	snprintf(want, sizeof(want), "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" %llu NIL",
		 lines * 78 - 2);
	assert_non_null(strstr((char *)bs.data, want));
	buf_release(&bs);
}


/* A result too long for its buffer is replaced by a minimal valid one,
 * never cut off. */
static void test_overflow_fallback(void **state)
{
	static const char msg[] = "To: a@b.test, c@d.test, e@f.test\nContent-Type: multipart/mixed;"
		" boundary=x\n\n--x\n\none\n--x\n\ntwo\n--x--\n";
	struct mime_parser *p = mime_parser_new();
	struct mime_part *root = mime_parse_buffer(p, msg, sizeof(msg) - 1);
	struct buf b;

	buf_init(&b, 2 * MIME_FIELD_MAX + 64 + 90);
	assert_int_equal(mime_write_bodystructure(&b, root, true), 0);
	assert_string_equal(b.data, "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 31"
			    " NIL NIL NIL NIL)");
	buf_clear(&b);
	assert_int_equal(mime_write_envelope(&b, root), 0);
	assert_string_equal(b.data, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_release(&b);
	mime_parser_free(&p);
}

/* Found by fuzz-mime: the same results whatever the pieces, with a CR
 * split from its LF in a header whose first line is a continuation; and
 * an address list ending in whitespace. */
static void test_fuzz_regressions(void **state)
{
	static const char msg[] = " <x: From: A <a@b.test>\r\r\r\r:\r\nSubject: s\r\r\r\r\r\nTo: c@d.test \r\n\r\nb";
	struct results whole;

	parse_in_steps(msg, sizeof(msg) - 1, 0, &whole);
	for (size_t step = 1; step < 18; step++) {
		struct results r;

		parse_in_steps(msg, sizeof(msg) - 1, step, &r);
		assert_string_equal(whole.env.data, r.env.data);
		assert_string_equal(whole.bs.data, r.bs.data);
		results_free(&r);
	}
	assert_string_equal(whole.env.data, "(NIL {5}\r\ns\r\r\r\r NIL NIL NIL ((NIL NIL \"c\" \"d.test\"))"
			    " NIL NIL NIL NIL)");
	results_free(&whole);

	struct arena *a = arena_new(0);
	struct mime_address *ad = mime_address_parse(a, "a@b.test ,  \t ", 10);

	assert_string_equal(ad->mailbox, "a");
	assert_null(ad->next);
	assert_null(mime_address_parse(a, "   ", 10));
	arena_free(&a);
}

/* ------------------------------------------------------------ store */

static void rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void save_file(struct store_user *u, const char *path, uint32_t *uid_r)
{
	struct store_error err = { 0 };
	struct store_save *s;
	uint32_t uidv;
	size_t len;
	char *data = read_file(path, &len);

	assert_non_null(data);
	assert_int_equal(store_save_begin(u, "INBOX", &s, &err), 0);
	/* In odd pieces, as LMTP and APPEND write. */
	for (size_t off = 0; off < len; off += 13)
		assert_int_equal(store_save_write(s, data + off, len - off < 13 ? len - off : 13, &err), 0);
	assert_int_equal(store_save_commit(&s, &uidv, uid_r, &err), 0);
	free(data);
}

/* The bytes of a section, read through store_reader. */
static char *read_section(struct store_mailbox *mb, uint32_t uid, const uint32_t *path,
			  size_t depth, enum store_section_kind kind, struct arena *a)
{
	struct store_error err = { 0 };
	struct store_section sec;
	struct store_reader *r;

	if (store_section_locate(mb, uid, path, depth, kind, a, &sec, &err) < 0)
		fail_msg("section %zu/%u: %s", depth, depth > 0 ? path[0] : 0, err.msg);
	assert_int_equal(store_reader_open(mb, uid, &r, &err), 0);
	assert_int_equal(store_reader_skip(r, sec.offset), 0);
	char *out = arena_alloc(a, sec.size + 1);
	size_t got = 0;

	while (got < sec.size) {
		ssize_t n = store_reader_read(r, out + got, sec.size - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	store_reader_close(&r);
	return out;
}

static void check_structure(struct store_mailbox *mb, uint32_t uid, const char *name)
{
	struct store_error err = { 0 };
	struct store_msg_structure ms;
	struct arena *a = arena_new(0);
	char *want;

	assert_int_equal(store_msg_structure(mb, uid, a, &ms, &err), 0);
	want = read_expected(name, "bodystructure");
	assert_int_equal(ms.bodystructure_len, strlen(want));
	assert_string_equal(ms.bodystructure, want);
	free(want);
	want = read_expected(name, "envelope");
	assert_string_equal(ms.envelope, want);
	free(want);
	arena_free(&a);
}

static void test_store(void **state)
{
	char dir[] = "/tmp/test-mime-XXXXXX";
	struct store_user_options opt = { .create = true };
	struct store_error err = { 0 };
	struct store_user *u;
	struct store_mailbox *mb;
	uint32_t uid_nested, uid_mixed;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_user_open(dir, &opt, &u, &err), 0);
	save_file(u, CORPUS "/nested-rfc822.eml", &uid_nested);
	save_file(u, CORPUS "/mixed-attach.eml", &uid_mixed);
	assert_int_equal(store_mailbox_open(u, "INBOX", &mb, &err), 0);
	check_structure(mb, uid_nested, "nested-rfc822");
	check_structure(mb, uid_mixed, "mixed-attach");

	/* Sections of nested-rfc822 (CRLF view, counted by hand). */
	struct arena *a = arena_new(0);
	const uint32_t p1[] = { 1 }, p2[] = { 2 }, p21[] = { 2, 1 }, p22[] = { 2, 2 };

	assert_string_equal(read_section(mb, uid_nested, p1, 1, STORE_SECTION_BODY, a), "see below");
	assert_string_equal(read_section(mb, uid_nested, p1, 1, STORE_SECTION_MIME, a),
			    "Content-Type: text/plain\r\n\r\n");
	assert_string_equal(read_section(mb, uid_nested, p2, 1, STORE_SECTION_HEADER, a),
			    "From: orig@o.test\r\nTo: fwd@f.test\r\nSubject: hi\r\n"
			    "Date: Fri, 4 Jul 2003 12:00:00 +0000\r\n"
			    "Content-Type: multipart/alternative; boundary=inner\r\n\r\n");
	assert_string_equal(read_section(mb, uid_nested, p21, 2, STORE_SECTION_BODY, a), "hello");
	assert_string_equal(read_section(mb, uid_nested, p22, 2, STORE_SECTION_BODY, a),
			    "<b>hello</b>");
	assert_string_equal(read_section(mb, uid_nested, p22, 2, STORE_SECTION_MIME, a),
			    "Content-Type: text/html\r\n\r\n");
	char *text = read_section(mb, uid_nested, p2, 1, STORE_SECTION_TEXT, a);

	assert_true(strncmp(text, "--inner\r\n", 9) == 0);
	assert_int_equal(strlen(text), 246 - 141);
	char *whole = read_section(mb, uid_nested, NULL, 0, STORE_SECTION_BODY, a);

	assert_true(strncmp(whole, "From: fwd@f.test\r\n", 18) == 0);
	assert_true(strcmp(whole + strlen(whole) - 11, "--outer--\r\n") == 0);
	/* No such parts. */
	struct store_section sec;
	const uint32_t p3[] = { 3 }, p11[] = { 1, 1 };

	assert_int_equal(store_section_locate(mb, uid_nested, p3, 1, STORE_SECTION_BODY, a, &sec, &err), -1);
	assert_int_equal(err.code, STORE_ERR_NOTFOUND);
	assert_int_equal(store_section_locate(mb, uid_nested, p11, 2, STORE_SECTION_BODY, a, &sec, &err), -1);
	assert_int_equal(store_section_locate(mb, uid_nested, p1, 1, STORE_SECTION_HEADER, a, &sec, &err), -1);
	/* HEADER.FIELDS of the top header. */
	char *hdr = read_section(mb, uid_mixed, NULL, 0, STORE_SECTION_HEADER_FIELDS, a);
	static const char *const fields[] = { "subject", "CONTENT-TYPE" };
	struct buf out;

	buf_init(&out, 1 << 20);
	assert_int_equal(store_header_filter(hdr, strlen(hdr), fields, 2, false, &out), 0);
	assert_string_equal(out.data, "Subject: report\r\nContent-Type: multipart/mixed;\r\n"
			    " boundary=\"==b1==\"\r\n\r\n");
	buf_clear(&out);
	assert_int_equal(store_header_filter(hdr, strlen(hdr), fields, 2, true, &out), 0);
	assert_null(strstr((char *)out.data, "Subject:"));
	assert_non_null(strstr((char *)out.data, "Message-ID: <m1@c.test>\r\n"));
	buf_release(&out);

	/* The decoded fields and the date kept for search and sort. */
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT date, subject, addr_from, message_id"
					    " FROM message_meta WHERE uid = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, uid_mixed);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), 1057248000);    /* 2003-07-03 16:00 UTC */
	assert_string_equal(sqlite3_column_text(st, 1), "report");
	assert_string_equal(sqlite3_column_text(st, 2), "Carol <carol@c.test>");
	assert_string_equal(sqlite3_column_text(st, 3), "<m1@c.test>");
	sqlite3_finalize(st);

	/* COPY and MOVE take the rows along, with no parse. */
	uint32_t uidv, copied[2], uid_simple;
	struct store_mailbox *arch;

	save_file(u, CORPUS "/simple.eml", &uid_simple);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_copy(mb, &uid_nested, 1, "Archive", false, &uidv, copied, &err), 0);
	assert_int_equal(store_mailbox_copy(mb, &uid_simple, 1, "Archive", true, &uidv, copied + 1, &err), 0);
	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT count(*) FROM message_meta m JOIN message g"
					    " USING (mailbox_id, uid, guid)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	sqlite3_finalize(st);
	assert_int_equal(store_mailbox_open(u, "Archive", &arch, &err), 0);
	check_structure(arch, copied[0], "nested-rfc822");
	check_structure(arch, copied[1], "simple");
	store_mailbox_close(&arch);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);

	/* An index without the rows (older than the table): parsed on demand. */
	assert_int_equal(store__exec(u, "DELETE FROM message_meta", &err), 0);
	check_structure(mb, uid_nested, "nested-rfc822");
	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT count(*) FROM message_meta", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);

	/* An index where the table could not be added (an old index on a
	 * full disk): parsed on every use, still answered. */
	u->meta = false;
	check_structure(mb, uid_mixed, "mixed-attach");
	u->meta = true;

	/* A file dropped into new/ by another program: parsed by the sync. */
	char path[700];

	snprintf(path, sizeof(path), "cp %s/digest.eml %s/Maildir/new/1700000000.M1P1.host", CORPUS, dir);
	assert_int_equal(system(path), 0);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	uint32_t uid_digest = store_mailbox_msg(mb, store_mailbox_count(mb))->uid;

	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT bodystructure FROM message_meta"
					    " WHERE uid = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, uid_digest);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	char *want = read_expected("digest", "bodystructure");

	assert_string_equal(sqlite3_column_text(st, 0), want);
	free(want);
	sqlite3_finalize(st);

	/* Expunged: the row goes with the message. */
	assert_int_equal(store_mailbox_expunge(mb, &uid_digest, 1, &err), 0);
	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT count(*) FROM message_meta WHERE uid = ?",
					    -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, uid_digest);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);

	arena_free(&a);
	store_mailbox_close(&mb);
	store_user_close(&u);
	/* A rebuild parses every message again. */
	assert_int_equal(store_user_rebuild(dir, &err), 0);
	assert_int_equal(store_user_open(dir, &opt, &u, &err), 0);
	assert_int_equal(store_mailbox_open(u, "INBOX", &mb, &err), 0);
	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT count(*) FROM message_meta", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);     /* 2 in INBOX, 2 in Archive */
	sqlite3_finalize(st);
	check_structure(mb, uid_mixed, "mixed-attach");
	store_mailbox_close(&mb);
	store_user_close(&u);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_decoders),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_big_message),
		cmocka_unit_test(test_overflow_fallback),
		cmocka_unit_test(test_fuzz_regressions),
		cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
