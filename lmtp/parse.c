/*
 * parse.c — one LMTP command line into its verb, path and parameters
 * (RFC 2033 on the grammar of RFC 5321 §4.1, with the parameters of RFC
 * 1870 SIZE, 6152 8BITMIME, 3030 BDAT and BINARYMIME, 6531 SMTPUTF8).
 *
 * The parser only checks syntax; what a command may do in the current state
 * and whether a value is acceptable is the session's business. It works on
 * a copy of the line in the command's arena and fails with the complete
 * reply to send, so the session never echoes client bytes in an error.
 *
 * Leniency, as Postfix and Dovecot allow: verbs and the FROM:/TO: keywords
 * in any case, spaces between "FROM:" and the path, several spaces between
 * parameters. A source route (<@a,@b:user@c>) is accepted and ignored (RFC
 * 5321 §3.3). Strict where it matters: a path must be in angle brackets,
 * NUL bytes are refused anywhere, and a local part is a dot-string or a
 * quoted string (bytes above 127 allowed, for SMTPUTF8).
 */
#include "lmtp-private.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define ERR_SYNTAX "501 5.5.4 Syntax error in parameters"

static const struct {
	const char *name;
	enum lmtp_verb verb;
} verbs[] = {
	{ "LHLO", LMTP_CMD_LHLO },
	{ "HELO", LMTP_CMD_HELO },
	{ "EHLO", LMTP_CMD_HELO },
	{ "MAIL", LMTP_CMD_MAIL },
	{ "RCPT", LMTP_CMD_RCPT },
	{ "DATA", LMTP_CMD_DATA },
	{ "BDAT", LMTP_CMD_BDAT },
	{ "RSET", LMTP_CMD_RSET },
	{ "NOOP", LMTP_CMD_NOOP },
	{ "QUIT", LMTP_CMD_QUIT },
	{ "VRFY", LMTP_CMD_VRFY },
	{ "HELP", LMTP_CMD_HELP },
	{ "STARTTLS", LMTP_CMD_STARTTLS },
};

static int fail(struct lmtp_command *cmd, const char *reply)
{
	cmd->error = reply;
	return -1;
}

