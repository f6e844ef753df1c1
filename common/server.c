/*
 * server.c — a daemon's life: command line, configuration, listeners,
 * privilege drop, signals (SIGTERM/SIGINT: graceful shutdown; SIGHUP:
 * reload), the per-address connection table, trusted proxies, the
 * "kick" idle handle that flushes output and runs deferred input once per
 * loop turn, and the service's life-cycle hooks (prepare as root, start
 * after the privilege drop, reload, stop once the connections are gone).
 */
#include "common-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TERN_SYSCONFDIR
#define TERN_SYSCONFDIR "/etc"
#endif

#define IP_TABLE_SIZE 1024

/* prepare_cb succeeded and stop_cb is still owed. One daemon per process,
 * so this need not live in struct server. */
static bool hooks_prepared;

struct ip_count {
	struct ip_count *next;
	uint32_t count;
	char ip[];
};


static int load_trusted(struct server *s, const struct cfg_service *svc, char **error_r)
{
	struct cidr_net *list = xcalloc(svc->trusted_proxies.count + 1, sizeof(*list));

	for (size_t i = 0; i < svc->trusted_proxies.count; i++) {
		if (cidr_parse(svc->trusted_proxies.items[i], &list[i].net, &list[i].bits) < 0) {
			size_t n = strlen(svc->trusted_proxies.items[i]) + 64;

			*error_r = xcalloc(1, n);
			snprintf(*error_r, n, "bad trusted_proxies entry %s",
				 svc->trusted_proxies.items[i]);
			free(list);
			return -1;
		}
	}
	free(s->trusted);
	s->trusted = list;
	s->trusted_count = svc->trusted_proxies.count;
	return 0;
}

bool server__is_trusted_proxy(const struct server *s, const struct sockaddr *addr)
{
	for (size_t i = 0; i < s->trusted_count; i++) {
		if (cidr_match(&s->trusted[i].net, s->trusted[i].bits, addr))
			return true;
	}
	return false;
}

/* ------------------------------------------------- per-address counts */

static size_t ip_hash(const char *ip)
{
	uint32_t h = 2166136261u;

	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % IP_TABLE_SIZE;
}

uint32_t server__ip_ref(struct server *s, const char *ip)
{
	struct ip_count **slot = &s->ip_table[ip_hash(ip)];

	for (struct ip_count *e = *slot; e != NULL; e = e->next) {
		if (strcmp(e->ip, ip) == 0)
			return ++e->count;
	}
	struct ip_count *e = xcalloc(1, sizeof(*e) + strlen(ip) + 1);

	strcpy(e->ip, ip);
	e->count = 1;
	e->next = *slot;
	*slot = e;
	return 1;
}

void server__ip_unref(struct server *s, const char *ip)
{
	for (struct ip_count **p = &s->ip_table[ip_hash(ip)]; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->ip, ip) == 0) {
			if (--(*p)->count == 0) {
				struct ip_count *dead = *p;

				*p = dead->next;
				free(dead);
			}
			return;
		}
	}
}

/* ----------------------------------------------------------------- kick */

static void kick_cb(uv_idle_t *h)
{
	struct server *s = h->data;

	conn__run_kick(s);
	if (s->dirty == NULL && s->deferred == NULL) {
		uv_idle_stop(&s->kick);
		s->kick_active = false;
	}
}

void server__kick(struct server *s)
{
	if (!s->kick_active) {
		uv_idle_start(&s->kick, kick_cb);
		s->kick_active = true;
	}
}

/* ------------------------------------------------------------ shutdown */

static void server_stop_hooks(struct server *s)
{
	if (!hooks_prepared)
		return;
	hooks_prepared = false;
	if (s->def->stop_cb != NULL)
		s->def->stop_cb();
}

static void server_finish(struct server *s)
{
	if (s->finished)
		return;
	s->finished = true;
	/* Helpers (the auth worker) hold handles that would keep the loop
	 * running; no session can be waiting for them any more. */
	server_stop_hooks(s);
	uv_close((uv_handle_t *)&s->kick, NULL);
	uv_close((uv_handle_t *)&s->shutdown_timer, NULL);
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	uv_close((uv_handle_t *)&s->sig_hup, NULL);
}

void server__conn_closed(struct server *s)
{
	s->conns_allocated--;
	if (s->shutting_down && s->conns_allocated == 0)
		server_finish(s);
}

static void listener_closed_cb(uv_handle_t *h)
{
	struct listener *l = h->data;

	free(l->addr);
	free(l);
}

static void shutdown_timeout_cb(uv_timer_t *t)
{
	struct server *s = t->data;

	log_warn("shutdown timeout: closing %u remaining connections", s->conn_count);
	conn__abort_all(s);
}

