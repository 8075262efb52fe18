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
#define CMV_TOKEN_STATS_VERSION 1
typedef struct cmv_token_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_TOKEN_STATS_VERSION) */
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

/* ---- calibration from billed usage (pager/calibrate.c, docs/tokenizers.md) ---- */

/** Below this many pairs a calibration is shown, not used for counting. */
#define CMV_CALIBRATION_MIN_PAIRS 20
/** Below this many sessions (pooled over a provider's models) a margin is never smaller than the profile's. */
#define CMV_CALIBRATION_MIN_SESSIONS 3
#define CMV_CALIBRATION_MODEL_MAX 128

/**
 * What a provider billed for what cmv counted, for one model: fitted over
 * consecutive calls of imported sessions as
 * billed = factor x raw + per_block x blocks + per_pair, where raw is the
 * appended content counted by `tokenizer`. Errors are over whole requests
 * (each call's prompt less the session's hidden prefix, against what the fit
 * counts of the conversation before it), (billed - counted) / billed:
 * positive means cmv counted low.
 */
typedef struct cmv_calibration {
	char model[CMV_CALIBRATION_MODEL_MAX]; /**< the profile's id */
	char tokenizer[32];
	size_t pairs, sessions;
	size_t requests; /**< whole requests the errors and the margin come from */
	double factor, per_block, per_pair;
	double err_p50, err_p95, err_p99, err_max;
	/**
	 * What counts keep: no request seen was billed more than count x (1 +
	 * margin) + margin_tokens (margin: the large requests' 95th percentile
	 * under-count, at least a floor).
	 */
	double margin;
	uint64_t margin_tokens;
	int64_t updated; /**< unix seconds */
	char provider[32]; /**< the profile's provider: whose sessions the margin is pooled over */
	/**
	 * The margin counting keeps (cmv_model_calibrated): pooled over every
	 * session of the provider's calibrated models with this tokenizer, each
	 * a unit (its largest under-count of a large request, against the fit
	 * its model counts with): pool_mean + t(0.99, n - 1) x pool_sd x
	 * sqrt(1 + 1/n), a prediction bound for one session not seen, over
	 * pool_sessions sessions. Below CMV_CALIBRATION_MIN_SESSIONS sessions
	 * there is no bound (pool_margin 0): the profile's margin holds, or the
	 * largest under-count seen if larger.
	 */
	size_t pool_sessions;
	double pool_mean, pool_sd, pool_max, pool_margin;
	uint64_t pool_margin_tokens;
} cmv_calibration;

/**
 * Learn from the session at `tip` (a Claude Code session's branch): each pair
 * of consecutive calls of one model whose appended content cmv sees whole
 * becomes a pair of the model's calibration, kept under `key` (the session
 * ref; NULL: the tip's id), replacing what that key held, and the model's
 * fit is made again. Models the registry does not know are passed over.
 * @param n_pairs how many pairs the session gave (may be NULL)
 * @return 0, or the store's and the tokenizers' errors
 */
CMV_EXTERN(int) cmv_calibrate(size_t *n_pairs, cmv_repo *repo, const cmv_id *tip, const char *key,
			      const cmv_models *models);
/**
 * Forget what the session under `key` taught every calibration, and fit
 * again (a session deleted, or held out to measure it).
 * @return 0, or the store's errors
 */
CMV_EXTERN(int) cmv_calibration_forget(cmv_repo *repo, const char *key, const cmv_models *models);
/** A model's calibration. @return 0, CMV_ENOTFOUND, CMV_ECORRUPT */
CMV_EXTERN(int) cmv_calibration_get(cmv_calibration *out, cmv_repo *repo, const char *model);
/** Each calibration the store holds; cb's non-zero return stops and is returned. */
CMV_EXTERN(int) cmv_calibration_foreach(cmv_repo *repo, int (*cb)(const cmv_calibration *c, void *payload),
					void *payload);

/**
 * One API call of an imported session, as its record says it was billed.
 * cmv_billed_calls returns an array of these, so its size is ABI: 0.2
 * added id and reasoning (a program built against 0.1 is rebuilt; README,
 * "Versions").
 */
typedef struct cmv_billed_call {
	char model[CMV_CALIBRATION_MODEL_MAX]; /**< as the session names it */
	uint64_t prompt;  /**< input + cache creation + cache read tokens */
	cmv_id before;    /**< the last node before the call's reply: the conversation it was sent (none: nothing before) */
	unsigned segment; /**< calls of one model between compactions share a hidden prefix */
	char id[128];     /**< the reply's message id (Claude Code); empty for Codex */
	uint64_t reasoning; /**< Codex: the reply's reasoning_output_tokens */
} cmv_billed_call;

