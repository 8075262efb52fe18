/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a file imported as a format named by the caller (`cmv import
 * --format F`), whatever it holds. The first byte picks the format (its low
 * bits) and lenient mode (its high bit); the rest is the file.
 */
#include <string.h>
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *const *names = cmv_format_names();
	size_t n_names = 0;
	cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;

	if (size < 1)
		return 0;
	while (names[n_names])
		n_names++;
	const char *format = names[(data[0] & 0x7f) % n_names];
	opts.flags = data[0] & 0x80 ? CMV_IMPORT_LENIENT : 0;
	cmv_repo *repo = fuzz_store();
	const char *path = fuzz_file("input", data + 1, size - 1);
	if (cmv_import_file(&res, repo, path, format, &opts) < 0) {
		if (!cmv_error_last() || !cmv_error_last()->message[0])
			fuzz_fail("an import as %s failed with no message", format);
		return 0;
	}
	fuzz_import_properties(repo, &res, path, format, &opts, data + 1, size - 1);
	return 0;
}
