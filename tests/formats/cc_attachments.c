/* SPDX-License-Identifier: MIT */
/*
 * Claude Code `attachment` records (2.1.328 writes them: skill listings,
 * nested CLAUDE.md, hook context, edited files), each with `rendered`, the
 * text sent to the model for it, and `renderedRole`. A session written for
 * the project in the shape /work/shared/reference/real-clients.md describes
 * (no sample in the corpus has attachments) is imported and exported byte
 * for byte; the rendered requests hold each attachment's text in its place
 * and role and pass the checker; the stored and rendered counts count it as
 * text (not unsent); trim keeps it verbatim. An attachment with no
 * `rendered` (older versions) or an empty one stays an event. Also the
 * thinking rule of count_anthropic: a signed thinking block with empty text
 * is charged by its signature's length (tests/tok/thinking_fit.py).
 */
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

/*
 * The session, one record a line; "@SID@" is its session id. Written by a
 * script for this test: records of every kind the import tells apart, a
 * thinking block stored as empty text and a 1200-byte signature, an
 * attachment over trim's threshold (a5), one from an older version with no
 * `rendered` (a6) and one that rendered to nothing (a7).
 */
static const char *const session_lines[] = {
	"{\"type\":\"queue-operation\",\"operation\":\"enqueue\",\"timestamp\":\"2026-12-02T10:00:00.000Z\",\"sessionId\":\"@SID@\",\"content\":\"Fix the failing test in src/parser.c\"}",
	"{\"parentUuid\":null,\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"skill_listing\",\"skillCount\":2},\"rendered\":\"<system-reminder>\\nThe following skills are available for use with the Skill tool:\\n\\n- pdf: Extract text and tables from PDF files.\\n- xlsx: Read and write spreadsheets.\\n</system-reminder>\",\"renderedRole\":\"user\",\"uuid\":\"a1\",\"timestamp\":\"2026-12-02T10:00:01.000Z\"}",
	"{\"parentUuid\":\"a1\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Fix the failing test in src/parser.c\"},\"promptId\":\"p1\",\"turnOrigin\":\"user\",\"turnPosition\":0,\"uuid\":\"u1\",\"timestamp\":\"2026-12-02T10:00:02.000Z\"}",
	"{\"parentUuid\":\"u1\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"nested_memory\",\"path\":\"/repo/src/CLAUDE.md\"},\"rendered\":\"<system-reminder>\\nContents of /repo/src/CLAUDE.md (project instructions, checked into the codebase):\\n\\n# src\\nAlways run `make check` after editing \\\"parser.y\\\".\\n</system-reminder>\",\"renderedRole\":\"user\",\"uuid\":\"a2\",\"timestamp\":\"2026-12-02T10:00:03.000Z\"}",
	"{\"parentUuid\":\"a2\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"output_style\",\"style\":\"Explanatory\"},\"rendered\":\"Output style: Explanatory. Explain the reasoning behind each change in two sentences.\",\"renderedRole\":\"system\",\"uuid\":\"a3\",\"timestamp\":\"2026-12-02T10:00:04.000Z\"}",
	"{\"parentUuid\":\"a3\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-5\",\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"ikdYnwfF2HHenTE5zATZGKmbzZwsykk3NNueRnLqa3NV+L4b9ZtWJUkDlxE7Bwv389ckrfBruB+qb6tS7Albwru2CpE6sFh1MvekNbxMoYgwRIimORH7MKe/avRqje6kVcPXj/54C9mealPvlgQBOmxv8SdE0UtkhqvTLSLHEz9okHDkUatRrt8rGABV1uiiSnManOGjiraD6ZQrlqfdgT0OBhV2dLrl7tqTPuFYUzQ1h2KqZ/bySNgf2cMf/N4mVNjmn0BqVTNCZkReiddQ3vZTDXmWCFxfZWDrDU6LgrEYnMbRDSOG3olhn6fOG0NYogJe4Cf4k1m2OC3NjPUyb194JqqMtRfY9311KrQSXyqSjMOjtvf5qBiWiNY26yurM+8Guq9ydaSqq3ofzl7mZPwUgKqcKY7HrY6ukLpoh7REF/vMRnC+YtFcdnks/KUGuXrqxrQIOLnWP2ugwcC8GRhC8gPBwoBfnbMMKcgRq8GjrNd6+Ujm6N1Zh/HpnZ6OVayFU+pDJcix0/VsUTkvFwmmab5pMfPhq5NBQb0kU/mHOD/w1Sy2VeXICWeo6cIZAFfYc3MvqNRlt4vGJCey5cQSLCuEj4lA45UlKAd1QHxOG8vAD71K1/Pr+sIVHPH7JA8/z5zZ46LEUooGTxkG5qDZNOkIgQOYitfJaY11c0UtrOG2PucAu940U0KIT8+kX3Y3HL3iKIJecBio5U4kFL9Tn8ezI3gvRFbvE4N3I2oOHG49XGY9T7C9HbRQaEvBrgCTy2r05zzJ5MJgG0PkC20ScrSljPwj5PNQP860T99XqtsxUEDHZ8K45X9aXCCWWKBi+XyxC/XPNrVY/9bx7WvBvqqy5UofUZv71EhxmvQiDdWajLcgVECzPwCDAsYnLgK7N77AI4Ur7E9n47ezDvWVlqVv/JZv+GO6G2rbPHKSJW4L4U0Ur3i5uNR2Ca5nZ/Q1obRSxrzUzGDZ5ddJOpRhaR5JwrPPMWixKfgrS3110d5LxnBLungjEI50hlUFGA9Z/6Pa6vbCIQXh+SweH63IRkLAb3VShH2LF5pEXGbX6BQr8gIdHHP7jRjMyxovFsR+Uk1JStMY2dqZG3jnHPnmJkD0maw3gTQT6+8k5+DfMUh28gQqO6iM0KQu2fhqNKSMKKSLM4GZxlEY1gV/uL0zVcKTFM686yJ0km3KtcdjV25m\"}],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":5}},\"requestId\":\"req_01\",\"uuid\":\"m1\",\"timestamp\":\"2026-12-02T10:00:05.000Z\"}",
	"{\"parentUuid\":\"m1\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-5\",\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"Read\",\"input\":{\"file_path\":\"/repo/src/parser.c\"}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,\"output_tokens\":40}},\"requestId\":\"req_01\",\"uuid\":\"m2\",\"timestamp\":\"2026-12-02T10:00:06.000Z\"}",
	"{\"parentUuid\":\"m2\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"toolu_01\",\"type\":\"tool_result\",\"content\":\"1\\t/* generated by bison from parser.y */\\n2\\tint parse(const char *s);\\n\"}]},\"toolUseResult\":{\"type\":\"text\",\"file\":{\"filePath\":\"/repo/src/parser.c\",\"numLines\":2}},\"uuid\":\"r1\",\"timestamp\":\"2026-12-02T10:00:07.000Z\"}",
	"{\"parentUuid\":\"r1\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"hook_additional_context\",\"hookName\":\"PostToolUse:Read\",\"content\":[\"parser.c is generated\"]},\"rendered\":\"<system-reminder>\\nPostToolUse:Read hook additional context: parser.c is generated from parser.y; edit the grammar instead.\\n</system-reminder>\",\"renderedRole\":\"user\",\"uuid\":\"a4\",\"timestamp\":\"2026-12-02T10:00:08.000Z\"}",
	"{\"parentUuid\":\"a4\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-5\",\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"parser.c is generated, so the fix belongs in parser.y.\"}],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":20}},\"requestId\":\"req_02\",\"uuid\":\"m3\",\"timestamp\":\"2026-12-02T10:00:09.000Z\"}",
	"{\"parentUuid\":\"m3\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-5\",\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"Edit\",\"input\":{\"file_path\":\"/repo/src/parser.y\",\"old_string\":\"expr: term\",\"new_string\":\"expr: term | expr '+' term\"}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,\"output_tokens\":60}},\"requestId\":\"req_02\",\"uuid\":\"m4\",\"timestamp\":\"2026-12-02T10:00:10.000Z\"}",
	"{\"parentUuid\":\"m4\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"toolu_02\",\"type\":\"tool_result\",\"content\":\"The file /repo/src/parser.y has been updated.\"}]},\"toolUseResult\":{\"filePath\":\"/repo/src/parser.y\"},\"uuid\":\"r2\",\"timestamp\":\"2026-12-02T10:00:11.000Z\"}",
	"{\"parentUuid\":\"r2\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"edited_text_file\",\"filename\":\"/repo/src/rules.c\",\"snippet\":\"1\\tstatic int rule_1(parser *p) { return expect(p, TOK_1); }\\n2\\tstatic int rule_2(parser *p) { return expect(p, TOK_2); }\\n3\\tstatic int rule_3(parser *p) { return expect(p, TOK_3); }\\n4\\tstatic int rule_4(parser *p) { return expect(p, TOK_4); }\\n5\\tstatic int rule_5(parser *p) { return expect(p, TOK_5); }\\n6\\tstatic int rule_6(parser *p) { return expect(p, TOK_6); }\\n7\\tstatic int rule_7(parser *p) { return expect(p, TOK_7); }\\n8\\tstatic int rule_8(parser *p) { return expect(p, TOK_8); }\\n9\\tstatic int rule_9(parser *p) { return expect(p, TOK_9); }\\n10\\tstatic int rule_10(parser *p) { return expect(p, TOK_10); }\\n11\\tstatic int rule_11(parser *p) { return expect(p, TOK_11); }\\n12\\tstatic int rule_12(parser *p) { return expect(p, TOK_12); }\\n13\\tstatic int rule_13(parser *p) { return expect(p, TOK_13); }\\n14\\tstatic int rule_14(parser *p) { return expect(p, TOK_14); }\\n15\\tstatic int rule_15(parser *p) { return expect(p, TOK_15); }\\n16\\tstatic int rule_16(parser *p) { return expect(p, TOK_16); }\\n17\\tstatic int rule_17(parser *p) { return expect(p, TOK_17); }\\n18\\tstatic int rule_18(parser *p) { return expect(p, TOK_18); }\\n19\\tstatic int rule_19(parser *p) { return expect(p, TOK_19); }\\n20\\tstatic int rule_20(parser *p) { return expect(p, TOK_20); }\\n\"},\"rendered\":\"<system-reminder>\\nNote: /repo/src/rules.c was modified, either by the user or by a linter. Don't tell the user this, since they are already aware. Here are the relevant changes (shown with line numbers):\\n1\\tstatic int rule_1(parser *p) { return expect(p, TOK_1); }\\n2\\tstatic int rule_2(parser *p) { return expect(p, TOK_2); }\\n3\\tstatic int rule_3(parser *p) { return expect(p, TOK_3); }\\n4\\tstatic int rule_4(parser *p) { return expect(p, TOK_4); }\\n5\\tstatic int rule_5(parser *p) { return expect(p, TOK_5); }\\n6\\tstatic int rule_6(parser *p) { return expect(p, TOK_6); }\\n7\\tstatic int rule_7(parser *p) { return expect(p, TOK_7); }\\n8\\tstatic int rule_8(parser *p) { return expect(p, TOK_8); }\\n9\\tstatic int rule_9(parser *p) { return expect(p, TOK_9); }\\n10\\tstatic int rule_10(parser *p) { return expect(p, TOK_10); }\\n11\\tstatic int rule_11(parser *p) { return expect(p, TOK_11); }\\n12\\tstatic int rule_12(parser *p) { return expect(p, TOK_12); }\\n13\\tstatic int rule_13(parser *p) { return expect(p, TOK_13); }\\n14\\tstatic int rule_14(parser *p) { return expect(p, TOK_14); }\\n15\\tstatic int rule_15(parser *p) { return expect(p, TOK_15); }\\n16\\tstatic int rule_16(parser *p) { return expect(p, TOK_16); }\\n17\\tstatic int rule_17(parser *p) { return expect(p, TOK_17); }\\n18\\tstatic int rule_18(parser *p) { return expect(p, TOK_18); }\\n19\\tstatic int rule_19(parser *p) { return expect(p, TOK_19); }\\n20\\tstatic int rule_20(parser *p) { return expect(p, TOK_20); }\\n</system-reminder>\",\"renderedRole\":\"user\",\"uuid\":\"a5\",\"timestamp\":\"2026-12-02T10:00:12.000Z\"}",
	"{\"parentUuid\":\"a5\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"todo\",\"content\":[],\"itemCount\":0,\"context\":\"post-compact\"},\"uuid\":\"a6\",\"timestamp\":\"2026-12-02T10:00:13.000Z\"}",
	"{\"parentUuid\":\"a6\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"attachment\",\"attachment\":{\"type\":\"already_read_file\",\"filename\":\"/repo/src/parser.y\"},\"rendered\":\"\",\"renderedRole\":\"user\",\"uuid\":\"a7\",\"timestamp\":\"2026-12-02T10:00:14.000Z\"}",
	"{\"parentUuid\":\"a7\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"/repo\",\"sessionId\":\"@SID@\",\"version\":\"2.1.328\",\"gitBranch\":\"main\",\"type\":\"assistant\",\"message\":{\"model\":\"claude-opus-5\",\"id\":\"msg_03\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Fixed: `expr` now takes sums. Run `make check` to confirm.\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":10,\"output_tokens\":20}},\"requestId\":\"req_03\",\"uuid\":\"m5\",\"timestamp\":\"2026-12-02T10:00:15.000Z\"}",
};

