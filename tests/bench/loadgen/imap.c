/*
 * imap.c — the mixed IMAP client workload, modelled on what a mail client
 * does in a session.
 *
 * Per session: connect (TLS), LOGIN or AUTHENTICATE PLAIN, SELECT INBOX,
 * one UID SEARCH ALL to learn the messages, then --ops-per-session
 * operations drawn by --mix weights, then LOGOUT. Each client always logs
 * in as the same user (client i: user (i mod --users) + 1), so the
 * messages it appended stay known across its sessions, for expunge.
 *
 *   fetch-new   UID FETCH <last seen + 1>:* of UID, FLAGS, RFC822.SIZE and
 *               the header fields a message list shows (Thunderbird)
 *   fetch-body  UID FETCH <a known message> BODY.PEEK[]
 *   store       UID STORE <a known message> +FLAGS (\Seen), then -FLAGS
 *   append      APPEND INBOX a message of --size (or from --corpus)
 *   expunge     UID STORE +FLAGS (\Deleted) on a message this client
 *               appended, then UID EXPUNGE (UIDPLUS) or EXPUNGE
 *   idle        IDLE until --idle-ms pass or new mail arrives, then DONE
 *   noop        NOOP
 *
 * An operation that needs a message is not drawn while none is known. A
 * NO or BAD reply counts as an error of that operation and the session
 * goes on; a broken connection or a failed login, select or search ends
 * the session (counted) and the client starts a new one.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum mix_op {
	MIX_FETCH_NEW,
	MIX_FETCH_BODY,
	MIX_STORE,
	MIX_APPEND,
	MIX_EXPUNGE,
	MIX_IDLE,
	MIX_NOOP,
	MIX_COUNT,
};

static const char *const mix_names[MIX_COUNT] = {
	"fetch-new", "fetch-body", "store", "append", "expunge", "idle", "noop",
};

enum step {
	ST_LOGIN,
	ST_CAPABILITY,
	ST_SELECT,
	ST_SEARCH,
	ST_MIX,          /* the command of a mix operation */
	ST_STORE_UNSET,  /* store: -FLAGS */
	ST_EXPUNGE_EXPUNGE,
	ST_FETCH_UID,    /* append without UIDPLUS: the UID of the new message */
	ST_IDLE_WAIT,
	ST_IDLE_DONE,
	ST_LOGOUT,
};

#define UIDS_MAX 1000000

struct uid_set {
	uint32_t *v;
	size_t n, cap;
};

struct imap_client {
	struct bench_client cl;
	struct imapc ic;
	enum step step;
	enum mix_op mix;
	unsigned int ops_left;
	bool idle_started, idle_done_sent;
	struct uid_set uids;   /* messages known in INBOX (this session) */
	struct uid_set mine;   /* appended by this client and not expunged */
	uint32_t mine_validity;
	uint32_t last_seen;    /* highest UID seen */
	uint32_t target;       /* the UID the operation works on */
	uint64_t appended;
	char user[256];
	struct bench_msg msg;
};

static unsigned int weights[MIX_COUNT];
static int op_login, op_capability, op_select, op_search, op_fetch_uid, op_logout;
static int op_mix[MIX_COUNT];
static bool warned_no_idle;

static void uid_add(struct uid_set *s, uint32_t uid)
{
	if (s->n == UIDS_MAX)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		s->v = bench_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = uid;
}

static void uid_remove(struct uid_set *s, uint32_t uid)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == uid) {
			s->v[i] = s->v[--s->n];
			return;
		}
	}
}