/* atext of RFC 5322, and any byte above 127 (SMTPUTF8). */
static bool is_atext(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* ------------------------------------------------------------ addresses */

/* Dot-string = Atom *("." Atom) */
static const char *parse_dot_string(const char *p)
{
	for (;;) {
		const char *start = p;

		while (*p != '\0' && is_atext((unsigned char)*p))
			p++;
		if (p == start)
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, unquoted
 * into out (as long as the input). Returns the position after it. */
static const char *parse_quoted(const char *p, char *out)
{
	p++; /* the opening quote */
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;

		if (c == '\\') {
			c = (unsigned char)p[1];
			if (c < 32 || c > 126)
				return NULL;
			p++;
		} else if (c < 32 || c == 127) {
			return NULL; /* includes the end of the string */
		}
		*out++ = (char)c;
		p++;
	}
	*out = '\0';
	return p + 1;
}

/* Domain = sub-domain *("." sub-domain), or an address literal "[...]".
 * Letters, digits, '-' (and '_', which real MTAs pass), bytes above 127
 * for internationalised names. Returns the position after it. */
static const char *parse_domain(const char *p)
{
	if (*p == '[') {
		p++;
		while (*p != ']') {
			unsigned char c = (unsigned char)*p;

			if (c < 33 || c > 126 || c == '[' || c == '\\')
				return NULL;
			p++;
		}
		return p + 1;
	}
	for (;;) {
		const char *start = p;

		while (isalnum((unsigned char)*p) || *p == '-' || *p == '_' ||
		       (unsigned char)*p >= 0x80)
			p++;
		if (p == start)
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

int lmtp__parse_address(struct arena *a, const char *path, struct lmtp_address *addr_r)
{
	const char *p = path;
	char *local = NULL;

	memset(addr_r, 0, sizeof(*addr_r));
	if (*p == '"') {
		local = arena_alloc(a, strlen(path) + 1);
		p = parse_quoted(p, local);
	} else {
		p = parse_dot_string(p);
		if (p != NULL)
			local = arena_strndup(a, path, (size_t)(p - path));
	}
	if (p == NULL)
		return -1;
	addr_r->local = local;
	if (*p == '@') {
		const char *domain = p + 1;

		p = parse_domain(domain);
		if (p == NULL)
			return -1;
		addr_r->domain = arena_strndup(a, domain, (size_t)(p - domain));
	}
	if (*p != '\0')
		return -1;
	for (p = path; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80)
			addr_r->utf8 = true;
	}
	return 0;
}

/* ---------------------------------------------------------------- paths */

/*
 * "<" [ A-d-l ":" ] Mailbox ">" or "<>" (null_ok). On success *end_r points
 * after the '>' and cmd->path/addr are set.
 */
static int parse_path(struct arena *a, char *p, bool null_ok, struct lmtp_command *cmd,
		      const char *bad_reply, char **end_r)
{
	bool quoted = false;
	char *q;

	if (*p != '<')
		return fail(cmd, bad_reply);
	p++;
	/* The closing '>' outside a quoted local part. */
	for (q = p; *q != '\0' && (quoted || *q != '>'); q++) {
		if (*q == '"')
			quoted = !quoted;
		else if (*q == '\\' && quoted && q[1] != '\0')
			q++;
	}
	if (*q != '>')
		return fail(cmd, bad_reply);
	*q = '\0';
	*end_r = q + 1;
	if (strlen(p) > LMTP_MAX_PATH)
		return fail(cmd, cmd->verb == LMTP_CMD_MAIL ? "501 5.1.7 Sender address too long" :
			    "501 5.1.3 Recipient address too long");
	if (*p == '@') {
		/* A source route: skipped, but it must look like one. */
		char *colon = strchr(p, ':');

		if (colon == NULL)
			return fail(cmd, bad_reply);
		for (char *r = p; r < colon; r++) {
			if (*r == '"' || *r == ' ')
				return fail(cmd, bad_reply);
		}
		p = colon + 1;
	}
	cmd->path = p;
	if (*p == '\0')
		return null_ok ? 0 : fail(cmd, bad_reply);
	if (lmtp__parse_address(a, p, &cmd->addr) < 0)
		return fail(cmd, bad_reply);
	return 0;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value], separated by spaces. */
static int parse_params(char *p, struct lmtp_command *cmd)
{
	while (*p == ' ')
		p++;
	while (*p != '\0') {
		char *name = p, *value = NULL;

		if (!isalnum((unsigned char)*p))
			return fail(cmd, ERR_SYNTAX);
		while (isalnum((unsigned char)*p) || *p == '-') {
			*p = (char)toupper((unsigned char)*p);
			p++;
		}
		if (*p == '=') {
			*p++ = '\0';
			value = p;
			/* esmtp-value: no '=', no space or control; UTF-8 ok */
			while ((unsigned char)*p > 32 && *p != '=' && *p != 127)
				p++;
			if (p == value)
				return fail(cmd, ERR_SYNTAX);
		}
		if (*p != ' ' && *p != '\0')
			return fail(cmd, ERR_SYNTAX);
		if (*p == ' ')
			*p++ = '\0';
		if (cmd->param_count == LMTP_MAX_PARAMS)
			return fail(cmd, "501 5.5.4 Too many parameters");
		for (unsigned i = 0; i < cmd->param_count; i++) {
			if (strcmp(cmd->params[i].name, name) == 0)
				return fail(cmd, "501 5.5.4 Duplicate parameter");
		}
		cmd->params[cmd->param_count].name = name;
		cmd->params[cmd->param_count].value = value;
		cmd->param_count++;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params] */
static int parse_mail_rcpt(struct arena *a, char *args, struct lmtp_command *cmd)
{
	bool mail = cmd->verb == LMTP_CMD_MAIL;
	const char *keyword = mail ? "FROM:" : "TO:";
	size_t klen = strlen(keyword);
	const char *bad = mail ? "501 5.1.7 Bad sender address syntax" :
		"501 5.1.3 Bad recipient address syntax";
	char *end;

	if (strncasecmp(args, keyword, klen) != 0)
		return fail(cmd, mail ? "501 5.5.4 Syntax: MAIL FROM:<address>" :
			    "501 5.5.4 Syntax: RCPT TO:<address>");
	args += klen;
	while (*args == ' ')
		args++;
	if (parse_path(a, args, mail, cmd, bad, &end) < 0)
		return -1;
	if (*end != '\0' && *end != ' ')
		return fail(cmd, bad);
	return parse_params(end, cmd);
}

/* BDAT chunk-size [SP "LAST"] */
static int parse_bdat(char *args, struct lmtp_command *cmd)
{
	uint64_t n = 0;
	char *p = args;

	if (!isdigit((unsigned char)*p))
		return fail(cmd, "501 5.5.4 Syntax: BDAT size [LAST]");
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - d) / 10)
			return fail(cmd, "501 5.5.4 Chunk size out of range");
		n = n * 10 + d;
	}
	cmd->chunk_size = n;
	if (*p == '\0')
		return 0;
	if (*p == ' ' && strcasecmp(p + 1, "LAST") == 0) {
		cmd->last = true;
		return 0;
	}
	return fail(cmd, "501 5.5.4 Syntax: BDAT size [LAST]");
}

int lmtp__parse_command(struct arena *a, const char *line, size_t len, struct lmtp_command *cmd)
{
	char *copy, *args;
	size_t vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = LMTP_CMD_UNKNOWN;
	cmd->args = "";
	if (memchr(line, '\0', len) != NULL)
		return fail(cmd, "500 5.5.2 NUL byte in command");
	copy = arena_strndup(a, line, len);
	vlen = strcspn(copy, " ");
	args = copy + vlen;
	if (*args == ' ')
		*args++ = '\0';
	for (size_t i = 0; i < N_ELEMENTS(verbs); i++) {
		if (strcasecmp(copy, verbs[i].name) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	cmd->args = args;
	switch (cmd->verb) {
	case LMTP_CMD_UNKNOWN:
		return fail(cmd, "500 5.5.1 Unknown command");
	case LMTP_CMD_LHLO:
		/* One name (domain or address literal), printable ASCII. */
		if (*args == '\0' || strlen(args) > LMTP_MAX_HOSTNAME)
			return fail(cmd, "501 5.5.4 Syntax: LHLO hostname");
		for (const char *p = args; *p != '\0'; p++) {
			if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127)
				return fail(cmd, "501 5.5.4 Syntax: LHLO hostname");
		}
		return 0;
	case LMTP_CMD_MAIL:
	case LMTP_CMD_RCPT:
		return parse_mail_rcpt(a, args, cmd);
	case LMTP_CMD_BDAT:
		return parse_bdat(args, cmd);
	case LMTP_CMD_DATA:
	case LMTP_CMD_RSET:
	case LMTP_CMD_QUIT:
	case LMTP_CMD_STARTTLS:
		if (*args != '\0')
			return fail(cmd, "501 5.5.4 No parameters allowed");
		return 0;
	case LMTP_CMD_VRFY:
		if (*args == '\0')
			return fail(cmd, "501 5.5.4 Syntax: VRFY address");
		return 0;
	case LMTP_CMD_HELO:
	case LMTP_CMD_NOOP:
	case LMTP_CMD_HELP:
		return 0;
	}
	return 0;
}
