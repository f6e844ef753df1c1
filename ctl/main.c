/*
 * main.c — ternctl's frame: global options, help, loading tern.conf,
 * dropping privileges, and dispatching to the command tables of ctl.h.
 *
 *   ternctl [-c|--config FILE] [--json] [--yes] COMMAND [ARGS...]
 *
 * The configuration is the daemons' own: -c, else $TERN_CONFIG, else the
 * installed default. Help never needs it (`ternctl --help`, `ternctl help
 * user add`, `ternctl user --help`, `ternctl user add --help`).
 *
 * Run as root, ternctl becomes mail_user (priv_drop) before any command
 * touches mail or the users database, so every file it creates has the
 * owner the daemons expect. Two exceptions: `config check` touches nothing,
 * and `auth test` starts the auth worker as root, exactly as a daemon does,
 * so PAM runs with the worker's privileges (it touches nothing itself).
 * `user add` may first create the users database's directory, owned by
 * mail_user.
 *
 * The long global options may also follow the command
 * (`ternctl user list --json`): they are taken out of the command's
 * arguments before it sees them.
 */
#include "ctl.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TERN_SYSCONFDIR
#define TERN_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG TERN_SYSCONFDIR "/tern/tern.conf"

static const struct ctl_command *const command_tables[] = {
	ctl_user_commands,    ctl_auth_commands,  ctl_mailbox_commands, ctl_index_commands,
	ctl_deliver_commands, ctl_transfer_commands, ctl_config_commands,
};

/* ------------------------------------------------------------------ names */

/* Length of the first word of a command name ("user" of "user add"). */
static size_t group_len(const char *name)
{
	return strcspn(name, " ");
}

/* How many of the words in argv (argc of them) the command's name matches
 * entirely: 0 when it does not. */
static int name_matches(const char *name, int argc, char **argv)
{
	int used = 0;

	while (*name != '\0') {
		size_t n = group_len(name);

		if (used >= argc || strlen(argv[used]) != n || strncmp(argv[used], name, n) != 0)
			return 0;
		used++;
		name += n;
		if (*name == ' ')
			name++;
	}
	return used;
}

static const struct ctl_command *find_command(int argc, char **argv, int *used_r)
{
	const struct ctl_command *best = NULL;
	int best_used = 0;

	for (size_t t = 0; t < N_ELEMENTS(command_tables); t++) {
		for (const struct ctl_command *c = command_tables[t]; c->name != NULL; c++) {
			int used = name_matches(c->name, argc, argv);

			if (used > best_used) {
				best = c;
				best_used = used;
			}
		}
	}
	*used_r = best_used;
	return best;
}

