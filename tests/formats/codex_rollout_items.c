/* SPDX-License-Identifier: MIT */
/*
 * Codex rollout items the shared samples do not hold: a `web_search_call`
 * (the provider's own search, no output item after it) and a local shell's
 * output named by `id` (the API's shape, no `call_id`). A rollout written
 * for this test (no corpus text) is imported and exported byte for byte;
 * the search is a message whose action is counted, sent whole and in its
 * place to the Responses API and to no other provider; the shell output
 * answers its call (not an event, and no "interrupted" result in its
 * place), as the proxy's reader pairs them (host/reply.c).
 */
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

#define SID "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4"
#define LINE_SEARCH 3
#define LINE_SHELL 5
#define LINE_SHELL_OUT 6

/* Written for this test: a prompt, a search, a reply, a shell call answered by id, a reply. */
static const char *const rollout_lines[] = {
	"{\"timestamp\":\"2026-12-01T10:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"" SID "\",\"timestamp\":\"2026-12-01T10:00:00.000Z\",\"cwd\":\"/src/orchard\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\",\"source\":\"exec\",\"model_provider\":\"openai\",\"base_instructions\":{\"text\":\"You help look after an orchard.\"}}}",
	"{\"timestamp\":\"2026-12-01T10:00:01.000Z\",\"type\":\"turn_context\",\"payload\":{\"turn_id\":\"turn-1\",\"cwd\":\"/src/orchard\",\"model\":\"gpt-5.5\",\"summary\":\"auto\"}}",
	"{\"timestamp\":\"2026-12-01T10:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"When should the pear trees be pruned, and how many are in rows.txt?\"}]}}",
	"{\"timestamp\":\"2026-12-01T10:00:03.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"web_search_call\",\"id\":\"ws_0c41be\",\"status\":\"completed\",\"action\":{\"type\":\"search\",\"query\":\"when to prune pear trees winter dormant season\"}}}",
	"{\"timestamp\":\"2026-12-01T10:00:04.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Pear trees are pruned in late winter, while dormant. Now the rows.\"}]}}",
	"{\"timestamp\":\"2026-12-01T10:00:05.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"local_shell_call\",\"id\":\"lsh_77a0\",\"call_id\":\"call_rows1\",\"status\":\"completed\",\"action\":{\"type\":\"exec\",\"command\":[\"grep\",\"-c\",\"pear\",\"rows.txt\"]}}}",
	"{\"timestamp\":\"2026-12-01T10:00:06.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"local_shell_call_output\",\"id\":\"call_rows1\",\"output\":\"14 pear trees in rows 3-5\"}}",
	"{\"timestamp\":\"2026-12-01T10:00:07.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"There are 14 pear trees; prune them in February.\"}]}}",
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

static cJSON *render_checked(fixture *f, const cmv_id *tip, cmv_render_target t, cmv_render_stats *st)
{
	cmv_buf body = CMV_BUF_INIT(1 << 24), problems = CMV_BUF_INIT(1 << 20);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	ro.flags = CMV_RENDER_NO_DECORATIONS;
	assert_cmv_ok(cmv_render(&body, st, f->repo, tip, t, &ro));
	if (cmv_check_request(&problems, t, body.ptr, body.size) != 0)
		fail_msg("rendered for %s: %s", cmv_render_target_name(t), problems.ptr);
	cJSON *j = cJSON_Parse(body.ptr);
	assert_non_null(j);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	return j;
}

static const char *item_type(const cJSON *input, int i)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, i), "type");
	return cJSON_IsString(t) ? t->valuestring : "(none)";
}

static void test_items__import_export_byte_for_byte(void **state)
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

	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	while (cmv_walk_next(&n, w) == 0) {
		if (i == LINE_SEARCH) {
			/* the search: an assistant message whose one block is its action, a call the provider ran */
			cJSON *want = payload(i, "action");
			assert_int_equal(n->kind, CMV_KIND_MESSAGE);
			assert_int_equal(n->role, CMV_ROLE_ASSISTANT);
			assert_int_equal(n->n_blocks, 1);
			assert_string_equal(n->blocks[0].type, "server_tool_use");
			assert_string_equal(n->blocks[0].tool_name, "web_search");
			assert_string_equal(n->blocks[0].tool_id, "ws_0c41be");
			assert_cmv_ok(cmv_blob_read(&blob, f->repo, &n->blocks[0].blob));
			cJSON *got = cJSON_Parse(blob.ptr);
			assert_true(cJSON_Compare(got, want, true));
			cJSON_Delete(got);
			cJSON_Delete(want);
		} else if (i == LINE_SHELL_OUT) {
			/* the output named by id: a result of call_rows1 */
			assert_int_equal(n->kind, CMV_KIND_MESSAGE);
			assert_int_equal(n->role, CMV_ROLE_TOOL);
			assert_int_equal(n->n_blocks, 1);
			assert_string_equal(n->blocks[0].type, "tool_result");
			assert_string_equal(n->blocks[0].tool_id, "call_rows1");
			assert_cmv_ok(cmv_blob_read(&blob, f->repo, &n->blocks[0].blob));
			assert_string_equal(blob.ptr, "14 pear trees in rows 3-5");
		}
		i++;
	}
	cmv_walk_free(w);
	assert_int_equal(i, N_LINES);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&blob);
}

