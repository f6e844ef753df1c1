/*
 * fuzz-filename.c — libFuzzer target for the names that come from disk or
 * from clients: Maildir file names, folder directory names and modified
 * UTF-7. The input (a NUL-terminated copy) is tried as each of them:
 * - a file name that parses builds to a name that parses to the same
 *   struct, and building that gives the same name again;
 * - a directory name that store_dir_to_name accepts is exactly what
 *   store_name_to_dir makes of the result;
 * - modified UTF-7 that decodes encodes back to the very same bytes, and
 *   UTF-8 that encodes decodes back to itself;
 * - a mailbox name that store_name_to_dir accepts comes back from
 *   store_dir_to_name (with INBOX's case normalised).
 */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_filename(const struct store_filename *a, const struct store_filename *b)
{
	if (strcmp(a->base, b->base) != 0 || a->has_size != b->has_size ||
	    a->size != b->size || a->has_vsize != b->has_vsize ||
	    a->vsize != b->vsize || a->uid != b->uid ||
	    a->has_info != b->has_info || a->flags != b->flags ||
	    a->keywords != b->keywords)
		abort();
}

static void check_filename(const char *s)
{
	struct store_filename fn, back;
	char out[256], again[256];

	if (store_filename_parse(s, &fn) < 0)
		return;
	if (store_filename_build(&fn, out, sizeof(out)) < 0)
		abort();
	if (store_filename_parse(out, &back) < 0)
		abort();
	same_filename(&fn, &back);
	if (store_filename_build(&back, again, sizeof(again)) < 0 || strcmp(out, again) != 0)
		abort();
}

/* Round trips both ways. The buffers grow with the input, so that only a
 * real mismatch fails, never room: modified UTF-7 at most triples a
 * UTF-8 string ("&" becomes "&-"; 2-4 bytes become at most "&" + 3 + "-"),
 * and decoding grows it by less than a half. */
static void check_mutf7(const char *s)
{
	size_t n = strlen(s);
	size_t dec_size = 2 * n + 16, enc_size = 4 * n + 16;
	char *dec = malloc(dec_size), *enc = malloc(enc_size);

	if (dec == NULL || enc == NULL)
		abort();
	if (store_mutf7_decode(s, dec, dec_size) == 0) {
		if (store_mutf7_encode(dec, enc, enc_size) < 0 || strcmp(enc, s) != 0)
			abort();
	}
	if (store_mutf7_encode(s, enc, enc_size) == 0) {
		if (store_mutf7_decode(enc, dec, dec_size) < 0 || strcmp(dec, s) != 0)
			abort();
	}
	free(dec);
	free(enc);
}

static void check_names(const char *s)
{
	char name[1024], dir[1024];

	if (store_dir_to_name(s, name, sizeof(name)) == 0) {
		if (store_name_to_dir(name, dir, sizeof(dir), NULL) < 0 || strcmp(dir, s) != 0)
			abort();
	}
	if (store_name_to_dir(s, dir, sizeof(dir), NULL) == 0) {
		if (store_dir_to_name(dir, name, sizeof(name)) < 0)
			abort();
		if (strncasecmp(s, "INBOX", 5) == 0 && (s[5] == '\0' || s[5] == '/')) {
			if (strncmp(name, "INBOX", 5) != 0 || strcmp(name + 5, s + 5) != 0)
				abort();
		} else if (strcmp(name, s) != 0) {
			abort();
		}
		/* Nothing that leaves the Maildir: one path component. */
		if (strchr(dir, '/') != NULL || strcmp(dir, ".") == 0 || strcmp(dir, "..") == 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	check_filename(s);
	check_mutf7(s);
	check_names(s);
	free(s);
	return 0;
}