static int imap_init(const char **error_r)
{
	static char err[256];
	char *spec = bench_xstrdup(bench_opt.mix);
	char *save = NULL;

	/* --mix lists weights; what it leaves out weighs 0. */
	memset(weights, 0, sizeof(weights));
	for (char *item = strtok_r(spec, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		char *end;
		unsigned long w;
		int i;

		if (eq == NULL) {
			snprintf(err, sizeof(err), "--mix: \"%.64s\" is not name=weight", item);
			goto fail;
		}
		*eq = '\0';
		for (i = 0; i < MIX_COUNT; i++)
			if (strcmp(item, mix_names[i]) == 0)
				break;
		w = strtoul(eq + 1, &end, 10);
		if (i == MIX_COUNT || *end != '\0' || eq[1] == '\0' || w > 1000000) {
			snprintf(err, sizeof(err), "--mix: bad entry \"%.64s=%.32s\" (names: "
				 "fetch-new fetch-body store append expunge idle noop)", item, eq + 1);
			goto fail;
		}
		weights[i] = (unsigned int)w;
	}
	free(spec);
	op_login = bench_op_register("login");
	op_capability = bench_op_register("capability");
	op_select = bench_op_register("select");
	op_search = bench_op_register("search-all");
	for (int i = 0; i < MIX_COUNT; i++)
		op_mix[i] = bench_op_register(mix_names[i]);
	op_fetch_uid = bench_op_register("fetch-uid");
	op_logout = bench_op_register("logout");
	return bench_msg_init(true, false, error_r);
fail:
	free(spec);
	*error_r = err;
	return -1;
}

static bool imap_session_begin(struct bench_client *cl)
{
	return bench_take_top();
}

static void imap_greeting(struct bench_client *cl, const char *line)
{
	struct imap_client *c = (struct imap_client *)cl;

	imapc_greeting(&c->ic, line);
}

static void fail_line(struct imap_client *c, const char *what)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "%s: %s", what, c->ic.text != NULL ? c->ic.text : "");
	bench_client_fail(&c->cl, BENCH_FAIL_LINE, msg);
}

static void logout(struct imap_client *c)
{
	c->step = ST_LOGOUT;
	bench_op_begin(&c->cl, op_logout, 0);
	imapc_send(&c->cl, &c->ic, "LOGOUT");
}

/* Draw the next operation among those that can run now. */
static int draw(struct imap_client *c)
{
	unsigned int w[MIX_COUNT], total = 0;
	uint32_t r;

	for (int i = 0; i < MIX_COUNT; i++) {
		w[i] = weights[i];
		if ((i == MIX_FETCH_BODY || i == MIX_STORE) && c->uids.n == 0)
			w[i] = 0;
		if (i == MIX_EXPUNGE && c->mine.n == 0)
			w[i] = 0;
		if (i == MIX_IDLE && w[i] > 0 && !c->ic.idle) {
			if (!warned_no_idle)
				fprintf(stderr, "tern-bench: the server does not offer IDLE: "
					"idle is not drawn\n");
			warned_no_idle = true;
			w[i] = 0;
		}
		total += w[i];
	}
	if (total == 0)
		return -1;
	r = bench_rng_below(&c->cl.rng, total);
	for (int i = 0; i < MIX_COUNT; i++) {
		if (r < w[i])
			return i;
		r -= w[i];
	}
	return -1;
}

static uint32_t random_uid(struct imap_client *c)
{
	return c->uids.v[bench_rng_below(&c->cl.rng, (uint32_t)c->uids.n)];
}

static void next_op(struct imap_client *c)
{
	struct bench_client *cl = &c->cl;
	char to[300];
	int m;

	if (c->ops_left == 0 || bench_stopping()) {
		logout(c);
		return;
	}
	c->ops_left--;
	m = draw(c);
	if (m < 0) {
		logout(c);
		return;
	}
	c->mix = (enum mix_op)m;
	c->step = ST_MIX;
	bench_op_begin(cl, op_mix[m], m == MIX_IDLE ? bench_opt.idle_ms : 0);
	switch (c->mix) {
	case MIX_FETCH_NEW:
		imapc_send(cl, &c->ic, "UID FETCH %u:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
			   "(FROM TO CC SUBJECT DATE MESSAGE-ID)])", c->last_seen + 1);
		break;
	case MIX_FETCH_BODY:
		c->target = random_uid(c);
		imapc_send(cl, &c->ic, "UID FETCH %u BODY.PEEK[]", c->target);
		break;
	case MIX_STORE:
		c->target = random_uid(c);
		imapc_send(cl, &c->ic, "UID STORE %u +FLAGS (\\Seen)", c->target);
		break;
	case MIX_APPEND:
		snprintf(to, sizeof(to), "%s%s", c->user, strchr(c->user, '@') ? "" : "@example.org");
		bench_msg_next(&c->msg, false, c->appended++, cl->id, to);
		imapc_append(cl, &c->ic, "INBOX", &c->msg);
		break;
	case MIX_EXPUNGE:
		c->target = c->mine.v[c->mine.n - 1];
		imapc_send(cl, &c->ic, "UID STORE %u +FLAGS (\\Deleted)", c->target);
		break;
	case MIX_IDLE:
		c->step = ST_IDLE_WAIT;
		c->idle_started = c->idle_done_sent = false;
		imapc_send(cl, &c->ic, "IDLE");
		break;
	case MIX_NOOP:
	case MIX_COUNT:
		imapc_send(cl, &c->ic, "NOOP");
		break;
	}
}

