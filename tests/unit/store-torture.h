/*
 * store-torture.h — helpers shared by the storage crash, concurrency and
 * disk-full tests (test-store-crash.c, test-store-stress.c,
 * test-store-nospace.c).
 *
 * Every message these tests save is self-describing: its header carries
 * "X-Seq: <n>" and the rest of its bytes are a function of n alone
 * (msg_make), so whoever reads a message back can tell which one it is and
 * whether every byte is right, without any shared state.
 *
 * Nothing here calls cmocka's assertions: forked children use these too,
 * and must never longjmp into the test runner. Functions return 0 or -1
 * with the reason in why (WHY_SIZE bytes).
 */
#ifndef TERN_STORE_TORTURE_H
#define TERN_STORE_TORTURE_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

#define WHY_SIZE 512

/* Set why[WHY_SIZE] (truncated if need be). */
static inline void ATTR_PRINTF(2, 3) why_printf(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_SIZE, fmt, ap);
	va_end(ap);
}

/* --------------------------------------------------------------- random */

/* splitmix64: small, seedable, good enough to pick delays and UIDs. */
struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* 0..n-1 (0 when n is 0). */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return n == 0 ? 0 : (uint32_t)(rng_next(r) % n);
}

/* The seed of a test run: $TERN_TEST_SEED, else the time and pid. It is
 * printed so that a failing run can be repeated. */
static inline uint64_t torture_seed(const char *what)
{
	const char *env = getenv("TERN_TEST_SEED");
	uint64_t seed;

	if (env != NULL && env[0] != '\0') {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
			((uint64_t)getpid() << 32);
	}
	fprintf(stderr, "# %s: TERN_TEST_SEED=%" PRIu64 "\n", what, seed);
	return seed;
}

/* ------------------------------------------------------------- messages */

