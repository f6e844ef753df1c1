/*
 * test-search.c — SEARCH, SORT and threading data of storage/: every
 * search key alone and combined (OR, NOT, nested AND), the RFC's substring
 * semantics (part of a word, of an address, a word split by a
 * quoted-printable soft line break, base64 and ISO-8859-1 parts, RFC 2047
 * subjects), i;unicode-casemap matching (RFC 5051: case beyond ASCII,
 * composed and decomposed letters, compatibility characters), the
 * full-text index kept in step with save, expunge, copy, move and rebuild
 * (and messages without text in it searched from their files, also while
 * another connection stores their text), an index
 * of the old uncasemapped form upgraded, RFC 5256 base subjects, the SORT
 * keys (i;unicode-casemap too) and the threading fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"
#include "storage/storage-private.h"
#include "test-util.h"

#define DAY 86400
/* 2025-02-03, the internal date of the first message. */
#define D0 20122

static const char msg1[] =
	"From: Alice Example <alice@example.org>\n"
	"To: bob@example.com\n"
	"Cc: carol@example.net\n"
	"Subject: Re: Fwd: [tag] Quarterly report (fwd)\n"
	"Date: Mon, 3 Feb 2025 10:00:00 +0000\n"
	"Message-ID: <m1@example.org>\n"
	"\n"
	"Hello Bob, the quarterly numbers are attached.\n";

static const char msg2[] =
	"From: =?UTF-8?B?w5ZtZXIgWsO8cmljaA==?= <oemer@example.ch>\n"
	"To: Alice Example <alice@example.org>\n"
	"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\n"
	"Date: Tue, 4 Feb 2025 23:30:00 -0500\n"
	"Message-ID: <m2@example.ch>\n"
	"In-Reply-To: <m1@example.org>\n"
	"References: <m0@example.org> <m1@example.org>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"This is a supercalifragi=\n"
	"listic test with caf=C3=A9 and =C3=9CBER, \"quoted\".\n";

/* base64 text "Play the xylophone tonight." and an attachment whose
 * bytes hold "zebrafish" (not text: not searched), and a Latin-1 part. */
static const char msg3[] =
	"From: carol@example.net\n"
	"To: Bob <bob@example.com>, dave@example.com\n"
	"Subject: Music\n"
	"Date: Wed, 5 Feb 2025 08:00:00 +0000\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"UGxheSB0aGUgeHlsb3Bob25lIHRvbmlnaHQu\n"
	"--b1\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"emVicmFmaXNo\n"
	"--b1\n"
	"Content-Type: text/plain; charset=iso-8859-1\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Hauptstra\xdf" "e 5\n"
	"--b1--\n";

static const char msg4[] =
	"From: bob@example.com\n"
	"Subject: Hello\n"
	"X-Custom: Sprocket-42\n"
	"\n"
	"ab cd\n";

struct fixture {
	char dir[256];
	struct store_user *u;
	struct arena *a;
	uint32_t uid[5];
};

