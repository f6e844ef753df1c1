/*
 * Concurrency test for storage/ (ROBUSTNESS §35, DESIGN "All three daemons
 * and ternctl open the same user's index concurrently"): four processes
 * work on one user's INBOX at once for a bounded time —
 *
 *   two deliverers   save messages and log "D n uidvalidity uid" for each
 *                    store_save_commit that returned 0;
 *   a flagger        sets and clears flags and keywords (half of the time
 *                    with CONDSTORE's unchanged_since) and expunges, logs
 *                    "F uid flags keywords" and "X uid" after each call
 *                    that returned 0, and checks its own view after each;
 *   a reader         syncs and reads every message again and again, like an
 *                    IMAP FETCH or a POP3 RETR, checking that each read is
 *                    exactly the message it claims to be (the bodies name
 *                    their own n), that sequence numbers map to strictly
 *                    increasing UIDs, and that a UID never changes message.
 *
 * Each process logs to its own file (one write per line). The test cases
 * after the first check the end state against the logs: nothing lost,
 * nothing duplicated, every UID of one message only, counters, file names.
 * The seed is printed; TERN_TEST_SEED repeats a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/wait.h>

#include "store-torture.h"

/* How long the four processes run, and the most each may do. */
#define RUN_MS 8000
#define HANG_MS 15000
#define MAX_DELIVERIES 4000
#define MAX_FLAG_OPS 20000

static const char *const kw_names[] = { "Work", "Personal", "$Label1", "todo", "later" };
#define KW_COUNT 5
#define FLAG_MASK (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
		   STORE_FLAG_DELETED | STORE_FLAG_DRAFT)

enum worker { W_DELIVER0, W_DELIVER1, W_FLAGGER, W_READER, W_COUNT };
static const char *const worker_names[] = { "deliver0", "deliver1", "flagger", "reader" };

static struct {
	char root[128];
	char dir[160];
	char inbox[192];
	char logs[W_COUNT][224];
	uint64_t seed;
	bool ran;               /* the workload finished and its logs are there */
	/* From the logs. */
	uint32_t *uid_of_n;     /* delivered: n -> UID (0 never acknowledged) */
	uint64_t *n_of_uid;     /* delivered: UID -> n */
	unsigned char *expunged;        /* by UID */
	int64_t *final_flags;   /* by UID: last F line's flags, -1 none */
	uint32_t *final_kw;
	size_t n_cap, uid_cap;
	uint64_t deliveries, expunges, flag_ops, reads, passes;
	uint32_t uidvalidity;
} run;

/* ------------------------------------------------------------ workers */

static int log_fd = -1;

static void ATTR_PRINTF(1, 2) worker_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "# worker %d: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(2);
}

static struct store_user *worker_open(void)
{
	struct store_user_options opt = { .create = false };
	struct store_user *u;
	struct store_error err = { 0 };

	if (store_user_open(run.dir, &opt, &u, &err) < 0)
		worker_die("store_user_open: %s", err.msg);
	return u;
}

/* Messages d+1, d+3, d+5, ...: the two deliverers never share an n. */
static void deliverer(unsigned d, int64_t deadline)
{
	struct store_user *u = worker_open();
	struct store_error err = { 0 };
	unsigned i;

	for (i = 0; i < MAX_DELIVERIES && now_ms() < deadline; i++) {
		uint64_t n = 2 * (uint64_t)i + d + 1;
		uint32_t uv, uid;

		if (msg_save(u, "INBOX", n, n % 4 == 0 ? STORE_FLAG_SEEN : 0, &uv, &uid, &err) < 0)
			worker_die("save %" PRIu64 ": %s (code %d)", n, err.msg, (int)err.code);
		dprintf(log_fd, "D %" PRIu64 " %" PRIu32 " %" PRIu32 "\n", n, uv, uid);
	}
	store_user_close(&u);
}