/* The Responses input holds the search as recorded, between the prompt and the reply that used it. */
static void test_items__web_search_sent_as_recorded(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_render_stats st;
	cmv_id tip;

	import_rollout(&tip, &file, f, SID, 0);
	cJSON *body = render_checked(f, &tip, CMV_RENDER_OPENAI_RESPONSES, &st);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
	cJSON *search = payload(LINE_SEARCH, NULL);
	int at = -1;
	for (int i = 0; i < cJSON_GetArraySize(input); i++)
		if (!strcmp(item_type(input, i), "web_search_call"))
			at = at < 0 ? i : -2;
	assert_true(at > 0);
	assert_true(cJSON_Compare(cJSON_GetArrayItem(input, at), search, true));
	assert_string_equal(item_type(input, at - 1), "message");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, at - 1), "role")->valuestring, "user");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, at + 1), "role")->valuestring,
			    "assistant");
	cJSON_Delete(search);
	cJSON_Delete(body);

	/* no other provider has it; the rest as before */
	static const cmv_render_target others[] = { CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT, CMV_RENDER_GEMINI };
	for (size_t t = 0; t < sizeof(others) / sizeof(*others); t++) {
		cJSON *b = render_checked(f, &tip, others[t], &st);
		char *s = cJSON_PrintUnformatted(b);
		assert_null(strstr(s, "web_search"));
		assert_null(strstr(s, "dormant season"));
		assert_non_null(strstr(s, "pruned in late winter"));
		cJSON_free(s);
		cJSON_Delete(b);
	}
	cmv_buf_dispose(&file);
}

/* The local shell's output named by id answers its call: no interrupted-call result, and its text is sent. */
static void test_items__shell_output_by_id_paired(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_render_stats st;
	cmv_id tip;

	import_rollout(&tip, &file, f, SID, 0);
	static const cmv_render_target all[] = { CMV_RENDER_OPENAI_RESPONSES, CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT,
						 CMV_RENDER_GEMINI };
	for (size_t t = 0; t < sizeof(all) / sizeof(*all); t++) {
		memset(&st, 0, sizeof(st));
		cJSON *b = render_checked(f, &tip, all[t], &st);
		char *s = cJSON_PrintUnformatted(b);
		assert_non_null(strstr(s, "14 pear trees in rows 3-5"));
		assert_non_null(strstr(s, "call_rows1"));
		assert_int_equal(st.orphan_results, 0);
		assert_int_equal(st.answered_calls, 0);
		cJSON_free(s);
		cJSON_Delete(b);
	}

	/* Responses: the call, then its output, by the same call_id */
	cJSON *b = render_checked(f, &tip, CMV_RENDER_OPENAI_RESPONSES, &st);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
	int call = -1, out = -1;
	for (int i = 0; i < cJSON_GetArraySize(input); i++) {
		const cJSON *it = cJSON_GetArrayItem(input, i);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "call_id");
		if (!cJSON_IsString(id) || strcmp(id->valuestring, "call_rows1"))
			continue;
		if (!strcmp(item_type(input, i), "function_call_output"))
			out = i;
		else
			call = i;
	}
	assert_true(call >= 0);
	assert_int_equal(out, call + 1);
	cJSON_Delete(b);
	cmv_buf_dispose(&file);
}

static uint64_t tokens_of(const char *s)
{
	size_t n;
	assert_cmv_ok(cmv_model_count(&n, NULL, gpt, tok, s, strlen(s)));
	return n;
}

/* Stored: the search's action counted as sent ("other"); rendered for Responses, the whole item. */
static void test_items__web_search_counted(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_token_stats a, b;
	cmv_id with, without;

	import_rollout(&with, &file, f, SID, 0);
	import_rollout(&without, &file, f, "5d6e7f80-91a2-4b3c-8d4e-000000000000", 1u << LINE_SEARCH);
	cJSON *action = payload(LINE_SEARCH, "action"), *item = payload(LINE_SEARCH, NULL);
	char *action_text = cJSON_PrintUnformatted(action), *item_text = cJSON_PrintUnformatted(item);

	assert_cmv_ok(cmv_count_conversation(&a, f->repo, &with, gpt, tok));
	assert_cmv_ok(cmv_count_conversation(&b, f->repo, &without, gpt, tok));
	assert_int_equal(a.messages - b.messages, 1);
	assert_int_equal(a.other - b.other, tokens_of(action_text));
	assert_int_equal(a.unsent, b.unsent);

	assert_cmv_ok(cmv_count_sent(&a, f->repo, &with, gpt, tok));
	assert_cmv_ok(cmv_count_sent(&b, f->repo, &without, gpt, tok));
	assert_true(a.total - b.total >= tokens_of(item_text));
	cJSON_free(action_text);
	cJSON_free(item_text);
	cJSON_Delete(action);
	cJSON_Delete(item);
	cmv_buf_dispose(&file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_items__import_export_byte_for_byte, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__web_search_sent_as_recorded, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__shell_output_by_id_paired, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__web_search_counted, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: codex rollout items", tests, load_models, free_models);
}
