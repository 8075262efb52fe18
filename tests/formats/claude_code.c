/* SPDX-License-Identifier: MIT */
/*
 * Claude Code sessions: every file in the transcripts' claude-code folder
 * (the curated set, or the full corpus in ../shared) imports and exports
 * byte for byte; re-imports add nothing; a grown file adds only its tail;
 * glued, cut-off and malformed lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "test.h"

typedef test_store fixture;

static const char *transcripts_dir(void)
{
	return test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
}

/* The session ref a branch was imported from. */
static void session_of(char *out, size_t n, cmv_repo *repo, const char *branch)
{
	cmv_ref *r = NULL;

	assert_cmv_ok(cmv_ref_lookup(&r, repo, branch));
	assert_non_null(r->from_ref);
	snprintf(out, n, "%s", r->from_ref);
	cmv_ref_free(r);
}

static size_t files_checked, orphans_seen;

/*
 * The branch's path is the conversation: it holds every tool call of the
 * file outside sidechains, and each call's result, except calls the
 * session never answered (MANIFEST: one each in 8c-, fc- and f6108699-).
 */
static void check_pairing(fixture *f, const char *path, const char *branch)
{
	cmv_buf file = CMV_BUF_INIT((size_t)1 << 30);
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id tip;
	char **uses = NULL, **results = NULL;
	size_t n_uses = 0, n_results = 0, file_uses = 0, unanswered = 0;

	test_read_file(&file, path);
	for (char *line = file.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
		const cJSON *c = j ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "message"), "content") : NULL;
		if (j && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isSidechain")) && cJSON_IsArray(c))
			for (const cJSON *b = c->child; b; b = b->next)
				file_uses += cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "type")) &&
					     !strcmp(cJSON_GetObjectItemCaseSensitive(b, "type")->valuestring, "tool_use");
		cJSON_Delete(j); /* a glued or cut line parses as nothing here: not a tool call */
	}
	assert_cmv_ok(cmv_resolve(&tip, f->repo, branch));
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	while (cmv_walk_next(&n, w) == 0)
		for (size_t i = 0; i < n->n_blocks; i++) {
			const cmv_block *b = &n->blocks[i];
			if (!b->tool_id)
				continue;
			if (!strcmp(b->type, "tool_use")) {
				uses = realloc(uses, (n_uses + 1) * sizeof(*uses));
				uses[n_uses++] = strdup(b->tool_id);
			} else if (!strcmp(b->type, "tool_result")) {
				results = realloc(results, (n_results + 1) * sizeof(*results));
				results[n_results++] = strdup(b->tool_id);
			}
		}
	cmv_walk_free(w);
	for (size_t i = 0; i < n_uses; i++) {
		bool found = false;
		for (size_t k = 0; k < n_results && !found; k++)
			found = !strcmp(uses[i], results[k]);
		unanswered += !found;
	}
	/* glued lines hide a few calls from the line-by-line count above; never the other way */
	assert_true(n_uses >= file_uses);
	assert_true(unanswered <= 1);
	orphans_seen += unanswered;
	for (size_t i = 0; i < n_uses; i++)
		free(uses[i]);
	for (size_t i = 0; i < n_results; i++)
		free(results[i]);
	free(uses);
	free(results);
	cmv_buf_dispose(&file);
}

static void check_file(fixture *f, const char *path)
{
	cmv_import_result res;
	cmv_buf orig = CMV_BUF_INIT((size_t)1 << 30), back = CMV_BUF_INIT((size_t)1 << 30);
	char session[512];
	uint64_t rows;
	const char *fmt = NULL;

	assert_cmv_ok(cmv_format_detect(&fmt, path));
	assert_string_equal(fmt, "claude-code");
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_true(res.records > 0);
	session_of(session, sizeof(session), f->repo, res.branch);
	assert_cmv_ok(cmv_export_session(f->repo, session, test_buf_writer, &back));
	test_read_file(&orig, path);
	if (orig.size != back.size || memcmp(orig.ptr, back.ptr, orig.size)) {
		size_t i = 0;
		while (i < orig.size && i < back.size && orig.ptr[i] == back.ptr[i])
			i++;
		fail_msg("%s: export differs at byte %zu of %zu", path, i, orig.size);
	}
	check_pairing(f, path, res.branch);
	/* the same file again: nothing new */
	rows = test_total_rows(f->repo);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UNCHANGED);
	assert_int_equal(test_total_rows(f->repo), rows);
	files_checked++;
	cmv_buf_dispose(&orig);
	cmv_buf_dispose(&back);
}

static void walk_dir(fixture *f, const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (list[i]->d_name[0] != '.' && stat(path, &st) == 0) {
			size_t l = strlen(path);
			if (S_ISDIR(st.st_mode))
				walk_dir(f, path);
			else if (l > 6 && !strcmp(path + l - 6, ".jsonl"))
				check_file(f, path);
		}
		free(list[i]);
	}
	free(list);
}