/* The attachments sent, by line, and the role they are sent as. */
static const struct {
	size_t line;
	const char *role;
} sent[] = { { 1, "user" }, { 3, "user" }, { 4, "system" }, { 8, "user" }, { 12, "user" } };
#define N_LINES (sizeof(session_lines) / sizeof(*session_lines))
#define N_SENT (sizeof(sent) / sizeof(*sent))
#define SIGNATURE_BYTES 1200

static const cmv_model *claude, *gpt;
static cmv_tok *tok;
static cmv_models *models;

static int load_models(void **state)
{
	(void)state;
	assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&claude, models, "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_models_find(&gpt, models, "gpt-4o"));
	assert_string_equal(claude->tokenizer, gpt->tokenizer); /* one tokenizer serves both */
	assert_cmv_ok(cmv_tok_load(&tok, claude->tokenizer, NULL));
	return 0;
}

static int free_models(void **state)
{
	(void)state;
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}

/* Line i of the session under session id sid, or, without_sent, the session less the attachments sent. */
static void session_text(cmv_buf *out, const char *sid, bool without_sent)
{
	cmv_buf_clear(out);
	for (size_t i = 0; i < N_LINES; i++) {
		bool skip = false;
		for (size_t k = 0; k < N_SENT; k++)
			skip |= without_sent && sent[k].line == i;
		if (skip)
			continue;
		for (const char *p = session_lines[i], *at; *p; p = at + 5) {
			if (!(at = strstr(p, "@SID@"))) {
				assert_cmv_ok(cmv_buf_puts(out, p));
				break;
			}
			assert_cmv_ok(cmv_buf_put(out, p, (size_t)(at - p)));
			assert_cmv_ok(cmv_buf_puts(out, sid));
		}
		assert_cmv_ok(cmv_buf_puts(out, "\n"));
	}
}

