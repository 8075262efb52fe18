/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench count DIR: what cmv counts against what providers billed, per
 * model, over every Claude Code session and Codex rollout in DIR (the
 * sessions that record usage: message.usage, token_count).
 *
 * Leave one session out: every session is imported and calibrated into one
 * store; each is then measured with a calibration of all the others (its
 * pairs and requests forgotten, cmv_calibration_forget, inside a
 * transaction rolled back afterwards), so no figure comes from a
 * calibration that saw the session it measures, and each session is
 * measured as a new session would be counted. For each measured call: billed content (the prompt
 * less its segment's hidden prefix, the segment's first call's prompt less
 * what cmv counts before it) against what cmv counts of the conversation
 * before the call, rendered for the model and counted with its calibrated
 * profile, anchored on the call before (its billed content less what cmv
 * counted of it, added to the count: cmv_count_anchor_find's rule, which
 * every 25th call is checked against) when that was billed for the same
 * model; "under" is a call billed more than count x (1 + margin) +
 * margin_tokens. Beside it, the same calls and margins counted without the
 * anchor (the rule before). Beside it, in the same run, the same calls counted with
 * the built-in profile (no calibration): the baseline. "fit +30%": the
 * count with its margin within a budget 30% over what was billed (the
 * issue's tightness). --calls FILE writes every measured call (tab-separated:
 * session, call, model, segment, message id, prompt, count, billed content,
 * margin, margin_tokens, Codex reasoning tokens, the anchored count or -1)
 * for reading residuals.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "pager/pager_int.h"

typedef struct {
	char model[CMV_CALIBRATION_MODEL_MAX];
	double *cal, *base; /* counted / billed: calibrated (anchored where an anchor applies) and built-in */
	size_t n, cap, under_cal, under_base, pairs;
	size_t tight; /* calls whose count, with the margin, fits a budget 30% over what was billed */
	size_t anchored;                /* calls counted from an anchor (the call before, billed) */
	size_t under_plain, tight_plain; /* the same calls counted without the anchor (the rule before) */
	size_t sessions, last; /* sessions measured; the last one (1-based) */
	double margin_min, margin_max; /* the calibrated margins counted with */
} per_model;

typedef struct {
	per_model *v;
	size_t n;
	size_t checked, mismatched; /* anchors recomputed by cmv_count_anchor_find, and those that differed */
	size_t broken; /* calls whose request no longer held the one billed before (all sizes) */
	size_t bounded; /* anchored calls whose correction down was bounded (cmv_count_anchored; all sizes) */
} results;

static per_model *slot(results *r, const char *model)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].model, model))
			return &r->v[i];
	r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
	per_model *p = &r->v[r->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->model, sizeof(p->model), "%s", model);
	return p;
}

static bool counted(uint64_t *out, cmv_repo *repo, const cmv_id *at, const cmv_model *m, cmv_tok *tok)
{
	cmv_token_stats st;
	if (cmv_pager__count_sent_live(&st, repo, at, m, tok) < 0) {
		cmv_error_clear();
		return false;
	}
	*out = st.total;
	return true;
}

