/*
 * Crash tests for storage/ (DESIGN invariants 1-3, ROBUSTNESS §30, §33,
 * §34): a child process works on a user's store — delivers, changes flags
 * and expunges, moves messages between folders, creates the user — and is
 * killed with SIGKILL at a random moment; the parent then opens the store
 * itself and checks that everything the child acknowledged is there and
 * intact, that nothing half-written is visible, and that UIDs never go
 * back or get reused. The index is also deleted (while the store is closed
 * and while it is open), damaged and truncated, and message files removed
 * behind the store's back; the states that a kill at one precise point
 * leaves are also made by hand, so that those cases do not depend on luck.
 *
 * A child acknowledges on a pipe, one line per completed call (its "250"),
 * written only after the call returned 0. Lines are shorter than PIPE_BUF,
 * so a kill never leaves half a line. The random seed is printed; set
 * TERN_TEST_SEED to repeat a run (the kill times still vary).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <strings.h>
#include <sys/wait.h>

#include "store-torture.h"

/* Rounds of the two kill tests, and how many messages a child may try. */
#define DELIVERY_ROUNDS 60
#define FLAG_ROUNDS 50
#define CHILD_MAX_OPS 900
#define CREATE_ROUNDS 30

static uint64_t seed;
static unsigned setups;         /* each test its own random sequence */

/* Keywords the flag child sets; bit i of a model's mask is kw_names[i]. */
static const char *const kw_names[] = { "Work", "Personal", "$Label1", "todo", "later" };
#define KW_COUNT 5
#define FLAG_MASK (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
		   STORE_FLAG_DELETED | STORE_FLAG_DRAFT)

/*
 * What the parent knows about one user's INBOX, across rounds: for each
 * message n its UID, and for each UID its message, whether it should be
 * there, and its flags and keywords (for the flag test).
 */
struct fixture {
	char root[128];
	char dir[160];          /* the user directory */
	char inbox[192];        /* its Maildir (INBOX's folder) */
	struct rng rng;
	uint32_t *n_uid;        /* by n */
	size_t n_cap;
	uint64_t *uid_n;        /* by UID: 0 for a UID never seen */
	unsigned char *present;
	uint32_t *flags;
	uint32_t *kw;
	size_t uid_cap;
	uint32_t max_uid;       /* the highest UID ever acknowledged or seen */
	uint32_t uidvalidity;
	uint64_t acked;         /* acknowledgements over all rounds */
	unsigned rounds_with_acks;
};

static void grow_n(struct fixture *f, uint64_t n)
{
	if (n < f->n_cap)
		return;
	size_t cap = f->n_cap == 0 ? 1024 : f->n_cap;

	while (cap <= n)
		cap *= 2;
	f->n_uid = xrealloc(f->n_uid, cap * sizeof(*f->n_uid));
	memset(f->n_uid + f->n_cap, 0, (cap - f->n_cap) * sizeof(*f->n_uid));
	f->n_cap = cap;
}

static void grow_uid(struct fixture *f, uint32_t uid)
{
	if (uid < f->uid_cap)
		return;
	size_t old = f->uid_cap, cap = old == 0 ? 1024 : old;

	while (cap <= uid)
		cap *= 2;
	f->uid_n = xrealloc(f->uid_n, cap * sizeof(*f->uid_n));
	f->present = xrealloc(f->present, cap);
	f->flags = xrealloc(f->flags, cap * sizeof(*f->flags));
	f->kw = xrealloc(f->kw, cap * sizeof(*f->kw));
	memset(f->uid_n + old, 0, (cap - old) * sizeof(*f->uid_n));
	memset(f->present + old, 0, cap - old);
	memset(f->flags + old, 0, (cap - old) * sizeof(*f->flags));
	memset(f->kw + old, 0, (cap - old) * sizeof(*f->kw));
	f->uid_cap = cap;
}

/* A message the parent now knows: n under uid. */
static void learn(struct fixture *f, uint64_t n, uint32_t uid, uint32_t flags)
{
	grow_n(f, n);
	grow_uid(f, uid);
	f->n_uid[n] = uid;
	f->uid_n[uid] = n;
	f->present[uid] = 1;
	f->flags[uid] = flags;
	f->kw[uid] = 0;
	if (uid > f->max_uid)
		f->max_uid = uid;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/tern-test-crash-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/user", f->root);
	snprintf(f->inbox, sizeof(f->inbox), "%s/Maildir", f->dir);
	f->rng.s = seed + 0x9e3779b9ULL * ++setups;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	torture_release();
	torture_rm_rf(f->root);
	free(f->n_uid);
	free(f->uid_n);
	free(f->present);
	free(f->flags);
	free(f->kw);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static struct store_user *user_open(struct fixture *f, bool create)
{
	struct store_user_options opt = { .create = create };
	struct store_user *u;
	struct store_error err = { 0 };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("store_user_open %s: %s (code %d)", f->dir, err.msg, (int)err.code);
	return torture_hold(HELD_USER, u);
}

static struct store_mailbox *mb_open(struct store_user *u, const char *name)
{
	struct store_mailbox *mb;
	struct store_error err = { 0 };

	if (store_mailbox_open(u, name, &mb, &err) < 0)
		fail_msg("store_mailbox_open %s: %s (code %d)", name, err.msg, (int)err.code);
	return torture_hold(HELD_MAILBOX, mb);
}

static uint32_t save_n(struct store_user *u, const char *mailbox, uint64_t n, uint32_t flags,
		       uint32_t *uidvalidity_r)
{
	struct store_error err = { 0 };
	uint32_t uv, uid;

	if (msg_save(u, mailbox, n, flags, &uv, &uid, &err) < 0)
		fail_msg("save message %" PRIu64 " to %s: %s", n, mailbox, err.msg);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = uv;
	return uid;
}

static void unlink_index(struct fixture *f)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char path[256];

	for (size_t i = 0; i < N_ELEMENTS(suffixes); i++) {
		snprintf(path, sizeof(path), "%s/index.sqlite%s", f->dir, suffixes[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			fail_msg("unlink %s: %s", path, strerror(errno));
	}
}

/* Run SQL on the user's index directly (the store is closed). */
static void index_sql(struct fixture *f, const char *sql)
{
	char path[256];
	sqlite3 *db;
	char *msg = NULL;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("sqlite: %s: %s", sql, msg);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* PRAGMA integrity_check of the user's index (the store is closed). */
static void index_check(struct fixture *f)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	int rc = sqlite3_step(st);
	const char *text = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	char result[256];

	snprintf(result, sizeof(result), "%s", text != NULL ? text : sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (strcmp(result, "ok") != 0)
		fail_msg("the index is damaged: integrity_check says \"%s\"", result);
}

static void check_usage(struct store_user *u, uint64_t messages, uint64_t bytes)
{
	struct store_error err = { 0 };
	uint64_t ub, um;

	assert_int_equal(store_user_usage(u, &ub, &um, &err), 0);
	if (um != messages || ub != bytes)
		fail_msg("store_user_usage: %" PRIu64 " messages, %" PRIu64 " bytes; the mailboxes"
			 " hold %" PRIu64 " messages, %" PRIu64 " bytes", um, ub, messages, bytes);
}

/* ------------------------------------------------------- child process */

static void ATTR_PRINTF(1, 2) child_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "# child %d: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(2);
}

/* Read from a child's pipe into *p (len, cap; kept NUL-terminated) until
 * lines newlines have arrived in all, or end of file, or 10 s without
 * data. Returns the number of newlines in *p. */
static unsigned pipe_read(int fd, char **p, size_t *len, size_t *cap, unsigned lines)
{
	unsigned seen = 0;

	for (size_t i = 0; i < *len; i++)
		seen += (*p)[i] == '\n';
	while (seen < lines) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 10000) <= 0)
			break;
		if (*cap - *len < 256) {
			*p = xrealloc(*p, *cap * 2);
			*cap *= 2;
		}
		ssize_t n = read(fd, *p + *len, *cap - *len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			seen += (*p)[*len + (size_t)i] == '\n';
		*len += (size_t)n;
		(*p)[*len] = '\0';
	}
	return seen;
}

static pid_t spawn(int *fd_r, void (*fn)(struct fixture *, int, uint64_t), struct fixture *f,
		   uint64_t arg)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		/* Never outlive the test, whatever happens to the parent. */
		alarm(60);
		fn(f, p[1], arg);
		_exit(0);
	}
	close(p[1]);
	*fd_r = p[0];
	return pid;
}

/*
 * SIGKILL the child at a random moment and return everything it wrote
 * (malloc'd). In one round of three (the third, so that the first child
 * gets to create the user) the kill comes a random time, up to 6 ms, after
 * the fork: often while the child opens the store or rebuilds the index.
 * Otherwise it comes a random time, up to 3 ms, after the child wrote a
 * random number of lines, up to max_lines: so how much work a round does
 * does not depend on how loaded the machine is. Then the child is reaped:
 * it must have died of the kill (or finished); a child that exited with an
 * error failed a store call and said why on stderr.
 */
