/*
 * cmd-transfer.c — `ternctl import|export USER mbox|maildir PATH`: moving a
 * user's mail in from and out to the formats other tools read.
 *
 * mbox is mboxrd: a message starts at a line "From <sender> <date>"; lines
 * of the message that match /^>*From / carry one more '>' in the file; each
 * message is followed by an empty line. Flags travel as the Status: (R
 * \Seen) and X-Status: (A \Answered, F \Flagged, T \Draft, D \Deleted)
 * headers, as mutt and Dovecot write them; import takes them out of the
 * header and sets the flags, export puts them back at the end of the
 * header. Everything else of a message is kept byte for byte, except what
 * storage does to every message (CRLF stored as LF) and what mbox cannot
 * express (a message without a final line end gets one on export).
 * The date of the From_ line is the internal date, read and written as UTC.
 *
 * maildir is a Maildir++ tree (INBOX in PATH, folder "a/b" in PATH/.a.b,
 * names in modified UTF-7), such as Dovecot, Courier or mutt keep. Flags
 * come from and go to the ":2," suffix of the file names, the internal date
 * from and to the files' mtime. Keywords are not transferred (their letters
 * are indexes into a per-folder list that other programs keep differently).
 *
 * Import saves through store_save_*, one durable commit per message: what
 * was imported when an error stops the run stays, and the count says how
 * far it got (imports are not idempotent: running one twice imports twice).
 * Import creates missing mailboxes. Export creates PATH and refuses to
 * overwrite: an mbox file must not exist, a Maildir must not exist or be an
 * empty directory. Both stream: memory does not grow with message size
 * (only a Maildir folder's list of file names is held while importing it).
 *
 * ternctl runs as mail_user when started as root, so PATH must be readable
 * (import) or its directory writable (export) by that user.
 */
#include "ctl/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIECE_SIZE (64 * 1024)

/* a/b into out (PATH_MAX bytes): 0, or -1 (printed) when it is too long. */
static int join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX) {
		ctl_error("path too long: %s/%s", a, b);
		return -1;
	}
	return 0;
}

/* mbox flag letters: Status: R; X-Status: A F T D (Dovecot's set). */
static const struct {
	char letter;
	bool x_status;
	uint32_t flag;
} mbox_flags[] = {
	{ 'R', false, STORE_FLAG_SEEN },
	{ 'A', true, STORE_FLAG_ANSWERED },
	{ 'F', true, STORE_FLAG_FLAGGED },
	{ 'T', true, STORE_FLAG_DRAFT },
	{ 'D', true, STORE_FLAG_DELETED },
};

/* Totals for the report. */
struct folder_count {
	char *name;
	uint64_t messages;
	bool created;
};

struct transfer {
	struct ctl *ctl;
	struct auth_user user;
	struct store_user *u;
	const char *format;
	const char *path;
	struct folder_count *folders;
	size_t nfolders;
	uint64_t messages;
	uint64_t bytes;
	struct store_error err;
};

static struct folder_count *count_folder(struct transfer *t, const char *name)
{
	for (size_t i = 0; i < t->nfolders; i++) {
		if (strcmp(t->folders[i].name, name) == 0)
			return &t->folders[i];
	}
	t->folders = xrealloc(t->folders, (t->nfolders + 1) * sizeof(*t->folders));
	struct folder_count *fc = &t->folders[t->nfolders++];

	fc->name = xstrdup(name);
	fc->messages = 0;
	fc->created = false;
	return fc;
}

/* Create the mailbox unless it exists. */
static int ensure_mailbox(struct transfer *t, const char *name)
{
	struct folder_count *fc = count_folder(t, name);

	if (store_mailbox_create(t->u, name, 0, &t->err) == 0) {
		fc->created = true;
		return 0;
	}
	if (t->err.code == STORE_ERR_EXISTS)
		return 0;
	ctl_error("%s: cannot create mailbox %s: %s", t->user.name, name, t->err.msg);
	return -1;
}

static void report(struct transfer *t, const char *verb)
{
	if (t->ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", t->user.name);
		ctl_json_string("format", t->format);
		ctl_json_string("path", t->path);
		ctl_json_uint("messages", t->messages);
		ctl_json_uint("bytes", t->bytes);
		ctl_json_begin_array("mailboxes");
		for (size_t i = 0; i < t->nfolders; i++) {
			ctl_json_begin_object(NULL);
			ctl_json_string("name", t->folders[i].name);
			ctl_json_uint("messages", t->folders[i].messages);
			ctl_json_bool("created", t->folders[i].created);
			ctl_json_end_object();
		}
		ctl_json_end_array();
		ctl_json_end_object();
		ctl_json_finish();
		return;
	}
	for (size_t i = 0; i < t->nfolders; i++)
		printf("%s: %llu messages%s\n", t->folders[i].name,
		       (unsigned long long)t->folders[i].messages,
		       t->folders[i].created ? " (mailbox created)" : "");
	printf("%s %llu messages (%llu bytes) of %s %s %s\n", verb,
	       (unsigned long long)t->messages, (unsigned long long)t->bytes, t->user.name,
	       strcmp(verb, "imported") == 0 ? "from" : "to", t->path);
}