/* Import the session (or its variant) as session sid; its head in *tip and its bytes in file. */
static void import_session(cmv_id *tip, cmv_buf *file, fixture *f, const char *sid, bool without_sent)
{
	char path[4096];
	cmv_import_result res;

	session_text(file, sid, without_sent);
	snprintf(path, sizeof(path), "%s/%s.jsonl", f->dir, sid);
	free(test_write_file(f->dir, strrchr(path, '/') + 1, file->ptr, file->size));
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	*tip = res.head;
}

/* The `rendered` text of line i. */
static char *rendered(size_t i)
{
	cJSON *j = cJSON_Parse(session_lines[i]);
	assert_non_null(j);
	char *s = strdup(cJSON_GetObjectItemCaseSensitive(j, "rendered")->valuestring);
	cJSON_Delete(j);
	return s;
}

static const char *block_text(const cJSON *b)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
	return cJSON_IsString(t) ? t->valuestring : "";
}

static const char *block_type(const cJSON *b)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
	return cJSON_IsString(t) ? t->valuestring : "";
}

static void test_attachments__import_export_byte_for_byte(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), back = CMV_BUF_INIT(1 << 20), blob = CMV_BUF_INIT(1 << 20);
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id tip;
	size_t i = 0;

	import_session(&tip, &file, f, "s-att", false);
	assert_cmv_ok(cmv_export_session(f->repo, "cc/s-att", test_buf_writer, &back));
	assert_int_equal(back.size, file.size);
	assert_memory_equal(back.ptr, file.ptr, file.size);

	/* the chain is the file in order: each attachment sent is a message holding its text */
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	while (cmv_walk_next(&n, w) == 0) {
		bool is_sent = false;
		for (size_t k = 0; k < N_SENT; k++)
			if (sent[k].line == i) {
				char *want = rendered(i);
				is_sent = true;
				assert_int_equal(n->kind, CMV_KIND_MESSAGE);
				assert_int_equal(n->role, !strcmp(sent[k].role, "user") ? CMV_ROLE_USER : CMV_ROLE_SYSTEM);
				assert_int_equal(n->n_blocks, 1);
				assert_string_equal(n->blocks[0].type, "text");
				assert_cmv_ok(cmv_blob_read(&blob, f->repo, &n->blocks[0].blob));
				assert_string_equal(blob.ptr, want);
				free(want);
			}
		if (!is_sent && strstr(session_lines[i], "\"type\":\"attachment\"")) {
			/* a6 has no `rendered`, a7 an empty one: events, as before */
			assert_int_equal(n->kind, CMV_KIND_EVENT);
			assert_int_equal(n->n_blocks, 0);
		}
		i++;
	}
	cmv_walk_free(w);
	assert_int_equal(i, N_LINES);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&blob);
}

