/* SPDX-License-Identifier: MIT */
/*
 * The model registry: lookups by id, alias and dated id; the user's file
 * (overrides, new profiles, every kind of bad entry named by file and
 * entry); budgets and approximate counts; counting a stored conversation
 * by kind of content through the token cache; the profiles of the models
 * current clients report, ids resolved by family (and what they assumed),
 * editing the user's file, and OpenAI's per-item framing in a request.
 */
#include <math.h>
#include "test.h"

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_pager_models__builtin_lookups(void **state)
{
	cmv_models *m = NULL;
	const cmv_model *a, *b;

	(void)state;
	assert_cmv_ok(cmv_models_load(&m, ""));
	assert_true(cmv_models_count(m) >= 30);
	assert_cmv_ok(cmv_models_find(&a, m, "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_models_find(&b, m, "claude-sonnet-4-5-20250929"));
	assert_ptr_equal(a, b);
	assert_false(a->exact);
	assert_string_equal(a->provider, "anthropic");
	assert_int_equal(a->api, CMV_API_ANTHROPIC);
	/* a dated id without an alias of its own finds the undated profile */
	assert_cmv_ok(cmv_models_find(&b, m, "gpt-4.1-mini-2030-01-01"));
	assert_string_equal(b->id, "gpt-4.1-mini");
	assert_cmv_ok(cmv_models_find(&b, m, "gpt-4o"));
	assert_true(b->exact);
	assert_string_equal(b->tokenizer, "o200k_base");
	assert_int_equal(cmv_model_input_budget(b), 128000 - 16384 - (uint64_t)ceil((128000 - 16384) * 0.01));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_find(&b, m, "gpt-9"));
	assert_error_mentions("did you mean");
	/* every profile names a tokenizer cmv has, and a sane window */
	for (size_t i = 0; i < cmv_models_count(m); i++) {
		const cmv_model *x = cmv_models_at(m, i);
		assert_true(cmv_tok_is_known(x->tokenizer));
		assert_true(x->max_output < x->context_window);
		assert_true(x->exact ? x->token_factor == 1 : x->token_factor >= 1);
	}
	cmv_models_free(m);
}

static void expect_bad(const char *dir, const char *json, const char *why)
{
	char path[4096];
	cmv_models *m = NULL;

	snprintf(path, sizeof(path), "%s/models.json", dir);
	write_file(path, json);
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_load(&m, path));
	assert_null(m);
	assert_error_mentions(path);
	assert_error_mentions(why);
}

static void test_pager_models__user_file(void **state)
{
	char *dir = test_tmpdir(), path[4096];
	cmv_models *m = NULL;
	const cmv_model *x;

	(void)state;
	snprintf(path, sizeof(path), "%s/models.json", dir);
	write_file(path, "{\"models\": [\n"
			 " {\"id\": \"claude-opus-4-6\", \"base\": \"claude-opus-4-5\", \"note\": \"mine\"},\n"
			 " {\"id\": \"gpt-4o\", \"prices\": {\"input\": 2.0, \"cache_read\": null}},\n"
			 " {\"id\": \"my-llama\", \"provider\": \"local\", \"api\": \"openai-chat\",\n"
			 "  \"tokenizer\": \"llama3\", \"context_window\": 32768, \"max_output\": 2048,\n"
			 "  \"aliases\": [\"llama-local\"]}\n"
			 "]}\n");
	assert_cmv_ok(cmv_models_load(&m, path));
	assert_cmv_ok(cmv_models_find(&x, m, "claude-opus-4-6"));
	assert_string_equal(x->tokenizer, "o200k_base");
	assert_false(x->exact);
	assert_string_equal(x->note, "mine");
	assert_cmv_ok(cmv_models_find(&x, m, "gpt-4o"));
	assert_true(x->prices.input == 2.0);
	assert_true(x->prices.cache_read < 0);
	assert_true(x->prices.output == 10.0); /* untouched fields stay */
	assert_cmv_ok(cmv_models_find(&x, m, "llama-local"));
	assert_string_equal(x->id, "my-llama");
	assert_int_equal(x->context_window, 32768);
	cmv_models_free(m);

	/* through the environment, as the CLI finds it */
	setenv("CMV_MODELS", path, 1);
	assert_cmv_ok(cmv_models_load(&m, NULL));
	assert_cmv_ok(cmv_models_find(&x, m, "my-llama"));
	cmv_models_free(m);
	unsetenv("CMV_MODELS");

	expect_bad(dir, "{\"models\": [\n{\"id\": \"x\",,}]}", ":2: malformed JSON");
	expect_bad(dir, "[1, 2]", "expected {\"models\"");
	expect_bad(dir, "{\"models\": [{\"base\": \"gpt-4o\"}]}", "models[0]: needs an 'id'");
	expect_bad(dir, "{\"models\": [{\"id\": \"a\", \"base\": \"nope\"}]}", "models[0] (\"a\"): 'base' names no known model");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"colour\": 1}]}", "unknown field 'colour'");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"context_window\": -5}]}", "'context_window' must be a whole number");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"context_window\": \"big\"}]}", "'context_window'");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"tokenizer\": \"gpt2\"}]}", "known tokenizer");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"api\": \"soap\"}]}", "'api' must be");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"max_output\": 128000}]}", "'max_output' must be below");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"token_factor\": 1.2}]}", "an exact model has token_factor 1");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"prices\": {\"input\": -1}}]}", "price 'input'");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"prices\": {\"tip\": 1}}]}", "unknown price 'tip'");
	expect_bad(dir, "{\"models\": [{\"id\": \"new\", \"provider\": \"x\"}]}", "a new model needs");
	expect_bad(dir, "{\"models\": [{\"id\": \"gpt-4o\", \"margin\": 2}]}", "'margin'");
	/* a missing explicit file is an error; a missing default file is not */
	snprintf(path, sizeof(path), "%s/none.json", dir);
	assert_cmv_fails_with(CMV_EIO, cmv_models_load(&m, path));
	setenv("XDG_CONFIG_HOME", dir, 1);
	assert_cmv_ok(cmv_models_load(&m, NULL));
	cmv_models_free(m);
	unsetenv("XDG_CONFIG_HOME");
	test_rmdir(dir);
	free(dir);
}

