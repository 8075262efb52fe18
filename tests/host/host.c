/* SPDX-License-Identifier: MIT */
/* The agent-host loop (include/cmv/host.h): handles, switch, usage, requests, replies, streams, the JSON entry. */
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "test.h"

static void msg(cmv_repo *repo, const char *branch, const char *role, const char *text)
{
	char json[8192];
	snprintf(json, sizeof(json), "{\"role\":\"%s\",\"content\":\"%s\"}", role, text);
	assert_cmv_ok(cmv_append_json(NULL, repo, branch, "anthropic", json, strlen(json)));
}

static size_t count_events(cmv_repo *repo, const char *branch, const char *type)
{
	cmv_id tip;
	cmv_walk *w;
	const cmv_node *n;
	size_t k = 0;
	assert_cmv_ok(cmv_resolve(&tip, repo, branch));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	while (cmv_walk_next(&n, w) == 0)
		k += n->kind == CMV_KIND_EVENT && n->n_blocks && !strcmp(n->blocks[0].type, type);
	cmv_walk_free(w);
	return k;
}

static void test_handles(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *a, *b, *c, *d;
	assert_cmv_ok(cmv_model_handle_open(&a, ts->repo, "gpt-4o"));
	assert_cmv_ok(cmv_model_handle_open(&b, ts->repo, "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"base_url\":\"https://api.openai.com/v1/\"}"));
	assert_cmv_ok(cmv_model_handle_open(&c, ts->repo, "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"base_url\":\"http://127.0.0.1:8000/v1\"}"));
	/* one model, one signature: the key and its descriptor at the public endpoint; another endpoint apart */
	assert_string_equal(cmv_model_handle_signature(a), "openai/gpt-4o");
	assert_string_equal(cmv_model_handle_signature(b), "openai/gpt-4o");
	assert_string_equal(cmv_model_handle_signature(c), "openai/gpt-4o@http://127.0.0.1:8000/v1");
	assert_string_equal(cmv_tok_name(cmv_model_handle_tok(a)), "o200k_base");
	assert_true(cmv_model_handle_max_tokens(a) > 0);
	/* an unknown model needs a tokenizer and a window; with them it counts */
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_model_handle_open(&d, NULL, "{\"provider\":\"acme\",\"model\":\"zz-9\"}"));
	assert_cmv_ok(cmv_model_handle_open(&d, NULL, "{\"provider\":\"acme\",\"model\":\"zz-9\",\"base_url\":\"http://h/v1\","
						   "\"options\":{\"tokenizer\":\"cl100k_base\",\"context_window\":32768,\"max_tokens\":512}}"));
	assert_int_equal(cmv_model_handle_profile(d)->context_window, 32768);
	assert_int_equal(cmv_model_handle_max_tokens(d), 512);
	cmv_model_handle_free(d);
	/* never a secret */
	assert_cmv_fails_with(CMV_EINVALID, cmv_model_handle_open(&d, NULL, "{\"model\":\"gpt-4o\",\"api_key\":\"sk-x\"}"));
	cmv_model_handle_free(a);
	cmv_model_handle_free(b);
	cmv_model_handle_free(c);
}

/* The model's reply appended to the branch, billed prompt_tokens (a Chat Completions answer). */
static void bill(cmv_repo *repo, const char *branch, cmv_model_handle *h, uint64_t prompt_tokens)
{
	cmv_reply reply = { .version = CMV_REPLY_VERSION };
	char usage[512];

	snprintf(usage, sizeof(usage), "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"noted\"},"
		 "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":3}}",
		 (unsigned long long)prompt_tokens);
	assert_cmv_ok(cmv_reply_append(&reply, repo, branch, "openai-chat", usage, strlen(usage), h));
	cmv_reply_dispose(&reply);
}

static void test_switch_and_usage(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt, *claude, *gpt_desc;
	cmv_switch_report rep = { 0 };
	cmv_switch_options so;
	cmv_buf u = CMV_BUF_INIT(1 << 20);
	char big[6000];
	double cost = 0;

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	assert_cmv_ok(cmv_model_handle_open(&gpt_desc, ts->repo, "{\"provider\":\"openai\",\"model\":\"gpt-4o\"}"));
	assert_cmv_ok(cmv_model_handle_open(&claude, ts->repo, "claude-sonnet-4-5"));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 4; i++) {
		msg(ts->repo, "h", "user", "hello there");
		msg(ts->repo, "h", "assistant", big);
	}
	assert_cmv_ok(cmv_switch(&rep, ts->repo, "h", gpt, NULL));
	assert_true(rep.changed);
	assert_false(cmv_id_is_none(&rep.event));
	assert_int_equal(count_events(ts->repo, "h", "model_switch"), 1);
	/* the same model by its descriptor: the reference changes, no event, no segment */
	assert_cmv_ok(cmv_switch(&rep, ts->repo, "h", gpt_desc, NULL));
	assert_int_equal(count_events(ts->repo, "h", "model_switch"), 1);
	/* a switch that cannot fit records nothing */
	cmv_switch_options_init(&so);
	so.budget = 50;
	assert_cmv_fails_with(CMV_EBUDGET, cmv_switch(&rep, ts->repo, "h", claude, &so));
	assert_error_mentions("cannot switch h");
	assert_int_equal(count_events(ts->repo, "h", "model_switch"), 1);
	assert_cmv_ok(cmv_switch(&rep, ts->repo, "h", claude, NULL));
	assert_int_equal(count_events(ts->repo, "h", "model_switch"), 2);
	/* a call to gpt-4o while the branch runs on claude is booked to gpt-4o */
	cmv_usage one = { CMV_USAGE_VERSION, 1000000, 0, 0, 0 };
	assert_cmv_ok(cmv_usage_add(&cost, ts->repo, "h", gpt, &one));
	assert_true(cost > 0);
	cmv_usage two = { CMV_USAGE_VERSION, 1000, 100, 0, 0 };
	assert_cmv_ok(cmv_usage_add(NULL, ts->repo, "h", claude, &two));
	assert_cmv_ok(cmv_usage_json(&u, ts->repo, "h"));
	cJSON *j = cJSON_Parse(u.ptr);
	const cJSON *totals = cJSON_GetObjectItem(j, "totals");
	assert_int_equal(cJSON_GetArraySize(totals), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(totals, 0), "signature")->valuestring, "openai/gpt-4o");
	assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(totals, 0), "input_tokens")->valuedouble, 1000000);
	assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(totals, 0), "cost_usd")->valuedouble > 0);
	assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(totals, 1), "calls")->valuedouble, 1);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "cost_usd")));
	cJSON_Delete(j);
	/* restore, then switch: a branch made at a snapshot in the same step */
	cmv_id tip;
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "h"));
	assert_cmv_ok(cmv_snapshot_create(ts->repo, "s1", &tip, "h", NULL));
	cmv_switch_options_init(&so);
	so.from = "s1";
	assert_cmv_ok(cmv_switch(&rep, ts->repo, "h2", gpt, &so));
	assert_true(rep.created);
	cmv_buf llm = CMV_BUF_INIT(4096);
	assert_cmv_ok(cmv_branch_llm_get(&llm, ts->repo, "h2"));
	assert_string_equal(llm.ptr, "gpt-4o");
	assert_cmv_fails_with(CMV_EEXISTS, cmv_switch(&rep, ts->repo, "h2", gpt, &so));
	cmv_buf_dispose(&llm);
	cmv_buf_dispose(&u);
	cmv_model_handle_free(gpt);
	cmv_model_handle_free(gpt_desc);
	cmv_model_handle_free(claude);
}

