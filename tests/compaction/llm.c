/* SPDX-License-Identifier: MIT */
/*
 * The LLM client against a replaying HTTP server on 127.0.0.1 (and the
 * replaying transport): each request body is checked, and each failure the
 * issue names gets its own clear error. Offline: nothing leaves the machine.
 */
#include <sys/time.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "http_replay.h"

#define KEY_ENV "CMV_TEST_LLM_KEY"
#define SECRET "sk-test-DO-NOT-PRINT-4242"

static cmv_models *models;

static char *exchanges(const char *name)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/tests/compaction/llm/%s", CMV_TEST_SOURCE, name);
	return path;
}

static const cmv_model *model(const char *id)
{
	const cmv_model *m = NULL;
	if (!models)
		assert_cmv_ok(cmv_models_load(&models, ""));
	assert_cmv_ok(cmv_models_find(&m, models, id));
	return m;
}

static double now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

typedef struct {
	http_replay *srv;
	cmv_llm *llm;
	cmv_buf out;
	cmv_llm_usage usage;
	int rc;
} call;

/* Serve `file`, make one completion for `model_id` with these options, keep the result. */
static void run(call *c, const char *file, const char *model_id, cmv_llm_options *o)
{
	cmv_llm_options d = CMV_LLM_OPTIONS_INIT;
	if (!o)
		o = &d;
	memset(c, 0, sizeof(*c));
	cmv_buf_init(&c->out, CMV_BUF_CONTENT);
	c->srv = http_replay_start(exchanges(file));
	char url[128];
	snprintf(url, sizeof(url), "%s/v1", http_replay_url(c->srv));
	o->base_url = url;
	o->api_key_env = KEY_ENV;
	if (!o->backoff_ms)
		o->backoff_ms = 20;
	assert_cmv_ok(cmv_llm_new(&c->llm, model(model_id), o));
	c->rc = cmv_llm_complete(&c->out, &c->usage, c->llm, "You summarize agent sessions.", "Summarize: hello");
}

static void done(call *c)
{
	cmv_llm_free(c->llm);
	http_replay_stop(c->srv);
	cmv_buf_dispose(&c->out);
}

/* The error names the endpoint and never the key. */
static void assert_clean_error(const char *needle)
{
	const cmv_error *e = cmv_error_last();
	assert_non_null(e);
	assert_non_null(strstr(e->message, "127.0.0.1"));
	assert_null(strstr(e->message, SECRET));
	assert_error_mentions(needle);
}

static void test_openai_success(void **state)
{
	(void)state;
	call c;
	setenv(KEY_ENV, SECRET, 1);
	run(&c, "openai_ok.jsonl", "gpt-4o-mini", NULL);
	assert_cmv_ok(c.rc);
	assert_string_equal(c.out.ptr, "## User instructions and constraints\n- keep the tests offline");
	assert_int_equal(c.usage.input_tokens, 412);
	assert_int_equal(c.usage.output_tokens, 17);
	assert_int_equal(c.usage.attempts, 1);
	assert_false(c.usage.truncated);
	assert_int_equal(http_replay_count(c.srv), 1);
	const char *head = http_replay_head(c.srv, 0);
	assert_non_null(strstr(head, "POST /v1/chat/completions HTTP/1.1"));
	assert_non_null(strstr(head, "Authorization: Bearer " SECRET));
	cJSON *body = cJSON_Parse(http_replay_body(c.srv, 0));
	assert_non_null(body);
	assert_string_equal(cJSON_GetObjectItem(body, "model")->valuestring, "gpt-4o-mini");
	assert_int_equal(cJSON_GetObjectItem(body, "max_tokens")->valueint, 4096);
	assert_int_equal(cJSON_GetObjectItem(body, "temperature")->valueint, 0);
	cJSON *msgs = cJSON_GetObjectItem(body, "messages");
	assert_int_equal(cJSON_GetArraySize(msgs), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring,
			    "Summarize: hello");
	cJSON_Delete(body);
	assert_non_null(strstr(cmv_llm_endpoint(c.llm), "127.0.0.1"));
	assert_string_equal(strstr(cmv_llm_endpoint(c.llm), "/v1/"), "/v1/chat/completions");
	done(&c);
}

