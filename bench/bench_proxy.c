/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench proxy [DIR] [--turns N] [--session-tokens N] [--budget N,...] [--client FILE|standin]
 *                 [--tool-window N] [--tool-demote change|cut|eager] [--tool-paging cache|tokens|off] [--no-tool-paging]
 *                 [--latency] [--digest] [--quick] [--json]:
 * what `cmv proxy` costs and saves (docs/proxy.md, "Measured").
 *
 *  - latency: one client (libcurl, one kept-alive connection per path)
 *    talks to a scripted upstream (libmicrohttpd, in this process, that
 *    streams a short Anthropic reply) directly and through the proxy
 *    (proxy_serve on a store on disk, in this process), turn by turn, the
 *    two paths interleaved (which goes first alternates) with the same
 *    body: a session of --session-tokens (200k) tokens, its whole history
 *    resent each turn as Claude Code does. Time to first byte and total per
 *    request; the added time is the proxy's minus the direct one, turn by
 *    turn. The model's own budget (claude-sonnet-4-5: its window less its
 *    output reserve) pages the session, as it would live. CPU per request
 *    is the process's CPU time over the request (client, proxy and
 *    upstream are its threads): the proxy's minus the direct one is what
 *    the proxy adds. --digest: a digest of every body the upstream took,
 *    in order (the replay prints one always), to check that a change to
 *    the proxy's work sends the same bytes.
 *  - replay: every Claude Code session under DIR (../shared/transcripts
 *    when present, else tests/resources/transcripts) rendered as the
 *    Anthropic requests its client sent, one per assistant message (the
 *    history before it), each passed through the proxy's request path
 *    (proxy_turn_new) and answered with the message the session recorded
 *    (proxy_turn_reply): the scripted upstream answers as the session did.
 *    The client's tools and system prompt come from --client FILE (a
 *    request body a real client sent, e.g. logged by
 *    tests/support/model_server.py), else from
 *    data/client-requests/claude-code.json (the real Claude Code's first
 *    request, kept there by bench/capture-client-request.py; never
 *    committed), else (or with --client standin) a stand-in of Claude
 *    Code's: its 18 tool names, 63 KB of definitions (the size the research
 *    measured), a 28k-character system prompt. Tokens are counted by this
 *    file, independently of the proxy's own figures, on each body as sent:
 *    the client's (without paging) and the upstream's (with), signatures aside
 *    (count_body). Each
 *    upstream body is also checked: within its budget, valid for the
 *    provider (cmv_check_request). A fault is the proxy's: a call repeated
 *    with the same input as a result the window shows as a stub (the
 *    replayed model never calls recall); a repeat fault is one on a call
 *    that faulted before in the session (thrashing). A stub call is a
 *    call to a tool the request that drew it sent as a stub (the model
 *    called it without the whole schema; counted apart when its recorded
 *    input names a property the stub did not show); a tool flip a request whose
 *    tools differ from the session's request before. Cache reads are
 *    estimated as the provider's cache would give them: the previous
 *    request whole when this one repeats its tools, system and messages
 *    (the proxy's marker is on the last message), else its tools and
 *    system when those are unchanged (the client's marker on the system
 *    prompt), else nothing; the cost weighs reads 0.1 and the rest 1.25
 *    (cache writes), Anthropic's prices relative to plain input.
 *
 * Figures are ratios against the same run's baseline (the direct path,
 * the unpaged request).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
/* under callgrind the measured turns are a dump of their own (no-ops otherwise): docs/proxy.md, "Measured" */
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_ZERO_STATS
#define CALLGRIND_ZERO_STATS do {} while (0)
#define CALLGRIND_DUMP_STATS do {} while (0)
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/base.h"
#include "bench.h"
#include "pager/pager_int.h"
#include "proxy_inproc.h"
#include "server/proxy.h"

#define MODEL "claude-sonnet-4-5"

/* the tool paging under test (docs/proxy.md, "Tool definitions as pages") */
static size_t opt_tool_window;
static int opt_tool_demote;
static bool opt_no_tool_paging, opt_tool_tokens;

static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench proxy: %s: %s\n", what, e && e->message[0] ? e->message : "failed");
	exit(1);
}

/* ---- deterministic text ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* Text that tokenizes like a tool's output: paths, identifiers, numbers, words. */
static void filler(cmv_buf *b, size_t bytes)
{
	static const char *const words[] = { "return", "struct", "const", "static", "int", "error", "buffer", "the",
					     "value", "index", "node", "branch", "size_t", "if", "else", "while", "for",
					     "NULL", "len", "count", "page", "window", "token", "request", "reply" };
	size_t start = b->size;
	while (b->size - start < bytes) {
		cmv_buf_printf(b, "src/%s_%u.c:%u: ", words[rnd() % 25], rnd() % 97, rnd() % 4000);
		for (int w = 0, n = 6 + (int)(rnd() % 10); w < n; w++)
			cmv_buf_printf(b, w % 4 == 3 ? "%s(%u) " : "%s ", words[rnd() % 25], rnd() % 1000);
		cmv_buf_putc(b, '\n');
	}
}

/* A JSON string of the text (quoted, escaped). */
static char *jquote(const char *s)
{
	cJSON *o = cJSON_CreateString(s);
	char *t = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return t;
}

/* The stand-in client: Claude Code's 18 tool names, ~63 KB of definitions; a 28k-character system prompt. */
static void standin_client(char **tools, char **system)
{
	static const char *const names[] = { "Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit",
					     "MultiEdit", "Write", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch",
					     "BashOutput", "KillShell", "Skill", "SlashCommand" };
	cJSON *arr = cJSON_CreateArray();
	cmv_buf t = CMV_BUF_INIT((size_t)1 << 24);
	for (size_t i = 0; i < 18; i++) {
		cJSON *d = cJSON_CreateObject(), *schema = cJSON_CreateObject(), *props;
		cmv_buf_clear(&t);
		cmv_buf_printf(&t, "The %s tool.\n", names[i]);
		filler(&t, 2900);
		cJSON_AddStringToObject(d, "name", names[i]);
		cJSON_AddStringToObject(d, "description", t.ptr);
		cJSON_AddStringToObject(schema, "type", "object");
		props = cJSON_AddObjectToObject(schema, "properties");
		for (int k = 0; k < 4; k++) {
			char pn[16];
			cJSON *pr = cJSON_AddObjectToObject(props, (snprintf(pn, sizeof(pn), "arg%d", k), pn));
			cmv_buf_clear(&t);
			filler(&t, 90);
			cJSON_AddStringToObject(pr, "type", "string");
			cJSON_AddStringToObject(pr, "description", t.ptr);
		}
		cJSON_AddItemToObject(d, "input_schema", schema);
		cJSON_AddItemToArray(arr, d);
	}
	*tools = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	cmv_buf_clear(&t);
	filler(&t, 28000);
	*system = jquote(t.ptr);
	cmv_buf_dispose(&t);
}