static void test_request(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *claude, *gpt;
	cmv_request_report rep = { 0 };
	cmv_request_options ro;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"shell\",\"description\":\"run\","
			    "\"parameters\":{\"type\":\"object\",\"properties\":{\"cmd\":{\"type\":\"string\"}}}}}]";

	assert_cmv_ok(cmv_model_handle_open(&claude, ts->repo, "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	msg(ts->repo, "r", "user", "hi");
	cmv_request_options_init(&ro);
	ro.tools = tools;
	ro.recall_tool = true;
	ro.max_tokens = 1234;
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", claude, &ro));
	cJSON *j = cJSON_Parse(body.ptr);
	assert_non_null(j);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tools")), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0), "name")->valuestring, "shell");
	assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 1), "input_schema"));
	assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 1234);
	assert_true(rep.tools_tokens > 20);
	cJSON_Delete(j);
	/* the branch's tools, rendered for OpenAI; the report reused without leaking its pages */
	assert_cmv_ok(cmv_branch_tools_set(ts->repo, "r", tools));
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", gpt, NULL));
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", gpt, NULL));
	j = cJSON_Parse(body.ptr);
	const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(t0, "function"), "name")->valuestring, "shell");
	assert_non_null(cJSON_GetObjectItem(j, "max_completion_tokens"));
	assert_int_equal(rep.n_tools, 1);
	cJSON_Delete(j);
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_tools_set(ts->repo, "r", "[{\"description\":\"no name\"}]"));
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_model_handle_free(claude);
	cmv_model_handle_free(gpt);
}

/* Each format's reply, as a body and as a stream fed a few bytes at a time: the same node. */
static void reply_both(cmv_repo *repo, const char *format, const char *body, const char *sse, const char *want_text,
		       const char *want_tool, uint64_t want_in)
{
	cmv_reply a = { 0 }, b = { 0 };
	cmv_reply_stream *s;
	cmv_buf sb = CMV_BUF_INIT(1 << 20);
	char branch[64];

	snprintf(branch, sizeof(branch), "reply-%s", format);
	msg(repo, branch, "user", "go");
	assert_cmv_ok(cmv_reply_append(&a, repo, branch, format, body, strlen(body), NULL));
	assert_string_equal(a.text.ptr, want_text);
	assert_int_equal(a.n_tool_calls, want_tool ? 1 : 0);
	if (want_tool)
		assert_non_null(strstr(a.tool_calls.ptr, want_tool));
	assert_true(a.has_usage);
	assert_int_equal(a.usage.input_tokens, want_in);
	assert_cmv_ok(cmv_reply_stream_new(&s, format));
	for (size_t i = 0; i < strlen(sse); i += 7)
		assert_cmv_ok(cmv_reply_stream_feed(s, sse + i, strlen(sse) - i < 7 ? strlen(sse) - i : 7));
	assert_cmv_ok(cmv_reply_stream_body(&sb, s));
	cmv_reply_stream_free(s);
	snprintf(branch, sizeof(branch), "stream-%s", format);
	msg(repo, branch, "user", "go");
	assert_cmv_ok(cmv_reply_append(&b, repo, branch, format, sb.ptr, sb.size, NULL));
	assert_string_equal(b.text.ptr, want_text);
	assert_string_equal(b.tool_calls.ptr, a.tool_calls.ptr);
	/* the same reply: the same node */
	assert_true(cmv_id_equal(&a.head, &b.head));
	cmv_reply_dispose(&a);
	cmv_reply_dispose(&b);
	cmv_buf_dispose(&sb);
}

static void test_replies(void **state)
{
	test_store *ts = *state;
	reply_both(ts->repo, "anthropic",
		   "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hi there\"},"
		   "{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"ls\",\"input\":{\"p\":\"/\"}}],\"stop_reason\":\"tool_use\","
		   "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"cache_read_input_tokens\":3}}",
		   "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"type\":\"message\",\"role\":\"assistant\","
		   "\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1,\"cache_read_input_tokens\":3}}}\n\n"
		   "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\r\n\r\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n"
		   "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"ls\",\"input\":{}}}\n\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"p\\\":\"}}\n\n"
		   "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"/\\\"}\"}}\n\n"
		   "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
		   "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n",
		   "Hi there", "\"name\":\"ls\",\"input\":{\"p\":\"/\"}", 10);
	reply_both(ts->repo, "openai-chat",
		   "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\",\"tool_calls\":[{\"id\":\"c1\","
		   "\"type\":\"function\",\"function\":{\"name\":\"ls\",\"arguments\":\"{\\\"p\\\":\\\"/\\\"}\"}}]},"
		   "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,"
		   "\"prompt_tokens_details\":{\"cached_tokens\":2}}}",
		   "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hi \"}}]}\n\n"
		   "data: {\"choices\":[{\"delta\":{\"content\":\"there\"}}]}\n\n"
		   "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"ls\",\"arguments\":\"{\\\"p\\\"\"}}]}}]}\n\n"
		   "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":\\\"/\\\"}\"}}]}}]}\n\n"
		   "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		   "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n"
		   "data: [DONE]\n\n",
		   "Hi there", "\"name\":\"ls\",\"input\":{\"p\":\"/\"}", 10);
	reply_both(ts->repo, "openai-responses",
		   "{\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
		   "\"output_text\",\"text\":\"Hi there\"}]},{\"type\":\"function_call\",\"call_id\":\"f1\",\"name\":\"ls\","
		   "\"arguments\":\"{}\"}],\"usage\":{\"input_tokens\":9,\"output_tokens\":4}}",
		   "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
		   "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"output\":[{\"type\":\"message\","
		   "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi there\"}]},{\"type\":"
		   "\"function_call\",\"call_id\":\"f1\",\"name\":\"ls\",\"arguments\":\"{}\"}],\"usage\":{\"input_tokens\":9,"
		   "\"output_tokens\":4}}}\n\n",
		   "Hi there", "\"id\":\"f1\"", 9);
	reply_both(ts->repo, "gemini",
		   "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi there\"},{\"functionCall\":"
		   "{\"name\":\"ls\",\"args\":{\"p\":\"/\"}}}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":"
		   "{\"promptTokenCount\":8,\"candidatesTokenCount\":3}}",
		   "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi \"}]}}]}\n\n"
		   "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"there\"},{\"functionCall\":"
		   "{\"name\":\"ls\",\"args\":{\"p\":\"/\"}}}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":"
		   "{\"promptTokenCount\":8,\"candidatesTokenCount\":3}}\n\n",
		   "Hi there", "\"id\":\"call_ls_1\"", 8);
	/* an error response is refused, naming the provider's message */
	cmv_reply r = { 0 };
	const char *err = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
	assert_cmv_fails_with(CMV_EINVALID, cmv_reply_append(&r, ts->repo, "x", "anthropic", err, strlen(err), NULL));
	assert_error_mentions("Overloaded");
}

