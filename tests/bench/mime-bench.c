/*
 * mime-bench.c — parse throughput of the MIME parser (storage/mime.c) with
 * ENVELOPE and BODYSTRUCTURE built from the result, as a save does:
 *   tern-bench-mime [CORPUS_DIR]
 * 1. every *.eml of the corpus (default tests/data/mime; or a directory
 *    made by tests/bench/corpus), parsed over and over for about two
 *    seconds: MB/s of message bytes and messages/s;
 * 2. a generated 100 MB message (10 MB of text, a 90 MB base64
 *    attachment), fed in 64 KiB pieces: MB/s and the parser's own memory
 *    at the end (it does not hold the message).
 * Numbers, not pass/fail: see README.md.
 */
#include "storage/mime-private.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct msg {
	char *data;
	size_t len;
};

static void parse_one(const char *data, size_t len, size_t piece, size_t *footprint_r)
{
	struct mime_parser *p = mime_parser_new();
	struct buf out;

	for (size_t off = 0; off < len; off += piece)
		mime_parser_feed(p, data + off, len - off < piece ? len - off : piece);
	struct mime_part *root = mime_parser_finish(p);

	buf_init(&out, 64 << 20);
	mime_write_envelope(&out, root);
	mime_write_bodystructure(&out, root, true);
	mime_write_bodystructure(&out, root, false);
	if (footprint_r != NULL)
		*footprint_r = mime_parser_footprint(p);
	buf_release(&out);
	mime_parser_free(&p);
}

static size_t load_corpus(const char *dir, struct msg *msgs, size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (d == NULL) {
		perror(dir);
		exit(1);
	}
	while ((e = readdir(d)) != NULL && n < max) {
		size_t l = strlen(e->d_name);
		char path[4096];

		if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");

		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		msgs[n].len = (size_t)ftell(f);
		rewind(f);
		msgs[n].data = malloc(msgs[n].len + 1);
		if (fread(msgs[n].data, 1, msgs[n].len, f) != msgs[n].len) {
			fclose(f);
			continue;
		}
		fclose(f);
		n++;
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/data/mime";
	static struct msg msgs[4096];
	size_t n = load_corpus(dir, msgs, N_ELEMENTS(msgs));
	double bytes = 0, t0 = now_s(), t;
	unsigned rounds = 0;

	if (n == 0) {
		fprintf(stderr, "no *.eml in %s\n", dir);
		return 1;
	}
	do {
		for (size_t i = 0; i < n; i++) {
			parse_one(msgs[i].data, msgs[i].len, 65536, NULL);
			bytes += (double)msgs[i].len;
		}
		rounds++;
		t = now_s() - t0;
	} while (t < 2.0);
	printf("corpus: %zu messages x %u rounds, %.1f MB in %.2f s: %.0f MB/s, %.0f messages/s\n",
	       n, rounds, bytes / 1e6, t, bytes / 1e6 / t, (double)n * rounds / t);

	/* The 100 MB message, generated in memory first. */
	size_t cap = 101 * 1000 * 1000, len = 0;
	char *big = malloc(cap);
	static const char head[] = "From: big@example.test\nSubject: big\n"
		"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n";
	static const char mid[] = "--B\nContent-Type: application/octet-stream\n"
		"Content-Transfer-Encoding: base64\n\n";

	memcpy(big + len, head, sizeof(head) - 1);
	len += sizeof(head) - 1;
	while (len < 10 * 1000 * 1000) {
		memcpy(big + len, "The quick brown fox jumps over the lazy dog, again and again.\n", 62);
		len += 62;
	}
	memcpy(big + len, mid, sizeof(mid) - 1);
	len += sizeof(mid) - 1;
	while (len < 100 * 1000 * 1000) {
		memcpy(big + len, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n", 73);
		len += 73;
	}
	memcpy(big + len, "--B--\n", 6);
	len += 6;
	size_t footprint;

	t0 = now_s();
	parse_one(big, len, 65536, &footprint);
	t = now_s() - t0;
	printf("100 MB message: %.1f MB in %.2f s: %.0f MB/s, parser memory %zu KiB\n",
	       (double)len / 1e6, t, (double)len / 1e6 / t, footprint / 1024);
	free(big);
	for (size_t i = 0; i < n; i++)
		free(msgs[i].data);
	return 0;
}
