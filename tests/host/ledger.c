/* SPDX-License-Identifier: MIT */
/*
 * The ledger of side effects (include/cmv/ledger.h): states, classification,
 * idempotency keys (stable across a re-issue by another model, a switch and
 * a re-import; new after the world changed), the host's question before a
 * call, and what a switch, a compaction and a handoff say of in-flight calls.
 */
#include <cjson/cJSON.h>
#include "test.h"

static void add(cmv_repo *repo, const char *branch, const char *json)
{
	assert_cmv_ok(cmv_append_json(NULL, repo, branch, "anthropic", json, strlen(json)));
}

static void user(cmv_repo *repo, const char *branch, const char *text)
{
	char json[1024];
	snprintf(json, sizeof(json), "{\"role\":\"user\",\"content\":\"%s\"}", text);
	add(repo, branch, json);
}

/* An assistant message with one call. */
static void call(cmv_repo *repo, const char *branch, const char *id, const char *name, const char *input)
{
	char json[2048];
	snprintf(json, sizeof(json),
		 "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":\"%s\",\"input\":%s}]}", id,
		 name, input);
	add(repo, branch, json);
}

static void result(cmv_repo *repo, const char *branch, const char *id, bool error)
{
	char json[1024];
	snprintf(json, sizeof(json),
		 "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"%s\",\"content\":\"done\"%s}]}",
		 id, error ? ",\"is_error\":true" : "");
	add(repo, branch, json);
}

static cmv_ledger *ledger_of(cmv_repo *repo, const char *branch)
{
	cmv_id tip;
	cmv_ledger *l = NULL;
	assert_cmv_ok(cmv_resolve(&tip, repo, branch));
	assert_cmv_ok(cmv_ledger_build(&l, repo, &tip, branch));
	return l;
}

static void test_states_and_effects(void **state)
{
	test_store *ts = *state;
	user(ts->repo, "b", "fix the build");
	call(ts->repo, "b", "t1", "Read", "{\"file_path\":\"/a.c\"}");
	result(ts->repo, "b", "t1", false);
	call(ts->repo, "b", "t2", "Bash", "{\"command\":\"make\",\"description\":\"build it\"}");
	result(ts->repo, "b", "t2", true);
	call(ts->repo, "b", "t3", "mcp__linear__create_issue", "{\"title\":\"x\"}");
	result(ts->repo, "b", "t3", false);
	call(ts->repo, "b", "t4", "Bash", "{\"command\":\"git push\"}");

	cmv_ledger *l = ledger_of(ts->repo, "b");
	assert_int_equal(l->n, 4);
	assert_int_equal(l->turns, 1);
	assert_int_equal(l->committed, 3);
	assert_int_equal(l->in_flight, 1);
	assert_int_equal(l->in_flight_effects, 1);
	assert_int_equal(l->side_effects, 3);
	assert_int_equal(l->unclassified, 1);
	assert_int_equal(l->entries[0].effect, CMV_EFFECT_NONE);
	assert_string_equal(l->entries[0].effect_source, "claude-code");
	assert_true(l->entries[1].error && l->entries[1].state == CMV_CALL_COMMITTED);
	/* the commentary field is not an argument */
	assert_string_equal(l->entries[1].args, "{\"command\":\"make\"}");
	assert_int_equal(l->entries[2].effect, CMV_EFFECT_UNKNOWN);
	assert_string_equal(l->entries[2].effect_source, "unclassified");
	assert_int_equal(l->entries[3].state, CMV_CALL_IN_FLIGHT);
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	assert_cmv_ok(cmv_ledger_in_flight_text(&text, l, 10));
	assert_non_null(strstr(text.ptr, "Bash (call t4"));
	assert_non_null(strstr(text.ptr, "git push"));
	assert_cmv_ok(cmv_ledger_json(&text, l));
	cJSON *j = cJSON_Parse(text.ptr);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), "in_flight_side_effects")->valueint, 1);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "calls"), 3)->child->valuestring, "t4");
	cJSON_Delete(j);
	cmv_ledger_free(l);

	/* configurable: the user's classification first, a prefix pattern, the longest wins */
	assert_cmv_ok(cmv_ledger_classify(ts->repo, "mcp__linear__*", CMV_EFFECT_NONE));
	assert_cmv_ok(cmv_ledger_classify(ts->repo, "mcp__linear__create_*", CMV_EFFECT_SIDE));
	cmv_effect e;
	const char *src;
	assert_cmv_ok(cmv_ledger_effect(&e, &src, ts->repo, NULL, "mcp__linear__get_issue"));
	assert_int_equal(e, CMV_EFFECT_NONE);
	assert_string_equal(src, "config");
	assert_cmv_ok(cmv_ledger_effect(&e, &src, ts->repo, NULL, "mcp__linear__create_issue"));
	assert_int_equal(e, CMV_EFFECT_SIDE);
	assert_cmv_fails_with(CMV_EINVALID, cmv_ledger_classify(ts->repo, "a*b", CMV_EFFECT_NONE));
	/* MCP annotations of the branch's tools, by the bare name too */
	assert_cmv_ok(cmv_branch_tools_set(ts->repo, "b", "[{\"name\":\"lookup\",\"input_schema\":{\"type\":\"object\"},"
							   "\"annotations\":{\"readOnlyHint\":true}}]"));
	assert_cmv_ok(cmv_ledger_effect(&e, &src, ts->repo, "b", "mcp__srv__lookup"));
	assert_int_equal(e, CMV_EFFECT_NONE);
	assert_string_equal(src, "mcp");
	assert_cmv_ok(cmv_ledger_effect(&e, &src, ts->repo, "b", "mcp__srv__other"));
	assert_int_equal(e, CMV_EFFECT_UNKNOWN);
	cmv_buf_dispose(&text);
}

