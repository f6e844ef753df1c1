/*
 * catchup.c — the background job that fills in what a bulk adoption left
 * out (store_user_catch_up): the messages of a migrated Maildir get their
 * structure and search text a batch at a time, each batch one job on the
 * pool, so that sessions' commands take turns with it. The same job
 * deletes expunged messages' text from the full-text index, a batch at a
 * time. One job per user per process; it starts when a session finds
 * such work (store_user_pending, after LOGIN or SELECT) and ends when
 * none is left, or at shutdown.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Messages per batch: ~0.5 ms each to read, parse and index. */
#define CATCH_UP_BATCH 64

struct catch_up {
	struct catch_up *next;
	char *user_dir;
	struct store_user *store;
	uv_work_t req;
	bool more;
};

/* The loop thread owns these. */
static struct catch_up *running;
static bool stopping;

static void catch_up_work(uv_work_t *req)
{
	struct catch_up *c = req->data;
	struct store_error err = { 0 };

	if (c->store == NULL) {
		const struct store_user_options opt = { .create = false };

		if (store_user_open(c->user_dir, &opt, &c->store, &err) < 0) {
			log_warn("catch-up of %s: %s", c->user_dir, err.msg);
			c->store = NULL;
			c->more = false;
			return;
		}
	}
	if (store_user_catch_up(c->store, CATCH_UP_BATCH, &c->more, &err) < 0) {
		log_warn("catch-up of %s: %s", c->user_dir, err.msg);
		c->more = false;
	}
	if (!c->more)
		store_user_close(&c->store);
}

static void catch_up_after(uv_work_t *req, int status)
{
	struct catch_up *c = req->data;

	if (c->more && !stopping && status == 0 &&
	    uv_queue_work(imap__loop, &c->req, catch_up_work, catch_up_after) == 0)
		return;
	if (c->store != NULL)
		store_user_close(&c->store);
	for (struct catch_up **p = &running; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	log_debug("catch-up of %s ended", c->user_dir);
	free(c->user_dir);
	free(c);
}

void imap__catch_up_start(const char *user_dir)
{
	if (stopping)
		return;
	for (struct catch_up *c = running; c != NULL; c = c->next)
		if (strcmp(c->user_dir, user_dir) == 0)
			return;
	struct catch_up *c = xcalloc(1, sizeof(*c));

	c->user_dir = xstrdup(user_dir);
	c->req.data = c;
	c->more = true;
	if (uv_queue_work(imap__loop, &c->req, catch_up_work, catch_up_after) < 0) {
		free(c->user_dir);
		free(c);
		return;
	}
	c->next = running;
	running = c;
	log_debug("catch-up of %s started", user_dir);
}

void imap__catch_up_stop(void)
{
	stopping = true;
}
