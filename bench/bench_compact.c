/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench compact DIR --for MODEL[:BUDGET][,...] [--offline] [--summarizer M]
 *                   [--llm-url URL] [--json]
 *
 * The pre-migration job on every Claude Code and Codex session under DIR,
 * for each target: tokens before and after (the result rendered for the
 * target and counted exactly), whether it fits and passes the checker, the
 * summarizer passes, the fidelity coverage, and the time. The same-run
 * baseline for time is the trim alone on the same session (what the job
 * adds over it is the paging search, the summary and the checks).
 */
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "bench.h"

static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench compact: %s: %s\n", what, e ? e->message : "failed");
	exit(1);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define USAGE "usage: cmv-bench compact DIR --for MODEL[:BUDGET][,...] [--offline] [--summarizer M] [--llm-url URL] [--json]\n"

/* The counts of a set of runs (a target's, or all of them) in the --json output. */
static void add_counts(cJSON *o, size_t n, size_t fit, size_t pass, size_t summarized, double cov, double time,
		       double trim_time)
{
	cJSON_AddNumberToObject(o, "sessions", (double)n);
	cJSON_AddNumberToObject(o, "fit", (double)fit);
	cJSON_AddNumberToObject(o, "pass_check", (double)pass);
	cJSON_AddNumberToObject(o, "summarized", (double)summarized);
	cJSON_AddNumberToObject(o, "mean_coverage_summarized", summarized ? cov / (double)summarized : 1.0);
	cJSON_AddNumberToObject(o, "seconds", time);
	cJSON_AddNumberToObject(o, "trim_seconds", trim_time);
}

