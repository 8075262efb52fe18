/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench host: an agent host's loop, per turn: append the user's message and
 * the model's reply, build the request (cmv_request: the pager within a budget,
 * the tools), book the call's usage. The same loop in C (the API) and in Python
 * (bindings/python, over the JSON entry, bench/host_bench.py), on stores of their
 * own; the goal is Python within 1.3 times C per turn (docs/host.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "bench.h"

static const char TOOLS[] = "[{\"name\":\"shell\",\"description\":\"Run a command.\",\"input_schema\":{\"type\":\"object\","
			    "\"properties\":{\"cmd\":{\"type\":\"string\"}}}}]";

/* A turn's text: words that vary with the turn, so nothing is stored once for all. */
static void words(char *out, size_t cap, size_t turn, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n && len + 24 < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "w%zu_%zu ", turn * 7 + i, i % 13);
	out[len] = '\0';
}

static void die(const char *what)
{
	fprintf(stderr, "cmv-bench host: %s: %s\n", what, cmv_error_last() ? cmv_error_last()->message : "failed");
	exit(1);
}

/*
 * This thread's CPU time, in seconds: the turn's work without the waits a
 * loaded machine adds (an fsync at a WAL checkpoint is wall time in both
 * loops alike, and the tail that makes the means).
 */
static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double mean(const double *v, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += v[i];
	return n ? s / (double)n : 0;
}

typedef struct {
	double p50, mean, cpu_p50, cpu_mean;
} side;

/* The Python loop (bench/host_bench.py) on a store of its own; -1 everywhere when it fails. */
static void run_python(side *out, const char *dir, const char *sub, size_t turns, uint64_t budget, const char *mode)
{
	const char *py = getenv("CMV_PYTHON") ? getenv("CMV_PYTHON") : "/usr/bin/python3";
	char cmd[8192], line[4096] = "";
	snprintf(cmd, sizeof(cmd), "PYTHONPATH='%s/bindings/python' '%s' '%s/bench/host_bench.py' '%s/%s/.cmv' %zu %llu %s",
		 CMV_SOURCE_ROOT, py, CMV_SOURCE_ROOT, dir, sub, turns, (unsigned long long)budget, mode);
	out->p50 = out->mean = out->cpu_p50 = out->cpu_mean = -1;
	FILE *p = popen(cmd, "r");
	if (p && fgets(line, sizeof(line), p)) {
		cJSON *j = cJSON_Parse(line);
		out->p50 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "p50_ms"));
		out->mean = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "mean_ms"));
		out->cpu_p50 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "cpu_p50_ms"));
		out->cpu_mean = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "cpu_mean_ms"));
		cJSON_Delete(j);
	}
	if (p)
		pclose(p);
}

/*
 * A streamed reply of n one-character text deltas (Anthropic's SSE), fed and
 * assembled: milliseconds, best of `reps`. The events are made before the clock
 * starts, so this is the stream's own work (parse each event, append its text).
 */