static size_t count_text(const cmv_model *m, cmv_tok *tok, const char *s, size_t len)
{
	size_t n = 0;
	return cmv_model_count(&n, NULL, m, tok, s, len) == 0 ? n : 0;
}

/* ---- the scripted upstream (latency) -------------------------------------------------------- */

/*
 * A short streamed reply: a text block and a Bash call whose id is the
 * turn's, billed `input` tokens (the proxy anchors its next request on it).
 */
static void sse_reply(cmv_buf *b, const char *turn, size_t input)
{
	cmv_buf_printf(b,
		       "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench_%s\","
		       "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" MODEL "\",\"content\":[],"
		       "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%zu,\"output_tokens\":1}}}\n\n"
		       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
		       "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
		       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
		       "\"delta\":{\"type\":\"text_delta\",\"text\":\"I will look.\"}}\n\n"
		       "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
		       "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
		       "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_bench_%s\",\"name\":\"Bash\",\"input\":{}}}\n\n"
		       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
		       "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\":\\\"cat f%s\\\"}\"}}\n\n"
		       "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
		       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
		       "\"stop_sequence\":null},\"usage\":{\"output_tokens\":20}}\n\n"
		       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		       turn, input, turn, turn);
}

/*
 * Every body the scripted upstream took, in order, folded into one digest:
 * a change to the proxy's work that must not change what it sends is
 * checked by the same digest before and after (the bodies are the same
 * from run to run).
 */
static cmv_id up_digest;
static bool opt_digest; /* --digest: off by default, its hashing would be in both paths' times */

static void digest_fold(cmv_id *acc, const char *s, size_t n)
{
	cmv_id two[2] = { *acc };
	cmv_id_hash(&two[1], s, n);
	cmv_id_hash(acc, two, sizeof(two));
}

/* The upstream's tokens per byte: the session's own, counted once off the clock (0 until then). */
static double up_tokens_per_byte;

static void up_reply(cmv_buf *out, struct MHD_Connection *c, const char *url, const cmv_buf *body)
{
	const char *turn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-bench-turn");
	(void)url;
	if (opt_digest)
		digest_fold(&up_digest, body->ptr ? body->ptr : "", body->size);
	/*
	 * What it received, billed at its count, not a fixed figure: the proxy
	 * anchors its next request on the bill, and a fixed 1,000 made it
	 * predict each one at its count less the bound (20%). The count is the
	 * session's own tokens per byte (its text is of one kind throughout),
	 * not a tokenizer's pass here: that would put milliseconds into the
	 * direct path's first byte and fewer into the (paged) proxied one's.
	 */
	size_t n = body ? (size_t)ceil((double)body->size * up_tokens_per_byte) : 0;
	sse_reply(out, turn ? turn : "0", n ? n : 1000);
}

/* The process's CPU time in ms: the proxy, the upstream and the client are its threads. */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- a client -------------------------------------------------------------------------------- */

typedef struct {
	cmv_buf *b;
	double t0, first; /* the request's start; its first byte back (a header or the body) */
} recv_ctx;

static size_t sink(char *buf, size_t size, size_t n, void *ud)
{
	recv_ctx *r = ud;
	if (!r->first)
		r->first = bench_now();
	cmv_buf_put(r->b, buf, size * n);
	return size * n;
}

static size_t on_hdr(char *buf, size_t size, size_t n, void *ud)
{
	recv_ctx *r = ud;
	(void)buf;
	if (!r->first)
		r->first = bench_now();
	return size * n;
}

/* One POST; *ttfb and *total in ms. Returns the HTTP status. */
static long post(CURL *h, const char *url, const char *body, size_t len, const char *turn, cmv_buf *resp,
		 double *ttfb, double *total, double *cpu)
{
	struct curl_slist *hd = NULL;
	char th[64];
	recv_ctx rc = { resp, 0, 0 };
	long status = 0;
	snprintf(th, sizeof(th), "x-bench-turn: %s", turn);
	hd = curl_slist_append(hd, "content-type: application/json");
	hd = curl_slist_append(hd, "anthropic-version: 2023-06-01");
	hd = curl_slist_append(hd, "x-api-key: sk-bench-not-a-key");
	hd = curl_slist_append(hd, "Expect:");
	hd = curl_slist_append(hd, th);
	cmv_buf_clear(resp);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rc);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &rc);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	double c0 = cpu_ms();
	rc.t0 = bench_now();
	if (curl_easy_perform(h) != CURLE_OK)
		status = -1;
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	*total = (bench_now() - rc.t0) * 1e3;
	*cpu = cpu_ms() - c0;
	*ttfb = ((rc.first ? rc.first : bench_now()) - rc.t0) * 1e3;
	curl_slist_free_all(hd);
	return status;
}

/* A turn of the session: the model's Bash call (toolu_ID_K, "cat FK") and its output (q, a JSON string). */
static void bash_turn(cmv_buf *msgs, const char *id, char file, size_t k, const char *q)
{
	cmv_buf_printf(msgs,
		       ",{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"I will look.\"},"
		       "{\"type\":\"tool_use\",\"id\":\"toolu_%s_%zu\",\"name\":\"Bash\",\"input\":{\"command\":\"cat %c%zu\"}}]}"
		       ",{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_%s_%zu\",\"content\":%s}]}",
		       id, k, file, k, id, k, q);
}

