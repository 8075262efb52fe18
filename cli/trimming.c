/* SPDX-License-Identifier: MIT */
/*
 * Running a trim for every command that trims (trim, branch from a
 * snapshot, compact, the hook): the snapshot, the trimmed branch, and the
 * report in text or JSON. The commands call this; none calls another.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

int cli_parse_threshold(size_t *out, const char *s)
{
	char *end;
	unsigned long long v;

	*out = 0;
	if (!s)
		return 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || *s == '-' || v < CMV_TRIM_THRESHOLD_MIN || v > ((size_t)1 << 40))
		return -1;
	*out = (size_t)v;
	return 0;
}

static void report_json(cJSON *o, const cmv_trim_report *r, const cmv_model *m)
{
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *rules = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "head", cli_id(&r->head, hex));
	cJSON_AddStringToObject(o, "model", m->id);
	cJSON_AddStringToObject(o, "tokenizer", m->tokenizer);
	cJSON_AddBoolToObject(o, "tokens_exact", r->tokens_exact);
	cJSON_AddNumberToObject(o, "threshold", (double)r->threshold);
	cJSON_AddNumberToObject(o, "tokens_before", (double)r->tokens_before);
	cJSON_AddNumberToObject(o, "tokens_after", (double)r->tokens_after);
	cJSON_AddNumberToObject(o, "bytes_before", (double)r->bytes_before);
	cJSON_AddNumberToObject(o, "bytes_after", (double)r->bytes_after);
	cJSON_AddNumberToObject(o, "records_before", (double)r->records_before);
	cJSON_AddNumberToObject(o, "records_after", (double)r->records_after);
	cJSON_AddNumberToObject(o, "untrimmed_records", (double)r->untrimmed_records);
	for (int i = 0; i < CMV_TRIM_RULES; i++) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddNumberToObject(x, "items", (double)r->rules[i].items);
		cJSON_AddNumberToObject(x, "tokens", (double)r->rules[i].tokens);
		cJSON_AddNumberToObject(x, "bytes", (double)r->rules[i].bytes);
		cJSON_AddItemToObject(rules, cmv_trim_rule_name((cmv_trim_rule)i), x);
	}
	cJSON_AddItemToObject(o, "rules", rules);
}

static double pct(uint64_t before, uint64_t after)
{
	return before ? 100.0 * ((double)before - (double)after) / (double)before : 0.0;
}

static void report_text(const cmv_trim_report *r, const cmv_model *m, const char *branch, const char *snapshot)
{
	printf("tokens  %llu -> %llu (-%.1f%%) sent to %s on resume (%s%s)\n", (unsigned long long)r->tokens_before,
	       (unsigned long long)r->tokens_after, pct(r->tokens_before, r->tokens_after), m->id, m->tokenizer,
	       r->tokens_exact ? ", exact" : ", approximate");
	printf("bytes   %llu -> %llu (-%.1f%%) as a session file\n", (unsigned long long)r->bytes_before,
	       (unsigned long long)r->bytes_after, pct(r->bytes_before, r->bytes_after));
	printf("records %zu -> %zu, stubs over %zu chars\n", r->records_before, r->records_after, r->threshold);
	printf("%-18s %8s %10s %12s\n", "rule", "items", "tokens", "bytes");
	for (int i = 0; i < CMV_TRIM_RULES; i++)
		if (r->rules[i].items)
			printf("%-18s %8zu %10lld %12lld\n", cmv_trim_rule_name((cmv_trim_rule)i), r->rules[i].items,
			       (long long)r->rules[i].tokens, (long long)r->rules[i].bytes);
	if (r->untrimmed_records)
		printf("%zu records of formats trim has no rules for were carried as they are\n", r->untrimmed_records);
	if (branch)
		printf("snapshot '%s', trimmed branch '%s'; every stub names its original: cmv recall ID\n",
		       snapshot ? snapshot : "-", branch);
}

int cli_trim(cmv_id *head, cli_ctx *ctx, const cmv_id *tip, const char *from_ref, const char *branch,
	     const char *snapshot, size_t threshold, const char *model_name, bool dry, cJSON *json)
{
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_buf own = CMV_BUF_INIT(CMV_BUF_SMALL);
	int rc = EXIT_OK;

	if (!model_name && from_ref && cli_branch_model(&own, ctx, from_ref))
		model_name = own.ptr;
	if (!model_name)
		model_name = CLI_DEFAULT_MODEL;
	if (cmv_models_load(&models, NULL) < 0 || cli_model(&m, models, model_name) < 0 ||
	    cmv_tok_load(&tok, m->tokenizer, NULL) < 0) {
		rc = cli_fail("cannot load the model");
		goto done;
	}
	opts.threshold = threshold;
	opts.branch = branch;
	opts.from_ref = snapshot ? snapshot : from_ref;
	opts.flags = dry ? CMV_TRIM_DRY_RUN : 0;
	opts.model = m;
	opts.tok = tok;
	if (cmv_trim(&rep, ctx->repo, tip, &opts) < 0) {
		rc = cli_fail("trim failed");
		goto done;
	}
	if (head)
		*head = rep.head;
	if (json) {
		report_json(json, &rep, m);
		cJSON_AddBoolToObject(json, "dry_run", dry);
	} else {
		report_text(&rep, m, dry ? NULL : branch, snapshot);
	}
done:
	cmv_tok_free(tok);
	cmv_models_free(models);
	cmv_buf_dispose(&own);
	return rc;
}