static char *run_and_kill(struct fixture *f, pid_t pid, int fd, unsigned round,
			  unsigned max_lines)
{
	size_t len = 0, cap = 4096;
	char *out = xcalloc(1, cap);
	int status;

	if (round % 3 == 2) {
		usleep(rng_below(&f->rng, 6000));
	} else {
		pipe_read(fd, &out, &len, &cap, 1 + rng_below(&f->rng, max_lines));
		usleep(rng_below(&f->rng, 3000));
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pipe_read(fd, &out, &len, &cap, UINT32_MAX);
	close(fd);
	hold_mem(out);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		fail_msg("round %u: the child failed (exit %d), see its message above", round,
			 WEXITSTATUS(status));
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		fail_msg("round %u: the child died of signal %d", round, WTERMSIG(status));
	return out;
}

/*
 * Whether to run round number round of a kill test: all rounds normally;
 * on a machine so loaded that the test has spent its time budget, not
 * more than min_rounds (with a note), so that the program stays well
 * inside meson's 30 s.
 */
static bool more_rounds(const char *what, unsigned round, unsigned rounds, unsigned min_rounds,
			int64_t start_ms, int64_t budget_ms)
{
	if (round >= rounds)
		return false;
	if (round >= min_rounds && now_ms() - start_ms > budget_ms) {
		fprintf(stderr, "# %s: stopped after %u of %u rounds: its %lld ms are spent (a"
			" loaded machine)\n", what, round, rounds, (long long)budget_ms);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ delivery */

/* Expected flags of message n as delivered: a quarter arrive \Seen (so
 * they go to cur/ with info, the others to new/). */
static uint32_t delivered_flags(uint64_t n)
{
	return n % 4 == 0 ? STORE_FLAG_SEEN : 0;
}

/* Child: deliver messages first_n, first_n + 1, ... and acknowledge each
 * as "n uidvalidity uid" once store_save_commit returned 0. */
static void child_deliver(struct fixture *f, int fd, uint64_t first_n)
{
	struct store_user_options opt = { .create = true };
	struct store_user *u;
	struct store_error err = { 0 };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		child_die("store_user_open: %s", err.msg);
	for (uint64_t n = first_n; n < first_n + CHILD_MAX_OPS; n++) {
		uint32_t uv, uid;

		if (msg_save(u, "INBOX", n, delivered_flags(n), &uv, &uid, &err) < 0)
			child_die("save %" PRIu64 ": %s", n, err.msg);
		dprintf(fd, "%" PRIu64 " %" PRIu32 " %" PRIu32 "\n", n, uv, uid);
	}
	store_user_close(&u);
}

/*
 * After a round: open the store and INBOX (a sync) and check every
 * message and every acknowledgement. acks holds (n, uid) pairs of this
 * round; prev_max is the highest UID known before it; messages below
 * n_end have been attempted. Messages new since the last check are read
 * and compared byte for byte, and so are the acknowledged ones, one in
 * eight of the others, and all of them when full is set.
 */
static void check_delivery(struct fixture *f, unsigned round, const uint64_t *acks,
			   size_t nacks, uint32_t prev_max, uint64_t n_end, bool full)
{
	struct store_user *u = user_open(f, false);
	struct store_mailbox *mb = mb_open(u, "INBOX");
	uint32_t count = store_mailbox_count(mb);
	unsigned char *now = hold_mem(xcalloc(n_end + 1, 1));
	uint64_t vsum = 0, n;
	uint32_t prev_uid = 0;
	char why[WHY_SIZE];

	if (store_mailbox_uidvalidity(mb) != f->uidvalidity)
		fail_msg("round %u: UIDVALIDITY changed from %" PRIu32 " to %" PRIu32, round,
			 f->uidvalidity, store_mailbox_uidvalidity(mb));
	for (uint32_t seq = 1; seq <= count; seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);

		if (m->uid <= prev_uid)
			fail_msg("round %u: UID %" PRIu32 " at seq %" PRIu32 " after %" PRIu32,
				 round, m->uid, seq, prev_uid);
		prev_uid = m->uid;
		bool known = m->uid < f->uid_cap && f->uid_n[m->uid] != 0;
		bool acked = false;

		for (size_t i = 0; i < nacks && !acked; i++)
			acked = acks[2 * i + 1] == m->uid;
		if (known && !acked && !full && rng_below(&f->rng, 8) != 0) {
			n = f->uid_n[m->uid];
		} else if (msg_read_verify(mb, m, &n, why) < 0) {
			/* Complete, one of ours, exactly the bytes sent. */
			fail_msg("round %u: %s", round, why);
		}
		if (n == 0 || n >= n_end)
			fail_msg("round %u: UID %" PRIu32 " holds message %" PRIu64
				 ", which was never sent", round, m->uid, n);
		if (now[n])
			fail_msg("round %u: message %" PRIu64 " is there twice (again as UID %"
				 PRIu32 ")", round, n, m->uid);
		now[n] = 1;
		if (m->flags != delivered_flags(n))
			fail_msg("round %u: message %" PRIu64 " has flags %#" PRIx32 ", delivered"
				 " with %#" PRIx32, round, n, m->flags, delivered_flags(n));
		grow_n(f, n);
		grow_uid(f, m->uid);
		if (f->uid_n[m->uid] != 0 && f->uid_n[m->uid] != n)
			fail_msg("round %u: UID %" PRIu32 " was message %" PRIu64 ", now it is %"
				 PRIu64 " (a UID reused)", round, m->uid, f->uid_n[m->uid], n);
		if (f->n_uid[n] != 0 && f->n_uid[n] != m->uid)
			fail_msg("round %u: message %" PRIu64 " was UID %" PRIu32 ", now it is %"
				 PRIu32, round, n, f->n_uid[n], m->uid);
		if (f->n_uid[n] == 0) {
			/* A message seen for the first time: its UID is above
			 * every UID handed out before this round. */
			if (m->uid <= prev_max)
				fail_msg("round %u: new message %" PRIu64 " got UID %" PRIu32
					 ", not above %" PRIu32 " (handed out before)", round, n,
					 m->uid, prev_max);
			learn(f, n, m->uid, m->flags);
		}
		vsum += m->vsize;
	}
	/* Nothing seen before is lost (nothing is expunged here). */
	for (uint32_t uid = 1; uid < f->uid_cap; uid++) {
		if (f->present[uid] && !now[f->uid_n[uid]])
			fail_msg("round %u: message %" PRIu64 " (UID %" PRIu32 ") is lost", round,
				 f->uid_n[uid], uid);
	}
	/* Every acknowledged message, under its acknowledged UID. */
	for (size_t i = 0; i < nacks; i++) {
		uint64_t an = acks[2 * i];
		uint32_t auid = (uint32_t)acks[2 * i + 1];

		if (an >= n_end || !now[an])
			fail_msg("round %u: acknowledged message %" PRIu64 " (UID %" PRIu32
				 ") is lost", round, an, auid);
		if (f->n_uid[an] != auid)
			fail_msg("round %u: acknowledged message %" PRIu64 " as UID %" PRIu32
				 ", it is UID %" PRIu32, round, an, auid, f->n_uid[an]);
	}
	check_usage(u, count, vsum);
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("round %u: %s", round, why);
	tfree(now);
	mb_close(&mb);
	user_close(&u);
}

/* One round: fork a deliverer, kill it, parse its acknowledgements and
 * check the store. unlink_first deletes the index before the child starts,
 * so the kill may land during the rebuild. */
static void delivery_round(struct fixture *f, unsigned round, bool unlink_first,
			   bool full_check)
{
	uint64_t first_n = (uint64_t)round * 1000 + 1;
	uint32_t prev_max = f->max_uid;
	int fd;

	if (unlink_first)
		unlink_index(f);
	pid_t pid = spawn(&fd, child_deliver, f, first_n);

	char *out = run_and_kill(f, pid, fd, round, 40);
	size_t nacks = 0;
	uint64_t *acks = hold_mem(xcalloc(CHILD_MAX_OPS * 2 + 2, sizeof(*acks)));
	uint32_t last_uid = prev_max;

	for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		uint64_t n;
		uint32_t uv, uid;

		if (sscanf(line, "%" SCNu64 " %" SCNu32 " %" SCNu32, &n, &uv, &uid) != 3)
			fail_msg("round %u: bad acknowledgement \"%s\"", round, line);
		if (f->uidvalidity == 0)
			f->uidvalidity = uv;
		if (uv != f->uidvalidity)
			fail_msg("round %u: message %" PRIu64 " acknowledged in UIDVALIDITY %"
				 PRIu32 ", not %" PRIu32, round, n, uv, f->uidvalidity);
		/* UIDs only go up, within the round and from earlier ones. */
		if (uid <= last_uid)
			fail_msg("round %u: message %" PRIu64 " acknowledged as UID %" PRIu32
				 ", not above %" PRIu32, round, n, uid, last_uid);
		last_uid = uid;
		acks[2 * nacks] = n;
		acks[2 * nacks + 1] = uid;
		nacks++;
	}
	tfree(out);
	if (f->uidvalidity == 0) {
		/* Killed before its first delivery: learn UIDVALIDITY now. */
		struct store_user *u = user_open(f, true);
		struct store_mailbox *mb = mb_open(u, "INBOX");

		f->uidvalidity = store_mailbox_uidvalidity(mb);
		mb_close(&mb);
		user_close(&u);
	}
	check_delivery(f, round, acks, nacks, prev_max, first_n + CHILD_MAX_OPS, full_check);
	if (last_uid > f->max_uid)
		f->max_uid = last_uid;
	f->acked += nacks;
	f->rounds_with_acks += nacks > 0;
	tfree(acks);
}

/*
 * Invariants 1 and 2 under SIGKILL: deliveries killed at random points,
 * 60 times on one user; every ninth round starts from a deleted index (so
 * the kill may land in the rebuild).
 */
static void test_delivery_killed(void **state)
{
	struct fixture *f = *state;
	int64_t start = now_ms();
	unsigned round;

	for (round = 0; more_rounds("delivery", round, DELIVERY_ROUNDS - 1, 30, start, 6000);
	     round++)
		delivery_round(f, round, round % 9 == 8, false);
	/* The last round reads every message back. */
	delivery_round(f, round, false, true);
	round++;
	fprintf(stderr, "# delivery: %" PRIu64 " acknowledged in %u rounds (%u with acks),"
		" highest UID %" PRIu32 "\n", f->acked, round, f->rounds_with_acks, f->max_uid);
	/* The kills must have hit deliveries in progress, not only start-up. */
	assert_true(f->rounds_with_acks >= round / 3);
}

/* --------------------------------------------------- flags and expunge */

struct op {
	unsigned k;
	char type;              /* 'F' flags, 'X' expunge, 0 none */
	int fop;                /* enum store_flag_op */
	uint32_t flags;
	uint32_t kw;            /* mask over kw_names */
	unsigned nu;
	uint32_t uids[3];
};

static bool op_has(const struct op *op, uint32_t uid)
{
	for (unsigned i = 0; i < op->nu; i++) {
		if (op->uids[i] == uid)
			return true;
	}
	return false;
}

static void op_apply_flags(const struct op *op, uint32_t *flags, uint32_t *kw)
{
	switch ((enum store_flag_op)op->fop) {
	case STORE_FLAGS_SET:
		*flags = op->flags;
		*kw = op->kw;
		break;
	case STORE_FLAGS_ADD:
		*flags |= op->flags;
		*kw |= op->kw;
		break;
	case STORE_FLAGS_REMOVE:
		*flags &= ~op->flags;
		*kw &= ~op->kw;
		break;
	}
}

/*
 * Child: random flag, keyword and expunge operations on 1-3 UIDs at a
 * time. Before each: "I k F op flags kw n uid..." or "I k X n uid..." (the
 * intent); after it returned 0: "A k" (the acknowledgement).
 */
static void child_flags(struct fixture *f, int fd, uint64_t child_seed)
{
	struct store_user_options opt = { .create = false };
	struct store_user *u;
	struct store_mailbox *mb;
	struct store_error err = { 0 };
	struct rng r = { .s = child_seed };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		child_die("store_user_open: %s", err.msg);
	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		child_die("store_mailbox_open: %s", err.msg);
	for (unsigned k = 0; k < CHILD_MAX_OPS; k++) {
		uint32_t count = store_mailbox_count(mb);
		uint32_t uids[3];
		unsigned nu = 1 + rng_below(&r, 3);
		char line[256];
		int len;

		if (count < 3)
			break;
		for (unsigned i = 0; i < nu; i++) {
			bool dup;

			do {
				uids[i] = store_mailbox_msg(mb, 1 + rng_below(&r, count))->uid;
				dup = false;
				for (unsigned j = 0; j < i; j++)
					dup |= uids[j] == uids[i];
			} while (dup);
		}
		/* One operation in five is an expunge. */
		bool expunge = rng_below(&r, 5) == 0;
		int fop = (int)rng_below(&r, 3);
		uint32_t fl = (uint32_t)rng_next(&r) & FLAG_MASK;
		uint32_t kw = (uint32_t)(rng_next(&r) & rng_next(&r)) & ((1u << KW_COUNT) - 1);
		const char *names[KW_COUNT];
		size_t nk = 0;

		for (unsigned i = 0; i < KW_COUNT; i++) {
			if (kw & (1u << i))
				names[nk++] = kw_names[i];
		}
		if (expunge)
			len = snprintf(line, sizeof(line), "I %u X 0 0 0 %u", k, nu);
		else
			len = snprintf(line, sizeof(line), "I %u F %d %" PRIu32 " %" PRIu32 " %u", k,
				       fop, fl, kw, nu);
		for (unsigned i = 0; i < nu; i++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %" PRIu32, uids[i]);
		dprintf(fd, "%s\n", line);
		if (expunge && store_mailbox_expunge(mb, uids, nu, &err) < 0)
			child_die("expunge: %s", err.msg);
		if (!expunge && store_mailbox_set_flags(mb, uids, nu, (enum store_flag_op)fop, fl,
							names, nk, 0, NULL, &err) < 0)
			child_die("set_flags: %s", err.msg);
		dprintf(fd, "A %u\n", k);
		/* Now and then a sync, as a session does between commands. */
		if (rng_below(&r, 10) == 0 && store_mailbox_sync(mb, &err) < 0)
			child_die("sync: %s", err.msg);
	}
	store_mailbox_close(&mb);
	store_user_close(&u);
}

/* Parse a flag child's output: apply acknowledged operations to the model;
 * the one begun and not acknowledged (if any) is left in *inflight. */
static void flags_apply_output(struct fixture *f, unsigned round, char *out,
			       struct op *inflight, unsigned *acked_r)
{
	unsigned acked = 0;

	memset(inflight, 0, sizeof(*inflight));
	for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		unsigned k;

		if (line[0] == 'A') {
			if (sscanf(line, "A %u", &k) != 1 || inflight->type == 0 || k != inflight->k)
				fail_msg("round %u: stray acknowledgement \"%s\"", round, line);
			for (unsigned i = 0; i < inflight->nu; i++) {
				uint32_t uid = inflight->uids[i];

				if (inflight->type == 'X')
					f->present[uid] = 0;
				else
					op_apply_flags(inflight, &f->flags[uid], &f->kw[uid]);
			}
			memset(inflight, 0, sizeof(*inflight));
			acked++;
			continue;
		}
		struct op op = { 0 };
		char type;
		int got = sscanf(line, "I %u %c %d %" SCNu32 " %" SCNu32 " %u %" SCNu32 " %"
				 SCNu32 " %" SCNu32, &op.k, &type, &op.fop, &op.flags, &op.kw,
				 &op.nu, &op.uids[0], &op.uids[1], &op.uids[2]);

		if (got < 7 || inflight->type != 0 || op.nu < 1 || op.nu > 3 ||
		    got != 6 + (int)op.nu)
			fail_msg("round %u: bad line \"%s\"", round, line);
		op.type = type;
		for (unsigned i = 0; i < op.nu; i++) {
			if (op.uids[i] >= f->uid_cap || !f->present[op.uids[i]])
				fail_msg("round %u: the child saw UID %" PRIu32 ", which should not"
					 " exist", round, op.uids[i]);
		}
		*inflight = op;
	}
	*acked_r = acked;
}

/*
 * After a flag round: every message the model has is there (unless the
 * unacknowledged operation expunged it), with the acknowledged flags and
 * keywords, or those of the unacknowledged operation; nothing else is
 * there; HIGHESTMODSEQ did not go back; the file names agree.
 */
static void check_flags(struct fixture *f, unsigned round, const struct op *inflight,
			uint64_t *modseq)
{
	struct store_user *u = user_open(f, false);
	struct store_mailbox *mb = mb_open(u, "INBOX");
	uint64_t hms = store_mailbox_highestmodseq(mb), vsum = 0, n;
	uint32_t expected = 0;
	char why[WHY_SIZE];

	if (hms < *modseq)
		fail_msg("round %u: HIGHESTMODSEQ went back from %" PRIu64 " to %" PRIu64, round,
			 *modseq, hms);
	*modseq = hms;
	for (uint32_t uid = 1; uid < f->uid_cap; uid++) {
		if (!f->present[uid])
			continue;
		uint32_t seq = store_mailbox_seq(mb, uid);
		bool touched = inflight->type != 0 && op_has(inflight, uid);

		if (seq == 0) {
			if (touched && inflight->type == 'X') {
				f->present[uid] = 0;
				continue;
			}
			fail_msg("round %u: UID %" PRIu32 " (message %" PRIu64 ") is lost: no"
				 " expunge of it was even begun", round, uid, f->uid_n[uid]);
		}
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		int64_t kw = torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT);

		if (kw < 0)
			fail_msg("round %u: UID %" PRIu32 " has keyword bits %#" PRIx64 " that do"
				 " not name our keywords", round, uid, m->keywords);
		if (m->flags != f->flags[uid] || (uint32_t)kw != f->kw[uid]) {
			uint32_t fl = f->flags[uid], k = f->kw[uid];

			if (touched && inflight->type == 'F')
				op_apply_flags(inflight, &fl, &k);
			if (!touched || inflight->type != 'F' || m->flags != fl || (uint32_t)kw != k)
				fail_msg("round %u: UID %" PRIu32 " has flags %#" PRIx32 " keywords %#"
					 PRIx32 "; acknowledged: %#" PRIx32 " %#" PRIx32
					 " (unacknowledged op on it: %s)", round, uid, m->flags,
					 (uint32_t)kw, f->flags[uid], f->kw[uid], touched ? "yes" : "no");
			f->flags[uid] = fl;
			f->kw[uid] = k;
		}
		if (m->modseq > hms)
			fail_msg("round %u: UID %" PRIu32 " has MODSEQ %" PRIu64 " above"
				 " HIGHESTMODSEQ %" PRIu64, round, uid, m->modseq, hms);
		/* The bytes of one message in four (flag changes rename files,
		 * they never touch their content). */
		if (rng_below(&f->rng, 4) == 0) {
			if (msg_read_verify(mb, m, &n, why) < 0)
				fail_msg("round %u: %s", round, why);
			if (n != f->uid_n[uid])
				fail_msg("round %u: UID %" PRIu32 " holds message %" PRIu64 ", not %"
					 PRIu64, round, uid, n, f->uid_n[uid]);
		}
		vsum += m->vsize;
		expected++;
	}
	/* Nothing else: not an expunged message, not an unknown one. */
	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		uint32_t uid = store_mailbox_msg(mb, seq)->uid;

		if (uid >= f->uid_cap || !f->present[uid])
			fail_msg("round %u: UID %" PRIu32 " is visible but %s", round, uid,
				 uid < f->uid_cap && f->uid_n[uid] != 0 ?
				 "its expunge was acknowledged" : "was never delivered");
	}
	assert_int_equal(store_mailbox_count(mb), expected);
	check_usage(u, expected, vsum);
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("round %u: %s", round, why);
	mb_close(&mb);
	user_close(&u);
}

