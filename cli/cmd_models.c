/* SPDX-License-Identifier: MIT */
/* cmv models [--json]: the model registry (built-in profiles and the user's file). */
#include <stdlib.h>
#include "cmd.h"

static bool m_json;
const cli_opt opts_models[] = {
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &m_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

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

CMD(models)
{
	cmv_models *models = NULL;
	cJSON *arr = NULL;

	(void)ctx;
	CLI_PARSE("models");
	if (cmv_models_load(&models, NULL) < 0)
		return cli_fail("cannot load the model registry");
	if (m_json)
		arr = cJSON_CreateArray();
	else
		printf("%-24s %-9s %-16s %-15s %9s %7s %7s %7s  %s\n", "MODEL", "PROVIDER", "API",
		       "TOKENIZER", "WINDOW", "OUTPUT", "$IN/M", "$OUT/M", "COUNT");
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
			cJSON_AddItemToArray(arr, o);
		} else {
			char a[16], b[16];
			printf("%-24s %-9s %-16s %-15s %9llu %7llu %7s %7s  %s\n", m->id, m->provider,
			       cmv_api_name(m->api), m->tokenizer, (unsigned long long)m->context_window,
			       (unsigned long long)m->max_output, price(a, m->prices.input),
			       price(b, m->prices.output), m->exact ? "exact" : "approx.");
		}
	}
	cmv_models_free(models);
	return m_json ? cli_print_json(arr) : EXIT_OK;
}