/* A rendered body, checked, parsed. */
static cJSON *render_checked(fixture *f, const cmv_id *tip, cmv_render_target t)
{
	cmv_buf body = CMV_BUF_INIT(1 << 24), problems = CMV_BUF_INIT(1 << 20);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	ro.flags = CMV_RENDER_NO_DECORATIONS;
	assert_cmv_ok(cmv_render(&body, NULL, f->repo, tip, t, &ro));
	if (cmv_check_request(&problems, t, body.ptr, body.size) != 0)
		fail_msg("rendered for %s: %s", cmv_render_target_name(t), problems.ptr);
	/* what was never sent stays out: the older attachment's fields, the UI copies */
	assert_null(strstr(body.ptr, "itemCount"));
	assert_null(strstr(body.ptr, "numLines"));
	cJSON *j = cJSON_Parse(body.ptr);
	assert_non_null(j);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	return j;
}

static void test_attachments__rendered_in_place_and_role(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_id tip;
	char *a1 = rendered(1), *a2 = rendered(3), *a3 = rendered(4), *a4 = rendered(8), *a5 = rendered(12);

	import_session(&tip, &file, f, "s-att", false);
	cJSON *body = render_checked(f, &tip, CMV_RENDER_ANTHROPIC);
	/* the system attachment is a system prompt */
	const cJSON *sys = cJSON_GetObjectItemCaseSensitive(body, "system");
	assert_int_equal(cJSON_GetArraySize(sys), 1);
	assert_string_equal(block_text(sys->child), a3);
	/* the others are user content where they were sent: before and after the prompt, after a result */
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
	assert_int_equal(cJSON_GetArraySize(msgs), 6);
	const cJSON *m0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "content");
	assert_int_equal(cJSON_GetArraySize(m0), 3);
	assert_string_equal(block_text(cJSON_GetArrayItem(m0, 0)), a1);
	assert_string_equal(block_text(cJSON_GetArrayItem(m0, 1)), "Fix the failing test in src/parser.c");
	assert_string_equal(block_text(cJSON_GetArrayItem(m0, 2)), a2);
	const cJSON *m1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 1), "content");
	assert_string_equal(block_type(cJSON_GetArrayItem(m1, 0)), "thinking"); /* signed: replayed */
	assert_string_equal(block_type(cJSON_GetArrayItem(m1, 1)), "tool_use");
	for (int k = 2; k <= 4; k += 2) {
		const cJSON *m = cJSON_GetArrayItem(msgs, k);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring, "user");
		assert_int_equal(cJSON_GetArraySize(c), 2);
		assert_string_equal(block_type(cJSON_GetArrayItem(c, 0)), "tool_result"); /* results first */
		assert_string_equal(block_text(cJSON_GetArrayItem(c, 1)), k == 2 ? a4 : a5);
	}
	cJSON_Delete(body);

	/* every other provider takes it too, with each text once and no thinking */
	static const cmv_render_target others[] = { CMV_RENDER_OPENAI_CHAT, CMV_RENDER_OPENAI_RESPONSES,
						     CMV_RENDER_GEMINI };
	for (size_t t = 0; t < sizeof(others) / sizeof(*others); t++) {
		cJSON *b = render_checked(f, &tip, others[t]);
		char *s = cJSON_PrintUnformatted(b);
		cJSON *as_json[5];
		const char *texts[] = { a1, a2, a3, a4, a5 };
		for (size_t k = 0; k < 5; k++) {
			/* as the body escapes it: the text as a JSON string, without its quotes */
			as_json[k] = cJSON_CreateString(texts[k]);
			char *q = cJSON_PrintUnformatted(as_json[k]);
			q[strlen(q) - 1] = '\0';
			const char *hit = strstr(s, q + 1);
			if (!hit || strstr(hit + 1, q + 1))
				fail_msg("%s: attachment %zu is not in the body exactly once", cmv_render_target_name(others[t]), k);
			cJSON_free(q);
			cJSON_Delete(as_json[k]);
		}
		assert_null(strstr(s, "signature"));
		cJSON_free(s);
		cJSON_Delete(b);
	}
	free(a1);
	free(a2);
	free(a3);
	free(a4);
	free(a5);
	cmv_buf_dispose(&file);
}

