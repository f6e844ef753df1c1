/*
 * imap-bigbox.c — IMAP commands on one large mailbox, each timed --repeat
 * times on one connection.
 *
 * After LOGIN (as --user) a first SELECT of --mailbox, timed on its own as
 * "select-first" (the server may build its index then), learns the number
 * of messages. Then each operation of --ops runs --repeat times in a row:
 *
 *   select          SELECT <mailbox>
 *   fetch-flags     FETCH 1:* (UID FLAGS)
 *   fetch-envelope  FETCH 1:10000 ENVELOPE (1:* if fewer)
 *   search-header   UID SEARCH HEADER Subject "<--search-word>"
 *   search-body     UID SEARCH BODY "<--search-word>"
 *   store           STORE 1:1000 +FLAGS (\Flagged), then -FLAGS (one op)
 *
 * then LOGOUT. Operations that need messages are skipped on an empty
 * mailbox. If the connection breaks, the failed repetition counts as an
 * error and a new connection carries on with the next one. With --clients
 * N every client runs the whole sequence at the same time.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum bb_op {
	BB_SELECT,
	BB_FETCH_FLAGS,
	BB_FETCH_ENVELOPE,
	BB_SEARCH_HEADER,
	BB_SEARCH_BODY,
	BB_STORE,
	BB_COUNT,
};

static const char *const bb_names[BB_COUNT] = {
	"select", "fetch-flags", "fetch-envelope", "search-header", "search-body", "store",
};

enum step { B_CONNECT, B_LOGIN, B_SELECT_FIRST, B_OP, B_STORE_UNSET, B_LOGOUT };

#define LIST_MAX 32
#define SETUP_TRIES 3 /* failed connects or logins in a row before giving up */

struct bb_client {
	struct bench_client cl;
	struct imapc ic;
	enum step step;
	unsigned int pos, rep; /* in the list, survives reconnects */
	unsigned int setup_fails;
	bool finished;
};

static enum bb_op list[LIST_MAX];
static unsigned int list_n;
static int op_ids[BB_COUNT];
static int op_login, op_select_first, op_logout;
static char user[256];
static char mailbox_q[600];
static char word_q[300];
static bool warned_empty;
static uint32_t messages; /* in the mailbox at the first SELECT */

static int bb_init(const char **error_r)
{
	static char err[256];
	char *spec = bench_xstrdup(bench_opt.ops);
	char *save = NULL;

	op_login = bench_op_register("login");
	op_select_first = bench_op_register("select-first");
	for (char *item = strtok_r(spec, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		int i;

		for (i = 0; i < BB_COUNT; i++)
			if (strcmp(item, bb_names[i]) == 0)
				break;
		if (i == BB_COUNT || list_n == LIST_MAX) {
			snprintf(err, sizeof(err), "--ops: bad or too many: \"%.64s\" (names: select "
				 "fetch-flags fetch-envelope search-header search-body store)", item);
			free(spec);
			*error_r = err;
			return -1;
		}
		list[list_n++] = (enum bb_op)i;
	}
	free(spec);
	if (list_n == 0) {
		*error_r = "--ops is empty";
		return -1;
	}
	/* 0 is "connect": an operation not registered yet. */
	for (unsigned int i = 0; i < list_n; i++)
		if (op_ids[list[i]] == 0)
			op_ids[list[i]] = bench_op_register(bb_names[list[i]]);
	op_logout = bench_op_register("logout");

	if (bench_opt.user != NULL)
		snprintf(user, sizeof(user), "%s", bench_opt.user);
	else
		bench_user_name(0, user, sizeof(user));
	if (bench_imap_quote(bench_opt.mailbox, mailbox_q, sizeof(mailbox_q)) < 0) {
		*error_r = "--mailbox: too long or holds CR/LF";
		return -1;
	}
	for (const char *p = bench_opt.search_word; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			*error_r = "--search-word: printable ASCII only";
			return -1;
		}
	}
	if (bench_imap_quote(bench_opt.search_word, word_q, sizeof(word_q)) < 0) {
		*error_r = "--search-word: too long";
		return -1;
	}
	return 0;
}

static bool bb_session_begin(struct bench_client *cl)
{
	struct bb_client *c = (struct bb_client *)cl;

	c->step = B_CONNECT;
	return !c->finished;
}

static void bb_greeting(struct bench_client *cl, const char *line)
{
	imapc_greeting(&((struct bb_client *)cl)->ic, line);
}

static void bb_start(struct bench_client *cl)
{
	struct bb_client *c = (struct bb_client *)cl;

	if (bench_opt.tls == BENCH_TLS_STARTTLS)
		imapc_forget_caps(&c->ic);
	c->step = B_LOGIN;
	bench_op_begin(cl, op_login, 0);
	imapc_login(cl, &c->ic, user, bench_opt.password, bench_opt.auth_plain);
}

static void logout(struct bb_client *c)
{
	c->step = B_LOGOUT;
	bench_op_begin(&c->cl, op_logout, 0);
	imapc_send(&c->cl, &c->ic, "LOGOUT");
}

static unsigned int upto(uint32_t n, uint32_t exists)
{
	return exists < n ? exists : n;
}