/* True when word is the first word of some multi-word command ("user"). */
static bool is_group(const char *word)
{
	for (size_t t = 0; t < N_ELEMENTS(command_tables); t++) {
		for (const struct ctl_command *c = command_tables[t]; c->name != NULL; c++) {
			size_t n = group_len(c->name);

			if (c->name[n] == ' ' && strlen(word) == n && strncmp(c->name, word, n) == 0)
				return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------- help */

static void print_command_line(FILE *out, const struct ctl_command *c)
{
	fprintf(out, "  %-18s %s\n", c->name, c->summary);
}

static void print_main_help(FILE *out)
{
	fprintf(out,
		"usage: ternctl [-c FILE] [--json] [--yes] COMMAND [ARGS...]\n"
		"\n"
		"Administer a Tern mail server: users, mailboxes, indexes, local delivery,\n"
		"import and export, PAM checks and the configuration.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE  the configuration (default: $TERN_CONFIG, else\n"
		"                     %s)\n"
		"      --json         machine-readable output on stdout\n"
		"      --yes          do not ask before destroying data\n"
		"  -h, --help         this help (COMMAND --help: that command's)\n"
		"  -V, --version      print the version\n"
		"\n"
		"Commands:\n",
		DEFAULT_CONFIG);
	for (size_t t = 0; t < N_ELEMENTS(command_tables); t++) {
		for (const struct ctl_command *c = command_tables[t]; c->name != NULL; c++)
			print_command_line(out, c);
	}
	fprintf(out, "\nRun 'ternctl COMMAND --help' for a command's arguments; see ternctl(8).\n");
}

static void print_group_help(FILE *out, const char *group)
{
	fprintf(out, "usage: ternctl %s SUBCOMMAND [ARGS...]\n\nCommands:\n", group);
	for (size_t t = 0; t < N_ELEMENTS(command_tables); t++) {
		for (const struct ctl_command *c = command_tables[t]; c->name != NULL; c++) {
			size_t n = group_len(c->name);

			if (c->name[n] == ' ' && strlen(group) == n && strncmp(c->name, group, n) == 0)
				print_command_line(out, c);
		}
	}
	fprintf(out, "\nRun 'ternctl %s SUBCOMMAND --help' for its arguments.\n", group);
}

static void print_command_help(const struct ctl_command *c)
{
	printf("usage: ternctl %s%s%s\n\n%s\n", c->name, c->usage[0] != '\0' ? " " : "",
	       c->usage, c->summary);
	if (c->help != NULL && c->help[0] != '\0') {
		size_t n = strlen(c->help);

		printf("\n%s%s", c->help, c->help[n - 1] == '\n' ? "" : "\n");
	}
}

static bool is_help_option(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* `ternctl help [WORDS...]`. */
static int help_command(int argc, char **argv)
{
	if (argc == 0) {
		print_main_help(stdout);
		return EX_OK;
	}
	int used;
	const struct ctl_command *c = find_command(argc, argv, &used);

	if (c != NULL && used == argc) {
		print_command_help(c);
		return EX_OK;
	}
	if (argc == 1 && is_group(argv[0])) {
		print_group_help(stdout, argv[0]);
		return EX_OK;
	}
	ctl_error("no help for an unknown command; try 'ternctl --help'");
	return EX_USAGE;
}

/* --------------------------------------------------------------- options */

struct global_opts {
	const char *config;
	bool json;
	bool yes;
};

/* Take --json, --yes and --config out of a command's arguments (up to a
 * "--"). Returns the new argc, or -1 when --config lacks its value. */
static int strip_global_options(int argc, char **argv, struct global_opts *g)
{
	int out = 0;
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "--json") == 0) {
			g->json = true;
		} else if (strcmp(a, "--yes") == 0) {
			g->yes = true;
		} else if (strncmp(a, "--config=", 9) == 0) {
			g->config = a + 9;
		} else if (strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return -1;
			g->config = argv[++i];
		} else {
			argv[out++] = argv[i];
		}
	}
	for (; i < argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	return out;
}

/* ------------------------------------------------------------ privileges */

/* mkdir -p dir, each directory created with mode 0750 and, when pw is
 * given, owned by it: the users database's directory must be writable by
 * mail_user (SQLite puts its journal files next to the database). */
static int make_dirs_for(const char *dir, const struct passwd *pw)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		ctl_error("bad directory name for the users database: %s", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(path, 0750) == 0) {
			if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
				ctl_error("cannot give %s to %s: %s", path, pw->pw_name,
					  strerror(errno));
				return -1;
			}
		} else if (errno != EEXIST) {
			ctl_error("cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

/* Before the drop: `user add` may be the first command ever run, so the
 * users database's directory may not exist yet. Made by root, it is given
 * to mail_user. */
static int prepare_users_db_dir(const struct cfg *cfg)
{
	if (cfg->auth_users != CFG_USERS_VIRTUAL || cfg->auth_users_db[0] != '/')
		return 0;

	struct passwd *pw = NULL;

	if (geteuid() == 0) {
		pw = getpwnam(cfg->mail_user);
		if (pw == NULL)
			return 0; /* priv_drop says what is wrong */
	}

	char dir[4096];
	const char *slash = strrchr(cfg->auth_users_db, '/');
	size_t n = (size_t)(slash - cfg->auth_users_db);
	struct stat st;

	if (n == 0 || n >= sizeof(dir))
		return 0;
	memcpy(dir, cfg->auth_users_db, n);
	dir[n] = '\0';
	if (stat(dir, &st) == 0)
		return 0;
	return make_dirs_for(dir, pw);
}

/* ------------------------------------------------------------------ main */

static int run_command(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	char *error = NULL;
	int rc;

	if (cfg_load(ctl->config_path, &ctl->cfg, &error) < 0) {
		ctl_error("%s", error);
		free(error);
		return EX_CONFIG;
	}
	if (strcmp(cmd->name, "user add") == 0 && prepare_users_db_dir(ctl->cfg) < 0) {
		cfg_free(&ctl->cfg);
		return EX_CANTCREAT;
	}
	if (geteuid() == 0 && strcmp(cmd->name, "config check") != 0 &&
	    strcmp(cmd->name, "auth test") != 0) {
		if (priv_drop(ctl->cfg->mail_user) < 0) {
			ctl_error("cannot switch to mail_user %s (see above)", ctl->cfg->mail_user);
			cfg_free(&ctl->cfg);
			return EX_CONFIG;
		}
	}
	rc = cmd->run(ctl, argc, argv);
	cfg_free(&ctl->cfg);
	return rc;
}

int main(int argc, char **argv)
{
	struct global_opts g = { 0 };
	int i;

	log_init("ternctl", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				ctl_error("%s needs a file name", a);
				return EX_USAGE;
			}
			g.config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			g.config = a + 9;
		} else if (strncmp(a, "-c", 2) == 0) {
			g.config = a + 2;
		} else if (strcmp(a, "--json") == 0) {
			g.json = true;
		} else if (strcmp(a, "--yes") == 0) {
			g.yes = true;
		} else if (is_help_option(a)) {
			print_main_help(stdout);
			return EX_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("ternctl %s\n", TERN_VERSION);
			return EX_OK;
		} else {
			ctl_error("unknown option '%s'; try 'ternctl --help'", a);
			return EX_USAGE;
		}
	}
	if (i >= argc) {
		print_main_help(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[i], "help") == 0)
		return help_command(argc - i - 1, argv + i + 1);

	int used;
	const struct ctl_command *cmd = find_command(argc - i, argv + i, &used);

	if (cmd == NULL) {
		if (is_group(argv[i])) {
			if (i + 1 < argc && is_help_option(argv[i + 1])) {
				print_group_help(stdout, argv[i]);
				return EX_OK;
			}
			if (i + 1 < argc)
				ctl_error("unknown command '%s %s'", argv[i], argv[i + 1]);
			else
				ctl_error("'%s' needs a subcommand", argv[i]);
			print_group_help(stderr, argv[i]);
			return EX_USAGE;
		}
		ctl_error("unknown command '%s'; try 'ternctl --help'", argv[i]);
		return EX_USAGE;
	}

	/* The command gets argv from the last word of its name. */
	int cargc = argc - i - used + 1;
	char **cargv = argv + i + used - 1;

	cargc = strip_global_options(cargc - 1, cargv + 1, &g) + 1;
	if (cargc <= 0) {
		ctl_error("--config needs a file name");
		return EX_USAGE;
	}
	for (int k = 1; k < cargc && strcmp(cargv[k], "--") != 0; k++) {
		if (is_help_option(cargv[k])) {
			print_command_help(cmd);
			return EX_OK;
		}
	}

	struct ctl ctl = {
		.json = g.json,
		.yes = g.yes,
	};
	const char *env = getenv("TERN_CONFIG");

	if (g.config != NULL)
		ctl.config_path = g.config;
	else if (env != NULL && env[0] != '\0')
		ctl.config_path = env;
	else
		ctl.config_path = DEFAULT_CONFIG;

	int rc = run_command(&ctl, cmd, cargc, cargv);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_error("writing the output failed: %s", strerror(errno));
		if (rc == EX_OK)
			rc = EX_IOERR;
	}
	return rc;
}
