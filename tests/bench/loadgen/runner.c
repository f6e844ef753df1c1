/*
 * runner.c — the client pool of tern-bench.
 *
 * Each of --clients clients runs sessions one after the other: connect
 * (TLS), read the greeting, STARTTLS if asked, then the workload's part,
 * until the workload ends the session. A failed session is counted and the
 * client starts over 100 ms later (workloads with reconnect), so one bad
 * connection never ends the run. The first connect of each client is
 * ramped: at most --concurrency connects in flight, so the server's listen
 * backlog is never overrun.
 *
 * Operations are timed from bench_op_begin() to bench_op_end(). One that
 * starts during the warm-up or after the stop is carried out but not
 * counted. The stop comes at --duration (or after --count top-level
 * operations, or on SIGINT/SIGTERM): nothing new starts, operations in
 * flight finish, and the run ends when every client is done. Every
 * operation is bounded by --timeout (checked four times a second), and a
 * watchdog closes everything at --duration + 30 s whatever happens; alarm()
 * kills the process 30 s after that if even closing hangs.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

enum client_state {
	CL_NEW,     /* not started yet */
	CL_SESSION, /* in a session */
	CL_CLOSING, /* session over, connection closing */
	CL_WAIT,    /* waiting to reconnect */
	CL_DONE,
};

enum phase {
	PH_CONNECT,
	PH_GREETING,
	PH_STARTTLS_REPLY,
	PH_STARTTLS_HS,
	PH_WORKLOAD,
};

#define RECONNECT_DELAY_MS 100
#define SWEEP_MS 250
#define WATCHDOG_GRACE_S 30
#define FAILURES_SHOWN 5

static struct {
	uv_loop_t *loop;
	const struct bench_workload *wl;
	char *clients;
	unsigned int n, n_started, n_ramp, n_done;
	bool stop_starting, stopping, stop_all, forced, finished;
	bool top_exhausted;
	uint64_t t0_ns, warmup_end_ns, last_end_ns, end_ns;
	uint64_t top_started, sessions, errors_outside;
	uint64_t fails[BENCH_FAIL_COUNT];
	unsigned int fails_shown;
	struct bench_op_stats ops[BENCH_MAX_OPS];
	int nops;
	uv_timer_t sweep, deadline, watchdog;
	uv_signal_t sigint, sigterm;
	int signals;
} R;

static void start_more(void);
static void client_next(struct bench_client *cl);

/* ------------------------------------------------------------ operations */

int bench_op_register(const char *name)
{
	if (R.nops == BENCH_MAX_OPS)
		bench_die("too many operations");
	R.ops[R.nops].name = name;
	return R.nops++;
}

int bench_op_count(void)
{
	return R.nops;
}

const struct bench_op_stats *bench_op_get(int id)
{
	return &R.ops[id];
}

static bool measuring(uint64_t now_ns)
{
	return !R.stopping && !R.stop_all && now_ns >= R.warmup_end_ns;
}

void bench_op_begin(struct bench_client *cl, int op, uint64_t extra_ms)
{
	uint64_t now = uv_hrtime();

	cl->op = op;
	cl->op_start_ns = now;
	cl->op_bytes = cl->conn.bytes_in + cl->conn.bytes_out;
	cl->op_counted = op >= 0 && measuring(now);
	if (op >= 0 && (R.stopping || R.stop_all))
		cl->session_partial = true; /* cut short by the stop */
	cl->op_deadline_ms = uv_now(R.loop) + (uint64_t)(bench_opt.timeout_s * 1000) + extra_ms;
}

void bench_op_end(struct bench_client *cl, bool ok)
{
	if (cl->op == BENCH_OP_NONE)
		return;
	if (cl->op >= 0 && cl->op_counted) {
		uint64_t now = uv_hrtime();
		struct bench_op_stats *st = &R.ops[cl->op];

		if (ok)
			bench_hist_record(&st->hist, now - cl->op_start_ns);
		else
			st->errors++;
		st->bytes += cl->conn.bytes_in + cl->conn.bytes_out - cl->op_bytes;
		if (now > R.last_end_ns)
			R.last_end_ns = now;
	}
	cl->op = BENCH_OP_NONE;
}

