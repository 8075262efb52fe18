/* SPDX-License-Identifier: MIT */
/*
 * Calibration from billed usage (pager/calibrate.c) and the budget promise:
 * - on a synthetic session billed with known parameters, the fit gives them
 *   back, and importing it grown, or again, replaces its pairs;
 * - on the real Claude Code sessions of the transcripts (CMV_TRANSCRIPTS:
 *   the curated set, or the full corpus), with every session calibrated:
 *   asked to fit the conversation before a call into a budget 2% below what
 *   that call was billed for its content, cmv never answers "fits with
 *   nothing paged out"; with a budget 30% above, it answers "fits" for at
 *   least 90% of the calls;
 * - the same promise on a session held out of the calibration (counted as
 *   its model's, or its family's, calibration says).
 * Billed content: the call's prompt (input + cache creation + cache read)
 * less the hidden prefix (the host's system prompt and tools), taken as the
 * calibration takes it: per segment (a session's calls of one model between
 * compactions), the first call's prompt less what cmv counts before it.
 */
#include <math.h>
#include <dirent.h>
#include <sys/stat.h>
#include "test.h"
#include "formats/formats_int.h"

static cmv_models *models;
static const cmv_model *sonnet;
static cmv_tok *o200k;

static int group_setup(void **state)
{
	(void)state;
	if (cmv_models_load(&models, NULL) < 0 || cmv_models_find(&sonnet, models, "claude-sonnet-4-5") < 0 ||
	    cmv_tok_load(&o200k, "o200k_base", NULL) < 0)
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

/* ---- a synthetic session, billed with known parameters ------------------------------ */

#define SYN_FACTOR 1.37
#define SYN_PER_BLOCK 11.0
#define SYN_PER_PAIR 9.0
#define SYN_HIDDEN 5000

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void words(cmv_buf *out, size_t n)
{
	static const char *const w[] = { "store", "branch", "the", "model", "window", "token", "page", "fault",
					 "recall", "snapshot", "budget", "context", "provider", "request", "cache" };
	cmv_buf_clear(out);
	for (size_t i = 0; i < n; i++)
		cmv_buf_printf(out, "%s%s", i ? " " : "", w[next_rand() % CMV_ARRAY_SIZE(w)]);
}

static void put_record(cmv_buf *file, cmv_buf *esc, char *parent, size_t cap, const char *uuid, const char *text,
		       size_t len, size_t call, double prompt, size_t reply_tokens)
{
	/* words() writes letters and spaces only: a JSON string as it is */
	cmv_buf_clear(esc);
	cmv_buf_printf(esc, "\"%.*s\"", (int)len, text);
	if (call == SIZE_MAX)
		cmv_buf_printf(file,
			       "{\"parentUuid\":%s,\"isSidechain\":false,\"type\":\"user\",\"message\":{\"role\":\"user\","
			       "\"content\":%s},\"uuid\":\"%s\",\"sessionId\":\"syn\"}\n",
			       parent, esc->ptr, uuid);
	else
		cmv_buf_printf(file,
			       "{\"parentUuid\":%s,\"isSidechain\":false,\"type\":\"assistant\",\"message\":{\"id\":"
			       "\"msg_%zu\",\"model\":\"claude-sonnet-4-5-20250929\",\"role\":\"assistant\",\"content\":"
			       "[{\"type\":\"text\",\"text\":%s}],\"usage\":{\"input_tokens\":%.0f,"
			       "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":%zu}},"
			       "\"uuid\":\"%s\",\"sessionId\":\"syn\"}\n",
			       parent, call, esc->ptr, prompt, reply_tokens, uuid);
	snprintf(parent, cap, "\"%s\"", uuid);
}

/*
 * A Claude Code session of `turns` exchanges (user, then assistant) whose
 * usage is what the parameters above bill: each call's prompt is the one
 * before plus SYN_FACTOR x the tokens of the reply and the next user text,
 * SYN_PER_BLOCK for each of their two blocks, and SYN_PER_PAIR.
 */
