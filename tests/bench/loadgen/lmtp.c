/*
 * lmtp.c — durable deliveries over LMTP (RFC 2033), as an MTA makes them.
 *
 * Per connection: LHLO once (with --starttls: STARTTLS and LHLO again),
 * then deliveries until the run stops: MAIL FROM, RCPT TO for each of
 * --rcpts recipients, DATA, the message (CRLF, dot-stuffed) and ".", then
 * one reply per accepted recipient. If the server offers PIPELINING, MAIL,
 * the RCPTs and DATA go in one write, as Postfix sends them; otherwise one
 * at a time. A delivery is ok only if every recipient got 250.
 *
 * Recipients: delivery d's recipient r is --rcpt-format with user
 * ((d * rcpts + r) mod --users) + 1, so the users are used in turn.
 * A rejected MAIL, RCPT-less DATA or any reply the protocol does not allow
 * fails the delivery and the connection (the client reconnects); a 4xx or
 * 5xx after the data fails only the delivery.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

enum step {
	L_LHLO,
	L_MAIL,
	L_RCPT,
	L_DATA,
	L_BODY,  /* the replies after "." */
	L_QUIT,
};

struct lmtp_client {
	struct bench_client cl;
	enum step step;
	bool pipelining, tls_done;
	unsigned int rcpt_i, accepted, replies_left;
	bool all_ok;
	uint64_t delivery;   /* global number of the delivery */
	uint64_t seq;        /* this client's messages */
	struct bench_msg msg;
};

static int op_lhlo, op_delivery;
static uint64_t deliveries_begun;
static uint64_t bytes_delivered; /* of counted, successful deliveries */

static const struct bench_iov dot_crlf = { ".\r\n", 3, true };

static int lmtp_init(const char **error_r)
{
	op_lhlo = bench_op_register("lhlo");
	op_delivery = bench_op_register("delivery");
	return bench_msg_init(false, true, error_r);
}

static bool lmtp_session_begin(struct bench_client *cl)
{
	return !bench_stopping() && !bench_top_exhausted();
}

static void rcpt_addr(const struct lmtp_client *c, unsigned int r, char *buf, size_t size)
{
	uint64_t u = (c->delivery * bench_opt.rcpts + r) % bench_opt.users;

	bench_fmt_print(&bench_opt.rcpt_fmt, (unsigned int)u + 1, buf, size);
}

static void send_rcpt(struct lmtp_client *c, unsigned int r)
{
	char addr[300];

	rcpt_addr(c, r, addr, sizeof(addr));
	bench_sendf(&c->cl, "RCPT TO:<%s>\r\n", addr);
}

static void lhlo(struct lmtp_client *c)
{
	c->step = L_LHLO;
	c->pipelining = false;
	bench_sendf(&c->cl, "LHLO tern-bench.example.org\r\n");
}

static void after_tls(struct bench_client *cl)
{
	struct lmtp_client *c = (struct lmtp_client *)cl;

	c->tls_done = true;
	lhlo(c);
}

static void next_delivery(struct lmtp_client *c)
{
	struct bench_client *cl = &c->cl;
	char to[300];

	if (!bench_take_top()) {
		c->step = L_QUIT;
		bench_op_begin(cl, BENCH_OP_UNTIMED, 0);
		bench_sendf(cl, "QUIT\r\n");
		return;
	}
	c->delivery = deliveries_begun++;
	c->rcpt_i = c->accepted = 0;
	c->all_ok = true;
	c->step = L_MAIL;
	rcpt_addr(c, 0, to, sizeof(to));
	bench_msg_next(&c->msg, true, c->seq++, cl->id, to);
	bench_op_begin(cl, op_delivery, 0);
	if (!c->pipelining) {
		bench_sendf(cl, "MAIL FROM:<%s>\r\n", bench_opt.from);
		return;
	}
	/* MAIL, RCPT... and DATA in one write. */
	{
		size_t cap = 64 + strlen(bench_opt.from) + (size_t)bench_opt.rcpts * 320;
		char *buf = bench_xcalloc(1, cap);
		size_t n = (size_t)snprintf(buf, cap, "MAIL FROM:<%s>\r\n", bench_opt.from);
		struct bench_iov iov;

		for (unsigned int r = 0; r < bench_opt.rcpts; r++) {
			char addr[300];

			rcpt_addr(c, r, addr, sizeof(addr));
			n += (size_t)snprintf(buf + n, cap - n, "RCPT TO:<%s>\r\n", addr);
		}
		n += (size_t)snprintf(buf + n, cap - n, "DATA\r\n");
		iov = (struct bench_iov){ buf, n, false };
		bench_sendv(cl, &iov, 1);
		free(buf);
	}
}

