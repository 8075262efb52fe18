/* SPDX-License-Identifier: MIT */
/*
 * Codex's tool search: a `tool_search_call` and its `tool_search_output`
 * (the definitions of the deferred tools it found, as a `namespace`), which
 * Codex 0.171.0 sends back in the Responses `input` as they are recorded
 * (docs/formats.md). A rollout written for this test (no corpus text) is
 * imported and exported byte for byte; the two items are a call and a
 * result; the Responses request holds them as recorded, and passes the
 * checker, while other providers get neither; the stored and the rendered
 * counts charge them; trim stubs a long command output but keeps the
 * definitions whole.
 */
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

#define SID "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define LINE_SEARCH 3
#define LINE_FOUND 4

/* Written for this test: a prompt, a search, the tools it loaded, a call to one, its long output, a reply. */
static const char *const rollout_lines[] = {
	"{\"timestamp\":\"2026-11-30T09:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"" SID "\",\"timestamp\":\"2026-11-30T09:00:00.000Z\",\"cwd\":\"/src/garden\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\",\"source\":\"exec\",\"model_provider\":\"openai\",\"base_instructions\":{\"text\":\"You help with a garden planner.\"}}}",
	"{\"timestamp\":\"2026-11-30T09:00:01.000Z\",\"type\":\"turn_context\",\"payload\":{\"turn_id\":\"turn-1\",\"cwd\":\"/src/garden\",\"model\":\"gpt-5.5\",\"summary\":\"auto\"}}",
	"{\"timestamp\":\"2026-11-30T09:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"File a reminder to water the tomatoes on Friday.\"}]}}",
	"{\"timestamp\":\"2026-11-30T09:00:03.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"tool_search_call\",\"id\":\"tsc_7f00aa\",\"call_id\":\"call_search1\",\"status\":\"completed\",\"execution\":\"client\",\"arguments\":{\"query\":\"reminder calendar create\",\"limit\":5},\"internal_chat_message_metadata_passthrough\":{\"turn_id\":\"turn-1\"}}}",
	"{\"timestamp\":\"2026-11-30T09:00:03.100Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"tool_search_output\",\"call_id\":\"call_search1\",\"status\":\"completed\",\"execution\":\"client\",\"tools\":[{\"type\":\"namespace\",\"name\":\"mcp__planner\",\"description\":\"Reminders and beds of the garden planner.\",\"tools\":[{\"type\":\"function\",\"name\":\"_add_reminder\",\"description\":\"Add a reminder on a day. The planner sends it in the morning of that day, and again in the evening if it was not ticked off.\",\"strict\":false,\"defer_loading\":true,\"parameters\":{\"type\":\"object\",\"properties\":{\"day\":{\"type\":\"string\",\"description\":\"The day, as an ISO date or a weekday name.\"},\"text\":{\"type\":\"string\",\"description\":\"What to do.\"},\"bed\":{\"description\":\"The bed it is about, if any.\",\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}},\"required\":[\"day\",\"text\"]}},{\"type\":\"function\",\"name\":\"_list_beds\",\"description\":\"List the beds of the garden with what grows in each.\",\"strict\":false,\"defer_loading\":true,\"parameters\":{\"type\":\"object\",\"properties\":{}}}]}]}}",
	"{\"timestamp\":\"2026-11-30T09:00:04.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":\"{\\\"cmd\\\":\\\"cat beds.txt\\\"}\",\"call_id\":\"call_exec1\"}}",
	"{\"timestamp\":\"2026-11-30T09:00:05.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"function_call_output\",\"call_id\":\"call_exec1\",\"output\":\"bed 1: tomatoes, basil\\nbed 2: beans\\nbed 3: carrots, onions\\nbed 4: squash\\nbed 5: lettuce\\nbed 6: peppers\\nbed 7: leeks\\nbed 8: peas\\nbed 9: potatoes\\nbed 10: garlic\\nbed 11: kale\\nbed 12: chard\\nbed 13: beets\\nbed 14: radishes\\nbed 15: spinach\\nbed 16: cucumbers\\nbed 17: melons\\nbed 18: corn\\nbed 19: celery\\nbed 20: fennel\\nbed 21: parsley\\nbed 22: dill\\nbed 23: thyme\\nbed 24: sage\\nbed 25: rosemary\\nbed 26: mint\\nbed 27: chives\\nbed 28: oregano\\nbed 29: strawberries\\nbed 30: rhubarb\\nbed 31: asparagus\\nbed 32: artichokes\\nbed 33: sunflowers\\nbed 34: marigolds\\n\"}}",
	"{\"timestamp\":\"2026-11-30T09:00:06.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"The tomatoes are in bed 1; I can add the reminder with the planner.\"}]}}",
};
#define N_LINES (sizeof(rollout_lines) / sizeof(*rollout_lines))