static cJSON *latency(size_t session_tokens, size_t turns, const char *tools, const char *system, bool json)
{
	char *dir = bench_tmpdir(), path[4096], url_up[128], url_px[128];
	cmv_repo *repo = NULL;
	cmv_model_handle *mh = NULL;
	unsigned int up_port = 0;
	cmv_buf msgs = CMV_BUF_INIT((size_t)1 << 30), body = CMV_BUF_INIT((size_t)1 << 30), t = CMV_BUF_INIT((size_t)1 << 26);
	cmv_buf resp = CMV_BUF_INIT((size_t)1 << 26);
	size_t tokens = 0, n;

	snprintf(path, sizeof(path), "%s/store", dir);
	if (cmv_repo_open(&repo, path, CMV_REPO_OPEN_CREATE) < 0 || cmv_model_handle_open(&mh, repo, MODEL) < 0)
		die("the store");
	const cmv_model *m = cmv_model_handle_profile(mh);
	cmv_tok *tok = cmv_model_handle_tok(mh);

	/* the scripted upstream */
	bench_upstream up;
	if (bench_upstream_start(&up, up_reply) < 0)
		die("the scripted upstream");
	up_port = up.port;

	/* the proxy */
	bench_proxy_run run;
	proxy *px = NULL;
	proxy_config cfg;
	char upurl[64];
	memset(&cfg, 0, sizeof(cfg));
	snprintf(upurl, sizeof(upurl), "http://127.0.0.1:%u", up_port);
	cfg.anthropic_url = upurl;
	cfg.quiet = true;
	if (proxy_new(&px, repo, &cfg) < 0)
		die("proxy_new");
	if (bench_proxy_run_start(&run, px) < 0)
		die("proxy_serve");
	snprintf(url_up, sizeof(url_up), "http://127.0.0.1:%u/v1/messages?beta=true", up_port);
	snprintf(url_px, sizeof(url_px), "http://127.0.0.1:%u/v1/messages?beta=true", run.port);

	/* the session: tool calls and their outputs up to session_tokens */
	cmv_buf_puts(&msgs, "{\"role\":\"user\",\"content\":\"Read the files one by one.\"}");
	tokens = count_text(m, tok, tools, strlen(tools)) + count_text(m, tok, system, strlen(system));
	for (size_t k = 0; tokens < session_tokens; k++) {
		cmv_buf_clear(&t);
		filler(&t, 8000);
		char *q = jquote(t.ptr);
		bash_turn(&msgs, "hist", 'h', k, q);
		if (cmv_model_count(&n, NULL, m, tok, q, strlen(q)) == 0)
			tokens += n + 30;
		cJSON_free(q);
	}
	size_t warm = 3;
	double *ttfb[2], *tot[2], *cpu[2], *added = calloc(turns + 1, sizeof(double)), *added_cpu = calloc(turns + 1, sizeof(double));
	for (int p = 0; p < 2; p++) {
		ttfb[p] = calloc(turns + 1, sizeof(double));
		tot[p] = calloc(turns + 1, sizeof(double));
		cpu[p] = calloc(turns + 1, sizeof(double));
	}
	CURL *h[2] = { curl_easy_init(), curl_easy_init() };
	size_t body_bytes = 0, measured = 0, grown = 0, whole = 0;
	for (size_t k = 0; k < warm + turns; k++) {
		size_t g0 = cmv__pager_spliced, w0 = cmv__pager_whole;
		if (k == warm)
			CALLGRIND_ZERO_STATS;
		char turn[32];
		snprintf(turn, sizeof(turn), "%zu", k);
		cmv_buf_clear(&body);
		cmv_buf_printf(&body,
			       "{\"model\":\"" MODEL "\",\"max_tokens\":32000,\"stream\":true,"
			       "\"metadata\":{\"user_id\":\"{\\\"session_id\\\":\\\"bench-latency\\\"}\"},"
			       "\"system\":%s,\"tools\":%s,\"messages\":[%s]}",
			       system, tools, msgs.ptr);
		if (!k && body.size)
			up_tokens_per_byte = (double)count_text(m, tok, body.ptr, body.size) / (double)body.size;
		double tf[2] = { 0, 0 }, tt[2] = { 0, 0 }, tc[2] = { 0, 0 };
		for (int o = 0; o < 2; o++) {
			int p = (int)((k + (size_t)o) % 2); /* which path goes first alternates */
			long st = post(h[p], p ? url_px : url_up, body.ptr, body.size, turn, &resp, &tf[p], &tt[p], &tc[p]);
			if (st != 200 || !strstr(resp.ptr ? resp.ptr : "", "message_stop")) {
				fprintf(stderr, "cmv-bench proxy: turn %zu via %s: HTTP %ld: %.300s\n", k, p ? "proxy" : "direct", st,
					resp.ptr ? resp.ptr : "");
				exit(1);
			}
		}
		if (k >= warm) {
			for (int p = 0; p < 2; p++) {
				ttfb[p][measured] = tf[p];
				tot[p][measured] = tt[p];
				cpu[p][measured] = tc[p];
			}
			added_cpu[measured] = tc[1] - tc[0];
			added[measured++] = tf[1] - tf[0];
			body_bytes = body.size;
			/* how the pager made each window: the kept one grown, or the whole work (a new batch cut) */
			grown += cmv__pager_spliced != g0;
			whole += cmv__pager_whole != w0;
		}
		/* the reply, and a small tool output: the session stays at its size */
		cmv_buf_clear(&t);
		filler(&t, 600);
		char *q = jquote(t.ptr);
		bash_turn(&msgs, "bench", 'f', k, q);
		cJSON_free(q);
	}
	CALLGRIND_DUMP_STATS;
	size_t session_count = 0;
	cmv_model_count(&session_count, NULL, m, tok, body.ptr, body.size);

	static const char *const pname[2] = { "direct", "proxy" };
	double r[2][4];
	for (int p = 0; p < 2; p++) {
		r[p][0] = bench_percentile(ttfb[p], measured, 0.5);
		r[p][1] = bench_percentile(ttfb[p], measured, 0.95);
		r[p][2] = bench_percentile(tot[p], measured, 0.5);
		r[p][3] = bench_percentile(tot[p], measured, 0.95);
	}
	double a50 = bench_percentile(added, measured, 0.5), a95 = bench_percentile(added, measured, 0.95);
	/* CPU per request: the whole process's (client, proxy, upstream) over the request, the proxy's the added part */
	double c50[2], cmean[2] = { 0, 0 }, ac50 = bench_percentile(added_cpu, measured, 0.5), acmean = 0;
	for (int p = 0; p < 2; p++) {
		c50[p] = bench_percentile(cpu[p], measured, 0.5);
		for (size_t i = 0; i < measured; i++)
			cmean[p] += cpu[p][i] / (double)measured;
	}
	for (size_t i = 0; i < measured; i++)
		acmean += added_cpu[i] / (double)measured;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id_tostr(hex, sizeof(hex), &up_digest);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "session_tokens", (double)session_count);
	cJSON_AddNumberToObject(o, "request_bytes", (double)body_bytes);
	cJSON_AddNumberToObject(o, "turns", (double)measured);
	cJSON_AddNumberToObject(o, "windows_grown", (double)grown);
	cJSON_AddNumberToObject(o, "windows_whole", (double)whole);
	for (int p = 0; p < 2; p++) {
		cJSON *x = cJSON_AddObjectToObject(o, pname[p]);
		cJSON_AddNumberToObject(x, "ttfb_p50_ms", r[p][0]);
		cJSON_AddNumberToObject(x, "ttfb_p95_ms", r[p][1]);
		cJSON_AddNumberToObject(x, "total_p50_ms", r[p][2]);
		cJSON_AddNumberToObject(x, "total_p95_ms", r[p][3]);
		cJSON_AddNumberToObject(x, "cpu_p50_ms", c50[p]);
		cJSON_AddNumberToObject(x, "cpu_mean_ms", cmean[p]);
	}
	cJSON_AddNumberToObject(o, "added_cpu_p50_ms", ac50);
	cJSON_AddNumberToObject(o, "added_cpu_mean_ms", acmean);
	if (opt_digest)
		cJSON_AddStringToObject(o, "upstream_digest", hex);
	cJSON_AddNumberToObject(o, "added_ttfb_p50_ms", a50);
	cJSON_AddNumberToObject(o, "added_ttfb_p95_ms", a95);
	cJSON_AddNumberToObject(o, "ttfb_p95_ratio", r[0][1] > 0 ? r[1][1] / r[0][1] : 0);
	if (!json) {
		printf("latency: a %zu-token session (%zu KB per request), %zu turns, each path the same body\n",
		       session_count, body_bytes >> 10, measured);
		printf("  %-8s %12s %12s %12s %12s\n", "path", "ttfb p50 ms", "ttfb p95 ms", "total p50", "total p95");
		for (int p = 0; p < 2; p++)
			printf("  %-8s %12.2f %12.2f %12.2f %12.2f\n", pname[p], r[p][0], r[p][1], r[p][2], r[p][3]);
		printf("  added time to first byte (proxy - direct, per turn): p50 %.2f ms, p95 %.2f ms (goal: p95 < 5 ms); "
		       "ttfb p95 ratio %.1fx\n",
		       a50, a95, r[0][1] > 0 ? r[1][1] / r[0][1] : 0);
		printf("  windows: %zu grown from the kept one, %zu paged whole (a new batch cut), of %zu\n", grown, whole,
		       measured);
		printf("  CPU per request (the process's: client, proxy, upstream): direct p50 %.3f ms (mean %.3f), proxy p50 %.3f "
		       "ms (mean %.3f); added p50 %.3f ms, mean %.3f ms\n",
		       c50[0], cmean[0], c50[1], cmean[1], ac50, acmean);
		if (opt_digest)
			printf("  upstream bodies: digest %s (the same before and after a change that must not alter them)\n", hex);
	}
	curl_easy_cleanup(h[0]);
	curl_easy_cleanup(h[1]);
	if (bench_proxy_run_stop(&run) < 0)
		fprintf(stderr, "cmv-bench proxy: the proxy stopped on an error (its log says which)\n");
	proxy_free(px);
	bench_upstream_stop(&up);
	for (int p = 0; p < 2; p++) {
		free(ttfb[p]);
		free(tot[p]);
		free(cpu[p]);
	}
	free(added);
	free(added_cpu);
	cmv_buf_dispose(&msgs);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_buf_dispose(&resp);
	cmv_model_handle_free(mh);
	cmv_repo_free(repo);
	bench_rmdir(dir);
	free(dir);
	return o;
}

