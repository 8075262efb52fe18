/* SPDX-License-Identifier: MIT */
/*
 * The proxy's request path in-process (proxy_turn_new / proxy_turn_reply):
 * a Responses reply made of an item kind the matcher must know as the
 * model's (a Codex tool search) is matched when the client sends it back:
 * the session's branch goes on, nothing is forked off (it was, on every
 * tool search), nothing is sent twice. The items go upstream as the client
 * sent them (the call too: Codex adds metadata to the model's), in place, turn after turn and after paging; the other kinds of
 * call a Responses request holds are carried too (docs/proxy.md, "A reply's
 * items are the model's").
 */
#include <cjson/cJSON.h>
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
/* as Codex 0.171.0 sends them back: the call with metadata of its own added, the output with its own */
#define SEARCH_CALL_SENT                                                                                    \
	"{\"type\":\"tool_search_call\",\"id\":\"ts_1\",\"call_id\":\"call_ts_1\",\"status\":\"completed\"," \
	"\"execution\":\"client\",\"arguments\":{\"query\":\"github issues\"},"                             \
	"\"internal_chat_message_metadata_passthrough\":{\"turn_id\":\"019b2c3d-0001\"}}"
#define SEARCH_OUTPUT                                                                                      \
	"{\"type\":\"tool_search_output\",\"id\":\"tso_019b2c3d\",\"call_id\":\"call_ts_1\",\"status\":\"completed\"," \
	"\"execution\":\"client\",\"tools\":[{\"type\":\"function\",\"name\":\"list_issues\","            \
	"\"description\":\"List issues.\",\"parameters\":{\"type\":\"object\"}}],"                          \
	"\"internal_chat_message_metadata_passthrough\":{\"turn_id\":\"019b2c3d-0001\",\"create_time\":1796554729.2877152}}"

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
			     ",\"input\":[" USER("find the issue tools") "," SEARCH_CALL_SENT "," SEARCH_OUTPUT "," USER("now list them") "]}";
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, second, strlen(second)));
	const char *up = proxy_turn_upstream(t, &len);
	assert_non_null(up);
	char *body = strndup(up, len);
	assert_int_equal(occurrences(body, SEARCH_CALL_SENT), 1);
	assert_int_equal(occurrences(body, SEARCH_OUTPUT), 1);
	assert_int_equal(occurrences(body, "\"type\":\"tool_search_call\""), 1);
	assert_int_equal(occurrences(body, "now list them"), 1);
	free(body);
	proxy_turn_free(t);

	assert_cmv_ok(cmv_ref_foreach(ts->repo, count_refs, refs));
	assert_int_equal(refs[0], 1); /* the session's branch */
	assert_int_equal(refs[1], 0); /* nothing forked off */
	proxy_free(p);
}

/*
 * One upstream request: valid for the Responses API (cmv's checker), and
 * the search there byte for byte as the client sent it, the output right
 * after its call, or neither of them (the turn evicted whole). Returns
 * whether the search was there.
 */
static bool search_in_place(const char *up, size_t len)
{
	cmv_buf problems = CMV_BUF_INIT(1 << 20);
	if (cmv_check_request(&problems, CMV_RENDER_OPENAI_RESPONSES, up, len) != 0)
		fail_msg("the upstream request is not valid: %s", problems.ptr);
	cmv_buf_dispose(&problems);
	char *body = strndup(up, len);
	const char *call = strstr(body, SEARCH_CALL_SENT), *output = strstr(body, SEARCH_OUTPUT);
	size_t n_call = occurrences(body, "\"tool_search_call\""), n_output = occurrences(body, "\"tool_search_output\"");
	if (n_call != (call ? 1 : 0) || n_output != (output ? 1 : 0))
		fail_msg("a search not as the client sent it: %s", body);
	if (!call != !output)
		fail_msg("the search's call %s, its output %s", call ? "kept" : "gone", output ? "kept" : "gone");
	if (call && output != call + strlen(SEARCH_CALL_SENT) + 1)
		fail_msg("the search's output is not right after its call: %s", body);
	free(body);
	return call != NULL;
}

