/* SPDX-License-Identifier: MIT */
/*
 * The pre-migration job: on every Claude Code and Codex session of the
 * transcripts (the curated set, or the full corpus in ../shared) for a 16k
 * and a 32k target (offline), the result fits (counted exactly), passes the
 * provider checker, and uncompacts to the original node for node;
 * multi-pass against a summarizer with an 8k window (replayed), where no
 * request passes the summarizer's window less its output reserve; failures
 * change nothing; the capability check; the handoff document's shape; the
 * fidelity check.
 */
#include <cjson/cJSON.h>
#include "test.h"

static cmv_models *models;
static char *models_dir;

static void import_as(cmv_repo *repo, const char *file, const char *branch)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;
	io.branch = branch;
	assert_cmv_ok(cmv_import_file(&res, repo, file, NULL, &io));
}

static int load_models(void **state)
{
	static const char file[] =
		"{\"models\":["
		"{\"id\":\"target-16k\",\"base\":\"gpt-4o\",\"context_window\":16384,\"max_output\":4096},"
		"{\"id\":\"target-32k\",\"base\":\"claude-sonnet-4-5\",\"context_window\":32768,\"max_output\":4096},"
		"{\"id\":\"no-tools-16k\",\"base\":\"gpt-4o\",\"context_window\":16384,\"max_output\":2048,\"tools\":false,"
		"\"images\":false}]}";
	models_dir = test_tmpdir();
	char *path = test_write_file(models_dir, "models.json", file, strlen(file));
	assert_cmv_ok(cmv_models_load(&models, path));
	free(path);
	(void)state;
	return 0;
}

static int free_models(void **state)
{
	cmv_models_free(models);
	models = NULL;
	test_rmdir(models_dir);
	free(models_dir);
	(void)state;
	return 0;
}

static const cmv_model *model(const char *id)
{
	const cmv_model *m = NULL;
	assert_cmv_ok(cmv_models_find(&m, models, id));
	return m;
}


/* Render the branch for the model as compaction does, count it exactly, check it. */
static uint64_t render_count_check(cmv_repo *repo, const cmv_id *tip, const cmv_model *m, cmv_tok *tok, cmv_buf *body)
{
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_token_stats ts;
	cmv_buf problems = CMV_BUF_INIT(CMV_BUF_SMALL);
	ro.model = m->id;
	ro.flags = CMV_RENDER_NO_DECORATIONS | (m->tools ? 0 : CMV_RENDER_TOOLS_AS_TEXT);
	assert_cmv_ok(cmv_render(body, NULL, repo, tip, cmv_model_render_target(m), &ro));
	assert_cmv_ok(cmv_count_request(&ts, m, tok, body->ptr, body->size));
	int np = cmv_check_request(&problems, cmv_model_render_target(m), body->ptr, body->size);
	if (np != 0)
		fail_msg("the compacted request fails the checker: %s", problems.ptr);
	cmv_buf_dispose(&problems);
	return ts.total;
}

/* The node ids of a conversation, in order, as one string. */
static void path_ids(cmv_buf *out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_buf_clear(out);
	assert_cmv_ok(cmv_walk_new(&w, repo, tip));
	while (cmv_walk_next(&n, w) == 0)
		cmv_buf_printf(out, "%s\n", cmv_id_tostr(hex, sizeof(hex), &n->id));
	cmv_walk_free(w);
}

static size_t compacted, summarized, abridged, resumable;

/* Written as a Claude Code session, the compacted branch resumes: the summary is a line, the uuid chain unbroken. */
static void check_claude_session(cmv_repo *repo, const cmv_id *tip)
{
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char id[37];
	cJSON *uuids = cJSON_CreateObject();
	size_t lines = 0;
	bool summary_line = false;
	assert_cmv_ok(cmv_claude_session_write(&out, id, NULL, repo, tip));
	for (char *line = out.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		cJSON *j = cJSON_Parse(line);
		assert_non_null(j);
		const char *parent = cJSON_GetStringValue(cJSON_GetObjectItem(j, "parentUuid"));
		if (parent && !cJSON_GetObjectItem(uuids, parent))
			fail_msg("line %zu hangs from %s, which is not in the file", lines + 1, parent);
		const char *uuid = cJSON_GetStringValue(cJSON_GetObjectItem(j, "uuid"));
		if (uuid)
			cJSON_AddTrueToObject(uuids, uuid);
		const char *sid = cJSON_GetStringValue(cJSON_GetObjectItem(j, "sessionId"));
		if (sid) /* some record types (a title, file history) carry none */
			assert_string_equal(sid, id);
		if (strstr(line, "# Handoff document"))
			summary_line = true;
		cJSON_Delete(j);
		lines++;
	}
	assert_true(summary_line);
	assert_true(lines > 1);
	cJSON_Delete(uuids);
	cmv_buf_dispose(&out);
	resumable++;
}

