/*
 * worker.c — the auth worker: the process that runs PAM for a daemon, and
 * the wire format it speaks with the daemon (worker-private.h).
 *
 * PAM modules may block for seconds, crash, or want privileges the daemon
 * gives up, so PAM never runs in the daemon (DESIGN.md, Auth). The daemon
 * forks the worker as root before it drops privileges. Two processes:
 *
 *   supervisor  forked by the daemon. Closes every inherited descriptor
 *               but its end of the socketpair (listeners must not leak),
 *               drops to mail_user (plus the shadow group for system users,
 *               as pam_unix reads /etc/shadow), is not dumpable, and dies
 *               with the daemon (PR_SET_PDEATHSIG). It runs no PAM itself:
 *               it relays frames between the daemon and the checker and
 *               remembers which requests the checker holds, so that when
 *               the checker dies (a PAM module crashed) or hangs, those
 *               requests are answered AUTH_TEMPFAIL and a new checker is
 *               started. One thread, poll(2).
 *   checker     forked by the supervisor: a reader thread queues requests
 *               and cfg->auth_worker_threads threads each run one check at
 *               a time: auth_identity_resolve, auth_pam_check (one PAM
 *               handle per check), then auth_directory_lookup of the target
 *               user under a mutex (one shared directory handle).
 *
 * Passwords are wiped from every buffer once relayed or checked, and never
 * logged. Nothing read from the socket is trusted: frame lengths are
 * bounded, every field is checked against its limit, and a corrupt stream
 * ends the conversation.
 */
#include "worker-private.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Requests the checker may hold queued or running; more are refused at
 * once with AUTH_TEMPFAIL (the daemon's per-address limit and timeout
 * normally keep far below this). */
#define CHECKER_QUEUE_MAX 4096
/* A new checker at most this often, so a module that crashes on every
 * request does not turn the supervisor into a fork loop. */
#define RESPAWN_INTERVAL_MS 200
/* A checker holding a request this long past request_timeout is hung (a
 * PAM module that never returns): it is killed and replaced. */
#define HANG_GRACE_MS 5000
/* Input buffered from one peer: a few whole frames. */
#define STREAM_BUF_MAX (4 * (AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX))

/*
 * PAM modules hash with libcrypt (pam_unix calls crypt_r). This reference
 * links libcrypt into every program that runs the worker, so that it is
 * loaded at start-up: sanitizer runtimes resolve their crypt_r interceptor
 * then, and a libcrypt arriving later with a dlopen'ed module would be
 * called through a NULL pointer in ASan builds. (crypt_rn, because the
 * runtime defines crypt_r itself, which would satisfy the reference.)
 */
__attribute__((used)) static char *(*const keep_libcrypt)(const char *, const char *, void *,
							    int) = crypt_rn;

/* ------------------------------------------------------------ wire format */

static void put_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

static void put_u16(struct buf *b, uint16_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	buf_append(b, x, 2);
}

static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 8), (unsigned char)v };

	buf_append(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

static void put_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	put_u16(b, (uint16_t)n);
	buf_append(b, s, n);
}

static bool fits(const char *s, size_t max)
{
	return strnlen(s, max + 1) <= max;
}

/* Start a frame: the length is patched in by frame_end. */
static size_t frame_begin(struct buf *b, enum auth_wire_type type, uint32_t id)
{
	size_t start = b->len;

	put_u32(b, 0);
	put_u8(b, (uint8_t)type);
	put_u32(b, id);
	return start;
}

static void frame_end(struct buf *b, size_t start)
{
	uint32_t n = (uint32_t)(b->len - start - 4);
	unsigned char *p = b->data + start;

	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
}