static void idle_done(struct imap_client *c)
{
	if (c->idle_done_sent)
		return;
	c->idle_done_sent = true;
	c->step = ST_IDLE_DONE;
	bench_timer_stop(&c->cl);
	bench_sendf(&c->cl, "DONE\r\n");
}

static void idle_timer_cb(struct bench_client *cl)
{
	struct imap_client *c = (struct imap_client *)cl;

	if (c->step == ST_IDLE_WAIT)
		idle_done(c);
}

static void imap_start(struct bench_client *cl)
{
	struct imap_client *c = (struct imap_client *)cl;

	if (bench_opt.tls == BENCH_TLS_STARTTLS)
		imapc_forget_caps(&c->ic);
	c->uids.n = 0;
	c->last_seen = 0;
	c->ops_left = bench_opt.ops_per_session;
	bench_user_name(cl->id % bench_opt.users, c->user, sizeof(c->user));
	c->step = ST_LOGIN;
	bench_op_begin(cl, op_login, 0);
	imapc_login(cl, &c->ic, c->user, bench_opt.password, bench_opt.auth_plain);
}

static void select_inbox(struct imap_client *c)
{
	c->step = ST_SELECT;
	bench_op_begin(&c->cl, op_select, 0);
	imapc_send(&c->cl, &c->ic, "SELECT INBOX");
}

/* The end of the first command of a mix operation. */
static void mix_reply(struct imap_client *c, bool ok)
{
	struct bench_client *cl = &c->cl;
	const char *v;

	switch (c->mix) {
	case MIX_STORE:
		if (!ok)
			break;
		c->step = ST_STORE_UNSET;
		imapc_send(cl, &c->ic, "UID STORE %u -FLAGS (\\Seen)", c->target);
		return;
	case MIX_EXPUNGE:
		if (!ok)
			break;
		c->step = ST_EXPUNGE_EXPUNGE;
		if (c->ic.uidplus)
			imapc_send(cl, &c->ic, "UID EXPUNGE %u", c->target);
		else
			imapc_send(cl, &c->ic, "EXPUNGE");
		return;
	case MIX_APPEND:
		bench_op_end(cl, ok);
		if (!ok)
			break;
		if ((v = imapc_code(c->ic.text, "APPENDUID")) != NULL) {
			char *end;
			uint32_t validity = (uint32_t)strtoul(v, &end, 10);
			uint32_t uid = (uint32_t)strtoul(end, NULL, 10);

			if (validity != c->mine_validity)
				c->mine.n = 0;
			c->mine_validity = validity;
			if (uid != 0)
				uid_add(&c->mine, uid);
		} else if (!c->ic.uidplus && c->ic.exists > 0) {
			/* The new message is the last one: learn its UID. */
			c->step = ST_FETCH_UID;
			c->target = 0;
			bench_op_begin(cl, op_fetch_uid, 0);
			imapc_send(cl, &c->ic, "FETCH %u (UID)", c->ic.exists);
			return;
		}
		break;
	default:
		break;
	}
	bench_op_end(cl, ok);
	next_op(c);
}

static void tagged(struct imap_client *c)
{
	struct bench_client *cl = &c->cl;
	bool ok = c->ic.status == IMAPC_OK;

	switch (c->step) {
	case ST_LOGIN:
		bench_op_end(cl, ok);
		if (!ok) {
			fail_line(c, "login refused");
		} else if (!c->ic.caps_known) {
			c->step = ST_CAPABILITY;
			bench_op_begin(cl, op_capability, 0);
			imapc_send(cl, &c->ic, "CAPABILITY");
		} else {
			select_inbox(c);
		}
		break;
	case ST_CAPABILITY:
		bench_op_end(cl, ok);
		if (!ok)
			fail_line(c, "CAPABILITY");
		else
			select_inbox(c);
		break;
	case ST_SELECT:
		bench_op_end(cl, ok);
		if (!ok) {
			fail_line(c, "SELECT INBOX");
			break;
		}
		if (c->ic.uidvalidity != c->mine_validity) {
			c->mine.n = 0;
			c->mine_validity = c->ic.uidvalidity;
		}
		c->step = ST_SEARCH;
		bench_op_begin(cl, op_search, 0);
		imapc_send(cl, &c->ic, "UID SEARCH ALL");
		break;
	case ST_SEARCH:
		bench_op_end(cl, ok);
		if (!ok)
			fail_line(c, "UID SEARCH ALL");
		else
			next_op(c);
		break;
	case ST_MIX:
		mix_reply(c, ok);
		break;
	case ST_STORE_UNSET:
		bench_op_end(cl, ok);
		next_op(c);
		break;
	case ST_EXPUNGE_EXPUNGE:
		bench_op_end(cl, ok);
		uid_remove(&c->mine, c->target);
		uid_remove(&c->uids, c->target);
		next_op(c);
		break;
	case ST_FETCH_UID:
		bench_op_end(cl, ok);
		if (ok && c->target != 0)
			uid_add(&c->mine, c->target);
		next_op(c);
		break;
	case ST_IDLE_WAIT: /* the server ended IDLE by itself */
	case ST_IDLE_DONE:
		bench_timer_stop(cl);
		bench_op_end(cl, ok && c->step == ST_IDLE_DONE);
		next_op(c);
		break;
	case ST_LOGOUT:
		bench_session_end(cl, ok);
		break;
	}
}

