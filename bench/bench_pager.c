/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench pager [--json] [--quick]: materialize latency for synthetic
 * agent histories of about 10k, 100k and 1M tokens (user turns, tool calls,
 * tool results of every size) into 8k, 32k, 128k and 200k windows: cold
 * (a store just opened), warm (the same call again) and after each of 16
 * appended turns (with the branch's page table: the median and the most);
 * fault-in latency by page id and by query. Baseline, same run: rendering the whole branch with cmv_render (what
 * a request costs with no pager at all).
 */
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void words(cmv_buf *b, size_t n)
{
	static const char *const w[] = { "alpha", "parser", "token", "window", "page", "cache", "branch", "error",
					 "value", "vector", "matrix", "file", "line", "struct", "return", "buffer",
					 "commit", "merge", "index", "query" };
	cmv_buf_clear(b);
	for (size_t i = 0; i < n; i++)
		cmv_buf_printf(b, "%s%s", i ? (next() % 9 ? " " : "\n") : "", w[next() % 20]);
}

#define APPENDS 16 /* appended turns timed, each followed by a materialize */

static void die(const char *what)
{
	fprintf(stderr, "cmv-bench pager: %s: %s\n", what, cmv_error_last() ? cmv_error_last()->message : "failed");
	exit(1);
}

/* One turn: a question, a few calls with results, an answer. Returns its words, about. */
static size_t turn(cmv_repo *repo, const char *branch, size_t t)
{
	cmv_buf text = CMV_BUF_INIT(1 << 22), input = CMV_BUF_INIT(1 << 22);
	cmv_block_content b[2];
	size_t n = 0, w;
	char id[48];
	words(&text, w = 10 + next() % 60);
	n += w;
	b[0] = (cmv_block_content){ .type = "text", .data = text.ptr, .len = text.size };
	cmv_message u = { .role = CMV_ROLE_USER, .kind = CMV_KIND_MESSAGE, .blocks = b, .n_blocks = 1 };
	if (cmv_append(NULL, repo, branch, &u, 1, CMV_APPEND_CREATE) < 0)
		die("append");
	for (size_t c = 1 + next() % 3; c > 0; c--) {
		snprintf(id, sizeof(id), "call_%zu_%zu", t, c);
		cmv_buf_clear(&input);
		cmv_buf_printf(&input, "{\"command\":\"grep -n value src/file%zu.c\"}", (size_t)(next() % 100));
		words(&text, w = 5 + next() % 30);
		n += w + 10;
		b[0] = (cmv_block_content){ .type = "text", .data = text.ptr, .len = text.size };
		b[1] = (cmv_block_content){ .type = "tool_use", .data = input.ptr, .len = input.size, .tool_id = id,
					    .tool_name = "Bash" };
		cmv_message a = { .role = CMV_ROLE_ASSISTANT, .kind = CMV_KIND_MESSAGE, .blocks = b, .n_blocks = 2 };
		if (cmv_append(NULL, repo, branch, &a, 1, 0) < 0)
			die("append");
		words(&text, w = next() % 4 ? 20 + next() % 200 : 500 + next() % 3000);
		n += w;
		b[0] = (cmv_block_content){ .type = "tool_result", .data = text.ptr, .len = text.size, .tool_id = id };
		cmv_message r = { .role = CMV_ROLE_TOOL, .kind = CMV_KIND_MESSAGE, .blocks = b, .n_blocks = 1 };
		if (cmv_append(NULL, repo, branch, &r, 1, 0) < 0)
			die("append");
	}
	words(&text, w = 20 + next() % 150);
	n += w;
	b[0] = (cmv_block_content){ .type = "text", .data = text.ptr, .len = text.size };
	cmv_message a = { .role = CMV_ROLE_ASSISTANT, .kind = CMV_KIND_MESSAGE, .blocks = b, .n_blocks = 1 };
	if (cmv_append(NULL, repo, branch, &a, 1, 0) < 0)
		die("append");
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&input);
	return n;
}

