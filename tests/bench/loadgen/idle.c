/*
 * idle.c — hold --clients connections open and idle, to measure what an
 * idle connection costs the server (tests/bench/idle-memory).
 *
 * Each connection: connect (--concurrency connects in flight at a time, so
 * the listen backlog is never overrun); TLS with --tls; the greeting line;
 * with --starttls the --starttls-cmd and its positive reply
 * (--starttls-ok), then the handshake. With --login it then logs in over
 * IMAP (LOGIN, or AUTHENTICATE PLAIN with --auth-plain), SELECTs
 * --select if given, and sends IDLE; the "+" reply makes it established.
 * Without --login the greeting (or STARTTLS) is enough. From then on it
 * reads and discards whatever comes, and never writes.
 *
 * Output lines on stdout (stderr with --json), key=value:
 *   established=N failed=N elapsed_ms=N connect_failed=N tls_failed=N \
 *     eof=N timeout=N refused_line=N
 *       once every connection is established or failed, or --timeout
 *       after the start (the rest then count as timeout);
 *   done held=N dropped=N
 *       at the end, after closing all (dropped: closed by the server while
 *       held).
 * The hold lasts --hold seconds; SIGTERM or SIGINT end it early. With
 * --pid the memory of that process tree is sampled before the first
 * connect and at the end of the hold.
 */
#include <string.h>

#include "bench.h"

enum step { I_LOGIN, I_SELECT, I_IDLE, I_HELD };

struct idle_client {
	struct bench_client cl;
	struct imapc ic;
	enum step step;
	bool established;
	bool setup_counted; /* counted in established or failed */
};

static struct {
	unsigned int established, setup_done, dropped, held;
	unsigned int failed[BENCH_FAIL_COUNT];
	bool reported, finishing;
	uint64_t t0_ms, setup_ms;
	uv_timer_t hold_timer, timeout_timer;
	struct bench_procmem before, during;
	bool have_mem;
	int op_login, op_select, op_idle;
	char starttls_ok[80];
} I;

static FILE *out(void)
{
	return bench_opt.json ? stderr : stdout;
}

static unsigned int failed_total(void)
{
	unsigned int n = 0;

	for (int i = 0; i < BENCH_FAIL_COUNT; i++)
		n += I.failed[i];
	return n;
}

static void idle_finish(void);

static void on_hold_done(uv_timer_t *t)
{
	idle_finish();
}

static void report_setup(void)
{
	if (I.reported)
		return;
	I.reported = true;
	I.setup_ms = uv_now(bench_loop()) - I.t0_ms;
	fprintf(out(), "established=%u failed=%u elapsed_ms=%llu", I.established,
		failed_total(), (unsigned long long)I.setup_ms);
	for (int i = 0; i < BENCH_FAIL_COUNT; i++)
		fprintf(out(), " %s=%u", bench_fail_names[i], I.failed[i]);
	fprintf(out(), "\n");
	fflush(out());
	if (I.finishing)
		return;
	uv_timer_stop(&I.timeout_timer);
	uv_timer_start(&I.hold_timer, on_hold_done, (uint64_t)(bench_opt.hold_s * 1000), 0);
}

static void setup_one_done(struct idle_client *c)
{
	if (c->setup_counted)
		return;
	c->setup_counted = true;
	if (++I.setup_done == bench_opt.clients)
		report_setup();
}

/* The connect phase took too long: what is not set up counts as timeout. */
static void on_timeout(uv_timer_t *t)
{
	unsigned int n = bench_client_count();

	/* Those never started, then (with no more starting, as failures
	 * free ramp slots) those still setting up. */
	for (unsigned int i = 0; i < n; i++) {
		struct idle_client *c = (struct idle_client *)bench_client_at(i);

		if (!bench_client_started(&c->cl) && !c->setup_counted) {
			I.failed[BENCH_FAIL_TIMEOUT]++;
			bench_count_failure(BENCH_FAIL_TIMEOUT);
			setup_one_done(c);
		}
	}
	bench_stop_starting();
	for (unsigned int i = 0; i < n; i++) {
		struct idle_client *c = (struct idle_client *)bench_client_at(i);

		if (c->established || c->setup_counted)
			continue;
		bench_client_fail(&c->cl, BENCH_FAIL_TIMEOUT, "not established in time");
		if (!c->setup_counted) { /* it was not in a session */
			I.failed[BENCH_FAIL_TIMEOUT]++;
			bench_count_failure(BENCH_FAIL_TIMEOUT);
			setup_one_done(c);
		}
	}
	report_setup();
}