/* The attachments' texts in a model's tokens. */
static uint64_t attachment_tokens(const cmv_model *m)
{
	uint64_t sum = 0;
	for (size_t k = 0; k < N_SENT; k++) {
		char *s = rendered(sent[k].line);
		size_t n;
		assert_cmv_ok(cmv_model_count(&n, NULL, m, tok, s, strlen(s)));
		sum += n;
		free(s);
	}
	return sum;
}

/* What the thinking rule charges for a signature of len bytes (pager/count.c's constants). */
static uint64_t signature_charge(const cmv_model *m, size_t len)
{
	return cmv_model_scale(m, len > 200 ? ((uint64_t)(len - 200) * 138 + 999) / 1000 : 0);
}

static void test_attachments__counted_as_text(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20);
	cmv_id with, without;
	cmv_token_stats a, b;

	import_session(&with, &file, f, "s-att", false);
	import_session(&without, &file, f, "s-plain", true);

	/* stored: each attachment sent is a message of text; nothing more is unsent */
	assert_cmv_ok(cmv_count_conversation(&a, f->repo, &with, claude, tok));
	assert_cmv_ok(cmv_count_conversation(&b, f->repo, &without, claude, tok));
	assert_int_equal(a.text - b.text, attachment_tokens(claude));
	assert_int_equal(a.messages - b.messages, N_SENT);
	assert_int_equal(a.blocks - b.blocks, N_SENT);
	assert_int_equal(a.unsent, b.unsent);

	/* rendered, for Claude: the texts, and the thinking charged by its signature */
	assert_cmv_ok(cmv_count_sent(&a, f->repo, &with, claude, tok));
	assert_cmv_ok(cmv_count_sent(&b, f->repo, &without, claude, tok));
	assert_int_equal(a.text - b.text, attachment_tokens(claude));
	assert_int_equal(a.thinking, signature_charge(claude, SIGNATURE_BYTES));
	assert_int_equal(b.thinking, a.thinking);

	/* for GPT-4o: the texts; the thinking is not sent, so not charged */
	assert_cmv_ok(cmv_count_sent(&a, f->repo, &with, gpt, tok));
	assert_cmv_ok(cmv_count_sent(&b, f->repo, &without, gpt, tok));
	assert_int_equal(a.text - b.text, attachment_tokens(gpt));
	assert_int_equal(a.thinking, 0);
	cmv_buf_dispose(&file);
}

