/*
 * output.c — how ternctl talks: errors, usage and questions on stderr, and
 * the JSON writer behind --json on stdout.
 *
 * The JSON is written as it goes (no document is built in memory), compact,
 * one document per command ended by a newline, so scripts can pipe it to
 * jq or json.loads it. A small stack remembers, per open object or array,
 * whether a comma is due. Strings are escaped as RFC 8259 requires: quotes,
 * backslashes and every control character; valid UTF-8 passes through, and
 * a byte that is not part of valid UTF-8 becomes U+FFFD, so the output is
 * always valid JSON whatever a file name or a user record holds.
 */
#include "ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- errors */

void ctl_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage(const struct ctl_command *cmd)
{
	fprintf(stderr, "usage: ternctl %s%s%s\n", cmd->name, cmd->usage[0] != '\0' ? " " : "",
		cmd->usage);
	fprintf(stderr, "Try 'ternctl %s --help' for more information.\n", cmd->name);
	return EX_USAGE;
}

bool ctl_confirm(const char *question)
{
	char answer[16];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return false;
	answer[strcspn(answer, "\r\n")] = '\0';
	return strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0;
}

/* ------------------------------------------------------------------ JSON */

/* Deeper than any document ternctl writes; beyond it nesting is a bug. */
#define JSON_DEPTH_MAX 16

static struct {
	unsigned depth;
	bool need_comma[JSON_DEPTH_MAX + 1];
} json;

static void json_write_escaped(const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t left = strlen(value);

	putchar('"');
	while (left > 0) {
		unsigned char c = *s;
		uint32_t cp;
		int n;

		switch (c) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\b':
			fputs("\\b", stdout);
			break;
		case '\f':
			fputs("\\f", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (c < 0x20) {
				printf("\\u%04x", c);
				break;
			}
			n = utf8_decode(s, left, &cp);
			if (n < 0) {
				fputs("\\ufffd", stdout);
				break;
			}
			fwrite(s, 1, (size_t)n, stdout);
			s += n;
			left -= (size_t)n;
			continue;
		}
		s++;
		left--;
	}
	putchar('"');
}

/* The separator and key before a value at the current level. */
static void json_value_prefix(const char *key)
{
	if (json.need_comma[json.depth])
		putchar(',');
	json.need_comma[json.depth] = true;
	if (key != NULL) {
		json_write_escaped(key);
		putchar(':');
	}
}

static void json_open(const char *key, char bracket)
{
	json_value_prefix(key);
	putchar(bracket);
	if (json.depth >= JSON_DEPTH_MAX) {
		log_error("JSON nested deeper than %d", JSON_DEPTH_MAX);
		abort();
	}
	json.depth++;
	json.need_comma[json.depth] = false;
}

static void json_close(char bracket)
{
	if (json.depth == 0) {
		log_error("JSON closed more often than opened");
		abort();
	}
	json.depth--;
	putchar(bracket);
}

void ctl_json_begin_object(const char *key)
{
	json_open(key, '{');
}

void ctl_json_end_object(void)
{
	json_close('}');
}

void ctl_json_begin_array(const char *key)
{
	json_open(key, '[');
}

void ctl_json_end_array(void)
{
	json_close(']');
}

void ctl_json_string(const char *key, const char *value)
{
	json_value_prefix(key);
	if (value == NULL)
		fputs("null", stdout);
	else
		json_write_escaped(value);
}

void ctl_json_uint(const char *key, uint64_t value)
{
	json_value_prefix(key);
	printf("%llu", (unsigned long long)value);
}

void ctl_json_int(const char *key, int64_t value)
{
	json_value_prefix(key);
	printf("%lld", (long long)value);
}

void ctl_json_bool(const char *key, bool value)
{
	json_value_prefix(key);
	fputs(value ? "true" : "false", stdout);
}

void ctl_json_finish(void)
{
	putchar('\n');
	json.depth = 0;
	json.need_comma[0] = false;
}