static char *synthetic_session(const char *dir, const char *name, size_t turns)
{
	cmv_buf file = CMV_BUF_INIT(1 << 24), user = CMV_BUF_INIT(1 << 20), reply = CMV_BUF_INIT(1 << 20),
		esc = CMV_BUF_INIT(1 << 20);
	char parent[40] = "null", uuid[32];
	double prompt = SYN_HIDDEN;
	size_t n_user, n_reply;

	words(&user, 20);
	for (size_t t = 0; t < turns; t++) {
		snprintf(uuid, sizeof(uuid), "u%zu", t);
		put_record(&file, &esc, parent, sizeof(parent), uuid, user.ptr, user.size, SIZE_MAX, 0, 0);
		words(&reply, 3 + next_rand() % 200);
		assert_cmv_ok(cmv_tok_count(&n_reply, o200k, reply.ptr, reply.size));
		snprintf(uuid, sizeof(uuid), "a%zu", t);
		put_record(&file, &esc, parent, sizeof(parent), uuid, reply.ptr, reply.size, t, floor(prompt), n_reply);
		words(&user, 5 + next_rand() % 400);
		assert_cmv_ok(cmv_tok_count(&n_user, o200k, user.ptr, user.size));
		prompt += SYN_FACTOR * (double)(n_reply + n_user) + SYN_PER_BLOCK * 2 + SYN_PER_PAIR;
	}
	char *path = test_write_file(dir, name, file.ptr, file.size);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&user);
	cmv_buf_dispose(&reply);
	cmv_buf_dispose(&esc);
	return path;
}

static void test_calibrate__recovers_known_parameters(void **state)
{
	test_store *ts = *state;
	cmv_import_result res;
	cmv_calibration c;
	size_t pairs = 0, again = 0;

	char *path = synthetic_session(ts->dir, "syn.jsonl", 40);
	/* first the session's first half (as a live session is imported while it grows) */
	cmv_buf whole = CMV_BUF_INIT(1 << 24);
	test_read_file(&whole, path);
	size_t half = 0, lines = 0;
	while (half < whole.size && lines < 40)
		lines += whole.ptr[half++] == '\n';
	char *part = test_write_file(ts->dir, "syn.jsonl", whole.ptr, half);
	size_t half_pairs = 0;
	assert_cmv_ok(cmv_import_file(&res, ts->repo, part, NULL, NULL));
	assert_cmv_ok(cmv_calibrate(&half_pairs, ts->repo, &res.head, res.session, models));
	free(part);
	free(test_write_file(ts->dir, "syn.jsonl", whole.ptr, whole.size));
	cmv_buf_dispose(&whole);
	/* then grown: its pairs replace the half's */
	assert_cmv_ok(cmv_import_file(&res, ts->repo, path, NULL, NULL));
	assert_cmv_ok(cmv_calibrate(&pairs, ts->repo, &res.head, res.session, models));
	assert_true(half_pairs > 0 && half_pairs < pairs);
	assert_cmv_ok(cmv_calibration_get(&c, ts->repo, "claude-sonnet-4-5"));
	print_message("synthetic: %zu pairs; factor %.4f (billed at %.2f), per block %.2f (%.0f), per pair %.2f (%.0f), "
		      "largest request under-count %.4f\n",
		      c.pairs, c.factor, SYN_FACTOR, c.per_block, SYN_PER_BLOCK, c.per_pair, SYN_PER_PAIR, c.err_max);
	assert_true(pairs >= 30);
	assert_int_equal(c.pairs, pairs);
	assert_true(fabs(c.factor - SYN_FACTOR) / SYN_FACTOR < 0.01);
	/* blocks and pairs are two per pair here: together they are what the fit can tell apart */
	assert_true(fabs(2 * c.per_block + c.per_pair - (2 * SYN_PER_BLOCK + SYN_PER_PAIR)) < 3);
	assert_true(c.err_max < 0.01);
	/* a second import of the same session replaces its pairs: the same count */
	assert_cmv_ok(cmv_calibrate(&again, ts->repo, &res.head, res.session, models));
	assert_cmv_ok(cmv_calibration_get(&c, ts->repo, "claude-sonnet-4-5"));
	assert_int_equal(c.pairs, pairs);
	assert_int_equal(c.sessions, 1);
	/* the calibrated profile counts with the fit, and says so */
	cmv_model m;
	cmv_buf source = CMV_BUF_INIT(4096);
	assert_cmv_ok(cmv_model_calibrated(&m, &source, sonnet, ts->repo));
	assert_true(fabs(m.token_factor - c.factor) < 1e-9);
	assert_true(strstr(source.ptr, "calibrated") != NULL);
	/* a model of the same family with no calibration of its own takes this one */
	const cmv_model *sonnet4 = NULL;
	assert_cmv_ok(cmv_models_find(&sonnet4, models, "claude-sonnet-4"));
	assert_cmv_ok(cmv_model_calibrated(&m, &source, sonnet4, ts->repo));
	assert_true(fabs(m.token_factor - c.factor) < 1e-9);
	assert_true(strstr(source.ptr, "family") != NULL);
	cmv_buf_dispose(&source);
	free(path);
}