/* Deliver messages in the parent and add them to the model. */
static void deliver_more(struct fixture *f, struct store_user *u, uint64_t *next_n,
			 unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		uint64_t n = (*next_n)++;
		uint32_t uv, uid = save_n(u, "INBOX", n, delivered_flags(n), &uv);

		if (f->uidvalidity == 0)
			f->uidvalidity = uv;
		if (uid <= f->max_uid)
			fail_msg("message %" PRIu64 " got UID %" PRIu32 ", not above %" PRIu32, n, uid,
				 f->max_uid);
		learn(f, n, uid, delivered_flags(n));
	}
}

/*
 * Flag changes and expunges killed at random points: acknowledged
 * expunges are gone, acknowledged flag changes are visible, HIGHESTMODSEQ
 * never goes back, no message is lost that was not being expunged.
 */
static void test_flags_expunge_killed(void **state)
{
	struct fixture *f = *state;
	struct store_user *u = user_open(f, true);
	uint64_t next_n = 1, modseq = 0;
	unsigned total = 0;

	deliver_more(f, u, &next_n, 80);
	user_close(&u);
	int64_t start = now_ms();
	unsigned round;

	for (round = 0; more_rounds("flags", round, FLAG_ROUNDS, 25, start, 4000); round++) {
		unsigned live = 0, acked;
		struct op inflight;
		int fd;

		for (uint32_t uid = 1; uid < f->uid_cap; uid++)
			live += f->present[uid];
		if (live < 40) {
			u = user_open(f, false);
			deliver_more(f, u, &next_n, 40);
			user_close(&u);
		}
		pid_t pid = spawn(&fd, child_flags, f, rng_next(&f->rng));

		/* Two lines per operation: up to 25 operations. */
		char *out = run_and_kill(f, pid, fd, round, 50);

		flags_apply_output(f, round, out, &inflight, &acked);
		tfree(out);
		check_flags(f, round, &inflight, &modseq);
		total += acked;
	}
	fprintf(stderr, "# flags: %u operations acknowledged in %u rounds\n", total, round);
	assert_true(total >= round);
}

