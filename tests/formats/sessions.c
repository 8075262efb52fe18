/* SPDX-License-Identifier: MIT */
/*
 * Every agent and request format: the round trip over every file of the
 * transcripts (the curated set, or the full corpus in ../shared;
 * byte-identical export), a rendering for each provider that passes the
 * checker, the checker against hand-made bad requests, a grown file, a
 * failed import, and hostile input.
 */
#include <dirent.h>
#include <sys/stat.h>
#include "test.h"

static const char *transcripts_dir(void)
{
	return test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
}

static const cmv_render_target targets[] = { CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT,
					     CMV_RENDER_OPENAI_RESPONSES, CMV_RENDER_GEMINI };

/* Render `tip` for every provider; each rendering passes the checker. */
static void render_all(cmv_repo *repo, const cmv_id *tip, const char *what, cmv_render_stats *anthropic_stats)
{
	cmv_buf body = CMV_BUF_INIT(1u << 30), problems = CMV_BUF_INIT(1 << 20);
	for (size_t t = 0; t < sizeof(targets) / sizeof(*targets); t++) {
		cmv_render_stats st;
		cmv_buf_clear(&problems);
		assert_cmv_ok(cmv_render(&body, &st, repo, tip, targets[t], NULL));
		int n = cmv_check_request(&problems, targets[t], body.ptr, body.size);
		if (n != 0)
			fail_msg("%s rendered for %s breaks %d rules:\n%s", what, cmv_render_target_name(targets[t]), n,
				 problems.size ? problems.ptr : "");
		assert_true(st.messages > 0);
		if (t == 0 && anthropic_stats)
			*anthropic_stats = st;
		/* deterministic: the same branch gives the same bytes */
		cmv_buf again = CMV_BUF_INIT(1u << 30);
		assert_cmv_ok(cmv_render(&again, NULL, repo, tip, targets[t], NULL));
		assert_int_equal(again.size, body.size);
		assert_memory_equal(again.ptr, body.ptr, body.size);
		cmv_buf_dispose(&again);
	}
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
}

static size_t files_seen;

static void round_trip_dir(cmv_repo *repo, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	cmv_buf path = CMV_BUF_INIT(4096), file = CMV_BUF_INIT(1u << 30), back = CMV_BUF_INIT(1u << 30);

	assert_non_null(d);
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || strstr(e->d_name, "__metadata.json") || !strcmp(e->d_name, "MANIFEST.md") ||
		    !strcmp(e->d_name, "NOTICE.md"))
			continue;
		cmv_buf_clear(&path);
		cmv_buf_printf(&path, "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path.ptr, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			round_trip_dir(repo, path.ptr);
			continue;
		}
		/* the format is told from the content, and matches the folder it came from */
		const char *format = NULL;
		assert_cmv_ok(cmv_format_detect(&format, path.ptr));
		if (!strstr(path.ptr, format))
			fail_msg("%s detected as %s", path.ptr, format);

		cmv_import_result res;
		cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
		opts.branch = "rt";
		opts.flags = CMV_IMPORT_FORCE;
		assert_cmv_ok(cmv_import_file(&res, repo, path.ptr, NULL, &opts));
		assert_string_equal(res.format, format);
		assert_true(res.records > 0);
		assert_int_equal(res.skipped, 0);

		test_read_file(&file, path.ptr);
		cmv_buf_clear(&back);
		assert_cmv_ok(cmv_export_session(repo, res.session, test_buf_writer, &back));
		if (back.size != file.size || memcmp(back.ptr, file.ptr, file.size))
			fail_msg("%s: export is not byte-identical (%zu bytes back of %zu)", path.ptr, back.size, file.size);

		/* the same file again changes nothing */
		cmv_import_result again;
		assert_cmv_ok(cmv_import_file(&again, repo, path.ptr, NULL, &opts));
		assert_int_equal(again.outcome, CMV_IMPORT_UNCHANGED);

		render_all(repo, &res.head, path.ptr, NULL);
		files_seen++;
	}
	closedir(d);
	cmv_buf_dispose(&path);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
}

