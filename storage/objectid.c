/*
 * objectid.c — object identifiers (RFC 8474): a mailbox's MAILBOXID and a
 * message's EMAILID.
 *
 * MAILBOXID lives in the folder, in the file tern-mailboxid (the id and a
 * newline), so that it is the Maildir's like everything an index rebuild
 * must not lose: a rename of the folder takes it along, a deleted folder
 * takes it away, and a folder made again under the same name gets a new
 * one. Folders without the file (made by another program, or before ids
 * existed) get one the first time it is asked for. The file is written in
 * tmp/ and linked into place, so of two processes that make one at once
 * exactly one wins and both answer with the winner's id. A file that holds
 * no valid id is replaced by a rename; two that replace one at the same
 * moment may each answer their own id once (the file keeps the last).
 *
 * EMAILID is derived from the message's GUID (its Maildir base name),
 * which a move keeps and a copy into another folder shares; base names
 * hold characters an objectid cannot ('.', '\\', anything but '/', ','
 * and ':'), so the id is a keyed hash of the GUID with a fixed key: the
 * same GUID gives the same id in every process, on every host, after
 * every rebuild.
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

bool store_objectid_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= STORE_OBJECTID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

static void hex128(char prefix, const uint64_t h[2], char id[STORE_OBJECTID_SIZE])
{
	snprintf(id, STORE_OBJECTID_SIZE, "%c%016" PRIx64 "%016" PRIx64, prefix, h[0], h[1]);
}

/* ---------------------------------------------------------- EMAILID */

void store__email_id(const char *guid, char id[STORE_OBJECTID_SIZE])
{
	/* Fixed forever: changing it changes every EMAILID clients know. */
	static const uint64_t key[2] = { 0x7465726e2d656d61ULL, 0x696c69642d763121ULL };
	uint64_t h[2];

	store__siphash128(key, guid, strlen(guid), h);
	/* "M" as RFC 8474's examples do: an id that starts with a letter
	 * is never read as a number or NIL. */
	hex128('M', h, id);
}

int store_msg_email_id(struct store_mailbox *mb, uint32_t uid, char id[STORE_OBJECTID_SIZE],
		       struct store_error *err)
{
	/* One cached statement: FETCH 1:* EMAILID costs a B-tree lookup a
	 * message. */
	sqlite3_stmt *st = store__stmt(mb->user, STORE_STMT_GUID,
				       "SELECT guid FROM message WHERE mailbox_id = ? AND uid = ?",
				       err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mb->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store__email_id((const char *)sqlite3_column_text(st, 0), id);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return store__fail(err, STORE_ERR_NOTFOUND, "no UID %u", uid);
	return store__fail_db(err, mb->user->db, "email id");
}

/* -------------------------------------------------------- MAILBOXID */

int store__mailboxid_read(const char *folder, char id[STORE_OBJECTID_SIZE],
			  struct store_error *err)
{
	char text[STORE_OBJECTID_SIZE + 2];
	int ret = store__small_file_read(folder, STORE_MAILBOXID_FILE, text, sizeof(text), err);

