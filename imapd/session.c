/*
 * session.c — one IMAP session: reading commands, the command table and
 * dispatch, running commands as jobs with chunked output, and the
 * commands that belong to no family (CAPABILITY, NOOP, LOGOUT, STARTTLS,
 * ENABLE, ID).
 *
 *   NOT_AUTH --LOGIN/AUTHENTICATE--> AUTH --SELECT/EXAMINE--> SELECTED
 *   SELECTED --CLOSE/UNSELECT/failed SELECT--> AUTH;  any --LOGOUT--> LOGOUT
 *
 * Input. Bytes from the connection go to s->in and from there to the
 * incremental parser (parser.h), which stops at each complete command;
 * the rest stays in s->in for the next one. One command runs at a time:
 * reading stops while it runs, while a password is checked and while the
 * client does not read its output, so pipelined commands wait in the
 * (bounded) buffers of the connection, not in memory of ours. While
 * AUTHENTICATE waits for a client line, and during IDLE, input is read as
 * lines instead.
 *
 * Errors. BAD replies are counted: after 3 before login or 20 after, the
 * session ends (DESIGN "Network and TLS"). Failed logins are counted
 * apart ([auth] max_failures).
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_BAD_PRELOGIN 3
#define MAX_BAD_LOGGEDIN 20
/* Before login: a literal (a LOGIN password) and the ID command's list. */
#define PRELOGIN_LITERAL_MAX (8 * 1024)
#define PRELOGIN_ARGS_MAX 128
/* Arguments of one command after login, lists and their members counted:
 * far above what clients send (a SEARCH of a few hundred criteria), low
 * enough that a command of thousands of tiny literals is refused early. */
#define ARGS_MAX 8192
/* Memory for one command's strings and non-streamed literals, above its
 * line: a SEARCH with literal strings, a long LIST pattern. */
#define COMMAND_EXTRA (1024 * 1024)

static void cmd_capability(struct imap_cmd *cmd);
static void cmd_noop(struct imap_cmd *cmd);
static void cmd_logout(struct imap_cmd *cmd);
static void cmd_starttls(struct imap_cmd *cmd);
static void cmd_enable(struct imap_cmd *cmd);
static void cmd_id(struct imap_cmd *cmd);

/* The command table (RFC 9051 §6, RFC 3501 §6 and extensions). */
static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", IMAP_IN_ANY, 0, cmd_capability, NULL },
	{ "NOOP", IMAP_IN_ANY, 0, cmd_noop, NULL },
	{ "LOGOUT", IMAP_IN_ANY, 0, cmd_logout, NULL },
	{ "ID", IMAP_IN_ANY, 0, cmd_id, NULL },
	{ "STARTTLS", IMAP_IN_NOT_AUTH, 0, cmd_starttls, NULL },
	{ "LOGIN", IMAP_IN_NOT_AUTH, 0, imap__cmd_login, NULL },
	{ "AUTHENTICATE", IMAP_IN_NOT_AUTH, 0, imap__cmd_authenticate, NULL },
	{ "ENABLE", IMAP_IN_LOGGED_IN, 0, cmd_enable, NULL },
	{ "COMPRESS", IMAP_IN_LOGGED_IN, 0, imap__cmd_compress, NULL },
	{ "SELECT", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_select },
	{ "EXAMINE", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_select },
	{ "CREATE", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_create },
	{ "DELETE", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_delete },
	{ "RENAME", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_rename },
	{ "SUBSCRIBE", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_subscribe },
	{ "UNSUBSCRIBE", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_subscribe },
	{ "LIST", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_list },
	{ "LSUB", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_list },
	{ "STATUS", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_status },
	{ "NAMESPACE", IMAP_IN_LOGGED_IN, 0, imap__cmd_namespace, NULL },
	{ "GETQUOTA", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_getquota },
	{ "GETQUOTAROOT", IMAP_IN_LOGGED_IN, 0, NULL, imap__cmd_getquota },
	{ "SETQUOTA", IMAP_IN_LOGGED_IN, 0, imap__cmd_setquota, NULL },
	{ "APPEND", IMAP_IN_LOGGED_IN, 0, imap__cmd_append, NULL },
	{ "IDLE", IMAP_IN_LOGGED_IN, 0, imap__cmd_idle, NULL },
	{ "CHECK", IMAP_IN_SELECTED, 0, NULL, imap__cmd_check },
	{ "CLOSE", IMAP_IN_SELECTED, 0, NULL, imap__cmd_close },
	{ "UNSELECT", IMAP_IN_SELECTED, 0, NULL, imap__cmd_close },
	{ "EXPUNGE", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_expunge },
	{ "SEARCH", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_search },
	{ "SORT", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_sort },
	{ "THREAD", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_thread },
	{ "FETCH", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_fetch },
	{ "STORE", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_store },
	{ "COPY", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_copy },
	{ "MOVE", IMAP_IN_SELECTED, IMAP_CMD_UID, NULL, imap__cmd_copy },
};

