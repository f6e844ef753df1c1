/*
 * imap-client.c — the IMAP client side shared by the imap, imap-bigbox
 * and idle workloads: tagged commands, reading responses (literals are
 * passed over, and the rest of such a response arrives as more pieces of
 * the same untagged response), capabilities, EXISTS, LOGIN and
 * AUTHENTICATE PLAIN, APPEND with LITERAL+ or a synchronising literal.
 *
 * A workload feeds every line to imapc_line() and acts on the event; the
 * reply to its command is IMAPC_TAGGED with ic->status. One command is in
 * flight at a time (IDLE's DONE is sent by the workload).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

#define CMD_MAX 4096

static const struct bench_iov crlf = { "\r\n", 2, true };

void imapc_reset(struct imapc *ic)
{
	memset(ic, 0, sizeof(*ic));
}

void imapc_forget_caps(struct imapc *ic)
{
	ic->caps_known = ic->literal_plus = ic->uidplus = ic->idle = ic->sasl_ir = false;
}

/* "CAPABILITY" arguments: words up to ']' or the end. */
static void parse_caps(struct imapc *ic, const char *s)
{
	imapc_forget_caps(ic);
	ic->caps_known = true;
	while (*s != '\0' && *s != ']') {
		size_t n;

		while (*s == ' ')
			s++;
		n = strcspn(s, " ]");
		if (n == 8 && strncasecmp(s, "LITERAL+", n) == 0)
			ic->literal_plus = true;
		else if (n == 7 && strncasecmp(s, "UIDPLUS", n) == 0)
			ic->uidplus = true;
		else if (n == 4 && strncasecmp(s, "IDLE", n) == 0)
			ic->idle = true;
		else if (n == 7 && strncasecmp(s, "SASL-IR", n) == 0)
			ic->sasl_ir = true;
		s += n;
	}
}

const char *imapc_code(const char *text, const char *name)
{
	size_t n = strlen(name);

	while (*text == ' ')
		text++;
	if (text[0] != '[' || strncasecmp(text + 1, name, n) != 0 || text[1 + n] != ' ')
		return NULL;
	return text + 2 + n;
}

/* Response codes of an OK/NO/BAD text that change what we know. */
static void parse_codes(struct imapc *ic, const char *text)
{
	const char *v;

	if ((v = imapc_code(text, "CAPABILITY")) != NULL)
		parse_caps(ic, v);
	else if ((v = imapc_code(text, "UIDVALIDITY")) != NULL)
		ic->uidvalidity = (uint32_t)strtoul(v, NULL, 10);
}

void imapc_greeting(struct imapc *ic, const char *line)
{
	imapc_reset(ic);
	if (strncasecmp(line, "* OK ", 5) == 0)
		parse_codes(ic, line + 5);
}

static void new_tag(struct imapc *ic)
{
	snprintf(ic->tag, sizeof(ic->tag), "a%u", ++ic->seq);
}

