/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share. Each target is one file defining
 * LLVMFuzzerTestOneInput: built with clang's libFuzzer (CMV_FUZZ=ON) it is
 * a fuzzer; built otherwise it links standalone.c, which runs it over the
 * files and folders named on its command line (the regression corpus in
 * ctest). A target checks a property where one exists and aborts when it
 * does not hold, so libFuzzer keeps the input as a crash.
 */
#ifndef CMV_FUZZ_H
#define CMV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <cmv/cmv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A folder of this process's own, made once and removed at exit. */
const char *fuzz_dir(void);
/* An empty store in fuzz_dir(), the last one removed first; NULL (and abort) when it cannot be made. */
cmv_repo *fuzz_store(void);
/* The input written to fuzz_dir()/name; returns the path (static, valid until the next call). */
const char *fuzz_file(const char *name, const void *data, size_t size);
/* Abort with a message: a property did not hold. */
void fuzz_fail(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2), noreturn))
#endif
	;
/* Check what an import of `data` (at `path`, as `format` or detected) must give; abort when it does not. */
void fuzz_import_properties(cmv_repo *repo, const cmv_import_result *res, const char *path, const char *format,
			    const cmv_import_options *opts, const uint8_t *data, size_t size);
/* A cmv_write_fn appending to a cmv_buf. */
int fuzz_buf_writer(const void *data, size_t len, void *payload);

#endif