/*
 * The anchor: a synthetic session billed with known parameters (so the
 * built-in profile counts it low), counted before a call. The anchor is the
 * call before, its correction that call's billed content less cmv's count of
 * it, and the anchored request is that billed content plus the count of
 * what came since. It falls back (none) for another model and on a trimmed
 * branch (trim drops the usage: the request is no longer the billed one),
 * and the pager drops it once a page leaves.
 */
static void test_calibrate__anchor(void **state)
{
	test_store *ts = *state;
	cmv_import_result res;
	cmv_billed_call *calls = NULL;
	size_t n = 0, k = 12;
	cmv_token_stats st;
	cmv_count_anchor an;

	/*
	 * A correction up is taken whole; one down lowers the count by at most
	 * 20% of it with an approximate tokenizer (a wrong hidden prefix could
	 * lower it by any amount), 5% with an exact one.
	 */
	assert_false(sonnet->exact);
	assert_int_equal(cmv_count_anchored(sonnet, 10000, 3000), 13000);
	assert_int_equal(cmv_count_anchored(sonnet, 10000, -1500), 8500);
	assert_int_equal(cmv_count_anchored(sonnet, 10000, -6000), 8000);
	cmv_model exact = *sonnet;
	exact.exact = true;
	assert_int_equal(cmv_count_anchored(&exact, 10000, -300), 9700);
	assert_int_equal(cmv_count_anchored(&exact, 10000, -6000), 9500);

	char *path = synthetic_session(ts->dir, "anchor.jsonl", 16);
	assert_cmv_ok(cmv_import_file(&res, ts->repo, path, NULL, NULL));
	assert_cmv_ok(cmv_billed_calls(&calls, &n, ts->repo, &res.head, models));
	assert_int_equal(n, 16);
	/* counted as live before call k: the anchor is call k - 1, known by its usage */
	const cmv_id *tip = &calls[k].before;
	assert_cmv_ok(cmv_count_anchor_find(&an, ts->repo, tip, sonnet, o200k, models));
	assert_true(an.found);
	assert_int_equal(an.call, k - 1);
	assert_true(cmv_id_equal(&an.at, &calls[k - 1].before));
	assert_int_equal(an.prompt, calls[k - 1].prompt);
	/* the hidden prefix: the first call's prompt less cmv's count before it (the records say SYN_HIDDEN) */
	assert_cmv_ok(cmv_count_sent(&st, ts->repo, &calls[0].before, sonnet, o200k));
	int64_t hidden = (int64_t)calls[0].prompt - (int64_t)st.total;
	assert_int_equal(an.hidden, hidden);
	assert_true(llabs(hidden - SYN_HIDDEN) < 200);
	assert_cmv_ok(cmv_count_sent(&st, ts->repo, &calls[k - 1].before, sonnet, o200k));
	uint64_t counted_a = st.total;
	assert_int_equal(an.counted, counted_a);
	assert_int_equal(an.correction, (int64_t)calls[k - 1].prompt - hidden - (int64_t)counted_a);
	/* billed at 1.37 per token, counted at the profile's factor: the count runs low, the anchor says by how much */
	assert_true(an.correction > 0);
	/* the pager: the whole request predicted at billed(k - 1) + the count of what came since */
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report plain = { .version = CMV_MATERIALIZE_REPORT_VERSION }, rep = { .version = CMV_MATERIALIZE_REPORT_VERSION };
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	o.budget = 10000000;
	assert_cmv_ok(cmv_materialize(&out, &plain, ts->repo, tip, sonnet, o200k, &o));
	assert_false(plain.anchored);
	o.anchor = &an;
	assert_cmv_ok(cmv_materialize(&out, &rep, ts->repo, tip, sonnet, o200k, &o));
	assert_true(rep.anchored && rep.fits);
	assert_int_equal(rep.correction, an.correction);
	assert_int_equal((int64_t)rep.tokens,
			 ((int64_t)calls[k - 1].prompt - hidden) + ((int64_t)plain.tokens - (int64_t)counted_a));
	assert_int_equal(rep.tokens, rep.tokens_full);
	/*
	 * A budget the plain count fits whole but the anchored one does not: a
	 * page leaves, and the request left is counted plainly.
	 */
	uint64_t mid = plain.tokens + (uint64_t)an.correction / 2;
	o.budget = (uint64_t)ceil((double)mid * (1 + sonnet->margin)) + sonnet->margin_tokens;
	cmv_materialize_report_dispose(&rep);
	assert_cmv_ok(cmv_materialize(&out, &rep, ts->repo, tip, sonnet, o200k, &o));
	assert_false(rep.anchored);
	assert_true(rep.fits);
	assert_true(rep.stubbed + rep.evicted >= 1);
	assert_true(rep.tokens < plain.tokens);
	o.anchor = NULL;
	cmv_materialize_report_dispose(&rep);
	assert_cmv_ok(cmv_materialize(&out, &rep, ts->repo, tip, sonnet, o200k, &o));
	assert_true(rep.fits && rep.stubbed + rep.evicted == 0);
	/* another model: the last billed call was not billed for it, so no anchor */
	const cmv_model *opus = NULL;
	assert_cmv_ok(cmv_models_find(&opus, models, "claude-opus-4-6"));
	assert_cmv_ok(cmv_count_anchor_find(&an, ts->repo, tip, opus, o200k, models));
	assert_false(an.found);
	assert_true(strstr(an.why, "not claude-opus-4-6") != NULL);
	/* trimmed: the rewritten records keep no usage, so nothing on its path was billed as it is */
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report tr;
	to.branch = "trimmed";
	assert_cmv_ok(cmv_trim(&tr, ts->repo, &res.head, &to));
	assert_cmv_ok(cmv_count_anchor_find(&an, ts->repo, &tr.head, sonnet, o200k, models));
	assert_false(an.found);
	/* what the anchor needs: the later request holds the earlier one whole, not the other way */
	bool holds = false;
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, &calls[k - 1].before, tip, sonnet));
	assert_true(holds);
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, tip, &calls[k - 1].before, sonnet));
	assert_false(holds);
	/* as Gemini's request renders it (its conversation is "contents"): the same */
	const cmv_model *gemini = NULL;
	assert_cmv_ok(cmv_models_find(&gemini, models, "gemini-2.5-pro"));
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, &calls[k - 1].before, tip, gemini));
	assert_true(holds);
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, tip, &calls[k - 1].before, gemini));
	assert_false(holds);
	/* the same session with an early message rewritten: its later request no longer holds the billed one */
	cmv_buf text = CMV_BUF_INIT(1 << 24), edited = CMV_BUF_INIT(1 << 24);
	test_read_file(&text, path);
	const char *u2 = strstr(text.ptr, "\"uuid\":\"u2\"");
	assert_non_null(u2);
	const char *line = u2;
	while (line > text.ptr && line[-1] != '\n')
		line--;
	const char *content = strstr(line, "\"content\":\"");
	assert_true(content && content < u2);
	content += strlen("\"content\":\"");
	cmv_buf_printf(&edited, "%.*sEDITED %s", (int)(content - text.ptr), text.ptr, content);
	char *epath = test_write_file(ts->dir, "edited.jsonl", edited.ptr, edited.size);
	cmv_import_result eres;
	cmv_import_options eo = CMV_IMPORT_OPTIONS_INIT;
	eo.branch = "edited";
	assert_cmv_ok(cmv_import_file(&eres, ts->repo, epath, NULL, &eo));
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, &calls[k - 1].before, &eres.head, sonnet));
	assert_false(holds);
	assert_cmv_ok(cmv_count_anchor_holds(&holds, ts->repo, &calls[k - 1].before, &res.head, sonnet));
	assert_true(holds);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&edited);
	free(epath);
	/* the branch's own tip: the anchor is its last call, the request holds it whole */
	assert_cmv_ok(cmv_count_anchor_find(&an, ts->repo, &res.head, sonnet, o200k, models));
	assert_true(an.found);
	assert_int_equal(an.call, n - 1);

	/*
	 * Every page pinned (keep_turns past the branch's turns), a budget the
	 * plain count fits and the anchored one does not: no page may leave,
	 * and the refusal says so, not that the pinned turns alone are over.
	 */
	cmv_pager_options_init(&o);
	o.budget = 10000000;
	cmv_materialize_report_dispose(&plain);
	assert_cmv_ok(cmv_materialize(&out, &plain, ts->repo, &res.head, sonnet, o200k, &o));
	mid = plain.tokens + (uint64_t)an.correction / 2;
	o.budget = (uint64_t)ceil((double)mid * (1 + sonnet->margin)) + sonnet->margin_tokens;
	o.anchor = &an;
	o.keep_turns = 100000;
	cmv_materialize_report_dispose(&rep);
	assert_cmv_fails_with(CMV_EBUDGET, cmv_materialize(&out, &rep, ts->repo, &res.head, sonnet, o200k, &o));
	assert_error_mentions("as billed before");
	assert_error_mentions("no page may leave");

	/*
	 * An anchored request (as cmv_switch makes one: the anchor and the
	 * branch) keeps the branch's fault pins: a page that left under a
	 * small budget, faulted in, is resident and pinned the next time.
	 */
	o.keep_turns = 1;
	o.state_branch = res.branch;
	o.budget = (uint64_t)ceil((double)(plain.tokens / 2) * (1 + sonnet->margin)) + sonnet->margin_tokens;
	cmv_materialize_report_dispose(&rep);
	assert_cmv_ok(cmv_materialize(&out, &rep, ts->repo, &res.head, sonnet, o200k, &o));
	assert_false(rep.anchored);
	const cmv_page *left = NULL;
	for (size_t q = 0; q < rep.n_pages && !left; q++)
		if (rep.pages[q].state != CMV_PAGE_RESIDENT)
			left = &rep.pages[q];
	assert_non_null(left);
	char page_id[CMV_ID_HEXSZ + 1];
	snprintf(page_id, sizeof(page_id), "%s", left->id);
	assert_cmv_ok(cmv_pager_fault(ts->repo, res.branch, page_id));
	cmv_materialize_report_dispose(&rep);
	assert_cmv_ok(cmv_materialize(&out, &rep, ts->repo, &res.head, sonnet, o200k, &o));
	bool back = false;
	for (size_t q = 0; q < rep.n_pages; q++)
		if (!strcmp(rep.pages[q].id, page_id))
			back = rep.pages[q].state == CMV_PAGE_RESIDENT && rep.pages[q].pinned;
	assert_true(back);
	cmv_materialize_report_dispose(&plain);
	cmv_materialize_report_dispose(&rep);
	cmv_buf_dispose(&out);
	free(calls);
	free(path);
}

