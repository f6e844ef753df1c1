/*
 * pam.c — one PAM transaction as Tern runs it (auth worker, `ternctl auth
 * test`): pam_start_confdir with [auth] pam_service and pam_confdir, so
 * tests and the demo use their own service directory without touching
 * /etc/pam.d; pam_authenticate, then pam_acct_mgmt so a disabled or expired
 * account is refused even with the right password.
 *
 * PAM's own failure delay (pam_fail_delay, pam_unix without nodelay) would
 * put a worker thread to sleep; PAM_FAIL_DELAY is set to a function that
 * does nothing, and the daemon delays the answer on its loop instead.
 *
 * The conversation answers only the password prompt (echo off); a module
 * that asks anything else gets no answer. Messages modules send are kept
 * for the log line; the password never goes anywhere but PAM.
 */
#include "auth/auth.h"

#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pam_conv_ctx {
	const char *password;
	char *detail;
	size_t detail_size;
};

/* Append a module's message to detail, as one printable line. */
static void detail_append(char *detail, size_t size, const char *prefix, const char *msg)
{
	size_t len = strlen(detail);

	if (len > 0 && len + 2 < size) {
		strcpy(detail + len, "; ");
		len += 2;
	}
	for (; *prefix != '\0' && len + 1 < size; prefix++)
		detail[len++] = *prefix;
	for (; msg != NULL && *msg != '\0' && len + 1 < size; msg++) {
		unsigned char c = (unsigned char)*msg;

		detail[len++] = c < ' ' || c >= 0x7f ? '?' : (char)c;
	}
	detail[len] = '\0';
}

static int conv_cb(int num_msg, const struct pam_message **msg, struct pam_response **resp_r,
		   void *appdata)
{
	struct pam_conv_ctx *ctx = appdata;
	struct pam_response *resp;
	int i;

	*resp_r = NULL;
	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	resp = calloc((size_t)num_msg, sizeof(*resp));
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < num_msg; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			/* PAM owns and frees the copy (Linux-PAM wipes it). */
			resp[i].resp = strdup(ctx->password);
			if (resp[i].resp == NULL)
				goto fail;
			break;
		case PAM_TEXT_INFO:
			detail_append(ctx->detail, ctx->detail_size, "info: ", msg[i]->msg);
			break;
		case PAM_ERROR_MSG:
			detail_append(ctx->detail, ctx->detail_size, "error: ", msg[i]->msg);
			break;
		default:
			/* PAM_PROMPT_ECHO_ON (a user name or an OTP) and anything
			 * else: this is not an interactive login. */
			detail_append(ctx->detail, ctx->detail_size, "", "refused a non-password prompt");
			goto fail;
		}
	}
	*resp_r = resp;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < num_msg; i++) {
		if (resp[i].resp != NULL) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
	return PAM_CONV_ERR;
}

/* PAM_FAIL_DELAY: the daemon delays failures itself, without a thread. */
static void fail_delay_cb(int retval, unsigned usec_delay, void *appdata)
{
}

static enum auth_result map_pam_result(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_MAXTRIES:
	case PAM_CRED_INSUFFICIENT:
		return AUTH_FAILED;
	case PAM_ACCT_EXPIRED:
	case PAM_PERM_DENIED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return AUTH_DISABLED;
	default:
		return AUTH_TEMPFAIL;
	}
}

/* A module may rewrite PAM_USER (pam_sss does, by design); Tern would then
 * log in someone the client did not name, so that is a failure. */
static bool same_user(pam_handle_t *pamh, const char *user)
{
	const void *item = NULL;

	return pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item != NULL &&
	       strcmp(item, user) == 0;
}

enum auth_result auth_pam_check(const struct cfg *cfg, const char *user, const char *password,
				const char *remote_ip, char *detail, size_t detail_size)
{
	char detail_buf[1];
	struct pam_conv_ctx ctx;
	struct pam_conv conv = { conv_cb, &ctx };
	pam_handle_t *pamh = NULL;
	enum auth_result result;
	const char *step;
	char *env = NULL;
	int rc;

	if (detail == NULL || detail_size == 0) {
		detail = detail_buf;
		detail_size = sizeof(detail_buf);
	}
	detail[0] = '\0';
	ctx.password = password;
	ctx.detail = detail;
	ctx.detail_size = detail_size;
	if (user == NULL || user[0] == '\0' || password == NULL) {
		detail_append(detail, detail_size, "", "no user name or password");
		return AUTH_FAILED;
	}

	step = "pam_start";
	rc = pam_start_confdir(cfg->auth_pam_service, user, &conv, cfg->auth_pam_confdir, &pamh);
	if (rc != PAM_SUCCESS) {
		detail_append(detail, detail_size, "pam_start: ", pam_strerror(NULL, rc));
		return AUTH_TEMPFAIL;
	}
	step = "pam_set_item";
	if (remote_ip != NULL && remote_ip[0] != '\0' &&
	    (rc = pam_set_item(pamh, PAM_RHOST, remote_ip)) != PAM_SUCCESS)
		goto done;
	if ((rc = pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)fail_delay_cb)) != PAM_SUCCESS)
		goto done;
	step = "pam_putenv";
	if (cfg->auth_users_db != NULL) {
		if (asprintf(&env, "TERN_USERS_DB=%s", cfg->auth_users_db) < 0) {
			env = NULL;
			rc = PAM_BUF_ERR;
			goto done;
		}
		if ((rc = pam_putenv(pamh, env)) != PAM_SUCCESS)
			goto done;
	}

	step = "pam_authenticate";
	rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc != PAM_SUCCESS)
		goto done;
	if (!same_user(pamh, user)) {
		rc = PAM_AUTH_ERR;
		detail_append(detail, detail_size, "", "PAM changed the user name");
		goto done;
	}
	step = "pam_acct_mgmt";
	rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc == PAM_SUCCESS && !same_user(pamh, user)) {
		rc = PAM_AUTH_ERR;
		detail_append(detail, detail_size, "", "PAM changed the user name");
	}
done:
	result = map_pam_result(rc);
	if (rc != PAM_SUCCESS) {
		char what[64];

		snprintf(what, sizeof(what), "%s: ", step);
		detail_append(detail, detail_size, what, pam_strerror(pamh, rc));
	}
	pam_end(pamh, rc);
	free(env);
	return result;
}

const char *auth_result_name(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_FAILED:
		return "failed";
	case AUTH_DISABLED:
		return "disabled";
	case AUTH_TEMPFAIL:
		return "tempfail";
	case AUTH_LIMITED:
		return "limited";
	}
	return "unknown";
}
