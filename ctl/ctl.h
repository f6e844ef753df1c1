/*
 * ctl.h — ternctl's shared pieces: the command table, the context every
 * command gets, output for people and for scripts (--json), parsing a
 * command's options, and opening a user's store. One file per command
 * group (cmd-*.c) exports its table.
 *
 * Exit codes follow sysexits.h throughout (docs/ternctl.8 lists them), so
 * an MTA calling `ternctl deliver` retries EX_TEMPFAIL and bounces the rest.
 */
#ifndef TERN_CTL_H
#define TERN_CTL_H

#include "auth/auth.h"
#include "common/common.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdio.h>
#include <sysexits.h>

struct ctl {
	const char *config_path; /* -c, else $TERN_CONFIG, else the default */
	struct cfg *cfg;         /* loaded before any command runs */
	bool json;               /* --json: machine-readable output on stdout */
	bool yes;                /* --yes: do not ask before destroying data */
};

/* argv[0] is the last word of the command's name ("add" for "user add");
 * options of the command follow. Returns an exit code (EX_OK, EX_USAGE ...). */
typedef int ctl_run_fn(struct ctl *ctl, int argc, char **argv);

struct ctl_command {
	const char *name;    /* "user add" */
	const char *usage;   /* "NAME [--quota SIZE] [--password-stdin]" */
	const char *summary; /* one line for `ternctl --help` */
	const char *help;    /* the paragraph for `ternctl user add --help` */
	ctl_run_fn *run;
};

/* Each group's commands, ended by an entry with name NULL. */
extern const struct ctl_command ctl_user_commands[];     /* cmd-user.c */
extern const struct ctl_command ctl_auth_commands[];     /* cmd-auth.c */
extern const struct ctl_command ctl_config_commands[];   /* cmd-config.c */
extern const struct ctl_command ctl_mailbox_commands[];  /* cmd-mailbox.c */
extern const struct ctl_command ctl_index_commands[];    /* cmd-index.c: index, quota */
extern const struct ctl_command ctl_deliver_commands[];  /* cmd-deliver.c */
extern const struct ctl_command ctl_transfer_commands[]; /* cmd-transfer.c: import, export */

/* ---------------------------------------------------- output (output.c) */

/* "ternctl: <message>" on stderr. */
void ctl_error(const char *fmt, ...) ATTR_PRINTF(1, 2);
/* Print usage of cmd to stderr and return EX_USAGE. */
int ctl_usage(const struct ctl_command *cmd);
/* Ask "question [y/N]" on stderr and read the answer from stdin (the
 * caller checked it is a terminal): true for y or yes, in any case. */
bool ctl_confirm(const char *question);

/*
 * JSON on stdout, written as it goes: objects and arrays nest, keys and
 * strings are escaped (UTF-8 kept, control characters as \u00XX).
 *   ctl_json_begin_object(NULL); ctl_json_string("name", "a"); ... end.
 * key is NULL inside arrays and for the outermost value.
 */
void ctl_json_begin_object(const char *key);
void ctl_json_end_object(void);
void ctl_json_begin_array(const char *key);
void ctl_json_end_array(void);
void ctl_json_string(const char *key, const char *value); /* NULL: null */
void ctl_json_uint(const char *key, uint64_t value);
void ctl_json_int(const char *key, int64_t value);
void ctl_json_bool(const char *key, bool value);
/* Ends the document with a newline. */
void ctl_json_finish(void);

/* ------------------------------------------------ options (options.c) */

struct option; /* getopt.h */

/* Called for each option getopt_long returns (its val, and its value or
 * NULL): 0, or -1 after saying with ctl_error what is wrong with it. */
typedef int ctl_option_fn(int opt, const char *value, void *data);

/*
 * Parse the options of cmd in argv with getopt_long: shortopts without
 * the leading ':' ("m:", "" for none), longopts (NULL for none), take
 * (NULL when there are no options). Exactly `operands` operands must
 * remain. Returns the index in argv of the first operand, or -1 after
 * printing what was wrong and the usage: the caller returns EX_USAGE.
 */
int ctl_parse_options(const struct ctl_command *cmd, int argc, char **argv,
		      const char *shortopts, const struct option *longopts, int operands,
		      ctl_option_fn *take, void *data);
/* The same for a command whose one option is -m/--mailbox MAILBOX:
 * *mailbox_r is set when it is given, and left alone otherwise. */
int ctl_parse_mailbox_option(const struct ctl_command *cmd, int argc, char **argv,
			     int operands, const char **mailbox_r);

/* --------------------------------------------------- users (users.c) */

/* Look a user up in the user directory: EX_OK, EX_NOUSER (with an error
 * printed), EX_TEMPFAIL. */
int ctl_lookup_user(struct ctl *ctl, const char *name, struct auth_user *user_r);
/* Look up and open the user's store with the user's quota. Same codes;
 * store errors print and map through ctl_store_exit. */
int ctl_open_store(struct ctl *ctl, const char *name, struct auth_user *user_r,
		   struct store_user **store_r);
/* The exit code for a storage error (EX_TEMPFAIL for temporary ones). */
int ctl_store_exit(const struct store_error *err);

/* ----------------------------------------------- passwords (cmd-user.c) */

/* Longest password ternctl reads (PAM's PAM_MAX_RESP_SIZE). */
#define CTL_PASSWORD_MAX 512

/* Read a password for user: one line of stdin when from_stdin, else a
 * prompt on the terminal without echo (typed twice when confirm). Never
 * from the command line. Empty passwords are refused. EX_OK with buf
 * (CTL_PASSWORD_MAX + 1 bytes) filled; the caller wipes it. */
int ctl_read_password(const char *user, bool from_stdin, bool confirm, char *buf);

#endif