/* --------------------------------------------------------------- clients */

unsigned int bench_client_count(void)
{
	return R.n;
}

struct bench_client *bench_client_at(unsigned int i)
{
	return (struct bench_client *)(void *)(R.clients + (size_t)i * R.wl->client_size);
}

bool bench_client_started(const struct bench_client *cl)
{
	return cl->sessions > 0;
}

uv_loop_t *bench_loop(void)
{
	return R.loop;
}

static void on_client_timer(uv_timer_t *t)
{
	struct bench_client *cl = t->data;
	void (*cb)(struct bench_client *) = cl->timer_cb;

	cl->timer_cb = NULL;
	if (cb != NULL)
		cb(cl);
}

void bench_timer_start(struct bench_client *cl, uint64_t ms, void (*cb)(struct bench_client *cl))
{
	if (R.finished)
		return;
	if (!cl->timer_init) {
		uv_timer_init(R.loop, &cl->timer);
		cl->timer.data = cl;
		cl->timer_init = true;
	}
	cl->timer_cb = cb;
	uv_timer_start(&cl->timer, on_client_timer, ms, 0);
}

void bench_timer_stop(struct bench_client *cl)
{
	if (cl->timer_init)
		uv_timer_stop(&cl->timer);
	cl->timer_cb = NULL;
}

static void finish(void)
{
	if (R.finished)
		return;
	R.finished = true;
	R.end_ns = uv_hrtime();
	uv_close((uv_handle_t *)&R.sweep, NULL);
	uv_close((uv_handle_t *)&R.watchdog, NULL);
	if (!R.wl->hold)
		uv_close((uv_handle_t *)&R.deadline, NULL);
	uv_close((uv_handle_t *)&R.sigint, NULL);
	uv_close((uv_handle_t *)&R.sigterm, NULL);
	for (unsigned int i = 0; i < R.n; i++) {
		struct bench_client *cl = bench_client_at(i);
		if (cl->timer_init)
			uv_close((uv_handle_t *)&cl->timer, NULL);
	}
	if (R.wl->done != NULL)
		R.wl->done();
}

static void client_done(struct bench_client *cl)
{
	if (cl->state == CL_DONE)
		return;
	cl->state = CL_DONE;
	bench_timer_stop(cl);
	bench_ramp_release(cl);
	if (++R.n_done == R.n)
		finish();
}

void bench_ramp_release(struct bench_client *cl)
{
	if (!cl->ramping)
		return;
	cl->ramping = false;
	R.n_ramp--;
	start_more();
}

static void start_more(void)
{
	static bool busy;

	/* client_next() can come back here (a connect failing at once):
	 * the outer call does the starting. */
	if (busy)
		return;
	busy = true;
	while (R.n_started < R.n && !R.stop_starting && !R.stopping && !R.stop_all &&
	       R.n_ramp < bench_opt.concurrency) {
		struct bench_client *cl = bench_client_at(R.n_started++);

		cl->ramping = true;
		R.n_ramp++;
		client_next(cl);
	}
	if (R.stop_starting || R.stopping || R.stop_all) {
		while (R.n_started < R.n)
			client_done(bench_client_at(R.n_started++));
	}
	busy = false;
}

/* The session of cl failed: count it, close, and retry later. */
static void client_failed(struct bench_client *cl, enum bench_fail kind, const char *detail)
{
	bool counted;

	if (cl->state != CL_SESSION)
		return;
	if (cl->op >= 0) {
		counted = cl->op_counted;
		bench_op_end(cl, false);
	} else {
		counted = measuring(uv_hrtime());
		cl->op = BENCH_OP_NONE;
		if (counted)
			R.errors_outside++;
	}
	if (counted)
		R.fails[kind]++;
	if (bench_opt.verbose || (counted && R.fails_shown < FAILURES_SHOWN)) {
		R.fails_shown++;
		fprintf(stderr, "tern-bench: client %u: %s: %.200s\n", cl->id + 1,
			bench_fail_names[kind], detail);
	}
	cl->last_failed = true;
	cl->state = CL_CLOSING;
	bench_timer_stop(cl);
	bench_ramp_release(cl);
	if (R.wl->failed != NULL)
		R.wl->failed(cl, kind);
	bench_conn_close(&cl->conn);
}

