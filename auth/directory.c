/*
 * directory.c — the user directory: does a user exist, where is their mail,
 * what is their quota. No passwords here; PAM checks those.
 *
 * Virtual users come from the users database. It is opened on first use
 * and kept open (SQLite sees ternctl's changes), so a daemon started before
 * the first `ternctl user add` works once the file appears: a missing file
 * means "no users yet", not an error. Anything else that stops a read is
 * TEMPFAIL, so LMTP answers 4xx and the MTA retries.
 *
 * System users come from getpwnam_r: the account must exist and must not be
 * uid 0 (root never reads mail through Tern). Their mail is under
 * mail_root/name like virtual users', owned by mail_user, since the daemons
 * run as that one user: home directories are not used. No quota.
 *
 * A directory may be shared by threads: a mutex serialises lookups on the
 * one database handle (the auth worker's threads spend their time in PAM,
 * not here).
 */
#include "auth/auth.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct auth_directory {
	enum cfg_user_kind kind;
	char *users_db;
	char *mail_root;
	pthread_mutex_t lock;
	struct userdb *db; /* virtual: NULL until the file exists */
};

/* Open the users database if it exists. 1 open, 0 no file yet, -1 error. */
static int directory_open_db(struct auth_directory *dir, char **error_r)
{
	struct stat st;

	if (dir->db != NULL)
		return 1;
	if (stat(dir->users_db, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = NULL;
		if (asprintf(error_r, "%s: %s", dir->users_db, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	return userdb_open(dir->users_db, false, &dir->db, error_r) < 0 ? -1 : 1;
}

int auth_directory_open(const struct cfg *cfg, struct auth_directory **dir_r, char **error_r)
{
	struct auth_directory *dir = xcalloc(1, sizeof(*dir));

	*dir_r = NULL;
	*error_r = NULL;
	dir->kind = cfg->auth_users;
	dir->mail_root = xstrdup(cfg->mail_root);
	dir->users_db = xstrdup(cfg->auth_users_db);
	pthread_mutex_init(&dir->lock, NULL);
	/* An unreadable or foreign file is reported now, at start-up, rather
	 * than as "try later" at every login. */
	if (dir->kind == CFG_USERS_VIRTUAL && directory_open_db(dir, error_r) < 0) {
		auth_directory_close(&dir);
		return -1;
	}
	*dir_r = dir;
	return 0;
}

void auth_directory_close(struct auth_directory **dirp)
{
	struct auth_directory *dir = *dirp;

	if (dir == NULL)
		return;
	*dirp = NULL;
	userdb_close(&dir->db);
	pthread_mutex_destroy(&dir->lock);
	free(dir->users_db);
	free(dir->mail_root);
	free(dir);
}

static enum auth_lookup_result lookup_virtual(struct auth_directory *dir, const char *name,
					      struct auth_user *user_r)
{
	enum auth_lookup_result result = AUTH_LOOKUP_TEMPFAIL;
	char *error = NULL;
	int ret;

	pthread_mutex_lock(&dir->lock);
	ret = directory_open_db(dir, &error);
	if (ret == 0) {
		result = AUTH_LOOKUP_NOT_FOUND;
	} else if (ret > 0) {
		switch (userdb_get(dir->db, name, dir->mail_root, user_r, NULL, &error)) {
		case USERDB_OK:
			result = AUTH_LOOKUP_FOUND;
			break;
		case USERDB_NOT_FOUND:
			result = AUTH_LOOKUP_NOT_FOUND;
			break;
		default:
			/* Reopen next time: the file may have been replaced. */
			userdb_close(&dir->db);
			break;
		}
	}
	pthread_mutex_unlock(&dir->lock);
	if (result == AUTH_LOOKUP_TEMPFAIL)
		log_error("users database: %s", error != NULL ? error : "out of memory");
	free(error);
	return result;
}

static enum auth_lookup_result lookup_system(struct auth_directory *dir, const char *name,
					     struct auth_user *user_r)
{
	struct passwd pw, *found = NULL;
	long size_hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = size_hint > 0 ? (size_t)size_hint : 4096;
	size_t root_len = strlen(dir->mail_root);
	char *buf = NULL;
	int ret, n;

	/* Grow the buffer until the entry fits (ERANGE), within reason. */
	for (;;) {
		buf = xrealloc(buf, size);
		ret = getpwnam_r(name, &pw, buf, size, &found);
		if (ret != ERANGE || size >= 1024 * 1024)
			break;
		size *= 2;
	}
	if (found == NULL) {
		free(buf);
		/* No such account is 0 or one of these, depending on the NSS
		 * module (getpwnam_r(3)); anything else is a real error. */
		if (ret == 0 || ret == ENOENT || ret == ESRCH || ret == EBADF || ret == EPERM)
			return AUTH_LOOKUP_NOT_FOUND;
		log_error_errno(ret, "getpwnam_r(%s)", name);
		return AUTH_LOOKUP_TEMPFAIL;
	}
	if (pw.pw_uid == 0) {
		free(buf);
		return AUTH_LOOKUP_NOT_FOUND;
	}
	free(buf);

	memset(user_r, 0, sizeof(*user_r));
	strcpy(user_r->name, name);
	user_r->enabled = true;
	n = snprintf(user_r->mail_dir, sizeof(user_r->mail_dir), "%s%s%s", dir->mail_root,
		     root_len > 0 && dir->mail_root[root_len - 1] == '/' ? "" : "/", name);
	if (n < 0 || (size_t)n >= sizeof(user_r->mail_dir)) {
		log_error("mail directory of %s too long", name);
		return AUTH_LOOKUP_TEMPFAIL;
	}
	return AUTH_LOOKUP_FOUND;
}

enum auth_lookup_result auth_directory_lookup(struct auth_directory *dir, const char *name,
					      struct auth_user *user_r)
{
	char norm[AUTH_NAME_MAX + 1];
	const char *why;

	if (auth_name_normalize(name, norm, sizeof(norm), &why) < 0)
		return AUTH_LOOKUP_NOT_FOUND;
	if (dir->kind == CFG_USERS_SYSTEM)
		return lookup_system(dir, norm, user_r);
	return lookup_virtual(dir, norm, user_r);
}
