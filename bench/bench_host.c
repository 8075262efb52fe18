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

int bench_host(int argc, char **argv)
{
	size_t turns = 1000;
	uint64_t budget = 30000;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--turns") && i + 1 < argc)
			turns = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
			budget = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: cmv-bench host [--turns N] [--budget TOKENS] [--json]\n");
			return 2;
		}
	}
	char *dir = bench_tmpdir(), path[4096], cmd[8192], user[4096], reply[4096];
	cmv_repo *repo;
	cmv_model_handle *model;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_request_report rep = { 0 };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	double *ms = calloc(turns, sizeof(double));

	snprintf(path, sizeof(path), "%s/c/.cmv", dir);
	if (!ms || cmv_repo_open(&repo, path, CMV_REPO_OPEN_CREATE) < 0 || cmv_model_handle_open(&model, repo, "gpt-4o") < 0)
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
		double t0 = bench_now();
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
		cJSON_free(text);
		cJSON_Delete(m);
		cJSON_Delete(a);
	}
	double c50 = bench_percentile(ms, turns, 0.5), cmean = 0;
	for (size_t t = 0; t < turns; t++)
		cmean += ms[t] / (double)turns;
	/* the same loop in Python, through the package, on a store of its own */
	const char *py = getenv("CMV_PYTHON") ? getenv("CMV_PYTHON") : "/usr/bin/python3";
	snprintf(cmd, sizeof(cmd), "PYTHONPATH='%s/bindings/python' '%s' '%s/bench/host_bench.py' '%s/py/.cmv' %zu %llu",
		 CMV_SOURCE_ROOT, py, CMV_SOURCE_ROOT, dir, turns, (unsigned long long)budget);
	FILE *p = popen(cmd, "r");
	char line[4096] = "";
	double p50 = -1, pmean = -1;
	if (p && fgets(line, sizeof(line), p)) {
		cJSON *j = cJSON_Parse(line);
		p50 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "p50_ms"));
		pmean = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "mean_ms"));
		cJSON_Delete(j);
	}
	if (p)
		pclose(p);
	if (json)
		printf("{\"turns\":%zu,\"budget\":%llu,\"request_tokens\":%llu,\"c_p50_ms\":%.3f,\"c_mean_ms\":%.3f,"
		       "\"python_p50_ms\":%.3f,\"python_mean_ms\":%.3f,\"ratio_mean\":%.3f}\n",
		       turns, (unsigned long long)budget, (unsigned long long)rep.pages.tokens, c50, cmean, p50, pmean,
		       pmean > 0 ? pmean / cmean : -1);
	else
		printf("host loop, %zu turns, budget %llu (last request %llu tokens, %zu stubbed, %zu evicted)\n"
		       "per turn (append + request + reply + usage), ms:  C p50 %.3f mean %.3f;  Python p50 %.3f mean %.3f;"
		       "  Python/C (mean) %.2f\n",
		       turns, (unsigned long long)budget, (unsigned long long)rep.pages.tokens, rep.pages.stubbed,
		       rep.pages.evicted, c50, cmean, p50, pmean, pmean > 0 ? pmean / cmean : -1);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_model_handle_free(model);
	cmv_repo_free(repo);
	free(ms);
	bench_rmdir(dir);
	free(dir);
	return p50 < 0 ? 1 : 0;
}
