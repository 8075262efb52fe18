/* SPDX-License-Identifier: MIT */
/**
 * The agent host's loop: what a runtime that drives a model calls, turn
 * after turn (docs/host.md).
 *
 *   model   = cmv_model_handle_open(repo, "claude-sonnet-4-5" or a descriptor)
 *   cmv_append_json(branch, the user's message, "openai-chat")
 *   cmv_request(branch, model, tools)        -> the body to send
 *   ... the host sends it ...
 *   cmv_reply_append(branch, the response, model)  -> tool calls, usage booked
 *   ... the host runs the tools, appends their results, and loops ...
 *   cmv_switch(branch, other model)          -> checked, recorded, in one step
 *
 * A model handle owns what counting for a model needs (profile, tokenizer,
 * the store's calibration), so no call takes a (model, tokenizer) pair. Every
 * call returns 0 or a negative CMV_E* code with the message in
 * cmv_error_last(). Options are initialized by their *_options_init()
 * function; reports carry a version the caller sets (0: the current one).
 *
 * For bindings, cmv_host wraps all of it behind one JSON entry (JSON in,
 * JSON out): see the end of this file.
 */
#ifndef CMV_HOST_H
#define CMV_HOST_H

#include <stdbool.h>
#include "common.h"
#include "buf.h"
#include "dag.h"
#include "formats.h"
#include "model.h"
#include "pager.h"
#include "tok.h"

/* ---- model handles ------------------------------------------------------- */

typedef struct cmv_model_handle cmv_model_handle;

/**
 * Resolve a model reference: a registry key or alias ("gpt-4o",
 * "claude-sonnet-4-5-20250929", an unknown id of a known family), or an
 * inline descriptor {"provider", "model", "base_url"?, "options"?: {
 * "max_tokens", "context_window", "max_output", "tokenizer", "api" }}
 * (never a secret: a key field or a credential-like value is refused). An
 * unknown model in a descriptor needs options.tokenizer and
 * options.context_window. The handle owns its profile (with the store's
 * calibration applied when `repo` is given and holds one) and tokenizer.
 * @return 0, CMV_ENOTFOUND (the message suggests close ids), CMV_EINVALID
 *         (a bad descriptor, a secret), or the tokenizer's errors
 */
CMV_EXTERN(int) cmv_model_handle_open(cmv_model_handle **out, cmv_repo *repo, const char *ref);
CMV_EXTERN(void) cmv_model_handle_free(cmv_model_handle *model);
/** The profile as counting uses it (calibrated). Borrowed; lives as long as the handle. */
CMV_EXTERN(const cmv_model *) cmv_model_handle_profile(const cmv_model_handle *model);
/** The model's tokenizer (one thread at a time, as every cmv_tok). */
CMV_EXTERN(cmv_tok *) cmv_model_handle_tok(const cmv_model_handle *model);
/**
 * What usage is keyed by: "provider/model" with "@base_url" when the model
 * is served elsewhere than its provider's public endpoint. The key and a
 * descriptor of the same model give the same signature.
 */
CMV_EXTERN(const char *) cmv_model_handle_signature(const cmv_model_handle *model);
/** What a branch stores as its model: the canonical id, or the descriptor as given. */
CMV_EXTERN(const char *) cmv_model_handle_ref(const cmv_model_handle *model);
/** Output tokens a request asks for: the descriptor's max_tokens, else the profile's max_output. */
CMV_EXTERN(uint32_t) cmv_model_handle_max_tokens(const cmv_model_handle *model);

/**
 * cmv_materialize() for a handle (its profile and tokenizer).
 * @return as cmv_materialize()
 */
CMV_EXTERN(int) cmv_materialize_for(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip,
				    const cmv_model_handle *model, const cmv_pager_options *opts);

/* ---- switching ----------------------------------------------------------- */

