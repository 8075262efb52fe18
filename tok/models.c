/* SPDX-License-Identifier: MIT */
/*
 * The model registry: built-in profiles plus the user's JSON file.
 *
 * Where the figures come from
 *  - Windows, output limits and list prices are the providers' published
 *    figures as of prices_as_of; they change, so every field can be
 *    overridden from the user's file without a rebuild.
 *  - Exact tokenizers: OpenAI models use o200k_base (GPT-4o and later) or
 *    cl100k_base (GPT-4, GPT-3.5); Llama, Mistral 7B and Gemma 3 their own.
 *  - Claude: o200k_base times 1.25, plus 20 tokens per content block,
 *    fitted on 418 request-to-request prompt growths (usage.input_tokens +
 *    cache tokens) in the Claude Code sessions of ../shared/transcripts;
 *    tests/pager/approx_test.sh measures it again. docs/tokenizers.md has
 *    the error.
 *  - Gemini 2.x and 3 use the vocabulary published as Gemma 3's (the Gemma
 *    3 report says it is Gemini 2.0's); not checked against countTokens,
 *    hence inexact with a small margin.
 *  - Per-message and per-request overheads for OpenAI are the cookbook's
 *    (3 per message, 3 to prime the reply); the others are estimates.
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

static const cmv_model builtin[] = {
	/* OpenAI */
	{ "gpt-4o", "openai", "gpt-4o-2024-08-06,gpt-4o-2024-11-20,chatgpt-4o-latest", OAI_CHAT,
	  "o200k_base", true, 1, 0.01, 128000, 16384, true, true, 3, 3, 3, 765,
	  { 2.50, 10.00, 1.25, 0 }, "2025-11", "" },
	{ "gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  128000, 16384, true, true, 3, 3, 3, 765, { 0.15, 0.60, 0.075, 0 }, "2025-11", "" },
	{ "gpt-4.1", "openai", "gpt-4.1-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01, 1047576,
	  32768, true, true, 3, 3, 3, 765, { 2.00, 8.00, 0.50, 0 }, "2025-11", "" },
	{ "gpt-4.1-mini", "openai", "gpt-4.1-mini-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  1047576, 32768, true, true, 3, 3, 3, 765, { 0.40, 1.60, 0.10, 0 }, "2025-11", "" },
	{ "gpt-4.1-nano", "openai", "gpt-4.1-nano-2025-04-14", OAI_CHAT, "o200k_base", true, 1, 0.01,
	  1047576, 32768, true, true, 3, 3, 3, 765, { 0.10, 0.40, 0.025, 0 }, "2025-11", "" },
	{ "gpt-5", "openai", "gpt-5-2025-08-07,gpt-5-chat-latest", CMV_API_OPENAI_RESPONSES,
	  "o200k_base", true, 1, 0.01, 400000, 128000, true, true, 3, 3, 3, 765,
	  { 1.25, 10.00, 0.125, 0 }, "2025-11", "" },
	{ "gpt-5.1", "openai", "gpt-5.1-2025-11-13", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 400000, 128000, true, true, 3, 3, 3, 765, { 1.25, 10.00, 0.125, 0 }, "2025-11", "" },
	{ "gpt-5-mini", "openai", "gpt-5-mini-2025-08-07", CMV_API_OPENAI_RESPONSES, "o200k_base",
	  true, 1, 0.01, 400000, 128000, true, true, 3, 3, 3, 765, { 0.25, 2.00, 0.025, 0 },
	  "2025-11", "" },
	{ "gpt-5-nano", "openai", "gpt-5-nano-2025-08-07", CMV_API_OPENAI_RESPONSES, "o200k_base",
	  true, 1, 0.01, 400000, 128000, true, true, 3, 3, 3, 765, { 0.05, 0.40, 0.005, 0 },
	  "2025-11", "" },
	{ "o1", "openai", "o1-2024-12-17", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01,
	  200000, 100000, true, true, 3, 3, 3, 765, { 15.00, 60.00, 7.50, 0 }, "2025-11", "" },
	{ "o3", "openai", "o3-2025-04-16", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1, 0.01,
	  200000, 100000, true, true, 3, 3, 3, 765, { 2.00, 8.00, 0.50, 0 }, "2025-11", "" },
	{ "o3-mini", "openai", "o3-mini-2025-01-31", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 200000, 100000, true, false, 3, 3, 3, 0, { 1.10, 4.40, 0.55, 0 }, "2025-11", "" },
	{ "o4-mini", "openai", "o4-mini-2025-04-16", CMV_API_OPENAI_RESPONSES, "o200k_base", true, 1,
	  0.01, 200000, 100000, true, true, 3, 3, 3, 765, { 1.10, 4.40, 0.275, 0 }, "2025-11", "" },
	{ "gpt-4-turbo", "openai", "gpt-4-turbo-2024-04-09", OAI_CHAT, "cl100k_base", true, 1, 0.01,
	  128000, 4096, true, true, 3, 3, 3, 765, { 10.00, 30.00, -1, -1 }, "2025-11", "" },
	{ "gpt-4", "openai", "gpt-4-0613", OAI_CHAT, "cl100k_base", true, 1, 0.01, 8192, 4096, true,
	  false, 3, 3, 3, 0, { 30.00, 60.00, -1, -1 }, "2025-11", "" },
	{ "gpt-3.5-turbo", "openai", "gpt-3.5-turbo-0125", OAI_CHAT, "cl100k_base", true, 1, 0.01,
	  16385, 4096, true, false, 3, 3, 3, 0, { 0.50, 1.50, -1, -1 }, "2025-11", "" },
	/* Anthropic */
	{ "claude-opus-4-5", "anthropic", "claude-opus-4-5-20251101", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 5.00, 25.00, 0.50, 6.25 }, "2025-11", CLAUDE_NOTE },
	{ "claude-opus-4-1", "anthropic", "claude-opus-4-1-20250805", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 32000, true, true, 0, 3, 20, 1600,
	  { 15.00, 75.00, 1.50, 18.75 }, "2025-11", CLAUDE_NOTE },
	{ "claude-opus-4", "anthropic", "claude-opus-4-20250514,claude-opus-4-0", ANTH, "o200k_base",
	  false, CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 32000, true, true, 0, 3, 20, 1600,
	  { 15.00, 75.00, 1.50, 18.75 }, "2025-11", CLAUDE_NOTE },
	{ "claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5-20250929", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 3.00, 15.00, 0.30, 3.75 }, "2025-11", CLAUDE_NOTE },
	{ "claude-sonnet-4", "anthropic", "claude-sonnet-4-20250514,claude-sonnet-4-0", ANTH,
	  "o200k_base", false, CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 3.00, 15.00, 0.30, 3.75 }, "2025-11", CLAUDE_NOTE },
	{ "claude-haiku-4-5", "anthropic", "claude-haiku-4-5-20251001", ANTH, "o200k_base", false,
	  CLAUDE_FACTOR, CLAUDE_MARGIN, 200000, 64000, true, true, 0, 3, 20, 1600,
	  { 1.00, 5.00, 0.10, 1.25 }, "2025-11", CLAUDE_NOTE },
	/* Google */
	{ "gemini-3-pro-preview", "google", "gemini-3-pro", GEM, "gemma3", false, 1, 0.05, 1048576,
	  65536, true, true, 0, 4, 4, 258, { 2.00, 12.00, 0.20, -1 }, "2025-11", GEMINI_NOTE },
	{ "gemini-2.5-pro", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true, true,
	  0, 4, 4, 258, { 1.25, 10.00, 0.125, -1 }, "2025-11", GEMINI_NOTE },
	{ "gemini-2.5-flash", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true,
	  true, 0, 4, 4, 258, { 0.30, 2.50, 0.03, -1 }, "2025-11", GEMINI_NOTE },
	{ "gemini-2.5-flash-lite", "google", "", GEM, "gemma3", false, 1, 0.05, 1048576, 65536, true,
	  true, 0, 4, 4, 258, { 0.10, 0.40, 0.01, -1 }, "2025-11", GEMINI_NOTE },
	/* Meta: open weights, served anywhere; no list price */
	{ "llama-3.1-8b", "meta", "llama-3.1-8b-instruct,meta-llama/Llama-3.1-8B-Instruct", OAI_CHAT,
	  "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "" },
	{ "llama-3.1-70b", "meta", "llama-3.1-70b-instruct,meta-llama/Llama-3.1-70B-Instruct",
	  OAI_CHAT, "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "" },
	{ "llama-3.1-405b", "meta", "llama-3.1-405b-instruct", OAI_CHAT, "llama3", true, 1, 0, 131072,
	  4096, true, false, 1, 5, 0, 0, NOPRICE, "", "" },
	{ "llama-3.2-3b", "meta", "llama-3.2-3b-instruct", OAI_CHAT, "llama3", true, 1, 0, 131072,
	  4096, true, false, 1, 5, 0, 0, NOPRICE, "", "" },
	{ "llama-3.3-70b", "meta", "llama-3.3-70b-instruct,meta-llama/Llama-3.3-70B-Instruct",
	  OAI_CHAT, "llama3", true, 1, 0, 131072, 4096, true, false, 1, 5, 0, 0, NOPRICE, "", "" },
	{ "llama-2-7b-chat", "meta", "llama-2-13b-chat,llama-2-70b-chat", OAI_CHAT, "llama2", true, 1,
	  0, 4096, 1024, false, false, 1, 4, 0, 0, NOPRICE, "", "" },
	/* Mistral: the 32k SentencePiece vocabulary (the Tekken models are not public here) */
	{ "mistral-7b-instruct-v0.2", "mistral", "mistral-7b-instruct-v0.1,open-mistral-7b", OAI_CHAT,
	  "mistral-7b-v0.1", true, 1, 0, 32768, 4096, false, false, 1, 4, 0, 0, NOPRICE, "", "" },
	{ "mixtral-8x7b-instruct", "mistral", "open-mixtral-8x7b,mixtral-8x7b-instruct-v0.1",
	  OAI_CHAT, "mistral-7b-v0.1", true, 1, 0, 32768, 4096, false, false, 1, 4, 0, 0, NOPRICE,
	  "", "" },
	/* Gemma 3 */
	{ "gemma-3-27b", "google", "gemma-3-27b-it,gemma-3-12b,gemma-3-12b-it,gemma-3-4b,gemma-3-4b-it",
	  GEM, "gemma3", true, 1, 0, 131072, 8192, false, true, 1, 4, 0, 256, NOPRICE, "", "" },
	{ "gemma-3-1b", "google", "gemma-3-1b-it", GEM, "gemma3", true, 1, 0, 32768, 8192, false,
	  false, 1, 4, 0, 0, NOPRICE, "", "" },
};

struct cmv_models {
	cmv_model *v;
	size_t n, cap;
	char **strings; /* owned copies of user-file strings */
	size_t n_strings, cap_strings;
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

static int load_file(cmv_models *m, const char *path)
{
	cmv_buf text = CMV_BUF_INIT((size_t)4 << 20);
	cJSON *root = NULL, *list, *e;
	int error;
	where w = { path, 0, NULL };

	error = cmv__read_file(&text, path);
	/* a models file that was named but is missing is an I/O error, like an unreadable one */
	if (error == CMV_ENOTFOUND)
		error = cmv_error__set(CMV_EIO, "%s: no such file", path);
	else if (error == CMV_ETOOBIG)
		error = cmv_error__set(CMV_EINVALID, "%s: over 4 MiB, not a models file", path);
	if (error < 0)
		goto out;
	if (!text.ptr || !(root = cJSON_ParseWithLength(text.ptr, text.size))) {
		size_t line = 1;
		const char *at = cJSON_GetErrorPtr();
		for (const char *p = text.ptr; p && at && p < at && p < text.ptr + text.size; p++)
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
	cmv_buf_dispose(&text);
	return error;
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

int cmv_models_load(cmv_models **out, const char *path)
{
	cmv_models *m;
	char found[PATH_MAX];
	const char *file = path;
	int error = 0;

	CMV_ASSERT_ARG(out);
	*out = NULL;
	if (!(m = cmv__calloc(1, sizeof(*m))))
		return cmv_error__oom();
	for (size_t i = 0; i < CMV_ARRAY_SIZE(builtin) && !error; i++)
		error = push(m, &builtin[i]);
	if (!file) {
		const char *env = getenv("CMV_MODELS"), *xdg = getenv("XDG_CONFIG_HOME"),
			   *home = getenv("HOME");
		if (env && *env)
			file = env;
		else if (xdg && *xdg)
			snprintf(found, sizeof(found), "%s/cmv/models.json", xdg), file = found;
		else if (home && *home)
			snprintf(found, sizeof(found), "%s/.config/cmv/models.json", home), file = found;
		if (file == found && !exists(found))
			file = NULL;
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
