/*
 * main.c — tern-pop3d: POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC
 * 2595), SASL (RFC 5034) and UTF8 (RFC 6856), on the connection framework
 * of common/. The maildrop is the user's INBOX in the shared storage.
 *
 * Here: the [pop3] settings the sessions use (copied at start and on
 * SIGHUP), and the service hooks. Passwords are checked by the auth worker
 * of auth/, which the hooks start before the privilege drop.
 */
#include "pop3-private.h"

#include <uv.h>

struct pop3_settings pop3__set;
struct uv_loop_s *pop3__loop;

static void settings_load(const struct cfg *cfg)
{
	pop3__set.uidl_format = cfg->pop3_uidl_format;
	pop3__set.login_delay_ms = cfg->pop3_login_delay_ms;
	pop3__set.max_failures = cfg->auth_max_failures;
}

static int pop3_prepare(const struct cfg *cfg)
{
	settings_load(cfg);
	return auth_service_prepare(cfg);
}

static int pop3_start(struct uv_loop_s *loop)
{
	pop3__loop = loop;
	store_cache_start(loop);
	return auth_service_start(loop);
}

static void pop3_reload(const struct cfg *cfg)
{
	settings_load(cfg);
	auth_service_reload(cfg);
	/* Nothing from before a reload stays open. */
	store_cache_flush(pop3__loop);
}

static void pop3_stop(void)
{
	store_cache_stop();
	auth_service_stop();
}

int main(int argc, char **argv)
{
	static const struct service_def def = {
		.name = "pop3",
		.program = "tern-pop3d",
		.alpn = "pop3",
		.handler = &pop3__handler,
		.prepare_cb = pop3_prepare,
		.start_cb = pop3_start,
		.reload_cb = pop3_reload,
		.stop_cb = pop3_stop,
	};

	return daemon_main(&def, argc, argv);
}
