/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench proxy --switch (docs/proxy.md, "Switching"): what switching a
 * live session to another provider costs and changes.
 *
 * 1. Time to first byte of a translated request beside a same-provider one,
 *    in the same run: one proxy (in this process), one loopback upstream
 *    answering Anthropic and Responses streams alike, two sessions of the
 *    same history, one switched to gpt-5; requests alternate between them,
 *    so both see the same machine.
 * 2. Round trips: every session of the corpus (../shared/transcripts)
 *    rendered for Anthropic, rendered for OpenAI (Responses, and Chat),
 *    appended back from that shape and rendered for Anthropic again; the
 *    two Anthropic bodies' messages are compared, and what changed is
 *    counted by kind.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "proxy_inproc.h"
#include "server/proxy.h"

static void sw_die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench proxy --switch: %s%s%s\n", what, e ? ": " : "", e ? e->message : "");
	exit(1);
}

/* ---- the upstream: an Anthropic or a Responses stream, the same text ------------------------ */

static const char SW_ANTHROPIC[] =
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"type\":\"message\","
	"\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"
	"\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n"
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Noted.\"}}\n\n"
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n"
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
static const char SW_RESPONSES[] =
	"data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"r\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n"
	"data: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"m\",\"role\":\"assistant\",\"content\":[]}}\n\n"
	"data: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"output_index\":0,\"content_index\":0,\"item_id\":\"m\",\"delta\":\"Noted.\"}\n\n"
	"data: {\"type\":\"response.output_item.done\",\"sequence_number\":3,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"m\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Noted.\"}]}}\n\n"
	"data: {\"type\":\"response.completed\",\"sequence_number\":4,\"response\":{\"id\":\"r\",\"object\":\"response\",\"status\":\"completed\","
	"\"output\":[{\"type\":\"message\",\"id\":\"m\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Noted.\"}]}],"
	"\"usage\":{\"input_tokens\":1000,\"output_tokens\":5}}}\n\n";

static void sw_up(cmv_buf *out, struct MHD_Connection *c, const char *url, const cmv_buf *body)
{
	(void)c, (void)body; /* the answer is canned */
	cmv_buf_puts(out, strstr(url, "/responses") ? SW_RESPONSES : SW_ANTHROPIC);
}

/* ---- a client -------------------------------------------------------------------------------- */

typedef struct {
	cmv_buf *b;
	double first;
} sw_recv;

static size_t sw_sink(char *buf, size_t size, size_t n, void *ud)
{
	sw_recv *r = ud;
	if (!r->first)
		r->first = bench_now();
	cmv_buf_put(r->b, buf, size * n);
	return size * n;
}

/* One streamed request; the ms to its first body byte. */
static double sw_post(CURL *h, const char *url, const char *body, cmv_buf *resp)
{
	struct curl_slist *hd = NULL;
	sw_recv rc = { resp, 0 };
	long status = 0;
	hd = curl_slist_append(hd, "content-type: application/json");
	hd = curl_slist_append(hd, "anthropic-version: 2023-06-01");
	hd = curl_slist_append(hd, "x-api-key: sk-bench-not-a-key");
	hd = curl_slist_append(hd, "Expect:");
	cmv_buf_clear(resp);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sw_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rc);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	double t0 = bench_now();
	if (curl_easy_perform(h) != CURLE_OK || curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status != 200 || !strstr(resp->ptr ? resp->ptr : "", "message_stop"))
		sw_die("a request through the proxy was not answered with a whole stream");
	curl_slist_free_all(hd);
	return ((rc.first ? rc.first : bench_now()) - t0) * 1e3;
}

