/*
 * test-casemap.c — i;unicode-casemap (storage/casemap.h, RFC 5051): ASCII,
 * Latin-1 letters composed and decomposed, ß, the ligature ﬁ, full-width
 * letters, Greek final sigma, the titlecase digraph ǆ, Hangul syllables,
 * the Kelvin sign, the order of combining marks, invalid UTF-8, the
 * output's maximum; and over every code point: the form is valid UTF-8
 * and casemapping it again changes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "storage/casemap.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The form of len bytes at s, in a (NUL-terminated; *len_r its length). */
static const char *cm_n(struct arena *a, const char *s, size_t len, size_t *len_r)
{
	struct buf b;

	buf_init(&b, SIZE_MAX);
	assert_int_equal(store_casemap(&b, s, len), 0);
	char *r = arena_alloc(a, b.len + 1);

	if (b.len > 0)
		memcpy(r, b.data, b.len);
	*len_r = b.len;
	buf_release(&b);
	return r;
}

static const char *cm(struct arena *a, const char *s)
{
	size_t n;

	return cm_n(a, s, strlen(s), &n);
}

/* Every string maps to want. */
static void same(struct arena *a, const char *want, const char *const *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = cm(a, in[i]);

		if (strcmp(got, want) != 0)
			fail_msg("casemap of \"%s\": \"%s\", expected \"%s\"", in[i], got, want);
	}
}

