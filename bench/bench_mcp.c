/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench mcp [--quick] [--queries N] [--live[=same]] [--json]: search and
 * get latency of the MCP server on histories of 100k and 1M tokens, over
 * stdio (the server's stdio loop on a pipe) and Streamable HTTP (loopback,
 * one keep-alive connection, stateless 2026-07-28 requests), beside the
 * in-process query path (cmv_query_pages, cmv_recall) in the same run.
 *
 * --live: a live store, as behind a running agent session: before each
 * question one more turn is appended, untimed, through another handle on
 * the store (the hook's import in its own process), or with =same through
 * the searching handle (the proxy's case). The search then indexes that
 * turn and meets every cache the append left. "pages" is a hash of each
 * question's pages on each path (ids, kinds, turns, costs; over a
 * transport the reply's bytes): two builds that rank alike print the same.
 *
 * The history is made up: turns of 150 to 250 words drawn from a
 * 5,000-word vocabulary with a Zipf-like skew (seeded, the same every
 * run); the queries are 3 words of the same vocabulary. Goal (issue 23):
 * p95 under 10 ms at 1M tokens for search and for get.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/base.h"
#include "bench.h"
#include "server/mcp.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define VOCAB 5000
static char words[VOCAB][12];

static void make_vocab(void)
{
	static const char syl[][4] = { "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor", "fen", "gal", "hup", "jin" };
	for (size_t i = 0; i < VOCAB; i++) {
		size_t n = 2 + i % 3, o = 0, x = i * 2654435761u;
		for (size_t k = 0; k < n && o + 4 < sizeof(words[0]); k++, x /= 16)
			o += (size_t)snprintf(words[i] + o, sizeof(words[0]) - o, "%s", syl[x % 16]);
	}
}

/* A word, the low ranks far more often (text is skewed so). */
static const char *word(void)
{
	double u = (double)(next_rand() % 1000000) / 1e6;
	return words[(size_t)(VOCAB * u * u * u) % VOCAB];
}

typedef struct {
	mcp_server *s;
	FILE *in, *out;
} stdio_thread;

static void *run_stdio(void *p)
{
	stdio_thread *t = p;
	mcp_serve_stdio(t->s, t->in, t->out);
	fclose(t->out);
	return NULL;
}

typedef struct {
	mcp_server *s;
	volatile sig_atomic_t stop;
	unsigned int port;
	pthread_mutex_t m;
	pthread_cond_t c;
} http_thread;

static void on_ready(unsigned int port, void *payload)
{
	http_thread *h = payload;
	pthread_mutex_lock(&h->m);
	h->port = port ? port : 1;
	pthread_cond_signal(&h->c);
	pthread_mutex_unlock(&h->m);
}

static void *run_http(void *p)
{
	http_thread *h = p;
	if (mcp_serve_http(h->s, "127.0.0.1:0", NULL, &h->stop, on_ready, h) < 0)
		on_ready(0, h);
	return NULL;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *payload)
{
	cmv_buf_put(payload, ptr, size * n);
	return size * n;
}

/* Up to n_max turns of made-up text, while fewer than n_words words are written. */
static int append_turns(cmv_repo *repo, size_t n_max, uint64_t n_words, size_t *turns, uint64_t *w_out)
{
	cmv_message msgs[200];
	cmv_block_content blocks[200];
	char *texts[200];
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 20);
	uint64_t w = 0;
	size_t n = 0;
	int error;

	for (; n < n_max && n < 200 && w < n_words; n++, (*turns)++) {
		size_t len = 150 + next_rand() % 100;
		cmv_buf_clear(&text);
		for (size_t k = 0; k < len; k++)
			cmv_buf_printf(&text, "%s%s", k ? " " : "", word());
		w += len;
		texts[n] = cmv_buf_detach(&text);
		blocks[n] = (cmv_block_content){ .type = "text", .data = texts[n], .len = strlen(texts[n]) };
		msgs[n] = (cmv_message){ .role = *turns % 2 ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER,
					 .kind = CMV_KIND_MESSAGE, .blocks = &blocks[n], .n_blocks = 1 };
	}
	if ((error = cmv_append(NULL, repo, "main", msgs, n, CMV_APPEND_CREATE)) < 0)
		fprintf(stderr, "cmv-bench mcp: appending: %s\n", cmv_error_last()->message);
	for (size_t k = 0; k < n; k++)
		free(texts[k]);
	cmv_buf_dispose(&text);
	*w_out += w;
	return error;
}

/* FNV-1a over bytes, on from h */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
	return h;
}

static double ms_since(double t0)
{
	return (bench_now() - t0) * 1e3;
}