static void test_round_trip_every_transcript(void **state)
{
	test_store *s = *state;
	round_trip_dir(s->repo, transcripts_dir());
	print_message("%zu files round trip\n", files_seen);
	if (test_transcripts_full(transcripts_dir()))
		assert_true(files_seen >= 29); /* 14 Claude Code, 4 Codex, 1 Copilot, 2 Gemini CLI, 4 SWE-agent, 4 OpenHands */
	else
		assert_true(files_seen >= 12); /* 5 Claude Code, 1 Codex, 1 Copilot, 2 Gemini CLI, 1 SWE-agent, 2 OpenHands */
}

/* The rendering of a file's branch for one provider. */
static void render_file(cmv_buf *body, cmv_render_stats *st, cmv_repo *repo, const char *rel, cmv_render_target t)
{
	cmv_buf path = CMV_BUF_INIT(4096);
	cmv_import_result res;
	cmv_buf_printf(&path, "%s/%s", transcripts_dir(), rel);
	assert_cmv_ok(cmv_import_file(&res, repo, path.ptr, NULL, NULL));
	assert_cmv_ok(cmv_render(body, st, repo, &res.head, t, NULL));
	assert_int_equal(cmv_check_request(NULL, t, body->ptr, body->size), 0);
	cmv_buf_dispose(&path);
}

static void test_cross_provider(void **state)
{
	test_store *s = *state;
	cmv_buf body = CMV_BUF_INIT(1u << 30);
	cmv_render_stats st;

	/* Claude Code to OpenAI: tool results become tool messages; thinking cannot go */
	render_file(&body, &st, s->repo, "claude-code/entireio-cli/64-267478c135-0__8897bd54-16f4-4a28-8e23-cb187c639e40.jsonl",
		    CMV_RENDER_OPENAI_CHAT);
	assert_non_null(strstr(body.ptr, "\"role\":\"tool\""));
	assert_null(strstr(body.ptr, "\"thinking\""));
	assert_true(st.dropped_thinking > 0);
	/* ...and to Anthropic its thinking stays, signed, with one cache marker at the end */
	render_file(&body, &st, s->repo, "claude-code/entireio-cli/64-267478c135-0__8897bd54-16f4-4a28-8e23-cb187c639e40.jsonl",
		    CMV_RENDER_ANTHROPIC);
	assert_non_null(strstr(body.ptr, "\"signature\""));
	assert_int_equal(st.dropped_thinking, 0);
	assert_non_null(strstr(body.ptr, "\"cache_control\""));

	/* Codex to Anthropic: the base instructions are the system prompt; calls are tool_use blocks */
	render_file(&body, &st, s->repo, "codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl",
		    CMV_RENDER_ANTHROPIC);
	assert_non_null(strstr(body.ptr, "\"system\":[{\"type\":\"text\",\"text\":\"You are Codex"));
	assert_non_null(strstr(body.ptr, "\"type\":\"tool_use\""));
	/* the two calls of the aborted turn are answered with an error result */
	assert_int_equal(st.answered_calls, 2);
	assert_non_null(strstr(body.ptr, "no result was recorded"));

	/* a compaction: only what follows it is rendered, unless asked for all */
	cmv_buf path = CMV_BUF_INIT(4096);
	cmv_import_result res;
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_render_stats full;
	/* every session with a compaction is over 1 MB: the curated set has none */
	if (!test_transcript(&path, transcripts_dir(),
			     "claude-code/entireio-cli/91-b42542f24f-0__53ea1606-cf60-417b-928a-068324ecc7b3.jsonl",
			     "rendering what follows a compaction")) {
		cmv_buf_dispose(&path);
		cmv_buf_dispose(&body);
		return;
	}
	assert_cmv_ok(cmv_import_file(&res, s->repo, path.ptr, NULL, NULL));
	assert_cmv_ok(cmv_render(&body, &st, s->repo, &res.head, CMV_RENDER_ANTHROPIC, NULL));
	assert_int_equal(st.compactions, 1);
	ro.flags = CMV_RENDER_FULL_HISTORY | CMV_RENDER_NO_DECORATIONS;
	assert_cmv_ok(cmv_render(&body, &full, s->repo, &res.head, CMV_RENDER_ANTHROPIC, &ro));
	assert_true(full.messages > st.messages);
	assert_null(strstr(body.ptr, "cache_control"));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, body.ptr, body.size), 0);
	cmv_buf_dispose(&path);
	cmv_buf_dispose(&body);
}