static void flagger(int64_t deadline)
{
	struct store_user *u = worker_open();
	struct store_mailbox *mb;
	struct store_error err = { 0 };
	struct rng r = { .s = run.seed ^ 0xf1a9 };

	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		worker_die("store_mailbox_open: %s", err.msg);
	for (unsigned k = 0; k < MAX_FLAG_OPS && now_ms() < deadline; k++) {
		if (k % 8 == 0 && store_mailbox_sync(mb, &err) < 0)
			worker_die("sync: %s", err.msg);
		uint32_t count = store_mailbox_count(mb);

		if (count < 20) {
			usleep(2000);
			if (store_mailbox_sync(mb, &err) < 0)
				worker_die("sync: %s", err.msg);
			continue;
		}
		if (rng_below(&r, 100) < 2) {
			uint32_t uid = store_mailbox_msg(mb, 1 + rng_below(&r, count))->uid;

			if (store_mailbox_expunge(mb, &uid, 1, &err) < 0)
				worker_die("expunge %" PRIu32 ": %s", uid, err.msg);
			if (store_mailbox_seq(mb, uid) != 0)
				worker_die("UID %" PRIu32 " still in the view after its expunge", uid);
			dprintf(log_fd, "X %" PRIu32 "\n", uid);
			continue;
		}
		/* Flags on 1-3 messages; their state before, from the view. */
		uint32_t uids[3], before_f[3], before_k[3];
		uint64_t since = 0;
		unsigned nu = 1 + rng_below(&r, 3);

		for (unsigned i = 0; i < nu; i++) {
			const struct store_msg *m;
			bool dup;

			do {
				m = store_mailbox_msg(mb, 1 + rng_below(&r, count));
				dup = false;
				for (unsigned j = 0; j < i; j++)
					dup |= uids[j] == m->uid;
			} while (dup);
			int64_t kw = torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT);

			if (kw < 0)
				worker_die("UID %" PRIu32 ": keyword bits %#" PRIx64 " without a known"
					   " name", m->uid, m->keywords);
			uids[i] = m->uid;
			before_f[i] = m->flags;
			before_k[i] = (uint32_t)kw;
			if (since == 0 || m->modseq > since)
				since = m->modseq;
		}
		int op = (int)rng_below(&r, 3);
		uint32_t fl = (uint32_t)rng_next(&r) & FLAG_MASK;
		uint32_t kwm = (uint32_t)(rng_next(&r) & rng_next(&r)) & ((1u << KW_COUNT) - 1);
		const char *names[KW_COUNT];
		size_t nk = 0, failed = 0;

		for (unsigned i = 0; i < KW_COUNT; i++) {
			if (kwm & (1u << i))
				names[nk++] = kw_names[i];
		}
		/* Half the time conditional (CONDSTORE): nobody else changes
		 * flags, so nothing may fail the condition. */
		if (rng_below(&r, 2) == 0)
			since = 0;
		if (store_mailbox_set_flags(mb, uids, nu, (enum store_flag_op)op, fl, names, nk,
					    since, &failed, &err) < 0)
			worker_die("set_flags: %s", err.msg);
		if (failed != 0)
			worker_die("set_flags unchanged_since %" PRIu64 ": %zu failed, yet nothing"
				   " else changed them", since, failed);
		/* The change is visible in the view at once. */
		for (unsigned i = 0; i < nu; i++) {
			uint32_t seq = store_mailbox_seq(mb, uids[i]);
			uint32_t want_f = before_f[i], want_k = before_k[i];

			if (seq == 0)
				worker_die("UID %" PRIu32 " vanished, only this process expunges",
					   uids[i]);
			const struct store_msg *m = store_mailbox_msg(mb, seq);
			int64_t kw = torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT);

			if (op == STORE_FLAGS_SET) {
				want_f = fl;
				want_k = kwm;
			} else if (op == STORE_FLAGS_ADD) {
				want_f |= fl;
				want_k |= kwm;
			} else {
				want_f &= ~fl;
				want_k &= ~kwm;
			}
			if (m->flags != want_f || kw != (int64_t)want_k)
				worker_die("UID %" PRIu32 ": flags %#" PRIx32 " keywords %#" PRIx64
					   " after the change, expected %#" PRIx32 " %#" PRIx32,
					   uids[i], m->flags, kw, want_f, want_k);
			dprintf(log_fd, "F %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", uids[i], want_f,
				want_k);
		}
	}
	store_mailbox_close(&mb);
	store_user_close(&u);
}

/* The reader's memory: which message each UID was (grown as needed). */
struct seen_map {
	uint64_t *n_of_uid;
	size_t cap;
};