static void server_shutdown(struct server *s)
{
	if (s->shutting_down) {
		/* A second signal: do not wait any longer. */
		conn__abort_all(s);
		return;
	}
	s->shutting_down = true;
	log_info("shutting down connections=%u", s->conn_count);
	for (struct listener *l = s->listeners, *next; l != NULL; l = next) {
		next = l->next;
		uv_close(&l->h.handle, listener_closed_cb);
	}
	s->listeners = NULL;
	conn__notify_shutdown(s);
	uv_timer_start(&s->shutdown_timer, shutdown_timeout_cb, s->svc->shutdown_timeout_ms, 0);
	if (s->conns_allocated == 0)
		server_finish(s);
}

/* -------------------------------------------------------------- reload */

static bool strlist_equal(const struct cfg_strlist *a, const struct cfg_strlist *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++) {
		if (strcmp(a->items[i], b->items[i]) != 0)
			return false;
	}
	return true;
}

static bool wants_tls(const struct cfg *cfg, const struct cfg_service *svc)
{
	return svc->listen_tls.count > 0 || access(cfg->tls_cert, F_OK) == 0;
}

static void server_reload(struct server *s)
{
	struct cfg *cfg;
	char *error = NULL;

	if (cfg_load(s->cfg->path, &cfg, &error) < 0) {
		log_error("reload failed, keeping the current configuration: %s", error);
		free(error);
		return;
	}
	const struct cfg_service *svc = cfg_service_get(cfg, s->def->name);

	if (!strlist_equal(&svc->listen, &s->svc->listen) ||
	    !strlist_equal(&svc->listen_tls, &s->svc->listen_tls))
		log_warn("listen addresses changed: they take effect after a restart");
	if (load_trusted(s, svc, &error) < 0) {
		log_error("reload failed, keeping the current configuration: %s", error);
		free(error);
		cfg_free(&cfg);
		return;
	}
	if (wants_tls(cfg, svc)) {
		SSL_CTX *ctx = tls_ctx_new(cfg, s->def->alpn, &error);

		if (ctx == NULL) {
			log_error("TLS reload failed, keeping the current certificate: %s", error);
			free(error);
		} else {
			/* Open sessions keep a reference to the old context. */
			SSL_CTX_free(s->tls_ctx);
			s->tls_ctx = ctx;
			log_info("TLS certificate reloaded cert=%s", cfg->tls_cert);
		}
	}
	log_set_level(cfg->log_level);
	if (s->def->reload_cb != NULL)
		s->def->reload_cb(cfg);
	cfg_free(&s->cfg);
	s->cfg = cfg;
	s->svc = svc;
	log_info("configuration reloaded");
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct server *s = h->data;

	if (signum == SIGHUP)
		server_reload(s);
	else
		server_shutdown(s);
}

/* ------------------------------------------------------------ listeners */

static void connection_cb(uv_stream_t *stream, int status)
{
	struct listener *l = stream->data;

	if (status < 0) {
		log_warn("accept on %s failed: %s", l->addr, uv_strerror(status));
		return;
	}
	conn__accept(l);
}

static int bind_one(struct server *s, const char *addr, bool tls)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	int ret;

	l->server = s;
	l->tls = tls;
	l->addr = xstrdup(addr);
	if (strncmp(addr, "unix:", 5) == 0) {
		const char *path = addr + 5;
		struct stat st;

		l->is_pipe = true;
		uv_pipe_init(s->loop, &l->h.pipe, 0);
		/* A socket left by a previous run is replaced; any other file
		 * at that path is an error. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		ret = uv_pipe_bind(&l->h.pipe, path);
		if (ret == 0) {
			/* Like Dovecot's LMTP listener: any local process (the
			 * MTA) may connect; limit access with the directory. */
			ret = uv_pipe_chmod(&l->h.pipe, UV_READABLE | UV_WRITABLE);
		}
	} else {
		struct sockaddr_storage ss;

		if (netaddr_parse_inet(addr, &ss) != NULL) {
			log_error("bad listen address %s", addr);
			free(l->addr);
			free(l);
			return -1;
		}
		uv_tcp_init(s->loop, &l->h.tcp);
		ret = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss,
				  ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	}
	l->h.handle.data = l;
	if (ret == 0)
		ret = uv_listen(&l->h.stream, SOMAXCONN, connection_cb);
	if (ret < 0) {
		log_error("cannot listen on %s: %s", addr, uv_strerror(ret));
		uv_close(&l->h.handle, listener_closed_cb);
		return -1;
	}
	l->next = s->listeners;
	s->listeners = l;
	log_info("listening on %s%s", addr, tls ? " (TLS)" : "");
	return 0;
}

