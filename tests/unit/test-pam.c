/*
 * test-pam.c — PAM for real: auth_pam_check runs libpam with a private
 * service directory holding the shipped etc/pam.d files, pam_tern.so loaded
 * from the build tree by absolute path (PAM_TERN_PATH) and a users database
 * made by the test; as root also pam_unix with a system user the test
 * creates (useradd, chpasswd) and removes. Also the user directory
 * (auth_directory_*) for both kinds of users.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "test-util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PAM_TERN_PATH
#error "PAM_TERN_PATH (the built pam_tern.so) must be defined"
#endif

static const char alice_pw[] = "Right pass 1";
static const char bob_pw[] = "Bob's pass 2";
static const char sys_pw[] = "System pass 3";

struct fixture {
	char dir[64];
	char path[256];   /* users database */
	char pamdir[128];
	char mail[128];
};

/* ------------------------------------------------------------- helpers */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Copy a shipped service file into the test's pam.d as service, with
 * every "pam_tern.so" replaced by the built module's absolute path (and
 * extra appended to those lines), as the docs tell the demo to do. */
static void install_service(struct fixture *f, const char *shipped, const char *service,
			    const char *extra)
{
	char src[512], dst[256];
	char *text = NULL, *p, *line;
	size_t cap = 0, len = 0;
	FILE *out;
	char *orig;

	snprintf(src, sizeof(src), "%s/etc/pam.d/%s", SOURCE_ROOT, shipped);
	orig = test_read_file(src);
	out = open_memstream(&text, &cap);
	assert_non_null(out);
	for (line = strtok_r(orig, "\n", &p); line != NULL; line = strtok_r(NULL, "\n", &p)) {
		char *mod = strstr(line, "pam_tern.so");

		if (line[0] != '#' && mod != NULL) {
			fprintf(out, "%.*s%s%s%s\n", (int)(mod - line), line, PAM_TERN_PATH,
				mod + strlen("pam_tern.so"), extra);
		} else {
			fprintf(out, "%s\n", line);
		}
	}
	fclose(out);
	len = strlen(text);
	assert_true(len > 0);
	snprintf(dst, sizeof(dst), "%s/%s", f->pamdir, service);
	write_text(dst, text);
	free(text);
	free(orig);
}

static struct cfg *make_cfg(struct fixture *f, const char *kind, const char *service,
			    const char *users_db)
{
	char text[2048];
	struct cfg *cfg = NULL;
	char *error = NULL;

	snprintf(text, sizeof(text),
		 "[global]\nmail_root = %s\n"
		 "[auth]\nusers = %s\nusers_db = %s\npam_service = %s\npam_confdir = %s\n",
		 f->mail, kind, users_db != NULL ? users_db : f->path, service, f->pamdir);
	if (cfg_load_string("test.conf", text, &cfg, &error) != 1)
		fail_msg("cfg: %s", error);
	return cfg;
}

/* Run a check and make sure the password is in no detail. */
static enum auth_result check(const struct cfg *cfg, const char *user, const char *pw,
			      char *detail, size_t size)
{
	enum auth_result r = auth_pam_check(cfg, user, pw, "192.0.2.7", detail, size);

	if (pw[0] != '\0' && strstr(detail, pw) != NULL)
		fail_msg("password in detail: %s", detail);
	return r;
}

static void expect(const struct cfg *cfg, const char *user, const char *pw,
		   enum auth_result want)
{
	char detail[512];
	enum auth_result r = check(cfg, user, pw, detail, sizeof(detail));

	if (r != want)
		fail_msg("%s: got %s, want %s (%s)", user, auth_result_name(r),
			 auth_result_name(want), detail);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct userdb *db = NULL;
	char hash[AUTH_HASH_MAX];
	char *error = NULL;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-pam-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/users.sqlite", f->dir);
	snprintf(f->pamdir, sizeof(f->pamdir), "%s/pam.d", f->dir);
	snprintf(f->mail, sizeof(f->mail), "%s/mail", f->dir);
	assert_int_equal(mkdir(f->pamdir, 0700), 0);
	install_service(f, "tern-virtual", "tern", "");