static const cmv_model *gpt;
static cmv_tok *tok;
static cmv_models *models;

static int load_models(void **state)
{
	(void)state;
	assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&gpt, models, "gpt-5.5"));
	assert_cmv_ok(cmv_tok_load(&tok, gpt->tokenizer, NULL));
	return 0;
}

static int free_models(void **state)
{
	(void)state;
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}

/* Import the rollout less the lines in mask skip (bit i: line i) under id sid. */
static void import_rollout(cmv_id *tip, cmv_buf *file, fixture *f, const char *sid, unsigned skip)
{
	char name[128];
	cmv_import_result res;

	cmv_buf_clear(file);
	for (size_t i = 0; i < N_LINES; i++) {
		if (skip & (1u << i))
			continue;
		for (const char *p = rollout_lines[i], *at; *p; p = at + strlen(SID)) {
			if (!(at = strstr(p, SID))) {
				assert_cmv_ok(cmv_buf_puts(file, p));
				break;
			}
			assert_cmv_ok(cmv_buf_put(file, p, (size_t)(at - p)));
			assert_cmv_ok(cmv_buf_puts(file, sid));
		}
		assert_cmv_ok(cmv_buf_puts(file, "\n"));
	}
	snprintf(name, sizeof(name), "%s.jsonl", sid);
	char *path = test_write_file(f->dir, name, file->ptr, file->size);
	assert_cmv_ok(cmv_import_file(&res, f->repo, path, "codex", NULL));
	free(path);
	*tip = res.head;
}

/* Line i's payload, or one of its members. */
static cJSON *payload(size_t i, const char *member)
{
	cJSON *j = cJSON_Parse(rollout_lines[i]);
	assert_non_null(j);
	cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(j, "payload");
	cJSON_Delete(j);
	if (member) {
		cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(p, member);
		cJSON_Delete(p);
		p = m;
	}
	assert_non_null(p);
	return p;
}

static cJSON *render_flags_checked(fixture *f, const cmv_id *tip, cmv_render_target t, unsigned int flags)
{
	cmv_buf body = CMV_BUF_INIT(1 << 24), problems = CMV_BUF_INIT(1 << 20);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	ro.flags = CMV_RENDER_NO_DECORATIONS | flags;
	assert_cmv_ok(cmv_render(&body, NULL, f->repo, tip, t, &ro));
	if (cmv_check_request(&problems, t, body.ptr, body.size) != 0)
		fail_msg("rendered for %s: %s", cmv_render_target_name(t), problems.ptr);
	cJSON *j = cJSON_Parse(body.ptr);
	assert_non_null(j);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	return j;
}

static cJSON *render_checked(fixture *f, const cmv_id *tip, cmv_render_target t)
{
	return render_flags_checked(f, tip, t, 0);
}

/* The Responses input holds both items as recorded, in their place (after the prompt, before the command). */
static void assert_items_as_recorded(fixture *f, const cmv_id *tip)
{
	cJSON *body = render_checked(f, tip, CMV_RENDER_OPENAI_RESPONSES);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
	cJSON *call = payload(LINE_SEARCH, NULL), *found = payload(LINE_FOUND, NULL);
	assert_true(cJSON_GetArraySize(input) >= 4);
	assert_true(cJSON_Compare(cJSON_GetArrayItem(input, 1), call, true));
	assert_true(cJSON_Compare(cJSON_GetArrayItem(input, 2), found, true));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, 3), "type")->valuestring,
			    "function_call");
	cJSON_Delete(call);
	cJSON_Delete(found);
	cJSON_Delete(body);
}