static void test_pager_models__approximate_counts_round_up(void **state)
{
	cmv_models *m = NULL;
	const cmv_model *claude, *gpt;
	cmv_tok *tok = NULL;
	size_t raw, n;
	bool exact = true;
	const char *text = "The quick brown fox jumps over the lazy dog.";

	(void)state;
	assert_cmv_ok(cmv_models_load(&m, ""));
	assert_cmv_ok(cmv_models_find(&claude, m, "claude-haiku-4-5"));
	assert_cmv_ok(cmv_models_find(&gpt, m, "gpt-4o"));
	assert_cmv_ok(cmv_tok_load(&tok, "o200k_base", NULL));
	assert_cmv_ok(cmv_tok_count(&raw, tok, text, strlen(text)));
	assert_cmv_ok(cmv_model_count(&n, &exact, claude, tok, text, strlen(text)));
	assert_false(exact);
	assert_int_equal(n, (size_t)ceil((double)raw * claude->token_factor));
	assert_cmv_ok(cmv_model_count(&n, &exact, gpt, tok, text, strlen(text)));
	assert_true(exact);
	assert_int_equal(n, raw);
	cmv_tok_free(tok);
	/* the wrong tokenizer for the model is refused */
	assert_cmv_ok(cmv_tok_load(&tok, "cl100k_base", NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_model_count(&n, NULL, gpt, tok, text, strlen(text)));
	cmv_tok_free(tok);
	cmv_models_free(m);
}

static void test_pager_models__conversation_by_kind(void **state)
{
	test_store *s = *state;
	cmv_models *m = NULL;
	const cmv_model *gpt;
	cmv_tok *tok = NULL;
	cmv_token_stats st, again;
	cmv_id head, blob;
	uint64_t cached;
	size_t t_text, t_call, t_res, t_name;
	const char *q = "What is in main.c?", *input = "{\"path\":\"main.c\"}",
		   *result = "int main(void) { return 0; }", *ui = "{\"ui\":\"copy\"}";
	cmv_block_content user[] = { { .type = "text", .data = q, .len = strlen(q) } };
	cmv_block_content call[] = { { .type = "tool_use", .data = input, .len = strlen(input),
				       .tool_id = "t1", .tool_name = "Read" } };
	cmv_block_content res[] = { { .type = "tool_result", .data = result, .len = strlen(result),
				      .tool_id = "t1" },
				    { .type = "cc_tool_use_result", .data = ui, .len = strlen(ui) } };
	cmv_message msgs[] = {
		{ .role = CMV_ROLE_USER, .kind = CMV_KIND_MESSAGE, .n_blocks = 1, .blocks = user },
		{ .role = CMV_ROLE_ASSISTANT, .kind = CMV_KIND_MESSAGE, .n_blocks = 1, .blocks = call },
		{ .role = CMV_ROLE_USER, .kind = CMV_KIND_MESSAGE, .n_blocks = 2, .blocks = res },
	};

	assert_cmv_ok(cmv_append(&head, s->repo, "main", msgs, 3, CMV_APPEND_CREATE));
	assert_cmv_ok(cmv_models_load(&m, ""));
	assert_cmv_ok(cmv_models_find(&gpt, m, "gpt-4o"));
	assert_cmv_ok(cmv_tok_load(&tok, gpt->tokenizer, NULL));
	assert_cmv_ok(cmv_count_conversation(&st, s->repo, &head, gpt, tok));
	assert_cmv_ok(cmv_tok_count(&t_text, tok, q, strlen(q)));
	assert_cmv_ok(cmv_tok_count(&t_call, tok, input, strlen(input)));
	assert_cmv_ok(cmv_tok_count(&t_name, tok, "Read", 4));
	assert_cmv_ok(cmv_tok_count(&t_res, tok, result, strlen(result)));
	assert_int_equal(st.text, t_text);
	assert_int_equal(st.tool_calls, t_call + t_name);
	assert_int_equal(st.tool_results, t_res);
	assert_true(st.unsent > 0); /* the UI copy is stored, never sent */
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.blocks, 3);
	assert_int_equal(st.overhead, gpt->per_request + 3 * gpt->per_message + 3 * gpt->per_block);
	assert_int_equal(st.total, st.text + st.tool_calls + st.tool_results + st.overhead);
	assert_true(st.exact);
	/* the token cache now holds each blob's count, and a second count agrees */
	assert_cmv_ok(cmv_blob_write(&blob, s->repo, result, strlen(result)));
	assert_cmv_ok(cmv_tokcache_get(&cached, s->repo, &blob, "o200k_base"));
	assert_int_equal(cached, t_res);
	assert_cmv_ok(cmv_count_conversation(&again, s->repo, &head, gpt, tok));
	assert_memory_equal(&st, &again, sizeof(st));
	cmv_tok_free(tok);
	cmv_models_free(m);
}