static void reader(int64_t deadline)
{
	struct store_user *u = worker_open();
	struct store_mailbox *mb;
	struct store_error err = { 0 };
	struct seen_map seen = { 0 };
	char why[WHY_SIZE];
	uint64_t reads = 0, passes = 0, gone = 0, unnamed = 0, retried = 0;

	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		worker_die("store_mailbox_open: %s", err.msg);
	while (now_ms() < deadline) {
		if (store_mailbox_sync(mb, &err) < 0)
			worker_die("sync: %s", err.msg);
		uint32_t count = store_mailbox_count(mb), prev = 0;

		for (uint32_t seq = 1; seq <= count; seq++) {
			const struct store_msg *m = store_mailbox_msg(mb, seq);

			if (m->uid <= prev)
				worker_die("seq %" PRIu32 " is UID %" PRIu32 ", after UID %" PRIu32,
					   seq, m->uid, prev);
			prev = m->uid;
			/* Keywords the flagger created after this session
			 * opened the mailbox must have names here too. */
			if (torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT) < 0)
				unnamed++;
		}
		passes++;
		for (uint32_t seq = 1; seq <= count && now_ms() < deadline; seq++) {
			struct store_msg m = *store_mailbox_msg(mb, seq);
			uint64_t n;
			char *data = NULL;
			size_t len = 0;
			int tries = 0;

			while (msg_read(mb, m.uid, &data, &len, &err) < 0) {
				/* Expunged by the flagger since our last sync? Then
				 * the sync shows it gone; otherwise try again. */
				if (err.code != STORE_ERR_NOTFOUND || ++tries == 3)
					worker_die("read UID %" PRIu32 ": %s (code %d), %d tries", m.uid,
						   err.msg, (int)err.code, tries);
				if (store_mailbox_sync(mb, &err) < 0)
					worker_die("sync: %s", err.msg);
				if (store_mailbox_seq(mb, m.uid) == 0)
					break;
			}
			if (tries > 0 && store_mailbox_seq(mb, m.uid) == 0) {
				gone++;
				break;  /* the view changed: start a new pass */
			}
			/* Read in the end, but only after a failed try. */
			retried += tries > 0;
			if (msg_verify(data, len, &n, why) < 0)
				worker_die("UID %" PRIu32 ": %s", m.uid, why);
			if (len != m.vsize)
				worker_die("UID %" PRIu32 " (message %" PRIu64 "): %zu bytes, the index"
					   " says %" PRIu64, m.uid, n, len, m.vsize);
			free(data);
			if (m.uid >= seen.cap) {
				size_t cap = seen.cap == 0 ? 4096 : seen.cap;

				while (cap <= m.uid)
					cap *= 2;
				seen.n_of_uid = xrealloc(seen.n_of_uid, cap * sizeof(uint64_t));
				memset(seen.n_of_uid + seen.cap, 0, (cap - seen.cap) * sizeof(uint64_t));
				seen.cap = cap;
			}
			if (seen.n_of_uid[m.uid] != 0 && seen.n_of_uid[m.uid] != n)
				worker_die("UID %" PRIu32 " was message %" PRIu64 ", now %" PRIu64, m.uid,
					   seen.n_of_uid[m.uid], n);
			if (seen.n_of_uid[m.uid] == 0)
				dprintf(log_fd, "R %" PRIu32 " %" PRIu64 "\n", m.uid, n);
			seen.n_of_uid[m.uid] = n;
			reads++;
			if (tries > 0)
				break;  /* the view changed: start a new pass */
		}
	}
	dprintf(log_fd, "P %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", passes,
		reads, gone, unnamed, retried);
	free(seen.n_of_uid);
	store_mailbox_close(&mb);
	store_user_close(&u);
}

/* ------------------------------------------------------------- parent */

static int group_setup(void **state)
{
	struct store_user_options opt = { .create = true };
	struct store_user *u;
	struct store_error err = { 0 };

	snprintf(run.root, sizeof(run.root), "/tmp/tern-test-stress-XXXXXX");
	if (mkdtemp(run.root) == NULL)
		return -1;
	snprintf(run.dir, sizeof(run.dir), "%s/user", run.root);
	snprintf(run.inbox, sizeof(run.inbox), "%s/Maildir", run.dir);
	for (int w = 0; w < W_COUNT; w++)
		snprintf(run.logs[w], sizeof(run.logs[w]), "%s/%s.log", run.root, worker_names[w]);
	if (store_user_open(run.dir, &opt, &u, &err) < 0) {
		fprintf(stderr, "# store_user_open: %s\n", err.msg);
		return -1;
	}
	store_user_close(&u);
	run.seed = torture_seed("test-store-stress");
	*state = NULL;
	return 0;
}