static const char *const state_names[] = {
	[IMAP_STATE_NOT_AUTH] = "not-authenticated",
	[IMAP_STATE_AUTH] = "authenticated",
	[IMAP_STATE_SELECTED] = "selected",
	[IMAP_STATE_LOGOUT] = "logout",
};

static void session_input(struct imap_session *s);
static void session_free(struct imap_session *s);

/* ------------------------------------------------------------- limits */

static void parser_limits(const struct imap_session *s, struct imap_parser_limits *l)
{
	const struct cfg_service *svc = conn_service_cfg(s->conn);

	memset(l, 0, sizeof(*l));
	l->literal_plus = true;
	l->utf8 = s->enabled.utf8;
	if (s->state == IMAP_STATE_NOT_AUTH) {
		l->max_line = (size_t)svc->max_line_length;
		l->max_literal = PRELOGIN_LITERAL_MAX;
		l->max_depth = 1;
		l->max_args = PRELOGIN_ARGS_MAX;
		l->max_command = l->max_line + PRELOGIN_LITERAL_MAX;
		return;
	}
	l->max_line = (size_t)svc->max_line_length_auth;
	l->max_literal = imap__set.append_limit;
	l->max_depth = imap__set.max_nesting;
	l->max_args = ARGS_MAX;
	l->max_command = l->max_line + COMMAND_EXTRA;
	l->literal8 = true;
}

/* Room for bytes read ahead: a line, or a client line during
 * AUTHENTICATE and IDLE (the parser takes everything else as it comes). */
static size_t input_max(const struct imap_session *s)
{
	const struct cfg_service *svc = conn_service_cfg(s->conn);

	return (size_t)(s->state == IMAP_STATE_NOT_AUTH ? svc->max_line_length :
			svc->max_line_length_auth) + 2;
}

void imap__set_state(struct imap_session *s, enum imap_state state)
{
	struct imap_parser_limits l;

	if (s->state == state)
		return;
	log_debug("state %s -> %s", state_names[s->state], state_names[state]);
	bool login = s->state == IMAP_STATE_NOT_AUTH && state != IMAP_STATE_LOGOUT;

	s->state = state;
	if (login) {
		const struct cfg_service *svc = conn_service_cfg(s->conn);

		conn_set_timeout(s->conn, svc->idle_timeout_ms);
		parser_limits(s, &l);
		imap_parser_set_limits(s->parser, &l);
		buf_release(&s->in);
		buf_init(&s->in, input_max(s));
	}
}

/* ------------------------------------------------------------- output */

void imap__bad(struct imap_session *s, const char *tag, const char *text)
{
	unsigned limit = s->state == IMAP_STATE_NOT_AUTH ? MAX_BAD_PRELOGIN : MAX_BAD_LOGGEDIN;

	conn_printf(s->conn, "%s BAD %s\r\n", tag, text);
	if (++s->bad_commands >= limit) {
		conn_write_str(s->conn, "* BYE Too many invalid commands\r\n");
		conn_close(s->conn, "too many bad commands");
		s->state = IMAP_STATE_LOGOUT;
	}
}

static void out_vprintf(struct imap_cmd *cmd, const char *fmt, va_list ap) ATTR_PRINTF(2, 0);

