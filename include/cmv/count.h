/* SPDX-License-Identifier: MIT */
/*
 * Counting what a model is sent, in its own tokens: a stored conversation
 * (through the store's token cache), a rendered request body, or a branch
 * rendered for the model. The pager's currency (pager/count.c).
 */
#ifndef CMV_COUNT_H
#define CMV_COUNT_H

#include <stdbool.h>
#include "common.h"
#include "dag.h"
#include "formats.h"
#include "model.h"
#include "tok.h"

/** The request format the model's API takes, or 0 for a model with no API to render for. */
CMV_EXTERN(cmv_render_target) cmv_model_render_target(const cmv_model *model);

/* ---- counting a conversation ------------------------------------------ */

/**
 * Raw tokenizer count of one blob, through the store's token cache keyed by
 * (blob id, tokenizer name): a blob is tokenized once per tokenizer.
 */
CMV_EXTERN(int) cmv_count_blob(uint64_t *out, cmv_repo *repo, cmv_tok *tok, const cmv_id *blob);

/** Tokens of a conversation in one model, by kind of content. */
typedef struct cmv_token_stats {
	uint64_t text;         /**< text blocks and summaries */
	uint64_t tool_calls;   /**< tool name + input */
	uint64_t tool_results;
	uint64_t thinking;     /**< thinking and redacted thinking */
	uint64_t images;       /**< the model's per-image cost */
	uint64_t other;        /**< other provider block types (document, server tool use, ...) */
	uint64_t overhead;     /**< per-request, per-message and per-block framing */
	uint64_t total;        /**< all of the above: what a request would carry */
	/**
	 * Stored but never sent, not in total: event nodes, and blocks that a
	 * source format keeps for a faithful export (types with the format's
	 * prefix, such as Claude Code's UI-only `cc_tool_use_result`).
	 */
	uint64_t unsent;
	uint64_t messages, blocks;
	bool exact;            /**< every figure is the model's own count */
} cmv_token_stats;

/**
 * Count the conversation from its root to `tip` in `model`'s tokens (`tok`
 * is the model's tokenizer). Uses and fills the token cache.
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID (tok is not the model's), CMV_EIO
 */
CMV_EXTERN(int) cmv_count_conversation(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip,
				       const cmv_model *model, cmv_tok *tok);

/**
 * Count a rendered request body in `model`'s tokens (`tok` its tokenizer):
 * what the model is sent, by kind of content. `json` is a body for the
 * model's API, as cmv_render writes it.
 * @return 0, CMV_EINVALID (not such a body), CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_count_request(cmv_token_stats *out, const cmv_model *model, cmv_tok *tok, const char *json,
				  size_t len);

/**
 * What the model is sent for the conversation ending at `tip`: the branch
 * rendered for the model's API (no decorations) and counted with
 * cmv_count_request.
 * @return 0, CMV_EINVALID (a model with no API to render for), or
 *         cmv_render's and cmv_count_request's errors
 */
CMV_EXTERN(int) cmv_count_sent(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model,
			       cmv_tok *tok);

#endif