/* A process's wall-clock deadline helper, in milliseconds. */
static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Message n with CRLF line ends (malloc'd; *len_r its length). Most are
 * 0.1-6 KiB; every 29th is 60-110 KiB, more than the save buffer, so that
 * a kill can land between two writes of one message. Lines may be "." or
 * empty; there is no bare CR or LF, so the CRLF view read back must equal
 * these bytes exactly.
 */
static inline char *msg_make(uint64_t n, size_t *len_r)
{
	struct rng r = { .s = n * 7919 + 17 };
	uint32_t lines = n % 29 == 0 ? 700 + rng_below(&r, 500) : rng_below(&r, 60);
	size_t cap = 512 + (size_t)lines * 160;
	char *p = malloc(cap);
	size_t len;

	if (p == NULL)
		abort();
	len = (size_t)snprintf(p, cap,
			       "Message-ID: <%" PRIu64 "@test>\r\n"
			       "X-Seq: %" PRIu64 "\r\n"
			       "From: <sender@test>\r\n"
			       "Subject: message %" PRIu64 "\r\n\r\n", n, n, n);
	for (uint32_t i = 0; i < lines; i++) {
		uint32_t w = rng_below(&r, 100);

		len += (size_t)snprintf(p + len, cap - len, "%" PRIu64 ".%" PRIu32 " ", n, i);
		for (uint32_t j = 0; j < w; j++)
			p[len++] = (char)('a' + (n + i + j) % 26);
		p[len++] = '\r';
		p[len++] = '\n';
		if (w % 17 == 0) {
			memcpy(p + len, ".\r\n\r\n", 5);
			len += 5;
		}
	}
	*len_r = len;
	return p;
}

/* The n of "X-Seq: n" in a message's header: 0, or -1. */
static inline int msg_seq_of(const char *data, size_t len, uint64_t *n_r)
{
	static const char tag[] = "\r\nX-Seq: ";
	size_t limit = len < 200 ? len : 200;

	for (size_t i = 0; i + sizeof(tag) - 1 < limit; i++) {
		if (memcmp(data + i, tag, sizeof(tag) - 1) != 0)
			continue;
		uint64_t n = 0;
		size_t j = i + sizeof(tag) - 1;

		if (j >= len || data[j] < '0' || data[j] > '9')
			return -1;
		for (; j < len && data[j] >= '0' && data[j] <= '9'; j++)
			n = n * 10 + (uint64_t)(data[j] - '0');
		if (j >= len || data[j] != '\r')
			return -1;
		*n_r = n;
		return 0;
	}
	return -1;
}

/* Is data exactly message n for some n? 0 with *n_r, or -1 with why. */
static inline int msg_verify(const char *data, size_t len, uint64_t *n_r, char *why)
{
	uint64_t n;
	size_t want_len;

	if (msg_seq_of(data, len, &n) < 0) {
		why_printf(why, "no X-Seq header in %zu bytes: \"%.*s\"", len,
			 (int)(len < 60 ? len : 60), data);
		return -1;
	}
	char *want = msg_make(n, &want_len);
	int ret = 0;

	if (want_len != len || memcmp(want, data, len) != 0) {
		size_t i = 0;

		while (i < len && i < want_len && want[i] == data[i])
			i++;
		why_printf(why, "message %" PRIu64 ": %zu bytes, expected %zu; first"
			 " difference at byte %zu", n, len, want_len, i);
		ret = -1;
	}
	free(want);
	*n_r = n;
	return ret;
}

/* The CRLF view of a UID, whole (malloc'd). -1 with *err on failure. */
static inline int msg_read(struct store_mailbox *mb, uint32_t uid, char **data_r, size_t *len_r,
			   struct store_error *err)
{
	struct store_reader *r;
	size_t cap = 16384, len = 0;
	char *p;
	ssize_t n;

	if (store_reader_open(mb, uid, &r, err) < 0)
		return -1;
	p = malloc(cap);
	if (p == NULL)
		abort();
	for (;;) {
		if (len == cap) {
			cap *= 2;
			p = realloc(p, cap);
			if (p == NULL)
				abort();
		}
		/* Odd piece sizes, so CRLF pairs straddle the reads. */
		size_t want = cap - len < 7777 ? cap - len : 7777;

		n = store_reader_read(r, p + len, want);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	store_reader_close(&r);
	if (n < 0) {
		free(p);
		err->code = STORE_ERR_TEMP;
		snprintf(err->msg, sizeof(err->msg), "read error on UID %" PRIu32, uid);
		return -1;
	}
	*data_r = p;
	*len_r = len;
	return 0;
}

/* Read UID and check it is one of ours, complete, and as long as the
 * index says. 0 with *n_r, or -1 with why. */
static inline int msg_read_verify(struct store_mailbox *mb, const struct store_msg *m,
				  uint64_t *n_r, char *why)
{
	struct store_error err = { 0 };
	char *data;
	size_t len;

	if (msg_read(mb, m->uid, &data, &len, &err) < 0) {
		why_printf(why, "UID %" PRIu32 ": cannot read: %s (code %d)", m->uid,
			 err.msg, (int)err.code);
		return -1;
	}
	int ret = msg_verify(data, len, n_r, why);

	if (ret == 0 && len != m->vsize) {
		why_printf(why, "UID %" PRIu32 " (message %" PRIu64 "): %zu bytes read,"
			 " index says RFC822.SIZE %" PRIu64, m->uid, *n_r, len, m->vsize);
		ret = -1;
	} else if (ret < 0) {
		char tmp[WHY_SIZE];

		snprintf(tmp, sizeof(tmp), "%s", why);
		why_printf(why, "UID %" PRIu32 ": %s", m->uid, tmp);
	}
	free(data);
	return ret;
}

/* Save message n into mailbox, written in pieces of random sizes (split
 * inside CRLF pairs too). 0 with the UID, or -1 with *err. */
static inline int msg_save(struct store_user *u, const char *mailbox, uint64_t n, uint32_t flags,
			   uint32_t *uidvalidity_r, uint32_t *uid_r, struct store_error *err)
{
	struct store_save *s;
	struct rng r = { .s = n ^ 0x5a5a5a5aULL };
	size_t len, off = 0;
	char *msg = msg_make(n, &len);

	if (store_save_begin(u, mailbox, &s, err) < 0) {
		free(msg);
		return -1;
	}
	if (flags != 0)
		store_save_set_flags(s, flags);
	while (off < len) {
		size_t piece = 1 + rng_below(&r, 9000);

		if (piece > len - off)
			piece = len - off;
		if (store_save_write(s, msg + off, piece, err) < 0) {
			store_save_abort(&s);
			free(msg);
			return -1;
		}
		off += piece;
	}
	free(msg);
	return store_save_commit(&s, uidvalidity_r, uid_r, err);
}

/* ---------------------------------------------------------- the folder */

/* Files (not dot files) in <folder>/<sub>. */
static inline int dir_count(const char *folder, const char *sub)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", folder, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * The files of an opened, just synced mailbox against its index view:
 * every file in new/ and cur/ has a valid name whose U= is a message of the
 * view, no two files share a UID, there is one file per message, and the
 * flags and keyword letters in each name are the ones the index has.
 */
static inline int folder_matches_index(const char *folder, const struct store_mailbox *mb,
				       char *why)
{
	static const char *const subs[] = { "new", "cur" };
	uint32_t count = store_mailbox_count(mb);
	unsigned char *seen = calloc((size_t)count + 1, 1);
	uint32_t files = 0;
	int ret = 0;

	if (seen == NULL)
		abort();
	for (size_t i = 0; i < 2 && ret == 0; i++) {
		char path[4096];
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/%s", folder, subs[i]);
		d = opendir(path);
		if (d == NULL) {
			why_printf(why, "opendir %s: %s", path, strerror(errno));
			ret = -1;
			break;
		}
		while (ret == 0 && (e = readdir(d)) != NULL) {
			struct store_filename fn;

			if (e->d_name[0] == '.')
				continue;
			files++;
			if (store_filename_parse(e->d_name, &fn) < 0 || fn.uid == 0) {
				why_printf(why, "%s/%s: not a message name with U=",
					 subs[i], e->d_name);
				ret = -1;
				break;
			}
			uint32_t seq = store_mailbox_seq(mb, fn.uid);

			if (seq == 0) {
				why_printf(why, "%s/%s: UID %" PRIu32 " is not in the index",
					 subs[i], e->d_name, fn.uid);
				ret = -1;
			} else if (seen[seq]) {
				why_printf(why, "%s/%s: a second file with UID %" PRIu32,
					 subs[i], e->d_name, fn.uid);
				ret = -1;
			} else {
				const struct store_msg *m = store_mailbox_msg(mb, seq);

				seen[seq] = 1;
				if (fn.flags != m->flags ||
				    fn.keywords != (uint32_t)(m->keywords & 0x3FFFFFF)) {
					why_printf(why, "%s/%s: flags %#" PRIx32 " keywords %#"
						 PRIx32 " in the name, index has %#" PRIx32 " %#"
						 PRIx64, subs[i], e->d_name, fn.flags, fn.keywords,
						 m->flags, m->keywords);
					ret = -1;
				}
			}
		}
		closedir(d);
	}
	if (ret == 0 && files != count) {
		why_printf(why, "%" PRIu32 " files in new/ and cur/, %" PRIu32
			 " messages in the index", files, count);
		ret = -1;
	}
	free(seen);
	return ret;
}

/* ------------------------------------------------------------ cleanup */

/*
 * Handles and buffers a test holds, so that its teardown can release them
 * when a failed assertion jumped out of the test: the sanitizer run then
 * reports only real leaks. Tests open and close through these helpers.
 */
enum held_kind { HELD_NONE, HELD_MAILBOX, HELD_USER, HELD_ARENA, HELD_MEM };

static struct {
	enum held_kind kind;
	void *p;
} torture_held[32];

static inline void *torture_hold(enum held_kind kind, void *p)
{
	for (size_t i = 0; i < sizeof(torture_held) / sizeof(torture_held[0]); i++) {
		if (torture_held[i].kind == HELD_NONE) {
			torture_held[i].kind = kind;
			torture_held[i].p = p;
			return p;
		}
	}
	fprintf(stderr, "# too many objects held\n");
	abort();
}

static inline void torture_unhold(void *p)
{
	for (size_t i = 0; i < sizeof(torture_held) / sizeof(torture_held[0]); i++) {
		if (torture_held[i].kind != HELD_NONE && torture_held[i].p == p)
			torture_held[i].kind = HELD_NONE;
	}
}

static inline void torture_release(void)
{
	/* Mailboxes before the users they belong to. */
	for (int kind = HELD_MAILBOX; kind <= HELD_MEM; kind++) {
		for (size_t i = 0; i < sizeof(torture_held) / sizeof(torture_held[0]); i++) {
			if ((int)torture_held[i].kind != kind)
				continue;
			torture_held[i].kind = HELD_NONE;
			if (kind == HELD_MAILBOX) {
				struct store_mailbox *mb = torture_held[i].p;

				store_mailbox_close(&mb);
			} else if (kind == HELD_USER) {
				struct store_user *u = torture_held[i].p;

				store_user_close(&u);
			} else if (kind == HELD_ARENA) {
				struct arena *a = torture_held[i].p;

				arena_free(&a);
			} else {
				free(torture_held[i].p);
			}
		}
	}
}

static inline void user_close(struct store_user **u)
{
	torture_unhold(*u);
	store_user_close(u);
}

static inline void mb_close(struct store_mailbox **mb)
{
	torture_unhold(*mb);
	store_mailbox_close(mb);
}

static inline void *hold_mem(void *p)
{
	return torture_hold(HELD_MEM, p);
}

static inline void tfree(void *p)
{
	torture_unhold(p);
	free(p);
}

/* Remove a tree (test directories only). */
static inline void torture_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			char child[4096];
			struct stat st;

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >=
			    sizeof(child))
				continue;
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				torture_rm_rf(child);
			else
				unlink(child);
		}
		closedir(d);
	}
	rmdir(path);
}

/* A message's keywords as a mask over names[0..count) (the test's own
 * keywords); -1 if a bit has no name in the mailbox's list or a name that
 * is not one of them. */
static inline int64_t torture_kw_mask(const struct store_mailbox *mb, uint64_t bits,
				      const char *const *names, unsigned count)
{
	uint32_t mask = 0;

	for (unsigned b = 0; b < 64; b++) {
		if ((bits & ((uint64_t)1 << b)) == 0)
			continue;
		const char *name = store_mailbox_keyword(mb, b);
		unsigned i = 0;

		if (name == NULL)
			return -1;
		while (i < count && strcasecmp(name, names[i]) != 0)
			i++;
		if (i == count)
			return -1;
		mask |= 1u << i;
	}
	return mask;
}

#endif