typedef struct cmv_switch_options {
	unsigned int version;
	uint64_t budget;      /**< what the new model's request may be billed; 0: its input budget */
	/**
	 * Restore, then switch: make `branch` (which must not exist) at this
	 * ref first (a snapshot's name, a branch, a node id), in the same step.
	 * NULL: switch the existing branch.
	 */
	const char *from;
	size_t keep_turns;    /**< as cmv_pager_options.keep_turns */
	bool stub_pinned;     /**< as cmv_pager_options.stub_pinned */
	/* version 2 */
	/**
	 * A model without tool calling for a session with tool calls, or
	 * without images for one with images, is refused (CMV_EINVALID, naming
	 * what is missing) unless this is set: then the calls and results are
	 * carried as text and images as placeholders, as the pager renders them
	 * for such a model.
	 */
	bool tools_as_text;
	const char *reason;   /**< why (a failover, a return): kept in the switch event; NULL: none */
} cmv_switch_options;
#define CMV_SWITCH_OPTIONS_VERSION 2
CMV_EXTERN(void) cmv_switch_options_init(cmv_switch_options *opts);

#define CMV_SWITCH_REPORT_VERSION 1
typedef struct cmv_switch_report {
	unsigned int version;  /**< the caller's: 0 or CMV_SWITCH_REPORT_VERSION */
	bool changed;          /**< false: the branch already ran on this model */
	bool created;          /**< the branch was made (options.from) */
	cmv_id event;          /**< the switch event (CMV_ID_NONE when nothing was recorded) */
	uint64_t budget, tokens, tokens_full; /**< the fit, as cmv_materialize_report says it */
	size_t stubbed, evicted;
	/**
	 * Calls with no result on the branch (cmv_ledger_build), and those of
	 * them with side effects: their outcome is unknown, and the next model
	 * is told so with each of them (docs/ledger.md). A caller warns, naming
	 * them (cmv_ledger_in_flight_text).
	 */
	size_t in_flight, in_flight_effects;
} cmv_switch_report;

/**
 * Switch `branch` to `model`: check that its working set fits the model
 * (the pager's page table for the model is kept), set the branch's
 * reference, start a usage segment for the model's signature and record one
 * switch event carrying the fit, all in one transaction. When the pinned set
 * cannot fit, nothing is recorded.
 * @return 0, CMV_EBUDGET (the message says what is pinned and what it
 *         needs), CMV_ENOTFOUND, CMV_EEXISTS (options.from and the branch
 *         exists), CMV_EINVALID (a snapshot)
 */
CMV_EXTERN(int) cmv_switch(cmv_switch_report *rep, cmv_repo *repo, const char *branch, const cmv_model_handle *model,
			   const cmv_switch_options *opts);

/* ---- usage --------------------------------------------------------------- */

#define CMV_USAGE_VERSION 1
/** One call's tokens as the provider billed them. */
typedef struct cmv_usage {
	unsigned int version;
	uint64_t input_tokens;       /**< uncached input */
	uint64_t output_tokens;      /**< reasoning included */
	uint64_t cache_read_tokens;
	uint64_t cache_write_tokens;
} cmv_usage;

/**
 * Book one call to `model` on `branch` (cmv_usage_record_for with the
 * handle's signature). `cost` (may be NULL) gets its price in US dollars,
 * negative when the profile has no price.
 */
CMV_EXTERN(int) cmv_usage_add(double *cost, cmv_repo *repo, const char *branch, const cmv_model_handle *model,
			      const cmv_usage *usage);

/** The price of `usage` on `model`, in US dollars; negative when a price it needs is unknown. */
CMV_EXTERN(double) cmv_usage_price(const cmv_model *model, const cmv_usage *usage);

/**
 * The branch's usage as JSON: {"segments": [{signature, start_turn,
 * started, calls, input_tokens, output_tokens, cache_read_tokens,
 * cache_write_tokens, cost_usd}], "totals": [the same per signature, first
 * use first, with "segments"], "cost_usd"}; a cost is null where the
 * model's prices are unknown (priced by today's registry).
 */
