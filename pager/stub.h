/* SPDX-License-Identifier: MIT */
/*
 * The stub that stands for a paged-out or trimmed body, shared by the pager
 * and trim so that a model sees one form: "[N chars, L lines; recall ID]"
 * (no line count for one line).
 */
#ifndef CMV_PAGER_STUB_H
#define CMV_PAGER_STUB_H

#include "../cmv/common.h"

/* `id`: the hex digits to print (already as short as they should be). */
int cmv__stub_body(cmv_buf *out, size_t chars, size_t lines, const char *id);

#endif