static void test_formats_claude_code__every_session_round_trips_byte_for_byte(void **state)
{
	fixture *f = *state;
	char dir[4096];
	size_t problems = 99;

	snprintf(dir, sizeof(dir), "%s/claude-code", transcripts_dir());
	files_checked = orphans_seen = 0;
	walk_dir(f, dir);
	print_message("%zu sessions round trip, %zu unanswered calls\n", files_checked, orphans_seen);
	if (test_transcripts_full(transcripts_dir())) {
		assert_true(files_checked >= 14);
		assert_int_equal(orphans_seen, 3); /* 8c-, fc- and f6108699- each end one call unanswered */
	} else {
		assert_true(files_checked >= 5);
		assert_int_equal(orphans_seen, 1); /* f6108699- ends one call unanswered */
	}
	assert_cmv_ok(cmv_fsck(&problems, f->repo, NULL, NULL));
	assert_int_equal(problems, 0);
}

/* The compacted session: its branch reaches back past the boundary, through logicalParentUuid. */
static void test_formats_claude_code__compaction_keeps_history_on_the_branch(void **state)
{
	fixture *f = *state;
	cmv_buf path = CMV_BUF_INIT(4096);
	cmv_import_result res;
	cmv_walk *w = NULL;
	cmv_id tip;
	const cmv_node *n;
	size_t messages = 0;
	bool saw_boundary = false;

	/* every session with a compact_boundary is over 1 MB: the curated set has none */
	if (!test_transcript(&path, transcripts_dir(),
			     "claude-code/entireio-cli/91-b42542f24f-0__53ea1606-cf60-417b-928a-068324ecc7b3.jsonl",
			     "the history kept across a compact_boundary")) {
		cmv_buf_dispose(&path);
		skip();
	}
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path.ptr, NULL));
	cmv_buf_dispose(&path);
	assert_int_equal(res.records, 370);
	assert_cmv_ok(cmv_resolve(&tip, f->repo, res.branch));
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	while (cmv_walk_next(&n, w) == 0) {
		messages += n->kind == CMV_KIND_MESSAGE;
		if (n->kind == CMV_KIND_EVENT && n->meta &&
		    memmem(n->meta, n->meta_len, "\"compact_boundary\"", 18))
			saw_boundary = true;
	}
	cmv_walk_free(w);
	assert_true(saw_boundary);
	/* 96 user + 129 assistant lines in the file; the active chain holds most of them */
	assert_true(messages > 150);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

static void test_formats_claude_code__grown_file_adds_only_its_tail(void **state)
{
	fixture *f = *state;
	char src[4096], path[4096], session[512];
	cmv_buf orig = CMV_BUF_INIT((size_t)1 << 28), back = CMV_BUF_INIT((size_t)1 << 28);
	cmv_import_result res;
	cmv_store_stats s1, s2;
	size_t half = 0, lines = 0, half_lines = 0;
	/* the full corpus's longest session (593 lines) cut past its first chunk; the curated
	 * set's image session (56 lines, one of them a 350 KB picture) cut in the middle */
	bool full = test_transcripts_full(transcripts_dir());
	size_t cut_at = full ? 400 : 28;

	snprintf(src, sizeof(src), "%s/%s", transcripts_dir(),
		 full ? "claude-code/entireio-cli/b0-2936744f3b-0__2026-01-14-b00b80af-879f-4265-b95b-48db0938673c.jsonl"
		      : "claude-code/vsla/6dc88126-2048-43a9-b5c2-b9747d5a0301.jsonl");
	test_read_file(&orig, src);
	for (size_t i = 0; i < orig.size; i++)
		if (orig.ptr[i] == '\n' && ++lines == cut_at) {
			half = i + 1;
			half_lines = lines;
		}
	assert_true(half > 0);
	snprintf(path, sizeof(path), "%s/session.jsonl", f->dir);
	write_file(path, orig.ptr, half);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_int_equal(res.records, half_lines);
	assert_int_equal(res.outcome, CMV_IMPORT_CREATED);
	char branch[256];
	snprintf(branch, sizeof(branch), "%s", res.branch);
	assert_cmv_ok(cmv_repo_stats(&s1, f->repo));

	write_file(path, orig.ptr, orig.size);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UPDATED);
	assert_string_equal(res.branch, branch); /* fast-forwarded, not a new branch */
	assert_cmv_ok(cmv_repo_stats(&s2, f->repo));
	/* the new records, the chunks from the one the tail starts in, and one manifest */
	size_t total = res.records, tail = total - half_lines, chunks = (total + 255) / 256 - (half_lines / 256);
	assert_int_equal(s2.n_nodes - s1.n_nodes, tail + chunks + 1);
	assert_int_equal(s2.n_refs, s1.n_refs);
	session_of(session, sizeof(session), f->repo, branch);
	assert_cmv_ok(cmv_export_session(f->repo, session, test_buf_writer, &back));
	assert_int_equal(back.size, orig.size);
	for (size_t i = 0; i < orig.size; i++)
		if (back.ptr[i] != orig.ptr[i])
			fail_msg("export differs at byte %zu: %.60s", i, back.ptr + (i > 20 ? i - 20 : 0));
	cmv_buf_dispose(&orig);
	cmv_buf_dispose(&back);
}