static void transfer_free(struct transfer *t)
{
	for (size_t i = 0; i < t->nfolders; i++)
		free(t->folders[i].name);
	free(t->folders);
	store_user_close(&t->u);
}

/* ============================================================ import mbox */

/* Pieces of lines: up to PIECE_SIZE bytes, ending after '\n' or when the
 * buffer is full; starts_line tells whether a piece begins a line. */
struct piece_reader {
	FILE *f;
	unsigned char buf[PIECE_SIZE];
	bool next_starts_line;
};

static size_t piece_read(struct piece_reader *r, bool *starts_line_r)
{
	size_t n = 0;
	int c;

	*starts_line_r = r->next_starts_line;
	while (n < sizeof(r->buf) && (c = getc_unlocked(r->f)) != EOF) {
		r->buf[n++] = (unsigned char)c;
		if (c == '\n')
			break;
	}
	r->next_starts_line = n > 0 && r->buf[n - 1] == '\n';
	return n;
}

static bool is_blank_line(const unsigned char *p, size_t n)
{
	return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* /^>*From / */
static bool is_from_line(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == '>')
		i++;
	return n - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

/* The date of a From_ line ("From sender Thu Nov 24 18:22:48 1986",
 * perhaps followed by a zone): the first place after the sender where an
 * asctime date parses. UTC; 0 when there is none. */
static int64_t from_line_date(const unsigned char *p, size_t n)
{
	char line[1024];

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	for (char *sp = strchr(line + 5, ' '); sp != NULL; sp = strchr(sp + 1, ' ')) {
		struct tm tm;

		memset(&tm, 0, sizeof(tm));
		const char *rest = strptime(sp + 1, "%a %b %e %H:%M:%S %Y", &tm);

		if (rest != NULL && (*rest == '\0' || *rest == ' '))
			return (int64_t)timegm(&tm);
	}
	return 0;
}

/* Status: and X-Status: header lines to flags. */
static bool status_header(const unsigned char *p, size_t n, uint32_t *flags)
{
	bool x;
	size_t skip;

	if (n >= 7 && strncasecmp((const char *)p, "Status:", 7) == 0) {
		x = false;
		skip = 7;
	} else if (n >= 9 && strncasecmp((const char *)p, "X-Status:", 9) == 0) {
		x = true;
		skip = 9;
	} else {
		return false;
	}
	for (size_t i = skip; i < n && p[i] != '\r' && p[i] != '\n'; i++) {
		for (size_t k = 0; k < N_ELEMENTS(mbox_flags); k++) {
			if (mbox_flags[k].x_status == x && p[i] == mbox_flags[k].letter)
				*flags |= mbox_flags[k].flag;
		}
	}
	return true;
}

struct mbox_in {
	struct transfer *t;
	const char *mailbox;
	struct store_save *s;
	uint32_t flags;
	int64_t date;
	uint64_t size;
	bool in_header;
	bool skip_line;          /* the rest of this line is not stored */
	bool skip_header;        /* dropping a Status: header and its folds */
	unsigned char blank[2];  /* an empty line held back: the separator? */
	size_t blank_len;
};

static int mbox_write(struct mbox_in *in, const void *p, size_t n)
{
	in->size += n;
	if (store_save_write(in->s, p, n, &in->t->err) < 0) {
		ctl_error("%s: message %llu: %s", in->t->user.name,
			  (unsigned long long)in->t->messages + 1, in->t->err.msg);
		return -1;
	}
	return 0;
}

/* The message so far is complete: the held empty line was the separator. */
static int mbox_finish(struct mbox_in *in)
{
	struct transfer *t = in->t;
	uint32_t uidvalidity, uid;

	if (in->s == NULL)
		return 0;
	in->blank_len = 0;
	store_save_set_flags(in->s, in->flags);
	if (in->date != 0)
		store_save_set_internal_date(in->s, in->date);
	if (store_save_commit(&in->s, &uidvalidity, &uid, &t->err) < 0) {
		ctl_error("%s: message %llu: %s", t->user.name,
			  (unsigned long long)t->messages + 1, t->err.msg);
		return -1;
	}
	t->messages++;
	t->bytes += in->size;
	count_folder(t, in->mailbox)->messages++;
	return 0;
}

static int mbox_begin(struct mbox_in *in, const unsigned char *line, size_t n)
{
	if (mbox_finish(in) < 0)
		return -1;
	if (store_save_begin(in->t->u, in->mailbox, &in->s, &in->t->err) < 0) {
		ctl_error("%s: %s", in->t->user.name, in->t->err.msg);
		return -1;
	}
	in->flags = 0;
	in->date = from_line_date(line, n);
	in->size = 0;
	in->in_header = true;
	in->skip_header = false;
	in->skip_line = n == 0 || line[n - 1] != '\n';
	return 0;
}

/* One piece of the file. 0, or -1 (printed) on an error. */
static int mbox_piece(struct mbox_in *in, const unsigned char *p, size_t n, bool starts_line)
{
	if (!starts_line)
		return in->skip_line ? 0 : mbox_write(in, p, n);
	if (n >= 5 && memcmp(p, "From ", 5) == 0)
		return mbox_begin(in, p, n);
	if (in->s == NULL) {
		if (is_blank_line(p, n))
			return 0;
		ctl_error("%s is not an mbox file: it does not start with a \"From \" line",
			  in->t->path);
		return -2;
	}
	in->skip_line = false;
	/* Not a From_ line: an empty line held back belongs to the message. */
	if (in->blank_len > 0) {
		size_t len = in->blank_len;

		in->blank_len = 0;
		if (mbox_write(in, in->blank, len) < 0)
			return -1;
	}
	if (is_blank_line(p, n)) {
		in->in_header = false;
		memcpy(in->blank, p, n);
		in->blank_len = n;
		return 0;
	}
	if (in->in_header) {
		bool folded = p[0] == ' ' || p[0] == '\t';

		if (!folded)
			in->skip_header = status_header(p, n, &in->flags);
		if (in->skip_header) {
			in->skip_line = p[n - 1] != '\n';
			return 0;
		}
	}
	/* mboxrd: one '>' less on quoted From_ lines. */
	if (p[0] == '>' && is_from_line(p, n)) {
		p++;
		n--;
	}
	return mbox_write(in, p, n);
}

static int import_mbox(struct transfer *t, const char *mailbox)
{
	struct mbox_in in = { .t = t, .mailbox = mailbox };
	struct piece_reader *r;
	FILE *f;
	int ret = 0;

	f = strcmp(t->path, "-") == 0 ? stdin : fopen(t->path, "re");
	if (f == NULL) {
		ctl_error("cannot open %s: %s", t->path, strerror(errno));
		return EX_NOINPUT;
	}
	if (ensure_mailbox(t, mailbox) < 0) {
		if (f != stdin)
			fclose(f);
		return ctl_store_exit(&t->err);
	}
	r = xcalloc(1, sizeof(*r));
	r->f = f;
	r->next_starts_line = true;
	for (;;) {
		bool starts_line;
		size_t n = piece_read(r, &starts_line);

		if (n == 0)
			break;
		ret = mbox_piece(&in, r->buf, n, starts_line);
		if (ret < 0)
			break;
	}
	if (ret == 0 && ferror(f)) {
		ctl_error("reading %s failed", t->path);
		ret = -3;
	}
	/* At the end of the file, a held empty line is the last separator. */
	if (ret == 0)
		ret = mbox_finish(&in);
	store_save_abort(&in.s);
	free(r);
	if (f != stdin)
		fclose(f);
	report(t, "imported");
	switch (ret) {
	case 0:
		return EX_OK;
	case -2:
		return EX_DATAERR;
	case -3:
		return EX_IOERR;
	}
	return ctl_store_exit(&t->err);
}

/* ========================================================= import maildir */

struct mfile {
	char *path;
	uint32_t uid;           /* U= in the name, 0 when absent */
	uint32_t flags;
};

/* Flags of a Maildir file name's ":2," info (other letters ignored). */
static uint32_t info_flags(const char *name)
{
	static const char letters[] = "DFPRST";
	static const uint32_t flags[] = {
		STORE_FLAG_DRAFT, STORE_FLAG_FLAGGED, STORE_FLAG_PASSED,
		STORE_FLAG_ANSWERED, STORE_FLAG_SEEN, STORE_FLAG_DELETED,
	};
	const char *info = strstr(name, ":2,");
	uint32_t f = 0;

	if (info == NULL)
		return 0;
	for (const char *p = info + 3; *p != '\0'; p++) {
		const char *l = strchr(letters, *p);

		if (l != NULL)
			f |= flags[l - letters];
	}
	return f;
}

/* Files with U= first in UID order (the order they had), then by name
 * (Maildir names start with the delivery time). */
static int mfile_cmp(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;
	uint64_t ux = x->uid == 0 ? UINT64_MAX : x->uid;
	uint64_t uy = y->uid == 0 ? UINT64_MAX : y->uid;

	if (ux != uy)
		return ux < uy ? -1 : 1;
	return strcmp(strrchr(x->path, '/'), strrchr(y->path, '/'));
}

static int list_messages(const char *folder, struct mfile **files_r, size_t *count_r)
{
	static const char *const subs[] = { "new", "cur" };
	struct mfile *files = NULL;
	size_t count = 0;

	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		char dir[PATH_MAX];
		DIR *d;
		struct dirent *e;

		if (join(dir, folder, subs[i]) < 0)
			goto fail;
		d = opendir(dir);
		if (d == NULL) {
			if (errno == ENOENT)
				continue;
			ctl_error("cannot read %s: %s", dir, strerror(errno));
			goto fail;
		}
		while ((e = readdir(d)) != NULL) {
			char path[PATH_MAX];
			struct stat st;
			struct store_filename fn;

			if (e->d_name[0] == '.')
				continue;
			if (join(path, dir, e->d_name) < 0 || stat(path, &st) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			files = xrealloc(files, (count + 1) * sizeof(*files));
			files[count].path = xstrdup(path);
			files[count].uid = store_filename_parse(e->d_name, &fn) == 0 ? fn.uid : 0;
			files[count].flags = info_flags(e->d_name);
			count++;
		}
		closedir(d);
	}
	if (count > 1)
		qsort(files, count, sizeof(*files), mfile_cmp);
	*files_r = files;
	*count_r = count;
	return 0;
fail:
	for (size_t i = 0; i < count; i++)
		free(files[i].path);
	free(files);
	return -1;
}

/* One file into mailbox: -1 (printed) on a storage error, -2 when the
 * file cannot be read. */
static int import_file(struct transfer *t, const char *mailbox, const struct mfile *mf)
{
	static unsigned char buf[PIECE_SIZE];
	struct store_save *s;
	struct stat st;
	uint32_t uidvalidity, uid;
	uint64_t size = 0;
	ssize_t n;
	int fd = open(mf->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		ctl_error("cannot read %s: %s", mf->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -2;
	}
	if (store_save_begin(t->u, mailbox, &s, &t->err) < 0)
		goto fail;
	store_save_set_flags(s, mf->flags);
	store_save_set_internal_date(s, (int64_t)st.st_mtim.tv_sec);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ctl_error("cannot read %s: %s", mf->path, strerror(errno));
			store_save_abort(&s);
			close(fd);
			return -2;
		}
		size += (uint64_t)n;
		if (store_save_write(s, buf, (size_t)n, &t->err) < 0) {
			store_save_abort(&s);
			goto fail;
		}
	}
	close(fd);
	if (store_save_commit(&s, &uidvalidity, &uid, &t->err) < 0)
		goto fail_closed;
	t->messages++;
	t->bytes += size;
	count_folder(t, mailbox)->messages++;
	return 0;
fail:
	close(fd);
fail_closed:
	ctl_error("%s: %s: %s", t->user.name, mf->path, t->err.msg);
	return -1;
}

