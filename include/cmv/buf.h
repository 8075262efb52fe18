/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer with a mandatory upper bound.
 *
 * Invariants:
 *  1. ptr is never NULL and ptr[size] == '\0', so a buffer always reads as a
 *     C string (it may also hold NUL bytes inside: use size, not strlen).
 *  2. size < asize whenever asize > 0; asize == 0 means ptr points at a
 *     shared static empty string that must not be written or freed.
 *  3. size never exceeds max. Growing past max fails with CMV_ETOOBIG and
 *     leaves the buffer as it was. max == 0 is not allowed: every buffer
 *     says how large it may become (a 13 MB tool output is real; a 2 GB one
 *     is an attack or a bug).
 *
 * A buffer is initialised with CMV_BUF_INIT(max) or cmv_buf_init(), reused
 * with cmv_buf_clear(), and released with cmv_buf_dispose().
 */
#ifndef CMV_BUF_H
#define CMV_BUF_H

#include <stdarg.h>
#include "common.h"

typedef struct cmv_buf {
	char *ptr;    /**< the bytes, NUL-terminated */
	size_t size;  /**< bytes in use, not counting the terminator */
	size_t asize; /**< bytes allocated; 0 when ptr is the static empty string */
	size_t max;   /**< the largest size this buffer may reach */
} cmv_buf;

/** Defined by the library; the empty string every fresh buffer points at. */
extern CMV_EXTERN(char) cmv_buf__empty[];

#define CMV_BUF_INIT(max_bytes) { cmv_buf__empty, 0, 0, (max_bytes) }

/** A sensible cap for small strings such as names and ids (1 MiB). */
#define CMV_BUF_SMALL ((size_t)1 << 20)
/** A cap for content (256 MiB): the largest blob cmv handles. */
#define CMV_BUF_CONTENT ((size_t)256 << 20)

CMV_EXTERN(void) cmv_buf_init(cmv_buf *buf, size_t max_bytes);
/** Free the memory and return to the initial state; NULL is a no-op. */
CMV_EXTERN(void) cmv_buf_dispose(cmv_buf *buf);
/** Set size to 0, keeping the memory. */
CMV_EXTERN(void) cmv_buf_clear(cmv_buf *buf);
/** Ensure room for `need` bytes plus the terminator. @return 0, CMV_ETOOBIG, CMV_ENOMEM */
CMV_EXTERN(int) cmv_buf_grow(cmv_buf *buf, size_t need);
/** Append bytes (which may lie in the buffer itself). @return 0, CMV_ETOOBIG, CMV_ENOMEM */
CMV_EXTERN(int) cmv_buf_put(cmv_buf *buf, const void *data, size_t len);
CMV_EXTERN(int) cmv_buf_puts(cmv_buf *buf, const char *str);
CMV_EXTERN(int) cmv_buf_putc(cmv_buf *buf, char c);
/** Append formatted text. @return 0, CMV_ETOOBIG, CMV_ENOMEM, CMV_ERROR (bad format) */
CMV_EXTERN(int) cmv_buf_printf(cmv_buf *buf, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
CMV_EXTERN(int) cmv_buf_vprintf(cmv_buf *buf, const char *fmt, va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 0)))
#endif
	;
/** Replace the contents with `len` bytes. */
CMV_EXTERN(int) cmv_buf_set(cmv_buf *buf, const void *data, size_t len);
/**
 * Take the memory out of the buffer; the caller frees it with free().
 * The buffer is left initialised and empty. Returns NULL on allocation failure.
 */
CMV_EXTERN(char *) cmv_buf_detach(cmv_buf *buf);

#endif
