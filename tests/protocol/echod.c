/*
 * echod.c — tern-echod, a tiny line protocol on the connection framework,
 * for the framework's protocol tests and the idle-memory benchmark. It
 * serves the listeners of one tern.conf section (-s imap|pop3|lmtp,
 * default imap) and is not installed.
 *
 *   CAPA          "* CAPABILITY ECHO [STARTTLS]" + OK
 *   STARTTLS      OK, then TLS (pipelined input discarded)
 *   INFO          "* INFO remote= port= tls= secure= session=" + OK
 *   BIG n         n bytes of 'x', CRLF, OK — produced as the socket drains
 *   SLEEP ms      sleeps on the thread pool, then "OK slept"
 *   LOGIN         post-login line limit and idle timeout
 *   QUIT          BYE and close
 *   anything else "ECHO <line>"
 */
#include "common/common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct echo_session {
	uint64_t big_left;   /* bytes of a BIG response still to produce */
	bool big_active;
	bool waiting_drain;  /* input paused until output drains */
};

struct sleep_job {
	unsigned ms;
};

static void echo_open(struct conn *c)
{
	struct echo_session *es = arena_alloc(conn_arena(c), sizeof(*es));

	conn_set_data(c, es);
	conn_write_str(c, "* OK tern-echod ready\r\n");
}

/* Produce the rest of a BIG response while the output queue has room. */
static void big_continue(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);
	static char chunk[16384];

	if (chunk[0] != 'x')
		memset(chunk, 'x', sizeof(chunk));
	while (es->big_left > 0 && conn_writable(c)) {
		size_t n = es->big_left < sizeof(chunk) ? (size_t)es->big_left : sizeof(chunk);

		conn_write(c, chunk, n);
		es->big_left -= n;
	}
	if (es->big_left == 0) {
		conn_write_str(c, "\r\nOK\r\n");
		es->big_active = false;
		conn_resume(c);
	}
}

static void sleep_work(void *data)
{
	struct sleep_job *job = data;
	struct timespec ts = { job->ms / 1000, (long)(job->ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void sleep_done(struct conn *c, void *data)
{
	free(data);
	conn_write_str(c, "OK slept\r\n");
}

static void echo_command(struct conn *c, const char *line, size_t len)
{
	struct echo_session *es = conn_get_data(c);
	const struct cfg_service *svc = conn_service_cfg(c);

	if (len == 4 && strncmp(line, "CAPA", 4) == 0) {
		conn_printf(c, "* CAPABILITY ECHO%s\r\nOK\r\n",
			    conn_can_starttls(c) ? " STARTTLS" : "");
	} else if (len == 8 && strncmp(line, "STARTTLS", 8) == 0) {
		if (!conn_can_starttls(c)) {
			conn_write_str(c, "NO STARTTLS not available\r\n");
			return;
		}
		conn_write_str(c, "OK begin TLS\r\n");
		conn_starttls(c);
	} else if (len == 4 && strncmp(line, "INFO", 4) == 0) {
		conn_printf(c, "* INFO remote=%s port=%d tls=%s secure=%s session=%s\r\nOK\r\n",
			    conn_remote_ip(c), conn_remote_port(c),
			    conn_is_tls(c) ? "yes" : "no", conn_is_secure(c) ? "yes" : "no",
			    conn_session_id(c));
	} else if (len > 4 && strncmp(line, "BIG ", 4) == 0) {
		es->big_left = strtoull(line + 4, NULL, 10);
		es->big_active = true;
		conn_pause(c);
		big_continue(c);
	} else if (len > 6 && strncmp(line, "SLEEP ", 6) == 0) {
		struct sleep_job *job = calloc(1, sizeof(*job));

		job->ms = (unsigned)strtoul(line + 6, NULL, 10);
		if (job->ms > 60000)
			job->ms = 60000;
		if (conn_queue_work(c, sleep_work, sleep_done, free, job) < 0) {
			free(job);
			conn_write_str(c, "NO busy\r\n");
		}
	} else if (len == 5 && strncmp(line, "LOGIN", 5) == 0) {
		conn_set_line_max(c, (size_t)svc->max_line_length_auth);
		conn_set_timeout(c, svc->idle_timeout_ms);
		conn_write_str(c, "OK logged in\r\n");
	} else if (len == 4 && strncmp(line, "QUIT", 4) == 0) {
		conn_write_str(c, "BYE\r\n");
		conn_close(c, "quit");
	} else {
		conn_write_str(c, "ECHO ");
		conn_write(c, line, len);
		conn_write_str(c, "\r\n");
	}
}

static void echo_input(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);
	const char *line;
	size_t len;
	int ret;

	while (!es->big_active && (ret = conn_read_line(c, &line, &len)) != 0) {
		if (ret == CONN_ELINE) {
			conn_write_str(c, "BAD line too long\r\n");
			continue;
		}
		echo_command(c, line, len);
		if (!conn_writable(c) && !es->big_active) {
			/* Let the output drain before reading more. */
			es->waiting_drain = true;
			conn_pause(c);
			break;
		}
	}
}

static void echo_drain(struct conn *c)
{
	struct echo_session *es = conn_get_data(c);

	if (es == NULL)
		return;
	if (es->big_active) {
		big_continue(c);
	} else if (es->waiting_drain) {
		es->waiting_drain = false;
		conn_resume(c);
	}
}

static void echo_notice(struct conn *c, enum conn_notice why)
{
	conn_write_str(c, why == CONN_NOTICE_SHUTDOWN ? "* BYE server shutting down\r\n" :
		       "* BYE idle timeout\r\n");
}

static void echo_refuse(struct conn *c, enum conn_refusal why)
{
	conn_write_str(c, "* BYE [LIMIT] too many connections\r\n");
}

static const struct conn_handler echo_handler = {
	.open_cb = echo_open,
	.input_cb = echo_input,
	.drain_cb = echo_drain,
	.notice_cb = echo_notice,
	.refuse_cb = echo_refuse,
	/* No close_cb: session state lives in the connection's arena. */
};

int main(int argc, char **argv)
{
	struct service_def def = {
		.name = "imap",
		.program = "tern-echod",
		.alpn = "imap",
		.handler = &echo_handler,
	};

	/* "-s name" picks the section; the rest goes to daemon_main. */
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-s") == 0) {
			def.name = argv[i + 1];
			def.alpn = strcmp(def.name, "lmtp") == 0 ? NULL : def.name;
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv));
			argc -= 2;
			break;
		}
	}
	return daemon_main(&def, argc, argv);
}
