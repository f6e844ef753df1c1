/*
 * identity.c — who logs in as whom: plain logins and master-user logins
 * ([auth] master_users, master_separator; docs/configuration.md).
 *
 * A login names one user, whose password PAM checks and as whom the session
 * runs. A master login names two: the master, whose password PAM checks,
 * and the user whose mail the session opens. A client asks for one in
 * either of two ways:
 * - the login name "user*master" (with the configured separator), in any
 *   mechanism, IMAP LOGIN and POP3 USER included;
 * - SASL with an authorization identity (user) that differs from the
 *   authentication identity (master).
 * Master logins are off while master_users is empty; then a login with the
 * separator, or an authzid other than the authcid, is refused. An authzid
 * equal to the authcid (after normalization) is a plain login. Both ways at
 * once ("user*master" with an authzid) is refused as ambiguous.
 *
 * Every name is normalized (auth_name_normalize) before it is compared or
 * handed on, so the outputs are canonical names; the separators allowed by
 * the configuration are never valid in a name. The master list is compared
 * in normalized form too, entries that are not valid names never match.
 */
#include "auth/auth.h"

#include <string.h>

static bool is_master(const struct cfg *cfg, const char *name)
{
	char item[AUTH_NAME_MAX + 1];
	const char *why;

	for (size_t i = 0; i < cfg->auth_master_users.count; i++) {
		if (auth_name_normalize(cfg->auth_master_users.items[i], item, sizeof(item),
					&why) == 0 &&
		    strcmp(item, name) == 0)
			return true;
	}
	return false;
}

static int normalize(const char *name, char *out, size_t size)
{
	const char *why;

	return auth_name_normalize(name, out, size, &why);
}

/* Normalize the part of s before end. */
static int normalize_part(const char *s, const char *end, char *out, size_t size)
{
	char part[AUTH_NAME_MAX + 2];
	size_t len = (size_t)(end - s);

	/* Longer than any valid name: refuse without copying. */
	if (len > AUTH_NAME_MAX)
		return -1;
	memcpy(part, s, len);
	part[len] = '\0';
	return normalize(part, out, size);
}

int auth_identity_resolve(const struct cfg *cfg, const char *login, const char *authzid,
			  char *pam_user_r, char *target_r, char *master_r, size_t size)
{
	const char *sep = cfg->auth_master_separator;
	bool masters = cfg->auth_master_users.count > 0;
	const char *split = NULL;

	if (size == 0)
		return -1;
	pam_user_r[0] = target_r[0] = master_r[0] = '\0';
	/* auth_name_normalize's contract: room for any valid name. */
	if (size < AUTH_NAME_MAX + 1)
		return -1;
	if (sep != NULL && sep[0] != '\0')
		split = strstr(login, sep);

	if (split != NULL) {
		/* "user*master" */
		if (!masters || (authzid != NULL && authzid[0] != '\0'))
			goto fail;
		if (normalize_part(login, split, target_r, size) < 0 ||
		    normalize(split + strlen(sep), master_r, size) < 0 ||
		    !is_master(cfg, master_r))
			goto fail;
		memcpy(pam_user_r, master_r, strlen(master_r) + 1);
		return 0;
	}

	if (normalize(login, pam_user_r, size) < 0)
		goto fail;
	if (authzid == NULL || authzid[0] == '\0') {
		memcpy(target_r, pam_user_r, strlen(pam_user_r) + 1);
		return 0;
	}
	if (normalize(authzid, target_r, size) < 0)
		goto fail;
	if (strcmp(target_r, pam_user_r) == 0)
		return 0;
	/* SASL: authcid is the master, authzid the user. */
	if (!masters || !is_master(cfg, pam_user_r))
		goto fail;
	memcpy(master_r, pam_user_r, strlen(pam_user_r) + 1);
	return 0;
fail:
	pam_user_r[0] = target_r[0] = master_r[0] = '\0';
	return -1;
}
