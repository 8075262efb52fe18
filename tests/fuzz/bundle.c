/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a bundle (`cmv import BUNDLE`): the tar reader, the manifest,
 * refs, blobs and nodes.jsonl. Either the import is refused and the store
 * has no ref, or it is accepted and fsck finds nothing wrong.
 */
#include "fuzz.h"

static int count_ref(const cmv_ref *ref, void *payload)
{
	(void)ref;
	++*(size_t *)payload;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cmv_repo *repo = fuzz_store();
	const char *path = fuzz_file("input.tar", data, size);
	cmv_bundle_stats st;
	size_t refs = 0, n_problems = 0;

	if (cmv_bundle_import(&st, repo, path, NULL) < 0) {
		if (!cmv_error_last() || !cmv_error_last()->message[0])
			fuzz_fail("a bundle import failed with no message");
		cmv_error_clear();
		if (cmv_ref_foreach(repo, count_ref, &refs) < 0 || refs)
			fuzz_fail("a refused bundle left %zu refs", refs);
		return 0;
	}
	if (cmv_fsck(&n_problems, repo, NULL, NULL) < 0 || n_problems)
		fuzz_fail("fsck finds %zu problems after a bundle import", n_problems);
	return 0;
}
