/*
 * Disk-full tests for storage/ (DESIGN invariant 5, ROBUSTNESS §31, §32):
 * the user lives on a small tmpfs (16 MiB) that the test mounts; it must
 * run as root, otherwise (or if the mount is refused) every case is skipped
 * with the reason. A filler file takes all the space, then gives some
 * pages back, so that ENOSPC strikes at each step of a save in turn: the
 * message file, the index's WAL, the UID reservation file. Every failure
 * must be STORE_ERR_NOSPACE (LMTP 452, IMAP NO, never a permanent error),
 * leave nothing visible and nothing in tmp/, and leave the data already
 * stored untouched and readable; once space returns, the next save works.
 * Flag changes, expunge, MOVE and COPY are checked the same way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/mount.h>

#include "store-torture.h"

/* Room for the index's WAL, which SQLite lets grow to about 4 MiB before
 * it checkpoints: on a smaller file system the WAL alone fills it. */
#define FS_OPTIONS "size=16m,mode=0700"
#define PAGE 4096

struct fixture {
	char mnt[128];
	char dir[160];
	char inbox[192];
	char filler[160];
	bool mounted;
	char why_not[256];
	/* The messages stored so far: UID -> n. */
	uint32_t uids[256];
	uint64_t ns[256];
	unsigned count;
	uint64_t next_n;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	*state = f;
	snprintf(f->mnt, sizeof(f->mnt), "/tmp/tern-test-nospace-XXXXXX");
	if (mkdtemp(f->mnt) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/user", f->mnt);
	snprintf(f->inbox, sizeof(f->inbox), "%s/Maildir", f->dir);
	snprintf(f->filler, sizeof(f->filler), "%s/filler", f->mnt);
	f->next_n = 1;
	if (geteuid() != 0) {
		snprintf(f->why_not, sizeof(f->why_not), "not root: cannot mount a small tmpfs");
		return 0;
	}
	if (mount("tmpfs", f->mnt, "tmpfs", MS_NOSUID | MS_NODEV, FS_OPTIONS) < 0) {
		snprintf(f->why_not, sizeof(f->why_not), "mount -t tmpfs -o " FS_OPTIONS " %s: %s",
			 f->mnt, strerror(errno));
		return 0;
	}
	f->mounted = true;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	torture_release();
	if (f->mounted && umount2(f->mnt, 0) < 0 && umount2(f->mnt, MNT_DETACH) < 0)
		fprintf(stderr, "# umount %s: %s\n", f->mnt, strerror(errno));
	torture_rm_rf(f->mnt);
	free(f);
	return 0;
}

static void need_tmpfs(struct fixture *f)
{
	if (!f->mounted) {
		print_message("# SKIP: %s\n", f->why_not);
		skip();
	}
}

static struct store_user *user_open(struct fixture *f, bool create)
{
	struct store_user_options opt = { .create = create };
	struct store_user *u;
	struct store_error err = { 0 };

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("store_user_open: %s (code %d)", err.msg, (int)err.code);
	return torture_hold(HELD_USER, u);
}

static struct store_mailbox *mb_open(struct store_user *u)
{
	struct store_mailbox *mb;
	struct store_error err = { 0 };

	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		fail_msg("store_mailbox_open: %s (code %d)", err.msg, (int)err.code);
	return torture_hold(HELD_MAILBOX, mb);
}

/* Save the next message; 0, or -1 with *err. */
static int try_save(struct fixture *f, struct store_user *u, uint32_t flags,
		    struct store_error *err)
{
	uint32_t uv, uid;
	uint64_t n = f->next_n++;

