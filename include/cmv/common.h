/* SPDX-License-Identifier: MIT */
/* Export macro and the few types every public header shares. */
#ifndef CMV_COMMON_H
#define CMV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(CMV_BUILDING_LIBRARY)
#define CMV_EXTERN(type) __attribute__((visibility("default"))) type
#else
#define CMV_EXTERN(type) type
#endif

#define CMV_VERSION_MAJOR 0
#define CMV_VERSION_MINOR 2
#define CMV_VERSION_PATCH 0
#define CMV_VERSION "0.2.0"

/** The library's version string, "MAJOR.MINOR.PATCH". */
CMV_EXTERN(const char *) cmv_version(void);

/**
 * 1 when `len` bytes at `s` are well-formed UTF-8 (no overlongs, no
 * surrogates), else 0 with the offset of the first bad byte in *bad_offset
 * (which may be NULL).
 */
CMV_EXTERN(int) cmv_utf8_valid(const void *s, size_t len, size_t *bad_offset);

#endif