void bench_count_failure(enum bench_fail kind)
{
	R.errors_outside++;
	R.fails[kind]++;
}

void bench_client_fail(struct bench_client *cl, enum bench_fail kind, const char *detail)
{
	client_failed(cl, kind, detail);
}

void bench_session_end(struct bench_client *cl, bool ok)
{
	if (cl->state != CL_SESSION)
		return;
	bench_op_end(cl, ok);
	/* Counted when it ends in the measured time: a rate of completions,
	 * right even when sessions last longer than the warm-up. */
	if (ok && !cl->session_partial && uv_hrtime() >= R.warmup_end_ns) {
		R.sessions++;
		R.last_end_ns = uv_hrtime();
	}
	cl->last_failed = !ok;
	cl->state = CL_CLOSING;
	bench_timer_stop(cl);
	bench_ramp_release(cl);
	bench_conn_close(&cl->conn);
}

void bench_sendv(struct bench_client *cl, const struct bench_iov *iov, unsigned int n)
{
	if (cl->state != CL_SESSION)
		return;
	if (bench_conn_writev(&cl->conn, iov, n) < 0)
		client_failed(cl, BENCH_FAIL_EOF, "write failed");
}

void bench_sendf(struct bench_client *cl, const char *fmt, ...)
{
	char small[2048];
	char *buf = small;
	struct bench_iov iov;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		bench_die("vsnprintf failed");
	if ((size_t)n >= sizeof(small)) {
		buf = bench_xcalloc(1, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	iov.data = buf;
	iov.len = (size_t)n;
	iov.stable = false;
	bench_sendv(cl, &iov, 1);
	if (buf != small)
		free(buf);
}

void bench_starttls(struct bench_client *cl, const char *cmd, const char *ok,
		    void (*then)(struct bench_client *cl))
{
	cl->phase = PH_STARTTLS_REPLY;
	cl->starttls_ok = ok;
	cl->tls_then = then;
	bench_sendf(cl, "%s\r\n", cmd);
}

/* Greeted (and STARTTLS done): the workload's part begins. */
static void connected(struct bench_client *cl)
{
	cl->phase = PH_WORKLOAD;
	bench_op_end(cl, true); /* BENCH_OP_CONNECT */
	if (!R.wl->ramp_manual)
		bench_ramp_release(cl);
	R.wl->start(cl);
}

static void greeting(struct bench_client *cl, const char *line)
{
	const char *ok = R.wl->greeting_ok;

	if (ok != NULL && strncmp(line, ok, strlen(ok)) != 0) {
		client_failed(cl, BENCH_FAIL_LINE, line);
		return;
	}
	if (R.wl->greeting != NULL)
		R.wl->greeting(cl, line);
	if (cl->state != CL_SESSION)
		return;
	if (bench_opt.tls == BENCH_TLS_STARTTLS && R.wl->starttls_cmd != NULL) {
		bench_starttls(cl, R.wl->starttls_cmd, R.wl->starttls_ok, connected);
		return;
	}
	connected(cl);
}

static void on_conn_ready(struct bench_conn *c)
{
	struct bench_client *cl = BENCH_CONTAINER(c, struct bench_client, conn);

	if (cl->state != CL_SESSION)
		return;
	if (cl->phase == PH_CONNECT) {
		cl->phase = PH_GREETING;
	} else if (cl->phase == PH_STARTTLS_HS) {
		cl->phase = PH_WORKLOAD;
		cl->tls_then(cl);
	}
}

static void on_conn_line(struct bench_conn *c, char *line, size_t len)
{
	struct bench_client *cl = BENCH_CONTAINER(c, struct bench_client, conn);

	if (cl->state != CL_SESSION)
		return;
	if (bench_opt.verbose && cl->id == 0)
		fprintf(stderr, "S: %.200s\n", line);
	switch (cl->phase) {
	case PH_GREETING:
		greeting(cl, line);
		break;
	case PH_STARTTLS_REPLY:
		if (strncmp(line, cl->starttls_ok, strlen(cl->starttls_ok)) == 0) {
			cl->phase = PH_STARTTLS_HS;
			if (bench_conn_starttls(&cl->conn) < 0)
				client_failed(cl, BENCH_FAIL_TLS, "cannot start TLS");
		} else if (line[0] != '*') {
			client_failed(cl, BENCH_FAIL_LINE, line);
		}
		break;
	case PH_WORKLOAD:
		R.wl->line(cl, line, len);
		break;
	default:
		client_failed(cl, BENCH_FAIL_LINE, "data before the greeting");
		break;
	}
}

static void on_conn_fail(struct bench_conn *c, enum bench_fail kind, const char *detail)
{
	client_failed(BENCH_CONTAINER(c, struct bench_client, conn), kind, detail);
}

static void reconnect_cb(struct bench_client *cl)
{
	if (cl->state == CL_WAIT)
		client_next(cl);
}

static void on_conn_closed(struct bench_conn *c)
{
	struct bench_client *cl = BENCH_CONTAINER(c, struct bench_client, conn);

	if (cl->state == CL_DONE)
		return;
	if (R.stop_all || R.stopping) {
		client_done(cl);
	} else if (!cl->last_failed) {
		client_next(cl);
	} else if (!R.wl->reconnect) {
		client_done(cl);
	} else {
		cl->state = CL_WAIT;
		bench_timer_start(cl, RECONNECT_DELAY_MS, reconnect_cb);
	}
}

static const struct bench_conn_cb conn_cb = {
	.ready = on_conn_ready,
	.line = on_conn_line,
	.fail = on_conn_fail,
	.closed = on_conn_closed,
};

/* Begin the next session of cl, or end the client. */
static void client_next(struct bench_client *cl)
{
	int r;

	if (R.stop_all || R.stopping || !R.wl->session_begin(cl)) {
		client_done(cl);
		return;
	}
	cl->sessions++;
	cl->state = CL_SESSION;
	cl->phase = PH_CONNECT;
	cl->last_failed = false;
	cl->session_partial = false;
	bench_op_begin(cl, BENCH_OP_CONNECT, 0);
	r = bench_conn_open(&cl->conn, R.loop, &conn_cb, bench_opt.tls == BENCH_TLS_IMPLICIT);
	if (r < 0)
		client_failed(cl, BENCH_FAIL_CONNECT, uv_strerror(r));
}

/* ------------------------------------------------------------- stopping */

bool bench_stopping(void)
{
	return R.stopping || R.stop_all;
}

bool bench_warming_up(void)
{
	return uv_hrtime() < R.warmup_end_ns;
}

bool bench_take_top(void)
{
	if (R.stopping || R.stop_all || R.top_exhausted)
		return false;
	if (bench_warming_up())
		return true; /* not counted against --count */
	if (bench_opt.count != 0 && R.top_started >= bench_opt.count) {
		R.top_exhausted = true;
		return false;
	}
	R.top_started++;
	return true;
}

bool bench_top_exhausted(void)
{
	if (bench_opt.count != 0 && R.top_started >= bench_opt.count)
		R.top_exhausted = true;
	return R.top_exhausted;
}

void bench_stop(void)
{
	if (R.stopping)
		return;
	R.stopping = true;
	for (unsigned int i = 0; i < R.n_started; i++) {
		struct bench_client *cl = bench_client_at(i);
		if (cl->state == CL_WAIT)
			client_done(cl);
	}
	start_more();
}

void bench_stop_starting(void)
{
	R.stop_starting = true;
	start_more();
}

void bench_stop_all(void)
{
	if (R.stop_all)
		return;
	R.stop_all = true;
	for (unsigned int i = 0; i < R.n_started; i++) {
		struct bench_client *cl = bench_client_at(i);

		if (cl->state == CL_SESSION) {
			cl->op = BENCH_OP_NONE; /* abandoned, not counted */
			cl->state = CL_CLOSING;
			bench_timer_stop(cl);
			bench_conn_close(&cl->conn);
		} else if (cl->state == CL_WAIT) {
			client_done(cl);
		}
	}
	start_more();
}

/* The watchdog, or a second signal: fail whatever is in flight. */
static void force_end(void)
{
	if (R.forced)
		return;
	R.forced = true;
	R.stopping = true;
	for (unsigned int i = 0; i < R.n_started; i++) {
		struct bench_client *cl = bench_client_at(i);

		if (cl->state == CL_SESSION)
			client_failed(cl, BENCH_FAIL_TIMEOUT, "still running when the run was ended");
		else if (cl->state == CL_WAIT)
			client_done(cl);
	}
	R.stop_all = true;
	start_more();
}

static void on_sweep(uv_timer_t *t)
{
	uint64_t now = uv_now(R.loop);

	for (unsigned int i = 0; i < R.n_started; i++) {
		struct bench_client *cl = bench_client_at(i);

		if (cl->state == CL_SESSION && cl->op != BENCH_OP_NONE && now > cl->op_deadline_ms)
			client_failed(cl, BENCH_FAIL_TIMEOUT, "no reply within --timeout");
	}
}

static void on_deadline(uv_timer_t *t)
{
	bench_stop();
}

static void on_watchdog(uv_timer_t *t)
{
	fprintf(stderr, "tern-bench: watchdog: the run did not end in time, "
		"closing every connection\n");
	force_end();
}

static void on_signal(uv_signal_t *s, int signum)
{
	if (++R.signals > 1 || R.stop_all) {
		force_end();
		return;
	}
	if (R.wl->stop != NULL)
		R.wl->stop();
	else
		bench_stop();
}

/* ------------------------------------------------------------------ run */

void bench_run(const struct bench_workload *wl)
{
	const char *error;
	double bound_s;

	R.wl = wl;
	R.loop = uv_default_loop();
	bench_op_register("connect");
	if (wl->init != NULL && wl->init(&error) < 0)
		bench_die("%s", error);

	R.n = bench_opt.clients;
	R.clients = bench_xcalloc(R.n, wl->client_size);
	for (unsigned int i = 0; i < R.n; i++) {
		struct bench_client *cl = bench_client_at(i);
		cl->id = i;
		cl->op = BENCH_OP_NONE;
		bench_rng_seed(&cl->rng, bench_opt.seed, i);
	}

	uv_update_time(R.loop);
	R.t0_ns = uv_hrtime();
	R.warmup_end_ns = R.t0_ns + (uint64_t)(bench_opt.warmup_s * 1e9);
	uv_timer_init(R.loop, &R.sweep);
	uv_timer_start(&R.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	if (wl->hold) {
		bound_s = bench_opt.timeout_s + bench_opt.hold_s + WATCHDOG_GRACE_S;
	} else {
		uv_timer_init(R.loop, &R.deadline);
		uv_timer_start(&R.deadline, on_deadline, (uint64_t)(bench_opt.duration_s * 1000), 0);
		bound_s = bench_opt.duration_s + WATCHDOG_GRACE_S;
	}
	uv_timer_init(R.loop, &R.watchdog);
	uv_timer_start(&R.watchdog, on_watchdog, (uint64_t)(bound_s * 1000), 0);
	uv_signal_init(R.loop, &R.sigint);
	uv_signal_init(R.loop, &R.sigterm);
	uv_signal_start(&R.sigint, on_signal, SIGINT);
	uv_signal_start(&R.sigterm, on_signal, SIGTERM);
	/* The last resort, should even closing hang. */
	alarm((unsigned int)bound_s + WATCHDOG_GRACE_S);

	start_more();
	if (R.n == 0)
		finish();
	uv_run(R.loop, UV_RUN_DEFAULT);
	alarm(0);
	if (uv_loop_close(R.loop) != 0)
		fprintf(stderr, "tern-bench: handles left open at exit\n");
	free(R.clients);
	R.clients = NULL;
}

/* ---------------------------------------------------------------- results */

double bench_elapsed_s(void)
{
	uint64_t start = R.warmup_end_ns;
	uint64_t end = R.last_end_ns > start ? R.last_end_ns : R.end_ns;

	return end > start ? (double)(end - start) / 1e9 : 0.0;
}

uint64_t bench_sessions(void)
{
	return R.sessions;
}

uint64_t bench_errors(void)
{
	uint64_t n = R.errors_outside;

	for (int i = 0; i < R.nops; i++)
		n += R.ops[i].errors;
	return n;
}

uint64_t bench_fail_kind(enum bench_fail kind)
{
	return R.fails[kind];
}

bool bench_forced(void)
{
	return R.forced;
}
