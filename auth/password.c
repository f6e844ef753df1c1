/*
 * password.c — password hashes through libcrypt (libxcrypt): new hashes are
 * yescrypt ("$y$", libcrypt's default cost), and any hash libcrypt knows
 * verifies, so `mkpasswd -m yescrypt` or a $6$ line from /etc/shadow can be
 * put into the users database as is.
 *
 * Only the reentrant calls (crypt_rn, crypt_gensalt_rn) with a private
 * struct crypt_data are used: the auth worker runs several checks at once.
 * The crypt_data (32 KiB, on the heap to spare thread stacks) holds the
 * password and the hash while in use, so it is wiped before it is freed.
 *
 * Part of the auth core linked into pam_tern.so: plain libc and libcrypt.
 */
#include "auth/auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool auth_secret_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *pa = a;
	const volatile unsigned char *pb = b;
	unsigned char diff = 0;
	size_t i;

	/* No early exit: the time depends on len only. */
	for (i = 0; i < len; i++)
		diff |= pa[i] ^ pb[i];
	return diff == 0;
}

static struct crypt_data *crypt_data_new(void)
{
	return calloc(1, sizeof(struct crypt_data));
}

static void crypt_data_free(struct crypt_data *data)
{
	explicit_bzero(data, sizeof(*data));
	free(data);
}

int auth_password_hash(const char *password, char *out, size_t out_size)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data;
	const char *hash;
	size_t len;
	int ret = -1;

	/* An empty password is never a password (and never verifies). */
	if (password == NULL || password[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	data = crypt_data_new();
	if (data == NULL)
		return -1;
	errno = 0;
	hash = crypt_rn(password, salt, data, sizeof(*data));
	if (hash == NULL || hash[0] == '*') {
		if (errno == 0)
			errno = EINVAL;
	} else if ((len = strlen(hash)) >= out_size) {
		errno = ENOSPC;
	} else {
		memcpy(out, hash, len + 1);
		ret = 0;
	}
	crypt_data_free(data);
	return ret;
}

bool auth_password_verify(const char *password, const char *hash)
{
	struct crypt_data *data;
	const char *out;
	bool ok = false;
	size_t len;

	/* Locked ("!..."), disabled ("*") or empty hashes: no password fits.
	 * libcrypt refuses them too; checking first makes that certain. */
	if (password == NULL || password[0] == '\0' || hash == NULL ||
	    hash[0] == '\0' || hash[0] == '!' || hash[0] == '*')
		return false;
	len = strlen(hash);
	data = crypt_data_new();
	if (data == NULL)
		return false;
	/* crypt_rn returns NULL instead of a "*0" failure token. */
	out = crypt_rn(password, hash, data, sizeof(*data));
	if (out != NULL && out[0] != '*' && strlen(out) == len)
		ok = auth_secret_equal(out, hash, len);
	crypt_data_free(data);
	return ok;
}
