/*
 * save.c — saving a message durably (LMTP delivery, IMAP APPEND).
 *
 * The body streams into an anonymous file (O_TMPFILE) in the folder's
 * tmp/, or a named one where the file system cannot (CRLF stored as LF),
 * which is flushed to disk before the commit. The commit then, under the
 * index write lock: allocates the UID, links (or renames) the file into
 * new/ (no flags) or cur/ with its final name (,S= ,W= ,U= and flags),
 * inserts the index row, commits with synchronous=FULL, and fsyncs the
 * directory. Only then does store_save_commit return 0 (DESIGN invariants
 * 1 and 2). A crash before the index commit leaves at most a file the next
 * sync adopts or a named file in tmp/; a crash after it leaves a row whose
 * file is either in place or (if the directory entry was lost) expunged by
 * the next sync: the UID is never handed out again either way.
 *
 * Group commit: saves of one user that reach the commit together are
 * committed by one thread (the leader) in one transaction with one WAL
 * flush and one fsync per directory, so throughput grows with concurrency.
 * The leader records the saves queued so far, then those that arrive while
 * it waits (briefly) for the ones still flushing their files.
 *
 * Sharing (store_save_share): one message delivered to several users or
 * mailboxes is written and flushed once; each further save gets another
 * name for the same file (a second descriptor of the anonymous file, or a
 * hard link of the named one), so all recipients on one file system share
 * one inode. Across file systems the flushed bytes are copied.
 *
 * The bytes are parsed as they are written (mime.c, streaming and
 * bounded): ENVELOPE, BODYSTRUCTURE and the rest of message-meta.c go
 * into the index in the transaction of the message row, so FETCH never
 * has to read the file for them; so does the message's text for SEARCH
 * (fts.c), read back from the file once it is written, unless the saver
 * defers it (store_save_defer_text: LMTP). Shared saves share the results.
 */
#include "storage-private.h"
#include "mime-private.h"
#include "fts-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAVE_BUF_SIZE (64 * 1024)
/* A group commit's leader waits for saves still flushing their files
 * (lead_batch) up to twice the time a file flush takes lately, within
 * these bounds (µs). */
#define GATHER_MIN_US 100
#define GATHER_MAX_US 5000

struct store_save {
	struct store_user *u;
	char *mailbox;
	char *folder;
	char base[128];
	char tmp_path[4096];    /* named temporary file, "" with O_TMPFILE */
	int fd;
	bool anonymous;         /* O_TMPFILE: no name until linked into place */
	unsigned char *buf;     /* output not yet written */
	size_t buf_len;
	bool pending_cr;        /* input ended in CR: wait for the next byte */
	bool last_cr;           /* the last byte stored was CR */
	uint64_t size;          /* bytes written (LF line ends) */
	uint64_t lfs;
	uint32_t flags;
	int64_t internal_date;
	bool failed;
	bool finished;          /* flushed to disk: no more writes */
	struct mime_parser *parser;     /* fed what is written, until finished */
	struct store__meta *meta;       /* its results, once finished */
	struct store__fts_doc *fts;     /* its text for the search index */
	bool defer_text;        /* leave the text to store_user_catch_up */
};

/* A save into mailbox of u, without its file yet. NULL (with *err) when
 * the mailbox does not exist. */
static struct store_save *save_new(struct store_user *u, const char *mailbox,
				   struct store_error *err)
{
	struct store_mbox_row row;
	int found = store__mbox_find(u, mailbox, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", mailbox);
		return NULL;
	}
	struct store_save *s = xcalloc(1, sizeof(*s));

	s->u = u;
	s->fd = -1;
	s->mailbox = xstrdup(mailbox);
	s->folder = store__folder_path(u, mailbox, err);
	if (s->folder == NULL) {
		store_save_abort(&s);
		return NULL;
	}
	s->internal_date = (int64_t)time(NULL);
	store_new_base(s->base, sizeof(s->base));
	return s;
}

/*
 * Create the save's file. An anonymous file in tmp/ where the file system
 * allows: it gets its one name when it is linked into new/ or cur/ at the
 * commit, and a crash before that leaves nothing behind. Otherwise a named
 * file in tmp/, renamed at the commit.
 */