/* ---- the checker against bad requests -------------------------------------------- */

static void expect_problem(cmv_render_target t, const char *json, const char *needle)
{
	cmv_buf problems = CMV_BUF_INIT(1 << 20);
	int n = cmv_check_request(&problems, t, json, strlen(json));
	if (n <= 0 || !problems.size || !strstr(problems.ptr, needle))
		fail_msg("%s body was not refused for '%s' (%d problems: %s)\n%s", cmv_render_target_name(t), needle, n,
			 problems.size ? problems.ptr : "", json);
	cmv_buf_dispose(&problems);
}

static void expect_clean(cmv_render_target t, const char *json)
{
	cmv_buf problems = CMV_BUF_INIT(1 << 20);
	int n = cmv_check_request(&problems, t, json, strlen(json));
	if (n != 0)
		fail_msg("a good %s body was refused: %s", cmv_render_target_name(t), problems.size ? problems.ptr : "");
	cmv_buf_dispose(&problems);
}

#define USE(id) "{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":\"Bash\",\"input\":{}}"
#define RES(id) "{\"type\":\"tool_result\",\"tool_use_id\":\"" id "\",\"content\":\"ok\"}"

static void test_checker_anthropic(void **state)
{
	const cmv_render_target A = CMV_RENDER_ANTHROPIC;
	(void)state;
	expect_clean(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
			"{\"role\":\"assistant\",\"content\":[" USE("t1") "]},{\"role\":\"user\",\"content\":[" RES("t1") "]}]}");
	/* an orphaned result */
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[" RES("t9") "]}]}",
		       "unexpected tool_use_id t9");
	/* a call whose result is not in the next message */
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":["
			  USE("t1") "]},{\"role\":\"user\",\"content\":\"and?\"}]}",
		       "without tool_result blocks immediately after: t1");
	/* a result before its call */
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[" RES("t1") "]},{\"role\":\"assistant\",\"content\":["
			  USE("t1") "]}]}",
		       "unexpected tool_use_id t1");
	/* empty message, empty text block, two user messages in a row */
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[]}]}", "empty content");
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\" \"}]}]}",
		       "empty text block");
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
		       "two user messages in a row");
	/* results after other content; thinking with no signature; thinking in a user message */
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":["
			  USE("t1") "]},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}," RES("t1") "]}]}",
		       "results come first");
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":["
			  "{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":\"text\",\"text\":\"x\"}]}]}",
		       "without its signature");
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s\"}]}]}",
		       "thinking in a user message");
	expect_problem(A, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":["
			  "{\"type\":\"tool_use\",\"id\":\"a.b\",\"name\":\"x\",\"input\":{}}]},{\"role\":\"user\",\"content\":["
			  "{\"type\":\"tool_result\",\"tool_use_id\":\"a.b\",\"content\":\"\"}]}]}",
		       "does not match");
	expect_problem(A, "{\"messages\":[]}", "messages: missing or empty");
	assert_cmv_fails_with(CMV_EINVALID, cmv_check_request(NULL, A, "[1", 2));
}

