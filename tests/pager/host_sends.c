/* SPDX-License-Identifier: MIT */
/*
 * What a host really sends, counted (docs/tokenizers.md, "What the hosts send
 * beside the transcript"), on small synthetic sessions:
 * - Claude Code's microcompaction: the results a microcompact_boundary lists
 *   are rendered (and so counted) as the stub Claude Code sends, whole only
 *   in the full history;
 * - Claude Code starting again (/exit and a resume, a new version) begins a
 *   segment of calls: the hidden prefix is taken again, no pair spans it;
 * - a Codex reply's reasoning is charged within its turn as the
 *   reasoning_output_tokens its token_count recorded, and no longer once a
 *   user message starts the next turn;
 * - a Codex rollout's token_count events feed the calibration (the curated
 *   rollout): pairs, a factor near 1 (o200k is exact for gpt-5.x).
 */
#include <math.h>
#include "test.h"
#include "formats/formats_int.h"
#include "pager/pager_int.h"

static cmv_models *models;
static cmv_tok *o200k;

static int group_setup(void **state)
{
	(void)state;
	if (cmv_models_load(&models, NULL) < 0 || cmv_tok_load(&o200k, "o200k_base", NULL) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cmv_tok_free(o200k);
	cmv_models_free(models);
	return 0;
}

/* Import a file written from `text` and hand back the branch's tip. */
static cmv_id import_text(test_store *ts, const char *name, const char *text)
{
	cmv_import_result res;
	cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
	char *path = test_write_file(ts->dir, name, text, strlen(text));
	o.branch = name;
	assert_cmv_ok(cmv_import_file(&res, ts->repo, path, NULL, &o));
	free(path);
	return res.head;
}

/* The node whose record is the line holding `needle` (the first such), walking to tip. */
static cmv_id node_before(cmv_repo *repo, const cmv_id *tip, const char *needle)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	cmv_id prev, found;
	memset(&prev, 0, sizeof(prev));
	found = prev;
	assert_cmv_ok(cmv_walk_new(&w, repo, tip));
	while (cmv_id_is_none(&found) && cmv_walk_next(&n, w) == 0) {
		const char *format;
		if (cmv_formats__session_record_bytes(&rec, &format, repo, n, false) == 0 &&
		    cmv_buf_putc(&rec, '\0') == 0 && strstr(rec.ptr, needle))
			found = prev;
		cmv_error_clear();
		prev = n->id;
	}
	cmv_walk_free(w);
	cmv_buf_dispose(&rec);
	assert_false(cmv_id_is_none(&found));
	return found;
}

static uint64_t sent(cmv_repo *repo, const cmv_id *at, const char *model_id, uint64_t *thinking)
{
	const cmv_model *m = NULL;
	cmv_token_stats st;
	assert_cmv_ok(cmv_models_find(&m, models, model_id));
	assert_cmv_ok(cmv_pager__count_sent_live(&st, repo, at, m, o200k));
	if (thinking)
		*thinking = st.thinking;
	return st.total;
}

/* ---- Claude Code ------------------------------------------------------------------- */

#define CC_LINE(uuid, parent, version, body)                                                                      \
	"{\"parentUuid\":" parent ",\"isSidechain\":false,\"sessionId\":\"hs\",\"version\":\"" version "\",\"uuid\":\"" uuid \
	"\"," body "}\n"
#define CC_USAGE(n) "\"usage\":{\"input_tokens\":" #n ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":9}"
#define CC_MODEL "\"model\":\"claude-opus-4-5-20251101\""