static int import_folder(struct transfer *t, const char *folder, const char *mailbox)
{
	struct mfile *files;
	size_t count;
	int ret = 0;

	if (ensure_mailbox(t, mailbox) < 0)
		return -1;
	if (list_messages(folder, &files, &count) < 0)
		return -2;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = import_file(t, mailbox, &files[i]);
	for (size_t i = 0; i < count; i++)
		free(files[i].path);
	free(files);
	return ret;
}

static bool has_cur(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	return join(path, dir, "cur") == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int import_maildir(struct transfer *t)
{
	DIR *d;
	struct dirent *e;
	int ret;

	if (!has_cur(t->path)) {
		ctl_error("%s is not a Maildir (it has no cur/)", t->path);
		return EX_NOINPUT;
	}
	ret = import_folder(t, t->path, "INBOX");
	d = ret == 0 ? opendir(t->path) : NULL;
	if (ret == 0 && d == NULL) {
		ctl_error("cannot read %s: %s", t->path, strerror(errno));
		ret = -2;
	}
	while (ret == 0 && (e = readdir(d)) != NULL) {
		char name[STORE_NAME_MAX + 1], folder[PATH_MAX];

		if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		if (join(folder, t->path, e->d_name) < 0 || !has_cur(folder))
			continue;
		if (store_dir_to_name(e->d_name, name, sizeof(name)) < 0) {
			ctl_error("skipping %s: not a folder name Tern accepts", folder);
			continue;
		}
		ret = import_folder(t, folder, name);
	}
	if (d != NULL)
		closedir(d);
	report(t, "imported");
	if (ret == -2)
		return EX_IOERR;
	return ret < 0 ? ctl_store_exit(&t->err) : EX_OK;
}

/* ================================================================ export */

/* Writes to a FILE, remembering the first error. */
struct out {
	FILE *f;
	const char *path;
	bool failed;
};

static void out_write(struct out *o, const void *p, size_t n)
{
	if (!o->failed && n > 0 && fwrite(p, 1, n, o->f) != n)
		o->failed = true;
}

static void out_byte(struct out *o, char c)
{
	if (!o->failed && putc_unlocked(c, o->f) == EOF)
		o->failed = true;
}

/* The stored message (LF line ends) from the CRLF view of the reader: a CR
 * right before an LF is dropped; a CR at the end of a chunk waits for the
 * next one. out has room for n + 1 bytes; returns how many it got. */
static size_t crlf_to_lf(const unsigned char *in, size_t n, unsigned char *out, bool *held_cr)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];

		if (*held_cr) {
			*held_cr = false;
			if (c != '\n')
				out[o++] = '\r';
		}
		if (c == '\r') {
			*held_cr = true;
			continue;
		}
		out[o++] = c;
	}
	return o;
}

