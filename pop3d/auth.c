/*
 * auth.c — logging in: USER/PASS (RFC 1939 §7) and AUTH with SASL PLAIN
 * and LOGIN, with an initial response or without (RFC 5034). Passwords
 * are checked by the auth worker (auth_begin), asynchronously: input is
 * paused until the answer, and a session that closes meanwhile cancels the
 * request. A good password is followed by opening the maildrop
 * (maildrop.c) on the thread pool; only then is the session in
 * TRANSACTION.
 *
 * Plaintext logins (every mechanism here is one) are refused on a
 * connection that is neither TLS nor loopback, before anything reaches
 * PAM (RFC 2595 §6, ROBUSTNESS 4): "-ERR [AUTH]"-less, since the
 * credentials were never looked at. Failed logins get "-ERR [AUTH]"
 * (RFC 3206); temporary failures "-ERR [SYS/TEMP]". After [auth]
 * max_failures failed logins the connection is closed; the failure delay
 * comes from the auth client.
 *
 * Neither passwords nor SASL lines are ever logged; copies are wiped.
 */
#include "pop3-private.h"

#include <stdlib.h>
#include <string.h>

/* Longest name USER takes ("user@domain*master"). */
#define USER_MAX (2 * AUTH_NAME_MAX + 2)

bool pop3__plaintext_allowed(const struct pop3_session *s)
{
	return conn_is_secure(s->conn);
}

static bool refuse_plaintext(struct pop3_session *s)
{
	if (pop3__plaintext_allowed(s))
		return false;
	conn_write_str(s->conn, "-ERR Plaintext authentication is not allowed without TLS "
		       "(use STLS first)\r\n");
	return true;
}

void pop3__auth_cancel(struct pop3_session *s)
{
	sasl_free(&s->sasl);
	if (s->auth != NULL)
		auth_request_cancel(s->auth);
	s->auth = NULL;
}

/* --------------------------------------------------- the maildrop opens */

static void open_done(struct conn *c, void *data)
{
	struct pop3_session *s = conn_get_data(c);
	struct pop3_open_job *job = data;

	s->job_running = false;
	switch (job->result) {
	case POP3_OPEN_OK: {
		uint64_t bytes = 0;

		s->md = job->md;
		job->md = NULL;
		for (uint32_t i = 0; i < s->md->count; i++)
			bytes += s->md->msgs[i].vsize;
		log_info("login messages=%u", s->md->count);
		pop3__set_state(s, POP3_STATE_TRANSACTION);
		conn_printf(c, "+OK Logged in, %u messages (%llu octets)\r\n", s->md->count,
			    (unsigned long long)bytes);
		break;
	}
	case POP3_OPEN_IN_USE:
		log_info("login refused: maildrop in use");
		conn_write_str(c, "-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n");
		break;
	case POP3_OPEN_LOGIN_DELAY:
		log_info("login refused: login delay");
		conn_write_str(c, "-ERR [LOGIN-DELAY] Too soon after the last login\r\n");
		break;
	case POP3_OPEN_FAILED:
		log_error("cannot open the maildrop: %s", job->error);
		conn_printf(c, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later (%s)\r\n",
			    conn_session_id(c));
		break;
	}
	if (s->state == POP3_STATE_AUTHORIZATION)
		conn_log_ctx(c)->user[0] = '\0';
	pop3__open_job_free(job);
}

static void logged_in(struct pop3_session *s, const struct auth_user *user)
{
	struct conn *c = s->conn;
	struct log_ctx *ctx = conn_log_ctx(c);
	struct pop3_open_job *job = xcalloc(1, sizeof(*job));
	size_t n = strnlen(user->name, sizeof(ctx->user) - 1);

	memcpy(ctx->user, user->name, n);
	ctx->user[n] = '\0';
	job->user_dir = xstrdup(user->mail_dir);
	job->quota.max_bytes = user->quota_bytes;
	job->quota.max_messages = user->quota_messages;
	job->login_delay_ms = pop3__set.login_delay_ms;
	if (conn_queue_work(c, pop3__open_work, open_done, pop3__open_job_free, job) < 0) {
		pop3__open_job_free(job);
		ctx->user[0] = '\0';
		conn_write_str(c, "-ERR [SYS/TEMP] Server busy, try again later\r\n");
		return;
	}
	s->job_running = true;
}