/* A turn: the request; the reply, unless NULL. The upstream request is checked and the search found or not. */
static bool turn(proxy *p, const char *input, const char *output, const proxy_turn_stats **st, proxy_turn **tp)
{
	proxy_turn *t = NULL;
	cmv_buf req = CMV_BUF_INIT(1 << 24), rep = CMV_BUF_INIT(1 << 24);
	size_t len = 0;
	bool again = false;

	assert_cmv_ok(cmv_buf_printf(&req, "{\"model\":\"gpt-5\",\"prompt_cache_key\":\"ts-paged\",\"store\":false," TOOLS
					   ",\"input\":[%s]}", input));
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, req.ptr, req.size));
	const char *up = proxy_turn_upstream(t, &len);
	assert_non_null(up);
	bool found = search_in_place(up, len);
	if (output) {
		assert_cmv_ok(cmv_buf_printf(&rep, "{\"id\":\"resp_x\",\"object\":\"response\",\"status\":\"completed\","
						   "\"model\":\"gpt-5\",\"output\":[%s],"
						   "\"usage\":{\"input_tokens\":50,\"output_tokens\":10,\"total_tokens\":60}}", output));
		assert_cmv_ok(proxy_turn_reply(t, rep.ptr, rep.size, &again));
		assert_false(again);
	}
	*st = proxy_turn_stats_get(t);
	*tp = t;
	cmv_buf_dispose(&req);
	cmv_buf_dispose(&rep);
	return found;
}

#define FCALL(id, name, args) "{\"type\":\"function_call\",\"name\":\"" name "\",\"arguments\":\"" args "\",\"call_id\":\"" id "\"}"
#define FOUT(id, out) "{\"type\":\"function_call_output\",\"call_id\":\"" id "\",\"output\":\"" out "\"}"
#define ASST(t) "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"" t "\"}]}"

/*
 * A Codex session through the proxy on a small budget: a tool search, a
 * call of the tool it found, then turn after turn of long command outputs.
 * Every upstream request carries the search whole and in place while its
 * turn is in the window, though tool results around it are paged out to
 * stubs (a search's output cannot be a stub: the API takes tool
 * definitions there, nothing else); once the turn is evicted, call and
 * output leave together. The session's branch never forks.
 */
static void test_proxy_items__a_tool_search_across_turns_and_paging(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *p = NULL;
	proxy_turn *t = NULL;
	const proxy_turn_stats *st;
	cmv_buf in = CMV_BUF_INIT(1 << 24), big = CMV_BUF_INIT(1 << 20);
	size_t refs[2] = { 0, 0 };
	bool stubbed_beside = false, evicted = false;

	cfg.quiet = true;
	cfg.budget = 6000;
	assert_cmv_ok(proxy_new(&p, ts->repo, &cfg));
	for (int i = 0; i < 120; i++)
		assert_cmv_ok(cmv_buf_printf(&big, "line %d of the build log: compiled src/unit_%d.c in %d ms\\n", i, i * 7, 10 + i % 13));

	/* the prompt; the model searches */
	assert_cmv_ok(cmv_buf_puts(&in, USER("find the issue tools")));
	assert_false(turn(p, in.ptr, SEARCH_CALL, &st, &t));
	proxy_turn_free(t);
	/* Codex ran the search: the call back, its output; the model calls what it found */
	assert_cmv_ok(cmv_buf_puts(&in, "," SEARCH_CALL_SENT "," SEARCH_OUTPUT));
	assert_true(turn(p, in.ptr, FCALL("call_li", "list_issues", "{}"), &st, &t));
	proxy_turn_free(t);
	assert_cmv_ok(cmv_buf_puts(&in, "," FCALL("call_li", "list_issues", "{}") ","));
	assert_cmv_ok(cmv_buf_printf(&in, FOUT("call_li", "%s"), big.ptr));
	assert_true(turn(p, in.ptr, ASST("Three issues are open."), &st, &t));
	proxy_turn_free(t);
	assert_cmv_ok(cmv_buf_puts(&in, "," ASST("Three issues are open.")));

	/* turns of long outputs, until the search's turn is evicted */
	for (int k = 0; k < 12 && !evicted; k++) {
		char id[32], prompt[64];
		snprintf(id, sizeof(id), "call_b%d", k);
		snprintf(prompt, sizeof(prompt), "build step %d", k);
		assert_cmv_ok(cmv_buf_printf(&in, "," USER("%s"), prompt));
		cmv_buf rep = CMV_BUF_INIT(1 << 20);
		assert_cmv_ok(cmv_buf_printf(&rep, FCALL("%s", "exec_command", "{\\\"cmd\\\":\\\"make\\\"}"), id));
		bool found = turn(p, in.ptr, rep.ptr, &st, &t);
		proxy_turn_free(t);
		assert_cmv_ok(cmv_buf_printf(&in, ",%s,", rep.ptr));
		assert_cmv_ok(cmv_buf_printf(&in, FOUT("%s", "%s"), id, big.ptr));
		cmv_buf_dispose(&rep);
		found = turn(p, in.ptr, ASST("Built."), &st, &t);
		assert_true(st->tokens <= cfg.budget);
		stubbed_beside |= found && st->stubbed > 0;
		evicted = !found;
		if (found)
			assert_int_equal(st->evicted, 0); /* nothing left before the search's turn did */
		proxy_turn_free(t);
		assert_cmv_ok(cmv_buf_puts(&in, "," ASST("Built.")));
	}
	assert_true(stubbed_beside);
	assert_true(evicted);

	assert_cmv_ok(cmv_ref_foreach(ts->repo, count_refs, refs));
	assert_int_equal(refs[0], 1);
	assert_int_equal(refs[1], 0);
	cmv_buf_dispose(&in);
	cmv_buf_dispose(&big);
	proxy_free(p);
}

