/*
 * parse.c — a POP3 command line into its verb and arguments (RFC 1939
 * §3, RFC 2449 §3), without any session state, so the fuzz target can
 * drive it alone.
 *
 * A command is a keyword of up to four letters, case-insensitive, then
 * arguments separated by spaces. We are liberal where clients are sloppy,
 * as Dovecot is: runs of spaces and trailing spaces are accepted, and an
 * argument may be longer than RFC 2449's 40 characters (the line limit
 * bounds it). We are strict about what no client sends: control
 * characters (NUL, CR, TAB, ...) anywhere in the line are refused, which
 * also keeps them out of user names and of the log. Bytes above 127 are
 * allowed: RFC 6856 lets UTF-8 into user names and passwords.
 */
#include "pop3-private.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum pop3_verb verb;
} verbs[] = {
	{ "USER", POP3_CMD_USER }, { "PASS", POP3_CMD_PASS }, { "AUTH", POP3_CMD_AUTH },
	{ "APOP", POP3_CMD_APOP }, { "CAPA", POP3_CMD_CAPA }, { "STLS", POP3_CMD_STLS },
	{ "UTF8", POP3_CMD_UTF8 }, { "STAT", POP3_CMD_STAT }, { "LIST", POP3_CMD_LIST },
	{ "RETR", POP3_CMD_RETR }, { "DELE", POP3_CMD_DELE }, { "NOOP", POP3_CMD_NOOP },
	{ "RSET", POP3_CMD_RSET }, { "QUIT", POP3_CMD_QUIT }, { "TOP", POP3_CMD_TOP },
	{ "UIDL", POP3_CMD_UIDL },
};

const char *pop3__verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < N_ELEMENTS(verbs); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "unknown";
}

static bool is_letter(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* 0x7f and everything below a space, TAB included. */
static bool is_control(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

int pop3__parse_command(const char *line, size_t len, struct pop3_command *cmd,
			const char **why_r)
{
	const unsigned char *p = (const unsigned char *)line;
	size_t klen = 0;

	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < len; i++) {
		if (is_control(p[i])) {
			*why_r = "Invalid characters in the command";
			return -1;
		}
	}
	while (klen < len && p[klen] != ' ')
		klen++;
	if (klen == 0 || klen > 4) {
		*why_r = klen == 0 ? "Empty command" : "Unknown command";
		return -1;
	}
	for (size_t i = 0; i < klen; i++) {
		/* Letters, and the digit of UTF8. */
		if (!is_letter(p[i]) && !(p[i] >= '0' && p[i] <= '9')) {
			*why_r = "Unknown command";
			return -1;
		}
	}
	cmd->verb = POP3_CMD_UNKNOWN;
	for (size_t i = 0; i < N_ELEMENTS(verbs); i++) {
		if (strlen(verbs[i].name) == klen && strncasecmp(line, verbs[i].name, klen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (klen == len) {
		cmd->rest.p = line + len;
		return 0;
	}
	/* One space separates the keyword from the rest. */
	cmd->rest.p = line + klen + 1;
	cmd->rest.len = len - klen - 1;

	/* The arguments: runs of spaces separate them, trailing ones end
	 * nothing. */
	size_t i = klen;

	while (i < len) {
		while (i < len && p[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t start = i;

		while (i < len && p[i] != ' ')
			i++;
		if (cmd->argc < POP3_MAX_ARGS) {
			cmd->argv[cmd->argc].p = line + start;
			cmd->argv[cmd->argc].len = i - start;
		}
		cmd->argc++;
		if (cmd->argc > POP3_MAX_ARGS)
			break;
	}
	return 0;
}

int pop3__parse_count(const struct pop3_arg *arg, uint64_t *n_r)
{
	uint64_t n = 0;

	if (arg->len == 0 || arg->len > 20)
		return -1;
	for (size_t i = 0; i < arg->len; i++) {
		unsigned d = (unsigned char)arg->p[i] - '0';

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*n_r = n;
	return 0;
}

int pop3__parse_msgnum(const struct pop3_arg *arg, uint32_t *n_r)
{
	uint64_t n;

	if (pop3__parse_count(arg, &n) < 0 || n == 0 || n > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}