#define REC(sid, uuid, parent, text)                                                                  \
	"{\"parentUuid\":" parent ",\"isSidechain\":false,\"type\":\"user\",\"message\":{\"role\":\"user\"," \
	"\"content\":\"" text "\"},\"uuid\":\"" uuid "\",\"sessionId\":\"" sid "\"}"

static void test_formats_claude_code__glued_cut_off_and_malformed_lines(void **state)
{
	fixture *f = *state;
	char path[4096];
	cmv_import_result res;
	cmv_buf back = CMV_BUF_INIT(1 << 20);
	uint64_t rows;

	/* two records glued on one line, and a snapshot with no uuid between them */
	const char glued[] = REC("s-1", "u1", "null", "first") REC("s-1", "u2", "\"u1\"", "second") "\n"
		"{\"type\":\"file-history-snapshot\",\"messageId\":\"m\",\"snapshot\":{}}\r\n"
		REC("s-1", "u3", "\"u2\"", "third") "\n";
	snprintf(path, sizeof(path), "%s/glued.jsonl", f->dir);
	write_file(path, glued, sizeof(glued) - 1);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_int_equal(res.records, 4);
	assert_cmv_ok(cmv_export_session(f->repo, "cc/s-1", test_buf_writer, &back));
	assert_int_equal(back.size, sizeof(glued) - 1);
	assert_memory_equal(back.ptr, glued, back.size);
	cmv_walk *w = NULL;
	cmv_id tip;
	assert_cmv_ok(cmv_resolve(&tip, f->repo, res.branch));
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	assert_int_equal(cmv_walk_length(w), 4); /* u1 -> u2 -> the snapshot -> u3, in file order */
	cmv_walk_free(w);

	/* a last line cut off mid-write is left for next time */
	const char cut[] = REC("s-3", "u1", "null", "first") "\n" REC("s-3", "u2", "\"u1\"", "second")
		"\n{\"parentUuid\":\"u2\",\"type\":\"us";
	snprintf(path, sizeof(path), "%s/cut.jsonl", f->dir);
	write_file(path, cut, sizeof(cut) - 1);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_int_equal(res.records, 2);
	assert_int_equal(res.skipped, 1);
	assert_int_equal(res.skipped_lines[0], 3);

	/* a malformed line in the middle: an error naming file and line, and no change */
	rows = test_total_rows(f->repo);
	const char bad[] = REC("s-4", "u7", "null", "ok") "\n{\"type\":\"user\",\"uuid\":\n"
		REC("s-4", "u8", "\"u7\"", "ok") "\n";
	snprintf(path, sizeof(path), "%s/bad.jsonl", f->dir);
	write_file(path, bad, sizeof(bad) - 1);
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_error_mentions("bad.jsonl:2:");
	assert_int_equal(test_total_rows(f->repo), rows);
	cmv_buf_dispose(&back);
}

/* A rewind: the chain forks, the abandoned tail keeps a branch, the main branch follows. */
static void test_formats_claude_code__rewind_forks_the_chain(void **state)
{
	fixture *f = *state;
	char path[4096];
	cmv_import_result res;
	cmv_id a, b;
	cmv_walk *w = NULL;
	const char before[] = REC("s-5", "u1", "null", "start") "\n" REC("s-5", "u2", "\"u1\"", "middle") "\n"
		REC("s-5", "u3", "\"u2\"", "first answer") "\n";
	const char after[] = REC("s-5", "u1", "null", "start") "\n" REC("s-5", "u2", "\"u1\"", "middle") "\n"
		REC("s-5", "u3", "\"u2\"", "first answer") "\n" REC("s-5", "u4", "\"u2\"", "edited prompt") "\n"
		REC("s-5", "u5", "\"u4\"", "goes on") "\n";

	snprintf(path, sizeof(path), "%s/rewind.jsonl", f->dir);
	write_file(path, before, sizeof(before) - 1);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_string_equal(res.branch, "s-5");
	write_file(path, after, sizeof(after) - 1);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_cmv_ok(cmv_resolve(&a, f->repo, "s-5"));
	assert_cmv_ok(cmv_resolve(&b, f->repo, "s-5.2"));
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &a));
	assert_int_equal(cmv_walk_length(w), 4); /* u1 u2 u4 u5 */
	cmv_walk_free(w);
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &b));
	assert_int_equal(cmv_walk_length(w), 3); /* u1 u2 u3 */
	cmv_walk_free(w);
}