/* ---------------------------------------------------------------- move */

#define MOVE_ROUNDS 30
#define MOVE_MAX_N 256

static const char *const move_folders[2] = { "INBOX", "Work" };

/* Where each message is: folder (0 INBOX, 1 Work) and UID; 0 UID: not
 * one of the messages of the move test. */
struct placement {
	unsigned char folder[MOVE_MAX_N];
	uint32_t uid[MOVE_MAX_N];
	uint32_t max_uid[2];    /* highest UID ever seen per folder */
	unsigned doubled;       /* cut-short moves found in both folders */
	unsigned moved_unacked; /* cut-short moves found done */
};

/* Child: MOVE 1-2 random messages from one folder to the other, again and
 * again. "I k from n uid..." before each, "A k uid..." (the destination
 * UIDs) after it returned 0. */
static void child_move(struct fixture *f, int fd, uint64_t child_seed)
{
	struct store_user_options opt = { .create = false };
	struct store_user *u;
	struct store_mailbox *mb[2];
	struct store_error err = { 0 };
	struct rng r = { .s = child_seed };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		child_die("store_user_open: %s", err.msg);
	for (int i = 0; i < 2; i++) {
		if (store_mailbox_open(u, move_folders[i], &mb[i], &err) < 0)
			child_die("store_mailbox_open %s: %s", move_folders[i], err.msg);
	}
	for (unsigned k = 0; k < CHILD_MAX_OPS; k++) {
		unsigned from = rng_below(&r, 2);
		uint32_t count = store_mailbox_count(mb[from]);
		uint32_t uids[2], dst[2], uv;
		unsigned nu = 1 + rng_below(&r, 2);

		if (count < 2)
			from = !from;
		count = store_mailbox_count(mb[from]);
		uids[0] = store_mailbox_msg(mb[from], 1 + rng_below(&r, count))->uid;
		do {
			uids[1] = store_mailbox_msg(mb[from], 1 + rng_below(&r, count))->uid;
		} while (nu == 2 && uids[1] == uids[0]);
		dprintf(fd, "I %u %u %u %" PRIu32 " %" PRIu32 "\n", k, from, nu, uids[0],
			nu == 2 ? uids[1] : 0);
		if (store_mailbox_copy(mb[from], uids, nu, move_folders[!from], true, &uv, dst,
				       &err) < 0)
			child_die("move: %s", err.msg);
		dprintf(fd, "A %u %" PRIu32 " %" PRIu32 "\n", k, dst[0], nu == 2 ? dst[1] : 0);
		if (store_mailbox_sync(mb[!from], &err) < 0)
			child_die("sync: %s", err.msg);
	}
	for (int i = 0; i < 2; i++)
		store_mailbox_close(&mb[i]);
	store_user_close(&u);
}

/* The message at (folder, uid) in the model, or 0. */
static uint64_t placed_at(const struct placement *p, unsigned folder, uint32_t uid)
{
	for (uint64_t n = 1; n < MOVE_MAX_N; n++) {
		if (p->uid[n] == uid && p->folder[n] == folder)
			return n;
	}
	return 0;
}

/*
 * After a move round: each message is where the acknowledged moves put it,
 * under the acknowledged UID, exactly once. The messages of the move that
 * was cut short may be in the source (under their old UID, or a new one
 * when the index had dropped them but the files were not yet removed), in
 * the destination (under a new UID), or in both (a duplicate, which the
 * parent then expunges from the source), but never nowhere. New UIDs are
 * above every UID the folder had before; the files agree with the index.
 */
