/*
 * client.c — the daemon's side of the auth worker: requests queued on the
 * socketpair from the loop (a uv_pipe_t), replies matched by id, the
 * request timeout, the per-address failure delay and concurrency limit
 * (auth_penalty_*), and one log line per attempt. Also the service_def
 * hooks that start, attach, reload and stop the worker.
 *
 * A request's life: auth_begin takes a penalty slot for the address (or
 * answers AUTH_LIMITED), validates the login names (a bad one is
 * AUTH_FAILED without PAM), then sends the request and waits, bounded by
 * request_timeout. A FAILED or DISABLED answer waits out the address's
 * failure delay on the request's timer. Only then is the slot given back
 * and done_cb called — also for a cancelled request (the session closed),
 * whose done_cb is simply not called, so disconnecting does not get
 * around the delay or the limit. done_cb never runs inside auth_begin: an
 * answer known at once goes through the timer with a zero delay.
 *
 * When the worker is gone for good (the supervisor died), every waiting
 * request and every later one is AUTH_TEMPFAIL.
 */
#include "worker-private.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define REQ_HASH_SIZE 256

enum req_state {
	REQ_WAITING,    /* sent to the worker; the timer is the timeout */
	REQ_ANSWERED,   /* the timer runs out the delay, then delivers */
};

struct auth_request {
	struct auth_request *next, *prev;  /* client->requests */
	struct auth_request *hash_next;    /* client->waiting[id % size] */
	struct auth_client *client;
	uv_timer_t timer;
	enum req_state state;
	uint32_t id;
	bool hashed;
	bool slot;                          /* holds a penalty slot for ip */
	auth_done_cb *done_cb;              /* NULL once cancelled */
	void *data;
	const struct log_ctx *ctx;          /* the session's, until cancelled */
	struct log_ctx ctx_copy;            /* for the log line after that */
	char ip[AUTH_WIRE_IP_MAX + 1];
	char mech[AUTH_WIRE_MECH_MAX + 1];
	char login[AUTH_WIRE_LOGIN_MAX + 1]; /* normalized, for the log */
	uint64_t delay_ms;
	struct auth_wire_reply reply;
};

struct auth_client {
	uv_loop_t *loop;
	uv_pipe_t pipe;
	bool attached;
	bool dead;              /* the worker is gone: answer TEMPFAIL */
	bool stopping;
	int fd;
	pid_t pid;
	unsigned handles_open;  /* pipe and request timers not yet closed */
	struct auth_penalty *penalty;
	uint64_t timeout_ms;
	bool masters;           /* master_users configured */
	char separator;
	uint32_t next_id;
	struct auth_request *requests;
	struct auth_request *waiting[REQ_HASH_SIZE];
	struct buf in;
};

struct write_req {
	uv_write_t req;
	struct buf b;
};

static struct auth_client *process_client;

struct auth_client *auth_client_get(void)
{
	return process_client;
}

static void request_fail(struct auth_request *req, enum auth_result result, const char *detail);

static void client_configure(struct auth_client *client, const struct cfg *cfg)
{
	client->timeout_ms = cfg->auth_request_timeout_ms;
	client->masters = cfg->auth_master_users.count > 0;
	client->separator = cfg->auth_master_separator != NULL ?
		cfg->auth_master_separator[0] : '*';
}

int auth_client_start(const struct cfg *cfg, struct auth_client **client_r)
{
	struct auth_client *client = xcalloc(1, sizeof(*client));

	if (auth__worker_spawn(cfg, &client->fd, &client->pid) < 0) {
		free(client);
		return -1;
	}
	client->penalty = auth_penalty_new(cfg->auth_failure_delay_ms,
					   cfg->auth_failure_delay_max_ms,
					   cfg->auth_max_concurrent_per_ip);
	client_configure(client, cfg);
	buf_init(&client->in, 4 * (AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX));
	process_client = client;
	*client_r = client;
	return 0;
}

void auth_client_reload(struct auth_client *client, const struct cfg *cfg)
{
	auth_penalty_configure(client->penalty, cfg->auth_failure_delay_ms,
			       cfg->auth_failure_delay_max_ms, cfg->auth_max_concurrent_per_ip);
	client_configure(client, cfg);
}