static int group_teardown(void **state)
{
	torture_release();
	torture_rm_rf(run.root);
	free(run.uid_of_n);
	free(run.n_of_uid);
	free(run.expunged);
	free(run.final_flags);
	free(run.final_kw);
	return 0;
}

static void grow(uint64_t n, uint32_t uid)
{
	if (n >= run.n_cap) {
		size_t cap = run.n_cap == 0 ? 8192 : run.n_cap;

		while (cap <= n)
			cap *= 2;
		run.uid_of_n = xrealloc(run.uid_of_n, cap * sizeof(*run.uid_of_n));
		memset(run.uid_of_n + run.n_cap, 0, (cap - run.n_cap) * sizeof(*run.uid_of_n));
		run.n_cap = cap;
	}
	if (uid >= run.uid_cap) {
		size_t old = run.uid_cap, cap = old == 0 ? 8192 : old;

		while (cap <= uid)
			cap *= 2;
		run.n_of_uid = xrealloc(run.n_of_uid, cap * sizeof(*run.n_of_uid));
		run.expunged = xrealloc(run.expunged, cap);
		run.final_flags = xrealloc(run.final_flags, cap * sizeof(*run.final_flags));
		run.final_kw = xrealloc(run.final_kw, cap * sizeof(*run.final_kw));
		memset(run.n_of_uid + old, 0, (cap - old) * sizeof(*run.n_of_uid));
		memset(run.expunged + old, 0, cap - old);
		for (size_t i = old; i < cap; i++)
			run.final_flags[i] = -1;
		memset(run.final_kw + old, 0, (cap - old) * sizeof(*run.final_kw));
		run.uid_cap = cap;
	}
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *p;
	long size;

	if (fp == NULL)
		fail_msg("open %s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	p = xcalloc(1, (size_t)size + 1);
	if (size > 0 && fread(p, 1, (size_t)size, fp) != (size_t)size)
		fail_msg("read %s", path);
	fclose(fp);
	return hold_mem(p);
}

/* The deliverers' and the flagger's logs into run's maps. */
static void read_logs(void)
{
	for (int w = W_DELIVER0; w <= W_FLAGGER; w++) {
		char *text = slurp(run.logs[w]);

		for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			uint64_t n;
			uint32_t uv, uid, fl, kw;

			if (sscanf(line, "D %" SCNu64 " %" SCNu32 " %" SCNu32, &n, &uv, &uid) == 3) {
				grow(n, uid);
				if (run.uidvalidity == 0)
					run.uidvalidity = uv;
				if (uv != run.uidvalidity)
					fail_msg("message %" PRIu64 " acknowledged in UIDVALIDITY %" PRIu32
						 ", others in %" PRIu32, n, uv, run.uidvalidity);
				if (run.n_of_uid[uid] != 0)
					fail_msg("UID %" PRIu32 " was acknowledged for message %" PRIu64
						 " and for message %" PRIu64, uid, run.n_of_uid[uid], n);
				if (run.uid_of_n[n] != 0)
					fail_msg("message %" PRIu64 " was acknowledged twice", n);
				run.uid_of_n[n] = uid;
				run.n_of_uid[uid] = n;
				run.deliveries++;
			} else if (sscanf(line, "X %" SCNu32, &uid) == 1) {
				grow(0, uid);
				if (run.expunged[uid])
					fail_msg("UID %" PRIu32 " expunged twice", uid);
				run.expunged[uid] = 1;
				run.expunges++;
			} else if (sscanf(line, "F %" SCNu32 " %" SCNu32 " %" SCNu32, &uid, &fl,
					  &kw) == 3) {
				grow(0, uid);
				run.final_flags[uid] = fl;
				run.final_kw[uid] = kw;
				run.flag_ops++;
			} else {
				fail_msg("%s: bad line \"%s\"", run.logs[w], line);
			}
		}
		tfree(text);
	}
}

/*
 * The workload: four processes for RUN_MS. Each must finish by itself
 * and cleanly; one still running HANG_MS after the deadline is deadlocked
 * or hung (SQLite's busy timeout is 10 s: a worker waiting that long for
 * the index fails with an error, it does not hang).
 */