static void auth_done(const struct auth_reply *reply, void *data)
{
	struct pop3_session *s = data;
	struct conn *c = s->conn;

	s->auth = NULL;
	conn_resume(c);
	switch (reply->result) {
	case AUTH_OK:
		logged_in(s, reply->user);
		return;
	case AUTH_FAILED:
	case AUTH_DISABLED:
		conn_printf(c, "-ERR [AUTH] %s\r\n", reply->message);
		if (++s->auth_failures >= pop3__set.max_failures) {
			conn_write_str(c, "-ERR Too many authentication failures\r\n");
			conn_close(c, "too many authentication failures");
		}
		return;
	case AUTH_TEMPFAIL:
	case AUTH_LIMITED:
		break;
	}
	conn_printf(c, "-ERR [SYS/TEMP] %s\r\n", reply->message);
}

/* Hand credentials to the auth worker; input waits for the answer. */
static void auth_start(struct pop3_session *s, const char *mech, const char *authzid,
		       const char *authcid, const char *password)
{
	s->auth = auth_begin_conn(s->conn, mech, authzid, authcid, password, auth_done, s);
}

/* ------------------------------------------------------------ USER/PASS */

void pop3__cmd_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	const struct pop3_arg *name = &cmd->argv[0];

	if (refuse_plaintext(s))
		return;
	if (name->len > USER_MAX) {
		pop3__bad_command(s, "User name too long");
		return;
	}
	free(s->user);
	s->user = xcalloc(1, name->len + 1);
	memcpy(s->user, name->p, name->len);
	conn_write_str(s->conn, "+OK\r\n");
}

void pop3__cmd_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	char *password;

	if (refuse_plaintext(s))
		return;
	if (s->user == NULL) {
		pop3__bad_command(s, "USER first");
		return;
	}
	/* The password is the rest of the line: it may contain spaces. */
	password = xcalloc(1, cmd->rest.len + 1);
	memcpy(password, cmd->rest.p, cmd->rest.len);
	auth_start(s, "USER", NULL, s->user, password);
	mem_wipe(password, cmd->rest.len);
	free(password);
	free(s->user);
	s->user = NULL;
}

/* ----------------------------------------------------------------- AUTH */

/* One step of an exchange: line NULL starts one without an initial
 * response. */
static void sasl_continue(struct pop3_session *s, const char *line, size_t len)
{
	const char *challenge, *why;
	const char *authzid, *authcid, *password;

	switch (sasl_step(s->sasl, line, len, &challenge, &why)) {
	case SASL_CHALLENGE:
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	case SASL_DONE:
		sasl_credentials(s->sasl, &authzid, &authcid, &password);
		auth_start(s, s->sasl_mech, authzid, authcid, password);
		break;
	case SASL_CANCELLED:
		conn_write_str(s->conn, "-ERR Authentication cancelled\r\n");
		break;
	case SASL_BAD:
		conn_printf(s->conn, "-ERR %s\r\n", why);
		break;
	}
	sasl_free(&s->sasl);
}

void pop3__sasl_input(struct pop3_session *s, const char *line, size_t len)
{
	sasl_continue(s, line, len);
}

void pop3__cmd_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	enum sasl_mech mech;
	char name[32];

	if (cmd->argc == 0) {
		/* The mechanism list of RFC 1734's clients. */
		conn_write_str(s->conn, "+OK\r\n");
		if (pop3__plaintext_allowed(s))
			conn_write_str(s->conn, "PLAIN\r\nLOGIN\r\n");
		conn_write_str(s->conn, ".\r\n");
		return;
	}
	if (cmd->argv[0].len >= sizeof(name)) {
		conn_write_str(s->conn, "-ERR Unsupported authentication mechanism\r\n");
		return;
	}
	memcpy(name, cmd->argv[0].p, cmd->argv[0].len);
	name[cmd->argv[0].len] = '\0';
	if (sasl_mech_parse(name, &mech) < 0) {
		conn_write_str(s->conn, "-ERR Unsupported authentication mechanism\r\n");
		return;
	}
	if (refuse_plaintext(s))
		return;
	s->sasl = sasl_begin(mech);
	s->sasl_mech = sasl_mech_name(mech);
	if (cmd->argc == 2)
		sasl_continue(s, cmd->argv[1].p, cmd->argv[1].len);
	else
		sasl_continue(s, NULL, 0);
}
