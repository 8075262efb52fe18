/* SPDX-License-Identifier: MIT */
/*
 * Trim: every Claude Code session of the transcripts keeps every user
 * and assistant text after its last compaction, passes the checkers, keeps
 * its uuid chain and pairing, and every stub recalls its original bytes;
 * then one test per claude-code-cmv defect, and the store left as it was
 * by a failed or dry trim.
 */
#include <ctype.h>
#include <xxhash.h>
#include <cjson/cJSON.h>
#include "test.h"

static cmv_models *models;
static const cmv_model *model;
static cmv_tok *tok;

static int load_model(void **state)
{
	(void)state;
	assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&model, models, "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_tok_load(&tok, model->tokenizer, NULL));
	return 0;
}

static int free_model(void **state)
{
	(void)state;
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}

/* ---- reading a Claude Code session back ----------------------------------- */

typedef struct {
	cJSON **lines;
	size_t n;
} session;

static void session_parse(session *s, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	memset(s, 0, sizeof(*s));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (nl > p) {
			cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
			if (!j)
				fail_msg("a written line does not parse: %.200s", p);
			s->lines = realloc(s->lines, (s->n + 1) * sizeof(*s->lines));
			s->lines[s->n++] = j;
		}
		p = nl + 1;
	}
}

static void session_free(session *s)
{
	for (size_t i = 0; i < s->n; i++)
		cJSON_Delete(s->lines[i]);
	free(s->lines);
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *content_of(const cJSON *line)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(line, "message");
	return cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "content") : NULL;
}

static bool is_type(const cJSON *line, const char *t)
{
	const char *v = str(line, "type");
	return v && !strcmp(v, t);
}

/* The index of the last real compaction: a boundary line, or a summary with no boundary line before it. */
static size_t last_boundary(const session *s)
{
	size_t b = 0, line = SIZE_MAX, msgs = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *sub = str(s->lines[i], "subtype");
		if (is_type(s->lines[i], "system") && sub && !strcmp(sub, "compact_boundary")) {
			b = line = i;
			msgs = 0;
		} else if (is_type(s->lines[i], "user") || is_type(s->lines[i], "assistant")) {
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->lines[i], "isCompactSummary")) &&
			    (line == SIZE_MAX || msgs))
				b = i;
			msgs++;
		}
	}
	return b;
}

/* Every user and assistant text from `from` on, one string per text, in order. */
static void texts(const session *s, size_t from, cJSON *out)
{
	for (size_t i = from; i < s->n; i++) {
		if (!is_type(s->lines[i], "user") && !is_type(s->lines[i], "assistant"))
			continue;
		const cJSON *c = content_of(s->lines[i]);
		if (cJSON_IsString(c))
			cJSON_AddItemToArray(out, cJSON_CreateString(c->valuestring));
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next)
			if (str(b, "type") && !strcmp(str(b, "type"), "text") && str(b, "text"))
				cJSON_AddItemToArray(out, cJSON_CreateString(str(b, "text")));
	}
}

/* The written session's structure: uuid chain whole, no empty content, every call answered, no orphan. */
static void check_structure(const session *s, const char *what)
{
	cJSON *uuids = cJSON_CreateObject(), *calls = cJSON_CreateObject(), *results = cJSON_CreateObject();
	for (size_t i = 0; i < s->n; i++) {
		const cJSON *l = s->lines[i], *c = content_of(l);
		const char *parent = str(l, "parentUuid");
		if (parent && !cJSON_GetObjectItemCaseSensitive(uuids, parent))
			fail_msg("%s: line %zu hangs from %s, which is not in the session", what, i + 1, parent);
		if (str(l, "uuid"))
			cJSON_AddTrueToObject(uuids, str(l, "uuid"));
		if (cJSON_IsArray(c) && !c->child)
			fail_msg("%s: line %zu has an empty content array", what, i + 1);
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
			const char *t = str(b, "type");
			if (t && !strcmp(t, "tool_use"))
				cJSON_AddTrueToObject(calls, str(b, "id"));
			if (t && !strcmp(t, "tool_result")) {
				if (!cJSON_GetObjectItemCaseSensitive(calls, str(b, "tool_use_id")))
					fail_msg("%s: line %zu answers %s, a call it does not have", what, i + 1,
						 str(b, "tool_use_id"));
				cJSON_AddTrueToObject(results, str(b, "tool_use_id"));
			}
			if (t && (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || !strcmp(t, "image")))
				fail_msg("%s: line %zu still has a %s block", what, i + 1, t);
		}
		if (cJSON_GetObjectItemCaseSensitive(l, "toolUseResult"))
			fail_msg("%s: line %zu still has its toolUseResult copy", what, i + 1);
		if (is_type(l, "progress") || is_type(l, "file-history-snapshot") || is_type(l, "queue-operation"))
			fail_msg("%s: line %zu is a %s record", what, i + 1, str(l, "type"));
	}
	for (const cJSON *c = calls->child; c; c = c->next)
		if (!cJSON_GetObjectItemCaseSensitive(results, c->string))
			fail_msg("%s: call %s has no result", what, c->string);
	cJSON_Delete(uuids);
	cJSON_Delete(calls);
	cJSON_Delete(results);
}