/* Gemini's calls carry no id: two calls of one tool in a message get two, which its responses answer in order. */
static void test_gemini_positional_ids(void **state)
{
	test_store *ts = *state;
	cmv_reply r = { 0 };
	cmv_buf out = CMV_BUF_INIT(1 << 20);
	cmv_id tip;
	const char *body = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"ls\",\"args\":"
			   "{\"p\":\"/a\"}}},{\"functionCall\":{\"name\":\"cat\",\"args\":{}}},{\"functionCall\":{\"name\":\"ls\","
			   "\"args\":{\"p\":\"/b\"}}},{\"functionCall\":{\"name\":\"ls_2\",\"args\":{}}},{\"functionCall\":"
			   "{\"name\":\"my.tool\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}";
	const char *answers = "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"ls\",\"response\":{\"r\":\"in a\"}}},"
			      "{\"functionResponse\":{\"name\":\"cat\",\"response\":{\"r\":\"meow\"}}},{\"functionResponse\":"
			      "{\"name\":\"ls\",\"response\":{\"r\":\"in b\"}}},{\"functionResponse\":{\"name\":\"ls_2\",\"response\":"
			      "{}}},{\"functionResponse\":{\"name\":\"my.tool\",\"response\":{}}}]}";
	msg(ts->repo, "g", "user", "look around");
	assert_cmv_ok(cmv_reply_append(&r, ts->repo, "g", "gemini", body, strlen(body), NULL));
	assert_int_equal(r.n_tool_calls, 5);
	cJSON *calls = cJSON_Parse(r.tool_calls.ptr);
	const char *want[][2] = { { "call_ls_1", "/a" }, { "call_cat_1", NULL }, { "call_ls_2", "/b" }, { "call_ls_2_1", NULL },
				  { "call_my_tool_1", NULL } };
	for (int i = 0; i < 5; i++) {
		const cJSON *c = cJSON_GetArrayItem(calls, i);
		assert_string_equal(cJSON_GetObjectItem(c, "id")->valuestring, want[i][0]);
		if (want[i][1])
			assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "input"), "p")->valuestring, want[i][1]);
	}
	cJSON_Delete(calls);
	/* the responses, in Gemini's shape: the k-th of a name answers the k-th call of it */
	assert_cmv_ok(cmv_append_json(&tip, ts->repo, "g", "gemini", answers, strlen(answers)));
	assert_cmv_ok(cmv_render(&out, NULL, ts->repo, &tip, CMV_RENDER_OPENAI_CHAT, NULL));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_OPENAI_CHAT, out.ptr, out.size), 0);
	cJSON *req = cJSON_Parse(out.ptr);
	size_t tools = 0;
	for (const cJSON *m = cJSON_GetObjectItem(req, "messages")->child; m; m = m->next) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(m, "tool_call_id"));
		const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(m, "content"));
		if (!id)
			continue;
		tools++;
		if (!strcmp(id, "call_ls_1"))
			assert_non_null(strstr(content, "in a"));
		else if (!strcmp(id, "call_ls_2"))
			assert_non_null(strstr(content, "in b"));
		else if (!strcmp(id, "call_cat_1"))
			assert_non_null(strstr(content, "meow"));
	}
	assert_int_equal(tools, 5);
	cJSON_Delete(req);
	/* and for Anthropic, whose ids take letters, digits, '_' and '-' only */
	assert_cmv_ok(cmv_render(&out, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, NULL));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, out.ptr, out.size), 0);
	assert_null(strstr(out.ptr, "call_my.tool"));
	cmv_reply_dispose(&r);
	cmv_buf_dispose(&out);
}

/* Text of `n` words that no other turn has. */
static void turn_words(cmv_buf *out, int turn, int n, const char *extra)
{
	cmv_buf_clear(out);
	for (int i = 0; i < n; i++)
		cmv_buf_printf(out, "t%dw%d ", turn, i * 7 % 101);
	if (extra)
		cmv_buf_puts(out, extra);
}

/* A stub for several runs of evicted turns: one call of the recall tool brings back every run's messages. */
static void test_multi_run_stub_one_recall(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt;
	cmv_request_report rep = { 0 };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), t = CMV_BUF_INIT(1 << 20), ans = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char input[64];

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	for (int k = 0; k < 30; k++) {
		turn_words(&t, k, 30, k == 12 ? " the zebra password is hidden in the attic" : NULL);
		msg(ts->repo, "m", "user", t.ptr);
		turn_words(&t, k + 1000, 30, NULL);
		msg(ts->repo, "m", "assistant", t.ptr);
	}
	/* the query keeps turn 12: the turns before and after it leave in two runs, under one stub */
	po.budget = 2500;
	po.query = "zebra attic";
	cmv_request_options_init(&ro);
	ro.recall_tool = true;
	ro.pager = &po;
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "m", gpt, &ro));
	assert_non_null(strstr(body.ptr, "zebra password"));
	const char *stub = strstr(body.ptr, " turns paged out, in ");
	assert_non_null(stub);
	int runs = atoi(stub + strlen(" turns paged out, in "));
	assert_true(runs >= 2);
	const char *rid = strstr(stub, "runs; recall ");
	assert_non_null(rid);
	char id7[8];
	snprintf(id7, sizeof(id7), "%.7s", rid + strlen("runs; recall "));
	snprintf(input, sizeof(input), "{\"id\":\"%s\"}", id7);
	/* one call: the runs' messages, each under its turns, not an index to recall again */
	assert_int_equal(cmv_recall_tool_call(&ans, ts->repo, "m", input, strlen(input)), 0);
	cJSON *a = cJSON_Parse(ans.ptr);
	assert_true(cJSON_IsArray(a));
	assert_int_equal(cJSON_GetArraySize(a), runs);
	int prev_last = -1;
	for (const cJSON *r = a->child; r; r = r->next) {
		const cJSON *turns = cJSON_GetObjectItem(r, "turns"), *msgs = cJSON_GetObjectItem(r, "messages");
		int first = cJSON_GetArrayItem(turns, 0)->valueint, last = cJSON_GetArrayItem(turns, 1)->valueint;
		assert_true(first > prev_last && last >= first);
		assert_true(first > 12 || last < 12); /* the kept turn is in no run */
		assert_int_equal(cJSON_GetArraySize(msgs), 2 * (last - first + 1));
		prev_last = last;
	}
	cJSON_Delete(a);
	assert_non_null(strstr(ans.ptr, "t0w7 ")); /* the first turn's words, verbatim */
	assert_non_null(strstr(ans.ptr, "t13w7 ")); /* and the first after the kept one */
	/* the MCP server's recall gives the same (cmv_recall_runs); cmv_recall, the store's bytes, the index */
	cmv_buf same = CMV_BUF_INIT(CMV_BUF_CONTENT);
	assert_cmv_ok(cmv_recall_runs(&same, ts->repo, id7));
	assert_string_equal(same.ptr, ans.ptr);
	assert_cmv_ok(cmv_recall(&same, ts->repo, id7));
	assert_memory_equal(same.ptr, "{\"paged_out\":[", 14);
	cmv_buf_dispose(&same);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_buf_dispose(&ans);
	cmv_model_handle_free(gpt);
}

