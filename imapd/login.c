/*
 * login.c — logging in: LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE with SASL
 * PLAIN and LOGIN, with an initial response (SASL-IR, RFC 4959) or
 * without. Passwords are checked by the auth worker (auth_begin),
 * asynchronously: input waits for the answer, and a session that closes
 * meanwhile cancels the request. A good password is followed by opening
 * the user's store on the thread pool (created on first login); only then
 * is the session authenticated, and the tagged OK carries the capabilities
 * of the new state (RFC 9051 §7.1: [CAPABILITY]).
 *
 * Plaintext logins (every mechanism here is one) are refused on a
 * connection that is neither TLS nor loopback, before anything reaches
 * PAM: LOGINDISABLED is announced there (RFC 9051 §6.2.3). Failed logins
 * get "NO [AUTHENTICATIONFAILED]", disabled accounts "NO
 * [CONTACTADMIN]", temporary failures "NO [UNAVAILABLE]" (RFC 5530).
 * After [auth] max_failures the connection is closed; the failure delay
 * comes from the auth client. A login beyond [imap]
 * max_user_connections_per_ip sessions of one user from one address gets
 * NO [LIMIT] and its connection is closed (DESIGN "Network and TLS").
 *
 * Neither passwords nor SASL lines are ever logged; copies are wiped.
 */
#include "imapd-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool imap__plaintext_allowed(const struct imap_session *s)
{
	return conn_is_secure(s->conn);
}

void imap__auth_cancel(struct imap_session *s)
{
	sasl_free(&s->sasl);
	if (s->auth != NULL)
		auth_request_cancel(s->auth);
	s->auth = NULL;
}

/* ------------------------------------------- sessions per user+address */

/* Logged-in sessions by "user address": a chained hash table on the loop
 * thread, an entry per pair with sessions. */
#define USERIP_BUCKETS 4096

struct userip {
	struct userip *next;
	uint32_t sessions;
	char key[];
};

static struct userip *userips[USERIP_BUCKETS];

static struct userip **userip_slot(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	struct userip **e = &userips[h % USERIP_BUCKETS];

	while (*e != NULL && strcmp((*e)->key, key) != 0)
		e = &(*e)->next;
	return e;
}

/* Count the session against its user and address: false (nothing
 * counted) when that would pass the limit. */
static bool userip_take(struct imap_session *s, const char *user)
{
	char *key = xcalloc(1, strlen(user) + strlen(conn_remote_ip(s->conn)) + 2);

	sprintf(key, "%s %s", user, conn_remote_ip(s->conn));
	struct userip **e = userip_slot(key);
	uint32_t limit = imap__set.max_user_connections_per_ip;

	if (*e != NULL && limit != 0 && (*e)->sessions >= limit) {
		free(key);
		return false;
	}
	if (*e == NULL) {
		*e = xcalloc(1, sizeof(**e) + strlen(key) + 1);
		strcpy((*e)->key, key);
	}
	(*e)->sessions++;
	s->userip = key;
	return true;
}

void imap__login_release(struct imap_session *s)
{
	if (s->userip == NULL)
		return;
	struct userip **e = userip_slot(s->userip);

	if (*e != NULL && --(*e)->sessions == 0) {
		struct userip *gone = *e;

		*e = gone->next;
		free(gone);
	}
	free(s->userip);
	s->userip = NULL;
}

/* ------------------------------------------------------ the store opens */

/* On the pool: the job owns s->mail, whose user_dir and quota are set. */
static void open_work(struct imap_cmd *cmd)
{
	struct imap_mail *m = &cmd->s->mail;
	const struct store_user_options opt = { .create = true, .quota = &m->quota };
	struct store_error *err = arena_alloc(cmd->a, sizeof(*err));

	cmd->priv = err;
	m->store = store_cache_take(m->user_dir, &m->quota);
	if (m->store == NULL && store_user_open(m->user_dir, &opt, &m->store, err) < 0)
		m->store = NULL;
	else
		m->catch_up_due = store_user_pending(m->store) == 1;
}

static void open_finish(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct store_error *err = cmd->priv;

	if (s->mail.store == NULL) {
		imap__login_release(s);
		log_error("cannot open the mail store: %s", err->msg);
		imap__tagged(cmd, "NO", "[UNAVAILABLE] Cannot open the mailbox, try again later (%s)",
			     conn_session_id(s->conn));
		conn_log_ctx(s->conn)->user[0] = '\0';
		free(s->user);
		s->user = NULL;
		free(s->mail.user_dir);
		s->mail.user_dir = NULL;
		return;
	}
	cmd->set_state = true;
	cmd->next_state = IMAP_STATE_AUTH;
	log_info("login");
	/* The capabilities of the authenticated state (RFC 9051 §7.1). */
	buf_printf(&cmd->out, "%s OK [CAPABILITY ", cmd->tag);
	imap__capabilities(s, IMAP_STATE_AUTH, &cmd->out);
	buf_append_str(&cmd->out, "] Logged in\r\n");
}

static void logged_in(struct imap_session *s, const struct auth_user *user)
{
	struct imap_cmd *cmd = s->cmd;
	struct log_ctx *ctx = conn_log_ctx(s->conn);
	size_t n = strnlen(user->name, sizeof(ctx->user) - 1);

	if (!userip_take(s, user->name)) {
		log_info("login refused: user=%s has %u sessions from this address", user->name,
			 imap__set.max_user_connections_per_ip);
		conn_printf(s->conn, "%s NO [LIMIT] Too many sessions of this user from your "
			    "address (%u)\r\n", cmd->tag, imap__set.max_user_connections_per_ip);
		conn_close(s->conn, "too many sessions of the user from the address");
		s->state = IMAP_STATE_LOGOUT;
		imap__cmd_end(cmd);
		return;
	}

	memcpy(ctx->user, user->name, n);
	ctx->user[n] = '\0';
	s->user = xstrdup(user->name);
	s->mail.user_dir = xstrdup(user->mail_dir);
	s->mail.quota.max_bytes = user->quota_bytes;
	s->mail.quota.max_messages = user->quota_messages;
	cmd->finish = open_finish;
	imap__cmd_queue(cmd, open_work);
}

