/*
 * uidstate.c — tern-uidstate, a small file in each folder that keeps what
 * the index must never lose: the folder's UIDVALIDITY and how far UIDs and
 * modseqs may have been handed out. Reservations are made in blocks, so
 * the file is rewritten (durably) once per STORE_UID_RESERVE deliveries or
 * STORE_MODSEQ_RESERVE changes, and a rebuild from the Maildir starts
 * above anything a client can have seen (DESIGN invariants 2 and 3).
 *
 * Format, one "key value" per line:
 *   uidvalidity 1732610000
 *   uid_ceiling 2001
 *   modseq_ceiling 30000
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int store__small_file_read(const char *folder, const char *name, char *text, size_t size,
			   struct store_error *err)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return store__fail_errno(err, errno, "open %s", path);
	}
	ssize_t n = read(fd, text, size - 1);

	close(fd);
	if (n < 0)
		return store__fail_errno(err, errno, "read %s", path);
	text[n] = '\0';
	return 1;
}

int store__uidstate_read(const char *folder, struct store_uidstate *st_r,
			 struct store_error *err)
{
	char text[256];

	memset(st_r, 0, sizeof(*st_r));
	int ret = store__small_file_read(folder, STORE_UIDSTATE_FILE, text, sizeof(text), err);

	if (ret <= 0)
		return ret;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char key[32];
		uint64_t v;

		if (sscanf(line, "%31s %" SCNu64, key, &v) != 2)
			continue;
		if (strcmp(key, "uidvalidity") == 0 && v <= UINT32_MAX)
			st_r->uidvalidity = (uint32_t)v;
		else if (strcmp(key, "uid_ceiling") == 0 && v <= UINT32_MAX)
			st_r->uid_ceiling = (uint32_t)v;
		else if (strcmp(key, "modseq_ceiling") == 0)
			st_r->modseq_ceiling = v;
	}
	return 1;
}

int store__uidstate_write(const char *folder, const struct store_uidstate *st,
			  struct store_error *err)
{
	char text[256];
	int len = snprintf(text, sizeof(text),
			   "uidvalidity %" PRIu32 "\nuid_ceiling %" PRIu32
			   "\nmodseq_ceiling %" PRIu64 "\n",
			   st->uidvalidity, st->uid_ceiling, st->modseq_ceiling);

	return store__write_file_atomic(folder, STORE_UIDSTATE_FILE, text, (size_t)len, err);
}

int store__uidstate_reserve(const char *folder, struct store_mbox_row *row, uint32_t uid,
			    uint64_t modseq, struct store_error *err)
{
	struct store_uidstate st;

	if ((uid == 0 || uid < row->uid_ceiling) && modseq <= row->modseq_ceiling)
		return 0;
	/* The file is authoritative: another process may have moved on. */
	if (store__uidstate_read(folder, &st, err) < 0)
		return -1;
	if (st.uidvalidity == 0)
		st.uidvalidity = row->uidvalidity;
	if (uid != 0 && uid >= st.uid_ceiling)
		st.uid_ceiling = uid > UINT32_MAX - STORE_UID_RESERVE ?
			UINT32_MAX : uid + STORE_UID_RESERVE;
	if (modseq > st.modseq_ceiling)
		st.modseq_ceiling = modseq + STORE_MODSEQ_RESERVE;
	if (store__uidstate_write(folder, &st, err) < 0)
		return -1;
	row->uid_ceiling = st.uid_ceiling;
	row->modseq_ceiling = st.modseq_ceiling;
	return 1;
}

/* Time-based and increasing within the process, so folders created in the
 * same second still differ. */
uint32_t store__new_uidvalidity(void)
{
	static _Atomic uint32_t last;
	uint32_t now = (uint32_t)time(NULL);
	uint32_t prev = atomic_load(&last);

	for (;;) {
		uint32_t next = now > prev ? now : prev + 1;

		if (atomic_compare_exchange_weak(&last, &prev, next))
			return next;
	}
}
