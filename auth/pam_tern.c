/*
 * pam_tern.c — pam_tern.so, the PAM module for Tern's virtual users: it
 * checks a password and the account's enabled flag against the users
 * database that `ternctl user` manages.
 *
 *   auth     required pam_tern.so [db=/var/lib/tern/users.sqlite]
 *   account  required pam_tern.so [db=...]
 *
 * The database path: the db= argument, else TERN_USERS_DB in the PAM
 * environment (the daemons set it from [auth] users_db), else the default
 * below. The database is opened per call and only read, so a change made
 * by ternctl counts at the next login and nothing stays open in the
 * application between transactions.
 *
 * auth: PAM_SUCCESS, PAM_AUTH_ERR (wrong password), PAM_USER_UNKNOWN,
 * PAM_AUTHINFO_UNAVAIL (the database cannot be read). An unknown user costs
 * one yescrypt verification against a dummy hash, like a known one, so the
 * time taken does not tell which names exist.
 * account: PAM_SUCCESS (enabled), PAM_ACCT_EXPIRED (disabled),
 * PAM_USER_UNKNOWN, PAM_AUTHINFO_UNAVAIL.
 *
 * Only real errors go to syslog (pam_syslog); never a password, and not
 * every wrong password either: the daemon logs each attempt itself.
 */
#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT

#include "auth/auth.h"

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define PAM_TERN_DEFAULT_DB "/var/lib/tern/users.sqlite"

/* A yescrypt hash of a random password, at libcrypt's default cost like
 * the real ones, for verifying against when the user does not exist. */
static const char dummy_hash[] =
	"$y$j9T$B0ljOosJuFyBeMDLPrHBb1$2vhRo4oVf.pHlbQ.QoIaTfyKPJJKypSb/oxV6D/7fk8";

/* The database path from the arguments and environment, or NULL after
 * logging an unknown argument (a typo must not be silently ignored). */
static const char *db_path(pam_handle_t *pamh, int argc, const char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "db=", 3) == 0 && argv[i][3] != '\0') {
			path = argv[i] + 3;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option: %s", argv[i]);
			return NULL;
		}
	}
	if (path == NULL)
		path = pam_getenv(pamh, "TERN_USERS_DB");
	if (path == NULL || path[0] == '\0')
		path = PAM_TERN_DEFAULT_DB;
	return path;
}

/* PAM_USER, normalized into norm. PAM_SUCCESS, PAM_USER_UNKNOWN for a name
 * that cannot be a Tern user, or PAM's own error. */
static int get_user(pam_handle_t *pamh, char *norm, size_t size)
{
	const char *user = NULL;
	const char *why;
	int rc;

	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS)
		return rc;
	if (user == NULL || auth_name_normalize(user, norm, size, &why) < 0)
		return PAM_USER_UNKNOWN;
	return PAM_SUCCESS;
}

/*
 * Look name up. PAM_SUCCESS with *user_r (and *hash_r if not NULL),
 * PAM_USER_UNKNOWN, or PAM_AUTHINFO_UNAVAIL after logging why.
 */
static int lookup(pam_handle_t *pamh, const char *path, const char *name,
		  struct auth_user *user_r, char **hash_r)
{
	struct userdb *db = NULL;
	char *error = NULL;
	int rc;

	if (userdb_open(path, false, &db, &error) < 0) {
		pam_syslog(pamh, LOG_ERR, "users database: %s", error != NULL ? error : path);
		free(error);
		return PAM_AUTHINFO_UNAVAIL;
	}
	switch (userdb_get(db, name, "", user_r, hash_r, &error)) {
	case USERDB_OK:
		rc = PAM_SUCCESS;
		break;
	case USERDB_NOT_FOUND:
		rc = PAM_USER_UNKNOWN;
		break;
	default:
		pam_syslog(pamh, LOG_ERR, "users database: %s", error != NULL ? error : path);
		rc = PAM_AUTHINFO_UNAVAIL;
		break;
	}
	free(error);
	userdb_close(&db);
	return rc;
}

static void free_hash(char *hash)
{
	if (hash != NULL) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	char name[AUTH_NAME_MAX + 1];
	struct auth_user user;
	const char *password = NULL;
	const char *path;
	char *hash = NULL;
	int rc, user_rc;

	path = db_path(pamh, argc, argv);
	if (path == NULL)
		return PAM_SERVICE_ERR;
	user_rc = get_user(pamh, name, sizeof(name));
	if (user_rc != PAM_SUCCESS && user_rc != PAM_USER_UNKNOWN)
		return user_rc;
	rc = pam_get_authtok(pamh, PAM_AUTHTOK, &password, NULL);
	if (rc != PAM_SUCCESS)
		return rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : rc;
	/* No user of ours has an empty password. */
	if (password == NULL || password[0] == '\0')
		return PAM_AUTH_ERR;

	if (user_rc == PAM_SUCCESS)
		user_rc = lookup(pamh, path, name, &user, &hash);
	if (user_rc == PAM_AUTHINFO_UNAVAIL)
		return PAM_AUTHINFO_UNAVAIL;
	if (user_rc != PAM_SUCCESS) {
		/* Same work as for a real user; the answer is no regardless. */
		(void)auth_password_verify(password, dummy_hash);
		return PAM_USER_UNKNOWN;
	}
	rc = auth_password_verify(password, hash) ? PAM_SUCCESS : PAM_AUTH_ERR;
	free_hash(hash);
	return rc;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	char name[AUTH_NAME_MAX + 1];
	struct auth_user user;
	const char *path;
	int rc;

	path = db_path(pamh, argc, argv);
	if (path == NULL)
		return PAM_SERVICE_ERR;
	rc = get_user(pamh, name, sizeof(name));
	if (rc != PAM_SUCCESS)
		return rc;
	rc = lookup(pamh, path, name, &user, NULL);
	if (rc != PAM_SUCCESS)
		return rc;
	return user.enabled ? PAM_SUCCESS : PAM_ACCT_EXPIRED;
}