static double materialize_ms(cmv_materialize_report *rep, cmv_repo *repo, const char *branch, const cmv_model *m,
			     cmv_tok *tok, uint64_t budget, bool state)
{
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
	cmv_id tip;
	o.budget = budget;
	o.state_branch = state ? branch : NULL;
	if (cmv_resolve(&tip, repo, branch) < 0)
		die("resolve");
	double t0 = bench_now();
	if (cmv_materialize(&out, rep, repo, &tip, m, tok, &o) < 0)
		die("materialize");
	double ms = (bench_now() - t0) * 1e3;
	cmv_buf_dispose(&out);
	return ms;
}

int bench_pager(int argc, char **argv)
{
	bool json = false, quick = false;
	static const uint64_t sizes[] = { 10000, 100000, 1000000 };
	static const uint64_t windows[] = { 8000, 32000, 128000, 200000 };
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	char machine[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else {
			fprintf(stderr, "usage: cmv-bench pager [--quick] [--json]\n");
			return 2;
		}
	}
	if (cmv_models_load(&models, NULL) < 0 || cmv_models_find(&m, models, "gpt-4o") < 0 ||
	    cmv_tok_load(&tok, m->tokenizer, NULL) < 0)
		die("the model");
	bench_machine(machine, sizeof(machine));
	cJSON *doc = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(doc, "runs");
	cJSON_AddStringToObject(doc, "machine", machine);
	cJSON_AddStringToObject(doc, "model", m->id);
	if (!json)
		printf("%s, %s; after an append: the median and the most of %d\n%10s %8s %9s %9s %9s %9s %9s %10s %9s "
		       "%9s\n", m->id, machine, APPENDS, "history", "window", "cold ms", "warm ms", "append ms", "max ms",
		       "render ms", "resident", "stubbed", "evicted");
	for (size_t s = 0; s < (quick ? 2 : 3); s++) {
		char *dir = bench_tmpdir(), path[4096];
		cmv_repo *repo = NULL;
		snprintf(path, sizeof(path), "%s/.cmv", dir);
		if (cmv_repo_init(&repo, dir) < 0)
			die("a store");
		/* words are about 1.3 tokens: write until the history is near the size */
		uint64_t w = 0;
		size_t t = 0;
		while ((double)w * 1.3 < (double)sizes[s])
			w += turn(repo, "h", t++);
		cmv_id tip;
		cmv_buf body = CMV_BUF_INIT((size_t)1 << 30);
		cmv_token_stats st;
		if (cmv_resolve(&tip, repo, "h") < 0 || cmv_count_sent(&st, repo, &tip, m, tok) < 0)
			die("count");
		for (size_t k = 0; k < sizeof(windows) / sizeof(*windows); k++) {
			cmv_materialize_report rep, rep2, rep3;
			/* cold: the store just opened */
			cmv_repo_free(repo);
			if (cmv_repo_open(&repo, path, 0) < 0)
				die("open");
			char branch[32];
			snprintf(branch, sizeof(branch), "w%zu", k);
			if (cmv_branch_create(repo, branch, &tip, "h") < 0)
				die("branch");
			double cold = materialize_ms(&rep, repo, branch, m, tok, windows[k], true);
			double warm = materialize_ms(&rep2, repo, branch, m, tok, windows[k], true);
			/* after an append: each of several, one turn each (a fold of the kept request among them) */
			double apps[APPENDS];
			for (size_t a = 0; a < APPENDS; a++) {
				turn(repo, branch, 1000000 + k * 100 + a);
				apps[a] = materialize_ms(&rep3, repo, branch, m, tok, windows[k], true);
				if (a + 1 < APPENDS)
					cmv_materialize_report_dispose(&rep3);
			}
			double app = bench_percentile(apps, APPENDS, 0.5), app_max = bench_percentile(apps, APPENDS, 1.0);
			double t0 = bench_now();
			if (cmv_render(&body, NULL, repo, &tip, CMV_RENDER_OPENAI_CHAT, NULL) < 0)
				die("render");
			double render = (bench_now() - t0) * 1e3;
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "history_tokens", (double)st.total);
			cJSON_AddNumberToObject(r, "window", (double)windows[k]);
			cJSON_AddNumberToObject(r, "cold_ms", cold);
			cJSON_AddNumberToObject(r, "warm_ms", warm);
			cJSON_AddNumberToObject(r, "after_append_ms", app);
			cJSON_AddNumberToObject(r, "after_append_max_ms", app_max);
			cJSON_AddNumberToObject(r, "render_ms", render);
			cJSON_AddNumberToObject(r, "tokens", (double)rep2.tokens);
			cJSON_AddNumberToObject(r, "resident", (double)rep2.resident);
			cJSON_AddNumberToObject(r, "stubbed", (double)rep2.stubbed);
			cJSON_AddNumberToObject(r, "evicted", (double)rep2.evicted);
			cJSON_AddItemToArray(runs, r);
			if (!json)
				printf("%10llu %8llu %9.1f %9.1f %9.1f %9.1f %9.1f %10zu %9zu %9zu\n", (unsigned long long)st.total,
				       (unsigned long long)windows[k], cold, warm, app, app_max, render, rep2.resident, rep2.stubbed,
				       rep2.evicted);
			/* fault-in: by id (a page that left) and by query */
			if (k == 0) {
				double by_id[64], by_q[64];
				size_t n_id = 0, n_q = 0;
				cmv_buf page = CMV_BUF_INIT((size_t)1 << 28);
				for (size_t p = 0; p < rep2.n_pages && n_id < 64; p++)
					if (rep2.pages[p].state != CMV_PAGE_RESIDENT) {
						double f0 = bench_now();
						if (cmv_recall(&page, repo, rep2.pages[p].id) < 0)
							die("recall");
						by_id[n_id++] = (bench_now() - f0) * 1e3;
					}
				static const char *const queries[] = { "parser buffer", "merge commit index",
								       "vector matrix value", "cache window page",
								       "struct return", "token query error" };
				for (size_t q = 0; q < 48; q++) {
					size_t n = 0;
					double f0 = bench_now();
					if (cmv_recall_query(&page, &n, repo, &tip, "h", m, tok, queries[q % 6], 2000) < 0)
						die("recall --query");
					by_q[n_q++] = (bench_now() - f0) * 1e3;
				}
				cJSON *f = cJSON_CreateObject();
				cJSON_AddNumberToObject(f, "history_tokens", (double)st.total);
				cJSON_AddNumberToObject(f, "by_id_p50_ms", bench_percentile(by_id, n_id, 0.5));
				cJSON_AddNumberToObject(f, "by_id_p95_ms", bench_percentile(by_id, n_id, 0.95));
				cJSON_AddNumberToObject(f, "by_query_p50_ms", bench_percentile(by_q, n_q, 0.5));
				cJSON_AddNumberToObject(f, "by_query_p95_ms", bench_percentile(by_q, n_q, 0.95));
				cJSON_AddItemToObject(r, "fault_in", f);
				if (!json)
					printf("%10s fault-in by id p50 %.3f ms p95 %.3f ms (%zu pages); by query p50 %.1f ms p95 %.1f ms\n",
					       "", bench_percentile(by_id, n_id, 0.5), bench_percentile(by_id, n_id, 0.95), n_id,
					       bench_percentile(by_q, n_q, 0.5), bench_percentile(by_q, n_q, 0.95));
				cmv_buf_dispose(&page);
			}
			cmv_materialize_report_dispose(&rep);
			cmv_materialize_report_dispose(&rep2);
			cmv_materialize_report_dispose(&rep3);
		}
		cmv_buf_dispose(&body);
		cmv_repo_free(repo);
		bench_rmdir(dir);
		free(dir);
	}
	if (json) {
		char *out = cJSON_Print(doc);
		puts(out);
		cJSON_free(out);
	}
	cJSON_Delete(doc);
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}