static void test_checker_openai(void **state)
{
	const cmv_render_target C = CMV_RENDER_OPENAI_CHAT, R = CMV_RENDER_OPENAI_RESPONSES;
	(void)state;
	expect_clean(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
			"[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
			"{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}]}");
	expect_problem(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
			  "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
			  "{\"role\":\"user\",\"content\":\"next\"}]}",
		       "must be followed by tool messages");
	expect_problem(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"tool\",\"tool_call_id\":\"c9\",\"content\":\"x\"}]}",
		       "did not call");
	expect_problem(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", "empty user message");
	expect_problem(C, "{\"messages\":[{\"role\":\"assistant\",\"content\":null}]}", "neither content nor tool_calls");
	expect_problem(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
			  "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]},"
			  "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}]}",
		       "arguments must be a JSON object");

	expect_clean(R, "{\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}]},"
			"{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"e\"},"
			"{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
			"{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"ok\"}]}");
	expect_problem(R, "{\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"ok\"}]}",
		       "no call found for output with call_id c1");
	expect_problem(R, "{\"input\":[{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
		       "call c1 has no output");
	expect_problem(R, "{\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"}]},"
			  "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"e\"}]}",
		       "without its required following item");
	expect_problem(R, "{\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[]}]}", "empty message");
}

static void test_checker_gemini(void **state)
{
	const cmv_render_target G = CMV_RENDER_GEMINI;
	(void)state;
	expect_clean(G, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
			"{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"g\",\"args\":{}}}]},"
			"{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":{}}},{\"functionResponse\":{\"name\":\"g\",\"response\":{}}}]}]}");
	expect_problem(G, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
			  "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"g\",\"args\":{}}}]},"
			  "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":{}}}]}]}",
		       "is equal to the number of function call parts");
	expect_problem(G, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":{}}}]}]}",
		       "comes immediately after a function call turn");
	expect_problem(G, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
			  "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},"
			  "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"g\",\"response\":{}}}]}]}",
		       "is for g, but the call in that place is f");
	expect_problem(G, "{\"contents\":[{\"role\":\"user\",\"parts\":[]}]}", "no parts");
	expect_problem(G, "{\"contents\":[{\"role\":\"model\",\"parts\":[{\"text\":\"x\"}]}]}", "first turn must be a user turn");
}

/* ---- import edge cases ----------------------------------------------------------- */

static const char codex_head[] =
	"{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{\"id\":\"0199-test\",\"base_instructions\":{\"text\":\"Be brief.\"}}}\n"
	"{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"list files\"}]}}\n"
	"{\"timestamp\":\"t\",\"type\":\"event_msg\",\"payload\":{\"type\":\"user_message\",\"message\":\"list files\"}}\n"
	"{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"function_call\",\"name\":\"exec_command\",\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\",\"call_id\":\"call_1\"}}\n";
static const char codex_tail[] =
	"{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"a.c\\nb.c\"}}\n"
	"{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Two files.\"}]}}\n";