static void out_vprintf(struct imap_cmd *cmd, const char *fmt, va_list ap)
{
	if (buf_vprintf(&cmd->out, fmt, ap) < 0)
		log_error("bug: IMAP output above %d bytes in %s", IMAP_OUT_MAX, cmd->name);
}

void imap__tagged(struct imap_cmd *cmd, const char *status, const char *fmt, ...)
{
	va_list ap;

	buf_printf(&cmd->out, "%s %s ", cmd->tag, status);
	va_start(ap, fmt);
	out_vprintf(cmd, fmt, ap);
	va_end(ap);
	buf_append(&cmd->out, "\r\n", 2);
}

void imap__untagged(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	buf_append(&cmd->out, "* ", 2);
	va_start(ap, fmt);
	out_vprintf(cmd, fmt, ap);
	va_end(ap);
	buf_append(&cmd->out, "\r\n", 2);
}

void imap__tagged_error(struct imap_cmd *cmd, const char *response)
{
	const char *sp = strchr(response, ' ');
	size_t n = sp != NULL ? (size_t)(sp - response) : strlen(response);

	buf_printf(&cmd->out, "%s %.*s %s\r\n", cmd->tag, (int)n, response,
		   sp != NULL ? sp + 1 : "Error");
}

const char *imap__arg_astring(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST || arg->type == IMAP_ARG_NIL)
		return NULL;
	return imap_arg_string(arg);
}

const struct imap_arg *imap__cmd_arg(const struct imap_cmd *cmd, unsigned i)
{
	const struct imap_arg *a = cmd->args;

	while (a != NULL && i-- > 0)
		a = a->next;
	return a;
}

/* -------------------------------------------------------- capabilities */

void imap__capabilities(const struct imap_session *s, enum imap_state state, struct buf *out)
{
	buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE");
	if (state == IMAP_STATE_NOT_AUTH) {
		if (conn_can_starttls(s->conn))
			buf_append_str(out, " STARTTLS");
		if (imap__plaintext_allowed(s))
			buf_append_str(out, " AUTH=PLAIN AUTH=LOGIN");
		else
			buf_append_str(out, " LOGINDISABLED");
		return;
	}
	buf_append_str(out, " NAMESPACE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE"
		       " LIST-EXTENDED LIST-STATUS STATUS=SIZE UIDPLUS MOVE ESEARCH SEARCHRES"
		       " CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"
		       " MULTIAPPEND BINARY SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT"
		       " THREAD=REFERENCES I18NLEVEL=1 WITHIN SAVEDATE OBJECTID UTF8=ACCEPT"
		       " COMPRESS=DEFLATE");
	buf_printf(out, " APPENDLIMIT=%llu", (unsigned long long)imap__set.append_limit);
}

static void cmd_capability(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	if (cmd->argc != 0) {
		imap__bad(s, cmd->tag, "CAPABILITY takes no arguments");
		imap__cmd_end(cmd);
		return;
	}
	buf_append_str(&cmd->out, "* CAPABILITY ");
	imap__capabilities(s, s->state, &cmd->out);
	buf_append_str(&cmd->out, "\r\n");
	imap__tagged(cmd, "OK", "Capability completed");
	conn_write(s->conn, cmd->out.data, cmd->out.len);
	imap__cmd_end(cmd);
}

/* ------------------------------------------------------------ commands */

static void cmd_noop(struct imap_cmd *cmd)
{
	if (cmd->s->state == IMAP_STATE_SELECTED) {
		/* A poll: tell the client what changed. */
		imap__cmd_queue(cmd, imap__cmd_check);
		return;
	}
	conn_printf(cmd->s->conn, "%s OK NOOP completed\r\n", cmd->tag);
	imap__cmd_end(cmd);
}

static void cmd_logout(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	conn_printf(s->conn, "* BYE Logging out\r\n%s OK Logout completed\r\n", cmd->tag);
	imap__set_state(s, IMAP_STATE_LOGOUT);
	conn_close(s->conn, "logout");
	imap__cmd_end(cmd);
}

