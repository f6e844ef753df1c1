/*
 * store-cache.h — users' stores kept open between their uses by a daemon
 * (tern-lmtpd between transactions, tern-imapd and tern-pop3d between
 * sessions). See store-cache.c.
 */
#ifndef TERN_STORAGE_STORE_CACHE_H
#define TERN_STORAGE_STORE_CACHE_H

#include "storage/storage.h"

struct uv_loop_s;

/*
 * An idle open store of the user at mail_dir opened with this quota, taken
 * out of the cache, or NULL (open one). Any thread.
 */
struct store_user *store_cache_take(const char *mail_dir, const struct store_quota *quota);
/* Keep *store (set to NULL) for the next owner. On a pool thread: it may
 * close the least recently used store, or this one if it is not fit for
 * reuse. */
void store_cache_put(const char *mail_dir, const struct store_quota *quota,
		     struct store_user **store);
/* On the loop: start the idle sweep; close every idle store (SIGHUP);
 * close them all and keep no more (shutdown). Until started, stores put
 * back are closed at once. */
void store_cache_start(struct uv_loop_s *loop);
void store_cache_flush(struct uv_loop_s *loop);
void store_cache_stop(void);

#endif