static int save_create_file(struct store_save *s, struct store_error *err)
{
	snprintf(s->tmp_path, sizeof(s->tmp_path), "%s/tmp", s->folder);
	s->fd = access("/proc/self/fd", X_OK) < 0 ? -1 :
		open(s->tmp_path, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	s->anonymous = s->fd >= 0;
	if (s->anonymous) {
		s->tmp_path[0] = '\0';
	} else {
		snprintf(s->tmp_path, sizeof(s->tmp_path), "%s/tmp/%s", s->folder, s->base);
		s->fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (s->fd < 0) {
		store__fail_errno(err, errno, "create %s", s->tmp_path);
		s->tmp_path[0] = '\0';
		return -1;
	}
	return 0;
}

int store_save_begin(struct store_user *u, const char *mailbox, struct store_save **s_r,
		     struct store_error *err)
{
	struct store_save *s = save_new(u, mailbox, err);

	if (s == NULL)
		return -1;
	if (save_create_file(s, err) < 0) {
		store_save_abort(&s);
		return -1;
	}
	s->buf = xcalloc(1, SAVE_BUF_SIZE);
	s->parser = mime_parser_new();
	*s_r = s;
	return 0;
}

void store_save_set_flags(struct store_save *s, uint32_t flags)
{
	s->flags = flags;
}

void store_save_set_internal_date(struct store_save *s, int64_t when)
{
	s->internal_date = when;
}

void store_save_defer_text(struct store_save *s)
{
	s->defer_text = true;
}

/* The temporary file for messages: an anonymous file has no path. */
static const char *tmp_name(const struct store_save *s)
{
	return s->tmp_path[0] != '\0' ? s->tmp_path : "the new message file (unnamed, in tmp/)";
}
static int flush_buf(struct store_save *s, struct store_error *err)
{
	size_t off = 0;

	/* The parser sees the stored form, as a later parse of the file does. */
	if (s->parser != NULL)
		mime_parser_feed(s->parser, s->buf, s->buf_len);
	while (off < s->buf_len) {
		ssize_t n = write(s->fd, s->buf + off, s->buf_len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			s->failed = true;
			return store__fail_errno(err, errno, "write %s", tmp_name(s));
		}
		off += (size_t)n;
	}
	s->buf_len = 0;
	return 0;
}

static int put_byte(struct store_save *s, unsigned char c, struct store_error *err)
{
	if (s->buf_len == SAVE_BUF_SIZE && flush_buf(s, err) < 0)
		return -1;
	s->buf[s->buf_len++] = c;
	s->size++;
	/* The CRLF view adds a CR before each LF not already after one. */
	if (c == '\n' && !s->last_cr)
		s->lfs++;
	s->last_cr = c == '\r';
	return 0;
}

/* Store n bytes without a CR. */
static int put_run(struct store_save *s, const unsigned char *run, size_t n,
		   struct store_error *err)
{
	while (n > 0) {
		if (s->buf_len == SAVE_BUF_SIZE && flush_buf(s, err) < 0)
			return -1;
		size_t k = SAVE_BUF_SIZE - s->buf_len < n ? SAVE_BUF_SIZE - s->buf_len : n;
		const unsigned char *end = run + k;

		memcpy(s->buf + s->buf_len, run, k);
		s->buf_len += k;
		s->size += k;
		/* As put_byte counts: only an LF right after a stored CR is
		 * not counted, and in a run only the first byte can be one. */
		for (const unsigned char *q = run; (q = memchr(q, '\n', (size_t)(end - q))) != NULL;
		     q++)
			s->lfs += !(q == run && s->last_cr);
		s->last_cr = false;
		run = end;
		n -= k;
	}
	return 0;
}

int store_save_write(struct store_save *s, const void *data, size_t len,
		     struct store_error *err)
{
	const unsigned char *p = data;

	if (s->failed)
		return store__fail(err, STORE_ERR_TEMP, "save failed earlier");
	if (s->finished)
		return store__fail(err, STORE_ERR_TEMP, "save already flushed");
	/* Whole runs between CRs at a time (byte by byte this loop was a
	 * tenth of tern-lmtpd's CPU for 100 KiB messages). */
	for (size_t i = 0; i < len;) {
		if (s->pending_cr) {
			s->pending_cr = false;
			/* CRLF is stored as LF; a bare CR stays. */
			if (p[i] != '\n' && put_byte(s, '\r', err) < 0)
				return -1;
		}
		const unsigned char *cr = memchr(p + i, '\r', len - i);
		size_t end = cr != NULL ? (size_t)(cr - p) : len;

		if (put_run(s, p + i, end - i, err) < 0)
			return -1;
		if (cr == NULL)
			break;
		s->pending_cr = true;
		i = end + 1;
	}
	return 0;
}

/* The text for the search index (fts.c), read back from the file written
 * (in the page cache still). NULL when that fails: the message is then
 * searched from its file. */
static struct store__fts_doc *save_text(struct store_save *s, const struct mime_part *root)
{
	char path[64];
	struct store_error err = { 0 };

	/* The file may have no name yet (O_TMPFILE), and fd is write-only. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_warn("%s: not in the text index: %s", tmp_name(s), strerror(errno));
		return NULL;
	}
	struct store__fts_doc *doc = store__fts_doc_build(fd, root, &err);

	if (doc == NULL)
		log_warn("%s: not in the text index: %s", tmp_name(s), err.msg);
	close(fd);
	return doc;
}

/* Everything on disk before the commit: data, size and time. Done once. */
static int save_finish_file(struct store_save *s, struct store_error *err)
{
	if (s->finished)
		return 0;
	if (s->pending_cr) {
		s->pending_cr = false;
		if (put_byte(s, '\r', err) < 0)
			return -1;
	}
	if (flush_buf(s, err) < 0)
		return -1;
	if (s->parser != NULL) {
		const struct mime_part *root = mime_parser_finish(s->parser);

		s->meta = store__meta_from_parts(root);
		/* Without a document the message is pending (fts_add). */
		s->fts = s->defer_text ? NULL : save_text(s, root);
		mime_parser_free(&s->parser);
	}
	struct timespec times[2] = {
		{ .tv_sec = s->internal_date, .tv_nsec = 0 },
		{ .tv_sec = s->internal_date, .tv_nsec = 0 },
	};

	/* Maildir keeps the received (internal) date as the mtime. */
	if (futimens(s->fd, times) < 0)
		return store__fail_errno(err, errno, "futimens %s", tmp_name(s));
	if (fdatasync(s->fd) < 0)
		return store__fail_errno(err, errno, "fdatasync %s", tmp_name(s));
	/* An anonymous file stays open: the commit links it by its fd. */
	if (!s->anonymous) {
		if (close(s->fd) < 0) {
			s->fd = -1;
			return store__fail_errno(err, errno, "close %s", tmp_name(s));
		}
		s->fd = -1;
	}
	s->finished = true;
	return 0;
}

/* The device of the save's flushed file, or -1. */
static int save_file_dev(const struct store_save *s, dev_t *dev_r)
{
	struct stat st;

	if (s->anonymous ? fstat(s->fd, &st) < 0 : stat(s->tmp_path, &st) < 0)
		return -1;
	*dev_r = st.st_dev;
	return 0;
}

/* Another name for src's flushed file in s's tmp/ (or, anonymous, another
 * descriptor). 1 done, 0 not possible here (another file system), -1 error. */
static int save_share_file(struct store_save *src, struct store_save *s, struct store_error *err)
{
	char tmp_dir[4096];
	struct stat st;
	dev_t dev;

	snprintf(tmp_dir, sizeof(tmp_dir), "%s/tmp", s->folder);
	if (stat(tmp_dir, &st) < 0)
		return store__fail_errno(err, errno, "stat %s", tmp_dir);
	if (save_file_dev(src, &dev) < 0)
		return store__fail_errno(err, errno, "stat the file of %s", src->base);
	if (dev != st.st_dev)
		return 0;
	if (src->anonymous) {
		s->fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);
		if (s->fd < 0)
			return store__fail_errno(err, errno, "dup");
		s->anonymous = true;
		return 1;
	}
	snprintf(s->tmp_path, sizeof(s->tmp_path), "%s/tmp/%s", s->folder, s->base);
	if (link(src->tmp_path, s->tmp_path) == 0)
		return 1;
	int e = errno;

	s->tmp_path[0] = '\0';
	if (e == EXDEV || e == EMLINK || e == EPERM)
		return 0;
	return store__fail_errno(err, e, "link %s", src->tmp_path);
}

/* Copy src's flushed bytes (already with LF line ends) into s's new file. */
static int save_copy_file(struct store_save *src, struct store_save *s, struct store_error *err)
{
	char path[4096];
	unsigned char *buf;
	int in;

	if (src->anonymous)
		snprintf(path, sizeof(path), "/proc/self/fd/%d", src->fd);
	else
		snprintf(path, sizeof(path), "%s", src->tmp_path);
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return store__fail_errno(err, errno, "open %s", path);
	if (save_create_file(s, err) < 0) {
		close(in);
		return -1;
	}
	buf = xcalloc(1, SAVE_BUF_SIZE);
	s->buf = buf;
	for (;;) {
		ssize_t n = read(in, buf, SAVE_BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			store__fail_errno(err, errno, "read %s", path);
			close(in);
			return -1;
		}
		if (n == 0)
			break;
		s->buf_len = (size_t)n;
		if (flush_buf(s, err) < 0) {
			close(in);
			return -1;
		}
	}
	close(in);
	return save_finish_file(s, err);
}

int store_save_share(struct store_save *src, struct store_user *u, const char *mailbox,
		     struct store_save **s_r, struct store_error *err)
{
	if (src->failed)
		return store__fail(err, STORE_ERR_TEMP, "save failed earlier");
	if (save_finish_file(src, err) < 0) {
		src->failed = true;
		return -1;
	}
	struct store_save *s = save_new(u, mailbox, err);

	if (s == NULL)
		return -1;
	s->size = src->size;
	s->lfs = src->lfs;
	s->flags = src->flags;
	s->internal_date = src->internal_date;
	if (src->meta != NULL)
		s->meta = store__meta_ref(src->meta);
	if (src->fts != NULL)
		s->fts = store__fts_doc_ref(src->fts);
	int ret = save_share_file(src, s, err);

	if (ret == 0)
		ret = save_copy_file(src, s, err);
	if (ret < 0) {
		store_save_abort(&s);
		return -1;
	}
	s->finished = true;
	*s_r = s;
	return 0;
}

/* Give the flushed file its final name. */
static int save_place(struct store_save *s, const char *final_path, struct store_error *err)
{
	if (s->anonymous) {
		char fdpath[64];

		/* linkat with AT_EMPTY_PATH needs a capability; /proc does not. */
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", s->fd);
		if (linkat(AT_FDCWD, fdpath, AT_FDCWD, final_path, AT_SYMLINK_FOLLOW) < 0)
			return store__fail_errno(err, errno, "link %s", final_path);
		return 0;
	}
	if (rename(s->tmp_path, final_path) < 0)
		return store__fail_errno(err, errno, "rename %s", s->tmp_path);
	return 0;
}

/* Take the final name away again (the commit failed). */
static void save_unplace(struct store_save *s, const char *final_path)
{
	if (s->anonymous || rename(final_path, s->tmp_path) < 0)
		unlink(final_path);
}

/* ------------------------------------------------------ group commit */

struct commit_req {
	struct commit_req *next;
	struct store_save *s;
	char final_path[4096];
	char subdir[4096];      /* the directory to fsync after the commit */
	uint32_t uidvalidity;
	uint32_t uid;
	int ret;
	struct store_error err;
	bool done;
};

/* The commits of one user in progress. It exists while a thread is in
 * group_commit for that user (users), so the list holds only the users
 * being written to now, and a finished batch wakes only its own user's
 * waiters. */
struct commit_queue {
	struct commit_queue *next;
	char *key;              /* the user's directory */
	struct commit_req *head;
	struct commit_req **tail;
	bool leader_active;
	bool gathering;         /* the leader waits for saves still finishing */
	unsigned finishing;     /* saves flushing their file, about to queue */
	unsigned users;         /* threads in store_save_commit for this queue */
	pthread_cond_t cond;    /* a batch finished, or a save queued */
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct commit_queue *queues;
/* How long a save's file flush takes lately, a moving average (µs, with
 * queue_lock): how long the leader waits for saves still flushing. */
static long flush_us = 500;

static long monotonic_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

/* Called with queue_lock held. */
static void note_flush_time(long us)
{
	flush_us += (us - flush_us) / 8;
}

/* Called with queue_lock held. */
static long gather_us(void)
{
	long us = 2 * flush_us;

	return us < GATHER_MIN_US ? GATHER_MIN_US : us > GATHER_MAX_US ? GATHER_MAX_US : us;
}

/* Called with queue_lock held. */
static struct commit_queue *queue_enter(const char *key)
{
	struct commit_queue *q;

	for (q = queues; q != NULL; q = q->next) {
		if (strcmp(q->key, key) == 0)
			break;
	}
	if (q == NULL) {
		q = xcalloc(1, sizeof(*q));
		q->key = xstrdup(key);
		q->tail = &q->head;
		pthread_cond_init(&q->cond, NULL);
		q->next = queues;
		queues = q;
	}
	q->users++;
	return q;
}

/* Called with queue_lock held; the last thread out frees the queue. */
static void queue_leave(struct commit_queue *q)
{
	if (--q->users > 0)
		return;
	for (struct commit_queue **pp = &queues; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	pthread_cond_destroy(&q->cond);
	free(q->key);
	free(q);
}

/* One message inside the batch's transaction, under its own savepoint. */
static int commit_one(struct store_user *u, struct commit_req *r)
{
	struct store_save *s = r->s;
	struct store_mbox_row row;
	struct store_filename fn;
	char name[512], relname[600];
	sqlite3_stmt *st;
	int found;

	if (store__exec_cached(u, STORE_STMT_SAVEPOINT, "SAVEPOINT msg", &r->err) < 0)
		return -1;
	found = store__mbox_get(u, s->mailbox, &row, &r->err);
	if (found <= 0) {
		if (found == 0)
			store__fail(&r->err, STORE_ERR_NOTFOUND, "mailbox %s is gone", s->mailbox);
		goto fail;
	}
	if (store__quota_check(u, s->size + s->lfs, 1, &r->err) < 0)
		goto fail;
	uint32_t uid = row.uidnext;
	uint64_t modseq = row.highestmodseq + 1;

	if (uid == UINT32_MAX) {
		store__fail(&r->err, STORE_ERR_LIMIT, "no UIDs left in %s", s->mailbox);
		goto fail;
	}
	if (store__uidstate_reserve(s->folder, &row, uid, modseq, &r->err) < 0)
		goto fail;
	memset(&fn, 0, sizeof(fn));
	snprintf(fn.base, sizeof(fn.base), "%s", s->base);
	fn.size = s->size;
	fn.vsize = s->size + s->lfs;
	fn.has_size = fn.has_vsize = true;
	fn.uid = uid;
	fn.flags = s->flags;
	fn.has_info = s->flags != 0;
	if (store_filename_build(&fn, name, sizeof(name)) < 0) {
		store__fail(&r->err, STORE_ERR_TEMP, "file name too long");
		goto fail;
	}
	/* new/ holds messages no client has seen; flags need cur/. */
	const char *sub = s->flags == 0 ? "new" : "cur";

	snprintf(relname, sizeof(relname), "%s/%s", sub, name);
	snprintf(r->final_path, sizeof(r->final_path), "%s/%s", s->folder, relname);
	snprintf(r->subdir, sizeof(r->subdir), "%s/%s", s->folder, sub);
	st = store__stmt(u, STORE_STMT_SAVE_ROW,
			 "INSERT INTO message (mailbox_id, uid, guid, filename, flags, keywords,"
			 " modseq, internal_date, save_date, size, vsize)"
			 " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)", &r->err);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, row.id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, s->base, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, relname, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, s->flags);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 7, s->internal_date);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 9, (sqlite3_int64)fn.size);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)fn.vsize);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store__fail_db(&r->err, u->db, "insert message");
		goto fail;
	}
	if (s->meta != NULL && store__meta_insert(u, row.id, uid, s->base, s->meta, &r->err) < 0)
		goto fail;
	if (s->fts != NULL && store__fts_insert(u, s->base, s->fts, &r->err) < 0)
		goto fail;
	st = store__stmt(u, STORE_STMT_SAVE_MBOX, "UPDATE mailbox SET uidnext = ?, highestmodseq = ?,"
			 " uid_ceiling = ?, modseq_ceiling = ? WHERE id = ?", &r->err);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, uid + 1);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 3, row.uid_ceiling);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)row.modseq_ceiling);
	sqlite3_bind_int64(st, 5, row.id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store__fail_db(&r->err, u->db, "update mailbox");
		goto fail;
	}
	store__digest_name(u, &row, relname, true);
	if (store__mbox_save_digests(u, &row, &r->err) < 0)
		goto fail;
	/* Last: the file appears under its final name. */
	if (save_place(s, r->final_path, &r->err) < 0)
		goto fail;
	if (store__exec_cached(u, STORE_STMT_RELEASE, "RELEASE msg", &r->err) < 0) {
		save_unplace(s, r->final_path);
		goto fail;
	}
	r->uid = uid;
	r->uidvalidity = row.uidvalidity;
	return 0;