/* count_anthropic's thinking rule on hand-made bodies. */
static void test_attachments__thinking_charged_by_signature(void **state)
{
	cmv_token_stats st;
	cmv_buf body = CMV_BUF_INIT(1 << 20);
	static const size_t lens[] = { 0, 120, 200, 201, 1200, 5000 };
	(void)state;

	for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		cmv_buf_clear(&body);
		assert_cmv_ok(cmv_buf_puts(&body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
						  "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
						  "\"thinking\":\"\",\"signature\":\""));
		for (size_t k = 0; k < lens[i]; k++)
			assert_cmv_ok(cmv_buf_puts(&body, "A"));
		assert_cmv_ok(cmv_buf_puts(&body, "\"},{\"type\":\"text\",\"text\":\"ok\"}]}]}"));
		assert_cmv_ok(cmv_count_request(&st, claude, tok, body.ptr, body.size));
		/* no signature (0 bytes) is no signed block: its empty text counts nothing, as before */
		assert_int_equal(st.thinking, signature_charge(claude, lens[i]));
		assert_int_equal(st.blocks, 3);
	}
	assert_true(signature_charge(claude, 5000) > signature_charge(claude, 1200));
	assert_int_equal(signature_charge(claude, 200), 0);

	/* a block that carries its text is charged its text, whatever its signature */
	size_t n;
	static const char with_text[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
		"\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me look at parser.y first.\",\"signature\":\"QUJD\"},"
		"{\"type\":\"text\",\"text\":\"ok\"}]}]}";
	assert_cmv_ok(cmv_count_request(&st, claude, tok, with_text, sizeof(with_text) - 1));
	assert_cmv_ok(cmv_model_count(&n, NULL, claude, tok, "Let me look at parser.y first.", 30));
	assert_int_equal(st.thinking, n);
	cmv_buf_dispose(&body);
}

