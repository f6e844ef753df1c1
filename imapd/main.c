/*
 * main.c — tern-imapd: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) with
 * the extensions mail clients use, on the connection framework of common/
 * and the shared storage.
 *
 * Here: the [imap] settings the sessions use (copied at start and on
 * SIGHUP), and the service hooks. Passwords are checked by the auth worker
 * of auth/, which the hooks start before the privilege drop.
 */
#include "imapd-private.h"

#include <uv.h>

struct imap_settings imap__set;
struct uv_loop_s *imap__loop;

static void settings_load(const struct cfg *cfg)
{
	imap__set.append_limit = cfg->imap_append_limit;
	imap__set.max_nesting = cfg->imap_max_nesting;
	imap__set.max_sequence_ranges = cfg->imap_max_sequence_ranges;
	imap__set.max_user_connections_per_ip = cfg->imap_max_user_connections_per_ip;
	imap__set.max_failures = cfg->auth_max_failures;
}

static int imap_prepare(const struct cfg *cfg)
{
	settings_load(cfg);
	return auth_service_prepare(cfg);
}

static int imap_start(struct uv_loop_s *loop)
{
	imap__loop = loop;
	store_cache_start(loop);
	return auth_service_start(loop);
}

static void imap_reload(const struct cfg *cfg)
{
	settings_load(cfg);
	auth_service_reload(cfg);
	/* Nothing from before a reload stays open. */
	store_cache_flush(imap__loop);
}

static void imap_stop(void)
{
	imap__catch_up_stop();
	store_cache_stop();
	auth_service_stop();
}

int main(int argc, char **argv)
{
	static const struct service_def def = {
		.name = "imap",
		.program = "tern-imapd",
		.alpn = "imap",
		.handler = &imap__handler,
		.prepare_cb = imap_prepare,
		.start_cb = imap_start,
		.reload_cb = imap_reload,
		.stop_cb = imap_stop,
	};

	return daemon_main(&def, argc, argv);
}
