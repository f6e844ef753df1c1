/*
 * test-names.c — mailbox names (storage/names.c): modified UTF-7 in both
 * directions with RFC 3501's vectors, the canonical-form checks of the
 * decoder, name validation against the path tricks of ROBUSTNESS.md §17-18,
 * the Maildir++ directory mapping and its round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BIG 1024

/* UTF-8 <-> modified UTF-7 pairs that must map to each other exactly. */
static const struct {
	const char *utf8;
	const char *mutf7;
} vectors[] = {
	/* RFC 3501 §5.1.3 */
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "&", "&-" },
	{ "&&", "&-&-" },
	{ "a&b", "a&-b" },
	{ "&-", "&--" },
	{ " !\"#$%'()*+,-./:;<=>?@[\\]^_`{|}~", " !\"#$%'()*+,-./:;<=>?@[\\]^_`{|}~" },
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "Gr\xc3\xb6\xc3\x9f" "e/\xc3\x84rger", "Gr&APYA3w-e/&AMQ-rger" },
	{ "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
	  "&BB8EQAQ4BDIENQRC- &BDwEOARA-" },
	{ "\xc3\xa4&\xc3\xbc", "&AOQ-&-&APw-" },
	/* Astral code points as surrogate pairs. */
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
	{ "\xf0\x90\x80\x80", "&2ADcAA-" },
	{ "\xf4\x8f\xbf\xbf", "&2,,f,w-" },
	{ "\xf0\x9f\x98\x80" "a\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "&2D3eAA-a&2D3eANg93gA-" },
	/* Control characters and the C1 range are encoded, not copied. */
	{ "\t", "&AAk-" },
	{ "\x7f", "&AH8-" },
	{ "\xc2\x80", "&AIA-" },
	{ "\xc2\xa0", "&AKA-" },
	{ "\xef\xbf\xbd", "&,,0-" },
};

static void test_mutf7_vectors(void **state)
{
	char out[BIG];

	for (size_t i = 0; i < N_ELEMENTS(vectors); i++) {
		assert_int_equal(store_mutf7_encode(vectors[i].utf8, out, sizeof(out)), 0);
		assert_string_equal(out, vectors[i].mutf7);
		assert_int_equal(store_mutf7_decode(vectors[i].mutf7, out, sizeof(out)), 0);
		assert_string_equal(out, vectors[i].utf8);
	}
}

static void test_mutf7_decode_rejects_non_canonical(void **state)
{
	static const char *const bad[] = {
		"&U,BTFw-&ZeVnLIqe-",   /* RFC 3501: adjacent runs */
		"&AOQ-&APw-",
		"&AGE-",                /* 'a' encoded */
		"&ACY-",                /* '&' encoded */
		"&AC4ALgAv-",           /* "../" encoded */
		"x&AC4ALgAv-",
		"&ACA-",                /* ' ' encoded */
		"&AH4-",                /* '~' encoded */
		"&AOQAYQ-",             /* 'a' inside a run */
		"&AAA-",                /* U+0000 */
		"&",                    /* no '-' */
		"a&",
		"&AOQ",
		"&AOQ.",
		"&AOQ!-",               /* bad base64 */
		"&AO/-",                /* '/' instead of ',' */
		"&AO=-",
		"&AOR-",                /* leftover bits not zero */
		"&AOQA-",               /* 6 or more leftover bits */
		"&A-",
		"&AA-",
		"&2D0-",                /* high surrogate alone */
		"&2D3YPQ-",             /* high surrogate twice */
		"&2D0AYQ-",             /* high surrogate + 'a' */
		"&3gA-",                /* low surrogate alone */
		"&2D0-x&3gA-",          /* a pair split over two runs */
		"\xc3\xa4",             /* raw 8-bit */
		"a\x80",
		"a\tb",                 /* raw control */
		"a\nb",
		"\r",
		"\x7f",
		"\x1b[0m",
	};
	char out[BIG];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		memset(out, 'x', sizeof(out));
		if (store_mutf7_decode(bad[i], out, sizeof(out)) != -1)
			fail_msg("decoded \"%s\"", bad[i]);
		assert_string_equal(out, "");
	}
}