static void lmtp_start(struct bench_client *cl)
{
	struct lmtp_client *c = (struct lmtp_client *)cl;

	c->tls_done = false;
	bench_op_begin(cl, op_lhlo, 0);
	lhlo(c);
}

/* A complete reply (its last line) with code. */
static void reply(struct lmtp_client *c, int code, const char *line)
{
	struct bench_client *cl = &c->cl;
	struct bench_iov iov[3];

	switch (c->step) {
	case L_LHLO:
		if (code != 250) {
			bench_client_fail(cl, BENCH_FAIL_LINE, line);
		} else if (bench_opt.tls == BENCH_TLS_STARTTLS && !c->tls_done) {
			bench_starttls(cl, "STARTTLS", "220", after_tls);
		} else {
			bench_op_end(cl, true);
			next_delivery(c);
		}
		break;
	case L_MAIL:
		if (code != 250) {
			bench_client_fail(cl, BENCH_FAIL_LINE, line);
			break;
		}
		c->step = L_RCPT;
		if (!c->pipelining)
			send_rcpt(c, 0);
		break;
	case L_RCPT:
		if (code == 250)
			c->accepted++;
		else
			c->all_ok = false;
		if (++c->rcpt_i < bench_opt.rcpts) {
			if (!c->pipelining)
				send_rcpt(c, c->rcpt_i);
			break;
		}
		c->step = L_DATA;
		if (c->pipelining)
			break;
		if (c->accepted == 0)
			bench_client_fail(cl, BENCH_FAIL_LINE, line);
		else
			bench_sendf(cl, "DATA\r\n");
		break;
	case L_DATA:
		if (code != 354 || c->accepted == 0) {
			bench_client_fail(cl, BENCH_FAIL_LINE, line);
			break;
		}
		c->step = L_BODY;
		c->replies_left = c->accepted;
		iov[0] = (struct bench_iov){ c->msg.hdr, c->msg.hdr_len, false };
		iov[1] = (struct bench_iov){ c->msg.body, c->msg.body_len, true };
		iov[2] = dot_crlf;
		bench_sendv(cl, iov, 3);
		break;
	case L_BODY:
		if (code != 250)
			c->all_ok = false;
		if (--c->replies_left > 0)
			break;
		if (c->all_ok && cl->op_counted)
			bytes_delivered += c->msg.size;
		bench_op_end(cl, c->all_ok);
		next_delivery(c);
		break;
	case L_QUIT:
		bench_session_end(cl, true);
		break;
	}
}

static void lmtp_line(struct bench_client *cl, char *line, size_t len)
{
	struct lmtp_client *c = (struct lmtp_client *)cl;
	int code;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		bench_client_fail(cl, BENCH_FAIL_LINE, line);
		return;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (c->step == L_LHLO && len > 4) {
		if (strcasecmp(line + 4, "PIPELINING") == 0)
			c->pipelining = true;
	}
	if (len > 3 && line[3] == '-')
		return; /* more lines of this reply follow */
	reply(c, code, line);
}

static void lmtp_report(struct bench_json *j)
{
	double s = bench_elapsed_s();
	const struct bench_op_stats *st = bench_op_get(op_delivery);

	bench_json_obj(j, "throughput");
	bench_json_num(j, "msgs_per_s", s > 0 ? (double)st->hist.count / s : 0, 2);
	bench_json_num(j, "mb_per_s", s > 0 ? (double)bytes_delivered / s / 1e6 : 0, 3);
	bench_json_end(j);
	bench_json_u64(j, "bytes_delivered", bytes_delivered);
}

struct bench_workload bench_lmtp = {
	.name = "lmtp",
	.client_size = sizeof(struct lmtp_client),
	.greeting_ok = "220",
	.reconnect = true,
	.init = lmtp_init,
	.session_begin = lmtp_session_begin,
	.start = lmtp_start,
	.line = lmtp_line,
	.report = lmtp_report,
};