static double stream_ms(size_t n, int reps)
{
	cmv_buf sse = CMV_BUF_INIT((size_t)1 << 30), out = CMV_BUF_INIT((size_t)1 << 30);
	double best = 1e300;
	char ev[256];
	cmv_buf_puts(&sse, "data: {\"type\":\"message_start\",\"message\":{\"role\":\"assistant\",\"content\":[]}}\n\n"
			   "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
	for (size_t i = 0; i < n; i++) {
		snprintf(ev, sizeof(ev), "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
			 "\"text\":\"%c\"}}\n\n", 'a' + (int)(i % 26));
		if (cmv_buf_puts(&sse, ev) < 0)
			die("stream events");
	}
	for (int r = 0; r < reps; r++) {
		cmv_reply_stream *s;
		double t0 = bench_now();
		if (cmv_reply_stream_new(&s, "anthropic") < 0)
			die("stream");
		/* 16 KiB reads, as a socket would give them */
		for (size_t i = 0; i < sse.size; i += 16384)
			if (cmv_reply_stream_feed(s, sse.ptr + i, sse.size - i < 16384 ? sse.size - i : 16384) < 0)
				die("stream feed");
		if (cmv_reply_stream_body(&out, s) < 0)
			die("stream body");
		cmv_reply_stream_free(s);
		double ms = (bench_now() - t0) * 1e3;
		best = ms < best ? ms : best;
	}
	cmv_buf_dispose(&sse);
	cmv_buf_dispose(&out);
	return best;
}

int bench_host(int argc, char **argv)
{
	size_t turns = 1000, stream = 0;
	uint64_t budget = 30000;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--stream") && i + 1 < argc)
			stream = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--turns") && i + 1 < argc)
			turns = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
			budget = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: cmv-bench host [--turns N] [--budget TOKENS] [--stream DELTAS] [--json]\n");
			return 2;
		}
	}
	if (stream) {
		/* a tenth as many deltas: per delta the same when appending is linear, ten times more when quadratic */
		size_t small = stream / 10 ? stream / 10 : 1;
		double a = stream_ms(small, 5), b = stream_ms(stream, 3);
		double per_a = a * 1e6 / (double)small, per_b = b * 1e6 / (double)stream;
		if (json)
			printf("{\"deltas\":%zu,\"ms\":%.3f,\"ns_per_delta\":%.1f,\"deltas_small\":%zu,\"ms_small\":%.3f,"
			       "\"ns_per_delta_small\":%.1f,\"growth\":%.3f}\n", stream, b, per_b, small, a, per_a, per_b / per_a);
		else
			printf("a streamed reply of one-character text deltas (anthropic), fed in 16 KiB reads, best of 3-5\n"
			       "  %9zu deltas %10.3f ms  %8.1f ns a delta\n  %9zu deltas %10.3f ms  %8.1f ns a delta\n"
			       "per-delta cost, %zu over %zu: %.2f (1: linear; 10: quadratic)\n",
			       small, a, per_a, stream, b, per_b, stream, small, per_b / per_a);
		return 0;
	}
	char *dir = bench_tmpdir(), path[4096], user[4096], reply[4096];
	cmv_repo *repo;
	cmv_model_handle *model;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_request_report rep = { 0 };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	double *ms = calloc(turns, sizeof(double)), *cpu = calloc(turns, sizeof(double));

	snprintf(path, sizeof(path), "%s/c/.cmv", dir);
	if (!ms || !cpu || cmv_repo_open(&repo, path, CMV_REPO_OPEN_CREATE) < 0 || cmv_model_handle_open(&model, repo, "gpt-4o") < 0)
		die("open");
	cmv_request_options_init(&ro);
	po.budget = budget;
	ro.tools = TOOLS;
	ro.recall_tool = true;
	ro.pager = &po;
	for (size_t t = 0; t < turns; t++) {
		cJSON *m = cJSON_CreateArray(), *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
		words(user, sizeof(user), t, 40);
		words(reply, sizeof(reply), t + 100000, 120);
		cJSON_AddStringToObject(u, "role", "user");
		cJSON_AddStringToObject(u, "content", user);
		cJSON_AddStringToObject(a, "role", "assistant");
		cJSON_AddStringToObject(a, "content", reply);
		cJSON_AddItemToArray(m, u);
		double t0 = bench_now(), c0 = thread_cpu();
		char *text = cJSON_PrintUnformatted(m);
		cmv_usage usage = { CMV_USAGE_VERSION, 1000 + t, 100, 0, 0 };
		if (cmv_append_json(NULL, repo, "h", "openai-chat", text, strlen(text)) < 0)
			die("append");
		cmv_buf_clear(&body);
		if (cmv_request(&body, &rep, repo, "h", model, &ro) < 0)
			die("request");
		cJSON_free(text);
		text = cJSON_PrintUnformatted(a);
		if (cmv_append_json(NULL, repo, "h", "openai-chat", text, strlen(text)) < 0 ||
		    cmv_usage_add(NULL, repo, "h", model, &usage) < 0)
			die("reply");
		ms[t] = (bench_now() - t0) * 1e3;
		cpu[t] = (thread_cpu() - c0) * 1e3;
		cJSON_free(text);
		cJSON_Delete(m);
		cJSON_Delete(a);
	}
	side c = { 0, 0, 0, 0 }, py, pyd;
	c.mean = mean(ms, turns);
	c.cpu_mean = mean(cpu, turns);
	c.p50 = bench_percentile(ms, turns, 0.5);
	c.cpu_p50 = bench_percentile(cpu, turns, 0.5);
	/*
	 * The same loop in Python, through the package, on stores of their own:
	 * the body as bytes to send (the C loop's work), then parsed into a dict
	 * as well (what Branch.materialize adds).
	 */
	run_python(&py, dir, "py", turns, budget, "bytes");
	run_python(&pyd, dir, "pyd", turns, budget, "dict");
	if (json)
		printf("{\"turns\":%zu,\"budget\":%llu,\"request_tokens\":%llu,\"c_p50_ms\":%.3f,\"c_mean_ms\":%.3f,"
		       "\"c_cpu_mean_ms\":%.3f,\"python_p50_ms\":%.3f,\"python_mean_ms\":%.3f,\"python_cpu_mean_ms\":%.3f,"
		       "\"python_dict_p50_ms\":%.3f,\"python_dict_mean_ms\":%.3f,\"python_dict_cpu_mean_ms\":%.3f,"
		       "\"ratio_p50\":%.3f,\"ratio_mean\":%.3f,\"ratio_cpu_mean\":%.3f}\n",
		       turns, (unsigned long long)budget, (unsigned long long)rep.pages.tokens, c.p50, c.mean, c.cpu_mean,
		       py.p50, py.mean, py.cpu_mean, pyd.p50, pyd.mean, pyd.cpu_mean, py.p50 / c.p50, py.mean / c.mean,
		       py.cpu_mean / c.cpu_mean);
	else
		printf("host loop, %zu turns, budget %llu (last request %llu tokens, %zu stubbed, %zu evicted)\n"
		       "per turn (append + request + reply + usage), ms     wall p50   wall mean   CPU p50   CPU mean\n"
		       "  C (the API)                                        %8.3f    %8.3f  %8.3f   %8.3f\n"
		       "  Python (the body as bytes: the same work)          %8.3f    %8.3f  %8.3f   %8.3f\n"
		       "  Python (the body parsed into a dict too)           %8.3f    %8.3f  %8.3f   %8.3f\n"
		       "Python/C (bytes): wall p50 %.2f, wall mean %.2f, CPU mean %.2f (goal: within 1.3)\n",
		       turns, (unsigned long long)budget, (unsigned long long)rep.pages.tokens, rep.pages.stubbed,
		       rep.pages.evicted, c.p50, c.mean, c.cpu_p50, c.cpu_mean, py.p50, py.mean, py.cpu_p50, py.cpu_mean,
		       pyd.p50, pyd.mean, pyd.cpu_p50, pyd.cpu_mean, py.p50 / c.p50, py.mean / c.mean,
		       py.cpu_mean / c.cpu_mean);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_model_handle_free(model);
	cmv_repo_free(repo);
	free(ms);
	free(cpu);
	bench_rmdir(dir);
	free(dir);
	return py.p50 < 0 || pyd.p50 < 0 ? 1 : 0;
}