static void check_moves(struct fixture *f, unsigned round, struct placement *p,
			const uint64_t *inflight, unsigned ninflight, unsigned from)
{
	struct store_user *u = user_open(f, false);
	struct store_mailbox *mb[2];
	unsigned where[MOVE_MAX_N][2] = { { 0 } };      /* appearances per folder */
	uint32_t new_uid[MOVE_MAX_N][2] = { { 0 } };
	uint64_t vsum = 0, total = 0;
	char why[WHY_SIZE];

	for (unsigned i = 0; i < 2; i++) {
		mb[i] = mb_open(u, move_folders[i]);
		for (uint32_t seq = 1; seq <= store_mailbox_count(mb[i]); seq++) {
			const struct store_msg *m = store_mailbox_msg(mb[i], seq);
			uint64_t n = placed_at(p, i, m->uid);
			bool moving = false;

			/* Read the message unless it is where the model has it
			 * (then one in eight, for its bytes). */
			if ((n == 0 || rng_below(&f->rng, 8) == 0) &&
			    msg_read_verify(mb[i], m, &n, why) < 0)
				fail_msg("round %u: %s: %s", round, move_folders[i], why);
			if (n == 0 || n >= MOVE_MAX_N || p->uid[n] == 0)
				fail_msg("round %u: %s UID %" PRIu32 " holds message %" PRIu64 ", which"
					 " is not one of ours", round, move_folders[i], m->uid, n);
			for (unsigned j = 0; j < ninflight; j++)
				moving |= inflight[j] == n;
			if (m->flags != delivered_flags(n))
				fail_msg("round %u: message %" PRIu64 " has flags %#" PRIx32 ", not %#"
					 PRIx32, round, n, m->flags, delivered_flags(n));
			if (++where[n][i] > 1)
				fail_msg("round %u: message %" PRIu64 " is in %s twice", round, n,
					 move_folders[i]);
			bool at_model = p->folder[n] == i && p->uid[n] == m->uid;

			if (!at_model && !(moving && m->uid > p->max_uid[i]))
				fail_msg("round %u: message %" PRIu64 " is %s UID %" PRIu32 "; the"
					 " acknowledged moves put it at %s UID %" PRIu32, round, n,
					 move_folders[i], m->uid, move_folders[p->folder[n]], p->uid[n]);
			if (!at_model)
				new_uid[n][i] = m->uid;
			vsum += m->vsize;
			total++;
		}
		char folder[256];

		snprintf(folder, sizeof(folder), "%s%s", f->inbox, i == 0 ? "" : "/.Work");
		if (folder_matches_index(folder, mb[i], why) < 0)
			fail_msg("round %u: %s: %s", round, move_folders[i], why);
	}
	check_usage(u, total, vsum);
	for (uint64_t n = 1; n < MOVE_MAX_N; n++) {
		if (p->uid[n] == 0)
			continue;
		if (where[n][0] + where[n][1] == 0)
			fail_msg("round %u: message %" PRIu64 " (%s UID %" PRIu32 ") is lost", round, n,
				 move_folders[p->folder[n]], p->uid[n]);
		if (where[n][0] + where[n][1] == 2) {
			/* A move cut short after its commit: keep the copy in the
			 * destination, expunge the one left in the source. */
			struct store_error err = { 0 };

			p->doubled++;
			uint32_t uid = new_uid[n][from] != 0 ? new_uid[n][from] : p->uid[n];

			if (store_mailbox_expunge(mb[from], &uid, 1, &err) < 0)
				fail_msg("expunge: %s", err.msg);
			p->folder[n] = (unsigned char)!from;
			p->uid[n] = new_uid[n][!from];
		} else {
			for (unsigned i = 0; i < 2; i++) {
				if (where[n][i] != 0 && new_uid[n][i] != 0) {
					p->moved_unacked++;
					p->folder[n] = (unsigned char)i;
					p->uid[n] = new_uid[n][i];
				}
			}
		}
	}
	for (unsigned i = 0; i < 2; i++) {
		for (uint32_t seq = 1; seq <= store_mailbox_count(mb[i]); seq++) {
			uint32_t uid = store_mailbox_msg(mb[i], seq)->uid;

			if (uid > p->max_uid[i])
				p->max_uid[i] = uid;
		}
		mb_close(&mb[i]);
	}
	user_close(&u);
}

/*
 * MOVE killed at random points (DESIGN invariant 1 for moves: a message is
 * never lost): 30 rounds of a child moving messages between INBOX and
 * Work, checked as in check_moves.
 */
static void test_move_killed(void **state)
{
	struct fixture *f = *state;
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	struct placement p;
	unsigned acked_total = 0;

	memset(&p, 0, sizeof(p));
	if (store_mailbox_create(u, "Work", 0, &err) < 0)
		fail_msg("create Work: %s", err.msg);
	for (uint64_t n = 1; n <= 60; n++) {
		unsigned folder = n > 40;

		p.folder[n] = (unsigned char)folder;
		p.uid[n] = save_n(u, move_folders[folder], n, delivered_flags(n), NULL);
		if (p.uid[n] > p.max_uid[folder])
			p.max_uid[folder] = p.uid[n];
	}
	user_close(&u);
	int64_t start = now_ms();
	unsigned round;

	for (round = 0; more_rounds("move", round, MOVE_ROUNDS, 15, start, 2500); round++) {
		int fd;
		pid_t pid = spawn(&fd, child_move, f, rng_next(&f->rng));
		char *out = run_and_kill(f, pid, fd, round, 60);
		uint64_t inflight[2] = { 0, 0 };
		unsigned ninflight = 0, from = 0, k, nu, last_k = UINT32_MAX;
		uint32_t uids[2], dst[2];

		for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			if (line[0] == 'I') {
				if (ninflight != 0 ||
				    sscanf(line, "I %u %u %u %" SCNu32 " %" SCNu32, &k, &from, &nu,
					   &uids[0], &uids[1]) != 5 || from > 1 || nu < 1 || nu > 2)
					fail_msg("round %u: bad line \"%s\"", round, line);
				for (unsigned i = 0; i < nu; i++) {
					inflight[i] = placed_at(&p, from, uids[i]);
					if (inflight[i] == 0)
						fail_msg("round %u: the child moved %s UID %" PRIu32 ", which"
							 " should not exist", round, move_folders[from],
							 uids[i]);
				}
				ninflight = nu;
				last_k = k;
				continue;
			}
			if (sscanf(line, "A %u %" SCNu32 " %" SCNu32, &k, &dst[0], &dst[1]) != 3 ||
			    k != last_k || ninflight == 0)
				fail_msg("round %u: bad line \"%s\"", round, line);
			for (unsigned i = 0; i < ninflight; i++) {
				uint64_t n = inflight[i];

				if (dst[i] <= p.max_uid[!from])
					fail_msg("round %u: message %" PRIu64 " moved to %s UID %" PRIu32
						 ", not above %" PRIu32, round, n, move_folders[!from],
						 dst[i], p.max_uid[!from]);
				p.folder[n] = (unsigned char)!from;
				p.uid[n] = dst[i];
				p.max_uid[!from] = dst[i];
			}
			ninflight = 0;
			acked_total++;
		}
		tfree(out);
		check_moves(f, round, &p, inflight, ninflight, from);
	}
	fprintf(stderr, "# move: %u moves acknowledged in %u rounds; of the moves cut short, %u"
		" messages were found moved and %u in both folders\n", acked_total, round,
		p.moved_unacked, p.doubled);
	assert_true(acked_total >= round);
}

/* ------------------------------------------------------ user creation */

static void child_create(struct fixture *f, int fd, uint64_t unused)
{
	struct store_user_options opt = { .create = true };
	struct store_user *u;
	struct store_error err = { 0 };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		child_die("store_user_open: %s", err.msg);
	dprintf(fd, "created\n");
	store_user_close(&u);
}

/*
 * A new user's creation (the Maildir, INBOX, the special-use folders, the
 * index) killed at random points: opening the user afterwards works, and
 * the user has INBOX and every special-use folder, each usable.
 */