	if (msg_save(u, "INBOX", n, flags, &uv, &uid, err) < 0)
		return -1;
	if (f->count > 0 && uid <= f->uids[f->count - 1])
		fail_msg("message %" PRIu64 " got UID %" PRIu32 ", not above %" PRIu32, n, uid,
			 f->uids[f->count - 1]);
	assert_true(f->count < N_ELEMENTS(f->uids));
	f->uids[f->count] = uid;
	f->ns[f->count] = n;
	f->count++;
	return 0;
}

/* Take every free byte of the file system with the filler file. */
static void fill(struct fixture *f)
{
	static const size_t sizes[] = { 65536, PAGE, 1 };
	static char junk[65536];
	int fd = open(f->filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	memset(junk, 'x', sizeof(junk));
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		for (unsigned k = 0; k < 100000; k++) {
			if (write(fd, junk, sizes[i]) < 0) {
				if (errno != ENOSPC)
					fail_msg("filling: %s", strerror(errno));
				break;
			}
		}
	}
	close(fd);
}

/* Give back about bytes of space (whole pages) from the filler. */
static void free_space(struct fixture *f, off_t bytes)
{
	struct stat st;

	assert_int_equal(stat(f->filler, &st), 0);
	off_t size = st.st_size > bytes ? st.st_size - bytes : 0;

	assert_int_equal(truncate(f->filler, size), 0);
}

/*
 * What a client sees now is exactly what was stored: the same UIDs with
 * the same bytes, the counters agree, the file names are the index, and
 * nothing is left in tmp/.
 */
static void check_intact(struct fixture *f, struct store_user *u, const char *when)
{
	struct store_mailbox *mb = mb_open(u);
	struct store_error err = { 0 };
	char why[WHY_SIZE];
	uint64_t bytes, messages, vsum = 0;

	if (store_mailbox_count(mb) != f->count)
		fail_msg("%s: %" PRIu32 " messages visible, %u were stored", when,
			 store_mailbox_count(mb), f->count);
	for (unsigned i = 0; i < f->count; i++) {
		uint32_t seq = store_mailbox_seq(mb, f->uids[i]);
		uint64_t n = 0;

		if (seq == 0)
			fail_msg("%s: UID %" PRIu32 " (message %" PRIu64 ") is lost", when, f->uids[i],
				 f->ns[i]);
		const struct store_msg *m = store_mailbox_msg(mb, seq);

		if (msg_read_verify(mb, m, &n, why) < 0)
			fail_msg("%s: %s", when, why);
		if (n != f->ns[i])
			fail_msg("%s: UID %" PRIu32 " holds message %" PRIu64 ", not %" PRIu64, when,
				 f->uids[i], n, f->ns[i]);
		vsum += m->vsize;
	}
	if (folder_matches_index(f->inbox, mb, why) < 0)
		fail_msg("%s: %s", when, why);
	int left = dir_count(f->inbox, "tmp");

	if (left != 0)
		fail_msg("%s: %d files left in tmp/", when, left);
	assert_int_equal(store_user_usage(u, &bytes, &messages, &err), 0);
	if (messages != f->count || bytes != vsum)
		fail_msg("%s: usage %" PRIu64 " messages %" PRIu64 " bytes, stored %u and %" PRIu64,
			 when, messages, bytes, f->count, vsum);
	torture_unhold(mb);
	store_mailbox_close(&mb);
}

static void populate(struct fixture *f, struct store_user *u)
{
	struct store_error err = { 0 };

	/* Message 29 is large (more than the save buffer). */
	for (int i = 0; i < 30; i++) {
		if (try_save(f, u, i % 3 == 0 ? STORE_FLAG_SEEN : 0, &err) < 0)
			fail_msg("save before the disk is full: %s", err.msg);
	}
}

/* On the full disk: one file per stored message in new/ and cur/, and
 * nothing in tmp/ (nothing half-saved is visible, nothing leaks). */
static void check_files(struct fixture *f, const char *when)
{
	int files = dir_count(f->inbox, "new") + dir_count(f->inbox, "cur");
	int tmp = dir_count(f->inbox, "tmp");

	if (files != (int)f->count || tmp != 0)
		fail_msg("%s: %d files in new/ and cur/ for %u messages, %d in tmp/", when, files,
			 f->count, tmp);
}

/*
 * The disk full: a small message fails at the commit, a large one already
 * while it is written; both with NOSPACE, no file left behind. With the
 * space back, the stored messages are intact and nothing else is there;
 * the next save works and gets a UID above all the others.
 */
static void test_save_disk_full(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };

	populate(f, u);
	fill(f);
	f->next_n = 100;        /* small */
	if (try_save(f, u, 0, &err) == 0)
		fail_msg("a save succeeded on a full disk");
	if (err.code != STORE_ERR_NOSPACE)
		fail_msg("a save on a full disk failed with code %d (%s), not NOSPACE",
			 (int)err.code, err.msg);
	check_files(f, "after a small save on a full disk");

	f->next_n = 58;         /* 60-110 KiB: fails inside store_save_write */
	if (try_save(f, u, STORE_FLAG_FLAGGED, &err) == 0)
		fail_msg("a large save succeeded on a full disk");
	if (err.code != STORE_ERR_NOSPACE)
		fail_msg("a large save on a full disk failed with code %d (%s), not NOSPACE",
			 (int)err.code, err.msg);
	check_files(f, "after a large save on a full disk");

