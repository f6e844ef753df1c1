/*
 * fuzz-sasl.c — libFuzzer target for auth/sasl.c, the first code to see a
 * client's AUTHENTICATE data. The input is split at newlines into client
 * lines; the first byte picks the mechanism and whether the first line is
 * an initial response. Invariants checked:
 * - every step gives one of the four results, a challenge only with
 *   SASL_CHALLENGE (and then one of the mechanism's own), a reason with
 *   SASL_BAD;
 * - at SASL_DONE the credentials are NUL-terminated within the limits,
 *   authcid and password are not empty, and re-encoding them gives a
 *   message that a new exchange accepts with the very same credentials;
 * - after DONE, BAD or CANCELLED, every further step is SASL_BAD;
 * - each line, decoded alone, is either refused or decodes to bytes that
 *   encode back to exactly that line (strict base64 has one form).
 */
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* sasl.c's limits (SASL_ID_MAX, SASL_PASSWORD_MAX). */
#define ID_MAX 512
#define PASSWORD_MAX 1024

static void check_base64(const char *line, size_t len)
{
	unsigned char *dec = malloc(len / 4 * 3 + 1);
	char *enc;
	ssize_t n;

	if (dec == NULL)
		abort();
	n = sasl_base64_decode(line, len, dec);
	if (n >= 0) {
		if ((size_t)n > len / 4 * 3 || (size_t)n + 2 < len / 4 * 3)
			abort();
		enc = malloc(((size_t)n + 2) / 3 * 4 + 1);
		if (enc == NULL)
			abort();
		if (sasl_base64_encode(dec, (size_t)n, enc) != len || memcmp(enc, line, len) != 0)
			abort();
		free(enc);
	}
	free(dec);
}

static bool valid_challenge(enum sasl_mech mech, const char *c)
{
	if (c == NULL)
		return false;
	if (mech == SASL_PLAIN)
		return c[0] == '\0';
	return strcmp(c, "VXNlcm5hbWU6") == 0 || strcmp(c, "UGFzc3dvcmQ6") == 0;
}

/* A finished exchange's credentials, fed again as a fresh one, must give
 * the same credentials. */
static void check_replay(enum sasl_mech mech, const char *z, const char *c, const char *p)
{
	size_t zl = strlen(z), cl = strlen(c), pl = strlen(p);
	size_t len = zl + 1 + cl + 1 + pl;
	char *msg = malloc(len), *line = malloc((len + 2) / 3 * 4 + 1);
	const char *challenge, *why, *z2, *c2, *p2;
	struct sasl *s = sasl_begin(mech);
	enum sasl_step r;

	if (msg == NULL || line == NULL)
		abort();
	if (mech == SASL_PLAIN) {
		memcpy(msg, z, zl + 1);
		memcpy(msg + zl + 1, c, cl + 1);
		memcpy(msg + zl + 1 + cl + 1, p, pl);
		r = sasl_step(s, line, sasl_base64_encode(msg, len, line), &challenge, &why);
	} else {
		r = sasl_step(s, line, sasl_base64_encode(c, cl, line), &challenge, &why);
		if (r != SASL_CHALLENGE)
			abort();
		r = sasl_step(s, line, sasl_base64_encode(p, pl, line), &challenge, &why);
	}
	if (r != SASL_DONE)
		abort();
	sasl_credentials(s, &z2, &c2, &p2);
	if (strcmp(z, z2) != 0 || strcmp(c, c2) != 0 || strcmp(p, p2) != 0)
		abort();
	sasl_free(&s);
	free(msg);
	free(line);
}

static void check_done(const struct sasl *s, enum sasl_mech mech)
{
	const char *z, *c, *p;

	sasl_credentials(s, &z, &c, &p);
	if (z == NULL || c == NULL || p == NULL)
		abort();
	/* strnlen: the fields end with a NUL within their limits. */
	if (strnlen(z, ID_MAX + 1) > ID_MAX || strnlen(c, ID_MAX + 1) > ID_MAX ||
	    strnlen(p, PASSWORD_MAX + 1) > PASSWORD_MAX)
		abort();
	if (c[0] == '\0' || p[0] == '\0')
		abort();
	if (mech == SASL_LOGIN && z[0] != '\0')
		abort();
	check_replay(mech, z, c, p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sasl_mech mech;
	struct sasl *s;
	const char *challenge, *why;
	const char *text, *end;
	bool over = false;
	enum sasl_step r;

	if (size < 1 || size > 4 * SASL_MAX_INPUT)
		return 0;
	mech = (data[0] & 1) ? SASL_LOGIN : SASL_PLAIN;
	s = sasl_begin(mech);
	if (data[0] & 2) {
		r = sasl_step(s, NULL, 0, &challenge, &why);
		if (r != SASL_CHALLENGE || !valid_challenge(mech, challenge))
			abort();
	}
	text = (const char *)data + 1;
	end = (const char *)data + size;
	while (text <= end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t len = (size_t)((nl != NULL ? nl : end) - text);
		/* A copy of exactly len bytes, so ASan sees any overread. */
		char *line = malloc(len == 0 ? 1 : len);

		if (line == NULL)
			abort();
		memcpy(line, text, len);
		check_base64(line, len);
		challenge = why = NULL;
		r = sasl_step(s, line, len, &challenge, &why);
		free(line);
		if (over && r != SASL_BAD)
			abort();
		switch (r) {
		case SASL_CHALLENGE:
			if (!valid_challenge(mech, challenge) || why != NULL)
				abort();
			break;
		case SASL_DONE:
			if (challenge != NULL || why != NULL)
				abort();
			check_done(s, mech);
			over = true;
			break;
		case SASL_CANCELLED:
			over = true;
			break;
		case SASL_BAD:
			if (why == NULL || challenge != NULL)
				abort();
			over = true;
			break;
		default:
			abort();
		}
		if (nl == NULL)
			break;
		text = nl + 1;
	}
	sasl_free(&s);
	if (s != NULL)
		abort();
	return 0;
}
