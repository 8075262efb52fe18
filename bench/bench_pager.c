/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench pager [--json] [--quick]: materialize latency for synthetic
 * agent histories of about 10k, 100k and 1M tokens (user turns, tool calls,
 * tool results of every size) into 8k, 32k, 128k and 200k windows: cold
 * (a store just opened), warm (the same call again) and after each of 16
 * appended turns (with the branch's page table: the median and the most).
 * Baseline, same run: rendering the whole branch with cmv_render (what a
 * request costs with no pager at all).
 *
 * Fault-in, per history: by page id; by query (recall --query with the
 * branch's query index): the first query (which builds the index), then 48
 * more at the same tip, then one after each of 16 appended turns (which
 * grows it). Baseline, same run: the same queries with no index (the
 * branch loaded each time).
 *
 * The histories' words follow Zipf's law over 4,096 made-up words, as the
 * words of text do, and each query asks for two or three words of middling
 * rank (100 to 2,000), as a question's content words are: a search touches
 * the texts that hold them. One more history of 1M tokens draws uniformly
 * on 20 words, as this bench did before: every query word is in nearly
 * every text, so FTS5 scores them all; its fault-in figures are the worst
 * case, not what text does.
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

#define ZIPF_WORDS 4096
static char zipf_word[ZIPF_WORDS][16];
static double zipf_cdf[ZIPF_WORDS];
static bool uniform20; /* the worst case: 20 words, each as likely */

/* Word r (by rank) is three syllables, its digits in base 16; its weight is 1/(r+1). */
static void vocabulary(void)
{
	static const char *const syl[] = { "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo",
					   "ze", "pu", "ge", "ha", "do", "fi", "bu", "ye" };
	double sum = 0;
	for (size_t r = 0; r < ZIPF_WORDS; r++) {
		snprintf(zipf_word[r], sizeof(zipf_word[r]), "%s%s%s", syl[r >> 8 & 15], syl[r >> 4 & 15], syl[r & 15]);
		sum += 1.0 / (double)(r + 1);
		zipf_cdf[r] = sum;
	}
	for (size_t r = 0; r < ZIPF_WORDS; r++)
		zipf_cdf[r] /= sum;
}

static const char *word(void)
{
	static const char *const w[] = { "alpha", "parser", "token", "window", "page", "cache", "branch", "error",
					 "value", "vector", "matrix", "file", "line", "struct", "return", "buffer",
					 "commit", "merge", "index", "query" };
	if (uniform20)
		return w[next() % 20];
	double u = (double)(next() >> 11) * 0x1.0p-53;
	size_t lo = 0, hi = ZIPF_WORDS - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return zipf_word[lo];
}

/*
 * turn() sizes its texts in words of 1.3 tokens (English's, in this
 * tokenizer); a made-up word takes more, so words() writes n times this
 * many of them (per_word_scale sets it from the tokenizer).
 */
static double word_scale = 1.0;

static void words(cmv_buf *b, size_t n)
{
	n = (size_t)((double)n * word_scale + 0.5);
	n = n ? n : 1;
	cmv_buf_clear(b);
	for (size_t i = 0; i < n; i++)
		cmv_buf_printf(b, "%s%s", i ? (next() % 9 ? " " : "\n") : "", word());
}

/* A query: two or three words of middling rank (the worst case: of the 20). */
static void query(cmv_buf *q)
{
	static const char *const worst[] = { "parser buffer", "merge commit index", "vector matrix value",
					     "cache window page", "struct return", "token query error" };
	cmv_buf_clear(q);
	if (uniform20) {
		cmv_buf_puts(q, worst[next() % 6]);
		return;
	}
	for (size_t i = 0, n = 2 + next() % 2; i < n; i++)
		cmv_buf_printf(q, "%s%s", i ? " " : "", zipf_word[100 + next() % 1900]);
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
	int error = cmv_materialize(&out, rep, repo, &tip, m, tok, &o);
	if (error == CMV_EBUDGET) { /* the last turns alone do not fit this window */
		cmv_error_clear();
		cmv_buf_dispose(&out);
		return -1;
	}
	if (error < 0)
		die("materialize");
	double ms = (bench_now() - t0) * 1e3;
	cmv_buf_dispose(&out);
	return ms;
}

/* word_scale for tok: the text words() writes at 1.3 tokens a word. */
static void per_word_scale(cmv_tok *tok)
{
	cmv_buf b = CMV_BUF_INIT(1 << 22);
	size_t n = 0;
	uint64_t keep = rng;
	word_scale = 1.0;
	words(&b, 20000);
	if (cmv_tok_count(&n, tok, b.ptr, b.size) < 0)
		die("count");
	cmv_buf_dispose(&b);
	rng = keep;
	word_scale = 1.3 * 20000 / (double)n;
}

/* recall --query at the branch's tip: its time in ms, with the branch's index (or none, with no branch). */
static double query_ms(cmv_buf *page, cmv_repo *repo, const char *branch, bool indexed, const cmv_model *m,
		       cmv_tok *tok, const char *q)
{
	cmv_id tip;
	size_t n = 0;
	if (cmv_resolve(&tip, repo, branch) < 0)
		die("resolve");
	double t0 = bench_now();
	if (cmv_recall_query(page, &n, repo, &tip, indexed ? branch : NULL, m, tok, q, 2000) < 0)
		die("recall --query");
	return (bench_now() - t0) * 1e3;
}

/*
 * Fault-in on branch h: by id (pages that left in rep), by query (the
 * first, which builds the index; 48 at the same tip; one after each of
 * APPENDS appended turns) and, the baseline, by query with no index.
 */
static cJSON *fault_in(cmv_repo *repo, const cmv_materialize_report *rep, const cmv_model *m, cmv_tok *tok,
		       uint64_t history)
{
	double by_id[64], by_q[48], after[APPENDS], loaded[6], loaded_after[6];
	size_t n_id = 0;
	cmv_buf page = CMV_BUF_INIT((size_t)1 << 28), q = CMV_BUF_INIT(1 << 12);
	for (size_t p = 0; p < rep->n_pages && n_id < 64; p++)
		if (rep->pages[p].state != CMV_PAGE_RESIDENT) {
			double f0 = bench_now();
			if (cmv_recall(&page, repo, rep->pages[p].id) < 0)
				die("recall");
			by_id[n_id++] = (bench_now() - f0) * 1e3;
		}
	/* what the appends left for the search index to take in, taken in first (cmv_repo_index, as a host would) */
	if (cmv_repo_index(NULL, repo) < 0)
		die("index");
	query(&q);
	double first = query_ms(&page, repo, "h", true, m, tok, q.ptr);
	for (size_t i = 0; i < 48; i++) {
		query(&q);
		by_q[i] = query_ms(&page, repo, "h", true, m, tok, q.ptr);
	}
	for (size_t i = 0; i < 6; i++) {
		query(&q);
		loaded[i] = query_ms(&page, repo, "h", false, m, tok, q.ptr);
	}
	for (size_t a = 0; a < APPENDS; a++) {
		turn(repo, "h", 2000000 + a);
		query(&q);
		after[a] = query_ms(&page, repo, "h", true, m, tok, q.ptr);
	}
	for (size_t a = 0; a < 6; a++) {
		turn(repo, "h", 3000000 + a);
		query(&q);
		loaded_after[a] = query_ms(&page, repo, "h", false, m, tok, q.ptr);
	}
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "history_tokens", (double)history);
	cJSON_AddStringToObject(f, "words", uniform20 ? "uniform-20" : "zipf-4096");
	cJSON_AddNumberToObject(f, "by_id_p50_ms", bench_percentile(by_id, n_id, 0.5));
	cJSON_AddNumberToObject(f, "by_id_p95_ms", bench_percentile(by_id, n_id, 0.95));
	cJSON_AddNumberToObject(f, "by_query_first_ms", first);
	cJSON_AddNumberToObject(f, "by_query_p50_ms", bench_percentile(by_q, 48, 0.5));
	cJSON_AddNumberToObject(f, "by_query_p95_ms", bench_percentile(by_q, 48, 0.95));
	cJSON_AddNumberToObject(f, "by_query_after_append_ms", bench_percentile(after, APPENDS, 0.5));
	cJSON_AddNumberToObject(f, "by_query_after_append_max_ms", bench_percentile(after, APPENDS, 1.0));
	cJSON_AddNumberToObject(f, "by_query_no_index_ms", bench_percentile(loaded, 6, 0.5));
	cJSON_AddNumberToObject(f, "by_query_no_index_after_append_ms", bench_percentile(loaded_after, 6, 0.5));
	cmv_buf_dispose(&page);
	cmv_buf_dispose(&q);
	return f;
}

int bench_pager(int argc, char **argv)
{
	bool json = false, quick = false;
	/* the last: the worst case for a search, fault-in only */
	static const uint64_t sizes[] = { 10000, 100000, 1000000, 1000000 };
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
	vocabulary();
	bench_machine(machine, sizeof(machine));
	cJSON *doc = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(doc, "runs");
	cJSON *faults = cJSON_AddArrayToObject(doc, "fault_in");
	cJSON_AddStringToObject(doc, "machine", machine);
	cJSON_AddStringToObject(doc, "model", m->id);
	if (!json)
		printf("%s, %s; after an append: the median and the most of %d\n%10s %8s %9s %9s %9s %9s %9s %10s %9s "
		       "%9s\n", m->id, machine, APPENDS, "history", "window", "cold ms", "warm ms", "append ms", "max ms",
		       "render ms", "resident", "stubbed", "evicted");
	for (size_t s = 0; s < (quick ? 2 : 4); s++) {
		char *dir = bench_tmpdir(), path[4096];
		cmv_repo *repo = NULL;
		uniform20 = s == 3;
		snprintf(path, sizeof(path), "%s/.cmv", dir);
		if (cmv_repo_init(&repo, dir) < 0)
			die("a store");
		/* write until the history is near the size: turn() counts words of 1.3 tokens */
		per_word_scale(tok);
		uint64_t w = 0;
		size_t t = 0;
		while ((double)w * 1.3 < (double)sizes[s])
			w += turn(repo, "h", t++);
		cmv_id tip;
		cmv_buf body = CMV_BUF_INIT((size_t)1 << 30);
		cmv_token_stats st;
		cmv_materialize_report rep_id = { 0 };
		if (cmv_resolve(&tip, repo, "h") < 0 || cmv_count_sent(&st, repo, &tip, m, tok) < 0)
			die("count");
		memset(&rep_id, 0, sizeof(rep_id));
		for (size_t k = 0; k < sizeof(windows) / sizeof(*windows); k++) {
			cmv_materialize_report rep = { 0 }, rep2 = { 0 }, rep3 = { 0 };
			/* cold: the store just opened */
			cmv_repo_free(repo);
			if (cmv_repo_open(&repo, path, 0) < 0)
				die("open");
			char branch[32];
			snprintf(branch, sizeof(branch), "w%zu", k);
			if (cmv_branch_create(repo, branch, &tip, "h") < 0)
				die("branch");
			double cold = materialize_ms(&rep, repo, branch, m, tok, windows[k], true);
			if (cold < 0) {
				if (!json)
					printf("%10llu %8llu   the last turns alone are over the window\n",
					       (unsigned long long)st.total, (unsigned long long)windows[k]);
				continue;
			}
			double warm = materialize_ms(&rep2, repo, branch, m, tok, windows[k], true);
			if (uniform20) { /* fault-in only: the pages of the smallest window are those recalled by id */
				rep_id = rep2;
				cmv_materialize_report_dispose(&rep);
				break;
			}
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
			if (!rep_id.n_pages)
				rep_id = rep2; /* the smallest window's pages that left are those recalled by id */
			else
				cmv_materialize_report_dispose(&rep2);
			cmv_materialize_report_dispose(&rep);
			cmv_materialize_report_dispose(&rep3);
		}
		cJSON_AddItemToArray(faults, fault_in(repo, &rep_id, m, tok, st.total));
		cmv_materialize_report_dispose(&rep_id);
		cmv_buf_dispose(&body);
		cmv_repo_free(repo);
		bench_rmdir(dir);
		free(dir);
	}
	if (json) {
		char *out = cJSON_Print(doc);
		puts(out);
		cJSON_free(out);
	} else {
		printf("\nfault-in, ms: by id (p50, p95); by query with the branch's index: the first (builds it), p50 and "
		       "p95 of 48 more at that tip, after an append (median, most of %d); baseline, by query with no index: "
		       "p50 of 6 at that tip, median of 6 after an append\n"
		       "%10s %10s %6s %6s %8s %6s %6s %8s %6s %9s %9s\n", APPENDS, "history", "words", "id50", "id95", "first",
		       "q50", "q95", "append", "max", "no index", "appended");
		static const char *const f[] = { "by_id_p50_ms", "by_id_p95_ms", "by_query_first_ms", "by_query_p50_ms",
						 "by_query_p95_ms", "by_query_after_append_ms",
						 "by_query_after_append_max_ms", "by_query_no_index_ms",
						 "by_query_no_index_after_append_ms" };
		static const int width[] = { 6, 6, 8, 6, 6, 8, 6, 9, 9 }, prec[] = { 3, 3, 1, 1, 1, 1, 1, 1, 1 };
		for (const cJSON *e = faults->child; e; e = e->next) {
			printf("%10.0f %10s", cJSON_GetNumberValue(cJSON_GetObjectItem(e, "history_tokens")),
			       cJSON_GetStringValue(cJSON_GetObjectItem(e, "words")));
			for (size_t i = 0; i < 9; i++)
				printf(" %*.*f", width[i], prec[i], cJSON_GetNumberValue(cJSON_GetObjectItem(e, f[i])));
			putchar('\n');
		}
	}
	cJSON_Delete(doc);
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}
