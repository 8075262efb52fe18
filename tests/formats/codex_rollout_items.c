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
#include <locale.h>
#include <stdlib.h>
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

#define SID "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4"
#define LINE_SEARCH 3
#define LINE_SHELL 5
#define LINE_SHELL_OUT 6

/* A session's first two lines, for the small rollouts of single cases below. */
#define META_LINE \
	"{\"timestamp\":\"2026-12-01T10:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"" SID "\",\"timestamp\":\"2026-12-01T10:00:00.000Z\",\"cwd\":\"/src/orchard\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\",\"source\":\"exec\",\"model_provider\":\"openai\"}}"
#define CONTEXT_LINE \
	"{\"timestamp\":\"2026-12-01T10:00:01.000Z\",\"type\":\"turn_context\",\"payload\":{\"turn_id\":\"turn-1\",\"cwd\":\"/src/orchard\",\"model\":\"gpt-5.5\",\"summary\":\"auto\"}}"

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

/* Import lines (n of them) less those in mask skip (bit i: line i) under id sid. */
static void import_lines(cmv_id *tip, cmv_buf *file, fixture *f, const char *sid, const char *const *lines, size_t n,
			 unsigned skip)
{
	char name[128];
	cmv_import_result res;

	cmv_buf_clear(file);
	for (size_t i = 0; i < n; i++) {
		if (skip & (1u << i))
			continue;
		for (const char *p = lines[i], *at; *p; p = at + strlen(SID)) {
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

static void import_rollout(cmv_id *tip, cmv_buf *file, fixture *f, const char *sid, unsigned skip)
{
	import_lines(tip, file, f, sid, rollout_lines, N_LINES, skip);
}

/* A line's payload, or one of its members. */
static cJSON *line_payload(const char *line, const char *member)
{
	cJSON *j = cJSON_Parse(line);
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

static cJSON *payload(size_t i, const char *member)
{
	return line_payload(rollout_lines[i], member);
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

/*
 * Codex's developer messages (its permissions, its collaboration mode) go in
 * the Responses input where they were, as Codex 0.171.0 sends them
 * (data/client-requests/codex.json: developer items in `input`, no
 * `instructions`); session_meta's base instructions stay `instructions`.
 * Other providers have them as system prompts. After a compaction Codex
 * sends its replacement history, its developer item in its place.
 */
#define DEV_SID "6e7f8091-a2b3-4c4d-9e5f-60718293a4b5"
static const char *const dev_lines[] = {
	"{\"timestamp\":\"2026-12-02T08:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"" SID "\",\"timestamp\":\"2026-12-02T08:00:00.000Z\",\"cwd\":\"/src/orchard\",\"originator\":\"codex_exec\",\"cli_version\":\"0.171.0\",\"source\":\"exec\",\"model_provider\":\"openai\",\"base_instructions\":{\"text\":\"You help look after an orchard.\"}}}",
	"{\"timestamp\":\"2026-12-02T08:00:01.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"<permissions instructions>Commands run in /src/orchard only.</permissions instructions>\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"@LONG@\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:03.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"There are 9 apple trees.\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:04.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"<collaboration_mode>Plan before you act.</collaboration_mode>\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:05.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"And the plums?\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:06.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"5 plum trees.\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:07.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"And the cherries?\"}]}}",
	"{\"timestamp\":\"2026-12-02T08:00:08.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"3 cherry trees.\"}]}}",
};
#define N_DEV (sizeof(dev_lines) / sizeof(*dev_lines))
#define DEV_1 1
#define DEV_2 4
#define DEV_LONG 2

/* The developer rollout, its long prompt written out (a turn big enough to be paged out), plus extra lines. */
static void import_dev(cmv_id *tip, cmv_buf *file, fixture *f, const char *sid, const char *const *extra, size_t n_extra)
{
	const char *lines[N_DEV + 4];
	cmv_buf longp = CMV_BUF_INIT(1 << 20);
	const char *at = strstr(dev_lines[DEV_LONG], "@LONG@");

	assert_true(n_extra <= 4);
	assert_cmv_ok(cmv_buf_put(&longp, dev_lines[DEV_LONG], (size_t)(at - dev_lines[DEV_LONG])));
	for (int i = 0; i < 300; i++)
		assert_cmv_ok(cmv_buf_printf(&longp, "Row %d holds apple tree number %d, planted in spring. ", i, i + 1));
	assert_cmv_ok(cmv_buf_puts(&longp, at + strlen("@LONG@")));
	for (size_t i = 0; i < N_DEV; i++)
		lines[i] = i == DEV_LONG ? longp.ptr : dev_lines[i];
	for (size_t i = 0; i < n_extra; i++)
		lines[N_DEV + i] = extra[i];
	import_lines(tip, file, f, sid, lines, N_DEV + n_extra, 0);
	cmv_buf_dispose(&longp);
}

/* The index of the first input item equal to want, or -1. */
static int find_item(const cJSON *input, const cJSON *want)
{
	for (int i = 0; i < cJSON_GetArraySize(input); i++)
		if (cJSON_Compare(cJSON_GetArrayItem(input, i), want, true))
			return i;
	return -1;
}

static void test_items__developer_in_place(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_render_stats st;
	cmv_id tip;

	import_dev(&tip, &file, f, DEV_SID, NULL, 0);
	cJSON *body = render_checked(f, &tip, CMV_RENDER_OPENAI_RESPONSES, &st);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
	cJSON *d1 = line_payload(dev_lines[DEV_1], NULL), *d2 = line_payload(dev_lines[DEV_2], NULL);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(body, "instructions")->valuestring, "You help look after an orchard.");
	assert_int_equal(find_item(input, d1), 0);
	assert_int_equal(find_item(input, d2), 3);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(input, 4), "role")->valuestring, "user");
	cJSON_Delete(body);

	/* another provider: both are system prompts, after the base instructions */
	body = render_checked(f, &tip, CMV_RENDER_ANTHROPIC, &st);
	char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "system"));
	assert_non_null(strstr(s, "Commands run in /src/orchard only."));
	assert_non_null(strstr(s, "Plan before you act."));
	cJSON_free(s);
	s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "messages"));
	assert_null(strstr(s, "developer"));
	assert_null(strstr(s, "Plan before you act."));
	cJSON_free(s);
	cJSON_Delete(body);

	/* a compaction: what Codex sends next is its replacement history, the developer item in its place */
	static const char *const compacted[] = {
		"{\"timestamp\":\"2026-12-02T08:00:09.000Z\",\"type\":\"compacted\",\"payload\":{\"message\":\"\",\"replacement_history\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"And the plums?\"}]},{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"<permissions instructions>Commands run in /src/orchard only, again.</permissions instructions>\"}]},{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Summary: 9 apple, 5 plum, 3 cherry trees.\"}]}]}}",
		"{\"timestamp\":\"2026-12-02T08:00:10.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Thanks.\"}]}}",
	};
	import_dev(&tip, &file, f, "6e7f8091-a2b3-4c4d-9e5f-000000000001", compacted, 2);
	body = render_checked(f, &tip, CMV_RENDER_OPENAI_RESPONSES, &st);
	input = cJSON_GetObjectItemCaseSensitive(body, "input");
	cJSON *hist = line_payload(compacted[0], "replacement_history");
	assert_int_equal(find_item(input, cJSON_GetArrayItem(hist, 1)), 1);
	assert_int_equal(find_item(input, d1), -1);
	assert_int_equal(find_item(input, d2), -1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(body, "instructions")->valuestring, "You help look after an orchard.");
	cJSON_Delete(hist);
	cJSON_Delete(body);
	cJSON_Delete(d1);
	cJSON_Delete(d2);
	cmv_buf_dispose(&file);
}