/* ---- replayed sessions ---------------------------------------------------------------------- */

typedef struct {
	uint64_t budget;
	size_t sessions, requests, calls, faults, repeat_faults, over_budget, invalid, invalid_client, refused;
	size_t anchored; /* requests counted from the last reply's bill (docs/proxy.md) */
	cmv_id digest;	 /* every upstream body, in order (as up_digest) */
	uint64_t tok_client, tok_up, tools_client, tools_up;
	uint64_t few_tools_client, few_tools_up; /* sessions that call at most 5 distinct tools */
	/*
	 * The least any policy could send whole under the rule (a tool
	 * called is sent whole on the next request): the definitions the last
	 * reply called, stubs costing nothing. 1 - floor / client is the
	 * ceiling on the share saved.
	 */
	uint64_t tools_floor, few_tools_floor;
	size_t few_sessions;
	size_t stub_calls, stub_calls_hidden, tool_flips, tool_refaults, tool_repeat_refaults;
	uint64_t cache_read, half_tools_client[2], half_tools_up[2]; /* sessions of even and odd index */
	double worst_session_rate;
	char worst_session[128];
	double *turn_ratio; /* upstream / client, per request */
	size_t n_ratio, cap_ratio;
} replay_acc;

static size_t count_json(const cmv_model *m, cmv_tok *tok, const cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	size_t n = s ? count_text(m, tok, s, strlen(s)) : 0;
	cJSON_free(s);
	return n;
}

/*
 * A request body's tokens as a provider bills them, near enough for a
 * ceiling: the JSON's own text (its syntax over-counts, which is safe),
 * less the opaque bytes a provider never bills as text: a thinking
 * block's signature and a redacted block's data (the thinking text itself
 * stays). Counting a signature's base64 as text made a window with 64
 * signed thinking blocks read 2.3 times its budget.
 */
static size_t count_body(const cmv_model *m, cmv_tok *tok, const char *s, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(s, len);
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
	bool stripped = false;
	for (const cJSON *msg = cJSON_IsArray(msgs) ? msgs->child : NULL; msg; msg = msg->next) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
		for (cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
			const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			const char *opaque = !bt ? NULL : !strcmp(bt, "thinking") ? "signature"
				: !strcmp(bt, "redacted_thinking") ? "data" : NULL;
			if (opaque && cJSON_GetObjectItemCaseSensitive(b, opaque)) {
				cJSON_DeleteItemFromObjectCaseSensitive(b, opaque);
				stripped = true;
			}
		}
	}
	size_t n;
	if (stripped) {
		char *t = cJSON_PrintUnformatted(j);
		n = t ? count_text(m, tok, t, strlen(t)) : 0;
		cJSON_free(t);
	} else
		n = count_text(m, tok, s, len);
	cJSON_Delete(j);
	return n;
}

/* The key of a call (name and input), for telling repeat faults apart. */
static char *call_key(const cJSON *b)
{
	char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
	char *k = NULL;
	if (asprintf(&k, "%s\x1f%s", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name")), in ? in : "{}") < 0)
		k = NULL;
	cJSON_free(in);
	return k;
}

static bool has_key(char **keys, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i], k))
			return true;
	return false;
}

/* The messages with the cache markers taken off (a marker does not change what the cache matches). */
static cJSON *unmarked(const cJSON *msgs)
{
	cJSON *c = cJSON_Duplicate(msgs, 1);
	for (cJSON *mm = c ? c->child : NULL; mm; mm = mm->next) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(mm, "content");
		for (cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next)
			cJSON_DeleteItemFromObjectCaseSensitive(b, "cache_control");
	}
	return c;
}

/* Whether msgs begins with every message of prev. */
static bool msgs_extend(const cJSON *prev, const cJSON *msgs)
{
	const cJSON *a = prev ? prev->child : NULL, *b = msgs ? msgs->child : NULL;
	for (; a; a = a->next, b = b->next)
		if (!b || !cJSON_Compare(a, b, true))
			return false;
	return true;
}

static const cJSON *tool_def(const cJSON *tools, const char *name)
{
	for (const cJSON *d = tools ? tools->child : NULL; d && name; d = d->next) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name"));
		if (n && !strcmp(n, name))
			return d;
	}
	return NULL;
}

