/* SPDX-License-Identifier: MIT */
/*
 * Claude Code's saved tool outputs (2.1.328): a large output is saved to
 * <session id>/tool-results/<name>.txt beside the transcript, and the
 * result sent and recorded is a <persisted-output> preview of about 2 KB;
 * the record's toolUseResult holds the whole stdout for the UI (never sent).
 *
 * On the session written for the project in that shape
 * (tests/resources/persisted-output, NOTICE.md there): the import keeps each
 * saved file as its result's original and the session still exports byte
 * for byte; recall gives the whole output back; counts and renderings are
 * the preview's, not the UI copy's; trim stubs the preview inside its tags
 * and names the whole output; a written session carries the files beside
 * itself and names them there; a bundle carries them to another store; a
 * session copied without its folder imports, and says what it lacks; a
 * copy kept elsewhere (a hook's backup) finds them in the local Claude Code
 * projects folder, and nowhere else.
 *
 * With CMV_PERSISTED_CORPUS set (the corpus tier), the real sessions of the
 * corpus that hold such previews (2.1.12 and 2.1.62, without their folders).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"

typedef test_store fixture;

#define SID "5c7e2a1b-8d4f-4e6a-9b3c-2f1d0e9a8b7c"
#define LOG_NAME "b7k2q9x4m.txt"
#define GREP_NAME "toolu_02.txt"
#define RECORDED "/home/dev/.claude/projects/-work-demo/" SID "/tool-results/"

static const cmv_model *claude;
static cmv_tok *tok;
static cmv_models *models;

static int load_models(void **state)
{
	(void)state;
	assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&claude, models, "claude-sonnet-4-5"));
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

static void read_resource(cmv_buf *out, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", CMV_TEST_PERSISTED, rel);
	test_read_file(out, path);
}

/* The fixture's folder copied under dir (with its tool-results unless bare). */
static void copy_fixture(const char *dir, bool bare)
{
	assert_int_equal(test_system("mkdir -p '%s' && cp '%s/%s.jsonl' '%s/'", dir, CMV_TEST_PERSISTED, SID, dir), 0);
	if (!bare)
		assert_int_equal(test_system("cp -R '%s/%s' '%s/'", CMV_TEST_PERSISTED, SID, dir), 0);
}

static void import_at(cmv_import_result *res, cmv_repo *repo, const char *dir, const char *branch)
{
	char path[4096];
	cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
	opts.branch = branch;
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, SID);
	assert_cmv_ok(cmv_import_claude_code_file(res, repo, path, &opts));
}

/* The blob of the cc_saved_output block for call `tool_id` on the path to tip; 0 when there is none. */
static int saved_blob(cmv_id *out, cmv_repo *repo, const cmv_id *tip, const char *tool_id, cmv_buf *recorded)
{
	cmv_walk *w;
	const cmv_node *n;
	int found = 0;
	assert_cmv_ok(cmv_walk_new(&w, repo, tip));
	while (!found && cmv_walk_next(&n, w) == 0)
		for (size_t i = 0; i < n->n_blocks; i++)
			if (!strcmp(n->blocks[i].type, "cc_saved_output") && !strcmp(n->blocks[i].tool_id, tool_id)) {
				*out = n->blocks[i].blob;
				if (recorded)
					assert_cmv_ok(cmv_buf_set(recorded, n->blocks[i].tool_name, strlen(n->blocks[i].tool_name)));
				found = 1;
			}
	cmv_walk_free(w);
	return found;
}

/* The content string of the tool result for `tool_id` in a written session (malloc'd), or NULL. */
static char *result_content(const char *session, const char *tool_id, bool *has_ui_copy)
{
	char *found = NULL;
	for (const char *line = session, *nl; line && *line && !found; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "message"), "content");
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "tool_use_id"));
			const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "content"));
			if (id && c && !strcmp(id, tool_id)) {
				found = strdup(c);
				if (has_ui_copy)
					*has_ui_copy = cJSON_GetObjectItemCaseSensitive(j, "toolUseResult") != NULL;
			}
		}
		cJSON_Delete(j);
	}
	return found;
}

/* The id a stub names ("recall X]"), in id. */
static void stub_id(char id[64], const char *text)
{
	const char *at = strstr(text, "; recall ");
	assert_non_null(at);
	at += strlen("; recall ");
	size_t n = strspn(at, "0123456789abcdef");
	assert_true(n >= 7 && n < 64);
	memcpy(id, at, n);
	id[n] = '\0';
}

