/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a file of unknown format, as `cmv import FILE` gets it:
 * format detection, then the format's importer (every session and request
 * format, cmv JSONL), then the properties of fuzz_import_properties().
 * Odd-sized inputs are imported leniently, so both paths are reached.
 */
#include <string.h>
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cmv_repo *repo = fuzz_store();
	const char *path = fuzz_file("input", data, size);
	cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;

	opts.flags = size % 2 ? CMV_IMPORT_LENIENT : 0;
	if (cmv_import_file(&res, repo, path, NULL, &opts) < 0) {
		if (!cmv_error_last() || !cmv_error_last()->message[0])
			fuzz_fail("an import failed with no message");
		return 0;
	}
	fuzz_import_properties(repo, &res, path, NULL, &opts, data, size);
	return 0;
}
