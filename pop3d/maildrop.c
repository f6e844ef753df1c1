/*
 * maildrop.c — the user's INBOX as POP3 sees it (RFC 1939 §5-6).
 *
 * Opening (a thread-pool job after a good password): the user's store is
 * opened (created on first login), the POP3 lock is taken, INBOX is
 * opened, and its messages at that moment become the session's list:
 * message numbers, CRLF sizes and UIDs are fixed until QUIT. Messages
 * delivered during the session appear in the next one (RFC 1939 §5);
 * messages expunged meanwhile by IMAP or another program stay listed, and
 * RETR of one answers -ERR.
 *
 * The lock (RFC 1939 §8 "exclusive-access lock"): flock(LOCK_EX|LOCK_NB)
 * on <user_dir>/tern-pop3.lock, held for the session and released when
 * the maildrop closes, after UPDATE's expunge. It only excludes other POP3
 * sessions, in this process or another: IMAP and LMTP never take it. A
 * second login gets -ERR [IN-USE] (RFC 2449 §8.1.1). The lock file's
 * modification time is the last login, for LOGIN-DELAY.
 *
 * UIDLs come from UIDVALIDITY and UID, which the storage keeps across
 * sessions, index rebuilds and IMAP use ([pop3] uidl_format, docs/pop3.md).
 *
 * UPDATE (QUIT in TRANSACTION): the DELE'd messages are expunged and the
 * ones retrieved whole get \Seen (so IMAP shows them read), in a job; a
 * connection that drops instead deletes nothing.
 */
#include "pop3-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define LOCK_NAME "tern-pop3.lock"

/* ------------------------------------------------------------- opening */

void pop3__maildrop_close(struct pop3_maildrop **mdp)
{
	struct pop3_maildrop *md = *mdp;

	if (md == NULL)
		return;
	*mdp = NULL;
	store_mailbox_close(&md->mb);
	store_cache_put(md->user_dir, &md->quota, &md->store);
	if (md->lock_fd >= 0)
		close(md->lock_fd);
	free(md->msgs);
	free(md->user_dir);
	free(md);
}

struct close_req {
	uv_work_t req;
	struct pop3_maildrop *md;
};

static void close_work(uv_work_t *req)
{
	struct close_req *cr = req->data;

	pop3__maildrop_close(&cr->md);
}

static void close_after(uv_work_t *req, int status)
{
	free(req->data);
}

void pop3__maildrop_close_async(struct pop3_maildrop **mdp)
{
	struct close_req *cr;

	if (*mdp == NULL)
		return;
	cr = xcalloc(1, sizeof(*cr));
	cr->md = *mdp;
	cr->req.data = cr;
	*mdp = NULL;
	if (uv_queue_work(pop3__loop, &cr->req, close_work, close_after) < 0) {
		pop3__maildrop_close(&cr->md);
		free(cr);
	}
}

/* Take the lock: 1 taken, 0 held by another session, -1 error. The
 * file's mtime is the last login; a new file has none. */