static char *cc_session(void)
{
	/* a result of some 4,000 tokens, which the microcompaction clears */
	cmv_buf big = CMV_BUF_INIT(1 << 20), file = CMV_BUF_INIT(1 << 22);
	cmv_buf_printf(&big, "quetzal ");
	for (int i = 0; i < 800; i++)
		cmv_buf_printf(&big, "line %d of the file that was read once ", i);
	cmv_buf_printf(&file, "%s",
		       CC_LINE("u1", "null", "2.1.12", "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"read it\"}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("a1", "\"u1\"", "2.1.12",
			       "\"type\":\"assistant\",\"message\":{\"id\":\"msg_1\"," CC_MODEL ",\"role\":\"assistant\","
			       "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"Read\",\"input\":{\"file_path\":\"/a\"}}],"
			       CC_USAGE(20000) "}"));
	cmv_buf_printf(&file,
		       "{\"parentUuid\":\"a1\",\"isSidechain\":false,\"sessionId\":\"hs\",\"version\":\"2.1.12\",\"uuid\":\"r1\","
		       "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
		       "\"tool_use_id\":\"toolu_A\",\"content\":\"%s\"}]}}\n",
		       big.ptr);
	cmv_buf_printf(&file, "%s",
		       CC_LINE("a2", "\"r1\"", "2.1.12",
			       "\"type\":\"assistant\",\"message\":{\"id\":\"msg_2\"," CC_MODEL ",\"role\":\"assistant\","
			       "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"Read\",\"input\":{\"file_path\":\"/b\"}}],"
			       CC_USAGE(25000) "}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("r2", "\"a2\"", "2.1.12",
			       "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
			       "\"tool_use_id\":\"toolu_B\",\"content\":\"a small result kept whole\"}]}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("m1", "\"r2\"", "2.1.12",
			       "\"type\":\"system\",\"subtype\":\"microcompact_boundary\",\"content\":\"Context microcompacted\","
			       "\"microcompactMetadata\":{\"trigger\":\"auto\",\"preTokens\":25000,\"tokensSaved\":4000,"
			       "\"compactedToolIds\":[\"toolu_A\"],\"clearedAttachmentUUIDs\":[]}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("a3", "\"m1\"", "2.1.12",
			       "\"type\":\"assistant\",\"message\":{\"id\":\"msg_3\"," CC_MODEL ",\"role\":\"assistant\","
			       "\"content\":[{\"type\":\"text\",\"text\":\"Both read.\"}]," CC_USAGE(21100) "}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("u2", "\"a3\"", "2.1.12",
			       "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"<command-name>/exit</command-name>\\n"
			       "<command-message>exit</command-message>\"}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("u3", "\"u2\"", "2.1.12",
			       "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"and now?\"}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("a4", "\"u3\"", "2.1.12",
			       "\"type\":\"assistant\",\"message\":{\"id\":\"msg_4\"," CC_MODEL ",\"role\":\"assistant\","
			       "\"content\":[{\"type\":\"text\",\"text\":\"Now this.\"}]," CC_USAGE(31000) "}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("u4", "\"a4\"", "2.1.13",
			       "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"a newer Claude Code\"}"));
	cmv_buf_printf(&file, "%s",
		       CC_LINE("a5", "\"u4\"", "2.1.13",
			       "\"type\":\"assistant\",\"message\":{\"id\":\"msg_5\"," CC_MODEL ",\"role\":\"assistant\","
			       "\"content\":[{\"type\":\"text\",\"text\":\"Again.\"}]," CC_USAGE(35000) "}"));
	char *s = strdup(file.ptr);
	cmv_buf_dispose(&big);
	cmv_buf_dispose(&file);
	return s;
}

static void test_host_sends__claude_code_microcompaction_is_rendered_as_sent(void **state)
{
	test_store *ts = *state;
	char *text = cc_session();
	cmv_id tip = import_text(ts, "cc-micro", text);
	cmv_buf body = CMV_BUF_INIT(1 << 24);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	/* what the running Claude Code sent after the boundary: the listed result as its stub, the other whole */
	ro.flags = CMV_RENDER_NO_DECORATIONS | CMV__RENDER_STUB_CLEARED;
	assert_cmv_ok(cmv_render(&body, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &ro));
	assert_non_null(strstr(body.ptr, "[Old tool result content cleared]"));
	assert_null(strstr(body.ptr, "line 400 of the file"));
	assert_non_null(strstr(body.ptr, "a small result kept whole"));
	/* what is sent now (and what a resumed Claude Code sends): the result whole */
	ro.flags = CMV_RENDER_NO_DECORATIONS;
	assert_cmv_ok(cmv_render(&body, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &ro));
	assert_non_null(strstr(body.ptr, "line 400 of the file"));
	assert_null(strstr(body.ptr, "[Old tool result content cleared]"));
	/* the full history keeps what the session file keeps */
	ro.flags = CMV_RENDER_NO_DECORATIONS | CMV_RENDER_FULL_HISTORY;
	assert_cmv_ok(cmv_render(&body, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &ro));
	assert_non_null(strstr(body.ptr, "line 400 of the file"));
	assert_null(strstr(body.ptr, "[Old tool result content cleared]"));
	/* counted as sent: before the boundary the result is whole, after it some 4,000 tokens less */
	cmv_id before2 = node_before(ts->repo, &tip, "\"msg_2\""), before3 = node_before(ts->repo, &tip, "\"msg_3\"");
	uint64_t c2 = sent(ts->repo, &before2, "claude-opus-4-5", NULL), c3 = sent(ts->repo, &before3, "claude-opus-4-5", NULL);
	assert_true(c2 > 4000);
	assert_true(c3 + 3000 < c2);
	/* counted for sending now: whole */
	const cmv_model *m = NULL;
	cmv_token_stats st;
	assert_cmv_ok(cmv_models_find(&m, models, "claude-opus-4-5"));
	assert_cmv_ok(cmv_count_sent(&st, ts->repo, &before3, m, o200k));
	assert_true(st.total > c3 + 3000);
	cmv_buf_dispose(&body);
	free(text);
}