static void test_concurrent_workload(void **state)
{
	pid_t pids[W_COUNT];
	int64_t deadline = now_ms() + RUN_MS;

	for (int w = 0; w < W_COUNT; w++) {
		int fd = open(run.logs[w], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);

		assert_true(fd >= 0);
		fflush(stdout);
		fflush(stderr);
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			log_fd = fd;
			alarm(RUN_MS / 1000 + 60);
			if (w == W_DELIVER0 || w == W_DELIVER1)
				deliverer((unsigned)w, deadline);
			else if (w == W_FLAGGER)
				flagger(deadline);
			else
				reader(deadline);
			_exit(0);
		}
		close(fd);
	}
	bool failed = false;

	for (int w = 0; w < W_COUNT; w++) {
		int status = 0;
		pid_t got = 0;

		while (got == 0 && now_ms() < deadline + HANG_MS) {
			got = waitpid(pids[w], &status, WNOHANG);
			if (got == 0)
				usleep(20000);
		}
		if (got == 0) {
			fprintf(stderr, "# %s is still running %d s after the deadline: hung\n",
				worker_names[w], HANG_MS / 1000);
			kill(pids[w], SIGKILL);
			waitpid(pids[w], &status, 0);
			failed = true;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "# %s failed (status %#x), see above\n", worker_names[w],
				status);
			failed = true;
		}
	}
	if (failed)
		fail_msg("a worker failed or hung");
	read_logs();

	char *text = slurp(run.logs[W_READER]);
	char *last = strrchr(text, 'P');
	uint64_t gone = 0, unnamed = 0, retried = 0;

	if (last == NULL || sscanf(last, "P %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %"
				   SCNu64, &run.passes, &run.reads, &gone, &unnamed, &retried) != 5)
		fail_msg("the reader left no summary");
	tfree(text);
	fprintf(stderr, "# %" PRIu64 " deliveries, %" PRIu64 " flag changes, %" PRIu64
		" expunges, %" PRIu64 " reads in %" PRIu64 " passes (%" PRIu64 " expunged"
		" while read, %" PRIu64 " read only at a second try)\n", run.deliveries,
		run.flag_ops, run.expunges, run.reads, run.passes, gone, retried);
	/* Enough of everything happened for the checks to mean something. */
	assert_true(run.deliveries >= 100);
	assert_true(run.flag_ops >= 50);
	assert_true(run.expunges >= 5);
	assert_true(run.passes >= 3);
	run.ran = true;
	if (unnamed > 0)
		fail_msg("the reader saw %" PRIu64 " times a message with a keyword bit that had no"
			 " name in its session (see test_keyword_from_other_process)", unnamed);
}

static struct store_user *open_user(void)
{
	struct store_user_options opt = { .create = false };
	struct store_user *u;
	struct store_error err = { 0 };

	if (!run.ran)
		fail_msg("the workload did not run");
	if (store_user_open(run.dir, &opt, &u, &err) < 0)
		fail_msg("store_user_open: %s", err.msg);
	return torture_hold(HELD_USER, u);
}

static struct store_mailbox *open_inbox(struct store_user *u)
{
	struct store_mailbox *mb;
	struct store_error err = { 0 };

	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		fail_msg("store_mailbox_open: %s", err.msg);
	return torture_hold(HELD_MAILBOX, mb);
}

/*
 * Every acknowledged delivery whose expunge was not acknowledged is there,
 * under its acknowledged UID and byte for byte; every message there was
 * acknowledged (nothing half-saved or doubled); every acknowledged expunge
 * is gone.
 */
static void test_nothing_lost(void **state)
{
	struct store_user *u = open_user();
	struct store_mailbox *mb = open_inbox(u);
	char why[WHY_SIZE];
	uint64_t expected = 0;

	for (uint64_t n = 1; n < run.n_cap; n++) {
		uint32_t uid = run.uid_of_n[n];

		if (uid == 0)
			continue;
		uint32_t seq = store_mailbox_seq(mb, uid);

		if (run.expunged[uid]) {
			if (seq != 0)
				fail_msg("UID %" PRIu32 " (message %" PRIu64 ") is there after its"
					 " acknowledged expunge", uid, n);
			continue;
		}
		expected++;
		if (seq == 0)
			fail_msg("acknowledged message %" PRIu64 " (UID %" PRIu32 ") is lost", n, uid);
		uint64_t got = 0;

		if (msg_read_verify(mb, store_mailbox_msg(mb, seq), &got, why) < 0)
			fail_msg("%s", why);
		if (got != n)
			fail_msg("UID %" PRIu32 " holds message %" PRIu64 ", acknowledged for %" PRIu64,
				 uid, got, n);
	}
	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		uint32_t uid = store_mailbox_msg(mb, seq)->uid;

		if (uid >= run.uid_cap || run.n_of_uid[uid] == 0)
			fail_msg("UID %" PRIu32 " is there but no delivery of it was acknowledged", uid);
	}
	assert_int_equal(store_mailbox_count(mb), expected);
	/* Expunged UIDs are never handed out again. */
	for (uint32_t uid = 1; uid < run.uid_cap; uid++) {
		if (run.expunged[uid] && run.n_of_uid[uid] == 0)
			fail_msg("UID %" PRIu32 " was expunged but never delivered", uid);
	}
	mb_close(&mb);
	user_close(&u);
}