static void test_grown_file(void **state)
{
	test_store *s = *state;
	char *dir = test_tmpdir();
	cmv_buf all = CMV_BUF_INIT(1 << 20), back = CMV_BUF_INIT(1 << 20);
	cmv_import_result res;

	char *path = test_write_file(dir, "rollout.jsonl", codex_head, strlen(codex_head));
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, NULL, NULL));
	assert_string_equal(res.format, "codex");
	assert_string_equal(res.session, "codex/0199-test");
	assert_string_equal(res.branch, "0199-test");
	assert_int_equal(res.outcome, CMV_IMPORT_CREATED);
	assert_int_equal(res.records, 4);
	uint64_t rows = test_total_rows(s->repo);
	cmv_id first_head = res.head;

	/* the agent wrote two more lines: only they (and a new manifest) are added */
	cmv_buf_puts(&all, codex_head);
	cmv_buf_puts(&all, codex_tail);
	free(path);
	path = test_write_file(dir, "rollout.jsonl", all.ptr, all.size);
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, NULL, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UPDATED);
	uint64_t grown = test_total_rows(s->repo) - rows;
	assert_true(grown > 0);
	/* two records with their blobs, one chunk listing six records, one manifest: 17 rows */
	assert_true(grown <= 20);
	/* the records already there are shared, not rewritten */
	assert_int_equal(cmv_is_ancestor(s->repo, &first_head, &res.head), 1);
	assert_cmv_ok(cmv_export_session(s->repo, "codex/0199-test", test_buf_writer, &back));
	assert_int_equal(back.size, all.size);
	assert_memory_equal(back.ptr, all.ptr, all.size);

	/* the same bytes again: nothing to do; but a deleted branch is made again */
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, NULL, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UNCHANGED);
	assert_int_equal(res.records, 6);
	cmv_id head = res.head;
	assert_cmv_ok(cmv_ref_delete(s->repo, "0199-test"));
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, NULL, NULL));
	cmv_ref *br = NULL;
	assert_cmv_ok(cmv_ref_lookup(&br, s->repo, "0199-test"));
	assert_true(cmv_id_equal(&br->target, &head));
	cmv_ref_free(br);

	/* the branch renders as a clean request for each provider */
	render_all(s->repo, &res.head, "codex sample", NULL);
	cmv_buf body = CMV_BUF_INIT(1 << 20);
	assert_cmv_ok(cmv_render(&body, NULL, s->repo, &res.head, CMV_RENDER_OPENAI_CHAT, NULL));
	assert_non_null(strstr(body.ptr, "{\"role\":\"system\",\"content\":\"Be brief.\"}"));
	assert_non_null(strstr(body.ptr, "\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\""));
	assert_non_null(strstr(body.ptr, "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a.c\\nb.c\"}"));
	/* the event_msg copy of the prompt is not sent twice */
	assert_null(strstr(strstr(body.ptr, "list files") + 1, "list files"));
	cmv_buf_dispose(&body);

	cmv_buf_dispose(&all);
	cmv_buf_dispose(&back);
	free(path);
	test_rmdir(dir);
	free(dir);
}

static void test_failed_import_changes_nothing(void **state)
{
	test_store *s = *state;
	char *dir = test_tmpdir();
	cmv_buf bad = CMV_BUF_INIT(1 << 20), back = CMV_BUF_INIT(1 << 20);
	cmv_import_result res;
	cmv_import_options lenient = CMV_IMPORT_OPTIONS_INIT;

	cmv_buf_puts(&bad, codex_head);
	cmv_buf_puts(&bad, "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\n");
	cmv_buf_puts(&bad, codex_tail);
	char *path = test_write_file(dir, "bad.jsonl", bad.ptr, bad.size);
	uint64_t rows = test_total_rows(s->repo);
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_file(&res, s->repo, path, "codex", NULL));
	assert_error_mentions("bad.jsonl:5: malformed JSON record");
	assert_int_equal(test_total_rows(s->repo), rows);

	/* lenient: the bad line is kept as an opaque event, listed, and the file still comes back whole */
	lenient.flags = CMV_IMPORT_LENIENT;
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, "codex", &lenient));
	assert_int_equal(res.skipped, 1);
	assert_int_equal(res.skipped_lines[0], 5);
	assert_false(res.partial_tail);
	assert_cmv_ok(cmv_export_session(s->repo, res.session, test_buf_writer, &back));
	assert_int_equal(back.size, bad.size);
	assert_memory_equal(back.ptr, bad.ptr, bad.size);

	/* a last line cut off mid-write is left for next time */
	cmv_buf_clear(&bad);
	cmv_buf_puts(&bad, codex_head);
	cmv_buf_puts(&bad, "{\"timestamp\":\"t\",\"type\":\"resp");
	free(path);
	path = test_write_file(dir, "cut.jsonl", bad.ptr, bad.size);
	lenient.flags = 0;
	lenient.branch = "cut";
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, "codex", &lenient));
	assert_true(res.partial_tail);
	assert_int_equal(res.records, 4);

	/* a document: a broken element fails naming the line */
	const char doc[] = "{\n  \"sessionId\": \"g1\",\n  \"messages\": [\n    {\"type\": \"user\", \"content\": \"hi\"},\n    {\"type\": }\n  ]\n}\n";
	free(path);
	path = test_write_file(dir, "session.json", doc, strlen(doc));
	rows = test_total_rows(s->repo);
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_file(&res, s->repo, path, "gemini-cli", NULL));
	assert_error_mentions("session.json");
	assert_int_equal(test_total_rows(s->repo), rows);

	cmv_buf_dispose(&bad);
	cmv_buf_dispose(&back);
	free(path);
	test_rmdir(dir);
	free(dir);
}

