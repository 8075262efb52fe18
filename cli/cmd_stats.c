/* SPDX-License-Identifier: MIT */
/*
 * cmv stats [REF] [--model M,...] [--json]: a conversation's tokens per model
 * and per kind of content, and the branch's recorded usage per model. Models default to the branch's own (cmv model,
 * cli_branch_model), else gpt-4o and claude-sonnet-4-5. Counts go
 * through the store's token cache, so a second run tokenizes nothing.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *s_ref, *s_models;
static bool s_json;
const cli_opt opts_stats[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &s_ref, NULL },
	{ OPT_VALUE, "model", 'm', "M,...", "models to count for (see 'cmv models')", &s_models, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &s_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/*
 * The branch's usage as cmv_usage_json gives it ({segments, totals, cost_usd}:
 * per model signature, with what they cost), or NULL: a snapshot or a node,
 * or a branch with no usage recorded.
 */
static cJSON *branch_usage(cli_ctx *ctx, const char *ref)
{
	cmv_buf branch = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), u = CMV_BUF_INIT(1 << 22);
	cJSON *j = NULL;
	if (ref)
		cmv_buf_puts(&branch, ref);
	else if (cmv_head_get(&branch, ctx->repo) < 0)
		goto done;
	if (cmv_usage_json(&u, ctx->repo, branch.ptr) < 0 || !(j = cJSON_Parse(u.ptr)))
		goto done;
	if (!cJSON_GetArraySize(cJSON_GetObjectItem(j, "segments"))) {
		cJSON_Delete(j);
		j = NULL;
		goto done;
	}
	/* the library gives seconds; every time the CLI prints in JSON is RFC 3339 (docs/cli.md) */
	for (cJSON *x = cJSON_GetObjectItem(j, "segments")->child; x; x = x->next) {
		const cJSON *t = cJSON_GetObjectItem(x, "started");
		char when[32];
		if (cJSON_IsNumber(t))
			cJSON_ReplaceItemInObjectCaseSensitive(x, "started",
							       cJSON_CreateString(cli_rfc3339((int64_t)t->valuedouble, when)));
	}
done:
	cmv_error_clear();
	cmv_buf_dispose(&branch);
	cmv_buf_dispose(&u);
	return j;
}

static void print_usage(const cJSON *j)
{
	const cJSON *segs = cJSON_GetObjectItem(j, "segments"), *cost = cJSON_GetObjectItem(j, "cost_usd");
	if (!cJSON_GetArraySize(segs))
		return;
	printf("\nusage by model (%d segment%s):\n", cJSON_GetArraySize(segs), cJSON_GetArraySize(segs) == 1 ? "" : "s");
	for (const cJSON *x = segs->child; x; x = x->next) {
		const cJSON *c = cJSON_GetObjectItem(x, "cost_usd");
		char price[64];
		if (cJSON_IsNumber(c))
			snprintf(price, sizeof(price), "$%.4f", c->valuedouble);
		else
			snprintf(price, sizeof(price), "price unknown");
		printf("  from turn %-6.0f %-36s %5.0f calls %10.0f in %8.0f out %8.0f cache read %8.0f cache write  %s\n",
		       cJSON_GetObjectItem(x, "start_turn")->valuedouble, cJSON_GetObjectItem(x, "signature")->valuestring,
		       cJSON_GetObjectItem(x, "calls")->valuedouble, cJSON_GetObjectItem(x, "input_tokens")->valuedouble,
		       cJSON_GetObjectItem(x, "output_tokens")->valuedouble,
		       cJSON_GetObjectItem(x, "cache_read_tokens")->valuedouble,
		       cJSON_GetObjectItem(x, "cache_write_tokens")->valuedouble, price);
	}
	if (cJSON_IsNumber(cost))
		printf("  total $%.4f\n", cost->valuedouble);
}

