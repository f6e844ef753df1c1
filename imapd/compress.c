/*
 * compress.c — COMPRESS DEFLATE (RFC 4978), after login. The tagged OK
 * goes out uncompressed; every byte after it, both ways, is raw deflate
 * (the connection does the work: conn_compress_start). Compression sits
 * above TLS, so COMPRESS after STARTTLS compresses and then encrypts;
 * STARTTLS is never offered after login, so the reverse cannot happen.
 *
 * Pipelining. RFC 4978 §3 has the client start compressing after it has
 * received the CRLF of the tagged OK, so nothing may follow the command
 * before that reply (Dovecot's rule too). Bytes that did follow it, in our
 * buffer or the connection's, cannot be read as either plain text or
 * deflate with any certainty, so instead of guessing the session ends:
 * "* BYE" and a tagged BAD, then close, compression never started.
 */
#include "imapd-private.h"

#include <string.h>
#include <strings.h>

/* compress = "COMPRESS" SP algorithm ; algorithm = atom */
void imap__cmd_compress(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *arg = cmd->args;

	if (cmd->argc != 1 || arg->type != IMAP_ARG_ATOM) {
		imap__bad(s, cmd->tag, "COMPRESS takes one mechanism name");
		imap__cmd_end(cmd);
		return;
	}
	if (strcasecmp(arg->str, "DEFLATE") != 0) {
		imap__bad(s, cmd->tag, "Unknown compression mechanism (only DEFLATE)");
		imap__cmd_end(cmd);
		return;
	}
	if (s->compressed) {
		conn_printf(s->conn, "%s NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n",
			    cmd->tag);
		imap__cmd_end(cmd);
		return;
	}
	if (s->in.len > 0 || conn_input_pending(s->conn) > 0) {
		log_info("client sent data after COMPRESS before its reply");
		conn_printf(s->conn, "* BYE Data must not follow COMPRESS before its reply\r\n"
			    "%s BAD COMPRESS was pipelined\r\n", cmd->tag);
		buf_clear(&s->in);
		imap__set_state(s, IMAP_STATE_LOGOUT);
		conn_close(s->conn, "data pipelined after COMPRESS");
		imap__cmd_end(cmd);
		return;
	}
	conn_printf(s->conn, "%s OK DEFLATE active\r\n", cmd->tag);
	if (conn_compress_start(s->conn) < 0) {
		/* The client compresses from now on and we cannot: end it. */
		imap__set_state(s, IMAP_STATE_LOGOUT);
		conn_close(s->conn, "cannot start compression");
		imap__cmd_end(cmd);
		return;
	}
	s->compressed = true;
	imap__cmd_end(cmd);
}
