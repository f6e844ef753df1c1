/*
 * deliver.c — storing a message for every recipient of a transaction, on
 * the thread pool, and the transaction's life.
 *
 * The data is written once: into a save (storage/save.c) in the store of
 * the first recipient that takes it, while it arrives (lmtp__deliver_flush
 * whenever the spool fills). At the end, lmtp__deliver_finish flushes that
 * file to disk once, gives every other recipient a save of the same file
 * (store_save_share: a hard link on one file system, so all recipients
 * share one inode), then commits each recipient's save in its own index,
 * all at once (commit_all).
 * A recipient is delivered exactly when its commit returned 0, which is
 * durable (DESIGN invariant 1): only then does it get 250. Commits of one
 * user arriving together from several connections share their fsyncs
 * (storage's group commit).
 *
 * Failure is per recipient where it can be: a missing +detail mailbox falls
 * back to INBOX, a full quota or a failed commit fails that recipient only.
 * A failure writing the one copy fails them all, temporarily. A failed
 * save is aborted, so nothing half-written becomes visible.
 *
 * Two recipients that are the same user and mailbox (alice@ and
 * alice+x@ without a mailbox x) get one copy and the same reply.
 *
 * The recipients' stores go back to the cache of open stores (storage/store-cache.c)
 * when the transaction is done with them, unless a store failed in a way
 * that may say something is wrong with it (a temporary failure other than
 * a full disk): that one is closed, and the next transaction opens the
 * user's store afresh.
 */
#include "lmtp-private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The spool holds one flush's worth plus what one read may add. */
#define SPOOL_MAX (2 * LMTP_SPOOL_FLUSH)
/* Most commits of one message running at once (one thread each). */
#define MAX_PARALLEL_COMMITS 16

struct lmtp_txn *lmtp__txn_new(void)
{
	struct lmtp_txn *t = xcalloc(1, sizeof(*t));

	t->arena = arena_new(0);
	buf_init(&t->spool, SPOOL_MAX);
	t->dot = LMTP_DOT_LINE_START;
	return t;
}

static bool holds_files(const struct lmtp_txn *t)
{
	if (t->save != NULL)
		return true;
	for (size_t i = 0; i < t->rcpt_count; i++) {
		if (t->rcpts[i]->store != NULL)
			return true;
	}
	return false;
}

/* Back to the cache, or closed after a temporary failure (a full disk is
 * not one: the store is fine, and the next attempt may find room). */
static void release_store(struct lmtp_rcpt *r)
{
	if (r->status == LMTP_ST_TEMPFAIL)
		store_user_close(&r->store);
	else
		store_cache_put(r->mail_dir, &r->quota, &r->store);
}

void lmtp__txn_free_now(struct lmtp_txn **tp)
{
	struct lmtp_txn *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	store_save_abort(&t->save);
	for (size_t i = 0; i < t->rcpt_count; i++)
		release_store(t->rcpts[i]);
	buf_release(&t->spool);
	arena_free(&t->arena);
	free(t);
}

static void free_work_cb(uv_work_t *req)
{
	struct lmtp_txn *t = req->data;

	lmtp__txn_free_now(&t);
}

static void free_after_cb(uv_work_t *req, int status)
{
	free(req);
}

void lmtp__txn_free(struct lmtp_txn **tp)
{
	struct lmtp_txn *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (holds_files(t)) {
		/* Closing an index may checkpoint its WAL, and the cache may
		 * close one to make room: not on the loop. */
		uv_work_t *req = xcalloc(1, sizeof(*req));

		req->data = t;
		if (uv_queue_work(lmtp__loop, req, free_work_cb, free_after_cb) == 0)
			return;
		free(req);
	}
	lmtp__txn_free_now(&t);
}

/* ---------------------------------------------------------------- jobs */

static enum lmtp_status status_of(const struct store_error *err)
{
	switch (err->code) {
	case STORE_ERR_QUOTA:
		return LMTP_ST_QUOTA;
	case STORE_ERR_NOSPACE:
		return LMTP_ST_NOSPACE;
	default:
		return LMTP_ST_TEMPFAIL;
	}
}

static void rcpt_failed(struct lmtp_txn *t, struct lmtp_rcpt *r, const struct store_error *err)
{
	r->status = status_of(err);
	r->error = arena_strdup(t->arena, err->msg);
}

/* A save in r's mailbox: a new one (src NULL) or a share of src. Falls
 * back to INBOX when the +detail mailbox does not exist. */
static int open_save(struct lmtp_rcpt *r, struct store_save *src, struct store_save **s_r,
		     struct store_error *err)
{
	const char *mailbox = r->mailbox;

	for (;;) {
		int ret = src == NULL ? store_save_begin(r->store, mailbox, s_r, err) :
			store_save_share(src, r->store, mailbox, s_r, err);

		if (ret == 0) {
			/* The text for SEARCH is indexed later, in the background
			 * (tern-imapd), not while the MTA waits. */
			if (src == NULL)
				store_save_defer_text(*s_r);
			r->saved_in = mailbox;
			return 0;
		}
		if ((err->code != STORE_ERR_NOTFOUND && err->code != STORE_ERR_BADNAME) ||
		    strcmp(mailbox, "INBOX") == 0)
			return -1;
		mailbox = "INBOX";
	}
}

/* The first copy, in the first recipient's store that takes it. */
static bool begin_first_copy(struct lmtp_txn *t)
{
	struct store_error err = { 0 };

	if (t->save != NULL || t->save_failed)
		return t->save != NULL;
	for (size_t i = 0; i < t->rcpt_count; i++) {
		struct lmtp_rcpt *r = t->rcpts[i];

		if (r->status != LMTP_ST_PENDING)
			continue;
		if (open_save(r, NULL, &t->save, &err) == 0) {
			t->save_rcpt = i;
			return true;
		}
		rcpt_failed(t, r, &err);
	}
	t->save_failed = true;
	t->save_status = LMTP_ST_TEMPFAIL;
	return false;
}

