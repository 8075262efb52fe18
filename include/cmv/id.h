/* SPDX-License-Identifier: MIT */
/*
 * Content ids: xxh3-128 of an object's canonical bytes.
 *
 * An id is printed as 32 lowercase hex digits in xxHash's canonical
 * (big-endian) byte order, so the id of a blob is exactly what
 * `xxhsum -H2 FILE` prints for the same bytes. Any unique prefix of at least
 * CMV_ID_MINPREFIX digits names an object; an ambiguous prefix is an error
 * that lists the candidates. xxh3 is not cryptographic: ids catch corruption,
 * not tampering.
 */
#ifndef CMV_ID_H
#define CMV_ID_H

#include "common.h"

#define CMV_ID_RAWSZ 16
#define CMV_ID_HEXSZ 32
#define CMV_ID_MINPREFIX 7

typedef enum {
	CMV_ID_NONE = 0,     /**< no id (a root's parent, an empty branch) */
	CMV_ID_XXH3_128 = 1, /**< the only algorithm so far */
} cmv_id_type;

/** An id: an algorithm tag and the raw digest. A value type; copy freely. */
typedef struct cmv_id {
	unsigned char type;               /**< a cmv_id_type */
	unsigned char raw[CMV_ID_RAWSZ];  /**< the digest, canonical byte order */
} cmv_id;

/** Hash `len` bytes into `out`. Never fails. */
CMV_EXTERN(void) cmv_id_hash(cmv_id *out, const void *data, size_t len);

/**
 * Format an id as hex into `out` (at least n+1 bytes), writing the first n
 * digits (n is clamped to 32). A CMV_ID_NONE id formats as zeros.
 * @return out
 */
CMV_EXTERN(char *) cmv_id_tostr(char *out, size_t n, const cmv_id *id);

/** Parse exactly 32 hex digits (either case). @return 0 or CMV_EINVALID */
CMV_EXTERN(int) cmv_id_fromstr(cmv_id *out, const char *hex);

/** Compare two ids; ids of type NONE sort first. */
CMV_EXTERN(int) cmv_id_cmp(const cmv_id *a, const cmv_id *b);
CMV_EXTERN(int) cmv_id_equal(const cmv_id *a, const cmv_id *b);
CMV_EXTERN(int) cmv_id_is_none(const cmv_id *id);
/** Set an id to CMV_ID_NONE. */
CMV_EXTERN(void) cmv_id_clear(cmv_id *id);

/**
 * 1 when `str` could be an id prefix: CMV_ID_MINPREFIX..CMV_ID_HEXSZ hex
 * digits and nothing else; 0 otherwise.
 */
CMV_EXTERN(int) cmv_id_is_prefix(const char *str);

#endif
