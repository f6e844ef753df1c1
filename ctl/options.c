/*
 * options.c — one way for every ternctl command to read its options and
 * operands, so that they all say the same about a bad command line.
 *
 * getopt_long scans the command's argv (argv[0] is the command's last
 * word, which getopt skips); options may come before, between or after the
 * operands, and "--" ends them. A missing value, an unknown option or the
 * wrong number of operands is said on stderr, followed by the command's
 * usage, and is EX_USAGE for the caller.
 */
#include "ctl.h"

#include <ctype.h>
#include <getopt.h>
#include <string.h>

/* Say what getopt refused with '?' (glibc's optopt and optind). */
static void unknown_option(char **argv, const char *shortopts)
{
	if (optopt == 0) {
		/* An unknown long option: the word getopt just passed. */
		ctl_error("unknown option '%s'", argv[optind - 1]);
	} else if (optopt >= 0x80 || strchr(shortopts, optopt) != NULL) {
		/* A known option: only "--flag=value" is refused this way. */
		ctl_error("option '%s' takes no value", argv[optind - 1]);
	} else {
		/* A short one, perhaps inside a cluster such as -xy. */
		ctl_error("unknown option '-%c'", isgraph(optopt) ? optopt : '?');
	}
}

int ctl_parse_options(const struct ctl_command *cmd, int argc, char **argv,
		      const char *shortopts, const struct option *longopts, int operands,
		      ctl_option_fn *take, void *data)
{
	static const struct option no_longopts[] = { { NULL, 0, NULL, 0 } };
	char spec[32];
	int opt;

	/* The leading ':' makes getopt tell a missing value (':') from an
	 * unknown option ('?'). */
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	optind = 0; /* a fresh scan (glibc) */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, spec, longopts != NULL ? longopts : no_longopts,
				  NULL)) != -1) {
		if (opt == ':')
			ctl_error("option '%s' needs a value", argv[optind - 1]);
		else if (opt == '?')
			unknown_option(argv, shortopts);
		else if (take != NULL && take(opt, optarg, data) == 0)
			continue;
		/* (take says itself what is wrong with its option.) */
		ctl_usage(cmd);
		return -1;
	}
	if (argc - optind != operands) {
		ctl_error(argc - optind < operands ? "missing argument" : "too many arguments");
		ctl_usage(cmd);
		return -1;
	}
	return optind;
}

static int take_mailbox(int opt, const char *value, void *data)
{
	const char **mailbox = data;

	if (opt != 'm')
		return -1;
	*mailbox = value;
	return 0;
}

int ctl_parse_mailbox_option(const struct ctl_command *cmd, int argc, char **argv,
			     int operands, const char **mailbox_r)
{
	static const struct option longopts[] = {
		{ "mailbox", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};

	return ctl_parse_options(cmd, argc, argv, "m:", longopts, operands, take_mailbox,
				 mailbox_r);
}
