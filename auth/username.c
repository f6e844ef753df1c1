/*
 * username.c — the one gate every login name passes before PAM, a log line
 * or a path sees it (ROBUSTNESS 19: "../../etc", "a/b", "a%u", NUL, TAB).
 *
 * A name is 1..AUTH_NAME_MAX bytes of ASCII letters, digits and . _ - + @.
 * It does not start with '.', '-' or '@' and has no "..", so it is safe as a
 * single path component and cannot look like an option. At most one '@',
 * with a non-empty local part before it and a domain after it that starts
 * with a letter or digit and does not end with '.'. The stored form is
 * lower-case, so "Alice@Example.ORG" and "alice@example.org" are one user.
 *
 * Part of the auth core linked into pam_tern.so: plain libc only.
 */
#include "auth/auth.h"

#include <string.h>

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '+' || c == '@';
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int auth_name_normalize(const char *name, char *out, size_t out_size, const char **why_r)
{
	const char *at = NULL;
	size_t len, i;

	*why_r = NULL;
	if (out_size > 0)
		out[0] = '\0';
	if (name == NULL || name[0] == '\0') {
		*why_r = "empty login name";
		return -1;
	}
	/* strnlen: never walk far past the limit on hostile input. */
	len = strnlen(name, AUTH_NAME_MAX + 1);
	if (len > AUTH_NAME_MAX) {
		*why_r = "login name too long";
		return -1;
	}
	if (out_size < len + 1) {
		*why_r = "login name too long";
		return -1;
	}
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!name_char_ok(c)) {
			*why_r = "invalid character in login name";
			goto fail;
		}
		if (c == '@') {
			if (at != NULL) {
				*why_r = "more than one '@' in login name";
				goto fail;
			}
			at = name + i;
		}
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';

	if (out[0] == '.' || out[0] == '-' || out[0] == '@') {
		*why_r = "login name must not start with '.', '-' or '@'";
		goto fail;
	}
	if (strstr(out, "..") != NULL) {
		*why_r = "'..' in login name";
		goto fail;
	}
	if (out[len - 1] == '.') {
		*why_r = "login name must not end with '.'";
		goto fail;
	}
	if (at != NULL) {
		const char *domain = out + (at - name) + 1;

		if (*domain == '\0') {
			*why_r = "empty domain in login name";
			goto fail;
		}
		if (!alnum(*domain)) {
			*why_r = "domain must start with a letter or digit";
			goto fail;
		}
	}
	return 0;
fail:
	out[0] = '\0';
	return -1;
}