static void untagged(struct imap_client *c, const char *line)
{
	uint32_t uid;

	switch (c->ic.resp) {
	case IMAPC_RESP_FETCH:
		uid = imapc_fetch_uid(line);
		if (uid == 0)
			break;
		if (c->step == ST_MIX && c->mix == MIX_FETCH_NEW && uid > c->last_seen) {
			uid_add(&c->uids, uid);
			c->last_seen = uid;
		} else if (c->step == ST_FETCH_UID) {
			c->target = uid;
		}
		break;
	case IMAPC_RESP_SEARCH:
		if (c->step != ST_SEARCH || c->ic.fragment)
			break;
		for (const char *p = line + 8; *p != '\0';) {
			char *end;
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			uid_add(&c->uids, (uint32_t)v);
			if (v > c->last_seen)
				c->last_seen = (uint32_t)v;
			p = end;
		}
		break;
	case IMAPC_RESP_EXISTS:
		if (c->step == ST_IDLE_WAIT && c->idle_started)
			idle_done(c);
		break;
	default:
		break;
	}
}

static void imap_line(struct bench_client *cl, char *line, size_t len)
{
	struct imap_client *c = (struct imap_client *)cl;

	switch (imapc_line(cl, &c->ic, line, len)) {
	case IMAPC_NONE:
		break;
	case IMAPC_UNTAGGED:
		untagged(c, line);
		break;
	case IMAPC_CONT:
		if (c->step == ST_IDLE_WAIT && !c->idle_started) {
			c->idle_started = true;
			bench_timer_start(cl, bench_opt.idle_ms, idle_timer_cb);
		} else {
			bench_client_fail(cl, BENCH_FAIL_LINE, line);
		}
		break;
	case IMAPC_TAGGED:
		tagged(c);
		break;
	case IMAPC_GARBAGE:
		bench_client_fail(cl, BENCH_FAIL_LINE, line);
		break;
	}
}

static void imap_done(void)
{
	for (unsigned int i = 0; i < bench_client_count(); i++) {
		struct imap_client *c = (struct imap_client *)bench_client_at(i);
		free(c->uids.v);
		free(c->mine.v);
		c->uids.v = c->mine.v = NULL;
	}
}

static void imap_report(struct bench_json *j)
{
	double s = bench_elapsed_s();
	uint64_t bytes = 0;

	for (int i = 0; i < bench_op_count(); i++)
		bytes += bench_op_get(i)->bytes;
	bench_json_obj(j, "throughput");
	bench_json_num(j, "sessions_per_s", s > 0 ? (double)bench_sessions() / s : 0, 2);
	bench_json_num(j, "mb_per_s", s > 0 ? (double)bytes / s / 1e6 : 0, 3);
	bench_json_end(j);
	bench_json_u64(j, "sessions", bench_sessions());
}

struct bench_workload bench_imap = {
	.name = "imap",
	.client_size = sizeof(struct imap_client),
	.greeting_ok = "* OK",
	.starttls_cmd = "S STARTTLS",
	.starttls_ok = "S OK",
	.reconnect = true,
	.init = imap_init,
	.session_begin = imap_session_begin,
	.greeting = imap_greeting,
	.start = imap_start,
	.line = imap_line,
	.done = imap_done,
	.report = imap_report,
};