CMV_EXTERN(int) cmv_usage_json(cmv_buf *out, cmv_repo *repo, const char *branch);

/* ---- requests ------------------------------------------------------------ */

typedef struct cmv_request_options {
	unsigned int version;
	/**
	 * The host's tools, a JSON array of definitions in Anthropic's shape
	 * ({name, description, input_schema}) or OpenAI's ({type: "function",
	 * function: {...}} or {type: "function", name, ...}); rendered in the
	 * target's. NULL: the branch's (cmv_branch_tools_set); "[]": none.
	 */
	const char *tools;
	bool recall_tool;    /**< add cmv_recall (the pager's stubs name what it brings back) */
	uint32_t max_tokens; /**< output tokens asked for; 0: cmv_model_handle_max_tokens() */
	/** The pager's options (budget, pins, query, format...); NULL: defaults. state_branch is the branch. */
	const cmv_pager_options *pager;
	/**
	 * Ask for a stream of server-sent events: "stream": true, and for
	 * OpenAI Chat "stream_options": {"include_usage": true} (else its
	 * stream carries no usage). Gemini streams by its URL
	 * (streamGenerateContent?alt=sse): nothing is added.
	 */
	bool stream;
} cmv_request_options;
#define CMV_REQUEST_OPTIONS_VERSION 1
CMV_EXTERN(void) cmv_request_options_init(cmv_request_options *opts);

#define CMV_REQUEST_REPORT_VERSION 2 /* 2: pages is a version-2 cmv_materialize_report */
typedef struct cmv_request_report {
	/**
	 * The caller's layout: set it to CMV_REQUEST_REPORT_VERSION (0 and 1,
	 * a program built before version 2, get pages written only up to
	 * `anchored`); on return the one written.
	 */
	unsigned int version;
	uint64_t tools_tokens; /**< what the tool definitions count, held back from the pager's budget */
	size_t n_tools;
	uint32_t max_tokens;
	cmv_materialize_report pages; /**< budget and tokens are the messages'; dispose with cmv_request_report_dispose */
} cmv_request_report;
CMV_EXTERN(void) cmv_request_report_dispose(cmv_request_report *rep);

/**
 * The body to send `model` for `branch`: the pager's request (within the
 * budget less what the tools count), with the tools in the target's shape
 * and the output limit ("max_tokens", "max_completion_tokens",
 * "max_output_tokens" or generationConfig.maxOutputTokens).
 * @return as cmv_materialize(); CMV_EINVALID for bad tool definitions
 */
CMV_EXTERN(int) cmv_request(cmv_buf *out, cmv_request_report *rep, cmv_repo *repo, const char *branch,
			    const cmv_model_handle *model, const cmv_request_options *opts);

/** Keep the branch's tool definitions (a JSON array as above; NULL removes them). */
CMV_EXTERN(int) cmv_branch_tools_set(cmv_repo *repo, const char *branch, const char *tools);

/**
 * Answer a call of the recall tool on `branch`: cmv_recall_tool_answer()
 * (a multi-run stub's turns come back in the one call). The page is not
 * faulted in: its content is in the conversation as the tool's result, and
 * pinning the original too would send it twice.
 * @return 0, 1 (out holds an error for the model), or a negative error
 */
CMV_EXTERN(int) cmv_recall_tool_call(cmv_buf *out, cmv_repo *repo, const char *branch, const char *input, size_t len);

/* ---- messages and replies in --------------------------------------------- */

/**
 * Append messages to `branch` (made when missing) from JSON in a provider's
 * shape: `format` "anthropic", "openai-chat", "openai-responses" (items),
 * "gemini" (contents) or "cmv" (cmv's JSONL message); `json` one message or
 * an array of them. A system message of any format is kept as one.
 * @param head the new head (may be NULL)
 * @return 0, CMV_EINVALID (the message names the message and the reason)
 */
CMV_EXTERN(int) cmv_append_json(cmv_id *head, cmv_repo *repo, const char *branch, const char *format,
				const char *json, size_t len);