static void test_anthropic_success(void **state)
{
	(void)state;
	call c;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	o.max_tokens = 1000;
	setenv(KEY_ENV, SECRET, 1);
	run(&c, "anthropic_ok.jsonl", "claude-haiku-4-5", &o);
	assert_cmv_ok(c.rc);
	assert_string_equal(c.out.ptr, "## Decisions made\n- use SQLite");
	assert_int_equal(c.usage.input_tokens, 388);
	const char *head = http_replay_head(c.srv, 0);
	assert_non_null(strstr(head, "POST /v1/messages HTTP/1.1"));
	assert_non_null(strstr(head, "x-api-key: " SECRET));
	assert_non_null(strstr(head, "anthropic-version: 2023-06-01"));
	assert_null(strstr(head, "Authorization"));
	cJSON *body = cJSON_Parse(http_replay_body(c.srv, 0));
	assert_string_equal(cJSON_GetObjectItem(body, "system")->valuestring, "You summarize agent sessions.");
	assert_int_equal(cJSON_GetObjectItem(body, "max_tokens")->valueint, 1000);
	cJSON *msgs = cJSON_GetObjectItem(body, "messages");
	assert_int_equal(cJSON_GetArraySize(msgs), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "user");
	cJSON_Delete(body);
	done(&c);
}

static void test_retry_after_429(void **state)
{
	(void)state;
	call c;
	double t0 = now_ms();
	run(&c, "retry_429.jsonl", "gpt-4o-mini", NULL);
	double waited = now_ms() - t0;
	assert_cmv_ok(c.rc);
	assert_string_equal(c.out.ptr, "after the wait");
	assert_int_equal(c.usage.attempts, 2);
	assert_int_equal(http_replay_count(c.srv), 2);
	/* the same request both times */
	assert_string_equal(http_replay_body(c.srv, 0), http_replay_body(c.srv, 1));
	/* Retry-After: 1 is honoured, though the backoff alone would be 20 ms */
	assert_true(waited >= 900);
	done(&c);
}

static void test_500_then_success(void **state)
{
	(void)state;
	call c;
	run(&c, "retry_500.jsonl", "gpt-4o-mini", NULL);
	assert_cmv_ok(c.rc);
	assert_string_equal(c.out.ptr, "second time lucky");
	assert_int_equal(c.usage.attempts, 2);
	assert_true(c.usage.truncated); /* finish_reason "length" */
	done(&c);
}

static void test_retries_exhausted(void **state)
{
	(void)state;
	call c;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	o.retries = 2;
	run(&c, "exhausted.jsonl", "claude-haiku-4-5", &o);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("HTTP 503 (retries exhausted): Overloaded");
	assert_int_equal(http_replay_count(c.srv), 3);
	done(&c);
}

static void test_timeout(void **state)
{
	(void)state;
	call c;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	o.timeout_ms = 300;
	run(&c, "hang.jsonl", "gpt-4o-mini", &o);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("timed out after 300 ms");
	assert_int_equal(c.out.size, 0);
	done(&c);
}

static void test_malformed_json(void **state)
{
	(void)state;
	call c;
	run(&c, "malformed.jsonl", "gpt-4o-mini", NULL);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("not a JSON object");
	done(&c);
}

static void test_truncated(void **state)
{
	(void)state;
	call c;
	run(&c, "truncate.jsonl", "gpt-4o-mini", NULL);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("cut short");
	done(&c);
}

static void test_oversized(void **state)
{
	(void)state;
	call c;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	o.max_response = 1 << 20;
	run(&c, "big.jsonl", "gpt-4o-mini", &o);
	assert_int_equal(c.rc, CMV_ETOOBIG);
	assert_clean_error("larger than 1048576 bytes");
	done(&c);
}

static void test_no_text(void **state)
{
	(void)state;
	call c;
	run(&c, "no_text.jsonl", "gpt-4o-mini", NULL);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("no choices[0].message.content");
	done(&c);
}

static void test_bad_request_not_retried(void **state)
{
	(void)state;
	call c;
	run(&c, "bad_request.jsonl", "gpt-4", NULL);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("HTTP 400: This model's maximum context length is 8192 tokens");
	assert_int_equal(http_replay_count(c.srv), 1);
	done(&c);
}

static void test_unauthorized_names_the_variable(void **state)
{
	(void)state;
	call c;
	setenv(KEY_ENV, SECRET, 1);
	run(&c, "unauthorized.jsonl", "claude-haiku-4-5", NULL);
	assert_int_equal(c.rc, CMV_ETRANSPORT);
	assert_clean_error("check the key in $" KEY_ENV);
	done(&c);
	unsetenv(KEY_ENV);
	run(&c, "unauthorized.jsonl", "claude-haiku-4-5", NULL);
	assert_clean_error("no key: set $" KEY_ENV);
	assert_null(strstr(http_replay_head(c.srv, 0), "x-api-key"));
	done(&c);
}