static void test_user_creation_killed(void **state)
{
	static const char *const folders[] = { "INBOX", "Drafts", "Sent", "Trash", "Junk",
					       "Archive" };
	struct fixture *f = *state;
	unsigned completed = 0, incomplete = 0;
	char missing[WHY_SIZE] = "";

	int64_t start = now_ms();
	unsigned round;

	for (round = 0; more_rounds("creation", round, CREATE_ROUNDS, 15, start, 2500); round++) {
		int fd, status;

		snprintf(f->dir, sizeof(f->dir), "%s/user%u", f->root, round);
		snprintf(f->inbox, sizeof(f->inbox), "%s/Maildir", f->dir);
		pid_t pid = spawn(&fd, child_create, f, 0);

		/* Creating a user takes some 20-50 ms here. */
		usleep(rng_below(&f->rng, round % 2 == 0 ? 8000 : 50000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		char buf[64];

		/* The child is dead: whatever it wrote is in the pipe. */
		completed += read(fd, buf, sizeof(buf)) > 0;
		close(fd);

		struct store_user_options opt = { .create = true };
		struct store_user *u;
		struct store_error err = { 0 };

		if (store_user_open(f->dir, &opt, &u, &err) < 0)
			fail_msg("round %u: a user whose creation was killed cannot be opened: %s"
				 " (code %d)", round, err.msg, (int)err.code);
		torture_hold(HELD_USER, u);
		for (size_t i = 0; i < N_ELEMENTS(folders); i++) {
			struct store_mailbox *mb;
			uint32_t uv, uid;

			if (store_mailbox_open(u, folders[i], &mb, &err) < 0) {
				/* INBOX must work; the special-use folders are
				 * checked after all rounds. */
				if (i == 0 || err.code != STORE_ERR_NOTFOUND)
					fail_msg("round %u: after a killed creation, %s: %s (code %d)",
						 round, folders[i], err.msg, (int)err.code);
				if (incomplete++ == 0)
					why_printf(missing, "round %u: %s", round, err.msg);
				continue;
			}
			store_mailbox_close(&mb);
			if (msg_save(u, folders[i], round + 1, 0, &uv, &uid, &err) < 0)
				fail_msg("round %u: save to %s: %s", round, folders[i], err.msg);
		}
		user_close(&u);
	}
	fprintf(stderr, "# creation: %u of %u children finished before the kill\n", completed,
		round);
	if (incomplete > 0)
		fail_msg("%u special-use folders are missing from users whose creation was killed"
			 " (first: %s)", incomplete, missing);
}

/*
 * The states a killed creation leaves, made by hand, so the failure does
 * not depend on where a random kill lands: (a) Maildir/ created and
 * nothing in it yet; (b) a complete user whose .Trash has cur/ but not yet
 * new/ and tmp/, with the index to be rebuilt. Opening either must work.
 */
static void test_half_created_folders(void **state)
{
	struct fixture *f = *state;
	struct store_user_options opt = { .create = true };
	struct store_user *u;
	struct store_error err = { 0 };
	char path[512];
	uint32_t uv, uid;

	/* (a) */
	assert_int_equal(mkdir(f->dir, 0700), 0);
	assert_int_equal(mkdir(f->inbox, 0700), 0);
	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("a user with an empty Maildir/ cannot be opened: %s (code %d)", err.msg,
			 (int)err.code);
	torture_hold(HELD_USER, u);
	if (msg_save(u, "INBOX", 1, 0, &uv, &uid, &err) < 0)
		fail_msg("a user with an empty Maildir/: save: %s", err.msg);
	user_close(&u);

	/* (b) */
	torture_rm_rf(f->dir);
	u = user_open(f, true);
	save_n(u, "INBOX", 2, 0, NULL);
	user_close(&u);
	snprintf(path, sizeof(path), "%s/.Trash/tmp", f->inbox);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/.Trash/new", f->inbox);
	assert_int_equal(rmdir(path), 0);
	unlink_index(f);
	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("a user whose .Trash has only cur/ cannot be opened: %s (code %d)",
			 err.msg, (int)err.code);
	torture_hold(HELD_USER, u);
	if (msg_save(u, "Trash", 3, 0, &uv, &uid, &err) < 0)
		fail_msg("a user whose .Trash had only cur/: save to Trash: %s", err.msg);
	user_close(&u);
}

/* ----------------------------------------------------------- index loss */

/* A folder as a client sees it. */
struct snapshot {
	uint32_t uidvalidity, uidnext, count;
	uint64_t highestmodseq;
	uint32_t uids[512], flags[512], kw[512];
	uint64_t n[512];
};

static void take_snapshot(struct store_user *u, const char *name, struct snapshot *s)
{
	struct store_mailbox *mb = mb_open(u, name);
	char why[WHY_SIZE];

	memset(s, 0, sizeof(*s));
	s->uidvalidity = store_mailbox_uidvalidity(mb);
	s->uidnext = store_mailbox_uidnext(mb);
	s->highestmodseq = store_mailbox_highestmodseq(mb);
	s->count = store_mailbox_count(mb);
	assert_true(s->count <= N_ELEMENTS(s->uids));
	for (uint32_t seq = 1; seq <= s->count; seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		int64_t kw = torture_kw_mask(mb, m->keywords, kw_names, KW_COUNT);

		assert_true(kw >= 0);
		s->uids[seq - 1] = m->uid;
		s->flags[seq - 1] = m->flags;
		s->kw[seq - 1] = (uint32_t)kw;
		if (msg_read_verify(mb, m, &s->n[seq - 1], why) < 0)
			fail_msg("%s: %s", name, why);
	}
	mb_close(&mb);
}

/* The folder now against a snapshot: same UIDVALIDITY, the same messages
 * under the same UIDs with the same flags and keywords, UIDNEXT and
 * HIGHESTMODSEQ not lower. */
static void compare_snapshot(struct store_user *u, const char *name, const struct snapshot *s)
{
	struct snapshot now;

	take_snapshot(u, name, &now);
	if (now.uidvalidity != s->uidvalidity)
		fail_msg("%s: UIDVALIDITY %" PRIu32 ", was %" PRIu32, name, now.uidvalidity,
			 s->uidvalidity);
	if (now.uidnext < s->uidnext)
		fail_msg("%s: UIDNEXT went back from %" PRIu32 " to %" PRIu32, name, s->uidnext,
			 now.uidnext);
	if (now.highestmodseq < s->highestmodseq)
		fail_msg("%s: HIGHESTMODSEQ went back from %" PRIu64 " to %" PRIu64, name,
			 s->highestmodseq, now.highestmodseq);
	for (uint32_t i = 0; i < s->count || i < now.count; i++) {
		if (i >= now.count)
			fail_msg("%s: UID %" PRIu32 " (message %" PRIu64 ") is lost", name, s->uids[i],
				 s->n[i]);
		if (i >= s->count)
			fail_msg("%s: UID %" PRIu32 " (message %" PRIu64 ") appeared", name,
				 now.uids[i], now.n[i]);
		if (now.uids[i] != s->uids[i] || now.n[i] != s->n[i])
			fail_msg("%s: seq %" PRIu32 " is UID %" PRIu32 " (message %" PRIu64 "), was"
				 " UID %" PRIu32 " (message %" PRIu64 ")", name, i + 1, now.uids[i],
				 now.n[i], s->uids[i], s->n[i]);
		if (now.flags[i] != s->flags[i] || now.kw[i] != s->kw[i])
			fail_msg("%s: UID %" PRIu32 " has flags %#" PRIx32 " keywords %#" PRIx32
				 ", had %#" PRIx32 " %#" PRIx32, name, now.uids[i], now.flags[i],
				 now.kw[i], s->flags[i], s->kw[i]);
	}
}

static void set_flags(struct store_mailbox *mb, uint32_t uid, enum store_flag_op op,
		      uint32_t flags, const char *kw)
{
	struct store_error err = { 0 };
	const char *names[1] = { kw };

	if (store_mailbox_set_flags(mb, &uid, 1, op, flags, names, kw == NULL ? 0 : 1, 0, NULL,
				    &err) < 0)
		fail_msg("set_flags UID %" PRIu32 ": %s", uid, err.msg);
}

static void expunge(struct store_mailbox *mb, uint32_t uid)
{
	struct store_error err = { 0 };

	if (store_mailbox_expunge(mb, &uid, 1, &err) < 0)
		fail_msg("expunge UID %" PRIu32 ": %s", uid, err.msg);
}

/*
 * A user with INBOX and Work, flags, keywords and expunges (the highest
 * UID of INBOX among them), after a few killed deliveries. Returns the
 * highest UID handed out in INBOX.
 */
static uint32_t populate(struct fixture *f, unsigned kill_rounds)
{
	struct store_error err = { 0 };

	for (unsigned round = 0; round < kill_rounds; round++)
		delivery_round(f, round, false, true);
	struct store_user *u = user_open(f, true);

	if (store_mailbox_create(u, "Work", 0, &err) < 0 && err.code != STORE_ERR_EXISTS)
		fail_msg("create Work: %s", err.msg);
	for (uint64_t n = 500001; n <= 500012; n++)
		save_n(u, "Work", n, n % 3 == 0 ? STORE_FLAG_DRAFT : 0, NULL);
	uint32_t last = 0;

	for (uint64_t n = 600001; n <= 600025; n++)
		last = save_n(u, "INBOX", n, delivered_flags(n), NULL);
	if (last > f->max_uid)
		f->max_uid = last;

	struct store_mailbox *mb = mb_open(u, "INBOX");
	uint32_t count = store_mailbox_count(mb);

	assert_true(count >= 20);
	set_flags(mb, store_mailbox_msg(mb, 2)->uid, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, "Work");
	set_flags(mb, store_mailbox_msg(mb, 3)->uid, STORE_FLAGS_ADD, STORE_FLAG_ANSWERED, "todo");
	set_flags(mb, store_mailbox_msg(mb, 4)->uid, STORE_FLAGS_SET,
		  STORE_FLAG_SEEN | STORE_FLAG_DELETED, "$Label1");
	set_flags(mb, store_mailbox_msg(mb, 5)->uid, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, NULL);
	set_flags(mb, store_mailbox_msg(mb, 6)->uid, STORE_FLAGS_ADD, STORE_FLAG_DRAFT, "later");
	expunge(mb, store_mailbox_msg(mb, 7)->uid);
	/* The highest UID: it must never be handed out again. */
	expunge(mb, last);
	mb_close(&mb);
	mb = mb_open(u, "Work");
	set_flags(mb, store_mailbox_msg(mb, 1)->uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN, "Personal");
	expunge(mb, store_mailbox_msg(mb, store_mailbox_count(mb))->uid);
	mb_close(&mb);
	user_close(&u);
	return last;
}

/* After a rebuild: deliveries get UIDs above everything handed out. */
static void deliver_after(struct fixture *f, struct store_user *u, const char *mailbox,
			  uint32_t above, uint64_t n)
{
	uint32_t uv;
	uint32_t uid = save_n(u, mailbox, n, 0, &uv);

	if (uid <= above)
		fail_msg("%s: a delivery after the rebuild got UID %" PRIu32 ", not above %" PRIu32
			 " (handed out before)", mailbox, uid, above);
	uint32_t uid2 = save_n(u, mailbox, n + 1, 0, &uv);

	assert_true(uid2 > uid);
}

/*
 * Invariant 3 (ROBUSTNESS §33): index.sqlite, its WAL and shm deleted while
 * the store is closed: UIDVALIDITY, every UID, flags and keywords come
 * back; UIDNEXT and HIGHESTMODSEQ do not go back; the next deliveries get
 * UIDs above every UID ever handed out (invariant 2 across the rebuild).
 */
static void test_index_deleted(void **state)
{
	struct fixture *f = *state;
	uint32_t last = populate(f, 4);
	struct store_user *u = user_open(f, false);
	struct snapshot inbox, work;

	take_snapshot(u, "INBOX", &inbox);
	take_snapshot(u, "Work", &work);
	uint32_t work_max = work.uids[work.count - 1] + 1;     /* the expunged one */

	user_close(&u);
	unlink_index(f);
	u = user_open(f, false);
	compare_snapshot(u, "INBOX", &inbox);
	compare_snapshot(u, "Work", &work);
	deliver_after(f, u, "INBOX", last, 700001);
	deliver_after(f, u, "Work", work_max, 700011);
	user_close(&u);

	/* Twice in a row, with the deliveries since: the same again. */
	u = user_open(f, false);
	take_snapshot(u, "INBOX", &inbox);
	user_close(&u);
	unlink_index(f);
	u = user_open(f, false);
	compare_snapshot(u, "INBOX", &inbox);
	deliver_after(f, u, "INBOX", inbox.uids[inbox.count - 1], 700021);
	user_close(&u);
}

/*
 * A crash between creating a new index's schema and the start of its
 * rebuild (the two are separate transactions in index_open_or_rebuild):
 * the next open must still rebuild from the Maildir, keeping every UID.
 * The state is made exactly: a copy of a fresh index with its rows
 * removed, as the kill would leave it.
 */
static void test_index_killed_before_rebuild(void **state)
{
	struct fixture *f = *state;

	populate(f, 0);
	struct store_user *u = user_open(f, false);
	struct snapshot inbox, work;

	take_snapshot(u, "INBOX", &inbox);
	take_snapshot(u, "Work", &work);
	user_close(&u);
	/* The store is closed, so the WAL is checkpointed into the file: empty
	 * it down to what the schema transaction alone commits. */
	index_sql(f, "DELETE FROM message; DELETE FROM expunged; DELETE FROM mailbox;"
		  " DELETE FROM subscription; DELETE FROM meta WHERE key <> 'schema';"
		  " UPDATE usage SET bytes = 0, messages = 0;");
	u = user_open(f, false);
	compare_snapshot(u, "INBOX", &inbox);
	compare_snapshot(u, "Work", &work);
	user_close(&u);
}

/*
 * ROBUSTNESS §33, the index deleted while a process has the store open:
 * that process goes on delivering. Every message it acknowledged is there
 * afterwards exactly once, under the UID it was acknowledged with, and no
 * UID is given to two messages.
 */
static void test_index_deleted_while_open(void **state)
{
	struct fixture *f = *state;
	struct store_user *old = user_open(f, true);

	for (uint64_t n = 1; n <= 5; n++)
		save_n(old, "INBOX", n, 0, NULL);
	unlink_index(f);
	/* Another process opens the user now: it rebuilds a new index. */
	struct store_user *fresh = user_open(f, false);
	uint32_t a = save_n(old, "INBOX", 6, 0, NULL);
	uint32_t b = save_n(fresh, "INBOX", 7, 0, NULL);
	uint32_t c = save_n(old, "INBOX", 8, 0, NULL);

	user_close(&old);
	user_close(&fresh);
	if (a == b || c == b)
		fail_msg("UID %" PRIu32 " was acknowledged for two messages", b);

	struct store_user *u = user_open(f, false);
	struct store_mailbox *mb = mb_open(u, "INBOX");
	uint32_t want[9] = { 0, 1, 2, 3, 4, 5, a, b, c };
	bool seen[9] = { false };
	char why[WHY_SIZE];

	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		uint64_t n;

		if (msg_read_verify(mb, m, &n, why) < 0)
			fail_msg("%s", why);
		assert_true(n >= 1 && n <= 8);
		if (seen[n])
			fail_msg("message %" PRIu64 " is there twice", n);
		seen[n] = true;
		if (m->uid != want[n])
			fail_msg("message %" PRIu64 " was acknowledged as UID %" PRIu32 " but is UID %"
				 PRIu32 " after the index was replaced under a running process", n,
				 want[n], m->uid);
	}
	for (uint64_t n = 1; n <= 8; n++) {
		if (!seen[n])
			fail_msg("message %" PRIu64 " (UID %" PRIu32 ") is lost", n, want[n]);
	}
	mb_close(&mb);
	user_close(&u);
}

/* ------------------------------------------------- damage behind its back */

static void file_of_uid(const char *folder, uint32_t uid, char *path, size_t size)
{
	static const char *const subs[] = { "new", "cur" };

	for (size_t i = 0; i < 2; i++) {
		char dir[512];
		DIR *d;
		struct dirent *e;

		snprintf(dir, sizeof(dir), "%s/%s", folder, subs[i]);
		d = opendir(dir);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			struct store_filename fn;

			if (e->d_name[0] != '.' && store_filename_parse(e->d_name, &fn) == 0 &&
			    fn.uid == uid) {
				snprintf(path, size, "%s/%s", dir, e->d_name);
				closedir(d);
				return;
			}
		}
		closedir(d);
	}
	fail_msg("no file with U=%" PRIu32 " in %s", uid, folder);
}