/*
 * Trim keeps each attachment verbatim, the one over its threshold too: an
 * attachment is instructions and context Claude Code chose to send (a
 * CLAUDE.md, a hook's words, a skill list), not a tool's output the model
 * can read again, and Claude Code reads the record back on resume.
 */
static void test_attachments__trim_keeps_them(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 20), out = CMV_BUF_INIT(1 << 22), cwd = CMV_BUF_INIT(4096);
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_token_stats before, after;
	cmv_id tip;
	char id[37];
	size_t attachments = 0, kept = 0;

	import_session(&tip, &file, f, "s-att", false);
	opts.branch = "s-att.trim";
	opts.model = claude;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(&rep, f->repo, &tip, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_THINKING].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_UI_COPIES].items, 2);
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 0);

	/* the session Claude Code would resume: every attachment record, its text as it was */
	assert_cmv_ok(cmv_claude_session_write(&out, id, &cwd, f->repo, &rep.head));
	for (char *line = out.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
		if (cJSON_IsString(type) && !strcmp(type->valuestring, "attachment")) {
			attachments++;
			for (size_t k = 0; k < N_SENT; k++) {
				char *want = rendered(sent[k].line);
				const cJSON *got = cJSON_GetObjectItemCaseSensitive(j, "rendered");
				kept += cJSON_IsString(got) && !strcmp(got->valuestring, want);
				free(want);
			}
		}
		cJSON_Delete(j);
	}
	assert_int_equal(attachments, 7);
	assert_int_equal(kept, N_SENT);

	/* and sent as before: the same text; the thinking is gone */
	cJSON_Delete(render_checked(f, &rep.head, CMV_RENDER_ANTHROPIC));
	assert_cmv_ok(cmv_count_sent(&before, f->repo, &tip, claude, tok));
	assert_cmv_ok(cmv_count_sent(&after, f->repo, &rep.head, claude, tok));
	assert_int_equal(after.text, before.text);
	assert_int_equal(after.thinking, 0);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&cwd);
}

