/*
 * sasl.c — the server side of SASL PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), with the initial response of SASL-IR
 * (RFC 4959, RFC 5034), and the strict base64 both use. imapd and pop3d
 * feed it the client's lines; it never talks to the network or PAM.
 *
 * Everything here parses hostile input, so:
 * - base64 is strict (RFC 4648 section 3.5): length a multiple of 4,
 *   padding required, nothing outside the alphabet (no whitespace), no pad
 *   before the end, and the unused bits of the last group must be zero, so
 *   that every accepted string has exactly one decoding;
 * - a line longer than SASL_MAX_INPUT base64 characters is refused before
 *   decoding, so the only memory an exchange takes is the fixed struct;
 * - limits: an identity (authzid, authcid, LOGIN user name) is at most
 *   SASL_ID_MAX bytes, a password at most SASL_PASSWORD_MAX. RFC 4616 asks
 *   for at least 255 each; an identity may be "user*master", two names of
 *   AUTH_NAME_MAX and a separator, and pass phrases can be long.
 * - no field may contain NUL (PLAIN has exactly two, as separators);
 *   authcid and password (LOGIN: user and password) must not be empty;
 * - reasons for refusal name the rule broken, never the input;
 * - decoded bytes live only in the struct, wiped after each step and by
 *   sasl_free.
 *
 * Identities are passed on as sent: auth_identity_resolve normalizes them.
 */
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SASL_ID_MAX 512
#define SASL_PASSWORD_MAX 1024
/* Decoded size of the longest line accepted. */
#define SASL_DECODED_MAX (SASL_MAX_INPUT / 4 * 3)

/* LOGIN's prompts, base64 of "Username:" and "Password:". */
#define LOGIN_USER_PROMPT "VXNlcm5hbWU6"
#define LOGIN_PASS_PROMPT "UGFzc3dvcmQ6"

enum sasl_state {
	SASL_STATE_START,      /* nothing received yet */
	SASL_STATE_PLAIN,      /* sent the empty challenge, wants the message */
	SASL_STATE_LOGIN_USER, /* sent "Username:" */
	SASL_STATE_LOGIN_PASS, /* sent "Password:" */
	SASL_STATE_DONE,       /* credentials ready */
	SASL_STATE_OVER,       /* refused or cancelled: nothing more accepted */
};

struct sasl {
	enum sasl_mech mech;
	enum sasl_state state;
	char authzid[SASL_ID_MAX + 1];
	char authcid[SASL_ID_MAX + 1];
	char password[SASL_PASSWORD_MAX + 1];
	/* The decoded line being worked on. */
	unsigned char in[SASL_DECODED_MAX];
};

ssize_t sasl_base64_decode(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int a = base64_value((unsigned char)in[i], '/');
		int b = base64_value((unsigned char)in[i + 1], '/');
		int c = base64_value((unsigned char)in[i + 2], '/');
		int d = base64_value((unsigned char)in[i + 3], '/');

		if (a < 0 || b < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (c < 0) {
			/* "xx==": only at the end, and b's low 4 bits unused. */
			if (!last || in[i + 2] != '=' || in[i + 3] != '=' || (b & 0x0f) != 0)
				return -1;
			break;
		}
		out[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);
		if (d < 0) {
			/* Three digits and one "=": only at the end, and c's low 2 bits unused. */
			if (!last || in[i + 3] != '=' || (c & 0x03) != 0)
				return -1;
			break;
		}
		out[o++] = (unsigned char)((c & 0x03) << 6 | d);
	}
	return (ssize_t)o;
}