static int lock_take(struct pop3_open_job *job, struct pop3_maildrop *md)
{
	char path[4096];
	bool created = false;
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", md->user_dir, LOCK_NAME);
	md->lock_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (md->lock_fd >= 0)
		created = true;
	else if (errno == EEXIST)
		md->lock_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (md->lock_fd < 0) {
		snprintf(job->error, sizeof(job->error), "open %.180s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(md->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return 0;
		snprintf(job->error, sizeof(job->error), "flock %.180s: %s", path, strerror(errno));
		return -1;
	}
	if (job->login_delay_ms > 0 && !created && fstat(md->lock_fd, &st) == 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		int64_t since_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
				   (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;

		if (since_ms >= 0 && (uint64_t)since_ms < job->login_delay_ms) {
			job->result = POP3_OPEN_LOGIN_DELAY;
			return 0;
		}
	}
	return 1;
}

/* The login time, for the next LOGIN-DELAY check. */
static void lock_touch(struct pop3_maildrop *md)
{
	if (futimens(md->lock_fd, NULL) < 0)
		log_warn_errno(errno, "cannot set the time of the POP3 lock file");
}

void pop3__open_work(void *data)
{
	struct pop3_open_job *job = data;
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	const struct store_user_options opt = { .create = true, .quota = &job->quota };
	struct store_error err = { 0 };
	int ret;

	md->lock_fd = -1;
	md->user_dir = xstrdup(job->user_dir);
	md->quota = job->quota;
	job->result = POP3_OPEN_FAILED;
	md->store = store_cache_take(md->user_dir, &md->quota);
	if (md->store == NULL && store_user_open(md->user_dir, &opt, &md->store, &err) < 0) {
		snprintf(job->error, sizeof(job->error), "%s", err.msg);
		goto fail;
	}
	ret = lock_take(job, md);
	if (ret <= 0) {
		if (ret == 0 && job->result != POP3_OPEN_LOGIN_DELAY)
			job->result = POP3_OPEN_IN_USE;
		goto fail;
	}
	if (store_mailbox_open(md->store, "INBOX", &md->mb, &err) < 0) {
		job->result = POP3_OPEN_FAILED;
		snprintf(job->error, sizeof(job->error), "%s", err.msg);
		goto fail;
	}
	md->uidvalidity = store_mailbox_uidvalidity(md->mb);
	md->count = store_mailbox_count(md->mb);
	md->msgs = xcalloc(md->count + 1, sizeof(*md->msgs));
	for (uint32_t i = 0; i < md->count; i++) {
		const struct store_msg *m = store_mailbox_msg(md->mb, i + 1);

		md->msgs[i].uid = m->uid;
		md->msgs[i].vsize = m->vsize;
	}
	lock_touch(md);
	job->result = POP3_OPEN_OK;
	job->md = md;
	return;
fail:
	pop3__maildrop_close(&md);
}

void pop3__open_job_free(void *data)
{
	struct pop3_open_job *job = data;

	pop3__maildrop_close_async(&job->md);
	free(job->user_dir);
	free(job);
}

/* ---------------------------------------------------------------- UIDL */

void pop3__uidl(const struct pop3_maildrop *md, uint32_t i, char *out, size_t size)
{
	uint32_t uid = md->msgs[i].uid;

	switch (pop3__set.uidl_format) {
	case CFG_UIDL_DOVECOT:
		snprintf(out, size, "%08x%08x", uid, md->uidvalidity);
		break;
	case CFG_UIDL_COURIER:
		snprintf(out, size, "UID%u-%u", uid, md->uidvalidity);
		break;
	case CFG_UIDL_CYRUS:
		snprintf(out, size, "%u.%u", md->uidvalidity, uid);
		break;
	}
}

/* ---------------------------------------------------------- TRANSACTION */

int64_t pop3__msg_lookup(struct pop3_session *s, const struct pop3_arg *arg)
{
	uint32_t n;

	if (pop3__parse_msgnum(arg, &n) < 0) {
		pop3__bad_command(s, "Invalid message number");
		return -1;
	}
	if (n > s->md->count) {
		conn_write_str(s->conn, "-ERR There is no such message\r\n");
		return -1;
	}
	if (s->md->msgs[n - 1].deleted) {
		conn_write_str(s->conn, "-ERR Message is deleted\r\n");
		return -1;
	}
	return (int64_t)n - 1;
}

void pop3__cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	uint64_t bytes = 0;
	uint32_t count = 0;

	for (uint32_t i = 0; i < s->md->count; i++) {
		if (!s->md->msgs[i].deleted) {
			count++;
			bytes += s->md->msgs[i].vsize;
		}
	}
	conn_printf(s->conn, "+OK %u %llu\r\n", count, (unsigned long long)bytes);
}

/* LIST and UIDL without an argument: every message not deleted, written
 * while the output queue has room and continued as it drains, so that a
 * listing of a large maildrop never sits in memory whole. */
void pop3__list_continue(struct pop3_session *s)
{
	struct conn *c = s->conn;
	/* Lines go out in batches: over TLS each write is a record. */
	char batch[8192];
	size_t used = 0;

	while (s->list_next < s->md->count && conn_writable(c)) {
		uint32_t i = s->list_next++;
		int n;

		if (s->md->msgs[i].deleted)
			continue;
		if (s->listing_uidl) {
			char id[80];

			pop3__uidl(s->md, i, id, sizeof(id));
			n = snprintf(batch + used, sizeof(batch) - used, "%u %s\r\n", i + 1, id);
		} else {
			n = snprintf(batch + used, sizeof(batch) - used, "%u %llu\r\n", i + 1,
				     (unsigned long long)s->md->msgs[i].vsize);
		}
		used += (size_t)n;
		if (sizeof(batch) - used < 128) {
			conn_write(c, batch, used);
			used = 0;
		}
	}
	if (s->list_next < s->md->count) {
		conn_write(c, batch, used);
		return; /* more when the output drains */
	}
	memcpy(batch + used, ".\r\n", 3);
	conn_write(c, batch, used + 3);
	s->listing = false;
	conn_resume(c);
}

static void list_all(struct pop3_session *s, bool uidl)
{
	conn_write_str(s->conn, uidl ? "+OK Unique-ID listing follows\r\n" :
		       "+OK Scan listing follows\r\n");
	s->listing = true;
	s->listing_uidl = uidl;
	s->list_next = 0;
	conn_pause(s->conn);
	pop3__list_continue(s);
}

void pop3__cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	int64_t i;

	if (cmd->argc == 0) {
		list_all(s, false);
		return;
	}
	i = pop3__msg_lookup(s, &cmd->argv[0]);
	if (i >= 0)
		conn_printf(s->conn, "+OK %lld %llu\r\n", (long long)i + 1,
			    (unsigned long long)s->md->msgs[i].vsize);
}

