/* SPDX-License-Identifier: MIT */
/*
 * Model handles: a reference (registry key or inline descriptor) resolved
 * once into what every counting and paging call needs: the profile with the
 * store's calibration, its tokenizer, and the signature usage is keyed by.
 *
 * Invariant: one model, one signature. A key, an alias, a dated id and a
 * descriptor naming the same profile at its provider's public endpoint all
 * give "provider/id"; only another endpoint adds "@base_url" (a self-hosted
 * copy bills differently, or not at all).
 */
#include <ctype.h>
#include <stdio.h>
#include "host_priv.h"

int cmv_host__format(cmv_render_target *out, const char *format)
{
	if (format && !strcmp(format, "openai")) {
		*out = CMV_RENDER_OPENAI_CHAT;
		return 0;
	}
	return cmv_render_target_parse(out, format ? format : "");
}

/* The provider's public endpoint: a descriptor that names it is the model itself. */
static const char *public_endpoint(const char *provider)
{
	if (!provider)
		return NULL;
	if (!strcmp(provider, "openai"))
		return "https://api.openai.com/v1";
	if (!strcmp(provider, "anthropic"))
		return "https://api.anthropic.com/v1";
	if (!strcmp(provider, "google"))
		return "https://generativelanguage.googleapis.com/v1beta";
	return NULL;
}

/* Two URLs the same endpoint: equal but for case of the scheme and host, and trailing slashes. */
static bool same_url(const char *a, const char *b)
{
	size_t la, lb;
	if (!a || !b)
		return false;
	la = strlen(a);
	lb = strlen(b);
	while (la && a[la - 1] == '/')
		la--;
	while (lb && b[lb - 1] == '/')
		lb--;
	return la == lb && !strncasecmp(a, b, la);
}

/* A field name that holds a secret: never taken, so never stored or logged. */
static bool secret_key(const char *k)
{
	static const char *const bad[] = { "key", "secret", "password", "token", "authorization", "bearer", NULL };
	char low[64];
	size_t i;
	if (!strcmp(k, "api_key_env") || !strcmp(k, "max_tokens") || !strcmp(k, "tokenizer"))
		return false;
	for (i = 0; k[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)k[i]);
	low[i] = '\0';
	for (i = 0; bad[i]; i++)
		if (strstr(low, bad[i]))
			return true;
	return false;
}

static int check_descriptor(const cJSON *j)
{
	for (const cJSON *c = j->child; c; c = c->next) {
		if (c->string && secret_key(c->string))
			return cmv_error__set(CMV_EINVALID,
					      "model descriptor: refusing field '%s': cmv never takes secrets (name the "
					      "variable that holds the key with api_key_env)",
					      c->string);
		if (cJSON_IsObject(c)) {
			int error = check_descriptor(c);
			if (error < 0)
				return error;
		}
	}
	return 0;
}

static uint64_t num_opt(const cJSON *opts, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, k);
	/* past 1e18 the cast would be undefined, and no count is that large */
	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e18 ? (uint64_t)v->valuedouble : 0;
}

/* A profile for a model the registry does not know: a built-in of the same API, with the descriptor's tokenizer and window. */
static int unknown_profile(cmv_model_handle *h, const char *id, const char *provider, const cJSON *opts)
{
	const char *tokenizer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "tokenizer"));
	const char *apiname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "api"));
	uint64_t window = num_opt(opts, "context_window");
	cmv_api api = provider && !strcmp(provider, "anthropic") ? CMV_API_ANTHROPIC
		: provider && !strcmp(provider, "google")    ? CMV_API_GEMINI
							     : CMV_API_OPENAI_CHAT;
	const cmv_model *base = NULL;

	if (!tokenizer || !window)
		return cmv_error__set(CMV_ENOTFOUND,
				      "model '%s' is not in the registry: a descriptor for it needs options.tokenizer "
				      "and options.context_window (or add it with 'cmv models add')",
				      id);
	if (!cmv_tok_is_known(tokenizer))
		return cmv_error__set(CMV_EINVALID, "model descriptor: unknown tokenizer '%s'", tokenizer);
	if (apiname) {
		cmv_render_target t;
		if (cmv_host__format(&t, apiname) < 0)
			return CMV_EINVALID;
		api = t == CMV_RENDER_ANTHROPIC ? CMV_API_ANTHROPIC
			: t == CMV_RENDER_GEMINI ? CMV_API_GEMINI
			: t == CMV_RENDER_OPENAI_RESPONSES ? CMV_API_OPENAI_RESPONSES
							     : CMV_API_OPENAI_CHAT;
	}
	for (size_t i = 0; i < cmv_models_count(h->models) && !base; i++)
		if (cmv_models_at(h->models, i)->api == api)
			base = cmv_models_at(h->models, i);
	if (!base)
		return cmv_error__set(CMV_ENOTFOUND, "no built-in profile speaks %s", cmv_api_name(api));
	if (!(h->own_id = cmv__strdup(id)) || !(h->own_tokenizer = cmv__strdup(tokenizer)))
		return cmv_error__oom();
	h->profile = *base;
	h->profile.id = h->own_id;
	h->profile.aliases = "";
	h->profile.tokenizer = h->own_tokenizer;
	h->profile.exact = false;
	h->profile.token_factor = 1;
	h->profile.context_window = window;
	h->profile.max_output = num_opt(opts, "max_output") ? num_opt(opts, "max_output")
		: base->max_output < window / 4 ? base->max_output : window / 4;
	h->profile.prices.input = h->profile.prices.output = -1;
	h->profile.prices.cache_read = h->profile.prices.cache_write = -1;
	h->profile.prices_as_of = "";
	h->profile.provisional = true;
	h->profile.assumed_from = base->id;
	h->profile.source = "the model descriptor";
	return 0;
}