/* The pager pages the first turn out but not its developer item: in `instructions` it never left either. */
static void test_items__developer_never_paged_out(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), out = CMV_BUF_INIT(1 << 22);
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep;
	cmv_id tip;

	cmv_materialize_report_init(&rep);
	import_dev(&tip, &file, f, DEV_SID, NULL, 0);
	o.keep_turns = 1;
	o.target = CMV_RENDER_OPENAI_RESPONSES;
	assert_cmv_ok(cmv_materialize(&out, &rep, f->repo, &tip, gpt, tok, &o));
	assert_int_equal(rep.evicted, 0);
	o.budget = rep.tokens_full / 3;
	assert_cmv_ok(cmv_materialize(&out, &rep, f->repo, &tip, gpt, tok, &o));
	assert_true(rep.evicted >= 1);

	cJSON *body = cJSON_Parse(out.ptr), *d1 = line_payload(dev_lines[DEV_1], NULL), *d2 = line_payload(dev_lines[DEV_2], NULL);
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
	assert_non_null(body);
	assert_null(strstr(out.ptr, "planted in spring"));
	assert_non_null(strstr(out.ptr, "paged out; recall"));
	assert_int_equal(find_item(input, d1), 0);
	assert_true(find_item(input, d2) > 0);
	cJSON_Delete(body);
	cJSON_Delete(d1);
	cJSON_Delete(d2);
	cmv_materialize_report_dispose(&rep);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&out);
}