static void test_keys(void **state)
{
	test_store *ts = *state;
	user(ts->repo, "k", "ship it");
	call(ts->repo, "k", "a1", "Bash", "{\"command\":\"npm test\"}");
	result(ts->repo, "k", "a1", false);
	call(ts->repo, "k", "a2", "Edit", "{\"file_path\":\"x\",\"old_string\":\"1\",\"new_string\":\"2\"}");
	result(ts->repo, "k", "a2", false);
	/* the same command after the world changed: a new key */
	call(ts->repo, "k", "a3", "Bash", "{\"command\":\"npm test\"}");
	result(ts->repo, "k", "a3", false);
	call(ts->repo, "k", "a4", "Bash", "{\"command\":\"git push\",\"description\":\"push\"}");
	/* interrupted; another model issues it again, its own words in the commentary, keys in another order */
	call(ts->repo, "k", "b1", "Bash", "{\"description\":\"Push the branch\",\"command\":\"git push \"}");

	cmv_ledger *l = ledger_of(ts->repo, "k");
	assert_int_equal(l->n, 5);
	assert_string_not_equal(l->entries[0].key, l->entries[2].key);
	assert_string_equal(l->entries[0].args_hash, l->entries[2].args_hash);
	assert_int_equal(l->entries[2].occurrence, 2);
	assert_string_equal(l->entries[3].key, l->entries[4].key);
	assert_int_equal(l->entries[3].state, CMV_CALL_SUPERSEDED);
	assert_int_equal(l->entries[3].superseded_by, 4);
	assert_false(l->entries[4].duplicate); /* the first never committed */
	assert_int_equal(l->entries[4].state, CMV_CALL_IN_FLIGHT);
	char push_key[CMV_LEDGER_KEY_HEXSZ + 1];
	memcpy(push_key, l->entries[4].key, sizeof(push_key));
	cmv_ledger_free(l);

	/* the host's question: not yet; once its result is in, yes */
	cmv_id tip;
	cmv_ledger_check_result r;
	const char *in = "{\"command\":\"git push\"}";
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "k"));
	assert_cmv_ok(cmv_ledger_check(&r, ts->repo, &tip, "k", "Bash", in, strlen(in)));
	assert_string_equal(r.key, push_key);
	assert_false(r.committed);
	result(ts->repo, "k", "b1", false);
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "k"));
	assert_cmv_ok(cmv_ledger_check(&r, ts->repo, &tip, "k", "Bash", in, strlen(in)));
	assert_true(r.committed);
	assert_int_equal(r.effect, CMV_EFFECT_SIDE);
	/* a replay that issues it once more is a duplicate downstream */
	call(ts->repo, "k", "c1", "Bash", "{\"command\":\"git push\"}");
	l = ledger_of(ts->repo, "k");
	assert_true(l->entries[5].duplicate);
	assert_int_equal(l->duplicates, 1);
	cmv_ledger_free(l);
	/* a new turn is a new position */
	user(ts->repo, "k", "again please");
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "k"));
	assert_cmv_ok(cmv_ledger_check(&r, ts->repo, &tip, "k", "Bash", in, strlen(in)));
	assert_false(r.committed);
	assert_string_not_equal(r.key, push_key);
}