static uint32_t save(struct store_user *u, const char *mailbox, const char *body, uint32_t flags,
		     int64_t when)
{
	struct store_save *s;
	struct store_error err = { 0 };
	uint32_t uidvalidity, uid;

	if (store_save_begin(u, mailbox, &s, &err) < 0)
		fail_msg("save_begin: %s", err.msg);
	store_save_set_flags(s, flags);
	store_save_set_internal_date(s, when);
	assert_int_equal(store_save_write(s, body, strlen(body), &err), 0);
	if (store_save_commit(&s, &uidvalidity, &uid, &err) < 0)
		fail_msg("commit: %s", err.msg);
	return uid;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_user_options opt = { .create = true };
	struct store_error err = { 0 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-search-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	strcat(f->dir, "/user");
	if (store_user_open(f->dir, &opt, &f->u, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	f->a = arena_new(0);
	f->uid[1] = save(f->u, "INBOX", msg1, STORE_FLAG_SEEN, (int64_t)D0 * DAY + 3600);
	f->uid[2] = save(f->u, "INBOX", msg2, STORE_FLAG_FLAGGED, (int64_t)(D0 + 1) * DAY);
	f->uid[3] = save(f->u, "INBOX", msg3, 0, (int64_t)(D0 + 2) * DAY + 7200);
	f->uid[4] = save(f->u, "INBOX", msg4, STORE_FLAG_SEEN | STORE_FLAG_ANSWERED, time(NULL));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[600];

	store_user_close(&f->u);
	arena_free(&f->a);
	*strrchr(f->dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct store_mailbox *open_mb(struct store_user *u, const char *name)
{
	struct store_mailbox *mb;
	struct store_error err = { 0 };

	if (store_mailbox_open(u, name, &mb, &err) < 0)
		fail_msg("open %s: %s", name, err.msg);
	return mb;
}

/* ------------------------------------------------- building criteria */

static struct store_search *key(struct arena *a, enum store_search_kind kind)
{
	struct store_search *s = arena_alloc(a, sizeof(*s));

	s->kind = kind;
	return s;
}

static struct store_search *str(struct arena *a, enum store_search_kind kind, const char *v)
{
	struct store_search *s = key(a, kind);

	s->str = v;
	return s;
}

static struct store_search *num(struct arena *a, enum store_search_kind kind, uint64_t n)
{
	struct store_search *s = key(a, kind);

	s->number = n;
	s->day = (int64_t)n;
	return s;
}

static struct store_search *flags(struct arena *a, enum store_search_kind kind, uint32_t fl)
{
	struct store_search *s = key(a, kind);

	s->flags = fl;
	return s;
}

static struct store_search *header(struct arena *a, const char *name, const char *v)
{
	struct store_search *s = str(a, STORE_SEARCH_HEADER, v);

	s->header = name;
	return s;
}

static struct store_search *set(struct arena *a, enum store_search_kind kind, uint32_t lo,
				uint32_t hi, uint32_t lo2, uint32_t hi2)
{
	struct store_search *s = key(a, kind);
	struct store_seq_range *r = arena_alloc(a, 2 * sizeof(*r));

	r[0].lo = lo;
	r[0].hi = hi;
	r[1].lo = lo2;
	r[1].hi = hi2;
	s->set = r;
	s->set_count = lo2 == 0 ? 1 : 2;
	return s;
}

/* AND, OR or NOT of up to three keys (NULL ends the list). */
static struct store_search *node(struct arena *a, enum store_search_kind kind,
				 struct store_search *k1, struct store_search *k2,
				 struct store_search *k3)
{
	struct store_search *s = key(a, kind);

	s->children = k1;
	k1->next = k2;
	if (k2 != NULL)
		k2->next = k3;
	return s;
}

/* The UIDs found, as "1 2 3". */
static const char *run(struct fixture *f, struct store_mailbox *mb, const struct store_search *c)
{
	struct store_error err = { 0 };
	uint32_t *uids;
	size_t n;
	struct buf b;

	if (store_mailbox_search(mb, c, f->a, &uids, &n, &err) < 0)
		fail_msg("search: %s", err.msg);
	buf_init(&b, 4096);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, i == 0 ? "%u" : " %u", uids[i]);
	const char *r = arena_strdup(f->a, b.data != NULL ? (const char *)b.data : "");

	buf_release(&b);
	return r;
}

/* --------------------------------------------------------------- tests */

static void test_match_folding(void **state)
{
	(void)state;
	assert_true(store_search_match("Hello World", 11, "o w"));
	assert_true(store_search_match("Hello World", 11, "WORLD"));
	assert_true(store_search_match("Hello", 5, ""));
	assert_false(store_search_match("Hello", 5, "hello!"));
	assert_true(store_search_match("Grüße aus Köln", strlen("Grüße aus Köln"), "KÖLN"));
	assert_true(store_search_match("ŁÓDŹ", strlen("ŁÓDŹ"), "łódź"));
	assert_true(store_search_match("Αθήνα", strlen("Αθήνα"), "αθ"));
	assert_true(store_search_match("МОСКВА", strlen("МОСКВА"), "москва"));
	assert_true(store_search_match("ЁЖ", strlen("ЁЖ"), "ёж"));
	/* A NUL inside the text does not end it. */
	assert_true(store_search_match("a\0bcd", 5, "cd"));
	/* i;unicode-casemap: composed and decomposed letters, ligatures,
	 * full-width letters, final sigma, the Kelvin sign. */
	assert_true(store_search_match("Café", strlen("Café"), "cafe\xcc\x81"));
	assert_true(store_search_match("cafe\xcc\x81 noir", 11, "CAFÉ N"));
	assert_false(store_search_match("cafe", 4, "café"));
	assert_true(store_search_match("a ﬁle", strlen("a ﬁle"), "FILE"));
	assert_true(store_search_match("ＴＥＲＮ", strlen("ＴＥＲＮ"), "tern"));
	assert_true(store_search_match("Οδυσσεύς", strlen("Οδυσσεύς"), "ΟΔΥΣΣΕΎΣ"));
	assert_true(store_search_match("300 kelvin", 10, "\xe2\x84\xaa" "ELVIN"));
	assert_false(store_search_match("Straße", strlen("Straße"), "STRASSE"));
	/* Invalid UTF-8 in the text is U+FFFD there: no crash, no match of
	 * the bytes around it by accident. */
	assert_true(store_search_match("ab\xff\xfe cd", 7, "CD"));
	assert_false(store_search_match("\xc3", 1, "é"));
}

static void test_flags_dates_sizes_sets(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	struct store_error err = { 0 };
	const char *kw[] = { "$Work" };

	assert_int_equal(store_mailbox_set_flags(mb, &f->uid[3], 1, STORE_FLAGS_ADD, 0, kw, 1, 0,
						 NULL, &err), 0);
	assert_string_equal(run(f, mb, key(a, STORE_SEARCH_ALL)), "1 2 3 4");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN)), "1 4");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_UNFLAGS, STORE_FLAG_SEEN)), "2 3");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_FLAGGED)), "2");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_ANSWERED)), "4");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_UNFLAGS, STORE_FLAG_DELETED)),
			    "1 2 3 4");
	assert_string_equal(run(f, mb, flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_DRAFT)), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_KEYWORD, "$work")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_UNKEYWORD, "$Work")), "1 2 4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_KEYWORD, "$Absent")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_UNKEYWORD, "$Absent")), "1 2 3 4");

	/* Internal dates: D0, D0+1, D0+2, today. */
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_BEFORE, D0 + 1)), "1");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_ON, D0 + 1)), "2");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SINCE, D0 + 1)), "2 3 4");
	/* Sent dates in UTC: msg2 is Feb 5 04:30 UTC; msg4 has no Date
	 * (its internal date counts). */
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SENTON, D0 + 2)), "2 3");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SENTBEFORE, D0 + 1)), "1");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SENTSINCE, D0 + 3)), "4");
	/* Save dates: all today. */
	int64_t today = time(NULL) / DAY;

	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SAVEDON, (uint64_t)today)), "1 2 3 4");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SAVEDBEFORE, (uint64_t)today)), "");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SAVEDSINCE, (uint64_t)today + 1)), "");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_YOUNGER, 3600)), "4");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_OLDER, 3600)), "1 2 3");

	/* Sizes (RFC822.SIZE, CRLF). */
	uint64_t s4 = store_mailbox_msg(mb, 4)->vsize;

	assert_int_equal(s4, strlen(msg4) + 5);
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SMALLER, s4)), "");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_SMALLER, s4 + 1)), "4");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_LARGER, s4)), "1 2 3");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_LARGER, 1 << 20)), "");

	/* Sets: UIDs and sequence numbers, "*", reversed ranges. */
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_UID, 2, 3, 0, 0)), "2 3");
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_UID, STORE_SEQ_STAR, 3, 1, 1)),
			    "1 3 4");
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_UID, 100, STORE_SEQ_STAR, 0, 0)), "4");
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_UID, 5, 99, 0, 0)), "");
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_SEQ, 2, 2, 4, 9)), "2 4");
	assert_string_equal(run(f, mb, set(a, STORE_SEARCH_SEQ, STORE_SEQ_STAR, 3, 0, 0)), "3 4");

	/* MODSEQ: the keyword change gave msg3 the highest. */
	uint64_t ms3 = store_mailbox_msg(mb, 3)->modseq;

	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_MODSEQ, ms3)), "3");
	assert_string_equal(run(f, mb, num(a, STORE_SEARCH_MODSEQ, 0)), "1 2 3 4");
	store_mailbox_close(&mb);
}

