/*
 * store-bench.c — tern-bench-store: timings of the storage layer on its
 * own, the work behind SELECT and delivery, without any protocol:
 *
 *   tern-bench-store bigbox [--messages N] [--dir DIR]
 *       a mailbox of N messages (default 100,000): open it (SELECT),
 *       open it again right after flag changes on 1,000 messages, and map
 *       every sequence number to its UID and flags;
 *   tern-bench-store mailops [--count N] [--dir DIR]
 *       N messages of 4 KiB saved, then COPY of all N to another folder,
 *       MOVE of all N to a third, EXPUNGE of the copies: each timed;
 *   tern-bench-store deliver [--writers W] [--count N] [--size BYTES]
 *                            [--pairs P]
 *       durable deliveries of N messages by W threads of one process
 *       (each its own session, as LMTP connections are), stored as
 *       tern-lmtpd stores them (text left for background indexing, the
 *       index read without a mapping); with --pairs, P alternating runs of
 *       one writer and of W, and the ratio of their rates.
 *
 * Numbers, not pass/fail; see tests/bench/README.md. The mailbox is built
 * by writing the files straight into cur/ and letting the index adopt them
 * (much faster than N durable deliveries).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const struct store_error *err)
{
	fprintf(stderr, "tern-bench-store: %s: %s\n", what, err != NULL ? err->msg : strerror(errno));
	exit(1);
}

static struct store_user *open_user(const char *dir, bool create)
{
	struct store_user_options opt = { .create = create };
	struct store_error err = { 0 };
	struct store_user *u;

	if (store_user_open(dir, &opt, &u, &err) < 0)
		die("open user", &err);
	return u;
}

/* The directory make_tempdir made, unless it was given. */
static void remove_tempdir(const char *dir, const char *given)
{
	char cmd[600];

	if (given != NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void make_tempdir(char *dir, size_t size, const char *given)
{
	if (given != NULL) {
		snprintf(dir, size, "%s", given);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			die("mkdir", NULL);
		return;
	}
	snprintf(dir, size, "/tmp/tern-bench-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", NULL);
}

static void bigbox(unsigned messages, const char *given_dir)
{
	char base[256], dir[512];
	struct store_error err = { 0 };

	make_tempdir(base, sizeof(base), given_dir);
	snprintf(dir, sizeof(dir), "%s/user", base);
	store_user_close(&(struct store_user *){ open_user(dir, true) });

	/* Files in cur/ as another program would leave them, with S= and W=
	 * so the adoption need not read them. */
	double t0 = now_ms();
	char path[1024], body[2048];

	for (unsigned i = 0; i < messages; i++) {
		int len = snprintf(body, sizeof(body),
				   "From: sender%u@example.org\nTo: user@example.org\n"
				   "Subject: message %u\nMessage-ID: <%u@bench>\n\n"
				   "Body of message %u.\n", i % 97, i, i, i);
		int lfs = 6;

		snprintf(path, sizeof(path), "%s/Maildir/cur/%u.M%uP1.bench,S=%d,W=%d:2,%s", dir,
			 1700000000 + i, i, len, len + lfs, i % 3 == 0 ? "S" : "");
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || write(fd, body, (size_t)len) != len)
			die("write message", NULL);
		close(fd);
	}
	double t1 = now_ms();
	struct store_user *u = open_user(dir, false);
	struct store_mailbox *mb;

	/* First open: the index adopts every file (a one-time cost). */
	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		die("first open", &err);
	double t2 = now_ms();

	printf("bigbox: messages=%u write_files_ms=%.0f adopt_ms=%.0f\n", messages, t1 - t0, t2 - t1);
	store_mailbox_close(&mb);

	for (int round = 0; round < 5; round++) {
		double a = now_ms();

		if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
			die("open", &err);
		double b = now_ms();
		uint64_t sum = 0;

		for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
			const struct store_msg *m = store_mailbox_msg(mb, seq);

			sum += m->uid + m->flags;
		}
		double c = now_ms();

		/* Flag changes by another session on 1,000 messages. */
		struct store_mailbox *other;
		uint32_t uids[1000];

		if (store_mailbox_open(u, "INBOX", &other, &err) < 0)
			die("open", &err);
		for (unsigned i = 0; i < 1000; i++)
			uids[i] = store_mailbox_msg(other, 1 + (i * 97 + (unsigned)round) %
						    store_mailbox_count(other))->uid;
		double d = now_ms();

		if (store_mailbox_set_flags(other, uids, 1000, round % 2 == 0 ? STORE_FLAGS_ADD :
					    STORE_FLAGS_REMOVE, STORE_FLAG_FLAGGED, NULL, 0, 0,
					    NULL, &err) < 0)
			die("set flags", &err);
		double e = now_ms();
		struct store_mailbox *again;

		if (store_mailbox_open(u, "INBOX", &again, &err) < 0)
			die("open", &err);
		double g = now_ms();

		if (store_mailbox_sync(mb, &err) < 0)
			die("sync", &err);
		double h = now_ms();

		printf("round %d: open_ms=%.1f map_all_ms=%.2f store_1000_ms=%.1f "
		       "open_after_flags_ms=%.1f sync_after_flags_ms=%.1f (checksum %llu)\n",
		       round, b - a, c - b, e - d, g - e, h - g, (unsigned long long)sum);
		if (round == 4) {
			/* Once the directory times have settled, nothing is rescanned. */
			struct store_mailbox *settled;

			sleep(3);
			double i = now_ms();

			if (store_mailbox_open(u, "INBOX", &settled, &err) < 0)
				die("open", &err);
			double j = now_ms();

			store_mailbox_close(&settled);
			if (store_mailbox_open(u, "INBOX", &settled, &err) < 0)
				die("open", &err);
			double k = now_ms();

			printf("settled: first_open_ms=%.1f open_ms=%.1f\n", j - i, k - j);
			store_mailbox_close(&settled);
		}
		store_mailbox_close(&again);
		store_mailbox_close(&other);
		store_mailbox_close(&mb);
	}
	store_user_close(&u);
	remove_tempdir(base, given_dir);
}