static void compact_one(cmv_repo *repo, const char *file, size_t k, const cmv_model *m, cmv_tok *tok)
{
	cmv_compact_options o = CMV_COMPACT_OPTIONS_INIT;
	cmv_compact_report rep;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), a = CMV_BUF_INIT(CMV_BUF_CONTENT), b = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char name[128];
	cmv_ref *r = NULL;

	snprintf(name, sizeof(name), "s%zu", k);
	if (cmv_ref_lookup(&r, repo, name) < 0) {
		cmv_error_clear();
		import_as(repo, file, name);
		assert_cmv_ok(cmv_ref_lookup(&r, repo, name));
	}
	cmv_id tip = r->target;
	cmv_ref_free(r);
	snprintf(name, sizeof(name), "s%zu.for-%s", k, m->id);
	o.branch = name;
	o.target = m;
	o.tok = tok;
	int rc = cmv_compact(&rep, repo, &tip, &o);
	if (rc < 0)
		fail_msg("%s for %s: %s", file, m->id, cmv_error_last() ? cmv_error_last()->message : "?");
	assert_true(rep.fits);
	assert_int_equal(rep.problems, 0);
	assert_true(rep.tokens_after <= rep.budget);
	assert_true(rep.coverage >= 0 && rep.coverage <= 1);
	/* counted again from the store, independently of the job */
	uint64_t again = render_count_check(repo, &rep.head, m, tok, &body);
	assert_int_equal(again, rep.tokens_after);
	assert_true(again <= cmv_model_input_budget(m));
	if (rep.stage >= 2) {
		cmv_node *s = NULL;
		assert_cmv_ok(cmv_node_read(&s, repo, &rep.summary));
		assert_int_equal(s->kind, CMV_KIND_SUMMARY);
		assert_int_equal(s->n_covers, rep.covered_nodes);
		cmv_node_free(s);
		/* the id the summary shows brings the covered messages back */
		cmv_buf rec = CMV_BUF_INIT(CMV_BUF_CONTENT);
		char shortid[8];
		snprintf(shortid, sizeof(shortid), "%.7s", rep.recall);
		assert_non_null(strstr(body.ptr, shortid));
		assert_cmv_ok(cmv_recall(&rec, repo, rep.recall));
		cJSON *msgs = cJSON_ParseWithLength(rec.ptr, rec.size);
		assert_int_equal(cJSON_GetArraySize(msgs), rep.covered_messages);
		cJSON_Delete(msgs);
		cmv_buf_dispose(&rec);
		for (int sec = 0; sec < CMV_HANDOFF_NSECTIONS; sec++) {
			char h[128];
			snprintf(h, sizeof(h), "## %s", cmv_handoff_sections()[sec]);
			assert_non_null(strstr(body.ptr, h));
		}
		summarized++;
		if (strstr(file, "/claude-code/"))
			check_claude_session(repo, &rep.head);
	}
	if (rep.stage == 3) {
		/* the abridged system prompt says so, and its id brings the whole text back */
		cmv_buf whole = CMV_BUF_INIT(CMV_BUF_CONTENT);
		char shortid[8];
		snprintf(shortid, sizeof(shortid), "%.7s", rep.system_recall);
		assert_non_null(strstr(body.ptr, "is abridged to fit"));
		assert_non_null(strstr(body.ptr, shortid));
		assert_cmv_ok(cmv_recall(&whole, repo, rep.system_recall));
		assert_true(whole.size > 10000);
		cmv_buf_dispose(&whole);
		/* written back as a Codex rollout, it still opens with its session_meta, abridged */
		if (strstr(file, "/codex/")) {
			cmv_buf rollout = CMV_BUF_INIT(CMV_BUF_CONTENT);
			char new_id[37];
			assert_cmv_ok(cmv_codex_session_write(&rollout, new_id, NULL, repo, &rep.head));
			char *nl = strchr(rollout.ptr, '\n');
			assert_non_null(nl);
			*nl = '\0';
			assert_non_null(strstr(rollout.ptr, "\"type\":\"session_meta\""));
			assert_non_null(strstr(rollout.ptr, new_id));
			assert_non_null(strstr(rollout.ptr, "is abridged to fit"));
			assert_non_null(strstr(nl + 1, "# Handoff document"));
			cmv_buf_dispose(&rollout);
		}
		abridged++;
	}
	/* uncompact: the original conversation, node for node */
	cmv_id orig;
	size_t n = 0;
	assert_cmv_ok(cmv_uncompact(&orig, &n, repo, &rep.head));
	path_ids(&a, repo, &tip);
	path_ids(&b, repo, &orig);
	assert_string_equal(a.ptr, b.ptr);
	assert_true(n > 0);
	cmv_compact_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&a);
	cmv_buf_dispose(&b);
	compacted++;
}

