/* errors.c — filling struct store_error with a class and a log message. */
#include "storage-private.h"

#include <errno.h>
#include <string.h>

ATTR_PRINTF(4, 0)
static int fail_v(struct store_error *err, enum store_errcode code, int errnum,
		  const char *fmt, va_list ap)
{
	size_t off;

	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	off = strlen(err->msg);
	if (errnum != 0 && off < sizeof(err->msg))
		snprintf(err->msg + off, sizeof(err->msg) - off, ": %s", strerror(errnum));
	return -1;
}

int store__fail(struct store_error *err, enum store_errcode code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_v(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int store__fail_errno(struct store_error *err, int errnum, const char *fmt, ...)
{
	enum store_errcode code;
	va_list ap;

	switch (errnum) {
	case ENOSPC:
		code = STORE_ERR_NOSPACE;
		break;
	case EDQUOT:
		code = STORE_ERR_QUOTA;
		break;
	case ENOENT:
		code = STORE_ERR_NOTFOUND;
		break;
	case EACCES:
	case EPERM:
		code = STORE_ERR_PERM;
		break;
	default:
		code = STORE_ERR_TEMP;
		break;
	}
	va_start(ap, fmt);
	fail_v(err, code, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int store__fail_db(struct store_error *err, sqlite3 *db, const char *what)
{
	int rc = sqlite3_extended_errcode(db);
	enum store_errcode code = STORE_ERR_TEMP;

	switch (rc & 0xff) {
	case SQLITE_FULL:
		code = STORE_ERR_NOSPACE;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		code = STORE_ERR_CORRUPT;
		break;
	default:
		break;
	}
	return store__fail(err, code, "index: %s: %s", what, sqlite3_errmsg(db));
}
