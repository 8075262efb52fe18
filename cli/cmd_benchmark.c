/* SPDX-License-Identifier: MIT */
/*
 * cmv benchmark [-s ID | --latest | --all]: what trimming a session saves,
 * in the model's tokens and dollars. Each session is imported into a
 * private in-memory store (the user's store is not touched) and trimmed by
 * the real trimmer, dry-run; the tokens are those of the request the model
 * is sent on resume, counted in the model's tokenizer (claude-code-cmv's
 * benchmark estimates bytes / 4, and in single-session mode does not run
 * its trimmer at all).
 *
 * The cost of a turn is its input at the model's prices with a share h of
 * it read from the provider's cache (--cache-rate): tokens * (h * cache_read
 * + (1 - h) * input). Trimming changes the prefix, so the first turn after
 * it writes the whole trimmed context to the cache once: the rebuild. It
 * pays for itself after rebuild / (saving per turn) turns: break_even.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "sessions.h"

static const char *bm_session, *bm_model, *bm_cache, *bm_threshold, *bm_out;
static bool bm_latest, bm_all, bm_json;
const cli_opt opts_benchmark[] = {
	{ OPT_VALUE, "session", 's', "ID", "a Claude Code or Codex session of this machine (an id prefix, or cc/ID)", &bm_session, NULL },
	{ OPT_FLAG, "latest", 0, NULL, "the newest session (the default)", NULL, &bm_latest },
	{ OPT_FLAG, "all", 0, NULL, "every session of this machine, with a summary", NULL, &bm_all },
	{ OPT_VALUE, "model", 'm', "M", "price and count for this model (default claude-sonnet-4-5)", &bm_model, NULL },
	{ OPT_VALUE, "cache-rate", 'c', "0-100", "percent of the input read from the provider's cache (default 90)", &bm_cache, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "the trim's stub threshold (default 500, at least 50)", &bm_threshold, NULL },
	{ OPT_VALUE, "out", 'o', "FILE", "also write the JSON report to FILE", &bm_out, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the report as JSON", NULL, &bm_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

typedef struct {
	uint64_t before, after;
	size_t messages;
	double reduction; /* percent of the tokens */
} result;

/* Dollars for `tokens` of input per turn with share h cached; NAN when the model has no prices. */
static double turn_cost(const cmv_model *m, uint64_t tokens, double h)
{
	if (m->prices.input < 0 || m->prices.cache_read < 0)
		return NAN;
	return (double)tokens * (h * m->prices.cache_read + (1.0 - h) * m->prices.input) / 1e6;
}

static void add_money(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, round(v * 1e6) / 1e6);
}