struct writer {
	const char *dir;
	unsigned count;
	size_t size;
	pthread_barrier_t *start; /* stores open: the clock starts */
	pthread_t th;
	int failed;
};

static void *writer_main(void *p)
{
	struct writer *w = p;
	struct store_user *u = open_user(w->dir, false);
	char *body = malloc(w->size);
	struct store_error err = { 0 };

	/* Delivery only: tern-lmtpd keeps users' stores open between
	 * transactions (storage/store-cache.c). */
	pthread_barrier_wait(w->start);

	memset(body, 'x', w->size);
	memcpy(body, "Subject: bench\r\n\r\n", 18);
	for (size_t i = 78; i < w->size; i += 80)
		body[i] = '\n';
	for (unsigned i = 0; i < w->count; i++) {
		struct store_save *s = NULL;
		uint32_t uv, uid;
		int ret = store_save_begin(u, "INBOX", &s, &err);

		if (ret == 0) {
			/* As tern-lmtpd delivers (lmtp/deliver.c). */
			store_save_defer_text(s);
			ret = store_save_write(s, body, w->size, &err) < 0 ||
				store_save_commit(&s, &uv, &uid, &err) < 0 ? -1 : 0;
		}
		if (ret < 0) {
			store_save_abort(&s);
			fprintf(stderr, "save: %s\n", err.msg);
			w->failed++;
		}
	}
	free(body);
	store_user_close(&u);
	return NULL;
}

/* One timed run: count / writers deliveries by each of writers threads
 * into a new user at dir. Returns deliveries per second. */