/* A switch mid-call: the key survives it, the user is warned, the next model is told. */
static void test_switch(void **state)
{
	test_store *ts = *state;
	cmv_model_handle *gpt, *claude;
	cmv_switch_report rep = { 0 };
	cmv_reply reply = { 0 };
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_request_report rr = { 0 };

	assert_cmv_ok(cmv_model_handle_open(&gpt, ts->repo, "gpt-4o"));
	assert_cmv_ok(cmv_model_handle_open(&claude, ts->repo, "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_branch_tools_set(ts->repo, "s", "[{\"name\":\"shell\",\"input_schema\":{\"type\":\"object\"}}]"));
	user(ts->repo, "s", "deploy");
	const char *chat = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
			   "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":"
			   "\"{\\\"cmd\\\":\\\"./deploy.sh\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
			   "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}";
	assert_cmv_ok(cmv_reply_append(&reply, ts->repo, "s", "openai-chat", chat, strlen(chat), gpt));
	assert_cmv_ok(cmv_switch(&rep, ts->repo, "s", claude, NULL));
	assert_int_equal(rep.in_flight, 1);
	assert_int_equal(rep.in_flight_effects, 1);
	/* the request to the new model: the call, and that its outcome is unknown */
	assert_cmv_ok(cmv_request(&body, &rr, ts->repo, "s", claude, NULL));
	assert_non_null(strstr(body.ptr, "./deploy.sh"));
	assert_non_null(strstr(body.ptr, "outcome is unknown"));
	cmv_ledger *l = ledger_of(ts->repo, "s");
	char key[CMV_LEDGER_KEY_HEXSZ + 1];
	memcpy(key, l->entries[0].key, sizeof(key));
	cmv_ledger_free(l);
	/* Claude issues the same call with its own id: the same key, the first superseded */
	const char *msgs = "{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
			   "\"id\":\"toolu_9\",\"name\":\"shell\",\"input\":{\"cmd\":\"./deploy.sh\"}}],\"stop_reason\":\"tool_use\","
			   "\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}";
	assert_cmv_ok(cmv_reply_append(&reply, ts->repo, "s", "anthropic", msgs, strlen(msgs), claude));
	l = ledger_of(ts->repo, "s");
	assert_int_equal(l->n, 2);
	assert_string_equal(l->entries[1].key, key);
	assert_int_equal(l->entries[0].state, CMV_CALL_SUPERSEDED);
	assert_string_equal(l->entries[1].call_id, "toolu_9");
	cmv_ledger_free(l);

	/* the handoff's pending actions and the compaction's capability check name it */
	cmv_handoff_options ho = CMV_HANDOFF_OPTIONS_INIT;
	cmv_id tip;
	ho.model = cmv_model_handle_profile(claude);
	ho.tok = cmv_model_handle_tok(claude);
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "s"));
	assert_cmv_ok(cmv_handoff(&body, NULL, ts->repo, &tip, &ho));
	assert_non_null(strstr(body.ptr, "In flight, outcome unknown"));
	cmv_compact_options co = CMV_COMPACT_OPTIONS_INIT;
	cmv_compact_report cr;
	memset(&cr, 0, sizeof(cr));
	co.branch = "s.compact";
	co.target = cmv_model_handle_profile(gpt);
	co.tok = cmv_model_handle_tok(gpt);
	co.flags = CMV_COMPACT_DRY_RUN;
	assert_cmv_ok(cmv_compact(&cr, ts->repo, &tip, &co));
	assert_int_equal(cr.in_flight_effects, 1);
	assert_non_null(strstr(cr.in_flight, "toolu_9"));
	cmv_compact_report_dispose(&cr);
	/* a trimmed branch answers the call with cmv's words: still in flight in its ledger */
	cmv_reply_dispose(&reply);
	cmv_request_report_dispose(&rr);
	cmv_buf_dispose(&body);
	cmv_model_handle_free(gpt);
	cmv_model_handle_free(claude);
}