/* Chunks of a message as stored: read from the reader, CRLF undone. */
static unsigned char read_buf[PIECE_SIZE];
static unsigned char lf_buf[PIECE_SIZE + 1];

/* ---------------------------------------------------------- mbox out */

enum quote_state { Q_LINE_START, Q_ARROWS, Q_FROM, Q_PASS };

struct mbox_out {
	struct out *o;
	bool in_header;
	enum quote_state q;
	uint64_t arrows;         /* '>' seen at the start of this line */
	size_t from_matched;     /* bytes of "From " matched after them */
	uint32_t flags;
};

static void status_lines(struct mbox_out *m)
{
	char x[8];
	size_t n = 0;

	out_write(m->o, (m->flags & STORE_FLAG_SEEN) != 0 ? "Status: RO\n" : "Status: O\n",
		  (m->flags & STORE_FLAG_SEEN) != 0 ? 11 : 10);
	for (size_t k = 0; k < N_ELEMENTS(mbox_flags); k++) {
		if (mbox_flags[k].x_status && (m->flags & mbox_flags[k].flag) != 0)
			x[n++] = mbox_flags[k].letter;
	}
	if (n > 0) {
		out_write(m->o, "X-Status: ", 10);
		out_write(m->o, x, n);
		out_byte(m->o, '\n');
	}
}