/* ----------------------------------------------------------- requests */

static void request_unhash(struct auth_request *req)
{
	struct auth_client *client = req->client;

	if (!req->hashed)
		return;
	for (struct auth_request **p = &client->waiting[req->id % REQ_HASH_SIZE]; *p != NULL;
	     p = &(*p)->hash_next) {
		if (*p == req) {
			*p = req->hash_next;
			break;
		}
	}
	req->hashed = false;
}

static struct auth_request *request_find(struct auth_client *client, uint32_t id)
{
	for (struct auth_request *r = client->waiting[id % REQ_HASH_SIZE]; r != NULL;
	     r = r->hash_next) {
		if (r->id == id)
			return r;
	}
	return NULL;
}

/* One handle (the pipe, a request's timer) has closed: the client is
 * freed after auth_client_stop once the last one has. */
static void client_handle_gone(struct auth_client *client)
{
	if (--client->handles_open > 0 || !client->stopping)
		return;
	buf_release(&client->in);
	auth_penalty_free(&client->penalty);
	free(client);
}

static void client_pipe_closed_cb(uv_handle_t *h)
{
	client_handle_gone(h->data);
}

static void request_timer_closed_cb(uv_handle_t *h)
{
	struct auth_request *req = h->data;
	struct auth_client *client = req->client;

	mem_wipe(req, sizeof(*req));
	free(req);
	client_handle_gone(client);
}

/* Unlink and free (once the timer handle has closed). */
static void request_free(struct auth_request *req)
{
	struct auth_client *client = req->client;

	request_unhash(req);
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		client->requests = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->timer.data = req;
	uv_close((uv_handle_t *)&req->timer, request_timer_closed_cb);
}

static const char *result_message(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "Logged in.";
	case AUTH_FAILED:
		return "Authentication failed.";
	case AUTH_DISABLED:
		return "Account disabled.";
	case AUTH_TEMPFAIL:
		return "Temporary authentication failure, try again later.";
	case AUTH_LIMITED:
		return "Too many login attempts in progress from your address, try again later.";
	}
	return "Authentication failed.";
}

/* The delay is over (or there was none): give the slot back, answer. */
static void request_deliver(struct auth_request *req)
{
	struct auth_client *client = req->client;
	auth_done_cb *done_cb = req->done_cb;

	if (req->slot) {
		auth_penalty_leave(client->penalty, req->ip);
		req->slot = false;
	}
	if (done_cb != NULL) {
		struct auth_reply reply = {
			.result = req->reply.result,
			.user = req->reply.result == AUTH_OK ? &req->reply.user : NULL,
			.master = req->reply.result == AUTH_OK && req->reply.master[0] != '\0' ?
				req->reply.master : NULL,
			.message = result_message(req->reply.result),
		};
		const struct log_ctx *prev = log_set_ctx(req->ctx);

		req->done_cb = NULL;
		done_cb(&reply, req->data);
		log_set_ctx(prev);
	}
	request_free(req);
}

static void request_timer_cb(uv_timer_t *t)
{
	struct auth_request *req = t->data;

	if (req->state == REQ_WAITING) {
		/* A late reply for this id finds no request and is ignored. */
		log_warn("auth worker did not answer within %llums",
			 (unsigned long long)req->client->timeout_ms);
		request_fail(req, AUTH_TEMPFAIL, "timeout");
		return;
	}
	request_deliver(req);
}

static void request_log(struct auth_request *req)
{
	const struct auth_wire_reply *r = &req->reply;
	const struct log_ctx *prev = log_set_ctx(req->ctx != NULL ? req->ctx : &req->ctx_copy);
	char master[AUTH_NAME_MAX + 16] = "";
	char delay[48] = "";

	if (r->result == AUTH_OK && r->master[0] != '\0')
		snprintf(master, sizeof(master), " master=%s", r->master);
	if (req->delay_ms > 0)
		snprintf(delay, sizeof(delay), " delay=%llums", (unsigned long long)req->delay_ms);
	log_info("auth user=%s remote=%s mech=%s result=%s%s%s%s%s", req->login, req->ip,
		 req->mech, auth_result_name(r->result), master, delay,
		 r->detail[0] != '\0' ? " reason=" : "", r->detail);
	log_set_ctx(prev);
}

