/*
 * data.c — the message as it arrives: DATA with dot-unstuffing (RFC 5321
 * §4.5.2), BDAT chunks as they are (RFC 3030), the size limit, and the
 * trace headers tern-lmtpd puts in front of every delivered message.
 *
 * Line ends. Only CRLF "." CRLF ends DATA. A bare LF is a line end inside
 * the message, as Postfix and Dovecot accept it, and a bare CR is kept as
 * data; but neither starts a line for dot-unstuffing or for the end of the
 * data, so "\n.\n", "\r\n.\n" and "\n.\r\n" cannot end a message early and
 * smuggle a second one in (SMTP smuggling, CVE-2023-51764). A line that
 * starts with "." after a CRLF loses that dot whatever follows, as RFC 5321
 * says. The storage layer stores CRLF as LF, as Maildir wants.
 *
 * Size. max_message_size counts the bytes of the message after
 * unstuffing, without the trace headers. Past it, the rest of the message
 * is still read to its end (so the session stays in step with the client)
 * but dropped, and every recipient gets 552 5.3.4.
 *
 * Trace headers, as an MDA adds them: Return-Path with the envelope
 * sender, then Delivered-To and a Received line naming the recipient
 * ("for <...>") only when the message has one recipient: with several, one
 * stored file is shared by all of them (hard links), so its bytes cannot
 * name any one of them (Dovecot's LMTP leaves "for" out then too).
 */
#include "lmtp-private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Append message bytes to the spool, counting them against the limit. */
static void put(struct lmtp_txn *t, const unsigned char *p, size_t n)
{
	if (n == 0 || t->too_big)
		return;
	if (n > t->max_size - t->msg_size) {
		t->too_big = true;
		buf_clear(&t->spool);
		return;
	}
	t->msg_size += n;
	if (buf_append(&t->spool, p, n) < 0) {
		/* The session reads no more than the spool has room for. */
		log_error("bug: LMTP spool overflow");
		abort();
	}
}

int lmtp__data_feed(struct lmtp_txn *t, const unsigned char *in, size_t len, size_t *used_r)
{
	static const unsigned char cr = '\r';
	size_t i = 0, run = 0; /* in[run..i) is still to be copied */

	while (i < len) {
		unsigned char c = in[i];

		switch (t->dot) {
		case LMTP_DOT_TEXT: {
			const unsigned char *p = memchr(in + i, '\r', len - i);

			if (p == NULL) {
				i = len;
				break;
			}
			i = (size_t)(p - in) + 1;
			t->dot = LMTP_DOT_CR;
			break;
		}
		case LMTP_DOT_CR:
			i++;
			t->dot = c == '\n' ? LMTP_DOT_LINE_START : c == '\r' ? LMTP_DOT_CR : LMTP_DOT_TEXT;
			break;
		case LMTP_DOT_LINE_START:
			if (c == '.') {
				/* Dropped: stuffing, or the start of the end. */
				put(t, in + run, i - run);
				run = ++i;
				t->dot = LMTP_DOT_DOT;
			} else {
				t->dot = LMTP_DOT_TEXT;
			}
			break;
		case LMTP_DOT_DOT:
			if (c == '\r') {
				/* Held back: ".\r\n" ends the data. */
				put(t, in + run, i - run);
				run = ++i;
				t->dot = LMTP_DOT_DOT_CR;
			} else {
				t->dot = LMTP_DOT_TEXT;
			}
			break;
		case LMTP_DOT_DOT_CR:
			if (c == '\n') {
				*used_r = i + 1;
				t->dot = LMTP_DOT_LINE_START;
				return 1;
			}
			/* Not the end: the held CR is data. c is looked at again. */
			put(t, &cr, 1);
			t->dot = LMTP_DOT_CR;
			break;
		}
	}
	put(t, in + run, len - run);
	*used_r = len;
	return 0;
}

void lmtp__bdat_feed(struct lmtp_txn *t, const unsigned char *in, size_t len)
{
	put(t, in, len);
}

void lmtp__trace_headers(struct lmtp_txn *t, const char *lhlo_name, const char *remote_ip,
			 bool tls, const char *session_id)
{
	char date[64], from[96];
	time_t now = time(NULL);
	struct tm tm;
	const char *single = t->rcpt_count == 1 ? t->rcpts[0]->address : NULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (strcmp(remote_ip, "unix") == 0)
		snprintf(from, sizeof(from), "local");
	else
		snprintf(from, sizeof(from), "[%s]", remote_ip);
	/* The protocol names of RFC 3848 and RFC 6531. */
	const char *with = t->smtputf8 ? (tls ? "UTF8LMTPS" : "UTF8LMTP") :
		(tls ? "LMTPS" : "LMTP");
	int ret = buf_printf(&t->spool, "Return-Path: <%s>\r\n", t->sender);

	if (ret == 0 && single != NULL)
		ret = buf_printf(&t->spool, "Delivered-To: %s\r\n", single);
	if (ret == 0)
		ret = buf_printf(&t->spool,
				 "Received: from %s (%s)\r\n"
				 "\tby %s (Tern) with %s id %s\r\n"
				 "\t(envelope-from <%s>)%s%s%s; %s\r\n",
				 lhlo_name, from, lmtp__set.hostname, with, session_id, t->sender,
				 single != NULL ? "\r\n\tfor <" : "", single != NULL ? single : "",
				 single != NULL ? ">" : "", date);
	if (ret < 0) {
		/* Addresses and names are bounded by the line limit, and the
		 * spool has room for several lines. */
		log_error("bug: LMTP trace headers do not fit the spool");
		abort();
	}
}
