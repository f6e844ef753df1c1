/*
 * rebuild.c — the index rebuilt from the Maildir alone (DESIGN invariant
 * 3): every folder on disk is registered from its tern-uidstate (so
 * UIDVALIDITY stays and new UIDs start above anything handed out) and
 * scanned trusting the U= its files carry; flags come from the file names
 * and keywords from the letters and dovecot-keywords. Subscriptions come
 * from the Maildir's subscriptions file.
 *
 * meta 'rebuild' is set for the duration, so a rebuild interrupted by a
 * crash starts again at the next open.
 */
#include "storage-private.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int set_rebuild_flag(struct store_user *u, bool on, struct store_error *err)
{
	return store__exec(u, on ? "INSERT OR REPLACE INTO meta VALUES ('rebuild', 1)" :
			   "DELETE FROM meta WHERE key = 'rebuild'", err);
}

static int rebuild_folder(struct store_user *u, const char *name, struct store_error *err)
{
	struct store_mbox_row row;
	char *folder = store__folder_path(u, name, err);
	int ret = -1;

	if (folder == NULL)
		return -1;
	if (store__begin(u, true, err) < 0)
		goto out;
	if (store__mbox_register(u, name, folder, store__default_special_use(name), &row,
				 err) < 0) {
		store__rollback(u);
		goto out;
	}
	if (store__commit(u, err) < 0)
		goto out;
	ret = store__sync_folder_opts(u, name, true, true, err);
out:
	free(folder);
	return ret;
}

int store__rebuild(struct store_user *u, struct store_error *err)
{
	DIR *d;
	struct dirent *e;
	char name[STORE_NAME_MAX + 1];
	int ret = 0;

	log_info("rebuilding the index of %s from its Maildir", u->dir);
	if (store__begin(u, true, err) < 0)
		return -1;
	/* The text index goes as a whole (the files are indexed again): quicker
	 * than deleting its documents, and none is left for a purge (fts.c). */
	if (set_rebuild_flag(u, true, err) < 0 ||
	    (u->meta && store__exec(u, "DELETE FROM fts_doc; DELETE FROM fts_gone", err) < 0) ||
	    store__exec(u, "DELETE FROM message; DELETE FROM expunged; DELETE FROM mailbox;"
			 " DELETE FROM view_cache;",
			err) < 0 ||
	    (u->meta && (store__exec(u, "DROP TABLE message_fts", err) < 0 ||
			 store__exec(u, store__meta_schema, err) < 0))) {
		store__rollback(u);
		return -1;
	}
	if (store__commit(u, err) < 0)
		return -1;
	if (rebuild_folder(u, "INBOX", err) < 0)
		return -1;
	d = opendir(u->maildir);
	if (d == NULL)
		return store__fail_errno(err, errno, "opendir %s", u->maildir);
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || store_dir_to_name(e->d_name, name, sizeof(name)) < 0)
			continue;
		ret = rebuild_folder(u, name, err);
	}
	closedir(d);
	if (ret < 0 || store__subscriptions_load(u, err) < 0)
		return -1;
	if (store__begin(u, true, err) < 0)
		return -1;
	if (set_rebuild_flag(u, false, err) < 0) {
		store__rollback(u);
		return -1;
	}
	return store__commit(u, err);
}