/* A built-in profile's window, output reserve and source. */
static void expect_profile(const cmv_models *m, const char *id, uint64_t window, uint64_t output, const char *source)
{
	const cmv_model *x;

	assert_cmv_ok(cmv_models_find(&x, m, id));
	assert_string_equal(x->id, id);
	if (x->context_window != window || x->max_output != output)
		fail_msg("%s: window %llu, output %llu", id, (unsigned long long)x->context_window,
			 (unsigned long long)x->max_output);
	if (!strstr(x->source, source))
		fail_msg("%s: source '%s' lacks '%s'", id, x->source, source);
	/* a new model's price is unknown, never a guess */
	assert_true(x->prices.input < 0 && x->prices.output < 0);
	assert_false(x->provisional);
}

static void test_pager_models__current_profiles(void **state)
{
	cmv_models *m = NULL;
	const char *cc = "Claude Code 2.1.328 modelUsage, 2026-12";

	(void)state;
	assert_cmv_ok(cmv_models_load(&m, ""));
	/* real-clients.md's table, as Claude Code 2.1.328 reports them */
	expect_profile(m, "claude-opus-5-5", 1000000, 128000, cc);
	expect_profile(m, "claude-sonnet-5-5", 1000000, 128000, cc);
	expect_profile(m, "claude-sonnet-5", 1000000, 64000, cc);
	expect_profile(m, "claude-haiku-5-5", 1000000, 128000, cc);
	expect_profile(m, "claude-opus-4-8", 1000000, 64000, cc);
	expect_profile(m, "claude-fable-5-2", 1000000, 128000, cc);
	expect_profile(m, "claude-mythos-5-2", 1000000, 128000, cc);
	expect_profile(m, "claude-sonnet-4-6", 200000, 32000, cc);
	/* named by its binary without figures: the family's, and the source says whose */
	expect_profile(m, "claude-opus-5", 1000000, 128000, "as claude-opus-5-5's");
	expect_profile(m, "claude-opus-4-6", 1000000, 64000, "as claude-opus-4-8's");
	expect_profile(m, "claude-opus-4-7", 1000000, 64000, "as claude-opus-4-8's");
	expect_profile(m, "claude-fable-5", 1000000, 128000, "as claude-fable-5-2's");
	expect_profile(m, "claude-fable-5-1", 1000000, 128000, "as claude-fable-5-2's");
	expect_profile(m, "claude-mythos-5", 1000000, 128000, "as claude-mythos-5-2's");
	expect_profile(m, "claude-mythos-5-1", 1000000, 128000, "as claude-mythos-5-2's");
	/* Codex rollouts' model_context_window; the reserve is a tenth of it */
	expect_profile(m, "gpt-5.5", 258400, 25840, "Codex rollout token_count, 2026-06-25");
	expect_profile(m, "gpt-5.4", 258400, 25840, "Codex rollout token_count, 2026-06-18");
	expect_profile(m, "gpt-5.3-codex-spark", 121600, 12160, "Codex rollout token_count, 2026-06-26");
	/* every profile says where its figures come from; dated prices keep their date */
	for (size_t i = 0; i < cmv_models_count(m); i++) {
		const cmv_model *x = cmv_models_at(m, i);
		assert_non_null(x->source);
		assert_true(*x->source);
		if (x->prices.input >= 0)
			assert_string_equal(x->prices_as_of, "2025-11");
	}
	cmv_models_free(m);
}