/* stub_pinned: a result too large for the budget inside the turn being answered costs its stub, not CMV_EBUDGET. */
static void test_stub_pinned(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt;
	cmv_request_report rep = { 0 };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), t = CMV_BUF_INIT(1 << 20), big = CMV_BUF_INIT(1 << 20),
		back = CMV_BUF_INIT(1 << 21);

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	for (int k = 0; k < 4; k++) {
		turn_words(&t, k, 60, NULL);
		msg(ts->repo, "p", "user", t.ptr);
		msg(ts->repo, "p", "assistant", "ok");
	}
	msg(ts->repo, "p", "user", "list everything");
	const char *call = "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"shell\","
			   "\"input\":{\"cmd\":\"find /\"}}]}";
	assert_cmv_ok(cmv_append_json(NULL, ts->repo, "p", "anthropic", call, strlen(call)));
	turn_words(&big, 77, 9000, "the end of the listing");
	cJSON *res = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(res, "content"), *b = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "role", "user");
	cJSON_AddStringToObject(b, "type", "tool_result");
	cJSON_AddStringToObject(b, "tool_use_id", "t1");
	cJSON_AddStringToObject(b, "content", big.ptr);
	cJSON_AddItemToArray(content, b);
	char *text = cJSON_PrintUnformatted(res);
	assert_cmv_ok(cmv_append_json(NULL, ts->repo, "p", "anthropic", text, strlen(text)));
	cJSON_free(text);
	cJSON_Delete(res);
	po.budget = 4000;
	cmv_request_options_init(&ro);
	ro.pager = &po;
	/* the result is in the last turns, which are pinned: without the option it cannot fit, and says what is pinned */
	assert_cmv_fails_with(CMV_EBUDGET, cmv_request(&body, &rep, ts->repo, "p", gpt, &ro));
	assert_error_mentions("pinned");
	po.stub_pinned = true;
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "p", gpt, &ro));
	assert_true(rep.pages.fits && rep.pages.tokens <= rep.pages.budget);
	assert_true(rep.pages.stubbed >= 1);
	assert_null(strstr(body.ptr, "the end of the listing"));
	/* the turn stays (its question, the call, the result's stub), and the stub recalls the result whole */
	assert_non_null(strstr(body.ptr, "list everything"));
	assert_non_null(strstr(body.ptr, "find /"));
	const cmv_page *page = NULL;
	for (size_t i = 0; i < rep.pages.n_pages; i++)
		if (rep.pages.pages[i].kind == CMV_PAGE_BODY && rep.pages.pages[i].state == CMV_PAGE_STUBBED &&
		    rep.pages.pages[i].tokens > 5000)
			page = &rep.pages.pages[i];
	assert_non_null(page);
	char shown[8];
	snprintf(shown, sizeof(shown), "%.7s", page->id);
	assert_non_null(strstr(body.ptr, shown)); /* the stub names it */
	assert_cmv_ok(cmv_recall(&back, ts->repo, page->id));
	assert_non_null(strstr(back.ptr, "the end of the listing"));
	assert_true(back.size >= big.size);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_buf_dispose(&big);
	cmv_buf_dispose(&back);
	cmv_model_handle_free(gpt);
}

/*
 * The host's request path anchored on the last reply's bill (docs/tokenizers.md,
 * "Anchored live"): a provider that bills 1.3 times cmv's count of the first
 * request makes the next one, which holds it, predicted at that bill plus the
 * count of what came since; a budget between that and the plain count makes
 * pages leave; other tools, and the request is counted plainly again.
 */
static void test_request_anchored(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt;
	cmv_request_report rep = { .version = CMV_REQUEST_REPORT_VERSION };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), t = CMV_BUF_INIT(1 << 20);
	char why[CMV_PAGER_WHY_MAX];
	const char *tools = "[{\"name\":\"shell\",\"description\":\"run\",\"input_schema\":{\"type\":\"object\"}}]";

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	const cmv_model *m = cmv_model_handle_profile(gpt);
	for (int k = 0; k < 6; k++) {
		turn_words(&t, k, 200, NULL);
		msg(ts->repo, "a", "user", t.ptr);
		msg(ts->repo, "a", "assistant", "ok");
	}
	msg(ts->repo, "a", "user", "go on");
	cmv_request_options_init(&ro);
	ro.tools = tools;
	ro.pager = &po;
	po.live_why = why;
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	assert_false(rep.pages.anchored);
	assert_non_null(strstr(why, "no reply billed yet"));
	uint64_t plain1 = rep.pages.tokens, extra = rep.tools_tokens, billed = (plain1 + extra) * 13 / 10;
	assert_true(extra > 0 && rep.pages.stubbed + rep.pages.evicted == 0);
	bill(ts->repo, "a", gpt, billed);
	msg(ts->repo, "a", "user", "and then?");

	/* the next request holds the billed one: its bill, plus the count of what came since */
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	assert_true(rep.pages.anchored);
	assert_string_equal(why, "");
	assert_int_equal(rep.pages.correction, (int64_t)(billed - extra - plain1));
	uint64_t anchored = rep.pages.tokens, plain2 = (uint64_t)((int64_t)anchored - rep.pages.correction);
	assert_true(plain2 > plain1 && anchored > plain2);

	/* a budget the plain count fits and the bill's prediction does not: pages leave, counted plainly */
	uint64_t held = (uint64_t)ceil((double)extra * (1 + m->margin));
	po.budget = (uint64_t)ceil((double)((plain2 + anchored) / 2) * (1 + m->margin)) + m->margin_tokens + held + 1;
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	assert_true(rep.pages.budget > plain2 && rep.pages.budget < anchored);
	assert_false(rep.pages.anchored);
	assert_true(rep.pages.stubbed + rep.pages.evicted >= 1 && rep.pages.tokens <= rep.pages.budget);
	assert_non_null(strstr(why, "over the budget as billed"));

	/* other tools than the bill's: the request no longer holds it, the plain count holds */
	po.budget = 0;
	ro.tools = "[]";
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	assert_false(rep.pages.anchored);
	assert_non_null(strstr(why, "tools differ"));

	/*
	 * A bill far below the count (a third of it): the correction down is
	 * bounded, the request predicted at no less than 95% of its own count
	 * (gpt-4o's tokenizer is exact).
	 */
	ro.tools = tools;
	msg(ts->repo, "a", "user", "once more");
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	plain1 = rep.pages.anchored ? (uint64_t)((int64_t)rep.pages.tokens - rep.pages.correction) : rep.pages.tokens;
	billed = (plain1 + extra) / 3;
	bill(ts->repo, "a", gpt, billed);
	msg(ts->repo, "a", "user", "and after that?");
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "a", gpt, &ro));
	assert_true(rep.pages.anchored);
	plain2 = (uint64_t)((int64_t)rep.pages.tokens - rep.pages.correction);
	assert_true(rep.pages.correction < 0 && rep.pages.correction > (int64_t)billed - (int64_t)extra - (int64_t)plain1);
	assert_true(m->exact);
	assert_int_equal(rep.pages.tokens, plain2 - (uint64_t)floor((double)plain2 * 0.05));
	assert_int_equal(rep.pages.tokens, cmv_count_anchored(m, plain2, -(int64_t)plain2));
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_model_handle_free(gpt);
}

/*
 * The rate (docs/tokenizers.md, "Anchored live"): a provider that bills 1.5
 * times cmv's count of every request, and a host that changes its tools now
 * and then, so that the request after each change holds no bill and is
 * counted plainly. Every request, billed, keeps the budget: the plain ones
 * too, scaled by the last bill's rate (without it, a plain count that fits
 * the budget with the model's margin is billed half as much again over it).
 * A model handle opened again (a restarted host) reads the rate from the
 * branch's note.
 */
