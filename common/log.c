/*
 * log.c — leveled logging to stderr (journald adds time and unit) or
 * syslog. Every line names the session and user when a session context is
 * set, as key=value fields: "info: session=Xy12 user=bob: message".
 * Identical consecutive lines are throttled: after 10 repeats within one
 * second, further ones are counted and summarised.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "tern";
static enum log_target log_target_cur = LOG_TARGET_STDERR;
static enum log_level log_level_cur = LOG_LEVEL_INFO;
static _Thread_local const struct log_ctx *log_ctx_cur;

static const char *const level_names[] = { "error", "warning", "info", "debug" };
static const int level_syslog[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Throttle state, per thread. */
static _Thread_local char last_line[256];
static _Thread_local unsigned last_repeats;
static _Thread_local time_t last_time;

void log_init(const char *ident, enum log_target target, enum log_level level)
{
	log_ident = ident;
	log_target_cur = target;
	log_level_cur = level;
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum log_level level)
{
	log_level_cur = level;
}

enum log_level log_get_level(void)
{
	return log_level_cur;
}

const struct log_ctx *log_set_ctx(const struct log_ctx *ctx)
{
	const struct log_ctx *prev = log_ctx_cur;

	log_ctx_cur = ctx;
	return prev;
}

/* Replace control characters so that nothing a client sent can forge a
 * log line. */
static void sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

static void emit(enum log_level level, const char *text)
{
	if (log_target_cur == LOG_TARGET_SYSLOG) {
		syslog(level_syslog[level], "%s", text);
		return;
	}
	char line[4200];
	int n = snprintf(line, sizeof(line), "%s[%d]: %s\n", log_ident,
			 (int)getpid(), text);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1, line[n - 1] = '\n';
	/* One write per line keeps lines whole between processes. */
	ssize_t ret = write(STDERR_FILENO, line, (size_t)n);
	(void)ret;
}

static bool throttled(const char *text)
{
	time_t now = time(NULL);

	if (now == last_time && strncmp(text, last_line, sizeof(last_line) - 1) == 0) {
		if (++last_repeats > 10)
			return true;
		return false;
	}
	if (last_repeats > 10) {
		char note[128];

		snprintf(note, sizeof(note), "warning: last message repeated %u more times",
			 last_repeats - 10);
		emit(LOG_LEVEL_WARN, note);
	}
	size_t n = strlen(text);

	if (n > sizeof(last_line) - 1)
		n = sizeof(last_line) - 1;
	memcpy(last_line, text, n);
	last_line[n] = '\0';
	last_repeats = 0;
	last_time = now;
	return false;
}

ATTR_PRINTF(3, 0)
static void log_v(enum log_level level, int err, const char *fmt, va_list ap)
{
	if (level > log_level_cur)
		return;
	int saved_errno = errno;
	char msg[4096];
	char text[4160];
	const struct log_ctx *ctx = log_ctx_cur;
	size_t off = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	sanitize(msg);
	off += (size_t)snprintf(text, sizeof(text), "%s: ", level_names[level]);
	if (ctx != NULL && ctx->session[0] != '\0') {
		off += (size_t)snprintf(text + off, sizeof(text) - off, "session=%s ",
					ctx->session);
		if (ctx->user[0] != '\0' && off < sizeof(text))
			off += (size_t)snprintf(text + off, sizeof(text) - off,
						"user=%s ", ctx->user);
	}
	if (off < sizeof(text)) {
		if (err != 0)
			snprintf(text + off, sizeof(text) - off, "%s: %s", msg, strerror(err));
		else
			snprintf(text + off, sizeof(text) - off, "%s", msg);
	}
	if (!throttled(text))
		emit(level, text);
	errno = saved_errno;
}

#define LOG_FN(name, level)                                  \
	void name(const char *fmt, ...)                      \
	{                                                    \
		va_list ap;                                  \
		va_start(ap, fmt);                           \
		log_v(level, 0, fmt, ap);                    \
		va_end(ap);                                  \
	}
LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void log_error_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_LEVEL_ERROR, err, fmt, ap);
	va_end(ap);
}

void log_warn_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_LEVEL_WARN, err, fmt, ap);
	va_end(ap);
}

void log_new_session_id(char id[16])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[12];

	if (getentropy(raw, sizeof(raw)) != 0) {
		/* getentropy of 12 bytes only fails without getrandom(2). */
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		id[i] = alphabet[raw[i] & 63];
	id[12] = '\0';
}
