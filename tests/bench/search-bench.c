/*
 * search-bench.c — tern-bench-search: SEARCH over a large mailbox with the
 * storage layer alone (no protocol), and the size of the full-text index.
 *
 *   tern-bench-search [--messages N] [--dir DIR] [--corpus DIR] [--word WORD]
 *
 * Builds a mailbox of N messages (default 100,000): text bodies of 1-3 KB
 * drawn from a vocabulary of made-up words, every tenth message with a
 * 30 KB base64 attachment, a rare word in three of them. The files are
 * written into cur/ and adopted by the index (which parses them and
 * fills the text index). Then times (median of 5, after one warm-up):
 * BODY for the rare word, BODY for a common word, TEXT for the rare word,
 * BODY for a two-letter string (a scan of the stored text), SUBJECT for
 * a substring; and prints the text index's size (SQLite dbstat) next to
 * the mail's. With --corpus, the messages are the *.eml files of a
 * tests/bench/corpus directory instead (in name order, again from the
 * first when N is larger), and --word the rare word searched for (the
 * corpus's .corpus.json counts the messages with each of its words). Numbers, not pass/fail; see
 * tests/bench/README.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

#define VOCAB 3000

static char vocab[VOCAB][16];
static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const struct store_error *err)
{
	fprintf(stderr, "tern-bench-search: %s: %s\n", what,
		err != NULL ? err->msg : strerror(errno));
	exit(1);
}

static void make_vocab(void)
{
	static const char *syl[] = { "ka", "ro", "mi", "ten", "sa", "lo", "ver", "nu", "di",
				     "pe", "ga", "shi", "mo", "ra", "tu", "ble", "con", "ex" };

	for (int i = 0; i < VOCAB; i++) {
		int n = 1 + (int)(next_rand() % 3);

		vocab[i][0] = '\0';
		for (int k = 0; k < n; k++)
			strcat(vocab[i], syl[next_rand() % (sizeof(syl) / sizeof(syl[0]))]);
	}
}

/* A Zipf-like pick: common words far more often. */
static const char *word(void)
{
	uint64_t r = next_rand() % VOCAB;

	return vocab[(r * r) / VOCAB];
}

static size_t make_message(char *buf, size_t size, unsigned i)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = (size_t)snprintf(buf, size,
				    "From: Sender %u <sender%u@example.org>\n"
				    "To: user@example.org\n"
				    "Subject: %s %s %s report %u\n"
				    "Date: Mon, 3 Feb 2025 10:%02u:00 +0000\n"
				    "Message-ID: <%u@bench.example.org>\n"
				    "MIME-Version: 1.0\n"
				    "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
				    "--b\nContent-Type: text/plain; charset=utf-8\n\n",
				    i % 97, i % 97, word(), word(), word(), i, i % 60, i);
	size_t words = 150 + next_rand() % 300;

	for (size_t w = 0; w < words; w++) {
		const char *s = (i % 33333 == 7 && w == words / 2) ? "quokkaphant" : word();

		n += (size_t)snprintf(buf + n, size - n, "%s%s", s, w % 12 == 11 ? "\n" : " ");
	}
	n += (size_t)snprintf(buf + n, size - n, "\n");
	if (i % 10 == 0) {
		n += (size_t)snprintf(buf + n, size - n, "--b\nContent-Type: application/pdf\n"
				      "Content-Transfer-Encoding: base64\n\n");
		for (int line = 0; line < 400; line++) {
			for (int k = 0; k < 76; k++)
				buf[n++] = b64[next_rand() % 64];
			buf[n++] = '\n';
		}
	}
	n += (size_t)snprintf(buf + n, size - n, "--b--\n");
	return n;
}

static int is_eml(const struct dirent *e)
{
	size_t l = strlen(e->d_name);

	return e->d_name[0] != '.' && l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0;
}

/* Message i from the corpus: the whole file into buf. */
static size_t corpus_message(const char *corpus, struct dirent **files, int nfiles,
			     char **buf, size_t *cap, unsigned i)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", corpus, files[i % (unsigned)nfiles]->d_name);
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path, NULL);
	if ((size_t)st.st_size > *cap) {
		*cap = (size_t)st.st_size;
		*buf = realloc(*buf, *cap);
	}
	if (read(fd, *buf, (size_t)st.st_size) != st.st_size)
		die(path, NULL);
	close(fd);
	return (size_t)st.st_size;
}

static double run(struct store_mailbox *mb, const struct store_search *c, size_t *found_r)
{
	double times[5];
	struct store_error err = { 0 };

	for (int r = -1; r < 5; r++) {
		struct arena *a = arena_new(0);
		uint32_t *uids;
		double t0 = now_ms();

		if (store_mailbox_search(mb, c, a, &uids, found_r, &err) < 0)
			die("search", &err);
		if (r >= 0)
			times[r] = now_ms() - t0;
		arena_free(&a);
	}
	/* Median of five. */
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (times[j] < times[i]) {
				double t = times[i];

				times[i] = times[j];
				times[j] = t;
			}
	return times[2];
}

/* The ENVELOPE of every message in sequence order, from the index: the
 * storage side of FETCH 1:* ENVELOPE. Returns ms; *bytes_r their size. */