/* A session's request: the history (about `words` words of filler) and the turns so far. */
static char *sw_body(const char *sid, size_t words, size_t turns)
{
	cJSON *o = cJSON_CreateObject(), *msgs, *meta;
	cmv_buf hist = CMV_BUF_INIT((size_t)1 << 30);
	char id[128], *s;
	static const char *w[] = { "alpha", "beta", "gamma", "delta", "proxy", "window", "page", "model" };
	for (size_t i = 0; i < words; i++)
		cmv_buf_printf(&hist, "%s%s", i ? " " : "", w[(i * 7 + i / 3) % 8]);
	cJSON_AddStringToObject(o, "model", "claude-sonnet-4-5");
	cJSON_AddNumberToObject(o, "max_tokens", 4096);
	cJSON_AddTrueToObject(o, "stream");
	cJSON_AddStringToObject(o, "system", "You are a coding agent.");
	meta = cJSON_AddObjectToObject(o, "metadata");
	snprintf(id, sizeof(id), "{\"session_id\":\"%s\"}", sid);
	cJSON_AddStringToObject(meta, "user_id", id);
	msgs = cJSON_AddArrayToObject(o, "messages");
	for (size_t t = 0; t <= turns; t++) {
		cJSON *u = cJSON_CreateObject();
		cJSON_AddStringToObject(u, "role", "user");
		if (t == 0) {
			cJSON_AddStringToObject(u, "content", hist.ptr ? hist.ptr : "hi");
		} else {
			char q[64];
			snprintf(q, sizeof(q), "Question %zu.", t);
			cJSON_AddStringToObject(u, "content", q);
		}
		cJSON_AddItemToArray(msgs, u);
		if (t < turns) {
			cJSON *a = cJSON_CreateObject();
			cJSON_AddStringToObject(a, "role", "assistant");
			cJSON_AddItemToObject(a, "content", cJSON_Parse("[{\"type\":\"text\",\"text\":\"Noted.\"}]"));
			cJSON_AddItemToArray(msgs, a);
		}
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cmv_buf_dispose(&hist);
	return s;
}

static cJSON *sw_latency(size_t words, size_t requests, bool json)
{
	char *dir = bench_tmpdir();
	cmv_repo *repo = NULL;
	proxy *p = NULL;
	proxy_config cfg;
	unsigned int up_port = 0;
	char url[256], up_a[128], up_o[128];
	bench_upstream up;
	if (bench_upstream_start(&up, sw_up) < 0)
		sw_die("the upstream");
	up_port = up.port;
	snprintf(up_a, sizeof(up_a), "http://127.0.0.1:%u", up_port);
	snprintf(up_o, sizeof(up_o), "http://127.0.0.1:%u/v1", up_port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.anthropic_url = up_a;
	cfg.openai_url = up_o;
	cfg.quiet = !getenv("CMV_BENCH_LOG");
	if (cmv_repo_init(&repo, dir) < 0 || proxy_new(&p, repo, &cfg) < 0)
		sw_die("the store");
	bench_proxy_run run;
	if (bench_proxy_run_start(&run, p) < 0)
		sw_die("the proxy");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", run.port);

	CURL *h = curl_easy_init();
	cmv_buf resp = CMV_BUF_INIT((size_t)1 << 26);
	double *same = calloc(requests, sizeof(double)), *xl = calloc(requests, sizeof(double));
	/* the first turn of each session makes its branch; then the other is switched */
	char *b0 = sw_body("bench-same", words, 0), *b1 = sw_body("bench-xl", words, 0);
	sw_post(h, url, b0, &resp);
	sw_post(h, url, b1, &resp);
	free(b0);
	free(b1);
	cmv_model_handle *gpt = NULL;
	cmv_switch_options so;
	cmv_switch_options_init(&so);
	if (cmv_model_handle_open(&gpt, repo, "gpt-5") < 0 || cmv_switch(NULL, repo, PROXY_BRANCH_PREFIX "bench-xl", gpt, &so) < 0)
		sw_die("the switch");
	for (size_t i = 0; i < requests; i++) {
		char *a = sw_body("bench-same", words, i + 1), *b = sw_body("bench-xl", words, i + 1);
		/* alternate which goes first: neither gets the warmer machine */
		if (i % 2) {
			same[i] = sw_post(h, url, a, &resp);
			xl[i] = sw_post(h, url, b, &resp);
		} else {
			xl[i] = sw_post(h, url, b, &resp);
			same[i] = sw_post(h, url, a, &resp);
		}
		if (strstr(resp.ptr, "response.") != NULL)
			sw_die("a Responses event reached the Anthropic client");
		free(a);
		free(b);
	}
	double s50 = bench_percentile(same, requests, 0.50), s95 = bench_percentile(same, requests, 0.95);
	double x50 = bench_percentile(xl, requests, 0.50), x95 = bench_percentile(xl, requests, 0.95);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "history_words", (double)words);
	cJSON_AddNumberToObject(o, "requests", (double)requests);
	cJSON_AddNumberToObject(o, "same_provider_ttfb_ms_p50", s50);
	cJSON_AddNumberToObject(o, "same_provider_ttfb_ms_p95", s95);
	cJSON_AddNumberToObject(o, "translated_ttfb_ms_p50", x50);
	cJSON_AddNumberToObject(o, "translated_ttfb_ms_p95", x95);
	cJSON_AddNumberToObject(o, "added_ms_p50", x50 - s50);
	if (!json)
		printf("time to first byte, %zu requests each, a history of %zu words (claude-sonnet-4-5 client):\n"
		       "  same provider (Anthropic -> Anthropic):    p50 %6.2f ms, p95 %6.2f ms\n"
		       "  translated (Anthropic -> gpt-5 Responses): p50 %6.2f ms, p95 %6.2f ms (added at p50: %+.2f ms)\n",
		       requests, words, s50, s95, x50, x95, x50 - s50);
	cmv_model_handle_free(gpt);
	free(same);
	free(xl);
	cmv_buf_dispose(&resp);
	curl_easy_cleanup(h);
	if (bench_proxy_run_stop(&run) < 0)
		sw_die("the proxy");
	proxy_free(p);
	cmv_repo_free(repo);
	bench_upstream_stop(&up);
	bench_rmdir(dir);
	free(dir);
	return o;
}

/* ---- round trips ----------------------------------------------------------------------------- */

typedef struct {
	size_t sessions, identical, failed;
	size_t messages[2], blocks[2];
	size_t by_type[2][8]; /* text, tool_use, tool_result, thinking, image, other */
	size_t same_but_thinking; /* identical once thinking (which cannot cross) is left out of the first */
	size_t text_bytes[2];
} sw_rt;

static const char *sw_types[] = { "text", "tool_use", "tool_result", "thinking", "image", "other" };

static void sw_count(sw_rt *r, int side, const cJSON *msgs)
{
	for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		r->messages[side]++;
		if (cJSON_IsString(c)) {
			r->blocks[side]++;
			r->by_type[side][0]++;
			continue;
		}
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			int k = 5;
			for (int i = 0; i < 5; i++)
				if (t && (!strcmp(t, sw_types[i]) || (i == 3 && !strcmp(t, "redacted_thinking"))))
					k = i;
			r->blocks[side]++;
			r->by_type[side][k]++;
			const char *txt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text"));
			r->text_bytes[side] += txt ? strlen(txt) : 0;
		}
	}
}

