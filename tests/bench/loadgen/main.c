/*
 * main.c — tern-bench: options, the run, and the report (a table for
 * people, then one JSON line; only the JSON with --json).
 *
 * See usage() for the command line and the JSON format; the workloads are
 * in their own files.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>

#include "bench.h"

struct bench_opt bench_opt;

struct bench_json {
	FILE *f;
	bool human;
	int depth;
	bool first;
};

static void usage(FILE *f)
{
	fputs(
"usage: tern-bench WORKLOAD [options]\n"
"\n"
"Load generator for mail servers on loopback: many concurrent connections\n"
"from one process (libuv), with or without TLS; throughput and latency\n"
"percentiles per operation. WORKLOAD is one of:\n"
"  lmtp          durable deliveries over LMTP\n"
"  imap          a mixed IMAP client workload, in sessions\n"
"  imap-bigbox   IMAP commands on one large mailbox, each timed --repeat times\n"
"  pop3          POP3 sessions retrieving every message\n"
"  idle          hold connections open and idle (memory per connection)\n"
"\n"
"Common options:\n"
"  --host ADDR          127.0.0.1 (default) or ::1; anything else is refused\n"
"  --port N             server port (default: 24 lmtp; 143, or 993 with --tls,\n"
"                       for imap, imap-bigbox and idle; 110, or 995, for pop3)\n"
"  --tls                implicit TLS (any certificate accepted, SNI localhost)\n"
"  --starttls           plain, then STARTTLS (IMAP, LMTP) or STLS (POP3)\n"
"  --plain              no TLS (the default)\n"
"  --clients N          concurrent connections (default 1)\n"
"  --concurrency N      connects in flight while ramping up (default 200)\n"
"  --duration SEC       length of the run, --warmup included (default 10,\n"
"                       imap-bigbox 600; max 600): no new operation starts\n"
"                       after it, those in flight finish\n"
"  --count N            stop after N top-level operations in total: deliveries\n"
"                       (lmtp), sessions (imap, pop3)\n"
"  --warmup SEC         operations starting in the first SEC seconds are not\n"
"                       counted (default 0)\n"
"  --timeout SEC        bound on one operation: a late one counts as an error\n"
"                       and its client reconnects (default 30, imap-bigbox 600;\n"
"                       idle: bound on the whole connect phase, default 120)\n"
"  --users N            users (default 1); client i logs in as user (i mod N)+1\n"
"  --user-format FMT    user names, printf with one %d, 1-based (default user%d)\n"
"  --password PW        password of every user (default pass)\n"
"  --auth-plain         AUTHENTICATE PLAIN (IMAP) or AUTH PLAIN (POP3) instead of\n"
"                       LOGIN or USER/PASS\n"
"  --seed N             seed of the random choices (default 1)\n"
"  --json               print only one JSON object on stdout\n"
"  -v, --verbose        every failure and client 1's dialogue on stderr\n"
"  -h, --help           this text\n"
"\n"
"lmtp: per connection LHLO, then deliveries: MAIL FROM, RCPT TO x K, DATA,\n"
"the message, \".\", K replies (pipelined if the server offers PIPELINING);\n"
"ok only if all K replies are 250. Operation \"delivery\".\n"
"  --size BYTES         generated messages of this size (default 4096, min 512)\n"
"  --corpus DIR         send the files of DIR round-robin instead (LF or CRLF\n"
"                       on disk; sent as CRLF, dot-stuffed)\n"
"  --rcpts K            recipients per message (default 1)\n"
"  --rcpt-format FMT    recipients, one %d cycling over --users\n"
"                       (default user%d@example.org)\n"
"  --from ADDR          envelope sender (default bench@example.org)\n"
"  --unix PATH          connect to a unix socket instead of --host/--port\n"
"\n"
"imap: per session connect, LOGIN, SELECT INBOX, UID SEARCH ALL, K operations\n"
"drawn from --mix, LOGOUT.\n"
"  --ops-per-session K  operations per session (default 10)\n"
"  --mix LIST           weights, name=W,... of fetch-new fetch-body store\n"
"                       append expunge idle noop; names left out weigh 0\n"
"                       (default fetch-new=4,fetch-body=2,store=2,append=1,\n"
"                       expunge=1,idle=0,noop=1)\n"
"  --idle-ms MS         an idle operation waits this long or for new mail\n"
"                       (default 1000)\n"
"  --size, --corpus     the messages appended, as for lmtp\n"
"\n"
"imap-bigbox: on one connection per client, login, a first SELECT, then each\n"
"operation --repeat times; median (p50) and p99 per operation.\n"
"  --user NAME          user (default: user 1 of --user-format)\n"
"  --mailbox NAME       mailbox (default INBOX)\n"
"  --ops LIST           any of select,fetch-flags,fetch-envelope,search-header,\n"
"                       search-body,store (default: all six, in that order)\n"
"  --repeat N           times each operation runs (default 5)\n"
"  --search-word WORD   for search-header (Subject) and search-body\n"
"                       (default invoice)\n"
"\n"
"pop3: per session USER/PASS, STAT, UIDL, RETR of every message, QUIT.\n"
"  --delete             DELE every message before QUIT (default: keep them)\n"
"\n"
"idle: open --clients connections, read each greeting (STARTTLS with\n"
"--starttls), hold them idle, close them. Prints on stdout (stderr with --json)\n"
"\"established=N failed=N elapsed_ms=N connect_failed=N tls_failed=N eof=N\n"
"timeout=N refused_line=N\" once all are set up, \"done held=N dropped=N\" at the\n"
"end.\n"
"  --hold SEC           how long to hold them (default 10; SIGTERM ends it early)\n"
"  --login              log in over IMAP (LOGIN), send IDLE and wait for \"+\"\n"
"  --select MAILBOX     with --login, SELECT it before IDLE\n"
"  --starttls-cmd CMD   the STARTTLS command (default \"a STARTTLS\")\n"
"  --starttls-ok TEXT   start of its positive reply (default: the command's tag\n"
"                       and \"OK\", or \"OK\" for a one-word command)\n"
"  --alpn PROTO         offer this ALPN protocol (any workload)\n"
"  --pid PID            sample the memory (VmRSS, Pss) of PID and all its\n"
"                       descendants before connecting and at the end of the hold\n"
"\n"
"Output: one JSON object on a line (after a table unless --json):\n"
"  {\"workload\":W,\"tls\":\"none|implicit|starttls\",\"clients\":N,\"elapsed_s\":X,\n"
"   \"errors\":N,\"errors_by_kind\":{\"connect_failed\":N,\"tls_failed\":N,\"eof\":N,\n"
"   \"timeout\":N,\"refused_line\":N},\n"
"   \"ops\":{OP:{\"count\":N,\"errors\":N,\"per_s\":X,\"mean_ms\":X,\"p50_ms\":X,\n"
"   \"p99_ms\":X,\"max_ms\":X},...},\n"
"   \"throughput\":{\"msgs_per_s\" (lmtp) or \"sessions_per_s\" (imap, pop3) or\n"
"   \"connects_per_s\" (idle):X, \"mb_per_s\":X}, ...}\n"
"Operations: connect (TCP, TLS, greeting, STARTTLS) in every workload; lmtp:\n"
"lhlo delivery; imap: login capability select search-all fetch-new fetch-body\n"
"store append expunge idle noop fetch-uid logout (capability only if the login\n"
"reply lacks it, fetch-uid only without UIDPLUS); imap-bigbox: login\n"
"select-first, those of --ops, logout; pop3: login stat uidl retr dele quit;\n"
"idle: login select idle. Only those that ran are listed.\n"
"elapsed_s runs from the end of the warm-up to the end of the last counted\n"
"operation; count is successful operations, latencies are of those (from a\n"
"log-linear histogram, within 0.8%). An operation counts if it starts after\n"
"the warm-up and before the stop; a session counts if it completes after the\n"
"warm-up with none of its operations cut short by the stop. mb_per_s is\n"
"10^6 bytes of message data delivered (lmtp) or retrieved (pop3), or of IMAP\n"
"traffic both ways (imap).\n"
"Extra fields: lmtp bytes_delivered; imap and pop3 sessions; pop3\n"
"bytes_retrieved; imap-bigbox mailbox, messages, repeat; idle established,\n"
"failed, failed_by_kind, held, dropped, setup_s, and with --pid: pid, procs,\n"
"rss_kib_before, rss_kib_held, pss_kib_before, pss_kib_held, kib_per_conn,\n"
"pss_kib_per_conn.\n"
"Errors: a failed connection, a timeout, or a reply the session cannot go on\n"
"from counts as an error of the operation in flight, and the client starts a\n"
"new session 100 ms later; a NO or BAD to an IMAP operation, or -ERR to RETR\n"
"or DELE, counts as that operation's error and the session goes on. A\n"
"watchdog ends the run at --duration + 30 s (idle: --timeout + --hold + 30 s).\n"
"\n"
"Exit status: 0 when the run had no error (idle: every connection held, none\n"
"dropped), 1 when it had errors, 2 on a usage or setup error.\n",
	      f);
}

/* ------------------------------------------------------------------ JSON */