/**
 * The calls of a Claude Code session's branch, in order, that record what
 * they were billed (the evidence calibration learns from).
 * @param out an array to free()
 * @return 0, or the store's errors
 */
CMV_EXTERN(int) cmv_billed_calls(cmv_billed_call **out, size_t *n, cmv_repo *repo, const cmv_id *tip,
				 const cmv_models *models);

/**
 * The anchor: what the provider already billed for a prefix of a branch.
 * The last call recorded on the path to `tip` that records its usage, when
 * it was billed for `model` (the same profile id). A request that holds
 * that call's request whole (nothing trimmed or paged out since, for the
 * same host) is predicted at cmv's count plus `correction`: the call's
 * billed content (its prompt less its segment's hidden prefix) less cmv's
 * count of the conversation it was sent. What the transcript never shows
 * (Claude Code's file-change notices) is then inside the prediction from the
 * call after it was sent, and only what was added since is counted.
 */
typedef struct cmv_count_anchor {
	bool found;
	size_t call;        /**< its index among cmv_billed_calls of `tip` */
	cmv_id at;          /**< the last node of the conversation it was sent */
	uint64_t prompt;    /**< its billed prompt (input + cache creation + cache read) */
	int64_t hidden;     /**< the host's prefix: its segment's first call's prompt less cmv's count before that call */
	uint64_t counted;   /**< cmv's count (with `model`) of the conversation it was sent */
	int64_t correction; /**< prompt - hidden - counted: billed content less cmv's count */
	char why[192];      /**< when not found, why */
} cmv_count_anchor;

/**
 * The anchored count of a request: its own count (`model`'s, calibrated)
 * plus an anchor's `correction` (cmv_count_anchor, or a live caller's last
 * bill). A correction down is bounded: it lowers the count by at most 5%
 * (an exact tokenizer) or 20% (an approximate one) of it.
 */
CMV_EXTERN(uint64_t) cmv_count_anchored(const cmv_model *model, uint64_t count, int64_t correction);

/**
 * Find the anchor of the branch at `tip` for `model` (counted as `model`
 * counts: pass the calibrated profile). Not found (out->found false, why
 * said) when no call on the path records usage, the last one was billed for
 * another model, or the request at `tip` no longer holds its request whole
 * (cmv_count_anchor_holds).
 * @return 0, or the store's, the renderer's and the tokenizer's errors
 */
CMV_EXTERN(int) cmv_count_anchor_find(cmv_count_anchor *out, cmv_repo *repo, const cmv_id *tip,
				      const cmv_model *model, cmv_tok *tok, const cmv_models *models);
/**
 * Whether the request at `tip`, rendered for `model`'s API, holds the one at
 * `at` whole (what an anchor needs): every field but the conversation the
 * same, the conversation starting with the one at `at`, its last message
 * equal or grown by content blocks. A trim, a compaction or a rewrite of an
 * earlier message (a microcompaction's stubs) breaks it.
 * @return 0, or the renderer's errors
 */
CMV_EXTERN(int) cmv_count_anchor_holds(bool *out, cmv_repo *repo, const cmv_id *at, const cmv_id *tip,
				       const cmv_model *model);

/**
 * `model` as the store's calibration says it counts: its own calibration
 * (of at least CMV_CALIBRATION_MIN_PAIRS pairs), else its family's (same
 * name up to the version, same tokenizer), sets token_factor, per_block,
 * per_message, margin and margin_tokens (the margin never below the
 * profile's until CMV_CALIBRATION_MIN_SESSIONS sessions back it); with none,
 * *out is *model. `source` (may be NULL)
 * says in a line where the counts and the margin come from. `repo` may be
 * NULL (no calibration). *out borrows model's strings.
 * @return 0, or the store's error
 */
CMV_EXTERN(int) cmv_model_calibrated(cmv_model *out, cmv_buf *source, const cmv_model *model, cmv_repo *repo);

/**
 * The most a request may count for the provider to bill at most `budget`
 * tokens: (budget - margin_tokens) / (1 + margin), the model's margins; budget
 * 0 stands for the model's input budget (cmv_model_input_budget) less
 * margin_tokens.
 */
CMV_EXTERN(uint64_t) cmv_count_ceiling(const cmv_model *model, uint64_t budget);

#endif
