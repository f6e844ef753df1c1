/*
 * session.c — one POP3 session: its states, the command table, and the
 * commands that belong to no state in particular (CAPA, STLS, UTF8, NOOP,
 * QUIT).
 *
 *   AUTHORIZATION --USER/PASS or AUTH, maildrop opened and locked-->
 *   TRANSACTION --QUIT--> UPDATE (expunge the DELE'd messages) --> closed
 *
 * QUIT in AUTHORIZATION just closes; a connection that drops in
 * TRANSACTION changes nothing (RFC 1939 §6).
 *
 * Input. Commands are lines (conn_read_line, under max_line_length before
 * login and max_line_length_auth after). Several may arrive in one packet
 * (PIPELINING, RFC 2449): they run in order, and reading stops while a
 * password check, a job or a RETR is in progress, and while the client
 * does not read its output.
 *
 * Errors. Unknown commands, commands in the wrong state, bad arguments and
 * overlong lines are "bad commands": after 3 before login or 20 after, the
 * session ends (DESIGN "Network and TLS"). Failed logins are counted apart
 * ([auth] max_failures).
 */
#include "pop3-private.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BAD_PRELOGIN 3
#define MAX_BAD_LOGGEDIN 20

typedef void cmd_fn(struct pop3_session *s, const struct pop3_command *cmd);

#define IN_AUTH (1u << POP3_STATE_AUTHORIZATION)
#define IN_TRANS (1u << POP3_STATE_TRANSACTION)

static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_utf8(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd);
static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd);

/* The command table: handler, states it is allowed in, and its argument
 * counts (PASS and AUTH check their own). */
static const struct {
	cmd_fn *fn;
	unsigned states;
	unsigned min_args, max_args;
} commands[] = {
	[POP3_CMD_USER] = { pop3__cmd_user, IN_AUTH, 1, 1 },
	[POP3_CMD_PASS] = { pop3__cmd_pass, IN_AUTH, 0, ~0u },
	[POP3_CMD_AUTH] = { pop3__cmd_auth, IN_AUTH, 0, 2 },
	[POP3_CMD_APOP] = { NULL, 0, 0, 0 },
	[POP3_CMD_CAPA] = { cmd_capa, IN_AUTH | IN_TRANS, 0, 0 },
	[POP3_CMD_STLS] = { cmd_stls, IN_AUTH, 0, 0 },
	[POP3_CMD_UTF8] = { cmd_utf8, IN_AUTH, 0, 0 },
	[POP3_CMD_STAT] = { pop3__cmd_stat, IN_TRANS, 0, 0 },
	[POP3_CMD_LIST] = { pop3__cmd_list, IN_TRANS, 0, 1 },
	[POP3_CMD_RETR] = { pop3__cmd_retr, IN_TRANS, 1, 1 },
	[POP3_CMD_DELE] = { pop3__cmd_dele, IN_TRANS, 1, 1 },
	[POP3_CMD_NOOP] = { cmd_noop, IN_TRANS, 0, 0 },
	[POP3_CMD_RSET] = { pop3__cmd_rset, IN_TRANS, 0, 0 },
	[POP3_CMD_QUIT] = { cmd_quit, IN_AUTH | IN_TRANS, 0, 0 },
	[POP3_CMD_TOP] = { pop3__cmd_top, IN_TRANS, 2, 2 },
	[POP3_CMD_UIDL] = { pop3__cmd_uidl, IN_TRANS, 0, 1 },
	[POP3_CMD_UNKNOWN] = { NULL, 0, 0, 0 },
};

static const char *const state_names[] = {
	[POP3_STATE_AUTHORIZATION] = "authorization",
	[POP3_STATE_TRANSACTION] = "transaction",
	[POP3_STATE_UPDATE] = "update",
};

void pop3__set_state(struct pop3_session *s, enum pop3_state state)
{
	log_debug("state %s -> %s", state_names[s->state], state_names[state]);
	s->state = state;
	if (state == POP3_STATE_TRANSACTION) {
		const struct cfg_service *svc = conn_service_cfg(s->conn);

		conn_set_line_max(s->conn, (size_t)svc->max_line_length_auth);
		conn_set_timeout(s->conn, svc->idle_timeout_ms);
	}
}

void pop3__bad_command(struct pop3_session *s, const char *reply)
{
	unsigned limit = s->state == POP3_STATE_AUTHORIZATION ? MAX_BAD_PRELOGIN :
			 MAX_BAD_LOGGEDIN;

	conn_printf(s->conn, "-ERR %s\r\n", reply);
	if (++s->bad_commands >= limit) {
		conn_write_str(s->conn, "-ERR Too many bad commands, closing connection\r\n");
		conn_close(s->conn, "too many bad commands");
	}
}

/* ---------------------------------------------------------- commands */

/* RFC 2449 §6. Login mechanisms only where a plaintext login would be
 * accepted (RFC 2595 §6: not before STLS on a network connection). */
static void cmd_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct conn *c = s->conn;

	conn_write_str(c, "+OK Capability list follows\r\n"
		       "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
		       "EXPIRE NEVER\r\n");
	if (pop3__set.login_delay_ms > 0)
		conn_printf(c, "LOGIN-DELAY %llu\r\n",
			    (unsigned long long)((pop3__set.login_delay_ms + 999) / 1000));
	if (s->state == POP3_STATE_AUTHORIZATION) {
		if (pop3__plaintext_allowed(s))
			conn_write_str(c, "USER\r\nSASL PLAIN LOGIN\r\n");
		if (conn_can_starttls(c))
			conn_write_str(c, "STLS\r\n");
		conn_write_str(c, "UTF8\r\n");
	}
	conn_write_str(c, "IMPLEMENTATION Tern\r\n.\r\n");
}