static void replay_session(replay_acc *a, proxy *p, cmv_repo *repo, const cJSON *msgs, const char *sid, size_t idx,
			   const char *tools, const char *system, const cmv_model *m, cmv_tok *tok)
{
	cJSON *ctools = cJSON_Parse(tools), *prev_msgs = NULL;
	char *prev_tools = NULL, *prev_sys = NULL;
	size_t prev_up = 0;
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 30), reply = CMV_BUF_INIT((size_t)1 << 30);
	cmv_buf items = CMV_BUF_INIT((size_t)1 << 30);
	char **seen = NULL, **faulted = NULL, **used = NULL, **refaulted = NULL;
	size_t n_seen = 0, n_faulted = 0, n_used = 0, n_refaulted = 0, calls = 0, faults = 0, requests = 0;
	uint64_t tc = 0, tu = 0, s_tools_up = 0, s_floor = 0;
	const cJSON *prev_reply = NULL;
	size_t n = (size_t)cJSON_GetArraySize(msgs), i = 0;
	size_t tools_client = count_text(m, tok, tools, strlen(tools));
	(void)repo;

	seen = calloc(n * 8 + 1, sizeof(*seen));
	faulted = calloc(n * 8 + 1, sizeof(*faulted));
	used = calloc(n * 8 + 1, sizeof(*used));
	refaulted = calloc(n * 8 + 1, sizeof(*refaulted));
	for (const cJSON *msg = msgs->child; msg; msg = msg->next, i++) {
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "role"));
		if (role && !strcmp(role, "assistant") && i > 0) {
			/* the request the client sent before this message; the message is the upstream's answer */
			cmv_buf_clear(&body);
			cmv_buf_printf(&body,
				       "{\"model\":\"" MODEL "\",\"max_tokens\":32000,\"stream\":false,"
				       "\"metadata\":{\"user_id\":\"{\\\"session_id\\\":\\\"%s\\\"}\"},"
				       "\"system\":%s,\"tools\":%s,\"messages\":[%s]}",
				       sid, system, tools, items.ptr ? items.ptr : "");
			proxy_turn *t = NULL;
			if (proxy_turn_new(&t, p, PROXY_API_ANTHROPIC, NULL, body.ptr, body.size) < 0) {
				if (!a->refused++ && getenv("CMV_BENCH_VERBOSE"))
					fprintf(stderr, "cmv-bench proxy: %s, request %zu refused: %s\n", sid, requests,
						cmv_error_last()->message);
				cmv_error_clear();
			} else {
				size_t len = 0;
				const char *up = proxy_turn_upstream(t, &len);
				if (up)
					digest_fold(&a->digest, up, len);
				size_t c_client = count_body(m, tok, body.ptr, body.size);
				size_t c_up = up ? count_body(m, tok, up, len) : c_client;
				const proxy_turn_stats *st = proxy_turn_stats_get(t);
				cJSON *uj = up ? cJSON_ParseWithLength(up, len) : NULL;
				const cJSON *utools = cJSON_GetObjectItemCaseSensitive(uj, "tools");
				size_t tools_up = uj ? count_json(m, tok, utools) : tools_client;
				if (uj) {
					char *ts = cJSON_PrintUnformatted(utools), *ss = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(uj, "system"));
					cJSON *um = unmarked(cJSON_GetObjectItemCaseSensitive(uj, "messages"));
					bool same_tools = prev_tools && ts && !strcmp(ts, prev_tools);
					a->tool_flips += prev_tools && !same_tools;
					if (same_tools && ss && prev_sys && !strcmp(ss, prev_sys))
						a->cache_read += msgs_extend(prev_msgs, um) ? prev_up
							: tools_up + count_text(m, tok, ss, strlen(ss));
					free(prev_tools);
					free(prev_sys);
					cJSON_Delete(prev_msgs);
					prev_tools = ts ? strdup(ts) : NULL;
					prev_sys = ss ? strdup(ss) : NULL;
					prev_msgs = um;
					prev_up = c_up;
					cJSON_free(ts);
					cJSON_free(ss);
					/* the calls this request drew, to a tool it sent as a stub */
					const cJSON *rc = cJSON_GetObjectItemCaseSensitive(msg, "content");
					for (const cJSON *b = cJSON_IsArray(rc) ? rc->child : NULL; b; b = b->next) {
						const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
						const char *nm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
						const cJSON *cd = tool_def(ctools, nm), *ud = tool_def(utools, nm);
						if (!bt || strcmp(bt, "tool_use") || !cd || !ud || cJSON_Compare(cd, ud, true))
							continue;
						a->stub_calls++;
						/* the recorded input names a property the stub did not show (the model saw the whole schema) */
						const cJSON *shown = cJSON_GetObjectItemCaseSensitive(
							cJSON_GetObjectItemCaseSensitive(ud, "input_schema"), "properties");
						const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
						for (const cJSON *k = cJSON_IsObject(in) ? in->child : NULL; k; k = k->next)
							if (!cJSON_GetObjectItemCaseSensitive(shown, k->string)) {
								a->stub_calls_hidden++;
								break;
							}
						/* called before, stubbed again since: a tool refault; twice for the same tool: thrashing */
						if (has_key(used, n_used, nm)) {
							a->tool_refaults++;
							if (has_key(refaulted, n_refaulted, nm))
								a->tool_repeat_refaults++;
							else if (n_refaulted < n * 8)
								refaulted[n_refaulted++] = strdup(nm);
						}
					}
				}
				if (up && (c_up > st->budget || !uj))
					a->over_budget++;
				a->anchored += up && st->anchored;
				cmv_buf probs = CMV_BUF_INIT((size_t)1 << 20);
				if (up && cmv_check_request(&probs, CMV_RENDER_ANTHROPIC, up, len) != 0) {
					if (cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, body.ptr, body.size) != 0)
						a->invalid_client++; /* the client's own request fails the checker: not the proxy's doing */
					else if (!a->invalid++ && getenv("CMV_BENCH_VERBOSE")) {
						fprintf(stderr, "cmv-bench proxy: %s, request %zu invalid: %.400s\n", sid, requests,
							probs.ptr ? probs.ptr : "");
						if (getenv("CMV_BENCH_DUMP")) {
							FILE *df = fopen(getenv("CMV_BENCH_DUMP"), "w");
							if (df) {
								fwrite(up, 1, len, df);
								fputc('\n', df);
								fwrite(body.ptr, 1, body.size, df);
								fclose(df);
							}
						}
					}
				}
				cmv_buf_dispose(&probs);
				cJSON_Delete(uj);
				requests++;
				tc += c_client;
				tu += c_up;
				a->tools_client += tools_client;
				a->tools_up += tools_up;
				const cJSON *pc = cJSON_GetObjectItemCaseSensitive(prev_reply, "content");
				for (const cJSON *b = cJSON_IsArray(pc) ? pc->child : NULL; b; b = b->next) {
					const char *nm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
					bool twice = false; /* a tool called twice in one reply is whole once */
					for (const cJSON *e = pc->child; e != b && nm; e = e->next)
						twice |= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "name")) &&
							 !strcmp(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring, nm);
					if (!twice)
						s_floor += count_json(m, tok, tool_def(ctools, nm));
				}
				a->half_tools_client[idx % 2] += tools_client;
				a->half_tools_up[idx % 2] += tools_up;
				s_tools_up += tools_up;
				if (a->n_ratio == a->cap_ratio) {
					a->cap_ratio = a->cap_ratio ? a->cap_ratio * 2 : 1024;
					a->turn_ratio = realloc(a->turn_ratio, a->cap_ratio * sizeof(double));
				}
				a->turn_ratio[a->n_ratio++] = c_client ? (double)c_up / (double)c_client : 1;
				/* the upstream answers with what the session recorded */
				cJSON *r = cJSON_CreateObject();
				cJSON_AddStringToObject(r, "id", "msg_replay");
				cJSON_AddStringToObject(r, "type", "message");
				cJSON_AddStringToObject(r, "role", "assistant");
				cJSON_AddStringToObject(r, "model", MODEL);
				const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
				cJSON_AddItemToObject(r, "content", cJSON_Duplicate(content, 1));
				bool calls_tool = false;
				for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
					const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
					calls_tool |= bt && !strcmp(bt, "tool_use");
				}
				cJSON_AddStringToObject(r, "stop_reason", calls_tool ? "tool_use" : "end_turn");
				cJSON *u = cJSON_AddObjectToObject(r, "usage");
				cJSON_AddNumberToObject(u, "input_tokens", (double)c_up);
				cJSON_AddNumberToObject(u, "output_tokens", 100);
				char *rt = cJSON_PrintUnformatted(r);
				cJSON_Delete(r);
				size_t before = st->faults;
				bool again = false;
				if (!rt || proxy_turn_reply(t, rt, strlen(rt), &again) < 0)
					cmv_error_clear();
				cJSON_free(rt);
				size_t f = st->faults - before;
				faults += f;
				/* the calls: which repeat one seen before (a fault's candidates), which repeat a fault */
				bool repeat_fault = false;
				for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
					const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
					if (!bt || strcmp(bt, "tool_use"))
						continue;
					calls++;
					const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
					if (name && !has_key(used, n_used, name) && n_used < n * 8)
						used[n_used++] = strdup(name);
					char *k = call_key(b);
					if (!k)
						continue;
					if (f && has_key(seen, n_seen, k)) {
						repeat_fault |= has_key(faulted, n_faulted, k);
						if (!has_key(faulted, n_faulted, k) && n_faulted < n * 8)
							faulted[n_faulted++] = strdup(k);
					}
					if (!has_key(seen, n_seen, k) && n_seen < n * 8)
						seen[n_seen++] = k;
					else
						free(k);
				}
				a->repeat_faults += repeat_fault;
				proxy_turn_free(t);
			}
			prev_reply = msg;
		}
		char *s = cJSON_PrintUnformatted(msg);
		if (items.size)
			cmv_buf_putc(&items, ',');
		cmv_buf_puts(&items, s ? s : "{}");
		cJSON_free(s);
	}
	a->sessions++;
	a->requests += requests;
	a->calls += calls;
	a->faults += faults;
	a->tok_client += tc;
	a->tok_up += tu;
	if (n_used <= 5 && requests) {
		a->few_sessions++;
		a->few_tools_client += tools_client * requests;
		a->few_tools_up += s_tools_up;
		a->few_tools_floor += s_floor;
	}
	a->tools_floor += s_floor;
	double rate = calls ? (double)faults / (double)calls : 0;
	if (rate > a->worst_session_rate || !a->worst_session[0]) {
		a->worst_session_rate = rate;
		snprintf(a->worst_session, sizeof(a->worst_session), "%s", sid);
	}
	for (size_t k = 0; k < n_seen; k++)
		free(seen[k]);
	for (size_t k = 0; k < n_faulted; k++)
		free(faulted[k]);
	for (size_t k = 0; k < n_used; k++)
		free(used[k]);
	free(seen);
	free(faulted);
	free(used);
	for (size_t k = 0; k < n_refaulted; k++)
		free(refaulted[k]);
	free(refaulted);
	free(prev_tools);
	free(prev_sys);
	cJSON_Delete(prev_msgs);
	cJSON_Delete(ctools);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&reply);
	cmv_buf_dispose(&items);
}

