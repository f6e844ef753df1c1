/*
 * cmd-user.c — `ternctl user ...`: Tern's virtual users in the users
 * database (add, del, passwd, enable, disable, quota) and a view of any
 * user with their usage (list, show), plus reading passwords for these
 * commands and for `auth test`.
 *
 * Passwords come from a prompt without echo when stdin is a terminal, or
 * as one line of stdin with --password-stdin; never from the command line,
 * where every user of the machine could read them in /proc. They are
 * hashed with yescrypt at once and wiped.
 *
 * With [auth] users = system the accounts belong to the system (useradd,
 * passwd, usermod): the commands that change users refuse with EX_CONFIG,
 * while list and show still work (list shows the accounts that have mail
 * under mail_root).
 *
 * `user del` asks before removing mail. On a terminal the answer decides
 * (no keeps the mail, the account is still deleted); without one it refuses
 * unless --yes or --keep-mail says what to do. The mail directory is
 * removed without following symbolic links or crossing file systems, and
 * never when it is mail_root itself or one of its parents.
 */
#include "ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- passwords */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

/* A signal while echo is off: turn it back on, then die of the signal. */
static void restore_echo_and_die(int sig)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd without its line end (LF or CRLF), byte by byte so that
 * nothing after it is consumed. 1 for a line, 0 at EOF before any byte,
 * -1 when it is longer than max or holds a NUL (errno EINVAL), or on a
 * read error. */
static int read_line(int fd, char *buf, size_t max)
{
	size_t len = 0;

	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (len == 0)
				return 0;
			break;
		}
		if (c == '\n')
			break;
		if (c == '\0' || len >= max) {
			/* Keep nothing of a refused password around. */
			mem_wipe(buf, len);
			errno = EINVAL;
			return -1;
		}
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return 1;
}