static void test_tool_search__import_export_byte_for_byte(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), back = CMV_BUF_INIT(1 << 20), blob = CMV_BUF_INIT(1 << 20);
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id tip;
	size_t i = 0;

	import_rollout(&tip, &file, f, SID, 0);
	assert_cmv_ok(cmv_export_session(f->repo, "codex/" SID, test_buf_writer, &back));
	assert_int_equal(back.size, file.size);
	assert_memory_equal(back.ptr, file.ptr, file.size);

	/* the search is a call of "tool_search" with its arguments, its output a result holding the definitions */
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	while (cmv_walk_next(&n, w) == 0) {
		if (i == LINE_SEARCH || i == LINE_FOUND) {
			cJSON *want = payload(i, i == LINE_SEARCH ? "arguments" : "tools");
			assert_int_equal(n->kind, CMV_KIND_MESSAGE);
			assert_int_equal(n->role, i == LINE_SEARCH ? CMV_ROLE_ASSISTANT : CMV_ROLE_TOOL);
			assert_int_equal(n->n_blocks, 1);
			assert_string_equal(n->blocks[0].type, i == LINE_SEARCH ? "tool_use" : "tool_result");
			assert_string_equal(n->blocks[0].tool_id, "call_search1");
			if (i == LINE_SEARCH)
				assert_string_equal(n->blocks[0].tool_name, "tool_search");
			assert_cmv_ok(cmv_blob_read(&blob, f->repo, &n->blocks[0].blob));
			cJSON *got = cJSON_Parse(blob.ptr);
			assert_true(cJSON_Compare(got, want, true));
			cJSON_Delete(got);
			cJSON_Delete(want);
		}
		i++;
	}
	cmv_walk_free(w);
	assert_int_equal(i, N_LINES);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&blob);
}

static void test_tool_search__rendered_as_sent(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_id tip;

	import_rollout(&tip, &file, f, SID, 0);
	assert_items_as_recorded(f, &tip);

	/* no other provider has Codex's tool search: neither item, and everything else as before */
	static const cmv_render_target others[] = { CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT, CMV_RENDER_GEMINI };
	for (size_t t = 0; t < sizeof(others) / sizeof(*others); t++) {
		cJSON *b = render_checked(f, &tip, others[t]);
		char *s = cJSON_PrintUnformatted(b);
		assert_null(strstr(s, "tool_search"));
		assert_null(strstr(s, "_add_reminder"));
		assert_non_null(strstr(s, "cat beds.txt"));
		cJSON_free(s);
		cJSON_Delete(b);
	}
	cmv_buf_dispose(&file);
}

/* The Responses input as one string, checked; NULL-free. */
static char *responses_text(fixture *f, const cmv_id *tip, unsigned int flags)
{
	cJSON *b = render_flags_checked(f, tip, CMV_RENDER_OPENAI_RESPONSES, flags);
	char *s = cJSON_PrintUnformatted(b);
	assert_non_null(s);
	cJSON_Delete(b);
	return s;
}

/*
 * Half a search (a window or a compaction cut the other half off): an output
 * without its call stays as text, a call without its output goes; either
 * way the request is one the Responses API takes (the checker pairs them).
 */
static void test_tool_search__halves_repaired(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_id tip;
	char *s;

	import_rollout(&tip, &file, f, SID, 1u << LINE_SEARCH);
	s = responses_text(f, &tip, 0);
	assert_null(strstr(s, "\"type\":\"tool_search_output\""));
	assert_non_null(strstr(s, "[tool result for call_search1]"));
	assert_non_null(strstr(s, "_add_reminder"));
	cJSON_free(s);

	import_rollout(&tip, &file, f, "0a1b2c3d-4e5f-4a6b-8c7d-000000000001", 1u << LINE_FOUND);
	s = responses_text(f, &tip, 0);
	assert_null(strstr(s, "tool_search_call"));
	assert_non_null(strstr(s, "cat beds.txt"));
	cJSON_free(s);
	cmv_buf_dispose(&file);
}