/* The Claude Code sessions under dir, rendered as the Anthropic messages their client sent. */
typedef struct {
	char sid[96];
	cJSON *msgs;
	size_t tokens;
} replay_session_src;

static size_t load_sessions(replay_session_src **out, const char *dir, const cmv_model *m, cmv_tok *tok, size_t max)
{
	bench_files l = { 0 };
	cmv_repo *repo = NULL;
	size_t n = 0;

	bench_collect(&l, dir, "claude-code");
	*out = calloc(l.n + 1, sizeof(**out));
	if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0)
		die("a scratch store");
	for (size_t i = 0; i < l.n && n < max; i++) {
		cmv_import_result res;
		cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
		cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
		cmv_buf out_b = CMV_BUF_INIT((size_t)1 << 30);
		cmv_id tip;
		char br[64];
		snprintf(br, sizeof(br), "s%zu", i);
		io.branch = br;
		io.flags = CMV_IMPORT_LENIENT;
		ro.model = MODEL;
		/* the client's whole line: the proxy, not the client, keeps the window (what came before a compaction too) */
		ro.flags = CMV_RENDER_FULL_HISTORY | CMV_RENDER_NO_DECORATIONS;
		if (cmv_import_file(&res, repo, l.paths[i], "claude-code", &io) < 0 || cmv_resolve(&tip, repo, br) < 0 ||
		    cmv_render(&out_b, NULL, repo, &tip, CMV_RENDER_ANTHROPIC, &ro) < 0) {
			fprintf(stderr, "cmv-bench proxy: %s: left out: %s\n", l.paths[i], cmv_error_last()->message);
			cmv_error_clear();
			cmv_buf_dispose(&out_b);
			continue;
		}
		cJSON *j = cJSON_ParseWithLength(out_b.ptr, out_b.size);
		cJSON *msgs = cJSON_DetachItemFromObjectCaseSensitive(j, "messages");
		cJSON_Delete(j);
		if (cJSON_GetArraySize(msgs) >= 2) {
			const char *base = strrchr(l.paths[i], '/');
			snprintf((*out)[n].sid, sizeof((*out)[n].sid), "replay-%zu-%.40s", i, base ? base + 1 : l.paths[i]);
			for (char *c = (*out)[n].sid; *c; c++)
				if (!(*c == '-' || *c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
				      (*c >= 'A' && *c <= 'Z')))
					*c = '-';
			(*out)[n].tokens = count_json(m, tok, msgs);
			(*out)[n++].msgs = msgs;
		} else {
			cJSON_Delete(msgs);
		}
		cmv_buf_dispose(&out_b);
	}
	cmv_repo_free(repo);
	bench_files_free(&l);
	return n;
}

