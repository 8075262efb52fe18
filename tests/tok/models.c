/* SPDX-License-Identifier: MIT */
/*
 * The model registry: lookups by id, alias and dated id; the user's file
 * (overrides, new profiles, every kind of bad entry named by file and
 * entry); budgets and approximate counts; counting a stored conversation
 * by kind of content through the token cache.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pager_models__builtin_lookups),
		cmocka_unit_test(test_pager_models__user_file),
		cmocka_unit_test(test_pager_models__approximate_counts_round_up),
		cmocka_unit_test_setup_teardown(test_pager_models__conversation_by_kind, test_store_setup,
						test_store_teardown),
	};
	return cmocka_run_group_tests_name("model profiles", tests, NULL, NULL);
}