static bool contains(const char *hay, size_t n, const char *needle, size_t m)
{
	if (!m)
		return true;
	for (const char *p = hay; m <= n && (p = memchr(p, needle[0], n - m + 1 - (size_t)(p - hay))) != NULL; p++)
		if (!memcmp(p, needle, m))
			return true;
	return false;
}

/* The id after "; recall " at p: the hex digits up to the stub's end (7 at least). */
static void stub_id(char id[CMV_ID_HEXSZ + 1], const char *p)
{
	size_t n = 0;
	p = strstr(p, "; recall ");
	assert_non_null(p);
	p += strlen("; recall ");
	while (n < CMV_ID_HEXSZ && isxdigit((unsigned char)p[n]))
		n++;
	memcpy(id, p, n);
	id[n] = '\0';
	assert_true(n >= CMV_ID_MINPREFIX);
	assert_int_equal(p[n], ']');
}

/* Every stub's id gives back bytes that were in the session: a string value of it, or raw JSON of it. */
static size_t check_stubs(cmv_repo *repo, const char *trimmed, const cmv_buf *original, const cJSON *strings)
{
	size_t n = 0;
	cmv_buf got = CMV_BUF_INIT(1u << 30);
	for (const char *p = trimmed; (p = strstr(p, "; recall ")) != NULL; p++) {
		char id[CMV_ID_HEXSZ + 1];
		stub_id(id, p);
		assert_cmv_ok(cmv_recall(&got, repo, id));
		char key[17];
		snprintf(key, sizeof(key), "%016llx", (unsigned long long)XXH3_64bits(got.ptr ? got.ptr : "", got.size));
		if (!cJSON_GetObjectItemCaseSensitive(strings, key) &&
		    !contains(original->ptr, original->size, got.ptr ? got.ptr : "", got.size))
			fail_msg("stub %s recalls %zu bytes that the original session does not hold", id, got.size);
		n++;
	}
	cmv_buf_dispose(&got);
	return n;
}

/* Every string value of a JSON tree, by hash. */
static void collect_strings(const cJSON *v, cJSON *set)
{
	if (cJSON_IsString(v)) {
		char key[17];
		snprintf(key, sizeof(key), "%016llx",
			 (unsigned long long)XXH3_64bits(v->valuestring, strlen(v->valuestring)));
		if (!cJSON_GetObjectItemCaseSensitive(set, key))
			cJSON_AddTrueToObject(set, key);
	}
	for (const cJSON *c = v->child; c; c = c->next)
		collect_strings(c, set);
}

static int buf_write(const void *data, size_t len, void *payload)
{
	return cmv_buf_put(payload, data, len);
}

static size_t sessions_seen, stubs_seen;