/* name resolves to a provisional copy of `base`, and says so in `line`. */
static void expect_family(cmv_models *m, const char *name, const char *base, const char *line)
{
	const cmv_model *x, *again, *b;
	cmv_buf what = CMV_BUF_INIT(4096);

	assert_cmv_ok(cmv_models_resolve(&x, m, name));
	assert_true(x->provisional);
	assert_string_equal(x->id, name);
	assert_string_equal(x->assumed_from, base);
	assert_cmv_ok(cmv_models_find(&b, m, base));
	assert_int_equal(x->context_window, b->context_window);
	assert_int_equal(x->max_output, b->max_output);
	assert_string_equal(x->tokenizer, b->tokenizer);
	assert_int_equal(x->exact, b->exact);
	assert_true(x->prices.input < 0 && x->prices.output < 0 && x->prices.cache_read < 0);
	assert_cmv_ok(cmv_model_assumed(&what, x));
	if (line)
		assert_string_equal(what.ptr, line);
	else
		assert_non_null(strstr(what.ptr, base));
	/* resolving it again hands back the same profile */
	assert_cmv_ok(cmv_models_resolve(&again, m, name));
	assert_ptr_equal(x, again);
	cmv_buf_dispose(&what);
}

static void test_pager_models__family_resolution(void **state)
{
	cmv_models *m = NULL;
	const cmv_model *x, *first;
	cmv_buf what = CMV_BUF_INIT(4096);

	(void)state;
	assert_cmv_ok(cmv_models_load(&m, ""));
	expect_family(m, "claude-sonnet-7", "claude-sonnet-5-5",
		      "unknown model 'claude-sonnet-7': counted as the claude family (claude-sonnet-5-5's window "
		      "1,000,000, output 128,000, tokenizer approximation)");
	assert_cmv_ok(cmv_models_resolve(&first, m, "claude-sonnet-7"));
	expect_family(m, "claude-opus-4-9", "claude-opus-4-8", NULL);
	expect_family(m, "claude-sonnet-4-7", "claude-sonnet-4-6", NULL);
	expect_family(m, "claude-7", "claude-opus-5-5", NULL);
	expect_family(m, "gpt-7", "gpt-5.5",
		      "unknown model 'gpt-7': counted as the gpt family (gpt-5.5's window 258,400, output 25,840, "
		      "tokenizer o200k_base)");
	expect_family(m, "gpt-4o-2030", "gpt-4o", NULL);
	expect_family(m, "o5", "o3",
		      "unknown model 'o5': counted as the o-series family (o3's window 200,000, output 100,000, "
		      "tokenizer o200k_base)");
	expect_family(m, "o4-pro", "o4-mini", NULL);
	expect_family(m, "gemini-4-pro", "gemini-3-pro-preview", NULL);
	/* earlier provisional profiles stay where they were handed out */
	assert_string_equal(first->id, "claude-sonnet-7");
	/* a known id, alias or dated id is found as cmv_models_find finds it: nothing assumed */
	assert_cmv_ok(cmv_models_resolve(&x, m, "claude-sonnet-4-5-20250929"));
	assert_string_equal(x->id, "claude-sonnet-4-5");
	assert_false(x->provisional);
	assert_cmv_ok(cmv_model_assumed(&what, x));
	assert_int_equal(what.size, 0);
	/* no family: the unknown-model error with close ids */
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_resolve(&x, m, "frobnicator-9"));
	assert_error_mentions("unknown model 'frobnicator-9'");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_resolve(&x, m, "llama-9"));
	assert_error_mentions("did you mean");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_resolve(&x, m, "claude-"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_resolve(&x, m, "omni-1"));
	/* cmv_models_find itself stays exact */
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_find(&x, m, "gpt-9"));
	cmv_buf_dispose(&what);
	cmv_models_free(m);
}