/* One request of session `sid` and its reply (NULL: none); the upstream request, which the caller frees. */
static char *exchange(proxy *p, const char *sid, const char *input, const char *output)
{
	proxy_turn *t = NULL;
	cmv_buf req = CMV_BUF_INIT(1 << 24), rep = CMV_BUF_INIT(1 << 24), problems = CMV_BUF_INIT(1 << 20);
	size_t len = 0;
	bool again = false;

	assert_cmv_ok(cmv_buf_printf(&req, "{\"model\":\"gpt-5\",\"prompt_cache_key\":\"%s\",\"store\":false," TOOLS
					   ",\"input\":[%s]}", sid, input));
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, req.ptr, req.size));
	const char *up = proxy_turn_upstream(t, &len);
	assert_non_null(up);
	if (cmv_check_request(&problems, CMV_RENDER_OPENAI_RESPONSES, up, len) != 0)
		fail_msg("the upstream request is not valid: %s", problems.ptr);
	char *body = strndup(up, len);
	if (output) {
		assert_cmv_ok(cmv_buf_printf(&rep, "{\"id\":\"resp_x\",\"object\":\"response\",\"status\":\"completed\","
						   "\"model\":\"gpt-5\",\"output\":[%s]}", output));
		assert_cmv_ok(proxy_turn_reply(t, rep.ptr, rep.size, &again));
	}
	proxy_turn_free(t);
	cmv_buf_dispose(&req);
	cmv_buf_dispose(&rep);
	cmv_buf_dispose(&problems);
	return body;
}

#define CUSTOM_CALL "{\"type\":\"custom_tool_call\",\"call_id\":\"call_cp\",\"name\":\"apply_patch\",\"input\":\"*** Begin Patch\\n*** End Patch\"}"
#define CUSTOM_OUT "{\"type\":\"custom_tool_call_output\",\"call_id\":\"call_cp\",\"output\":\"Done.\"}"
#define WEB_CALL "{\"type\":\"web_search_call\",\"id\":\"ws_1\",\"status\":\"completed\",\"action\":{\"type\":\"search\",\"query\":\"cmocka\"}}"
#define SHELL_CALL "{\"type\":\"local_shell_call\",\"id\":\"ls_1\",\"call_id\":\"call_ls\",\"status\":\"completed\"," \
	"\"action\":{\"type\":\"exec\",\"command\":[\"ls\"],\"env\":{}}}"
