/* SPDX-License-Identifier: MIT */
/* The fuzz targets' shared helpers (fuzz.h). */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

static char dir[256];
static cmv_repo *store;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	cmv_repo_free(store);
	store = NULL;
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/cmv-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir))
			fuzz_fail("cannot make a temporary folder");
		atexit(cleanup);
		/* the store's own clock and environment stay out of the inputs' way */
		setenv("CMV_NOW", "1767225600", 1);
		unsetenv("CMV_DIR");
	}
	return dir;
}

cmv_repo *fuzz_store(void)
{
	char path[512];

	/* a private in-memory store: a fresh one costs no file */
	(void)path;
	cmv_repo_free(store);
	store = NULL;
	if (cmv_repo_open(&store, ":memory:", CMV_REPO_OPEN_CREATE) < 0)
		fuzz_fail("cannot make a store: %s", cmv_error_last() ? cmv_error_last()->message : "?");
	return store;
}

const char *fuzz_file(const char *name, const void *data, size_t size)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	if (!(fp = fopen(path, "wb")) || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		fuzz_fail("cannot write %s", path);
	return path;
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: property failed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

int fuzz_buf_writer(const void *data, size_t len, void *payload)
{
	return cmv_buf_put(payload, data, len);
}

/*
 * What an import must give: the session written back as it came (a tail cut
 * off mid-write is left out, so what comes back is a prefix), nothing added
 * by importing it again, every rendering passing its provider's checker,
 * and a store fsck finds nothing wrong with.
 */
void fuzz_import_properties(cmv_repo *repo, const cmv_import_result *res, const char *path, const char *format,
			    const cmv_import_options *opts, const uint8_t *data, size_t size)
{
	cmv_buf back = CMV_BUF_INIT(CMV_BUF_CONTENT), problems = CMV_BUF_INIT(1 << 20);
	cmv_import_result again;
	size_t n_problems = 0;

	if (res->session[0]) {
		if (cmv_export_session(repo, res->session, fuzz_buf_writer, &back) < 0)
			fuzz_fail("imported session %s does not export: %s", res->session, cmv_error_last()->message);
		if (res->partial_tail ? back.size > size || memcmp(back.ptr, data, back.size)
				      : back.size != size || memcmp(back.ptr, data, size))
			fuzz_fail("session %s exports %zu bytes, not the %zu imported", res->session, back.size, size);
	}
	if (cmv_import_file(&again, repo, path, format, opts) < 0)
		fuzz_fail("a second import fails: %s", cmv_error_last()->message);
	if (again.outcome != CMV_IMPORT_UNCHANGED || !cmv_id_equal(&again.head, &res->head))
		fuzz_fail("a second import of the same bytes changed the branch (outcome %d)", (int)again.outcome);
	for (int t = CMV_RENDER_ANTHROPIC; t <= CMV_RENDER_GEMINI; t++) {
		cmv_buf_clear(&back);
		if (cmv_render(&back, NULL, repo, &res->head, (cmv_render_target)t, NULL) < 0) {
			if (!cmv_error_last() || !cmv_error_last()->message[0])
				fuzz_fail("render for %s failed with no message", cmv_render_target_name((cmv_render_target)t));
			continue;
		}
		cmv_buf_clear(&problems);
		if (cmv_check_request(&problems, (cmv_render_target)t, back.ptr, back.size) != 0)
			fuzz_fail("the %s rendering fails its checker: %s", cmv_render_target_name((cmv_render_target)t),
				  problems.ptr ? problems.ptr : "(not JSON)");
	}
	if (cmv_fsck(&n_problems, repo, NULL, NULL) < 0 || n_problems)
		fuzz_fail("fsck finds %zu problems after an import", n_problems);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&problems);
}