static cJSON *replay(const char *dir, const uint64_t *budgets, size_t n_budgets, size_t max_sessions, const char *tools,
		     const char *system, bool json)
{
	cmv_repo *repo = NULL;
	cmv_model_handle *mh = NULL;
	replay_session_src *src = NULL;
	cJSON *arr = cJSON_CreateArray();

	if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 || cmv_model_handle_open(&mh, repo, MODEL) < 0)
		die("the model");
	const cmv_model *m = cmv_model_handle_profile(mh);
	cmv_tok *tok = cmv_model_handle_tok(mh);
	size_t n = load_sessions(&src, dir, m, tok, max_sessions), msgs_total = 0;
	uint64_t tokens_total = 0, biggest = 0;
	for (size_t i = 0; i < n; i++) {
		msgs_total += (size_t)cJSON_GetArraySize(src[i].msgs);
		tokens_total += src[i].tokens;
		biggest = src[i].tokens > biggest ? src[i].tokens : biggest;
	}
	if (!json)
		printf("\nreplay: %zu Claude Code sessions from %s (%zu messages, %llu tokens of messages, the largest %llu)\n", n,
		       dir, msgs_total, (unsigned long long)tokens_total, (unsigned long long)biggest);
	for (size_t b = 0; b < n_budgets; b++) {
		cmv_repo *prepo = NULL;
		proxy *p = NULL;
		proxy_config cfg;
		replay_acc a;
		memset(&a, 0, sizeof(a));
		memset(&cfg, 0, sizeof(cfg));
		cfg.budget = budgets[b];
		cfg.quiet = true;
		cfg.tool_window = opt_tool_window;
		cfg.tool_demote = opt_tool_demote;
		cfg.no_tool_paging = opt_no_tool_paging;
		cfg.tool_tokens = opt_tool_tokens;
		a.budget = budgets[b];
		if (cmv_repo_open(&prepo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 || proxy_new(&p, prepo, &cfg) < 0)
			die("the proxy");
		double t0 = bench_now();
		for (size_t i = 0; i < n; i++)
			replay_session(&a, p, prepo, src[i].msgs, src[i].sid, i, tools, system, m, tok);
		double dt = bench_now() - t0;
		double p50 = bench_percentile(a.turn_ratio, a.n_ratio, 0.5), p95 = bench_percentile(a.turn_ratio, a.n_ratio, 0.95);
		double sent = a.tok_client ? (double)a.tok_up / (double)a.tok_client : 0;
		double tools_saved = a.tools_client ? 1 - (double)a.tools_up / (double)a.tools_client : 0;
		double few_saved = a.few_tools_client ? 1 - (double)a.few_tools_up / (double)a.few_tools_client : 0;
		double ceiling = a.tools_client ? 1 - (double)a.tools_floor / (double)a.tools_client : 0;
		double few_ceiling = a.few_tools_client ? 1 - (double)a.few_tools_floor / (double)a.few_tools_client : 0;
		double rate = a.calls ? (double)a.faults / (double)a.calls : 0;
		double half_saved[2], stub_rate = a.calls ? (double)a.stub_calls / (double)a.calls : 0;
		for (int h = 0; h < 2; h++)
			half_saved[h] = a.half_tools_client[h] ? 1 - (double)a.half_tools_up[h] / (double)a.half_tools_client[h] : 0;
		double cost = 0.1 * (double)a.cache_read + 1.25 * (double)(a.tok_up - a.cache_read);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "budget", (double)a.budget);
		cJSON_AddNumberToObject(o, "sessions", (double)a.sessions);
		cJSON_AddNumberToObject(o, "requests", (double)a.requests);
		cJSON_AddNumberToObject(o, "tokens_client", (double)a.tok_client);
		cJSON_AddNumberToObject(o, "tokens_upstream", (double)a.tok_up);
		cJSON_AddNumberToObject(o, "sent_ratio", sent);
		cJSON_AddNumberToObject(o, "turn_ratio_p50", p50);
		cJSON_AddNumberToObject(o, "turn_ratio_p95", p95);
		cJSON_AddNumberToObject(o, "tool_tokens_client", (double)a.tools_client);
		cJSON_AddNumberToObject(o, "tool_tokens_upstream", (double)a.tools_up);
		cJSON_AddNumberToObject(o, "tool_tokens_saved", tools_saved);
		cJSON_AddNumberToObject(o, "few_tool_sessions", (double)a.few_sessions);
		cJSON_AddNumberToObject(o, "few_tool_tokens_saved", few_saved);
		cJSON_AddNumberToObject(o, "tool_tokens_saved_ceiling", ceiling);
		cJSON_AddNumberToObject(o, "few_tool_tokens_saved_ceiling", few_ceiling);
		cJSON_AddNumberToObject(o, "tool_tokens_saved_even_sessions", half_saved[0]);
		cJSON_AddNumberToObject(o, "tool_tokens_saved_odd_sessions", half_saved[1]);
		cJSON_AddNumberToObject(o, "stub_calls", (double)a.stub_calls);
		cJSON_AddNumberToObject(o, "stub_call_rate", stub_rate);
		cJSON_AddNumberToObject(o, "stub_calls_with_hidden_properties", (double)a.stub_calls_hidden);
		cJSON_AddNumberToObject(o, "tool_flips", (double)a.tool_flips);
		cJSON_AddNumberToObject(o, "tool_refaults", (double)a.tool_refaults);
		cJSON_AddNumberToObject(o, "tool_repeat_refaults", (double)a.tool_repeat_refaults);
		cJSON_AddNumberToObject(o, "cache_read_tokens", (double)a.cache_read);
		cJSON_AddNumberToObject(o, "input_cost_units", cost);
		cJSON_AddNumberToObject(o, "tool_calls", (double)a.calls);
		cJSON_AddNumberToObject(o, "faults", (double)a.faults);
		cJSON_AddNumberToObject(o, "fault_rate", rate);
		cJSON_AddNumberToObject(o, "repeat_faults", (double)a.repeat_faults);
		cJSON_AddNumberToObject(o, "worst_session_fault_rate", a.worst_session_rate);
		cJSON_AddStringToObject(o, "worst_session", a.worst_session);
		cJSON_AddNumberToObject(o, "over_budget", (double)a.over_budget);
		cJSON_AddNumberToObject(o, "anchored", (double)a.anchored);
		cJSON_AddNumberToObject(o, "invalid", (double)a.invalid);
		cJSON_AddNumberToObject(o, "invalid_as_sent_by_client", (double)a.invalid_client);
		cJSON_AddNumberToObject(o, "refused", (double)a.refused);
		cJSON_AddNumberToObject(o, "seconds", dt);
		char hex[CMV_ID_HEXSZ + 1];
		cJSON_AddStringToObject(o, "upstream_digest", cmv_id_tostr(hex, sizeof(hex), &a.digest));
		cJSON_AddItemToArray(arr, o);
		if (!json) {
			char bl[32];
			if (a.budget)
				snprintf(bl, sizeof(bl), "%llu", (unsigned long long)a.budget);
			else
				snprintf(bl, sizeof(bl), "the model's");
			printf("  budget %s: %zu requests, sent %.3fx of the unpaged tokens (%llu of %llu; per request p50 %.3f, "
			       "p95 %.3f)\n",
			       bl, a.requests, sent, (unsigned long long)a.tok_up, (unsigned long long)a.tok_client, p50, p95);
			printf("    tool definitions: %.1f%% of their tokens saved (%.1f%% on the %zu sessions calling <= 5 tools; "
			       "goal >= 85%%)\n",
			       100 * tools_saved, 100 * few_saved, a.few_sessions);
			printf("    tool definitions, ceiling (each called tool whole on the next request only, stubs free): "
			       "%.1f%% saved, %.1f%% on the sessions calling <= 5 tools\n",
			       100 * ceiling, 100 * few_ceiling);
			printf("    tool paging: sessions of even index %.1f%%, odd %.1f%% saved; %zu stub calls (%.2f%% of calls; "
			       "%zu naming a property the stub hid; %zu tool refaults, %zu repeated), %zu tool flips in %zu "
			       "requests\n",
			       100 * half_saved[0], 100 * half_saved[1], a.stub_calls, 100 * stub_rate, a.stub_calls_hidden,
			       a.tool_refaults, a.tool_repeat_refaults, a.tool_flips, a.requests);
			printf("    cache (estimated): %.1f%% of the tokens sent read from cache; input cost %.0f units "
			       "(reads 0.1, writes 1.25)\n",
			       a.tok_up ? 100.0 * (double)a.cache_read / (double)a.tok_up : 0, cost);
			printf("    faults: %zu of %zu tool calls (%.2f%%; goal < 1%%), %zu repeat faults, worst session %.2f%% "
			       "(%s)\n",
			       a.faults, a.calls, 100 * rate, a.repeat_faults, 100 * a.worst_session_rate, a.worst_session);
			printf("    checks: %zu over budget, %zu invalid for the provider (and %zu the client sent invalid), "
			       "%zu refused; %zu anchored on the last reply's bill; %.1f s\n",
			       a.over_budget, a.invalid, a.invalid_client, a.refused, a.anchored, dt);
			printf("    upstream bodies: digest %s\n", hex);
		}
		free(a.turn_ratio);
		proxy_free(p);
		cmv_repo_free(prepo);
	}
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(src[i].msgs);
	free(src);
	cmv_model_handle_free(mh);
	cmv_repo_free(repo);
	return arr;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int bench_proxy(int argc, char **argv)
{
	const char *dir = NULL, *client = NULL;
	size_t turns = 50, session_tokens = 200000, max_sessions = SIZE_MAX;
	uint64_t budgets[8] = { 0, 60000 };
	size_t n_budgets = 2;
	bool json = false, quick = false, latency_only = false;
	char machine[256], defdir[4096];
	char *tools = NULL, *system = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--latency"))
			latency_only = true;
		else if (!strcmp(argv[i], "--turns") && i + 1 < argc)
			turns = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--session-tokens") && i + 1 < argc)
			session_tokens = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--client") && i + 1 < argc)
			client = argv[++i];
		else if (!strcmp(argv[i], "--tool-window") && i + 1 < argc)
			opt_tool_window = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--tool-demote") && i + 1 < argc) {
			const char *d = argv[++i];
			opt_tool_demote = !strcmp(d, "change") ? PROXY_DEMOTE_CHANGE : !strcmp(d, "cut") ? PROXY_DEMOTE_CUT
				: !strcmp(d, "eager") ? PROXY_DEMOTE_EAGER : -1;
			if (opt_tool_demote < 0) {
				fprintf(stderr, "cmv-bench proxy: --tool-demote change|cut|eager\n");
				return 2;
			}
		}
		else if (!strcmp(argv[i], "--digest"))
			opt_digest = true;
		else if (!strcmp(argv[i], "--no-tool-paging"))
			opt_no_tool_paging = true;
		else if (!strcmp(argv[i], "--tool-paging") && i + 1 < argc) {
			const char *d = argv[++i];
			if (strcmp(d, "cache") && strcmp(d, "tokens") && strcmp(d, "off")) {
				fprintf(stderr, "cmv-bench proxy: --tool-paging cache|tokens|off\n");
				return 2;
			}
			opt_tool_tokens = !strcmp(d, "tokens");
			opt_no_tool_paging |= !strcmp(d, "off");
		}
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
			n_budgets = 0;
			for (char *s = argv[++i], *e; *s && n_budgets < 8; s = *e ? e + 1 : e) {
				budgets[n_budgets++] = strtoull(s, &e, 10);
				if (e == s)
					break;
			}
		} else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fprintf(stderr, "usage: cmv-bench proxy [DIR] [--turns N] [--session-tokens N] [--budget N,...] "
					"[--client FILE|standin] [--tool-window N] [--tool-demote change|cut|eager] [--tool-paging cache|tokens|off] [--no-tool-paging] "
					"[--latency] [--digest] [--quick] [--json]\n");
			return 2;
		}
	}
	if (quick) {
		turns = turns < 15 ? turns : 15;
		max_sessions = 4;
	}
	if (!turns)
		turns = 1;
	if (!dir) {
		snprintf(defdir, sizeof(defdir), "%s/../shared/transcripts", CMV_SOURCE_ROOT);
		if (!exists(defdir))
			snprintf(defdir, sizeof(defdir), "%s/tests/resources/transcripts", CMV_SOURCE_ROOT);
		dir = defdir;
	}
	char captured[4096];
	snprintf(captured, sizeof(captured), "%s/data/client-requests/claude-code.json", CMV_SOURCE_ROOT);
	if (!client && exists(captured))
		client = captured;
	if (client && !strcmp(client, "standin"))
		client = NULL;
	if (client) {
		/* a request body a real client sent: its tools and system prompt */
		cmv_buf f = CMV_BUF_INIT((size_t)1 << 30);
		if (cmv__read_file(&f, client) < 0)
			die(client);
		cJSON *j = cJSON_ParseWithLength(f.ptr, f.size);
		cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "body");
		const cJSON *src = cJSON_IsObject(b) ? b : j; /* a model_server.py log record holds the body */
		const cJSON *jt = cJSON_GetObjectItemCaseSensitive(src, "tools"), *js = cJSON_GetObjectItemCaseSensitive(src, "system");
		if (!cJSON_IsArray(jt)) {
			fprintf(stderr, "cmv-bench proxy: %s: no \"tools\" array in the request\n", client);
			return 1;
		}
		tools = cJSON_PrintUnformatted(jt);
		system = js ? cJSON_PrintUnformatted(js) : jquote("");
		cJSON_Delete(j);
		cmv_buf_dispose(&f);
	} else {
		standin_client(&tools, &system);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bench_machine(machine, sizeof(machine));
	if (!json)
		printf("cmv-bench proxy on %s; model %s; client tools: %s (%zu bytes), system %zu bytes\n", machine, MODEL,
		       client ? client : "the stand-in for Claude Code's 18", strlen(tools), strlen(system));
	cJSON *out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "suite", "proxy");
	cJSON_AddStringToObject(out, "machine", machine);
	cJSON_AddStringToObject(out, "model", MODEL);
	cJSON_AddStringToObject(out, "client", client ? client : "stand-in");
	cJSON_AddItemToObject(out, "latency", latency(session_tokens, turns, tools, system, json));
	if (!latency_only)
		cJSON_AddItemToObject(out, "replay", replay(dir, budgets, n_budgets, max_sessions, tools, system, json));
	if (json) {
		char *text = cJSON_Print(out);
		puts(text);
		cJSON_free(text);
	}
	cJSON_Delete(out);
	cJSON_free(tools);
	cJSON_free(system);
	curl_global_cleanup();
	return 0;
}
