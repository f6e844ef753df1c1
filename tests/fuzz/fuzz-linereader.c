/*
 * Fuzz target for the line reader and the PROXY header parser: the input
 * is split into feeds at byte values chosen by the data itself, and every
 * line returned must respect the limit and contain no LF.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common-private.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct linereader lr;
	struct proxy_result pr;
	size_t line_max = size > 0 ? 16 + data[0] % 200 : 16;
	size_t pos = size > 0 ? 1 : 0;

	(void)proxy_parse(data, size, &pr);
	lr_init(&lr, line_max);
	while (pos < size) {
		size_t n = 1 + data[pos] % 37;

		if (n > size - pos)
			n = size - pos;
		while (!lr_has_room(&lr)) {
			const char *raw;

			if (lr_read_bytes(&lr, 7, &raw) == 0)
				abort();
		}
		if (lr_feed(&lr, data + pos, n) != 0)
			abort();
		pos += n;
		for (;;) {
			const char *line;
			size_t len;
			int ret = lr_read_line(&lr, &line, &len);

			if (ret == 0)
				break;
			if (ret == 1 && (len > line_max || memchr(line, '\n', len) != NULL))
				abort();
		}
		lr_compact(&lr);
	}
	lr_free(&lr);
	return 0;
}