	free_space(f, 64 << 20);
	check_intact(f, u, "with space back");
	f->next_n = 200;
	if (try_save(f, u, 0, &err) < 0)
		fail_msg("with space back, a save failed: %s (code %d)", err.msg, (int)err.code);
	check_intact(f, u, "after a save with space back");
	torture_unhold(u);
	store_user_close(&u);
	u = user_open(f, false);
	check_intact(f, u, "reopened");
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * ENOSPC at each step of a save in turn: from no free page to 48 free
 * pages, each try saves a message of 0.1-110 KiB. Each either succeeds
 * (and the message is there, intact) or fails with NOSPACE (and nothing
 * is there); the stored messages never change.
 */
static void test_save_each_step(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	unsigned ok = 0, refused = 0;

	populate(f, u);
	f->next_n = 1000;
	for (off_t pages = 0; pages <= 48; pages++) {
		char when[64];

		fill(f);
		free_space(f, pages * PAGE);
		if (try_save(f, u, pages % 2 == 0 ? 0 : STORE_FLAG_SEEN, &err) == 0) {
			ok++;
		} else {
			if (err.code != STORE_ERR_NOSPACE)
				fail_msg("%lld free pages: the save failed with code %d (%s), not"
					 " NOSPACE", (long long)pages, (int)err.code, err.msg);
			refused++;
		}
		check_files(f, "full disk");
		/* With space back: exactly what was stored, intact. */
		free_space(f, 64 << 20);
		snprintf(when, sizeof(when), "%lld free pages, then space back", (long long)pages);
		check_intact(f, u, when);
	}
	fprintf(stderr, "# %u saves refused for lack of space, %u succeeded\n", refused, ok);
	assert_true(refused > 0);
	free_space(f, 64 << 20);
	if (try_save(f, u, 0, &err) < 0)
		fail_msg("with space back, a save failed: %s (code %d)", err.msg, (int)err.code);
	torture_unhold(u);
	store_user_close(&u);
	u = user_open(f, false);
	check_intact(f, u, "reopened with space back");
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * Flag changes and an expunge on a full disk (the mailbox was opened
 * before): each succeeds or fails with NOSPACE. Once space is back, a
 * STORE that succeeded shows, one that failed changed nothing (not in the
 * index, and not later through the file names it renamed); the index and
 * the file names agree, and the other messages are intact.
 */
static void test_flags_expunge_disk_full(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	const char *kw[] = { "NewKeyword" };
	uint32_t before[8];
	int ret[8];
	unsigned refused = 0;

	populate(f, u);
	struct store_mailbox *mb = mb_open(u);

	fill(f);
	for (unsigned i = 0; i < 8; i++) {
		uint32_t uid = f->uids[i];

		before[i] = store_mailbox_msg(mb, store_mailbox_seq(mb, uid))->flags;
		ret[i] = store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
						 kw, i % 2, 0, NULL, &err);
		if (ret[i] < 0 && err.code != STORE_ERR_NOSPACE)
			fail_msg("set_flags on a full disk: code %d (%s), not NOSPACE", (int)err.code,
				 err.msg);
		refused += ret[i] < 0;
	}
	uint32_t last = f->uids[f->count - 1];
	int xret = store_mailbox_expunge(mb, &last, 1, &err);

	if (xret < 0 && err.code != STORE_ERR_NOSPACE)
		fail_msg("expunge on a full disk: code %d (%s), not NOSPACE", (int)err.code, err.msg);
	torture_unhold(mb);
	store_mailbox_close(&mb);

	free_space(f, 64 << 20);
	mb = mb_open(u);
	/* An expunge that failed may still have removed the file (it goes
	 * first); either way the message is gone or intact, not broken. */
	bool gone = store_mailbox_seq(mb, last) == 0;

	fprintf(stderr, "# full disk: %u of 8 flag changes refused; the expunge %s, the message"
		" is %s\n", refused, xret == 0 ? "succeeded" : "was refused",
		gone ? "gone" : "there");
	if (xret == 0 && !gone)
		fail_msg("UID %" PRIu32 " is there after its expunge succeeded", last);
	if (gone)
		f->count--;
	for (unsigned i = 0; i < 8; i++) {
		const struct store_msg *m = store_mailbox_msg(mb, store_mailbox_seq(mb, f->uids[i]));
		uint32_t want = ret[i] == 0 ? before[i] | STORE_FLAG_FLAGGED : before[i];

		if (m->flags != want)
			fail_msg("UID %" PRIu32 ": flags %#" PRIx32 " after a STORE that %s on a full"
				 " disk; expected %#" PRIx32, f->uids[i], m->flags,
				 ret[i] == 0 ? "succeeded" : "failed with NOSPACE", want);
	}
	torture_unhold(mb);
	store_mailbox_close(&mb);
	check_intact(f, u, "with space back after flag changes on a full disk");
	mb = mb_open(u);
	uint32_t uid = f->uids[0];

	if (store_mailbox_set_flags(mb, &uid, 1, STORE_FLAGS_ADD, STORE_FLAG_ANSWERED, kw, 1, 0,
				    NULL, &err) < 0)
		fail_msg("with space back, set_flags failed: %s", err.msg);
	torture_unhold(mb);
	store_mailbox_close(&mb);
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * ROBUSTNESS §32: MOVE and COPY on a full disk. Each succeeds or fails with
 * NOSPACE. Once space is back: a failed MOVE left its source intact (same
 * UIDs, same bytes) and nothing in the destination; a successful one moved
 * the messages to the UIDs it returned; the same for COPY.
 */
static void test_move_copy_disk_full(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	char why[WHY_SIZE], work[256];
	uint32_t moved[3], copied[2], uv, dst_move[3] = { 0 }, dst_copy[2] = { 0 };

	populate(f, u);
	if (store_mailbox_create(u, "Work", 0, &err) < 0)
		fail_msg("create Work: %s", err.msg);
	struct store_mailbox *mb = mb_open(u);

	memcpy(moved, &f->uids[0], sizeof(moved));
	memcpy(copied, &f->uids[3], sizeof(copied));
	uint64_t moved_n[3] = { f->ns[0], f->ns[1], f->ns[2] };
	uint64_t copied_n[2] = { f->ns[3], f->ns[4] };

	fill(f);
	int mret = store_mailbox_copy(mb, moved, 3, "Work", true, &uv, dst_move, &err);

	if (mret < 0 && err.code != STORE_ERR_NOSPACE)
		fail_msg("MOVE on a full disk: code %d (%s), not NOSPACE", (int)err.code, err.msg);
	int cret = store_mailbox_copy(mb, copied, 2, "Work", false, &uv, dst_copy, &err);

	if (cret < 0 && err.code != STORE_ERR_NOSPACE)
		fail_msg("COPY on a full disk: code %d (%s), not NOSPACE", (int)err.code, err.msg);
	fprintf(stderr, "# full disk: MOVE %s, COPY %s\n", mret == 0 ? "succeeded" : "refused",
		cret == 0 ? "succeeded" : "refused");
	torture_unhold(mb);
	store_mailbox_close(&mb);
	free_space(f, 64 << 20);

	/* The source: a successful MOVE took its messages away. */
	if (mret == 0) {
		unsigned keep = 0;

		for (unsigned i = 0; i < f->count; i++) {
			if (f->uids[i] != moved[0] && f->uids[i] != moved[1] && f->uids[i] != moved[2]) {
				f->uids[keep] = f->uids[i];
				f->ns[keep] = f->ns[i];
				keep++;
			}
		}
		f->count = keep;
	}
	check_intact(f, u, "INBOX with space back after MOVE and COPY on a full disk");

	/* The destination: exactly what succeeded, under the returned UIDs. */
	uint32_t want = (mret == 0 ? 3 : 0) + (cret == 0 ? 2 : 0);

	if (store_mailbox_open(u, "Work", &mb, &err) < 0)
		fail_msg("open Work: %s", err.msg);
	torture_hold(HELD_MAILBOX, mb);
	if (store_mailbox_count(mb) != want)
		fail_msg("Work has %" PRIu32 " messages; MOVE %s and COPY %s on the full disk",
			 store_mailbox_count(mb), mret == 0 ? "succeeded" : "failed",
			 cret == 0 ? "succeeded" : "failed");
	for (unsigned i = 0; i < 5; i++) {
		uint32_t uid = i < 3 ? dst_move[i] : dst_copy[i - 3];
		uint64_t n = 0, want_n = i < 3 ? moved_n[i] : copied_n[i - 3];

		if ((i < 3 ? mret : cret) != 0)
			continue;
		uint32_t seq = store_mailbox_seq(mb, uid);

		if (seq == 0)
			fail_msg("Work UID %" PRIu32 " (message %" PRIu64 ") is missing", uid, want_n);
		if (msg_read_verify(mb, store_mailbox_msg(mb, seq), &n, why) < 0)
			fail_msg("Work: %s", why);
		assert_true(n == want_n);
	}
	snprintf(work, sizeof(work), "%s/.Work", f->inbox);
	if (folder_matches_index(work, mb, why) < 0)
		fail_msg("Work: %s", why);
	torture_unhold(mb);
	store_mailbox_close(&mb);
	torture_unhold(u);
	store_user_close(&u);
}

/* Make new/ and cur/ look unchanged for a minute, as most folders are. */
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

/* Open the user and INBOX afresh on the full disk and read every message:
 * the mail already stored stays readable (DESIGN invariant 5). */
static void read_on_full_disk(struct fixture *f, const char *when)
{
	struct store_user_options opt = { .create = false };
	struct store_user *u;
	struct store_mailbox *mb;
	struct store_error err = { 0 };
	char why[WHY_SIZE];

	if (store_user_open(f->dir, &opt, &u, &err) < 0)
		fail_msg("%s: store_user_open on a full disk: %s (code %d)", when, err.msg,
			 (int)err.code);
	torture_hold(HELD_USER, u);
	if (store_mailbox_open(u, "INBOX", &mb, &err) < 0)
		fail_msg("%s: store_mailbox_open (SELECT) on a full disk: %s (code %d)", when,
			 err.msg, (int)err.code);
	torture_hold(HELD_MAILBOX, mb);
	assert_int_equal(store_mailbox_count(mb), f->count);
	for (unsigned i = 0; i < f->count; i++) {
		uint32_t seq = store_mailbox_seq(mb, f->uids[i]);
		uint64_t n = 0;

		assert_true(seq != 0);
		if (msg_read_verify(mb, store_mailbox_msg(mb, seq), &n, why) < 0)
			fail_msg("%s: %s", when, why);
		assert_true(n == f->ns[i]);
	}
	torture_unhold(mb);
	store_mailbox_close(&mb);
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * Reading on a full disk while another session of the user is open (a
 * daemon serving it), the folder untouched for a while: a new session
 * opens INBOX and reads every message.
 */
static void test_read_disk_full_settled(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);

	populate(f, u);
	age_folder(f->inbox);
	/* A session with space records the folder's state. */
	struct store_mailbox *mb = mb_open(u);

	torture_unhold(mb);
	store_mailbox_close(&mb);
	fill(f);
	read_on_full_disk(f, "another session open, folder settled");
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * A folder that received mail a moment ago, as an active INBOX always has,
 * on a full disk: the session that has it open syncs (NOOP, IDLE) again
 * and again as time passes and reads every message, and a new session
 * (the index already open in the process that serves the user) does the
 * same. A sync that finds nothing new has nothing that must be written:
 * remembering the directory times is an optimisation, not a reason to
 * fail.
 */
static void test_read_disk_full(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);
	struct store_error err = { 0 };
	char why[WHY_SIZE];

	populate(f, u);
	/* Opened at once: the directory times are too recent to be trusted. */
	struct store_mailbox *mb = mb_open(u);

	fill(f);
	/* Time passes (the directory times become old enough to trust). */
	age_folder(f->inbox);
	for (int i = 0; i < 3; i++) {
		if (store_mailbox_sync(mb, &err) < 0)
			fail_msg("sync %d of a folder with nothing new, on a full disk: %s (code %d)",
				 i + 1, err.msg, (int)err.code);
	}
	for (unsigned i = 0; i < f->count; i++) {
		uint64_t n = 0;

		if (msg_read_verify(mb, store_mailbox_msg(mb, store_mailbox_seq(mb, f->uids[i])),
				    &n, why) < 0)
			fail_msg("on a full disk: %s", why);
	}
	torture_unhold(mb);
	store_mailbox_close(&mb);
	read_on_full_disk(f, "another session open, folder just changed");
	torture_unhold(u);
	store_user_close(&u);
}

/*
 * The same with no session of the user open (the usual case for a user
 * who logs in after the disk filled up): the index is opened afresh.
 */
static void test_read_disk_full_first_session(void **state)
{
	struct fixture *f = *state;

	need_tmpfs(f);
	struct store_user *u = user_open(f, true);

	populate(f, u);
	age_folder(f->inbox);
	struct store_mailbox *mb = mb_open(u);

	torture_unhold(mb);
	store_mailbox_close(&mb);
	torture_unhold(u);
	store_user_close(&u);
	fill(f);
	read_on_full_disk(f, "first session, folder settled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_save_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_each_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_expunge_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_copy_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_disk_full_settled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_disk_full_first_session, setup, teardown),
	};

	log_init("test-store-nospace", LOG_TARGET_STDERR, LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