static void test_hostile_input(void **state)
{
	test_store *s = *state;
	char *dir = test_tmpdir();
	cmv_buf b = CMV_BUF_INIT(200u << 20);
	cmv_import_result res;
	uint64_t rows = test_total_rows(s->repo);

	/* nesting 100,000 deep */
	cmv_buf_puts(&b, "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":");
	for (int i = 0; i < 100000; i++)
		cmv_buf_putc(&b, '[');
	cmv_buf_puts(&b, "\n");
	char *path = test_write_file(dir, "deep.jsonl", b.ptr, b.size);
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_file(&res, s->repo, path, "codex", NULL));
	assert_error_mentions("deep.jsonl:1");
	free(path);

	/* invalid UTF-8 inside a string */
	const char utf[] = "{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{\"id\":\"x\"}}\n"
			   "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":\"\xff\xfe\"}}\n";
	path = test_write_file(dir, "utf.jsonl", utf, strlen(utf));
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_file(&res, s->repo, path, "codex", NULL));
	assert_error_mentions("utf.jsonl:2: invalid UTF-8");
	free(path);

	/* a 100 MB string: over the 64 MiB default cap, refused before anything is read into the store */
	cmv_buf_clear(&b);
	cmv_buf_puts(&b, "{\"type\":\"user.message\",\"id\":\"1\",\"data\":{\"content\":\"");
	size_t at = b.size;
	assert_cmv_ok(cmv_buf_grow(&b, at + (100u << 20) + 64));
	memset(b.ptr + at, 'a', 100u << 20);
	b.size = at + (100u << 20);
	cmv_buf_puts(&b, "\"}}\n");
	path = test_write_file(dir, "big.jsonl", b.ptr, b.size);
	assert_cmv_fails_with(CMV_ETOOBIG, cmv_import_file(&res, s->repo, path, "copilot-cli", NULL));
	assert_error_mentions("big.jsonl:1: a record of");
	free(path);
	assert_int_equal(test_total_rows(s->repo), rows);

	/* wrong types: kept, exported back whole, and rendered without them */
	const char types[] = "{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{\"id\":7}}\n"
			     "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":\"a string\"}\n"
			     "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":42}}\n"
			     "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"function_call\",\"name\":[],\"arguments\":{}}}\n"
			     "{\"timestamp\":\"t\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"real\"}]}}\n";
	cmv_buf back = CMV_BUF_INIT(1 << 20);
	path = test_write_file(dir, "types.jsonl", types, strlen(types));
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, "codex", NULL));
	assert_cmv_ok(cmv_export_session(s->repo, res.session, test_buf_writer, &back));
	assert_int_equal(back.size, strlen(types));
	assert_memory_equal(back.ptr, types, back.size);
	render_all(s->repo, &res.head, "wrong types", NULL);
	free(path);

	cmv_buf_dispose(&back);
	cmv_buf_dispose(&b);
	test_rmdir(dir);
	free(dir);
}