#define SHELL_OUT "{\"type\":\"local_shell_call_output\",\"call_id\":\"call_ls\",\"output\":\"README.md\"}"

/* What a session of each kind of call sends upstream: every call there once, with its output. */
static void carried(const char *up)
{
	/* a custom tool's call and output stay custom */
	assert_int_equal(occurrences(up, "{\"type\":\"custom_tool_call\",\"call_id\":\"call_cp\",\"name\":\"apply_patch\","
					 "\"input\":\"*** Begin Patch\\n*** End Patch\"}"), 1);
	assert_int_equal(occurrences(up, "{\"type\":\"custom_tool_call_output\",\"call_id\":\"call_cp\",\"output\":\"Done.\"}"), 1);
	/* a web search, the provider's own: whole, as it came */
	assert_int_equal(occurrences(up, WEB_CALL), 1);
	/* a local shell call: a call of "local_shell" on its action, answered (as an imported Codex rollout has it) */
	assert_int_equal(occurrences(up, "\"call_id\":\"call_ls\",\"name\":\"local_shell\""), 1);
	assert_int_equal(occurrences(up, "{\"type\":\"function_call_output\",\"call_id\":\"call_ls\",\"output\":\"README.md\"}"), 1);
	assert_int_equal(occurrences(up, "now the tests"), 1);
}

/*
 * The other calls a Responses request holds (custom tools, a web search, a
 * local shell) are carried upstream with their outputs: when the model made
 * them through the proxy (the recorded reply goes up), and when they come
 * in a client's history the proxy never saw (the request's own items).
 */
static void test_proxy_items__every_kind_of_call_is_carried(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *p = NULL;
	char *up;

	cfg.quiet = true;
	cfg.budget = 100000;
	assert_cmv_ok(proxy_new(&p, ts->repo, &cfg));
	free(exchange(p, "kinds", USER("patch it"), WEB_CALL "," CUSTOM_CALL));
	free(exchange(p, "kinds", USER("patch it") "," WEB_CALL "," CUSTOM_CALL "," CUSTOM_OUT, SHELL_CALL));
	const char *all = USER("patch it") "," WEB_CALL "," CUSTOM_CALL "," CUSTOM_OUT "," SHELL_CALL "," SHELL_OUT
		"," USER("now the tests");
	carried(up = exchange(p, "kinds", all, NULL));
	free(up);
	/* the same history, new to the proxy */
	carried(up = exchange(p, "kinds-resumed", all, NULL));
	free(up);
	/* the API's own shape for a local shell's output names the call by "id": paired the same */
	const char *by_id = USER("patch it") "," WEB_CALL "," CUSTOM_CALL "," CUSTOM_OUT "," SHELL_CALL
		",{\"type\":\"local_shell_call_output\",\"id\":\"call_ls\",\"output\":\"README.md\"}," USER("now the tests");
	carried(up = exchange(p, "kinds-by-id", by_id, NULL));
	free(up);

	size_t refs[2] = { 0, 0 };
	assert_cmv_ok(cmv_ref_foreach(ts->repo, count_refs, refs));
	assert_int_equal(refs[0], 3);
	assert_int_equal(refs[1], 0);
	proxy_free(p);
}

/*
 * Codex's developer items, as Codex 0.171.0 sends them
 * (data/client-requests/codex.json: its base instructions, permissions and
 * collaboration mode as `developer` messages in `input`, an id and metadata
 * of its own on each, no `instructions`). The create_time is one cJSON
 * alone would print as another double.
 */
#define DEV_BASE                                                                                              \
	"{\"type\":\"message\",\"id\":\"msg_a372fb49\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\"," \
	"\"text\":\"You are a coding agent running in the Codex CLI.\"}],"                                     \
	"\"internal_chat_message_metadata_passthrough\":{\"content_item_kinds\":[\"model.base_instructions\"]}}"