static void test_header_keys(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	/* Part of a word, of an address, across a space, any case. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "ARTERLY REP")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_FROM, "ice@exa")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_FROM, "example.")), "1 2 3 4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_FROM, "Alice Ex")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TO, "alice")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TO, "dave@")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_CC, "carol")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BCC, "a")), "");
	/* RFC 2047, ISO-8859-1 and UTF-8, decoded and folded. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "KÖLN")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "grüße")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_FROM, "zürich")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "?=")), "");
	/* The empty string matches every message with the field. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "")), "1 2 3 4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_CC, "")), "1");

	/* HEADER: any field, decoded; "" is the field's presence. */
	assert_string_equal(run(f, mb, header(a, "x-custom", "OCKET-4")), "4");
	assert_string_equal(run(f, mb, header(a, "X-Custom", "")), "4");
	assert_string_equal(run(f, mb, header(a, "Message-ID", "m2@")), "2");
	assert_string_equal(run(f, mb, header(a, "References", "<m0@")), "2");
	assert_string_equal(run(f, mb, header(a, "Subject", "köln")), "2");
	assert_string_equal(run(f, mb, header(a, "Subject", "ln")), "2");
	assert_string_equal(run(f, mb, header(a, "To", "Sprocket")), "");
	assert_string_equal(run(f, mb, header(a, "Content-Type", "multipart")), "3");
	store_mailbox_close(&mb);
}

static void test_body_and_text(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	/* A word split by a soft line break, found by a part of it. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "supercalifragilistic")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "CALIFRAGILISTIC TEST")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "CAFÉ")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "über,")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "\"quoted\"")), "2");
	/* base64 text; an attachment is not text. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "ylophon")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "zebrafish")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "emVicmFmaXNo")), "");
	/* ISO-8859-1 converted. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "HAUPTSTRASSE")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "straße 5")), "3");
	/* Short strings: scanned, still substrings. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "b c")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "AB")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "bO")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "é")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "")), "1 2 3 4");
	/* Body only: header text is not body. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "Quarterly report")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "quarterly")), "1");
	/* TEXT: header or body. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "quarterly")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "sprocket")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "Köln")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "xylophone")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "bob")), "1 3 4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "nowhere at all")), "");
	store_mailbox_close(&mb);
}

static void test_combinations(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	/* OR SEEN FLAGGED */
	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_OR,
					    flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN),
					    flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_FLAGGED),
					    NULL)), "1 2 4");
	/* NOT SEEN */
	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_NOT,
					    flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN),
					    NULL, NULL)), "2 3");
	/* SEEN FROM bob (an AND) */
	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_AND,
					    flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN),
					    str(a, STORE_SEARCH_FROM, "bob"), NULL)), "4");
	/* (OR BODY xylophone (NOT TEXT bob)) UID 1:3 */
	struct store_search *inner =
		node(a, STORE_SEARCH_OR, str(a, STORE_SEARCH_BODY, "xylophone"),
		     node(a, STORE_SEARCH_NOT, str(a, STORE_SEARCH_TEXT, "bob"), NULL, NULL),
		     NULL);

	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_AND, inner,
					    set(a, STORE_SEARCH_UID, 1, 3, 0, 0), NULL)), "2 3");
	/* NOT (OR (NOT SEEN) LARGER 1) = SEEN AND NOT LARGER 1: none. */
	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_NOT,
					    node(a, STORE_SEARCH_OR,
						 node(a, STORE_SEARCH_NOT,
						      flags(a, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN),
						      NULL, NULL),
						 num(a, STORE_SEARCH_LARGER, 1), NULL),
					    NULL, NULL)), "");
	/* An empty AND is ALL; three ORed. */
	assert_string_equal(run(f, mb, key(a, STORE_SEARCH_AND)), "1 2 3 4");
	assert_string_equal(run(f, mb, node(a, STORE_SEARCH_OR,
					    str(a, STORE_SEARCH_SUBJECT, "music"),
					    str(a, STORE_SEARCH_BODY, "numbers"),
					    header(a, "x-custom", "42"))), "1 3 4");
	store_mailbox_close(&mb);
}