fail:
	sqlite3_exec(u->db, "ROLLBACK TO msg; RELEASE msg", NULL, NULL, NULL);
	r->final_path[0] = '\0';
	return -1;
}

/* A batch being committed by its leader: one transaction, one durable
 * commit, then one fsync per directory that received files. */
struct commit_batch {
	struct commit_req *head;
	struct commit_req **tail;
	bool in_txn;
	struct store_error err; /* why the transaction could not begin */
};

static void batch_begin(struct store_user *u, struct commit_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->tail = &b->head;
	b->in_txn = store__begin(u, true, &b->err) == 0;
}

/* Add the requests of list (taken off the queue) to the transaction. */
static void batch_add(struct store_user *u, struct commit_batch *b, struct commit_req *list)
{
	*b->tail = list;
	for (struct commit_req *r = list; r != NULL; r = r->next) {
		if (b->in_txn) {
			r->ret = commit_one(u, r);
		} else {
			r->err = b->err;
			r->ret = -1;
		}
		b->tail = &r->next;
	}
}

static void batch_commit(struct store_user *u, struct commit_batch *b)
{
	struct commit_req *batch = b->head;
	struct store_error err = { 0 };

	if (!b->in_txn)
		return;
	if (store__commit(u, &err) < 0) {
		/* Nothing was committed: take the files back out of sight so a
		 * retried delivery does not become a duplicate. */
		for (struct commit_req *r = batch; r != NULL; r = r->next) {
			if (r->ret == 0) {
				save_unplace(r->s, r->final_path);
				r->err = err;
				r->ret = -1;
			}
		}
		return;
	}
	for (struct commit_req *r = batch; r != NULL; r = r->next) {
		if (r->ret < 0)
			continue;
		bool synced = false;

		for (struct commit_req *p = batch; p != r && !synced; p = p->next)
			synced = p->ret == 0 && strcmp(p->subdir, r->subdir) == 0;
		if (!synced && store__fsync_dir(r->subdir, &err) < 0) {
			/* Committed but the entry may not be durable: report a
			 * temporary failure for every message in that directory;
			 * the index row stays, and a sync expunges it if the
			 * file is lost. */
			for (struct commit_req *p = r; p != NULL; p = p->next) {
				if (p->ret == 0 && strcmp(p->subdir, r->subdir) == 0) {
					p->err = err;
					p->ret = -1;
				}
			}
		}
	}
}