static void assert_recalls(cmv_repo *repo, const char *id, const cmv_buf *want)
{
	cmv_buf got = CMV_BUF_INIT(1 << 26);
	assert_cmv_ok(cmv_recall(&got, repo, id));
	assert_int_equal(got.size, want->size);
	assert_memory_equal(got.ptr, want->ptr, want->size);
	cmv_buf_dispose(&got);
}

static void test_persisted__import_keeps_the_saved_file(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 22), back = CMV_BUF_INIT(1 << 22), log = CMV_BUF_INIT(1 << 22),
		grep = CMV_BUF_INIT(1 << 22), recorded = CMV_BUF_INIT(4096);
	cmv_import_result res;
	cmv_id blob;
	char hex[CMV_ID_HEXSZ + 1];

	import_at(&res, f->repo, CMV_TEST_PERSISTED, NULL);
	assert_int_equal(res.saved_outputs, 2);
	assert_int_equal(res.saved_missing, 0);
	/* the records are as they were: the file comes back byte for byte */
	read_resource(&file, SID ".jsonl");
	assert_cmv_ok(cmv_export_session(f->repo, "cc/" SID, test_buf_writer, &back));
	assert_int_equal(back.size, file.size);
	assert_memory_equal(back.ptr, file.ptr, file.size);

	/* each result's original is its saved file, whole, and recall gives it back by its short id */
	read_resource(&log, SID "/tool-results/" LOG_NAME);
	read_resource(&grep, SID "/tool-results/" GREP_NAME);
	assert_true(saved_blob(&blob, f->repo, &res.head, "toolu_01", &recorded));
	assert_string_equal(recorded.ptr, RECORDED LOG_NAME);
	cmv_id_tostr(hex, sizeof(hex), &blob);
	hex[7] = '\0';
	assert_recalls(f->repo, hex, &log);
	assert_true(saved_blob(&blob, f->repo, &res.head, "toolu_02", NULL));
	cmv_id_tostr(hex, sizeof(hex), &blob);
	assert_recalls(f->repo, hex, &grep);
	assert_false(saved_blob(&blob, f->repo, &res.head, "toolu_03", NULL)); /* a small result is sent whole */

	/* importing it again is unchanged */
	import_at(&res, f->repo, CMV_TEST_PERSISTED, NULL);
	assert_int_equal(res.outcome, CMV_IMPORT_UNCHANGED);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&log);
	cmv_buf_dispose(&grep);
	cmv_buf_dispose(&recorded);
}

/*
 * What is counted and rendered is what Claude Code sends: the preview. The
 * same session with no UI copies and no saved files counts the same.
 */
static void test_persisted__counts_follow_the_preview(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 22), bare = CMV_BUF_INIT(1 << 22), req = CMV_BUF_INIT(1 << 22);
	cmv_import_result res, res_bare;
	cmv_token_stats st, st_bare, sent, sent_bare;
	char dir[2048];

	import_at(&res, f->repo, CMV_TEST_PERSISTED, "full");
	read_resource(&file, SID ".jsonl");
	for (char *line = file.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
		cJSON_DeleteItemFromObjectCaseSensitive(j, "toolUseResult");
		char *s = cJSON_PrintUnformatted(j);
		assert_cmv_ok(cmv_buf_puts(&bare, s));
		assert_cmv_ok(cmv_buf_putc(&bare, '\n'));
		cJSON_free(s);
		cJSON_Delete(j);
	}
	snprintf(dir, sizeof(dir), "%s/bare", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	free(test_write_file(dir, SID ".jsonl", bare.ptr, bare.size));
	import_at(&res_bare, f->repo, dir, "bare");
	assert_int_equal(res_bare.saved_missing, 2);

	assert_cmv_ok(cmv_count_conversation(&st, f->repo, &res.head, claude, tok));
	assert_cmv_ok(cmv_count_conversation(&st_bare, f->repo, &res_bare.head, claude, tok));
	assert_int_equal(st.total, st_bare.total);
	assert_int_equal(st.tool_results, st_bare.tool_results);
	assert_true(st.unsent > st_bare.unsent + 10000); /* the UI copies and the saved files: stored, never sent */
	assert_cmv_ok(cmv_count_sent(&sent, f->repo, &res.head, claude, tok));
	assert_cmv_ok(cmv_count_sent(&sent_bare, f->repo, &res_bare.head, claude, tok));
	assert_int_equal(sent.total, sent_bare.total);
	assert_true(sent.total < 3000); /* two previews of 2 KB, not 76 KB of output */

	/* the request holds the preview, tags and all, and nothing past it */
	assert_cmv_ok(cmv_render(&req, NULL, f->repo, &res.head, CMV_RENDER_ANTHROPIC, NULL));
	assert_non_null(strstr(req.ptr, "<persisted-output>\\nOutput too large (42.3KB). Full output saved to: " RECORDED LOG_NAME));
	assert_non_null(strstr(req.ptr, "test_030.c"));
	assert_null(strstr(req.ptr, "test_799.c"));
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&bare);
	cmv_buf_dispose(&req);
}