static void trim_one(cmv_repo *repo, const char *path, size_t k)
{
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_buf orig = CMV_BUF_INIT(1u << 30), cut = CMV_BUF_INIT(1u << 30), cwd = CMV_BUF_INIT(4096),
		body = CMV_BUF_INIT(1u << 30), problems = CMV_BUF_INIT(1 << 20);
	char branch[64], id[37];
	session before, after;
	(void)buf_write;

	snprintf(branch, sizeof(branch), "s%zu", k);
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	io.branch = branch;
	assert_cmv_ok(cmv_import_file(&res, repo, path, NULL, &io));
	snprintf(branch, sizeof(branch), "s%zu.trim", k);
	opts.branch = branch;
	opts.model = model;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(&rep, repo, &res.head, &opts));
	assert_true(rep.tokens_after <= rep.tokens_before);
	assert_true(rep.bytes_after < rep.bytes_before);
	assert_int_equal(rep.untrimmed_records, 0);

	/* the branch as Claude Code would resume it, before and after */
	assert_cmv_ok(cmv_claude_session_write(&orig, id, &cwd, repo, &res.head));
	assert_cmv_ok(cmv_claude_session_write(&cut, id, &cwd, repo, &rep.head));
	session_parse(&before, orig.ptr, orig.size);
	session_parse(&after, cut.ptr, cut.size);
	check_structure(&after, path);

	/* every text after the last compaction, verbatim and in order */
	cJSON *want = cJSON_CreateArray(), *have = cJSON_CreateArray();
	texts(&before, last_boundary(&before), want);
	texts(&after, 0, have);
	const cJSON *h = have->child;
	for (const cJSON *w = want->child; w; w = w->next) {
		while (h && strcmp(h->valuestring, w->valuestring))
			h = h->next;
		if (!h)
			fail_msg("%s: the text \"%.120s\" is not in the trimmed session (in order)", path, w->valuestring);
		h = h->next;
	}
	cJSON_Delete(want);
	cJSON_Delete(have);

	/* both providers take it, and nothing needed repairing */
	static const cmv_render_target targets[] = { CMV_RENDER_ANTHROPIC, CMV_RENDER_OPENAI_CHAT };
	for (size_t t = 0; t < 2; t++) {
		cmv_render_stats st;
		assert_cmv_ok(cmv_render(&body, &st, repo, &rep.head, targets[t], NULL));
		cmv_buf_clear(&problems);
		if (cmv_check_request(&problems, targets[t], body.ptr, body.size) != 0)
			fail_msg("%s trimmed, rendered for %s: %s", path, cmv_render_target_name(targets[t]), problems.ptr);
		assert_int_equal(st.answered_calls, 0);
		assert_int_equal(st.orphan_results, 0);
	}

	/* every stub gives back bytes of the original */
	cJSON *strings = cJSON_CreateObject();
	for (size_t i = 0; i < before.n; i++)
		collect_strings(before.lines[i], strings);
	size_t stubs = check_stubs(repo, cut.ptr, &orig, strings);
	assert_true(stubs >= rep.rules[CMV_TRIM_TOOL_RESULTS].items);
	stubs_seen += stubs;
	cJSON_Delete(strings);

	session_free(&before);
	session_free(&after);
	cmv_buf_dispose(&orig);
	cmv_buf_dispose(&cut);
	cmv_buf_dispose(&cwd);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	sessions_seen++;
}

typedef struct {
	cmv_repo *repo;
	size_t k; /* sessions seen: names their branches */
	size_t stubbed;
	cmv_buf body, problems, page, rollout;
} each_ctx;

static void each_claude(const char *path, void *payload)
{
	each_ctx *c = payload;
	trim_one(c->repo, path, c->k++);
}

static void test_every_claude_session(void **state)
{
	test_store *ts = *state;
	each_ctx c = { .repo = ts->repo };

	const char *dir = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	test_each_session(dir, "claude-code", each_claude, &c);
	print_message("%zu sessions trimmed, %zu stubs\n", sessions_seen, stubs_seen);
	if (test_transcripts_full(dir)) {
		assert_true(sessions_seen >= 14);
		assert_true(stubs_seen > 100);
	} else {
		assert_true(sessions_seen >= 5);
		assert_true(stubs_seen > 40);
	}
}

/* One Codex rollout, trimmed and checked (see test_codex_rollouts). */
static void each_codex(const char *path, void *payload)
{
	each_ctx *c = payload;
	cmv_import_result res;
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	char branch[64], id[37];
	snprintf(branch, sizeof(branch), "cx%zu", c->k);
	io.branch = branch;
	assert_cmv_ok(cmv_import_file(&res, c->repo, path, NULL, &io));
	snprintf(branch, sizeof(branch), "cx%zu.trim", c->k++);
	opts.branch = branch;
	opts.model = model;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(&rep, c->repo, &res.head, &opts));
	assert_int_equal(rep.records_after, rep.records_before);
	assert_true(rep.tokens_after < rep.tokens_before);
	/* what was cut is what the rule says, and only what a model is sent */
	assert_int_equal((int64_t)(rep.tokens_before - rep.tokens_after), rep.rules[CMV_TRIM_TOOL_RESULTS].tokens);
	c->stubbed += rep.rules[CMV_TRIM_TOOL_RESULTS].items;
	static const cmv_render_target targets[] = { CMV_RENDER_OPENAI_RESPONSES, CMV_RENDER_ANTHROPIC };
	for (size_t t = 0; t < 2; t++) {
		assert_cmv_ok(cmv_render(&c->body, NULL, c->repo, &rep.head, targets[t], NULL));
		cmv_buf_clear(&c->problems);
		if (cmv_check_request(&c->problems, targets[t], c->body.ptr, c->body.size) != 0)
			fail_msg("%s trimmed: %s", path, c->problems.ptr);
	}
	/* each stub recalls an output the original rollout holds */
	size_t checked = 0;
	for (const char *p = c->body.ptr; (p = strstr(p, "; recall ")) && checked < 5; p++, checked++) {
		char sid[8];
		memcpy(sid, p + 9, 7);
		sid[7] = '\0';
		assert_cmv_ok(cmv_recall(&c->page, c->repo, sid));
		assert_true(c->page.size > 500);
	}
	/* written back as a rollout: every line JSON, session_meta first */
	assert_cmv_ok(cmv_codex_session_write(&c->rollout, id, NULL, c->repo, &rep.head));
	assert_non_null(strstr(c->rollout.ptr, "\"type\":\"session_meta\""));
	assert_true(strstr(c->rollout.ptr, "\"type\":\"session_meta\"") < strchr(c->rollout.ptr, '\n'));
	for (char *line = c->rollout.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		cJSON *j = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
		assert_non_null(j);
		cJSON_Delete(j);
	}
}