static double fetch_envelopes(struct store_mailbox *mb, size_t *bytes_r)
{
	struct arena *a = arena_new(0);
	struct store_error err = { 0 };
	uint32_t count = store_mailbox_count(mb);
	size_t bytes = 0;
	double t0 = now_ms();

	for (uint32_t seq = 1; seq <= count; seq++) {
		struct store_msg_structure ms;

		if (store_msg_structure(mb, store_mailbox_msg(mb, seq)->uid, a, &ms, &err) < 0)
			die("envelope", &err);
		bytes += ms.envelope_len;
		if (seq % 1024 == 0)
			arena_reset(a);
	}
	double t = now_ms() - t0;

	arena_free(&a);
	*bytes_r = bytes;
	return t;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int main(int argc, char **argv)
{
	unsigned messages = 100000;
	const char *given = NULL, *corpus = NULL, *rare_word = "quokkaphant";
	struct dirent **files = NULL;
	int nfiles = 0;
	char base[256], dir[512], path[1024];
	struct store_error err = { 0 };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--messages") == 0)
			messages = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0)
			given = argv[i + 1];
		else if (strcmp(argv[i], "--corpus") == 0)
			corpus = argv[i + 1];
		else if (strcmp(argv[i], "--word") == 0)
			rare_word = argv[i + 1];
	}
	if (corpus != NULL && (nfiles = scandir(corpus, &files, is_eml, alphasort)) <= 0)
		die("no *.eml in the corpus", NULL);
	if (given != NULL) {
		snprintf(base, sizeof(base), "%s", given);
		if (mkdir(base, 0700) < 0 && errno != EEXIST)
			die("mkdir", NULL);
	} else {
		snprintf(base, sizeof(base), "/tmp/tern-bench-search-XXXXXX");
		if (mkdtemp(base) == NULL)
			die("mkdtemp", NULL);
	}
	snprintf(dir, sizeof(dir), "%s/user", base);
	log_init("tern-bench-search", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	make_vocab();

	struct store_user_options opt = { .create = true };
	struct store_user *u;

	if (store_user_open(dir, &opt, &u, &err) < 0)
		die("open user", &err);
	store_user_close(&u);

	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	uint64_t mail_bytes = 0;
	double t0 = now_ms();

	for (unsigned i = 0; i < messages; i++) {
		size_t len = corpus != NULL ? corpus_message(corpus, files, nfiles, &buf, &cap, i) :
			make_message(buf, cap, i);

		snprintf(path, sizeof(path), "%s/Maildir/cur/%u.M%uP1.bench:2,S", dir,
			 1700000000 + i, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
			die("write message", NULL);
		close(fd);
		mail_bytes += len;
	}
	free(buf);
	for (int i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	double t1 = now_ms();
	struct store_mailbox *mb;

	opt.create = false;
	if (store_user_open(dir, &opt, &u, &err) < 0)
		die("open user", &err);
	/* The index adopts every file: parse, message_meta, text index. */
	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		die("open", &err);
	double t2 = now_ms();

	printf("messages=%u mail_bytes=%llu write_files_ms=%.0f adopt_ms=%.0f (%.0f msg/s)\n",
	       messages, (unsigned long long)mail_bytes, t1 - t0, t2 - t1,
	       messages / ((t2 - t1) / 1000.0));

	struct store_search rare = { .kind = STORE_SEARCH_BODY, .str = rare_word };
	struct store_search common = { .kind = STORE_SEARCH_BODY, .str = vocab[1] };
	struct store_search text = { .kind = STORE_SEARCH_TEXT, .str = rare_word };
	struct store_search shrt = { .kind = STORE_SEARCH_BODY, .str = "zq" };
	struct store_search subj = { .kind = STORE_SEARCH_SUBJECT, .str = "report 4242" };
	size_t found;
	double ms;

	ms = run(mb, &rare, &found);
	printf("SEARCH BODY %s (rare): %.1f ms, %zu found\n", rare_word, ms, found);
	ms = run(mb, &text, &found);
	printf("SEARCH TEXT %s (rare): %.1f ms, %zu found\n", rare_word, ms, found);
	ms = run(mb, &common, &found);
	printf("SEARCH BODY %s (common word): %.1f ms, %zu found\n", vocab[1], ms, found);
	ms = run(mb, &shrt, &found);
	printf("SEARCH BODY zq (2 chars, scan): %.1f ms, %zu found\n", ms, found);
	ms = run(mb, &subj, &found);
	printf("SEARCH SUBJECT \"report 4242\": %.1f ms, %zu found\n", ms, found);
	ms = fetch_envelopes(mb, &found);
	printf("ENVELOPE of every message (FETCH 1:* ENVELOPE's data): %.1f ms, %zu bytes\n",
	       ms, found);
	store_mailbox_close(&mb);
	store_user_close(&u);

	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/index.sqlite", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("sqlite3_open", NULL);
	int64_t fts = query_int(db, "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'message_fts%'"
				" OR name IN ('fts_doc', 'fts_doc_docid', 'fts_pending', 'fts_gone',"
				" 'message_guid_only')");
	int64_t fts_content = query_int(db, "SELECT sum(pgsize) FROM dbstat"
					" WHERE name = 'message_fts_content'");
	int64_t text_bytes = query_int(db, "SELECT sum(length(CAST(hdr AS BLOB)) +"
				       " length(CAST(body AS BLOB))) FROM message_fts");
	int64_t total = query_int(db, "SELECT sum(pgsize) FROM dbstat");

	sqlite3_close(db);
	printf("text index: %lld bytes (%.1f%% of the mail), of which stored text %lld;"
	       " decoded text %lld bytes (%.1f%% of the mail); whole index.sqlite %lld\n",
	       (long long)fts, 100.0 * (double)fts / (double)mail_bytes, (long long)fts_content,
	       (long long)text_bytes, 100.0 * (double)text_bytes / (double)mail_bytes,
	       (long long)total);
	if (given == NULL) {
		snprintf(path, sizeof(path), "rm -rf '%s'", base);
		if (system(path) != 0)
			return 1;
	}
	return 0;
}
