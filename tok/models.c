/* SPDX-License-Identifier: MIT */
/*
 * The model registry: built-in profiles plus the user's JSON file, the
 * provisional profiles of ids resolved by family, and edits to the file.
 *
 * Where the figures come from (each profile's `source` names it, with a date)
 *  - Current Claude models: the contextWindow and maxOutputTokens Claude
 *    Code 2.1.328 reports in modelUsage (../shared/reference/real-clients.md,
 *    2026-12); ids its binary names without figures take their family's.
 *  - Current OpenAI models: model_context_window in the token_count events
 *    of the Codex rollouts that name them (Codex already holds 5% of the
 *    input limit back: 258,400 = 0.95 x 272,000). The rollouts give no output
 *    limit, so the reserve is cmv's: a tenth of the window.
 *  - Older models: the providers' published figures as of prices_as_of.
 *    Figures change, so every field can be overridden from the user's file
 *    (cmv models set) without a rebuild. A price is never guessed: a model
 *    the project has no dated price for has none (negative).
 *  - Exact tokenizers: OpenAI models use o200k_base (GPT-4o and later) or
 *    cl100k_base (GPT-4, GPT-3.5); Llama, Mistral 7B and Gemma 3 their own.
 *  - Claude: o200k_base times 1.25, plus 20 tokens per content block,
 *    fitted on 418 request-to-request prompt growths (usage.input_tokens +
 *    cache tokens) in the Claude Code sessions of ../shared/transcripts;
 *    tests/tok/approx_test.py measures it again. docs/tokenizers.md has
 *    the error.
 *  - Gemini 2.x and 3 use the vocabulary published as Gemma 3's (the Gemma
 *    3 report says it is Gemini 2.0's); not checked against countTokens,
 *    hence inexact with a small margin.
 *  - OpenAI overheads: the Responses profiles' per-item framing is measured
 *    on the Codex rollouts' billed prompt growth (tests/tok/openai_overhead.py;
 *    pager/count.c adds the function-call framing); the Chat profiles keep
 *    the cookbook's 3 per message and 3 to prime the reply. The others are
 *    estimates.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/model.h>

#define OAI_CHAT CMV_API_OPENAI_CHAT
#define ANTH CMV_API_ANTHROPIC
#define GEM CMV_API_GEMINI
#define NOPRICE { -1, -1, -1, -1 }

/* Held back for Claude, whose count is an approximation (see docs/tokenizers.md). */
#define CLAUDE_FACTOR 1.25
#define CLAUDE_MARGIN 0.15
#define CLAUDE_NOTE "approximation: o200k_base x 1.25 + 20 per block, fitted on Claude Code usage"
#define GEMINI_NOTE "Gemma 3 vocabulary (shared with Gemini 2.x); not checked against countTokens"

/* The tail of a built-in profile: no base URL or key variable of its own, and where its figures come from. */
#define SRC(s) NULL, NULL, s
#define OPENAI_PUBLISHED "OpenAI's published figures, 2025-11"
#define ANTHROPIC_PUBLISHED "Anthropic's published figures, 2025-11"
#define GOOGLE_PUBLISHED "Google's published figures, 2025-11"
#define META_CARD "Meta's model cards, 2025-11"
#define MISTRAL_CARD "Mistral's model cards, 2025-11"
#define GEMMA_CARD "Google's Gemma 3 model card, 2025-11"
#define CLAUDE_CODE "Claude Code 2.1.328 modelUsage, 2026-12"
/* ids the binary names without figures: their family's, and the source says whose */
#define CLAUDE_CODE_AS(base) "Claude Code 2.1.328 names it, 2026-12; window and output as " base "'s (no modelUsage figures)"
#define CODEX(date) "Codex rollout token_count, " date
#define CODEX_NOTE "window: Codex's model_context_window; output reserve: cmv's, a tenth of it (the rollouts give none)"
/*
 * The Responses API's framing, measured on Codex rollouts (docs/tokenizers.md):
 * 4 per item, 3 per text; pager/count.c adds a function call's and an
 * output's own framing.
 */
#define RESP_OVH 3, 4, 3