/*
 * Codex rollouts: large tool outputs after the last `compacted` record are
 * stubbed in place, every record is kept, the request passes both checkers,
 * each stub recalls its output, and the rollout is written back whole.
 */
static void test_codex_rollouts(void **state)
{
	test_store *ts = *state;
	each_ctx c = { ts->repo, 0, 0, CMV_BUF_INIT(1u << 30), CMV_BUF_INIT(1 << 20), CMV_BUF_INIT(1u << 28),
		       CMV_BUF_INIT(1u << 30) };

	const char *dir = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	test_each_session(dir, "codex", each_codex, &c);
	print_message("%zu rollouts trimmed, %zu outputs stubbed\n", c.k, c.stubbed);
	if (test_transcripts_full(dir)) {
		assert_true(c.k >= 4);
		assert_true(c.stubbed > 50);
	} else {
		assert_true(c.k >= 1);
		assert_true(c.stubbed > 10);
	}
	cmv_buf_dispose(&c.body);
	cmv_buf_dispose(&c.problems);
	cmv_buf_dispose(&c.page);
	cmv_buf_dispose(&c.rollout);
}

/* ---- the anchor's defects, one by one, on a hand-made session ---------------- */

#define HDR(uuid, parent) "{\"parentUuid\":" parent ",\"isSidechain\":false,\"cwd\":\"/p\",\"sessionId\":\"S\",\"uuid\":\"" uuid "\","
#define USER(uuid, parent, content) HDR(uuid, parent) "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":" content "}}\n"
#define ASST(uuid, parent, id, content) HDR(uuid, parent) "\"type\":\"assistant\",\"message\":{\"id\":\"" id "\",\"role\":\"assistant\",\"content\":" content ",\"usage\":{\"input_tokens\":99000}}}\n"

#define SEVENTY "The quick brown fox jumps over the lazy dog while seventy chars pass. "
static const char big[] = SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY SEVENTY;

/* Import `text` as a session, trim it with threshold 50; the written session parsed. */
static void trim_text(test_store *ts, const char *text, cmv_trim_report *rep, session *out, cmv_buf *written)
{
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	char id[37];
	char *file = test_write_file(ts->dir, "s.jsonl", text, strlen(text));
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	io.branch = "s";
	assert_cmv_ok(cmv_import_file(&res, ts->repo, file, NULL, &io));
	opts.branch = "t";
	opts.threshold = 50;
	opts.model = model;
	opts.tok = tok;
	assert_cmv_ok(cmv_trim(rep, ts->repo, &res.head, &opts));
	assert_cmv_ok(cmv_claude_session_write(written, id, NULL, ts->repo, &rep->head));
	session_parse(out, written->ptr, written->size);
	check_structure(out, "hand-made session");
	free(file);
}

static void test_title_summary_is_not_a_boundary(void **state)
{
	cmv_trim_report rep;
	session s;
	cmv_buf w = CMV_BUF_INIT(1 << 20);
	const char *text = USER("u1", "null", "\"first question\"")
		ASST("a1", "\"u1\"", "m1", "[{\"type\":\"text\",\"text\":\"first answer\"}]")
		"{\"type\":\"summary\",\"summary\":\"A title\",\"leafUuid\":\"a1\"}\n"
		USER("u2", "\"a1\"", "\"second question\"");
	trim_text(*state, text, &rep, &s, &w);
	assert_int_equal(rep.rules[CMV_TRIM_PRE_BOUNDARY].items, 0);
	assert_non_null(strstr(w.ptr, "first question"));
	assert_non_null(strstr(w.ptr, "first answer"));
	assert_non_null(strstr(w.ptr, "A title"));
	session_free(&s);
	cmv_buf_dispose(&w);
}

