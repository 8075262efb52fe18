/* SPDX-License-Identifier: MIT */
/*
 * Model profiles: what the pager needs to know about a target model, and
 * how to count tokens in it.
 *
 * A built-in registry covers current OpenAI, Anthropic, Google, Meta,
 * Mistral and Gemma models, keyed by the providers' own model ids with
 * aliases (dated snapshot ids such as "claude-sonnet-4-5-20250929"). A JSON
 * file adds profiles or overrides fields (docs/tokenizers.md has the format):
 * $CMV_MODELS when set, else $XDG_CONFIG_HOME/cmv/models.json (default
 * ~/.config/cmv/models.json) when it exists.
 *
 * Counting: a model whose tokenizer is public is counted exactly. Claude
 * and Gemini are not public; their profiles name an approximation (an exact
 * tokenizer times a measured factor, rounded up) and hold back a safety
 * margin of the window. cmv_model_count() says which it did. Counting what
 * is stored or rendered (a conversation, a request body) is in <cmv/count.h>:
 * profiles and tokenizers are a layer of their own, below the store's
 * users and beside formats.
 */
#ifndef CMV_MODEL_H
#define CMV_MODEL_H

#include <stdbool.h>
#include "common.h"
#include "buf.h"
#include "tok.h"

/** How requests to the model are built (the renderers of the formats layer). */
typedef enum {
	CMV_API_OPENAI_CHAT = 1,      /**< OpenAI Chat Completions */
	CMV_API_OPENAI_RESPONSES = 2, /**< OpenAI Responses */
	CMV_API_ANTHROPIC = 3,        /**< Anthropic Messages */
	CMV_API_GEMINI = 4,           /**< Gemini generateContent */
} cmv_api;

/** Price per million tokens, in US dollars; negative when unknown or not sold per token. */
typedef struct cmv_model_prices {
	double input, output, cache_read, cache_write;
} cmv_model_prices;

typedef struct cmv_model {
	const char *id;          /**< the provider's model id: "gpt-4o", "claude-sonnet-4-5" */
	const char *provider;    /**< "openai", "anthropic", "google", "meta", "mistral" */
	const char *aliases;     /**< comma-separated other ids, or "" */
	cmv_api api;
	const char *tokenizer;   /**< a cmv_tok name */
	bool exact;              /**< the tokenizer is the model's own */
	double token_factor;     /**< counts are ceil(tokenizer count * factor); 1 when exact */
	double margin;           /**< the count's relative error a budget keeps below it (see margin_tokens) */
	uint64_t context_window; /**< input + output tokens */
	uint64_t max_output;     /**< the default output reserve */
	bool tools, images;
	/** Rendering overhead, in the model's tokens: per request, per message, per content block. */
	uint32_t per_request, per_message, per_block;
	uint32_t image_tokens;   /**< an image's cost when its size is unknown */
	cmv_model_prices prices;
	const char *prices_as_of; /**< when the prices were checked ("2025-11"), or "" */
	const char *note;         /**< what is approximate, or "" */
	/**
	 * Where the model is served, for the LLM client (include/cmv/llm.h):
	 * the base URL (".../v1"; NULL: the provider's public endpoint) and the
	 * name of the environment variable that holds the API key (NULL: the
	 * provider's usual one). The key itself is never in a profile.
	 */
	const char *base_url;
	const char *api_key_env;
	/**
	 * Where the window and output limit come from, with its date:
	 * "Claude Code 2.1.328 modelUsage, 2026-12", "Codex rollout
	 * token_count, 2026-06-25", or the user's file. Never NULL.
	 */
	const char *source;
	/**
	 * Set on a profile cmv_models_resolve() made for an id cmv does not
	 * know, by the id's family (claude-*, gpt-*, o<digit>*, gemini-*): a
	 * copy of `assumed_from` (a built-in id) under the new id, with no
	 * price. cmv_model_assumed() says so in a line.
	 */
	bool provisional;
	const char *assumed_from;
	/**
	 * Tokens a request may be billed above its count whatever its size (a
	 * host's per-request additions cmv cannot see), beside `margin`, the
	 * relative error: the provider bills at most count x (1 + margin) +
	 * margin_tokens (cmv_count_ceiling). 0 in the built-in profiles; a
	 * calibration sets both.
	 */
	uint64_t margin_tokens;
} cmv_model;

typedef struct cmv_models cmv_models;

