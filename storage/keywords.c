/*
 * keywords.c — a folder's keyword list, in Dovecot's dovecot-keywords
 * format ("<index> <name>" per line) so that the letters a-z in Maildir
 * file names mean the same to both servers. The file is the source of truth
 * for a rebuild; it only ever grows, so a letter never changes meaning.
 */
#include "storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void store__keywords_free(char **list, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

int store__keywords_load(const char *folder, char ***list_r, unsigned *count_r,
			 struct store_error *err)
{
	char path[4096];
	char **list = xcalloc(STORE_KEYWORDS_MAX, sizeof(*list));
	unsigned count = 0;

	*list_r = list;
	*count_r = 0;
	snprintf(path, sizeof(path), "%s/" STORE_KEYWORDS_FILE, folder);
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		return store__fail_errno(err, errno, "open %s", path);
	}
	char line[512];

	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		long idx = strtol(line, &end, 10);

		if (end == line || *end != ' ' || idx < 0 || idx >= STORE_KEYWORDS_MAX)
			continue;
		char *name = end + 1;

		name[strcspn(name, "\r\n")] = '\0';
		if (name[0] == '\0' || list[idx] != NULL)
			continue;
		list[idx] = xstrdup(name);
		if ((unsigned)idx + 1 > count)
			count = (unsigned)idx + 1;
	}
	fclose(f);
	/* Holes (a damaged file) become placeholder names that match nothing. */
	for (unsigned i = 0; i < count; i++) {
		if (list[i] == NULL)
			list[i] = xstrdup("");
	}
	*count_r = count;
	return 0;
}

static int keywords_write(const char *folder, char **list, unsigned count,
			  struct store_error *err)
{
	struct buf text;

	buf_init(&text, 64 * 1024);
	for (unsigned i = 0; i < count; i++) {
		if (list[i][0] != '\0')
			buf_printf(&text, "%u %s\n", i, list[i]);
	}
	int ret = store__write_file_atomic(folder, STORE_KEYWORDS_FILE, text.data, text.len, err);

	buf_release(&text);
	return ret;
}

int store__keyword_index(const char *folder, char ***list, unsigned *count,
			 const char *name, bool add, struct store_error *err)
{
	/* IMAP keywords compare case-insensitively. */
	for (unsigned i = 0; i < *count; i++) {
		if (strcasecmp((*list)[i], name) == 0)
			return (int)i;
	}
	if (!add)
		return -1;
	if (*count >= STORE_KEYWORDS_MAX) {
		store__fail(err, STORE_ERR_LIMIT, "too many keywords in folder (at most %d)",
			    STORE_KEYWORDS_MAX);
		return -1;
	}
	/* Another process may have added keywords: start from the file. */
	char **fresh;
	unsigned fresh_count;

	if (store__keywords_load(folder, &fresh, &fresh_count, err) < 0)
		return -1;
	store__keywords_free(*list, *count);
	*list = fresh;
	*count = fresh_count;
	for (unsigned i = 0; i < *count; i++) {
		if (strcasecmp((*list)[i], name) == 0)
			return (int)i;
	}
	if (*count >= STORE_KEYWORDS_MAX) {
		store__fail(err, STORE_ERR_LIMIT, "too many keywords in folder (at most %d)",
			    STORE_KEYWORDS_MAX);
		return -1;
	}
	(*list)[*count] = xstrdup(name);
	(*count)++;
	if (keywords_write(folder, *list, *count, err) < 0) {
		(*count)--;
		free((*list)[*count]);
		(*list)[*count] = NULL;
		return -1;
	}
	return (int)(*count - 1);
}