/* The same session imported into two stores: the same keys. */
static void test_reimport(void **state)
{
	(void)state;
	const char *path = CMV_TEST_TRANSCRIPTS "/claude-code/vsla/f6108699-47cc-4b21-8ca6-3223992990b3.jsonl";
	char keys[2][64][CMV_LEDGER_KEY_HEXSZ + 1];
	size_t n[2];
	for (int s = 0; s < 2; s++) {
		cmv_repo *repo;
		cmv_import_result res;
		assert_cmv_ok(cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE));
		if (s)
			user(repo, "other", "something else first"); /* a store with other content */
		memset(&res, 0, sizeof(res));
		assert_cmv_ok(cmv_import_file(&res, repo, path, NULL, NULL));
		cmv_ledger *l = NULL;
		assert_cmv_ok(cmv_ledger_build(&l, repo, &res.head, NULL));
		n[s] = l->n;
		assert_true(l->n > 0 && l->n <= 64);
		for (size_t i = 0; i < l->n; i++)
			memcpy(keys[s][i], l->entries[i].key, CMV_LEDGER_KEY_HEXSZ + 1);
		/* hand-counted: 9 calls, one Bash cut mid-call at the end */
		assert_int_equal(l->n, 9);
		assert_int_equal(l->in_flight, 1);
		assert_string_equal(l->entries[8].name, "Bash");
		assert_int_equal(l->entries[8].state, CMV_CALL_IN_FLIGHT);
		cmv_ledger_free(l);
		cmv_repo_free(repo);
	}
	assert_int_equal(n[0], n[1]);
	for (size_t i = 0; i < n[0]; i++)
		assert_string_equal(keys[0][i], keys[1][i]);
}

/* A Codex turn aborted mid-call (hand-counted: 23 calls, the last two without output). */
static void test_codex_aborted(void **state)
{
	test_store *ts = *state;
	cmv_import_result res;
	cmv_ledger *l = NULL;
	memset(&res, 0, sizeof(res));
	assert_cmv_ok(cmv_import_file(&res, ts->repo,
				      CMV_TEST_TRANSCRIPTS "/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl",
				      NULL, NULL));
	assert_cmv_ok(cmv_ledger_build(&l, ts->repo, &res.head, NULL));
	assert_int_equal(l->n, 23);
	assert_int_equal(l->in_flight, 2);
	assert_int_equal(l->in_flight_effects, 2);
	assert_int_equal(l->turns, 2); /* AGENTS.md and the environment are not the user's */
	assert_int_equal(l->entries[21].state, CMV_CALL_IN_FLIGHT);
	assert_non_null(strstr(l->entries[21].args, "git commit"));
	assert_string_equal(l->entries[21].effect_source, "codex");
	cmv_ledger_free(l);
}

static void test_similarity(void **state)
{
	(void)state;
	assert_true(cmv_text_similarity("The build passes.", "the BUILD passes") > 0.999);
	assert_true(cmv_text_similarity("", "") > 0.999);
	assert_true(cmv_text_similarity("alpha beta", "gamma delta") < 0.001);
	double s = cmv_text_similarity("run the tests now", "run the tests later");
	assert_true(s > 0.5 && s < 0.9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_states_and_effects, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_keys, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_switch, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_reimport),
		cmocka_unit_test_setup_teardown(test_codex_aborted, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_similarity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