/* Trim, write the session, place its files, import what was written: all there. */
static void test_persisted__trim_and_write_round_trip(void **state)
{
	fixture *f = *state;
	cmv_buf out = CMV_BUF_INIT(1 << 22), log = CMV_BUF_INIT(1 << 22), grep = CMV_BUF_INIT(1 << 22),
		placed = CMV_BUF_INIT(1 << 22), file = CMV_BUF_INIT(1 << 22);
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_import_result res;
	char id[37], rid[64], dir[2048], path[4096], want[4096];
	size_t n;
	bool ui;

	read_resource(&log, SID "/tool-results/" LOG_NAME);
	read_resource(&grep, SID "/tool-results/" GREP_NAME);
	read_resource(&file, SID ".jsonl");
	char *preview = result_content(file.ptr, "toolu_01", NULL);
	import_at(&res, f->repo, CMV_TEST_PERSISTED, NULL);
	opts.branch = "t";
	opts.model = claude;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(&rep, f->repo, &res.head, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 2);
	assert_int_equal(rep.rules[CMV_TRIM_UI_COPIES].items, 3);
	/* what was cut is the previews (sent), less the stubs: a few hundred tokens each, not the 20k of the files */
	assert_true(rep.rules[CMV_TRIM_TOOL_RESULTS].tokens > 500 && rep.rules[CMV_TRIM_TOOL_RESULTS].tokens < 2000);
	assert_true(rep.rules[CMV_TRIM_TOOL_RESULTS].bytes < 5000);
	assert_int_equal(rep.rules[CMV_TRIM_UI_COPIES].tokens, 0);

	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, f->repo, &rep.head));
	char *c1 = result_content(out.ptr, "toolu_01", &ui), *c3 = result_content(out.ptr, "toolu_03", NULL);
	assert_false(ui);
	/* the tags and the line that says where the output is stay; the preview is a stub naming the whole output */
	static const char head[] = "<persisted-output>\nOutput too large (42.3KB). Full output saved to: " RECORDED LOG_NAME
				   "\n[43298 chars, 802 lines; recall ";
	assert_memory_equal(c1, head, sizeof(head) - 1);
	static const char tail[] = "]\n</persisted-output>";
	assert_true(strlen(c1) > sizeof(tail) && !strcmp(c1 + strlen(c1) - (sizeof(tail) - 1), tail));
	stub_id(rid, c1);
	assert_recalls(f->repo, rid, &log);
	char *c3_orig = result_content(file.ptr, "toolu_03", NULL);
	assert_string_equal(c3, c3_orig);

	/* placed beside the written session, and named there */
	snprintf(dir, sizeof(dir), "%s/claude/projects/-work-demo", f->dir);
	assert_int_equal(test_system("mkdir -p '%s'", dir), 0);
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, id);
	assert_cmv_ok(cmv_claude_session_place_outputs(&out, &n, f->repo, &rep.head, path));
	assert_int_equal(n, 2);
	snprintf(want, sizeof(want), "%s/%s/tool-results/%s", dir, id, LOG_NAME);
	test_read_file(&placed, want);
	assert_int_equal(placed.size, log.size);
	assert_memory_equal(placed.ptr, log.ptr, log.size);
	snprintf(want, sizeof(want), "%s/%s/tool-results/%s", dir, id, GREP_NAME);
	test_read_file(&placed, want);
	assert_int_equal(placed.size, grep.size);
	assert_null(strstr(out.ptr, RECORDED));
	free(c1);
	c1 = result_content(out.ptr, "toolu_01", NULL);
	snprintf(want, sizeof(want), "Full output saved to: %s/%s/tool-results/%s\n", dir, id, LOG_NAME);
	assert_non_null(strstr(c1, want));
	/* again: the same bytes are there, nothing to do; other bytes there are refused */
	cmv_buf again = CMV_BUF_INIT(1 << 22);
	char id2[37];
	assert_cmv_ok(cmv_claude_session_write(&again, id2, NULL, f->repo, &rep.head));
	assert_cmv_ok(cmv_claude_session_place_outputs(&again, &n, f->repo, &rep.head, path));
	char results[4096];
	snprintf(results, sizeof(results), "%s/%s/tool-results", dir, id);
	free(test_write_file(results, GREP_NAME, "other", 5));
	assert_cmv_fails_with(CMV_EEXISTS, cmv_claude_session_place_outputs(&again, &n, f->repo, &rep.head, path));
	assert_error_mentions(GREP_NAME);
	assert_cmv_fails_with(CMV_EINVALID, cmv_claude_session_place_outputs(&again, &n, f->repo, &rep.head, dir));
	free(test_write_file(results, GREP_NAME, grep.ptr, grep.size));

	/* the written session, imported from where it was written, finds its files */
	free(test_write_file(dir, strrchr(path, '/') + 1, out.ptr, out.size));
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	io.branch = "written";
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &io));
	/* a stub still says where the output was saved: the files are found there, and kept again */
	assert_int_equal(res.saved_outputs, 2);
	assert_int_equal(res.saved_missing, 0);
	cmv_id blob;
	assert_true(saved_blob(&blob, f->repo, &res.head, "toolu_01", NULL));
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id_tostr(hex, sizeof(hex), &blob);
	assert_recalls(f->repo, hex, &log);

	/* a preview at or under the threshold stays as it was */
	opts.branch = "t5000";
	opts.threshold = 5000;
	import_at(&res, f->repo, CMV_TEST_PERSISTED, NULL);
	assert_cmv_ok(cmv_trim(&rep, f->repo, &res.head, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 0);
	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, f->repo, &rep.head));
	free(c1);
	c1 = result_content(out.ptr, "toolu_01", &ui);
	assert_false(ui);
	assert_string_equal(c1, preview);
	/* and the session written from it names its files in its own folder: imported there, they are found */
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, id);
	assert_cmv_ok(cmv_claude_session_place_outputs(&out, &n, f->repo, &rep.head, path));
	assert_int_equal(n, 2);
	free(test_write_file(dir, strrchr(path, '/') + 1, out.ptr, out.size));
	io.branch = "written5000";
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &io));
	assert_int_equal(res.saved_outputs, 2);
	assert_int_equal(res.saved_missing, 0);
	free(c1);
	free(c3);
	free(c3_orig);
	free(preview);
	cmv_buf_dispose(&again);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&log);
	cmv_buf_dispose(&grep);
	cmv_buf_dispose(&placed);
	cmv_buf_dispose(&file);
}