static int index_count(struct fixture *f, const char *sql)
{
	char path[400];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_index_in_step(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_error err = { 0 };
	uint32_t dest[2], uidvalidity;
	struct store_search *xylo = str(a, STORE_SEARCH_BODY, "xylophone");
	struct store_search *super = str(a, STORE_SEARCH_BODY, "califragi");

	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 4);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	/* Copy: the copy is found, sharing the document. */
	assert_int_equal(store_mailbox_copy(mb, &f->uid[3], 1, "Archive", false, &uidvalidity,
					    dest, &err), 0);
	struct store_mailbox *ar = open_mb(f->u, "Archive");

	assert_string_equal(run(f, ar, xylo), "1");
	assert_string_equal(run(f, mb, xylo), "3");
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 4);
	/* Expunge one copy: the other is still found; then the last. */
	assert_int_equal(store_mailbox_expunge(mb, &f->uid[3], 1, &err), 0);
	assert_string_equal(run(f, mb, xylo), "");
	assert_string_equal(run(f, ar, xylo), "1");
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(store_mailbox_expunge(ar, &dest[0], 1, &err), 0);
	assert_string_equal(run(f, ar, xylo), "");
	assert_string_equal(run(f, ar, str(a, STORE_SEARCH_BODY, "xy")), "");
	/* Its document is unreachable, and deleted by the next catch-up. */
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_doc"), 3);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 4);
	bool more;

	assert_int_equal(store_user_catch_up(f->u, 64, &more, &err), 0);
	assert_false(more);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 3);
	/* Move: found in the target, not in the source; the document stays. */
	assert_int_equal(store_mailbox_copy(mb, &f->uid[2], 1, "Trash", true, &uidvalidity,
					    dest, &err), 0);
	struct store_mailbox *tr = open_mb(f->u, "Trash");

	assert_string_equal(run(f, mb, super), "");
	assert_string_equal(run(f, tr, super), "1");
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 3);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 0);
	store_mailbox_close(&tr);
	store_mailbox_close(&ar);
	store_mailbox_close(&mb);

	/* Rebuild from the Maildir: the same answers. */
	store_user_close(&f->u);
	assert_int_equal(store_user_rebuild(f->dir, &err), 0);
	struct store_user_options opt = { 0 };

	assert_int_equal(store_user_open(f->dir, &opt, &f->u, &err), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 3);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	mb = open_mb(f->u, "INBOX");
	tr = open_mb(f->u, "Trash");
	assert_string_equal(run(f, tr, super), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "sprocket")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "AB")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "arterly")), "1");
	store_mailbox_close(&tr);
	store_mailbox_close(&mb);
}

/* A text value from the index (at most size - 1 bytes), "" if none. */
static void index_text(struct fixture *f, const char *sql, char *out, size_t size)
{
	char path[400];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	out[0] = '\0';
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * An expunged message's document stays in message_fts until a purge, but
 * no search reaches it: not through the trigram index, not by a scan, not
 * for a message saved later with the same text, nor for a file adopted
 * later under the same GUID (a document of a GUID is found through
 * fts_doc only, never through message_fts's guid column).
 */
static void test_expunged_text_unreachable(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_error err = { 0 };
	static const char gone[] = "Subject: Platypus\n\nthe wombatword burrow\n";
	struct store_search *wombat = str(a, STORE_SEARCH_BODY, "wombatword");
	char guid[200], sql[300], path[1200];
	uint32_t uid = save(f->u, "INBOX", gone, 0, time(NULL));
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_string_equal(run(f, mb, wombat), "5");
	snprintf(sql, sizeof(sql), "SELECT guid FROM message WHERE uid = %u", uid);
	index_text(f, sql, guid, sizeof(guid));
	assert_true(guid[0] != '\0');
	assert_int_equal(store_mailbox_expunge(mb, &uid, 1, &err), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 5);
	assert_string_equal(run(f, mb, wombat), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "platypus")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "rr")), "");

	/* The same text saved again: found once, as the new message. */
	uint32_t again = save(f->u, "INBOX", gone, 0, time(NULL));

	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	char want[16];

	snprintf(want, sizeof(want), "%u", again);
	assert_string_equal(run(f, mb, wombat), want);
	assert_int_equal(store_mailbox_expunge(mb, &again, 1, &err), 0);
	assert_string_equal(run(f, mb, wombat), "");

	/* A file with the expunged message's GUID but other text, dropped in
	 * by another program: its own text is found, not the old one. */
	snprintf(path, sizeof(path), "%s/Maildir/new/%s", f->dir, guid);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs("Subject: Echidna\n\nthe numbatword only\n", fp);
	fclose(fp);
	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	assert_int_equal(store_mailbox_count(mb), 5);
	uint32_t adopted = store_mailbox_msg(mb, 5)->uid;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM message WHERE uid = %u AND guid = '%s'",
		 adopted, guid);
	assert_int_equal(index_count(f, sql), 1);
	snprintf(want, sizeof(want), "%u", adopted);
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "numbatword")), want);
	assert_string_equal(run(f, mb, wombat), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "platypus")), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "rr")), "");
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM message_fts WHERE guid = '%s'", guid);
	assert_int_equal(index_count(f, sql), 2);

	/* The purge deletes the two unreachable documents, and only those. */
	bool more;

	assert_int_equal(store_user_catch_up(f->u, 64, &more, &err), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_gone"), 0);
	assert_int_equal(index_count(f, sql), 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 5);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_doc"), 5);
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "numbatword")), want);
	assert_string_equal(run(f, mb, wombat), "");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "xylophone")), "3");
	store_mailbox_close(&mb);
}