size_t sasl_base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		out[o++] = base64_digit(p[i] >> 2, '/');
		out[o++] = base64_digit((p[i] & 0x03) << 4 | p[i + 1] >> 4, '/');
		out[o++] = base64_digit((p[i + 1] & 0x0f) << 2 | p[i + 2] >> 6, '/');
		out[o++] = base64_digit(p[i + 2] & 0x3f, '/');
	}
	if (len - i == 1) {
		out[o++] = base64_digit(p[i] >> 2, '/');
		out[o++] = base64_digit((p[i] & 0x03) << 4, '/');
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		out[o++] = base64_digit(p[i] >> 2, '/');
		out[o++] = base64_digit((p[i] & 0x03) << 4 | p[i + 1] >> 4, '/');
		out[o++] = base64_digit((p[i + 1] & 0x0f) << 2, '/');
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

int sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	if (strcasecmp(name, "PLAIN") == 0)
		*mech_r = SASL_PLAIN;
	else if (strcasecmp(name, "LOGIN") == 0)
		*mech_r = SASL_LOGIN;
	else
		return -1;
	return 0;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	return mech == SASL_LOGIN ? "LOGIN" : "PLAIN";
}

struct sasl *sasl_begin(enum sasl_mech mech)
{
	struct sasl *s = xcalloc(1, sizeof(*s));

	s->mech = mech;
	s->state = SASL_STATE_START;
	return s;
}

/* Copy one field (no NUL inside: checked by the callers) with its limit. */
static bool set_field(char *dst, size_t max, const unsigned char *src, size_t len)
{
	if (len > max)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* PLAIN: message = [authzid] NUL authcid NUL passwd (RFC 4616 section 2). */
static enum sasl_step plain_message(struct sasl *s, size_t len, const char **why_r)
{
	const unsigned char *nul1, *nul2, *authcid, *password;
	size_t authzid_len, authcid_len, password_len;

	nul1 = memchr(s->in, '\0', len);
	nul2 = nul1 == NULL ? NULL : memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - s->in));
	if (nul2 == NULL) {
		*why_r = "PLAIN message needs two NUL separators";
		return SASL_BAD;
	}
	authcid = nul1 + 1;
	password = nul2 + 1;
	authzid_len = (size_t)(nul1 - s->in);
	authcid_len = (size_t)(nul2 - authcid);
	password_len = len - (size_t)(password - s->in);
	if (memchr(password, '\0', password_len) != NULL) {
		*why_r = "PLAIN message has more than two NUL separators";
		return SASL_BAD;
	}
	if (authcid_len == 0) {
		*why_r = "empty authentication identity";
		return SASL_BAD;
	}
	if (password_len == 0) {
		*why_r = "empty password";
		return SASL_BAD;
	}
	if (!set_field(s->authzid, SASL_ID_MAX, s->in, authzid_len) ||
	    !set_field(s->authcid, SASL_ID_MAX, authcid, authcid_len)) {
		*why_r = "identity too long";
		return SASL_BAD;
	}
	if (!set_field(s->password, SASL_PASSWORD_MAX, password, password_len)) {
		*why_r = "password too long";
		return SASL_BAD;
	}
	return SASL_DONE;
}

/* LOGIN: the decoded line is the user name, or the password. */
static enum sasl_step login_user(struct sasl *s, size_t len, const char **challenge_r,
				 const char **why_r)
{
	if (len == 0) {
		*why_r = "empty user name";
		return SASL_BAD;
	}
	if (memchr(s->in, '\0', len) != NULL) {
		*why_r = "NUL in user name";
		return SASL_BAD;
	}
	if (!set_field(s->authcid, SASL_ID_MAX, s->in, len)) {
		*why_r = "user name too long";
		return SASL_BAD;
	}
	*challenge_r = LOGIN_PASS_PROMPT;
	s->state = SASL_STATE_LOGIN_PASS;
	return SASL_CHALLENGE;
}

static enum sasl_step login_pass(struct sasl *s, size_t len, const char **why_r)
{
	if (len == 0) {
		*why_r = "empty password";
		return SASL_BAD;
	}
	if (memchr(s->in, '\0', len) != NULL) {
		*why_r = "NUL in password";
		return SASL_BAD;
	}
	if (!set_field(s->password, SASL_PASSWORD_MAX, s->in, len)) {
		*why_r = "password too long";
		return SASL_BAD;
	}
	return SASL_DONE;
}