static void test_connection_refused(void **state)
{
	(void)state;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	cmv_llm *llm = NULL;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_SMALL);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", http_replay_dead_port());
	o.base_url = url;
	assert_cmv_ok(cmv_llm_new(&llm, model("gpt-4o-mini"), &o));
	assert_int_equal(cmv_llm_complete(&out, NULL, llm, "s", "u"), CMV_ETRANSPORT);
	assert_clean_error("connection refused");
	cmv_llm_free(llm);
	cmv_buf_dispose(&out);
}

static void test_no_endpoint_for_open_models(void **state)
{
	(void)state;
	cmv_llm *llm = NULL;
	assert_int_equal(cmv_llm_new(&llm, model("llama-3.1-8b"), NULL), CMV_EINVALID);
	assert_error_mentions("--llm-url");
	assert_null(llm);
}

static void test_replay_transport(void **state)
{
	(void)state;
	cmv_llm_transport *t = NULL;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	cmv_llm *llm = NULL;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_llm_usage u;
	assert_cmv_ok(cmv_llm_transport_replay(&t, exchanges("retry_500.jsonl")));
	o.transport = t;
	o.backoff_ms = 1;
	assert_cmv_ok(cmv_llm_new(&llm, model("gpt-4o"), &o));
	assert_cmv_ok(cmv_llm_complete(&out, &u, llm, "sys", "first"));
	assert_string_equal(out.ptr, "second time lucky");
	assert_int_equal(cmv_llm_replay_count(t), 2);
	assert_non_null(strstr(cmv_llm_replay_request(t, 1), "\"first\""));
	/* past the recording: a clear error, not a hang */
	assert_int_equal(cmv_llm_complete(&out, &u, llm, "sys", "second"), CMV_ETRANSPORT);
	assert_error_mentions("no recorded exchange left");
	cmv_llm_free(llm);
	t->free(t);
	cmv_buf_dispose(&out);
	/* a bad recording names its file and line */
	char *dir = test_tmpdir();
	char *bad = test_write_file(dir, "bad.jsonl", "{\"status\":200}\n[1]\n", 19);
	assert_int_equal(cmv_llm_transport_replay(&t, bad), CMV_EINVALID);
	assert_error_mentions("bad.jsonl:2");
	free(bad);
	test_rmdir(dir);
	free(dir);
}

static void test_profile_endpoint_fields(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	cmv_models *m = NULL;
	const cmv_model *md = NULL;
	const char *ok = "{\"models\":[{\"id\":\"local-qwen\",\"base\":\"gpt-4o-mini\",\"provider\":\"local\","
			 "\"base_url\":\"http://127.0.0.1:8080/v1\",\"api_key_env\":\"LOCAL_KEY\"}]}";
	char *path = test_write_file(dir, "models.json", ok, strlen(ok));
	assert_cmv_ok(cmv_models_load(&m, path));
	assert_cmv_ok(cmv_models_find(&md, m, "local-qwen"));
	assert_string_equal(md->base_url, "http://127.0.0.1:8080/v1");
	assert_string_equal(md->api_key_env, "LOCAL_KEY");
	cmv_llm *llm = NULL;
	assert_cmv_ok(cmv_llm_new(&llm, md, NULL));
	assert_string_equal(cmv_llm_endpoint(llm), "http://127.0.0.1:8080/v1/chat/completions");
	cmv_llm_free(llm);
	cmv_models_free(m);
	free(path);
	/* a secret in the file is refused, with the file named */
	const char *secret = "{\"models\":[{\"id\":\"x\",\"base\":\"gpt-4o\",\"api_key\":\"sk-123\"}]}";
	path = test_write_file(dir, "secret.json", secret, strlen(secret));
	assert_int_equal(cmv_models_load(&m, path), CMV_EINVALID);
	assert_error_mentions("never holds a secret");
	assert_error_mentions("secret.json");
	free(path);
	test_rmdir(dir);
	free(dir);
}

static int teardown(void **state)
{
	(void)state;
	cmv_models_free(models);
	models = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_success),
		cmocka_unit_test(test_anthropic_success),
		cmocka_unit_test(test_retry_after_429),
		cmocka_unit_test(test_500_then_success),
		cmocka_unit_test(test_retries_exhausted),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_malformed_json),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_no_text),
		cmocka_unit_test(test_bad_request_not_retried),
		cmocka_unit_test(test_unauthorized_names_the_variable),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_no_endpoint_for_open_models),
		cmocka_unit_test(test_replay_transport),
		cmocka_unit_test(test_profile_endpoint_fields),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