int bench_compact(int argc, char **argv)
{
	const char *dir = NULL, *targets = NULL, *summ_name = NULL, *url = NULL;
	bool json = false, offline = false;
	bench_files l = { 0 };
	cmv_models *models = NULL;
	char machine[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--offline"))
			offline = true;
		else if (!strcmp(argv[i], "--for") && i + 1 < argc)
			targets = argv[++i];
		else if (!strcmp(argv[i], "--summarizer") && i + 1 < argc)
			summ_name = argv[++i];
		else if (!strcmp(argv[i], "--llm-url") && i + 1 < argc)
			url = argv[++i];
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fputs(USAGE, stderr);
			return 2;
		}
	}
	if (!dir || !targets) {
		fputs(USAGE, stderr);
		return 2;
	}
	bench_collect(&l, dir, "claude-code");
	size_t n_cc = l.n;
	bench_collect(&l, dir, "codex");
	if (!l.n) {
		fprintf(stderr, "cmv-bench compact: no Claude Code or Codex sessions under %s\n", dir);
		return 1;
	}
	qsort(l.paths, n_cc, sizeof(*l.paths), cmp_str);
	qsort(l.paths + n_cc, l.n - n_cc, sizeof(*l.paths), cmp_str);
	if (cmv_models_load(&models, NULL) < 0)
		die("the model profiles");
	bench_machine(machine, sizeof(machine));

	const cmv_model *summ = NULL;
	cmv_tok *stok = NULL;
	cmv_llm *llm = NULL;
	if (!offline && (summ_name || url)) {
		cmv_llm_options lo = CMV_LLM_OPTIONS_INIT;
		lo.base_url = url;
		if (cmv_models_find(&summ, models, summ_name ? summ_name : "gpt-4o-mini") < 0 ||
		    cmv_tok_load(&stok, summ->tokenizer, NULL) < 0 || cmv_llm_new(&llm, summ, &lo) < 0)
			die("the summarizer");
	}

	cJSON *doc = cJSON_CreateObject(), *sessions = cJSON_AddArrayToObject(doc, "sessions");
	cJSON *per_target = cJSON_AddArrayToObject(doc, "targets");
	cJSON_AddStringToObject(doc, "machine", machine);
	cJSON_AddStringToObject(doc, "summarizer", llm ? summ->id : "extractive");
	size_t all = 0, all_fit = 0, all_pass = 0, all_summarized = 0;
	double all_cov = 0, all_time = 0, all_trim_time = 0;
	char *list = cmv__strdup(targets);
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':');
		uint64_t budget = 0;
		if (colon) {
			*colon = '\0';
			budget = strtoull(colon + 1, NULL, 10);
		}
		const cmv_model *m = NULL;
		cmv_tok *tok = NULL;
		if (cmv_models_find(&m, models, t) < 0 || cmv_tok_load(&tok, m->tokenizer, NULL) < 0)
			die(t);
		if (!budget || budget > cmv_model_input_budget(m))
			budget = cmv_model_input_budget(m);
		size_t n = 0, fit = 0, pass = 0, summarized = 0;
		double cov = 0, time = 0, trim_time = 0;
		if (!json)
			printf("\n%s, budget %llu tokens (%s)\n%-44s %9s %9s %5s %6s %6s %8s %8s\n", m->id,
			       (unsigned long long)budget, llm ? summ->id : "extractive", "session", "before", "after",
			       "fits", "passes", "cover", "ms", "trim ms");
		for (size_t i = 0; i < l.n; i++) {
			cmv_repo *repo = NULL;
			cmv_import_result res;
			cmv_compact_options co = CMV_COMPACT_OPTIONS_INIT;
			cmv_compact_report rep;
			cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;
			cmv_trim_report trep;
			if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 ||
			    cmv_import_file(&res, repo, l.paths[i], NULL, NULL) < 0)
				die(l.paths[i]);
			/* the baseline: the trim alone, on the same session */
			to.branch = "trim-only";
			double t0 = bench_now();
			if (cmv_trim(&trep, repo, &res.head, &to) < 0)
				die("trim");
			double tt = bench_now() - t0;
			co.branch = "compacted";
			co.target = m;
			co.tok = tok;
			co.budget = budget;
			co.llm = llm;
			co.summarizer = summ;
			co.summarizer_tok = stok;
			t0 = bench_now();
			int rc = cmv_compact(&rep, repo, &res.head, &co);
			double dt = bench_now() - t0;
			const char *base = strrchr(l.paths[i], '/') ? strrchr(l.paths[i], '/') + 1 : l.paths[i];
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "file", l.paths[i]);
			cJSON_AddStringToObject(s, "target", m->id);
			cJSON_AddNumberToObject(s, "budget", (double)budget);
			if (rc < 0) {
				cJSON_AddStringToObject(s, "error", cmv_error_last() ? cmv_error_last()->message : "failed");
				cJSON_AddBoolToObject(s, "fits", false);
				if (!json)
					printf("%-44.44s  FAILED: %s\n", base, cmv_error_last() ? cmv_error_last()->message : "?");
			} else {
				cJSON_AddNumberToObject(s, "tokens_before", (double)rep.tokens_before);
				cJSON_AddNumberToObject(s, "tokens_after", (double)rep.tokens_after);
				cJSON_AddBoolToObject(s, "fits", rep.fits);
				cJSON_AddBoolToObject(s, "passes_check", rep.problems == 0);
				cJSON_AddNumberToObject(s, "stage", rep.stage);
				cJSON_AddNumberToObject(s, "passes", rep.passes);
				cJSON_AddNumberToObject(s, "coverage", rep.coverage);
				cJSON_AddNumberToObject(s, "entities", (double)rep.entities);
				cJSON_AddNumberToObject(s, "covered_messages", (double)rep.covered_messages);
				cJSON_AddNumberToObject(s, "kept_messages", (double)rep.kept_messages);
				cJSON_AddNumberToObject(s, "seconds", dt);
				cJSON_AddNumberToObject(s, "trim_seconds", tt);
				fit += rep.fits;
				pass += rep.problems == 0;
				if (rep.stage >= 2) {
					summarized++;
					cov += rep.coverage;
				}
				time += dt;
				trim_time += tt;
				if (!json)
					printf("%-44.44s %9llu %9llu %5s %6u %5.1f%% %8.1f %8.1f\n", base,
					       (unsigned long long)rep.tokens_before, (unsigned long long)rep.tokens_after,
					       rep.fits ? "yes" : "NO", rep.passes,
					       rep.stage >= 2 ? 100.0 * rep.coverage : 100.0, dt * 1e3, tt * 1e3);
				cmv_compact_report_dispose(&rep);
			}
			cJSON_AddItemToArray(sessions, s);
			n++;
			cmv_repo_free(repo);
		}
		cJSON *pt = cJSON_CreateObject();
		cJSON_AddStringToObject(pt, "target", m->id);
		cJSON_AddNumberToObject(pt, "budget", (double)budget);
		add_counts(pt, n, fit, pass, summarized, cov, time, trim_time);
		cJSON_AddItemToArray(per_target, pt);
		if (!json)
			printf("%s: %zu of %zu fit, %zu pass the checker; %zu needed a summary (mean coverage %.1f%%); "
			       "%.2f s, %.1fx the trim alone\n", m->id, fit, n, pass, summarized,
			       summarized ? 100.0 * cov / (double)summarized : 100.0, time, trim_time > 0 ? time / trim_time : 0);
		all += n;
		all_fit += fit;
		all_pass += pass;
		all_summarized += summarized;
		all_cov += cov;
		all_time += time;
		all_trim_time += trim_time;
		cmv_tok_free(tok);
	}
	free(list);
	cJSON *total = cJSON_AddObjectToObject(doc, "total");
	add_counts(total, all, all_fit, all_pass, all_summarized, all_cov, all_time, all_trim_time);
	if (json) {
		char *text = cJSON_Print(doc);
		puts(text);
		cJSON_free(text);
	} else {
		printf("\nmachine: %s\n", machine);
	}
	cJSON_Delete(doc);
	cmv_llm_free(llm);
	cmv_tok_free(stok);
	cmv_models_free(models);
	bench_files_free(&l);
	return all_fit == all ? 0 : 1;
}