typedef struct {
	cmv_repo *repo;
	const cmv_model *m;
	cmv_tok *tok;
	size_t k; /* sessions seen: names their branches */
} each_ctx;

static void each_compact(const char *file, void *p)
{
	each_ctx *c = p;
	compact_one(c->repo, file, c->k++, c->m, c->tok);
}

static void each_agent(each_ctx *c)
{
	const char *root = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	test_each_session(root, "claude-code", each_compact, c);
	test_each_session(root, "codex", each_compact, c);
}

static void test_every_session_offline(void **state)
{
	test_store *ts = *state;
	static const char *const targets[] = { "target-16k", "target-32k" };
	for (size_t t = 0; t < 2; t++) {
		each_ctx c = { ts->repo, model(targets[t]), NULL, 0 };
		assert_cmv_ok(cmv_tok_load(&c.tok, c.m->tokenizer, NULL));
		each_agent(&c);
		cmv_tok_free(c.tok);
	}
	/*
	 * An 8k model: most sessions need a summary, each checked to resume as
	 * a Claude Code session; Codex's system prompts alone pass it, so they
	 * are abridged too (stage 3).
	 */
	each_ctx c8 = { ts->repo, model("gpt-4"), NULL, 1000 };
	size_t before = compacted;
	assert_cmv_ok(cmv_tok_load(&c8.tok, c8.m->tokenizer, NULL));
	each_agent(&c8);
	cmv_tok_free(c8.tok);
	/* every session twice; trim alone brings most within 32k, the largest need a summary */
	print_message("%zu compactions, %zu with a summary, %zu abridged, %zu resumable\n", compacted, summarized,
		      abridged, resumable);
	size_t sessions = test_transcripts_full(test_transcripts_dir(CMV_TEST_TRANSCRIPTS)) ? 18 : 6;
	assert_true(compacted - before >= sessions);
	assert_true(abridged >= 1);
	assert_true(resumable >= (sessions == 18 ? 3 : 1)); /* the curated set: 64- at 8k */
	assert_true(compacted >= 2 * sessions);
	assert_true(summarized >= (sessions == 18 ? 6 : 4));
}

/* ---- an LLM summarizer with an 8k window, replayed -------------------------------- */

static const char canned[] =
	"## User instructions and constraints\n- keep the tests offline\n## Decisions made\n- use the replay server\n"
	"## Tasks in progress\n- (none)\n## Pending actions and unanswered tool calls\n- (none)\n"
	"## Key tool results\n- make check passed\n## Files touched\n- src/main.c\n## Open questions\n- (none)\n"
	"## Declared losses\n- the exact diff of src/main.c\n";

static char *replay_file(const char *dir, size_t n, size_t fail_after)
{
	cmv_buf f = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cJSON *ex = cJSON_CreateObject(), *body = cJSON_CreateObject(), *choices = cJSON_AddArrayToObject(body, "choices");
	cJSON *c = cJSON_CreateObject(), *msg = cJSON_AddObjectToObject(c, "message");
	cJSON_AddStringToObject(msg, "role", "assistant");
	cJSON_AddStringToObject(msg, "content", canned);
	cJSON_AddStringToObject(c, "finish_reason", "stop");
	cJSON_AddItemToArray(choices, c);
	cJSON_AddNumberToObject(ex, "status", 200);
	cJSON_AddItemToObject(ex, "body", body);
	char *line = cJSON_PrintUnformatted(ex);
	for (size_t i = 0; i < n; i++)
		cmv_buf_printf(&f, "%s\n", i == fail_after ? "{\"status\":400,\"body\":{\"error\":{\"message\":\"boom\"}}}" : line);
	cJSON_free(line);
	cJSON_Delete(ex);
	char *path = test_write_file(dir, "replay.jsonl", f.ptr, f.size);
	cmv_buf_dispose(&f);
	return path;
}