/* RFC 9051 §6.2.1: what the client pipelined after STARTTLS is dropped
 * (ours in s->in and the parser, the connection's by conn_starttls), so
 * nothing sent in plaintext is run inside TLS. */
static void cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_parser_limits l;

	if (!conn_can_starttls(s->conn)) {
		conn_printf(s->conn, "%s BAD %s\r\n", cmd->tag, conn_is_tls(s->conn) ?
			    "TLS is already active" : "STARTTLS is not available");
		imap__cmd_end(cmd);
		return;
	}
	conn_printf(s->conn, "%s OK Begin TLS negotiation now\r\n", cmd->tag);
	imap__auth_cancel(s);
	imap__cmd_end(cmd);
	buf_clear(&s->in);
	parser_limits(s, &l);
	imap_parser_free(&s->parser);
	const struct imap_parser_stream stream = {
		.want_cb = imap__append_want,
		.data_cb = imap__append_data,
		.ctx = s,
	};
	s->parser = imap_parser_new(&l, &stream);
	conn_starttls(s->conn);
}

/* RFC 5161, RFC 9051 §6.3.1: IMAP4rev2, UTF8=ACCEPT (RFC 6855),
 * CONDSTORE and QRESYNC (RFC 7162, which enables CONDSTORE too). Unknown
 * names are ignored, as the RFC says. */
static void cmd_enable(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_enabled *e = &s->enabled;
	struct buf *out = &cmd->out;

	if (cmd->argc == 0) {
		imap__bad(s, cmd->tag, "ENABLE needs at least one capability");
		imap__cmd_end(cmd);
		return;
	}
	buf_append_str(out, "* ENABLED");
	for (const struct imap_arg *a = cmd->args; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM) {
			buf_clear(out);
			imap__bad(s, cmd->tag, "ENABLE takes capability names");
			imap__cmd_end(cmd);
			return;
		}
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !e->rev2) {
			e->rev2 = true;
			e->utf8 = true;
			buf_append_str(out, " IMAP4rev2");
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 && !(e->utf8 && !e->rev2)) {
			e->utf8 = true;
			buf_append_str(out, " UTF8=ACCEPT");
		} else if (strcasecmp(a->str, "CONDSTORE") == 0 && !e->condstore) {
			e->condstore = true;
			buf_append_str(out, " CONDSTORE");
		} else if (strcasecmp(a->str, "QRESYNC") == 0 && !e->qresync) {
			e->qresync = true;
			e->condstore = true;
			buf_append_str(out, " QRESYNC");
		}
	}
	buf_append_str(out, "\r\n");
	imap__tagged(cmd, "OK", "Enabled");
	conn_write(s->conn, out->data, out->len);
	/* UTF-8 in quoted strings from now on. */
	struct imap_parser_limits l;

	parser_limits(s, &l);
	imap_parser_set_limits(s->parser, &l);
	imap__cmd_end(cmd);
}

/* RFC 2971: the client's identity goes to the log (a few known fields,
 * bounded); ours is the name and version. */
static void cmd_id(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *list = cmd->args;
	char info[256] = "";
	size_t used = 0;

	if (cmd->argc != 1 || (list->type != IMAP_ARG_NIL && list->type != IMAP_ARG_LIST) ||
	    (list->type == IMAP_ARG_LIST && list->count % 2 != 0) ||
	    (list->type == IMAP_ARG_LIST && list->count > 60)) {
		imap__bad(s, cmd->tag, "ID takes NIL or a list of field-value pairs");
		imap__cmd_end(cmd);
		return;
	}
	if (list->type == IMAP_ARG_LIST) {
		for (const struct imap_arg *k = list->child; k != NULL && k->next != NULL;
		     k = k->next->next) {
			const char *key = imap__arg_astring(k), *val = imap__arg_astring(k->next);

			if (key == NULL || val == NULL || used >= sizeof(info) - 1)
				continue;
			if (strcasecmp(key, "name") != 0 && strcasecmp(key, "version") != 0 &&
			    strcasecmp(key, "os") != 0 && strcasecmp(key, "vendor") != 0)
				continue;
			int n = snprintf(info + used, sizeof(info) - used, " %s=\"%.60s\"", key, val);

			for (size_t i = used; i < sizeof(info) && info[i] != '\0'; i++)
				if ((unsigned char)info[i] < 0x20 || info[i] == 0x7f)
					info[i] = '?';
			used += n > 0 ? (size_t)n : 0;
		}
		log_info("client id%s", info);
	}
	conn_printf(s->conn, "* ID (\"name\" \"Tern\" \"version\" \"%s\")\r\n%s OK ID completed\r\n",
		    TERN_VERSION, cmd->tag);
	imap__cmd_end(cmd);
}

