/*
 * echod.c — tern-echod, a tiny line protocol on the connection framework,
 * for the framework's protocol tests and the idle-memory benchmark. It
 * serves the listeners of one tern.conf section (-s imap|pop3|lmtp,
 * default imap) and is not installed.
 *
 *   CAPA          "* CAPABILITY ECHO [STARTTLS]" + OK
 *   STARTTLS      OK, then TLS (pipelined input discarded)
 *   INFO          "* INFO remote= port= tls= secure= session=" + OK
 *   BIG n         n bytes of 'x', CRLF, OK — produced as the socket drains
 *   SLEEP ms      sleeps on the thread pool, then "OK slept"
 *   LOGIN         post-login line limit and idle timeout (no check)
 *   LOGIN user pass          a password check through the auth worker
 *   AUTHENTICATE mech [ir]   SASL PLAIN or LOGIN ("+ <challenge>" lines,
 *                            "*" cancels; "=" is an empty initial response)
 *   QUIT          BYE and close
 *   anything else "ECHO <line>"
 *
 * Authentication answers "OK <user>", "NO <message>" (wrong credentials,
 * disabled account), "NO [UNAVAILABLE] <message>" (temporary failure, too
 * many attempts in flight) or "BAD <reason>" (malformed or cancelled SASL).
 * After [auth] max_failures failed checks the connection is closed with
 * "* BYE". Input is paused while a check runs. The daemon always starts
 * the auth worker (through the service_def hooks), so the auth path is
 * tested end to end on a real daemon.
 */
#include "auth/auth.h"
#include "common/common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct echo_session {
	uint64_t big_left;   /* bytes of a BIG response still to produce */
	bool big_active;
	bool waiting_drain;  /* input paused until output drains */
	struct sasl *sasl;   /* an AUTHENTICATE exchange in progress */
	const char *sasl_mech;
	struct auth_request *auth; /* a check in flight */
	unsigned failures;
};

/* [auth] max_failures, from the configuration at start and after SIGHUP. */
static uint32_t max_failures = 3;

struct sleep_job {
	unsigned ms;
};

static void echo_open(struct conn *c)
{
	struct echo_session *es = arena_alloc(conn_arena(c), sizeof(*es));

	conn_set_data(c, es);
	conn_write_str(c, "* OK tern-echod ready\r\n");
}

/* Produce the rest of a BIG response while the output queue has room. */
static void big_continue(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);
	static char chunk[16384];

	if (chunk[0] != 'x')
		memset(chunk, 'x', sizeof(chunk));
	while (es->big_left > 0 && conn_writable(c)) {
		size_t n = es->big_left < sizeof(chunk) ? (size_t)es->big_left : sizeof(chunk);

		conn_write(c, chunk, n);
		es->big_left -= n;
	}
	if (es->big_left == 0) {
		conn_write_str(c, "\r\nOK\r\n");
		es->big_active = false;
		conn_resume(c);
	}
}