static char *slurp(const char *path)
{
	cmv_buf b = CMV_BUF_INIT(1 << 20);
	FILE *fp = fopen(path, "rb");
	char chunk[4096];
	size_t got;
	assert_non_null(fp);
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		assert_cmv_ok(cmv_buf_put(&b, chunk, got));
	fclose(fp);
	return cmv_buf_detach(&b);
}

static void test_pager_models__edit_user_file(void **state)
{
	char *dir = test_tmpdir(), path[4096], *before, *after;
	cmv_models *m = NULL;
	const cmv_model *x;
	cmv_buf where = CMV_BUF_INIT(4096);
	const cmv_model_field add[] = { { "window", "65536" },
					{ "output", "4096" },
					{ "base_url", "http://127.0.0.1:8080/v1" },
					{ "api_key_env", "LOCAL_KEY" },
					{ "aliases", "ll,ll2" } };
	const cmv_model_field too_big[] = { { "max_output", "70000" } };
	const cmv_model_field key[] = { { "api_key", "sk-abcdefabcdefabcdef" } };
	const cmv_model_field not_num[] = { { "context_window", "big" } };
	const cmv_model_field price[] = { { "prices.input", "3.75" }, { "prices.cache_read", "null" } };

	(void)state;
	snprintf(path, sizeof(path), "%s/models.json", dir);
	/* a file that is not there yet is made */
	assert_cmv_ok(cmv_models_edit(path, CMV_MODELS_ADD, "my-llama", "llama-3.1-8b", add, 5));
	assert_cmv_ok(cmv_models_load(&m, path));
	assert_cmv_ok(cmv_models_find(&x, m, "ll2"));
	assert_string_equal(x->id, "my-llama");
	assert_int_equal(x->context_window, 65536);
	assert_int_equal(x->max_output, 4096);
	assert_string_equal(x->tokenizer, "llama3");
	assert_string_equal(x->api_key_env, "LOCAL_KEY");
	assert_non_null(strstr(x->source, "user file"));
	cmv_models_free(m);
	/* refused edits leave the file as it was, and say what was wrong */
	before = slurp(path);
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_edit(path, CMV_MODELS_SET, "my-llama", NULL, too_big, 1));
	assert_error_mentions("'max_output' must be below 'context_window'");
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_edit(path, CMV_MODELS_SET, "my-llama", NULL, key, 1));
	assert_error_mentions("never holds a secret");
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_edit(path, CMV_MODELS_SET, "my-llama", NULL, not_num, 1));
	assert_error_mentions("'context_window' must be a number, not 'big'");
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_edit(path, CMV_MODELS_ADD, "my-llama", "gpt-4o", NULL, 0));
	assert_error_mentions("exists");
	assert_cmv_fails_with(CMV_EINVALID, cmv_models_edit(path, CMV_MODELS_ADD, "gpt-4o", "gpt-4.1", NULL, 0));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_edit(path, CMV_MODELS_ADD, "x", "nope", NULL, 0));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_edit(path, CMV_MODELS_SET, "nope", NULL, price, 2));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_edit(path, CMV_MODELS_REMOVE, "gpt-5.5", NULL, NULL, 0));
	assert_error_mentions("a built-in cannot be removed");
	after = slurp(path);
	assert_string_equal(before, after);
	assert_null(strstr(after, "sk-abc"));
	free(before);
	free(after);
	/* a built-in gets an entry that overrides it */
	assert_cmv_ok(cmv_models_edit(path, CMV_MODELS_SET, "gpt-4o", NULL, price, 2));
	assert_cmv_ok(cmv_models_load(&m, path));
	assert_cmv_ok(cmv_models_find(&x, m, "gpt-4o"));
	assert_true(x->prices.input == 3.75 && x->prices.cache_read < 0 && x->prices.output == 10.0);
	cmv_models_free(m);
	/* removed: the file's entry goes, a built-in comes back */
	assert_cmv_ok(cmv_models_edit(path, CMV_MODELS_REMOVE, "my-llama", NULL, NULL, 0));
	assert_cmv_ok(cmv_models_edit(path, CMV_MODELS_REMOVE, "gpt-4o", NULL, NULL, 0));
	assert_cmv_ok(cmv_models_load(&m, path));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_models_find(&x, m, "my-llama"));
	assert_cmv_ok(cmv_models_find(&x, m, "gpt-4o"));
	assert_true(x->prices.input == 2.50 && x->prices.cache_read == 1.25);
	cmv_models_free(m);
	/* where the CLI edits: $CMV_MODELS first */
	setenv("CMV_MODELS", path, 1);
	assert_cmv_ok(cmv_models_user_path(&where));
	assert_string_equal(where.ptr, path);
	unsetenv("CMV_MODELS");
	setenv("XDG_CONFIG_HOME", dir, 1);
	assert_cmv_ok(cmv_models_user_path(&where));
	assert_non_null(strstr(where.ptr, "/cmv/models.json"));
	unsetenv("XDG_CONFIG_HOME");
	cmv_buf_dispose(&where);
	test_rmdir(dir);
	free(dir);
}