void lmtp__deliver_flush(struct lmtp_txn *t)
{
	struct store_error err = { 0 };

	if (t->too_big) {
		store_save_abort(&t->save);
		buf_clear(&t->spool);
		return;
	}
	if (!begin_first_copy(t)) {
		buf_clear(&t->spool);
		return;
	}
	if (t->spool.len > 0 && store_save_write(t->save, t->spool.data, t->spool.len, &err) < 0) {
		t->save_failed = true;
		t->save_status = status_of(&err);
		t->save_error = arena_strdup(t->arena, err.msg);
		store_save_abort(&t->save);
	}
	buf_clear(&t->spool);
}

/* An earlier recipient that is the same user and mailbox as r, or -1. */
static ssize_t same_as_earlier(const struct lmtp_txn *t, size_t i)
{
	const struct lmtp_rcpt *r = t->rcpts[i];

	for (size_t j = 0; j < i; j++) {
		const struct lmtp_rcpt *e = t->rcpts[j];

		if (strcmp(e->mail_dir, r->mail_dir) == 0 && strcmp(e->mailbox, r->mailbox) == 0)
			return (ssize_t)j;
	}
	return -1;
}

struct commit_one {
	struct lmtp_txn *t;
	struct lmtp_rcpt *r;
	struct store_save *save;
	pthread_t thread;
	bool started;
};

/* Commit one recipient's save; its status says how it went. Touches only
 * r, r's store and the save (and t's arena after failure, under no lock:
 * so only on the thread that joins the others; see commit_all). */
static void *commit_thread(void *data)
{
	struct commit_one *c = data;
	struct store_error err = { 0 };
	uint32_t uidvalidity;

	if (store_save_commit(&c->save, &uidvalidity, &c->r->uid, &err) < 0) {
		c->r->status = status_of(&err);
		/* The message is kept for the log, copied later on one thread. */
		snprintf(c->r->commit_error, sizeof(c->r->commit_error), "%s", err.msg);
	} else {
		c->r->status = LMTP_ST_DELIVERED;
	}
	return NULL;
}

/*
 * Commit every save. Different users' commits are independent (each has
 * its own index and directories), so they run at once, on threads of
 * their own: their fsyncs overlap instead of queueing, and a message for
 * ten users takes about as long as one for one user. The first runs on
 * this thread; a thread that cannot be started runs its commit here too.
 */
static void commit_all(struct lmtp_txn *t, struct store_save **saves, size_t n)
{
	struct commit_one *c = xcalloc(n, sizeof(*c));
	size_t ncommits = 0;

	for (size_t i = 0; i < n; i++) {
		if (saves[i] == NULL)
			continue;
		c[ncommits].t = t;
		c[ncommits].r = t->rcpts[i];
		c[ncommits].save = saves[i];
		saves[i] = NULL;
		ncommits++;
	}
	for (size_t base = 0; base < ncommits; base += MAX_PARALLEL_COMMITS) {
		size_t end = base + MAX_PARALLEL_COMMITS < ncommits ? base + MAX_PARALLEL_COMMITS : ncommits;

		for (size_t i = base + 1; i < end; i++)
			c[i].started = pthread_create(&c[i].thread, NULL, commit_thread, &c[i]) == 0;
		commit_thread(&c[base]);
		for (size_t i = base + 1; i < end; i++) {
			if (c[i].started)
				pthread_join(c[i].thread, NULL);
			else
				commit_thread(&c[i]);
		}
	}
	for (size_t i = 0; i < ncommits; i++) {
		if (c[i].r->status != LMTP_ST_DELIVERED)
			c[i].r->error = arena_strdup(t->arena, c[i].r->commit_error);
	}
	free(c);
}

void lmtp__deliver_finish(struct lmtp_txn *t)
{
	struct store_error err = { 0 };
	size_t n = t->rcpt_count;
	struct store_save **saves = xcalloc(n, sizeof(*saves));
	ssize_t *dup = xcalloc(n, sizeof(*dup));

	lmtp__deliver_flush(t);
	for (size_t i = 0; i < n; i++)
		dup[i] = same_as_earlier(t, i);
	if (t->save != NULL) {
		saves[t->save_rcpt] = t->save;
		t->save = NULL;
		/* Every share before any commit: a share needs its source. */
		for (size_t i = 0; i < n; i++) {
			struct lmtp_rcpt *r = t->rcpts[i];

			if (i == t->save_rcpt || r->status != LMTP_ST_PENDING || dup[i] >= 0)
				continue;
			if (open_save(r, saves[t->save_rcpt], &saves[i], &err) < 0)
				rcpt_failed(t, r, &err);
		}
		commit_all(t, saves, n);
	}
	for (size_t i = 0; i < n; i++) {
		struct lmtp_rcpt *r = t->rcpts[i];

		if (dup[i] >= 0 && r->status == LMTP_ST_PENDING) {
			const struct lmtp_rcpt *e = t->rcpts[dup[i]];

			r->status = e->status;
			r->uid = e->uid;
			r->saved_in = e->saved_in;
			r->error = e->error;
		}
		if (r->status == LMTP_ST_PENDING) {
			r->status = t->too_big ? LMTP_ST_TOO_BIG : t->save_status;
			r->error = t->save_error;
		}
		release_store(r);
	}
	free(saves);
	free(dup);
}