#define LONGEST_SESSION "claude-code/entireio-cli/b0-2936744f3b-0__2026-01-14-b00b80af-879f-4265-b95b-48db0938673c.jsonl"

/* The longest Claude Code session of the full corpus (3 MB, ~78k tokens), or of the curated set (64-, 325 KB). */
static const char *largest_session(cmv_buf *out)
{
	const char *root = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	cmv_buf_clear(out);
	cmv_buf_printf(out, "%s/%s", root,
		       test_transcripts_full(root)
			       ? LONGEST_SESSION
			       : "claude-code/entireio-cli/64-267478c135-0__8897bd54-16f4-4a28-8e23-cb187c639e40.jsonl");
	return out->ptr;
}

/*
 * The summarizer's tests need a session of many 8k parts, and the handoff's
 * test names what the full corpus's longest session holds: the curated set
 * has nothing that long. There the test says what it does not run, and skips
 * (the corpus tier runs it). Called first, before anything is allocated.
 */
static void needs_the_longest_session(const char *what)
{
	cmv_buf path = CMV_BUF_INIT(4096);
	bool have = test_transcript(&path, test_transcripts_dir(CMV_TEST_TRANSCRIPTS), LONGEST_SESSION, what);
	cmv_buf_dispose(&path);
	if (!have)
		skip();
}

/* The largest session, a 16k target, and gpt-4 (8k) summarizing from a replayed file. */
typedef struct {
	const cmv_model *target, *summ;
	cmv_tok *tok, *stok;
	cmv_llm_transport *replay;
	cmv_llm *llm;
	char *dir;
	cmv_id tip;
	cmv_compact_options o;
} llm_job;

/* Import the session as `name`; the replay holds n replies, the one at fail_at (SIZE_MAX: none) a 400. */
static void llm_job_start(llm_job *j, cmv_repo *repo, const char *name, size_t n, size_t fail_at)
{
	cmv_buf file = CMV_BUF_INIT(4096);
	needs_the_longest_session("summarizing a long session in many 8k passes");
	memset(j, 0, sizeof(*j));
	j->target = model("target-16k");
	j->summ = model("gpt-4");
	j->dir = test_tmpdir();
	char *replay = replay_file(j->dir, n, fail_at);
	import_as(repo, largest_session(&file), name);
	assert_cmv_ok(cmv_resolve(&j->tip, repo, name));
	assert_cmv_ok(cmv_tok_load(&j->tok, j->target->tokenizer, NULL));
	assert_cmv_ok(cmv_tok_load(&j->stok, j->summ->tokenizer, NULL));
	assert_cmv_ok(cmv_llm_transport_replay(&j->replay, replay));
	free(replay);
	cmv_buf_dispose(&file);
	j->o = (cmv_compact_options)CMV_COMPACT_OPTIONS_INIT;
	j->o.target = j->target;
	j->o.tok = j->tok;
	j->o.summarizer = j->summ;
	j->o.summarizer_tok = j->stok;
	/* small enough that most of the session must be summarized: many 8k parts */
	j->o.budget = 6000;
}

/* The summarizer's client, through `t` (NULL: the replay itself), with these retries (0: the default). */
static void llm_job_client(llm_job *j, cmv_llm_transport *t, unsigned int retries)
{
	cmv_llm_options lo = CMV_LLM_OPTIONS_INIT;
	lo.transport = t ? t : j->replay;
	lo.retries = retries;
	assert_cmv_ok(cmv_llm_new(&j->llm, j->summ, &lo));
	j->o.llm = j->llm;
}

static void llm_job_end(llm_job *j)
{
	cmv_llm_free(j->llm);
	j->replay->free(j->replay);
	cmv_tok_free(j->tok);
	cmv_tok_free(j->stok);
	test_rmdir(j->dir);
	free(j->dir);
}