static int resolve_descriptor(cmv_model_handle *h, const char *ref)
{
	cJSON *j = cJSON_Parse(ref);
	const char *id, *provider, *url;
	const cJSON *opts;
	const cmv_model *m = NULL;
	int error = 0;

	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return cmv_error__set(CMV_EINVALID, "model descriptor is not a JSON object");
	}
	if ((error = check_descriptor(j)) < 0)
		goto done;
	id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
	provider = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "provider"));
	url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "base_url"));
	opts = cJSON_GetObjectItemCaseSensitive(j, "options");
	if (!id || !*id) {
		error = cmv_error__set(CMV_EINVALID, "model descriptor needs a \"model\" string");
		goto done;
	}
	if (cmv_models_resolve(&m, h->models, id) == 0) {
		h->profile = *m;
	} else if (cmv_error_last() && cmv_error_last()->code == CMV_ENOTFOUND) {
		cmv_error_clear();
		if ((error = unknown_profile(h, id, provider, opts)) < 0)
			goto done;
	} else {
		error = CMV_ERROR;
		goto done;
	}
	if (provider && *provider && strcmp(provider, h->profile.provider)) {
		if (!(h->own_provider = cmv__strdup(provider))) {
			error = cmv_error__oom();
			goto done;
		}
		h->profile.provider = h->own_provider;
	}
	if (url && *url && !same_url(url, h->profile.base_url) && !same_url(url, public_endpoint(h->profile.provider))) {
		size_t n = strlen(url);
		while (n > 1 && url[n - 1] == '/')
			n--;
		if (!(h->own_base_url = cmv__malloc(n + 1))) {
			error = cmv_error__oom();
			goto done;
		}
		memcpy(h->own_base_url, url, n);
		h->own_base_url[n] = '\0';
		h->profile.base_url = h->own_base_url;
	}
	if (num_opt(opts, "context_window"))
		h->profile.context_window = num_opt(opts, "context_window");
	if (num_opt(opts, "max_output"))
		h->profile.max_output = num_opt(opts, "max_output");
	h->max_tokens = (uint32_t)num_opt(opts, "max_tokens");
	if (!(h->ref = cJSON_PrintUnformatted(j)))
		error = cmv_error__oom();
done:
	cJSON_Delete(j);
	return error;
}

int cmv_model_handle_open(cmv_model_handle **out, cmv_repo *repo, const char *ref)
{
	cmv_model_handle *h;
	cmv_buf sig = CMV_BUF_INIT(8192);
	cmv_model raw;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(ref);
	*out = NULL;
	if (!(h = cmv__calloc(1, sizeof(*h))))
		return cmv_error__oom();
	if ((error = cmv_models_load(&h->models, NULL)) < 0)
		goto fail;
	while (isspace((unsigned char)*ref))
		ref++;
	if (*ref == '{') {
		if ((error = resolve_descriptor(h, ref)) < 0)
			goto fail;
	} else {
		const cmv_model *m;
		if ((error = cmv_models_resolve(&m, h->models, ref)) < 0)
			goto fail;
		h->profile = *m;
		if (!(h->ref = cmv__strdup(m->id))) {
			error = cmv_error__oom();
			goto fail;
		}
	}
	/* a different endpoint is another bill: it keys usage apart */
	if ((error = cmv_buf_printf(&sig, "%s/%s", h->profile.provider, h->profile.id)) < 0 ||
	    (h->own_base_url && (error = cmv_buf_printf(&sig, "@%s", h->own_base_url)) < 0))
		goto fail;
	if (!(h->signature = cmv_buf_detach(&sig))) {
		error = cmv_error__oom();
		goto fail;
	}
	if ((error = cmv_tok_load(&h->tok, h->profile.tokenizer, NULL)) < 0)
		goto fail;
	raw = h->profile;
	if (repo && (error = cmv_model_calibrated(&h->profile, NULL, &raw, repo)) < 0)
		goto fail;
	if (!h->max_tokens)
		h->max_tokens = h->profile.max_output > UINT32_MAX ? UINT32_MAX : (uint32_t)h->profile.max_output;
	*out = h;
	return 0;
fail:
	cmv_buf_dispose(&sig);
	cmv_model_handle_free(h);
	return error;
}

void cmv_model_handle_free(cmv_model_handle *h)
{
	if (!h)
		return;
	cmv_tok_free(h->tok);
	cmv_models_free(h->models);
	free(h->ref);
	free(h->signature);
	free(h->own_id);
	free(h->own_provider);
	free(h->own_base_url);
	free(h->own_tokenizer);
	free(h);
}

const cmv_model *cmv_model_handle_profile(const cmv_model_handle *h)
{
	return &h->profile;
}

cmv_tok *cmv_model_handle_tok(const cmv_model_handle *h)
{
	return h->tok;
}

const char *cmv_model_handle_signature(const cmv_model_handle *h)
{
	return h->signature;
}

const char *cmv_model_handle_ref(const cmv_model_handle *h)
{
	return h->ref;
}

uint32_t cmv_model_handle_max_tokens(const cmv_model_handle *h)
{
	return h->max_tokens;
}

int cmv_materialize_for(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip,
			const cmv_model_handle *model, const cmv_pager_options *opts)
{
	CMV_ASSERT_ARG(model);
	return cmv_materialize(out, rep, repo, tip, &model->profile, model->tok, opts);
}
