/* SPDX-License-Identifier: MIT */
/*
 * cmv models [--json]: the model registry (built-in profiles and the user's
 * file), with where each profile's figures come from.
 * cmv models add ID --like BASE [--window N] [--output N] ...,
 * cmv models set ID FIELD VALUE, cmv models remove ID: edit the user's file
 * ($CMV_MODELS, else $XDG_CONFIG_HOME/cmv/models.json) through the library,
 * which checks the result as it will be loaded and writes it atomically.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"

static bool m_json, m_calibration;
static const char *m_action, *m_id, *m_field, *m_value, *m_like, *m_window, *m_output, *m_tokenizer,
	*m_base_url, *m_key_env, *m_provider, *m_api, *m_aliases, *m_note;
const cli_opt opts_models[] = {
	{ OPT_ARG_OPT, "ACTION", 0, NULL, "add, set or remove (none: list the profiles)", &m_action, NULL },
	{ OPT_ARG_OPT, "ID", 0, NULL, "the model to add, set or remove", &m_id, NULL },
	{ OPT_ARG_OPT, "FIELD", 0, NULL, "set: a field of the file format (context_window or window, max_output or output, tokenizer, prices.input, ...)", &m_field, NULL },
	{ OPT_ARG_OPT, "VALUE", 0, NULL, "set: its value (a number, true/false, text; aliases comma-separated; a price may be null)", &m_value, NULL },
	{ OPT_VALUE, "like", 0, "BASE", "add: the model to copy (required)", &m_like, NULL },
	{ OPT_VALUE, "window", 0, "N", "add: the context window, in tokens", &m_window, NULL },
	{ OPT_VALUE, "output", 0, "N", "add: the output reserve, in tokens", &m_output, NULL },
	{ OPT_VALUE, "tokenizer", 0, "T", "add: the tokenizer (see cmv tokens --help)", &m_tokenizer, NULL },
	{ OPT_VALUE, "base-url", 0, "URL", "add: where the model is served (http:// or https://)", &m_base_url, NULL },
	{ OPT_VALUE, "api-key-env", 0, "VAR", "add: the variable that holds the API key (the key is never stored)", &m_key_env, NULL },
	{ OPT_VALUE, "provider", 0, "NAME", "add: the provider", &m_provider, NULL },
	{ OPT_VALUE, "api", 0, "API", "add: openai-chat, openai-responses, anthropic or gemini", &m_api, NULL },
	{ OPT_VALUE, "aliases", 0, "A,B", "add: other ids for it", &m_aliases, NULL },
	{ OPT_VALUE, "note", 0, "TEXT", "add: a note", &m_note, NULL },
	{ OPT_FLAG, "calibration", 0, NULL, "what the store learned of each model from billed usage (ID: one model)", NULL, &m_calibration },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &m_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* The folder of the file, made when missing (the library makes the file, not its folders). */
static int make_folder(const char *path)
{
	char dir[4096];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return cli_failf("the model file's path is too long: %s", path);
	if (!(slash = strrchr(dir, '/')) || slash == dir)
		return EXIT_OK;
	slash[1] = '\0';
	if (cli_mkdirs(dir) != 0)
		return cli_failf("cannot make the folder of %s: %s", path, strerror(errno));
	return EXIT_OK;
}