static void test_mutf7_encode_rejects_bad_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",                 /* stray continuation */
		"a\xbf",
		"\xc3",                 /* truncated */
		"\xc3(",
		"\xe2\x82",
		"\xf0\x9f\x98",
		"\xc0\xaf",             /* overlongs */
		"\xc1\xbf",
		"\xe0\x80\xaf",
		"\xe0\x9f\xbf",
		"\xf0\x80\x80\xaf",
		"\xf0\x8f\xbf\xbf",
		"\xed\xa0\x80",         /* surrogates */
		"\xed\xbf\xbf",
		"\xed\xa0\xbd\xed\xb8\x80",
		"\xf4\x90\x80\x80",     /* above U+10FFFF */
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80",
		"\xfe",
		"\xff",
	};
	char out[BIG];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		if (store_mutf7_encode(bad[i], out, sizeof(out)) != -1)
			fail_msg("encoded bad UTF-8 #%zu", i);
		assert_string_equal(out, "");
	}
	/* The edges of the valid ranges. */
	assert_int_equal(store_mutf7_encode("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf"
					    "\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
					    out, sizeof(out)), 0);
}

static void test_mutf7_buffer_size(void **state)
{
	char out[32];

	/* "Entw&APw-rfe" is 12 bytes: 13 with the NUL. */
	assert_int_equal(store_mutf7_encode("Entw\xc3\xbcrfe", out, 12), -1);
	assert_string_equal(out, "");
	assert_int_equal(store_mutf7_encode("Entw\xc3\xbcrfe", out, 13), 0);
	assert_string_equal(out, "Entw&APw-rfe");
	/* "Entwürfe" is 9 bytes: 10 with the NUL. */
	assert_int_equal(store_mutf7_decode("Entw&APw-rfe", out, 9), -1);
	assert_string_equal(out, "");
	assert_int_equal(store_mutf7_decode("Entw&APw-rfe", out, 10), 0);
	assert_string_equal(out, "Entw\xc3\xbcrfe");
	assert_int_equal(store_mutf7_encode("", out, 1), 0);
	assert_int_equal(store_mutf7_decode("", out, 1), 0);
	assert_int_equal(store_mutf7_encode("", out, 0), -1);
	assert_int_equal(store_mutf7_decode("&-", out, 1), -1);
}

/* ------------------------------------------------------------- names */