/* Measure one session's calls against both profiles of its model. */
static void measure(results *res, cmv_repo *repo, const cmv_id *tip, cmv_models *models, size_t session, FILE *dump)
{
	cmv_billed_call *calls = NULL;
	size_t n = 0;
	const cmv_model *base = NULL;
	cmv_model cal;
	cmv_tok *tok = NULL;
	double hidden_cal = 0, hidden_base = 0;
	/*
	 * The anchor for call k: call k - 1, known live once its reply came
	 * (its usage), when billed for the same model: its billed content less
	 * what cmv counted of it. Only calls before k of this session.
	 */
	bool prev_ok = false;
	double prev_residual = 0;

	if (cmv_billed_calls(&calls, &n, repo, tip, models) < 0 || !n) {
		cmv_error_clear();
		free(calls);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		uint64_t c_cal, c_base;
		if (cmv_id_is_none(&calls[k].before)) {
			prev_ok = false; /* billed for nothing cmv holds: no anchor for the next */
			continue;
		}
		if (!base || strcmp(calls[k].model, calls[k - (k > 0)].model) || k == 0) {
			base = NULL;
			cmv_tok_free(tok);
			tok = NULL;
			if (cmv_models_resolve(&base, models, calls[k].model) < 0 ||
			    cmv_tok_load(&tok, base->tokenizer, NULL) < 0 || cmv_model_calibrated(&cal, NULL, base, repo) < 0) {
				cmv_error_clear();
				base = NULL;
				prev_ok = false;
				continue;
			}
			prev_ok = false; /* another model: the call before was billed for it, no anchor */
		}
		if (!counted(&c_cal, repo, &calls[k].before, &cal, tok) ||
		    !counted(&c_base, repo, &calls[k].before, base, tok)) {
			prev_ok = false;
			continue;
		}
		if (k == 0 || calls[k].segment != calls[k - 1].segment) {
			hidden_cal = (double)calls[k].prompt - (double)c_cal;
			hidden_base = (double)calls[k].prompt - (double)c_base;
			prev_ok = true;
			prev_residual = 0; /* the hidden prefix is taken so that this call's is none */
			continue;
		}
		double billed_cal = (double)calls[k].prompt - hidden_cal, billed_base = (double)calls[k].prompt - hidden_base;
		bool anchor = prev_ok && !cmv_id_is_none(&calls[k - 1].before), holds = false;
		/* the library's rule: only while the request holds the billed one whole */
		if (anchor && cmv_count_anchor_holds(&holds, repo, &calls[k - 1].before, &calls[k].before, &cal) < 0)
			cmv_error_clear();
		if (anchor && !holds) {
			anchor = false;
			res->broken++;
		}
		/* the library's rule, its bound on a correction down included */
		double c_anch = anchor ? (double)cmv_count_anchored(&cal, c_cal, (int64_t)llround(prev_residual)) : (double)c_cal;
		res->bounded += anchor && c_anch > (double)c_cal + prev_residual + 0.5;
		if (anchor && k % 25 == 0) {
			/* the library's anchor, from the records on the path alone, must say the same */
			cmv_count_anchor an;
			res->checked++;
			if (cmv_count_anchor_find(&an, repo, &calls[k].before, &cal, tok, models) < 0) {
				cmv_error_clear();
				res->mismatched++;
			} else if (!an.found || fabs((double)an.correction - prev_residual) > 0.5) {
				res->mismatched++;
				fprintf(stderr, "cmv-bench count: session %zu call %zu: anchor %s %lld, bench %.0f\n", session, k,
					an.found ? "found" : an.why, (long long)an.correction, prev_residual);
			}
		}
		prev_ok = true;
		prev_residual = billed_cal - (double)c_cal;
		if (dump)
			fprintf(dump, "%zu\t%zu\t%s\t%u\t%s\t%llu\t%llu\t%.0f\t%.4f\t%.4f\t%llu\t%.0f\n", session, k,
				calls[k].model, calls[k].segment, calls[k].id, (unsigned long long)calls[k].prompt,
				(unsigned long long)c_cal, billed_cal, cal.margin, (double)cal.margin_tokens,
				(unsigned long long)calls[k].reasoning, anchor ? c_anch : -1.0);
		if (billed_cal < 10000 || billed_base < 10000)
			continue; /* as the issue measured: calls of at least 10k content tokens */
		per_model *p = slot(res, base->id);
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 64;
			p->cal = realloc(p->cal, p->cap * sizeof(*p->cal));
			p->base = realloc(p->base, p->cap * sizeof(*p->base));
		}
		p->cal[p->n] = c_anch / billed_cal;
		p->base[p->n] = (double)c_base / billed_base;
		if (p->last != session + 1) {
			p->last = session + 1;
			p->sessions++;
		}
		if (!p->n || cal.margin < p->margin_min)
			p->margin_min = cal.margin;
		if (!p->n || cal.margin > p->margin_max)
			p->margin_max = cal.margin;
		p->anchored += anchor;
		p->under_cal += billed_cal > c_anch * (1 + cal.margin) + (double)cal.margin_tokens;
		p->tight += c_anch * (1 + cal.margin) + (double)cal.margin_tokens <= 1.30 * billed_cal;
		p->under_plain += billed_cal > (double)c_cal * (1 + cal.margin) + (double)cal.margin_tokens;
		p->tight_plain += (double)c_cal * (1 + cal.margin) + (double)cal.margin_tokens <= 1.30 * billed_cal;
		if (anchor && billed_cal > c_anch * (1 + cal.margin) + (double)cal.margin_tokens)
			fprintf(stderr, "cmv-bench count: under beyond the margin: session %zu call %zu (%s): billed %.0f, "
				"anchored %.0f, margin %.4f + %llu\n", session, k, base->id, billed_cal, c_anch, cal.margin,
				(unsigned long long)cal.margin_tokens);
		p->under_base += billed_base > (double)c_base * (1 + base->margin) + (double)base->margin_tokens;
		p->n++;
	}
	cmv_tok_free(tok);
	free(calls);
}

