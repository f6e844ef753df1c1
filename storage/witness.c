/*
 * witness.c — directory times that one of our writers can vouch for.
 *
 * A sync trusts the time of new/ or cur/ only once its timestamp tick is
 * over (sync.c, settled()): another program's change in the same tick
 * would leave the time where it was. So every flag change or expunge of
 * ours used to leave cur/ untrusted, and the next open had to list it
 * (~30 ms of readdir at 100,000 files) to learn that nothing else had
 * happened.
 *
 * A writer now watches new/ and cur/ with inotify, under the index write
 * lock, from before its first change until just before its commit. If the
 * directory's time was the trusted one the index records when it began,
 * and every event it sees is one of its own, it knows what the directory
 * holds: what the index will hold after its commit. It then sets the
 * directory's time one nanosecond before the time its own last change
 * left there (utimensat): file system times do not go back, so no later
 * change, ours or another program's, can leave that time again, and the
 * index records it in the same transaction as trusted. Any other event
 * (a rename by mutt, a delivery by another MDA), a lost event (queue
 * overflow) or a failed call leaves the time untrusted, as before.
 *
 * Each thread keeps one inotify descriptor for its lifetime: creating and
 * closing one per transaction would cost up to 20 ms at the close (the
 * kernel waits for its readers), adding and removing watches ~10 µs.
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCHED_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

static const char *const dir_names[STORE_DIGEST_DIRS] = { "new", "cur" };

static bool disabled; /* for tests */

void store__witness_disable(bool off)
{
	disabled = off;
}

static pthread_key_t fd_key;
static pthread_once_t fd_once = PTHREAD_ONCE_INIT;

/* The key holds fd + 1, so that NULL means none. */
static void fd_close(void *p)
{
	close((int)((intptr_t)p - 1));
}

static void fd_key_make(void)
{
	if (pthread_key_create(&fd_key, fd_close) != 0)
		log_warn("witness: no thread key; directory times stay untrusted after changes");
}

static int thread_fd(void)
{
	pthread_once(&fd_once, fd_key_make);
	void *p = pthread_getspecific(fd_key);

	if (p != NULL)
		return (int)((intptr_t)p - 1);
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (fd < 0)
		return -1;
	if (pthread_setspecific(fd_key, (void *)(intptr_t)(fd + 1)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read every queued event; with counts, count ours per directory.
 * False if the queue overflowed or a watched directory went. */
static bool read_events(struct store_witness *w, unsigned counts[STORE_DIGEST_DIRS])
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ok = true;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (counts == NULL)
				continue;
			if (ev->mask & IN_Q_OVERFLOW)
				ok = false;
			for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
				if (ev->wd != w->wd[d])
					continue;
				if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
					ok = false;
				if (ev->mask & WATCHED_EVENTS)
					counts[d]++;
			}
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		ok = false;
	return ok;
}

void store__witness_begin(struct store_witness *w, const char *folder,
			  const struct store_mbox_row *row)
{
	const int64_t known[STORE_DIGEST_DIRS] = { row->new_mtime, row->cur_mtime };
	char path[4096];

	memset(w, 0, sizeof(*w));
	w->wd[STORE_DIGEST_NEW] = w->wd[STORE_DIGEST_CUR] = -1;
	w->fd = disabled ? -1 : thread_fd();
	if (w->fd < 0)
		return;
	/* Left over from earlier transactions of this thread (the removal
	 * of their watches). */
	read_events(w, NULL);
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		snprintf(path, sizeof(path), "%s/%s", folder, dir_names[d]);
		w->wd[d] = inotify_add_watch(w->fd, path, WATCHED_EVENTS | IN_ONLYDIR);
		/* Watched first, then looked at: a change between the two is
		 * seen as an event. */
		w->trusted[d] = w->wd[d] >= 0 && known[d] != 0 && store__mtime_ns(path) == known[d];
	}
}

void store__witness_change(struct store_witness *w, const char *from, const char *to)
{
	const char *rel[2] = { from, to };

	for (int i = 0; i < 2; i++) {
		if (rel[i] == NULL)
			continue;
		for (int d = 0; d < STORE_DIGEST_DIRS; d++)
			if (strncmp(rel[i], dir_names[d], 3) == 0 && rel[i][3] == '/')
				w->expected[d]++;
	}
}

/* Set path's time 1 ns before its current one; the time now kept, or 0. */
static int64_t step_back(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	int64_t left = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec - 1;
	struct timespec times[2] = {
		{ .tv_nsec = UTIME_OMIT },
		{ .tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL },
	};

	if (utimensat(AT_FDCWD, path, times, 0) < 0)
		return 0;
	/* The file system may keep coarser times than asked for. */
	int64_t kept = store__mtime_ns(path);

	return kept > 0 && kept <= left ? kept : 0;
}

int store__witness_end(struct store_witness *w, struct store_user *u, const char *folder,
		       struct store_mbox_row *row, struct store_error *err)
{
	int64_t *times[STORE_DIGEST_DIRS] = { &row->new_mtime, &row->cur_mtime };
	int64_t witnessed[STORE_DIGEST_DIRS] = { 0 };
	unsigned counts[STORE_DIGEST_DIRS] = { 0 };
	bool changed = false;
	char path[4096];

	if (w->fd < 0)
		return 0;
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		if (!w->trusted[d] || w->expected[d] == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", folder, dir_names[d]);
		witnessed[d] = step_back(path);
	}
	/* Read after the last look at the times: an event from any moment
	 * before is counted, a change after it leaves a later time. */
	bool ok = read_events(w, counts);

	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		if (w->expected[d] == 0)
			continue;
		/* Untrusted now whatever happened: our change moved the time. */
		int64_t t = ok && counts[d] == w->expected[d] ? witnessed[d] : 0;

		if (*times[d] != t) {
			*times[d] = t;
			changed = true;
		}
	}
	store__witness_cancel(w);
	if (!changed)
		return 0;
	return store__mbox_save_times(u, row, err);
}

void store__witness_cancel(struct store_witness *w)
{
	for (int d = 0; d < STORE_DIGEST_DIRS; d++) {
		if (w->fd >= 0 && w->wd[d] >= 0)
			inotify_rm_watch(w->fd, w->wd[d]);
		w->wd[d] = -1;
	}
}