static void test_request_rate(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt;
	cmv_request_report rep = { .version = CMV_REQUEST_REPORT_VERSION };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), t = CMV_BUF_INIT(1 << 20);
	cmv_token_stats st;
	char why[CMV_PAGER_WHY_MAX];
	const char *tools[2] = {
		"[{\"name\":\"shell\",\"description\":\"run a command\",\"input_schema\":{\"type\":\"object\"}}]",
		"[{\"name\":\"shell\",\"description\":\"run a command in the shell\",\"input_schema\":{\"type\":\"object\"}}]",
	};
	const uint64_t budget = 3000;
	size_t n_plain = 0, n_scaled = 0, n_anchored = 0, n_paged = 0;
	uint64_t worst = 0;

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	cmv_request_options_init(&ro);
	ro.pager = &po;
	po.live_why = why;
	po.budget = budget;
	for (int k = 0; k < 24; k++) {
		turn_words(&t, k, 90, NULL);
		msg(ts->repo, "r", "user", t.ptr);
		if (k == 12) {
			/* a restarted host: nothing in memory, the branch's note carries the rate */
			cmv_model_handle_free(gpt);
			assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
		}
		ro.tools = tools[k / 3 % 2]; /* other tools every third request: that one holds no bill */
		assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", gpt, &ro));
		const cmv_model *m = cmv_model_handle_profile(gpt);
		/* the provider: 1.5 times what cmv counts of the request as sent, its messages and its tools */
		assert_cmv_ok(cmv_count_request(&st, m, cmv_model_handle_tok(gpt), body.ptr, body.size));
		uint64_t billed = (st.total + rep.tools_tokens) * 3 / 2;
		if (billed > worst)
			worst = billed;
		if (billed > budget)
			fail_msg("request %d billed %llu of a budget of %llu (%s; %llu counted, correction %lld, %zu out)", k,
				 (unsigned long long)billed, (unsigned long long)budget,
				 rep.pages.anchored ? "anchored" : why, (unsigned long long)st.total,
				 (long long)rep.pages.correction, rep.pages.stubbed + rep.pages.evicted);
		n_anchored += rep.pages.anchored;
		n_paged += rep.pages.stubbed + rep.pages.evicted > 0;
		if (!rep.pages.anchored) {
			n_plain++;
			/* scaled: the prediction is the plain count and the tools at the rate (within a token of 1.5) */
			if (k > 0 && strstr(why, "scaled x1.5")) {
				uint64_t plain = (uint64_t)((int64_t)rep.pages.tokens - rep.pages.correction);
				assert_true(rep.pages.correction > 0 && rep.pages.tokens <= rep.pages.budget);
				assert_true(rep.pages.tokens + 2 >= plain + (plain + rep.tools_tokens) / 2);
				n_scaled++;
			}
		}
		bill(ts->repo, "r", gpt, billed);
	}
	/* the case is the one it means: plain requests after a bill (each scaled), pages out, anchored ones between */
	assert_int_equal(n_scaled, n_plain - 1);
	assert_true(n_scaled >= 6 && n_anchored >= 8 && n_paged >= 6);
	assert_true(worst > budget * 8 / 10);
	print_message("rate: %zu requests plain (%zu scaled), %zu anchored, %zu paged; the largest bill %llu of %llu\n",
		      n_plain, n_scaled, n_anchored, n_paged, (unsigned long long)worst, (unsigned long long)budget);

	/* another model on the branch: no bill of its own, so no rate (gpt-4o's is not its) */
	cmv_model_handle *mini;
	assert_cmv_ok(cmv_model_handle_open(&mini, ts->repo, "gpt-4o-mini"));
	msg(ts->repo, "r", "user", "and with the small model?");
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", mini, &ro));
	assert_false(rep.pages.anchored);
	assert_non_null(strstr(why, "no reply billed yet"));
	assert_null(strstr(why, "scaled"));
	assert_int_equal(rep.pages.correction, 0);
	cmv_model_handle_free(mini);

	/*
	 * One bill five times its count (an outlier, or a bill for what the host
	 * did not count): the next plain request is scaled by the bound, 2, not 5.
	 */
	ro.tools = tools[0];
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", gpt, &ro));
	bill(ts->repo, "r", gpt, (rep.pages.tokens - (uint64_t)rep.pages.correction + rep.tools_tokens) * 5);
	msg(ts->repo, "r", "user", "after the odd bill?");
	ro.tools = tools[1];
	po.budget = 0; /* the model's: room for twice the count */
	assert_cmv_ok(cmv_request(&body, &rep, ts->repo, "r", gpt, &ro));
	assert_false(rep.pages.anchored);
	assert_non_null(strstr(why, "scaled x2.000"));
	uint64_t plain = (uint64_t)((int64_t)rep.pages.tokens - rep.pages.correction);
	assert_true(rep.pages.tokens >= 2 * plain && rep.pages.tokens < 3 * plain);

	/*
	 * A budget the pinned turns fit as counted but not at the rate: refused
	 * (the budget is a cap, and the provider bills at its rate), with both
	 * figures in the message; every budget above it is kept, scaled.
	 */
	turn_words(&t, 99, 600, NULL);
	msg(ts->repo, "r", "user", t.ptr);
	bool refused = false;
	for (uint64_t b = 8000; b > 300 && !refused; b -= 50) {
		po.budget = b;
		if (cmv_request(&body, &rep, ts->repo, "r", gpt, &ro) < 0) {
			refused = true;
			assert_int_equal(cmv_error_last()->code, CMV_EBUDGET);
			const char *e = cmv_error_last()->message;
			assert_non_null(strstr(e, "as billed at the last bill's rate (counted, "));
			/* the count it names fits the budget: only the rate keeps it out */
			const char *c = strstr(e, "(counted, ") + strlen("(counted, "), *bu = strstr(e, "budget of ");
			assert_non_null(bu);
			assert_true(strtoull(c, NULL, 10) <= strtoull(bu + strlen("budget of "), NULL, 10));
			cmv_error_clear();
		} else {
			assert_true(rep.pages.tokens <= rep.pages.budget);
			assert_non_null(strstr(why, "scaled"));
		}
	}
	assert_true(refused);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_model_handle_free(gpt);
}

/*
 * Tools that shrink between requests (Claude Code's through the proxy: 9,089
 * tokens whole, 858 stubbed): the request after the change holds no bill
 * (its tools differ), so it is counted plainly and scaled by the rate, and
 * the part beside its messages scaled is its own tools' count, not the
 * larger of the last requests' (before pager options version 4, ~8k tokens
 * not sent were scaled too). A caller of version 3 gets the same: the host
 * knows its tools' count and passes it.
 */