static const struct {
	const char *name;
	const char *dir;
	const char *back;       /* store_dir_to_name(dir); NULL: same as name */
} good_names[] = {
	{ "INBOX", "", NULL },
	{ "inbox", "", "INBOX" },
	{ "InBoX", "", "INBOX" },
	{ "Archive", ".Archive", NULL },
	{ "Archive/2024", ".Archive.2024", NULL },
	{ "Entw\xc3\xbcrfe", ".Entw&APw-rfe", NULL },
	{ "\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  ".&U,BTFw-.&ZeVnLIqe-", NULL },
	{ "INBOX/child", ".INBOX.child", NULL },
	{ "inbox/Child", ".INBOX.Child", "INBOX/Child" },
	{ "Archive/inbox", ".Archive.inbox", NULL },
	{ "Archive/INBOX", ".Archive.INBOX", NULL },
	{ "INBOXES", ".INBOXES", NULL },
	{ "a&b", ".a&-b", NULL },
	{ "&", ".&-", NULL },
	{ "Sent \"quoted\"", ".Sent \"quoted\"", NULL },
	{ "back\\slash", ".back\\slash", NULL },
	{ "a~b/~c", ".a~b.~c", NULL },
	{ "*%", ".*%", NULL },
	{ " ", ". ", NULL },
	{ "a/tmp", ".a.tmp", NULL },
	{ "a/cur/new", ".a.cur.new", NULL },
	{ "Tmp", ".Tmp", NULL },
	{ "curly", ".curly", NULL },
	{ "INBOX/tmpx", ".INBOX.tmpx", NULL },
	{ "\xf0\x9f\x98\x80", ".&2D3eAA-", NULL },
	{ "-", ".-", NULL },
	{ "dovecot-keywords", ".dovecot-keywords", NULL },
};

static void test_name_to_dir(void **state)
{
	char dir[BIG], name[BIG];
	const char *why;

	for (size_t i = 0; i < N_ELEMENTS(good_names); i++) {
		why = NULL;
		if (store_name_to_dir(good_names[i].name, dir, sizeof(dir), &why) != 0)
			fail_msg("\"%s\" refused: %s", good_names[i].name, why);
		assert_string_equal(dir, good_names[i].dir);
		assert_int_equal(store_dir_to_name(dir, name, sizeof(name)), 0);
		assert_string_equal(name, good_names[i].back != NULL ?
				    good_names[i].back : good_names[i].name);
	}
}

static void test_name_refused(void **state)
{
	static const char *const bad[] = {
		/* ROBUSTNESS §17 */
		"../x", "a/../../x", "/etc", "~root", "a//b", "./a", "INBOX/tmp",
		"cur",
		/* more of the kind */
		"", "/", "//", ".", "..", "...", "a/.", "a/..", "./", "../", "a/",
		"INBOX/", "/INBOX", ".a", "a.", "a.b", "a/b.c", ".INBOX", "~",
		"~/x", "new", "tmp", "cur/x", "tmp/x", "INBOX/cur", "INBOX/new",
		"inbox/tmp", "Inbox/cur/x", "..\xe2\x80\xa6",
		/* ROBUSTNESS §18: control characters, bad UTF-8 */
		"a\rb", "a\nb", "a\r\n", "\n", "a\tb", "\x01", "\x1b[0m", "a\x7f",
		"a\xc2\x85" "b",        /* NEL (C1) */
		"\xc2\x9f",
		"\xc3(", "\x80", "\xff", "a\xc3",
		"\xc0\xae\xc0\xae/x",   /* overlong "..": never '.' in disguise */
		"\xc0\xaf" "etc",       /* overlong '/' */
		"\xed\xa0\x80", "\xf4\x90\x80\x80",
	};
	char dir[BIG];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		const char *why = NULL;

		memset(dir, 'x', sizeof(dir));
		if (store_name_to_dir(bad[i], dir, sizeof(dir), &why) != -1)
			fail_msg("bad name #%zu accepted as \"%s\"", i, dir);
		assert_non_null(why);
		assert_string_equal(dir, "");
	}
	/* why_r may be NULL. */
	assert_int_equal(store_name_to_dir("../x", dir, sizeof(dir), NULL), -1);
}

static void test_name_limits(void **state)
{
	char name[BIG], dir[BIG], back[BIG];
	const char *why;

	/* STORE_NAME_MAX bytes of ASCII are one too many on disk (the '.'),
	 * one more is too long as a name; 300 bytes too. */
	memset(name, 'a', STORE_NAME_MAX);
	name[STORE_NAME_MAX] = '\0';
	why = NULL;
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	assert_string_equal(why, "name too long on disk");
	memset(name, 'a', 300);
	name[STORE_NAME_MAX + 1] = '\0';
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	assert_string_equal(why, "name too long");
	name[300] = '\0';
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	/* 254 bytes + '.' = 255 on disk; 255 would be 256. */
	memset(name, 'a', 254);
	name[254] = '\0';
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), 0);
	assert_int_equal(strlen(dir), 255);
	assert_int_equal(store_dir_to_name(dir, back, sizeof(back)), 0);
	assert_string_equal(back, name);

	/* Depth: 16 levels pass, 17 do not. */
	name[0] = '\0';
	for (int i = 0; i < STORE_DEPTH_MAX; i++)
		strcat(name, i == 0 ? "d" : "/d");
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), 0);
	assert_string_equal(dir, ".d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d");
	strcat(name, "/d");
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	assert_int_equal(store_dir_to_name(".d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d",
					   back, sizeof(back)), -1);

	/* Short in UTF-8, too long on disk: 63 emoji are 252 bytes and 126
	 * UTF-16 units, 339 bytes in modified UTF-7. */
	name[0] = '\0';
	for (int i = 0; i < 63; i++)
		strcat(name, "\xf0\x9f\x98\x80");
	assert_int_equal(strlen(name), 252);
	why = NULL;
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	assert_non_null(why);
	/* Alternating "a\xc3\xa4" doubles in size: 85 of them are 255 bytes. */
	name[0] = '\0';
	for (int i = 0; i < 85; i++)
		strcat(name, "a\xc3\xa4");
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	/* ".(a&AOQ-)*50" is 301 bytes: too long; 42 of them are 253. */
	name[50 * 3] = '\0';
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), -1);
	name[42 * 3] = '\0';
	assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), &why), 0);
	assert_int_equal(strlen(dir), 253);
	assert_int_equal(store_dir_to_name(dir, back, sizeof(back)), 0);
	assert_string_equal(back, name);
}