/* Messages without a document (an index from before the text index)
 * are searched from their files, for every key, and their text is kept. */
static void test_pending_from_files(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;

	store_user_close(&f->u);
	test_index_exec(f->dir, "DELETE FROM message_fts; DELETE FROM fts_doc;"
			" DELETE FROM message_meta;"
			" INSERT INTO fts_pending SELECT mailbox_id, uid FROM message;");
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };

	assert_int_equal(store_user_open(f->dir, &opt, &f->u, &err), 0);
	struct store_mailbox *mb = open_mb(f->u, "INBOX");

	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 4);
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "xylophone")), "3");
	/* The text read is kept: nothing is pending any more. */
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 4);
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "b c")), "4");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "Köln")), "2");
	assert_string_equal(run(f, mb, header(a, "x-custom", "42")), "4");
	/* Header keys fill message_meta on the way. */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "köln")), "2");
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_meta"), 4);
	store_mailbox_close(&mb);
}

/* Messages in other scripts and forms, in the mailbox "Intl". */
static const char intl1[] =
	"From: =?UTF-8?B?w5ZtZXI=?= <oemer@example.org>\n"
	"Subject: =?UTF-8?Q?Caf=C3=A9_au_lait?=\n"
	"X-Note: =?UTF-8?B?zqPOn86mzpnOkQ==?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Le café est prêt. Ｆｕｌｌ ｗｉｄｔｈ. Une ﬁle d'attente.\n";

static const char intl2[] =
	"From: Zoe <zoe@example.org>\n"
	"Subject: =?UTF-8?B?zqPOn86mzpnOkQ==?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Οδυσσεύς in МОСКВА, 한국어.\n";

static const char intl3[] =
	"From: zed@example.org\n"
	"Subject: =?UTF-8?B?z4POv8+GzrnOsQ==?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"cafe=CC=81 noir, Stra=C3=9Fe 5, 300 kelvin\n";

static void save_intl(struct fixture *f)
{
	struct store_error err = { 0 };

	assert_int_equal(store_mailbox_create(f->u, "Intl", 0, &err), 0);
	save(f->u, "Intl", intl1, 0, (int64_t)D0 * DAY);
	save(f->u, "Intl", intl2, 0, (int64_t)(D0 + 1) * DAY);
	save(f->u, "Intl", intl3, 0, (int64_t)(D0 + 2) * DAY);
}

/* Every string key, its needle casemapped and the text too: through the
 * trigram index (3+ characters), by a scan (shorter), and from the files
 * of pending messages. */
static void check_intl(struct fixture *f, struct store_mailbox *mb)
{
	struct arena *a = f->a;

	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "CAFÉ")), "1 3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "cafe\xcc\x81")), "1 3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "café est")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "FILE D'")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "full width")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "ΟΔΥΣΣΕΎΣ")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "москва")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "한국")), "2");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "\xe2\x84\xaa" "elvin")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "STRAßE")), "3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "STRASSE")), "");
	/* Short: scanned. "ﬁ" is "FI" (two characters). */
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "é")), "1 3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "ﬁ")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "σοφια")), "2 3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "ΣΟΦΙΑ")), "2 3");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "CAFÉ AU")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_FROM, "ömer")), "1");
	assert_string_equal(run(f, mb, header(a, "subject", "cafe\xcc\x81")), "1");
	assert_string_equal(run(f, mb, header(a, "X-NOTE", "σοφ")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "ÖMER")), "1");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_TEXT, "Σοφια")), "1 2 3");
}

static void test_unicode_casemap(void **state)
{
	struct fixture *f = *state;

	save_intl(f);
	struct store_mailbox *mb = open_mb(f->u, "Intl");

	check_intl(f, mb);
	store_mailbox_close(&mb);
	/* The text index keeps the casemapped form. */
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"
				     " WHERE instr(body, 'LE CAFE\xcc\x81 EST')"), 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"
				     " WHERE instr(hdr, 'SUBJECT: CAFE\xcc\x81 AU LAIT')"), 1);
}

