/* SPDX-License-Identifier: MIT */
/*
 * cmv shadow REF --models A,B [--prompt TEXT | --replay N]
 * [--llm-url PROVIDER=URL]... [--name PREFIX] [--budget N] [--json]: the
 * same branch sent to each model, each reply on its own new branch, and a
 * report side by side (docs/shadow.md). Keys come from the environment.
 */
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "cmd.h"

#define MAX_URLS 16

static const char *s_ref, *s_models, *s_prompt, *s_replay, *s_url, *s_name, *s_budget, *s_tools;
static bool s_json;
const cli_opt opts_shadow[] = {
	{ OPT_ARG, "REF", 0, NULL, "branch, snapshot or node", &s_ref, NULL },
	{ OPT_VALUE, "models", 'm', "A,B", "the models to compare (two or more; keys, aliases or descriptors)", &s_models, NULL },
	{ OPT_VALUE, "prompt", 'p', "TEXT", "a user message for each (default: answer the branch's last turn)", &s_prompt, NULL },
	{ OPT_VALUE, "replay", 0, "N", "answer the last N user turns again, each against the original answer", &s_replay, NULL },
	{ OPT_VALUE, "llm-url", 0, "PROVIDER=URL",
	  "send PROVIDER's (or a model id's) requests to URL (repeatable)", &s_url, NULL },
	{ OPT_VALUE, "name", 0, "PREFIX", "the new branches' prefix (default shadow/REF)", &s_name, NULL },
	{ OPT_VALUE, "tools", 0, "FILE", "tool definitions (a JSON array) each request offers (default: the branch's, "
	  "else one per tool the conversation called)", &s_tools, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "tokens each request may use (default: each model's budget)", &s_budget, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the report as JSON", NULL, &s_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static void print_calls(const cJSON *calls)
{
	const cJSON *c;
	if (!cJSON_GetArraySize(calls)) {
		printf("      calls: none\n");
		return;
	}
	cJSON_ArrayForEach(c, calls)
		printf("      call %s args %.12s key %.12s\n", cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")),
		       cJSON_GetStringValue(cJSON_GetObjectItem(c, "args_hash")),
		       cJSON_GetStringValue(cJSON_GetObjectItem(c, "key")));
}

static void print_text(const char *label, const char *t)
{
	size_t n = strcspn(t ? t : "", "\n");
	size_t cut = cli_utf8_cut(t ? t : "", n, 100);
	printf("      %s: %.*s%s\n", label, (int)cut, t ? t : "", cut < strlen(t ? t : "") ? "..." : "");
}

static void print_report(const cJSON *r)
{
	const cJSON *run, *a;
	cJSON_ArrayForEach(run, cJSON_GetObjectItem(r, "runs")) {
		const cJSON *p = cJSON_GetObjectItem(run, "prompt"), *orig = cJSON_GetObjectItem(run, "original");
		printf("turn %.0f%s", cJSON_GetObjectItem(run, "turn")->valuedouble, cJSON_IsString(p) ? ": " : "\n");
		if (cJSON_IsString(p)) {
			size_t cut = cli_utf8_cut(p->valuestring, strcspn(p->valuestring, "\n"), 100);
			printf("%.*s%s\n", (int)cut, p->valuestring, cut < strlen(p->valuestring) ? "..." : "");
		}
		if (orig) {
			printf("  original\n");
			print_text("text", cJSON_GetStringValue(cJSON_GetObjectItem(orig, "text")));
			print_calls(cJSON_GetObjectItem(orig, "tool_calls"));
		}
		cJSON_ArrayForEach(a, cJSON_GetObjectItem(run, "answers")) {
			const cJSON *cost = cJSON_GetObjectItem(a, "cost_usd"), *so = cJSON_GetObjectItem(a, "similarity_to_original");
			char price[32], sim[48] = "";
			if (cJSON_IsNumber(cost))
				snprintf(price, sizeof(price), "$%.5f", cost->valuedouble);
			else
				snprintf(price, sizeof(price), "price unknown");
			if (cJSON_IsNumber(so))
				snprintf(sim, sizeof(sim), "; %.2f like the original%s", so->valuedouble,
					 cJSON_IsTrue(cJSON_GetObjectItem(a, "tool_calls_match_original")) ? ", same calls" : "");
			printf("  %-28s %7.0f in %6.0f out  %s  %6.0f ms  %s%s\n", cJSON_GetStringValue(cJSON_GetObjectItem(a, "model")),
			       cJSON_GetObjectItem(a, "input_tokens")->valuedouble,
			       cJSON_GetObjectItem(a, "output_tokens")->valuedouble, price,
			       cJSON_GetObjectItem(a, "ms")->valuedouble, cJSON_GetStringValue(cJSON_GetObjectItem(a, "branch")), sim);
			print_text("text", cJSON_GetStringValue(cJSON_GetObjectItem(a, "text")));
			print_calls(cJSON_GetObjectItem(a, "tool_calls"));
		}
		printf("  similarity %.2f; tool calls %s\n", cJSON_GetObjectItem(run, "similarity")->valuedouble,
		       cJSON_IsTrue(cJSON_GetObjectItem(run, "tool_calls_agree")) ? "agree" : "differ");
	}
	printf("totals\n");
	cJSON_ArrayForEach(a, cJSON_GetObjectItem(r, "models")) {
		const cJSON *cost = cJSON_GetObjectItem(a, "cost_usd");
		char price[32];
		if (cJSON_IsNumber(cost))
			snprintf(price, sizeof(price), "$%.5f", cost->valuedouble);
		else
			snprintf(price, sizeof(price), "price unknown");
		printf("  %-28s %7.0f in %6.0f out  %s  %6.0f ms  %.0f calls\n", cJSON_GetStringValue(cJSON_GetObjectItem(a, "model")),
		       cJSON_GetObjectItem(a, "input_tokens")->valuedouble, cJSON_GetObjectItem(a, "output_tokens")->valuedouble,
		       price, cJSON_GetObjectItem(a, "ms")->valuedouble, cJSON_GetObjectItem(a, "tool_calls")->valuedouble);
	}
}

CMD(shadow)
{
	static const char *urls[MAX_URLS];
	size_t n_urls = 0;
	cmv_shadow_options so;
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 28);
	char **models = NULL;
	size_t n_models = 0;
	uint64_t replay = 0;
	int rc = EXIT_OK;

	/* --llm-url repeats (one per provider): taken out here, the parser keeps one value per option */
	int kept = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--llm-url") || !strncmp(a, "--llm-url=", 10)) {
			const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v)
				return cli_usage_error(cli_find("shadow"), "option '--llm-url' needs a value");
			if (n_urls == MAX_URLS)
				return cli_usage_error(cli_find("shadow"), "at most %d --llm-url", MAX_URLS);
			if (!strchr(v, '='))
				return cli_usage_error(cli_find("shadow"), "--llm-url needs PROVIDER=URL, not '%s'", v);
			urls[n_urls++] = v;
			continue;
		}
		argv[kept++] = argv[i];
	}
	for (int i = kept; i < argc && kept < argc; i++)
		argv[i] = NULL;
	argc = kept < argc ? kept : argc;
	CLI_PARSE("shadow");
	if (!s_models)
		return cli_usage_error(cli_find("shadow"), "--models is required");
	if (s_replay && (!cli_parse_u64(&replay, s_replay) || !replay))
		return cli_usage_error(cli_find("shadow"), "--replay needs a positive number of turns, not '%s'", s_replay);
	if (s_replay && s_prompt)
		return cli_usage_error(cli_find("shadow"), "--replay answers the branch's own turns: no --prompt");
	cmv_shadow_options_init(&so);
	if (s_budget && (!cli_parse_u64(&so.budget, s_budget) || !so.budget))
		return cli_usage_error(cli_find("shadow"), "--budget needs a positive number of tokens, not '%s'", s_budget);
	/* one descriptor (JSON) is one model, commas and all */
	if (s_models[0] == '{') {
		static char *one[1];
		one[0] = (char *)s_models;
		models = NULL;
		so.models = (const char *const *)one;
		so.n_models = 1;
	} else {
		if (!(models = cli_split_commas(s_models, &n_models)) || !n_models)
			return cli_usage_error(cli_find("shadow"), "--models needs model ids, not '%s'", s_models);
		so.models = (const char *const *)models;
		so.n_models = n_models;
	}
	cmv_buf tools = CMV_BUF_INIT(CMV_BUF_CONTENT);
	if (s_tools) {
		int e = cmv__read_file(&tools, s_tools);
		if (e < 0) {
			free(models);
			return cli_fail("cannot read the tools");
		}
		so.tools = tools.ptr;
	}
	s_ref = cli_ref_arg(ctx, s_ref);
	so.prompt = s_prompt;
	so.replay = (size_t)replay;
	so.prefix = s_name;
	so.urls = urls;
	so.n_urls = n_urls;
	if (cmv_shadow(&out, ctx->repo, s_ref, &so) < 0) {
		rc = cli_fail("shadow run failed");
		goto done;
	}
	cJSON *j = cJSON_Parse(out.ptr);
	if (!j) {
		rc = cli_fail("out of memory");
	} else if (s_json) {
		rc = cli_print_json(j);
	} else {
		print_report(j);
		cJSON_Delete(j);
	}
done:
	cmv_buf_dispose(&tools);
	free(models);
	cmv_buf_dispose(&out);
	return rc;
}