/* ----------------------------------------------------------------- jobs */

static void job_work(void *data)
{
	struct imap_cmd *cmd = data;

	cmd->job(cmd);
}

/* Queue cmd->out on the connection in slices of the output buffer size,
 * as far as the connection takes them: true when all of it is queued.
 * So a response of any size never queues more than twice the buffer
 * (the framework drops a client whose queue passes four times it). */
static bool out_flush(struct imap_session *s, struct imap_cmd *cmd)
{
	size_t slice = (size_t)conn_service_cfg(s->conn)->output_buffer_size;

	while (s->out_pos < cmd->out.len) {
		size_t n = cmd->out.len - s->out_pos;

		if (!conn_writable(s->conn))
			return false;
		if (n > slice)
			n = slice;
		conn_write(s->conn, cmd->out.data + s->out_pos, n);
		s->out_pos += n;
	}
	buf_clear(&cmd->out);
	s->out_pos = 0;
	return true;
}

/* After a job, and again each time the output drains: send what the job
 * produced, then run its next chunk, its step callback, or end the
 * command. */
static void job_output(struct imap_session *s, struct imap_cmd *cmd)
{
	struct conn *c = s->conn;

	if (!out_flush(s, cmd) || (cmd->more && !conn_writable(c))) {
		s->out_cmd = cmd;
		conn_pause(c);
		return;
	}
	s->out_cmd = NULL;
	conn_resume(c);
	if (s->out_step != NULL) {
		void (*step)(struct imap_cmd *) = s->out_step;

		s->out_step = NULL;
		step(cmd);
		return;
	}
	if (cmd->more) {
		cmd->more = false;
		imap__cmd_queue(cmd, cmd->job);
		return;
	}
	imap__cmd_end(cmd);
}

static void job_done(struct conn *c, void *data)
{
	struct imap_cmd *cmd = data;
	struct imap_session *s = cmd->s;

	s->job_running = false;
	s->out_step = cmd->step_done;
	cmd->step_done = NULL;
	if (s->out_step == NULL && !cmd->more && cmd->finish != NULL) {
		cmd->finish(cmd);
		cmd->finish = NULL;
	}
	job_output(s, cmd);
}

static void mail_close(struct imap_mail *m)
{
	imap__selected_free(&m->sel);
	/* Kept open for the user's next session (webmail logs in for every
	 * page, phones poll); mail_release's close is for memory instead. */
	store_cache_put(m->user_dir, &m->quota, &m->store);
	free(m->user_dir);
	m->user_dir = NULL;
}

struct close_req {
	uv_work_t req;
	struct imap_session *s;
};

static void close_work(uv_work_t *req)
{
	struct close_req *cr = req->data;

	struct imap_cmd *cmd = cr->s->cmd;

	if (cmd != NULL && cmd->cleanup != NULL)
		cmd->cleanup(cmd);
	imap__append_abort(cr->s);
	mail_close(&cr->s->mail);
}

static void close_after(uv_work_t *req, int status)
{
	struct close_req *cr = req->data;

	session_free(cr->s);
	free(cr);
}

/* Closing a store may block (SQLite checkpoint): on the pool. */
static void session_free_async(struct imap_session *s)
{
	struct close_req *cr;

	if (s->mail.store == NULL && s->append == NULL &&
	    (s->cmd == NULL || s->cmd->cleanup == NULL)) {
		/* Nothing open that could block (an idling session's). */
		mail_close(&s->mail);
		session_free(s);
		return;
	}
	cr = xcalloc(1, sizeof(*cr));
	cr->s = s;
	cr->req.data = cr;
	if (uv_queue_work(imap__loop, &cr->req, close_work, close_after) < 0) {
		close_work(&cr->req);
		close_after(&cr->req, 0);
	}
}