static void test_boundary_orphans_empty_and_unanswered(void **state)
{
	cmv_trim_report rep;
	session s;
	cmv_buf w = CMV_BUF_INIT(1 << 20);
	const char *text = USER("u1", "null", "\"old question\"")
		ASST("a1", "\"u1\"", "m1", "[{\"type\":\"tool_use\",\"id\":\"T1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}}]")
		"{\"parentUuid\":null,\"logicalParentUuid\":\"a1\",\"type\":\"system\",\"subtype\":\"compact_boundary\",\"uuid\":\"b1\",\"sessionId\":\"S\"}\n"
		HDR("u2", "\"b1\"") "\"isCompactSummary\":true,\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Summary of before\"}}\n"
		/* the result of a call made before the compaction: an orphan now */
		USER("u3", "\"u2\"", "[{\"type\":\"tool_result\",\"tool_use_id\":\"T1\",\"content\":\"x\"}]")
		/* only thinking: nothing left once it goes */
		ASST("a2", "\"u3\"", "m2", "[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"sig\"}]")
		ASST("a3", "\"a2\"", "m2", "[{\"type\":\"text\",\"text\":\"kept answer\"},{\"type\":\"tool_use\",\"id\":\"T2\",\"name\":\"Read\",\"input\":{\"file_path\":\"/p/x\"}}]");
	trim_text(*state, text, &rep, &s, &w);
	assert_int_equal(rep.rules[CMV_TRIM_PRE_BOUNDARY].items, 2);
	assert_int_equal(rep.rules[CMV_TRIM_ORPHANS].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_EMPTY].items, 2); /* the orphan's line and the thinking line */
	assert_int_equal(rep.rules[CMV_TRIM_UNANSWERED].items, 1);
	assert_null(strstr(w.ptr, "old question"));
	assert_non_null(strstr(w.ptr, "Summary of before"));
	assert_non_null(strstr(w.ptr, "kept answer"));
	/* boundary, summary, answer line, the added result */
	assert_int_equal(s.n, 4);
	assert_string_equal(str(s.lines[2], "parentUuid"), "u2"); /* relinked past the two dropped lines */
	const cJSON *res = content_of(s.lines[3])->child;
	assert_string_equal(str(res, "tool_use_id"), "T2");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "is_error")));
	assert_string_equal(str(s.lines[3], "parentUuid"), "a3");
	assert_string_equal(str(s.lines[3], "cwd"), "/p"); /* the fields every line has, from the call's line */
	assert_non_null(str(s.lines[3], "sessionId"));
	/* usage of the untrimmed context is gone */
	assert_null(strstr(w.ptr, "99000"));
	session_free(&s);
	cmv_buf_dispose(&w);
}

static void test_bloat_rules(void **state)
{
	test_store *ts = *state;
	cmv_trim_report rep;
	session s;
	cmv_buf w = CMV_BUF_INIT(1 << 20), got = CMV_BUF_INIT(1 << 20);
	char *text = NULL;
	cmv_buf t = CMV_BUF_INIT(1 << 20);
	cmv_buf_printf(&t, "%s", USER("u1", "null", "[{\"type\":\"text\",\"text\":\"look at this\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgoAAAANSUhEUg==\"}}]"));
	cmv_buf_printf(&t, "%s", ASST("a1", "\"u1\"", "m1", "[{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},{\"type\":\"text\",\"text\":\"I see\"}]"));
	/* progress that the next line hangs from */
	cmv_buf_printf(&t, "{\"parentUuid\":\"a1\",\"type\":\"progress\",\"data\":{\"type\":\"hook_progress\"},\"uuid\":\"p1\",\"sessionId\":\"S\"}\n");
	cmv_buf_printf(&t, HDR("a2", "\"p1\"") "\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"role\":\"assistant\",\"content\":["
		       "{\"type\":\"tool_use\",\"id\":\"T1\",\"name\":\"MultiEdit\",\"input\":{\"file_path\":\"/p/f.c\",\"edits\":[{\"old_string\":\"a\",\"new_string\":\"%s\"}]}},"
		       "{\"type\":\"tool_use\",\"id\":\"T2\",\"name\":\"Bash\",\"input\":{\"command\":\"cat <<EOF > x\\n%s\\nEOF\"}}]}}\n", big, big);
	cmv_buf_printf(&t, HDR("u2", "\"a2\"") "\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":["
		       "{\"type\":\"tool_result\",\"tool_use_id\":\"T1\",\"content\":\"ok\"},"
		       "{\"type\":\"tool_result\",\"tool_use_id\":\"T2\",\"content\":\"%s\"}]},\"toolUseResult\":{\"stdout\":\"%s\"}}\n", big, big);
	cmv_buf_printf(&t, "{\"type\":\"file-history-snapshot\",\"messageId\":\"x\",\"snapshot\":{}}\n");
	cmv_buf_printf(&t, "{\"type\":\"queue-operation\",\"operation\":\"enqueue\"}\n");
	text = t.ptr;
	trim_text(ts, text, &rep, &s, &w);
	assert_int_equal(rep.rules[CMV_TRIM_IMAGES].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_THINKING].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_PROGRESS].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_FILE_HISTORY].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_QUEUE].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_UI_COPIES].items, 1);
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_INPUTS].items, 2); /* nested new_string, and the Bash heredoc */
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 1);
	assert_true(rep.rules[CMV_TRIM_TOOL_RESULTS].tokens > 0);
	assert_null(strstr(w.ptr, big));
	assert_non_null(strstr(w.ptr, "look at this"));
	assert_non_null(strstr(w.ptr, "I see"));
	assert_non_null(strstr(w.ptr, "/p/f.c")); /* small inputs stay */
	assert_string_equal(str(s.lines[2], "parentUuid"), "a1"); /* past the dropped progress line */
	/* the stubs' blobs hang from the trimmed records: gc keeps them */
	cmv_gc_stats gs;
	assert_cmv_ok(cmv_gc(&gs, ts->repo, 0));
	/* the image's stub recalls the image's data, exactly */
	const char *img = strstr(w.ptr, "[image/png image");
	assert_non_null(img);
	char id[CMV_ID_HEXSZ + 1];
	stub_id(id, img);
	assert_cmv_ok(cmv_recall(&got, ts->repo, id));
	assert_int_equal(got.size, strlen("iVBORw0KGgoAAAANSUhEUg=="));
	assert_memory_equal(got.ptr, "iVBORw0KGgoAAAANSUhEUg==", got.size);
	/* the nested input's stub recalls the string itself */
	const char *in = strstr(w.ptr, "\"new_string\":\"[");
	assert_non_null(in);
	stub_id(id, in);
	assert_cmv_ok(cmv_recall(&got, ts->repo, id));
	assert_int_equal(got.size, strlen(big));
	assert_memory_equal(got.ptr, big, got.size);
	/* the heredoc's stub keeps its key; the result's stub gives size and lines */
	assert_non_null(strstr(w.ptr, "\"command\":\"[718 chars, 3 lines; recall "));
	assert_non_null(strstr(w.ptr, "\"content\":\"[700 chars; recall "));
	session_free(&s);
	cmv_buf_dispose(&w);
	cmv_buf_dispose(&got);
	cmv_buf_dispose(&t);
}