#define DEV_PERM                                                                                                  \
	"{\"type\":\"message\",\"id\":\"msg_01a24a60\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\","     \
	"\"text\":\"<skills_instructions>No skills.</skills_instructions>\"},{\"type\":\"input_text\","                \
	"\"text\":\"<permissions instructions>Commands run in /src/orchard only.</permissions instructions>\"}],"     \
	"\"internal_chat_message_metadata_passthrough\":{\"turn_id\":\"01a24a60-8c53\",\"create_time\":1796567324.4575198}}"
#define DEV_MODE                                                                                                  \
	"{\"type\":\"message\",\"id\":\"msg_01a24a61\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\","     \
	"\"text\":\"<collaboration_mode>Plan before you act.</collaboration_mode>\"}],"                                \
	"\"internal_chat_message_metadata_passthrough\":{\"turn_id\":\"01a24a61-0001\"}}"
#define ENV USER("<environment_context><cwd>/src/orchard</cwd></environment_context>")

/* The index of the first item of input equal to the JSON text want, or -1. */
static int index_of(const cJSON *input, const char *want)
{
	cJSON *w = cJSON_Parse(want);
	int at = -1;
	assert_non_null(w);
	for (int i = 0; i < cJSON_GetArraySize(input) && at < 0; i++)
		if (cJSON_Compare(cJSON_GetArrayItem(input, i), w, true))
			at = i;
	cJSON_Delete(w);
	return at;
}

/* An upstream body's input, printed; the body parsed into *body. */
static char *input_text(cJSON **body, const char *up)
{
	*body = cJSON_Parse(up);
	assert_non_null(*body);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(*body, "input");
	assert_true(cJSON_IsArray(input));
	char *t = cJSON_PrintUnformatted(input);
	assert_non_null(t);
	return t;
}

/* Whether input a (printed) is where input b (printed) begins: b repeats a's items and adds after them. */
static bool extends(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n > 1 && !strncmp(a, b, n - 1) && (b[n - 1] == ',' || b[n - 1] == ']');
}

/*
 * A Codex session through the proxy: its developer items go upstream in
 * `input`, whole (id and metadata included) and where Codex put them, one
 * at a turn's start too; nothing moved to `instructions`, nothing twice.
 * Each request's input begins with the one before it (the prompt cache).
 * An import of the same items as a Codex rollout renders the same input,
 * and another provider gets them as system prompts.
 */
