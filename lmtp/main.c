/*
 * main.c — tern-lmtpd: LMTP delivery for the MTA (RFC 2033), on the
 * connection framework of common/. No authentication: whoever can reach
 * the socket may deliver, so it listens on a unix socket (or loopback) by
 * default, and recipients are looked up in the user directory of auth/.
 *
 * Here: the [lmtp] delivery settings (copied at start and on SIGHUP; a
 * transaction keeps the limits it started with), the user directory
 * (opened after the privilege drop, so that any file SQLite creates
 * belongs to mail_user), and the size of libuv's thread pool.
 *
 * Thread pool. Every delivery waits in a pool thread for its commit, and
 * the commits of one user that wait together share one fsync (group
 * commit). libuv's default of 4 threads would let at most 4 deliveries wait
 * at once, however many connections the MTA opens; POOL_THREADS lets
 * concurrency, and so batching, grow. An administrator's UV_THREADPOOL_SIZE
 * wins.
 */
#include "lmtp-private.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define POOL_THREADS "32"

struct lmtp_settings lmtp__set;
struct auth_directory *lmtp__directory;
struct uv_loop_s *lmtp__loop;

/* The configuration prepare_cb got, until start_cb opens the directory
 * with it (no reload can come between them). */
static const struct cfg *start_cfg;

static void strlist_copy(struct cfg_strlist *to, const struct cfg_strlist *from)
{
	to->items = xcalloc(from->count + 1, sizeof(*to->items));
	to->count = from->count;
	for (size_t i = 0; i < from->count; i++)
		to->items[i] = xstrdup(from->items[i]);
}

static void settings_clear(struct lmtp_settings *set)
{
	free(set->hostname);
	free(set->recipient_delimiter);
	for (size_t i = 0; i < set->local_domains.count; i++)
		free(set->local_domains.items[i]);
	free(set->local_domains.items);
	memset(set, 0, sizeof(*set));
}

static void settings_load(const struct cfg *cfg)
{
	struct lmtp_settings *set = &lmtp__set;
	char host[256];

	settings_clear(set);
	if (cfg->lmtp_hostname[0] != '\0') {
		set->hostname = xstrdup(cfg->lmtp_hostname);
	} else {
		if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		set->hostname = xstrdup(host);
	}
	strlist_copy(&set->local_domains, &cfg->lmtp_local_domains);
	set->recipient_delimiter = xstrdup(cfg->lmtp_recipient_delimiter);
	set->save_to_detail_mailbox = cfg->lmtp_save_to_detail_mailbox;
	set->max_message_size = cfg->lmtp_max_message_size;
	set->max_recipients = cfg->lmtp_max_recipients;
	set->quota_full_tempfail = cfg->lmtp_quota_full_tempfail;
}

static int lmtp_prepare(const struct cfg *cfg)
{
	settings_load(cfg);
	start_cfg = cfg;
	return 0;
}

static int lmtp_start(struct uv_loop_s *loop)
{
	char *error = NULL;

	lmtp__loop = loop;
	if (auth_directory_open(start_cfg, &lmtp__directory, &error) < 0) {
		log_error("cannot open the user directory: %s", error != NULL ? error : "?");
		free(error);
		return -1;
	}
	start_cfg = NULL;
	/* Many deliveries commit to one index at once, and a mapped index is
	 * unmapped by each transaction after another's commit: without the
	 * mapping, 8 connections delivering to 10 recipients each made 30%
	 * more deliveries a second with 25% less CPU each. */
	store_set_index_mapping(false);
	store_cache_start(loop);
	return 0;
}

static void lmtp_reload(const struct cfg *cfg)
{
	settings_load(cfg);
	/* A reload is the administrator's way to make sure nothing from
	 * before it stays open. */
	store_cache_flush(lmtp__loop);
}

static void lmtp_stop(void)
{
	store_cache_stop();
	auth_directory_close(&lmtp__directory);
	settings_clear(&lmtp__set);
}

int main(int argc, char **argv)
{
	static const struct service_def def = {
		.name = "lmtp",
		.program = "tern-lmtpd",
		.alpn = NULL,
		.handler = &lmtp__handler,
		.prepare_cb = lmtp_prepare,
		.start_cb = lmtp_start,
		.reload_cb = lmtp_reload,
		.stop_cb = lmtp_stop,
	};

	setenv("UV_THREADPOOL_SIZE", POOL_THREADS, 0);
	return daemon_main(&def, argc, argv);
}