static void test_request_rate_beside(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt;
	cmv_request_report rep = { .version = CMV_REQUEST_REPORT_VERSION };
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), t = CMV_BUF_INIT(1 << 20), big = CMV_BUF_INIT(1 << 20);
	cmv_token_stats st;
	char why[CMV_PAGER_WHY_MAX];
	const char *small = "[{\"name\":\"shell\",\"description\":\"run a command\",\"input_schema\":{\"type\":\"object\"}}]";

	assert_cmv_ok(cmv_buf_puts(&big, "[{\"name\":\"shell\",\"description\":\""));
	for (int i = 0; i < 400; i++)
		assert_cmv_ok(cmv_buf_printf(&big, "runs command %d in the shell, ", i));
	assert_cmv_ok(cmv_buf_puts(&big, "\",\"input_schema\":{\"type\":\"object\"}}]"));
	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	cmv_request_options_init(&ro);
	ro.pager = &po;
	po.live_why = why;
	/* the tools stubbed (versions 4 and 3), and gone (nothing beside: 0, not "not given") */
	static const struct {
		unsigned int version;
		bool none;
	} cases[] = { { 4, false }, { 3, false }, { 4, true } };
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		unsigned int version = cases[c].version;
		char branch[8];
		uint64_t big_n = 0;
		snprintf(branch, sizeof(branch), "b%zu", c);
		po.version = version;
		for (int k = 0; k < 3; k++) {
			turn_words(&t, k, 200, NULL);
			msg(ts->repo, branch, "user", t.ptr);
			/* the tools whole for two requests (the second anchored on the first's bill), then stubbed or gone */
			ro.tools = k < 2 ? big.ptr : cases[c].none ? "[]" : small;
			assert_cmv_ok(cmv_request(&body, &rep, ts->repo, branch, gpt, &ro));
			if (k == 0)
				big_n = rep.tools_tokens;
			if (k == 2) {
				/* the plain count and this request's tools at the rate, 1.5 (within a token or two) */
				assert_false(rep.pages.anchored);
				assert_non_null(strstr(why, "scaled x1.5"));
				uint64_t plain = (uint64_t)((int64_t)rep.pages.tokens - rep.pages.correction);
				uint64_t want = plain + (plain + rep.tools_tokens) / 2;
				assert_true(big_n > rep.tools_tokens + 1000);
				if (rep.pages.tokens > want + 2 || rep.pages.tokens + 2 < want)
					fail_msg("options version %u: predicted %llu, not %llu (the tools %llu tokens now, %llu before)",
						 version, (unsigned long long)rep.pages.tokens, (unsigned long long)want,
						 (unsigned long long)rep.tools_tokens, (unsigned long long)big_n);
				break;
			}
			/* the provider: 1.5 times what cmv counts of the request as sent, its messages and its tools */
			const cmv_model *m = cmv_model_handle_profile(gpt);
			assert_cmv_ok(cmv_count_request(&st, m, cmv_model_handle_tok(gpt), body.ptr, body.size));
			bill(ts->repo, branch, gpt, (st.total + rep.tools_tokens) * 3 / 2);
		}
	}
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&t);
	cmv_buf_dispose(&big);
	cmv_model_handle_free(gpt);
}

/* For bindings: every options struct has its init function, giving the macro's defaults; reports carry their version. */
/*
 * Reports of an older layout (a program built before the report grew) get
 * nothing written past their end: a version-1 cmv_materialize_report ends
 * before `anchored`, and so does the pages report of a version-1
 * cmv_request_report. Each lies at the end of a buffer filled with a
 * guard byte; a version-1 pager options struct is read only as far as it goes.
 */
static void test_old_report_layouts(void **state)
{
	test_store *ts = *state;
	const size_t v1 = offsetof(cmv_materialize_report, anchored), rv1 = offsetof(cmv_request_report, pages) + v1;
	union {
		cmv_request_report aligned;
		unsigned char b[sizeof(cmv_request_report) + 64];
	} u;
	unsigned char *buf = u.b;
	cmv_model_handle *gpt;
	cmv_buf out = CMV_BUF_INIT(1 << 20);
	cmv_id tip;

	assert_true(v1 < sizeof(cmv_materialize_report));
	assert_true(CMV_MATERIALIZE_REPORT_VERSION >= 2 && CMV_REQUEST_REPORT_VERSION >= 2);
	msg(ts->repo, "old", "user", "hello");
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "old"));
	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	for (unsigned int version = 0; version <= 1; version++) {
		/* cmv_materialize, twice (a report passed again is disposed of and zeroed first) */
		for (int again = 0; again < 2; again++) {
			cmv_materialize_report *r;
			if (!again) {
				memset(buf, 0xa5, sizeof(u.b));
				memset(buf, 0, v1);
			}
			r = (cmv_materialize_report *)(void *)buf;
			if (!again)
				r->version = version;
			assert_cmv_ok(cmv_materialize_for(&out, r, ts->repo, &tip, gpt, NULL));
			assert_int_equal(r->version, 1);
			assert_true(r->tokens > 0 && r->fits && r->n_pages >= 1 && r->margin > 0);
			for (size_t k = v1; k < sizeof(u.b); k++)
				if (buf[k] != 0xa5)
					fail_msg("version %u: byte %zu written past the old report (%zu bytes)", version, k, v1);
		}
		cmv_materialize_report_dispose((cmv_materialize_report *)(void *)buf);
		/* cmv_request: its pages report is the old one, and a version-1 pager options struct ends before anchor */
		memset(buf, 0xa5, sizeof(u.b));
		memset(buf, 0, rv1);
		cmv_request_report *rr = (cmv_request_report *)(void *)buf;
		rr->version = version;
		cmv_pager_options opts;
		memset(&opts, 0xa5, sizeof(opts)); /* a nonsense anchor where a version-1 caller's struct ends */
		cmv_pager_options *po = &opts;
		cmv_pager_options d = CMV_PAGER_OPTIONS_INIT;
		memcpy(po, &d, offsetof(cmv_pager_options, anchor));
		po->version = 1;
		cmv_request_options ro;
		cmv_request_options_init(&ro);
		ro.pager = po;
		for (int again = 0; again < 2; again++) {
			assert_cmv_ok(cmv_request(&out, rr, ts->repo, "old", gpt, &ro));
			assert_int_equal(rr->version, 1);
			assert_int_equal(rr->pages.version, 1);
			assert_true(rr->pages.tokens > 0 && rr->pages.fits);
			for (size_t k = rv1; k < sizeof(u.b); k++)
				if (buf[k] != 0xa5)
					fail_msg("version %u: byte %zu written past the old request report (%zu bytes)", version, k, rv1);
		}
		cmv_request_report_dispose(rr);
	}
	/* the current layout gets the anchor's fields (the guard there overwritten) */
	cmv_request_report cur = { .version = CMV_REQUEST_REPORT_VERSION };
	cur.pages.correction = -1;
	assert_cmv_ok(cmv_request(&out, &cur, ts->repo, "old", gpt, NULL));
	assert_int_equal(cur.version, CMV_REQUEST_REPORT_VERSION);
	assert_int_equal(cur.pages.version, CMV_MATERIALIZE_REPORT_VERSION);
	assert_false(cur.pages.anchored);
	assert_int_equal(cur.pages.correction, 0);
	cmv_request_report_dispose(&cur);
	cmv_model_handle_free(gpt);
	cmv_buf_dispose(&out);
}

