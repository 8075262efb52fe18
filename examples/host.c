/* SPDX-License-Identifier: MIT */
/*
 * An agent host in C on cmv (docs/host.md): the loop of examples/host.py, with the C
 * API. Tools, a switch from an OpenAI model to a Claude model and back, usage per
 * model, and the model recalling a paged-out result through cmv_recall; replies
 * arrive as server-sent events, fed to cmv in chunks.
 * Usage: host STORE_DIR BASE_URL   (tests/support/host_server.py serves BASE_URL)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <cmv/cmv.h>

static const char TOOLS[] = "[{\"name\":\"shell\",\"description\":\"Run a command; its output comes back.\","
			    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"cmd\":{\"type\":\"string\"}}}}]";
static const char *const SCRIPT[][2] = {
	{ "gpt-4o", "hello" }, { "gpt-4o", "run: seq 1 1500" }, { "gpt-4o", "run: seq 1000 2500" },
	{ "claude-sonnet-4-5", "what did it print" }, { "claude-sonnet-4-5", "run: seq 1 1200" },
	{ "claude-sonnet-4-5", "recall" }, { "gpt-4o", "thanks" }, { "gpt-4o", "recall" },
};

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "host: %s: %s\n", what, cmv_error_last() ? cmv_error_last()->message : "failed");
		exit(1);
	}
}

/* The host's tool (simulated: seq A B). */
static void shell(cmv_buf *out, const char *cmd)
{
	int a = 0, b = 0;
	sscanf(cmd, "seq %d %d", &a, &b);
	for (int i = a; i <= b; i++)
		cmv_buf_printf(out, "%s%d", i > a ? "\n" : "", i);
}

/* POST the body (it asks for a stream); the events are fed to a reply stream in 256-byte chunks. */
static void send(cmv_buf *reply, cmv_llm_transport *t, const char *url, const char *api, cmv_buf *body)
{
	const char *hdr[] = { "Content-Type: application/json" };
	cmv_http_response resp = { 0, -1, CMV_BUF_INIT(CMV_BUF_CONTENT) };
	cmv_reply_stream *s;
	cmv_http_request req = { url, hdr, 1, body->ptr, body->size, 30000, CMV_BUF_CONTENT };
	check(t->send(t, &req, &resp), "send");
	if (resp.status != 200) {
		fprintf(stderr, "host: %s: HTTP %ld: %s\n", url, resp.status, resp.body.ptr);
		exit(1);
	}
	check(cmv_reply_stream_new(&s, api), "stream");
	for (size_t i = 0; i < resp.body.size; i += 256)
		check(cmv_reply_stream_feed(s, resp.body.ptr + i, resp.body.size - i < 256 ? resp.body.size - i : 256), "feed");
	check(cmv_reply_stream_body(reply, s), "stream body");
	cmv_reply_stream_free(s);
	cmv_buf_dispose(&resp.body);
}

int main(int argc, char **argv)
{
	cmv_repo *repo;
	cmv_llm_transport *http;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), sse = CMV_BUF_INIT(CMV_BUF_CONTENT), out = CMV_BUF_INIT(CMV_BUF_CONTENT),
		usage = CMV_BUF_INIT(1 << 20);
	cmv_request_report rep = { 0 };
	cmv_reply reply = { 0 };
	int recalled = 0;
	char url[512];

	if (argc != 3)
		return fprintf(stderr, "usage: host STORE_DIR BASE_URL\n"), 2;
	check(cmv_repo_open(&repo, argv[1], CMV_REPO_OPEN_CREATE), "open");
	check(cmv_llm_transport_curl(&http), "curl");
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	po.budget = 6000;
	po.stub_pinned = true;
	cmv_request_options ro;
	cmv_request_options_init(&ro);
	ro.tools = TOOLS;
	ro.recall_tool = true;
	ro.stream = true;
	ro.pager = &po;
	for (size_t k = 0; k < sizeof(SCRIPT) / sizeof(*SCRIPT); k++) {
		cmv_model_handle *model;
		check(cmv_model_handle_open(&model, repo, SCRIPT[k][0]), "model");
		const char *api = cmv_api_name(cmv_model_handle_profile(model)->api);
		snprintf(url, sizeof(url), "%s%s", argv[2], strcmp(api, "anthropic") ? "/v1/chat/completions" : "/v1/messages");
		cJSON *msg = cJSON_CreateObject();
		cJSON_AddStringToObject(msg, "role", "user");
		cJSON_AddStringToObject(msg, "content", SCRIPT[k][1]);
		char *text = cJSON_PrintUnformatted(msg);
		check(cmv_append_json(NULL, repo, "agent", "anthropic", text, strlen(text)), "append");
		cJSON_free(text);
		cJSON_Delete(msg);
		check(cmv_switch(NULL, repo, "agent", model, NULL), "switch"); /* nothing when it runs on it already */
		for (int step = 0; step < 4; step++) {
			cmv_buf_clear(&body);
			check(cmv_request(&body, &rep, repo, "agent", model, &ro), "request");
			send(&sse, http, url, api, &body);
			check(cmv_reply_append(&reply, repo, "agent", api, sse.ptr, sse.size, model), "reply");
			if (!reply.n_tool_calls)
				break;
			cJSON *calls = cJSON_Parse(reply.tool_calls.ptr), *results = cJSON_CreateArray();
			for (cJSON *c = calls->child; c; c = c->next) {
				const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
				char *input = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "input"));
				int rc = 0;
				cmv_buf_clear(&out);
				if (!strcmp(name, "cmv_recall"))
					recalled += (rc = cmv_recall_tool_call(&out, repo, "agent", input, strlen(input))) == 0;
				else
					shell(&out, cJSON_GetObjectItem(cJSON_GetObjectItem(c, "input"), "cmd")->valuestring);
				check(rc, "recall");
				cJSON *r = cJSON_CreateObject();
				cJSON_AddStringToObject(r, "type", "tool_result");
				cJSON_AddStringToObject(r, "tool_use_id", cJSON_GetObjectItem(c, "id")->valuestring);
				cJSON_AddStringToObject(r, "content", out.ptr);
				cJSON_AddItemToArray(results, r);
				cJSON_free(input);
			}
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "role", "user");
			cJSON_AddItemToObject(m, "content", results);
			char *mt = cJSON_PrintUnformatted(m);
			check(cmv_append_json(NULL, repo, "agent", "anthropic", mt, strlen(mt)), "append results");
			cJSON_free(mt);
			cJSON_Delete(m);
			cJSON_Delete(calls);
		}
		printf("%-18s %-22s -> %s (%llu tokens, %zu stubbed)\n", SCRIPT[k][0], SCRIPT[k][1], reply.text.ptr,
		       (unsigned long long)rep.pages.tokens, rep.pages.stubbed);
		cmv_model_handle_free(model);
	}
	check(cmv_usage_json(&usage, repo, "agent"), "usage");
	printf("%s\nrecalled %d\n", usage.ptr, recalled);
	int ok = recalled >= 1 && strstr(usage.ptr, "openai/gpt-4o") && strstr(usage.ptr, "anthropic/claude-sonnet-4-5");
	cmv_request_report_dispose(&rep);
	cmv_reply_dispose(&reply);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&sse);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&usage);
	http->free(http);
	cmv_repo_free(repo);
	return ok ? 0 : 1;
}
