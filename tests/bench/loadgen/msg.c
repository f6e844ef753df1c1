/*
 * msg.c — the messages tern-bench delivers (LMTP) and appends (IMAP).
 *
 * With --corpus DIR every regular file of DIR (sorted by name) is read once
 * at start, its line ends turned into CR LF, and kept in memory in the
 * forms needed: as is for IMAP APPEND, dot-stuffed for LMTP DATA. Messages
 * are then sent round-robin, straight from those buffers.
 *
 * Otherwise each message is made of a header written for it (Message-ID,
 * To, Subject carry its number) and a body shared by every message: text
 * lines of 78 characters and no '.', so it needs no stuffing. The body sent
 * is the tail of a buffer of --size bytes, as long as the message needs to
 * be exactly --size bytes with its header; its first line may be shorter,
 * which is still a fine body.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CORPUS_MAX_FILES 2000000
#define CORPUS_MAX_BYTES (UINT64_C(8) << 30)
#define BODY_LINE 78

struct corpus_msg {
	char *plain;   /* CRLF */
	size_t plain_len;
	char *stuffed; /* CRLF, dot-stuffed */
	size_t stuffed_len;
};

static struct corpus_msg *corpus;
static size_t corpus_n;
static uint64_t corpus_next;
static char *body;      /* generated: bench_opt.size bytes */
static char date_hdr[64];

/* LF or CRLF in, CRLF out (a final line end added if missing); with
 * stuff, a '.' starting a line is doubled. */
static char *to_crlf(const char *in, size_t len, bool stuff, size_t *len_r)
{
	size_t extra = 2;
	char *out;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			extra++;
		if (stuff && in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			extra++;
	}
	out = bench_xcalloc(1, len + extra + 1);
	for (size_t i = 0; i < len; i++) {
		if (stuff && in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			out[o++] = '.';
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	if (o < 2 || out[o - 2] != '\r' || out[o - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	*len_r = o;
	return out;
}

static int read_file(const char *path, char **data_r, size_t *len_r, const char **error_r)
{
	static char err[512];
	struct stat st;
	char *data;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		*error_r = err;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	data = bench_xcalloc(1, (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n <= 0) {
			snprintf(err, sizeof(err), "%s: %s", path,
				 n < 0 ? strerror(errno) : "shorter than its size");
			*error_r = err;
			free(data);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	*data_r = data;
	*len_r = got;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_corpus(const char *dir, bool plain, bool stuffed, const char **error_r)
{
	static char err[512];
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;

	if (d == NULL) {
		snprintf(err, sizeof(err), "--corpus %s: %s", dir, strerror(errno));
		*error_r = err;
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == CORPUS_MAX_FILES)
			break;
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			names = bench_xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = bench_xstrdup(path);
	}
	closedir(d);
	if (n == 0) {
		snprintf(err, sizeof(err), "--corpus %s: no files", dir);
		*error_r = err;
		free(names);
		return -1;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	corpus = bench_xcalloc(n, sizeof(*corpus));
	for (size_t i = 0; i < n; i++) {
		char *raw;
		size_t len;

		if (read_file(names[i], &raw, &len, error_r) < 0) {
			for (size_t j = i; j < n; j++)
				free(names[j]);
			free(names);
			return -1;
		}
		/* The size of a message is that of its CRLF form. */
		corpus[i].plain = to_crlf(raw, len, false, &corpus[i].plain_len);
		if (!plain) {
			free(corpus[i].plain);
			corpus[i].plain = NULL;
		}
		if (stuffed)
			corpus[i].stuffed = to_crlf(raw, len, true, &corpus[i].stuffed_len);
		total += (plain ? corpus[i].plain_len : 0) + corpus[i].stuffed_len;
		free(raw);
		free(names[i]);
		corpus_n++;
		if (total > CORPUS_MAX_BYTES) {
			*error_r = "--corpus: more than 8 GiB";
			for (size_t j = i + 1; j < n; j++)
				free(names[j]);
			free(names);
			return -1;
		}
	}
	free(names);
	return 0;
}

static void make_body(size_t size)
{
	static const char words[] =
		"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
		"tempor incididunt ut labore et dolore magna aliqua ut enim ad minim "
		"veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea "
		"commodo consequat duis aute irure dolor in reprehenderit in voluptate ";
	size_t w = 0;

	body = bench_xcalloc(1, size + 1);
	for (size_t i = 0; i < size; i++) {
		size_t col = i % (BODY_LINE + 2);

		if (col == BODY_LINE)
			body[i] = '\r';
		else if (col == BODY_LINE + 1)
			body[i] = '\n';
		else
			body[i] = words[w++ % (sizeof(words) - 1)];
	}
	/* End with CR LF whatever the size. */
	if (size >= 2) {
		body[size - 2] = '\r';
		body[size - 1] = '\n';
	}
}

int bench_msg_init(bool plain, bool stuffed, const char **error_r)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date_hdr, sizeof(date_hdr), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (bench_opt.corpus != NULL)
		return load_corpus(bench_opt.corpus, plain, stuffed, error_r);
	make_body(bench_opt.size);
	return 0;
}

void bench_msg_next(struct bench_msg *m, bool stuffed, uint64_t seq,
		    unsigned int client, const char *to)
{
	int n;

	if (corpus != NULL) {
		const struct corpus_msg *c = &corpus[corpus_next++ % corpus_n];

		m->hdr_len = 0;
		m->body = stuffed ? c->stuffed : c->plain;
		m->body_len = stuffed ? c->stuffed_len : c->plain_len;
		m->size = c->plain_len;
		return;
	}
	n = snprintf(m->hdr, sizeof(m->hdr),
		     "From: tern-bench <%s>\r\n"
		     "To: <%s>\r\n"
		     "Subject: tern-bench message %u.%llu\r\n"
		     "Date: %s\r\n"
		     "Message-ID: <%llu.%u.%ld@tern-bench.example.org>\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=us-ascii\r\n"
		     "\r\n",
		     bench_opt.from, to, client + 1, (unsigned long long)seq, date_hdr,
		     (unsigned long long)seq, client + 1, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(m->hdr))
		bench_die("message header too long");
	m->hdr_len = (size_t)n;
	/* The body makes the message --size bytes (2 at least). */
	m->body_len = bench_opt.size > m->hdr_len + 2 ? bench_opt.size - m->hdr_len : 2;
	m->body = body + bench_opt.size - m->body_len;
	m->size = m->hdr_len + m->body_len;
}