static double deliver_run(const char *dir, unsigned writers, unsigned count, size_t size)
{
	struct writer *w = calloc(writers, sizeof(*w));
	int failed = 0;

	store_user_close(&(struct store_user *){ open_user(dir, true) });
	pthread_barrier_t start;

	pthread_barrier_init(&start, NULL, writers + 1);
	for (unsigned i = 0; i < writers; i++) {
		w[i].dir = dir;
		w[i].count = count / writers;
		w[i].size = size;
		w[i].start = &start;
		pthread_create(&w[i].th, NULL, writer_main, &w[i]);
	}
	pthread_barrier_wait(&start);
	double t0 = now_ms();

	for (unsigned i = 0; i < writers; i++) {
		pthread_join(w[i].th, NULL);
		failed += w[i].failed;
	}
	double t1 = now_ms();
	unsigned done = (count / writers) * writers;
	double per_s = (double)done * 1000.0 / (t1 - t0);

	pthread_barrier_destroy(&start);
	printf("deliver: writers=%u messages=%u size=%zu failed=%d elapsed_ms=%.0f "
	       "per_s=%.1f\n", writers, done, size, failed, t1 - t0, per_s);
	fflush(stdout);
	free(w);
	return per_s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One run of W writers, or with pairs > 0 that many alternating runs of
 * one writer and of W writers and their ratios. Every run gets a user of
 * its own and nothing is removed before the last one: on ext4 without a
 * journal, creating a file skips, one by one, the inodes of its block group
 * freed in the last minutes (fs/ext4/ialloc.c, recently_deleted), so a run
 * right after another run's clean-up measures that scan more than the
 * store. */
static void deliver(unsigned writers, unsigned count, size_t size, const char *given_dir,
		    unsigned pairs)
{
	char base[256], dir[512];

	make_tempdir(base, sizeof(base), given_dir);
	if (pairs == 0) {
		snprintf(dir, sizeof(dir), "%s/user-%u", base, writers);
		deliver_run(dir, writers, count, size);
	} else {
		double *ratio = calloc(pairs, sizeof(*ratio));

		for (unsigned i = 0; i < pairs; i++) {
			snprintf(dir, sizeof(dir), "%s/user-%u-1", base, i);
			double one = deliver_run(dir, 1, count, size);

			snprintf(dir, sizeof(dir), "%s/user-%u-%u", base, i, writers);
			ratio[i] = deliver_run(dir, writers, count, size) / one;
			printf("ratio: pair=%u writers=%u/1 %.2f\n", i + 1, writers, ratio[i]);
		}
		qsort(ratio, pairs, sizeof(*ratio), cmp_double);
		printf("ratio: pairs=%u min=%.2f median=%.2f max=%.2f\n", pairs, ratio[0],
		       pairs % 2 ? ratio[pairs / 2] : (ratio[pairs / 2 - 1] + ratio[pairs / 2]) / 2,
		       ratio[pairs - 1]);
		free(ratio);
	}
	remove_tempdir(base, given_dir);
}

/* COPY, MOVE and EXPUNGE of count messages, as UID COPY/MOVE/EXPUNGE of a
 * whole mailbox do: one call each. */
static void mailops(unsigned count, const char *given_dir)
{
	char base[256], dir[512], body[4096];
	struct store_error err = { 0 };
	uint32_t *uids = calloc(count + 1, sizeof(*uids)), *dest = calloc(count + 1, sizeof(*dest));
	uint32_t uv;

	make_tempdir(base, sizeof(base), given_dir);
	snprintf(dir, sizeof(dir), "%s/user-mailops", base);
	struct store_user *u = open_user(dir, true);

	memset(body, 'x', sizeof(body));
	memcpy(body, "Subject: bench\r\n\r\n", 18);
	for (unsigned i = 0; i < count; i++) {
		struct store_save *s = NULL;

		if (store_save_begin(u, "INBOX", &s, &err) < 0 ||
		    store_save_write(s, body, sizeof(body), &err) < 0 ||
		    store_save_commit(&s, &uv, &uids[i], &err) < 0)
			die("save", &err);
	}
	struct store_mailbox *inbox, *archive;

	if (store_mailbox_open(u, "INBOX", &inbox, &err) < 0)
		die("open", &err);
	double t0 = now_ms();

	if (store_mailbox_copy(inbox, uids, count, "Archive", false, &uv, dest, &err) < 0)
		die("copy", &err);
	double t1 = now_ms();

	if (store_mailbox_copy(inbox, uids, count, "Trash", true, &uv, dest, &err) < 0)
		die("move", &err);
	double t2 = now_ms();

	if (store_mailbox_open(u, "Archive", &archive, &err) < 0)
		die("open", &err);
	for (unsigned i = 0; i < count; i++)
		uids[i] = store_mailbox_msg(archive, i + 1)->uid;
	double t3 = now_ms();

	if (store_mailbox_expunge(archive, uids, count, &err) < 0)
		die("expunge", &err);
	double t4 = now_ms();

	printf("mailops: messages=%u copy_ms=%.1f move_ms=%.1f expunge_ms=%.1f\n", count,
	       t1 - t0, t2 - t1, t4 - t3);
	store_mailbox_close(&archive);
	store_mailbox_close(&inbox);
	store_user_close(&u);
	free(uids);
	free(dest);
	remove_tempdir(base, given_dir);
}

int main(int argc, char **argv)
{
	unsigned messages = 100000, writers = 1, count = 400, pairs = 0;
	size_t size = 4096;
	const char *dir = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: %s bigbox|deliver|mailops [--messages N] [--writers W] "
			"[--count N] [--size BYTES] [--pairs P] [--dir DIR]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--messages") == 0)
			messages = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--writers") == 0)
			writers = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--count") == 0)
			count = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--size") == 0)
			size = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--pairs") == 0)
			pairs = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
	}
	if (size < 64)
		size = 64;
	if (writers == 0 || writers > 256)
		writers = 1;
	log_init("tern-bench-store", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	if (strcmp(argv[1], "bigbox") == 0)
		bigbox(messages, dir);
	else if (strcmp(argv[1], "mailops") == 0)
		mailops(count, dir);
	else if (strcmp(argv[1], "deliver") == 0) {
		/* As tern-lmtpd opens indexes (lmtp/main.c). */
		store_set_index_mapping(false);
		deliver(writers, count, size, dir, pairs);
	}
	else
		return 2;
	return 0;
}