void imapc_send(struct bench_client *cl, struct imapc *ic, const char *fmt, ...)
{
	char cmd[CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		bench_die("IMAP command too long");
	new_tag(ic);
	if (bench_opt.verbose && cl->id == 0)
		fprintf(stderr, "C: %s %.200s\n", ic->tag, cmd);
	bench_sendf(cl, "%s %s\r\n", ic->tag, cmd);
}

void imapc_login(struct bench_client *cl, struct imapc *ic, const char *user,
		 const char *pass, bool plain)
{
	char qu[600], qp[600];

	if (plain) {
		int n = bench_sasl_plain(user, pass, ic->contbuf, sizeof(ic->contbuf) - 2);

		if (n < 0)
			bench_die("user name or password too long");
		if (ic->sasl_ir) {
			imapc_send(cl, ic, "AUTHENTICATE PLAIN %s", ic->contbuf);
			return;
		}
		memcpy(ic->contbuf + n, "\r\n", 2);
		ic->cont[0] = (struct bench_iov){ ic->contbuf, (size_t)n + 2, false };
		ic->ncont = 1;
		imapc_send(cl, ic, "AUTHENTICATE PLAIN");
		return;
	}
	if (bench_imap_quote(user, qu, sizeof(qu)) < 0 ||
	    bench_imap_quote(pass, qp, sizeof(qp)) < 0)
		bench_die("user name or password too long or with CR/LF");
	imapc_send(cl, ic, "LOGIN %s %s", qu, qp);
}

void imapc_append(struct bench_client *cl, struct imapc *ic, const char *mailbox,
		  const struct bench_msg *m)
{
	char line[600];
	size_t size = m->hdr_len + m->body_len;
	struct bench_iov iov[4];
	int n;

	new_tag(ic);
	n = snprintf(line, sizeof(line), "%s APPEND %s {%zu%s}\r\n", ic->tag, mailbox, size,
		     ic->literal_plus ? "+" : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		bench_die("mailbox name too long");
	iov[0] = (struct bench_iov){ line, (size_t)n, false };
	iov[1] = (struct bench_iov){ m->hdr, m->hdr_len, false };
	iov[2] = (struct bench_iov){ m->body, m->body_len, true };
	iov[3] = crlf;
	if (ic->literal_plus) {
		bench_sendv(cl, iov, 4);
		return;
	}
	/* Synchronising: the message goes once the server says "+". */
	memcpy(ic->cont, iov + 1, 3 * sizeof(iov[0]));
	ic->ncont = 3;
	bench_sendv(cl, iov, 1);
}

/* A line ending in "{n}" is followed by n bytes of literal, then the rest
 * of the response as another line. */
static void check_literal(struct bench_client *cl, struct imapc *ic, const char *line, size_t len)
{
	size_t i;

	if (len < 3 || line[len - 1] != '}')
		return;
	i = len - 2;
	while (i > 0 && isdigit((unsigned char)line[i]))
		i--;
	if (line[i] != '{' || i == len - 2)
		return;
	bench_conn_skip(&cl->conn, strtoull(line + i + 1, NULL, 10));
	ic->fragment = true;
}

static void parse_untagged(struct imapc *ic, const char *s)
{
	ic->resp = IMAPC_RESP_OTHER;
	if (isdigit((unsigned char)s[0])) {
		char *end;
		unsigned long n = strtoul(s, &end, 10);

		if (*end != ' ')
			return;
		end++;
		ic->number = (uint32_t)n;
		if (strncasecmp(end, "EXISTS", 6) == 0) {
			ic->exists = (uint32_t)n;
			ic->resp = IMAPC_RESP_EXISTS;
		} else if (strncasecmp(end, "FETCH ", 6) == 0) {
			ic->resp = IMAPC_RESP_FETCH;
		} else if (strncasecmp(end, "EXPUNGE", 7) == 0 && ic->exists > 0) {
			ic->exists--;
		}
	} else if (strncasecmp(s, "SEARCH", 6) == 0 && (s[6] == ' ' || s[6] == '\0')) {
		ic->resp = IMAPC_RESP_SEARCH;
	} else if (strncasecmp(s, "CAPABILITY ", 11) == 0) {
		parse_caps(ic, s + 11);
	} else if (strncasecmp(s, "OK ", 3) == 0) {
		parse_codes(ic, s + 3);
	} else if (strncasecmp(s, "BYE", 3) == 0) {
		ic->resp = IMAPC_RESP_BYE;
	}
}

enum imapc_event imapc_line(struct bench_client *cl, struct imapc *ic, char *line, size_t len)
{
	size_t tl;

	if (ic->fragment) {
		/* The rest of a response after a literal. */
		ic->fragment = false;
		check_literal(cl, ic, line, len);
		return IMAPC_UNTAGGED;
	}
	if (line[0] == '+' && (line[1] == ' ' || line[1] == '\0')) {
		if (ic->ncont == 0)
			return IMAPC_CONT;
		bench_sendv(cl, ic->cont, ic->ncont);
		ic->ncont = 0;
		return IMAPC_NONE;
	}
	if (line[0] == '*' && line[1] == ' ') {
		parse_untagged(ic, line + 2);
		check_literal(cl, ic, line, len);
		return IMAPC_UNTAGGED;
	}
	tl = strlen(ic->tag);
	if (tl == 0 || strncmp(line, ic->tag, tl) != 0 || line[tl] != ' ')
		return IMAPC_GARBAGE;
	line += tl + 1;
	if (strncasecmp(line, "OK", 2) == 0 && (line[2] == ' ' || line[2] == '\0')) {
		ic->status = IMAPC_OK;
		line += 2;
	} else if (strncasecmp(line, "NO", 2) == 0 && (line[2] == ' ' || line[2] == '\0')) {
		ic->status = IMAPC_NO;
		line += 2;
	} else if (strncasecmp(line, "BAD", 3) == 0 && (line[3] == ' ' || line[3] == '\0')) {
		ic->status = IMAPC_BAD;
		line += 3;
	} else {
		return IMAPC_GARBAGE;
	}
	if (*line == ' ')
		line++;
	ic->text = line;
	parse_codes(ic, line);
	ic->tag[0] = '\0';
	ic->ncont = 0;
	return IMAPC_TAGGED;
}

uint32_t imapc_fetch_uid(const char *line)
{
	const char *p = line;

	while ((p = strstr(p, "UID ")) != NULL) {
		if (p > line && (p[-1] == '(' || p[-1] == ' '))
			return (uint32_t)strtoul(p + 4, NULL, 10);
		p += 4;
	}
	return 0;
}