	if (userdb_open(f->path, true, &db, &error) != 0)
		fail_msg("%s", error);
	assert_int_equal(auth_password_hash(alice_pw, hash, sizeof(hash)), 0);
	assert_int_equal(userdb_add(db, "alice", hash, 0, 0, NULL, &error), USERDB_OK);
	assert_int_equal(auth_password_hash(bob_pw, hash, sizeof(hash)), 0);
	assert_int_equal(userdb_add(db, "bob@example.org", hash, 100, 10, NULL, &error),
			 USERDB_OK);
	assert_int_equal(userdb_set_enabled(db, "bob@example.org", false, &error), USERDB_OK);
	userdb_close(&db);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ------------------------------------------------- pam_tern through PAM */

static void test_virtual_passwords(void **state)
{
	struct fixture *f = *state;
	struct cfg *cfg = make_cfg(f, "virtual", "tern", NULL);
	char detail[512];

	expect(cfg, "alice", alice_pw, AUTH_OK);
	expect(cfg, "alice", "Right pass 2", AUTH_FAILED);
	expect(cfg, "alice", "right pass 1", AUTH_FAILED);
	expect(cfg, "alice", "", AUTH_FAILED);
	expect(cfg, "alice", bob_pw, AUTH_FAILED);
	/* Unknown users fail exactly like wrong passwords. */
	expect(cfg, "nobody", alice_pw, AUTH_FAILED);
	expect(cfg, "nobody@example.org", "x", AUTH_FAILED);
	/* A name that can never be a user. */
	expect(cfg, "../alice", alice_pw, AUTH_FAILED);
	/* The right password of a disabled user: refused by pam_acct_mgmt. */
	expect(cfg, "bob@example.org", bob_pw, AUTH_DISABLED);
	expect(cfg, "bob@example.org", "wrong", AUTH_FAILED);

	/* detail says which step failed, and never the password. */
	assert_int_equal(check(cfg, "alice", "Wrong pass", detail, sizeof(detail)), AUTH_FAILED);
	assert_non_null(strstr(detail, "pam_authenticate"));
	assert_int_equal(check(cfg, "bob@example.org", bob_pw, detail, sizeof(detail)),
			 AUTH_DISABLED);
	assert_non_null(strstr(detail, "pam_acct_mgmt"));
	assert_int_equal(check(cfg, "alice", alice_pw, detail, sizeof(detail)), AUTH_OK);
	assert_string_equal(detail, "");
	/* No detail buffer is fine too. */
	assert_int_equal(auth_pam_check(cfg, "alice", alice_pw, NULL, NULL, 0), AUTH_OK);
	cfg_free(&cfg);
}

static void test_virtual_changes_seen(void **state)
{
	struct fixture *f = *state;
	struct cfg *cfg = make_cfg(f, "virtual", "tern", NULL);
	struct userdb *db = NULL;
	char hash[AUTH_HASH_MAX];
	char *error = NULL;

	/* ternctl's changes count at the next login: pam_tern opens the
	 * database per call. */
	assert_int_equal(userdb_open(f->path, false, &db, &error), 0);
	assert_int_equal(auth_password_hash("New pass 4", hash, sizeof(hash)), 0);
	assert_int_equal(userdb_set_hash(db, "alice", hash, &error), USERDB_OK);
	expect(cfg, "alice", alice_pw, AUTH_FAILED);
	expect(cfg, "alice", "New pass 4", AUTH_OK);
	assert_int_equal(userdb_set_enabled(db, "alice", false, &error), USERDB_OK);
	expect(cfg, "alice", "New pass 4", AUTH_DISABLED);
	assert_int_equal(userdb_set_enabled(db, "bob@example.org", true, &error), USERDB_OK);
	expect(cfg, "bob@example.org", bob_pw, AUTH_OK);
	assert_int_equal(userdb_delete(db, "bob@example.org", &error), USERDB_OK);
	expect(cfg, "bob@example.org", bob_pw, AUTH_FAILED);
	userdb_close(&db);
	cfg_free(&cfg);
}

static void test_virtual_db_problems(void **state)
{
	struct fixture *f = *state;
	char missing[300], garbage[300];
	struct cfg *cfg;
	char detail[512];

	/* No database: PAM cannot answer, so try later, not "wrong password". */
	snprintf(missing, sizeof(missing), "%s/missing.sqlite", f->dir);
	cfg = make_cfg(f, "virtual", "tern", missing);
	assert_int_equal(check(cfg, "alice", alice_pw, detail, sizeof(detail)), AUTH_TEMPFAIL);
	assert_int_equal(check(cfg, "nobody", alice_pw, detail, sizeof(detail)), AUTH_TEMPFAIL);
	cfg_free(&cfg);

	snprintf(garbage, sizeof(garbage), "%s/garbage.sqlite", f->dir);
	write_text(garbage, "this is not an SQLite database, not even close.......\n");
	cfg = make_cfg(f, "virtual", "tern", garbage);
	expect(cfg, "alice", alice_pw, AUTH_TEMPFAIL);
	cfg_free(&cfg);
}

static void test_virtual_module_options(void **state)
{
	struct fixture *f = *state;
	char missing[300], extra[300];
	struct cfg *cfg;

	/* db= in the service file wins over TERN_USERS_DB. */
	snprintf(extra, sizeof(extra), " db=%s", f->path);
	install_service(f, "tern-virtual", "tern-arg", extra);
	snprintf(missing, sizeof(missing), "%s/missing.sqlite", f->dir);
	cfg = make_cfg(f, "virtual", "tern-arg", missing);
	expect(cfg, "alice", alice_pw, AUTH_OK);
	expect(cfg, "alice", "nope", AUTH_FAILED);
	expect(cfg, "bob@example.org", bob_pw, AUTH_DISABLED);
	cfg_free(&cfg);

	/* An unknown option is a configuration error: nobody gets in. */
	install_service(f, "tern-virtual", "tern-typo", " dbb=/x");
	cfg = make_cfg(f, "virtual", "tern-typo", NULL);
	expect(cfg, "alice", alice_pw, AUTH_TEMPFAIL);
	cfg_free(&cfg);

	/* No such service, and no "other" in the directory: pam_start fails.
	 * libpam 1.5.2 leaks a little on that path, so the check runs in a
	 * child that leaves with _exit, out of LeakSanitizer's sight. */
	cfg = make_cfg(f, "virtual", "no-such-service", NULL);
	{
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (pid == 0) {
			char detail[512];

			_exit((int)auth_pam_check(cfg, "alice", alice_pw, NULL, detail,
						  sizeof(detail)));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), AUTH_TEMPFAIL);
	}
	cfg_free(&cfg);
}

