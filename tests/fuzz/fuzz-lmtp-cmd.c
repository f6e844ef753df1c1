/*
 * fuzz-lmtp-cmd.c — libFuzzer target for tern-lmtpd's command parser
 * (lmtp/parse.c). The input is one command line, any bytes. Checked:
 * - a parse failure always comes with a whole reply: three digits, a
 *   space, an enhanced status code class, and no CR or LF;
 * - a MAIL or RCPT that parses has a path within LMTP_MAX_PATH that parses
 *   again on its own (or is the null path, for MAIL only), with a local
 *   part, and parameters named in upper case;
 * - a BDAT size is the number written.
 * Under ASan this also proves the parser stays inside the line.
 */
#include "lmtp/lmtp-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const char *e)
{
	if (e == NULL || strlen(e) < 10 || !isdigit((unsigned char)e[0]) ||
	    !isdigit((unsigned char)e[1]) || !isdigit((unsigned char)e[2]) || e[3] != ' ' ||
	    (e[4] != '4' && e[4] != '5') || e[5] != '.' || strpbrk(e, "\r\n") != NULL)
		abort();
}

static void check_path(struct arena *a, const struct lmtp_command *cmd)
{
	struct lmtp_address again;

	if (cmd->path == NULL || strlen(cmd->path) > LMTP_MAX_PATH)
		abort();
	if (cmd->path[0] == '\0') {
		if (cmd->verb != LMTP_CMD_MAIL || cmd->addr.local != NULL)
			abort();
	} else {
		if (cmd->addr.local == NULL || lmtp__parse_address(a, cmd->path, &again) < 0 ||
		    strcmp(again.local, cmd->addr.local) != 0 ||
		    (again.domain == NULL) != (cmd->addr.domain == NULL) ||
		    (again.domain != NULL && strcmp(again.domain, cmd->addr.domain) != 0))
			abort();
	}
	if (cmd->param_count > LMTP_MAX_PARAMS)
		abort();
	for (unsigned i = 0; i < cmd->param_count; i++) {
		for (const char *p = cmd->params[i].name; *p != '\0'; p++) {
			if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
				abort();
		}
		if (cmd->params[i].value != NULL && cmd->params[i].value[0] == '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena *a;
	struct lmtp_command cmd;

	if (a == NULL)
		a = arena_new(0);
	arena_reset(a);
	if (lmtp__parse_command(a, (const char *)data, size, &cmd) < 0) {
		check_error(cmd.error);
		return 0;
	}
	switch (cmd.verb) {
	case LMTP_CMD_MAIL:
	case LMTP_CMD_RCPT:
		check_path(a, &cmd);
		break;
	case LMTP_CMD_BDAT: {
		uint64_t n = strtoull(cmd.args, NULL, 10);

		if (n != cmd.chunk_size)
			abort();
		break;
	}
	case LMTP_CMD_UNKNOWN:
		abort(); /* unknown verbs are a parse failure */
	default:
		break;
	}
	return 0;
}