static int edit(void)
{
	const cli_cmd *cmd = cli_find("models");
	cmv_buf path = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_model_field f[10];
	size_t n = 0;
	cmv_models_op op;
	int rc;

	if (!strcmp(m_action, "add"))
		op = CMV_MODELS_ADD;
	else if (!strcmp(m_action, "set"))
		op = CMV_MODELS_SET;
	else if (!strcmp(m_action, "remove"))
		op = CMV_MODELS_REMOVE;
	else
		return cli_usage_error(cmd, "unknown action '%s' (add, set or remove)", m_action);
	if (!m_id)
		return cli_usage_error(cmd, "%s needs a model id", m_action);
	if (op == CMV_MODELS_SET ? !m_field || !m_value : !!m_field)
		return cli_usage_error(cmd, op == CMV_MODELS_SET ? "set needs ID FIELD VALUE" : "%s takes options, not a FIELD",
				       m_action);
	if (op != CMV_MODELS_ADD && (m_like || m_window || m_output || m_tokenizer || m_base_url || m_key_env ||
				     m_provider || m_api || m_aliases || m_note))
		return cli_usage_error(cmd, "the options --like, --window, ... are for add; %s", op == CMV_MODELS_SET
				       ? "set takes one FIELD VALUE" : "remove takes the id only");
	if (op == CMV_MODELS_ADD && !m_like)
		return cli_usage_error(cmd, "add needs --like BASE, the model to copy");
	if (op == CMV_MODELS_SET) {
		f[n++] = (cmv_model_field){ m_field, m_value };
	} else {
#define FIELD(v, name)                                             \
	do {                                                       \
		if (v)                                             \
			f[n++] = (cmv_model_field){ name, v };     \
	} while (0)
		FIELD(m_window, "context_window");
		FIELD(m_output, "max_output");
		FIELD(m_tokenizer, "tokenizer");
		FIELD(m_base_url, "base_url");
		FIELD(m_key_env, "api_key_env");
		FIELD(m_provider, "provider");
		FIELD(m_api, "api");
		FIELD(m_aliases, "aliases");
		FIELD(m_note, "note");
#undef FIELD
	}
	if (cmv_models_user_path(&path) < 0) {
		cmv_buf_dispose(&path);
		return cli_fail("no model file");
	}
	if ((rc = make_folder(path.ptr)) == EXIT_OK) {
		if (cmv_models_edit(path.ptr, op, m_id, m_like, f, n) < 0)
			rc = cli_fail("cannot edit the model file");
		else
			printf("%s %s in %s\n", op == CMV_MODELS_ADD ? "added" : op == CMV_MODELS_SET ? "set" : "removed",
			       m_id, path.ptr);
	}
	cmv_buf_dispose(&path);
	return rc;
}