static bool past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Take everything queued (with queue_lock held). */
static struct commit_req *queue_take(struct commit_queue *q)
{
	struct commit_req *list = q->head;

	q->head = NULL;
	q->tail = &q->head;
	return list;
}

/* The leader's batch (entered and left with queue_lock held). Saves that
 * are flushing their files will queue within about one fsync, so the
 * leader waits for them a bounded while, adding to its transaction
 * whatever queues meanwhile, and they share its flushes instead of
 * waiting for this batch and leading the next one. A lone save never
 * waits. The index's write lock is held meanwhile: other writers of the
 * user wait at most GATHER_MAX_US longer. */
static struct commit_req *lead_batch(struct store_user *u, struct commit_queue *q)
{
	struct commit_batch b;
	struct commit_req *list = queue_take(q);
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += gather_us() * 1000L;
	while (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_unlock(&queue_lock);
	batch_begin(u, &b);
	batch_add(u, &b, list);
	pthread_mutex_lock(&queue_lock);
	while (b.in_txn) {
		if (q->head != NULL) {
			list = queue_take(q);
			pthread_mutex_unlock(&queue_lock);
			batch_add(u, &b, list);
			pthread_mutex_lock(&queue_lock);
			if (past(&until))
				break;
			continue;
		}
		if (q->finishing == 0)
			break;
		q->gathering = true;
		int rc = pthread_cond_timedwait(&q->cond, &queue_lock, &until);

		q->gathering = false;
		if (rc != 0)
			break;
	}
	/* What queued after the timeout waits for the next batch. */
	pthread_mutex_unlock(&queue_lock);
	batch_commit(u, &b);
	pthread_mutex_lock(&queue_lock);
	return b.head;
}

/* Queue req (with queue_lock held, q entered) and wait until its batch is
 * committed, leading a batch when no one else does. */
static void group_commit(struct store_user *u, struct commit_queue *q, struct commit_req *req)
{
	*q->tail = req;
	q->tail = &req->next;
	if (q->gathering)
		pthread_cond_broadcast(&q->cond);
	while (!req->done) {
		if (q->leader_active) {
			pthread_cond_wait(&q->cond, &queue_lock);
			continue;
		}
		q->leader_active = true;
		struct commit_req *batch = lead_batch(u, q);

		for (struct commit_req *r = batch, *next; r != NULL; r = next) {
			next = r->next;
			r->done = true;
		}
		q->leader_active = false;
		pthread_cond_broadcast(&q->cond);
	}
}

int store_save_commit(struct store_save **sp, uint32_t *uidvalidity_r, uint32_t *uid_r,
		      struct store_error *err)
{
	struct store_save *s = *sp;
	struct commit_req req;