/*
 * An index from before the casemapped text: its text table goes and every
 * message is pending, when the index is opened; searches then read the
 * files, find what they must, and keep the text in the new form. Only
 * once: the next open leaves it alone.
 */
static void test_index_upgrade(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;

	save_intl(f);
	store_user_close(&f->u);
	/* The old form: text as decoded, no 'fts_format'. */
	test_index_exec(f->dir, "UPDATE message_fts SET body = 'Le café est prêt',"
			" hdr = 'Subject: Hello'; DELETE FROM meta WHERE key = 'fts_format';");
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };

	assert_int_equal(store_user_open(f->dir, &opt, &f->u, &err), 0);
	assert_int_equal(index_count(f, "SELECT value FROM meta WHERE key = 'fts_format'"), 2);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_doc"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 7);
	struct store_mailbox *mb = open_mb(f->u, "Intl");
	struct store_mailbox *inbox = open_mb(f->u, "INBOX");

	check_intl(f, mb);
	assert_string_equal(run(f, inbox, str(a, STORE_SEARCH_BODY, "xylophone")), "3");
	assert_string_equal(run(f, inbox, header(a, "x-custom", "ocket")), "4");
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 7);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"
				     " WHERE instr(body, 'XYLOPHONE')"), 1);
	store_mailbox_close(&inbox);
	store_mailbox_close(&mb);

	/* Opened again: nothing to upgrade, nothing emptied. */
	store_user_close(&f->u);
	assert_int_equal(store_user_open(f->dir, &opt, &f->u, &err), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_fts"), 7);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	mb = open_mb(f->u, "Intl");
	check_intl(f, mb);
	store_mailbox_close(&mb);
}

/*
 * A search while another connection stores the text of pending messages
 * (tern-imapd's catch-up): each message is either in the text index or
 * pending, so a search must read both in one snapshot, or a message
 * stored between the two reads is in neither and missed. The catch-up
 * runs exactly there, as the search's read of fts_pending starts.
 */
static void catch_up_all(void *arg)
{
	struct store_error err = { 0 };
	bool more = true;

	while (more)
		if (store_user_catch_up(arg, 100, &more, &err) < 0)
			fail_msg("catch up: %s", err.msg);
}

static void test_search_during_catch_up(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };
	struct store_user *other;
	/* Through the trigram index, and scanned. */
	static const char *const needles[] = { "CAFÉ", "é" };

	save_intl(f);
	assert_int_equal(store_user_open(f->dir, &opt, &other, &err), 0);
	struct store_mailbox *mb = open_mb(f->u, "Intl");
	struct test_at_stmt at = {
		.sql_part = "SELECT uid FROM fts_pending", .fn = catch_up_all, .arg = other,
	};

	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		test_index_exec(f->dir, "BEGIN IMMEDIATE; DELETE FROM message_fts;"
				" DELETE FROM fts_doc; DELETE FROM fts_gone;"
				" INSERT OR IGNORE INTO fts_pending"
				"  SELECT mailbox_id, uid FROM message; COMMIT");
		test_at_stmt_arm(f->u->db, &at);
		const char *found = run(f, mb, str(a, STORE_SEARCH_BODY, needles[i]));

		test_at_stmt_done(f->u->db, &at);
		assert_string_equal(found, "1 3");
		assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	}
	store_mailbox_close(&mb);
	store_user_close(&other);
}

/*
 * A catch-up reads its messages' files, then stores what it read under
 * the write lock; a message expunged in between gets no structure row
 * and no text document, which nothing would ever delete.
 */
struct expunge_arg {
	struct store_mailbox *mb;
	uint32_t uid;
};

static void expunge_one(void *arg)
{
	struct expunge_arg *e = arg;
	struct store_error err = { 0 };

	assert_int_equal(store_mailbox_expunge(e->mb, &e->uid, 1, &err), 0);
}

static void test_catch_up_skips_expunged(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { 0 };
	struct store_error err = { 0 };
	struct store_user *other;
	bool more = true;

	save_intl(f);
	test_index_exec(f->dir, "DELETE FROM message_fts; DELETE FROM fts_doc;"
			" DELETE FROM message_meta;"
			" INSERT OR IGNORE INTO fts_pending SELECT mailbox_id, uid FROM message;");
	assert_int_equal(store_user_open(f->dir, &opt, &other, &err), 0);
	struct expunge_arg e = { .mb = open_mb(f->u, "Intl"), .uid = 1 };
	struct test_at_stmt at = { .sql_part = "BEGIN IMMEDIATE", .fn = expunge_one, .arg = &e };

	test_at_stmt_arm(other->db, &at);
	while (more)
		assert_int_equal(store_user_catch_up(other, 100, &more, &err), 0);
	test_at_stmt_done(other->db, &at);
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_meta m WHERE NOT EXISTS"
				     " (SELECT 1 FROM message g WHERE g.mailbox_id = m.mailbox_id"
				     "  AND g.uid = m.uid)"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_doc d WHERE NOT EXISTS"
				     " (SELECT 1 FROM message g WHERE g.guid = d.guid)"), 0);
	/* The others got theirs. */
	assert_int_equal(index_count(f, "SELECT count(*) FROM message_meta"), 6);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_doc"), 6);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending"), 0);
	store_mailbox_close(&e.mb);
	store_user_close(&other);
}

