/* SPDX-License-Identifier: MIT */
/*
 * What the pager's tests reach past the public header for.
 */
#ifndef CMV_PAGER_INTERNAL_H
#define CMV_PAGER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether a materialize after an append may grow the kept request
 * (splice_append) instead of doing the whole work; true. The tests turn it
 * off to check that both give the same bytes and the same report.
 */
extern bool cmv__pager_splice;
/* How many materializations grew a kept request, since the process began. */
extern size_t cmv__pager_spliced;

#endif