static size_t count_of(cmv_tok *tok, const char *s)
{
	size_t n;
	assert_cmv_ok(cmv_tok_count(&n, tok, s, strlen(s)));
	return n;
}

static void test_pager_models__openai_framing(void **state)
{
	cmv_models *m = NULL;
	const cmv_model *g;
	cmv_tok *tok = NULL;
	cmv_token_stats st;
	cmv_buf body = CMV_BUF_INIT(1 << 20);
	const char *args = "{\"cmd\":\"ls -la\",\"workdir\":\"/tmp\"}";

	(void)state;
	assert_cmv_ok(cmv_models_load(&m, ""));
	assert_cmv_ok(cmv_models_find(&g, m, "gpt-5.5"));
	assert_cmv_ok(cmv_tok_load(&tok, g->tokenizer, NULL));
	/* measured on Codex rollouts (tests/tok/openai_overhead.py): 4 per item, 3 per text */
	assert_int_equal(g->per_message, 4);
	assert_int_equal(g->per_block, 3);
	/* encrypted reasoning is no text: only the item's framing */
	assert_cmv_ok(cmv_buf_puts(&body, "{\"input\":[{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\""));
	for (int i = 0; i < 500; i++)
		assert_cmv_ok(cmv_buf_puts(&body, "gAAAAABo0x9Q"));
	assert_cmv_ok(cmv_buf_puts(&body, "\"}]}"));
	assert_cmv_ok(cmv_count_request(&st, g, tok, body.ptr, body.size));
	assert_int_equal(st.thinking, 0);
	assert_int_equal(st.total, g->per_request + g->per_message);
	/* a function call: name + arguments (raw JSON) + 14; its output: text + 13; a message: text + 7 */
	cmv_buf_clear(&body);
	assert_cmv_ok(cmv_buf_printf(&body,
				     "{\"input\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
				     "\"output_text\",\"text\":\"Looking.\"}]},{\"type\":\"function_call\",\"name\":"
				     "\"exec_command\",\"arguments\":\"%s\",\"call_id\":\"call_1\"},{\"type\":"
				     "\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"total 0\"}]}",
				     "{\\\"cmd\\\":\\\"ls -la\\\",\\\"workdir\\\":\\\"/tmp\\\"}"));
	assert_cmv_ok(cmv_count_request(&st, g, tok, body.ptr, body.size));
	assert_int_equal(st.text, count_of(tok, "Looking."));
	assert_int_equal(st.tool_calls, count_of(tok, "exec_command") + count_of(tok, args));
	assert_int_equal(st.tool_results, count_of(tok, "total 0"));
	assert_int_equal(st.overhead, g->per_request + 7 + 14 + 13);
	cmv_buf_dispose(&body);
	cmv_tok_free(tok);
	cmv_models_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pager_models__builtin_lookups),
		cmocka_unit_test(test_pager_models__user_file),
		cmocka_unit_test(test_pager_models__approximate_counts_round_up),
		cmocka_unit_test_setup_teardown(test_pager_models__conversation_by_kind, test_store_setup,
						test_store_teardown),
		cmocka_unit_test(test_pager_models__current_profiles),
		cmocka_unit_test(test_pager_models__family_resolution),
		cmocka_unit_test(test_pager_models__edit_user_file),
		cmocka_unit_test(test_pager_models__openai_framing),
	};
	return cmocka_run_group_tests_name("model profiles", tests, NULL, NULL);
}