/* A bundle of the trimmed branch carries the saved outputs: the stub recalls in the other store. */
static void test_persisted__bundle_carries_the_files(void **state)
{
	fixture *f = *state;
	cmv_buf out = CMV_BUF_INIT(1 << 22), log = CMV_BUF_INIT(1 << 22), bundle = CMV_BUF_INIT(1 << 24);
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_import_result res;
	cmv_bundle_stats bs;
	cmv_repo *other;
	cmv_id tip;
	char id[37], rid[64], path[4096];
	size_t n;

	read_resource(&log, SID "/tool-results/" LOG_NAME);
	import_at(&res, f->repo, CMV_TEST_PERSISTED, NULL);
	opts.branch = "t";
	assert_cmv_ok(cmv_trim(&rep, f->repo, &res.head, &opts));
	assert_cmv_ok(cmv_snapshot_create(f->repo, "snap", &rep.head, "t", NULL));
	const char *snaps[] = { "snap" };
	assert_cmv_ok(cmv_bundle_export(&bs, f->repo, snaps, 1, 0, test_buf_writer, &bundle));
	char *file = test_write_file(f->dir, "b.cmvb", bundle.ptr, bundle.size);
	assert_cmv_ok(cmv_repo_open(&other, ":memory:", CMV_REPO_OPEN_CREATE));
	assert_cmv_ok(cmv_bundle_import(&bs, other, file, NULL));
	assert_cmv_ok(cmv_resolve(&tip, other, "snap"));
	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, other, &tip));
	char *c1 = result_content(out.ptr, "toolu_01", NULL);
	stub_id(rid, c1);
	assert_recalls(other, rid, &log);
	/* and a session written there carries the files too */
	snprintf(path, sizeof(path), "%s/%s.jsonl", f->dir, id);
	assert_cmv_ok(cmv_claude_session_place_outputs(&out, &n, other, &tip, path));
	assert_int_equal(n, 2);
	free(c1);
	free(file);
	cmv_repo_free(other);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&log);
	cmv_buf_dispose(&bundle);
}