/* Another program's flag change: the file of uid renamed in the folder
 * to the flags info (":2,F"), behind the index's back. */
static void rename_behind_index(struct store_mailbox *mb, uint32_t uid, const char *info)
{
	struct store_msg_row row;
	struct store_error err = { 0 };
	char from[4096], to[4096];

	assert_int_equal(store__msg_row(mb, uid, &row, &err), 1);
	snprintf(from, sizeof(from), "%s/%s", mb->folder, row.filename);
	const char *name = strchr(row.filename, '/') + 1;

	snprintf(to, sizeof(to), "%s/cur/%.*s%s", mb->folder, (int)strcspn(name, ":"), name,
		 info);
	assert_int_equal(rename(from, to), 0);
}

/*
 * A message read from its file by a search (no text or structure stored
 * for it yet) whose file was renamed since the index last looked, by
 * another session's flag change or another program: the folder is synced
 * and the file found under its new name, not taken for a non-match.
 */
static void test_search_renamed_file(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;

	save_intl(f);
	test_index_exec(f->dir, "DELETE FROM message_fts; DELETE FROM fts_doc;"
			" DELETE FROM message_meta;"
			" INSERT OR IGNORE INTO fts_pending SELECT mailbox_id, uid FROM message;");
	struct store_mailbox *mb = open_mb(f->u, "Intl");

	rename_behind_index(mb, 1, ":2,F");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_BODY, "CAFÉ")), "1 3");
	rename_behind_index(mb, 1, ":2,FS");
	assert_string_equal(run(f, mb, str(a, STORE_SEARCH_SUBJECT, "CAFÉ AU")), "1");
	store_mailbox_close(&mb);
}

static void test_base_subject(void **state)
{
	struct arena *a = arena_new(0);
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Re: Fwd: [tag] subj (fwd)", "subj" },
		{ "subj", "subj" },
		{ "RE: subj", "subj" },
		{ "Re[2]: subj", "subj" },
		{ "re: RE:  fw:subj", "subj" },
		{ "Fwd: [list] Re: subj", "subj" },
		{ "[fwd: Re: subj]", "subj" },
		{ "[Fwd: [fwd: subj (fwd)]]", "subj" },
		{ "subj (fwd) (FWD)  ", "subj" },
		{ "  subj\t two   spaces", "subj two spaces" },
		/* A blob alone is the base subject, not removed. */
		{ "[tag]", "[tag]" },
		{ "Re: [tag]", "[tag]" },
		{ "[a][b] subj", "subj" },
		{ "Rex: subj", "Rex: subj" },
		{ "Re subj", "Re subj" },
		{ "", "" },
		{ "Re:", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = store_base_subject(a, cases[i].in);

		if (strcmp(got, cases[i].out) != 0)
			fail_msg("base subject of \"%s\": \"%s\", expected \"%s\"", cases[i].in,
				 got, cases[i].out);
	}
	assert_string_equal(store_base_subject(a, NULL), "");
	arena_free(&a);
}

static const char *sorted(struct store_mailbox *mb, struct arena *a, enum store_sort_key k,
			  bool reverse)
{
	uint32_t uids[] = { 4, 3, 2, 1, 77 };
	struct store_sort_spec spec = { k, reverse };
	struct store_error err = { 0 };
	size_t n;

	if (store_mailbox_sort(mb, uids, 5, &spec, 1, &n, &err) < 0)
		fail_msg("sort: %s", err.msg);
	assert_int_equal(n, 4);
	return arena_printf(a, "%u %u %u %u", uids[0], uids[1], uids[2], uids[3]);
}

