/* SPDX-License-Identifier: MIT */
/**
 * Shadow runs (docs/shadow.md): the same branch sent to several models, each
 * within its own window, each reply recorded on its own new branch, and a
 * report side by side (tokens, cost, time, the tool calls each proposed with
 * their argument hashes and idempotency keys, and how alike the answers are).
 * With `replay` the last N user turns are answered again, each against what
 * the original model answered, so a migration is judged on the session's own
 * history before it is committed.
 */
#ifndef CMV_SHADOW_H
#define CMV_SHADOW_H

#include "common.h"
#include "buf.h"
#include "dag.h"
#include "llm.h"

typedef struct cmv_shadow_options {
	unsigned int version;
	const char *const *models; /**< model references (keys or descriptors), at least one */
	size_t n_models;
	/** A user message added to each branch before it is sent (prompt mode). NULL: the branch's last turn is answered. */
	const char *prompt;
	/** Replay the last N user turns (0: prompt mode). With replay, prompt must be NULL. */
	size_t replay;
	/** The new branches' prefix: PREFIX/MODEL or PREFIX/turn-K/MODEL. NULL: "shadow/" and the ref (or its id). */
	const char *prefix;
	/**
	 * Endpoints, "PROVIDER=URL" or "MODEL=URL" (the model's id wins over its
	 * provider): the base URL each model is sent to. Unnamed: the profile's,
	 * else the provider's public endpoint. No key: keys come from the
	 * environment at the moment of each call (cmv_llm_complete).
	 */
	const char *const *urls;
	size_t n_urls;
	uint64_t budget;              /**< tokens each request may use; 0: each model's input budget */
	/**
	 * Tool definitions (a JSON array, as cmv_request_options.tools). NULL:
	 * the source branch's (cmv_branch_tools_set), else one bare definition
	 * per tool the conversation called.
	 */
	const char *tools;
	cmv_llm_transport *transport; /**< borrowed; NULL: libcurl */
	unsigned int retries;         /**< as cmv_llm_options */
	long timeout_ms;              /**< as cmv_llm_options */
} cmv_shadow_options;
#define CMV_SHADOW_OPTIONS_VERSION 1
CMV_EXTERN(void) cmv_shadow_options_init(cmv_shadow_options *opts);

/**
 * Run the shadow runs of `ref` (a branch, snapshot or node) and write the
 * report as JSON to `out`: {"ref", "mode", "runs": [{"turn", "base",
 * "prompt", "original"?: {text, tool_calls}, "answers": [{model, signature,
 * branch, head, input_tokens, output_tokens, cache_read_tokens, cost_usd,
 * ms, stop_reason, text, tool_calls: [{name, args_hash, key}],
 * similarity_to_original?}], "similarity", "tool_calls_agree"}], "models":
 * [totals per model]}. The branches are written as the runs go: a failure
 * (an endpoint down) leaves the runs before it recorded.
 * @return 0, CMV_EINVALID (no model, a model whose API the LLM client does
 *         not speak, a bad URL, a ref with no turn to answer), CMV_EEXISTS
 *         (a branch of the run exists: choose another prefix),
 *         CMV_ENOTFOUND, CMV_ETRANSPORT, CMV_EBUDGET
 */
CMV_EXTERN(int) cmv_shadow(cmv_buf *out, cmv_repo *repo, const char *ref, const cmv_shadow_options *opts);

/**
 * How alike two texts are: the cosine of their word counts (words are runs
 * of letters and digits, lowercased), 1 for two empty texts.
 */
CMV_EXTERN(double) cmv_text_similarity(const char *a, const char *b);

#endif