/*
 * ROBUSTNESS §34: a message file deleted while the store is closed. After
 * reopening its UID is gone, the others are intact, and its UID is never
 * handed out again: not by the next deliveries, not after a rebuild.
 */
static void test_message_file_deleted(void **state)
{
	struct fixture *f = *state;
	struct store_user *u = user_open(f, true);
	uint32_t uids[10];
	char path[1024], why[WHY_SIZE];

	for (uint64_t n = 1; n <= 10; n++)
		uids[n - 1] = save_n(u, "INBOX", n, delivered_flags(n), NULL);
	user_close(&u);
	file_of_uid(f->inbox, uids[9], path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	file_of_uid(f->inbox, uids[3], path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	u = user_open(f, false);
	struct store_mailbox *mb = mb_open(u, "INBOX");
	uint64_t vsum = 0;

	assert_int_equal(store_mailbox_count(mb), 8);
	assert_int_equal(store_mailbox_seq(mb, uids[9]), 0);
	assert_int_equal(store_mailbox_seq(mb, uids[3]), 0);
	for (uint32_t seq = 1; seq <= 8; seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		uint64_t n;

		if (msg_read_verify(mb, m, &n, why) < 0)
			fail_msg("%s", why);
		assert_int_equal(m->uid, uids[n - 1]);
		vsum += m->vsize;
	}
	check_usage(u, 8, vsum);
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("%s", why);
	mb_close(&mb);
	uint32_t next = save_n(u, "INBOX", 11, 0, NULL);

	if (next <= uids[9])
		fail_msg("the deleted message's UID %" PRIu32 " was handed out again (%" PRIu32 ")",
			 uids[9], next);
	user_close(&u);

	/* And after a rebuild, which only sees the files. */
	unlink_index(f);
	u = user_open(f, false);
	uint32_t after = save_n(u, "INBOX", 12, 0, NULL);

	if (after <= next)
		fail_msg("after a rebuild UID %" PRIu32 " was handed out, not above %" PRIu32, after,
			 next);
	mb = mb_open(u, "INBOX");
	assert_int_equal(store_mailbox_count(mb), 10);
	assert_int_equal(store_mailbox_seq(mb, uids[9]), 0);
	assert_int_equal(store_mailbox_seq(mb, uids[3]), 0);
	mb_close(&mb);
	user_close(&u);
}

/* Make the folder's new/ and cur/ look untouched for a minute, as most
 * folders are: the store's cheap sync then trusts their times. */
static void age_folder(const char *folder)
{
	static const char *const subs[] = { "new", "cur" };
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 60;
	ts[1] = ts[0];
	for (size_t i = 0; i < 2; i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", folder, subs[i]);
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
}

/*
 * ROBUSTNESS §34, one index row lost: message 4's row deleted and message
 * 7's row zeroed with SQL on the index. After a sync both come back, with
 * new UIDs above the old maximum, their flags from the file names and
 * their bytes intact; the other UIDs are unchanged. aged: the folder had
 * not changed for a while before the damage (the usual case).
 */
static void row_lost(struct fixture *f, bool aged)
{
	struct store_user *u = user_open(f, true);
	uint32_t uids[10], max = 0;
	char sql[512], why[WHY_SIZE];

	for (uint64_t n = 1; n <= 10; n++) {
		uids[n - 1] = save_n(u, "INBOX", n, delivered_flags(n), NULL);
		max = uids[n - 1];
	}
	if (aged) {
		age_folder(f->inbox);
		struct store_mailbox *mb = mb_open(u, "INBOX");

		mb_close(&mb);
	}
	user_close(&u);
	snprintf(sql, sizeof(sql),
		 "DELETE FROM message WHERE uid = %" PRIu32 " AND mailbox_id ="
		 " (SELECT id FROM mailbox WHERE name = 'INBOX');"
		 "UPDATE message SET uid = 0, guid = '', filename = '', flags = 0, keywords = 0,"
		 " modseq = 0, internal_date = 0, save_date = 0 WHERE uid = %" PRIu32
		 " AND mailbox_id = (SELECT id FROM mailbox WHERE name = 'INBOX');",
		 uids[3], uids[6]);
	index_sql(f, sql);

	u = user_open(f, false);
	struct store_mailbox *mb = mb_open(u, "INBOX");
	struct store_error err = { 0 };
	bool seen[11] = { false };

	assert_int_equal(store_mailbox_sync(mb, &err), 0);
	for (uint32_t seq = 1; seq <= store_mailbox_count(mb); seq++) {
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		uint64_t n;

		if (m->uid == 0)
			fail_msg("UID 0 is visible");
		if (msg_read_verify(mb, m, &n, why) < 0)
			fail_msg("%s", why);
		assert_true(n >= 1 && n <= 10);
		if (seen[n])
			fail_msg("message %" PRIu64 " is there twice", n);
		seen[n] = true;
		if (n == 4 || n == 7) {
			if (m->uid <= max)
				fail_msg("message %" PRIu64 " came back as UID %" PRIu32 ", not above %"
					 PRIu32, n, m->uid, max);
		} else if (m->uid != uids[n - 1]) {
			fail_msg("message %" PRIu64 " moved from UID %" PRIu32 " to %" PRIu32, n,
				 uids[n - 1], m->uid);
		}
		if (m->flags != delivered_flags(n))
			fail_msg("message %" PRIu64 " has flags %#" PRIx32 ", not %#" PRIx32, n,
				 m->flags, delivered_flags(n));
	}
	for (uint64_t n = 1; n <= 10; n++) {
		if (!seen[n])
			fail_msg("message %" PRIu64 " (UID %" PRIu32 ", whose index row was %s) is"
				 " not visible after a sync", n, uids[n - 1],
				 n == 4 ? "deleted" : n == 7 ? "zeroed" : "intact");
	}
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("%s", why);
	mb_close(&mb);
	uint32_t next = save_n(u, "INBOX", 11, 0, NULL);

	assert_true(next > max);
	user_close(&u);
}

static void test_index_row_lost(void **state)
{
	row_lost(*state, false);
}

static void test_index_row_lost_settled_folder(void **state)
{
	row_lost(*state, true);
}

static void dir_times(const char *folder, struct timespec ts[2])
{
	static const char *const subs[] = { "new", "cur" };

	for (size_t i = 0; i < 2; i++) {
		char path[512];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", folder, subs[i]);
		assert_int_equal(stat(path, &st), 0);
		ts[i] = st.st_mtim;
	}
}

static void set_dir_times(const char *folder, const struct timespec ts[2])
{
	static const char *const subs[] = { "new", "cur" };

	for (size_t i = 0; i < 2; i++) {
		char path[512];
		struct timespec both[2] = { ts[i], ts[i] };

		snprintf(path, sizeof(path), "%s/%s", folder, subs[i]);
		assert_int_equal(utimensat(AT_FDCWD, path, both, 0), 0);
	}
}

/*
 * A MOVE cut short after its commit, before it removed the source file
 * (copy.c: "a sync finds them again as messages the index no longer has —
 * a duplicate at worst"). The state a kill leaves there is made exactly:
 * the move done, the source file put back, the source directory's times
 * as they were, since the removal never happened. A new session must see
 * the file as a message again (a new UID above the old ones), so that the
 * index and the files agree; and after a rebuild the source's expunged UID
 * must not come back.
 */
static void test_move_cut_short_after_commit(void **state)
{
	struct fixture *f = *state;
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	struct timespec before[2];
	uint32_t uids[6], dst, uv;
	char src[1024], moved[1024], work[256], why[WHY_SIZE];

	if (store_mailbox_create(u, "Work", 0, &err) < 0)
		fail_msg("create Work: %s", err.msg);
	for (uint64_t n = 1; n <= 6; n++)
		uids[n - 1] = save_n(u, "INBOX", n, STORE_FLAG_SEEN, NULL);
	/* A folder not changed for a while, as last synced. */
	age_folder(f->inbox);
	struct store_mailbox *mb = mb_open(u, "INBOX");

	dir_times(f->inbox, before);
	file_of_uid(f->inbox, uids[2], src, sizeof(src));
	if (store_mailbox_copy(mb, &uids[2], 1, "Work", true, &uv, &dst, &err) < 0)
		fail_msg("move: %s", err.msg);
	mb_close(&mb);
	user_close(&u);
	snprintf(work, sizeof(work), "%s/.Work", f->inbox);
	file_of_uid(work, dst, moved, sizeof(moved));
	/* The kill came before unlink(src). */
	assert_int_equal(link(moved, src), 0);
	set_dir_times(f->inbox, before);

	u = user_open(f, false);
	mb = mb_open(u, "INBOX");
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("after a MOVE cut short before the source file was removed: %s", why);
	assert_int_equal(store_mailbox_seq(mb, uids[2]), 0);
	mb_close(&mb);
	user_close(&u);

	/* A rebuild only sees the files: UID uids[2] was expunged from INBOX
	 * (clients were told so), it must not come back. */
	unlink_index(f);
	u = user_open(f, false);
	mb = mb_open(u, "INBOX");
	if (store_mailbox_seq(mb, uids[2]) != 0)
		fail_msg("after a rebuild, INBOX UID %" PRIu32 " is back, though its MOVE to Work"
			 " (as UID %" PRIu32 ") was acknowledged and the UID expunged", uids[2], dst);
	mb_close(&mb);
	user_close(&u);
}

/*
 * ROBUSTNESS §34, the index truncated to half its size: detected, rebuilt,
 * every message back under its UID with its flags.
 */
static void test_index_truncated(void **state)
{
	struct fixture *f = *state;

	populate(f, 0);
	struct store_user *u = user_open(f, false);
	struct snapshot inbox, work;
	char path[256];
	struct stat st;

	/* Enough rows that half the file cuts through the message table. */
	for (uint64_t n = 800001; n <= 800060; n++)
		save_n(u, "INBOX", n, delivered_flags(n), NULL);
	take_snapshot(u, "INBOX", &inbox);
	take_snapshot(u, "Work", &work);
	user_close(&u);
	snprintf(path, sizeof(path), "%s/index.sqlite", f->dir);
	assert_int_equal(stat(path, &st), 0);
	fprintf(stderr, "# truncating the index from %lld to %lld bytes\n",
		(long long)st.st_size, (long long)st.st_size / 2);
	assert_int_equal(truncate(path, st.st_size / 2), 0);

	struct store_user_options opt = { .create = false };
	struct store_error err = { 0 };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("store_user_open after truncation: %s (code %d)", err.msg, (int)err.code);
	torture_hold(HELD_USER, u);
	/* Detected: the damaged file was set aside and the index rebuilt. */
	DIR *d = opendir(f->dir);
	struct dirent *e;
	bool aside = false;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		aside |= strncmp(e->d_name, "index.sqlite.corrupt-", 21) == 0;
	closedir(d);
	fprintf(stderr, "# truncated index %s\n", aside ? "set aside and rebuilt" :
		"not set aside");
	compare_snapshot(u, "INBOX", &inbox);
	compare_snapshot(u, "Work", &work);
	deliver_after(f, u, "INBOX", inbox.uidnext - 1, 900001);
	user_close(&u);
	/* Not merely readable by luck: the index in place is sound. */
	index_check(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivery_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_expunge_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_creation_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_created_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_killed_before_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_deleted_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_file_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_row_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_row_lost_settled_folder, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_move_cut_short_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_truncated, setup, teardown),
	};

	log_init("test-store-crash", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	seed = torture_seed("test-store-crash");
	/* SQLite makes its temporary files (statement journals) in /var/tmp
	 * and unlinks them at once; a child killed in between would leave one
	 * there. They go into a directory of this run instead, read by SQLite
	 * when it initialises, so before any store is opened. */
	char sql_tmp[] = "/tmp/tern-test-crash-sqlite-XXXXXX";

	if (mkdtemp(sql_tmp) == NULL || setenv("SQLITE_TMPDIR", sql_tmp, 1) < 0)
		return 1;
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	torture_rm_rf(sql_tmp);
	return failed;
}