/* Every TodoWrite list but the last is restated by a later call: stubbed, and recalled byte for byte. */
static void test_superseded_todo_lists(void **state)
{
	test_store *ts = *state;
	cmv_trim_report rep;
	session s;
	cmv_buf w = CMV_BUF_INIT(1 << 20), got = CMV_BUF_INIT(1 << 20);
	/* spaced as no serializer would write it: the recall must give these bytes, not a reprint */
	const char *first = "[ {\"content\": \"write the parser\", \"status\": \"in_progress\", \"activeForm\": \"Writing the parser\"},"
			    " {\"content\": \"test it\", \"status\": \"pending\", \"activeForm\": \"Testing it\"} ]";
	const char *last = "[{\"content\":\"write the parser\",\"status\":\"completed\",\"activeForm\":\"Writing the parser\"}]";
	cmv_buf t = CMV_BUF_INIT(1 << 20);
	cmv_buf_printf(&t, "%s", USER("u1", "null", "\"plan it\""));
	cmv_buf_printf(&t, ASST("a1", "\"u1\"", "m1", "[{\"type\":\"tool_use\",\"id\":\"T1\",\"name\":\"TodoWrite\",\"input\":{\"todos\":%s}}]"), first);
	cmv_buf_printf(&t, "%s", USER("u2", "\"a1\"", "[{\"type\":\"tool_result\",\"tool_use_id\":\"T1\",\"content\":\"ok\"}]"));
	cmv_buf_printf(&t, ASST("a2", "\"u2\"", "m2", "[{\"type\":\"tool_use\",\"id\":\"T2\",\"name\":\"TodoWrite\",\"input\":{\"todos\":%s}}]"), last);
	cmv_buf_printf(&t, "%s", USER("u3", "\"a2\"", "[{\"type\":\"tool_result\",\"tool_use_id\":\"T2\",\"content\":\"ok\"}]"));
	trim_text(ts, t.ptr, &rep, &s, &w);
	assert_int_equal(rep.rules[CMV_TRIM_SUPERSEDED].items, 1);
	assert_true(rep.rules[CMV_TRIM_SUPERSEDED].bytes > 0);
	assert_null(strstr(w.ptr, "in_progress"));
	assert_non_null(strstr(w.ptr, last)); /* the state as it stands stays verbatim */
	const char *stub = strstr(w.ptr, "\"todos\":\"[superseded; recall ");
	assert_non_null(stub);
	/* the stub's blob hangs from the trimmed record: gc keeps it */
	cmv_gc_stats gs;
	assert_cmv_ok(cmv_gc(&gs, ts->repo, 0));
	char id[CMV_ID_HEXSZ + 1];
	stub_id(id, stub);
	assert_cmv_ok(cmv_recall(&got, ts->repo, id));
	assert_int_equal(got.size, strlen(first));
	assert_memory_equal(got.ptr, first, got.size);
	session_free(&s);
	cmv_buf_dispose(&w);
	cmv_buf_dispose(&got);
	cmv_buf_dispose(&t);
}