static void json_sep(struct bench_json *j)
{
	if (!j->human && !j->first)
		fputc(',', j->f);
	j->first = false;
	if (j->human)
		fprintf(j->f, "%*s", j->depth * 2, "");
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void bench_json_obj(struct bench_json *j, const char *key)
{
	json_sep(j);
	if (j->human) {
		fprintf(j->f, "%s:\n", key);
	} else {
		json_string(j->f, key);
		fputs(":{", j->f);
	}
	j->depth++;
	j->first = true;
}

void bench_json_end(struct bench_json *j)
{
	if (j->human && j->first) /* nothing in it */
		fprintf(j->f, "%*s-\n", j->depth * 2, "");
	j->depth--;
	if (!j->human)
		fputc('}', j->f);
	j->first = false;
}

void bench_json_u64(struct bench_json *j, const char *key, uint64_t v)
{
	json_sep(j);
	if (j->human) {
		fprintf(j->f, "%s: %llu\n", key, (unsigned long long)v);
	} else {
		json_string(j->f, key);
		fprintf(j->f, ":%llu", (unsigned long long)v);
	}
}

void bench_json_num(struct bench_json *j, const char *key, double v, int decimals)
{
	if (!isfinite(v))
		v = 0;
	json_sep(j);
	if (j->human) {
		fprintf(j->f, "%s: %.*f\n", key, decimals, v);
	} else {
		json_string(j->f, key);
		fprintf(j->f, ":%.*f", decimals, v);
	}
}

void bench_json_str(struct bench_json *j, const char *key, const char *v)
{
	json_sep(j);
	if (j->human) {
		fprintf(j->f, "%s: %s\n", key, v);
	} else {
		json_string(j->f, key);
		fputc(':', j->f);
		json_string(j->f, v);
	}
}

/* ---------------------------------------------------------------- report */

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static const char *tls_name(void)
{
	switch (bench_opt.tls) {
	case BENCH_TLS_IMPLICIT:
		return "implicit";
	case BENCH_TLS_STARTTLS:
		return "starttls";
	case BENCH_TLS_NONE:
		break;
	}
	return "none";
}

static void report_json(const struct bench_workload *wl)
{
	struct bench_json j = { stdout, false, 0, true };
	double s = bench_elapsed_s();

	fputc('{', stdout);
	bench_json_str(&j, "workload", wl->name);
	bench_json_str(&j, "tls", tls_name());
	bench_json_u64(&j, "clients", bench_opt.clients);
	bench_json_num(&j, "elapsed_s", s, 3);
	bench_json_u64(&j, "errors", bench_errors());
	bench_json_obj(&j, "errors_by_kind");
	for (int k = 0; k < BENCH_FAIL_COUNT; k++)
		bench_json_u64(&j, bench_fail_names[k], bench_fail_kind((enum bench_fail)k));
	bench_json_end(&j);
	bench_json_obj(&j, "ops");
	for (int i = 0; i < bench_op_count(); i++) {
		const struct bench_op_stats *st = bench_op_get(i);
		const struct bench_hist *h = &st->hist;

		if (h->count == 0 && st->errors == 0)
			continue;
		bench_json_obj(&j, st->name);
		bench_json_u64(&j, "count", h->count);
		bench_json_u64(&j, "errors", st->errors);
		bench_json_num(&j, "per_s", s > 0 ? (double)h->count / s : 0, 2);
		bench_json_num(&j, "mean_ms", h->count > 0 ? ms(h->sum_ns) / (double)h->count : 0, 3);
		bench_json_num(&j, "p50_ms", ms(bench_hist_quantile(h, 0.50)), 3);
		bench_json_num(&j, "p99_ms", ms(bench_hist_quantile(h, 0.99)), 3);
		bench_json_num(&j, "max_ms", ms(h->max_ns), 3);
		bench_json_end(&j);
	}
	bench_json_end(&j);
	wl->report(&j);
	if (bench_forced())
		bench_json_u64(&j, "ended_by_watchdog", 1);
	fputs("}\n", stdout);
}

static void report_human(const struct bench_workload *wl)
{
	struct bench_json j = { stdout, true, 0, true };
	double s = bench_elapsed_s();
	bool kinds = false;

	printf("tern-bench %s: %u client%s, tls %s, %.3f s measured, %llu error%s%s\n",
	       wl->name, bench_opt.clients, bench_opt.clients == 1 ? "" : "s", tls_name(), s,
	       (unsigned long long)bench_errors(), bench_errors() == 1 ? "" : "s",
	       bench_forced() ? " (ended by the watchdog)" : "");
	printf("%-16s %9s %7s %10s %9s %9s %9s %9s\n", "operation", "count", "errors",
	       "per_s", "mean_ms", "p50_ms", "p99_ms", "max_ms");
	for (int i = 0; i < bench_op_count(); i++) {
		const struct bench_op_stats *st = bench_op_get(i);
		const struct bench_hist *h = &st->hist;

		if (h->count == 0 && st->errors == 0)
			continue;
		printf("%-16s %9llu %7llu %10.2f %9.3f %9.3f %9.3f %9.3f\n", st->name,
		       (unsigned long long)h->count, (unsigned long long)st->errors,
		       s > 0 ? (double)h->count / s : 0,
		       h->count > 0 ? ms(h->sum_ns) / (double)h->count : 0,
		       ms(bench_hist_quantile(h, 0.50)), ms(bench_hist_quantile(h, 0.99)),
		       ms(h->max_ns));
	}
	for (int k = 0; k < BENCH_FAIL_COUNT; k++)
		kinds |= bench_fail_kind((enum bench_fail)k) > 0;
	if (kinds) {
		bench_json_obj(&j, "errors_by_kind");
		for (int k = 0; k < BENCH_FAIL_COUNT; k++)
			if (bench_fail_kind((enum bench_fail)k) > 0)
				bench_json_u64(&j, bench_fail_names[k],
					       bench_fail_kind((enum bench_fail)k));
		bench_json_end(&j);
	}
	wl->report(&j);
}

/* --------------------------------------------------------------- options */

static double parse_num(const char *s, const char *what, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
		bench_die("bad --%s: %s (from %g to %g)", what, s, min, max);
	return v;
}

static unsigned int parse_uint(const char *s, const char *what, double min, double max)
{
	double v = parse_num(s, what, min, max);

	if (v != (double)(unsigned int)v)
		bench_die("bad --%s: %s (a whole number)", what, s);
	return (unsigned int)v;
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		bench_die("bad --%s: %s", what, s);
	return v;
}

static struct bench_workload *find_workload(const char *name)
{
	static struct bench_workload *const all[] = {
		&bench_lmtp, &bench_imap, &bench_imap_bigbox, &bench_pop3, &bench_idle,
	};

	for (size_t i = 0; i < BENCH_N_ELEMENTS(all); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

enum {
	O_HOST = 256, O_PORT, O_UNIX, O_TLS, O_STARTTLS, O_PLAIN, O_ALPN, O_CLIENTS,
	O_CONCURRENCY, O_DURATION, O_COUNT, O_WARMUP, O_TIMEOUT, O_USERS, O_USER_FORMAT,
	O_PASSWORD, O_AUTH_PLAIN, O_SEED, O_JSON, O_SIZE, O_CORPUS, O_RCPTS, O_RCPT_FORMAT,
	O_FROM, O_OPS_PER_SESSION, O_MIX, O_IDLE_MS, O_USER, O_MAILBOX, O_OPS, O_REPEAT,
	O_SEARCH_WORD, O_DELETE, O_HOLD, O_LOGIN, O_SELECT, O_STARTTLS_CMD, O_STARTTLS_OK,
	O_PID,
};

static const struct option longopts[] = {
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	{ "unix", required_argument, NULL, O_UNIX },
	{ "tls", no_argument, NULL, O_TLS },
	{ "starttls", no_argument, NULL, O_STARTTLS },
	{ "plain", no_argument, NULL, O_PLAIN },
	{ "alpn", required_argument, NULL, O_ALPN },
	{ "clients", required_argument, NULL, O_CLIENTS },
	{ "concurrency", required_argument, NULL, O_CONCURRENCY },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "count", required_argument, NULL, O_COUNT },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "users", required_argument, NULL, O_USERS },
	{ "user-format", required_argument, NULL, O_USER_FORMAT },
	{ "password", required_argument, NULL, O_PASSWORD },
	{ "auth-plain", no_argument, NULL, O_AUTH_PLAIN },
	{ "seed", required_argument, NULL, O_SEED },
	{ "json", no_argument, NULL, O_JSON },
	{ "size", required_argument, NULL, O_SIZE },
	{ "corpus", required_argument, NULL, O_CORPUS },
	{ "rcpts", required_argument, NULL, O_RCPTS },
	{ "rcpt-format", required_argument, NULL, O_RCPT_FORMAT },
	{ "from", required_argument, NULL, O_FROM },
	{ "ops-per-session", required_argument, NULL, O_OPS_PER_SESSION },
	{ "mix", required_argument, NULL, O_MIX },
	{ "idle-ms", required_argument, NULL, O_IDLE_MS },
	{ "user", required_argument, NULL, O_USER },
	{ "mailbox", required_argument, NULL, O_MAILBOX },
	{ "ops", required_argument, NULL, O_OPS },
	{ "repeat", required_argument, NULL, O_REPEAT },
	{ "search-word", required_argument, NULL, O_SEARCH_WORD },
	{ "delete", no_argument, NULL, O_DELETE },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "login", no_argument, NULL, O_LOGIN },
	{ "select", required_argument, NULL, O_SELECT },
	{ "starttls-cmd", required_argument, NULL, O_STARTTLS_CMD },
	{ "starttls-ok", required_argument, NULL, O_STARTTLS_OK },
	{ "pid", required_argument, NULL, O_PID },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static struct bench_workload *parse_args(int argc, char **argv)
{
	struct bench_opt *o = &bench_opt;
	const char *user_format = "user%d", *rcpt_format = "user%d@example.org";
	struct bench_workload *wl;
	const char *error;
	double duration = -1, timeout = -1;
	int ch;

	o->host = "127.0.0.1";
	o->clients = 1;
	o->concurrency = 200;
	o->users = 1;
	o->password = "pass";
	o->seed = 1;
	o->size = 4096;
	o->rcpts = 1;
	o->from = "bench@example.org";
	o->ops_per_session = 10;
	o->mix = "fetch-new=4,fetch-body=2,store=2,append=1,expunge=1,idle=0,noop=1";
	o->idle_ms = 1000;
	o->mailbox = "INBOX";
	o->ops = "select,fetch-flags,fetch-envelope,search-header,search-body,store";
	o->repeat = 5;
	o->search_word = "invoice";
	o->hold_s = 10;
	o->starttls_cmd = "a STARTTLS";

	while ((ch = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (ch) {
		case O_HOST: o->host = optarg; break;
		case O_PORT: o->port = (int)parse_uint(optarg, "port", 1, 65535); break;
		case O_UNIX: o->unix_path = optarg; break;
		case O_TLS: o->tls = BENCH_TLS_IMPLICIT; break;
		case O_STARTTLS: o->tls = BENCH_TLS_STARTTLS; break;
		case O_PLAIN: o->tls = BENCH_TLS_NONE; break;
		case O_ALPN: o->alpn = optarg; break;
		case O_CLIENTS: o->clients = parse_uint(optarg, "clients", 1, 1000000); break;
		case O_CONCURRENCY: o->concurrency = parse_uint(optarg, "concurrency", 1, 100000); break;
		case O_DURATION: duration = parse_num(optarg, "duration", 0.001, 600); break;
		case O_COUNT: o->count = parse_u64(optarg, "count"); break;
		case O_WARMUP: o->warmup_s = parse_num(optarg, "warmup", 0, 600); break;
		case O_TIMEOUT: timeout = parse_num(optarg, "timeout", 0.1, 3600); break;
		case O_USERS: o->users = parse_uint(optarg, "users", 1, 100000000); break;
		case O_USER_FORMAT: user_format = optarg; break;
		case O_PASSWORD: o->password = optarg; break;
		case O_AUTH_PLAIN: o->auth_plain = true; break;
		case O_SEED: o->seed = parse_u64(optarg, "seed"); break;
		case O_JSON: o->json = true; break;
		case O_SIZE: o->size = parse_uint(optarg, "size", 512, 1 << 30); break;
		case O_CORPUS: o->corpus = optarg; break;
		case O_RCPTS: o->rcpts = parse_uint(optarg, "rcpts", 1, 1000); break;
		case O_RCPT_FORMAT: rcpt_format = optarg; break;
		case O_FROM: o->from = optarg; break;
		case O_OPS_PER_SESSION:
			o->ops_per_session = parse_uint(optarg, "ops-per-session", 0, 1000000);
			break;
		case O_MIX: o->mix = optarg; break;
		case O_IDLE_MS: o->idle_ms = parse_uint(optarg, "idle-ms", 0, 600000); break;
		case O_USER: o->user = optarg; break;
		case O_MAILBOX: o->mailbox = optarg; break;
		case O_OPS: o->ops = optarg; break;
		case O_REPEAT: o->repeat = parse_uint(optarg, "repeat", 1, 1000000); break;
		case O_SEARCH_WORD: o->search_word = optarg; break;
		case O_DELETE: o->delete_msgs = true; break;
		case O_HOLD: o->hold_s = parse_num(optarg, "hold", 0, 86400); break;
		case O_LOGIN: o->login = true; break;
		case O_SELECT: o->select_mailbox = optarg; break;
		case O_STARTTLS_CMD: o->starttls_cmd = optarg; break;
		case O_STARTTLS_OK: o->starttls_ok = optarg; break;
		case O_PID: o->pid = (long)parse_uint(optarg, "pid", 1, 4194304); break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default:
			fputs("tern-bench: see tern-bench --help\n", stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	o->workload = argv[optind];
	if ((wl = find_workload(o->workload)) == NULL)
		bench_die("unknown workload %s (lmtp, imap, imap-bigbox, pop3, idle)", o->workload);

	/* Only loopback, never anything else. */
	if (strcmp(o->host, "127.0.0.1") != 0 && strcmp(o->host, "::1") != 0)
		bench_die("--host %s refused: only 127.0.0.1 or ::1", o->host);
	if (o->port == 0) {
		bool tls = o->tls == BENCH_TLS_IMPLICIT;

		if (wl == &bench_lmtp)
			o->port = 24;
		else if (wl == &bench_pop3)
			o->port = tls ? 995 : 110;
		else
			o->port = tls ? 993 : 143;
	}
	if (strcmp(o->host, "127.0.0.1") == 0)
		uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&o->addr);
	else
		uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&o->addr);
	if (o->unix_path != NULL &&
	    (o->unix_path[0] == '\0' || strlen(o->unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)))
		bench_die("--unix: bad path");

	o->duration_s = duration > 0 ? duration : wl == &bench_imap_bigbox ? 600 : 10;
	o->timeout_s = timeout > 0 ? timeout : wl == &bench_imap_bigbox ? 600
					      : wl == &bench_idle ? 120 : 30;
	if (o->warmup_s >= o->duration_s && !wl->hold)
		bench_die("--warmup must be shorter than --duration");
	if (bench_fmt_parse(user_format, &o->user_fmt, &error) < 0)
		bench_die("--user-format: %s", error);
	if (bench_fmt_parse(rcpt_format, &o->rcpt_fmt, &error) < 0)
		bench_die("--rcpt-format: %s", error);
	if (strlen(o->from) > 200 || strpbrk(o->from, "\r\n<>") != NULL)
		bench_die("--from: too long, or holds CR, LF, < or >");
	if (strlen(o->password) > 200 || strpbrk(o->password, "\r\n") != NULL)
		bench_die("--password: too long or holds CR/LF");
	if (o->starttls_cmd[0] == '\0' || strlen(o->starttls_cmd) > 200)
		bench_die("bad --starttls-cmd");
	return wl;
}

static void raise_nofile(unsigned int clients)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		bench_die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		bench_die("setrlimit: %s", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)clients + 64)
		bench_die("RLIMIT_NOFILE hard limit %llu is too low for %u connections "
			  "(ulimit -Hn)", (unsigned long long)rl.rlim_max, clients);
}

int main(int argc, char **argv)
{
	struct bench_workload *wl = parse_args(argc, argv);
	int status;

	raise_nofile(bench_opt.clients);
	signal(SIGPIPE, SIG_IGN);
	if (bench_opt.tls != BENCH_TLS_NONE)
		bench_tls_init(bench_opt.alpn);

	bench_run(wl);

	if (!bench_opt.json)
		report_human(wl);
	report_json(wl);
	fflush(stdout);
	bench_tls_deinit();
	if (bench_forced())
		status = 1;
	else if (wl->status != NULL)
		status = wl->status();
	else
		status = bench_errors() == 0 ? 0 : 1;
	return status;
}