	if (s->failed) {
		store_save_abort(sp);
		return store__fail(err, STORE_ERR_TEMP, "save failed earlier");
	}
	pthread_mutex_lock(&queue_lock);
	struct commit_queue *q = queue_enter(s->u->dir);

	q->finishing++;
	pthread_mutex_unlock(&queue_lock);
	bool flushes = !s->finished;
	long started = monotonic_us();
	int finished = save_finish_file(s, err);
	long took = monotonic_us() - started;

	pthread_mutex_lock(&queue_lock);
	q->finishing--;
	if (flushes && finished == 0)
		note_flush_time(took);
	memset(&req, 0, sizeof(req));
	req.s = s;
	if (finished == 0) {
		group_commit(s->u, q, &req);
	} else {
		req.ret = -1;
		req.err = *err;
		if (q->gathering)
			pthread_cond_broadcast(&q->cond);
	}
	queue_leave(q);
	pthread_mutex_unlock(&queue_lock);
	if (req.ret < 0) {
		*err = req.err;
		store_save_abort(sp);
		return -1;
	}
	*uidvalidity_r = req.uidvalidity;
	*uid_r = req.uid;
	s->tmp_path[0] = '\0'; /* the file is in place: keep it */
	store_save_abort(sp);
	return 0;
}

void store_save_abort(struct store_save **sp)
{
	struct store_save *s = *sp;

	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp_path[0] != '\0')
		unlink(s->tmp_path);
	mime_parser_free(&s->parser);
	store__meta_unref(&s->meta);
	store__fts_doc_unref(&s->fts);
	free(s->buf);
	free(s->mailbox);
	free(s->folder);
	free(s);
	*sp = NULL;
}