void pop3__cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	char id[80];
	int64_t i;

	if (cmd->argc == 0) {
		list_all(s, true);
		return;
	}
	i = pop3__msg_lookup(s, &cmd->argv[0]);
	if (i >= 0) {
		pop3__uidl(s->md, (uint32_t)i, id, sizeof(id));
		conn_printf(s->conn, "+OK %lld %s\r\n", (long long)i + 1, id);
	}
}

void pop3__cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	int64_t i = pop3__msg_lookup(s, &cmd->argv[0]);

	if (i < 0)
		return;
	s->md->msgs[i].deleted = true;
	conn_printf(s->conn, "+OK Message %lld deleted\r\n", (long long)i + 1);
}

void pop3__cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	uint32_t n = 0;
	uint64_t bytes = 0;

	for (uint32_t i = 0; i < s->md->count; i++) {
		s->md->msgs[i].deleted = false;
		n++;
		bytes += s->md->msgs[i].vsize;
	}
	conn_printf(s->conn, "+OK %u messages (%llu octets)\r\n", n, (unsigned long long)bytes);
}

/* -------------------------------------------------------------- UPDATE */

void pop3__update_work(void *data)
{
	struct pop3_update_job *job = data;
	struct pop3_maildrop *md = job->md;
	struct store_error err = { 0 };
	uint32_t *del = xcalloc(md->count + 1, sizeof(*del));
	uint32_t *seen = xcalloc(md->count + 1, sizeof(*seen));
	size_t ndel = 0, nseen = 0;

	for (uint32_t i = 0; i < md->count; i++) {
		if (md->msgs[i].deleted)
			del[ndel++] = md->msgs[i].uid;
		else if (md->msgs[i].retrieved)
			seen[nseen++] = md->msgs[i].uid;
	}
	/* Others may have changed INBOX since login: expunge by UID, in the
	 * mailbox as it is now. */
	if (store_mailbox_sync(md->mb, &err) < 0) {
		job->failed = true;
	} else {
		if (ndel > 0 && store_mailbox_expunge(md->mb, del, ndel, &err) < 0)
			job->failed = true;
		else
			job->deleted = (uint32_t)ndel;
		/* Only those not \Seen already: a client that polls would
		 * otherwise rewrite every message's row at each QUIT. */
		size_t n = 0;

		for (size_t i = 0; i < nseen; i++) {
			uint32_t seq = store_mailbox_seq(md->mb, seen[i]);

			if (seq != 0 && (store_mailbox_msg(md->mb, seq)->flags & STORE_FLAG_SEEN) == 0)
				seen[n++] = seen[i];
		}
		nseen = n;
		/* \Seen is a courtesy to IMAP: its failure fails nothing. */
		if (!job->failed && nseen > 0) {
			struct store_error ferr = { 0 };

			if (store_mailbox_set_flags(md->mb, seen, nseen, STORE_FLAGS_ADD,
						    STORE_FLAG_SEEN, NULL, 0, 0, NULL, &ferr) < 0)
				snprintf(job->error, sizeof(job->error), "setting \\Seen: %.200s",
					 ferr.msg);
		}
	}
	if (job->failed)
		snprintf(job->error, sizeof(job->error), "%s", err.msg);
	free(del);
	free(seen);
	pop3__maildrop_close(&job->md);
}

static void update_done(struct conn *c, void *data)
{
	struct pop3_session *s = conn_get_data(c);
	struct pop3_update_job *job = data;

	s->job_running = false;
	if (job->failed) {
		log_error("expunge failed: %s", job->error);
		conn_printf(c, "-ERR [SYS/TEMP] Some deleted messages were not removed (%s)\r\n",
			    conn_session_id(c));
	} else {
		if (job->error[0] != '\0')
			log_warn("%s", job->error);
		log_info("logout deleted=%u", job->deleted);
		conn_printf(c, "+OK Logging out, %u messages deleted\r\n", job->deleted);
	}
	free(job);
	conn_close(c, "quit");
}

static void update_cancel(void *data)
{
	struct pop3_update_job *job = data;

	if (job->failed)
		log_error("expunge failed: %s", job->error);
	free(job);
}

void pop3__update(struct pop3_session *s)
{
	struct pop3_update_job *job;
	bool changes = false;

	for (uint32_t i = 0; i < s->md->count && !changes; i++)
		changes = s->md->msgs[i].deleted || s->md->msgs[i].retrieved;
	if (!changes) {
		pop3__maildrop_close_async(&s->md);
		log_info("logout deleted=0");
		conn_write_str(s->conn, "+OK Logging out\r\n");
		conn_close(s->conn, "quit");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->md = s->md;
	s->md = NULL;
	pop3__set_state(s, POP3_STATE_UPDATE);
	if (conn_queue_work(s->conn, pop3__update_work, update_done, update_cancel, job) < 0) {
		/* Cannot happen in TRANSACTION with no job running; deleting
		 * nothing is the safe answer if it does. */
		pop3__maildrop_close_async(&job->md);
		free(job);
		conn_write_str(s->conn, "-ERR [SYS/TEMP] Deleted messages were not removed\r\n");
		conn_close(s->conn, "quit");
		return;
	}
	s->job_running = true;
}