static void auth_done(const struct auth_reply *reply, void *data)
{
	struct imap_session *s = data;
	struct conn *c = s->conn;
	struct imap_cmd *cmd = s->cmd;

	s->auth = NULL;
	conn_resume(c);
	switch (reply->result) {
	case AUTH_OK:
		logged_in(s, reply->user);
		return;
	case AUTH_FAILED:
		conn_printf(c, "%s NO [AUTHENTICATIONFAILED] %s\r\n", cmd->tag, reply->message);
		break;
	case AUTH_DISABLED:
		conn_printf(c, "%s NO [CONTACTADMIN] %s\r\n", cmd->tag, reply->message);
		break;
	case AUTH_TEMPFAIL:
	case AUTH_LIMITED:
		conn_printf(c, "%s NO [UNAVAILABLE] %s\r\n", cmd->tag, reply->message);
		imap__cmd_end(cmd);
		return;
	}
	if (++s->auth_failures >= imap__set.max_failures) {
		conn_write_str(c, "* BYE Too many authentication failures\r\n");
		conn_close(c, "too many authentication failures");
		s->state = IMAP_STATE_LOGOUT;
	}
	imap__cmd_end(cmd);
}

/* Hand credentials to the auth worker; input waits for the answer. */
static void auth_start(struct imap_session *s, const char *mech, const char *authzid,
		       const char *authcid, const char *password)
{
	s->auth = auth_begin_conn(s->conn, mech, authzid, authcid, password, auth_done, s);
}

static bool refuse_plaintext(struct imap_cmd *cmd)
{
	if (imap__plaintext_allowed(cmd->s))
		return false;
	conn_printf(cmd->s->conn, "%s NO [PRIVACYREQUIRED] Plaintext authentication is not "
		    "allowed without TLS (use STARTTLS first)\r\n", cmd->tag);
	imap__cmd_end(cmd);
	return true;
}

/* ---------------------------------------------------------------- LOGIN */

void imap__cmd_login(struct imap_cmd *cmd)
{
	const char *user = imap__arg_astring(imap__cmd_arg(cmd, 0));
	const char *password = imap__arg_astring(imap__cmd_arg(cmd, 1));

	if (cmd->argc != 2 || user == NULL || password == NULL) {
		imap__bad(cmd->s, cmd->tag, "LOGIN takes a user name and a password");
		imap__cmd_end(cmd);
		return;
	}
	if (refuse_plaintext(cmd))
		return;
	auth_start(cmd->s, "LOGIN", NULL, user, password);
	/* The parser's copy is wiped when the command ends (its arena is
	 * reset); wipe it now so it does not linger until then. */
	mem_wipe((char *)password, strlen(password));
}

/* --------------------------------------------------------- AUTHENTICATE */

/* One step of an exchange: line NULL starts one without an initial
 * response. */
static void sasl_continue(struct imap_session *s, const char *line, size_t len)
{
	struct imap_cmd *cmd = s->cmd;
	const char *challenge, *why;
	const char *authzid, *authcid, *password;

	switch (sasl_step(s->sasl, line, len, &challenge, &why)) {
	case SASL_CHALLENGE:
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	case SASL_DONE:
		sasl_credentials(s->sasl, &authzid, &authcid, &password);
		auth_start(s, s->sasl_mech, authzid, authcid, password);
		sasl_free(&s->sasl);
		return;
	case SASL_CANCELLED:
		conn_printf(s->conn, "%s BAD Authentication cancelled\r\n", cmd->tag);
		break;
	case SASL_BAD:
		conn_printf(s->conn, "%s BAD %s\r\n", cmd->tag, why);
		break;
	}
	sasl_free(&s->sasl);
	imap__cmd_end(cmd);
}

void imap__sasl_input(struct imap_session *s, const char *line, size_t len)
{
	if (line == NULL) {
		struct imap_cmd *cmd = s->cmd;

		sasl_free(&s->sasl);
		conn_printf(s->conn, "%s BAD Authentication line too long\r\n", cmd->tag);
		imap__cmd_end(cmd);
		return;
	}
	sasl_continue(s, line, len);
}

void imap__cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *mech_name = imap__arg_astring(imap__cmd_arg(cmd, 0));
	const struct imap_arg *ir = imap__cmd_arg(cmd, 1);
	enum sasl_mech mech;

	if (cmd->argc < 1 || cmd->argc > 2 || mech_name == NULL ||
	    (ir != NULL && ir->type != IMAP_ARG_ATOM)) {
		imap__bad(s, cmd->tag, "AUTHENTICATE takes a mechanism and an initial response");
		imap__cmd_end(cmd);
		return;
	}
	if (sasl_mech_parse(mech_name, &mech) < 0) {
		conn_printf(s->conn, "%s NO Unsupported authentication mechanism\r\n", cmd->tag);
		imap__cmd_end(cmd);
		return;
	}
	if (refuse_plaintext(cmd))
		return;
	s->sasl = sasl_begin(mech);
	s->sasl_mech = sasl_mech_name(mech);
	if (ir != NULL)
		sasl_continue(s, ir->str, strlen(ir->str));
	else
		sasl_continue(s, NULL, 0);
}
