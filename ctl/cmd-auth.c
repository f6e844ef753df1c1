/*
 * cmd-auth.c — `ternctl auth test USER`: check a password exactly as the
 * daemons do, and say what happened.
 *
 * "Exactly" means through the same auth worker: it is started while
 * ternctl is still root (as a daemon starts it before dropping
 * privileges), so PAM runs with the worker's privileges (mail_user, plus
 * the shadow group for system users), the configured service and
 * pam_confdir, the master-user rules, the PAM account check and the user
 * directory lookup after PAM said yes. ternctl then asks over the
 * socketpair on a libuv loop, like a session. It stays root meanwhile: it
 * touches no mail and no database itself, and a worker stopped while it is
 * still starting (still root) can only be killed by root.
 *
 * The password is read only after the worker is forked, so the worker
 * never holds a copy of it from ternctl's memory. The client's log line
 * (user, result and PAM's reason) is printed on stderr; the result, the
 * message a client would get and, on success, the user record go to
 * stdout.
 */
#include "ctl.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct auth_test {
	uv_loop_t *loop;
	bool done;
	enum auth_result result;
	char message[256];
	char master[AUTH_NAME_MAX + 1];
	struct auth_user user;
};

static void auth_test_done_cb(const struct auth_reply *reply, void *data)
{
	struct auth_test *t = data;

	t->done = true;
	t->result = reply->result;
	snprintf(t->message, sizeof(t->message), "%s", reply->message != NULL ? reply->message : "");
	if (reply->master != NULL)
		snprintf(t->master, sizeof(t->master), "%s", reply->master);
	if (reply->user != NULL)
		t->user = *reply->user;
	uv_stop(t->loop);
}

static int result_exit(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return EX_OK;
	case AUTH_FAILED:
	case AUTH_DISABLED:
		return EX_NOPERM;
	case AUTH_TEMPFAIL:
	case AUTH_LIMITED:
		break;
	}
	return EX_TEMPFAIL;
}

static void print_result(const struct ctl *ctl, const char *login, const struct auth_test *t)
{
	const struct auth_user *u = &t->user;

	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("login", login);
		ctl_json_string("result", auth_result_name(t->result));
		ctl_json_string("message", t->message);
		ctl_json_string("master", t->master[0] != '\0' ? t->master : NULL);
		if (t->result == AUTH_OK) {
			ctl_json_begin_object("user");
			ctl_json_string("name", u->name);
			ctl_json_bool("enabled", u->enabled);
			ctl_json_string("mail_dir", u->mail_dir);
			ctl_json_uint("quota_bytes", u->quota_bytes);
			ctl_json_uint("quota_messages", u->quota_messages);
			ctl_json_end_object();
		} else {
			ctl_json_string("user", NULL);
		}
		ctl_json_end_object();
		ctl_json_finish();
		return;
	}
	printf("result:         %s\n", auth_result_name(t->result));
	printf("message:        %s\n", t->message);
	if (t->result != AUTH_OK)
		return;
	if (t->master[0] != '\0')
		printf("master:         %s\n", t->master);
	printf("name:           %s\n", u->name);
	printf("enabled:        %s\n", u->enabled ? "yes" : "no");
	printf("mail_dir:       %s\n", u->mail_dir);
	printf("quota_bytes:    %llu\n", (unsigned long long)u->quota_bytes);
	printf("quota_messages: %llu\n", (unsigned long long)u->quota_messages);
}

/* Ask the worker and wait for its answer; the client is stopped in every
 * case. */