static bool valid_utf8(const char *s, size_t len)
{
	uint32_t c;

	for (size_t i = 0; i < len;) {
		int n = utf8_decode(s + i, len - i, &c);

		if (n < 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

static void test_ascii(void **state)
{
	struct arena *a = arena_new(0);
	size_t n;

	assert_string_equal(cm(a, "Hello, World! [abc_xyz] {0~9}"), "HELLO, WORLD! [ABC_XYZ] {0~9}");
	assert_string_equal(cm(a, ""), "");
	/* NUL is a character like any other. */
	assert_memory_equal(cm_n(a, "a\0b", 3, &n), "A\0B", 3);
	assert_int_equal(n, 3);
	/* Every ASCII byte, from every offset (eight at a time, then one by
	 * one): only a-z change. */
	char all[128], want[128];

	for (int i = 0; i < 128; i++) {
		all[i] = (char)i;
		want[i] = (char)(i >= 'a' && i <= 'z' ? i - 32 : i);
	}
	for (int off = 0; off < 16; off++) {
		const char *got = cm_n(a, all + off, sizeof(all) - (size_t)off, &n);

		assert_int_equal(n, sizeof(all) - (size_t)off);
		assert_memory_equal(got, want + off, n);
	}
	arena_free(&a);
}

static void test_latin(void **state)
{
	struct arena *a = arena_new(0);
	/* é composed (U+00E9), decomposed (e U+0301), capital (U+00C9). */
	static const char *const cafe[] = { "café", "cafe\xcc\x81", "CAFÉ", "CAFE\xcc\x81",
					     "Caf\xc3\x89" };
	static const char *const koln[] = { "Köln", "KÖLN", "ko\xcc\x88ln" };

	same(a, "CAFE\xcc\x81", cafe, N_ELEMENTS(cafe));
	same(a, "KO\xcc\x88LN", koln, N_ELEMENTS(koln));
	/* ß has no one-character titlecase: it stays, and is not "SS"; the
	 * capital ẞ (U+1E9E) is another letter. */
	assert_string_equal(cm(a, "Straße"), "STRAßE");
	assert_string_equal(cm(a, "STRAẞE"), "STRAẞE");
	assert_string_not_equal(cm(a, "straße"), cm(a, "STRASSE"));
	/* Latin Extended-A, and ı (no decomposition: stays itself). */
	assert_string_equal(cm(a, "łódź"), cm(a, "ŁÓDŹ"));
	assert_string_equal(cm(a, "ı"), "I");
	arena_free(&a);
}

static void test_compatibility(void **state)
{
	struct arena *a = arena_new(0);
	static const char *const file[] = { "ﬁle", "file", "FILE", "ﬁLE" };
	static const char *const full[] = { "ＡＢＣｄｅ１２", "abcde12", "ABCDE12" };
	/* ǆ, ǅ, Ǆ (U+01C6, U+01C5, U+01C4) and D + ž in either case. */
	static const char *const dz[] = { "ǆ", "ǅ", "Ǆ", "dž", "DŽ", "dz\xcc\x8c" };
	static const char *const kelvin[] = { "\xe2\x84\xaa", "k", "K" };

	same(a, "FILE", file, N_ELEMENTS(file));
	same(a, "ABCDE12", full, N_ELEMENTS(full));
	same(a, "DZ\xcc\x8c", dz, N_ELEMENTS(dz));
	same(a, "K", kelvin, N_ELEMENTS(kelvin));
	/* Superscript, circled, the no-break space. */
	assert_string_equal(cm(a, "x² ⓐ\xc2\xa0z"), "X2 A Z");
	/* A long compatibility decomposition (U+FDFA, 18 characters). */
	assert_int_equal(strlen(cm(a, "\xef\xb7\xba")), 33);
	arena_free(&a);
}

static void test_greek(void **state)
{
	struct arena *a = arena_new(0);
	/* Final sigma, sigma and capital sigma are one letter. */
	static const char *const sigma[] = { "ς", "σ", "Σ" };
	/* ά (U+03AC), Ά (U+0386), α + U+0301. */
	static const char *const alpha[] = { "ά", "Ά", "α\xcc\x81" };

	same(a, "Σ", sigma, N_ELEMENTS(sigma));
	same(a, "Α\xcc\x81", alpha, N_ELEMENTS(alpha));
	assert_string_equal(cm(a, "ὈΔΥΣΣΕΎΣ"), cm(a, "ὀδυσσεύς"));
	assert_string_equal(cm(a, "москва ёж"), "МОСКВА Е\xcc\x88Ж");
	arena_free(&a);
}

static void test_hangul(void **state)
{
	struct arena *a = arena_new(0);

	/* 한 (U+D55C): ᄒ ᅡ ᆫ; 가 (U+AC00): ᄀ ᅡ, no final. */
	assert_string_equal(cm(a, "한"), "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
	assert_string_equal(cm(a, "가"), "\xe1\x84\x80\xe1\x85\xa1");
	/* The last syllable (U+D7A3), and the jamo themselves stay. */
	assert_string_equal(cm(a, "\xed\x9e\xa3"), "\xe1\x84\x92\xe1\x85\xb5\xe1\x87\x82");
	assert_string_equal(cm(a, "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"), cm(a, "한"));
	/* Parenthesised and half-width Hangul decompose to the same jamo. */
	assert_string_equal(cm(a, "\xe3\x88\x8e"), "(\xe1\x84\x80\xe1\x85\xa1)");
	/* CJK ideographs map to themselves. */
	assert_string_equal(cm(a, "東京"), "東京");
	arena_free(&a);
}

static void test_mark_order(void **state)
{
	struct arena *a = arena_new(0);
	/* ệ (U+1EC7): dot below (class 220) before circumflex (230), however
	 * the marks were typed. */
	static const char *const e[] = { "ệ", "e\xcc\x82\xcc\xa3", "e\xcc\xa3\xcc\x82",
					  "ê\xcc\xa3", "ẹ\xcc\x82" };

	same(a, "E\xcc\xa3\xcc\x82", e, N_ELEMENTS(e));
	/* U+0F73 is a starter whose decomposition is two marks. */
	assert_string_equal(cm(a, "\xe0\xbd\xb3"), "\xe0\xbd\xb1\xe0\xbd\xb2");
	/* Forty marks in a row: valid, and stable. */
	char s[200] = "a";

	for (int i = 0; i < 40; i++)
		strcat(s, i % 2 ? "\xcc\xa3" : "\xcc\x81");
	const char *once = cm(a, s);

	assert_true(valid_utf8(once, strlen(once)));
	assert_string_equal(cm(a, once), once);
	arena_free(&a);
}

static void test_invalid_utf8(void **state)
{
	struct arena *a = arena_new(0);
	size_t n;

#define FFFD "\xef\xbf\xbd"
	assert_string_equal(cm(a, "\xff"), FFFD);
	assert_string_equal(cm(a, "a\xc3"), "A" FFFD);
	assert_string_equal(cm(a, "\xc3(x"), FFFD "(X");
	/* Overlong, surrogate, above U+10FFFF: a U+FFFD per byte. */
	assert_string_equal(cm(a, "\xc0\xaf"), FFFD FFFD);
	assert_string_equal(cm(a, "\xed\xa0\x80"), FFFD FFFD FFFD);
	assert_string_equal(cm(a, "\xf4\x90\x80\x80"), FFFD FFFD FFFD FFFD);
	/* A stray continuation byte after a letter does not join it. */
	assert_string_equal(cm(a, "é\x80z"), "E\xcc\x81" FFFD "Z");
	/* Binary data of every byte value: valid UTF-8 out. */
	char bytes[256];

	for (int i = 0; i < 256; i++)
		bytes[i] = (char)i;
	const char *out = cm_n(a, bytes, sizeof(bytes), &n);

	assert_true(valid_utf8(out, n));
#undef FFFD
	arena_free(&a);
}

/* Every code point (surrogates aside), alone and after a letter: the form
 * is valid UTF-8 and a fixed point. */
static void test_every_code_point(void **state)
{
	struct buf one, two;
	unsigned char s[8];
	size_t changed = 0;

	buf_init(&one, SIZE_MAX);
	buf_init(&two, SIZE_MAX);
	for (uint32_t c = 0; c < 0x110000; c++) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		size_t n = 0;

		s[n++] = 'x';
		if (c < 0x80) {
			s[n++] = (unsigned char)c;
		} else if (c < 0x800) {
			s[n++] = (unsigned char)(0xc0 | (c >> 6));
			s[n++] = (unsigned char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			s[n++] = (unsigned char)(0xe0 | (c >> 12));
			s[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
			s[n++] = (unsigned char)(0x80 | (c & 0x3f));
		} else {
			s[n++] = (unsigned char)(0xf0 | (c >> 18));
			s[n++] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
			s[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
			s[n++] = (unsigned char)(0x80 | (c & 0x3f));
		}
		buf_clear(&one);
		buf_clear(&two);
		assert_int_equal(store_casemap(&one, s, n), 0);
		if (!valid_utf8((const char *)one.data, one.len))
			fail_msg("U+%04X: invalid UTF-8 out", c);
		assert_int_equal(store_casemap(&two, one.data, one.len), 0);
		if (two.len != one.len || memcmp(one.data, two.data, one.len) != 0)
			fail_msg("U+%04X: casemapping the form again changes it", c);
		changed += one.len != n || memcmp(one.data, s, n) != 0;
	}
	/* a-z, and the thousands of letters and compatibility characters. */
	assert_true(changed > 7000);
	buf_release(&one);
	buf_release(&two);
}

static void test_maximum(void **state)
{
	struct buf b;

	/* Stops between characters of the form: "CAFE", then U+0301 would
	 * not fit. */
	buf_init(&b, 5);
	assert_int_equal(store_casemap(&b, "café!", strlen("café!")), BUF_ETOOBIG);
	assert_int_equal(b.len, 4);
	assert_string_equal((const char *)b.data, "CAFE");
	buf_release(&b);
	/* The rest of the input does not fit, an ASCII run does. */
	buf_init(&b, 12);
	assert_int_equal(store_casemap(&b, "abcdefghijé0123456789", 22), BUF_ETOOBIG);
	assert_string_equal((const char *)b.data, "ABCDEFGHIJE");
	buf_release(&b);
	/* Appends to what is there. */
	buf_init(&b, 100);
	buf_append_str(&b, "x:");
	assert_int_equal(store_casemap(&b, "ﬁ", strlen("ﬁ")), 0);
	assert_string_equal((const char *)b.data, "x:FI");
	buf_release(&b);
}

static void test_strings_and_subjects(void **state)
{
	struct arena *a = arena_new(0);

	assert_string_equal(store_casemap_str(a, "Grüße"), "GRU\xcc\x88ßE");
	assert_string_equal(store_casemap_subject(a, "Quarterly report"), "QUARTERLY REPORT");
	/* A leader that shows only once casemapped: no-break space, full
	 * width letters. */
	assert_string_equal(store_casemap_subject(a, "\xc2\xa0Re: ﬁle"), "FILE");
	assert_string_equal(store_casemap_subject(a, "ＲＥ： Köln"), "KO\xcc\x88LN");
	assert_string_equal(store_casemap_subject(a, ""), "");
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii),
		cmocka_unit_test(test_latin),
		cmocka_unit_test(test_compatibility),
		cmocka_unit_test(test_greek),
		cmocka_unit_test(test_hangul),
		cmocka_unit_test(test_mark_order),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_every_code_point),
		cmocka_unit_test(test_maximum),
		cmocka_unit_test(test_strings_and_subjects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