/*
 * A host program that set a locale whose decimal point is ',' (de_DE) gets
 * JSON all the same: a search whose action holds a number cJSON alone
 * would print as another double is imported and sent whole with the
 * number as written ("1796567324,4575198" was invalid JSON). The locale is
 * built for the test with localedef (Debian's `locales`, which
 * scripts/setup installs); without it the test fails, it does not skip.
 */
static void test_items__numbers_in_a_decimal_comma_locale(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_render_stats st;
	cmv_id tip;
	char cmd[1024];
	static const char *const lines[] = {
		META_LINE,
		CONTEXT_LINE,
		"{\"timestamp\":\"2026-12-01T10:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Frost dates?\"}]}}",
		"{\"timestamp\":\"2026-12-01T10:00:03.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"web_search_call\",\"id\":\"ws_9d2e\",\"status\":\"completed\",\"action\":{\"type\":\"search\",\"query\":\"last frost date\",\"create_time\":1796567324.4575198,\"score\":0.5}}}",
		"{\"timestamp\":\"2026-12-01T10:00:04.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Mid April.\"}]}}",
	};

	snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' 2>&1", f->dir);
	if (system(cmd) != 0)
		fail_msg("localedef could not build de_DE.UTF-8 (Debian's locales package; scripts/setup installs it)");
	setenv("LOCPATH", f->dir, 1);
	if (!setlocale(LC_ALL, "de_DE.UTF-8") || strcmp(localeconv()->decimal_point, ","))
		fail_msg("the de_DE.UTF-8 locale built under %s could not be set", f->dir);
	import_lines(&tip, &file, f, SID, lines, sizeof(lines) / sizeof(*lines), 0);
	cmv_buf body = CMV_BUF_INIT(1 << 24), problems = CMV_BUF_INIT(1 << 20);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	ro.flags = CMV_RENDER_NO_DECORATIONS;
	int rendered = cmv_render(&body, &st, f->repo, &tip, CMV_RENDER_OPENAI_RESPONSES, &ro);
	setlocale(LC_ALL, "C");
	unsetenv("LOCPATH");
	assert_cmv_ok(rendered);
	if (cmv_check_request(&problems, CMV_RENDER_OPENAI_RESPONSES, body.ptr, body.size) != 0)
		fail_msg("rendered in de_DE: %s", problems.ptr);
	assert_non_null(strstr(body.ptr, "\"create_time\":1796567324.4575198"));
	assert_non_null(strstr(body.ptr, "\"score\":0.5"));
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	cmv_buf_dispose(&file);
}

/* A developer item with no text is no system prompt for other providers (Gemini refuses an empty part). */
static void test_items__blank_developer_item(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_render_stats st;
	cmv_id tip;
	static const char *const lines[] = {
		META_LINE,
		CONTEXT_LINE,
		"{\"timestamp\":\"2026-12-01T10:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"\"}]}}",
		"{\"timestamp\":\"2026-12-01T10:00:02.500Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"developer\",\"content\":\" \\n\"}}",
		"{\"timestamp\":\"2026-12-01T10:00:03.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Frost dates?\"}]}}",
		"{\"timestamp\":\"2026-12-01T10:00:04.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Mid April.\"}]}}",
	};

	import_lines(&tip, &file, f, SID, lines, sizeof(lines) / sizeof(*lines), 0);
	static const cmv_render_target all[] = { CMV_RENDER_GEMINI, CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT,
						 CMV_RENDER_OPENAI_RESPONSES };
	for (size_t t = 0; t < sizeof(all) / sizeof(*all); t++) {
		cJSON *b = render_checked(f, &tip, all[t], &st);
		char *s = cJSON_PrintUnformatted(b);
		if (strstr(s, "\"text\":\"\"") || strstr(s, "\"text\":\" \\n\""))
			fail_msg("%s: a blank developer item sent as text: %s", cmv_render_target_name(all[t]), s);
		assert_non_null(strstr(s, "Frost dates?"));
		cJSON_free(s);
		cJSON_Delete(b);
	}
	cmv_buf_dispose(&file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_items__import_export_byte_for_byte, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__web_search_sent_as_recorded, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__shell_output_by_id_paired, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__web_search_counted, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__developer_in_place, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__developer_never_paged_out, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__numbers_in_a_decimal_comma_locale, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_items__blank_developer_item, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: codex rollout items", tests, load_models, free_models);
}