/* What the start of the line held back, written out (quoted when it was a
 * From_ line, i.e. all of "From " matched). */
static void flush_line_start(struct mbox_out *m)
{
	if (m->q == Q_FROM && m->from_matched == 5)
		out_byte(m->o, '>');
	for (uint64_t i = 0; i < m->arrows; i++)
		out_byte(m->o, '>');
	out_write(m->o, "From ", m->from_matched);
	m->arrows = 0;
	m->from_matched = 0;
	m->q = Q_PASS;
}

static void mbox_out_byte(struct mbox_out *m, unsigned char c)
{
	for (;;) {
		switch (m->q) {
		case Q_LINE_START:
			if (c == '\n' && m->in_header) {
				/* The empty line ending the header. */
				status_lines(m);
				m->in_header = false;
			}
			m->q = Q_ARROWS;
			continue;
		case Q_ARROWS:
			if (c == '>') {
				m->arrows++;
				return;
			}
			m->q = Q_FROM;
			continue;
		case Q_FROM:
			if (m->from_matched < 5 && c == (unsigned char)"From "[m->from_matched]) {
				if (++m->from_matched == 5)
					flush_line_start(m);
				return;
			}
			flush_line_start(m);
			continue;
		case Q_PASS:
			out_byte(m->o, (char)c);
			if (c == '\n')
				m->q = Q_LINE_START;
			return;
		}
	}
}