/* The answer is known (req->reply): penalty bookkeeping, the log line,
 * then the delay on the timer. */
static void request_answered(struct auth_request *req)
{
	struct auth_client *client = req->client;

	request_unhash(req);
	req->state = REQ_ANSWERED;
	req->delay_ms = 0;
	switch (req->reply.result) {
	case AUTH_OK:
		auth_penalty_succeeded(client->penalty, req->ip);
		break;
	case AUTH_FAILED:
	case AUTH_DISABLED:
		req->delay_ms = auth_penalty_failed(client->penalty, req->ip, uv_now(client->loop));
		break;
	case AUTH_TEMPFAIL:
	case AUTH_LIMITED:
		break;
	}
	request_log(req);
	/* Restarts the timer: from now on it runs out the delay. */
	uv_timer_start(&req->timer, request_timer_cb, req->delay_ms, 0);
}

static void request_fail(struct auth_request *req, enum auth_result result, const char *detail)
{
	memset(&req->reply.user, 0, sizeof(req->reply.user));
	req->reply.master[0] = '\0';
	req->reply.result = result;
	snprintf(req->reply.detail, sizeof(req->reply.detail), "%s", detail);
	request_answered(req);
}

/* ------------------------------------------------------------ the pipe */

static void client_worker_lost(struct auth_client *client, const char *why)
{
	if (client->dead)
		return;
	client->dead = true;
	log_error("auth worker lost (%s): logins fail until the daemon is restarted", why);
	if (!uv_is_closing((uv_handle_t *)&client->pipe))
		uv_close((uv_handle_t *)&client->pipe, client_pipe_closed_cb);
	if (client->pid > 0 && waitpid(client->pid, NULL, WNOHANG) == client->pid)
		client->pid = 0;
	for (struct auth_request *r = client->requests; r != NULL; r = r->next) {
		if (r->state == REQ_WAITING)
			request_fail(r, AUTH_TEMPFAIL, "auth worker lost");
	}
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct auth_client *client = h->data;
	struct buf *in = &client->in;
	size_t room = in->max - in->len;

	if (room > 16384)
		room = 16384;
	if (room == 0 || buf_reserve(in, room) < 0) {
		*b = uv_buf_init(NULL, 0);
		return;
	}
	*b = uv_buf_init((char *)in->data + in->len, (unsigned)room);
}

static void client_reply(struct auth_client *client, const unsigned char *frame, size_t len)
{
	struct auth_wire_reply reply;

	if (auth__reply_decode(frame, len, &reply) < 0) {
		client_worker_lost(client, "malformed reply");
		return;
	}
	struct auth_request *req = request_find(client, reply.id);

	if (req == NULL) {
		log_debug("auth worker: late reply id=%u ignored", reply.id);
		return;
	}
	req->reply = reply;
	request_answered(req);
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
	struct auth_client *client = stream->data;
	struct buf *in = &client->in;

	if (nread == UV_ENOBUFS) {
		client_worker_lost(client, "reply too long");
		return;
	}
	if (nread < 0) {
		client_worker_lost(client, nread == UV_EOF ? "exited" : uv_strerror((int)nread));
		return;
	}
	in->len += (size_t)nread;
	while (!client->dead) {
		ssize_t flen = auth__frame_length(in->data, in->len);

		if (flen < 0) {
			client_worker_lost(client, "corrupt reply stream");
			return;
		}
		if (flen == 0)
			break;
		client_reply(client, in->data, (size_t)flen);
		buf_consume(in, (size_t)flen);
	}
}

int auth_client_attach(struct auth_client *client, struct uv_loop_s *loop)
{
	int ret;

	client->loop = loop;
	ret = uv_pipe_init(loop, &client->pipe, 0);
	if (ret == 0) {
		client->pipe.data = client;
		client->handles_open++;
		client->attached = true;
		ret = uv_pipe_open(&client->pipe, client->fd);
	}
	if (ret == 0)
		ret = uv_read_start((uv_stream_t *)&client->pipe, client_alloc_cb, client_read_cb);
	if (ret < 0) {
		log_error("cannot attach the auth worker: %s", uv_strerror(ret));
		return -1;
	}
	client->fd = -1; /* the pipe owns it */
	return 0;
}