/* Escapes JavaScript would not write (\u00e9, \/) still come back byte for byte. */
static void test_formats_claude_code__unusual_escapes_round_trip(void **state)
{
	fixture *f = *state;
	char path[4096];
	cmv_import_result res;
	cmv_buf back = CMV_BUF_INIT(1 << 20);
	const char odd[] = REC("s-2", "u1", "null", "caf\\u00e9 and a\\/b and \\ud83d\\ude00") "\n"
		"{\"parentUuid\":\"u1\",\"type\":\"assistant\",\"message\":{\"role\":\"assistant\",\"content\":"
		"[{\"type\":\"text\",\"text\":\"tab\\there\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\","
		"\"input\":{ \"command\" : \"ls\" }}]},\"uuid\":\"u2\",\"sessionId\":\"s-2\"}\n";

	snprintf(path, sizeof(path), "%s/odd.jsonl", f->dir);
	write_file(path, odd, sizeof(odd) - 1);
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_cmv_ok(cmv_export_session(f->repo, "cc/s-2", test_buf_writer, &back));
	assert_int_equal(back.size, sizeof(odd) - 1);
	assert_memory_equal(back.ptr, odd, back.size);
	/* and the stored text is the decoded text */
	cmv_id tip;
	cmv_node *n = NULL;
	cmv_buf text = CMV_BUF_INIT(1 << 20);
	assert_cmv_ok(cmv_resolve(&tip, f->repo, "s-2~1"));
	assert_cmv_ok(cmv_node_read(&n, f->repo, &tip));
	assert_cmv_ok(cmv_blob_read(&text, f->repo, &n->blocks[0].blob));
	assert_string_equal(text.ptr, "caf\xc3\xa9 and a/b and \xf0\x9f\x98\x80");
	cmv_node_free(n);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&back);
}

/*
 * A raw NUL inside a string is not JSON (cJSON takes it all the same): the
 * import refuses it with file and line; a lenient one keeps the line whole,
 * and export still gives the file back byte for byte.
 */
static void test_formats_claude_code__raw_nul_is_refused_or_kept_whole(void **state)
{
	fixture *f = *state;
	char path[4096];
	cmv_import_result res;
	cmv_buf back = CMV_BUF_INIT(1 << 20), body = CMV_BUF_INIT(1 << 20);
	cmv_import_options lenient = CMV_IMPORT_OPTIONS_INIT;
	cmv_id tip;
	static const char nul[] = REC("s-9", "u1", "null", "first") "\n"
		"{\"type\":\"user\",\"uuid\":\"u2\",\"parentUuid\":\"u1\",\"message\":{\"role\":\"user\","
		"\"content\":\"a\0b\"}}\n" REC("s-9", "u3", "\"u1\"", "third") "\n";

	snprintf(path, sizeof(path), "%s/nul.jsonl", f->dir);
	write_file(path, nul, sizeof(nul) - 1);
	uint64_t rows = test_total_rows(f->repo);
	assert_cmv_fails_with(CMV_EINVALID, cmv_import_claude_code_file(&res, f->repo, path, NULL));
	assert_error_mentions("nul.jsonl:2:");
	assert_int_equal(test_total_rows(f->repo), rows);

	lenient.flags = CMV_IMPORT_LENIENT;
	assert_cmv_ok(cmv_import_claude_code_file(&res, f->repo, path, &lenient));
	assert_int_equal(res.skipped, 1);
	assert_cmv_ok(cmv_export_session(f->repo, "cc/s-9", test_buf_writer, &back));
	assert_int_equal(back.size, sizeof(nul) - 1);
	assert_memory_equal(back.ptr, nul, back.size);
	assert_cmv_ok(cmv_resolve(&tip, f->repo, res.branch));
	assert_cmv_ok(cmv_render(&body, NULL, f->repo, &tip, CMV_RENDER_ANTHROPIC, NULL));
	assert_int_equal(cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, body.ptr, body.size), 0);
	cmv_buf_dispose(&back);
	cmv_buf_dispose(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_formats_claude_code__every_session_round_trips_byte_for_byte, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__compaction_keeps_history_on_the_branch, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__grown_file_adds_only_its_tail, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__glued_cut_off_and_malformed_lines, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__unusual_escapes_round_trip, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__rewind_forks_the_chain, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_claude_code__raw_nul_is_refused_or_kept_whole, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: claude code", tests, NULL, NULL);
}