static void test_detect(void **state)
{
	char *dir = test_tmpdir();
	const char *f;
	static const struct {
		const char *content, *want;
	} cases[] = {
		{ "{\"role\":\"user\",\"content\":\"x\"}\n", "cmv" },
		{ "{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{}}\n", "codex" },
		{ "{\"type\":\"session.start\",\"data\":{},\"id\":\"1\",\"parentId\":null}\n", "copilot-cli" },
		{ "{\"type\":\"user\",\"sessionId\":\"s\",\"uuid\":\"u\"}\n", "claude-code" },
		{ "{\n  \"sessionId\": \"s\",\n  \"messages\": []\n}\n", "gemini-cli" },
		{ "{\n \"environment\": \"e\", \"trajectory\": [], \"history\": []\n}\n", "swe-agent" },
		{ "[\n {\"id\": 0, \"source\": \"user\", \"action\": \"message\"}\n]\n", "openhands" },
		{ "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "anthropic" },
		{ "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "openai-chat" },
		{ "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"x\"}]}", "openai-responses" },
		{ "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}", "gemini" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		/* a misleading name: the content decides */
		char *path = test_write_file(dir, "full.jsonl", cases[i].content, strlen(cases[i].content));
		assert_cmv_ok(cmv_format_detect(&f, path));
		assert_string_equal(f, cases[i].want);
		free(path);
	}
	char *path = test_write_file(dir, "x.json", "{\"a\":1}", 7);
	assert_cmv_fails_with(CMV_EINVALID, cmv_format_detect(&f, path));
	assert_error_mentions("cannot tell the format");
	free(path);
	test_rmdir(dir);
	free(dir);
}

/* Request bodies imported as sessions: the system prompt, outside the records, is read back. */
static void test_request_bodies(void **state)
{
	test_store *s = *state;
	char *dir = test_tmpdir();
	cmv_import_result res;
	cmv_buf body = CMV_BUF_INIT(1 << 20), back = CMV_BUF_INIT(1 << 20);
	const char anthropic[] = "{\n  \"model\": \"claude-sonnet-4-5\",\n  \"max_tokens\": 100,\n  \"messages\": [\n"
				 "    {\"role\": \"user\", \"content\": \"What is in /tmp?\"},\n"
				 "    {\"role\": \"assistant\", \"content\": [{\"type\": \"tool_use\", \"id\": \"toolu_1\", \"name\": \"ls\", \"input\": {\"path\": \"/tmp\"}}]},\n"
				 "    {\"role\": \"user\", \"content\": [{\"type\": \"tool_result\", \"tool_use_id\": \"toolu_1\", \"content\": \"a\"}]}\n"
				 "  ],\n  \"system\": \"You list files.\"\n}\n";
	char *path = test_write_file(dir, "req.json", anthropic, strlen(anthropic));
	assert_cmv_ok(cmv_import_file(&res, s->repo, path, NULL, NULL));
	assert_string_equal(res.format, "anthropic");
	assert_int_equal(res.records, 3);
	assert_cmv_ok(cmv_export_session(s->repo, res.session, test_buf_writer, &back));
	assert_int_equal(back.size, strlen(anthropic));
	assert_memory_equal(back.ptr, anthropic, back.size);
	assert_cmv_ok(cmv_render(&body, NULL, s->repo, &res.head, CMV_RENDER_GEMINI, NULL));
	assert_non_null(strstr(body.ptr, "\"systemInstruction\":{\"parts\":[{\"text\":\"You list files.\"}]}"));
	assert_non_null(strstr(body.ptr, "\"functionResponse\":{\"id\":\"toolu_1\",\"name\":\"ls\",\"response\":{\"output\":\"a\"}}"));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_GEMINI, body.ptr, body.size), 0);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&back);
	free(path);
	test_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_every_transcript, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_cross_provider, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_checker_anthropic),
		cmocka_unit_test(test_checker_openai),
		cmocka_unit_test(test_checker_gemini),
		cmocka_unit_test_setup_teardown(test_grown_file, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_failed_import_changes_nothing, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_input, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_detect),
		cmocka_unit_test_setup_teardown(test_request_bodies, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
