/* SPDX-License-Identifier: MIT */
/*
 * The base layer (base/): what every other layer of the library, and the
 * CLI, builds on: errors, allocation, bounded buffers, ids, UTF-8, base64,
 * whole files and the clock. It knows nothing of the DAG or of formats.
 */
#ifndef CMV_BASE_H
#define CMV_BASE_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmv/common.h>
#include <cmv/errors.h>
#include <cmv/buf.h>
#include <cmv/id.h>
#include "banned.h"

/*
 * Set the thread's last error and return `code`, so a failure can be
 * reported and propagated in one statement: `return cmv_error__set(...)`.
 */
int cmv_error__set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* The out-of-memory error; never allocates. */
int cmv_error__oom(void);
/* Prefix the current message with more context ("file:12: " + message). */
void cmv_error__prefix(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;

/*
 * Programmer errors: assert in debug builds; in release builds report
 * "invalid argument" and return, so the library never crashes its host.
 */
#define CMV_ASSERT_ARG(x)                                                                   \
	do {                                                                                \
		assert(x);                                                                  \
		if (!(x))                                                                   \
			return cmv_error__set(CMV_EINVALID, "invalid argument: '%s'", #x);  \
	} while (0)

/* "Cannot happen" checks that self-heal in release builds. */
#ifndef NDEBUG
#define CMV_ALWAYS(x) (assert(x), 1)
#define CMV_NEVER(x) (assert(!(x)), 0)
#else
#define CMV_ALWAYS(x) (x)
#define CMV_NEVER(x) (x)
#endif

#define CMV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation wrappers that set the OOM error on failure. */
void *cmv__malloc(size_t n);
void *cmv__calloc(size_t n, size_t size);
void *cmv__realloc(void *p, size_t n);
char *cmv__strdup(const char *s);
/*
 * Tests only: count allocations from now on, and fail the fail_at-th (0:
 * none) once; off again with on = false. cmv__alloc_fails() is the check
 * the wrappers make, for a test's own hooks (cJSON, SQLite) to make too.
 */
void cmv__alloc_inject(bool on, size_t fail_at);
size_t cmv__alloc_injected_calls(void);
bool cmv__alloc_fails(void);

/* 1 when len bytes at s are well-formed UTF-8 (no surrogates, no overlongs). */
bool cmv__utf8_valid(const void *s, size_t len, size_t *bad_offset);

/* Characters (code points) in len bytes of UTF-8: what a "chars" threshold or stub counts. */
size_t cmv__utf8_chars(const char *s, size_t len);
/* Lines in len bytes: 1 for text without a newline, a final newline ending the last one. */
size_t cmv__count_lines(const char *s, size_t len);

/* LEB128 varints, as the node encoding and the session templates use them. */
int cmv__varint_put(cmv_buf *out, uint64_t v);
/* Read one varint at *p (advancing it), not past end. */
bool cmv__varint_get(const unsigned char **p, const unsigned char *end, uint64_t *out);

/*
 * Make room for element n of a growing array of `size`-byte elements at *p,
 * doubling *cap: the one array grower. @return 0, CMV_ENOMEM
 */
int cmv__array_grow(void **p, size_t *cap, size_t n, size_t size);

/*
 * Standard base64 (RFC 4648, padded). decode_into writes the bytes of one
 * strictly padded text to out (room for len / 4 * 3) and returns their
 * number, or -1; the cmv_buf forms set the error and refuse non-canonical
 * text (base/base64.c).
 */
long cmv__base64_decode_into(unsigned char *out, const char *in, size_t len);
int cmv_base64_decode(cmv_buf *out, const char *in, size_t len);
int cmv_base64_encode(cmv_buf *out, const void *in, size_t len);

/*
 * Append a whole file to out (whose max bounds it: CMV_ETOOBIG, with the
 * path in the message). CMV_ENOTFOUND when it does not exist, CMV_EIO when
 * it cannot be opened or read.
 */
int cmv__read_file(cmv_buf *out, const char *path);

/*
 * Replacing a file atomically (base/file.c): open writes PATH.cmv-tmp.XXXXXX
 * (a new file of its own, never through a link) with `mode`; commit flushes, fsyncs and renames it over
 * PATH; abort removes it. Either leaves *f empty. @return 0, CMV_EIO, CMV_ENOMEM
 */
typedef struct {
	FILE *fp; /* write here between open and commit */
	char *tmp, *path;
} cmv__atomic_file;
int cmv__atomic_open(cmv__atomic_file *f, const char *path, unsigned int mode);
int cmv__atomic_commit(cmv__atomic_file *f);
void cmv__atomic_abort(cmv__atomic_file *f);
/* All of `data` as the new content of path, through the three calls above. */
int cmv__file_write_atomic(const char *path, const void *data, size_t len, unsigned int mode);

/* FNV-1a of a NUL-terminated string: the slot hash of the open-addressed string tables. */
uint64_t cmv__str_hash(const char *s);

/*
 * A map from strings (uuids, tool call ids) to a number and an optional
 * string, both copied: open addressing, grown by doubling. Zero it to start.
 */
typedef struct {
	char **keys, **strs;
	size_t *nums;
	size_t cap, n;
} cmv__strmap;

/* Set key's entry (str may be NULL). @return 0, CMV_ENOMEM */
int cmv__strmap_put(cmv__strmap *m, const char *key, size_t num, const char *str);
/* 1 and the entry's fields (each out may be NULL) when present; 0 when not (or key is NULL). */
int cmv__strmap_get(const cmv__strmap *m, const char *key, size_t *num, const char **str);
void cmv__strmap_dispose(cmv__strmap *m);

/* Current time in unix seconds ($CMV_NOW overrides it, for reproducible tests). */
int64_t cmv__now(void);

#endif