#define CMV_REPLY_VERSION 1
typedef struct cmv_reply {
	unsigned int version;   /**< the caller's: 0 or CMV_REPLY_VERSION */
	cmv_id head;            /**< the reply's node */
	cmv_buf text;           /**< the reply's text blocks, joined */
	cmv_buf tool_calls;     /**< JSON: [{"id", "name", "input"}] */
	size_t n_tool_calls;
	bool has_usage;
	cmv_usage usage;
	double cost;            /**< booked to the model (negative: unknown price, or not booked) */
	char stop_reason[32];   /**< "end_turn", "tool_use", "max_tokens", ... in the provider's words */
} cmv_reply;
/** Free what a reply holds (safe on a zeroed one). */
CMV_EXTERN(void) cmv_reply_dispose(cmv_reply *reply);

/**
 * Append a provider's response to `branch`: a JSON body of the Messages API
 * ("anthropic"), Chat Completions ("openai-chat"), Responses
 * ("openai-responses") or generateContent ("gemini"). Its usage is booked to
 * `model` when given (may be NULL).
 * @return 0, CMV_EINVALID (not such a response, or an error response: the
 *         message quotes it)
 */
CMV_EXTERN(int) cmv_reply_append(cmv_reply *reply, cmv_repo *repo, const char *branch, const char *format,
				 const char *body, size_t len, const cmv_model_handle *model);

/** A response arriving as server-sent events, fed in chunks of any size. */
typedef struct cmv_reply_stream cmv_reply_stream;
/** @return 0, CMV_EINVALID (unknown format) */
CMV_EXTERN(int) cmv_reply_stream_new(cmv_reply_stream **out, const char *format);
/** @return 0, CMV_EINVALID (an event that is not JSON, an error event), CMV_ETOOBIG */
CMV_EXTERN(int) cmv_reply_stream_feed(cmv_reply_stream *s, const char *chunk, size_t len);
/** The response the events add up to, as the JSON body the same call would have returned. */
CMV_EXTERN(int) cmv_reply_stream_body(cmv_buf *out, cmv_reply_stream *s);
CMV_EXTERN(void) cmv_reply_stream_free(cmv_reply_stream *s);

/* ---- the JSON entry, for bindings ----------------------------------------- */

typedef struct cmv_host cmv_host;

/**
 * Open (CMV_REPO_OPEN_CREATE: create, folders too) the store at `path` for
 * JSON calls. The host keeps the model handles it resolves, by reference.
 */
CMV_EXTERN(int) cmv_host_open(cmv_host **out, const char *path, unsigned int flags);
CMV_EXTERN(void) cmv_host_free(cmv_host *host);
/** The host's store (borrowed), for C callers that mix both. */
CMV_EXTERN(cmv_repo *) cmv_host_repo(cmv_host *host);

/**
 * Call `method` with `params` (a JSON object, NULL: {}); *out gets the
 * result as JSON (free with cmv_host_string_free), or NULL on failure, when
 * the code and message are cmv_error_last()'s. docs/host.md lists the
 * methods: branch, append, append_response, request, switch, record_usage,
 * usage, tools_set, search, recall, recall_tool, snapshot, model, head,
 * stream_open, stream_close.
 */
CMV_EXTERN(int) cmv_host_call(char **out, cmv_host *host, const char *method, const char *params);
CMV_EXTERN(void) cmv_host_string_free(char *s);

/**
 * Feed a chunk of a reply's stream (opened by the method stream_open, which
 * gives its id) as it arrives, raw bytes, no JSON around them; the method
 * append_response {stream: id} appends what the chunks add up to, and ends
 * the stream (stream_close drops one unfinished). The host frees streams
 * left open.
 * @return 0, CMV_ENOTFOUND (no open stream of that id), or as
 *         cmv_reply_stream_feed()
 */
CMV_EXTERN(int) cmv_host_stream_feed(cmv_host *host, unsigned int stream, const char *chunk, size_t len);

#endif
