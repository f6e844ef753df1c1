/*
 * procmem.c — resident memory of a process and all its descendants, from
 * /proc: VmRSS of /proc/PID/status and Pss of /proc/PID/smaps_rollup.
 *
 * Descendants come from /proc/PID/task/TID/children where the kernel has
 * them (CONFIG_PROC_CHILDREN), otherwise from the ppid field of every
 * /proc/PID/stat. A process that exits meanwhile is left out.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define PROCS_MAX 100000

struct pid_list {
	long *v;
	size_t n, cap;
};

static void pid_add(struct pid_list *l, long pid)
{
	if (l->n == PROCS_MAX)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		l->v = bench_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = pid;
}

/* "Key:   123 kB" of a /proc file, in KiB; -1 if absent. */
static int64_t read_kib(const char *path, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	int64_t v = -1;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static bool have_children_files(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
	return access(path, R_OK) == 0;
}

/* Children of pid from its threads' children files. */
static void children_from_tasks(long pid, struct pid_list *out)
{
	char path[320];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		FILE *f;
		long child;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%s/children", pid, e->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		while (fscanf(f, "%ld", &child) == 1)
			pid_add(out, child);
		fclose(f);
	}
	closedir(d);
}

/* Every (pid, ppid) pair, from /proc/PID/stat. */
static void all_parents(struct pid_list *pids, struct pid_list *ppids)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[320], buf[512];
		const char *p;
		size_t n;
		FILE *f;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* pid (comm) state ppid ...: comm may hold spaces and ')' */
		if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0' || p[2] == '\0')
			continue;
		p += 2;
		while (*p != '\0' && *p != ' ')
			p++;
		pid_add(pids, strtol(e->d_name, NULL, 10));
		pid_add(ppids, strtol(p, NULL, 10));
	}
	closedir(d);
}

int bench_procmem_sample(long pid, struct bench_procmem *m_r, const char **error_r)
{
	struct pid_list tree = { 0 }, pids = { 0 }, ppids = { 0 };
	bool tasks = have_children_files();
	char path[64];

	memset(m_r, 0, sizeof(*m_r));
	pid_add(&tree, pid);
	if (!tasks)
		all_parents(&pids, &ppids);
	/* Breadth first: tree grows while it is walked. */
	for (size_t i = 0; i < tree.n; i++) {
		if (tasks) {
			children_from_tasks(tree.v[i], &tree);
			continue;
		}
		for (size_t k = 0; k < pids.n; k++)
			if (ppids.v[k] == tree.v[i])
				pid_add(&tree, pids.v[k]);
	}
	for (size_t i = 0; i < tree.n; i++) {
		int64_t rss, pss;

		snprintf(path, sizeof(path), "/proc/%ld/status", tree.v[i]);
		rss = read_kib(path, "VmRSS");
		snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", tree.v[i]);
		pss = read_kib(path, "Pss");
		if (rss < 0)
			continue; /* gone, or a kernel thread */
		m_r->rss_kib += (uint64_t)rss;
		m_r->pss_kib += pss > 0 ? (uint64_t)pss : 0;
		m_r->procs++;
	}
	free(tree.v);
	free(pids.v);
	free(ppids.v);
	if (m_r->procs == 0) {
		*error_r = "--pid: no such process (or no access to /proc/PID)";
		return -1;
	}
	return 0;
}
