/*
 * tern-bench-idle — open many connections to a server on loopback, read each
 * greeting, and keep them all open and idle for a while.
 *
 * Used by tests/bench/idle-memory to measure what an idle connection costs
 * the server. One libuv loop, OpenSSL through two memory BIOs per connection
 * (ciphertext from uv_read goes into the read BIO, the write BIO is flushed
 * with uv_write), so nothing ever blocks.
 *
 * Each connection: connect; for --tls the TLS handshake (any certificate is
 * accepted, SNI "localhost"); read the first line (the greeting); for
 * --starttls then send the STARTTLS command (--starttls-cmd), read lines
 * until the positive reply (--starttls-ok; untagged "* ..." lines are
 * skipped, any other line is a refusal) and do the handshake. Then it sits
 * idle: the client keeps reading (and discarding) whatever the server
 * sends, and never writes again.
 *
 * Output on stdout, one line each, machine-readable key=value:
 *   established=N failed=N elapsed_ms=N connect_failed=N tls_failed=N \
 *     eof=N timeout=N refused_line=N
 *       once every connection is established or has failed;
 *   done held=N dropped=N
 *       at the end, after closing all (dropped: closed by the server while
 *       held).
 * Diagnostics go to stderr. Exit status: 0 when every connection was
 * established and none was dropped, 1 otherwise, 2 on a usage or setup error.
 *
 * The run is bounded: --timeout bounds the connect phase (connections not
 * established by then count as "timeout"), --hold the idle phase, and an
 * alarm kills the process if closing does not finish either. SIGTERM or
 * SIGINT end the hold early (close all, print "done", exit).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { MODE_PLAIN, MODE_TLS, MODE_STARTTLS };

enum conn_state {
	ST_CONNECTING,
	ST_HANDSHAKE,      /* TLS handshake in progress */
	ST_GREETING,       /* waiting for the first line */
	ST_STARTTLS_REPLY, /* waiting for the reply to STARTTLS */
	ST_IDLE,           /* established */
	ST_DEAD,           /* failed or dropped, closing */
};

/* Why a connection failed before it was established. */
enum fail_kind { FAIL_CONNECT, FAIL_TLS, FAIL_EOF, FAIL_TIMEOUT, FAIL_LINE, FAIL_COUNT };

static const char *const fail_names[FAIL_COUNT] = {
	"connect_failed", "tls_failed", "eof", "timeout", "refused_line",
};

#define LINE_MAX_LEN 1024

struct client {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	enum conn_state state;
	SSL *ssl;
	BIO *rbio; /* socket -> SSL */
	BIO *wbio; /* SSL -> socket */
	/* Only while waiting for a line; freed once established. */
	char *line;
	size_t line_len;
	bool closing;
};

struct write_req {
	uv_write_t req;
	char data[]; /* freed with the request */
};

static struct {
	const char *host;
	int port;
	unsigned int count;
	unsigned int concurrency;
	enum mode mode;
	double hold_s;
	double timeout_s;
	const char *starttls_cmd;
	const char *starttls_ok;
	const char *alpn;
	bool verbose;
} opt = {
	.host = "127.0.0.1",
	.port = 0,
	.count = 10000,
	.concurrency = 200,
	.mode = MODE_PLAIN,
	.hold_s = 10,
	.timeout_s = 120,
	.starttls_cmd = "a STARTTLS",
	.starttls_ok = NULL,
	.alpn = NULL,
	.verbose = false,
};

static uv_loop_t *loop;
static SSL_CTX *ssl_ctx;
static struct sockaddr_storage server_addr;
static struct client *clients;
static unsigned int n_started, n_inflight, n_established, n_done_setup;
static unsigned int n_failed[FAIL_COUNT];
static unsigned int n_dropped, n_open_handles;
static uint64_t t_start_ms;
static bool setup_reported, stop_starting, finishing;
static uv_timer_t sweep_timer, hold_timer;
static uv_signal_t sig_term, sig_int;
static char starttls_ok_buf[80];

/* One read buffer for every connection: reads are handled synchronously. */
static char read_buf[64 * 1024];

static void start_more(void);
static void finish(void);

static void on_hold_done(uv_timer_t *t)
{
	finish();
}

static void die(const char *msg)
{
	fprintf(stderr, "tern-bench-idle: %s\n", msg);
	exit(2);
}