int bench_mcp(int argc, char **argv)
{
	bool json = false, quick = false;
	int live = 0; /* 1: appends through another handle, 2: through the searching one */
	size_t queries = 200;
	uint64_t sizes[2] = { 100000, 1000000 };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
			queries = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--live"))
			live = 1;
		else if (!strcmp(argv[i], "--live=same"))
			live = 2;
		else {
			fprintf(stderr, "usage: cmv-bench mcp [--quick] [--queries N] [--live[=same]] [--json]\n");
			return 2;
		}
	}
	if (quick)
		sizes[1] = 200000, queries = queries > 50 ? 50 : queries;
	if (!queries)
		queries = 1;
	make_vocab();
	char machine[256];
	bench_machine(machine, sizeof(machine));
	cJSON *arr = cJSON_CreateArray();
	if (!json)
		printf("cmv-bench mcp: %s; %zu queries%s; budgets: search 2000, get 4000 tokens (claude-sonnet-4-5)\n"
		       "%9s %-8s %-10s %9s %9s %17s\n",
		       machine, queries,
		       live == 1 ? ", live (a turn appended before each, by another handle)" :
		       live == 2 ? ", live (a turn appended before each, by the same handle)" : "",
		       "history", "tool", "path", "p50 ms", "p95 ms", "pages");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (size_t z = 0; z < 2; z++) {
		char *dir = bench_tmpdir(), path[4096];
		cmv_repo *repo = NULL;
		snprintf(path, sizeof(path), "%s/store.db", dir);
		if (cmv_repo_open(&repo, path, CMV_REPO_OPEN_CREATE) < 0) {
			fprintf(stderr, "cmv-bench mcp: a store: %s\n", cmv_error_last()->message);
			return 1;
		}
		/* the history, in batches of 200 turns */
		uint64_t words_total = sizes[z] * 3 / 4; /* about 4/3 tokens a made-up word */
		size_t turns = 0;
		for (uint64_t w = 0; w < words_total;) {
			if (append_turns(repo, 200, words_total - w, &turns, &w) < 0)
				return 1;
		}
		cmv_head_set(repo, "main");

		mcp_server *s = NULL;
		mcp_config cfg = { dir, NULL };
		if (mcp_server_new(&s, repo, &cfg) < 0) {
			fprintf(stderr, "cmv-bench mcp: the server: %s\n", cmv_error_last()->message);
			return 1;
		}
		const cmv_model *m;
		cmv_models *models = NULL;
		cmv_tok *tok = NULL;
		cmv_models_load(&models, NULL);
		cmv_models_resolve(&m, models, "claude-sonnet-4-5");
		cmv_tok_load(&tok, m->tokenizer, NULL);
		cmv_id tip;
		cmv_resolve(&tip, repo, "main");
		/* live: the writer, and its words (the count is not used) */
		cmv_repo *writer = live == 2 ? repo : NULL;
		uint64_t live_words = 0;
		if (live == 1 && cmv_repo_open(&writer, path, 0) < 0) {
			fprintf(stderr, "cmv-bench mcp: a second handle: %s\n", cmv_error_last()->message);
			return 1;
		}
		uint64_t pages[3] = { 14695981039346656037ULL, 14695981039346656037ULL, 14695981039346656037ULL };

		/* the queries, and for get the first hit of each (warm-up: the query index is built once) */
		char (*q)[64] = calloc(queries, sizeof(*q));
		char (*ids)[CMV_ID_HEXSZ + 1] = calloc(queries, sizeof(*ids));
		for (size_t i = 0; i < queries; i++)
			snprintf(q[i], sizeof(q[i]), "%s %s %s", word(), word(), word());
		double *t[3][2];
		for (int p = 0; p < 3; p++)
			for (int k = 0; k < 2; k++)
				t[p][k] = calloc(queries, sizeof(double));
		/* in-process */
		size_t found = 0;
		for (size_t i = 0; i < queries; i++) {
			cmv_query_hit *hits = NULL;
			size_t n = 0;
			if (writer) {
				if (append_turns(writer, 1, UINT64_MAX, &turns, &live_words) < 0)
					return 1;
				cmv_resolve(&tip, repo, "main");
			}
			double t0 = bench_now();
			cmv_query_pages(&hits, &n, repo, &tip, "main", m, tok, q[i], 2000 * 16);
			t[0][0][i] = ms_since(t0);
			for (size_t k = 0; k < n; k++) {
				uint64_t v[3] = { hits[k].kind, hits[k].turn, hits[k].tokens };
				pages[0] = hash_bytes(pages[0], hits[k].id, strlen(hits[k].id));
				pages[0] = hash_bytes(pages[0], v, sizeof(v));
			}
			snprintf(ids[i], sizeof(ids[i]), "%s", n ? hits[0].id : "0000000");
			found += n > 0;
			if (n == 0)
				cmv_error_clear();
			cmv_query_hits_free(hits, n);
			cmv_buf b = CMV_BUF_INIT((size_t)1 << 30);
			t0 = bench_now();
			cmv_recall(&b, repo, ids[i]);
			t[0][1][i] = ms_since(t0);
			cmv_error_clear();
			cmv_buf_dispose(&b);
		}
		/* stdio: the server's loop on a pair of pipes */
		int to[2], from[2];
		if (pipe(to) || pipe(from))
			return 1;
		stdio_thread st = { s, fdopen(to[0], "r"), fdopen(from[1], "w") };
		FILE *w = fdopen(to[1], "w"), *r = fdopen(from[0], "r");
		pthread_t th;
		pthread_create(&th, NULL, run_stdio, &st);
		char *line = NULL;
		size_t cap = 0;
		for (size_t i = 0; i < queries; i++) {
			if (writer && append_turns(writer, 1, UINT64_MAX, &turns, &live_words) < 0)
				return 1;
			for (int k = 0; k < 2; k++) {
				double t0 = bench_now();
				if (!k)
					fprintf(w, "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"%s\",\"budget_tokens\":2000}}}\n", i, q[i]);
				else
					fprintf(w, "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/call\",\"params\":{\"name\":\"get\",\"arguments\":{\"ids\":[\"%s\"],\"budget_tokens\":4000}}}\n", i, ids[i]);
				fflush(w);
				ssize_t got = getline(&line, &cap, r);
				if (got < 0)
					return 1;
				t[1][k][i] = ms_since(t0);
				if (!k)
					pages[1] = hash_bytes(pages[1], line, (size_t)got);
			}
		}
		fclose(w);
		pthread_join(th, NULL);
		fclose(st.in);
		fclose(r);
		free(line);
		/* HTTP: loopback, one connection kept alive */
		http_thread ht = { .s = s };
		pthread_mutex_init(&ht.m, NULL);
		pthread_cond_init(&ht.c, NULL);
		pthread_create(&th, NULL, run_http, &ht);
		pthread_mutex_lock(&ht.m);
		while (!ht.port)
			pthread_cond_wait(&ht.c, &ht.m);
		pthread_mutex_unlock(&ht.m);
		char url[64], body[512];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/mcp", ht.port);
		CURL *c = curl_easy_init();
		struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
		hd = curl_slist_append(hd, "MCP-Protocol-Version: " MCP_PROTOCOL_STATELESS);
		cmv_buf resp = CMV_BUF_INIT((size_t)1 << 30);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
		for (size_t i = 0; i < queries; i++) {
			if (writer && append_turns(writer, 1, UINT64_MAX, &turns, &live_words) < 0)
				return 1;
			for (int k = 0; k < 2; k++) {
				if (!k)
					snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"%s\",\"budget_tokens\":2000}}}", i, q[i]);
				else
					snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/call\",\"params\":{\"name\":\"get\",\"arguments\":{\"ids\":[\"%s\"],\"budget_tokens\":4000}}}", i, ids[i]);
				curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
				cmv_buf_clear(&resp);
				double t0 = bench_now();
				if (curl_easy_perform(c) != CURLE_OK)
					return 1;
				t[2][k][i] = ms_since(t0);
				if (!k)
					pages[2] = hash_bytes(pages[2], resp.ptr, resp.size);
			}
		}
		curl_easy_cleanup(c);
		curl_slist_free_all(hd);
		cmv_buf_dispose(&resp);
		ht.stop = 1;
		pthread_join(th, NULL);

		if (!json)
			printf("%9llu tokens: %zu turns; %zu of %zu queries found pages\n", (unsigned long long)sizes[z], turns, found, queries);
		static const char *const paths[3] = { "in-process", "stdio", "http" }, *const tools[2] = { "search", "get" };
		for (int k = 0; k < 2; k++)
			for (int p = 0; p < 3; p++) {
				double p50 = bench_percentile(t[p][k], queries, 0.5), p95 = bench_percentile(t[p][k], queries, 0.95);
				cJSON *o = cJSON_CreateObject();
				cJSON_AddNumberToObject(o, "history_tokens", (double)sizes[z]);
				cJSON_AddNumberToObject(o, "turns", (double)turns);
				cJSON_AddNumberToObject(o, "queries_with_hits", (double)found);
				cJSON_AddStringToObject(o, "tool", tools[k]);
				cJSON_AddStringToObject(o, "path", paths[p]);
				cJSON_AddNumberToObject(o, "p50_ms", p50);
				cJSON_AddNumberToObject(o, "p95_ms", p95);
				char hex[17] = "";
				if (!k)
					snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)pages[p]);
				cJSON_AddStringToObject(o, "pages", hex);
				cJSON_AddBoolToObject(o, "live", live != 0);
				cJSON_AddItemToArray(arr, o);
				if (!json)
					printf("%9llu %-8s %-10s %9.2f %9.2f %17s\n", (unsigned long long)sizes[z], tools[k], paths[p], p50, p95, hex);
			}
		for (int p = 0; p < 3; p++)
			for (int k = 0; k < 2; k++)
				free(t[p][k]);
		free(q);
		free(ids);
		mcp_server_free(s);
		if (live == 1)
			cmv_repo_free(writer);
		cmv_tok_free(tok);
		cmv_models_free(models);
		cmv_repo_free(repo);
		bench_rmdir(dir);
		free(dir);
	}
	curl_global_cleanup();
	if (json) {
		char *out = cJSON_Print(arr);
		puts(out);
		cJSON_free(out);
	}
	cJSON_Delete(arr);
	return 0;
}
