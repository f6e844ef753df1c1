/*
 * priv.c — dropping root after the sockets are bound and the keys loaded.
 * The daemons then run as mail_user for good: the saved set-user-ID is
 * dropped too, and the drop is verified by trying to get root back.
 */
#include "common.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

int priv_drop(const char *user)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		log_error("mail_user %s does not exist (create it, e.g. useradd --system %s)",
			  user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_error("mail_user %s is root: the daemons must run unprivileged", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		log_error_errno(errno, "cannot drop privileges to %s", user);
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		log_error("privileges could be regained after dropping to %s", user);
		return -1;
	}
	log_info("running as user=%s uid=%u gid=%u", user, (unsigned)pw->pw_uid,
		 (unsigned)pw->pw_gid);
	return 0;
}