static void test_name_buffer_size(void **state)
{
	char dir[16], name[16];
	const char *why = NULL;

	/* ".Archive" needs 9 bytes. */
	assert_int_equal(store_name_to_dir("Archive", dir, 8, &why), -1);
	assert_non_null(why);
	assert_string_equal(dir, "");
	assert_int_equal(store_name_to_dir("Archive", dir, 9, &why), 0);
	assert_string_equal(dir, ".Archive");
	assert_int_equal(store_name_to_dir("INBOX", dir, 0, &why), -1);
	assert_int_equal(store_name_to_dir("INBOX", dir, 1, &why), 0);
	assert_string_equal(dir, "");
	assert_int_equal(store_dir_to_name(".Archive", name, 7), -1);
	assert_string_equal(name, "");
	assert_int_equal(store_dir_to_name(".Archive", name, 8), 0);
	assert_string_equal(name, "Archive");
	assert_int_equal(store_dir_to_name("", name, 5), -1);
	assert_int_equal(store_dir_to_name("", name, 6), 0);
	assert_string_equal(name, "INBOX");
}

static void test_dir_to_name_ignores(void **state)
{
	static const char *const bad[] = {
		".", "..", "...", ".a..b", ".a.", "..a", ".a.b.", "cur", "new",
		"tmp", "a", "Archive", "a.b", " .a",
		".cur", ".new", ".tmp", ".cur.x", ".INBOX.tmp", ".INBOX.cur",
		".INBOX", ".inbox", ".Inbox", ".inbox.x", ".Inbox.x", ".~root",
		".~", ".a/b", "./a", ".a&b", ".&", ".&AGE-", ".&AC4ALgAv-",
		".&AC4-", ".&AC8-", ".&AAo-", ".a&AA0ACg-b", ".&AH8-", ".&AIU-",
		".&AOQ-&APw-", ".&2D0-", ".\xc3\xa4", ".a\tb", ".a\nb",
		".&U,BTFw-&ZeVnLIqe-",
	};
	char name[BIG];

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		memset(name, 'x', sizeof(name));
		if (store_dir_to_name(bad[i], name, sizeof(name)) != -1)
			fail_msg("directory #%zu \"%s\" taken as \"%s\"", i, bad[i], name);
		assert_string_equal(name, "");
	}
	/* A directory name longer than NAME_MAX cannot exist. */
	memset(name, 'a', 300);
	name[0] = '.';
	name[300] = '\0';
	char out[BIG];

	assert_int_equal(store_dir_to_name(name, out, sizeof(out)), -1);
}