	if (ret <= 0)
		return ret;
	text[strcspn(text, "\r\n")] = '\0';
	if (!store_objectid_valid(text))
		return 2;
	memcpy(id, text, strlen(text) + 1);
	return 1;
}

/* A new id: "F" and 128 random bits in hex (unique among the user's
 * mailboxes, and never reused by a folder made again later). */
static void mailboxid_new(char id[STORE_OBJECTID_SIZE])
{
	uint64_t h[2];

	if (getrandom(h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		/* No entropy source: time, pid and a counter, still unique
		 * within this host. */
		static _Atomic uint64_t seq;

		h[0] = (uint64_t)store__now_ns();
		h[1] = ((uint64_t)getpid() << 32) ^ atomic_fetch_add(&seq, 1);
	}
	hex128('F', h, id);
}

/* Write a new id for folder: in tmp/, then linked to its name so that a
 * concurrent writer's file is never replaced (replace: one that is not a
 * valid id is). 1 ours is in place, 0 another is (read it again), -1. */
static int mailboxid_write(const char *folder, const char *id, bool replace,
			   struct store_error *err)
{
	static _Atomic uint64_t seq;
	char path[4096], tmp[4096], text[STORE_OBJECTID_SIZE + 1];
	int len = snprintf(text, sizeof(text), "%s\n", id);

	snprintf(path, sizeof(path), "%s/" STORE_MAILBOXID_FILE, folder);
	snprintf(tmp, sizeof(tmp), "%s/tmp/" STORE_MAILBOXID_FILE ".%d.%" PRIu64, folder,
		 (int)getpid(), (uint64_t)atomic_fetch_add(&seq, 1));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return store__fail_errno(err, errno, "create %s", tmp);
	if (write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		int e = errno == 0 ? ENOSPC : errno;

		close(fd);
		unlink(tmp);
		return store__fail_errno(err, e, "write %s", tmp);
	}
	close(fd);
	int rc = replace ? rename(tmp, path) : link(tmp, path);
	int e = errno;

	if (!replace)
		unlink(tmp);
	if (rc < 0) {
		if (e == EEXIST)
			return 0;
		if (replace)
			unlink(tmp);
		return store__fail_errno(err, e, "%s %s", replace ? "rename" : "link", path);
	}
	/* The id may be told to a client once this returns: it must not
	 * vanish in a crash. */
	return store__fsync_dir(folder, err) < 0 ? -1 : 1;
}

/* A file that holds no id, replaced by a new id under an exclusive lock
 * on the folder (flock on its directory): two that found it damaged at
 * once would otherwise each put their own in place, and the first could
 * change after a client saw it. Under the lock the file is read again.
 * 1 ours is in place, 0 another's is (read it again), -1. */
static int mailboxid_replace(const char *folder, char id[STORE_OBJECTID_SIZE],
			     struct store_error *err)
{
	int dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0)
		return store__fail_errno(err, errno, "open %s", folder);
	while (flock(dir, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;

			close(dir);
			return store__fail_errno(err, e, "lock %s", folder);
		}
	}
	int r = store__mailboxid_read(folder, id, err);

	if (r == 2) {
		log_warn("%s/" STORE_MAILBOXID_FILE ": not a mailbox id, a new one is made", folder);
		mailboxid_new(id);
		r = mailboxid_write(folder, id, true, err);
	} else if (r >= 0) {
		r = 0;
	}
	close(dir); /* releases the lock */
	return r;
}

int store__mailboxid_get(const char *folder, char id[STORE_OBJECTID_SIZE],
			 struct store_error *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int r = store__mailboxid_read(folder, id, err);

		if (r < 0 || r == 1)
			return r < 0 ? -1 : 0;
		/* A file that is there but holds no id is replaced. Decided by
		 * what the read found: a file another thread or process has
		 * linked into place since is a valid id, never replaced. */
		if (r == 2) {
			r = mailboxid_replace(folder, id, err);
			if (r != 0)
				return r < 0 ? -1 : 0;
			continue;
		}
		mailboxid_new(id);
		r = mailboxid_write(folder, id, false, err);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	return store__fail(err, STORE_ERR_TEMP, "%s: no stable mailbox id", folder);
}

int store_mailbox_id_of(struct store_user *u, const char *name, struct arena *a,
			const char **id_r, struct store_error *err)
{
	struct store_mbox_row row;
	char id[STORE_OBJECTID_SIZE];

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	int found = store__mbox_find(u, name, &row, err);

	if (found <= 0) {
		if (found == 0)
			store__fail(err, STORE_ERR_NOTFOUND, "no mailbox %s", name);
		return -1;
	}
	char *folder = store__folder_path(u, name, err);

	if (folder == NULL)
		return -1;
	int ret = store__mailboxid_get(folder, id, err);

	free(folder);
	if (ret == 0)
		*id_r = arena_strdup(a, id);
	return ret;
}

const char *store_mailbox_id(struct store_mailbox *mb, struct store_error *err)
{
	if (mb->mailboxid[0] == '\0' && store__mailboxid_get(mb->folder, mb->mailboxid, err) < 0) {
		mb->mailboxid[0] = '\0';
		return NULL;
	}
	return mb->mailboxid;
}
