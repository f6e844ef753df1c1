/*
 * folder.c — paths and small file-system helpers: folder directories,
 * durable directory entries (fsync of the directory), sizes.
 */
#include "storage-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *store__folder_path(struct store_user *u, const char *name, struct store_error *err)
{
	char dir[1024];
	const char *why;

	if (store_name_to_dir(name, dir, sizeof(dir), &why) < 0) {
		store__fail(err, STORE_ERR_BADNAME, "bad mailbox name: %s", why);
		return NULL;
	}
	size_t n = strlen(u->maildir) + strlen(dir) + 2;
	char *path = xcalloc(1, n);

	if (dir[0] == '\0')
		snprintf(path, n, "%s", u->maildir);
	else
		snprintf(path, n, "%s/%s", u->maildir, dir);
	return path;
}

/* 1 when created, 0 when it existed. */
static int mkdir_one(const char *path, struct store_error *err)
{
	if (mkdir(path, 0700) == 0)
		return 1;
	if (errno != EEXIST)
		return store__fail_errno(err, errno, "mkdir %s", path);
	return 0;
}

/* cur/ new/ tmp/ (and for Maildir++ subfolders, the maildirfolder marker),
 * whichever are missing, then the parent's entry made durable. */
int store__folder_create_dirs(const char *folder, bool is_inbox, struct store_error *err)
{
	static const char *const subdirs[] = { "cur", "new", "tmp" };
	size_t n = strlen(folder) + 32;
	char *path = xcalloc(1, n);
	int ret = -1, made;
	bool created = false;

	if ((made = mkdir_one(folder, err)) < 0)
		goto out;
	created |= made > 0;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		snprintf(path, n, "%s/%s", folder, subdirs[i]);
		if ((made = mkdir_one(path, err)) < 0)
			goto out;
		created |= made > 0;
	}
	/* Complete already: nothing to make durable (this runs for every
	 * folder registration, including ones a crash left half made). */
	if (!created) {
		ret = 0;
		goto out;
	}
	if (!is_inbox) {
		snprintf(path, n, "%s/maildirfolder", folder);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0) {
			store__fail_errno(err, errno, "create %s", path);
			goto out;
		}
		close(fd);
	}
	if (store__fsync_dir(folder, err) < 0)
		goto out;
	/* The folder's own entry in its parent directory. */
	snprintf(path, n, "%s", folder);
	char *slash = strrchr(path, '/');

	if (slash != NULL && slash != path) {
		*slash = '\0';
		if (store__fsync_dir(path, err) < 0)
			goto out;
	}
	ret = 0;
out:
	free(path);
	return ret;
}

int store__fsync_path(const char *path, struct store_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return store__fail_errno(err, errno, "open %s", path);
	if (fsync(fd) < 0) {
		int e = errno;

		close(fd);
		return store__fail_errno(err, e, "fsync %s", path);
	}
	close(fd);
	return 0;
}

int store__fsync_dir(const char *path, struct store_error *err)
{
	return store__fsync_path(path, err);
}

int store__file_vsize(const char *path, uint64_t *size_r, uint64_t *vsize_r,
		      struct store_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[65536];
	uint64_t size = 0, lfs = 0;
	bool prev_cr = false;
	ssize_t n;

	if (fd < 0)
		return store__fail_errno(err, errno, "open %s", path);
	/* Each LF not already after a CR gains one (as the reader emits it). */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		size += (uint64_t)n;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && !prev_cr)
				lfs++;
			prev_cr = buf[i] == '\r';
		}
	}
	if (n < 0) {
		int e = errno;

		close(fd);
		return store__fail_errno(err, e, "read %s", path);
	}
	close(fd);
	*size_r = size;
	*vsize_r = size + lfs;
	return 0;
}

int64_t store__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t store__mtime_ns(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

void store__remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			size_t n = strlen(path) + strlen(e->d_name) + 2;
			char *child = xcalloc(1, n);
			struct stat st;

			snprintf(child, n, "%s/%s", path, e->d_name);
			if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				store__remove_tree(child);
			else
				unlink(child);
			free(child);
		}
		closedir(d);
	}
	rmdir(path);
}

int store__write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
			     struct store_error *err)
{
	char path[4096], tmp[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%d", dir, name, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return store__fail_errno(err, errno, "create %s", tmp);
	if ((len > 0 && write(fd, data, len) != (ssize_t)len) || fsync(fd) < 0) {
		int e = errno == 0 ? ENOSPC : errno;

		close(fd);
		unlink(tmp);
		return store__fail_errno(err, e, "write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return store__fail_errno(err, e, "rename %s", path);
	}
	return store__fsync_dir(dir, err);
}