static void sleep_work(void *data)
{
	struct sleep_job *job = data;
	struct timespec ts = { job->ms / 1000, (long)(job->ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void sleep_done(struct conn *c, void *data)
{
	free(data);
	conn_write_str(c, "OK slept\r\n");
}

/* ------------------------------------------------------------ auth */

static void logged_in(struct conn *c)
{
	const struct cfg_service *svc = conn_service_cfg(c);

	conn_set_line_max(c, (size_t)svc->max_line_length_auth);
	conn_set_timeout(c, svc->idle_timeout_ms);
}

static void auth_done(const struct auth_reply *reply, void *data)
{
	struct conn *c = data;
	struct echo_session *es = conn_get_data(c);

	es->auth = NULL;
	conn_resume(c);
	switch (reply->result) {
	case AUTH_OK: {
		struct log_ctx *ctx = conn_log_ctx(c);
		size_t n = strnlen(reply->user->name, sizeof(ctx->user) - 1);

		memcpy(ctx->user, reply->user->name, n);
		ctx->user[n] = '\0';
		logged_in(c);
		conn_printf(c, "OK %s\r\n", reply->user->name);
		return;
	}
	case AUTH_FAILED:
	case AUTH_DISABLED:
		conn_printf(c, "NO %s\r\n", reply->message);
		if (++es->failures >= max_failures) {
			conn_write_str(c, "* BYE Too many authentication failures\r\n");
			conn_close(c, "too many authentication failures");
		}
		return;
	case AUTH_TEMPFAIL:
	case AUTH_LIMITED:
		break;
	}
	conn_printf(c, "NO [UNAVAILABLE] %s\r\n", reply->message);
}

/* Hand credentials to the auth worker; input waits for the answer. */
static void auth_start(struct conn *c, const char *mech, const char *authzid,
		       const char *authcid, const char *password)
{
	struct echo_session *es = conn_get_data(c);

	es->auth = auth_begin_conn(c, mech, authzid, authcid, password, auth_done, c);
}

/* One step of an AUTHENTICATE exchange: line NULL starts it without an
 * initial response. */
static void sasl_continue(struct conn *c, const char *line, size_t len)
{
	struct echo_session *es = conn_get_data(c);
	const char *challenge, *why;
	const char *authzid, *authcid, *password;

	switch (sasl_step(es->sasl, line, len, &challenge, &why)) {
	case SASL_CHALLENGE:
		conn_printf(c, "+ %s\r\n", challenge);
		return;
	case SASL_DONE:
		sasl_credentials(es->sasl, &authzid, &authcid, &password);
		auth_start(c, es->sasl_mech, authzid, authcid, password);
		break;
	case SASL_CANCELLED:
		conn_write_str(c, "BAD Authentication cancelled\r\n");
		break;
	case SASL_BAD:
		conn_printf(c, "BAD %s\r\n", why);
		break;
	}
	sasl_free(&es->sasl);
}

static void cmd_authenticate(struct conn *c, const char *args, size_t len)
{
	struct echo_session *es = conn_get_data(c);
	enum sasl_mech mech;
	char name[32];
	const char *sp = memchr(args, ' ', len);
	size_t n = sp != NULL ? (size_t)(sp - args) : len;

	if (n >= sizeof(name) || memchr(args, '\0', n) != NULL) {
		conn_write_str(c, "NO Unsupported mechanism\r\n");
		return;
	}
	memcpy(name, args, n);
	name[n] = '\0';
	if (sasl_mech_parse(name, &mech) < 0) {
		conn_write_str(c, "NO Unsupported mechanism\r\n");
		return;
	}
	es->sasl = sasl_begin(mech);
	es->sasl_mech = sasl_mech_name(mech);
	if (sp != NULL)
		sasl_continue(c, sp + 1, len - n - 1);
	else
		sasl_continue(c, NULL, 0);
}

/* LOGIN user password (the password is the rest of the line). Lines are
 * not NUL-terminated: the copy is, and is wiped after use. */
static void cmd_login(struct conn *c, const char *line, size_t len)
{
	char *copy = xcalloc(1, len + 1);
	char *sp;

	memcpy(copy, line, len);
	sp = strchr(copy, ' ');
	if (sp == NULL || strlen(copy) != len) {
		conn_write_str(c, "BAD LOGIN needs a user and a password\r\n");
	} else {
		*sp = '\0';
		auth_start(c, "LOGIN-CMD", NULL, copy, sp + 1);
	}
	mem_wipe(copy, len);
	free(copy);
}

/* ---------------------------------------------------------- commands */

static void echo_command(struct conn *c, const char *line, size_t len)
{
	struct echo_session *es = conn_get_data(c);

	if (len == 4 && strncmp(line, "CAPA", 4) == 0) {
		conn_printf(c, "* CAPABILITY ECHO%s\r\nOK\r\n",
			    conn_can_starttls(c) ? " STARTTLS" : "");
	} else if (len == 8 && strncmp(line, "STARTTLS", 8) == 0) {
		if (!conn_can_starttls(c)) {
			conn_write_str(c, "NO STARTTLS not available\r\n");
			return;
		}
		conn_write_str(c, "OK begin TLS\r\n");
		conn_starttls(c);
	} else if (len == 4 && strncmp(line, "INFO", 4) == 0) {
		conn_printf(c, "* INFO remote=%s port=%d tls=%s secure=%s session=%s\r\nOK\r\n",
			    conn_remote_ip(c), conn_remote_port(c),
			    conn_is_tls(c) ? "yes" : "no", conn_is_secure(c) ? "yes" : "no",
			    conn_session_id(c));
	} else if (len > 4 && strncmp(line, "BIG ", 4) == 0) {
		es->big_left = strtoull(line + 4, NULL, 10);
		es->big_active = true;
		conn_pause(c);
		big_continue(c);
	} else if (len > 6 && strncmp(line, "SLEEP ", 6) == 0) {
		struct sleep_job *job = calloc(1, sizeof(*job));

		job->ms = (unsigned)strtoul(line + 6, NULL, 10);
		if (job->ms > 60000)
			job->ms = 60000;
		if (conn_queue_work(c, sleep_work, sleep_done, free, job) < 0) {
			free(job);
			conn_write_str(c, "NO busy\r\n");
		}
	} else if (len == 5 && strncmp(line, "LOGIN", 5) == 0) {
		logged_in(c);
		conn_write_str(c, "OK logged in\r\n");
	} else if (len > 6 && strncmp(line, "LOGIN ", 6) == 0) {
		cmd_login(c, line + 6, len - 6);
	} else if (len > 13 && strncmp(line, "AUTHENTICATE ", 13) == 0) {
		cmd_authenticate(c, line + 13, len - 13);
	} else if (len == 4 && strncmp(line, "QUIT", 4) == 0) {
		conn_write_str(c, "BYE\r\n");
		conn_close(c, "quit");
	} else {
		conn_write_str(c, "ECHO ");
		conn_write(c, line, len);
		conn_write_str(c, "\r\n");
	}
}

static void echo_input(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);
	const char *line;
	size_t len;
	int ret;

	while (!es->big_active && (ret = conn_read_line(c, &line, &len)) != 0) {
		if (ret == CONN_ELINE) {
			sasl_free(&es->sasl);
			conn_write_str(c, "BAD line too long\r\n");
			continue;
		}
		if (es->sasl != NULL)
			sasl_continue(c, line, len);
		else
			echo_command(c, line, len);
		if (es->auth != NULL)
			break; /* paused until the check is over */
		if (!conn_writable(c) && !es->big_active) {
			/* Let the output drain before reading more. */
			es->waiting_drain = true;
			conn_pause(c);
			break;
		}
	}
}

static void echo_drain(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);

	if (es == NULL)
		return;
	if (es->big_active) {
		big_continue(c);
	} else if (es->waiting_drain) {
		es->waiting_drain = false;
		conn_resume(c);
	}
}

static void echo_notice(struct conn *c, enum conn_notice why)
{
	conn_write_str(c, why == CONN_NOTICE_SHUTDOWN ? "* BYE server shutting down\r\n" :
		       "* BYE idle timeout\r\n");
}

static void echo_refuse(struct conn *c, enum conn_refusal why)
{
	conn_write_str(c, "* BYE [LIMIT] too many connections\r\n");
}

static void echo_close(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);

	if (es == NULL)
		return;
	/* Session state lives in the connection's arena, but an exchange and
	 * a check in flight are not the arena's. */
	sasl_free(&es->sasl);
	if (es->auth != NULL)
		auth_request_cancel(es->auth);
	es->auth = NULL;
}

static const struct conn_handler echo_handler = {
	.open_cb = echo_open,
	.input_cb = echo_input,
	.drain_cb = echo_drain,
	.notice_cb = echo_notice,
	.refuse_cb = echo_refuse,
	.close_cb = echo_close,
};

static int echo_prepare(const struct cfg *cfg)
{
	max_failures = cfg->auth_max_failures;
	return auth_service_prepare(cfg);
}

static void echo_reload(const struct cfg *cfg)
{
	max_failures = cfg->auth_max_failures;
	auth_service_reload(cfg);
}

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "imap",
		.program = "tern-echod",
		.alpn = "imap",
		.handler = &echo_handler,
		.prepare_cb = echo_prepare,
		.start_cb = auth_service_start,
		.reload_cb = echo_reload,
		.stop_cb = auth_service_stop,
	};

	/* "-s name" picks the section; the rest goes to daemon_main. */
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-s") == 0) {
			def.name = argv[i + 1];
			def.alpn = strcmp(def.name, "lmtp") == 0 ? NULL : def.name;
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv));
			argc -= 2;
			break;
		}
	}
	return daemon_main(&def, argc, argv);
}