static void client_write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;

	mem_wipe(w->b.data, w->b.len);
	buf_release(&w->b);
	free(w);
	/* A failed write shows as EOF or an error on the read side. */
}

static int client_send(struct auth_client *client, const struct auth_wire_request *wire)
{
	struct write_req *w = xcalloc(1, sizeof(*w));

	buf_init(&w->b, AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX);
	if (auth__request_encode(wire, &w->b) < 0) {
		buf_release(&w->b);
		free(w);
		return -1;
	}
	uv_buf_t ub = uv_buf_init((char *)w->b.data, (unsigned)w->b.len);
	int ret = uv_write(&w->req, (uv_stream_t *)&client->pipe, &ub, 1, client_write_cb);

	if (ret < 0) {
		mem_wipe(w->b.data, w->b.len);
		buf_release(&w->b);
		free(w);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ auth_begin */

/* Normalize one name into out; false when it is not a valid login name. */
static bool name_ok(const char *name, char *out, size_t out_size)
{
	const char *why;

	return auth_name_normalize(name, out, out_size, &why) == 0;
}

/*
 * The login names a request may carry, normalized into wire: authcid is
 * "user", or "user<sep>master" when master users are configured; authzid
 * is empty or a user. false when any part is not a valid name.
 */
static bool request_names(struct auth_client *client, const struct auth_request_info *info,
			  struct auth_wire_request *wire)
{
	char user[AUTH_NAME_MAX + 1], master[AUTH_NAME_MAX + 1];
	const char *authcid = info->authcid != NULL ? info->authcid : "";
	const char *sep = client->masters ? strchr(authcid, client->separator) : NULL;

	if (sep != NULL) {
		size_t n = (size_t)(sep - authcid);
		char part[AUTH_NAME_MAX + 1];

		if (n > AUTH_NAME_MAX)
			return false;
		memcpy(part, authcid, n);
		part[n] = '\0';
		if (!name_ok(part, user, sizeof(user)) || !name_ok(sep + 1, master, sizeof(master)))
			return false;
		snprintf(wire->authcid, sizeof(wire->authcid), "%s%c%s", user, client->separator,
			 master);
	} else {
		if (!name_ok(authcid, user, sizeof(user)))
			return false;
		snprintf(wire->authcid, sizeof(wire->authcid), "%s", user);
	}
	if (info->authzid != NULL && info->authzid[0] != '\0') {
		if (!name_ok(info->authzid, user, sizeof(user)))
			return false;
		snprintf(wire->authzid, sizeof(wire->authzid), "%s", user);
	}
	return true;
}

/* Hand a validated request to the worker and wait for the answer. */
static void request_send(struct auth_request *req, struct auth_wire_request *wire,
			 const char *password)
{
	struct auth_client *client = req->client;

	strcpy(wire->password, password);
	snprintf(wire->mech, sizeof(wire->mech), "%s", req->mech);
	snprintf(wire->remote_ip, sizeof(wire->remote_ip), "%s", req->ip);
	/* Ids are unique among requests in flight: 2^32 of them would have
	 * to wrap while one waits. */
	wire->id = req->id = ++client->next_id;
	if (client->dead || client_send(client, wire) < 0) {
		request_fail(req, AUTH_TEMPFAIL, "auth worker unavailable");
		return;
	}
	req->state = REQ_WAITING;
	req->hashed = true;
	req->hash_next = client->waiting[req->id % REQ_HASH_SIZE];
	client->waiting[req->id % REQ_HASH_SIZE] = req;
	uv_timer_start(&req->timer, request_timer_cb, client->timeout_ms, 0);
}

struct auth_request *auth_begin(struct auth_client *client, const struct auth_request_info *info,
				auth_done_cb *done_cb, void *data)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	const struct log_ctx *ctx = log_set_ctx(NULL);

	log_set_ctx(ctx);
	req->client = client;
	req->done_cb = done_cb;
	req->data = data;
	req->ctx = ctx;
	if (ctx != NULL)
		req->ctx_copy = *ctx;
	snprintf(req->ip, sizeof(req->ip), "%s", info->remote_ip != NULL ? info->remote_ip : "");
	snprintf(req->mech, sizeof(req->mech), "%s", info->mech != NULL ? info->mech : "");
	snprintf(req->login, sizeof(req->login), "(invalid)");
	uv_timer_init(client->loop, &req->timer);
	req->timer.data = req;
	client->handles_open++;
	req->next = client->requests;
	if (client->requests != NULL)
		client->requests->prev = req;
	client->requests = req;

	struct auth_wire_request *wire = xcalloc(1, sizeof(*wire));
	const char *password = info->password != NULL ? info->password : "";
	bool names_ok = request_names(client, info, wire);

	if (names_ok)
		snprintf(req->login, sizeof(req->login), "%s", wire->authcid);
	if (!auth_penalty_enter(client->penalty, req->ip, uv_now(client->loop))) {
		request_fail(req, AUTH_LIMITED, "too many attempts in flight from the address");
	} else {
		req->slot = true;
		if (!names_ok)
			request_fail(req, AUTH_FAILED, "invalid login name");
		else if (strlen(password) > AUTH_WIRE_PASSWORD_MAX)
			request_fail(req, AUTH_FAILED, "password too long");
		else
			request_send(req, wire, password);
	}
	mem_wipe(wire, sizeof(*wire));
	free(wire);
	return req;
}

struct auth_request *auth_begin_conn(struct conn *conn, const char *mech, const char *authzid,
				     const char *authcid, const char *password,
				     auth_done_cb *done_cb, void *data)
{
	const struct auth_request_info info = {
		.mech = mech,
		.authzid = authzid,
		.authcid = authcid,
		.password = password,
		.remote_ip = conn_remote_ip(conn),
	};

	conn_pause(conn);
	return auth_begin(auth_client_get(), &info, done_cb, data);
}

void auth_request_cancel(struct auth_request *req)
{
	if (req->ctx != NULL)
		req->ctx_copy = *req->ctx;
	req->ctx = NULL;
	req->done_cb = NULL;
	req->data = NULL;
}

/* ---------------------------------------------------------------- stop */

/* How long auth_client_stop waits for the worker to exit: 2 s. */
#define STOP_WAIT_STEPS 200
#define STOP_WAIT_STEP_US 10000

void auth_client_stop(struct auth_client **clientp)
{
	struct auth_client *client = *clientp;

	if (client == NULL)
		return;
	*clientp = NULL;
	if (process_client == client)
		process_client = NULL;
	client->stopping = true;
	/* End-of-file on its socket makes the worker exit; SIGKILL makes sure
	 * where it is allowed. It is not while the worker still runs as root
	 * and we already dropped privileges, so the wait is bounded: a worker
	 * left behind exits on the end-of-file, or with us (PDEATHSIG). */
	if (client->pid > 0) {
		shutdown(client->fd, SHUT_RDWR);
		kill(client->pid, SIGKILL);
		for (int i = 0; i < STOP_WAIT_STEPS; i++) {
			pid_t r = waitpid(client->pid, NULL, WNOHANG);

			if (r == client->pid || (r < 0 && errno != EINTR))
				break;
			usleep(STOP_WAIT_STEP_US);
		}
	}
	if (!client->attached) {
		close(client->fd);
		buf_release(&client->in);
		auth_penalty_free(&client->penalty);
		free(client);
		return;
	}
	client->handles_open++; /* held until every request is closed */
	while (client->requests != NULL) {
		client->requests->done_cb = NULL;
		request_free(client->requests);
	}
	if (!uv_is_closing((uv_handle_t *)&client->pipe))
		uv_close((uv_handle_t *)&client->pipe, client_pipe_closed_cb);
	client_handle_gone(client);
}

/* ------------------------------------------------- service_def hooks */

int auth_service_prepare(const struct cfg *cfg)
{
	struct auth_client *client;

	return auth_client_start(cfg, &client);
}

int auth_service_start(struct uv_loop_s *loop)
{
	if (process_client == NULL)
		return -1;
	return auth_client_attach(process_client, loop);
}

void auth_service_reload(const struct cfg *cfg)
{
	if (process_client != NULL)
		auth_client_reload(process_client, cfg);
}

void auth_service_stop(void)
{
	struct auth_client *client = process_client;

	auth_client_stop(&client);
}