/* The messages member of a body, cache markers left out (the proxy moves them). */
static cJSON *sw_messages(const cmv_buf *body)
{
	cJSON *o = cJSON_ParseWithLength(body->ptr, body->size), *m = cJSON_DetachItemFromObjectCaseSensitive(o, "messages");
	cJSON_Delete(o);
	return m;
}

static int sw_render(cmv_buf *out, cmv_repo *repo, const cmv_id *tip, const char *model, cmv_render_target target)
{
	cmv_model_handle *h = NULL;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep = { 0 };
	int error;
	po.budget = (uint64_t)1 << 40; /* nothing paged: the translation is what is measured */
	po.target = target;
	cmv_buf_clear(out);
	if ((error = cmv_model_handle_open(&h, repo, model)) == 0)
		error = cmv_materialize_for(out, &rep, repo, tip, h, &po);
	cmv_materialize_report_dispose(&rep);
	cmv_model_handle_free(h);
	return error;
}

static void sw_roundtrip(sw_rt *r, cmv_repo *repo, const cmv_id *tip, cmv_render_target via, const char *branch)
{
	cmv_buf a = CMV_BUF_INIT((size_t)1 << 30), o = CMV_BUF_INIT((size_t)1 << 30), a2 = CMV_BUF_INIT((size_t)1 << 30);
	cJSON *ma = NULL, *ma2 = NULL, *oj = NULL;
	cmv_id head;
	const char *key = via == CMV_RENDER_OPENAI_RESPONSES ? "input" : "messages";
	char *items = NULL;

	if (sw_render(&a, repo, tip, "claude-sonnet-4-5", CMV_RENDER_ANTHROPIC) < 0 ||
	    sw_render(&o, repo, tip, via == CMV_RENDER_OPENAI_RESPONSES ? "gpt-5" : "gpt-4o", via) < 0 ||
	    !(oj = cJSON_ParseWithLength(o.ptr, o.size)) ||
	    !(items = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(oj, key))) ||
	    cmv_append_json(&head, repo, branch, via == CMV_RENDER_OPENAI_RESPONSES ? "openai-responses" : "openai-chat",
			    items, strlen(items)) < 0 ||
	    sw_render(&a2, repo, &head, "claude-sonnet-4-5", CMV_RENDER_ANTHROPIC) < 0) {
		cmv_error_clear();
		r->failed++;
		goto done;
	}
	ma = sw_messages(&a);
	ma2 = sw_messages(&a2);
	r->sessions++;
	sw_count(r, 0, ma);
	sw_count(r, 1, ma2);
	char *ta = cJSON_PrintUnformatted(ma), *tb = cJSON_PrintUnformatted(ma2);
	if (ta && tb && !strcmp(ta, tb))
		r->identical++;
	/* the first without its thinking blocks, and messages left empty by that */
	for (cJSON *m = ma ? ma->child : NULL, *mn; m; m = mn) {
		mn = m->next;
		cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = cJSON_IsArray(c) ? c->child : NULL, *bn; b; b = bn) {
			bn = b->next;
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			if (t && (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking")))
				cJSON_Delete(cJSON_DetachItemViaPointer(c, b));
		}
		if (cJSON_IsArray(c) && !cJSON_GetArraySize(c))
			cJSON_Delete(cJSON_DetachItemViaPointer(ma, m));
	}
	char *tc = cJSON_PrintUnformatted(ma);
	if (tc && tb && !strcmp(tc, tb))
		r->same_but_thinking++;
	cJSON_free(tc);
	cJSON_free(ta);
	cJSON_free(tb);
done:
	free(items);
	cJSON_Delete(ma);
	cJSON_Delete(ma2);
	cJSON_Delete(oj);
	cmv_buf_dispose(&a);
	cmv_buf_dispose(&o);
	cmv_buf_dispose(&a2);
}

