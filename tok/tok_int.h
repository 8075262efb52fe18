/* SPDX-License-Identifier: MIT */
/*
 * The tokenizer layer's header for the layers above it (the pager and
 * compaction), besides <cmv/tok.h> and <cmv/model.h>: the count memo of a
 * cmv_tok. Once on, cmv_tok_count remembers the count of each text of 64
 * bytes or more (by xxh3-64 and length, up to about a hundred thousand
 * texts, then it starts over): the pager and compaction count the same
 * messages once per candidate and again after each append. Counts are the
 * same with it or without it; only the time differs. The tokenizer benchmark
 * leaves it off.
 */
#ifndef CMV_TOK_INT_H
#define CMV_TOK_INT_H

#include <stdbool.h>
#include <cmv/tok.h>

void cmv__tok_memo(cmv_tok *tok, bool on);
/* A count the memo holds for text (raw, before a model's factor): 1 found, 0 not. */
int cmv__tok_memo_get(cmv_tok *tok, const void *text, size_t len, size_t *raw);
/* Tell the memo a count known from elsewhere (the store's token cache). */
void cmv__tok_memo_put(cmv_tok *tok, const void *text, size_t len, size_t raw);

#endif