/*
 * A cleared result is paged out, not gone: recall --query (the pager's
 * query path) finds a word only it holds, from the branch (then from its
 * kept index) and without one, while what was billed keeps the stub.
 */
static void test_host_sends__claude_code_cleared_results_are_found_by_query(void **state)
{
	test_store *ts = *state;
	char *text = cc_session();
	cmv_id tip = import_text(ts, "cc-query", text);
	cmv_buf out = CMV_BUF_INIT(1 << 24);
	const cmv_model *m = NULL;
	size_t n = 0;
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	assert_cmv_ok(cmv_models_find(&m, models, "claude-opus-4-5"));
	assert_cmv_ok(cmv_recall_query(&out, &n, ts->repo, &tip, NULL, m, o200k, "quetzal", 20000));
	assert_true(n >= 1);
	assert_non_null(strstr(out.ptr, "quetzal line 0 of the file"));
	for (int i = 0; i < 2; i++) { /* the index built, then read back */
		assert_cmv_ok(cmv_recall_query(&out, &n, ts->repo, &tip, "cc-query", m, o200k, "quetzal", 20000));
		assert_true(n >= 1);
		assert_non_null(strstr(out.ptr, "quetzal line 0 of the file"));
	}
	/* counted as the running Claude Code sent it */
	ro.flags = CMV_RENDER_NO_DECORATIONS | CMV__RENDER_STUB_CLEARED;
	assert_cmv_ok(cmv_render(&out, NULL, ts->repo, &tip, CMV_RENDER_ANTHROPIC, &ro));
	assert_null(strstr(out.ptr, "quetzal"));
	assert_true(sent(ts->repo, &tip, "claude-opus-4-5", NULL) < 2000);
	cmv_buf_dispose(&out);
	free(text);
}

static void test_host_sends__claude_code_restart_begins_a_segment(void **state)
{
	test_store *ts = *state;
	char *text = cc_session();
	cmv_id tip = import_text(ts, "cc-restart", text);
	cmv_billed_call *calls = NULL;
	size_t n = 0;

	assert_cmv_ok(cmv_billed_calls(&calls, &n, ts->repo, &tip, models));
	assert_int_equal(n, 5);
	assert_string_equal(calls[0].id, "msg_1");
	/* the microcompaction is no new segment (the prompt fell by less than a third) */
	assert_int_equal(calls[1].segment, calls[0].segment);
	assert_int_equal(calls[2].segment, calls[0].segment);
	/* after /exit, Claude Code started again: its system prompt is built anew */
	assert_int_equal(calls[3].segment, calls[2].segment + 1);
	/* a resume by another version of Claude Code: the same */
	assert_int_equal(calls[4].segment, calls[3].segment + 1);
	free(calls);
	free(text);
}

/* ---- Codex --------------------------------------------------------------------------- */