static void test_multi_pass_with_an_8k_summarizer(void **state)
{
	test_store *ts = *state;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_compact_report rep;
	llm_job j;

	llm_job_start(&j, ts->repo, "mp", 400, SIZE_MAX);
	llm_job_client(&j, NULL, 0);
	j.o.branch = "mp.compact";
	j.o.trim_threshold = 2000;
	assert_cmv_ok(cmv_compact(&rep, ts->repo, &j.tip, &j.o));
	assert_true(rep.fits);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.stage, 2);
	size_t calls = cmv_llm_replay_count(j.replay);
	assert_int_equal(calls, rep.passes);
	assert_true(calls >= 4); /* several parts, then at least one combining call */
	/* every request: the summarizer's model, system + user, within its window less the reply asked for */
	for (size_t i = 0; i < calls; i++) {
		const char *req = cmv_llm_replay_request(j.replay, i);
		cJSON *jr = cJSON_Parse(req);
		assert_string_equal(cJSON_GetObjectItem(jr, "model")->valuestring, "gpt-4");
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(jr, "messages")), 2);
		int max_tokens = cJSON_GetObjectItem(jr, "max_tokens")->valueint;
		assert_true(max_tokens > 0);
		cmv_token_stats st;
		assert_cmv_ok(cmv_count_request(&st, j.summ, j.stok, req, strlen(req)));
		if (st.total + (uint64_t)max_tokens > j.summ->context_window)
			fail_msg("request %zu: %llu tokens + %d for the reply > %llu", i, (unsigned long long)st.total, max_tokens,
				 (unsigned long long)j.summ->context_window);
		if (i + 1 == calls)
			assert_non_null(strstr(req, "Partial handoff documents"));
		cJSON_Delete(jr);
	}
	/* the document is the canned reply in the fixed shape, plus the recall line */
	uint64_t n = render_count_check(ts->repo, &rep.head, j.target, j.tok, &body);
	assert_true(n <= 6000);
	assert_non_null(strstr(body.ptr, "use the replay server"));
	assert_non_null(strstr(body.ptr, "## Declared losses"));
	assert_non_null(strstr(body.ptr, "the exact diff of src/main.c"));
	cmv_buf note = CMV_BUF_INIT(CMV_BUF_SMALL);
	assert_cmv_ok(cmv_branch_note_get(&note, ts->repo, "mp.compact", "compact"));
	assert_non_null(strstr(note.ptr, "\"summarizer\":{\"model\":\"gpt-4\""));
	cmv_buf llm_ref = CMV_BUF_INIT(CMV_BUF_SMALL);
	assert_cmv_ok(cmv_branch_llm_get(&llm_ref, ts->repo, "mp.compact"));
	assert_string_equal(llm_ref.ptr, "target-16k");
	cmv_buf_dispose(&llm_ref);
	cmv_buf_dispose(&note);
	cmv_compact_report_dispose(&rep);
	cmv_buf_dispose(&body);
	llm_job_end(&j);
}

/* A transport that, before each answer, writes to the store from a second handle: the job must not hold its lock. */
typedef struct {
	cmv_llm_transport base;
	cmv_llm_transport *inner;
	const char *store;
	size_t writes;
} probing_transport;

static int probing_send(cmv_llm_transport *t, const cmv_http_request *req, cmv_http_response *resp)
{
	probing_transport *p = (probing_transport *)t;
	cmv_repo *other = NULL;
	cmv_block_content b = { .type = "text", .data = "written while the summarizer thinks", .len = 35 };
	cmv_message m = { .role = CMV_ROLE_USER, .kind = CMV_KIND_MESSAGE, .blocks = &b, .n_blocks = 1 };
	assert_cmv_ok(cmv_repo_open(&other, p->store, 0));
	assert_cmv_ok(cmv_append(NULL, other, "elsewhere", &m, 1, CMV_APPEND_CREATE));
	cmv_repo_free(other);
	p->writes++;
	return p->inner->send(p->inner, req, resp);
}