/* A live trim (a hook's): the tail the agent still writes to stays, and no call is answered for it. */
static void test_live_trim_keeps_the_tail(void **state)
{
	test_store *ts = *state;
	cmv_trim_report rep;
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_buf t = CMV_BUF_INIT(1 << 20), w = CMV_BUF_INIT(1 << 20);
	session s;
	char id[37];
	cmv_buf_printf(&t, "%s", USER("u1", "null", "\"run it\""));
	cmv_buf_printf(&t, "%s", ASST("a1", "\"u1\"", "m1", "[{\"type\":\"tool_use\",\"id\":\"T1\",\"name\":\"Bash\",\"input\":{\"command\":\"run\"}}]"));
	cmv_buf_printf(&t, "{\"parentUuid\":\"a1\",\"type\":\"progress\",\"data\":{},\"uuid\":\"p1\",\"sessionId\":\"S\"}\n");
	cmv_buf_printf(&t, USER("u2", "\"p1\"", "[{\"type\":\"tool_result\",\"tool_use_id\":\"T1\",\"content\":\"%s\"}]"), big);
	/* the call in flight: its result is not written yet, and a progress line hangs from it */
	cmv_buf_printf(&t, "%s", ASST("a2", "\"u2\"", "m2", "[{\"type\":\"thinking\",\"thinking\":\"next\",\"signature\":\"s\"},{\"type\":\"tool_use\",\"id\":\"T2\",\"name\":\"Bash\",\"input\":{\"command\":\"again\"}}]"));
	cmv_buf_printf(&t, "{\"parentUuid\":\"a2\",\"type\":\"progress\",\"data\":{},\"uuid\":\"p2\",\"sessionId\":\"S\"}\n");
	char *file = test_write_file(ts->dir, "live.jsonl", t.ptr, t.size);
	io.branch = "live";
	assert_cmv_ok(cmv_import_file(&res, ts->repo, file, NULL, &io));
	opts.branch = "live.trim";
	opts.threshold = 50;
	opts.flags = CMV_TRIM_LIVE;
	assert_cmv_ok(cmv_trim(&rep, ts->repo, &res.head, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_UNANSWERED].items, 0);
	assert_int_equal(rep.rules[CMV_TRIM_PROGRESS].items, 1); /* p1, not p2 */
	assert_int_equal(rep.rules[CMV_TRIM_TOOL_RESULTS].items, 1);
	assert_cmv_ok(cmv_claude_session_write(&w, id, NULL, ts->repo, &rep.head));
	session_parse(&s, w.ptr, w.size);
	assert_int_equal(s.n, 5);
	assert_string_equal(str(s.lines[2], "parentUuid"), "a1"); /* relinked past p1 */
	assert_string_equal(str(s.lines[3], "uuid"), "a2");
	assert_non_null(strstr(w.ptr, "\"thinking\":\"next\"")); /* the tail as it was */
	assert_string_equal(str(s.lines[4], "uuid"), "p2");
	assert_null(strstr(w.ptr, "no result was recorded"));
	session_free(&s);
	free(file);
	cmv_buf_dispose(&t);
	cmv_buf_dispose(&w);
}

typedef struct {
	uint32_t prefix; /* the id's first 7 hex digits */
	uint32_t i;
} prefix_of;