static void test_proxy_items__developer_items_in_place(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *p = NULL;
	cJSON *b[3];
	char *in[3], *up;

	cfg.quiet = true;
	cfg.budget = 100000;
	assert_cmv_ok(proxy_new(&p, ts->repo, &cfg));
#define IN1 DEV_BASE "," DEV_PERM "," ENV "," USER("Count the trees.")
#define CALL1 FCALL("call_wc", "exec_command", "{\\\"cmd\\\":\\\"wc -l trees.txt\\\"}")
#define IN2 IN1 "," CALL1 "," FOUT("call_wc", "9 trees.txt")
#define IN3 IN2 "," ASST("There are 9 trees.") "," DEV_MODE "," USER("And the plums?")
	up = exchange(p, "dev", IN1, CALL1);
	in[0] = input_text(&b[0], up);
	free(up);
	up = exchange(p, "dev", IN2, ASST("There are 9 trees."));
	in[1] = input_text(&b[1], up);
	free(up);
	up = exchange(p, "dev", IN3, NULL);
	in[2] = input_text(&b[2], up);
	assert_int_equal(occurrences(up, "You are a coding agent"), 1);
	assert_int_equal(occurrences(up, "Commands run in /src/orchard only."), 1);
	assert_int_equal(occurrences(up, "Plan before you act."), 1);
	/* a number as Codex wrote it (cJSON alone prints this one 1796567324.45752, another double) */
	assert_int_equal(occurrences(up, "\"create_time\":1796567324.4575198}"), 1);
	free(up);
	for (int k = 0; k < 3; k++) {
		const cJSON *input = cJSON_GetObjectItemCaseSensitive(b[k], "input");
		assert_null(cJSON_GetObjectItemCaseSensitive(b[k], "instructions"));
		assert_int_equal(index_of(input, DEV_BASE), 0);
		assert_int_equal(index_of(input, DEV_PERM), 1);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, 2), "role")), "user");
		if (k > 0 && !extends(in[k - 1], in[k]))
			fail_msg("request %d's input does not begin with request %d's:\n%s\n%s", k + 1, k, in[k - 1], in[k]);
	}
	/* the new turn's developer item: after the answer, before the prompt */
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(b[2], "input");
	int mode = index_of(input, DEV_MODE);
	assert_true(mode > 3);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, mode - 1), "role")),
			    "assistant");
	char *after = cJSON_PrintUnformatted(cJSON_GetArrayItem(input, mode + 1));
	assert_non_null(strstr(after, "And the plums?"));
	cJSON_free(after);
	assert_int_equal(mode + 2, cJSON_GetArraySize(input));

	/* the same items imported from a Codex rollout: the same input */
	cmv_buf file = CMV_BUF_INIT(1 << 20), body = CMV_BUF_INIT(1 << 22);
	cJSON *items = cJSON_Parse("[" IN3 "]");
	assert_non_null(items);
	assert_cmv_ok(cmv_buf_puts(&file, "{\"timestamp\":\"2026-12-06T10:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{"
					  "\"id\":\"7f8091a2-b3c4-4d5e-8f60-718293a4b5c6\",\"timestamp\":\"2026-12-06T10:00:00.000Z\","
					  "\"cwd\":\"/src/orchard\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\","
					  "\"source\":\"exec\",\"model_provider\":\"openai\"}}\n"));
	for (const cJSON *it = items->child; it; it = it->next) {
		char *t = cJSON_PrintUnformatted(it);
		assert_cmv_ok(cmv_buf_printf(&file, "{\"timestamp\":\"2026-12-06T10:00:01.000Z\",\"type\":\"response_item\",\"payload\":%s}\n", t));
		cJSON_free(t);
	}
	cJSON_Delete(items);
	char *path = test_write_file(ts->dir, "rollout-7f8091a2.jsonl", file.ptr, file.size);
	cmv_import_result res;
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_render_stats rst;
	assert_cmv_ok(cmv_import_file(&res, ts->repo, path, "codex", NULL));
	free(path);
	ro.flags = CMV_RENDER_NO_DECORATIONS;
	assert_cmv_ok(cmv_render(&body, &rst, ts->repo, &res.head, CMV_RENDER_OPENAI_RESPONSES, &ro));
	cJSON *imported = cJSON_Parse(body.ptr);
	assert_non_null(imported);
	if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(imported, "input"), input, true)) {
		char *t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(imported, "input"));
		fail_msg("imported:\n%s\nthrough the proxy:\n%s", t, in[2]);
	}
	cJSON_Delete(imported);

	/* another provider: the proxy's record gives them as system prompts, none in the messages */
	cmv_id tip;
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, PROXY_BRANCH_PREFIX "dev"));
	cmv_buf_clear(&body);
	assert_cmv_ok(cmv_render(&body, &rst, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &ro));
	cJSON *anth = cJSON_Parse(body.ptr);
	char *sys = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(anth, "system"));
	char *msgs = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(anth, "messages"));
	assert_non_null(sys);
	assert_non_null(strstr(sys, "You are a coding agent"));
	assert_non_null(strstr(sys, "Commands run in /src/orchard only."));
	assert_non_null(strstr(sys, "Plan before you act."));
	assert_null(strstr(msgs, "developer"));
	assert_null(strstr(msgs, "Plan before you act."));
	assert_non_null(strstr(msgs, "And the plums?"));
	cJSON_free(sys);
	cJSON_free(msgs);
	cJSON_Delete(anth);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&body);
	for (int k = 0; k < 3; k++) {
		cJSON_free(in[k]);
		cJSON_Delete(b[k]);
	}
	proxy_free(p);
}

/*
 * On a small budget, turn after turn of long outputs: the turns that hold
 * the developer items leave the window, their items do not (they instruct,
 * as `instructions` did): each in its place, once, in every request.
 */
