/*
 * test-cfg.c — tern.conf parsing (common/cfg.c): every key, defaults,
 * every error class with its line, value syntax, lists, cfg_print round
 * trips, and that docs/configuration.md and etc/tern.conf cover every key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/common.h"
#include "test-util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static struct cfg *load_ok(const char *text)
{
	struct cfg *cfg = NULL;
	char *error = NULL;
	int ret = cfg_load_string("test.conf", text, &cfg, &error);

	if (error != NULL)
		print_error("unexpected error: %s\n", error);
	assert_int_equal(ret, 1);
	assert_null(error);
	assert_non_null(cfg);
	return cfg;
}

/* Loading must fail with "test.conf:<line>: ..." containing want. */
static void load_fails(const char *text, unsigned line, const char *want)
{
	struct cfg *cfg = (struct cfg *)1;
	char *error = NULL;
	char prefix[64];
	int ret = cfg_load_string("test.conf", text, &cfg, &error);

	assert_int_equal(ret, -1);
	assert_null(cfg);
	assert_non_null(error);
	snprintf(prefix, sizeof(prefix), "test.conf:%u: ", line);
	if (strncmp(error, prefix, strlen(prefix)) != 0 || strstr(error, want) == NULL)
		fail_msg("for input:\n%s\ngot:  %s\nwant: %s...%s", text, error, prefix, want);
	free(error);
}

