/*
 * notify.c — change notification for IDLE through inotify (uv_fs_event)
 * on a folder's new/ and cur/. Watches are a kernel resource, so there is
 * one per folder per process, shared by every session watching it; when
 * none can be had, the folder is polled by directory time instead.
 */
#include "storage-private.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct folder_watch {
	struct folder_watch *next;
	char *folder;
	uv_loop_t *loop;
	uv_fs_event_t ev_new, ev_cur;
	bool ev_new_on, ev_cur_on;
	uv_timer_t poll;        /* fallback when inotify is unavailable */
	bool polling;
	int64_t mtime_new, mtime_cur;
	struct store_watch *watchers;
	unsigned handles_open;
};

struct store_watch {
	struct store_watch *next;
	struct folder_watch *fw;
	store_watch_cb *cb;
	void *data;
};

/* The loop thread owns this list. */
static struct folder_watch *folder_watches;

static void notify_all(struct folder_watch *fw)
{
	for (struct store_watch *w = fw->watchers, *next; w != NULL; w = next) {
		next = w->next; /* a callback may stop its own watch */
		w->cb(w->data);
	}
}

static void fs_event_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct folder_watch *fw = h->data;

	if (status < 0) {
		log_warn("watch on %s failed: %s", fw->folder, uv_strerror(status));
		return;
	}
	notify_all(fw);
}

static void poll_cb(uv_timer_t *t)
{
	struct folder_watch *fw = t->data;
	char path[4096];

	snprintf(path, sizeof(path), "%s/new", fw->folder);
	int64_t mn = store__mtime_ns(path);

	snprintf(path, sizeof(path), "%s/cur", fw->folder);
	int64_t mc = store__mtime_ns(path);

	if (mn != fw->mtime_new || mc != fw->mtime_cur) {
		fw->mtime_new = mn;
		fw->mtime_cur = mc;
		notify_all(fw);
	}
}

static void handle_closed_cb(uv_handle_t *h)
{
	struct folder_watch *fw = h->data;

	if (--fw->handles_open == 0) {
		free(fw->folder);
		free(fw);
	}
}

static int watch_dir(struct folder_watch *fw, uv_fs_event_t *ev, const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", fw->folder, sub);
	uv_fs_event_init(fw->loop, ev);
	ev->data = fw;
	fw->handles_open++;
	return uv_fs_event_start(ev, fs_event_cb, path, 0);
}

static struct folder_watch *folder_watch_get(uv_loop_t *loop, const char *folder)
{
	for (struct folder_watch *fw = folder_watches; fw != NULL; fw = fw->next) {
		if (fw->loop == loop && strcmp(fw->folder, folder) == 0)
			return fw;
	}
	struct folder_watch *fw = xcalloc(1, sizeof(*fw));

	fw->folder = xstrdup(folder);
	fw->loop = loop;
	uv_timer_init(loop, &fw->poll);
	fw->poll.data = fw;
	fw->handles_open = 1;
	int r1 = watch_dir(fw, &fw->ev_new, "new");
	int r2 = r1 < 0 ? r1 : watch_dir(fw, &fw->ev_cur, "cur");

	fw->ev_new_on = r1 == 0;
	fw->ev_cur_on = r2 == 0;
	if (r1 < 0 || r2 < 0) {
		static bool warned;

		if (!warned) {
			log_warn("cannot watch %s (%s): polling every %d ms instead; raise "
				 "fs.inotify.max_user_watches / max_user_instances",
				 folder, uv_strerror(r1 < 0 ? r1 : r2), STORE_WATCH_POLL_MS);
			warned = true;
		}
		if (fw->ev_new_on)
			uv_fs_event_stop(&fw->ev_new);
		fw->ev_new_on = fw->ev_cur_on = false;
		poll_cb(&fw->poll); /* record the current times */
		uv_timer_start(&fw->poll, poll_cb, STORE_WATCH_POLL_MS, STORE_WATCH_POLL_MS);
		fw->polling = true;
	}
	fw->next = folder_watches;
	folder_watches = fw;
	return fw;
}

static void folder_watch_release(struct folder_watch *fw)
{
	if (fw->watchers != NULL)
		return;
	for (struct folder_watch **p = &folder_watches; *p != NULL; p = &(*p)->next) {
		if (*p == fw) {
			*p = fw->next;
			break;
		}
	}
	/* Every handle initialised in folder_watch_get is closed here. */
	uv_close((uv_handle_t *)&fw->poll, handle_closed_cb);
	uv_close((uv_handle_t *)&fw->ev_new, handle_closed_cb);
	if (fw->ev_cur.loop != NULL)
		uv_close((uv_handle_t *)&fw->ev_cur, handle_closed_cb);
}

int store_watch_start(struct uv_loop_s *loop, struct store_user *u, const char *mailbox,
		      store_watch_cb *cb, void *data, struct store_watch **w_r,
		      struct store_error *err)
{
	char *folder = store__folder_path(u, mailbox, err);

	if (folder == NULL)
		return -1;
	struct folder_watch *fw = folder_watch_get(loop, folder);
	struct store_watch *w = xcalloc(1, sizeof(*w));

	free(folder);
	w->fw = fw;
	w->cb = cb;
	w->data = data;
	w->next = fw->watchers;
	fw->watchers = w;
	*w_r = w;
	return 0;
}

void store_watch_stop(struct store_watch **wp)
{
	struct store_watch *w = *wp;

	if (w == NULL)
		return;
	struct folder_watch *fw = w->fw;

	for (struct store_watch **p = &fw->watchers; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w);
	*wp = NULL;
	folder_watch_release(fw);
}