/* No UID is shared by two messages and no message has two UIDs: UIDs
 * strictly increase with the sequence number, each body's n once. */
static void test_uids_unique(void **state)
{
	struct store_user *u = open_user();
	struct store_mailbox *mb = open_inbox(u);
	unsigned char *seen = hold_mem(xcalloc(run.n_cap + 1, 1));
	uint32_t prev = 0;
	char why[WHY_SIZE];

	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		uint64_t n = 0;

		if (m->uid <= prev)
			fail_msg("seq %" PRIu32 " is UID %" PRIu32 ", after %" PRIu32, seq, m->uid, prev);
		prev = m->uid;
		if (msg_read_verify(mb, m, &n, why) < 0)
			fail_msg("%s", why);
		if (n >= run.n_cap || seen[n])
			fail_msg("message %" PRIu64 " is there twice (again as UID %" PRIu32 ")", n,
				 m->uid);
		seen[n] = 1;
	}
	assert_true(store_mailbox_uidnext(mb) > prev);
	tfree(seen);
	mb_close(&mb);
	user_close(&u);
}

/* What the reader read under each UID was the message delivered as that
 * UID (it checked the bytes as it read; here the mapping). */
static void test_reader_saw_right_messages(void **state)
{
	char *text;
	uint64_t checked = 0;

	if (!run.ran)
		fail_msg("the workload did not run");
	text = slurp(run.logs[W_READER]);
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		uint32_t uid;
		uint64_t n;

		if (line[0] == 'P')
			continue;
		if (sscanf(line, "R %" SCNu32 " %" SCNu64, &uid, &n) != 2)
			fail_msg("reader log: bad line \"%s\"", line);
		if (uid >= run.uid_cap || run.n_of_uid[uid] != n)
			fail_msg("the reader read message %" PRIu64 " as UID %" PRIu32 ", which was"
				 " acknowledged for message %" PRIu64, n, uid,
				 uid < run.uid_cap ? run.n_of_uid[uid] : 0);
		checked++;
	}
	tfree(text);
	assert_true(checked > 0);
}

/* Each message has the flags and keywords of the last acknowledged change
 * (or those it was delivered with), in the index and in its file name. */
static void test_flags_final(void **state)
{
	struct store_user *u = open_user();
	struct store_mailbox *mb = open_inbox(u);

	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		uint64_t n = run.n_of_uid[m->uid];
		uint32_t want_f = n % 4 == 0 ? STORE_FLAG_SEEN : 0, want_k = 0;
		int64_t kw = torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT);

		if (run.final_flags[m->uid] >= 0) {
			want_f = (uint32_t)run.final_flags[m->uid];
			want_k = run.final_kw[m->uid];
		}
		if (m->flags != want_f || kw != (int64_t)want_k)
			fail_msg("UID %" PRIu32 ": flags %#" PRIx32 " keywords %#" PRIx64 ", the last"
				 " acknowledged change made them %#" PRIx32 " %#" PRIx32, m->uid,
				 m->flags, kw, want_f, want_k);
	}
	mb_close(&mb);
	user_close(&u);
}