static void test_sort_and_thread_data(void **state)
{
	struct fixture *f = *state;
	struct arena *a = f->a;
	struct store_mailbox *mb = open_mb(f->u, "INBOX");
	struct store_error err = { 0 };

	/* Base subjects: "Quarterly report", "Grüße aus Köln", "Music",
	 * "Hello". */
	assert_string_equal(sorted(mb, a, STORE_SORT_SUBJECT, false), "2 4 3 1");
	assert_string_equal(sorted(mb, a, STORE_SORT_SUBJECT, true), "1 3 4 2");
	/* FROM: alice, bob, carol, oemer. */
	assert_string_equal(sorted(mb, a, STORE_SORT_FROM, false), "1 4 3 2");
	/* DISPLAYFROM: "Alice Example", bob@example.com, carol@example.net,
	 * "Ömer Zürich" (bytes: after ASCII). */
	assert_string_equal(sorted(mb, a, STORE_SORT_DISPLAYFROM, false), "1 4 3 2");
	/* TO: alice (2), bob (1, 3: the first address), none (4) first. */
	assert_string_equal(sorted(mb, a, STORE_SORT_TO, false), "4 2 1 3");
	/* DISPLAYTO: "" (4), "Alice Example" (2), "Bob" (3), bob@... (1). */
	assert_string_equal(sorted(mb, a, STORE_SORT_DISPLAYTO, false), "4 2 3 1");
	assert_string_equal(sorted(mb, a, STORE_SORT_CC, false), "2 3 4 1");
	/* DATE: msg4 has none and sorts by its internal date (now). */
	assert_string_equal(sorted(mb, a, STORE_SORT_DATE, false), "1 2 3 4");
	assert_string_equal(sorted(mb, a, STORE_SORT_ARRIVAL, true), "4 3 2 1");
	assert_string_equal(sorted(mb, a, STORE_SORT_SIZE, false), "4 1 2 3");
	/* Two keys: ties on CC ("" for 2, 3, 4) go by SIZE reversed. */
	uint32_t uids[] = { 1, 2, 3, 4 };
	struct store_sort_spec two[] = { { STORE_SORT_CC, false }, { STORE_SORT_SIZE, true } };
	size_t n;

	assert_int_equal(store_mailbox_sort(mb, uids, 4, two, 2, &n, &err), 0);
	assert_int_equal(uids[0], 3);
	assert_int_equal(uids[1], 2);
	assert_int_equal(uids[2], 4);
	assert_int_equal(uids[3], 1);

	/* Threading data and the rest of one message's keys. */
	struct store_sort_data *d;
	uint32_t want = f->uid[2];

	assert_int_equal(store_mailbox_sort_data(mb, &want, 1, a, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d->seq, 2);
	assert_string_equal(d->message_id, "<m2@example.ch>");
	assert_string_equal(d->in_reply_to, "<m1@example.org>");
	assert_string_equal(d->references, "<m0@example.org> <m1@example.org>");
	assert_string_equal(d->base_subject, "Grüße aus Köln");
	assert_string_equal(d->from, "oemer");
	assert_string_equal(d->display_from, "Ömer Zürich");
	assert_string_equal(d->to, "alice");
	assert_string_equal(d->cc, "");
	assert_int_equal(d->date, (int64_t)(D0 + 2) * DAY + 4 * 3600 + 1800);
	assert_int_equal(d->arrival, (int64_t)(D0 + 1) * DAY);
	want = f->uid[1];
	assert_int_equal(store_mailbox_sort_data(mb, &want, 1, a, &d, &n, &err), 0);
	assert_string_equal(d->base_subject, "Quarterly report");
	assert_string_equal(d->in_reply_to, "");
	store_mailbox_close(&mb);
}

/* SORT compares with i;unicode-casemap: subjects and names that differ
 * only in the case of non-ASCII letters, or in composed or decomposed
 * form, are equal keys (message order decides, RFC 5256). */
static void test_sort_unicode(void **state)
{
	struct fixture *f = *state;
	struct store_error err = { 0 };
	static const char *const msgs[] = {
		"From: =?UTF-8?B?w6RyZ2Vy?= <d@example.org>\nSubject: =?UTF-8?B?z4POv8+GzrnOsQ==?=\n\nx\n",
		"From: Zed <z@example.org>\nSubject: =?UTF-8?B?zqPOn86mzpnOkQ==?=\n\nx\n",
		"From: =?UTF-8?B?w4RSR0VS?= <b@example.org>\nSubject: Apple\n\nx\n",
		("From: =?UTF-8?Q?A=CC=88rger?= <c@example.org>\n"
		 "Subject: =?UTF-8?B?UmU6IM6jzr/Phs65zrE=?=\n\nx\n"),
	};

	assert_int_equal(store_mailbox_create(f->u, "Sorted", 0, &err), 0);
	for (size_t i = 0; i < N_ELEMENTS(msgs); i++)
		save(f->u, "Sorted", msgs[i], 0, (int64_t)(D0 + (int64_t)i) * DAY);
	struct store_mailbox *mb = open_mb(f->u, "Sorted");
	struct store_sort_spec spec[] = { { STORE_SORT_SUBJECT, false } };
	uint32_t uids[4];
	size_t n;

	/* σοφια, ΣΟΦΙΑ, Re: Σοφια share a base subject; Apple first. */
	for (uint32_t i = 0; i < 4; i++)
		uids[i] = 4 - i;
	assert_int_equal(store_mailbox_sort(mb, uids, 4, spec, 1, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(uids, ((uint32_t[]){ 3, 1, 2, 4 }), sizeof(uids));
	spec[0].reverse = true;
	assert_int_equal(store_mailbox_sort(mb, uids, 4, spec, 1, &n, &err), 0);
	assert_memory_equal(uids, ((uint32_t[]){ 1, 2, 4, 3 }), sizeof(uids));
	/* DISPLAYFROM: ärger, ÄRGER and A + U+0308 rger are one name, before
	 * Zed. */
	spec[0] = (struct store_sort_spec){ STORE_SORT_DISPLAYFROM, false };
	assert_int_equal(store_mailbox_sort(mb, uids, 4, spec, 1, &n, &err), 0);
	assert_memory_equal(uids, ((uint32_t[]){ 1, 3, 4, 2 }), sizeof(uids));
	/* The sort data itself stays as decoded. */
	struct store_sort_data *d;

	uids[0] = 2;
	assert_int_equal(store_mailbox_sort_data(mb, uids, 1, f->a, &d, &n, &err), 0);
	assert_string_equal(d->base_subject, "ΣΟΦΙΑ");
	assert_string_equal(d->display_from, "Zed");
	store_mailbox_close(&mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_folding),
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test_setup_teardown(test_flags_dates_sizes_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_and_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_combinations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_in_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunged_text_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_from_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sort_and_thread_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unicode_casemap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_during_catch_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_renamed_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_skips_expunged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sort_unicode, setup, teardown),
	};

	log_init("test-search", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
