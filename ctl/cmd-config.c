/*
 * cmd-config.c — `ternctl config check`: load tern.conf as every daemon
 * does and print the effective configuration, every key with its value
 * (defaults included), in tern.conf syntax.
 *
 * main.c loads the file before any command runs, so an error in it ends
 * there already with "file:line: message" and EX_CONFIG; reaching this
 * command means the file is valid. --json is not offered: the output is
 * meant to be read, or diffed against a saved copy.
 */
#include "ctl.h"

static int cmd_check(struct ctl *ctl, int argc, char **argv)
{
	if (ctl_parse_options(&ctl_config_commands[0], argc, argv, "", NULL, 0, NULL, NULL) < 0)
		return EX_USAGE;
	cfg_print(ctl->cfg, stdout);
	return EX_OK;
}

const struct ctl_command ctl_config_commands[] = {
	{ "config check", "", "check tern.conf and print the effective configuration",
	  "Loads the configuration (-c FILE, else $TERN_CONFIG, else the installed\n"
	  "default) exactly as the daemons do and prints every setting, defaults\n"
	  "included, in tern.conf syntax. An unknown section or key or a bad value\n"
	  "is printed as FILE:LINE: message, with exit code 78 (EX_CONFIG).\n",
	  cmd_check },
	{ NULL, NULL, NULL, NULL, NULL },
};
