/*
 * users.c — finding a user and opening their mail, for every ternctl
 * command that works on one user's store.
 *
 * Lookups go through the same user directory as the daemons (virtual users
 * from the users database, system users from the system's accounts), so a
 * command sees exactly the user, mail directory and quota that IMAP, POP3
 * and LMTP see. The store is opened with that quota, so that mail added by
 * ternctl counts as LMTP's does.
 */
#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ctl_lookup_user(struct ctl *ctl, const char *name, struct auth_user *user_r)
{
	char norm[AUTH_NAME_MAX + 1];
	const char *why;

	/* Checked here too (the directory would only say "not found"), so the
	 * administrator learns why; the name itself is not echoed. */
	if (auth_name_normalize(name, norm, sizeof(norm), &why) < 0) {
		ctl_error("invalid user name: %s", why);
		return EX_NOUSER;
	}
	/* A users database that was never created holds nobody. */
	if (ctl->cfg->auth_users == CFG_USERS_VIRTUAL &&
	    access(ctl->cfg->auth_users_db, F_OK) < 0 && errno == ENOENT) {
		ctl_error("no such user: %s (the users database %s does not exist yet)", norm,
			  ctl->cfg->auth_users_db);
		return EX_NOUSER;
	}

	struct auth_directory *dir;
	char *error = NULL;

	if (auth_directory_open(ctl->cfg, &dir, &error) < 0) {
		ctl_error("cannot open the user directory: %s", error);
		free(error);
		return EX_TEMPFAIL;
	}
	enum auth_lookup_result r = auth_directory_lookup(dir, norm, user_r);

	auth_directory_close(&dir);
	switch (r) {
	case AUTH_LOOKUP_FOUND:
		return EX_OK;
	case AUTH_LOOKUP_NOT_FOUND:
		ctl_error("no such user: %s", norm);
		return EX_NOUSER;
	case AUTH_LOOKUP_TEMPFAIL:
		break;
	}
	ctl_error("looking up %s failed (the user directory could not answer; see above)", norm);
	return EX_TEMPFAIL;
}

int ctl_open_store(struct ctl *ctl, const char *name, struct auth_user *user_r,
		   struct store_user **store_r)
{
	int rc = ctl_lookup_user(ctl, name, user_r);

	if (rc != EX_OK)
		return rc;

	struct store_quota quota = {
		.max_bytes = user_r->quota_bytes,
		.max_messages = user_r->quota_messages,
	};
	/* create: a user's mail directory appears on first use, as it does
	 * for a first delivery over LMTP. */
	struct store_user_options opt = { .create = true, .quota = &quota };
	struct store_error err = { 0 };

	if (store_user_open(user_r->mail_dir, &opt, store_r, &err) < 0) {
		ctl_error("cannot open the mail of %s in %s: %s", user_r->name, user_r->mail_dir,
			  err.msg);
		return ctl_store_exit(&err);
	}
	return EX_OK;
}

int ctl_store_exit(const struct store_error *err)
{
	switch (err->code) {
	case STORE_ERR_TEMP:
	case STORE_ERR_NOSPACE:
	case STORE_ERR_CORRUPT:
		return EX_TEMPFAIL;
	case STORE_ERR_QUOTA:
	case STORE_ERR_EXISTS:
		return EX_CANTCREAT;
	case STORE_ERR_NOTFOUND:
		return EX_NOINPUT;
	case STORE_ERR_BADNAME:
	case STORE_ERR_LIMIT:
		return EX_DATAERR;
	case STORE_ERR_PERM:
		return EX_NOPERM;
	case STORE_ERR_NONE:
		break;
	}
	return EX_SOFTWARE;
}