static void add_price(cJSON *o, const char *k, double v)
{
	if (v < 0)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static const char *price(char buf[16], double v)
{
	if (v < 0)
		return "-";
	snprintf(buf, 16, "%.3g", v);
	return buf;
}

typedef struct {
	const char *only;
	cJSON *arr;
	size_t shown;
} calib_list;

static int show_calibration(const cmv_calibration *c, void *payload)
{
	calib_list *l = payload;
	char when[32];
	time_t t = (time_t)c->updated;
	struct tm tm;

	if (l->only && strcmp(l->only, c->model))
		return 0;
	l->shown++;
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "unknown");
	if (l->arr) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "model", c->model);
		cJSON_AddStringToObject(o, "tokenizer", c->tokenizer);
		cJSON_AddNumberToObject(o, "pairs", (double)c->pairs);
		cJSON_AddNumberToObject(o, "requests", (double)c->requests);
		cJSON_AddNumberToObject(o, "sessions", (double)c->sessions);
		cJSON_AddBoolToObject(o, "used", c->pairs >= CMV_CALIBRATION_MIN_PAIRS);
		cJSON_AddNumberToObject(o, "factor", c->factor);
		cJSON_AddNumberToObject(o, "per_block", c->per_block);
		cJSON_AddNumberToObject(o, "per_pair", c->per_pair);
		cJSON *e = cJSON_AddObjectToObject(o, "request_error");
		cJSON_AddNumberToObject(e, "p50", c->err_p50);
		cJSON_AddNumberToObject(e, "p95", c->err_p95);
		cJSON_AddNumberToObject(e, "p99", c->err_p99);
		cJSON_AddNumberToObject(e, "max", c->err_max);
		cJSON_AddNumberToObject(o, "margin", c->margin);
		cJSON_AddNumberToObject(o, "margin_tokens", (double)c->margin_tokens);
		cJSON *pool = cJSON_AddObjectToObject(o, "session_bound");
		cJSON_AddStringToObject(pool, "provider", c->provider);
		cJSON_AddNumberToObject(pool, "sessions", (double)c->pool_sessions);
		cJSON_AddNumberToObject(pool, "mean", c->pool_mean);
		cJSON_AddNumberToObject(pool, "sd", c->pool_sd);
		cJSON_AddNumberToObject(pool, "max", c->pool_max);
		cJSON_AddNumberToObject(pool, "margin", c->pool_margin);
		cJSON_AddNumberToObject(pool, "margin_tokens", (double)c->pool_margin_tokens);
		cJSON_AddStringToObject(o, "updated", when);
		cJSON_AddItemToArray(l->arr, o);
	} else {
		printf("%s (%s): %zu pairs, %zu requests, %zu sessions%s; updated %s\n", c->model, c->tokenizer, c->pairs,
		       c->requests, c->sessions,
		       c->pairs >= CMV_CALIBRATION_MIN_PAIRS ? "" : " (too few pairs: not used yet)", when);
		printf("    billed = %.4f x tokens + %.1f per block + %.1f per pair of messages\n", c->factor, c->per_block,
		       c->per_pair);
		printf("    under-count of whole requests: p50 %.1f%%, p95 %.1f%%, p99 %.1f%%, max %.1f%%\n", c->err_p50 * 100,
		       c->err_p95 * 100, c->err_p99 * 100, c->err_max * 100);
		printf("    this model's requests alone: %.1f%% + %llu tokens cover them all\n", c->margin * 100,
		       (unsigned long long)c->margin_tokens);
		if (c->pool_sessions >= CMV_CALIBRATION_MIN_SESSIONS)
			printf("    margin kept: %.1f%% + %llu tokens, a 99%% bound for a new session over %zu sessions of %s "
			       "(%s) models (their worst under-count: mean %.1f%%, sd %.1f%%, max %.1f%%)\n",
			       c->pool_margin * 100, (unsigned long long)c->pool_margin_tokens, c->pool_sessions,
			       c->provider[0] ? c->provider : "its provider's", c->tokenizer, c->pool_mean * 100,
			       c->pool_sd * 100, c->pool_max * 100);
		else
			printf("    margin kept: the profile's, or the worst seen if larger (%zu session%s of %s models: too few "
			       "for a bound)\n",
			       c->pool_sessions, c->pool_sessions == 1 ? "" : "s", c->provider[0] ? c->provider : "its provider's");
	}
	return 0;
}

/* cmv models --calibration [ID]: what the store learned from billed usage (cmv import feeds it). */
static int calibration(cli_ctx *ctx)
{
	cmv_buf path = CMV_BUF_INIT(4096);
	cmv_repo *repo = NULL;
	calib_list l = { m_id ? m_id : m_action, m_json ? cJSON_CreateArray() : NULL, 0 };
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	int rc = EXIT_OK;

	/* a dated id or an alias names its profile's calibration */
	if (l.only && cmv_models_load(&models, NULL) == 0 && cmv_models_find(&m, models, l.only) == 0)
		l.only = m->id;
	cmv_error_clear();

	if ((ctx->store_arg ? cmv_buf_puts(&path, ctx->store_arg) : cmv_repo_discover(&path, NULL)) < 0 ||
	    cmv_repo_open(&repo, path.ptr, CMV_REPO_OPEN_READONLY) < 0)
		rc = cli_fail("cannot open the store");
	else if (cmv_calibration_foreach(repo, show_calibration, &l) < 0)
		rc = cli_fail("cannot read the calibrations");
	else if (l.only && !l.shown)
		rc = cli_failf("no calibration of '%s' in this store (cmv import a session of it)", l.only);
	else if (!l.shown && !l.arr)
		printf("no calibration yet: cmv import a Claude Code session or a Codex rollout that records usage\n");
	cmv_repo_free(repo);
	cmv_buf_dispose(&path);
	if (rc == EXIT_OK && l.arr) {
		rc = cli_print_json(l.arr);
		cmv_models_free(models);
		return rc;
	}
	cmv_models_free(models);
	cJSON_Delete(l.arr);
	return rc;
}