static int idle_init(const char **error_r)
{
	const char *cmd = bench_opt.starttls_cmd;
	const char *e;

	I.op_login = bench_op_register("login");
	I.op_select = bench_op_register("select");
	I.op_idle = bench_op_register("idle");
	bench_idle.greeting_ok = bench_opt.login ? "* OK" : NULL;
	bench_idle.starttls_cmd = cmd;
	/* "a STARTTLS": tagged, the reply is "a OK ..."; "STARTTLS" or "STLS":
	 * untagged, the reply is "OK ..." (or "+OK": set --starttls-ok). */
	if (bench_opt.starttls_ok != NULL) {
		bench_idle.starttls_ok = bench_opt.starttls_ok;
	} else {
		size_t tl = strchr(cmd, ' ') != NULL ? strcspn(cmd, " ") + 1 : 0;

		if (tl > 64) {
			*error_r = "--starttls-cmd: tag too long";
			return -1;
		}
		snprintf(I.starttls_ok, sizeof(I.starttls_ok), "%.*sOK", (int)tl, cmd);
		bench_idle.starttls_ok = I.starttls_ok;
	}
	if (bench_opt.pid > 0) {
		if (bench_procmem_sample(bench_opt.pid, &I.before, &e) < 0) {
			*error_r = e;
			return -1;
		}
		I.have_mem = true;
	}
	uv_timer_init(bench_loop(), &I.hold_timer);
	uv_timer_init(bench_loop(), &I.timeout_timer);
	I.t0_ms = uv_now(bench_loop());
	uv_timer_start(&I.timeout_timer, on_timeout, (uint64_t)(bench_opt.timeout_s * 1000), 0);
	return 0;
}

static bool idle_session_begin(struct bench_client *cl)
{
	return cl->sessions == 0 && !I.finishing;
}

static void established(struct idle_client *c)
{
	c->established = true;
	c->step = I_HELD;
	I.established++;
	setup_one_done(c);
	bench_ramp_release(&c->cl);
}

static void send_idle(struct idle_client *c)
{
	c->step = I_IDLE;
	bench_op_begin(&c->cl, I.op_idle, 0);
	imapc_send(&c->cl, &c->ic, "IDLE");
}

static void idle_greeting(struct bench_client *cl, const char *line)
{
	imapc_greeting(&((struct idle_client *)cl)->ic, line);
}

static void idle_start(struct bench_client *cl)
{
	struct idle_client *c = (struct idle_client *)cl;
	char user[256];

	if (!bench_opt.login) {
		established(c);
		return;
	}
	if (bench_opt.tls == BENCH_TLS_STARTTLS)
		imapc_forget_caps(&c->ic);
	bench_user_name(cl->id % bench_opt.users, user, sizeof(user));
	c->step = I_LOGIN;
	bench_op_begin(cl, I.op_login, 0);
	imapc_login(cl, &c->ic, user, bench_opt.password, bench_opt.auth_plain);
}

static void idle_line(struct bench_client *cl, char *line, size_t len)
{
	struct idle_client *c = (struct idle_client *)cl;
	enum imapc_event ev;

	if (c->step == I_HELD || !bench_opt.login)
		return; /* idle: discard */
	ev = imapc_line(cl, &c->ic, line, len);
	if (ev == IMAPC_NONE || ev == IMAPC_UNTAGGED)
		return;
	if (ev == IMAPC_CONT && c->step == I_IDLE) {
		bench_op_end(cl, true);
		established(c);
		return;
	}
	if (ev != IMAPC_TAGGED || c->ic.status != IMAPC_OK || c->step == I_IDLE) {
		bench_client_fail(cl, BENCH_FAIL_LINE, line);
		return;
	}
	bench_op_end(cl, true);
	if (c->step == I_LOGIN && bench_opt.select_mailbox != NULL) {
		char q[600];

		if (bench_imap_quote(bench_opt.select_mailbox, q, sizeof(q)) < 0)
			bench_die("--select: too long or holds CR/LF");
		c->step = I_SELECT;
		bench_op_begin(cl, I.op_select, 0);
		imapc_send(cl, &c->ic, "SELECT %s", q);
		return;
	}
	send_idle(c);
}