static void test_summarizer_runs_without_the_lock(void **state)
{
	test_store *ts = *state;
	char store[4200];
	probing_transport pt = { { CMV_LLM_TRANSPORT_VERSION, probing_send, NULL }, NULL, store, 0 };
	cmv_compact_report rep;
	llm_job j;

	needs_the_longest_session("summarizing a long session in many 8k passes"); /* before the setenv */
	snprintf(store, sizeof(store), "%s/.cmv", ts->dir);
	setenv("CMV_BUSY_TIMEOUT_MS", "200", 1); /* a held lock fails the probe fast */
	llm_job_start(&j, ts->repo, "lk", 400, SIZE_MAX);
	pt.inner = j.replay;
	llm_job_client(&j, &pt.base, 0);
	j.o.branch = "lk.compact";
	assert_cmv_ok(cmv_compact(&rep, ts->repo, &j.tip, &j.o));
	assert_true(rep.fits);
	assert_true(pt.writes >= 2);
	assert_int_equal(pt.writes, rep.passes);
	cmv_compact_report_dispose(&rep);
	unsetenv("CMV_BUSY_TIMEOUT_MS");
	llm_job_end(&j);
}

static void test_failed_call_changes_nothing(void **state)
{
	test_store *ts = *state;
	cmv_compact_report rep;
	llm_job j;

	llm_job_start(&j, ts->repo, "ff", 10, 2);
	llm_job_client(&j, NULL, ~0u);
	uint64_t rows = test_total_rows(ts->repo);
	j.o.branch = "ff.compact";
	assert_int_equal(cmv_compact(&rep, ts->repo, &j.tip, &j.o), CMV_ETRANSPORT);
	assert_error_mentions("HTTP 400: boom");
	assert_int_equal(test_total_rows(ts->repo), rows);
	cmv_ref *r = NULL;
	assert_int_equal(cmv_ref_lookup(&r, ts->repo, "ff.compact"), CMV_ENOTFOUND);
	/* and a dry run writes nothing either */
	j.o.llm = NULL;
	j.o.flags = CMV_COMPACT_DRY_RUN;
	assert_cmv_ok(cmv_compact(&rep, ts->repo, &j.tip, &j.o));
	assert_true(rep.fits);
	cmv_compact_report_dispose(&rep);
	assert_int_equal(test_total_rows(ts->repo), rows);
	/* a name in use is refused before anything is done */
	j.o.flags = 0;
	j.o.branch = "ff";
	assert_int_equal(cmv_compact(&rep, ts->repo, &j.tip, &j.o), CMV_EEXISTS);
	assert_int_equal(test_total_rows(ts->repo), rows);
	/* uncompact of a conversation never compacted */
	cmv_id orig;
	assert_int_equal(cmv_uncompact(&orig, NULL, ts->repo, &j.tip), CMV_EINVALID);
	llm_job_end(&j);
}

static void test_target_without_tools(void **state)
{
	test_store *ts = *state;
	cmv_buf file = CMV_BUF_INIT(4096), body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const cmv_model *target = model("no-tools-16k");
	cmv_tok *tok = NULL;
	cmv_id tip;

	import_as(ts->repo, largest_session(&file), "nt");
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "nt"));
	assert_cmv_ok(cmv_tok_load(&tok, target->tokenizer, NULL));
	cmv_compact_options o = CMV_COMPACT_OPTIONS_INIT;
	cmv_compact_report rep;
	o.branch = "nt.compact";
	o.target = target;
	o.tok = tok;
	assert_cmv_ok(cmv_compact(&rep, ts->repo, &tip, &o));
	assert_true(rep.tool_calls > 10);
	assert_true(rep.tools_as_text);
	assert_non_null(strstr(rep.tools_used, "Read"));
	render_count_check(ts->repo, &rep.head, target, tok, &body);
	assert_null(strstr(body.ptr, "\"tool_calls\""));
	assert_null(strstr(body.ptr, "\"role\":\"tool\""));
	assert_non_null(strstr(body.ptr, "[tool call "));
	assert_non_null(strstr(body.ptr, "[tool result for "));
	/* the pager renders it the same way for this model */
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report mr = { 0 };
	assert_cmv_ok(cmv_materialize(&body, &mr, ts->repo, &tip, target, tok, &po));
	assert_null(strstr(body.ptr, "\"tool_calls\""));
	cmv_materialize_report_dispose(&mr);
	cmv_compact_report_dispose(&rep);
	cmv_tok_free(tok);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&body);
}