static cJSON *sw_rt_json(const sw_rt *r, const char *via, bool json)
{
	cJSON *o = cJSON_CreateObject(), *bt = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "via", via);
	cJSON_AddNumberToObject(o, "sessions", (double)r->sessions);
	cJSON_AddNumberToObject(o, "identical", (double)r->identical);
	cJSON_AddNumberToObject(o, "failed", (double)r->failed);
	cJSON_AddNumberToObject(o, "identical_but_thinking", (double)r->same_but_thinking);
	cJSON_AddNumberToObject(o, "text_bytes_before", (double)r->text_bytes[0]);
	cJSON_AddNumberToObject(o, "text_bytes_after", (double)r->text_bytes[1]);
	cJSON_AddNumberToObject(o, "messages_before", (double)r->messages[0]);
	cJSON_AddNumberToObject(o, "messages_after", (double)r->messages[1]);
	for (int i = 0; i < 6; i++) {
		cJSON *p = cJSON_AddArrayToObject(bt, sw_types[i]);
		cJSON_AddItemToArray(p, cJSON_CreateNumber((double)r->by_type[0][i]));
		cJSON_AddItemToArray(p, cJSON_CreateNumber((double)r->by_type[1][i]));
	}
	cJSON_AddItemToObject(o, "blocks_before_after", bt);
	if (!json) {
		printf("Anthropic -> %s -> Anthropic: %zu sessions (%zu could not be read), %zu with identical messages, "
		       "%zu identical but for the thinking left behind; messages %zu -> %zu, text bytes %zu -> %zu\n"
		       "  blocks before -> after:", via, r->sessions, r->failed, r->identical, r->same_but_thinking,
		       r->messages[0], r->messages[1], r->text_bytes[0], r->text_bytes[1]);
		for (int i = 0; i < 6; i++)
			printf(" %s %zu -> %zu%s", sw_types[i], r->by_type[0][i], r->by_type[1][i], i < 5 ? "," : "\n");
	}
	return o;
}

