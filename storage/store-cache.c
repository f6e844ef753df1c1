/*
 * store-cache.c — users' stores kept open between their uses.
 *
 * Opening a store costs far more than most of the work done with it: SQLite
 * opens the index and reads its schema (the full-text index's tables and
 * triggers make that the largest part), and when no other connection has
 * it open it rebuilds its WAL index from the whole WAL file (megabytes of
 * reads); the layout is checked; and closing the last connection
 * checkpoints the WAL (two more fsyncs). An MTA delivers to the same users
 * over and over, and mail clients log in again and again (webmail opens a
 * session per page; phones poll), so a store a daemon is done with — an
 * LMTP transaction's, an IMAP or POP3 session's at logout — is kept here,
 * idle, for the next one that wants the same user, instead of being closed.
 * In tern-imapd's mixed benchmark the open and the close were 16% of the
 * daemon's CPU.
 *
 * A store is used by one owner at a time: it is taken out of the cache
 * (store_cache_take) and put back when done (store_cache_put). Two owners
 * for one user at once each have their own store (the second opens one),
 * so the cache may hold several for one user.
 *
 * Bounds: at most MAX_IDLE stores are kept (the least recently used goes
 * first), and a store idle for IDLE_CLOSE_MS is closed by a sweep on the
 * loop's timer, so a user who is gone does not keep file descriptors (and
 * a deleted user's index) open for long.
 *
 * What a cached store may have missed is checked by storage itself at the
 * next sync or write (another process replacing the index: every
 * transaction and mailbox open follows it) or here: a store is only reused
 * with the quota it was opened with, and while its Maildir is still a
 * directory (a user removed and created again gets a fresh store, which
 * lays out the folders again); one left inside a transaction is closed.
 *
 * Closing may checkpoint the WAL, so it is never done on the loop thread:
 * the sweep hands the stores it takes to the thread pool. The cache itself
 * is shared by the pool threads under one mutex, never held while a store
 * is opened or closed.
 */
#include "storage/store-cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define MAX_IDLE 128
#define IDLE_CLOSE_MS 30000
#define SWEEP_INTERVAL_MS 5000

struct cached_store {
	struct cached_store *prev, *next; /* most recently put first */
	char *mail_dir;
	struct store_quota quota;
	struct store_user *store;
	uint64_t idle_since;    /* uv_hrtime() / 1e6 when put */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached_store *head, *tail;
static size_t count;
/* After store_cache_stop: stores put back are closed at once. */
static bool stopped = true;
static uv_timer_t sweep_timer;
static bool sweep_started;

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

static void unlink_entry(struct cached_store *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		tail = e->prev;
	e->prev = e->next = NULL;
	count--;
}

static void entry_close(struct cached_store *e)
{
	store_user_close(&e->store);
	free(e->mail_dir);
	free(e);
}

/* Close every entry of a list linked by next. */
static void close_list(struct cached_store *list)
{
	while (list != NULL) {
		struct cached_store *next = list->next;

		entry_close(list);
		list = next;
	}
}

static bool same_quota(const struct store_quota *a, const struct store_quota *b)
{
	return a->max_bytes == b->max_bytes && a->max_messages == b->max_messages;
}

static bool maildir_exists(const char *mail_dir)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/Maildir", mail_dir);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

struct store_user *store_cache_take(const char *mail_dir, const struct store_quota *quota)
{
	struct cached_store *found = NULL, *stale = NULL;

	pthread_mutex_lock(&lock);
	for (struct cached_store *e = head, *next; e != NULL; e = next) {
		next = e->next;
		if (strcmp(e->mail_dir, mail_dir) != 0)
			continue;
		unlink_entry(e);
		if (same_quota(&e->quota, quota)) {
			found = e;
			break;
		}
		/* Opened with another quota: of no more use. */
		e->next = stale;
		stale = e;
	}
	pthread_mutex_unlock(&lock);
	close_list(stale);
	if (found == NULL)
		return NULL;
	if (!maildir_exists(mail_dir)) {
		entry_close(found);
		return NULL;
	}
	struct store_user *store = found->store;

	found->store = NULL;
	entry_close(found);
	log_debug("store of %s taken from the cache", mail_dir);
	return store;
}

void store_cache_put(const char *mail_dir, const struct store_quota *quota,
		      struct store_user **store)
{
	struct cached_store *e, *evicted = NULL;

	if (*store == NULL)
		return;
	if (!store_user_reusable(*store)) {
		store_user_close(store);
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->mail_dir = xstrdup(mail_dir);
	e->quota = *quota;
	e->store = *store;
	e->idle_since = now_ms();
	*store = NULL;

	pthread_mutex_lock(&lock);
	if (stopped) {
		pthread_mutex_unlock(&lock);
		entry_close(e);
		return;
	}
	e->next = head;
	if (head != NULL)
		head->prev = e;
	head = e;
	if (tail == NULL)
		tail = e;
	count++;
	if (count > MAX_IDLE) {
		evicted = tail;
		unlink_entry(evicted);
	}
	pthread_mutex_unlock(&lock);
	close_list(evicted);
}

/* ---------------------------------------------------------------- sweep */

static void close_work_cb(uv_work_t *req)
{
	close_list(req->data);
}

static void close_after_cb(uv_work_t *req, int status)
{
	free(req);
}

/* Take the stores idle too long (the oldest are at the tail). */
static struct cached_store *take_expired(uint64_t now)
{
	struct cached_store *list = NULL;

	pthread_mutex_lock(&lock);
	while (tail != NULL && now - tail->idle_since >= IDLE_CLOSE_MS) {
		struct cached_store *e = tail;

		unlink_entry(e);
		e->next = list;
		list = e;
	}
	pthread_mutex_unlock(&lock);
	return list;
}

static void sweep_cb(uv_timer_t *timer)
{
	struct cached_store *list = take_expired(now_ms());

	if (list == NULL)
		return;
	uv_work_t *req = xcalloc(1, sizeof(*req));

	req->data = list;
	if (uv_queue_work(timer->loop, req, close_work_cb, close_after_cb) != 0) {
		free(req);
		close_list(list);
	}
}

void store_cache_start(struct uv_loop_s *loop)
{
	pthread_mutex_lock(&lock);
	stopped = false;
	pthread_mutex_unlock(&lock);
	uv_timer_init(loop, &sweep_timer);
	sweep_started = true;
	uv_timer_start(&sweep_timer, sweep_cb, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
	/* The sweep alone must not keep the daemon from exiting. */
	uv_unref((uv_handle_t *)&sweep_timer);
}

/* Close every idle store now; on the pool, since closing may block. */
void store_cache_flush(struct uv_loop_s *loop)
{
	struct cached_store *list;

	pthread_mutex_lock(&lock);
	list = head;
	head = tail = NULL;
	count = 0;
	pthread_mutex_unlock(&lock);
	if (list == NULL)
		return;
	uv_work_t *req = xcalloc(1, sizeof(*req));

	req->data = list;
	if (uv_queue_work(loop, req, close_work_cb, close_after_cb) != 0) {
		free(req);
		close_list(list);
	}
}

void store_cache_stop(void)
{
	struct cached_store *list;

	pthread_mutex_lock(&lock);
	stopped = true;
	list = head;
	head = tail = NULL;
	count = 0;
	pthread_mutex_unlock(&lock);
	close_list(list);
	if (sweep_started) {
		uv_close((uv_handle_t *)&sweep_timer, NULL);
		sweep_started = false;
	}
}