/* Without the folder (or with the wrong file, or a link in its place) the import works, and says so. */
static void test_persisted__missing_saved_file(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 22), back = CMV_BUF_INIT(1 << 22), out = CMV_BUF_INIT(1 << 22);
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_import_result res;
	cmv_id blob;
	char dir[2048], rid[64], id[37];

	snprintf(dir, sizeof(dir), "%s/copied", f->dir);
	copy_fixture(dir, true);
	import_at(&res, f->repo, dir, NULL);
	assert_int_equal(res.saved_outputs, 0);
	assert_int_equal(res.saved_missing, 2);
	assert_int_equal(res.outcome, CMV_IMPORT_CREATED);
	assert_false(saved_blob(&blob, f->repo, &res.head, "toolu_01", NULL));
	read_resource(&file, SID ".jsonl");
	assert_cmv_ok(cmv_export_session(f->repo, "cc/" SID, test_buf_writer, &back));
	assert_int_equal(back.size, file.size);
	assert_memory_equal(back.ptr, file.ptr, file.size);

	/* trimmed, the stub keeps the tags and names the preview, which is all there is */
	opts.branch = "t";
	assert_cmv_ok(cmv_trim(&rep, f->repo, &res.head, &opts));
	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, f->repo, &rep.head));
	char *c1 = result_content(out.ptr, "toolu_01", NULL), *orig = result_content(file.ptr, "toolu_01", NULL);
	assert_true(!strncmp(c1, "<persisted-output>\nOutput too large (42.3KB). Full output saved to: ", 68));
	stub_id(rid, c1);
	cmv_buf want = CMV_BUF_INIT(1 << 16);
	assert_cmv_ok(cmv_buf_set(&want, orig, strlen(orig)));
	assert_recalls(f->repo, rid, &want);
	cmv_buf_dispose(&want);
	free(c1);
	free(orig);

	/* the wrong file, and a link where the file should be, are not taken */
	snprintf(dir, sizeof(dir), "%s/wrong", f->dir);
	copy_fixture(dir, false);
	assert_int_equal(test_system("printf 'PASS: something else\\n' > '%s/%s/tool-results/%s' && ln -sf '%s/%s/tool-results/%s' "
				     "'%s/%s/tool-results/%s'", dir, SID, LOG_NAME, CMV_TEST_PERSISTED, SID, GREP_NAME, dir, SID,
				     GREP_NAME), 0);
	assert_int_equal(test_system("rm -f '%s/%s/tool-results/%s' && ln -s '%s/%s/tool-results/%s' '%s/%s/tool-results/%s'",
				     dir, SID, GREP_NAME, CMV_TEST_PERSISTED, SID, GREP_NAME, dir, SID, GREP_NAME), 0);
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	io.branch = "wrong";
	io.flags = CMV_IMPORT_FORCE;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, SID);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &io));
	assert_int_equal(res.saved_outputs, 0);
	assert_int_equal(res.saved_missing, 2);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&out);
}

/*
 * A copy of the transcript kept elsewhere (a hook's backup) finds the files
 * at the recorded path when it lies in the local projects folder
 * ($CLAUDE_CONFIG_DIR/projects), and not when it lies outside it.
 */