CMD(stats)
{
	cmv_models *models = NULL;
	cmv_buf own = CMV_BUF_INIT(CMV_BUF_SMALL);
	char **names = NULL;
	size_t n_names = 0;
	cJSON *arr = NULL;
	cmv_id tip;
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;

	CLI_PARSE("stats");
	s_ref = cli_ref_arg(ctx, s_ref);
	if ((rc = cli_resolve(&tip, ctx, s_ref)) != 0)
		return rc;
	cli_branch_model(&own, ctx, s_ref);
	names = cli_split_commas(s_models ? s_models : own.size ? own.ptr : "gpt-4o,claude-sonnet-4-5",
				 &n_names);
	if (!names || !n_names) {
		free(names);
		cmv_buf_dispose(&own);
		return cli_usage_error(cli_find("stats"), "--model needs at least one model");
	}
	if (cmv_models_load(&models, NULL) < 0) {
		rc = cli_fail("cannot load the model registry");
		goto done;
	}
	if (s_json)
		arr = cJSON_CreateArray();
	else
		printf("%s %s\n", s_ref ? s_ref : "HEAD", cli_short(&tip, hex));
	/* one transaction: the token cache rows land together */
	if (cmv_repo_txn_begin(ctx->repo) < 0) {
		rc = cli_fail("cannot start a transaction");
		goto done;
	}
	for (size_t i = 0; i < n_names && rc == EXIT_OK; i++) {
		const cmv_model *m;
		cmv_tok *tok = NULL;
		cmv_token_stats st;
		if (cli_model(&m, models, names[i]) < 0) {
			rc = cli_fail("unknown model");
			break;
		}
		if (cmv_tok_load(&tok, m->tokenizer, NULL) < 0 ||
		    cmv_count_conversation(&st, ctx->repo, &tip, m, tok) < 0) {
			rc = cli_fail("cannot count the conversation");
			cmv_tok_free(tok);
			break;
		}
		cmv_tok_free(tok);
		if (s_json) {
			cJSON *o = cJSON_CreateObject(), *k;
			cJSON_AddStringToObject(o, "model", m->id);
			cJSON_AddStringToObject(o, "tokenizer", m->tokenizer);
			cJSON_AddBoolToObject(o, "exact", st.exact);
			cJSON_AddNumberToObject(o, "total", (double)st.total);
			cJSON_AddNumberToObject(o, "context_window", (double)m->context_window);
			cJSON_AddNumberToObject(o, "input_budget", (double)cmv_model_input_budget(m));
			cJSON_AddBoolToObject(o, "fits", st.total <= cmv_model_input_budget(m));
			cJSON_AddNumberToObject(o, "messages", (double)st.messages);
			cJSON_AddNumberToObject(o, "blocks", (double)st.blocks);
			k = cJSON_AddObjectToObject(o, "kinds");
			cJSON_AddNumberToObject(k, "text", (double)st.text);
			cJSON_AddNumberToObject(k, "tool_calls", (double)st.tool_calls);
			cJSON_AddNumberToObject(k, "tool_results", (double)st.tool_results);
			cJSON_AddNumberToObject(k, "thinking", (double)st.thinking);
			cJSON_AddNumberToObject(k, "images", (double)st.images);
			cJSON_AddNumberToObject(k, "other", (double)st.other);
			cJSON_AddNumberToObject(k, "overhead", (double)st.overhead);
			cJSON_AddNumberToObject(k, "unsent", (double)st.unsent);
			cJSON_AddItemToArray(arr, o);
		} else {
			uint64_t budget = cmv_model_input_budget(m);
			printf("\n%s (%s, %s): %llu tokens, %.1f%% of its %llu-token input budget\n", m->id,
			       m->tokenizer, st.exact ? "exact" : "approximate", (unsigned long long)st.total,
			       budget ? 100.0 * (double)st.total / (double)budget : 0.0,
			       (unsigned long long)budget);
			printf("  %-13s %10llu\n  %-13s %10llu\n  %-13s %10llu\n  %-13s %10llu\n"
			       "  %-13s %10llu\n  %-13s %10llu\n  %-13s %10llu\n  %-13s %10llu (not sent)\n",
			       "text", (unsigned long long)st.text, "tool calls",
			       (unsigned long long)st.tool_calls, "tool results",
			       (unsigned long long)st.tool_results, "thinking", (unsigned long long)st.thinking,
			       "images", (unsigned long long)st.images, "other", (unsigned long long)st.other,
			       "overhead", (unsigned long long)st.overhead, "unsent",
			       (unsigned long long)st.unsent);
		}
	}
	if (rc == EXIT_OK && cmv_repo_txn_commit(ctx->repo) < 0)
		rc = cli_fail("cannot save the token cache");
	else if (rc != EXIT_OK)
		cmv_repo_txn_rollback(ctx->repo);
	cJSON *usage = rc == EXIT_OK ? branch_usage(ctx, s_ref) : NULL;
	if (rc == EXIT_OK && !s_json)
		print_usage(usage);
	if (rc == EXIT_OK && s_json) {
		/* {ref, head, models: [per model counted], usage: the branch's per model signature, or null} */
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "ref", s_ref ? s_ref : "HEAD");
		cJSON_AddStringToObject(o, "head", cmv_id_tostr(hex, sizeof(hex), &tip));
		cJSON_AddItemToObject(o, "models", arr);
		cJSON_AddItemToObject(o, "usage", usage ? usage : cJSON_CreateNull());
		usage = NULL;
		rc = cli_print_json(o);
	} else {
		cJSON_Delete(arr);
	}
	cJSON_Delete(usage);
done:
	cmv_models_free(models);
	free(names);
	cmv_buf_dispose(&own);
	return rc;
}