static void test_handoff_shape_and_determinism(void **state)
{
	test_store *ts = *state;
	cmv_buf file = CMV_BUF_INIT(4096), a = CMV_BUF_INIT(CMV_BUF_CONTENT), b = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const cmv_model *m = model("target-16k");
	cmv_tok *tok = NULL;
	cmv_handoff_options ho = CMV_HANDOFF_OPTIONS_INIT;
	cmv_handoff_stats st;
	cmv_id tip;

	needs_the_longest_session("the handoff document of the longest session");
	import_as(ts->repo, largest_session(&file), "ho");
	assert_cmv_ok(cmv_resolve(&tip, ts->repo, "ho"));
	assert_cmv_ok(cmv_tok_load(&tok, m->tokenizer, NULL));
	ho.model = m;
	ho.tok = tok;
	ho.max_tokens = 1500;
	assert_cmv_ok(cmv_handoff(&a, &st, ts->repo, &tip, &ho));
	assert_true(st.tokens <= 1500);
	assert_int_equal(st.passes, 0);
	assert_cmv_ok(cmv_handoff(&b, NULL, ts->repo, &tip, &ho));
	assert_string_equal(a.ptr, b.ptr);
	/* the eight headings, in order, and nothing else at that level */
	const char *p = a.ptr;
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++) {
		char h[128];
		snprintf(h, sizeof(h), "\n## %s\n", cmv_handoff_sections()[s]);
		const char *q = strstr(p, h);
		if (!q)
			fail_msg("section '%s' missing or out of order", cmv_handoff_sections()[s]);
		p = q + 1;
	}
	size_t headings = 0;
	for (const char *q = a.ptr; (q = strstr(q, "\n## ")); q++)
		headings++;
	assert_int_equal(headings, CMV_HANDOFF_NSECTIONS);
	/* files from tool calls, and the user's own words */
	assert_non_null(strstr(a.ptr, "resume.go"));
	assert_non_null(strstr(a.ptr, "how does that look if two sessions"));
	/* a smaller budget drops items and says so */
	ho.max_tokens = 400;
	assert_cmv_ok(cmv_handoff(&b, &st, ts->repo, &tip, &ho));
	assert_true(st.tokens <= 400);
	assert_non_null(strstr(b.ptr, "For room, "));
	/* what goes last is what a new runtime needs most: the user's words */
	assert_null(strstr(b.ptr, "## User instructions and constraints\n- (none)"));
	/* a budget with room for the shape only: the drops are still declared */
	ho.max_tokens = 200;
	assert_cmv_ok(cmv_handoff(&b, &st, ts->repo, &tip, &ho));
	assert_true(st.tokens <= 200);
	assert_non_null(strstr(b.ptr, "For room, "));
	cmv_tok_free(tok);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&a);
	cmv_buf_dispose(&b);
}

static void test_fidelity(void **state)
{
	(void)state;
	static const char src[] = "Edit src/main.c at line 4242 so parse_config returns ErrorKind, and ask about it "
				  "when Alice Smith reviews commit 9f3c2a1b. Then run make.";
	cmv_buf missing = CMV_BUF_INIT(CMV_BUF_SMALL);
	double cov;
	size_t total, found;
	/* src/main.c, 4242, parse_config, ErrorKind, Alice Smith, 9f3c2a1b */
	assert_cmv_ok(cmv_fidelity(&cov, &total, &found, &missing, src, strlen(src), "", 0));
	assert_int_equal(total, 6);
	assert_int_equal(found, 0);
	assert_cmv_ok(cmv_fidelity(&cov, &total, &found, &missing, src, strlen(src),
				   "src/main.c changed; 4242; Declared losses: parse_config", 55));
	assert_int_equal(found, 3);
	assert_true(cov > 0.49 && cov < 0.51);
	assert_non_null(strstr(missing.ptr, "Alice Smith"));
	assert_non_null(strstr(missing.ptr, "9f3c2a1b"));
	/* a number inside a longer one does not count: 42 is not 4242 */
	assert_cmv_ok(cmv_fidelity(&cov, &total, &found, NULL, "port 4242 open", 14, "port 42424", 10));
	assert_int_equal(found, 0);
	/* nothing to cover: full coverage; invalid UTF-8 is stepped over */
	assert_cmv_ok(cmv_fidelity(&cov, &total, &found, NULL, "ok \xff\xfe then", 12, "", 0));
	assert_true(cov == 1.0);
	cmv_buf_dispose(&missing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fidelity),
		cmocka_unit_test_setup_teardown(test_handoff_shape_and_determinism, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_failed_call_changes_nothing, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_target_without_tools, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_multi_pass_with_an_8k_summarizer, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_summarizer_runs_without_the_lock, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_every_session_offline, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests(tests, load_models, free_models);
}
