/* SPDX-License-Identifier: MIT */
/*
 * A JSON scanner that works on byte ranges: where each value starts and
 * ends in the source text, so that an importer can cut content out of a
 * record and put it back byte for byte. Validation is structural (strings,
 * numbers, literals, nesting up to JSCAN_MAX_DEPTH); cJSON does the semantic
 * parse.
 */
#ifndef CMV_FORMATS_JSCAN_H
#define CMV_FORMATS_JSCAN_H

#include <cjson/cJSON.h>
#include "util.h"
#include "formats_int.h"

#define JSCAN_MAX_DEPTH 512

/* jspan, cmv_formats__jscan_ws and cmv_formats__jscan_member are in formats_int.h: trim uses them too. */

/* The end of the JSON value starting at p (no leading space), or NULL if malformed. */
const char *cmv_formats__jscan_value(const char *p, const char *end);
/* The elements of an array span, one at a time: *cursor starts at NULL. @return 1, 0 at the end, -1 */
int cmv_formats__jscan_next_element(jspan *elem, jspan array, const char **cursor);

/* Decode a string literal (quotes included) to UTF-8. Lone surrogates become U+FFFD. */
int cmv_formats__jscan_unescape(cmv_buf *out, jspan literal);
/* Encode bytes as a string literal, quotes included, escaping exactly as JavaScript's JSON.stringify. */
int cmv_formats__jscan_escape(cmv_buf *out, const void *data, size_t len);

#endif