/**
 * The built-in registry plus the user's file (see above; `path` overrides
 * the search, NULL searches, "" loads the built-ins only).
 * @return 0, CMV_EINVALID (the file is malformed: the message names the
 *         file, the entry and the reason), CMV_EIO, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_models_load(cmv_models **out, const char *path);
CMV_EXTERN(void) cmv_models_free(cmv_models *models);
CMV_EXTERN(size_t) cmv_models_count(const cmv_models *models);
CMV_EXTERN(const cmv_model *) cmv_models_at(const cmv_models *models, size_t i);

/**
 * Find a model by id or alias. A dated id ("gpt-4o-2024-08-06",
 * "claude-opus-4-5-20251101") finds its undated profile when it has none of
 * its own. @return 0, CMV_ENOTFOUND (the message suggests close ids)
 */
CMV_EXTERN(int) cmv_models_find(const cmv_model **out, const cmv_models *models, const char *name);

/** "openai-chat", "openai-responses", "anthropic", "gemini". */
CMV_EXTERN(const char *) cmv_api_name(cmv_api api);

/** Tokens the model may be sent: window minus output reserve minus the margin. */
CMV_EXTERN(uint64_t) cmv_model_input_budget(const cmv_model *model);

/**
 * Count text in the model's tokens: exact, or the approximation rounded up.
 * `tok` must be the model's tokenizer (cmv_tok_load(model->tokenizer)).
 * @param exact set to whether the count is exact (may be NULL)
 */
CMV_EXTERN(int) cmv_model_count(size_t *out, bool *exact, const cmv_model *model, cmv_tok *tok,
				const void *text, size_t len);

/**
 * Find a model as cmv_models_find() does, and else by its family: an id
 * that starts with "claude-", "gpt-", "o" and a digit, or "gemini-" gets a
 * provisional profile (see cmv_model.provisional), a copy of the family's
 * built-in profile that shares the most leading dash-separated words with
 * it, the newest on a tie ("claude-sonnet-7": claude-sonnet-5-5). The copy
 * lives as long as `models`; resolving the same id again returns it.
 * @return 0, CMV_ENOTFOUND (no family either: cmv_models_find's message,
 *         with close ids), CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_models_resolve(const cmv_model **out, cmv_models *models, const char *name);

/**
 * What a provisional profile assumed, in one line (nothing for another):
 * "unknown model 'claude-sonnet-7': counted as the claude family
 * (claude-sonnet-5-5's window 1,000,000, output 128,000, tokenizer
 * approximation)".
 */
CMV_EXTERN(int) cmv_model_assumed(cmv_buf *out, const cmv_model *model);

/**
 * The user's model file: $CMV_MODELS, else $XDG_CONFIG_HOME/cmv/models.json,
 * else ~/.config/cmv/models.json, whether it exists or not.
 * @return 0, CMV_ENOTFOUND (none of those variables is set)
 */
CMV_EXTERN(int) cmv_models_user_path(cmv_buf *out);

/** How cmv_models_edit() changes the file. */
typedef enum {
	CMV_MODELS_ADD = 1,    /**< a new entry: `base` copied under `id`, then the fields */
	CMV_MODELS_SET = 2,    /**< set fields of the file's entry for `id` (made for a built-in id) */
	CMV_MODELS_REMOVE = 3, /**< remove the file's entry for `id` (a built-in comes back) */
} cmv_models_op;

/** One field of an entry, as text: "262144", "true", "llama3", "a,b" (aliases), "null" (a price). */
typedef struct cmv_model_field {
	const char *name;  /**< a key of the file format ("context_window"; "window" and "output" too; "prices.input") */
	const char *value;
} cmv_model_field;

/**
 * Edit the model file at `path` (docs/tokenizers.md has its format; the
 * file is made when missing, its folder is not) without hand-written JSON:
 * the result is loaded as cmv_models_load() would before it replaces the
 * file, atomically, so a bad value leaves the file as it was and the
 * message names the field. A key is never stored: "api_key" and the like
 * are refused; name the variable that holds it with "api_key_env".
 * @param base for CMV_MODELS_ADD, the model to copy (any known id)
 * @return 0, CMV_EINVALID (a bad value or field; an ADD of an id that
 *         exists), CMV_ENOTFOUND (SET or REMOVE of an id the file and the
 *         built-ins do not have; an unknown base), CMV_EIO, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_models_edit(const char *path, cmv_models_op op, const char *id, const char *base,
				const cmv_model_field *fields, size_t n_fields);

/** Scale a raw tokenizer count by the model's approximation factor (identity when exact). */
CMV_EXTERN(uint64_t) cmv_model_scale(const cmv_model *model, uint64_t raw);

#endif