/* The connection closed while the job ran: the session goes now. */
static void job_cancel(void *data)
{
	struct imap_cmd *cmd = data;

	session_free_async(cmd->s);
}

void imap__cmd_queue(struct imap_cmd *cmd, imap_work_fn *work)
{
	struct imap_session *s = cmd->s;

	cmd->job = work;
	if (conn_queue_work(s->conn, job_work, job_done, job_cancel, cmd) < 0) {
		/* Only when closing: one job at a time is the rule here. */
		conn_printf(s->conn, "%s NO [UNAVAILABLE] Server busy\r\n", cmd->tag);
		imap__cmd_end(cmd);
		return;
	}
	s->job_running = true;
}

void imap__cmd_queue_step(struct imap_cmd *cmd, imap_work_fn *work,
			  void (*done)(struct imap_cmd *cmd))
{
	struct imap_session *s = cmd->s;

	cmd->step_done = done;
	cmd->job = work;
	if (conn_queue_work(s->conn, job_work, job_done, job_cancel, cmd) < 0) {
		cmd->step_done = NULL;
		return;
	}
	s->job_running = true;
}

void imap__cmd_end(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	if (cmd->set_state)
		imap__set_state(s, cmd->next_state);
	if (cmd->cleanup != NULL)
		cmd->cleanup(cmd);
	if (s->mail.catch_up_due) {
		s->mail.catch_up_due = false;
		imap__catch_up_start(s->mail.user_dir);
	}
	arena_reset(cmd->a);
	buf_clear(&cmd->out);
	buf_shrink_if_empty(&cmd->out, 4096);
	struct arena *a = cmd->a;
	struct buf out = cmd->out;

	memset(cmd, 0, sizeof(*cmd));
	cmd->a = a;
	cmd->out = out;
	cmd->s = s;
	s->cmd = NULL;
	if (!s->job_running && !s->closed)
		session_input(s);
}

/* ------------------------------------------------------------- dispatch */

static const struct imap_cmd_def *command_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void dispatch(struct imap_session *s, const struct imap_command *pc)
{
	const struct imap_cmd_def *def;
	const struct imap_arg *args = pc->args;
	unsigned argc = pc->argc;
	bool uid = false;

	if (strcasecmp(pc->name, "UID") == 0) {
		if (args == NULL || args->type != IMAP_ARG_ATOM) {
			imap__bad(s, pc->tag, "UID needs a command");
			return;
		}
		def = command_find(args->str);
		if (def == NULL || (def->flags & IMAP_CMD_UID) == 0) {
			imap__bad(s, pc->tag, "Unknown UID command");
			return;
		}
		uid = true;
		args = args->next;
		argc--;
	} else {
		def = command_find(pc->name);
		if (def == NULL) {
			imap__bad(s, pc->tag, "Unknown command");
			return;
		}
		if (def->flags & IMAP_CMD_ONLY_UID) {
			imap__bad(s, pc->tag, "Unknown command");
			return;
		}
	}
	if ((def->states & (1u << s->state)) == 0) {
		imap__bad(s, pc->tag, s->state == IMAP_STATE_NOT_AUTH ? "Log in first" :
			  s->state == IMAP_STATE_AUTH && (def->states & IMAP_IN_SELECTED) ?
			  "No mailbox selected" : "Command not valid in this state");
		return;
	}
	if (s->cmd_mem == NULL) {
		s->cmd_mem = xcalloc(1, sizeof(*s->cmd_mem));
		s->cmd_mem->a = arena_new(0);
		buf_init(&s->cmd_mem->out, IMAP_OUT_MAX);
	}
	struct imap_cmd *cmd = s->cmd_mem;

	cmd->s = s;
	cmd->def = def;
	cmd->tag = pc->tag;
	cmd->name = def->name;
	cmd->uid = uid;
	cmd->args = args;
	cmd->argc = argc;
	s->cmd = cmd;
	log_debug("command %s%s", uid ? "UID " : "", def->name);
	if (def->loop != NULL)
		def->loop(cmd);
	else
		imap__cmd_queue(cmd, def->work);
}