static int run_check(struct auth_client *client, const char *login, const char *password,
		     const char *remote, struct auth_test *t)
{
	uv_loop_t loop;
	int ret = uv_loop_init(&loop);

	if (ret < 0) {
		ctl_error("cannot start an event loop: %s", uv_strerror(ret));
		auth_client_stop(&client);
		return EX_SOFTWARE;
	}
	t->loop = &loop;
	if (auth_client_attach(client, &loop) < 0) {
		/* Stop the worker and close what attach opened. */
		auth_client_stop(&client);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return EX_SOFTWARE;
	}

	struct auth_request_info info = {
		.mech = "TEST",
		.authcid = login,
		.password = password,
		.remote_ip = remote,
	};

	/* The client's line with PAM's reason is logged at info. */
	log_set_level(LOG_LEVEL_INFO);
	auth_begin(client, &info, auth_test_done_cb, t);
	uv_run(&loop, UV_RUN_DEFAULT);
	log_set_level(LOG_LEVEL_WARN);
	auth_client_stop(&client);
	/* Let the closed handles finish. */
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (!t->done) {
		ctl_error("the auth worker gave no answer");
		return EX_SOFTWARE;
	}
	return EX_OK;
}

enum { OPT_PASSWORD_STDIN = 256, OPT_REMOTE };

static const struct option test_options[] = {
	{ "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
	{ "remote", required_argument, NULL, OPT_REMOTE },
	{ NULL, 0, NULL, 0 },
};

struct test_opts {
	bool from_stdin;
	const char *remote;
};

static int take_option(int opt, const char *value, void *data)
{
	struct test_opts *o = data;

	if (opt == OPT_PASSWORD_STDIN)
		o->from_stdin = true;
	else if (opt == OPT_REMOTE)
		o->remote = value;
	else
		return -1;
	return 0;
}

static int cmd_test(struct ctl *ctl, int argc, char **argv)
{
	struct test_opts o = { .remote = "127.0.0.1" };
	int first = ctl_parse_options(&ctl_auth_commands[0], argc, argv, "", test_options, 1,
				      take_option, &o);

	if (first < 0)
		return EX_USAGE;
	const char *login = argv[first];
	char ipbuf[16];

	if (uv_inet_pton(AF_INET, o.remote, ipbuf) != 0 &&
	    uv_inet_pton(AF_INET6, o.remote, ipbuf) != 0) {
		ctl_error("--remote needs an IPv4 or IPv6 address");
		return EX_USAGE;
	}

	struct auth_client *client;

	/* As root, like a daemon: the worker keeps what PAM needs and drops
	 * the rest. */
	if (auth_client_start(ctl->cfg, &client) < 0) {
		ctl_error("cannot start the auth worker (see above)");
		return EX_UNAVAILABLE;
	}

	char password[CTL_PASSWORD_MAX + 1];
	int rc = ctl_read_password(login, o.from_stdin, false, password);

	if (rc != EX_OK) {
		auth_client_stop(&client);
		return rc;
	}

	struct auth_test t = { 0 };

	rc = run_check(client, login, password, o.remote, &t);
	mem_wipe(password, sizeof(password));
	if (rc != EX_OK)
		return rc;
	print_result(ctl, login, &t);
	return result_exit(t.result);
}

const struct ctl_command ctl_auth_commands[] = {
	{ "auth test", "USER [--password-stdin] [--remote IP]",
	  "check a password through PAM exactly as the daemons do",
	  "Runs one login through the auth worker, as tern-imapd and tern-pop3d do:\n"
	  "the PAM service and pam_confdir of the configuration, pam_authenticate\n"
	  "and pam_acct_mgmt, master-user rules, then the user directory. The\n"
	  "password is asked on the terminal without echo, or read as one line from\n"
	  "stdin with --password-stdin. Prints the result (ok, failed, disabled,\n"
	  "tempfail, limited), the message a client would get and, on success, the\n"
	  "user record; the log line with PAM's reason goes to stderr. Run it as\n"
	  "root so that the worker gets the daemons' privileges.\n"
	  "\n"
	  "  --password-stdin   read the password from stdin (one line)\n"
	  "  --remote IP        the client address PAM sees (PAM_RHOST);\n"
	  "                     default 127.0.0.1\n"
	  "\n"
	  "Exit: 0 ok, 77 (EX_NOPERM) failed or disabled, 75 (EX_TEMPFAIL) a\n"
	  "temporary failure.\n",
	  cmd_test },
	{ NULL, NULL, NULL, NULL, NULL },
};