static int export_mbox_message(struct transfer *t, struct store_mailbox *mb,
			       const struct store_msg *msg, struct out *o)
{
	struct store_reader *r;
	struct mbox_out m = {
		.o = o, .in_header = true, .q = Q_LINE_START, .flags = msg->flags,
	};
	bool held_cr = false;
	char line[128];
	time_t when = (time_t)msg->internal_date;
	struct tm tm;
	ssize_t n;

	if (store_reader_open(mb, msg->uid, &r, &t->err) < 0) {
		ctl_error("%s: UID %u: %s", t->user.name, msg->uid, t->err.msg);
		return -1;
	}
	gmtime_r(&when, &tm);
	/* asctime's layout, as every mbox reader expects. */
	size_t len = strftime(line, sizeof(line), "From MAILER-DAEMON %a %b %e %H:%M:%S %Y\n",
			      &tm);

	out_write(o, line, len);
	while ((n = store_reader_read(r, read_buf, sizeof(read_buf))) > 0) {
		len = crlf_to_lf(read_buf, (size_t)n, lf_buf, &held_cr);
		for (size_t i = 0; i < len; i++)
			mbox_out_byte(&m, lf_buf[i]);
	}
	store_reader_close(&r);
	if (n < 0) {
		ctl_error("%s: UID %u: reading the message failed", t->user.name, msg->uid);
		t->err.code = STORE_ERR_TEMP;
		return -1;
	}
	if (held_cr)
		mbox_out_byte(&m, '\r');
	if (m.q == Q_ARROWS || m.q == Q_FROM)
		flush_line_start(&m);
	/* mbox cannot keep a message without a final line end. */
	if (m.q == Q_PASS)
		out_byte(o, '\n');
	/* No empty line ended the header (a message without a body). */
	if (m.in_header)
		status_lines(&m);
	out_byte(o, '\n');
	t->bytes += msg->size;
	return 0;
}

static int export_mbox(struct transfer *t, const char *mailbox)
{
	struct store_mailbox *mb;
	struct out o = { .path = t->path };
	bool to_stdout = strcmp(t->path, "-") == 0;
	int ret = 0;

	if (store_mailbox_open(t->u, mailbox, &mb, &t->err) < 0) {
		ctl_error("%s: %s", t->user.name, t->err.msg);
		return ctl_store_exit(&t->err);
	}
	if (to_stdout) {
		o.f = stdout;
	} else {
		int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		o.f = fd < 0 ? NULL : fdopen(fd, "w");
		if (o.f == NULL) {
			ctl_error("cannot create %s: %s", t->path, strerror(errno));
			if (fd >= 0)
				close(fd);
			store_mailbox_close(&mb);
			return EX_CANTCREAT;
		}
	}
	struct folder_count *fc = count_folder(t, mailbox);
	uint32_t count = store_mailbox_count(mb);

	for (uint32_t seq = 1; seq <= count && ret == 0 && !o.failed; seq++) {
		const struct store_msg *msg = store_mailbox_msg(mb, seq);

		ret = export_mbox_message(t, mb, msg, &o);
		if (ret == 0) {
			t->messages++;
			fc->messages++;
		}
	}
	store_mailbox_close(&mb);
	if (!to_stdout) {
		if (fflush(o.f) != 0 || fsync(fileno(o.f)) < 0)
			o.failed = true;
		if (fclose(o.f) != 0)
			o.failed = true;
	}
	if (o.failed) {
		ctl_error("writing %s failed: %s", t->path, strerror(errno));
		return EX_IOERR;
	}
	/* The report goes to stderr when the mbox itself is on stdout. */
	if (to_stdout)
		fprintf(stderr, "exported %llu messages of %s\n",
			(unsigned long long)t->messages, t->user.name);
	else
		report(t, "exported");
	return ret < 0 ? ctl_store_exit(&t->err) : EX_OK;
}