/* ---------------------------------------------------------------- input */

/* Busy: a command, a check or a full output queue; whichever it is calls
 * session_input again when it is over. */
static bool busy(const struct imap_session *s)
{
	if (s->closed || s->state == IMAP_STATE_LOGOUT || s->job_running || s->auth != NULL ||
	    s->waiting_drain || s->out_cmd != NULL)
		return true;
	return s->cmd != NULL && s->sasl == NULL && !s->idling;
}

/* Move what the connection has into s->in: false when nothing came. */
static bool input_fill(struct imap_session *s)
{
	const char *data;
	size_t room = s->in.max > s->in.len ? s->in.max - s->in.len : 0;
	size_t n;

	if (room == 0)
		return false;
	n = conn_read_bytes(s->conn, room, &data);
	if (n == 0)
		return false;
	buf_append(&s->in, data, n);
	return true;
}

/* One client line (AUTHENTICATE, IDLE): 1 with the line (no CRLF), 0 when
 * incomplete, -1 when it is longer than the buffer (then dropped). */
static int take_line(struct imap_session *s, char **line_r, size_t *len_r)
{
	if (s->in.len == 0)
		return 0;
	unsigned char *lf = memchr(s->in.data, '\n', s->in.len);

	if (lf == NULL) {
		if (s->in.len >= s->in.max) {
			buf_clear(&s->in);
			return -1;
		}
		return 0;
	}
	size_t len = (size_t)(lf - s->in.data);

	*line_r = (char *)s->in.data;
	*len_r = len > 0 && s->in.data[len - 1] == '\r' ? len - 1 : len;
	(*line_r)[*len_r] = '\0';
	return 1;
}

static void line_input(struct imap_session *s)
{
	char *line;
	size_t len;

	for (;;) {
		int r = take_line(s, &line, &len);

		if (r == 0 && input_fill(s))
			continue;
		if (r == 0)
			return;
		if (r < 0) {
			line = NULL;
			len = 0;
		}
		size_t used = r > 0 ? (size_t)(line + len - (char *)s->in.data) : 0;

		if (s->sasl != NULL)
			imap__sasl_input(s, line, len);
		else
			imap__idle_input(s, line, len);
		/* Drop the line and its end. */
		if (r > 0) {
			while (used < s->in.len && s->in.data[used] != '\n')
				used++;
			buf_consume(&s->in, used < s->in.len ? used + 1 : s->in.len);
		}
		return;
	}
}

static void parse_error(struct imap_session *s)
{
	const char *tag, *text = imap_parser_error(s->parser, &tag);

	imap__append_abort(s);
	if (imap_parser_drain_left(s->parser) > 0 && strstr(text, "[TOOBIG]") != NULL &&
	    strncmp(text, "NO", 2) == 0) {
		/* A non-synchronising literal above the limit: the client sends
		 * it anyway, so rather than read it all, end the session (RFC
		 * 7888 §4). */
		conn_printf(s->conn, "%s %s\r\n* BYE [TOOBIG] Literal too big\r\n", tag, text);
		conn_close(s->conn, "literal too big");
		s->state = IMAP_STATE_LOGOUT;
		return;
	}
	if (strncmp(text, "BAD", 3) == 0)
		imap__bad(s, tag, text + 4);
	else
		conn_printf(s->conn, "%s %s\r\n", tag, text);
}