/* The counters agree: the view, STATUS, and the user's usage. */
static void test_counts_match(void **state)
{
	struct store_user *u = open_user();
	struct store_mailbox *mb = open_inbox(u);
	struct store_error err = { 0 };
	struct store_mailbox_info info;
	struct arena *a = torture_hold(HELD_ARENA, arena_new(0));
	uint64_t bytes, messages, vsum = 0;

	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++)
		vsum += store_mailbox_msg(mb, seq)->vsize;
	assert_int_equal(store_user_usage(u, &bytes, &messages, &err), 0);
	if (messages != store_mailbox_count(mb) || bytes != vsum)
		fail_msg("usage says %" PRIu64 " messages, %" PRIu64 " bytes; INBOX (the only"
			 " mailbox with mail) has %" PRIu32 ", %" PRIu64, messages, bytes,
			 store_mailbox_count(mb), vsum);
	assert_int_equal(store_mailbox_status(u, "INBOX", a, &info, &err), 0);
	assert_int_equal(info.messages, store_mailbox_count(mb));
	assert_int_equal(info.uidnext, store_mailbox_uidnext(mb));
	assert_int_equal(info.vsize, vsum);
	assert_int_equal(info.highestmodseq, store_mailbox_highestmodseq(mb));
	torture_unhold(a);
	arena_free(&a);
	mb_close(&mb);
	user_close(&u);
}

/* The files on disk are the index: one per message, names carrying the
 * UID and flags the index has, and nothing left in tmp/. */
static void test_disk_matches_index(void **state)
{
	struct store_user *u = open_user();
	struct store_mailbox *mb = open_inbox(u);
	char why[WHY_SIZE];

	if (folder_matches_index(run.inbox, mb, why) < 0)
		fail_msg("%s", why);
	int left = dir_count(run.inbox, "tmp");

	if (left != 0)
		fail_msg("%d files left in tmp/ though every save finished", left);
	mb_close(&mb);
	user_close(&u);
}

/* Does message m carry keyword name? 1 yes, 0 no, -1 it has a keyword bit
 * without a name in this session. */
static int has_keyword(const struct store_mailbox *mb, const struct store_msg *m,
		       const char *name)
{
	int found = 0;

	for (unsigned b = 0; b < 64; b++) {
		if ((m->keywords & ((uint64_t)1 << b)) == 0)
			continue;
		const char *kw = store_mailbox_keyword(mb, b);

		if (kw == NULL)
			return -1;
		found |= strcmp(kw, name) == 0;
	}
	return found;
}

/*
 * A keyword created by another process: a session that had the mailbox
 * open before sees the keyword's name after a sync (FETCH FLAGS would
 * show it), and removing it there (STORE -FLAGS) removes it.
 */
static void test_keyword_from_other_process(void **state)
{
	struct store_user *u1 = open_user(), *u2 = open_user();
	struct store_mailbox *mb1 = open_inbox(u1), *mb2 = open_inbox(u2);
	struct store_error err = { 0 };
	const char *kw[] = { "FreshKeyword" };
	uint32_t uid = store_mailbox_msg(mb1, 1)->uid;

	assert_int_equal(store_mailbox_set_flags(mb2, &uid, 1, STORE_FLAGS_ADD, 0, kw, 1, 0, NULL,
						 &err), 0);
	assert_int_equal(has_keyword(mb2, store_mailbox_msg(mb2, store_mailbox_seq(mb2, uid)),
				     "FreshKeyword"), 1);
	assert_int_equal(store_mailbox_sync(mb1, &err), 0);
	const struct store_msg *m = store_mailbox_msg(mb1, store_mailbox_seq(mb1, uid));

	switch (has_keyword(mb1, m, "FreshKeyword")) {
	case -1:
		fail_msg("UID %" PRIu32 " has keyword bits %#" PRIx64 "; a session opened before"
			 " FreshKeyword was created has no name for one of them", uid, m->keywords);
		break;
	case 0:
		fail_msg("UID %" PRIu32 ": the keyword set by another process is not seen", uid);
		break;
	default:
		break;
	}
	assert_int_equal(store_mailbox_set_flags(mb1, &uid, 1, STORE_FLAGS_REMOVE, 0, kw, 1, 0,
						 NULL, &err), 0);
	m = store_mailbox_msg(mb1, store_mailbox_seq(mb1, uid));
	if (has_keyword(mb1, m, "FreshKeyword") != 0)
		fail_msg("UID %" PRIu32 " still has FreshKeyword after removing it", uid);
	mb_close(&mb1);
	mb_close(&mb2);
	user_close(&u1);
	user_close(&u2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_workload),
		cmocka_unit_test(test_nothing_lost),
		cmocka_unit_test(test_uids_unique),
		cmocka_unit_test(test_reader_saw_right_messages),
		cmocka_unit_test(test_flags_final),
		cmocka_unit_test(test_counts_match),
		cmocka_unit_test(test_disk_matches_index),
		cmocka_unit_test(test_keyword_from_other_process),
	};

	log_init("test-store-stress", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