/* ---- the budget promise on real sessions ---------------------------------------------- */

/* The calls of an imported Claude Code session along its branch: the library's own reading (segments included). */
static size_t calls_of(cmv_billed_call **out, cmv_repo *repo, const cmv_id *tip)
{
	size_t n = 0;
	assert_cmv_ok(cmv_billed_calls(out, &n, repo, tip, models));
	return n;
}

typedef struct {
	size_t calls, tight_asked, anchored;
	size_t fits30; /* of tight_asked, those fitting a budget 30% over the billed content (the figure) */
	bool small_too; /* tightness asked of every call (a set with too few large ones) */
} promise_stats;

/*
 * Tightness is asked of requests of at least this many billed content
 * tokens (the issue measured calls of at least 10k): below, what a host adds
 * to each request (the calibration's margin_tokens) weighs more than 30%.
 */
#define LARGE_CONTENT 10000.0

/* What the pager says of the conversation before a call, for `budget` tokens billed. */
static bool fits_whole(cmv_repo *repo, const cmv_id *at, const cmv_model *m, uint64_t budget, uint64_t *tokens,
		       const cmv_count_anchor *an)
{
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep = { 0 };
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	o.budget = budget;
	o.anchor = an;
	int rc = cmv_materialize(&out, &rep, repo, at, m, o200k, &o);
	bool whole = false;
	if (rc == 0) {
		whole = rep.fits && rep.stubbed == 0 && rep.evicted == 0;
		if (tokens)
			*tokens = rep.tokens_full;
		cmv_materialize_report_dispose(&rep);
	} else {
		assert_int_equal(rc, CMV_EBUDGET);
		cmv_error_clear();
	}
	cmv_buf_dispose(&out);
	return whole;
}