static void session_input(struct imap_session *s)
{
	if (s->in_input)
		return;
	s->in_input = true;
	while (!busy(s)) {
		if (s->sasl != NULL || s->idling) {
			size_t before = s->in.len;

			line_input(s);
			if (s->in.len == before && !busy(s) && (s->sasl != NULL || s->idling))
				break; /* waiting for the rest of a line */
			continue;
		}
		if (s->in.len == 0 && !input_fill(s))
			break;
		size_t len = s->in.len, used = 0;

		if (s->append != NULL) {
			size_t room = imap__append_room(s);

			if (room == 0) {
				imap__append_flush(s);
				continue;
			}
			if (len > room)
				len = room;
		}
		int r = imap_parser_feed(s->parser, s->in.data, len, &used);

		buf_consume(&s->in, used);
		switch (r) {
		case IMAP_PARSE_MORE:
			break;
		case IMAP_PARSE_COMMAND:
			dispatch(s, imap_parser_command(s->parser));
			break;
		case IMAP_PARSE_LITERAL:
			imap_parser_accept_literal(s->parser);
			conn_write_str(s->conn, "+ Ready for literal data\r\n");
			break;
		case IMAP_PARSE_ERROR:
			parse_error(s);
			break;
		}
		if (!busy(s) && !conn_writable(s->conn)) {
			/* A client that pipelines without reading: wait. */
			s->waiting_drain = true;
			conn_pause(s->conn);
		}
	}
	if (s->in.len == 0)
		buf_shrink_if_empty(&s->in, 0);
	s->in_input = false;
}

/* ----------------------------------------------------- framework hooks */

static void imap_open(struct conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct imap_parser_limits l;
	const struct imap_parser_stream stream = {
		.want_cb = imap__append_want,
		.data_cb = imap__append_data,
		.ctx = s,
	};
	struct buf greeting;

	s->conn = c;
	s->state = IMAP_STATE_NOT_AUTH;
	conn_set_data(c, s);
	parser_limits(s, &l);
	s->parser = imap_parser_new(&l, &stream);
	buf_init(&s->in, input_max(s));
	buf_init(&greeting, 1024);
	buf_append_str(&greeting, "* OK [CAPABILITY ");
	imap__capabilities(s, s->state, &greeting);
	buf_append_str(&greeting, "] Tern IMAP ready\r\n");
	conn_write(c, greeting.data, greeting.len);
	buf_release(&greeting);
}

static void imap_input(struct conn *c)
{
	struct imap_session *s = conn_get_data(c);

	if (s != NULL)
		session_input(s);
}

static void imap_drain(struct conn *c)
{
	struct imap_session *s = conn_get_data(c);

	if (s == NULL)
		return;
	if (s->out_cmd != NULL) {
		/* A large response continues. */
		job_output(s, s->out_cmd);
		return;
	}
	if (!s->waiting_drain)
		return;
	s->waiting_drain = false;
	conn_resume(c);
	session_input(s);
}

static void imap_notice(struct conn *c, enum conn_notice why)
{
	struct imap_session *s = conn_get_data(c);

	/* Nothing may go into the middle of a response being sent. */
	if (s != NULL && s->out_cmd != NULL)
		return;
	conn_write_str(c, why == CONN_NOTICE_SHUTDOWN ?
		       "* BYE [UNAVAILABLE] Server shutting down\r\n" :
		       "* BYE Disconnected for inactivity\r\n");
}

static void imap_refuse(struct conn *c, enum conn_refusal why)
{
	conn_write_str(c, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n");
}

static void session_free(struct imap_session *s)
{
	imap__login_release(s);
	if (s->cmd_mem != NULL) {
		arena_free(&s->cmd_mem->a);
		buf_release(&s->cmd_mem->out);
		free(s->cmd_mem);
	}
	imap_parser_free(&s->parser);
	buf_release(&s->in);
	free(s->user);
	free(s->sasl_tag);
	free(s);
}

static void imap_close(struct conn *c)
{
	struct imap_session *s = conn_get_data(c);

	if (s == NULL)
		return;
	s->closed = true;
	imap__idle_stop(s);
	imap__auth_cancel(s);
	/* A running job owns mail and the command: its cancel callback frees
	 * the session once it is over. */
	if (s->job_running)
		return;
	session_free_async(s);
}

const struct conn_handler imap__handler = {
	.open_cb = imap_open,
	.input_cb = imap_input,
	.drain_cb = imap_drain,
	.notice_cb = imap_notice,
	.refuse_cb = imap_refuse,
	.close_cb = imap_close,
};