#define CX_LINE(type, payload) "{\"timestamp\":\"2026-06-18T00:57:05.559Z\",\"type\":\"" type "\",\"payload\":" payload "}\n"
#define CX_USAGE(input, reasoning, total)                                                                             \
	CX_LINE("event_msg", "{\"type\":\"token_count\",\"info\":{\"total_token_usage\":{\"input_tokens\":" #input \
		",\"output_tokens\":50,\"reasoning_output_tokens\":" #reasoning ",\"total_tokens\":" #total "},"        \
		"\"last_token_usage\":{\"input_tokens\":" #input ",\"output_tokens\":50,\"reasoning_output_tokens\":" #reasoning \
		",\"total_tokens\":" #input "},\"model_context_window\":258400}}")

static const char codex_rollout[] =
	CX_LINE("session_meta", "{\"id\":\"019ed836-0000-7000-8000-00000000cafe\",\"timestamp\":\"2026-06-18T00:52:03.755Z\","
				"\"cwd\":\"/w\",\"originator\":\"codex-tui\",\"cli_version\":\"0.140.0\",\"source\":\"cli\","
				"\"model_provider\":\"openai\"}")
	CX_LINE("event_msg", "{\"type\":\"task_started\",\"turn_id\":\"t1\",\"model_context_window\":258400}")
	CX_LINE("turn_context", "{\"turn_id\":\"t1\",\"cwd\":\"/w\",\"model\":\"gpt-5.5\"}")
	CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"list the files\"}]}")
	CX_LINE("event_msg", "{\"type\":\"user_message\",\"message\":\"list the files\"}")
	CX_LINE("response_item", "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"REDACTED\"}")
	CX_LINE("response_item", "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"call_1\"}")
	CX_LINE("response_item", "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"a.c\\nb.c\"}")
	CX_USAGE(10000, 700, 10750)
	/* a repeated token_count is no new call: its reasoning is not charged twice */
	CX_USAGE(10000, 700, 10750)
	CX_LINE("response_item", "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"REDACTED\"}")
	CX_LINE("response_item", "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":\"{\\\"cmd\\\":\\\"wc a.c\\\"}\",\"call_id\":\"call_2\"}")
	CX_LINE("response_item", "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":\"3 a.c\"}")
	CX_USAGE(10760, 300, 21860)
	CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Two files.\"}]}")
	CX_USAGE(11100, 0, 33010)
	CX_LINE("event_msg", "{\"type\":\"task_complete\",\"turn_id\":\"t1\"}")
	CX_LINE("event_msg", "{\"type\":\"task_started\",\"turn_id\":\"t2\",\"model_context_window\":258400}")
	CX_LINE("turn_context", "{\"turn_id\":\"t2\",\"cwd\":\"/w\",\"model\":\"gpt-5.5\"}")
	CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"thanks\"}]}")
	CX_LINE("event_msg", "{\"type\":\"user_message\",\"message\":\"thanks\"}");

static void test_host_sends__codex_reasoning_is_charged_within_its_turn(void **state)
{
	test_store *ts = *state;
	cmv_id tip = import_text(ts, "cx", codex_rollout);
	uint64_t th;

	/* before the turn's first reply: nothing carried */
	cmv_id at = node_before(ts->repo, &tip, "\"call_id\":\"call_1\"}");
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 0);
	/* before the second call: the first reply's reasoning, once (its usage was logged twice) */
	at = node_before(ts->repo, &tip, "\"wc a.c");
	uint64_t with = sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 700);
	/* before the third: both replies' reasoning */
	at = node_before(ts->repo, &tip, "Two files.");
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 1000);
	/* the next turn: the provider no longer bills it */
	uint64_t after = sent(ts->repo, &tip, "gpt-5.5", &th);
	assert_int_equal(th, 0);
	assert_true(after < with + 1000);
	/* another provider's request carries no reasoning item: nothing charged */
	at = node_before(ts->repo, &tip, "Two files.");
	(void)sent(ts->repo, &at, "claude-opus-4-5", &th);
	assert_int_equal(th, 0);
}

/* A usage line with computed figures (CX_USAGE takes literals). */
static void cx_usage(cmv_buf *b, unsigned input, unsigned reasoning, unsigned total)
{
	cmv_buf_printf(b,
		       "{\"timestamp\":\"2026-06-18T00:57:05.559Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"token_count\","
		       "\"info\":{\"total_token_usage\":{\"input_tokens\":%u,\"output_tokens\":50,\"reasoning_output_tokens\":%u,"
		       "\"total_tokens\":%u},\"last_token_usage\":{\"input_tokens\":%u,\"output_tokens\":50,"
		       "\"reasoning_output_tokens\":%u,\"total_tokens\":%u},\"model_context_window\":258400}}}\n",
		       input, reasoning, total, input, reasoning, input);
}