static void test_options_init_and_report_versions(void **state)
{
	test_store *ts = *state;
	cmv_trim_options trim;
	cmv_handoff_options handoff;
	cmv_compact_options compact;
	cmv_snapshot_options snap;
	cmv_bundle_import_options bundle;
	cmv_import_options import;
	cmv_render_options render;
	cmv_llm_options llm;
	cmv_pager_options pager;
	memset(&trim, 0xa5, sizeof(trim));
	memset(&handoff, 0xa5, sizeof(handoff));
	memset(&compact, 0xa5, sizeof(compact));
	memset(&snap, 0xa5, sizeof(snap));
	memset(&bundle, 0xa5, sizeof(bundle));
	memset(&import, 0xa5, sizeof(import));
	memset(&render, 0xa5, sizeof(render));
	memset(&llm, 0xa5, sizeof(llm));
	memset(&pager, 0xa5, sizeof(pager));
	cmv_trim_options_init(&trim);
	cmv_handoff_options_init(&handoff);
	cmv_compact_options_init(&compact);
	cmv_snapshot_options_init(&snap);
	cmv_bundle_import_options_init(&bundle);
	cmv_import_options_init(&import);
	cmv_render_options_init(&render);
	cmv_llm_options_init(&llm);
	cmv_pager_options_init(&pager);
	assert_int_equal(trim.version, CMV_TRIM_OPTIONS_VERSION);
	assert_int_equal(handoff.version, CMV_HANDOFF_OPTIONS_VERSION);
	assert_int_equal(compact.version, CMV_COMPACT_OPTIONS_VERSION);
	assert_int_equal(snap.version, CMV_SNAPSHOT_OPTIONS_VERSION);
	assert_int_equal(bundle.version, CMV_BUNDLE_IMPORT_OPTIONS_VERSION);
	assert_int_equal(import.version, CMV_IMPORT_OPTIONS_VERSION);
	assert_int_equal(render.version, CMV_RENDER_OPTIONS_VERSION);
	assert_int_equal(llm.version, CMV_LLM_OPTIONS_VERSION);
	assert_int_equal(pager.version, CMV_PAGER_OPTIONS_VERSION);
	/* the macro's zeros, not the 0xa5 that was there */
	assert_null(trim.branch);
	assert_null(compact.target);
	assert_null(snap.description);
	assert_null(llm.base_url);
	assert_int_equal(pager.budget, 0);
	assert_null(pager.pins);
	assert_false(pager.stub_pinned);
	assert_true(pager.live_beside == CMV_PAGER_BESIDE_UNKNOWN);
	/* the macros still compile and agree */
	cmv_snapshot_options m = CMV_SNAPSHOT_OPTIONS_INIT;
	assert_int_equal(m.version, snap.version);
	/* and a snapshot made with the function's options is made */
	cmv_id tip;
	msg(ts->repo, "v", "user", "hello");
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "v"));
	assert_cmv_ok(cmv_snapshot_create(ts->repo, "vs", &tip, "v", &snap));

	/* reports: the version of the layout the call wrote */
	cmv_store_stats ss;
	cmv_gc_stats gs;
	cmv_render_stats rs;
	cmv_token_stats ts2;
	cmv_buf out = CMV_BUF_INIT(1 << 20);
	memset(&ss, 0, sizeof(ss));
	memset(&gs, 0, sizeof(gs));
	memset(&rs, 0, sizeof(rs));
	memset(&ts2, 0, sizeof(ts2));
	assert_cmv_ok(cmv_repo_stats(&ss, ts->repo));
	assert_int_equal(ss.version, CMV_STORE_STATS_VERSION);
	assert_true(ss.n_nodes >= 1);
	assert_cmv_ok(cmv_gc(&gs, ts->repo, CMV_GC_DRY_RUN));
	assert_int_equal(gs.version, CMV_GC_STATS_VERSION);
	assert_cmv_ok(cmv_render(&out, &rs, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &render));
	assert_int_equal(rs.version, CMV_RENDER_STATS_VERSION);
	assert_int_equal(rs.messages, 1);
	cmv_model_handle *gpt;
	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	assert_cmv_ok(cmv_count_conversation(&ts2, ts->repo, &tip, cmv_model_handle_profile(gpt), cmv_model_handle_tok(gpt)));
	assert_int_equal(ts2.version, CMV_TOKEN_STATS_VERSION);
	assert_true(ts2.total > 0);
	cmv_model_handle_free(gpt);
	cmv_buf_dispose(&out);
}

static void test_append_formats(void **state)
{
	test_store *ts = *state;
	cmv_buf out = CMV_BUF_INIT(1 << 20);
	cmv_id tip;
	const char *chat = "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"list\"},"
			   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
			   "\"function\":{\"name\":\"ls\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
			   "\"content\":\"a b\"}]";
	assert_cmv_ok(cmv_append_json(&tip, ts->repo, "f", "openai-chat", chat, strlen(chat)));
	/* rendered for Anthropic: the call and its result paired, the system prompt apart */
	assert_cmv_ok(cmv_render(&out, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, NULL));
	assert_non_null(strstr(out.ptr, "\"tool_use_id\":\"c1\""));
	assert_non_null(strstr(out.ptr, "be brief"));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, out.ptr, out.size), 0);
	assert_cmv_fails_with(CMV_EINVALID, cmv_append_json(NULL, ts->repo, "f", "openai-chat", "[{\"role\":\"robot\"}]", 18));
	assert_error_mentions("message 0");
	assert_cmv_fails_with(CMV_EINVALID, cmv_append_json(NULL, ts->repo, "f", "klingon", "{}", 2));
	cmv_buf_dispose(&out);
}

static void test_json_entry(void **state)
{
	test_store *ts = *state;
	char path[4200], *out = NULL;
	cmv_host *h;
	struct stat st;
	/* a store whose folders do not exist yet */
	snprintf(path, sizeof(path), "%s/a/b/c/.cmv", ts->dir);
	assert_cmv_ok(cmv_host_open(&h, path, CMV_REPO_OPEN_CREATE));
	assert_int_equal(stat(path, &st), 0);
	assert_cmv_ok(cmv_host_call(&out, h, "branch", "{\"name\":\"main\"}"));
	assert_non_null(strstr(out, "\"created\":true"));
	cmv_host_string_free(out);
	assert_cmv_ok(cmv_host_call(&out, h, "append", "{\"branch\":\"main\",\"format\":\"openai-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));
	cmv_host_string_free(out);
	assert_cmv_ok(cmv_host_call(&out, h, "request", "{\"branch\":\"main\",\"model\":\"gpt-4o\",\"recall_tool\":true}"));
	cJSON *j = cJSON_Parse(out);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "request"), "messages"));
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "report"), "tools")->valueint, 1);
	cJSON_Delete(j);
	cmv_host_string_free(out);
	out = NULL;
	assert_cmv_fails_with(CMV_EINVALID, cmv_host_call(&out, h, "nope", NULL));
	assert_null(out);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_host_call(&out, h, "model", "{\"model\":\"no-such-model-x\"}"));
	assert_error_mentions("model:");
	/* the user's classification of tools: set, read, removed; a bad effect or half a pair refused */
	assert_cmv_ok(cmv_host_call(&out, h, "ledger_classify", "{\"pattern\":\"mcp__linear__get_*\",\"effect\":\"none\"}"));
	assert_string_equal(out, "{\"classification\":{\"mcp__linear__get_*\":\"none\"}}");
	cmv_host_string_free(out);
	assert_cmv_ok(cmv_host_call(&out, h, "ledger_classify", "{\"pattern\":\"mcp__linear__get_*\",\"effect\":\"unset\"}"));
	assert_string_equal(out, "{\"classification\":{}}");
	cmv_host_string_free(out);
	out = NULL;
	assert_cmv_fails_with(CMV_EINVALID, cmv_host_call(&out, h, "ledger_classify", "{\"pattern\":\"x\",\"effect\":\"maybe\"}"));
	assert_error_mentions("expected none, side_effects or unset");
	assert_cmv_fails_with(CMV_EINVALID, cmv_host_call(&out, h, "ledger_classify", "{\"pattern\":\"x\"}"));
	assert_null(out);
	cmv_host_free(h);
	/* read-only: a request is made, nothing is written */
	assert_cmv_ok(cmv_host_open(&h, path, CMV_REPO_OPEN_READONLY));
	assert_cmv_ok(cmv_host_call(&out, h, "request", "{\"branch\":\"main\",\"model\":\"claude-sonnet-4-5\"}"));
	cmv_host_string_free(out);
	cmv_host_free(h);
}