/* Ask on the terminal with echo off. */
static int prompt_password(const char *prompt, char *buf)
{
	struct termios t;
	struct sigaction sa = { .sa_handler = restore_echo_and_die }, old[4];
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -1;
	t = saved_termios;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ICANON;
	for (size_t i = 0; i < N_ELEMENTS(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	termios_saved = 1;
	/* Echo goes off before the prompt shows, so nothing typed after it
	 * is ever echoed; what was typed before it is discarded. */
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	fputs(prompt, stderr);
	fflush(stderr);
	r = read_line(STDIN_FILENO, buf, CTL_PASSWORD_MAX);
	int saved_errno = errno;

	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
	termios_saved = 0;
	for (size_t i = 0; i < N_ELEMENTS(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	fputc('\n', stderr);
	errno = saved_errno;
	return r;
}

/* Say why read_line (r) gave no password; the exit code. */
static int password_error(int r, const char *where)
{
	if (r == 0) {
		ctl_error("no password given (%s ended)", where);
		return EX_NOINPUT;
	}
	if (errno == EINVAL) {
		ctl_error("the password is longer than %d bytes or contains a NUL byte",
			  CTL_PASSWORD_MAX);
		return EX_DATAERR;
	}
	ctl_error("cannot read the password from %s: %s", where, strerror(errno));
	return EX_IOERR;
}

int ctl_read_password(const char *user, bool from_stdin, bool confirm, char *buf)
{
	int r;

	if (from_stdin) {
		r = read_line(STDIN_FILENO, buf, CTL_PASSWORD_MAX);
		if (r <= 0)
			return password_error(r, "stdin");
	} else {
		if (!isatty(STDIN_FILENO)) {
			ctl_error("no terminal to ask for the password on: use --password-stdin");
			return EX_USAGE;
		}
		char prompt[AUTH_NAME_MAX + 64];
		char again[CTL_PASSWORD_MAX + 1];

		snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
		r = prompt_password(prompt, buf);
		if (r <= 0)
			return password_error(r, "the terminal");
		if (confirm && buf[0] != '\0') {
			r = prompt_password("Retype the password: ", again);
			if (r <= 0) {
				mem_wipe(buf, CTL_PASSWORD_MAX + 1);
				return password_error(r, "the terminal");
			}
			bool same = strcmp(buf, again) == 0;

			mem_wipe(again, sizeof(again));
			if (!same) {
				mem_wipe(buf, CTL_PASSWORD_MAX + 1);
				ctl_error("the passwords do not match; nothing was changed");
				return EX_DATAERR;
			}
		}
	}
	if (buf[0] == '\0') {
		ctl_error("empty passwords are not allowed");
		return EX_DATAERR;
	}
	return EX_OK;
}

/* The yescrypt hash of a new password, read as ctl_read_password does. */
static int read_new_hash(const char *user, bool from_stdin, char *hash)
{
	char password[CTL_PASSWORD_MAX + 1];
	int rc = ctl_read_password(user, from_stdin, true, password);

	if (rc != EX_OK)
		return rc;
	int r = auth_password_hash(password, hash, AUTH_HASH_MAX);
	int saved_errno = errno;

	mem_wipe(password, sizeof(password));
	if (r < 0) {
		ctl_error("cannot hash the password: %s", strerror(saved_errno));
		return EX_SOFTWARE;
	}
	return EX_OK;
}

/* ---------------------------------------------------- sizes and numbers */

/* A limit: a number ("1048576"), for sizes also with a binary unit
 * ("512K", "512M", "2G", "1T"; "MB" and "MiB" too); "unlimited" or 0 for
 * none. 0, or -1 when s is none of these. */
static int parse_limit(const char *s, bool with_units, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;
	unsigned long long v;

	if (strcmp(s, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		/* (*end is not NUL, so strchr cannot match the terminator.) */
		const char *u = strchr(units, toupper((unsigned char)*end));

		if (!with_units || u == NULL)
			return -1;
		end++;
		if (*end != '\0' && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
			return -1;
		for (const char *p = units; p <= u; p++) {
			if (v > UINT64_MAX / 1024)
				return -1;
			v *= 1024;
		}
	}
	if (v > INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

/* A size for people: exact units when it divides ("2G"), else one decimal
 * ("1.5M"), plain bytes below 1 KiB. */
static const char *fmt_size(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	int u = -1;
	uint64_t unit = 1;

	while (u < 3 && v >= unit * 1024) {
		unit *= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%llu", (unsigned long long)v);
	else if (v % unit == 0)
		snprintf(buf, size, "%llu%c", (unsigned long long)(v / unit), units[u]);
	else
		snprintf(buf, size, "%.1f%c", (double)v / (double)unit, units[u]);
	return buf;
}

static const char *fmt_limit(uint64_t v, char *buf, size_t size)
{
	return v == 0 ? "unlimited" : fmt_size(v, buf, size);
}

static const char *fmt_count_limit(uint64_t v, char *buf, size_t size)
{
	if (v == 0)
		return "unlimited";
	snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

static const char *fmt_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		return "-";
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* ------------------------------------------------------------- options */

struct opts {
	bool password_stdin;
	bool disabled;
	bool keep_mail;
	const char *quota_storage;
	const char *quota_messages;
	const char *mail_dir;
	char **args; /* the operands */
};

enum {
	OPT_PASSWORD_STDIN = 256,
	OPT_QUOTA_STORAGE,
	OPT_QUOTA_MESSAGES,
	OPT_MAIL_DIR,
	OPT_DISABLED,
	OPT_KEEP_MAIL,
	OPT_STORAGE,
	OPT_MESSAGES,
};

static int take_option(int opt, const char *value, void *data)
{
	struct opts *o = data;

	switch (opt) {
	case OPT_PASSWORD_STDIN:
		o->password_stdin = true;
		break;
	case OPT_DISABLED:
		o->disabled = true;
		break;
	case OPT_KEEP_MAIL:
		o->keep_mail = true;
		break;
	case OPT_QUOTA_STORAGE:
	case OPT_STORAGE:
		o->quota_storage = value;
		break;
	case OPT_QUOTA_MESSAGES:
	case OPT_MESSAGES:
		o->quota_messages = value;
		break;
	case OPT_MAIL_DIR:
		o->mail_dir = value;
		break;
	default:
		return -1;
	}
	return 0;
}

/* Parse argv with the given long options (no short ones) and nargs
 * operands: EX_OK, or EX_USAGE after saying what was wrong. */
static int parse_opts(const struct ctl_command *cmd, int argc, char **argv,
		      const struct option *longopts, int nargs, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	int first = ctl_parse_options(cmd, argc, argv, "", longopts, nargs, take_option, o);

	if (first < 0)
		return EX_USAGE;
	o->args = argv + first;
	return EX_OK;
}

static const struct option no_options[] = { { NULL, 0, NULL, 0 } };

/* ------------------------------------------------------------- helpers */

static int require_virtual(const struct ctl *ctl, const struct ctl_command *cmd)
{
	if (ctl->cfg->auth_users == CFG_USERS_VIRTUAL)
		return EX_OK;
	ctl_error("%s: %s has users = system: accounts and passwords are managed by the "
		  "system (useradd, passwd, usermod), not by ternctl", cmd->name, ctl->cfg->path);
	return EX_CONFIG;
}

static int normalize(const char *name, char *out)
{
	const char *why;

	if (auth_name_normalize(name, out, AUTH_NAME_MAX + 1, &why) < 0) {
		ctl_error("invalid user name: %s", why);
		return EX_DATAERR;
	}
	return EX_OK;
}

static int open_db(struct ctl *ctl, bool create, struct userdb **db_r)
{
	char *error = NULL;

	if (!create && access(ctl->cfg->auth_users_db, F_OK) < 0 && errno == ENOENT) {
		ctl_error("the users database %s does not exist yet ('ternctl user add' creates it)",
			  ctl->cfg->auth_users_db);
		return EX_NOUSER;
	}
	if (userdb_open(ctl->cfg->auth_users_db, create, db_r, &error) < 0) {
		ctl_error("cannot open the users database: %s", error);
		free(error);
		return create ? EX_CANTCREAT : EX_UNAVAILABLE;
	}
	return EX_OK;
}

/* Map a users database result, printing what went wrong. */
static int db_exit(enum userdb_result r, const char *name, char *error)
{
	int rc = EX_OK;

	switch (r) {
	case USERDB_OK:
		break;
	case USERDB_NOT_FOUND:
		ctl_error("no such user: %s", name);
		rc = EX_NOUSER;
		break;
	case USERDB_EXISTS:
		ctl_error("user %s already exists", name);
		rc = EX_CANTCREAT;
		break;
	case USERDB_ERROR:
		ctl_error("users database: %s", error != NULL ? error : "unknown error");
		rc = EX_UNAVAILABLE;
		break;
	}
	free(error);
	return rc;
}

/* Usage from the user's store; false when it cannot be known (no Maildir
 * counts as empty). The store is never created here. */
static bool get_usage(const struct auth_user *user, uint64_t *bytes_r, uint64_t *msgs_r)
{
	struct store_user_options opt = { .create = false };
	struct store_user *store;
	struct store_error err = { 0 };
	struct stat st;

	*bytes_r = *msgs_r = 0;
	if (stat(user->mail_dir, &st) < 0 && errno == ENOENT)
		return true;
	if (store_user_open(user->mail_dir, &opt, &store, &err) < 0) {
		if (err.code == STORE_ERR_NOTFOUND)
			return true;
		ctl_error("usage of %s unknown: %s", user->name, err.msg);
		return false;
	}
	int r = store_user_usage(store, bytes_r, msgs_r, &err);

	store_user_close(&store);
	if (r < 0) {
		ctl_error("usage of %s unknown: %s", user->name, err.msg);
		return false;
	}
	return true;
}

static const char *kind_name(const struct ctl *ctl)
{
	return ctl->cfg->auth_users == CFG_USERS_VIRTUAL ? "virtual" : "system";
}

/* One user as a JSON object (key NULL inside an array). */
static void json_user(const struct ctl *ctl, const char *key, const struct auth_user *u,
		      bool have_usage, uint64_t bytes, uint64_t msgs)
{
	ctl_json_begin_object(key);
	ctl_json_string("name", u->name);
	ctl_json_string("kind", kind_name(ctl));
	ctl_json_bool("enabled", u->enabled);
	ctl_json_string("mail_dir", u->mail_dir);
	ctl_json_uint("quota_bytes", u->quota_bytes);
	ctl_json_uint("quota_messages", u->quota_messages);
	if (have_usage) {
		ctl_json_uint("usage_bytes", bytes);
		ctl_json_uint("usage_messages", msgs);
	} else {
		ctl_json_string("usage_bytes", NULL);
		ctl_json_string("usage_messages", NULL);
	}
	if (u->created != 0)
		ctl_json_int("created", u->created);
	else
		ctl_json_string("created", NULL);
	if (u->updated != 0)
		ctl_json_int("updated", u->updated);
	else
		ctl_json_string("updated", NULL);
	ctl_json_end_object();
}

static void print_user(const struct ctl *ctl, const struct auth_user *u, bool have_usage,
		       uint64_t bytes, uint64_t msgs)
{
	char a[32], b[32];

	printf("name:           %s\n", u->name);
	printf("kind:           %s\n", kind_name(ctl));
	printf("enabled:        %s\n", u->enabled ? "yes" : "no");
	printf("mail_dir:       %s\n", u->mail_dir);
	printf("quota_storage:  %s\n", fmt_limit(u->quota_bytes, a, sizeof(a)));
	printf("quota_messages: %s\n", fmt_count_limit(u->quota_messages, a, sizeof(a)));
	if (have_usage) {
		printf("usage_storage:  %s (%llu bytes)\n", fmt_size(bytes, a, sizeof(a)),
		       (unsigned long long)bytes);
		printf("usage_messages: %llu\n", (unsigned long long)msgs);
	} else {
		printf("usage_storage:  unknown\nusage_messages: unknown\n");
	}
	printf("created:        %s\n", fmt_time(u->created, a, sizeof(a)));
	printf("updated:        %s\n", fmt_time(u->updated, b, sizeof(b)));
}

/* Read a virtual user back from the database after a change. */
static int get_user(struct ctl *ctl, struct userdb *db, const char *name, struct auth_user *u)
{
	char *error = NULL;

	return db_exit(userdb_get(db, name, ctl->cfg->mail_root, u, NULL, &error), name, error);
}

/* How each command that changes a virtual user starts: its options and
 * NAME parsed, users = virtual required, NAME normalized into name
 * (AUTH_NAME_MAX + 1 bytes). EX_OK, or the exit code after saying why. */
static int parse_change(const struct ctl *ctl, const struct ctl_command *cmd, int argc,
			char **argv, const struct option *longopts, struct opts *o, char *name)
{
	int rc;

	if ((rc = parse_opts(cmd, argc, argv, longopts, 1, o)) != EX_OK ||
	    (rc = require_virtual(ctl, cmd)) != EX_OK)
		return rc;
	return normalize(o->args[0], name);
}

/* Open the users database and read name's record: EX_OK with *db_r open,
 * or the exit code after saying why, with nothing open. */
static int open_user(struct ctl *ctl, const char *name, struct userdb **db_r,
		     struct auth_user *u)
{
	int rc = open_db(ctl, false, db_r);

	if (rc == EX_OK && (rc = get_user(ctl, *db_r, name, u)) != EX_OK)
		userdb_close(db_r);
	return rc;
}

/* ---------------------------------------------------------------- add */

static const struct option add_options[] = {
	{ "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
	{ "quota-storage", required_argument, NULL, OPT_QUOTA_STORAGE },
	{ "quota-messages", required_argument, NULL, OPT_QUOTA_MESSAGES },
	{ "mail-dir", required_argument, NULL, OPT_MAIL_DIR },
	{ "disabled", no_argument, NULL, OPT_DISABLED },
	{ NULL, 0, NULL, 0 },
};

/* An absolute path without "." or ".." components or control characters. */
static bool mail_dir_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (const unsigned char *c = (const unsigned char *)p; *c != '\0'; c++) {
		if (*c < 0x20 || *c == 0x7f)
			return false;
	}
	for (const char *c = p; *c != '\0';) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");

		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
	}
	return true;
}

static int parse_quota_opts(const struct opts *o, uint64_t *bytes, uint64_t *msgs)
{
	if (o->quota_storage != NULL && parse_limit(o->quota_storage, true, bytes) < 0) {
		ctl_error("bad size '%s' (examples: 512M, 2G, 1048576, unlimited)",
			  o->quota_storage);
		return EX_USAGE;
	}
	if (o->quota_messages != NULL && parse_limit(o->quota_messages, false, msgs) < 0) {
		ctl_error("bad message count '%s' (a number, or unlimited)", o->quota_messages);
		return EX_USAGE;
	}
	return EX_OK;
}

/* This file's command n of the table at the end (for usage messages). */
#define CMD(n) (&ctl_user_commands[n])

static int cmd_add(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = CMD(0);
	struct opts o;
	char name[AUTH_NAME_MAX + 1];
	uint64_t qbytes = 0, qmsgs = 0;
	int rc;

	if ((rc = parse_change(ctl, cmd, argc, argv, add_options, &o, name)) != EX_OK ||
	    (rc = parse_quota_opts(&o, &qbytes, &qmsgs)) != EX_OK)
		return rc;
	if (o.mail_dir != NULL && !mail_dir_ok(o.mail_dir)) {
		ctl_error("--mail-dir must be an absolute path without . or .. components or "
			  "control characters");
		return EX_USAGE;
	}

	struct userdb *db;

	if ((rc = open_db(ctl, true, &db)) != EX_OK)
		return rc;

	/* Refuse a duplicate before asking for a password. */
	struct auth_user u;
	char *error = NULL;
	enum userdb_result r = userdb_get(db, name, ctl->cfg->mail_root, &u, NULL, &error);

	if (r != USERDB_NOT_FOUND) {
		userdb_close(&db);
		return db_exit(r == USERDB_OK ? USERDB_EXISTS : r, name, error);
	}
	free(error);
	error = NULL;

	char hash[AUTH_HASH_MAX];

	if ((rc = read_new_hash(name, o.password_stdin, hash)) != EX_OK) {
		userdb_close(&db);
		return rc;
	}
	r = userdb_add(db, name, hash, qbytes, qmsgs, o.mail_dir, &error);
	mem_wipe(hash, sizeof(hash));
	if (r == USERDB_OK && o.disabled)
		r = userdb_set_enabled(db, name, false, &error);
	if ((rc = db_exit(r, name, error)) != EX_OK) {
		userdb_close(&db);
		return rc;
	}
	if ((rc = get_user(ctl, db, name, &u)) != EX_OK) {
		userdb_close(&db);
		return rc;
	}

	/* The mail directory, with INBOX and the special-use folders. A user
	 * whose mail cannot be created is not left behind half made. */
	struct store_quota quota = { .max_bytes = u.quota_bytes, .max_messages = u.quota_messages };
	struct store_user_options sopt = { .create = true, .quota = &quota };
	struct store_user *store;
	struct store_error serr = { 0 };
	struct stat st;
	bool existed = stat(u.mail_dir, &st) == 0;

	if (store_user_open(u.mail_dir, &sopt, &store, &serr) < 0) {
		ctl_error("cannot create the mail directory %s: %s; user %s not added", u.mail_dir,
			  serr.msg, name);
		r = userdb_delete(db, name, &error);
		if (r != USERDB_OK)
			db_exit(r, name, error);
		userdb_close(&db);
		return ctl_store_exit(&serr);
	}
	uint64_t bytes = 0, msgs = 0;
	bool have_usage = store_user_usage(store, &bytes, &msgs, &serr) == 0;

	store_user_close(&store);
	userdb_close(&db);
	if (ctl->json) {
		json_user(ctl, NULL, &u, have_usage, bytes, msgs);
		ctl_json_finish();
	} else {
		printf("added user %s%s, mail in %s%s\n", u.name, u.enabled ? "" : " (disabled)",
		       u.mail_dir, existed ? " (existing mail kept)" : "");
	}
	return EX_OK;
}

/* ---------------------------------------------------------------- del */

static const struct option del_options[] = {
	{ "keep-mail", no_argument, NULL, OPT_KEEP_MAIL },
	{ NULL, 0, NULL, 0 },
};

static int remove_entry_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int r = type == FTW_DP ? rmdir(path) : unlink(path);

	if (r < 0 && errno != ENOENT) {
		ctl_error("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Is dir (absolute, normalized by userdb) mail_root or one of its parents? */
static bool contains_mail_root(const char *dir, const char *root)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(root, dir, n) == 0 && (root[n] == '\0' || root[n] == '/');
}

static int remove_mail(const struct ctl *ctl, const char *dir)
{
	if (dir[0] != '/' || contains_mail_root(dir, ctl->cfg->mail_root)) {
		ctl_error("refusing to remove %s: it is not a user's own directory", dir);
		return EX_DATAERR;
	}
	if (nftw(dir, remove_entry_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
		if (errno == ENOENT)
			return EX_OK;
		ctl_error("removing %s failed (see above)", dir);
		return EX_IOERR;
	}
	return EX_OK;
}

static int cmd_del(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = CMD(1);
	struct opts o;
	char name[AUTH_NAME_MAX + 1];
	struct userdb *db;
	struct auth_user u;
	int rc;

	if ((rc = parse_change(ctl, cmd, argc, argv, del_options, &o, name)) != EX_OK ||
	    (rc = open_user(ctl, name, &db, &u)) != EX_OK)
		return rc;

	struct stat st;
	bool has_mail = lstat(u.mail_dir, &st) == 0;
	bool remove = false;

	if (has_mail && !o.keep_mail) {
		if (ctl->yes) {
			remove = true;
		} else if (isatty(STDIN_FILENO)) {
			char q[sizeof(u.mail_dir) + AUTH_NAME_MAX + 64];

			snprintf(q, sizeof(q), "Remove %s's mail in %s?", name, u.mail_dir);
			remove = ctl_confirm(q);
		} else {
			userdb_close(&db);
			ctl_error("%s has mail in %s: give --keep-mail to keep it or --yes to remove "
				  "it (no terminal to ask on); nothing was changed",
				  name, u.mail_dir);
			return EX_USAGE;
		}
	}

	char *error = NULL;

	rc = db_exit(userdb_delete(db, name, &error), name, error);
	userdb_close(&db);
	if (rc != EX_OK)
		return rc;
	if (remove)
		rc = remove_mail(ctl, u.mail_dir);
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("name", name);
		ctl_json_bool("deleted", true);
		ctl_json_string("mail_dir", u.mail_dir);
		ctl_json_bool("mail_removed", remove && rc == EX_OK);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("deleted user %s", name);
		if (!has_mail)
			printf("; no mail in %s\n", u.mail_dir);
		else if (remove && rc == EX_OK)
			printf("; removed the mail in %s\n", u.mail_dir);
		else if (remove)
			printf("; the mail in %s was not removed completely\n", u.mail_dir);
		else
			printf("; kept the mail in %s\n", u.mail_dir);
	}
	return rc;
}

/* ------------------------------------------- passwd, enable, disable */

static const struct option passwd_options[] = {
	{ "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
	{ NULL, 0, NULL, 0 },
};

static int cmd_passwd(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = CMD(2);
	struct opts o;
	char name[AUTH_NAME_MAX + 1];
	struct userdb *db;
	struct auth_user u;
	char hash[AUTH_HASH_MAX];
	char *error = NULL;
	int rc;

	/* No password prompt for a user who does not exist. */
	if ((rc = parse_change(ctl, cmd, argc, argv, passwd_options, &o, name)) != EX_OK ||
	    (rc = open_user(ctl, name, &db, &u)) != EX_OK)
		return rc;
	if ((rc = read_new_hash(name, o.password_stdin, hash)) != EX_OK) {
		userdb_close(&db);
		return rc;
	}
	rc = db_exit(userdb_set_hash(db, name, hash, &error), name, error);
	mem_wipe(hash, sizeof(hash));
	userdb_close(&db);
	if (rc != EX_OK)
		return rc;
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("name", name);
		ctl_json_bool("password_changed", true);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("changed the password of %s\n", name);
	}
	return EX_OK;
}

static int set_enabled(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv,
		       bool enabled)
{
	struct opts o;
	char name[AUTH_NAME_MAX + 1];
	struct userdb *db;
	char *error = NULL;
	int rc;

	if ((rc = parse_change(ctl, cmd, argc, argv, no_options, &o, name)) != EX_OK ||
	    (rc = open_db(ctl, false, &db)) != EX_OK)
		return rc;
	rc = db_exit(userdb_set_enabled(db, name, enabled, &error), name, error);
	userdb_close(&db);
	if (rc != EX_OK)
		return rc;
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("name", name);
		ctl_json_bool("enabled", enabled);
		ctl_json_end_object();
		ctl_json_finish();
	} else {
		printf("%s user %s\n", enabled ? "enabled" : "disabled", name);
	}
	return EX_OK;
}

static int cmd_enable(struct ctl *ctl, int argc, char **argv)
{
	return set_enabled(ctl, CMD(5), argc, argv, true);
}

static int cmd_disable(struct ctl *ctl, int argc, char **argv)
{
	return set_enabled(ctl, CMD(6), argc, argv, false);
}

/* --------------------------------------------------------------- quota */

static const struct option quota_options[] = {
	{ "storage", required_argument, NULL, OPT_STORAGE },
	{ "messages", required_argument, NULL, OPT_MESSAGES },
	{ NULL, 0, NULL, 0 },
};

static int cmd_quota(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = CMD(7);
	struct opts o;
	char name[AUTH_NAME_MAX + 1];
	struct userdb *db;
	struct auth_user u;
	char *error = NULL;
	int rc;

	if ((rc = parse_change(ctl, cmd, argc, argv, quota_options, &o, name)) != EX_OK ||
	    (rc = open_user(ctl, name, &db, &u)) != EX_OK)
		return rc;
	uint64_t qbytes = u.quota_bytes, qmsgs = u.quota_messages;
	bool change = o.quota_storage != NULL || o.quota_messages != NULL;

	if ((rc = parse_quota_opts(&o, &qbytes, &qmsgs)) != EX_OK) {
		userdb_close(&db);
		return rc;
	}
	if (change) {
		rc = db_exit(userdb_set_quota(db, name, qbytes, qmsgs, &error), name, error);
		if (rc == EX_OK)
			rc = get_user(ctl, db, name, &u);
	}
	userdb_close(&db);
	if (rc != EX_OK)
		return rc;

	uint64_t bytes, msgs;
	bool have_usage = get_usage(&u, &bytes, &msgs);
	char a[32], b[32];

	if (ctl->json) {
		json_user(ctl, NULL, &u, have_usage, bytes, msgs);
		ctl_json_finish();
		return EX_OK;
	}
	printf("%s: storage %s", name, have_usage ? fmt_size(bytes, a, sizeof(a)) : "?");
	printf(" of %s, ", fmt_limit(u.quota_bytes, b, sizeof(b)));
	if (have_usage)
		printf("messages %llu", (unsigned long long)msgs);
	else
		printf("messages ?");
	printf(" of %s\n", fmt_count_limit(u.quota_messages, a, sizeof(a)));
	return EX_OK;
}

/* ---------------------------------------------------------- list, show */

struct list_state {
	struct ctl *ctl;
	unsigned count;
	bool usage_failed;
};

static int list_one_cb(const struct auth_user *u, void *data)
{
	struct list_state *ls = data;
	uint64_t bytes, msgs;
	bool have_usage = get_usage(u, &bytes, &msgs);
	char a[32], b[32], c[32];

	if (!have_usage)
		ls->usage_failed = true;
	if (ls->ctl->json) {
		json_user(ls->ctl, NULL, u, have_usage, bytes, msgs);
	} else {
		if (ls->count == 0)
			printf("%-32s %-7s %-22s %s\n", "NAME", "ENABLED", "STORAGE", "MESSAGES");
		snprintf(c, sizeof(c), "%s / %s", have_usage ? fmt_size(bytes, a, sizeof(a)) : "?",
			 fmt_limit(u->quota_bytes, b, sizeof(b)));
		printf("%-32s %-7s %-22s ", u->name, u->enabled ? "yes" : "no", c);
		if (have_usage)
			printf("%llu", (unsigned long long)msgs);
		else
			printf("?");
		printf(" / %s\n", fmt_count_limit(u->quota_messages, a, sizeof(a)));
	}
	ls->count++;
	return 0;
}

static int qsort_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* System mode: the accounts that have a mail directory under mail_root. */
static int list_system_users(struct ctl *ctl, struct list_state *ls)
{
	struct auth_directory *dir;
	char *error = NULL;
	DIR *d = opendir(ctl->cfg->mail_root);

	if (d == NULL) {
		if (errno == ENOENT)
			return EX_OK;
		ctl_error("cannot read %s: %s", ctl->cfg->mail_root, strerror(errno));
		return EX_IOERR;
	}
	if (auth_directory_open(ctl->cfg, &dir, &error) < 0) {
		closedir(d);
		ctl_error("cannot open the user directory: %s", error);
		free(error);
		return EX_TEMPFAIL;
	}

	/* Sorted by name, as the users database lists them. */
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;

	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[count++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (count > 0)
		qsort(names, count, sizeof(*names), qsort_strcmp);

	int rc = EX_OK;

	for (size_t i = 0; i < count; i++) {
		struct auth_user u;
		char norm[AUTH_NAME_MAX + 1];
		const char *why;

		/* Only directories named as a user is (the stored form). */
		if (auth_name_normalize(names[i], norm, sizeof(norm), &why) == 0 &&
		    strcmp(norm, names[i]) == 0) {
			enum auth_lookup_result r = auth_directory_lookup(dir, norm, &u);

			if (r == AUTH_LOOKUP_FOUND)
				list_one_cb(&u, ls);
			else if (r == AUTH_LOOKUP_TEMPFAIL)
				rc = EX_TEMPFAIL;
		}
		free(names[i]);
	}
	free(names);
	auth_directory_close(&dir);
	if (rc != EX_OK)
		ctl_error("some users could not be looked up (see above)");
	return rc;
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	struct opts o;
	struct list_state ls = { .ctl = ctl };
	int rc;

	if ((rc = parse_opts(CMD(3), argc, argv, no_options, 0, &o)) != EX_OK)
		return rc;
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("kind", kind_name(ctl));
		ctl_json_begin_array("users");
	}
	if (ctl->cfg->auth_users == CFG_USERS_SYSTEM) {
		rc = list_system_users(ctl, &ls);
	} else if (access(ctl->cfg->auth_users_db, F_OK) == 0 || errno != ENOENT) {
		struct userdb *db;
		char *error = NULL;

		rc = open_db(ctl, false, &db);
		if (rc == EX_OK) {
			rc = db_exit(userdb_list(db, ctl->cfg->mail_root, list_one_cb, &ls, &error),
				     "", error);
			userdb_close(&db);
		}
	}
	if (ctl->json) {
		ctl_json_end_array();
		ctl_json_end_object();
		ctl_json_finish();
	} else if (ls.count == 0 && rc == EX_OK) {
		printf("no users\n");
	}
	if (rc == EX_OK && ls.usage_failed)
		rc = EX_TEMPFAIL;
	return rc;
}

static int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	struct opts o;
	struct auth_user u;
	int rc;

	if ((rc = parse_opts(CMD(4), argc, argv, no_options, 1, &o)) != EX_OK ||
	    (rc = ctl_lookup_user(ctl, o.args[0], &u)) != EX_OK)
		return rc;

	uint64_t bytes, msgs;
	bool have_usage = get_usage(&u, &bytes, &msgs);

	if (ctl->json) {
		json_user(ctl, NULL, &u, have_usage, bytes, msgs);
		ctl_json_finish();
	} else {
		print_user(ctl, &u, have_usage, bytes, msgs);
	}
	return have_usage ? EX_OK : EX_TEMPFAIL;
}

/* ------------------------------------------------------------- table */

/* The order is used by CMD(n) above. */
const struct ctl_command ctl_user_commands[] = {
	{ "user add",
	  "NAME [--password-stdin] [--quota-storage SIZE] [--quota-messages N] [--mail-dir PATH] "
	  "[--disabled]",
	  "add a virtual user and create their mail directory",
	  "Adds NAME (user or user@domain; letters, digits and . _ - + @, stored in\n"
	  "lower case) to the users database, creating the database if it does not\n"
	  "exist, and creates the mail directory with INBOX and the special-use\n"
	  "folders. The password is asked twice on the terminal without echo, or\n"
	  "read as one line from stdin with --password-stdin; it is never taken from\n"
	  "the command line, and an empty one is refused.\n"
	  "\n"
	  "  --password-stdin       read the password from stdin (one line)\n"
	  "  --quota-storage SIZE   storage limit: bytes or 512K, 512M, 2G, 1T;\n"
	  "                         0 or unlimited for none (the default)\n"
	  "  --quota-messages N     message limit; 0 or unlimited for none\n"
	  "  --mail-dir PATH        an absolute mail directory instead of\n"
	  "                         mail_root/NAME (no . or .. components)\n"
	  "  --disabled             add the user disabled (no logins)\n"
	  "\n"
	  "Virtual users only (users = virtual). Exit: 0, 65 bad name, 73 the user\n"
	  "exists, 78 system mode.",
	  cmd_add },
	{ "user del", "NAME [--keep-mail]", "delete a virtual user, and their mail if confirmed",
	  "Deletes NAME from the users database. If NAME has mail, ternctl asks\n"
	  "\"Remove NAME's mail in DIR? [y/N]\" on the terminal; answering no keeps\n"
	  "the mail (the account is deleted either way). Without a terminal it\n"
	  "refuses (exit 64, nothing changed) unless --yes (a global option: remove\n"
	  "the mail) or --keep-mail is given. Adding the user again later with the\n"
	  "same mail directory gives them the kept mail back.\n"
	  "\n"
	  "  --keep-mail   delete the account only; leave the mail directory\n",
	  cmd_del },
	{ "user passwd", "NAME [--password-stdin]", "set a virtual user's password",
	  "Sets NAME's password: asked twice on the terminal without echo, or read\n"
	  "as one line from stdin with --password-stdin. Running sessions stay\n"
	  "logged in.\n"
	  "\n"
	  "  --password-stdin   read the password from stdin (one line)\n",
	  cmd_passwd },
	{ "user list", "", "list users with their quota and usage",
	  "Lists the users in name order: name, whether logins are enabled, storage\n"
	  "used and its limit, messages and their limit. With users = system, lists\n"
	  "the system accounts that have a mail directory under mail_root.\n",
	  cmd_list },
	{ "user show", "NAME", "show one user: every field and the usage",
	  "Shows NAME as the daemons see it: kind (virtual or system), enabled, mail\n"
	  "directory, quota limits, usage (storage and messages, counted from the\n"
	  "mail index), and for virtual users when the account was created and last\n"
	  "changed (UTC). With users = system, looks the account up in the system's\n"
	  "user database.\n",
	  cmd_show },
	{ "user enable", "NAME", "allow a virtual user to log in again",
	  "Enables NAME: logins are accepted again.\n",
	  cmd_enable },
	{ "user disable", "NAME", "refuse a virtual user's logins",
	  "Disables NAME: PAM refuses the account (pam_acct_mgmt), so IMAP and POP3\n"
	  "logins fail even with the right password. Sessions already logged in are\n"
	  "not closed. The user and their mail stay.\n",
	  cmd_disable },
	{ "user quota", "NAME [--storage SIZE] [--messages N]",
	  "show or set a virtual user's quota",
	  "Without options, shows NAME's limits and usage. With options, sets the\n"
	  "given limits (the other stays as it is) and shows the result. A new limit\n"
	  "below the current usage refuses further mail but deletes nothing.\n"
	  "\n"
	  "  --storage SIZE   storage limit: bytes or 512K, 512M, 2G, 1T;\n"
	  "                   0 or unlimited clears it\n"
	  "  --messages N     message limit; 0 or unlimited clears it\n",
	  cmd_quota },
	{ NULL, NULL, NULL, NULL, NULL },
};