static void test_host_sends__codex_reasoning_reads_only_the_current_turn(void **state)
{
	/* the turn of codex_rollout, 60 times over, then one more user turn */
	test_store *ts = *state;
	cmv_buf b = CMV_BUF_INIT(1 << 22);
	unsigned total = 0, turns = 60;
	uint64_t th;
	char needle[64];

	cmv_buf_printf(&b, "%s", CX_LINE("session_meta", "{\"id\":\"019ed836-0000-7000-8000-00000000beef\",\"timestamp\":"
								  "\"2026-06-18T00:52:03.755Z\",\"cwd\":\"/w\",\"originator\":\"codex-tui\","
								  "\"cli_version\":\"0.140.0\",\"source\":\"cli\",\"model_provider\":\"openai\"}"));
	for (unsigned t = 0; t < turns; t++) {
		cmv_buf_printf(&b, "%s", CX_LINE("turn_context", "{\"cwd\":\"/w\",\"model\":\"gpt-5.5\"}"));
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
							    "\"input_text\",\"text\":\"question %u\"}]}"), t);
		cmv_buf_printf(&b, CX_LINE("event_msg", "{\"type\":\"user_message\",\"message\":\"question %u\"}"), t);
		cmv_buf_printf(&b, "%s", CX_LINE("response_item", "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"R\"}"));
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":"
							    "\"{}\",\"call_id\":\"c%u_1\"}"), t);
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"function_call_output\",\"call_id\":\"c%u_1\",\"output\":\"x\"}"), t);
		cx_usage(&b, 10000 + t, 700, total += 10750);
		cx_usage(&b, 10000 + t, 700, total); /* logged twice */
		cmv_buf_printf(&b, "%s", CX_LINE("response_item", "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"R\"}"));
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":"
							    "\"{}\",\"call_id\":\"c%u_2\"}"), t);
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"function_call_output\",\"call_id\":\"c%u_2\",\"output\":\"y\"}"), t);
		cx_usage(&b, 10760 + t, 300, total += 11110);
		cmv_buf_printf(&b, CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
							    "\"output_text\",\"text\":\"Answer %u.\"}]}"), t);
		cx_usage(&b, 11100 + t, 0, total += 11150);
	}
	/*
	 * A turn whose first usage repeats the last one before it (Codex logs
	 * usage again at a turn's start): no new call, so the reasoning item
	 * before it is not charged with that usage's figure.
	 */
	cmv_buf_printf(&b, "%s", CX_LINE("response_item", "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
								  "\"input_text\",\"text\":\"again\"}]}"));
	cmv_buf_printf(&b, "%s", CX_LINE("event_msg", "{\"type\":\"user_message\",\"message\":\"again\"}"));
	cmv_buf_printf(&b, "%s", CX_LINE("response_item", "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"R\"}"));
	cx_usage(&b, 11100, 300, total);
	cmv_buf_printf(&b, "%s", CX_LINE("response_item", "{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":"
								  "\"{}\",\"call_id\":\"last\"}"));
	assert_cmv_ok(cmv_buf_putc(&b, '\0'));
	cmv_id tip = import_text(ts, "cx-long", b.ptr);

	/* the last full turn reads as codex_rollout's one turn did */
	snprintf(needle, sizeof(needle), "\"call_id\":\"c%u_1\"}", turns - 1);
	cmv_id at = node_before(ts->repo, &tip, needle);
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 0);
	snprintf(needle, sizeof(needle), "\"call_id\":\"c%u_2\"}", turns - 1);
	at = node_before(ts->repo, &tip, needle);
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 700);
	snprintf(needle, sizeof(needle), "Answer %u.", turns - 1);
	at = node_before(ts->repo, &tip, needle);
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 1000);
	/* the repeat at the next turn's start charges nothing */
	at = node_before(ts->repo, &tip, "\"call_id\":\"last\"");
	(void)sent(ts->repo, &at, "gpt-5.5", &th);
	assert_int_equal(th, 0);
	cmv_buf_dispose(&b);
}

static void test_host_sends__codex_token_counts_feed_the_calibration(void **state)
{
	test_store *ts = *state;
	char dir[4096];
	cmv_import_result res;
	cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
	cmv_calibration c;
	size_t pairs = 0;

	snprintf(dir, sizeof(dir), "%s/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl",
		 CMV_TEST_TRANSCRIPTS);
	o.branch = "a3";
	assert_cmv_ok(cmv_import_file(&res, ts->repo, dir, NULL, &o));
	assert_cmv_ok(cmv_calibrate(&pairs, ts->repo, &res.head, res.session, models));
	assert_true(pairs >= 5);
	assert_cmv_ok(cmv_calibration_get(&c, ts->repo, "gpt-5.4"));
	assert_int_equal(c.pairs, pairs);
	assert_true(c.requests >= 5);
	/* o200k is gpt-5.4's own tokenizer: what is left is framing, not a factor */
	assert_true(fabs(c.factor - 1.0) < 0.03);
	/* whole requests, the turn's reasoning charged: within 3% of what was billed */
	assert_true(c.err_max < 0.03);
	assert_true(c.err_p50 > -0.03);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_sends__claude_code_microcompaction_is_rendered_as_sent,
						test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_host_sends__claude_code_cleared_results_are_found_by_query,
						test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_host_sends__claude_code_restart_begins_a_segment, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_host_sends__codex_reasoning_is_charged_within_its_turn,
						test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_host_sends__codex_reasoning_reads_only_the_current_turn,
						test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_host_sends__codex_token_counts_feed_the_calibration,
						test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("host_sends", tests, group_setup, group_teardown);
}