/* ------------------------------------------------------- maildir out */

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		ctl_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int make_folder(const char *folder, bool inbox)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];

	if (make_dir(folder) < 0)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		if (join(path, folder, subs[i]) < 0 || make_dir(path) < 0)
			return -1;
	}
	if (!inbox) {
		/* Maildir++'s marker of a folder (Courier, Dovecot). */
		if (join(path, folder, "maildirfolder") < 0)
			return -1;
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0) {
			ctl_error("cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = fd < 0 ? -1 : fsync(fd);

	if (fd >= 0)
		close(fd);
	if (ret < 0)
		ctl_error("cannot sync %s: %s", path, strerror(errno));
	return ret;
}

/* 0, or -2 with errno set. */
static int write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -2;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One message as a file: written in tmp/, synced, dated, renamed into
 * new/ (no flags) or cur/. -1 storage error, -2 write error (printed). */
static int export_file(struct transfer *t, struct store_mailbox *mb, const struct store_msg *msg,
		       const char *folder)
{
	struct store_filename fn = { 0 };
	struct store_reader *r;
	char name[512], sub[600], tmp[PATH_MAX], final[PATH_MAX];
	bool held_cr = false;
	ssize_t n;
	int fd;

	store_new_base(fn.base, sizeof(fn.base));
	fn.size = msg->size;
	fn.vsize = msg->vsize;
	fn.has_size = fn.has_vsize = true;
	fn.flags = msg->flags;
	fn.has_info = msg->flags != 0;
	if (store_filename_build(&fn, name, sizeof(name)) < 0) {
		ctl_error("cannot name a message file in %s", folder);
		return -2;
	}
	snprintf(sub, sizeof(sub), "tmp/%s", fn.base);
	if (join(tmp, folder, sub) < 0)
		return -2;
	snprintf(sub, sizeof(sub), "%s/%s", msg->flags == 0 ? "new" : "cur", name);
	if (join(final, folder, sub) < 0)
		return -2;
	if (store_reader_open(mb, msg->uid, &r, &t->err) < 0) {
		ctl_error("%s: UID %u: %s", t->user.name, msg->uid, t->err.msg);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ctl_error("cannot create %s: %s", tmp, strerror(errno));
		store_reader_close(&r);
		return -2;
	}
	int ret = 0;

	while (ret == 0 && (n = store_reader_read(r, read_buf, sizeof(read_buf))) != 0) {
		if (n < 0) {
			ctl_error("%s: UID %u: reading the message failed", t->user.name, msg->uid);
			t->err.code = STORE_ERR_TEMP;
			ret = -1;
			break;
		}
		size_t len = crlf_to_lf(read_buf, (size_t)n, lf_buf, &held_cr);

		ret = write_all(fd, lf_buf, len);
	}
	store_reader_close(&r);
	if (ret == 0 && held_cr)
		ret = write_all(fd, "\r", 1);
	struct timespec times[2] = {
		{ .tv_sec = (time_t)msg->internal_date },
		{ .tv_sec = (time_t)msg->internal_date },
	};

	if (ret == 0 && (futimens(fd, times) < 0 || fsync(fd) < 0))
		ret = -2;
	if (close(fd) < 0 && ret == 0)
		ret = -2;
	if (ret == 0 && rename(tmp, final) < 0)
		ret = -2;
	if (ret < 0) {
		if (ret == -2)
			ctl_error("cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return ret;
	}
	t->bytes += msg->size;
	return 0;
}

static int export_folder(struct transfer *t, const char *mailbox, const char *folder)
{
	struct store_mailbox *mb;
	char path[PATH_MAX];
	int ret = 0;

	if (make_folder(folder, strcmp(mailbox, "INBOX") == 0) < 0)
		return -2;
	if (store_mailbox_open(t->u, mailbox, &mb, &t->err) < 0) {
		ctl_error("%s: %s", t->user.name, t->err.msg);
		return -1;
	}
	struct folder_count *fc = count_folder(t, mailbox);
	uint32_t count = store_mailbox_count(mb);

	for (uint32_t seq = 1; seq <= count && ret == 0; seq++) {
		ret = export_file(t, mb, store_mailbox_msg(mb, seq), folder);
		if (ret == 0) {
			t->messages++;
			fc->messages++;
		}
	}
	store_mailbox_close(&mb);
	/* The renames made durable, once per directory. */
	if (ret == 0 && (join(path, folder, "new") < 0 || sync_dir(path) < 0 ||
			 join(path, folder, "cur") < 0 || sync_dir(path) < 0))
		ret = -2;
	return ret;
}

/* PATH may exist only as an empty directory. */
static bool usable_target(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (d == NULL)
		return errno == ENOENT;
	while ((e = readdir(d)) != NULL && empty)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static int export_maildir(struct transfer *t)
{
	struct arena *a = arena_new(0);
	struct store_mailbox_info *list;
	size_t count;
	int ret = 0;

	if (!usable_target(t->path)) {
		ctl_error("%s exists and is not an empty directory", t->path);
		arena_free(&a);
		return EX_CANTCREAT;
	}
	if (store_mailbox_list(t->u, a, &list, &count, &t->err) < 0) {
		ctl_error("%s: %s", t->user.name, t->err.msg);
		arena_free(&a);
		return ctl_store_exit(&t->err);
	}
	/* INBOX first: it makes PATH itself. */
	if (make_folder(t->path, true) < 0)
		ret = -2;
	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		for (size_t i = 0; i < count && ret == 0; i++) {
			bool inbox = strcmp(list[i].name, "INBOX") == 0;
			char dir[1024], folder[PATH_MAX];
			const char *why;

			if (!list[i].exists || inbox != (pass == 0))
				continue;
			if (store_name_to_dir(list[i].name, dir, sizeof(dir), &why) < 0) {
				/* Never for a name the store accepted: say so
				 * rather than leave the mailbox out quietly. */
				ctl_error("%s: mailbox %s has no Maildir++ name: %s",
					  t->user.name, list[i].name, why);
				ret = -3;
			} else if (inbox) {
				ret = export_folder(t, list[i].name, t->path);
			} else if (join(folder, t->path, dir) < 0) {
				ret = -2;
			} else {
				ret = export_folder(t, list[i].name, folder);
			}
		}
	}
	if (ret == 0 && sync_dir(t->path) < 0)
		ret = -2;
	arena_free(&a);
	report(t, "exported");
	if (ret == -2)
		return EX_IOERR;
	if (ret == -3)
		return EX_SOFTWARE;
	return ret < 0 ? ctl_store_exit(&t->err) : EX_OK;
}

/* ================================================================ commands */

/* USER FORMAT PATH [-m MAILBOX]; the mailbox only for mbox. */
static int transfer_run(struct ctl *ctl, int argc, char **argv, const struct ctl_command *cmd,
			bool import)
{
	struct transfer t = { .ctl = ctl };
	const char *mailbox = NULL;
	int first = ctl_parse_mailbox_option(cmd, argc, argv, 3, &mailbox);
	int rc;

	if (first < 0)
		return EX_USAGE;
	t.format = argv[first + 1];
	t.path = argv[first + 2];
	bool mbox = strcmp(t.format, "mbox") == 0;

	if (!mbox && strcmp(t.format, "maildir") != 0) {
		ctl_error("unknown format '%s' (mbox or maildir)", t.format);
		return ctl_usage(cmd);
	}
	if (!mbox && (mailbox != NULL || strcmp(t.path, "-") == 0)) {
		ctl_error("-m and \"-\" go with mbox only");
		return ctl_usage(cmd);
	}
	rc = ctl_open_store(ctl, argv[first], &t.user, &t.u);
	if (rc != EX_OK)
		return rc;
	if (mailbox == NULL)
		mailbox = "INBOX";
	if (import)
		rc = mbox ? import_mbox(&t, mailbox) : import_maildir(&t);
	else
		rc = mbox ? export_mbox(&t, mailbox) : export_maildir(&t);
	transfer_free(&t);
	return rc;
}

static int import_run(struct ctl *ctl, int argc, char **argv)
{
	return transfer_run(ctl, argc, argv, &ctl_transfer_commands[0], true);
}

static int export_run(struct ctl *ctl, int argc, char **argv)
{
	return transfer_run(ctl, argc, argv, &ctl_transfer_commands[1], false);
}

const struct ctl_command ctl_transfer_commands[] = {
	{
		.name = "import",
		.usage = "USER mbox PATH [-m MAILBOX] | USER maildir PATH",
		.summary = "import mail from an mbox file or a Maildir",
		.help = "mbox: the messages of the mboxrd file PATH (\"-\": stdin) go into\n"
			"MAILBOX (default INBOX); \">From \" lines lose one '>'; the Status: and\n"
			"X-Status: headers become flags and are removed; the From_ line's date\n"
			"(UTC) becomes the internal date.\n"
			"maildir: the Maildir++ tree PATH: INBOX from PATH, folder .a.b into\n"
			"mailbox a/b; flags from the \":2,\" suffix, internal dates from the\n"
			"files' modification times. Keywords are not imported.\n"
			"Missing mailboxes are created. Each message is stored durably as it\n"
			"is read; after an error, the ones already imported stay (see the\n"
			"counts). Importing twice imports twice.",
		.run = import_run,
	},
	{
		.name = "export",
		.usage = "USER mbox PATH [-m MAILBOX] | USER maildir PATH",
		.summary = "export mail to an mbox file or a Maildir",
		.help = "mbox: MAILBOX (default INBOX) into the new mboxrd file PATH (\"-\":\n"
			"stdout): \"From MAILER-DAEMON <internal date, UTC>\" before each\n"
			"message, lines matching >*From  quoted with one more '>', flags as\n"
			"Status: and X-Status: headers at the end of the header.\n"
			"maildir: every mailbox into a new Maildir++ tree PATH (which must not\n"
			"exist or be empty), flags in the \":2,\" suffix and internal dates as\n"
			"the files' modification times. Keywords are not exported.",
		.run = export_run,
	},
	{ .name = NULL },
};