/* RFC 2595 §4: whatever the client sent after STLS is discarded
 * (conn_starttls), and the session starts over in AUTHORIZATION. */
static void cmd_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!conn_can_starttls(s->conn)) {
		conn_write_str(s->conn, conn_is_tls(s->conn) ?
			       "-ERR TLS is already active\r\n" :
			       "-ERR STLS is not available\r\n");
		return;
	}
	pop3__auth_cancel(s);
	free(s->user);
	s->user = NULL;
	conn_write_str(s->conn, "+OK Begin TLS negotiation\r\n");
	conn_starttls(s->conn);
}

/* RFC 6856 §2. Tern stores and sends messages as they came, so UTF8 mode
 * changes nothing but what the client may send: UTF-8 in user names and
 * passwords, which are accepted either way. */
static void cmd_utf8(struct pop3_session *s, const struct pop3_command *cmd)
{
	conn_write_str(s->conn, "+OK UTF8 enabled\r\n");
}

static void cmd_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	conn_write_str(s->conn, "+OK\r\n");
}

static void cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (s->state == POP3_STATE_TRANSACTION) {
		pop3__update(s);
		return;
	}
	conn_write_str(s->conn, "+OK Logging out\r\n");
	conn_close(s->conn, "quit");
}

static void run_command(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *why;

	if (pop3__parse_command(line, len, &cmd, &why) < 0) {
		pop3__bad_command(s, why);
		return;
	}
	if (commands[cmd.verb].fn == NULL) {
		pop3__bad_command(s, cmd.verb == POP3_CMD_APOP ? "APOP is not supported" :
				  "Unknown command");
		return;
	}
	if ((commands[cmd.verb].states & (1u << s->state)) == 0) {
		pop3__bad_command(s, s->state == POP3_STATE_AUTHORIZATION ?
				  "Not logged in" : "Not allowed after login");
		return;
	}
	if (cmd.argc < commands[cmd.verb].min_args || cmd.argc > commands[cmd.verb].max_args) {
		pop3__bad_command(s, cmd.argc < commands[cmd.verb].min_args ?
				  "Missing argument" : "Too many arguments");
		return;
	}
	log_debug("command %s", pop3__verb_name(cmd.verb));
	commands[cmd.verb].fn(s, &cmd);
}

/* Busy: a check, a job, a response in progress or a full output queue;
 * whichever it is resumes input when it is over. */
static bool busy(const struct pop3_session *s)
{
	return s->auth != NULL || s->job_running || s->retr != NULL || s->listing ||
	       s->state == POP3_STATE_UPDATE || s->waiting_drain;
}

static void session_input(struct pop3_session *s)
{
	struct conn *c = s->conn;
	const char *line;
	size_t len;
	int ret;

	while (!busy(s) && (ret = conn_read_line(c, &line, &len)) != 0) {
		if (ret == CONN_ELINE) {
			if (s->sasl != NULL) {
				sasl_free(&s->sasl);
				conn_write_str(c, "-ERR Authentication line too long\r\n");
			} else {
				pop3__bad_command(s, "Line too long");
			}
			continue;
		}
		if (s->sasl != NULL)
			pop3__sasl_input(s, line, len);
		else
			run_command(s, line, len);
		if (!busy(s) && !conn_writable(c)) {
			/* A client that pipelines without reading: wait. */
			s->waiting_drain = true;
			conn_pause(c);
		}
	}
}

/* ----------------------------------------------------- framework hooks */

static void pop3_open(struct conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->state = POP3_STATE_AUTHORIZATION;
	conn_set_data(c, s);
	conn_write_str(c, "+OK Tern POP3 ready\r\n");
}

static void pop3_input(struct conn *c)
{
	struct pop3_session *s = conn_get_data(c);

	if (s != NULL)
		session_input(s);
}

static void pop3_drain(struct conn *c)
{
	struct pop3_session *s = conn_get_data(c);

	if (s == NULL)
		return;
	if (s->retr != NULL) {
		pop3__retr_drain(s);
	} else if (s->listing) {
		pop3__list_continue(s);
	} else if (s->waiting_drain) {
		s->waiting_drain = false;
		conn_resume(c);
	}
}

static void pop3_notice(struct conn *c, enum conn_notice why)
{
	struct pop3_session *s = conn_get_data(c);

	/* Nothing may go into the middle of a message being sent. */
	if (s != NULL && ((s->retr != NULL && s->retr->started) || s->listing))
		return;
	conn_write_str(c, why == CONN_NOTICE_SHUTDOWN ?
		       "-ERR [SYS/TEMP] Server shutting down\r\n" :
		       "-ERR Disconnected for inactivity\r\n");
}

static void pop3_refuse(struct conn *c, enum conn_refusal why)
{
	conn_write_str(c, "-ERR [SYS/TEMP] Too many connections, try again later\r\n");
}

static void pop3_close(struct conn *c)
{
	struct pop3_session *s = conn_get_data(c);

	if (s == NULL)
		return;
	pop3__auth_cancel(s);
	free(s->user);
	pop3__retr_abandon(s);
	/* A job that owns the maildrop closes it in its cancel callback. */
	if (!s->job_running)
		pop3__maildrop_close_async(&s->md);
	free(s);
}

const struct conn_handler pop3__handler = {
	.open_cb = pop3_open,
	.input_cb = pop3_input,
	.drain_cb = pop3_drain,
	.notice_cb = pop3_notice,
	.refuse_cb = pop3_refuse,
	.close_cb = pop3_close,
};