static int cmp_prefix(const void *a, const void *b)
{
	const prefix_of *x = a, *y = b;
	return x->prefix < y->prefix ? -1 : x->prefix > y->prefix ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* A stub's id is as long as it must be to name one object: two blobs with the same 7 digits get 8 or more. */
static void test_stub_ids_stay_unambiguous(void **state)
{
	test_store *ts = *state;
	cmv_trim_report rep;
	session s;
	cmv_buf w = CMV_BUF_INIT(1 << 20), got = CMV_BUF_INIT(1 << 20), t = CMV_BUF_INIT(1 << 20);
	enum { N = 100000 };
	prefix_of *all = calloc(N, sizeof(*all));
	char a[160], b[160], hex[CMV_ID_HEXSZ + 1];
	size_t k;
	assert_non_null(all);
	/* a birthday search: among 100k texts, some two share 28 bits of id (about 18 pairs expected) */
	for (uint32_t i = 0; i < N; i++) {
		cmv_id id;
		int n = snprintf(a, sizeof(a), "collide-%08u %s", i, SEVENTY);
		cmv_id_hash(&id, a, (size_t)n);
		cmv_id_tostr(hex, sizeof(hex), &id);
		hex[7] = '\0';
		all[i] = (prefix_of){ (uint32_t)strtoul(hex, NULL, 16), i };
	}
	qsort(all, N, sizeof(*all), cmp_prefix);
	for (k = 0; k + 1 < N && all[k].prefix != all[k + 1].prefix; k++)
		;
	assert_true(k + 1 < N);
	int na = snprintf(a, sizeof(a), "collide-%08u %s", all[k].i, SEVENTY);
	snprintf(b, sizeof(b), "collide-%08u %s", all[k + 1].i, SEVENTY);
	free(all);
	cmv_id ida;
	assert_cmv_ok(cmv_blob_write(&ida, ts->repo, a, (size_t)na));

	cmv_buf_printf(&t, "%s", USER("u1", "null", "\"run it\""));
	cmv_buf_printf(&t, "%s", ASST("a1", "\"u1\"", "m1", "[{\"type\":\"tool_use\",\"id\":\"T1\",\"name\":\"Bash\",\"input\":{\"command\":\"run\"}}]"));
	cmv_buf_printf(&t, USER("u2", "\"a1\"", "[{\"type\":\"tool_result\",\"tool_use_id\":\"T1\",\"content\":\"%s\"}]"), b);
	trim_text(ts, t.ptr, &rep, &s, &w);
	const char *stub = strstr(w.ptr, "; recall ");
	char id[CMV_ID_HEXSZ + 1];
	stub_id(id, stub);
	assert_true(strlen(id) > CMV_ID_MINPREFIX);
	assert_cmv_ok(cmv_recall(&got, ts->repo, id));
	assert_int_equal(got.size, strlen(b));
	assert_memory_equal(got.ptr, b, got.size);
	/* and the 7 digits alone are ambiguous, which is why */
	id[CMV_ID_MINPREFIX] = '\0';
	assert_int_equal(cmv_recall(&got, ts->repo, id), CMV_EAMBIGUOUS);
	session_free(&s);
	cmv_buf_dispose(&w);
	cmv_buf_dispose(&got);
	cmv_buf_dispose(&t);
}

static void test_bad_threshold_and_failures_change_nothing(void **state)
{
	test_store *ts = *state;
	cmv_import_result res;
	cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	const char *text = USER("u1", "null", "\"q\"") ASST("a1", "\"u1\"", "m1", "[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"},{\"type\":\"text\",\"text\":\"a\"}]");
	char *file = test_write_file(ts->dir, "s.jsonl", text, strlen(text));
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	io.branch = "s";
	assert_cmv_ok(cmv_import_file(&res, ts->repo, file, NULL, &io));
	uint64_t rows = test_total_rows(ts->repo);

	opts.branch = "t";
	opts.threshold = 49;
	assert_cmv_fails_with(CMV_EINVALID, cmv_trim(&rep, ts->repo, &res.head, &opts));
	assert_error_mentions("at least 50");
	opts.threshold = 0;
	opts.branch = "s"; /* exists */
	assert_cmv_fails_with(CMV_EEXISTS, cmv_trim(&rep, ts->repo, &res.head, &opts));
	opts.branch = "bad..name";
	assert_cmv_fails_with(CMV_EINVALID, cmv_trim(&rep, ts->repo, &res.head, &opts));
	opts.branch = NULL;
	opts.flags = CMV_TRIM_DRY_RUN;
	assert_cmv_ok(cmv_trim(&rep, ts->repo, &res.head, &opts));
	assert_int_equal(rep.rules[CMV_TRIM_THINKING].items, 1);
	assert_int_equal(test_total_rows(ts->repo), rows);
	/* a trim that goes through adds rows; one of them names where it came from */
	opts.flags = 0;
	opts.branch = "t";
	assert_cmv_ok(cmv_trim(&rep, ts->repo, &res.head, &opts));
	assert_true(test_total_rows(ts->repo) > rows);
	cmv_node *n = NULL;
	assert_cmv_ok(cmv_node_read(&n, ts->repo, &rep.head));
	assert_int_equal(n->n_derived_from, 1);
	cmv_node_free(n);
	cmv_buf note = CMV_BUF_INIT(4096);
	assert_cmv_ok(cmv_branch_note_get(&note, ts->repo, "t", "trim"));
	assert_non_null(strstr(note.ptr, "\"threshold\":500"));
	cmv_buf_dispose(&note);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_claude_session, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_codex_rollouts, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_title_summary_is_not_a_boundary, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_boundary_orphans_empty_and_unanswered, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_bloat_rules, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_superseded_todo_lists, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_stub_ids_stay_unambiguous, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_live_trim_keeps_the_tail, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_bad_threshold_and_failures_change_nothing, test_store_setup,
						test_store_teardown),
	};
	return cmocka_run_group_tests(tests, load_model, free_model);
}
