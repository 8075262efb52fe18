/* SPDX-License-Identifier: MIT */
/*
 * The proxy's request path in-process (proxy_turn_new / proxy_turn_reply):
 * a Responses reply made of an item kind the matcher must know as the
 * model's (a Codex tool search) is matched when the client sends it back:
 * the session's branch goes on, nothing is forked off (it was, on every
 * tool search), nothing is sent twice. (The proxy's reading of a Responses
 * request does not carry tool-search items upstream yet: docs/proxy.md.)
 */
#include "test.h"
#include "server/proxy.h"

static int count_refs(const cmv_ref *ref, void *payload)
{
	size_t *n = payload;
	if (!strncmp(ref->name, PROXY_BRANCH_PREFIX, strlen(PROXY_BRANCH_PREFIX)) || strstr(ref->name, "fork"))
		n[strstr(ref->name, "fork") ? 1 : 0]++;
	return 0;
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#define TOOLS "\"tools\":[{\"type\":\"function\",\"name\":\"exec_command\",\"description\":\"Run.\",\"parameters\":{\"type\":\"object\"}}]"
#define USER(t) "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"" t "\"}]}"
#define SEARCH_CALL                                                                                         \
	"{\"type\":\"tool_search_call\",\"id\":\"ts_1\",\"call_id\":\"call_ts_1\",\"status\":\"completed\"," \
	"\"execution\":\"client\",\"arguments\":{\"query\":\"github issues\"}}"
#define SEARCH_OUTPUT                                                                                      \
	"{\"type\":\"tool_search_output\",\"call_id\":\"call_ts_1\",\"status\":\"completed\",\"execution\":\"client\"," \
	"\"tools\":[{\"type\":\"function\",\"name\":\"list_issues\",\"description\":\"List issues.\","      \
	"\"parameters\":{\"type\":\"object\"}}]}"

static void test_proxy_items__a_tool_search_sent_back_is_matched(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *p = NULL;
	proxy_turn *t = NULL;
	bool again = false;
	size_t len = 0, refs[2] = { 0, 0 };

	cfg.quiet = true;
	cfg.budget = 100000;
	assert_cmv_ok(proxy_new(&p, ts->repo, &cfg));

	const char *first = "{\"model\":\"gpt-5\",\"prompt_cache_key\":\"ts-session\",\"store\":false," TOOLS
			    ",\"input\":[" USER("find the issue tools") "]}";
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, first, strlen(first)));
	const char *reply = "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-5\","
			    "\"output\":[" SEARCH_CALL "],"
			    "\"usage\":{\"input_tokens\":50,\"output_tokens\":10,\"total_tokens\":60}}";
	assert_cmv_ok(proxy_turn_reply(t, reply, strlen(reply), &again));
	assert_false(again);
	proxy_turn_free(t);

	/* Codex sends the call back as it got it, with the search's output and the next prompt */
	const char *second = "{\"model\":\"gpt-5\",\"prompt_cache_key\":\"ts-session\",\"store\":false," TOOLS
			     ",\"input\":[" USER("find the issue tools") "," SEARCH_CALL "," SEARCH_OUTPUT "," USER("now list them") "]}";
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, second, strlen(second)));
	const char *up = proxy_turn_upstream(t, &len);
	assert_non_null(up);
	char *body = strndup(up, len);
	assert_true(occurrences(body, "\"type\":\"tool_search_call\"") <= 1);
	assert_int_equal(occurrences(body, "now list them"), 1);
	free(body);
	proxy_turn_free(t);

	assert_cmv_ok(cmv_ref_foreach(ts->repo, count_refs, refs));
	assert_int_equal(refs[0], 1); /* the session's branch */
	assert_int_equal(refs[1], 0); /* nothing forked off */
	proxy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_items__a_tool_search_sent_back_is_matched, test_store_setup,
						test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