static int bench_one(result *r, cmv_repo *repo, const cli_session *s, const cmv_model *m, cmv_tok *tok, size_t threshold)
{
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;

	memset(r, 0, sizeof(*r));
	if (cmv_import_file(&res, repo, s->path, NULL, NULL) < 0)
		return -1;
	opts.threshold = threshold;
	opts.branch = "benchmark";
	opts.flags = CMV_TRIM_DRY_RUN;
	opts.model = m;
	opts.tok = tok;
	if (cmv_id_is_none(&res.head) || cmv_trim(&rep, repo, &res.head, &opts) < 0)
		return -1;
	r->before = rep.tokens_before;
	r->after = rep.tokens_after;
	r->messages = rep.records_before;
	r->reduction = r->before ? 100.0 * ((double)r->before - (double)r->after) / (double)r->before : 0.0;
	return 0;
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

CMD(benchmark)
{
	cli_session_list l = { 0 };
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	cmv_repo *repo = NULL;
	cJSON *doc = NULL, *arr;
	double *reductions = NULL, h = 0.9;
	size_t threshold, n_done = 0, n_failed = 0;
	int rc = EXIT_OK;

	CLI_PARSE("benchmark");
	(void)ctx;
	if (!!bm_session + bm_latest + bm_all > 1)
		return cli_usage_error(cli_find("benchmark"), "give one of --session, --latest and --all");
	if (bm_cache) {
		uint64_t v;
		if (!cli_parse_u64(&v, bm_cache) || v > 100)
			return cli_usage_error(cli_find("benchmark"), "--cache-rate takes a whole percent, 0 to 100, not '%s'", bm_cache);
		h = (double)v / 100.0;
	}
	if (cli_parse_threshold(&threshold, bm_threshold) < 0)
		return cli_usage_error(cli_find("benchmark"), "--threshold needs a whole number of characters, at least %d",
				       CMV_TRIM_THRESHOLD_MIN);
	if (cmv_models_load(&models, NULL) < 0 || cli_model(&m, models, bm_model ? bm_model : CLI_DEFAULT_MODEL) < 0 ||
	    cmv_tok_load(&tok, m->tokenizer, NULL) < 0) {
		rc = cli_fail("cannot load the model");
		goto done;
	}
	if (bm_all) {
		cli_sessions_list(&l, NULL, false);
	} else {
		cmv_buf path = CMV_BUF_INIT(4096);
		if ((rc = cli_session_path(&path, bm_session)) != EXIT_OK) {
			cmv_buf_dispose(&path);
			goto done;
		}
		cli_sessions_list(&l, NULL, false);
		/* keep only the one asked for */
		for (size_t i = 0; i < l.n; i++)
			if (!strcmp(l.items[i].path, path.ptr)) {
				cli_session tmp = l.items[0];
				l.items[0] = l.items[i];
				l.items[i] = tmp;
				break;
			}
		for (size_t i = 1; i < l.n; i++) {
			free(l.items[i].path);
			free(l.items[i].id);
			free(l.items[i].project);
		}
		l.n = l.n ? 1 : 0;
		cmv_buf_dispose(&path);
	}
	if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0) {
		rc = cli_fail("cannot open a scratch store");
		goto done;
	}
	reductions = calloc(l.n ? l.n : 1, sizeof(*reductions));
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "model", m->id);
	cJSON_AddStringToObject(doc, "tokenizer", m->tokenizer);
	cJSON_AddBoolToObject(doc, "exact", m->exact);
	cJSON_AddNumberToObject(doc, "cache_rate", h);
	cJSON_AddNumberToObject(doc, "threshold", threshold ? (double)threshold : 500.0);
	arr = cJSON_AddArrayToObject(doc, "sessions");
	if (!bm_json)
		printf("%-36s %10s %10s %7s %11s %11s %9s %6s\n", "session", "tokens", "trimmed", "saved", "$/turn",
		       "trimmed", "rebuild", "turns");
	for (size_t i = 0; i < l.n; i++) {
		result r;
		if (bench_one(&r, repo, &l.items[i], m, tok, threshold) < 0) {
			fprintf(stderr, "cmv: %s: not benchmarked: %s\n", l.items[i].path,
				cmv_error_last() ? cmv_error_last()->message : "cannot import it");
			cmv_error_clear();
			n_failed++;
			continue;
		}
		double c0 = turn_cost(m, r.before, h), c1 = turn_cost(m, r.after, h);
		/*
		 * the first turn after the trim reads nothing from the cache and writes the
		 * whole trimmed prefix to it: at the cache-write price where the provider
		 * charges one (Anthropic), else at the input price (OpenAI)
		 */
		double write = m->prices.cache_write > 0 ? m->prices.cache_write : m->prices.input;
		double rebuild = isnan(c1) ? NAN : (double)r.after * write / 1e6 - c1;
		double even = isnan(rebuild) || c0 - c1 <= 0 ? NAN : ceil(rebuild / (c0 - c1));
		reductions[n_done++] = r.reduction;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "agent", l.items[i].agent);
		cJSON_AddStringToObject(o, "id", l.items[i].id);
		cJSON_AddNumberToObject(o, "records", (double)r.messages);
		cJSON_AddNumberToObject(o, "tokens_before", (double)r.before);
		cJSON_AddNumberToObject(o, "tokens_after", (double)r.after);
		cJSON_AddNumberToObject(o, "reduction", round(r.reduction * 10) / 10);
		add_money(o, "cost_per_turn_before", c0);
		add_money(o, "cost_per_turn_after", c1);
		add_money(o, "cache_rebuild", rebuild);
		if (isnan(even))
			cJSON_AddNullToObject(o, "break_even_turns");
		else
			cJSON_AddNumberToObject(o, "break_even_turns", even);
		cJSON_AddItemToArray(arr, o);
		if (!bm_json && isnan(c0))
			printf("%-36s %10llu %10llu %6.1f%% %11s %11s %9s %6s\n", l.items[i].id, (unsigned long long)r.before,
			       (unsigned long long)r.after, r.reduction, "-", "-", "-", "-");
		else if (!bm_json)
			printf("%-36s %10llu %10llu %6.1f%% %11.4f %11.4f %9.4f %6.0f\n", l.items[i].id,
			       (unsigned long long)r.before, (unsigned long long)r.after, r.reduction, c0, c1, rebuild,
			       isnan(even) ? 0.0 : even);
	}
	cJSON *sum = cJSON_AddObjectToObject(doc, "summary");
	cJSON_AddNumberToObject(sum, "sessions", (double)n_done);
	cJSON_AddNumberToObject(sum, "failed", (double)n_failed);
	if (n_done) {
		double total = 0;
		for (size_t i = 0; i < n_done; i++)
			total += reductions[i];
		qsort(reductions, n_done, sizeof(*reductions), by_double);
		double median = n_done % 2 ? reductions[n_done / 2] : (reductions[n_done / 2 - 1] + reductions[n_done / 2]) / 2;
		cJSON_AddNumberToObject(sum, "mean_reduction", round(total / (double)n_done * 10) / 10);
		cJSON_AddNumberToObject(sum, "median_reduction", round(median * 10) / 10);
		cJSON_AddNumberToObject(sum, "max_reduction", round(reductions[n_done - 1] * 10) / 10);
		if (!bm_json && n_done > 1)
			printf("%zu sessions: tokens saved by trimming, mean %.1f%%, median %.1f%%, max %.1f%%\n", n_done,
			       total / (double)n_done, median, reductions[n_done - 1]);
	}
	if (!bm_json)
		printf("%s (%s%s), %.0f%% of the input cached; $ per turn of input; rebuild: the one cache write after the trim\n",
		       m->id, m->tokenizer, m->exact ? ", exact" : ", approximate", h * 100);
	if (bm_out) {
		char *s = cJSON_Print(doc);
		FILE *fp = fopen(bm_out, "wb");
		if (!s || !fp || fputs(s, fp) < 0 || fclose(fp) != 0) {
			if (fp)
				fclose(fp);
			rc = cli_failf("cannot write '%s'", bm_out);
		}
		cJSON_free(s);
	}
	if (!n_done && !n_failed)
		fprintf(stderr, "cmv: no sessions to benchmark (see cmv sessions)\n");
	if (rc == EXIT_OK && bm_json) {
		rc = cli_print_json(doc);
		doc = NULL;
	}
	if (rc == EXIT_OK && n_failed && !n_done)
		rc = EXIT_ERROR;
done:
	cJSON_Delete(doc);
	free(reductions);
	cmv_repo_free(repo);
	cmv_tok_free(tok);
	cmv_models_free(models);
	cli_sessions_free(&l);
	return rc;
}
