/* SPDX-License-Identifier: MIT */
/*
 * Codex's tool search inside an agent turn (a rollout written for this
 * test): its output answers a call, so it starts no turn; a window that
 * evicts the turn takes the call and the output together, and the request
 * passes the Responses checker (which pairs tool_search_call with its
 * output by call_id).
 */
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

#define SID "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"
#define META "{\"timestamp\":\"2026-11-30T09:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"" SID "\",\"timestamp\":\"2026-11-30T09:00:00.000Z\",\"cwd\":\"/src/garden\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\",\"source\":\"exec\",\"model_provider\":\"openai\",\"base_instructions\":{\"text\":\"You help with a garden planner.\"}}}\n"
#define CTX(n) "{\"timestamp\":\"2026-11-30T09:00:01.000Z\",\"type\":\"turn_context\",\"payload\":{\"turn_id\":\"turn-" n "\",\"cwd\":\"/src/garden\",\"model\":\"gpt-5.5\",\"summary\":\"auto\"}}\n"
#define ITEM(p) "{\"timestamp\":\"2026-11-30T09:00:02.000Z\",\"type\":\"response_item\",\"payload\":" p "}\n"
#define USER(t) ITEM("{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"" t "\"}]}")
#define ASST(t) ITEM("{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"" t "\"}]}")
#define BEDS "bed 1: tomatoes, basil\\nbed 2: beans\\nbed 3: carrots, onions\\nbed 4: squash\\nbed 5: lettuce\\nbed 6: peppers\\nbed 7: leeks\\nbed 8: peas\\nbed 9: potatoes\\nbed 10: garlic\\nbed 11: kale\\nbed 12: chard\\nbed 13: beets\\nbed 14: radishes\\nbed 15: spinach\\nbed 16: cucumbers\\n"

/* Turn 1: a prompt, a command, a tool search in the middle, a call to what it found, a reply; turn 2: a question, a reply. */
static const char rollout[] =
	META CTX("1")
	USER("File a reminder to water the tomatoes on Friday.")
	ITEM("{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":\"{\\\"cmd\\\":\\\"cat beds.txt\\\"}\",\"call_id\":\"call_exec1\"}")
	ITEM("{\"type\":\"function_call_output\",\"call_id\":\"call_exec1\",\"output\":\"" BEDS BEDS BEDS "\"}")
	ITEM("{\"type\":\"tool_search_call\",\"id\":\"tsc_7f00aa\",\"call_id\":\"call_search1\",\"status\":\"completed\",\"execution\":\"client\",\"arguments\":{\"query\":\"reminder calendar create\",\"limit\":5}}")
	ITEM("{\"type\":\"tool_search_output\",\"call_id\":\"call_search1\",\"status\":\"completed\",\"execution\":\"client\",\"tools\":[{\"type\":\"namespace\",\"name\":\"mcp__planner\",\"description\":\"Reminders of the garden planner.\",\"tools\":[{\"type\":\"function\",\"name\":\"_add_reminder\",\"description\":\"Add a reminder on a day. The planner sends it in the morning of that day, and again in the evening if it was not ticked off.\",\"strict\":false,\"defer_loading\":true,\"parameters\":{\"type\":\"object\",\"properties\":{\"day\":{\"type\":\"string\"},\"text\":{\"type\":\"string\"}},\"required\":[\"day\",\"text\"]}}]}]}")
	ITEM("{\"type\":\"function_call\",\"name\":\"mcp__planner___add_reminder\",\"arguments\":\"{\\\"day\\\":\\\"Friday\\\",\\\"text\\\":\\\"water the tomatoes in bed 1\\\"}\",\"call_id\":\"call_add1\"}")
	ITEM("{\"type\":\"function_call_output\",\"call_id\":\"call_add1\",\"output\":\"added\"}")
	ASST("The reminder is filed for Friday: water the tomatoes in bed 1.")
	CTX("2")
	USER("Thanks. Which bed has the basil?")
	ASST("Bed 1, beside the tomatoes.");

/* 0, or CMV_EBUDGET when the last turn alone does not fit */
static int render(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip, const cmv_model *m,
		   cmv_tok *tok, uint64_t budget)
{
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_buf problems = CMV_BUF_INIT(1 << 20);

	o.budget = budget;
	o.keep_turns = 1;
	o.target = CMV_RENDER_OPENAI_RESPONSES;
	int rc = cmv_materialize(out, rep, repo, tip, m, tok, &o);
	if (rc == CMV_EBUDGET)
		return rc;
	assert_cmv_ok(rc);
	if (cmv_check_request(&problems, CMV_RENDER_OPENAI_RESPONSES, out->ptr, out->size) != 0)
		fail_msg("budget %llu: %s", (unsigned long long)budget, problems.ptr);
	cmv_buf_dispose(&problems);
	return 0;
}

static void test_tool_search_in_one_turn(void **state)
{
	fixture *f = *state;
	cmv_buf out = CMV_BUF_INIT(1 << 22);
	cmv_materialize_report rep = { 0 };
	cmv_import_result res;
	cmv_models *models;
	const cmv_model *gpt;
	cmv_tok *tok;

	assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&gpt, models, "gpt-5.5"));
	assert_cmv_ok(cmv_tok_load(&tok, gpt->tokenizer, NULL));
	char *path = test_write_file(f->dir, SID ".jsonl", rollout, strlen(rollout));
	assert_cmv_ok(cmv_import_file(&res, f->repo, path, "codex", NULL));
	free(path);

	/* everything fits: two turns, the search in its place */
	assert_cmv_ok(render(&out, &rep, f->repo, &res.head, gpt, tok, 100000));
	assert_int_equal(rep.turns, 2);
	assert_int_equal(rep.evicted, 0);
	assert_non_null(strstr(out.ptr, "\"tool_search_output\""));
	uint64_t full = rep.tokens_full;

	/* tighter and tighter: whatever leaves, the call and its output leave together */
	bool evicted = false;
	for (uint64_t budget = full; budget > full / 4; budget -= full / 16) {
		if (render(&out, &rep, f->repo, &res.head, gpt, tok, budget) == CMV_EBUDGET)
			break;
		assert_int_equal(rep.turns, 2);
		bool call = strstr(out.ptr, "\"tool_search_call\"") != NULL, output = strstr(out.ptr, "\"tool_search_output\"") != NULL;
		if (call != output)
			fail_msg("budget %llu: the search's call %s, its output %s", (unsigned long long)budget, call ? "kept" : "gone",
				 output ? "kept" : "gone");
		evicted |= rep.evicted > 0 && !call;
	}
	assert_true(evicted);
	cmv_materialize_report_dispose(&rep);
	cmv_buf_dispose(&out);
	cmv_tok_free(tok);
	cmv_models_free(models);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tool_search_in_one_turn, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