CMD(models)
{
	cmv_models *models = NULL;
	cJSON *arr = NULL;

	CLI_PARSE("models");
	if (m_calibration)
		return calibration(ctx);
	if (m_action)
		return edit();
	if (cmv_models_load(&models, NULL) < 0)
		return cli_fail("cannot load the model registry");
	if (m_json)
		arr = cJSON_CreateArray();
	else
		printf("%-24s %-9s %-16s %-15s %9s %7s %7s %7s  %-7s  %s\n", "MODEL", "PROVIDER", "API",
		       "TOKENIZER", "WINDOW", "OUTPUT", "$IN/M", "$OUT/M", "COUNT", "SOURCE");
	for (size_t i = 0; i < cmv_models_count(models); i++) {
		const cmv_model *m = cmv_models_at(models, i);
		if (m_json) {
			cJSON *o = cJSON_CreateObject(), *p, *al = cJSON_CreateArray();
			char **names;
			size_t n;
			cJSON_AddStringToObject(o, "id", m->id);
			cJSON_AddStringToObject(o, "provider", m->provider);
			names = cli_split_commas(m->aliases, &n);
			for (size_t k = 0; names && k < n; k++)
				cJSON_AddItemToArray(al, cJSON_CreateString(names[k]));
			free(names);
			cJSON_AddItemToObject(o, "aliases", al);
			cJSON_AddStringToObject(o, "api", cmv_api_name(m->api));
			cJSON_AddStringToObject(o, "tokenizer", m->tokenizer);
			cJSON_AddBoolToObject(o, "exact", m->exact);
			cJSON_AddNumberToObject(o, "token_factor", m->token_factor);
			cJSON_AddNumberToObject(o, "margin", m->margin);
			cJSON_AddNumberToObject(o, "context_window", (double)m->context_window);
			cJSON_AddNumberToObject(o, "max_output", (double)m->max_output);
			cJSON_AddNumberToObject(o, "input_budget", (double)cmv_model_input_budget(m));
			cJSON_AddBoolToObject(o, "tools", m->tools);
			cJSON_AddBoolToObject(o, "images", m->images);
			cJSON_AddNumberToObject(o, "per_request", m->per_request);
			cJSON_AddNumberToObject(o, "per_message", m->per_message);
			cJSON_AddNumberToObject(o, "per_block", m->per_block);
			cJSON_AddNumberToObject(o, "image_tokens", m->image_tokens);
			p = cJSON_AddObjectToObject(o, "prices");
			add_price(p, "input", m->prices.input);
			add_price(p, "output", m->prices.output);
			add_price(p, "cache_read", m->prices.cache_read);
			add_price(p, "cache_write", m->prices.cache_write);
			cJSON_AddStringToObject(o, "prices_as_of", m->prices_as_of);
			cJSON_AddStringToObject(o, "note", m->note);
			cJSON_AddStringToObject(o, "source", m->source ? m->source : "");
			cJSON_AddBoolToObject(o, "provisional", m->provisional);
			cJSON_AddItemToArray(arr, o);
		} else {
			char a[16], b[16];
			printf("%-24s %-9s %-16s %-15s %9llu %7llu %7s %7s  %-7s  %s\n", m->id, m->provider,
			       cmv_api_name(m->api), m->tokenizer, (unsigned long long)m->context_window,
			       (unsigned long long)m->max_output, price(a, m->prices.input),
			       price(b, m->prices.output), m->exact ? "exact" : "approx.", m->source ? m->source : "");
		}
	}
	cmv_models_free(models);
	return m_json ? cli_print_json(arr) : EXIT_OK;
}
