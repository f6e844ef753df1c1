/*
 * fuzz-cfg.c — libFuzzer target for the tern.conf parser. Any input must
 * either load or fail with a "fuzz.conf:<line>: ..." error, without leaks
 * or memory errors; and a configuration that loads must print in a form
 * that loads again and prints the same (the cfg_print round trip).
 */
#include "common/common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_to_string(const struct cfg *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		abort();
	cfg_print(cfg, f);
	fclose(f);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xcalloc(1, size + 1);
	struct cfg *cfg = NULL, *again = NULL;
	char *error = NULL;

	memcpy(text, data, size);
	if (cfg_load_string("fuzz.conf", text, &cfg, &error) < 0) {
		if (error == NULL || cfg != NULL || strncmp(error, "fuzz.conf:", 10) != 0)
			abort();
		free(error);
		free(text);
		return 0;
	}

	char *printed = print_to_string(cfg);

	if (cfg_load_string("fuzz.conf", printed, &again, &error) < 0) {
		fprintf(stderr, "printed config does not load: %s\n%s", error, printed);
		abort();
	}

	char *reprinted = print_to_string(again);

	if (strcmp(printed, reprinted) != 0) {
		fprintf(stderr, "round trip differs:\n%s\n---\n%s", printed, reprinted);
		abort();
	}
	free(reprinted);
	free(printed);
	cfg_free(&again);
	cfg_free(&cfg);
	free(text);
	return 0;
}
