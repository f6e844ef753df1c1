/*
 * pop3.c — POP3 sessions (RFC 1939) as a mail client runs them.
 *
 * Per session: connect (TLS, or STLS with --starttls), USER and PASS (or
 * AUTH PLAIN with its initial response, --auth-plain), STAT, UIDL, RETR of
 * every message, with --delete DELE of every message, then QUIT. Client i
 * logs in as user (i mod --users) + 1. Throughput: sessions per second,
 * and the message data retrieved (the lines of RETR's responses with their
 * CR LF, dot-stuffing removed) per second.
 *
 * A -ERR to RETR or DELE counts as an error of that command and the session
 * goes on; a refused login, STAT or UIDL, or a broken connection, ends it.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum step {
	P_USER,
	P_PASS,
	P_AUTH,
	P_STAT,
	P_UIDL,
	P_UIDL_LIST,
	P_RETR,
	P_RETR_DATA,
	P_DELE,
	P_QUIT,
};

struct pop3_client {
	struct bench_client cl;
	enum step step;
	unsigned int nmsgs, cur;
	uint64_t bytes;  /* of the message being retrieved */
	char user[256];
	char auth[512];
};

static int op_login, op_stat, op_uidl, op_retr, op_dele, op_quit;
static uint64_t bytes_retrieved; /* by counted RETRs */

static int pop3_init(const char **error_r)
{
	op_login = bench_op_register("login");
	op_stat = bench_op_register("stat");
	op_uidl = bench_op_register("uidl");
	op_retr = bench_op_register("retr");
	op_dele = bench_op_register("dele");
	op_quit = bench_op_register("quit");
	return 0;
}

static bool pop3_session_begin(struct bench_client *cl)
{
	return bench_take_top();
}

static void pop3_start(struct bench_client *cl)
{
	struct pop3_client *c = (struct pop3_client *)cl;

	c->nmsgs = c->cur = 0;
	bench_user_name(cl->id % bench_opt.users, c->user, sizeof(c->user));
	bench_op_begin(cl, op_login, 0);
	if (bench_opt.auth_plain) {
		if (bench_sasl_plain(c->user, bench_opt.password, c->auth, sizeof(c->auth)) < 0)
			bench_die("user name or password too long");
		c->step = P_AUTH;
		bench_sendf(cl, "AUTH PLAIN %s\r\n", c->auth);
	} else {
		c->step = P_USER;
		bench_sendf(cl, "USER %s\r\n", c->user);
	}
}

static void quit(struct pop3_client *c)
{
	c->step = P_QUIT;
	bench_op_begin(&c->cl, op_quit, 0);
	bench_sendf(&c->cl, "QUIT\r\n");
}

static void next_dele(struct pop3_client *c)
{
	if (c->cur > c->nmsgs || bench_stopping()) {
		quit(c);
		return;
	}
	c->step = P_DELE;
	bench_op_begin(&c->cl, op_dele, 0);
	bench_sendf(&c->cl, "DELE %u\r\n", c->cur);
}

static void next_retr(struct pop3_client *c)
{
	if (bench_stopping()) {
		quit(c);
		return;
	}
	if (c->cur > c->nmsgs) {
		c->cur = 1;
		if (bench_opt.delete_msgs)
			next_dele(c);
		else
			quit(c);
		return;
	}
	c->step = P_RETR;
	c->bytes = 0;
	bench_op_begin(&c->cl, op_retr, 0);
	bench_sendf(&c->cl, "RETR %u\r\n", c->cur);
}

static void fail(struct pop3_client *c, const char *line)
{
	bench_client_fail(&c->cl, BENCH_FAIL_LINE, line);
}

static void pop3_line(struct bench_client *cl, char *line, size_t len)
{
	struct pop3_client *c = (struct pop3_client *)cl;
	bool ok, err;

	/* The lines of a multi-line response, up to ".". */
	if (c->step == P_UIDL_LIST || c->step == P_RETR_DATA) {
		if (len == 1 && line[0] == '.') {
			if (c->step == P_UIDL_LIST) {
				bench_op_end(cl, true);
				c->cur = 1;
			} else {
				if (cl->op_counted)
					bytes_retrieved += c->bytes;
				bench_op_end(cl, true);
				c->cur++;
			}
			next_retr(c);
		} else if (c->step == P_RETR_DATA) {
			c->bytes += (line[0] == '.' ? len - 1 : len) + 2;
		}
		return;
	}
	ok = strncmp(line, "+OK", 3) == 0;
	err = strncmp(line, "-ERR", 4) == 0;
	if (!ok && !err) {
		/* AUTH without an initial response: "+ " asks for it. */
		if (c->step == P_AUTH && line[0] == '+') {
			bench_sendf(cl, "%s\r\n", c->auth);
			return;
		}
		fail(c, line);
		return;
	}
	switch (c->step) {
	case P_USER:
		if (!ok) {
			fail(c, line);
			break;
		}
		c->step = P_PASS;
		bench_sendf(cl, "PASS %s\r\n", bench_opt.password);
		break;
	case P_PASS:
	case P_AUTH:
		if (!ok) {
			fail(c, line);
			break;
		}
		bench_op_end(cl, true);
		c->step = P_STAT;
		bench_op_begin(cl, op_stat, 0);
		bench_sendf(cl, "STAT\r\n");
		break;
	case P_STAT:
		if (!ok) {
			fail(c, line);
			break;
		}
		c->nmsgs = (unsigned int)strtoul(line + 3, NULL, 10);
		bench_op_end(cl, true);
		c->step = P_UIDL;
		bench_op_begin(cl, op_uidl, 0);
		bench_sendf(cl, "UIDL\r\n");
		break;
	case P_UIDL:
		if (!ok)
			fail(c, line);
		else
			c->step = P_UIDL_LIST;
		break;
	case P_RETR:
		if (ok) {
			c->step = P_RETR_DATA;
			break;
		}
		bench_op_end(cl, false);
		c->cur++;
		next_retr(c);
		break;
	case P_DELE:
		bench_op_end(cl, ok);
		c->cur++;
		next_dele(c);
		break;
	case P_QUIT:
		bench_session_end(cl, ok);
		break;
	case P_UIDL_LIST:
	case P_RETR_DATA:
		break;
	}
}

static void pop3_report(struct bench_json *j)
{
	double s = bench_elapsed_s();

	bench_json_obj(j, "throughput");
	bench_json_num(j, "sessions_per_s", s > 0 ? (double)bench_sessions() / s : 0, 2);
	bench_json_num(j, "mb_per_s", s > 0 ? (double)bytes_retrieved / s / 1e6 : 0, 3);
	bench_json_end(j);
	bench_json_u64(j, "sessions", bench_sessions());
	bench_json_u64(j, "bytes_retrieved", bytes_retrieved);
}

struct bench_workload bench_pop3 = {
	.name = "pop3",
	.client_size = sizeof(struct pop3_client),
	.greeting_ok = "+OK",
	.starttls_cmd = "STLS",
	.starttls_ok = "+OK",
	.reconnect = true,
	.init = pop3_init,
	.session_begin = pop3_session_begin,
	.start = pop3_start,
	.line = pop3_line,
	.report = pop3_report,
};