static char *write_temp(const void *data, size_t len)
{
	char *path = strdup("/tmp/test-cfg-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *print_to_string(const struct cfg *cfg)
{
	FILE *f = tmpfile();
	char *text;

	assert_non_null(f);
	cfg_print(cfg, f);
	text = test_read_stream(f);
	assert_true(text[0] != '\0');
	return text;
}

static void assert_list(const struct cfg_strlist *l, const char *const *want)
{
	size_t n = 0;

	while (want[n] != NULL)
		n++;
	assert_int_equal(l->count, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->items[i], want[i]);
}

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define EMPTY ((const char *const[]){ NULL })

static void assert_lists_equal(const struct cfg_strlist *a, const struct cfg_strlist *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++)
		assert_string_equal(a->items[i], b->items[i]);
}

static void assert_services_equal(const struct cfg_service *a, const struct cfg_service *b)
{
	assert_lists_equal(&a->listen, &b->listen);
	assert_lists_equal(&a->listen_tls, &b->listen_tls);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->max_connections_per_ip, b->max_connections_per_ip);
	assert_int_equal(a->login_timeout_ms, b->login_timeout_ms);
	assert_int_equal(a->idle_timeout_ms, b->idle_timeout_ms);
	assert_int_equal(a->output_timeout_ms, b->output_timeout_ms);
	assert_int_equal(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
	assert_int_equal(a->max_line_length, b->max_line_length);
	assert_int_equal(a->max_line_length_auth, b->max_line_length_auth);
	assert_int_equal(a->output_buffer_size, b->output_buffer_size);
	assert_lists_equal(&a->trusted_proxies, &b->trusted_proxies);
}

static void assert_cfgs_equal(const struct cfg *a, const struct cfg *b)
{
	assert_string_equal(a->mail_user, b->mail_user);
	assert_string_equal(a->mail_root, b->mail_root);
	assert_int_equal(a->log_target, b->log_target);
	assert_int_equal(a->log_level, b->log_level);
	assert_string_equal(a->tls_cert, b->tls_cert);
	assert_string_equal(a->tls_key, b->tls_key);
	assert_string_equal(a->tls_min_protocol, b->tls_min_protocol);
	assert_string_equal(a->tls_ciphers, b->tls_ciphers);
	assert_string_equal(a->tls_ciphersuites, b->tls_ciphersuites);
	assert_services_equal(&a->imap, &b->imap);
	assert_services_equal(&a->pop3, &b->pop3);
	assert_services_equal(&a->lmtp, &b->lmtp);
	assert_string_equal(a->lmtp_hostname, b->lmtp_hostname);
	assert_lists_equal(&a->lmtp_local_domains, &b->lmtp_local_domains);
	assert_string_equal(a->lmtp_recipient_delimiter, b->lmtp_recipient_delimiter);
	assert_int_equal(a->lmtp_save_to_detail_mailbox, b->lmtp_save_to_detail_mailbox);
	assert_int_equal(a->lmtp_max_message_size, b->lmtp_max_message_size);
	assert_int_equal(a->lmtp_max_recipients, b->lmtp_max_recipients);
	assert_int_equal(a->lmtp_quota_full_tempfail, b->lmtp_quota_full_tempfail);
	assert_int_equal(a->pop3_uidl_format, b->pop3_uidl_format);
	assert_int_equal(a->pop3_login_delay_ms, b->pop3_login_delay_ms);
	assert_int_equal(a->auth_users, b->auth_users);
	assert_string_equal(a->auth_users_db, b->auth_users_db);
	assert_string_equal(a->auth_pam_service, b->auth_pam_service);
	assert_string_equal(a->auth_pam_confdir, b->auth_pam_confdir);
	assert_int_equal(a->auth_worker_threads, b->auth_worker_threads);
	assert_int_equal(a->auth_request_timeout_ms, b->auth_request_timeout_ms);
	assert_int_equal(a->auth_failure_delay_ms, b->auth_failure_delay_ms);
	assert_int_equal(a->auth_failure_delay_max_ms, b->auth_failure_delay_max_ms);
	assert_int_equal(a->auth_max_concurrent_per_ip, b->auth_max_concurrent_per_ip);
	assert_int_equal(a->auth_max_failures, b->auth_max_failures);
	assert_int_equal(a->auth_master_users.count, b->auth_master_users.count);
	for (size_t i = 0; i < a->auth_master_users.count; i++)
		assert_string_equal(a->auth_master_users.items[i], b->auth_master_users.items[i]);
	assert_string_equal(a->auth_master_separator, b->auth_master_separator);
}

#define MIN_MS (60 * 1000)

/* ------------------------------------------------------------ defaults */

static void assert_defaults(const struct cfg *cfg)
{
	assert_string_equal(cfg->mail_user, "tern");
	assert_string_equal(cfg->mail_root, "/var/lib/tern/mail");
	assert_int_equal(cfg->log_target, LOG_TARGET_STDERR);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_string_equal(cfg->tls_cert, "/etc/tern/tls/cert.pem");
	assert_string_equal(cfg->tls_key, "/etc/tern/tls/key.pem");
	assert_string_equal(cfg->tls_min_protocol, "TLSv1.2");
	assert_string_equal(cfg->tls_ciphers,
			    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
			    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
			    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
	assert_string_equal(cfg->tls_ciphersuites,
			    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
			    "TLS_CHACHA20_POLY1305_SHA256");

	assert_list(&cfg->imap.listen, LIST("0.0.0.0:143", "[::]:143"));
	assert_list(&cfg->imap.listen_tls, LIST("0.0.0.0:993", "[::]:993"));
	assert_list(&cfg->pop3.listen, LIST("0.0.0.0:110", "[::]:110"));
	assert_list(&cfg->pop3.listen_tls, LIST("0.0.0.0:995", "[::]:995"));
	assert_list(&cfg->lmtp.listen, LIST("unix:/run/tern/lmtp.sock"));
	assert_list(&cfg->lmtp.listen_tls, EMPTY);

	const struct cfg_service *svcs[] = { &cfg->imap, &cfg->pop3, &cfg->lmtp };
	const uint64_t login[] = { 3 * MIN_MS, 3 * MIN_MS, 5 * MIN_MS };
	const uint64_t idle[] = { 30 * MIN_MS, 10 * MIN_MS, 5 * MIN_MS };
	const uint64_t line_auth[] = { 64 * 1024, 8 * 1024, 8 * 1024 };

	for (size_t i = 0; i < 3; i++) {
		const struct cfg_service *s = svcs[i];

		assert_int_equal(s->max_connections, 1000);
		assert_int_equal(s->max_connections_per_ip, 50);
		assert_int_equal(s->login_timeout_ms, login[i]);
		assert_int_equal(s->idle_timeout_ms, idle[i]);
		assert_int_equal(s->output_timeout_ms, 5 * MIN_MS);
		assert_int_equal(s->shutdown_timeout_ms, 10 * 1000);
		assert_int_equal(s->max_line_length, 8 * 1024);
		assert_int_equal(s->max_line_length_auth, line_auth[i]);
		assert_int_equal(s->output_buffer_size, 64 * 1024);
		assert_list(&s->trusted_proxies, EMPTY);
	}
	assert_string_equal(cfg->lmtp_hostname, "");
	assert_list(&cfg->lmtp_local_domains, EMPTY);
	assert_string_equal(cfg->lmtp_recipient_delimiter, "+");
	assert_true(cfg->lmtp_save_to_detail_mailbox);
	assert_int_equal(cfg->lmtp_max_message_size, 64 * 1024 * 1024);
	assert_int_equal(cfg->lmtp_max_recipients, 100);
	assert_false(cfg->lmtp_quota_full_tempfail);
	assert_int_equal(cfg->pop3_uidl_format, CFG_UIDL_DOVECOT);
	assert_int_equal(cfg->pop3_login_delay_ms, 0);

	assert_int_equal(cfg->auth_users, CFG_USERS_VIRTUAL);
	assert_string_equal(cfg->auth_users_db, "/var/lib/tern/users.sqlite");
	assert_string_equal(cfg->auth_pam_service, "tern");
	assert_string_equal(cfg->auth_pam_confdir, "/etc/pam.d");
	assert_int_equal(cfg->auth_worker_threads, 4);
	assert_int_equal(cfg->auth_request_timeout_ms, 30 * 1000);
	assert_int_equal(cfg->auth_failure_delay_ms, 2 * 1000);
	assert_int_equal(cfg->auth_failure_delay_max_ms, 15 * 1000);
	assert_int_equal(cfg->auth_max_concurrent_per_ip, 5);
	assert_int_equal(cfg->auth_max_failures, 3);
	assert_list(&cfg->auth_master_users, EMPTY);
	assert_string_equal(cfg->auth_master_separator, "*");
}

static void test_defaults_when_empty(void **state)
{
	struct cfg *cfg = load_ok("");

	assert_defaults(cfg);
	assert_string_equal(cfg->path, "test.conf");
	cfg_free(&cfg);
	assert_null(cfg);

	/* Comments, blank lines and empty sections change nothing. */
	cfg = load_ok("# comment\n; comment\n\n[global]\n[tls]\n[imap]\n  \n[pop3]\n[lmtp]\n");
	assert_defaults(cfg);
	cfg_free(&cfg);

	cfg_free(&cfg); /* NULL is fine */
	assert_null(cfg);
}

/* ------------------------------------------------------ a full file */

static const char full_file[] =
	"# Every key, none at its default.\r\n"
	"[global]\n"
	"mail_user = vmail\n"
	"mail_root = /srv/mail ; inline comment\n"
	"log_target = syslog\n"
	"log_level = debug\n"
	"\n"
	"[tls]\n"
	"cert = /etc/ssl/mail.crt\n"
	"key = /etc/ssl/private/mail.key\n"
	"min_protocol = TLSv1.3\n"
	"ciphers = ECDHE-ECDSA-AES256-GCM-SHA384\n"
	"ciphersuites = TLS_AES_256_GCM_SHA384\n"
	"\n"
	"[imap]\n"
	"listen = 127.0.0.1:1143\n"
	"listen_tls = [::1]:1993, 192.0.2.7:993\n"
	"max_connections = 5\n"
	"max_connections_per_ip = 0\n"
	"login_timeout = 30s\n"
	"idle_timeout = 2h\n"
	"output_timeout = 90\n"
	"shutdown_timeout = 500ms\n"
	"max_line_length = 512\n"
	"max_line_length_auth = 1M\n"
	"output_buffer_size = 4k\n"
	"trusted_proxies = 10.0.0.0/8 2001:db8::/32\n"
	"\n"
	"[pop3]\n"
	"listen = 0.0.0.0:1110\n"
	"listen_tls =\n"
	"max_connections = 1000000\n"
	"max_connections_per_ip = 1000000\n"
	"login_timeout = 1d\n"
	"idle_timeout = 1ms\n"
	"output_timeout = 1d\n"
	"shutdown_timeout = 1h\n"
	"max_line_length = 16M\n"
	"max_line_length_auth = 16M\n"
	"output_buffer_size = 16M\n"
	"trusted_proxies = 192.0.2.1\n"
	"uidl_format = courier\n"
	"login_delay = 5m\n"
	"\n"
	"[lmtp]\n"
	"listen = unix:/var/spool/postfix/private/tern-lmtp\n"
	"listen_tls = 127.0.0.1:24\n"
	"max_connections = 20\n"
	"max_connections_per_ip = 10\n"
	"login_timeout = 1m\n"
	"idle_timeout = 1m\n"
	"output_timeout = 1m\n"
	"shutdown_timeout = 0\n"
	"max_line_length = 64K\n"
	"max_line_length_auth = 64K\n"
	"output_buffer_size = 1M\n"
	"trusted_proxies = ::1\n"
	"hostname = mx.example.org\n"
	"local_domains = example.org, example.net\n"
	"recipient_delimiter =\n"
	"save_to_detail_mailbox = no\n"
	"max_message_size = 1G\n"
	"max_recipients = 1000\n"
	"quota_full_tempfail = yes\n";

static void assert_full_file(const struct cfg *cfg)
{
	assert_string_equal(cfg->mail_user, "vmail");
	assert_string_equal(cfg->mail_root, "/srv/mail");
	assert_int_equal(cfg->log_target, LOG_TARGET_SYSLOG);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(cfg->tls_cert, "/etc/ssl/mail.crt");
	assert_string_equal(cfg->tls_key, "/etc/ssl/private/mail.key");
	assert_string_equal(cfg->tls_min_protocol, "TLSv1.3");
	assert_string_equal(cfg->tls_ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
	assert_string_equal(cfg->tls_ciphersuites, "TLS_AES_256_GCM_SHA384");

	assert_list(&cfg->imap.listen, LIST("127.0.0.1:1143"));
	assert_list(&cfg->imap.listen_tls, LIST("[::1]:1993", "192.0.2.7:993"));
	assert_int_equal(cfg->imap.max_connections, 5);
	assert_int_equal(cfg->imap.max_connections_per_ip, 0);
	assert_int_equal(cfg->imap.login_timeout_ms, 30000);
	assert_int_equal(cfg->imap.idle_timeout_ms, 2 * 3600 * 1000);
	assert_int_equal(cfg->imap.output_timeout_ms, 90000);
	assert_int_equal(cfg->imap.shutdown_timeout_ms, 500);
	assert_int_equal(cfg->imap.max_line_length, 512);
	assert_int_equal(cfg->imap.max_line_length_auth, 1024 * 1024);
	assert_int_equal(cfg->imap.output_buffer_size, 4096);
	assert_list(&cfg->imap.trusted_proxies, LIST("10.0.0.0/8", "2001:db8::/32"));

	assert_list(&cfg->pop3.listen, LIST("0.0.0.0:1110"));
	assert_list(&cfg->pop3.listen_tls, EMPTY);
	assert_int_equal(cfg->pop3.max_connections, 1000000);
	assert_int_equal(cfg->pop3.max_connections_per_ip, 1000000);
	assert_int_equal(cfg->pop3.login_timeout_ms, 86400000);
	assert_int_equal(cfg->pop3.idle_timeout_ms, 1);
	assert_int_equal(cfg->pop3.output_timeout_ms, 86400000);
	assert_int_equal(cfg->pop3.shutdown_timeout_ms, 3600000);
	assert_int_equal(cfg->pop3.max_line_length, 16 << 20);
	assert_int_equal(cfg->pop3.max_line_length_auth, 16 << 20);
	assert_int_equal(cfg->pop3.output_buffer_size, 16 << 20);
	assert_list(&cfg->pop3.trusted_proxies, LIST("192.0.2.1/32"));
	assert_int_equal(cfg->pop3_uidl_format, CFG_UIDL_COURIER);
	assert_int_equal(cfg->pop3_login_delay_ms, 5 * 60000);

	assert_list(&cfg->lmtp.listen, LIST("unix:/var/spool/postfix/private/tern-lmtp"));
	assert_list(&cfg->lmtp.listen_tls, LIST("127.0.0.1:24"));
	assert_int_equal(cfg->lmtp.max_connections, 20);
	assert_int_equal(cfg->lmtp.max_connections_per_ip, 10);
	assert_int_equal(cfg->lmtp.login_timeout_ms, 60000);
	assert_int_equal(cfg->lmtp.idle_timeout_ms, 60000);
	assert_int_equal(cfg->lmtp.output_timeout_ms, 60000);
	assert_int_equal(cfg->lmtp.shutdown_timeout_ms, 0);
	assert_int_equal(cfg->lmtp.max_line_length, 64 * 1024);
	assert_int_equal(cfg->lmtp.max_line_length_auth, 64 * 1024);
	assert_int_equal(cfg->lmtp.output_buffer_size, 1024 * 1024);
	assert_list(&cfg->lmtp.trusted_proxies, LIST("::1/128"));
	assert_string_equal(cfg->lmtp_hostname, "mx.example.org");
	assert_list(&cfg->lmtp_local_domains, LIST("example.org", "example.net"));
	assert_string_equal(cfg->lmtp_recipient_delimiter, "");
	assert_false(cfg->lmtp_save_to_detail_mailbox);
	assert_int_equal(cfg->lmtp_max_message_size, 1024 * 1024 * 1024);
	assert_int_equal(cfg->lmtp_max_recipients, 1000);
	assert_true(cfg->lmtp_quota_full_tempfail);
}

static void test_full_file(void **state)
{
	char *path = write_temp(full_file, strlen(full_file));
	struct cfg *cfg = NULL;
	char *error = NULL;

	assert_int_equal(cfg_load(path, &cfg, &error), 1);
	assert_null(error);
	assert_string_equal(cfg->path, path);
	assert_full_file(cfg);

	assert_ptr_equal(cfg_service_get(cfg, "imap"), &cfg->imap);
	assert_ptr_equal(cfg_service_get(cfg, "pop3"), &cfg->pop3);
	assert_ptr_equal(cfg_service_get(cfg, "lmtp"), &cfg->lmtp);
	assert_null(cfg_service_get(cfg, "global"));
	assert_null(cfg_service_get(cfg, "smtp"));
	cfg_free(&cfg);

	unlink(path);
	free(path);
}

/* -------------------------------------------------------------- errors */

struct error_case {
	const char *text;
	unsigned line;
	const char *message;
};

static void run_error_cases(const struct error_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		load_fails(cases[i].text, cases[i].line, cases[i].message);
}

static void test_errors_structure(void **state)
{
	static const struct error_case cases[] = {
		/* unknown section, at its header even when empty */
		{ "[global]\nmail_user = a\n\n[imapd]\n", 4, "unknown section [imapd]" },
		{ "[global]\n[IMAP]\nlisten = 1.2.3.4:1\n", 2, "unknown section [IMAP]" },
		/* unknown key in a known section */
		{ "[global]\nmail_user = a\nmail_usr = b\n", 3, "unknown key 'mail_usr' in [global]" },
		{ "[imap]\nmail_user = a\n", 2, "unknown key 'mail_user' in [imap] (it belongs in [global])" },
		{ "[tls]\nlisten = 1.2.3.4:1\n", 2, "it belongs in [imap], [pop3] or [lmtp]" },
		/* [lmtp]'s own keys are not service keys */
		{ "[imap]\nmax_recipients = 5\n", 2, "unknown key 'max_recipients' in [imap] (it belongs in [lmtp])" },
		{ "[global]\nhostname = x\n", 2, "unknown key 'hostname' in [global] (it belongs in [lmtp])" },
		{ "[lmtp]\nhostname = a\nhostname = b\n", 3, "[lmtp] hostname: duplicate key" },
		/* key outside any section */
		{ "# comment\n\nmail_user = a\n[global]\n", 3, "key 'mail_user' is outside any section" },
		/* duplicate scalar, also across two blocks of one section */
		{ "[global]\nlog_level = info\nlog_level = debug\n", 3, "[global] log_level: duplicate key" },
		{ "[pop3]\nmax_connections = 5\n[imap]\n[pop3]\nmax_connections = 6\n", 5,
		  "[pop3] max_connections: duplicate key" },
		{ "[global]\nmail_user = a\n  b\n", 3, "[global] mail_user: takes a single value" },
		/* the same key in two services is not a duplicate */
		/* inih syntax errors */
		{ "[global]\nmail_user = a\nthis line has no equals sign\n", 3, "syntax error" },
		{ "[global\nmail_user = a\n", 1, "syntax error" },
		/* the first error wins, whichever kind it is */
		{ "[global]\nnot a key\nmail_usr = b\n", 2, "syntax error" },
		{ "[global]\nmail_usr = b\nnot a key\n", 2, "unknown key 'mail_usr'" },
		{ "[global]\nlog_level = loud\n[nope]\nnot a key\n", 2, "log_level" },
		/* a line too long for inih is an error, and the lines after it
		 * keep their numbers */
		{ "[global]\nmail_root = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  2, "line too long" },
		{ "\xEF\xBB\xBF[global]\n[glob]\n", 2, "unknown section [glob]" },
		{ "\xEF\xBB\xBF[glob]\n", 1, "unknown section [glob]" },
	};

	run_error_cases(cases, N_ELEMENTS(cases));

	/* A long comment is fine, and the lines after a long line keep their
	 * numbers (inih alone would count the rest as another line). */
	char text[1024], filler[400];

	memset(filler, 'x', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	snprintf(text, sizeof(text), "[global]\n# %s\n  ; %s\nmail_user = a\nmail_usr = b\n",
		 filler, filler);
	load_fails(text, 5, "unknown key 'mail_usr'");
	snprintf(text, sizeof(text), "[global]\n# %s\nmail_user = long comments\n", filler);
	struct cfg *cfg = load_ok(text);

	assert_string_equal(cfg->mail_user, "long comments");
	cfg_free(&cfg);
	snprintf(text, sizeof(text), "[global]\nmail_user = %s\nmail_usr = b\n", filler);
	load_fails(text, 2, "line too long (the limit is 198 characters)");

	/* A UTF-8 byte order mark and CRLF line ends are accepted. */
	cfg = load_ok("\xEF\xBB\xBF[global]\r\nmail_user = bom\r\n\r\n[imap]\r\nlisten = 127.0.0.1:1\r\n");
	assert_string_equal(cfg->mail_user, "bom");
	assert_list(&cfg->imap.listen, LIST("127.0.0.1:1"));
	cfg_free(&cfg);

	/* Same key in different services: fine. */
	cfg = load_ok("[imap]\nmax_connections = 1\n[pop3]\nmax_connections = 2\n");

	assert_int_equal(cfg->imap.max_connections, 1);
	assert_int_equal(cfg->pop3.max_connections, 2);
	cfg_free(&cfg);
}

static void test_errors_values(void **state)
{
	static const struct error_case cases[] = {
		/* integers: range named, no sign, no junk, not empty, no overflow */
		{ "[imap]\nmax_connections = 0\n", 2, "[imap] max_connections: 0 is out of range (1..1000000)" },
		{ "[lmtp]\nmax_connections = 1000001\n", 2, "[lmtp] max_connections: 1000001 is out of range (1..1000000)" },
		{ "[imap]\nmax_connections_per_ip = 1000001\n", 2, "out of range (0..1000000)" },
		{ "[imap]\nmax_connections = -1\n", 2, "[imap] max_connections: '-1' is not a number" },
		{ "[imap]\nmax_connections = +5\n", 2, "'+5' is not a number" },
		{ "[imap]\nmax_connections = 10x\n", 2, "'10x' is not a number" },
		{ "[imap]\nmax_connections = 1 0\n", 2, "'1 0' is not a number" },
		{ "[imap]\nmax_connections = 0x10\n", 2, "'0x10' is not a number" },
		{ "[imap]\nmax_connections =\n", 2, "[imap] max_connections: empty value" },
		{ "[imap]\nmax_connections = 4294967297\n", 2, "out of range (1..1000000)" },
		{ "[imap]\nmax_connections = 99999999999999999999999999\n", 2, "out of range (1..1000000)" },
		/* yes or no, nothing else */
		{ "[lmtp]\nquota_full_tempfail = true\n", 2, "[lmtp] quota_full_tempfail: 'true' is not one of no, yes" },
		{ "[lmtp]\nsave_to_detail_mailbox =\n", 2, "[lmtp] save_to_detail_mailbox: empty value" },
		{ "[lmtp]\nmax_message_size = 1023\n", 2, "[lmtp] max_message_size: 1023 is out of range (1K..4G)" },
		{ "[lmtp]\nmax_recipients = 0\n", 2, "[lmtp] max_recipients: 0 is out of range (1..100000)" },
		/* enums list what is allowed */
		{ "[global]\nlog_level = verbose\n", 2, "[global] log_level: 'verbose' is not one of error, warn, info, debug" },
		{ "[global]\nlog_target = file\n", 2, "'file' is not one of stderr, syslog" },
		{ "[tls]\nmin_protocol = TLSv1.1\n", 2, "[tls] min_protocol: 'TLSv1.1' is not one of TLSv1.2, TLSv1.3" },
		/* strings and paths */
		{ "[global]\nmail_user =\n", 2, "[global] mail_user: empty value" },
		{ "[global]\nmail_root = var/mail\n", 2, "[global] mail_root: 'var/mail' is not an absolute path" },
		{ "[tls]\nkey = key.pem\n", 2, "[tls] key: 'key.pem' is not an absolute path" },
		/* addresses */
		{ "[imap]\nlisten = 1.2.3.4\n", 2, "[imap] listen: bad address '1.2.3.4'" },
		{ "[imap]\nlisten = localhost:143\n", 2, "bad address 'localhost:143'" },
		{ "[imap]\nlisten = 1.2.3.256:143\n", 2, "bad address '1.2.3.256:143'" },
		{ "[imap]\nlisten = 1.2.3.4:0\n", 2, "bad address '1.2.3.4:0': the port must be 1..65535" },
		{ "[imap]\nlisten = 1.2.3.4:65536\n", 2, "the port must be 1..65535" },
		{ "[imap]\nlisten = 1.2.3.4:\n", 2, "the port must be 1..65535" },
		{ "[imap]\nlisten = 1.2.3.4:14x\n", 2, "the port must be 1..65535" },
		{ "[imap]\nlisten = unix:run/x.sock\n", 2, "bad address 'unix:run/x.sock'" },
		{ "[imap]\nlisten_tls = 127.0.0.1:993\n  127.0.0.1:99999\n", 3, "[imap] listen_tls: bad address '127.0.0.1:99999'" },
		/* networks */
		{ "[imap]\ntrusted_proxies = 10.0.0.0/33\n", 2, "[imap] trusted_proxies: bad network '10.0.0.0/33'" },
		{ "[imap]\ntrusted_proxies = 10.0.0/8\n", 2, "bad network '10.0.0/8'" },
		{ "[imap]\ntrusted_proxies = 10.0.0.0/\n", 2, "bad network '10.0.0.0/'" },
		{ "[imap]\ntrusted_proxies = 10.0.0.0/8x\n", 2, "bad network '10.0.0.0/8x'" },
		{ "[imap]\ntrusted_proxies = 2001:db8::/129\n", 2, "bad network '2001:db8::/129'" },
		{ "[imap]\ntrusted_proxies = proxy.example\n", 2, "bad network 'proxy.example'" },
		{ "[imap]\ntrusted_proxies = [::1]\n", 2, "bad network '[::1]'" },
	};

	run_error_cases(cases, N_ELEMENTS(cases));
}

static void test_error_unreadable(void **state)
{
	struct cfg *cfg = (struct cfg *)1;
	char *error = NULL;

	assert_int_equal(cfg_load("/nonexistent/tern.conf", &cfg, &error), -1);
	assert_null(cfg);
	assert_string_equal(error, "/nonexistent/tern.conf:0: cannot read: No such file or directory");
	free(error);

	/* A directory opens but does not read. */
	assert_int_equal(cfg_load("/", &cfg, &error), -1);
	assert_string_equal(error, "/:0: cannot read: Is a directory");
	free(error);
}

static void test_error_nul_byte(void **state)
{
	static const char text[] = "[global]\nmail_user = ab\0cd\nlog_level = debug\n";
	char *path = write_temp(text, sizeof(text) - 1);
	struct cfg *cfg = NULL;
	char *error = NULL;
	char want[256];

	assert_int_equal(cfg_load(path, &cfg, &error), -1);
	snprintf(want, sizeof(want), "%s:2: the line contains a NUL byte", path);
	assert_string_equal(error, want);
	free(error);
	unlink(path);
	free(path);
}

/* -------------------------------------------------- sizes and durations */

static uint64_t load_u64(const char *section, const char *key, const char *value, size_t field)
{
	char text[256];
	struct cfg *cfg;
	uint64_t v;

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", section, key, value);
	cfg = load_ok(text);
	memcpy(&v, (const char *)cfg + field, sizeof(v));
	cfg_free(&cfg);
	return v;
}

#define IMAP(f) (offsetof(struct cfg, imap) + offsetof(struct cfg_service, f))

static void test_sizes(void **state)
{
	assert_int_equal(load_u64("imap", "output_buffer_size", "4096", IMAP(output_buffer_size)), 4096);
	assert_int_equal(load_u64("imap", "output_buffer_size", "5000", IMAP(output_buffer_size)), 5000);
	assert_int_equal(load_u64("imap", "output_buffer_size", "8k", IMAP(output_buffer_size)), 8192);
	assert_int_equal(load_u64("imap", "output_buffer_size", "8K", IMAP(output_buffer_size)), 8192);
	assert_int_equal(load_u64("imap", "output_buffer_size", "3M", IMAP(output_buffer_size)), 3 << 20);
	assert_int_equal(load_u64("imap", "output_buffer_size", "16M", IMAP(output_buffer_size)), 16 << 20);
	assert_int_equal(load_u64("imap", "max_line_length", "0512", IMAP(max_line_length)), 512);
	assert_int_equal(load_u64("imap", "max_line_length", "16384K", IMAP(max_line_length)), 16 << 20);

	static const struct error_case cases[] = {
		{ "[imap]\noutput_buffer_size = 4095\n", 2, "[imap] output_buffer_size: 4095 is out of range (4K..16M)" },
		{ "[imap]\noutput_buffer_size = 1G\n", 2, "1G is out of range (4K..16M)" },
		{ "[imap]\nmax_line_length = 511\n", 2, "511 is out of range (512..16M)" },
		{ "[imap]\nmax_line_length = 16385K\n", 2, "out of range (512..16M)" },
		{ "[imap]\noutput_buffer_size = 8m\n", 2, "'8m' is not a size" },
		{ "[imap]\noutput_buffer_size = 8KB\n", 2, "'8KB' is not a size" },
		{ "[imap]\noutput_buffer_size = 8 K\n", 2, "'8 K' is not a size" },
		{ "[imap]\noutput_buffer_size = 1T\n", 2, "'1T' is not a size" },
		{ "[imap]\noutput_buffer_size = K\n", 2, "'K' is not a size" },
		{ "[imap]\noutput_buffer_size = -4K\n", 2, "'-4K' is not a size" },
		{ "[imap]\noutput_buffer_size = 1.5M\n", 2, "'1.5M' is not a size" },
		{ "[imap]\noutput_buffer_size =\n", 2, "output_buffer_size: empty value" },
		/* 2^64 itself, and 2^54 K = 2^64 overflowing in the multiplication */
		{ "[imap]\noutput_buffer_size = 18446744073709551616\n", 2, "out of range (4K..16M)" },
		{ "[imap]\noutput_buffer_size = 18014398509481984K\n", 2, "out of range (4K..16M)" },
		{ "[imap]\noutput_buffer_size = 17179869184G\n", 2, "out of range (4K..16M)" },
	};

	run_error_cases(cases, N_ELEMENTS(cases));
}

static void test_durations(void **state)
{
	assert_int_equal(load_u64("imap", "login_timeout", "1500ms", IMAP(login_timeout_ms)), 1500);
	assert_int_equal(load_u64("imap", "login_timeout", "10", IMAP(login_timeout_ms)), 10000);
	assert_int_equal(load_u64("imap", "login_timeout", "10s", IMAP(login_timeout_ms)), 10000);
	assert_int_equal(load_u64("imap", "login_timeout", "3m", IMAP(login_timeout_ms)), 180000);
	assert_int_equal(load_u64("imap", "login_timeout", "2h", IMAP(login_timeout_ms)), 7200000);
	assert_int_equal(load_u64("imap", "login_timeout", "1d", IMAP(login_timeout_ms)), 86400000);
	assert_int_equal(load_u64("imap", "login_timeout", "1ms", IMAP(login_timeout_ms)), 1);
	assert_int_equal(load_u64("imap", "shutdown_timeout", "0", IMAP(shutdown_timeout_ms)), 0);
	assert_int_equal(load_u64("imap", "shutdown_timeout", "0s", IMAP(shutdown_timeout_ms)), 0);

	static const struct error_case cases[] = {
		{ "[imap]\nlogin_timeout = 0\n", 2, "[imap] login_timeout: 0 is out of range (1ms..1d)" },
		{ "[imap]\nlogin_timeout = 25h\n", 2, "25h is out of range (1ms..1d)" },
		{ "[imap]\nshutdown_timeout = 61m\n", 2, "61m is out of range (0..1h)" },
		{ "[imap]\nidle_timeout = 1w\n", 2, "[imap] idle_timeout: '1w' is not a duration" },
		{ "[imap]\nidle_timeout = 5 m\n", 2, "'5 m' is not a duration" },
		{ "[imap]\nidle_timeout = 5M\n", 2, "'5M' is not a duration" },
		{ "[imap]\nidle_timeout = 1.5s\n", 2, "'1.5s' is not a duration" },
		{ "[imap]\nidle_timeout = -1s\n", 2, "'-1s' is not a duration" },
		{ "[imap]\nidle_timeout = s\n", 2, "'s' is not a duration" },
		{ "[imap]\nidle_timeout =\n", 2, "idle_timeout: empty value" },
		/* overflow of the number and of the conversion to milliseconds */
		{ "[imap]\nidle_timeout = 99999999999999999999ms\n", 2, "out of range (1ms..1d)" },
		{ "[imap]\nidle_timeout = 213503982334602d\n", 2, "out of range (1ms..1d)" },
		{ "[imap]\nidle_timeout = 18446744073709552s\n", 2, "out of range (1ms..1d)" },
	};

	run_error_cases(cases, N_ELEMENTS(cases));
}

/* ---------------------------------------------------------------- lists */

static void test_lists(void **state)
{
	/* The first mention replaces the default; repeats and continuation
	 * lines append; commas and whitespace both separate. */
	struct cfg *cfg = load_ok(
		"[imap]\n"
		"listen = 127.0.0.1:143,127.0.0.2:143\n"
		"    127.0.0.3:143 , 127.0.0.4:143\n"
		"\t127.0.0.5:143\n"
		"max_connections = 7\n"
		"listen = 127.0.0.6:143\n"
		"trusted_proxies =\n"
		"  10.1.0.0/16\n"
		"  ; a comment does not end the list\n"
		"  10.2.0.0/16 ; nor does one after an item\n"
		"  10.3.0.0/16\n");

	assert_list(&cfg->imap.listen, LIST("127.0.0.1:143", "127.0.0.2:143", "127.0.0.3:143",
					    "127.0.0.4:143", "127.0.0.5:143", "127.0.0.6:143"));
	assert_int_equal(cfg->imap.max_connections, 7);
	assert_list(&cfg->imap.trusted_proxies, LIST("10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"));
	/* Other services keep their defaults. */
	assert_list(&cfg->pop3.listen, LIST("0.0.0.0:110", "[::]:110"));
	cfg_free(&cfg);

	/* An empty value empties the list (no plain-text listener). */
	cfg = load_ok("[imap]\nlisten =\n[pop3]\nlisten = ,\n");
	assert_list(&cfg->imap.listen, EMPTY);
	assert_list(&cfg->pop3.listen, EMPTY);
	assert_list(&cfg->imap.listen_tls, LIST("0.0.0.0:993", "[::]:993"));
	cfg_free(&cfg);

	/* Name lists: words; a control character is never part of a name. */
	cfg = load_ok("[auth]\nmaster_users = admin, support@example.org\n  helpdesk\n");
	assert_list(&cfg->auth_master_users, LIST("admin", "support@example.org", "helpdesk"));
	cfg_free(&cfg);
	load_fails("[auth]\nmaster_users = ad\x01min\n", 2, "[auth] master_users: bad name");

	/* ';' starts a comment only after a space. */
	load_fails("[imap]\ntrusted_proxies = 10.0.0.0/8\n  10.3.0.0/16,;x\n", 3, "bad network ';x'");

	/* An error on a continuation line names that line. */
	load_fails("[lmtp]\nlisten = unix:/a\n  unix:/b\n  nonsense\n", 4, "bad address 'nonsense'");
}

static void test_ipv6(void **state)
{
	struct cfg *cfg = load_ok(
		"[imap]\n"
		"listen = [::]:143 [::1]:10143 [2001:db8::1]:143\n"
		"listen_tls = [::ffff:192.0.2.1]:993 [fe80::1:2:3:4]:993\n"
		"trusted_proxies = ::1 2001:db8::/48 ::ffff:10.0.0.0/104 ::/0 0.0.0.0/0\n");

	assert_list(&cfg->imap.listen, LIST("[::]:143", "[::1]:10143", "[2001:db8::1]:143"));
	assert_list(&cfg->imap.listen_tls, LIST("[::ffff:192.0.2.1]:993", "[fe80::1:2:3:4]:993"));
	assert_list(&cfg->imap.trusted_proxies,
		    LIST("::1/128", "2001:db8::/48", "::ffff:10.0.0.0/104", "::/0", "0.0.0.0/0"));
	cfg_free(&cfg);

	static const struct error_case cases[] = {
		{ "[imap]\nlisten = ::1:143\n", 2, "bad address '::1:143'" },
		{ "[imap]\nlisten = [::1]143\n", 2, "bad address '[::1]143'" },
		{ "[imap]\nlisten = [::1]\n", 2, "bad address '[::1]'" },
		{ "[imap]\nlisten = [::1:143\n", 2, "bad address '[::1:143'" },
		{ "[imap]\nlisten = [1.2.3.4]:143\n", 2, "bad address '[1.2.3.4]:143'" },
		{ "[imap]\nlisten = [1:2:3:4:5:6:7:8:9]:143\n", 2, "bad address" },
		{ "[imap]\nlisten = [::g]:143\n", 2, "bad address '[::g]:143'" },
		{ "[imap]\nlisten = [::1]:65536\n", 2, "the port must be 1..65535" },
		{ "[imap]\nlisten = [fe80::1%eth0]:143\n", 2, "bad address" },
		{ "[imap]\ntrusted_proxies = 2001:db8:::/48\n", 2, "bad network '2001:db8:::/48'" },
	};

	run_error_cases(cases, N_ELEMENTS(cases));
}

/* -------------------------------------------------------------- printing */

/* print(load(print(cfg))) == print(cfg), and the two configs are equal. */
static void assert_round_trip(struct cfg *cfg)
{
	char *printed = print_to_string(cfg);
	struct cfg *again = load_ok(printed);
	char *reprinted = print_to_string(again);

	assert_cfgs_equal(cfg, again);
	/* The header names the file; compare from the first section on. */
	assert_string_equal(strstr(printed, "\n["), strstr(reprinted, "\n["));
	free(printed);
	free(reprinted);
	cfg_free(&again);
}

static void test_print_round_trip(void **state)
{
	struct cfg *cfg = load_ok("");
	char *printed = print_to_string(cfg);

	/* Sizes and durations in their shortest exact form. */
	assert_non_null(strstr(printed, "\n[imap]\nlisten = 0.0.0.0:143 [::]:143\n"));
	assert_non_null(strstr(printed, "\nlogin_timeout = 3m\nidle_timeout = 30m\n"));
	assert_non_null(strstr(printed, "\nmax_line_length_auth = 64K\n"));
	assert_non_null(strstr(printed, "\n[lmtp]\nlisten = unix:/run/tern/lmtp.sock\nlisten_tls =\n"));
	free(printed);
	assert_round_trip(cfg);
	cfg_free(&cfg);

	cfg = load_ok(full_file);
	assert_round_trip(cfg);
	cfg_free(&cfg);

	/* Odd values, and a list long enough to need continuation lines. */
	cfg = load_ok("[global]\nmail_root = /srv/mail with spaces;x#y\n"
		      "[imap]\nlogin_timeout = 61s\nidle_timeout = 1500ms\nshutdown_timeout = 0\n"
		      "max_line_length = 1025\noutput_buffer_size = 1024K\n"
		      "listen = [2001:db8:1234:5678:9abc:def0:1234:5678]:143 unix:/run/a.sock\n"
		      "  [2001:db8:1234:5678:9abc:def0:1234:5679]:143 10.0.0.1:143\n"
		      "  [2001:db8:1234:5678:9abc:def0:1234:567a]:143\n"
		      "trusted_proxies = 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6\n"
		      "  10.0.0.7 10.0.0.8 10.0.0.9 10.0.0.10 10.0.0.11 10.0.0.12\n");
	printed = print_to_string(cfg);
	assert_non_null(strstr(printed, "\nmail_root = /srv/mail with spaces;x#y\n"));
	assert_non_null(strstr(printed, "\nlogin_timeout = 61s\nidle_timeout = 1500ms\n"));
	assert_non_null(strstr(printed, "\nmax_line_length = 1025\n"));
	assert_non_null(strstr(printed, "\noutput_buffer_size = 1M\n"));
	/* Lists wrap onto continuation lines instead of growing long. */
	const char *imap = strstr(printed, "\n[imap]\n"), *pop3 = strstr(printed, "\n[pop3]\n");

	assert_non_null(strstr(imap, "\n    "));
	for (const char *line = imap + 1; line < pop3; line += strcspn(line, "\n") + 1)
		assert_true(strcspn(line, "\n") <= 80);
	free(printed);
	assert_round_trip(cfg);
	cfg_free(&cfg);

	/* A value starting with ';' (a comment only after a space). */
	cfg = load_ok("[global]\nmail_user =;odd\n");
	assert_string_equal(cfg->mail_user, ";odd");
	assert_round_trip(cfg);
	cfg_free(&cfg);

	/* A value that only fits its line without spaces around '='. */
	char text[256], value[200];

	memset(value, 'x', sizeof(value));
	value[198 - strlen("ciphers=")] = '\0';
	snprintf(text, sizeof(text), "[tls]\nciphers=%s\n", value);
	cfg = load_ok(text);
	assert_string_equal(cfg->tls_ciphers, value);
	assert_round_trip(cfg);
	cfg_free(&cfg);
}

/* ---------------------------------------- documentation covers every key */

struct key_set {
	char names[128][64]; /* "section.key" */
	size_t count;
};

static bool key_set_has(const struct key_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->names[i], name) == 0)
			return true;
	}
	return false;
}

/* Collect "section.key" for every "key = ..." line of an INI text. */
static void collect_keys(const char *text, struct key_set *set)
{
	char section[32] = "";

	set->count = 0;
	for (const char *line = text; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		size_t name_len = strspn(line, "abcdefghijklmnopqrstuvwxyz_0123456789");

		if (line[0] == '[') {
			snprintf(section, sizeof(section), "%.*s", (int)strcspn(line + 1, "]"), line + 1);
		} else if (name_len > 0 && (line[name_len] == ' ' || line[name_len] == '=')) {
			assert_true(set->count < N_ELEMENTS(set->names));
			snprintf(set->names[set->count++], sizeof(set->names[0]), "%s.%.*s",
				 section, (int)name_len, line);
		}
		line += len + (line[len] == '\n');
	}
}

static void test_docs_cover_every_key(void **state)
{
	struct cfg *defaults = load_ok("");
	char *printed = print_to_string(defaults);
	struct key_set *all = calloc(1, sizeof(*all));
	struct key_set *sample_keys = calloc(1, sizeof(*sample_keys));

	/* cfg_print prints every key of the table: that is the list. */
	collect_keys(printed, all);
	assert_int_equal(all->count, 4 + 5 + 3 * 12 + 4 + 7 + 2 + 12);

	/* docs/configuration.md has a heading for each key. */
	char *doc = test_read_file(SOURCE_ROOT "/docs/configuration.md");

	for (size_t i = 0; i < all->count; i++) {
		char heading[80];

		snprintf(heading, sizeof(heading), "### `%s`", strchr(all->names[i], '.') + 1);
		if (strstr(doc, heading) == NULL)
			fail_msg("docs/configuration.md lacks \"%s\"", heading);
	}
	free(doc);

	/* etc/tern.conf shows each key in its section as "#key = default".
	 * Uncommented, it must load to exactly the defaults. */
	char *sample = test_read_file(SOURCE_ROOT "/etc/tern.conf");
	char *uncommented = calloc(1, strlen(sample) + 1);
	char *out = uncommented;

	for (const char *line = sample; *line != '\0';) {
		size_t len = strcspn(line, "\n");

		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z')
			line++, len--;
		memcpy(out, line, len);
		out += len;
		*out++ = '\n';
		line += len + (line[len] == '\n');
	}
	*out = '\0';

	struct cfg *from_sample = load_ok(uncommented);

	assert_cfgs_equal(from_sample, defaults);
	collect_keys(uncommented, sample_keys);
	for (size_t i = 0; i < all->count; i++) {
		if (!key_set_has(sample_keys, all->names[i]))
			fail_msg("etc/tern.conf lacks %s (as \"#key = default\" in its section)",
				 all->names[i]);
	}
	assert_int_equal(sample_keys->count, all->count);

	cfg_free(&from_sample);
	free(uncommented);
	free(sample);
	free(sample_keys);
	free(all);
	free(printed);
	cfg_free(&defaults);
}

/* The examples in docs/configuration.md load. */
static void test_docs_examples_load(void **state)
{
	char *doc = test_read_file(SOURCE_ROOT "/docs/configuration.md");
	int examples = 0;

	for (char *p = strstr(doc, "```ini\n"); p != NULL; p = strstr(p, "```ini\n")) {
		char *start = p + strlen("```ini\n");
		char *end = strstr(start, "```");

		assert_non_null(end);
		*end = '\0';
		struct cfg *cfg = load_ok(start);

		cfg_free(&cfg);
		examples++;
		p = end + 1;
	}
	assert_true(examples >= 2);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_when_empty),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors_structure),
		cmocka_unit_test(test_errors_values),
		cmocka_unit_test(test_error_unreadable),
		cmocka_unit_test(test_error_nul_byte),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_docs_cover_every_key),
		cmocka_unit_test(test_docs_examples_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