/* A Responses model without tools (CMV_RENDER_TOOLS_AS_TEXT) gets the search as text, as other calls. */
static void test_tool_search__as_text(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_id tip;

	import_rollout(&tip, &file, f, SID, 0);
	char *s = responses_text(f, &tip, CMV_RENDER_TOOLS_AS_TEXT);
	assert_null(strstr(s, "\"type\":\"tool_search_call\""));
	assert_null(strstr(s, "\"type\":\"tool_search_output\""));
	assert_null(strstr(s, "\"type\":\"function_call\""));
	assert_non_null(strstr(s, "[tool call tool_search_call, id call_search1]"));
	assert_non_null(strstr(s, "[tool result for call_search1]"));
	assert_non_null(strstr(s, "reminder calendar create"));
	assert_non_null(strstr(s, "_add_reminder"));
	cJSON_free(s);
	cmv_buf_dispose(&file);
}

static uint64_t tokens_of(const char *s)
{
	size_t n;
	assert_cmv_ok(cmv_model_count(&n, NULL, gpt, tok, s, strlen(s)));
	return n;
}

static void test_tool_search__counted(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), blob = CMV_BUF_INIT(1 << 20);
	cmv_token_stats a, b;
	cmv_id with, without;

	import_rollout(&with, &file, f, SID, 0);
	import_rollout(&without, &file, f, "0a1b2c3d-4e5f-4a6b-8c7d-000000000000", 1u << LINE_SEARCH | 1u << LINE_FOUND);

	/* stored: the arguments and the name as a call, the definitions (as recorded) as a result */
	const char *args_text = strstr(rollout_lines[LINE_SEARCH], "\"arguments\":") + strlen("\"arguments\":");
	const char *tools_text = strstr(rollout_lines[LINE_FOUND], "\"tools\":") + strlen("\"tools\":");
	char *args = strndup(args_text, (size_t)(strstr(args_text, "}") + 1 - args_text));
	char *tools = strndup(tools_text, strlen(tools_text) - 2); /* less the closing }} of payload and line */
	assert_cmv_ok(cmv_count_conversation(&a, f->repo, &with, gpt, tok));
	assert_cmv_ok(cmv_count_conversation(&b, f->repo, &without, gpt, tok));
	assert_int_equal(a.tool_calls - b.tool_calls, tokens_of(args) + tokens_of("tool_search"));
	assert_int_equal(a.tool_results - b.tool_results, tokens_of(tools));
	assert_int_equal(a.messages - b.messages, 2);
	assert_int_equal(a.unsent, b.unsent);

	/* rendered for the Responses API: both items whole, at least the definitions' tokens */
	assert_cmv_ok(cmv_count_sent(&a, f->repo, &with, gpt, tok));
	assert_cmv_ok(cmv_count_sent(&b, f->repo, &without, gpt, tok));
	assert_true(a.total - b.total >= tokens_of(tools) + tokens_of(args));
	assert_true(tokens_of(tools) > 150);
	free(args);
	free(tools);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&blob);
}

/* Trim stubs the long command output but keeps the definitions whole: later calls use the tools they define. */
static void test_tool_search__trim_keeps_definitions(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), out = CMV_BUF_INIT(1 << 22), cwd = CMV_BUF_INIT(4096);
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_id tip;
	char id[37];

	import_rollout(&tip, &file, f, SID, 0);
	assert_true(strlen(rollout_lines[LINE_FOUND]) > CMV_TRIM_THRESHOLD_DEFAULT);
	opts.branch = "ts.trim";
	opts.model = gpt;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(&rep, f->repo, &tip, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 1);
	assert_items_as_recorded(f, &rep.head);

	/* the rollout Codex would resume holds the search line as it was */
	assert_cmv_ok(cmv_codex_session_write(&out, id, &cwd, f->repo, &rep.head));
	assert_non_null(strstr(out.ptr, strstr(rollout_lines[LINE_FOUND], "\"type\":\"response_item\"")));
	assert_null(strstr(out.ptr, "bed 34: marigolds"));
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&cwd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tool_search__import_export_byte_for_byte, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_tool_search__rendered_as_sent, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_tool_search__counted, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_tool_search__halves_repaired, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_tool_search__as_text, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_tool_search__trim_keeps_definitions, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: codex tool search", tests, load_models, free_models);
}