static void check_promise(promise_stats *ps, cmv_repo *repo, const cmv_id *tip, const char *what)
{
	cmv_billed_call *calls = NULL;
	size_t n = calls_of(&calls, repo, tip);
	cmv_model m;
	const cmv_model *base = NULL;
	if (n < 2 || cmv_models_find(&base, models, calls[0].model) < 0 || strcmp(base->tokenizer, "o200k_base")) {
		cmv_error_clear();
		free(calls);
		return;
	}
	assert_cmv_ok(cmv_model_calibrated(&m, NULL, base, repo));
	/*
	 * The hidden prefix, as the calibration takes it: per segment (a
	 * session's calls of one model between compactions: a new one where the
	 * model changes, the prompt falls by a third or Claude Code started
	 * again), the first call's prompt less what cmv counts of the
	 * conversation before it.
	 */
	double hidden = 0;
	size_t step = n / 25 + 1;
	for (size_t k = 0; k < n; k++) {
		if (cmv_id_is_none(&calls[k].before))
			continue;
		bool starts = k == 0 || calls[k].segment != calls[k - 1].segment || cmv_id_is_none(&calls[k - 1].before);
		if (starts) {
			uint64_t t = 0;
			(void)fits_whole(repo, &calls[k].before, &m, 100000000, &t, NULL);
			hidden = (double)calls[k].prompt - (double)t;
			continue;
		}
		if (k % step || strcmp(calls[k].model, calls[0].model))
			continue;
		double content = (double)calls[k].prompt - hidden;
		if (content < 1000)
			continue;
		ps->calls++;
		/* counted as cmv counts live: anchored on the last billed call before this one, when it applies */
		cmv_count_anchor an;
		assert_cmv_ok(cmv_count_anchor_find(&an, repo, &calls[k].before, &m, o200k, models));
		ps->anchored += an.found;
		if (fits_whole(repo, &calls[k].before, &m, (uint64_t)(content * 0.98), NULL, &an)) {
			uint64_t t = 0;
			(void)fits_whole(repo, &calls[k].before, &m, 100000000, &t, &an);
			fail_msg("%s, call %zu: billed %.0f for its content, yet %llu tokens (margin %.3f + %llu; %s) fit a "
				 "budget 2%% below it whole", what, k, content, (unsigned long long)t, m.margin,
				 (unsigned long long)m.margin_tokens, an.found ? "anchored" : an.why);
		}
		if (content < LARGE_CONTENT && !ps->small_too)
			continue;
		/* tight: 30% over the billed content, whatever the margin (the figure) */
		double over = 1.30;
		bool tight = fits_whole(repo, &calls[k].before, &m, (uint64_t)(content * over), NULL, &an);
		ps->fits30 += tight;
		ps->tight_asked++;
		if (!tight && getenv("CMV_TEST_VERBOSE")) {
			uint64_t t = 0;
			(void)fits_whole(repo, &calls[k].before, &m, 100000000, &t, &an);
			print_message("  not fitting %.0f%% over: %s call %zu (%s): content %.0f, counted %llu, margin %.3f + %llu\n",
				      (over - 1) * 100, strrchr(what, '/') + 1, k, m.id, content, (unsigned long long)t, m.margin,
				      (unsigned long long)m.margin_tokens);
		}
	}
	free(calls);
}