/*
 * Streams of one-character deltas, 200k of them: the text adds up exactly (the
 * growth in place is amortized: cmv-bench host --stream measures it), with
 * deltas to several members interleaved, and after a message_delta that
 * replaces the content the deltas go to the new block.
 */
static const char *const piece_json[] = { "a", "b", "z", "0", " ", "\\u00e9", "\\\"", "\\n", "\\\\", "\xe2\x82\xac" };
static const char *const piece_raw[] = { "a", "b", "z", "0", " ", "\xc3\xa9", "\"", "\n", "\\", "\xe2\x82\xac" };
#define N_PIECES (sizeof(piece_raw) / sizeof(piece_raw[0]))

static void feedf(cmv_reply_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void feedf(cmv_reply_stream *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	assert_cmv_ok(cmv_reply_stream_feed(s, line, (size_t)n));
}

static cJSON *stream_result(cmv_reply_stream *s)
{
	cmv_buf out = CMV_BUF_INIT(1 << 26);
	assert_cmv_ok(cmv_reply_stream_body(&out, s));
	cJSON *j = cJSON_Parse(out.ptr);
	assert_non_null(j);
	cmv_buf_dispose(&out);
	cmv_reply_stream_free(s);
	return j;
}

static void test_stream_many_deltas(void **state)
{
	enum { N = 200000 };
	cmv_buf want = CMV_BUF_INIT(1 << 24), want2 = CMV_BUF_INIT(1 << 24), want3 = CMV_BUF_INIT(1 << 24);
	cmv_reply_stream *s;
	cJSON *j;
	(void)state;

	/* Anthropic: a text block, then a tool call's input a character at a time */
	assert_cmv_ok(cmv_reply_stream_new(&s, "anthropic"));
	feedf(s, "data: {\"type\":\"message_start\",\"message\":{\"role\":\"assistant\",\"content\":[]}}\n\n");
	feedf(s, "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
	for (size_t i = 0; i < N; i++) {
		feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n",
		      piece_json[i % N_PIECES]);
		assert_cmv_ok(cmv_buf_puts(&want, piece_raw[i % N_PIECES]));
	}
	feedf(s, "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}\n\n");
	feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\\\"\"}}\n\n");
	for (size_t i = 0; i < N / 4; i++) {
		feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"%c\"}}\n\n",
		      'a' + (int)(i % 26));
		assert_cmv_ok(cmv_buf_putc(&want2, (char)('a' + i % 26)));
	}
	feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"}\"}}\n\n");
	feedf(s, "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n");
	j = stream_result(s);
	const cJSON *content = cJSON_GetObjectItem(j, "content");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(content, 0), "text")->valuestring, want.ptr);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(content, 1), "input"), "q")->valuestring,
			    want2.ptr);
	cJSON_Delete(j);

	/* OpenAI Chat: the text, the reasoning and two calls' arguments, interleaved */
	cmv_buf_clear(&want);
	cmv_buf_clear(&want2);
	cmv_buf_clear(&want3);
	assert_cmv_ok(cmv_reply_stream_new(&s, "openai-chat"));
	for (size_t i = 0; i < N; i++) {
		const char *p = piece_json[i % N_PIECES];
		switch (i % 4) {
		case 0:
		case 1:
			feedf(s, "data: {\"choices\":[{\"delta\":{\"content\":\"%s\"}}]}\n\n", p);
			assert_cmv_ok(cmv_buf_puts(&want, piece_raw[i % N_PIECES]));
			break;
		case 2:
			feedf(s, "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"%s\"}}]}\n\n", p);
			assert_cmv_ok(cmv_buf_puts(&want2, piece_raw[i % N_PIECES]));
			break;
		default:
			feedf(s, "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":\"%c\"}}]}}],"
				 "\"usage\":{\"completion_tokens\":%zu}}\n\n", (int)(i / 4 % 2), 'a' + (int)(i % 26), i);
			if (i / 4 % 2 == 0)
				assert_cmv_ok(cmv_buf_putc(&want3, (char)('a' + i % 26)));
		}
	}
	j = stream_result(s);
	const cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
	assert_string_equal(cJSON_GetObjectItem(m, "content")->valuestring, want.ptr);
	assert_string_equal(cJSON_GetObjectItem(m, "reasoning_content")->valuestring, want2.ptr);
	const cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "tool_calls"), 0), "function");
	assert_string_equal(cJSON_GetObjectItem(fn, "arguments")->valuestring, want3.ptr);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens")->valueint, N - 1);
	cJSON_Delete(j);

	/* Gemini: text parts join, a call between them starts a new one */
	cmv_buf_clear(&want);
	cmv_buf_clear(&want2);
	assert_cmv_ok(cmv_reply_stream_new(&s, "gemini"));
	for (size_t i = 0; i < N; i++) {
		if (i == N / 2)
			feedf(s, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}}]}\n\n");
		feedf(s, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}]}}]}\n\n", piece_json[i % N_PIECES]);
		assert_cmv_ok(cmv_buf_puts(i < N / 2 ? &want : &want2, piece_raw[i % N_PIECES]));
	}
	j = stream_result(s);
	const cJSON *parts = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "candidates"), 0),
								     "content"), "parts");
	assert_int_equal(cJSON_GetArraySize(parts), 3);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 0), "text")->valuestring, want.ptr);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 2), "text")->valuestring, want2.ptr);
	cJSON_Delete(j);

	/* a message_delta that replaces the content: the blocks that grew are gone, the next deltas go to the new one */
	assert_cmv_ok(cmv_reply_stream_new(&s, "anthropic"));
	feedf(s, "data: {\"type\":\"message_start\",\"message\":{\"role\":\"assistant\",\"content\":[]}}\n\n");
	feedf(s, "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
	for (int i = 0; i < 100; i++)
		feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"old\"}}\n\n");
	feedf(s, "data: {\"type\":\"message_delta\",\"delta\":{\"content\":[{\"type\":\"text\",\"text\":\"n\"}]}}\n\n");
	feedf(s, "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ew\"}}\n\n");
	j = stream_result(s);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0), "text")->valuestring,
			    "new");
	cJSON_Delete(j);
	cmv_buf_dispose(&want);
	cmv_buf_dispose(&want2);
	cmv_buf_dispose(&want3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handles, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_switch_and_usage, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_request, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_replies, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_gemini_positional_ids, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_multi_run_stub_one_recall, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_stub_pinned, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_request_anchored, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_request_rate, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_request_rate_beside, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_options_init_and_report_versions, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_old_report_layouts, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_append_formats, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_json_entry, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_stream_many_deltas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