static cJSON *sw_roundtrips(const char *corpus, size_t max, bool json)
{
	bench_files files = { 0 };
	sw_rt resp, chat;
	char *dir = bench_tmpdir();
	cmv_repo *repo = NULL;
	memset(&resp, 0, sizeof(resp));
	memset(&chat, 0, sizeof(chat));
	bench_collect(&files, corpus, NULL);
	if (cmv_repo_init(&repo, dir) < 0)
		sw_die("the store");
	for (size_t i = 0; i < files.n && i < max; i++) {
		cmv_import_result ir;
		char b1[64], b2[64];
		memset(&ir, 0, sizeof(ir));
		if (cmv_import_file(&ir, repo, files.paths[i], NULL, NULL) < 0 || cmv_id_is_none(&ir.head)) {
			cmv_error_clear();
			resp.failed++;
			chat.failed++;
			continue;
		}
		snprintf(b1, sizeof(b1), "rt-resp-%zu", i);
		snprintf(b2, sizeof(b2), "rt-chat-%zu", i);
		sw_roundtrip(&resp, repo, &ir.head, CMV_RENDER_OPENAI_RESPONSES, b1);
		sw_roundtrip(&chat, repo, &ir.head, CMV_RENDER_OPENAI_CHAT, b2);
	}
	cJSON *o = cJSON_CreateArray();
	if (!json)
		printf("round trips of %zu sessions under %s:\n", files.n < max ? files.n : max, corpus);
	cJSON_AddItemToArray(o, sw_rt_json(&resp, "openai-responses", json));
	cJSON_AddItemToArray(o, sw_rt_json(&chat, "openai-chat", json));
	bench_files_free(&files);
	cmv_repo_free(repo);
	bench_rmdir(dir);
	free(dir);
	return o;
}

int bench_proxy_switch(int argc, char **argv)
{
	bool json = false, quick = false;
	const char *corpus = NULL;
	size_t requests = 40, words = 20000, max = 1000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
			requests = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--words") && i + 1 < argc)
			words = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
			corpus = argv[++i];
		else if (strcmp(argv[i], "--switch")) {
			fprintf(stderr, "cmv-bench proxy --switch: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (quick) {
		requests = 6;
		words = 2000;
		max = 8;
	}
	if (!requests)
		requests = 1;
	if (!corpus)
		corpus = access("../shared/transcripts", R_OK) == 0 ? "../shared/transcripts" : "../../shared/transcripts";
	char machine[256];
	bench_machine(machine, sizeof(machine));
	if (!json)
		printf("cmv-bench proxy --switch on %s\n", machine);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "machine", machine);
	cJSON_AddItemToObject(doc, "latency", sw_latency(words, requests, json));
	if (access(corpus, R_OK) == 0)
		cJSON_AddItemToObject(doc, "round_trips", sw_roundtrips(corpus, max, json));
	else if (!json)
		printf("no corpus at %s: round trips not measured\n", corpus);
	if (json) {
		char *s = cJSON_Print(doc);
		puts(s);
		cJSON_free(s);
	}
	cJSON_Delete(doc);
	return 0;
}
