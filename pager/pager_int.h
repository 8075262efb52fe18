/* SPDX-License-Identifier: MIT */
/*
 * The pager's header for the layers above it and for its tests; the only
 * way into pager/ besides the public <cmv/pager.h> and <cmv/count.h>.
 */
#ifndef CMV_PAGER_INT_H
#define CMV_PAGER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <cmv/pager.h>
#include <cmv/count.h>
#include "base/base.h"

/*
 * The stub that stands for a paged-out or trimmed body, shared by the pager
 * and trim so that a model sees one form: "[N chars, L lines; recall ID]"
 * (no line count for one line). `id`: the hex digits to print (already as
 * short as they should be).
 */
int cmv__stub_body(cmv_buf *out, size_t chars, size_t lines, const char *id);

/* ---- what the pager's tests reach past the public header for ---------------- */

/*
 * Whether a materialize after an append may grow the kept request
 * (splice_append) instead of doing the whole work; true. The tests turn it
 * off to check that both give the same bytes and the same report.
 */
extern bool cmv__pager_splice;
/*
 * After an append, the kept request up to its split is written again only
 * when what follows the split has grown past this many bytes (64 KiB): an
 * append writes about what changed, and the whole now and then. The tests
 * set it low to write it every time.
 */
extern size_t cmv__pager_fold_bytes;
/* How many materializations grew a kept request, since the process began. */
extern size_t cmv__pager_spliced;
/* Of those, how many grew it at a step seam (inside a paged turn): for the tests. */
extern size_t cmv__pager_spliced_steps;
/* How many materializations did the whole work (the branch loaded and paged): for the tests and the proxy's log. */
extern size_t cmv__pager_whole;

/*
 * The note a branch keeps its query index for a model and target in
 * (printf: the model's id, the render target), and how many recall queries
 * grew one from an ancestor's (qindex_grow) since the process began.
 */
#define CMV__PAGER_QUERY_NOTE "pager:query:%s:%d"
extern size_t cmv__pager_qgrown;
/* How many recall queries were answered from a kept index (no load), likewise. */
extern size_t cmv__pager_qread;
/*
 * The query index a branch keeps for a model, as one text whatever its
 * split (the tests compare a grown one with a fresh one): CMV_ENOTFOUND
 * when it keeps none, CMV_EINVALID when its notes do not read as one.
 */
int cmv__pager_query_index(cmv_buf *out, cmv_repo *repo, const char *branch, const cmv_model *model);
/*
 * A recall query's search words (lowercase, stopwords out, each once,
 * separated by spaces): what the index is asked for.
 */
int cmv_pager__query_words(cmv_buf *out, const char *query);

/*
 * cmv_count_sent as the running host sent it: Claude Code's microcompaction
 * stubs in place of the results it cleared (a resumed Claude Code sends
 * them whole, which is what cmv_count_sent counts). What the calibration
 * compares with what was billed.
 */
int cmv_pager__count_sent_live(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model,
			       cmv_tok *tok);

#endif