static void test_persisted__recorded_path_in_projects_only(void **state)
{
	fixture *f = *state;
	cmv_buf file = CMV_BUF_INIT(1 << 22), moved = CMV_BUF_INIT(1 << 22);
	cmv_import_result res;
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	char root[2048], backup[2048], path[4096];
	const char *old = getenv("CLAUDE_CONFIG_DIR");
	char *saved_env = old ? strdup(old) : NULL;

	snprintf(root, sizeof(root), "%s/claude", f->dir);
	snprintf(path, sizeof(path), "%s/projects/-work-demo", root);
	copy_fixture(path, false);
	/* the session as recorded on this machine: its previews name files under root */
	read_resource(&file, SID ".jsonl");
	for (const char *p = file.ptr, *at; *p; p = at + strlen("/home/dev/.claude")) {
		if (!(at = strstr(p, "/home/dev/.claude"))) {
			assert_cmv_ok(cmv_buf_puts(&moved, p));
			break;
		}
		assert_cmv_ok(cmv_buf_put(&moved, p, (size_t)(at - p)));
		assert_cmv_ok(cmv_buf_puts(&moved, root));
	}
	snprintf(backup, sizeof(backup), "%s/backups/%s", f->dir, SID);
	assert_int_equal(test_system("mkdir -p '%s'", backup), 0);
	free(test_write_file(backup, SID ".jsonl", moved.ptr, moved.size));
	snprintf(path, sizeof(path), "%s/%s.jsonl", backup, SID);

	setenv("CLAUDE_CONFIG_DIR", root, 1);
	io.branch = "inside";
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &io));
	assert_int_equal(res.saved_outputs, 2);
	assert_int_equal(res.saved_missing, 0);

	setenv("CLAUDE_CONFIG_DIR", backup, 1); /* another projects folder: the recorded path is outside it */
	io.branch = "outside";
	io.flags = CMV_IMPORT_FORCE;
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &io));
	assert_int_equal(res.saved_outputs, 0);
	assert_int_equal(res.saved_missing, 2);
	if (saved_env)
		setenv("CLAUDE_CONFIG_DIR", saved_env, 1);
	else
		unsetenv("CLAUDE_CONFIG_DIR");
	free(saved_env);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&moved);
}

/* ---- the corpus: real sessions with previews, without their folders ---------- */

typedef struct {
	size_t sessions, previews;
} corpus_stats;

static void corpus_session(const char *path, void *payload)
{
	corpus_stats *cs = payload;
	cmv_buf file = CMV_BUF_INIT(1 << 28), out = CMV_BUF_INIT(1 << 28);
	cmv_repo *repo;
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	size_t previews = 0, stubs = 0;
	char id[37];

	test_read_file(&file, path);
	if (!strstr(file.ptr, "<persisted-output>"))
		goto done;
	for (const char *p = file.ptr; (p = strstr(p, "\"content\":\"<persisted-output>\\n")); p++)
		previews++;
	assert_cmv_ok(cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE));
	assert_cmv_ok(cmv_import_claude_code_file(&res, repo, path, NULL));
	/* the corpus keeps transcripts only: every preview's file is missing, and said to be */
	assert_int_equal(res.saved_missing, previews);
	assert_int_equal(res.saved_outputs, 0);
	opts.branch = "t";
	assert_cmv_ok(cmv_trim(&rep, repo, &res.head, &opts));
	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, repo, &rep.head));
	/* each preview keeps its tags and first line around its stub */
	for (const char *p = out.ptr; (p = strstr(p, "\"content\":\"<persisted-output>\\nOutput too large (")); p++) {
		const char *end = strstr(p, "\\n</persisted-output>\"");
		const char *stub = strstr(p, "; recall ");
		assert_non_null(end);
		assert_non_null(stub);
		assert_true(stub < end);
		stubs++;
	}
	assert_int_equal(stubs, previews);
	printf("%s: %zu previews, their saved files missing; trimmed, each a stub inside its tags\n", path, previews);
	cs->sessions++;
	cs->previews += previews;
	cmv_repo_free(repo);
done:
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&out);
}

static void test_persisted__corpus(void **state)
{
	corpus_stats cs = { 0, 0 };
	(void)state;
	test_each_session(getenv("CMV_PERSISTED_CORPUS"), "claude-code", corpus_session, &cs);
	assert_true(cs.sessions >= 2);
	assert_true(cs.previews >= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_persisted__import_keeps_the_saved_file, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_persisted__counts_follow_the_preview, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_persisted__trim_and_write_round_trip, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_persisted__bundle_carries_the_files, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_persisted__missing_saved_file, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_persisted__recorded_path_in_projects_only, test_store_setup, test_store_teardown),
	};
	const struct CMUnitTest corpus[] = {
		cmocka_unit_test(test_persisted__corpus),
	};
	if (getenv("CMV_PERSISTED_CORPUS"))
		return cmocka_run_group_tests_name("formats: claude code saved outputs, corpus", corpus, NULL, NULL);
	return cmocka_run_group_tests_name("formats: claude code saved outputs", tests, load_models, free_models);
}