static void test_proxy_items__developer_items_never_paged_out(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *p = NULL;
	proxy_turn *t = NULL;
	cmv_buf in = CMV_BUF_INIT(1 << 24), big = CMV_BUF_INIT(1 << 20), req = CMV_BUF_INIT(1 << 24);
	size_t evicted = 0;

	cfg.quiet = true;
	cfg.budget = 6000;
	assert_cmv_ok(proxy_new(&p, ts->repo, &cfg));
	for (int i = 0; i < 120; i++)
		assert_cmv_ok(cmv_buf_printf(&big, "line %d of the build log: compiled src/unit_%d.c in %d ms\\n", i, i * 7, 10 + i % 13));
	assert_cmv_ok(cmv_buf_puts(&in, DEV_BASE "," DEV_PERM "," ENV));
	for (int k = 0; k < 12 && evicted < 2; k++) {
		char id[32];
		snprintf(id, sizeof(id), "call_b%d", k);
		/* the second turn begins with a developer item of its own */
		assert_cmv_ok(cmv_buf_printf(&in, "%s," USER("build step %d"), k == 1 ? "," DEV_MODE : "", k));
		cmv_buf rep = CMV_BUF_INIT(1 << 20);
		assert_cmv_ok(cmv_buf_printf(&rep, FCALL("%s", "exec_command", "{\\\"cmd\\\":\\\"make\\\"}"), id));
		free(exchange(p, "dev-paged", in.ptr, rep.ptr));
		assert_cmv_ok(cmv_buf_printf(&in, ",%s,", rep.ptr));
		assert_cmv_ok(cmv_buf_printf(&in, FOUT("%s", "%s"), id, big.ptr));
		cmv_buf_dispose(&rep);

		size_t len = 0;
		bool again = false;
		cmv_buf_clear(&req);
		assert_cmv_ok(cmv_buf_printf(&req, "{\"model\":\"gpt-5\",\"prompt_cache_key\":\"dev-paged\",\"store\":false," TOOLS
						   ",\"input\":[%s]}", in.ptr));
		assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_RESPONSES, NULL, req.ptr, req.size));
		const char *up = proxy_turn_upstream(t, &len);
		assert_non_null(up);
		char *upc = strndup(up, len);
		cJSON *body = cJSON_Parse(upc);
		const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
		assert_int_equal(index_of(input, DEV_BASE), 0);
		assert_int_equal(index_of(input, DEV_PERM), 1);
		assert_int_equal(occurrences(upc, "You are a coding agent"), 1);
		assert_int_equal(occurrences(upc, "Commands run in /src/orchard only."), 1);
		if (k >= 1) {
			int mode = index_of(input, DEV_MODE);
			assert_true(mode > 1);
			assert_int_equal(occurrences(upc, "Plan before you act."), 1);
			/* in its place: before the prompt of its turn, or of the first turn that stayed */
			assert_string_equal(
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, mode + 1), "role")), "user");
		}
		assert_null(cJSON_GetObjectItemCaseSensitive(body, "instructions"));
		const char *rep2 = "{\"id\":\"resp_x\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-5\",\"output\":[" ASST("Built.") "]}";
		assert_cmv_ok(proxy_turn_reply(t, rep2, strlen(rep2), &again));
		assert_true(proxy_turn_stats_get(t)->tokens <= cfg.budget);
		evicted = proxy_turn_stats_get(t)->evicted;
		cJSON_Delete(body);
		free(upc);
		proxy_turn_free(t);
		assert_cmv_ok(cmv_buf_puts(&in, "," ASST("Built.")));
	}
	assert_true(evicted >= 2); /* both turns that brought developer items left */
	cmv_buf_dispose(&in);
	cmv_buf_dispose(&big);
	cmv_buf_dispose(&req);
	proxy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_items__a_tool_search_sent_back_is_matched, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_proxy_items__a_tool_search_across_turns_and_paging, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_proxy_items__every_kind_of_call_is_carried, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_proxy_items__developer_items_in_place, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_proxy_items__developer_items_never_paged_out, test_store_setup,
						test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