/*
 * Attachments Claude Code sends between a compaction boundary and its
 * summary are not a second compaction: rendered, they stay (with the
 * summary); trimmed, the boundary is still the line, and they are kept.
 */
static void test_attachments__between_boundary_and_summary(void **state)
{
	fixture *f = *state;
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	char path[4096];
	static const char lines[] =
		"{\"parentUuid\":null,\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"old prompt\"},\"uuid\":\"u1\",\"sessionId\":\"s-cb\"}\n"
		"{\"parentUuid\":\"u1\",\"type\":\"assistant\",\"message\":{\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"old answer\"}]},\"uuid\":\"m1\",\"sessionId\":\"s-cb\"}\n"
		"{\"parentUuid\":null,\"logicalParentUuid\":\"m1\",\"type\":\"system\",\"subtype\":\"compact_boundary\",\"content\":\"Conversation compacted\",\"uuid\":\"b1\",\"sessionId\":\"s-cb\"}\n"
		"{\"parentUuid\":\"b1\",\"type\":\"attachment\",\"attachment\":{\"type\":\"nested_memory\"},\"rendered\":\"CLAUDE.md again\",\"renderedRole\":\"user\",\"uuid\":\"a1\",\"sessionId\":\"s-cb\"}\n"
		"{\"parentUuid\":\"a1\",\"type\":\"user\",\"isCompactSummary\":true,\"message\":{\"role\":\"user\",\"content\":\"the summary\"},\"uuid\":\"u2\",\"sessionId\":\"s-cb\"}\n"
		"{\"parentUuid\":\"u2\",\"type\":\"assistant\",\"message\":{\"id\":\"msg_2\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"new answer\"}]},\"uuid\":\"m2\",\"sessionId\":\"s-cb\"}\n";

	snprintf(path, sizeof(path), "%s/cb.jsonl", f->dir);
	free(test_write_file(f->dir, "cb.jsonl", lines, sizeof(lines) - 1));
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	cJSON *body = render_checked(f, &res.head, CMV_RENDER_ANTHROPIC);
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
	const cJSON *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "content");
	assert_int_equal(cJSON_GetArraySize(msgs), 2);
	assert_int_equal(cJSON_GetArraySize(first), 2);
	assert_string_equal(block_text(cJSON_GetArrayItem(first, 0)), "CLAUDE.md again");
	assert_string_equal(block_text(cJSON_GetArrayItem(first, 1)), "the summary");
	cJSON_Delete(body);

	opts.branch = "s-cb.trim";
	assert_cmv_ok(cmv_trim(&rep, f->repo, &res.head, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_PRE_BOUNDARY].items, 2); /* u1, m1: the boundary is the line */
	body = render_checked(f, &rep.head, CMV_RENDER_ANTHROPIC);
	first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "messages"), 0),
						 "content");
	assert_string_equal(block_text(cJSON_GetArrayItem(first, 0)), "CLAUDE.md again");
	cJSON_Delete(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attachments__import_export_byte_for_byte, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_attachments__rendered_in_place_and_role, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_attachments__counted_as_text, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_attachments__thinking_charged_by_signature),
		cmocka_unit_test_setup_teardown(test_attachments__trim_keeps_them, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_attachments__between_boundary_and_summary, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: claude code attachments", tests, load_models, free_models);
}