/* ------------------------------------------------------ round trips */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static size_t put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | (cp >> 6));
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | (cp >> 12));
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | (cp >> 18));
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A random code point allowed in a name (no '.', '/', controls). */
static uint32_t random_char(void)
{
	for (;;) {
		uint32_t cp;

		switch (rnd(6)) {
		case 0:
		case 1:
			cp = 0x20 + rnd(0x5f);
			break;
		case 2:
			cp = '&';
			break;
		case 3:
			cp = 0xa0 + rnd(0x700);
			break;
		case 4:
			cp = 0x800 + rnd(0x10000 - 0x800);
			break;
		default:
			cp = 0x10000 + rnd(0x100000);
			break;
		}
		if (cp == '.' || cp == '/' || (cp >= 0xd800 && cp <= 0xdfff))
			continue;
		return cp;
	}
}

static void test_random_round_trips(void **state)
{
	char name[BIG], dir[BIG], back[BIG], enc[BIG], dec[BIG];
	int accepted = 0;

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 0;
		uint32_t depth = 1 + rnd(4);

		for (uint32_t d = 0; d < depth; d++) {
			uint32_t len = 1 + rnd(12);

			if (d > 0)
				name[n++] = '/';
			for (uint32_t i = 0; i < len; i++)
				n += put_utf8(name + n, random_char());
		}
		name[n] = '\0';

		/* Every valid UTF-8 string round-trips through mUTF-7. */
		assert_int_equal(store_mutf7_encode(name, enc, sizeof(enc)), 0);
		assert_int_equal(store_mutf7_decode(enc, dec, sizeof(dec)), 0);
		assert_string_equal(dec, name);

		const char *why = NULL;

		if (store_name_to_dir(name, dir, sizeof(dir), &why) < 0) {
			/* Only a few reasons may refuse a random name. */
			if (n <= STORE_NAME_MAX && name[0] != '~' &&
			    strcmp(why, "name too long on disk") != 0 &&
			    strcmp(why, "reserved name") != 0)
				fail_msg("\"%s\" refused: %s", name, why);
			continue;
		}
		accepted++;
		assert_int_equal(store_dir_to_name(dir, back, sizeof(back)), 0);
		if (strncasecmp(name, "INBOX", 5) == 0 &&
		    (name[5] == '\0' || name[5] == '/'))
			memcpy(name, "INBOX", 5);
		assert_string_equal(back, name);
	}
	assert_true(accepted > 15000);
}

/* Strings built from the characters that matter to the decoder: whatever
 * it accepts, the encoder writes back byte for byte. */
static void test_random_decode_canonical(void **state)
{
	static const char alphabet[] = "&-&-AAOQA,+gk2D3e.a/ \x7f\xc3";
	char in[64], dec[BIG], enc[BIG], name[BIG], dir[BIG];
	int decoded = 0;

	for (int iter = 0; iter < 200000; iter++) {
		uint32_t len = rnd(16);

		/* in + 1 is the string; in is the same as a directory. */
		in[0] = '.';
		for (uint32_t i = 1; i <= len; i++)
			in[i] = alphabet[rnd(sizeof(alphabet) - 1)];
		in[len + 1] = '\0';
		if (store_mutf7_decode(in + 1, dec, sizeof(dec)) == 0) {
			decoded++;
			assert_int_equal(store_mutf7_encode(dec, enc, sizeof(enc)), 0);
			assert_string_equal(enc, in + 1);
		}
		/* Whatever directory is accepted maps back to itself. */
		if (store_dir_to_name(in, name, sizeof(name)) == 0) {
			assert_int_equal(store_name_to_dir(name, dir, sizeof(dir), NULL), 0);
			assert_string_equal(dir, in);
		}
	}
	assert_true(decoded > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutf7_vectors),
		cmocka_unit_test(test_mutf7_decode_rejects_non_canonical),
		cmocka_unit_test(test_mutf7_encode_rejects_bad_utf8),
		cmocka_unit_test(test_mutf7_buffer_size),
		cmocka_unit_test(test_name_to_dir),
		cmocka_unit_test(test_name_refused),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_name_buffer_size),
		cmocka_unit_test(test_dir_to_name_ignores),
		cmocka_unit_test(test_random_round_trips),
		cmocka_unit_test(test_random_decode_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