static void *xmalloc0(size_t n)
{
	void *p = calloc(1, n);
	if (p == NULL)
		die("out of memory");
	return p;
}

static void report_setup(void)
{
	unsigned int failed = 0;

	if (setup_reported)
		return;
	setup_reported = true;
	for (int i = 0; i < FAIL_COUNT; i++)
		failed += n_failed[i];
	printf("established=%u failed=%u elapsed_ms=%" PRIu64, n_established,
	       failed, uv_now(loop) - t_start_ms);
	for (int i = 0; i < FAIL_COUNT; i++)
		printf(" %s=%u", fail_names[i], n_failed[i]);
	printf("\n");
	fflush(stdout);
	uv_timer_stop(&sweep_timer);
	uv_timer_start(&hold_timer, on_hold_done, (uint64_t)(opt.hold_s * 1000), 0);
}

/* Once every connection is closed, the loop ends with these. */
static void close_loop_handles(void)
{
	uv_close((uv_handle_t *)&sweep_timer, NULL);
	uv_close((uv_handle_t *)&hold_timer, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	if (c->ssl != NULL) {
		SSL_free(c->ssl); /* frees both BIOs */
		c->ssl = NULL;
	}
	free(c->line);
	c->line = NULL;
	n_open_handles--;
	if (finishing && n_open_handles == 0)
		close_loop_handles();
}

static void client_close(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* A connection finished its setup, one way or the other. */
static void setup_done(struct client *c)
{
	n_inflight--;
	n_done_setup++;
	free(c->line);
	c->line = NULL;
	c->line_len = 0;
	if (n_done_setup == opt.count)
		report_setup();
	else
		start_more();
}

static void client_fail(struct client *c, enum fail_kind why, const char *detail)
{
	if (c->state == ST_DEAD)
		return;
	if (c->state == ST_IDLE) {
		/* The server closed an established connection. */
		n_dropped++;
		n_established--;
		if (opt.verbose)
			fprintf(stderr, "dropped: %s\n", detail);
	} else {
		n_failed[why]++;
		if (opt.verbose || n_failed[why] <= 3)
			fprintf(stderr, "%s: %s\n", fail_names[why], detail);
		c->state = ST_DEAD;
		setup_done(c);
	}
	c->state = ST_DEAD;
	client_close(c);
}

static void established(struct client *c)
{
	c->state = ST_IDLE;
	n_established++;
	setup_done(c);
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct client *c = req->data;

	free(w);
	if (status < 0 && status != UV_ECANCELED)
		client_fail(c, FAIL_EOF, uv_strerror(status));
}

static int send_raw(struct client *c, const void *data, size_t len)
{
	struct write_req *w = xmalloc0(sizeof(*w) + len);
	uv_buf_t b;
	int r;

	memcpy(w->data, data, len);
	b = uv_buf_init(w->data, (unsigned int)len);
	w->req.data = c;
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (r < 0)
		free(w);
	return r;
}

/* Move whatever TLS produced (handshake records, alerts) to the socket. */
static int flush_tls(struct client *c)
{
	char tmp[16 * 1024];
	int n;

	while ((n = BIO_read(c->wbio, tmp, sizeof(tmp))) > 0) {
		if (send_raw(c, tmp, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

static void tls_error(struct client *c, const char *what)
{
	char msg[256];
	unsigned long e = ERR_get_error();

	snprintf(msg, sizeof(msg), "%s: %s", what,
		 e != 0 ? ERR_reason_error_string(e) : "unknown");
	ERR_clear_error();
	client_fail(c, FAIL_TLS, msg);
}

static int tls_start(struct client *c)
{
	c->ssl = SSL_new(ssl_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
		die("cannot create an SSL object");
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	c->state = ST_HANDSHAKE;
	return 0;
}

/* Drive the handshake: 1 done, 0 needs more, -1 failed (already counted). */
static int tls_handshake(struct client *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (flush_tls(c) < 0) {
		client_fail(c, FAIL_TLS, "write failed during handshake");
		return -1;
	}
	if (r == 1)
		return 1;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		tls_error(c, "handshake");
		return -1;
	}
}

/* Got a full line while setting up. */
static void handle_line(struct client *c, const char *line)
{
	if (opt.verbose && c == &clients[0])
		fprintf(stderr, "line: %s\n", line);
	if (c->state == ST_GREETING) {
		if (opt.mode == MODE_STARTTLS) {
			char cmd[256];
			int n = snprintf(cmd, sizeof(cmd), "%s\r\n", opt.starttls_cmd);
			if (send_raw(c, cmd, (size_t)n) < 0) {
				client_fail(c, FAIL_EOF, "write failed");
				return;
			}
			c->state = ST_STARTTLS_REPLY;
			return;
		}
		established(c);
		return;
	}
	if (c->state == ST_STARTTLS_REPLY) {
		if (strncmp(line, opt.starttls_ok, strlen(opt.starttls_ok)) == 0) {
			tls_start(c); /* handle_plain starts the handshake */
			return;
		}
		/* Untagged ("* ...") lines may come first; any other line
		 * is a refusal. */
		if (line[0] != '*')
			client_fail(c, FAIL_LINE, line);
	}
}

/* Plaintext arrived (after TLS, or without it). */
static void handle_plain(struct client *c, const char *data, size_t len)
{
	if (c->state == ST_IDLE || c->state == ST_DEAD)
		return; /* idle: discard */
	while (len > 0 && (c->state == ST_GREETING || c->state == ST_STARTTLS_REPLY)) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl != NULL ? (size_t)(nl - data) + 1 : len;

		if (c->line == NULL)
			c->line = xmalloc0(LINE_MAX_LEN + 1);
		if (c->line_len + take > LINE_MAX_LEN) {
			client_fail(c, FAIL_LINE, "line too long");
			return;
		}
		memcpy(c->line + c->line_len, data, take);
		c->line_len += take;
		data += take;
		len -= take;
		if (nl == NULL)
			break;
		c->line[c->line_len] = '\0';
		while (c->line_len > 0 && (c->line[c->line_len - 1] == '\n' ||
					   c->line[c->line_len - 1] == '\r'))
			c->line[--c->line_len] = '\0';
		c->line_len = 0;
		handle_line(c, c->line);
		if (c->state == ST_HANDSHAKE) {
			/* After the STARTTLS reply: the server must wait for
			 * our ClientHello, so any more plaintext is a bug. */
			if (len > 0)
				client_fail(c, FAIL_LINE, "data after STARTTLS reply");
			else
				tls_handshake(c);
			return;
		}
	}
}

static void handle_tls(struct client *c, const char *data, size_t len)
{
	/* The BIO copies the data, so read_buf is free for SSL_read below. */
	if (BIO_write(c->rbio, data, (int)len) != (int)len)
		die("BIO_write failed");
	if (c->state == ST_HANDSHAKE) {
		int r = tls_handshake(c);
		if (r <= 0)
			return;
		if (opt.mode == MODE_STARTTLS) {
			established(c); /* no second greeting after STARTTLS */
		} else {
			c->state = ST_GREETING;
		}
	}
	for (;;) {
		int n = SSL_read(c->ssl, read_buf, sizeof(read_buf));
		if (n > 0) {
			handle_plain(c, read_buf, (size_t)n);
			if (c->state == ST_DEAD)
				return;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			flush_tls(c); /* e.g. key update replies */
			return;
		case SSL_ERROR_ZERO_RETURN:
			client_fail(c, FAIL_EOF, "TLS close_notify");
			return;
		default:
			tls_error(c, "read");
			return;
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = read_buf;
	buf->len = sizeof(read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;

	if (nread == 0)
		return;
	if (nread < 0) {
		client_fail(c, FAIL_EOF, nread == UV_EOF ? "connection closed by server"
							   : uv_strerror((int)nread));
		return;
	}
	if (c->ssl != NULL && c->state != ST_STARTTLS_REPLY) {
		handle_tls(c, buf->base, (size_t)nread);
	} else {
		handle_plain(c, buf->base, (size_t)nread);
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct client *c = req->data;
	int r;

	if (status < 0) {
		if (status == UV_ECANCELED)
			return;
		client_fail(c, FAIL_CONNECT, uv_strerror(status));
		return;
	}
	if (c->state == ST_DEAD)
		return;
	r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (r < 0) {
		client_fail(c, FAIL_CONNECT, uv_strerror(r));
		return;
	}
	if (opt.mode == MODE_TLS) {
		tls_start(c);
		tls_handshake(c);
	} else {
		c->state = ST_GREETING;
	}
}

static void start_one(struct client *c)
{
	int r;

	c->tcp.data = c;
	c->connect_req.data = c;
	c->state = ST_CONNECTING;
	n_started++;
	n_inflight++;
	r = uv_tcp_init(loop, &c->tcp);
	if (r < 0) {
		fprintf(stderr, "uv_tcp_init: %s\n", uv_strerror(r));
		n_failed[FAIL_CONNECT]++;
		c->state = ST_DEAD;
		c->closing = true; /* no handle to close */
		setup_done(c);
		return;
	}
	n_open_handles++;
	uv_tcp_nodelay(&c->tcp, 1);
	r = uv_tcp_connect(&c->connect_req, &c->tcp,
			   (const struct sockaddr *)&server_addr, on_connect);
	if (r < 0)
		client_fail(c, FAIL_CONNECT, uv_strerror(r));
}

static void start_more(void)
{
	static bool in_start_more;

	/* setup_done() can be reached from inside start_one() on an
	 * immediate failure: let the outer loop do the starting. */
	if (in_start_more || stop_starting || finishing)
		return;
	in_start_more = true;
	while (n_started < opt.count && n_inflight < opt.concurrency)
		start_one(&clients[n_started]);
	in_start_more = false;
}

/* Once a second: connections that have not finished setup in time. */
static void on_sweep(uv_timer_t *t)
{
	uint64_t now = uv_now(loop);
	uint64_t limit = (uint64_t)(opt.timeout_s * 1000);

	if (now - t_start_ms < limit)
		return;
	stop_starting = true;
	for (unsigned int i = 0; i < n_started; i++) {
		struct client *c = &clients[i];
		if (c->state != ST_IDLE && c->state != ST_DEAD)
			client_fail(c, FAIL_TIMEOUT, "not established in time");
	}
	/* Never started ones count as timed out too (their handles were
	 * never initialised: finish() only closes the first n_started). */
	n_failed[FAIL_TIMEOUT] += opt.count - n_started;
	n_done_setup += opt.count - n_started;
	report_setup();
}

static void finish(void)
{
	unsigned int held = n_established;

	if (finishing)
		return;
	finishing = true;
	if (!setup_reported)
		report_setup();
	for (unsigned int i = 0; i < n_started; i++) {
		struct client *c = &clients[i];
		if (!c->closing)
			client_close(c);
	}
	printf("done held=%u dropped=%u\n", held, n_dropped);
	fflush(stdout);
	if (n_open_handles == 0)
		close_loop_handles();
}

static void on_signal(uv_signal_t *s, int signum)
{
	finish();
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit failed");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit failed");
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)opt.count + 32) {
		fprintf(stderr,
			"tern-bench-idle: RLIMIT_NOFILE hard limit %llu is too low for "
			"%u connections (ulimit -Hn)\n",
			(unsigned long long)rl.rlim_max, opt.count);
		exit(2);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tern-bench-idle -p PORT [options]\n"
		"  -H, --host ADDR         127.0.0.1 (default) or ::1; nothing else\n"
		"  -p, --port PORT         server port (required)\n"
		"  -n, --count N           connections to open (default 10000)\n"
		"  -c, --concurrency N     connects in flight at once (default 200)\n"
		"      --tls               implicit TLS\n"
		"      --starttls          plain, then STARTTLS after the greeting\n"
		"      --plain             no TLS (default)\n"
		"      --starttls-cmd CMD  command to send (default \"a STARTTLS\")\n"
		"      --starttls-ok TEXT  start of the positive reply (default: the\n"
		"                          command's tag and \" OK\", or \"OK\" for a\n"
		"                          one-word command)\n"
		"      --alpn PROTO        offer this ALPN protocol (default none)\n"
		"      --hold SECONDS      keep connections open this long (default 10)\n"
		"      --timeout SECONDS   bound on the connect phase (default 120)\n"
		"  -v, --verbose           print every failure and the first greeting\n");
}

static double parse_num(const char *s, const char *what, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "tern-bench-idle: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_TLS = 256, O_STARTTLS, O_PLAIN, O_STARTTLS_CMD, O_STARTTLS_OK, O_ALPN,
	       O_HOLD, O_TIMEOUT };
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "tls", no_argument, NULL, O_TLS },
		{ "starttls", no_argument, NULL, O_STARTTLS },
		{ "plain", no_argument, NULL, O_PLAIN },
		{ "starttls-cmd", required_argument, NULL, O_STARTTLS_CMD },
		{ "starttls-ok", required_argument, NULL, O_STARTTLS_OK },
		{ "alpn", required_argument, NULL, O_ALPN },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "H:p:n:c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = (int)parse_num(optarg, "port", 1, 65535); break;
		case 'n': opt.count = (unsigned int)parse_num(optarg, "count", 1, 1000000); break;
		case 'c': opt.concurrency = (unsigned int)parse_num(optarg, "concurrency", 1, 100000); break;
		case O_TLS: opt.mode = MODE_TLS; break;
		case O_STARTTLS: opt.mode = MODE_STARTTLS; break;
		case O_PLAIN: opt.mode = MODE_PLAIN; break;
		case O_STARTTLS_CMD: opt.starttls_cmd = optarg; break;
		case O_STARTTLS_OK: opt.starttls_ok = optarg; break;
		case O_ALPN: opt.alpn = optarg; break;
		case O_HOLD: opt.hold_s = parse_num(optarg, "hold", 0, 86400); break;
		case O_TIMEOUT: opt.timeout_s = parse_num(optarg, "timeout", 1, 86400); break;
		case 'v': opt.verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc || opt.port == 0) {
		usage(stderr);
		exit(2);
	}
	/* Only loopback, never anything else. */
	if (strcmp(opt.host, "127.0.0.1") == 0) {
		uv_ip4_addr(opt.host, opt.port, (struct sockaddr_in *)&server_addr);
	} else if (strcmp(opt.host, "::1") == 0) {
		uv_ip6_addr(opt.host, opt.port, (struct sockaddr_in6 *)&server_addr);
	} else {
		die("--host must be 127.0.0.1 or ::1");
	}
	if (strlen(opt.starttls_cmd) > 200 || opt.starttls_cmd[0] == '\0')
		die("bad --starttls-cmd");
	/* "a STARTTLS": tagged, the reply is "a OK ..."; "STARTTLS" or "STLS":
	 * untagged, the reply is "OK ..." (echod) or "+OK" (set --starttls-ok). */
	if (opt.starttls_ok == NULL) {
		size_t tl = strchr(opt.starttls_cmd, ' ') != NULL ?
			strcspn(opt.starttls_cmd, " ") + 1 : 0;
		if (tl > 64)
			die("--starttls-cmd: tag too long");
		snprintf(starttls_ok_buf, sizeof(starttls_ok_buf), "%.*sOK",
			 (int)tl, opt.starttls_cmd);
		opt.starttls_ok = starttls_ok_buf;
	}
}

static void init_tls(void)
{
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (ssl_ctx == NULL)
		die("SSL_CTX_new failed");
	/* A benchmark: trust whatever certificate the server has. */
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* Keep the client small: no idle read/write buffers, no session cache. */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	if (opt.alpn != NULL) {
		unsigned char wire[256];
		size_t len = strlen(opt.alpn);
		if (len == 0 || len > 255)
			die("bad --alpn");
		wire[0] = (unsigned char)len;
		memcpy(wire + 1, opt.alpn, len);
		if (SSL_CTX_set_alpn_protos(ssl_ctx, wire, (unsigned int)len + 1) != 0)
			die("SSL_CTX_set_alpn_protos failed");
	}
}

int main(int argc, char **argv)
{
	unsigned int failed = 0;
	double bound;

	parse_args(argc, argv);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (opt.mode != MODE_PLAIN)
		init_tls();
	/* Last resort against any hang: connect phase + hold + 30 s to close. */
	bound = opt.timeout_s + opt.hold_s + 30;
	alarm(bound > 4000000 ? 4000000 : (unsigned int)bound);

	clients = calloc(opt.count, sizeof(*clients));
	if (clients == NULL)
		die("out of memory");
	loop = uv_default_loop();
	uv_timer_init(loop, &sweep_timer);
	uv_timer_init(loop, &hold_timer);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_update_time(loop);
	t_start_ms = uv_now(loop);
	uv_timer_start(&sweep_timer, on_sweep, 1000, 1000);
	start_more();
	uv_run(loop, UV_RUN_DEFAULT);

	if (!finishing)
		finish(); /* not reached: the hold timer always ends the run */
	for (int i = 0; i < FAIL_COUNT; i++)
		failed += n_failed[i];
	uv_loop_close(loop);
	free(clients);
	if (ssl_ctx != NULL)
		SSL_CTX_free(ssl_ctx);
	return failed == 0 && n_dropped == 0 ? 0 : 1;
}