/* The auth worker runs several checks at once: each thread gets the right
 * answer (libcrypt and SQLite used reentrantly, pam_tern per call). */
struct thread_arg {
	const struct cfg *cfg;
	int index;
	int wrong; /* answers that were not as expected */
};

static void *check_thread(void *data)
{
	struct thread_arg *a = data;
	int i;

	for (i = 0; i < 4; i++) {
		bool right = (i + a->index) % 2 == 0;
		enum auth_result r = auth_pam_check(a->cfg, "alice", right ? alice_pw : "bad",
						    "192.0.2.9", NULL, 0);

		if (r != (right ? AUTH_OK : AUTH_FAILED))
			a->wrong++;
	}
	return NULL;
}

static void test_virtual_threads(void **state)
{
	struct fixture *f = *state;
	struct cfg *cfg = make_cfg(f, "virtual", "tern", NULL);
	struct thread_arg args[4];
	pthread_t threads[4];
	int i;

	for (i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .cfg = cfg, .index = i };
		assert_int_equal(pthread_create(&threads[i], NULL, check_thread, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(args[i].wrong, 0);
	}
	cfg_free(&cfg);
}

static void test_result_names(void **state)
{
	assert_string_equal(auth_result_name(AUTH_OK), "ok");
	assert_string_equal(auth_result_name(AUTH_FAILED), "failed");
	assert_string_equal(auth_result_name(AUTH_DISABLED), "disabled");
	assert_string_equal(auth_result_name(AUTH_TEMPFAIL), "tempfail");
	assert_string_equal(auth_result_name(AUTH_LIMITED), "limited");
}

/* --------------------------------------------------------- the directory */

static void test_directory_virtual(void **state)
{
	struct fixture *f = *state;
	struct auth_directory *dir = NULL;
	struct auth_user u;
	char later[300];
	struct userdb *db = NULL;
	char *error = NULL;
	struct cfg *cfg;

	cfg = make_cfg(f, "virtual", "tern", NULL);
	if (auth_directory_open(cfg, &dir, &error) != 0)
		fail_msg("%s", error);
	assert_int_equal(auth_directory_lookup(dir, "alice", &u), AUTH_LOOKUP_FOUND);
	assert_string_equal(u.name, "alice");
	snprintf(later, sizeof(later), "%s/alice", f->mail);
	assert_string_equal(u.mail_dir, later);
	assert_true(u.enabled);
	/* Looked up by any spelling of the name. */
	assert_int_equal(auth_directory_lookup(dir, "ALICE", &u), AUTH_LOOKUP_FOUND);
	assert_string_equal(u.name, "alice");
	assert_int_equal(auth_directory_lookup(dir, "Bob@Example.org", &u), AUTH_LOOKUP_FOUND);
	assert_false(u.enabled);
	assert_int_equal(u.quota_bytes, 100);
	assert_int_equal(u.quota_messages, 10);
	assert_int_equal(auth_directory_lookup(dir, "carol", &u), AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(auth_directory_lookup(dir, "../alice", &u), AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(auth_directory_lookup(dir, "alice/", &u), AUTH_LOOKUP_NOT_FOUND);
	auth_directory_close(&dir);
	assert_null(dir);
	cfg_free(&cfg);

	/* No database yet: no users; once ternctl creates it, they exist. */
	snprintf(later, sizeof(later), "%s/later.sqlite", f->dir);
	cfg = make_cfg(f, "virtual", "tern", later);
	assert_int_equal(auth_directory_open(cfg, &dir, &error), 0);
	assert_int_equal(auth_directory_lookup(dir, "alice", &u), AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(userdb_open(later, true, &db, &error), 0);
	assert_int_equal(userdb_add(db, "carol", "$6$s$h", 0, 0, "/elsewhere/carol", &error),
			 USERDB_OK);
	assert_int_equal(auth_directory_lookup(dir, "carol", &u), AUTH_LOOKUP_FOUND);
	assert_string_equal(u.mail_dir, "/elsewhere/carol");
	/* And later changes are seen through the open handle. */
	assert_int_equal(userdb_set_quota(db, "carol", 5, 6, &error), USERDB_OK);
	assert_int_equal(auth_directory_lookup(dir, "carol", &u), AUTH_LOOKUP_FOUND);
	assert_int_equal(u.quota_bytes, 5);
	userdb_close(&db);
	auth_directory_close(&dir);
	cfg_free(&cfg);
}

static void test_directory_virtual_errors(void **state)
{
	struct fixture *f = *state;
	struct auth_directory *dir = (struct auth_directory *)1;
	char path[300];
	struct auth_user u;
	char *error = NULL;
	struct cfg *cfg;

	/* A broken file is reported when the directory is opened. */
	snprintf(path, sizeof(path), "%s/broken.sqlite", f->dir);
	write_text(path, "not a database at all, definitely not one......................\n");
	cfg = make_cfg(f, "virtual", "tern", path);
	assert_int_equal(auth_directory_open(cfg, &dir, &error), -1);
	assert_null(dir);
	assert_non_null(error);
	assert_non_null(strstr(error, "broken.sqlite"));
	free(error);
	error = NULL;
	cfg_free(&cfg);

	/* One that breaks after start-up is a temporary failure. */
	snprintf(path, sizeof(path), "%s/breaks-later.sqlite", f->dir);
	cfg = make_cfg(f, "virtual", "tern", path);
	assert_int_equal(auth_directory_open(cfg, &dir, &error), 0);
	write_text(path, "not a database at all, definitely not one......................\n");
	assert_int_equal(auth_directory_lookup(dir, "alice", &u), AUTH_LOOKUP_TEMPFAIL);
	auth_directory_close(&dir);
	cfg_free(&cfg);
}

static void test_directory_system(void **state)
{
	struct fixture *f = *state;
	struct auth_directory *dir = NULL;
	struct auth_user u;
	char want[300];
	char *error = NULL;
	struct cfg *cfg = make_cfg(f, "system", "tern", NULL);

	assert_int_equal(auth_directory_open(cfg, &dir, &error), 0);
	/* "daemon" (uid 1) exists on every Debian system. */
	assert_int_equal(auth_directory_lookup(dir, "daemon", &u), AUTH_LOOKUP_FOUND);
	assert_string_equal(u.name, "daemon");
	snprintf(want, sizeof(want), "%s/daemon", f->mail);
	assert_string_equal(u.mail_dir, want);
	assert_true(u.enabled);
	assert_int_equal(u.quota_bytes, 0);
	assert_int_equal(u.quota_messages, 0);
	assert_int_equal(u.created, 0);
	/* Root never; unknown accounts and bad names are not found. */
	assert_int_equal(auth_directory_lookup(dir, "root", &u), AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(auth_directory_lookup(dir, "no-such-user-tern", &u),
			 AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(auth_directory_lookup(dir, "../daemon", &u), AUTH_LOOKUP_NOT_FOUND);
	assert_int_equal(auth_directory_lookup(dir, "daemon@example.org", &u),
			 AUTH_LOOKUP_NOT_FOUND);
	auth_directory_close(&dir);
	cfg_free(&cfg);
}

/* ------------------------------------------------- pam_unix, system users */

static char sys_user[32];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int sys_setup(void **state)
{
	if (geteuid() != 0)
		return setup(state);
	snprintf(sys_user, sizeof(sys_user), "terntest%ld", (long)getpid());
	run("userdel %s >/dev/null 2>&1", sys_user);
	if (run("useradd -M -s /usr/sbin/nologin %s", sys_user) != 0) {
		sys_user[0] = '\0';
		return -1;
	}
	if (run("echo '%s:%s' | chpasswd", sys_user, sys_pw) != 0)
		return -1;
	return setup(state);
}

static int sys_teardown(void **state)
{
	if (sys_user[0] != '\0')
		run("userdel %s >/dev/null 2>&1", sys_user);
	return teardown(state);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_system_pam_unix(void **state)
{
	struct fixture *f = *state;
	struct auth_directory *dir = NULL;
	char path[300];
	struct auth_user u;
	char *error = NULL;
	struct cfg *cfg;
	double t;

	if (geteuid() != 0) {
		print_message("skipped: not root, so no system user can be made for pam_unix\n");
		skip();
	}
	install_service(f, "tern-system", "tern", "");
	cfg = make_cfg(f, "system", "tern", NULL);

	assert_int_equal(auth_directory_open(cfg, &dir, &error), 0);
	assert_int_equal(auth_directory_lookup(dir, sys_user, &u), AUTH_LOOKUP_FOUND);
	auth_directory_close(&dir);

	expect(cfg, sys_user, sys_pw, AUTH_OK);
	expect(cfg, sys_user, "System pass 4", AUTH_FAILED);
	expect(cfg, sys_user, "", AUTH_FAILED);
	expect(cfg, "no-such-user-tern", sys_pw, AUTH_FAILED);
	expect(cfg, "root", sys_pw, AUTH_FAILED);

	/* Without nodelay pam_unix asks for a ~2 s delay; the no-op
	 * PAM_FAIL_DELAY keeps the worker from sleeping it. */
	snprintf(path, sizeof(path), "%s/tern-delay", f->pamdir);
	write_text(path, "auth required pam_unix.so\naccount required pam_unix.so\n");
	cfg_free(&cfg);
	cfg = make_cfg(f, "system", "tern-delay", NULL);
	t = now_s();
	expect(cfg, sys_user, "System pass 4", AUTH_FAILED);
	if (now_s() - t > 1.2)
		fail_msg("failed check took %.2f s: PAM slept its own delay", now_s() - t);
	cfg_free(&cfg);

	/* An expired account: right password, refused by pam_acct_mgmt. */
	cfg = make_cfg(f, "system", "tern", NULL);
	assert_int_equal(run("chage -E 0 %s", sys_user), 0);
	expect(cfg, sys_user, sys_pw, AUTH_DISABLED);
	assert_int_equal(run("chage -E -1 %s", sys_user), 0);
	expect(cfg, sys_user, sys_pw, AUTH_OK);
	/* A locked password never verifies. */
	assert_int_equal(run("usermod -L %s", sys_user), 0);
	expect(cfg, sys_user, sys_pw, AUTH_FAILED);
	cfg_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_virtual_passwords, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtual_changes_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtual_db_problems, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtual_module_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtual_threads, setup, teardown),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test_setup_teardown(test_directory_virtual, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_virtual_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_system, setup, teardown),
		cmocka_unit_test_setup_teardown(test_system_pam_unix, sys_setup, sys_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