static int show(const cmv_calibration *c, void *payload)
{
	(void)payload;
	print_message("  %s: %zu pairs, %zu requests, %zu sessions; factor %.3f, per block %.1f, per pair %.1f; request "
		      "error p50 %.3f p95 %.3f p99 %.3f max %.3f; margin %.3f + %llu tokens\n",
		      c->model, c->pairs, c->requests, c->sessions, c->factor, c->per_block, c->per_pair, c->err_p50,
		      c->err_p95, c->err_p99, c->err_max, c->margin, (unsigned long long)c->margin_tokens);
	return 0;
}

static void test_calibrate__budget_is_a_promise(void **state)
{
	test_store *ts = *state;
	const char *root = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	char dir[4096], **files = NULL;
	size_t n = 0, pairs = 0;
	cmv_id *tips;
	promise_stats in = { 0 }, out = { 0 }, cx = { .small_too = true };
	size_t n_cc;

	snprintf(dir, sizeof(dir), "%s/claude-code", root);
	test_collect_jsonl(&files, &n, dir);
	assert_true(n >= 3);
	n_cc = n;
	/* Codex rollouts: calibrated on too, and held to the same promise (their token_count events) */
	snprintf(dir, sizeof(dir), "%s/codex", root);
	test_collect_jsonl(&files, &n, dir);
	/*
	 * Held out: the largest session whose model another session has too,
	 * so that its own model's calibration (learned elsewhere) counts it.
	 * It goes last; the others are calibrated on.
	 */
	size_t held = n, held_size = 0;
	char (*model)[64] = calloc(n, sizeof(*model));
	for (size_t i = 0; i < n; i++) {
		cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
		test_read_file(&text, files[i]);
		const char *at = strstr(text.ptr, "\"model\":\"claude-");
		if (at)
			sscanf(at + 9, "%63[^\"]", model[i]);
		cmv_buf_dispose(&text);
	}
	for (size_t i = 0; i < n_cc; i++) {
		struct stat st;
		bool shared = false;
		for (size_t k = 0; k < n && model[i][0]; k++)
			shared = shared || (k != i && !strcmp(model[k], model[i]));
		if (shared && stat(files[i], &st) == 0 && (size_t)st.st_size > held_size) {
			held = i;
			held_size = (size_t)st.st_size;
		}
	}
	free(model);
	assert_true(held < n);
	char *h = files[held];
	memmove(files + held, files + held + 1, (n - held - 1) * sizeof(*files));
	files[n - 1] = h;
	tips = calloc(n, sizeof(*tips));
	/* the last session is held out: imported, never calibrated on */
	for (size_t i = 0; i < n; i++) {
		cmv_import_result res;
		cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
		char branch[32];
		size_t got = 0;
		snprintf(branch, sizeof(branch), "s%zu", i);
		o.branch = branch;
		assert_cmv_ok(cmv_import_file(&res, ts->repo, files[i], NULL, &o));
		tips[i] = res.head;
		if (i + 1 < n) {
			assert_cmv_ok(cmv_calibrate(&got, ts->repo, &res.head, res.session, models));
			pairs += got;
		}
	}
	assert_cmv_ok(cmv_calibration_foreach(ts->repo, show, NULL));
	/* the Claude Code sessions first (0 .. n_cc - 2 once the held-out one went last), then the rollouts */
	for (size_t i = 0; i + 1 < n; i++)
		check_promise(i + 1 < n_cc ? &in : &cx, ts->repo, &tips[i], files[i]);
	check_promise(&out, ts->repo, &tips[n - 1], files[n - 1]);
	/* a set of small sessions (the curated one): tightness is asked of every call instead */
	if (in.tight_asked < 20 || out.tight_asked < 3) {
		promise_stats a = { .small_too = true }, b = { .small_too = true };
		for (size_t i = 0; i + 1 < n_cc; i++)
			check_promise(&a, ts->repo, &tips[i], files[i]);
		check_promise(&b, ts->repo, &tips[n - 1], files[n - 1]);
		if (in.tight_asked < 20)
			in = a;
		if (out.tight_asked < 3)
			out = b;
	}
	print_message("budget promise: %zu pairs from %zu sessions; %zu calls of them (%zu anchored): none fits whole 2%% "
		      "under its billed content; of %zu %s, %zu (%.0f%%) fit 30%% over; held out (%s): %zu calls (%zu "
		      "anchored), none; %zu of %zu fit 30%% over\n",
		      pairs, n - 1, in.calls, in.anchored, in.tight_asked,
		      in.small_too ? "calls" : "calls of at least 10k tokens", in.fits30,
		      in.tight_asked ? 100.0 * (double)in.fits30 / (double)in.tight_asked : 0, strrchr(files[n - 1], '/') + 1,
		      out.calls, out.anchored, out.fits30, out.tight_asked);
	print_message("Codex rollouts (%zu): %zu calls (%zu anchored): none fits whole 2%% under; %zu of %zu fit 30%% "
		      "over\n",
		      n - n_cc, cx.calls, cx.anchored, cx.fits30, cx.tight_asked);
	assert_true(pairs >= CMV_CALIBRATION_MIN_PAIRS);
	assert_true(in.calls >= 20);
	assert_true(out.calls >= 3);
	/*
	 * The tightness, 90% of calls fitting 30% over their billed
	 * content: asserted of the held-out session, of the Codex rollouts and
	 * of the calls in sample. Anchored on the call before, a count is
	 * within a few percent of the bill, so the pooled margin (about 17%
	 * on the corpus) leaves room (unanchored, 81% of the in-sample Claude
	 * Code calls fitted: docs/tokenizers.md, "the cost").
	 */
	assert_true(in.fits30 * 10 >= in.tight_asked * 9);
	assert_true(in.anchored * 2 >= in.calls);
	assert_true(out.fits30 * 10 >= out.tight_asked * 9);
	assert_true(cx.fits30 * 10 >= cx.tight_asked * 9);
	assert_true(cx.calls >= 5);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(tips);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_calibrate__recovers_known_parameters, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_calibrate__anchor, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_calibrate__budget_is_a_promise, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("calibration", tests, group_setup, group_teardown);
}