int auth__request_encode(const struct auth_wire_request *req, struct buf *out)
{
	if (!fits(req->mech, AUTH_WIRE_MECH_MAX) || !fits(req->authzid, AUTH_WIRE_LOGIN_MAX) ||
	    !fits(req->authcid, AUTH_WIRE_LOGIN_MAX) ||
	    !fits(req->password, AUTH_WIRE_PASSWORD_MAX) ||
	    !fits(req->remote_ip, AUTH_WIRE_IP_MAX))
		return -1;
	if (buf_reserve(out, AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX) < 0)
		return -1;
	size_t start = frame_begin(out, AUTH_WIRE_REQUEST, req->id);

	put_str(out, req->mech);
	put_str(out, req->authzid);
	put_str(out, req->authcid);
	put_str(out, req->password);
	put_str(out, req->remote_ip);
	frame_end(out, start);
	return 0;
}

int auth__reply_encode(const struct auth_wire_reply *reply, struct buf *out)
{
	const struct auth_user *u = &reply->user;

	if (!fits(reply->master, AUTH_NAME_MAX) || !fits(reply->detail, AUTH_WIRE_DETAIL_MAX) ||
	    !fits(u->name, AUTH_NAME_MAX) || !fits(u->mail_dir, AUTH_WIRE_PATH_MAX))
		return -1;
	if (buf_reserve(out, AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX) < 0)
		return -1;
	size_t start = frame_begin(out, AUTH_WIRE_REPLY, reply->id);

	put_u8(out, (uint8_t)reply->result);
	put_str(out, reply->master);
	put_str(out, reply->detail);
	put_str(out, u->name);
	put_str(out, u->mail_dir);
	put_u8(out, u->enabled ? 1 : 0);
	put_u64(out, u->quota_bytes);
	put_u64(out, u->quota_messages);
	put_u64(out, (uint64_t)u->created);
	put_u64(out, (uint64_t)u->updated);
	frame_end(out, start);
	return 0;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ssize_t auth__frame_length(const unsigned char *data, size_t len)
{
	if (len < 4)
		return 0;
	uint32_t n = get_u32(data);

	if (n < AUTH_WIRE_HEADER - 4 || n > AUTH_WIRE_BODY_MAX)
		return -1;
	if (len < (size_t)n + 4)
		return 0;
	return (ssize_t)n + 4;
}

/* A bounds-checked reader over one frame. */
struct reader {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static const unsigned char *take(struct reader *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;

	r->p += n;
	r->left -= n;
	return p;
}

static uint8_t get8(struct reader *r)
{
	const unsigned char *p = take(r, 1);

	return p != NULL ? p[0] : 0;
}

static uint64_t get64(struct reader *r)
{
	const unsigned char *p = take(r, 8);

	return p != NULL ? (uint64_t)get_u32(p) << 32 | get_u32(p + 4) : 0;
}

/* A string field into out (max bytes plus NUL); no NUL may be inside. */
static void get_str(struct reader *r, char *out, size_t max)
{
	const unsigned char *p = take(r, 2);

	out[0] = '\0';
	if (p == NULL)
		return;
	size_t n = (size_t)p[0] << 8 | p[1];

	if (n > max) {
		r->bad = true;
		return;
	}
	p = take(r, n);
	if (p == NULL)
		return;
	if (memchr(p, '\0', n) != NULL) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

/* Check the header of a complete frame; the reader then covers the fields. */
static int frame_open(const unsigned char *frame, size_t len, enum auth_wire_type type,
		      struct reader *r, uint32_t *id_r)
{
	if (len < AUTH_WIRE_HEADER || auth__frame_length(frame, len) != (ssize_t)len ||
	    frame[4] != type)
		return -1;
	*id_r = get_u32(frame + 5);
	r->p = frame + AUTH_WIRE_HEADER;
	r->left = len - AUTH_WIRE_HEADER;
	r->bad = false;
	return 0;
}

int auth__request_decode(const unsigned char *frame, size_t len, struct auth_wire_request *req_r)
{
	struct reader r;

	memset(req_r, 0, sizeof(*req_r));
	if (frame_open(frame, len, AUTH_WIRE_REQUEST, &r, &req_r->id) < 0)
		return -1;
	get_str(&r, req_r->mech, AUTH_WIRE_MECH_MAX);
	get_str(&r, req_r->authzid, AUTH_WIRE_LOGIN_MAX);
	get_str(&r, req_r->authcid, AUTH_WIRE_LOGIN_MAX);
	get_str(&r, req_r->password, AUTH_WIRE_PASSWORD_MAX);
	get_str(&r, req_r->remote_ip, AUTH_WIRE_IP_MAX);
	if (r.bad || r.left != 0) {
		mem_wipe(req_r->password, sizeof(req_r->password));
		return -1;
	}
	return 0;
}

int auth__reply_decode(const unsigned char *frame, size_t len, struct auth_wire_reply *reply_r)
{
	struct reader r;
	struct auth_user *u = &reply_r->user;

	memset(reply_r, 0, sizeof(*reply_r));
	if (frame_open(frame, len, AUTH_WIRE_REPLY, &r, &reply_r->id) < 0)
		return -1;
	uint8_t result = get8(&r);

	get_str(&r, reply_r->master, AUTH_NAME_MAX);
	get_str(&r, reply_r->detail, AUTH_WIRE_DETAIL_MAX);
	get_str(&r, u->name, AUTH_NAME_MAX);
	get_str(&r, u->mail_dir, AUTH_WIRE_PATH_MAX);
	u->enabled = get8(&r) != 0;
	u->quota_bytes = get64(&r);
	u->quota_messages = get64(&r);
	u->created = (int64_t)get64(&r);
	u->updated = (int64_t)get64(&r);
	if (r.bad || r.left != 0 || result > AUTH_LIMITED)
		return -1;
	reply_r->result = (enum auth_result)result;
	return 0;
}

/* ----------------------------------------------------- shared utilities */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Drop the first n bytes, wiping every byte that no longer holds data (a
 * consumed request carries a password). */
static void consume_wipe(struct buf *b, size_t n)
{
	size_t old_len = b->len;

	if (old_len == 0)
		return;
	mem_wipe(b->data, n);
	buf_consume(b, n);
	mem_wipe(b->data + b->len, old_len - b->len);
}

/* Read what the socket has into b: > 0 bytes read, 0 on EOF, -1 on error
 * (EINTR/EAGAIN count as 1: nothing new, try again). */
static ssize_t read_into(int fd, struct buf *b)
{
	size_t room = b->max - b->len;

	if (room == 0 || buf_reserve(b, room < 16384 ? room : 16384) < 0)
		return -1;
	ssize_t n = read(fd, b->data + b->len, b->cap - b->len);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	b->len += (size_t)n;
	b->data[b->len] = '\0';
	return n;
}

static int send_reply(int fd, const struct auth_wire_reply *reply)
{
	struct buf out;
	int ret;

	buf_init(&out, AUTH_WIRE_HEADER + AUTH_WIRE_BODY_MAX);
	ret = auth__reply_encode(reply, &out);
	if (ret == 0)
		ret = write_all(fd, out.data, out.len);
	buf_release(&out);
	return ret;
}

static int send_tempfail(int fd, uint32_t id, const char *detail)
{
	struct auth_wire_reply reply;

	memset(&reply, 0, sizeof(reply));
	reply.id = id;
	reply.result = AUTH_TEMPFAIL;
	snprintf(reply.detail, sizeof(reply.detail), "%s", detail);
	return send_reply(fd, &reply);
}

/* ---------------------------------------------------------------- checker */

struct job {
	struct job *next;
	struct auth_wire_request req;
};

struct checker {
	const struct cfg *cfg;
	int fd;
	pthread_mutex_t lock;   /* queue, count, and writes to fd */
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned queued;        /* queued or running */
	pthread_mutex_t dir_lock;
	struct auth_directory *dir;
};

static void checker_send(struct checker *ck, const struct auth_wire_reply *reply)
{
	pthread_mutex_lock(&ck->lock);
	if (send_reply(ck->fd, reply) < 0) {
		/* The supervisor is gone: nothing left to do. */
		_exit(0);
	}
	pthread_mutex_unlock(&ck->lock);
}

/* After PAM said yes: does the target user exist, and may it log in? */
static enum auth_result checker_lookup(struct checker *ck, const char *target,
				       struct auth_wire_reply *reply)
{
	enum auth_lookup_result found;
	char *error = NULL;

	pthread_mutex_lock(&ck->dir_lock);
	if (ck->dir == NULL && auth_directory_open(ck->cfg, &ck->dir, &error) < 0) {
		pthread_mutex_unlock(&ck->dir_lock);
		log_error("auth worker: cannot open the user directory: %s", error);
		snprintf(reply->detail, sizeof(reply->detail), "user directory unavailable");
		free(error);
		return AUTH_TEMPFAIL;
	}
	found = auth_directory_lookup(ck->dir, target, &reply->user);
	pthread_mutex_unlock(&ck->dir_lock);
	switch (found) {
	case AUTH_LOOKUP_FOUND:
		if (!reply->user.enabled) {
			snprintf(reply->detail, sizeof(reply->detail), "account disabled");
			return AUTH_DISABLED;
		}
		return AUTH_OK;
	case AUTH_LOOKUP_NOT_FOUND:
		snprintf(reply->detail, sizeof(reply->detail), "no such user");
		return AUTH_FAILED;
	case AUTH_LOOKUP_TEMPFAIL:
		break;
	}
	snprintf(reply->detail, sizeof(reply->detail), "user directory unavailable");
	return AUTH_TEMPFAIL;
}

static void checker_run(struct checker *ck, struct auth_wire_request *req,
			struct auth_wire_reply *reply)
{
	char pam_user[AUTH_NAME_MAX + 1], target[AUTH_NAME_MAX + 1], master[AUTH_NAME_MAX + 1];

	memset(reply, 0, sizeof(*reply));
	reply->id = req->id;
	pam_user[0] = target[0] = master[0] = '\0';
	if (auth_identity_resolve(ck->cfg, req->authcid, req->authzid, pam_user, target, master,
				  sizeof(target)) < 0) {
		reply->result = AUTH_FAILED;
		snprintf(reply->detail, sizeof(reply->detail), "login as another user not allowed");
		return;
	}
	reply->result = auth_pam_check(ck->cfg, pam_user, req->password, req->remote_ip,
				       reply->detail, sizeof(reply->detail));
	mem_wipe(req->password, sizeof(req->password));
	if (reply->result != AUTH_OK)
		return;
	reply->result = checker_lookup(ck, target, reply);
	if (reply->result == AUTH_OK)
		snprintf(reply->master, sizeof(reply->master), "%s", master);
	else
		memset(&reply->user, 0, sizeof(reply->user));
}

static void *checker_thread(void *arg)
{
	struct checker *ck = arg;
	struct auth_wire_reply reply;

	for (;;) {
		pthread_mutex_lock(&ck->lock);
		while (ck->head == NULL)
			pthread_cond_wait(&ck->cond, &ck->lock);
		struct job *job = ck->head;

		ck->head = job->next;
		if (ck->head == NULL)
			ck->tail = NULL;
		pthread_mutex_unlock(&ck->lock);

		checker_run(ck, &job->req, &reply);
		mem_wipe(job, sizeof(*job));
		free(job);
		checker_send(ck, &reply);
		pthread_mutex_lock(&ck->lock);
		ck->queued--;
		pthread_mutex_unlock(&ck->lock);
	}
	return NULL;
}

/* Queue one request frame, or refuse it at once. */
static void checker_accept(struct checker *ck, const unsigned char *frame, size_t len)
{
	struct job *job = xcalloc(1, sizeof(*job));

	if (auth__request_decode(frame, len, &job->req) < 0) {
		/* The supervisor relays only what it parsed as a frame; a bad
		 * body still gets an answer so the request does not hang. */
		log_error("auth worker: malformed request");
		pthread_mutex_lock(&ck->lock);
		send_tempfail(ck->fd, len >= AUTH_WIRE_HEADER ? get_u32(frame + 5) : 0,
			      "malformed request");
		pthread_mutex_unlock(&ck->lock);
		free(job);
		return;
	}
	pthread_mutex_lock(&ck->lock);
	if (ck->queued >= CHECKER_QUEUE_MAX) {
		uint32_t id = job->req.id;

		mem_wipe(job, sizeof(*job));
		free(job);
		send_tempfail(ck->fd, id, "auth worker queue full");
		pthread_mutex_unlock(&ck->lock);
		return;
	}
	ck->queued++;
	if (ck->tail != NULL)
		ck->tail->next = job;
	else
		ck->head = job;
	ck->tail = job;
	pthread_cond_signal(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
}

static _Noreturn void checker_main(const struct cfg *cfg, int fd, pid_t supervisor)
{
	struct checker ck;
	struct buf in;
	unsigned started = 0;

	/* Die with the supervisor; re-check in case it died before the call. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_DUMPABLE, 0);
	if (getppid() != supervisor)
		_exit(0);
	memset(&ck, 0, sizeof(ck));
	ck.cfg = cfg;
	ck.fd = fd;
	pthread_mutex_init(&ck.lock, NULL);
	pthread_cond_init(&ck.cond, NULL);
	pthread_mutex_init(&ck.dir_lock, NULL);
	for (uint32_t i = 0; i < cfg->auth_worker_threads; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, checker_thread, &ck);

		if (err != 0) {
			log_error_errno(err, "auth worker: cannot start a thread");
			break;
		}
		pthread_detach(t);
		started++;
	}
	if (started == 0)
		_exit(1);
	log_debug("auth worker checker started pid=%d threads=%u", (int)getpid(), started);

	buf_init(&in, STREAM_BUF_MAX);
	for (;;) {
		ssize_t n = read_into(fd, &in);

		if (n <= 0)
			_exit(n == 0 ? 0 : 1);
		for (;;) {
			ssize_t flen = auth__frame_length(in.data, in.len);

			if (flen < 0) {
				log_error("auth worker: corrupt request stream");
				_exit(1);
			}
			if (flen == 0)
				break;
			checker_accept(&ck, in.data, (size_t)flen);
			consume_wipe(&in, (size_t)flen);
		}
	}
}

/* ------------------------------------------------------------- supervisor */

struct inflight {
	uint32_t id;
	uint64_t since_ms;
};

struct supervisor {
	const struct cfg *cfg;
	int dfd;                /* to the daemon */
	int cfd;                /* to the checker, -1 while there is none */
	pid_t checker;
	uint64_t last_spawn_ms;
	struct buf din, cin;
	struct inflight *inflight;
	size_t n_inflight;
};

static void supervisor_spawn(struct supervisor *sv)
{
	int sp[2];
	pid_t pid;

	sv->last_spawn_ms = now_ms();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		log_error_errno(errno, "auth worker: socketpair");
		return;
	}
	/* _Fork: no atfork handlers. libuv's would close the fd numbers its
	 * signal pipe had in the daemon, which here are our sockets. The
	 * supervisor is single-threaded, so the child may use malloc. */
	pid = _Fork();
	if (pid < 0) {
		log_error_errno(errno, "auth worker: fork");
		close(sp[0]);
		close(sp[1]);
		return;
	}
	if (pid == 0) {
		pid_t parent = getppid();

		/* The checker sees only its own requests. */
		close(sv->dfd);
		close(sp[0]);
		consume_wipe(&sv->din, sv->din.len);
		checker_main(sv->cfg, sp[1], parent);
	}
	close(sp[1]);
	sv->cfd = sp[0];
	sv->checker = pid;
}

/* The checker is gone (or must go): reap it, and answer what it held. */
static void supervisor_lost_checker(struct supervisor *sv, const char *why)
{
	int status = 0;

	kill(sv->checker, SIGKILL);
	while (waitpid(sv->checker, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		log_error("auth worker: checker pid=%d killed by signal %d (%s), in_flight=%zu",
			  (int)sv->checker, WTERMSIG(status), why, sv->n_inflight);
	else
		log_error("auth worker: checker pid=%d exited with status %d (%s), in_flight=%zu",
			  (int)sv->checker, WEXITSTATUS(status), why, sv->n_inflight);
	close(sv->cfd);
	sv->cfd = -1;
	sv->checker = 0;
	consume_wipe(&sv->cin, sv->cin.len);
	for (size_t i = 0; i < sv->n_inflight; i++) {
		if (send_tempfail(sv->dfd, sv->inflight[i].id, "auth worker process died") < 0)
			_exit(0);
	}
	sv->n_inflight = 0;
}

static void supervisor_from_daemon(struct supervisor *sv, const unsigned char *frame, size_t len)
{
	uint32_t id = get_u32(frame + 5);

	if (frame[4] != AUTH_WIRE_REQUEST) {
		log_error("auth worker: unexpected message type %u from the daemon", frame[4]);
		return;
	}
	if (sv->cfd < 0 || sv->n_inflight >= CHECKER_QUEUE_MAX) {
		if (send_tempfail(sv->dfd, id, sv->cfd < 0 ? "auth worker restarting" :
				  "auth worker queue full") < 0)
			_exit(0);
		return;
	}
	if (write_all(sv->cfd, frame, len) < 0) {
		supervisor_lost_checker(sv, "write failed");
		send_tempfail(sv->dfd, id, "auth worker process died");
		return;
	}
	sv->inflight[sv->n_inflight].id = id;
	sv->inflight[sv->n_inflight].since_ms = now_ms();
	sv->n_inflight++;
}

/* A reply from the checker: forward it if its request is still held. */
static int supervisor_from_checker(struct supervisor *sv, const unsigned char *frame, size_t len)
{
	uint32_t id = get_u32(frame + 5);

	if (frame[4] != AUTH_WIRE_REPLY)
		return -1;
	for (size_t i = 0; i < sv->n_inflight; i++) {
		if (sv->inflight[i].id == id) {
			sv->inflight[i] = sv->inflight[--sv->n_inflight];
			if (write_all(sv->dfd, frame, len) < 0)
				_exit(0);
			return 0;
		}
	}
	log_warn("auth worker: reply to unknown request id=%u", id);
	return 0;
}

/* Split the buffered stream into frames: -1 when it is corrupt. */
static int supervisor_frames(struct supervisor *sv, struct buf *b, bool from_daemon)
{
	for (;;) {
		ssize_t flen = auth__frame_length(b->data, b->len);

		if (flen < 0)
			return -1;
		if (flen == 0)
			return 0;
		if (from_daemon) {
			supervisor_from_daemon(sv, b->data, (size_t)flen);
		} else if (supervisor_from_checker(sv, b->data, (size_t)flen) < 0) {
			return -1;
		}
		consume_wipe(b, (size_t)flen);
		/* A lost checker empties cin under our feet. */
		if (!from_daemon && sv->cfd < 0)
			return 0;
	}
}

static uint64_t oldest_inflight_ms(const struct supervisor *sv)
{
	uint64_t oldest = UINT64_MAX;

	for (size_t i = 0; i < sv->n_inflight; i++) {
		if (sv->inflight[i].since_ms < oldest)
			oldest = sv->inflight[i].since_ms;
	}
	return oldest;
}

static _Noreturn void supervisor_main(const struct cfg *cfg, int dfd)
{
	struct supervisor sv;
	uint64_t hang_ms = cfg->auth_request_timeout_ms + HANG_GRACE_MS;

	memset(&sv, 0, sizeof(sv));
	sv.cfg = cfg;
	sv.dfd = dfd;
	sv.cfd = -1;
	sv.inflight = xcalloc(CHECKER_QUEUE_MAX, sizeof(*sv.inflight));
	buf_init(&sv.din, STREAM_BUF_MAX);
	buf_init(&sv.cin, STREAM_BUF_MAX);
	supervisor_spawn(&sv);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sv.dfd, .events = POLLIN },
			{ .fd = sv.cfd, .events = POLLIN },
		};
		int timeout = -1;
		uint64_t now = now_ms();

		if (sv.cfd < 0) {
			uint64_t at = sv.last_spawn_ms + RESPAWN_INTERVAL_MS;

			timeout = at > now ? (int)(at - now) : 0;
		} else if (sv.n_inflight > 0) {
			uint64_t at = oldest_inflight_ms(&sv) + hang_ms;

			timeout = at > now ? (int)(at - now) : 0;
		}
		if (poll(pfd, sv.cfd >= 0 ? 2 : 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error_errno(errno, "auth worker: poll");
			_exit(1);
		}
		now = now_ms();
		if (sv.cfd < 0) {
			if (now >= sv.last_spawn_ms + RESPAWN_INTERVAL_MS)
				supervisor_spawn(&sv);
		} else if (sv.n_inflight > 0 && now >= oldest_inflight_ms(&sv) + hang_ms) {
			supervisor_lost_checker(&sv, "a check hung");
		}
		if (sv.cfd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read_into(sv.cfd, &sv.cin);

			if (n <= 0)
				supervisor_lost_checker(&sv, n == 0 ? "exited" : "read error");
			else if (supervisor_frames(&sv, &sv.cin, false) < 0)
				supervisor_lost_checker(&sv, "corrupt reply stream");
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read_into(sv.dfd, &sv.din);

			if (n <= 0 || supervisor_frames(&sv, &sv.din, true) < 0) {
				if (n > 0)
					log_error("auth worker: corrupt request stream from the daemon");
				if (sv.cfd >= 0) {
					kill(sv.checker, SIGKILL);
					waitpid(sv.checker, NULL, 0);
				}
				_exit(0);
			}
		}
	}
}

/* --------------------------------------------------------------- start-up */

/* Become mail_user, keeping the shadow group for pam_unix when the users
 * are system users. Not root (tests): nothing to drop. */
static int worker_drop_privileges(const struct cfg *cfg)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->mail_user);

	if (pw == NULL || pw->pw_uid == 0) {
		log_error("auth worker: mail_user %s does not exist or is root", cfg->mail_user);
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	int n = 0;

	getgrouplist(pw->pw_name, gid, NULL, &n);
	gid_t *groups = xcalloc((size_t)n + 2, sizeof(*groups));

	if (getgrouplist(pw->pw_name, gid, groups, &n) < 0)
		n = 0;
	if (cfg->auth_users == CFG_USERS_SYSTEM) {
		struct group *gr = getgrnam("shadow");

		if (gr == NULL) {
			/* unix_chkpwd checks only its caller's own password,
			 * so without the group pam_unix refuses everyone. */
			log_warn("auth worker: no shadow group: pam_unix cannot read "
				 "/etc/shadow, so system users cannot log in");
		} else {
			bool have = false;

			for (int i = 0; i < n; i++)
				have = have || groups[i] == gr->gr_gid;
			if (!have)
				groups[n++] = gr->gr_gid;
		}
	}
	int ret = setgroups((size_t)n, groups);

	free(groups);
	if (ret < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		log_error_errno(errno, "auth worker: cannot drop privileges to %s", cfg->mail_user);
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		log_error("auth worker: privileges could be regained");
		return -1;
	}
	return 0;
}

static _Noreturn void worker_main(const struct cfg *cfg, int fd, pid_t daemon)
{
	/* Only the socketpair and stdio stay open. syslog's socket would be
	 * closed too: close it properly, it reopens on the next line. */
	if (cfg->log_target == LOG_TARGET_SYSLOG)
		closelog();
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	signal(SIGINT, SIG_IGN); /* a terminal's ^C is the daemon's to handle */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (worker_drop_privileges(cfg) < 0)
		_exit(1);
	/* After the credential change, which resets both settings. */
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != daemon)
		_exit(0);
	log_info("auth worker started pid=%d threads=%u users=%s", (int)getpid(),
		 cfg->auth_worker_threads,
		 cfg->auth_users == CFG_USERS_SYSTEM ? "system" : "virtual");
	supervisor_main(cfg, fd);
}

int auth__worker_spawn(const struct cfg *cfg, int *fd_r, pid_t *pid_r)
{
	int sp[2];
	pid_t daemon = getpid();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		log_error_errno(errno, "auth worker: socketpair");
		return -1;
	}
	pid_t pid = fork();

	if (pid < 0) {
		log_error_errno(errno, "auth worker: fork");
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0) {
		close(sp[0]);
		worker_main(cfg, sp[1], daemon);
	}
	close(sp[1]);
	*fd_r = sp[0];
	*pid_r = pid;
	return 0;
}
