/* SPDX-License-Identifier: MIT */
/**
 * The LLM client: one completion at a time, over a transport.
 *
 * Two wire protocols: OpenAI-compatible Chat Completions (OpenAI, vLLM,
 * llama.cpp server, Ollama, LiteLLM, Gemini's OpenAI endpoint all speak it)
 * and Anthropic Messages. The transport is an interface with two
 * implementations: libcurl, and a replaying fake for tests and offline
 * runs. The API key is read from the environment variable the model profile
 * names, at the moment of the call; it is never stored, logged or put in an
 * error message. Only compaction/ and the bench use this (DESIGN.md §2).
 */
#ifndef CMV_LLM_H
#define CMV_LLM_H

#include "common.h"
#include "buf.h"
#include "model.h"

/* ---- transport ---------------------------------------------------------- */

/** One HTTP POST. Header lines are "Name: value". */
typedef struct cmv_http_request {
	const char *url;
	const char *const *headers;
	size_t n_headers;
	const char *body;
	size_t body_len;
	long timeout_ms;     /**< the whole exchange */
	size_t max_response; /**< a longer body is CMV_ETOOBIG */
} cmv_http_request;

typedef struct cmv_http_response {
	long status;
	/** Retry-After in milliseconds (seconds or an HTTP date in the header); -1 when absent. */
	long retry_after_ms;
	cmv_buf body;
} cmv_http_response;

/**
 * A transport sends one request and fills the response. It returns 0 when
 * an HTTP status came back (whatever it is), or CMV_ETRANSPORT (refused,
 * reset, timed out, truncated: the message says which), CMV_ETOOBIG (the
 * body passed max_response), CMV_ENOMEM.
 */
typedef struct cmv_llm_transport {
	unsigned int version;
	int (*send)(struct cmv_llm_transport *t, const cmv_http_request *req, cmv_http_response *resp);
	void (*free)(struct cmv_llm_transport *t);
} cmv_llm_transport;
#define CMV_LLM_TRANSPORT_VERSION 1

/** The libcurl transport. @return 0, CMV_EUNSUPPORTED (libcurl failed to start), CMV_ENOMEM */
CMV_EXTERN(int) cmv_llm_transport_curl(cmv_llm_transport **out);

/**
 * The replaying fake: answers each request with the next recorded exchange
 * of `path`, a JSON Lines file of {"status": N, "retry_after"?: seconds,
 * "body": string or JSON value, "error"?: "timeout"|"refused"}; past the
 * last record every request fails with CMV_ETRANSPORT. It keeps the bodies
 * it was sent (cmv_llm_replay_request) so a test can check them.
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID (a bad line: file and line named)
 */
CMV_EXTERN(int) cmv_llm_transport_replay(cmv_llm_transport **out, const char *path);
/** The i-th request body a replaying transport received, or NULL. */
CMV_EXTERN(const char *) cmv_llm_replay_request(cmv_llm_transport *t, size_t i);
CMV_EXTERN(size_t) cmv_llm_replay_count(cmv_llm_transport *t);

/* ---- client ------------------------------------------------------------- */

typedef struct cmv_llm_options {
	unsigned int version;
	/** The endpoint's base URL (".../v1"); NULL: the profile's, then the provider's default. */
	const char *base_url;
	/** The variable holding the API key; NULL: the profile's, then the provider's default. */
	const char *api_key_env;
	long timeout_ms;      /**< per attempt; 0: 120000 */
	unsigned int retries; /**< after the first attempt, on 429 and 5xx; 0: 4 (use ~0u for none) */
	long backoff_ms;      /**< first backoff, doubled each retry, with jitter; 0: 500 */
	long max_wait_ms;     /**< the longest single wait, Retry-After included; 0: 60000 */
	size_t max_response;  /**< 0: 8 MiB */
	uint32_t max_tokens;  /**< output tokens asked for; 0: min(model's max_output, 4096) */
	/** The transport (borrowed); NULL: libcurl. */
	cmv_llm_transport *transport;
} cmv_llm_options;
#define CMV_LLM_OPTIONS_VERSION 1
#define CMV_LLM_OPTIONS_INIT { CMV_LLM_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0, NULL }
/** The defaults, as CMV_LLM_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_llm_options_init(cmv_llm_options *opts);

typedef struct cmv_llm cmv_llm;

/**
 * A client for `model` (borrowed; must outlive the client).
 * @return 0, CMV_EINVALID (no endpoint for this model: name one with
 *         base_url / --llm-url), CMV_EUNSUPPORTED, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_llm_new(cmv_llm **out, const cmv_model *model, const cmv_llm_options *opts);
CMV_EXTERN(void) cmv_llm_free(cmv_llm *llm);

/** What one completion cost and how it ended. */
typedef struct cmv_llm_usage {
	uint64_t input_tokens, output_tokens; /**< as the endpoint reported them (0 if it did not) */
	unsigned int attempts;
	bool truncated;  /**< the reply stopped at max_tokens */
} cmv_llm_usage;

/**
 * One completion: a system prompt and one user message in, the reply's
 * text out. Retries 429 and 5xx with exponential backoff and jitter,
 * honouring Retry-After. Every failure names the endpoint (never the key)
 * and the reason.
 * @return 0, CMV_ETRANSPORT (refused, timeout, bad status, malformed or
 *         truncated JSON, a reply with no text), CMV_ETOOBIG, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_llm_complete(cmv_buf *out, cmv_llm_usage *usage, cmv_llm *llm, const char *system,
				 const char *user);

/**
 * Send a request body the caller built (a pager's request: cmv_request) to
 * the endpoint, with the key, retries and errors of cmv_llm_complete, and
 * give back the response body as it came (for cmv_reply_append). The body
 * must be of the client's protocol (Anthropic Messages or Chat Completions).
 * @param attempts (may be NULL) how many tries it took
 * @return 0, CMV_ETRANSPORT, CMV_ETOOBIG, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_llm_send(cmv_buf *out, unsigned int *attempts, cmv_llm *llm, const char *body, size_t len);

/** Output tokens each later completion asks for (0: the default of cmv_llm_options.max_tokens). */
CMV_EXTERN(void) cmv_llm_set_max_tokens(cmv_llm *llm, uint32_t max_tokens);

/** The endpoint the client calls ("https://api.openai.com/v1/chat/completions"). */
CMV_EXTERN(const char *) cmv_llm_endpoint(const cmv_llm *llm);

#endif