static int pairs_of(const cmv_calibration *c, void *payload)
{
	slot(payload, c->model)->pairs = c->pairs;
	return 0;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static double pct(double *v, size_t n, double p)
{
	return n ? bench_percentile(v, n, p) : 0;
}

int bench_count(int argc, char **argv)
{
	const char *dir = NULL, *calls_path = NULL;
	bool json = false;
	FILE *dump = NULL;
	bench_files files = { 0 };
	results res = { 0 };
	cmv_models *models = NULL;
	char machine[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			calls_path = argv[++i];
		else if (!dir)
			dir = argv[i];
	}
	if (!dir) {
		fprintf(stderr, "usage: cmv-bench count DIR [--json] [--calls FILE]\n");
		return 2;
	}
	bench_collect(&files, dir, "claude-code");
	bench_collect(&files, dir, "codex");
	qsort(files.paths, files.n, sizeof(*files.paths), cmp_path); /* the folds, the same on every run */
	if (!files.n) {
		fprintf(stderr, "cmv-bench count: no Claude Code session or Codex rollout in %s\n", dir);
		return 1;
	}
	if (cmv_models_load(&models, NULL) < 0) {
		fprintf(stderr, "cmv-bench count: %s\n", cmv_error_last()->message);
		return 1;
	}
	if (calls_path) {
		/* every measured call, for reading residuals: what each session's calls were counted and billed */
		if (!(dump = fopen(calls_path, "w"))) {
			fprintf(stderr, "cmv-bench count: cannot write %s\n", calls_path);
			return 1;
		}
		fprintf(dump, "session\tcall\tmodel\tsegment\tid\tprompt\tcounted\tbilled\tmargin\tmargin_tokens\treasoning\t"
			      "anchored\n");
	}
	double t0 = bench_now();
	char *tmp = bench_tmpdir();
	cmv_repo *repo = NULL;
	cmv_id *tips = calloc(files.n, sizeof(*tips));
	char (*keys)[256] = calloc(files.n, sizeof(*keys));
	if (!tips || !keys || cmv_repo_init(&repo, tmp) < 0) {
		fprintf(stderr, "cmv-bench count: %s\n", cmv_error_last()->message);
		return 1;
	}
	for (size_t i = 0; i < files.n; i++) {
		cmv_import_result ir;
		cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
		char branch[32];
		snprintf(branch, sizeof(branch), "s%zu", i);
		o.branch = branch;
		o.flags = CMV_IMPORT_LENIENT;
		if (cmv_import_file(&ir, repo, files.paths[i], NULL, &o) < 0) {
			cmv_error_clear();
			continue;
		}
		tips[i] = ir.head;
		snprintf(keys[i], sizeof(keys[i]), "%s", ir.session);
		if (cmv_calibrate(NULL, repo, &ir.head, ir.session, models) < 0)
			cmv_error_clear();
	}
	cmv_calibration_foreach(repo, pairs_of, &res);
	/* each session measured with a calibration of all the others: forgotten inside a transaction rolled back */
	for (size_t i = 0; i < files.n; i++) {
		if (cmv_id_is_none(&tips[i]) || cmv_repo_txn_begin(repo) < 0) {
			cmv_error_clear();
			continue;
		}
		if (cmv_calibration_forget(repo, keys[i], models) == 0)
			measure(&res, repo, &tips[i], models, i, dump);
		cmv_error_clear();
		cmv_repo_txn_rollback(repo);
	}
	cmv_repo_free(repo);
	if (dump) {
		for (size_t i = 0; i < files.n; i++)
			fprintf(dump, "# %zu\t%s\n", i, files.paths[i]);
		fclose(dump);
	}
	bench_rmdir(tmp);
	free(tmp);
	free(tips);
	free(keys);
	double secs = bench_now() - t0;
	bench_machine(machine, sizeof(machine));
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	size_t all_n = 0, all_tight = 0, all_under = 0, all_anch = 0, all_under_plain = 0, all_tight_plain = 0;
	if (!json) {
		printf("cmv-bench count: %zu sessions with usage in %s, each measured with a calibration of all the "
		       "others (leave one session out), calls of at least 10k content tokens; %s; %.1f s\n",
		       files.n, dir, machine, secs);
		printf("calibrated: the count anchored on the call before where it applies (\"anch\": such calls), with the "
		       "calibrated margin; unanchored: the same calls and margin, counted without it (the rule before)\n");
		printf("%-20s %5s %6s %6s %5s | %-26s %7s %13s %6s | %-14s | %-26s %7s\n", "model", "sess", "calls", "pairs",
		       "anch", "calibrated: counted/billed", "under", "margin used", "fit", "unanchored", "built-in: counted/billed",
		       "under");
		printf("%-20s %5s %6s %6s %5s | %8s %8s %8s %7s %13s %6s | %6s %7s | %8s %8s %8s %7s\n", "", "", "", "", "",
		       "median", "p5", "p95", "margin", "min-max", "+30%", "under", "fit+30%", "median", "p5", "p95", "margin");
	}
	for (size_t i = 0; i < res.n; i++) {
		per_model *p = &res.v[i];
		double cm = pct(p->cal, p->n, 0.5), c5 = pct(p->cal, p->n, 0.05), c95 = pct(p->cal, p->n, 0.95);
		double bm = pct(p->base, p->n, 0.5), b5 = pct(p->base, p->n, 0.05), b95 = pct(p->base, p->n, 0.95);
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "model", p->model);
			cJSON_AddNumberToObject(o, "sessions", (double)p->sessions);
			cJSON_AddNumberToObject(o, "calls", (double)p->n);
			cJSON_AddNumberToObject(o, "margin_min", p->margin_min);
			cJSON_AddNumberToObject(o, "margin_max", p->margin_max);
			cJSON_AddNumberToObject(o, "calibration_pairs", (double)p->pairs);
			cJSON_AddNumberToObject(o, "calibrated_median", cm);
			cJSON_AddNumberToObject(o, "calibrated_p5", c5);
			cJSON_AddNumberToObject(o, "calibrated_p95", c95);
			cJSON_AddNumberToObject(o, "calibrated_under_beyond_margin", (double)p->under_cal);
			cJSON_AddNumberToObject(o, "calibrated_fit_30_over", (double)p->tight);
			cJSON_AddNumberToObject(o, "anchored", (double)p->anchored);
			cJSON_AddNumberToObject(o, "unanchored_under_beyond_margin", (double)p->under_plain);
			cJSON_AddNumberToObject(o, "unanchored_fit_30_over", (double)p->tight_plain);
			cJSON_AddNumberToObject(o, "builtin_median", bm);
			cJSON_AddNumberToObject(o, "builtin_p5", b5);
			cJSON_AddNumberToObject(o, "builtin_p95", b95);
			cJSON_AddNumberToObject(o, "builtin_under_beyond_margin", (double)p->under_base);
			cJSON_AddItemToArray(arr, o);
		} else {
			if (!p->n)
				continue; /* calibrated, but no call of 10k tokens to measure */
			printf("%-20s %5zu %6zu %6zu %5zu | %8.3f %8.3f %8.3f %6.1f%% %5.1f-%5.1f%% %5.0f%% | %5.1f%% %6.0f%% | %8.3f "
			       "%8.3f %8.3f %6.1f%%\n",
			       p->model, p->sessions, p->n, p->pairs, p->anchored, cm, c5, c95,
			       100.0 * (double)p->under_cal / (double)p->n, 100 * p->margin_min, 100 * p->margin_max,
			       100.0 * (double)p->tight / (double)p->n, 100.0 * (double)p->under_plain / (double)p->n,
			       100.0 * (double)p->tight_plain / (double)p->n, bm, b5, b95,
			       100.0 * (double)p->under_base / (double)p->n);
			all_n += p->n;
			all_tight += p->tight;
			all_under += p->under_cal;
			all_anch += p->anchored;
			all_under_plain += p->under_plain;
			all_tight_plain += p->tight_plain;
		}
		free(p->cal);
		free(p->base);
	}
	if (!json && all_n)
		printf("all models: %zu calls, %zu anchored; under-counted beyond the margin %zu (%.1f%%; unanchored %zu); fit "
		       "30%% over what was billed %zu (%.1f%%; unanchored %zu); anchors checked against "
		       "cmv_count_anchor_find: %zu, differing %zu; not anchored because the request no longer held the one "
		       "billed before: %zu calls (all sizes); anchored calls whose correction down was bounded: %zu (all sizes)\n",
		       all_n, all_anch, all_under, 100.0 * (double)all_under / (double)all_n, all_under_plain, all_tight,
		       100.0 * (double)all_tight / (double)all_n, all_tight_plain, res.checked, res.mismatched,
		       res.broken, res.bounded);
	if (json) {
		char *s = cJSON_Print(arr);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(arr);
	}
	free(res.v);
	bench_files_free(&files);
	cmv_models_free(models);
	return 0;
}