static void idle_failed(struct bench_client *cl, enum bench_fail kind)
{
	struct idle_client *c = (struct idle_client *)cl;

	if (c->established) {
		/* The server closed an established connection. */
		c->established = false;
		I.established--;
		I.dropped++;
		return;
	}
	I.failed[kind]++;
	setup_one_done(c);
	bench_ramp_release(cl);
}

/* End of the hold (or SIGTERM): sample, then close everything. */
static void idle_finish(void)
{
	const char *e;

	if (I.finishing)
		return;
	if (!I.reported)
		report_setup();
	I.finishing = true;
	I.held = I.established;
	if (I.have_mem) {
		if (bench_procmem_sample(bench_opt.pid, &I.during, &e) < 0) {
			fprintf(stderr, "tern-bench: %s\n", e);
			I.have_mem = false;
		}
	}
	bench_stop_all();
}

static void idle_done(void)
{
	if (!I.finishing)
		I.held = I.established;
	I.finishing = true;
	uv_close((uv_handle_t *)&I.hold_timer, NULL);
	uv_close((uv_handle_t *)&I.timeout_timer, NULL);
	fprintf(out(), "done held=%u dropped=%u\n", I.held, I.dropped);
	fflush(out());
}

static void idle_report(struct bench_json *j)
{
	double setup_s = (double)I.setup_ms / 1000;

	bench_json_obj(j, "throughput");
	bench_json_num(j, "connects_per_s", setup_s > 0 ? I.established / setup_s : 0, 2);
	bench_json_end(j);
	bench_json_u64(j, "established", I.established);
	bench_json_u64(j, "failed", failed_total());
	bench_json_obj(j, "failed_by_kind");
	for (int i = 0; i < BENCH_FAIL_COUNT; i++)
		bench_json_u64(j, bench_fail_names[i], I.failed[i]);
	bench_json_end(j);
	bench_json_u64(j, "held", I.held);
	bench_json_u64(j, "dropped", I.dropped);
	bench_json_num(j, "setup_s", setup_s, 3);
	if (!I.have_mem)
		return;
	bench_json_u64(j, "pid", (uint64_t)bench_opt.pid);
	bench_json_u64(j, "procs", I.during.procs);
	bench_json_u64(j, "rss_kib_before", I.before.rss_kib);
	bench_json_u64(j, "rss_kib_held", I.during.rss_kib);
	bench_json_u64(j, "pss_kib_before", I.before.pss_kib);
	bench_json_u64(j, "pss_kib_held", I.during.pss_kib);
	bench_json_num(j, "kib_per_conn", I.held > 0 ?
		       ((double)I.during.rss_kib - (double)I.before.rss_kib) / I.held : 0, 2);
	bench_json_num(j, "pss_kib_per_conn", I.held > 0 ?
		       ((double)I.during.pss_kib - (double)I.before.pss_kib) / I.held : 0, 2);
}

static int idle_status(void)
{
	return failed_total() == 0 && I.dropped == 0 && I.held == bench_opt.clients ? 0 : 1;
}

struct bench_workload bench_idle = {
	.name = "idle",
	.client_size = sizeof(struct idle_client),
	.greeting_ok = NULL,     /* set by idle_init */
	.starttls_cmd = NULL,    /* set by idle_init */
	.reconnect = false,
	.ramp_manual = true,
	.hold = true,
	.init = idle_init,
	.session_begin = idle_session_begin,
	.greeting = idle_greeting,
	.start = idle_start,
	.line = idle_line,
	.failed = idle_failed,
	.stop = idle_finish,
	.done = idle_done,
	.report = idle_report,
	.status = idle_status,
};