/* Decode a client line into s->in. The initial response may be "=" for an
 * empty one (RFC 4959); a line answering a challenge is plain base64. */
static ssize_t decode_line(struct sasl *s, const char *line, size_t len, bool initial,
			   const char **why_r)
{
	ssize_t n;

	if (len > SASL_MAX_INPUT) {
		*why_r = "response too long";
		return -1;
	}
	if (initial && len == 1 && line[0] == '=')
		return 0;
	n = sasl_base64_decode(line, len, s->in);
	if (n < 0)
		*why_r = "invalid base64";
	return n;
}

/* The exchange failed or ended: nothing decoded may stay in memory. */
static void wipe(struct sasl *s)
{
	mem_wipe(s->authzid, sizeof(s->authzid));
	mem_wipe(s->authcid, sizeof(s->authcid));
	mem_wipe(s->password, sizeof(s->password));
}

enum sasl_step sasl_step(struct sasl *s, const char *line, size_t len, const char **challenge_r,
			 const char **why_r)
{
	enum sasl_state state = s->state;
	enum sasl_step ret;
	ssize_t n;

	*challenge_r = NULL;
	*why_r = NULL;
	if (state == SASL_STATE_DONE || state == SASL_STATE_OVER) {
		*why_r = "authentication exchange already finished";
		s->state = SASL_STATE_OVER;
		wipe(s);
		return SASL_BAD;
	}
	if (line == NULL) {
		if (state != SASL_STATE_START) {
			*why_r = "missing client response";
			ret = SASL_BAD;
		} else if (s->mech == SASL_PLAIN) {
			*challenge_r = "";
			s->state = SASL_STATE_PLAIN;
			ret = SASL_CHALLENGE;
		} else {
			*challenge_r = LOGIN_USER_PROMPT;
			s->state = SASL_STATE_LOGIN_USER;
			ret = SASL_CHALLENGE;
		}
		goto out;
	}
	if (len == 1 && line[0] == '*') {
		s->state = SASL_STATE_OVER;
		wipe(s);
		return SASL_CANCELLED;
	}

	n = decode_line(s, line, len, state == SASL_STATE_START, why_r);
	if (n < 0) {
		ret = SASL_BAD;
	} else if (s->mech == SASL_PLAIN) {
		ret = plain_message(s, (size_t)n, why_r);
	} else if (state == SASL_STATE_LOGIN_PASS) {
		ret = login_pass(s, (size_t)n, why_r);
	} else {
		/* LOGIN's initial response, or the answer to "Username:". */
		ret = login_user(s, (size_t)n, challenge_r, why_r);
	}
	/* A failed decode may have written part of its output already. */
	if (len <= SASL_MAX_INPUT)
		mem_wipe(s->in, len / 4 * 3);
out:
	if (ret == SASL_DONE) {
		s->state = SASL_STATE_DONE;
	} else if (ret == SASL_BAD) {
		s->state = SASL_STATE_OVER;
		wipe(s);
	}
	return ret;
}

void sasl_credentials(const struct sasl *s, const char **authzid_r, const char **authcid_r,
		      const char **password_r)
{
	/* Before SASL_DONE there are no credentials: empty strings, so that a
	 * misuse fails authentication instead of crashing. */
	if (s->state != SASL_STATE_DONE) {
		*authzid_r = *authcid_r = *password_r = "";
		return;
	}
	*authzid_r = s->authzid;
	*authcid_r = s->authcid;
	*password_r = s->password;
}

void sasl_free(struct sasl **sp)
{
	struct sasl *s = *sp;

	if (s == NULL)
		return;
	mem_wipe(s, sizeof(*s));
	free(s);
	*sp = NULL;
}