static int bind_all(struct server *s)
{
	for (size_t i = 0; i < s->svc->listen.count; i++) {
		if (bind_one(s, s->svc->listen.items[i], false) < 0)
			return -1;
	}
	for (size_t i = 0; i < s->svc->listen_tls.count; i++) {
		if (bind_one(s, s->svc->listen_tls.items[i], true) < 0)
			return -1;
	}
	if (s->listeners == NULL) {
		log_error("no listen addresses in [%s]", s->def->name);
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- main */

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn_errno(errno, "cannot raise the open files limit");
	}
}

static void usage(const struct service_def *def)
{
	fprintf(stderr,
		"usage: %s [-c tern.conf] [-t] [-V]\n"
		"  -c FILE  configuration file (default %s/tern/tern.conf)\n"
		"  -t       check the configuration, print it and exit\n"
		"  -V       print the version and exit\n",
		def->program, TERN_SYSCONFDIR);
}

static int run_server(struct server *s)
{
	char *error = NULL;

	if (load_trusted(s, s->svc, &error) < 0) {
		log_error("%s", error);
		free(error);
		return 1;
	}
	if (wants_tls(s->cfg, s->svc)) {
		s->tls_ctx = tls_ctx_new(s->cfg, s->def->alpn, &error);
		if (s->tls_ctx == NULL) {
			if (s->svc->listen_tls.count > 0) {
				log_error("%s", error);
				free(error);
				return 1;
			}
			log_warn("STARTTLS disabled: %s", error);
			free(error);
		}
	}
	if (bind_all(s) < 0)
		return 1;
	if (s->def->prepare_cb != NULL && s->def->prepare_cb(s->cfg) < 0)
		return 1;
	hooks_prepared = true;
	if (priv_drop(s->cfg->mail_user) < 0 ||
	    (s->def->start_cb != NULL && s->def->start_cb(s->loop) < 0)) {
		server_stop_hooks(s);
		return 1;
	}

	uv_idle_init(s->loop, &s->kick);
	s->kick.data = s;
	uv_timer_init(s->loop, &s->shutdown_timer);
	s->shutdown_timer.data = s;
	uv_signal_init(s->loop, &s->sig_term);
	uv_signal_init(s->loop, &s->sig_int);
	uv_signal_init(s->loop, &s->sig_hup);
	s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
	uv_signal_start(&s->sig_term, signal_cb, SIGTERM);
	uv_signal_start(&s->sig_int, signal_cb, SIGINT);
	uv_signal_start(&s->sig_hup, signal_cb, SIGHUP);

	log_info("started version=%s", TERN_VERSION);
	uv_run(s->loop, UV_RUN_DEFAULT);
	log_info("stopped");
	return 0;
}

int daemon_main(const struct service_def *def, int argc, char **argv)
{
	const char *config_path = TERN_SYSCONFDIR "/tern/tern.conf";
	bool check_only = false;
	int opt;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("%s %s\n", def->program, TERN_VERSION);
			return 0;
		default:
			usage(def);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc) {
		usage(def);
		return 2;
	}
	log_init(def->program, LOG_TARGET_STDERR, LOG_LEVEL_INFO);

	/* An absolute path, so that SIGHUP finds the file whatever the cwd. */
	char abs_path[PATH_MAX];
	struct cfg *cfg;
	char *error = NULL;

	if (realpath(config_path, abs_path) != NULL)
		config_path = abs_path;
	if (cfg_load(config_path, &cfg, &error) < 0) {
		fprintf(stderr, "%s: %s\n", def->program, error);
		free(error);
		return 1;
	}
	if (check_only) {
		cfg_print(cfg, stdout);
		cfg_free(&cfg);
		return 0;
	}
	log_init(def->program, cfg->log_target, cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	struct server s;

	memset(&s, 0, sizeof(s));
	s.def = def;
	s.cfg = cfg;
	s.svc = cfg_service_get(cfg, def->name);
	if (s.svc == NULL) {
		log_error("no [%s] section is known", def->name);
		cfg_free(&cfg);
		return 1;
	}
	s.loop = uv_default_loop();
	s.ip_table = xcalloc(IP_TABLE_SIZE, sizeof(*s.ip_table));
	s.ip_table_size = IP_TABLE_SIZE;

	int status = run_server(&s);

	/* Close what is left (listeners after a failed start) and free all,
	 * so leak checkers see a clean exit. */
	for (struct listener *l = s.listeners; l != NULL; l = l->next)
		uv_close(&l->h.handle, listener_closed_cb);
	uv_run(s.loop, UV_RUN_NOWAIT);
	uv_loop_close(s.loop);
	SSL_CTX_free(s.tls_ctx);
	for (size_t i = 0; i < IP_TABLE_SIZE; i++) {
		for (struct ip_count *e = s.ip_table[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(s.ip_table);
	free(s.trusted);
	cfg_free(&s.cfg);
	return status;
}