static void advance(struct bb_client *c)
{
	if (++c->rep >= bench_opt.repeat) {
		c->rep = 0;
		c->pos++;
	}
}

static void run_next(struct bb_client *c)
{
	struct bench_client *cl = &c->cl;
	uint32_t exists = c->ic.exists;
	enum bb_op op;

	while (c->pos < list_n && exists == 0 && list[c->pos] != BB_SELECT &&
	       list[c->pos] != BB_SEARCH_HEADER && list[c->pos] != BB_SEARCH_BODY) {
		if (!warned_empty)
			fprintf(stderr, "tern-bench: the mailbox is empty: %s skipped\n",
				bb_names[list[c->pos]]);
		warned_empty = true;
		c->pos++;
		c->rep = 0;
	}
	if (c->pos >= list_n || bench_stopping()) {
		logout(c);
		return;
	}
	op = list[c->pos];
	c->step = B_OP;
	bench_op_begin(cl, op_ids[op], 0);
	switch (op) {
	case BB_SELECT:
		imapc_send(cl, &c->ic, "SELECT %s", mailbox_q);
		break;
	case BB_FETCH_FLAGS:
		imapc_send(cl, &c->ic, "FETCH 1:* (UID FLAGS)");
		break;
	case BB_FETCH_ENVELOPE:
		imapc_send(cl, &c->ic, "FETCH 1:%u ENVELOPE", upto(10000, exists));
		break;
	case BB_SEARCH_HEADER:
		imapc_send(cl, &c->ic, "UID SEARCH HEADER Subject %s", word_q);
		break;
	case BB_SEARCH_BODY:
		imapc_send(cl, &c->ic, "UID SEARCH BODY %s", word_q);
		break;
	case BB_STORE:
	case BB_COUNT:
		imapc_send(cl, &c->ic, "STORE 1:%u +FLAGS (\\Flagged)", upto(1000, exists));
		break;
	}
}

/* One repetition is over. */
static void op_done(struct bb_client *c, bool ok)
{
	bench_op_end(&c->cl, ok);
	advance(c);
	run_next(c);
}

static void tagged(struct bb_client *c)
{
	struct bench_client *cl = &c->cl;
	bool ok = c->ic.status == IMAPC_OK;

	switch (c->step) {
	case B_LOGIN:
		bench_op_end(cl, ok);
		if (!ok) {
			bench_client_fail(cl, BENCH_FAIL_LINE, "login refused");
			break;
		}
		c->step = B_SELECT_FIRST;
		bench_op_begin(cl, op_select_first, 0);
		imapc_send(cl, &c->ic, "SELECT %s", mailbox_q);
		break;
	case B_SELECT_FIRST:
		bench_op_end(cl, ok);
		if (!ok) {
			bench_client_fail(cl, BENCH_FAIL_LINE, "SELECT refused");
			break;
		}
		c->setup_fails = 0;
		if (messages == 0)
			messages = c->ic.exists;
		run_next(c);
		break;
	case B_OP:
		if (ok && list[c->pos] == BB_STORE) {
			c->step = B_STORE_UNSET;
			imapc_send(cl, &c->ic, "STORE 1:%u -FLAGS (\\Flagged)",
				   upto(1000, c->ic.exists));
			break;
		}
		op_done(c, ok);
		break;
	case B_STORE_UNSET:
		op_done(c, ok);
		break;
	case B_LOGOUT:
		c->finished = true;
		bench_session_end(cl, ok);
		break;
	case B_CONNECT:
		break;
	}
}

static void bb_line(struct bench_client *cl, char *line, size_t len)
{
	struct bb_client *c = (struct bb_client *)cl;

	switch (imapc_line(cl, &c->ic, line, len)) {
	case IMAPC_NONE:
	case IMAPC_UNTAGGED:
		break;
	case IMAPC_TAGGED:
		tagged(c);
		break;
	case IMAPC_CONT:
	case IMAPC_GARBAGE:
		bench_client_fail(cl, BENCH_FAIL_LINE, line);
		break;
	}
}

static void bb_failed(struct bench_client *cl, enum bench_fail kind)
{
	struct bb_client *c = (struct bb_client *)cl;

	/* Carry on after the repetition that failed, on a new connection;
	 * give up if connecting or logging in keeps failing. */
	if (c->step == B_OP || c->step == B_STORE_UNSET)
		advance(c);
	else if (c->step == B_LOGOUT || ++c->setup_fails >= SETUP_TRIES)
		c->finished = true;
}

static void bb_report(struct bench_json *j)
{
	bench_json_obj(j, "throughput");
	bench_json_end(j);
	bench_json_str(j, "mailbox", bench_opt.mailbox);
	bench_json_u64(j, "messages", messages);
	bench_json_u64(j, "repeat", bench_opt.repeat);
}

struct bench_workload bench_imap_bigbox = {
	.name = "imap-bigbox",
	.client_size = sizeof(struct bb_client),
	.greeting_ok = "* OK",
	.starttls_cmd = "S STARTTLS",
	.starttls_ok = "S OK",
	.reconnect = true,
	.init = bb_init,
	.session_begin = bb_session_begin,
	.greeting = bb_greeting,
	.start = bb_start,
	.line = bb_line,
	.failed = bb_failed,
	.report = bb_report,
};