static const cmv_model builtin[] = {
	/*
	 * OpenAI. In each family the newest comes first: an id cmv does not
	 * know resolves to the first profile that shares the most leading words
	 * with it (cmv_models_resolve).
	 */
	{ "gpt-5.5", "openai", "", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01, 258400, 25840,
	  true, true, RESP_OVH, 765, NOPRICE, "", CODEX_NOTE, SRC(CODEX("2026-06-25")) },
	{ "gpt-5.4", "openai", "", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01, 258400, 25840,
	  true, true, RESP_OVH, 765, NOPRICE, "", CODEX_NOTE, SRC(CODEX("2026-06-18")) },
	{ "gpt-5.3-codex-spark", "openai", "", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01, 121600,
	  12160, true, true, RESP_OVH, 765, NOPRICE, "", CODEX_NOTE, SRC(CODEX("2026-06-26")) },
	{ "gpt-4o", "openai", "gpt-4o-2024-08-06,gpt-4o-2024-11-20,chatgpt-4o-latest", OAI_CHAT,
	  "o200k_base", true, 1, 0.01, 128000, 16384, true, true, 3, 3, 3, 765,
	  { 2.50, 10.00, 1.25, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  128000, 16384, true, true, 3, 3, 3, 765, { 0.15, 0.60, 0.075, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4.1", "openai", "gpt-4.1-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01, 1047576,
	  32768, true, true, 3, 3, 3, 765, { 2.00, 8.00, 0.50, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4.1-mini", "openai", "gpt-4.1-mini-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  1047576, 32768, true, true, 3, 3, 3, 765, { 0.40, 1.60, 0.10, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4.1-nano", "openai", "gpt-4.1-nano-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  1047576, 32768, true, true, 3, 3, 3, 765, { 0.10, 0.40, 0.025, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-5", "openai", "gpt-5-2025-08-07,gpt-5-chat-latest", CMV_API_OPENAI_RESPONSES,
	  "o200k_base", true, 1, 0.01, 400000, 128000, true, true, RESP_OVH, 765,
	  { 1.25, 10.00, 0.125, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-5.1", "openai", "gpt-5.1-2025-11-13", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 400000, 128000, true, true, RESP_OVH, 765, { 1.25, 10.00, 0.125, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-5-mini", "openai", "gpt-5-mini-2025-08-07", CMV_API_OPENAI_RESPONSES, "o200k_base",
	  true, 1, 0.01, 400000, 128000, true, true, RESP_OVH, 765, { 0.25, 2.00, 0.025, 0 },
	  "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-5-nano", "openai", "gpt-5-nano-2025-08-07", CMV_API_OPENAI_RESPONSES, "o200k_base",
	  true, 1, 0.01, 400000, 128000, true, true, RESP_OVH, 765, { 0.05, 0.40, 0.005, 0 },
	  "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "o3", "openai", "o3-2025-04-16", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01,
	  200000, 100000, true, true, RESP_OVH, 765, { 2.00, 8.00, 0.50, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "o4-mini", "openai", "o4-mini-2025-04-16", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 200000, 100000, true, true, RESP_OVH, 765, { 1.10, 4.40, 0.275, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "o3-mini", "openai", "o3-mini-2025-01-31", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 200000, 100000, true, false, RESP_OVH, 0, { 1.10, 4.40, 0.55, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "o1", "openai", "o1-2024-12-17", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01,
	  200000, 100000, true, true, RESP_OVH, 765, { 15.00, 60.00, 7.50, 0 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4-turbo", "openai", "gpt-4-turbo-2024-04-09", OAI_CHAT, "cl100k_base", true, 1, 0.01,
	  128000, 4096, true, true, 3, 3, 3, 765, { 10.00, 30.00, -1, -1 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-4", "openai", "gpt-4-0613", OAI_CHAT, "cl100k_base", true, 1, 0.01, 8192, 4096, true,
	  false, 3, 3, 3, 0, { 30.00, 60.00, -1, -1 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	{ "gpt-3.5-turbo", "openai", "gpt-3.5-turbo-0125", OAI_CHAT, "cl100k_base", true, 1, 0.01,
	  16385, 4096, true, false, 3, 3, 3, 0, { 0.50, 1.50, -1, -1 }, "2025-11", "", SRC(OPENAI_PUBLISHED) },
	/* Anthropic: Claude Code 2.1.328's models first (newest first in each family), then the older ones */
	{ "claude-opus-5-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-sonnet-5-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-haiku-5-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-fable-5-2", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-mythos-5-2", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-sonnet-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 64000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-opus-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-opus-5-5")) },
	{ "claude-fable-5-1", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-fable-5-2")) },
	{ "claude-fable-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-fable-5-2")) },
	{ "claude-mythos-5-1", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-mythos-5-2")) },
	{ "claude-mythos-5", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 128000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-mythos-5-2")) },
	{ "claude-opus-4-8", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 64000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-opus-4-7", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 64000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-opus-4-8")) },
	{ "claude-opus-4-6", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 1000000, 64000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE_AS("claude-opus-4-8")) },
	{ "claude-sonnet-4-6", "anthropic", "", ANTH, "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 32000,
	  true, true, 0, 3, 20, 1600, NOPRICE, "", CLAUDE_NOTE, SRC(CLAUDE_CODE) },
	{ "claude-opus-4-5", "anthropic", "claude-opus-4-5-20251101", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 5.00, 25.00, 0.50, 6.25 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	{ "claude-opus-4-1", "anthropic", "claude-opus-4-1-20250805", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 32000, true, true, 0, 3, 20, 1600,
	  { 15.00, 75.00, 1.50, 18.75 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	{ "claude-opus-4", "anthropic", "claude-opus-4-20250514,claude-opus-4-0", ANTH, "o200k_base",
	  false, CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 32000, true, true, 0, 3, 20, 1600,
	  { 15.00, 75.00, 1.50, 18.75 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	{ "claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5-20250929", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 3.00, 15.00, 0.30, 3.75 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	{ "claude-sonnet-4", "anthropic", "claude-sonnet-4-20250514,claude-sonnet-4-0", ANTH,
	  "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 3.00, 15.00, 0.30, 3.75 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	{ "claude-haiku-4-5", "anthropic", "claude-haiku-4-5-20251001", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 1.00, 5.00, 0.10, 1.25 }, "2025-11", CLAUDE_NOTE, SRC(ANTHROPIC_PUBLISHED) },
	/* Google */
	{ "gemini-3-pro-preview", "google", "gemini-3-pro", GEM, "gemma3", false, 1, 0.05, 1048576,
	  65536, true, true, 0, 4, 4, 258, { 2.00, 12.00, 0.20, -1 }, "2025-11", GEMINI_NOTE, SRC(GOOGLE_PUBLISHED) },
	{ "gemini-2.5-pro", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true, true,
	  0, 4, 4, 258, { 1.25, 10.00, 0.125, -1 }, "2025-11", GEMINI_NOTE, SRC(GOOGLE_PUBLISHED) },
	{ "gemini-2.5-flash", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true,
	  true, 0, 4, 4, 258, { 0.30, 2.50, 0.03, -1 }, "2025-11", GEMINI_NOTE, SRC(GOOGLE_PUBLISHED) },
	{ "gemini-2.5-flash-lite", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true,
	  true, 0, 4, 4, 258, { 0.10, 0.40, 0.01, -1 }, "2025-11", GEMINI_NOTE, SRC(GOOGLE_PUBLISHED) },
	/* Meta: open weights, served anywhere; no list price */
	{ "llama-3.1-8b", "meta", "llama-3.1-8b-instruct,meta-llama/Llama-3.1-8B-Instruct", OAI_CHAT,
	  "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	{ "llama-3.1-70b", "meta", "llama-3.1-70b-instruct,meta-llama/Llama-3.1-70B-Instruct",
	  OAI_CHAT, "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	{ "llama-3.1-405b", "meta", "llama-3.1-405b-instruct", OAI_CHAT, "llama3", true, 1, 0, 131072,
	  4096, true, false, 1, 5, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	{ "llama-3.2-3b", "meta", "llama-3.2-3b-instruct", OAI_CHAT, "llama3", true, 1, 0, 131072,
	  4096, true, false, 1, 5, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	{ "llama-3.3-70b", "meta", "llama-3.3-70b-instruct,meta-llama/Llama-3.3-70B-Instruct",
	  OAI_CHAT, "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	{ "llama-2-7b-chat", "meta", "llama-2-13b-chat,llama-2-70b-chat", OAI_CHAT, "llama2", true, 1,
	  0, 4096, 1024, false, false, 1, 4, 0, 0, NOPRICE, "", "", SRC(META_CARD) },
	/* Mistral: the 32k SentencePiece vocabulary (the Tekken models are not public here) */
	{ "mistral-7b-instruct-v0.2", "mistral", "mistral-7b-instruct-v0.1,open-mistral-7b", OAI_CHAT,
	  "mistral-7b-v0.1", true, 1, 0, 32768, 4096, false, false, 1, 4, 0, 0, NOPRICE, "", "", SRC(MISTRAL_CARD) },
	{ "mixtral-8x7b-instruct", "mistral", "open-mixtral-8x7b,mixtral-8x7b-instruct-v0.1",
	  OAI_CHAT, "mistral-7b-v0.1", true, 1, 0, 32768, 4096, false, false, 1, 4, 0, 0, NOPRICE,
	  "", "", SRC(MISTRAL_CARD) },
	/* Gemma 3 */
	{ "gemma-3-27b", "google", "gemma-3-27b-it,gemma-3-12b,gemma-3-12b-it,gemma-3-4b,gemma-3-4b-it",
	  GEM, "gemma3", true, 1, 0, 131072, 8192, false, true, 1, 4, 0, 256, NOPRICE, "", "", SRC(GEMMA_CARD) },
	{ "gemma-3-1b", "google", "gemma-3-1b-it", GEM, "gemma3", true, 1, 0, 32768, 8192, false,
	  false, 1, 4, 0, 0, NOPRICE, "", "", SRC(GEMMA_CARD) },
};

struct cmv_models {
	cmv_model *v;
	size_t n, cap;
	char **strings; /* owned copies of user-file strings */
	size_t n_strings, cap_strings;
	/* provisional profiles (cmv_models_resolve), each allocated alone: a pointer handed out stays valid */
	cmv_model **prov;
	size_t n_prov;
};

static const char *const api_names[] = { NULL, "openai-chat", "openai-responses", "anthropic",
					 "gemini" };

const char *cmv_api_name(cmv_api api)
{
	return api >= 1 && api <= 4 ? api_names[api] : "unknown";
}

static int keep_string(const char **out, cmv_models *m, const char *s)
{
	char *copy;

	if (m->n_strings == m->cap_strings) {
		size_t cap = m->cap_strings ? m->cap_strings * 2 : 32;
		char **p = realloc(m->strings, cap * sizeof(*p));
		if (!p)
			return cmv_error__oom();
		m->strings = p;
		m->cap_strings = cap;
	}
	if (!(copy = cmv__strdup(s)))
		return cmv_error__oom();
	m->strings[m->n_strings++] = copy;
	*out = copy;
	return 0;
}

static int push(cmv_models *m, const cmv_model *model)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		cmv_model *p = realloc(m->v, cap * sizeof(*p));
		if (!p)
			return cmv_error__oom();
		m->v = p;
		m->cap = cap;
	}
	m->v[m->n++] = *model;
	return 0;
}

static bool alias_matches(const char *aliases, const char *name)
{
	size_t n = strlen(name);
	const char *p = aliases;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !memcmp(p, name, n))
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

static cmv_model *find_exact(const cmv_models *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].id, name) || alias_matches(m->v[i].aliases, name))
			return &m->v[i];
	return NULL;
}

/* "claude-opus-4-5-20251101" -> "claude-opus-4-5"; "gpt-4o-2024-08-06" -> "gpt-4o"; else 0 */
static size_t undated_len(const char *name)
{
	size_t n = strlen(name), i;

	/* -YYYYMMDD */
	if (n > 9 && name[n - 9] == '-') {
		for (i = n - 8; i < n && name[i] >= '0' && name[i] <= '9'; i++)
			;
		if (i == n)
			return n - 9;
	}
	/* -YYYY-MM-DD */
	if (n > 11 && name[n - 11] == '-' && name[n - 6] == '-' && name[n - 3] == '-') {
		for (i = n - 10; i < n; i++)
			if (i != n - 6 && i != n - 3 && (name[i] < '0' || name[i] > '9'))
				return 0;
		return n - 11;
	}
	return 0;
}

int cmv_models_find(const cmv_model **out, const cmv_models *m, const char *name)
{
	cmv_model *found;
	size_t cut;
	cmv_buf hint = CMV_BUF_INIT(1024);
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(m);
	CMV_ASSERT_ARG(name);
	if ((found = find_exact(m, name))) {
		*out = found;
		return 0;
	}
	if ((cut = undated_len(name)) > 0) {
		char base[256];
		if (cut < sizeof(base)) {
			memcpy(base, name, cut);
			base[cut] = '\0';
			if ((found = find_exact(m, base))) {
				*out = found;
				return 0;
			}
		}
	}
	/* suggest ids that share the first dash-separated words */
	for (size_t i = 0; i < m->n; i++) {
		const char *id = m->v[i].id, *dash = strchr(id, '-');
		size_t k = dash ? (size_t)(dash - id) + 1 : strlen(id);
		if (!strncmp(id, name, k) && hint.size < 400)
			cmv_buf_printf(&hint, "%s%s", hint.size ? ", " : "", id);
	}
	error = cmv_error__set(CMV_ENOTFOUND, "unknown model '%s'%s%s%s", name,
			       hint.size ? " (did you mean: " : " (see 'cmv models')",
			       hint.size ? hint.ptr : "", hint.size ? ")" : "");
	cmv_buf_dispose(&hint);
	return error;
}

size_t cmv_models_count(const cmv_models *m)
{
	return m ? m->n : 0;
}

const cmv_model *cmv_models_at(const cmv_models *m, size_t i)
{
	return m && i < m->n ? &m->v[i] : NULL;
}

void cmv_models_free(cmv_models *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_strings; i++)
		free(m->strings[i]);
	free(m->strings);
	for (size_t i = 0; i < m->n_prov; i++)
		free(m->prov[i]);
	free(m->prov);
	free(m->v);
	free(m);
}

uint64_t cmv_model_input_budget(const cmv_model *model)
{
	uint64_t room;

	if (model->max_output >= model->context_window)
		return 0;
	room = model->context_window - model->max_output;
	return room - (uint64_t)ceil((double)room * model->margin);
}

uint64_t cmv_model_scale(const cmv_model *model, uint64_t raw)
{
	if (model->exact || model->token_factor == 1.0)
		return raw;
	return (uint64_t)ceil((double)raw * model->token_factor);
}

int cmv_model_count(size_t *out, bool *exact, const cmv_model *model, cmv_tok *tok,
		    const void *text, size_t len)
{
	size_t raw;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	if (strcmp(cmv_tok_name(tok), model->tokenizer))
		return cmv_error__set(CMV_EINVALID, "model '%s' counts with %s, not %s", model->id,
				      model->tokenizer, cmv_tok_name(tok));
	if ((error = cmv_tok_count(&raw, tok, text, len)) < 0)
		return error;
	*out = (size_t)cmv_model_scale(model, raw);
	if (exact)
		*exact = model->exact;
	return 0;
}

/* ---- the user's file --------------------------------------------------- */

typedef struct {
	const char *file;
	size_t index;
	const char *id;
} where;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int bad(const where *w, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return cmv_error__set(CMV_EINVALID, "%s: models[%zu]%s%s%s: %s", w->file, w->index,
			      w->id ? " (\"" : "", w->id ? w->id : "", w->id ? "\")" : "", what);
}

static int get_u64(uint64_t *out, const cJSON *v, const where *w, const char *key, uint64_t min,
		   uint64_t max)
{
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    v->valuedouble < (double)min || v->valuedouble > (double)max)
		return bad(w, "'%s' must be a whole number in range", key);
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int get_bool(bool *out, const cJSON *v, const where *w, const char *key)
{
	if (!cJSON_IsBool(v))
		return bad(w, "'%s' must be true or false", key);
	*out = cJSON_IsTrue(v);
	return 0;
}

static int get_str(const char **out, cmv_models *m, const cJSON *v, const where *w, const char *key)
{
	if (!cJSON_IsString(v) || !cmv_utf8_valid(v->valuestring, strlen(v->valuestring), NULL) ||
	    strlen(v->valuestring) > 1024)
		return bad(w, "'%s' must be a string (at most 1024 bytes)", key);
	return keep_string(out, m, v->valuestring);
}

static int get_price(double *out, const cJSON *v, const where *w, const char *key)
{
	if (cJSON_IsNull(v)) {
		*out = -1;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6)
		return bad(w, "price '%s' must be a number of dollars per million tokens, or null", key);
	*out = v->valuedouble;
	return 0;
}

static int apply_field(cmv_model *md, cmv_models *m, const cJSON *v, const where *w)
{
	const char *k = v->string;
	uint64_t u = 0;
	int error = 0;

	if (!strcmp(k, "id") || !strcmp(k, "base"))
		return 0;
	if (!strcmp(k, "provider"))
		return get_str(&md->provider, m, v, w, k);
	if (!strcmp(k, "note"))
		return get_str(&md->note, m, v, w, k);
	if (!strcmp(k, "base_url")) {
		if (!cJSON_IsString(v) || (strncmp(v->valuestring, "http://", 7) && strncmp(v->valuestring, "https://", 8)))
			return bad(w, "'%s' must be an http:// or https:// URL", k);
		return get_str(&md->base_url, m, v, w, k);
	}
	if (!strcmp(k, "api_key_env")) {
		const char *s = cJSON_IsString(v) ? v->valuestring : "";
		bool ok = *s && !(*s >= '0' && *s <= '9');
		for (; *s && ok; s++)
			ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_';
		if (!ok)
			return bad(w, "'%s' must name an environment variable (letters, digits, '_')", k);
		return get_str(&md->api_key_env, m, v, w, k);
	}
	if (!strcmp(k, "api_key") || !strcmp(k, "key") || !strcmp(k, "token"))
		return bad(w, "'%s': a profile never holds a secret; name the variable that does with 'api_key_env'", k);
	if (!strcmp(k, "prices_as_of"))
		return get_str(&md->prices_as_of, m, v, w, k);
	if (!strcmp(k, "source"))
		return get_str(&md->source, m, v, w, k);
	if (!strcmp(k, "aliases")) {
		cmv_buf all = CMV_BUF_INIT(8192);
		const cJSON *a;
		if (!cJSON_IsArray(v))
			return bad(w, "'%s' must be an array of strings", k);
		cJSON_ArrayForEach(a, v) {
			if (!cJSON_IsString(a) || !*a->valuestring || strchr(a->valuestring, ',')) {
				cmv_buf_dispose(&all);
				return bad(w, "'%s' must hold non-empty strings without commas", k);
			}
			error = cmv_buf_printf(&all, "%s%s", all.size ? "," : "", a->valuestring);
		}
		if (!error)
			error = keep_string(&md->aliases, m, all.ptr ? all.ptr : "");
		cmv_buf_dispose(&all);
		return error;
	}
	if (!strcmp(k, "api")) {
		for (int i = 1; i <= 4; i++)
			if (cJSON_IsString(v) && !strcmp(v->valuestring, api_names[i])) {
				md->api = (cmv_api)i;
				return 0;
			}
		return bad(w, "'%s' must be openai-chat, openai-responses, anthropic or gemini", k);
	}
	if (!strcmp(k, "tokenizer")) {
		if (!cJSON_IsString(v) || !cmv_tok_is_known(v->valuestring))
			return bad(w, "'%s' must name a known tokenizer (see 'cmv tokens --help')", k);
		return get_str(&md->tokenizer, m, v, w, k);
	}
	if (!strcmp(k, "exact"))
		return get_bool(&md->exact, v, w, k);
	if (!strcmp(k, "tools"))
		return get_bool(&md->tools, v, w, k);
	if (!strcmp(k, "images"))
		return get_bool(&md->images, v, w, k);
	if (!strcmp(k, "token_factor")) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 0.5 || v->valuedouble > 4)
			return bad(w, "'%s' must be a number from 0.5 to 4", k);
		md->token_factor = v->valuedouble;
		return 0;
	}
	if (!strcmp(k, "margin")) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 0.9)
			return bad(w, "'%s' must be a fraction from 0 to 0.9", k);
		md->margin = v->valuedouble;
		return 0;
	}
	if (!strcmp(k, "context_window"))
		return get_u64(&md->context_window, v, w, k, 1, (uint64_t)1 << 40);
	if (!strcmp(k, "max_output"))
		return get_u64(&md->max_output, v, w, k, 0, (uint64_t)1 << 40);
	if (!strcmp(k, "per_request") || !strcmp(k, "per_message") || !strcmp(k, "per_block") ||
	    !strcmp(k, "image_tokens")) {
		if ((error = get_u64(&u, v, w, k, 0, 1000000)) < 0)
			return error;
		*(k[4] == 'r' ? &md->per_request : k[4] == 'm' ? &md->per_message
				 : k[4] == 'b' ? &md->per_block : &md->image_tokens) = (uint32_t)u;
		return 0;
	}
	if (!strcmp(k, "prices")) {
		const cJSON *p;
		if (!cJSON_IsObject(v))
			return bad(w, "'%s' must be an object", k);
		cJSON_ArrayForEach(p, v) {
			double *slot = !strcmp(p->string, "input")	 ? &md->prices.input
				       : !strcmp(p->string, "output")	 ? &md->prices.output
				       : !strcmp(p->string, "cache_read")  ? &md->prices.cache_read
				       : !strcmp(p->string, "cache_write") ? &md->prices.cache_write
									    : NULL;
			if (!slot)
				return bad(w, "unknown price '%s' (input, output, cache_read, cache_write)",
					   p->string);
			if ((error = get_price(slot, p, w, p->string)) < 0)
				return error;
		}
		return 0;
	}
	return bad(w, "unknown field '%s'", k);
}

#define MODELS_FILE_MAX ((size_t)4 << 20)

/* The user's file as text (path names it in messages). */
static int load_text(cmv_models *m, const char *path, const cmv_buf *text)
{
	cJSON *root = NULL, *list, *e;
	int error = 0;
	where w = { path, 0, NULL };
	const char *user_source = NULL;

	if (!text->ptr || !(root = cJSON_ParseWithLength(text->ptr, text->size))) {
		size_t line = 1;
		const char *at = cJSON_GetErrorPtr();
		for (const char *p = text->ptr; p && at && p < at && p < text->ptr + text->size; p++)
			line += *p == '\n';
		error = cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON", path, line);
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(root, "models");
	if (!cJSON_IsObject(root) || !cJSON_IsArray(list)) {
		error = cmv_error__set(CMV_EINVALID, "%s: expected {\"models\": [...]}", path);
		goto out;
	}
	cJSON_ArrayForEach(e, list) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		const cJSON *base = cJSON_GetObjectItemCaseSensitive(e, "base");
		cmv_model md = { 0 }, *target;
		const cJSON *f;

		w.id = NULL;
		if (!cJSON_IsObject(e)) {
			error = bad(&w, "%s", "not an object");
			goto out;
		}
		if (!cJSON_IsString(id) || !*id->valuestring || strlen(id->valuestring) > 200) {
			error = bad(&w, "%s", "needs an 'id' (a non-empty string)");
			goto out;
		}
		w.id = id->valuestring;
		target = find_exact(m, id->valuestring);
		if (base) {
			cmv_model *b = cJSON_IsString(base) ? find_exact(m, base->valuestring) : NULL;
			if (!b) {
				error = bad(&w, "'base' names no known model%s", "");
				goto out;
			}
			md = *b;
			md.aliases = "";
		} else if (target) {
			md = *target;
		} else {
			md.token_factor = 1;
			md.exact = true;
			md.aliases = md.note = md.prices_as_of = "";
			md.prices = (cmv_model_prices){ -1, -1, -1, -1 };
		}
		if ((error = keep_string(&md.id, m, id->valuestring)) < 0)
			goto out;
		/* what the entry says is the user's; an entry may name its own source */
		if (!user_source) {
			cmv_buf src = CMV_BUF_INIT(8192);
			error = cmv_buf_printf(&src, "user file %s", path);
			if (!error)
				error = keep_string(&user_source, m, src.ptr);
			cmv_buf_dispose(&src);
			if (error < 0)
				goto out;
		}
		md.source = user_source;
		md.provisional = false;
		md.assumed_from = NULL;
		cJSON_ArrayForEach(f, e)
			if ((error = apply_field(&md, m, f, &w)) < 0)
				goto out;
		if (!md.provider || !md.api || !md.tokenizer || !md.context_window) {
			error = bad(&w, "%s", "a new model needs 'base', or 'provider', 'api', "
					      "'tokenizer' and 'context_window'");
			goto out;
		}
		if (md.max_output >= md.context_window) {
			error = bad(&w, "%s", "'max_output' must be below 'context_window'");
			goto out;
		}
		if (md.exact && md.token_factor != 1) {
			error = bad(&w, "%s", "an exact model has token_factor 1");
			goto out;
		}
		if (target)
			*target = md;
		else if ((error = push(m, &md)) < 0)
			goto out;
		w.index++;
	}
out:
	cJSON_Delete(root);
	return error;
}

static int load_file(cmv_models *m, const char *path)
{
	cmv_buf text = CMV_BUF_INIT(MODELS_FILE_MAX);
	int error = cmv__read_file(&text, path);

	/* a models file that was named but is missing is an I/O error, like an unreadable one */
	if (error == CMV_ENOTFOUND)
		error = cmv_error__set(CMV_EIO, "%s: no such file", path);
	else if (error == CMV_ETOOBIG)
		error = cmv_error__set(CMV_EINVALID, "%s: over 4 MiB, not a models file", path);
	if (error == 0)
		error = load_text(m, path, &text);
	cmv_buf_dispose(&text);
	return error;
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* $CMV_MODELS, else $XDG_CONFIG_HOME/cmv/models.json, else ~/.config/cmv/models.json; *from_env when the first. */
static int user_path(char *found, size_t size, bool *from_env)
{
	const char *env = getenv("CMV_MODELS"), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	*from_env = false;
	if (env && *env) {
		*from_env = true;
		n = snprintf(found, size, "%s", env);
	} else if (xdg && *xdg) {
		n = snprintf(found, size, "%s/cmv/models.json", xdg);
	} else if (home && *home) {
		n = snprintf(found, size, "%s/.config/cmv/models.json", home);
	} else {
		return cmv_error__set(CMV_ENOTFOUND, "no model file: none of CMV_MODELS, XDG_CONFIG_HOME and HOME is set");
	}
	if (n < 0 || (size_t)n >= size)
		return cmv_error__set(CMV_EINVALID, "the model file's path is over %zu bytes", size - 1);
	return 0;
}

int cmv_models_user_path(cmv_buf *out)
{
	char found[PATH_MAX];
	bool from_env;
	int error;

	CMV_ASSERT_ARG(out);
	if ((error = user_path(found, sizeof(found), &from_env)) < 0)
		return error;
	cmv_buf_clear(out);
	return cmv_buf_puts(out, found);
}

int cmv_models_load(cmv_models **out, const char *path)
{
	cmv_models *m;
	char found[PATH_MAX];
	const char *file = path;
	bool from_env = false;
	int error = 0;

	CMV_ASSERT_ARG(out);
	*out = NULL;
	if (!(m = cmv__calloc(1, sizeof(*m))))
		return cmv_error__oom();
	for (size_t i = 0; i < CMV_ARRAY_SIZE(builtin) && !error; i++)
		error = push(m, &builtin[i]);
	if (!file) {
		/* no file anywhere is no error: the built-ins alone; a named one must exist */
		if (user_path(found, sizeof(found), &from_env) == 0 && (from_env || exists(found)))
			file = found;
		cmv_error_clear();
	}
	if (!error && file && *file)
		error = load_file(m, file);
	if (error < 0) {
		cmv_models_free(m);
		return error;
	}
	*out = m;
	return 0;
}

/* ---- ids cmv does not know: resolved by family ---------------------------- */

/* The family of an id: "claude", "gpt", "o" (o1, o3-mini, ...), "gemini", or NULL. */
static const char *family_of(const char *id)
{
	if (!strncmp(id, "claude-", 7) && id[7])
		return "claude";
	if (!strncmp(id, "gpt-", 4) && id[4])
		return "gpt";
	if (id[0] == 'o' && id[1] >= '0' && id[1] <= '9')
		return "o";
	if (!strncmp(id, "gemini-", 7) && id[7])
		return "gemini";
	return NULL;
}

/* How many leading dash-separated words a and b share. */
static size_t shared_words(const char *a, const char *b)
{
	size_t n = 0;

	for (;;) {
		size_t la = strcspn(a, "-"), lb = strcspn(b, "-");
		if (la != lb || memcmp(a, b, la))
			return n;
		n++;
		if (!a[la] || !b[lb])
			return n;
		a += la + 1;
		b += lb + 1;
	}
}

int cmv_models_resolve(const cmv_model **out, cmv_models *m, const char *name)
{
	const cmv_model *best = NULL;
	const char *fam;
	size_t best_words = 0;
	cmv_model *p, **grown;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(m);
	CMV_ASSERT_ARG(name);
	if ((error = cmv_models_find(out, m, name)) != CMV_ENOTFOUND)
		return error;
	for (size_t i = 0; i < m->n_prov; i++)
		if (!strcmp(m->prov[i]->id, name)) {
			cmv_error_clear();
			*out = m->prov[i];
			return 0;
		}
	/* no family: cmv_models_find's message (with close ids) stands */
	if (!(fam = family_of(name)) || strlen(name) > 200)
		return error;
	/* the built-ins only: the table lists each family newest first, so the first best match wins */
	for (size_t i = 0; i < CMV_ARRAY_SIZE(builtin); i++) {
		const char *f = family_of(builtin[i].id);
		size_t k;
		if (!f || strcmp(f, fam))
			continue;
		k = shared_words(builtin[i].id, name);
		if (!best || k > best_words) {
			best = &builtin[i];
			best_words = k;
		}
	}
	if (!best)
		return error;
	cmv_error_clear();
	/* one allocation: the profile, then its id */
	if (!(p = cmv__calloc(1, sizeof(*p) + strlen(name) + 1)))
		return cmv_error__oom();
	if (!(grown = realloc(m->prov, (m->n_prov + 1) * sizeof(*grown)))) {
		free(p);
		return cmv_error__oom();
	}
	m->prov = grown;
	*p = *best;
	memcpy(p + 1, name, strlen(name) + 1);
	p->id = (const char *)(p + 1);
	p->aliases = "";
	/* another model's price would be a guess */
	p->prices = (cmv_model_prices){ -1, -1, -1, -1 };
	p->prices_as_of = "";
	p->provisional = true;
	p->assumed_from = best->id;
	p->source = "provisional: cmv does not know this id; the figures are its family's newest built-in profile's";
	m->prov[m->n_prov++] = p;
	*out = p;
	return 0;
}

/* 1000000 -> "1,000,000" */
static const char *grouped(char buf[32], uint64_t v)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v), o = 0;

	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

int cmv_model_assumed(cmv_buf *out, const cmv_model *model)
{
	char w[32], o[32];
	const char *fam;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(model);
	cmv_buf_clear(out);
	if (!model->provisional || !model->assumed_from)
		return 0;
	fam = family_of(model->id);
	return cmv_buf_printf(out, "unknown model '%s': counted as the %s family (%s's window %s, output %s, tokenizer %s)",
			      model->id, fam && !strcmp(fam, "o") ? "o-series" : fam ? fam : "?", model->assumed_from,
			      grouped(w, model->context_window), grouped(o, model->max_output),
			      model->exact ? model->tokenizer : "approximation");
}

/* ---- editing the user's file (cmv models add|set|remove) ------------------ */

static bool is_number_field(const char *k)
{
	static const char *const nums[] = { "context_window", "max_output", "per_request", "per_message",
					    "per_block", "image_tokens", "token_factor", "margin" };
	for (size_t i = 0; i < CMV_ARRAY_SIZE(nums); i++)
		if (!strcmp(k, nums[i]))
			return true;
	return false;
}

static bool is_bool_field(const char *k)
{
	return !strcmp(k, "exact") || !strcmp(k, "tools") || !strcmp(k, "images");
}

/* A value as the text a shell gives it, into the entry's JSON (under obj, key k). */
static int set_field(cJSON *entry, const char *id, const char *name, const char *value)
{
	const char *k = name;
	cJSON *v = NULL, *obj = entry;
	char *end;

	if (!name || !*name || !value)
		return cmv_error__set(CMV_EINVALID, "model '%s': a field needs a name and a value", id);
	if (!strcmp(k, "window"))
		k = "context_window";
	else if (!strcmp(k, "output"))
		k = "max_output";
	if (!strcmp(k, "id") || !strcmp(k, "base"))
		return cmv_error__set(CMV_EINVALID, "model '%s': '%s' is not a field to set (add ID --like BASE makes a copy)",
				      id, k);
	if (!strcmp(k, "api_key") || !strcmp(k, "key") || !strcmp(k, "token"))
		return cmv_error__set(CMV_EINVALID,
				      "model '%s': '%s': a profile never holds a secret; name the variable that does with 'api_key_env'",
				      id, k);
	if (!strncmp(k, "prices.", 7)) {
		k += 7;
		if (!(obj = cJSON_GetObjectItemCaseSensitive(entry, "prices")) &&
		    !(obj = cJSON_AddObjectToObject(entry, "prices")))
			return cmv_error__oom();
		if (!strcmp(value, "null") || !strcmp(value, "-")) {
			v = cJSON_CreateNull();
		} else {
			double d = strtod(value, &end);
			if (end == value || *end)
				return cmv_error__set(CMV_EINVALID, "model '%s': price '%s' must be a number of dollars per million tokens, or null, not '%s'",
						      id, k, value);
			v = cJSON_CreateNumber(d);
		}
	} else if (is_number_field(k)) {
		double d = strtod(value, &end);
		if (end == value || *end)
			return cmv_error__set(CMV_EINVALID, "model '%s': '%s' must be a number, not '%s'", id, k, value);
		v = cJSON_CreateNumber(d);
	} else if (is_bool_field(k)) {
		if (strcmp(value, "true") && strcmp(value, "false"))
			return cmv_error__set(CMV_EINVALID, "model '%s': '%s' must be true or false, not '%s'", id, k, value);
		v = cJSON_CreateBool(!strcmp(value, "true"));
	} else if (!strcmp(k, "aliases")) {
		const char *p = value;
		if (!(v = cJSON_CreateArray()))
			return cmv_error__oom();
		while (*p) {
			size_t len = strcspn(p, ",");
			cJSON *a;
			char *one = cmv__calloc(1, len + 1);
			if (!one) {
				cJSON_Delete(v);
				return cmv_error__oom();
			}
			memcpy(one, p, len);
			a = cJSON_CreateString(one);
			free(one);
			if (!a || !cJSON_AddItemToArray(v, a)) {
				cJSON_Delete(a);
				cJSON_Delete(v);
				return cmv_error__oom();
			}
			p += len + (p[len] == ',');
		}
	} else {
		/* a string field; an unknown name is refused when the result is loaded, with the file's message */
		v = cJSON_CreateString(value);
	}
	if (!v)
		return cmv_error__oom();
	if (cJSON_GetObjectItemCaseSensitive(obj, k) ? !cJSON_ReplaceItemInObjectCaseSensitive(obj, k, v)
						     : !cJSON_AddItemToObject(obj, k, v)) {
		cJSON_Delete(v);
		return cmv_error__oom();
	}
	return 0;
}

static cJSON *file_entry(cJSON *list, const char *id, int *index)
{
	int i = 0;
	for (cJSON *e = list ? list->child : NULL; e; e = e->next, i++) {
		const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "id");
		if (cJSON_IsString(eid) && !strcmp(eid->valuestring, id)) {
			*index = i;
			return e;
		}
	}
	return NULL;
}

int cmv_models_edit(const char *path, cmv_models_op op, const char *id, const char *base,
		    const cmv_model_field *fields, size_t n_fields)
{
	cmv_buf text = CMV_BUF_INIT(MODELS_FILE_MAX), check = CMV_BUF_INIT(MODELS_FILE_MAX);
	cmv_models *now = NULL, *after = NULL;
	const cmv_model *found = NULL;
	cJSON *root = NULL, *list, *entry;
	char *json = NULL;
	int error, index = -1;

	CMV_ASSERT_ARG(path);
	CMV_ASSERT_ARG(id);
	if (op < CMV_MODELS_ADD || op > CMV_MODELS_REMOVE)
		return cmv_error__set(CMV_EINVALID, "unknown edit of the model file (%d)", (int)op);
	if (!*id || strlen(id) > 200 || strchr(id, ','))
		return cmv_error__set(CMV_EINVALID, "'%s' is not a model id (1 to 200 bytes, no comma)", id);
	/* the registry as it stands: an unreadable or malformed file is not edited over */
	if ((error = cmv_models_load(&now, exists(path) ? path : "")) < 0)
		goto out;
	error = exists(path) ? cmv__read_file(&text, path) : 0;
	if (error < 0)
		goto out;
	if (text.size) {
		if (!(root = cJSON_ParseWithLength(text.ptr, text.size))) {
			error = cmv_error__set(CMV_EINVALID, "%s: malformed JSON", path);
			goto out;
		}
	} else if (!(root = cJSON_CreateObject()) || !cJSON_AddArrayToObject(root, "models")) {
		error = cmv_error__oom();
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(root, "models");
	entry = file_entry(list, id, &index);
	switch (op) {
	case CMV_MODELS_ADD:
		if (cmv_models_find(&found, now, id) == 0) {
			error = cmv_error__set(CMV_EINVALID, "model '%s' exists (%s); change it with 'cmv models set'", id,
					       entry ? path : "built in");
			goto out;
		}
		cmv_error_clear();
		if (!base || cmv_models_find(&found, now, base) < 0) {
			error = base ? cmv_error_last()->code : cmv_error__set(CMV_EINVALID, "model '%s': add needs a model to copy (--like)", id);
			goto out;
		}
		if (!(entry = cJSON_CreateObject()) || !cJSON_AddItemToArray(list, entry)) {
			cJSON_Delete(entry);
			error = cmv_error__oom();
			goto out;
		}
		/* base names the profile, canonical: an alias or a dated id is not one the file format takes */
		if (!cJSON_AddStringToObject(entry, "id", id) || !cJSON_AddStringToObject(entry, "base", found->id)) {
			error = cmv_error__oom();
			goto out;
		}
		break;
	case CMV_MODELS_SET:
		if (!entry) {
			/* a built-in gets an entry that overrides it; an alias or dated id is not the entry's id */
			if (cmv_models_find(&found, now, id) < 0 || strcmp(found->id, id)) {
				error = found ? cmv_error__set(CMV_ENOTFOUND, "'%s' is another name of '%s': set that", id, found->id)
					      : cmv_error_last()->code;
				goto out;
			}
			if (!(entry = cJSON_CreateObject()) || !cJSON_AddItemToArray(list, entry)) {
				cJSON_Delete(entry);
				error = cmv_error__oom();
				goto out;
			}
			if (!cJSON_AddStringToObject(entry, "id", id)) {
				error = cmv_error__oom();
				goto out;
			}
		}
		if (!n_fields) {
			error = cmv_error__set(CMV_EINVALID, "model '%s': nothing to set", id);
			goto out;
		}
		break;
	case CMV_MODELS_REMOVE:
		if (!entry) {
			error = cmv_error__set(CMV_ENOTFOUND, "model '%s' has no entry in %s%s", id, path,
					       cmv_models_find(&found, now, id) == 0 ? " (a built-in cannot be removed)" : "");
			goto out;
		}
		cJSON_DeleteItemFromArray(list, index);
		break;
	}
	cmv_error_clear();
	for (size_t i = 0; op != CMV_MODELS_REMOVE && i < n_fields; i++)
		if ((error = set_field(entry, id, fields[i].name, fields[i].value)) < 0)
			goto out;
	if (!(json = cJSON_Print(root))) {
		error = cmv_error__oom();
		goto out;
	}
	/* the new file must load as it will be read: the message names the file and the entry */
	if ((error = cmv_buf_puts(&check, json)) < 0 || (error = cmv_buf_putc(&check, '\n')) < 0)
		goto out;
	if (!(after = cmv__calloc(1, sizeof(*after)))) {
		error = cmv_error__oom();
		goto out;
	}
	for (size_t i = 0; i < CMV_ARRAY_SIZE(builtin) && !error; i++)
		error = push(after, &builtin[i]);
	if (error < 0 || (error = load_text(after, path, &check)) < 0)
		goto out;
	error = cmv__file_write_atomic(path, check.ptr, check.size, 0600);
out:
	cmv_models_free(now);
	cmv_models_free(after);
	cJSON_free(json);
	cJSON_Delete(root);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&check);
	return error;
}
